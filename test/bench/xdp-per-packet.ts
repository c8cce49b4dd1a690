// Benchmark: nanoseconds per packet of carnx's XDP program against a bare XDP_PASS program, via BPF_PROG_TEST_RUN.
import { ETH_P, IPPROTO, TCP, arp, ipv4, ipv6, tcp, udp, type Frame } from '../fixtures/frames.js';
import { CARNX_OBJECT, LoadedProgram, PASS_OBJECT } from '../fixtures/loaded-program.js';

const REPEAT = 10_000_000;
const RUNS = 5;

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

function stats(values: number[]): { min: number; median: number } {
  const sorted = [...values].sort((a, b) => a - b);
  return { min: sorted[0]!, median: sorted[Math.floor(sorted.length / 2)]! };
}

export interface PerPacketResult {
  frame: string;
  baseline: { min: number; median: number };
  carnx: { min: number; median: number };
}

/** Interleaves baseline and carnx runs so both see the same machine state. */
export function benchPerPacket(repeat = REPEAT, runs = RUNS): PerPacketResult[] {
  const baseline = new LoadedProgram(PASS_OBJECT, 'xdp_pass');
  const carnx = new LoadedProgram(CARNX_OBJECT);
  try {
    return BENCH_FRAMES.map((frame) => {
      const b: number[] = [];
      const c: number[] = [];
      for (let i = 0; i < runs; i++) {
        b.push(baseline.run(frame.bytes, repeat).durationNs);
        c.push(carnx.run(frame.bytes, repeat).durationNs);
      }
      return { frame: frame.name, baseline: stats(b), carnx: stats(c) };
    });
  } finally {
    baseline.close();
    carnx.close();
  }
}

export function printPerPacket(results: PerPacketResult[], targetNs: number): boolean {
  console.log(`\nXDP per packet (BPF_PROG_TEST_RUN, repeat ${REPEAT.toExponential()}, ${RUNS} runs; ns: min / median)`);
  console.log('frame                        bare XDP_PASS   carnx      overhead(min)  ratio(min)');
  let ok = true;
  for (const r of results) {
    const overhead = r.carnx.min - r.baseline.min;
    if (TARGETED.has(r.frame)) ok &&= overhead <= targetNs;
    console.log(
      `${r.frame.padEnd(28)} ${`${r.baseline.min} / ${r.baseline.median}`.padEnd(15)} ${`${r.carnx.min} / ${r.carnx.median}`.padEnd(10)} ${`+${overhead} ns`.padEnd(14)} ${(r.carnx.min / r.baseline.min).toFixed(2)}x`,
    );
  }
  console.log(
    `target: overhead <= ${targetNs} ns per packet for ${[...TARGETED].join(', ')}: ${ok ? 'met' : 'NOT met'}`,
  );
  return ok;
}
