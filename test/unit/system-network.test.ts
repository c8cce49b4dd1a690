// The kernel's interface statistics as system.network.*: read from a fake /proc/net/dev, exported through the real pipeline.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ValueType, type Attributes } from '@opentelemetry/api';
import {
  AggregationTemporality,
  DataPointType,
  InMemoryMetricExporter,
  InstrumentType,
  type MetricData,
  type ResourceMetrics,
  type SumMetricData,
} from '@opentelemetry/sdk-metrics';
import { loadConfig } from '../../src/config/load-config.js';
import { createLogger } from '../../src/log/logger.js';
import { MetricsPipeline } from '../../src/metrics/metrics-pipeline.js';
import { createOtlpExporter } from '../../src/metrics/otlp-exporter.js';
import { readKernelStats } from '../../src/reader/kernel-stats.js';

const lines: string[] = [];
const logger = createLogger('debug', {
  write: (line: string) => {
    lines.push(line);
  },
});
const logged = (from: number) => lines.slice(from).map((l) => JSON.parse(l) as { level: string; msg: string });
const pipelines: MetricsPipeline[] = [];
let dir = '';
/** The fake /proc/net/dev, and the lines it holds by device. */
let netDev = '';
const devices = new Map<string, string>();

test.before.each(() => {
  dir = mkdtempSync(join(tmpdir(), 'carnx-netdev-'));
  netDev = join(dir, 'dev');
  devices.clear();
  writeNetDev();
});
test.after.each(async () => {
  await Promise.all(pipelines.splice(0).map((p) => p.stop(1000)));
  rmSync(dir, { recursive: true, force: true });
});

const FILES = [
  'rx_packets',
  'rx_bytes',
  'rx_errors',
  'rx_dropped',
  'rx_missed_errors',
  'tx_packets',
  'tx_bytes',
  'tx_errors',
  'tx_dropped',
] as const;
type Stats = Record<(typeof FILES)[number], bigint>;

/** Distinct values per file; bytes above 2^32 to catch any 32-bit truncation. */
function known(seed: bigint): Stats {
  return {
    rx_packets: 1000n * seed + 1n,
    rx_bytes: (1n << 40n) + seed,
    rx_errors: 10n * seed + 2n,
    rx_dropped: 10n * seed + 3n,
    rx_missed_errors: 10n * seed + 4n,
    tx_packets: 1000n * seed + 5n,
    tx_bytes: (1n << 33n) + 7n * seed,
    tx_errors: 10n * seed + 6n,
    tx_dropped: 10n * seed + 7n,
  };
}

/**
 * Writes a device's statistics as /proc/net/dev shows them (net/core/net-procfs.c): the drop column is rx_dropped +
 * rx_missed_errors; fifo, frame, compressed, multicast, colls and carrier are there too and not read.
 */
function writeDevice(name: string, s: Stats): void {
  const rx = [s.rx_bytes, s.rx_packets, s.rx_errors, s.rx_dropped + s.rx_missed_errors, 91n, 92n, 93n, 94n];
  const tx = [s.tx_bytes, s.tx_packets, s.tx_errors, s.tx_dropped, 95n, 96n, 97n, 98n];
  writeRawDevice(name, [...rx, ...tx].join(' '));
}

/** A device line with whatever follows the colon. */
function writeRawDevice(name: string, rest: string): void {
  devices.set(name, `${name.padStart(6)}: ${rest}`);
  writeNetDev();
}

function writeNetDev(): void {
  const header = [
    'Inter-|   Receive                                                |  Transmit',
    ' face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed',
  ];
  // Devices carnx does not count are listed too, as on a real host.
  writeFileSync(
    netDev,
    `${[...header, '    lo: 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16', ...devices.values()].join('\n')}\n`,
  );
}

function startPipeline(
  countedInterfaces: (() => string[]) | undefined,
  temporality: 'cumulative' | 'delta' = 'cumulative',
): InMemoryMetricExporter {
  const exporter = new InMemoryMetricExporter(
    temporality === 'delta' ? AggregationTemporality.DELTA : AggregationTemporality.CUMULATIVE,
  );
  const pipeline = new MetricsPipeline({
    config: loadConfig({ argv: ['--otlp-temporality', temporality], env: {} }),
    logger,
    source: () => [],
    packageVersion: '9.8.7',
    exporter,
    attachedByHook: () => ({ 'xdp-native': 2 }),
    countedInterfaces,
    procNetDev: netDev,
  });
  pipelines.push(pipeline);
  pipeline.start();
  return exporter;
}

