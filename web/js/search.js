// The search page: "where can this patient go, now, near here?" — GET /orientation with a need
// (type-ahead over NOS labels and unit names), a place (commune / postal code type-ahead, or the
// browser's position), a radius and filters; results nearest first with why they matched and
// their beds, on a clustered map. The query is kept in the address so a search can be shared.
import { api, el, put, fmtAgeMinutes, fmtKm, fmtNumber, canSeeCapacity, initPage, qs, showError, SYS } from './common.js';
import { combobox } from './combo.js';
import { clusterGroup, createMap, fitTo, pinIcon } from './map.js';

const $ = (id) => document.getElementById(id);
const LIMIT = 50;

// The need: free text, or a concept picked in the suggestions (sent as system|code).
let need = { value: '', label: '' };
// The place: a commune picked (INSEE code), coordinates, or what was typed.
let place = null;
let session;
let map;
let layer;
let placeLayer;
const markers = new Map();

const SYSTEM_NAMES = {
    'TRE_R211-ActiviteOperationnelle': 'activité opérationnelle',
    'TRE_R213-ModePriseEnCharge': 'mode de prise en charge',
    'TRE_R210-ActeSpecifique': 'acte spécifique',
    'TRE_R212-Equipement': 'équipement',
    'TRE_R227-ChampActivite': "champ d'activité",
    'TRE_R66-CategorieEtablissement': "catégorie d'établissement",
    'TRE_R239-PublicPrisEnCharge': 'public pris en charge',
};

function systemName(system) {
    const m = /NOS\/([^/]+)\//.exec(system || '');
    if (!m) return 'nomenclature';
    return SYSTEM_NAMES[m[1]] || m[1].replace(/^[A-Z]+_[A-Z0-9]+-/, '').replace(/([a-z])([A-Z])/g, '$1 $2').toLowerCase();
}

async function suggestNeeds(text) {
    const r = await api(`/orientation/suggest${qs({ q: text, limit: 12 })}`);
    return [
        ...(r.concepts || []).map((c) => ({ label: c.display || c.code, kind: `${systemName(c.system)} · ${c.code}`, value: `${c.system}|${c.code}`, text: c.display })),
        ...(r.units || []).map((u) => ({ label: u.name, kind: u.type === 'Organization' ? 'établissement' : 'offre', value: u.name, text: u.name })),
    ];
}

async function suggestPlaces(text) {
    const list = await api(`/communes${qs({ q: text, limit: 10 })}`);
    return list.map((c) => ({
        label: `${c.nom} (${(c.codesPostaux || []).slice(0, 3).join(', ') || c.departement})`,
        kind: `commune ${c.code}, département ${c.departement}`,
        value: { kind: 'commune', code: c.code, label: c.nom, lat: c.lat, lon: c.lon },
    }));
}

function setNeed(value, label) {
    need = { value, label };
    $('need-chosen').textContent = value && value.includes('|') ? `Code choisi : ${label}` : '';
}

function setPlace(p) {
    place = p;
    $('place-chosen').textContent = p ? `Lieu retenu : ${p.label}` : '';
}

/** The place as the API's parameters. */
function placeParams() {
    if (place?.kind === 'commune') return { commune: place.code };
    if (place?.kind === 'coords') return { lat: place.lat.toFixed(6), lon: place.lon.toFixed(6) };
    const typed = $('place').value.trim();
    if (!typed) return null;
    if (/^\d{5}$/.test(typed)) return { postal: typed };
    return { place: typed };
}

function params() {
    const needs = [];
    const typed = $('need').value.trim();
    if (need.value && typed === need.label) needs.push(need.value);
    else if (typed) needs.push(typed);
    const mode = $('mode').value;
    if (mode) needs.push(`${SYS.R213}|${mode}`);
    return {
        need: needs, ...placeParams(), radius: $('radius').value, age: $('age').value.trim(),
        open_now: $('open_now').checked ? 'true' : '', beds: $('beds').checked ? 'true' : '', limit: LIMIT,
    };
}

/** The address keeps the search (and the labels of what was picked) for sharing and reload. */
function saveInAddress(p) {
    const keep = { ...p };
    delete keep.limit;
    if (need.value && need.value.includes('|')) keep.nl = need.label;
    if (place) keep.pl = place.label;
    history.replaceState(null, '', `/${qs(keep)}`);
}

