// The fiche of an establishment (Organization: EJ or EG), an offer (HealthcareService) or a unit
// (Location): hierarchy EJ > EG > offers, identifiers, address, contacts, opening hours,
// equipment, bed capacities with their history (SVG chart), last update and, for signed-in
// users, an anomaly report (RORTask) on the element.
import {
    ROR_SD, SYS, LABELS, addressText, api, canDeclareBeds, canSeeCapacity, conceptText, el, flash, fmtAgeSince, fmtDateTime,
    fmtNumber, indicatorLabel, initPage, isAdmin, put, qs, searchAll, showError,
} from './common.js';
import { timeSeriesChart } from './chart.js';
import { createMap, fitTo, pinIcon } from './map.js';

const root = document.getElementById('fiche');
const ID_RE = /^(Organization|HealthcareService|Location)\/[A-Za-z0-9\-.]{1,64}$/;
const DAYS = { mon: 'lundi', tue: 'mardi', wed: 'mercredi', thu: 'jeudi', fri: 'vendredi', sat: 'samedi', sun: 'dimanche' };
const DAY_ORDER = Object.keys(DAYS);
const HISTORY_DAYS = 30;
let session;

const section = (title, ...content) => el('section', { class: 'card', 'aria-labelledby': slug(title) }, el('h2', { id: slug(title) }, title), ...content);
function slug(s) {
    return `s-${s.normalize('NFD').replace(/[\u0300-\u036f]/g, '').toLowerCase().replace(/[^a-z0-9]+/g, '-')}`;
}
const ficheLink = (ref, text) => el('a', { href: `/ui/fiche.html${qs({ id: ref })}` }, text || ref);
const ext = (res, name) => (res.extension || []).filter((x) => x.url === `${ROR_SD}${name}` || x.url === name);

function facts(pairs) {
    const items = pairs.filter(([, v]) => v !== null && v !== undefined && v !== '' && !(Array.isArray(v) && !v.length));
    if (!items.length) return null;
    return el('dl', { class: 'facts' }, items.map(([k, v]) => [el('dt', {}, k), el('dd', {}, v)]));
}

function identifiers(res) {
    return (res.identifier || []).map((i) => {
        const t = conceptText(i.type) || (/finess/i.test(i.system || '') ? 'FINESS' : /sirene/i.test(i.system || '') ? 'SIRET' : 'Identifiant');
        return `${t} : ${i.value}`;
    }).join(' · ');
}

// ------------------------------------------------------------------------------------ contacts

function phone(v) {
    const d = String(v).replace(/\s+/g, '');
    return /^0\d{9}$/.test(d) ? d.replace(/(\d{2})(?=\d)/g, '$1 ') : v;
}

function telecomItem(t, who) {
    const kind = { phone: 'Téléphone', fax: 'Fax', email: 'Courriel', url: 'Site', sms: 'SMS', pager: 'Bip' }[t.system] || 'Contact';
    const channel = (t.extension || []).find((x) => /communication-channel/.test(x.url));
    const label = channel ? conceptText(channel.valueCodeableConcept) : kind;
    const value = t.system === 'phone' || t.system === 'fax' ? phone(t.value) : t.value;
    const href = t.system === 'phone' ? `tel:${String(t.value).replace(/\s+/g, '')}` : t.system === 'email' ? `mailto:${t.value}` : null;
    return el('li', {}, who ? `${who} — ` : '', `${label} : `, href ? el('a', { href }, value) : value);
}

function hsContacts(hs) {
    const out = [];
    for (const c of ext(hs, 'ror-healthcareservice-contact')) {
        const sub = c.extension || [];
        const purpose = sub.find((s) => /purposeContact/.test(s.url));
        const fn = sub.find((s) => /function-contact/.test(s.url));
        const desc = sub.find((s) => /contact-description/.test(s.url));
        const who = [purpose && conceptText(purpose.valueCodeableConcept), fn && conceptText(fn.valueCodeableConcept), desc?.valueString].filter(Boolean).join(', ');
        for (const t of sub.filter((s) => /contact-telecom/.test(s.url))) {
            const addr = (t.extension || []).find((s) => /telecomAddress/.test(s.url));
            const ch = (t.extension || []).find((s) => /communication-channel/.test(s.url));
            if (addr) out.push(el('li', {}, who ? `${who} — ` : '', `${ch ? conceptText(ch.valueCodeableConcept) : 'Contact'} : ${addr.valueString}`));
        }
    }
    return out;
}

