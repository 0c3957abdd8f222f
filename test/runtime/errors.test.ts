import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ERRORS, msError } from '../../runtime/errors.ts';

const doc = readFileSync(join(import.meta.dirname, '../../docs/errors.md'), 'utf8');
const documented = [...doc.matchAll(/^\| `(MS_ERR_[A-Z0-9_]+)` \| ([^|]+) \|/gm)];

describe('error table', () => {
  it('documents every code exactly once, and nothing that is not a code', () => {
    const docCodes = documented.map((m) => m[1]);
    expect(new Set(docCodes).size).toBe(docCodes.length);
    expect([...docCodes].sort()).toEqual(Object.keys(ERRORS).sort());
  });

  it('documents the HTTP status of every request-time error', () => {
    for (const [, code, status] of documented) {
      const spec = ERRORS[code as keyof typeof ERRORS];
      if (status?.trim() !== '–') expect(Number(status), code).toBe(spec.status);
    }
  });

  it('lets the README name only codes that exist (its troubleshooting table included)', () => {
    const readme = readFileSync(join(import.meta.dirname, '../../README.md'), 'utf8');
    const named = [...readme.matchAll(/\b(MS_ERR_[A-Z0-9_]*[A-Z0-9])\b/g)].map((m) => m[1] as string);
    expect(named.length).toBeGreaterThan(10);
    expect(named.filter((c) => !(c in ERRORS))).toEqual([]);
  });

  it('names codes by the MS_ERR_<AREA>_<WHAT> rule', () => {
    for (const code of Object.keys(ERRORS)) expect(code).toMatch(/^MS_ERR_[A-Z0-9]+_[A-Z0-9_]+$/);
  });

  it('renders templates and keeps the JSON body stable', () => {
    const e = msError('MS_ERR_BUNDLE_SHA256_MISMATCH', { uri: 's3://b/k', expected: 'aa', actual: 'bb' });
    expect(e.statusCode).toBe(500);
    expect(e.toJSON()).toEqual({ code: 'MS_ERR_BUNDLE_SHA256_MISMATCH', error: 'bundle s3://b/k sha256 mismatch: expected aa, got bb' });
  });
});
