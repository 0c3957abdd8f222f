// A raw zip writer for tests: unlike real archivers it writes whatever it is told (absolute names, '..',
// symlinks, lying sizes), which is exactly what hostile bundles do.
import { createHash } from 'node:crypto';
import { crc32, deflateRawSync } from 'node:zlib';

export interface RawEntry {
  name: string;
  data?: Buffer | string;
  /** 0 = stored, 8 = deflated (default 8). */
  method?: 0 | 8;
  /** Unix mode (e.g. 0o120777 for a symlink); written as made-on-Unix external attributes. */
  unixMode?: number;
  /** Uncompressed size to declare instead of the real one. */
  declaredSize?: number;
}

export function rawZip(entries: RawEntry[]): Buffer {
  const locals: Buffer[] = [];
  const centrals: Buffer[] = [];
  let offset = 0;
  for (const e of entries) {
    const data = Buffer.isBuffer(e.data) ? e.data : Buffer.from(e.data ?? '');
    const method = e.method ?? 8;
    const body = method === 8 ? deflateRawSync(data) : data;
    const name = Buffer.from(e.name, 'utf8');
    const crc = crc32(data);
    const size = e.declaredSize ?? data.length;
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(20, 4);
    local.writeUInt16LE(0x0800, 6); // UTF-8 names
    local.writeUInt16LE(method, 8);
    local.writeUInt32LE(crc, 14);
    local.writeUInt32LE(body.length, 18);
    local.writeUInt32LE(size, 22);
    local.writeUInt16LE(name.length, 26);
    locals.push(local, name, body);
    const central = Buffer.alloc(46);
    central.writeUInt32LE(0x02014b50, 0);
    central.writeUInt16LE(e.unixMode !== undefined ? (3 << 8) | 20 : 20, 4); // made by: Unix
    central.writeUInt16LE(20, 6);
    central.writeUInt16LE(0x0800, 8);
    central.writeUInt16LE(method, 10);
    central.writeUInt32LE(crc, 16);
    central.writeUInt32LE(body.length, 20);
    central.writeUInt32LE(size, 24);
    central.writeUInt16LE(name.length, 28);
    central.writeUInt32LE(e.unixMode !== undefined ? (e.unixMode << 16) >>> 0 : 0, 38);
    central.writeUInt32LE(offset, 42);
    centrals.push(central, name);
    offset += local.length + name.length + body.length;
  }
  const cd = Buffer.concat(centrals);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(entries.length, 8);
  end.writeUInt16LE(entries.length, 10);
  end.writeUInt32LE(cd.length, 12);
  end.writeUInt32LE(offset, 16);
  return Buffer.concat([...locals, cd, end]);
}

/** A wheel made here: a real one, installed by uv from the bundle's wheels/ with no index. */
export function wheel(name: string, version: string, code: string): { file: string; data: Buffer } {
  const info = `${name}-${version}.dist-info`;
  const files: Record<string, string> = {
    [`${name}/__init__.py`]: code,
    [`${info}/METADATA`]: `Metadata-Version: 2.1\nName: ${name}\nVersion: ${version}\n`,
    [`${info}/WHEEL`]: 'Wheel-Version: 1.0\nGenerator: modelship-test\nRoot-Is-Purelib: true\nTag: py3-none-any\n',
  };
  const hash = (s: string) => `sha256=${createHash('sha256').update(s).digest('base64url')},${Buffer.byteLength(s)}`;
  const record = `${Object.entries(files)
    .map(([f, s]) => `${f},${hash(s)}`)
    .join('\n')}\n${info}/RECORD,,\n`;
  return {
    file: `${name}-${version}-py3-none-any.whl`,
    data: rawZip([...Object.entries(files).map(([n, d]) => ({ name: n, data: d })), { name: `${info}/RECORD`, data: record }]),
  };
}
