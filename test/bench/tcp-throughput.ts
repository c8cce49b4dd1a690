// Benchmark: TCP receive throughput through a GRO-enabled veth with each hook attached, as ratios against no program.
import type { ChildProcess } from 'node:child_process';
import { VethPair } from '../fixtures/netns.js';
import { BASELINE, type Holding, LIVE_HOOKS, type LiveHook, attachHook } from './live-hooks.js';
import { type Ratio, type RoundValue, pct, ratioOf, rotated } from './live-ratios.js';
import { type IperfResult, iperf, readyForGro, requireTools, startServer } from './tcp-traffic.js';

/**
 * Many short runs rather than a few long ones: other work on the host comes and goes within seconds, and a hook's run
 * is compared with the no-program run of its own round (slow start on a veth lasts well under a millisecond).
 */
export const ROUNDS = 7;
export const SECONDS = 3;
/** The TC fallback's target: this share of the throughput without a program. */
export const TARGET_RATIO = 0.95;
const TARGET_HOOK = 'carnx TC ingress (tcx)';

export interface ThroughputRun extends IperfResult, RoundValue {
  /** What carnx's counters added during the run, and what the device's rx_packets did; null without counters. */
  counted: { packets: string; rxPackets: string } | null;
}

export interface ThroughputRow extends Ratio {
  hook: string;
  /** Why the hook could not be measured (a device that refuses it); the runs are then empty. */
  skipped?: string;
  runs: ThroughputRun[];
}

export interface ThroughputResult {
  setup: string;
  rounds: number;
  seconds: number;
  rows: ThroughputRow[];
  target: { hook: string; ratio: number; measured: number; met: boolean };
}

async function measure(
  hook: LiveHook,
  pair: VethPair,
  port: number,
  round: number,
  holding: Holding,
): Promise<ThroughputRun> {
  const attached = await attachHook(hook, pair.host, holding);
  try {
    const before = { counted: attached.packets(), rx: pair.rxStats().packets };
    const result = await iperf(pair, port, SECONDS);
    const after = { counted: attached.packets(), rx: pair.rxStats().packets };
    const counted =
      before.counted === null || after.counted === null
        ? null
        : { packets: String(after.counted - before.counted), rxPackets: String(after.rx - before.rx) };
    return { round, value: result.gbps, ...result, counted };
  } finally {
    await attached.detach();
  }
}

/** Measures every hook ROUNDS times, interleaved (the hook order rotates each round) so all see the same load. */
export async function benchThroughput(rounds = ROUNDS): Promise<ThroughputResult> {
  requireTools();
  const pair = new VethPair('b');
  let server: ChildProcess | undefined;
  // Ctrl-C mid-run: leave no namespace or server behind, then die of the same signal.
  const holding: Holding = {};
  const onSignal = (signal: NodeJS.Signals) => {
    holding.current?.abort();
    server?.kill();
    pair.destroy();
    process.kill(process.pid, signal);
  };
  process.once('SIGINT', onSignal).once('SIGTERM', onSignal);
  try {
    pair.create();
    const mtu = readyForGro(pair);
    const port = 20_000 + (process.pid % 20_000);
    server = await startServer(pair, port);

    const runs = new Map<string, ThroughputRun[]>(LIVE_HOOKS.map((h) => [h.name, []]));
    const skipped = new Map<string, string>();
    for (let round = 0; round < rounds; round++) {
      for (const hook of rotated(LIVE_HOOKS, round)) {
        if (skipped.has(hook.name)) continue;
        try {
          runs.get(hook.name)?.push(await measure(hook, pair, port, round, holding));
        } catch (err) {
          // veth refuses native XDP when the peer's MTU is too large (ERANGE); report that instead of failing.
          if (hook.mode !== 'native' || round > 0) throw err;
          skipped.set(hook.name, (err as Error).message.split('\n')[0] ?? '');
        }
      }
    }

    const baseline = runs.get(BASELINE.name) ?? [];
    const rows = LIVE_HOOKS.map((hook): ThroughputRow => {
      const why = skipped.get(hook.name);
      const own = runs.get(hook.name) ?? [];
      return { hook: hook.name, ...(why ? { skipped: why } : {}), runs: own, ...ratioOf(own, baseline) };
    });
    const measured = rows.find((r) => r.hook === TARGET_HOOK)?.ratio ?? Number.NaN;
    return {
      setup:
        `veth pair, host side GRO on, namespace side TSO/GSO off (MTU ${mtu}); iperf3 from the namespace ` +
        `to the host side, ${SECONDS} s per run; the agent itself attached per hook (--xdp-mode), receive and transmit`,
      rounds,
      seconds: SECONDS,
      rows,
      target: { hook: TARGET_HOOK, ratio: TARGET_RATIO, measured, met: measured >= TARGET_RATIO },
    };
  } finally {
    process.off('SIGINT', onSignal).off('SIGTERM', onSignal);
    server?.kill();
    pair.destroy();
  }
}

/** Prints the table and the TC fallback's verdict, with a miss in percentage points; returns whether it was met. */
export function printThroughput(result: ThroughputResult): boolean {
  console.log(`\nTCP throughput with GRO, per hook (${result.rounds} runs x ${result.seconds} s, interleaved)`);
  console.log(`setup: ${result.setup}`);
  console.log('ratio: median over the no-program median; per run: each run over the no-program run of its round');
  console.log('hook                       Gbit/s (median)  ratio  per run: median (min-max)  counted');
  for (const row of result.rows) {
    if (row.skipped) {
      console.log(`${row.hook.padEnd(26)} not measured: ${row.skipped}`);
      continue;
    }
    const spread = `${pct(row.paired.median)} (${pct(row.paired.min)}-${pct(row.paired.max)})`;
    const exact = row.runs.every((r) => r.counted === null || r.counted.packets === r.counted.rxPackets);
    const counted = row.runs[0]?.counted === null ? '' : exact ? 'all rx_packets' : 'MISMATCH (see JSON)';
    console.log(
      `${row.hook.padEnd(26)} ${row.median.toFixed(2).padEnd(16)} ${pct(row.ratio).padEnd(6)} ${spread.padEnd(26)} ${counted}`,
    );
  }
  const { hook, ratio, measured, met } = result.target;
  const miss = met ? '' : `, missed by ${((ratio - measured) * 100).toFixed(1)} percentage points`;
  console.log(
    `throughput target: ${hook} keeps >= ${pct(ratio)} of the throughput without a program: ${pct(measured)}, ` +
      `${met ? 'met' : 'NOT met'}${miss}`,
  );
  return met;
}
