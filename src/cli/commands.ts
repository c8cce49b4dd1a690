// The commands behind the CLI: check a configuration, detach everything carnx left pinned (run: run-command.ts).
import { existsSync, rmSync } from 'node:fs';
import type { CarnxConfig } from '../config/schema.js';
import { resolveXdpObject } from '../config/load-config.js';
import { checkBpffs, checkObjectFile, checkPrivileges, openLibbpf } from '../host/preflight.js';
import { carnxPinRoot } from '../attach/pin-paths.js';
import { checkPinTree } from '../attach/pin-tree.js';
import { lockBpffs } from '../host/bpffs-lock.js';
import { ExitCode } from './exit-codes.js';
import { reportCheck, type CheckOptions } from './check-command.js';

/** The config (already loaded) and the object file, then (unless configOnly) the host: check-command.ts. */
export function checkCommand(config: CarnxConfig, options: CheckOptions = { json: false, configOnly: true }): number {
  checkObjectFile(resolveXdpObject(config));
  if (!options.configOnly) return reportCheck(config, options.json);
  process.stdout.write(`carnx: configuration OK (xdp.object ${resolveXdpObject(config)})\n`);
  return ExitCode.ok;
}

/** Removes every carnx pin under bpffs.path; unpinning the links detaches carnx's programs. Refused while an agent runs. */
export function detachCommand(config: CarnxConfig): number {
  checkPrivileges();
  checkBpffs(config.bpffs.path);
  lockBpffs(openLibbpf(), config.bpffs.path); // released when this process exits
  checkPinTree(config.bpffs.path);
  const root = carnxPinRoot(config.bpffs.path);
  const had = existsSync(root);
  rmSync(root, { recursive: true, force: true });
  process.stdout.write(
    had ? `carnx: removed ${root}; carnx's programs are detached\n` : `carnx: nothing pinned under ${root}\n`,
  );
  return ExitCode.ok;
}