function contacts(res) {
    const items = [...(res.telecom || []).map((t) => telecomItem(t))];
    for (const c of res.contact || []) {
        const name = c.name ? c.name.text || [...(c.name.prefix || []), ...(c.name.given || []), c.name.family].filter(Boolean).join(' ') : '';
        const who = [conceptText(c.purpose), name].filter(Boolean).join(', ');
        for (const t of c.telecom || []) items.push(telecomItem(t, who));
    }
    if (res.resourceType === 'HealthcareService') items.push(...hsContacts(res));
    return items.length ? el('ul', {}, items) : el('p', { class: 'muted' }, 'Aucun contact visible avec vos droits.');
}

// ------------------------------------------------------------------------------------ hours

function hours(hs) {
    const times = hs.availableTime || [];
    if (!times.length) return el('p', { class: 'muted' }, 'Horaires non renseignés.');
    const groups = new Map();
    for (const t of times) {
        const kind = conceptText(ext(t, 'ror-available-time-type-of-time')[0]?.valueCodeableConcept) || 'Horaires';
        const span = t.allDay ? 'toute la journée' : `${(t.availableStartTime || '00:00').slice(0, 5)} – ${(t.availableEndTime || '23:59').slice(0, 5)}`;
        const k = `${kind}|${span}`;
        if (!groups.has(k)) groups.set(k, { kind, span, days: new Set() });
        for (const d of t.daysOfWeek || []) groups.get(k).days.add(d);
    }
    const items = [...groups.values()].map((g) => {
        const days = DAY_ORDER.filter((d) => g.days.has(d));
        const daysText = days.length === 7 ? 'tous les jours' : days.map((d) => DAYS[d]).join(', ');
        const all = days.length === 7 && /^00:00 – 23:5\d$/.test(g.span);
        return el('li', {}, `${g.kind} : `, all ? '24 h/24, 7 j/7' : `${daysText}, ${g.span}`);
    });
    const extra = [];
    for (const n of hs.notAvailable || []) extra.push(el('li', {}, `Fermeture : ${n.description || ''}${n.during ? ` (${fmtDateTime(n.during.start)} → ${n.during.end ? fmtDateTime(n.during.end) : '…'})` : ''}`));
    if (hs.availabilityExceptions) extra.push(el('li', {}, hs.availabilityExceptions));
    return el('ul', {}, items, extra);
}

// ------------------------------------------------------------------------------------ offer facts

function ageRange(hs) {
    const pt = ext(hs, 'ror-healthcareservice-patient-type')[0];
    const r = (pt?.extension || []).find((s) => s.url === 'ageRange')?.valueRange;
    if (!r) return null;
    const lo = r.low?.value;
    const hi = r.high?.value;
    if (lo !== undefined && hi !== undefined) return `de ${lo} à ${hi} ans`;
    if (lo !== undefined) return `à partir de ${lo} ans`;
    return hi !== undefined ? `jusqu'à ${hi} ans` : null;
}

function publics(hs) {
    return ext(hs, 'ror-healthcareservice-patient-type').flatMap((pt) => (pt.extension || []).filter((s) => s.url === 'supportedPatientInfo').map((s) => conceptText(s.valueCodeableConcept))).filter(Boolean).join(', ');
}

function characteristics(hs) {
    return (hs.characteristic || []).map((c) => {
        const code = c.coding?.[0] || {};
        const kind = /TRE_R213/.test(code.system || '') ? 'Mode de prise en charge' : /TRE_R210/.test(code.system || '') ? 'Acte spécifique' : 'Caractéristique';
        return el('li', {}, `${kind} : ${conceptText(c)}`);
    });
}

function equipment(loc) {
    const items = ext(loc, 'ror-location-equipment').map((e) => {
        const sub = e.extension || [];
        const type = sub.find((s) => s.url === 'equipmentType');
        const n = sub.find((s) => s.url === 'nbInService');
        const limits = sub.filter((s) => /equipment-limit/.test(s.url)).map((l) => {
            const f = (l.extension || []).find((s) => s.url === 'equipmentFeature');
            const v = (l.extension || []).find((s) => s.url === 'limitValue')?.valueQuantity;
            return `${conceptText(f?.valueCodeableConcept)}${v ? ` ${fmtNumber(v.value)} ${v.unit || v.code || ''}` : ''}`.trim();
        });
        return el('li', {}, conceptText(type?.valueCodeableConcept) || 'Équipement', n?.valueInteger !== undefined ? ` — ${fmtNumber(n.valueInteger)} en service` : '', limits.length ? ` (${limits.join(', ')})` : '');
    });
    return items.length ? el('ul', {}, items) : null;
}

