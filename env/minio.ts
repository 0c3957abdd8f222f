// MinIO, the environment's object store: on 127.0.0.1, with root credentials made for this run (never
// printed; they are in .modelship/env.json, owner-only), no console, no update checks.
import { randomBytes } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import { type ProcessRecord, startProcess } from './process.ts';

export interface S3Info {
  endpoint: string;
  region: string;
  accessKey: string;
  secretKey: string;
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
