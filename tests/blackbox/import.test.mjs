// `ror import` on the real national FINESS set (../shared/data/finess/fhir-20210108, 9 archives,
// 89,992 establishments): counts, spot checks, idempotence, an incremental extract. The expected
// values come from reading the archives here (node's zlib + a tar reader), not from the server.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import { ROR_BIN, SHARED_DIR, SOURCE_DIR, client, freshDir, raw, startServer } from './lib/ror.mjs';
import { archiveLines } from './lib/archives.mjs';

const NATIONAL = join(SHARED_DIR, 'data/finess/fhir-20210108');
const ARCHIVES = readdirSync(NATIONAL).filter((f) => f.endsWith('.tar.gz')).sort().map((f) => join(NATIONAL, f));
const FINESS_ET = 'urn:oid:1.2.250.1.71.4.2.2';
// The national set is imported by the release build when `make test` names it (ROR_IMPORT_BIN):
// under AddressSanitizer the 180,000 resources take minutes; the import code runs under the
// sanitizers in tests/unit/import. The server started on the result is ROR_BIN (sanitized).
const IMPORT_BIN = process.env.ROR_IMPORT_BIN || ROR_BIN;


function runImport(dataDir, args) {
  const r = spawnSync(IMPORT_BIN, ['import', ...args, '--data', dataDir, '--json', '--quiet'], {
    encoding: 'utf8', maxBuffer: 64 << 20, env: { ...process.env, ROR_DATA_DIR: join(SOURCE_DIR, 'data') },
  });
  let summary = null;
  try { summary = JSON.parse(r.stdout.trim().split('\n').pop()); } catch { /* reported below */ }
  return { status: r.status, summary, stderr: r.stderr };
}

async function withServer(dataDir, fn) {
  const srv = await startServer({ dataDir, timeoutMs: 120000 });
  try { return await fn(srv.base, client(srv.base)); } finally { await srv.stop({ removeDir: false }); }
}

async function total(base, query) {
  const r = await raw(base, `${query}${query.includes('?') ? '&' : '?'}_summary=count`);
  assert.equal(r.status, 200, r.text);
  return r.json.total;
}

let dir;
let all; // every line of the 9 archives
const byType = {};

before(() => {
  dir = freshDir('ror-bb-import-');
  all = ARCHIVES.flatMap((a) => archiveLines(a));
  for (const { res } of all) byType[res.resourceType] = (byType[res.resourceType] || 0) + 1;
});
after(() => rmSync(dir, { recursive: true, force: true }));

/** A dozen establishments spread over the whole set, and their Location. */
function spotChecks() {
  const orgs = all.filter(({ res }) => res.resourceType === 'Organization');
  const picks = [];
  for (let i = 0; i < 12; i++) picks.push(orgs[Math.floor((i * (orgs.length - 1)) / 11)].res);
  return picks.map((org) => ({
    org,
    loc: all.find(({ res }) => res.resourceType === 'Location' && res.managingOrganization?.reference === `Organization/${org.id}`)?.res,
  }));
}

test('the national set: every resource imported, counts equal what the archives hold', async () => {
  assert.equal(ARCHIVES.length, 9);
  assert.equal(byType.Organization, 89992, 'SOURCE.md says 89,992 establishments');
  const r = runImport(dir, ['ndjson', ...ARCHIVES]);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.summary.read, all.length);
  assert.equal(r.summary.created, all.length);
  assert.equal(r.summary.rejected, 0);
  await withServer(dir, async (base) => {
    assert.equal(await total(base, 'Organization'), byType.Organization);
    assert.equal(await total(base, 'Location'), byType.Location);
    assert.equal(await total(base, `Organization?_tag=urn:ror:import-feed|ndjson`), byType.Organization);
  });
});

