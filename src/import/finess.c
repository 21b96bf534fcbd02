/*
 * finess.c — the etalab FINESS extracts (cs1100507 ET + géolocalisation, cs1100502 ET,
 * cs1100501 EJ) to ROROrganization (EJ, EG) and RORLocation resources.
 *
 * Layout (../shared/data/finess/SOURCE.md §2): `;`-separated, no header line, a manifest line
 * `finess;etalab;<n>;<date>`, then `structureet` rows (32 fields, 31 in older files without
 * numuai), then `geolocalisation` rows joined on nofinesset; EJ files hold `structureej` rows.
 * Fields may be quoted with inner quotes doubled. Encoding is decided per line: valid UTF-8 is
 * kept, anything else is read as Latin-1 (Windows-1252).
 *
 * Ids are derived from FINESS numbers (Organization/finess-<n>, Location/finess-<nofinesset>)
 * so that importing the next extract updates the same resources.
 *
 * Memory: an ET's Location waits for its position, which comes after all structureet rows;
 * only what the Location needs is kept (a few hundred bytes per ET), never the JSON tree.
 *
 * Positions: Lambert-93 in metropolitan France, local UTM systems overseas, chosen by the
 * département or by the system sourcecoordet names when it agrees with the département. A
 * point that cannot be placed safely is dropped with a warning: never put at a wrong place.
 */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <zlib.h>

#include "import/import.h"
#include "import/import_int.h"

#define ET_FIELDS 32 /* structureet, numuai last */
#define GEO_FIELDS 6
#define EJ_FIELDS 23
#define PROGRESS_EVERY 4096

#define NOS "https://mos.esante.gouv.fr/NOS/"
#define SYS_G07 NOS "TRE_G07-TypeIdentifiantStructure/FHIR/TRE-G07-TypeIdentifiantStructure"
#define SYS_R13 NOS "TRE_R13-CommuneOM/FHIR/TRE-R13-CommuneOM"
#define SYS_R65                                                                                    \
    NOS "TRE_R65-AgregatCategorieEtablissement/FHIR/TRE-R65-AgregatCategorieEtablissement"
#define SYS_R66 NOS "TRE_R66-CategorieEtablissement/FHIR/TRE-R66-CategorieEtablissement"
#define SYS_R72 NOS "TRE_R72-FinessStatutJuridique/FHIR/TRE-R72-FinessStatutJuridique"
#define SYS_R73 NOS "TRE_R73-ESPIC/FHIR/TRE-R73-ESPIC"
#define SYS_R200 NOS "TRE_R200-CanalCommunication/FHIR/TRE-R200-CanalCommunication"
#define SYS_R203 NOS "TRE_R203-StatutLieu/FHIR/TRE-R203-StatutLieu"
#define SYS_R283 NOS "TRE_R283-NiveauConfidentialite/FHIR/TRE-R283-NiveauConfidentialite"
#define SYS_IDNAT "urn:oid:1.2.250.1.71.4.2.2"
#define SYS_FINESS "https://finess.esante.gouv.fr"
#define SYS_SIRENE "https://sirene.fr"
#define ROR_SD "https://interop.esante.gouv.fr/ig/fhir/ror/StructureDefinition/"
#define HL7_SD "http://hl7.org/fhir/StructureDefinition/"
#define URL_INSEE "https://hl7.fr/ig/fhir/core/StructureDefinition/fr-core-address-insee-code"
#define URL_LIEU_DIT                                                                               \
    "https://interop.esante.gouv.fr/ig/fhir/annuaire/StructureDefinition/as-ext-lieu-dit"

/* ---------------------------------------------------------------- state */

typedef enum RecKind { REC_ET = 1, REC_EJ } RecKind;

/* What a Location needs from its structureet row; strings point into `blob`. */
typedef struct Place {
    const char *compldistrib, *numvoie, *compvoie, *typvoie, *voie, *lieuditbp, *postal, *city;
    char insee[6];
} Place;

typedef struct Held {
    char *blob;
    Place place;
    const char *name, *created;
    char dept[3];
} Held;

typedef struct Rec {
    uint64_t key;
    long line;
    RecKind kind;
    bool located; /* its geolocalisation row was used */
    Held *held;   /* ET whose Location is not emitted yet */
} Rec;

struct FinessParser {
    ImportSink *k;
    const char *file;
    Projector *proj;
    bool own_proj;
    Buf text;   /* the current line, UTF-8, NUL-terminated */
    char sep;   /* decided on the first line */
    long lines; /* non-empty lines seen */
    Rec *recs;  /* in input order: the order of the final emissions */
    size_t nrecs, arecs;
    uint32_t *slots; /* open addressing: index + 1 into recs, 0 = empty */
    size_t nslots;
    /* a short line, reported when the next line comes or at the end (truncated or not) */
    long short_line;
    char short_why[200];
};

/* FINESS numbers are [0-9][0-9A-Z][0-9]{7}: base 36 fits in 64 bits. */
static uint64_t finess_key(const char *s)
{
    uint64_t k = 0;
    for (int i = 0; i < 9; i++)
        k = k * 36 + (uint64_t)(s[i] <= '9' ? s[i] - '0' : s[i] - 'A' + 10);
    return k;
}

