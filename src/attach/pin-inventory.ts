// What carnx has pinned under a bpffs path, read from the directory tree alone: no BPF call, no lock, no privileges.
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Direction, Hook } from './attach-hooks.js';
import { carnxPinRoot, ifnameOfPinDir, interfacePins, layoutPinDir } from './pin-paths.js';

/** One interface's pins in one direction. */
export interface PinnedDirection {
  /** The interface name, decoded from its pin directory (eth0%2E100 -> eth0.100). */
  ifname: string;
  direction: Direction;
  /**
   * The hook, where the paths tell it: transmit is only ever counted on TC egress. Receive runs on XDP (a mode) or
   * TC ingress, which only the kernel can say (query the link), so it is undefined here.
   */
  hook: Hook | undefined;
  /** The interface's pin directory (shared by both directions). */
  dir: string;
  /** The per-CPU counters map pin, and whether it exists. */
  counters: string;
  hasCounters: boolean;
  /** The agent state map pin (counting start, delta baseline), and whether it exists. */
  meta: string;
  hasMeta: boolean;
  /** The bpf_link pin, and whether it exists: pinned last, so without it the attach was cut short. */
  link: string;
  hasLink: boolean;
  /** The program pin, and whether it exists. */
  prog: string;
  hasProg: boolean;
  /** Link, counters and meta are all pinned: an attachment an agent completed (it may have gone defunct since). */
  complete: boolean;
}

export interface PinInventory {
  /** The directory of this build's counter layout (<bpffs>/carnx/v<layout>). */
  layoutDir: string;
  /** Sorted by interface name, receive before transmit; a direction with no pin at all is left out. */
  pinned: PinnedDirection[];
  /** Directories of other counter layouts under <bpffs>/carnx: this build cannot read them (an agent sweeps them). */
  otherLayoutDirs: string[];
}

const DIRECTIONS: readonly Direction[] = ['receive', 'transmit'];

/** Lists carnx's pins under bpffs. A missing tree is an empty inventory; symlinks are never followed. */
export function pinInventory(bpffs: string): PinInventory {
  const layoutDir = layoutPinDir(bpffs);
  const pinned: PinnedDirection[] = [];
  for (const dirName of subdirectories(layoutDir)) {
    const ifname = ifnameOfPinDir(dirName);
    for (const direction of DIRECTIONS) {
      const entry = pinnedDirection(bpffs, ifname, direction);
      if (entry.hasLink || entry.hasCounters || entry.hasMeta || entry.hasProg) pinned.push(entry);
    }
  }
  pinned.sort(
    (a, b) => compare(a.ifname, b.ifname) || DIRECTIONS.indexOf(a.direction) - DIRECTIONS.indexOf(b.direction),
  );
  const root = carnxPinRoot(bpffs);
  const otherLayoutDirs = subdirectories(root)
    .map((name) => join(root, name))
    .filter((path) => path !== layoutDir)
    .sort(compare);
  return { layoutDir, pinned, otherLayoutDirs };
}

function pinnedDirection(bpffs: string, ifname: string, direction: Direction): PinnedDirection {
  const pins = interfacePins(bpffs, ifname, direction);
  const hasLink = existsSync(pins.link);
  const hasCounters = existsSync(pins.counters);
  const hasMeta = existsSync(pins.meta);
  return {
    ifname,
    direction,
    hook: direction === 'transmit' ? 'tc-egress' : undefined,
    dir: pins.dir,
    counters: pins.counters,
    hasCounters,
    meta: pins.meta,
    hasMeta,
    link: pins.link,
    hasLink,
    prog: pins.prog,
    hasProg: existsSync(pins.prog),
    complete: hasLink && hasCounters && hasMeta,
  };
}

/**
 * Real directories only (withFileTypes does not follow symlinks). A missing parent lists nothing; any other failure
 * (EACCES when not root) is thrown with the path, never taken for "nothing pinned".
 */
function subdirectories(path: string): string[] {
  try {
    return readdirSync(path, { withFileTypes: true })
      .filter((entry) => entry.isDirectory())
      .map((entry) => entry.name);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return [];
    throw new Error(`could not list ${path}: ${code ?? (err as Error).message}`);
  }
}

/** Byte order, not locale order: stable across machines. */
function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
