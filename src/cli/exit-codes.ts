// The documented exit codes, and the error type that carries one up to main.
export const ExitCode = {
  ok: 0,
  /** A bug or an error nobody classified: please report it. */
  internal: 1,
  /** Bad configuration: file, env value or flag. Nothing was attached. */
  config: 2,
  /** The host is not ready: not root / missing capabilities, bpffs not mounted, libbpf missing. */
  host: 3,
  /** The BPF object is missing or corrupt, or the verifier rejected it (log tail printed). */
  bpfObject: 4,
  /** No interface matches interfaces.include / interfaces.exclude. */
  noInterface: 5,
  /** A second SIGINT/SIGTERM cut the shutdown short. */
  forced: 130,
} as const;
export type ExitCodeValue = (typeof ExitCode)[keyof typeof ExitCode];

/** An error that ends the process with a known code and a one-line message (plus detail lines, e.g. a verifier log). */
export class FatalError extends Error {
  readonly exitCode: ExitCodeValue;
  readonly details: string[];

  constructor(exitCode: ExitCodeValue, message: string, details: string[] = []) {
    super(message);
    this.name = 'FatalError';
    this.exitCode = exitCode;
    this.details = details;
  }
}
