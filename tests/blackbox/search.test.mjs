// 2. Search: every parameter type, modifiers, chains, reverse chains, includes, sort, counts.
// Expected result sets are computed from data/demo/demo-region.json, independently of the server.
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import {
  startServer, client, raw, demoOf, demoById, capacities, matchIds, includeRefs, sorted, SC_URL, ROR_SD,
} from './lib/ror.mjs';

let srv, fkc;
before(async () => { srv = await startServer({ seed: true }); fkc = client(srv.base); });
after(async () => { await srv?.stop(); });

const SYS = {
  R211: 'https://mos.esante.gouv.fr/NOS/TRE_R211-ActiviteOperationnelle/FHIR/TRE-R211-ActiviteOperationnelle',
  R30: 'https://mos.esante.gouv.fr/NOS/TRE_R30-RegionOM/FHIR/TRE-R30-RegionOM',
  R330: 'https://mos.esante.gouv.fr/NOS/TRE_R330-TypeStatutCapacite/FHIR/TRE-R330-TypeStatutCapacite',
  R329: 'https://mos.esante.gouv.fr/NOS/TRE_R329-NatureCapacite/FHIR/TRE-R329-NatureCapacite',
  R331: 'https://mos.esante.gouv.fr/NOS/TRE_R331-TemporaliteCapacite/FHIR/TRE-R331-TemporaliteCapacite',
  R332: 'https://mos.esante.gouv.fr/NOS/TRE_R332-GenreCapacite/FHIR/TRE-R332-GenreCapacite',
  R212: 'https://mos.esante.gouv.fr/NOS/TRE_R212-Equipement/FHIR/TRE-R212-Equipement',
  R340: 'https://mos.esante.gouv.fr/NOS/TRE_R340-TypeCaracteristiqueEquipement/FHIR/TRE-R340-TypeCaracteristiqueEquipement',
  R354: 'https://mos.esante.gouv.fr/NOS/TRE_R354-TypeIdentifiantRessourceOperationnelle/FHIR/TRE-R354-TypeIdentifiantRessourceOperationnelle',
  R355: 'https://mos.esante.gouv.fr/NOS/TRE_R355-TypeIdentifiantOffre/FHIR/TRE-R355-TypeIdentifiantOffre',
  R13: 'https://mos.esante.gouv.fr/NOS/TRE_R13-CommuneOM/FHIR/TRE-R13-CommuneOM',
  IDNST: 'urn:oid:1.2.250.1.71.4.2.2',
  UCUM: 'http://unitsofmeasure.org',
};

const fold = (s) => s.normalize('NFD').replace(/[\u0300-\u036f]/g, '').toLowerCase();
const codings = (ccs) => (ccs || []).flatMap((cc) => cc.coding || []);
const ext = (r, url) => (r.extension || []).filter((x) => x.url === url);
const ids = (rs) => rs.map((r) => r.id);
const refId = (ref) => ref?.reference?.split('/')[1];

async function search(type, params, options) {
  return fkc.search({ resourceType: type, searchParams: params, options });
}
/** Assert the match set (order-insensitive) and the total equal the expected ids. */
async function expectSet(type, params, expected, msg) {
  const b = await search(type, params);
  assert.equal(b.resourceType, 'Bundle');
  assert.equal(b.type, 'searchset');
  assert.deepEqual(sorted(matchIds(b)), sorted(expected), msg ?? JSON.stringify(params));
  assert.equal(b.total, expected.length, `total for ${JSON.stringify(params)}`);
  return b;
}
const where = (type, pred) => ids(demoOf(type).filter(pred));

// ---- derived demo facts ----
const hsLoc = (hs) => (hs.location || []).map(refId);
const hsWithLocIn = (locIds) => where('HealthcareService', (h) => hsLoc(h).some((l) => locIds.includes(l)));
const cog = (l) => ext(l, `${ROR_SD}ror-commune-cog`)[0]?.valueCodeableConcept.coding[0].code;
const ageLow = (h) => ext(h, `${ROR_SD}ror-healthcareservice-patient-type`)[0]?.extension.find((s) => s.url === 'ageRange')?.valueRange.low.value;
const limitValues = (l) => ext(l, `${ROR_SD}ror-location-equipment`).flatMap((e) => e.extension.filter((s) => s.url === `${ROR_SD}ror-location-equipment-limit`))
  .flatMap((lim) => lim.extension.filter((s) => s.url === 'limitValue').map((s) => s.valueQuantity));

