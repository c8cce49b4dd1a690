// One agent per bpffs path: an flock(2) on the bpffs.path directory, held for the life of the process.
import { closeSync, constants, openSync, readFileSync, statSync } from 'node:fs';
import type { Libbpf } from '../bpf/libbpf.js';

/** Another carnx (an agent, or a `carnx detach` under way) holds bpffs.path: this one touches nothing. */
export class BpffsInUse extends Error {
  readonly holderPid: number | undefined;

  constructor(bpffs: string, holderPid: number | undefined) {
    const who =
      holderPid === undefined ? 'another carnx (its pid is not visible here)' : `another carnx (pid ${holderPid})`;
    super(`${who} is running on bpffs.path ${bpffs}`);
    this.name = 'BpffsInUse';
    this.holderPid = holderPid;
  }
}

/**
 * Takes the lock or throws BpffsInUse. The lock is on the bpffs.path directory itself (bpffs holds no regular files,
 * and that directory is the one carnx never creates or removes), so agents in other containers sharing the host's
 * bpffs see it too. The fd stays open until the process exits; the kernel releases the lock then, however it ends.
 */
export function lockBpffs(lib: Pick<Libbpf, 'tryLockExclusive'>, bpffs: string): number {
  const fd = openSync(bpffs, constants.O_RDONLY | constants.O_DIRECTORY);
  try {
    if (lib.tryLockExclusive(fd, `bpffs.path ${bpffs}`)) return fd;
  } catch (err) {
    closeSync(fd);
    throw err;
  }
  closeSync(fd);
  throw new BpffsInUse(bpffs, lockHolder(bpffs));
}

/** The pid /proc/locks names for the flock on path (in this pid namespace), if any. */
export function lockHolder(path: string, locks = readFileSync('/proc/locks', 'utf8')): number | undefined {
  const { dev, ino } = statSync(path, { bigint: true });
  // glibc's dev_t encoding; /proc/locks prints major:minor in hex.
  const major = ((dev >> 8n) & 0xfffn) | ((dev >> 32n) & ~0xfffn);
  const minor = (dev & 0xffn) | ((dev >> 12n) & ~0xffn);
  const id = `${major.toString(16).padStart(2, '0')}:${minor.toString(16).padStart(2, '0')}:${ino}`;
  for (const line of locks.split('\n')) {
    const fields = line.trim().split(/\s+/);
    // "1: FLOCK  ADVISORY  WRITE 1234 00:28:452030 0 EOF"; a blocked waiter's line starts with "1: ->".
    if (fields[1] === 'FLOCK' && fields[5] === id) {
      const pid = Number(fields[4]);
      return pid > 0 ? pid : undefined;
    }
  }
  return undefined;
}
