// Protobuf wire format for the OTLP metrics encoder: varint sizes, a writer over an exact-size buffer, and attributes
// (repeated KeyValue) encoded to bytes once, the way the OTel serializer encodes them.
import type { Attributes, HrTime } from '@opentelemetry/api';

/** Wire types: varint, 64-bit, length-delimited. */
const VARINT = 0;
const I64 = 1;
const LEN = 2;

/** The one-byte key of a field numbered below 16. */
export const key = (field: number, wireType: number): number => (field << 3) | wireType;
export const lenKey = (field: number): number => key(field, LEN);
export const i64Key = (field: number): number => key(field, I64);
export const varintKey = (field: number): number => key(field, VARINT);

const TWO_32 = 4_294_967_296;

/** Bytes of a varint of a non-negative integer below 2^53 (lengths, enums, counts). */
export function varintSize(value: number): number {
  let size = 1;
  while (value >= 128) {
    value = Math.floor(value / 128);
    size++;
  }
  return size;
}

/** Bytes of a length-delimited field (one-byte key) whose body is `size` bytes. */
export const fieldSize = (size: number): number => 1 + varintSize(size) + size;

/** An HrTime the encoder takes: whole non-negative seconds and nanoseconds below a second. Others go to OTel's. */
export function isPlainTime(time: HrTime): boolean {
  const s = time[0];
  const ns = time[1];
  return Number.isSafeInteger(s) && s >= 0 && Number.isInteger(ns) && ns >= 0 && ns < 1e9;
}

/** Writes into a buffer of the exact size of the message, computed beforehand. */
export class WireWriter {
  pos = 0;
  private readonly view: DataView;
  /** The same bytes as a plain Uint8Array: V8 copies into one faster than into a Buffer. */
  private readonly u8: Uint8Array;

  constructor(readonly buf: Buffer) {
    this.view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
    this.u8 = new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
  }

  byte(b: number): void {
    this.u8[this.pos++] = b;
  }

  /** A non-negative integer below 2^53. */
  varint(value: number): void {
    while (value >= 128) {
      this.u8[this.pos++] = (value % 128) | 128;
      value = Math.floor(value / 128);
    }
    this.u8[this.pos++] = value;
  }

  /** Little-endian 64 bits from two 32-bit halves. */
  fixed64(lo: number, hi: number): void {
    this.view.setUint32(this.pos, lo >>> 0, true);
    this.view.setUint32(this.pos + 4, hi >>> 0, true);
    this.pos += 8;
  }

  /**
   * A JS number as fixed64/sfixed64, as OTel's writer does it: the halves of its integer part (modulo 2^64), two's
   * complement when negative. Exact for every integer double below 2^64, beyond 2^53 too (those are whole numbers).
   */
  /** A bigint as fixed64/sfixed64: its value modulo 2^64, exact where a double is not (above 2^53). */
  int64Exact(value: bigint): void {
    const u = BigInt.asUintN(64, value);
    this.fixed64(Number(u & 0xffff_ffffn), Number(u >> 32n));
  }

  int64(value: number): void {
    if (value >= 0) {
      this.fixed64(value >>> 0, (value / TWO_32) >>> 0);
      return;
    }
    const lo = -value >>> 0;
    const hi = (-value / TWO_32) >>> 0;
    const negLo = (~lo + 1) >>> 0;
    this.fixed64(negLo, ~hi + (negLo === 0 ? 1 : 0));
  }

  /** A JS number as fixed64, as OTel's writer writes counts: each half modulo 2^32 (exact for integers below 2^64). */
  uint64(value: number): void {
    this.fixed64(value >>> 0, (value / TWO_32) >>> 0);
  }

  double(value: number): void {
    this.view.setFloat64(this.pos, value, true);
    this.pos += 8;
  }

  /**
   * An HrTime (isPlainTime) as fixed64 nanoseconds. Points share their time arrays (one end time per collection, one
   * start time per series), so the last two arrays written are remembered by identity: nothing can change them while
   * one request is written.
   */
  time(time: HrTime): void {
    if (time === this.lastTime) {
      this.fixed64(this.lastLo, this.lastHi);
      return;
    }
    if (time === this.prevTime) {
      this.fixed64(this.prevLo, this.prevHi);
      return;
    }
    this.prevTime = this.lastTime;
    this.prevLo = this.lastLo;
    this.prevHi = this.lastHi;
    this.lastTime = time;
    this.nanos(time);
    this.fixed64(this.lastLo, this.lastHi);
  }

  private lastTime: HrTime | undefined;
  private lastLo = 0;
  private lastHi = 0;
  private prevTime: HrTime | undefined;
  private prevLo = 0;
  private prevHi = 0;

