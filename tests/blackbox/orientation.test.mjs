// Orientation (issue 4): GET|POST /orientation on the demo region with the real communes table
// and NOS loaded. Expected results are computed here from the demo file and an independent
// haversine, never read back from the engine.
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { ROR_BIN, SHARED_DIR, DEMO_FILE, FHIR_JSON, client, demoById, demoOf, fhirPatch, freshDir, op, patchParams, raw, startServer } from './lib/ror.mjs';

const IMPORT_BIN = process.env.ROR_IMPORT_BIN || ROR_BIN;
const COMMUNES = join(SHARED_DIR, 'data/communes');
const R211 = 'https://mos.esante.gouv.fr/NOS/TRE_R211-ActiviteOperationnelle/FHIR/TRE-R211-ActiviteOperationnelle';
const MONDOR = { lat: 48.7898, lon: 2.4543 };
const PITIE = { lat: 48.8387, lon: 2.3637 };

let srv, dir, origin, fkc;

function importInto(d, kind, ...files) {
  const r = spawnSync(IMPORT_BIN, ['import', kind, '--data', d, '--quiet', ...files], { encoding: 'utf8' });
  assert.ok(r.status === 0 || r.status === 3, `import ${kind}: ${r.status} ${r.stderr}`);
}

before(async () => {
  dir = freshDir('ror-orient-');
  importInto(dir, 'communes', join(COMMUNES, 'decoupage-administratif-6.0.0/communes.json'),
    join(COMMUNES, 'geo-api-communes-centres-2021-04-01.json'), join(COMMUNES, 'laposte_hexasmal_2020-11.csv'));
  importInto(dir, 'nos', join(SHARED_DIR, 'spec/nos'));
  importInto(dir, 'ndjson', DEMO_FILE); // (--seed only fills an empty store)
  srv = await startServer({ dataDir: dir });
  origin = new URL(srv.base).origin;
  fkc = client(srv.base);
});
after(async () => { await srv?.stop({ removeDir: true }); });

/** Great-circle km on the mean Earth sphere, written here independently of the server. */
function km(a, b) {
  const R = 6371.0088, rad = Math.PI / 180;
  const h = Math.sin((b.lat - a.lat) * rad / 2) ** 2 +
    Math.cos(a.lat * rad) * Math.cos(b.lat * rad) * Math.sin((b.lon - a.lon) * rad / 2) ** 2;
  return 2 * R * Math.asin(Math.min(1, Math.sqrt(h)));
}

const orient = async (params) => {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) for (const x of [].concat(v)) q.append(k, String(x));
  return raw(srv.base, `${origin}/orientation?${q}`);
};
const ids = (r) => r.json.results.map((x) => x.id);
const positionOf = (locId) => demoById(locId).position;
const hsPlace = (hsId) => {
  const hs = demoById(hsId);
  const own = (hs.location || []).map((l) => l.reference.split('/')[1]);
  const sites = own.length ? own : demoOf('HealthcareService').filter((h) => h.providedBy.reference === hs.providedBy.reference)
    .flatMap((h) => (h.location || []).map((l) => l.reference.split('/')[1]));
  return sites.map((s) => ({ lat: positionOf(s).latitude, lon: positionOf(s).longitude }));
};
const nearest = (hsId, p) => Math.min(...hsPlace(hsId).map((x) => km(p, x)));

