/*
 * communes.c — one CodeSystem of the French communes, built from three open-data sources that
 * `ror import communes` is given in any order (each file is recognised by its content):
 *
 *  - the INSEE COG `communes.json` of @etalab/decoupage-administratif (mandatory): the codes,
 *    names, types, département/région, postal codes and populations of today's communes,
 *    communes déléguées/associées and municipal arrondissements;
 *  - the geo.api.gouv.fr export of commune centres (`centre`: GeoJSON [lon, lat]);
 *  - La Poste's « base officielle des codes postaux » (hexasmal CSV): more postal codes, and a
 *    position (mean of the commune's rows) where geo.api has none.
 *
 * The sources have different dates: a code the older ones know and the COG does not is a merged
 * commune; it stays as a retired, inactive concept whose parent is the commune that absorbed it
 * (COG `anciensCodes`), so that old addresses still resolve.
 *
 * A code may appear twice in the COG (a commune nouvelle and its commune déléguée of the same
 * code): the concept takes the commune's name and type, the other name becomes a designation.
 * Properties are those the terminology module reads: postalCode, latitude, longitude,
 * departement, region, population, type, parent, status, inactive.
 */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "import/import.h"
#include "import/import_int.h"
#include "json/json.h"

#define CS_URL "https://mos.esante.gouv.fr/NOS/TRE_R13-CommuneOM/FHIR/TRE-R13-CommuneOM"
#define PROP_URI "http://hl7.org/fhir/concept-properties#"
#define FILE_CAP (1024u << 20) /* the COG is ~9 MB; a larger input is not one of ours */

typedef enum Kind { K_UNKNOWN, K_COG, K_GEO, K_LAPOSTE } Kind;

/* COG types by precedence: when two entries share a code, the lower one names the concept. */
enum { T_ACTUELLE, T_ARRONDISSEMENT, T_DELEGUEE, T_ASSOCIEE, T_RETIRED };
static const char *const type_codes[] = {"commune-actuelle", "arrondissement-municipal",
                                         "commune-deleguee", "commune-associee"};

#define MAX_ALT 4

typedef struct Commune {
    char code[6];
    int type;
    const char *name; /* arena */
    const char *alt[MAX_ALT];
    int nalt;
    char dep[4], reg[4], parent[6];
    long long population;
    bool has_pop;
    char (*postal)[6];
    size_t npostal, cappostal;
    bool has_centre;
    double lat, lon; /* geo.api centre */
    double lp_lat, lp_lon;
    long lp_n; /* La Poste rows with coordinates */
} Commune;

typedef struct Communes {
    ImportSink *k;
    Arena arena;
    Commune *v;
    size_t n, cap;
    uint32_t *slot; /* open addressing on code: index + 1 */
    size_t slotcap;
    /* anciensCodes: absorbed code -> absorbing commune, parallel arrays + their own slots */
    char (*old)[6];
    char (*absorber)[6];
    size_t nold, capold;
    uint32_t *oldslot;
    size_t oldslotcap;
} Communes;

/* ------------------------------------------------------------------ small helpers */
/* How many bytes of p to print for at most max: never half a UTF-8 sequence, since a message
 * that is not valid UTF-8 cannot be reported. */
static int clip(const char *p, size_t len, size_t max)
{
    if (len <= max)
        return (int)len;
    while (max > 0 && ((unsigned char)p[max] & 0xC0) == 0x80)
        max--;
    return (int)max;
}

static uint32_t code_hash(const char *code)
{
    uint32_t h = 2166136261u;
    for (; *code; code++)
        h = (h ^ (unsigned char)*code) * 16777619u;
    return h;
}

/* A COG commune code: 5 characters, digits except "2A"/"2B" (Corsica). */
static bool code_valid(const char *s, size_t len)
{
    if (len != 5)
        return false;
    for (size_t i = 0; i < 5; i++) {
        if (isdigit((unsigned char)s[i]))
            continue;
        if (i == 1 && s[0] == '2' && (s[1] == 'A' || s[1] == 'B'))
            continue;
        return false;
    }
    return true;
}

static bool postal_valid(const char *s, size_t len)
{
    if (len != 5)
        return false;
    for (size_t i = 0; i < 5; i++)
        if (!isdigit((unsigned char)s[i]))
            return false;
    return true;
}

static double round6(double x)
{
    return round(x * 1e6) / 1e6;
}

static bool position_valid(double lat, double lon)
{
    return isfinite(lat) && isfinite(lon) && lat >= -90 && lat <= 90 && lon >= -180 && lon <= 180;
}

/* The département of a code: three characters overseas (97x, 98x), else two. */
static void code_departement(const char *code, char dep[4])
{
    size_t n = (code[0] == '9' && (code[1] == '7' || code[1] == '8')) ? 3 : 2;
    memcpy(dep, code, n);
    dep[n] = '\0';
}