describe('token', () => {
  test('system|code, code alone, |code (no system)', async () => {
    const exp = where('HealthcareService', (h) => codings(h.specialty).some((c) => c.system === SYS.R211 && c.code === '126'));
    assert.deepEqual(exp, ['hs-pitie-rea']);
    await expectSet('HealthcareService', { specialty: `${SYS.R211}|126` }, exp);
    await expectSet('HealthcareService', { specialty: '126' }, exp);
    await expectSet('HealthcareService', { specialty: `${SYS.R211}|126,${SYS.R211}|127` }, where('HealthcareService', (h) => codings(h.specialty).some((c) => ['126', '127'].includes(c.code))));
    await expectSet('HealthcareService', { specialty: `http://example.org/other|126` }, []);
    await expectSet('HealthcareService', { specialty: '|126' }, [], 'every demo coding has a system, so |code matches none');
  });
  test(':not', async () => {
    await expectSet('HealthcareService', { 'specialty:not': `${SYS.R211}|126` },
      where('HealthcareService', (h) => !codings(h.specialty).some((c) => c.system === SYS.R211 && c.code === '126')));
  });
  test(':text (display, accent/case-insensitive)', async () => {
    await expectSet('HealthcareService', { 'specialty:text': 'MEDECINE' },
      where('HealthcareService', (h) => codings(h.specialty).some((c) => fold(c.display).startsWith('medecine'))));
    await expectSet('HealthcareService', { 'specialty:text': 'urgences' },
      where('HealthcareService', (h) => codings(h.specialty).some((c) => fold(c.display).startsWith('urgences'))));
  });
  test('identifier, identifier:of-type', async () => {
    await expectSet('Organization', { identifier: `${SYS.IDNST}|1750999039` }, ['eg-pitie']);
    await expectSet('Location', { identifier: '1750999039/REA-MED' }, ['loc-pitie-rea']);
    await expectSet('Location', { 'identifier:of-type': `${SYS.R354}|26|1750999039/REA-MED` }, ['loc-pitie-rea']);
    await expectSet('Location', { 'identifier:of-type': `${SYS.R354}|25|1750999039/REA-MED` }, [], 'value exists but with type 26, not 25');
    await expectSet('HealthcareService', { 'identifier:of-type': `${SYS.R355}|35|11/0000007` }, ['hs-rdebre-ped']);
  });
  test('custom token SPs on Location (commune-cog) and _tag / _id', async () => {
    await expectSet('Location', { 'commune-cog': '75113' }, where('Location', (l) => cog(l) === '75113'));
    await expectSet('Location', { 'commune-cog': `${SYS.R13}|78158` }, where('Location', (l) => cog(l) === '78158'));
    await expectSet('HealthcareService', { _tag: `${SYS.R30}|11` }, ids(demoOf('HealthcareService')));
    await expectSet('HealthcareService', { _tag: `${SYS.R30}|93` }, []);
    await expectSet('HealthcareService', { _id: 'hs-pitie-rea,hs-mondor-rea,nope' }, ['hs-pitie-rea', 'hs-mondor-rea']);
  });
});

describe('string', () => {
  test('default is starts-with, case- and accent-insensitive', async () => {
    const exp = where('HealthcareService', (h) => fold(h.name).startsWith('reanimation'));
    assert.equal(exp.length, 2);
    await expectSet('HealthcareService', { name: 'Réa' }, exp);
    await expectSet('HealthcareService', { name: 'REANIMATION' }, exp);
    await expectSet('HealthcareService', { name: 'hospitalisation' }, [], 'not starts-with');
    await expectSet('Organization', { name: 'hopital' }, where('Organization', (o) => fold(o.name).startsWith('hopital')));
    await expectSet('Location', { 'address-city': 'le chesnay' }, where('Location', (l) => fold(l.address.city).startsWith('le chesnay')));
    await expectSet('Location', { 'address-city': 'creteil' }, ['loc-mondor-rea']);
    await expectSet('Practitioner', { family: 'demo' }, ['pr-demo-paul']);
  });
  test(':exact and :contains', async () => {
    await expectSet('HealthcareService', { 'name:exact': 'Urgences adultes' }, ['hs-pitie-urg']);
    await expectSet('HealthcareService', { 'name:exact': 'urgences adultes' }, []);
    await expectSet('HealthcareService', { 'name:exact': 'Urgences' }, []);
    await expectSet('HealthcareService', { 'name:contains': 'hospitalisation COMPLETE' },
      where('HealthcareService', (h) => fold(h.name).includes('hospitalisation complete')));
    await expectSet('HealthcareService', { 'name:contains': 'pédiatri' }, where('HealthcareService', (h) => fold(h.name).includes('pediatri')));
  });
});

