// Sums a per-CPU map value made of u64 fields over every CPU, exactly, without a bigint per word.
import { endianness } from 'node:os';
import { instantiatePerCpuSum, type PerCpuSumInstance } from './per-cpu-sum-wasm.js';

/** Which 32-bit half of a native u64 comes first in memory. */
const LOW_FIRST = endianness() === 'LE';
/** Below this many CPUs a sum of 32-bit halves (each < 2^32) stays below 2^53, exact in a double. */
const MAX_CPUS = 1 << 21;
const TWO_32 = 2 ** 32;
const PAGE = 65_536;

function checkShape(raw: Buffer, cpus: number, stride: number, fields: number): void {
  if (cpus >= MAX_CPUS || stride % 8 !== 0 || fields * 8 > stride || raw.length < cpus * stride) {
    throw new Error(`per-CPU value: ${raw.length} bytes cannot hold ${cpus} x ${fields} u64 fields ${stride} apart`);
  }
}

/** The exact u64 sum of `hi` * 2^32 + `lo` (both exact integers below 2^53): a bigint from one double when it fits. */
function join(lo: number, hi: number): bigint {
  const total = hi * TWO_32 + lo;
  // Exact below 2^53; a true total of 2^53 or more rounds to at least 2^53, so this test never takes a rounded one.
  return total <= Number.MAX_SAFE_INTEGER ? BigInt(total) : (BigInt(hi) << 32n) + BigInt(lo);
}

/**
 * Sums per-CPU values in WebAssembly (SIMD, see per-cpu-sum-wasm.ts). Read each value straight into `buffer()`: the
 * sum then reads it where the kernel wrote it, with no copy. Any other Buffer is copied in first. On a big-endian
 * host, or where WebAssembly SIMD cannot be compiled, the same sums run in plain JavaScript (read + sum ~4x slower).
 */
export class PerCpuSummer {
  /** null: summing in plain JavaScript. */
  #wasm: PerCpuSumInstance | null | undefined;
  #fields = -1;
  /** Where values start in the WebAssembly memory: after the results, 16 bytes per field from 0. */
  #base = 0;
  #view: Buffer | undefined;
  /** Each field's sum mod 2^64, then its carry (multiples of 2^64), as the module leaves them; #words as u32s. */
  #totals: BigUint64Array | undefined;
  #words: Uint32Array | undefined;

  /** `webAssembly: false` sums in plain JavaScript. */
  constructor(options: { webAssembly?: boolean } = {}) {
    if (options.webAssembly === false || !LOW_FIRST) this.#wasm = null;
  }

  get usesWebAssembly(): boolean {
    return this.#wasm !== null;
  }

