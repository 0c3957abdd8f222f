// The runtime → recorder sidecar protocol over the pod's Unix socket. A batch is one frame:
// `u32 frame length | u32 header length | header JSON | the values' bytes, back to back` (little-endian), the
// header `{id, topics, keys, sizes}`; the values travel as they are, never escaped into JSON again. The recorder
// answers each batch with one JSON line: `{id, ok: true, refused}` (records of topics it does not allow are
// refused, not sent) or `{id, ok: false, message, unknownTopic?}`. Pure.

export interface WireRecord {
  topic: string;
  key: string;
  value: string;
}

/** A batch as the runtime writes it. */
export interface WireBatch {
  id: number;
  records: WireRecord[];
}

/** A batch as the recorder reads it: each value the bytes that came, never decoded (Kafka takes bytes). */
export interface ReceivedBatch {
  id: number;
  records: { topic: string; key: string; value: Buffer }[];
}

export type WireReply =
  | { id: number; ok: true; refused: number; refusedTopics?: string[] }
  | { id: number; ok: false; message: string; unknownTopic?: string };

/** Frames beyond this are a protocol error (the runtime's batches are bounded far below). */
export const MAX_FRAME_BYTES = 64 * 1024 * 1024;

/** One frame in one buffer: each value encoded once, straight into place. */
export function encodeBatch(batch: WireBatch): Buffer {
  const sizes = batch.records.map((r) => Buffer.byteLength(r.value, 'utf8'));
  const header = JSON.stringify({ id: batch.id, topics: batch.records.map((r) => r.topic), keys: batch.records.map((r) => r.key), sizes });
  const headerLength = Buffer.byteLength(header, 'utf8');
  const total = 4 + headerLength + sizes.reduce((n, v) => n + v, 0);
  const frame = Buffer.allocUnsafe(4 + total);
  frame.writeUInt32LE(total, 0);
  frame.writeUInt32LE(headerLength, 4);
  let at = 8 + frame.write(header, 8, 'utf8');
  for (const r of batch.records) at += frame.write(r.value, at, 'utf8');
  return frame;
}

/** Reads frames from a byte stream, whatever its chunking. */
export class BatchReader {
  private chunks: Buffer[] = [];
  private size = 0;

  /** The batches completed by `chunk`; throws on a malformed or oversized frame. */
  push(chunk: Buffer): ReceivedBatch[] {
    this.chunks.push(chunk);
    this.size += chunk.length;
    const out: ReceivedBatch[] = [];
    for (;;) {
      if (this.size < 4) return out;
      const buf = this.chunks.length === 1 ? (this.chunks[0] as Buffer) : Buffer.concat(this.chunks);
      this.chunks = [buf];
      const total = buf.readUInt32LE(0);
      if (total > MAX_FRAME_BYTES || total < 4) throw new Error(`recorder frame of ${total} bytes`);
      if (buf.length < 4 + total) return out;
      out.push(decodeFrame(buf.subarray(4, 4 + total)));
      const rest = buf.subarray(4 + total);
      this.chunks = rest.length ? [rest] : [];
      this.size = rest.length;
    }
  }
}

function decodeFrame(frame: Buffer): ReceivedBatch {
  const headerLength = frame.readUInt32LE(0);
  if (headerLength > frame.length - 4) throw new Error('recorder frame header past its end');
  const header = JSON.parse(frame.subarray(4, 4 + headerLength).toString('utf8')) as {
    id: unknown;
    topics: unknown;
    keys: unknown;
    sizes: unknown;
  };
  const { id, topics, keys, sizes } = header;
  if (
    typeof id !== 'number' ||
    !Array.isArray(topics) ||
    !Array.isArray(keys) ||
    !Array.isArray(sizes) ||
    topics.length !== keys.length ||
    topics.length !== sizes.length
  ) {
    throw new Error('recorder frame header is malformed');
  }
  const records: ReceivedBatch['records'] = [];
  let at = 4 + headerLength;
  for (let i = 0; i < topics.length; i++) {
    const size = sizes[i];
    if (!Number.isSafeInteger(size) || (size as number) < 0 || at + (size as number) > frame.length) {
      throw new Error('recorder frame values past its end');
    }
    // A copy of its own: the frame's buffer is reused for the next chunks.
    records.push({ topic: String(topics[i]), key: String(keys[i]), value: Buffer.from(frame.subarray(at, at + size)) });
    at += size;
  }
  return { id, records };
}
