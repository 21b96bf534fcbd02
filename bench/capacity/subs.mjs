// bench/capacity/subs.mjs — N Server-Sent-Events subscribers of GET /capacity/stream in one
// process (raw TCP, no dependency), each checking its event ids and measuring delivery latency.
//
//   node subs.mjs --port P --count N --after ID [--filter none|departement] [--ready FILE]
//                 [--targets FILE] [--max-seconds S] [--auth 'Bearer ror_…']
//
// --auth: sent as the Authorization header of every subscription (the stream needs an account
// allowed to read capacities, e.g. an ARS administrator's API key).
// Every subscriber opens `/capacity/stream?after=ID` (plus `departement=XX` with --filter
// departement: subscriber i follows the i-th département of units.mjs, round robin), writes
// nothing more, and parses the chunked SSE stream minimally: the `id:` line and, in `data:`,
// only the `"at":"…"` instant (the commit timestamp of the event's version, ISO with ms) and,
// when filtered, the `"location":"…"` (its département is checked against the filter).
//   delivery latency = Date.now() when the bytes arrive − at (same machine clock, ms).
//   ids must strictly increase (a repeat is a duplicate); unfiltered, they must be consecutive
//   (a jump is a gap: the store gives event ids without holes; bench/capacity/verify.mjs checks
//   that against the history). Each subscriber's count and sum of ids are reported so that the
//   caller can compare them with the history feed.
// Once all N have answered it writes the line "ready N failed M" to --ready FILE (or stderr).
// On SIGTERM/SIGINT it drains: it reads --targets FILE (JSON {all: last event id, byDep:
// {département: last event id}}, written by the caller from the history: verify.mjs targets)
// and waits until every subscriber has received its target id, --drain-max-s (60) at most (a
// lagging server still delivers what it owes; without targets, until no event came for
// --quiet-ms, 1500), then prints one JSON object on stdout and exits: subscribers connected /
// failed / closed early, events, latency p50/p90/p99/max (ms) over all events of all
// subscribers, per-subscriber counts and sums, gaps, duplicates, filter mismatches, the time of
// the last event, and the Node process's CPU time.
import net from 'node:net';
import { readFileSync, writeFileSync } from 'node:fs';
import { COMMUNES, departementOf } from './units.mjs';

const args = Object.fromEntries(process.argv.slice(2).reduce((a, v, i, all) => {
  if (v.startsWith('--')) a.push([v.slice(2), all[i + 1]?.startsWith('--') || all[i + 1] === undefined ? 'true' : all[i + 1]]);
  return a;
}, []));
const port = Number(args.port);
const count = Number(args.count ?? 200);
const after = Number(args.after ?? 0);
const filter = args.filter ?? 'none';
const maxSeconds = Number(args['max-seconds'] ?? 600);
const quietMs = Number(args['quiet-ms'] ?? 1500);
const drainMaxS = Number(args['drain-max-s'] ?? 60);
const authLine = args.auth ? `Authorization: ${args.auth}\r\n` : '';
if (!port || !(count > 0) || !['none', 'departement'].includes(filter)) {
  console.error('usage: node subs.mjs --port P --count N --after ID [--filter none|departement] [--ready FILE]');
  process.exit(2);
}
const DEPS = [...new Set(COMMUNES.map((c) => departementOf(c[0])))];
const depOfUnit = (id) => departementOf(COMMUNES[(Number(id.slice(10)) - 1) % COMMUNES.length][0]);

const LAT_MAX = 60000;
const lat = new Uint32Array(LAT_MAX + 1); // ms histogram, all subscribers
let latMax = 0;
let events = 0;
let lastEventAt = 0; // Date.now() of the last event received
let termAt = 0; // when SIGTERM asked for the report
let atCacheStr = '';
let atCacheMs = 0;
const t0 = Date.now();
const cpu0 = process.cpuUsage();

class Sub {
  constructor(i) {
    this.i = i;
    this.dep = filter === 'departement' ? DEPS[i % DEPS.length] : null;
    this.connected = false;
    this.closedEarly = false;
    this.error = null;
    this.count = 0;
    this.sum = 0;
    this.first = 0;
    this.last = after;
    this.gaps = 0;
    this.dups = 0;
    this.mismatch = 0;
    this.head = ''; // HTTP head until \r\n\r\n
    this.chunkLeft = -1; // -1: reading a chunk-size line
    this.sizeLine = '';
    this.skipCrlf = 0;
    this.text = ''; // de-chunked SSE text not yet framed
  }

  open(onReady) {
    const q = `after=${after}${this.dep ? `&departement=${this.dep}` : ''}`;
    const s = net.connect({ port, host: '127.0.0.1' });
    this.sock = s;
    s.setNoDelay(true);
    s.on('connect', () => s.write(`GET /capacity/stream?${q} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nAccept: text/event-stream\r\n${authLine}\r\n`));
    s.on('data', (b) => this.onData(b, onReady));
    s.on('error', (e) => { this.error = e.code || String(e); });
    s.on('close', () => {
      if (!stopping) this.closedEarly = true;
      if (!this.connected) onReady(false);
    });
  }

