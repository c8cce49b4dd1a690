// Old against new: xdp/carnx.bpf.o and the reference classifier (test/fixtures/reference-classifier: the plain one the
// per-packet work of issue #13 started from) count the same frames, counter for counter, at XDP and at TC, GSO included.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { COUNTERS_SIZE, decodeCounters, type InterfaceCounters } from '../../src/bpf/counter-layout.js';
import { BpfError } from '../../src/bpf/bpf-error.js';
import { type BpfObject, libbpf } from '../../src/bpf/libbpf.js';
import { catalogue } from '../fixtures/catalogue.js';
import { diffCounters } from '../fixtures/expected-counts.js';
import { ETH_P, type Frame, IPPROTO, ipv4, ipv6, otherEthertype, tcp, udp } from '../fixtures/frames.js';
import { reported } from '../fixtures/hooks.js';
import { CARNX_OBJECT } from '../fixtures/loaded-program.js';
import { requireRoot } from '../fixtures/privileges.js';

const REFERENCE_SOURCE = fileURLToPath(
  new URL('../../../test/fixtures/reference-classifier/carnx.bpf.c', import.meta.url),
);
/** carnx_counters.h comes from xdp/: both programs count into the one layout. */
const XDP_DIR = fileURLToPath(new URL('../../../xdp/', import.meta.url));
const ARCH_INCLUDE = `/usr/include/${process.arch === 'arm64' ? 'aarch64' : 'x86_64'}-linux-gnu`;
const RANDOM_FRAMES = 10_000;
const FLIPPED_FRAMES = 10_000;

/** One program of an object, loaded alone, and its counters. */
class Counting {
  readonly #object: BpfObject;
  readonly fd: number;
  readonly #counters: number;

  constructor(path: string, program: string) {
    this.#object = libbpf().openObject(path);
    try {
      this.#object.loadOnly([program]);
      this.#object.load();
      this.fd = this.#object.programFd(program);
      this.#counters = this.#object.mapFd('carnx_counters');
    } catch (err) {
      this.#object.close();
      throw err;
    }
  }

  counters(): InterfaceCounters {
    return decodeCounters(libbpf().lookupPerCpuU64Sums(this.#counters, 0, COUNTERS_SIZE, 'differential'));
  }

  /** What one run on `frame` (with the context `ctx`, if any) added to the counters; 'refused' when the kernel would
   * not run it (a tc test run wants an IPv4 or IPv6 frame's network header whole: EINVAL). */
  delta(frame: Buffer, ctx?: Buffer): InterfaceCounters | 'refused' {
    const before = this.counters();
    try {
      libbpf().testRun(this.fd, frame, 1, ctx);
    } catch (err) {
      if (err instanceof BpfError && err.code === 'EINVAL') return 'refused';
      throw err;
    }
    return diffCounters(this.counters(), before);
  }

  close(): void {
    this.#object.close();
  }
}

/** xorshift32: reproducible frames from a printed seed. */
function prng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x;
  };
}

/** Every TCP flags byte, on IPv4, IPv6 and tagged IPv4: each switch case and the walk past them. */
function everyTcpFlags(): Buffer[] {
  return Array.from({ length: 256 }, (_, flags) => [
    ipv4('', tcp(flags)).bytes,
    ipv6('', tcp(flags, 10)).bytes,
    ipv4('', tcp(flags, 3, 6), { vlanTags: [ETH_P.vlan] }).bytes,
  ]).flat();
}

/** The catalogue whole and cut at every length, frames at every size-bucket edge, every flags byte. */
function craftedFrames(): Buffer[] {
  const cuts = catalogue().flatMap((f) =>
    Array.from({ length: f.bytes.length - 13 }, (_, i) => f.bytes.subarray(0, 14 + i)),
  );
  const sizes = [14, 60, 64, 65, 127, 128, 255, 256, 511, 512, 1023, 1024, 1518, 1519, 9000, 9001, 9100];
  const edges = sizes.map((size) => otherEthertype('', ETH_P.lldp, size - 14).bytes);
  const udpEdges = sizes.filter((s) => s >= 14 + 20 + 8).map((s) => ipv4('', udp(s - 14 - 20 - 8)).bytes);
  return [...cuts, ...edges, ...udpEdges, ...everyTcpFlags()];
}

/** Random frames (half with a real ethertype) and bit-flipped cuts of the catalogue, as the fuzz test makes them. */
function fuzzFrames(seed: number): Buffer[] {
  const next = prng(seed);
  const seeds = catalogue().map((f) => f.bytes);
  const frames: Buffer[] = [];
  for (let i = 0; i < RANDOM_FRAMES; i++) {
    const frame = Buffer.alloc(14 + (next() % 200));
    for (let j = 0; j < frame.length; j++) frame[j] = next() & 0xff;
    if (i % 2 === 0) frame.writeUInt16BE([0x0800, 0x86dd, 0x0806, 0x8100, 0x88a8][next() % 5]!, 12);
    frames.push(frame);
  }
  for (let i = 0; i < FLIPPED_FRAMES; i++) {
    const source = seeds[next() % seeds.length]!;
    const frame = Buffer.from(source.subarray(0, 14 + (next() % (source.length - 13))));
    const flips = 1 + (next() % 8);
    for (let f = 0; f < flips; f++) frame[next() % frame.length]! ^= 1 << (next() % 8);
    frames.push(frame);
  }
  return frames;
}

