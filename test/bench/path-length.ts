// Executed BPF instructions per frame: a small interpreter runs a program section of a BPF object (as compiled, before
// the verifier) on the bench frames. Timings on a shared machine drift by nanoseconds; this count does not, so it shows
// what a change to the classifier did. `node dist/test/bench/path-length.js [object.bpf.o ...]`
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BENCH_FRAMES } from './per-packet.js';

const M64 = (1n << 64n) - 1n;
const M32 = (1n << 32n) - 1n;
/** Where the interpreter puts each region: far apart, so a stray access shows as an unknown address. */
const PACKET = 0x1000_0000n;
const STACK = 0x2000_0000n;
const COUNTERS = 0x3000_0000n;
const CTX = 0x4000_0000n;
const SUBPROG_STACK = 512n;
/** bpf_map_lookup_elem: the only helper carnx calls. */
const HELPER_MAP_LOOKUP = 1;
/** Offsets of data and data_end in struct xdp_md and struct __sk_buff (linux/bpf.h), and of len in __sk_buff. */
const CTX_LAYOUT = {
  xdp: { data: 0, dataEnd: 4, len: -1 },
  tc: { data: 76, dataEnd: 80, len: 0 },
} as const;

interface Insn {
  op: number;
  dst: number;
  src: number;
  off: number;
  imm: number;
}

