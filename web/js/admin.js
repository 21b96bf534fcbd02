// The ARS administration page: crisis mode (open, close), units whose bed declarations are too
// old, searches that found nothing, anomaly reports (status changes), the validation queue of
// establishment managers' changes, the audit trail and the accounts (list, create, roles,
// disable/enable, new password). Shown to ARS administrators only (the server refuses the others
// anyway: nothing is even asked for them).
import {
    LABELS, SYS, api, el, flash, fmtAgeMinutes, fmtDateTime, fmtNumber, indicatorLabel, initPage, isAdmin, loginNeeded,
    put, qs, sameOrigin, searchAll, showError,
} from './common.js';

const root = document.getElementById('admin');
const SECTIONS = [
    ['crises', 'Crises'], ['stale', 'Déclarations anciennes'], ['gaps', 'Recherches sans résultat'],
    ['anomalies', 'Anomalies'], ['validation', 'Validation'], ['audit', 'Journal d\'audit'], ['accounts', 'Comptes'],
];
const bodies = {};
const ficheLink = (ref, text) => el('a', { href: `/ui/fiche.html${qs({ id: ref })}` }, text || ref);

function table(caption, head, rows, empty) {
    if (!rows.length) return el('p', { class: 'muted' }, empty);
    return el('div', { class: 'table-wrap' }, el('table', {},
        el('caption', { class: 'visually-hidden' }, caption),
        el('thead', {}, el('tr', {}, head.map((h) => el('th', { scope: 'col' }, h)))),
        el('tbody', {}, rows)));
}

/** Names of resources by reference, read in batches with _id. */
async function names(type, ids) {
    const out = new Map();
    const list = [...new Set(ids)];
    for (let i = 0; i < list.length; i += 50) {
        for (const e of await searchAll(`/fhir/${type}${qs({ _id: list.slice(i, i + 50).join(','), _count: 200 })}`, { maxPages: 2 })) {
            out.set(e.resource.id, e.resource.name || e.resource.id);
        }
    }
    return out;
}

// ------------------------------------------------------------------------------------ crises

