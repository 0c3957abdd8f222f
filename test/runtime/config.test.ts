import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../runtime/config.ts';

const base = { MODELSHIP_BUNDLE_URI: 's3://b/k.zip' };

describe('loadConfig', () => {
  it('applies the contract defaults', () => {
    const c = loadConfig(base);
    expect(c).toMatchObject({
      modelName: 'model',
      port: 8080,
      host: '0.0.0.0',
      workers: 0,
      requestTimeoutMs: 30000,
      workDir: '/var/lib/modelship',
    });
    expect(c.s3).toEqual({ region: 'us-east-1' });
  });

  it('takes a CPU limit of 0 (a native sidecar without a limit) as none, and refuses a malformed one', () => {
    expect(loadConfig({ ...base, MODELSHIP_CPU_LIMIT: '0' }).cpuLimit).toBeUndefined();
    expect(loadConfig({ ...base, MODELSHIP_CPU_LIMIT: '2' }).cpuLimit).toBe(2);
    expect(() => loadConfig({ ...base, MODELSHIP_CPU_LIMIT: 'two' })).toThrow(/MODELSHIP_CPU_LIMIT/);
  });

  it('reads S3 credentials from files mounted from a Secret, trimmed', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'ms-cred-'));
    await writeFile(join(dir, 'access'), 'AKIA123\n');
    await writeFile(join(dir, 'secret'), 's3cr3t\n');
    const c = loadConfig({
      ...base,
      MODELSHIP_S3_ENDPOINT: 'http://minio:9000',
      MODELSHIP_S3_ACCESS_KEY_FILE: join(dir, 'access'),
      MODELSHIP_S3_SECRET_KEY_FILE: join(dir, 'secret'),
    });
    expect(c.s3).toEqual({ region: 'us-east-1', endpoint: 'http://minio:9000', accessKey: 'AKIA123', secretKey: 's3cr3t' });
  });

  it.each([
    [{}, 'MODELSHIP_BUNDLE_URI is not set'],
    [{ ...base, MODELSHIP_PORT: 'eighty' }, 'MODELSHIP_PORT must be a whole number in [0, 65535], got "eighty"'],
    [{ ...base, MODELSHIP_WORKERS: '-1' }, 'MODELSHIP_WORKERS must be a whole number in [0, 256]'],
    [{ ...base, MODELSHIP_MODEL_NAME: 'My Model' }, 'MODELSHIP_MODEL_NAME "My Model" must be lower-case'],
    [{ ...base, MODELSHIP_BUNDLE_SHA256: 'xyz' }, 'MODELSHIP_BUNDLE_SHA256 must be 64 hex digits'],
    [{ ...base, MODELSHIP_LOG_LEVEL: 'loud' }, 'MODELSHIP_LOG_LEVEL must be one of'],
    [{ ...base, MODELSHIP_S3_ENDPOINT: 'minio:9000' }, 'MODELSHIP_S3_ENDPOINT must be an http:// or https:// URL'],
    [
      { ...base, MODELSHIP_S3_SECRET_KEY_FILE: '/nonexistent/secret' },
      'MODELSHIP_S3_SECRET_KEY_FILE points at /nonexistent/secret, which cannot be read (ENOENT)',
    ],
  ])('refuses %j naming the variable', (env, message) => {
    expect(() => loadConfig(env)).toThrow(
      expect.objectContaining({ code: 'MS_ERR_CONFIG_INVALID', message: expect.stringContaining(message) }),
    );
  });

  it('never puts a secret value in its messages', () => {
    try {
      loadConfig({ ...base, MODELSHIP_S3_SECRET_KEY: 'hunter2', MODELSHIP_PORT: 'x' });
    } catch (err) {
      expect((err as Error).message).not.toContain('hunter2');
    }
    expect.assertions(1);
  });
});
