// Interfaces change under a running agent: re-created, their namespace deleted, a foreign XDP program, native mode refused.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { sum } from '../../src/bpf/counter-layout.js';
import { libbpf } from '../../src/bpf/libbpf.js';
import { startAgent, testBpffs } from '../fixtures/agent-process.js';
import { TestCollector, lastPoints } from '../fixtures/collector.js';
import { classIndex } from '../fixtures/frames.js';
import { attachForeignProgram } from '../fixtures/loaded-program.js';
import { ip, quietPair, up } from '../fixtures/netns.js';
import { requireRoot } from '../fixtures/privileges.js';
import { pinTree, xdpLinksOn, xdpOn } from '../fixtures/kernel-objects.js';
import { Cleanups } from '../fixtures/cleanups.js';
import { decreasingSeries, exportedCounters, settle } from '../fixtures/exported-counters.js';
import { ping, sendUdp } from '../fixtures/traffic.js';
import { reported } from '../fixtures/hooks.js';
import { waitFor } from '../fixtures/wait.js';

const Interfaces = suite('e2e: interfaces that change under the agent');
const cleanups = new Cleanups();

Interfaces.before(reported(() => requireRoot('the e2e tests')));
Interfaces.after.each(() => cleanups.run());

Interfaces(
  'an interface deleted and re-created under the same name: counting starts over, one link, old pins gone',
  async () => {
    const pair = quietPair(cleanups, 'c');
    up(pair);
    const bpffs = testBpffs(cleanups, 'e2e-recreate');
    const collector = cleanups.add(await TestCollector.start(), (c) => c.destroy());
    const agent = startAgent(cleanups, bpffs, pair.host, [
      '--otlp-endpoint',
      collector.endpoint,
      '--export-interval-ms',
      '500',
      '--xdp-mode',
      'generic',
    ]);
    await agent.waitForMsg('attached', { interface: pair.host });
    sendUdp(pair, pair.hostAddress, 30, 50);
    const before = await settle(pair, collector, pair.host);
    const oldStart = before.points.find((p) => p.attributes['network.interface.name'] === pair.host)!.start;
    const oldIfindex = pair.ifindex();

    // Same names, new devices: delete the pair and cable a new one into the same namespace.
    const mark = agent.lines.length;
    ip('link', 'del', pair.host);
    await agent.waitForMsg('interface gone or deselected: detached', { interface: pair.host }, 5_000, mark);
    ip('link', 'add', pair.host, 'type', 'veth', 'peer', 'name', pair.peer, 'netns', pair.ns);
    pair.exec('ip', ['addr', 'add', `${pair.peerAddress}/30`, 'dev', pair.peer]);
    ip('addr', 'add', `${pair.hostAddress}/30`, 'dev', pair.host);
    ip('link', 'set', pair.host, 'up');
    await agent.waitForMsg('attached', { interface: pair.host }, 5_000, mark);
    assert.is.not(pair.ifindex(), oldIfindex, 'a new device');
    const fresh = await settle(pair, collector, pair.host);
    up(pair);
    sendUdp(pair, pair.hostAddress, 17, 50);
    const after = await settle(pair, collector, pair.host);

    const newPoints = after.points.filter(
      (p) => p.attributes['network.interface.name'] === pair.host && p.start > oldStart,
    );
    assert.ok(newPoints.length > 0, 'points with a new start time: the backend sees a reset, not a decrease');
    const counted = exportedCounters(newPoints, pair.host, 'cumulative');
    const atAttach = exportedCounters(
      fresh.points.filter((p) => p.start > oldStart),
      pair.host,
      'cumulative',
    );
    assert.is(counted.packets[classIndex('ipv4', 'udp')], 17n, 'the new device counts only its own datagrams');
    assert.is(
      sum(counted.packets) - sum(atAttach.packets),
      after.rx.packets - fresh.rx.packets,
      "carnx.packets delta = the new device's rx_packets delta",
    );
    assert.is(
      sum(counted.bytes) - sum(atAttach.bytes),
      after.rx.bytes - fresh.rx.bytes,
      'carnx.bytes delta = rx_bytes delta',
    );
    assert.equal(decreasingSeries(collector.points()), [], 'nothing decreases without a new start time');
    assert.is(xdpLinksOn(pair.ifindex()).length, 1, 'one XDP link on the new device');
    assert.equal(
      pinTree(bpffs.path).filter((p) => p.endsWith('/link')),
      [`carnx/v1/${pair.host}/link`],
      'one set of pins',
    );
    assert.is(agent.child.exitCode, null, 'the agent runs on');
    assert.is((await agent.stop()).code, 0);
    assert.equal(pinTree(bpffs.path), []);
  },
);

