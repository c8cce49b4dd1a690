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
import { AttachRefused } from './attach-refused.js';
import { XDP_PROGRAM, type AttachHook, type AttachMode, type ForeignProgram } from './attach-hooks.js';
import { interfacePins, type InterfacePins } from './pin-paths.js';

export const COUNTERS_MAP = 'carnx_counters';
export const META_MAP = 'carnx_meta';

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

export interface AttacherOptions {
  lib: Libbpf;
  objectPath: string;
  bpffs: string;
  /** The hooks to try, in order (attach-hooks.ts: hookPlan). */
  plan: AttachHook[];
  /** Every hook an earlier configuration may have used, to tell an adopted link's mode. */
  known: AttachHook[];
  replaceForeign: boolean;
  logger: Logger;
}

/** Hook-agnostic: what differs between hooks (query, link, clear) is behind AttachHook. */
export class PinnedAttacher {
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
        this.#ourTag = this.#o.lib.progInfo(object.programFd(XDP_PROGRAM), this.#o.objectPath).tag;
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
      // A link whose device lives runs on one of the known hooks; generic is what XDP reports for the rest.
      const mode = this.#o.known.find((hook) => hook.runs(iface, progId))?.mode ?? 'generic';
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
        const newFd = object.programFd(XDP_PROGRAM);
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
    const object = lib.openObject(this.#o.objectPath);
    let linkFd = -1;
    try {
      object.load();
      const progFd = object.programFd(XDP_PROGRAM);
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

  /** Tries the plan's hooks in order; a hook held by a foreign program is skipped unless xdp.replaceForeign says so. */
  #createLink(progFd: number, iface: NetInterface): { fd: number; mode: AttachMode } {
    const { logger, plan } = this.#o;
    const reasons: string[] = [];
    let foreign: ForeignProgram | undefined;
    for (const hook of plan) {
      const holder = hook.foreignProgram(iface);
      if (holder && !this.#o.replaceForeign) {
        foreign ??= holder;
        continue;
      }
      if (holder) this.#removeForeign(hook, iface, holder);
      try {
        const fd = hook.createLink(progFd, iface);
        if (reasons.length > 0) {
          logger.warn(
            { interface: iface.name, mode: hook.mode, reason: reasons.join('; ') },
            'fell back to generic XDP',
          );
        }
        return { fd, mode: hook.mode };
      } catch (err) {
        reasons.push((err as Error).message);
      }
    }
    if (foreign) {
      throw new AttachRefused(
        'foreign-program',
        `${iface.name} already has XDP program id ${foreign.progId} (${foreign.attachedAs}) that carnx does not own; skipping it`,
        foreign.progId,
      );
    }
    throw new AttachRefused('mode-refused', `could not attach to ${reasons.join('; ')}`);
  }

  #removeForeign(hook: AttachHook, iface: NetInterface, foreign: ForeignProgram): void {
    hook.removeForeign(iface, foreign);
    this.#o.logger.warn(
      { interface: iface.name, foreignProgId: foreign.progId },
      'removed a foreign XDP program (xdp.replaceForeign is true)',
    );
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
