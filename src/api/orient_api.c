/* api orientation: "where can this patient go, now, near here?" for regulators and the UI.
 *
 *   GET /orientation?need=&need=&lat=&lon=|commune=|postal=|place=&radius=&age=&open_now=
 *       &beds=&limit=&widen=&sensitive=
 *   POST /orientation   the same as a JSON object ({"need": ["..."], "lat": 48.8, ...})
 *       need: a code ("system|code", or a bare code such as 356) or French free text
 *       ("réanimation pédiatrique"): text matches names and code labels word by word (prefixes,
 *       accents and case aside) and the NOS concepts whose display or synonym contains it.
 *       Needs are AND-ed. The place: coordinates, an INSEE commune code, a postal code, or a
 *       commune name. Results nearest first, each with its distance, why it matched, its
 *       current available beds and their age. With fewer than 2 results the radius doubles up
 *       to max_radius (200 km) unless widen=false, and the answer says so. A search that finds
 *       nothing is recorded as a gap.
 *   GET /orientation/gaps[?since=&_count=]   the searches that found nothing, newest first
 *   GET /orientation/suggest?q=[&limit=]     type-ahead: NOS concepts and unit names
 */
#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "api/api_int.h"
#include "json/json.h"
#include "orient/orient.h"
#include "terminology/terminology.h"

#define JSON_TYPE "application/json; charset=utf-8"
#define NEEDS_MAX 8
#define NEED_CODES_MAX 40
#define LIMIT_DEFAULT 20
#define LIMIT_MAX 200
#define RADIUS_DEFAULT_KM 20.0
#define RADIUS_MAX_KM 1000.0
#define WIDEN_MAX_KM 200.0
#define WIDEN_MIN_RESULTS 2

typedef struct OrientApi {
    Orient *orient;
    Terminology *term;
    Store *store;
} OrientApi;

/* ------------------------------------------------------------------ the query */

/* The request's parameters as one JSON object (GET query or POST body): repeated `need`
 * become an array; everything else is a string (GET) or a JSON value (POST). */
static json_t *params_or_respond(HttpRequest *r)
{
    if (r->method == HTTP_POST) {
        json_t *body = NULL;
        Diag d = {{0}, {0}};
        if (json_parse(r->body, r->body_len, &body, &d) != 0) {
            http_fail(r, ERR_INVALID, &d);
            return NULL;
        }
        if (!json_is_object(body)) {
            json_decref(body);
            api_fail(r, ERR_INVALID, "%s", "objet JSON attendu");
            return NULL;
        }
        return body;
    }
    json_t *p = json_object();
    json_t *needs = json_array();
    for (size_t i = 0; i < r->nquery; i++) {
        if (strcmp(r->query[i].name, "need") == 0)
            json_array_append_new(needs, json_string(r->query[i].value));
        else
            json_object_set_new(p, r->query[i].name, json_string(r->query[i].value));
    }
    json_object_set_new(p, "need", needs);
    return p;
}

/* A number member given as a JSON number or as text. */
static bool num_of(json_t *p, const char *key, double *out)
{
    json_t *v = json_object_get(p, key);
    if (!v)
        return false;
    if (json_is_number(v)) {
        *out = json_number_value(v);
        return true;
    }
    const char *s = json_string_value(v);
    char *end;
    if (!s || !*s)
        return false;
    *out = strtod(s, &end);
    return !*end && isfinite(*out);
}

static bool has(json_t *p, const char *key)
{
    return json_object_get(p, key) != NULL;
}

/* A boolean member: true/false, "true"/"false"/"1"/"0"/"oui"/"non". -1 when invalid. */
static int bool_of(json_t *p, const char *key, bool dflt)
{
    json_t *v = json_object_get(p, key);
    if (!v)
        return dflt;
    if (json_is_boolean(v))
        return json_is_true(v);
    const char *s = json_string_value(v);
    if (!s)
        return -1;
    if (!strcmp(s, "true") || !strcmp(s, "1") || !strcmp(s, "oui") || !*s)
        return 1;
    if (!strcmp(s, "false") || !strcmp(s, "0") || !strcmp(s, "non"))
        return 0;
    return -1;
}

