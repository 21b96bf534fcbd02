// Shared helpers for the black-box suite: start/stop a real `ror serve`, FHIR client, raw HTTP,
// demo data, store snapshots. No knowledge of the server's internals is used here.
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Client, RESPONSE_KEY } from 'fhir-kit-client';

const here = dirname(fileURLToPath(import.meta.url));
export const SOURCE_DIR = process.env.ROR_SOURCE_DIR || resolve(here, '../../..');
export const SHARED_DIR = process.env.ROR_SHARED_DIR || resolve(SOURCE_DIR, '../shared');
export const ROR_BIN = process.env.ROR_BIN || join(SOURCE_DIR, 'build/asan/src/ror');
export const DEMO_FILE = join(SOURCE_DIR, 'data/demo/demo-region.json');
export const EXAMPLES_DIR = join(SHARED_DIR, 'spec/ror-ig/examples');

export const ROR_SD = 'https://interop.esante.gouv.fr/ig/fhir/ror/StructureDefinition/';
export const SC_URL = `${ROR_SD}ror-location-supported-capacity`;
export const TYPES = ['Organization', 'HealthcareService', 'Location', 'Practitioner', 'PractitionerRole', 'Task'];

const READY = /^ror: listening on (https?:\/\/127\.0\.0\.1:(\d+)\/fhir)$/m;

// Every server the suite starts has an ARS administrator with an API key, which client() and
// raw() send unless told otherwise: tests of access control ask for other principals.
export const ADMIN_LOGIN = 'admin-tests';
const keysByOrigin = new Map();

