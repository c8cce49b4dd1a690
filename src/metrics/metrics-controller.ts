// Builds the metrics pipeline for the agent, and rebuilds it on reload keeping delta baselines where it can.
import type { CarnxConfig } from '../config/schema.js';
import type { Logger } from '../log/logger.js';
import type { SnapshotSource } from '../reader/interface-snapshot.js';
import type { CounterProducerOptions } from './counter-producer.js';
import type { AttachedByHook } from './health-instruments.js';
import { MetricsPipeline } from './metrics-pipeline.js';
import type { ExportState } from './otlp-exporter.js';

/** What the agent needs from the metrics side. */
export interface MetricsController {
  start(): void;
  /** One last collection and export, bounded by timeoutMs, then shutdown. */
  stop(timeoutMs: number): Promise<void>;
  recordAttachFailure(reason: string): void;
  /** pending before the first export's outcome, failing from a failed export until the next success, else exporting. */
  exportState(): ExportState;
}

/** The narrow view of the counting side that metrics reads through: no agent, no attachments. */
export interface CountingSide {
  snapshots: SnapshotSource;
  attachedByHook: AttachedByHook;
  /** The interfaces counted on now, whose kernel statistics are exported too. */
  countedInterfaces: () => string[];
  /** Delta: keeps what each successful export carried (pinned, so a restart neither loses nor resends). */
  saveDeltaExported: NonNullable<CounterProducerOptions['onDeltaExported']>;
}

export interface MetricsControllerOptions {
  config: CarnxConfig;
  logger: Logger;
  counting: CountingSide;
  packageVersion: string;
  /** The pipeline being replaced on reload; its producer carries delta baselines over. */
  previous?: MetricsController;
}

/** Throws an ExportSettingsError when the export settings are unusable (TLS files, headers). */
export function createMetricsController(options: MetricsControllerOptions): MetricsController {
  const { config, logger, counting, packageVersion, previous } = options;
  const prior = previous instanceof MetricsPipeline ? previous.producer : undefined;
  // A changed temporality cannot reuse baselines: start a fresh producer.
  const producer = prior?.temporality === config.otlp.temporality ? prior : undefined;
  return new MetricsPipeline({
    config,
    logger: logger.child({ module: 'metrics' }),
    source: counting.snapshots,
    attachedByHook: counting.attachedByHook,
    countedInterfaces: counting.countedInterfaces,
    packageVersion,
    producer,
    onDeltaExported: counting.saveDeltaExported,
    // A reload must not make a healthy agent unready for an interval (or a failing one ready).
    inheritedExportState: previous?.exportState(),
  });
}
