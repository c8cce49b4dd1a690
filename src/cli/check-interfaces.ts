// `carnx check` per selected interface: what runs on its hooks now, and which hook carnx would use, and why.
import { receivePlan, transmitPlan, type Direction, type Hook } from '../attach/attach-hooks.js';
import { progDetailsById, type Libbpf } from '../bpf/libbpf.js';
import type { CarnxConfig } from '../config/schema.js';
import { listInterfaces, type ListedInterface } from '../interfaces/interface-list.js';
import { interfaceFilter } from '../interfaces/interface-selector.js';
import { ARPHRD_ETHER, linkTypeName } from '../interfaces/link-type.js';
import type { CarnxAttachment } from './status-attachments.js';

/** A program on one of an interface's hooks. */
export interface HookProgram {
  hook: Hook;
  progId: number;
  /** Its name (needs CAP_SYS_ADMIN to look up by id); undefined when it could not be read. */
  name?: string;
  /** carnx's pinned attachment under this bpffs.path, another carnx's (its program name), or another tool's. */
  owner: 'carnx' | 'other-carnx' | 'foreign' | 'unknown';
}

/** What carnx would do for one direction of one interface. */
export interface DirectionPlan {
  direction: Direction;
  /** The hook carnx would count on; undefined when it would not count this direction here. */
  hook?: Hook;
  /** Why: the setting, what holds a hook, the fallback. */
  reason: string;
}

export interface InterfaceCheck {
  name: string;
  ifindex: number;
  /** false: the link type has no Ethernet header, carnx skips it whatever the selection says. */
  counted: boolean;
  attached: HookProgram[];
  plan: DirectionPlan[];
  /** What could not be read (e.g. tcx hooks without CAP_NET_ADMIN). */
  notes: string[];
}

export interface InterfaceContext {
  config: CarnxConfig;
  /** undefined when libbpf could not be loaded: only names and link types then. */
  lib?: Libbpf;
  privileged: boolean;
  tcx: boolean;
  /** carnx's attachments under bpffs.path (status-attachments.ts). */
  ours: CarnxAttachment[];
}

const CARNX_PROGRAMS = ['carnx_count', 'carnx_count_tc'];
const XDP_HOOKS: Array<[Hook, 'drvProgId' | 'skbProgId' | 'hwProgId']> = [
  ['xdp-native', 'drvProgId'],
  ['xdp-generic', 'skbProgId'],
  ['xdp-offload', 'hwProgId'],
];

/** The interfaces interfaces.include minus interfaces.exclude selects now (any link type). */
export function selectedInterfaces(config: CarnxConfig): ListedInterface[] {
  const wanted = interfaceFilter(config.interfaces.include, config.interfaces.exclude);
  return listInterfaces().filter((i) => wanted(i.name));
}

function program(ctx: InterfaceContext, hook: Hook, progId: number): HookProgram {
  let name: string | undefined;
  if (ctx.lib && ctx.privileged) {
    try {
      name = progDetailsById(ctx.lib, progId).name;
    } catch {
      // unloaded meanwhile: the id is what there is
    }
  }
  // Without privileges neither carnx's pins nor program names can be read: whose it is stays open.
  if (!ctx.privileged) return { hook, progId, owner: 'unknown' };
  const ours = ctx.ours.some((a) => a.progId === progId);
  const owner = ours ? 'carnx' : name !== undefined && CARNX_PROGRAMS.includes(name) ? 'other-carnx' : 'foreign';
  return { hook, progId, ...(name === undefined ? {} : { name }), owner };
}

function attachedNow(ctx: InterfaceContext, iface: ListedInterface, notes: string[]): HookProgram[] {
  const { lib } = ctx;
  if (!lib) return [];
  const found: HookProgram[] = [];
  try {
    const q = lib.xdpQuery(iface.ifindex, iface.name);
    for (const [hook, key] of XDP_HOOKS) if (q[key] !== 0) found.push(program(ctx, hook, q[key]));
  } catch (err) {
    notes.push(`XDP not queried: ${(err as Error).message}`);
  }
  if (!ctx.tcx) return found;
  if (!ctx.privileged) {
    notes.push('tcx hooks not queried: that needs CAP_NET_ADMIN');
    return found;
  }
  for (const direction of ['ingress', 'egress'] as const) {
    try {
      for (const id of lib.tcxQuery(iface.ifindex, direction, iface.name))
        found.push(program(ctx, `tc-${direction}`, id));
    } catch (err) {
      notes.push(`tc-${direction} not queried: ${(err as Error).message}`);
    }
  }
  return found;
}

