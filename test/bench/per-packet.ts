// Benchmark: nanoseconds per packet of carnx's XDP and TC programs against bare programs, via BPF_PROG_TEST_RUN.
import { ETH_P, type Frame, IPPROTO, TCP, arp, ipv4, ipv6, tcp, udp } from '../fixtures/frames.js';
import { libbpf } from '../../src/bpf/libbpf.js';
import { BenchProgram, PROGRAMS, type ProgramRef } from './programs.js';

export const REPEAT = 10_000_000;
export const RUNS = 5;

export const BENCH_FRAMES: Frame[] = [
  ipv4('IPv4 TCP SYN', tcp(TCP.SYN)),
  ipv6('IPv6 UDP', udp()),
  arp('ARP'),
  ipv4('802.1Q IPv4 UDP', udp(), { vlanTags: [ETH_P.vlan] }),
  ipv6('IPv6 HBH+frag UDP', udp(), { extensions: [IPPROTO.hopopts, IPPROTO.fragment] }),
  // Informational: each extension header's length must be loaded before the next one can be found,
  // a serial chain of loads that no program avoids; this row shows what a long chain costs.
  ipv6('IPv6 4-ext-header TCP', tcp(TCP.ACK), {
    extensions: [IPPROTO.hopopts, IPPROTO.routing, IPPROTO.dstopts, IPPROTO.fragment],
  }),
];
/** Frames the <= target applies to; the long chain above is reported, not targeted. */
export const TARGETED = new Set(['IPv4 TCP SYN', 'IPv6 UDP', 'ARP', '802.1Q IPv4 UDP', 'IPv6 HBH+frag UDP']);

/**
 * One hook's comparison. For a tc program (BPF_PROG_TYPE_SCHED_CLS) the kernel builds an skb from the frame
 * (at least ETH_HLEN bytes, no __sk_buff context given: gso_segs is 0, one frame), so its runs also pay
 * for building that skb, in both programs alike.
 */
export interface PerPacketHook {
  hook: 'XDP' | 'TC';
  baseline: ProgramRef;
  carnx: ProgramRef;
  /** Whether a missed target fails the bench; otherwise the rows are reported only. */
  gating: boolean;
}

export const HOOKS: PerPacketHook[] = [
  { hook: 'XDP', baseline: PROGRAMS.bareXdp, carnx: PROGRAMS.carnxXdp, gating: true },
  { hook: 'TC', baseline: PROGRAMS.bareTc, carnx: PROGRAMS.carnxTc, gating: false },
];

export interface Stats {
  min: number;
  median: number;
  runs: number[];
}

function stats(values: number[]): Stats {
  const sorted = [...values].sort((a, b) => a - b);
  return { min: sorted[0] ?? Number.NaN, median: sorted[Math.floor(sorted.length / 2)] ?? Number.NaN, runs: values };
}

export interface PerPacketRow {
  frame: string;
  baseline: Stats;
  carnx: Stats;
  /** carnx's min minus the baseline's min, in ns. */
  overheadNs: number;
  targeted: boolean;
}

export interface PerPacketResult {
  hook: PerPacketHook['hook'];
  baseline: string;
  gating: boolean;
  repeat: number;
  runs: number;
  targetNs: number;
  rows: PerPacketRow[];
  met: boolean;
}

/** Interleaves baseline and carnx runs so both see the same machine state. */
export function benchPerPacket(hook: PerPacketHook, targetNs: number, repeat = REPEAT, runs = RUNS): PerPacketResult {
  const baseline = new BenchProgram(hook.baseline);
  try {
    const carnx = new BenchProgram(hook.carnx);
    try {
      const rows = BENCH_FRAMES.map((frame): PerPacketRow => {
        const b: number[] = [];
        const c: number[] = [];
        for (let i = 0; i < runs; i++) {
          b.push(libbpf().testRun(baseline.fd, frame.bytes, repeat).durationNs);
          c.push(libbpf().testRun(carnx.fd, frame.bytes, repeat).durationNs);
        }
        const row = { frame: frame.name, baseline: stats(b), carnx: stats(c) };
        return { ...row, overheadNs: row.carnx.min - row.baseline.min, targeted: TARGETED.has(frame.name) };
      });
      const met = rows.every((r) => !r.targeted || r.overheadNs <= targetNs);
      return { hook: hook.hook, baseline: hook.baseline.label, gating: hook.gating, repeat, runs, targetNs, rows, met };
    } finally {
      carnx.close();
    }
  } finally {
    baseline.close();
  }
}

/** Prints one hook's table; returns false only when a gating hook missed its target. */
export function printPerPacket(result: PerPacketResult): boolean {
  const { hook, baseline, repeat, runs, targetNs } = result;
  console.log(
    `\n${hook} per packet (BPF_PROG_TEST_RUN, repeat ${repeat.toExponential()}, ${runs} runs; ns: min / median)`,
  );
  console.log(`frame                        ${baseline.padEnd(15)} carnx      overhead(min)  ratio(min)`);
  for (const r of result.rows) {
    console.log(
      `${r.frame.padEnd(28)} ${`${r.baseline.min} / ${r.baseline.median}`.padEnd(15)} ${`${r.carnx.min} / ${r.carnx.median}`.padEnd(10)} ${`+${r.overheadNs} ns`.padEnd(14)} ${(r.carnx.min / r.baseline.min).toFixed(2)}x`,
    );
  }
  const frames = [...TARGETED].join(', ');
  const verdict = result.met ? 'met' : 'NOT met';
  const role = result.gating ? '' : ' (reported only: a miss does not fail the bench)';
  console.log(`${hook} target: overhead <= ${targetNs} ns per packet for ${frames}: ${verdict}${role}`);
  return result.met || !result.gating;
}