static const char *str_of(json_t *p, const char *key)
{
    return json_string_value(json_object_get(p, key));
}

/* A need that looks like a code: "system|code", or a bare code (letters/digits with a digit,
 * no space: "356", "J55"). Anything else is text. */
static bool looks_like_code(const char *s)
{
    if (strchr(s, '|'))
        return !strchr(s, ' ');
    bool digit = false;
    for (const char *c = s; *c; c++) {
        if (!isalnum((unsigned char)*c) && *c != '.' && *c != '-' && *c != '_')
            return false;
        digit |= isdigit((unsigned char)*c) != 0;
    }
    return digit && *s;
}

/* The NOS code systems that describe an offer: free text is also looked up in their displays
 * and synonyms (not in the whole NOS: the communes table alone has 37,000 concepts). */
#define NOS "https://mos.esante.gouv.fr/NOS/"
static const char *const offer_systems[] = {
    NOS "TRE_R211-ActiviteOperationnelle/FHIR/TRE-R211-ActiviteOperationnelle",
    NOS "TRE_R213-ModePriseEnCharge/FHIR/TRE-R213-ModePriseEnCharge",
    NOS "TRE_R210-ActeSpecifique/FHIR/TRE-R210-ActeSpecifique",
    NOS "TRE_R212-Equipement/FHIR/TRE-R212-Equipement",
    NOS "TRE_R227-ChampActivite/FHIR/TRE-R227-ChampActivite",
    NOS "TRE_R244-CategorieOrganisation/FHIR/TRE-R244-CategorieOrganisation",
    NOS "TRE_R239-PublicPrisEnCharge/FHIR/TRE-R239-PublicPrisEnCharge",
    NOS "TRE_R245-SpecialisationDePriseEnCharge/FHIR/TRE-R245-SpecialisationDePriseEnCharge",
    NOS "TRE_R243-CompetenceSpecifique/FHIR/TRE-R243-CompetenceSpecifique",
};

/* Free text also means the concepts of those systems whose display or synonym holds it. */
static void need_expand(OrientApi *o, Arena *a, const char *text, const char **codes, size_t *n)
{
    if (!o->term)
        return;
    TermCode found[NEED_CODES_MAX];
    TermMatch mode = strlen(text) >= 4 ? TERM_MATCH_CONTAINS : TERM_MATCH_PREFIX;
    for (size_t s = 0; s < sizeof offer_systems / sizeof offer_systems[0]; s++) {
        size_t k = terminology_search(o->term, a, offer_systems[s], text, mode, found,
                                      NEED_CODES_MAX - *n);
        for (size_t i = 0; i < k; i++)
            codes[(*n)++] = arena_printf(a, "%s|%s", found[i].system, found[i].code);
    }
}

typedef struct Place {
    double lat, lon;
    const char *label;
    const char *commune;
} Place;

static bool commune_place(const TermCommune *c, Place *pl, Arena *a)
{
    if (!c->has_position)
        return false;
    pl->lat = c->lat;
    pl->lon = c->lon;
    pl->label = arena_strdup(a, c->name);
    pl->commune = arena_strdup(a, c->code);
    return true;
}