describe('reference', () => {
  test('Type/id, bare id, :Type modifier', async () => {
    const exp = where('HealthcareService', (h) => refId(h.providedBy) === 'eg-pitie');
    assert.equal(exp.length, 4);
    await expectSet('HealthcareService', { organization: 'Organization/eg-pitie' }, exp);
    await expectSet('HealthcareService', { organization: 'eg-pitie' }, exp);
    await expectSet('HealthcareService', { 'location:Location': 'loc-rdebre-ped' }, hsWithLocIn(['loc-rdebre-ped']));
    await expectSet('Organization', { partof: 'Organization/ej-aphp' }, where('Organization', (o) => refId(o.partOf) === 'ej-aphp'));
    await expectSet('HealthcareService', { organization: 'Organization/nope' }, []);
  });
  test(':identifier matches a logical reference (Reference.identifier)', async () => {
    const hs = await fkc.create({
      resourceType: 'HealthcareService',
      body: { resourceType: 'HealthcareService', name: 'ZZ logical ref', providedBy: { identifier: { system: SYS.IDNST, value: 'LOGICAL-1' } } },
    });
    try {
      await expectSet('HealthcareService', { 'organization:identifier': `${SYS.IDNST}|LOGICAL-1` }, [hs.id]);
      await expectSet('HealthcareService', { 'organization:identifier': `${SYS.IDNST}|LOGICAL-2` }, []);
    } finally {
      await fkc.delete({ resourceType: 'HealthcareService', id: hs.id });
    }
  });
  test('chains: location.commune-cog, organization.name, organization.identifier', async () => {
    const locs = where('Location', (l) => cog(l) === '75113');
    await expectSet('HealthcareService', { 'location.commune-cog': '75113' }, hsWithLocIn(locs));
    const orgs = where('Organization', (o) => fold(o.name).startsWith('hopital pitie'));
    await expectSet('HealthcareService', { 'organization.name': 'HOPITAL PITIE' },
      where('HealthcareService', (h) => orgs.includes(refId(h.providedBy))));
    await expectSet('HealthcareService', { 'organization.identifier': `${SYS.IDNST}|1780999025` },
      where('HealthcareService', (h) => refId(h.providedBy) === 'eg-mignot'));
    await expectSet('HealthcareService', { 'organization:Organization.name': 'nothing like this' }, []);
  });
  test('correlated capacity chain (IG 10.4: an available female bed now)', async () => {
    const locs = where('Location', (l) => capacities(l).some((c) => c.capacityType === '01' && c.capacityStatus === '02'
      && c.temporalityCapacity === '01' && c.genderCapacityAvailable === '01' && c.nbCapacity > 0));
    assert.deepEqual(locs, ['loc-mignot-mater']);
    const b = await expectSet('HealthcareService', {
      'location.capacity-type': `${SYS.R329}|01`,
      'location.capacity-status': `${SYS.R330}|02`,
      'location.temporality-capacity': `${SYS.R331}|01`,
      'location.gender-capacity-available': `${SYS.R332}|01`,
      'location.nb-capacity': 'gt0',
      _include: 'HealthcareService:location',
    }, hsWithLocIn(locs));
    assert.deepEqual(includeRefs(b), ['Location/loc-mignot-mater']);
  });
  test('capacity criteria are matched on the same capacity instance', async () => {
    // status 01 (installed) never carries a gender in the demo; status 02 carries gender 03.
    await expectSet('Location', { 'capacity-status': '01', 'gender-capacity-available': '03' }, []);
    await expectSet('Location', { 'capacity-status': '02', 'gender-capacity-available': '03' },
      where('Location', (l) => capacities(l).some((c) => c.capacityStatus === '02' && c.genderCapacityAvailable === '03')));
    await expectSet('Location', { 'capacity-status': '02', 'nb-capacity': '0' },
      where('Location', (l) => capacities(l).some((c) => c.capacityStatus === '02' && c.nbCapacity === 0)));
    await expectSet('Location', { 'capacity-status': '01', 'nb-capacity': '0' }, []);
    await expectSet('HealthcareService', { 'location.capacity-status': '01', 'location.gender-capacity-available': '03' }, [],
      'chained capacity criteria must also hold on one capacity instance');
  });
  test('equipment chain (IG 10.4: bariatric table >= 200 kg)', async () => {
    const locs = where('Location', (l) => limitValues(l).some((q) => q.value >= 200 && q.code === 'kg'));
    assert.deepEqual(locs, ['loc-pitie-bloc']);
    await expectSet('HealthcareService', {
      specialty: `${SYS.R211}|033`,
      'location.equipment-type': `${SYS.R212}|088`,
      'location.equipment-feature': `${SYS.R340}|001`,
      'location.limit-value': `ge200|${SYS.UCUM}|kg`,
    }, ['hs-pitie-bariat']);
  });
  test('reverse chain _has:PractitionerRole:service:...', async () => {
    const prr = demoOf('PractitionerRole');
    const hsOf = (pred) => sorted([...new Set(prr.filter(pred).flatMap((p) => p.healthcareService.map(refId)))]);
    await expectSet('HealthcareService', { '_has:PractitionerRole:service:practitioner': 'Practitioner/pr-demo-paul' },
      hsOf((p) => refId(p.practitioner) === 'pr-demo-paul'));
    await expectSet('HealthcareService', { '_has:PractitionerRole:service:_id': 'prr-sainte-anne-psy-fictif' }, ['hs-sainte-anne-psy']);
    await expectSet('HealthcareService', { '_has:PractitionerRole:service:practitioner': 'Practitioner/nobody' }, []);
  });
});

