// The whole path: real traffic on a veth -> carnx (a separate process) -> a real collector; its output equals the kernel and a tcpdump witness.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { SIZE_BUCKET_BOUNDS, SYN_KINDS, TCP_FLAGS, TRAFFIC_CLASSES, sum } from '../../src/bpf/counter-layout.js';
import { startAgent, testBpffs } from '../fixtures/agent-process.js';
import { TestCollector, bySeries, lastPoints, type Point, type PromSample } from '../fixtures/collector.js';
import { classIndex } from '../fixtures/frames.js';
import { requireRoot } from '../fixtures/privileges.js';
import { Capture, select, witnessCounts, type WitnessCounts } from '../fixtures/witness.js';
import { pinTree, xdpOn } from '../fixtures/kernel-objects.js';
import { Cleanups } from '../fixtures/cleanups.js';
import { HOST_V6, quietPair, up } from '../fixtures/netns.js';
import { PACKAGE_VERSION } from '../fixtures/repo.js';
import { decreasingSeries, exportedCounters, settle, type ExportedCounters } from '../fixtures/exported-counters.js';
import { ping, replay, sendUdp, taggedFrames, tcpConnections } from '../fixtures/traffic.js';
import { waitFor } from '../fixtures/wait.js';
import { reported } from '../fixtures/hooks.js';

const ETH_HEADER = 14n;
const IFACE_ATTRS = ['network.interface.name', 'network.io.direction'];
/** The documented metrics (test/deploy/exported-metrics.json): name, unit, kind, attribute names besides the interface's. */
const DOCUMENTED: Array<{ name: string; unit: string; kind: Point['kind']; attributes: string[] }> = [
  {
    name: 'carnx.packets',
    unit: '{packet}',
    kind: 'sum',
    attributes: [...IFACE_ATTRS, 'network.transport', 'network.type'],
  },
  { name: 'carnx.bytes', unit: 'By', kind: 'sum', attributes: [...IFACE_ATTRS, 'network.transport', 'network.type'] },
  { name: 'carnx.tcp.flags', unit: '{segment}', kind: 'sum', attributes: [...IFACE_ATTRS, 'tcp.flag'] },
  { name: 'carnx.tcp.syn', unit: '{segment}', kind: 'sum', attributes: [...IFACE_ATTRS, 'carnx.tcp.syn.kind'] },
  { name: 'carnx.vlan.packets', unit: '{packet}', kind: 'sum', attributes: IFACE_ATTRS },
  {
    name: 'carnx.malformed.packets',
    unit: '{packet}',
    kind: 'sum',
    attributes: [...IFACE_ATTRS, 'carnx.malformed.layer'],
  },
  { name: 'carnx.packet.size', unit: 'By', kind: 'histogram', attributes: IFACE_ATTRS },
  {
    name: 'carnx.agent.interfaces',
    unit: '{interface}',
    kind: 'gauge',
    // carnx.xdp.mode only on XDP hooks (checked below).
    attributes: ['carnx.hook', 'network.io.direction', 'carnx.xdp.mode'],
  },
  { name: 'carnx.agent.export.failures', unit: '{failure}', kind: 'sum', attributes: [] },
  { name: 'carnx.agent.collection.duration', unit: 's', kind: 'histogram', attributes: [] },
];

const Totals = suite('e2e: traffic totals through a real collector');
const cleanups = new Cleanups();
let work = '';

Totals.before(
  reported(() => {
    requireRoot('the e2e tests');
    work = mkdtempSync(join(tmpdir(), 'carnx-e2e-totals-'));
  }),
);
Totals.after.each(() => cleanups.run());
Totals.after(() => rmSync(work, { recursive: true, force: true }));

/** What the namespace sends; the rest (ARP, ND, MLD, RS) the kernels add on their own. */
const SENT = { udp4: 40, udp4Large: 5, udp4Max: 3, udp6: 25, pings: 5, pings6: 4, tcp4: 6, tcp6: 3 };

