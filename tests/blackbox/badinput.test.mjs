// 5. Bad input: every malformed / hostile request gets a clear OperationOutcome with the right
// status, the store is left exactly as it was (counts per type + history + current text of a few
// resources), and the server keeps answering.
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, raw, snapshot, FHIR_JSON, SC_URL, demoById } from './lib/ror.mjs';

let srv, base0;
const WATCH = ['Location/loc-pitie-rea', 'HealthcareService/hs-pitie-rea', 'Practitioner/pr-demo-paul', 'Organization/eg-pitie'];

before(async () => { srv = await startServer({ seed: true }); base0 = await snapshot(srv.base, WATCH); });
after(async () => { await srv?.stop(); });

const enc = (s) => Buffer.from(s, 'utf8');
const PRACT = '{"resourceType":"Practitioner","name":[{"family":"BAD"}]}';

/**
 * One bad request. expect: a status or a list of acceptable statuses. Checks: status, OperationOutcome
 * body with at least one error/fatal issue, store unchanged, server still answering.
 */
async function bad(name, path, { method = 'POST', headers = FHIR_JSON, body, expect, outcome = true }) {
  test(name, async () => {
    const r = await raw(srv.base, path, { method, headers, body });
    const ok = Array.isArray(expect) ? expect : [expect];
    assert.ok(ok.includes(r.status), `${method} ${path.slice(0, 120)} -> ${r.status} (want ${ok.join('|')}): ${r.text.slice(0, 300)}`);
    if (outcome) {
      assert.equal(r.json?.resourceType, 'OperationOutcome', `OperationOutcome body, got: ${r.text.slice(0, 200)}`);
      assert.ok(r.json.issue?.some((i) => ['error', 'fatal'].includes(i.severity) && i.code), 'an error issue with a code');
      assert.match(r.headers.get('content-type') || '', /json/);
    }
    const meta = await raw(srv.base, 'metadata');
    assert.equal(meta.status, 200, 'server still answers');
    assert.deepEqual(await snapshot(srv.base, WATCH), base0, 'store unchanged');
  });
}

describe('malformed JSON bodies (create)', () => {
  bad('truncated JSON', 'Practitioner', { body: PRACT.slice(0, 30), expect: 400 });
  bad('truncated inside a string', 'Practitioner', { body: '{"resourceType":"Practitioner","name":[{"family":"BA', expect: 400 });
  bad('raw NUL byte inside a string', 'Practitioner', { body: Buffer.concat([enc('{"resourceType":"Practitioner","name":[{"family":"A'), Buffer.from([0]), enc('B"}]}')]), expect: 400 });
  bad('NUL byte after the document', 'Practitioner', { body: Buffer.concat([enc(PRACT), Buffer.from([0])]), expect: 400 });
  bad('escaped \\u0000 in a string', 'Practitioner', { body: '{"resourceType":"Practitioner","name":[{"family":"A\\u0000B"}]}', expect: 400 });
  bad('duplicate keys (resourceType twice)', 'Practitioner', { body: '{"resourceType":"Practitioner","resourceType":"Organization","name":[{"family":"D"}]}', expect: 400 });
  bad('duplicate keys (nested)', 'Practitioner', { body: '{"resourceType":"Practitioner","name":[{"family":"D","family":"E"}]}', expect: 400 });
  bad('trailing garbage', 'Practitioner', { body: `${PRACT} {}`, expect: 400 });
  bad('empty body', 'Practitioner', { body: '', expect: 400 });
  bad('invalid UTF-8', 'Practitioner', { body: Buffer.concat([enc('{"resourceType":"Practitioner","name":[{"family":"'), Buffer.from([0xc3, 0x28, 0xff]), enc('"}]}')]), expect: 400 });
  bad('lone surrogate escape', 'Practitioner', { body: '{"resourceType":"Practitioner","name":[{"family":"\\ud800"}]}', expect: 400 });
  bad('single quotes / JS-style', 'Practitioner', { body: "{'resourceType':'Practitioner'}", expect: 400 });
  bad('deeply nested arrays', 'Practitioner', { body: `{"resourceType":"Practitioner","x":${'['.repeat(100000)}${']'.repeat(100000)}}`, expect: 400 });
  bad('number overflow 1e999', 'Practitioner', { body: '{"resourceType":"Practitioner","extension":[{"url":"http://x","valueDecimal":1e999}]}', expect: 400 });
});

