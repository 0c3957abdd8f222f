import { X509Certificate, createPrivateKey, createPublicKey, sign, verify } from 'node:crypto';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPki, type Pki } from '../../env/pki.ts';

let dir: string;
let pki: Pki;
const cert = async (file: string) => new X509Certificate(await readFile(file));

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'pki-test-'));
  pki = await createPki(join(dir, 'pki'), '10.96.0.1', { ip: '10.250.0.2', name: 'real-node-0' });
});
afterAll(() => rm(dir, { recursive: true, force: true }));

describe('createPki', () => {
  it('makes a CA that signs every other certificate', async () => {
    const ca = await cert(pki.ca.cert);
    expect(ca.ca).toBe(true);
    for (const files of [pki.apiserver, pki.admin, pki.controllerManager, pki.scheduler, pki.kubelet, pki.kubeProxy]) {
      const c = await cert(files.cert);
      expect(c.verify(ca.publicKey), files.cert).toBe(true);
      expect(c.checkIssued(ca)).toBe(true);
      expect(c.ca).toBe(false);
      // the key file holds the private half of the certificate's key
      const key = createPrivateKey(await readFile(files.key));
      const sig = sign('sha256', Buffer.from('probe'), key);
      expect(verify('sha256', Buffer.from('probe'), c.publicKey, sig)).toBe(true);
    }
  });

  it("gives the API server's certificate the loopback names, the first service IP and the real node's address", async () => {
    const c = await cert(pki.apiserver.cert);
    expect(c.checkIP('10.250.0.2')).toBe('10.250.0.2');
    expect(c.checkHost('localhost')).toBe('localhost');
    expect(c.checkIP('127.0.0.1')).toBe('127.0.0.1');
    expect(c.checkIP('10.96.0.1')).toBe('10.96.0.1');
    expect(c.checkHost('kubernetes.default.svc')).toBe('kubernetes.default.svc');
    expect(c.checkHost('example.com')).toBeUndefined();
    expect(c.keyUsage).toContain('1.3.6.1.5.5.7.3.1'); // serverAuth
  });

  it('puts the admin in system:masters and the components under their RBAC user names', async () => {
    expect((await cert(pki.admin.cert)).subject).toMatch(/O=system:masters/);
    expect((await cert(pki.admin.cert)).keyUsage).toContain('1.3.6.1.5.5.7.3.2'); // clientAuth
    expect((await cert(pki.controllerManager.cert)).subject).toMatch(/CN=system:kube-controller-manager/);
    expect((await cert(pki.scheduler.cert)).subject).toMatch(/CN=system:kube-scheduler/);
    // The Node authorizer knows a kubelet by this name and group.
    expect((await cert(pki.kubelet.cert)).subject).toBe('CN=system:node:real-node-0\nO=system:nodes');
    expect((await cert(pki.kubeProxy.cert)).subject).toMatch(/CN=system:kube-proxy/);
  });

  it('writes a matching service-account key pair, private keys owner-only', async () => {
    const priv = createPrivateKey(await readFile(pki.serviceAccountKey));
    const pub = createPublicKey(await readFile(pki.serviceAccountPub));
    const sig = sign('sha256', Buffer.from('token'), priv);
    expect(verify('sha256', Buffer.from('token'), pub, sig)).toBe(true);
    for (const f of [pki.serviceAccountKey, pki.admin.key, pki.ca.key]) {
      expect((await stat(f)).mode & 0o077, f).toBe(0);
    }
  });
});