/** struct __sk_buff as BPF_PROG_TEST_RUN takes it: only the GSO fields set (offsets from linux/bpf.h). */
function skbContext(wireLen: number, segs: number, gsoSize: number): Buffer {
  const ctx = Buffer.alloc(192);
  ctx.writeUInt32LE(wireLen, 160);
  ctx.writeUInt32LE(segs, 164);
  ctx.writeUInt32LE(gsoSize, 176);
  return ctx;
}

/** Frames a GSO skb could be: TCP and UDP with payload, tagged, with IPv6 extension headers and TCP options. */
function gsoFrames(): Frame[] {
  return [
    ipv4('ipv4 tcp PSH-ACK 3000', tcp(0x18, 3000)),
    ipv4('ipv4 tcp FIN-PSH-ACK-CWR 1000 with options', tcp(0x99, 1000, 8)),
    ipv6('ipv6 tcp ACK-ECE 2000', tcp(0x50, 2000)),
    ipv6('ipv6 HBH tcp ACK 1500', tcp(0x10, 1500), { extensions: [IPPROTO.hopopts] }),
    ipv4('802.1Q ipv4 tcp ACK 1200', tcp(0x10, 1200), { vlanTags: [ETH_P.vlan] }),
    ipv4('ipv4 udp 2500', udp(2500)),
    ipv4('ipv4 tcp SYN 40', tcp(0x02, 40)),
  ];
}

const Differential = suite('classifier: new against the reference');
let work = '';
let reference = '';
let seed = 0;

Differential.before(
  reported(() => {
    requireRoot('BPF_PROG_TEST_RUN');
    work = mkdtempSync(join(tmpdir(), 'carnx-differential-'));
    reference = join(work, 'reference.bpf.o');
    execFileSync('clang', [
      '-O2',
      '-g',
      '-target',
      'bpf',
      `-I${ARCH_INCLUDE}`,
      `-I${XDP_DIR}`,
      '-c',
      REFERENCE_SOURCE,
      '-o',
      reference,
    ]);
    seed = Number(process.env.CARNX_FUZZ_SEED ?? Date.now() % 2 ** 31);
  }),
);
Differential.after(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

/** Runs both programs on every frame and compares what each added; returns how many frames both counted. */
function compare(program: string, frames: Buffer[], label: string, ctx?: () => Buffer): number {
  let counted = 0;
  const mine = new Counting(CARNX_OBJECT, program);
  try {
    const theirs = new Counting(reference, program);
    try {
      for (const frame of frames) {
        const context = ctx?.();
        const delta = mine.delta(frame, context);
        assert.equal(
          delta,
          theirs.delta(frame, context),
          `${label}: ${program} on ${frame.toString('hex')}${context ? ` with ${context.subarray(160, 180).toString('hex')}` : ''}`,
        );
        if (delta !== 'refused') counted++;
      }
      return counted;
    } finally {
      theirs.close();
    }
  } finally {
    mine.close();
  }
}

for (const program of ['carnx_count', 'carnx_count_tc']) {
  Differential(`${program}: crafted frames, every cut, every flags byte, every bucket edge`, () => {
    const counted = compare(program, craftedFrames(), 'crafted');
    assert.ok(counted > 2500, `${counted} frames counted by both`);
  });

  Differential(`${program}: ${RANDOM_FRAMES + FLIPPED_FRAMES} random and bit-flipped frames`, () => {
    const counted = compare(program, fuzzFrames(seed), `seed ${seed}`);
    assert.ok(counted > (RANDOM_FRAMES + FLIPPED_FRAMES) / 2, `seed ${seed}: ${counted} frames counted by both`);
  });
}

Differential('carnx_count_tc: GSO skbs over a grid of gso_segs, gso_size and wire_len', () => {
  let runs = 0;
  for (const frame of gsoFrames()) {
    const len = frame.bytes.length;
    const cases: Buffer[] = [];
    for (const segs of [0, 1, 2, 3, 7, 45]) {
      for (const gsoSize of [0, 1, 8, 100, 536, 1448]) {
        for (const wireLen of [0, len, len + 54, len + 3 * 66, len + 1000])
          cases.push(skbContext(wireLen, segs, gsoSize));
      }
    }
    let i = 0;
    runs += compare(
      'carnx_count_tc',
      cases.map(() => frame.bytes),
      frame.name,
      () => cases[i++]!,
    );
  }
  assert.ok(runs > 1000, `${runs} GSO cases counted by both`);
});

Differential('carnx_count_tc: GSO skbs of every class, cut short and malformed as the crafted frames are', () => {
  const frames: Buffer[] = [];
  const contexts: Buffer[] = [];
  for (const frame of craftedFrames()) {
    for (const [segs, gsoSize, extra] of [
      [0, 100, 0],
      [3, 536, 54],
      [45, 1448, 3 * 66],
    ] as const) {
      frames.push(frame);
      contexts.push(skbContext(frame.length + extra, segs, gsoSize));
    }
  }
  let i = 0;
  const counted = compare('carnx_count_tc', frames, 'crafted GSO', () => contexts[i++]!);
  assert.ok(counted > 7500, `${counted} GSO cases counted by both`);
});

Differential.run();