describe('wrong shape / type', () => {
  for (const [n, b] of [['array', '[]'], ['string', '"Practitioner"'], ['number', '42'], ['null', 'null'], ['true', 'true']]) {
    bad(`non-object body: ${n}`, 'Practitioner', { body: b, expect: 400 });
  }
  bad('missing resourceType', 'Practitioner', { body: '{"name":[{"family":"X"}]}', expect: 400 });
  bad('resourceType not a string', 'Practitioner', { body: '{"resourceType":42}', expect: 400 });
  bad('resourceType differs from URL (POST)', 'Practitioner', { body: '{"resourceType":"Organization","name":"X"}', expect: 400 });
  bad('resourceType differs from URL (PUT)', 'Practitioner/pr-demo-paul', { method: 'PUT', body: '{"resourceType":"Organization","id":"pr-demo-paul","name":"X"}', expect: 400 });
  bad('PUT body id differs from URL id', 'Practitioner/pr-demo-paul', { method: 'PUT', body: '{"resourceType":"Practitioner","id":"pr-other"}', expect: 400 });
  bad('PUT invalid id characters', `Practitioner/${encodeURIComponent('bad id!')}`, { method: 'PUT', body: '{"resourceType":"Practitioner","id":"bad id!"}', expect: 400 });
  bad('PUT id longer than 64', `Practitioner/${'a'.repeat(65)}`, { method: 'PUT', body: `{"resourceType":"Practitioner","id":"${'a'.repeat(65)}"}`, expect: 400 });
  bad('unknown resource type', 'Patient', { body: '{"resourceType":"Patient"}', expect: [400, 404] });
  bad('wrong Content-Type text/plain', 'Practitioner', { headers: { 'content-type': 'text/plain' }, body: PRACT, expect: 415 });
  bad('wrong Content-Type application/xml', 'Practitioner', { headers: { 'content-type': 'application/xml' }, body: '<Practitioner/>', expect: 415 });
  bad('_format=xml', 'Practitioner/pr-demo-paul?_format=xml', { method: 'GET', headers: {}, expect: 406 });
  bad('Accept: application/fhir+xml only', 'Practitioner/pr-demo-paul', { method: 'GET', headers: { accept: 'application/fhir+xml' }, expect: 406 });
  bad('If-Match garbage', 'Practitioner/pr-demo-paul', { method: 'PUT', headers: { ...FHIR_JSON, 'if-match': 'not-an-etag' }, body: JSON.stringify({ ...demoById('pr-demo-paul'), active: false }), expect: [400, 412] });
});

describe('profile violations (422)', () => {
  const hs = demoById('hs-pitie-rea');
  delete hs.providedBy;
  bad('ror-healthcareservice without providedBy', 'HealthcareService', { body: JSON.stringify({ ...hs, id: undefined }), expect: 422 });
  bad('ror-healthcareservice without providedBy (update)', 'HealthcareService/hs-pitie-rea', { method: 'PUT', body: JSON.stringify(hs), expect: 422 });
  const loc = demoById('loc-pitie-rea');
  const cap = loc.extension.find((x) => x.url === SC_URL);
  cap.extension = cap.extension.filter((s) => s.url !== 'nbCapacity');
  bad('supported-capacity without nbCapacity', 'Location/loc-pitie-rea', { method: 'PUT', body: JSON.stringify(loc), expect: 422 });
  bad('supported-capacity without nbCapacity (create)', 'Location', { body: JSON.stringify({ ...loc, id: undefined }), expect: 422 });
});

describe('too large', () => {
  const big = `{"resourceType":"Practitioner","name":[{"family":"${'x'.repeat(10 * 1024 * 1024)}"}]}`;
  bad('10 MB body -> 413', 'Practitioner', { body: big, expect: 413 });
  bad('10 MB body on PUT -> 413', 'Practitioner/pr-demo-paul', { method: 'PUT', body: big, expect: 413 });
});

