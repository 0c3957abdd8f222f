import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { BATCH_CRD_FILE, batchPredictionCrd, batchPredictionCrdYaml } from '../../crds/batchprediction.crd.ts';
import { batchReferenceMarkdown } from '../../crds/reference.ts';

const ROOT = join(import.meta.dirname, '../..');
const committed = readFileSync(join(ROOT, 'crds', BATCH_CRD_FILE), 'utf8');

type Schema = {
  description?: string;
  properties?: Record<string, Schema>;
  items?: Schema;
  additionalProperties?: Schema | boolean;
  patternProperties?: unknown;
  type?: string;
  anyOf?: unknown[];
};

function walk(s: Schema, path: string, visit: (s: Schema, path: string) => void) {
  visit(s, path);
  for (const [k, v] of Object.entries(s.properties ?? {})) walk(v, `${path}.${k}`, visit);
  if (s.items) walk(s.items, `${path}[]`, visit);
  if (s.additionalProperties && typeof s.additionalProperties === 'object') walk(s.additionalProperties, `${path}{}`, visit);
}

describe('BatchPrediction CRD', () => {
  it('is committed exactly as the schema generates it, in crds/ and in the chart (run `npm run gen` after changing the schema)', () => {
    expect(committed).toBe(batchPredictionCrdYaml());
    expect(readFileSync(join(ROOT, 'charts/modelship/crds', BATCH_CRD_FILE), 'utf8')).toBe(committed);
  });

  it('has its field reference (docs/batchprediction.md) generated from the same schema', () => {
    const doc = readFileSync(join(ROOT, 'docs/batchprediction.md'), 'utf8');
    expect(doc).toBe(batchReferenceMarkdown());
    expect(doc).toContain('| `input.uri` (required) | string |');
    expect(doc).toContain('| `columns` | map[string][]string |');
    expect(doc).toContain('spec is immutable');
  });

  it('is structural: a type on every node, no patternProperties, and a description on every spec field', () => {
    const root = batchPredictionCrd().spec.versions[0]?.schema.openAPIV3Schema as unknown as Schema;
    walk(root, 'root', (s, path) => {
      expect(s.patternProperties, path).toBeUndefined();
      if (!s.anyOf) expect(s.type, path).toBeDefined();
    });
    walk(root.properties?.spec as Schema, 'spec', (s, path) => {
      if (!path.endsWith('[]') && !path.endsWith('{}'))
        expect(s.description, `${path} needs a description for kubectl explain`).toBeTruthy();
    });
  });

  it('names, short name, category, status subresource and progress columns', () => {
    const crd = parse(committed);
    expect(crd.metadata.name).toBe('batchpredictions.modelship.dev');
    expect(crd.spec.names).toMatchObject({
      kind: 'BatchPrediction',
      plural: 'batchpredictions',
      shortNames: ['bp'],
      categories: ['modelship'],
    });
    const version = crd.spec.versions[0];
    expect(version.subresources).toEqual({ status: {} });
    expect(version.additionalPrinterColumns.filter((c: { priority?: number }) => !c.priority).map((c: { name: string }) => c.name)).toEqual(
      ['Phase', 'Done', 'Total', 'Shards', 'Rows/s', 'Age'],
    );
    const spec = version.schema.openAPIV3Schema.properties.spec;
    expect(spec.required.sort()).toEqual([
      'backoffLimitPerIndex',
      'batchSize',
      'input',
      'maxRowErrors',
      'model',
      'output',
      'parallelism',
      'rowsPerShard',
    ]);
    expect(spec.properties.parallelism).toMatchObject({ default: 2, minimum: 1, maximum: 256 });
    expect(spec['x-kubernetes-validations'][0]).toMatchObject({ rule: 'self == oldSelf' });
  });
});
