#!/usr/bin/env node
// carnx's composition root: parse the command line, load the config, run the command, map failures to exit codes.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigError } from './config/config-error.js';
import { loadConfig, packageRoot } from './config/load-config.js';
import { parseCommandLine, takeSwitches, USAGE } from './cli/command-line.js';
import { ExitCode, failureOf } from './cli/exit-codes.js';
import type { RunningAgent } from './cli/run-command.js';
import { stopAgent } from './cli/stop-agent.js';
import type { CarnxConfig } from './config/schema.js';

// Each command's modules are imported when that command runs: the agent's start-up does not wait for the other
// commands' modules, and they do not load the agent's (the OTel SDK and gRPC are most of the loading).

function packageVersion(): string {
  return (JSON.parse(readFileSync(join(packageRoot(), 'package.json'), 'utf8')) as { version: string }).version;
}

async function main(argv: string[]): Promise<number> {
  const { command, flags } = parseCommandLine(argv);
  switch (command) {
    case 'help': {
      const [{ CHECK_HELP }, { STATUS_HELP }, { COUNTERS_HELP }] = await Promise.all([
        import('./cli/check-command.js'),
        import('./cli/status-command.js'),
        import('./cli/counters-command.js'),
      ]);
      const own: Record<string, string> = { check: CHECK_HELP, status: STATUS_HELP, counters: COUNTERS_HELP };
      process.stdout.write(`${own[flags[0] ?? ''] ?? USAGE}\n`);
      return ExitCode.ok;
    }
    case 'counters': {
      const { switches, rest } = takeSwitches(flags, ['--json']);
      if (rest.length > 0) throw new ConfigError([`carnx counters takes only --json, got ${rest.join(' ')}`]);
      const { countersCommand } = await import('./cli/counters-command.js');
      return countersCommand({ json: switches.has('--json') });
    }
    case 'version':
      process.stdout.write(`carnx ${packageVersion()}\n`);
      return ExitCode.ok;
    case 'config-reference': {
      const { renderConfigReference } = await import('./config/config-reference.js');
      process.stdout.write(renderConfigReference());
      return ExitCode.ok;
    }
    case 'snapshot': {
      const { snapshotCommand } = await import('./cli/snapshot-command.js');
      return snapshotCommand(flags, (text) => process.stdout.write(text));
    }
    case 'top': {
      const { topCommand } = await import('./cli/top-command.js');
      return topCommand(flags);
    }
    default: {
      // check and status take switches of their own; every other flag is a config flag.
      const { switches, rest } = takeSwitches(flags, ['--json', '--config-only']);
      if (command === 'check' || command === 'status') {
        const config = loadConfig({ argv: rest, env: process.env });
        const json = switches.has('--json');
        if (command === 'status') return (await import('./cli/status-command.js')).statusCommand(config, { json });
        const { checkCommand } = await import('./cli/commands.js');
        return checkCommand(config, { json, configOnly: switches.has('--config-only') });
      }
      const config = loadConfig({ argv: flags, env: process.env });
      if (command === 'detach') return (await import('./cli/commands.js')).detachCommand(config);
      return runUntilSignalled(flags, config);
    }
  }
}

/**
 * Starts the agent and runs until SIGTERM/SIGINT: last export, detach, exit 0 (1 when something could not be
 * released); a second signal exits at once (130).
 * SIGHUP reloads the config; a bad one is logged and the running config kept. The handlers are installed before
 * start-up, so a signal during start-up stops the agent as soon as it is up instead of killing it half-attached.
 */
async function runUntilSignalled(flags: string[], config: CarnxConfig): Promise<number> {
  // Every other timer is unref'd; this one keeps the process alive until a signal.
  const keepAlive = setInterval(() => undefined, 1 << 30);
  let running: RunningAgent | undefined;
  let requested: NodeJS.Signals | undefined;
  let finish: (code: number) => void = () => undefined;
  const finished = new Promise<number>((resolve) => {
    finish = resolve;
  });
  const stopNow = (agent: RunningAgent, signal: NodeJS.Signals) => {
    agent.logger.info({ signal }, 'stopping');
    void stopAgent(agent).then(finish);
  };
  const onStop = (signal: NodeJS.Signals) => {
    if (requested) {
      running?.logger.warn({ signal }, 'second signal: exiting without clean-up');
      process.exit(ExitCode.forced);
    }
    requested = signal;
    if (running) stopNow(running, signal);
  };
  // stdout is gone for good (the terminal hung up, the pipe's reader exited): stop as on SIGTERM, detaching and
  // unpinning, with nobody left to tell. Deferred: it is reported from inside whatever log call found out.
  const onOutputGone = () =>
    setImmediate(() => {
      if (!requested) onStop('SIGTERM');
    });
  process.on('SIGTERM', onStop);
  process.on('SIGINT', onStop);
  process.on('SIGHUP', () => {
    if (running && !requested) reload(flags, running);
  });
  try {
    const { startAgent } = await import('./cli/run-command.js');
    running = await startAgent(config, packageVersion(), onOutputGone);
    if (requested) stopNow(running, requested);
    return await finished;
  } finally {
    clearInterval(keepAlive);
  }
}

function reload(flags: string[], { agent, logger }: RunningAgent): void {
  let config: CarnxConfig;
  try {
    config = loadConfig({ argv: flags, env: process.env });
  } catch (err) {
    const problems = err instanceof ConfigError ? err.problems : [(err as Error).message];
    logger.error({ problems }, 'reload refused: keeping the running configuration');
    return;
  }
  agent.reload(config).catch((err: unknown) => logger.error({ err: (err as Error).message }, 'reload failed'));
}

/** One clear line per problem on stderr (cli/exit-codes.ts decides which code and lines). */
function report(err: unknown): number {
  const { exitCode, lines } = failureOf(err);
  for (const line of lines) process.stderr.write(`carnx: ${line}\n`);
  return exitCode;
}

// Exit explicitly: an export abandoned at its shutdown bound may still hold the event loop until its gRPC deadline.
main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => process.exit(report(err)),
);
