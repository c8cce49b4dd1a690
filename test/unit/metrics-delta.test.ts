// Delta temporality: only successful exports advance the baseline, so the exported deltas add up to the kernel totals exactly.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import { diag, type HrTime } from '@opentelemetry/api';
import { ExportResultCode, type ExportResult } from '@opentelemetry/core';
import {
  AggregationTemporality,
  DataPointType,
  type DataPoint,
  type MetricData,
  type PushMetricExporter,
  type ResourceMetrics,
} from '@opentelemetry/sdk-metrics';
import { emptyCounters, type InterfaceCounters } from '../../src/bpf/counter-layout.js';
import { loadConfig } from '../../src/config/load-config.js';
import { createLogger } from '../../src/log/logger.js';
import type { InterfaceSnapshot } from '../../src/reader/interface-snapshot.js';
import { CounterProducer, toHrTime } from '../../src/metrics/counter-producer.js';
import { MetricsPipeline } from '../../src/metrics/metrics-pipeline.js';
import { OtelDiagBridge, type PartialSuccess } from '../../src/metrics/otel-diag.js';
import { ReportingExporter } from '../../src/metrics/otlp-exporter.js';

const S = 1_000_000_000n;
const logger = createLogger('silent');
const pipelines: MetricsPipeline[] = [];
test.after(async () => {
  await Promise.all(pipelines.map((p) => p.stop(1000)));
});

/** Fails the next `failures` exports, records what the successful ones carried. */
class FlakyExporter implements PushMetricExporter {
  failures = 0;
  readonly delivered: ResourceMetrics[] = [];
  export(metrics: ResourceMetrics, done: (r: ExportResult) => void): void {
    if (this.failures > 0) {
      this.failures--;
      setImmediate(() => done({ code: ExportResultCode.FAILED, error: new Error('14 UNAVAILABLE: collector down') }));
      return;
    }
    this.delivered.push(metrics);
    setImmediate(() => done({ code: ExportResultCode.SUCCESS }));
  }
  selectAggregationTemporality(): AggregationTemporality {
    return AggregationTemporality.DELTA;
  }
  async forceFlush(): Promise<void> {}
  async shutdown(): Promise<void> {}
}

/** Every counter grows by a different step per tick, so a lost or doubled interval changes some total. */
function grow(c: InterfaceCounters, tick: bigint): void {
  const step = (arr: bigint[], k: bigint) =>
    arr.forEach((v, i) => {
      arr[i] = v + k * tick * BigInt(i + 1);
    });
  step(c.packets, 3n);
  step(c.bytes, 1500n);
  step(c.tcpFlags, 2n);
  step(c.tcpSyn, 4n);
  step(c.malformed, 1n);
  step(c.sizeBuckets, 5n);
  c.vlanPackets += tick;
}

interface Point {
  key: string;
  start: bigint;
  end: bigint;
  value: number[];
}
const ns = (t: HrTime): bigint => BigInt(t[0]) * S + BigInt(t[1]);

/** Flattens the carnx scope into one entry per series and point: sums as [value], histograms as buckets + count + sum. */
function points(rm: ResourceMetrics): Point[] {
  const metrics: MetricData[] = rm.scopeMetrics.filter((s) => s.scope.name === 'carnx').flatMap((s) => s.metrics);
  return metrics.flatMap((m) => {
    assert.is(m.aggregationTemporality, AggregationTemporality.DELTA, m.descriptor.name);
    const base = (p: { attributes: object; startTime: HrTime; endTime: HrTime }) => ({
      key: `${m.descriptor.name} ${JSON.stringify(p.attributes)}`,
      start: ns(p.startTime),
      end: ns(p.endTime),
    });
    if (m.dataPointType === DataPointType.HISTOGRAM) {
      return m.dataPoints.map((p) => ({ ...base(p), value: [...p.value.buckets.counts, p.value.count, p.value.sum!] }));
    }
    return m.dataPoints.map((p) => ({ ...base(p), value: [p.value as number] }));
  });
}

