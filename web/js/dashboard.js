// The regional bed board: établissement × unit type (réanimation, soins intensifs, surveillance
// continue, other units, extra beds), coloured by availability and staleness, kept live by the
// capacity event stream (SSE, no reload), département and region totals, a map, the crisis
// banner, and a CSV export of exactly what is shown.
import {
    LABELS, api, canSeeCapacity, csvField, download, el, fmtAgeSince, fmtDateTime, fmtNumber, initPage, loginNeeded,
    put, qs, showError,
} from './common.js';
import { createMap, fitTo } from './map.js';
import { loadCapacityUnits, unitTypes } from './units.js';

const $ = (id) => document.getElementById(id);
const OTHER = '';
const EXTRA = 'extra';
let types = {};
let columns = [];
let units = [];
const unitsById = new Map();
const stale = new Set(); // "location|indicator" of the stale figures
let map;
let markerLayer;
let lastRows = [];
let renderQueued = false;
const flashes = new Set();

// ------------------------------------------------------------------------------------ model

const current = (i) => i.dims.temporalityCapacity === '01' || !i.dims.temporalityCapacity;
const isStale = (u, i) => stale.has(`${u.id}|${i.key}`);

/** The figures of a set of units for one column. */
function cell(us, column) {
    const out = { units: us.length, available: 0, installed: 0, extra: 0, fresh: 0, staleCount: 0, lastKnown: 0, newest: null, hasAvail: false };
    for (const u of us) {
        for (const i of u.indicators) {
            if (!current(i)) continue;
            const st = i.dims.capacityStatus;
            const old = isStale(u, i);
            if (i.updateDate && (!out.newest || i.updateDate > out.newest) && !old) out.newest = i.updateDate;
            if (column === EXTRA) {
                if (st !== '06') continue;
                out.hasAvail = true;
                if (old) out.staleCount++;
                else out.extra += i.nb || 0;
                continue;
            }
            if (i.dims.crisisType) continue; // crisis indicators are counted with the extra beds' crisis, not here
            if (st === '02') {
                out.hasAvail = true;
                if (old) {
                    out.staleCount++;
                    out.lastKnown += i.nb || 0;
                } else {
                    out.fresh++;
                    out.available += i.nb || 0;
                }
            } else if (st === '01' && !old) {
                out.installed += i.nb || 0;
            }
        }
    }
    if (column === EXTRA) out.state = !out.hasAvail ? 'none' : out.extra > 0 ? 'ok' : out.staleCount ? 'stale' : 'full';
    else if (!us.length || !out.hasAvail) out.state = 'none';
    else if (!out.fresh) out.state = 'stale';
    else out.state = out.available === 0 ? 'full' : out.available <= 2 ? 'low' : 'ok';
    return out;
}

const STATE_WORD = { ok: 'disponible', low: 'peu de lits', full: 'complet', stale: 'inconnu', none: '' };

function rowsOf(filter) {
    const byOrg = new Map();
    for (const u of units) {
        if (filter.dep && u.dep !== filter.dep) continue;
        if (filter.name && !fold(u.org.name).includes(fold(filter.name))) continue;
        if (!byOrg.has(u.org.id)) byOrg.set(u.org.id, { org: u.org, dep: u.dep, units: [] });
        byOrg.get(u.org.id).units.push(u);
    }
    let rows = [...byOrg.values()];
    if (filter.type) rows = rows.filter((r) => r.units.some((u) => u.unitType === (filter.type === 'autres' ? OTHER : filter.type)));
    return rows.sort((a, b) => a.dep.localeCompare(b.dep) || a.org.name.localeCompare(b.org.name, 'fr'));
}

function fold(s) {
    return String(s || '').normalize('NFD').replace(/[\u0300-\u036f]/g, '').toLowerCase();
}

function cellsOf(us) {
    const o = {};
    for (const c of columns) o[c.code] = cell(c.code === EXTRA ? us : us.filter((u) => u.unitType === c.code), c.code);
    return o;
}

// ------------------------------------------------------------------------------------ view

