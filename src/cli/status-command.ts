// `carnx status`: what carnx has attached on this host (from its pins and the kernel), and whether an agent runs.
import { pinInventory } from '../attach/pin-inventory.js';
import type { CarnxConfig } from '../config/schema.js';
import { agentPresence, type AgentPresence } from '../host/agent-probe.js';
import { HostNotReady } from '../host/host-errors.js';
import { checkBpffs, openLibbpf } from '../host/preflight.js';
import { ExitCode } from './exit-codes.js';
import { readAttachments, type CarnxAttachment } from './status-attachments.js';

export const STATUS_HELP = `usage: carnx status [--config <file>] [--bpffs-path <path>] [--json]

Lists what carnx has attached under bpffs.path: per interface and direction the hook (xdp-native, xdp-generic,
tc-ingress, tc-egress), the link and program ids, since when carnx counts there and when the running program was
loaded; and whether an agent is running on that bpffs path (its pid, from the lock it holds; no lock is taken, so
a running agent is not disturbed). Attachments kept with xdp.keepAttachedOnExit show with no agent running.
Reading the pins needs root (bpffs is mode 0700).

  --json   one JSON document: {bpffsPath, agent: {running, pid, command}, attachments: [...], otherLayoutDirs}

Exit codes: 0 (also when nothing is attached); 3 bpffs.path is not a mounted bpf filesystem, libbpf is missing,
or the pins cannot be read (not root).`;

export interface StatusReport {
  bpffsPath: string;
  agent: AgentPresence;
  attachments: CarnxAttachment[];
  /** Pins of another counter layout: this build cannot read them; the next agent start removes them. */
  otherLayoutDirs: string[];
}

export function statusReport(config: CarnxConfig): StatusReport {
  const bpffs = config.bpffs.path;
  checkBpffs(bpffs);
  const agent = agentPresence(bpffs);
  let otherLayoutDirs: string[];
  try {
    otherLayoutDirs = pinInventory(bpffs).otherLayoutDirs;
  } catch (err) {
    throw new HostNotReady(`${(err as Error).message}: reading carnx's pins needs root`);
  }
  const attachments = readAttachments(openLibbpf(), bpffs);
  return { bpffsPath: bpffs, agent, attachments, otherLayoutDirs };
}

function renderAgent(agent: AgentPresence): string {
  if (!agent.running) return 'agent: not running';
  if (agent.pid === undefined) return 'agent: running (its pid is not visible in this pid namespace)';
  return `agent: running, pid ${agent.pid}${agent.command ? ` (${agent.command})` : ''}`;
}

function renderAttachment(a: CarnxAttachment): string[] {
  const head = `  ${a.ifname}  ${a.direction}  ${a.hook ?? '?'}`;
  const ids =
    a.linkId === undefined ? '' : `  link ${a.linkId}  program ${a.progId}${a.progName ? ` ${a.progName}` : ''}`;
  const lines = [`${head}${ids}`];
  if (a.countingSince) lines.push(`    counting since ${a.countingSince}`);
  if (a.programLoaded) lines.push(`    program loaded ${a.programLoaded}`);
  if (a.problem) lines.push(`    ${a.problem}`);
  return lines;
}

export function renderStatus(report: StatusReport): string {
  const lines = [`carnx status (bpffs.path ${report.bpffsPath})`, renderAgent(report.agent)];
  if (report.attachments.length === 0) lines.push('attached: nothing');
  else lines.push('attached:', ...report.attachments.flatMap(renderAttachment));
  for (const dir of report.otherLayoutDirs)
    lines.push(`pins of another counter layout: ${dir} (removed at the next agent start)`);
  return `${lines.join('\n')}\n`;
}

export function statusCommand(config: CarnxConfig, options: { json: boolean }): number {
  const report = statusReport(config);
  process.stdout.write(options.json ? `${JSON.stringify(report, null, 2)}\n` : renderStatus(report));
  return ExitCode.ok;
}
