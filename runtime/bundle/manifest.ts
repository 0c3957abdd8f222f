// The optional bundle manifest `modelship.yaml`, validated with a TypeBox schema, and format detection for
// bundles without one.
import { existsSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import Type, { type Static } from 'typebox';
import { Compile } from 'typebox/compile';
import { parse as parseYaml, YAMLParseError } from 'yaml';
import { BUNDLE_FORMATS, type BundleFormat } from '../contract.ts';
import { msError } from '../errors.ts';
import { describeSchemaErrors } from '../schema-errors.ts';

export const MANIFEST_FILE = 'modelship.yaml';

export const DATATYPES = [
  'BOOL',
  'UINT8',
  'UINT16',
  'UINT32',
  'UINT64',
  'INT8',
  'INT16',
  'INT32',
  'INT64',
  'FP16',
  'FP32',
  'FP64',
  'BYTES',
] as const;
export type Datatype = (typeof DATATYPES)[number];

const TensorMeta = Type.Object(
  {
    name: Type.String({ minLength: 1, maxLength: 256, description: 'Tensor name (the key in the plugin input/output)' }),
    datatype: Type.Enum([...DATATYPES], { description: 'OIP datatype' }),
    shape: Type.Array(Type.Integer({ minimum: -1 }), {
      maxItems: 32,
      description: 'Shape; -1 for a variable dimension. The first dimension is the batch.',
    }),
  },
  { additionalProperties: false },
);

export const ManifestSchema = Type.Object(
  {
    name: Type.Optional(
      Type.String({ pattern: '^[a-z0-9]([-a-z0-9_.]{0,61}[a-z0-9])?$', description: 'Model name (default: the server config)' }),
    ),
    version: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
    description: Type.Optional(Type.String({ maxLength: 4096 })),
    format: Type.Optional(Type.Enum([...BUNDLE_FORMATS])),
    entrypoint: Type.Optional(
      Type.String({
        minLength: 1,
        maxLength: 256,
        pattern: '^[^/\\\\:][^\\\\:]*(:[A-Za-z_][A-Za-z0-9_]*)?$',
        description: 'Plugin file, relative; for Python `file.py:Name` names the class (or a Ray deployment function)',
      }),
    ),
    inputs: Type.Optional(Type.Array(TensorMeta, { maxItems: 256 })),
    outputs: Type.Optional(Type.Array(TensorMeta, { maxItems: 256 })),
    batching: Type.Optional(
      Type.Object(
        {
          maxBatchSize: Type.Optional(Type.Integer({ minimum: 1, maximum: 65536 })),
          maxLatencyMs: Type.Optional(Type.Integer({ minimum: 0, maximum: 60000 })),
        },
        { additionalProperties: false },
      ),
    ),
    parameters: Type.Optional(
      Type.Record(Type.String(), Type.Unknown(), {
        description: "Passed to init() as ctx.parameters; a Python Ray deployment class's constructor keyword arguments",
      }),
    ),
  },
  { additionalProperties: false },
);

export type Manifest = Static<typeof ManifestSchema>;
export type TensorMetadata = Static<typeof TensorMeta>;
export type { BundleFormat };

const validator = Compile(ManifestSchema);

/** Parses and validates manifest text. Pure. */
export function parseManifest(text: string): Manifest {
  let doc: unknown;
  try {
    doc = parseYaml(text, { prettyErrors: true, maxAliasCount: 100 });
  } catch (err) {
    const detail = err instanceof YAMLParseError ? err.message.split('\n')[0] : String(err);
    throw msError('MS_ERR_MANIFEST_PARSE', { detail: detail ?? 'unknown error' });
  }
  if (doc === null || doc === undefined) doc = {};
  if (typeof doc !== 'object' || Array.isArray(doc)) {
    throw msError('MS_ERR_MANIFEST_INVALID', { detail: 'the document must be a mapping' });
  }
  if (!validator.Check(doc)) {
    throw msError('MS_ERR_MANIFEST_INVALID', { detail: describeSchemaErrors(validator.Errors(doc)) });
  }
  return doc as Manifest;
}

const DETECT: [string, BundleFormat][] = [
  ['predict.mjs', 'js'],
  ['predict.js', 'js'],
  ['model.onnx', 'onnx'],
  ['predict.py', 'python'],
  ['model.joblib', 'python'],
  ['model.pkl', 'python'],
];

export interface ResolvedBundle {
  dir: string;
  manifest: Manifest;
  format: BundleFormat;
  /** Entrypoint file relative to `dir` (Python: `file.py:Class` may name the class). */
  entrypoint: string;
}

/** Reads `modelship.yaml` if present and works out the format and entrypoint. */
export async function resolveBundle(dir: string): Promise<ResolvedBundle> {
  const manifestPath = join(dir, MANIFEST_FILE);
  const manifest = existsSync(manifestPath) ? parseManifest(await readFile(manifestPath, 'utf8')) : {};
  if (manifest.entrypoint) {
    const file = entrypointFile(manifest.entrypoint);
    if (file.split('/').includes('..')) {
      throw msError('MS_ERR_MANIFEST_INVALID', { detail: `/entrypoint must stay inside the bundle, got ${manifest.entrypoint}` });
    }
    if (!existsSync(join(dir, file))) {
      throw msError('MS_ERR_MANIFEST_INVALID', { detail: `/entrypoint ${file} does not exist in the bundle` });
    }
  }
  if (manifest.format) {
    const entrypoint =
      manifest.entrypoint ??
      DETECT.find(([file, fmt]) => fmt === manifest.format && existsSync(join(dir, file)))?.[0] ??
      (manifest.format === 'python' ? await onlyScript(dir) : undefined);
    if (!entrypoint) {
      throw msError('MS_ERR_MANIFEST_INVALID', {
        detail: `format ${manifest.format} needs an entrypoint: set /entrypoint or add ${DETECT.filter(([, f]) => f === manifest.format)
          .map(([n]) => n)
          .join(' or ')}`,
      });
    }
    return { dir, manifest, format: manifest.format, entrypoint };
  }
  const byEntrypoint = manifest.entrypoint ? formatOfFile(manifest.entrypoint) : undefined;
  if (manifest.entrypoint && byEntrypoint) return { dir, manifest, format: byEntrypoint, entrypoint: manifest.entrypoint };
  for (const [file, format] of DETECT) {
    if (existsSync(join(dir, file))) return { dir, manifest, format, entrypoint: file };
  }
  const script = await onlyScript(dir);
  if (script) return { dir, manifest, format: 'python', entrypoint: script };
  throw msError('MS_ERR_BUNDLE_FORMAT_UNKNOWN');
}

/** A Hopsworks or ml-deploy script has any name: the bundle's only top-level .py file, if there is one. */
async function onlyScript(dir: string): Promise<string | undefined> {
  const scripts = (await readdir(dir)).filter((f) => f.endsWith('.py'));
  return scripts.length === 1 ? scripts[0] : undefined;
}

/** The file part of an entrypoint (`user_model.py:UserModel` → `user_model.py`). Pure. */
export function entrypointFile(entrypoint: string): string {
  const at = entrypoint.lastIndexOf(':');
  return at > 0 && /\.py$/.test(entrypoint.slice(0, at)) ? entrypoint.slice(0, at) : entrypoint;
}

function formatOfFile(entrypoint: string): BundleFormat | undefined {
  const file = entrypointFile(entrypoint);
  if (/\.(mjs|cjs|js)$/.test(file)) return 'js';
  if (file.endsWith('.onnx')) return 'onnx';
  if (/\.(py|joblib|pkl|pickle)$/.test(file)) return 'python';
  return undefined;
}
