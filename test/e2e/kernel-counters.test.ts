// The kernel's own statistics of a counted veth, exported as system.network.*: names, units, directions, values = sysfs.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import { TRAFFIC_CLASSES } from '../../src/bpf/counter-layout.js';
import { startAgent, testBpffs } from '../fixtures/agent-process.js';
import { Cleanups } from '../fixtures/cleanups.js';
import { TestCollector, bySeries, lastPoints, seriesKey, type Point } from '../fixtures/collector.js';
import { quietPair, up, type VethPair } from '../fixtures/netns.js';
import { requireRoot } from '../fixtures/privileges.js';
import { PACKAGE_VERSION } from '../fixtures/repo.js';
import { ping, sendUdp, tcpConnections } from '../fixtures/traffic.js';
import { waitFor } from '../fixtures/wait.js';
import { reported } from '../fixtures/hooks.js';

const ETH_HEADER = 14n;
/** Name, unit, and where each direction's value is in sysfs (dropped: the drop column of /proc/net/dev). */
const METRICS = [
  { name: 'system.network.packets', unit: '{packet}', receive: ['rx_packets'], transmit: ['tx_packets'] },
  { name: 'system.network.io', unit: 'By', receive: ['rx_bytes'], transmit: ['tx_bytes'] },
  { name: 'system.network.errors', unit: '{error}', receive: ['rx_errors'], transmit: ['tx_errors'] },
  {
    name: 'system.network.dropped',
    unit: '{packet}',
    receive: ['rx_dropped', 'rx_missed_errors'],
    transmit: ['tx_dropped'],
  },
] as const;
const DIRECTIONS = ['receive', 'transmit'] as const;
/** Prometheus names the collector gives them (units: By -> bytes, annotations like {packet} dropped). */
const PROMETHEUS: Record<string, string> = {
  'system.network.packets': 'system_network_packets_total',
  'system.network.io': 'system_network_io_bytes_total',
  'system.network.errors': 'system_network_errors_total',
  'system.network.dropped': 'system_network_dropped_total',
};

/** The collector fixture's key of one system.network.* series. */
const keyOf = (metric: string, ifname: string, direction: string) =>
  seriesKey({ metric, attributes: { 'network.interface.name': ifname, 'network.io.direction': direction } });

/** The value every system.network.* series of `ifname` should carry now, by series key, read from sysfs. */
function kernelSeries(ifname: string): Map<string, bigint> {
  const read = (file: string) => BigInt(readFileSync(`/sys/class/net/${ifname}/statistics/${file}`, 'utf8').trim());
  const out = new Map<string, bigint>();
  for (const m of METRICS) {
    for (const direction of DIRECTIONS) {
      out.set(
        keyOf(m.name, ifname, direction),
        m[direction].reduce((n, file) => n + read(file), 0n),
      );
    }
  }
  return out;
}

const isOf = (p: Point, ifname: string, direction: string) =>
  p.attributes['network.interface.name'] === ifname && p.attributes['network.io.direction'] === direction;
const isReceiveOf = (p: Point, ifname: string) => isOf(p, ifname, 'receive');

/** The latest of some end times (0 for none). */
// biome-ignore lint/complexity/useMathMinMax: these are bigints, which Math.max does not take.
const latest = (times: bigint[]) => times.reduce((a, b) => (b > a ? b : a), 0n);

const kernelPoints = (points: readonly Point[], ifname: string) =>
  points.filter((p) => p.metric.startsWith('system.network.') && p.attributes['network.interface.name'] === ifname);

interface Quiet {
  /** The sysfs values, unchanged from before to after the collections below. */
  kernel: Map<string, bigint>;
  /** Everything received so far; its last collections of `ifname` were taken while sysfs held still. */
  points: Point[];
  /** End time of the latest collection of `ifname` in `points`. */
  lastTime: bigint;
}

/**
 * A moment when the interface's statistics hold still: sysfs reads the same before and after two collections taken
 * after the first read, so the collection values must equal sysfs exactly. Retries while the kernels' own chatter
 * (router solicitations, ND, MLD) moves the counters.
 */
async function quietExport(collector: TestCollector, ifname: string, timeoutMs = 30_000): Promise<Quiet> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const before = kernelSeries(ifname);
    const t1 = BigInt(Date.now()) * 1_000_000n;
    const times = (points: Point[]) => new Set(kernelPoints(points, ifname).map((p) => p.time));
    const points = await waitFor(
      `two collections of ${ifname}'s kernel statistics after a look at sysfs`,
      () => {
        const now = collector.points();
        return [...times(now)].filter((t) => t > t1).length >= 2 && now;
      },
      15_000,
    );
    const after = kernelSeries(ifname);
    if ([...before].every(([k, v]) => after.get(k) === v)) {
      const lastTime = latest([...times(points)]);
      return { kernel: before, points, lastTime };
    }
    if (Date.now() > deadline) throw new Error(`${ifname}'s statistics never held still`);
  }
}