static bool place_or_respond(HttpRequest *r, OrientApi *o, json_t *p, Place *pl)
{
    memset(pl, 0, sizeof *pl);
    double lat, lon;
    if (has(p, "lat") || has(p, "lon")) {
        if (!num_of(p, "lat", &lat) || !num_of(p, "lon", &lon) || fabs(lat) > 90 ||
            fabs(lon) > 180) {
            api_fail(r, ERR_INVALID, "%s", "lat et lon : coordonnées WGS84 en degrés décimaux");
            return false;
        }
        pl->lat = lat;
        pl->lon = lon;
        pl->label = "position donnée";
        return true;
    }
    TermCommune c[1];
    const char *v;
    if (o->term && (v = str_of(p, "commune")) != NULL) {
        if (terminology_commune(o->term, &r->arena, v, &c[0]) == 0 &&
            commune_place(&c[0], pl, &r->arena))
            return true;
        api_fail(r, ERR_INVALID, "commune '%s' inconnue (code INSEE attendu)", v);
        return false;
    }
    if (o->term && (v = str_of(p, "postal")) != NULL) {
        if (terminology_communes_by_postal(o->term, &r->arena, v, c, 1) == 1 &&
            commune_place(&c[0], pl, &r->arena))
            return true;
        api_fail(r, ERR_INVALID, "code postal '%s' inconnu", v);
        return false;
    }
    if (o->term && (v = str_of(p, "place")) != NULL && *v) {
        if (terminology_communes_complete(o->term, &r->arena, v, c, 1) == 1 &&
            commune_place(&c[0], pl, &r->arena))
            return true;
        api_fail(r, ERR_INVALID, "lieu '%s' introuvable dans la table des communes", v);
        return false;
    }
    api_fail(r, ERR_INVALID, "%s",
             "lieu requis : lat et lon, commune (code INSEE), postal (code postal) ou place (nom "
             "de commune)");
    return false;
}

/* ------------------------------------------------------------------ the answer */

static const char *param_label(const char *param)
{
    static const struct {
        const char *param, *label;
    } labels[] = {
        {"specialty", "activité opérationnelle"},
        {"service-type", "champ d'activité"},
        {"service-category", "catégorie d'offre"},
        {"characteristic", "caractéristique (mode de prise en charge, acte…)"},
        {"patient-type", "public pris en charge"},
        {"type", "type"},
        {"equipment-type", "équipement"},
        {"equipment-feature", "caractéristique d'équipement"},
        {"residential-type", "type d'hébergement"},
        {"capacity-type", "nature de capacité"},
        {"nom", "nom"},
    };
    for (size_t i = 0; i < sizeof labels / sizeof labels[0]; i++)
        if (strcmp(labels[i].param, param) == 0)
            return labels[i].label;
    return param;
}

/* JSON text helpers: the answer is written straight into a Buf (a tree of jansson objects
 * per result cost more than the search itself). */
static void jstr(Buf *b, const char *s)
{
    buf_add_json_string(b, s, strlen(s));
}

static void jkey(Buf *b, const char *k, bool first)
{
    if (!first)
        buf_add(b, ",", 1);
    jstr(b, k);
    buf_add(b, ":", 1);
}

/* One reason: the structured form into `matched`, the French sentence into `texts`. */
static void why_write(OrientApi *o, Arena *a, const OrientWhy *w, const OrientHit *h, Buf *matched,
                      Buf *texts)
{
    if (matched->len > 1)
        buf_add(matched, ",", 1);
    if (texts->len > 1)
        buf_add(texts, ",", 1);
    buf_adds(matched, "{");
    jkey(matched, "source", true);
    jstr(matched, w->source);
    jkey(matched, "param", false);
    jstr(matched, w->param);
    if (!w->system) { /* a name match */
        jkey(matched, "text", false);
        jstr(matched, w->code);
        buf_adds(matched, "}");
        jstr(texts, arena_printf(a, "%s : « %s » correspond à « %s »", w->source, w->code,
                                 h->name       ? h->name
                                 : h->org_name ? h->org_name
                                               : h->id));
        return;
    }
    jkey(matched, "system", false);
    jstr(matched, w->system);
    jkey(matched, "code", false);
    jstr(matched, w->code);
    const char *display = NULL;
    TermConcept c;
    if (o->term && terminology_lookup(o->term, a, w->system, NULL, w->code, &c, NULL) == 0)
        display = c.display;
    if (display) {
        jkey(matched, "display", false);
        jstr(matched, display);
    }
    buf_adds(matched, "}");
    jstr(texts, arena_printf(a, "%s (%s) : %s%s%s", param_label(w->param), w->source, w->code,
                             display ? " — " : "", display ? display : ""));
}

