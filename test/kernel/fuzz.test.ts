// Fuzzing the XDP program through BPF_PROG_TEST_RUN: random and bit-flipped frames always pass, untouched, counted once.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { sum } from '../../src/bpf/counter-layout.js';
import { catalogue } from '../fixtures/catalogue.js';
import { LoadedProgram, XDP_PASS } from '../fixtures/loaded-program.js';
import { requireRoot } from '../fixtures/privileges.js';

const RUNS = 120_000;

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

test(`${RUNS} random and bit-flipped frames: XDP_PASS, unchanged, each counted in exactly one class`, () => {
  requireRoot('BPF_PROG_TEST_RUN');
  const seed = Number(process.env.CARNX_FUZZ_SEED ?? Date.now() % 2 ** 31);
  const next = prng(seed);
  const seeds = catalogue().map((f) => f.bytes);
  const program = new LoadedProgram();
  try {
    let totalBytes = 0n;
    let failures = 0;
    const delta = program.delta(() => {
      for (let i = 0; i < RUNS; i++) {
        let frame: Buffer;
        if (i % 2 === 0) {
          frame = Buffer.alloc(14 + (next() % 1500));
          for (let j = 0; j < frame.length; j++) frame[j] = next() & 0xff;
          // Half of the random frames get a real ethertype so deeper parsers are reached.
          if (i % 4 === 0) frame.writeUInt16BE([0x0800, 0x86dd, 0x0806, 0x8100, 0x88a8][next() % 5]!, 12);
        } else {
          const source = seeds[next() % seeds.length]!;
          frame = Buffer.from(source.subarray(0, 14 + (next() % (source.length - 13))));
          const flips = 1 + (next() % 8);
          for (let f = 0; f < flips; f++) frame[next() % frame.length]! ^= 1 << (next() % 8);
        }
        const result = program.run(frame);
        if (result.retval !== XDP_PASS || !result.dataOut.equals(frame)) failures++;
        totalBytes += BigInt(frame.length);
      }
    });
    assert.is(failures, 0, `seed ${seed}: frames not passed unchanged`);
    assert.is(sum(delta.packets), BigInt(RUNS), `seed ${seed}: class partition`);
    assert.is(sum(delta.bytes), totalBytes, `seed ${seed}: bytes partition`);
    assert.is(sum(delta.sizeBuckets), BigInt(RUNS), `seed ${seed}: size buckets`);
    assert.ok(sum(delta.malformed) <= BigInt(RUNS), `seed ${seed}: at most one malformed layer per frame`);
  } finally {
    program.close();
  }
});

test.run();
