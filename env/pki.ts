// The environment's own PKI: a CA, the API server's serving certificate, client certificates for the
// admin and the control-plane components, and the service-account signing key pair. ECDSA P-256 keys
// (fast to make; accepted by every Kubernetes component).
import { webcrypto } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
// @peculiar/x509 resolves its ASN.1 codecs with tsyringe, which needs the reflect-metadata polyfill loaded first.
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';

type CryptoKey = webcrypto.CryptoKey;
type CryptoKeyPair = webcrypto.CryptoKeyPair;

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

const alg = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
const TEN_YEARS_MS = 10 * 365 * 24 * 3600 * 1000;

export interface KeyPairFiles {
  cert: string;
  key: string;
}

export interface Pki {
  dir: string;
  ca: KeyPairFiles;
  apiserver: KeyPairFiles;
  admin: KeyPairFiles;
  controllerManager: KeyPairFiles;
  scheduler: KeyPairFiles;
  /** The real node's kubelet (system:node:<name>, group system:nodes, so the Node authorizer applies). */
  kubelet: KeyPairFiles;
  kubeProxy: KeyPairFiles;
  /** The API server's client certificate towards kubelets (logs, exec, port-forward). */
  kubeletClient: KeyPairFiles;
  /** The API server's client certificate towards aggregated APIs (metrics-server). */
  frontProxy: KeyPairFiles;
  serviceAccountKey: string;
  serviceAccountPub: string;
}

async function pemKey(key: CryptoKey): Promise<string> {
  const der = await webcrypto.subtle.exportKey('pkcs8', key);
  return x509.PemConverter.encode(der, 'PRIVATE KEY');
}

async function pemPublic(key: CryptoKey): Promise<string> {
  const der = await webcrypto.subtle.exportKey('spki', key);
  return x509.PemConverter.encode(der, 'PUBLIC KEY');
}

function serial(): string {
  return Buffer.from(webcrypto.getRandomValues(new Uint8Array(16)))
    .toString('hex')
    .replace(/^[89a-f]/, '1');
}

interface Issued {
  cert: x509.X509Certificate;
  keys: CryptoKeyPair;
}

async function issue(subject: string, issuer: Issued | undefined, extensions: x509.Extension[]): Promise<Issued> {
  const keys = (await webcrypto.subtle.generateKey(alg, true, ['sign', 'verify'])) as CryptoKeyPair;
  const now = Date.now();
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: serial(),
    subject,
    issuer: issuer ? issuer.cert.subject : subject,
    notBefore: new Date(now - 60_000),
    notAfter: new Date(now + TEN_YEARS_MS),
    signingAlgorithm: alg,
    publicKey: keys.publicKey,
    signingKey: issuer ? issuer.keys.privateKey : keys.privateKey,
    extensions: [
      ...extensions,
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
      ...(issuer ? [await x509.AuthorityKeyIdentifierExtension.create(issuer.cert)] : []),
    ],
  });
  return { cert, keys };
}

async function clientCert(ca: Issued, commonName: string, organization?: string): Promise<Issued> {
  const subject = organization ? `CN=${commonName}, O=${organization}` : `CN=${commonName}`;
  return issue(subject, ca, [
    new x509.BasicConstraintsExtension(false, undefined, true),
    new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment, true),
    new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.clientAuth]),
  ]);
}

async function save(dir: string, name: string, issued: Issued): Promise<KeyPairFiles> {
  const files = { cert: join(dir, `${name}.crt`), key: join(dir, `${name}.key`) };
  await writeFile(files.cert, issued.cert.toString('pem'));
  await writeFile(files.key, await pemKey(issued.keys.privateKey), { mode: 0o600 });
  return files;
}

/**
 * Creates the PKI in `dir`. `serviceIp` is the first IP of the service CIDR (the `kubernetes` Service);
 * `nodeIp` the real node's address, where its relay serves the API server; `nodeName` its kubelet's name.
 */
export async function createPki(dir: string, serviceIp: string, node: { ip: string; name: string }): Promise<Pki> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const ca = await issue('CN=modelship-test-ca', undefined, [
    new x509.BasicConstraintsExtension(true, 0, true),
    new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
  ]);
  const apiserver = await issue('CN=kube-apiserver', ca, [
    new x509.BasicConstraintsExtension(false, undefined, true),
    new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment, true),
    new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
    new x509.SubjectAlternativeNameExtension([
      { type: 'dns', value: 'localhost' },
      { type: 'dns', value: 'kubernetes' },
      { type: 'dns', value: 'kubernetes.default' },
      { type: 'dns', value: 'kubernetes.default.svc' },
      { type: 'dns', value: 'kubernetes.default.svc.cluster.local' },
      { type: 'ip', value: '127.0.0.1' },
      { type: 'ip', value: serviceIp },
      { type: 'ip', value: node.ip },
    ]),
  ]);
  const sa = (await webcrypto.subtle.generateKey(alg, true, ['sign', 'verify'])) as CryptoKeyPair;
  const serviceAccountKey = join(dir, 'service-account.key');
  const serviceAccountPub = join(dir, 'service-account.pub');
  await writeFile(serviceAccountKey, await pemKey(sa.privateKey), { mode: 0o600 });
  await writeFile(serviceAccountPub, await pemPublic(sa.publicKey));
  return {
    dir,
    ca: await save(dir, 'ca', ca),
    apiserver: await save(dir, 'apiserver', apiserver),
    admin: await save(dir, 'admin', await clientCert(ca, 'modelship-admin', 'system:masters')),
    controllerManager: await save(dir, 'controller-manager', await clientCert(ca, 'system:kube-controller-manager')),
    scheduler: await save(dir, 'scheduler', await clientCert(ca, 'system:kube-scheduler')),
    kubelet: await save(dir, 'kubelet', await clientCert(ca, `system:node:${node.name}`, 'system:nodes')),
    kubeProxy: await save(dir, 'kube-proxy', await clientCert(ca, 'system:kube-proxy')),
    kubeletClient: await save(dir, 'apiserver-kubelet-client', await clientCert(ca, 'kube-apiserver-kubelet-client', 'system:masters')),
    frontProxy: await save(dir, 'front-proxy-client', await clientCert(ca, 'front-proxy-client')),
    serviceAccountKey,
    serviceAccountPub,
  };
}