static void hit_write(OrientApi *o, Arena *a, const OrientHit *h, size_t rank, int64_t now, Buf *b)
{
    buf_printf(b, "{\"rank\":%zu", rank);
    jkey(b, "type", false);
    jstr(b, h->type);
    jkey(b, "id", false);
    jstr(b, h->id);
    jkey(b, "reference", false);
    jstr(b, arena_printf(a, "%s/%s", h->type, h->id));
    if (h->name) {
        jkey(b, "name", false);
        jstr(b, h->name);
    }
    if (h->org_id) {
        jkey(b, "organization", false);
        buf_adds(b, "{\"reference\":");
        jstr(b, arena_printf(a, "Organization/%s", h->org_id));
        if (h->org_name) {
            jkey(b, "name", false);
            jstr(b, h->org_name);
        }
        buf_adds(b, "}");
    }
    jkey(b, "location", false);
    buf_adds(b, "{\"reference\":");
    jstr(b, arena_printf(a, "Location/%s", h->location_id));
    buf_printf(b, ",\"lat\":%.7f,\"lon\":%.7f}", h->lat, h->lon);
    buf_printf(b, ",\"distance_km\":%.3f", h->distance_km);
    buf_adds(b, ",\"beds\":{\"available\":");
    if (h->beds >= 0)
        buf_printf(b, "%lld", (long long)h->beds);
    else
        buf_adds(b, "null");
    if (h->beds_at) {
        char ts[32];
        time_format_instant(h->beds_at, ts);
        buf_printf(b, ",\"declaredAt\":\"%s\",\"ageMinutes\":%lld", ts,
                   (long long)((now - h->beds_at) / 60000));
    }
    buf_adds(b, "}");
    buf_printf(b, ",\"open\":%s,\"sensitive\":%s",
               h->open < 0   ? "null"
               : h->open > 0 ? "true"
                             : "false",
               h->sensitive ? "true" : "false");
    Buf matched, texts;
    buf_init(&matched, 1 << 20);
    buf_init(&texts, 1 << 20);
    buf_add(&matched, "[", 1);
    buf_add(&texts, "[", 1);
    for (size_t i = 0; i < h->nwhy; i++)
        why_write(o, a, &h->why[i], h, &matched, &texts);
    char km[32];
    snprintf(km, sizeof km, "%.1f", h->distance_km);
    for (char *c = km; *c; c++)
        if (*c == '.')
            *c = ','; /* French decimal comma */
    if (texts.len > 1)
        buf_add(&texts, ",", 1);
    jstr(&texts, arena_printf(a, "à %s km", km));
    if (h->beds > 0) {
        buf_add(&texts, ",", 1);
        jstr(&texts, arena_printf(a, "%lld lit(s) disponible(s) déclaré(s) il y a %lld min",
                                  (long long)h->beds, (long long)((now - h->beds_at) / 60000)));
    }
    buf_add(&matched, "]", 1);
    buf_add(&texts, "]", 1);
    buf_adds(b, ",\"why\":");
    buf_add(b, texts.p, texts.len);
    buf_adds(b, ",\"matched\":");
    buf_add(b, matched.p, matched.len);
    buf_adds(b, "}");
    buf_cleanup(&matched);
    buf_cleanup(&texts);
}

/* ------------------------------------------------------------------ gaps */

typedef struct GapWrite {
    int64_t at;
    char *author;
    char *query;
} GapWrite;

static int txn_gap(StoreTxn *t, void *ctx, Diag *d)
{
    GapWrite *g = ctx;
    return store_txn_gap_add(t, g->at, g->author, g->query, d);
}

static void gap_done(void *ctx, int rc)
{
    GapWrite *g = ctx;
    if (rc != 0)
        log_warn("orientation: gap not recorded (%s)", err_name(rc));
    free(g->author);
    free(g->query);
    free(g);
}

static Diag gap_diag; /* store_write_async wants one that outlives the call; never read */