/** One collection now; the metrics of the kernel-statistics scope (none if it is absent). */
async function collect(exporter: InMemoryMetricExporter): Promise<{ all: ResourceMetrics; kernel: MetricData[] }> {
  await pipelines.at(-1)!.forceCollectAndExport();
  const all = exporter.getMetrics().at(-1)!;
  const scopes = all.scopeMetrics.filter((s) => s.scope.name === 'carnx.kernel');
  assert.ok(scopes.length <= 1);
  if (scopes[0]) assert.is(scopes[0].scope.version, '9.8.7');
  return { all, kernel: scopes[0]?.metrics ?? [] };
}

const at = (name: string, direction: string): Attributes => ({
  'network.interface.name': name,
  'network.io.direction': direction,
});

/** Every point of a metric as [attributes, value]. */
function pointsOf(metrics: MetricData[], name: string): [Attributes, number][] {
  const metric = metrics.find((m) => m.descriptor.name === name);
  assert.ok(metric, `${name} exported`);
  assert.is(metric.dataPointType, DataPointType.SUM, `${name} is a sum`);
  return (metric as SumMetricData).dataPoints.map((p) => [p.attributes, p.value]);
}

/** The series the known statistics of `name` give, per metric: receive then transmit. */
function expected(name: string, s: Stats): Record<string, [Attributes, number][]> {
  const pair = (rx: bigint, tx: bigint): [Attributes, number][] => [
    [at(name, 'receive'), Number(rx)],
    [at(name, 'transmit'), Number(tx)],
  ];
  return {
    'system.network.packets': pair(s.rx_packets, s.tx_packets),
    'system.network.io': pair(s.rx_bytes, s.tx_bytes),
    'system.network.errors': pair(s.rx_errors, s.tx_errors),
    'system.network.dropped': pair(s.rx_dropped + s.rx_missed_errors, s.tx_dropped),
  };
}

test('readKernelStats: exact values from /proc/net/dev; a vanished or unreadable interface is left out, not zeros', () => {
  writeDevice('eth0', known(1n));
  writeDevice('eth1', known(2n));
  writeRawDevice('bad0', '1 2 3 4 5 6 7 8 9 10 garbage 12 13 14 15 16');
  writeRawDevice('short0', '1 2 3');
  const from = lines.length;
  const stats = readKernelStats(['eth0', 'gone0', 'bad0', 'short0', 'eth1'], logger, netDev);
  const k = known(1n);
  assert.equal(stats, [
    {
      name: 'eth0',
      rx: {
        packets: k.rx_packets,
        bytes: k.rx_bytes,
        errors: k.rx_errors,
        dropped: k.rx_dropped + k.rx_missed_errors,
      },
      tx: { packets: k.tx_packets, bytes: k.tx_bytes, errors: k.tx_errors, dropped: k.tx_dropped },
    },
    {
      name: 'eth1',
      rx: {
        packets: 2001n,
        bytes: (1n << 40n) + 2n,
        errors: 22n,
        dropped: 23n + 24n,
      },
      tx: { packets: 2005n, bytes: (1n << 33n) + 14n, errors: 26n, dropped: 27n },
    },
  ]);
  // A vanished interface is routine (the next rescan releases it): debug. An unreadable value is not: warn.
  assert.equal(
    logged(from).map((l) => l.level),
    ['debug', 'warn', 'warn'],
  );
  assert.equal(readKernelStats([], logger, netDev), []);
  assert.throws(() => readKernelStats(['eth0'], logger, join(dir, 'missing')), /ENOENT/);
});

test('readKernelStats: the real /proc/net/dev has the same counters as sysfs for lo', () => {
  const sysfs = (file: string) => BigInt(readFileSync(`/sys/class/net/lo/statistics/${file}`, 'utf8').trim());
  // Loopback traffic may move the counters between the two reads: retry until both agree on a quiet moment.
  let last = '';
  for (let attempt = 0; attempt < 20; attempt++) {
    const [lo] = readKernelStats(['lo'], logger);
    const want = {
      name: 'lo',
      rx: {
        packets: sysfs('rx_packets'),
        bytes: sysfs('rx_bytes'),
        errors: sysfs('rx_errors'),
        dropped: sysfs('rx_dropped') + sysfs('rx_missed_errors'),
      },
      tx: {
        packets: sysfs('tx_packets'),
        bytes: sysfs('tx_bytes'),
        errors: sysfs('tx_errors'),
        dropped: sysfs('tx_dropped'),
      },
    };
    const [again] = readKernelStats(['lo'], logger);
    if (
      JSON.stringify(lo, big) === JSON.stringify(want, big) &&
      JSON.stringify(again, big) === JSON.stringify(want, big)
    ) {
      return;
    }
    last = `${JSON.stringify(lo, big)} != ${JSON.stringify(want, big)}`;
  }
  assert.unreachable(`never agreed: ${last}`);
});

