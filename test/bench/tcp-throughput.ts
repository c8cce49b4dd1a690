// Benchmark: TCP receive throughput through a GRO-enabled veth with each hook attached, as ratios against no program.
import type { ChildProcess } from 'node:child_process';
import { BpfError } from '../../src/bpf/bpf-error.js';
import { libbpf } from '../../src/bpf/libbpf.js';
import { VethPair } from '../fixtures/netns.js';
import { BenchProgram, PROGRAMS, type ProgramRef } from './programs.js';
import { type IperfResult, iperf, readyForGro, requireTools, startServer } from './tcp-traffic.js';

/**
 * Many short runs rather than a few long ones: other work on the host comes and goes within seconds, and a hook's run
 * is compared with the no-program run of its own round (slow start on a veth lasts well under a millisecond).
 */
export const ROUNDS = 7;
export const SECONDS = 3;
/** The TC fallback's target: this share of the throughput without a program. */
export const TARGET_RATIO = 0.95;
/** XDP_FLAGS_SKB_MODE / XDP_FLAGS_DRV_MODE (linux/if_link.h). */
const XDP_MODE = { generic: 2, native: 4 } as const;

type Attach =
  | { kind: 'none' }
  | { kind: 'tcx-ingress'; program: ProgramRef }
  | { kind: 'xdp'; program: ProgramRef; mode: keyof typeof XDP_MODE };

export interface ThroughputHook {
  name: string;
  attach: Attach;
}

/** The baseline (no program) first; the TC fallback's row is the one the target applies to. */
export const HOOKS: ThroughputHook[] = [
  { name: 'no program', attach: { kind: 'none' } },
  { name: 'carnx TC ingress (tcx)', attach: { kind: 'tcx-ingress', program: PROGRAMS.carnxTc } },
  { name: 'bare TC ingress (tcx)', attach: { kind: 'tcx-ingress', program: PROGRAMS.bareTc } },
  { name: 'carnx XDP generic', attach: { kind: 'xdp', program: PROGRAMS.carnxXdp, mode: 'generic' } },
  // veth's native XDP copies every skb the stack hands it that is cloned (TCP's are) into a fresh page before the
  // program runs: this row is veth's price, not a NIC driver's.
  { name: 'carnx XDP native', attach: { kind: 'xdp', program: PROGRAMS.carnxXdp, mode: 'native' } },
];
const TARGET_HOOK = 'carnx TC ingress (tcx)';

export interface ThroughputRun extends IperfResult {
  /** The round it ran in: the no-program run of the same round is its pair. */
  round: number;
  /** What carnx's counters added during the run, and what the device's rx_packets did; null without counters. */
  counted: { packets: string; rxPackets: string } | null;
}

export interface ThroughputRow {
  hook: string;
  /** Why the hook could not be measured (a device that refuses it); the runs are then empty. */
  skipped?: string;
  runs: ThroughputRun[];
  medianGbps: number;
  /** This hook's median over the median without a program: the headline number. */
  ratio: number;
  /** Run-to-run spread: each run over the no-program run of its round (median, min, max). */
  paired: { median: number; min: number; max: number };
}

