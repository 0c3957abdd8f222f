// The frames the runtime and its Python workers exchange over dedicated pipes (the worker side is
// sdk/python/modelship/wire.py). A frame is `u32 body length | u32 JSON length` (little-endian), the JSON
// message, zero padding to a multiple of 8, then raw buffers, each padded to 8. A numeric array travels
// as `{"$nd": [dtype, shape, offset, nbytes]}` in the JSON (numpy's dtype string, e.g. `<f8`) and its
// bytes in the buffer region, so it arrives here as a typed array without a number ever being printed.
// The marker key is the wire's own: a message whose data (a client's input, a feedback body, a route's request)
// holds an object with a `$nd` key is refused with a 400, never read by the worker as an array of the frame.
// Pure, apart from the reader's state.
import { type ModelshipError, msError } from '../../errors.ts';
import type { TypedArray } from '../outputs.ts';

export const ND = '$nd';
const HEADER = 8;

/** A numeric array that came over the wire: its elements (row-major) and shape. */
export interface NdArray {
  data: TypedArray;
  shape: number[];
}

type TypedArrayCtor = { new (buffer: ArrayBuffer, byteOffset: number, length: number): TypedArray; BYTES_PER_ELEMENT: number };

const BY_DTYPE: Record<string, TypedArrayCtor> = {
  '<f8': Float64Array,
  '<f4': Float32Array,
  '<i8': BigInt64Array,
  '<i4': Int32Array,
  '<i2': Int16Array,
  '|i1': Int8Array,
  '<u8': BigUint64Array,
  '<u4': Uint32Array,
  '<u2': Uint16Array,
  '|u1': Uint8Array,
  '|b1': Uint8Array,
};

const DTYPE_OF: Record<string, string> = {
  Float64Array: '<f8',
  Float32Array: '<f4',
  BigInt64Array: '<i8',
  Int32Array: '<i4',
  Int16Array: '<i2',
  Int8Array: '|i1',
  BigUint64Array: '<u8',
  Uint32Array: '<u4',
  Uint16Array: '<u2',
  Uint8Array: '|u1',
  Uint8ClampedArray: '|u1',
};

const pad8 = (n: number) => (8 - (n % 8)) % 8;

function hasTypedArray(value: unknown, depth: number): boolean {
  if (ArrayBuffer.isView(value)) return true;
  if (depth > 3 || value === null || typeof value !== 'object') return false;
  if (Array.isArray(value)) {
    // Rows are arrays of objects; a long array of numbers holds no typed array.
    for (let i = 0; i < value.length && i < 64; i++) if (typeof value[i] === 'object' && hasTypedArray(value[i], depth + 1)) return true;
    return false;
  }
  for (const k in value as Record<string, unknown>) {
    if (hasTypedArray((value as Record<string, unknown>)[k], depth + 1)) return true;
  }
  return false;
}

/** Where the first object with the wire's marker key is in `message` (`rows[0].x`), or undefined. */
export function markerPath(message: unknown): string | undefined {
  // Iterative: a client's nesting is as deep as JSON allows, deeper than a recursion's stack.
  const stack: [unknown, string][] = [[message, '']];
  while (stack.length > 0) {
    const [value, path] = stack.pop() as [unknown, string];
    if (value === null || typeof value !== 'object' || ArrayBuffer.isView(value)) continue;
    if (Array.isArray(value)) {
      for (let i = value.length - 1; i >= 0; i--) stack.push([value[i], `${path}[${i}]`]);
      continue;
    }
    if (Object.hasOwn(value, ND)) return path ? `${path}.${ND}` : ND;
    const keys = Object.keys(value);
    for (let i = keys.length - 1; i >= 0; i--) {
      const k = keys[i] as string;
      stack.push([(value as Record<string, unknown>)[k], path ? `${path}.${k}` : k]);
    }
  }
  return undefined;
}

function reservedKey(path: string): ModelshipError {
  return msError('MS_ERR_REQUEST_INVALID', {
    detail: `the key "${ND}" (at ${path}) is reserved: it marks numeric arrays on the way to the Python workers; rename it`,
  });
}

/** Thrown out of JSON.stringify when the replacer meets a marker key that is not its own. */
const MARKER_FOUND = new Error('marker');

/**
 * A message → one frame. Typed arrays anywhere in it go as raw buffers. A message holding an object with the
 * marker key (`$nd`) is refused with MS_ERR_REQUEST_INVALID (a 400): the worker would read it as an array.
 */
