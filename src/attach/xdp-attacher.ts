// Puts carnx's program on one interface as a pinned bpf_link, adopts or upgrades a pinned one, and takes it off again.
import { existsSync, mkdirSync, renameSync, rmdirSync, unlinkSync } from 'node:fs';
import type { Libbpf } from '../bpf/libbpf.js';
import {
  LAYOUT_VERSION,
  META_SIZE,
  decodeMeta,
  emptyCounters,
  encodeMeta,
  type CountingMeta,
  type InterfaceCounters,
} from '../bpf/counter-layout.js';
import type { Logger } from '../log/logger.js';
import type { NetInterface } from '../interfaces/interface-list.js';
import type { AttachMode } from '../reader/interface-snapshot.js';
import { interfacePins, type InterfacePins } from './pin-paths.js';

export const PROGRAM_NAME = 'carnx_count';
export const COUNTERS_MAP = 'carnx_counters';
export const META_MAP = 'carnx_meta';

const MODE_FLAGS: Record<AttachMode, number> = { generic: 2, native: 4, offload: 8 }; // XDP_FLAGS_{SKB,DRV,HW}_MODE

/** An interface carnx counts on: the fds it reads through, and where they are pinned. */
export interface OwnedAttachment {
  ifname: string;
  ifindex: number;
  mode: AttachMode;
  progId: number;
  countingSinceUnixNs: bigint;
  /** The pinned agent state as it was when this agent took the interface (delta baseline across restarts). */
  metaAtStart: CountingMeta;
  linkFd: number;
  countersFd: number;
  metaFd: number;
  pins: InterfacePins;
}

export type RefusalReason = 'foreign-program' | 'mode-refused' | 'pin-failed';

/** carnx did not attach to an interface; the agent logs it and carries on with the others. */
export class AttachRefused extends Error {
  readonly reason: RefusalReason;
  readonly foreignProgId: number;

  constructor(reason: RefusalReason, message: string, foreignProgId = 0) {
    super(message);
    this.name = 'AttachRefused';
    this.reason = reason;
    this.foreignProgId = foreignProgId;
  }
}

export interface AttacherOptions {
  lib: Libbpf;
  objectPath: string;
  bpffs: string;
  mode: 'auto' | AttachMode;
  replaceForeign: boolean;
  logger: Logger;
}

export class XdpAttacher {
  readonly #o: AttacherOptions;
  #ourTag: string | undefined;

  constructor(options: AttacherOptions) {
    this.#o = options;
  }

  /** Loads the object once to learn our program's tag; this is also where a verifier rejection surfaces. */
  ourProgramTag(): string {
    if (this.#ourTag === undefined) {
      const object = this.#o.lib.openObject(this.#o.objectPath);
      try {
        object.load();
        this.#ourTag = this.#o.lib.progInfo(object.programFd(PROGRAM_NAME), this.#o.objectPath).tag;
      } finally {
        object.close();
      }
    }
    return this.#ourTag;
  }

  /** Attaches to iface, or adopts carnx's pinned attachment there (upgrading its program atomically). */
  ensure(iface: NetInterface): OwnedAttachment {
    const pins = interfacePins(this.#o.bpffs, iface.name);
    if (existsSync(pins.link)) {
      const adopted = this.#adopt(iface, pins);
      if (adopted) return adopted;
    }
    removePins(pins);
    return this.#attachFresh(iface, pins);
  }

  #adopt(iface: NetInterface, pins: InterfacePins): OwnedAttachment | undefined {
    const { lib, logger } = this.#o;
    const linkFd = lib.getPinned(pins.link);
    const info = lib.linkInfo(linkFd, pins.link);
    if (info.ifindex !== iface.ifindex) {
      // Defunct (0) or another device that took the name: that counting ended with its device.
      logger.info(
        { interface: iface.name, pinnedIfindex: info.ifindex, ifindex: iface.ifindex },
        'dropping stale pins',
      );
      lib.closeFd(linkFd);
      return undefined;
    }
    const countersFd = lib.getPinned(pins.counters);
    const metaFd = lib.getPinned(pins.meta);
    try {
      const meta = decodeMeta(lib.lookup(metaFd, 0, META_SIZE, pins.meta));
      const progId = this.#upgradeIfChanged(iface, linkFd, info.progId, countersFd, metaFd);
      const mode = modeOf(lib.xdpQuery(iface.ifindex, iface.name), progId);
      logger.info({ interface: iface.name, mode, progId }, 'adopted pinned attachment');
      return {
        ifname: iface.name,
        ifindex: iface.ifindex,
        mode,
        progId,
        countingSinceUnixNs: meta.countingSinceUnixNs,
        metaAtStart: meta,
        linkFd,
        countersFd,
        metaFd,
        pins,
      };
    } catch (err) {
      lib.closeFd(linkFd);
      lib.closeFd(countersFd);
      lib.closeFd(metaFd);
      throw err;
    }
  }