// ------------------------------------------------------------------------------------ capacities

async function capacityBlock(loc) {
    const box = el('div', { class: 'capacity', dataset: { location: loc.id } }, el('p', { class: 'muted' }, 'Chargement des capacités…'));
    (async () => {
        try {
            const since = new Date(Date.now() - HISTORY_DAYS * 86400000).toISOString();
            const [cur, evs] = await Promise.all([
                api(`/capacity/Location/${encodeURIComponent(loc.id)}`),
                api(`/capacity/Location/${encodeURIComponent(loc.id)}/events${qs({ _since: since, _count: 200 })}`),
            ]);
            const events = evs.events || [];
            const last = events[events.length - 1];
            const table = el('table', { class: 'indicators' },
                el('caption', { class: 'visually-hidden' }, `Capacités de ${loc.name || loc.id}`),
                el('thead', {}, el('tr', {}, ['Indicateur', 'Nombre', 'Déclaré', 'Source'].map((h, i) => el('th', { scope: 'col', class: i === 1 ? 'num' : null }, h)))),
                el('tbody', {}, (cur.indicators || []).map((i) => el('tr', {},
                    el('th', { scope: 'row' }, indicatorLabel(i.dimensions)),
                    el('td', { class: 'num' }, i.nbCapacity !== null && i.nbCapacity !== undefined ? fmtNumber(i.nbCapacity)
                        : el('span', {}, el('span', { class: 'badge stale' }, i.crisisClosed ? 'crise close' : 'inconnu'), i.lastKnown !== undefined ? ` (dernier : ${fmtNumber(i.lastKnown)})` : '')),
                    el('td', {}, i.updateDate ? `${fmtDateTime(i.updateDate)} (${fmtAgeSince(i.updateDate)})` : '—'),
                    el('td', {}, LABELS.capacitySourceType[i.source] || i.source || '')))));
            const byKey = new Map();
            for (const e of events) {
                if (!byKey.has(e.indicator)) byKey.set(e.indicator, { label: indicatorLabel(e.dimensions), points: [] });
                byKey.get(e.indicator).points.push({ t: Date.parse(e.at), v: e.after, by: e.author });
            }
            put(box,
                cur.indicators?.length ? el('div', { class: 'table-wrap' }, table) : el('p', { class: 'muted' }, 'Aucun indicateur de capacité.'),
                last ? el('p', { class: 'small last-update' }, `Dernière mise à jour des capacités : ${fmtDateTime(last.at)} par ${last.author}.`) : null,
                el('h4', {}, `Historique (${HISTORY_DAYS} derniers jours)`),
                timeSeriesChart([...byKey.values()], { title: `Capacités de ${loc.name || loc.id} sur ${HISTORY_DAYS} jours` }));
        } catch (e) {
            showError(box, e, 'Capacités indisponibles');
        }
    })();
    return box;
}

async function locationsBlock(locs) {
    if (!locs.length) return null;
    const blocks = [];
    const withCapacity = locs.filter((l) => ext(l, 'ror-location-supported-capacity').length);
    // establishment staff see the capacities of their own units only (the server's rule)
    const mine = !canSeeCapacity(session) && canDeclareBeds(session) && withCapacity.length
        ? new Set(((await api('/capacity/mine')).locations || []).map((u) => u.id))
        : null;
    const showsCapacity = (l) => canSeeCapacity(session) || (mine && mine.has(l.id));
    for (const l of locs) {
        blocks.push(el('article', { class: 'site', dataset: { location: l.id } },
            el('h3', {}, l.id === current?.id ? l.name || l.id : ficheLink(`Location/${l.id}`, l.name || l.id)),
            facts([
                ['Adresse', addressText(l.address)],
                ['Statut', conceptText(l.operationalStatus) || (l.status === 'inactive' ? 'fermé' : null)],
                ['Fonction', (l.type || []).map(conceptText).join(', ')],
            ]),
            l.telecom?.length ? contacts(l) : null,
            equipment(l) ? [el('h4', {}, 'Équipements'), equipment(l)] : null,
            ext(l, 'ror-location-supported-capacity').length && showsCapacity(l) ? await capacityBlock(l) : null));
    }
    const note = withCapacity.some((l) => !showsCapacity(l))
        ? el('p', { class: 'notice' }, 'Les capacités en lits sont réservées aux comptes de régulation, de l\'ARS et des établissements. ', session.login ? null : el('a', { href: `/ui/login.html${qs({ next: location.pathname + location.search })}` }, 'Se connecter'))
        : null;
    const mapBox = el('div', { class: 'map small', id: 'fiche-map' });
    const sec = section(locs.length > 1 ? 'Lieux et capacités' : 'Lieu et capacités', note, mapBox, blocks);
    setTimeout(async () => {
        const pts = locs.filter((l) => l.position).map((l) => [l.position.latitude, l.position.longitude]);
        if (!pts.length) {
            mapBox.hidden = true;
            return;
        }
        const map = await createMap(mapBox, { label: 'Carte des lieux' });
        if (!map) return;
        locs.filter((l) => l.position).forEach((l, i) => window.L.marker([l.position.latitude, l.position.longitude], { icon: pinIcon(i + 1), title: l.name || l.id, alt: l.name || l.id }).addTo(map));
        fitTo(map, pts, 15);
    }, 0);
    return sec;
}

