import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ensureBuilt, ToolchainMissingError } from './build.ts';

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
});
