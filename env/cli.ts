// `npm run env:up | env:down | env:status | env:build`: the local environment from the command line.
import { parseArgs } from 'node:util';
import { builtState, ensureBuilt } from './build.ts';
import { cacheRoot } from './cache.ts';
import { down, envFile, isHealthy, readEnv, status, up } from './env.ts';
import { ensureImages } from './images.ts';
import { containerdRoot } from './real-node.ts';

const { positionals, values } = parseArgs({
  allowPositionals: true,
  options: { nodes: { type: 'string', default: '2' }, help: { type: 'boolean', short: 'h' } },
});
const command = positionals[0];

const usage = `usage: node env/cli.ts <command>
  build     build the components into the cache (${cacheRoot()}) without starting them
  up        build what is missing, start everything, write ${envFile()}
            --nodes N   number of kwok nodes (default 2)
  status    health of each component of the running environment
  images    rebuild the images whose inputs changed and load them into the running real node
  down      stop the processes the environment started and remove their data`;

function print(info: Awaited<ReturnType<typeof up>>) {
  console.log(`
API server   ${info.apiServer}  (Kubernetes ${info.kubernetesVersion})
kubeconfig   ${info.kubeconfig}
S3 (MinIO)   ${info.s3.endpoint}  access key ${info.s3.accessKey} (secret key in ${envFile()})
Kafka        ${info.kafka.bootstrapServers.join(',')}
nodes        ${[...info.nodes, info.processNode, ...(info.realNode ? [`${info.realNode.name} (real: ${info.realNode.nodeIp}, netns ${info.realNode.netns})`] : [])].join(', ')}
python       ${info.binaries.python}  (uv ${info.binaries.uv})
data + logs  ${info.root}

  export KUBECONFIG=${info.kubeconfig}
  ${info.binaries.kubectl} get nodes`);
}

async function main(): Promise<number> {
  if (values.help || !command) {
    console.log(usage);
    return command || values.help ? 0 : 2;
  }
  switch (command) {
    case 'build': {
      await ensureBuilt();
      console.log(
        Object.entries(builtState())
          .map(([k, v]) => `${k}: ${v ? 'built' : 'missing'}`)
          .join('\n'),
      );
      return 0;
    }
    case 'up': {
      const existing = await readEnv();
      if (existing) {
        if (await isHealthy(existing)) {
          console.log('modelship env: already up');
          print(existing);
          return 0;
        }
        console.error('modelship env: the recorded environment is not healthy; stopping what is left of it');
        await down(existing);
      }
      const nodes = Number(values.nodes);
      if (!Number.isInteger(nodes) || nodes < 0) throw new Error(`--nodes must be a whole number, got ${values.nodes}`);
      print(await up({ nodes }));
      return 0;
    }
    case 'status': {
      const info = await readEnv();
      if (!info) {
        console.log(`modelship env: not up (no ${envFile()})`);
        return 1;
      }
      const rows = await status(info);
      for (const r of rows) {
        console.log(`${r.healthy ? 'ok  ' : 'FAIL'} ${r.name.padEnd(24)} pid ${String(r.pid ?? '-').padEnd(8)} ${r.detail}`);
      }
      return rows.every((r) => r.healthy) ? 0 : 1;
    }
    case 'images': {
      const info = await readEnv();
      if (!info?.realNode) {
        console.log('modelship env: no real node up');
        return 1;
      }
      const ids = await ensureImages({
        bins: info.binaries,
        ctr: info.binaries.ctr,
        containerdSocket: info.realNode.containerdSocket,
        containerdRoot: containerdRoot(),
        logFile: `${info.root}/logs/images.log`,
        progress: (line) => console.error(line),
      });
      for (const [k, id] of Object.entries(ids)) console.log(`${k.padEnd(14)} ${id.slice(0, 12)}`);
      return 0;
    }
    case 'down': {
      const info = await readEnv();
      if (!info) {
        console.log('modelship env: nothing to stop');
        return 0;
      }
      await down(info);
      console.log('modelship env: stopped and removed');
      return 0;
    }
    default:
      console.error(`unknown command ${command}\n${usage}`);
      return 2;
  }
}

main().then(
  (code) => process.exit(code),
  (err: Error) => {
    console.error(`modelship env: ${err.message}`);
    process.exit(1);
  },
);
