// Validation of what a plugin returns, against the contract: an object whose keys are output names and whose
// values are numbers, strings, booleans, bigints, 1-D arrays of one of those, or typed arrays. Pure.
import { msError } from '../errors.ts';

export type TypedArray =
  | Float32Array
  | Float64Array
  | Int8Array
  | Int16Array
  | Int32Array
  | Uint8Array
  | Uint16Array
  | Uint32Array
  | BigInt64Array
  | BigUint64Array;

export type OutputValue = number | string | boolean | bigint | number[] | string[] | boolean[] | bigint[] | TypedArray;
export type Outputs = Record<string, OutputValue>;

function kindOf(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  if (ArrayBuffer.isView(v)) return v.constructor.name;
  if (typeof v === 'object') return v.constructor?.name && v.constructor !== Object ? v.constructor.name : 'object';
  return typeof v;
}

function checkScalar(key: string, v: unknown, where: string): 'number' | 'string' | 'boolean' | 'bigint' {
  switch (typeof v) {
    case 'number':
      if (!Number.isFinite(v))
        throw msError('MS_ERR_OUTPUT_INVALID', { detail: `output "${key}"${where} is ${v}, which JSON cannot carry` });
      return 'number';
    case 'string':
      return 'string';
    case 'boolean':
      return 'boolean';
    case 'bigint':
      return 'bigint';
    default:
      throw msError('MS_ERR_OUTPUT_INVALID', {
        detail: `output "${key}"${where} is ${kindOf(v)}; expected number, string, boolean, or an array or typed array of them`,
      });
  }
}

/** Throws MS_ERR_OUTPUT_INVALID naming the offending key and type; returns the outputs typed. */
export function validateOutputs(value: unknown, row?: number): Outputs {
  const at = row === undefined ? '' : ` (instance ${row})`;
  if (value === null || typeof value !== 'object' || Array.isArray(value) || ArrayBuffer.isView(value)) {
    throw msError('MS_ERR_OUTPUT_INVALID', {
      detail: `predict returned ${kindOf(value)}${at}; expected an object mapping output names to values`,
    });
  }
  const entries = Object.entries(value as Record<string, unknown>);
  if (entries.length === 0) throw msError('MS_ERR_OUTPUT_INVALID', { detail: `predict returned an empty object${at}` });
  for (const [key, v] of entries) {
    if (ArrayBuffer.isView(v)) {
      if (v instanceof DataView || (typeof Float16Array !== 'undefined' && v instanceof Float16Array)) {
        throw msError('MS_ERR_OUTPUT_INVALID', { detail: `output "${key}"${at} is ${kindOf(v)}, which is not supported` });
      }
      continue;
    }
    if (Array.isArray(v)) {
      let first: string | undefined;
      for (let i = 0; i < v.length; i++) {
        const t = checkScalar(key, v[i], `${at} element ${i}`);
        if (first === undefined) first = t;
        else if (t !== first) {
          throw msError('MS_ERR_OUTPUT_INVALID', {
            detail: `output "${key}"${at} mixes ${first} and ${t} (element ${i}); an array holds one type`,
          });
        }
      }
      continue;
    }
    checkScalar(key, v, at);
  }
  return value as Outputs;
}
