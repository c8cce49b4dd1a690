// The pin tree carnx trusts (real directories owned by root, no symlinks) and the one-agent-per-bpffs lock's pieces.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { chownSync, closeSync, mkdirSync, mkdtempSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { checkPinDir, checkPinTree } from '../../src/attach/pin-tree.js';
import { BpffsInUse, lockBpffs, lockHolder } from '../../src/host/bpffs-lock.js';
import { HostNotReady } from '../../src/host/host-errors.js';
import { ExitCode, failureOf } from '../../src/cli/exit-codes.js';

function scratch(): string {
  return mkdtempSync(join(tmpdir(), 'carnx-trust-'));
}

function refusal(fn: () => void): HostNotReady {
  try {
    fn();
  } catch (err) {
    assert.instance(err, HostNotReady);
    return err as HostNotReady;
  }
  throw new Error('expected a HostNotReady');
}

test('a missing tree is fine; real directories are trusted', () => {
  const root = scratch();
  try {
    checkPinTree(root);
    mkdirSync(join(root, 'carnx/v1/eth0'), { recursive: true });
    checkPinTree(root);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('a symlinked carnx/, v1/ or interface directory, or a file in their place, is refused by name', () => {
  const root = scratch();
  try {
    mkdirSync(join(root, 'elsewhere/v1'), { recursive: true });
    symlinkSync(join(root, 'elsewhere'), join(root, 'carnx'));
    assert.match(refusal(() => checkPinTree(root)).message, `pin directory ${join(root, 'carnx')} is a symlink`);
    rmSync(join(root, 'carnx'));
    mkdirSync(join(root, 'carnx'));
    symlinkSync(join(root, 'elsewhere/v1'), join(root, 'carnx/v1'));
    assert.match(refusal(() => checkPinTree(root)).message, 'carnx/v1 is a symlink');
    rmSync(join(root, 'carnx/v1'));
    mkdirSync(join(root, 'carnx/v1'));
    symlinkSync(join(root, 'elsewhere'), join(root, 'carnx/v1/eth0'));
    assert.match(refusal(() => checkPinTree(root)).message, 'carnx/v1/eth0 is a symlink');
    rmSync(join(root, 'carnx/v1/eth0'));
    writeFileSync(join(root, 'carnx/v1/eth1'), '');
    assert.match(refusal(() => checkPinTree(root)).message, 'carnx/v1/eth1 is not a directory');
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('a directory owned by another user is refused (needs root to chown)', () => {
  if (process.geteuid?.() !== 0) return;
  const root = scratch();
  try {
    mkdirSync(join(root, 'carnx'));
    chownSync(join(root, 'carnx'), 65534, 65534);
    assert.match(refusal(() => checkPinDir(join(root, 'carnx'))).message, 'is owned by uid 65534, not root');
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

/** The /proc/locks line of an flock on path held by pid. */
function locksLine(path: string, pid: number): string {
  const { dev, ino } = statSync(path, { bigint: true });
  const major = ((dev >> 8n) & 0xfffn).toString(16).padStart(2, '0');
  const minor = (dev & 0xffn).toString(16).padStart(2, '0');
  return `1: FLOCK  ADVISORY  WRITE ${pid} ${major}:${minor}:${ino} 0 EOF`;
}

test("the lock holder's pid is read from /proc/locks by device and inode", () => {
  const root = scratch();
  try {
    const other = `2: POSIX  ADVISORY  WRITE 77 00:01:1 0 EOF\n3: FLOCK  ADVISORY  WRITE 78 ff:ff:${statSync(root).ino} 0 EOF`;
    assert.is(lockHolder(root, `${other}\n${locksLine(root, 4242)}\n`), 4242);
    assert.is(lockHolder(root, other), undefined, 'no line for this directory');
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('a second carnx gets BpffsInUse (exit 3, one line naming the pid); other flock errors go up', () => {
  const root = scratch();
  try {
    closeSync(lockBpffs({ tryLockExclusive: () => true }, root));
    try {
      lockBpffs({ tryLockExclusive: () => false }, root);
      assert.unreachable('a held lock must refuse');
    } catch (err) {
      assert.instance(err, BpffsInUse);
    }
    assert.equal(failureOf(new BpffsInUse('/sys/fs/bpf', 1234)), {
      exitCode: ExitCode.host,
      lines: [
        "another carnx (pid 1234) is running on bpffs.path /sys/fs/bpf: stop that one first ('kill 1234' or " +
          "'systemctl stop carnx'), or give this one its own bpffs.path",
      ],
    });
    assert.match(new BpffsInUse('/x', undefined).message, 'its pid is not visible here');
    const broken = () => {
      throw new Error('flock failed for bpffs.path: EBADF');
    };
    assert.throws(() => lockBpffs({ tryLockExclusive: broken }, root), /EBADF/);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test.run();