static void grow_slots(uint32_t **slots, size_t *cap, size_t n,
                       const char *(*key)(void *, uint32_t), void *ctx)
{
    if ((n + 1) * 2 <= *cap)
        return;
    size_t ncap = *cap ? *cap * 2 : 4096;
    uint32_t *s = xcalloc(ncap, sizeof *s);
    for (size_t i = 0; i < *cap; i++) {
        if (!(*slots)[i])
            continue;
        size_t j = code_hash(key(ctx, (*slots)[i] - 1)) & (ncap - 1);
        while (s[j])
            j = (j + 1) & (ncap - 1);
        s[j] = (*slots)[i];
    }
    free(*slots);
    *slots = s;
    *cap = ncap;
}

static const char *commune_key(void *ctx, uint32_t i)
{
    return ((Communes *)ctx)->v[i].code;
}

static const char *old_key(void *ctx, uint32_t i)
{
    return ((Communes *)ctx)->old[i];
}

/* Index of code, or -1. */
static long commune_find(const Communes *c, const char *code)
{
    if (!c->slotcap)
        return -1;
    size_t i = code_hash(code) & (c->slotcap - 1);
    for (; c->slot[i]; i = (i + 1) & (c->slotcap - 1))
        if (strcmp(c->v[c->slot[i] - 1].code, code) == 0)
            return (long)c->slot[i] - 1;
    return -1;
}

/* A new commune `code` (which must not exist). */
static Commune *commune_add(Communes *c, const char *code)
{
    grow_slots(&c->slot, &c->slotcap, c->n, commune_key, c);
    if (c->n == c->cap) {
        c->cap = c->cap ? c->cap * 2 : 4096;
        c->v = xrealloc(c->v, c->cap * sizeof *c->v);
    }
    Commune *m = &c->v[c->n];
    memset(m, 0, sizeof *m);
    snprintf(m->code, sizeof m->code, "%s", code);
    size_t i = code_hash(code) & (c->slotcap - 1);
    while (c->slot[i])
        i = (i + 1) & (c->slotcap - 1);
    c->slot[i] = (uint32_t)c->n + 1;
    c->n++;
    return m;
}

static const char *absorber_find(const Communes *c, const char *code)
{
    if (!c->oldslotcap)
        return NULL;
    size_t i = code_hash(code) & (c->oldslotcap - 1);
    for (; c->oldslot[i]; i = (i + 1) & (c->oldslotcap - 1))
        if (strcmp(c->old[c->oldslot[i] - 1], code) == 0)
            return c->absorber[c->oldslot[i] - 1];
    return NULL;
}

static void absorber_add(Communes *c, const char *old, const char *absorber)
{
    if (absorber_find(c, old))
        return; /* the COG lists each absorbed code once; keep the first if not */
    grow_slots(&c->oldslot, &c->oldslotcap, c->nold, old_key, c);
    if (c->nold == c->capold) {
        c->capold = c->capold ? c->capold * 2 : 1024;
        c->old = xrealloc(c->old, c->capold * sizeof *c->old);
        c->absorber = xrealloc(c->absorber, c->capold * sizeof *c->absorber);
    }
    snprintf(c->old[c->nold], 6, "%s", old);
    snprintf(c->absorber[c->nold], 6, "%s", absorber);
    size_t i = code_hash(old) & (c->oldslotcap - 1);
    while (c->oldslot[i])
        i = (i + 1) & (c->oldslotcap - 1);
    c->oldslot[i] = (uint32_t)c->nold + 1;
    c->nold++;
}

static void postal_add(Commune *m, const char *pc)
{
    for (size_t i = 0; i < m->npostal; i++)
        if (strcmp(m->postal[i], pc) == 0)
            return;
    if (m->npostal == m->cappostal) {
        m->cappostal = m->cappostal ? m->cappostal * 2 : 2;
        m->postal = xrealloc(m->postal, m->cappostal * sizeof *m->postal);
    }
    snprintf(m->postal[m->npostal++], 6, "%s", pc);
}

static void alt_add(Communes *c, Commune *m, const char *name)
{
    if (m->name && strcmp(m->name, name) == 0)
        return;
    for (int i = 0; i < m->nalt; i++)
        if (strcmp(m->alt[i], name) == 0)
            return;
    if (m->nalt < MAX_ALT)
        m->alt[m->nalt++] = arena_strdup(&c->arena, name);
}

/* ------------------------------------------------------------------ reading and detection */

/* The whole file (gzip-compressed or not), NUL-terminated. */
static int file_read(const char *path, char **out, size_t *len, Diag *d)
{
    gzFile gz = gzopen(path, "rb");
    if (!gz)
        return diag_set(d, ERR_IO, "%s : %s", path, strerror(errno ? errno : EIO));
    Buf b;
    buf_init(&b, FILE_CAP);
    char chunk[1 << 16];
    int n, rc = 0;
    while ((n = gzread(gz, chunk, sizeof chunk)) > 0) {
        if (buf_add(&b, chunk, (size_t)n) != 0) {
            rc = diag_set(d, ERR_TOO_LARGE, "%s : fichier trop volumineux (plus de %u Mo)", path,
                          FILE_CAP >> 20);
            goto fail;
        }
    }
    if (n < 0) {
        int err;
        rc = diag_set(d, ERR_IO, "%s : lecture impossible : %s", path, gzerror(gz, &err));
        goto fail;
    }
    gzclose(gz);
    *out = buf_steal(&b, len);
    return 0;
fail:
    gzclose(gz);
    buf_cleanup(&b);
    return rc;
}

