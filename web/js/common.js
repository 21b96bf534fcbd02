// Shared by every page: the fetch wrapper (same-origin cookie, CSRF token on unsafe methods,
// French messages from OperationOutcome), the session and the role-aware menu, DOM building
// without innerHTML (every text from the server is data, never markup), French formatting and
// the labels of the capacity dimensions (NOS TRE_R329..R337, small and stable: kept here so a
// store without the NOS imported still shows words).

const UNSAFE = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

export const NOS = 'https://mos.esante.gouv.fr/NOS/';
export const tre = (name) => `${NOS}${name}/FHIR/${name.replace('_', '-')}`;
export const SYS = {
    R13: tre('TRE_R13-CommuneOM'),
    R211: tre('TRE_R211-ActiviteOperationnelle'),
    R213: tre('TRE_R213-ModePriseEnCharge'),
    R336: tre('TRE_R336-TypeCrise'),
    R349: tre('TRE_R349-ActionAnomalie'),
    R350: tre('TRE_R350-ThematiqueAnomalie'),
    R352: tre('TRE_R352-StatutMetierAnomalie'),
};
export const ROR_SD = 'https://interop.esante.gouv.fr/ig/fhir/ror/StructureDefinition/';
export const CAPACITY_URL = `${ROR_SD}ror-location-supported-capacity`;

// ------------------------------------------------------------------------------------ fetch

export class ApiError extends Error {
    constructor(status, message, body) {
        super(message);
        this.status = status;
        this.body = body;
    }
}

/** The French text of an OperationOutcome (its diagnostics), or null. */
export function diagnosticsOf(body) {
    if (!body || typeof body !== 'object' || body.resourceType !== 'OperationOutcome') return null;
    const texts = (body.issue || []).map((i) => i.diagnostics || i.details?.text || i.code).filter(Boolean);
    return texts.length ? texts.join(' ; ') : null;
}

function statusMessage(status) {
    if (status === 401) return 'Connexion requise.';
    if (status === 403) return 'Vos droits ne permettent pas cette action.';
    if (status === 404) return 'Élément introuvable.';
    if (status === 409 || status === 412) return 'Cet élément a été modifié entre-temps : rechargez la page.';
    if (status === 429) return 'Trop de requêtes : réessayez dans un instant.';
    if (status >= 500) return 'Erreur du serveur : réessayez plus tard.';
    return `Requête refusée (${status}).`;
}

/**
 * A request to the server: JSON in and out, session cookie, CSRF token on unsafe methods.
 * Resolves to { data, status, headers }; rejects with ApiError (French message) otherwise.
 */
export async function request(path, { method = 'GET', body, type = 'application/json', headers = {} } = {}) {
    const h = { accept: 'application/json, application/fhir+json;q=0.9', ...headers };
    let payload;
    if (body !== undefined) {
        payload = typeof body === 'string' ? body : JSON.stringify(body);
        h['content-type'] = type;
    }
    if (UNSAFE.has(method)) {
        const s = await getSession();
        if (s.csrf) h['x-csrf-token'] = s.csrf;
    }
    let res;
    try {
        res = await fetch(path, { method, headers: h, body: payload, credentials: 'same-origin' });
    } catch {
        throw new ApiError(0, 'Serveur injoignable : vérifiez la connexion.');
    }
    const text = await res.text();
    let data = null;
    if (text) {
        try {
            data = JSON.parse(text);
        } catch {
            data = text;
        }
    }
    if (!res.ok) throw new ApiError(res.status, diagnosticsOf(data) || statusMessage(res.status), data);
    return { data, status: res.status, headers: res.headers };
}

/** request() and keep only the body. */
export async function api(path, options) {
    return (await request(path, options)).data;
}

/** A query string from an object (arrays repeat the name; null/undefined/'' are left out). */
export function qs(params) {
    const u = new URLSearchParams();
    for (const [k, v] of Object.entries(params)) {
        for (const x of Array.isArray(v) ? v : [v]) if (x !== undefined && x !== null && x !== '') u.append(k, String(x));
    }
    const s = u.toString();
    return s ? `?${s}` : '';
}

/** Every entry of a FHIR search, following the Bundle's next links (same origin). */
export async function searchAll(path, { maxPages = 25 } = {}) {
    const entries = [];
    let next = path;
    for (let page = 0; next && page < maxPages; page++) {
        const b = await api(next);
        entries.push(...(b.entry || []).filter((e) => e.resource && e.search?.mode !== 'outcome'));
        const link = (b.link || []).find((l) => l.relation === 'next');
        next = link ? sameOrigin(link.url) : null;
    }
    return entries;
}

/** The path and query of a URL of this server (links in Bundles are absolute). */
export function sameOrigin(url) {
    const u = new URL(url, location.href);
    return u.pathname + u.search;
}

