// Reading the national FINESS set's archives (tar.gz of NDJSON) independently of the server,
// with node's zlib and a minimal tar reader, for the tests' expected values.
import { readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';

/** Members of a tar archive: [{ name, data }]. */
export function untar(buf) {
  const out = [];
  for (let at = 0; at + 512 <= buf.length;) {
    const h = buf.subarray(at, at + 512);
    if (h.every((b) => b === 0)) break;
    const name = h.subarray(0, 100).toString('latin1').replace(/\0.*$/s, '');
    const size = parseInt(h.subarray(124, 136).toString('latin1').replace(/\0.*$/s, '').trim(), 8);
    const type = String.fromCharCode(h[156]);
    if (type === '0' || h[156] === 0) out.push({ name, data: buf.subarray(at + 512, at + 512 + size) });
    at += 512 + Math.ceil(size / 512) * 512;
  }
  return out;
}

/** Every NDJSON line of a .tar.gz archive, parsed: [{ line, res }]. */
export function archiveLines(path) {
  const lines = [];
  for (const m of untar(gunzipSync(readFileSync(path)))) {
    for (const l of m.data.toString('utf8').split('\n')) if (l.trim()) lines.push({ line: l, res: JSON.parse(l) });
  }
  return lines;
}