static const char *skip_bom_ws(const char *p, const char *end)
{
    if (end - p >= 3 && memcmp(p, "\xEF\xBB\xBF", 3) == 0)
        p += 3;
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
        p++;
    return p;
}

/* Kind of a parsed JSON array, from its first object with a code. */
static Kind json_kind(const json_t *arr)
{
    size_t i;
    json_t *e;
    json_array_foreach(arr, i, e)
    {
        if (!json_is_object(e) || !json_is_string(json_object_get(e, "code")))
            continue;
        const char *type = json_str(e, "type");
        if (type) {
            for (size_t t = 0; t < sizeof type_codes / sizeof type_codes[0]; t++)
                if (strcmp(type, type_codes[t]) == 0)
                    return K_COG;
            return K_UNKNOWN;
        }
        if (json_object_get(e, "centre"))
            return K_GEO;
        /* geo.api rows without a centre (some COM): {code, nom} with a commune code */
        const char *code = json_str(e, "code");
        if (json_str(e, "nom") && code_valid(code, strlen(code)) && !json_object_get(e, "region"))
            return K_GEO;
        return K_UNKNOWN;
    }
    return K_UNKNOWN;
}

/* ------------------------------------------------------------------ COG */

static int cog_entry(Communes *c, const char *file, size_t idx, const json_t *e)
{
    long line = (long)idx + 1;
#define REJECT(...) return import_reject(c->k, file, line, __VA_ARGS__)
    if (!json_is_object(e))
        REJECT("élément n°%zu du tableau : objet attendu", idx + 1);
    const char *code = json_str(e, "code"), *nom = json_str(e, "nom"), *type = json_str(e, "type");
    if (!code || !code_valid(code, strlen(code)))
        REJECT("élément n°%zu du tableau : code INSEE manquant ou invalide", idx + 1);
    if (!nom || !*nom)
        REJECT("élément n°%zu du tableau : commune %s sans nom", idx + 1, code);
    int t = -1;
    for (int i = 0; type && i < (int)(sizeof type_codes / sizeof type_codes[0]); i++)
        if (strcmp(type, type_codes[i]) == 0)
            t = i;
    if (t < 0) {
        const char *shown = type ? type : "(absent)";
        REJECT("élément n°%zu du tableau : commune %s de type « %.*s » inconnu", idx + 1, code,
               clip(shown, strlen(shown), 40), shown);
    }
    const json_t *pcs = json_object_get(e, "codesPostaux");
    if (pcs && !json_is_array(pcs))
        REJECT("élément n°%zu du tableau : commune %s : codesPostaux n'est pas un tableau", idx + 1,
               code);
    const json_t *pop = json_object_get(e, "population");
    if (pop && !json_is_null(pop) && (!json_is_integer(pop) || json_integer_value(pop) < 0))
        REJECT("élément n°%zu du tableau : commune %s : population invalide", idx + 1, code);
    const char *dep = json_str(e, "departement"), *reg = json_str(e, "region");
    if ((dep && strlen(dep) > 3) || (reg && strlen(reg) > 3))
        REJECT("élément n°%zu du tableau : commune %s : département ou région invalide", idx + 1,
               code);
    const char *parent = json_str(e, t == T_ARRONDISSEMENT ? "commune" : "chefLieu");
    if (parent && !code_valid(parent, strlen(parent))) {
        import_warn(c->k, file, line,
                    "élément n°%zu du tableau : commune %s : commune de rattachement « %.*s » "
                    "invalide, ignorée",
                    idx + 1, code, clip(parent, strlen(parent), 10), parent);
        parent = NULL;
    }
    if (t == T_ACTUELLE)
        parent = NULL; /* a commune nouvelle's chef-lieu is itself */
    if (parent && strcmp(parent, code) == 0)
        parent = NULL;

    long at = commune_find(c, code);
    Commune *m;
    if (at < 0) {
        m = commune_add(c, code);
        m->type = t;
        m->name = arena_strdup(&c->arena, nom);
    } else {
        m = &c->v[at];
        if (m->type == t)
            REJECT("élément n°%zu du tableau : code INSEE %s en double (%s)", idx + 1, code,
                   type_codes[t]);
        if (t > m->type) { /* the entry already there names the concept */
            alt_add(c, m, nom);
            goto merge;
        }
        const char *old = m->name;
        m->name = arena_strdup(&c->arena, nom);
        m->type = t;
        alt_add(c, m, old);
        m->parent[0] = '\0';
        m->has_pop = false; /* the naming entry's population, when it has one */
    }
    m->dep[0] = m->reg[0] = '\0';
    if (dep)
        snprintf(m->dep, sizeof m->dep, "%s", dep);
    if (reg)
        snprintf(m->reg, sizeof m->reg, "%s", reg);
    if (parent)
        snprintf(m->parent, sizeof m->parent, "%s", parent);
merge:
    if (json_is_integer(pop) && !m->has_pop) {
        m->population = json_integer_value(pop);
        m->has_pop = true;
    }
    size_t i;
    const json_t *v;
    json_array_foreach(pcs, i, v)
    {
        const char *pc = json_string_value(v);
        if (pc && postal_valid(pc, strlen(pc)))
            postal_add(m, pc);
        else
            import_warn(c->k, file, line,
                        "élément n°%zu du tableau : commune %s : code postal invalide ignoré",
                        idx + 1, code);
    }
    const json_t *anciens = json_object_get(e, "anciensCodes");
    if (t == T_ACTUELLE && json_is_array(anciens)) {
        json_array_foreach(anciens, i, v)
        {
            const char *old = json_string_value(v);
            if (old && code_valid(old, strlen(old)))
                absorber_add(c, old, code);
        }
    }
    return 0;
#undef REJECT
}