describe('date', () => {
  const capDates = (l) => capacities(l).map((c) => Date.parse(c.capacityUpdateDate));
  const withCap = () => where('Location', (l) => capacities(l).length > 0);
  test('_lastUpdated with prefixes', async () => {
    const all = ids(demoOf('Location'));
    await expectSet('Location', { _lastUpdated: 'ge2020-01-01' }, all);
    await expectSet('Location', { _lastUpdated: 'lt2020-01-01' }, []);
    await expectSet('Location', { _lastUpdated: `gt${new Date(Date.now() + 86400000).toISOString().slice(0, 10)}` }, []);
    await expectSet('Location', { _lastUpdated: ['ge2020-01-01', 'le2999-12-31'] }, all);
  });
  test('capacity-update-date: eq ne gt lt ge le sa eb ap', async () => {
    const d0 = Date.parse('2025-01-15T08:30:00+01:00');
    assert.ok(demoOf('Location').every((l) => capDates(l).every((d) => d === d0)), 'demo: one capacity date');
    const all = withCap();
    assert.equal(all.length, 6);
    await expectSet('Location', { 'capacity-update-date': '2025-01-15' }, all);
    await expectSet('Location', { 'capacity-update-date': 'eq2025-01-15' }, all);
    await expectSet('Location', { 'capacity-update-date': 'ne2025-01-15' }, []);
    await expectSet('Location', { 'capacity-update-date': 'ne2025-01-16' }, all);
    await expectSet('Location', { 'capacity-update-date': 'gt2025-01-14' }, all);
    await expectSet('Location', { 'capacity-update-date': 'gt2025-01-15T08:30:00+01:00' }, []);
    await expectSet('Location', { 'capacity-update-date': 'ge2025-01-15T08:30:00+01:00' }, all);
  });
  test('capacity-update-date: sa, eb, ap and timezone handling', async () => {
    const all = withCap();
    await expectSet('Location', { 'capacity-update-date': 'lt2025-01-15T07:30:00Z' }, []);
    await expectSet('Location', { 'capacity-update-date': 'le2025-01-15T07:30:00Z' }, all);
    await expectSet('Location', { 'capacity-update-date': 'eq2025-01-15T07:30:00Z' }, all);
    await expectSet('Location', { 'capacity-update-date': 'sa2025-01-14' }, all);
    await expectSet('Location', { 'capacity-update-date': 'sa2025-01-15' }, []);
    await expectSet('Location', { 'capacity-update-date': 'eb2025-01-16' }, all);
    await expectSet('Location', { 'capacity-update-date': 'eb2025-01-14' }, []);
    await expectSet('Location', { 'capacity-update-date': 'ap2025-01-15' }, all);
    await expectSet('Location', { 'capacity-update-date': 'ap1990-01-01' }, []);
    await expectSet('Location', { 'capacity-update-date': 'lt2025-01' }, []);
    await expectSet('Location', { 'capacity-update-date': '2025' }, all);
  });
});

