// 4. The guide's example resources are accepted (PUT with their id) and round-trip exactly,
// numbers and decimals included (compared on their JSON text, not on parsed doubles).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, client, raw, examples, parseLossless, FHIR_JSON, responseOf } from './lib/ror.mjs';

let srv, fkc;
before(async () => { srv = await startServer(); fkc = client(srv.base); });
after(async () => { await srv?.stop(); });

function withoutVersionMeta(doc) {
  const d = structuredClone(doc);
  if (d.meta) {
    delete d.meta.versionId;
    delete d.meta.lastUpdated;
    if (Object.keys(d.meta).length === 0) delete d.meta;
  }
  return d;
}

const exs = examples();
test('the guide ships example resources', () => {
  assert.ok(exs.length >= 2, `examples found in ${exs.length ? 'dir' : 'nothing'}`);
});

for (const { file, text } of exs) {
  test(`${file}: PUT with its id is accepted and reads back identical`, async () => {
    const orig = JSON.parse(text);
    const put = await fkc.update({ resourceType: orig.resourceType, id: orig.id, body: orig });
    assert.equal(responseOf(put).status, 201);
    assert.equal(put.id, orig.id);
    assert.equal(put.meta.versionId, '1');

    const r = await raw(srv.base, `${orig.resourceType}/${orig.id}`);
    assert.equal(r.status, 200);
    assert.deepEqual(withoutVersionMeta(parseLossless(r.text)), withoutVersionMeta(parseLossless(text)));
    const v = await raw(srv.base, `${orig.resourceType}/${orig.id}/_history/1`);
    assert.deepEqual(parseLossless(v.text), parseLossless(r.text));
  });
}

test('examples are indexed: searchable by their identifier / commune', async () => {
  const hs = await fkc.search({ resourceType: 'HealthcareService', searchParams: { identifier: '06/0099999' } });
  assert.deepEqual(hs.entry.map((e) => e.resource.id), ['1234564']);
  const loc = await fkc.search({ resourceType: 'Location', searchParams: { 'commune-cog': '78646' } });
  assert.deepEqual(loc.entry.map((e) => e.resource.id), ['ror-location-exemple']);
});

test('decimals keep their exact text (trailing zeros, precision, exponents, big integers)', async () => {
  const ex = exs.find((e) => e.file.startsWith('Location'));
  assert.ok(ex, 'Location example');
  const orig = JSON.parse(ex.text);
  // Build the body as text so that the decimals travel exactly as written.
  const id = 'bb-decimals';
  const body = JSON.stringify({ ...orig, id, position: { longitude: 0, latitude: 0 } })
    .replace('"position":{"longitude":0,"latitude":0}',
      '"position":{"longitude":2.1200,"latitude":48.804500,"altitude":-0.0}')
    .replace(/^\{/, '{"extension_placeholder":0,');
  const withExt = body.replace('"extension_placeholder":0,', '')
    .replace('"extension":[', '"extension":[{"url":"http://example.org/fhir/StructureDefinition/bb-decimal","valueDecimal":1.50},'
      + '{"url":"http://example.org/fhir/StructureDefinition/bb-decimal2","valueDecimal":0.1},'
      + '{"url":"http://example.org/fhir/StructureDefinition/bb-decimal3","valueDecimal":12345678901234567890.000001},'
      + '{"url":"http://example.org/fhir/StructureDefinition/bb-int","valueInteger":2147483647},');
  assert.ok(withExt.includes('1.50'));
  const put = await raw(srv.base, `Location/${id}`, { method: 'PUT', headers: FHIR_JSON, body: withExt });
  assert.equal(put.status, 201, put.text);
  const r = await raw(srv.base, `Location/${id}`);
  for (const lit of ['2.1200', '48.804500', '-0.0', '1.50', '0.1', '12345678901234567890.000001', '2147483647']) {
    assert.ok(r.text.includes(lit), `read text keeps ${lit}`);
  }
  assert.deepEqual(withoutVersionMeta(parseLossless(r.text)), withoutVersionMeta(parseLossless(withExt)));
  const s = await raw(srv.base, `Location?_id=${id}`);
  assert.ok(s.text.includes('"latitude":48.804500') || s.text.includes('"latitude": 48.804500'), 'search bundle keeps decimals too');
});
