// Capacity events: every change of a bed/place indicator of a Location is recorded with the
// version that made it (who, when, source, before -> after); current state, state as of a past
// instant, time series, resumable feed; invalid indicator sets refused with the store unchanged.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, client, raw, fhirPatch, op, patchParams, capacities, demoOf, SC_URL, FHIR_JSON, ADMIN_LOGIN } from './lib/ror.mjs';

let srv, fkc;
before(async () => { srv = await startServer({ seed: true }); fkc = client(srv.base); });
after(async () => { await srv?.stop(); });

const DIMS = ['capacityType', 'capacityStatus', 'temporalityCapacity', 'genderCapacityAvailable',
  'capacityClosingType', 'additionalBedType', 'crisisType', 'temporaryAssignement'];
const code = (ext, url) => ext.extension.find((s) => s.url === url)?.valueCodeableConcept?.coding?.[0]?.code;
/** The key of an indicator, computed here from the guide's definition (not from the server). */
const keyOf = (ext) => DIMS.map((d) => code(ext, d) ?? '-').join('|');
const nbOf = (ext) => ext.extension.find((s) => s.url === 'nbCapacity').valueInteger;
const scOf = (loc) => (loc.extension || []).filter((e) => e.url === SC_URL);
const byStatusPath = (status) => `Location.extension.where(url='${SC_URL}' and extension.where(url='capacityStatus' and valueCodeableConcept.coding[0].code='${status}')).extension.where(url='nbCapacity')`;

const get = async (path) => { const r = await raw(srv.base, `/${path}`.replace('//', '/')); return r; };
const capacity = async (id, q = '') => (await raw(srv.base, `${new URL(srv.base).origin}/capacity/Location/${id}${q}`));
const events = async (q = '') => (await raw(srv.base, `${new URL(srv.base).origin}/capacity/events${q}`));
const locEvents = async (id, q = '') => (await raw(srv.base, `${new URL(srv.base).origin}/capacity/Location/${id}/events${q}`));

async function allEvents() {
  const out = [];
  let after = 0;
  for (;;) {
    const r = await events(`?after=${after}&_count=7`);
    assert.equal(r.status, 200, r.text);
    out.push(...r.json.events);
    if (r.json.events.length < 7) return out;
    after = r.json.next;
  }
}

test('the seed recorded one event per indicator of every demo Location; current state = the Location', async () => {
  const locs = demoOf('Location').filter((l) => scOf(l).length);
  assert.ok(locs.length >= 2);
  const evs = await allEvents();
  assert.equal(evs.length, locs.reduce((n, l) => n + scOf(l).length, 0));
  for (const l of locs) {
    for (const ext of scOf(l)) {
      const e = evs.find((x) => x.location === l.id && x.indicator === keyOf(ext));
      assert.ok(e, `${l.id} ${keyOf(ext)}`);
      assert.equal(e.before, null);
      assert.equal(e.after, nbOf(ext));
      assert.equal(e.author, 'demo');
    }
    const cur = await capacity(l.id);
    assert.equal(cur.status, 200);
    // the demo's figures were declared in 2025: stale now, so shown as unknown with the last known
    assert.deepEqual(cur.json.indicators.map((i) => [i.indicator, i.nbCapacity ?? i.lastKnown]).sort(),
      scOf(l).map((x) => [keyOf(x), nbOf(x)]).sort());
  }
  // ids strictly increase: a feed in commit order
  for (let i = 1; i < evs.length; i++) assert.ok(evs[i].id > evs[i - 1].id);
});

