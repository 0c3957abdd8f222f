import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { installCommand, missingPrerequisites, prerequisites } from '../../env/prereqs.mjs';

const ROOT = join(import.meta.dirname, '../..');
const PATH = process.env.PATH;
afterEach(() => {
  process.env.PATH = PATH;
});

describe('OS prerequisites', () => {
  it('are one list: each names its package, what needs it and why', () => {
    const list = prerequisites();
    expect(list.length).toBeGreaterThan(10);
    for (const p of list) {
      expect(p.package).toMatch(/^[a-z0-9][a-z0-9+.-]+$/);
      expect(['build', 'realNode']).toContain(p.for);
      expect(p.why.length).toBeGreaterThan(5);
    }
    expect(list.map((p) => p.package)).toEqual(
      expect.arrayContaining(['runc', 'containernetworking-plugins', 'iptables', 'conntrack', 'buildah', 'mmdebstrap']),
    );
  });

  it("finds commands on PATH, and leaves out the real node's without it", () => {
    process.env.PATH = '/nonexistent';
    const missing = missingPrerequisites({ realNode: true }).map((p) => p.package);
    for (const pkg of ['golang-go', 'maven', 'buildah', 'util-linux']) expect(missing).toContain(pkg);
    const withoutNode = missingPrerequisites({ realNode: false });
    expect(withoutNode.length).toBeGreaterThan(0);
    expect(withoutNode.every((p) => p.for === 'build')).toBe(true);
  });

  it('say the exact command, each package once', () => {
    const rows = prerequisites().filter((p) => p.provides === 'python3');
    expect(installCommand(rows)).toBe('apt-get update && apt-get install -y python3 python3-pip');
    expect(installCommand(rows, true)).toBe('sudo apt-get update && sudo apt-get install -y python3 python3-pip');
  });

  it('are what CI installs too: .ci/run calls the same script and keeps no list of its own', () => {
    const ci = readFileSync(join(ROOT, '.ci/run'), 'utf8');
    expect(ci).toContain('node env/prereqs.mjs');
    expect(ci).not.toMatch(/runc|buildah|conntrack/);
    const scripts = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).scripts as Record<string, string>;
    for (const s of ['predemo', 'preenv:up', 'pretest']) expect(scripts[s]?.startsWith('node env/prereqs.mjs && ')).toBe(true);
  });
});
