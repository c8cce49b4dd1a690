// Adapts the metrics pipeline to what the agent needs (temporary until the pipeline lands).
import type { CarnxConfig } from '../config/schema.js';
import type { Logger } from '../log/logger.js';
import type { Agent, MetricsController } from '../agent.js';

export function createMetricsController(options: { config: CarnxConfig; logger: Logger; agent: Agent; packageVersion: string }): MetricsController {
  void options;
  return { start() {}, async stop() {}, recordAttachFailure() {}, exporting: () => true };
}
