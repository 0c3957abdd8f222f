// The pure parts of `modelship deploy`: the profile, the ModelServing it applies, the no-write check, states.
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  canonical,
  describeState,
  desiredModelServing,
  failure,
  keyValues,
  noOperatorHint,
  resourceName,
  storageSecretName,
} from '../../cli/deploy.ts';
import { loadProfile, localEnvironment, localStorageProfile } from '../../cli/profile.ts';
import type { EnvInfo } from '../../env/info.ts';
import type { ModelServing } from '../../crds/modelserving.schema.ts';

describe('loadProfile', () => {
  it('reads storage from the file, each field overridden by the environment; no bucket is an error naming both', async () => {
    const file = join(await mkdtemp(join(tmpdir(), 'ms-profile-')), 'config.yaml');
    await writeFile(
      file,
      'storage:\n  endpoint: http://minio.local:9000\n  clusterEndpoint: http://minio.minio:9000\n  bucket: models\n  accessKey: a\n  secretKey: s\n',
    );
    expect(await loadProfile({}, file)).toEqual({
      endpoint: 'http://minio.local:9000',
      clusterEndpoint: 'http://minio.minio:9000',
      bucket: 'models',
      accessKey: 'a',
      secretKey: 's',
    });
    expect(await loadProfile({ MODELSHIP_BUCKET: 'other', AWS_SECRET_ACCESS_KEY: 'x' }, file)).toMatchObject({
      bucket: 'other',
      secretKey: 'x',
    });
    // No file and no bucket: missing, not invalid.
    await expect(loadProfile({}, '/nonexistent/config.yaml')).rejects.toMatchObject({
      code: 'MS_ERR_CLI_PROFILE_MISSING',
      message: expect.stringMatching(/^no modelship profile: \/nonexistent\/config\.yaml does not exist, \$MODELSHIP_BUCKET is not set/),
    });
    // A file without a bucket: invalid.
    const bare = join(await mkdtemp(join(tmpdir(), 'ms-profile-')), 'config.yaml');
    await writeFile(bare, 'storage:\n  endpoint: http://127.0.0.1:9000\n');
    await expect(loadProfile({}, bare)).rejects.toMatchObject({
      code: 'MS_ERR_CLI_PROFILE_INVALID',
      message: `the modelship profile ${bare} is invalid: no bucket for bundles: set storage.bucket in it, or $MODELSHIP_BUCKET`,
    });
  });

  it('a profile that is not YAML names the line and column, never the text (it may hold a key)', async () => {
    const file = join(await mkdtemp(join(tmpdir(), 'ms-profile-')), 'config.yaml');
    await writeFile(file, 'storage:\n  bucket: models\n  secretKey: SUPERSECRET: x\n');
    const err = await loadProfile({}, file).catch((e: Error) => e);
    expect(err).toMatchObject({ code: 'MS_ERR_CLI_PROFILE_INVALID' });
    expect((err as Error).message).toMatch(/is invalid: not valid YAML at line 3, column \d+$/);
    expect((err as Error).message).not.toContain('SUPERSECRET');
  });
});

describe('desiredModelServing', () => {
  const base = { name: 'iris', namespace: 'ml', uri: 's3://models/bundles/ab.zip', sha256: 'ab', secret: 'modelship-storage-0123456789' };
  it('holds the bundle pinned to its sha256, the in-cluster endpoint and the storage Secret, and only the options given', () => {
    const m = desiredModelServing({
      ...base,
      storage: { endpoint: 'http://127.0.0.1:9000', clusterEndpoint: 'http://minio.minio:9000', bucket: 'models' },
      format: 'python',
      cpu: '500m',
      memory: '512Mi',
      min: 1,
      max: 4,
      topic: 'CREATE',
      env: { LOG: 'debug' },
      nodeSelector: { type: 'process' },
      tolerate: ['modelship.dev/process-node'],
    });
    expect(m).toEqual({
      apiVersion: 'modelship.dev/v1alpha1',
      kind: 'ModelServing',
      metadata: { name: 'iris', namespace: 'ml' },
      spec: {
        bundle: {
          uri: 's3://models/bundles/ab.zip',
          sha256: 'ab',
          format: 'python',
          storage: { endpoint: 'http://minio.minio:9000', secretRef: { name: 'modelship-storage-0123456789' } },
        },
        resources: { requests: { cpu: '500m', memory: '512Mi' }, limits: { memory: '512Mi' } },
        autoscaling: { minReplicas: 1, maxReplicas: 4 },
        inferenceLogging: { topic: 'CREATE' },
        runtime: { env: [{ name: 'LOG', value: 'debug' }] },
        nodeSelector: { type: 'process' },
        tolerations: [{ key: 'modelship.dev/process-node', operator: 'Exists' }],
      },
    });
    expect(desiredModelServing({ ...base, secret: undefined, storage: { bucket: 'models' } }).spec).toEqual({
      bundle: { uri: 's3://models/bundles/ab.zip', sha256: 'ab' },
    });
  });
});

