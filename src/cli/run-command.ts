// The agent's command: preflight, then start; the export side's modules load while the host is checked and the object verified.
import type { CarnxConfig } from '../config/schema.js';
import { describeConfig, resolveXdpObject } from '../config/load-config.js';
import { Agent } from '../agent.js';
import { chooseLogFormat, colorsWanted, createLogger, stdoutDestination, type Logger } from '../log/logger.js';
import { TrafficSummary, wantSummary } from '../metrics/console-summary.js';
import { checkBpffs, checkObjectFile, checkPrivileges, openLibbpf } from '../host/preflight.js';
import { checkPinTree } from '../attach/pin-tree.js';
import { lockBpffs } from '../host/bpffs-lock.js';

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
  // The OTel SDK, its exporter and gRPC are most of the agent's modules (about 250 ms of CPU). Their import starts
  // here and runs while this thread waits for the object's load on a worker thread; the agent awaits it just before
  // it builds the export side, which is still before anything is attached. Nothing is evaluated before the checks
  // below have passed (the files are read first, asynchronously), so a failed check exits without waiting for it.
  const metricsModule = import('../metrics/metrics-controller.js');
  metricsModule.catch(() => undefined); // a failed import is reported where it is awaited
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
    createMetrics: async (counting, current, previous) =>
      (await metricsModule).createMetricsController({ config: current, logger, counting, packageVersion, previous }),
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