test('a dozen real establishments read back as the archives hold them, and can be searched', async () => {
  await withServer(dir, async (base, fkc) => {
    for (const { org, loc } of spotChecks()) {
      const got = await fkc.read({ resourceType: 'Organization', id: org.id });
      assert.equal(got.name, org.name);
      assert.deepEqual(got.address, org.address);
      assert.deepEqual(got.identifier, org.identifier);
      assert.equal(got.meta.versionId, '1');
      const finess = org.identifier.find((i) => i.system === FINESS_ET).value;
      const found = await fkc.search({ resourceType: 'Organization', searchParams: { identifier: `${FINESS_ET}|${finess}` } });
      assert.deepEqual(found.entry.map((e) => e.resource.id), [org.id]);
      if (!loc) continue;
      const l = await fkc.read({ resourceType: 'Location', id: loc.id });
      assert.equal(l.position.latitude, loc.position.latitude);
      assert.equal(l.position.longitude, loc.position.longitude);
      const city = org.address[0].city;
      const byCity = await fkc.search({ resourceType: 'Organization', searchParams: { 'address-city': city, name: org.name, _count: 50 } });
      assert.ok(byCity.entry.some((e) => e.resource.id === org.id), `${org.name} found by commune ${city}`);
    }
  });
});

test('importing the same files again changes nothing', () => {
  const r = runImport(dir, ['ndjson', ...ARCHIVES]);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.summary.unchanged, all.length);
  assert.equal(r.summary.created + r.summary.updated + r.summary.closed, 0);
});

test('a newer extract: exactly the changed rows get new versions, what disappeared is closed', async () => {
  const first = archiveLines(ARCHIVES[0]);
  const orgs = first.filter(({ res }) => res.resourceType === 'Organization');
  const renamed = [orgs[10].res.id, orgs[500].res.id, orgs[4000].res.id];
  const goneOrg = orgs[77].res.id;
  const goneLoc = first.find(({ res }) => res.resourceType === 'Location' && res.id !== undefined
    && res.managingOrganization?.reference === `Organization/${orgs[900].res.id}`).res.id;
  const lines = [];
  for (const { line, res } of first) {
    if (res.id === goneOrg && res.resourceType === 'Organization') continue;
    if (res.id === goneLoc && res.resourceType === 'Location') continue;
    if (res.resourceType === 'Organization' && renamed.includes(res.id)) lines.push(JSON.stringify({ ...res, name: `${res.name} (NOUVEAU NOM)` }));
    else lines.push(line);
  }
  const modified = join(dir, 'etab0-10000-modified.ndjson.gz');
  writeFileSync(modified, gzipSync(lines.join('\n') + '\n'));
  const r = runImport(dir, ['ndjson', modified, ...ARCHIVES.slice(1)]);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.summary.updated, 3);
  assert.equal(r.summary.closed, 2);
  assert.equal(r.summary.created, 0);
  assert.equal(r.summary.unchanged, all.length - 5);
  await withServer(dir, async (base, fkc) => {
    for (const id of renamed) {
      const o = await fkc.read({ resourceType: 'Organization', id });
      assert.equal(o.meta.versionId, '2');
      assert.match(o.name, /\(NOUVEAU NOM\)$/);
      const v1 = await fkc.vread({ resourceType: 'Organization', id, version: '1' });
      assert.doesNotMatch(v1.name, /NOUVEAU/);
    }
    const o = await fkc.read({ resourceType: 'Organization', id: goneOrg });
    assert.equal(o.active, false);
    assert.equal(o.meta.versionId, '2');
    const l = await fkc.read({ resourceType: 'Location', id: goneLoc });
    assert.equal(l.status, 'inactive');
    const hist = await fkc.history({ resourceType: 'Location', id: goneLoc });
    assert.equal(hist.entry.length, 2, 'history kept');
    assert.equal(await total(base, 'Organization?active=false'), 1);
  });
});