test('a bed update is an event with who, when, source, before -> after; as-of gives the past', async () => {
  const loc = await fkc.read({ resourceType: 'Location', id: 'loc-pitie-rea' });
  const avail = scOf(loc).find((e) => code(e, 'capacityStatus') === '02');
  const key = keyOf(avail);
  const was = nbOf(avail);
  const [seedEvent] = (await locEvents('loc-pitie-rea', `?indicator=${encodeURIComponent(key)}`)).json.events;
  await fhirPatch(fkc, 'Location/loc-pitie-rea', patchParams(op('replace', byStatusPath('02'), { value: { valueInteger: was + 2 } })));
  await fhirPatch(fkc, 'Location/loc-pitie-rea', patchParams(op('replace', byStatusPath('02'), { value: { valueInteger: was + 1 } })));
  const series = (await locEvents('loc-pitie-rea', `?indicator=${encodeURIComponent(key)}`)).json.events;
  assert.deepEqual(series.map((e) => [e.before, e.after]), [[null, was], [was, was + 2], [was + 2, was + 1]]);
  assert.deepEqual(series.map((e) => e.version), [1, 2, 3]);
  assert.equal(series[1].author, ADMIN_LOGIN, 'the signed-in author');
  assert.equal(series[1].source, code(avail, 'capacitySourceType'));
  // the other indicator did not move
  const all = (await locEvents('loc-pitie-rea')).json.events;
  assert.equal(all.length, scOf(loc).length + 2);
  // as of the seed instant, of the first update, and now
  const at = async (t) => {
    const i = (await capacity('loc-pitie-rea', `?_at=${encodeURIComponent(t)}`)).json.indicators.find((x) => x.indicator === key);
    return i.nbCapacity ?? i.lastKnown;
  };
  assert.equal(await at(seedEvent.at), was);
  assert.equal(await at(series[1].at), was + 2);
  assert.equal(await at(series[2].at), was + 1);
  const nowInd = (await capacity('loc-pitie-rea')).json.indicators.find((i) => i.indicator === key);
  assert.equal(nowInd.nbCapacity ?? nowInd.lastKnown, was + 1);
  // before anything existed: no indicators
  const empty = await capacity('loc-pitie-rea', '?_at=2000-01-01');
  assert.equal(empty.status, 200);
  assert.deepEqual(empty.json.indicators, []);
});

test('several indicators changed in one update share one version; an added and a removed one are events', async () => {
  const loc = await fkc.read({ resourceType: 'Location', id: 'loc-pitie-rea' });
  const scs = scOf(loc);
  const installed = scs.find((e) => code(e, 'capacityStatus') === '01');
  const avail = scs.find((e) => code(e, 'capacityStatus') === '02');
  installed.extension.find((s) => s.url === 'nbCapacity').valueInteger += 4;
  avail.extension.find((s) => s.url === 'nbCapacity').valueInteger = 0;
  // a new "occupied" indicator, and drop nothing else
  const occupied = structuredClone(avail);
  occupied.extension.find((s) => s.url === 'capacityStatus').valueCodeableConcept.coding[0].code = '03';
  occupied.extension.find((s) => s.url === 'nbCapacity').valueInteger = 11;
  loc.extension.push(occupied);
  const before = (await allEvents()).length;
  const put = await raw(srv.base, `Location/${loc.id}`, { method: 'PUT', headers: FHIR_JSON, body: JSON.stringify(loc) });
  assert.equal(put.status, 200, put.text);
  const updated = put.json;
  const evs = (await allEvents()).slice(before);
  assert.equal(evs.length, 3);
  assert.ok(evs.every((e) => e.version === Number(updated.meta.versionId)));
  assert.deepEqual(evs.map((e) => e.indicator).sort(), [keyOf(installed), keyOf(avail), keyOf(occupied)].sort());
  assert.equal(evs.find((e) => e.indicator === keyOf(occupied)).before, null);
  // remove the occupied indicator again
  loc.extension = loc.extension.filter((e) => e !== occupied);
  loc.meta = updated.meta; // the server checks the version the client last saw
  await fkc.update({ resourceType: 'Location', id: loc.id, body: loc });
  const [gone] = (await allEvents()).slice(before + 3);
  assert.equal(gone.indicator, keyOf(occupied));
  assert.deepEqual([gone.before, gone.after], [11, null]);
  const now = (await capacity(loc.id)).json.indicators.map((i) => i.indicator);
  assert.ok(!now.includes(keyOf(occupied)));
});

test('two indicators with the same dimensions are refused (400 business-rule), nothing recorded', async () => {
  const loc = await fkc.read({ resourceType: 'Location', id: 'loc-pitie-rea' });
  const count = (await allEvents()).length;
  const dup = structuredClone(loc);
  dup.extension.push(structuredClone(scOf(loc)[0]));
  const r = await raw(srv.base, `Location/${loc.id}`, { method: 'PUT', headers: FHIR_JSON, body: JSON.stringify(dup) });
  assert.equal(r.status, 400);
  assert.equal(r.json.resourceType, 'OperationOutcome');
  assert.equal(r.json.issue[0].code, 'business-rule');
  const after = await fkc.read({ resourceType: 'Location', id: loc.id });
  assert.equal(after.meta.versionId, loc.meta.versionId);
  assert.equal((await allEvents()).length, count);
});

