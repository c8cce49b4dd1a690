// Keeps carnx attached to exactly the selected interfaces: attach the new, release the gone, rescan on a timer.
import { availableParallelism } from 'node:os';
import type { InterfaceCounters } from '../bpf/counter-layout.js';
import type { NetInterface } from '../interfaces/interface-list.js';
import type { Logger } from '../log/logger.js';
import type { Direction, Hook } from './attach-hooks.js';
import { AttachRefused } from './attach-refused.js';
import type { OwnedAttachment, PinnedAttacher } from './pinned-attacher.js';
import { pinnedInterfaceNames, removeInterfacePins } from './pin-sweeper.js';

/** What the loop needs of an attacher (PinnedAttacher in the agent, a fake in unit tests). */
export type Attacher = Pick<PinnedAttacher, 'release' | 'saveDeltaExported'> & {
  direction: Direction;
  ensure(iface: NetInterface): OwnedAttachment | Promise<OwnedAttachment>;
};

/**
 * How many attaches run at once. Each is mostly the verifier, CPU-bound, on a thread of libuv's pool (koffi's async
 * calls are libuv work), then its link, which waits in the kernel without a CPU (a tcx link: an RCU grace period,
 * 8-16 ms here, one link after the other under the rtnl lock): one more attach than cores keeps every core verifying
 * meanwhile. One pool thread stays free for what else the agent queues there (DNS lookups for the OTLP endpoint,
 * gzip), so the pool's size (UV_THREADPOOL_SIZE, 4 unless set) caps it.
 */
export const ATTACH_CONCURRENCY = Math.max(
  1,
  Math.min(availableParallelism() + 1, (Number(process.env.UV_THREADPOOL_SIZE) || 4) - 1),
);

export interface ReconcilerOptions {
  bpffs: string;
  logger: Logger;
  /** The interfaces that should be counted now; throws when they cannot be listed. */
  selected: () => NetInterface[];
  /** Told once per refusal state change (the health metric counts them). */
  onAttachFailure: (reason: string) => void;
  /**
   * Called with an attachment about to be released at a rescan (gone, re-created, deselected), while its counters
   * can still be read: what it counted since the last export is read here, not lost. Never at releaseAll (the last
   * export comes before it). What it throws is logged; the release goes on.
   */
  finalRead?: (attachment: OwnedAttachment) => void;
  /** Attaches at once (default ATTACH_CONCURRENCY); 1 attaches one interface after the other. */
  concurrency?: number;
}

const keyOf = (ifname: string, direction: Direction) => `${ifname}/${direction}`;

export class Reconciler {
  readonly #o: ReconcilerOptions;
  /** One attacher per counted direction. */
  #attachers: Attacher[];
  /** By interface and direction. */
  readonly #attached = new Map<string, OwnedAttachment>();
  /** Why an interface's direction is not attached, so each state change is logged once, not at every rescan. */
  readonly #refused = new Map<string, string>();
  #timer: NodeJS.Timeout | undefined;
  #stopped = false;
  /** The last rescan's failure, so a failure that persists is logged once, not at every rescan. */
  #rescanFailure: string | undefined;
  /** The reconcile running now (settled, never rejected): the next one starts after it. */
  #running: Promise<void> = Promise.resolve();
  /** A reconcile asked for while one runs: later requests join it instead of queueing one each. */
  #next: Promise<void> | undefined;

  constructor(attachers: Attacher[], options: ReconcilerOptions) {
    this.#attachers = attachers;
    this.#o = options;
  }

  /**
   * A reload's attachers (mode, object, directions): they apply to interfaces attached from now on. A direction no
   * longer counted is released at the next reconcile.
   */
  useAttachers(attachers: Attacher[]): void {
    this.#attachers = attachers;
  }

