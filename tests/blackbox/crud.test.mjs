// 1. CRUD, versioning, history, vread, conditional update conflicts, conditional create.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, client, raw, expectFail, responseOf, headersOf, FHIR_JSON } from './lib/ror.mjs';

let srv, fkc;
before(async () => { srv = await startServer({ seed: true }); fkc = client(srv.base); });
after(async () => { await srv?.stop(); });

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const strip = (r) => { const c = structuredClone(r); delete c.meta; return c; };

test('metadata is an R4 CapabilityStatement listing the ROR resources', async () => {
  const cs = await fkc.capabilityStatement();
  assert.equal(cs.resourceType, 'CapabilityStatement');
  assert.equal(cs.fhirVersion, '4.0.1');
  const types = cs.rest[0].resource.map((r) => r.type);
  for (const t of ['Organization', 'HealthcareService', 'Location', 'Practitioner', 'PractitionerRole', 'Task']) assert.ok(types.includes(t), t);
  assert.ok(cs.patchFormat.includes('application/fhir+json'));
});

test('create assigns a uuid, returns 201 + Location + ETag; read, update, vread and history agree', async () => {
  const body = { resourceType: 'Practitioner', active: true, name: [{ family: 'CRUD', given: ['Alice'] }] };
  const created = await fkc.create({ resourceType: 'Practitioner', body });
  const res = responseOf(created);
  assert.equal(res.status, 201);
  assert.match(created.id, UUID);
  assert.equal(created.meta.versionId, '1');
  assert.ok(!Number.isNaN(Date.parse(created.meta.lastUpdated)));
  assert.equal(res.headers.get('etag'), 'W/"1"');
  assert.ok(res.headers.get('last-modified'));
  assert.match(res.headers.get('location'), new RegExp(`/fhir/Practitioner/${created.id}(/_history/1)?$`));
  assert.deepEqual(strip(created), { ...body, id: created.id });

  const read = await fkc.read({ resourceType: 'Practitioner', id: created.id });
  assert.deepEqual(read, created);
  assert.equal(headersOf(read).get('etag'), 'W/"1"');

  const v2body = { ...body, id: created.id, name: [{ family: 'CRUD', given: ['Alice', 'Marie'] }] };
  const updated = await fkc.update({ resourceType: 'Practitioner', id: created.id, body: v2body });
  assert.equal(responseOf(updated).status, 200);
  assert.equal(updated.meta.versionId, '2');
  assert.equal(headersOf(updated).get('etag'), 'W/"2"');
  assert.deepEqual(strip(updated), v2body);
  assert.ok(Date.parse(updated.meta.lastUpdated) >= Date.parse(created.meta.lastUpdated));

  const v1 = await fkc.vread({ resourceType: 'Practitioner', id: created.id, version: '1' });
  assert.deepEqual(v1, created);
  const v2 = await fkc.vread({ resourceType: 'Practitioner', id: created.id, version: '2' });
  assert.deepEqual(v2, updated);
  const v3 = await expectFail(fkc.vread({ resourceType: 'Practitioner', id: created.id, version: '3' }));
  assert.equal(v3.status, 404);
  assert.equal(v3.data.resourceType, 'OperationOutcome');

  const hist = await fkc.history({ resourceType: 'Practitioner', id: created.id });
  assert.equal(hist.resourceType, 'Bundle');
  assert.equal(hist.type, 'history');
  assert.deepEqual(hist.entry.map((e) => e.resource.meta.versionId), ['2', '1'], 'newest first');
  assert.deepEqual(hist.entry[0].resource, updated);
  assert.deepEqual(hist.entry[1].resource, created);
});

