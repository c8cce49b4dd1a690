// Puts carnx's program on one interface as a pinned bpf_link, adopts or upgrades a pinned one, and takes it off again.
import { existsSync, mkdirSync, renameSync, unlinkSync } from 'node:fs';
import { MAP_TYPES, type Libbpf } from '../bpf/libbpf.js';
import {
  COUNTERS_SIZE,
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
import { type AttachHook, type Direction, type ForeignProgram, type Hook, xdpModeOf } from './attach-hooks.js';
import { carnxPinRoot, interfacePins, layoutPinDir, type InterfacePins } from './pin-paths.js';
import { checkPinDir } from './pin-tree.js';
import { ProgramTags } from './program-tags.js';
import { removePins } from './pin-sweeper.js';

export const COUNTERS_MAP = 'carnx_counters';
export const META_MAP = 'carnx_meta';

/** An interface carnx counts on: the fds it reads through, and where they are pinned. */
export interface OwnedAttachment {
  ifname: string;
  ifindex: number;
  direction: Direction;
  hook: Hook;
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
  /** Which side of the interface this attacher counts; its pins and hooks are that side's. */
  direction: Direction;
  /** The hooks to try, in order (attach-hooks.ts: receivePlan, transmitPlan). */
  plan: AttachHook[];
  /** Every hook an earlier configuration may have used for this direction, to tell an adopted link's hook. */
  known: AttachHook[];
  replaceForeign: boolean;
  logger: Logger;
  /** Program tags shared with the other direction's attacher (one load per program); by default this attacher's own. */
  tags?: ProgramTags;
}

/** Hook-agnostic: what differs between hooks (query, link, clear) is behind AttachHook. One per direction. */
export class PinnedAttacher {
  readonly #o: AttacherOptions;
  readonly #tags: ProgramTags;

  constructor(options: AttacherOptions) {
    this.#o = options;
    this.#tags = options.tags ?? new ProgramTags(options.lib, options.objectPath);
    if (this.#tags.objectPath !== options.objectPath) {
      throw new Error(`program tags of ${this.#tags.objectPath} cannot vouch for ${options.objectPath}`);
    }
  }

  get direction(): Direction {
    return this.#o.direction;
  }

  /**
   * Loads each program this attacher may use once, to learn its tag (how an upgrade is recognised). This is also
   * where a verifier rejection surfaces, before anything is attached. The programs load side by side.
   */
  async verifyPrograms(): Promise<void> {
    const programs = new Set([...this.#o.plan, ...this.#o.known].map((hook) => hook.program));
    // allSettled: no load is left running behind a rejection (the caller may exit); the first error is thrown.
    const results = await Promise.allSettled([...programs].map((program) => this.#tags.of(program)));
    for (const result of results) if (result.status === 'rejected') throw result.reason;
  }

  /**
   * Attaches to iface, or adopts carnx's pinned attachment there (upgrading its program atomically). The verifier
   * runs on a worker thread, so several interfaces can be attached at once; each one's fds and pins are its own.
   */
  async ensure(iface: NetInterface): Promise<OwnedAttachment> {
    const pins = interfacePins(this.#o.bpffs, iface.name, this.#o.direction);
    for (const dir of [carnxPinRoot(this.#o.bpffs), layoutPinDir(this.#o.bpffs), pins.dir]) checkPinDir(dir);
    if (existsSync(pins.link)) {
      const adopted = await this.#adopt(iface, pins);
      if (adopted) return adopted;
    }
    removePins(pins);
    return this.#attachFresh(iface, pins);
  }

  /** Every fd opened here is closed on every path that does not hand it over in the returned attachment. */
  async #adopt(iface: NetInterface, pins: InterfacePins): Promise<OwnedAttachment | undefined> {
    const { lib } = this.#o;
    const opened: number[] = [];
    const open = (path: string) => {
      const fd = lib.getPinned(path);
      opened.push(fd);
      return fd;
    };
    try {
      const adopted = await this.#adoptOpened(iface, pins, open);
      if (adopted === undefined) for (const fd of opened) lib.closeFd(fd);
      return adopted;
    } catch (err) {
      for (const fd of opened) lib.closeFd(fd);
      throw err;
    }
  }

  /**
   * The link of a pin set being dropped still holds this interface's hook: detach it now, so the fresh attach that
   * follows does not find the hook taken (removing the pin detaches it only later) and fall back to another hook.
   */
  #detachDropped(linkFd: number, path: string): void {
    try {
      this.#o.lib.linkDetach(linkFd, path);
    } catch (err) {
      this.#o.logger.warn({ pin: path, err: (err as Error).message }, 'could not detach a dropped link');
    }
  }

  async #adoptOpened(
    iface: NetInterface,
    pins: InterfacePins,
    open: (path: string) => number,
  ): Promise<OwnedAttachment | undefined> {
    const { lib, logger } = this.#o;
    const linkFd = open(pins.link);
    if (lib.objectKind(linkFd) !== 'bpf-link') {
      logger.warn({ interface: iface.name, pin: pins.link, kind: lib.objectKind(linkFd) }, 'dropping pins: not a link');
      return undefined;
    }
    const info = lib.linkInfo(linkFd, pins.link);
    if (info.ifindex !== iface.ifindex) {
      // Defunct (0) or another device that took the name: that counting ended with its device.
      logger.info(
        { interface: iface.name, pinnedIfindex: info.ifindex, ifindex: iface.ifindex },
        'dropping stale pins',
      );
      return undefined;
    }
    // A link pinned without its maps is an attach cut short: drop it and attach anew, instead of failing forever.
    if (!existsSync(pins.counters) || !existsSync(pins.meta)) {
      logger.warn({ interface: iface.name, dir: pins.dir }, 'dropping pins: the counters or meta pin is missing');
      this.#detachDropped(linkFd, pins.link);
      return undefined;
    }
    const countersFd = open(pins.counters);
    const metaFd = open(pins.meta);
    const misfit =
      this.#misfit(countersFd, pins.counters, MAP_TYPES.percpuArray, COUNTERS_SIZE) ??
      this.#misfit(metaFd, pins.meta, MAP_TYPES.array, META_SIZE);
    if (misfit !== undefined) {
      // Not the maps carnx creates (planted, or left by a build with another layout): never read or reuse them.
      logger.warn({ interface: iface.name, reason: misfit }, 'dropping pinned maps of the wrong shape');
      this.#detachDropped(linkFd, pins.link);
      return undefined;
    }
    const meta = decodeMeta(lib.lookup(metaFd, 0, META_SIZE, pins.meta));
    // A link whose device lives runs on one of the known hooks.
    const hook = this.#o.known.find((h) => h.runs(iface, info.progId));
    if (hook === undefined) throw new Error(`pinned link ${pins.link} runs on no hook carnx knows`);
    const progId = await this.#upgradeIfChanged(iface, hook, linkFd, info.progId, countersFd, metaFd);
    logger.info(
      { interface: iface.name, hook: hook.hook, mode: xdpModeOf(hook.hook), progId },
      'adopted pinned attachment',
    );
    return {
      ifname: iface.name,
      ifindex: iface.ifindex,
      direction: this.#o.direction,
      hook: hook.hook,
      progId,
      countingSinceUnixNs: meta.countingSinceUnixNs,
      metaAtStart: meta,
      linkFd,
      countersFd,
      metaFd,
      pins,
    };
  }

  /** Why a pinned map is not one carnx creates (type, key and value size, one entry), or undefined when it is. */
  #misfit(fd: number, path: string, type: number, valueSize: number): string | undefined {
    let info: ReturnType<Libbpf['mapInfo']>;
    try {
      info = this.#o.lib.mapInfo(fd, path);
    } catch (err) {
      return (err as Error).message;
    }
    const want = { type, keySize: 4, valueSize, maxEntries: 1 };
    const wrong = (Object.keys(want) as Array<keyof typeof want>).filter((k) => info[k] !== want[k]);
    if (wrong.length === 0) return undefined;
    return `${path}: ${wrong.map((k) => `${k} ${info[k]}, expected ${want[k]}`).join(', ')}`;
  }

  /**
   * Same program: keep it. A new one (an upgrade): load it on the pinned maps and swap it in with one link update.
   * The program is opened through its pin, not bpf_prog_get_fd_by_id, which needs CAP_SYS_ADMIN.
   */
  async #upgradeIfChanged(
    iface: NetInterface,
    hook: AttachHook,
    linkFd: number,
    progId: number,
    countersFd: number,
    metaFd: number,
  ): Promise<number> {
    const { lib, logger } = this.#o;
    const pins = interfacePins(this.#o.bpffs, iface.name, this.#o.direction);
    const currentFd = existsSync(pins.prog) ? lib.getPinned(pins.prog) : -1;
    try {
      // A pin that does not name the link's program (an upgrade cut short between update and re-pin) cannot vouch
      // for it: the link is ours, so swap in our program without the expected-old check.
      const pinnedIsCurrent =
        currentFd >= 0 && lib.objectKind(currentFd) === 'bpf-prog' && lib.progInfo(currentFd, pins.prog).id === progId;
      if (pinnedIsCurrent && lib.progInfo(currentFd, pins.prog).tag === (await this.#tags.of(hook.program))) {
        return progId;
      }
      const object = lib.openObject(this.#o.objectPath);
      try {
        object.reuseMap(COUNTERS_MAP, countersFd);
        object.reuseMap(META_MAP, metaFd);
        object.loadOnly([hook.program]);
        await object.loadAsync();
        const newFd = object.programFd(hook.program);
        lib.linkUpdate(linkFd, newFd, iface.name, pinnedIsCurrent ? currentFd : undefined);
        // Pin under a second name, then rename over the old pin, so `prog` always names a live program. A
        // `prog_next` left by an upgrade cut short between pin and rename would make the pin fail (EEXIST) at every
        // rescan: it names no live attachment, so it goes first.
        if (existsSync(pins.progNext)) unlinkSync(pins.progNext);
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

  /**
   * Tries the plan's hooks in order, each with a freshly loaded object (only that hook's program is loaded, so a
   * fallback costs one more verifier run, not every interface). A hook held by a foreign program is skipped unless
   * xdp.replaceForeign says so.
   */
  async #attachFresh(iface: NetInterface, pins: InterfacePins): Promise<OwnedAttachment> {
    const reasons: string[] = [];
    let foreign: ForeignProgram | undefined;
    for (const hook of this.#o.plan) {
      const holder = hook.foreignProgram(iface);
      if (holder && !this.#o.replaceForeign) {
        foreign ??= holder;
        reasons.push(`${hook.hook} is held by program id ${holder.progId} that carnx does not own`);
        continue;
      }
      const attached = await this.#attachOn(hook, iface, pins, reasons, holder);
      if (attached === undefined) continue;
      const { logger } = this.#o;
      if (reasons.length > 0) {
        logger.warn(
          { interface: iface.name, hook: attached.hook, reason: reasons.join('; ') },
          `fell back to ${hook.hook}`,
        );
      }
      // `mode` (the XDP mode, absent for TC) as logged before TC hooks existed.
      const mode = xdpModeOf(attached.hook);
      logger.info({ interface: iface.name, hook: attached.hook, mode, progId: attached.progId }, 'attached');
      return attached;
    }
    if (foreign && reasons.length === 1) {
      throw new AttachRefused(
        'foreign-program',
        `${iface.name} already has XDP program id ${foreign.progId} (${foreign.attachedAs}) that carnx does not own; skipping it`,
        foreign.progId,
      );
    }
    throw new AttachRefused('mode-refused', `could not attach to ${reasons.join('; ')}`);
  }

  /**
   * One hook: load, link, pin. A refused link adds its reason and returns undefined; anything else throws. A foreign
   * program to replace (xdp.replaceForeign) goes only once ours is loaded, so the hook is empty for the least time.
   */
  async #attachOn(
    hook: AttachHook,
    iface: NetInterface,
    pins: InterfacePins,
    reasons: string[],
    foreign: ForeignProgram | undefined,
  ): Promise<OwnedAttachment | undefined> {
    const { lib } = this.#o;
    const object = lib.openObject(this.#o.objectPath);
    let linkFd = -1;
    try {
      object.loadOnly([hook.program]);
      await object.loadAsync();
      if (foreign) this.#removeForeign(hook, iface, foreign);
      const progFd = object.programFd(hook.program);
      const countingSinceUnixNs = BigInt(Date.now()) * 1_000_000n;
      const meta: CountingMeta = {
        countingSinceUnixNs,
        layoutVersion: LAYOUT_VERSION,
        ifindex: iface.ifindex,
        deltaExportedUntilUnixNs: 0n,
        deltaExported: emptyCounters(),
      };
      lib.update(object.mapFd(META_MAP), 0, encodeMeta(meta), iface.name);
      try {
        linkFd = await hook.createLink(progFd, iface);
      } catch (err) {
        reasons.push((err as Error).message);
        return undefined;
      }
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
      return {
        ifname: iface.name,
        ifindex: iface.ifindex,
        direction: this.#o.direction,
        hook: hook.hook,
        progId: lib.progInfo(progFd, this.#o.objectPath).id,
        countingSinceUnixNs,
        metaAtStart: meta,
        linkFd,
        countersFd: lib.getPinned(pins.counters),
        metaFd: lib.getPinned(pins.meta),
        pins,
      };
    } catch (err) {
      lib.closeFd(linkFd); // an unpinned link detaches when its last fd closes
      throw err;
    } finally {
      object.close();
    }
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
    try {
      if (!keepPinned) removePins(attachment.pins);
    } finally {
      // Our fds go whatever happened to the pins: a failed unpin must not leak them too.
      this.#o.lib.closeFd(attachment.linkFd);
      this.#o.lib.closeFd(attachment.countersFd);
      this.#o.lib.closeFd(attachment.metaFd);
    }
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
