// The plain data one collection produces: what each attached interface has counted so far.
import type { AttachMode } from '../attach/attach-hooks.js';
import type { InterfaceCounters } from '../bpf/counter-layout.js';

export interface InterfaceSnapshot {
  name: string;
  ifindex: number;
  mode: AttachMode;
  /** When the kernel began counting on this interface (wall clock, ns); survives agent restarts through the pins. */
  countingSinceUnixNs: bigint;
  /** Cumulative totals since countingSinceUnixNs, summed over CPUs. */
  counters: InterfaceCounters;
  /** Delta temporality: what an earlier agent process exported last (from the pins), if anything. */
  deltaExported?: { untilUnixNs: bigint; counters: InterfaceCounters };
}

/** Reads every attached interface once. A failed read leaves that interface out: it is never reported as zeros. */
export type SnapshotSource = () => InterfaceSnapshot[];