async function sendEverything(pair: ReturnType<typeof quietPair>): Promise<ReturnType<typeof taggedFrames>> {
  sendUdp(pair, pair.hostAddress, SENT.udp4, 100);
  sendUdp(pair, pair.hostAddress, SENT.udp4Large, 1400);
  sendUdp(pair, pair.hostAddress, SENT.udp4Max, 1472); // 1514-byte frames: the largest untagged at MTU 1500
  sendUdp(pair, `${HOST_V6}%${pair.peer}`, SENT.udp6, 60);
  ping(pair, pair.hostAddress, SENT.pings);
  ping(pair, `${HOST_V6}%${pair.peer}`, SENT.pings6);
  await tcpConnections(pair, pair.hostAddress, SENT.tcp4, 300);
  await tcpConnections(pair, HOST_V6, SENT.tcp6, 500);
  const tagged = taggedFrames(pair);
  replay(pair, tagged, work);
  return tagged;
}

/** Every counter the tcpdump witness also counts, one assertion each. */
function assertCountersEqual(actual: ExportedCounters, expected: WitnessCounts, what: string): void {
  for (const c of TRAFFIC_CLASSES) {
    assert.is(actual.packets[c.index], expected.packets[c.index], `${what}: ${c.network}/${c.transport} packets`);
    assert.is(actual.bytes[c.index], expected.bytes[c.index], `${what}: ${c.network}/${c.transport} bytes`);
  }
  for (const [i, flag] of TCP_FLAGS.entries())
    assert.is(actual.tcpFlags[i], expected.tcpFlags[i], `${what}: TCP ${flag}`);
  for (const [i, kind] of SYN_KINDS.entries())
    assert.is(actual.tcpSyn[i], expected.tcpSyn[i], `${what}: carnx.tcp.syn ${kind}`);
  assert.is(actual.vlanPackets, expected.vlanPackets, `${what}: VLAN-tagged frames`);
  for (const [i, bound] of [...SIZE_BUCKET_BOUNDS, '+Inf'].entries())
    assert.is(actual.sizeBuckets[i], expected.sizeBuckets[i], `${what}: size bucket <= ${bound}`);
}