describe('search parameter values', () => {
  const g = (name, q, expect) => bad(name, q, { method: 'GET', headers: {}, expect });
  g('bad prefix _lastUpdated=xx2020', 'Location?_lastUpdated=xx2020', 400);
  g('bad date _lastUpdated=2020-13-45', 'Location?_lastUpdated=2020-13-45', 400);
  g('bad date capacity-update-date=notadate', 'Location?capacity-update-date=notadate', 400);
  g('bad date with time but no zone', 'Location?capacity-update-date=2025-01-15T25:61:00Z', 400);
  g('bad number nb-capacity=abc', 'Location?nb-capacity=abc', 400);
  g('bad number prefix nb-capacity=gx1', 'Location?nb-capacity=gx1', 400);
  g('bad number nb-capacity=1e', 'Location?nb-capacity=1e', 400);
  g('bad quantity limit-value=ge|kg', 'Location?limit-value=ge|kg', 400);
  g('bad _count=-1', 'Location?_count=-1', 400);
  g('bad _count=abc', 'Location?_count=abc', 400);
  g(':missing=maybe', 'Location?name:missing=maybe', 400);
  g('bad _include', 'HealthcareService?_include=HealthcareService:nosuch', 400);
  g('bad _total', 'Location?_total=bogus', 400);
  g('chain on a non-reference parameter', 'HealthcareService?name.foo=x', 400);
  g('too many values (5000 ids)', `Location?_id=${Array.from({ length: 5000 }, (_, i) => `id${i}`).join(',')}`, [400, 414]);
  g('too many parameters (3000 name=)', `Location?${Array.from({ length: 3000 }, (_, i) => `name=n${i}`).join('&')}`, [400, 414]);
  g('huge query string (60 KB)', `Location?name=${'a'.repeat(60 * 1024)}`, 414);
  // Over the connection memory (120 KiB of request line + headers) libmicrohttpd answers 414
  // itself, before any handler runs: a plain page, not an OperationOutcome (documented limit).
  bad('request line over the connection memory (200 KB)', `Location?name=${'a'.repeat(200 * 1024)}`, { method: 'GET', body: undefined, expect: 414, outcome: false });
  // Unsupported things are ignored in lenient mode but reported in an outcome entry; strict: 400.
  for (const q of ['Location?nosuch=1', 'Location?name:bogus=x', 'Location?_sort=nosuchparam', 'Location?_summary=bogus', 'Location?_elements=name']) {
    test(`lenient vs strict: ${q}`, async () => {
      const l = await raw(srv.base, q);
      assert.equal(l.status, 200);
      const oo = l.json.entry.filter((e) => e.search?.mode === 'outcome');
      assert.equal(oo.length, 1, 'one outcome entry');
      assert.equal(oo[0].resource.resourceType, 'OperationOutcome');
      assert.ok(oo[0].resource.issue.length >= 1);
      assert.equal(l.json.total, 8, 'the ignored criterion does not filter');
      const s = await raw(srv.base, q, { headers: { prefer: 'handling=strict' } });
      assert.equal(s.status, 400);
      assert.equal(s.json?.resourceType, 'OperationOutcome');
      assert.deepEqual(await snapshot(srv.base, WATCH), base0);
    });
  }
  bad('POST _search wrong content type', 'Location/_search', { headers: { 'content-type': 'application/json' }, body: '{"name":"x"}', expect: 415 });
});

describe('injection-looking values are plain data', () => {
  const zero = (name, q) => test(name, async () => {
    const r = await raw(srv.base, q);
    assert.equal(r.status, 200, r.text.slice(0, 300));
    assert.equal(r.json.resourceType, 'Bundle');
    assert.equal(r.json.total, 0, `no match for ${q}`);
    assert.deepEqual(await snapshot(srv.base, WATCH), base0, 'store unchanged');
  });
  zero("name=' OR 1=1 --", `Location?name=${encodeURIComponent("' OR 1=1 --")}`);
  zero('name=" OR ""="', `Location?name=${encodeURIComponent('" OR ""="')}`);
  zero('_id=1;DROP TABLE resource', `Location?_id=${encodeURIComponent('1;DROP TABLE resource')}`);
  zero('identifier with SQL', `Location?identifier=${encodeURIComponent("x'); DELETE FROM resource; --")}`);
  zero('LIKE wildcard % is literal', `Location?name=${encodeURIComponent('%')}`);
  zero('LIKE wildcard _ is literal', `Location?name=${encodeURIComponent('_')}`);
  zero(':contains with %', `Location?name:contains=${encodeURIComponent('%%')}`);
  zero('FTS/GLOB-looking *', `Location?name=${encodeURIComponent('*')}`);
  zero('unicode emoji', `Location?name=${encodeURIComponent('🏥 hôpital ✓')}`);
  zero('RTL + combining chars', `Location?name=${encodeURIComponent('مستشفى é')}`);
  test('name=%00', async () => {
    const r = await raw(srv.base, 'Location?name=%00');
    assert.ok([200, 400].includes(r.status), `status ${r.status}`);
    if (r.status === 200) assert.equal(r.json.total, 0);
    else assert.equal(r.json?.resourceType, 'OperationOutcome');
    assert.deepEqual(await snapshot(srv.base, WATCH), base0);
  });
  test('path with traversal / encoded slash', async () => {
    for (const p of ['Practitioner/..%2F..%2Fetc%2Fpasswd', 'Practitioner/%2e%2e', "Practitioner/1'%20OR%20'1'='1"]) {
      const r = await raw(srv.base, p);
      assert.ok([400, 404].includes(r.status), `${p} -> ${r.status}`);
      assert.equal(r.json?.resourceType, 'OperationOutcome');
    }
    assert.deepEqual(await snapshot(srv.base, WATCH), base0);
  });
});

test('a valid write after all the bad ones still works (control)', async () => {
  const r = await raw(srv.base, 'Practitioner', { method: 'POST', headers: FHIR_JSON, body: PRACT });
  assert.equal(r.status, 201);
  const after = await snapshot(srv.base, WATCH);
  assert.equal(after.counts.Practitioner, base0.counts.Practitioner + 1, 'the snapshot does see real writes');
});
