// pino JSON logger: one line per state change, module children, OTLP secrets redacted by path.
import pino from 'pino';

export type Logger = pino.Logger;

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

export function createLogger(
  level: string,
  destination: pino.DestinationStream = pino.destination({ fd: 1, sync: true }),
): Logger {
  return pino(
    {
      level,
      base: { pid: process.pid },
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: { paths: SECRET_PATHS, censor: '[redacted]' },
      formatters: { level: (label) => ({ level: label }) },
    },
    destination,
  );
}