  /** lastLo, lastHi: the halves of time's nanoseconds; seconds split at 2^16 so every product stays exact. */
  private nanos(time: HrTime): void {
    const s = time[0];
    const ns = time[1];
    const sLow = s % 65_536;
    const high = ((s - sLow) / 65_536) * 1e9; // below 2^48: exact; the value is high * 2^16 + low
    const low = sLow * 1e9 + ns; // below 2^46: exact
    const highLow = (high % 65_536) * 65_536;
    const lowLow = low % TWO_32;
    const lo = highLow + lowLow; // below 2^33
    const carry = lo >= TWO_32 ? 1 : 0;
    this.lastLo = lo - carry * TWO_32;
    this.lastHi = (Math.floor(high / 65_536) + Math.floor(low / TWO_32) + carry) >>> 0;
  }

  bytes(bytes: Uint8Array): void {
    this.u8.set(bytes, this.pos);
    this.pos += bytes.length;
  }

  /** A string field's length and UTF-8 bytes; `size` is Buffer.byteLength(text). */
  string(text: string, size: number): void {
    this.varint(size);
    this.pos += this.buf.write(text, this.pos, size, 'utf8');
  }

  /** A whole string field with a one-byte key. */
  stringField(fieldKey: number, text: string): void {
    this.byte(fieldKey);
    this.string(text, Buffer.byteLength(text, 'utf8'));
  }
}

/** A string field's size with a one-byte key. */
export const stringFieldSize = (text: string): number => fieldSize(Buffer.byteLength(text, 'utf8'));

/** Bytes of a length-delimited field: key, length, body. */
function delimited(fieldKey: number, body: Uint8Array): Buffer {
  let length = body.length;
  const out = Buffer.allocUnsafe(fieldSize(length));
  let pos = 0;
  out[pos++] = fieldKey;
  while (length >= 128) {
    out[pos++] = (length % 128) | 128;
    length = Math.floor(length / 128);
  }
  out[pos++] = length;
  out.set(body, pos);
  return out;
}

/** An int64 varint (ten bytes when negative): for integer attribute values, exact however large. */
function int64Varint(value: number): Buffer {
  let v = BigInt.asUintN(64, BigInt(value));
  const out: number[] = [];
  while (v >= 128n) {
    out.push(Number(v & 127n) | 128);
    v >>= 7n;
  }
  out.push(Number(v));
  return Buffer.from(out);
}

const MIN_INT64 = -(2 ** 63);
const MAX_INT64 = 2 ** 63;

/**
 * An AnyValue message (opentelemetry-proto common/v1): string 1, bool 2, int 3, double 4, array 5, kvlist 6, bytes 7.
 * A number is an int when it is an integer within int64, else a double; anything else is an empty AnyValue. The same
 * choices as OTel's serializer, so both send the same value.
 */
function anyValue(value: unknown): Buffer {
  if (typeof value === 'string') return delimited(lenKey(1), Buffer.from(value, 'utf8'));
  if (typeof value === 'boolean') return Buffer.from([varintKey(2), value ? 1 : 0]);
  if (typeof value === 'number') {
    if (Number.isInteger(value) && value >= MIN_INT64 && value < MAX_INT64) {
      return Buffer.concat([Buffer.from([varintKey(3)]), int64Varint(value)]);
    }
    const out = Buffer.allocUnsafe(9);
    out[0] = i64Key(4);
    out.writeDoubleLE(value, 1);
    return out;
  }
  if (value instanceof Uint8Array) return delimited(lenKey(7), value);
  if (Array.isArray(value)) {
    return delimited(lenKey(5), Buffer.concat(value.map((item: unknown) => delimited(lenKey(1), anyValue(item)))));
  }
  if (typeof value === 'object' && value !== null) return delimited(lenKey(6), keyValues(value, 1));
  return Buffer.alloc(0);
}

/** Each own enumerable key as a KeyValue field (key 1, value 2), in for-in order; `pair` encodes one. */
export function keyValues(attributes: object, field: number, pair = keyValue): Buffer {
  const parts: Buffer[] = [];
  for (const name in attributes) {
    if (!Object.hasOwn(attributes, name)) continue;
    parts.push(pair(name, (attributes as Record<string, unknown>)[name], field));
  }
  return Buffer.concat(parts);
}

export function keyValue(name: string, value: unknown, field: number): Buffer {
  const kv = Buffer.concat([delimited(lenKey(1), Buffer.from(name, 'utf8')), delimited(lenKey(2), anyValue(value))]);
  return delimited(lenKey(field), kv);
}

/** Attributes as repeated KeyValue fields numbered `field`. */
export function encodeAttributes(attributes: Attributes | undefined, field: number): Buffer {
  return attributes === undefined ? Buffer.alloc(0) : keyValues(attributes, field);
}
