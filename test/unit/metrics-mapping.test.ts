// Counter metrics from a known snapshot: names, units, descriptions, every series' attributes and value, start times, resource.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Attributes } from '@opentelemetry/api';
import {
  AggregationTemporality,
  DataPointType,
  InMemoryMetricExporter,
  type HistogramMetricData,
  type MetricData,
  type ResourceMetrics,
  type SumMetricData,
} from '@opentelemetry/sdk-metrics';
import { emptyCounters, sum, type InterfaceCounters } from '../../src/bpf/counter-layout.js';
import { loadConfig } from '../../src/config/load-config.js';
import type { CarnxConfig } from '../../src/config/schema.js';
import { createLogger } from '../../src/log/logger.js';
import type { InterfaceSnapshot } from '../../src/reader/interface-snapshot.js';
import { CounterProducer } from '../../src/metrics/counter-producer.js';
import { EXACT_INT, type ExactIntPoint } from '../../src/metrics/otlp-data-points.js';
import { MetricsPipeline } from '../../src/metrics/metrics-pipeline.js';
import { buildResource, uuidV5 } from '../../src/metrics/resource.js';
import { reported } from '../fixtures/hooks.js';

const SINCE = 1_700_000_000_123_456_789n; // ns, not a whole millisecond: the start time must keep every digit
const lines: string[] = [];
const logger = createLogger('info', {
  write: (line: string) => {
    lines.push(line);
  },
});
const pipelines: MetricsPipeline[] = [];
let dir = '';
test.before(
  reported(() => {
    dir = mkdtempSync(join(tmpdir(), 'carnx-metrics-'));
  }),
);
test.after(async () => {
  await Promise.all(pipelines.map((p) => p.stop(1000)));
  rmSync(dir, { recursive: true, force: true });
});

/** Known, distinct counters; bytes of class 0 exceed 2^40 to catch any 32-bit truncation. */
function knownCounters(): InterfaceCounters {
  const packets = Array.from({ length: 12 }, (_, i) => 1000n + BigInt(i) * 3n);
  const bytes = packets.map((p, i) => p * 64n + BigInt(i) + (i === 0 ? 1n << 40n : 0n));
  const firstSeven = [1n, 2n, 3n, 4n, 5n, 6n, 7n].map((x) => x * 100n);
  return {
    packets,
    bytes,
    tcpFlags: [11n, 12n, 13n, 14n, 15n, 16n, 17n, 18n],
    tcpSyn: [21n, 22n],
    vlanPackets: 77n,
    malformed: [5n, 6n, 7n],
    sizeBuckets: [...firstSeven, sum(packets) - sum(firstSeven)],
  };
}

const snapshots = (): InterfaceSnapshot[] => [
  {
    name: 'eth0',
    ifindex: 2,
    direction: 'receive',
    hook: 'xdp-native',
    countingSinceUnixNs: SINCE,
    counters: knownCounters(),
  },
  {
    name: 'eth1',
    ifindex: 3,
    direction: 'receive',
    hook: 'xdp-generic',
    countingSinceUnixNs: SINCE + 5n,
    counters: emptyCounters(),
  },
];

function config(overrides: (c: CarnxConfig) => void = () => {}): CarnxConfig {
  const c = loadConfig({ argv: [], env: {} });
  overrides(c);
  return c;
}

async function exportOnce(source = snapshots): Promise<ResourceMetrics> {
  const exporter = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE);
  const pipeline = new MetricsPipeline({
    config: config(),
    logger,
    source,
    packageVersion: '9.8.7',
    exporter,
    attachedByHook: () => ({ 'xdp-native': 1, 'xdp-generic': 1 }),
    env: { K8S_NODE_NAME: 'node-a' },
  });
  pipelines.push(pipeline);
  pipeline.start();
  await pipeline.forceCollectAndExport();
  const exported = exporter.getMetrics();
  assert.is(exported.length, 1, 'one export per forced collection');
  return exported[0]!;
}

