// Location `near` (FHIR R4) on the real national FINESS set (../shared/data/finess/fhir-20210108):
// for seeded random points, the k nearest establishments and all those within R km equal a
// brute-force great-circle computation done here from the archives; `_sort=near` order, paging
// through ties, the location-distance extension, chained `HealthcareService?location.near`, the
// position index following create/PUT/PATCH/DELETE and a restart, and the 400 cases.
// The set stops at département 93 (no overseas position): Locations at overseas hospitals, either
// side of the antimeridian and near the poles are created through the API and join the brute force.
// The distances here come from an atan2 of 3-D unit vectors (not the engine's haversine), on the
// same sphere (R = 6371008.8 m); they agree to far below the 1e-6 km rounding of the answers.
// Reproduce a run with NEAR_SEED=<the seed printed>.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';

import {
  ROR_BIN, SHARED_DIR, SOURCE_DIR, client, demoById, fhirPatch, freshDir, op, patchParams, raw,
  startServer,
} from './lib/ror.mjs';
import { archiveLines } from './lib/archives.mjs';

const NATIONAL = join(SHARED_DIR, 'data/finess/fhir-20210108');
const ARCHIVES = readdirSync(NATIONAL).filter((f) => f.endsWith('.tar.gz')).sort().map((f) => join(NATIONAL, f));
// as in import.test.mjs: the national set is imported by the release build when one is named
const IMPORT_BIN = process.env.ROR_IMPORT_BIN || ROR_BIN;
const SEED = process.env.NEAR_SEED !== undefined ? Number(process.env.NEAR_SEED) : (Date.now() % 2 ** 31);
const DIST_URL = 'http://hl7.org/fhir/StructureDefinition/location-distance';
const K = 10;
const EPS_KM = 1e-6; // the answers carry km with 6 decimals
const EDGE_KM = 0.001; // ids within 1 m of a radius may fall either side
const MI = 1.609344; // km per international mile

function archiveResources(path) {
  return archiveLines(path).map((x) => x.res);
}

// ---- independent geometry ----
const EARTH_KM = 6371.0088;
const RAD = Math.PI / 180;
function unitVec(lat, lon) {
  const p = lat * RAD;
  const l = lon * RAD;
  return [Math.cos(p) * Math.cos(l), Math.cos(p) * Math.sin(l), Math.sin(p)];
}
/** Great-circle distance in km between two unit vectors: atan2(|u×v|, u·v), stable at 0 and π. */
function arcKm(ax, ay, az, bx, by, bz) {
  const cx = ay * bz - az * by;
  const cy = az * bx - ax * bz;
  const cz = ax * by - ay * bx;
  return EARTH_KM * Math.atan2(Math.hypot(cx, cy, cz), ax * bx + ay * by + az * bz);
}
function distKm(a, b) {
  const u = unitVec(a.lat, a.lon);
  const v = unitVec(b.lat, b.lon);
  return arcKm(...u, ...v);
}
/** The point at `km` from p on bearing `deg` (spherical direct problem). */
function destination(p, km, deg) {
  const d = km / EARTH_KM;
  const b = deg * RAD;
  const f1 = p.lat * RAD;
  const f2 = Math.asin(Math.sin(f1) * Math.cos(d) + Math.cos(f1) * Math.sin(d) * Math.cos(b));
  const l2 = p.lon * RAD + Math.atan2(Math.sin(b) * Math.sin(d) * Math.cos(f1), Math.cos(d) - Math.sin(f1) * Math.sin(f2));
  return { lat: f2 / RAD, lon: ((l2 / RAD + 540) % 360) - 180 };
}