describe('number and quantity', () => {
  const nbs = (l) => capacities(l).map((c) => c.nbCapacity);
  const cases = [['gt0', (n) => n > 0], ['0', (n) => n === 0], ['ge25', (n) => n >= 25], ['lt2', (n) => n < 2],
    ['le1', (n) => n <= 1], ['ne0', (n) => n !== 0], ['eq30', (n) => n === 30], ['gt100', (n) => n > 100]];
  for (const [v, pred] of cases) {
    test(`nb-capacity=${v}`, async () => {
      await expectSet('Location', { 'nb-capacity': v }, where('Location', (l) => nbs(l).some(pred)));
    });
  }
  test('limit-value (quantity with system|code)', async () => {
    const lv = (pred) => where('Location', (l) => limitValues(l).some(pred));
    await expectSet('Location', { 'limit-value': `ge200|${SYS.UCUM}|kg` }, lv((q) => q.value >= 200));
    await expectSet('Location', { 'limit-value': `250|${SYS.UCUM}|kg` }, lv((q) => q.value === 250));
    await expectSet('Location', { 'limit-value': 'gt250||kg' }, []);
    await expectSet('Location', { 'limit-value': 'lt251' }, lv((q) => q.value < 251));
    await expectSet('Location', { 'limit-value': `ge200|${SYS.UCUM}|g` }, [], 'unit differs');
  });
  const ageCases = [['ge18', (a) => a >= 18], ['lt18', (a) => a < 18], ['0', (a) => a === 0], ['gt70', (a) => a > 70], ['le15', (a) => a <= 15]];
  for (const [v, pred] of ageCases) {
    test(`HealthcareService age-range-low=${v}`, async () => {
      await expectSet('HealthcareService', { 'age-range-low': v }, where('HealthcareService', (h) => ageLow(h) !== undefined && pred(ageLow(h))));
    });
  }
});

describe('uri, :missing', () => {
  test('_profile', async () => {
    await expectSet('Location', { _profile: `${ROR_SD}ror-location` }, ids(demoOf('Location')));
    await expectSet('Location', { _profile: `${ROR_SD}ror-healthcareservice` }, []);
    await expectSet('HealthcareService', { _profile: `${ROR_SD}ror-healthcareservice` }, ids(demoOf('HealthcareService')));
  });
  test(':missing true/false', async () => {
    await expectSet('HealthcareService', { 'location:missing': 'true' }, where('HealthcareService', (h) => !h.location?.length));
    await expectSet('HealthcareService', { 'location:missing': 'false' }, where('HealthcareService', (h) => h.location?.length > 0));
    await expectSet('Organization', { 'partof:missing': 'true' }, where('Organization', (o) => !o.partOf));
    await expectSet('Location', { 'capacity-status:missing': 'true' }, where('Location', (l) => capacities(l).length === 0));
    await expectSet('Location', { 'limit-value:missing': 'false' }, where('Location', (l) => limitValues(l).length > 0));
    await expectSet('Organization', { 'type:missing': 'true' }, where('Organization', (o) => !o.type));
  });
});

