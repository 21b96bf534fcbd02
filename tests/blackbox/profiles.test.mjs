// Access profiles 0-5 on the same data: what each reader sees of sensitive units, capacities,
// contacts, and how the guide's Ror-Profil-Utilisateur headers select a profile.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, raw, accountKey, freshDir, FHIR_JSON, SC_URL } from './lib/ror.mjs';

const ROR = 'https://interop.esante.gouv.fr/ig/fhir/ror/StructureDefinition/';
const R283 = 'https://mos.esante.gouv.fr/NOS/TRE_R283-NiveauConfidentialite/FHIR/TRE-R283-NiveauConfidentialite';
const R200 = 'https://mos.esante.gouv.fr/NOS/TRE_R200-CanalCommunication/FHIR/TRE-R200-CanalCommunication';
const R287 = 'https://mos.esante.gouv.fr/NOS/TRE_R287-NatureContact/FHIR/TRE-R287-NatureContact';
const level = (url, code) => ({ url, valueCodeableConcept: { coding: [{ system: R283, code }] } });

let srv, origin;
const keys = {};
// who reads with which profile (the profile each grant gives; anonymous is 0)
const READERS = { p1: null, p4: ['reader'], p2: ['system:2'], p3: ['system:3'], p5: ['system:5'],
  // establishment staff (profile 2): Sainte-Anne's and Pitié's bed declarers
  saDecl: ['bed-declarer:Organization/eg-sainte-anne'], pitieDecl: ['bed-declarer:750999039'] };

function telecom(code) {
  return { system: 'phone', value: `01000000${code}${code}`, extension: [
    { url: `${ROR}ror-telecom-communication-channel`, valueCodeableConcept: { coding: [{ system: R200, code: '2' }] } },
    level(`${ROR}ror-telecom-confidentiality-level`, code)] };
}
function contact(code) {
  return { url: `${ROR}ror-healthcareservice-contact`, extension: [
    { url: 'purposeContact', valueCodeableConcept: { coding: [{ system: R287, code: '06' }] } },
    level(`${ROR}ror-confidentiality-level`, code),
    { url: `${ROR}ror-healthcareservice-contact-telecom`, extension: [
      { url: `${ROR}ror-telecom-communication-channel`, valueCodeableConcept: { coding: [{ system: R200, code: '2' }] } },
      level(`${ROR}ror-telecom-confidentiality-level`, code),
      { url: 'telecomAddress', valueString: `02000000${code}${code}` }] }] };
}
const statusOf = (x) => x.extension.find((s) => s.url === 'capacityStatus').valueCodeableConcept.coding[0].code;

before(async () => {
  const dir = freshDir();
  for (const [k, roles] of Object.entries(READERS)) if (roles) keys[k] = accountKey(dir, k, roles);
  srv = await startServer({ seed: true, dataDir: dir });
  keys.p1 = srv.adminKey;
  origin = new URL(srv.base).origin;
  // contacts of the three levels on an offer and a unit, and extra beds (a crisis is open)
  const hs = (await raw(srv.base, 'HealthcareService/hs-pitie-rea')).json;
  delete hs.meta;
  hs.extension = hs.extension.filter((x) => x.url !== `${ROR}ror-healthcareservice-contact`).concat(['1', '2', '3'].map(contact));
  assert.equal((await raw(srv.base, 'HealthcareService/hs-pitie-rea', { method: 'PUT', headers: FHIR_JSON, body: JSON.stringify(hs) })).status, 200);
  const crisis = await raw(origin, '/capacity/crisis', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ type: '02', territory: ['75'] }) });
  assert.equal(crisis.status, 201, crisis.text);
  const loc = (await raw(srv.base, 'Location/loc-pitie-rea')).json;
  delete loc.meta;
  loc.telecom = ['1', '2', '3'].map(telecom);
  const avail = loc.extension.find((x) => x.url === SC_URL && statusOf(x) === '02');
  const extra = structuredClone(avail);
  extra.extension.find((s) => s.url === 'capacityStatus').valueCodeableConcept.coding[0].code = '06';
  extra.extension.find((s) => s.url === 'nbCapacity').valueInteger = 4;
  loc.extension.push(extra);
  const put = await raw(srv.base, 'Location/loc-pitie-rea', { method: 'PUT', headers: FHIR_JSON, body: JSON.stringify(loc) });
  assert.equal(put.status, 200, put.text);
});
after(async () => { await srv?.stop({ removeDir: true }); });

function read(p, path, headers = {}) {
  if (p === 'p0') return raw(srv.base, path, { anonymous: true, headers });
  return raw(srv.base, path, { headers: { authorization: `Bearer ${keys[p]}`, ...headers } });
}
const PROFILES = ['p0', 'p1', 'p2', 'p3', 'p4', 'p5'];

