// The collector goes away (paused, then killed) or is slow during traffic: the agent rides it out and the totals stay exact.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { sum } from '../../src/bpf/counter-layout.js';
import { startAgent, testBpffs } from '../fixtures/agent-process.js';
import { TestCollector, bySeries, lastPoints, type Point } from '../fixtures/collector.js';
import { classIndex } from '../fixtures/frames.js';
import { requireRoot } from '../fixtures/privileges.js';
import { Cleanups } from '../fixtures/cleanups.js';
import { decreasingSeries, exportedCounters, settle } from '../fixtures/exported-counters.js';
import { quietPair, up } from '../fixtures/netns.js';
import { steadyTraffic } from '../fixtures/traffic.js';
import { vmRssKb } from '../fixtures/proc-status.js';
import { waitFor } from '../fixtures/wait.js';
import { reported } from '../fixtures/hooks.js';
import { EXPORT_FAILED, EXPORT_RECOVERED } from '../../src/metrics/otlp-exporter.js';

const OUTAGE_MS = 30_000;
/** Growth of the agent's resident set over the whole outage that still counts as bounded. */
const RSS_SLACK_KB = 24 * 1024;
const FAILED = EXPORT_FAILED;
const RECOVERED = EXPORT_RECOVERED;
/** Recovery target: the first export after the collector accepts connections comes within this much of it. */
const INTERVAL_MS = 1_000;
const RESUME_SLACK_MS = 2_000;

const Outage = suite('e2e: collector outages');
const cleanups = new Cleanups();

Outage.before(reported(() => requireRoot('the e2e tests')));
Outage.after.each(() => cleanups.run());

Outage(
  'SIGSTOP then SIGKILL of the collector for 30 s each: agent runs on, RSS bounded, totals exact, nothing decreases, 2+2 log lines',
  async () => {
    const { pair, collector, agent, start, first } = await exportingAgent('o', 'e2e-outage');

    const rss: number[] = [];
    const sampler = setInterval(() => {
      try {
        rss.push(vmRssKb(agent.child.pid!));
      } catch {
        // exited: the assertions below say so
      }
    }, 500);
    cleanups.add(sampler, (t) => clearInterval(t));
    const traffic = steadyTraffic(pair, 25, 64, 400);
    cleanups.add(traffic, (t) => t.stop());
    await waitFor('RSS samples before the outage', () => rss.length >= 6, 10_000);
    const before = Math.max(...rss);

    // 1. Paused: connections stay open, nothing answers, every export times out.
    collector.pause();
    await agent.waitForMsg(FAILED, {}, 5_000);
    await sleep(OUTAGE_MS);
    assert.is(agent.child.exitCode, null, 'the agent runs on while the collector is paused');
    collector.resume();
    await agent.waitForMsg(RECOVERED, {}, 15_000);

    // 2. Killed: connections refused until it comes back on the same port.
    const mark = agent.lines.length;
    await collector.kill();
    await agent.waitForMsg(FAILED, {}, 5_000, mark);
    await sleep(OUTAGE_MS);
    assert.is(agent.child.exitCode, null, 'the agent runs on while the collector is gone');
    const peak = Math.max(...rss);
    await collector.restart();
    const restarted = Date.now();
    await agent.waitForMsg(RECOVERED, {}, 60_000, mark);
    const reconnectMs = Date.now() - restarted;

    const sent = await traffic.stop();
    clearInterval(sampler);
    const end = await settle(pair, collector, pair.host);
    const totals = exportedCounters(end.points, pair.host, 'cumulative');
    const udp = classIndex('ipv4', 'udp');
    assert.is(
      totals.packets[udp]! - first.packets[udp]!,
      BigInt(sent),
      `every datagram sent (${sent}) is in the last export`,
    );
    assert.is(
      sum(totals.packets) - sum(first.packets),
      end.rx.packets - start.rx.packets,
      'carnx.packets delta = rx_packets delta',
    );
    assert.is(
      sum(totals.bytes) - sum(first.bytes),
      end.rx.bytes - start.rx.bytes,
      'carnx.bytes delta = rx_bytes delta (generic mode)',
    );
    assert.equal(decreasingSeries(collector.points()), [], 'no cumulative point ever decreases');

    const failures = agent.lines.filter((l) => l.msg === FAILED);
    const recoveries = agent.lines.filter((l) => l.msg === RECOVERED);
    assert.is(failures.length, 2, 'one line per failure burst');
    assert.is(recoveries.length, 2, 'one line per recovery');
    assert.ok(
      failures.every((l) => l.level === 'warn' && l.target === collector.endpoint),
      'failure lines are warnings naming the endpoint',
    );
    const failedExports = recoveries.reduce((n, l) => n + Number(l.failedExports), 0);
    assert.ok(failedExports >= 40, `about one failed export per second of outage (${failedExports})`);
    const reported = lastPoints(collector.points().filter((p) => p.metric === 'carnx.agent.export.failures'));
    assert.is(
      Number([...reported.values()][0]?.int),
      failedExports,
      'carnx.agent.export.failures counts the same failures the log does',
    );

    assert.ok(rss.length >= 100, `RSS sampled throughout (${rss.length} samples)`);
    console.log(
      `    RSS ${before} kB before the outages, ${peak} kB at most during them; ${failedExports} failed exports; exports resumed ${reconnectMs} ms after the collector restarted`,
    );
    assert.ok(peak - before <= RSS_SLACK_KB, `RSS bounded: ${before} kB before, ${peak} kB at most during the outages`);
    assert.is((await agent.stop()).code, 0);
  },
);

