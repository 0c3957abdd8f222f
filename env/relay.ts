// Carries TCP connections between the real node's network namespace and the machine's loopback, through Unix
// sockets (a path in the file system is reachable from every network namespace). The control plane, MinIO and
// Kafka listen on 127.0.0.1 only; the node's kubelet, kube-proxy and pods reach them at the node's address.
// Two halves, one process each:
//   relay.ts to-tcp <dir> <name>=127.0.0.1:<port> …    in the root namespace: <dir>/<name>.sock → the port
//   relay.ts to-unix <dir> <ip>:<port>=<name> …        in the node's namespace: <ip>:<port> → <dir>/<name>.sock
import { rmSync } from 'node:fs';
import { connect, createServer, type Socket } from 'node:net';
import { join } from 'node:path';

/** `a=b` pairs of the command line. Pure. */
export function parsePairs(args: string[]): [string, string][] {
  return args.map((a) => {
    const i = a.indexOf('=');
    if (i <= 0 || i === a.length - 1) throw new Error(`expected name=value, got ${a}`);
    return [a.slice(0, i), a.slice(i + 1)];
  });
}

/** host:port → its parts. Pure. */
export function hostPort(s: string): { host: string; port: number } {
  const i = s.lastIndexOf(':');
  const port = Number(s.slice(i + 1));
  if (i <= 0 || !Number.isInteger(port) || port <= 0 || port > 65535) throw new Error(`expected host:port, got ${s}`);
  return { host: s.slice(0, i), port };
}

function splice(a: Socket, b: Socket) {
  a.pipe(b);
  b.pipe(a);
  const close = () => {
    a.destroy();
    b.destroy();
  };
  a.on('error', close).on('close', close);
  b.on('error', close).on('close', close);
}

function main(argv: string[]) {
  const [mode, dir, ...rest] = argv;
  if ((mode !== 'to-tcp' && mode !== 'to-unix') || !dir || rest.length === 0) {
    process.stderr.write('usage: relay.ts to-tcp|to-unix <dir> <from>=<to> …\n');
    process.exit(2);
  }
  for (const [from, to] of parsePairs(rest)) {
    const server =
      mode === 'to-tcp'
        ? createServer((s) => splice(s, connect(hostPort(to))))
        : createServer((s) => splice(s, connect(join(dir, `${to}.sock`))));
    server.on('error', (err) => {
      process.stderr.write(`relay ${from}: ${err.message}\n`);
      process.exit(1);
    });
    if (mode === 'to-tcp') {
      const path = join(dir, `${from}.sock`);
      rmSync(path, { force: true });
      server.listen(path, () => process.stdout.write(`listening on ${path} → ${to}\n`));
    } else {
      const { host, port } = hostPort(from);
      server.listen(port, host, () => process.stdout.write(`listening on ${from} → ${to}\n`));
    }
  }
  process.on('SIGTERM', () => process.exit(0));
}

if (import.meta.url === `file://${process.argv[1]}`) main(process.argv.slice(2));
