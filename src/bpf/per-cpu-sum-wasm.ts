// The WebAssembly module behind sumPerCpuU64, assembled here from named opcodes: no build step, no toolchain.
//
// One exported function per module, `sum(base, cpus, stride)`, generated for one field count. It loads two u64 fields
// at a time (one v128) from every CPU's value and keeps two i64x2 accumulators per pair: the u64s added as they are
// (wrapping: their sum mod 2^64) and their high 32-bit halves (i64x2.shr_u 32, exact: below cpus * 2^32). From those
// two, joinField recovers the low halves' sum and the exact total as a u64 and a carry. One 16-byte load and two adds
// per pair of fields per CPU; v128.load32x2_u per field (the halves zero-extended to lanes) measured ~20% slower.
// WebAssembly memory is little-endian, so the sums are right only on a little-endian host.

/** Pairs of fields summed per pass over the CPUs, their accumulators in registers: 3 measured fastest (2 to 6 tried). */
export const PAIRS_PER_PASS = 3;

const I32 = 0x7f;
const I64 = 0x7e;
const V128 = 0x7b;
const OP = {
  block: 0x02,
  loop: 0x03,
  end: 0x0b,
  brIf: 0x0d,
  localGet: 0x20,
  localSet: 0x21,
  localTee: 0x22,
  i64Store: 0x37,
  i32Const: 0x41,
  i64Const: 0x42,
  i32LtU: 0x49,
  i32GeU: 0x4f,
  i64LtU: 0x54,
  i32Add: 0x6a,
  i32Mul: 0x6c,
  i64Add: 0x7c,
  i64Sub: 0x7d,
  i64Shl: 0x86,
  i64ShrU: 0x88,
  i64ExtendI32U: 0xad,
  voidType: 0x40,
  simd: 0xfd,
} as const;
/** SIMD opcodes (after the 0xfd prefix, LEB128-encoded). */
const SIMD = { v128Load: 0, v128Load64Zero: 93, i64x2ExtractLane: 29, i64x2ShrU: 205, i64x2Add: 206 } as const;

function uleb(n: number): number[] {
  const out: number[] = [];
  do {
    const byte = n & 0x7f;
    n >>>= 7;
    out.push(n === 0 ? byte : byte | 0x80);
  } while (n !== 0);
  return out;
}

const vec = (items: number[][]): number[] => [...uleb(items.length), ...items.flat()];
const section = (id: number, body: number[]): number[] => [id, ...uleb(body.length), ...body];
const name = (s: string): number[] => vec([...Buffer.from(s, 'utf8')].map((b) => [b]));
const simd = (op: number, ...immediates: number[]): number[] => [OP.simd, ...uleb(op), ...immediates];
/** memarg: alignment exponent, then the constant byte offset added to the address. */
const memarg = (alignLog2: number, offset: number): number[] => [alignLog2, ...uleb(offset)];
const get = (local: number): number[] => [OP.localGet, ...uleb(local)];
const set = (local: number): number[] => [OP.localSet, ...uleb(local)];
const tee = (local: number): number[] => [OP.localTee, ...uleb(local)];
/** i64.store of the value on the stack at byte `offset` (address 0 plus the memarg offset). */
const storeI64At = (offset: number, value: number[]): number[] => [
  OP.i32Const,
  0,
  ...value,
  OP.i64Store,
  ...memarg(3, offset),
];

// Locals: parameters 0 base, 1 cpus, 2 stride; i32 end, ptr; i64 lo, hi, total; v128 word; then per pair of fields
// p two i64x2 accumulators: the u64s themselves (wrapping) and their high halves.
const [BASE, CPUS, STRIDE, END, PTR, LO, HI, TOTAL, WORD] = [0, 1, 2, 3, 4, 5, 6, 7, 8];
const words = (p: number): number => 9 + 2 * p;
const highs = (p: number): number => 10 + 2 * p;

/**
 * One pass over every CPU for the pairs of fields `pass`, ptr from base to end by stride: words[p] += v and
 * highs[p] += v >> 32 for v the pair's two u64s (v128.load64_zero for a last, unpaired field).
 */
