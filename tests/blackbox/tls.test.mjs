// Direct TLS (`ror serve --tls-cert FILE --tls-key FILE`) with a self-signed P-256 certificate
// made here: FHIR read and write over HTTPS trusting only that certificate, HSTS and the security
// headers, TLS 1.2 and 1.3 accepted, TLS 1.1 and non-AEAD ciphers refused (each refusal next to
// a control server that accepts the very same client), the capacity event stream over TLS.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import https from 'node:https';
import tls from 'node:tls';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { startServer, freshDir, demoOf, adminHeaders, SC_URL, op, patchParams } from './lib/ror.mjs';

let srv, dir, ca, keyPem, origin;

before(async () => {
  dir = freshDir('ror-tls-');
  const cert = join(dir, 'cert.pem');
  const key = join(dir, 'key.pem');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
    '-days', '2', '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1',
    '-keyout', key, '-out', cert], { stdio: 'ignore' });
  ca = readFileSync(cert);
  keyPem = readFileSync(key);
  srv = await startServer({ seed: true, args: ['--tls-cert', cert, '--tls-key', key] });
  origin = new URL(srv.base).origin;
});
after(async () => {
  await srv?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** One HTTPS request that trusts only the generated certificate (no connection reuse). */
function request(path, { method = 'GET', headers = {}, body } = {}) {
  const url = new URL(path.startsWith('https:') ? path : `${srv.base}/${path}`);
  return new Promise((resolve, reject) => {
    const req = https.request(url, { method, ca, agent: false, headers: { ...adminHeaders(srv.base), ...headers } }, (res) => {
      const protocol = res.socket.getProtocol();
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d) => { text += d; });
      res.on('end', () => {
        let json;
        try { json = text ? JSON.parse(text) : undefined; } catch { json = undefined; }
        resolve({ status: res.statusCode, headers: res.headers, text, json, protocol });
      });
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** A bare TLS handshake with the given client options: { protocol, cipher } or the error. */
function handshake(port, opts) {
  return new Promise((resolve) => {
    const s = tls.connect({ host: '127.0.0.1', port, ca, ...opts }, () => {
      const r = { protocol: s.getProtocol(), cipher: s.getCipher().name };
      s.end();
      resolve(r);
    });
    s.on('error', (error) => resolve({ error }));
  });
}

/** A node TLS server with the same certificate that accepts TLS 1.1 and any cipher: the control
 *  that shows a refusing client could connect, so that ror is the one refusing. */
async function permissiveServer() {
  const server = tls.createServer({ key: keyPem, cert: ca, minVersion: 'TLSv1.1', ciphers: 'ALL@SECLEVEL=0' },
    (s) => s.end());
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return server;
}

function checkSecurityHeaders(h) {
  assert.equal(h['strict-transport-security'], 'max-age=31536000');
  assert.equal(h['x-content-type-options'], 'nosniff');
  assert.equal(h['x-frame-options'], 'DENY');
  assert.equal(h['referrer-policy'], 'no-referrer');
  assert.match(h['content-security-policy'], /frame-ancestors 'none'/);
  assert.equal(h['cross-origin-resource-policy'], 'same-origin');
}

test('the server announces https and answers a FHIR read over TLS, with HSTS', async () => {
  assert.match(srv.base, /^https:\/\/127\.0\.0\.1:\d+\/fhir$/);
  const org = demoOf('Organization')[0];
  const r = await request(`Organization/${org.id}`);
  assert.equal(r.status, 200);
  assert.equal(r.json.resourceType, 'Organization');
  assert.equal(r.json.id, org.id);
  assert.deepEqual(r.json.identifier, org.identifier);
  assert.match(r.protocol, /^TLSv1\.[23]$/);
  checkSecurityHeaders(r.headers);

  // links are built on the https address the client used
  const b = await request('Organization?_count=1');
  assert.equal(b.status, 200);
  const self = b.json.link.find((l) => l.relation === 'self');
  assert.ok(self.url.startsWith(`${srv.base}/Organization`), self.url);

  // errors too carry the headers
  const nf = await request('Organization/absent-de-la-base');
  assert.equal(nf.status, 404);
  assert.equal(nf.json.resourceType, 'OperationOutcome');
  checkSecurityHeaders(nf.headers);
});

test('a write over TLS (held until its commit) is acknowledged and read back', async () => {
  const org = demoOf('Organization')[1];
  delete org.meta;
  org.name = `${org.name} (écrit en TLS)`;
  const w = await request(`Organization/${org.id}`, {
    method: 'PUT', headers: { 'content-type': 'application/fhir+json' }, body: JSON.stringify(org),
  });
  assert.equal(w.status, 200, w.text);
  checkSecurityHeaders(w.headers);
  const r = await request(`Organization/${org.id}`);
  assert.equal(r.json.name, org.name);
  assert.equal(r.json.meta.versionId, w.json.meta.versionId);
});

test('TLS 1.2 and TLS 1.3 are accepted, with AEAD ciphers', async () => {
  const port = srv.port;
  const t13 = await handshake(port, { minVersion: 'TLSv1.3', maxVersion: 'TLSv1.3' });
  assert.equal(t13.protocol, 'TLSv1.3', String(t13.error));
  const t12 = await handshake(port, { minVersion: 'TLSv1.2', maxVersion: 'TLSv1.2' });
  assert.equal(t12.protocol, 'TLSv1.2', String(t12.error));
  assert.match(t12.cipher, /GCM|CHACHA20/);
});

test('TLS 1.1 is refused, though the same client reaches a server that allows it', async () => {
  const old = { minVersion: 'TLSv1.1', maxVersion: 'TLSv1.1', ciphers: 'ALL@SECLEVEL=0' };
  const control = await permissiveServer();
  try {
    const ok = await handshake(control.address().port, old);
    assert.equal(ok.protocol, 'TLSv1.1', `control: ${ok.error}`);
  } finally {
    control.close();
  }
  const r = await handshake(srv.port, old);
  assert.ok(r.error, `ror accepted ${r.protocol}`);
});

test('TLS 1.2 with only CBC ciphers is refused (the control accepts them)', async () => {
  const control = await permissiveServer();
  try {
    for (const ciphers of ['ECDHE-ECDSA-AES128-SHA', 'ECDHE-ECDSA-AES256-SHA384']) {
      const weak = { minVersion: 'TLSv1.2', maxVersion: 'TLSv1.2', ciphers };
      const ok = await handshake(control.address().port, weak);
      assert.equal(ok.cipher, ciphers, `control: ${ok.error}`);
      const r = await handshake(srv.port, weak);
      assert.ok(r.error, `ror accepted ${r.cipher}`);
    }
  } finally {
    control.close();
  }
});

test('the capacity event stream flows over TLS', { timeout: 30000 }, async () => {
  const frames = [];
  let waiter = null;
  const req = https.request(`${origin}/capacity/stream`, { ca, agent: false, headers: adminHeaders(srv.base) });
  const res = await new Promise((resolve, reject) => { req.on('response', resolve); req.on('error', reject); req.end(); });
  try {
    assert.equal(res.statusCode, 200);
    assert.match(res.headers['content-type'], /^text\/event-stream/);
    checkSecurityHeaders(res.headers);
    let buf = '';
    res.setEncoding('utf8');
    res.on('data', (d) => {
      buf += d;
      let i;
      while ((i = buf.indexOf('\n\n')) >= 0) {
        const f = {};
        for (const line of buf.slice(0, i).split('\n')) {
          if (!line.startsWith(':')) f[line.slice(0, line.indexOf(':'))] = line.slice(line.indexOf(':') + 1).trimStart();
        }
        buf = buf.slice(i + 2);
        if (f.event === 'capacity') { frames.push(JSON.parse(f.data)); if (waiter) waiter(); }
      }
    });
    res.on('error', () => {});
    const nb = `Location.extension.where(url='${SC_URL}' and extension.where(url='capacityStatus' and valueCodeableConcept.coding[0].code='02')).extension.where(url='nbCapacity')`;
    const p = await request('Location/loc-pitie-rea', {
      method: 'PATCH', headers: { 'content-type': 'application/fhir+json' },
      body: JSON.stringify(patchParams(op('replace', nb, { value: { valueInteger: 7 } }))),
    });
    assert.equal(p.status, 200, p.text);
    while (!frames.some((e) => e.location === 'loc-pitie-rea' && e.after === 7)) {
      await new Promise((r) => { waiter = r; });
    }
  } finally {
    req.destroy();
  }
});
