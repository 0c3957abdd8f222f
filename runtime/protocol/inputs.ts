// Rows checked against a model's declared inputs (manifest, plugin metadata, or what a Python estimator
// reports), before any plugin code runs: every declared input present, no other, each of its declared
// shape (the first dimension is the batch; -1 any length) and datatype. A failure is a 400
// MS_ERR_INPUT_INVALID naming the input and the instance. Compiled once per model. Pure.
import type { Datatype, TensorMetadata } from '../bundle/manifest.ts';
import { msError } from '../errors.ts';

export type InputCheck = (rows: Record<string, unknown>[]) => void;

type ElementCheck = (v: unknown) => boolean;

const isNumber: ElementCheck = (v) => typeof v === 'number' || typeof v === 'bigint';
const isInteger: ElementCheck = (v) => (typeof v === 'number' && Number.isInteger(v)) || typeof v === 'bigint';

function elementCheck(datatype: Datatype): { ok: ElementCheck; want: string } {
  switch (datatype) {
    case 'BOOL':
      return { ok: (v) => typeof v === 'boolean', want: 'true or false' };
    case 'BYTES':
      return { ok: (v) => typeof v === 'string', want: 'a string' };
    case 'FP16':
    case 'FP32':
    case 'FP64':
      return { ok: isNumber, want: 'a number' };
    default:
      return { ok: isInteger, want: 'an integer' };
  }
}

const describeValue = (v: unknown) =>
  Array.isArray(v) ? `an array of ${v.length}` : v === null ? 'null' : typeof v === 'object' ? 'an object' : JSON.stringify(v);

function checkValue(name: string, row: number, dims: number[], el: { ok: ElementCheck; want: string }, v: unknown, depth = 0): void {
  const bad = (detail: string) => msError('MS_ERR_INPUT_INVALID', { detail: `input "${name}" (instance ${row}) ${detail}` });
  if (depth === dims.length) {
    if (!el.ok(v)) throw bad(`holds ${describeValue(v)} where the model declares ${el.want}`);
    return;
  }
  const want = dims[depth] as number;
  if (ArrayBuffer.isView(v) && !(v instanceof DataView) && depth === dims.length - 1) {
    const n = (v as unknown as ArrayLike<unknown>).length;
    if (want >= 0 && n !== want) throw bad(`has ${n} values; the model declares ${want}`);
    if (el.want === 'a string' || el.want === 'true or false') throw bad(`is numeric; the model declares ${el.want}`);
    return;
  }
  if (!Array.isArray(v)) {
    throw bad(
      `is ${describeValue(v)}; the model declares shape [${['-1', ...dims].join(', ')}] (${dims.length} dimension${dims.length === 1 ? '' : 's'} per instance)`,
    );
  }
  if (want >= 0 && v.length !== want)
    throw bad(`has ${v.length} values${depth ? ` at depth ${depth + 1}` : ''}; the model declares ${want}`);
  for (const item of v) checkValue(name, row, dims, el, item, depth + 1);
}

export function compileInputCheck(declared: readonly TensorMetadata[]): InputCheck {
  const specs = declared.map((d) => ({ name: d.name, dims: d.shape.slice(1), el: elementCheck(d.datatype) }));
  const names = new Set(specs.map((s) => s.name));
  const list = specs.map((s) => s.name).join(', ');
  return (rows) => {
    for (let r = 0; r < rows.length; r++) {
      const row = rows[r] as Record<string, unknown>;
      for (const key in row) {
        if (!names.has(key))
          throw msError('MS_ERR_INPUT_INVALID', { detail: `input "${key}" (instance ${r}) is not one of the model's inputs (${list})` });
      }
      for (const s of specs) {
        if (!(s.name in row))
          throw msError('MS_ERR_INPUT_INVALID', {
            detail: `input "${s.name}" is missing from instance ${r} (the model's inputs: ${list})`,
          });
        checkValue(s.name, r, s.dims, s.el, row[s.name]);
      }
    }
  };
}