function counterMetrics(rm: ResourceMetrics): MetricData[] {
  const scopes = rm.scopeMetrics.filter((s) => s.scope.name === 'carnx');
  assert.is(scopes.length, 1);
  assert.is(scopes[0]!.scope.version, '9.8.7');
  return scopes[0]!.metrics;
}

const iface = (name: string): Attributes => ({ 'network.interface.name': name, 'network.io.direction': 'receive' });
const CLASSES: [string, string][] = [
  ['ipv4', 'tcp'],
  ['ipv4', 'udp'],
  ['ipv4', 'icmp'],
  ['ipv4', 'other'],
  ['ipv4', 'none'],
  ['ipv6', 'tcp'],
  ['ipv6', 'udp'],
  ['ipv6', 'icmpv6'],
  ['ipv6', 'other'],
  ['ipv6', 'none'],
  ['arp', 'none'],
  ['other', 'none'],
];

/** Every point of a sum as [attributes, value], in export order. */
function pointsOf(metric: MetricData): [Attributes, number][] {
  assert.is(metric.dataPointType, DataPointType.SUM, `${metric.descriptor.name} is a sum`);
  return (metric as SumMetricData).dataPoints.map((p) => [p.attributes, p.value]);
}

test('every counter metric: exact name, unit, description, cumulative monotonic sums and a histogram', async () => {
  const metrics = counterMetrics(await exportOnce());
  assert.equal(
    metrics.map((m) => [m.descriptor.name, m.descriptor.unit]),
    [
      ['carnx.packets', '{packet}'],
      ['carnx.bytes', 'By'],
      ['carnx.tcp.flags', '{segment}'],
      ['carnx.tcp.syn', '{segment}'],
      ['carnx.vlan.packets', '{packet}'],
      ['carnx.malformed.packets', '{packet}'],
      ['carnx.packet.size', 'By'],
    ],
  );
  assert.equal(
    metrics.map((m) => m.descriptor.description),
    [
      'Frames received, by network and transport protocol; every frame is counted in exactly one series.',
      'Bytes received, by network and transport protocol: whole frame lengths as XDP sees them, Ethernet header and ' +
        'VLAN tags included, FCS excluded.',
      'TCP segments received with this flag set; a segment with several flags counts once under each.',
      'TCP segments received with SYN set: syn without ACK (connection attempts), syn_ack with ACK (answers). ' +
        'carnx.tcp.flags counts a SYN-ACK under both flags, so only this metric tells them apart.',
      'Frames received with at least one 802.1Q or 802.1ad tag still present when XDP sees them (NICs with RX VLAN ' +
        'offload may strip tags first).',
      'Frames whose header at this layer was truncated or invalid; they are still counted in carnx.packets.',
      'Distribution of received frame lengths (as counted in carnx.bytes), from buckets counted in the kernel.',
    ],
  );
  for (const m of metrics) {
    assert.is(m.aggregationTemporality, AggregationTemporality.CUMULATIVE, m.descriptor.name);
    if (m.dataPointType === DataPointType.SUM) assert.ok(m.isMonotonic, m.descriptor.name);
  }
  assert.is(metrics[6]!.dataPointType, DataPointType.HISTOGRAM);
});

test('packets and bytes: 12 classes per interface, zeros included, exact values above 2^32', async () => {
  const [packets, bytes] = counterMetrics(await exportOnce());
  const known = knownCounters();
  const expected = (values: bigint[]) =>
    ['eth0', 'eth1'].flatMap((name) =>
      CLASSES.map(
        ([type, transport], i) =>
          [
            { ...iface(name), 'network.type': type, 'network.transport': transport },
            name === 'eth0' ? Number(values[i]!) : 0,
          ] as [Attributes, number],
      ),
    );
  assert.equal(pointsOf(packets!), expected(known.packets));
  assert.equal(pointsOf(bytes!), expected(known.bytes));
  assert.is(pointsOf(bytes!)[0]![1], 1_099_511_691_776, 'class 0 bytes: 2^40 + 1000 * 64');
});

