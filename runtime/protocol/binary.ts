// The binary tensor data extension of OIP v2 REST (Triton's and KServe's): tensor bytes after the JSON
// header, in little-endian row-major order without padding; BOOL one byte per element, BYTES a 4-byte
// little-endian length before each element. Pure: raw bytes ↔ typed arrays / strings.
import { type Datatype, DATATYPES } from '../bundle/manifest.ts';
import { msError } from '../errors.ts';
import type { TypedArray } from '../engines/outputs.ts';

type NumericCtor = { new (buffer: ArrayBuffer, byteOffset: number, length: number): TypedArray; BYTES_PER_ELEMENT: number };

const NUMERIC: Partial<Record<Datatype, NumericCtor>> = {
  UINT8: Uint8Array,
  UINT16: Uint16Array,
  UINT32: Uint32Array,
  UINT64: BigUint64Array,
  INT8: Int8Array,
  INT16: Int16Array,
  INT32: Int32Array,
  INT64: BigInt64Array,
  FP32: Float32Array,
  FP64: Float64Array,
};

const DATATYPE_SET = new Set<string>(DATATYPES);
const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Bytes per element of a fixed-size datatype (BYTES has none). */
export function elementSize(datatype: Datatype): number | undefined {
  if (datatype === 'BOOL') return 1;
  if (datatype === 'FP16') return 2;
  return NUMERIC[datatype]?.BYTES_PER_ELEMENT;
}

/** The elements of one binary input: a typed array, booleans, or strings. Refuses bytes that disagree
 * with the shape, invalid UTF-8 and FP16 (which JavaScript cannot hold), each naming the input. */
export function decodeBinary(name: string, datatype: string, count: number, bytes: Uint8Array): TypedArray | boolean[] | string[] {
  if (!DATATYPE_SET.has(datatype)) throw msError('MS_ERR_TENSOR_DATATYPE', { name, datatype: JSON.stringify(datatype) });
  const dt = datatype as Datatype;
  const bad = (detail: string) => msError('MS_ERR_TENSOR_DATA', { name, detail });
  if (dt === 'BYTES') {
    const out: string[] = new Array(count);
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    let at = 0;
    for (let i = 0; i < count; i++) {
      if (at + 4 > bytes.byteLength) throw bad(`binary data ends inside element ${i} of ${count}`);
      const len = view.getUint32(at, true);
      at += 4;
      if (at + len > bytes.byteLength) throw bad(`binary element ${i} declares ${len} bytes; only ${bytes.byteLength - at} remain`);
      try {
        out[i] = utf8.decode(bytes.subarray(at, at + len));
      } catch {
        throw bad(`binary element ${i} is not valid UTF-8`);
      }
      at += len;
    }
    if (at !== bytes.byteLength) throw bad(`binary data holds ${bytes.byteLength - at} bytes beyond its ${count} elements`);
    return out;
  }
  const size = elementSize(dt) as number;
  if (bytes.byteLength !== count * size) {
    throw bad(`binary_data_size is ${bytes.byteLength} bytes; the shape needs ${count} × ${size} = ${count * size}`);
  }
  if (dt === 'FP16') throw bad('FP16 is not supported; send FP32');
  if (dt === 'BOOL') {
    const out: boolean[] = new Array(count);
    for (let i = 0; i < count; i++) out[i] = bytes[i] !== 0;
    return out;
  }
  const Ctor = NUMERIC[dt] as NumericCtor;
  // A copy, aligned for the element size, and owned by this request (the body's buffer may be pooled).
  const copy = new Uint8Array(bytes.byteLength);
  copy.set(bytes);
  return new Ctor(copy.buffer, 0, count);
}

/** One output's elements as binary bytes. */
export function encodeBinary(name: string, datatype: Datatype, data: ArrayLike<unknown>): Uint8Array {
  if (datatype === 'BYTES') {
    const parts = Array.from(data, (v) => Buffer.from(String(v), 'utf8'));
    const out = Buffer.alloc(parts.reduce((n, p) => n + 4 + p.length, 0));
    let at = 0;
    for (const p of parts) {
      out.writeUInt32LE(p.length, at);
      p.copy(out, at + 4);
      at += 4 + p.length;
    }
    return out;
  }
  if (datatype === 'BOOL') return Uint8Array.from(data as ArrayLike<unknown>, (v) => (v ? 1 : 0));
  const Ctor = NUMERIC[datatype];
  if (!Ctor) throw msError('MS_ERR_OUTPUT_INVALID', { detail: `output "${name}" is ${datatype}, which cannot be sent as binary` });
  if (ArrayBuffer.isView(data) && data.constructor === Ctor) {
    const t = data as unknown as TypedArray;
    return new Uint8Array(t.buffer, t.byteOffset, t.byteLength);
  }
  const big = Ctor === BigInt64Array || Ctor === BigUint64Array;
  const arr = new Ctor(new ArrayBuffer(data.length * Ctor.BYTES_PER_ELEMENT), 0, data.length);
  for (let i = 0; i < data.length; i++) {
    const v = data[i];
    (arr as unknown as unknown[])[i] = big ? (typeof v === 'bigint' ? v : BigInt(Math.trunc(Number(v)))) : Number(v);
  }
  return new Uint8Array(arr.buffer);
}