// ------------------------------------------------------------------------------------ session

let sessionPromise;
const ANONYMOUS = { login: null, name: '', roles: [], profile: 0 };

export function getSession(refresh = false) {
    if (!sessionPromise || refresh) {
        sessionPromise = fetch('/auth/session', { credentials: 'same-origin', headers: { accept: 'application/json' } })
            .then((r) => (r.ok ? r.json() : ANONYMOUS))
            .catch(() => ANONYMOUS);
    }
    return sessionPromise;
}

export const hasRole = (s, role) => (s.roles || []).some((r) => r.role === role);
export const isAdmin = (s) => !!s.login && hasRole(s, 'ars-admin');
const ESTABLISHMENT_ROLES = ['ars-admin', 'establishment-manager', 'bed-declarer'];
/** The regional capacity views: profiles 1 and 4 (as the server decides; establishment staff
 * see their own units' capacities on the fiche and the bed form). */
export const canSeeCapacity = (s) => !!s.login && [1, 4].includes(s.profile);
export const canDeclareBeds = (s) => !!s.login && ESTABLISHMENT_ROLES.some((r) => hasRole(s, r));

const PAGES = [
    { href: '/', label: 'Rechercher', show: () => true },
    { href: '/ui/dashboard.html', label: 'Tableau des lits', show: canSeeCapacity },
    { href: '/ui/lits.html', label: 'Déclarer les lits', show: canDeclareBeds },
    { href: '/ui/admin.html', label: 'Administration', show: isAdmin },
];

/** The role-aware menu and the user area of the page header; resolves to the session. */
export async function initPage() {
    const s = await getSession();
    const nav = document.getElementById('menu');
    if (nav) {
        const here = location.pathname === '/index.html' ? '/' : location.pathname;
        const ul = el('ul', {}, PAGES.filter((p) => p.show(s)).map((p) =>
            el('li', {}, el('a', { href: p.href, 'aria-current': p.href === here ? 'page' : null }, p.label))));
        nav.replaceChildren(ul);
    }
    const user = document.getElementById('user');
    if (user) {
        if (s.login) {
            const roles = (s.roles || []).map((r) => r.label || r.role).join(', ');
            user.replaceChildren(
                el('span', { title: roles }, el('span', { class: 'visually-hidden' }, 'Connecté : '), s.name || s.login),
                el('button', { type: 'button', id: 'logout', onclick: logout }, 'Se déconnecter'));
        } else {
            const next = location.pathname + location.search;
            user.replaceChildren(el('a', { href: `/ui/login.html${qs({ next })}`, id: 'login-link' }, 'Se connecter'));
        }
    }
    return s;
}

export async function logout() {
    try {
        await api('/auth/logout', { method: 'POST', body: {} });
    } catch {
        // the session may already be over: signing out is done either way
    }
    location.href = '/';
}

/** The message shown instead of a page a signed-out visitor cannot use. */
export function loginNeeded(container, what) {
    const next = location.pathname + location.search;
    container.replaceChildren(el('p', { class: 'notice', role: 'status' }, `${what} : `,
        el('a', { href: `/ui/login.html${qs({ next })}` }, 'connectez-vous'), '.'));
}

// ------------------------------------------------------------------------------------ DOM

/**
 * el('a', { href, class, onclick, dataset: {...}, hidden: true }, 'text', child, [children])
 * Strings become text nodes; null/undefined/false children and attributes are left out.
 */
export function el(tag, attrs = {}, ...children) {
    const e = tag.startsWith('svg:')
        ? document.createElementNS('http://www.w3.org/2000/svg', tag.slice(4))
        : document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
        if (v === null || v === undefined || v === false) continue;
        if (k.startsWith('on') && typeof v === 'function') e.addEventListener(k.slice(2), v);
        else if (k === 'dataset') Object.assign(e.dataset, v);
        else if (k === 'class') e.setAttribute('class', Array.isArray(v) ? v.filter(Boolean).join(' ') : v);
        else if (['value', 'checked', 'selected', 'disabled', 'hidden', 'required', 'multiple'].includes(k)) e[k] = v;
        else e.setAttribute(k, v === true ? '' : String(v));
    }
    append(e, children);
    return e;
}

