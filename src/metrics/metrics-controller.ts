// Builds the metrics pipeline for the agent, and rebuilds it on reload keeping delta baselines where it can.
import type { CarnxConfig } from '../config/schema.js';
import type { Logger } from '../log/logger.js';
import type { Agent, MetricsController } from '../agent.js';
import { MetricsPipeline } from './metrics-pipeline.js';

export interface MetricsControllerOptions {
  config: CarnxConfig;
  logger: Logger;
  agent: Agent;
  packageVersion: string;
  /** The pipeline being replaced on reload; its producer carries delta baselines over. */
  previous?: MetricsController;
}

export function createMetricsController(options: MetricsControllerOptions): MetricsController {
  const { config, logger, agent, packageVersion, previous } = options;
  const prior = previous instanceof MetricsPipeline ? previous.producer : undefined;
  // A changed temporality cannot reuse baselines: start a fresh producer.
  const producer = prior?.temporality === config.otlp.temporality ? prior : undefined;
  return new MetricsPipeline({
    config,
    logger: logger.child({ module: 'metrics' }),
    source: () => agent.snapshots(),
    attachedByMode: () => agent.attachedByMode(),
    packageVersion,
    producer,
    onDeltaExported: (name, counters, untilUnixNs) => agent.saveDeltaExported(name, counters, untilUnixNs),
    // A reload must not make a healthy agent unready for an interval (or a failing one ready).
    inheritedExportState: previous?.exportState(),
  });
}