function cellTd(c, column, orgId) {
    const key = `${orgId}|${column.code}`;
    const attrs = {
        class: ['cell', `c-${c.state}`, flashes.has(key) ? 'flash' : null],
        dataset: { key, state: c.state, available: column.code === EXTRA ? String(c.extra) : String(c.available) },
    };
    if (c.state === 'none') return el('td', attrs, c.units && column.code !== EXTRA ? el('span', { class: 's' }, 'non déclaré') : '—');
    if (column.code === EXTRA) {
        return el('td', attrs, el('span', { class: 'v' }, c.staleCount && !c.extra ? '?' : fmtNumber(c.extra)),
            el('span', { class: 's' }, c.staleCount && !c.extra ? 'inconnu' : 'supplémentaires'));
    }
    if (c.state === 'stale') {
        return el('td', attrs, el('span', { class: 'v' }, '?'),
            el('span', { class: 's' }, `inconnu (dernier : ${fmtNumber(c.lastKnown)})`));
    }
    return el('td', attrs, el('span', { class: 'v' }, fmtNumber(c.available)),
        el('span', { class: 's' }, c.installed ? `sur ${fmtNumber(c.installed)} installés` : STATE_WORD[c.state]),
        c.staleCount ? el('span', { class: 's' }, `+ ${c.staleCount} inconnu${c.staleCount > 1 ? 's' : ''}`) : null,
        el('span', { class: 'visually-hidden' }, ` — ${STATE_WORD[c.state]}`));
}

function newestOf(us) {
    let n = null;
    for (const u of us) for (const i of u.indicators) if (i.updateDate && !isStale(u, i) && (!n || i.updateDate > n)) n = i.updateDate;
    return n;
}

function totalRow(label, cls, us, dep) {
    const cs = cellsOf(us);
    return {
        kind: cls, label, dep, cells: cs,
        tr: el('tr', { class: cls, dataset: { total: dep || 'region' } }, el('th', { scope: 'row', colspan: 2 }, label),
            columns.map((c) => cellTd(cs[c.code], c, `total-${dep || 'region'}`)), el('td', {}, '')),
    };
}

function render() {
    renderQueued = false;
    const filter = { dep: $('f-dep').value, type: $('f-type').value, name: $('f-name').value.trim() };
    const rows = rowsOf(filter);
    const focusKey = document.activeElement?.dataset?.focusKey;
    const body = [];
    const model = [];
    const deps = [...new Set(rows.map((r) => r.dep))];
    for (const dep of deps) {
        const inDep = rows.filter((r) => r.dep === dep);
        for (const r of inDep) {
            const cs = cellsOf(r.units);
            const newest = newestOf(r.units);
            model.push({ kind: 'row', dep, label: r.org.name, org: r.org, cells: cs, newest });
            body.push(el('tr', { dataset: { org: r.org.id } },
                el('td', {}, dep || '?'),
                el('th', { scope: 'row' }, el('a', { href: `/ui/fiche.html${qs({ id: r.org.ref || `Organization/${r.org.id}` })}`, dataset: { focusKey: r.org.id } }, r.org.name),
                    el('span', { class: 'small muted' }, ` (${r.units.length} unité${r.units.length > 1 ? 's' : ''})`)),
                columns.map((c) => cellTd(cs[c.code], c, r.org.id)),
                el('td', { class: 'small', title: newest ? fmtDateTime(newest) : '' }, newest ? fmtAgeSince(newest) : 'aucune récente')));
        }
        if (deps.length > 1 || !filter.dep) {
            const t = totalRow(`Total département ${dep || '?'}`, 'subtotal', inDep.flatMap((r) => r.units), dep);
            model.push(t);
            body.push(t.tr);
        }
    }
    const t = totalRow(filter.dep ? `Total (département ${filter.dep})` : 'Total région', 'total', rows.flatMap((r) => r.units), '');
    model.push(t);
    body.push(t.tr);
    lastRows = model;
    const table = el('table', { class: 'beds', id: 'beds' },
        el('caption', { class: 'visually-hidden' }, 'Lits disponibles par établissement et type d\'unité'),
        el('thead', {}, el('tr', {}, el('th', { scope: 'col' }, 'Dép.'), el('th', { scope: 'col' }, 'Établissement'),
            columns.map((c) => el('th', { scope: 'col' }, c.label)), el('th', { scope: 'col' }, 'Dernière déclaration'))),
        el('tbody', {}, body));
    put($('grid'), rows.length ? table : el('p', { class: 'muted' }, 'Aucune unité avec des capacités ne correspond à ces filtres.'));
    if (focusKey) document.querySelector(`[data-focus-key="${CSS.escape(focusKey)}"]`)?.focus();
    flashes.clear();
    drawMarkers(rows);
    $('as-of').textContent = `Données au ${fmtDateTime(new Date().toISOString())}. ${units.length} unités, ${stale.size} indicateur${stale.size > 1 ? 's' : ''} à déclaration trop ancienne.`;
}