/* ------------------------------------------------------------------ geo.api */

/* A commune the COG does not know any more: retired, attached to whoever absorbed it. */
static Commune *retired_add(Communes *c, const char *code, const char *name)
{
    Commune *m = commune_add(c, code);
    m->type = T_RETIRED;
    m->name = arena_strdup(&c->arena, name);
    code_departement(code, m->dep);
    const char *abs = absorber_find(c, code);
    if (abs)
        snprintf(m->parent, sizeof m->parent, "%s", abs);
    return m;
}

static bool foreign_code(const char *code)
{
    return code[0] == '9' && code[1] == '9'; /* INSEE codes of foreign countries (Monaco...) */
}

static int geo_entry(Communes *c, const char *file, size_t idx, const json_t *e)
{
    long line = (long)idx + 1;
    if (!json_is_object(e))
        return import_reject(c->k, file, line, "élément n°%zu du tableau : objet attendu", idx + 1);
    const char *code = json_str(e, "code"), *nom = json_str(e, "nom");
    if (!code || !code_valid(code, strlen(code)))
        return import_reject(c->k, file, line,
                             "élément n°%zu du tableau : code INSEE manquant ou invalide", idx + 1);
    if (foreign_code(code)) {
        import_warn(c->k, file, line,
                    "élément n°%zu du tableau : code %s d'un pays étranger, ignoré", idx + 1, code);
        return 0;
    }
    bool has = false;
    double lat = 0, lon = 0;
    const json_t *centre = json_object_get(e, "centre");
    if (centre && !json_is_null(centre)) {
        const json_t *xy = json_object_get(centre, "coordinates");
        if (json_is_array(xy) && json_array_size(xy) == 2 &&
            json_is_number(json_array_get(xy, 0)) && json_is_number(json_array_get(xy, 1))) {
            lon = json_number_value(json_array_get(xy, 0)); /* GeoJSON: longitude first */
            lat = json_number_value(json_array_get(xy, 1));
            has = position_valid(lat, lon);
        }
        if (!has)
            import_warn(c->k, file, line,
                        "élément n°%zu du tableau : commune %s : centre invalide, ignoré", idx + 1,
                        code);
    }
    long at = commune_find(c, code);
    Commune *m;
    if (at >= 0) {
        m = &c->v[at];
    } else {
        if (!nom || !*nom)
            return import_reject(c->k, file, line, "élément n°%zu du tableau : commune %s sans nom",
                                 idx + 1, code);
        m = retired_add(c, code, nom);
    }
    if (has && !m->has_centre) {
        m->has_centre = true;
        m->lat = lat;
        m->lon = lon;
    }
    return 0;
}

/* ------------------------------------------------------------------ La Poste */

enum { LP_CODE, LP_NOM, LP_POSTAL, LP_GPS, LP_NCOLS };
static const char *const lp_headers[LP_NCOLS] = {"Code_commune_INSEE", "Nom_commune", "Code_postal",
                                                 "coordonnees_gps"};

static Str str_trim(Str s)
{
    while (s.len && (*s.p == ' ' || *s.p == '#' || *s.p == '\t')) {
        s.p++;
        s.len--;
    }
    while (s.len && (s.p[s.len - 1] == ' ' || s.p[s.len - 1] == '\t'))
        s.len--;
    return s;
}