test('update with a client id creates (201) then updates (200); body id must equal URL id', async () => {
  const id = 'bb-client-id-1';
  const body = { resourceType: 'Organization', id, name: 'ORG CLIENT ID' };
  const c = await fkc.update({ resourceType: 'Organization', id, body });
  assert.equal(responseOf(c).status, 201);
  assert.equal(c.id, id);
  assert.equal(c.meta.versionId, '1');
  const u = await fkc.update({ resourceType: 'Organization', id, body: { ...body, name: 'ORG CLIENT ID 2' } });
  assert.equal(responseOf(u).status, 200);
  assert.equal(u.meta.versionId, '2');

  const bad = await expectFail(fkc.update({ resourceType: 'Organization', id, body: { ...body, id: 'other-id', name: 'X' } }));
  assert.equal(bad.status, 400);
  assert.equal(bad.data.resourceType, 'OperationOutcome');
  const noId = await raw(srv.base, 'Organization/other-id');
  assert.equal(noId.status, 404, 'mismatching body id must not create the other id');
  const still = await fkc.read({ resourceType: 'Organization', id });
  assert.equal(still.name, 'ORG CLIENT ID 2');
  assert.equal(still.meta.versionId, '2');
});

test('If-Match: stale version gives 412 and leaves the resource unchanged; current version succeeds', async () => {
  const c = await fkc.create({ resourceType: 'Practitioner', body: { resourceType: 'Practitioner', name: [{ family: 'IFMATCH' }] } });
  const u = await fkc.update({ resourceType: 'Practitioner', id: c.id, body: { resourceType: 'Practitioner', id: c.id, name: [{ family: 'IFMATCH2' }] }, options: { headers: { 'if-match': 'W/"1"' } } });
  assert.equal(u.meta.versionId, '2');

  const before = await fkc.read({ resourceType: 'Practitioner', id: c.id });
  const stale = await expectFail(fkc.update({ resourceType: 'Practitioner', id: c.id, body: { resourceType: 'Practitioner', id: c.id, name: [{ family: 'LOST-UPDATE' }] }, options: { headers: { 'if-match': 'W/"1"' } } }));
  assert.equal(stale.status, 412);
  assert.equal(stale.data.resourceType, 'OperationOutcome');
  const afterRead = await fkc.read({ resourceType: 'Practitioner', id: c.id });
  assert.deepEqual(afterRead, before);
  const hist = await fkc.history({ resourceType: 'Practitioner', id: c.id });
  assert.equal(hist.entry.length, 2);

  const future = await expectFail(fkc.update({ resourceType: 'Practitioner', id: c.id, body: { resourceType: 'Practitioner', id: c.id, name: [{ family: 'FUTURE' }] }, options: { headers: { 'if-match': 'W/"7"' } } }));
  assert.equal(future.status, 412);

  const ok = await fkc.update({ resourceType: 'Practitioner', id: c.id, body: { resourceType: 'Practitioner', id: c.id, name: [{ family: 'IFMATCH3' }] }, options: { headers: { 'if-match': 'W/"2"' } } });
  assert.equal(ok.meta.versionId, '3');
  assert.equal(headersOf(ok).get('etag'), 'W/"3"');
});

test('update whose body carries a stale meta.versionId is a conflict (409), resource unchanged', async () => {
  const c = await fkc.create({ resourceType: 'Practitioner', body: { resourceType: 'Practitioner', name: [{ family: 'STALEMETA' }] } });
  const v1 = structuredClone(c);
  await fkc.update({ resourceType: 'Practitioner', id: c.id, body: { ...c, name: [{ family: 'STALEMETA2' }] } });
  const before = await fkc.read({ resourceType: 'Practitioner', id: c.id });
  const e = await expectFail(fkc.update({ resourceType: 'Practitioner', id: c.id, body: { ...v1, name: [{ family: 'LOST' }] } }));
  assert.equal(e.status, 409);
  assert.equal(e.data.resourceType, 'OperationOutcome');
  assert.deepEqual(await fkc.read({ resourceType: 'Practitioner', id: c.id }), before);
});