Totals(
  'cumulative: per interface = rx_packets/rx_bytes, per class = tcpdump and what was sent; names, resource, Prometheus',
  async () => {
    const pair = quietPair(cleanups, 'e');
    const bpffs = testBpffs(cleanups, 'e2e-totals');
    const collector = cleanups.add(await TestCollector.start(), (c) => c.destroy());
    const capture = cleanups.add(await Capture.start(pair.host, work), (c) => c.kill());
    const agent = startAgent(cleanups, bpffs, pair.host, [
      // The receive side against rx statistics and a capture; transmit is proven in test/kernel/tc-hooks.test.ts.
      '--interfaces-directions',
      'receive',
      '--otlp-endpoint',
      collector.endpoint,
      '--export-interval-ms',
      '500',
      '--log-level',
      'info',
      '--resource-attributes',
      'deployment.environment=e2e',
    ]);
    const attached = await agent.waitForMsg('attached', { interface: pair.host });
    const mode = String(attached.mode);
    assert.ok(['native', 'generic'].includes(mode), `attached in ${mode} mode`);
    const start = await settle(pair, collector, pair.host);
    assert.is(
      sum(exportedCounters(start.points, pair.host, 'cumulative').packets),
      0n,
      'nothing counted before the namespace side is up',
    );

    up(pair);
    const tagged = await sendEverything(pair);
    const end = await settle(pair, collector, pair.host, { capture, dir: work });
    const exported = exportedCounters(end.points, pair.host, 'cumulative');

    // Per interface: the kernel's own statistics.
    const rxPackets = end.rx.packets - start.rx.packets;
    const rxBytes = end.rx.bytes - start.rx.bytes;
    assert.ok(rxPackets > 100n, `traffic arrived (${rxPackets} frames)`);
    assert.is(sum(exported.packets), rxPackets, 'carnx.packets over all classes = rx_packets delta');
    // Generic XDP and veth both count whole frames; with a native program veth counts after pulling the Ethernet header.
    const header = mode === 'native' ? ETH_HEADER * rxPackets : 0n;
    assert.is(sum(exported.bytes), rxBytes + header, `carnx.bytes over all classes = rx_bytes delta (${mode})`);
    assert.is(exported.histogramCount, rxPackets, 'carnx.packet.size count = rx_packets delta');
    assert.is(BigInt(exported.histogramSum), sum(exported.bytes), 'carnx.packet.size sum = carnx.bytes');
    assert.is(sum(exported.sizeBuckets), rxPackets, 'size buckets add up to the frames');

    // Per class: the tcpdump witness, taken on the same interface over the same frames.
    const witness = witnessCounts(end.witnessFile!);
    assert.is(witness.total.packets, rxPackets, 'the witness saw every frame the kernel counted');
    assertCountersEqual(exported, witness, 'carnx vs tcpdump');
    assert.equal(exported.malformed, [0n, 0n, 0n], 'real traffic is well formed');

    // Per class: exactly what was sent, where the count is known in advance.
    const taggedOf = (network: string, transport: string) =>
      BigInt(tagged.filter((f) => f.network === network && f.transport === transport).length);
    assert.is(
      exported.packets[classIndex('ipv4', 'udp')],
      BigInt(SENT.udp4 + SENT.udp4Large + SENT.udp4Max) + taggedOf('ipv4', 'udp'),
      'IPv4 UDP',
    );
    assert.is(
      exported.bytes[classIndex('ipv4', 'udp')],
      BigInt(SENT.udp4 * 142 + SENT.udp4Large * 1442 + SENT.udp4Max * 1514) +
        BigInt(7 * (18 + 20 + 8 + 200) + 3 * (18 + 20 + 8 + 1200)),
      'IPv4 UDP bytes',
    );
    assert.is(exported.packets[classIndex('ipv6', 'udp')], BigInt(SENT.udp6) + taggedOf('ipv6', 'udp'), 'IPv6 UDP');
    assert.is(exported.packets[classIndex('ipv4', 'icmp')], BigInt(SENT.pings), 'ICMP echo requests');
    assert.is(exported.tcpFlags[1], BigInt(SENT.tcp4 + SENT.tcp6 + 4), 'one SYN per connection, plus the tagged SYNs');
    assert.equal(
      exported.tcpSyn,
      [BigInt(SENT.tcp4 + SENT.tcp6 + 4), 0n],
      'connection attempts, and no SYN-ACK received',
    );
    assert.is(exported.vlanPackets, BigInt(tagged.length), 'every replayed tagged frame');
    assert.is(exported.sizeBuckets[5], BigInt(SENT.udp4Large + SENT.udp4Max + 3), 'frames of 1024-1518 bytes');
    // The kernel's own chatter was there and counted: ARP, neighbour and router solicitations or MLD reports.
    assert.ok(
      select(end.witnessFile!, 'arp').packets > 0n,
      'the peer kernel sent ARP (untagged: the replayed ARP frames are tagged)',
    );
    assert.ok(
      select(end.witnessFile!, 'icmp6 and (ip6[40] = 133 or ip6[40] = 135 or ip6[40] = 136)').packets > 0n,
      'the peer kernel sent RS/NS/NA',
    );

    // Names, units, kinds, attributes, scope and resource as documented.
    const points = end.points;
    for (const doc of DOCUMENTED) {
      const mine = points.filter((p) => p.metric === doc.name);
      assert.ok(mine.length > 0, `${doc.name} exported`);
      for (const p of mine) {
        assert.is(p.unit, doc.unit, `${doc.name} unit`);
        assert.is(p.kind, doc.kind, `${doc.name} kind`);
        const expected = String(p.attributes['carnx.hook'] ?? '').startsWith('tc-')
          ? doc.attributes.filter((a) => a !== 'carnx.xdp.mode')
          : doc.attributes;
        assert.equal(Object.keys(p.attributes).sort(), [...expected].sort(), `${doc.name} attribute names`);
        if (doc.kind !== 'gauge') assert.is(p.temporality, 2, `${doc.name} is cumulative`);
        if (doc.kind === 'sum') assert.is(p.monotonic, true, `${doc.name} is monotonic`);
        if (doc.attributes.includes('network.io.direction') && !doc.name.startsWith('carnx.agent.')) {
          assert.is(p.attributes['network.io.direction'], 'receive', 'only receive is counted here');
        }
        assert.is(p.resource['service.name'], 'carnx');
        assert.is(p.resource['service.version'], PACKAGE_VERSION);
        assert.is(p.resource['host.name'], hostname());
        assert.match(
          String(p.resource['service.instance.id']),
          /^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/,
        );
        assert.is(p.resource['deployment.environment'], 'e2e', 'resource.attributes from the flag');
        assert.is(p.scope.version, PACKAGE_VERSION);
      }
    }
    const counterSeries = [
      ...lastPoints(
        points.filter((p) => p.attributes['network.interface.name'] === pair.host && p.metric.startsWith('carnx.')),
      ).keys(),
    ];
    assert.is(
      counterSeries.length,
      2 * TRAFFIC_CLASSES.length + TCP_FLAGS.length + SYN_KINDS.length + 1 + 3 + 1,
      'every series, zeros included',
    );
    const histogram = [...lastPoints(points.filter((p) => p.metric === 'carnx.packet.size')).values()][0]!;
    assert.equal(histogram.bounds, [...SIZE_BUCKET_BOUNDS], 'histogram bounds');
    const modes = lastPoints(points.filter((p) => p.metric === 'carnx.agent.interfaces'));
    assert.is(
      [...modes.values()].find((p) => p.attributes['carnx.xdp.mode'] === mode)?.int,
      1n,
      `carnx.agent.interfaces{mode=${mode}} = 1`,
    );
    // Every start time is the moment counting began: the same for every series of the interface.
    const starts = new Set(
      points
        .filter((p) => p.attributes['network.interface.name'] === pair.host && p.metric.startsWith('carnx.'))
        .map((p) => p.start),
    );
    assert.is(starts.size, 1, 'one start time for the interface');
    assert.equal(decreasingSeries(collector.points()), [], 'no cumulative point ever decreases');

    // The collector's Prometheus exporter serves the same values.
    const promOf = (samples: PromSample[], name: string, labels: Record<string, string>) =>
      samples.filter(
        (s) =>
          s.name === name &&
          s.labels.network_interface_name === pair.host &&
          Object.entries(labels).every(([k, v]) => s.labels[k] === v),
      );
    // What the last scrape showed, for the failure message: a wait that times out says how far off it was.
    let lastScrape = 'no scrape answered';
    const scraped = await waitFor(
      'the Prometheus exporter to serve the last export',
      async () => {
        const samples = await collector.scrape().catch((err: Error) => {
          lastScrape = `scrape failed: ${err.message}`;
          return [];
        });
        const mine = promOf(samples, 'carnx_packets_total', {});
        const total = mine.reduce((n, s) => n + s.value, 0);
        if (samples.length > 0) lastScrape = `${mine.length} series summing to ${total} of ${rxPackets} packets`;
        return total === Number(rxPackets) ? samples : undefined;
      },
      15_000,
      200,
    ).catch((err: Error) => {
      throw new Error(`${err.message}: the last scrape had ${lastScrape}`);
    });
    for (const c of TRAFFIC_CLASSES) {
      const labels = { network_type: c.network, network_transport: c.transport };
      assert.equal(
        promOf(scraped, 'carnx_packets_total', labels).map((s) => s.value),
        [Number(exported.packets[c.index])],
        `prometheus packets ${c.network}/${c.transport}`,
      );
      assert.equal(
        promOf(scraped, 'carnx_bytes_total', labels).map((s) => s.value),
        [Number(exported.bytes[c.index])],
        `prometheus bytes ${c.network}/${c.transport}`,
      );
    }
    for (const [i, flag] of TCP_FLAGS.entries()) {
      assert.equal(
        promOf(scraped, 'carnx_tcp_flags_total', { tcp_flag: flag.toLowerCase() }).map((s) => s.value),
        [Number(exported.tcpFlags[i])],
        `prometheus tcp flag ${flag}`,
      );
    }
    for (const [i, kind] of SYN_KINDS.entries()) {
      assert.equal(
        promOf(scraped, 'carnx_tcp_syn_total', { carnx_tcp_syn_kind: kind }).map((s) => s.value),
        [Number(exported.tcpSyn[i])],
        `prometheus tcp syn ${kind}`,
      );
    }
    assert.equal(
      promOf(scraped, 'carnx_vlan_packets_total', {}).map((s) => s.value),
      [Number(exported.vlanPackets)],
      'prometheus vlan',
    );
    assert.equal(
      promOf(scraped, 'carnx_malformed_packets_total', {}).map((s) => s.value),
      [0, 0, 0],
      'prometheus malformed',
    );
    assert.equal(
      promOf(scraped, 'carnx_packet_size_bytes_count', {}).map((s) => s.value),
      [Number(rxPackets)],
      'prometheus histogram count',
    );
    assert.equal(
      promOf(scraped, 'carnx_packet_size_bytes_sum', {}).map((s) => s.value),
      [Number(sum(exported.bytes))],
      'prometheus histogram sum',
    );
    let cumulative = 0n;
    [...SIZE_BUCKET_BOUNDS, '+Inf'].forEach((bound, i) => {
      cumulative += exported.sizeBuckets[i]!;
      assert.equal(
        promOf(scraped, 'carnx_packet_size_bytes_bucket', { le: String(bound) }).map((s) => s.value),
        [Number(cumulative)],
        `prometheus bucket le=${bound}`,
      );
    });
    for (const s of promOf(scraped, 'carnx_packets_total', {})) {
      assert.is(s.labels.job, 'carnx', 'job = service.name');
      assert.is(
        s.labels.instance,
        String(points[0]!.resource['service.instance.id']),
        'instance = service.instance.id',
      );
    }

    const stats = await capture.stop();
    assert.is(stats.dropped, 0, 'tcpdump dropped nothing');
    assert.is((await agent.stop()).code, 0, 'clean exit');
    assert.is(xdpOn(pair.host), undefined, 'detached on exit');
    assert.equal(pinTree(bpffs.path), [], 'no pins left');
  },
);

