// Sums a per-CPU map value made of u64 fields over every CPU, exactly, without a bigint per word.
import { endianness } from 'node:os';

/** Which 32-bit half of a native u64 comes first in memory. */
const LOW_FIRST = endianness() === 'LE';
/** Below this many CPUs a sum of 32-bit halves (each < 2^32) stays below 2^53, exact in a double. */
const MAX_CPUS = 1 << 21;

/**
 * `raw` holds `cpus` values `stride` bytes apart (round_up(value_size, 8)), each `fields` native-endian u64s. Each
 * field's low and high 32-bit halves are summed as doubles (exact: below 2^53 for fewer than 2^21 CPUs) and joined
 * into one bigint at the end: the same sums as adding the u64s as bigints, at a fraction of the cost (a bigint add
 * allocates; 500 interfaces x 256 CPUs x 46 fields is 5.9 million of them).
 */
export function sumPerCpuU64(raw: Buffer, cpus: number, stride: number, fields: number): bigint[] {
  if (cpus >= MAX_CPUS || stride % 8 !== 0 || fields * 8 > stride || raw.length < cpus * stride) {
    throw new Error(`per-CPU value: ${raw.length} bytes cannot hold ${cpus} x ${fields} u64 fields ${stride} apart`);
  }
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
  const lo = LOW_FIRST ? 0 : 1;
  const sums = new Array<bigint>(fields);
  for (let i = 0; i < fields; i++) {
    sums[i] = (BigInt(acc[2 * i + 1 - lo] as number) << 32n) + BigInt(acc[2 * i + lo] as number);
  }
  return sums;
}
