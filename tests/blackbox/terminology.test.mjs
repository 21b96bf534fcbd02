// 8. Terminology: NOS CodeSystems/ValueSets written through the API, $lookup, $validate-code,
// codes of bound elements checked on create/update/patch, communes completion.
// Expected values are read from the NOS files of shared/spec/nos.
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { startServer, raw, fhirPatch, client, expectFail, op, patchParams, SHARED_DIR, SC_URL, FHIR_JSON } from './lib/ror.mjs';

const NOS_DIR = join(SHARED_DIR, 'spec/nos');
const nos = (file) => JSON.parse(readFileSync(join(NOS_DIR, file), 'utf8'));
const FILES = {
  R227: 'TRE/TRE_R227_ChampActivite.json',
  J20: 'JDV/JDV_J20-ChampActivite-ROR-FHIR.json',
  R30: 'TRE/TRE_R30_RegionOM.json',
  J237: 'JDV/JDV_J237_RegionOM_ROR.json',
  R330: 'TRE/TRE_R330_TypeStatutCapacite.json',
};
const R227 = nos(FILES.R227);
const J20 = nos(FILES.J20);
const J237 = nos(FILES.J237);
const R330 = nos(FILES.R330);
const J237_GUIDE_URL = 'https://mos.esante.gouv.fr/NOS/JDV_J237-RegionOM-ROR/FHIR/JDV-J237-RegionOM-ROR';
const j20Codes = J20.compose.include[0].concept;
const notInJ20 = R227.concept.map((c) => c.code).find((c) => !j20Codes.some((x) => x.code === c)) ?? 'ZZ';

let srv, fkc, restartDir;
before(async () => { srv = await startServer(); fkc = client(srv.base); });
after(async () => {
  await srv?.stop();
  if (restartDir) rmSync(restartDir, { recursive: true, force: true });
});

const q = (o) => new URLSearchParams(o).toString();
const param = (p, name) => p.parameter.filter((x) => x.name === name);
const hs = (id, code, system = R227.url) => ({
  resourceType: 'HealthcareService', id, name: `HS ${id}`, type: [{ coding: [{ system, code }] }],
});
const put = (res) => raw(srv.base, `${res.resourceType}/${res.id}`, { method: 'PUT', headers: FHIR_JSON, body: JSON.stringify(res) });
const count = async (type) => (await raw(srv.base, `${type}?_summary=count`)).json.total;

