// The bed update form, mobile first (a nurse between two patients, 360 px wide): the declarer
// sees only the units of its organisation, changes several indicators with large +/- buttons,
// saves them in one declaration (POST /capacity/Location/{id}: one new version, all or
// nothing) and sees the last declaration of the unit.
import {
    CAP_DIMS, LABELS, api, canDeclareBeds, el, flash, fmtAgeSince, fmtDateTime, fmtNumber, fmtTime, indicatorKey,
    indicatorLabel, initPage, isAdmin, loginNeeded, put, qs, showError,
} from './common.js';
import { loadCapacityUnits, unitsOfGrants } from './units.js';

const app = document.getElementById('app');
const flashBox = document.getElementById('flash');
let session;
let units = [];
let rows = [];
let version = 0;

// ------------------------------------------------------------------------------------ unit list

function unitSummary(u) {
    let newest = null;
    for (const i of u.indicators) if (i.updateDate && (!newest || i.updateDate > newest)) newest = i.updateDate;
    if (!u.indicators.length) return 'aucun indicateur';
    return newest ? `déclaré ${fmtAgeSince(newest)}` : 'jamais déclaré';
}

function renderList() {
    history.replaceState(null, '', location.pathname);
    const filter = el('input', { type: 'search', id: 'unit-filter', placeholder: 'nom de l\'unité ou de l\'établissement' });
    const list = el('ul', { class: 'units', id: 'units' });
    const fill = () => {
        const q = fold(filter.value);
        put(list, units.filter((u) => !q || fold(`${u.name} ${u.org.name}`).includes(q)).map((u) => el('li', {},
            el('button', { type: 'button', dataset: { unit: u.id }, onclick: () => select(u) },
                el('span', {}, el('strong', {}, u.name), el('br'), el('span', { class: 'small muted' }, u.org.name)),
                el('span', { class: 'small' }, unitSummary(u))))));
    };
    filter.addEventListener('input', fill);
    put(app,
        el('h2', {}, `Vos unités (${units.length})`),
        units.length > 8 ? el('div', { class: 'field' }, el('label', { for: 'unit-filter' }, 'Filtrer'), filter) : null,
        list);
    fill();
}

function fold(s) {
    return String(s || '').normalize('NFD').replace(/[\u0300-\u036f]/g, '').toLowerCase();
}

// ------------------------------------------------------------------------------------ the form

function stepper(row, k) {
    const id = `ind-${k}`;
    const input = el('input', {
        type: 'number', id, min: 0, step: 1, inputmode: 'numeric', value: row.value === null ? '' : String(row.value),
        disabled: row.crisisClosed, 'aria-describedby': `${id}-meta`,
    });
    const set = (v) => {
        const n = Math.max(0, Number.isFinite(v) ? Math.round(v) : 0);
        input.value = String(n);
        update();
    };
    const update = () => {
        row.value = input.value === '' ? null : Number(input.value);
        line.classList.toggle('changed', row.value !== row.initial);
    };
    input.addEventListener('input', update);
    const line = el('div', { class: 'indicator', dataset: { key: row.key } },
        el('label', { for: id, class: 'name' }, row.label),
        el('div', { class: 'stepper' },
            el('button', { type: 'button', 'aria-label': `Diminuer : ${row.label}`, disabled: row.crisisClosed, onclick: () => set((Number(input.value) || 0) - 1) }, '−'),
            input,
            el('button', { type: 'button', 'aria-label': `Augmenter : ${row.label}`, disabled: row.crisisClosed, onclick: () => set((Number(input.value) || 0) + 1) }, '+')),
        el('div', { class: 'meta', id: `${id}-meta` }, row.meta));
    return line;
}

function rowMeta(i) {
    if (i.crisisClosed) return [el('span', { class: 'badge stale' }, 'crise close'), ' non modifiable'];
    if (i.stale) return [el('span', { class: 'badge low' }, 'à confirmer'), ` dernière déclaration ${i.updateDate ? `le ${fmtDateTime(i.updateDate)}` : 'inconnue'}`];
    return i.updateDate ? `déclaré ${fmtAgeSince(i.updateDate)} (${fmtTime(i.updateDate)})` : '';
}

