// 7. FHIRPath Patch on capacities (the guide's bed-update protocol), conditional patch, errors.
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import {
  startServer, client, raw, expectFail, fhirPatch, op, patchParams, responseOf, headersOf, capacities,
  demoById, SC_URL, FHIR_JSON,
} from './lib/ror.mjs';

let srv, fkc;
before(async () => { srv = await startServer({ seed: true }); fkc = client(srv.base); });
after(async () => { await srv?.stop(); });

const NOS = (r, name) => `https://mos.esante.gouv.fr/NOS/TRE_${r}-${name}/FHIR/TRE-${r}-${name}`;
const capPath = (cond) => `Location.extension.where(url='${SC_URL}' and ${cond})`;
const byStatus = (code) => capPath(`extension.where(url='capacityStatus' and valueCodeableConcept.coding[0].code='${code}')`);
const nbPath = (code) => `${byStatus(code)}.extension.where(url='nbCapacity')`;
const cc = (system, code) => ({ coding: [{ system, code }] });

async function read(id) { return fkc.read({ resourceType: 'Location', id }); }

describe('capacity patch on a demo Location', () => {
  test('replace nbCapacity of the "available" (02) indicator with the guide path', async () => {
    const before = await read('loc-pitie-rea');
    const r = await fhirPatch(fkc, 'Location/loc-pitie-rea', patchParams(op('replace', nbPath('02'), { value: { valueInteger: 7 } })));
    const res = responseOf(r);
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('etag'), `W/"${Number(before.meta.versionId) + 1}"`);
    assert.ok(res.headers.get('last-modified'));
    const after = await read('loc-pitie-rea');
    assert.equal(after.meta.versionId, String(Number(before.meta.versionId) + 1));
    const caps = capacities(after);
    assert.equal(caps.find((c) => c.capacityStatus === '02').nbCapacity, 7);
    assert.equal(caps.find((c) => c.capacityStatus === '01').nbCapacity, capacities(demoById('loc-pitie-rea')).find((c) => c.capacityStatus === '01').nbCapacity, 'other indicator untouched');
    // nothing but that integer changed
    const expected = structuredClone(before);
    expected.extension.find((x) => x.url === SC_URL && x.extension.some((s) => s.url === 'capacityStatus' && s.valueCodeableConcept.coding[0].code === '02'))
      .extension.find((s) => s.url === 'nbCapacity').valueInteger = 7;
    assert.deepEqual({ ...after, meta: undefined }, { ...expected, meta: undefined });
    // and the index follows
    const s = await fkc.search({ resourceType: 'Location', searchParams: { 'capacity-status': '02', 'nb-capacity': '7' } });
    assert.deepEqual(s.entry.map((e) => e.resource.id), ['loc-pitie-rea']);
  });

  test('replace on a path selecting nothing -> 404 not-found, resource unchanged', async () => {
    const before = await read('loc-pitie-rea');
    const e = await expectFail(fhirPatch(fkc, 'Location/loc-pitie-rea', patchParams(op('replace', nbPath('05'), { value: { valueInteger: 1 } }))));
    assert.equal(e.status, 404);
    assert.equal(e.data.resourceType, 'OperationOutcome');
    assert.equal(e.data.issue[0].code, 'not-found');
    assert.deepEqual(await read('loc-pitie-rea'), before);
  });

  test('add a whole capacity indicator (standard nested-part form), then replace and delete it', async () => {
    const before = await read('loc-mignot-med');
    assert.equal(capacities(before).length, 0);
    const sub = (url, value) => ({ name: 'extension', part: [{ name: 'url', valueUri: url }, { name: 'value', ...value }] });
    const add = op('add', 'Location', {
      name: 'extension',
      value: {},
    });
    add.part[add.part.length - 1] = {
      name: 'value',
      part: [
        { name: 'url', valueUri: SC_URL },
        sub('capacityType', { valueCodeableConcept: cc(NOS('R329', 'NatureCapacite'), '01') }),
        sub('capacityStatus', { valueCodeableConcept: cc(NOS('R330', 'TypeStatutCapacite'), '05') }),
        sub('temporalityCapacity', { valueCodeableConcept: cc(NOS('R331', 'TemporaliteCapacite'), '01') }),
        sub('nbCapacity', { valueInteger: 4 }),
        sub('capacitySourceType', { valueCodeableConcept: cc(NOS('R335', 'TypeSourceCapacite'), '02') }),
        sub('capacityUpdateDate', { valueDateTime: '2025-02-01T12:00:00+01:00' }),
        sub('temporaryAssignement', { valueCodeableConcept: cc(NOS('R337', 'AffectationTemporaire'), '01') }),
        sub('capacityClosingType', { valueCodeableConcept: cc(NOS('R333', 'TypeFermetureCapacite'), '01') }),
      ],
    };
    const r = await fhirPatch(fkc, 'Location/loc-mignot-med', patchParams(add));
    assert.equal(responseOf(r).status, 200);
    let now = await read('loc-mignot-med');
    assert.deepEqual(capacities(now), [{
      capacityType: '01', capacityStatus: '05', temporalityCapacity: '01', nbCapacity: 4, capacitySourceType: '02',
      capacityUpdateDate: '2025-02-01T12:00:00+01:00', temporaryAssignement: '01', capacityClosingType: '01',
    }]);
    const added = now.extension.find((x) => x.url === SC_URL);
    assert.deepEqual(added.extension.find((s) => s.url === 'nbCapacity'), { url: 'nbCapacity', valueInteger: 4 });
    assert.deepEqual(added.extension.find((s) => s.url === 'capacityStatus').valueCodeableConcept, cc(NOS('R330', 'TypeStatutCapacite'), '05'));
    // "closed but reactivable beds" query from the guide finds it
    const q = await fkc.search({ resourceType: 'HealthcareService', searchParams: {
      'location.capacity-status': `${NOS('R330', 'TypeStatutCapacite')}|05`, 'location.capacity-closing-type': `${NOS('R333', 'TypeFermetureCapacite')}|01`, 'location.nb-capacity': 'gt0',
    } });
    assert.deepEqual(q.entry.map((e) => e.resource.id), ['hs-mignot-medpoly']);

    await fhirPatch(fkc, 'Location/loc-mignot-med', patchParams(
      op('replace', nbPath('05'), { value: { valueInteger: 0 } }),
      op('replace', `${byStatus('05')}.extension.where(url='capacityUpdateDate').value`, { value: { valueDateTime: '2025-02-02T08:00:00+01:00' } }),
    ));
    now = await read('loc-mignot-med');
    assert.equal(capacities(now)[0].nbCapacity, 0);
    assert.equal(capacities(now)[0].capacityUpdateDate, '2025-02-02T08:00:00+01:00');

    const d = await fhirPatch(fkc, 'Location/loc-mignot-med', patchParams(op('delete', byStatus('05'))));
    assert.equal(responseOf(d).status, 200);
    now = await read('loc-mignot-med');
    assert.deepEqual(capacities(now), []);
    assert.deepEqual({ ...now, meta: undefined }, { ...before, meta: undefined }, 'back to the original content');
    assert.equal(now.meta.versionId, String(Number(before.meta.versionId) + 3));
    const h = await fkc.history({ resourceType: 'Location', id: 'loc-mignot-med' });
    assert.equal(h.entry.length, 4);
  });

  test("add with the guide's fragment form (value part carrying {extension:[...]})", async () => {
    const capacity = structuredClone(demoById('loc-mignot-mater').extension.find((x) => x.url === SC_URL
      && x.extension.some((s) => s.url === 'capacityStatus' && s.valueCodeableConcept.coding[0].code === '02')));
    capacity.extension.find((s) => s.url === 'nbCapacity').valueInteger = 9;
    const before = await read('loc-pitie-bloc');
    const r = await fhirPatch(fkc, 'Location/loc-pitie-bloc', patchParams({
      name: 'operation',
      part: [{ name: 'type', valueCode: 'add' }, { name: 'path', valueString: 'Location' }, { name: 'value', part: [{ extension: [capacity] }] }],
    }));
    assert.equal(responseOf(r).status, 200);
    const now = await read('loc-pitie-bloc');
    assert.equal(now.extension.length, before.extension.length + 1);
    assert.deepEqual(now.extension.at(-1), capacity);
  });

  test('insert and move reorder a list', async () => {
    const before = await read('loc-rdebre-ped');
    const newId = { value: '11/L9999999' };
    await fhirPatch(fkc, 'Location/loc-rdebre-ped', patchParams(op('insert', 'Location.identifier', { index: 0, value: { valueIdentifier: newId } })));
    let now = await read('loc-rdebre-ped');
    assert.deepEqual(now.identifier, [newId, ...before.identifier]);
    await fhirPatch(fkc, 'Location/loc-rdebre-ped', patchParams(op('move', 'Location.identifier', { source: 0, destination: 2 })));
    now = await read('loc-rdebre-ped');
    assert.deepEqual(now.identifier, [...before.identifier, newId]);
    await fhirPatch(fkc, 'Location/loc-rdebre-ped', patchParams(op('delete', "Location.identifier.where(value='11/L9999999')")));
    now = await read('loc-rdebre-ped');
    assert.deepEqual(now.identifier, before.identifier);
  });
});

