import type { V1ContainerStatus, V1Deployment, V1Pod } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import type { ModelServing } from '../../crds/modelserving.schema.ts';
import { bundleHash } from '../../operator/controller/desired/deployment.ts';
import { computeStatus, podFailure } from '../../operator/controller/status.ts';

const T0 = '2026-01-01T00:00:00Z';
const T1 = '2026-01-01T00:01:00Z';
const base: ModelServing = {
  apiVersion: 'modelship.dev/v1alpha1',
  kind: 'ModelServing',
  metadata: { name: 'iris', namespace: 'ml', generation: 3 },
  spec: { bundle: { uri: 's3://m/iris.zip' }, replicas: 2 },
};
const hash = bundleHash(base);

function deployment(s: Partial<NonNullable<V1Deployment['status']>>, replicas = 2): V1Deployment {
  return { metadata: { generation: 1 }, spec: { replicas, selector: {}, template: {} }, status: { observedGeneration: 1, ...s } };
}

function pod(
  name: string,
  opts: { ready?: boolean; hash?: string; terminated?: { exitCode: number; message?: string }; waiting?: string; crash?: boolean } = {},
): V1Pod {
  const term = opts.terminated ? { exitCode: opts.terminated.exitCode, message: opts.terminated.message } : undefined;
  return {
    metadata: { name, labels: { 'modelship.dev/model': 'iris' }, annotations: { 'modelship.dev/bundle-hash': opts.hash ?? hash } },
    status: {
      conditions: [{ type: 'Ready', status: opts.ready ? 'True' : 'False' }],
      containerStatuses: [
        {
          name: 'runtime',
          image: 'x',
          imageID: '',
          ready: !!opts.ready,
          restartCount: 0,
          state: opts.crash
            ? { waiting: { reason: 'CrashLoopBackOff' } }
            : term
              ? { terminated: term }
              : opts.waiting
                ? { waiting: { reason: opts.waiting, message: 'pulling failed' } }
                : { running: {} },
          ...(opts.crash && term ? { lastState: { terminated: term } } : {}),
        },
      ],
    },
  };
}

const cond = (s: ReturnType<typeof computeStatus>, type: string) => s.conditions?.find((c) => c.type === type);

