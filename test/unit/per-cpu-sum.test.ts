// The per-CPU sum (WebAssembly and its plain JavaScript fallback) equals adding the u64s as bigints, in every case.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { fileURLToPath } from 'node:url';
import { COUNTERS_SIZE, COUNTERS_WORDS } from '../../src/bpf/counter-layout.js';
import { PerCpuSummer, sumPerCpuU64Js } from '../../src/bpf/per-cpu-sum.js';
import { PAIRS_PER_PASS, perCpuSumModule } from '../../src/bpf/per-cpu-sum-wasm.js';
import { command } from '../fixtures/command.js';

const ALL_ONES = 0xffff_ffff_ffff_ffffn;

/** A small deterministic generator, so a failure can be replayed. */
function* words(seed: number): Generator<bigint> {
  let x = BigInt(seed) | 1n;
  for (;;) {
    x = (x * 6364136223846793005n + 1442695040888963407n) & ALL_ONES;
    yield x;
  }
}

/** `cpus` values of `fields` u64s, `stride` bytes apart (padding filled with junk), and the bigint sum of each field. */
function perCpu(cpus: number, fields: number, stride: number, word: (cpu: number, field: number) => bigint) {
  const raw = Buffer.alloc(cpus * stride, 0xa5);
  const want = new Array<bigint>(fields).fill(0n);
  for (let cpu = 0; cpu < cpus; cpu++) {
    for (let f = 0; f < fields; f++) {
      const w = word(cpu, f);
      raw.writeBigUInt64LE(w, cpu * stride + f * 8);
      want[f] = (want[f] as bigint) + w;
    }
  }
  return { raw, want };
}

/** Field 0 all ones, field 1 only high halves, field 2 only low halves, field 3 zero, the rest pseudo-random. */
function extremes(seed: number): (cpu: number, field: number) => bigint {
  const gen = words(seed);
  const fixed = [ALL_ONES, 0xffff_ffff_0000_0000n, 0xffff_ffffn, 0n];
  return (_cpu, f) => fixed[f] ?? (gen.next().value as bigint);
}

test('the module validates for every field count up to twice the layout', () => {
  for (let fields = 1; fields <= 2 * COUNTERS_WORDS; fields++) {
    assert.ok(WebAssembly.validate(perCpuSumModule(fields)), `${fields} fields`);
  }
});

test('exact for field counts around the pass size, CPU counts 0 to 257, padded strides', () => {
  const summer = new PerCpuSummer();
  const fieldCounts = [1, 2, 2 * PAIRS_PER_PASS - 1, 2 * PAIRS_PER_PASS, 2 * PAIRS_PER_PASS + 1, COUNTERS_WORDS];
  for (const fields of fieldCounts) {
    for (const cpus of [0, 1, 2, 3, 64, 257]) {
      for (const stride of [fields * 8, fields * 8 + 8]) {
        const { raw, want } = perCpu(cpus, fields, stride, extremes(fields * 1000 + cpus));
        const label = `${fields} fields, ${cpus} CPUs, stride ${stride}`;
        assert.equal(summer.sum(raw, cpus, stride, fields), want, `copied in: ${label}`);
        const buf = summer.buffer(cpus * stride, fields);
        raw.copy(buf);
        assert.equal(summer.sum(buf, cpus, stride, fields), want, `read in place: ${label}`);
      }
    }
  }
});

test('a value that ends exactly where the memory ends (an unpaired last field reads 8 bytes, not 16)', () => {
  for (const fields of [1, 3, 5]) {
    const summer = new PerCpuSummer();
    // Results take 16 bytes per field from 0, rounded up to 64; the value fills the rest of some 64 KiB pages.
    const stride = fields * 8;
    const base = Math.ceil((16 * fields) / 64) * 64;
    const pages = [1, 2, 3].find((n) => (n * 65_536 - base) % stride === 0) ?? 0;
    const cpus = (pages * 65_536 - base) / stride;
    assert.ok(cpus > 0);
    const { raw, want } = perCpu(cpus, fields, stride, extremes(fields));
    assert.equal(summer.sum(raw, cpus, stride, fields), want, `${fields} fields`);
  }
});

test('past 2^53 and 2^64: the carry is kept, up to 2^21 - 1 CPUs of all ones', () => {
  const summer = new PerCpuSummer();
  const fields = 4;
  // 256 CPUs: field 0 all ones (255 carries); field 1 reaches 2^53 (2^45 each), field 2 2^64 (2^56 each); field 3
  // alternates all ones and 1, so the low halves' sum carries into the high half and the last addition wraps.
  const word = (cpu: number, f: number) => [ALL_ONES, 1n << 45n, 1n << 56n, cpu % 2 === 0 ? ALL_ONES : 1n][f] as bigint;
  const big = perCpu(256, fields, 32, word);
  assert.equal(summer.sum(big.raw, 256, 32, fields), [256n * ALL_ONES, 1n << 53n, 1n << 64n, 128n << 64n]);
  assert.equal(summer.sum(perCpu(2, fields, 32, word).raw, 2, 32, fields), [
    2n * ALL_ONES,
    1n << 46n,
    1n << 57n,
    1n << 64n,
  ]);
  // The most CPUs the exactness argument covers: every lane sum stays below 2^53.
  const cpus = (1 << 21) - 1;
  const { raw } = perCpu(cpus, 1, 8, () => ALL_ONES);
  assert.equal(summer.sum(raw, cpus, 8, 1), [BigInt(cpus) * ALL_ONES]);
  assert.throws(() => summer.sum(Buffer.alloc(8 << 21), 1 << 21, 8, 1), /cannot hold/);
});

