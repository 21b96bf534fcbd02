// The maps: Leaflet (from npm, served under /vendor/) with the tiles the deployment configures
// (GET /ui-config; "" = no tiles: markers on a plain ground, the page stays usable).
// Leaflet is loaded by a classic <script> before the page's module, so it is window.L here.
// Popups and tooltips get DOM nodes, never HTML strings (names come from the data).
import { el } from './common.js';

let configPromise;

export function uiConfig() {
    if (!configPromise) {
        configPromise = fetch('/ui-config', { credentials: 'same-origin' })
            .then((r) => (r.ok ? r.json() : {}))
            .catch(() => ({}));
    }
    return configPromise;
}

/** A Leaflet map in `container` (metropolitan France by default); null without Leaflet. */
export async function createMap(container, { center = [46.6, 2.4], zoom = 6, label = 'Carte' } = {}) {
    const L = window.L;
    container.setAttribute('role', 'region');
    container.setAttribute('aria-label', label);
    if (!L) {
        container.replaceChildren(el('p', { class: 'map-note' }, 'Carte indisponible (bibliothèque cartographique non chargée).'));
        return null;
    }
    const cfg = await uiConfig();
    const map = L.map(container, { zoomControl: true, attributionControl: true, maxZoom: 18, minZoom: 3 }).setView(center, zoom);
    map.attributionControl.setPrefix('Leaflet');
    if (cfg.tileUrl) {
        L.tileLayer(cfg.tileUrl, { maxZoom: 19, attribution: escapeText(cfg.tileAttribution || '') }).addTo(map);
    } else {
        container.classList.add('no-tiles');
        const note = el('p', { class: 'map-note' }, 'Fond de carte désactivé sur ce serveur : seuls les repères sont affichés.');
        container.after(note);
    }
    return map;
}

// Leaflet's attribution control takes HTML: the configured text is escaped.
function escapeText(s) {
    const d = document.createElement('div');
    d.textContent = s;
    return d.innerHTML;
}

/** A numbered pin (divIcon with text content set by Leaflet from our string: digits only). */
export function pinIcon(n, cls = '') {
    const L = window.L;
    const label = String(n).replace(/[^0-9A-Za-z]/g, '').slice(0, 3);
    return L.divIcon({ className: '', html: `<div class="pin ${cls === 'place' ? 'place' : ''}"><span>${label}</span></div>`, iconSize: [28, 28], iconAnchor: [14, 28], popupAnchor: [0, -26] });
}

/** A marker cluster group when the plug-in is loaded, else a plain layer group. */
export function clusterGroup() {
    const L = window.L;
    if (!L.markerClusterGroup) return L.layerGroup();
    return L.markerClusterGroup({
        showCoverageOnHover: false,
        maxClusterRadius: 45,
        animate: false, // less motion, and the map is at rest once it has moved
        // the plug-in's icon, with words for screen readers
        iconCreateFunction: (cluster) => {
            const n = cluster.getChildCount();
            const size = n < 10 ? 'small' : n < 100 ? 'medium' : 'large';
            return L.divIcon({ html: `<div><span>${n}<span class="visually-hidden"> résultats</span></span></div>`, className: `marker-cluster marker-cluster-${size}`, iconSize: L.point(40, 40) });
        },
    });
}

/** Fit the map to points ([[lat, lon], ...]); a single point gets a town-level zoom. */
export function fitTo(map, points, maxZoom = 13) {
    const L = window.L;
    if (!map || !points.length) return;
    if (points.length === 1) map.setView(points[0], maxZoom);
    else map.fitBounds(L.latLngBounds(points), { padding: [30, 30], maxZoom });
}