test('a value past 2^53 reaches the exporter with its exact word beside the number; exact ones carry none', async () => {
  const big = (1n << 60n) + 1n;
  const source = (): InterfaceSnapshot[] => {
    const [eth0, eth1] = snapshots();
    const counters = knownCounters();
    counters.bytes[0] = big;
    return [{ ...eth0!, counters }, eth1!];
  };
  const [packets, bytes] = counterMetrics(await exportOnce(source));
  const points = bytes!.dataPoints as ExactIntPoint[];
  assert.is(points[0]?.value, Number(big), 'the number: the nearest double');
  assert.is(points[0]?.[EXACT_INT], big, 'the exact word, through the SDK untouched');
  assert.equal(
    points.slice(1).map((p) => p[EXACT_INT]),
    points.slice(1).map(() => undefined),
    'no word beside an exact number',
  );
  assert.ok((packets!.dataPoints as ExactIntPoint[]).every((p) => p[EXACT_INT] === undefined));
});

test('tcp flags, syn kinds, vlan and malformed series', async () => {
  const [, , flags, syn, vlan, malformed] = counterMetrics(await exportOnce());
  assert.equal(pointsOf(syn!).slice(0, 2), [
    [{ ...iface('eth0'), 'carnx.tcp.syn.kind': 'syn' }, 21],
    [{ ...iface('eth0'), 'carnx.tcp.syn.kind': 'syn_ack' }, 22],
  ]);
  const names = ['fin', 'syn', 'rst', 'psh', 'ack', 'urg', 'ece', 'cwr'];
  assert.equal(
    pointsOf(flags!).slice(0, 8),
    names.map((f, i) => [{ ...iface('eth0'), 'tcp.flag': f }, 11 + i]),
  );
  assert.equal(
    pointsOf(flags!).slice(8),
    names.map((f) => [{ ...iface('eth1'), 'tcp.flag': f }, 0]),
  );
  assert.equal(pointsOf(vlan!), [
    [iface('eth0'), 77],
    [iface('eth1'), 0],
  ]);
  assert.equal(pointsOf(malformed!).slice(0, 3), [
    [{ ...iface('eth0'), 'carnx.malformed.layer': 'l2' }, 5],
    [{ ...iface('eth0'), 'carnx.malformed.layer': 'l3' }, 6],
    [{ ...iface('eth0'), 'carnx.malformed.layer': 'l4' }, 7],
  ]);
});

test('histogram: kernel buckets, count = packets, sum = bytes, no min/max; the class partition adds up to it', async () => {
  const metrics = counterMetrics(await exportOnce());
  const hist = metrics[6] as HistogramMetricData;
  const known = knownCounters();
  assert.is(hist.dataPoints.length, 2);
  const eth0 = hist.dataPoints[0]!;
  assert.equal(eth0.attributes, iface('eth0'));
  assert.equal(eth0.value, {
    buckets: { boundaries: [64, 127, 255, 511, 1023, 1518, 9000], counts: known.sizeBuckets.map(Number) },
    count: Number(sum(known.packets)),
    sum: Number(sum(known.bytes)),
  });
  assert.ok(!('min' in eth0.value) && !('max' in eth0.value), 'no min/max');
  const classTotal = (metric: MetricData) =>
    pointsOf(metric)
      .filter(([a]) => a['network.interface.name'] === 'eth0')
      .reduce((n, [, v]) => n + v, 0);
  assert.is(classTotal(metrics[0]!), eth0.value.count, 'packets over all classes = histogram count');
  assert.is(classTotal(metrics[1]!), eth0.value.sum, 'bytes over all classes = histogram sum');
  assert.equal(hist.dataPoints[1]!.value.buckets.counts, [0, 0, 0, 0, 0, 0, 0, 0]);
});

