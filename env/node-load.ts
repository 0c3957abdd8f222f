// Requests from inside the real node's network namespace (where Service IPs are routed, as on any node),
// for tests: started by `nsenter --net=/run/netns/modelship-node`. Either one request (`once`), printing the status and body as JSON,
// or a bounded load (`load`) of `connections` concurrent loops until SIGTERM or `maxMs`, printing counts.
//   node-load.ts once <url> [json body] [request id]
//   node-load.ts load <url> <json body> <connections> <maxMs>
// With $NODE_LOAD_TOKEN, each request carries it as a bearer token (a model with spec.auth).
import { request } from 'node:http';

function post(url: string, body: string | undefined, requestId?: string): Promise<{ status: number; body: string; requestId?: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      {
        method: body === undefined ? 'GET' : 'POST',
        headers: {
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
          ...(requestId ? { 'x-request-id': requestId } : {}),
          ...(process.env.NODE_LOAD_TOKEN ? { authorization: `Bearer ${process.env.NODE_LOAD_TOKEN}` } : {}),
        },
        timeout: 10_000,
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c) => (text += c));
        res.on('end', () => {
          const requestId = res.headers['x-request-id'];
          resolve({ status: res.statusCode ?? 0, body: text, ...(typeof requestId === 'string' ? { requestId } : {}) });
        });
      },
    );
    req.on('timeout', () => req.destroy(new Error('timeout after 10 s')));
    req.on('error', reject);
    req.end(body);
  });
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
}

await main();