async function crises() {
    const box = bodies.crises;
    const c = await api('/capacity/crisis');
    const rows = (c.crises || []).slice().sort((a, b) => b.id - a.id).map((x) => {
        const close = x.open ? el('button', { type: 'button', class: 'danger', dataset: { close: String(x.id) } }, 'Clore') : null;
        if (close) {
            let armed = false;
            close.addEventListener('click', async () => {
                if (!armed) {
                    armed = true;
                    close.textContent = 'Confirmer la clôture';
                    setTimeout(() => { armed = false; close.textContent = 'Clore'; }, 6000);
                    return;
                }
                try {
                    await api(`/capacity/crisis/${x.id}/close`, { method: 'POST', body: {} });
                    await crises();
                    flash(msg, `Crise n° ${x.id} close.`);
                } catch (e) {
                    showError(msg, e, 'Clôture refusée');
                }
            });
        }
        return el('tr', { dataset: { crisis: String(x.id) } },
            el('td', {}, String(x.id)), el('td', {}, LABELS.crisisType[x.type] || x.type),
            el('td', {}, x.territory === 'national' ? 'national' : x.territory.split(',').join(', ')),
            el('td', {}, `${fmtDateTime(x.started)} par ${x.openedBy}`),
            el('td', {}, x.open ? el('span', { class: 'badge full' }, 'en cours') : `close le ${fmtDateTime(x.ended)} par ${x.closedBy}`),
            el('td', {}, x.comment || ''), el('td', {}, close));
    });
    const type = el('select', { id: 'crisis-type' }, Object.entries(LABELS.crisisType).map(([k, v]) => el('option', { value: k, selected: k === '02' }, v)));
    const national = el('input', { type: 'radio', name: 'scope', id: 'scope-national', value: 'national' });
    const deps = el('input', { type: 'radio', name: 'scope', id: 'scope-deps', value: 'deps', checked: true });
    const depList = el('input', { type: 'text', id: 'crisis-deps', placeholder: 'ex. 75, 92, 94', 'aria-describedby': 'crisis-deps-hint' });
    const comment = el('input', { type: 'text', id: 'crisis-comment', maxlength: 1000 });
    const msg = el('div', { 'aria-live': 'polite' });
    const form = el('form', { id: 'crisis-form', class: 'card', novalidate: true },
        el('h3', {}, 'Ouvrir une crise'),
        el('div', { class: 'field' }, el('label', { for: 'crisis-type' }, 'Type de crise'), type),
        el('fieldset', {}, el('legend', {}, 'Territoire'),
            el('label', { class: 'check', for: 'scope-deps' }, deps, 'Départements'),
            el('div', { class: 'field' }, el('label', { for: 'crisis-deps' }, 'Codes des départements'), el('span', { id: 'crisis-deps-hint', class: 'hint' }, 'séparés par des virgules'), depList),
            el('label', { class: 'check', for: 'scope-national' }, national, 'Territoire national')),
        el('div', { class: 'field' }, el('label', { for: 'crisis-comment' }, 'Commentaire'), comment),
        el('button', { type: 'submit', class: 'primary', id: 'crisis-open' }, 'Ouvrir la crise'));
    form.addEventListener('submit', async (ev) => {
        ev.preventDefault();
        let territory = 'national';
        if (deps.checked) {
            territory = depList.value.split(/[\s,;]+/).filter(Boolean).map((d) => d.toUpperCase());
            if (!territory.length || territory.some((d) => !/^(\d{2}|2[AB]|97[1-8])$/.test(d))) {
                showError(msg, 'Codes de départements attendus (ex. 75, 2A, 974).');
                depList.focus();
                return;
            }
        }
        try {
            const r = await api('/capacity/crisis', { method: 'POST', body: { type: type.value, territory, comment: comment.value.trim() || undefined } });
            await crises();
            flash(bodies.crises.querySelector('[data-msg]') || msg, `Crise n° ${r.id} ouverte : les lits supplémentaires peuvent être déclarés sur son territoire.`);
        } catch (e) {
            showError(msg, e, 'Ouverture refusée');
        }
    });
    put(box, el('p', {}, `${c.open} crise${c.open > 1 ? 's' : ''} en cours.`),
        table('Crises', ['N°', 'Type', 'Territoire', 'Ouverte', 'État', 'Commentaire', ''], rows, 'Aucune crise enregistrée.'),
        el('div', { dataset: { msg: '1' }, 'aria-live': 'polite' }), form, msg);
}

// ------------------------------------------------------------------------------------ stale

async function stale() {
    const s = await api('/capacity/stale');
    const byLoc = new Map();
    for (const x of s.stale || []) {
        if (!byLoc.has(x.location)) byLoc.set(x.location, []);
        byLoc.get(x.location).push(x);
    }
    const nm = await names('Location', [...byLoc.keys()].slice(0, 300));
    const rows = [...byLoc.entries()].slice(0, 300).map(([id, list]) => el('tr', { dataset: { location: id } },
        el('td', {}, ficheLink(`Location/${id}`, nm.get(id) || id)),
        el('td', {}, el('ul', {}, list.map((x) => el('li', {}, `${indicatorLabel(x.dimensions || {})} : dernier ${fmtNumber(x.lastKnown)}`)))),
        el('td', {}, fmtAgeMinutes(Math.max(...list.map((x) => x.ageHours)) * 60)),
        el('td', {}, [...new Set(list.map((x) => x.author))].join(', '))));
    put(bodies.stale,
        el('p', {}, `${fmtNumber(s.total)} indicateur${s.total > 1 ? 's' : ''} à déclaration trop ancienne, dans ${fmtNumber(byLoc.size)} unité${byLoc.size > 1 ? 's' : ''} (les plus anciennes d'abord) : unités à relancer.`),
        table('Unités à relancer', ['Unité', 'Indicateurs', 'Plus ancienne', 'Dernier déclarant'], rows, 'Toutes les déclarations sont à jour.'));
}