function sumPass(pass: readonly number[], fields: number): number[] {
  const adds = pass.flatMap((p) => [
    ...get(PTR),
    ...simd(2 * p + 1 < fields ? SIMD.v128Load : SIMD.v128Load64Zero, ...memarg(3, 16 * p)),
    ...tee(WORD),
    ...get(words(p)),
    ...simd(SIMD.i64x2Add),
    ...set(words(p)),
    ...get(WORD),
    OP.i32Const,
    32,
    ...simd(SIMD.i64x2ShrU),
    ...get(highs(p)),
    ...simd(SIMD.i64x2Add),
    ...set(highs(p)),
  ]);
  return [
    // block { ptr = base; if (ptr >= end) break; loop { adds; ptr += stride; if (ptr < end) continue } }
    OP.block,
    OP.voidType,
    ...get(BASE),
    ...tee(PTR),
    ...get(END),
    OP.i32GeU,
    OP.brIf,
    0,
    OP.loop,
    OP.voidType,
    ...adds,
    ...get(PTR),
    ...get(STRIDE),
    OP.i32Add,
    ...tee(PTR),
    ...get(END),
    OP.i32LtU,
    OP.brIf,
    0,
    OP.end,
    OP.end,
  ];
}

/**
 * Field f's exact sum as two u64s. With total = the u64s' sum mod 2^64 and hi = their high halves' sum (exact), the
 * low halves' sum is lo = (total - (hi << 32)) mod 2^64 (exact: below 2^64). The true sum lo + hi * 2^32 is
 * carry * 2^64 + total, carry = (hi >> 32) + (1 if lo + (hi << 32) wrapped, i.e. total < lo): total at 8f, carry at
 * 8 * (fields + f).
 */
function joinField(f: number, fields: number): number[] {
  const lane = (local: number) => [...get(local), ...simd(SIMD.i64x2ExtractLane, f % 2)];
  const wrapped = [...get(TOTAL), ...get(LO), OP.i64LtU, OP.i64ExtendI32U];
  return [
    ...lane(words(f >> 1)),
    ...set(TOTAL),
    ...lane(highs(f >> 1)),
    ...set(HI),
    ...get(TOTAL),
    ...get(HI),
    OP.i64Const,
    32,
    OP.i64Shl,
    OP.i64Sub,
    ...set(LO),
    ...storeI64At(8 * f, get(TOTAL)),
    ...storeI64At(8 * (fields + f), [...get(HI), OP.i64Const, 32, OP.i64ShrU, ...wrapped, OP.i64Add]),
  ];
}

/**
 * The module's bytes for values of `fields` u64 fields: a memory (exported as `memory`, one page to start) and
 * `sum(base, cpus, stride)`, which leaves each field's total and carry (joinField) in the first 16 * fields bytes.
 */
export function perCpuSumModule(fields: number, pairsPerPass = PAIRS_PER_PASS): Uint8Array<ArrayBuffer> {
  const body = [...get(BASE), ...get(CPUS), ...get(STRIDE), OP.i32Mul, OP.i32Add, ...set(END)];
  const pairs = Math.ceil(fields / 2);
  for (let first = 0; first < pairs; first += pairsPerPass) {
    const pass = Array.from({ length: Math.min(pairsPerPass, pairs - first) }, (_, i) => first + i);
    body.push(...sumPass(pass, fields));
  }
  for (let f = 0; f < fields; f++) body.push(...joinField(f, fields));
  body.push(OP.end);
  const locals = vec([
    [2, I32],
    [3, I64],
    [...uleb(1 + 2 * pairs), V128],
  ]);
  const code = [...locals, ...body];
  return new Uint8Array([
    ...[0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00], // "\0asm", version 1
    ...section(1, vec([[0x60, ...vec([[I32], [I32], [I32]]), ...vec([])]])), // type 0: (i32, i32, i32) -> ()
    ...section(3, vec([[0]])), // function 0 has type 0
    ...section(5, vec([[0x00, 1]])), // memory 0: at least one 64 KiB page, no maximum
    ...section(
      7,
      vec([
        [...name('memory'), 0x02, 0],
        [...name('sum'), 0x00, 0],
      ]),
    ),
    ...section(10, vec([[...uleb(code.length), ...code]])),
  ]);
}

/** The sum function and the memory it reads, for values of `fields` u64 fields. */
export interface PerCpuSumInstance {
  memory: WebAssembly.Memory;
  sum: (base: number, cpus: number, stride: number) => void;
}

export function instantiatePerCpuSum(fields: number, pairsPerPass = PAIRS_PER_PASS): PerCpuSumInstance {
  const instance = new WebAssembly.Instance(new WebAssembly.Module(perCpuSumModule(fields, pairsPerPass)));
  const { memory, sum } = instance.exports as unknown as PerCpuSumInstance;
  return { memory, sum };
}