function section(object: string, name: string): Insn[] {
  const dir = mkdtempSync(join(tmpdir(), 'carnx-path-'));
  try {
    const out = join(dir, 'section.bin');
    execFileSync('llvm-objcopy', ['-O', 'binary', `--only-section=${name}`, object, out]);
    const raw = readFileSync(out);
    return Array.from({ length: raw.length / 8 }, (_, i) => ({
      op: raw[i * 8]!,
      dst: raw[i * 8 + 1]! & 0xf,
      src: raw[i * 8 + 1]! >> 4,
      off: raw.readInt16LE(i * 8 + 2),
      imm: raw.readInt32LE(i * 8 + 4),
    }));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const signed = (v: bigint, bits: 32 | 64): bigint => BigInt.asIntN(bits, v);

export interface PathLength {
  instructions: number;
  loads: number;
  stores: number;
  retval: bigint;
}

/** Interprets `main` (with `text`, the object's .text, for BPF-to-BPF calls) on one frame. */
function execute(main: Insn[], text: Insn[], hook: 'xdp' | 'tc', frame: Buffer): PathLength {
  const memory = new Map<bigint, number>();
  const read = (addr: bigint, size: number): bigint => {
    let v = 0n;
    for (let i = size - 1; i >= 0; i--) v = (v << 8n) | BigInt(memory.get(addr + BigInt(i)) ?? 0);
    return v;
  };
  const write = (addr: bigint, size: number, value: bigint): void => {
    for (let i = 0; i < size; i++) memory.set(addr + BigInt(i), Number((value >> BigInt(8 * i)) & 0xffn));
  };
  for (const [i, b] of frame.entries()) memory.set(PACKET + BigInt(i), b);
  const layout = CTX_LAYOUT[hook];
  write(CTX + BigInt(layout.data), 4, PACKET);
  write(CTX + BigInt(layout.dataEnd), 4, PACKET + BigInt(frame.length));
  if (layout.len >= 0) write(CTX + BigInt(layout.len), 4, BigInt(frame.length));

  const r = new Array<bigint>(11).fill(0n);
  r[1] = CTX;
  r[10] = STACK;
  const frames: Array<{ prog: Insn[]; pc: number; saved: bigint[]; fp: bigint }> = [];
  let prog = main;
  let pc = 0;
  const count = { instructions: 0, loads: 0, stores: 0 };
  for (;;) {
    const insn = prog[pc];
    if (!insn) throw new Error(`ran off the program at ${pc}`);
    count.instructions++;
    const { op, dst, src, off, imm } = insn;
    const cls = op & 7;
    if (op === 0x18) {
      r[dst] = ((BigInt(prog[pc + 1]!.imm >>> 0) << 32n) | BigInt(imm >>> 0)) & M64;
      pc += 2;
      continue;
    }
    if (cls === 4 || cls === 7) {
      const wide = cls === 7;
      const mask = wide ? M64 : M32;
      const bits = wide ? 64 : 32;
      const a = r[dst]! & mask;
      const b = (op & 8 ? r[src]! : BigInt.asUintN(64, BigInt(imm))) & mask;
      const shift = b & BigInt(bits - 1);
      const alu: Record<number, () => bigint> = {
        0: () => a + b,
        16: () => a - b,
        32: () => a * b,
        48: () => (b ? a / b : 0n),
        64: () => a | b,
        80: () => a & b,
        96: () => a << shift,
        112: () => a >> shift,
        128: () => -a,
        144: () => (b ? a % b : a),
        160: () => a ^ b,
        176: () => b,
        192: () => signed(a, bits) >> shift,
      };
      const f = alu[op & 0xf0];
      if (!f) throw new Error(`unknown ALU op ${op.toString(16)} at ${pc}`);
      r[dst] = BigInt.asUintN(bits, f()) & mask;
      pc++;
      continue;
    }
    if (cls === 1 || cls === 2 || cls === 3) {
      const size = ({ 0: 4, 8: 2, 16: 1, 24: 8 } as Record<number, number>)[op & 0x18]!;
      if (cls === 1) {
        r[dst] = read(r[src]! + BigInt(off), size);
        count.loads++;
      } else {
        write(r[dst]! + BigInt(off), size, cls === 3 ? r[src]! : BigInt.asUintN(64, BigInt(imm)));
        count.stores++;
      }
      pc++;
      continue;
    }
    if (cls === 5 || cls === 6) {
      const code = op & 0xf0;
      if (code === 0x80) {
        if (src === 1) {
          // A call into .text: the only subprogram carnx has is there at offset 0 (a global function).
          frames.push({ prog, pc: pc + 1, saved: r.slice(6, 10), fp: r[10]! });
          prog = text;
          pc = 0;
          r[10] = r[10]! - SUBPROG_STACK;
          continue;
        }
        if (imm !== HELPER_MAP_LOOKUP) throw new Error(`unknown helper ${imm} at ${pc}`);
        r[0] = COUNTERS;
        pc++;
        continue;
      }
      if (code === 0x90) {
        const back = frames.pop();
        if (!back) return { ...count, retval: r[0]! };
        prog = back.prog;
        pc = back.pc;
        back.saved.forEach((v, i) => {
          r[6 + i] = v;
        });
        r[10] = back.fp;
        continue;
      }
      if (code === 0x00) {
        pc += 1 + off;
        continue;
      }
      const bits = cls === 5 ? 64 : 32;
      const mask = bits === 64 ? M64 : M32;
      const a = r[dst]! & mask;
      const b = (op & 8 ? r[src]! : BigInt.asUintN(64, BigInt(imm))) & mask;
      const sa = signed(a, bits);
      const sb = signed(b, bits);
      const jumps: Record<number, boolean> = {
        16: a === b,
        32: a > b,
        48: a >= b,
        64: (a & b) !== 0n,
        80: a !== b,
        96: sa > sb,
        112: sa >= sb,
        160: a < b,
        176: a <= b,
        192: sa < sb,
        208: sa <= sb,
      };
      const taken = jumps[code];
      if (taken === undefined) throw new Error(`unknown jump ${op.toString(16)} at ${pc}`);
      pc += 1 + (taken ? off : 0);
      continue;
    }
    throw new Error(`unknown instruction ${op.toString(16)} at ${pc}`);
  }
}

/** Executed instructions, loads and stores of one program of an object, per bench frame; null without the program. */
export function pathLengths(object: string, program: 'xdp' | 'tc'): Array<{ frame: string } & PathLength> | null {
  const main = section(object, program);
  if (main.length === 0) return null;
  let text: Insn[] = [];
  try {
    text = section(object, '.text');
  } catch {
    // No subprograms.
  }
  return BENCH_FRAMES.map((f) => ({ frame: f.name, ...execute(main, text, program, f.bytes) }));
}

const isMain = process.argv[1] === fileURLToPath(import.meta.url);
if (isMain) {
  const objects = process.argv.slice(2);
  if (objects.length === 0) objects.push(fileURLToPath(new URL('../../../xdp/carnx.bpf.o', import.meta.url)));
  for (const hook of ['xdp', 'tc'] as const) {
    console.log(`\n${hook}: executed BPF instructions per frame (as compiled, before the verifier)`);
    const columns = objects.map((o) => pathLengths(o, hook));
    console.log(`${'frame'.padEnd(28)} ${objects.map((o) => o.split('/').pop()!.padEnd(22)).join(' ')}`);
    BENCH_FRAMES.forEach((f, i) => {
      console.log(
        `${f.name.padEnd(28)} ${columns.map((c) => String(c?.[i]?.instructions ?? '-').padEnd(22)).join(' ')}`,
      );
    });
  }
}