static void gap_record(OrientApi *o, HttpRequest *r, json_t *query)
{
    GapWrite *g = xcalloc(1, sizeof *g);
    g->at = time_now_ms();
    g->author = xstrdup(api_principal(r)->author);
    g->query = json_dump_compact(query, NULL);
    if (!g->query || store_write_async(o->store, txn_gap, g, &gap_diag, gap_done, g) != 0) {
        free(g->author);
        free(g->query);
        free(g);
    }
}

/* ------------------------------------------------------------------ handlers */

static void h_orientation(HttpRequest *r, void *ctx)
{
    OrientApi *o = ctx;
    int64_t t0 = time_mono_ns();
    json_t *p = params_or_respond(r);
    if (!p)
        return;
    /* needs */
    json_t *jn = json_object_get(p, "need");
    if (json_is_string(jn)) {
        json_t *arr = json_array();
        json_array_append(arr, jn);
        json_object_set_new(p, "need", arr);
        jn = arr;
    }
    if (jn && !json_is_array(jn)) {
        json_decref(p);
        api_fail(r, ERR_INVALID, "%s", "need : texte ou code, ou liste de textes et de codes");
        return;
    }
    OrientNeed needs[NEEDS_MAX];
    size_t nneeds = 0, i;
    json_t *v;
    json_array_foreach(jn, i, v)
    {
        const char *s = json_string_value(v);
        if (!s || !*s)
            continue;
        if (nneeds == NEEDS_MAX || strlen(s) > 200) {
            json_decref(p);
            api_fail(r, ERR_INVALID, "au plus %d besoins de 200 caractères", NEEDS_MAX);
            return;
        }
        OrientNeed *n = &needs[nneeds++];
        const char **codes = arena_alloc(&r->arena, NEED_CODES_MAX * sizeof *codes);
        size_t nc = 0;
        n->text = NULL;
        if (looks_like_code(s)) {
            codes[nc++] = arena_strdup(&r->arena, s);
        } else {
            n->text = arena_strdup(&r->arena, s);
            need_expand(o, &r->arena, s, codes, &nc);
        }
        n->codes = codes;
        n->ncodes = nc;
    }
    Place pl;
    if (!place_or_respond(r, o, p, &pl)) {
        json_decref(p);
        return;
    }
    OrientQuery q = {.needs = needs,
                     .nneeds = nneeds,
                     .lat = pl.lat,
                     .lon = pl.lon,
                     .radius_km = RADIUS_DEFAULT_KM,
                     .max_radius_km = WIDEN_MAX_KM,
                     .min_results = WIDEN_MIN_RESULTS,
                     .age = -1,
                     .now_ms = time_now_ms(),
                     .limit = LIMIT_DEFAULT};
    double x = 0;
    const char *bad = NULL;
    if (has(p, "radius") && (!num_of(p, "radius", &x) || !(x > 0) || x > RADIUS_MAX_KM))
        bad = "radius : rayon en km, de 0 à 1000";
    else if (has(p, "radius"))
        q.radius_km = x;
    if (has(p, "max_radius") && (!num_of(p, "max_radius", &x) || !(x > 0) || x > RADIUS_MAX_KM))
        bad = "max_radius : rayon en km, de 0 à 1000";
    else if (has(p, "max_radius"))
        q.max_radius_km = x;
    if (has(p, "age") && (!num_of(p, "age", &x) || x < 0 || x > 150 || x != floor(x)))
        bad = "age : âge en années (entier de 0 à 150)";
    else if (has(p, "age"))
        q.age = (int)x;
    if (has(p, "limit") && (!num_of(p, "limit", &x) || x < 1 || x > LIMIT_MAX || x != floor(x)))
        bad = "limit : entier de 1 à 200";
    else if (has(p, "limit"))
        q.limit = (size_t)x;
    int open = bool_of(p, "open_now", false), beds = bool_of(p, "beds", false);
    int widen = bool_of(p, "widen", true), sens = bool_of(p, "sensitive", true);
    if (open < 0 || beds < 0 || widen < 0 || sens < 0)
        bad = "open_now, beds, widen, sensitive : true ou false";
    if (bad) {
        json_decref(p);
        api_fail(r, ERR_INVALID, "%s", bad);
        return;
    }
    /* the access profile: sensitive units for profiles 1 and 4 only; real-time beds not for
     * the public (0) nor the institutional readers (5, installed beds only) */
    int profile = api_principal(r)->profile;
    bool show_beds = profile != 0 && profile != 5;
    if (beds > 0 && !show_beds) {
        json_decref(p);
        api_fail(r, ERR_FORBIDDEN, "%s",
                 "beds : votre profil d'accès ne donne pas les lits disponibles");
        return;
    }
    q.open_now = open;
    q.beds_now = beds;
    q.with_sensitive = sens && (profile == 1 || profile == 4);
    if (!widen)
        q.min_results = 0;

    OrientResult res;
    Diag d = {{0}, {0}};
    int rc = orient_search(o->orient, &r->arena, &q, &res, &d);
    if (rc != 0) {
        json_decref(p);
        http_fail(r, rc, &d);
        return;
    }
    int64_t t1 = time_mono_ns();
    Buf b;
    buf_init(&b, 64u << 20);
    buf_printf(&b, "{\"place\":{\"lat\":%.7f,\"lon\":%.7f,\"label\":", pl.lat, pl.lon);
    jstr(&b, pl.label);
    if (pl.commune) {
        jkey(&b, "commune", false);
        jstr(&b, pl.commune);
    }
    buf_printf(&b, "},\"requested_radius_km\":%g,\"radius_km\":%g,\"widened\":%s", q.radius_km,
               res.radius_km, res.widened ? "true" : "false");
    if (res.widened) {
        jkey(&b, "message", false);
        jstr(&b, arena_printf(&r->arena,
                              "Moins de %zu résultat(s) dans un rayon de %g km : rayon élargi à "
                              "%g km.",
                              q.min_results, q.radius_km, res.radius_km));
    } else if (res.total == 0) {
        jkey(&b, "message", false);
        jstr(&b, arena_printf(&r->arena, "Aucun résultat dans un rayon de %g km.", res.radius_km));
    }
    buf_printf(&b, ",\"total\":%zu,\"results\":[", res.total);
    for (size_t k = 0; k < res.nhits; k++) {
        if (k)
            buf_add(&b, ",", 1);
        if (!show_beds) {
            res.hits[k].beds = -1;
            res.hits[k].beds_at = 0;
        }
        hit_write(o, &r->arena, &res.hits[k], k + 1, q.now_ms, &b);
    }
    buf_printf(&b, "],\"candidates\":%zu,\"took_us\":%lld}", res.scanned_units,
               (long long)((t1 - t0) / 1000));
    if (res.total == 0)
        gap_record(o, r, p);
    json_decref(p);
    if (b.overflow) {
        buf_cleanup(&b);
        api_fail(r, ERR_TOO_LARGE, "%s", "réponse trop volumineuse : réduire limit");
        return;
    }
    char timing[64];
    snprintf(timing, sizeof timing, "orient;dur=%.3f", (double)(t1 - t0) / 1e6);
    http_header_set(r, "Server-Timing", timing);
    size_t len;
    char *text = buf_steal(&b, &len);
    http_respond(r, 200, JSON_TYPE, text, len);
}

