// The OTLP/gRPC exporter built from carnx's config, and a wrapper that reports each export's outcome and logs failures.
import { createRequire } from 'node:module';
import { Metadata, credentials } from '@grpc/grpc-js';
import { ExportResultCode, type ExportResult } from '@opentelemetry/core';
import type { OTLPMetricExporter } from '@opentelemetry/exporter-metrics-otlp-grpc';
import { OTLPMetricExporterBase } from '@opentelemetry/exporter-metrics-otlp-http';
import { createOtlpNetworkExportDelegate } from '@opentelemetry/otlp-exporter-base';
import { convertLegacyOtlpGrpcOptions, createOtlpGrpcExporterMetrics } from '@opentelemetry/otlp-grpc-exporter-base';
import { MetricsExporterMetricsHelper } from '@opentelemetry/otlp-transformer';
import {
  AggregationTemporality,
  AggregationType,
  type AggregationOption,
  type InstrumentType,
  type PushMetricExporter,
  type ResourceMetrics,
} from '@opentelemetry/sdk-metrics';
import { otlpUsesTls } from '../config/load-config.js';
import type { CarnxConfig } from '../config/schema.js';
import type { ExportOutcome } from '../health/readiness.js';
import type { PartialSuccess } from './otel-diag.js';
import type { Logger } from '../log/logger.js';
import type { CounterProducer } from './counter-producer.js';
import { ExportSettingsError } from './export-settings-error.js';
import { tlsCredentials } from './tls-credentials.js';
import { ReconnectingGrpcTransport } from './grpc-export-transport.js';
import { OtlpMetricsSerializer } from './otlp-metrics-serializer.js';

type GrpcExporterOptions = NonNullable<ConstructorParameters<typeof OTLPMetricExporter>[0]>;

/**
 * The OTel gRPC metric exporter's parts (configuration merge, protobuf serializer, export delegate with its deadline,
 * concurrency limit and partial-success report, temporality selection) on carnx's own transport, whose channel
 * retries its connection every second instead of backing off to two minutes (grpc-export-transport.ts), so exports
 * resume within about an interval of the collector's return. Every option is passed explicitly, because the exporter falls back to OTEL_EXPORTER_OTLP_* for anything left out
 * (carnx's config already folds those variables in, below its own layers). One exception the exporter does not let us
 * turn off: OTEL_EXPORTER_OTLP_[METRICS_]HEADERS keys absent from otlp.headers are still added to the metadata.
 * Throws an ExportSettingsError naming the config key for unusable TLS files or headers; never with a header value.
 * `env`: where the exporter reads OTEL_EXPORTER_OTLP_*_HEADERS and where SSL_CERT_FILE is read (tests pass their own).
 */
