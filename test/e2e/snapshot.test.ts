// `carnx snapshot` beside a running agent: --json equals what the agent exported for the same frames, point for point.
import { readFileSync } from 'node:fs';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { MAIN, startAgent, testBpffs } from '../fixtures/agent-process.js';
import { Cleanups } from '../fixtures/cleanups.js';
import { TestCollector, seriesKey, type Point } from '../fixtures/collector.js';
import { commandResult } from '../fixtures/command.js';
import { reported } from '../fixtures/hooks.js';
import { quietPair, up, type VethPair } from '../fixtures/netns.js';
import { requireRoot } from '../fixtures/privileges.js';
import { ping, sendUdp, tcpConnections } from '../fixtures/traffic.js';
import { waitFor } from '../fixtures/wait.js';
import type { SnapshotJson, SnapshotPoint } from '../../src/cli/snapshot-json.js';
import { COUNTER_INSTRUMENTS } from '../../src/metrics/counter-instruments.js';

const Snapshot = suite('e2e: carnx snapshot');
const cleanups = new Cleanups();

Snapshot.before(reported(() => requireRoot('the e2e tests')));
Snapshot.after.each(() => cleanups.run());

const UDP = 23;
const TCP = 3;

function snapshot(...args: string[]) {
  return commandResult(process.execPath, [MAIN, 'snapshot', ...args]);
}

/** Both directions' kernel statistics of the host side: unchanged across a window means no frame passed in it. */
function stats(pair: VethPair): string {
  const read = (name: string) => readFileSync(`/sys/class/net/${pair.host}/statistics/${name}`, 'utf8').trim();
  return ['rx_packets', 'rx_bytes', 'tx_packets', 'tx_bytes'].map(read).join(' ');
}

/**
 * A snapshot taken in a quiet moment, and the first collection the collector received after it: the kernel's
 * statistics do not move from before the snapshot until that collection arrived, so both saw the same frames.
 */
async function quietSnapshot(
  pair: VethPair,
  collector: TestCollector,
  bpffs: string,
): Promise<{ json: SnapshotJson; exported: Point[] }> {
  for (let round = 0; round < 20; round++) {
    const before = stats(pair);
    const run = snapshot('--json', '--bpffs-path', bpffs);
    assert.is(run.status, 0, `snapshot --json exits 0:\n${run.stderr}`);
    assert.is(run.stderr, '', 'nothing on stderr');
    const json = JSON.parse(run.stdout) as SnapshotJson;
    const after = BigInt(json.timeUnixNano);
    const mine = (p: Point) => p.attributes['network.interface.name'] === pair.host && p.metric.startsWith('carnx.');
    const exported = await waitFor(
      'a collection after the snapshot',
      () => {
        const points = collector.points().filter((p) => mine(p) && p.time > after && p.metric === 'carnx.packets');
        if (points.length === 0) return undefined;
        const first = points.reduce((a, b) => (b.time < a.time ? b : a)).time;
        const all = collector.points().filter((p) => mine(p) && p.time === first);
        // Both directions' points of that collection, all seven metrics.
        return new Set(all.map((p) => p.metric)).size === COUNTER_INSTRUMENTS.length && all;
      },
      15_000,
    );
    if (stats(pair) === before) return { json, exported };
  }
  throw new Error(`${pair.host} never went quiet for a snapshot`);
}

function pointValue(p: SnapshotPoint): unknown {
  return 'value' in p
    ? p.value
    : { count: p.count, sum: p.sum, bucketCounts: p.bucketCounts, explicitBounds: p.explicitBounds };
}

function exportedValue(p: Point): unknown {
  return p.kind === 'histogram'
    ? {
        count: Number(p.count),
        sum: p.sum,
        bucketCounts: p.bucketCounts!.map(Number),
        explicitBounds: p.bounds,
      }
    : Number(p.int);
}

