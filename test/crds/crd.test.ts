import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { modelServingCrd, modelServingCrdYaml } from '../../crds/crd.ts';
import { referenceMarkdown } from '../../crds/reference.ts';

const committed = readFileSync(join(import.meta.dirname, '../../crds/modelship.dev_modelservings.yaml'), 'utf8');

type Schema = {
  description?: string;
  properties?: Record<string, Schema>;
  items?: Schema;
  additionalProperties?: Schema | boolean;
  patternProperties?: unknown;
  type?: string;
  enum?: unknown[];
  anyOf?: unknown[];
};

function walk(s: Schema, path: string, visit: (s: Schema, path: string) => void) {
  visit(s, path);
  for (const [k, v] of Object.entries(s.properties ?? {})) walk(v, `${path}.${k}`, visit);
  if (s.items) walk(s.items, `${path}[]`, visit);
  if (s.additionalProperties && typeof s.additionalProperties === 'object') walk(s.additionalProperties, `${path}{}`, visit);
}

describe('ModelServing CRD', () => {
  it('is committed exactly as the schema generates it (run `npm run gen:crd` after changing the schema)', () => {
    expect(committed).toBe(modelServingCrdYaml());
    expect(readFileSync(join(import.meta.dirname, '../../charts/modelship/crds/modelship.dev_modelservings.yaml'), 'utf8')).toBe(committed);
  });

  it('has its field reference (docs/modelserving.md) generated from the same schema', () => {
    const doc = readFileSync(join(import.meta.dirname, '../../docs/modelserving.md'), 'utf8');
    expect(doc).toBe(referenceMarkdown());
    expect(doc).toContain('| `bundle.uri` (required) | string |');
    expect(doc).toContain('minReplicas must not exceed maxReplicas');
  });

  it('is structural: a type on every node, no patternProperties, and a description on every spec field', () => {
    const root = modelServingCrd().spec.versions[0]?.schema.openAPIV3Schema as unknown as Schema;
    const spec = root.properties?.spec as Schema;
    walk(root, 'root', (s, path) => {
      expect(s.patternProperties, path).toBeUndefined();
      if (!s.anyOf) expect(s.type, path).toBeDefined();
    });
    walk(spec, 'spec', (s, path) => {
      if (!path.endsWith('[]') && !path.endsWith('{}'))
        expect(s.description, `${path} needs a description for kubectl explain`).toBeTruthy();
    });
    expect(parse(committed).spec.names.shortNames).toEqual(['ms']);
  });
});
