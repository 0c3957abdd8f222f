// The runtime → recorder sidecar frames: values travel as bytes, any chunking reads the same, and a frame that
// lies about its sizes is refused rather than read past its end.
import { describe, expect, it } from 'vitest';
import { BatchReader, encodeBatch, MAX_FRAME_BYTES } from '../../runtime/inference-log/recorder-wire.ts';

const batch = {
  id: 7,
  records: [
    { topic: 'modelship.ml.iris.inference', key: 'req-1', value: JSON.stringify({ outputs: ['setosa'], note: 'é ✓ "q"\n' }) },
    { topic: 'events', key: 'req-2', value: '' },
  ],
};

/** What the recorder reads: the same records, each value as its bytes. */
const received = (b: typeof batch) => ({ id: b.id, records: b.records.map((r) => ({ ...r, value: Buffer.from(r.value) })) });

describe('recorder frames', () => {
  it('round-trip a batch whatever the chunking, several frames in one chunk too', () => {
    const frame = encodeBatch(batch);
    for (const size of [1, 3, 17, frame.length]) {
      const reader = new BatchReader();
      const out = [];
      for (let at = 0; at < frame.length; at += size) out.push(...reader.push(frame.subarray(at, at + size)));
      expect(out).toEqual([received(batch)]);
    }
    expect(new BatchReader().push(Buffer.concat([frame, encodeBatch({ id: 8, records: [] }), frame]))).toEqual([
      received(batch),
      { id: 8, records: [] },
      received(batch),
    ]);
  });

  it('refuse oversized frames and headers or values that point past the frame', () => {
    const big = Buffer.alloc(8);
    big.writeUInt32LE(MAX_FRAME_BYTES + 1, 0);
    expect(() => new BatchReader().push(big)).toThrow(/frame of/);
    const frame = encodeBatch(batch);
    const lying = Buffer.from(frame);
    lying.writeUInt32LE(frame.length, 4); // header length past the end
    expect(() => new BatchReader().push(lying)).toThrow(/header past its end/);
    const header = Buffer.from(JSON.stringify({ id: 1, topics: ['t'], keys: ['k'], sizes: [999] }));
    const prefix = Buffer.alloc(8);
    prefix.writeUInt32LE(4 + header.length, 0);
    prefix.writeUInt32LE(header.length, 4);
    expect(() => new BatchReader().push(Buffer.concat([prefix, header]))).toThrow(/values past its end/);
    for (const size of [null, 1.5, -1, '3']) {
      const odd = Buffer.from(JSON.stringify({ id: 1, topics: ['t'], keys: ['k'], sizes: [size] }));
      prefix.writeUInt32LE(4 + odd.length + 3, 0);
      prefix.writeUInt32LE(odd.length, 4);
      expect(() => new BatchReader().push(Buffer.concat([prefix, odd, Buffer.from('abc')])), String(size)).toThrow(/values past its end/);
    }
    const notJson = Buffer.from('{"id":1,"topics":["t"]}');
    prefix.writeUInt32LE(4 + notJson.length, 0);
    prefix.writeUInt32LE(notJson.length, 4);
    expect(() => new BatchReader().push(Buffer.concat([prefix, notJson]))).toThrow(/malformed/);
  });
});