test('delete is soft: 200 + OperationOutcome, then 410 on read, history and vread kept', async () => {
  const c = await fkc.create({ resourceType: 'Practitioner', body: { resourceType: 'Practitioner', name: [{ family: 'TODELETE' }] } });
  const d = await fkc.delete({ resourceType: 'Practitioner', id: c.id });
  assert.equal(responseOf(d).status, 200);
  assert.equal(d.resourceType, 'OperationOutcome');
  const gone = await expectFail(fkc.read({ resourceType: 'Practitioner', id: c.id }));
  assert.equal(gone.status, 410);
  assert.equal(gone.data.resourceType, 'OperationOutcome');
  const v1 = await fkc.vread({ resourceType: 'Practitioner', id: c.id, version: '1' });
  assert.deepEqual(v1, c);
  const hist = await fkc.history({ resourceType: 'Practitioner', id: c.id });
  assert.equal(hist.entry.length, 2);
  assert.equal(hist.entry[0].request.method, 'DELETE');
  assert.equal(hist.entry[0].resource, undefined);
  assert.deepEqual(hist.entry[1].resource, c);
  const s = await fkc.search({ resourceType: 'Practitioner', searchParams: { _id: c.id } });
  assert.equal(s.total, 0);
  assert.deepEqual(s.entry ?? [], []);
});

test('unknown ids and types: 404 OperationOutcome on read and history', async () => {
  const r = await expectFail(fkc.read({ resourceType: 'Location', id: 'does-not-exist' }));
  assert.equal(r.status, 404);
  assert.equal(r.data.resourceType, 'OperationOutcome');
  const h = await raw(srv.base, 'Location/does-not-exist/_history');
  assert.equal(h.status, 404);
  const t = await raw(srv.base, 'NotAType/x');
  assert.equal(t.status, 404);
  assert.equal(t.json?.resourceType, 'OperationOutcome');
});

test('conditional create (If-None-Exist): 0 match creates, 1 match returns it (200), several give 412', async () => {
  const ident = { system: 'urn:oid:1.2.250.1.71.4.2.1', value: 'BB-COND-1' };
  const body = { resourceType: 'Practitioner', identifier: [ident], name: [{ family: 'CONDITIONAL' }] };
  const cond = { headers: { 'if-none-exist': `identifier=${ident.system}|${ident.value}` } };
  const first = await fkc.create({ resourceType: 'Practitioner', body, options: cond });
  assert.equal(responseOf(first).status, 201);
  const second = await fkc.create({ resourceType: 'Practitioner', body: { ...body, name: [{ family: 'OTHER' }] }, options: cond });
  assert.equal(responseOf(second).status, 200);
  assert.equal(second.id, first.id);
  assert.equal(second.meta.versionId, '1');
  const s = await fkc.search({ resourceType: 'Practitioner', searchParams: { identifier: `${ident.system}|${ident.value}` } });
  assert.equal(s.total, 1);
  assert.equal((await fkc.read({ resourceType: 'Practitioner', id: first.id })).name[0].family, 'CONDITIONAL');

  const dupIdent = { system: 'urn:oid:1.2.250.1.71.4.2.1', value: 'BB-COND-DUP' };
  await fkc.create({ resourceType: 'Practitioner', body: { resourceType: 'Practitioner', identifier: [dupIdent] } });
  await fkc.create({ resourceType: 'Practitioner', body: { resourceType: 'Practitioner', identifier: [dupIdent] } });
  const before = (await raw(srv.base, 'Practitioner?_summary=count')).json.total;
  const multi = await expectFail(fkc.create({ resourceType: 'Practitioner', body: { resourceType: 'Practitioner', identifier: [dupIdent] }, options: { headers: { 'if-none-exist': `identifier=${dupIdent.system}|${dupIdent.value}` } } }));
  assert.equal(multi.status, 412);
  assert.equal(multi.data.resourceType, 'OperationOutcome');
  assert.equal((await raw(srv.base, 'Practitioner?_summary=count')).json.total, before);
});

test('wrong method gives 405 with an Allow header', async () => {
  const r = await raw(srv.base, 'Practitioner', { method: 'DELETE' });
  assert.equal(r.status, 405);
  assert.ok(r.headers.get('allow'), 'Allow header');
  assert.equal(r.json?.resourceType, 'OperationOutcome');
  const r2 = await raw(srv.base, 'metadata', { method: 'PUT', headers: FHIR_JSON, body: '{}' });
  assert.equal(r2.status, 405);
  assert.ok(r2.headers.get('allow'));
});
