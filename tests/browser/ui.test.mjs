// The web interface in a real browser (Debian's chromium, headless, driven by playwright-core)
// against a real `ror serve` holding the demo region and one archive of the national FINESS set
// (real establishments of départements 75 to 83), the communes and the NOS. Each test checks what
// a page shows against expectations computed here from the source files (or, for figures only the
// server knows, from its API), that the page made no request beyond the server, and that it wrote
// no error to the console. Screenshots go to tests/browser/artifacts/<build>/.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { ADMIN_LOGIN, demoOf, raw } from '../blackbox/lib/ror.mjs';
import { archiveLines } from '../blackbox/lib/archives.mjs';
import {
    FINESS_ARCHIVE, PASSWORD, capacityConfig, communeCentre, goto, km, launchBrowser, openContext, shot,
    startWebServer, words,
} from './lib/web.mjs';

const R211 = 'https://mos.esante.gouv.fr/NOS/TRE_R211-ActiviteOperationnelle/FHIR/TRE-R211-ActiviteOperationnelle';
const R213 = 'https://mos.esante.gouv.fr/NOS/TRE_R213-ModePriseEnCharge/FHIR/TRE-R213-ModePriseEnCharge';
const AVAILABLE = { capacityType: '01', capacityStatus: '02', temporalityCapacity: '01', genderCapacityAvailable: '03', temporaryAssignement: '01' };
const AVAILABLE_KEY = '01|02|01|03|-|-|-|01';
const INSTALLED_KEY = '01|01|01|-|-|-|-|01';
const ACCOUNTS = {
    'ars-web': ['ars-admin'],
    regul: ['reader'],
    'pitie-lits': ['bed-declarer:750999039'], // the FINESS number of eg-pitie
    'aphp-gest': ['establishment-manager:Organization/ej-aphp'],
    'sa-lits': ['bed-declarer:750999054'], // Sainte-Anne: its unit is shared with a sensitive offer
};

let srv;
let origin;
let browser;
let manager; // the establishment manager's session (cookie and CSRF token), as the pages hold it
let finessEhpad; // the archive's EHPAD within 5 km of Versailles: [{ id, name, d, org }]
const fr = new Intl.NumberFormat('fr-FR');
const rand = (lo, hi) => lo + Math.floor(Math.random() * (hi - lo + 1));
const sorted = (a) => [...a].sort();

/** The server's API as the suite's ARS administrator (API key). */
async function asAdmin(path, { method = 'GET', body, headers = {} } = {}) {
    const r = await raw(srv.base, `${origin}${path}`, {
        method, body: body === undefined ? undefined : JSON.stringify(body),
        headers: { 'content-type': path.startsWith('/fhir') ? 'application/fhir+json' : 'application/json', ...headers },
    });
    return r;
}

async function declare(location, indicators) {
    const r = await asAdmin(`/capacity/Location/${location}`, { method: 'POST', body: { source: '01', indicators } });
    assert.equal(r.status, 200, r.text);
    return r.json;
}

/** No request left the server, and nothing went to the console (except what `allowed` lets by). */
function assertClean(c, allowed = () => false) {
    assert.deepEqual(c.external, [], 'requests beyond the server');
    assert.deepEqual(c.problems.filter((p) => !allowed(p)), [], 'console errors');
}

const menuOf = (page) => page.$$eval('#menu a', (as) => as.map((a) => a.textContent.trim()));