/** The cumulative view of the same series, from a cumulative producer reading the same source. */
async function totals(source: () => InterfaceSnapshot[]): Promise<Map<string, number[]>> {
  const cumulative = new CounterProducer({ source, logger, packageVersion: '1', temporality: 'cumulative' });
  const rm = (await cumulative.collect()).resourceMetrics;
  const metrics = rm.scopeMetrics.flatMap((s) => s.metrics);
  return new Map(
    metrics.flatMap((m) =>
      m.dataPoints.map(
        (p) =>
          [
            `${m.descriptor.name} ${JSON.stringify(p.attributes)}`,
            m.dataPointType === DataPointType.HISTOGRAM
              ? [
                  ...(p.value as { buckets: { counts: number[] } }).buckets.counts,
                  (p.value as { count: number }).count,
                  (p.value as { sum: number }).sum,
                ]
              : [p.value as number],
          ] as [string, number[]],
      ),
    ),
  );
}

function setup(now: () => bigint) {
  const state = new Map<string, InterfaceSnapshot>();
  const source = () => [...state.values()].map((s) => ({ ...s, counters: structuredClone(s.counters) }));
  const exporter = new FlakyExporter();
  const config = loadConfig({ argv: ['--otlp-temporality', 'delta'], env: {} });
  const producer = new CounterProducer({
    source,
    logger,
    packageVersion: '1',
    temporality: 'delta',
    now,
    forgetAfterMs: 60_000,
  });
  const pipeline = new MetricsPipeline({
    config,
    logger,
    source,
    packageVersion: '1',
    exporter,
    producer,
    attachedByHook: () => ({}),
  });
  pipelines.push(pipeline);
  pipeline.start();
  return { state, source, exporter, pipeline };
}

test('failing exports lose nothing: delivered deltas sum to the cumulative totals, intervals are contiguous', async () => {
  let clock = 2_000n * S;
  const { state, source, exporter, pipeline } = setup(() => clock);
  const since = 1_000n * S + 17n;
  state.set('eth0', {
    name: 'eth0',
    ifindex: 2,
    direction: 'receive',
    hook: 'xdp-native',
    countingSinceUnixNs: since,
    counters: emptyCounters(),
  });
  grow(state.get('eth0')!.counters, 7n);
  for (const [tick, failures] of [
    [1n, 0],
    [2n, 3],
    [3n, 0],
    [4n, 1],
    [5n, 0],
  ] as const) {
    exporter.failures = failures;
    for (let attempt = 0; attempt <= failures; attempt++) {
      clock += 10n * S;
      await pipeline.forceCollectAndExport();
      grow(state.get('eth0')!.counters, tick);
    }
  }
  clock += 10n * S;
  await pipeline.forceCollectAndExport(); // carries the growth after the last export
  assert.is(exporter.failures, 0, 'every planned failure happened');
  assert.is(exporter.delivered.length, 6);
  const sums = new Map<string, number[]>();
  const lastEnd = new Map<string, bigint>();
  for (const rm of exporter.delivered) {
    for (const p of points(rm)) {
      assert.is(p.start, lastEnd.get(p.key) ?? since, `${p.key} starts where its last delivered point ended`);
      assert.ok(p.end > p.start);
      lastEnd.set(p.key, p.end);
      sums.set(
        p.key,
        (sums.get(p.key) ?? p.value.map(() => 0)).map((v, i) => v + p.value[i]!),
      );
    }
  }
  const expected = await totals(source);
  assert.is(sums.size, expected.size, 'same series');
  assert.is(sums.size, 12 + 12 + 8 + 2 + 1 + 3 + 1);
  for (const [key, total] of expected) assert.equal(sums.get(key), total, key);
  assert.ok(
    expected.get('carnx.vlan.packets {"network.interface.name":"eth0","network.io.direction":"receive"}')![0]! > 0,
  );
});

