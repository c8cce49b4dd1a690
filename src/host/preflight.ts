// Checks that this host can run carnx before anything is attached: privileges, bpffs, libbpf, the BPF object.
import { accessSync, constants, existsSync, readFileSync, statfsSync } from 'node:fs';
import { Libbpf } from '../bpf/libbpf.js';
import { BpfObjectUnusable, HostNotReady } from './host-errors.js';

const BPF_FS_MAGIC = 0xcafe4a11;
/**
 * Capabilities carnx uses: loading programs and maps, attaching XDP (a networking program type), and CAP_PERFMON
 * because without it the verifier refuses the packet-pointer arithmetic of the parser ("pointer -= pointer prohibited").
 * test/deploy/capabilities.test.ts proves each one is needed.
 */
const REQUIRED_CAPS: Array<{ name: string; bit: number; or?: { name: string; bit: number } }> = [
  { name: 'CAP_BPF', bit: 39, or: { name: 'CAP_SYS_ADMIN', bit: 21 } },
  { name: 'CAP_NET_ADMIN', bit: 12 },
  { name: 'CAP_PERFMON', bit: 38, or: { name: 'CAP_SYS_ADMIN', bit: 21 } },
];

/** The value of one `Name:` line of /proc/self/status, or undefined when the kernel does not report it. */
function statusField(name: string): string | undefined {
  const line = readFileSync('/proc/self/status', 'utf8')
    .split('\n')
    .find((l) => l.startsWith(`${name}:`));
  return line?.split(/\s+/)[1];
}

function effectiveCaps(): bigint {
  const hex = statusField('CapEff');
  return hex ? BigInt(`0x${hex}`) : 0n;
}

/** This process's seccomp mode: 0 none, 1 strict, 2 a filter (what container runtimes install). */
export function seccompMode(): number {
  return Number(statusField('Seccomp') ?? 0);
}

export function checkPrivileges(): void {
  const caps = effectiveCaps();
  const has = (bit: number) => (caps & (1n << BigInt(bit))) !== 0n;
  const missing = REQUIRED_CAPS.filter((c) => !has(c.bit) && !(c.or && has(c.or.bit))).map((c) => c.name);
  if (missing.length > 0) {
    throw new HostNotReady(`missing capabilities ${missing.join(', ')}: run carnx as root or grant them`);
  }
}

export function checkBpffs(path: string): void {
  let type: number;
  try {
    type = statfsSync(path).type;
  } catch (err) {
    throw new HostNotReady(
      `bpffs.path ${path} is not usable: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
    );
  }
  if (type !== BPF_FS_MAGIC) {
    throw new HostNotReady(
      `bpffs.path ${path} is not a bpf filesystem: mount it with 'mount -t bpf -o mode=0700 bpf ${path}'`,
    );
  }
}

export function checkObjectFile(path: string): void {
  if (!existsSync(path)) throw new BpfObjectUnusable(`xdp.object ${path} does not exist (run 'npm run build:bpf')`);
  try {
    accessSync(path, constants.R_OK);
  } catch {
    throw new BpfObjectUnusable(`xdp.object ${path} is not readable`);
  }
}

export function openLibbpf(): Libbpf {
  try {
    return new Libbpf();
  } catch (err) {
    throw new HostNotReady((err as Error).message);
  }
}
