// `modelship serve` as a child process, for tests: started with the given arguments and environment, resolved
// with its "serving …" line once the model is ready (or rejected with what it printed when it exits first).
import { type ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';

export const CLI = join(import.meta.dirname, '../../cli/modelship.ts');
/** The line serve prints once ready: model name, REST base URL, gRPC host:port. */
export const SERVING = /^serving (\S+) at (http:\/\/[^/]+)\/v2\/models\/\S+\/infer and OIP gRPC (\S+) /;

export function serveProcess(
  args: string[],
  env: NodeJS.ProcessEnv,
  timeoutMs = 30_000,
): { child: ChildProcess; serving: Promise<{ name: string; url: string; grpc: string; line: string }> } {
  const child = spawn(process.execPath, [CLI, 'serve', ...args], { env, stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  const serving = new Promise<{ name: string; url: string; grpc: string; line: string }>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no "serving" line within ${timeoutMs} ms: ${err}`)), timeoutMs);
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`serve exited with ${code}: ${err}`));
    });
    child.stderr?.on('data', (b: Buffer) => {
      err += b.toString();
      const m = SERVING.exec(err.split('\n').find((l) => l.startsWith('serving ')) ?? '');
      if (m) {
        clearTimeout(timer);
        resolve({ name: m[1] as string, url: m[2] as string, grpc: m[3] as string, line: m[0] });
      }
    });
  });
  return { child, serving };
}
