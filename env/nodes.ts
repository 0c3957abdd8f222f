// kwok's fake nodes: Node objects the tool creates, annotated so that the kwok process (started with
// `--manage-nodes-with-annotation-selector`) keeps them and their pods alive. Other nodes, such as the
// process node of a later stage, are left alone by kwok.
import { CoreV1Api, KubeConfig, type V1Node } from '@kubernetes/client-node';

export const KWOK_ANNOTATION = 'kwok.x-k8s.io/node';
/**
 * kwok's nodes fake Running pods that serve nothing: only pods that ask for them go there (the tests' own
 * namespaces do, through their node-selector and default-tolerations annotations: test/env/fixtures.ts).
 */
export const KWOK_TAINT = { key: 'kwok.x-k8s.io/node', value: 'fake', effect: 'NoSchedule' };

function core(kubeconfig: string): CoreV1Api {
  const kc = new KubeConfig();
  kc.loadFromFile(kubeconfig);
  return kc.makeApiClient(CoreV1Api);
}

export function kwokNode(name: string): V1Node {
  const capacity = { cpu: '16', memory: '64Gi', pods: '110', 'ephemeral-storage': '100Gi' };
  return {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: {
      name,
      annotations: { [KWOK_ANNOTATION]: 'fake', 'node.alpha.kubernetes.io/ttl': '0' },
      labels: {
        'kubernetes.io/hostname': name,
        'kubernetes.io/os': 'linux',
        'kubernetes.io/arch': 'amd64',
        'node-role.kubernetes.io/agent': '',
        type: 'kwok',
      },
    },
    spec: { taints: [KWOK_TAINT] },
    status: { allocatable: capacity, capacity },
  };
}

/** Creates `count` kwok nodes (idempotent) and returns their names. */
export async function createKwokNodes(kubeconfig: string, count: number): Promise<string[]> {
  const api = core(kubeconfig);
  const names = Array.from({ length: count }, (_, i) => `kwok-node-${i}`);
  for (const name of names) {
    try {
      await api.createNode({ body: kwokNode(name) });
    } catch (err) {
      if ((err as { code?: number }).code !== 409) throw err;
    }
  }
  return names;
}

export async function kwokNodesReady(kubeconfig: string, names: string[]): Promise<boolean> {
  const api = core(kubeconfig);
  const list = await api.listNode({ labelSelector: 'type=kwok' });
  const ready = new Set(
    list.items.filter((n) => n.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True')).map((n) => n.metadata?.name),
  );
  return names.every((n) => ready.has(n));
}

export const PROCESS_NODE_NAME = 'process-node-0';

/** True when the process node reports Ready (its heartbeat is running). */
export async function processNodeReady(kubeconfig: string, name = PROCESS_NODE_NAME): Promise<boolean> {
  try {
    const node = await core(kubeconfig).readNode({ name });
    return node.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;
  } catch {
    return false;
  }
}