before(async () => {
    const t0 = Date.now();
    srv = await startWebServer(ACCOUNTS, { extraArgs: ['--validation'] });
    origin = new URL(srv.base).origin;
    browser = await launchBrowser();
    const login = await fetch(`${origin}/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ login: 'aphp-gest', password: PASSWORD }) });
    assert.equal(login.status, 200);
    manager = { cookie: login.headers.get('set-cookie').split(';')[0], csrf: (await login.json()).csrf };

    // the archive's establishments whose name or category has a word starting with "ehpad",
    // positioned within 5 km of Versailles' centre (geo.api.gouv.fr centres, independent of the
    // server's table), computed from the archive itself
    const lines = archiveLines(FINESS_ARCHIVE).map((x) => x.res);
    const orgs = new Map(lines.filter((r) => r.resourceType === 'Organization').map((r) => [r.id, r]));
    const centre = communeCentre('78646');
    finessEhpad = [];
    for (const loc of lines.filter((r) => r.resourceType === 'Location' && r.position)) {
        const org = orgs.get((loc.managingOrganization?.reference || '').replace('Organization/', ''));
        if (!org || org.active === false) continue;
        const text = [org.name, ...(org.type || []).flatMap((t) => (t.coding || []).map((c) => c.display))].join(' ');
        if (!words(text).some((w) => w.startsWith('ehpad'))) continue;
        const d = km(centre, { lat: loc.position.latitude, lon: loc.position.longitude });
        if (d <= 5) finessEhpad.push({ id: org.id, name: org.name, d, org });
    }
    console.log(`browser suite: setup ${Date.now() - t0} ms, ${finessEhpad.length} EHPAD expected near Versailles`);
});

after(async () => {
    await browser?.close();
    await srv?.stop();
});

// -------------------------------------------------------------------------------- search

test('search: the real FINESS establishments near Versailles, place by keyboard type-ahead, clustered map without tiles', async () => {
    assert.ok(finessEhpad.length >= 3, 'the archive has EHPAD near Versailles');
    assert.ok(finessEhpad.every((e) => Math.abs(e.d - 5) > 0.01), 'no establishment on the edge of the radius');
    const c = await openContext(browser, origin);
    const page = await c.page('/');
    await page.fill('#need', 'ehpad');
    await page.click('#place'); // (Escape would empty the search field)
    await page.locator('#place').pressSequentially('Versa', { delay: 20 });
    await page.locator('#place-list [role="option"]', { hasText: 'Versailles' }).first().waitFor();
    const labels = await page.locator('#place-list [role="option"]').allTextContents();
    const at = labels.findIndex((l) => l.startsWith('Versailles'));
    for (let i = 0; i <= at; i++) await page.keyboard.press('ArrowDown');
    assert.equal(await page.getAttribute('#place', 'aria-activedescendant'), `place-list-${at}`);
    await page.keyboard.press('Enter');
    assert.match(await page.textContent('#place-chosen'), /Versailles/);
    await page.selectOption('#radius', '5');
    await page.click('#go');
    await page.waitForSelector('#summary');
    const got = await page.$$eval('#results li.result h3 a', (as) => as.map((a) => new URL(a.href).searchParams.get('id')));
    assert.deepEqual(sorted(got), sorted(finessEhpad.map((e) => `Organization/${e.id}`)));
    const dists = await page.$$eval('#results .distance', (ds) => ds.map((d) => Number(d.textContent.replace(/[^\d,]/g, '').replace(',', '.'))));
    for (let i = 1; i < dists.length; i++) assert.ok(dists[i - 1] <= dists[i], 'nearest first');
    const near = finessEhpad.slice().sort((a, b) => a.d - b.d)[0];
    assert.equal(got[0], `Organization/${near.id}`);
    assert.ok(Math.abs(dists[0] - near.d) <= 0.06, `${dists[0]} km shown, ${near.d} km computed`);
    assert.match(await page.locator('#results li.result').first().textContent(), /ehpad/i, 'why it matched');
    // every result is on the map, alone or in a cluster; the place has its own pin
    // (once the map is at rest: clusters and markers coexist while the zoom animation runs)
    const onMap = () => page.evaluate(() => {
        const pins = document.querySelectorAll('#map .leaflet-marker-icon .pin:not(.place)').length;
        const clustered = [...document.querySelectorAll('#map .marker-cluster > div > span')].reduce((a, x) => a + parseInt(x.textContent, 10), 0);
        return pins + clustered;
    });
    await page.waitForSelector('#map[data-settled="true"]');
    assert.equal(await onMap(), got.length);
    assert.equal(await page.locator('#map .pin.place').count(), 1);
    assert.equal(await page.locator('#map .leaflet-tile').count(), 0, 'no tile layer when --tile-url ""');
    assert.match(page.url(), /commune=78646/, 'the search is in the address');
    await shot(page, 'recherche');
    assertClean(c);
    await c.close();
});

test('search for a regulator: NOS concept picked in the type-ahead, mode of care, "ma position", fresh beds with their age', async () => {
    const n = rand(3, 19);
    await declare('loc-pitie-rea', [{ ...AVAILABLE, nbCapacity: n }]);
    // expected from the demo file: offers with activité 126 and mode of care 28 (any distance:
    // there are fewer than 2, so the radius widens to its maximum)
    const expected = demoOf('HealthcareService').filter((h) =>
        (h.specialty || []).some((s) => s.coding.some((x) => x.system === R211 && x.code === '126'))
        && (h.characteristic || []).some((s) => s.coding.some((x) => x.system === R213 && x.code === '28'))).map((h) => `HealthcareService/${h.id}`);
    assert.equal(expected.length, 1);
    const c = await openContext(browser, origin, { login: 'regul', geolocation: { latitude: 48.8462, longitude: 2.3447 }, permissions: ['geolocation'] });
    const page = await c.page('/');
    await page.locator('#need').pressSequentially('réanimation méd', { delay: 15 });
    const option = page.locator('#need-list [role="option"]', { hasText: 'Réanimation médicale' }).filter({ hasText: '126' }).first();
    await option.click();
    assert.match(await page.textContent('#need-chosen'), /Réanimation médicale/);
    await page.selectOption('#mode', '28');
    await page.click('#geo');
    await page.waitForSelector('#summary');
    const got = await page.$$eval('#results li.result h3 a', (as) => as.map((a) => new URL(a.href).searchParams.get('id')));
    assert.deepEqual(got, expected);
    assert.match(await page.textContent('#status'), /élargi/);
    const first = page.locator('#results li.result').first();
    assert.match(await first.locator('.why').textContent(), /126/);
    assert.equal((await first.locator('.beds .badge').textContent()).trim(), `${fr.format(n)} lits disponibles`);
    assert.match(await first.locator('.beds').textContent(), /déclaré (à l'instant|il y a \d+ min)/);
    const needs = new URL(page.url()).searchParams.getAll('need');
    assert.deepEqual(sorted(needs), sorted([`${R211}|126`, `${R213}|28`]));
    assert.ok(new URL(page.url()).searchParams.get('lat'), 'the position is in the address');
    // the address alone gives the same search back
    await page.reload();
    await page.waitForSelector('#summary');
    assert.deepEqual(await page.$$eval('#results li.result h3 a', (as) => as.map((a) => new URL(a.href).searchParams.get('id'))), expected);
    assert.equal(await page.inputValue('#mode'), '28');
    await shot(page, 'recherche-regulation');
    assertClean(c);
    await c.close();
});

// -------------------------------------------------------------------------------- fiche

test('fiche of an offer: hierarchy, hours, capacities with their history chart, anomaly report (RORTask)', async () => {
    const values = [rand(0, 9), rand(10, 19), rand(20, 29)];
    for (const v of values) await declare('loc-pitie-usic', [{ ...AVAILABLE, nbCapacity: v }]);
    const hs = demoOf('HealthcareService').find((h) => h.id === 'hs-pitie-usic');
    const eg = demoOf('Organization').find((o) => `Organization/${o.id}` === hs.providedBy.reference);
    const ej = demoOf('Organization').find((o) => `Organization/${o.id}` === eg.partOf.reference);
    const c = await openContext(browser, origin, { login: 'regul' });
    const page = await c.page('/ui/fiche.html?id=HealthcareService/hs-pitie-usic');
    assert.equal(await page.textContent('h1'), hs.name);
    const chain = await page.$$eval('ol.hierarchy > li > a', (as) => as.map((a) => new URL(a.href).searchParams.get('id')));
    assert.deepEqual(chain, [`Organization/${ej.id}`, `Organization/${eg.id}`]);
    const allWeek = hs.availableTime.length === 7 && hs.availableTime.every((t) => t.availableStartTime === '00:00:00' && t.availableEndTime.startsWith('23:59'));
    if (allWeek) assert.match(await page.textContent('#main'), /24 h\/24, 7 j\/7/);
    const box = page.locator('.capacity[data-location="loc-pitie-usic"]');
    await box.locator('table.indicators').waitFor();
    const row = box.locator('table.indicators tr', { hasText: 'Lits disponibles — indifférenciés' });
    assert.equal((await row.locator('td.num').textContent()).trim(), fr.format(values[2]));
    // the chart has one point per event of the period (the API's time series)
    const since = new Date(Date.now() - 30 * 86400000).toISOString();
    const events = (await asAdmin(`/capacity/Location/loc-pitie-usic/events?_since=${encodeURIComponent(since)}&_count=200`)).json.events;
    assert.equal(await box.locator('svg circle.dot').count(), events.filter((e) => e.after !== null).length);
    const avail = await box.locator('svg g[data-series="Lits disponibles — indifférenciés"] circle.dot title').allTextContents();
    for (const v of values) assert.ok(avail.some((t) => t.includes(`: ${fr.format(v)} —`)), `point ${v}`);
    assert.match(await box.locator('.last-update').textContent(), new RegExp(`par ${ADMIN_LOGIN}`));
    // the anomaly report
    await page.click('#report-anomaly');
    await page.locator('dialog#anomaly').waitFor({ state: 'visible' });
    await page.selectOption('#an-theme', '03');
    await page.fill('#an-desc', 'Le numéro du secrétariat est celui de la réanimation.');
    await page.click('#an-send');
    await page.waitForSelector('#anomaly-status[data-task]');
    const taskId = await page.getAttribute('#anomaly-status', 'data-task');
    const task = (await asAdmin(`/fhir/Task/${taskId}`)).json;
    assert.equal(task.focus.reference, 'HealthcareService/hs-pitie-usic');
    assert.equal(task.code.coding[0].code, '03');
    assert.equal(task.businessStatus.coding[0].code, '01');
    assert.equal(task.requester.display, 'regul');
    assert.equal(task.owner.reference, hs.providedBy.reference);
    await shot(page, 'fiche');
    assertClean(c);
    await c.close();
});

test('fiche of a real FINESS establishment: identity and address for all, the phone for the ARS only (not public), no anomaly button anonymously', async () => {
    const e = finessEhpad.find((x) => x.org.telecom?.some((t) => t.system === 'phone'));
    assert.ok(e, 'an EHPAD with a phone number');
    const phone = e.org.telecom.find((t) => t.system === 'phone').value.replace(/(\d{2})(?=\d)/g, '$1 ');
    const c = await openContext(browser, origin);
    const page = await c.page(`/ui/fiche.html?id=Organization/${e.id}`);
    assert.equal(await page.textContent('h1'), e.org.name);
    const text = await page.textContent('#main');
    const a = e.org.address[0];
    assert.ok(text.includes(a.postalCode) && text.includes(a.city), 'address');
    for (const id of e.org.identifier || []) assert.ok(text.includes(id.value), `identifier ${id.value}`);
    assert.ok(!text.includes(phone), 'FINESS numbers carry no confidentiality level: not public');
    assert.match(text, /Aucun contact visible/);
    assert.equal(await page.locator('#report-anomaly').count(), 0);
    assert.ok(await page.locator('a', { hasText: 'Connectez-vous' }).count() > 0);
    assert.deepEqual(c.requests.filter((u) => new URL(u).pathname.startsWith('/capacity/')), []);
    await shot(page, 'fiche-finess');
    assertClean(c);
    await c.close();

    const ars = await openContext(browser, origin, { login: 'ars-web' });
    const p2 = await ars.page(`/ui/fiche.html?id=Organization/${e.id}`);
    assert.ok((await p2.textContent('#main')).includes(phone), 'the ARS sees the phone');
    assert.equal(await p2.getAttribute(`a[href="tel:${e.org.telecom.find((t) => t.system === 'phone').value}"]`, 'href') !== null, true);
    assert.equal(await p2.locator('#report-anomaly').count(), 1);
    assertClean(ars);
    await ars.close();
});

// -------------------------------------------------------------------------------- beds, live

/** The board's cells computed independently: units and types from the demo file and
 *  data/capacity.json, figures and staleness from the API of each unit. */
async function expectedCells() {
    const types = capacityConfig().unitTypes;
    const services = demoOf('HealthcareService');
    const out = {};
    for (const loc of demoOf('Location')) {
        const hs = services.filter((h) => (h.location || []).some((l) => l.reference === `Location/${loc.id}`));
        const codes = hs.flatMap((h) => (h.specialty || []).flatMap((s) => s.coding.filter((x) => x.system === R211).map((x) => x.code)));
        const type = Object.entries(types).find(([, t]) => t.activities.some((a) => codes.includes(a)))?.[0] || '';
        const org = (hs.find((h) => h.providedBy) || {}).providedBy?.reference.replace('Organization/', '');
        const cur = await asAdmin(`/capacity/Location/${loc.id}`);
        if (cur.status !== 200 || !cur.json.indicators.length) continue;
        const k = `${org}|${type}`;
        out[k] ??= { available: 0, fresh: 0, stale: 0 };
        for (const i of cur.json.indicators) {
            const d = i.dimensions;
            if (d.capacityStatus !== '02' || d.temporalityCapacity !== '01' || d.crisisType) continue;
            if (i.stale) out[k].stale++;
            else {
                out[k].fresh++;
                out[k].available += i.nbCapacity;
            }
        }
    }
    return out;
}

function parseCsv(text) {
    const rows = [];
    let row = [];
    let f = '';
    let q = false;
    for (let i = 0; i < text.length; i++) {
        const ch = text[i];
        if (q) {
            if (ch === '"' && text[i + 1] === '"') { f += '"'; i++; } else if (ch === '"') q = false; else f += ch;
        } else if (ch === '"') q = true;
        else if (ch === ';') { row.push(f); f = ''; } else if (ch === '\n') { row.push(f.replace(/\r$/, '')); rows.push(row); row = []; f = ''; } else f += ch;
    }
    return rows;
}

test('a bed update from a 360×740 phone reaches the dashboard of another browser within 2 s, without reload; grid, totals and CSV', async () => {
    const board = await openContext(browser, origin, { login: 'ars-web', viewport: { width: 1280, height: 900 } });
    const dash = await board.page('/ui/dashboard.html');
    await dash.waitForSelector('#live.on');
    await dash.waitForSelector('#beds');
    await dash.evaluate(() => { window.sansRechargement = true; });

    const phone = await openContext(browser, origin, { login: 'pitie-lits', viewport: { width: 360, height: 740 }, isMobile: true, hasTouch: true });
    const form = await phone.page('/ui/lits.html');
    // the declarer sees the units of its establishment only: the Locations of eg-pitie's offers
    const own = new Set(demoOf('HealthcareService').filter((h) => h.providedBy?.reference === 'Organization/eg-pitie')
        .flatMap((h) => (h.location || []).map((l) => l.reference.replace('Location/', ''))));
    const listed = await form.$$eval('#units button[data-unit]', (bs) => bs.map((b) => b.dataset.unit));
    assert.deepEqual(sorted(listed), sorted(own));
    assert.ok(await form.evaluate(() => document.documentElement.scrollWidth <= 360), 'no horizontal scrolling at 360 px');
    await shot(form, 'lits-unites');
    await form.tap('#units button[data-unit="loc-pitie-rea"]');
    await form.waitForSelector('#declare');
    const availRow = form.locator(`.indicator[data-key="${AVAILABLE_KEY}"]`);
    const before = Number(await availRow.locator('input').inputValue());
    await availRow.locator('button', { hasText: '+' }).tap();
    await availRow.locator('button', { hasText: '+' }).tap();
    const n = before + 2;
    assert.equal(Number(await availRow.locator('input').inputValue()), n);
    const installed = n + rand(5, 15);
    await form.locator(`.indicator[data-key="${INSTALLED_KEY}"] input`).fill(String(installed));
    assert.ok(await form.evaluate(() => document.documentElement.scrollWidth <= 360), 'no horizontal scrolling in the form');
    const [resp] = await Promise.all([
        form.waitForResponse((r) => r.url().endsWith('/capacity/Location/loc-pitie-rea') && r.request().method() === 'POST'),
        form.tap('#save'),
    ]);
    assert.equal(resp.status(), 200);
    const t1 = Date.now();
    await dash.waitForFunction(([sel, v]) => {
        const td = document.querySelector(sel);
        return td && td.dataset.available === String(v) && td.dataset.state !== 'stale';
    }, ['td.cell[data-key="eg-pitie|reanimation"]', n], { timeout: 2000 });
    console.log(`browser suite: bed update shown on the dashboard ${Date.now() - t1} ms after the phone's POST answered`);
    assert.equal(await dash.evaluate(() => window.sansRechargement), true, 'the dashboard was not reloaded');
    await form.waitForSelector('#flash .success');
    assert.match(await form.textContent('#flash'), /Déclaration enregistrée/);
    await form.waitForSelector('#last-list');
    assert.match(await form.textContent('#last'), /par vous/);
    assert.match(await form.textContent('#last'), new RegExp(`${fr.format(n)}`));
    await shot(form, 'lits-formulaire');

    // every cell as computed from the demo file, data/capacity.json and each unit's API figures
    const want = await expectedCells();
    const cells = await dash.$$eval('tr[data-org] td.cell', (tds) => tds.map((td) => ({ key: td.dataset.key, state: td.dataset.state, available: td.dataset.available })));
    for (const [k, w] of Object.entries(want)) {
        const cell = cells.find((x) => x.key === k);
        assert.ok(cell, `cell ${k}`);
        if (w.fresh) assert.equal(cell.available, String(w.available), k);
        else assert.equal(cell.state, w.stale ? 'stale' : 'none', k);
    }
    const regionRea = Object.entries(want).filter(([k]) => k.endsWith('|reanimation')).reduce((s, [, w]) => s + w.available, 0);
    assert.equal(await dash.getAttribute('tr.total td.cell[data-key="total-region|reanimation"]', 'data-available'), String(regionRea));

    // the CSV holds what is shown
    const [download] = await Promise.all([dash.waitForEvent('download'), dash.click('#export')]);
    const csv = parseCsv(readFileSync(await download.path(), 'utf8').replace(/^\ufeff/, ''));
    const head = csv[0];
    const line = csv.find((r) => r[1] === 'HOPITAL PITIE-SALPETRIERE AP-HP');
    assert.equal(line[head.indexOf('Réanimation disponibles')], String(n));
    assert.equal(line[head.indexOf('Réanimation installés')], String(installed));
    assert.equal(csv.length - 1, await dash.locator('#beds tbody tr').count());
    assert.equal(csv.find((r) => r[1] === 'Total région')[head.indexOf('Réanimation disponibles')], String(regionRea));
    await shot(dash, 'tableau-lits');
    assertClean(board);
    assertClean(phone);
    await phone.close();
    await board.close();
});

// -------------------------------------------------------------------------------- roles

test('role restrictions in the UI: reader without admin, declarer limited to its units, anonymous', async () => {
    const sensitive = ['/audit', '/validation', '/capacity/crisis', '/orientation/gaps', '/fhir/Task'];
    const reader = await openContext(browser, origin, { login: 'regul' });
    const page = await reader.page('/');
    assert.deepEqual(await menuOf(page), ['Rechercher', 'Tableau des lits']);
    await goto(page, `${origin}/ui/admin.html`);
    assert.match(await page.textContent('#admin'), /réservée aux administrateurs ARS/);
    assert.deepEqual(reader.requests.filter((u) => sensitive.some((p) => new URL(u).pathname.startsWith(p))), []);
    await shot(page, 'admin-refuse');
    await page.goto(`${origin}/ui/lits.html`);
    await page.locator('#app .error').waitFor();
    assert.match(await page.textContent('#app'), /ne permet pas de déclarer/);
    assertClean(reader);
    await reader.close();

    const declarer = await openContext(browser, origin, { login: 'pitie-lits' });
    const p2 = await declarer.page('/ui/lits.html?unit=loc-mondor-rea');
    // the regional bed views are for the ARS and regulation: no dashboard for establishment staff
    assert.deepEqual(await menuOf(p2), ['Rechercher', 'Déclarer les lits']);
    assert.equal(await p2.locator('#declare').count(), 0, 'no form for a unit of another establishment');
    const listed = await p2.$$eval('#units button[data-unit]', (bs) => bs.map((b) => b.dataset.unit));
    assert.ok(listed.length > 0 && !listed.includes('loc-mondor-rea'));
    assert.deepEqual(declarer.requests.filter((u) => new URL(u).pathname.startsWith('/capacity/Location/loc-mondor')), []);
    await goto(p2, `${origin}/ui/admin.html`);
    assert.match(await p2.textContent('#admin'), /réservée aux administrateurs ARS/);
    assertClean(declarer);
    await declarer.close();

    // a unit shared with a sensitive offer is hidden from profile 2, but not from its own
    // establishment's declarer: the form lists it (all the Locations of its establishment)
    const saOwn = new Set(demoOf('HealthcareService').filter((h) => h.providedBy?.reference === 'Organization/eg-sainte-anne')
        .flatMap((h) => (h.location || []).map((l) => l.reference.replace('Location/', ''))));
    const sa = await openContext(browser, origin, { login: 'sa-lits' });
    const p4 = await sa.page('/ui/lits.html');
    // (one unit: the form opens directly, the unit in the address)
    const saListed = await p4.locator('#units').count()
        ? await p4.$$eval('#units button[data-unit]', (bs) => bs.map((b) => b.dataset.unit))
        : [await p4.locator('#declare').count() ? new URL(p4.url()).searchParams.get('unit') : null];
    assert.deepEqual(sorted(saListed), sorted(saOwn));
    assertClean(sa);
    await sa.close();

    const anon = await openContext(browser, origin);
    const p3 = await anon.page('/');
    assert.deepEqual(await menuOf(p3), ['Rechercher']);
    assert.equal(await p3.locator('#login-link').count(), 1);
    for (const path of ['/ui/dashboard.html', '/ui/lits.html', '/ui/admin.html']) {
        await p3.goto(`${origin}${path}`);
        await p3.locator('main .notice a', { hasText: 'connectez-vous' }).waitFor();
    }
    assert.deepEqual(anon.requests.filter((u) => /^\/(capacity|audit|validation)/.test(new URL(u).pathname)), []);
    assertClean(anon);
    await anon.close();
});

test('login and logout through the pages; a wrong password is explained', async () => {
    const c = await openContext(browser, origin);
    const page = await c.page('/ui/login.html?next=/ui/dashboard.html');
    await page.fill('#login-name', 'ars-web');
    await page.fill('#password', 'pas-le-bon');
    await page.click('#submit');
    await page.locator('#error .error').waitFor();
    assert.match(await page.textContent('#error'), /identifiant ou mot de passe incorrect/);
    await shot(page, 'connexion');
    await page.fill('#password', PASSWORD);
    await Promise.all([page.waitForURL(`${origin}/ui/dashboard.html`), page.press('#password', 'Enter')]);
    await page.waitForSelector('body[data-ready="true"]');
    assert.deepEqual(await menuOf(page), ['Rechercher', 'Tableau des lits', 'Déclarer les lits', 'Administration']);
    await Promise.all([page.waitForURL(`${origin}/`), page.click('#logout')]);
    await page.waitForSelector('#login-link');
    const who = await page.evaluate(() => fetch('/auth/session').then((r) => r.json()));
    assert.equal(who.login, null);
    // the one refused sign-in is the only console error (the browser logs the 401)
    assertClean(c, (p) => p.url.endsWith('/auth/login') && /401/.test(p.text));
    await c.close();
});

// -------------------------------------------------------------------------------- admin

test('admin page: crisis open/close with the dashboard banner, stale units, gaps, anomalies, validation queue, audit', async () => {
    // a gap, an anomaly and a manager's pending change, made through the API
    const gap = `zzq${rand(1000, 9999)}`;
    assert.equal((await fetch(`${origin}/orientation?need=${gap}&commune=78646`)).status, 200);
    const task = await asAdmin('/fhir/Task', {
        method: 'POST', body: {
            resourceType: 'Task', status: 'requested', intent: 'order', focus: { reference: 'Location/loc-rdebre-ped' },
            code: { coding: [{ system: 'https://mos.esante.gouv.fr/NOS/TRE_R350-ThematiqueAnomalie/FHIR/TRE-R350-ThematiqueAnomalie', code: '04' }] },
            reasonCode: { coding: [{ system: 'https://mos.esante.gouv.fr/NOS/TRE_R349-ActionAnomalie/FHIR/TRE-R349-ActionAnomalie', code: 'COR' }] },
            businessStatus: { coding: [{ system: 'https://mos.esante.gouv.fr/NOS/TRE_R352-StatutMetierAnomalie/FHIR/TRE-R352-StatutMetierAnomalie', code: '01' }] },
            description: 'Capacités non mises à jour',
        },
    });
    assert.equal(task.status, 201, task.text);
    const mondor = (await asAdmin('/fhir/Organization/eg-mondor')).json;
    const newName = `${mondor.name} (CRETEIL ${rand(10, 99)})`;
    const pending = await fetch(`${origin}/fhir/Organization/eg-mondor`, {
        method: 'PUT', body: JSON.stringify({ ...mondor, name: newName }),
        headers: { 'content-type': 'application/fhir+json', cookie: manager.cookie, 'x-csrf-token': manager.csrf, origin },
    });
    assert.equal(pending.status, 202, await pending.text());

    const c = await openContext(browser, origin, { login: 'ars-web' });
    const page = await c.page('/ui/admin.html');
    // crisis: open for two départements, seen as a banner on the dashboard, then closed
    await page.fill('#crisis-deps', '75, 94');
    await page.fill('#crisis-comment', 'exercice plan blanc');
    await page.click('#crisis-open');
    await page.locator('#crises tr[data-crisis]', { hasText: 'en cours' }).waitFor();
    const open = (await asAdmin('/capacity/crisis')).json.crises.find((x) => x.open);
    assert.equal(open.territory, '75,94');
    assert.equal(open.openedBy, 'ars-web');
    const dash = await c.page('/ui/dashboard.html');
    assert.match(await dash.textContent('#crisis .crisis-banner'), /75, 94.*exercice plan blanc/);
    await dash.close();
    await page.click(`button[data-close="${open.id}"]`);
    await page.click(`button[data-close="${open.id}"]`);
    await page.locator(`#crises tr[data-crisis="${open.id}"]`, { hasText: 'close le' }).waitFor();
    assert.equal((await asAdmin('/capacity/crisis')).json.crises.find((x) => x.id === open.id).open, false);
    // stale units: one row per unit the API lists
    const stale = (await asAdmin('/capacity/stale')).json.stale;
    assert.equal(await page.locator('#stale tbody tr').count(), new Set(stale.map((x) => x.location)).size);
    // gaps
    assert.match(await page.textContent('#gaps'), new RegExp(gap));
    // anomalies: status change
    const row = page.locator(`#anomalies tr[data-task="${task.json.id}"]`);
    await row.locator('select').selectOption('02');
    await row.locator('button').click();
    await page.locator('#anomalies .success').waitFor();
    assert.equal((await asAdmin(`/fhir/Task/${task.json.id}`)).json.businessStatus.coding[0].code, '02');
    // validation: the manager's change approved, then applied
    const change = (await asAdmin('/validation?status=pending')).json.changes.find((x) => x.resourceId === 'eg-mondor');
    await page.locator(`#validation tr[data-change="${change.id}"] button`, { hasText: 'Approuver' }).click();
    await page.locator('#validation .success').waitFor();
    assert.equal((await asAdmin('/fhir/Organization/eg-mondor')).json.name, newName);
    // audit: this administrator's sign-in
    const auditText = await page.textContent('#audit');
    assert.ok(auditText.includes('ars-web') && auditText.includes('connexion'));
    await page.reload();
    await page.waitForSelector('body[data-ready="true"]');
    await shot(page, 'admin');
    assertClean(c);
    await c.close();
});

test('accounts: the ARS creates a bed declarer in the admin page; it signs in with the password shown once and sees its units; disabled, its session ends', async () => {
    const c = await openContext(browser, origin, { login: 'ars-web' });
    const page = await c.page('/ui/admin.html');
    const listed = await page.$$eval('#accounts tr[data-user]', (trs) => trs.map((t) => t.dataset.user));
    for (const l of [...Object.keys(ACCOUNTS), ADMIN_LOGIN]) assert.ok(listed.includes(l), l);
    const login = `idel-${rand(1000, 9999)}`;
    await page.fill('#new-login', login);
    await page.fill('#new-name', 'Infirmière de nuit');
    await page.selectOption('#new-role', 'bed-declarer');
    await page.fill('#new-org', '750999047'); // Robert-Debré (eg-rdebre)
    await page.click('#account-create');
    const code = page.locator(`code.password[data-login="${login}"]`);
    await code.waitFor();
    const password = await code.getAttribute('data-password');
    assert.ok(password.length >= 12);
    assert.ok(await page.locator(`#accounts tr[data-user="${login}"]`, { hasText: 'déclarant de lits : 750999047' }).count());

    // the new account signs in on a phone and lands on its units
    const nurse = await openContext(browser, origin, { viewport: { width: 360, height: 740 }, isMobile: true, hasTouch: true });
    const p2 = await nurse.page('/ui/login.html');
    await p2.fill('#login-name', login);
    await p2.fill('#password', password);
    await Promise.all([p2.waitForURL(/\/ui\/lits\.html/), p2.click('#submit')]);
    await p2.waitForSelector('body[data-ready="true"]');
    const own = new Set(demoOf('HealthcareService').filter((h) => h.providedBy?.reference === 'Organization/eg-rdebre')
        .flatMap((h) => (h.location || []).map((l) => l.reference.replace('Location/', ''))));
    const units = await p2.locator('#units').count()
        ? await p2.$$eval('#units button[data-unit]', (bs) => bs.map((b) => b.dataset.unit))
        : [new URL(p2.url()).searchParams.get('unit')];
    assert.deepEqual(sorted(units), sorted(own));

    // a second role, through the role editor
    const row = page.locator(`#accounts tr[data-user="${login}"]`);
    await row.locator('button', { hasText: 'Rôles' }).click();
    await page.selectOption(`#edit-${login}-role`, 'reader');
    await row.locator('button', { hasText: 'Ajouter ce rôle' }).click();
    await row.locator('button', { hasText: 'Enregistrer les rôles' }).click();
    await page.locator('#accounts-msg .success', { hasText: `Rôles de ${login}` }).waitFor();
    const account = (await asAdmin('/admin/users')).json.users.find((u) => u.login === login);
    assert.deepEqual(sorted(account.roles.map((r) => `${r.role}:${r.organization || ''}`)), ['bed-declarer:750999047', 'reader:']);

    // disabled by the ARS: its session ends, and it cannot sign in again
    await page.click(`button[data-disable="${login}"]`);
    await page.locator('#accounts-msg .success', { hasText: 'désactivé' }).waitFor();
    assert.ok(await page.locator(`#accounts tr[data-user="${login}"]`, { hasText: 'désactivé' }).count());
    const again = await fetch(`${origin}/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ login, password }) });
    assert.equal(again.status, 401);
    await p2.reload();
    await p2.locator('main .notice a', { hasText: 'connectez-vous' }).waitFor();
    await shot(page, 'admin-comptes');
    assertClean(c);
    assertClean(nurse);
    await nurse.close();
    await c.close();
});

// -------------------------------------------------------------------------------- accessibility

test('accessibility: axe-core finds no WCAG 2.1 A/AA violation on any page (labels, names, contrast, lang, ARIA)', async () => {
    // axe is injected as a script: this context alone bypasses the CSP to let it in
    const axe = readFileSync(new URL('./node_modules/axe-core/axe.min.js', import.meta.url), 'utf8');
    const pages = [
        ['ars-web', '/?need=ehpad&commune=78646&pl=Versailles&radius=5', '#summary', {}],
        ['ars-web', '/ui/fiche.html?id=HealthcareService/hs-pitie-rea', '.capacity table', {}],
        ['ars-web', '/ui/dashboard.html', '#beds', {}],
        ['ars-web', '/ui/admin.html', '#audit table', {}],
        ['pitie-lits', '/ui/lits.html?unit=loc-pitie-rea', '#declare', { viewport: { width: 360, height: 740 }, isMobile: true, hasTouch: true }],
        [null, '/ui/login.html', '#login', {}],
    ];
    const found = [];
    for (const [login, path, ready, options] of pages) {
        const c = await openContext(browser, origin, { login, bypassCSP: true, ...options });
        const page = await c.page(path);
        await page.waitForSelector(ready);
        await page.addScriptTag({ content: axe });
        const result = await page.evaluate(() => window.axe.run(document, { runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'] } }));
        if (process.env.AXE_DEBUG) console.log(path, result.passes.length, 'rules passed; to check by hand:', result.incomplete.map((x) => x.id).join(', '));
        for (const v of result.violations) found.push(`${path}: ${v.id} (${v.impact}) ${v.nodes.slice(0, 3).map((n) => n.target.join(' ')).join(', ')}`);
        assertClean(c);
        await c.close();
    }
    assert.deepEqual(found, []);
});