function restoreFromAddress() {
    const u = new URLSearchParams(location.search);
    if (![...u.keys()].length) return false;
    const needs = u.getAll('need');
    const modeNeed = needs.find((n) => n.startsWith(`${SYS.R213}|`));
    const main = needs.find((n) => n !== modeNeed) || '';
    if (main.includes('|')) {
        setNeed(main, u.get('nl') || main);
        $('need').value = u.get('nl') || main;
    } else {
        $('need').value = main;
    }
    if (modeNeed) $('mode').dataset.pending = modeNeed.split('|')[1];
    if (u.get('commune')) setPlace({ kind: 'commune', code: u.get('commune'), label: u.get('pl') || u.get('commune') });
    else if (u.get('lat') && u.get('lon')) setPlace({ kind: 'coords', lat: Number(u.get('lat')), lon: Number(u.get('lon')), label: u.get('pl') || 'Ma position' });
    $('place').value = place ? place.label : u.get('postal') || u.get('place') || '';
    if (u.get('radius')) $('radius').value = u.get('radius');
    if (u.get('age')) $('age').value = u.get('age');
    $('open_now').checked = u.get('open_now') === 'true';
    $('beds').checked = u.get('beds') === 'true';
    return !!placeParams();
}

async function loadModes() {
    try {
        const b = await api(`/fhir/CodeSystem${qs({ url: SYS.R213 })}`);
        const cs = (b.entry || []).map((e) => e.resource).find((r) => r?.resourceType === 'CodeSystem');
        const concepts = (cs?.concept || []).filter((c) => c.display);
        if (!concepts.length) throw new Error('vide');
        const seen = new Set();
        const sel = $('mode');
        for (const c of concepts.sort((a, b) => a.display.localeCompare(b.display, 'fr'))) {
            if (seen.has(c.display)) continue; // a few labels appear twice under two codes
            seen.add(c.display);
            sel.append(el('option', { value: c.code }, c.display));
        }
        if (sel.dataset.pending) sel.value = sel.dataset.pending;
    } catch {
        $('mode-field').hidden = true; // the NOS are not imported on this server
    }
}

function bedsFact(r) {
    const b = r.beds || {};
    if (b.available === null || b.available === undefined) {
        return canSeeCapacity(session) ? el('span', { class: 'badge stale' }, 'Lits : pas de déclaration récente') : null;
    }
    const cls = b.available === 0 ? 'full' : b.available <= 2 ? 'low' : 'ok';
    const n = b.available;
    return el('span', { class: 'beds' },
        el('span', { class: `badge ${cls}` }, `${fmtNumber(n)} lit${n > 1 ? 's' : ''} disponible${n > 1 ? 's' : ''}`),
        b.ageMinutes !== undefined ? el('span', { class: 'small muted' }, ` déclaré ${fmtAgeMinutes(b.ageMinutes)}`) : null);
}

function renderResults(res) {
    const list = $('results');
    const status = $('status');
    const parts = [`${fmtNumber(res.total)} résultat${res.total > 1 ? 's' : ''} autour de ${res.place?.label || 'ce lieu'}, dans un rayon de ${fmtNumber(res.radius_km)} km`];
    if (res.total > res.results.length) parts.push(`(les ${res.results.length} plus proches affichés)`);
    put(status,
        res.message ? el('p', { class: 'notice' }, res.message) : null,
        el('p', { id: 'summary' }, `${parts.join(' ')}.`));
    list.replaceChildren(...res.results.map((r) => {
        const why = (r.why || []).filter((w) => !/^à [\d,\s]+km$/.test(w));
        const li = el('li', { class: 'result', id: `r-${r.rank}`, dataset: { ref: r.reference } },
            el('h3', {}, el('span', { class: 'visually-hidden' }, `${r.rank}. `),
                el('a', { href: `/ui/fiche.html${qs({ id: r.reference })}` }, r.name || r.reference)),
            r.organization && r.type !== 'Organization'
                ? el('div', { class: 'org' }, el('a', { href: `/ui/fiche.html${qs({ id: r.organization.reference })}` }, r.organization.name || r.organization.reference))
                : null,
            el('div', { class: 'facts' },
                el('span', { class: 'distance' }, `à ${fmtKm(r.distance_km)}`),
                bedsFact(r),
                r.open === true ? el('span', { class: 'badge ok' }, 'Ouvert maintenant') : r.open === false ? el('span', { class: 'badge full' }, 'Fermé actuellement') : null,
                r.sensitive ? el('span', { class: 'badge stale' }, 'Unité sensible') : null),
            why.length ? el('ul', { class: 'why', 'aria-label': 'Pourquoi ce résultat' }, why.map((w) => el('li', {}, w))) : null,
            r.location ? el('button', { type: 'button', class: 'link', onclick: () => showOnMap(r.rank) }, 'Voir sur la carte') : null);
        return li;
    }));
    drawMap(res);
}