describe('conditional patch by identifier (idExterneSynchro)', () => {
  test('one match: patched', async () => {
    const loc = demoById('loc-sainte-anne-psy');
    const ext = loc.identifier.find((i) => i.type.coding[0].code === '26').value;
    const before = await read('loc-sainte-anne-psy');
    const r = await fhirPatch(fkc, `Location?identifier=${encodeURIComponent(ext)}`, patchParams(op('replace', nbPath('02'), { value: { valueInteger: 11 } })));
    assert.equal(responseOf(r).status, 200);
    assert.ok(headersOf(r).get('etag'));
    const now = await read('loc-sainte-anne-psy');
    assert.equal(capacities(now).find((c) => c.capacityStatus === '02').nbCapacity, 11);
    assert.equal(Number(now.meta.versionId), Number(before.meta.versionId) + 1);
  });
  test('no match: 404 not-found', async () => {
    const e = await expectFail(fhirPatch(fkc, `Location?identifier=${encodeURIComponent('9999999999/NOPE')}`, patchParams(op('replace', nbPath('02'), { value: { valueInteger: 1 } }))));
    assert.equal(e.status, 404);
    assert.equal(e.data.resourceType, 'OperationOutcome');
    assert.equal(e.data.issue[0].code, 'not-found');
  });
  test('several matches: 412 multiple-matches, nothing patched', async () => {
    const dupValue = demoById('loc-rdebre-ped').identifier.find((i) => i.type.coding[0].code === '26').value;
    const dup = await fkc.create({ resourceType: 'Location', body: { resourceType: 'Location', name: 'DUP synchro id', identifier: [{ value: dupValue }] } });
    const before = await read('loc-rdebre-ped');
    const e = await expectFail(fhirPatch(fkc, `Location?identifier=${encodeURIComponent(dupValue)}`, patchParams(op('replace', 'Location.name', { value: { valueString: 'X' } }))));
    assert.equal(e.status, 412);
    assert.equal(e.data.issue[0].code, 'multiple-matches');
    assert.deepEqual(await read('loc-rdebre-ped'), before);
    assert.equal((await read(dup.id)).meta.versionId, '1');
    const e2 = await expectFail(fhirPatch(fkc, 'Location?commune-cog=75113', patchParams(op('replace', 'Location.name', { value: { valueString: 'X' } }))));
    assert.equal(e2.status, 412);
  });
});

