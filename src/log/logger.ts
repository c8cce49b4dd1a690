// pino logger: one line per state change, module children, OTLP secrets redacted by path; JSON, or readable on a terminal.
import { createRequire } from 'node:module';
import pino from 'pino';
import type { prettyFactory } from 'pino-pretty';

export type Logger = pino.Logger;

/** What the log looks like: JSON lines (machines, journald, containers) or pino-pretty's text (people at a terminal). */
export type LogFormat = 'json' | 'pretty';
/** log.format: auto picks pretty when stdout is a terminal, JSON otherwise. */
export type LogFormatSetting = LogFormat | 'auto';

/** Paths that may carry OTLP headers or API keys, wherever a log call nests them. */
const SECRET_PATHS = [
  'headers',
  '*.headers',
  '*.*.headers',
  'metadata',
  '*.metadata',
  'otlp.headers',
  '*.otlp.headers',
  'config.otlp.headers',
];

/**
 * Fields a person at a terminal does not need on every line: the pid, the module (shown before the message instead),
 * and a line's machine-readable `summary` (its message already says it in words).
 */
const PRETTY_HIDDEN = 'pid,hostname,module,summary';

/** The format log.format asks for, given whether stdout is a terminal. */
export function chooseLogFormat(setting: LogFormatSetting, stdoutIsTty: boolean): LogFormat {
  if (setting === 'auto') return stdoutIsTty ? 'pretty' : 'json';
  return setting;
}

/** Colours on a terminal unless NO_COLOR (https://no-color.org) is set or the terminal is dumb. */
export function colorsWanted(stdoutIsTty: boolean, env: NodeJS.ProcessEnv): boolean {
  return stdoutIsTty && !env.NO_COLOR && env.TERM !== 'dumb';
}

export interface LogOutput {
  format?: LogFormat;
  /** Colours in the pretty format (a terminal that has not asked for NO_COLOR). */
  colors?: boolean;
}

/** Write errors that mean stdout is gone for good: the terminal hung up (EIO), the pipe's reader exited (EPIPE). */
const OUTPUT_GONE = new Set(['EIO', 'EPIPE', 'EBADF', 'ECONNRESET']);

/**
 * stdout, written synchronously. A failed write must not kill the agent half-way (an unhandled 'error' would, leaving
 * its programs attached): when stdout is gone for good, this and every later line are dropped and `onGone` is told
 * once, so the caller can stop cleanly; any other failure drops just that line.
 */
export function stdoutDestination(onGone: (err: Error) => void = () => undefined): pino.DestinationStream {
  const out = pino.destination({ fd: 1, sync: true });
  let gone = false;
  out.on('error', (err: NodeJS.ErrnoException) => {
    if (gone || !OUTPUT_GONE.has(err.code ?? '')) return;
    gone = true;
    onGone(err);
  });
  return { write: (line: string) => (gone ? undefined : out.write(line)) };
}

export function createLogger(
  level: string,
  destination: pino.DestinationStream = stdoutDestination(),
  output: LogOutput = {},
): Logger {
  return pino(
    {
      level,
      base: { pid: process.pid },
      timestamp: pino.stdTimeFunctions.isoTime,
      // Redaction happens while pino serializes, before either format sees the line: both stay free of secrets.
      redact: { paths: SECRET_PATHS, censor: '[redacted]' },
      formatters: { level: (label) => ({ level: label }) },
    },
    output.format === 'pretty' ? prettyDestination(destination, output.colors ?? false) : destination,
  );
}

/**
 * Turns each serialized JSON line into pino-pretty's text and hands it to `destination` in the same call. Not a pino
 * transport: those run in a worker thread and lose the last lines when the process exits (exit codes, "stopped").
 */
function prettyDestination(destination: pino.DestinationStream, colors: boolean): pino.DestinationStream {
  // Required here, not imported: JSON logs (every service, every container) start without pino-pretty's modules.
  const pretty = createRequire(import.meta.url)('pino-pretty') as { prettyFactory: typeof prettyFactory };
  const prettify = pretty.prettyFactory({
    colorize: colors,
    translateTime: 'SYS:HH:MM:ss',
    // One event, one line: the extra fields follow the message as compact JSON.
    singleLine: true,
    ignore: PRETTY_HIDDEN,
    messageFormat: '{if module}{module}: {end}{msg}',
  });
  return { write: (line: string) => destination.write(prettify(line)) };
}
