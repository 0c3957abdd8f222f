// Uploading a bundle archive to S3-compatible storage, hashing it as it streams, with a progress bar.
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { Transform } from 'node:stream';
import { SingleBar } from 'cli-progress';
import { minioClientFor, type S3Settings } from '../runtime/bundle/fetch.ts';
import { parseBundleUri } from '../runtime/bundle/uri.ts';

export interface PushOptions {
  createBucket?: boolean;
  progress?: boolean;
  /** Where progress goes when stderr is not a terminal (no bar): a line each time another quarter is sent. */
  onProgress?: (line: string) => void;
}

export async function pushBundle(file: string, uri: string, s3: S3Settings, opts: PushOptions = {}) {
  const loc = parseBundleUri(uri);
  if (loc.kind !== 's3') throw new Error(`push needs an s3://bucket/key destination, got ${loc.display}`);
  const { size } = await stat(file);
  const client = minioClientFor(s3);
  if (!(await client.bucketExists(loc.bucket))) {
    if (!opts.createBucket) throw new Error(`bucket ${loc.bucket} does not exist (pass --create-bucket to create it)`);
    await client.makeBucket(loc.bucket, s3.region);
  }
  const hash = createHash('sha256');
  const bar =
    opts.progress === false || !process.stderr.isTTY
      ? undefined
      : new SingleBar({ format: 'uploading [{bar}] {percentage}% {value}/{total} bytes', stream: process.stderr });
  bar?.start(size, 0);
  let sent = 0;
  let quarter = 0;
  const lines = bar || opts.progress === false ? undefined : opts.onProgress;
  const meter = new Transform({
    transform(chunk: Buffer, _e, cb) {
      hash.update(chunk);
      sent += chunk.length;
      bar?.update(sent);
      const reached = size > 0 ? Math.min(4, Math.floor((sent * 4) / size)) : 4;
      if (lines && reached > quarter) {
        quarter = reached;
        lines(`uploading: ${quarter * 25}% (${sent} of ${size} bytes)`);
      }
      cb(null, chunk);
    },
  });
  try {
    await client.putObject(loc.bucket, loc.key, createReadStream(file).pipe(meter), size, { 'Content-Type': 'application/zip' });
  } finally {
    bar?.stop();
  }
  return { uri: `s3://${loc.bucket}/${loc.key}`, sha256: hash.digest('hex'), bytes: size };
}