describe('needs, places, ranking', () => {
  test('a code (system|code or bare) finds the offers carrying it, with distance and why', async () => {
    for (const need of [`${R211}|126`, '126']) {
      const r = await orient({ need, lat: MONDOR.lat, lon: MONDOR.lon, radius: 30 });
      assert.equal(r.status, 200, r.text);
      assert.deepEqual(ids(r), ['hs-pitie-rea']);
      const hit = r.json.results[0];
      assert.ok(Math.abs(hit.distance_km - nearest('hs-pitie-rea', MONDOR)) < 0.001);
      assert.equal(hit.matched[0].param, 'specialty');
      assert.equal(hit.matched[0].code, '126');
      assert.match(hit.why.join(' | '), /activité opérationnelle/);
      assert.equal(hit.organization.reference, 'Organization/eg-pitie');
      assert.match(r.headers.get('server-timing') || '', /^orient;dur=\d+(\.\d+)?$/);
    }
  });

  test('French free text, accents and case aside, prefix words, nearest first', async () => {
    const want = demoOf('HealthcareService').filter((h) => /réanimation/i.test(h.name) || (h.specialty || []).some((s) => s.coding.some((c) => /réanimation/i.test(c.display || ''))))
      .map((h) => h.id).sort((a, b) => nearest(a, MONDOR) - nearest(b, MONDOR));
    assert.ok(want.length >= 2);
    for (const need of ['réanimation', 'REANIMATION', 'Réa']) {
      const r = await orient({ need, lat: MONDOR.lat, lon: MONDOR.lon, radius: 50, sensitive: false });
      assert.equal(r.status, 200, r.text);
      const got = ids(r).filter((id) => want.includes(id));
      assert.deepEqual(got, want, need);
      const d = r.json.results.map((x) => x.distance_km);
      assert.deepEqual(d, [...d].sort((a, b) => a - b), 'sorted by distance');
    }
    // two words: both must match (AND): "réanimation médico" only Mondor's
    const both = await orient({ need: 'réanimation médico-chirurgicale', lat: PITIE.lat, lon: PITIE.lon, radius: 50 });
    assert.deepEqual(ids(both), ['hs-mondor-rea']);
  });

  test('several needs are AND-ed; the establishment is a unit too', async () => {
    const r = await orient({ need: ['urgences', 'pitié'], lat: PITIE.lat, lon: PITIE.lon, radius: 10 });
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(ids(r), ['hs-pitie-urg']);
    const e = await orient({ need: 'salpetriere', lat: PITIE.lat, lon: PITIE.lon, radius: 10 });
    assert.ok(ids(e).includes('eg-pitie'), e.text);
    assert.equal(e.json.results.find((x) => x.id === 'eg-pitie').type, 'Organization');
  });

  test('the place by INSEE code, postal code or commune name (real communes table)', async () => {
    const byCode = await orient({ need: 'réanimation', commune: '94028', radius: 30, sensitive: false });
    assert.equal(byCode.status, 200, byCode.text);
    assert.equal(byCode.json.place.commune, '94028');
    assert.equal(ids(byCode)[0], 'hs-mondor-rea', 'Créteil: Henri-Mondor is the nearest réanimation');
    const byPostal = await orient({ need: 'réanimation', postal: '94000', radius: 30 });
    assert.deepEqual(ids(byPostal), ids(byCode));
    const byName = await orient({ need: 'réanimation', place: 'Créteil', radius: 30 });
    assert.deepEqual(ids(byName), ids(byCode));
    const p = byCode.json.place;
    for (const h of byCode.json.results) assert.ok(Math.abs(h.distance_km - nearest(h.id, p)) < 0.001, h.id);
  });

  test('age and sensitive units filter', async () => {
    const child = await orient({ need: 'urgences', lat: PITIE.lat, lon: PITIE.lon, radius: 30, age: 8 });
    assert.deepEqual(ids(child), ['hs-rdebre-urgped']);
    const adult = await orient({ need: 'urgences', lat: PITIE.lat, lon: PITIE.lon, radius: 30, age: 40 });
    assert.deepEqual(ids(adult), ['hs-pitie-urg']);
    const usip = await orient({ need: `${R211}|355`, lat: PITIE.lat, lon: PITIE.lon, radius: 30, widen: false });
    assert.deepEqual(ids(usip), ['hs-sainte-anne-usip']);
    assert.equal(usip.json.results[0].sensitive, true);
    const hidden = await orient({ need: `${R211}|355`, lat: PITIE.lat, lon: PITIE.lon, radius: 30, sensitive: false, widen: false });
    assert.equal(hidden.json.total, 0);
  });

  test('POST with a JSON body answers as GET', async () => {
    const body = { need: ['réanimation'], lat: MONDOR.lat, lon: MONDOR.lon, radius: 50, limit: 1 };
    const p = await raw(srv.base, `${origin}/orientation`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    assert.equal(p.status, 200, p.text);
    const g = await orient(body);
    assert.deepEqual(ids(p), ids(g));
    assert.equal(p.json.results.length, 1);
    assert.equal(p.json.total, g.json.total);
  });
});

describe('widening and gaps', () => {
  test('fewer than 2 results: the radius doubles and the answer says so', async () => {
    const r = await orient({ need: 'pédiatrie', lat: 48.8049, lon: 2.1204, radius: 2 }); // Versailles
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.widened, true);
    assert.ok(r.json.radius_km > 2);
    assert.match(r.json.message, /élargi/);
    assert.ok(ids(r).includes('hs-rdebre-ped'));
    assert.ok(r.json.results.every((x) => x.distance_km <= r.json.radius_km));
  });

  test('a search that finds nothing is recorded as a gap and listed for the ARS', async () => {
    const before = (await raw(srv.base, `${origin}/orientation/gaps`)).json.count;
    const r = await orient({ need: 'lithotritie extracorporelle zz', lat: 43.3, lon: 5.4, radius: 5, widen: false });
    assert.equal(r.status, 200);
    assert.equal(r.json.total, 0);
    let g;
    // the gap is written after the answer (asynchronously): poll, bounded by a deadline
    for (const deadline = Date.now() + 10000; Date.now() < deadline;) {
      g = (await raw(srv.base, `${origin}/orientation/gaps`)).json;
      if (g.count > before) break;
      await new Promise((res) => setTimeout(res, 10));
    }
    assert.equal(g.count, before + 1);
    assert.deepEqual(g.gaps[0].query.need, ['lithotritie extracorporelle zz']);
    assert.equal(g.gaps[0].query.lat, '43.3');
  });
});