/* "lat,lon" (La Poste puts both in one field). */
static bool gps_parse(Str s, double *lat, double *lon)
{
    char tmp[96];
    if (s.len == 0 || s.len >= sizeof tmp)
        return false;
    memcpy(tmp, s.p, s.len);
    tmp[s.len] = '\0';
    char *end;
    errno = 0;
    double a = strtod(tmp, &end);
    if (end == tmp)
        return false;
    while (*end == ' ')
        end++;
    if (*end != ',')
        return false;
    char *q = end + 1;
    double b = strtod(q, &end);
    if (end == q || errno)
        return false;
    while (*end == ' ')
        end++;
    if (*end || !position_valid(a, b))
        return false;
    *lat = a;
    *lon = b;
    return true;
}

static int laposte_file(Communes *c, const char *file, char *text, size_t len, Diag *d)
{
    char *p = text, *end = text + len;
    long lineno = 0;
    int col[LP_NCOLS];
    int ncols = 0;
    Buf conv;
    buf_init(&conv, 4 * (size_t)LINE_READER_MAX_LINE);
    int rc = 0;
    while (p < end) {
        char *nl = memchr(p, '\n', (size_t)(end - p));
        char *le = nl ? nl : end;
        char *line = p;
        size_t n = (size_t)(le - p);
        p = nl ? nl + 1 : end;
        lineno++;
        if (n && line[n - 1] == '\r')
            n--;
        if (lineno == 1 && n >= 3 && memcmp(line, "\xEF\xBB\xBF", 3) == 0) {
            line += 3;
            n -= 3;
        }
        if (n == 0)
            continue;
        if (!text_is_utf8(line, n)) {
            conv.len = 0;
            conv.overflow = false;
            text_latin1_to_utf8(line, n, &conv);
            if (conv.overflow) {
                rc = import_reject(c->k, file, lineno, "ligne trop longue");
                if (rc)
                    goto fail;
                continue;
            }
            line = conv.p;
            n = conv.len;
        }
        CsvFields f;
        Diag cd = {0};
        int sr = csv_split(line, n, ';', true, &f, &cd);
        if (lineno == 1) {
            if (sr != 0) {
                rc = diag_set(d, ERR_INVALID, "%s:1 : en-tête illisible : %s", file, cd.msg);
                goto fail;
            }
            for (int k = 0; k < LP_NCOLS; k++) {
                col[k] = -1;
                for (int i = 0; i < f.n; i++) {
                    Str h = str_trim(f.f[i]);
                    if (h.len == strlen(lp_headers[k]) && memcmp(h.p, lp_headers[k], h.len) == 0)
                        col[k] = i;
                }
                if (col[k] < 0 && k != LP_GPS && k != LP_NOM) {
                    rc = diag_set(d, ERR_INVALID,
                                  "%s:1 : colonne « %s » absente de l'en-tête La Poste", file,
                                  lp_headers[k]);
                    goto fail;
                }
            }
            ncols = f.n;
            continue;
        }
        if (sr != 0) {
            rc = import_reject(c->k, file, lineno, "ligne illisible : %s", cd.msg);
            if (rc)
                goto fail;
            continue;
        }
        if (f.n != ncols) {
            rc = import_reject(c->k, file, lineno, "%d colonnes au lieu de %d", f.n, ncols);
            if (rc)
                goto fail;
            continue;
        }
        Str code = str_trim(f.f[col[LP_CODE]]), pc = str_trim(f.f[col[LP_POSTAL]]);
        if (!code_valid(code.p, code.len)) {
            rc = import_reject(c->k, file, lineno, "code INSEE « %.*s » invalide",
                               clip(code.p, code.len, 20), code.p);
            if (rc)
                goto fail;
            continue;
        }
        if (!postal_valid(pc.p, pc.len)) {
            rc = import_reject(c->k, file, lineno, "code postal « %.*s » invalide",
                               clip(pc.p, pc.len, 20), pc.p);
            if (rc)
                goto fail;
            continue;
        }
        char code5[6], pc5[6];
        memcpy(code5, code.p, 5);
        code5[5] = '\0';
        memcpy(pc5, pc.p, 5);
        pc5[5] = '\0';
        if (foreign_code(code5)) {
            import_warn(c->k, file, lineno, "code %s d'un pays étranger, ignoré", code5);
            continue;
        }
        long at = commune_find(c, code5);
        Commune *m;
        if (at >= 0) {
            m = &c->v[at];
        } else {
            Str nom = col[LP_NOM] >= 0 ? str_trim(f.f[col[LP_NOM]]) : (Str){"", 0};
            char *name = xstrndup(nom.len ? nom.p : code5, nom.len ? nom.len : 5);
            m = retired_add(c, code5, name);
            free(name);
        }
        postal_add(m, pc5);
        if (col[LP_GPS] >= 0) {
            Str g = str_trim(f.f[col[LP_GPS]]);
            double lat, lon;
            if (g.len && gps_parse(g, &lat, &lon)) {
                m->lp_lat += lat;
                m->lp_lon += lon;
                m->lp_n++;
            } else if (g.len) {
                import_warn(c->k, file, lineno, "coordonnées GPS « %.*s » illisibles, ignorées",
                            clip(g.p, g.len, 40), g.p);
            }
        }
    }
    if (lineno == 0)
        rc = diag_set(d, ERR_INVALID, "%s : fichier La Poste vide", file);
fail:
    buf_cleanup(&conv);
    return rc;
}

