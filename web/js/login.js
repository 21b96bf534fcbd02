// Sign-in: POST /auth/login sets the session cookie (HttpOnly) and returns who signed in; then
// back to the page that asked (same-origin paths only), else the page of the main role.
import { api, el, getSession, hasRole, initPage, put, showError } from './common.js';

const $ = (id) => document.getElementById(id);

/** Where to go after signing in: ?next= when it is a path of this site, else by role. */
function destination(s) {
    const next = new URLSearchParams(location.search).get('next') || '';
    if (/^\/(?!\/)[^\s\\]*$/.test(next) && !next.startsWith('/ui/login.html')) return next;
    if (hasRole(s, 'ars-admin')) return '/ui/dashboard.html';
    if (hasRole(s, 'bed-declarer')) return '/ui/lits.html';
    return '/';
}

async function main() {
    const s = await initPage();
    if (s.login) {
        put($('already'), el('p', { class: 'notice' }, `Vous êtes connecté en tant que ${s.name || s.login}. `, el('a', { href: destination(s) }, 'Continuer')));
    }
    $('login').addEventListener('submit', async (ev) => {
        ev.preventDefault();
        const login = $('login-name').value.trim();
        const password = $('password').value;
        if (!login || !password) {
            showError($('error'), 'Saisissez votre identifiant et votre mot de passe.');
            (login ? $('password') : $('login-name')).focus();
            return;
        }
        $('submit').disabled = true;
        try {
            await api('/auth/login', { method: 'POST', body: { login, password } });
            const who = await getSession(true);
            location.assign(destination(who));
        } catch (e) {
            showError($('error'), e, 'Connexion refusée');
            $('password').value = '';
            $('password').focus();
        } finally {
            $('submit').disabled = false;
        }
    });
    $('login-name').focus();
    document.body.dataset.ready = 'true';
}

main();
