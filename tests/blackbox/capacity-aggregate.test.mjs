// Bed aggregates for the regional and national views (issue 5): by territory (département,
// région, national) and unit type (réanimation, soins intensifs, surveillance continue, from the
// activités opérationnelles of the offers at the unit), as JSON and as FHIR MeasureReport; extra
// beds of a closed crisis are history, not capacity. Expected sums are computed here from each
// unit's own current figures, the demo file and data/capacity.json.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROR_BIN, SHARED_DIR, SOURCE_DIR, DEMO_FILE, demoOf, freshDir, raw, startServer } from './lib/ror.mjs';

const IMPORT_BIN = process.env.ROR_IMPORT_BIN || ROR_BIN;
const COMMUNES = join(SHARED_DIR, 'data/communes');
const CONFIG = JSON.parse(readFileSync(join(SOURCE_DIR, 'data/capacity.json'), 'utf8'));
const REGION_OF = { 75: '11', 77: '11', 78: '11', 91: '11', 92: '11', 93: '11', 94: '11', 95: '11' };
const DIMS = ['capacityType', 'capacityStatus', 'temporalityCapacity', 'genderCapacityAvailable',
  'capacityClosingType', 'additionalBedType', 'crisisType', 'temporaryAssignement'];

let srv, dir, origin;
const get = async (p) => raw(srv.base, `${origin}${p}`);
const post = (p, body) => raw(srv.base, `${origin}${p}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });

before(async () => {
  dir = freshDir('ror-agg-');
  for (const [kind, ...files] of [
    ['communes', join(COMMUNES, 'decoupage-administratif-6.0.0/communes.json'), join(COMMUNES, 'geo-api-communes-centres-2021-04-01.json'), join(COMMUNES, 'laposte_hexasmal_2020-11.csv')],
    ['ndjson', DEMO_FILE],
  ]) {
    const r = spawnSync(IMPORT_BIN, ['import', kind, '--data', dir, '--quiet', ...files], { encoding: 'utf8' });
    assert.ok(r.status === 0 || r.status === 3, r.stderr);
  }
  srv = await startServer({ dataDir: dir });
  origin = new URL(srv.base).origin;
  // fresh figures on every unit, so that sums are not all "stale"
  for (const loc of demoOf('Location')) {
    const sc = (loc.extension || []).filter((e) => e.url.endsWith('ror-location-supported-capacity'));
    const indicators = sc.map((ext, i) => ({
      ...Object.fromEntries(DIMS.map((d) => [d, ext.extension.find((x) => x.url === d)?.valueCodeableConcept?.coding?.[0]?.code]).filter(([, v]) => v)),
      nbCapacity: 3 + i + loc.id.length % 5,
    }));
    if (!indicators.length) continue;
    const r = await post(`/capacity/Location/${loc.id}`, { indicators });
    assert.equal(r.status, 200, r.text);
  }
});
after(async () => { await srv?.stop({ removeDir: true }); });

/** Unit type of a Location from the demo offers' R211 codes and data/capacity.json. */
function unitTypeOf(locId) {
  for (const hs of demoOf('HealthcareService')) {
    if (!(hs.location || []).some((l) => l.reference === `Location/${locId}`)) continue;
    for (const s of hs.specialty || []) for (const c of s.coding) {
      if (!c.system.includes('TRE_R211')) continue;
      for (const [k, v] of Object.entries(CONFIG.unitTypes)) if (v.activities.includes(c.code)) return k;
    }
  }
  return '';
}
const depOf = (loc) => loc.extension.find((e) => e.url.endsWith('ror-commune-cog')).valueCodeableConcept.coding[0].code.slice(0, 2);

/** Expected groups {territory/unit/indicator: sum} from each unit's current view. */
async function expected(level) {
  const sums = {};
  for (const loc of demoOf('Location')) {
    const cur = await get(`/capacity/Location/${loc.id}`);
    const dep = depOf(loc);
    const territory = level === 'region' ? REGION_OF[dep] : level === 'national' ? 'national' : dep;
    for (const i of cur.json.indicators) {
      if (i.nbCapacity === null) continue; // stale or closed crisis: unknown
      const k = `${territory}/${unitTypeOf(loc.id)}/${i.indicator}`;
      sums[k] = (sums[k] || 0) + i.nbCapacity;
    }
  }
  return sums;
}
const asMap = (groups) => Object.fromEntries(groups.filter((g) => g.units > 0).map((g) => [`${g.territory}/${g.unitType}/${g.indicator}`, g.nbCapacity]));

test('aggregates by région, département and national, per unit type, equal a direct sum', async () => {
  for (const level of ['region', 'departement', 'national']) {
    const r = await get(`/capacity/aggregate?level=${level}`);
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(asMap(r.json.groups), await expected(level), level);
    assert.ok(r.json.groups.every((g) => g.level === level));
  }
  const rea = await get('/capacity/aggregate?level=region&unitType=reanimation');
  assert.ok(rea.json.groups.length > 0);
  assert.ok(rea.json.groups.every((g) => g.unitType === 'reanimation' && g.territory === '11'));
  const want = Object.entries(await expected('region')).filter(([k]) => k.startsWith('11/reanimation/'));
  assert.deepEqual(asMap(rea.json.groups), Object.fromEntries(want));
  // the three unit types of the configuration all occur in the demo region
  const types = new Set((await get('/capacity/aggregate?level=national')).json.groups.map((g) => g.unitType));
  assert.ok(types.has('reanimation') && types.has('soins-intensifs'), [...types].join(','));
  for (const bad of ['level=world', 'unitType=cuisine', 'foo=1']) {
    const b = await get(`/capacity/aggregate?${bad}`);
    assert.equal(b.status, 400, bad);
    assert.equal(b.json.resourceType, 'OperationOutcome');
  }
});

test('the same as FHIR MeasureReports (RORMeasureReport: identifier, date, group.code, group.measureScore)', async () => {
  const r = await get('/capacity/MeasureReport?level=region');
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.resourceType, 'Bundle');
  assert.equal(r.json.type, 'collection');
  const reports = r.json.entry.map((e) => e.resource);
  assert.deepEqual(reports.map((m) => m.subject.identifier.value), ['11']);
  const want = await expected('region');
  const got = {};
  for (const m of reports) {
    assert.equal(m.resourceType, 'MeasureReport');
    assert.equal(m.status, 'complete');
    assert.equal(m.type, 'summary');
    assert.ok(m.identifier?.[0]?.value && m.date && m.measure);
    for (const g of m.group) {
      assert.ok(g.code.coding.length >= 3 && typeof g.measureScore.value === 'number');
      const unit = g.code.coding.find((c) => c.system === 'urn:ror:capacity-unit-type')?.code || '';
      const dims = Object.fromEntries(g.code.coding.filter((c) => c.system.includes('NOS/TRE_R3')).map((c) => [c.system.match(/TRE_(R\d+)/)[1], c.code]));
      const pop = Object.fromEntries(g.population.map((p) => [p.code.coding[0].code, p.count]));
      if (pop['initial-population'] === 0) continue;
      // find the indicator key back from its dimension codes
      const agg = (await get('/capacity/aggregate?level=region')).json.groups.find((x) => x.unitType === unit && g.code.text.endsWith(x.indicator));
      assert.ok(agg, g.code.text);
      assert.equal(g.measureScore.value, agg.nbCapacity);
      assert.ok(Object.keys(dims).length >= 2);
      got[`11/${unit}/${agg.indicator}`] = g.measureScore.value;
    }
  }
  assert.deepEqual(got, want);
  const nat = await get('/capacity/MeasureReport?level=national');
  assert.equal(nat.json.entry.length, 1);
  assert.equal(nat.json.entry[0].resource.subject, undefined);
});

test('extra beds of a crisis count while it is open; once closed they are history, not capacity', async () => {
  const loc = demoOf('Location').find((l) => l.id === 'loc-mondor-rea');
  const sc = loc.extension.find((e) => e.url.endsWith('ror-location-supported-capacity'));
  const dims = Object.fromEntries(DIMS.map((d) => [d, sc.extension.find((x) => x.url === d)?.valueCodeableConcept?.coding?.[0]?.code]).filter(([, v]) => v));
  const extra = { ...dims, capacityStatus: '06', additionalBedType: '01', nbCapacity: 7 };
  const crisis = await post('/capacity/crisis', { type: '02', territory: ['94'] });
  assert.equal(crisis.status, 201, crisis.text);
  assert.equal((await post(`/capacity/Location/${loc.id}`, { indicators: [extra] })).status, 200);
  const extraKey = (await get(`/capacity/Location/${loc.id}`)).json.indicators.find((i) => i.dimensions.capacityStatus?.code === '06' || i.indicator.split('|')[1] === '06').indicator;
  const during = (await get('/capacity/aggregate?level=departement&departement=94')).json.groups.find((g) => g.indicator === extraKey);
  assert.equal(during.nbCapacity, 7);
  assert.equal((await post(`/capacity/crisis/${crisis.json.id}/close`, {})).status, 200);
  const after = (await get('/capacity/aggregate?level=departement&departement=94')).json.groups.find((g) => g.indicator === extraKey);
  assert.equal(after, undefined, 'closed crisis: its extra beds are no longer summed');
  const shown = (await get(`/capacity/Location/${loc.id}`)).json.indicators.find((i) => i.indicator === extraKey);
  assert.deepEqual([shown.crisisClosed, shown.nbCapacity, shown.lastKnown], [true, null, 7]);
  const history = (await get(`/capacity/Location/${loc.id}/events?indicator=${encodeURIComponent(extraKey)}`)).json.events;
  assert.equal(history.at(-1).after, 7, 'the declaration stays in the history');
});