/** Traffic both ways: UDP and TCP from the namespace (receive), echo replies and TCP answers from the host side. */
async function sendBothWays(pair: VethPair): Promise<{ receive: number; transmit: number }> {
  sendUdp(pair, pair.hostAddress, 30, 200);
  ping(pair, pair.hostAddress, 6);
  await tcpConnections(pair, pair.hostAddress, 3, 500);
  // At least: 30 datagrams + 6 requests + 3 x (SYN, ACK, data, FIN, ACK); 6 replies + 3 x (SYN-ACK, ACK, FIN, ACK).
  return { receive: 30 + 6 + 3 * 5, transmit: 6 + 3 * 4 };
}

const Kernel = suite('e2e: the kernel statistics of counted interfaces as system.network.*');
const cleanups = new Cleanups();

Kernel.before(reported(() => requireRoot('the e2e tests')));
Kernel.after.each(() => cleanups.run());

Kernel(
  'cumulative: names, units, both directions, values equal to sysfs at the same moment; carnx vs kernel',
  async () => {
    const pair = quietPair(cleanups, 'q');
    const bpffs = testBpffs(cleanups, 'e2e-kernel');
    const collector = cleanups.add(await TestCollector.start(), (c) => c.destroy());
    const agent = startAgent(cleanups, bpffs, pair.host, [
      '--otlp-endpoint',
      collector.endpoint,
      '--export-interval-ms',
      '500',
    ]);
    const mode = String((await agent.waitForMsg('attached', { interface: pair.host, direction: 'receive' })).mode);
    assert.ok(['native', 'generic'].includes(mode), `receive: XDP attached in ${mode} mode`);
    await agent.waitForMsg('attached', { interface: pair.host, hook: 'tc-egress' });
    const start = await quietExport(collector, pair.host);
    up(pair);
    const sent = await sendBothWays(pair);
    const end = await quietExport(collector, pair.host);

    // Exactly what sysfs held at that moment, every series.
    const exported = new Map([...lastPoints(kernelPoints(end.points, pair.host))].map(([k, p]) => [k, p.int]));
    assert.equal(exported, end.kernel, 'every series = sysfs');
    for (const p of kernelPoints(end.points, pair.host).filter((p) => p.time === end.lastTime)) {
      assert.is(p.int, end.kernel.get(seriesKey(p)), `${seriesKey(p)} in the last collection`);
    }

    // Names, units, kinds and attributes, at the collector.
    const points = end.points.filter((p) => p.metric.startsWith('system.network.'));
    assert.equal(
      [...new Set(points.map((p) => p.attributes['network.interface.name']))],
      [pair.host],
      'only the counted interface',
    );
    for (const m of METRICS) {
      const mine = points.filter((p) => p.metric === m.name);
      assert.equal([...new Set(mine.map((p) => p.attributes['network.io.direction']))].sort(), [...DIRECTIONS]);
      for (const p of mine) {
        assert.is(p.unit, m.unit, `${m.name} unit`);
        assert.is(p.kind, 'sum', `${m.name} kind`);
        assert.is(p.monotonic, true, `${m.name} monotonic`);
        assert.is(p.temporality, 2, `${m.name} cumulative`);
        assert.ok(p.int !== undefined, `${m.name} is an integer`);
        assert.equal(Object.keys(p.attributes).sort(), ['network.interface.name', 'network.io.direction']);
        assert.is(p.scope.name, 'carnx.kernel');
        assert.is(p.scope.version, PACKAGE_VERSION);
        assert.is(p.resource['service.name'], 'carnx');
      }
    }

    // The traffic arrived and left, as the kernel counted it.
    const grew = (metric: string, direction: string) => {
      const key = keyOf(metric, pair.host, direction);
      return end.kernel.get(key)! - start.kernel.get(key)!;
    };
    assert.ok(grew('system.network.packets', 'receive') >= BigInt(sent.receive), 'received');
    assert.ok(grew('system.network.packets', 'transmit') >= BigInt(sent.transmit), 'transmitted');
    assert.ok(grew('system.network.io', 'receive') >= 30n * 242n, 'received bytes: at least the datagrams');

    // carnx's own count of the same frames: equal packets; bytes differ by the Ethernet header only in native mode.
    const carnx = (q: Quiet, metric: string, direction = 'receive') =>
      [...lastPoints(q.points.filter((p) => p.metric === metric && isOf(p, pair.host, direction)))]
        .map(([, p]) => p.int ?? 0n)
        .reduce((a, b) => a + b, 0n);
    assert.is(
      lastPoints(end.points.filter((p) => p.metric === 'carnx.packets' && isReceiveOf(p, pair.host))).size,
      TRAFFIC_CLASSES.length,
      'carnx.packets: every class',
    );
    const packets = carnx(end, 'carnx.packets') - carnx(start, 'carnx.packets');
    assert.is(packets, grew('system.network.packets', 'receive'), 'carnx.packets = system.network.packets{receive}');
    const header = mode === 'native' ? ETH_HEADER * packets : 0n;
    assert.is(
      carnx(end, 'carnx.bytes') - carnx(start, 'carnx.bytes'),
      grew('system.network.io', 'receive') + header,
      `carnx.bytes = system.network.io{receive}${mode === 'native' ? ' + 14 B per frame (native XDP on veth)' : ''}`,
    );
    // Transmit, counted at TC egress before the qdisc: the same, as nothing here is GSO or dropped by the qdisc.
    assert.is(
      carnx(end, 'carnx.packets', 'transmit') - carnx(start, 'carnx.packets', 'transmit'),
      grew('system.network.packets', 'transmit'),
      'carnx.packets = system.network.packets{transmit}',
    );
    assert.is(
      carnx(end, 'carnx.bytes', 'transmit') - carnx(start, 'carnx.bytes', 'transmit'),
      grew('system.network.io', 'transmit'),
      'carnx.bytes = system.network.io{transmit}',
    );

    // The collector's Prometheus exporter serves the same values.
    const scraped = await waitFor(
      'the Prometheus exporter to serve the last export',
      async () => {
        const samples = (await collector.scrape()).filter((s) => s.labels.network_interface_name === pair.host);
        const rx = samples.find(
          (s) => s.name === 'system_network_packets_total' && s.labels.network_io_direction === 'receive',
        );
        return rx?.value === Number(end.kernel.get(keyOf('system.network.packets', pair.host, 'receive'))) && samples;
      },
      5_000,
      200,
    );
    for (const m of METRICS) {
      for (const direction of DIRECTIONS) {
        assert.equal(
          scraped
            .filter((s) => s.name === PROMETHEUS[m.name] && s.labels.network_io_direction === direction)
            .map((s) => s.value),
          [Number(end.kernel.get(keyOf(m.name, pair.host, direction)))],
          `prometheus ${PROMETHEUS[m.name]} ${direction}`,
        );
      }
    }
    assert.is((await agent.stop()).code, 0, 'clean exit');
  },
);