describe('computeStatus', () => {
  it('is Ready when the wanted replicas are ready, and fills the status fields', () => {
    const s = computeStatus({
      ms: base,
      deployment: deployment({ replicas: 2, readyReplicas: 2, updatedReplicas: 2 }),
      pods: [pod('a', { ready: true }), pod('b', { ready: true })],
      now: T0,
    });
    expect(s).toMatchObject({
      observedGeneration: 3,
      replicas: 2,
      readyReplicas: 2,
      selector: 'modelship.dev/model=iris',
      url: 'http://iris.ml.svc/v2/models/iris',
      bundle: { uri: 's3://m/iris.zip' },
    });
    expect(cond(s, 'Ready')).toMatchObject({ status: 'True', reason: 'Available', message: '2/2 replicas ready' });
    expect(cond(s, 'BundleReady')).toMatchObject({ status: 'True', reason: 'Loaded' });
    expect(cond(s, 'Progressing')).toMatchObject({ status: 'False', reason: 'RolloutComplete' });
    expect(cond(s, 'Degraded')).toMatchObject({ status: 'False', reason: 'AsExpected' });
  });

  it("puts the runtime's error code and message from the termination log into the conditions", () => {
    const s = computeStatus({
      ms: base,
      deployment: deployment({ replicas: 2, readyReplicas: 0, updatedReplicas: 2 }),
      pods: [
        pod('a', {
          crash: true,
          terminated: {
            exitCode: 1,
            message: 'MS_ERR_BUNDLE_SHA256_MISMATCH: bundle s3://m/iris.zip sha256 mismatch: expected aa, got bb',
          },
        }),
      ],
      now: T0,
    });
    expect(cond(s, 'Ready')).toMatchObject({
      status: 'False',
      reason: 'MS_ERR_BUNDLE_SHA256_MISMATCH',
      message: 'bundle s3://m/iris.zip sha256 mismatch: expected aa, got bb (pod a)',
    });
    expect(cond(s, 'BundleReady')).toMatchObject({ status: 'False', reason: 'MS_ERR_BUNDLE_SHA256_MISMATCH' });
    expect(cond(s, 'Degraded')).toMatchObject({ status: 'True', reason: 'MS_ERR_BUNDLE_SHA256_MISMATCH' });
  });

  it('ignores failures of pods running an older bundle, and says when a rollout is under way', () => {
    const s = computeStatus({
      ms: base,
      deployment: deployment({ replicas: 3, readyReplicas: 2, updatedReplicas: 1 }),
      pods: [pod('old1', { hash: 'old', terminated: { exitCode: 1, message: 'MS_ERR_X: old' } }), pod('new', { ready: false })],
      now: T0,
    });
    expect(cond(s, 'Degraded')?.status).toBe('False');
    expect(cond(s, 'Progressing')).toMatchObject({ status: 'True', reason: 'RollingOut', message: '1/2 replicas updated' });
    expect(cond(s, 'Ready')).toMatchObject({ status: 'False', reason: 'PodsNotReady' });
  });

  it('reports image and config errors of waiting containers', () => {
    expect(podFailure(pod('p', { waiting: 'ImagePullBackOff' }))).toEqual({
      pod: 'p',
      reason: 'ImagePullBackOff',
      message: 'pulling failed',
    });
    expect(podFailure(pod('p', { waiting: 'ContainerCreating' }))).toBeUndefined();
    expect(podFailure(pod('p', { terminated: { exitCode: 137 } }))).toMatchObject({
      reason: 'Error',
      message: 'the runtime exited with code 137',
    });
  });

  it('keeps the last crash as the reason while the restarted runtime is not ready yet: no flapping at each restart', () => {
    const crashed = { exitCode: 1, message: 'MS_ERR_PLUGIN_LOAD: loading plugin predict.py failed: SyntaxError' };
    const restarted = pod('p', { crash: true, terminated: crashed });
    const status = restarted.status?.containerStatuses?.[0] as V1ContainerStatus;
    status.state = { running: {} };
    expect(podFailure(restarted)).toMatchObject({ reason: 'MS_ERR_PLUGIN_LOAD' });
    // Once it is ready, the old crash is history; so is one long before a container that is not ready now.
    status.ready = true;
    expect(podFailure(restarted)).toBeUndefined();
    status.ready = false;
    (status.lastState as { terminated: { finishedAt?: Date } }).terminated.finishedAt = new Date('2026-12-01T00:00:00Z');
    expect(podFailure(restarted, '2026-12-01T00:05:00Z')).toMatchObject({ reason: 'MS_ERR_PLUGIN_LOAD' });
    expect(podFailure(restarted, '2026-12-04T00:00:00Z')).toBeUndefined();
  });

  it.each([
    ['the runtime', 'runtime', 'MS_ERR_PLUGIN_INIT_FAILED: plugin init() failed: RuntimeError: no weights'],
    ['the prepare init container', 'prepare', 'MS_ERR_BUNDLE_NOT_FOUND: bundle s3://m/iris.zip not found (NoSuchKey)'],
  ])('keeps BundleReady, Degraded and Ready as they are through every phase of a CrashLoopBackOff of %s', (_, name, message) => {
    const code = message.slice(0, message.indexOf(': '));
    const text = message.slice(code.length + 2);
    const at = (minutes: number) => new Date(Date.parse(T0) + minutes * 60_000);
    // One container's status through a restart: it exits, waits out its back-off, runs again (not ready), exits again.
    const crash = (minutes: number) => ({ exitCode: 1, message, finishedAt: at(minutes) });
    const phases: Pick<V1ContainerStatus, 'state' | 'lastState' | 'restartCount'>[] = [
      { state: { terminated: crash(0) }, restartCount: 1 },
      {
        state: { waiting: { reason: 'CrashLoopBackOff', message: 'back-off 10s restarting failed container' } },
        lastState: { terminated: crash(0) },
        restartCount: 1,
      },
      { state: { running: { startedAt: at(1) } }, lastState: { terminated: crash(0) }, restartCount: 2 },
      { state: { terminated: crash(2) }, lastState: { terminated: crash(0) }, restartCount: 2 },
      {
        state: { waiting: { reason: 'CrashLoopBackOff', message: 'back-off 5m0s restarting failed container' } },
        lastState: { terminated: crash(2) },
        restartCount: 2,
      },
      { state: { running: { startedAt: at(7) } }, lastState: { terminated: crash(2) }, restartCount: 3 },
    ];
    const podIn = (phase: (typeof phases)[number]): V1Pod => {
      const status = { name, image: 'x', imageID: '', ready: false, ...phase };
      const waiting = {
        name: 'runtime',
        image: 'x',
        imageID: '',
        ready: false,
        restartCount: 0,
        state: { waiting: { reason: 'PodInitializing' } },
      };
      return {
        metadata: { name: 'a', labels: { 'modelship.dev/model': 'iris' }, annotations: { 'modelship.dev/bundle-hash': hash } },
        status: {
          conditions: [{ type: 'Ready', status: 'False' }],
          ...(name === 'prepare' ? { initContainerStatuses: [status], containerStatuses: [waiting] } : { containerStatuses: [status] }),
        },
      };
    };
    const dep = deployment({ replicas: 2, readyReplicas: 0, updatedReplicas: 2 });
    let status = computeStatus({ ms: base, deployment: dep, pods: [podIn(phases[0] as (typeof phases)[number])], now: T0 });
    const first = ['Ready', 'BundleReady', 'Degraded'].map((t) => cond(status, t));
    expect(first).toEqual([
      { type: 'Ready', status: 'False', reason: code, message: `${text} (pod a)`, lastTransitionTime: T0, observedGeneration: 3 },
      { type: 'BundleReady', status: 'False', reason: code, message: text, lastTransitionTime: T0, observedGeneration: 3 },
      { type: 'Degraded', status: 'True', reason: code, message: `${text} (pod a)`, lastTransitionTime: T0, observedGeneration: 3 },
    ]);
    for (const [i, phase] of phases.entries()) {
      const now = new Date(Date.parse(T0) + (i + 1) * 90_000).toISOString();
      const next = computeStatus({ ms: { ...base, status }, deployment: dep, pods: [podIn(phase)], now });
      // Not one of them moves: no status write, no transition, at any restart.
      expect(next).toEqual(status);
      status = next;
    }
  });

  it("reports the prepare init container's coded failure (a bundle that cannot be fetched or verified)", () => {
    const failing: V1Pod = {
      metadata: { name: 'p' },
      status: {
        phase: 'Pending',
        initContainerStatuses: [
          {
            name: 'prepare',
            image: 'modelship/runtime:1',
            imageID: '',
            ready: false,
            restartCount: 2,
            state: { waiting: { reason: 'CrashLoopBackOff' } },
            lastState: { terminated: { exitCode: 1, message: 'MS_ERR_BUNDLE_SHA256_MISMATCH: sha256 of s3://m/k.zip is b…, not a…' } },
          },
        ],
        containerStatuses: [
          {
            name: 'runtime',
            image: 'modelship/runtime:1',
            imageID: '',
            ready: false,
            restartCount: 0,
            state: { waiting: { reason: 'PodInitializing' } },
          },
        ],
      },
    };
    expect(podFailure(failing)).toEqual({
      pod: 'p',
      reason: 'MS_ERR_BUNDLE_SHA256_MISMATCH',
      message: 'sha256 of s3://m/k.zip is b…, not a…',
    });
  });

  it('keeps transition times while a condition holds, so an unchanged world gives an identical status', () => {
    const obs = {
      ms: base,
      deployment: deployment({ replicas: 2, readyReplicas: 2, updatedReplicas: 2 }),
      pods: [pod('a', { ready: true })],
    };
    const first = computeStatus({ ...obs, now: T0 });
    const second = computeStatus({ ...obs, ms: { ...base, status: first }, now: T1 });
    expect(second).toEqual(first);
    const changed = computeStatus({
      ...obs,
      ms: { ...base, status: first },
      deployment: deployment({ replicas: 2, readyReplicas: 0, updatedReplicas: 2 }),
      pods: [pod('a')],
      now: T1,
    });
    expect(cond(changed, 'Ready')?.lastTransitionTime).toBe(T1);
    expect(cond(changed, 'Progressing')?.lastTransitionTime).toBe(T0);
  });

  it('says why pods are not scheduled', () => {
    const pending: V1Pod = {
      metadata: { name: 'a', labels: { 'modelship.dev/model': 'iris' }, annotations: { 'modelship.dev/bundle-hash': hash } },
      status: {
        phase: 'Pending',
        conditions: [
          { type: 'PodScheduled', status: 'False', reason: 'Unschedulable', message: '0/3 nodes are available: 3 Insufficient cpu.' },
        ],
      },
    };
    const s = computeStatus({ ms: base, deployment: deployment({ replicas: 2, updatedReplicas: 2 }), pods: [pending], now: T0 });
    expect(cond(s, 'Ready')).toMatchObject({
      status: 'False',
      reason: 'Unschedulable',
      message: '0/3 nodes are available: 3 Insufficient cpu. (pod a)',
    });
    expect(cond(s, 'Degraded')).toMatchObject({ status: 'True', reason: 'Unschedulable' });
    // Nothing is known of the bundle until a pod runs it.
    expect(cond(s, 'BundleReady')).toMatchObject({ status: 'Unknown', reason: 'Loading' });
    // Another pod ran and failed to load it: its error code says more than the one waiting for a node.
    const both = computeStatus({
      ms: base,
      deployment: deployment({ replicas: 2, updatedReplicas: 2 }),
      pods: [pending, pod('b', { crash: true, terminated: { exitCode: 1, message: 'MS_ERR_PLUGIN_INIT_FAILED: boom' } })],
      now: T0,
    });
    expect(cond(both, 'Ready')).toMatchObject({ reason: 'MS_ERR_PLUGIN_INIT_FAILED', message: 'boom (pod b)' });
    expect(cond(both, 'BundleReady')).toMatchObject({ status: 'False', reason: 'MS_ERR_PLUGIN_INIT_FAILED' });
  });

  it('says why the Deployment cannot create pods, whether or not the model still serves', () => {
    const quota = 'pods "iris-7d-x" is forbidden: exceeded quota: q, requested: pods=1, used: pods=2, limited: pods=2';
    const refused = (s: Partial<NonNullable<V1Deployment['status']>>) =>
      deployment({ ...s, conditions: [{ type: 'ReplicaFailure', status: 'True', reason: 'FailedCreate', message: quota }] });
    const none = computeStatus({ ms: base, deployment: refused({ replicas: 0 }), pods: [], now: T0 });
    expect(cond(none, 'Ready')).toMatchObject({ status: 'False', reason: 'FailedCreate', message: quota });
    expect(cond(none, 'Degraded')).toMatchObject({ status: 'True', reason: 'FailedCreate', message: quota });
    // Two pods serve; a third (a rollout's surge, a scale-up) is refused: Ready, and Degraded says why.
    const serving = computeStatus({
      ms: base,
      deployment: refused({ replicas: 2, readyReplicas: 2, updatedReplicas: 2 }),
      pods: [pod('a', { ready: true }), pod('b', { ready: true })],
      now: T0,
    });
    expect(cond(serving, 'Ready')).toMatchObject({ status: 'True', reason: 'Available' });
    expect(cond(serving, 'Degraded')).toMatchObject({ status: 'True', reason: 'FailedCreate' });
  });

  it('ends Progressing when the rollout is past its deadline; a pod error still names the cause', () => {
    const stalled = deployment({
      replicas: 2,
      updatedReplicas: 1,
      conditions: [
        {
          type: 'Progressing',
          status: 'False',
          reason: 'ProgressDeadlineExceeded',
          message: 'ReplicaSet "iris-7d" has timed out progressing.',
        },
      ],
    });
    const s = computeStatus({ ms: base, deployment: stalled, pods: [], now: T0 });
    expect(cond(s, 'Progressing')).toMatchObject({
      status: 'False',
      reason: 'ProgressDeadlineExceeded',
      message: 'ReplicaSet "iris-7d" has timed out progressing.',
    });
    expect(cond(s, 'Degraded')).toMatchObject({ status: 'True', reason: 'ProgressDeadlineExceeded' });
    const crashing = computeStatus({
      ms: base,
      deployment: stalled,
      pods: [pod('a', { crash: true, terminated: { exitCode: 1, message: 'MS_ERR_PLUGIN_INIT_FAILED: boom' } })],
      now: T0,
    });
    expect(cond(crashing, 'Ready')).toMatchObject({ reason: 'MS_ERR_PLUGIN_INIT_FAILED', message: 'boom (pod a)' });
    expect(cond(crashing, 'Degraded')).toMatchObject({ reason: 'MS_ERR_PLUGIN_INIT_FAILED' });
    expect(cond(crashing, 'Progressing')).toMatchObject({ reason: 'ProgressDeadlineExceeded' });
    // Refused pods and a passed deadline at once: Ready names the refusal, Progressing the deadline.
    const both = computeStatus({
      ms: base,
      deployment: deployment({
        replicas: 0,
        conditions: [
          { type: 'ReplicaFailure', status: 'True', reason: 'FailedCreate', message: 'exceeded quota' },
          { type: 'Progressing', status: 'False', reason: 'ProgressDeadlineExceeded', message: 'timed out' },
        ],
      }),
      pods: [],
      now: T0,
    });
    expect(cond(both, 'Ready')).toMatchObject({ reason: 'FailedCreate', message: 'exceeded quota' });
    expect(cond(both, 'Progressing')).toMatchObject({ status: 'False', reason: 'ProgressDeadlineExceeded' });
  });

  it('says when the Deployment is not there yet, or could not be applied', () => {
    expect(cond(computeStatus({ ms: base, deployment: undefined, pods: [], now: T0 }), 'Ready')).toMatchObject({ reason: 'Creating' });
    const err = computeStatus({
      ms: base,
      deployment: undefined,
      pods: [],
      now: T0,
      applyError: { reason: 'ApplyFailed', message: 'forbidden' },
    });
    expect(cond(err, 'Ready')).toMatchObject({ status: 'False', reason: 'ApplyFailed', message: 'forbidden' });
  });
});