// ------------------------------------------------------------------------------------ hierarchy

async function parents(org) {
    const chain = [];
    let ref = org?.partOf?.reference;
    for (let i = 0; ref && i < 5; i++) {
        try {
            const p = await api(`/fhir/${ref}`);
            chain.unshift(p);
            ref = p.partOf?.reference;
        } catch {
            break;
        }
    }
    return chain;
}

function orgKind(org) {
    const codes = (org.type || []).flatMap((t) => t.coding || []);
    if (codes.some((c) => c.code === 'LEGAL-ENTITY')) return 'Entité juridique';
    if (codes.some((c) => c.code === 'GEOGRAPHICAL-ENTITY')) return 'Établissement (entité géographique)';
    return org.partOf ? 'Établissement (entité géographique)' : 'Entité juridique';
}

function category(org) {
    return (org.type || []).flatMap((t) => t.coding || []).filter((c) => /CAT_ETAB|TRE_R66/.test(c.system || '')).map((c) => c.display || c.code).join(', ');
}

function hierarchyList(chain, here, children, services) {
    return el('ol', { class: 'hierarchy', 'aria-label': 'Hiérarchie' },
        chain.map((o) => el('li', {}, ficheLink(`Organization/${o.id}`, o.name || o.id), el('span', { class: 'small muted' }, ` — ${orgKind(o)}`))),
        el('li', { class: 'current', 'aria-current': 'page' }, here),
        children.length ? el('li', {}, `${children.length} établissement${children.length > 1 ? 's' : ''} rattaché${children.length > 1 ? 's' : ''} :`,
            el('ul', {}, children.map((c) => el('li', {}, ficheLink(`Organization/${c.id}`, c.name || c.id))))) : null,
        services.length ? el('li', {}, `${services.length} offre${services.length > 1 ? 's' : ''} :`,
            el('ul', {}, services.map((s) => el('li', {}, ficheLink(`HealthcareService/${s.id}`, s.name || s.id), s.active === false ? ' (fermée)' : '')))) : null);
}

// ------------------------------------------------------------------------------------ last update

async function lastUpdate(res) {
    const p = el('p', { class: 'small muted', id: 'last-update' }, `Dernière modification de la fiche : ${fmtDateTime(res.meta?.lastUpdated)} (version ${res.meta?.versionId || '?'}).`);
    if (isAdmin(session)) {
        // the author of a version is in the audit trail (ARS only) until reads carry it
        try {
            const b = await api(`/audit${qs({ type: res.resourceType, id: res.id, _count: 1 })}`);
            const ev = b.entry?.[0]?.resource;
            const who = ev?.agent?.[0]?.who?.display;
            if (who) p.append(` Auteur : ${who}.`);
        } catch {
            // the date alone is still right
        }
    }
    return p;
}

// ------------------------------------------------------------------------------------ anomaly