function queueRender() {
    if (renderQueued) return;
    renderQueued = true;
    requestAnimationFrame(render);
}

function drawMarkers(rows) {
    if (!map) return;
    const L = window.L;
    markerLayer.clearLayers();
    const pts = [];
    for (const r of rows) {
        const u = r.units.find((x) => x.lat !== undefined && x.lon !== undefined);
        if (!u) continue;
        const c = cell(r.units, 'all'); // every availability indicator of the establishment
        const ll = [u.lat, u.lon];
        pts.push(ll);
        const tip = el('div', {}, el('strong', {}, r.org.name), el('div', {}, c.state === 'stale' ? 'disponibilité inconnue' : `${fmtNumber(c.available)} lit${c.available > 1 ? 's' : ''} disponible${c.available > 1 ? 's' : ''}`));
        L.circleMarker(ll, { radius: 10, className: `mk mk-${c.state}` }).bindTooltip(tip).addTo(markerLayer);
    }
    if (!map.__fitted && pts.length) {
        fitTo(map, pts, 12);
        map.__fitted = true;
    }
}

// ------------------------------------------------------------------------------------ CSV

function exportCsv() {
    const head = ['Département', 'Établissement'];
    for (const c of columns) {
        if (c.code === EXTRA) head.push('Lits supplémentaires');
        else head.push(`${c.label} disponibles`, `${c.label} installés`, `${c.label} état`);
    }
    head.push('Dernière déclaration');
    const lines = [head];
    for (const r of lastRows) {
        const line = [r.kind === 'row' ? r.dep : '', r.label];
        for (const c of columns) {
            const x = r.cells[c.code];
            if (c.code === EXTRA) line.push(x.state === 'none' ? '' : x.staleCount && !x.extra ? '' : x.extra);
            else line.push(x.state === 'none' || x.state === 'stale' ? '' : x.available, x.state === 'none' ? '' : x.installed || '', STATE_WORD[x.state]);
        }
        line.push(r.newest ? new Date(r.newest).toISOString() : '');
        lines.push(line);
    }
    const text = lines.map((l) => l.map(csvField).join(';')).join('\r\n') + '\r\n';
    const stamp = new Date().toISOString().slice(0, 16).replace(/[:T]/g, '-');
    download(`lits-${stamp}.csv`, text);
}

// ------------------------------------------------------------------------------------ live

let source;
let buffered = [];
let loaded = false;

function openStream() {
    source = new EventSource('/capacity/stream');
    source.addEventListener('open', () => {
        $('live').className = 'live on';
        $('live').textContent = 'En direct';
    });
    source.addEventListener('error', () => {
        $('live').className = 'live off';
        $('live').textContent = source.readyState === EventSource.CLOSED ? 'Direct interrompu : rechargez la page' : 'Reconnexion au direct…';
    });
    source.addEventListener('capacity', (ev) => {
        let e;
        try {
            e = JSON.parse(ev.data);
        } catch {
            return;
        }
        if (!loaded) buffered.push(e);
        else apply(e);
    });
}

