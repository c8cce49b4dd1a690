// `carnx snapshot`: the pinned counters as text, one block per interface and direction, within 80 columns.
import {
  MALFORMED_LAYERS,
  SIZE_BUCKET_BOUNDS,
  SYN_KINDS,
  TCP_FLAGS,
  TRAFFIC_CLASSES,
  sum,
} from '../bpf/counter-layout.js';
import type { PinnedCounters, PinnedReading } from '../reader/pinned-counters.js';

const WIDTH = 80;

export function snapshotText(bpffsPath: string, read: PinnedCounters): string {
  const lines = [`carnx snapshot of ${bpffsPath} at ${isoSeconds(read.readAtUnixNs)}`];
  for (const r of read.readings) lines.push('', ...readingLines(r));
  for (const u of read.unread) lines.push('', `${u.ifname} ${u.direction}: not read: ${u.reason}`);
  return `${lines.join('\n')}\n`;
}

/** One interface and direction: protocol classes with traffic (and the total), then the TCP, VLAN, malformed, sizes. */
export function readingLines(r: PinnedReading): string[] {
  const c = r.counters;
  const where = r.ifindex === 0 ? 'device gone, last counts' : `${r.hook ?? 'hook unknown'}, ifindex ${r.ifindex}`;
  const lines = [
    `${r.ifname} ${r.direction} (${where})`,
    `  counting since ${isoSeconds(r.countingSinceUnixNs)}`,
    row('protocol', 'packets', 'bytes'),
  ];
  for (const k of TRAFFIC_CLASSES) {
    if (c.packets[k.index] === 0n && c.bytes[k.index] === 0n) continue;
    lines.push(row(`${k.network} ${k.transport}`, c.packets[k.index] ?? 0n, c.bytes[k.index] ?? 0n));
  }
  lines.push(row('all', sum(c.packets), sum(c.bytes)));
  lines.push(
    ...wrapped(
      'tcp flags',
      TCP_FLAGS.map((f, i) => `${f.toLowerCase()} ${c.tcpFlags[i] ?? 0n}`),
    ),
    ...wrapped(
      'tcp syn',
      SYN_KINDS.map((k, i) => `${k} ${c.tcpSyn[i] ?? 0n}`),
    ),
    ...wrapped('vlan', [`${c.vlanPackets}`]),
    ...wrapped(
      'malformed',
      MALFORMED_LAYERS.map((l, i) => `${l} ${c.malformed[i] ?? 0n}`),
    ),
    ...wrapped(
      'sizes',
      c.sizeBuckets.map(
        (n, i) =>
          `${i < SIZE_BUCKET_BOUNDS.length ? `<=${SIZE_BUCKET_BOUNDS[i]}` : `>${SIZE_BUCKET_BOUNDS.at(-1)}`} ${n}`,
      ),
    ),
  );
  return lines;
}

/** Counters are exact: 20 digits fit a u64, so the columns never truncate a number. */
function row(label: string, packets: bigint | string, bytes: bigint | string): string {
  return `  ${label.padEnd(16)}${String(packets).padStart(21)}${String(bytes).padStart(21)}`;
}

/** `label  a 1  b 2 ...`, continued on indented lines where it would pass 80 columns. */
export function wrapped(label: string, entries: string[]): string[] {
  const indent = ' '.repeat(14);
  const lines: string[] = [];
  let line = `  ${label.padEnd(12)}`;
  let empty = true;
  for (const entry of entries) {
    if (!empty && line.length + 2 + entry.length > WIDTH) {
      lines.push(line);
      line = indent;
      empty = true;
    }
    line += `${empty ? '' : '  '}${entry}`;
    empty = false;
  }
  lines.push(line);
  return lines;
}

function isoSeconds(unixNs: bigint): string {
  return `${new Date(Number(unixNs / 1_000_000n)).toISOString().slice(0, 19)}Z`;
}
