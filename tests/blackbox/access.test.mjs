// Access control: every role × every write interaction × every resource type, on a resource of
// the principal's own organisation and on a foreign one. 0 unauthorized writes succeed; each
// refusal is a 401/403 OperationOutcome and leaves the store as it was. Also: sessions (cookie,
// CSRF, lockout), the audit trail, the validation workflow.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  startServer, raw, accountKey, rorUser, demoById, FHIR_JSON, SC_URL, ADMIN_LOGIN, freshDir,
} from './lib/ror.mjs';

let srv;
const keys = {};
// The principals. The AP-HP manager is named by the EJ's FINESS number (its chain holds the
// Pitié-Salpêtrière EG); the bed declarer by the EG's logical id: both forms of a grant.
const ROLES = {
  manager: ['establishment-manager:750999013'],
  declarer: ['bed-declarer:Organization/eg-pitie'],
  reader: ['reader'],
  system: ['system:2'],
};

before(async () => {
  const dir = freshDir();
  for (const [login, roles] of Object.entries(ROLES)) keys[login] = accountKey(dir, login, roles);
  keys.disabled = accountKey(dir, 'disabled', ['ars-admin']);
  rorUser(dir, ['disable', 'disabled']);
  srv = await startServer({ seed: true, dataDir: dir });
  keys.admin = srv.adminKey;
});
after(async () => { await srv?.stop({ removeDir: true }); });

const asAdmin = (path, opts = {}) => raw(srv.base, path, opts);
function as(who, path, { method = 'GET', body, headers = {} } = {}) {
  const h = { ...headers };
  if (who !== 'anonymous') h.authorization = `Bearer ${keys[who]}`;
  if (body !== undefined) h['content-type'] = h['content-type'] || 'application/fhir+json';
  return raw(srv.base, path, { method, headers: h, body: body === undefined ? undefined : JSON.stringify(body), anonymous: who === 'anonymous' });
}

// ---- targets: fresh resources made by the administrator, owned by Pitié (own) or Mignot (foreign)
const ORG = { own: 'Organization/eg-pitie', foreign: 'Organization/eg-mignot' };
const EJ = { own: 'Organization/ej-aphp', foreign: 'Organization/ej-chv' };
let serial = 0;
function body(type, side) {
  const n = ++serial;
  switch (type) {
    case 'Organization': {
      const o = demoById('eg-pitie');
      delete o.id; delete o.meta;
      o.name = `EG de test ${n}`;
      o.identifier = [{ system: 'urn:test:org', value: `test-${n}` }];
      o.partOf = { reference: EJ[side] };
      return o;
    }
    case 'HealthcareService': {
      const h = demoById('hs-pitie-usic');
      delete h.id; delete h.meta; delete h.identifier;
      h.name = `Offre de test ${n}`;
      h.providedBy = { reference: ORG[side] };
      delete h.location;
      return h;
    }
    case 'Location': {
      const l = demoById('loc-pitie-rea');
      delete l.id; delete l.meta; delete l.identifier;
      l.name = `Lieu de test ${n}`;
      l.managingOrganization = { reference: ORG[side] };
      return l;
    }
    case 'PractitionerRole': {
      const p = demoById('prr-pitie-rea-exemple');
      delete p.id; delete p.meta; delete p.identifier;
      p.organization = { reference: ORG[side] };
      p.healthcareService = [{ reference: side === 'own' ? 'HealthcareService/hs-pitie-rea' : 'HealthcareService/hs-mignot-mater' }];
      return p;
    }
    case 'Practitioner': {
      const p = demoById('pr-demo-paul');
      delete p.id; delete p.meta;
      p.identifier = [{ system: 'urn:oid:1.2.250.1.71.4.2.1', value: `81000${String(n).padStart(6, '0')}` }];
      return p;
    }
    case 'Task':
      return {
        resourceType: 'Task', status: 'requested', intent: 'order',
        focus: { reference: side === 'own' ? 'HealthcareService/hs-pitie-rea' : 'HealthcareService/hs-mignot-mater' },
        code: { coding: [{ system: 'https://mos.esante.gouv.fr/NOS/TRE_R350-ThematiqueAnomalie/FHIR/TRE-R350-ThematiqueAnomalie', code: '06' }] },
        reasonCode: { coding: [{ system: 'https://mos.esante.gouv.fr/NOS/TRE_R349-ActionAnomalie/FHIR/TRE-R349-ActionAnomalie', code: 'COR' }] },
        businessStatus: { coding: [{ system: 'https://mos.esante.gouv.fr/NOS/TRE_R352-StatutMetierAnomalie/FHIR/TRE-R352-StatutMetierAnomalie', code: '01' }] },
        authoredOn: '2026-12-03T10:00:00+01:00', lastModified: '2026-12-03T10:00:00+01:00',
        description: `Téléphone erroné ${n}`,
      };
    default: throw new Error(type);
  }
}

