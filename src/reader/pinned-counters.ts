// Reads carnx's counters straight from the pins in bpffs, beside a running agent: read-only, no lock, no agent state.
import { MAP_TYPES, type Libbpf } from '../bpf/libbpf.js';
import { COUNTERS_SIZE, META_SIZE, decodeCounters, decodeMeta, type InterfaceCounters } from '../bpf/counter-layout.js';
import { knownHooks, type Direction, type Hook } from '../attach/attach-hooks.js';
import { pinInventory, type PinnedDirection } from '../attach/pin-inventory.js';

/** One interface and direction as its pins hold it now. */
export interface PinnedReading {
  ifname: string;
  direction: Direction;
  /** Where the link runs now; undefined when the link's device is gone (defunct) or the hook could not be told. */
  hook: Hook | undefined;
  /** The device the link is on; 0 when it went away (the counts are the last ones it made). */
  ifindex: number;
  /** When counting began (wall clock, ns), from the pinned meta map. */
  countingSinceUnixNs: bigint;
  /** Cumulative since countingSinceUnixNs, summed over every possible CPU. */
  counters: InterfaceCounters;
}

/** A direction whose pins could not be read (incomplete attach, wrong map shape, a failed syscall): never zeros. */
export interface UnreadPins {
  ifname: string;
  direction: Direction;
  reason: string;
}

export interface PinnedCounters {
  /** When the maps were read (wall clock, ns). */
  readAtUnixNs: bigint;
  /** Monotonic time of the read (ns), for rates between two reads. */
  readAtMonotonicNs: bigint;
  readings: PinnedReading[];
  unread: UnreadPins[];
}

/**
 * The hook of each link seen, by link id: a link stays on the hook it was created on (an upgrade swaps only its
 * program), and telling XDP's mode costs a netlink dump of every device (about 9 ms on a host with a thousand).
 */
export type HookCache = Map<number, Hook | undefined>;

/**
 * Reads every complete attachment under bpffs. Opening a pin takes no lock and changes nothing, so this runs
 * next to an agent that holds the bpffs lock; each read opens and closes its own fds, so a re-attach between two
 * reads is followed. `tcx` says whether this kernel has tcx hooks (attach-hooks.ts tcxSupported). Pass the same
 * `hooks` cache to successive reads (top) to ask the kernel for each link's hook once; links gone are dropped from it.
 */
export function readPinnedCounters(
  lib: Libbpf,
  bpffs: string,
  tcx: boolean,
  hooks: HookCache = new Map(),
): PinnedCounters {
  const readAtMonotonicNs = process.hrtime.bigint();
  const readAtUnixNs = BigInt(Date.now()) * 1_000_000n;
  const readings: PinnedReading[] = [];
  const unread: UnreadPins[] = [];
  const seen = new Set<number>();
  for (const pins of pinInventory(bpffs).pinned) {
    const { ifname, direction } = pins;
    if (!pins.complete) {
      unread.push({ ifname, direction, reason: 'attach not complete (link, counters or meta pin missing)' });
      continue;
    }
    try {
      readings.push(readOne(lib, pins, tcx, hooks, seen));
    } catch (err) {
      unread.push({ ifname, direction, reason: (err as Error).message });
    }
  }
  for (const linkId of hooks.keys()) if (!seen.has(linkId)) hooks.delete(linkId);
  return { readAtUnixNs, readAtMonotonicNs, readings, unread };
}

function readOne(lib: Libbpf, pins: PinnedDirection, tcx: boolean, hooks: HookCache, seen: Set<number>): PinnedReading {
  const fds: number[] = [];
  const open = (path: string) => {
    const fd = lib.getPinned(path);
    fds.push(fd);
    return fd;
  };
  try {
    const countersFd = open(pins.counters);
    const metaFd = open(pins.meta);
    // A lookup copies the map's value size into our buffer: a map of another shape must never be read.
    checkShape(lib, countersFd, pins.counters, MAP_TYPES.percpuArray, COUNTERS_SIZE);
    checkShape(lib, metaFd, pins.meta, MAP_TYPES.array, META_SIZE);
    const meta = decodeMeta(lib.lookup(metaFd, 0, META_SIZE, pins.meta));
    const counters = decodeCounters(lib.lookupPerCpuU64Sums(countersFd, 0, COUNTERS_SIZE, pins.counters));
    const link = lib.linkInfo(open(pins.link), pins.link);
    seen.add(link.id);
    if (!hooks.has(link.id) || link.ifindex === 0) hooks.set(link.id, hookOf(lib, pins, link, tcx));
    return {
      ifname: pins.ifname,
      direction: pins.direction,
      hook: hooks.get(link.id),
      ifindex: link.ifindex,
      countingSinceUnixNs: meta.countingSinceUnixNs,
      counters,
    };
  } finally {
    for (const fd of fds) lib.closeFd(fd);
  }
}

/** Refuses a pinned map that is not one of carnx's single-entry maps of this type and value size (before any lookup). */
export function checkShape(lib: Libbpf, fd: number, path: string, type: number, valueSize: number): void {
  const info = lib.mapInfo(fd, path);
  const want = { type, keySize: 4, valueSize, maxEntries: 1 };
  const wrong = (Object.keys(want) as Array<keyof typeof want>).filter((k) => info[k] !== want[k]);
  if (wrong.length > 0)
    throw new Error(
      `${path} is not a carnx map: ${wrong.map((k) => `${k} ${info[k]}, expected ${want[k]}`).join(', ')}`,
    );
}

function isTc(hook: Hook): boolean {
  return hook.startsWith('tc-');
}

/** The hook the link's program runs on now, asked the same way an agent asks when it adopts a pinned link. */
function hookOf(
  lib: Libbpf,
  pins: PinnedDirection,
  link: { ifindex: number; progId: number },
  tcx: boolean,
): Hook | undefined {
  if (link.ifindex === 0) return undefined; // defunct: the device went away
  const iface = { name: pins.ifname, ifindex: link.ifindex };
  try {
    // TC hooks first: their query is one bpf syscall, XDP's a netlink dump per mode tried.
    const hooks = knownHooks(lib, pins.direction, tcx).sort((a, b) => Number(isTc(b.hook)) - Number(isTc(a.hook)));
    return hooks.find((h) => h.runs(iface, link.progId))?.hook ?? pins.hook;
  } catch {
    // Only a label: the counts were read; a query refused (e.g. without CAP_NET_ADMIN) leaves the hook unknown.
    return pins.hook;
  }
}