export interface ThroughputResult {
  setup: string;
  rounds: number;
  seconds: number;
  rows: ThroughputRow[];
  target: { hook: string; ratio: number; met: boolean };
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  if (sorted.length === 0) return Number.NaN;
  return sorted.length % 2 ? (sorted[mid] as number) : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

/** Attaches a hook to the pair's host side as an unpinned link (closing its fd detaches it); null for no program. */
function attach(hook: ThroughputHook, programs: Map<ProgramRef, BenchProgram>, pair: VethPair): number | null {
  const a = hook.attach;
  if (a.kind === 'none') return null;
  const prog = programs.get(a.program);
  if (!prog) throw new Error(`${a.program.label} is not loaded`);
  const context = `${hook.name} on ${pair.host}`;
  if (a.kind === 'tcx-ingress') return libbpf().linkCreateTcx(prog.fd, pair.ifindex(), 'ingress', 'before', context);
  return libbpf().linkCreateXdp(prog.fd, pair.ifindex(), XDP_MODE[a.mode], context);
}

/** Measures every hook ROUNDS times, interleaved (the hook order rotates each round) so all see the same load. */
export async function benchThroughput(rounds = ROUNDS): Promise<ThroughputResult> {
  requireTools();
  const pair = new VethPair('b');
  const programs = new Map<ProgramRef, BenchProgram>();
  let server: ChildProcess | undefined;
  // Ctrl-C mid-run: leave no namespace or server behind, then die of the same signal.
  const onSignal = (signal: NodeJS.Signals) => {
    server?.kill();
    pair.destroy();
    process.kill(process.pid, signal);
  };
  process.once('SIGINT', onSignal).once('SIGTERM', onSignal);
  try {
    pair.create();
    const mtu = readyForGro(pair);
    for (const hook of HOOKS) {
      if (hook.attach.kind !== 'none' && !programs.has(hook.attach.program)) {
        programs.set(hook.attach.program, new BenchProgram(hook.attach.program));
      }
    }
    const port = 20_000 + (process.pid % 20_000);
    server = await startServer(pair, port);

    const runs = new Map<string, ThroughputRun[]>(HOOKS.map((h) => [h.name, []]));
    const skipped = new Map<string, string>();
    for (let round = 0; round < rounds; round++) {
      const order = HOOKS.map((_, i) => HOOKS[(i + round) % HOOKS.length] as ThroughputHook);
      for (const hook of order) {
        if (skipped.has(hook.name)) continue;
        let link: number | null;
        try {
          link = attach(hook, programs, pair);
        } catch (err) {
          // veth refuses native XDP when the peer's MTU is too large (ERANGE); report that instead of failing.
          if (!(err instanceof BpfError) || hook.attach.kind !== 'xdp' || hook.attach.mode !== 'native') throw err;
          skipped.set(hook.name, err.message);
          continue;
        }
        try {
          const prog = hook.attach.kind === 'none' ? undefined : programs.get(hook.attach.program);
          const before = { counted: prog?.countedPackets() ?? null, rx: pair.rxStats().packets };
          const result = await iperf(pair, port, SECONDS);
          const after = { counted: prog?.countedPackets() ?? null, rx: pair.rxStats().packets };
          const counted =
            before.counted === null || after.counted === null
              ? null
              : { packets: String(after.counted - before.counted), rxPackets: String(after.rx - before.rx) };
          runs.get(hook.name)?.push({ round, ...result, counted });
        } finally {
          if (link !== null) libbpf().closeFd(link);
        }
      }
    }

    const none = runs.get('no program') ?? [];
    const baseline = median(none.map((r) => r.gbps));
    const rows = HOOKS.map((hook): ThroughputRow => {
      const own = runs.get(hook.name) ?? [];
      const gbps = own.map((r) => r.gbps);
      const pairs = own.map((r) => r.gbps / (none.find((n) => n.round === r.round)?.gbps ?? Number.NaN));
      const paired = { median: median(pairs), min: Math.min(...pairs), max: Math.max(...pairs) };
      const why = skipped.get(hook.name);
      const measured = { runs: own, medianGbps: median(gbps), ratio: median(gbps) / baseline, paired };
      return { hook: hook.name, ...(why ? { skipped: why } : {}), ...measured };
    });
    const targetRatio = rows.find((r) => r.hook === TARGET_HOOK)?.ratio ?? Number.NaN;
    return {
      setup:
        `veth pair, host side GRO on, namespace side TSO/GSO off (MTU ${mtu}); iperf3 from the namespace ` +
        `to the host side, ${SECONDS} s per run; programs as unpinned links on the host side`,
      rounds,
      seconds: SECONDS,
      rows,
      target: { hook: TARGET_HOOK, ratio: TARGET_RATIO, met: targetRatio >= TARGET_RATIO },
    };
  } finally {
    process.off('SIGINT', onSignal).off('SIGTERM', onSignal);
    server?.kill();
    for (const prog of programs.values()) prog.close();
    pair.destroy();
  }
}

const pct = (ratio: number): string => (Number.isFinite(ratio) ? `${(ratio * 100).toFixed(0)}%` : '-');

/** Prints the table and the TC fallback's verdict (reported only: this VM's load moves throughput too much to gate). */
export function printThroughput(result: ThroughputResult): void {
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
      `${row.hook.padEnd(26)} ${row.medianGbps.toFixed(2).padEnd(16)} ${pct(row.ratio).padEnd(6)} ${spread.padEnd(26)} ${counted}`,
    );
  }
  const { hook, ratio, met } = result.target;
  const measured = result.rows.find((r) => r.hook === hook)?.ratio ?? Number.NaN;
  console.log(
    `throughput target: ${hook} keeps >= ${pct(ratio)} of the throughput without a program: ${pct(measured)}, ` +
      `${met ? 'met' : 'NOT met'} (reported only: a miss does not fail the bench)`,
  );
}