test('a deleted Location: every indicator ends; the past stays readable', async () => {
  const loc = await fkc.read({ resourceType: 'Location', id: 'loc-pitie-bloc' });
  const n = scOf(loc).length;
  const count = (await allEvents()).length;
  const lastAt = (await allEvents()).at(-1).at;
  await fkc.delete({ resourceType: 'Location', id: loc.id });
  const ends = (await allEvents()).slice(count);
  assert.equal(ends.length, n);
  assert.ok(ends.every((e) => e.after === null && e.location === loc.id));
  assert.equal((await capacity(loc.id)).status, 410);
  const past = await capacity(loc.id, `?_at=${encodeURIComponent(lastAt)}`);
  assert.equal(past.status, 200);
  assert.equal(past.json.indicators.length, n);
});

test('bad queries get a clear OperationOutcome', async () => {
  for (const [r, what] of [
    [await capacity('loc-pitie-rea', '?_at=hier'), '_at'],
    [await capacity('loc-pitie-rea', '?foo=1'), 'foo'],
    [await events('?after=abc'), 'after'],
    [await events('?_count=0'), '_count'],
    [await locEvents('loc-pitie-rea', '?_since=2026-13-45'), '_since'],
  ]) {
    assert.equal(r.status, 400, what);
    assert.equal(r.json.resourceType, 'OperationOutcome');
    assert.match(r.json.issue[0].diagnostics, new RegExp(what));
  }
  assert.equal((await capacity('no-such-location')).status, 404);
});