const big = (_: string, v: unknown) => (typeof v === 'bigint' ? v.toString() : v);

test('names, units, descriptions, INT cumulative monotonic sums; exact values in both directions', async () => {
  writeDevice('eth0', known(1n));
  writeDevice('eth1', known(2n));
  const { kernel } = await collect(startPipeline(() => ['eth0', 'eth1']));
  assert.equal(
    kernel.map((m) => [m.descriptor.name, m.descriptor.unit, m.descriptor.valueType]),
    [
      ['system.network.packets', '{packet}', ValueType.INT],
      ['system.network.io', 'By', ValueType.INT],
      ['system.network.errors', '{error}', ValueType.INT],
      ['system.network.dropped', '{packet}', ValueType.INT],
    ],
  );
  assert.equal(
    kernel.map((m) => m.descriptor.description),
    [
      'Packets the kernel counted on the interface (rx_packets, tx_packets).',
      'Bytes the kernel counted on the interface (rx_bytes, tx_bytes).',
      'Errors the kernel counted on the interface (rx_errors, tx_errors).',
      'Packets dropped without an error on the interface (rx_dropped + rx_missed_errors, tx_dropped): the drop ' +
        'column of /proc/net/dev.',
    ],
  );
  for (const m of kernel) {
    assert.is(m.aggregationTemporality, AggregationTemporality.CUMULATIVE, m.descriptor.name);
    assert.ok((m as SumMetricData).isMonotonic, m.descriptor.name);
  }
  const [eth0, eth1] = [expected('eth0', known(1n)), expected('eth1', known(2n))];
  for (const name of Object.keys(eth0)) {
    assert.equal(pointsOf(kernel, name), [...eth0[name]!, ...eth1[name]!], name);
  }
  assert.is(pointsOf(kernel, 'system.network.io')[0]![1], 1_099_511_627_777, 'rx_bytes 2^40 + 1, exact');
});

test('point attributes: frozen, the same objects in every collection (the OTLP encoder keeps their bytes)', async () => {
  writeDevice('eth0', known(1n));
  const exporter = startPipeline(() => ['eth0']);
  const attributesOf = async () =>
    (await collect(exporter)).kernel.flatMap((m) => (m as SumMetricData).dataPoints.map((p) => p.attributes));
  const [first, second] = [await attributesOf(), await attributesOf()];
  assert.is(first.length, 8);
  assert.ok(
    first.every((a) => Object.isFrozen(a)),
    'frozen',
  );
  assert.ok(
    first.every((a, i) => a === second[i]),
    'the same objects',
  );
});

test('an interface that vanished or cannot be read is left out of the export; the others are exported', async () => {
  writeDevice('eth0', known(1n));
  writeRawDevice('bad0', '');
  const { kernel } = await collect(startPipeline(() => ['gone0', 'bad0', 'eth0']));
  for (const m of kernel) {
    const names = (m as SumMetricData).dataPoints.map((p) => p.attributes['network.interface.name']);
    assert.equal(names, ['eth0', 'eth0'], m.descriptor.name);
  }
});

test('cumulative: the totals as the kernel has them; start time = first observation, kept by later points', async () => {
  writeDevice('eth0', known(1n));
  const exporter = startPipeline(() => ['eth0']);
  const first = (await collect(exporter)).kernel;
  writeDevice('eth0', known(5n));
  const second = (await collect(exporter)).kernel;
  assert.equal(pointsOf(second, 'system.network.packets'), expected('eth0', known(5n))['system.network.packets']);
  const points = (metrics: MetricData[]) => metrics.flatMap((m) => (m as SumMetricData).dataPoints);
  for (const p of points(first)) assert.equal(p.startTime, p.endTime, 'the SDK starts a series when first observed');
  const start = points(first)[0]!.startTime;
  for (const p of points(second)) {
    assert.equal(p.startTime, start, 'the same start time later');
    assert.ok(p.endTime[0] > p.startTime[0] || p.endTime[1] > p.startTime[1], 'end time moves on');
  }
});

