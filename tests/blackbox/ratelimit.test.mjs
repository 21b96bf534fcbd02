// Rate limiting per client address (`ror serve --rate-limit N`, burst 2N; `--trust-proxy`):
// a burst over the limit gets 429 + Retry-After + a "throttled" OperationOutcome, the server
// serves again once Retry-After has passed; behind a proxy each X-Forwarded-For client (IPv6 by
// /64) has its own bucket, and without --trust-proxy that header is ignored; a throttled upload
// is answered without its body being read.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { startServer, raw, demoOf } from './lib/ror.mjs';

// fast: 5 requests/s, burst 10. slow: 0.01/s, so one request per address (burst 1) and nothing
// refills while the tests run (100 s per token). plain: the same without --trust-proxy.
let fast, slow, plain;
const org = demoOf('Organization')[0];

before(async () => {
  fast = await startServer({ seed: true, args: ['--rate-limit', '5', '--trust-proxy'] });
  slow = await startServer({ args: ['--rate-limit', '0.01', '--trust-proxy'] });
  plain = await startServer({ args: ['--rate-limit', '0.01'] });
});
after(async () => {
  await fast?.stop();
  await slow?.stop();
  await plain?.stop();
});

// anonymous requests: the limit is for traffic without credentials
const from = (srv, xff, path = 'metadata', opts = {}) =>
  raw(srv.base, path, { anonymous: true, ...opts, headers: { ...(opts.headers || {}), ...(xff ? { 'x-forwarded-for': xff } : {}) } });

function checkThrottled(r) {
  assert.equal(r.status, 429, r.text);
  assert.match(r.headers.get('retry-after'), /^[1-9]\d*$/);
  assert.equal(r.json.resourceType, 'OperationOutcome');
  assert.equal(r.json.issue[0].code, 'throttled');
  assert.match(r.json.issue[0].diagnostics, /trop de requêtes/);
  assert.equal(r.headers.get('x-content-type-options'), 'nosniff');
  assert.equal(r.headers.get('cache-control'), 'no-store');
  assert.equal(r.headers.get('strict-transport-security'), null); // plain HTTP
}

test('a burst over --rate-limit 5 gets 429 with Retry-After and an OperationOutcome', async () => {
  const t0 = performance.now();
  const statuses = [];
  let throttled;
  for (let i = 0; i < 40 && !throttled; i++) {
    const r = await from(fast, '198.51.100.10', `Organization/${org.id}`);
    statuses.push(r.status);
    if (r.status === 429) throttled = r;
    else assert.equal(r.status, 200, r.text);
  }
  const elapsed = (performance.now() - t0) / 1000;
  assert.ok(throttled, `no 429 in ${statuses.length} requests (${elapsed.toFixed(2)} s)`);
  checkThrottled(throttled);
  // at 5/s any missing fraction of a token comes back within 0.2 s: Retry-After rounds up to 1
  assert.equal(throttled.headers.get('retry-after'), '1');
  // the whole burst (2 x 5) first, then no more than the refill allowed in the elapsed time
  const ok = statuses.filter((s) => s === 200).length;
  assert.ok(ok >= 10, `only ${ok} accepted before the first 429`);
  assert.ok(ok <= 10 + Math.ceil(5 * elapsed) + 1, `${ok} accepted in ${elapsed} s`);
});

test('the server serves the client again once Retry-After has passed', async () => {
  let r;
  do r = await from(fast, '198.51.100.11'); while (r.status === 200);
  checkThrottled(r);
  for (let tries = 0; r.status === 429 && tries < 5; tries++) {
    await sleep(Number(r.headers.get('retry-after')) * 1000);
    r = await from(fast, '198.51.100.11', `Organization/${org.id}`);
  }
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.id, org.id);
});

test('with --trust-proxy each X-Forwarded-For client has its own bucket (IPv6 by /64)', async () => {
  assert.equal((await from(slow, '198.51.100.20')).status, 200);
  const again = await from(slow, '198.51.100.20');
  checkThrottled(again);
  const wait = Number(again.headers.get('retry-after'));
  assert.ok(wait > 90 && wait <= 100, `Retry-After ${wait} for one request per 100 s`);

  assert.equal((await from(slow, '198.51.100.21')).status, 200);
  // only the last entry (the one the proxy appends) counts
  checkThrottled(await from(slow, '198.51.100.22, 198.51.100.20'));
  assert.equal((await from(slow, '198.51.100.20, 198.51.100.23')).status, 200);
  assert.equal((await from(slow, '198.51.100.22')).status, 200); // untouched above

  assert.equal((await from(slow, '2001:db8:aa:1::1')).status, 200);
  checkThrottled(await from(slow, '2001:db8:aa:1:ffff::2')); // same /64
  assert.equal((await from(slow, '2001:db8:aa:2::1')).status, 200);
});

test('without --trust-proxy, X-Forwarded-For is ignored', async () => {
  assert.equal((await from(plain, '198.51.100.30')).status, 200);
  checkThrottled(await from(plain, '198.51.100.31')); // the same loopback client
});

test('a throttled upload is answered at once, without waiting for its body', async () => {
  assert.equal((await from(slow, '198.51.100.40')).status, 200);
  const { port } = slow;
  // headers announcing 1 MB, and no body at all: only an answer before the body can come back
  const head = await new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1', () => {
      s.write('POST /fhir/Organization HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/fhir+json\r\n'
        + 'Content-Length: 1000000\r\nX-Forwarded-For: 198.51.100.40\r\n\r\n');
    });
    let got = '';
    s.setEncoding('latin1');
    s.on('data', (d) => { got += d; if (got.includes('\r\n\r\n')) { s.destroy(); resolve(got); } });
    s.on('error', reject);
    s.setTimeout(15000, () => { s.destroy(); reject(new Error('no answer before the body')); });
  });
  assert.match(head, /^HTTP\/1\.1 429 /);
  assert.match(head, /\r\nRetry-After: \d+\r\n/i);
  // and the server still serves others
  assert.equal((await from(slow, '198.51.100.41')).status, 200);
});

test('requests with credentials are not throttled with the anonymous crowd (and bad ones get 401)', async () => {
  for (let i = 0; i < 40; i++) {
    const r = await raw(slow.base, 'metadata'); // the suite's administrator key
    assert.equal(r.status, 200, `request ${i}: ${r.status}`);
  }
  const forged = await raw(slow.base, 'metadata', { headers: { authorization: 'Bearer ror_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA' } });
  assert.equal(forged.status, 401);
  // meanwhile the anonymous address is still limited
  let throttled = false;
  for (let i = 0; i < 40 && !throttled; i++) throttled = (await from(slow, null)).status === 429;
  assert.ok(throttled);
});
