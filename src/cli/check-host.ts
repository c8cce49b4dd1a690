// `carnx check` beyond the config: every host fact carnx depends on, as items, with the exit code of the first failure.
import { release } from 'node:os';
import { TC_PROGRAM, XDP_PROGRAM, tcxSupported } from '../attach/attach-hooks.js';
import { checkPinTree } from '../attach/pin-tree.js';
import { BpfError } from '../bpf/bpf-error.js';
import type { Libbpf } from '../bpf/libbpf.js';
import { resolveXdpObject } from '../config/load-config.js';
import type { CarnxConfig } from '../config/schema.js';
import { agentPresence } from '../host/agent-probe.js';
import { HostNotReady } from '../host/host-errors.js';
import {
  NEEDS_ROOT,
  checkBpfUsable,
  checkBpffsMounted,
  checkBtf,
  checkCapabilities,
  checkKernel,
  checkLibbpf,
  kernelVersion,
  TCX_KERNEL,
  type CheckItem,
} from '../host/host-checks.js';
import { checkInterface, selectedInterfaces, type InterfaceCheck } from './check-interfaces.js';
import { ExitCode, type ExitCodeValue } from './exit-codes.js';
import { readAttachments, type CarnxAttachment } from './status-attachments.js';

export interface HostReport {
  privileged: boolean;
  checks: CheckItem[];
  interfaces: InterfaceCheck[];
  /** 0 when carnx can run here; else the code `carnx run` would exit with, and the item that says why. */
  exitCode: ExitCodeValue;
  failed?: CheckItem;
}

export function pinTreeItem(bpffs: string, privileged: boolean): CheckItem {
  try {
    checkPinTree(bpffs);
    return { id: 'pin-tree', status: 'ok', detail: `${bpffs}/carnx is absent or owned by root, no symlinks` };
  } catch (err) {
    if (!(err instanceof HostNotReady)) throw err;
    if (!privileged && /EACCES/.test(err.message)) {
      return { id: 'pin-tree', status: 'skipped', detail: `${bpffs} is not readable here`, fix: NEEDS_ROOT };
    }
    return { id: 'pin-tree', status: 'fail', detail: err.message, fix: `carnx detach, or remove ${bpffs}/carnx` };
  }
}

export function tcxItem(lib: Libbpf | undefined, privileged: boolean): { item: CheckItem; tcx: boolean } {
  if (!lib || !privileged) {
    const v = kernelVersion(release());
    const likely = v !== undefined && (v[0] > TCX_KERNEL[0] || (v[0] === TCX_KERNEL[0] && v[1] >= TCX_KERNEL[1]));
    return {
      item: {
        id: 'tcx',
        status: 'skipped',
        detail: `not queried (the kernel version says ${likely ? 'yes' : 'no'})`,
        fix: NEEDS_ROOT,
      },
      tcx: likely,
    };
  }
  return tcxSupported(lib)
    ? { item: { id: 'tcx', status: 'ok', detail: 'tcx hooks: TC ingress fallback and transmit counting' }, tcx: true }
    : {
        item: {
          id: 'tcx',
          status: 'warn',
          detail: 'no tcx hooks: receive only; xdp.mode auto falls back to generic XDP, which turns GRO off',
          fix: 'Linux 6.6 or later',
        },
        tcx: false,
      };
}

export function objectItem(config: CarnxConfig, lib: Libbpf | undefined, privileged: boolean, tcx: boolean): CheckItem {
  const path = resolveXdpObject(config);
  if (!lib || !privileged) {
    return { id: 'object', status: 'skipped', detail: `${path} exists; loading it not tried`, fix: NEEDS_ROOT };
  }
  const programs = tcx ? [XDP_PROGRAM, TC_PROGRAM] : [XDP_PROGRAM];
  for (const program of programs) {
    let object: ReturnType<Libbpf['openObject']> | undefined;
    try {
      // Inside the try: a missing or corrupt file is this check's failure, not an exception out of the report.
      object = lib.openObject(path);
      object.loadOnly([program]);
      object.load();
    } catch (err) {
      const tail = err instanceof BpfError ? err.logTail.filter((l) => l.trim() !== '').slice(-15) : [];
      return {
        id: 'object',
        status: 'fail',
        detail: `could not load ${program} from ${path}: ${(err as Error).message}`,
        fix: "rebuild it ('npm run build:bpf') for this kernel, or report the verifier log",
        details: tail,
      };
    } finally {
      object?.close();
    }
  }
  return { id: 'object', status: 'ok', detail: `${path}: the verifier accepts ${programs.join(' and ')}` };
}

