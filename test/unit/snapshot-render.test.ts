// carnx snapshot's JSON and text from known counters: the JSON is what the exporter's producer makes of the same counters.
import { tmpdir } from 'node:os';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { Histogram, SumMetricData, HistogramMetricData } from '@opentelemetry/sdk-metrics';
import { SIZE_BUCKET_COUNT, emptyCounters, type InterfaceCounters } from '../../src/bpf/counter-layout.js';
import { snapshotJson, type SnapshotHistogramPoint, type SnapshotSumPoint } from '../../src/cli/snapshot-json.js';
import { snapshotText } from '../../src/cli/snapshot-text.js';
import { SNAPSHOT_HELP, snapshotCommand } from '../../src/cli/snapshot-command.js';
import { bpffsPathOf, isEmpty, nothingPinned, splitFlags } from '../../src/cli/snapshot-source.js';
import { HostNotReady } from '../../src/host/host-errors.js';
import { createLogger } from '../../src/log/logger.js';
import { CounterProducer } from '../../src/metrics/counter-producer.js';
import { COUNTER_INSTRUMENTS } from '../../src/metrics/counter-instruments.js';
import type { PinnedCounters, PinnedReading } from '../../src/reader/pinned-counters.js';

const SINCE = 1_700_000_000_123_456_789n;
const READ_AT = 1_700_000_100_987_654_321n;
const MAX_U64 = 2n ** 64n - 1n;

/** Counters with a distinct value in every word, so a value read from the wrong place shows. */
function counters(seed: bigint): InterfaceCounters {
  const c = emptyCounters();
  let n = seed;
  const next = () => {
    n += 7n;
    return n;
  };
  c.packets = c.packets.map(next);
  c.bytes = c.bytes.map(() => next() * 100n);
  c.tcpFlags = c.tcpFlags.map(next);
  c.tcpSyn = c.tcpSyn.map(next);
  c.vlanPackets = next();
  c.malformed = c.malformed.map(next);
  c.sizeBuckets = c.sizeBuckets.map(next);
  return c;
}

function reading(ifname: string, direction: 'receive' | 'transmit', c: InterfaceCounters): PinnedReading {
  return {
    ifname,
    direction,
    hook: direction === 'transmit' ? 'tc-egress' : 'xdp-native',
    ifindex: 7,
    countingSinceUnixNs: SINCE,
    counters: c,
  };
}

function read(readings: PinnedReading[], unread: PinnedCounters['unread'] = []): PinnedCounters {
  return { readAtUnixNs: READ_AT, readAtMonotonicNs: 1n, readings, unread };
}

test('--json carries, point for point, what the exporter makes of the same counters (names, attributes, values)', async () => {
  const readings = [reading('eth0', 'receive', counters(1n)), reading('eth0', 'transmit', counters(5000n))];
  const json = snapshotJson('/sys/fs/bpf', read(readings));
  const producer = new CounterProducer({
    source: () =>
      readings.map((r) => ({
        name: r.ifname,
        ifindex: r.ifindex,
        direction: r.direction,
        hook: r.hook!,
        countingSinceUnixNs: r.countingSinceUnixNs,
        counters: r.counters,
      })),
    logger: createLogger('error', { write: () => undefined }),
    packageVersion: '0.0.0',
    temporality: 'cumulative',
    now: () => READ_AT,
  });
  const { resourceMetrics } = await producer.collect();
  const exported = resourceMetrics.scopeMetrics[0]!.metrics;
  assert.equal(
    json.metrics.map((m) => [m.name, m.unit]),
    exported.map((m) => [m.descriptor.name, m.descriptor.unit]),
  );
  for (const [i, metric] of exported.entries()) {
    const mine = json.metrics[i]!;
    assert.is(mine.dataPoints.length, metric.dataPoints.length, `${mine.name}: as many points`);
    for (const [j, p] of metric.dataPoints.entries()) {
      const s = mine.dataPoints[j]!;
      assert.equal(s.attributes, p.attributes, `${mine.name} point ${j} attributes`);
      if (mine.kind === 'sum') {
        assert.is(
          (s as SnapshotSumPoint).value,
          (p as SumMetricData['dataPoints'][number]).value,
          `${mine.name} point ${j}`,
        );
      } else {
        const h = (p as HistogramMetricData['dataPoints'][number]).value as Histogram;
        const sh = s as SnapshotHistogramPoint;
        assert.equal(
          [sh.count, sh.sum, sh.bucketCounts, sh.explicitBounds],
          [h.count, h.sum, h.buckets.counts, h.buckets.boundaries],
          `${mine.name} point ${j}`,
        );
      }
      assert.is(s.startTimeUnixNano, SINCE.toString(), 'every digit of the start time');
    }
  }
  assert.is(json.schemaVersion, 1);
  assert.is(json.timeUnixNano, READ_AT.toString());
  assert.equal(json.interfaces, [
    {
      'network.interface.name': 'eth0',
      'network.io.direction': 'receive',
      hook: 'xdp-native',
      ifindex: 7,
      startTimeUnixNano: SINCE.toString(),
    },
    {
      'network.interface.name': 'eth0',
      'network.io.direction': 'transmit',
      hook: 'tc-egress',
      ifindex: 7,
      startTimeUnixNano: SINCE.toString(),
    },
  ]);
  assert.is(json.metrics.length, COUNTER_INSTRUMENTS.length);
});