describe('the index follows writes and restarts', () => {
  const newHs = (id, name, loc) => {
    const hs = structuredClone(demoById('hs-mignot-medpoly'));
    delete hs.meta;
    return { ...hs, id, name, location: [{ reference: `Location/${loc}` }], identifier: [{ ...hs.identifier[0], value: `11/${id}` }] };
  };
  const put = (res) => raw(srv.base, `${res.resourceType}/${res.id}`, { method: 'PUT', headers: FHIR_JSON, body: JSON.stringify(res) });

  test('create, update, patch, delete', async () => {
    assert.equal((await put(newHs('hs-orient-x', 'Zygomatique expérimentale', 'loc-mondor-rea'))).status, 201);
    let r = await orient({ need: 'zygomatique', lat: PITIE.lat, lon: PITIE.lon, radius: 30 });
    assert.deepEqual(ids(r), ['hs-orient-x']);
    assert.ok(Math.abs(r.json.results[0].distance_km - km(PITIE, MONDOR)) < 0.001);
    // update: moved to the Pitié site
    assert.equal((await put(newHs('hs-orient-x', 'Zygomatique expérimentale', 'loc-pitie-bloc'))).status, 200);
    r = await orient({ need: 'zygomatique', lat: PITIE.lat, lon: PITIE.lon, radius: 30 });
    assert.ok(r.json.results[0].distance_km < 0.001, r.text);
    // patch the name: found by the new one only
    await fhirPatch(fkc, 'HealthcareService/hs-orient-x', patchParams(op('replace', 'HealthcareService.name', { value: { valueString: 'Xylophonie clinique' } })));
    assert.equal((await orient({ need: 'zygomatique', lat: PITIE.lat, lon: PITIE.lon, radius: 30, widen: false })).json.total, 0);
    assert.deepEqual(ids(await orient({ need: 'xylophonie', lat: PITIE.lat, lon: PITIE.lon, radius: 30 })), ['hs-orient-x']);
    // a Location that moves moves its offers
    const loc = structuredClone(demoById('loc-mignot-med'));
    await fhirPatch(fkc, 'Location/loc-mignot-med', patchParams(
      op('replace', 'Location.position.latitude', { value: { valueDecimal: 45.764 } }),
      op('replace', 'Location.position.longitude', { value: { valueDecimal: 4.8357 } })));
    const lyon = { lat: 45.764, lon: 4.8357 };
    r = await orient({ need: 'médecine polyvalente', lat: lyon.lat, lon: lyon.lon, radius: 5 });
    assert.deepEqual(ids(r), ['hs-mignot-medpoly'], r.text);
    assert.ok(r.json.results[0].distance_km < 0.001);
    assert.ok(loc.position.latitude !== lyon.lat);
    // delete: gone
    assert.equal((await raw(srv.base, 'HealthcareService/hs-orient-x', { method: 'DELETE' })).status < 300, true);
    assert.equal((await orient({ need: 'xylophonie', lat: PITIE.lat, lon: PITIE.lon, radius: 30, widen: false })).json.total, 0);
  });

  test('beds available now: a fresh declaration counts, a stale or zero one does not', async () => {
    const stale = await orient({ need: '126', lat: PITIE.lat, lon: PITIE.lon, radius: 10 });
    assert.equal(stale.json.results[0].beds.available, null, 'the demo figures are old: unknown');
    assert.equal((await orient({ need: '126', lat: PITIE.lat, lon: PITIE.lon, radius: 10, beds: true, widen: false })).json.total, 0);
    const dims = { capacityType: '01', capacityStatus: '02', temporalityCapacity: '01', genderCapacityAvailable: '03', temporaryAssignement: '01' };
    const post = (n) => raw(srv.base, `${origin}/capacity/Location/loc-pitie-rea`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ indicators: [{ ...dims, nbCapacity: n }] }) });
    assert.equal((await post(4)).status, 200);
    const r = await orient({ need: '126', lat: PITIE.lat, lon: PITIE.lon, radius: 10, beds: true });
    assert.deepEqual(ids(r), ['hs-pitie-rea']);
    assert.equal(r.json.results[0].beds.available, 4);
    assert.ok(r.json.results[0].beds.ageMinutes <= 1);
    assert.equal((await post(0)).status, 200);
    assert.equal((await orient({ need: '126', lat: PITIE.lat, lon: PITIE.lon, radius: 10, beds: true, widen: false })).json.total, 0);
  });

  test('open now, from opening hours in Paris time', async () => {
    const fmt = new Intl.DateTimeFormat('en-GB', { timeZone: 'Europe/Paris', weekday: 'short' });
    const today = fmt.format(new Date()).toLowerCase().slice(0, 3);
    const days = ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'];
    const other = days[(days.indexOf(today) + 3) % 7];
    const open = { ...newHs('hs-orient-open', 'Kinésithérapie ouverte', 'loc-pitie-bloc'), availableTime: [{ daysOfWeek: [today], allDay: true }] };
    const closed = { ...newHs('hs-orient-closed', 'Kinésithérapie fermée', 'loc-pitie-bloc'), availableTime: [{ daysOfWeek: [other], allDay: true }] };
    assert.equal((await put(open)).status, 201);
    assert.equal((await put(closed)).status, 201);
    const all = await orient({ need: 'kinésithérapie', lat: PITIE.lat, lon: PITIE.lon, radius: 5 });
    const byId = Object.fromEntries(all.json.results.map((x) => [x.id, x.open]));
    assert.deepEqual([byId['hs-orient-open'], byId['hs-orient-closed']], [true, false]);
    const now = await orient({ need: 'kinésithérapie', lat: PITIE.lat, lon: PITIE.lon, radius: 5, open_now: true });
    assert.ok(ids(now).includes('hs-orient-open') && !ids(now).includes('hs-orient-closed'), now.text);
  });

  test('after a restart the index is rebuilt from the store: same answers', async () => {
    const queries = [
      { need: 'xylophonie', lat: PITIE.lat, lon: PITIE.lon, radius: 30, widen: false },
      { need: 'médecine polyvalente', lat: 45.764, lon: 4.8357, radius: 5 },
      { need: 'kinésithérapie', lat: PITIE.lat, lon: PITIE.lon, radius: 5 },
      { need: 'réanimation', commune: '94028', radius: 30 },
    ];
    const before = [];
    for (const q of queries) before.push((await orient(q)).json.results.map((x) => [x.id, x.distance_km]));
    await srv.stop({ removeDir: false });
    srv = await startServer({ dataDir: dir });
    origin = new URL(srv.base).origin;
    fkc = client(srv.base);
    for (const [i, q] of queries.entries()) {
      assert.deepEqual((await orient(q)).json.results.map((x) => [x.id, x.distance_km]), before[i], JSON.stringify(q));
    }
  });
});

