// Requests from inside the real node's network namespace (where Service IPs are routed, as on any node),
// for tests: started by `nsenter --net=/run/netns/modelship-node`. Either one request (`once`), printing the status and body as JSON,
// or a bounded load (`load`) of `connections` concurrent loops until SIGTERM or `maxMs`, printing counts.
//   node-load.ts once <url> [json body] [request id]
//   node-load.ts load <url> <json body> <connections> <maxMs>
// With $NODE_LOAD_TOKEN, each request carries it as a bearer token (a model with spec.auth).
import { Agent, request } from 'undici';

// One pool of keep-alive connections per run (a load's loops share it, at most `connections` at once).
let dispatcher: Agent | undefined;

async function post(
  url: string,
  body: string | undefined,
  requestId?: string,
): Promise<{ status: number; body: string; requestId?: string }> {
  const res = await request(url, {
    method: body === undefined ? 'GET' : 'POST',
    headers: {
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      ...(requestId ? { 'x-request-id': requestId } : {}),
      ...(process.env.NODE_LOAD_TOKEN ? { authorization: `Bearer ${process.env.NODE_LOAD_TOKEN}` } : {}),
    },
    ...(body === undefined ? {} : { body }),
    headersTimeout: 10_000,
    bodyTimeout: 10_000,
    ...(dispatcher ? { dispatcher } : {}),
  });
  const text = await res.body.text();
  const id = res.headers['x-request-id'];
  return { status: res.statusCode, body: text, ...(typeof id === 'string' ? { requestId: id } : {}) };
}

async function main() {
  const [mode, url, body, ...rest] = process.argv.slice(2);
  if (!url || (mode !== 'once' && mode !== 'load')) {
    process.stderr.write('usage: node-load.ts once <url> [body] | load <url> <body> <connections> <maxMs>\n');
    process.exit(2);
  }
  if (mode === 'once') {
    process.stdout.write(`${JSON.stringify(await post(url, body, rest[0]))}\n`);
    return;
  }
  const [connections = '4', maxMs = '120000'] = rest;
  dispatcher = new Agent({ connections: Number(connections) });
  let stop = false;
  process.on('SIGTERM', () => {
    stop = true;
  });
  const deadline = Date.now() + Number(maxMs);
  const counts = { ok: 0, failed: 0, errors: [] as string[] };
  const loop = async () => {
    while (!stop && Date.now() < deadline) {
      try {
        const r = await post(url, body);
        if (r.status === 200) counts.ok++;
        else {
          counts.failed++;
          if (counts.errors.length < 5) counts.errors.push(`${new Date().toISOString()} ${r.status} ${r.body.slice(0, 200)}`);
        }
      } catch (err) {
        counts.failed++;
        if (counts.errors.length < 5) counts.errors.push(`${new Date().toISOString()} ${(err as Error).message}`);
      }
    }
  };
  await Promise.all(Array.from({ length: Number(connections) }, loop));
  process.stdout.write(`${JSON.stringify(counts)}\n`);
  await dispatcher.close();
}

await main();