test('delta: from the first sight of each interface, never its whole history; a reset or a gap starts again', async () => {
  writeDevice('eth0', known(1n));
  writeDevice('eth1', known(2n));
  let counted = ['eth0', 'eth1'];
  const exporter = startPipeline(() => counted, 'delta');
  const zero = (name: string) =>
    Object.fromEntries(
      Object.entries(expected(name, known(1n))).map(([m, series]) => [m, series.map(([a]) => [a, 0])]),
    );
  const first = (await collect(exporter)).kernel;
  for (const m of first) assert.is(m.aggregationTemporality, AggregationTemporality.DELTA, m.descriptor.name);
  for (const name of Object.keys(zero('eth0'))) {
    assert.equal(pointsOf(first, name), [...zero('eth0')[name]!, ...zero('eth1')[name]!], `${name}: first is 0`);
  }

  // Traffic: each value grows by (4 - 1) times its per-seed step.
  writeDevice('eth0', known(4n));
  const second = (await collect(exporter)).kernel;
  const diff = (a: Stats, b: Stats) => Object.fromEntries(FILES.map((f) => [f, b[f] - a[f]])) as Stats;
  const grown = expected('eth0', diff(known(1n), known(4n)));
  for (const name of Object.keys(grown)) {
    assert.equal(pointsOf(second, name), [...grown[name]!, ...zero('eth1')[name]!], `${name}: the traffic between`);
  }
  const firstEnd = (first[0] as SumMetricData).dataPoints[0]!.endTime;
  assert.equal((second[0] as SumMetricData).dataPoints[0]!.startTime, firstEnd, 'no gap, no overlap');

  // eth0 re-created (its counters went down): 0, then its new traffic. eth1 missing once: 0 when it is back.
  writeDevice('eth0', known(0n));
  counted = ['eth0'];
  await collect(exporter);
  counted = ['eth0', 'eth1'];
  writeDevice('eth1', known(9n));
  const back = (await collect(exporter)).kernel;
  assert.equal(pointsOf(back, 'system.network.packets'), [
    [at('eth0', 'receive'), 0],
    [at('eth0', 'transmit'), 0],
    [at('eth1', 'receive'), 0],
    [at('eth1', 'transmit'), 0],
  ]);
  writeDevice('eth0', known(2n));
  const after = (await collect(exporter)).kernel;
  assert.equal(pointsOf(after, 'system.network.packets').slice(0, 2), [
    [at('eth0', 'receive'), 2000],
    [at('eth0', 'transmit'), 2000],
  ]);
});

test('the OTLP exporter asks the SDK for the configured temporality of observable counters', () => {
  for (const [temporality, wanted] of [
    ['cumulative', AggregationTemporality.CUMULATIVE],
    ['delta', AggregationTemporality.DELTA],
  ] as const) {
    const config = loadConfig({ argv: ['--otlp-temporality', temporality], env: {} });
    const exporter = createOtlpExporter(config, createLogger('silent'));
    assert.is(exporter.selectAggregationTemporality(InstrumentType.OBSERVABLE_COUNTER), wanted, temporality);
  }
});

test('the callback never throws: a failing source costs its points and one warning, nothing else', async () => {
  writeDevice('eth0', known(1n));
  let fail = true;
  const exporter = startPipeline(() => {
    if (fail) throw new Error('reconciler busy');
    return ['eth0'];
  });
  const from = lines.length;
  for (let i = 0; i < 3; i++) {
    const { all, kernel } = await collect(exporter);
    assert.equal(kernel, [], 'no kernel statistics');
    const health = all.scopeMetrics.find((s) => s.scope.name === 'carnx.agent');
    assert.ok(
      health?.metrics.some((m) => m.descriptor.name === 'carnx.agent.export.failures'),
      'health still exported',
    );
  }
  fail = false;
  assert.is(pointsOf((await collect(exporter)).kernel, 'system.network.packets').length, 2, 'back once it works');
  const warnings = logged(from).filter((l) => l.level === 'warn');
  assert.equal(
    warnings.map((l) => l.msg),
    ['reading the kernel interface statistics failed; logged once until it works'],
  );
});

test('without counted interfaces there is no kernel-statistics scope', async () => {
  const { all } = await collect(startPipeline(undefined));
  assert.equal(
    all.scopeMetrics.map((s) => s.scope.name),
    ['carnx.agent'],
  );
  const { kernel } = await collect(startPipeline(() => []));
  assert.equal(kernel, []);
});

test.run();