function anomalyBlock(res, title) {
    if (!session.login) {
        return el('p', { class: 'small' }, 'Une information erronée ? ', el('a', { href: `/ui/login.html${qs({ next: location.pathname + location.search })}` }, 'Connectez-vous'), ' pour signaler une anomalie.');
    }
    const out = el('div', { id: 'anomaly-status', 'aria-live': 'polite' });
    const theme = el('select', { id: 'an-theme', required: true }, Object.entries(LABELS.R350).map(([c, l]) => el('option', { value: c, selected: c === '06' }, l)));
    const action = el('select', { id: 'an-action', required: true }, Object.entries(LABELS.R349).map(([c, l]) => el('option', { value: c, selected: c === 'COR' }, l)));
    const desc = el('textarea', { id: 'an-desc', required: true, maxlength: 2000, 'aria-describedby': 'an-desc-hint' });
    const err = el('div', { 'aria-live': 'assertive' });
    const dialog = el('dialog', { id: 'anomaly', 'aria-labelledby': 'an-title' });
    const form = el('form', { novalidate: true },
        el('h2', { id: 'an-title' }, 'Signaler une anomalie'),
        el('p', {}, `Sur : ${title}`),
        el('div', { class: 'field' }, el('label', { for: 'an-theme' }, 'Thème'), theme),
        el('div', { class: 'field' }, el('label', { for: 'an-action' }, 'Action demandée'), action),
        el('div', { class: 'field' }, el('label', { for: 'an-desc' }, 'Description'), el('span', { id: 'an-desc-hint', class: 'hint' }, 'Ce qui est faux et la correction attendue.'), desc),
        err,
        el('div', { class: 'row' },
            el('button', { type: 'submit', class: 'primary', id: 'an-send' }, 'Envoyer le signalement'),
            el('button', { type: 'button', onclick: () => dialog.close() }, 'Annuler')));
    form.addEventListener('submit', async (ev) => {
        ev.preventDefault();
        if (!desc.value.trim()) {
            showError(err, 'Décrivez l\'anomalie.');
            desc.focus();
            return;
        }
        const task = {
            resourceType: 'Task', status: 'requested', intent: 'order',
            focus: { reference: `${res.resourceType}/${res.id}` },
            code: { coding: [{ system: SYS.R350, code: theme.value, display: LABELS.R350[theme.value] }] },
            reasonCode: { coding: [{ system: SYS.R349, code: action.value, display: LABELS.R349[action.value] }] },
            businessStatus: { coding: [{ system: SYS.R352, code: '01', display: LABELS.R352['01'] }] },
            description: desc.value.trim(),
        };
        try {
            const t = await api('/fhir/Task', { method: 'POST', body: task, type: 'application/fhir+json' });
            dialog.close();
            desc.value = '';
            flash(out, `Anomalie enregistrée (n° ${t.id}), transmise à ${t.owner?.display || t.owner?.reference || 'l\'organisation responsable'}.`);
            out.dataset.task = t.id;
        } catch (e) {
            showError(err, e, 'Signalement refusé');
        }
    });
    dialog.append(form);
    return el('div', {}, el('button', { type: 'button', id: 'report-anomaly', onclick: () => { put(err); dialog.showModal(); desc.focus(); } }, 'Signaler une anomalie'), out, dialog);
}

// ------------------------------------------------------------------------------------ views

let current = null;

async function organizationView(org) {
    const [chain, children, hsEntries, locEntries] = await Promise.all([
        parents(org),
        searchAll(`/fhir/Organization${qs({ partof: org.id, _count: 200 })}`, { maxPages: 3 }),
        searchAll(`/fhir/HealthcareService${qs({ organization: org.id, _include: 'HealthcareService:location', _count: 200 })}`, { maxPages: 3 }),
        searchAll(`/fhir/Location${qs({ organization: org.id, _count: 200 })}`, { maxPages: 3 }),
    ]);
    const services = hsEntries.filter((e) => e.resource.resourceType === 'HealthcareService').map((e) => e.resource);
    const locs = new Map();
    for (const e of [...hsEntries, ...locEntries]) if (e.resource.resourceType === 'Location') locs.set(e.resource.id, e.resource);
    return [
        el('h1', {}, org.name || org.id),
        el('p', { class: 'muted' }, orgKind(org), category(org) ? ` — ${category(org)}` : '', org.active === false ? ' — fermé' : ''),
        await lastUpdate(org),
        anomalyBlock(org, org.name || org.id),
        el('div', { class: 'grid-2' },
            section('Identité', facts([
                ['Identifiants', identifiers(org)],
                ['Adresse', addressText(org.address)],
                ['Catégorie', category(org)],
            ])),
            section('Contacts', contacts(org))),
        section('Hiérarchie', hierarchyList(chain.filter((o) => o.id !== org.id), org.name || org.id, children.map((e) => e.resource).filter((r) => r.resourceType === 'Organization'), services)),
        await locationsBlock([...locs.values()]),
    ];
}