/* ------------------------------------------------------------------ version */

/*
 * The CodeSystem version: the COG does not date itself, so take, in order, a year (or date) in
 * the file or folder name ("cog-2026/communes.json"), the version of the npm package it comes
 * from (package.json beside it or one level up, or a folder named like
 * "decoupage-administratif-6.0.0"), else a fingerprint of the content. Never the clock: a
 * re-import of the same file must give the same resource.
 */
static char *version_infer(const char *path, const char *data, size_t len)
{
    char *copy = xstrdup(path);
    char *parts[2] = {NULL, NULL}; /* file name, folder name */
    char *slash = strrchr(copy, '/');
    parts[0] = slash ? slash + 1 : copy;
    char *dir = NULL;
    if (slash) {
        *slash = '\0';
        dir = copy;
        char *s2 = strrchr(copy, '/');
        parts[1] = s2 ? s2 + 1 : copy;
    }
    char *out = NULL;
    for (int i = 0; i < 2 && !out; i++) {
        const char *s = parts[i];
        for (size_t j = 0; s && s[j] && !out; j++) {
            bool digits4 = (s[j] == '1' || s[j] == '2') && isdigit((unsigned char)s[j + 1]) &&
                           isdigit((unsigned char)s[j + 2]) && isdigit((unsigned char)s[j + 3]) &&
                           (s[j] == '2' ? s[j + 1] == '0' : s[j + 1] == '9');
            if (!digits4 || (j > 0 && isdigit((unsigned char)s[j - 1])) ||
                isdigit((unsigned char)s[j + 4]))
                continue;
            /* YYYY-MM-DD when it is a date */
            size_t n = 4;
            if (s[j + 4] == '-' && isdigit((unsigned char)s[j + 5]) &&
                isdigit((unsigned char)s[j + 6]) && s[j + 7] == '-' &&
                isdigit((unsigned char)s[j + 8]) && isdigit((unsigned char)s[j + 9]) &&
                !isdigit((unsigned char)s[j + 10]))
                n = 10;
            out = xstrndup(s + j, n);
        }
    }
    for (int up = 0; up < 2 && !out && dir; up++) {
        char *pkg = up ? xasprintf("%s/../package.json", dir) : xasprintf("%s/package.json", dir);
        json_t *j = json_load_file(pkg, 0, NULL);
        free(pkg);
        const char *name = json_str(j, "name"), *ver = json_str(j, "version");
        if (name && ver) {
            const char *bare = strrchr(name, '/');
            out = xasprintf("%s %s", bare ? bare + 1 : name, ver);
        }
        json_decref(j);
    }
    if (!out && parts[1]) {
        /* "<name>-<x.y.z>" as npm pack unpacks it */
        char *dash = strrchr(parts[1], '-');
        if (dash && dash > parts[1] && isdigit((unsigned char)dash[1]) && strchr(dash, '.')) {
            bool ok = true;
            for (const char *q = dash + 1; *q; q++)
                ok = ok && (isdigit((unsigned char)*q) || *q == '.');
            if (ok)
                out = xasprintf("%.*s %s", (int)(dash - parts[1]), parts[1], dash + 1);
        }
    }
    if (!out) {
        uint64_t h = 0xcbf29ce484222325ULL;
        for (size_t i = 0; i < len; i++)
            h = (h ^ (unsigned char)data[i]) * 0x100000001b3ULL;
        out = xasprintf("empreinte-%016llx", (unsigned long long)h);
    }
    free(copy);
    return out;
}

/* ------------------------------------------------------------------ CodeSystem */

static int cmp_code(const void *a, const void *b)
{
    return strcmp(((const Commune *)a)->code, ((const Commune *)b)->code);
}

static int cmp_postal(const void *a, const void *b)
{
    return strcmp((const char *)a, (const char *)b);
}

static json_t *prop(const char *code, const char *kind, json_t *value)
{
    json_t *p = json_object();
    json_object_set_new(p, "code", json_string(code));
    json_object_set_new(p, kind, value);
    return p;
}

static json_t *prop_def(const char *code, const char *uri, const char *type, const char *desc)
{
    json_t *p = json_object();
    json_object_set_new(p, "code", json_string(code));
    if (uri)
        json_object_set_new(p, "uri", json_string(uri));
    json_object_set_new(p, "description", json_string(desc));
    json_object_set_new(p, "type", json_string(type));
    return p;
}

