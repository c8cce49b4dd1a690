// What `carnx snapshot` and `carnx top` share: their own flags apart from config flags, and a checked pinned read.
import type { Libbpf } from '../bpf/libbpf.js';
import { tcxSupported } from '../attach/attach-hooks.js';
import { loadConfig } from '../config/load-config.js';
import { HostNotReady } from '../host/host-errors.js';
import { checkBpffs, openLibbpf } from '../host/preflight.js';
import { readPinnedCounters, type HookCache, type PinnedCounters } from '../reader/pinned-counters.js';

/** The command's own switches (e.g. --json), and every other argument for loadConfig (--bpffs-path, --config, ...). */
export function splitFlags(argv: string[], own: readonly string[]): { own: Set<string>; config: string[] } {
  const mine = new Set<string>();
  const config: string[] = [];
  for (const arg of argv) {
    if (own.includes(arg)) mine.add(arg);
    else config.push(arg);
  }
  return { own: mine, config };
}

/** Where the pins are: config key bpffs.path, from --bpffs-path, a config file or CARNX_BPFFS_PATH like the agent. */
export function bpffsPathOf(configFlags: string[]): string {
  return loadConfig({ argv: configFlags, env: process.env }).bpffs.path;
}

/** Reads the pins again on every call; opening the reader checks the host once. Never takes the bpffs lock. */
export class PinnedSource {
  readonly bpffs: string;
  readonly #lib: Libbpf;
  readonly #tcx: boolean;
  /** Each link's hook is asked once, not every second. */
  readonly #hooks: HookCache = new Map();

  constructor(bpffs: string) {
    checkBpffs(bpffs);
    this.bpffs = bpffs;
    this.#lib = openLibbpf();
    this.#tcx = tcxSupported(this.#lib);
  }

  read(): PinnedCounters {
    try {
      return readPinnedCounters(this.#lib, this.bpffs, this.#tcx, this.#hooks);
    } catch (err) {
      // Listing bpffs is refused without root: say how to run, rather than "nothing pinned".
      throw new HostNotReady(`could not read carnx's pins: ${(err as Error).message} (run as root)`);
    }
  }
}

/** The one line for a bpffs path where no agent has pinned anything. */
export function nothingPinned(bpffs: string): HostNotReady {
  return new HostNotReady(
    `no carnx counters are pinned under ${bpffs}: start the agent (npm start, or carnx run), or point --bpffs-path ` +
      "at the agent's bpffs.path",
  );
}

/** True when the read found no pinned direction at all (complete or not). */
export function isEmpty(read: PinnedCounters): boolean {
  return read.readings.length === 0 && read.unread.length === 0;
}
