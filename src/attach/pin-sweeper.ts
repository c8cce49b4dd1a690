// Finds carnx's pinned attachments in bpffs, and removes those left by another counter layout.
import { existsSync, readdirSync, rmdirSync, rmSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from '../log/logger.js';
import { carnxPinRoot, ifnameOfPinDir, interfacePins, layoutPinDir, type InterfacePins } from './pin-paths.js';

/** The interfaces with a directory under this layout's pin root (complete or not). */
export function pinnedInterfaceNames(bpffs: string): string[] {
  const dir = layoutPinDir(bpffs);
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { withFileTypes: true })
    .filter((entry) => entry.isDirectory())
    .map((entry) => ifnameOfPinDir(entry.name));
}

/** Unpins one direction's objects (link last-pinned, first-removed), and the directory once it is empty. */
export function removePins(pins: InterfacePins): void {
  for (const path of [pins.link, pins.prog, pins.progNext, pins.counters, pins.meta]) {
    // bpffs answers unlink of a missing name with EPERM, not ENOENT: look first.
    if (existsSync(path)) unlinkSync(path);
  }
  try {
    rmdirSync(pins.dir);
  } catch (err) {
    if (!['ENOENT', 'ENOTEMPTY'].includes((err as NodeJS.ErrnoException).code ?? '')) throw err;
  }
}

/** Both directions of an interface: what a crash or an older config left for an interface no longer counted. */
export function removeInterfacePins(bpffs: string, ifname: string): void {
  removePins(interfacePins(bpffs, ifname, 'transmit'));
  removePins(interfacePins(bpffs, ifname, 'receive'));
}

/**
 * Pins of another layout version hold maps this agent cannot read; removing them detaches those programs,
 * and counting restarts under this layout (an upgrade that changes the layout cannot keep the counts).
 */
export function sweepOtherLayouts(bpffs: string, logger: Logger): void {
  const root = carnxPinRoot(bpffs);
  if (!existsSync(root)) return;
  const current = layoutPinDir(bpffs);
  for (const entry of readdirSync(root, { withFileTypes: true })) {
    const path = join(root, entry.name);
    if (path === current) continue;
    rmSync(path, { recursive: true, force: true });
    logger.warn({ path }, 'removed pins of another counter layout; counting restarts on those interfaces');
  }
}

/** After a clean exit with nothing kept, leave no empty carnx directories in bpffs either. */
export function removeEmptyPinDirs(bpffs: string): void {
  for (const dir of [layoutPinDir(bpffs), carnxPinRoot(bpffs)]) {
    try {
      rmdirSync(dir);
    } catch {
      // not empty (another carnx's pins, or kept ones) or already gone
    }
  }
}
