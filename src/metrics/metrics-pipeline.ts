// Wires the metrics side: counter producer + health and kernel-stats instruments -> periodic reader -> OTLP exporter.
import {
  AggregationTemporality,
  InstrumentType,
  MeterProvider,
  PeriodicExportingMetricReader,
  type MetricProducer,
  type PushMetricExporter,
} from '@opentelemetry/sdk-metrics';
import type { Resource } from '@opentelemetry/resources';
import type { CarnxConfig } from '../config/schema.js';
import type { Logger } from '../log/logger.js';
import type { SnapshotSource } from '../reader/interface-snapshot.js';
import { readKernelStats } from '../reader/kernel-stats.js';
import { CounterProducer, type CounterProducerOptions } from './counter-producer.js';
import { HealthInstruments, type AttachedByHook } from './health-instruments.js';
import { ReportingExporter, createOtlpExporter, headerSecrets, type ExportState } from './otlp-exporter.js';
import { OtelDiagBridge } from './otel-diag.js';
import { buildResource } from './resource.js';
import { SystemNetworkInstruments } from './system-network-instruments.js';

export interface MetricsPipelineOptions {
  config: CarnxConfig;
  logger: Logger;
  source: SnapshotSource;
  packageVersion: string;
  attachedByHook: AttachedByHook;
  /** The interfaces carnx counts on: their kernel statistics are exported as system.network.* (not without it). */
  countedInterfaces?: () => string[];
  /** Where those statistics are read (tests); default /proc/net/dev. */
  procNetDev?: string;
  /** Any exporter instead of OTLP/gRPC (tests). It is wrapped like the OTLP one, so delta commits work the same. */
  exporter?: PushMetricExporter;
  /**
   * The producer of a previous pipeline. The export interval cannot change on a running reader, so a reload stops
   * the pipeline and creates a new one; passing the old producer keeps delta baselines (cumulative needs nothing:
   * the totals live in the kernel and the start time in the pins).
   */
  producer?: CounterProducer;
  /** Delta: keeps what each successful export carried (see CounterProducerOptions.onDeltaExported). */
  onDeltaExported?: CounterProducerOptions['onDeltaExported'];
  /** The replaced pipeline's export state, reported until this one's first export has an outcome (reload). */
  inheritedExportState?: ExportState;
  /**
   * Where K8S_NODE_NAME, SSL_CERT_FILE and the OTEL header variables (for the log and redaction) are read (default
   * process.env); OTEL_RESOURCE_ATTRIBUTES always comes from process.env.
   */
  env?: NodeJS.ProcessEnv;
}

/** Structurally the agent's MetricsController: start, stop(timeoutMs), recordAttachFailure, exportState. */
export class MetricsPipeline {
  readonly producer: CounterProducer;
  readonly health: HealthInstruments;
  private readonly systemNetwork: SystemNetworkInstruments | undefined;
  private readonly options: MetricsPipelineOptions;
  private readonly exporter: ReportingExporter;
  private readonly resource: Resource;
  private provider: MeterProvider | undefined;
  private stopped: Promise<void> | undefined;

  /** Throws (a config-level Error naming the key) when TLS files cannot be read or headers are unusable. */
  constructor(options: MetricsPipelineOptions) {
    const { config, logger } = options;
    this.options = options;
    if (options.producer !== undefined && options.producer.temporality !== config.otlp.temporality) {
      throw new Error(
        `otlp.temporality changed to ${config.otlp.temporality}: the pipeline needs a new counter producer`,
      );
    }
    this.producer =
      options.producer ??
      new CounterProducer({
        source: options.source,
        logger,
        packageVersion: options.packageVersion,
        temporality: config.otlp.temporality,
        onDeltaExported: options.onDeltaExported,
      });
    this.health = new HealthInstruments(options.attachedByHook, logger);
    // process.env too: the gRPC exporter reads its header variables there, whatever options.env says.
    const secrets = headerSecrets(config, process.env, ...(options.env ? [options.env] : []));
    // The SDK's warnings (and the collector's partial successes, which only reach diag) go to the log.
    const diag = new OtelDiagBridge(logger, secrets);
    diag.install();
    this.exporter = new ReportingExporter(
      options.exporter ?? createOtlpExporter(config, logger, options.env ?? process.env),
      {
        logger,
        producer: this.producer,
        onFailure: () => this.health.recordExportFailure(),
        secrets,
        takePartialSuccess: () => diag.takePartialSuccess(),
        // The gRPC deadline ends every export after otlp.timeoutMs: twice that plus an interval is never reached.
        giveUpAfterMs: 2 * config.otlp.timeoutMs + config.export.intervalMs,
        target: options.exporter === undefined ? config.otlp.endpoint : undefined,
      },
      options.inheritedExportState,
    );
    const counted = options.countedInterfaces;
    // Delta: observe from the first sight of each interface, or the first delta would be its whole history.
    const delta = this.exporter.selectAggregationTemporality(InstrumentType.OBSERVABLE_COUNTER);
    this.systemNetwork =
      counted &&
      new SystemNetworkInstruments(() => readKernelStats(counted(), logger, options.procNetDev), logger, {
        fromFirstSight: delta === AggregationTemporality.DELTA,
      });
    this.resource = buildResource(config, options.env ?? process.env, options.packageVersion);
  }

