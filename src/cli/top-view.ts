// `carnx top`'s screen as plain lines: rates between two pinned reads, the protocol mix and exact totals, 80 columns.
import { MALFORMED_LAYERS, SYN_KINDS, TCP_FLAGS, TRAFFIC_CLASSES, sum } from '../bpf/counter-layout.js';
import type { PinnedCounters, PinnedReading } from '../reader/pinned-counters.js';
import { wrapped } from './snapshot-text.js';

export interface TopInput {
  bpffs: string;
  /** The read before `current`, for rates; undefined on the first screen (rates show as '-'). */
  previous: PinnedCounters | undefined;
  current: PinnedCounters;
  /** Terminal size: lines are cut to `width`, and to `height` lines with a note of what did not fit. */
  width: number;
  height: number;
}

/** The whole screen, top line first. */
export function topFrame(input: TopInput): string[] {
  const { current, previous } = input;
  const lines = [header(input)];
  if (current.readings.length === 0 && current.unread.length === 0) {
    lines.push(
      '',
      `no carnx counters are pinned under ${input.bpffs}`,
      'waiting for an agent (npm start, or carnx run), or quit and pass --bpffs-path',
    );
  }
  for (const r of current.readings) {
    const before = previous?.readings.find((p) => p.ifname === r.ifname && p.direction === r.direction);
    lines.push('', ...readingBlock(r, rateOf(before, r, previous, current)));
  }
  for (const u of current.unread) lines.push('', `${u.ifname} ${u.direction}: not read: ${u.reason}`);
  return fit(lines, input.width, input.height);
}

function header({ bpffs, current, width }: TopInput): string {
  const right = `${isoTime(current.readAtUnixNs)}  q quits`;
  const left = `carnx top  ${bpffs}`;
  return `${left.padEnd(Math.max(left.length + 2, Math.min(width, 80) - right.length))}${right}`;
}

/** Per-second rate of a counter between the two reads, or undefined when there is no earlier read to compare. */
type Rate = (now: bigint, then: (c: PinnedReading['counters']) => bigint) => number | undefined;

function rateOf(
  before: PinnedReading | undefined,
  now: PinnedReading,
  previous: PinnedCounters | undefined,
  current: PinnedCounters,
): Rate {
  const seconds = previous ? Number(current.readAtMonotonicNs - previous.readAtMonotonicNs) / 1e9 : 0;
  // A new counting start (re-attached) restarts the counters: no rate across it.
  if (before === undefined || before.countingSinceUnixNs !== now.countingSinceUnixNs || !(seconds > 0)) {
    return () => undefined;
  }
  const earlier = before.counters;
  return (value, then) => {
    const delta = value - then(earlier);
    return delta < 0n ? undefined : Number(delta) / seconds;
  };
}

/** Column layout: label, pkt/s, bit/s, share of pkt/s, packets total, bytes total (77 columns). */
function row(label: string, pps: string, bps: string, share: string, packets: string, bytes: string): string {
  return `  ${label.padEnd(14)}${pps.padStart(9)}${bps.padStart(12)}${share.padStart(7)}${packets.padStart(17)}${bytes.padStart(16)}`;
}

function readingBlock(r: PinnedReading, rate: Rate): string[] {
  const c = r.counters;
  const where = r.ifindex === 0 ? 'device gone' : (r.hook ?? 'hook unknown');
  const allPps = rate(sum(c.packets), (p) => sum(p.packets));
  const lines = [
    `${r.ifname} ${r.direction} (${where}), counting since ${isoTime(r.countingSinceUnixNs)}`,
    row('protocol', 'pkt/s', 'bit/s', 'share', 'packets', 'bytes'),
    row(
      'all',
      si(allPps),
      si(times8(rate(sum(c.bytes), (p) => sum(p.bytes)))),
      allPps ? '100%' : '-',
      total(sum(c.packets), 17),
      total(sum(c.bytes), 16),
    ),
  ];
  for (const k of TRAFFIC_CLASSES) {
    const packets = c.packets[k.index] ?? 0n;
    if (packets === 0n) continue;
    const pps = rate(packets, (p) => p.packets[k.index] ?? 0n);
    const bps = times8(rate(c.bytes[k.index] ?? 0n, (p) => p.bytes[k.index] ?? 0n));
    const share = pps === undefined || !allPps ? '-' : `${Math.round((100 * pps) / allPps)}%`;
    lines.push(
      row(
        `${k.network} ${k.transport}`,
        si(pps),
        si(bps),
        share,
        total(packets, 17),
        total(c.bytes[k.index] ?? 0n, 16),
      ),
    );
  }
  const perSecond = (values: bigint[], then: (p: PinnedReading['counters']) => bigint[]) =>
    values.map((v, i) => si(rate(v, (p) => then(p)[i] ?? 0n)));
  const flags = perSecond(c.tcpFlags, (p) => p.tcpFlags);
  const syn = perSecond(c.tcpSyn, (p) => p.tcpSyn);
  const malformedPs = si(rate(sum(c.malformed), (p) => sum(p.malformed)));
  lines.push(
    ...wrapped(
      'tcp flags/s',
      TCP_FLAGS.map((f, i) => `${f.toLowerCase()} ${flags[i]}`),
    ),
    ...wrapped('per second', [...SYN_KINDS.map((k, i) => `${k} ${syn[i]}`), `malformed ${malformedPs}`]),
    ...wrapped('totals', [
      ...SYN_KINDS.map((k, i) => `${k} ${c.tcpSyn[i] ?? 0n}`),
      ...MALFORMED_LAYERS.map((l, i) => `malformed ${l} ${c.malformed[i] ?? 0n}`),
    ]),
  );
  return lines;
}

function times8(bytesPerSecond: number | undefined): number | undefined {
  return bytesPerSecond === undefined ? undefined : bytesPerSecond * 8;
}

/** Rates with an SI prefix, at most 6 characters up to 999 E: 0, 12, 999, 1.23 k, 45.6 M; "-" when unknown. */
export function si(value: number | undefined): string {
  if (value === undefined) return '-';
  if (value < 999.5) return `${Math.round(value)}`;
  const prefixes = ['k', 'M', 'G', 'T', 'P', 'E'];
  let scaled = value;
  let i = -1;
  while (scaled >= 999.5 && i < prefixes.length - 1) {
    scaled /= 1000;
    i++;
  }
  const digits = scaled < 9.995 ? 2 : scaled < 99.95 ? 1 : 0;
  return `${scaled.toFixed(digits)} ${prefixes[i]}`;
}

/** Totals stay exact while they fit the column; beyond it (years of traffic) they take an SI prefix. */
export function total(value: bigint, width: number): string {
  const exact = value.toString();
  return exact.length < width ? exact : si(Number(value));
}

/** Cut to the terminal: long lines at its width, and the lines that do not fit its height summed up in the last one. */
export function fit(lines: string[], width: number, height: number): string[] {
  const cut = (line: string) => (line.length > width ? line.slice(0, width) : line);
  if (lines.length <= height) return lines.map(cut);
  const shown = Math.max(0, height - 1);
  return [...lines.slice(0, shown), `... ${lines.length - shown} more lines: enlarge the terminal`].map(cut);
}

function isoTime(unixNs: bigint): string {
  return `${new Date(Number(unixNs / 1_000_000n)).toISOString().slice(11, 19)}Z`;
}