static bool finess_valid(const char *s)
{
    if (strlen(s) != 9 || s[0] < '0' || s[0] > '9')
        return false;
    if (!((s[1] >= '0' && s[1] <= '9') || (s[1] >= 'A' && s[1] <= 'Z')))
        return false;
    for (int i = 2; i < 9; i++)
        if (s[i] < '0' || s[i] > '9')
            return false;
    return true;
}

static size_t slot_of(uint64_t key, size_t nslots)
{
    key ^= key >> 33;
    key *= 0xff51afd7ed558ccdULL;
    key ^= key >> 33;
    return (size_t)(key & (nslots - 1));
}

static Rec *rec_find(FinessParser *p, uint64_t key)
{
    if (!p->nslots)
        return NULL;
    for (size_t i = slot_of(key, p->nslots);; i = (i + 1) & (p->nslots - 1)) {
        uint32_t v = p->slots[i];
        if (!v)
            return NULL;
        if (p->recs[v - 1].key == key)
            return &p->recs[v - 1];
    }
}

static Rec *rec_add(FinessParser *p, uint64_t key, RecKind kind, long line)
{
    if ((p->nrecs + 1) * 2 > p->nslots) { /* keep the table at most half full */
        size_t n = p->nslots ? p->nslots * 2 : 1024;
        free(p->slots);
        p->slots = xcalloc(n, sizeof *p->slots);
        p->nslots = n;
        for (size_t r = 0; r < p->nrecs; r++) {
            size_t i = slot_of(p->recs[r].key, n);
            while (p->slots[i])
                i = (i + 1) & (n - 1);
            p->slots[i] = (uint32_t)(r + 1);
        }
    }
    if (p->nrecs == p->arecs) {
        p->arecs = p->arecs ? p->arecs * 2 : 1024;
        p->recs = xrealloc(p->recs, p->arecs * sizeof *p->recs);
    }
    Rec *r = &p->recs[p->nrecs];
    *r = (Rec){.key = key, .line = line, .kind = kind};
    size_t i = slot_of(key, p->nslots);
    while (p->slots[i])
        i = (i + 1) & (p->nslots - 1);
    p->slots[i] = (uint32_t)(++p->nrecs);
    return r;
}

static void held_free(Held *h)
{
    if (h) {
        free(h->blob);
        free(h);
    }
}

/* ---------------------------------------------------------------- field checks */

/* The first n bytes are digits (a NUL stops the check: it is not a digit). */
static bool digits_at(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return false;
    return true;
}

static bool all_digits(const char *s, size_t n)
{
    return strlen(s) == n && digits_at(s, n);
}

/* Bytes of s to print so that at most `max` are shown, cut on a character boundary. */
static int utf8_cut(const char *s, size_t max)
{
    size_t n = strlen(s);
    if (n > max) {
        n = max;
        while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
            n--;
    }
    return (int)n;
}

