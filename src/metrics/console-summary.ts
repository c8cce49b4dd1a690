// log.summary: one readable line per counted interface after each collection, so counting shows without a collector.
import { sum } from '../bpf/counter-layout.js';
import type { LogFormat, Logger } from '../log/logger.js';
import type { Direction, InterfaceSnapshot } from '../reader/interface-snapshot.js';

/** More interfaces than this and only the busiest are listed (a Kubernetes node counts on hundreds). */
export const MAX_SUMMARY_LINES = 10;

export interface DirectionSummary {
  /** Counted since countingSince (exact; Number is exact to 2^53). */
  packets: number;
  bytes: number;
  /** Since the previous summary of the same counting; absent on the first one. */
  packetsPerSecond?: number;
  bitsPerSecond?: number;
}

export interface InterfaceSummary {
  interface: string;
  receive?: DirectionSummary;
  transmit?: DirectionSummary;
}

/** log.summary auto: on when the log is meant for a person (pretty), off for machines (JSON); on / off win. */
export function wantSummary(setting: 'auto' | 'on' | 'off', format: LogFormat): boolean {
  return setting === 'on' || (setting === 'auto' && format === 'pretty');
}

interface Seen {
  atMs: number;
  countingSinceUnixNs: bigint;
  packets: bigint;
  bytes: bigint;
}

/** Remembers the previous collection's totals, to turn two collections into rates. */
export class TrafficSummary {
  readonly #log: Logger;
  readonly #now: () => number;
  #seen = new Map<string, Seen>();

  constructor(logger: Logger, now: () => number = () => performance.now()) {
    this.#log = logger.child({ module: 'counts' });
    this.#now = now;
  }

  /** Called with every collection's snapshots; logs the summary. Never throws: the export must go on. */
  observe(snapshots: readonly InterfaceSnapshot[]): void {
    try {
      const summaries = this.summarize(snapshots);
      if (summaries.length === 0) {
        this.#log.info('counting on no interface yet');
        return;
      }
      const shown = busiestFirst(summaries).slice(0, MAX_SUMMARY_LINES);
      for (const s of shown) this.#log.info({ summary: s }, summaryLine(s));
      if (summaries.length > shown.length) {
        this.#log.info(`and ${summaries.length - shown.length} more interfaces (busiest ${shown.length} shown)`);
      }
    } catch (err) {
      this.#log.warn({ err: (err as Error).message }, 'could not summarize the counts');
    }
  }

  /** Per interface, in name order, from this collection and the previous one. */
  summarize(snapshots: readonly InterfaceSnapshot[]): InterfaceSummary[] {
    const atMs = this.#now();
    const next = new Map<string, Seen>();
    const byName = new Map<string, InterfaceSummary>();
    // A final read belongs to an attachment being released: what is counted now is the rest.
    for (const s of snapshots.filter((snap) => snap.final !== true)) {
      const key = `${s.name}/${s.direction}`;
      const seen: Seen = {
        atMs,
        countingSinceUnixNs: s.countingSinceUnixNs,
        packets: sum(s.counters.packets),
        bytes: sum(s.counters.bytes),
      };
      next.set(key, seen);
      const entry = byName.get(s.name) ?? { interface: s.name };
      entry[s.direction] = directionSummary(seen, this.#seen.get(key));
      byName.set(s.name, entry);
    }
    this.#seen = next;
    return [...byName.values()].sort((a, b) => a.interface.localeCompare(b.interface));
  }
}

function directionSummary(now: Seen, before: Seen | undefined): DirectionSummary {
  const out: DirectionSummary = { packets: Number(now.packets), bytes: Number(now.bytes) };
  const seconds = before ? (now.atMs - before.atMs) / 1000 : 0;
  // A new counting (interface re-created, counters re-pinned) has no rate against the old one.
  if (
    before &&
    seconds > 0 &&
    before.countingSinceUnixNs === now.countingSinceUnixNs &&
    now.packets >= before.packets
  ) {
    out.packetsPerSecond = Number(now.packets - before.packets) / seconds;
    out.bitsPerSecond = (Number(now.bytes - before.bytes) * 8) / seconds;
  }
  return out;
}

/** Name order while they all fit; else the busiest (packets per second, both directions) first. */
function busiestFirst(summaries: InterfaceSummary[]): InterfaceSummary[] {
  if (summaries.length <= MAX_SUMMARY_LINES) return summaries;
  const rate = (s: InterfaceSummary) => (s.receive?.packetsPerSecond ?? 0) + (s.transmit?.packetsPerSecond ?? 0);
  return [...summaries].sort((a, b) => rate(b) - rate(a));
}

const DIRECTION_LABEL: Record<Direction, string> = { receive: 'rx', transmit: 'tx' };

/** `eth0: rx 1,234 packets, 98.3 kB (12 packets/s, 9.6 kbit/s); tx 567 packets, 45.1 kB (5 packets/s, 4 kbit/s)` */
export function summaryLine(s: InterfaceSummary): string {
  const parts = (['receive', 'transmit'] as const).flatMap((direction) => {
    const d = s[direction];
    if (!d) return [];
    const rate =
      d.packetsPerSecond === undefined || d.bitsPerSecond === undefined
        ? ''
        : ` (${formatRate(d.packetsPerSecond, 'packets/s')}, ${formatBitRate(d.bitsPerSecond)})`;
    const packets = `${formatCount(d.packets)} ${d.packets === 1 ? 'packet' : 'packets'}`;
    return [`${DIRECTION_LABEL[direction]} ${packets}, ${formatBytes(d.bytes)}${rate}`];
  });
  return `${s.interface}: ${parts.join('; ')}`;
}

/** Exact, with thousands separators: 1234567 -> 1,234,567. */
export function formatCount(n: number): string {
  return Math.round(n)
    .toString()
    .replace(/\B(?=(\d{3})+(?!\d))/g, ',');
}

/** Decimal units, three significant digits from 1 kB: 999 B, 1.23 kB, 45.6 MB, 789 GB. */
export function formatBytes(n: number): string {
  return scaled(n, 'B');
}

/** bit/s in decimal units: 9.6 kbit/s, 1.25 Gbit/s. */
export function formatBitRate(bitsPerSecond: number): string {
  return scaled(bitsPerSecond, 'bit/s');
}

/** A per-second rate: whole numbers from 10 up, one decimal below (0.4 packets/s). */
export function formatRate(perSecond: number, unit: string): string {
  const shown = perSecond >= 10 || perSecond === 0 ? formatCount(perSecond) : perSecond.toFixed(1);
  return `${shown} ${unit}`;
}

const PREFIXES = ['', 'k', 'M', 'G', 'T', 'P', 'E'];

function scaled(n: number, unit: string): string {
  if (n < 999.5) return `${Math.round(n)} ${unit}`;
  let i = 0;
  let v = n;
  while (v >= 999.5 && i < PREFIXES.length - 1) {
    v /= 1000;
    i++;
  }
  const digits = v >= 100 ? 0 : v >= 10 ? 1 : 2;
  return `${Number(v.toFixed(digits))} ${PREFIXES[i]}${unit}`;
}
