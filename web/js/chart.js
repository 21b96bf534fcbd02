// A time-series chart drawn as SVG (no chart library): one step line per bed indicator (a count
// holds until the next declaration), time on x, count on y, with a legend and the same figures
// as a table for screen readers and copying.
import { el, fmtDateTime, fmtNumber } from './common.js';

const W = 640;
const H = 240;
const M = { top: 14, right: 16, bottom: 34, left: 40 };

const svg = (tag, attrs = {}, ...children) => el(`svg:${tag}`, attrs, ...children);

/** Nice round y ticks from 0 to at least max. */
function yTicks(max) {
    if (max <= 0) return [0, 1];
    const raw = max / 4;
    const mag = 10 ** Math.floor(Math.log10(raw));
    const step = [1, 2, 5, 10].map((k) => k * mag).find((s) => s >= raw) || mag * 10;
    const stepInt = Math.max(1, Math.round(step));
    const ticks = [];
    for (let v = 0; v <= max + stepInt - 1 && ticks.length < 12; v += stepInt) ticks.push(v);
    if (ticks[ticks.length - 1] < max) ticks.push(ticks[ticks.length - 1] + stepInt);
    return ticks;
}

const dayFmt = new Intl.DateTimeFormat('fr-FR', { day: '2-digit', month: '2-digit' });
const hourFmt = new Intl.DateTimeFormat('fr-FR', { hour: '2-digit', minute: '2-digit' });

/**
 * series: [{ label, points: [{ t: ms, v: number|null, by?: string }] }] sorted by t.
 * Returns a <figure> (SVG + legend + table) or a short note when there is nothing to draw.
 */
export function timeSeriesChart(series, { title, from, to = Date.now() } = {}) {
    const drawn = series.filter((s) => s.points.length);
    if (!drawn.length) return el('p', { class: 'muted' }, 'Aucune déclaration sur la période.');
    const t1 = Math.max(to, ...drawn.map((s) => s.points[s.points.length - 1].t));
    // from the first declaration (at least two hours back, so that recent points are not squeezed
    // against the right edge), or the window asked for
    const t0 = from ?? Math.min(t1 - 2 * 3600000, ...drawn.map((s) => s.points[0].t - 0.05 * (t1 - s.points[0].t)));
    const span = Math.max(t1 - t0, 60000);
    const vmax = Math.max(1, ...drawn.flatMap((s) => s.points.map((p) => p.v ?? 0)));
    const ticks = yTicks(vmax);
    const top = ticks[ticks.length - 1];
    const x = (t) => M.left + ((t - t0) / span) * (W - M.left - M.right);
    const y = (v) => H - M.bottom - (v / top) * (H - M.top - M.bottom);

    const grid = svg('g', { class: 'grid' }, ticks.map((v) => svg('line', { x1: M.left, x2: W - M.right, y1: y(v), y2: y(v) })));
    const yAxis = svg('g', { class: 'axis' },
        svg('line', { x1: M.left, x2: M.left, y1: M.top, y2: H - M.bottom }),
        ticks.map((v) => svg('text', { x: M.left - 6, y: y(v) + 4, 'text-anchor': 'end' }, fmtNumber(v))));
    const nx = 5;
    const fmt = span > 2 * 86400000 ? dayFmt : hourFmt;
    const xAxis = svg('g', { class: 'axis' },
        svg('line', { x1: M.left, x2: W - M.right, y1: H - M.bottom, y2: H - M.bottom }),
        Array.from({ length: nx + 1 }, (_, i) => {
            const t = t0 + (span * i) / nx;
            return svg('text', { x: x(t), y: H - M.bottom + 16, 'text-anchor': i === 0 ? 'start' : i === nx ? 'end' : 'middle' }, fmt.format(new Date(t)));
        }));

    const lines = drawn.map((s, k) => {
        const cls = `s${k % 6}`;
        const segs = [];
        let d = '';
        let prev = null;
        for (const p of s.points) {
            if (p.v === null || p.v === undefined) {
                if (prev) d += ` H${x(p.t).toFixed(1)}`;
                if (d) segs.push(d);
                d = '';
                prev = null;
                continue;
            }
            if (!prev) d = `M${x(p.t).toFixed(1)},${y(p.v).toFixed(1)}`;
            else d += ` H${x(p.t).toFixed(1)} V${y(p.v).toFixed(1)}`;
            prev = p;
        }
        if (prev) d += ` H${x(t1).toFixed(1)}`;
        if (d) segs.push(d);
        return svg('g', { 'data-series': s.label },
            segs.map((dd) => svg('path', { class: `series ${cls}`, d: dd })),
            s.points.filter((p) => p.v !== null && p.v !== undefined).map((p) =>
                svg('circle', { class: `dot ${cls}`, cx: x(p.t).toFixed(1), cy: y(p.v).toFixed(1), r: 3 },
                    svg('title', {}, `${s.label} : ${fmtNumber(p.v)} — ${fmtDateTime(new Date(p.t).toISOString())}${p.by ? ` (${p.by})` : ''}`))));
    });

    const titleId = `chart-${Math.random().toString(36).slice(2, 8)}`;
    const chart = svg('svg', { viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-labelledby': titleId },
        svg('title', { id: titleId }, title || 'Évolution des capacités'), grid, yAxis, xAxis, lines);

    const rows = drawn.flatMap((s) => s.points.map((p) => ({ s: s.label, ...p }))).sort((a, b) => b.t - a.t);
    const table = el('table', {},
        el('caption', { class: 'visually-hidden' }, title || 'Déclarations'),
        el('thead', {}, el('tr', {}, el('th', { scope: 'col' }, 'Date'), el('th', { scope: 'col' }, 'Indicateur'), el('th', { scope: 'col', class: 'num' }, 'Nombre'), el('th', { scope: 'col' }, 'Par'))),
        el('tbody', {}, rows.map((r) => el('tr', {},
            el('td', {}, fmtDateTime(new Date(r.t).toISOString())), el('td', {}, r.s),
            el('td', { class: 'num' }, r.v === null || r.v === undefined ? 'retiré' : fmtNumber(r.v)), el('td', {}, r.by || '')))));
    const fig = el('figure', { class: 'chart' },
        chart,
        el('figcaption', {}, el('ul', { class: 'legend' }, drawn.map((s, k) => el('li', {}, el('span', { class: `swatch s${k % 6}` }), s.label)))),
        el('details', {}, el('summary', {}, `Données du graphique (${rows.length} déclaration${rows.length > 1 ? 's' : ''})`), el('div', { class: 'table-wrap' }, table)));
    return fig;
}