/* AAAA-MM-JJ, a real calendar day. */
static bool date_valid(const char *s)
{
    if (strlen(s) != 10 || s[4] != '-' || s[7] != '-')
        return false;
    for (int i = 0; i < 10; i++)
        if (i != 4 && i != 7 && (s[i] < '0' || s[i] > '9'))
            return false;
    int y = atoi(s), m = atoi(s + 5), d = atoi(s + 8);
    static const int mdays[12] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (y < 1800 || m < 1 || m > 12 || d < 1 || d > mdays[m - 1])
        return false;
    if (m == 2 && d == 29 && !((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
        return false;
    return true;
}

/* A decimal number as FINESS writes coordinates ("869165.8"; a comma is accepted too).
 * Parsed by hand: strtod follows the locale. */
static bool number_parse(const char *s, double *out)
{
    const char *q = s;
    bool neg = false;
    if (*q == '-' || *q == '+')
        neg = *q++ == '-';
    double v = 0, scale = 1;
    int digits = 0;
    while (*q >= '0' && *q <= '9') {
        v = v * 10 + (*q++ - '0');
        if (++digits > 12)
            return false;
    }
    if (*q == '.' || *q == ',') {
        q++;
        int frac = 0;
        while (*q >= '0' && *q <= '9') {
            scale /= 10;
            v += (*q++ - '0') * scale;
            if (++frac > 12)
                return false;
        }
        digits += frac;
    }
    if (*q || digits == 0)
        return false;
    *out = neg ? -v : v;
    return true;
}

/* The default CRS of a département's coordinates, 0 when it is not one FINESS uses. */
static int dept_epsg(const char *dept)
{
    if (strlen(dept) != 2)
        return 0;
    if (dept[0] == '9' && dept[1] >= 'A' && dept[1] <= 'F') {
        static const int dom[6] = {5490, 5490, 2972, 2975, 4467, 4471};
        return dom[dept[1] - 'A']; /* 9A Guadeloupe, 9B Martinique: both RGAF09 UTM 20N */
    }
    if ((dept[0] == '2' && (dept[1] == 'A' || dept[1] == 'B')))
        return 2154;
    if (dept[0] >= '0' && dept[0] <= '9' && dept[1] >= '0' && dept[1] <= '9') {
        int n = (dept[0] - '0') * 10 + dept[1] - '0';
        if (n >= 1 && n <= 95 && n != 20)
            return 2154;
    }
    return 0;
}

/* The INSEE commune code from FINESS's département and 3-digit commune (SOURCE.md §2):
 * dept + commune in metropolitan France (2A/2B kept), "97" + commune for 9A..9F, the commune
 * carrying the DOM digit. NULL on success, else the reason. */
static const char *insee_build(const char *dept, const char *commune, char out[6])
{
    if (!all_digits(commune, 3))
        return "code commune invalide (3 chiffres attendus)";
    if (!dept_epsg(dept))
        return "département inconnu";
    if (dept[0] == '9' && dept[1] >= 'A') {
        if (commune[0] != '1' + (dept[1] - 'A'))
            return "code commune incohérent avec le département";
        snprintf(out, 6, "97%s", commune);
        /* Saint-Barthélemy and Saint-Martin keep their pre-2007 Guadeloupe codes in FINESS;
         * the COG (and TRE_R13) know them as 97701 and 97801. */
        if (strcmp(out, "97123") == 0)
            memcpy(out, "97701", 6);
        else if (strcmp(out, "97127") == 0)
            memcpy(out, "97801", 6);
        return NULL;
    }
    snprintf(out, 6, "%s%s", dept, commune);
    return NULL;
}

/* ---------------------------------------------------------------- JSON building */

static void set_str(json_t *o, const char *key, const char *v)
{
    if (v && *v)
        json_object_set_new(o, key, json_string(v));
}

static json_t *coding(const char *system, const char *code, const char *display)
{
    json_t *c = json_pack("{ssss}", "system", system, "code", code);
    set_str(c, "display", display);
    return c;
}

/* A CodeableConcept; FINESS's own label goes to `text`: it is not the NOS display. */
static json_t *concept(const char *system, const char *code, const char *display, const char *text)
{
    json_t *c = json_pack("{s[o]}", "coding", coding(system, code, display));
    set_str(c, "text", text);
    return c;
}

static json_t *identifier(const char *type, const char *type_display, const char *system,
                          const char *value)
{
    return json_pack("{sss{s[o]}ssss}", "use", "official", "type", "coding",
                     coding(SYS_G07, type, type_display), "system", system, "value", value);
}

static json_t *ext_string(const char *url, const char *value)
{
    return json_pack("{ssss}", "url", url, "valueString", value);
}

static json_t *telecom(const char *system, const char *value)
{
    /* ContactPoint extensions the guide requires (§7): channel and confidentiality. */
    const char *chan = "2", *chan_display = "Téléphone fixe";
    if (strcmp(system, "fax") == 0)
        chan = "6", chan_display = "Télécopie";
    else if (value[0] == '0' && (value[1] == '6' || value[1] == '7'))
        chan = "1", chan_display = "Téléphone mobile";
    return json_pack("{sssssss[{ssso}{ssso}]}", "system", system, "value", value, "use", "work",
                     "extension", "url", ROR_SD "ror-telecom-communication-channel",
                     "valueCodeableConcept",
                     json_pack("{s[o]}", "coding", coding(SYS_R200, chan, chan_display)), "url",
                     ROR_SD "ror-telecom-confidentiality-level", "valueCodeableConcept",
                     json_pack("{s[o]}", "coding", coding(SYS_R283, "1", "Accès libre")));
}

static void add_line(json_t *lines, json_t *ext_lines, const char *text, json_t *exts)
{
    json_array_append_new(lines, json_string(text));
    json_array_append_new(ext_lines, json_pack("{so}", "extension", exts));
}

static const char *suffix_text(const char *compvoie)
{
    if (strcmp(compvoie, "B") == 0)
        return "BIS";
    if (strcmp(compvoie, "T") == 0)
        return "TER";
    if (strcmp(compvoie, "Q") == 0)
        return "QUATER";
    return compvoie;
}

/* A FHIR Address: structured lines (ISO 21090 ADXP parts, lieu-dit), postal code and routing
 * city, and the commune's INSEE code in the fr-core extension. */
static json_t *address(const Place *pl)
{
    json_t *a = json_object(), *lines = json_array(), *ext_lines = json_array();
    if (*pl->compldistrib)
        add_line(lines, ext_lines, pl->compldistrib,
                 json_pack("[o]",
                           ext_string(HL7_SD "iso21090-ADXP-additionalLocator", pl->compldistrib)));
    const char *suffix = suffix_text(pl->compvoie);
    if (*pl->numvoie || *pl->typvoie || *pl->voie) {
        char text[256];
        snprintf(text, sizeof text, "%s%s%s%s%s%s%s", pl->numvoie,
                 *pl->numvoie && *suffix ? " " : "", *pl->numvoie ? suffix : "",
                 *pl->numvoie && (*pl->typvoie || *pl->voie) ? " " : "", pl->typvoie,
                 *pl->typvoie && *pl->voie ? " " : "", pl->voie);
        json_t *e = json_array();
        if (*pl->numvoie)
            json_array_append_new(e, ext_string(HL7_SD "iso21090-ADXP-houseNumber", pl->numvoie));
        if (*pl->numvoie && *suffix)
            json_array_append_new(e,
                                  ext_string(HL7_SD "iso21090-ADXP-buildingNumberSuffix", suffix));
        if (*pl->typvoie)
            json_array_append_new(e,
                                  ext_string(HL7_SD "iso21090-ADXP-streetNameType", pl->typvoie));
        if (*pl->voie)
            json_array_append_new(e, ext_string(HL7_SD "iso21090-ADXP-streetNameBase", pl->voie));
        add_line(lines, ext_lines, text, e);
    }
    if (*pl->lieuditbp) {
        const char *s = pl->lieuditbp;
        bool box = (strncmp(s, "BP", 2) == 0 && (s[2] == ' ' || (s[2] >= '0' && s[2] <= '9'))) ||
                   strncmp(s, "CS ", 3) == 0 || strncmp(s, "TSA ", 4) == 0;
        add_line(lines, ext_lines, s,
                 json_pack("[o]", box ? ext_string(HL7_SD "iso21090-ADXP-postBox", s)
                                      : ext_string(URL_LIEU_DIT, s)));
    }
    json_object_set_new(
        a, "extension",
        json_pack("[{ssso}]", "url", URL_INSEE, "valueCoding", coding(SYS_R13, pl->insee, NULL)));
    json_object_set_new(a, "use", json_string("work"));
    json_object_set_new(a, "type", json_string("both"));
    if (json_array_size(lines)) {
        json_object_set_new(a, "line", lines);
        json_object_set_new(a, "_line", ext_lines);
    } else {
        json_decref(lines);
        json_decref(ext_lines);
    }
    set_str(a, "postalCode", pl->postal);
    set_str(a, "city", pl->city);
    json_object_set_new(a, "country", json_string("FR"));
    return a;
}

static json_t *ref(const char *type, const char *finess)
{
    char r[48];
    snprintf(r, sizeof r, "%s/finess-%s", type, finess);
    return json_pack("{ss}", "reference", r);
}

static json_t *resource(const char *type, const char *finess, const char *profile)
{
    char id[24];
    snprintf(id, sizeof id, "finess-%s", finess);
    return json_pack("{sssss{s[s]}}", "resourceType", type, "id", id, "meta", "profile", profile);
}

static json_t *ext_created(const char *date)
{
    return json_pack("{ssss}", "url", ROR_SD "ror-meta-creation-date", "valueDateTime", date);
}

/* ---------------------------------------------------------------- rows */

/* Trimmed, NUL-terminated fields of the current line (pointers into p->text). */
typedef struct Row {
    char *f[CSV_MAX_FIELDS];
    int n;
    long line;
} Row;

static const char *field(const Row *r, int i)
{
    return i < r->n ? r->f[i] : "";
}

/* Postal code and city from ligneacheminement ("01440 VIRIAT", "75651 PARIS CEDEX 13"). */
static void routing_split(char *s, const char **postal, const char **city)
{
    *postal = "";
    *city = s;
    if (digits_at(s, 5) && s[5] == ' ' && s[6]) {
        s[5] = '\0';
        *postal = s;
        *city = s + 6;
        while (**city == ' ')
            (*city)++;
    }
}

/* Reject a row; `value`, when given, is quoted (at most 60 bytes of it). */
static int reject(FinessParser *p, long line, const char *why, const char *value)
{
    if (value) {
        int n = utf8_cut(value, 60);
        return import_reject(p->k, p->file, line, "%s : « %.*s%s »", why, n, value,
                             value[n] ? "…" : "");
    }
    return import_reject(p->k, p->file, line, "%s", why);
}

/* Checks shared by structureet and structureej: dates and the commune. */
static int check_date(FinessParser *p, const Row *r, const char *s, const char *what, bool required,
                      bool *bad)
{
    if (!*s && !required)
        return 0;
    *bad = true;
    char why[96];
    snprintf(why, sizeof why, "%s %s", what, *s ? "invalide (AAAA-MM-JJ attendu)" : "manquante");
    if (!*s)
        return reject(p, r->line, why, NULL);
    if (!date_valid(s))
        return reject(p, r->line, why, s);
    *bad = false;
    return 0;
}

static int row_et(FinessParser *p, Row *r)
{
    const char *et = field(r, 1), *ej = field(r, 2);
    if (!finess_valid(et))
        return reject(p, r->line, "numéro FINESS ET invalide", et);
    if (!finess_valid(ej))
        return reject(p, r->line, "numéro FINESS EJ invalide", ej);
    const char *rs = field(r, 3), *rslongue = field(r, 4);
    if (!*rs && !*rslongue)
        return reject(p, r->line, "raison sociale manquante", NULL);
    Place pl = {0};
    const char *why = insee_build(field(r, 13), field(r, 12), pl.insee);
    if (why) {
        char *v = xasprintf("%s / %s", field(r, 13), field(r, 12));
        int rc = reject(p, r->line, why, v);
        free(v);
        return rc;
    }
    const char *dateouv = field(r, 28), *dateautor = field(r, 29), *datemaj = field(r, 30);
    bool bad = false;
    int rc;
    if ((rc = check_date(p, r, dateouv, "date d'ouverture", false, &bad)) || bad)
        return rc;
    if ((rc = check_date(p, r, dateautor, "date d'autorisation", false, &bad)) || bad)
        return rc;
    if ((rc = check_date(p, r, datemaj, "date de mise à jour", true, &bad)) || bad)
        return rc;
    uint64_t key = finess_key(et);
    Rec *dup = rec_find(p, key);
    if (dup) {
        char why2[96];
        snprintf(why2, sizeof why2, "numéro FINESS déjà vu ligne %ld", dup->line);
        return reject(p, r->line, why2, et);
    }

    pl.compldistrib = field(r, 6);
    pl.numvoie = field(r, 7);
    pl.typvoie = field(r, 8);
    pl.voie = field(r, 9);
    pl.compvoie = field(r, 10);
    pl.lieuditbp = field(r, 11);
    routing_split(r->f[15], &pl.postal, &pl.city);
    const char *name = *rslongue ? rslongue : rs;
    /* The creation date must not change from one extract to the next (re-imports are
     * idempotent): the opening date, else the authorisation date, else the row's date. */
    const char *created = *dateouv ? dateouv : *dateautor ? dateautor : datemaj;

    json_t *o = resource("Organization", et, ROR_SD "ror-organization");
    json_t *ext = json_array();
    json_array_append_new(ext, ext_created(created));
    if (*dateouv)
        json_array_append_new(ext, json_pack("{sss{ss}}", "url", HL7_SD "organization-period",
                                             "valuePeriod", "start", dateouv));
    json_object_set_new(o, "extension", ext);
    json_t *ids = json_array();
    char idnat[16];
    snprintf(idnat, sizeof idnat, "1%s", et);
    json_array_append_new(ids,
                          identifier("40", "Identifiant national de structure", SYS_IDNAT, idnat));
    json_array_append_new(ids, identifier("1", "FINESS", SYS_FINESS, et));
    const char *siret = field(r, 22);
    if (all_digits(siret, 14))
        json_array_append_new(ids, identifier("3", "SIRET", SYS_SIRENE, siret));
    else if (*siret)
        import_warn(p->k, p->file, r->line, "SIRET invalide ignoré « %.*s »", utf8_cut(siret, 20),
                    siret);
    json_object_set_new(o, "identifier", ids);
    json_object_set_new(o, "active", json_true());
    json_t *types = json_array();
    if (all_digits(field(r, 18), 3))
        json_array_append_new(types, concept(SYS_R66, field(r, 18), NULL, field(r, 19)));
    if (all_digits(field(r, 20), 4))
        json_array_append_new(types, concept(SYS_R65, field(r, 20), NULL, field(r, 21)));
    if (all_digits(field(r, 26), 1))
        json_array_append_new(types, concept(SYS_R73, field(r, 26), NULL, field(r, 27)));
    if (json_array_size(types))
        json_object_set_new(o, "type", types);
    else
        json_decref(types);
    json_object_set_new(o, "name", json_string(name));
    if (*rslongue && *rs && strcmp(rs, rslongue) != 0)
        json_object_set_new(o, "alias", json_pack("[s]", rs));
    json_t *tel = json_array();
    if (*field(r, 16))
        json_array_append_new(tel, telecom("phone", field(r, 16)));
    if (*field(r, 17))
        json_array_append_new(tel, telecom("fax", field(r, 17)));
    if (json_array_size(tel))
        json_object_set_new(o, "telecom", tel);
    else
        json_decref(tel);
    json_object_set_new(o, "address", json_pack("[o]", address(&pl)));
    json_object_set_new(o, "partOf", ref("Organization", ej));
    rc = import_emit(p->k, o, p->file, r->line);
    if (rc)
        return rc;

    /* Keep what the Location needs until its geolocalisation row. */
    const char *parts[] = {pl.compldistrib, pl.numvoie, pl.compvoie, pl.typvoie, pl.voie,
                           pl.lieuditbp,    pl.postal,  pl.city,     name,       created};
    enum { NPARTS = sizeof parts / sizeof parts[0] };
    size_t total = 0;
    for (size_t i = 0; i < NPARTS; i++)
        total += strlen(parts[i]) + 1;
    Held *h = xcalloc(1, sizeof *h);
    h->blob = xmalloc(total);
    const char *copy[NPARTS];
    char *w = h->blob;
    for (size_t i = 0; i < NPARTS; i++) {
        size_t n = strlen(parts[i]) + 1;
        memcpy(w, parts[i], n);
        copy[i] = w;
        w += n;
    }
    h->place = (Place){copy[0], copy[1], copy[2], copy[3], copy[4], copy[5], copy[6], copy[7], {0}};
    memcpy(h->place.insee, pl.insee, sizeof pl.insee);
    h->name = copy[8];
    h->created = copy[9];
    snprintf(h->dept, sizeof h->dept, "%s", field(r, 13));
    Rec *rec = rec_add(p, key, REC_ET, r->line);
    rec->held = h;
    return 0;
}

static int emit_location(FinessParser *p, Rec *rec, const char *et, bool has_pos, double lat,
                         double lon)
{
    Held *h = rec->held;
    json_t *l = resource("Location", et, ROR_SD "ror-location");
    json_object_set_new(l, "extension",
                        json_pack("[{sss{s[o]}}o]", "url", ROR_SD "ror-commune-cog",
                                  "valueCodeableConcept", "coding",
                                  coding(SYS_R13, h->place.insee, NULL), ext_created(h->created)));
    json_object_set_new(l, "status", json_string("active"));
    json_object_set_new(l, "operationalStatus", coding(SYS_R203, "3", "Opérationnel"));
    json_object_set_new(l, "name", json_string(h->name));
    json_object_set_new(l, "address", address(&h->place));
    if (has_pos)
        json_object_set_new(l, "position",
                            json_pack("{sfsf}", "longitude", round(lon * 1e7) / 1e7, "latitude",
                                      round(lat * 1e7) / 1e7));
    json_object_set_new(l, "managingOrganization", ref("Organization", et));
    long line = rec->line;
    held_free(h);
    rec->held = NULL;
    return import_emit(p->k, l, p->file, line);
}

/* The CRS that sourcecoordet names: an "EPSG:n" anywhere, or a known name among its
 * comma-separated parts ("…,LAMBERT_93", "…,UTM_N20"). 0 when it names none; -1 when a part
 * looks like a projection we do not know (copied to `unknown`). */
static int named_epsg(const char *src, char *unknown, size_t unknown_size)
{
    for (const char *s = src; *s; s++) {
        if ((s[0] == 'E' || s[0] == 'e') && strncasecmp(s, "EPSG:", 5) == 0) {
            const char *q = s + 5;
            while (*q == ' ')
                q++;
            int v = 0, nd = 0;
            while (*q >= '0' && *q <= '9' && nd < 7)
                v = v * 10 + (*q++ - '0'), nd++;
            if (nd > 0 && nd < 7)
                return v;
        }
    }
    static const struct {
        const char *name;
        int epsg;
    } known[] = {{"LAMBERT_93", 2154}, {"LAMBERT93", 2154}, {"UTM_N20", 5490}, {"UTM_N21", 4467},
                 {"UTM_N22", 2972},    {"UTM_S38", 4471},   {"UTM_S40", 2975}};
    static const char *projection_words[] = {"LAMBERT", "UTM", "EPSG",  "WGS", "RGF",   "RGR",
                                             "RGAF",    "RGM", "RGSPM", "NTF", "GAUSS", "MERCATOR"};
    const char *s = src;
    while (*s) {
        const char *e = strchr(s, ',');
        size_t n = e ? (size_t)(e - s) : strlen(s);
        char tok[256]; /* a long part is examined on its first bytes */
        while (n && *s == ' ')
            s++, n--;
        while (n && s[n - 1] == ' ')
            n--;
        if (n) {
            size_t m = n < sizeof tok ? n : sizeof tok - 1;
            for (size_t i = 0; i < m; i++) {
                char c = s[i];
                tok[i] = c == ' ' || c == '-' ? '_' : (c >= 'a' && c <= 'z') ? c - 32 : c;
            }
            tok[m] = '\0';
            for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
                if (strcmp(tok, known[i].name) == 0)
                    return known[i].epsg;
            for (size_t i = 0; i < sizeof projection_words / sizeof projection_words[0]; i++)
                if (strstr(tok, projection_words[i])) {
                    char *part = xstrndup(s, n);
                    snprintf(unknown, unknown_size, "%.*s", utf8_cut(part, unknown_size - 1), part);
                    free(part);
                    return -1;
                }
        }
        if (!e)
            break;
        s = e + 1;
    }
    return 0;
}

static int row_geo(FinessParser *p, Row *r, Diag *d)
{
    const char *et = field(r, 1);
    if (!finess_valid(et))
        return reject(p, r->line, "numéro FINESS ET invalide", et);
    Rec *rec = rec_find(p, finess_key(et));
    if (!rec || rec->kind != REC_ET)
        return reject(p, r->line, "géolocalisation d'un établissement inconnu", et);
    if (rec->located || !rec->held) {
        char why[96];
        snprintf(why, sizeof why, "géolocalisation en double (établissement de la ligne %ld)",
                 rec->line);
        return reject(p, r->line, why, et);
    }
    const char *xs = field(r, 2), *ys = field(r, 3), *src = field(r, 4);
    bool bad = false;
    int rc = check_date(p, r, field(r, 5), "date de mise à jour des coordonnées", false, &bad);
    if (rc || bad)
        return rc;
    double x, y;
    if (!*xs && !*ys) {
        rec->located = true;
        import_warn(p->k, p->file, r->line, "coordonnées absentes : %s sans position", et);
        return emit_location(p, rec, et, false, 0, 0);
    }
    if (!number_parse(xs, &x) || !number_parse(ys, &y)) {
        char *v = xasprintf("%s ; %s", xs, ys);
        rc = reject(p, r->line, "coordonnées invalides", v);
        free(v);
        return rc;
    }
    rec->located = true;

    if (!p->proj) {
        rc = projector_new(&p->proj, d);
        if (rc)
            return rc;
        p->own_proj = true;
    }
    int want = dept_epsg(rec->held->dept);
    char unknown[64] = "";
    int named = named_epsg(src, unknown, sizeof unknown);
    if (named < 0) {
        import_warn(p->k, p->file, r->line, "projection inconnue « %s » : %s sans position",
                    unknown, et);
        return emit_location(p, rec, et, false, 0, 0);
    }
    int epsg = named ? named : want;
    double lat, lon;
    Diag pd = {{0}, {0}};
    rc = projector_to_wgs84(p->proj, epsg, x, y, &lat, &lon, &pd);
    /* A system other than the département's own is trusted only if the point it gives lies
     * where that département's system applies. */
    if (rc == 0 && epsg != want)
        rc = projector_check_area(p->proj, want, lat, lon, &pd);
    if (rc) {
        if (epsg != want)
            import_warn(p->k, p->file, r->line,
                        "projection EPSG:%d incohérente avec le département %s : %s sans "
                        "position (%s)",
                        epsg, rec->held->dept, et, pd.msg);
        else
            import_warn(p->k, p->file, r->line, "position de %s ignorée : %s", et, pd.msg);
        return emit_location(p, rec, et, false, 0, 0);
    }
    return emit_location(p, rec, et, true, lat, lon);
}

static int row_ej(FinessParser *p, Row *r)
{
    const char *ej = field(r, 1);
    if (!finess_valid(ej))
        return reject(p, r->line, "numéro FINESS EJ invalide", ej);
    const char *rs = field(r, 2), *rslongue = field(r, 3);
    if (!*rs && !*rslongue)
        return reject(p, r->line, "raison sociale manquante", NULL);
    Place pl = {0};
    const char *why = insee_build(field(r, 13), field(r, 11), pl.insee);
    if (why) {
        char *v = xasprintf("%s / %s", field(r, 13), field(r, 11));
        int rc = reject(p, r->line, why, v);
        free(v);
        return rc;
    }
    const char *datecrea = field(r, 22);
    bool bad = false;
    int rc = check_date(p, r, datecrea, "date de création", true, &bad);
    if (rc || bad)
        return rc;
    uint64_t key = finess_key(ej);
    Rec *dup = rec_find(p, key);
    if (dup) {
        char why2[96];
        snprintf(why2, sizeof why2, "numéro FINESS déjà vu ligne %ld", dup->line);
        return reject(p, r->line, why2, ej);
    }
    rec_add(p, key, REC_EJ, r->line);

    pl.numvoie = field(r, 5);
    pl.typvoie = field(r, 6);
    pl.voie = field(r, 7);
    pl.compvoie = field(r, 8);
    pl.compldistrib = field(r, 9);
    pl.lieuditbp = field(r, 10);
    routing_split(r->f[12], &pl.postal, &pl.city);

    json_t *o = resource("Organization", ej, ROR_SD "ror-organization");
    json_object_set_new(o, "extension",
                        json_pack("[o{ssss}]", ext_created(datecrea), "url",
                                  ROR_SD "ror-organization-creation-date", "valueDate", datecrea));
    json_t *ids = json_array();
    char idnat[16];
    snprintf(idnat, sizeof idnat, "1%s", ej);
    json_array_append_new(ids,
                          identifier("40", "Identifiant national de structure", SYS_IDNAT, idnat));
    json_array_append_new(ids, identifier("1", "FINESS", SYS_FINESS, ej));
    const char *siren = field(r, 20);
    if (all_digits(siren, 9))
        json_array_append_new(ids, identifier("2", "SIREN", SYS_SIRENE, siren));
    else if (*siren)
        import_warn(p->k, p->file, r->line, "SIREN invalide ignoré « %.*s »", utf8_cut(siren, 20),
                    siren);
    json_object_set_new(o, "identifier", ids);
    json_object_set_new(o, "active", json_true());
    const char *statut = field(r, 16);
    if (strlen(statut) >= 2 && strlen(statut) <= 3 && all_digits(statut, strlen(statut)))
        json_object_set_new(o, "type",
                            json_pack("[o]", concept(SYS_R72, statut, NULL, field(r, 17))));
    json_object_set_new(o, "name", json_string(*rslongue ? rslongue : rs));
    if (*rslongue && *rs && strcmp(rs, rslongue) != 0)
        json_object_set_new(o, "alias", json_pack("[s]", rs));
    if (*field(r, 15))
        json_object_set_new(o, "telecom", json_pack("[o]", telecom("phone", field(r, 15))));
    json_object_set_new(o, "address", json_pack("[o]", address(&pl)));
    return import_emit(p->k, o, p->file, r->line);
}

/* ---------------------------------------------------------------- lines */

FinessParser *finess_parser_new(ImportSink *k, const char *file, Projector *proj)
{
    FinessParser *p = xcalloc(1, sizeof *p);
    p->k = k;
    p->file = file;
    p->proj = proj;
    buf_init(&p->text, (size_t)LINE_READER_MAX_LINE * 3 + 16);
    return p;
}

static int flush_short(FinessParser *p, bool truncated)
{
    if (!p->short_line)
        return 0;
    long line = p->short_line;
    p->short_line = 0;
    if (truncated)
        return import_reject(p->k, p->file, line,
                             "dernière ligne tronquée (pas de fin de ligne) : %s", p->short_why);
    return import_reject(p->k, p->file, line, "%s", p->short_why);
}

static void hold_short(FinessParser *p, long line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void hold_short(FinessParser *p, long line, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->short_why, sizeof p->short_why, fmt, ap);
    va_end(ap);
    p->short_line = line;
}

int finess_parser_line(FinessParser *p, char *line, size_t len, long lineno, Diag *d)
{
    int rc = flush_short(p, false);
    if (rc)
        return rc;
    if (p->lines == 0 && len >= 3 && memcmp(line, "\xEF\xBB\xBF", 3) == 0) {
        line += 3; /* UTF-8 byte order mark */
        len -= 3;
    }
    size_t blank = 0;
    while (blank < len && (line[blank] == ' ' || line[blank] == '\t' || line[blank] == '\r'))
        blank++;
    if (blank == len)
        return 0;
    p->lines++;
    if (memchr(line, '\0', len))
        return reject(p, lineno, "caractère nul dans la ligne", NULL);
    p->text.len = 0;
    p->text.overflow = false;
    if (text_is_utf8(line, len))
        buf_add(&p->text, line, len);
    else
        text_latin1_to_utf8(line, len, &p->text);
    if (p->text.overflow || !p->text.p)
        return reject(p, lineno, "ligne trop longue", NULL);
    if (!p->sep) /* the 2013 documentation says tab-separated; published files use ';' */
        p->sep = memchr(p->text.p, ';', p->text.len) || !memchr(p->text.p, '\t', p->text.len)
                     ? ';'
                     : '\t';

    CsvFields cf;
    Diag cd = {{0}, {0}};
    rc = csv_split(p->text.p, p->text.len, p->sep, true, &cf, &cd);
    if (rc == ERR_INVALID) {
        hold_short(p, lineno, "%s", cd.msg);
        return 0;
    }
    if (rc)
        return reject(p, lineno, "trop de champs", NULL);
    Row r = {.n = cf.n, .line = lineno};
    for (int i = 0; i < cf.n; i++) {
        /* Each field ends at or before its separator: terminating it in place is safe. */
        char *s = (char *)cf.f[i].p;
        size_t n = cf.f[i].len;
        while (n && s[n - 1] == ' ')
            n--;
        s[n] = '\0';
        while (*s == ' ')
            s++;
        r.f[i] = s;
    }

    const char *sec = r.f[0];
    int want;
    if (strcmp(sec, "structureet") == 0)
        want = ET_FIELDS;
    else if (strcmp(sec, "geolocalisation") == 0)
        want = GEO_FIELDS;
    else if (strcmp(sec, "structureej") == 0)
        want = EJ_FIELDS;
    else if (strcmp(sec, "finess") == 0) {
        if (p->lines != 1)
            return reject(p, lineno, "ligne d'en-tête inattendue", NULL);
        if (r.n != 4 || strcmp(r.f[1], "etalab") != 0 || !date_valid(r.f[3]))
            return reject(p, lineno,
                          "ligne d'en-tête invalide (finess;etalab;<n>;<AAAA-MM-JJ> attendu)",
                          NULL);
        return 0;
    } else
        return reject(p, lineno, "section inconnue", sec);

    /* numuai, last, is absent from older structureet rows; a trailing separator adds an
     * empty field */
    int n = r.n;
    if (n == want + 1 && !*r.f[n - 1])
        n--;
    if (n < want && !(want == ET_FIELDS && n == ET_FIELDS - 1)) {
        hold_short(p, lineno, "%d champs au lieu de %d pour « %s »", r.n, want, sec);
        return 0;
    }
    if (n > want)
        return import_reject(p->k, p->file, lineno, "%d champs au lieu de %d pour « %s »", r.n,
                             want, sec);
    if (want == ET_FIELDS)
        return row_et(p, &r);
    if (want == GEO_FIELDS)
        return row_geo(p, &r, d);
    return row_ej(p, &r);
}

bool finess_parser_last_line_short(const FinessParser *p)
{
    return p->short_line != 0;
}

int finess_parser_finish(FinessParser *p, bool unterminated, Diag *d)
{
    (void)d;
    int rc = flush_short(p, unterminated);
    if (rc)
        return rc;
    /* ETs without a geolocalisation row: their Location, without position, in file order. */
    for (size_t i = 0; i < p->nrecs; i++) {
        Rec *rec = &p->recs[i];
        if (!rec->held)
            continue;
        char et[10];
        uint64_t k = rec->key;
        for (int j = 8; j >= 0; j--, k /= 36) {
            int c = (int)(k % 36);
            et[j] = (char)(c < 10 ? '0' + c : 'A' + c - 10);
        }
        et[9] = '\0';
        rc = emit_location(p, rec, et, false, 0, 0);
        if (rc)
            return rc;
    }
    return 0;
}

void finess_parser_free(FinessParser *p)
{
    if (!p)
        return;
    for (size_t i = 0; i < p->nrecs; i++)
        held_free(p->recs[i].held);
    free(p->recs);
    free(p->slots);
    buf_cleanup(&p->text);
    if (p->own_proj)
        projector_free(p->proj);
    free(p);
}

/* ---------------------------------------------------------------- files */

/* Whether the (decompressed) content ends with a newline. Only asked when the last line was
 * short, so reading the file again costs nothing in the normal case. */
static bool ends_with_newline(const char *path)
{
    gzFile gz = gzopen(path, "rb");
    if (!gz)
        return true;
    char buf[65536];
    int n, last = '\n';
    while ((n = gzread(gz, buf, sizeof buf)) > 0)
        last = (unsigned char)buf[n - 1];
    gzclose(gz);
    return last == '\n';
}

int import_parse_finess(ImportSink *k, const char *path, Diag *d)
{
    LineReader *lr = NULL;
    int rc = line_reader_open(path, &lr, d);
    if (rc)
        return rc;
    FinessParser *p = finess_parser_new(k, path, NULL);
    char *line;
    size_t len;
    for (;;) {
        Diag ld = {{0}, {0}};
        rc = line_reader_next(lr, &line, &len, &ld);
        if (rc == 0)
            break;
        long lineno = line_reader_lineno(lr);
        if (rc == ERR_TOO_LARGE) {
            rc = import_reject(k, path, lineno, "%s", ld.msg);
            if (rc)
                goto fail;
            continue;
        }
        if (rc < 0) {
            diag_set(d, rc, "%s : %s", path, ld.msg);
            goto fail;
        }
        rc = finess_parser_line(p, line, len, lineno, d);
        if (rc)
            goto fail;
        if (lineno % PROGRESS_EVERY == 0)
            import_progress(k, line_reader_offset(lr), line_reader_size(lr));
    }
    rc = finess_parser_finish(p, finess_parser_last_line_short(p) && !ends_with_newline(path), d);
    if (rc == 0)
        import_progress(k, line_reader_size(lr), line_reader_size(lr));
fail:
    finess_parser_free(p);
    line_reader_free(lr);
    return rc;
}