// ------------------------------------------------------------------------------------ gaps

function queryText(q) {
    if (!q || typeof q !== 'object') return String(q ?? '');
    const parts = [];
    for (const [k, v] of Object.entries(q)) parts.push(`${k} : ${Array.isArray(v) ? v.join(' + ') : v}`);
    return parts.join(' ; ');
}

async function gaps() {
    const g = await api('/orientation/gaps?_count=100');
    const rows = (g.gaps || []).map((x) => el('tr', {}, el('td', {}, fmtDateTime(x.at)), el('td', {}, x.author || ''), el('td', {}, queryText(x.query))));
    put(bodies.gaps, el('p', {}, `${fmtNumber(g.count)} recherche${g.count > 1 ? 's' : ''} sans résultat (les plus récentes d'abord) : les manques de l'offre ou de sa description.`),
        table('Recherches sans résultat', ['Date', 'Par', 'Recherche'], rows, 'Aucune recherche sans résultat.'));
}

// ------------------------------------------------------------------------------------ anomalies

async function anomalies() {
    const entries = await searchAll(`/fhir/Task${qs({ _sort: '-_lastUpdated', _count: 100 })}`, { maxPages: 1 });
    const tasks = entries.map((e) => e.resource).filter((r) => r.resourceType === 'Task');
    const msg = el('div', { 'aria-live': 'polite' });
    const rows = tasks.map((t) => {
        const status = t.businessStatus?.coding?.[0]?.code || '';
        const sel = el('select', { id: `task-${t.id}`, 'aria-label': `Statut de l'anomalie ${t.id}` },
            Object.entries(LABELS.R352).map(([k, v]) => el('option', { value: k, selected: k === status }, v)));
        const btn = el('button', {
            type: 'button', onclick: async () => {
                try {
                    const fresh = await api(`/fhir/Task/${encodeURIComponent(t.id)}`);
                    fresh.businessStatus = { coding: [{ system: SYS.R352, code: sel.value, display: LABELS.R352[sel.value] }] };
                    if (['03', '08', '09'].includes(sel.value)) fresh.status = sel.value === '08' ? 'completed' : sel.value === '09' ? 'rejected' : 'cancelled';
                    await api(`/fhir/Task/${encodeURIComponent(t.id)}`, { method: 'PUT', body: fresh, type: 'application/fhir+json', headers: { 'if-match': `W/"${fresh.meta?.versionId}"` } });
                    flash(msg, `Anomalie ${t.id} : statut « ${LABELS.R352[sel.value]} » enregistré.`);
                } catch (e) {
                    showError(msg, e, 'Mise à jour refusée');
                }
            },
        }, 'Enregistrer');
        return el('tr', { dataset: { task: t.id } },
            el('td', {}, fmtDateTime(t.lastModified || t.authoredOn)),
            el('td', {}, t.focus?.reference ? ficheLink(t.focus.reference, t.focus.display || t.focus.reference) : ''),
            el('td', {}, LABELS.R350[t.code?.coding?.[0]?.code] || t.code?.coding?.[0]?.code || ''),
            el('td', {}, LABELS.R349[t.reasonCode?.coding?.[0]?.code] || t.reasonCode?.coding?.[0]?.code || ''),
            el('td', {}, t.description || ''),
            el('td', {}, t.requester?.display || t.requester?.reference || ''),
            el('td', {}, t.owner?.reference ? ficheLink(t.owner.reference, t.owner.display || t.owner.reference) : ''),
            el('td', {}, el('div', { class: 'row' }, sel, btn)));
    });
    put(bodies.anomalies, el('p', {}, `${tasks.length} anomalie${tasks.length > 1 ? 's' : ''} (les plus récentes d'abord).`),
        table('Anomalies signalées', ['Modifiée', 'Sur', 'Thème', 'Action', 'Description', 'Signalée par', 'Responsable', 'Statut'], rows, 'Aucune anomalie signalée.'), msg);
}

