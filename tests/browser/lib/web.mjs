// Helpers of the browser suite: a real `ror serve` with the demo region, one archive of the
// national FINESS set, the communes and the NOS; Debian's chromium driven by playwright-core;
// browser contexts that may reach only that server (anything else is aborted and recorded), and
// that record console errors, uncaught exceptions and requests of every page.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { chromium } from 'playwright-core';
import { DEMO_FILE, ROR_BIN, SHARED_DIR, SOURCE_DIR, freshDir, rorUser, startServer } from '../../blackbox/lib/ror.mjs';

export { DEMO_FILE, ROR_BIN, SHARED_DIR, SOURCE_DIR };
export const IMPORT_BIN = process.env.ROR_IMPORT_BIN || ROR_BIN;
export const CHROMIUM = process.env.CHROMIUM_BIN || process.env.CHROMIUM || '/usr/bin/chromium';
export const CHROMIUM_FLAGS = ['--no-sandbox', '--disable-gpu', '--disable-background-networking',
    '--disable-component-update', '--disable-sync', '--no-first-run'];
export const WEB_DIR = process.env.ROR_WEB_DIR || join(SOURCE_DIR, 'web');
export const FINESS_ARCHIVE = join(SHARED_DIR, 'data/finess/fhir-20210108/etab70001-80000.tar.gz');
export const COMMUNES_DIR = join(SHARED_DIR, 'data/communes');
// screenshots of each build apart: artifacts/release, artifacts/asan…
export const ARTIFACTS = join(dirname(new URL(import.meta.url).pathname), '..', 'artifacts', basename(dirname(dirname(ROR_BIN))) || 'ror');
export const PASSWORD = 'mot-de-passe-navigateur';

/** The lead rebuilds the binaries at times: wait (up to 3 min) for the one under test. */
export async function waitForBinary(path = ROR_BIN) {
    for (let i = 0; i < 180; i++) {
        try {
            if (statSync(path).size > 0 && spawnSync(path, ['version']).status === 0) return;
        } catch {
            // not there yet
        }
        await sleep(1000);
    }
    throw new Error(`${path} introuvable`);
}

function runImport(dir, kind, ...args) {
    const r = spawnSync(IMPORT_BIN, ['import', kind, '--data', dir, '--quiet', ...args], {
        encoding: 'utf8', maxBuffer: 64 << 20, env: { ...process.env, ROR_DATA_DIR: join(SOURCE_DIR, 'data') },
    });
    if (r.status !== 0 && r.status !== 3) throw new Error(`import ${kind}: ${r.status} ${r.stderr}`);
}

/**
 * A data directory with the communes, the NOS, the demo region (feed demo) and one archive of the
 * national FINESS set (feed finess: the two feeds do not close each other's resources), plus the
 * accounts { login: roles }, all with PASSWORD; then a server on it.
 */
export async function startWebServer(accounts, { extraArgs = [] } = {}) {
    await waitForBinary();
    const t0 = Date.now();
    const dir = freshDir('ror-web-');
    runImport(dir, 'communes', join(COMMUNES_DIR, 'decoupage-administratif-6.0.0/communes.json'),
        join(COMMUNES_DIR, 'geo-api-communes-centres-2021-04-01.json'), join(COMMUNES_DIR, 'laposte_hexasmal_2020-11.csv'));
    runImport(dir, 'nos', join(SHARED_DIR, 'spec/nos'));
    runImport(dir, 'ndjson', '--feed', 'demo', DEMO_FILE);
    runImport(dir, 'ndjson', '--feed', 'finess', FINESS_ARCHIVE);
    const t1 = Date.now();
    for (const [login, roles] of Object.entries(accounts)) {
        rorUser(dir, ['add', login, ...roles.flatMap((r) => ['--role', r]), '--password-stdin'], { input: `${PASSWORD}\n` });
    }
    const srv = await startServer({ dataDir: dir, timeoutMs: 180000, args: ['--tile-url', '', '--web', WEB_DIR, ...extraArgs] });
    console.log(`browser suite: ${ROR_BIN}; imports ${t1 - t0} ms, server ready after ${Date.now() - t0} ms`);
    return srv;
}

export async function launchBrowser() {
    if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} absent : apt-get install chromium`);
    mkdirSync(ARTIFACTS, { recursive: true });
    return chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_FLAGS });
}

/**
 * A browser context on `origin` (signed in as `login` when given). Every request elsewhere is
 * aborted and listed in `external`; each page's console errors and uncaught exceptions go to
 * `problems`, its requests to `requests`.
 */
export async function openContext(browser, origin, { login, ...options } = {}) {
    const ctx = await browser.newContext({ locale: 'fr-FR', timezoneId: 'Europe/Paris', acceptDownloads: true, ...options });
    const external = [];
    const problems = [];
    const requests = [];
    await ctx.route('**/*', (route) => {
        const url = route.request().url();
        if (new URL(url).origin === origin) return route.continue();
        external.push(url);
        return route.abort();
    });
    if (login) {
        const r = await ctx.request.post(`${origin}/auth/login`, { data: { login, password: PASSWORD } });
        if (r.status() !== 200) throw new Error(`login ${login}: ${r.status()} ${await r.text()}`);
    }
    return {
        ctx, external, problems, requests,
        async page(path) {
            const p = await ctx.newPage();
            p.on('console', (m) => {
                if (m.type() === 'error') problems.push({ text: m.text(), url: m.location()?.url || '' });
            });
            p.on('pageerror', (e) => problems.push({ text: `exception : ${e.message}`, url: '' }));
            p.on('request', (r) => requests.push(r.url()));
            if (path) await goto(p, `${origin}${path}`);
            return p;
        },
        close: () => ctx.close(),
    };
}

/** Load a page and wait until its script says it is ready. */
export async function goto(page, url) {
    await page.goto(url);
    await page.waitForSelector('body[data-ready="true"]', { timeout: 20000 });
}

export async function shot(page, name) {
    await page.screenshot({ path: join(ARTIFACTS, `${name}.png`), fullPage: true });
}

// ---- independent expectations ----

/** Great-circle km on the mean Earth sphere (as the orientation tests). */
export function km(a, b) {
    const R = 6371.0088;
    const rad = Math.PI / 180;
    const h = Math.sin((b.lat - a.lat) * rad / 2) ** 2
        + Math.cos(a.lat * rad) * Math.cos(b.lat * rad) * Math.sin((b.lon - a.lon) * rad / 2) ** 2;
    return 2 * R * Math.asin(Math.min(1, Math.sqrt(h)));
}

/** Accents and case aside, the words of a text. */
export const words = (s) => String(s || '').normalize('NFD').replace(/[\u0300-\u036f]/g, '').toLowerCase().split(/[^a-z0-9]+/).filter(Boolean);

export function communeCentre(code) {
    const all = JSON.parse(readFileSync(join(COMMUNES_DIR, 'geo-api-communes-centres-2021-04-01.json'), 'utf8'));
    const c = all.find((x) => x.code === code);
    return { lat: c.centre.coordinates[1], lon: c.centre.coordinates[0] };
}

export const capacityConfig = () => JSON.parse(readFileSync(join(SOURCE_DIR, 'data/capacity.json'), 'utf8'));