async function makeTarget(type, side) {
  const r = await asAdmin(type, { method: 'POST', headers: FHIR_JSON, body: JSON.stringify(body(type, side)) });
  assert.equal(r.status, 201, `admin creates ${type}: ${r.text}`);
  return r.json;
}

// The change a write makes: a descriptive one, or (Locations) one of the capacity only.
function changed(res, variant) {
  const c = structuredClone(res);
  delete c.meta;
  if (variant === 'capacity') {
    const ind = c.extension.find((x) => x.url === SC_URL && x.extension.some((s) => s.url === 'capacityStatus' && s.valueCodeableConcept.coding[0].code === '02'));
    ind.extension.find((s) => s.url === 'nbCapacity').valueInteger += 1;
  } else if (c.resourceType === 'Practitioner') {
    c.name = [{ family: 'MODIFIE', given: ['Test'] }];
  } else if (c.resourceType === 'Task') {
    c.description = `${c.description} (vu)`;
  } else {
    c.name = `${c.name} (modifié)`;
  }
  return c;
}
const DIMS = ['capacityType', 'capacityStatus', 'temporalityCapacity', 'genderCapacityAvailable',
  'closingType', 'additionalBedType', 'crisisType', 'temporaryAssignement'];
/** The mobile form's body: the available-beds indicator of `loc` set to n. */
function formFor(loc, n) {
  const ext = loc.extension.find((x) => x.url === SC_URL && x.extension.some((s) => s.url === 'capacityStatus' && s.valueCodeableConcept.coding[0].code === '02'));
  const dims = Object.fromEntries(ext.extension.filter((s) => DIMS.includes(s.url)).map((s) => [s.url, s.valueCodeableConcept.coding[0].code]));
  return { indicators: [{ ...dims, nbCapacity: n }] };
}
const nbPath = `Location.extension.where(url='${SC_URL}' and extension.where(url='capacityStatus' and valueCodeableConcept.coding[0].code='02')).extension.where(url='nbCapacity')`;
function patchFor(res, variant) {
  if (variant === 'capacity') {
    const cur = res.extension.find((x) => x.url === SC_URL && x.extension.some((s) => s.url === 'capacityStatus' && s.valueCodeableConcept.coding[0].code === '02'));
    const nb = cur.extension.find((s) => s.url === 'nbCapacity').valueInteger;
    return { resourceType: 'Parameters', parameter: [{ name: 'operation', part: [{ name: 'type', valueCode: 'replace' }, { name: 'path', valueString: nbPath }, { name: 'value', valueInteger: nb + 2 }] }] };
  }
  if (res.resourceType === 'Practitioner' || res.resourceType === 'PractitionerRole') {
    const [name, value] = res.resourceType === 'Practitioner' ? ['gender', { valueCode: 'unknown' }] : ['active', { valueBoolean: res.active === false }];
    const type = res[name] === undefined ? 'add' : 'replace';
    const part = [{ name: 'type', valueCode: type }, { name: 'path', valueString: type === 'add' ? res.resourceType : `${res.resourceType}.${name}` }];
    if (type === 'add') part.push({ name: 'name', valueString: name });
    part.push({ name: 'value', ...value });
    return { resourceType: 'Parameters', parameter: [{ name: 'operation', part }] };
  }
  const field = res.resourceType === 'Task' ? 'description' : 'name';
  return { resourceType: 'Parameters', parameter: [{ name: 'operation', part: [{ name: 'type', valueCode: 'replace' }, { name: 'path', valueString: `${res.resourceType}.${field}` }, { name: 'value', valueString: `patché ${++serial}` }] }] };
}