// ------------------------------------------------------------------------------------ validation

async function validation() {
    const v = await api('/validation?status=pending');
    const msg = el('div', { 'aria-live': 'polite' });
    const rows = (v.changes || []).map((c) => {
        const reason = el('input', { type: 'text', id: `reason-${c.id}`, placeholder: 'motif du refus' });
        const decide = async (what) => {
            try {
                if (what === 'reject' && !reason.value.trim()) {
                    showError(msg, 'Indiquez le motif du refus.');
                    reason.focus();
                    return;
                }
                await api(`/validation/${c.id}/${what}`, { method: 'POST', body: what === 'reject' ? { reason: reason.value.trim() } : {} });
                await validation();
                flash(bodies.validation.querySelector('[data-msg]'), `Modification n° ${c.id} ${what === 'approve' ? 'approuvée et appliquée' : 'refusée'}.`);
            } catch (e) {
                showError(msg, e, 'Décision refusée');
            }
        };
        const ref = c.resourceId ? `${c.type}/${c.resourceId}` : c.type;
        return el('tr', { dataset: { change: String(c.id) } },
            el('td', {}, String(c.id)), el('td', {}, fmtDateTime(c.at)), el('td', {}, c.author),
            el('td', {}, { create: 'création', update: 'modification', delete: 'suppression' }[c.operation] || c.operation),
            el('td', {}, c.resourceId ? ficheLink(ref, c.resource?.name ? `${c.resource.name}` : ref) : (c.resource?.name || ref)),
            el('td', {}, el('div', { class: 'row' },
                el('button', { type: 'button', class: 'primary', onclick: () => decide('approve') }, 'Approuver'),
                el('label', { for: `reason-${c.id}`, class: 'visually-hidden' }, `Motif du refus de la modification ${c.id}`), reason,
                el('button', { type: 'button', class: 'danger', onclick: () => decide('reject') }, 'Refuser'))));
    });
    put(bodies.validation, el('div', { dataset: { msg: '1' }, 'aria-live': 'polite' }),
        table('Modifications en attente', ['N°', 'Reçue', 'Par', 'Opération', 'Élément', 'Décision'], rows,
            'Aucune modification en attente (la validation par l\'ARS n\'est active que si le serveur est lancé avec --validation).'), msg);
}

// ------------------------------------------------------------------------------------ audit

const ACTIONS = ['login', 'logout', 'create', 'update', 'delete', 'read', 'access', 'authenticate', 'validate'];
const ACTION_FR = { login: 'connexion', logout: 'déconnexion', create: 'création', update: 'modification', delete: 'suppression', read: 'lecture', access: 'accès', authenticate: 'authentification', validate: 'validation', search: 'recherche' };
let auditNext = null;

function auditRows(b) {
    return (b.entry || []).map((e) => e.resource).map((a) => {
        const who = a.agent?.[0]?.who?.display || '';
        const act = a.subtype?.[0]?.code || a.action;
        return el('tr', {},
            el('td', {}, fmtDateTime(a.recorded)), el('td', {}, who),
            el('td', {}, ACTION_FR[act] || act), el('td', {}, a.outcome === '0' ? 'succès' : el('span', { class: 'badge full' }, 'échec')),
            el('td', {}, (a.entity || []).map((x) => x.what?.reference || x.description || '').join(' ')),
            el('td', {}, a.agent?.[0]?.network?.address || ''));
    });
}