describe('terminology over HTTP', () => {
  test('without NOS loaded nothing is judged: an unknown code is stored', async () => {
    const r = await put(hs('hs-before-nos', '99'));
    assert.equal(r.status, 201);
    const u = await raw(srv.base, `CodeSystem/$lookup?${q({ system: R227.url, code: '01' })}`);
    assert.equal(u.status, 404);
    assert.equal(u.json.resourceType, 'OperationOutcome');
  });

  test('NOS files are written as ordinary CodeSystem / ValueSet resources', async () => {
    for (const f of Object.values(FILES)) {
      const res = nos(f);
      const r = await put(res);
      assert.equal(r.status, 201, `${f}: ${r.text.slice(0, 300)}`);
    }
  });

  test('$lookup (GET and POST) answers name, version, display, designations and properties', async () => {
    const c = R227.concept[0];
    const g = await raw(srv.base, `CodeSystem/$lookup?${q({ system: R227.url, code: c.code })}`);
    assert.equal(g.status, 200);
    assert.equal(g.json.resourceType, 'Parameters');
    assert.equal(param(g.json, 'name')[0].valueString, R227.name);
    assert.equal(param(g.json, 'version')[0].valueString, R227.version);
    assert.equal(param(g.json, 'display')[0].valueString, c.display);
    assert.deepEqual(param(g.json, 'designation').map((d) => d.part.find((p) => p.name === 'value').valueString),
      (c.designation || []).map((d) => d.value));
    assert.deepEqual(param(g.json, 'property').map((p) => p.part.find((x) => x.name === 'code').valueCode),
      (c.property || []).map((p) => p.code));

    const last = R227.concept[R227.concept.length - 1];
    const body = { resourceType: 'Parameters', parameter: [{ name: 'system', valueUri: R227.url }, { name: 'code', valueCode: last.code }] };
    const p = await raw(srv.base, 'CodeSystem/$lookup', { method: 'POST', headers: FHIR_JSON, body: JSON.stringify(body) });
    assert.equal(p.status, 200);
    assert.equal(param(p.json, 'display')[0].valueString, last.display);

    const unknown = await raw(srv.base, `CodeSystem/$lookup?${q({ system: 'http://example.org/cs', code: '1' })}`);
    assert.equal(unknown.status, 404);
    assert.equal(unknown.json.issue[0].code, 'not-found');
    const badCode = await raw(srv.base, `CodeSystem/$lookup?${q({ system: R227.url, code: 'nope' })}`);
    assert.equal(badCode.status, 404);
    const missing = await raw(srv.base, `CodeSystem/$lookup?${q({ system: R227.url })}`);
    assert.equal(missing.status, 400);
    assert.equal(missing.json.resourceType, 'OperationOutcome');
  });

  test('ValueSet/$validate-code: valid, invalid, unknown value set, missing parameters', async () => {
    const ok = await raw(srv.base, `ValueSet/$validate-code?${q({ url: J20.url, system: R227.url, code: j20Codes[0].code })}`);
    assert.equal(ok.status, 200);
    assert.equal(param(ok.json, 'result')[0].valueBoolean, true);
    assert.equal(param(ok.json, 'display')[0].valueString, j20Codes[0].display);

    const bad = await raw(srv.base, `ValueSet/$validate-code?${q({ url: J20.url, system: R227.url, code: notInJ20 })}`);
    assert.equal(bad.status, 200);
    assert.equal(param(bad.json, 'result')[0].valueBoolean, false);
    assert.match(param(bad.json, 'message')[0].valueString, new RegExp(notInJ20));

    const wrongDisplay = await raw(srv.base, `ValueSet/$validate-code?${q({ url: J20.url, system: R227.url, code: j20Codes[0].code, display: 'Autre chose' })}`);
    assert.equal(param(wrongDisplay.json, 'result')[0].valueBoolean, false);

    const coding = { resourceType: 'Parameters', parameter: [{ name: 'url', valueUri: J20.url }, { name: 'coding', valueCoding: { system: R227.url, code: j20Codes[1].code } }] };
    const post = await raw(srv.base, 'ValueSet/$validate-code', { method: 'POST', headers: FHIR_JSON, body: JSON.stringify(coding) });
    assert.equal(post.status, 200);
    assert.equal(param(post.json, 'result')[0].valueBoolean, true);

    const unknown = await raw(srv.base, `ValueSet/$validate-code?${q({ url: 'http://example.org/vs', code: '01' })}`);
    assert.equal(unknown.status, 404);
    assert.equal(unknown.json.resourceType, 'OperationOutcome');
    const missing = await raw(srv.base, `ValueSet/$validate-code?${q({ code: '01' })}`);
    assert.equal(missing.status, 400);
    assert.equal(missing.json.resourceType, 'OperationOutcome');

    // J237 is published under a ".tabs" url; the guide's url answers too
    assert.match(J237.url, /\.tabs\//);
    const region = J237.compose.include[0].concept[0].code;
    const viaGuide = await raw(srv.base, `ValueSet/$validate-code?${q({ url: J237_GUIDE_URL, system: J237.compose.include[0].system, code: region })}`);
    assert.equal(param(viaGuide.json, 'result')[0].valueBoolean, true);
  });

  test('CodeSystem/$validate-code', async () => {
    const ok = await raw(srv.base, `CodeSystem/$validate-code?${q({ url: R227.url, code: R227.concept[1].code })}`);
    assert.equal(param(ok.json, 'result')[0].valueBoolean, true);
    assert.equal(param(ok.json, 'display')[0].valueString, R227.concept[1].display);
    const bad = await raw(srv.base, `CodeSystem/$validate-code?${q({ url: R227.url, code: 'ZZZ' })}`);
    assert.equal(param(bad.json, 'result')[0].valueBoolean, false);
    const unknown = await raw(srv.base, `CodeSystem/$validate-code?${q({ url: 'http://example.org/cs', code: 'x' })}`);
    assert.equal(unknown.status, 404);
  });

  test('a write with a code outside the bound value set is refused (400), store unchanged; a good code passes', async () => {
    const n0 = await count('HealthcareService');
    const created = await raw(srv.base, 'HealthcareService', { method: 'POST', headers: FHIR_JSON, body: JSON.stringify(hs(undefined, notInJ20)) });
    assert.equal(created.status, 400);
    assert.equal(created.json.resourceType, 'OperationOutcome');
    assert.equal(created.json.issue[0].code, 'business-rule');
    assert.deepEqual(created.json.issue[0].expression, ['HealthcareService.type']);
    assert.match(created.json.issue[0].diagnostics, new RegExp(`« ${notInJ20} »`));
    assert.equal(await count('HealthcareService'), n0);

    const good = await put(hs('hs-good', j20Codes[0].code));
    assert.equal(good.status, 201);
    const before = await raw(srv.base, 'HealthcareService/hs-good');
    const upd = await put(hs('hs-good', notInJ20));
    assert.equal(upd.status, 400);
    const afterUpd = await raw(srv.base, 'HealthcareService/hs-good');
    assert.equal(afterUpd.text, before.text, 'refused update leaves the resource as it was');
    const hist = await raw(srv.base, 'HealthcareService/hs-good/_history');
    assert.equal(hist.json.total, 1);

    // patch: the patched resource is checked too
    const patched = await raw(srv.base, 'HealthcareService/hs-good', {
      method: 'PATCH', headers: FHIR_JSON,
      body: JSON.stringify(patchParams(op('replace', 'HealthcareService.type.coding.code', { value: { valueCode: notInJ20 } }))),
    });
    assert.equal(patched.status, 400);
    assert.equal((await raw(srv.base, 'HealthcareService/hs-good')).text, before.text);

    // a coding of another system is not judged by J20
    const other = await put(hs('hs-other-system', 'anything', 'http://example.org/local'));
    assert.equal(other.status, 201);
    // meta.tag codeRegion is judged against J237
    const tagged = { ...hs('hs-tagged', j20Codes[0].code), meta: { tag: [{ system: J237.compose.include[0].system, code: 'ZZ' }] } };
    const t = await put(tagged);
    assert.equal(t.status, 400);
    assert.deepEqual(t.json.issue[0].expression, ['HealthcareService.meta.tag']);
  });

  test('capacity dimensions are judged by their TRE while their JDV is absent', async () => {
    const status = (code) => ({
      url: SC_URL,
      extension: [
        { url: 'capacityType', valueCodeableConcept: { coding: [{ system: 'https://mos.esante.gouv.fr/NOS/TRE_R329-NatureCapacite/FHIR/TRE-R329-NatureCapacite', code: '01' }] } },
        { url: 'capacityStatus', valueCodeableConcept: { coding: [{ system: R330.url, code }] } },
        { url: 'temporalityCapacity', valueCodeableConcept: { coding: [{ system: 'https://mos.esante.gouv.fr/NOS/TRE_R331-TemporaliteCapacite/FHIR/TRE-R331-TemporaliteCapacite', code: '01' }] } },
        { url: 'nbCapacity', valueInteger: 3 },
        { url: 'capacityUpdateDate', valueDateTime: '2026-01-01T10:00:00+01:00' },
      ],
    });
    const loc = { resourceType: 'Location', id: 'loc-term', name: 'Lieu', extension: [status(R330.concept[0].code)] };
    assert.equal((await put(loc)).status, 201);
    const before = await raw(srv.base, 'Location/loc-term');
    const bad = await put({ ...loc, extension: [status('42')] });
    assert.equal(bad.status, 400);
    assert.match(bad.json.issue[0].expression[0], /capacityStatus/);
    assert.equal((await raw(srv.base, 'Location/loc-term')).text, before.text);
  });

  test('a changed ValueSet applies to the very next write', async () => {
    const dropped = j20Codes[j20Codes.length - 1].code;
    const narrowed = structuredClone(J20);
    narrowed.compose.include[0].concept = j20Codes.filter((c) => c.code !== dropped);
    delete narrowed.meta;
    assert.equal((await put(narrowed)).status, 200);
    const r = await put(hs('hs-after-change', dropped));
    assert.equal(r.status, 400);
    const v = await raw(srv.base, `ValueSet/$validate-code?${q({ url: J20.url, system: R227.url, code: dropped })}`);
    assert.equal(param(v.json, 'result')[0].valueBoolean, false);
    // deleting the value set stops the check
    const del = await raw(srv.base, `ValueSet/${J20.id}`, { method: 'DELETE' });
    assert.equal(del.status, 200);
    assert.equal((await put(hs('hs-after-delete', dropped))).status, 201);
    const gone = await raw(srv.base, `ValueSet/$validate-code?${q({ url: J20.url, code: dropped })}`);
    assert.equal(gone.status, 404);
  });

  test('the CapabilityStatement advertises the operations', async () => {
    const cs = await fkc.capabilityStatement();
    const ops = (type) => (cs.rest[0].resource.find((r) => r.type === type).operation || []).map((o) => o.name);
    assert.deepEqual(ops('CodeSystem').sort(), ['lookup', 'validate-code']);
    assert.deepEqual(ops('ValueSet'), ['validate-code']);
  });

  test('/communes: JSON array (empty without the communes table), q required', async () => {
    const url = srv.base.replace(/\/fhir$/, '');
    const r = await raw(url, 'communes?q=vers&limit=5');
    assert.equal(r.status, 200);
    assert.match(r.headers.get('content-type'), /application\/json/);
    assert.deepEqual(r.json, []);
    const e = await raw(url, 'communes');
    assert.equal(e.status, 400);
    const l = await raw(url, 'communes?q=a&limit=0');
    assert.equal(l.status, 400);
  });
});

test('terminology survives a restart: loaded from the store at start', async () => {
  restartDir = srv.dataDir;
  await srv.stop({ removeDir: false });
  srv = await startServer({ dataDir: restartDir });
  const r = await raw(srv.base, `CodeSystem/$lookup?${q({ system: R227.url, code: R227.concept[0].code })}`);
  assert.equal(r.status, 200);
  assert.equal(param(r.json, 'display')[0].valueString, R227.concept[0].display);
  const bad = await put(hs('hs-after-restart', 'ZZ', J237.compose.include[0].system));
  // R30 code ZZ in HealthcareService.type: J20 does not judge R30; meta.tag is not set: stored
  assert.equal(bad.status, 201);
  const tagged = await put({ ...hs('hs-after-restart-2', R227.concept[0].code), meta: { tag: [{ system: J237.compose.include[0].system, code: 'ZZ' }] } });
  assert.equal(tagged.status, 400);
});
