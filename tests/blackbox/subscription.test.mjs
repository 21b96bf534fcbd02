// FHIR R4 topic-based Subscriptions (subscriptions backport, rest-hook) on capacity changes: a
// local HTTP server receives the notifications. Expected events come from the server's own
// capacity feed (GET /capacity/events) and the demo JSON (départements), never from the
// notifications themselves: in order, numbered 1..n without gap or repeat, focus and payload as
// asked, filters applied, failures retried without loss, resumed across a restart, deletions
// honoured, bad subscriptions refused (400, nothing stored).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { startServer, raw, freshDir, demoOf, FHIR_JSON } from './lib/ror.mjs';

const TOPIC = 'https://ror.esante.local/SubscriptionTopic/capacity';
const BP = 'http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/';
const WAIT_MS = 30000;

let srv, rcv;
before(async () => {
  srv = await startServer({ seed: true });
  rcv = await receiver();
});
after(async () => {
  await srv?.stop();
  await rcv?.close();
});

/** The receiving endpoint: records every POST by path; per-path status (default 200). */
async function receiver() {
  const got = []; // { path, headers, bundle, status }
  const fail = new Map(); // path -> status to answer
  let listeners = [];
  const server = http.createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (d) => { body += d; });
    req.on('end', () => {
      const status = fail.get(req.url) ?? 200;
      let bundle;
      try { bundle = JSON.parse(body); } catch { bundle = { invalid: body }; }
      got.push({ path: req.url, headers: req.headers, bundle, status });
      res.writeHead(status, { 'content-type': 'text/plain' });
      res.end(status === 200 ? 'ok' : 'panne');
      const ls = listeners;
      listeners = [];
      for (const l of ls) l();
    });
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const base = `http://127.0.0.1:${server.address().port}`;
  return {
    url: (path) => `${base}${path}`,
    got,
    failWith(path, status) { if (status) fail.set(path, status); else fail.delete(path); },
    /** Resolves once cond() holds (checked at each arrival); rejects after ms. */
    waitFor(cond, what, ms = WAIT_MS) {
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`timeout: ${what}\n${summary(got)}`)), ms);
        const check = () => {
          let ok = false;
          try { ok = cond(); } catch (e) { clearTimeout(timer); reject(e); return; }
          if (ok) { clearTimeout(timer); resolve(); } else listeners.push(check);
        };
        check();
      });
    },
    close: () => new Promise((r) => { server.closeAllConnections?.(); server.close(r); }),
  };
}

const summary = (got) => got.slice(-12).map((g) => `${g.status} ${g.path} ${kind(g.bundle)} ${numbers(g.bundle).join(',')}`).join('\n');

// ---- reading notifications ----
const statusOf = (bundle) => bundle.entry[0].resource;
const param = (params, name) => params.parameter.filter((p) => p.name === name);
const kind = (bundle) => (bundle.entry ? param(statusOf(bundle), 'type')[0]?.valueCode : '?');
const part = (p, name) => p.part.find((x) => x.name === name);
const eventsOf = (bundle) => param(statusOf(bundle), 'notification-event').map((p) => ({
  number: Number(part(p, 'event-number').valueString),
  timestamp: part(p, 'timestamp').valueInstant,
  focus: part(p, 'focus')?.valueReference.reference,
}));
const numbers = (bundle) => (bundle.entry ? eventsOf(bundle).map((e) => e.number) : []);
/** Accepted (2xx) notifications at `path`, of a type. */
const received = (path, type = 'event-notification') => rcv.got.filter((g) => g.path === path && g.status === 200 && kind(g.bundle) === type);
const deliveredEvents = (path) => received(path).flatMap((g) => eventsOf(g.bundle));

// ---- server side ----
const origin = () => new URL(srv.base).origin;