function addIndicatorBlock(list) {
    const sel = (id, label, dim, options, blank) => el('div', { class: 'field' }, el('label', { for: id }, label),
        el('select', { id }, blank ? el('option', { value: '' }, blank) : null, options.map((c) => el('option', { value: c }, LABELS[dim][c]))));
    const box = el('details', { id: 'add-indicator' },
        el('summary', {}, 'Ajouter un indicateur'),
        sel('add-status', 'Statut', 'capacityStatus', ['02', '03', '04', '05', '01']),
        sel('add-type', 'Nature', 'capacityType', ['01', '02']),
        sel('add-gender', 'Genre', 'genderCapacityAvailable', ['03', '01', '02', '04'], 'non précisé'),
        sel('add-temp', 'Temporalité', 'temporalityCapacity', ['01', '02', '03', '04', '05']),
        el('button', {
            type: 'button', id: 'add-go', onclick: () => {
                const dims = { capacityType: value('add-type'), capacityStatus: value('add-status'), temporalityCapacity: value('add-temp'), temporaryAssignement: '01' };
                if (value('add-gender')) dims.genderCapacityAvailable = value('add-gender');
                const key = indicatorKey(dims);
                if (rows.some((r) => r.key === key)) {
                    flash(flashBox, 'Cet indicateur existe déjà dans le formulaire.', 'error');
                    return;
                }
                const row = { key, dims, label: indicatorLabel(dims), initial: null, value: 0, meta: 'nouvel indicateur', isNew: true };
                rows.push(row);
                const line = stepper(row, rows.length - 1);
                line.classList.add('changed');
                list.append(line);
                line.querySelector('input').focus();
                box.open = false;
            },
        }, 'Ajouter'));
    return box;
}

const value = (id) => document.getElementById(id).value;

async function lastDeclaration(u, box) {
    try {
        const since = new Date(Date.now() - 30 * 86400000).toISOString();
        const r = await api(`/capacity/Location/${encodeURIComponent(u.id)}/events${qs({ _since: since, _count: 200 })}`);
        const evs = r.events || [];
        if (!evs.length) {
            put(box, el('p', { class: 'muted' }, 'Aucune déclaration ces 30 derniers jours.'));
            return;
        }
        const lastVersion = evs[evs.length - 1].version;
        const group = evs.filter((e) => e.version === lastVersion);
        const e0 = group[0];
        const mine = e0.author === session.login;
        put(box, el('p', {}, `Le ${fmtDateTime(e0.at)} (${fmtAgeSince(e0.at)}) par `, el('strong', {}, mine ? 'vous' : e0.author),
            ` — ${LABELS.capacitySourceType[e0.source] || e0.source || ''}`),
        el('ul', { id: 'last-list' }, group.map((e) => el('li', {}, `${indicatorLabel(e.dimensions || {})} : `,
            e.before === null || e.before === undefined ? '' : `${fmtNumber(e.before)} → `, e.after === null || e.after === undefined ? 'retiré' : el('strong', {}, fmtNumber(e.after))))));
    } catch (e) {
        showError(box, e, 'Dernière déclaration indisponible');
    }
}

async function select(u, { keepFlash = false } = {}) {
    history.replaceState(null, '', `${location.pathname}${qs({ unit: u.id })}`);
    if (!keepFlash) put(flashBox);
    put(app, el('p', { class: 'muted' }, 'Chargement…'));
    let cur;
    try {
        cur = await api(`/capacity/Location/${encodeURIComponent(u.id)}`);
    } catch (e) {
        showError(app, e, 'Unité indisponible');
        return;
    }
    version = cur.version;
    rows = (cur.indicators || []).map((i) => {
        const v = i.nbCapacity ?? i.lastKnown ?? null;
        return { key: i.indicator, dims: i.dimensions, label: indicatorLabel(i.dimensions), initial: i.stale ? null : v, value: v, stale: i.stale, crisisClosed: !!i.crisisClosed, updateDate: i.updateDate, meta: rowMeta(i) };
    });
    const list = el('div', { id: 'indicators' }, rows.map((r, k) => stepper(r, k)));
    const last = el('div', { id: 'last' }, el('p', { class: 'muted' }, 'Chargement…'));
    const form = el('form', { id: 'declare', novalidate: true, 'aria-labelledby': 'unit-name' },
        rows.length ? null : el('p', { class: 'notice' }, 'Cette unité n\'a encore aucun indicateur : ajoutez-en un.'),
        list,
        addIndicatorBlock(list),
        el('div', { class: 'sticky-actions' }, el('button', { type: 'submit', class: 'primary', id: 'save' }, 'Enregistrer la déclaration')));
    form.addEventListener('submit', (ev) => {
        ev.preventDefault();
        save(u);
    });
    put(app,
        units.length > 1 ? el('p', {}, el('button', { type: 'button', class: 'link', id: 'back', onclick: renderList }, '← Toutes mes unités')) : null,
        el('h2', { id: 'unit-name' }, u.name),
        el('p', { class: 'muted small' }, u.org.name),
        form,
        el('section', { 'aria-labelledby': 'last-title' }, el('h2', { id: 'last-title' }, 'Dernière déclaration'), last));
    lastDeclaration(u, last);
}

