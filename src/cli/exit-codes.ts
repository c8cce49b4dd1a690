// The documented exit codes, and the one place that maps the errors of every layer onto them.
import { ConfigError } from '../config/config-error.js';
import { HealthListenError } from '../health/health-listen-error.js';
import { BpfObjectUnusable, HostNotReady } from '../host/host-errors.js';
import { BpffsInUse } from '../host/bpffs-lock.js';
import { NoInterfaceSelected } from '../interfaces/interface-selector.js';
import { ExportSettingsError } from '../metrics/export-settings-error.js';

export const ExitCode = {
  ok: 0,
  /** A bug or an error nobody classified: please report it. */
  internal: 1,
  /** Bad configuration: file, env value or flag. Nothing was attached. */
  config: 2,
  /** The host is not ready: missing capabilities, bpffs not mounted, libbpf missing, another carnx on bpffs.path. */
  host: 3,
  /** The BPF object is missing or corrupt, or the verifier rejected it (log tail printed). */
  bpfObject: 4,
  /** No interface matches interfaces.include / interfaces.exclude. */
  noInterface: 5,
  /** A second SIGINT/SIGTERM cut the shutdown short. */
  forced: 130,
} as const;
export type ExitCodeValue = (typeof ExitCode)[keyof typeof ExitCode];

/** What to print and how to exit for an error that ended a command. */
export interface Failure {
  exitCode: ExitCodeValue;
  /** One line per problem; never a stack trace, except for bugs, which say so. */
  lines: string[];
}

/**
 * The next step, for the host and object errors whose own message does not already end with one (matched on the
 * message, first match wins; `$1` is the first group). Config errors name the key, its source and what it accepts.
 */
const NEXT_STEPS: ReadonlyArray<{ when: RegExp; next: string }> = [
  {
    when: /^bpffs\.path (\S+) is not usable: ENOENT$/,
    next: "mount the BPF filesystem there ('mkdir -p $1 && mount -t bpf -o mode=0700 bpf $1'), or set bpffs.path",
  },
  { when: /^bpffs\.path \S+ is not usable: E(ACCES|PERM)$/, next: 'run carnx as root' },
  { when: /^bpffs\.path \S+ is not usable/, next: "set bpffs.path to where bpffs is mounted ('mount -t bpf')" },
  { when: /^pin directory \S+ is not usable/, next: 'remove it, or set bpffs.path to another bpffs' },
  {
    when: /^another carnx \(pid (\d+)\) is running/,
    next: "stop that one first ('kill $1' or 'systemctl stop carnx'), or give this one its own bpffs.path",
  },
  {
    when: /^another carnx .* is running/,
    next: 'stop that one first (it may run in another container), or give this one its own bpffs.path',
  },
  {
    when: /^missing capabilities/,
    next: 'for systemd, containers and Kubernetes see README.md, Troubleshooting: capabilities',
  },
  {
    when: /^xdp\.object \S+ is not readable$/,
    next: "make it readable, or leave xdp.object empty for the one 'npm run build:bpf' builds",
  },
  {
    when: /^could not load xdp\.object (?!.*seccomp)/,
    next:
      "rebuild it with 'npm run build:bpf'; if the kernel's verifier refused it, --log-level debug logs its whole " +
      'log (README.md, Troubleshooting: verifier errors)',
  },
  {
    when: /^no interface matches/,
    next: "name one with --interfaces-include (interfaces.exclude skips veth*, docker*, ... by default: add '--interfaces-exclude=' to count those)",
  },
];

/** `message`, with the next step appended when the message does not say it. */
export function withNextStep(message: string): string {
  const step = NEXT_STEPS.find((s) => s.when.test(message));
  if (!step) return message;
  const [, first = ''] = step.when.exec(message) ?? [];
  return `${message}: ${step.next.replaceAll('$1', first)}`;
}

export function failureOf(err: unknown): Failure {
  if (err instanceof ConfigError) return { exitCode: ExitCode.config, lines: err.problems.map((p) => `config: ${p}`) };
  if (err instanceof ExportSettingsError) return { exitCode: ExitCode.config, lines: [`config: ${err.message}`] };
  if (err instanceof HealthListenError) return { exitCode: ExitCode.config, lines: [`config: ${err.message}`] };
  if (err instanceof HostNotReady || err instanceof BpffsInUse) {
    return { exitCode: ExitCode.host, lines: [withNextStep(err.message)] };
  }
  if (err instanceof BpfObjectUnusable) {
    return {
      exitCode: ExitCode.bpfObject,
      lines: [withNextStep(err.message), ...err.details.map((line) => `  ${line}`)],
    };
  }
  if (err instanceof NoInterfaceSelected) {
    return { exitCode: ExitCode.noInterface, lines: [withNextStep(err.message)] };
  }
  const what = err instanceof Error ? (err.stack ?? err.message) : String(err);
  return { exitCode: ExitCode.internal, lines: [`internal error (please report): ${what}`] };
}
