import { describe, expect, it } from 'vitest';
import type { ModelServing } from '../../crds/modelserving.schema.ts';
import { DEFAULT_CONFIG, quantityBytes } from '../../operator/config.ts';
import { desiredHpa, desiredPdb } from '../../operator/controller/desired/autoscaling.ts';
import {
  bundleHash,
  desiredDeployment,
  desiredEnvClaim,
  maxBundleBytes,
  progressDeadlineSeconds,
  START_MARGIN_SECONDS,
  WORK_VOLUME_RESERVE_BYTES,
} from '../../operator/controller/desired/deployment.ts';
import { desiredService } from '../../operator/controller/desired/service.ts';
import { claimedByAnother } from '../../operator/controller/desired/labels.ts';
import { bindingWithSubject } from '../../operator/controller/desired/auth.ts';
import { AUTH_UID } from '../../runtime/contract.ts';

function ms(spec: Partial<ModelServing['spec']> = {}): ModelServing {
  return {
    apiVersion: 'modelship.dev/v1alpha1',
    kind: 'ModelServing',
    metadata: { name: 'iris', namespace: 'ml', uid: 'uid-1', generation: 1 },
    spec: { bundle: { uri: 's3://models/iris/1/bundle.zip' }, replicas: 2, ...spec },
  };
}

const envOf = (d: ReturnType<typeof desiredDeployment>) =>
  Object.fromEntries((d.spec?.template.spec?.containers[0]?.env ?? []).map((e) => [e.name, e.value ?? e.valueFrom]));
/** The install init container's environment. */
const installEnvOf = (d: ReturnType<typeof desiredDeployment>) =>
  Object.fromEntries(
    (d.spec?.template.spec?.initContainers?.find((c) => c.name === 'install')?.env ?? []).map((e) => [e.name, e.value ?? e.valueFrom]),
  );
/** The prepare init container's environment. */
const prepareEnvOf = (d: ReturnType<typeof desiredDeployment>) =>
  Object.fromEntries((d.spec?.template.spec?.initContainers?.[0]?.env ?? []).map((e) => [e.name, e.value ?? e.valueFrom]));

