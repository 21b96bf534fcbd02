// bench/capacity/report.mjs — the Markdown section of bench/capacity.sh, from the files its
// phases left in DIR (X.load.json from capload, X.cpu0/X.cpu1 per-thread CPU ticks of the server,
// X.subs.json from subs.mjs, X.verify.json from verify.mjs, X.server.json, X.profile.txt,
// meta.json). Prints the section on stdout and every failed check on stderr; exit 1 if any.
//
//   node report.mjs DIR
import { readFileSync, existsSync } from 'node:fs';

const dir = process.argv[2];
const file = (name) => `${dir}/${name}`;
const json = (name) => (existsSync(file(name)) ? JSON.parse(readFileSync(file(name), 'utf8')) : null);
const meta = json('meta.json');
const failed = [];
const check = (ok, what) => { if (!ok) failed.push(what); };

const ms = (us) => (us >= 1000 ? `${(us / 1000).toFixed(1)} ms` : `${us} µs`);
const int = (n) => Math.round(n).toLocaleString('en-US');

function ticks(name) {
  const out = {};
  if (!existsSync(file(name))) return out;
  for (const line of readFileSync(file(name), 'utf8').split('\n')) {
    const [k, v] = line.trim().split(/\s+/);
    if (k) out[k] = Number(v);
  }
  return out;
}

/** Server CPU per acknowledged update, in total and by thread name. */
function cpuPerUpdate(phase, acked) {
  const a = ticks(`${phase}.cpu0`);
  const b = ticks(`${phase}.cpu1`);
  const parts = [];
  let total = 0;
  for (const k of Object.keys(b)) {
    const us = ((b[k] - (a[k] ?? 0)) * 1e6) / meta.clkTck / Math.max(1, acked);
    total += us;
    if (us >= 1) parts.push([k, us]);
  }
  parts.sort((x, y) => y[1] - x[1]);
  return `${int(total)} µs (${parts.map(([k, us]) => `${k} ${int(us)}`).join(', ')})`;
}

const LABELS = {
  A: 'updates alone',
  B: `updates + ${meta.subs} subscribers, every event`,
  C: `updates + ${meta.subs} subscribers, 1 département each`,
};

function loadRow(p) {
  const load = json(`${p}.load.json`);
  if (!load) return null;
  const subs = json(`${p}.subs.json`);
  const ver = json(`${p}.verify.json`);
  const cells = [
    LABELS[p],
    subs ? `${subs.subscribers} (${subs.filter})` : 'none',
    `**${int(load.rate)}**`,
    ms(load.lat_us.p50),
    ms(load.lat_us.p99),
    `${load.non2xx} non-2xx, ${load.errors} errors`,
    cpuPerUpdate(p, load.acked),
  ];
  check(load.non2xx === 0 && load.errors === 0, `${p}: ${load.non2xx} non-2xx answers, ${load.errors} errors`);
  if (subs) {
    const l = subs.latencyMs;
    const drain = Math.max(0, subs.lastEventWallMs - load.wall_stop_ms) / 1000;
    cells.push(`${l.p50} / ${l.p99} / ${l.max} ms (drain ${drain.toFixed(1)} s)`);
    cells.push(`${subs.connected}/${subs.subscribers} connected, ${subs.closedEarly} dropped, `
      + `${int(subs.events)} events, ${subs.gaps} gaps, ${subs.dups} dup, ${subs.mismatch} off-filter; `
      + `${ver ? `${ver.exact}/${ver.subscribers} = history` : 'not compared'}`);
    check(subs.gaps + subs.dups + subs.mismatch + subs.closedEarly + subs.failed === 0,
      `${p}: gaps ${subs.gaps}, duplicates ${subs.dups}, off-filter ${subs.mismatch}, dropped ${subs.closedEarly}, refused ${subs.failed}`);
    check(ver?.ok, `${p}: subscribers vs history: ${JSON.stringify(ver)}`);
  } else {
    cells.push('–', '–');
  }
  return `| ${cells.join(' | ')} |`;
}

function holdText() {
  const s = json('D.subs.json');
  const v = json('D.verify.json');
  const load = json('D.load.json');
  const srv = json('D.server.json');
  if (!s) return 'not run';
  check(s.gaps + s.dups + s.closedEarly + s.failed === 0,
    `D: gaps ${s.gaps}, duplicates ${s.dups}, dropped ${s.closedEarly}, refused ${s.failed} (${s.errors.join(', ')})`);
  check(v?.ok, `D: subscribers vs history: ${JSON.stringify(v)}`);
  const l = s.latencyMs;
  return `${s.connected}/${s.subscribers} connected, ${s.failed} refused, ${s.closedEarly} dropped`
    + `${s.errors.length ? ` (${s.errors.join(', ')})` : ''}; each received ${s.minPerSub}–${s.maxPerSub} `
    + `events (${int(s.events)} in all), ${s.gaps} gaps, ${s.dups} duplicates; `
    + `${v ? `${v.exact}/${v.subscribers} received exactly the history (${v.historyEvents} events)` : ''}; `
    + `delivery p50/p99/max ${l.p50}/${l.p99}/${l.max} ms; load ${int(load.rate)} updates/s `
    + `(target ${meta.holdRate}), ack p99 ${ms(load.lat_us.p99)}, server CPU per update `
    + `${cpuPerUpdate('D', load.acked)}; server RSS `
    + `${Math.round(srv.rssKiB0 / 1024)} → ${Math.round(srv.rssKiB1 / 1024)} MiB, ${srv.fds} open fds `
    + `with the subscribers (ulimit -n ${meta.fdLimit})`;
}

