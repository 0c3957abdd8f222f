// Persistent volumes for the local cluster, as a user's cluster offers them through a StorageClass: a pool of
// directories on the real node, each a PersistentVolume of the class `modelship-local`. The demo's operator
// claims one per model namespace for the shared Python environment cache (helm python.envCache), so a second
// replica finds the first one's environment instead of installing again.
//
// Static volumes rather than a provisioner: the in-tree hostPath provisioner makes directories only root can
// write (the pods run as 65532 under Pod Security "restricted", and fsGroup does not apply to hostPath), and a
// provisioner such as local-path-provisioner needs a helper image of its own. When the environment starts, a
// volume bound to no claim is emptied (nothing of one namespace's cache reaches another), and one whose claim
// went away (its namespace was deleted) is offered again.
import { execFileSync } from 'node:child_process';
import { chmod, chown, mkdir, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { stringify } from 'yaml';

export const LOCAL_STORAGE_CLASS = 'modelship-local';
export const LOCAL_VOLUME_COUNT = 8;
/** Nominal: the volumes share the machine's disk. */
export const LOCAL_VOLUME_SIZE = '50Gi';
const MANAGER = 'modelship-env';
const LABEL = 'modelship.dev/env-volume';

export interface LocalVolumes {
  /** The directory holding one subdirectory per volume. */
  dir: string;
  node: string;
  /** Owner of the directories: the uid (and gid) the pods run as. */
  uid: number;
  count?: number;
}

export const volumeName = (i: number) => `${LOCAL_STORAGE_CLASS}-${i}`;

/** The StorageClass and the PersistentVolumes, as one YAML stream. Pure. */
export function localVolumeManifests(v: LocalVolumes): string {
  const count = v.count ?? LOCAL_VOLUME_COUNT;
  const docs: object[] = [
    {
      apiVersion: 'storage.k8s.io/v1',
      kind: 'StorageClass',
      metadata: { name: LOCAL_STORAGE_CLASS, labels: { 'app.kubernetes.io/part-of': 'modelship-env' } },
      provisioner: 'kubernetes.io/no-provisioner',
      reclaimPolicy: 'Retain',
      // Bound when the first pod that uses the claim is scheduled, so the scheduler places it on the volume's node.
      volumeBindingMode: 'WaitForFirstConsumer',
    },
  ];
  for (let i = 0; i < count; i++) {
    docs.push({
      apiVersion: 'v1',
      kind: 'PersistentVolume',
      metadata: { name: volumeName(i), labels: { [LABEL]: 'true', 'app.kubernetes.io/part-of': 'modelship-env' } },
      spec: {
        capacity: { storage: LOCAL_VOLUME_SIZE },
        accessModes: ['ReadWriteOnce', 'ReadWriteMany'],
        persistentVolumeReclaimPolicy: 'Retain',
        storageClassName: LOCAL_STORAGE_CLASS,
        local: { path: join(v.dir, volumeName(i)) },
        nodeAffinity: {
          required: { nodeSelectorTerms: [{ matchExpressions: [{ key: 'kubernetes.io/hostname', operator: 'In', values: [v.node] }] }] },
        },
      },
    });
  }
  return docs.map((d) => stringify(d)).join('---\n');
}

interface PvList {
  items: { metadata: { name: string }; status?: { phase?: string } }[];
}

/**
 * Makes the directories (owned by `uid`, mode 0770), empties those of volumes bound to no claim, applies the class
 * and the volumes, and offers again each volume whose claim is gone (phase Released). Idempotent.
 */
export async function applyLocalVolumes(kubectl: string, kubeconfig: string, v: LocalVolumes): Promise<void> {
  const count = v.count ?? LOCAL_VOLUME_COUNT;
  const k = (args: string[], input?: string) =>
    execFileSync(kubectl, ['--kubeconfig', kubeconfig, ...args], { input, encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'] });
  const list = JSON.parse(k(['get', 'pv', '-l', `${LABEL}=true`, '-o', 'json'])) as PvList;
  const phases = new Map(list.items.map((pv) => [pv.metadata.name, pv.status?.phase]));
  const released = [...phases].filter(([, phase]) => phase === 'Released').map(([name]) => name);
  for (let i = 0; i < count; i++) {
    const path = join(v.dir, volumeName(i));
    if (phases.get(volumeName(i)) !== 'Bound') {
      for (const entry of await readdir(path).catch(() => [])) await rm(join(path, entry), { recursive: true, force: true });
    }
    await mkdir(path, { recursive: true });
    await chown(path, v.uid, v.uid);
    await chmod(path, 0o770);
  }
  k(['apply', '--server-side', '--field-manager', MANAGER, '-f', '-'], localVolumeManifests(v));
  for (const name of released) k(['patch', 'pv', name, '--type', 'json', '-p', '[{"op":"remove","path":"/spec/claimRef"}]']);
}