/** Every positioned Location known to the test, with unit vectors for brute force. */
class Positions {
  constructor() { this.ids = []; this.lat = []; this.lon = []; this.u = []; this.index = new Map(); this.dead = new Set(); }
  set(id, lat, lon) {
    let i = this.index.get(id);
    if (i === undefined) { i = this.ids.length; this.ids.push(id); this.index.set(id, i); }
    this.lat[i] = lat; this.lon[i] = lon; this.u[i] = unitVec(lat, lon);
    this.dead.delete(id);
  }
  remove(id) { this.dead.add(id); }
  has(id) { return this.index.has(id) && !this.dead.has(id); }
  get(id) { const i = this.index.get(id); return { lat: this.lat[i], lon: this.lon[i] }; }
  get size() { return this.ids.length - this.dead.size; }
  /** [{ id, d }] within maxKm of p, nearest first. */
  within(p, maxKm) {
    const [px, py, pz] = unitVec(p.lat, p.lon);
    const out = [];
    for (let i = 0; i < this.ids.length; i++) {
      const u = this.u[i];
      const d = arcKm(px, py, pz, u[0], u[1], u[2]);
      if (d <= maxKm && !this.dead.has(this.ids[i])) out.push({ id: this.ids[i], d });
    }
    return out.sort((a, b) => a.d - b.d);
  }
}