async function audit(more = false) {
    const box = bodies.audit;
    let tbody = box.querySelector('tbody');
    if (!more) {
        const f = {
            actor: el('input', { type: 'text', id: 'au-actor' }),
            action: el('select', { id: 'au-action' }, el('option', { value: '' }, 'toutes'), ACTIONS.map((a) => el('option', { value: a }, ACTION_FR[a]))),
            outcome: el('select', { id: 'au-outcome' }, el('option', { value: '' }, 'tous'), el('option', { value: 'success' }, 'succès'), el('option', { value: 'failure' }, 'échec')),
            type: el('select', { id: 'au-type' }, el('option', { value: '' }, 'tous'), ['Organization', 'HealthcareService', 'Location', 'Practitioner', 'PractitionerRole', 'Task'].map((t) => el('option', { value: t }, t))),
        };
        const prev = box.querySelector('form');
        if (prev) for (const k of Object.keys(f)) f[k].value = prev.querySelector(`#au-${k}`).value;
        const form = el('form', { class: 'toolbar', id: 'audit-form' },
            el('div', { class: 'field' }, el('label', { for: 'au-actor' }, 'Compte'), f.actor),
            el('div', { class: 'field' }, el('label', { for: 'au-action' }, 'Action'), f.action),
            el('div', { class: 'field' }, el('label', { for: 'au-outcome' }, 'Résultat'), f.outcome),
            el('div', { class: 'field' }, el('label', { for: 'au-type' }, 'Type'), f.type),
            el('button', { type: 'submit' }, 'Filtrer'));
        form.addEventListener('submit', (ev) => {
            ev.preventDefault();
            audit(false).catch((e) => showError(bodies.audit, e));
        });
        const b = await api(`/audit${qs({ actor: f.actor.value.trim(), action: f.action.value, outcome: f.outcome.value, type: f.type.value, _count: 50 })}`);
        auditNext = (b.link || []).find((l) => l.relation === 'next')?.url;
        tbody = el('tbody', {}, auditRows(b));
        put(box, form, el('div', { class: 'table-wrap' }, el('table', {}, el('caption', { class: 'visually-hidden' }, 'Journal d\'audit'),
            el('thead', {}, el('tr', {}, ['Date', 'Compte', 'Action', 'Résultat', 'Élément', 'Adresse'].map((h) => el('th', { scope: 'col' }, h)))), tbody)),
        el('button', { type: 'button', id: 'audit-more', hidden: !auditNext, onclick: () => audit(true).catch((e) => showError(bodies.audit, e)) }, 'Entrées plus anciennes'));
    } else if (auditNext) {
        const b = await api(sameOrigin(auditNext));
        auditNext = (b.link || []).find((l) => l.relation === 'next')?.url;
        tbody.append(...auditRows(b));
        box.querySelector('#audit-more').hidden = !auditNext;
    }
}

// ------------------------------------------------------------------------------------ accounts

const ROLE_FR = {
    'ars-admin': 'administrateur ARS', 'establishment-manager': 'gestionnaire d\'établissement',
    'bed-declarer': 'déclarant de lits', reader: 'lecteur (régulation)', system: 'système',
};
const ORG_ROLES = ['establishment-manager', 'bed-declarer'];

const roleText = (r) => `${ROLE_FR[r.role] || r.role}${r.organization ? ` : ${r.organization}` : ''}${r.profile !== undefined && r.profile !== null ? ` (profil ${r.profile})` : ''}`;

/** The fields of one role (select + organisation), for the new account and the role editor. */
function roleFields(prefix) {
    const role = el('select', { id: `${prefix}-role` }, Object.entries(ROLE_FR).map(([k, v]) => el('option', { value: k, selected: k === 'bed-declarer' }, v)));
    const org = el('input', { type: 'text', id: `${prefix}-org`, placeholder: 'FINESS ou Organization/…', 'aria-describedby': `${prefix}-org-hint` });
    const orgField = el('div', { class: 'field' }, el('label', { for: `${prefix}-org` }, 'Organisation'), el('span', { id: `${prefix}-org-hint`, class: 'hint' }, 'pour les gestionnaires et les déclarants'), org);
    const sync = () => { orgField.hidden = !ORG_ROLES.includes(role.value); };
    role.addEventListener('change', sync);
    sync();
    return {
        nodes: [el('div', { class: 'field' }, el('label', { for: `${prefix}-role` }, 'Rôle'), role), orgField],
        value: () => (ORG_ROLES.includes(role.value) ? { role: role.value, organization: org.value.trim() } : { role: role.value }),
        check: () => !ORG_ROLES.includes(role.value) || org.value.trim() !== '',
        focusOrg: () => org.focus(),
    };
}