  /** Starts periodic collection and export. The reader's interval timer is unref'd: it never keeps the process alive. */
  start(): void {
    if (this.provider !== undefined || this.stopped !== undefined) return;
    const intervalMs = this.options.config.export.intervalMs;
    const reader = new PeriodicExportingMetricReader({
      exporter: this.exporter,
      exportIntervalMillis: intervalMs,
      // The reader rejects a timeout above the interval; within it, the gRPC deadline normally ends an export first.
      exportTimeoutMillis: Math.min(intervalMs, this.options.config.otlp.timeoutMs),
      metricProducers: [this.timed(this.producer)],
    });
    // Binding the reader to a MeterProvider starts its timer.
    this.provider = new MeterProvider({ resource: this.resource, readers: [reader] });
    this.health.bind(this.provider.getMeter('carnx.agent', this.options.packageVersion));
    this.systemNetwork?.bind(this.provider.getMeter('carnx.kernel', this.options.packageVersion));
  }

  /** For the agent's health metric; works before start(). */
  recordAttachFailure(reason: string): void {
    this.health.recordAttachFailure(reason);
  }

  /** pending before the first export's outcome, failing from a failed export until the next success, else exporting. */
  exportState(): ExportState {
    return this.exporter.state;
  }

  /** One collection and export now; resolves when the export has finished, whether it succeeded or not. */
  async forceCollectAndExport(): Promise<void> {
    if (this.provider === undefined || this.stopped !== undefined)
      throw new Error('the metrics pipeline is not running');
    await this.exportsSettled(this.options.config.otlp.timeoutMs);
    await this.provider.forceFlush();
  }

  /**
   * One last collection and export, then shutdown, all bounded by timeoutMs. Idempotent: later calls return the first
   * call's promise. If the bound is hit, the abandoned export still holds the event loop until its gRPC deadline
   * (otlp.timeoutMs) and the reader's own export timer (min of interval and otlp.timeoutMs) end: exit explicitly.
   */
  stop(timeoutMs = this.options.config.export.shutdownTimeoutMs): Promise<void> {
    this.stopped ??= this.shutdown(timeoutMs);
    return this.stopped;
  }

  private async shutdown(timeoutMs: number): Promise<void> {
    try {
      // An export still in flight would keep the last collection's counter points out of the last export (one export
      // of counters at a time): let it finish first, within the same bound.
      const deadline = performance.now() + timeoutMs;
      await this.exportsSettled(timeoutMs);
      const left = Math.max(1, Math.round(deadline - performance.now()));
      // The reader's shutdown runs its forceFlush (collect + export) and then shuts the exporter down.
      if (this.provider !== undefined) await this.provider.shutdown({ timeoutMillis: left });
      else await this.exporter.shutdown();
    } catch (err) {
      this.options.logger.warn(
        { timeoutMs, error: (err as Error)?.message ?? String(err) },
        'the last metrics export did not finish in time; stopping without it',
      );
    }
  }

  /** Resolves when the exports in flight have an outcome, or after timeoutMs. */
  private async exportsSettled(timeoutMs: number): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const bound = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, timeoutMs);
      timer.unref();
    });
    try {
      await Promise.race([this.exporter.forceFlush().catch(() => undefined), bound]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Times each counter collection for carnx.agent.collection.duration. */
  private timed(producer: MetricProducer): MetricProducer {
    return {
      collect: async (options) => {
        const start = performance.now();
        try {
          return await producer.collect(options);
        } finally {
          this.health.recordCollection((performance.now() - start) / 1000);
        }
      },
    };
  }
}