test('the mobile form: several indicators of one unit in one version, all or nothing', async () => {
  const origin = new URL(srv.base).origin;
  const post = (id, body, headers = {}) => raw(srv.base, `${origin}/capacity/Location/${id}`, {
    method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  const loc = await fkc.read({ resourceType: 'Location', id: 'loc-mondor-rea' });
  const avail = scOf(loc).find((e) => code(e, 'capacityStatus') === '02');
  const dims = (ext) => Object.fromEntries(DIMS.filter((d) => code(ext, d)).map((d) => [d, code(ext, d)]));
  const count = (await allEvents()).length;
  const occupied = { ...dims(avail), capacityStatus: '03', nbCapacity: 12 };
  const ok = await post(loc.id, { source: '02', version: Number(loc.meta.versionId), indicators: [{ ...dims(avail), nbCapacity: 7, comment: 'fin de garde' }, occupied] });
  assert.equal(ok.status, 200, ok.text);
  assert.equal(ok.json.version, Number(loc.meta.versionId) + 1);
  const evs = (await allEvents()).slice(count);
  assert.equal(evs.length, 2);
  assert.ok(evs.every((e) => e.version === ok.json.version && e.source === '02'));
  assert.deepEqual(evs.map((e) => [e.dimensions.capacityStatus, e.before, e.after]).sort(),
    [['02', nbOf(avail), 7], ['03', null, 12]].sort());
  const cur = (await capacity(loc.id)).json.indicators;
  assert.equal(cur.find((i) => i.dimensions.capacityStatus === '02').comment, 'fin de garde');
  assert.ok(Date.now() - Date.parse(cur.find((i) => i.dimensions.capacityStatus === '03').updateDate) < 60000, 'stamped now');
  const after = await fkc.read({ resourceType: 'Location', id: loc.id });
  assert.equal(scOf(after).length, scOf(loc).length + 1);

  // one bad indicator: nothing written
  const bad = await post(loc.id, { indicators: [{ ...dims(avail), nbCapacity: 1 }, { capacityType: '01', nbCapacity: 3 }] });
  assert.equal(bad.status, 400);
  assert.match(bad.json.issue[0].diagnostics, /indicators\[1\].*capacityStatus/);
  // a stale version: 412, nothing written
  const stale = await post(loc.id, { version: Number(loc.meta.versionId), indicators: [{ ...dims(avail), nbCapacity: 2 }] });
  assert.equal(stale.status, 412);
  const stale2 = await post(loc.id, { indicators: [{ ...dims(avail), nbCapacity: 2 }] }, { 'If-Match': `W/"${loc.meta.versionId}"` });
  assert.equal(stale2.status, 412);
  for (const [r, status] of [[await post('no-such-unit', { indicators: [{ ...dims(avail), nbCapacity: 1 }] }), 404],
    [await post(loc.id, '{"indicators": [', {}), 400],
    [await post(loc.id, { indicators: [{ ...dims(avail), nbCapacity: -4 }] }), 400],
    [await post(loc.id, { indicators: [] }), 400]]) {
    assert.equal(r.status, status, r.text);
    assert.equal(r.json.resourceType, 'OperationOutcome');
  }
  assert.equal((await fkc.read({ resourceType: 'Location', id: loc.id })).meta.versionId, after.meta.versionId);
  assert.equal((await allEvents()).length, count + 2);
});

test('staleness: old declarations are listed for reminders and shown as unknown; a fresh one is not', async () => {
  const origin = new URL(srv.base).origin;
  const stale = (await raw(srv.base, `${origin}/capacity/stale`)).json;
  assert.equal(stale.total, stale.stale.length);
  for (const e of stale.stale) assert.ok(e.ageHours > e.expiryHours, JSON.stringify(e));
  for (let i = 1; i < stale.stale.length; i++) assert.ok(stale.stale[i - 1].ageHours >= stale.stale[i].ageHours, 'oldest first');
  // the untouched demo unit (declared 2025-01-15) is stale, with what it last said
  const usic = demoOf('Location').find((l) => l.id === 'loc-pitie-usic');
  for (const ext of scOf(usic)) {
    const e = stale.stale.find((x) => x.location === usic.id && x.indicator === keyOf(ext));
    assert.ok(e, keyOf(ext));
    assert.equal(e.lastKnown, nbOf(ext));
    assert.equal(e.nbCapacity, null);
  }
  const shown = (await capacity(usic.id)).json.indicators;
  assert.ok(shown.every((i) => i.stale === true && i.nbCapacity === null && typeof i.lastKnown === 'number'));
  // declared now through the mobile form: fresh, shown, not listed
  const ext = scOf(usic).find((e) => code(e, 'capacityStatus') === '02') || scOf(usic)[0];
  const dims = Object.fromEntries(DIMS.filter((d) => code(ext, d)).map((d) => [d, code(ext, d)]));
  const r = await raw(srv.base, `${origin}/capacity/Location/${usic.id}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ indicators: [{ ...dims, nbCapacity: 3 }] }) });
  assert.equal(r.status, 200, r.text);
  const fresh = (await capacity(usic.id)).json.indicators.find((i) => i.indicator === keyOf(ext));
  assert.deepEqual([fresh.stale, fresh.nbCapacity], [false, 3]);
  const again = (await raw(srv.base, `${origin}/capacity/stale`)).json.stale;
  assert.ok(!again.some((x) => x.location === usic.id && x.indicator === keyOf(ext)));
  assert.equal(again.length, stale.stale.length - 1);
});

test('aggregates by département equal a direct sum of every unit\'s current figures', async () => {
  const origin = new URL(srv.base).origin;
  // make a few figures fresh so that sums are not all zero
  for (const id of ['loc-rdebre-ped', 'loc-sainte-anne-psy', 'loc-mignot-mater']) {
    const loc = await fkc.read({ resourceType: 'Location', id });
    const indicators = scOf(loc).map((ext, i) => ({
      ...Object.fromEntries(DIMS.filter((d) => code(ext, d)).map((d) => [d, code(ext, d)])), nbCapacity: 10 + i,
    }));
    const r = await raw(srv.base, `${origin}/capacity/Location/${id}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ indicators }) });
    assert.equal(r.status, 200, r.text);
  }
  // the expected sums, from each unit's own state and the département of its commune
  const cog = (l) => l.extension.find((e) => e.url.endsWith('ror-commune-cog')).valueCodeableConcept.coding[0].code;
  const expected = {};
  const total = {};
  for (const l of demoOf('Location')) {
    const cur = await capacity(l.id);
    if (cur.status !== 200) continue; // deleted earlier in this file
    const dep = cog(l).startsWith('97') ? cog(l).slice(0, 3) : cog(l).slice(0, 2);
    for (const i of cur.json.indicators) {
      for (const [map, k] of [[expected, `${dep}/${i.indicator}`], [total, i.indicator]]) {
        map[k] ??= { nb: 0, units: 0, stale: 0 };
        if (i.stale) map[k].stale++; else { map[k].units++; map[k].nb += i.nbCapacity; }
      }
    }
  }
  const agg = (await raw(srv.base, `${origin}/capacity/aggregate`)).json;
  const got = Object.fromEntries(agg.byDepartement.map((g) => [`${g.departement}/${g.indicator}`, { nb: g.nbCapacity, units: g.units, stale: g.staleUnits }]));
  assert.deepEqual(got, expected);
  assert.deepEqual(Object.fromEntries(agg.total.map((g) => [g.indicator, { nb: g.nbCapacity, units: g.units, stale: g.staleUnits }])), total);
  assert.ok(Object.values(total).some((t) => t.nb > 0));
  const only75 = (await raw(srv.base, `${origin}/capacity/aggregate?departement=75`)).json;
  assert.ok(only75.byDepartement.length > 0 && only75.byDepartement.every((g) => g.departement === '75'));
});