// ---- the rules, stated independently of the server's code (issue 6)
const OFFER_TYPES = ['Organization', 'HealthcareService', 'Location', 'PractitionerRole'];
function expected(who, type, op, side, variant) {
  if (who === 'anonymous' || who === 'disabled') return 401;
  if (who === 'admin') return 'ok';
  if (type === 'Task') {
    if (op === 'create') return 'ok';
    if ((op === 'update' || op === 'patch') && (who === 'manager' || who === 'declarer') && side === 'own') return 'ok';
    return 403;
  }
  if (OFFER_TYPES.includes(type) && who === 'manager' && side === 'own') return 'ok';
  if (type === 'Practitioner' && op === 'create' && who === 'manager') return 'ok';
  if (type === 'Location' && who === 'declarer' && side === 'own' && ['update', 'patch', 'form'].includes(op) && variant === 'capacity') return 'ok';
  return 403;
}

async function state(type, id) {
  const cur = await asAdmin(`${type}/${id}`);
  const hist = await asAdmin(`${type}/${id}/_history`);
  return { status: cur.status, text: cur.text, versions: hist.json?.total };
}
async function count(type) { return (await asAdmin(`${type}?_summary=count`)).json.total; }

const WHO = ['admin', 'manager', 'declarer', 'reader', 'system', 'anonymous', 'disabled'];
const TYPES = ['Organization', 'HealthcareService', 'Location', 'PractitionerRole', 'Practitioner', 'Task'];