test('an interface that vanishes and returns with a new countingSince starts over; a same-since return continues', async () => {
  let clock = 5_000n * S;
  const { state, exporter, pipeline } = setup(() => clock);
  const add = (name: string, since: bigint, tick: bigint) => {
    const counters = emptyCounters();
    grow(counters, tick);
    state.set(name, {
      name,
      ifindex: 9,
      direction: 'receive',
      hook: 'xdp-generic',
      countingSinceUnixNs: since,
      counters,
    });
  };
  const packetsOf = (name: string) =>
    points(exporter.delivered.at(-1)!).find(
      (p) =>
        p.key ===
        `carnx.packets {"network.interface.name":"${name}","network.io.direction":"receive",` +
          '"network.type":"ipv4","network.transport":"tcp"}',
    );
  // The point's interval and value (packetsOf already matched its key); undefined when it was not exported.
  const intervalOf = (p: ReturnType<typeof packetsOf>) => p && { start: p.start, end: p.end, value: p.value };
  add('eth0', 4_000n * S, 10n);
  add('veth1', 4_500n * S, 10n);
  await pipeline.forceCollectAndExport();
  assert.equal(intervalOf(packetsOf('veth1')), { start: 4_500n * S, end: clock, value: [30] });
  const firstEnd = clock;
  state.delete('veth1');
  clock += 10n * S;
  await pipeline.forceCollectAndExport();
  assert.is(packetsOf('veth1'), undefined, 'a vanished interface is not exported');
  add('veth1', 4_500n * S, 12n); // back after a failed read: same counters, grown
  clock += 10n * S;
  await pipeline.forceCollectAndExport();
  assert.equal(packetsOf('veth1')?.value, [6], 'continues from its baseline: 36 - 30');
  assert.is(packetsOf('veth1')?.start, firstEnd);
  add('veth1', 5_015n * S, 2n); // re-created: new start, counters lower than before
  clock += 10n * S;
  await pipeline.forceCollectAndExport();
  assert.equal(intervalOf(packetsOf('veth1')), { start: 5_015n * S, end: clock, value: [6] });
  state.delete('veth1');
  clock += 120n * S; // past forgetAfterMs: the baseline is dropped, a return counts from countingSince again
  await pipeline.forceCollectAndExport();
  add('veth1', 5_015n * S, 3n);
  clock += 10n * S;
  await pipeline.forceCollectAndExport();
  assert.equal(packetsOf('veth1')?.value, [9]);
  assert.is(packetsOf('veth1')?.start, 5_015n * S);
});

test('collections are ordered: a late success of an older collection does not roll the baseline back', async () => {
  let clock = 10n * S;
  const counters = emptyCounters();
  const source = (): InterfaceSnapshot[] => [
    {
      name: 'eth0',
      ifindex: 2,
      direction: 'receive',
      hook: 'xdp-native',
      countingSinceUnixNs: S,
      counters: structuredClone(counters),
    },
  ];
  const producer = new CounterProducer({ source, logger, packageVersion: '1', temporality: 'delta', now: () => clock });
  const collect = async () => {
    const rm = (await producer.collect()).resourceMetrics;
    const tcp = points(rm).find((p) => p.key.startsWith('carnx.packets') && p.key.includes('"tcp"'))!;
    return { id: producer.collectionIdOf(rm)!, tcp };
  };
  grow(counters, 1n);
  const a = await collect();
  clock += 10n * S;
  grow(counters, 1n);
  const b = await collect();
  assert.ok(b.id > a.id);
  producer.exportSucceeded(b.id);
  producer.exportSucceeded(a.id); // late: must be ignored
  clock += 10n * S;
  grow(counters, 1n);
  const c = await collect();
  assert.equal([c.tcp.start, c.tcp.value], [20n * S, [3]], 'from b, the newest delivered collection');
  producer.exportFailed(c.id);
  clock += 10n * S;
  const d = await collect();
  assert.equal([d.tcp.start, d.tcp.value], [20n * S, [3]], 'a failure leaves the baseline where it was');
  assert.equal(toHrTime(20n * S + 5n), [20, 5]);
});

test('a restarted agent continues from the delta baseline the previous process kept: nothing lost, nothing resent', async () => {
  let clock = 100n * S;
  const counters = emptyCounters();
  const kept = new Map<string, { counters: InterfaceCounters; untilUnixNs: bigint }>();
  const snapshot = (): InterfaceSnapshot => ({
    name: 'eth0',
    ifindex: 2,
    direction: 'receive',
    hook: 'xdp-native',
    countingSinceUnixNs: 50n * S,
    counters: structuredClone(counters),
    ...(kept.has('eth0') ? { deltaExported: kept.get('eth0')! } : {}),
  });
  const producerFor = () =>
    new CounterProducer({
      source: () => [snapshot()],
      logger,
      packageVersion: '1',
      temporality: 'delta',
      now: () => clock,
      onDeltaExported: (name, _direction, c, untilUnixNs) =>
        kept.set(name, { counters: structuredClone(c), untilUnixNs }),
    });
  const tcpOf = async (producer: CounterProducer, succeed: boolean) => {
    const rm = (await producer.collect()).resourceMetrics;
    const id = producer.collectionIdOf(rm)!;
    if (succeed) producer.exportSucceeded(id);
    else producer.exportFailed(id);
    return points(rm).find((p) => p.key.startsWith('carnx.packets') && p.key.includes('"tcp"'))!;
  };
  const first = producerFor();
  grow(counters, 1n); // tcp packets: 3
  const firstPoint = await tcpOf(first, true);
  assert.equal([firstPoint.start, firstPoint.end, firstPoint.value], [50n * S, clock, [3]]);
  assert.is(kept.get('eth0')?.untilUnixNs, clock, 'the successful export was kept');
  const keptAt = clock;
  clock += 10n * S;
  grow(counters, 2n); // +6 while the agent restarts
  const second = producerFor(); // a new process: no in-memory baseline, only what was kept
  const point = await tcpOf(second, true);
  assert.equal(
    [point.start, point.value],
    [keptAt, [6]],
    'starts where the previous process stopped, with only the new counts',
  );
});

