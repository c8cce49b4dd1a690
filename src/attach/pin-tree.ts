// Refuses a pin tree someone else could have planted: carnx/, v<layout>/ and interface directories must be real
// directories owned by root (or by the user carnx runs as), never symlinks.
import { lstatSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { HostNotReady } from '../host/host-errors.js';
import { carnxPinRoot, layoutPinDir } from './pin-paths.js';

/** Throws HostNotReady when path exists and is not a directory carnx can trust; a missing path is fine. */
export function checkPinDir(path: string): void {
  let st: ReturnType<typeof lstatSync>;
  try {
    st = lstatSync(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw new HostNotReady(`pin directory ${path} is not usable: ${(err as NodeJS.ErrnoException).code}`);
  }
  if (st.isSymbolicLink())
    throw new HostNotReady(`pin directory ${path} is a symlink: remove it (carnx will not follow it)`);
  if (!st.isDirectory()) throw new HostNotReady(`pin directory ${path} is not a directory: remove it`);
  if (st.uid !== 0 && st.uid !== process.geteuid?.()) {
    throw new HostNotReady(`pin directory ${path} is owned by uid ${st.uid}, not root: remove it`);
  }
}

/** The whole tree of this layout, before anything in it is used: carnx/, v<layout>/ and each interface's entry. */
export function checkPinTree(bpffs: string): void {
  const root = carnxPinRoot(bpffs);
  const layout = layoutPinDir(bpffs);
  checkPinDir(root);
  checkPinDir(layout);
  let names: string[];
  try {
    names = readdirSync(layout);
  } catch {
    return; // no tree yet
  }
  for (const name of names) checkPinDir(join(layout, name));
}
