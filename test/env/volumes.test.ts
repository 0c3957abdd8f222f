import { parseAllDocuments } from 'yaml';
import { describe, expect, it } from 'vitest';
import { LOCAL_STORAGE_CLASS, localVolumeManifests } from '../../env/volumes.ts';

describe('localVolumeManifests', () => {
  it('gives a StorageClass bound at first use and one volume per directory, all on the real node', () => {
    const docs = parseAllDocuments(localVolumeManifests({ dir: '/env/volumes', node: 'real-node-0', uid: 65532, count: 2 })).map((d) =>
      d.toJS(),
    );
    expect(docs.map((d) => d.kind)).toEqual(['StorageClass', 'PersistentVolume', 'PersistentVolume']);
    expect(docs[0]).toMatchObject({
      metadata: { name: LOCAL_STORAGE_CLASS },
      provisioner: 'kubernetes.io/no-provisioner',
      volumeBindingMode: 'WaitForFirstConsumer',
    });
    expect(docs.slice(1).map((pv) => pv.spec.local.path)).toEqual([
      `/env/volumes/${LOCAL_STORAGE_CLASS}-0`,
      `/env/volumes/${LOCAL_STORAGE_CLASS}-1`,
    ]);
    for (const pv of docs.slice(1)) {
      expect(pv.spec.storageClassName).toBe(LOCAL_STORAGE_CLASS);
      expect(pv.spec.accessModes).toContain('ReadWriteMany');
      expect(pv.spec.nodeAffinity.required.nodeSelectorTerms[0].matchExpressions[0]).toEqual({
        key: 'kubernetes.io/hostname',
        operator: 'In',
        values: ['real-node-0'],
      });
    }
  });
});
