// The TypeScript counter layout must match xdp/carnx_counters.h: sizes, offsets, enum values and size-bucket bounds,
// read from the compiled header.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  COUNTER_FIELDS,
  COUNTERS_SIZE,
  LAYOUT_VERSION,
  MALFORMED_LAYERS,
  META_SIZE,
  SIZE_BUCKET_BOUNDS,
  SIZE_BUCKET_COUNT,
  SYN_KINDS,
  TCP_FLAGS,
  TRAFFIC_CLASSES,
  decodeMeta,
  emptyCounters,
  encodeMeta,
  sizeBucketOf,
} from '../../src/bpf/counter-layout.js';

const header = fileURLToPath(new URL('../../../xdp/carnx_counters.h', import.meta.url));

/** Compiles a tiny C program against the header and returns what it prints (JSON). */
function dumpHeader(): Record<string, number> {
  const dir = mkdtempSync(join(tmpdir(), 'carnx-layout-'));
  try {
    const names = [
      ...TRAFFIC_CLASSES.map((c) => c.cName),
      ...TCP_FLAGS.map((f) => `CARNX_TCP_${f}`),
      ...MALFORMED_LAYERS.map((l) => `CARNX_LAYER_${l.toUpperCase()}`),
      'CARNX_SYN_ONLY',
      'CARNX_SYN_ACK',
      'CARNX_SYN_KIND_COUNT',
      'CARNX_CLASS_COUNT',
      'CARNX_TCP_FLAG_COUNT',
      'CARNX_LAYER_COUNT',
      'CARNX_SIZE_BOUND_COUNT',
      'CARNX_SIZE_BUCKET_COUNT',
      'CARNX_LAYOUT_VERSION',
    ];
    const lines = [
      '#include <stdio.h>',
      '#include <stddef.h>',
      '#include <linux/types.h>',
      `#include "${header}"`,
      'static const unsigned int bounds[] = { CARNX_SIZE_BUCKET_BOUNDS };',
      'int main(void) {',
      'printf("{");',
      // Each bound under its own key ("bound.0", ...): the test compares values, not just how many there are.
      'for (size_t i = 0; i < sizeof(bounds) / sizeof(bounds[0]); i++) printf("\\"bound.%zu\\": %u, ", i, bounds[i]);',
      ...names.map((n) => `printf("\\"${n}\\": %d, ", (int)${n});`),
      ...COUNTER_FIELDS.map(
        (f) =>
          `printf("\\"offset.${f.cName}\\": %zu, \\"size.${f.cName}\\": %zu, ", offsetof(struct carnx_counters, ${f.cName}), sizeof(((struct carnx_counters *)0)->${f.cName}));`,
      ),
      'printf("\\"sizeof.counters\\": %zu, \\"sizeof.meta\\": %zu, ", sizeof(struct carnx_counters), sizeof(struct carnx_meta));',
      'printf("\\"offset.meta.layout_version\\": %zu, \\"offset.meta.ifindex\\": %zu, ", offsetof(struct carnx_meta, layout_version), offsetof(struct carnx_meta, ifindex));',
      'printf("\\"offset.meta.until\\": %zu, \\"offset.meta.exported\\": %zu}", offsetof(struct carnx_meta, delta_exported_until_unix_ns), offsetof(struct carnx_meta, delta_exported));',
      'return 0; }',
    ];
    writeFileSync(join(dir, 'dump.c'), lines.join('\n'));
    execFileSync('cc', ['-o', join(dir, 'dump'), join(dir, 'dump.c')]);
    return JSON.parse(execFileSync(join(dir, 'dump'), { encoding: 'utf8' }));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const c = dumpHeader();

test('traffic class enum values match', () => {
  for (const cls of TRAFFIC_CLASSES) assert.is(c[cls.cName], cls.index, cls.cName);
  assert.is(c.CARNX_CLASS_COUNT, TRAFFIC_CLASSES.length);
});

test('TCP flag, layer and size bucket enums match', () => {
  for (const [i, f] of TCP_FLAGS.entries()) assert.is(c[`CARNX_TCP_${f}`], i, f);
  assert.is(c.CARNX_TCP_FLAG_COUNT, TCP_FLAGS.length);
  assert.equal(
    [c.CARNX_SYN_ONLY, c.CARNX_SYN_ACK, c.CARNX_SYN_KIND_COUNT],
    [SYN_KINDS.indexOf('syn'), SYN_KINDS.indexOf('syn_ack'), SYN_KINDS.length],
  );
  for (const [i, l] of MALFORMED_LAYERS.entries()) assert.is(c[`CARNX_LAYER_${l.toUpperCase()}`], i, l);
  assert.is(c.CARNX_LAYER_COUNT, MALFORMED_LAYERS.length);
  assert.is(c.CARNX_SIZE_BUCKET_COUNT, SIZE_BUCKET_COUNT);
});

test('size bucket bounds match value by value', () => {
  assert.is(c.CARNX_SIZE_BOUND_COUNT, SIZE_BUCKET_BOUNDS.length, 'number of bounds');
  const n = Math.max(c.CARNX_SIZE_BOUND_COUNT ?? 0, SIZE_BUCKET_BOUNDS.length);
  for (let i = 0; i < n; i++) {
    assert.is(c[`bound.${i}`], SIZE_BUCKET_BOUNDS[i], `bound ${i}: CARNX_SIZE_BUCKET_BOUNDS vs SIZE_BUCKET_BOUNDS`);
  }
});

test('sizeBucketOf puts each bound in its own bucket and one byte more in the next', () => {
  assert.is(sizeBucketOf(0), 0);
  for (const [i, bound] of SIZE_BUCKET_BOUNDS.entries()) {
    assert.is(sizeBucketOf(bound), i, `${bound} bytes`);
    assert.is(sizeBucketOf(bound + 1), i + 1, `${bound + 1} bytes`);
  }
  assert.is(sizeBucketOf(65_535), SIZE_BUCKET_BOUNDS.length, 'past the last bound: the unbounded bucket');
});

test('struct carnx_counters offsets and size match', () => {
  let offset = 0;
  for (const field of COUNTER_FIELDS) {
    assert.is(c[`offset.${field.cName}`], offset, `offset of ${field.cName}`);
    assert.is(c[`size.${field.cName}`], field.count * 8, `size of ${field.cName}`);
    offset += field.count * 8;
  }
  assert.is(c['sizeof.counters'], COUNTERS_SIZE);
});

test('struct carnx_meta and the layout version match', () => {
  assert.is(c['sizeof.meta'], META_SIZE);
  assert.is(c.CARNX_LAYOUT_VERSION, LAYOUT_VERSION);
  const exported = emptyCounters();
  exported.packets[3] = 42n;
  exported.sizeBuckets[7] = 9n;
  const meta = {
    countingSinceUnixNs: 1_700_000_000_123_456_789n,
    layoutVersion: LAYOUT_VERSION,
    ifindex: 7,
    deltaExportedUntilUnixNs: 1_700_000_100_000_000_000n,
    deltaExported: exported,
  };
  const buf = encodeMeta(meta);
  assert.is(buf.readUInt32LE(c['offset.meta.layout_version']), LAYOUT_VERSION);
  assert.is(buf.readUInt32LE(c['offset.meta.ifindex']), 7);
  assert.is(buf.readBigUInt64LE(c['offset.meta.until']), meta.deltaExportedUntilUnixNs);
  assert.is(buf.readBigUInt64LE(c['offset.meta.exported']! + 3 * 8), 42n, 'packets[3] of the exported copy');
  assert.is(buf.readBigUInt64LE(c['offset.meta.exported']! + COUNTERS_SIZE - 8), 9n, 'the last size bucket');
  assert.equal(decodeMeta(buf), meta);
});

test.run();