  /** Reconciles every intervalMs; the timer never keeps the process alive, and a failed rescan never ends it. */
  rescanEvery(intervalMs: number): void {
    clearInterval(this.#timer);
    this.#timer = setInterval(() => this.#rescan(), intervalMs);
    this.#timer.unref();
  }

  /** One timed reconcile: what it throws (a bpffs error in the pin sweep) is logged once per message; next try. */
  async #rescan(): Promise<void> {
    try {
      await this.reconcile();
      if (this.#rescanFailure !== undefined) this.#o.logger.info({}, 'rescan recovered');
      this.#rescanFailure = undefined;
    } catch (err) {
      const message = (err as Error).message;
      if (this.#rescanFailure !== message) this.#o.logger.warn({ err: message }, 'rescan failed; trying again');
      this.#rescanFailure = message;
    }
  }

  /**
   * Attach to selected interfaces that lack carnx; release those gone, re-created or no longer selected. One reconcile
   * runs at a time (a rescan during a long start-up waits for it); it rejects when the pin sweep fails.
   */
  reconcile(): Promise<void> {
    if (this.#next !== undefined) return this.#next;
    const next = this.#running.then(() => {
      this.#next = undefined;
      return this.#reconcileOnce();
    });
    this.#next = next;
    this.#running = next.catch(() => undefined);
    return next;
  }

  async #reconcileOnce(): Promise<void> {
    if (this.#stopped) return;
    let selected: NetInterface[];
    try {
      selected = this.#o.selected();
    } catch (err) {
      this.#o.logger.warn({ err: (err as Error).message }, 'could not list interfaces');
      return;
    }
    const byName = new Map(selected.map((i) => [i.name, i]));
    const directions = new Set(this.#attachers.map((a) => a.direction));
    for (const a of [...this.#attached.values()]) {
      const now = byName.get(a.ifname);
      if (now?.ifindex === a.ifindex && directions.has(a.direction)) continue;
      this.#finalRead(a);
      this.#release(a, false);
      const why = !now
        ? 'interface gone or deselected: detached'
        : now.ifindex !== a.ifindex
          ? 'interface re-created: attaching anew'
          : 'direction no longer counted: detached';
      this.#o.logger.info({ interface: a.ifname, direction: a.direction }, why);
    }
    // Pins of interfaces that are gone or deselected (left by a crash or an older config) go too.
    const attachedNames = new Set(this.attachedNames());
    for (const name of pinnedInterfaceNames(this.#o.bpffs)) {
      if (!byName.has(name) && !attachedNames.has(name)) removeInterfacePins(this.#o.bpffs, name);
    }
    for (const key of this.#refused.keys())
      if (!byName.has(key.slice(0, key.lastIndexOf('/')))) this.#refused.delete(key);
    // Interfaces in selection order, a few at a time; one interface's directions one after the other, so its log
    // lines come in the order a serial start-up wrote them. Each attach settles on its own (attached, or refused).
    const attachers = this.#attachers;
    const wanted = selected.filter((iface) =>
      attachers.some((a) => !this.#attached.has(keyOf(iface.name, a.direction))),
    );
    const workers = Math.min(wanted.length, this.#o.concurrency ?? ATTACH_CONCURRENCY);
    const attachNext = async (): Promise<void> => {
      for (let iface = wanted.shift(); iface !== undefined; iface = wanted.shift()) {
        for (const attacher of attachers) {
          if (this.#stopped) return;
          if (!this.#attached.has(keyOf(iface.name, attacher.direction))) await this.#attach(attacher, iface);
        }
      }
    };
    await Promise.all(Array.from({ length: workers }, attachNext));
  }

  async #attach(attacher: Attacher, iface: NetInterface): Promise<void> {
    const key = keyOf(iface.name, attacher.direction);
    try {
      this.#attached.set(key, await attacher.ensure(iface));
      if (this.#refused.delete(key)) {
        this.#o.logger.info({ interface: iface.name, direction: attacher.direction }, 'interface now attached');
      }
    } catch (err) {
      const refusal = err instanceof AttachRefused ? err : undefined;
      const message = (err as Error).message;
      if (this.#refused.get(key) === message) return;
      this.#refused.set(key, message);
      this.#o.logger.warn(
        {
          interface: iface.name,
          direction: attacher.direction,
          reason: refusal?.reason ?? 'attach-error',
          foreignProgId: refusal?.foreignProgId,
          err: message,
        },
        'not counting on interface',
      );
      this.#o.onAttachFailure(refusal?.reason ?? 'attach-error');
    }
  }

  /** What the attachment counted since the last export is read before its fds close; a failed read is logged. */
  #finalRead(a: OwnedAttachment): void {
    try {
      this.#o.finalRead?.(a);
    } catch (err) {
      this.#o.logger.warn(
        { interface: a.ifname, direction: a.direction, err: (err as Error).message },
        'could not read final counts',
      );
    }
  }

  /** False when releasing failed (logged); the attachment is forgotten either way. */
  #release(a: OwnedAttachment, keepPinned: boolean): boolean {
    const attacher = this.#attachers.find((x) => x.direction === a.direction) ?? this.#attachers[0];
    this.#attached.delete(keyOf(a.ifname, a.direction));
    try {
      // Releasing is the same for every attacher (close fds, unpin): any will do for a dropped direction.
      attacher?.release(a, keepPinned);
      return true;
    } catch (err) {
      this.#o.logger.warn({ interface: a.ifname, err: (err as Error).message }, 'could not release attachment');
      return false;
    }
  }

  /** No more rescans or attaches (shutdown begins); what is attached stays until releaseAll. Idempotent. */
  halt(): void {
    this.#stopped = true;
    clearInterval(this.#timer);
  }

  /**
   * Lets go of every interface: detached, or left pinned with keepPinned. Attaches under way finish first (no link is
   * pinned after this returns). Tries all, then rejects naming failures.
   */
  async releaseAll(keepPinned: boolean): Promise<void> {
    this.halt();
    await this.#running;
    const failed = [...this.#attached.values()]
      .filter((a) => !this.#release(a, keepPinned))
      .map((a) => keyOf(a.ifname, a.direction));
    if (failed.length > 0) {
      throw new Error(`could not release ${failed.join(', ')} (logged above); carnx detach removes what is left`);
    }
  }

  attachments(): Iterable<OwnedAttachment> {
    return this.#attached.values();
  }

  /** Interfaces counted in at least one direction. */
  attachedNames(): string[] {
    return [...new Set([...this.#attached.values()].map((a) => a.ifname))];
  }

  /** Why each refused interface is not counted, keyed `name/direction`. */
  refusals(): Record<string, string> {
    return Object.fromEntries(this.#refused);
  }

  /** How many interfaces each hook counts on (carnx.agent.interfaces). */
  attachedByHook(): Partial<Record<Hook, number>> {
    const counts: Partial<Record<Hook, number>> = {};
    for (const a of this.#attached.values()) counts[a.hook] = (counts[a.hook] ?? 0) + 1;
    return counts;
  }

  /** Delta temporality: pins what a successful export carried, so a restart neither loses nor resends counts. */
  saveDeltaExported(ifname: string, direction: Direction, counters: InterfaceCounters, untilUnixNs: bigint): void {
    const attachment = this.#attached.get(keyOf(ifname, direction));
    const attacher = this.#attachers.find((x) => x.direction === direction);
    if (attachment && attacher) attacher.saveDeltaExported(attachment, counters, untilUnixNs);
  }
}