function killText() {
  const load = json('E.load.json');
  const v = json('E.verify.json');
  const k = json('E.server.json');
  if (!load) return 'not run';
  check(v?.ok, `E: ${JSON.stringify(v)}`);
  check(load.server_gone, 'E: the load generator did not see the server die');
  if (!v) return 'no verification';
  return `SIGKILL after ${k.killAfterS} s of load (${int(load.acked)} acknowledged by then, `
    + `${load.sent - load.acked - load.non2xx} sent and unanswered); after restart (${k.restartMs} ms to answer): `
    + `**acknowledged ${int(v.acknowledged)}, found ${int(v.found)}** in the history `
    + `(missing ${v.missing}, wrong value ${v.wrongValue}); unacknowledged but found `
    + `(in flight, committed) ${v.unacknowledgedFound}, each the unit's next version `
    + `(violations ${v.unacknowledgedNotNextVersion + v.unitsWithSeveralUnacknowledged}); history `
    + `${int(v.historyEvents)} events, ${v.historyHoles} holes, ${v.duplicateOrUnorderedIds} out of order, `
    + `${v.chainBreaks} broken before→after chains; current state = last event for `
    + `${int(v.currentStateChecked)} indicators (wrong ${v.currentStateWrong}) — **${v.ok ? 'PASS' : 'FAIL'}**`;
}

const rows = ['A', 'B', 'C'].map(loadRow).filter(Boolean);
const notes = ['A', 'B', 'C'].filter((p) => json(`${p}.load.json`)).map((p) => {
  const load = json(`${p}.load.json`);
  const s = json(`${p}.subs.json`);
  return `${p}: client CPU: load generator ${load.cpu_s.toFixed(1)} s over ${load.elapsed_s.toFixed(0)} s`
    + (s ? `, subscribers' process ${s.cpuSeconds.toFixed(1)} s over ${s.seconds.toFixed(0)} s` : '');
});
const profiles = ['A', 'B', 'C'].filter((p) => existsSync(file(`${p}.profile.txt`)))
  .map((p) => `--- phase ${p} (${LABELS[p]})\n${readFileSync(file(`${p}.profile.txt`), 'utf8').trim()}`);

let out = `## Capacity load test — ${meta.date}

- machine: ${meta.machine}; server, load generator and subscribers on the same cores, loopback;
  load average before/after: ${meta.loadBefore} / ${meta.loadAfter}
- ror commit: ${meta.commit}; binary ${meta.binary}; \`ror serve --threads ${meta.threads}
  --rate-limit 0\`; node ${meta.node}; every request (updates, streams, history reads) with the API
  key of an ARS administrator (\`Authorization: Bearer ror_…\`)
- command: \`bench/capacity.sh\` with ${meta.settings}
- data: ${meta.units} generated RORLocations × 2 indicators, imported in ${meta.importS} s; each
  phase on a fresh copy of that store
- update: \`POST /capacity/Location/{id}\` with ${meta.indicators} indicator(s), answered after the
  durable group commit; only 2xx counted; closed loop over ${meta.conns} connections${meta.rate !== '0' ? `, paced at ${meta.rate}/s` : ''};
  the first ${meta.warmupS} s are not measured
- delivery latency: receive time − the event's \`at\` (its version's commit timestamp), same clock,
  over every event of every subscriber; drain: how long events kept arriving after the load stopped

| phase | subscribers | updates/s (acknowledged) | ack p50 | ack p99 | errors | server CPU per update (by thread) | delivery p50 / p99 / max | subscribers check |
|---|---|---|---|---|---|---|---|---|
${rows.join('\n')}

- **${meta.hold} subscribers held** (phase D): ${holdText()}
- **SIGKILL mid-load** (phase E): ${killText()}
${notes.map((n) => `- ${n}\n`).join('')}- goals (issue 5): ≥ 5,000 updates/s with 200 subscribers; delivery p99 ≤ 100 ms; 1,000 subscribers held; acknowledged ⊆ history after SIGKILL
`;
if (failed.length) out += `- **checks failed**: ${failed.join('; ')}\n`;
if (profiles.length) {
  out += `\n<details><summary>perf of the server during the load (bench/capacity/perfsum.py)</summary>\n\n\`\`\`\n${profiles.join('\n\n')}\n\`\`\`\n</details>\n`;
}
process.stdout.write(out);
for (const f of failed) process.stderr.write(`capacity: CHECK FAILED: ${f}\n`);
process.exit(failed.length ? 1 : 0);
