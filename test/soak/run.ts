// Soak test (npm run soak; not in CI): the agent for 30 minutes under traffic, interface churn and collector restarts.
//
// Runs the agent the documented way against the test collector, with a 1 s export interval, on veth pairs it
// creates (link-local addresses only): three stay for the whole run and carry steady traffic; one more is deleted
// and re-created every CARNX_SOAK_CHURN_S seconds; the collector is killed and restarted every
// CARNX_SOAK_RESTART_S seconds. Every CARNX_SOAK_SAMPLE_S seconds it samples the agent's RSS and open fds, and
// counts carnx's programs, maps and links (bpftool) and pins. At the end it checks the exported totals of the
// steady interfaces against the kernel's rx statistics, stops the agent, and checks nothing is left.
//
// Reports the RSS slope (least squares over the run after the warm-up) and whether fd, program, map, link and pin
// counts stay flat (no higher in the last third than in the first). Exits 1 if anything grows or is left over.
//   CARNX_SOAK_MINUTES (30), CARNX_SOAK_CHURN_S (20), CARNX_SOAK_RESTART_S (300), CARNX_SOAK_SAMPLE_S (10),
//   CARNX_SOAK_EXPORT_MS (1000), CARNX_SOAK_MAX_RSS_SLOPE_KB_PER_MIN (150)
//
// RSS is judged on the second half of the run after the warm-up: V8 and the allocator grow their pools for a
// while before they settle (at 1 s exports that took longer than 30 minutes; at 100 ms about 3 minutes, so the
// RSS of a steady agent depends on how many exports it has made, not on time). A plateau has a positive slope over
// the whole run but none over its second half; a leak keeps its slope. CARNX_SOAK_EXPORT_MS=100 packs ten times the
// exports into the same minutes.
import { readdirSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { sum } from '../../src/bpf/counter-layout.js';
import { startAgent, testBpffs } from '../fixtures/agent-process.js';
import { TestCollector } from '../fixtures/collector.js';
import { requireRoot } from '../fixtures/privileges.js';
import { bpfIdMark, carnxObjects, pinTree } from '../fixtures/kernel-objects.js';
import { Cleanups } from '../fixtures/cleanups.js';
import { exportedCounters, settle } from '../fixtures/exported-counters.js';
import { quietPair, up, type VethPair } from '../fixtures/netns.js';
import { steadyTraffic } from '../fixtures/traffic.js';
import { vmRssKb } from '../fixtures/proc-status.js';
import { waitFor } from '../fixtures/wait.js';

const env = (name: string, fallback: number) => Number(process.env[name] ?? fallback);
const MINUTES = env('CARNX_SOAK_MINUTES', 30);
const CHURN_S = env('CARNX_SOAK_CHURN_S', 20);
const RESTART_S = env('CARNX_SOAK_RESTART_S', 300);
const SAMPLE_S = env('CARNX_SOAK_SAMPLE_S', 10);
const EXPORT_MS = env('CARNX_SOAK_EXPORT_MS', 1000);
const MAX_SLOPE = env('CARNX_SOAK_MAX_RSS_SLOPE_KB_PER_MIN', 150);
const WARMUP_S = Math.min(300, (MINUTES * 60) / 6);
/** A sample waits this long after a churn: the agent attaches or releases at its next rescan (1 s). */
const SETTLE_S = 3;
const STEADY = 3;
const FD_SLACK = 3;

interface Sample {
  atS: number;
  rssKb: number;
  fds: number;
  links: number;
  progs: number;
  maps: number;
  pins: number;
  interfaces: number;
}

function log(message: string): void {
  process.stdout.write(`[soak ${new Date().toISOString().slice(11, 19)}] ${message}\n`);
}

/** Least-squares slope of y over x. */
function slope(points: Array<[number, number]>): number {
  const n = points.length;
  const mx = points.reduce((a, [x]) => a + x, 0) / n;
  const my = points.reduce((a, [, y]) => a + y, 0) / n;
  const num = points.reduce((a, [x, y]) => a + (x - mx) * (y - my), 0);
  const den = points.reduce((a, [x]) => a + (x - mx) ** 2, 0);
  return den === 0 ? 0 : num / den;
}

async function main(): Promise<number> {
  requireRoot('the soak test');
  const cleanups = new Cleanups();
  process.once('SIGINT', () => void cleanups.run().then(() => process.exit(130)));
  try {
    const mark = bpfIdMark();
    const collector = cleanups.add(await TestCollector.start(), (c) => c.destroy());
    const bpffs = testBpffs(cleanups, 'soak');
    const tag = 'S';
    const steady = Array.from({ length: STEADY }, () => quietPair(cleanups, tag));
    let churning: VethPair | undefined = quietPair(cleanups, tag);
    const glob = steady[0]!.host.replace(/S\d+h$/, 'S*h');
    const agent = startAgent(cleanups, bpffs, glob, [
      '--otlp-endpoint',
      collector.endpoint,
      '--export-interval-ms',
      String(EXPORT_MS),
      '--interfaces-rescan-interval-ms',
      '1000',
      '--log-level',
      'info',
      '--xdp-mode',
      'generic',
    ]);
    await agent.waitForMsg('started', {}, 30_000);
    const pid = agent.child.pid!;
    const starts = [];
    for (const p of steady) starts.push(await settle(p, collector, p.host));
    for (const p of [...steady, churning]) up(p);
    log(
      `agent ${pid} on ${glob}; ${MINUTES} min, exports every ${EXPORT_MS} ms, churn every ${CHURN_S} s, collector restart every ${RESTART_S} s`,
    );

    const traffic = steady.map((p) => cleanups.add(steadyTraffic(p, 200, 200, 500), (t) => t.stop()));

    const samples: Sample[] = [];
    const began = Date.now();
    const elapsedS = () => (Date.now() - began) / 1000;
    let nextChurn = CHURN_S;
    let nextRestart = RESTART_S;
    let nextSample = 0;
    let churns = 0;
    let churnedAt = -Infinity;
    let restarts = 0;
    while (elapsedS() < MINUTES * 60) {
      if (elapsedS() >= nextChurn) {
        nextChurn += CHURN_S;
        churns++;
        churnedAt = elapsedS();
        if (churning) {
          churning.destroy();
          churning = undefined;
        } else {
          churning = quietPair(cleanups, tag);
          up(churning);
        }
      }
      if (elapsedS() >= nextRestart) {
        nextRestart += RESTART_S;
        restarts++;
        await collector.kill();
        await sleep(10_000);
        await collector.restart();
        // Only the final state is judged (cumulative totals against the kernel's), and at 100 ms exports five
        // minutes of output is ~140 MB of JSON: keep just the current run's file.
        collector.discardEarlierRuns();
        log(`collector restarted (${restarts})`);
      }
      if (elapsedS() >= nextSample && elapsedS() - churnedAt >= SETTLE_S) {
        nextSample += SAMPLE_S;
        if (agent.child.exitCode !== null) throw new Error(`the agent exited: ${agent.stderr}`);
        const present = [...steady, ...(churning ? [churning] : [])];
        const objects = carnxObjects(
          mark,
          present.map((p) => p.ifindex()),
          [pid],
        );
        const sample: Sample = {
          atS: Math.round(elapsedS()),
          rssKb: vmRssKb(pid),
          fds: readdirSync(`/proc/${pid}/fd`).length,
          links: objects.links.length,
          progs: objects.progs.length,
          maps: objects.maps.length,
          pins: pinTree(bpffs.path).filter((p) => !p.endsWith('/')).length,
          interfaces: present.length,
        };
        samples.push(sample);
        if (samples.length % 6 === 1) log(JSON.stringify(sample));
      }
      await sleep(250);
    }

    const sent = await Promise.all(traffic.map((t) => t.stop()));
    // A fresh collector output for the final reading, so settling parses seconds of exports, not a whole period.
    await collector.restart();
    collector.discardEarlierRuns();
    const problems: string[] = [];
    for (const [i, p] of steady.entries()) {
      const end = await settle(p, collector, p.host, { timeoutMs: 60_000 });
      const before = exportedCounters(starts[i]!.points, p.host, 'cumulative');
      const after = exportedCounters(end.points, p.host, 'cumulative');
      const counted = sum(after.packets) - sum(before.packets);
      const received = end.rx.packets - starts[i]!.rx.packets;
      if (counted !== received) problems.push(`${p.host}: exported ${counted} frames, the kernel received ${received}`);
      if (after.packets[1]! - before.packets[1]! !== BigInt(sent[i]!))
        problems.push(`${p.host}: ${after.packets[1]! - before.packets[1]!} UDP counted, ${sent[i]} sent`);
    }

    // Flat: per interface present, the counts of the last third never exceed those of the first third.
    const after = samples.filter((s) => s.atS >= WARMUP_S);
    const third = Math.max(1, Math.floor(after.length / 3));
    const [first, last] = [after.slice(0, third), after.slice(-third)];
    const perIf = (s: Sample, k: keyof Sample) => (s[k] as number) / (k === 'fds' || k === 'rssKb' ? 1 : s.interfaces);
    const report: string[] = [];
    for (const k of ['fds', 'links', 'progs', 'maps', 'pins'] as const) {
      const max = (list: Sample[]) => Math.max(...list.map((s) => perIf(s, k)));
      const [a, b] = [max(first), max(last)];
      report.push(`${k}${k === 'fds' ? '' : ' per interface'}: first third max ${a}, last third max ${b}`);
      // fds: sockets come and go with the collector's restarts; a leak would add one per churn or restart (dozens).
      if (b > a + (k === 'fds' ? FD_SLACK : 0)) problems.push(`${k} grew: ${a} -> ${b}`);
    }
    for (const s of samples) {
      for (const k of ['links', 'progs'] as const)
        if (s[k] !== s.interfaces) problems.push(`at ${s.atS} s: ${s[k]} ${k} for ${s.interfaces} interfaces`);
      if (s.maps !== 2 * s.interfaces) problems.push(`at ${s.atS} s: ${s.maps} maps for ${s.interfaces} interfaces`);
    }
    const secondHalf = after.slice(Math.floor(after.length / 2));
    const wholeSlope = slope(after.map((s) => [s.atS / 60, s.rssKb]));
    const rssSlope = slope(secondHalf.map((s) => [s.atS / 60, s.rssKb]));
    report.unshift(
      `RSS: ${after[0]?.rssKb} kB after warm-up, ${after.at(-1)?.rssKb} kB at the end; slope after warm-up ` +
        `${wholeSlope.toFixed(1)} kB/min, over the second half ${rssSlope.toFixed(1)} kB/min (limit ${MAX_SLOPE})`,
    );
    if (rssSlope > MAX_SLOPE) problems.push(`RSS grows ${rssSlope.toFixed(1)} kB/min`);

    const exit = await agent.stop();
    if (exit.code !== 0) problems.push(`agent exit ${exit.code}`);
    await waitFor(
      'carnx objects to be freed',
      () => {
        const o = carnxObjects(mark, [], []);
        return o.links.length + o.progs.length + o.maps.length === 0;
      },
      10_000,
    ).catch(() => problems.push(`left in the kernel: ${JSON.stringify(carnxObjects(mark, [], []))}`));
    if (pinTree(bpffs.path).length > 0) problems.push(`pins left: ${pinTree(bpffs.path).join(' ')}`);

    log(
      `${samples.length} samples, ${churns} interface churns, ${restarts} collector restarts, ${sent.reduce((a, b) => a + b, 0)} datagrams`,
    );
    for (const line of report) log(line);
    for (const p of problems) log(`PROBLEM ${p}`);
    log(problems.length === 0 ? 'soak passed' : `soak failed: ${problems.length} problem(s)`);
    return problems.length === 0 ? 0 : 1;
  } finally {
    await cleanups.run();
  }
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`soak: ${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  },
);
