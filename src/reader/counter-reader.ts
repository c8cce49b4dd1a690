// One read of each attached interface's per-CPU counters, summed over CPUs, as plain InterfaceSnapshots.
import type { Libbpf } from '../bpf/libbpf.js';
import { COUNTERS_SIZE, decodeCounters } from '../bpf/counter-layout.js';
import type { OwnedAttachment } from '../attach/pinned-attacher.js';
import type { Logger } from '../log/logger.js';
import type { InterfaceSnapshot } from './interface-snapshot.js';

export function readSnapshots(
  lib: Libbpf,
  attachments: Iterable<OwnedAttachment>,
  logger: Logger,
): InterfaceSnapshot[] {
  const snapshots: InterfaceSnapshot[] = [];
  for (const a of attachments) {
    try {
      const words = lib.lookupPerCpuU64Sums(a.countersFd, 0, COUNTERS_SIZE, `counters of ${a.ifname}`);
      const { deltaExportedUntilUnixNs: untilUnixNs, deltaExported } = a.metaAtStart;
      snapshots.push({
        name: a.ifname,
        ifindex: a.ifindex,
        direction: a.direction,
        hook: a.hook,
        countingSinceUnixNs: a.countingSinceUnixNs,
        counters: decodeCounters(words),
        ...(untilUnixNs > 0n ? { deltaExported: { untilUnixNs, counters: deltaExported } } : {}),
      });
    } catch (err) {
      // A failed read is not zero: leave the interface out of this collection.
      logger.warn({ interface: a.ifname, err: (err as Error).message }, 'could not read counters');
    }
  }
  return snapshots;
}