Totals(
  'delta temporality: the deltas add up to the same totals, interval after interval with no gap or overlap',
  async () => {
    const pair = quietPair(cleanups, 'd');
    const bpffs = testBpffs(cleanups, 'e2e-delta');
    const collector = cleanups.add(await TestCollector.start(), (c) => c.destroy());
    const capture = cleanups.add(await Capture.start(pair.host, work), (c) => c.kill());
    const agent = startAgent(cleanups, bpffs, pair.host, [
      // The receive side against rx statistics and a capture; transmit is proven in test/kernel/tc-hooks.test.ts.
      '--interfaces-directions',
      'receive',
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
    const start = await settle(pair, collector, pair.host);
    assert.is(
      sum(exportedCounters(start.points, pair.host, 'delta').packets),
      0n,
      'nothing before the namespace side is up',
    );
    up(pair);
    sendUdp(pair, pair.hostAddress, 30, 100);
    ping(pair, pair.hostAddress, 4);
    await tcpConnections(pair, pair.hostAddress, 3, 200);
    sendUdp(pair, `${HOST_V6}%${pair.peer}`, 12, 80);
    const tagged = taggedFrames(pair);
    replay(pair, tagged, work);
    const end = await settle(pair, collector, pair.host, { capture, dir: work });
    // carnx's own counters: the kernel's system.network.* points of the same interface have the SDK's timestamps.
    const mine = end.points.filter(
      (p) => p.attributes['network.interface.name'] === pair.host && p.metric.startsWith('carnx.'),
    );
    assert.ok(
      mine.every((p) => p.temporality === 1),
      'every counter point is a delta',
    );
    const totals = exportedCounters(end.points, pair.host, 'delta');
    const rxPackets = end.rx.packets - start.rx.packets;
    assert.is(sum(totals.packets), rxPackets, 'sum of deltas = rx_packets delta');
    assert.is(
      sum(totals.bytes),
      end.rx.bytes - start.rx.bytes,
      'sum of deltas = rx_bytes delta (generic mode: whole frames)',
    );
    assert.is(totals.histogramCount, rxPackets, 'histogram deltas add up too');
    const witness = witnessCounts(end.witnessFile!);
    assertCountersEqual(totals, witness, 'sum of deltas vs tcpdump');
    assert.is(totals.packets[classIndex('ipv4', 'udp')], 30n + 10n, 'IPv4 UDP sent (30 + 10 tagged)');
    assert.is(totals.packets[classIndex('ipv6', 'udp')], 12n + 5n, 'IPv6 UDP sent (12 + 5 tagged)');
    assert.is(totals.vlanPackets, BigInt(tagged.length));
    // Each series: consecutive points cover consecutive intervals, the first from when counting began.
    for (const [key, series] of bySeries(mine)) {
      assert.ok(series.length >= 4, `${key}: several intervals`);
      for (let i = 1; i < series.length; i++) {
        assert.is(series[i]!.start, series[i - 1]!.time, `${key}: interval ${i} starts where ${i - 1} ended`);
      }
    }
    assert.is(
      new Set(mine.map((p) => p.time)).size,
      new Set(mine.filter((p) => p.metric === 'carnx.packets').map((p) => p.time)).size,
    );
    assert.is((await capture.stop()).dropped, 0);
    assert.is((await agent.stop()).code, 0);
  },
);

Totals.run();