/**
 * An agent in generic mode on a fresh quiet veth pair, exporting every INTERVAL_MS to its own collector with an 800 ms
 * deadline, settled: the collector's first totals and the kernel's statistics at that point.
 */
async function exportingAgent(tag: string, bpffsTag: string) {
  const pair = quietPair(cleanups, tag);
  up(pair);
  const bpffs = testBpffs(cleanups, bpffsTag);
  const collector = cleanups.add(await TestCollector.start(), (c) => c.destroy());
  const agent = startAgent(cleanups, bpffs, pair.host, [
    '--otlp-endpoint',
    collector.endpoint,
    '--export-interval-ms',
    String(INTERVAL_MS),
    '--otlp-timeout-ms',
    '800',
    '--log-level',
    'info',
    '--xdp-mode',
    'generic',
  ]);
  await agent.waitForMsg('attached', { interface: pair.host });
  const start = await settle(pair, collector, pair.host);
  return { pair, collector, agent, start, first: exportedCounters(start.points, pair.host, 'cumulative') };
}

/**
 * One agent exporting every second to its own collector, which is killed for `outageMs` during traffic and started
 * again on the same port. Returns how long after the collector accepted connections the first export arrived.
 */
async function outageLeg(tag: string, outageMs: number): Promise<{ resumeMs: number; failedExports: number }> {
  const { pair, collector, agent, start, first } = await exportingAgent(tag, `e2e-outage-${tag}`);
  // One sender process every 2 s: a 10-minute outage must not cost the shared machine a process every 400 ms.
  const traffic = steadyTraffic(pair, 25, 64, 2_000);
  cleanups.add(traffic, (t) => t.stop());

  const mark = agent.lines.length;
  await collector.kill();
  await agent.waitForMsg(FAILED, {}, 5_000, mark);
  await sleep(outageMs);
  assert.is(agent.child.exitCode, null, `${tag}: the agent runs on while the collector is gone`);
  const runs = collector.files.length;
  const { acceptingAt } = await collector.restart();
  const recovered = await agent.waitForMsg(RECOVERED, {}, 150_000, mark);
  const resumeMs = Date.parse(String(recovered.time)) - acceptingAt;
  // The recovery line follows the collector's answer: the export it answered is in the new run's file.
  await waitFor(`${tag}: the first export in the restarted collector's file`, () =>
    collector.files.slice(runs).some((f) => existsSync(f) && readFileSync(f, 'utf8').includes('\n')),
  );

  const sent = await traffic.stop();
  const end = await settle(pair, collector, pair.host);
  const totals = exportedCounters(end.points, pair.host, 'cumulative');
  const udp = classIndex('ipv4', 'udp');
  assert.is(totals.packets[udp]! - first.packets[udp]!, BigInt(sent), `${tag}: every datagram sent (${sent}) exported`);
  assert.is(
    sum(totals.packets) - sum(first.packets),
    end.rx.packets - start.rx.packets,
    `${tag}: packets = rx_packets`,
  );
  assert.is(sum(totals.bytes) - sum(first.bytes), end.rx.bytes - start.rx.bytes, `${tag}: bytes = rx_bytes`);
  assert.equal(decreasingSeries(collector.points()), [], `${tag}: no cumulative point ever decreases`);
  const failedExports = Number(agent.lines.find((l) => l.msg === RECOVERED)?.failedExports);
  assert.ok(
    failedExports >= outageMs / INTERVAL_MS / 2,
    `${tag}: exports kept failing during the outage (${failedExports})`,
  );
  assert.is((await agent.stop()).code, 0);
  return { resumeMs, failedExports };
}