export function agentItem(bpffs: string): CheckItem {
  let seen: ReturnType<typeof agentPresence>;
  try {
    seen = agentPresence(bpffs);
  } catch (err) {
    return { id: 'agent', status: 'skipped', detail: `could not look: ${(err as Error).message}` };
  }
  if (!seen.running) return { id: 'agent', status: 'ok', detail: `no carnx agent runs on ${bpffs}` };
  const who =
    seen.pid === undefined
      ? 'its pid is not visible here'
      : `pid ${seen.pid}${seen.command ? `: ${seen.command}` : ''}`;
  return {
    id: 'agent',
    status: 'warn',
    detail: `a carnx agent runs on ${bpffs} (${who}): a second \`carnx run\` there would exit 3`,
    fix: '`carnx status` shows what it has attached',
  };
}

/** Which item decides the exit code: the order `carnx run` meets them in. */
const EXIT_OF: Record<string, ExitCodeValue> = { object: ExitCode.bpfObject, interfaces: ExitCode.noInterface };

/** Checks the host for config; nothing is attached, loaded programs are closed again, no lock is taken. */
export function checkHost(config: CarnxConfig): HostReport {
  const bpffs = config.bpffs.path;
  const capabilities = checkCapabilities();
  const privileged = capabilities.status === 'ok';
  const libbpf = checkLibbpf();
  const { lib } = libbpf;
  const tcx = tcxItem(lib, privileged);
  const checks: CheckItem[] = [
    checkKernel(),
    capabilities,
    libbpf.item,
    lib ? checkBpfUsable(lib, privileged) : { id: 'bpf', status: 'skipped', detail: 'needs libbpf' },
    checkBtf(),
    checkBpffsMounted(bpffs),
  ];
  const bpffsOk = checks.at(-1)?.status === 'ok';
  checks.push(bpffsOk ? pinTreeItem(bpffs, privileged) : { id: 'pin-tree', status: 'skipped', detail: 'needs bpffs' });
  checks.push(tcx.item, objectItem(config, lib, privileged, tcx.tcx));
  checks.push(bpffsOk ? agentItem(bpffs) : { id: 'agent', status: 'skipped', detail: 'needs bpffs' });

  let ours: CarnxAttachment[] = [];
  if (lib && privileged && bpffsOk) {
    try {
      ours = readAttachments(lib, bpffs);
    } catch (err) {
      checks.push({ id: 'pins', status: 'warn', detail: `carnx's pins not read: ${(err as Error).message}` });
    }
  }
  const ctx = { config, privileged, tcx: tcx.tcx, ours, ...(lib ? { lib } : {}) };
  const interfaces = selectedInterfaces(config).map((i) => checkInterface(ctx, i));
  const counted = interfaces.filter((i) => i.counted).map((i) => i.name);
  checks.push(
    counted.length > 0
      ? { id: 'interfaces', status: 'ok', detail: `selected: ${counted.join(', ')}` }
      : {
          id: 'interfaces',
          status: 'fail',
          detail: 'no interface with an Ethernet header matches interfaces.include minus interfaces.exclude',
          fix: 'change interfaces.include / interfaces.exclude (`ip link` lists the interfaces)',
        },
  );
  const failed = checks.find((c) => c.status === 'fail');
  const exitCode = failed === undefined ? ExitCode.ok : (EXIT_OF[failed.id] ?? ExitCode.host);
  return { privileged, checks, interfaces, exitCode, ...(failed ? { failed } : {}) };
}
