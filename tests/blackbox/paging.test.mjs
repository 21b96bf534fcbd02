// 3. Paging across many pages stays stable (no duplicates, no gaps) while writes happen between pages.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, client, raw, matchIds, expectFail } from './lib/ror.mjs';

let srv, fkc;
const N = 50;
const PAGE = 7;
const paged = []; // ids of the 50 paged Practitioners, in creation order
const others = [];
const SYS = 'urn:bb:paging';

before(async () => {
  srv = await startServer({ seed: true });
  fkc = client(srv.base);
  for (let i = 0; i < N; i++) {
    const r = await fkc.create({ resourceType: 'Practitioner', body: {
      resourceType: 'Practitioner', identifier: [{ system: SYS, value: `p-${i}` }],
      name: [{ family: 'PAGED', given: [`g${String(i).padStart(3, '0')}`] }],
    } });
    paged.push(r.id);
  }
  for (let i = 0; i < 5; i++) {
    const r = await fkc.create({ resourceType: 'Practitioner', body: { resourceType: 'Practitioner', name: [{ family: 'OTHER', given: [`o${i}`] }] } });
    others.push(r);
  }
});
after(async () => { await srv?.stop(); });

let k = 0;
/** Writes between two page fetches: creates/updates/deletes of other resources, update of a paged one. */
async function interleave(pageNo) {
  const created = await fkc.create({ resourceType: 'Practitioner', body: { resourceType: 'Practitioner', name: [{ family: 'OTHER', given: [`n${k++}`] }] } });
  others.push(created);
  const o = others[pageNo % others.length];
  const cur = await fkc.read({ resourceType: 'Practitioner', id: o.id }).catch(() => null);
  if (cur) await fkc.update({ resourceType: 'Practitioner', id: o.id, body: { ...cur, active: pageNo % 2 === 0 } });
  const victim = others.splice(0, 1)[0];
  await fkc.delete({ resourceType: 'Practitioner', id: victim.id });
  // update one already-seen paged resource and one not yet seen (sort keys untouched)
  for (const id of [paged[(pageNo * PAGE) % N], paged[(pageNo * PAGE + 20) % N]]) {
    const p = await fkc.read({ resourceType: 'Practitioner', id });
    await fkc.update({ resourceType: 'Practitioner', id, body: { ...p, active: !p.active, gender: pageNo % 2 ? 'female' : 'male' } });
  }
  // and some Organization churn
  await fkc.create({ resourceType: 'Organization', body: { resourceType: 'Organization', name: `CHURN ${pageNo}` } });
}

async function walk(params, { onPage } = {}) {
  const pages = [];
  let b = await fkc.search({ resourceType: 'Practitioner', searchParams: params });
  for (;;) {
    pages.push(b);
    assert.ok(pages.length < 50, 'runaway paging');
    if (onPage) await onPage(pages.length);
    const next = fkc.nextPage({ bundle: b });
    if (!next) break;
    b = await next;
  }
  return pages;
}

test(`default order: ${N} resources, _count=${PAGE}, writes between pages -> each exactly once`, async () => {
  const pages = await walk({ family: 'PAGED', _count: PAGE }, { onPage: interleave });
  assert.equal(pages.length, Math.ceil(N / PAGE));
  const seen = pages.flatMap(matchIds);
  for (const p of pages) {
    assert.ok(matchIds(p).length <= PAGE);
    assert.equal(p.total, N);
  }
  assert.equal(new Set(seen).size, seen.length, 'no duplicates');
  assert.deepEqual([...seen].sort(), [...paged].sort(), 'no gaps');
  assert.equal(pages.at(-1).link.find((l) => l.relation === 'next'), undefined);
});

test('_sort=given: keyset order kept across pages while new matching resources and updates arrive', async () => {
  const added = [];
  const pages = await walk({ family: 'PAGED', _sort: 'given', _count: PAGE }, {
    onPage: async (n) => {
      await interleave(n + 100);
      // a new matching resource sorting before everything (already passed) and one after everything
      for (const g of [`a-new-${n}`, `z-new-${n}`]) {
        const r = await fkc.create({ resourceType: 'Practitioner', body: { resourceType: 'Practitioner', name: [{ family: 'PAGED', given: [g] }] } });
        added.push(r.id);
      }
    },
  });
  const entries = pages.flatMap((p) => p.entry.filter((e) => e.search?.mode !== 'outcome'));
  const seen = entries.map((e) => e.resource.id);
  assert.equal(new Set(seen).size, seen.length, 'no duplicates');
  for (const id of paged) assert.ok(seen.includes(id), `original ${id} present`);
  for (const id of seen) assert.ok(paged.includes(id) || added.includes(id), 'only matching resources');
  const givens = entries.map((e) => e.resource.name[0].given[0]);
  assert.deepEqual(givens, [...givens].sort(), 'ascending across pages');
  assert.ok(!givens.some((g) => g.startsWith('a-new')), 'resources sorting before the cursor are not injected later');
  assert.ok(givens.filter((g) => g.startsWith('z-new')).length >= 1, 'resources sorting after the cursor do appear');
  assert.ok(pages.length >= Math.ceil(N / PAGE));
});

test('_sort=-given with _total=none: same set in exactly reversed order', async () => {
  const asc = (await walk({ family: 'PAGED', _sort: 'given', _count: 13 })).flatMap(matchIds);
  const pages = await walk({ family: 'PAGED', _sort: '-given', _count: 13, _total: 'none' });
  for (const p of pages) assert.equal(p.total, undefined);
  assert.deepEqual(pages.flatMap(matchIds), [...asc].reverse());
});

test('a tampered or foreign cursor is rejected with 400, not silently restarted', async () => {
  const first = await fkc.search({ resourceType: 'Practitioner', searchParams: { family: 'PAGED', _count: PAGE } });
  const next = first.link.find((l) => l.relation === 'next').url;
  const u = new URL(next);
  u.searchParams.set('_cursor', 'garbage!!');
  const r = await raw(srv.base, u.toString());
  assert.equal(r.status, 400);
  assert.equal(r.json?.resourceType, 'OperationOutcome');
  const bad = await expectFail(fkc.search({ resourceType: 'Practitioner', searchParams: { family: 'PAGED', _count: 'abc' } }));
  assert.equal(bad.status, 400);
});

test('_count above the maximum is capped at 200', async () => {
  for (let i = 0; i < 160; i++) {
    await fkc.create({ resourceType: 'Practitioner', body: { resourceType: 'Practitioner', name: [{ family: 'MANY' }] } });
  }
  const all = await fkc.search({ resourceType: 'Practitioner', searchParams: { _count: 1000 } });
  assert.ok(all.total > 200, `total ${all.total}`);
  assert.equal(matchIds(all).length, 200);
  assert.ok(all.link.find((l) => l.relation === 'next'));
  const dflt = await fkc.search({ resourceType: 'Practitioner' });
  assert.equal(matchIds(dflt).length, 200, 'default page size is 200');
});
