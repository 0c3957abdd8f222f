import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { copySources } from '../../env/images.ts';

const REPO = join(import.meta.dirname, '..', '..');

describe('copySources', () => {
  it('lists what a Dockerfile copies from the context, not from earlier stages, with flags and continuations', () => {
    const text = [
      'FROM a AS deps',
      'COPY package.json package-lock.json ./',
      'FROM b',
      'COPY --from=deps /app/node_modules ./node_modules',
      'COPY --chown=1:1 runtime \\',
      '     ./runtime',
      'ADD sdk/python/modelship ./sdk',
      'RUN echo COPY x y',
    ].join('\n');
    expect(copySources(text)).toEqual(['package.json', 'package-lock.json', 'runtime', 'sdk/python/modelship']);
  });

  it('names every input of our Dockerfiles (a file left out here would not rebuild the image when it changes)', () => {
    expect(copySources(readFileSync(join(REPO, 'runtime/Dockerfile'), 'utf8'))).toEqual([
      'package.json',
      'package-lock.json',
      'common',
      'runtime',
    ]);
    expect(copySources(readFileSync(join(REPO, 'operator/Dockerfile'), 'utf8'))).toEqual([
      'package.json',
      'package-lock.json',
      'crds',
      'common',
      'runtime/contract.ts',
      'runtime/errors.ts',
      'operator',
    ]);
    const python = copySources(readFileSync(join(REPO, 'runtime/python.Dockerfile'), 'utf8'));
    expect(python).toContain('common');
    expect(python).toContain('sdk/python/modelship');
  });
});