async function feed(after = 0, s = srv) {
  const out = [];
  for (;;) {
    const r = await raw(s.base, `${new URL(s.base).origin}/capacity/events?after=${after}&_count=1000`);
    assert.equal(r.status, 200, r.text);
    out.push(...r.json.events);
    if (r.json.events.length < 1000) return out;
    after = r.json.events.at(-1).id;
  }
}
const lastEventId = async (s = srv) => (await feed(0, s)).at(-1)?.id ?? 0;

/** One capacity change of a Location (a new count for its first indicator): one event. */
let counter = 0;
async function bump(id, s = srv) {
  const o = new URL(s.base).origin;
  const cur = await raw(s.base, `${o}/capacity/Location/${id}`);
  assert.equal(cur.status, 200, cur.text);
  const dims = cur.json.indicators[0].dimensions;
  const r = await raw(s.base, `${o}/capacity/Location/${id}`, {
    method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ indicators: [{ ...dims, nbCapacity: 100 + (++counter % 900) }] }),
  });
  assert.equal(r.status, 200, r.text);
  return r.json.version;
}

function subscription(path, { content = 'id-only', filters = [], status = 'requested', headers, heartbeat } = {}) {
  const channel = {
    type: 'rest-hook', endpoint: rcv.url(path), payload: 'application/fhir+json',
    _payload: { extension: [{ url: `${BP}backport-payload-content`, valueCode: content }] },
  };
  if (headers) channel.header = headers;
  if (heartbeat) channel.extension = [{ url: `${BP}backport-heartbeat-period`, valueUnsignedInt: heartbeat }];
  const sub = { resourceType: 'Subscription', status, reason: 'test des notifications de capacité', criteria: TOPIC, channel };
  if (filters.length) sub._criteria = { extension: filters.map((f) => ({ url: `${BP}backport-filter-criteria`, valueString: f })) };
  return sub;
}

async function create(sub, s = srv) {
  const r = await raw(s.base, 'Subscription', { method: 'POST', headers: FHIR_JSON, body: JSON.stringify(sub) });
  assert.equal(r.status, 201, r.text);
  return r.json;
}