async function save(u) {
    const send = rows.filter((r) => !r.crisisClosed);
    const bad = send.find((r) => r.value === null || !Number.isInteger(r.value) || r.value < 0);
    if (bad) {
        flash(flashBox, `Nombre manquant ou invalide : ${bad.label}.`, 'error');
        document.querySelector(`[data-key="${CSS.escape(bad.key)}"] input`)?.focus();
        return;
    }
    if (!send.length) {
        flash(flashBox, 'Rien à déclarer : ajoutez un indicateur.', 'error');
        return;
    }
    const body = {
        source: '01', version,
        indicators: send.map((r) => {
            const o = {};
            for (const d of CAP_DIMS) if (r.dims[d]) o[d] = r.dims[d];
            o.nbCapacity = r.value;
            return o;
        }),
    };
    const btn = document.getElementById('save');
    btn.disabled = true;
    btn.textContent = 'Enregistrement…';
    try {
        const r = await api(`/capacity/Location/${encodeURIComponent(u.id)}`, { method: 'POST', body });
        const changed = send.filter((x) => x.value !== x.initial).length;
        flash(flashBox, `Déclaration enregistrée à ${fmtTime(new Date().toISOString())} : ${send.length} indicateur${send.length > 1 ? 's' : ''}${changed ? `, dont ${changed} modifié${changed > 1 ? 's' : ''}` : ''} (version ${r.version}).`);
        for (const x of send) {
            const ind = u.indicators.find((i) => i.key === x.key);
            if (ind) {
                ind.nb = x.value;
                ind.updateDate = new Date().toISOString();
            } else {
                u.indicators.push({ key: x.key, dims: x.dims, nb: x.value, updateDate: new Date().toISOString() });
            }
        }
        await select(u, { keepFlash: true });
    } catch (e) {
        if (e.status === 412 || e.status === 409) {
            flash(flashBox, 'Les lits de cette unité ont été déclarés entre-temps par quelqu\'un d\'autre : les valeurs actuelles sont rechargées, vérifiez puis enregistrez à nouveau.', 'error');
            await select(u, { keepFlash: true });
        } else {
            flash(flashBox, `Déclaration refusée : ${e.message}`, 'error');
            btn.disabled = false;
            btn.textContent = 'Enregistrer la déclaration';
        }
    }
}

async function main() {
    session = await initPage();
    if (!session.login) {
        loginNeeded(app, 'Pour déclarer les lits de vos unités');
        return;
    }
    if (!canDeclareBeds(session)) {
        showError(app, 'Votre compte ne permet pas de déclarer des lits (rôle déclarant de lits, gestionnaire d\'établissement ou ARS).');
        return;
    }
    try {
        units = await unitsOfGrants(session);
        if (isAdmin(session)) {
            const known = new Set(units.map((u) => u.id));
            units.push(...(await loadCapacityUnits()).filter((u) => !known.has(u.id)));
        }
    } catch (e) {
        showError(app, e, 'Vos unités n\'ont pas pu être lues');
        return;
    }
    if (!units.length) {
        put(app, el('p', { class: 'notice' }, 'Aucune unité n\'est rattachée à votre compte. Contactez l\'ARS si c\'est une erreur.'));
        return;
    }
    const wanted = new URLSearchParams(location.search).get('unit');
    const u = units.find((x) => x.id === wanted) || (units.length === 1 ? units[0] : null);
    if (u) await select(u);
    else renderList();
    document.body.dataset.ready = 'true';
}

main();
