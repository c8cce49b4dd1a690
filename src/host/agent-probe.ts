// Whether a carnx agent runs on a bpffs path, seen from /proc/locks: no lock is taken, so a running or starting
// agent is never disturbed.
import { readFileSync, statSync } from 'node:fs';

export interface AgentPresence {
  running: boolean;
  /** The holder's pid as this pid namespace sees it; undefined when it lives in a namespace not visible here. */
  pid?: number;
  /** Its command line, when /proc shows it. */
  command?: string;
}

/** /proc/locks' "major:minor:inode" of a file, as the kernel prints it (hex device numbers). */
export function lockId(path: string): string {
  const { dev, ino } = statSync(path, { bigint: true });
  // glibc's dev_t encoding.
  const major = ((dev >> 8n) & 0xfffn) | ((dev >> 32n) & ~0xfffn);
  const minor = (dev & 0xffn) | ((dev >> 12n) & ~0xffn);
  return `${major.toString(16).padStart(2, '0')}:${minor.toString(16).padStart(2, '0')}:${ino}`;
}

/**
 * The agent (or a `carnx detach`) holds an exclusive flock on bpffs.path for its whole life (bpffs-lock.ts). Taking
 * that lock to test it, even for a moment, could make an agent starting at that moment exit: read /proc/locks instead.
 */
export function agentPresence(bpffs: string, locks = readFileSync('/proc/locks', 'utf8')): AgentPresence {
  const id = lockId(bpffs);
  for (const line of locks.split('\n')) {
    // "1: FLOCK  ADVISORY  WRITE 1234 00:28:452030 0 EOF"; a blocked waiter's line reads "1: -> FLOCK ...".
    const fields = line.trim().split(/\s+/);
    if (fields[1] !== 'FLOCK' || fields[3] !== 'WRITE' || fields[5] !== id) continue;
    const pid = Number(fields[4]);
    if (!(pid > 0)) return { running: true };
    return { running: true, pid, ...commandOf(pid) };
  }
  return { running: false };
}

function commandOf(pid: number): { command?: string } {
  try {
    const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8')
      .split('\0')
      .filter((a) => a !== '');
    return argv.length > 0 ? { command: argv.join(' ') } : {};
  } catch {
    return {};
  }
}
