// The kernel's own statistics of named interfaces, read from /proc/net/dev as plain data (the counters the kernel keeps).
import { readFileSync } from 'node:fs';
import type { Logger } from '../log/logger.js';

/**
 * Every device of this process's network namespace with its statistics, in one read. The same numbers as
 * /sys/class/net/<name>/statistics/* (both come from dev_get_stats), but one file for all devices instead of nine per
 * device: at 500 interfaces that is one read per collection instead of 4,500 opens.
 */
export const PROC_NET_DEV = '/proc/net/dev';

/** One direction's totals since the device was created. */
export interface LinkCounters {
  packets: bigint;
  bytes: bigint;
  errors: bigint;
  /**
   * Packets dropped without an error. Receive: rx_dropped + rx_missed_errors (frames the NIC had no room for), as the
   * drop column of /proc/net/dev sums them; transmit: tx_dropped.
   */
  dropped: bigint;
}

export interface KernelInterfaceStats {
  name: string;
  rx: LinkCounters;
  tx: LinkCounters;
}

/** The kernel statistics of every interface that carnx counts on, read once. */
export type KernelStatsSource = () => KernelInterfaceStats[];

/**
 * /proc/net/dev columns after `name:` (net/core/net-procfs.c): receive bytes packets errs drop fifo frame compressed
 * multicast, then transmit bytes packets errs drop fifo colls carrier compressed.
 */
const COLUMNS = 16;
const RX = { bytes: 0, packets: 1, errors: 2, dropped: 3 } as const;
const TX = { bytes: 8, packets: 9, errors: 10, dropped: 11 } as const;

/**
 * The statistics of each name, in the order asked. An interface missing from the file (it went away since the last
 * rescan) or with a line that does not parse is left out of the result, never reported as zeros. Throws only when
 * the file cannot be read at all (the caller logs and skips the collection).
 */
export function readKernelStats(
  names: readonly string[],
  logger: Logger,
  procNetDev: string = PROC_NET_DEV,
): KernelInterfaceStats[] {
  if (names.length === 0) return [];
  const lines = linesByName(readFileSync(procNetDev, 'latin1'), new Set(names));
  const out: KernelInterfaceStats[] = [];
  for (const name of names) {
    const line = lines.get(name);
    if (line === undefined) {
      // Gone between the rescan and this read: the next rescan releases it.
      logger.debug({ interface: name }, 'not in /proc/net/dev; left out of this collection');
      continue;
    }
    try {
      out.push(parseLine(name, line));
    } catch (err) {
      logger.warn(
        { interface: name, err: (err as Error).message },
        'could not read the kernel statistics; left out of this collection',
      );
    }
  }
  return out;
}

/** The text after `name:` of each wanted device. Names cannot hold ':' or blanks, so the first ':' ends the name. */
function linesByName(text: string, wanted: ReadonlySet<string>): Map<string, string> {
  const found = new Map<string, string>();
  let at = 0;
  while (at < text.length) {
    const end = text.indexOf('\n', at);
    const lineEnd = end === -1 ? text.length : end;
    const colon = text.indexOf(':', at);
    if (colon !== -1 && colon < lineEnd) {
      const name = text.slice(at, colon).trim();
      if (wanted.has(name)) found.set(name, text.slice(colon + 1, lineEnd));
    }
    at = lineEnd + 1;
  }
  return found;
}

function parseLine(name: string, rest: string): KernelInterfaceStats {
  const fields = rest.trim().split(/\s+/);
  if (fields.length < COLUMNS || !fields.slice(0, COLUMNS).every((f) => /^\d+$/.test(f))) {
    throw new Error(`${PROC_NET_DEV}: ${name}: not ${COLUMNS} counters: ${JSON.stringify(rest.trim().slice(0, 60))}`);
  }
  const at = (i: number): bigint => BigInt(fields[i] as string);
  return {
    name,
    rx: { packets: at(RX.packets), bytes: at(RX.bytes), errors: at(RX.errors), dropped: at(RX.dropped) },
    tx: { packets: at(TX.packets), bytes: at(TX.bytes), errors: at(TX.errors), dropped: at(TX.dropped) },
  };
}
