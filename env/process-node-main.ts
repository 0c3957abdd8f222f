// The process node as a component of the local environment: `node env/process-node-main.ts
// <kubeconfig> <node name> <dir> --python <path> --uv <path>` (the environment's Python and uv, for
// runtime-python pods). Started by `env:up`, stopped by `env:down` (SIGTERM stops its processes).
import { parseArgs } from 'node:util';
import { KubeConfig } from '@kubernetes/client-node';
import { ProcessNode } from './process-node.ts';

const { positionals, values } = parseArgs({
  allowPositionals: true,
  options: { python: { type: 'string' }, uv: { type: 'string' } },
});
const [kubeconfig, name, dir] = positionals;
if (!kubeconfig || !name || !dir || !values.python || !values.uv) {
  console.error('usage: process-node-main.ts <kubeconfig> <node name> <dir> --python <path> --uv <path>');
  process.exit(2);
}
const kc = new KubeConfig();
kc.loadFromFile(kubeconfig);
const node = new ProcessNode({
  kubeConfig: kc,
  name,
  dir,
  python: { python: values.python, uv: values.uv },
  log: (m) => console.log(m),
});
const stop = async () => {
  await node.stop();
  process.exit(0);
};
process.once('SIGTERM', () => void stop());
process.once('SIGINT', () => void stop());
await node.start();
console.log(`process node ${name} ready`);