function drawMap(res) {
    if (!map) return;
    const L = window.L;
    layer.clearLayers();
    placeLayer.clearLayers();
    markers.clear();
    const pts = [];
    for (const r of res.results) {
        if (!r.location || r.location.lat === undefined) continue;
        const ll = [r.location.lat, r.location.lon];
        pts.push(ll);
        const popup = el('div', {}, el('strong', {}, el('a', { href: `/ui/fiche.html${qs({ id: r.reference })}` }, r.name || r.reference)),
            r.organization && r.type !== 'Organization' ? el('div', {}, r.organization.name) : null,
            el('div', {}, `à ${fmtKm(r.distance_km)}`));
        const m = L.marker(ll, { icon: pinIcon(r.rank), title: `${r.rank}. ${r.name}`, alt: `${r.rank}. ${r.name}` }).bindPopup(popup);
        m.on('click', () => highlight(r.rank));
        markers.set(r.rank, m);
        layer.addLayer(m);
    }
    if (res.place) {
        const ll = [res.place.lat, res.place.lon];
        L.marker(ll, { icon: pinIcon('', 'place'), title: `Lieu de recherche : ${res.place.label}`, alt: 'Lieu de recherche', keyboard: false }).addTo(placeLayer);
        pts.push(ll);
    }
    // at rest once the view has moved (the tests and screen readers' users wait for it)
    $('map').dataset.settled = 'false';
    map.once('moveend', () => { $('map').dataset.settled = 'true'; });
    if (pts.length) fitTo(map, pts);
    else $('map').dataset.settled = 'true';
}

function highlight(rank) {
    document.querySelectorAll('.result.active').forEach((x) => x.classList.remove('active'));
    const li = document.getElementById(`r-${rank}`);
    if (li) {
        li.classList.add('active');
        li.scrollIntoView({ block: 'nearest' });
    }
}

function showOnMap(rank) {
    const m = markers.get(rank);
    if (!m || !map) return;
    highlight(rank);
    if (layer.zoomToShowLayer) layer.zoomToShowLayer(m, () => m.openPopup());
    else {
        map.setView(m.getLatLng(), Math.max(map.getZoom(), 13));
        m.openPopup();
    }
}

async function search(ev) {
    ev?.preventDefault();
    const status = $('status');
    const p = params();
    if (!placeParams()) {
        showError(status, 'Indiquez un lieu : une commune, un code postal, ou « Ma position ».');
        $('place').focus();
        return;
    }
    $('searching').textContent = 'Recherche en cours…';
    $('go').disabled = true;
    try {
        const res = await api(`/orientation${qs(p)}`);
        saveInAddress(p);
        renderResults(res);
    } catch (e) {
        $('results').replaceChildren();
        showError(status, e, 'Recherche impossible');
    } finally {
        $('searching').textContent = '';
        $('go').disabled = false;
    }
}

function locate() {
    const status = $('status');
    if (!navigator.geolocation) {
        showError(status, 'Votre navigateur ne donne pas votre position : choisissez une commune.');
        return;
    }
    $('geo').disabled = true;
    $('searching').textContent = 'Localisation…';
    navigator.geolocation.getCurrentPosition((pos) => {
        $('geo').disabled = false;
        $('searching').textContent = '';
        const acc = Math.round(pos.coords.accuracy || 0);
        setPlace({ kind: 'coords', lat: pos.coords.latitude, lon: pos.coords.longitude, label: `Ma position${acc ? ` (à ${fmtNumber(acc)} m près)` : ''}` });
        $('place').value = 'Ma position';
        search();
    }, (err) => {
        $('geo').disabled = false;
        $('searching').textContent = '';
        showError(status, err.code === 1 ? "Position refusée : autorisez la localisation ou choisissez une commune." : 'Position introuvable : choisissez une commune.');
    }, { enableHighAccuracy: false, timeout: 10000, maximumAge: 60000 });
}

async function main() {
    session = await initPage();
    combobox($('need'), {
        source: suggestNeeds,
        onSelect: (o) => {
            $('need').value = o.text;
            setNeed(o.value, o.text);
        },
    });
    $('need').addEventListener('input', () => {
        if ($('need').value.trim() !== need.label) setNeed('', '');
    });
    combobox($('place'), {
        source: suggestPlaces,
        onSelect: (o) => {
            $('place').value = o.value.label;
            setPlace(o.value);
        },
    });
    $('place').addEventListener('input', () => {
        if (place && $('place').value.trim() !== place.label) setPlace(null);
    });
    $('geo').addEventListener('click', locate);
    $('search').addEventListener('submit', search);
    const ready = restoreFromAddress();
    map = await createMap($('map'), { label: 'Carte des résultats' });
    if (map) {
        layer = clusterGroup().addTo(map);
        placeLayer = window.L.layerGroup().addTo(map);
    }
    await loadModes();
    if (ready) search();
    else $('need').focus();
    document.body.dataset.ready = 'true';
}

main();
