// The runtime's logger: pino JSON to stdout. Anything that may hold a credential is redacted by path, and
// bundle URIs are logged only in redacted form (see bundle/uri.ts).
import { type Logger, pino } from 'pino';

export const REDACT_PATHS = [
  'req.headers.authorization',
  'req.headers.cookie',
  '*.secretKey',
  '*.accessKey',
  '*.password',
  '*.token',
  'config.s3.secretKey',
  'config.s3.accessKey',
];

export function createLogger(level: string, base: Record<string, unknown> = {}): Logger {
  return pino({
    level,
    base: { ...base },
    redact: { paths: REDACT_PATHS, censor: '[redacted]' },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ level: label }) },
  });
}
