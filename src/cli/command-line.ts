// Splits the command line into a subcommand and the flags that loadConfig() reads.
export const COMMANDS = ['run', 'check', 'detach', 'config-reference', 'version', 'help', 'snapshot', 'top'] as const;
export type Command = (typeof COMMANDS)[number];

export interface CommandLine {
  command: Command;
  flags: string[];
}

export const USAGE = `usage: carnx [command] [--config <file>] [--<key> <value> ...]

commands:
  run               count and export (the default)
  check             validate the configuration and the BPF object, attach nothing
  detach            remove every attachment and pin carnx left (e.g. kept with xdp.keepAttachedOnExit)
  config-reference  print the configuration reference (Markdown)
  version           print carnx's version
  help              print this text
  snapshot          print the counters pinned in bpffs now (--json: the exporter's names); no agent needed
  top               live view of the pinned counters: rates, protocol mix, TCP flags (q quits)

Every config key is also a flag (--otlp-endpoint, --xdp-mode, ...): see \`carnx config-reference\`.`;

/** The first word, if it is a command, picks it; --help and --version work anywhere. */
export function parseCommandLine(argv: string[]): CommandLine {
  // snapshot and top answer --help with their own text, and take flags of their own (--json).
  if (argv[0] === 'snapshot' || argv[0] === 'top') return { command: argv[0], flags: argv.slice(1) };
  if (argv.includes('--help') || argv.includes('-h')) return { command: 'help', flags: [] };
  if (argv.includes('--version')) return { command: 'version', flags: [] };
  const [first, ...rest] = argv;
  if (first !== undefined && (COMMANDS as readonly string[]).includes(first))
    return { command: first as Command, flags: rest };
  return { command: 'run', flags: argv };
}
