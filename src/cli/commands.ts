// The commands behind the CLI: check a configuration, start the agent, detach everything carnx left pinned.
import { existsSync, rmSync } from 'node:fs';
import type { CarnxConfig } from '../config/schema.js';
import { describeConfig, resolveXdpObject } from '../config/load-config.js';
import { Agent } from '../agent.js';
import { chooseLogFormat, colorsWanted, createLogger, stdoutDestination, type Logger } from '../log/logger.js';
import { TrafficSummary, wantSummary } from '../metrics/console-summary.js';
import { checkBpffs, checkObjectFile, checkPrivileges, openLibbpf } from '../host/preflight.js';
import { carnxPinRoot } from '../attach/pin-paths.js';
import { checkPinTree } from '../attach/pin-tree.js';
import { lockBpffs } from '../host/bpffs-lock.js';
import { createMetricsController } from '../metrics/metrics-controller.js';
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

export interface RunningAgent {
  agent: Agent;
  logger: Logger;
}

/** Preflight, then start; if start fails half-way, whatever was attached is released before the error goes up. */
export async function startAgent(
  config: CarnxConfig,
  packageVersion: string,
  onOutputGone: () => void = () => undefined,
): Promise<RunningAgent> {
  const format = chooseLogFormat(config.log.format, process.stdout.isTTY === true);
  const logger = createLogger(config.log.level, stdoutDestination(onOutputGone), {
    format,
    colors: format === 'pretty' && colorsWanted(process.stdout.isTTY === true, process.env),
  });
  const summary = wantSummary(config.log.summary, format) ? new TrafficSummary(logger) : undefined;
  checkPrivileges();
  checkBpffs(config.bpffs.path);
  checkObjectFile(resolveXdpObject(config));
  const lib = openLibbpf();
  // Held for the life of the process: a second agent on this bpffs path exits here, having touched nothing.
  lockBpffs(lib, config.bpffs.path);
  checkPinTree(config.bpffs.path);
  const libbpfLog = logger.child({ module: 'libbpf' });
  // libbpf's own lines (a verifier log runs to hundreds) stay at debug: failures surface as BpfErrors with their tail.
  lib.setLogSink((level, message) => libbpfLog.debug({ libbpfLevel: level }, message));
  logger.info({ version: packageVersion, config: describeConfig(config) }, 'starting carnx');
  const agent = new Agent(config, {
    lib,
    logger,
    onCollected: summary && ((snapshots) => summary.observe(snapshots)),
    createMetrics: (counting, current, previous) =>
      createMetricsController({ config: current, logger, counting, packageVersion, previous }),
  });
  try {
    await agent.start();
  } catch (err) {
    // The start-up error is the one to report; a failed release is logged (and named) by the agent.
    await agent.stop().catch((stopErr: unknown) => logger.error({ err: (stopErr as Error).message }, 'stop failed'));
    throw err;
  }
  if (summary) {
    logger.info(
      { intervalMs: config.export.intervalMs },
      `the counts follow every ${config.export.intervalMs / 1000} s, whether or not the export succeeds (log.summary: off hides them)`,
    );
  }
  return { agent, logger };
}
