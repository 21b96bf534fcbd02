// Bearer tokens of an OIDC issuer (e.g. Pro Santé Connect): keys generated here, the server
// given their JWKS; valid RS256/ES256 tokens name an account, everything else is refused.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac, generateKeyPairSync, sign as cryptoSign } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startServer, raw, accountKey, freshDir, FHIR_JSON } from './lib/ror.mjs';

const ISS = 'https://idp.sante.test/realms/ror';
const AUD = 'ror-ile-de-france';
let srv;
const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const stranger = generateKeyPairSync('rsa', { modulusLength: 2048 }); // not in the JWKS

const b64u = (buf) => Buffer.from(buf).toString('base64url');
function jwt({ alg = 'RS256', kid = 'rsa-1', key = rsa.privateKey, claims = {}, header = {} } = {}) {
  const now = Math.floor(Date.now() / 1000);
  const h = { alg, typ: 'JWT', kid, ...header };
  const p = { iss: ISS, aud: AUD, sub: 'psc-manager', iat: now - 10, exp: now + 300, ...claims };
  const input = `${b64u(JSON.stringify(h))}.${b64u(JSON.stringify(p))}`;
  if (alg === 'none') return `${input}.`;
  const sig = alg === 'ES256'
    ? cryptoSign('sha256', Buffer.from(input), { key, dsaEncoding: 'ieee-p1363' })
    : cryptoSign('sha256', Buffer.from(input), key);
  return `${input}.${b64u(sig)}`;
}

before(async () => {
  const dir = freshDir();
  const jwks = {
    keys: [
      { ...rsa.publicKey.export({ format: 'jwk' }), kid: 'rsa-1', use: 'sig', alg: 'RS256' },
      { ...ec.publicKey.export({ format: 'jwk' }), kid: 'ec-1', use: 'sig', alg: 'ES256' },
    ],
  };
  const file = join(dir, 'jwks.json');
  writeFileSync(file, JSON.stringify(jwks));
  accountKey(dir, 'psc-manager', ['establishment-manager:750999013']);
  accountKey(dir, 'via-trajectoire', ['system:2']);
  srv = await startServer({ seed: true, dataDir: dir, args: ['--oidc-issuer', ISS, '--oidc-audience', AUD, '--oidc-jwks', file] });
});
after(async () => { await srv?.stop({ removeDir: true }); });

const session = (token) => raw(new URL(srv.base).origin, '/auth/session', { headers: { authorization: `Bearer ${token}` } });

test('a valid RS256 or ES256 token names its account (subject, else client_id)', async () => {
  const r = await session(jwt());
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.login, 'psc-manager');
  assert.equal(r.json.method, 'jwt');
  const e = await session(jwt({ alg: 'ES256', kid: 'ec-1', key: ec.privateKey }));
  assert.equal(e.status, 200, e.text);
  assert.equal(e.json.login, 'psc-manager');
  const c = await session(jwt({ claims: { sub: 'service-account-1234', client_id: 'via-trajectoire' } }));
  assert.equal(c.json.login, 'via-trajectoire');
  assert.equal(c.json.profile, 2);
  // and it writes as that account, within its rights
  const hs = (await raw(srv.base, 'HealthcareService/hs-pitie-usic')).json;
  hs.name = 'USIC (jeton OIDC)';
  delete hs.meta;
  const w = await raw(srv.base, 'HealthcareService/hs-pitie-usic', { method: 'PUT', headers: { ...FHIR_JSON, authorization: `Bearer ${jwt()}` }, body: JSON.stringify(hs) });
  assert.equal(w.status, 200, w.text);
  const audit = await raw(srv.base, '../audit?type=HealthcareService&id=hs-pitie-usic&action=update');
  assert.equal(audit.json.entry[0].resource.agent[0].who.display, 'psc-manager');
});

