import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ensureBuilt, pythonVersionKey, ToolchainMissingError, versionAtLeast } from '../../env/build.ts';

const saved = { PATH: process.env.PATH, MODELSHIP_CACHE: process.env.MODELSHIP_CACHE };
afterEach(() => {
  process.env.PATH = saved.PATH;
  if (saved.MODELSHIP_CACHE === undefined) delete process.env.MODELSHIP_CACHE;
  else process.env.MODELSHIP_CACHE = saved.MODELSHIP_CACHE;
});

describe('ensureBuilt', () => {
  it('names the missing toolchain and what to install, before building anything', async () => {
    const cache = await mkdtemp(join(tmpdir(), 'ms-cache-'));
    process.env.MODELSHIP_CACHE = cache;
    process.env.PATH = '/nonexistent';
    try {
      const err = await ensureBuilt({ only: ['kwok'], progress: () => {} }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ToolchainMissingError);
      expect((err as Error).message).toBe(
        'building kwok needs go, which is not on PATH: install Go ≥ 1.25 (https://go.dev/doc/install, or the Debian package golang-go from bookworm-backports)',
      );
      const kafka = await ensureBuilt({ only: ['kafka'], progress: () => {} }).catch((e: unknown) => e);
      expect((kafka as Error).message).toMatch(/^building kafka needs java, which is not on PATH/);
    } finally {
      await rm(cache, { recursive: true, force: true });
    }
  });

  it('names python3 when it is missing or too old', async () => {
    const cache = await mkdtemp(join(tmpdir(), 'ms-cache-'));
    process.env.MODELSHIP_CACHE = cache;
    try {
      process.env.PATH = '/nonexistent';
      const missing = await ensureBuilt({ only: ['python'], progress: () => {} }).catch((e: unknown) => e);
      expect(missing).toBeInstanceOf(ToolchainMissingError);
      expect((missing as Error).message).toBe(
        'building python needs python3, which is not on PATH: install Python ≥ 3.11 with pip (Debian packages python3 and python3-pip, or pyenv)',
      );
      // A python3 that answers the probe as Python 3.8 would.
      await writeFile(join(cache, 'python3'), '#!/bin/sh\necho /opt/old/bin/python3\necho 3.8.10\n');
      await chmod(join(cache, 'python3'), 0o755);
      process.env.PATH = cache;
      const old = await ensureBuilt({ only: ['python'], progress: () => {} }).catch((e: unknown) => e);
      expect(old).toBeInstanceOf(ToolchainMissingError);
      expect((old as Error).message).toMatch(
        /^building python needs python3, but the python3 on PATH is Python 3\.8\.10: install Python ≥ 3\.11/,
      );
    } finally {
      await rm(cache, { recursive: true, force: true });
    }
  });
});

describe('pythonVersionKey', () => {
  const lock = 'numpy==2.4.6\n';
  it('names the uv and Python versions and hashes the locks', () => {
    expect(pythonVersionKey('0.13.8', '3.11.7', [lock, 'pytest==9.2.0\n'])).toMatch(/^uv0\.13\.8-py3\.11\.7-[0-9a-f]{12}$/);
  });
  it('is stable, and changes with any lock, the order of the locks, the interpreter or uv', () => {
    const key = pythonVersionKey('0.13.8', '3.11.7', [lock, 'b']);
    expect(pythonVersionKey('0.13.8', '3.11.7', [lock, 'b'])).toBe(key);
    for (const other of [
      pythonVersionKey('0.13.8', '3.11.7', ['numpy==2.4.7\n', 'b']),
      pythonVersionKey('0.13.8', '3.11.7', ['b', lock]),
      pythonVersionKey('0.13.8', '3.11.7', [`${lock}b`]),
      pythonVersionKey('0.13.8', '3.12.1', [lock, 'b']),
      pythonVersionKey('0.13.9', '3.11.7', [lock, 'b']),
    ]) {
      expect(other).not.toBe(key);
    }
  });
});

describe('versionAtLeast', () => {
  it.each([
    ['3.11.7', '3.9', true],
    ['3.9', '3.9', true],
    ['3.9.0', '3.9', true],
    ['3.8.10', '3.9', false],
    ['2.7.18', '3.9', false],
    ['4.0', '3.9', true],
  ])('%s ≥ %s: %s', (a, b, expected) => {
    expect(versionAtLeast(a, b)).toBe(expected);
  });
});
