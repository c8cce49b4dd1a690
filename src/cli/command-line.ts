// Splits the command line into a subcommand and the flags that loadConfig() reads.
export const COMMANDS = [
  'run',
  'check',
  'status',
  'counters',
  'detach',
  'config-reference',
  'version',
  'help',
  'snapshot',
  'top',
] as const;
export type Command = (typeof COMMANDS)[number];

export interface CommandLine {
  command: Command;
  flags: string[];
}

export const USAGE = `usage: carnx [command] [--config <file>] [--<key> <value> ...]

commands:
  run               count and export (the default)
  check             validate the configuration and the BPF object, and check this host (kernel, BPF, bpffs,
                    libbpf, tcx, the selected interfaces); attaches nothing
  status            what carnx has attached on this host, and whether an agent is running
  counters          every metric carnx exports: unit, attributes, meaning, the seed counter it replaces
  snapshot          print the counters pinned in bpffs now (--json: the exporter's names); no agent needed
  top               live view of the pinned counters: rates, protocol mix, TCP flags (q quits)
  detach            remove every attachment and pin carnx left (e.g. kept with xdp.keepAttachedOnExit)
  config-reference  print the configuration reference (Markdown)
  version           print carnx's version
  help              print this text

Every config key is also a flag (--otlp-endpoint, --xdp-mode, ...): see \`carnx config-reference\`.
\`carnx <command> --help\` says more about one command.`;

/** The first word, if it is a command, picks it; --help and --version work anywhere. */
export function parseCommandLine(argv: string[]): CommandLine {
  // snapshot and top answer --help with their own text, and take flags of their own (--json).
  if (argv[0] === 'snapshot' || argv[0] === 'top') return { command: argv[0], flags: argv.slice(1) };
  if (argv.includes('--help') || argv.includes('-h')) {
    // `carnx status --help`: the command's own help, when it has one.
    const named = argv[0] !== undefined && (COMMANDS as readonly string[]).includes(argv[0]);
    return { command: 'help', flags: named && argv[0] !== 'help' ? [argv[0] as string] : [] };
  }
  if (argv.includes('--version')) return { command: 'version', flags: [] };
  const [first, ...rest] = argv;
  if (first !== undefined && (COMMANDS as readonly string[]).includes(first))
    return { command: first as Command, flags: rest };
  return { command: 'run', flags: argv };
}

/** Takes a command's own switches (e.g. --json) out of its flags; the rest are config flags for loadConfig(). */
export function takeSwitches<S extends string>(
  flags: readonly string[],
  names: readonly S[],
): { switches: Set<S>; rest: string[] } {
  const switches = new Set<S>(names.filter((n) => flags.includes(n)));
  return { switches, rest: flags.filter((f) => !(names as readonly string[]).includes(f)) };
}
