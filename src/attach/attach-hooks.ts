// The kernel hooks carnx's program can run on, and how each is queried, linked and cleared: the one place that knows them.
import type { Libbpf } from '../bpf/libbpf.js';
import type { NetInterface } from '../interfaces/interface-list.js';

/** How a hook is reported in logs and in carnx.agent.interfaces (today the XDP attach modes). */
export type AttachMode = 'native' | 'generic' | 'offload';
/** What xdp.mode accepts: one mode, or `auto` for the plan below. */
export type ModeSetting = 'auto' | AttachMode;

/** A program that holds a hook and is not carnx's. */
export interface ForeignProgram {
  progId: number;
  /** How the kernel reports its attachment, for the log line. */
  attachedAs: string;
}

/** One place on an interface where carnx's program can run. A new hook (TC) is one more implementation of this. */
export interface AttachHook {
  readonly mode: AttachMode;
  /** The program of carnx's BPF object that runs on this hook. */
  readonly program: string;
  /** The program already on this hook that carnx would have to displace, if any. */
  foreignProgram(iface: NetInterface): ForeignProgram | undefined;
  /** Removes that program: only ever called when the config says so (xdp.replaceForeign). */
  removeForeign(iface: NetInterface, foreign: ForeignProgram): void;
  /** An unpinned link running progFd on this hook; throws the kernel's refusal as a BpfError. */
  createLink(progFd: number, iface: NetInterface): number;
  /** Whether the program progId runs on this hook of iface now (tells an adopted link's mode). */
  runs(iface: NetInterface, progId: number): boolean;
}

export const XDP_PROGRAM = 'carnx_count';

const XDP_FLAGS: Record<AttachMode, number> = { generic: 2, native: 4, offload: 8 }; // XDP_FLAGS_{SKB,DRV,HW}_MODE

/** XDP in one mode. All XDP modes share one slot per device: a program in any mode is foreign to all of them. */
class XdpHook implements AttachHook {
  readonly program = XDP_PROGRAM;

  constructor(
    private readonly lib: Libbpf,
    readonly mode: AttachMode,
  ) {}

  foreignProgram(iface: NetInterface): ForeignProgram | undefined {
    const current = this.lib.xdpQuery(iface.ifindex, iface.name);
    if (current.attachMode === 'none') return undefined;
    const progId = current.progId || current.drvProgId || current.skbProgId || current.hwProgId;
    return { progId, attachedAs: current.attachMode };
  }

  /** Not atomic: a netlink-attached program cannot be swapped for a link. */
  removeForeign(iface: NetInterface, foreign: ForeignProgram): void {
    const flags = foreign.attachedAs in XDP_FLAGS ? XDP_FLAGS[foreign.attachedAs as AttachMode] : 0;
    this.lib.xdpDetach(iface.ifindex, flags, iface.name);
  }

  createLink(progFd: number, iface: NetInterface): number {
    return this.lib.linkCreateXdp(progFd, iface.ifindex, XDP_FLAGS[this.mode], `${iface.name} in ${this.mode} mode`);
  }

  runs(iface: NetInterface, progId: number): boolean {
    const q = this.lib.xdpQuery(iface.ifindex, iface.name);
    const id = { native: q.drvProgId, generic: q.skbProgId, offload: q.hwProgId }[this.mode];
    return id === progId;
  }
}

/** The hooks to try, in order, for a mode setting: `auto` prefers native XDP and falls back to generic. */
export function hookPlan(lib: Libbpf, setting: ModeSetting): AttachHook[] {
  const modes: AttachMode[] = setting === 'auto' ? ['native', 'generic'] : [setting];
  return modes.map((mode) => new XdpHook(lib, mode));
}

/** Every hook carnx may have used, whatever the current setting: adoption must find a link made under another one. */
export function allHooks(lib: Libbpf): AttachHook[] {
  return (['native', 'generic', 'offload'] as const).map((mode) => new XdpHook(lib, mode));
}