  /**
   * Same program: keep it. A new one (an upgrade): load it on the pinned maps and swap it in with one link update.
   * The program is opened through its pin, not bpf_prog_get_fd_by_id, which needs CAP_SYS_ADMIN.
   */
  #upgradeIfChanged(iface: NetInterface, linkFd: number, progId: number, countersFd: number, metaFd: number): number {
    const { lib, logger } = this.#o;
    const pins = interfacePins(this.#o.bpffs, iface.name);
    const currentFd = existsSync(pins.prog) ? lib.getPinned(pins.prog) : -1;
    try {
      // A pin that does not name the link's program (an upgrade cut short between update and re-pin) cannot vouch
      // for it: the link is ours, so swap in our program without the expected-old check.
      const pinnedIsCurrent = currentFd >= 0 && lib.progInfo(currentFd, pins.prog).id === progId;
      if (pinnedIsCurrent && lib.progInfo(currentFd, pins.prog).tag === this.ourProgramTag()) return progId;
      const object = lib.openObject(this.#o.objectPath);
      try {
        object.reuseMap(COUNTERS_MAP, countersFd);
        object.reuseMap(META_MAP, metaFd);
        object.load();
        const newFd = object.programFd(PROGRAM_NAME);
        lib.linkUpdate(linkFd, newFd, iface.name, pinnedIsCurrent ? currentFd : undefined);
        // Pin under a second name, then rename over the old pin, so `prog` always names a live program.
        lib.pin(newFd, pins.progNext);
        renameSync(pins.progNext, pins.prog);
        const newId = lib.progInfo(newFd, this.#o.objectPath).id;
        logger.info({ interface: iface.name, oldProgId: progId, progId: newId }, 'upgraded program in place');
        return newId;
      } finally {
        object.close();
      }
    } finally {
      lib.closeFd(currentFd);
    }
  }

  #attachFresh(iface: NetInterface, pins: InterfacePins): OwnedAttachment {
    const { lib, logger } = this.#o;
    this.#clearForeign(iface);
    const object = lib.openObject(this.#o.objectPath);
    let linkFd = -1;
    try {
      object.load();
      const progFd = object.programFd(PROGRAM_NAME);
      const countingSinceUnixNs = BigInt(Date.now()) * 1_000_000n;
      const meta: CountingMeta = {
        countingSinceUnixNs,
        layoutVersion: LAYOUT_VERSION,
        ifindex: iface.ifindex,
        deltaExportedUntilUnixNs: 0n,
        deltaExported: emptyCounters(),
      };
      lib.update(object.mapFd(META_MAP), 0, encodeMeta(meta), iface.name);
      const { fd, mode } = this.#createLink(progFd, iface);
      linkFd = fd;
      try {
        mkdirSync(pins.dir, { recursive: true, mode: 0o700 });
        lib.pin(object.mapFd(COUNTERS_MAP), pins.counters);
        lib.pin(object.mapFd(META_MAP), pins.meta);
        lib.pin(progFd, pins.prog);
        lib.pin(linkFd, pins.link); // last: only now is the attachment complete on disk
      } catch (err) {
        removePins(pins);
        throw new AttachRefused(
          'pin-failed',
          `could not pin ${iface.name}'s attachment under ${pins.dir}: ${(err as Error).message}`,
        );
      }
      const progId = lib.progInfo(progFd, this.#o.objectPath).id;
      const countersFd = lib.getPinned(pins.counters);
      const metaFd = lib.getPinned(pins.meta);
      logger.info({ interface: iface.name, mode, progId }, 'attached');
      return {
        ifname: iface.name,
        ifindex: iface.ifindex,
        mode,
        progId,
        countingSinceUnixNs,
        metaAtStart: meta,
        linkFd,
        countersFd,
        metaFd,
        pins,
      };
    } catch (err) {
      lib.closeFd(linkFd); // an unpinned link detaches when its last fd closes
      throw err;
    } finally {
      object.close();
    }
  }

  /** Never touches a program carnx does not own, unless xdp.replaceForeign says so. */
  #clearForeign(iface: NetInterface): void {
    const { lib, logger } = this.#o;
    const current = lib.xdpQuery(iface.ifindex, iface.name);
    if (current.attachMode === 'none') return;
    const foreignId = current.progId || current.drvProgId || current.skbProgId || current.hwProgId;
    if (!this.#o.replaceForeign) {
      throw new AttachRefused(
        'foreign-program',
        `${iface.name} already has XDP program id ${foreignId} (${current.attachMode}) that carnx does not own; skipping it`,
        foreignId,
      );
    }
    // Not atomic: a netlink program cannot be swapped for a link. Said loudly, and only when configured.
    lib.xdpDetach(
      iface.ifindex,
      current.attachMode === 'multi' ? 0 : MODE_FLAGS[current.attachMode as AttachMode],
      iface.name,
    );
    logger.warn(
      { interface: iface.name, foreignProgId: foreignId },
      'removed a foreign XDP program (xdp.replaceForeign is true)',
    );
  }

  #createLink(progFd: number, iface: NetInterface): { fd: number; mode: AttachMode } {
    const { lib, logger, mode } = this.#o;
    const tries: AttachMode[] = mode === 'auto' ? ['native', 'generic'] : [mode];
    const reasons: string[] = [];
    for (const attempt of tries) {
      try {
        const fd = lib.linkCreateXdp(progFd, iface.ifindex, MODE_FLAGS[attempt], `${iface.name} in ${attempt} mode`);
        if (reasons.length > 0)
          logger.warn({ interface: iface.name, mode: attempt, reason: reasons.join('; ') }, 'fell back to generic XDP');
        return { fd, mode: attempt };
      } catch (err) {
        reasons.push((err as Error).message);
      }
    }
    throw new AttachRefused('mode-refused', `could not attach to ${reasons.join('; ')}`);
  }

  /** Takes carnx off an interface: unpinning and closing the link detaches it. keepPinned only closes our fds. */
  release(attachment: OwnedAttachment, keepPinned: boolean): void {
    if (!keepPinned) removePins(attachment.pins);
    this.#o.lib.closeFd(attachment.linkFd);
    this.#o.lib.closeFd(attachment.countersFd);
    this.#o.lib.closeFd(attachment.metaFd);
  }

  /** Delta temporality: records what was exported, so a restarted agent continues from there. */
  saveDeltaExported(attachment: OwnedAttachment, counters: InterfaceCounters, untilUnixNs: bigint): void {
    const meta: CountingMeta = {
      ...attachment.metaAtStart,
      deltaExportedUntilUnixNs: untilUnixNs,
      deltaExported: counters,
    };
    this.#o.lib.update(attachment.metaFd, 0, encodeMeta(meta), attachment.pins.meta);
  }
}

function modeOf(query: ReturnType<Libbpf['xdpQuery']>, progId: number): AttachMode {
  if (query.drvProgId === progId) return 'native';
  if (query.hwProgId === progId) return 'offload';
  return 'generic';
}

/** Unpins an interface's objects (link last-pinned, first-removed) and its directory; missing ones are fine. */
export function removePins(pins: InterfacePins): void {
  for (const path of [pins.link, pins.prog, pins.progNext, pins.counters, pins.meta]) {
    // bpffs answers unlink of a missing name with EPERM, not ENOENT: look first.
    if (existsSync(path)) unlinkSync(path);
  }
  try {
    rmdirSync(pins.dir);
  } catch (err) {
    if (!['ENOENT', 'ENOTEMPTY'].includes((err as NodeJS.ErrnoException).code ?? '')) throw err;
  }
}