static void h_gaps(HttpRequest *r, void *ctx)
{
    if (!api_role_or_respond(r, API_ROLE(AUTH_ROLE_ARS_ADMIN),
                             "consulter les recherches sans résultat"))
        return;
    OrientApi *o = ctx;
    int64_t since = 0, lo, hi;
    size_t max = 100;
    for (size_t i = 0; i < r->nquery; i++) {
        const char *n = r->query[i].name, *v = r->query[i].value;
        if (strcmp(n, "since") == 0) {
            if (time_parse_range(v, strlen(v), &lo, &hi) != 0) {
                api_fail(r, ERR_INVALID, "%s", "since : date FHIR attendue");
                return;
            }
            since = lo;
        } else if (strcmp(n, "_count") == 0) {
            char *end;
            long c = strtol(v, &end, 10);
            if (*end || c < 1 || c > 1000) {
                api_fail(r, ERR_INVALID, "%s", "_count : entier de 1 à 1000");
                return;
            }
            max = (size_t)c;
        }
    }
    StoreGap *g;
    size_t n;
    Diag d = {{0}, {0}};
    int rc = store_gaps(o->store, &r->arena, since, max, &g, &n, &d);
    if (rc != 0) {
        http_fail(r, rc, &d);
        return;
    }
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++) {
        char ts[32];
        time_format_instant(g[i].at, ts);
        json_t *q = NULL;
        json_parse(g[i].query, strlen(g[i].query), &q, NULL);
        json_array_append_new(arr,
                              json_pack("{s:I,s:s,s:s,s:o}", "id", (json_int_t)g[i].id, "at", ts,
                                        "author", g[i].author, "query", q ? q : json_null()));
    }
    api_respond_json(r, json_pack("{s:I,s:o}", "count", (json_int_t)n, "gaps", arr));
}