test('--json lists unread directions apart and never as zeros; the hook of a gone device is null', () => {
  const gone = { ...reading('old0', 'receive', emptyCounters()), hook: undefined, ifindex: 0 };
  const json = snapshotJson(
    '/b',
    read([gone], [{ ifname: 'eth1', direction: 'transmit', reason: 'attach not complete' }]),
  );
  assert.equal(json.unread, [
    { 'network.interface.name': 'eth1', 'network.io.direction': 'transmit', reason: 'attach not complete' },
  ]);
  assert.equal(json.interfaces[0]?.hook, null);
  assert.ok(json.metrics.every((m) => m.dataPoints.every((p) => p.attributes['network.interface.name'] === 'old0')));
});

test('text: one block per direction, classes with traffic and their total, every other counter named', () => {
  const c = emptyCounters();
  c.packets[1] = 40n; // ipv4 udp
  c.bytes[1] = 9680n;
  c.packets[10] = 2n; // arp
  c.bytes[10] = 84n;
  c.tcpFlags[1] = 3n;
  c.tcpSyn = [3n, 1n];
  c.malformed = [0n, 0n, 5n];
  c.sizeBuckets[3] = 42n;
  const text = snapshotText(
    '/sys/fs/bpf',
    read(
      [reading('eth0.100', 'receive', c)],
      [{ ifname: 'eth1', direction: 'transmit', reason: 'attach not complete' }],
    ),
  );
  assert.equal(text.split('\n'), [
    'carnx snapshot of /sys/fs/bpf at 2023-11-14T22:15:00Z',
    '',
    'eth0.100 receive (xdp-native, ifindex 7)',
    '  counting since 2023-11-14T22:13:20Z',
    '  protocol                      packets                bytes',
    '  ipv4 udp                           40                 9680',
    '  arp none                            2                   84',
    '  all                                42                 9764',
    '  tcp flags   fin 0  syn 3  rst 0  psh 0  ack 0  urg 0  ece 0  cwr 0',
    '  tcp syn     syn 3  syn_ack 1',
    '  vlan        0',
    '  malformed   l2 0  l3 0  l4 5',
    '  sizes       <=64 0  <=127 0  <=255 0  <=511 42  <=1023 0  <=1518 0  <=9000 0',
    '              >9000 0',
    '',
    'eth1 transmit: not read: attach not complete',
    '',
  ]);
});

test('text stays within 80 columns with every counter at its maximum and the longest interface name', () => {
  const c = emptyCounters();
  for (const field of ['packets', 'bytes', 'tcpFlags', 'tcpSyn', 'malformed', 'sizeBuckets'] as const)
    c[field] = c[field].map(() => MAX_U64);
  c.vlanPackets = MAX_U64;
  const text = snapshotText('/sys/fs/bpf', read([{ ...reading('x'.repeat(15), 'transmit', c), ifindex: 2 ** 31 }]));
  const lines = text.split('\n');
  assert.equal(
    lines.filter((l) => l.length > 80),
    [],
  );
  assert.ok(
    lines.some((l) => l.includes(`${MAX_U64}`)),
    'numbers are exact, not abbreviated',
  );
  assert.is(c.sizeBuckets.length, SIZE_BUCKET_COUNT);
});

test('the command keeps its own switches and hands everything else to the config loader', () => {
  const { own, config } = splitFlags(['--json', '--bpffs-path', '/x', '--config=/c.yaml'], ['--json', '--help']);
  assert.equal([...own], ['--json']);
  assert.equal(config, ['--bpffs-path', '/x', '--config=/c.yaml']);
});

test('--help prints its own text without touching bpffs; the no-pins line says what to do next', () => {
  const out: string[] = [];
  assert.is(
    snapshotCommand(['--help'], (t) => out.push(t)),
    0,
  );
  assert.equal(out, [`${SNAPSHOT_HELP}\n`]);
  assert.is(
    nothingPinned('/sys/fs/bpf').message,
    "no carnx counters are pinned under /sys/fs/bpf: start the agent (npm start, or carnx run), or point --bpffs-path at the agent's bpffs.path",
  );
  assert.ok(isEmpty(read([])));
  assert.not.ok(isEmpty(read([], [{ ifname: 'a', direction: 'receive', reason: 'x' }])));
});

test('the pins are looked for at bpffs.path; a path that is no bpffs is refused before anything is read', () => {
  assert.is(bpffsPathOf(['--bpffs-path', '/run/bpf']), '/run/bpf');
  assert.is(bpffsPathOf([]), '/sys/fs/bpf');
  try {
    snapshotCommand(['--json', '--bpffs-path', tmpdir()], () => assert.unreachable('nothing printed'));
    assert.unreachable('refused');
  } catch (err) {
    assert.instance(err, HostNotReady);
    assert.match((err as Error).message, /is not a bpf filesystem/);
  }
});

test.run();
