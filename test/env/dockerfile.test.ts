import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { assemble, inWorkdir, parseDockerfile, parseEnv } from './dockerfile.ts';

const root = join(import.meta.dirname, '../..');

describe('parseDockerfile', () => {
  it('reads stages, joined continuation lines and instructions, without comments', () => {
    const stages = parseDockerfile(
      [
        '# a comment',
        'FROM node:24 AS deps',
        'RUN a \\',
        '  && b',
        '',
        'FROM node:24',
        'ENV A=1 \\',
        '    B="two words"',
        'USER 65532:65532',
      ].join('\n'),
    );
    expect(stages).toEqual([
      { base: 'node:24', name: 'deps', instructions: [{ op: 'RUN', args: 'a && b' }] },
      {
        base: 'node:24',
        name: '1',
        instructions: [
          { op: 'ENV', args: 'A=1 B="two words"' },
          { op: 'USER', args: '65532:65532' },
        ],
      },
    ]);
    expect(parseEnv('A=1 B="two words" C=/x/y')).toEqual({ A: '1', B: 'two words', C: '/x/y' });
    expect(() => parseEnv('A 1')).toThrow(/only the K=V form/);
    expect(() => parseEnv('PATH=/x:$PATH')).toThrow(/variable references/);
  });

  it('reads both images: a dependency stage, then a non-root final stage with an entry point', async () => {
    for (const file of ['operator/Dockerfile', 'runtime/Dockerfile']) {
      const stages = parseDockerfile(await readFile(join(root, file), 'utf8'));
      expect(stages.map((s) => s.name)).toEqual(['deps', '1']);
      const final = stages[1]?.instructions ?? [];
      expect(final.find((i) => i.op === 'USER')?.args).toBe('65532:65532');
      expect(final.find((i) => i.op === 'ENTRYPOINT')?.args).toMatch(/^\["node", "(operator|runtime)\/main\.ts"\]$/);
    }
  });

  it("maps the image's WORKDIR to a directory only where it is a path of its own", () => {
    const run = `node -e "import('./runtime/app.ts')" && chmod -R a+rX /app/.compile-cache`;
    expect(inWorkdir(run, '/app', '/tmp/x')).toBe(`node -e "import('./runtime/app.ts')" && chmod -R a+rX /tmp/x/.compile-cache`);
    expect(inWorkdir('/app/.compile-cache', '/app', '/tmp/x')).toBe('/tmp/x/.compile-cache');
    expect(inWorkdir('/app', '/app', '/tmp/x')).toBe('/tmp/x');
    expect(inWorkdir('/application /srv/app', '/app', '/tmp/x')).toBe('/application /srv/app');
    expect(inWorkdir('NODE_PATH=/app:/x; cd /app&&echo >/app/f', '/app/', '/tmp/x')).toBe('NODE_PATH=/tmp/x:/x; cd /tmp/x&&echo >/tmp/x/f');
  });

  it('refuses an instruction it does not follow, and a COPY of what .dockerignore excludes', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'ms-dockerfile-'));
    try {
      await writeFile(join(dir, 'Dockerfile'), 'FROM scratch\nHEALTHCHECK CMD true\n');
      await expect(assemble(dir, 'Dockerfile', join(dir, 'out'))).rejects.toThrow(/HEALTHCHECK is not understood/);
      await writeFile(join(dir, '.dockerignore'), 'test\n');
      await writeFile(join(dir, 'Dockerfile'), 'FROM scratch\nWORKDIR /app\nCOPY test/x ./x\n');
      await expect(assemble(dir, 'Dockerfile', join(dir, 'out'))).rejects.toThrow(/excluded by .dockerignore/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