test('a sensitive unit and its place: seen by profiles 1 and 4 only, as if absent for the others', async () => {
  for (const p of PROFILES) {
    const sees = p === 'p1' || p === 'p4';
    const hs = await read(p, 'HealthcareService/hs-sainte-anne-usip');
    assert.equal(hs.status, sees ? 200 : 404, `${p} HS`);
    const loc = await read(p, 'Location/loc-sainte-anne-psy');
    assert.equal(loc.status, sees ? 200 : 404, `${p} Location`);
    const hist = await read(p, 'HealthcareService/hs-sainte-anne-usip/_history');
    assert.equal(hist.status, sees ? 200 : 404, `${p} history`);
    const search = await read(p, 'HealthcareService?_count=100');
    assert.equal(search.status, 200);
    const ids = (search.json.entry || []).map((e) => e.resource.id);
    assert.equal(ids.includes('hs-sainte-anne-usip'), sees, `${p} search`);
    // a count would tell what is hidden: only given to the profiles that see everything
    assert.equal('total' in search.json, sees, `${p} total`);
    // _include cannot bring it back either
    const inc = await read(p, 'PractitionerRole?_include=PractitionerRole:service&_count=100');
    assert.ok(!(inc.json.entry || []).some((e) => e.resource.id === 'hs-sainte-anne-usip'), `${p} include`);
  }
  // profile 3 sees médico-social offers only (the demo region has none)
  assert.deepEqual((await read('p3', 'HealthcareService?_count=100')).json.entry || [], []);
});

test('capacities by profile: all for 1 and 4, no extra beds for 2, installed beds only for 5, none for 0', async () => {
  const want = { p0: [], p1: ['01', '02', '06'], p2: ['01', '02'], p3: [], p4: ['01', '02', '06'], p5: ['01'] };
  for (const p of PROFILES) {
    const r = await read(p, 'Location/loc-pitie-rea');
    assert.equal(r.status, 200, p);
    const got = (r.json.extension || []).filter((x) => x.url === SC_URL).map(statusOf).sort();
    assert.deepEqual(got, want[p], p);
    // the rest of the unit is there for everyone
    assert.equal(r.json.name, (await read('p1', 'Location/loc-pitie-rea')).json.name);
  }
});

test('contacts by confidentiality level: 1 all, 2 and 5 not "très restreint", 4 and 0 public only', async () => {
  const levels = (arr, url) => arr.map((t) => t.extension.find((x) => x.url === url).valueCodeableConcept.coding[0].code).sort();
  const wantLoc = { p0: ['1'], p1: ['1', '2', '3'], p2: ['1', '2'], p3: ['1'], p4: ['1'], p5: ['1', '2'] };
  for (const p of PROFILES) {
    const loc = (await read(p, 'Location/loc-pitie-rea')).json;
    assert.deepEqual(levels(loc.telecom || [], `${ROR}ror-telecom-confidentiality-level`), wantLoc[p], `${p} Location.telecom`);
    const hs = await read(p, 'HealthcareService/hs-pitie-rea');
    if (p === 'p3') { assert.equal(hs.status, 404); continue; } // not médico-social
    const contacts = hs.json.extension.filter((x) => x.url === `${ROR}ror-healthcareservice-contact`);
    assert.deepEqual(levels(contacts, `${ROR}ror-confidentiality-level`), wantLoc[p], `${p} contacts`);
  }
});

test('Ror-Profil-Utilisateur headers select a profile the account holds; others are refused', async () => {
  const sel = (code, system = 'urn:ror:profil-acces') => ({ 'Ror-Profil-Utilisateur-Code': code, 'Ror-Profil-Utilisateur-System': system, 'Ror-Role-Metier-Code': 'AUTOMATE', 'Ror-Role-Metier-System': '1.2.250.1.213.1.1.4.6' });
  // the ARS may read as any profile: as profile 2 it sees what profile 2 sees
  const as2 = await read('p1', 'Location/loc-pitie-rea', sel('2'));
  assert.deepEqual((as2.json.extension || []).filter((x) => x.url === SC_URL).map(statusOf).sort(), ['01', '02']);
  assert.equal((await read('p1', 'HealthcareService/hs-sainte-anne-usip', sel('5'))).status, 404);
  // a reader (profile 4) may not claim profile 1
  const claim = await read('p4', 'Location/loc-pitie-rea', sel('1'));
  assert.equal(claim.status, 403);
  assert.match(claim.json.issue[0].diagnostics, /profil/);
  // unknown codes, half the pair
  assert.equal((await read('p4', 'Location/loc-pitie-rea', sel('CU99', '1.2.250.1.213.1.6.1.66'))).status, 403);
  assert.equal((await read('p4', 'Location/loc-pitie-rea', { 'Ror-Profil-Utilisateur-Code': '4' })).status, 400);
  // anyone may read as the public
  const pub = await read('p4', 'Location/loc-pitie-rea', sel('0'));
  assert.deepEqual((pub.json.extension || []).filter((x) => x.url === SC_URL), []);
});