Outage(
  '1 s exports; the collector killed for 60 s and (at the same time, another agent) for 10 min: exports resume within an interval + 2 s of it accepting connections, totals exact',
  async () => {
    const legs = [
      { tag: 'm1', outageMs: 60_000 },
      { tag: 'm10', outageMs: 600_000 },
    ];
    // Settled, not all: a failing leg must not leave the other running into the clean-up.
    const settled = await Promise.allSettled(legs.map((l) => outageLeg(l.tag, l.outageMs)));
    const resumed = settled.map((r, i) => {
      if (r.status === 'rejected') return undefined;
      console.log(
        `    ${legs[i]!.outageMs / 1000} s outage: first export ${r.value.resumeMs} ms after the collector accepted connections (${r.value.failedExports} failed exports)`,
      );
      return r.value.resumeMs;
    });
    for (const r of settled) if (r.status === 'rejected') throw r.reason;
    for (const [i, resumeMs] of resumed.entries()) {
      assert.ok(
        resumeMs! <= INTERVAL_MS + RESUME_SLACK_MS,
        `${legs[i]!.outageMs / 1000} s outage: exports resumed ${resumeMs} ms after the collector accepted connections (at most ${INTERVAL_MS + RESUME_SLACK_MS})`,
      );
    }
  },
);

/** Delta intervals of carnx.packets that overlap an earlier point of their series: an interval exported twice. */
function exportedTwice(points: readonly Point[], ifname: string): string[] {
  const mine = points.filter((p) => p.attributes['network.interface.name'] === ifname && p.metric === 'carnx.packets');
  const twice: string[] = [];
  for (const [key, series] of bySeries(mine)) {
    const sorted = [...series].sort((a, b) => (a.start < b.start ? -1 : a.start > b.start ? 1 : 0));
    for (let i = 1; i < sorted.length; i++) {
      if (sorted[i]!.start < sorted[i - 1]!.time) twice.push(`${key} from ${sorted[i]!.start}`);
    }
  }
  return twice;
}

for (const pauseMs of [500, 4_000]) {
  Outage(
    `delta, 1 s exports, default otlp.timeoutMs: the collector paused 3 times for ${pauseMs} ms during traffic; the deltas add up exactly, no interval exported twice`,
    async () => {
      const pair = quietPair(cleanups, 'd');
      const bpffs = testBpffs(cleanups, 'e2e-slow-delta');
      const collector = cleanups.add(await TestCollector.start(), (c) => c.destroy());
      const agent = startAgent(cleanups, bpffs, pair.host, [
        '--otlp-endpoint',
        collector.endpoint,
        '--export-interval-ms',
        '1000',
        '--otlp-temporality',
        'delta',
        '--log-level',
        'info',
        '--xdp-mode',
        'generic',
      ]);
      await agent.waitForMsg('attached', { interface: pair.host });
      // Down until now: the deltas since attach are the rx statistics' growth from here.
      const start = await settle(pair, collector, pair.host);
      up(pair);
      const traffic = steadyTraffic(pair, 25, 64, 200);
      cleanups.add(traffic, (t) => t.stop());
      for (let i = 0; i < 3; i++) {
        const sentBefore = traffic.sent();
        await waitFor('traffic before the pause', () => traffic.sent() >= sentBefore + 100, 15_000);
        collector.pause();
        await sleep(pauseMs);
        collector.resume();
      }
      await sleep(2_000);
      const sent = await traffic.stop();
      const end = await settle(pair, collector, pair.host);
      const totals = exportedCounters(end.points, pair.host, 'delta');
      const udp = classIndex('ipv4', 'udp');
      console.log(
        `    ${pauseMs} ms pauses: exported deltas sum to ${totals.packets[udp]} datagrams of ${sent} sent; ${sum(totals.packets)} frames of ${end.rx.packets - start.rx.packets} received`,
      );
      const twice = exportedTwice(end.points, pair.host);
      assert.is(twice.length, 0, `no interval exported twice: ${twice.slice(0, 2).join('; ')}`);
      assert.is(totals.packets[udp], BigInt(sent), `the deltas add up to the ${sent} datagrams sent`);
      assert.is(sum(totals.packets), end.rx.packets - start.rx.packets, 'sum of all deltas = rx_packets delta');
      assert.is(sum(totals.bytes), end.rx.bytes - start.rx.bytes, 'sum of all deltas = rx_bytes delta (generic mode)');
      assert.is((await agent.stop()).code, 0);
    },
  );
}

Outage.run();