export function createOtlpExporter(
  config: CarnxConfig,
  logger: Logger,
  env: NodeJS.ProcessEnv = process.env,
): OTLPMetricExporterBase {
  const tls = otlpUsesTls(config) ? tlsCredentials(config, env) : undefined;
  const options: GrpcExporterOptions = {
    url: config.otlp.endpoint,
    // `metadata`, not `headers`: the gRPC exporter ignores `headers`.
    metadata: metadataOf(config.otlp.headers),
    credentials: tls?.creds ?? credentials.createInsecure(),
    compression: config.otlp.compression as GrpcExporterOptions['compression'],
    timeoutMillis: config.otlp.timeoutMs,
    // A number: the exporter compares against its enum (DELTA 0, CUMULATIVE 1); a string would silently mean cumulative.
    // This only steers SDK instruments; the counter producer sets the temporality of its own points.
    temporalityPreference:
      config.otlp.temporality === 'delta' ? AggregationTemporality.DELTA : AggregationTemporality.CUMULATIVE,
  };
  const fromEnv = OTEL_HEADER_VARS.flatMap((name) => headerEntries(env[name]).map((e) => e.name)).filter(
    (n) => n !== '',
  );
  logger.info(
    {
      endpoint: config.otlp.endpoint,
      tls: tls !== undefined,
      ...(tls && { trustedRoots: tls.roots }),
      compression: config.otlp.compression,
      temporality: config.otlp.temporality,
      // The exporter adds the OTEL variables' headers that otlp.headers lacks: name them too.
      headerNames: [...new Set([...Object.keys(config.otlp.headers), ...fromEnv])],
    },
    'exporting metrics over OTLP/gRPC',
  );
  // What OTLPMetricExporter's constructor does, with the transport swapped.
  const resolved = convertLegacyOtlpGrpcOptions(options, 'METRICS');
  const transport = new ReconnectingGrpcTransport({
    address: resolved.url,
    credentials: resolved.credentials,
    metadata: resolved.metadata,
    compression: resolved.compression,
    userAgent: OTEL_USER_AGENT,
  });
  const selfMetrics = createOtlpGrpcExporterMetrics(
    'otlp_grpc_metric_exporter',
    MetricsExporterMetricsHelper,
    options.url,
    undefined,
  );
  return new OTLPMetricExporterBase(
    createOtlpNetworkExportDelegate(resolved, new OtlpMetricsSerializer(), selfMetrics, transport),
    options,
  );
}

/** The user agent the OTel gRPC transport sends, so collectors see the same client. */
const OTEL_USER_AGENT = `OTel-OTLP-Exporter-JavaScript/${
  (createRequire(import.meta.url)('@opentelemetry/otlp-grpc-exporter-base/package.json') as { version: string }).version
}`;

/** The variables the gRPC exporter reads headers from by itself, whatever carnx passes. */
const OTEL_HEADER_VARS = ['OTEL_EXPORTER_OTLP_METRICS_HEADERS', 'OTEL_EXPORTER_OTLP_HEADERS'] as const;

/** Entries of a k1=v1,k2=v2 variable, leniently: an entry without `=` is all value (a token pasted without a name). */
function headerEntries(raw: string | undefined): Array<{ name: string; value: string }> {
  return (raw ?? '')
    .split(',')
    .map((entry) => entry.trim())
    .filter((entry) => entry !== '')
    .map((entry) => {
      const eq = entry.indexOf('=');
      return eq < 0
        ? { name: '', value: entry }
        : { name: entry.slice(0, eq).trim(), value: entry.slice(eq + 1).trim() };
    })
    .filter((e) => e.value !== '');
}

/**
 * Every header value an export may carry, for redaction: otlp.headers, and both OTEL variables as written and
 * percent-decoded (the exporter sends their headers that otlp.headers lacks, even when the config file replaced them).
 */
export function headerSecrets(config: CarnxConfig, ...envs: NodeJS.ProcessEnv[]): string[] {
  const fromEnv = envs.flatMap((env) =>
    OTEL_HEADER_VARS.flatMap((name) =>
      headerEntries(env[name]).flatMap(({ value }) => {
        try {
          return [value, decodeURIComponent(value)];
        } catch {
          return [value];
        }
      }),
    ),
  );
  return [...new Set([...Object.values(config.otlp.headers), ...fromEnv])].filter((s) => s !== '');
}

function metadataOf(headers: Record<string, string>): Metadata {
  const metadata = new Metadata();
  for (const [name, value] of Object.entries(headers)) {
    if (name.toLowerCase().endsWith('-bin'))
      throw new ExportSettingsError(`otlp.headers: binary metadata (${name}) is not supported`);
    try {
      metadata.set(name, value);
    } catch {
      // grpc-js puts the offending value in its message: say which header, never what it holds.
      throw new ExportSettingsError(
        `otlp.headers: "${name}" is not usable as gRPC metadata (names: a-z 0-9 - _ .; values: printable ASCII)`,
      );
    }
  }
  return metadata;
}