test('start time is countingSinceUnixNs, the same across a restart (a new pipeline and producer)', async () => {
  const first = counterMetrics(await exportOnce());
  const second = counterMetrics(await exportOnce());
  for (const metrics of [first, second]) {
    for (const m of metrics) {
      for (const p of m.dataPoints) {
        const since = p.attributes['network.interface.name'] === 'eth0' ? SINCE : SINCE + 5n;
        assert.equal(p.startTime, [Number(since / 1_000_000_000n), Number(since % 1_000_000_000n)], m.descriptor.name);
        assert.ok(p.endTime[0] >= Math.floor(Date.now() / 1000) - 60, 'end time is now');
      }
    }
  }
});

test('no interfaces: no counter scope; a throwing source: errors, no points, one warn per burst, one recovery line', async () => {
  assert.equal(
    (await exportOnce(() => [])).scopeMetrics.filter((s) => s.scope.name === 'carnx'),
    [],
  );
  let fail = true;
  const producer = new CounterProducer({
    logger,
    packageVersion: '1',
    temporality: 'cumulative',
    source: () => {
      if (fail) throw new Error('map read: EPERM');
      return snapshots();
    },
  });
  const before = lines.length;
  for (let i = 0; i < 3; i++) {
    const result = await producer.collect();
    assert.equal(result.resourceMetrics.scopeMetrics, []);
    assert.is((result.errors[0] as Error).message, 'map read: EPERM');
  }
  fail = false;
  assert.is((await producer.collect()).resourceMetrics.scopeMetrics.length, 1);
  const logged = lines
    .slice(before)
    .map((l) => JSON.parse(l) as { level: string; msg: string; failedCollections?: number });
  assert.equal(
    logged.map((l) => l.level),
    ['warn', 'info'],
  );
  assert.is(logged[1]!.failedCollections, 3);
});

test('point attributes: one frozen object per series, the same in every collection (the OTLP encoder keeps its bytes)', async () => {
  const producer = new CounterProducer({ logger, packageVersion: '1', temporality: 'cumulative', source: snapshots });
  const attributesOf = async () =>
    (await producer.collect()).resourceMetrics.scopeMetrics.flatMap((s) =>
      s.metrics.flatMap((m) => (m.dataPoints as { attributes: Attributes }[]).map((p) => p.attributes)),
    );
  const [first, second] = [await attributesOf(), await attributesOf()];
  assert.ok(first.length > 40, 'every point of the interface');
  assert.ok(
    first.every((a) => Object.isFrozen(a)),
    'frozen',
  );
  assert.ok(
    first.every((a, i) => a === second[i]),
    'the same objects',
  );
});