test('the final read of a released interface is exported until an export carrying it succeeds; a re-created one starts over', async () => {
  for (const temporality of ['delta', 'cumulative'] as const) {
    let clock = 3_000n * S;
    const snapshot = (since: bigint, tick: bigint, final?: true): InterfaceSnapshot => {
      const counters = emptyCounters();
      grow(counters, tick);
      return {
        name: 'eth0',
        ifindex: since === S ? 2 : 3,
        direction: 'receive',
        hook: 'xdp-native',
        countingSinceUnixNs: since,
        counters,
        ...(final ? { final } : {}),
      };
    };
    let live: InterfaceSnapshot[] = [snapshot(S, 1n)];
    const finals: InterfaceSnapshot[] = [];
    const saved: bigint[] = [];
    const producer = new CounterProducer({
      source: () => [...live, ...finals.splice(0)], // the agent hands each final read over once
      logger,
      packageVersion: '1',
      temporality,
      now: () => clock,
      onDeltaExported: (_name, _direction, c) => saved.push(c.packets[0]!),
    });
    /** The tcp packet points of one collection, [start, value], and the collection's fate. */
    const collect = async (succeed: boolean) => {
      clock += 10n * S;
      const rm = (await producer.collect()).resourceMetrics;
      const id = producer.collectionIdOf(rm);
      if (id !== undefined && succeed) producer.exportSucceeded(id);
      if (id !== undefined && !succeed) producer.exportFailed(id);
      const tcp = rm.scopeMetrics
        .flatMap((sm) => sm.metrics)
        .filter((m) => m.descriptor.name === 'carnx.packets')
        .flatMap((m) => m.dataPoints as DataPoint<number>[])
        .filter((p) => p.attributes['network.type'] === 'ipv4' && p.attributes['network.transport'] === 'tcp');
      return tcp.map((p) => [ns(p.startTime), p.value]);
    };
    const d = temporality === 'delta';
    const first = await collect(true); // tcp: 3
    assert.equal(first, [[S, 3]], temporality);
    const firstEnd = clock;
    // Between collections: grew to 9, then released (its final read), and re-created with a new countingSince.
    finals.push(snapshot(S, 3n, true));
    live = [snapshot(2_000n * S, 5n)]; // tcp 15: above the final's 9, so only countingSince tells them apart
    const failed = await collect(false);
    assert.equal(failed, [d ? [firstEnd, 6] : [S, 9]], `${temporality}: the final point; the new series waits`);
    const carried = await collect(true);
    assert.equal(carried, failed, `${temporality}: a failed export does not lose the final point`);
    const fresh = await collect(true);
    assert.equal(fresh, [[2_000n * S, 15]], `${temporality}: the re-created interface starts a new series`);
    assert.equal(await collect(true), [d ? [clock - 10n * S, 0] : [2_000n * S, 15]], 'and the final is not sent again');
    // The final's counters belong to the old device: never kept in the new one's pins.
    assert.equal(saved, d ? [3n, 15n, 15n] : [], temporality);
  }
});

