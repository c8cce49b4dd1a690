// The plain data one collection produces: what each attached interface has counted so far.
import type { Direction, Hook } from '../attach/attach-hooks.js';
import type { InterfaceCounters } from '../bpf/counter-layout.js';

export type { Direction, Hook };

export interface InterfaceSnapshot {
  name: string;
  ifindex: number;
  direction: Direction;
  /** The hook the counts come from. */
  hook: Hook;
  /** When the kernel began counting on this interface (wall clock, ns); survives agent restarts through the pins. */
  countingSinceUnixNs: bigint;
  /** Cumulative totals since countingSinceUnixNs, summed over CPUs. */
  counters: InterfaceCounters;
  /** Delta temporality: what an earlier agent process exported last (from the pins), if anything. */
  deltaExported?: { untilUnixNs: bigint; counters: InterfaceCounters };
  /**
   * The last read of an attachment about to be released (interface gone, re-created or deselected): exported until
   * an export carrying it succeeds, then the series ends.
   */
  final?: true;
}

/** Reads every attached interface once. A failed read leaves that interface out: it is never reported as zeros. */
export type SnapshotSource = () => InterfaceSnapshot[];
