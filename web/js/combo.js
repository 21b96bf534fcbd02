// An accessible type-ahead (WAI-ARIA 1.2 combobox with a listbox popup): arrows move through the
// suggestions, Enter picks one, Escape closes; the number of suggestions is announced.
import { debounce, el } from './common.js';

/**
 * combobox(input, { source: async (text) => [{ label, kind?, value }], onSelect(option), minChars })
 * `input` must be inside an element of class "combo". Returns { close(), clear() }.
 */
export function combobox(input, { source, onSelect, minChars = 2, delay = 180 }) {
    const listId = `${input.id}-list`;
    const list = el('ul', { id: listId, role: 'listbox', hidden: true, 'aria-label': 'Suggestions' });
    const live = el('div', { class: 'visually-hidden', role: 'status', 'aria-live': 'polite' });
    input.after(list, live);
    input.setAttribute('role', 'combobox');
    input.setAttribute('aria-autocomplete', 'list');
    input.setAttribute('aria-expanded', 'false');
    input.setAttribute('aria-controls', listId);
    input.setAttribute('autocomplete', 'off');
    let options = [];
    let active = -1;
    let seq = 0;

    function close() {
        list.hidden = true;
        input.setAttribute('aria-expanded', 'false');
        input.removeAttribute('aria-activedescendant');
        active = -1;
    }

    function setActive(i) {
        const items = list.querySelectorAll('[role="option"]');
        items.forEach((li, k) => li.setAttribute('aria-selected', k === i ? 'true' : 'false'));
        active = i;
        if (i >= 0 && items[i]) {
            input.setAttribute('aria-activedescendant', items[i].id);
            items[i].scrollIntoView({ block: 'nearest' });
        } else {
            input.removeAttribute('aria-activedescendant');
        }
    }

    function pick(i) {
        const o = options[i];
        if (!o) return;
        close();
        onSelect(o);
    }

    function render() {
        list.replaceChildren(...options.map((o, i) => el('li', {
            id: `${listId}-${i}`, role: 'option', 'aria-selected': 'false',
            onmousedown: (ev) => ev.preventDefault(), // keep the focus in the input
            onclick: () => pick(i),
        }, o.label, o.kind ? el('span', { class: 'kind' }, o.kind) : null)));
        const open = options.length > 0;
        list.hidden = !open;
        input.setAttribute('aria-expanded', String(open));
        live.textContent = open ? `${options.length} suggestion${options.length > 1 ? 's' : ''}` : '';
        active = -1;
    }

    const lookup = debounce(async (text) => {
        const mine = ++seq;
        let found = [];
        try {
            found = await source(text);
        } catch {
            found = []; // a failed suggestion is no suggestion; the search itself reports errors
        }
        if (mine !== seq || document.activeElement !== input) return;
        options = found;
        render();
    }, delay);

    input.addEventListener('input', () => {
        const text = input.value.trim();
        if (text.length < minChars) {
            seq++;
            options = [];
            close();
            return;
        }
        lookup(text);
    });
    input.addEventListener('keydown', (ev) => {
        const open = !list.hidden && options.length > 0;
        if (ev.key === 'ArrowDown' && open) {
            ev.preventDefault();
            setActive((active + 1) % options.length);
        } else if (ev.key === 'ArrowUp' && open) {
            ev.preventDefault();
            setActive(active <= 0 ? options.length - 1 : active - 1);
        } else if (ev.key === 'Enter' && open && active >= 0) {
            ev.preventDefault();
            pick(active);
        } else if (ev.key === 'Escape' && open) {
            ev.preventDefault();
            close();
        }
    });
    input.addEventListener('blur', () => setTimeout(close, 150));
    return { close, clear: () => { options = []; close(); } };
}