test('role × write interaction × resource type × own/foreign: exactly the allowed writes succeed', { timeout: 600000 }, async () => {
  const tally = { allowed: 0, refused: 0 };
  const failures = [];
  for (const type of TYPES) {
    const ops = ['create', 'update', 'patch', 'delete', 'move'];
    if (type === 'Location') ops.push('form');
    for (const op of ops) {
      const variants = type === 'Location' && ['update', 'patch'].includes(op) ? ['descriptive', 'capacity'] : type === 'Location' && op === 'form' ? ['capacity'] : ['descriptive'];
      for (const variant of variants) {
        for (const side of ['own', 'foreign']) {
          if (op === 'move' && (side === 'foreign' || !OFFER_TYPES.includes(type))) continue;
          for (const who of WHO) {
            let res; let before; let countBefore;
            if (op === 'create') countBefore = await count(type);
            else { res = await makeTarget(type, side); before = await state(type, res.id); }
            let r;
            if (op === 'create') r = await as(who, type, { method: 'POST', body: body(type, side) });
            else if (op === 'update') r = await as(who, `${type}/${res.id}`, { method: 'PUT', body: changed(res, variant) });
            else if (op === 'patch') r = await as(who, `${type}/${res.id}`, { method: 'PATCH', body: patchFor(res, variant) });
            else if (op === 'delete') r = await as(who, `${type}/${res.id}`, { method: 'DELETE' });
            else if (op === 'form') {
              r = await as(who, `../capacity/Location/${res.id}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: formFor(res, 7) });
            } else { // move: an own resource given to the foreign organisation
              const m = changed(res, 'descriptive');
              if (type === 'Organization') m.partOf = { reference: EJ.foreign };
              if (type === 'HealthcareService') m.providedBy = { reference: ORG.foreign };
              if (type === 'Location') m.managingOrganization = { reference: ORG.foreign };
              if (type === 'PractitionerRole') { m.organization = { reference: ORG.foreign }; m.healthcareService = [{ reference: 'HealthcareService/hs-mignot-mater' }]; }
              r = await as(who, `${type}/${res.id}`, { method: 'PUT', body: m });
            }
            const want = expected(who, type, op === 'move' ? 'move' : op, op === 'move' ? 'foreign' : side, variant);
            const label = `${who} ${op}${variant === 'capacity' ? ' (capacité)' : ''} ${type} ${side}: ${r.status}`;
            if (want === 'ok') {
              tally.allowed++;
              if (r.status < 200 || r.status > 299) failures.push(`${label} — attendu succès: ${r.text.slice(0, 200)}`);
            } else {
              tally.refused++;
              if (r.status !== want) failures.push(`${label} — attendu ${want}: ${r.text.slice(0, 200)}`);
              else if (r.json?.resourceType !== 'OperationOutcome' || !r.json.issue?.[0]?.diagnostics) failures.push(`${label} — pas d'OperationOutcome`);
              if (op === 'create') {
                if (await count(type) !== countBefore) failures.push(`${label} — une ressource a été créée`);
              } else {
                const after = await state(type, res.id);
                if (JSON.stringify(after) !== JSON.stringify(before)) failures.push(`${label} — la ressource a changé`);
              }
            }
          }
        }
      }
    }
  }
  assert.deepEqual(failures, [], failures.join('\n'));
  assert.ok(tally.allowed >= 60 && tally.refused >= 250, JSON.stringify(tally));
});

test('refusals are in the audit trail, with who and what', async () => {
  const r = await as('reader', 'HealthcareService/hs-pitie-rea', { method: 'DELETE' });
  assert.equal(r.status, 403);
  const audit = await asAdmin('../audit?actor=reader&outcome=failure&action=delete');
  assert.equal(audit.status, 200);
  const ev = audit.json.entry.map((e) => e.resource);
  assert.ok(ev.some((e) => e.entity?.[0]?.what?.reference === 'HealthcareService/hs-pitie-rea' && e.outcome === '4'), JSON.stringify(ev).slice(0, 500));
  // a successful write is there too, attributed to its author
  const w = await as('manager', 'HealthcareService/hs-pitie-rea', { method: 'PATCH', body: patchFor(demoById('hs-pitie-rea'), 'descriptive') });
  assert.equal(w.status, 200, w.text);
  const ok = await asAdmin('../audit?type=HealthcareService&id=hs-pitie-rea&action=update');
  assert.equal(ok.json.entry[0].resource.agent[0].who.display, 'manager');
  assert.equal(ok.json.entry[0].resource.entity[0].what.reference, `HealthcareService/hs-pitie-rea/_history/${w.json.meta.versionId}`);
  // the version itself names its author
  const hist = await asAdmin(`HealthcareService/hs-pitie-rea/_history/${w.json.meta.versionId}`);
  assert.equal(hist.status, 200);
  // only the ARS reads the audit trail
  assert.equal((await as('manager', '../audit')).status, 403);
  assert.equal((await as('anonymous', '../audit')).status, 401);
});

test('bad credentials are refused, never downgraded to anonymous', async () => {
  for (const h of [{ authorization: 'Bearer ror_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA' }, { authorization: 'Basic YWRtaW46YWRtaW4=' }, { authorization: 'Bearer not.a.jwt' }]) {
    const r = await raw(srv.base, 'Organization', { headers: h });
    assert.equal(r.status, 401, JSON.stringify(h));
    assert.equal(r.json.resourceType, 'OperationOutcome');
    assert.match(r.headers.get('www-authenticate'), /^Bearer/);
  }
  const d = await raw(srv.base, 'Organization', { headers: { authorization: `Bearer ${keys.disabled}` } });
  assert.equal(d.status, 401);
});

test('web sessions: cookie flags, CSRF, origin, logout, lockout after repeated failures', async () => {
  const dir = freshDir();
  rorUser(dir, ['add', 'infirmiere', '--role', 'bed-declarer:Organization/eg-pitie', '--password-stdin'], { input: 'Lits-Pitié-2026\n' });
  const own = await startServer({ seed: true, dataDir: dir });
  try {
    const origin = new URL(own.base).origin;
    const login = (password, login = 'infirmiere') => raw(origin, '/auth/login', { method: 'POST', anonymous: true, headers: { 'content-type': 'application/json' }, body: JSON.stringify({ login, password }) });
    const bad = await login('faux');
    assert.equal(bad.status, 401);
    assert.match(bad.json.issue[0].diagnostics, /incorrect/);
    // an unknown login gets the very same answer
    const unknown = await login('faux', 'personne');
    assert.equal(unknown.status, 401);
    assert.equal(unknown.json.issue[0].diagnostics, bad.json.issue[0].diagnostics);

    const ok = await login('Lits-Pitié-2026');
    assert.equal(ok.status, 200, ok.text);
    const cookie = ok.headers.get('set-cookie');
    assert.match(cookie, /^ror_session=ror_[A-Za-z0-9_-]{43};/);
    assert.match(cookie, /HttpOnly/);
    assert.match(cookie, /SameSite=Strict/);
    assert.match(cookie, /Path=\//);
    const sessionCookie = cookie.split(';')[0];
    const csrf = ok.json.csrf;
    assert.ok(csrf && csrf.length >= 32);
    assert.equal(ok.json.login, 'infirmiere');
    assert.equal(ok.json.roles[0].role, 'bed-declarer');

    const me = await raw(origin, '/auth/session', { headers: { cookie: sessionCookie } });
    assert.equal(me.json.login, 'infirmiere');
    assert.equal(me.json.method, 'session');

    const rea = (await raw(own.base, 'Location/loc-pitie-rea')).json;
    const form = (headers) => raw(origin, '/capacity/Location/loc-pitie-rea', { method: 'POST', headers: { cookie: sessionCookie, 'content-type': 'application/json', ...headers }, body: JSON.stringify(formFor(rea, 3)) });
    const before = (await raw(own.base, 'Location/loc-pitie-rea')).json.meta.versionId;
    assert.equal((await form({})).status, 403, 'no CSRF token');
    assert.equal((await form({ 'x-csrf-token': 'x'.repeat(csrf.length) })).status, 403, 'wrong CSRF token');
    assert.equal((await form({ 'x-csrf-token': csrf, origin: 'https://evil.example' })).status, 403, 'foreign origin');
    assert.equal((await raw(own.base, 'Location/loc-pitie-rea')).json.meta.versionId, before, 'nothing written');
    const done = await form({ 'x-csrf-token': csrf, origin });
    assert.equal(done.status, 200, done.text);
    const hist = await raw(own.base, `Location/loc-pitie-rea/_history/${done.json.version}`);
    assert.equal(hist.status, 200);
    const events = await raw(origin, '/capacity/Location/loc-pitie-rea/events');
    assert.ok(JSON.stringify(events.json).includes('"infirmiere"'), 'the declaration is attributed to the nurse');

    const out = await raw(origin, '/auth/logout', { method: 'POST', headers: { cookie: sessionCookie, 'x-csrf-token': csrf } });
    assert.equal(out.status, 200);
    assert.match(out.headers.get('set-cookie'), /Max-Age=0/);
    const after = await raw(origin, '/auth/session', { headers: { cookie: sessionCookie } });
    assert.equal(after.json.login, null, 'the session is over');
    assert.equal((await form({ 'x-csrf-token': csrf })).status, 401);

    // lockout: 5 failures within the window lock the account, even for the right password
    let locked;
    for (let i = 0; i < 6; i++) locked = await login(`faux-${i}`);
    assert.equal(locked.status, 429);
    assert.ok(Number(locked.headers.get('retry-after')) > 0);
    const right = await login('Lits-Pitié-2026');
    assert.equal(right.status, 429, 'locked even with the right password');
    const audit = await raw(own.base, '../audit?action=login&outcome=failure');
    assert.ok(audit.json.entry.length >= 7);
  } finally { await own.stop({ removeDir: true }); }
});

test('validation workflow: a manager\'s descriptive change waits for the ARS; beds never wait', async () => {
  const dir = freshDir();
  const mk = accountKey(dir, 'gestionnaire', ['establishment-manager:750999013']);
  const own = await startServer({ seed: true, dataDir: dir, args: ['--validation'] });
  try {
    const origin = new URL(own.base).origin;
    const mgr = (path, opts = {}) => raw(own.base, path, { ...opts, headers: { authorization: `Bearer ${mk}`, ...(opts.headers || {}) } });
    const hs = (await raw(own.base, 'HealthcareService/hs-pitie-usic')).json;
    const edited = { ...hs, name: 'USIC Pitié (nom corrigé)' };
    delete edited.meta;
    const r = await mgr('HealthcareService/hs-pitie-usic', { method: 'PUT', headers: FHIR_JSON, body: JSON.stringify(edited) });
    assert.equal(r.status, 202, r.text);
    assert.match(r.json.issue[0].diagnostics, /validation/);
    const pendingUrl = r.headers.get('content-location');
    const id = pendingUrl.split('/').pop();
    assert.equal((await raw(own.base, 'HealthcareService/hs-pitie-usic')).json.name, hs.name, 'not applied yet');
    // beds are operational: applied at once
    const usic = (await raw(own.base, 'Location/loc-pitie-usic')).json;
    const beds = await mgr('../capacity/Location/loc-pitie-usic', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(formFor(usic, 4)) });
    assert.equal(beds.status, 200, beds.text);
    // the manager cannot validate its own change
    assert.equal((await mgr(`${origin}/validation/${id}/approve`, { method: 'POST' })).status, 403);
    const list = await raw(origin, '/validation?status=pending');
    assert.equal(list.json.changes.length, 1);
    assert.equal(list.json.changes[0].author, 'gestionnaire');
    assert.equal(list.json.changes[0].resource.name, 'USIC Pitié (nom corrigé)');
    const ok = await raw(origin, `/validation/${id}/approve`, { method: 'POST' });
    assert.equal(ok.status, 200, ok.text);
    const now = await raw(own.base, 'HealthcareService/hs-pitie-usic');
    assert.equal(now.json.name, 'USIC Pitié (nom corrigé)');
    assert.equal((await raw(origin, `/validation/${id}/approve`, { method: 'POST' })).status, 409, 'decided once');
    const hist = await raw(own.base, 'HealthcareService/hs-pitie-usic/_history');
    assert.equal(hist.json.entry.length, 2);
    // a rejected change leaves the resource as it was
    const r2 = await mgr('HealthcareService/hs-pitie-usic', { method: 'DELETE' });
    assert.equal(r2.status, 202);
    const id2 = r2.headers.get('content-location').split('/').pop();
    assert.equal((await raw(origin, `/validation/${id2}/reject`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' })).status, 400, 'a reason is required');
    const rej = await raw(origin, `/validation/${id2}/reject`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ reason: 'unité toujours ouverte' }) });
    assert.equal(rej.status, 200);
    assert.equal((await raw(own.base, 'HealthcareService/hs-pitie-usic')).status, 200, 'not deleted');
    // a stale change cannot be applied over a newer version
    const r3 = await mgr('HealthcareService/hs-pitie-usic', { method: 'PATCH', headers: FHIR_JSON, body: JSON.stringify(patchFor(now.json, 'descriptive')) });
    assert.equal(r3.status, 202);
    const id3 = r3.headers.get('content-location').split('/').pop();
    const cur = (await raw(own.base, 'HealthcareService/hs-pitie-usic')).json;
    cur.name = 'changé par l\'ARS entre-temps';
    delete cur.meta;
    assert.equal((await raw(own.base, 'HealthcareService/hs-pitie-usic', { method: 'PUT', headers: FHIR_JSON, body: JSON.stringify(cur) })).status, 200);
    assert.equal((await raw(origin, `/validation/${id3}/approve`, { method: 'POST' })).status, 409);
    assert.equal((await raw(own.base, 'HealthcareService/hs-pitie-usic')).json.name, 'changé par l\'ARS entre-temps');
    void ADMIN_LOGIN;
  } finally { await own.stop({ removeDir: true }); }
});

test('anomaly reports (RORTask): raised by a reader, routed to the owner, resolved by it only', async () => {
  const t = body('Task', 'own');
  delete t.authoredOn; delete t.lastModified;
  const r = await as('reader', 'Task', { method: 'POST', body: t });
  assert.equal(r.status, 201, r.text);
  const task = r.json;
  assert.equal(task.owner.reference, 'Organization/eg-pitie', 'routed to the provider of the offer');
  assert.equal(task.requester.display, 'reader');
  assert.ok(Math.abs(Date.parse(task.lastModified) - Date.now()) < 60000);
  assert.equal(task.authoredOn, task.lastModified);
  // the owner finds it
  const mine = await as('manager', 'Task?owner=Organization/eg-pitie&_count=100');
  assert.ok(mine.json.entry.some((e) => e.resource.id === task.id));
  // only the owner (or the ARS) changes its status
  const fix = { resourceType: 'Parameters', parameter: [{ name: 'operation', part: [{ name: 'type', valueCode: 'replace' }, { name: 'path', valueString: 'Task.businessStatus.coding[0].code' }, { name: 'value', valueCode: '08' }] }] };
  assert.equal((await as('reader', `Task/${task.id}`, { method: 'PATCH', body: fix })).status, 403);
  assert.equal((await as('system', `Task/${task.id}`, { method: 'PATCH', body: fix })).status, 403);
  const done = await as('manager', `Task/${task.id}`, { method: 'PATCH', body: fix });
  assert.equal(done.status, 200, done.text);
  assert.equal(done.json.businessStatus.coding[0].code, '08');
  assert.ok(Date.parse(done.json.lastModified) >= Date.parse(task.lastModified));
  // a report must be about something of the ROR that exists
  const bad = body('Task', 'own');
  bad.focus = { reference: 'HealthcareService/inexistant' };
  const rb = await as('reader', 'Task', { method: 'POST', body: bad });
  assert.equal(rb.status, 400);
  assert.match(rb.json.issue[0].diagnostics, /introuvable/);
  // reports are not public
  assert.equal((await as('anonymous', `Task/${task.id}`)).status, 401);
});

test('GET /capacity/mine: the units a declarer or a manager may declare, and only those', async () => {
  const ids = async (who) => {
    const r = await as(who, '../capacity/mine');
    assert.equal(r.status, 200, r.text);
    return r.json.locations.map((l) => l.id);
  };
  const decl = await ids('declarer'); // bed-declarer of the Pitié EG
  for (const id of ['loc-pitie-rea', 'loc-pitie-usic', 'loc-pitie-bloc']) assert.ok(decl.includes(id), id);
  assert.ok(!decl.some((id) => /mondor|rdebre|mignot|sainte-anne/.test(id)), decl.join());
  const mgr = await ids('manager'); // manager of the AP-HP EJ, by its FINESS number
  for (const id of ['loc-pitie-rea', 'loc-mondor-rea', 'loc-rdebre-ped']) assert.ok(mgr.includes(id), id);
  assert.ok(!mgr.some((id) => /mignot|sainte-anne/.test(id)), mgr.join());
  // every unit listed really is writable by them: the form accepts it
  const loc = (await asAdmin('Location/loc-pitie-usic')).json;
  assert.equal((await as('declarer', '../capacity/Location/loc-pitie-usic', { method: 'POST', headers: { 'content-type': 'application/json' }, body: formFor(loc, 2) })).status, 200);
  assert.equal((await as('reader', '../capacity/mine')).status, 403);
  assert.equal((await as('anonymous', '../capacity/mine')).status, 401);
});

test('accounts managed by the ARS while the server runs (/admin/users)', async () => {
  const origin = new URL(srv.base).origin;
  const post = (path, body, who = 'admin', method = 'POST') => as(who, `${origin}${path}`, { method, headers: { 'content-type': 'application/json' }, body });
  const list = await as('admin', `${origin}/admin/users`);
  assert.equal(list.status, 200);
  assert.ok(list.json.users.some((u) => u.login === 'manager' && u.roles[0].role === 'establishment-manager'));
  assert.ok(!JSON.stringify(list.json).includes('argon2'), 'no password hash is ever shown');
  // only the ARS
  assert.equal((await as('manager', `${origin}/admin/users`)).status, 403);
  assert.equal((await post('/admin/users', { login: 'x', roles: [] }, 'manager')).status, 403);
  assert.equal((await as('anonymous', `${origin}/admin/users`)).status, 401);
  // bad roles are refused, nothing created
  for (const roles of [[{ role: 'bed-declarer' }], [{ role: 'root' }], [{ role: 'reader', profile: 9 }], [{ role: 'ars-admin', organization: 'x' }], 'ars-admin']) {
    const r = await post('/admin/users', { login: 'infirmier-nuit', roles });
    assert.equal(r.status, 400, JSON.stringify(roles));
  }
  assert.ok(!(await as('admin', `${origin}/admin/users`)).json.users.some((u) => u.login === 'infirmier-nuit'));
  // create: the password is shown once and works
  const made = await post('/admin/users', { login: 'infirmier-nuit', name: 'Infirmier de nuit', roles: [{ role: 'bed-declarer', organization: 'Organization/eg-pitie' }] });
  assert.equal(made.status, 200, made.text);
  assert.equal(made.json.updatedBy, ADMIN_LOGIN);
  const pw = made.json.newPassword;
  assert.ok(pw && pw.length >= 20);
  const login = (password) => raw(origin, '/auth/login', { method: 'POST', anonymous: true, headers: { 'content-type': 'application/json' }, body: JSON.stringify({ login: 'infirmier-nuit', password }) });
  const ok = await login(pw);
  assert.equal(ok.status, 200);
  assert.equal(ok.json.roles[0].role, 'bed-declarer');
  const cookie = ok.headers.get('set-cookie').split(';')[0];
  // roles changed, then disabled: its session ends at once
  const rr = await post('/admin/users/infirmier-nuit/roles', { roles: [{ role: 'reader' }] }, 'admin', 'PUT');
  assert.equal(rr.status, 200, rr.text);
  assert.deepEqual(rr.json.roles, [{ role: 'reader' }]);
  assert.equal((await raw(origin, '/auth/session', { headers: { cookie } })).json.roles[0].role, 'reader');
  assert.equal((await post('/admin/users/infirmier-nuit/disable', {})).status, 200);
  assert.equal((await raw(origin, '/auth/session', { headers: { cookie } })).json.login, null);
  assert.equal((await login(pw)).status, 401);
  assert.equal((await post('/admin/users/infirmier-nuit/enable', {})).status, 200);
  const np = await post('/admin/users/infirmier-nuit/password', {});
  assert.equal((await login(pw)).status, 401, 'the old password no longer works');
  assert.equal((await login(np.json.newPassword)).status, 200);
  assert.equal((await post(`/admin/users/${ADMIN_LOGIN}/disable`, {})).status, 400, 'not oneself');
  assert.equal((await post('/admin/users/personne/disable', {})).status, 404);
});

test('bad input on the access endpoints: a clear 400, nothing changed, the server still serving', async () => {
  const origin = new URL(srv.base).origin;
  for (const q of ['_count=0', '_count=5000', '_count=abc', 'before=-1', 'since=hier', 'until=2026-13-45']) {
    const r = await asAdmin(`${origin}/audit?${q}`);
    assert.equal(r.status, 400, q);
    assert.equal(r.json.resourceType, 'OperationOutcome', q);
  }
  assert.equal((await asAdmin(`${origin}/validation?status=perhaps`)).status, 400);
  assert.equal((await asAdmin(`${origin}/validation/abc/approve`, { method: 'POST' })).status, 400);
  const users = (await asAdmin(`${origin}/admin/users`)).json.users.length;
  for (const body of ['{', '[]', '{"login": 42}', '{"login": "a b"}', `{"login": "${'x'.repeat(200)}"}`]) {
    const r = await asAdmin(`${origin}/admin/users`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
    assert.equal(r.status, 400, body);
  }
  assert.equal((await asAdmin(`${origin}/admin/users`)).json.users.length, users, 'no account made');
  for (const body of ['', '{', '{"login": "x"}', '{"login": "", "password": "y"}', `{"login": "${'x'.repeat(300)}", "password": "y"}`]) {
    const r = await raw(origin, '/auth/login', { method: 'POST', anonymous: true, headers: { 'content-type': 'application/json' }, body });
    assert.equal(r.status, 400, body);
    assert.equal(r.json.resourceType, 'OperationOutcome');
  }
  for (const h of [{ 'Ror-Profil-Utilisateur-Code': '1'.repeat(5000), 'Ror-Profil-Utilisateur-System': 'x' }, { cookie: `ror_session=${'A'.repeat(3000)}` }]) {
    const r = await raw(srv.base, 'Organization/eg-pitie', { anonymous: true, headers: h });
    assert.ok([200, 403].includes(r.status), `${r.status}`);
  }
  assert.equal((await asAdmin('metadata')).status, 200, 'still serving');
});
