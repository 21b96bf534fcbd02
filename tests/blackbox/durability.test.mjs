// 6. Durability: every acknowledged write survives a SIGKILL in the middle of a write stream.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { startServer, client, freshDir, responseOf } from './lib/ror.mjs';

const dir = freshDir('ror-bb-dur-');
after(() => rmSync(dir, { recursive: true, force: true }));

const CONCURRENCY = 8;
const acked = new Map(); // id -> resource as returned with the 201, across all rounds

// Three crash rounds on the same data dir: early kill, mid-stream kill, and a kill after a restart.
for (const [round, KILL_AFTER] of [[1, 40], [2, 300], [3, 150]]) {
  test(`round ${round}: SIGKILL after ${KILL_AFTER} acknowledged creates (concurrency ${CONCURRENCY}); every acked write (all rounds) readable after restart`, async () => {
    const srv = await startServer({ dataDir: dir });
    const fkc = client(srv.base);
    // a resource that one worker keeps updating: its last acknowledged version must survive too
    const hot = await fkc.update({ resourceType: 'Organization', id: `dur-hot-${round}`, body: { resourceType: 'Organization', id: `dur-hot-${round}`, name: 'HOT v0' } });
    let hotAcked = hot;
    const start = acked.size;
    let killed = false;
    let seq = 0;
    let errors = 0; // in-flight requests cut by the kill: expected, not counted
    const killNow = () => { if (!killed) { killed = true; srv.kill(); } };

    const creator = async (w) => {
      while (!killed) {
        const n = seq++;
        const body = {
          resourceType: 'Practitioner',
          identifier: [{ system: 'urn:bb:durability', value: `r${round}-w${w}-n${n}` }],
          name: [{ family: `DURABLE${n}`, given: ['x'.repeat(n % 50)] }],
          extension: [{ url: 'http://example.org/bb-seq', valueDecimal: n + 0.25 }],
        };
        try {
          const r = await fkc.create({ resourceType: 'Practitioner', body });
          if (responseOf(r).status === 201) acked.set(r.id, r);
          if (acked.size - start >= KILL_AFTER) killNow();
        } catch { errors++; }
      }
    };
    const updater = async () => {
      let v = 1;
      while (!killed) {
        try {
          const r = await fkc.update({ resourceType: 'Organization', id: `dur-hot-${round}`, body: { resourceType: 'Organization', id: `dur-hot-${round}`, name: `HOT v${v++}` } });
          if (Number(r.meta.versionId) > Number(hotAcked.meta.versionId)) hotAcked = r;
        } catch { errors++; }
      }
    };
    await Promise.all([...Array.from({ length: CONCURRENCY - 1 }, (_, w) => creator(w)), updater()]);
    const ex = await srv.exited;
    assert.equal(ex.signal, 'SIGKILL');
    assert.ok(acked.size - start >= KILL_AFTER, `${acked.size - start} acks`);

    const srv2 = await startServer({ dataDir: dir });
    try {
      const fkc2 = client(srv2.base);
      const missing = [];
      const differ = [];
      const ids = [...acked.keys()];
      for (let i = 0; i < ids.length; i += 16) {
        await Promise.all(ids.slice(i, i + 16).map(async (id) => {
          try {
            const r = await fkc2.read({ resourceType: 'Practitioner', id });
            try { assert.deepEqual(r, acked.get(id)); } catch { differ.push(id); }
          } catch (e) { missing.push(`${id}: ${e.response?.status ?? e.message}`); }
        }));
      }
      assert.deepEqual(missing, [], `acknowledged creates lost after SIGKILL (${missing.length}/${ids.length})`);
      assert.deepEqual(differ, [], 'acknowledged content differs after restart');
      const count = await fkc2.search({ resourceType: 'Practitioner', searchParams: { _summary: 'count' } });
      assert.ok(count.total >= acked.size, `count ${count.total} >= acked ${acked.size}`);
      // identifiers are indexed for the recovered resources too
      const some = [...acked.values()][Math.floor(acked.size / 2)];
      const s = await fkc2.search({ resourceType: 'Practitioner', searchParams: { identifier: `urn:bb:durability|${some.identifier[0].value}` } });
      assert.deepEqual(s.entry.map((e) => e.resource.id), [some.id]);

      const hotNow = await fkc2.read({ resourceType: 'Organization', id: `dur-hot-${round}` });
      assert.ok(Number(hotNow.meta.versionId) >= Number(hotAcked.meta.versionId), `hot version ${hotNow.meta.versionId} >= acked ${hotAcked.meta.versionId}`);
      const hv = await fkc2.vread({ resourceType: 'Organization', id: `dur-hot-${round}`, version: hotAcked.meta.versionId });
      assert.deepEqual(hv, hotAcked);

      // and the recovered store still accepts writes
      const w = await fkc2.create({ resourceType: 'Practitioner', body: { resourceType: 'Practitioner', name: [{ family: 'AFTER' }] } });
      assert.equal(responseOf(w).status, 201);
      acked.set(w.id, w);
    } finally {
      await srv2.stop({ removeDir: false });
    }
  });
}
