// bench/capacity/verify.mjs — checks against the server's history feed (GET /capacity/events,
// commit order), read back after the load. Prints one JSON object; exit 1 when a check fails.
//
// Every mode takes --auth 'Bearer ror_…': the Authorization header of its requests (the
// capacity views need an account allowed to read them, e.g. an ARS administrator's API key).
//
//   node verify.mjs subs --port P --after BASE --subs subs.json
//     every subscriber received exactly the history's events after BASE that match its filter
//     (count and sum of ids equal), and the history has no hole in its ids after BASE.
//
//   node verify.mjs targets --port P --after BASE
//     the last event id after BASE, overall and per département of the units (what each
//     subscriber must have received before it reports: subs.mjs --targets).
//
//   node verify.mjs acks --port P --after BASE --log acks.log --units N
//     the SIGKILL proof, after the restart: every acknowledged update (capload's log: unit,
//     version, values) is in the history — one event per indicator it set, with that Location
//     version and that value; counts acknowledged vs found; the unacknowledged updates found
//     (in flight at the kill) are at most one per unit and directly follow its last acknowledged
//     version; for each unit and indicator the events chain (before = previous after, versions
//     increase), and its current state (GET /capacity/Location/{id}) is the last event's value
//     at the last version.
import { readFileSync } from 'node:fs';
import { INDICATORS, keyOf, unitId, COMMUNES, departementOf } from './units.mjs';

const args = Object.fromEntries(process.argv.slice(3).reduce((a, v, i, all) => {
  if (v.startsWith('--')) a.push([v.slice(2), all[i + 1]]);
  return a;
}, []));
const mode = process.argv[2];
const origin = `http://127.0.0.1:${Number(args.port)}`;
const base = Number(args.after ?? 0);
const headers = args.auth ? { Authorization: args.auth } : {};
const KEY_INSTALLED = keyOf(INDICATORS[0]);
const KEY_AVAILABLE = keyOf(INDICATORS[1]);

async function getJson(path) {
  for (let attempt = 0; ; attempt++) {
    try {
      const r = await fetch(`${origin}${path}`, { headers });
      if (r.status !== 200) throw new Error(`${path}: HTTP ${r.status} ${await r.text()}`);
      return await r.json();
    } catch (e) {
      if (attempt >= 3) throw e;
      await new Promise((res) => setTimeout(res, 200));
    }
  }
}

/** Every event after `after`, in commit order. */
async function history(after) {
  const out = [];
  for (let a = after; ;) {
    const page = await getJson(`/capacity/events?after=${a}&_count=1000`);
    for (const e of page.events) out.push(e);
    if (page.events.length < 1000) return out;
    a = page.events[page.events.length - 1].id;
  }
}

function holes(evs, after) {
  let holesN = 0;
  let prev = after;
  for (const e of evs) {
    if (e.id !== prev + 1) holesN++;
    prev = e.id;
  }
  return holesN;
}

const depOfEvent = (e) => (e.location.startsWith('bench-cap-')
  ? departementOf(COMMUNES[(Number(e.location.slice(10)) - 1) % COMMUNES.length][0]) : '');

async function targets() {
  // the requests still in flight when the load generator stopped commit a little later: wait
  // until the history stops growing (1 s without a new event, 30 s at most)
  let evs = await history(base);
  for (let i = 0; i < 30; i++) {
    await new Promise((res) => setTimeout(res, 1000));
    const more = await history(evs.length ? evs[evs.length - 1].id : base);
    if (!more.length) break;
    evs = evs.concat(more);
  }
  const byDep = {};
  for (const e of evs) byDep[depOfEvent(e)] = e.id;
  console.log(JSON.stringify({ all: evs.length ? evs[evs.length - 1].id : base, byDep }));
}

async function verifySubs() {
  const subs = JSON.parse(readFileSync(args.subs, 'utf8'));
  const evs = await history(base);
  const byDep = new Map();
  const all = { count: 0, sum: 0 };
  for (const e of evs) {
    all.count++;
    all.sum += e.id;
    const dep = depOfEvent(e);
    const d = byDep.get(dep) ?? { count: 0, sum: 0 };
    d.count++;
    d.sum += e.id;
    byDep.set(dep, d);
  }
  let exact = 0;
  let short = 0;
  let missing = 0;
  let extra = 0;
  for (const s of subs.perSub) {
    const want = s.dep ? byDep.get(s.dep) ?? { count: 0, sum: 0 } : all;
    if (s.count === want.count && s.sum === want.sum) exact++;
    else {
      short++;
      if (s.count < want.count) missing += want.count - s.count;
      else extra += s.count - want.count;
    }
  }
  const out = {
    historyEvents: evs.length,
    historyHoles: holes(evs, base),
    subscribers: subs.perSub.length,
    exact,
    notExact: short,
    eventsMissing: missing,
    eventsExtra: extra,
    ok: short === 0 && holes(evs, base) === 0,
  };
  console.log(JSON.stringify(out));
  process.exit(out.ok ? 0 : 1);
}