const OWNER_NOTE: Record<HookProgram['owner'], string> = {
  carnx: '',
  'other-carnx': ' (carnx under another bpffs.path)',
  foreign: ' that carnx does not own',
  unknown: ' (whose is not known without root)',
};
const describe = (p: HookProgram) => `program id ${p.progId}${p.name ? ` (${p.name})` : ''}${OWNER_NOTE[p.owner]}`;

function receivePlanOf(ctx: InterfaceContext, iface: ListedInterface, attached: HookProgram[]): DirectionPlan {
  const { config, lib } = ctx;
  const adopted = ctx.ours.find(
    (a) => a.ifname === iface.name && a.direction === 'receive' && a.ifindex === iface.ifindex,
  );
  if (adopted?.hook)
    return {
      direction: 'receive',
      hook: adopted.hook,
      reason: `carnx counts there now (link id ${adopted.linkId}); an agent adopts it`,
    };
  if (!lib) return { direction: 'receive', reason: 'unknown: libbpf is not loadable' };
  const mode = config.xdp.mode;
  const skipped: string[] = [];
  const plan = receivePlan(lib, mode, ctx.tcx);
  for (const [i, hook] of plan.entries()) {
    const holder = hook.hook.startsWith('xdp-')
      ? attached.find((p) => p.hook.startsWith('xdp-') && p.owner !== 'carnx')
      : undefined;
    if (holder && !config.xdp.replaceForeign) {
      skipped.push(`${hook.hook} is held by ${describe(holder)}`);
      continue;
    }
    const next = plan[i + 1];
    const why = [
      `xdp.mode ${mode}`,
      ...skipped,
      holder ? `would remove ${describe(holder)} first (xdp.replaceForeign)` : '',
      next && hook.hook === 'xdp-native' ? `${next.hook} if the driver refuses native XDP` : '',
    ].filter((s) => s !== '');
    return { direction: 'receive', hook: hook.hook, reason: why.join('; ') };
  }
  return {
    direction: 'receive',
    reason: `not counted: ${skipped.join('; ')} (xdp.mode ${mode}${mode !== 'auto' && ctx.tcx ? '; auto would count beside it at TC ingress' : ''})`,
  };
}

function transmitPlanOf(ctx: InterfaceContext, iface: ListedInterface): DirectionPlan {
  const adopted = ctx.ours.find(
    (a) => a.ifname === iface.name && a.direction === 'transmit' && a.ifindex === iface.ifindex,
  );
  if (adopted?.hook)
    return {
      direction: 'transmit',
      hook: adopted.hook,
      reason: `carnx counts there now (link id ${adopted.linkId}); an agent adopts it`,
    };
  if (!ctx.tcx) return { direction: 'transmit', reason: 'not counted: this kernel has no tcx hooks (Linux 6.6+)' };
  const [hook] = ctx.lib ? transmitPlan(ctx.lib) : [];
  return {
    direction: 'transmit',
    hook: hook?.hook ?? 'tc-egress',
    reason: 'transmit is counted at TC egress, last in the hook list',
  };
}

export function checkInterface(ctx: InterfaceContext, iface: ListedInterface): InterfaceCheck {
  const notes: string[] = [];
  if (iface.linkType !== ARPHRD_ETHER) {
    return {
      name: iface.name,
      ifindex: iface.ifindex,
      counted: false,
      attached: [],
      plan: [],
      notes: [`skipped: link type ${iface.linkType} (${linkTypeName(iface.linkType)}) has no Ethernet header`],
    };
  }
  const attached = attachedNow(ctx, iface, notes);
  const plan = ctx.config.interfaces.directions.map((d) =>
    d === 'receive' ? receivePlanOf(ctx, iface, attached) : transmitPlanOf(ctx, iface),
  );
  return { name: iface.name, ifindex: iface.ifindex, counted: true, attached, plan, notes };
}