describe('patch errors', () => {
  const unchanged = async (id, fn) => {
    const before = await read(id);
    await fn();
    assert.deepEqual(await read(id), before, 'resource unchanged');
  };
  test('changing id -> 400', () => unchanged('loc-mondor-rea', async () => {
    const e = await expectFail(fhirPatch(fkc, 'Location/loc-mondor-rea', patchParams(op('replace', 'Location.id', { value: { valueId: 'hijacked' } }))));
    assert.equal(e.status, 400);
    assert.equal(e.data.resourceType, 'OperationOutcome');
    assert.equal((await raw(srv.base, 'Location/hijacked')).status, 404);
    const e2 = await expectFail(fhirPatch(fkc, 'Location/loc-mondor-rea', patchParams(op('delete', 'Location.id'))));
    assert.equal(e2.status, 400);
  }));
  test('stale If-Match -> 412; current If-Match -> 200', () => unchanged('loc-pitie-usic', async () => {
    const cur = await read('loc-pitie-usic');
    const stale = `W/"${Number(cur.meta.versionId) + 5}"`;
    const e = await expectFail(fhirPatch(fkc, 'Location/loc-pitie-usic', patchParams(op('replace', nbPath('02'), { value: { valueInteger: 2 } })), { 'if-match': stale }));
    assert.equal(e.status, 412);
  }).then(async () => {
    const cur = await read('loc-pitie-usic');
    const ok = await fhirPatch(fkc, 'Location/loc-pitie-usic', patchParams(op('replace', nbPath('02'), { value: { valueInteger: 2 } })), { 'if-match': `W/"${cur.meta.versionId}"` });
    assert.equal(responseOf(ok).status, 200);
    assert.equal(capacities(await read('loc-pitie-usic')).find((c) => c.capacityStatus === '02').nbCapacity, 2);
  }));
  test('patch leaving a profile violation (capacity without nbCapacity) -> 422', () => unchanged('loc-mondor-rea', async () => {
    const e = await expectFail(fhirPatch(fkc, 'Location/loc-mondor-rea', patchParams(op('delete', nbPath('02')))));
    assert.equal(e.status, 422);
    assert.equal(e.data.resourceType, 'OperationOutcome');
  }));
  test('JSON Patch content type (fhir-kit-client patch()) -> 415', () => unchanged('loc-mondor-rea', async () => {
    const e = await expectFail(fkc.patch({ resourceType: 'Location', id: 'loc-mondor-rea', jsonPatch: [{ op: 'replace', path: '/name', value: 'JP' }] }));
    assert.equal(e.status, 415);
    // a FHIRPath Patch body under the JSON Patch media type is not silently applied either
    const body = JSON.stringify(patchParams(op('replace', 'Location.name', { value: { valueString: 'JP' } })));
    const r = await raw(srv.base, 'Location/loc-mondor-rea', { method: 'PATCH', headers: { 'content-type': 'application/json-patch+json' }, body });
    assert.equal(r.status, 415, r.text.slice(0, 200));
  }));
  test('malformed Parameters -> 400', () => unchanged('loc-mondor-rea', async () => {
    for (const body of [
      { resourceType: 'Parameters', parameter: [{ name: 'operation', part: [{ name: 'type', valueCode: 'frobnicate' }, { name: 'path', valueString: 'Location.name' }] }] },
      { resourceType: 'Parameters', parameter: [{ name: 'operation', part: [{ name: 'type', valueCode: 'replace' }, { name: 'path', valueString: 'Location.name.where(' }, { name: 'value', valueString: 'x' }] }] },
      { resourceType: 'Parameters', parameter: [{ name: 'operation', part: [{ name: 'type', valueCode: 'replace' }, { name: 'value', valueString: 'x' }] }] },
      { resourceType: 'Location', name: 'not a Parameters' },
    ]) {
      const e = await expectFail(fhirPatch(fkc, 'Location/loc-mondor-rea', body));
      assert.equal(e.status, 400, JSON.stringify(body));
      assert.equal(e.data.resourceType, 'OperationOutcome');
    }
    const r = await raw(srv.base, 'Location/loc-mondor-rea', { method: 'PATCH', headers: FHIR_JSON, body: '{"resourceType":"Parameters",' });
    assert.equal(r.status, 400);
  }));
  test('patch of an unknown or deleted resource -> 404 / 410', async () => {
    const e = await expectFail(fhirPatch(fkc, 'Location/nope', patchParams(op('replace', 'Location.name', { value: { valueString: 'x' } }))));
    assert.equal(e.status, 404);
    const c = await fkc.create({ resourceType: 'Location', body: { resourceType: 'Location', name: 'TO DELETE' } });
    await fkc.delete({ resourceType: 'Location', id: c.id });
    const g = await expectFail(fhirPatch(fkc, `Location/${c.id}`, patchParams(op('replace', 'Location.name', { value: { valueString: 'x' } }))));
    assert.ok([404, 410].includes(g.status), `status ${g.status}`);
  });
});
