// Keeps carnx attached to exactly the selected interfaces: attach the new, release the gone, rescan on a timer.
import type { InterfaceCounters } from '../bpf/counter-layout.js';
import type { NetInterface } from '../interfaces/interface-list.js';
import type { Logger } from '../log/logger.js';
import { AttachRefused } from './attach-refused.js';
import type { AttachMode } from './attach-hooks.js';
import { removePins, type OwnedAttachment, type PinnedAttacher } from './pinned-attacher.js';

/** What the loop needs of an attacher (PinnedAttacher in the agent, a fake in unit tests). */
export type Attacher = Pick<PinnedAttacher, 'ensure' | 'release' | 'saveDeltaExported'>;
import { pinnedInterfaces } from './pin-sweeper.js';

export interface ReconcilerOptions {
  bpffs: string;
  logger: Logger;
  /** The interfaces that should be counted now; throws when they cannot be listed. */
  selected: () => NetInterface[];
  /** Told once per refusal state change (the health metric counts them). */
  onAttachFailure: (reason: string) => void;
}

export class Reconciler {
  readonly #o: ReconcilerOptions;
  #attacher: Attacher;
  readonly #attached = new Map<string, OwnedAttachment>();
  /** Why an interface is not attached, so each state change is logged once, not at every rescan. */
  readonly #refused = new Map<string, string>();
  #timer: NodeJS.Timeout | undefined;
  #stopped = false;

  constructor(attacher: Attacher, options: ReconcilerOptions) {
    this.#attacher = attacher;
    this.#o = options;
  }

  /** A reload's new attacher (mode, object): it applies to interfaces attached from now on. */
  useAttacher(attacher: Attacher): void {
    this.#attacher = attacher;
  }

  /** Reconciles every intervalMs; the timer never keeps the process alive. */
  rescanEvery(intervalMs: number): void {
    clearInterval(this.#timer);
    this.#timer = setInterval(() => this.reconcile(), intervalMs);
    this.#timer.unref();
  }

  /** Attach to selected interfaces that lack carnx; release those gone, re-created or no longer selected. */
  reconcile(): void {
    if (this.#stopped) return;
    let selected: NetInterface[];
    try {
      selected = this.#o.selected();
    } catch (err) {
      this.#o.logger.warn({ err: (err as Error).message }, 'could not list interfaces');
      return;
    }
    const byName = new Map(selected.map((i) => [i.name, i]));
    for (const [name, a] of this.#attached) {
      const now = byName.get(name);
      if (now?.ifindex === a.ifindex) continue;
      this.#release(a, false);
      this.#o.logger.info(
        { interface: name },
        now ? 'interface re-created: attaching anew' : 'interface gone or deselected: detached',
      );
    }
    // Pins of interfaces that are gone or deselected (left by a crash or an older config) go too.
    for (const pins of pinnedInterfaces(this.#o.bpffs)) {
      const name = pins.dir.slice(pins.dir.lastIndexOf('/') + 1);
      if (!byName.has(name) && !this.#attached.has(name)) removePins(pins);
    }
    for (const name of this.#refused.keys()) if (!byName.has(name)) this.#refused.delete(name);
    for (const iface of selected) if (!this.#attached.has(iface.name)) this.#attach(iface);
  }

  #attach(iface: NetInterface): void {
    try {
      this.#attached.set(iface.name, this.#attacher.ensure(iface));
      if (this.#refused.delete(iface.name)) this.#o.logger.info({ interface: iface.name }, 'interface now attached');
    } catch (err) {
      const refusal = err instanceof AttachRefused ? err : undefined;
      const message = (err as Error).message;
      if (this.#refused.get(iface.name) === message) return;
      this.#refused.set(iface.name, message);
      this.#o.logger.warn(
        {
          interface: iface.name,
          reason: refusal?.reason ?? 'attach-error',
          foreignProgId: refusal?.foreignProgId,
          err: message,
        },
        'not counting on interface',
      );
      this.#o.onAttachFailure(refusal?.reason ?? 'attach-error');
    }
  }

  #release(a: OwnedAttachment, keepPinned: boolean): void {
    try {
      this.#attacher.release(a, keepPinned);
    } catch (err) {
      this.#o.logger.warn({ interface: a.ifname, err: (err as Error).message }, 'could not release attachment');
    }
    this.#attached.delete(a.ifname);
  }

  /** No more rescans or attaches (shutdown begins); what is attached stays until releaseAll. Idempotent. */
  halt(): void {
    this.#stopped = true;
    clearInterval(this.#timer);
  }

  /** Lets go of every interface: detached, or left pinned with keepPinned. */
  releaseAll(keepPinned: boolean): void {
    this.halt();
    for (const a of [...this.#attached.values()]) this.#release(a, keepPinned);
  }

  attachments(): Iterable<OwnedAttachment> {
    return this.#attached.values();
  }

  attachedNames(): string[] {
    return [...this.#attached.keys()];
  }

  refusals(): Record<string, string> {
    return Object.fromEntries(this.#refused);
  }

  attachedByMode(): Record<AttachMode, number> {
    const counts: Record<AttachMode, number> = { native: 0, generic: 0, offload: 0 };
    for (const a of this.#attached.values()) counts[a.mode]++;
    return counts;
  }

  /** Delta temporality: pins what a successful export carried, so a restart neither loses nor resends counts. */
  saveDeltaExported(ifname: string, counters: InterfaceCounters, untilUnixNs: bigint): void {
    const attachment = this.#attached.get(ifname);
    if (attachment) this.#attacher.saveDeltaExported(attachment, counters, untilUnixNs);
  }
}