describe('_include, _revinclude', () => {
  test('HealthcareService:organization + :location + :iterate Organization:partof', async () => {
    const b = await search('HealthcareService', { _id: 'hs-pitie-rea', _include: ['HealthcareService:organization', 'HealthcareService:location'] });
    assert.deepEqual(matchIds(b), ['hs-pitie-rea']);
    assert.equal(b.total, 1, 'total counts matches only');
    assert.deepEqual(sorted(includeRefs(b)), ['Location/loc-pitie-rea', 'Organization/eg-pitie']);
    const it = await search('HealthcareService', {
      _id: 'hs-pitie-rea,hs-sainte-anne-psy',
      _include: ['HealthcareService:organization'], '_include:iterate': 'Organization:partof',
    });
    assert.deepEqual(sorted(includeRefs(it)), ['Organization/eg-pitie', 'Organization/eg-sainte-anne', 'Organization/ej-aphp', 'Organization/ej-ghu']);
    const full = (await search('HealthcareService', { _id: 'hs-pitie-rea', _include: 'HealthcareService:organization' }));
    const inc = full.entry.find((e) => e.search?.mode === 'include');
    assert.deepEqual({ ...inc.resource, meta: undefined }, { ...demoById('eg-pitie'), meta: undefined });
  });
  test('included resources are not duplicated', async () => {
    const b = await search('HealthcareService', { organization: 'Organization/eg-pitie', _include: 'HealthcareService:organization' });
    assert.deepEqual(includeRefs(b), ['Organization/eg-pitie']);
    assert.equal(matchIds(b).length, 4);
  });
  test('PractitionerRole:practitioner and _revinclude=PractitionerRole:service', async () => {
    const b = await search('PractitionerRole', { _include: 'PractitionerRole:practitioner' });
    assert.deepEqual(sorted(includeRefs(b)), sorted(demoOf('Practitioner').map((p) => `Practitioner/${p.id}`)));
    const r = await search('HealthcareService', { _id: 'hs-pitie-rea,hs-pitie-urg', _revinclude: 'PractitionerRole:service' });
    assert.deepEqual(sorted(matchIds(r)), ['hs-pitie-rea', 'hs-pitie-urg']);
    assert.deepEqual(includeRefs(r), ['PractitionerRole/prr-pitie-rea-exemple']);
  });
  test('full offer graph (IG 10.4)', async () => {
    const b = await search('HealthcareService', {
      'organization.identifier': `${SYS.IDNST}|1750999039`,
      _include: ['HealthcareService:organization', 'HealthcareService:location', 'PractitionerRole:practitioner'],
      '_include:iterate': 'Organization:partof',
      _revinclude: 'PractitionerRole:service',
    });
    assert.deepEqual(sorted(matchIds(b)), ['hs-pitie-bariat', 'hs-pitie-rea', 'hs-pitie-urg', 'hs-pitie-usic']);
    const inc = includeRefs(b);
    for (const ref of ['Organization/eg-pitie', 'Organization/ej-aphp', 'Location/loc-pitie-rea', 'Location/loc-pitie-usic',
      'Location/loc-pitie-bloc', 'PractitionerRole/prr-pitie-rea-exemple', 'PractitionerRole/prr-pitie-usic-demo']) {
      assert.ok(inc.includes(ref), `${ref} included`);
    }
    assert.equal(new Set(inc).size, inc.length, 'no duplicate includes');
  });
});