static void h_suggest(HttpRequest *r, void *ctx)
{
    OrientApi *o = ctx;
    const char *q = NULL;
    size_t limit = 10;
    for (size_t i = 0; i < r->nquery; i++) {
        if (strcmp(r->query[i].name, "q") == 0)
            q = r->query[i].value;
        else if (strcmp(r->query[i].name, "limit") == 0) {
            char *end;
            long c = strtol(r->query[i].value, &end, 10);
            if (*end || c < 1 || c > 50) {
                api_fail(r, ERR_INVALID, "%s", "limit : entier de 1 à 50");
                return;
            }
            limit = (size_t)c;
        }
    }
    if (!q || !*q || strlen(q) > 200) {
        api_fail(r, ERR_INVALID, "%s", "q : texte de 1 à 200 caractères");
        return;
    }
    json_t *concepts = json_array(), *units = json_array();
    if (o->term) {
        TermCode *found = arena_alloc(&r->arena, limit * sizeof *found);
        size_t n = 0;
        for (size_t s = 0; s < sizeof offer_systems / sizeof offer_systems[0] && n < limit; s++) {
            size_t k = terminology_search(o->term, &r->arena, offer_systems[s], q,
                                          TERM_MATCH_PREFIX, found, limit - n);
            for (size_t i = 0; i < k; i++, n++)
                json_array_append_new(concepts,
                                      json_pack("{s:s,s:s,s:s?}", "system", found[i].system, "code",
                                                found[i].code, "display", found[i].display));
        }
    }
    OrientName *names = arena_alloc(&r->arena, limit * sizeof *names);
    size_t n = orient_names(o->orient, &r->arena, q, limit, names);
    for (size_t i = 0; i < n; i++)
        json_array_append_new(
            units, json_pack("{s:s,s:s,s:s,s:s}", "type", names[i].type, "id", names[i].id, "name",
                             names[i].name, "reference",
                             arena_printf(&r->arena, "%s/%s", names[i].type, names[i].id)));
    api_respond_json(r, json_pack("{s:o,s:o}", "concepts", concepts, "units", units));
}

void *orient_api_routes(HttpServer *s, Orient *orient, Terminology *term, Store *store);
void *orient_api_routes(HttpServer *s, Orient *orient, Terminology *term, Store *store)
{
    OrientApi *o = xcalloc(1, sizeof *o);
    o->orient = orient;
    o->term = term;
    o->store = store;
    http_route(s, HTTP_GET | HTTP_POST, "/orientation", h_orientation, o);
    http_route(s, HTTP_GET, "/orientation/gaps", h_gaps, o);
    http_route(s, HTTP_GET, "/orientation/suggest", h_suggest, o);
    return o;
}