test('RPPS: one Practitioner per person, one role per activity, roles linked to the national set', async () => {
  const file = join(SHARED_DIR, 'data/rpps/PS_LibreAcces_Personne_activite_202102020955_first15003.txt');
  const lines = readFileSync(file, 'utf8').split('\n');
  const head = lines[0].split('|');
  const col = (name) => { const i = head.indexOf(name); assert.ok(i >= 0, name); return i; };
  const [pp, fin, siret] = [col('Identifiant PP'), col('Numéro FINESS site'), col('Numéro SIRET site')];
  const rows = lines.slice(1).filter((l) => l.trim()).map((l) => l.split('|'));
  // what the archives hold: FINESS numbers, and SIRET numbers carried by exactly one establishment
  const finess = new Set();
  const sirets = new Map();
  for (const { res } of all) {
    if (res.resourceType !== 'Organization') continue;
    for (const i of res.identifier || []) {
      if (i.system === FINESS_ET) finess.add(i.value);
      if (/sirene\.fr$/.test(i.system)) sirets.set(i.value, (sirets.get(i.value) || 0) + 1);
    }
  }
  // a role names its site by FINESS when the row has one, else by SIRET
  const linked = rows.filter((c) => (c[fin] ? finess.has(c[fin]) : c[siret] ? sirets.get(c[siret]) === 1 : false)).length;
  const r = runImport(dir, ['rpps', file]);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.summary.rejected, 0);
  await withServer(dir, async (base) => {
    assert.equal(await total(base, 'Practitioner'), new Set(rows.map((c) => c[pp])).size);
    assert.equal(await total(base, 'PractitionerRole'), rows.length);
    assert.equal(await total(base, 'PractitionerRole?organization:missing=false'), linked);
    assert.ok(linked > 1000, `${linked} roles linked`);
    // one linked role, followed to its establishment
    const c = rows.find((x) => x[fin] && finess.has(x[fin]));
    const bundle = (await raw(base, `PractitionerRole?practitioner=Practitioner/rpps-${c[pp]}&_include=PractitionerRole:organization`)).json;
    const org = bundle.entry.find((e) => e.resource.resourceType === 'Organization');
    assert.ok(org.resource.identifier.some((i) => i.system === FINESS_ET && i.value === c[fin]));
  });
  const again = runImport(dir, ['rpps', file]);
  assert.equal(again.summary.unchanged, again.summary.read);
});

test('a second import is refused while a server runs on the same store', async () => {
  const srv = await startServer({ dataDir: dir, timeoutMs: 120000 });
  try {
    const r = runImport(dir, ['ndjson', ARCHIVES[0]]);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /déjà utilisé/);
  } finally { await srv.stop({ removeDir: false }); }
});

test('an import killed while it writes leaves the store as it was', async () => {
  const before = await withServer(dir, async (base) => [await total(base, 'Organization'), await total(base, 'Organization?active=false')]);
  const proc = spawn(IMPORT_BIN, ['import', 'ndjson', '--data', dir, '--quiet', '--feed', 'killed', ...ARCHIVES], {
    stdio: 'ignore', env: { ...process.env, ROR_DATA_DIR: join(SOURCE_DIR, 'data') },
  });
  const exited = new Promise((res) => proc.on('exit', (code, signal) => res({ code, signal })));
  // kill it once it is writing: the WAL holds at least 8 MiB of its uncommitted transaction
  const wal = join(dir, 'ror.db-wal');
  let done = false;
  exited.then(() => { done = true; });
  while (!done && !(existsSync(wal) && statSync(wal).size > (8 << 20))) await new Promise((r) => setTimeout(r, 10)); // polling, not timing
  assert.equal(done, false, 'the import ended before it could be killed');
  proc.kill('SIGKILL');
  assert.equal((await exited).signal, 'SIGKILL');
  await withServer(dir, async (base) => {
    assert.equal(await total(base, 'Organization'), before[0]);
    assert.equal(await total(base, 'Organization?active=false'), before[1], 'nothing closed');
    assert.equal(await total(base, 'Organization?_tag=urn:ror:import-feed|killed'), 0);
  });
  // and the next import runs normally
  const r = runImport(dir, ['ndjson', '--no-close', ARCHIVES[1]]);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.summary.created, 0);
});
