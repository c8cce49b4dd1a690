// The OpenTelemetry SDK's diagnostic log (diag) into pino, and the OTLP partial successes it is the only carrier of.
import { DiagLogLevel, diag, type DiagLogger } from '@opentelemetry/api';
import type { Logger } from '../log/logger.js';

/** What the collector said it rejected of one export (OTLP ExportMetricsPartialSuccess). */
export interface PartialSuccess {
  rejectedDataPoints: number;
  errorMessage?: string;
}

/** The exporter reports a partial success only as this diag warning, synchronously just before its SUCCESS callback. */
const PARTIAL_SUCCESS = 'Received Partial Success response:';
/** The same SDK message is logged at most once per this long; the next line says how many were left out. */
const REPEAT_MS = 60_000;
/** Distinct messages remembered for that; beyond, the memory starts over (SDK messages are few). */
const MAX_MESSAGES = 100;

/**
 * A DiagLogger writing to pino (lines with module 'otel'), levels mapped one to one (verbose -> trace). Lines repeat at
 * most once a minute per message (the reader, for one, warns on every export that outlives the export interval).
 * Secrets (header values) are cut out of every line.
 */
export class OtelDiagBridge implements DiagLogger {
  private readonly logger: Logger;
  private readonly secrets: readonly string[];
  private readonly now: () => number;
  private readonly repeats = new Map<string, { at: number; left: number }>();
  private partial: PartialSuccess | undefined;

  constructor(logger: Logger, secrets: readonly string[] = [], now: () => number = Date.now) {
    this.logger = logger;
    this.secrets = [...secrets].filter((s) => s !== '').sort((a, b) => b.length - a.length);
    this.now = now;
  }

  /** Makes this the global diag logger at warn level (replacing any earlier one, e.g. a reloaded pipeline's). */
  install(): void {
    diag.setLogger(this, { logLevel: DiagLogLevel.WARN, suppressOverrideMessage: true });
  }

  /**
   * The partial success reported since the last call, if any. The exporter's SUCCESS callback follows the diag warning
   * in the same tick, so the callback's taker gets its own export's.
   */
  takePartialSuccess(): PartialSuccess | undefined {
    const partial = this.partial;
    this.partial = undefined;
    return partial;
  }

  error = (message: string, ...args: unknown[]): void => {
    // The periodic reader reports every failed export as an error with its stack; the exporter (ReportingExporter)
    // already said so once per failure burst, with what to do: this copy is for debugging only.
    if (isReaderExportFailure(message, args))
      this.write('debug', 'export failed (reported by the periodic reader)', []);
    else this.write('error', message, args);
  };
  warn = (message: string, ...args: unknown[]): void => {
    if (message === PARTIAL_SUCCESS && this.notePartial(args[0])) return;
    this.write('warn', message, args);
  };
  info = (message: string, ...args: unknown[]): void => this.write('info', message, args);
  debug = (message: string, ...args: unknown[]): void => this.write('debug', message, args);
  verbose = (message: string, ...args: unknown[]): void => this.write('trace', message, args);

  /** Keeps a parseable partial success for the exporter (which logs it); false if it is not one. */
  private notePartial(json: unknown): boolean {
    try {
      const parsed = JSON.parse(String(json)) as { rejectedDataPoints?: unknown; errorMessage?: unknown };
      const rejected = Number(parsed.rejectedDataPoints ?? 0);
      const errorMessage = typeof parsed.errorMessage === 'string' ? this.redact(parsed.errorMessage) : undefined;
      this.partial = { rejectedDataPoints: Number.isFinite(rejected) ? rejected : 0, errorMessage };
      return true;
    } catch {
      return false;
    }
  }

  private write(level: 'error' | 'warn' | 'info' | 'debug' | 'trace', message: string, args: unknown[]): void {
    const key = `${level} ${message}`;
    const seen = this.repeats.get(key);
    const now = this.now();
    if (seen !== undefined && now - seen.at < REPEAT_MS) {
      seen.left++;
      return;
    }
    const details = args.map((a) => this.redact(a instanceof Error ? a.message : typeof a === 'string' ? a : json(a)));
    this.logger[level](
      { module: 'otel', ...(details.length > 0 && { details }), ...(seen?.left && { repeatsLeftOut: seen.left }) },
      this.redact(message),
    );
    if (this.repeats.size >= MAX_MESSAGES) this.repeats.clear();
    this.repeats.set(key, { at: now, left: 0 });
  }

  private redact(text: string): string {
    return this.secrets.reduce((out, secret) => out.split(secret).join('[redacted]'), text);
  }
}

/** The periodic reader's own report of a failed export: an Error whose message names the reader. */
function isReaderExportFailure(message: string, args: unknown[]): boolean {
  const text = [
    message,
    ...args.map((a) => (a instanceof Error ? a.message : typeof a === 'string' ? a : json(a))),
  ].join(' ');
  return text.includes('PeriodicExportingMetricReader: metrics export failed');
}

function json(value: unknown): string {
  try {
    return JSON.stringify(value, (_k, v) => (typeof v === 'bigint' ? v.toString() : v)) ?? String(value);
  } catch {
    return String(value);
  }
}
