// The kernel hooks carnx's program can run on, and how each is queried, linked and cleared: the one place that knows them.
import type { Libbpf, TcxDirection } from '../bpf/libbpf.js';
import type { NetInterface } from '../interfaces/interface-list.js';

/** XDP attach modes that carnx.xdp.mode reports; offload is refused by xdp.mode and kept only to recognise a hook. */
export type XdpMode = 'native' | 'generic' | 'offload';
/** Every hook carnx can run on: XDP in one of its modes, or a tcx link on TC ingress or egress. */
export type Hook = 'xdp-native' | 'xdp-generic' | 'xdp-offload' | 'tc-ingress' | 'tc-egress';
export const HOOKS: readonly Hook[] = ['xdp-native', 'xdp-generic', 'xdp-offload', 'tc-ingress', 'tc-egress'];
/** Which way the frames a hook sees travel (network.io.direction). */
export type Direction = 'receive' | 'transmit';
/** What xdp.mode accepts for the receive side: one hook, or `auto` (native XDP, else TC ingress: GRO stays on). */
export type ModeSetting = 'auto' | XdpMode | 'tc';

/** A program that holds a hook exclusively and is not carnx's. */
export interface ForeignProgram {
  progId: number;
  /** How the kernel reports its attachment, for the log line. */
  attachedAs: string;
}

/** One place on an interface where carnx's program can run. */
export interface AttachHook {
  readonly hook: Hook;
  readonly direction: Direction;
  /** The program of carnx's BPF object that runs on this hook. */
  readonly program: string;
  /**
   * The program carnx would have to displace to attach here, if any. Hooks that run several programs side by side
   * (tcx) never have one: carnx joins the list and leaves every other program where it is.
   */
  foreignProgram(iface: NetInterface): ForeignProgram | undefined;
  /** Removes that program: only ever called when the config says so (xdp.replaceForeign). */
  removeForeign(iface: NetInterface, foreign: ForeignProgram): void;
  /** An unpinned link running progFd on this hook (made on a worker thread); rejects with the kernel's refusal. */
  createLink(progFd: number, iface: NetInterface): Promise<number>;
  /** Whether the program progId runs on this hook of iface now (tells an adopted link's hook). */
  runs(iface: NetInterface, progId: number): boolean;
}

/** Program names in carnx's object: the same counting code behind two program types. */
export const XDP_PROGRAM = 'carnx_count';
export const TC_PROGRAM = 'carnx_count_tc';

const XDP_FLAGS: Record<XdpMode, number> = { generic: 2, native: 4, offload: 8 }; // XDP_FLAGS_{SKB,DRV,HW}_MODE

/** XDP in one mode. All XDP modes share one slot per device: a program in any mode is foreign to all of them. */
class XdpHook implements AttachHook {
  readonly hook: Hook;
  readonly direction = 'receive';
  readonly program = XDP_PROGRAM;

  constructor(
    private readonly lib: Libbpf,
    readonly mode: XdpMode,
  ) {
    this.hook = `xdp-${mode}`;
  }

  foreignProgram(iface: NetInterface): ForeignProgram | undefined {
    const current = this.lib.xdpQuery(iface.ifindex, iface.name);
    if (current.attachMode === 'none') return undefined;
    const progId = current.progId || current.drvProgId || current.skbProgId || current.hwProgId;
    return { progId, attachedAs: current.attachMode };
  }

  /** Not atomic: a netlink-attached program cannot be swapped for a link. */
  removeForeign(iface: NetInterface, foreign: ForeignProgram): void {
    const flags = foreign.attachedAs in XDP_FLAGS ? XDP_FLAGS[foreign.attachedAs as XdpMode] : 0;
    this.lib.xdpDetach(iface.ifindex, flags, iface.name);
  }

  createLink(progFd: number, iface: NetInterface): Promise<number> {
    const hook = { kind: 'xdp', flags: XDP_FLAGS[this.mode] } as const;
    return this.lib.linkCreateAsync(progFd, iface.ifindex, hook, `${iface.name} in ${this.mode} mode`);
  }

  runs(iface: NetInterface, progId: number): boolean {
    const q = this.lib.xdpQuery(iface.ifindex, iface.name);
    const id = { native: q.drvProgId, generic: q.skbProgId, offload: q.hwProgId }[this.mode];
    return id === progId;
  }
}

/**
 * A tcx link (kernel >= 6.6): no qdisc, several programs per hook, each returning TCX_NEXT to hand the packet on.
 * Ingress goes first in the list, so carnx counts what arrived before any other program can drop it; egress goes
 * last, so it counts what is handed to the device after every other program has had its say.
 */
class TcxHook implements AttachHook {
  readonly hook: Hook;
  readonly direction: Direction;
  readonly program = TC_PROGRAM;

  constructor(
    private readonly lib: Libbpf,
    private readonly tcx: TcxDirection,
  ) {
    this.hook = `tc-${tcx}`;
    this.direction = tcx === 'ingress' ? 'receive' : 'transmit';
  }

  foreignProgram(): ForeignProgram | undefined {
    return undefined;
  }

  removeForeign(): void {
    throw new Error('tcx hooks are shared: carnx never removes another program from them');
  }

  createLink(progFd: number, iface: NetInterface): Promise<number> {
    const hook = { kind: 'tcx', direction: this.tcx, place: this.tcx === 'ingress' ? 'before' : 'after' } as const;
    return this.lib.linkCreateAsync(progFd, iface.ifindex, hook, `${iface.name} on TC ${this.tcx}`);
  }

  runs(iface: NetInterface, progId: number): boolean {
    return this.lib.tcxQuery(iface.ifindex, this.tcx, iface.name).includes(progId);
  }
}

/** Whether this kernel has tcx hooks (6.6+): a query for them is refused with EINVAL where it does not. */
export function tcxSupported(lib: Libbpf): boolean {
  try {
    lib.tcxQuery(1, 'egress', 'the loopback device');
    return true;
  } catch {
    return false;
  }
}

/**
 * The receive hooks to try, in order. `auto`: native XDP, else TC ingress; generic XDP (which turns GRO off) only on
 * a kernel without tcx, where it is the one fallback left.
 */
export function receivePlan(lib: Libbpf, setting: ModeSetting, tcx: boolean): AttachHook[] {
  if (setting === 'auto')
    return [new XdpHook(lib, 'native'), tcx ? new TcxHook(lib, 'ingress') : new XdpHook(lib, 'generic')];
  if (setting === 'tc') return [new TcxHook(lib, 'ingress')];
  return [new XdpHook(lib, setting)];
}

export function transmitPlan(lib: Libbpf): AttachHook[] {
  return [new TcxHook(lib, 'egress')];
}

/** Every hook carnx may have used for a direction, whatever the setting now: adoption must find links made before. */
export function knownHooks(lib: Libbpf, direction: Direction, tcx: boolean): AttachHook[] {
  if (direction === 'transmit') return tcx ? transmitPlan(lib) : [];
  const xdp = (['native', 'generic', 'offload'] as const).map((m) => new XdpHook(lib, m));
  return tcx ? [...xdp, new TcxHook(lib, 'ingress')] : xdp;
}

export function directionOf(hook: Hook): Direction {
  return hook === 'tc-egress' ? 'transmit' : 'receive';
}

/** XDP's mode for carnx.xdp.mode, or undefined for a TC hook. */
export function xdpModeOf(hook: Hook): XdpMode | undefined {
  return hook.startsWith('xdp-') ? (hook.slice(4) as XdpMode) : undefined;
}