Interfaces('an interface deleted before the next export: its final counts are exported, all of them', async () => {
  const pair = quietPair(cleanups, 'z');
  up(pair);
  const bpffs = testBpffs(cleanups, 'e2e-final');
  const collector = cleanups.add(await TestCollector.start(), (c) => c.destroy());
  // The next export is a minute away: only the one at shutdown can carry what the interface counted.
  const agent = startAgent(cleanups, bpffs, pair.host, [
    '--otlp-endpoint',
    collector.endpoint,
    '--xdp-mode',
    'generic',
  ]);
  await agent.waitForMsg('attached', { interface: pair.host });
  sendUdp(pair, pair.hostAddress, 41, 60);
  const mark = agent.lines.length;
  ip('link', 'del', pair.host);
  await agent.waitForMsg('interface gone or deselected: detached', { interface: pair.host }, 5_000, mark);
  assert.is((await agent.stop()).code, 0);
  const points = await waitFor(
    `points of ${pair.host}`,
    () => {
      const now = collector.points().filter((p) => p.attributes['network.interface.name'] === pair.host);
      return now.length > 0 && now;
    },
    10_000,
  );
  const counted = exportedCounters(points, pair.host, 'cumulative');
  assert.is(counted.packets[classIndex('ipv4', 'udp')], 41n, 'every datagram counted before the device went');
  assert.is(counted.bytes[classIndex('ipv4', 'udp')], 41n * (60n + 42n), 'and every byte');
  assert.equal(pinTree(bpffs.path), []);
});

Interfaces('a namespace deleted: its interface is released and unpinned, counting goes on elsewhere', async () => {
  const doomed = quietPair(cleanups, 'n');
  const kept = quietPair(cleanups, 'n');
  up(doomed);
  up(kept);
  const bpffs = testBpffs(cleanups, 'e2e-netns');
  const collector = cleanups.add(await TestCollector.start(), (c) => c.destroy());
  const agent = startAgent(cleanups, bpffs, doomed.host, [
    '--interfaces-include',
    kept.host,
    '--otlp-endpoint',
    collector.endpoint,
    '--export-interval-ms',
    '500',
    '--xdp-mode',
    'generic',
  ]);
  await agent.waitForMsg('attached', { interface: doomed.host });
  await agent.waitForMsg('attached', { interface: kept.host });
  sendUdp(doomed, doomed.hostAddress, 5, 40);
  await settle(doomed, collector, doomed.host);
  const mark = agent.lines.length;
  ip('netns', 'del', doomed.ns); // takes the veth pair, and the host side with it
  await agent.waitForMsg('interface gone or deselected: detached', { interface: doomed.host }, 5_000, mark);
  assert.equal(
    pinTree(bpffs.path).filter((p) => p.includes(doomed.host)),
    [],
    'no pins left for the deleted interface',
  );
  const start = await settle(kept, collector, kept.host);
  sendUdp(kept, kept.hostAddress, 23, 40);
  const end = await settle(kept, collector, kept.host);
  const udp = classIndex('ipv4', 'udp');
  assert.is(
    exportedCounters(end.points, kept.host, 'cumulative').packets[udp]! -
      exportedCounters(start.points, kept.host, 'cumulative').packets[udp]!,
    23n,
    'the other interface is still counted',
  );
  const lastTime = (name: string) => {
    let last = 0n;
    for (const p of end.points) if (p.attributes['network.interface.name'] === name && p.time > last) last = p.time;
    return last;
  };
  assert.ok(lastTime(doomed.host) < lastTime(kept.host), 'the deleted interface is no longer exported');
  assert.is(agent.lines.filter((l) => l.level === 'error' || l.level === 'fatal').length, 0, 'no errors logged');
  assert.is((await agent.stop()).code, 0);
  assert.equal(pinTree(bpffs.path), []);
});