export interface ExportReporting {
  logger: Logger;
  /** Told the outcome of each export, so delta baselines advance only on success. */
  producer?: Pick<CounterProducer, 'collectionIdOf' | 'withoutCounters' | 'exportSucceeded' | 'exportFailed'>;
  /** The partial success the collector answered the export just completed with, if any (OtelDiagBridge). */
  takePartialSuccess?: () => PartialSuccess | undefined;
  /**
   * An export of counter points without an outcome after this long is given up (logged; its collection counts as
   * failed), so an exporter that never calls back cannot hold the counters forever. Well above the gRPC deadline.
   */
  giveUpAfterMs?: number;
  now?: () => number;
  /** Called once per failed export (the health metric). */
  onFailure?: () => void;
  /** Values that must never reach a log line, e.g. the header values; cut out of error messages. */
  secrets?: readonly string[];
  /** Where exports go, for the log line. */
  target?: string;
}

/** What readiness reports about exporting: no outcome yet, the last export succeeded, or it failed. */
export type ExportState = ExportOutcome;

/**
 * The warn line of a failure burst. It names every way to point carnx at a collector, because the usual first-run
 * failure is that nothing listens at the default endpoint. Tests and alerts match its first words.
 */
export const EXPORT_FAILED =
  'metrics export failed: carnx cannot deliver metrics to the collector and keeps trying at every export interval. ' +
  'Further failures are not logged until an export succeeds. ' +
  'To point carnx at a collector, use --otlp-endpoint host:port, otlp.endpoint in the config file, ' +
  'or OTEL_EXPORTER_OTLP_ENDPOINT';
/** The info line when an export succeeds after a failure burst. */
export const EXPORT_RECOVERED = 'export recovered';
/** The info line when the first export succeeds. */
export const FIRST_EXPORT_SUCCEEDED = 'first metrics export succeeded: the collector accepted the metrics';

/**
 * A PushMetricExporter around another. The gRPC exporter never retries, so each failure is final for its batch.
 * Logging: one warn when a failure burst starts, one info when an export succeeds again (with the count), nothing
 * in between, so a dead collector costs two lines however long it stays down; one info at the first success.
 */
export class ReportingExporter implements PushMetricExporter {
  private failures = 0;
  private partials = 0;
  private succeededOnce = false;
  private inFlight: { id: number; since: number } | undefined;
  private readonly now: () => number;

  /** `inherited`: the state of the exporter this one replaces on reload, reported until this one has an outcome. */
  constructor(
    private readonly inner: PushMetricExporter,
    private readonly reporting: ExportReporting,
    private readonly inherited: ExportState = 'pending',
  ) {
    this.now = reporting.now ?? (() => performance.now());
  }

  /**
   * pending until the first export has an outcome, failing from a failed export until the next success. Pending is
   * not ready: an agent whose collector is unreachable must not look healthy for the interval before it learns so.
   */
  get state(): ExportState {
    if (this.failures > 0) return 'failing';
    return this.succeededOnce ? 'exporting' : this.inherited;
  }

  /**
   * At most one export of counter points is in flight: the periodic reader gives up waiting after the export interval
   * and collects again while the gRPC call still runs, and two exports of one delta interval would both count. A
   * batch that comes while one is in flight goes without its counter points (the producer keeps them for the next
   * collection, whose delta covers this one's interval); the SDK instruments' points go as usual.
   */
  export(metrics: ResourceMetrics, resultCallback: (result: ExportResult) => void): void {
    const { producer } = this.reporting;
    let id = producer?.collectionIdOf(metrics);
    if (id !== undefined && this.inFlightFor(id)) {
      producer?.exportFailed(id);
      metrics = producer?.withoutCounters(metrics) ?? metrics;
      id = undefined;
      if (metrics.scopeMetrics.length === 0) {
        resultCallback({ code: ExportResultCode.SUCCESS });
        return;
      }
    }
    const flight = id === undefined ? undefined : { id, since: this.now() };
    if (flight !== undefined) this.inFlight = flight;
    let settled = false;
    const done = (result: ExportResult): void => {
      if (settled) return; // a second callback must not count twice
      settled = true;
      // A given-up export's late outcome no longer concerns the producer (its collection already counted as failed).
      const current = flight !== undefined && this.inFlight === flight;
      if (current) this.inFlight = undefined;
      this.report(flight === undefined || current ? id : undefined, result);
      resultCallback(result);
    };
    try {
      this.inner.export(metrics, done);
    } catch (err) {
      done({ code: ExportResultCode.FAILED, error: err instanceof Error ? err : new Error(String(err)) });
    }
  }