test('reads of sensitive units are in the audit trail, with the caller\'s métier role', async () => {
  const r = await read('p4', 'HealthcareService/hs-sainte-anne-usip', { 'Ror-Role-Metier-Code': 'REGUL', 'Ror-Role-Metier-System': '1.2.250.1.213.1.1.4.6' });
  assert.equal(r.status, 200);
  const audit = await raw(origin, '/audit?actor=p4&action=read&type=HealthcareService&id=hs-sainte-anne-usip');
  assert.equal(audit.status, 200);
  assert.ok(audit.json.entry.length >= 1);
  assert.match(audit.json.entry[0].resource.outcomeDesc, /unité sensible.*REGUL/);
});

test('orientation and capacity views by profile', async () => {
  const q = '/orientation?q=sainte&lat=48.8283&lon=2.3366&radius=50';
  const pub = await read('p0', `..${q}`);
  assert.equal(pub.status, 200, pub.text);
  assert.ok(pub.json.results.every((x) => x.sensitive === false), 'no sensitive unit for the public');
  assert.ok(pub.json.results.every((x) => x.beds.available === null), 'no beds for the public');
  const reg = await read('p4', `..${q}`);
  assert.ok(reg.json.results.some((x) => x.sensitive === true), 'regulation sees sensitive units');
  assert.equal((await read('p0', `..${q}&beds=true`)).status, 403);
  // the capacity views: not for the public nor for plain system clients
  assert.equal((await read('p0', '../capacity/aggregate?level=region')).status, 401);
  assert.equal((await read('p2', '../capacity/aggregate?level=region')).status, 403);
  assert.equal((await read('p4', '../capacity/aggregate?level=region')).status, 200);
  // subscriptions carry endpoints and headers: ARS and system clients only
  assert.equal((await read('p0', 'Subscription')).status, 401);
  assert.equal((await read('p4', 'Subscription')).status, 403);
});

test('the ARS\'s reads of sensitive units are logged too, whatever the stored text\'s layout', async () => {
  const count = async (id) => (await raw(origin, `/audit?actor=admin-tests&action=read&type=HealthcareService&id=${id}&_count=1000`)).json.entry?.length || 0;
  const before = await count('hs-sainte-anne-usip');
  assert.equal((await read('p1', 'HealthcareService/hs-sainte-anne-usip')).status, 200);
  assert.equal(await count('hs-sainte-anne-usip'), before + 1);
  const plain = await count('hs-pitie-usic');
  assert.equal((await read('p1', 'HealthcareService/hs-pitie-usic')).status, 200);
  assert.equal(await count('hs-pitie-usic'), plain, 'a unit that is not sensitive is not logged');
  // the client's text is kept as sent: pretty-printed, the flag's members in the other order
  const hs = (await read('p1', 'HealthcareService/hs-pitie-usic')).json;
  delete hs.meta;
  hs.extension = hs.extension.map((x) => (x.url.endsWith('ror-healthcareservice-sensitive-unit') ? { valueBoolean: true, url: x.url } : x));
  // (return=minimal: the answer to the write would itself be a read of the unit)
  const put = await raw(srv.base, 'HealthcareService/hs-pitie-usic', { method: 'PUT', headers: { ...FHIR_JSON, prefer: 'return=minimal' }, body: JSON.stringify(hs, null, 3) });
  assert.equal(put.status, 200, put.text);
  assert.equal((await read('p1', 'HealthcareService/hs-pitie-usic')).status, 200);
  assert.equal(await count('hs-pitie-usic'), plain + 1, JSON.stringify((await raw(origin, '/audit?type=HealthcareService&id=hs-pitie-usic&_count=1000')).json.entry.map((e) => [e.resource.subtype[0].code, e.resource.agent[0].who.display, e.resource.outcomeDesc])));
  assert.equal((await read('p2', 'HealthcareService/hs-pitie-usic')).status, 404, 'and now hidden from profile 2');
});

test('establishment staff see their own units in full, and only their own units\' capacities', async () => {
  // loc-sainte-anne-psy is shared with a sensitive offer: hidden from profile 2...
  assert.equal((await read('pitieDecl', 'Location/loc-sainte-anne-psy')).status, 404);
  // ...but not from the establishment it belongs to
  const own = await read('saDecl', 'Location/loc-sainte-anne-psy');
  assert.equal(own.status, 200);
  assert.deepEqual(own.json, (await read('p1', 'Location/loc-sainte-anne-psy')).json, 'in full');
  assert.equal((await read('saDecl', 'HealthcareService/hs-sainte-anne-usip')).status, 200);
  // one unit's capacities: its own staff, the ARS and regulation; not another establishment's
  for (const [who, want] of [['saDecl', 200], ['p1', 200], ['p4', 200], ['pitieDecl', 403], ['p2', 403], ['p0', 401]]) {
    assert.equal((await read(who, '../capacity/Location/loc-sainte-anne-psy')).status, want, `${who} capacity`);
    assert.equal((await read(who, '../capacity/Location/loc-sainte-anne-psy/events')).status, want, `${who} events`);
  }
  // the regional views are for the ARS and regulation only
  for (const path of ['../capacity/aggregate?level=region', '../capacity/stale', '../capacity/events']) {
    assert.equal((await read('pitieDecl', path)).status, 403, path);
    assert.equal((await read('p4', path)).status, 200, path);
  }
});