describe('FHIR near-insee-code', () => {
  test('code|distance|unit: a radius around the commune centre (communes table)', async () => {
    const place = (await orient({ need: 'x', commune: '94028', radius: 1 })).json.place; // Créteil
    const r = await raw(srv.base, `Location?near-insee-code=${encodeURIComponent('94028|5|km')}&_sort=near`);
    assert.equal(r.status, 200, r.text);
    const want = demoOf('Location').filter((l) => km(place, { lat: l.position.latitude, lon: l.position.longitude }) <= 5).map((l) => l.id);
    const got = r.json.entry.filter((e) => e.search.mode === 'match');
    assert.deepEqual(got.map((e) => e.resource.id).sort(), want.sort());
    assert.ok(want.includes('loc-mondor-rea'));
    for (const e of got) {
      const l = e.resource.position;
      assert.ok(Math.abs(e.search.extension[0].valueDistance.value - km(place, { lat: l.latitude, lon: l.longitude })) < 1e-5);
    }
    const unknown = await raw(srv.base, `Location?near-insee-code=${encodeURIComponent('00000|5|km')}`);
    assert.equal(unknown.status, 400);
    assert.equal(unknown.json.resourceType, 'OperationOutcome');
  });
});

describe('type-ahead and bad input', () => {
  test('suggest: unit names and NOS labels by prefix', async () => {
    const r = await raw(srv.base, `${origin}/orientation/suggest?q=${encodeURIComponent('pitié sal')}`);
    assert.equal(r.status, 200, r.text);
    assert.ok(r.json.units.some((u) => u.id === 'eg-pitie'), r.text);
    const c = await raw(srv.base, `${origin}/orientation/suggest?q=${encodeURIComponent('réanimation')}`);
    assert.ok(c.json.concepts.some((x) => x.system === R211 && /^Réanimation/i.test(x.display)), c.text);
    assert.ok(!c.json.units.some((u) => u.id === 'hs-sainte-anne-usip'), 'sensitive units are not suggested');
  });

  test('bad queries: 400 OperationOutcome in French, the server keeps serving', async () => {
    const bad = [
      { need: 'x' }, // no place
      { need: 'x', lat: 100, lon: 2 },
      { need: 'x', lat: 'abc', lon: 2 },
      { need: 'x', lat: 48, lon: 2, radius: -1 },
      { need: 'x', lat: 48, lon: 2, radius: 'huge' },
      { need: 'x', lat: 48, lon: 2, limit: 0 },
      { need: 'x', lat: 48, lon: 2, age: 'old' },
      { need: 'x', lat: 48, lon: 2, beds: 'maybe' },
      { need: 'x'.repeat(500), lat: 48, lon: 2 },
      { need: 'x', commune: '00000' },
      { need: 'x', postal: '00000' },
    ];
    for (const q of bad) {
      const r = await orient(q);
      assert.equal(r.status, 400, `${JSON.stringify(q).slice(0, 80)}: ${r.text}`);
      assert.equal(r.json.resourceType, 'OperationOutcome');
      assert.ok(r.json.issue[0].diagnostics.length > 5);
    }
    for (const body of ['{', '[]', '"x"', '{"need": 5, "lat": 48, "lon": 2}']) {
      const r = await raw(srv.base, `${origin}/orientation`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
      assert.equal(r.status, 400, body);
    }
    assert.equal((await orient({ need: '126', lat: PITIE.lat, lon: PITIE.lon })).status, 200);
  });
});
