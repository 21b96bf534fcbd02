// GET /capacity/stream: Server-Sent Events of committed capacity changes; Last-Event-ID resume
// delivers every change since, none twice; filters by location and département.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, client, raw, fhirPatch, op, patchParams, SC_URL, adminHeaders } from './lib/ror.mjs';

let srv, fkc, origin;
before(async () => { srv = await startServer({ seed: true }); fkc = client(srv.base); origin = new URL(srv.base).origin; });
after(async () => { await srv?.stop(); });

const nbPath = (status) => `Location.extension.where(url='${SC_URL}' and extension.where(url='capacityStatus' and valueCodeableConcept.coding[0].code='${status}')).extension.where(url='nbCapacity')`;
const setAvailable = (id, n) => fhirPatch(fkc, `Location/${id}`, patchParams(op('replace', nbPath('02'), { value: { valueInteger: n } })));

/** An SSE client: frames parsed as they arrive. next() resolves with the next `capacity` event. */
async function open(query = '', lastEventId) {
  const ctrl = new AbortController();
  const headers = lastEventId === undefined ? {} : { 'Last-Event-ID': String(lastEventId) };
  const res = await fetch(`${origin}/capacity/stream${query}`, { headers: { ...adminHeaders(origin), ...headers }, signal: ctrl.signal });
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type'), /^text\/event-stream/);
  const reader = res.body.getReader();
  const dec = new TextDecoder();
  let buf = '';
  const queue = [];
  let waiter = null;
  let retry = null;
  (async () => {
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buf += dec.decode(value, { stream: true });
        let i;
        while ((i = buf.indexOf('\n\n')) >= 0) {
          const frame = buf.slice(0, i);
          buf = buf.slice(i + 2);
          const f = {};
          for (const line of frame.split('\n')) {
            if (line.startsWith(':')) continue;
            const k = line.slice(0, line.indexOf(':'));
            f[k] = line.slice(line.indexOf(':') + 1).trimStart();
          }
          if (f.retry) retry = Number(f.retry);
          if (f.event === 'capacity') {
            queue.push({ id: Number(f.id), ...JSON.parse(f.data) });
            if (waiter) { const w = waiter; waiter = null; w(); }
          }
        }
      }
    } catch { /* aborted */ }
  })();
  return {
    async next() {
      while (!queue.length) await new Promise((r) => { waiter = r; });
      return queue.shift();
    },
    pending: () => queue.length,
    retry: () => retry,
    close: () => ctrl.abort(),
  };
}

async function lastEventId() {
  let after = 0;
  for (;;) {
    const r = await raw(srv.base, `${origin}/capacity/events?after=${after}&_count=100`);
    if (!r.json.events.length) return after;
    after = r.json.events.at(-1).id;
  }
}

test('a committed bed update reaches a connected client, with its event id', { timeout: 30000 }, async () => {
  const s = await open();
  await setAvailable('loc-pitie-rea', 9);
  const e = await s.next();
  assert.equal(e.location, 'loc-pitie-rea');
  assert.equal(e.after, 9);
  assert.equal(e.dimensions.capacityStatus, '02');
  assert.equal(e.id, await lastEventId());
  assert.equal(s.retry(), 2000);
  s.close();
});

test('reconnecting with Last-Event-ID: every change since, in order, none twice, then live', { timeout: 30000 }, async () => {
  const s1 = await open();
  await setAvailable('loc-mondor-rea', 1); // the demo has 0
  const seen = await s1.next();
  s1.close();
  // while disconnected
  for (const n of [2, 3, 4]) await setAvailable('loc-mondor-rea', n);
  await setAvailable('loc-rdebre-ped', 7); // its count differs from the demo's (an unchanged count is no event)
  const s2 = await open('', seen.id);
  const got = [];
  for (let i = 0; i < 4; i++) got.push(await s2.next());
  assert.deepEqual(got.map((e) => [e.location, e.after]),
    [['loc-mondor-rea', 2], ['loc-mondor-rea', 3], ['loc-mondor-rea', 4], ['loc-rdebre-ped', 7]]);
  for (let i = 1; i < got.length; i++) assert.equal(got[i].id, got[i - 1].id + 1);
  assert.ok(got[0].id > seen.id);
  await setAvailable('loc-mondor-rea', 6);
  const live = await s2.next();
  assert.deepEqual([live.location, live.after, live.id], ['loc-mondor-rea', 6, got.at(-1).id + 1]);
  assert.equal(s2.pending(), 0, 'nothing twice');
  s2.close();
});