  /** A buffer of `bytes` bytes for a value of `fields` u64 fields, valid until the next call to buffer(). */
  buffer(bytes: number, fields: number): Buffer {
    if (this.#wasm !== null && (this.#fields !== fields || this.#wasm === undefined)) this.#instantiate(fields);
    if (this.#wasm === null || this.#wasm === undefined) {
      if (this.#view?.length !== bytes) this.#view = Buffer.alloc(bytes);
      return this.#view;
    }
    const memory = this.#wasm.memory;
    const need = this.#base + bytes;
    if (memory.buffer.byteLength < need) memory.grow(Math.ceil((need - memory.buffer.byteLength) / PAGE));
    // A grown memory has a new ArrayBuffer (the old one is detached): views are made again.
    if (this.#view?.buffer !== memory.buffer || this.#view.length !== bytes) {
      this.#view = Buffer.from(memory.buffer, this.#base, bytes);
      this.#totals = new BigUint64Array(memory.buffer, 0, fields);
      this.#words = new Uint32Array(memory.buffer, 0, 4 * fields);
    }
    return this.#view;
  }

  #instantiate(fields: number): void {
    try {
      this.#wasm = instantiatePerCpuSum(fields);
    } catch {
      // No WebAssembly (node --jitless) or no SIMD on this CPU: the same sums, in JavaScript.
      this.#wasm = null;
    }
    this.#fields = fields;
    this.#base = Math.ceil((16 * fields) / 64) * 64;
    this.#view = undefined;
  }

  /**
   * `raw` holds `cpus` values `stride` bytes apart (round_up(value_size, 8)), each `fields` native-endian u64s: the
   * sum of each field over the CPUs, exact (also past 2^64).
   */
  sum(raw: Buffer, cpus: number, stride: number, fields: number): bigint[] {
    checkShape(raw, cpus, stride, fields);
    const inPlace = this.#fields === fields && raw.buffer === this.#view?.buffer && raw.byteOffset === this.#base;
    // buffer() makes the module for this many fields, or falls back to JavaScript, if not done yet.
    const view = inPlace ? raw : this.buffer(cpus * stride, fields);
    const wasm = this.#wasm;
    if (!wasm) return sumPerCpuU64Js(raw, cpus, stride, fields, LOW_FIRST);
    if (!inPlace) raw.copy(view, 0, 0, cpus * stride);
    wasm.sum(this.#base, cpus, stride);
    const totals = this.#totals as BigUint64Array;
    const words = this.#words as Uint32Array;
    const out = new Array<bigint>(fields);
    for (let f = 0; f < fields; f++) {
      // The carry is below 2^22: its low 32-bit word (little-endian) is all of it.
      const carry = words[2 * (fields + f)] as number;
      if (carry !== 0) out[f] = (BigInt(carry) << 64n) + (totals[f] as bigint);
      // Zero (rare classes, malformed frames): one shared 0n instead of a new bigint each time.
      else out[f] = ((words[2 * f] as number) | (words[2 * f + 1] as number)) === 0 ? 0n : (totals[f] as bigint);
    }
    return out;
  }
}

let shared: PerCpuSummer | undefined;

/** PerCpuSummer.sum on one summer shared by its callers (the value is copied into its memory). */
export function sumPerCpuU64(raw: Buffer, cpus: number, stride: number, fields: number): bigint[] {
  shared ??= new PerCpuSummer();
  return shared.sum(raw, cpus, stride, fields);
}

/**
 * The same sums in plain JavaScript, for a big-endian host (WebAssembly memory is little-endian) or one without
 * WebAssembly SIMD: each field's low and high 32-bit halves are summed as doubles (exact below 2^53 for fewer than 2^21
 * CPUs) and joined at the end. `lowFirst` says which half of a u64 comes first in memory.
 */
export function sumPerCpuU64Js(raw: Buffer, cpus: number, stride: number, fields: number, lowFirst: boolean): bigint[] {
  checkShape(raw, cpus, stride, fields);
  // A Uint32Array needs 4-byte alignment; a Buffer from Buffer.alloc has it, a pooled slice may not.
  const aligned = raw.byteOffset % 4 === 0 ? raw : Buffer.from(raw);
  const halves = new Uint32Array(aligned.buffer, aligned.byteOffset, (cpus * stride) / 4);
  // One accumulator per 32-bit half, in memory order: the inner loop is a plain running sum over consecutive words.
  const n = fields * 2;
  const acc = new Float64Array(n);
  const strideHalves = stride / 4;
  const end = cpus * strideHalves;
  let base = 0;
  // Two CPUs per pass halve the accumulator loads and stores; indices are in range by the size check above.
  for (; base + strideHalves < end; base += 2 * strideHalves) {
    const next = base + strideHalves;
    for (let j = 0; j < n; j++)
      acc[j] = (acc[j] as number) + (halves[base + j] as number) + (halves[next + j] as number);
  }
  for (; base < end; base += strideHalves) {
    for (let j = 0; j < n; j++) acc[j] = (acc[j] as number) + (halves[base + j] as number);
  }
  const lo = lowFirst ? 0 : 1;
  const sums = new Array<bigint>(fields);
  for (let i = 0; i < fields; i++) sums[i] = join(acc[2 * i + lo] as number, acc[2 * i + 1 - lo] as number);
  return sums;
}
