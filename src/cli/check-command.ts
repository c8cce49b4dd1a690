// `carnx check`: the config and the object (no privileges), then whether this host can run carnx, as text or JSON.
import { resolveXdpObject } from '../config/load-config.js';
import type { CarnxConfig } from '../config/schema.js';
import type { CheckItem } from '../host/host-checks.js';
import { checkHost, type HostReport } from './check-host.js';
import type { InterfaceCheck } from './check-interfaces.js';

export const CHECK_HELP = `usage: carnx check [--config <file>] [--<key> <value> ...] [--json] [--config-only]

Validates the configuration and the BPF object, then checks this host as \`carnx run\` would meet it, attaching
nothing and taking no lock: kernel version, capabilities, libbpf (through koffi), the bpf(2) syscall, BTF, bpffs
mounted at bpffs.path and its carnx/ tree trusted, tcx hooks, whether the object loads, whether an agent runs; and
for each interface interfaces.include / interfaces.exclude select: the programs on its XDP and tcx hooks now
(carnx's or another tool's) and the hook carnx would count on, and why.

Without root only what needs no privileges is checked (the rest is marked "skipped: needs root"); the configuration
part never needs them.

  --json          one JSON document: {config, privileged, checks, interfaces, exitCode, failed}
  --config-only   the configuration and the object file only (the check before carnx 0.2)

Exit codes: 0 carnx can run here; 2 bad configuration (one line per problem); 3 the host is not ready; 4 the BPF
object is missing or refused; 5 no interface selected. The line that failed says what to do next.`;

export interface CheckOptions {
  json: boolean;
  configOnly: boolean;
}

const MARK: Record<CheckItem['status'], string> = { ok: 'ok', warn: 'warn', fail: 'FAIL', skipped: 'skipped' };

function renderItem(c: CheckItem): string[] {
  const lines = [`  ${MARK[c.status].padEnd(8)}${c.id.padEnd(14)}${c.detail}`];
  if (c.fix && c.status !== 'ok') lines.push(`  ${''.padEnd(22)}-> ${c.fix}`);
  for (const d of c.details ?? []) lines.push(`  ${''.padEnd(22)}| ${d}`);
  return lines;
}

const OWNERS: Record<InterfaceCheck['attached'][number]['owner'], string> = {
  carnx: "carnx's",
  'other-carnx': 'carnx, another bpffs.path',
  foreign: 'not carnx',
  unknown: 'owner unknown without root',
};

function renderInterface(i: InterfaceCheck): string[] {
  const lines = [`  ${i.name} (ifindex ${i.ifindex})`];
  if (i.counted) {
    const now = i.attached.map(
      (p) => `${p.hook} program ${p.progId}${p.name ? ` ${p.name}` : ''} (${OWNERS[p.owner]})`,
    );
    lines.push(`    attached now: ${now.length > 0 ? now.join('; ') : 'nothing'}`);
    for (const p of i.plan) lines.push(`    ${p.direction}: ${p.hook ? `${p.hook}: ` : ''}${p.reason}`);
  }
  for (const n of i.notes) lines.push(`    ${n}`);
  return lines;
}

function renderText(config: CarnxConfig, report: HostReport): string {
  const { include, exclude } = config.interfaces;
  const lines = [
    `carnx: configuration OK (xdp.object ${resolveXdpObject(config)})`,
    `host${report.privileged ? '' : ' (not root: what needs privileges is skipped)'}:`,
    ...report.checks.flatMap(renderItem),
    `interfaces (include ${include.join(', ') || '-'}; exclude ${exclude.join(', ') || '-'}):`,
    ...(report.interfaces.length > 0 ? report.interfaces.flatMap(renderInterface) : ['  none']),
  ];
  if (report.failed) {
    lines.push(`carnx cannot run here: ${report.failed.detail}`);
    if (report.failed.fix) lines.push(`next: ${report.failed.fix}`);
  } else {
    const skipped = report.checks.filter((c) => c.status === 'skipped').length;
    lines.push(skipped > 0 ? `nothing wrong found; ${skipped} checks need root` : 'carnx can run here');
  }
  return `${lines.join('\n')}\n`;
}

/** The host part of `carnx check` (the config is already valid and the object file present): prints, returns the code. */
export function reportCheck(config: CarnxConfig, json: boolean): number {
  const report = checkHost(config);
  if (json) {
    const doc = { config: { ok: true, xdpObject: resolveXdpObject(config), bpffsPath: config.bpffs.path }, ...report };
    process.stdout.write(`${JSON.stringify(doc, null, 2)}\n`);
  } else {
    process.stdout.write(renderText(config, report));
  }
  // The reason also goes to stderr: scripts that only keep stderr still learn why.
  if (report.failed)
    process.stderr.write(`carnx: ${report.failed.detail}${report.failed.fix ? ` (${report.failed.fix})` : ''}\n`);
  return report.exitCode;
}