  /** Whether an export of counter points other than collection `id` is still running (and not given up). */
  private inFlightFor(id: number): boolean {
    const flight = this.inFlight;
    if (flight === undefined || flight.id === id) return false;
    const limit = this.reporting.giveUpAfterMs;
    if (limit === undefined || this.now() - flight.since <= limit) return true;
    this.inFlight = undefined;
    this.reporting.producer?.exportFailed(flight.id);
    this.reporting.logger.warn(
      { collection: flight.id, afterMs: limit },
      'an export has had no outcome for too long; its counts are sent again with the next one (may count twice)',
    );
    return false;
  }

  forceFlush(): Promise<void> {
    return this.inner.forceFlush();
  }

  shutdown(): Promise<void> {
    return this.inner.shutdown();
  }

  /** Forwarded: the periodic reader asks its exporter, and without these the SDK instruments would lose the preference. */
  selectAggregationTemporality(type: InstrumentType): AggregationTemporality {
    return this.inner.selectAggregationTemporality?.(type) ?? AggregationTemporality.CUMULATIVE;
  }

  selectAggregation(type: InstrumentType): AggregationOption {
    return this.inner.selectAggregation?.(type) ?? { type: AggregationType.DEFAULT };
  }

  private report(id: number | undefined, result: ExportResult): void {
    const { producer, logger } = this.reporting;
    if (result.code === ExportResultCode.SUCCESS) {
      // The accepted points arrived: the baseline moves (resending would double them; rejected ones would be rejected
      // again). The rejected ones are lost: a logged failure.
      if (id !== undefined) producer?.exportSucceeded(id);
      const partial = this.reporting.takePartialSuccess?.();
      if (partial !== undefined) this.reportPartial(partial);
      else this.partials = 0;
      if (this.failures > 0) logger.info({ failedExports: this.failures }, EXPORT_RECOVERED);
      // Once: the user starting carnx learns that metrics reach the collector. A reloaded pipeline says it again only
      // when the one it replaced had not been exporting (a changed endpoint that works is news too).
      if (!this.succeededOnce && this.inherited !== 'exporting') {
        logger.info({ target: this.reporting.target }, FIRST_EXPORT_SUCCEEDED);
      }
      this.failures = 0;
      this.succeededOnce = true;
      return;
    }
    if (id !== undefined) producer?.exportFailed(id);
    this.reporting.onFailure?.();
    if (this.failures++ === 0) {
      logger.warn(
        { target: this.reporting.target, error: this.redact(result.error?.message ?? 'no error given') },
        EXPORT_FAILED,
      );
    }
  }

  /** Counted as a failed export (the health metric); logged when a run of partial successes starts. */
  private reportPartial(partial: PartialSuccess): void {
    this.reporting.onFailure?.();
    if (this.partials++ > 0) return;
    this.reporting.logger.warn(
      {
        target: this.reporting.target,
        rejectedDataPoints: partial.rejectedDataPoints,
        error: this.redact(partial.errorMessage ?? 'no error given'),
      },
      'the collector rejected points of an export; they are lost. Further partial successes are not logged until an export is accepted whole',
    );
  }

  private redact(text: string): string {
    const secrets = [...(this.reporting.secrets ?? [])].filter((s) => s !== '').sort((a, b) => b.length - a.length);
    return secrets.reduce((out, secret) => out.split(secret).join('[redacted]'), text);
  }
}