export function encodeFrame(message: unknown): Buffer {
  const buffers: Uint8Array[] = [];
  let size = 0;
  const replacer = (_key: string, value: unknown) => {
    if (!ArrayBuffer.isView(value) || value instanceof DataView) {
      // The markers this replacer makes are never passed back to it: any other one is the message's own.
      if (value !== null && typeof value === 'object' && !Array.isArray(value) && Object.hasOwn(value, ND)) throw MARKER_FOUND;
      return value;
    }
    const dtype = DTYPE_OF[value.constructor.name];
    if (!dtype) return Array.from(value as unknown as ArrayLike<number>);
    const bytes = new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
    const offset = size;
    buffers.push(bytes);
    size += bytes.byteLength + pad8(bytes.byteLength);
    return { [ND]: [dtype, [(value as TypedArray).length], offset, bytes.byteLength] };
  };
  let text: string;
  if (hasTypedArray(message, 0)) {
    try {
      text = JSON.stringify(message, replacer);
    } catch (err) {
      if (err === MARKER_FOUND) throw reservedKey(markerPath(message) ?? ND);
      throw err;
    }
  } else {
    text = JSON.stringify(message);
    // Without arrays of its own a frame holds no marker: one in the text is the message's (a key, as `"$nd":`
    // only ends a key; the walk makes sure, and names where).
    if (text.includes(`"${ND}":`)) {
      const path = markerPath(message);
      if (path !== undefined) throw reservedKey(path);
    }
  }
  const jsonLength = Buffer.byteLength(text, 'utf8');
  const region = buffers.length ? jsonLength + pad8(jsonLength) : jsonLength;
  const frame = Buffer.allocUnsafe(HEADER + region + size);
  frame.writeUInt32LE(region + size, 0);
  frame.writeUInt32LE(jsonLength, 4);
  frame.write(text, HEADER, 'utf8');
  if (buffers.length) {
    frame.fill(0, HEADER + jsonLength, HEADER + region);
    let at = HEADER + region;
    for (const b of buffers) {
      frame.set(b, at);
      const pad = pad8(b.byteLength);
      if (pad) frame.fill(0, at + b.byteLength, at + b.byteLength + pad);
      at += b.byteLength + pad;
    }
  }
  return frame;
}

function revive(value: unknown, region: ArrayBuffer, depth: number): unknown {
  if (value === null || typeof value !== 'object' || depth > 6) return value;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const v = value[i];
      if (v !== null && typeof v === 'object') value[i] = revive(v, region, depth + 1);
    }
    return value;
  }
  const obj = value as Record<string, unknown>;
  const spec = obj[ND];
  if (Array.isArray(spec)) {
    const [dtype, shape, offset, nbytes] = spec as [string, number[], number, number];
    const Ctor = BY_DTYPE[dtype];
    if (!Ctor || offset % 8 !== 0 || offset + nbytes > region.byteLength || nbytes % Ctor.BYTES_PER_ELEMENT !== 0) {
      throw msError('MS_ERR_WORKER_PROTOCOL', { detail: `bad array ${JSON.stringify(spec)}` });
    }
    return { data: new Ctor(region, offset, nbytes / Ctor.BYTES_PER_ELEMENT), shape } satisfies NdArray;
  }
  for (const k in obj) {
    const v = obj[k];
    if (v !== null && typeof v === 'object') obj[k] = revive(v, region, depth + 1);
  }
  return obj;
}

export function isNdArray(v: unknown): v is NdArray {
  return v !== null && typeof v === 'object' && 'data' in v && 'shape' in v && ArrayBuffer.isView((v as NdArray).data);
}

/** Decodes one frame's body (without its 8-byte header). */
export function decodeBody(body: Buffer, jsonLength: number): unknown {
  const message = JSON.parse(body.toString('utf8', 0, jsonLength)) as unknown;
  const start = jsonLength + pad8(jsonLength);
  if (body.length <= start) return message;
  // A copy, so every array starts on its element size within a fresh ArrayBuffer.
  const region = new Uint8Array(body.length - start);
  region.set(body.subarray(start));
  return revive(message, region.buffer, 0);
}

/** Cuts a byte stream into frames. */
export class FrameReader {
  private chunks: Buffer[] = [];
  private length = 0;
  private readonly maxFrameBytes: number;

  constructor(maxFrameBytes: number) {
    this.maxFrameBytes = maxFrameBytes;
  }

  /** Adds bytes; returns the messages completed by them, in order. */
  push(chunk: Buffer): unknown[] {
    this.chunks.push(chunk);
    this.length += chunk.length;
    const out: unknown[] = [];
    while (this.length >= HEADER) {
      const head = this.peek(HEADER);
      const bodyLength = head.readUInt32LE(0);
      const jsonLength = head.readUInt32LE(4);
      if (bodyLength > this.maxFrameBytes || jsonLength > bodyLength) {
        throw msError('MS_ERR_WORKER_PROTOCOL', {
          detail: `frame of ${bodyLength} bytes (JSON ${jsonLength}); limit ${this.maxFrameBytes}`,
        });
      }
      if (this.length < HEADER + bodyLength) break;
      const frame = this.take(HEADER + bodyLength);
      out.push(decodeBody(frame.subarray(HEADER), jsonLength));
    }
    return out;
  }

  private peek(n: number): Buffer {
    const first = this.chunks[0] as Buffer;
    if (first.length >= n) return first;
    const joined = Buffer.concat(this.chunks);
    this.chunks = [joined];
    return joined;
  }

  private take(n: number): Buffer {
    const all = this.chunks.length === 1 ? (this.chunks[0] as Buffer) : Buffer.concat(this.chunks, this.length);
    const frame = all.subarray(0, n);
    const rest = all.subarray(n);
    this.chunks = rest.length ? [rest] : [];
    this.length = rest.length;
    return frame;
  }
}