test('expired, not yet valid, wrong issuer, wrong audience, wrong key, alg none, tampered: 401', async () => {
  const now = Math.floor(Date.now() / 1000);
  const valid = jwt();
  const [h, p, s] = valid.split('.');
  const tamperedPayload = b64u(JSON.stringify({ ...JSON.parse(Buffer.from(p, 'base64url')), sub: 'admin-tests' }));
  const cases = {
    expired: jwt({ claims: { exp: now - 3600, iat: now - 7200 } }),
    'not yet valid': jwt({ claims: { nbf: now + 3600 } }),
    'no exp': jwt({ claims: { exp: undefined } }),
    'wrong issuer': jwt({ claims: { iss: 'https://evil.example' } }),
    'wrong audience': jwt({ claims: { aud: 'autre-service' } }),
    'wrong key': jwt({ key: stranger.privateKey }),
    'unknown kid': jwt({ kid: 'rsa-2' }),
    'alg none': jwt({ alg: 'none' }),
    'alg HS256 with the public key as secret': (() => {
      const hh = b64u(JSON.stringify({ alg: 'HS256', typ: 'JWT', kid: 'rsa-1' }));
      const input = `${hh}.${p}`;
      return `${input}.${b64u(createHmac('sha256', rsa.publicKey.export({ format: 'pem', type: 'spki' })).update(input).digest())}`;
    })(),
    'tampered payload': `${h}.${tamperedPayload}.${s}`,
    'tampered signature': `${h}.${p}.${s.slice(0, -4)}AAAA`,
    'ES256 alg with the RSA kid': jwt({ alg: 'ES256', kid: 'rsa-1', key: ec.privateKey }),
    'garbage': 'a.b.c',
  };
  for (const [name, token] of Object.entries(cases)) {
    const r = await session(token);
    assert.equal(r.status, 401, `${name}: ${r.status} ${r.text}`);
    assert.equal(r.json.resourceType, 'OperationOutcome', name);
    assert.match(r.headers.get('www-authenticate'), /invalid_token/, name);
  }
  // and nothing written with any of them
  const before = (await raw(srv.base, 'HealthcareService/hs-pitie-rea')).json.meta.versionId;
  for (const token of Object.values(cases)) {
    const r = await raw(srv.base, 'HealthcareService/hs-pitie-rea', { method: 'DELETE', headers: { authorization: `Bearer ${token}` } });
    assert.equal(r.status, 401);
  }
  assert.equal((await raw(srv.base, 'HealthcareService/hs-pitie-rea')).json.meta.versionId, before);
});

test('a valid token whose subject has no account is forbidden; a read-only scope cannot write', async () => {
  const r = await session(jwt({ claims: { sub: 'inconnu' } }));
  assert.equal(r.status, 403);
  const ro = jwt({ claims: { scope: 'openid ror.read' } });
  assert.equal((await session(ro)).status, 200);
  const w = await raw(srv.base, 'HealthcareService/hs-pitie-rea', { method: 'DELETE', headers: { authorization: `Bearer ${ro}` } });
  assert.equal(w.status, 403);
  assert.match(w.json.issue[0].diagnostics, /lecture/);
  const rw = jwt({ claims: { scope: 'openid ror.read ror.write' } });
  const hs = (await raw(srv.base, 'HealthcareService/hs-pitie-rea')).json;
  delete hs.meta;
  const ok = await raw(srv.base, 'HealthcareService/hs-pitie-rea', { method: 'PUT', headers: { ...FHIR_JSON, authorization: `Bearer ${rw}` }, body: JSON.stringify(hs) });
  assert.equal(ok.status, 200, ok.text);
});

test('a server without an issuer refuses bearer JWTs but still takes API keys', async () => {
  const own = await startServer({ seed: true });
  try {
    const r = await raw(own.base, 'Organization', { headers: { authorization: `Bearer ${jwt()}` } });
    assert.equal(r.status, 401);
    assert.equal((await raw(own.base, 'Organization')).status, 200);
  } finally { await own.stop(); }
});

