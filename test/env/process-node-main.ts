// The process node as a component of the local environment: `node test/env/process-node-main.ts
// <kubeconfig> <node name> <dir>`. Started by `env:up`, stopped by `env:down` (SIGTERM stops its processes).
import { KubeConfig } from '@kubernetes/client-node';
import { ProcessNode } from './process-node.ts';

const [kubeconfig, name, dir] = process.argv.slice(2);
if (!kubeconfig || !name || !dir) {
  console.error('usage: process-node-main.ts <kubeconfig> <node name> <dir>');
  process.exit(2);
}
const kc = new KubeConfig();
kc.loadFromFile(kubeconfig);
const node = new ProcessNode({ kubeConfig: kc, name, dir, log: (m) => console.log(m) });
const stop = async () => {
  await node.stop();
  process.exit(0);
};
process.once('SIGTERM', () => void stop());
process.once('SIGINT', () => void stop());
await node.start();
console.log(`process node ${name} ready`);
