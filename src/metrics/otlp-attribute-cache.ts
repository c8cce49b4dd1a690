// The encoded attributes (repeated KeyValue) of every series the OTLP encoder has seen lately, by attribute object.
import type { AttributeValue, Attributes } from '@opentelemetry/api';
import { encodeAttributes, keyValue, keyValues } from './otlp-wire.js';

/** Encoded attributes: a view into one of the cache's chunks (or bytes of their own when not cached). */
export interface EncodedAttributes {
  bytes: Uint8Array;
  /** The export that used it last. */
  used: number;
}

/** Exports between sweeps; an entry unused for that long is dropped at the next one. */
const SWEEP_EVERY = 64;
const CHUNK = 64 * 1024;
const PAIRS_LIMIT = 16_384;

const isPrimitive = (v: AttributeValue | undefined): boolean =>
  typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean';

/**
 * Encoded attributes by attribute object, for one field number. Only frozen objects of primitive values are kept: they
 * cannot change after being encoded (carnx freezes the attribute objects it reuses for every export); any other object
 * is encoded every time. The bytes live side by side in a few large chunks, and the entries in a Map: tens of thousands
 * of small buffers, or a WeakMap as large, would cost every garbage collection. An entry no export used for SWEEP_EVERY
 * exports is dropped, and the chunks are compacted once dead bytes outweigh the live ones.
 */
export class AttributeCache {
  private entries = new Map<Attributes, EncodedAttributes>();
  private chunk = new Uint8Array(CHUNK);
  private chunkUsed = 0;
  private allocated = 0;
  private live = 0;
  private exports = 0;
  /**
   * KeyValue fields by key and primitive value: series share most of them (the direction, the protocol, an interface's
   * name across its metrics), so a new series costs a few lookups. Emptied at PAIRS_LIMIT, so it never grows unbounded.
   */
  private pairs = new Map<string, Map<unknown, Buffer>>();
  private pairCount = 0;

  constructor(private readonly field: number) {}

  /** Call once per export, before its get()s. */
  beginExport(): void {
    this.exports++;
    if (this.exports % SWEEP_EVERY === 0) this.sweep();
  }

  get(attributes: Attributes | undefined): EncodedAttributes {
    if (attributes === undefined || attributes === null) return NONE;
    const hit = this.entries.get(attributes);
    if (hit !== undefined) {
      hit.used = this.exports;
      return hit;
    }
    if (!(Object.isFrozen(attributes) && Object.values(attributes).every(isPrimitive))) {
      return { bytes: encodeAttributes(attributes, this.field), used: this.exports };
    }
    const bytes = keyValues(attributes, this.field, (name, value) => this.pair(name, value));
    const entry = this.store(bytes);
    this.entries.set(attributes, entry);
    this.live += entry.bytes.length;
    return entry;
  }

  /** Entries kept (tests). */
  get size(): number {
    return this.entries.size;
  }

  /** A copy of `bytes` in the current chunk, as a view (views share their chunk's memory: no buffer of their own). */
  private store(bytes: Uint8Array): EncodedAttributes {
    if (this.chunkUsed + bytes.length > this.chunk.length) {
      this.chunk = new Uint8Array(Math.max(CHUNK, bytes.length));
      this.chunkUsed = 0;
    }
    const view = this.chunk.subarray(this.chunkUsed, this.chunkUsed + bytes.length);
    view.set(bytes);
    this.chunkUsed += bytes.length;
    this.allocated += bytes.length;
    return { bytes: view, used: this.exports };
  }

  private sweep(): void {
    for (const [attributes, entry] of this.entries) {
      if (this.exports - entry.used < SWEEP_EVERY) continue;
      this.entries.delete(attributes);
      this.live -= entry.bytes.length;
    }
    if (this.live * 2 >= this.allocated) return;
    // Compact: the live entries move to fresh chunks; the old ones go with the dead entries.
    const entries = [...this.entries.values()];
    this.chunk = new Uint8Array(CHUNK);
    this.chunkUsed = 0;
    this.allocated = 0;
    for (const entry of entries) entry.bytes = this.store(entry.bytes).bytes;
  }

  private pair(name: string, value: unknown): Buffer {
    let byValue = this.pairs.get(name);
    const hit = byValue?.get(value);
    if (hit !== undefined) return hit;
    if (this.pairCount >= PAIRS_LIMIT) {
      this.pairs = new Map();
      this.pairCount = 0;
      byValue = undefined;
    }
    if (byValue === undefined) {
      byValue = new Map();
      this.pairs.set(name, byValue);
    }
    const bytes = keyValue(name, value, this.field);
    byValue.set(value, bytes);
    this.pairCount++;
    return bytes;
  }
}

const NONE: EncodedAttributes = { bytes: new Uint8Array(0), used: 0 };
