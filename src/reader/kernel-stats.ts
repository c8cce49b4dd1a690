// The kernel's own statistics of named interfaces, read from sysfs as plain data (the counters the kernel keeps).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from '../log/logger.js';

/** Where the kernel lists the network devices of this process's network namespace. */
export const SYSFS_NET = '/sys/class/net';

/** One direction's totals since the device was created, as `statistics/{rx,tx}_*` holds them. */
export interface LinkCounters {
  packets: bigint;
  bytes: bigint;
  errors: bigint;
  dropped: bigint;
}

export interface ReceiveCounters extends LinkCounters {
  /** rx_missed_errors: frames the NIC had no room for (ring full). /proc/net/dev adds it to rx_dropped. */
  missed: bigint;
}

export interface KernelInterfaceStats {
  name: string;
  rx: ReceiveCounters;
  tx: LinkCounters;
}

/** The kernel statistics of every interface that carnx counts on, read once. */
export type KernelStatsSource = () => KernelInterfaceStats[];

/**
 * Reads `<sysfsNet>/<name>/statistics/*` for each name. An interface whose read fails (it went away since the last
 * rescan, or a value is unreadable) is left out of the result, never reported as zeros. Never throws.
 */
export function readKernelStats(
  names: readonly string[],
  logger: Logger,
  sysfsNet: string = SYSFS_NET,
): KernelInterfaceStats[] {
  const out: KernelInterfaceStats[] = [];
  for (const name of names) {
    try {
      const read = (file: string) => readCounter(join(sysfsNet, name, 'statistics', file));
      out.push({
        name,
        rx: {
          packets: read('rx_packets'),
          bytes: read('rx_bytes'),
          errors: read('rx_errors'),
          dropped: read('rx_dropped'),
          missed: read('rx_missed_errors'),
        },
        tx: {
          packets: read('tx_packets'),
          bytes: read('tx_bytes'),
          errors: read('tx_errors'),
          dropped: read('tx_dropped'),
        },
      });
    } catch (err) {
      // Gone between the rescan and this read: the next rescan releases it. Anything else is worth a warning.
      const gone = (err as NodeJS.ErrnoException).code === 'ENOENT';
      logger[gone ? 'debug' : 'warn'](
        { interface: name, err: (err as Error).message },
        'could not read the kernel statistics; left out of this collection',
      );
    }
  }
  return out;
}

/** A sysfs counter file: one unsigned decimal and a newline. Anything else is an error, not a number. */
function readCounter(path: string): bigint {
  const text = readFileSync(path, 'utf8').trim();
  if (!/^\d+$/.test(text)) throw new Error(`${path}: not a counter: ${JSON.stringify(text.slice(0, 40))}`);
  return BigInt(text);
}