static json_t *concept_build(const Communes *c, Commune *m)
{
    json_t *cc = json_object();
    json_object_set_new(cc, "code", json_string(m->code));
    json_object_set_new(cc, "display", json_string(m->name));
    if (m->nalt) {
        json_t *des = json_array();
        for (int i = 0; i < m->nalt; i++)
            json_array_append_new(des, json_pack("{ssss}", "language", "fr", "value", m->alt[i]));
        json_object_set_new(cc, "designation", des);
    }
    json_t *ps = json_array();
    if (m->type == T_RETIRED) {
        json_array_append_new(ps, prop("status", "valueCode", json_string("retired")));
        json_array_append_new(ps, prop("inactive", "valueBoolean", json_true()));
    } else {
        json_array_append_new(ps, prop("type", "valueCode", json_string(type_codes[m->type])));
    }
    if (m->parent[0])
        json_array_append_new(ps, prop("parent", "valueCode", json_string(m->parent)));
    if (m->dep[0])
        json_array_append_new(ps, prop("departement", "valueCode", json_string(m->dep)));
    const char *reg = m->reg;
    if (!reg[0] && m->parent[0]) { /* a retired commune is in its absorber's region */
        long at = commune_find(c, m->parent);
        if (at >= 0)
            reg = c->v[at].reg;
    }
    if (reg[0])
        json_array_append_new(ps, prop("region", "valueCode", json_string(reg)));
    if (m->has_pop)
        json_array_append_new(ps, prop("population", "valueInteger", json_integer(m->population)));
    double lat = 0, lon = 0;
    bool pos = false;
    if (m->has_centre) {
        lat = m->lat;
        lon = m->lon;
        pos = true;
    } else if (m->lp_n) {
        lat = m->lp_lat / (double)m->lp_n;
        lon = m->lp_lon / (double)m->lp_n;
        pos = true;
    }
    if (pos) {
        json_array_append_new(ps, prop("latitude", "valueDecimal", json_real(round6(lat))));
        json_array_append_new(ps, prop("longitude", "valueDecimal", json_real(round6(lon))));
    }
    if (m->npostal > 1)
        qsort(m->postal, m->npostal, sizeof *m->postal, cmp_postal);
    for (size_t i = 0; i < m->npostal; i++)
        json_array_append_new(ps, prop("postalCode", "valueString", json_string(m->postal[i])));
    json_object_set_new(cc, "property", ps);
    return cc;
}

static json_t *codesystem_build(Communes *c, const char *version)
{
    json_t *cs = json_object();
    json_object_set_new(cs, "resourceType", json_string("CodeSystem"));
    json_object_set_new(cs, "id", json_string("ror-communes"));
    json_object_set_new(cs, "url", json_string(CS_URL));
    json_object_set_new(cs, "version", json_string(version));
    json_object_set_new(cs, "name", json_string("CommunesFrance"));
    json_object_set_new(cs, "title",
                        json_string("Communes de France (COG INSEE), codes postaux et positions"));
    json_object_set_new(cs, "status", json_string("active"));
    json_object_set_new(cs, "experimental", json_false());
    json_object_set_new(
        cs, "description",
        json_string("Communes du Code officiel géographique de l'INSEE (communes, communes "
                    "déléguées et associées, arrondissements municipaux), avec leurs codes "
                    "postaux (COG, La Poste), leur population et la position de leur centre "
                    "(geo.api.gouv.fr, sinon moyenne des points La Poste). Les codes connus des "
                    "seules sources plus anciennes (communes fusionnées) sont inactifs et "
                    "rattachés à la commune qui les a absorbés."));
    json_object_set_new(cs, "caseSensitive", json_true());
    json_object_set_new(cs, "hierarchyMeaning", json_string("part-of"));
    json_object_set_new(cs, "content", json_string("complete"));
    json_object_set_new(cs, "count", json_integer((json_int_t)c->n));
    json_t *defs = json_array();
    json_array_append_new(
        defs, prop_def("type", NULL, "code",
                       "Type COG : commune-actuelle, commune-deleguee, commune-associee ou "
                       "arrondissement-municipal"));
    json_array_append_new(defs,
                          prop_def("status", PROP_URI "status", "code",
                                   "retired : commune qui n'existe plus dans le COG (fusionnée)"));
    json_array_append_new(defs, prop_def("inactive", PROP_URI "inactive", "boolean",
                                         "Vrai pour une commune qui n'existe plus"));
    json_array_append_new(
        defs, prop_def("parent", PROP_URI "parent", "code",
                       "Commune de rattachement : chef-lieu d'une commune déléguée ou associée, "
                       "commune d'un arrondissement municipal, commune qui a absorbé une commune "
                       "fusionnée"));
    json_array_append_new(defs, prop_def("departement", NULL, "code", "Code du département (COG)"));
    json_array_append_new(defs, prop_def("region", NULL, "code", "Code de la région (COG)"));
    json_array_append_new(defs,
                          prop_def("population", NULL, "integer", "Population municipale (INSEE)"));
    json_array_append_new(defs, prop_def("latitude", NULL, "decimal",
                                         "Latitude du centre de la commune (WGS84, degrés)"));
    json_array_append_new(defs, prop_def("longitude", NULL, "decimal",
                                         "Longitude du centre de la commune (WGS84, degrés)"));
    json_array_append_new(defs, prop_def("postalCode", NULL, "string",
                                         "Code postal desservant la commune (un par propriété)"));
    json_object_set_new(cs, "property", defs);
    qsort(c->v, c->n, sizeof *c->v, cmp_code);
    /* the slots index the unsorted array: rebuild them for concept_build's lookups */
    memset(c->slot, 0, c->slotcap * sizeof *c->slot);
    for (size_t i = 0; i < c->n; i++) {
        size_t j = code_hash(c->v[i].code) & (c->slotcap - 1);
        while (c->slot[j])
            j = (j + 1) & (c->slotcap - 1);
        c->slot[j] = (uint32_t)i + 1;
    }
    json_t *concepts = json_array();
    for (size_t i = 0; i < c->n; i++)
        json_array_append_new(concepts, concept_build(c, &c->v[i]));
    json_object_set_new(cs, "concept", concepts);
    return cs;
}