describe('desiredDeployment', () => {
  it('hands spec.dependencies to the runtime as MODELSHIP_DEPENDENCIES, only when there are any', () => {
    const d = desiredDeployment(ms({ dependencies: [{ name: 'svm', modelServing: 'svm-clf' }] }), DEFAULT_CONFIG);
    expect(JSON.parse(envOf(d).MODELSHIP_DEPENDENCIES as string)).toEqual({
      svm: { url: 'http://svm-clf.ml.svc.cluster.local', model: 'svm-clf', modelServing: 'svm-clf' },
    });
    expect(envOf(desiredDeployment(ms(), DEFAULT_CONFIG))).not.toHaveProperty('MODELSHIP_DEPENDENCIES');
  });

  it('runs the runtime under Pod Security "restricted"', () => {
    const d = desiredDeployment(ms(), DEFAULT_CONFIG);
    const pod = d.spec?.template.spec;
    const c = pod?.containers[0];
    expect(pod?.securityContext).toMatchObject({ runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' } });
    expect(c?.securityContext).toEqual({
      runAsNonRoot: true,
      runAsUser: 65532,
      runAsGroup: 65532,
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      capabilities: { drop: ['ALL'] },
      seccompProfile: { type: 'RuntimeDefault' },
    });
    expect(pod?.automountServiceAccountToken).toBe(false);
    expect(pod?.volumes).toEqual([
      { name: 'work', emptyDir: { sizeLimit: '2Gi' } },
      { name: 'tmp', emptyDir: { sizeLimit: '64Mi' } },
      { name: 'init-tmp', emptyDir: { sizeLimit: '64Mi' } },
    ]);
    for (const init of pod?.initContainers ?? []) expect(init.securityContext).toEqual(c?.securityContext);
  });

  it('wires the runtime contract, probes, drain timing and ownership', () => {
    const d = desiredDeployment(
      ms({ bundle: { uri: 's3://m/k.zip', sha256: 'a'.repeat(64) }, runtime: { timeoutSeconds: 10, env: [{ name: 'X', value: '1' }] } }),
      DEFAULT_CONFIG,
    );
    expect(envOf(d)).toMatchObject({
      MODELSHIP_MODEL_NAME: 'iris',
      MODELSHIP_NAMESPACE: 'ml',
      MODELSHIP_BUNDLE_URI: 's3://m/k.zip',
      MODELSHIP_BUNDLE_PREPARED: 'true',
      MODELSHIP_REQUEST_TIMEOUT_MS: '10000',
      MODELSHIP_DRAIN_TIMEOUT_MS: '25000',
      X: '1',
    });
    // The prepare init container fetches and verifies: the pin is its business. None of the user's variables
    // reach the container with the keys.
    expect(prepareEnvOf(d)).toMatchObject({ MODELSHIP_BUNDLE_URI: 's3://m/k.zip', MODELSHIP_BUNDLE_SHA256: 'a'.repeat(64) });
    expect(prepareEnvOf(d).X).toBeUndefined();
    expect(prepareEnvOf(d).MODELSHIP_BUNDLE_PREPARED).toBeUndefined();
    const c = d.spec?.template.spec?.containers[0];
    expect(c?.readinessProbe?.httpGet?.path).toBe('/v2/health/ready');
    expect(c?.livenessProbe?.httpGet?.path).toBe('/v2/health/live');
    expect(c?.lifecycle?.preStop?.sleep?.seconds).toBe(5);
    expect(d.spec?.template.spec?.terminationGracePeriodSeconds).toBe(35);
    expect(d.spec?.strategy?.rollingUpdate?.maxUnavailable).toBe(0);
    expect(d.metadata?.ownerReferences).toEqual([
      {
        apiVersion: 'modelship.dev/v1alpha1',
        kind: 'ModelServing',
        name: 'iris',
        uid: 'uid-1',
        controller: true,
        blockOwnerDeletion: true,
      },
    ]);
    expect(d.spec?.selector.matchLabels).toEqual({ 'modelship.dev/model': 'iris' });
  });

  it('passes storage credentials by secretKeyRef, never by value, to the prepare init container only', () => {
    const d = desiredDeployment(
      ms({
        bundle: {
          uri: 's3://m/k.zip',
          storage: { endpoint: 'http://minio:9000', secretRef: { name: 'creds', accessKeyKey: 'ak', secretKeyKey: 'sk' } },
        },
      }),
      DEFAULT_CONFIG,
    );
    expect(prepareEnvOf(d)).toMatchObject({
      MODELSHIP_S3_ENDPOINT: 'http://minio:9000',
      MODELSHIP_S3_ACCESS_KEY: { secretKeyRef: { name: 'creds', key: 'ak' } },
      MODELSHIP_S3_SECRET_KEY: { secretKeyRef: { name: 'creds', key: 'sk' } },
    });
    const serving = JSON.stringify(d.spec?.template.spec?.containers);
    expect(serving).not.toContain('secretKeyRef');
    expect(serving).not.toContain('MODELSHIP_S3_');
    // Same image, `prepare`; it writes the work volume, which the serving container only reads.
    const [init] = d.spec?.template.spec?.initContainers ?? [];
    expect(init).toMatchObject({ name: 'prepare', image: d.spec?.template.spec?.containers[0]?.image, args: ['prepare'] });
    expect(init?.volumeMounts).toContainEqual({ name: 'work', mountPath: '/var/lib/modelship' });
    expect(d.spec?.template.spec?.containers[0]?.volumeMounts).toContainEqual({
      name: 'work',
      mountPath: '/var/lib/modelship',
      readOnly: true,
    });
    expect(init?.securityContext).toEqual(d.spec?.template.spec?.containers[0]?.securityContext);
  });

  it('leaves replicas to the HPA when autoscaling is on, and sets them otherwise', () => {
    expect(desiredDeployment(ms(), DEFAULT_CONFIG).spec?.replicas).toBe(2);
    const auto = desiredDeployment(ms({ autoscaling: { minReplicas: 1, maxReplicas: 5, metric: 'cpu', target: 70 } }), DEFAULT_CONFIG);
    expect(auto.spec && 'replicas' in auto.spec).toBe(false);
  });

  it('changes the pod template annotation when, and only when, the bundle changes', () => {
    const a = bundleHash(ms());
    expect(bundleHash(ms({ replicas: 5 }))).toBe(a);
    expect(bundleHash(ms({ bundle: { uri: 's3://models/iris/2/bundle.zip' } }))).not.toBe(a);
    expect(desiredDeployment(ms(), DEFAULT_CONFIG).spec?.template.metadata?.annotations?.['modelship.dev/bundle-hash']).toBe(a);
  });

  it('defaults requests (the HPA needs them) and keeps the user resources', () => {
    expect(desiredDeployment(ms(), DEFAULT_CONFIG).spec?.template.spec?.containers[0]?.resources).toEqual({
      requests: { cpu: '100m', memory: '128Mi' },
    });
    const r = desiredDeployment(ms({ resources: { requests: { cpu: '250m' }, limits: { memory: '512Mi' } } }), DEFAULT_CONFIG).spec
      ?.template.spec?.containers[0]?.resources;
    expect(r).toEqual({ requests: { cpu: '250m', memory: '128Mi' }, limits: { memory: '512Mi' } });
  });

  it('passes spec.batching to the runtime', () => {
    expect(envOf(desiredDeployment(ms({ batching: { maxBatchSize: 16, maxLatencyMs: 3 } }), DEFAULT_CONFIG))).toMatchObject({
      MODELSHIP_BATCH_MAX_SIZE: '16',
      MODELSHIP_BATCH_MAX_LATENCY_MS: '3',
    });
    expect(envOf(desiredDeployment(ms(), DEFAULT_CONFIG)).MODELSHIP_BATCH_MAX_SIZE).toBeUndefined();
  });

  it('gives the runtime its CPU limit in whole CPUs (Python workers default to it)', () => {
    expect(envOf(desiredDeployment(ms(), DEFAULT_CONFIG)).MODELSHIP_CPU_LIMIT).toEqual({
      resourceFieldRef: { containerName: 'runtime', resource: 'limits.cpu', divisor: '1' },
    });
  });

  it('runs Python bundles in the runtime-python image with a requirements cache volume', () => {
    const py = desiredDeployment(ms({ bundle: { uri: 's3://models/iris/1/bundle.zip', format: 'python' } }), {
      ...DEFAULT_CONFIG,
      pythonIndexUrl: 'https://mirror.example/simple',
    });
    const pod = py.spec?.template.spec;
    expect(pod?.containers[0]?.image).toBe(DEFAULT_CONFIG.runtimePythonImage);
    expect(DEFAULT_CONFIG.runtimePythonImage).toMatch(/^modelship\/runtime-python:\d+\.\d+\.\d+$/);
    expect(pod?.volumes).toContainEqual({ name: 'python-envs', emptyDir: { sizeLimit: '4Gi' } });
    // Built by the install init container (no keys), which alone writes the cache; read only where bundle code runs.
    expect(pod?.initContainers?.map((c) => c.name)).toEqual(['prepare', 'install']);
    const install = pod?.initContainers?.[1];
    expect(install).toMatchObject({ args: ['install'], image: DEFAULT_CONFIG.runtimePythonImage });
    expect(install?.volumeMounts).toContainEqual({ name: 'python-envs', mountPath: '/var/cache/modelship/python-envs' });
    expect(JSON.stringify(install?.env)).not.toMatch(/secretKeyRef|MODELSHIP_S3_/);
    expect(pod?.initContainers?.[0]?.volumeMounts?.map((m) => m.name)).not.toContain('python-envs');
    expect(pod?.containers[0]?.volumeMounts).toContainEqual({
      name: 'python-envs',
      mountPath: '/var/cache/modelship/python-envs',
      readOnly: true,
    });
    expect(installEnvOf(py)).toMatchObject({
      MODELSHIP_PYTHON_ENV_DIR: '/var/cache/modelship/python-envs',
      MODELSHIP_PYTHON_INDEX_URL: 'https://mirror.example/simple',
    });
    expect(installEnvOf(py).MODELSHIP_PYTHON_ALLOW_INDEX_OPTIONS).toBeUndefined();
    expect(envOf(py).MODELSHIP_PYTHON_INDEX_URL).toBeUndefined(); // the serving container installs nothing
    // An index URL with credentials: from a Secret, read by the prepare init container only.
    const secretIndex = desiredDeployment(ms({ bundle: { uri: 's3://m/b.zip', format: 'python' } }), {
      ...DEFAULT_CONFIG,
      pythonIndexUrl: 'https://mirror.example/simple',
      pythonIndexUrlSecret: 'index',
    });
    expect(installEnvOf(secretIndex).MODELSHIP_PYTHON_INDEX_URL).toEqual({ secretKeyRef: { name: 'index', key: 'url' } });
    expect(
      installEnvOf(
        desiredDeployment(ms({ bundle: { uri: 's3://m/b.zip', format: 'python' } }), { ...DEFAULT_CONFIG, pythonAllowIndexOptions: true }),
      ).MODELSHIP_PYTHON_ALLOW_INDEX_OPTIONS,
    ).toBe('true');
    const shared = desiredDeployment(ms({ bundle: { uri: 's3://m/b.zip', format: 'python' } }), {
      ...DEFAULT_CONFIG,
      pythonEnvCache: { kind: 'pvc', claimName: 'python-envs' },
    });
    expect(shared.spec?.template.spec?.volumes).toContainEqual({
      name: 'python-envs',
      persistentVolumeClaim: { claimName: 'python-envs' },
    });
    // A shared cache takes wheels only, unless builds are allowed.
    expect(installEnvOf(shared).MODELSHIP_PYTHON_NO_BUILD).toBe('true');
    expect(installEnvOf(py).MODELSHIP_PYTHON_NO_BUILD).toBeUndefined();
    const builds = desiredDeployment(ms({ bundle: { uri: 's3://m/b.zip', format: 'python' } }), {
      ...DEFAULT_CONFIG,
      pythonEnvCache: { kind: 'pvc', claimName: 'python-envs', allowBuilds: true },
    });
    expect(installEnvOf(builds).MODELSHIP_PYTHON_NO_BUILD).toBeUndefined();
    // Only when told to, the operator makes that claim in the model's namespace: ReadWriteMany, owned by no model.
    const python = ms({ bundle: { uri: 's3://m/b.zip', format: 'python' } });
    expect(desiredEnvClaim(python, { ...DEFAULT_CONFIG, pythonEnvCache: { kind: 'pvc', claimName: 'python-envs' } })).toBeUndefined();
    const create = { kind: 'pvc', claimName: 'python-envs', create: { storageClassName: 'local', size: '20Gi' } } as const;
    const claim = desiredEnvClaim(python, { ...DEFAULT_CONFIG, pythonEnvCache: create });
    expect(claim?.metadata).toMatchObject({ name: 'python-envs', namespace: 'ml' });
    expect(claim?.metadata?.ownerReferences).toBeUndefined();
    expect(claim?.spec).toEqual({
      accessModes: ['ReadWriteMany'],
      storageClassName: 'local',
      resources: { requests: { storage: '20Gi' } },
    });
    expect(desiredEnvClaim(ms(), { ...DEFAULT_CONFIG, pythonEnvCache: create })).toBeUndefined(); // a JS model needs none
    // spec.runtime.image still wins (a custom image FROM modelship/runtime-python).
    const custom = desiredDeployment(
      ms({ bundle: { uri: 's3://m/b.zip', format: 'python' }, runtime: { image: 'me/iris:1', timeoutSeconds: 30 } }),
      DEFAULT_CONFIG,
    );
    expect(custom.spec?.template.spec?.containers[0]?.image).toBe('me/iris:1');
    // JS bundles keep the JS image and no Python volume.
    const js = desiredDeployment(ms(), DEFAULT_CONFIG);
    expect(js.spec?.template.spec?.containers[0]?.image).toBe(DEFAULT_CONFIG.runtimeImage);
    expect(envOf(js).MODELSHIP_PYTHON_ENV_DIR).toBeUndefined();
  });

  it('is deterministic', () => {
    expect(desiredDeployment(ms(), DEFAULT_CONFIG)).toEqual(desiredDeployment(ms(), DEFAULT_CONFIG));
  });

  it('gives a first start the time its steps may take before the rollout counts as stalled: fetch + install + init + margin', () => {
    const deadline = (d: ReturnType<typeof desiredDeployment>) => d.spec?.progressDeadlineSeconds;
    // The runtime's bounds (contract.ts DEFAULTS): fetch 300 s, init 300 s; Python's install helper 2 × 600 s + 30 s.
    expect(deadline(desiredDeployment(ms(), DEFAULT_CONFIG))).toBe(300 + 300 + START_MARGIN_SECONDS);
    expect(deadline(desiredDeployment(ms({ bundle: { uri: 's3://m/b.zip', format: 'python' } }), DEFAULT_CONFIG))).toBe(
      300 + 1230 + 300 + START_MARGIN_SECONDS,
    );
    // The margin covers at least the startup probe's 60 × 2 s (the image pull and unpacking besides).
    expect(START_MARGIN_SECONDS).toBeGreaterThanOrEqual(120);
    // A longer init (the serving container's variable) moves it; a fetch timeout there does not: that container
    // fetches nothing, and the prepare container gets none of the user's variables.
    const slowInit = ms({
      runtime: {
        timeoutSeconds: 30,
        env: [
          { name: 'MODELSHIP_INIT_TIMEOUT_MS', value: '1800000' },
          { name: 'MODELSHIP_FETCH_TIMEOUT_MS', value: '3600000' },
        ],
      },
    });
    expect(deadline(desiredDeployment(slowInit, DEFAULT_CONFIG))).toBe(300 + 1800 + START_MARGIN_SECONDS);
    // Read from the containers as built, so a step's variable counts wherever it is set.
    const prepare = { name: 'prepare', env: [{ name: 'MODELSHIP_FETCH_TIMEOUT_MS', value: '1000000' }] };
    const install = { name: 'install', env: [{ name: 'MODELSHIP_PYTHON_INSTALL_TIMEOUT_MS', value: '60000' }] };
    expect(progressDeadlineSeconds([prepare, install], { name: 'runtime' })).toBe(1000 + 150 + 300 + START_MARGIN_SECONDS);
    expect(progressDeadlineSeconds([prepare], { name: 'runtime', env: [{ name: 'MODELSHIP_INIT_TIMEOUT_MS', value: 'soon' }] })).toBe(
      1000 + 300 + START_MARGIN_SECONDS,
    );
  });

  it('sizes the bundle the prepare step takes to the work volume: a bundle too large is refused, never evicted', () => {
    const gi = 2 ** 30;
    expect(maxBundleBytes('2Gi')).toBe(Math.floor((2 * gi - WORK_VOLUME_RESERVE_BYTES) / 2));
    for (const size of ['256Mi', '2Gi', '1.5Gi', '10G', '1Ti']) {
      const max = maxBundleBytes(size);
      // The archive and the files it unpacks to are both on the volume while it unpacks: with the reserve (prepared.json,
      // the blocks 10000 small files round up to) they fit within the volume's size limit.
      expect(2 * max + WORK_VOLUME_RESERVE_BYTES).toBeLessThanOrEqual(quantityBytes(size));
      expect(max).toBeGreaterThan(0);
    }
    const d = desiredDeployment(ms(), { ...DEFAULT_CONFIG, bundleVolumeSize: '10Gi' });
    expect(d.spec?.template.spec?.volumes?.find((v) => v.name === 'work')).toEqual({ name: 'work', emptyDir: { sizeLimit: '10Gi' } });
    expect(prepareEnvOf(d).MODELSHIP_MAX_BUNDLE_BYTES).toBe(String(maxBundleBytes('10Gi')));
    expect(envOf(d).MODELSHIP_MAX_BUNDLE_BYTES).toBeUndefined(); // the serving container fetches nothing
    // The runtime's own default (4 GiB) would not fit the default volume: the prepare step gets the volume's.
    expect(Number(prepareEnvOf(desiredDeployment(ms(), DEFAULT_CONFIG)).MODELSHIP_MAX_BUNDLE_BYTES)).toBeLessThan(gi);
  });
});

describe('desired Service, HPA and PDB', () => {
  it('exposes port 80 to the runtime', () => {
    expect(desiredService(ms()).spec).toEqual({
      type: 'ClusterIP',
      selector: { 'modelship.dev/model': 'iris' },
      ports: [
        { name: 'http', port: 80, targetPort: 'http', protocol: 'TCP' },
        { name: 'grpc', port: 8081, targetPort: 'grpc', protocol: 'TCP', appProtocol: 'kubernetes.io/h2c' },
      ],
    });
  });

  it.each([
    [{ replicas: 1 }, undefined, false],
    [{ replicas: 3 }, undefined, true],
    [
      { autoscaling: { minReplicas: 1, maxReplicas: 4, metric: 'memory' as const, target: 60 } },
      { min: 1, max: 4, metric: 'memory', target: 60 },
      true,
    ],
    [
      { autoscaling: { minReplicas: 1, maxReplicas: 1, metric: 'cpu' as const, target: 70 } },
      { min: 1, max: 1, metric: 'cpu', target: 70 },
      false,
    ],
  ])('for %j: HPA %j, PDB %s', (spec, hpa, pdb) => {
    const h = desiredHpa(ms(spec));
    if (hpa) {
      expect(h?.spec).toMatchObject({
        scaleTargetRef: { apiVersion: 'apps/v1', kind: 'Deployment', name: 'iris' },
        minReplicas: hpa.min,
        maxReplicas: hpa.max,
        metrics: [{ type: 'Resource', resource: { name: hpa.metric, target: { type: 'Utilization', averageUtilization: hpa.target } } }],
      });
    } else expect(h).toBeUndefined();
    expect(desiredPdb(ms(spec)) !== undefined).toBe(pdb);
  });

  it('sets the scale-down stabilization window only when asked (else the HPA default, 300 s)', () => {
    const a = { minReplicas: 1, maxReplicas: 3, metric: 'cpu' as const, target: 50 };
    expect(desiredHpa(ms({ autoscaling: { ...a, scaleDownStabilizationSeconds: 15 } }))?.spec?.behavior).toEqual({
      scaleDown: { stabilizationWindowSeconds: 15 },
    });
    expect(desiredHpa(ms({ autoscaling: { ...a, scaleDownStabilizationSeconds: 0 } }))?.spec?.behavior).toEqual({
      scaleDown: { stabilizationWindowSeconds: 0 },
    });
    expect(desiredHpa(ms({ autoscaling: a }))?.spec?.behavior).toBeUndefined();
  });
});

describe('inference logging in the Deployment', () => {
  const kafka = { bootstrapServers: ['k1:9092', 'k2:9092'], tls: false, tlsCa: undefined, sasl: undefined };
  const cfg = { ...DEFAULT_CONFIG, kafka };
  const pick = (env: Record<string, unknown>) =>
    Object.fromEntries(Object.entries(env).filter(([k]) => /KAFKA|INFERENCE_LOG|EVENT_TOPICS|RECORDER/.test(k)));
  const recorderOf = (d: ReturnType<typeof desiredDeployment>) => d.spec?.template.spec?.initContainers?.find((c) => c.name === 'recorder');
  const recorderEnvOf = (d: ReturnType<typeof desiredDeployment>) =>
    Object.fromEntries((recorderOf(d)?.env ?? []).map((e) => [e.name, e.value ?? e.valueFrom]));
  const SOCKET = { MODELSHIP_RECORDER_SOCKET: '/var/run/modelship/recorder.sock' };
  const BOOTSTRAP = { MODELSHIP_KAFKA_BOOTSTRAP_SERVERS: 'k1:9092,k2:9092' };

  it.each([
    ['NONE (default)', {}, {}],
    [
      'CREATE',
      { topic: 'CREATE', mode: 'inputs', sampleRate: 0.5 },
      {
        MODELSHIP_INFERENCE_LOG_TOPIC: 'modelship.ml.iris.inference',
        MODELSHIP_INFERENCE_LOG_MODE: 'inputs',
        MODELSHIP_INFERENCE_LOG_SAMPLE_RATE: '0.5',
      },
    ],
    [
      'an existing topic, with event topics',
      { topic: 'team.preds', eventTopics: ['alerts', 'drift'] },
      {
        MODELSHIP_INFERENCE_LOG_TOPIC: 'team.preds',
        MODELSHIP_INFERENCE_LOG_MODE: 'all',
        MODELSHIP_INFERENCE_LOG_SAMPLE_RATE: '1',
        MODELSHIP_EVENT_TOPICS: 'alerts,drift',
      },
    ],
    ['NONE with event topics', { topic: 'NONE', eventTopics: ['alerts'] }, { MODELSHIP_EVENT_TOPICS: 'alerts' }],
  ])('%s: the topics to the runtime, Kafka only to its recorder sidecar', (_what, inferenceLogging, topics) => {
    const d = desiredDeployment(ms({ inferenceLogging } as Partial<ModelServing['spec']>), cfg);
    const logs = Object.keys(topics).length > 0;
    expect(pick(envOf(d))).toEqual(logs ? { ...SOCKET, ...topics } : {});
    if (!logs) {
      expect(recorderOf(d)).toBeUndefined();
      return;
    }
    expect(pick(recorderEnvOf(d))).toEqual({ ...SOCKET, ...BOOTSTRAP, ...topics });
    // A native sidecar, the same image, another uid in the runtime's group; both mount the socket's volume.
    const rec = recorderOf(d);
    expect(rec).toMatchObject({ restartPolicy: 'Always', args: ['recorder'], image: d.spec?.template.spec?.containers[0]?.image });
    expect(rec?.securityContext).toMatchObject({ runAsUser: 65533, runAsGroup: 65532, readOnlyRootFilesystem: true });
    expect(rec?.volumeMounts).toEqual([{ name: 'recorder', mountPath: '/var/run/modelship' }]);
    expect(d.spec?.template.spec?.containers[0]?.volumeMounts).toContainEqual({ name: 'recorder', mountPath: '/var/run/modelship' });
    // After prepare: the bundle is in place before the recorder and the runtime start.
    expect(d.spec?.template.spec?.initContainers?.map((c) => c.name)).toEqual(['prepare', 'recorder']);
  });

  it('passes TLS and SASL credentials by reference to Secrets, never by value, to the recorder sidecar only', () => {
    const secured = {
      ...DEFAULT_CONFIG,
      kafka: {
        ...kafka,
        tls: true,
        tlsCa: 'PEM OF THE OPERATOR',
        sasl: { mechanism: 'SCRAM-SHA-512' as const, username: 'op', password: 'op-secret' },
      },
      kafkaSaslSecret: 'kafka-client',
      kafkaTlsCaSecret: 'kafka-ca',
    };
    const d = desiredDeployment(ms({ inferenceLogging: { topic: 'CREATE' } } as Partial<ModelServing['spec']>), secured);
    expect(recorderEnvOf(d)).toMatchObject({
      MODELSHIP_KAFKA_TLS: 'true',
      MODELSHIP_KAFKA_TLS_CA: { secretKeyRef: { name: 'kafka-ca', key: 'ca.crt' } },
      MODELSHIP_KAFKA_SASL_MECHANISM: 'SCRAM-SHA-512',
      MODELSHIP_KAFKA_SASL_USERNAME: { secretKeyRef: { name: 'kafka-client', key: 'username' } },
      MODELSHIP_KAFKA_SASL_PASSWORD: { secretKeyRef: { name: 'kafka-client', key: 'password' } },
    });
    expect(JSON.stringify(d.spec?.template.spec?.containers)).not.toMatch(/KAFKA|secretKeyRef/);
    const text = JSON.stringify(d);
    expect(text).not.toContain('op-secret');
    expect(text).not.toContain('PEM OF THE OPERATOR');
  });

  it('a CR that asks for logging from an operator without Kafka gets the topic, no recorder and no bootstrap servers', () => {
    const d = desiredDeployment(ms({ inferenceLogging: { topic: 'CREATE' } } as Partial<ModelServing['spec']>), DEFAULT_CONFIG);
    expect(envOf(d).MODELSHIP_INFERENCE_LOG_TOPIC).toBe('modelship.ml.iris.inference');
    expect(envOf(d).MODELSHIP_KAFKA_BOOTSTRAP_SERVERS).toBeUndefined();
    expect(envOf(d).MODELSHIP_RECORDER_SOCKET).toBeUndefined();
    expect(recorderOf(d)).toBeUndefined();
  });
});

describe('claimedByAnother', () => {
  it.each([
    [undefined, false],
    [{}, false],
    [{ 'modelship.dev/operator': 'modelship' }, false],
    [{ 'modelship.dev/operator': 'second' }, true],
    [{ 'modelship.dev/operator': '' }, true],
  ])('labels %j → %s for the operator "modelship"', (labels, expected) => {
    expect(claimedByAnother(labels as Record<string, string> | undefined, 'modelship')).toBe(expected);
  });
});

describe('spec.auth', () => {
  const pod = (d: ReturnType<typeof desiredDeployment>) => d.spec?.template.spec;
  const authOf = (d: ReturnType<typeof desiredDeployment>) => pod(d)?.initContainers?.find((c) => c.name === 'auth');

  it('is off by default: no auth sidecar, no ServiceAccount, no auth variables', () => {
    const d = desiredDeployment(ms(), DEFAULT_CONFIG);
    expect(authOf(d)).toBeUndefined();
    expect(pod(d)?.serviceAccountName).toBeUndefined();
    expect(envOf(d).MODELSHIP_AUTH_MODE).toBeUndefined();
    expect(desiredProbes(d)).toEqual(['health', 'health', 'health']);
  });

  it('kubernetes: the sidecar alone mounts the projected token of modelship-auth; the runtime asks it over the socket', () => {
    const d = desiredDeployment(ms({ auth: { mode: 'kubernetes' } }), DEFAULT_CONFIG);
    const auth = authOf(d);
    expect(auth?.restartPolicy).toBe('Always');
    expect(auth?.args).toEqual(['auth']);
    expect(auth?.securityContext?.runAsUser).toBe(AUTH_UID);
    expect(auth?.volumeMounts?.map((m) => m.mountPath)).toEqual(['/var/run/modelship', '/var/run/secrets/kubernetes.io/serviceaccount']);
    expect(pod(d)?.serviceAccountName).toBe('modelship-auth');
    expect(pod(d)?.automountServiceAccountToken).toBe(false);
    const token = pod(d)?.volumes?.find((v) => v.name === 'auth-token');
    expect(token?.projected?.sources?.[0]?.serviceAccountToken).toEqual({ path: 'token', expirationSeconds: 3600 });
    // No other container mounts it.
    const others = [...(pod(d)?.containers ?? []), ...(pod(d)?.initContainers ?? []).filter((c) => c.name !== 'auth')];
    expect(others.flatMap((c) => c.volumeMounts ?? []).some((m) => m.name === 'auth-token')).toBe(false);
    expect(envOf(d)).toMatchObject({ MODELSHIP_AUTH_MODE: 'kubernetes', MODELSHIP_AUTH_SOCKET: '/var/run/modelship/auth.sock' });
    expect(pod(d)?.containers[0]?.volumeMounts?.some((m) => m.mountPath === '/var/run/modelship')).toBe(true);
  });

  it('apiKeys: the Secret is mounted in the sidecar only, and the pod keeps the default ServiceAccount', () => {
    const d = desiredDeployment(ms({ auth: { mode: 'apiKeys', apiKeysSecret: 'iris-keys' } }), DEFAULT_CONFIG);
    expect(pod(d)?.volumes?.find((v) => v.name === 'api-keys')?.secret?.secretName).toBe('iris-keys');
    expect(authOf(d)?.volumeMounts?.find((m) => m.name === 'api-keys')?.mountPath).toBe('/var/run/secrets/modelship/api-keys');
    expect(pod(d)?.containers[0]?.volumeMounts?.some((m) => m.name === 'api-keys')).toBe(false);
    expect(pod(d)?.serviceAccountName).toBeUndefined();
  });

  it("adds the namespace's ServiceAccount to the binding's subjects once, keeping the others", () => {
    const binding = {
      metadata: { name: 'm-operator-runtime-auth' },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'system:auth-delegator' },
      subjects: [{ kind: 'ServiceAccount', name: 'modelship-auth', namespace: 'a' }],
    };
    const wanted = bindingWithSubject(binding, 'b');
    expect(wanted?.subjects).toEqual([
      { kind: 'ServiceAccount', name: 'modelship-auth', namespace: 'a' },
      { kind: 'ServiceAccount', name: 'modelship-auth', namespace: 'b' },
    ]);
    expect(bindingWithSubject(binding, 'a')).toBeUndefined();
    expect(bindingWithSubject({ ...binding, subjects: undefined }, 'c')?.subjects).toHaveLength(1);
  });
});

function desiredProbes(d: ReturnType<typeof desiredDeployment>) {
  const c = d.spec?.template.spec?.containers[0];
  return [c?.startupProbe, c?.livenessProbe, c?.readinessProbe].map((p) => p?.httpGet?.port);
}