Kernel('delta: the first point is 0 even after earlier traffic; the deltas add up to the change in sysfs', async () => {
  const pair = quietPair(cleanups, 'r');
  up(pair);
  ping(pair, pair.hostAddress, 3); // history the agent must not report as its first delta
  const bpffs = testBpffs(cleanups, 'e2e-kernel-delta');
  const collector = cleanups.add(await TestCollector.start(), (c) => c.destroy());
  const agent = startAgent(cleanups, bpffs, pair.host, [
    '--otlp-endpoint',
    collector.endpoint,
    '--export-interval-ms',
    '500',
    '--otlp-temporality',
    'delta',
    '--xdp-mode',
    'generic',
  ]);
  await agent.waitForMsg('attached', { interface: pair.host, mode: 'generic' });
  const start = await quietExport(collector, pair.host);
  await sendBothWays(pair);
  const end = await quietExport(collector, pair.host);

  const series = bySeries(kernelPoints(end.points, pair.host));
  assert.is(series.size, METRICS.length * DIRECTIONS.length, 'every series');
  const packetsBefore = start.kernel.get(keyOf('system.network.packets', pair.host, 'receive'))!;
  assert.ok(packetsBefore >= 3n, `the interface had a history (${packetsBefore} packets received)`);
  for (const [key, list] of series) {
    assert.ok(
      list.every((p) => p.temporality === 1),
      `${key}: delta`,
    );
    assert.is(list[0]!.int, 0n, `${key}: the first point is 0, not the interface's history`);
    for (let i = 1; i < list.length; i++) {
      assert.is(list[i]!.start, list[i - 1]!.time, `${key}: interval ${i} starts where ${i - 1} ended`);
    }
    const later = list.filter((p) => p.time > start.lastTime).reduce((n, p) => n + (p.int ?? 0n), 0n);
    assert.is(later, end.kernel.get(key)! - start.kernel.get(key)!, `${key}: deltas = change in sysfs`);
  }

  // carnx's deltas over the same collections: generic XDP sees whole frames, as veth's rx_bytes counts them then.
  const carnxAfterStart = (metric: string) => {
    const mine = (points: Point[]) => points.filter((p) => p.metric === metric && isReceiveOf(p, pair.host));
    const from = latest(mine(start.points).map((p) => p.time));
    return mine(end.points)
      .filter((p) => p.time > from)
      .reduce((n, p) => n + (p.int ?? 0n), 0n);
  };
  const change = (metric: string) => {
    const key = keyOf(metric, pair.host, 'receive');
    return end.kernel.get(key)! - start.kernel.get(key)!;
  };
  assert.is(carnxAfterStart('carnx.packets'), change('system.network.packets'), 'carnx.packets = kernel packets');
  assert.is(carnxAfterStart('carnx.bytes'), change('system.network.io'), 'carnx.bytes = kernel bytes (generic)');
  assert.is((await agent.stop()).code, 0, 'clean exit');
});

Kernel.run();