function append(parent, children) {
    for (const c of children) {
        if (c === null || c === undefined || c === false) continue;
        if (Array.isArray(c)) append(parent, c);
        else parent.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
}

/** Replace a container's children (null/false/undefined are left out, strings become text). */
export function put(container, ...children) {
    const frag = document.createDocumentFragment();
    append(frag, children);
    container.replaceChildren(frag);
    return container;
}

/** Replace a container's content with an error (role=alert so screen readers hear it). */
export function showError(container, err, prefix = '') {
    const msg = err instanceof Error ? err.message : String(err);
    const p = el('p', { class: 'error', role: 'alert' }, prefix ? `${prefix} : ${msg}` : msg);
    if (container) container.replaceChildren(p);
    return p;
}

/** A status message in a live region. */
export function flash(container, text, kind = 'success') {
    container.replaceChildren(el('p', { class: kind, role: kind === 'error' ? 'alert' : 'status' }, text));
}

/** Debounce a function (type-ahead). */
export function debounce(fn, ms) {
    let t;
    return (...args) => {
        clearTimeout(t);
        t = setTimeout(() => fn(...args), ms);
    };
}

// ------------------------------------------------------------------------------------ format

const dtf = new Intl.DateTimeFormat('fr-FR', { dateStyle: 'short', timeStyle: 'short' });
const df = new Intl.DateTimeFormat('fr-FR', { dateStyle: 'short' });
const tf = new Intl.DateTimeFormat('fr-FR', { timeStyle: 'short' });
const nf = new Intl.NumberFormat('fr-FR');
const nf1 = new Intl.NumberFormat('fr-FR', { maximumFractionDigits: 1 });

export function fmtDateTime(iso) {
    if (!iso) return '—';
    const d = new Date(iso);
    return Number.isNaN(d.getTime()) ? String(iso) : dtf.format(d).replace(' ', ' à ');
}
export function fmtDate(iso) {
    const d = new Date(iso);
    return Number.isNaN(d.getTime()) ? String(iso ?? '—') : df.format(d);
}
export function fmtTime(iso) {
    const d = new Date(iso);
    return Number.isNaN(d.getTime()) ? '' : tf.format(d);
}
export const fmtNumber = (n) => (n === null || n === undefined ? '—' : nf.format(n));
export const fmtKm = (km) => `${km < 10 ? nf1.format(km) : nf.format(Math.round(km))} km`;

/** "il y a 5 min", "il y a 3 h", "il y a 12 j" from an age in minutes. */
export function fmtAgeMinutes(min) {
    if (min === null || min === undefined || Number.isNaN(min)) return '';
    if (min < 1) return "à l'instant";
    if (min < 60) return `il y a ${Math.floor(min)} min`;
    const h = min / 60;
    if (h < 48) return `il y a ${Math.floor(h)} h`;
    return `il y a ${nf.format(Math.floor(h / 24))} j`;
}
export const fmtAgeSince = (iso) => (iso ? fmtAgeMinutes((Date.now() - Date.parse(iso)) / 60000) : '');

/** A CodeableConcept / Coding as text. */
export function conceptText(cc) {
    if (!cc) return '';
    if (cc.text) return cc.text;
    const c = cc.coding ? cc.coding[0] : cc;
    return c ? c.display || c.code || '' : '';
}

// ------------------------------------------------------------------------------------ capacity labels

export const CAP_DIMS = ['capacityType', 'capacityStatus', 'temporalityCapacity', 'genderCapacityAvailable',
    'capacityClosingType', 'additionalBedType', 'crisisType', 'temporaryAssignement'];

export const LABELS = {
    capacityType: { '01': 'Lit', '02': 'Place' },
    capacityStatus: { '01': 'Installé', '02': 'Disponible', '03': 'Occupé', '04': 'Réservé', '05': 'Fermé', '06': 'Supplémentaire' },
    temporalityCapacity: { '01': 'Courant', '02': 'Prévisionnel 1 heure', '03': 'Prévisionnel 24 heures', '04': 'Prévisionnel 48 heures', '05': 'Prévisionnel 7 jours' },
    genderCapacityAvailable: { '01': 'Femme', '02': 'Homme', '03': 'Indifférencié', '04': 'Indéterminé' },
    capacityClosingType: { '01': 'Réactivable', '02': 'Non réactivable', '03': 'Indéterminé' },
    additionalBedType: { '01': 'Mobilisé', '02': 'Mobilisable sans ressources humaines', '03': 'Mobilisable avec ressources humaines' },
    crisisType: { '01': 'PMIE 1', '02': 'Situation sanitaire exceptionnelle (plan blanc)' },
    temporaryAssignement: { '01': 'Aucune', '02': 'Covid+', '03': 'Covid-' },
    capacitySourceType: { '01': 'Saisie manuelle', '02': 'Bed management', '03': 'GAM', '04': 'DPI' },
    R349: { AJO: 'Ajout', COR: 'Correction', SUP: 'Suppression' },
    R350: { '01': 'Complétude', '02': 'Exhaustivité', '03': 'Cohérence', '04': 'Récence', '05': 'Structuration', '06': 'Exactitude' },
    R352: { '01': 'Créé', '02': 'À traiter', '03': 'Annulé', '04': 'Bloqué (destinataire manquant)', '05': 'Envoyé au destinataire', '06': 'Toléré temporairement', '07': 'Toléré définitivement', '08': 'Corrigé', '09': 'Refusé', '10': 'À vérifier' },
};

const STATUS_PLURAL = { '01': 'installés', '02': 'disponibles', '03': 'occupés', '04': 'réservés', '05': 'fermés', '06': 'supplémentaires' };
const GENDER_PLURAL = { '01': 'femmes', '02': 'hommes', '03': 'indifférenciés', '04': 'genre indéterminé' };

/** "Lits disponibles — femmes", "Places fermées (réactivables)", "Lits disponibles (prévisionnel 24 heures)". */
export function indicatorLabel(dims) {
    const place = dims.capacityType === '02';
    const status = place ? feminine(dims.capacityStatus) : STATUS_PLURAL[dims.capacityStatus] || `statut ${dims.capacityStatus}`;
    let s = `${place ? 'Places' : 'Lits'} ${status}`;
    const q = [];
    if (dims.genderCapacityAvailable) q.push(GENDER_PLURAL[dims.genderCapacityAvailable] || dims.genderCapacityAvailable);
    if (dims.temporalityCapacity && dims.temporalityCapacity !== '01') q.push((LABELS.temporalityCapacity[dims.temporalityCapacity] || dims.temporalityCapacity).toLowerCase());
    if (dims.capacityClosingType) q.push((LABELS.capacityClosingType[dims.capacityClosingType] || dims.capacityClosingType).toLowerCase());
    if (dims.additionalBedType) q.push((LABELS.additionalBedType[dims.additionalBedType] || dims.additionalBedType).toLowerCase());
    if (dims.crisisType) q.push(`crise ${LABELS.crisisType[dims.crisisType] || dims.crisisType}`);
    if (dims.temporaryAssignement && dims.temporaryAssignement !== '01') q.push(LABELS.temporaryAssignement[dims.temporaryAssignement] || dims.temporaryAssignement);
    if (q.length) s += ` — ${q.join(', ')}`;
    return s;
}

function feminine(status) {
    return { '01': 'installées', '02': 'disponibles', '03': 'occupées', '04': 'réservées', '05': 'fermées', '06': 'supplémentaires' }[status] || `statut ${status}`;
}

/** The indicator key the server uses ("01|02|01|03|-|-|-|01"). */
export const indicatorKey = (dims) => CAP_DIMS.map((d) => dims[d] || '-').join('|');

/** A Location's capacity indicators, read from its extensions. */
export function capacitiesOf(location) {
    return (location.extension || []).filter((x) => x.url === CAPACITY_URL).map((x) => {
        const dims = {};
        const o = { dims };
        for (const s of x.extension || []) {
            const code = s.valueCodeableConcept?.coding?.[0]?.code;
            if (CAP_DIMS.includes(s.url)) dims[s.url] = code;
            else if (s.url === 'nbCapacity') o.nb = s.valueInteger;
            else if (s.url === 'capacityUpdateDate') o.updateDate = s.valueDateTime;
            else if (s.url === 'capacitySourceType') o.source = code;
            else if (s.url === 'comment') o.comment = s.valueString;
        }
        o.key = indicatorKey(dims);
        return o;
    });
}

/** The département of an INSEE commune code (2 characters, 3 overseas). */
export const departementOf = (cog) => (!cog ? '' : cog.startsWith('97') ? cog.slice(0, 3) : cog.slice(0, 2));

/** The INSEE commune code of a Location (ror-commune-cog, else its address extension). */
export function communeOf(res) {
    const ext = (res.extension || []).find((x) => x.url === `${ROR_SD}ror-commune-cog`);
    const code = ext?.valueCodeableConcept?.coding?.[0]?.code;
    if (code) return code;
    const addr = Array.isArray(res.address) ? res.address[0] : res.address;
    const a = (addr?.extension || []).find((x) => x.url.endsWith('address-insee-code'));
    return a?.valueCoding?.code || '';
}

/** A one-line address. */
export function addressText(a) {
    const addr = Array.isArray(a) ? a[0] : a;
    if (!addr) return '';
    return [...(addr.line || []), [addr.postalCode, addr.city].filter(Boolean).join(' ')].filter(Boolean).join(', ');
}

/** A CSV field (';'-separated, as French spreadsheets expect). */
export function csvField(v) {
    const s = v === null || v === undefined ? '' : String(v);
    return /[;"\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

/** Offer a text file for download (client-side, no round trip). */
export function download(name, text, type = 'text/csv;charset=utf-8') {
    const blob = new Blob(['\ufeff', text], { type });
    const url = URL.createObjectURL(blob);
    const a = el('a', { href: url, download: name, hidden: true });
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10000);
}