describe('sort, _summary=count, _total=none, POST _search', () => {
  const cmp = (a, b) => (a < b ? -1 : a > b ? 1 : 0);
  test('_sort=name / -name (accent-insensitive collation)', async () => {
    const exp = demoOf('HealthcareService').sort((a, b) => cmp(fold(a.name), fold(b.name))).map((h) => h.id);
    const b = await search('HealthcareService', { _sort: 'name' });
    assert.deepEqual(matchIds(b), exp);
    const d = await search('HealthcareService', { _sort: '-name' });
    assert.deepEqual(matchIds(d), [...exp].reverse());
    const o = await search('Organization', { _sort: 'name' });
    assert.deepEqual(matchIds(o), demoOf('Organization').sort((a, b) => cmp(a.name, b.name)).map((x) => x.id));
  });
  test('multiple sort keys: address-city,-name', async () => {
    const exp = demoOf('Location').sort((a, b) => cmp(fold(a.address.city), fold(b.address.city)) || -cmp(fold(a.name), fold(b.name))).map((l) => l.id);
    const b = await search('Location', { _sort: 'address-city,-name' });
    assert.deepEqual(matchIds(b), exp);
  });
  test('_summary=count gives the total and no entries; _total=none omits the total', async () => {
    const c = await search('HealthcareService', { _summary: 'count', 'location:missing': 'false' });
    assert.equal(c.total, where('HealthcareService', (h) => h.location?.length > 0).length);
    assert.deepEqual(matchIds(c), []);
    const n = await search('Location', { _total: 'none', 'commune-cog': '75113' });
    assert.equal(n.total, undefined);
    assert.deepEqual(sorted(matchIds(n)), where('Location', (l) => cog(l) === '75113').sort());
  });
  test('_count limits the page and offers a next link', async () => {
    const b = await search('HealthcareService', { _count: 5 });
    assert.equal(matchIds(b).length, 5);
    assert.equal(b.total, 12);
    assert.ok(b.link.find((l) => l.relation === 'next'));
    const z = await search('HealthcareService', { _count: 0 });
    assert.deepEqual(matchIds(z), []);
    assert.equal(z.total, 12);
  });
  test('POST _search (form-encoded) equals GET', async () => {
    const params = { 'location.commune-cog': '75113', _sort: 'name', _include: 'HealthcareService:organization' };
    const g = await search('HealthcareService', params);
    const p = await search('HealthcareService', params, { postSearch: true });
    assert.deepEqual(matchIds(p), matchIds(g));
    assert.deepEqual(includeRefs(p), includeRefs(g));
    assert.equal(p.total, g.total);
  });
  test('unknown parameter: lenient search ignores it and reports an outcome entry; strict gives 400', async () => {
    const b = await search('Location', { 'commune-cog': '75113', 'not-a-param': 'x' });
    assert.deepEqual(sorted(matchIds(b)), where('Location', (l) => cog(l) === '75113').sort());
    const oo = b.entry.filter((e) => e.search?.mode === 'outcome');
    assert.equal(oo.length, 1);
    assert.equal(oo[0].resource.resourceType, 'OperationOutcome');
    assert.ok(JSON.stringify(oo[0].resource).includes('not-a-param'));
    const s = await raw(srv.base, 'Location?commune-cog=75113&not-a-param=x', { headers: { prefer: 'handling=strict' } });
    assert.equal(s.status, 400);
    assert.equal(s.json.resourceType, 'OperationOutcome');
  });
});

describe('after writes', () => {
  test('_sort=-_lastUpdated puts the most recently written first', async () => {
    for (const id of ['loc-mignot-med', 'loc-pitie-usic']) {
      const r = await fkc.read({ resourceType: 'Location', id });
      r.description = `touched ${id}`;
      await fkc.update({ resourceType: 'Location', id, body: r });
    }
    const b = await search('Location', { _sort: '-_lastUpdated', _count: 2 });
    assert.deepEqual(matchIds(b), ['loc-pitie-usic', 'loc-mignot-med']);
    const since = (await fkc.read({ resourceType: 'Location', id: 'loc-mignot-med' })).meta.lastUpdated;
    await expectSet('Location', { _lastUpdated: `ge${since}` }, ['loc-mignot-med', 'loc-pitie-usic']);
  });
  test('reverse chain on a PractitionerRole identifier', async () => {
    const pr = await fkc.create({ resourceType: 'PractitionerRole', body: {
      resourceType: 'PractitionerRole', identifier: [{ system: 'urn:oid:1.2.250.1.71.4.2.1', value: 'PRR-BB-1' }],
      practitioner: { reference: 'Practitioner/pr-demo-paul' }, healthcareService: [{ reference: 'HealthcareService/hs-mondor-ger' }],
    } });
    assert.ok(pr.id);
    await expectSet('HealthcareService', { '_has:PractitionerRole:service:identifier': 'urn:oid:1.2.250.1.71.4.2.1|PRR-BB-1' }, ['hs-mondor-ger']);
    await expectSet('HealthcareService', { '_has:PractitionerRole:service:identifier': 'PRR-BB-2' }, []);
  });
});
