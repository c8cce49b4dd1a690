// The host facts `carnx check` reports, each as one item: checked, what was found, and what to do when it fails.
import { existsSync } from 'node:fs';
import { release } from 'node:os';
import { PROG_TYPES, probeProgType, type Libbpf } from '../bpf/libbpf.js';
import { HostNotReady } from './host-errors.js';
import { checkBpffs, checkPrivileges, openLibbpf, seccompMode } from './preflight.js';

/** ok; warn: carnx runs, with less; fail: carnx cannot run; skipped: not checked (e.g. needs root). */
export type CheckStatus = 'ok' | 'warn' | 'fail' | 'skipped';

export interface CheckItem {
  id: string;
  status: CheckStatus;
  /** What was found, in one line. */
  detail: string;
  /** What to do next, for warn, fail and skipped. */
  fix?: string;
  /** More lines, e.g. the tail of a verifier log. */
  details?: string[];
}

/** Oldest kernel carnx runs on: BPF links for XDP (bpf_link_create with BPF_XDP) came with Linux 5.9. */
export const MIN_KERNEL: readonly [number, number] = [5, 9];
/** tcx hooks (TC ingress fallback, transmit counting) came with Linux 6.6. */
export const TCX_KERNEL: readonly [number, number] = [6, 6];
const BTF_VMLINUX = '/sys/kernel/btf/vmlinux';
export const NEEDS_ROOT = 'run as root (or with CAP_BPF, CAP_NET_ADMIN and CAP_PERFMON) to check this';

/** "6.18.44-cloud-amd64" -> [6, 18]; undefined when it does not start with two numbers. */
export function kernelVersion(text: string): [number, number] | undefined {
  const m = /^(\d+)\.(\d+)/.exec(text);
  return m ? [Number(m[1]), Number(m[2])] : undefined;
}

const atLeast = (v: readonly [number, number], min: readonly [number, number]) =>
  v[0] > min[0] || (v[0] === min[0] && v[1] >= min[1]);

export function checkKernel(text = release()): CheckItem {
  const v = kernelVersion(text);
  if (v === undefined) return { id: 'kernel', status: 'warn', detail: `Linux ${text}: version not understood` };
  if (!atLeast(v, MIN_KERNEL)) {
    return {
      id: 'kernel',
      status: 'fail',
      detail: `Linux ${text}: carnx needs ${MIN_KERNEL.join('.')} or later (BPF links for XDP)`,
      fix: 'upgrade the kernel',
    };
  }
  if (!atLeast(v, TCX_KERNEL)) {
    return {
      id: 'kernel',
      status: 'warn',
      detail: `Linux ${text}: no tcx hooks before ${TCX_KERNEL.join('.')}: receive only, and auto falls back to generic XDP`,
      fix: 'upgrade to Linux 6.6 or later to count transmit and keep GRO on the fallback',
    };
  }
  return { id: 'kernel', status: 'ok', detail: `Linux ${text}` };
}

/** Whether this process has carnx's capabilities: everything below that needs them is skipped otherwise. */
export function checkCapabilities(): CheckItem {
  try {
    checkPrivileges();
    return { id: 'capabilities', status: 'ok', detail: 'CAP_BPF, CAP_NET_ADMIN and CAP_PERFMON (or CAP_SYS_ADMIN)' };
  } catch (err) {
    if (!(err instanceof HostNotReady)) throw err;
    return {
      id: 'capabilities',
      status: 'skipped',
      detail: `${err.message.replace(/: run carnx.*$/, '')} (uid ${process.geteuid?.() ?? '?'})`,
      fix: 'carnx needs them to run; run `carnx check` as root to check what needs them',
    };
  }
}

export function checkBtf(path = BTF_VMLINUX): CheckItem {
  return existsSync(path)
    ? { id: 'btf', status: 'ok', detail: `${path} present` }
    : {
        id: 'btf',
        status: 'warn',
        detail: `${path} missing: the kernel has no BTF of its own (carnx does not need it; bpftool and tracing tools do)`,
        fix: 'a kernel built with CONFIG_DEBUG_INFO_BTF=y',
      };
}

export function checkBpffsMounted(path: string): CheckItem {
  try {
    checkBpffs(path);
    return { id: 'bpffs', status: 'ok', detail: `${path} is a bpf filesystem` };
  } catch (err) {
    if (!(err instanceof HostNotReady)) throw err;
    return { id: 'bpffs', status: 'fail', detail: err.message, fix: `mount -t bpf -o mode=0700 bpf ${path}` };
  }
}

/** libbpf.so.1 loaded through koffi: the item, and the binding when it loaded. */
export function checkLibbpf(): { item: CheckItem; lib?: Libbpf } {
  try {
    const lib = openLibbpf();
    return { item: { id: 'libbpf', status: 'ok', detail: 'libbpf.so.1 loaded through koffi' }, lib };
  } catch (err) {
    return {
      item: {
        id: 'libbpf',
        status: 'fail',
        detail: (err as Error).message,
        fix: 'install libbpf 1.x (Debian/Ubuntu: apt-get install libbpf1)',
      },
    };
  }
}

/** The bpf(2) syscall loads XDP and TC programs here (libbpf's own probe); needs the capabilities. */
export function checkBpfUsable(lib: Libbpf, privileged: boolean): CheckItem {
  if (!privileged) return { id: 'bpf', status: 'skipped', detail: 'BPF program loading not probed', fix: NEEDS_ROOT };
  const types = [
    ['XDP', PROG_TYPES.xdp],
    ['TC (sched_cls)', PROG_TYPES.schedCls],
  ] as const;
  const missing: string[] = [];
  try {
    for (const [name, type] of types) if (!probeProgType(lib, type, `a ${name} program`)) missing.push(name);
  } catch (err) {
    const seccomp =
      seccompMode() === 2 ? "; a seccomp filter is active: the container runtime's profile must allow bpf(2)" : '';
    return {
      id: 'bpf',
      status: 'fail',
      detail: `the bpf(2) syscall refused a probe: ${(err as Error).message}${seccomp}`,
      fix: 'a kernel with CONFIG_BPF_SYSCALL, and no seccomp/LSM policy denying bpf(2)',
    };
  }
  if (missing.length > 0) {
    return {
      id: 'bpf',
      status: 'fail',
      detail: `this kernel cannot load ${missing.join(' and ')} programs`,
      fix: 'a kernel built with CONFIG_BPF_SYSCALL and CONFIG_NET_CLS_BPF',
    };
  }
  return { id: 'bpf', status: 'ok', detail: 'the kernel loads XDP and TC programs' };
}