/** Bounded re-reading until fn() resolves truthy (server-side state saved just after a reply). */
async function eventually(fn, what, ms = WAIT_MS) {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timeout: ${what}`);
    await new Promise((r) => setImmediate(r));
  }
}
const readSub = async (id, s = srv) => (await raw(s.base, `Subscription/${id}`)).json;
async function statusParams(id, s = srv) {
  const r = await raw(s.base, `Subscription/${id}/$status`);
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.type, 'searchset');
  assert.equal(r.json.entry.length, 1);
  return r.json.entry[0].resource;
}
const value = (params, name) => { const p = param(params, name)[0]; return p && (p.valueCode ?? p.valueString ?? p.valueCodeableConcept?.text ?? p.valueReference?.reference); };

/** The notifications at `path` carry exactly `expected` (feed events), numbered 1..n in order. */
function assertDelivered(path, expected) {
  const got = deliveredEvents(path);
  assert.deepEqual(got.map((e) => e.number), expected.map((_, i) => i + 1), 'numbers 1..n, no gap, no repeat');
  assert.deepEqual(got.map((e) => e.focus ?? null), expected.map((e) => `Location/${e.location}`), 'focus, in commit order');
  assert.deepEqual(got.map((e) => e.timestamp), expected.map((e) => e.at), 'timestamps of the events');
  for (const g of received(path)) { // each notification: count so far = its last number
    const ns = numbers(g.bundle);
    assert.equal(Number(value(statusOf(g.bundle), 'events-since-subscription-start')), ns.at(-1));
    assert.ok(ns.length >= 1 && ns.length <= 100);
  }
}

const departementOf = (l) => {
  const cog = l.extension.find((e) => e.url.endsWith('ror-commune-cog')).valueCodeableConcept.coding[0].code;
  return cog.startsWith('97') ? cog.slice(0, 3) : cog.slice(0, 2);
};
const UNITS = demoOf('Location').filter((l) => (l.extension || []).some((e) => e.url.endsWith('ror-location-supported-capacity'))).map((l) => l.id);

// ------------------------------------------------------------------ tests

test('handshake, then every capacity change in commit order, numbered without gap (id-only)', { timeout: 90000 }, async () => {
  const path = '/hook/all';
  const start = await lastEventId();
  const sub = await create(subscription(path, { headers: ['Authorization: Bearer jeton-secret'] }));
  await rcv.waitFor(() => received(path, 'handshake').length === 1, 'handshake');
  const hs = received(path, 'handshake')[0];
  assert.equal(hs.headers.authorization, 'Bearer jeton-secret');
  assert.match(hs.headers['content-type'], /^application\/fhir\+json/);
  assert.equal(hs.bundle.resourceType, 'Bundle');
  assert.equal(hs.bundle.type, 'history');
  const hp = statusOf(hs.bundle);
  assert.equal(hp.resourceType, 'Parameters');
  assert.equal(value(hp, 'subscription'), `Subscription/${sub.id}`);
  assert.equal(param(hp, 'topic')[0].valueCanonical, TOPIC);
  assert.equal(value(hp, 'status'), 'requested');
  assert.equal(value(hp, 'events-since-subscription-start'), '0');
  assert.equal(hs.bundle.entry[0].request.url, `Subscription/${sub.id}/$status`);
  await eventually(async () => (await readSub(sub.id)).status === 'active', 'status active after the handshake');

  // sequential changes on several units, then a concurrent burst (group commits, batches)
  for (const id of ['loc-pitie-rea', 'loc-mondor-rea', 'loc-rdebre-ped', 'loc-pitie-rea', 'loc-sainte-anne-psy']) await bump(id);
  await Promise.all(Array.from({ length: 30 }, (_, i) => bump(UNITS[i % UNITS.length])));
  const expected = (await feed(start));
  assert.equal(expected.length, 35);
  await rcv.waitFor(() => deliveredEvents(path).length >= expected.length, `${expected.length} events`);
  assertDelivered(path, expected);
  // id-only: one entry per Location version, its address and version, no resource
  for (const g of received(path)) {
    const evs = eventsOf(g.bundle);
    const focusEntries = g.bundle.entry.slice(1);
    assert.ok(focusEntries.length >= 1 && focusEntries.length <= evs.length);
    for (const e of focusEntries) {
      assert.equal(e.resource, undefined);
      assert.match(e.fullUrl, /^Location\/[\w.-]+$/);
      assert.equal(e.request.url, e.fullUrl);
      assert.ok(evs.some((x) => x.focus === e.fullUrl));
    }
  }
  const versions = new Set(received(path).flatMap((g) => g.bundle.entry.slice(1).map((e) => `${e.fullUrl}@${e.response.etag}`)));
  assert.deepEqual(versions, new Set(expected.map((e) => `Location/${e.location}@W/"${e.version}"`)));

  const st = await eventually(async () => { const p = await statusParams(sub.id); return value(p, 'events-since-subscription-start') === String(expected.length) && p; }, '$status count');
  assert.equal(value(st, 'status'), 'active');
  assert.equal(value(st, 'type'), 'query-status');
  assert.equal(param(st, 'error').length, 0);
  assert.equal(received(path, 'handshake').length, 1, 'one handshake only');
});

test('payload content: empty carries no focus; full-resource carries the Location version', { timeout: 60000 }, async () => {
  const start = await lastEventId();
  await create(subscription('/hook/empty', { content: 'empty', status: 'active' }));
  await create(subscription('/hook/full', { content: 'full-resource' }));
  await rcv.waitFor(() => received('/hook/empty', 'handshake').length && received('/hook/full', 'handshake').length, 'handshakes');
  const version = await bump('loc-mondor-rea');
  const expected = await feed(start);
  assert.equal(expected.length, 1);
  await rcv.waitFor(() => deliveredEvents('/hook/empty').length && deliveredEvents('/hook/full').length, 'both notified');

  const empty = received('/hook/empty')[0].bundle;
  assert.equal(empty.entry.length, 1, 'status only');
  assert.deepEqual(eventsOf(empty).map((e) => [e.number, e.focus, e.timestamp]), [[1, undefined, expected[0].at]]);

  const full = received('/hook/full')[0].bundle;
  assertDelivered('/hook/full', expected);
  assert.equal(full.entry.length, 2);
  const loc = full.entry[1].resource;
  assert.equal(loc.resourceType, 'Location');
  assert.equal(loc.id, 'loc-mondor-rea');
  assert.equal(loc.meta.versionId, String(version));
  const cur = await raw(srv.base, 'Location/loc-mondor-rea');
  assert.deepEqual(loc, cur.json, 'the version that made the change');
});

test('filters: by département, by units; nothing else is sent', { timeout: 60000 }, async () => {
  const byDep = Object.fromEntries(demoOf('Location').map((l) => [l.id, departementOf(l)]));
  const start = await lastEventId();
  await create(subscription('/hook/dep94', { filters: ['Location?departement=94'] }));
  await create(subscription('/hook/units', { filters: ['location=loc-rdebre-ped,Location/loc-mignot-mater'] }));
  await rcv.waitFor(() => received('/hook/dep94', 'handshake').length && received('/hook/units', 'handshake').length, 'handshakes');
  for (const id of ['loc-pitie-rea', 'loc-mondor-rea', 'loc-rdebre-ped', 'loc-mignot-mater', 'loc-sainte-anne-psy', 'loc-mondor-rea', 'loc-pitie-usic']) await bump(id);
  // sentinels last: anything unwanted would have come before them (order is kept)
  await bump('loc-mondor-rea');
  await bump('loc-mignot-mater');
  const all = await feed(start);
  const dep94 = all.filter((e) => byDep[e.location] === '94');
  const units = all.filter((e) => ['loc-rdebre-ped', 'loc-mignot-mater'].includes(e.location));
  assert.equal(dep94.length, 3);
  assert.equal(units.length, 3);
  await rcv.waitFor(() => deliveredEvents('/hook/dep94').length >= 3 && deliveredEvents('/hook/units').length >= 3, 'filtered events');
  assertDelivered('/hook/dep94', dep94);
  assertDelivered('/hook/units', units);
});

test('an endpoint failing then recovering: retried, nothing lost, order kept, status error meanwhile', { timeout: 90000 }, async () => {
  const path = '/hook/flaky';
  const start = await lastEventId();
  const sub = await create(subscription(path));
  await rcv.waitFor(() => received(path, 'handshake').length === 1, 'handshake');
  await bump('loc-pitie-rea');
  await rcv.waitFor(() => deliveredEvents(path).length === 1, 'first event');

  rcv.failWith(path, 500);
  const attempts = () => rcv.got.filter((g) => g.path === path && g.status === 500);
  await bump('loc-mondor-rea');
  await bump('loc-pitie-rea');
  await rcv.waitFor(() => attempts().length >= 2, 'a retry after a 500');
  // the failure was saved before the retry was made
  assert.equal((await readSub(sub.id)).status, 'error');
  const st = await statusParams(sub.id);
  assert.equal(value(st, 'status'), 'error');
  assert.equal(value(st, 'events-since-subscription-start'), '1');
  assert.match(value(st, 'error'), /500/);
  // every attempt carried the undelivered events again, from number 2, in order
  for (const a of attempts()) assert.deepEqual(numbers(a.bundle), [2, 3].slice(0, numbers(a.bundle).length));
  assert.ok(attempts().every((a) => value(statusOf(a.bundle), 'status') === (a === attempts()[0] ? 'active' : 'error')));

  rcv.failWith(path, 0);
  await bump('loc-rdebre-ped');
  const expected = await feed(start);
  assert.equal(expected.length, 4);
  await rcv.waitFor(() => deliveredEvents(path).length >= 4, 'all four after recovery');
  assertDelivered(path, expected);
  await eventually(async () => (await readSub(sub.id)).status === 'active', 'active again');
  const after = await eventually(async () => { const p = await statusParams(sub.id); return value(p, 'events-since-subscription-start') === '4' && p; }, '$status after recovery');
  assert.equal(param(after, 'error').length, 0);
});

test('a restart in the middle resumes where the receiver is: no loss, no repeat, no new handshake', { timeout: 120000 }, async () => {
  const path = '/hook/restart';
  const dir = freshDir('ror-bb-subs-');
  let s2 = await startServer({ seed: true, dataDir: dir });
  try {
    const start = await lastEventId(s2);
    const sub = await create(subscription(path), s2);
    await rcv.waitFor(() => received(path, 'handshake').length === 1, 'handshake');
    for (const id of ['loc-pitie-rea', 'loc-mondor-rea', 'loc-rdebre-ped']) await bump(id, s2);
    await rcv.waitFor(() => deliveredEvents(path).length === 3, 'three events before the restart');
    // the receiver goes down; more changes; the server stops with them undelivered
    rcv.failWith(path, 503);
    for (const id of ['loc-mignot-mater', 'loc-pitie-usic', 'loc-pitie-rea']) await bump(id, s2);
    await rcv.waitFor(() => rcv.got.some((g) => g.path === path && g.status === 503), 'a failed attempt');
    const before = await feed(start, s2);
    await s2.stop({ removeDir: false });
    rcv.failWith(path, 0);
    s2 = await startServer({ dataDir: dir });
    await rcv.waitFor(() => deliveredEvents(path).length >= 6, 'the backlog after the restart');
    for (const id of ['loc-sainte-anne-psy', 'loc-mondor-rea']) await bump(id, s2);
    const expected = await feed(start, s2);
    assert.equal(expected.length, 8);
    assert.deepEqual(expected.slice(0, 6), before);
    await rcv.waitFor(() => deliveredEvents(path).length >= 8, 'all eight');
    assertDelivered(path, expected);
    assert.equal(received(path, 'handshake').length, 1, 'the handshake was not repeated');
    assert.equal((await readSub(sub.id, s2)).status !== 'requested', true);
  } finally {
    await s2.stop({ removeDir: true });
  }
});

test('bad subscriptions: 400 OperationOutcome in French, nothing stored', { timeout: 60000 }, async () => {
  const count = async () => (await raw(srv.base, 'Subscription?_summary=count')).json.total;
  const n0 = await count();
  const good = subscription('/hook/never');
  const bad = (edit) => { const s = structuredClone(good); edit(s); return s; };
  const cases = [
    ['criteria', bad((s) => { s.criteria = 'Location?_id=loc-pitie-rea'; })],
    ['criteria', bad((s) => { delete s.criteria; })],
    ['reason', bad((s) => { delete s.reason; })],
    ['status', bad((s) => { s.status = 'bientôt'; })],
    ['channel.type', bad((s) => { s.channel.type = 'websocket'; })],
    ['channel.endpoint', bad((s) => { s.channel.endpoint = 'ftp://127.0.0.1/x'; })],
    ['channel.endpoint', bad((s) => { delete s.channel.endpoint; })],
    ['channel.endpoint', bad((s) => { s.channel.endpoint = 'http://exemple.fr/a b'; })],
    ['channel.payload', bad((s) => { s.channel.payload = 'application/fhir+xml'; })],
    ['backport-payload-content', bad((s) => { s.channel._payload.extension[0].valueCode = 'tout'; })],
    ['filtre', bad((s) => { s._criteria = { extension: [{ url: `${BP}backport-filter-criteria`, valueString: 'Location?region=11' }] }; })],
    ['departement', bad((s) => { s._criteria = { extension: [{ url: `${BP}backport-filter-criteria`, valueString: 'departement=7' }] }; })],
    ['location', bad((s) => { s._criteria = { extension: [{ url: `${BP}backport-filter-criteria`, valueString: 'location=pas un id' }] }; })],
    ['channel.header', bad((s) => { s.channel.header = ['X-Jeton: a\r\nX-Autre: b']; })],
    ['channel.header', bad((s) => { s.channel.header = ['Content-Type: text/plain']; })],
    ['channel.header', bad((s) => { s.channel.header = ['sans deux-points']; })],
    ['backport-heartbeat-period', bad((s) => { s.channel.extension = [{ url: `${BP}backport-heartbeat-period`, valueUnsignedInt: -5 }]; })],
    ['backport-timeout', bad((s) => { s.channel.extension = [{ url: `${BP}backport-timeout`, valueUnsignedInt: 3600 }]; })],
    ['channel', bad((s) => { delete s.channel; })],
  ];
  for (const [what, body] of cases) {
    const r = await raw(srv.base, 'Subscription', { method: 'POST', headers: FHIR_JSON, body: JSON.stringify(body) });
    assert.equal(r.status, 400, `${what}: ${r.text}`);
    assert.equal(r.json.resourceType, 'OperationOutcome');
    assert.ok(r.json.issue[0].diagnostics.includes(what), `${what}: ${r.json.issue[0].diagnostics}`);
  }
  assert.equal(await count(), n0, 'nothing stored');
  // an update to an invalid one is refused too, and the stored one is unchanged
  const sub = await create(subscription('/hook/put', { status: 'off' }));
  const r = await raw(srv.base, `Subscription/${sub.id}`, { method: 'PUT', headers: FHIR_JSON, body: JSON.stringify({ ...sub, criteria: 'Patient?' }) });
  assert.equal(r.status, 400, r.text);
  assert.deepEqual(await readSub(sub.id), sub);
  assert.equal(rcv.got.filter((g) => g.path === '/hook/never' || g.path === '/hook/put').length, 0, 'off: nothing sent');
});

test('deleting a subscription stops its deliveries; heartbeats when asked', { timeout: 60000 }, async () => {
  const a = await create(subscription('/hook/deleted'));
  const kept = await create(subscription('/hook/kept', { heartbeat: 1 }));
  await rcv.waitFor(() => received('/hook/deleted', 'handshake').length && received('/hook/kept', 'handshake').length, 'handshakes');
  await bump('loc-pitie-rea');
  await rcv.waitFor(() => deliveredEvents('/hook/deleted').length === 1 && deliveredEvents('/hook/kept').length === 1, 'both notified');
  const del = await raw(srv.base, `Subscription/${a.id}`, { method: 'DELETE' });
  assert.equal(del.status, 200, del.text);
  await bump('loc-mondor-rea');
  await bump('loc-pitie-usic');
  await rcv.waitFor(() => deliveredEvents('/hook/kept').length === 3, 'the kept one got both');
  assert.equal(rcv.got.filter((g) => g.path === '/hook/deleted').length, 2, 'handshake and the first event only');
  assert.equal((await raw(srv.base, `Subscription/${a.id}/$status`)).status, 410);
  // the one with a 1 s heartbeat period gets heartbeats while nothing happens
  const n = received('/hook/kept', 'heartbeat').length;
  await rcv.waitFor(() => received('/hook/kept', 'heartbeat').length >= n + 2, 'two heartbeats', 10000);
  const hb = statusOf(received('/hook/kept', 'heartbeat').at(-1).bundle);
  assert.equal(value(hb, 'events-since-subscription-start'), '3');
  assert.equal(param(hb, 'notification-event').length, 0);
  // type-level $status: the kept one, not the deleted one
  const all = await raw(srv.base, 'Subscription/$status?status=active');
  assert.equal(all.status, 200, all.text);
  const listed = all.json.entry.map((e) => value(e.resource, 'subscription').split('/').pop());
  assert.ok(listed.includes(kept.id));
  assert.ok(!listed.includes(a.id));
});