test('a buffer at an odd offset, a value too short, a bigger value after a smaller one', () => {
  const summer = new PerCpuSummer();
  const { raw, want } = perCpu(256, COUNTERS_WORDS, COUNTERS_SIZE, extremes(7));
  const unaligned = Buffer.alloc(raw.length + 1).subarray(1);
  raw.copy(unaligned);
  assert.equal(summer.sum(unaligned, 256, COUNTERS_SIZE, COUNTERS_WORDS), want);
  assert.throws(() => summer.sum(raw, 257, COUNTERS_SIZE, COUNTERS_WORDS), /cannot hold/);
  assert.throws(() => summer.sum(raw, 256, COUNTERS_SIZE + 4, COUNTERS_WORDS), /cannot hold/);
  // 4096 CPUs grow the memory past its first pages; the earlier, smaller buffer is given up, and sums stay exact.
  const small = summer.buffer(COUNTERS_SIZE, COUNTERS_WORDS);
  const large = perCpu(4096, COUNTERS_WORDS, COUNTERS_SIZE, extremes(8));
  const buf = summer.buffer(4096 * COUNTERS_SIZE, COUNTERS_WORDS);
  assert.is.not(buf, small);
  large.raw.copy(buf);
  assert.equal(summer.sum(buf, 4096, COUNTERS_SIZE, COUNTERS_WORDS), large.want);
  assert.equal(summer.sum(raw, 256, COUNTERS_SIZE, COUNTERS_WORDS), want, 'then a smaller one again');
});

test('the JavaScript fallback: little- and big-endian halves, odd CPU counts', () => {
  for (const cpus of [0, 1, 3, 256]) {
    const { raw, want } = perCpu(cpus, 5, 48, extremes(cpus));
    assert.equal(sumPerCpuU64Js(raw, cpus, 48, 5, true), want, `little-endian, ${cpus} CPUs`);
    // A big-endian host's u64 holds its high 32-bit half first: swap the halves to lay the same values out that way.
    const swapped = Buffer.from(raw);
    for (let at = 0; at < swapped.length; at += 8) {
      swapped.writeUInt32LE(raw.readUInt32LE(at + 4), at);
      swapped.writeUInt32LE(raw.readUInt32LE(at), at + 4);
    }
    assert.equal(sumPerCpuU64Js(swapped, cpus, 48, 5, false), want, `high half first, ${cpus} CPUs`);
  }
  const { raw, want } = perCpu(3, 2, 16, extremes(3));
  assert.equal(sumPerCpuU64Js(Buffer.concat([Buffer.alloc(1), raw]).subarray(1), 3, 16, 2, true), want, 'odd offset');
});

test('a summer told not to use WebAssembly gives the same sums, copied in or read in place', () => {
  const summer = new PerCpuSummer({ webAssembly: false });
  assert.is(summer.usesWebAssembly, false);
  assert.is(new PerCpuSummer().usesWebAssembly, true, 'this host is little-endian and has WebAssembly SIMD');
  const { raw, want } = perCpu(257, COUNTERS_WORDS, COUNTERS_SIZE, extremes(9));
  assert.equal(summer.sum(raw, 257, COUNTERS_SIZE, COUNTERS_WORDS), want);
  const buf = summer.buffer(raw.length, COUNTERS_WORDS);
  raw.copy(buf);
  assert.equal(summer.sum(buf, 257, COUNTERS_SIZE, COUNTERS_WORDS), want);
});

test('without WebAssembly (node --jitless) the summer falls back to JavaScript, exact past 2^64', () => {
  const module = fileURLToPath(new URL('../../src/bpf/per-cpu-sum.js', import.meta.url));
  const script = [
    `const { PerCpuSummer } = await import(${JSON.stringify(module)});`,
    'const s = new PerCpuSummer();',
    'const b = s.buffer(16, 1);',
    'b.writeBigUInt64LE(2n ** 64n - 1n, 0);',
    'b.writeBigUInt64LE(1n, 8);',
    "console.log([typeof WebAssembly, s.usesWebAssembly, s.sum(b, 2, 8, 1)[0]].join(' '));",
  ].join('\n');
  const out = command(process.execPath, ['--jitless', '--no-warnings', '--input-type=module', '-e', script]);
  assert.is(out.trim(), `undefined false ${2n ** 64n}`);
});

test.run();