/** `ror user ...` on a data dir no server holds; returns stdout (throws on a non-zero exit). */
export function rorUser(dataDir, args, { input } = {}) {
  return execFileSync(ROR_BIN, ['user', ...args, '--data', dataDir, '--author', 'tests'],
    { input, encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'] });
}

/** An account (created if missing, with these roles) and a new API key for it. */
export function accountKey(dataDir, login, roles = []) {
  try {
    rorUser(dataDir, ['add', login, ...roles.flatMap((r) => ['--role', r]), '--password-stdin'], { input: 'mot-de-passe-de-test\n' });
  } catch (e) {
    if (!/existe déjà/.test(String(e.stderr))) throw e;
  }
  return rorUser(dataDir, ['key', login]).trim().split('\n').pop();
}

/** The Authorization headers of the suite's administrator for the server at `base`. */
export function adminHeaders(base) {
  const k = keysByOrigin.get(new URL(base).origin);
  return k ? { authorization: `Bearer ${k}` } : {};
}

export function freshDir(tag = 'ror-bb-') {
  return mkdtempSync(join(tmpdir(), tag));
}

/**
 * Start `ror serve` on a fresh (or given) data dir and port 0; resolves once the ready line is printed.
 * Returns { base, port, dataDir, pid, stop(), kill(), exited, stderr() }.
 */
export async function startServer({ seed = false, maxBody, dataDir, timeoutMs = 30000, args: extra = [], admin = true } = {}) {
  const dir = dataDir || freshDir();
  const adminKey = admin ? accountKey(dir, ADMIN_LOGIN, ['ars-admin']) : undefined;
  const args = ['serve', '--data', dir, '--port', '0', ...extra];
  if (seed) args.push('--seed', seed === true ? DEMO_FILE : seed);
  if (maxBody !== undefined) args.push('--max-body', String(maxBody));
  const proc = spawn(ROR_BIN, args, { stdio: ['ignore', 'pipe', 'pipe'], env: process.env });
  let out = '';
  let err = '';
  proc.stderr.on('data', (d) => { err += d; if (err.length > 200000) err = err.slice(-100000); });
  const exited = new Promise((res) => proc.on('exit', (code, signal) => res({ code, signal })));
  const base = await new Promise((res, rej) => {
    const timer = setTimeout(() => { proc.kill('SIGKILL'); rej(new Error(`ror did not start in ${timeoutMs} ms:\n${err}`)); }, timeoutMs);
    proc.stdout.on('data', (d) => {
      out += d;
      const m = READY.exec(out);
      if (m) { clearTimeout(timer); res(m[1]); }
    });
    proc.on('error', (e) => { clearTimeout(timer); rej(e); });
    exited.then(({ code, signal }) => { clearTimeout(timer); rej(new Error(`ror exited early (${code ?? signal}):\n${err}`)); });
  });
  const port = Number(new URL(base).port);
  if (adminKey) keysByOrigin.set(new URL(base).origin, adminKey);
  let stopped = false;
  return {
    base, port, dataDir: dir, pid: proc.pid, exited, adminKey,
    stderr: () => err,
    /** SIGTERM and wait; throws if the server does not exit cleanly (exit code 0). */
    async stop({ removeDir = !dataDir } = {}) {
      if (stopped) return;
      stopped = true;
      proc.kill('SIGTERM');
      const t = setTimeout(() => proc.kill('SIGKILL'), 20000);
      const r = await exited;
      clearTimeout(t);
      if (removeDir) rmSync(dir, { recursive: true, force: true });
      if (r.code !== 0) throw new Error(`ror did not exit cleanly after SIGTERM (code ${r.code}, signal ${r.signal}):\n${err.slice(-8000)}`);
    },
    /** SIGKILL, no waiting for anything in flight. */
    async kill() {
      stopped = true;
      proc.kill('SIGKILL');
      return exited;
    },
  };
}

/** A FHIR client: the suite's administrator by default, else `{ key }` (an API key), `{ headers }`
 * or `{ anonymous: true }`. */
export function client(base, { key, headers = {}, anonymous = false } = {}) {
  const auth = anonymous ? {} : key ? { authorization: `Bearer ${key}` } : adminHeaders(base);
  return new Client({ baseUrl: base, customHeaders: { ...auth, ...headers } });
}

/** Raw HTTP via fetch: returns { status, headers, text, json }. path is relative to base (or absolute). */
export async function raw(base, path, { method = 'GET', headers = {}, body, anonymous = false } = {}) {
  const url = path.startsWith('http') ? path : `${base}/${path.replace(/^\//, '')}`;
  const named = Object.keys(headers).some((h) => ['authorization', 'cookie'].includes(h.toLowerCase()));
  const res = await fetch(url, { method, headers: named || anonymous ? headers : { ...adminHeaders(base), ...headers }, body });
  const text = await res.text();
  let json;
  try { json = text ? JSON.parse(text) : undefined; } catch { json = undefined; }
  return { status: res.status, headers: res.headers, text, json };
}

export const FHIR_JSON = { 'content-type': 'application/fhir+json' };

/** Run a fhir-kit-client call expected to fail; returns { status, data }. Fails if it succeeds. */
export async function expectFail(promise) {
  try {
    const r = await promise;
    throw Object.assign(new Error(`expected an HTTP error, got success: ${JSON.stringify(r).slice(0, 300)}`), { unexpected: true });
  } catch (e) {
    if (e.unexpected) throw e;
    if (!e.response) throw e;
    return { status: e.response.status, data: e.response.data, headers: e.config?.headers };
  }
}

/** The fetch Response (status, headers) behind a fhir-kit-client result. */
export function responseOf(result) { return result[RESPONSE_KEY]; }
export function headersOf(result) { return result[RESPONSE_KEY].headers; }

/** FHIRPath Patch via fhir-kit-client's generic request (its patch() forces JSON Patch). */
export function fhirPatch(fkc, url, parameters, headers = {}) {
  return fkc.request(url, { method: 'PATCH', body: parameters, options: { headers: { 'content-type': 'application/fhir+json', ...headers } } });
}

/** Build one FHIRPath Patch operation part. */
export function op(type, path, extra = {}) {
  const part = [{ name: 'type', valueCode: type }, { name: 'path', valueString: path }];
  if (extra.name !== undefined) part.push({ name: 'name', valueString: extra.name });
  if (extra.index !== undefined) part.push({ name: 'index', valueInteger: extra.index });
  if (extra.source !== undefined) part.push({ name: 'source', valueInteger: extra.source });
  if (extra.destination !== undefined) part.push({ name: 'destination', valueInteger: extra.destination });
  if (extra.value !== undefined) part.push({ name: 'value', ...extra.value });
  return { name: 'operation', part };
}
export function patchParams(...ops) { return { resourceType: 'Parameters', parameter: ops }; }

// ---- demo data ----
let demoCache;
export function demo() {
  if (!demoCache) demoCache = JSON.parse(readFileSync(DEMO_FILE, 'utf8')).entry.map((e) => e.resource);
  return structuredClone(demoCache);
}
export function demoOf(type) { return demo().filter((r) => r.resourceType === type); }
export function demoById(id) { return demo().find((r) => r.id === id); }

export function examples() {
  return readdirSync(EXAMPLES_DIR).filter((f) => f.endsWith('.json')).sort()
    .map((f) => ({ file: f, text: readFileSync(join(EXAMPLES_DIR, f), 'utf8') }));
}

// ---- search helpers ----
/** Ids of the "match" entries of a searchset bundle, in order. */
export function matchIds(bundle) {
  return (bundle.entry || []).filter((e) => !e.search || e.search.mode === 'match').map((e) => e.resource.id);
}
export function includeRefs(bundle) {
  return (bundle.entry || []).filter((e) => e.search?.mode === 'include').map((e) => `${e.resource.resourceType}/${e.resource.id}`);
}
export const sorted = (a) => [...a].sort();

/** Per-type totals via _summary=count. */
export async function countsByType(base) {
  const out = {};
  for (const t of TYPES) {
    const r = await raw(base, `${t}?_summary=count`);
    if (r.status !== 200) throw new Error(`count ${t}: ${r.status} ${r.text}`);
    out[t] = r.json.total;
  }
  return out;
}

/** A snapshot of the store used to prove a bad request changed nothing. */
export async function snapshot(base, refs) {
  const counts = await countsByType(base);
  const hist = {};
  for (const ref of refs) {
    const r = await raw(base, `${ref}/_history`);
    hist[ref] = { status: r.status, entries: (r.json?.entry || []).map((e) => ({ v: e.resource?.meta?.versionId ?? e.response?.etag, res: e.resource })) };
    const cur = await raw(base, ref);
    hist[ref].current = cur.text;
  }
  return { counts, hist };
}

/** Walk extension.where(url=...) etc. on a demo resource, independent of the server. */
export function capacities(loc) {
  return (loc.extension || []).filter((x) => x.url === SC_URL).map((x) => {
    const o = {};
    for (const s of x.extension) o[s.url] = s.valueInteger ?? s.valueDateTime ?? s.valueString ?? s.valueCodeableConcept?.coding?.[0]?.code;
    return o;
  });
}

/**
 * JSON.parse that keeps every number's exact text ({ $num: '1.50' }), so that decimals such as
 * 1.50 or 48.80450 can be compared digit for digit (FHIR decimals carry their precision).
 */
export function parseLossless(text) {
  let i = 0;
  const ws = () => { while (/[ \t\r\n]/.test(text[i])) i++; };
  const value = () => {
    ws();
    const c = text[i];
    if (c === '{') {
      i++; const o = {}; ws();
      if (text[i] === '}') { i++; return o; }
      for (;;) {
        ws(); const k = str(); ws();
        if (text[i++] !== ':') throw new SyntaxError(`':' expected at ${i}`);
        o[k] = value(); ws();
        const d = text[i++];
        if (d === '}') return o;
        if (d !== ',') throw new SyntaxError(`',' expected at ${i}`);
      }
    }
    if (c === '[') {
      i++; const a = []; ws();
      if (text[i] === ']') { i++; return a; }
      for (;;) {
        a.push(value()); ws();
        const d = text[i++];
        if (d === ']') return a;
        if (d !== ',') throw new SyntaxError(`',' expected at ${i}`);
      }
    }
    if (c === '"') return str();
    const m = /^(-?\d+(\.\d+)?([eE][+-]?\d+)?|true|false|null)/.exec(text.slice(i, i + 400));
    if (!m) throw new SyntaxError(`bad token at ${i}`);
    i += m[0].length;
    return m[0] === 'true' ? true : m[0] === 'false' ? false : m[0] === 'null' ? null : { $num: m[0] };
  };
  const str = () => {
    const m = /^"(?:[^"\\]|\\.)*"/s.exec(text.slice(i));
    if (!m) throw new SyntaxError(`string expected at ${i}`);
    i += m[0].length;
    return JSON.parse(m[0]);
  };
  const v = value(); ws();
  if (i !== text.length) throw new SyntaxError(`trailing data at ${i}`);
  return v;
}
