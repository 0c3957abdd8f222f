// The operator image copies common/, crds/, operator/ and two leaf files of the runtime (operator/Dockerfile):
// every module the operator reaches must be among them, or the image fails at start.
import { readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = resolve(import.meta.dirname, '../..');
const IMPORT = /^\s*(?:import|export)\s[^'"]*?from\s+'(\.[^']+)'|^\s*import\s+'(\.[^']+)'|import\('(\.[^']+)'\)/gm;

/** Every repository module reached from `entry` by relative imports (static and dynamic with a literal). */
function reachable(entry: string): Set<string> {
  const seen = new Set<string>();
  const visit = (file: string) => {
    const rel = relative(ROOT, file);
    if (seen.has(rel)) return;
    seen.add(rel);
    const text = readFileSync(file, 'utf8');
    for (const m of text.matchAll(IMPORT)) {
      const spec = m[1] ?? m[2] ?? m[3];
      if (spec?.endsWith('.ts')) visit(join(dirname(file), spec));
    }
  };
  visit(join(ROOT, entry));
  return seen;
}

describe('the operator image', () => {
  it('needs nothing of the runtime beyond its contract and its error table', () => {
    const files = [...reachable('operator/main.ts')];
    expect(files).toContain('operator/controller/controller.ts');
    expect(files).toContain('common/settings.ts');
    const outside = files.filter((f) => !/^(operator|common|crds)\//.test(f));
    expect(outside.sort()).toEqual(['runtime/contract.ts', 'runtime/errors.ts']);
  });

  it('copies exactly those files', () => {
    const dockerfile = readFileSync(join(ROOT, 'operator/Dockerfile'), 'utf8');
    expect(dockerfile).toMatch(/^COPY common \.\/common$/m);
    expect(dockerfile).toMatch(/^COPY runtime\/contract\.ts runtime\/errors\.ts \.\/runtime\/$/m);
    expect(dockerfile).not.toMatch(/^COPY runtime \.\/runtime$/m);
  });
});

describe('the runtime images', () => {
  it('copy common/ beside runtime/, which imports it', () => {
    expect([...reachable('runtime/main.ts')].some((f) => f.startsWith('common/'))).toBe(true);
    for (const file of ['runtime/Dockerfile', 'runtime/python.Dockerfile']) {
      const dockerfile = readFileSync(join(ROOT, file), 'utf8');
      expect(dockerfile, file).toMatch(/^COPY common \.\/common\nCOPY runtime \.\/runtime$/m);
    }
  });
});
