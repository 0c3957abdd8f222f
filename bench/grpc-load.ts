// A bounded OIP gRPC load generator for the benchmarks: `concurrency` calls in flight over `channels`
// HTTP/2 connections, for `seconds`, to ModelInfer with one fixed request. Prints one JSON line
// {requests, rps, p50, p99, errors}. Run as its own process, as autocannon's load is its own work.
//   node bench/grpc-load.ts <host:port> <model> <seconds> <concurrency> <channels> <request JSON>
import * as grpc from '@grpc/grpc-js';
import { oipPackage } from '../runtime/protocol/grpc-proto.ts';

const [target = '', model = '', secondsArg = '10', concurrencyArg = '64', channelsArg = '4', requestJson = '{}'] = process.argv.slice(2);
const seconds = Number(secondsArg);
const concurrency = Number(concurrencyArg);
const Client = oipPackage().inference.GRPCInferenceService;
const clients = Array.from(
  { length: Number(channelsArg) },
  // Distinct channel options give each client its own connection.
  (_, i) => new Client(target, grpc.credentials.createInsecure(), { 'grpc.channel_id': i }) as unknown as Record<string, Function>,
);
const request = { model_name: model, ...JSON.parse(requestJson) };
request.raw_input_contents = (request.raw_input_contents ?? []).map((b64: string) => Buffer.from(b64, 'base64'));

const latencies: number[] = [];
let errors = 0;
const end = performance.now() + seconds * 1000;

async function worker(i: number): Promise<void> {
  const client = clients[i % clients.length] as Record<string, Function>;
  while (performance.now() < end) {
    const t0 = performance.now();
    await new Promise<void>((resolve) => {
      (client.ModelInfer as Function).call(client, request, (err: grpc.ServiceError | null) => {
        if (err) errors++;
        else latencies.push(performance.now() - t0);
        resolve();
      });
    });
  }
}

const t0 = performance.now();
await Promise.all(Array.from({ length: concurrency }, (_, i) => worker(i)));
const elapsed = (performance.now() - t0) / 1000;
latencies.sort((a, b) => a - b);
const pct = (p: number) => Number((latencies[Math.min(latencies.length - 1, Math.floor((p / 100) * latencies.length))] ?? 0).toFixed(2));
process.stdout.write(
  `${JSON.stringify({ requests: latencies.length, rps: Math.round(latencies.length / elapsed), p50: pct(50), p99: pct(99), errors })}\n`,
);
for (const c of clients) (c.close as Function).call(c);