function shownOnce(box, login, password) {
    put(box, el('div', { class: 'success', role: 'status' }, `Mot de passe de ${login}, affiché une seule fois : `,
        el('code', { class: 'password', dataset: { login, password } }, password), ' — transmettez-le par un canal sûr.'));
}

async function accounts() {
    const box = bodies.accounts;
    const msg = el('div', { 'aria-live': 'polite', id: 'accounts-msg' });
    const { users } = await api('/admin/users');
    const rows = users.slice().sort((a, b) => a.login.localeCompare(b.login)).map((u) => {
        const act = (path, done) => async () => {
            try {
                const r = await api(`/admin/users/${encodeURIComponent(u.login)}/${path}`, { method: 'POST', body: {} });
                await accounts();
                if (r.newPassword) shownOnce(bodies.accounts.querySelector('#accounts-msg'), u.login, r.newPassword);
                else flash(bodies.accounts.querySelector('#accounts-msg'), done);
            } catch (e) {
                showError(msg, e, 'Action refusée');
            }
        };
        const editor = el('div', { hidden: true, class: 'card' });
        const edit = () => {
            const current = u.roles.slice();
            const list = el('ul');
            const draw = () => put(list, current.map((r, k) => el('li', {}, roleText(r), ' ',
                el('button', { type: 'button', class: 'link', onclick: () => { current.splice(k, 1); draw(); } }, `Retirer ${ROLE_FR[r.role] || r.role}`))));
            draw();
            const f = roleFields(`edit-${u.login.replace(/[^A-Za-z0-9_-]/g, '_')}`);
            put(editor, el('h3', {}, `Rôles de ${u.login}`), list, f.nodes,
                el('div', { class: 'row' },
                    el('button', { type: 'button', onclick: () => { if (!f.check()) { f.focusOrg(); return; } current.push(f.value()); draw(); } }, 'Ajouter ce rôle'),
                    el('button', {
                        type: 'button', class: 'primary', onclick: async () => {
                            try {
                                await api(`/admin/users/${encodeURIComponent(u.login)}/roles`, { method: 'PUT', body: { roles: current } });
                                await accounts();
                                flash(bodies.accounts.querySelector('#accounts-msg'), `Rôles de ${u.login} enregistrés.`);
                            } catch (e) {
                                showError(msg, e, 'Rôles refusés');
                            }
                        },
                    }, 'Enregistrer les rôles'),
                    el('button', { type: 'button', onclick: () => { editor.hidden = true; } }, 'Annuler')));
            editor.hidden = false;
            editor.querySelector('select')?.focus();
        };
        return el('tr', { dataset: { user: u.login } },
            el('td', {}, u.login, u.name ? el('div', { class: 'small muted' }, u.name) : null, editor),
            el('td', {}, u.roles.length ? el('ul', {}, u.roles.map((r) => el('li', {}, roleText(r)))) : el('span', { class: 'muted' }, 'aucun')),
            el('td', {}, u.disabled ? el('span', { class: 'badge full' }, 'désactivé') : el('span', { class: 'badge ok' }, 'actif')),
            el('td', { class: 'num' }, fmtNumber(u.apiKeys)),
            el('td', { class: 'small' }, `${fmtDateTime(u.updated)}${u.updatedBy ? ` par ${u.updatedBy}` : ''}`),
            el('td', {}, el('div', { class: 'row' },
                el('button', { type: 'button', onclick: edit }, 'Rôles'),
                u.disabled
                    ? el('button', { type: 'button', dataset: { enable: u.login }, onclick: act('enable', `Compte ${u.login} réactivé.`) }, 'Réactiver')
                    : el('button', { type: 'button', class: 'danger', dataset: { disable: u.login }, onclick: act('disable', `Compte ${u.login} désactivé : ses sessions sont closes.`) }, 'Désactiver'),
                el('button', { type: 'button', dataset: { password: u.login }, onclick: act('password', '') }, 'Nouveau mot de passe'))));
    });
    const login = el('input', { type: 'text', id: 'new-login', autocomplete: 'off', spellcheck: 'false', 'aria-describedby': 'new-login-hint' });
    const name = el('input', { type: 'text', id: 'new-name' });
    const f = roleFields('new');
    const form = el('form', { id: 'account-form', class: 'card', novalidate: true },
        el('h3', {}, 'Nouveau compte'),
        el('div', { class: 'field' }, el('label', { for: 'new-login' }, 'Identifiant'), el('span', { id: 'new-login-hint', class: 'hint' }, 'lettres, chiffres, . _ - @'), login),
        el('div', { class: 'field' }, el('label', { for: 'new-name' }, 'Nom'), name),
        f.nodes,
        el('button', { type: 'submit', class: 'primary', id: 'account-create' }, 'Créer le compte'));
    form.addEventListener('submit', async (ev) => {
        ev.preventDefault();
        if (!/^[A-Za-z0-9._@-]{1,128}$/.test(login.value.trim())) {
            showError(msg, 'Identifiant attendu : lettres, chiffres, . _ - @ (128 au plus).');
            login.focus();
            return;
        }
        if (!f.check()) {
            showError(msg, 'Indiquez l\'organisation de ce rôle (numéro FINESS ou Organization/…).');
            f.focusOrg();
            return;
        }
        try {
            const r = await api('/admin/users', { method: 'POST', body: { login: login.value.trim(), name: name.value.trim() || undefined, roles: [f.value()] } });
            await accounts();
            shownOnce(bodies.accounts.querySelector('#accounts-msg'), r.login, r.newPassword);
        } catch (e) {
            showError(msg, e, 'Création refusée');
        }
    });
    put(box, el('p', {}, `${users.length} compte${users.length > 1 ? 's' : ''}. Un mot de passe créé ou renouvelé ici n'est affiché qu'une fois ; désactiver un compte ou changer son mot de passe clôt ses sessions.`),
        msg, table('Comptes', ['Compte', 'Rôles', 'État', 'Clés API', 'Modifié', 'Actions'], rows, 'Aucun compte.'), form);
}

// ------------------------------------------------------------------------------------ page

async function main() {
    const s = await initPage();
    if (!s.login) {
        loginNeeded(root, 'Page réservée aux administrateurs ARS');
        return;
    }
    if (!isAdmin(s)) {
        showError(root, 'Page réservée aux administrateurs ARS : votre compte n\'y a pas accès.');
        document.body.dataset.ready = 'true';
        return;
    }
    put(root,
        el('nav', { 'aria-label': 'Sections de l\'administration' }, el('ul', { class: 'tabs' }, SECTIONS.map(([id, label]) => el('li', {}, el('a', { href: `#${id}` }, label))))),
        SECTIONS.map(([id, label]) => {
            bodies[id] = el('div', {}, el('p', { class: 'muted' }, 'Chargement…'));
            return el('section', { class: 'card admin', id, 'aria-labelledby': `${id}-title` }, el('h2', { id: `${id}-title` }, label), bodies[id]);
        }));
    const loaders = { crises, stale, gaps, anomalies, validation, audit: () => audit(false), accounts };
    await Promise.all(Object.entries(loaders).map(([id, fn]) => fn().catch((e) => showError(bodies[id], e, 'Chargement impossible'))));
    document.body.dataset.ready = 'true';
}

main();