Interfaces(
  'auto: native XDP where it can; TC ingress beside a foreign XDP program and where native is refused; in the metrics',
  async () => {
    const normal = quietPair(cleanups, 'f');
    const foreign = quietPair(cleanups, 'f');
    const jumbo = quietPair(cleanups, 'f', { mtu: 9500 }); // veth refuses native XDP at this MTU
    const foreignId = attachForeignProgram(cleanups, foreign);
    const bpffs = testBpffs(cleanups, 'e2e-foreign');
    const collector = cleanups.add(await TestCollector.start(), (c) => c.destroy());
    const agent = startAgent(cleanups, bpffs, normal.host, [
      '--interfaces-include',
      foreign.host,
      '--interfaces-include',
      jumbo.host,
      '--xdp-mode',
      'auto',
      '--otlp-endpoint',
      collector.endpoint,
      '--export-interval-ms',
      '500',
    ]);
    const beside = await agent.waitForMsg('fell back to tc-ingress', { interface: foreign.host });
    assert.match(String(beside.reason), `held by program id ${foreignId}`);
    assert.is(beside.level, 'warn');
    const fell = await agent.waitForMsg('fell back to tc-ingress', { interface: jumbo.host });
    assert.match(String(fell.reason), 'native mode');
    assert.is((await agent.waitForMsg('attached', { interface: jumbo.host })).hook, 'tc-ingress');
    assert.is((await agent.waitForMsg('attached', { interface: foreign.host })).hook, 'tc-ingress');
    assert.is((await agent.waitForMsg('attached', { interface: normal.host })).mode, 'native');
    assert.is(xdpOn(jumbo.host), undefined, 'no generic XDP: the device keeps its GRO');

    const base = jumbo.rxStats(); // the namespace side is still down: nothing arrives
    up(jumbo);
    ping(jumbo, jumbo.hostAddress, 3, 8000);
    const end = await settle(jumbo, collector, jumbo.host);
    const counted = exportedCounters(end.points, jumbo.host, 'cumulative');
    assert.is(counted.packets[classIndex('ipv4', 'icmp')], 3n, 'jumbo echo requests counted');
    assert.is(counted.sizeBuckets[6], 3n, '8042-byte frames in the 1519..9000 bucket');
    assert.is(
      sum(counted.packets),
      end.rx.packets - base.packets,
      'the TC fallback counts every frame the kernel received',
    );
    assert.is(sum(counted.bytes), end.rx.bytes - base.bytes, 'and every byte (no XDP: rx_bytes are whole frames)');

    const last = lastPoints(collector.points());
    const value = (key: string) => last.get(key)?.int;
    const gauge = (hook: string, direction: string, mode?: string) =>
      value(
        `carnx.agent.interfaces{carnx.hook=${hook},${mode ? `carnx.xdp.mode=${mode},` : ''}network.io.direction=${direction}}`,
      );
    assert.is(gauge('tc-ingress', 'receive'), 2n, 'two interfaces count receive at TC ingress');
    assert.is(gauge('xdp-native', 'receive', 'native'), 1n, 'one in native XDP');
    assert.is(gauge('xdp-generic', 'receive', 'generic'), 0n, 'none in generic XDP');
    assert.is(gauge('tc-egress', 'transmit'), 3n, 'all three count transmit at TC egress');
    assert.is(value('carnx.agent.attach.failures{carnx.reason=foreign-program}'), undefined, 'nothing was refused');
    assert.is(libbpf().xdpQuery(foreign.ifindex(), foreign.host).progId, foreignId, 'the foreign program is untouched');
    assert.is((await agent.stop()).code, 0);
    assert.is(
      libbpf().xdpQuery(foreign.ifindex(), foreign.host).progId,
      foreignId,
      'and still there after carnx exits',
    );
    assert.equal(pinTree(bpffs.path), []);
  },
);

Interfaces.run();