test('crisis mode: extra beds only during a crisis the ARS opened for the territory; all recorded', async () => {
  const origin = new URL(srv.base).origin;
  const post = (path, body) => raw(srv.base, `${origin}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  const loc = await fkc.read({ resourceType: 'Location', id: 'loc-mondor-rea' }); // Créteil, 94
  const base = scOf(loc)[0];
  const dims = Object.fromEntries(DIMS.filter((d) => code(base, d)).map((d) => [d, code(base, d)]));
  const extra = { ...dims, capacityStatus: '06', additionalBedType: '01', nbCapacity: 4 };
  const count = (await allEvents()).length;
  // no crisis: refused, nothing written
  const refused = await post(`/capacity/Location/${loc.id}`, { indicators: [extra] });
  assert.equal(refused.status, 400);
  assert.equal(refused.json.issue[0].code, 'business-rule');
  assert.match(refused.json.issue[0].diagnostics, /crise/);
  // a crisis elsewhere (Paris) does not cover Créteil
  const paris = await post('/capacity/crisis', { type: '02', territory: ['75'], comment: 'plan blanc Paris' });
  assert.equal(paris.status, 201, paris.text);
  assert.equal((await post(`/capacity/Location/${loc.id}`, { indicators: [extra] })).status, 400);
  // the regional crisis: accepted
  const idf = await post('/capacity/crisis', { type: '02', territory: ['75', '77', '78', '91', '92', '93', '94', '95'] });
  assert.equal(idf.status, 201);
  const ok = await post(`/capacity/Location/${loc.id}`, { indicators: [extra, { ...extra, crisisType: '02', capacityStatus: '02', nbCapacity: 2 }] });
  assert.equal(ok.status, 200, ok.text);
  // a crisis indicator of another crisis type is refused
  const other = await post(`/capacity/Location/${loc.id}`, { indicators: [{ ...extra, crisisType: '01', capacityStatus: '02', nbCapacity: 1 }] });
  assert.equal(other.status, 400);
  // closed: new extra beds refused again; the record keeps who and when
  const closed = await post(`/capacity/crisis/${idf.json.id}/close`, {});
  assert.equal(closed.status, 200);
  assert.equal((await post(`/capacity/crisis/${idf.json.id}/close`, {})).status, 404, 'closed once');
  assert.equal((await post(`/capacity/Location/${loc.id}`, { indicators: [{ ...extra, nbCapacity: 9 }] })).status, 400);
  const list = (await raw(srv.base, `${origin}/capacity/crisis`)).json;
  assert.equal(list.open, 1);
  const rec = list.crises.find((c) => c.id === idf.json.id);
  assert.equal(rec.open, false);
  assert.equal(rec.openedBy, ADMIN_LOGIN);
  assert.ok(Date.parse(rec.ended) >= Date.parse(rec.started));
  assert.equal(rec.territory, '75,77,78,91,92,93,94,95');
  assert.equal((await allEvents()).length, count + 2, 'only the accepted update made events');
  for (const bad of [{ type: 'x', territory: 'national' }, { type: '02', territory: ['7'] }, { type: '02' }]) {
    const r = await post('/capacity/crisis', bad);
    assert.equal(r.status, 400, JSON.stringify(bad));
    assert.equal(r.json.resourceType, 'OperationOutcome');
  }
  await post(`/capacity/crisis/${paris.json.id}/close`, {});
});