describe('helpers', () => {
  it('canonical JSON: key order does not matter, array order and every value do', () => {
    expect(canonical({ a: 1, b: { c: 2, d: [1, 2] } })).toBe(canonical({ b: { d: [1, 2], c: 2 }, a: 1 }));
    expect(canonical({ a: [1, 2] })).not.toBe(canonical({ a: [2, 1] }));
    expect(canonical({ a: 1 })).not.toBe(canonical({ a: 1, b: 2 }));
  });

  it('names the storage Secret after the endpoint and the cluster access key, never a secret', () => {
    const a = storageSecretName({ bucket: 'm', endpoint: 'http://x', accessKey: 'k', clusterAccessKey: 'ro', clusterSecretKey: 's1' });
    expect(a).toMatch(/^modelship-storage-[0-9a-f]{10}$/);
    expect(storageSecretName({ bucket: 'm', endpoint: 'http://x', accessKey: 'k2', clusterAccessKey: 'ro', clusterSecretKey: 's2' })).toBe(
      a,
    );
    expect(storageSecretName({ bucket: 'm', endpoint: 'http://x', clusterAccessKey: 'other' })).not.toBe(a);
  });

  it('reads read-only cluster keys apart from the uploader own, from the file or the environment', async () => {
    const file = join(await mkdtemp(join(tmpdir(), 'ms-profile-')), 'config.yaml');
    await writeFile(
      file,
      'storage:\n  bucket: models\n  accessKey: writer\n  secretKey: w\n  clusterAccessKey: reader\n  clusterSecretKey: r\n',
    );
    expect(await loadProfile({}, file)).toMatchObject({ accessKey: 'writer', clusterAccessKey: 'reader', clusterSecretKey: 'r' });
    expect(await loadProfile({ MODELSHIP_S3_CLUSTER_ACCESS_KEY: 'r2', MODELSHIP_S3_CLUSTER_SECRET_KEY: 'x' }, file)).toMatchObject({
      clusterAccessKey: 'r2',
      clusterSecretKey: 'x',
    });
  });

  it('keyValues: KEY=VALUE, the value may hold =; anything else names the flag', () => {
    expect(keyValues(['A=1', 'B=x=y'], '--env')).toEqual({ A: '1', B: 'x=y' });
    expect(() => keyValues(['=1'], '--env')).toThrow('--env =1: expected KEY=VALUE');
  });

  it('describes a state, and tells a failure of this generation from a wait', () => {
    const m = (status: Record<string, unknown>, generation = 2) =>
      ({
        metadata: { name: 'x', namespace: 'n', generation },
        spec: { bundle: { uri: 'u' }, replicas: 2 },
        status,
      }) as unknown as ModelServing;
    const failed = m({
      observedGeneration: 2,
      replicas: 2,
      readyReplicas: 0,
      conditions: [{ type: 'Ready', status: 'False', reason: 'MS_ERR_PLUGIN_LOAD', message: 'boom' }],
    });
    expect(describeState(failed)).toBe('Ready=False (MS_ERR_PLUGIN_LOAD): 0/2 replicas ready; boom');
    expect(failure(failed)).toEqual({ code: 'MS_ERR_PLUGIN_LOAD', message: 'boom' });
    // The operator has not seen generation 2 yet: not a failure of it.
    expect(
      failure(m({ observedGeneration: 1, conditions: [{ type: 'Ready', status: 'False', reason: 'MS_ERR_PLUGIN_LOAD' }] })),
    ).toBeUndefined();
    expect(failure(m({ observedGeneration: 2, conditions: [{ type: 'Ready', status: 'False', reason: 'Progressing' }] }))).toBeUndefined();
    expect(describeState(m({}))).toBe('Ready=Unknown (waiting for the operator): 0/2 replicas ready');
  });
});

describe('the local environment as the profile', () => {
  const info = {
    s3: {
      endpoint: 'http://127.0.0.1:40001',
      region: 'us-east-1',
      accessKey: 'ak',
      secretKey: 'sk',
      readOnly: { accessKey: 'modelship-pods', secretKey: 'ro' },
    },
    realNode: { s3Endpoint: 'http://minio.minio.svc:9000' },
  } as EnvInfo;

  it('gives its MinIO and bucket, and the Service name its pods reach MinIO at', () => {
    expect(localStorageProfile(info)).toEqual({
      bucket: 'models',
      endpoint: 'http://127.0.0.1:40001',
      clusterEndpoint: 'http://minio.minio.svc:9000',
      region: 'us-east-1',
      accessKey: 'ak',
      secretKey: 'sk',
      // Its read-only user's keys are the ones the cluster gets.
      clusterAccessKey: 'modelship-pods',
      clusterSecretKey: 'ro',
    });
  });

  it('stands in only where no profile is given', async () => {
    for (const env of [{ MODELSHIP_CONFIG: '/x.yaml' }, { MODELSHIP_BUCKET: 'b' }]) expect(await localEnvironment(env)).toBeUndefined();
  });
});

describe('noOperatorHint', () => {
  it('names the claiming release, or the usual causes', () => {
    expect(noOperatorHint('ml', 'iris', 10, 'second')).toBe(
      'no operator has picked up ModelServing ml/iris after 10 s: namespace ml is claimed by the operator of release "second" (label modelship.dev/operator): is that release installed and running?',
    );
    expect(noOperatorHint('ml', 'iris', 10, undefined)).toMatch(/is a modelship operator installed, and does it watch namespace ml\?/);
  });
});

describe('resourceName', () => {
  it('makes a DNS-1123 name of a bundle directory or zip when neither --name nor the manifest gives one', () => {
    expect(resourceName('examples/hopsworks-iris')).toBe('hopsworks-iris');
    expect(resourceName('examples/hopsworks-iris/')).toBe('hopsworks-iris');
    expect(resourceName('/tmp/My_Model.v2.zip')).toBe('my-model-v2');
    expect(resourceName('__x__')).toBe('x');
    expect(resourceName(`${'a'.repeat(62)}_b`)).toBe('a'.repeat(62));
    expect(resourceName('___')).toBe('model');
  });
});
