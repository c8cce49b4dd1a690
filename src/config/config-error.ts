// The one error loadConfig throws: every problem found, one line each, naming the key, flag or file.

export class ConfigError extends Error {
  /** One line per problem, e.g. `otlp.timeoutMs: must be an integer between 100 and 600000, got "abc" (from env CARNX_OTLP_TIMEOUT_MS)`. */
  readonly problems: string[];

  constructor(problems: readonly string[]) {
    // The message is the whole report, so printing err.message is enough; secrets never reach it.
    super(
      `invalid configuration (${problems.length} problem${problems.length === 1 ? '' : 's'}):\n${problems.map((p) => `  - ${p}`).join('\n')}`,
    );
    this.name = 'ConfigError';
    this.problems = [...problems];
  }
}
