// Finds carnx's pinned attachments in bpffs, and removes those left by another counter layout.
import { existsSync, readdirSync, rmdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from '../log/logger.js';
import { carnxPinRoot, interfacePins, layoutPinDir, type InterfacePins } from './pin-paths.js';

/** Every interface directory under this layout's pin root (complete or not). */
export function pinnedInterfaces(bpffs: string): InterfacePins[] {
  const dir = layoutPinDir(bpffs);
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { withFileTypes: true })
    .filter((entry) => entry.isDirectory())
    .map((entry) => interfacePins(bpffs, entry.name));
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
