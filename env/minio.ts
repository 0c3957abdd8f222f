// MinIO, the environment's object store: on 127.0.0.1, with root credentials made for this run (never
// printed; they are in .modelship/env.json, owner-only), no console, no update checks.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promisify } from 'node:util';
import { mkdir } from 'node:fs/promises';
import { type ProcessRecord, startProcess } from './process.ts';

export interface S3Info {
  endpoint: string;
  region: string;
  accessKey: string;
  secretKey: string;
  /** A user that reads every bucket and writes none: the keys pods get (the root keys stay with uploaders). */
  readOnly?: { accessKey: string; secretKey: string };
}

/**
 * Makes the read-only user for pods (policy: GetObject and ListBucket on every bucket) with env/minio-admin, MinIO's
 * own admin client, and returns its keys. Idempotent for a given user.
 */
export async function createReadOnlyUser(minioAdmin: string, s3: S3Info): Promise<{ accessKey: string; secretKey: string }> {
  const user = { accessKey: 'modelship-pods', secretKey: randomBytes(24).toString('base64url') };
  const child = promisify(execFile)(minioAdmin, ['read-only-user', user.accessKey, '-'], {
    env: { MINIO_ENDPOINT: new URL(s3.endpoint).host, MINIO_ROOT_USER: s3.accessKey, MINIO_ROOT_PASSWORD: s3.secretKey },
    timeout: 60_000,
  });
  child.child.stdin?.end(`${user.secretKey}\n`);
  await child;
  return user;
}

export async function startMinio(o: {
  bin: string;
  dataDir: string;
  logFile: string;
  port: number;
  consolePort: number;
}): Promise<{ process: ProcessRecord; s3: S3Info }> {
  const s3: S3Info = {
    endpoint: `http://127.0.0.1:${o.port}`,
    region: 'us-east-1',
    accessKey: `modelship-${randomBytes(4).toString('hex')}`,
    secretKey: randomBytes(24).toString('base64url'),
  };
  await mkdir(o.dataDir, { recursive: true });
  const process_ = startProcess({
    name: 'minio',
    command: o.bin,
    args: ['server', o.dataDir, '--address', `127.0.0.1:${o.port}`, '--console-address', `127.0.0.1:${o.consolePort}`, '--quiet'],
    env: {
      ...process.env,
      MINIO_ROOT_USER: s3.accessKey,
      MINIO_ROOT_PASSWORD: s3.secretKey,
      MINIO_REGION: s3.region,
      MINIO_BROWSER: 'off',
      MINIO_UPDATE: 'off',
      MINIO_CI_CD: '1',
    },
    logFile: o.logFile,
    dataDir: o.dataDir,
  });
  return { process: process_, s3 };
}

/** MinIO's readiness endpoint (cluster healthy, ready for requests). */
export const minioReadyUrl = (endpoint: string) => `${endpoint}/minio/health/ready`;