/* ------------------------------------------------------------------ entry point */

typedef struct Input {
    const char *path;
    char *text;
    size_t len;
    Kind kind;
    json_t *json;
} Input;

static int input_load(Input *in, Diag *d)
{
    int rc = file_read(in->path, &in->text, &in->len, d);
    if (rc)
        return rc;
    const char *end = in->text + in->len;
    const char *p = skip_bom_ws(in->text, end);
    if (p < end && *p == '[') {
        Diag jd = {0};
        if (json_parse(p, (size_t)(end - p), &in->json, &jd) != 0)
            return diag_set(d, ERR_INVALID,
                            "%s : fichier JSON incomplet ou invalide (tronqué ?), rien n'en est "
                            "importé : %s",
                            in->path, jd.msg);
        in->kind = json_kind(in->json);
    } else if (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
        const char *h = memmem(p, n, "Code_commune_INSEE", 18);
        if (h && (h == p || h[-1] == '#' || h[-1] == '"'))
            in->kind = K_LAPOSTE;
    }
    if (in->kind == K_UNKNOWN)
        return diag_set(d, ERR_INVALID,
                        "%s : contenu non reconnu (attendu : communes.json du COG INSEE "
                        "(decoupage-administratif), centres des communes de geo.api.gouv.fr ou "
                        "base officielle des codes postaux de La Poste)",
                        in->path);
    return 0;
}

int import_parse_communes(ImportSink *k, const char *const *paths, size_t n, Diag *d)
{
    Communes c = {.k = k};
    arena_init(&c.arena);
    Input *in = xcalloc(n ? n : 1, sizeof *in);
    char *version = NULL;
    int rc = 0;
    uint64_t total = 0, done = 0;
    const Input *cog = NULL;
    for (size_t i = 0; i < n; i++) {
        in[i].path = paths[i];
        rc = input_load(&in[i], d);
        if (rc)
            goto fail;
        total += in[i].len;
        if (in[i].kind == K_COG) {
            if (cog) {
                rc = diag_set(d, ERR_INVALID,
                              "deux fichiers communes.json du COG (%s et %s) : n'en donner qu'un",
                              cog->path, in[i].path);
                goto fail;
            }
            cog = &in[i];
        }
    }
    if (!cog) {
        rc = diag_set(d, ERR_INVALID,
                      "le fichier communes.json du COG INSEE (paquet decoupage-administratif) est "
                      "obligatoire : aucun des fichiers donnés n'en est un");
        goto fail;
    }
    /* the COG first (it says which codes are current), then the positions, then La Poste */
    size_t idx;
    json_t *e;
    json_array_foreach(cog->json, idx, e)
    {
        rc = cog_entry(&c, cog->path, idx, e);
        if (rc)
            goto fail;
    }
    done += cog->len;
    import_progress(k, done, total);
    for (Kind kind = K_GEO; kind <= K_LAPOSTE; kind++) {
        for (size_t i = 0; i < n; i++) {
            if (in[i].kind != kind)
                continue;
            if (kind == K_GEO) {
                json_array_foreach(in[i].json, idx, e)
                {
                    rc = geo_entry(&c, in[i].path, idx, e);
                    if (rc)
                        goto fail;
                }
            } else {
                rc = laposte_file(&c, in[i].path, in[i].text, in[i].len, d);
                if (rc)
                    goto fail;
            }
            done += in[i].len;
            import_progress(k, done, total);
        }
    }
    version = version_infer(cog->path, cog->text, cog->len);
    rc = import_emit(k, codesystem_build(&c, version), cog->path, 0);
fail:
    for (size_t i = 0; i < n; i++) {
        free(in[i].text);
        json_decref(in[i].json);
    }
    free(in);
    free(version);
    for (size_t i = 0; i < c.n; i++)
        free(c.v[i].postal);
    free(c.v);
    free(c.slot);
    free(c.old);
    free(c.absorber);
    free(c.oldslot);
    arena_cleanup(&c.arena);
    return rc;
}
