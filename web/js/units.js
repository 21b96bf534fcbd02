// Units with bed indicators (Locations), their offers and establishments, read through the
// ordinary FHIR search: the dashboard's grid, the bed form's list of "my units".
import { api, capacitiesOf, communeOf, departementOf, qs, searchAll } from './common.js';
import { uiConfig } from './map.js';

// The unit types of the regional bed views, by the activités opérationnelles (TRE_R211) of the
// offers delivered at a unit: the server's table (data/capacity.json "unitTypes"), served by
// /ui-config.
export async function unitTypes() {
    const cfg = await uiConfig();
    return cfg.unitTypes || {};
}

/** The unit type of a unit from the specialties of its offers ('' when none). */
export function unitTypeOf(services, types) {
    const codes = new Set();
    for (const s of services) for (const sp of s.specialty || []) for (const c of sp.coding || []) if (/TRE_R211/.test(c.system || '')) codes.add(c.code);
    for (const [code, t] of Object.entries(types)) if ((t.activities || []).some((a) => codes.has(a))) return code;
    return '';
}

const CAPACITY_STATUSES = '01,02,03,04,05,06';

/**
 * Every unit the reader may see that carries bed indicators, with its offers and establishment:
 * [{ id, name, location, services[], org {id, name, ref}, commune, dep, lat, lon, unitType,
 *    indicators[{key, dims, nb, updateDate, source}] }]
 */
export async function loadCapacityUnits() {
    const types = await unitTypes();
    const entries = await searchAll(`/fhir/Location${qs({
        'capacity-status': CAPACITY_STATUSES, _revinclude: 'HealthcareService:location',
        '_include:iterate': 'HealthcareService:organization', _include: 'Location:organization', _count: 200,
    })}`);
    return assemble(entries, types, (e) => e.search?.mode !== 'include');
}

