// carnx's attachments under a bpffs path as the kernel sees them: hook, link and program ids, since when.
import { readFileSync } from 'node:fs';
import type { Direction, Hook } from '../attach/attach-hooks.js';
import { pinInventory, type PinnedDirection } from '../attach/pin-inventory.js';
import { META_SIZE, decodeMeta } from '../bpf/counter-layout.js';
import { LINK_TYPES, MAP_TYPES, TCX_ATTACH_TYPES, linkDetails, progDetails, type Libbpf } from '../bpf/libbpf.js';
import { checkShape } from '../reader/pinned-counters.js';

export interface CarnxAttachment {
  ifname: string;
  direction: Direction;
  /** The hook the kernel runs the link on; undefined when the link is defunct or could not be read. */
  hook?: Hook;
  linkId?: number;
  progId?: number;
  progName?: string;
  /** The link's interface index; 0 when the interface went away (a defunct link, removed at the next agent rescan). */
  ifindex?: number;
  /** When carnx started counting here (the meta map), kept across agent restarts and program upgrades. */
  countingSince?: string;
  /** When the program now running was loaded (bpf_prog_info.load_time): the last attach or upgrade. */
  programLoaded?: string;
  pinDir: string;
  /** Why this entry is not a whole, live attachment (an attach cut short, a defunct link, a pin not readable). */
  problem?: string;
}

/** Wall-clock time of a CLOCK_BOOTTIME nanosecond stamp, from /proc/uptime (10 ms resolution is plenty here). */
export function bootTimeToIso(bootNs: bigint, uptime = readFileSync('/proc/uptime', 'utf8'), now = Date.now()): string {
  const uptimeMs = Number(uptime.split(/\s+/)[0]) * 1000;
  return new Date(now - uptimeMs + Number(bootNs / 1_000_000n)).toISOString();
}

/** The hook a link runs on: tcx links say it themselves, XDP links through the interface's XDP query. */
export function hookOf(
  lib: Libbpf,
  type: number,
  attachType: number,
  ifindex: number,
  progId: number,
): Hook | undefined {
  if (type === LINK_TYPES.tcx) {
    if (attachType === TCX_ATTACH_TYPES.ingress) return 'tc-ingress';
    if (attachType === TCX_ATTACH_TYPES.egress) return 'tc-egress';
    return undefined;
  }
  if (type !== LINK_TYPES.xdp || ifindex === 0) return undefined;
  const q = lib.xdpQuery(ifindex, `ifindex ${ifindex}`);
  if (q.drvProgId === progId) return 'xdp-native';
  if (q.skbProgId === progId) return 'xdp-generic';
  if (q.hwProgId === progId) return 'xdp-offload';
  return undefined;
}

/** Reads one pinned direction through its pins; every fd opened is closed again. */
function readOne(lib: Libbpf, pinned: PinnedDirection): CarnxAttachment {
  const out: CarnxAttachment = { ifname: pinned.ifname, direction: pinned.direction, pinDir: pinned.dir };
  if (!pinned.complete) {
    const missing = [
      pinned.hasLink ? '' : 'link',
      pinned.hasCounters ? '' : 'counters',
      pinned.hasMeta ? '' : 'meta',
    ].filter((m) => m !== '');
    return { ...out, problem: `incomplete pins (no ${missing.join(', ')}): an attach cut short; an agent sweeps it` };
  }
  const fds: number[] = [];
  const open = (path: string) => {
    const fd = lib.getPinned(path);
    fds.push(fd);
    return fd;
  };
  try {
    const link = linkDetails(lib, open(pinned.link), pinned.link);
    Object.assign(out, { linkId: link.id, progId: link.progId, ifindex: link.ifindex });
    const hook = hookOf(lib, link.type, link.attachType, link.ifindex, link.progId);
    if (hook) out.hook = hook;
    const metaFd = open(pinned.meta);
    // A lookup copies the map's own value size into our buffer: a map of another shape must never be read.
    checkShape(lib, metaFd, pinned.meta, MAP_TYPES.array, META_SIZE);
    const meta = decodeMeta(lib.lookup(metaFd, 0, META_SIZE, pinned.meta));
    if (meta.countingSinceUnixNs > 0n)
      out.countingSince = new Date(Number(meta.countingSinceUnixNs / 1_000_000n)).toISOString();
    if (pinned.hasProg) {
      const prog = progDetails(lib, open(pinned.prog), pinned.prog);
      out.progName = prog.name;
      if (prog.id === link.progId) out.programLoaded = bootTimeToIso(prog.loadTimeNs);
    }
    if (link.ifindex === 0)
      out.problem = 'defunct: its interface is gone (an agent removes the pins at its next rescan)';
    else if (hook === undefined) out.problem = 'the link runs on no hook carnx knows';
  } catch (err) {
    out.problem = `could not read the pins: ${(err as Error).message}`;
  } finally {
    for (const fd of fds) lib.closeFd(fd);
  }
  return out;
}

/** Every carnx attachment pinned under bpffs (this build's layout), in interface order, receive first. */
export function readAttachments(lib: Libbpf, bpffs: string): CarnxAttachment[] {
  return pinInventory(bpffs).pinned.map((p) => readOne(lib, p));
}