Snapshot('--json beside a running agent equals its export, both directions, every series; text and help', async () => {
  const pair = quietPair(cleanups, 's');
  const bpffs = testBpffs(cleanups, 'snapshot');
  const collector = cleanups.add(await TestCollector.start(), (c) => c.destroy());
  const agent = startAgent(cleanups, bpffs, pair.host, [
    '--otlp-endpoint',
    collector.endpoint,
    '--export-interval-ms',
    '300',
    '--log-level',
    'info',
  ]);
  await agent.waitForMsg('attached', { interface: pair.host, hook: 'tc-egress' });
  await agent.waitUntil('both directions attached', () =>
    agent.lines.some((l) => l.msg === 'attached' && l.interface === pair.host && l.hook !== 'tc-egress'),
  );

  up(pair);
  sendUdp(pair, pair.hostAddress, UDP, 200);
  ping(pair, pair.hostAddress, 2);
  await tcpConnections(pair, pair.hostAddress, TCP, 100);

  const { json, exported } = await quietSnapshot(pair, collector, bpffs.path);
  assert.ok(agent.running, 'the agent kept running (snapshot took no lock from it)');

  // The shape: this interface in both directions, with its hook and the agent's counting start.
  assert.is(json.schemaVersion, 1);
  assert.is(json.bpffsPath, bpffs.path);
  const ifaces = json.interfaces.filter((i) => i['network.interface.name'] === pair.host);
  assert.equal(
    ifaces.map((i) => i['network.io.direction']),
    ['receive', 'transmit'],
  );
  assert.is(ifaces[1]?.hook, 'tc-egress');
  assert.ok(['xdp-native', 'xdp-generic', 'tc-ingress'].includes(String(ifaces[0]?.hook)), `${ifaces[0]?.hook}`);
  assert.equal(json.unread, []);
  assert.equal(
    json.metrics.map((m) => [m.name, m.unit, m.kind]),
    COUNTER_INSTRUMENTS.map((i) => [i.name, i.unit, i.kind]),
  );

  // Every exported series of this interface is in the snapshot with the same value and start, and nothing more.
  const snapshotPoints = new Map<string, SnapshotPoint>();
  for (const m of json.metrics) {
    for (const p of m.dataPoints) {
      if (p.attributes['network.interface.name'] !== pair.host) continue;
      snapshotPoints.set(seriesKey({ metric: m.name, attributes: p.attributes as Point['attributes'] }), p);
    }
  }
  assert.is(snapshotPoints.size, exported.length, 'as many series as the collection carried');
  for (const e of exported) {
    const key = seriesKey(e);
    const s = snapshotPoints.get(key);
    assert.ok(s, `${key} is in the snapshot`);
    assert.equal(pointValue(s!), exportedValue(e), `${key}`);
    assert.is(s!.startTimeUnixNano, e.start.toString(), `${key} start time`);
  }

  // And the numbers are the traffic's: exactly what was sent where the count is known.
  const packets = json.metrics.find((m) => m.name === 'carnx.packets')!.dataPoints;
  const udp = packets.find(
    (p) =>
      p.attributes['network.interface.name'] === pair.host &&
      p.attributes['network.io.direction'] === 'receive' &&
      p.attributes['network.transport'] === 'udp' &&
      p.attributes['network.type'] === 'ipv4',
  );
  assert.is((udp as { value: number }).value, UDP, 'IPv4 UDP datagrams received');
  const syn = json.metrics.find((m) => m.name === 'carnx.tcp.syn')!.dataPoints;
  const synOf = (direction: string, kind: string) =>
    (
      syn.find(
        (p) =>
          p.attributes['network.interface.name'] === pair.host &&
          p.attributes['network.io.direction'] === direction &&
          p.attributes['carnx.tcp.syn.kind'] === kind,
      ) as { value: number }
    ).value;
  assert.is(synOf('receive', 'syn'), TCP, 'connection attempts received');
  assert.is(synOf('transmit', 'syn_ack'), TCP, 'answers sent');

  // The text form: the same numbers, within 80 columns.
  const text = snapshot('--bpffs-path', bpffs.path);
  assert.is(text.status, 0, text.stderr);
  const lines = text.stdout.split('\n');
  assert.ok(
    lines.every((l) => l.length <= 80),
    `80 columns:\n${lines.filter((l) => l.length > 80).join('\n')}`,
  );
  const block = lines.slice(lines.findIndex((l) => l.startsWith(`${pair.host} receive (`)));
  assert.match(
    block.find((l) => l.startsWith('  ipv4 udp')) ?? '',
    new RegExp(`^  ipv4 udp\\s+${UDP}\\s+${UDP * 242}$`),
  );

  // --help, and a bpffs path where nothing is pinned.
  const help = snapshot('--help');
  assert.is(help.status, 0);
  assert.match(help.stdout, /^usage: carnx snapshot \[--json\]/);
  const empty = snapshot('--bpffs-path', `${bpffs.path}/carnx/v1/${pair.host}`);
  assert.is(empty.status, 3);
  assert.match(
    empty.stderr,
    /^carnx: no carnx counters are pinned under .*: start the agent \(npm start, or carnx run\)/,
  );
  assert.is(empty.stderr.trim().split('\n').length, 1, 'one line');

  assert.is((await agent.stop()).code, 0, 'the agent still stops cleanly');
});

Snapshot.run();