async function verifyAcks() {
  const nUnits = Number(args.units);
  const acks = readFileSync(args.log, 'utf8').split('\n').filter(Boolean).map((l) => {
    const [loc, version, v02, v01] = l.split(' ');
    return { loc, version: Number(version), v02: Number(v02), v01: v01 === '-' ? null : Number(v01) };
  });
  const evs = await history(base);
  // (location, version) -> {indicator key -> event}
  const byVersion = new Map();
  let dupIds = 0;
  let prevId = base;
  for (const e of evs) {
    if (e.id <= prevId) dupIds++;
    prevId = e.id;
    const k = `${e.location} ${e.version}`;
    let m = byVersion.get(k);
    if (!m) byVersion.set(k, (m = new Map()));
    m.set(e.indicator, e);
  }
  let found = 0;
  let badValue = 0;
  const missing = [];
  const ackedVersions = new Set();
  const lastAck = new Map();
  for (const a of acks) {
    const k = `${a.loc} ${a.version}`;
    ackedVersions.add(k);
    if ((lastAck.get(a.loc) ?? 0) < a.version) lastAck.set(a.loc, a.version);
    const m = byVersion.get(k);
    const e02 = m?.get(KEY_AVAILABLE);
    const e01 = a.v01 === null ? null : m?.get(KEY_INSTALLED);
    if (!e02 || (a.v01 !== null && !e01)) {
      if (missing.length < 10) missing.push(k);
      else missing.push(null);
      continue;
    }
    if (e02.after !== a.v02 || (e01 && e01.after !== a.v01)) badValue++;
    else found++;
  }
  // found but not acknowledged: in flight when the server died
  let unacked = 0;
  let unackedBad = 0;
  const unackedPerUnit = new Map();
  for (const k of byVersion.keys()) {
    if (ackedVersions.has(k)) continue;
    const [loc, v] = k.split(' ');
    unacked++;
    unackedPerUnit.set(loc, (unackedPerUnit.get(loc) ?? 0) + 1);
    if (Number(v) !== (lastAck.get(loc) ?? 1) + 1) unackedBad++;
  }
  const unitsWithTwoUnacked = [...unackedPerUnit.values()].filter((n) => n > 1).length;
  // per unit and indicator: chain of events (before = previous after, versions increasing),
  // current state = last event
  const chains = new Map();
  let chainBreaks = 0;
  for (const e of evs) {
    const k = `${e.location} ${e.indicator}`;
    const prev = chains.get(k);
    if (prev && (e.before !== prev.after || e.version <= prev.version)) chainBreaks++;
    chains.set(k, e);
  }
  let stateChecked = 0;
  let stateBad = 0;
  const badStates = [];
  const ids = Array.from({ length: nUnits }, (_, i) => unitId(i));
  for (let i = 0; i < ids.length; i += 16) {
    await Promise.all(ids.slice(i, i + 16).map(async (id) => {
      const cur = await getJson(`/capacity/Location/${id}`);
      for (const key of [KEY_AVAILABLE, KEY_INSTALLED]) {
        const last = chains.get(`${id} ${key}`);
        if (!last) continue; // not updated by the load
        stateChecked++;
        const ind = cur.indicators.find((x) => x.indicator === key);
        const nb = ind ? (ind.nbCapacity ?? ind.lastKnown) : undefined;
        const lastVersion = Math.max(...[KEY_AVAILABLE, KEY_INSTALLED]
          .map((k2) => chains.get(`${id} ${k2}`)?.version ?? 0));
        if (nb !== last.after || cur.version < lastVersion) {
          stateBad++;
          if (badStates.length < 5) badStates.push({ id, key, nb, want: last.after, version: cur.version, lastVersion });
        }
      }
    }));
  }
  const out = {
    acknowledged: acks.length,
    found,
    missing: missing.length,
    missingExamples: missing.filter(Boolean),
    wrongValue: badValue,
    historyEvents: evs.length,
    historyHoles: holes(evs, base),
    duplicateOrUnorderedIds: dupIds,
    unacknowledgedFound: unacked,
    unacknowledgedNotNextVersion: unackedBad,
    unitsWithSeveralUnacknowledged: unitsWithTwoUnacked,
    chainBreaks,
    currentStateChecked: stateChecked,
    currentStateWrong: stateBad,
    badStates,
  };
  out.ok = out.missing === 0 && out.wrongValue === 0 && out.found === out.acknowledged &&
    dupIds === 0 && chainBreaks === 0 && stateBad === 0 && unackedBad === 0 && unitsWithTwoUnacked === 0;
  console.log(JSON.stringify(out));
  process.exit(out.ok ? 0 : 1);
}

if (mode === 'targets') await targets();
else if (mode === 'subs') await verifySubs();
else if (mode === 'acks') await verifyAcks();
else {
  console.error('usage: node verify.mjs subs|acks --port P --after BASE ...');
  process.exit(2);
}