function mulberry32(a) {
  return () => {
    a |= 0; a = (a + 0x6D2B79F5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// ---- server access ----
let srv;
let fkc;
let dir;
const pos = new Positions();
const rnd = mulberry32(SEED);
const pick = (a) => a[Math.floor(rnd() * a.length)];
const uniform = (lo, hi) => lo + (hi - lo) * rnd();

async function get(path) {
  const r = await raw(srv.base, path);
  assert.equal(r.status, 200, `${path}: ${r.text.slice(0, 500)}`);
  return r.json;
}

/** Every page of a search: { entries: [{ id, km, res }], total, pages }. */
async function all(path) {
  let b = await get(path);
  const total = b.total;
  const entries = [];
  let pages = 0;
  for (;;) {
    pages++;
    entries.push(...matches(b));
    const next = (b.link || []).find((l) => l.relation === 'next');
    if (!next) break;
    assert.ok(pages < 2000, 'next links end');
    b = await get(next.url);
  }
  return { entries, total, pages };
}

/** The location-distance extension of a match entry, checked for shape; its value in km. */
function distanceOf(entry) {
  const ext = entry.search?.extension;
  assert.ok(Array.isArray(ext) && ext.length === 1, `one search.extension on ${entry.fullUrl}: ${JSON.stringify(entry.search)}`);
  assert.equal(ext[0].url, DIST_URL);
  const v = ext[0].valueDistance;
  assert.deepEqual(Object.keys(v).sort(), ['code', 'system', 'unit', 'value']);
  assert.equal(v.unit, 'km');
  assert.equal(v.code, 'km');
  assert.equal(v.system, 'http://unitsofmeasure.org');
  assert.equal(typeof v.value, 'number');
  assert.ok(v.value >= 0);
  assert.equal(v.value, Number(v.value.toFixed(6)), `${v.value}: 6 decimals at most`);
  return v.value;
}

const nearValue = (p, dist, unit) => encodeURIComponent([p.lat, p.lon, ...(dist === undefined ? [] : [dist, ...(unit ? [unit] : [])])].join('|'));
const ids = (entries) => entries.map((e) => e.id);

/** Location body of the ROR profile (the demo's, without capacities) at a position. */
let serial = 0;
function rorLocation(name, p) {
  const loc = demoById('loc-pitie-rea');
  delete loc.id;
  delete loc.meta.lastUpdated;
  loc.extension = loc.extension.filter((x) => !/supported-capacity$/.test(x.url));
  loc.identifier = [{ ...loc.identifier[0], value: `11/NEAR${String(++serial).padStart(5, '0')}` }];
  loc.name = name;
  if (p) loc.position = { latitude: p.lat, longitude: p.lon };
  else delete loc.position;
  return loc;
}
async function createLocation(name, p) {
  const r = await fkc.create({ resourceType: 'Location', body: rorLocation(name, p) });
  if (p) pos.set(r.id, p.lat, p.lon);
  return r;
}

/** Entries of one searchset page: [{ id, km, res }]. */
const matches = (b) => (b.entry || []).filter((e) => e.search?.mode === 'match').map((e) => ({ id: e.resource.id, km: distanceOf(e), res: e.resource }));

/** No id twice; each one a live positioned Location at the position we know; its distance ours. */
function checkEntries(got, p, where) {
  const seen = new Set();
  for (const e of got) {
    assert.ok(!seen.has(e.id), `${where}: ${e.id} returned twice`);
    seen.add(e.id);
    assert.ok(pos.has(e.id), `${where}: ${e.id} is not a live positioned Location`);
    const at = pos.get(e.id);
    assert.deepEqual(e.res.position, { latitude: at.lat, longitude: at.lon }, `${where}: ${e.id}`);
    const own = distKm(at, p);
    assert.ok(Math.abs(e.km - own) <= EPS_KM, `${where}: ${e.id} said at ${e.km} km, is at ${own} km`);
  }
}

/** The k nearest of p within radiusKm: brute force up to the order among equal distances. */
function checkKNearest(got, p, radiusKm, where) {
  checkEntries(got, p, where);
  const bf = pos.within(p, radiusKm + EDGE_KM);
  const strict = bf.filter((x) => x.d < radiusKm - EDGE_KM);
  if (strict.length >= K) assert.equal(got.length, K, `${where}: ${K} answers`);
  else assert.ok(got.length >= strict.length && got.length <= Math.min(K, bf.length), `${where}: ${got.length} answers, brute force ${strict.length}..${bf.length}`);
  // the same distances in the same order, and every id strictly nearer than the last answer
  // present: the ids are brute force's except for the order among ties
  for (let i = 0; i < got.length; i++) {
    assert.ok(Math.abs(got[i].km - bf[i].d) <= EPS_KM, `${where}: #${i} ${got[i].id} at ${got[i].km} km, brute force ${bf[i].id} at ${bf[i].d} km`);
  }
  if (got.length) {
    const last = got[got.length - 1].km;
    const have = new Set(ids(got));
    for (const x of bf) if (x.d < last - EPS_KM) assert.ok(have.has(x.id), `${where}: ${x.id} at ${x.d} km missing`);
  }
  return { strict: strict.length, loose: bf.length };
}

/** Everything within radiusKm of p: brute force, ignoring ids within 1 m of the circle. */
function checkWithin(got, p, radiusKm, where, sortedByDistance) {
  checkEntries(got, p, where);
  const bf = pos.within(p, radiusKm + EDGE_KM);
  const have = new Set(ids(got));
  const allowed = new Set(ids(bf));
  for (const x of bf) if (x.d < radiusKm - EDGE_KM) assert.ok(have.has(x.id), `${where}: ${x.id} at ${x.d} km missing`);
  for (const e of got) assert.ok(allowed.has(e.id), `${where}: ${e.id} at ${e.km} km is beyond ${radiusKm} km`);
  if (sortedByDistance) for (let i = 1; i < got.length; i++) assert.ok(got[i].km >= got[i - 1].km, `${where}: order at #${i}`);
}

// ---- the points ----
const OVERSEAS = [ // approximate sites of overseas hospitals (the national set stops at département 93)
  ['Réunion, Saint-Denis', -20.8889, 55.4453], ['Réunion, Saint-Pierre', -21.3393, 55.4781],
  ['Martinique, Fort-de-France', 14.6218, -61.06], ['Guadeloupe, Pointe-à-Pitre', 16.2397, -61.534],
  ['Guyane, Cayenne', 4.9372, -52.326], ['Mayotte, Mamoudzou', -12.7806, 45.2279],
  ['Saint-Pierre-et-Miquelon', 46.7811, -56.1764], ['Polynésie, Pirae', -17.535, -149.553],
  ['Wallis, Sia', -13.2825, -176.1745], ['Nouvelle-Calédonie, Dumbéa', -22.2248, 166.457],
  // geometric edges: either side of the antimeridian, near both poles
  ['antiméridien est', -16.5, 179.995], ['antiméridien ouest', -16.5, -179.996],
  ['pôle nord A', 89.995, 10], ['pôle nord B', 89.996, -170], ['pôle sud', -90, 0],
].map(([name, lat, lon]) => ({ name, lat, lon }));

const national = []; // ids of the national Locations, archive order
const METRO = { lat: [41.3, 51.1], lon: [-5.2, 9.6] };

function makePoints(overseasIds) {
  const pts = [];
  const jitter = (p, maxKm) => destination(p, maxKm * rnd(), 360 * rnd());
  // the most shared position of the set (several establishments at one address): ties
  const counts = new Map();
  for (const id of national) { const p = pos.get(id); const k = `${p.lat},${p.lon}`; counts.set(k, (counts.get(k) || 0) + 1); }
  const [busiest] = [...counts.entries()].sort((a, b) => b[1] - a[1])[0];
  const [blat, blon] = busiest.split(',').map(Number);
  pts.push({ kind: 'shared position', lat: blat, lon: blon });
  for (let i = 0; i < 5; i++) pts.push({ kind: 'at an establishment', ...pos.get(pick(national)) });
  for (let i = 0; i < 16; i++) pts.push({ kind: 'near an establishment', ...jitter(pos.get(pick(national)), 3) });
  for (let i = 0; i < 5; i++) pts.push({ kind: 'overseas', ...jitter(pos.get(pick(overseasIds.slice(0, 10))), 5) });
  pts.push({ kind: 'antimeridian', lat: -16.5, lon: rnd() < 0.5 ? 179.999 : -179.999 });
  pts.push({ kind: 'pole', lat: 90, lon: uniform(-180, 180) });
  pts.push({ kind: 'pole', lat: -89.99, lon: uniform(-180, 180) });
  for (let i = 0; i < 14; i++) pts.push({ kind: 'metropolitan bbox', lat: uniform(...METRO.lat), lon: uniform(...METRO.lon) });
  pts.push({ kind: 'Bay of Biscay', lat: uniform(44.5, 46.5), lon: uniform(-6, -3) });
  pts.push({ kind: 'Mediterranean', lat: uniform(40, 42), lon: uniform(4, 8) });
  for (let i = 0; i < 4; i++) pts.push({ kind: 'anywhere', lat: Math.asin(uniform(-1, 1)) / RAD, lon: uniform(-180, 180) });
  assert.equal(pts.length, 50);
  return pts;
}

// ---- setup: import, read the archives, start, add overseas Locations ----
const overseasIds = [];
let points = [];

before(async () => {
  const t0 = Date.now();
  dir = freshDir('ror-bb-near-');
  const r = spawnSync(IMPORT_BIN, ['import', 'ndjson', ...ARCHIVES, '--data', dir, '--json', '--quiet'], {
    encoding: 'utf8', maxBuffer: 64 << 20, env: { ...process.env, ROR_DATA_DIR: join(SOURCE_DIR, 'data') },
  });
  assert.equal(r.status, 0, r.stderr);
  const t1 = Date.now();
  for (const a of ARCHIVES) {
    for (const res of archiveResources(a)) {
      if (res.resourceType !== 'Location' || !res.position) continue;
      pos.set(res.id, res.position.latitude, res.position.longitude);
      national.push(res.id);
    }
  }
  srv = await startServer({ dataDir: dir, timeoutMs: 120000 });
  fkc = client(srv.base);
  for (const o of OVERSEAS) overseasIds.push((await createLocation(`NEAR ${o.name}`, o)).id);
  await createLocation('NEAR sans position'); // never a near answer
  points = makePoints(overseasIds);
  console.log(`near.test: seed ${SEED} (NEAR_SEED=${SEED} to replay); import ${t1 - t0} ms, `
    + `${national.length} national positions, setup ${Date.now() - t0} ms`);
});
after(async () => {
  try {
    await srv?.stop({ removeDir: false });
  } finally {
    if (dir) rmSync(dir, { recursive: true, force: true });
  }
});

test('the national positions are all in the index', async () => {
  assert.equal(national.length, 89983, 'SOURCE.md: 89,983 Locations, all with coordinates');
  // a radius wider than any two points of the sphere can be apart takes every position
  const b = await get(`Location?near=${nearValue({ lat: 46.5, lon: 2.5 }, 20100, 'km')}&_summary=count`);
  assert.equal(b.total, pos.size);
});

test(`${K} nearest establishments of 50 random points equal brute force (_sort=near&_count=${K})`, async () => {
  const started = Date.now();
  const radii = [[undefined, undefined, 50], [10, 'km', 10], [30000, 'm', 30], [20, '[mi_i]', 20 * MI], [100, 'km', 100]];
  let answers = 0;
  let ties = 0;
  for (const [n, p] of points.entries()) {
    // far points get a radius of thousands of km that reaches a couple of thousand positions
    // (wider ones only cost time: every position within the radius is sorted); the others one
    // of the units, or the default
    const far = p.kind === 'anywhere' || p.kind === 'pole';
    const farKm = far ? Math.ceil(pos.within(p, 30000)[2000].d) + 1 : 0;
    const [dist, unit, radiusKm] = far ? [farKm, 'km', farKm] : pick(radii);
    const where = `point ${n} (${p.kind} ${p.lat},${p.lon}) near ${dist ?? 'default'} ${unit ?? ''}`;
    const got = await get(`Location?near=${nearValue(p, dist, unit)}&_sort=near&_count=${K}`);
    const entries = matches(got);
    const { strict, loose } = checkKNearest(entries, p, radiusKm, where);
    assert.ok(got.total >= strict && got.total <= loose, `${where}: total ${got.total}, brute force ${strict}..${loose}`);
    answers += entries.length;
    const bf = pos.within(p, radiusKm);
    if (bf.length > K && Math.abs(bf[K - 1].d - bf[K].d) <= EPS_KM) ties++;
  }
  console.log(`near.test: k nearest, ${answers} answers checked, ${ties} points with a tie at rank ${K}, ${Date.now() - started} ms`);
});

test('all establishments within R of 50 random points equal brute force (every page, total)', async () => {
  const started = Date.now();
  let answers = 0;
  let requests = 0;
  for (const [n, p] of points.entries()) {
    // the widest radius whose brute-force answer stays a few pages long
    const widest = pos.within(p, 2000);
    const radiusKm = [2000, 500, 100, 50, 25, 10, 5, 2, 1, 0.5, 0.2].find((c) => widest.filter((x) => x.d <= c).length <= 600) ?? 0.1;
    const unit = pick(['km', 'm', '[mi_i]', 'default']);
    const dist = unit === 'm' ? radiusKm * 1000 : unit === '[mi_i]' ? radiusKm / MI : radiusKm;
    const effKm = unit === 'm' ? dist / 1000 : unit === '[mi_i]' ? dist * MI : dist;
    // the shared position (point 0) always pages by distance through its ties
    const sortNear = n === 0 || rnd() < 0.5;
    const count = n === 0 ? 13 : pick([200, 50, 13]);
    const q = `Location?near=${nearValue(p, dist, unit === 'default' ? undefined : unit)}&_count=${count}${sortNear ? '&_sort=near' : ''}`;
    const where = `point ${n} (${p.kind} ${p.lat},${p.lon}) ${decodeURIComponent(q)}`;
    const got = await all(q);
    checkWithin(got.entries, p, effKm, where, sortNear);
    assert.equal(got.total, got.entries.length, `${where}: total`);
    answers += got.entries.length;
    requests += got.pages;
  }
  console.log(`near.test: within R, ${answers} answers in ${requests} pages, ${Date.now() - started} ms`);
});

test('counts within wide radii equal brute force (_summary=count)', async () => {
  for (let i = 0; i < 6; i++) {
    const p = i < 4 ? { lat: uniform(...METRO.lat), lon: uniform(...METRO.lon) } : pos.get(pick(national));
    const km = Number(uniform(50, 1200).toFixed(3));
    const b = await get(`Location?near=${nearValue(p, km, 'km')}&_summary=count`);
    const strict = pos.within(p, km - EDGE_KM).length;
    const loose = pos.within(p, km + EDGE_KM).length;
    assert.ok(b.total >= strict && b.total <= loose, `${p.lat},${p.lon} ${km} km: total ${b.total}, brute force ${strict}..${loose}`);
  }
});

test('a radius of half the Earth\'s circumference or more takes every position, from anywhere', async () => {
  // the antipode of Paris: the establishments of Paris are about 20,000 km away from it
  const paris = { lat: 48.8566, lon: 2.3522 };
  const antipode = { lat: -paris.lat, lon: paris.lon - 180 };
  const farthest = pos.within(antipode, 30000).pop();
  assert.ok(farthest.d > 20000, `the farthest position is ${farthest.d} km away`);
  for (const [dist, unit] of [[Math.PI * EARTH_KM + 0.01, 'km'], [30000, 'km'], [20000, '[mi_i]']]) {
    const b = await get(`Location?near=${nearValue(antipode, dist, unit)}&_summary=count`);
    assert.equal(b.total, pos.size, `near=${antipode.lat}|${antipode.lon}|${dist}|${unit}`);
  }
});

test('ties: equal distances come in creation order, across pages', async () => {
  // an empty spot of the Atlantic, checked empty by brute force
  const t = { lat: 45.123456, lon: -20.654321 };
  assert.equal(pos.within(t, 50).length, 0);
  const same = [];
  for (let i = 0; i < 5; i++) same.push((await createLocation(`NEAR ex aequo ${i}`, t)).id);
  const next = (await createLocation('NEAR 10 m plus loin', destination(t, 0.01, 90))).id;
  const got = await all(`Location?near=${nearValue(t, 1, 'km')}&_sort=near&_count=2`);
  assert.deepEqual(ids(got.entries), [...same, next]);
  assert.deepEqual(got.entries.slice(0, 5).map((e) => e.km), [0, 0, 0, 0, 0]);
  assert.ok(Math.abs(got.entries[5].km - 0.01) <= EPS_KM, `${got.entries[5].km} km`);
  assert.equal(got.total, 6);
  // a radius of 0 takes the exact position only
  const zero = await all(`Location?near=${nearValue(t, 0, 'km')}`);
  assert.deepEqual(ids(zero.entries).sort(), [...same].sort());
});

// ---- HealthcareService?location.near ----
function rorService(name, locIds, orgId) {
  const hs = demoById('hs-pitie-rea');
  delete hs.id;
  delete hs.meta.lastUpdated;
  hs.identifier = [{ ...hs.identifier[0], value: `11/NEAR${String(++serial).padStart(5, '0')}` }];
  hs.name = name;
  hs.providedBy = { reference: `Organization/${orgId}` };
  if (locIds.length) hs.location = locIds.map((id) => ({ reference: `Location/${id}` }));
  else delete hs.location;
  return hs;
}

test('HealthcareService?location.near: the services of the Locations within R, by nearest Location', async () => {
  // a centre with establishments around, and a radius half-way between two consecutive
  // establishment distances at least 10 m apart
  const isNational = new Set(national);
  let centre, around, cut;
  do {
    centre = pos.get(pick(national));
    around = pos.within(centre, 30).filter((x) => isNational.has(x.id)).slice(0, 40);
    cut = around.length >= 20 ? [...around.keys()].slice(10, -2).find((i) => around[i + 1].d - around[i].d >= 0.01) : undefined;
  } while (cut === undefined);
  const radiusKm = (around[cut].d + around[cut + 1].d) / 2;
  const inside = around.slice(0, cut + 1);
  const outside = around.slice(cut + 1);
  const org = (id) => id.replace(/-loc$/, '');
  const plan = [];
  for (let i = 0; i < 8; i++) plan.push([pick(inside).id, pick(outside).id].slice(0, 1 + (i % 2)));
  plan.push([outside[0].id]); // only outside the radius
  plan.push([overseasIds[0], pick(inside).id]); // one overseas and one inside
  plan.push([]); // no Location at all
  plan.push([...plan[0]]); // the same Locations as the first: a tie, after it
  const services = [];
  for (const [i, locs] of plan.entries()) {
    const r = await fkc.create({ resourceType: 'HealthcareService', body: rorService(`NEAR service ${i}`, locs, org(inside[0].id)) });
    services.push({ id: r.id, locs, order: i });
  }
  const expected = () => services
    .map((s) => ({ ...s, d: Math.min(...s.locs.filter((l) => pos.has(l)).map((l) => distKm(pos.get(l), centre)).filter((d) => d <= radiusKm), Infinity) }))
    .filter((s) => s.d !== Infinity)
    .sort((a, b) => a.d - b.d || a.order - b.order);
  const check = async () => {
    const want = expected();
    const q = `HealthcareService?location.near=${nearValue(centre, radiusKm, 'km')}&_sort=near&_count=3`;
    const got = await all(q);
    assert.deepEqual(ids(got.entries), want.map((s) => s.id), `${decodeURIComponent(q)}: ${JSON.stringify(want.map((s) => [s.order, s.d]))}`);
    for (const [i, e] of got.entries.entries()) assert.ok(Math.abs(e.km - want[i].d) <= EPS_KM, `service ${want[i].order}: ${e.km} km, expected ${want[i].d}`);
    assert.equal(got.total, want.length);
    const unsorted = await all(`HealthcareService?location.near=${nearValue(centre, radiusKm * 1000, 'm')}&_count=200`);
    assert.deepEqual(ids(unsorted.entries).sort(), want.map((s) => s.id).sort());
    return want;
  };
  const before = await check();
  assert.ok(before.length >= 5 && before.length < services.length, `${before.length} of ${services.length} services within ${radiusKm} km`);
  // deleting the nearest Location of the first service: it moves back to its next Location within R, or out
  const victim = before[0].locs.filter((l) => pos.has(l)).sort((a, b) => distKm(pos.get(a), centre) - distKm(pos.get(b), centre))[0];
  await fkc.delete({ resourceType: 'Location', id: victim });
  pos.remove(victim);
  await check();
});

// ---- the index follows writes ----
/** A spot of metropolitan France with no establishment within 2 km. */
function emptySpot() {
  for (;;) {
    const p = { lat: uniform(...METRO.lat), lon: uniform(...METRO.lon) };
    if (!pos.within(p, 2).length) return p;
  }
}
async function nearIds(p, km = 0.5) {
  const got = await all(`Location?near=${nearValue(p, km, 'km')}&_sort=near`);
  checkWithin(got.entries, p, km, `near ${p.lat},${p.lon}`, true);
  return ids(got.entries);
}

test('the position index follows create, PUT, PATCH, DELETE, and a restart', async () => {
  const [p1, p2, p3, p4, p5] = [emptySpot(), emptySpot(), emptySpot(), emptySpot(), emptySpot()];
  const a = await createLocation('NEAR mobile', p1);
  assert.deepEqual(await nearIds(p1), [a.id]);
  // PUT elsewhere
  const body = { ...(await fkc.read({ resourceType: 'Location', id: a.id })), position: { latitude: p2.lat, longitude: p2.lon } };
  await fkc.update({ resourceType: 'Location', id: a.id, body });
  pos.set(a.id, p2.lat, p2.lon);
  assert.deepEqual(await nearIds(p1), []);
  assert.deepEqual(await nearIds(p2), [a.id]);
  // the distance is that of the current version
  const one = await get(`Location?_id=${a.id}&near=${nearValue(p1, 2000, 'km')}`);
  assert.ok(Math.abs(distanceOf(one.entry[0]) - distKm(p1, p2)) <= EPS_KM);
  // FHIRPath Patch of both coordinates (GPS precision here; full precision checked at the end)
  p3.lat = Number(p3.lat.toFixed(6));
  p3.lon = Number(p3.lon.toFixed(6));
  await fhirPatch(fkc, `Location/${a.id}`, patchParams(
    op('replace', 'Location.position.latitude', { value: { valueDecimal: p3.lat } }),
    op('replace', 'Location.position.longitude', { value: { valueDecimal: p3.lon } })));
  pos.set(a.id, p3.lat, p3.lon);
  assert.deepEqual((await fkc.read({ resourceType: 'Location', id: a.id })).position, { latitude: p3.lat, longitude: p3.lon });
  assert.deepEqual(await nearIds(p2), []);
  assert.deepEqual(await nearIds(p3), [a.id]);
  // the position removed by a patch: no longer anywhere
  await fhirPatch(fkc, `Location/${a.id}`, patchParams(op('delete', 'Location.position')));
  pos.remove(a.id);
  assert.deepEqual(await nearIds(p3), []);
  assert.equal((await get(`Location?_id=${a.id}&near=${nearValue(p3, 30000, 'km')}&_summary=count`)).total, 0);
  // and put back by PUT
  const back = { ...(await fkc.read({ resourceType: 'Location', id: a.id })), position: { latitude: p4.lat, longitude: p4.lon } };
  await fkc.update({ resourceType: 'Location', id: a.id, body: back });
  pos.set(a.id, p4.lat, p4.lon);
  assert.deepEqual(await nearIds(p4), [a.id]);
  // DELETE
  const b = await createLocation('NEAR supprimé', p5);
  assert.deepEqual(await nearIds(p5), [b.id]);
  await fkc.delete({ resourceType: 'Location', id: b.id });
  pos.remove(b.id);
  assert.deepEqual(await nearIds(p5), []);
  // a national establishment moved next to p5
  const moved = pick(national.filter((id) => pos.has(id)));
  const nb = await fkc.read({ resourceType: 'Location', id: moved });
  const p5b = destination(p5, 0.1, 45);
  await fkc.update({ resourceType: 'Location', id: moved, body: { ...nb, position: { latitude: p5b.lat, longitude: p5b.lon } } });
  const oldPlace = pos.get(moved);
  pos.set(moved, p5b.lat, p5b.lon);
  assert.deepEqual(await nearIds(p5), [moved]);

  // restart on the same data: the same answers
  await srv.stop({ removeDir: false });
  srv = await startServer({ dataDir: dir, timeoutMs: 120000 });
  fkc = client(srv.base);
  assert.deepEqual(await nearIds(p1), []);
  assert.deepEqual(await nearIds(p3), []);
  assert.deepEqual(await nearIds(p4), [a.id]);
  assert.deepEqual(await nearIds(p5), [moved]);
  assert.ok(!(await nearIds(oldPlace, 0.01)).includes(moved));
  // national k nearest after the restart, and the index still follows writes
  const p = points[1];
  const got = await get(`Location?near=${nearValue(p, 25, 'km')}&_sort=near&_count=${K}`);
  checkKNearest(matches(got), p, 25, 'after restart');
  const c = await createLocation('NEAR après redémarrage', p1);
  assert.deepEqual(await nearIds(p1), [c.id]);
  // a patched coordinate keeps every digit sent, like a PUT does
  const p6 = emptySpot();
  await fhirPatch(fkc, `Location/${c.id}`, patchParams(
    op('replace', 'Location.position.latitude', { value: { valueDecimal: p6.lat } }),
    op('replace', 'Location.position.longitude', { value: { valueDecimal: p6.lon } })));
  assert.deepEqual((await fkc.read({ resourceType: 'Location', id: c.id })).position, { latitude: p6.lat, longitude: p6.lon });
  pos.set(c.id, p6.lat, p6.lon);
  assert.deepEqual(await nearIds(p6), [c.id]);
});

// ---- bad values ----
test('bad near values: 400 OperationOutcome, and the server still answers', async () => {
  const bad = [
    'Location?near=abc', 'Location?near=91|2|5|km', 'Location?near=-90.5|2', 'Location?near=46|181|5|km',
    'Location?near=46|2|5|ft', 'Location?near=46|2|5|KM', 'Location?near=46|2|-1|km', 'Location?near=46|2|nan|km',
    'Location?near=46|2|5|km|x', 'Location?near=46', 'Location?near=', 'Location?near=46|2,47|3',
    'Location?near=46|2|5|km,47|3|5|km', 'Location?near=46|2&near=47|3', 'Location?_sort=near',
    'Location?name=x&_sort=near', 'HealthcareService?location.near=abc', 'HealthcareService?_sort=near',
    'HealthcareService?location.near=46|2|5|lightyear',
  ];
  for (const q of bad) {
    const r = await raw(srv.base, q.replace(/\|/g, '%7C'));
    assert.equal(r.status, 400, `${q}: ${r.text.slice(0, 300)}`);
    assert.equal(r.json?.resourceType, 'OperationOutcome', q);
    assert.equal(r.json.issue[0].severity, 'error', q);
  }
  // :missing has no meaning for near: refused under strict handling, never silently applied
  const strict = await raw(srv.base, 'Location?near:missing=true', { headers: { prefer: 'handling=strict' } });
  assert.equal(strict.status, 400, strict.text.slice(0, 300));
  assert.equal(strict.json?.resourceType, 'OperationOutcome');
  const lenient = await raw(srv.base, 'Location?near:missing=true&_summary=count');
  if (lenient.status !== 400) {
    const outcome = (lenient.json.entry || []).find((e) => e.search?.mode === 'outcome')?.resource;
    assert.match(JSON.stringify(outcome?.issue || []), /near:missing/, 'the ignored parameter is reported');
  }
  const p = points[2];
  const got = await get(`Location?near=${nearValue(p, 10, 'km')}&_sort=near&_count=${K}`);
  checkKNearest(matches(got), p, 10, 'after the bad requests');
});