test('filters: one location, one département', { timeout: 30000 }, async () => {
  const byLoc = await open('?location=loc-sainte-anne-psy');
  const byDep = await open('?departement=94');
  const all = await open();
  await setAvailable('loc-pitie-rea', 21);      // Paris 75113
  await setAvailable('loc-mondor-rea', 22);     // Créteil 94028
  await setAvailable('loc-sainte-anne-psy', 23); // Paris 75114
  const a = [await all.next(), await all.next(), await all.next()];
  assert.deepEqual(a.map((e) => e.after), [21, 22, 23]);
  const d = await byDep.next();
  assert.deepEqual([d.location, d.after], ['loc-mondor-rea', 22]);
  const l = await byLoc.next();
  assert.deepEqual([l.location, l.after], ['loc-sainte-anne-psy', 23]);
  // a later event for the filtered stream comes next, not the ones it filtered out
  await setAvailable('loc-mondor-rea', 24);
  assert.equal((await byDep.next()).after, 24);
  assert.equal(byLoc.pending(), 0);
  for (const s of [byLoc, byDep, all]) s.close();
});

test('bad stream requests get an OperationOutcome', { timeout: 30000 }, async () => {
  const r = await raw(srv.base, `${origin}/capacity/stream?region=11`);
  assert.equal(r.status, 400);
  const r2 = await fetch(`${origin}/capacity/stream`, { headers: { ...adminHeaders(origin), 'Last-Event-ID': 'abc' } });
  assert.equal(r2.status, 400);
  assert.equal((await r2.json()).resourceType, 'OperationOutcome');
});

test('the server stops cleanly with streams open', { timeout: 30000 }, async () => {
  const own = await startServer({ seed: true });
  const res = await fetch(`${new URL(own.base).origin}/capacity/stream`, { headers: adminHeaders(own.base) });
  assert.equal(res.status, 200);
  const reader = res.body.getReader();
  await reader.read(); // the greeting: the stream is established
  await own.stop(); // throws unless the process exits with status 0
  const end = await reader.read().catch(() => ({ done: true }));
  assert.equal(end.done, true);
});

test('streams are capped (--max-streams): one more gets 503 with Retry-After, other requests still served', { timeout: 30000 }, async () => {
  const own = await startServer({ seed: true, args: ['--max-streams', '2'] });
  const o = new URL(own.base).origin;
  try {
    const streams = [];
    for (let i = 0; i < 2; i++) {
      const ctrl = new AbortController();
      const res = await fetch(`${o}/capacity/stream`, { headers: adminHeaders(o), signal: ctrl.signal });
      assert.equal(res.status, 200);
      const reader = res.body.getReader();
      await reader.read(); // established
      streams.push({ ctrl, reader });
    }
    const third = await fetch(`${o}/capacity/stream`, { headers: adminHeaders(o) });
    assert.equal(third.status, 503);
    assert.equal(third.headers.get('retry-after'), '5');
    const oo = await third.json();
    assert.equal(oo.resourceType, 'OperationOutcome');
    assert.match(oo.issue[0].diagnostics, /flux/);
    assert.equal((await raw(own.base, 'metadata')).status, 200, 'the rest of the server answers');
    // a stream closed frees its place: the server notices the disconnect when it next writes to
    // it (an event, or the keep-alive), so make an event, then poll with a deadline
    streams[0].ctrl.abort();
    const ownFkc = client(own.base);
    let again;
    for (let n = 1, deadline = Date.now() + 20000; Date.now() < deadline; n++) {
      await fhirPatch(ownFkc, 'Location/loc-pitie-rea', patchParams(op('replace', nbPath('02'), { value: { valueInteger: n } })));
      again = await fetch(`${o}/capacity/stream`, { headers: adminHeaders(o) });
      if (again.status === 200) break;
      await again.body?.cancel();
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.equal(again.status, 200);
    await again.body.cancel();
    streams[1].ctrl.abort();
  } finally {
    await own.stop();
  }
});
