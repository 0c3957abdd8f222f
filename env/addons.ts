// Cluster add-ons on the real node, as pods of the images built here: CoreDNS (Service names for pods, at
// CLUSTER_DNS_IP) and metrics-server (metrics.k8s.io: pods' CPU and memory for HPAs and `kubectl top`). Both
// run as non-root with a read-only root filesystem, in kube-system.
import { execFileSync } from 'node:child_process';
import { AppsV1Api, KubeConfig } from '@kubernetes/client-node';
import { stringify } from 'yaml';
import { IMAGES } from './images.ts';
import { CLUSTER_DNS_IP } from './real-node.ts';

const onRealNode = { nodeSelector: { type: 'real' } };

const restricted = {
  allowPrivilegeEscalation: false,
  readOnlyRootFilesystem: true,
  runAsNonRoot: true,
  runAsUser: 65532,
  capabilities: { drop: ['ALL'] },
  seccompProfile: { type: 'RuntimeDefault' },
};

const COREFILE = `.:1053 {
    errors
    health :8080
    ready :8181
    kubernetes cluster.local in-addr.arpa ip6.arpa {
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
        ttl 5
    }
    cache 5
}
`;

/** The add-ons' objects. Pure. */
export function addonObjects(): object[] {
  const ns = 'kube-system';
  const labels = (app: string) => ({ 'k8s-app': app });
  return [
    // CoreDNS -----------------------------------------------------------------------------------------------
    { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'coredns', namespace: ns } },
    {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'ClusterRole',
      metadata: { name: 'modelship-env:coredns' },
      rules: [
        { apiGroups: [''], resources: ['endpoints', 'services', 'pods', 'namespaces'], verbs: ['list', 'watch'] },
        { apiGroups: ['discovery.k8s.io'], resources: ['endpointslices'], verbs: ['list', 'watch'] },
      ],
    },
    {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'ClusterRoleBinding',
      metadata: { name: 'modelship-env:coredns' },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'modelship-env:coredns' },
      subjects: [{ kind: 'ServiceAccount', name: 'coredns', namespace: ns }],
    },
    { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'coredns', namespace: ns }, data: { Corefile: COREFILE } },
    {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: 'coredns', namespace: ns, labels: labels('kube-dns') },
      spec: {
        replicas: 1,
        selector: { matchLabels: labels('kube-dns') },
        template: {
          metadata: { labels: labels('kube-dns') },
          spec: {
            ...onRealNode,
            serviceAccountName: 'coredns',
            dnsPolicy: 'Default',
            containers: [
              {
                name: 'coredns',
                image: IMAGES.coredns,
                imagePullPolicy: 'Never',
                args: ['-conf', '/etc/coredns/Corefile'],
                ports: [
                  { name: 'dns', containerPort: 1053, protocol: 'UDP' },
                  { name: 'dns-tcp', containerPort: 1053, protocol: 'TCP' },
                ],
                readinessProbe: { httpGet: { path: '/ready', port: 8181 }, periodSeconds: 2 },
                livenessProbe: { httpGet: { path: '/health', port: 8080 }, periodSeconds: 10 },
                resources: { requests: { cpu: '20m', memory: '32Mi' }, limits: { memory: '128Mi' } },
                securityContext: restricted,
                volumeMounts: [{ name: 'config', mountPath: '/etc/coredns', readOnly: true }],
              },
            ],
            volumes: [{ name: 'config', configMap: { name: 'coredns' } }],
          },
        },
      },
    },
    {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: 'kube-dns', namespace: ns, labels: labels('kube-dns') },
      spec: {
        clusterIP: CLUSTER_DNS_IP,
        selector: labels('kube-dns'),
        ports: [
          { name: 'dns', port: 53, targetPort: 1053, protocol: 'UDP' },
          { name: 'dns-tcp', port: 53, targetPort: 1053, protocol: 'TCP' },
        ],
      },
    },
    // metrics-server -------------------------------------------------------------------------------------------
    { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'metrics-server', namespace: ns } },
    {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'ClusterRole',
      metadata: { name: 'modelship-env:metrics-server' },
      rules: [
        { apiGroups: [''], resources: ['nodes/metrics'], verbs: ['get'] },
        { apiGroups: [''], resources: ['pods', 'nodes'], verbs: ['get', 'list', 'watch'] },
      ],
    },
    {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'ClusterRole',
      metadata: {
        name: 'modelship-env:aggregated-metrics-reader',
        labels: { 'rbac.authorization.k8s.io/aggregate-to-view': 'true', 'rbac.authorization.k8s.io/aggregate-to-admin': 'true' },
      },
      rules: [{ apiGroups: ['metrics.k8s.io'], resources: ['pods', 'nodes'], verbs: ['get', 'list', 'watch'] }],
    },
    ...[
      ['modelship-env:metrics-server', 'modelship-env:metrics-server'],
      ['modelship-env:metrics-server:auth-delegator', 'system:auth-delegator'],
    ].map(([name, role]) => ({
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'ClusterRoleBinding',
      metadata: { name },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: role },
      subjects: [{ kind: 'ServiceAccount', name: 'metrics-server', namespace: ns }],
    })),
    {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'RoleBinding',
      metadata: { name: 'modelship-env:metrics-server:auth-reader', namespace: ns },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'extension-apiserver-authentication-reader' },
      subjects: [{ kind: 'ServiceAccount', name: 'metrics-server', namespace: ns }],
    },
    {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: 'metrics-server', namespace: ns, labels: labels('metrics-server') },
      spec: {
        replicas: 1,
        selector: { matchLabels: labels('metrics-server') },
        template: {
          metadata: { labels: labels('metrics-server') },
          spec: {
            ...onRealNode,
            serviceAccountName: 'metrics-server',
            containers: [
              {
                name: 'metrics-server',
                image: IMAGES.metricsServer,
                imagePullPolicy: 'Never',
                args: [
                  '--cert-dir=/tmp',
                  '--secure-port=10250',
                  '--kubelet-preferred-address-types=InternalIP',
                  // The kubelet's serving certificate is self-signed (no serving-certificate bootstrap here).
                  '--kubelet-insecure-tls',
                  // Production default 60 s; HPA tests need fresh figures sooner (it must exceed the timeout).
                  '--metric-resolution=15s',
                  '--kubelet-request-timeout=5s',
                ],
                ports: [{ name: 'https', containerPort: 10250 }],
                readinessProbe: { httpGet: { path: '/readyz', port: 'https', scheme: 'HTTPS' }, periodSeconds: 2 },
                resources: { requests: { cpu: '20m', memory: '64Mi' }, limits: { memory: '256Mi' } },
                securityContext: restricted,
                volumeMounts: [{ name: 'tmp', mountPath: '/tmp' }],
              },
            ],
            volumes: [{ name: 'tmp', emptyDir: {} }],
          },
        },
      },
    },
    {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: 'metrics-server', namespace: ns, labels: labels('metrics-server') },
      spec: { selector: labels('metrics-server'), ports: [{ name: 'https', port: 443, targetPort: 'https' }] },
    },
    {
      apiVersion: 'apiregistration.k8s.io/v1',
      kind: 'APIService',
      metadata: { name: 'v1beta1.metrics.k8s.io' },
      spec: {
        service: { name: 'metrics-server', namespace: ns },
        group: 'metrics.k8s.io',
        version: 'v1beta1',
        insecureSkipTLSVerify: true,
        groupPriorityMinimum: 100,
        versionPriority: 100,
      },
    },
  ];
}

export async function applyAddons(kubectl: string, kubeconfig: string): Promise<void> {
  const yaml = addonObjects()
    .map((o) => stringify(o))
    .join('---\n');
  execFileSync(kubectl, ['--kubeconfig', kubeconfig, 'apply', '--server-side', '--field-manager=modelship-env', '-f', '-'], {
    input: yaml,
    stdio: ['pipe', 'ignore', 'pipe'],
  });
}

/** CoreDNS and metrics-server each have a ready replica. */
export async function addonsReady(kubeconfig: string): Promise<boolean> {
  const kc = new KubeConfig();
  kc.loadFromFile(kubeconfig);
  const apps = kc.makeApiClient(AppsV1Api);
  try {
    const ds = await Promise.all(
      ['coredns', 'metrics-server'].map((name) => apps.readNamespacedDeployment({ name, namespace: 'kube-system' })),
    );
    return ds.every((d) => (d.status?.readyReplicas ?? 0) >= 1);
  } catch {
    return false;
  }
}