let reloadTimer;
const awaited = new Set(); // units of events not on the board, until the board is read again
const outside = new Set(); // still not on it after that: not visible with this account
function apply(e) {
    const u = unitsById.get(e.location);
    if (!u) {
        // a unit that had no indicator, or a new one: read the units again (once for a burst)
        if (outside.has(e.location)) return;
        awaited.add(e.location);
        clearTimeout(reloadTimer);
        reloadTimer = setTimeout(reload, 500);
        return;
    }
    const k = u.indicators.findIndex((i) => i.key === e.indicator);
    if (e.after === null || e.after === undefined) {
        if (k >= 0) u.indicators.splice(k, 1);
    } else if (k >= 0) {
        u.indicators[k].nb = e.after;
        u.indicators[k].updateDate = e.updateDate || e.at;
    } else {
        u.indicators.push({ key: e.indicator, dims: e.dimensions || {}, nb: e.after, updateDate: e.updateDate || e.at });
    }
    stale.delete(`${e.location}|${e.indicator}`);
    const column = e.dimensions?.capacityStatus === '06' ? EXTRA : columns.some((c) => c.code === u.unitType) ? u.unitType : OTHER;
    flashes.add(`${u.org.id}|${column}`);
    queueRender();
}

async function refreshStale() {
    const s = await api('/capacity/stale');
    stale.clear();
    for (const x of s.stale || []) stale.add(`${x.location}|${x.indicator}`);
}

async function reload() {
    const waiting = [...awaited];
    awaited.clear();
    try {
        const [us] = await Promise.all([loadCapacityUnits(), refreshStale()]);
        units = us;
        unitsById.clear();
        for (const u of units) unitsById.set(u.id, u);
        for (const id of waiting) if (!unitsById.has(id)) outside.add(id);
        fillDepartements();
        queueRender();
    } catch (e) {
        showError($('status'), e, 'Chargement impossible');
    }
}

function fillDepartements() {
    const sel = $('f-dep');
    const chosen = sel.value;
    const deps = [...new Set(units.map((u) => u.dep).filter(Boolean))].sort();
    put(sel, el('option', { value: '' }, 'Tous'), deps.map((d) => el('option', { value: d, selected: d === chosen }, d)));
}

async function crisisBanner() {
    try {
        const c = await api('/capacity/crisis');
        const open = (c.crises || []).filter((x) => x.open);
        put($('crisis'), open.map((x) => el('div', { class: 'crisis-banner', role: 'alert', dataset: { crisis: String(x.id) } },
            `Crise en cours : ${LABELS.crisisType[x.type] || `type ${x.type}`} — ${x.territory === 'national' ? 'territoire national' : `départements ${x.territory.split(',').join(', ')}`} — ouverte le ${fmtDateTime(x.started)} par ${x.openedBy}${x.comment ? ` : ${x.comment}` : ''}.`)));
    } catch {
        // the board is still right without the banner; the next poll retries
    }
}

async function main() {
    const s = await initPage();
    if (!s.login) {
        loginNeeded($('board'), 'Le tableau des lits est réservé aux comptes de régulation, de l\'ARS et des établissements');
        return;
    }
    if (!canSeeCapacity(s)) {
        showError($('board'), 'Votre compte ne donne pas accès aux capacités en lits.');
        return;
    }
    types = await unitTypes();
    columns = [...Object.entries(types).map(([code, t]) => ({ code, label: t.label })), { code: OTHER, label: 'Autres unités' }, { code: EXTRA, label: 'Lits supplémentaires' }];
    put($('f-type'), el('option', { value: '' }, 'Tous'), Object.entries(types).map(([code, t]) => el('option', { value: code }, t.label)), el('option', { value: 'autres' }, 'Autres unités'));
    for (const id of ['f-dep', 'f-type']) $(id).addEventListener('change', queueRender);
    $('f-name').addEventListener('input', queueRender);
    $('filters').addEventListener('submit', (ev) => ev.preventDefault());
    $('export').addEventListener('click', exportCsv);
    openStream();
    map = await createMap($('map'), { label: 'Carte des disponibilités par établissement' });
    if (map) markerLayer = window.L.layerGroup().addTo(map);
    await Promise.all([reload(), crisisBanner()]);
    loaded = true;
    for (const e of buffered) apply(e);
    buffered = [];
    setInterval(() => refreshStale().then(queueRender).catch(() => {}), 60000);
    setInterval(crisisBanner, 30000);
    document.body.dataset.ready = 'true';
}

main();
