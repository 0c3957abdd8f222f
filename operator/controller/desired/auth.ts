// spec.auth in the pod: the auth sidecar (runtime/auth/sidecar.ts), the only container with what checking callers
// needs — for `kubernetes`, a projected token of the namespace's `modelship-auth` ServiceAccount (bound to
// system:auth-delegator by the chart's ClusterRoleBinding, whose subjects the operator keeps); for `apiKeys`, the
// keys' Secret — and the runtime's settings to ask it. Pure.
import type { V1ClusterRoleBinding, V1Container, V1EnvVar, V1ServiceAccount, RbacV1Subject, V1Volume } from '@kubernetes/client-node';
import type { ModelServing } from '../../../crds/modelserving.schema.ts';
import { AUTH_UID, ENV, PATHS } from '../../../runtime/contract.ts';
import { FIELD_MANAGER, MANAGED_BY } from './labels.ts';

export const AUTH_CONTAINER_NAME = 'auth';
/** The ServiceAccount a namespace's models with `auth.mode: kubernetes` run as (TokenReview, SubjectAccessReview). */
export const AUTH_SERVICE_ACCOUNT = 'modelship-auth';
const TOKEN_VOLUME = 'auth-token';
const KEYS_VOLUME = 'api-keys';
/** Where client libraries look for the in-cluster token, CA and namespace. */
const SERVICE_ACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

export function wantsAuth(ms: ModelServing): boolean {
  return ms.spec.auth !== undefined;
}

export function wantsAuthAccount(ms: ModelServing): boolean {
  return ms.spec.auth?.mode === 'kubernetes';
}

/** The runtime container's settings: where to ask. */
export function runtimeAuthEnv(ms: ModelServing): V1EnvVar[] {
  const auth = ms.spec.auth;
  if (!auth) return [];
  return [
    { name: ENV.authMode, value: auth.mode },
    { name: ENV.authSocket, value: PATHS.authSocket },
  ];
}

/** The auth sidecar: a native sidecar (started before the runtime, stopped after it), under a uid of its own. */
export function authContainer(
  ms: ModelServing,
  image: string,
  securityContext: V1Container['securityContext'],
  socketVolume: string,
): V1Container {
  const auth = ms.spec.auth as NonNullable<ModelServing['spec']['auth']>;
  return {
    name: AUTH_CONTAINER_NAME,
    image,
    imagePullPolicy: 'IfNotPresent',
    args: ['auth'],
    restartPolicy: 'Always',
    env: [
      { name: ENV.modelName, value: ms.metadata.name },
      { name: ENV.namespace, value: ms.metadata.namespace },
      ...runtimeAuthEnv(ms),
      ...(auth.mode === 'apiKeys' ? [{ name: ENV.authKeysDir, value: PATHS.authKeysDir }] : []),
      ...(ms.spec.runtime?.logLevel ? [{ name: ENV.logLevel, value: ms.spec.runtime.logLevel }] : []),
    ],
    resources: { requests: { cpu: '20m', memory: '64Mi' }, limits: { memory: '256Mi' } },
    securityContext: { ...securityContext, runAsUser: AUTH_UID },
    volumeMounts: [
      { name: socketVolume, mountPath: PATHS.recorderDir },
      auth.mode === 'kubernetes'
        ? { name: TOKEN_VOLUME, mountPath: SERVICE_ACCOUNT_DIR, readOnly: true }
        : { name: KEYS_VOLUME, mountPath: PATHS.authKeysDir, readOnly: true },
    ],
  };
}

/** The volume of what the sidecar checks with (mounted in it only). */
export function authVolumes(ms: ModelServing): V1Volume[] {
  const auth = ms.spec.auth;
  if (!auth) return [];
  if (auth.mode === 'apiKeys') return [{ name: KEYS_VOLUME, secret: { secretName: auth.apiKeysSecret as string, defaultMode: 0o440 } }];
  return [
    {
      name: TOKEN_VOLUME,
      projected: {
        defaultMode: 0o440,
        sources: [
          { serviceAccountToken: { path: 'token', expirationSeconds: 3600 } },
          { configMap: { name: 'kube-root-ca.crt', items: [{ key: 'ca.crt', path: 'ca.crt' }] } },
          { downwardAPI: { items: [{ path: 'namespace', fieldRef: { fieldPath: 'metadata.namespace' } }] } },
        ],
      },
    },
  ];
}

/** The namespace's auth ServiceAccount (shared by its models, so owned by none). */
export function authServiceAccount(ms: ModelServing): V1ServiceAccount {
  return {
    apiVersion: 'v1',
    kind: 'ServiceAccount',
    metadata: {
      name: AUTH_SERVICE_ACCOUNT,
      namespace: ms.metadata.namespace,
      labels: { [MANAGED_BY]: FIELD_MANAGER, 'app.kubernetes.io/part-of': 'modelship' },
    },
    // Its token reaches the auth sidecar only, through the projected volume.
    automountServiceAccountToken: false,
  };
}

/** The binding with the namespace's auth ServiceAccount among its subjects; undefined when it already is. Pure. */
export function bindingWithSubject(binding: V1ClusterRoleBinding, namespace: string): V1ClusterRoleBinding | undefined {
  const subjects = binding.subjects ?? [];
  if (subjects.some((s) => s.kind === 'ServiceAccount' && s.name === AUTH_SERVICE_ACCOUNT && s.namespace === namespace)) return undefined;
  const subject: RbacV1Subject = { kind: 'ServiceAccount', name: AUTH_SERVICE_ACCOUNT, namespace };
  return {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'ClusterRoleBinding',
    metadata: { name: binding.metadata?.name as string },
    roleRef: binding.roleRef,
    subjects: [...subjects, subject],
  };
}