  onData(buf, onReady) {
    const now = Date.now();
    let s = buf.toString('latin1');
    if (!this.connected) {
      this.head += s;
      const end = this.head.indexOf('\r\n\r\n');
      if (end < 0) return;
      if (!/^HTTP\/1\.1 200/.test(this.head)) {
        this.error = this.head.slice(0, this.head.indexOf('\r\n'));
        this.sock.destroy();
        return;
      }
      if (!/transfer-encoding: *chunked/i.test(this.head.slice(0, end))) {
        this.error = 'not chunked';
        this.sock.destroy();
        return;
      }
      s = this.head.slice(end + 4);
      this.head = '';
      this.connected = true;
      onReady(true);
    }
    // de-chunk
    let p = 0;
    while (p < s.length) {
      if (this.skipCrlf) {
        const n = Math.min(this.skipCrlf, s.length - p);
        this.skipCrlf -= n;
        p += n;
        continue;
      }
      if (this.chunkLeft < 0) {
        const nl = s.indexOf('\r\n', p);
        if (nl < 0) { this.sizeLine += s.slice(p); break; }
        this.sizeLine += s.slice(p, nl);
        p = nl + 2;
        this.chunkLeft = parseInt(this.sizeLine, 16);
        this.sizeLine = '';
        if (this.chunkLeft === 0) { this.sock.destroy(); return; } // end of stream
        continue;
      }
      const n = Math.min(this.chunkLeft, s.length - p);
      this.text += s.slice(p, p + n);
      p += n;
      this.chunkLeft -= n;
      if (this.chunkLeft === 0) { this.chunkLeft = -1; this.skipCrlf = 2; }
    }
    this.frames(now);
  }

  frames(now) {
    let start = 0;
    let end;
    const t = this.text;
    while ((end = t.indexOf('\n\n', start)) >= 0) {
      if (t.startsWith('id: ', start)) this.event(t, start, end, now);
      start = end + 2;
    }
    this.text = start ? t.slice(start) : t;
  }

  event(t, start, end, now) {
    const id = Number(t.slice(start + 4, t.indexOf('\n', start)));
    if (id <= this.last) this.dups++;
    else if (!this.dep && id !== this.last + 1) this.gaps++;
    if (id > this.last) this.last = id;
    if (!this.first) this.first = id;
    this.count++;
    this.sum += id;
    events++;
    lastEventAt = now;
    const a = t.indexOf('"at":"', start);
    if (a > 0 && a < end) {
      const str = t.slice(a + 6, a + 30);
      if (str !== atCacheStr) { atCacheStr = str; atCacheMs = Date.parse(str); }
      let ms = now - atCacheMs;
      if (ms < 0) ms = 0;
      lat[ms > LAT_MAX ? LAT_MAX : ms]++;
      if (ms > latMax) latMax = ms;
    }
    if (this.dep) {
      const l = t.indexOf('"location":"', start);
      const loc = t.slice(l + 12, t.indexOf('"', l + 12));
      if (!loc.startsWith('bench-cap-') || depOfUnit(loc) !== this.dep) this.mismatch++;
    }
  }
}

let stopping = false;
const subs = [];
let ready = 0;
let failed = 0;
function onReady(ok) {
  if (ok) ready++; else failed++;
  if (ready + failed === count) {
    const line = `ready ${ready} failed ${failed}\n`;
    if (args.ready) writeFileSync(args.ready, line); else process.stderr.write(line);
  }
}
// open in batches (the listen backlog is finite)
for (let i = 0; i < count; i++) subs.push(new Sub(i));
(async () => {
  for (let i = 0; i < count; i += 100) {
    const batch = subs.slice(i, i + 100);
    await new Promise((res) => {
      let n = 0;
      for (const s of batch) s.open((ok) => { onReady(ok); if (++n === batch.length) res(); });
    });
  }
})();

function pct(p) {
  let total = 0;
  for (let i = 0; i <= LAT_MAX; i++) total += lat[i];
  if (!total) return null;
  const want = Math.max(1, Math.round(p * total));
  let seen = 0;
  for (let i = 0; i <= LAT_MAX; i++) { seen += lat[i]; if (seen >= want) return i; }
  return LAT_MAX;
}

let targets = null;
const reached = () => subs.every((s) => {
  const want = s.dep ? targets.byDep[s.dep] ?? 0 : targets.all;
  return !s.connected || s.last >= want;
});

function drain() {
  if (termAt) return;
  termAt = Date.now();
  if (args.targets) targets = JSON.parse(readFileSync(args.targets, 'utf8'));
  const tick = setInterval(() => {
    const t = Date.now();
    const done = targets ? reached() : t - Math.max(lastEventAt, termAt) >= quietMs;
    if (done || t - termAt >= drainMaxS * 1000) {
      clearInterval(tick);
      finish();
    }
  }, 100);
}

function finish() {
  if (stopping) return;
  stopping = true;
  const cpu = process.cpuUsage(cpu0);
  const out = {
    subscribers: count,
    filter,
    after,
    connected: subs.filter((s) => s.connected).length,
    failed: subs.filter((s) => !s.connected).length,
    closedEarly: subs.filter((s) => s.connected && s.closedEarly).length,
    errors: [...new Set(subs.map((s) => s.error).filter(Boolean))].slice(0, 5),
    events,
    minPerSub: Math.min(...subs.map((s) => s.count)),
    maxPerSub: Math.max(...subs.map((s) => s.count)),
    gaps: subs.reduce((n, s) => n + s.gaps, 0),
    dups: subs.reduce((n, s) => n + s.dups, 0),
    mismatch: subs.reduce((n, s) => n + s.mismatch, 0),
    latencyMs: { p50: pct(0.5), p90: pct(0.9), p99: pct(0.99), max: latMax },
    lastEventWallMs: lastEventAt, // the caller compares it with the end of the load (drain)
    seconds: (Date.now() - t0) / 1000,
    cpuSeconds: (cpu.user + cpu.system) / 1e6,
    perSub: subs.map((s) => ({ dep: s.dep, count: s.count, sum: s.sum, first: s.first, last: s.last })),
  };
  process.stdout.write(`${JSON.stringify(out)}\n`, () => {
    for (const s of subs) s.sock?.destroy();
    process.exit(0);
  });
}
process.on('SIGTERM', drain);
process.on('SIGINT', drain);
setTimeout(finish, maxSeconds * 1000).unref();