/** Holds every export until the test answers it: a collector slower than the export interval. */
class HeldExporter implements PushMetricExporter {
  readonly held: { metrics: ResourceMetrics; done: (r: ExportResult) => void }[] = [];
  readonly delivered: ResourceMetrics[] = [];
  export(metrics: ResourceMetrics, done: (r: ExportResult) => void): void {
    this.held.push({ metrics, done });
  }
  /** Answers the oldest held export. */
  answer(ok: boolean): void {
    const { metrics, done } = this.held.shift()!;
    if (ok) this.delivered.push(metrics);
    done(ok ? { code: ExportResultCode.SUCCESS } : { code: ExportResultCode.FAILED, error: new Error('4 DEADLINE') });
  }
  async forceFlush(): Promise<void> {}
  async shutdown(): Promise<void> {}
}

/** A delta producer over one interface whose counters the test grows, and an exporter that holds every answer. */
function heldDelta(now: () => bigint): {
  counters: InterfaceCounters;
  source: () => InterfaceSnapshot[];
  producer: CounterProducer;
  inner: HeldExporter;
} {
  const counters = emptyCounters();
  const source = (): InterfaceSnapshot[] => [
    {
      name: 'eth0',
      ifindex: 2,
      direction: 'receive',
      hook: 'xdp-native',
      countingSinceUnixNs: S,
      counters: structuredClone(counters),
    },
  ];
  const producer = new CounterProducer({ source, logger, packageVersion: '1', temporality: 'delta', now });
  return { counters, source, producer, inner: new HeldExporter() };
}

function captured(level = 'info'): { logger: ReturnType<typeof createLogger>; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const logger = createLogger(level, { write: (line: string) => void lines.push(JSON.parse(line)) });
  return { logger, lines };
}

test('an export outliving the next collections: one export of counters in flight, the deltas add up exactly', async () => {
  let clock = 10n * S;
  const { counters, source, producer, inner } = heldDelta(() => clock);
  const failures: number[] = [];
  const exporter = new ReportingExporter(inner, { logger, producer, onFailure: () => failures.push(1) });
  const results: ExportResultCode[] = [];
  const tick = async (n: bigint) => {
    grow(counters, n);
    clock += S;
    exporter.export((await producer.collect()).resourceMetrics, (r) => results.push(r.code));
  };
  // The answer to each held export comes only after `late` more collections: success, failure, success ...
  for (const [late, ok] of [
    [3, true],
    [0, true],
    [5, false],
    [2, true],
    [1, false],
    [4, true],
  ] as const) {
    await tick(BigInt(late + 1));
    for (let i = 0; i < late; i++) await tick(1n);
    assert.is(inner.held.length, 1, 'one export of counter points in flight, whatever the delay');
    inner.answer(ok);
  }
  await tick(2n);
  inner.answer(true);
  assert.is(failures.length, 2, 'two real failures; batches left without counters are not failures');
  assert.ok(results.every((r) => r === ExportResultCode.SUCCESS || r === ExportResultCode.FAILED));
  const sums = new Map<string, number[]>();
  const lastEnd = new Map<string, bigint>();
  for (const rm of inner.delivered) {
    for (const p of points(rm)) {
      assert.is(p.start, lastEnd.get(p.key) ?? S, `${p.key} starts where its last delivered point ended`);
      lastEnd.set(p.key, p.end);
      sums.set(
        p.key,
        (sums.get(p.key) ?? p.value.map(() => 0)).map((v, i) => v + p.value[i]!),
      );
    }
  }
  const expected = await totals(source);
  assert.is(sums.size, expected.size, 'same series');
  for (const [key, total] of expected) assert.equal(sums.get(key), total, key);
});

test('an exporter that never answers is given up after giveUpAfterMs: logged, counts sent again with the next', async () => {
  let now = 0;
  const { counters, producer, inner } = heldDelta(() => S + BigInt(now) * 1_000_000n);
  const log = captured();
  const exporter = new ReportingExporter(inner, { logger: log.logger, producer, giveUpAfterMs: 5_000, now: () => now });
  const send = async () => exporter.export((await producer.collect()).resourceMetrics, () => {});
  grow(counters, 1n);
  now = 1_000;
  await send();
  now = 2_000;
  await send();
  assert.is(inner.held.length, 1, 'held back while the first is in flight');
  now = 7_000;
  await send();
  assert.is(inner.held.length, 2, 'the first given up: the next carries counters');
  assert.ok(log.lines.some((l) => String(l.msg).startsWith('an export has had no outcome for too long')));
  inner.answer(true); // the late answer of the given-up export no longer moves the baseline
  inner.answer(true);
  const tcp = points(inner.delivered[1]!).find((p) => p.key.startsWith('carnx.packets') && p.key.includes('"tcp"'))!;
  assert.is(tcp.start, S, 'the re-sent interval starts where the given-up one did (at-least-once, recognisable)');
});

