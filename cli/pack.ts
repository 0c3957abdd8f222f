// Packing a bundle directory into a zip: deterministic (sorted entries, fixed timestamps and modes), so the
// same directory always gives the same sha256 and a pinned hash stays meaningful.
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { lstat, readdir } from 'node:fs/promises';
import { join, relative, sep } from 'node:path';
import { pipeline } from 'node:stream/promises';
import yazl from 'yazl';

const SKIP = new Set(['.git', '.DS_Store', '.modelship']);
const FIXED_MTIME = new Date('2000-01-01T00:00:00Z');

export interface PackResult {
  file: string;
  sha256: string;
  bytes: number;
  entries: number;
}

/** Lists the files of a bundle directory, sorted; refuses links and special files. */
export async function listBundleFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (d: string) => {
    const entries = await readdir(d, { withFileTypes: true });
    entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const e of entries) {
      if (SKIP.has(e.name)) continue;
      const full = join(d, e.name);
      const st = await lstat(full);
      if (st.isSymbolicLink())
        throw new Error(`${relative(dir, full)} is a symbolic link; bundles cannot hold links (the runtime refuses them)`);
      if (st.isDirectory()) await walk(full);
      else if (st.isFile()) out.push(relative(dir, full).split(sep).join('/'));
      else throw new Error(`${relative(dir, full)} is not a regular file`);
    }
  };
  await walk(dir);
  return out;
}

export async function packBundle(dir: string, outFile: string): Promise<PackResult> {
  const files = await listBundleFiles(dir);
  if (files.length === 0) throw new Error(`${dir} holds no files`);
  const zip = new yazl.ZipFile();
  for (const f of files) {
    zip.addReadStreamLazy(f, { mtime: FIXED_MTIME, mode: 0o100644, compress: true }, (cb) => cb(null, createReadStream(join(dir, f))));
  }
  zip.end();
  const hash = createHash('sha256');
  let bytes = 0;
  zip.outputStream.on('data', (c: Buffer) => {
    hash.update(c);
    bytes += c.length;
  });
  await pipeline(zip.outputStream, createWriteStream(outFile));
  return { file: outFile, sha256: hash.digest('hex'), bytes, entries: files.length };
}