/** Build units from Locations, HealthcareServices and Organizations of a search. */
export function assemble(entries, types, isUnit = () => true) {
    const orgs = new Map();
    const services = new Map();
    const locs = [];
    for (const e of entries) {
        const r = e.resource;
        if (r.resourceType === 'Organization') orgs.set(r.id, r);
        else if (r.resourceType === 'HealthcareService') services.set(r.id, r);
        else if (r.resourceType === 'Location' && isUnit(e)) locs.push(r);
    }
    const seen = new Set();
    const units = [];
    for (const loc of locs) {
        if (seen.has(loc.id)) continue;
        seen.add(loc.id);
        const hs = [...services.values()].filter((s) => (s.location || []).some((l) => l.reference === `Location/${loc.id}`));
        const orgRef = hs.find((s) => s.providedBy?.reference)?.providedBy.reference || loc.managingOrganization?.reference || '';
        const orgId = orgRef.replace(/^Organization\//, '');
        const org = orgs.get(orgId);
        const commune = communeOf(loc) || communeOf(org || {});
        units.push({
            id: loc.id, name: loc.name || loc.id, location: loc, services: hs,
            org: { id: orgId, ref: orgRef, name: org?.name || orgId || 'Établissement non renseigné', resource: org },
            commune, dep: departementOf(commune) || org?.address?.[0]?.postalCode?.slice(0, 2) || '',
            lat: loc.position?.latitude, lon: loc.position?.longitude,
            unitType: unitTypeOf(hs, types), version: Number(loc.meta?.versionId || 0),
            indicators: capacitiesOf(loc),
        });
    }
    return units.sort((a, b) => a.org.name.localeCompare(b.org.name, 'fr') || a.name.localeCompare(b.name, 'fr'));
}

/** The organisation ids a grant names: "Organization/<id>" or an identifier value (FINESS…). */
async function grantOrganizations(value) {
    if (value.startsWith('Organization/')) return [value.slice('Organization/'.length)];
    const b = await api(`/fhir/Organization${qs({ identifier: value, _count: 50 })}`);
    return (b.entry || []).filter((e) => e.resource?.resourceType === 'Organization').map((e) => e.resource.id);
}

/** The organisations under roots (themselves and every one whose partOf chain reaches them). */
async function organizationTree(roots) {
    const all = new Set(roots);
    let frontier = [...roots];
    for (let depth = 0; frontier.length && depth < 6; depth++) {
        const next = [];
        for (let i = 0; i < frontier.length; i += 40) {
            const chunk = frontier.slice(i, i + 40);
            for (const e of await searchAll(`/fhir/Organization${qs({ partof: chunk.join(','), _count: 200 })}`)) {
                if (e.resource.resourceType === 'Organization' && !all.has(e.resource.id)) {
                    all.add(e.resource.id);
                    next.push(e.resource.id);
                }
            }
        }
        frontier = next;
    }
    return [...all];
}

/**
 * The units of the session's establishment grants (bed declarer, establishment manager): the list
 * is the server's (GET /capacity/mine: managed by the organisations under the grants, or where
 * their offers are delivered); the FHIR search of those organisations' offers adds the names of
 * the establishments and the unit types. Units without any indicator are included (the form can
 * add some).
 */
export async function unitsOfGrants(session) {
    const types = await unitTypes();
    const grants = (session.roles || []).filter((r) => ['bed-declarer', 'establishment-manager'].includes(r.role) && r.organization);
    if (!grants.length) return [];
    const [mine, entries] = await Promise.all([api('/capacity/mine'), grantEntries(grants)]);
    const described = new Map(assemble(entries, types).map((u) => [u.id, u]));
    const services = entries.map((e) => e.resource).filter((r) => r.resourceType === 'HealthcareService');
    const orgs = new Map(entries.map((e) => e.resource).filter((r) => r.resourceType === 'Organization').map((o) => [o.id, o]));
    const units = [];
    for (const l of mine.locations || []) {
        const u = described.get(l.id);
        if (u) {
            u.version = l.version;
            units.push(u);
            continue;
        }
        // A unit shared with a sensitive offer is hidden from the declarer's access profile (2)
        // in FHIR reads, yet its beds are the declarer's to declare: its indicators come from
        // the capacity view, its establishment from the offers delivered there.
        let cur;
        try {
            cur = await api(`/capacity/Location/${encodeURIComponent(l.id)}`);
        } catch {
            continue;
        }
        const hs = services.filter((s) => (s.location || []).some((x) => x.reference === `Location/${l.id}`));
        const orgRef = hs.find((s) => s.providedBy)?.providedBy.reference || '';
        const orgId = orgRef.replace(/^Organization\//, '');
        units.push({
            id: l.id, name: l.name || hs.map((s) => s.name).join(' / ') || l.id, location: null, services: hs,
            org: { id: orgId, ref: orgRef, name: orgs.get(orgId)?.name || orgId || '' },
            commune: '', dep: '', unitType: unitTypeOf(hs, types), version: l.version,
            indicators: (cur.indicators || []).map((i) => ({ key: i.indicator, dims: i.dimensions, nb: i.nbCapacity ?? i.lastKnown, updateDate: i.updateDate })),
        });
    }
    return units.sort((a, b) => a.org.name.localeCompare(b.org.name, 'fr') || a.name.localeCompare(b.name, 'fr'));
}

/** The offers, units and organisations under the grants, by FHIR search (for their names). */
async function grantEntries(grants) {
    const roots = new Set();
    for (const g of grants) for (const id of await grantOrganizations(g.organization)) roots.add(id);
    if (!roots.size) return [];
    const orgIds = await organizationTree([...roots]);
    const entries = [];
    for (let i = 0; i < orgIds.length; i += 40) {
        const chunk = orgIds.slice(i, i + 40).join(',');
        entries.push(...await searchAll(`/fhir/HealthcareService${qs({ organization: chunk, _include: ['HealthcareService:location', 'HealthcareService:organization'], _count: 200 })}`));
        entries.push(...await searchAll(`/fhir/Location${qs({ organization: chunk, _include: 'Location:organization', _count: 200 })}`));
    }
    return entries;
}