test('resource: own attributes, k8s.node.name from env, OTEL_RESOURCE_ATTRIBUTES below config attributes', () => {
  const saved = { attrs: process.env.OTEL_RESOURCE_ATTRIBUTES, name: process.env.OTEL_SERVICE_NAME };
  process.env.OTEL_RESOURCE_ATTRIBUTES = 'deployment.environment=staging,team=net,host.name=from-env';
  delete process.env.OTEL_SERVICE_NAME;
  try {
    const c = config((x) => {
      x.resource.attributes = { team: 'edge', 'cloud.region': 'eu-1' };
    });
    const attrs = buildResource(c, { K8S_NODE_NAME: 'node-a' }, '9.8.7').attributes;
    assert.equal(attrs, {
      'service.name': 'carnx',
      'service.version': '9.8.7',
      'service.instance.id': 'node-a',
      'host.name': 'from-env',
      'k8s.node.name': 'node-a',
      'deployment.environment': 'staging',
      team: 'edge',
      'cloud.region': 'eu-1',
    });
    process.env.OTEL_SERVICE_NAME = 'carnx-edge';
    assert.is(buildResource(c, {}, '1').attributes['service.name'], 'carnx-edge', 'OTEL_SERVICE_NAME over the default');
    const byConfig = config((x) => {
      x.resource.attributes = { 'service.name': 'mine' };
    });
    assert.is(buildResource(byConfig, {}, '1').attributes['service.name'], 'mine', 'config over OTEL_SERVICE_NAME');
    assert.not.ok('k8s.node.name' in buildResource(c, {}, '1').attributes);
  } finally {
    for (const [k, v] of [
      ['OTEL_RESOURCE_ATTRIBUTES', saved.attrs],
      ['OTEL_SERVICE_NAME', saved.name],
    ] as const) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
});

test('service.instance.id: a UUIDv5 of /etc/machine-id (never the raw id), else the host name', () => {
  assert.is(uuidV5('6ba7b810-9dad-11d1-80b4-00c04fd430c8', 'www.example.com'), '2ed6657d-e927-568b-95e1-2665a8aea6a2');
  const path = join(dir, 'machine-id');
  writeFileSync(path, '0123456789abcdef0123456789abcdef\n');
  const id = buildResource(config(), {}, '1', path).attributes['service.instance.id'] as string;
  assert.match(id, /^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  assert.not.ok(id.replace(/-/g, '').includes('0123456789abcdef'));
  assert.is(buildResource(config(), {}, '1', path).attributes['service.instance.id'], id, 'stable');
  assert.is(buildResource(config(), {}, '1', join(dir, 'absent')).attributes['service.instance.id'], hostname());
});

test('stop is idempotent and bounded; a started pipeline does not keep the process alive', async () => {
  let shutdowns = 0;
  const exporter = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE);
  const shutdown = exporter.shutdown.bind(exporter);
  exporter.shutdown = () => {
    shutdowns++;
    return shutdown();
  };
  const pipeline = new MetricsPipeline({
    config: config(),
    logger,
    source: snapshots,
    packageVersion: '1',
    exporter,
    attachedByHook: () => ({}),
  });
  pipeline.start();
  const first = pipeline.stop(1000);
  assert.is(pipeline.stop(1000), first, 'a second stop returns the first one');
  await first;
  assert.is(shutdowns, 1);
  assert.is(exporter.getMetrics().length, 1, 'stop exported once more');
  const refused = await pipeline.forceCollectAndExport().then(
    () => undefined,
    (err: Error) => err,
  );
  assert.match(refused?.message ?? '', 'not running');

  // A collector that never answers: stop() still returns within its bound, and says so once.
  const silent = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE);
  silent.export = () => {};
  const stuck = new MetricsPipeline({
    config: config((c) => {
      c.export.intervalMs = 300;
    }),
    logger,
    source: snapshots,
    packageVersion: '1',
    exporter: silent,
    attachedByHook: () => ({}),
  });
  stuck.start();
  const before = lines.length;
  const started = Date.now();
  await stuck.stop(150);
  assert.ok(Date.now() - started < 1000, `stop took ${Date.now() - started} ms`);
  assert.equal(
    lines.slice(before).map((l) => (JSON.parse(l) as { msg: string }).msg),
    ['the last metrics export did not finish in time; stopping without it'],
  );

  const module = fileURLToPath(new URL('../../src/metrics/metrics-pipeline.js', import.meta.url));
  const layout = fileURLToPath(new URL('../../src/config/load-config.js', import.meta.url));
  const script = `
    const { MetricsPipeline } = await import(${JSON.stringify(module)});
    const { loadConfig } = await import(${JSON.stringify(layout)});
    const { InMemoryMetricExporter } = await import('@opentelemetry/sdk-metrics');
    const config = loadConfig({ argv: ['--export-interval-ms', '100'], env: {} });
    const p = new MetricsPipeline({ config, logger: { info() {}, warn() {} }, source: () => [], packageVersion: '1',
      exporter: new InMemoryMetricExporter(1), attachedByHook: () => ({}) });
    p.start();`;
  const child = spawnSync(process.execPath, ['--input-type=module', '-e', script], {
    cwd: fileURLToPath(new URL('../../../', import.meta.url)),
    timeout: 10_000,
    encoding: 'utf8',
  });
  assert.is(child.error, undefined, 'the child exited on its own before the 10 s timeout');
  assert.is(child.status, 0, child.stderr);
});

test.run();
