// `ror user` (issue 6, first part): accounts on the command line — passwords hashed with
// argon2id (never printed back), roles with their organisation, API keys shown once, disable,
// and the data-directory lock shared with the server.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { ROR_BIN, freshDir, startServer } from './lib/ror.mjs';

const dir = freshDir('ror-user-');
after(() => rmSync(dir, { recursive: true, force: true }));

function user(args, input) {
  const r = spawnSync(ROR_BIN, ['user', ...args, '--data', dir], { input, encoding: 'utf8' });
  return { status: r.status, out: r.stdout, err: r.stderr };
}
const check = (login, password) => user(['check', login, '--password-stdin'], `${password}\n`).status;
const list = () => user(['list']).out.trim().split('\n').filter(Boolean).map((l) => l.split('\t'));

test('add: a generated password is printed once and works; a given one works; a wrong one does not', () => {
  const a = user(['add', 'alice', '--name', 'Alice Martin', '--role', 'ars-admin']);
  assert.equal(a.status, 0, a.err);
  const generated = a.out.trim();
  assert.match(generated, /^[A-Za-z0-9_-]{24}$/);
  assert.equal(check('alice', generated), 0);
  assert.equal(check('ALICE', generated), 0, 'logins are case-insensitive');
  assert.equal(check('alice', `${generated}x`), 1);
  const b = user(['add', 'bob', '--role', 'establishment-manager:eg-pitie', '--password-stdin'], 'mot de passe é\n');
  assert.equal(b.status, 0, b.err);
  assert.equal(b.out, '', 'a given password is not printed');
  assert.equal(check('bob', 'mot de passe é'), 0);
  assert.equal(check('bob', 'mot de passe e'), 1);
  assert.equal(check('nobody', 'x'), 1);
  const listed = user(['list']).out;
  assert.ok(!listed.includes('$argon2'), 'hashes never leave the store');
  assert.deepEqual(list().map((l) => [l[0], l[1], l[3]]), [
    ['alice', 'actif', '[{"role":"ars-admin"}]'],
    ['bob', 'actif', '[{"role":"establishment-manager","organization":"eg-pitie"}]'],
  ]);
});

test('refusals change nothing: duplicate login, unknown or unscoped roles, bad usage', () => {
  const before = user(['list']).out;
  assert.equal(user(['add', 'BOB', '--password-stdin'], 'x\n').status, 1);
  assert.equal(user(['add', 'carol', '--role', 'superuser']).status, 2);
  assert.equal(user(['add', 'carol', '--role', 'bed-declarer']).status, 2, 'bed-declarer needs an organisation');
  assert.equal(user(['add', 'carol', '--role', 'reader:eg-pitie']).status, 2, 'reader takes no organisation');
  assert.equal(user(['grant', 'bob', 'bed-declarer']).status, 2);
  assert.equal(user(['grant', 'ghost', 'reader']).status, 1);
  assert.equal(user(['frobnicate', 'bob']).status, 2);
  assert.equal(user(['add']).status, 2);
  assert.equal(user(['add', 'dave', '--password-stdin'], '\n').status, 1, 'an empty password is refused');
  assert.equal(user(['list']).out, before);
});

test('grant, revoke, passwd, disable, enable', () => {
  assert.equal(user(['grant', 'bob', 'bed-declarer', 'eg-pitie']).status, 0);
  assert.equal(user(['grant', 'bob', 'bed-declarer', 'eg-pitie']).status, 1, 'granted twice');
  assert.equal(list().find((l) => l[0] === 'bob')[3], '[{"role":"establishment-manager","organization":"eg-pitie"},{"role":"bed-declarer","organization":"eg-pitie"}]');
  assert.equal(user(['revoke', 'bob', 'establishment-manager', 'eg-pitie']).status, 0);
  assert.equal(user(['revoke', 'bob', 'establishment-manager', 'eg-pitie']).status, 1);
  assert.equal(list().find((l) => l[0] === 'bob')[3], '[{"role":"bed-declarer","organization":"eg-pitie"}]');
  assert.equal(user(['passwd', 'bob', '--password-stdin'], 'nouveau\n').status, 0);
  assert.equal(check('bob', 'mot de passe é'), 1);
  assert.equal(check('bob', 'nouveau'), 0);
  assert.equal(user(['disable', 'bob']).status, 0);
  assert.equal(check('bob', 'nouveau'), 1, 'a disabled account cannot log in');
  assert.equal(list().find((l) => l[0] === 'bob')[1], 'désactivé');
  assert.equal(user(['enable', 'bob']).status, 0);
  assert.equal(check('bob', 'nouveau'), 0);
});

test('API keys are printed once, distinct, counted', () => {
  const k1 = user(['key', 'bob', '--label', 'SI Pitié']);
  const k2 = user(['key', 'bob']);
  assert.equal(k1.status, 0, k1.err);
  assert.match(k1.out.trim(), /^ror_[A-Za-z0-9_-]{43}$/);
  assert.notEqual(k1.out, k2.out);
  assert.equal(list().find((l) => l[0] === 'bob')[4], '2 clé(s)');
  assert.ok(!user(['list']).out.includes(k1.out.trim()), 'keys are not kept in clear');
});

test('one process per data directory: refused while a server runs on it', async () => {
  const srv = await startServer({ dataDir: dir });
  try {
    const r = user(['list']);
    assert.equal(r.status, 1);
    assert.match(r.err, /déjà utilisé/);
  } finally {
    await srv.stop({ removeDir: false });
  }
  assert.equal(user(['list']).status, 0);
});
