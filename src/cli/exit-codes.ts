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

export function failureOf(err: unknown): Failure {
  if (err instanceof ConfigError) return { exitCode: ExitCode.config, lines: err.problems.map((p) => `config: ${p}`) };
  if (err instanceof ExportSettingsError) return { exitCode: ExitCode.config, lines: [`config: ${err.message}`] };
  if (err instanceof HealthListenError) return { exitCode: ExitCode.config, lines: [`config: ${err.message}`] };
  if (err instanceof HostNotReady || err instanceof BpffsInUse) {
    return { exitCode: ExitCode.host, lines: [err.message] };
  }
  if (err instanceof BpfObjectUnusable) {
    return { exitCode: ExitCode.bpfObject, lines: [err.message, ...err.details.map((line) => `  ${line}`)] };
  }
  if (err instanceof NoInterfaceSelected) return { exitCode: ExitCode.noInterface, lines: [err.message] };
  const what = err instanceof Error ? (err.stack ?? err.message) : String(err);
  return { exitCode: ExitCode.internal, lines: [`internal error (please report): ${what}`] };
}