test('a partial success: the baseline moves, the rejection is logged once per run and counted as a failure', async () => {
  let clock = 10n * S;
  const { counters, producer, inner } = heldDelta(() => clock);
  const log = captured();
  let partial: PartialSuccess | undefined;
  let failures = 0;
  const exporter = new ReportingExporter(inner, {
    logger: log.logger,
    producer,
    onFailure: () => failures++,
    takePartialSuccess: () => partial,
  });
  for (let i = 0; i < 3; i++) {
    grow(counters, 1n);
    clock += S;
    exporter.export((await producer.collect()).resourceMetrics, () => {});
    partial = i < 2 ? { rejectedDataPoints: 3, errorMessage: 'bad point' } : undefined;
    inner.answer(true);
  }
  assert.is(failures, 2, 'each partial success is a failed export for the health metric');
  const warned = log.lines.filter((l) => String(l.msg).startsWith('the collector rejected points'));
  assert.is(warned.length, 1, 'one line per run of partial successes');
  assert.is(warned[0]!.rejectedDataPoints, 3);
  assert.is(warned[0]!.error, 'bad point');
  const starts = inner.delivered.map(
    (rm) => points(rm).find((p) => p.key.startsWith('carnx.packets') && p.key.includes('"tcp"'))!.start,
  );
  assert.equal(starts, [S, 11n * S, 12n * S], 'accepted points are not sent again');
});

test('the diag bridge: SDK lines in the log (module otel, repeats left out, secrets cut), partial successes handed over', () => {
  let now = 0;
  const log = captured();
  const bridge = new OtelDiagBridge(log.logger, ['s3cret'], () => now);
  bridge.install();
  try {
    diag.error('PeriodicExportingMetricReader: metrics export timed out after 1000ms');
    now = 1_000;
    diag.error('PeriodicExportingMetricReader: metrics export timed out after 1000ms');
    now = 61_000;
    diag.error('PeriodicExportingMetricReader: metrics export timed out after 1000ms');
    diag.warn('something with s3cret', new Error('token s3cret'));
    diag.info('not at warn level');
    diag.warn(
      'Received Partial Success response:',
      JSON.stringify({ rejectedDataPoints: 4, errorMessage: 'no s3cret' }),
    );
  } finally {
    diag.disable();
  }
  assert.is(log.lines.length, 3);
  assert.ok(log.lines.every((l) => l.module === 'otel'));
  assert.is(log.lines[0]!.level, 'error');
  assert.is(log.lines[1]!.repeatsLeftOut, 1, 'the repeat within a minute was counted, not logged');
  assert.equal([log.lines[2]!.msg, log.lines[2]!.details], ['something with [redacted]', ['token [redacted]']]);
  assert.equal(bridge.takePartialSuccess(), { rejectedDataPoints: 4, errorMessage: 'no [redacted]' });
  assert.is(bridge.takePartialSuccess(), undefined, 'taken once');
  // The exporter reports partial successes only through this diag message: fail loudly if the SDK changes it.
  const handler = readFileSync(
    'node_modules/@opentelemetry/otlp-exporter-base/build/src/logging-response-handler.js',
    'utf8',
  );
  assert.ok(
    handler.includes("diag.warn('Received Partial Success response:', JSON.stringify(response.partialSuccess))"),
  );
});

test("the diag bridge: the reader's own copy of a failed export (a JSON stack, as an error) goes to debug only", () => {
  const log = captured('debug');
  const bridge = new OtelDiagBridge(log.logger, []);
  bridge.install();
  try {
    // How the SDK's global error handler passes it on: the exception stringified, stack included.
    const err = new Error('PeriodicExportingMetricReader: metrics export failed (error Error: 14 UNAVAILABLE)');
    diag.error(JSON.stringify({ stack: err.stack, message: err.message }));
    diag.error('PeriodicExportingMetricReader: metrics export threw error', new Error('boom'));
  } finally {
    diag.disable();
  }
  assert.equal(
    log.lines.map((l) => [l.level, l.msg]),
    [
      ['debug', 'export failed (reported by the periodic reader)'],
      ['error', 'PeriodicExportingMetricReader: metrics export threw error'],
    ],
  );
});

test.run();
