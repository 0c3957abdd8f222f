#!/usr/bin/env node
// The operating system's prerequisites, checked in the first seconds of `npm run demo`, `npm run env:up` and
// `npm test` (and by .ci/run, which calls this same script), before any build. On Debian or Ubuntu as root the
// missing packages are installed with apt-get, each named with what needs it; anywhere else this stops at once
// with the exact command to run. The list itself is env/prereqs.json.
//
// Plain JavaScript on purpose: it runs on the machine's own Node before `npm install` has brought the pinned one.
//   node env/prereqs.mjs            check, and install what is missing where that is possible
//   node env/prereqs.mjs --check    check only; exit 1 and print the command when something is missing
import { spawnSync } from 'node:child_process';
import { accessSync, appendFileSync, constants, existsSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));

/** @typedef {{provides: string, package: string, for: 'build' | 'realNode', why: string, probe?: string[]}} Prerequisite */

/** @returns {Prerequisite[]} */
export function prerequisites() {
  return JSON.parse(readFileSync(join(here, 'prereqs.json'), 'utf8')).packages;
}

/** Whether `name` (an absolute path, or a command looked up on PATH) is there and executable or readable. */
function present(name, path = process.env.PATH ?? '') {
  if (name.startsWith('/')) return existsSync(name);
  for (const dir of path.split(delimiter)) {
    if (!dir) continue;
    try {
      accessSync(join(dir, name), constants.X_OK);
      return true;
    } catch {}
  }
  return false;
}

/**
 * The prerequisites that are missing, for this environment's settings. `realNode: false` (MODELSHIP_REAL_NODE=0)
 * leaves out what only the real node needs.
 * @param {{realNode?: boolean}} [opts]
 * @returns {Prerequisite[]}
 */
export function missingPrerequisites(opts = {}) {
  const realNode = opts.realNode ?? process.env.MODELSHIP_REAL_NODE !== '0';
  return prerequisites().filter((p) => {
    if (p.for === 'realNode' && !realNode) return false;
    if (!present(p.provides)) return true;
    if (p.probe) return spawnSync(p.probe[0], p.probe.slice(1), { stdio: 'ignore' }).status !== 0;
    return false;
  });
}

/** What the machine needs beyond packages, which no install can give: root and cgroup v1 for the real node. */
export function machineProblems(opts = {}) {
  const realNode = opts.realNode ?? process.env.MODELSHIP_REAL_NODE !== '0';
  if (!realNode) return [];
  const problems = [];
  if (process.platform !== 'linux') problems.push(`the real node needs Linux (this is ${process.platform})`);
  else if (!existsSync('/sys/fs/cgroup/memory'))
    problems.push('the real node needs cgroup v1 hierarchies under /sys/fs/cgroup (boot with systemd.unified_cgroup_hierarchy=0)');
  if (process.getuid?.() !== 0) problems.push('the real node needs root (network namespaces, cgroups, mounts): run as root');
  return problems;
}

/** @param {Prerequisite[]} missing @param {boolean} [sudo] */
export function installCommand(missing, sudo = false) {
  const s = sudo ? 'sudo ' : '';
  return `${s}apt-get update && ${s}apt-get install -y ${[...new Set(missing.map((p) => p.package))].join(' ')}`;
}

function isDebianLike() {
  if (!existsSync('/etc/os-release') || !present('apt-get')) return false;
  const release = readFileSync('/etc/os-release', 'utf8');
  return /^(ID|ID_LIKE)=.*\b(debian|ubuntu)\b/m.test(release);
}

/** Runs apt-get quietly: its output (dpkg's progress, hundreds of lines) goes to the log, and its tail to an error. */
function run(cmd, args, log) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' }, maxBuffer: 64 << 20 });
  const output = `${r.stdout ?? ''}${r.stderr ?? ''}`;
  appendFileSync(log, `$ ${cmd} ${args.join(' ')}\n${output}`);
  if (r.status !== 0) {
    const tail = output.trim().split('\n').slice(-15).join('\n');
    throw new Error(`${cmd} ${args.join(' ')} exited with ${r.status ?? r.signal} (log ${log}):\n${tail}`);
  }
}

function main() {
  const checkOnly = process.argv.includes('--check');
  const say = (line) => process.stderr.write(`modelship prerequisites: ${line}\n`);
  const problems = machineProblems();
  if (problems.length) {
    for (const p of problems) say(p);
    say('or start without the real node: MODELSHIP_REAL_NODE=0 (the demo needs it)');
    return 1;
  }
  const missing = missingPrerequisites();
  if (!missing.length) return 0;
  const list = missing.map((p) => `  ${p.package.padEnd(28)} ${p.why}`).join('\n');
  const root = process.getuid?.() === 0;
  if (checkOnly || !root || !isDebianLike()) {
    say(`missing Debian packages:\n${list}`);
    say(
      isDebianLike()
        ? `install them with:\n  ${installCommand(missing, !root)}`
        : `this is not Debian or Ubuntu: install your system's packages that provide ${missing.map((p) => p.provides).join(', ')}`,
    );
    return 1;
  }
  const log = join(tmpdir(), `modelship-prereqs-${process.pid}.log`);
  say(`installing missing Debian packages with apt-get (log ${log}):\n${list}`);
  const started = Date.now();
  run('apt-get', ['update', '-qq'], log);
  run('apt-get', ['install', '-y', '-qq', ...new Set(missing.map((p) => p.package))], log);
  const still = missingPrerequisites();
  if (still.length) {
    say(`still missing after apt-get install: ${still.map((p) => `${p.provides} (${p.package})`).join(', ')}`);
    return 1;
  }
  say(`installed in ${((Date.now() - started) / 1000).toFixed(0)} s`);
  return 0;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  try {
    process.exitCode = main();
  } catch (err) {
    process.stderr.write(`modelship prerequisites: ${err.message}\n`);
    process.exitCode = 1;
  }
}