async function serviceView(hs) {
    const [org, locEntries, roles] = await Promise.all([
        hs.providedBy?.reference ? api(`/fhir/${hs.providedBy.reference}`).catch(() => null) : null,
        searchAll(`/fhir/HealthcareService${qs({ _id: hs.id, _include: 'HealthcareService:location' })}`, { maxPages: 1 }),
        searchAll(`/fhir/PractitionerRole${qs({ service: hs.id, _include: 'PractitionerRole:practitioner', _count: 100 })}`, { maxPages: 1 }).catch(() => []),
    ]);
    const chain = org ? [...await parents(org), org] : [];
    const locs = locEntries.filter((e) => e.resource.resourceType === 'Location').map((e) => e.resource);
    const practitioners = new Map(roles.filter((e) => e.resource.resourceType === 'Practitioner').map((e) => [e.resource.id, e.resource]));
    const people = roles.filter((e) => e.resource.resourceType === 'PractitionerRole').map((e) => {
        const pr = practitioners.get((e.resource.practitioner?.reference || '').replace('Practitioner/', ''));
        const n = pr?.name?.[0];
        const name = n ? [...(n.prefix || []), ...(n.given || []), n.family].filter(Boolean).join(' ') : e.resource.practitioner?.display || 'Professionnel';
        return el('li', {}, name, e.resource.code?.length ? ` — ${e.resource.code.map(conceptText).join(', ')}` : '');
    });
    const sensitive = ext(hs, 'ror-healthcareservice-sensitive-unit')[0]?.valueBoolean;
    return [
        el('h1', {}, hs.name || hs.id),
        el('p', { class: 'muted' }, 'Offre de soins', org ? [' — ', ficheLink(`Organization/${org.id}`, org.name)] : '', hs.active === false ? ' — fermée' : '', sensitive ? ' — unité sensible' : ''),
        await lastUpdate(hs),
        anomalyBlock(hs, hs.name || hs.id),
        section('Hiérarchie', hierarchyList(chain, hs.name || hs.id, [], [])),
        el('div', { class: 'grid-2' },
            section('Offre', facts([
                ['Identifiants', identifiers(hs)],
                ['Champ d\'activité', (hs.type || []).map(conceptText).join(', ')],
                ['Activité opérationnelle', (hs.specialty || []).map(conceptText).join(', ')],
                ['Public', publics(hs)],
                ['Âge', ageRange(hs)],
            ]), characteristics(hs).length ? el('ul', {}, characteristics(hs)) : null),
            section('Contacts et horaires', contacts(hs), el('h3', {}, 'Horaires'), hours(hs))),
        people.length ? section('Professionnels', el('ul', {}, people)) : null,
        await locationsBlock(locs),
    ];
}

async function locationView(loc) {
    const hs = (await searchAll(`/fhir/HealthcareService${qs({ location: loc.id, _count: 100 })}`, { maxPages: 1 })).map((e) => e.resource).filter((r) => r.resourceType === 'HealthcareService');
    const orgRef = loc.managingOrganization?.reference || hs.find((s) => s.providedBy)?.providedBy.reference;
    const org = orgRef ? await api(`/fhir/${orgRef}`).catch(() => null) : null;
    const chain = org ? [...await parents(org), org] : [];
    return [
        el('h1', {}, loc.name || loc.id),
        el('p', { class: 'muted' }, 'Lieu de réalisation de l\'offre', org ? [' — ', ficheLink(`Organization/${org.id}`, org.name)] : ''),
        await lastUpdate(loc),
        anomalyBlock(loc, loc.name || loc.id),
        chain.length ? section('Hiérarchie', hierarchyList(chain, loc.name || loc.id, [], [])) : null,
        hs.length ? section('Offres délivrées ici', el('ul', {}, hs.map((s) => el('li', {}, ficheLink(`HealthcareService/${s.id}`, s.name || s.id))))) : null,
        await locationsBlock([loc]),
    ];
}

async function main() {
    session = await initPage();
    const id = new URLSearchParams(location.search).get('id') || '';
    if (!ID_RE.test(id)) {
        showError(root, 'Fiche introuvable : adresse incomplète (paramètre id=Organization/…, HealthcareService/… ou Location/…).');
        return;
    }
    try {
        const res = await api(`/fhir/${id}`);
        current = res;
        document.title = `${res.name || res.id} — ROR`;
        const view = res.resourceType === 'Organization' ? organizationView : res.resourceType === 'HealthcareService' ? serviceView : locationView;
        put(root, ...await view(res));
    } catch (e) {
        showError(root, e, 'Fiche indisponible');
    }
    document.body.dataset.ready = 'true';
}

main();
