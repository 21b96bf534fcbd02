/*
 * rpps.c — the RPPS/Adeli extract « PS_LibreAcces_Personne_activite » (annuaire.sante.fr) to
 * one Practitioner per person and one PractitionerRole per activity row.
 *
 * The file is '|'-separated, unquoted, with a header line; columns are found by their header
 * name (ANS has reordered them between releases). A person has one row per activity and the
 * rows of a person need not be adjacent, so rows are kept in memory, grouped by person, and
 * everything is emitted at the end, persons in first-seen order. Memory: every field value is
 * interned once (labels and codes repeat on millions of rows), a row is a few dozen 32-bit
 * string numbers.
 *
 * Ids are derived from the data only, so that a re-import of the same file yields the same
 * resources: Practitioner `rpps-<identifiant PP>`, PractitionerRole
 * `rpps-<identifiant PP>-<hash>` where the hash covers what identifies an activity (structure
 * identifiers and role codes) — adding or reordering rows does not renumber the others.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "import/import.h"
#include "import/import_int.h"

#define NOS "https://mos.esante.gouv.fr/NOS/"
#define SYS_G08 NOS "TRE_G08-TypeIdentifiantPersonne/FHIR/TRE-G08-TypeIdentifiantPersonne"
#define SYS_G15 NOS "TRE_G15-ProfessionSante/FHIR/TRE-G15-ProfessionSante"
#define SYS_R94 NOS "TRE_R94-ProfessionSocial/FHIR/TRE-R94-ProfessionSocial"
#define SYS_R95 NOS "TRE_R95-UsagerTitre/FHIR/TRE-R95-UsagerTitre"
#define SYS_R04 NOS "TRE_R04-TypeSavoirFaire/FHIR/TRE-R04-TypeSavoirFaire"
#define SYS_R23 NOS "TRE_R23-ModeExercice/FHIR/TRE-R23-ModeExercice"
#define SYS_FRCORE_0203 "https://hl7.fr/ig/fhir/core/CodeSystem/fr-core-cs-v2-0203"
#define SYS_IDNPS "urn:oid:1.2.250.1.71.4.2.1"
#define SYS_IDNST "urn:oid:1.2.250.1.71.4.2.2" /* the FINESS ET as the FINESS data carries it */
#define SYS_SIRENE "https://sirene.fr"
#define EXT_MODE                                                                                   \
    "https://interop.esante.gouv.fr/ig/fhir/ror/StructureDefinition/"                              \
    "ror-practitionerrole-unit-exercise-mode"

/* Columns we use. P_* are a person's (kept once, from its first row), R_* an activity's. */
enum { P_TYPE, P_IDPP, P_IDNAT, P_CIVEX_CODE, P_NOM, P_PRENOM, P_COUNT };
enum {
    R_PROF_CODE,
    R_PROF_LIB,
    R_CAT_CODE,
    R_SFTYPE_CODE,
    R_SFTYPE_LIB,
    R_SF_CODE,
    R_SF_LIB,
    R_MODE_CODE,
    R_MODE_LIB,
    R_SIRET,
    R_SIREN,
    R_FINESS,
    R_FINESS_EJ,
    R_STRUCT_ID,
    R_TEL,
    R_TEL2,
    R_FAX,
    R_EMAIL,
    R_SECTEUR_CODE,
    R_SECTION_CODE,
    R_COUNT
};

typedef struct Column {
    const char *header;
    bool person; /* P_* (else R_*) */
    int field;
    bool required; /* in the header */
} Column;

static const Column columns[] = {
    {"Type d'identifiant PP", true, P_TYPE, true},
    {"Identifiant PP", true, P_IDPP, true},
    {"Identification nationale PP", true, P_IDNAT, true},
    {"Code civilité d'exercice", true, P_CIVEX_CODE, false},
    {"Nom d'exercice", true, P_NOM, true},
    {"Prénom d'exercice", true, P_PRENOM, true},
    {"Code profession", false, R_PROF_CODE, true},
    {"Libellé profession", false, R_PROF_LIB, false},
    {"Code catégorie professionnelle", false, R_CAT_CODE, false},
    {"Code type savoir-faire", false, R_SFTYPE_CODE, false},
    {"Libellé type savoir-faire", false, R_SFTYPE_LIB, false},
    {"Code savoir-faire", false, R_SF_CODE, false},
    {"Libellé savoir-faire", false, R_SF_LIB, false},
    {"Code mode exercice", false, R_MODE_CODE, false},
    {"Libellé mode exercice", false, R_MODE_LIB, false},
    {"Numéro SIRET site", false, R_SIRET, false},
    {"Numéro SIREN site", false, R_SIREN, false},
    {"Numéro FINESS site", false, R_FINESS, false},
    {"Numéro FINESS établissement juridique", false, R_FINESS_EJ, false},
    {"Identifiant technique de la structure", false, R_STRUCT_ID, false},
    {"Téléphone (coord. structure)", false, R_TEL, false},
    {"Téléphone 2 (coord. structure)", false, R_TEL2, false},
    {"Télécopie (coord. structure)", false, R_FAX, false},
    {"Adresse e-mail (coord. structure)", false, R_EMAIL, false},
    {"Code secteur d'activité", false, R_SECTEUR_CODE, false},
    {"Code section tableau pharmaciens", false, R_SECTION_CODE, false},
};
#define NCOLUMNS (sizeof columns / sizeof columns[0])

typedef struct Person {
    uint32_t f[P_COUNT];  /* interned strings */
    uint32_t first, last; /* rows of the person: a list through Row.next (+1; 0 = none) */
    uint32_t line;
} Person;

typedef struct Row {
    uint32_t f[R_COUNT];
    uint32_t next; /* next row of the same person, +1; 0 = none */
    uint32_t line;
} Row;

/* Open-addressing set of uint32 (index + 1) keyed by a string the caller resolves. */
typedef struct Table {
    uint32_t *slot;
    size_t cap; /* power of two */
    size_t n;
} Table;

struct RppsParser {
    ImportSink *k;
    const char *file;
    Arena arena;
    /* header */
    bool header_seen;
    int ncols;            /* fields per line, as in the header */
    int colidx[NCOLUMNS]; /* field index of each Column, -1 when absent */
    /* interned strings: strs[0] is "" */
    const char **strs;
    size_t nstrs, capstrs;
    Table strtab;
    Person *persons;
    size_t npersons, cappersons;
    Table persontab; /* keyed by identification nationale */
    Row *rows;
    size_t nrows, caprows;
    /* a short row is reported once we know whether it was the last one (truncated file) */
    long pending_line;
    int pending_n;
    Buf conv; /* a Latin-1 line converted to UTF-8 */
};

static uint64_t fnv1a(uint64_t h, const void *p, size_t n)
{
    const unsigned char *s = p;
    for (size_t i = 0; i < n; i++) {
        h ^= s[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}
#define FNV_INIT 0xcbf29ce484222325ULL

/* Slot of key (hash h) in t: an empty slot or the one whose entry matches. */
typedef bool (*TableEq)(const RppsParser *p, uint32_t entry, const char *key, size_t len);

static size_t table_find(const RppsParser *p, const Table *t, uint64_t h, const char *key,
                         size_t len, TableEq eq)
{
    size_t i = (size_t)h & (t->cap - 1);
    while (t->slot[i] && !eq(p, t->slot[i] - 1, key, len))
        i = (i + 1) & (t->cap - 1);
    return i;
}

typedef uint64_t (*TableHash)(const RppsParser *p, uint32_t entry);

static void table_grow(const RppsParser *p, Table *t, TableHash hash)
{
    size_t cap = t->cap ? t->cap * 2 : 1024;
    uint32_t *slot = xcalloc(cap, sizeof *slot);
    for (size_t i = 0; i < t->cap; i++) {
        if (!t->slot[i])
            continue;
        size_t j = (size_t)hash(p, t->slot[i] - 1) & (cap - 1);
        while (slot[j])
            j = (j + 1) & (cap - 1);
        slot[j] = t->slot[i];
    }
    free(t->slot);
    t->slot = slot;
    t->cap = cap;
}

static bool str_entry_eq(const RppsParser *p, uint32_t e, const char *key, size_t len)
{
    return strncmp(p->strs[e], key, len) == 0 && p->strs[e][len] == '\0';
}

static uint64_t str_entry_hash(const RppsParser *p, uint32_t e)
{
    return fnv1a(FNV_INIT, p->strs[e], strlen(p->strs[e]));
}

static bool person_entry_eq(const RppsParser *p, uint32_t e, const char *key, size_t len)
{
    return str_entry_eq(p, p->persons[e].f[P_IDNAT], key, len);
}

static uint64_t person_entry_hash(const RppsParser *p, uint32_t e)
{
    return str_entry_hash(p, p->persons[e].f[P_IDNAT]);
}

/* The number of string s (interned on first sight). */
static uint32_t intern(RppsParser *p, Str s)
{
    if (s.len == 0)
        return 0;
    if ((p->strtab.n + 1) * 2 > p->strtab.cap)
        table_grow(p, &p->strtab, str_entry_hash);
    uint64_t h = fnv1a(FNV_INIT, s.p, s.len);
    size_t i = table_find(p, &p->strtab, h, s.p, s.len, str_entry_eq);
    if (p->strtab.slot[i])
        return p->strtab.slot[i] - 1;
    if (p->nstrs == p->capstrs) {
        p->capstrs *= 2;
        p->strs = xrealloc(p->strs, p->capstrs * sizeof *p->strs);
    }
    p->strs[p->nstrs] = arena_strndup(&p->arena, s.p, s.len);
    p->strtab.slot[i] = (uint32_t)p->nstrs + 1;
    p->strtab.n++;
    return (uint32_t)p->nstrs++;
}

RppsParser *rpps_parser_new(ImportSink *k, const char *file)
{
    RppsParser *p = xcalloc(1, sizeof *p);
    p->k = k;
    p->file = file;
    arena_init(&p->arena);
    p->capstrs = 1024;
    p->strs = xmalloc(p->capstrs * sizeof *p->strs);
    p->strs[0] = "";
    p->nstrs = 1;
    buf_init(&p->conv, 4 * (size_t)LINE_READER_MAX_LINE);
    return p;
}

void rpps_parser_free(RppsParser *p)
{
    if (!p)
        return;
    arena_cleanup(&p->arena);
    free(p->strs);
    free(p->strtab.slot);
    free(p->persons);
    free(p->persontab.slot);
    free(p->rows);
    buf_cleanup(&p->conv);
    free(p);
}

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

static Str trim(Str s)
{
    while (s.len && (s.p[0] == ' ' || s.p[0] == '\t')) {
        s.p++;
        s.len--;
    }
    while (s.len && (s.p[s.len - 1] == ' ' || s.p[s.len - 1] == '\t'))
        s.len--;
    return s;
}

static bool all_digits(Str s)
{
    for (size_t i = 0; i < s.len; i++)
        if (!isdigit((unsigned char)s.p[i]))
            return false;
    return s.len > 0;
}

static bool all_alnum_upper(Str s)
{
    for (size_t i = 0; i < s.len; i++)
        if (!isdigit((unsigned char)s.p[i]) && !(s.p[i] >= 'A' && s.p[i] <= 'Z'))
            return false;
    return s.len > 0;
}

/*
 * The line as UTF-8 in *out (the line itself, or its Latin-1 reading in p->conv). A reason
 * (static French text) when it cannot be decoded.
 */
static const char *decode_line(RppsParser *p, char **line, size_t *len)
{
    for (size_t i = 0; i < *len; i++) {
        unsigned char c = (unsigned char)(*line)[i];
        if (c < 0x20 && c != '\t')
            return "caractère de contrôle dans la ligne";
        if (c == 0x7f)
            return "caractère de contrôle dans la ligne";
    }
    if (text_is_utf8(*line, *len))
        return NULL;
    p->conv.len = 0;
    p->conv.overflow = false;
    text_latin1_to_utf8(*line, *len, &p->conv);
    if (p->conv.overflow)
        return "ligne trop longue une fois convertie en UTF-8";
    /* bytes that neither UTF-8 nor Windows-1252 define came out as U+FFFD */
    if (p->conv.len && memmem(p->conv.p, p->conv.len, "\xEF\xBF\xBD", 3))
        return "encodage illisible (ni UTF-8 ni Latin-1)";
    *line = p->conv.p;
    *len = p->conv.len;
    return NULL;
}

static int parse_header(RppsParser *p, char *line, size_t len, Diag *d)
{
    /* a UTF-8 byte order mark is not part of the first column's name */
    if (len >= 3 && memcmp(line, "\xEF\xBB\xBF", 3) == 0) {
        line += 3;
        len -= 3;
    }
    const char *why = decode_line(p, &line, &len);
    if (why)
        return diag_set(d, ERR_INVALID, "%s:1 : en-tête illisible : %s", p->file, why);
    CsvFields f;
    Diag cd = {0};
    if (csv_split(line, len, '|', false, &f, &cd) != 0)
        return diag_set(d, ERR_INVALID, "%s:1 : en-tête RPPS illisible : %s", p->file, cd.msg);
    for (size_t c = 0; c < NCOLUMNS; c++) {
        p->colidx[c] = -1;
        for (int i = 0; i < f.n; i++) {
            Str h = trim(f.f[i]);
            if (h.len == strlen(columns[c].header) && memcmp(h.p, columns[c].header, h.len) == 0) {
                p->colidx[c] = i;
                break;
            }
        }
        if (p->colidx[c] < 0 && columns[c].required)
            return diag_set(d, ERR_INVALID,
                            "%s:1 : ce n'est pas une extraction RPPS « PS_LibreAcces_Personne_"
                            "activite » : colonne « %s » absente de l'en-tête",
                            p->file, columns[c].header);
    }
    p->ncols = f.n;
    p->header_seen = true;
    return 0;
}

static int flush_pending(RppsParser *p, bool last)
{
    if (!p->pending_line)
        return 0;
    long line = p->pending_line;
    int n = p->pending_n;
    p->pending_line = 0;
    if (last)
        return import_reject(p->k, p->file, line,
                             "dernière ligne tronquée : %d colonnes au lieu de %d", n, p->ncols);
    return import_reject(p->k, p->file, line, "ligne incomplète : %d colonnes au lieu de %d", n,
                         p->ncols);
}

static Person *person_get(RppsParser *p, Str idnat, bool *created)
{
    if ((p->persontab.n + 1) * 2 > p->persontab.cap)
        table_grow(p, &p->persontab, person_entry_hash);
    uint64_t h = fnv1a(FNV_INIT, idnat.p, idnat.len);
    size_t i = table_find(p, &p->persontab, h, idnat.p, idnat.len, person_entry_eq);
    *created = false;
    if (p->persontab.slot[i])
        return &p->persons[p->persontab.slot[i] - 1];
    if (p->npersons == p->cappersons) {
        p->cappersons = p->cappersons ? p->cappersons * 2 : 1024;
        p->persons = xrealloc(p->persons, p->cappersons * sizeof *p->persons);
    }
    Person *ps = &p->persons[p->npersons];
    memset(ps, 0, sizeof *ps);
    ps->f[P_IDNAT] = intern(p, idnat);
    p->persontab.slot[i] = (uint32_t)p->npersons + 1;
    p->persontab.n++;
    p->npersons++;
    *created = true;
    return ps;
}

int rpps_parser_line(RppsParser *p, char *line, size_t len, long lineno, Diag *d)
{
    if (!p->header_seen)
        return parse_header(p, line, len, d);
    int rc = flush_pending(p, false);
    if (rc)
        return rc;
    if (len == 0)
        return 0; /* a blank line carries nothing */
    const char *why = decode_line(p, &line, &len);
    if (why)
        return import_reject(p->k, p->file, lineno, "%s", why);
    CsvFields f;
    Diag cd = {0};
    rc = csv_split(line, len, '|', false, &f, &cd);
    if (rc == ERR_TOO_LARGE)
        return import_reject(p->k, p->file, lineno, "plus de %d colonnes (%d attendues)",
                             CSV_MAX_FIELDS, p->ncols);
    if (rc != 0)
        return import_reject(p->k, p->file, lineno, "ligne illisible : %s", cd.msg);
    if (f.n < p->ncols) {
        p->pending_line = lineno;
        p->pending_n = f.n;
        return 0;
    }
    if (f.n > p->ncols)
        return import_reject(p->k, p->file, lineno, "%d colonnes au lieu de %d", f.n, p->ncols);

    Str pf[P_COUNT] = {{0}}, rf[R_COUNT] = {{0}};
    for (size_t c = 0; c < NCOLUMNS; c++) {
        if (p->colidx[c] < 0)
            continue;
        Str v = trim(f.f[p->colidx[c]]);
        if (columns[c].person)
            pf[columns[c].field] = v;
        else
            rf[columns[c].field] = v;
    }
    Str type = pf[P_TYPE], idpp = pf[P_IDPP], idnat = pf[P_IDNAT];
    if (idpp.len == 0)
        return import_reject(p->k, p->file, lineno, "identifiant PP manquant");
    if (!str_eq(type, "8") && !str_eq(type, "0"))
        return import_reject(p->k, p->file, lineno,
                             "type d'identifiant PP « %.*s » inconnu (0 Adeli ou 8 RPPS attendu)",
                             clip(type.p, type.len, 20), type.p);
    if (str_eq(type, "8") ? !(idpp.len == 11 && all_digits(idpp))
                          : !(idpp.len == 9 && all_alnum_upper(idpp)))
        return import_reject(p->k, p->file, lineno, "identifiant PP « %.*s » invalide (%s)",
                             clip(idpp.p, idpp.len, 40), idpp.p,
                             str_eq(type, "8") ? "RPPS : 11 chiffres" : "Adeli : 9 caractères");
    if (idnat.len != 1 + idpp.len || idnat.p[0] != type.p[0] ||
        memcmp(idnat.p + 1, idpp.p, idpp.len) != 0)
        return import_reject(p->k, p->file, lineno,
                             "identification nationale PP « %.*s » différente du type suivi de "
                             "l'identifiant (%.*s%.*s)",
                             clip(idnat.p, idnat.len, 40), idnat.p, (int)type.len, type.p,
                             (int)idpp.len, idpp.p);
    if (rf[R_PROF_CODE].len == 0)
        return import_reject(p->k, p->file, lineno, "code profession manquant");
    if (rf[R_FINESS].len && !(rf[R_FINESS].len == 9 && all_alnum_upper(rf[R_FINESS])))
        import_warn(p->k, p->file, lineno,
                    "numéro FINESS site « %.*s » invalide : la structure n'est pas référencée",
                    clip(rf[R_FINESS].p, rf[R_FINESS].len, 40), rf[R_FINESS].p);
    if (rf[R_SIRET].len && !(rf[R_SIRET].len == 14 && all_digits(rf[R_SIRET])) &&
        rf[R_FINESS].len == 0)
        import_warn(p->k, p->file, lineno,
                    "numéro SIRET site « %.*s » invalide : la structure n'est pas référencée",
                    clip(rf[R_SIRET].p, rf[R_SIRET].len, 40), rf[R_SIRET].p);

    bool created;
    Person *ps = person_get(p, idnat, &created);
    if (created) {
        for (int i = 0; i < P_COUNT; i++)
            if (i != P_IDNAT)
                ps->f[i] = intern(p, pf[i]);
        ps->line = (uint32_t)lineno;
    }
    if (p->nrows == p->caprows) {
        p->caprows = p->caprows ? p->caprows * 2 : 4096;
        p->rows = xrealloc(p->rows, p->caprows * sizeof *p->rows);
    }
    Row *r = &p->rows[p->nrows];
    for (int i = 0; i < R_COUNT; i++)
        r->f[i] = intern(p, rf[i]);
    r->next = 0;
    r->line = (uint32_t)lineno;
    uint32_t ri = (uint32_t)p->nrows + 1;
    if (ps->last)
        p->rows[ps->last - 1].next = ri;
    else
        ps->first = ri;
    ps->last = ri;
    p->nrows++;
    return 0;
}

/* ------------------------------------------------------------------ mapping */

static const char *S(const RppsParser *p, uint32_t i)
{
    return p->strs[i];
}

static json_t *coding(const char *system, const char *code, const char *display)
{
    json_t *c = json_object();
    json_object_set_new(c, "system", json_string(system));
    json_object_set_new(c, "code", json_string(code));
    if (display && *display)
        json_object_set_new(c, "display", json_string(display));
    return c;
}

static json_t *concept(const char *system, const char *code, const char *display)
{
    json_t *cc = json_object();
    json_t *arr = json_array();
    json_array_append_new(arr, coding(system, code, display));
    json_object_set_new(cc, "coding", arr);
    return cc;
}

/* The NOS table of a profession code: G15 holds the health professions; the Adeli extract
 * also lists social workers (R94) and holders of a protected title (R95). */
static const char *profession_system(const char *code)
{
    if (strcmp(code, "41") == 0)
        return SYS_R94;
    if (strcmp(code, "71") == 0 || strcmp(code, "72") == 0 || strcmp(code, "73") == 0)
        return SYS_R95;
    return SYS_G15;
}

/* The NOS table of a savoir-faire code, by its type (TRE_R04); R01 gathers them all. */
static const char *savoir_faire_system(const char *type)
{
    static const struct {
        const char *type, *system;
    } map[] = {
        {"S", NOS "TRE_R38-SpecialiteOrdinale/FHIR/TRE-R38-SpecialiteOrdinale"},
        {"CEX", NOS "TRE_R40-CompetenceExclusive/FHIR/TRE-R40-CompetenceExclusive"},
        {"C", NOS "TRE_R39-Competence/FHIR/TRE-R39-Competence"},
        {"DNQ", NOS "TRE_R42-DESCnonQualifiant/FHIR/TRE-R42-DESCnonQualifiant"},
        {"CAPA", NOS "TRE_R43-CapaciteSavoirFaire/FHIR/TRE-R43-CapaciteSavoirFaire"},
        {"PAC", NOS "TRE_R44-QualificationPAC/FHIR/TRE-R44-QualificationPAC"},
        {"OP", NOS "TRE_G13-OrientationParticuliere/FHIR/TRE-G13-OrientationParticuliere"},
        {"DEC", NOS "TRE_R97-DroitExerciceCompl/FHIR/TRE-R97-DroitExerciceCompl"},
    };
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (strcmp(type, map[i].type) == 0)
            return map[i].system;
    return NOS "TRE_R01-EnsembleSavoirFaire-CISIS/FHIR/TRE-R01-EnsembleSavoirFaire-CISIS";
}

/* Append cc to arr unless a CodeableConcept with the same first coding is there already. */
static void append_unique(json_t *arr, json_t *cc)
{
    json_t *c = json_array_get(json_object_get(cc, "coding"), 0);
    size_t i;
    json_t *e;
    json_array_foreach(arr, i, e)
    {
        json_t *ec = json_array_get(json_object_get(e, "coding"), 0);
        if (json_equal(json_object_get(c, "system"), json_object_get(ec, "system")) &&
            json_equal(json_object_get(c, "code"), json_object_get(ec, "code"))) {
            json_decref(cc);
            return;
        }
    }
    json_array_append_new(arr, cc);
}

static json_t *practitioner_build(const RppsParser *p, const Person *ps)
{
    bool rpps = strcmp(S(p, ps->f[P_TYPE]), "8") == 0;
    json_t *res = json_object();
    json_object_set_new(res, "resourceType", json_string("Practitioner"));
    json_object_set_new(res, "id", json_sprintf("rpps-%s", S(p, ps->f[P_IDPP])));

    json_t *type = json_object();
    json_t *codings = json_array();
    json_array_append_new(codings, coding(SYS_FRCORE_0203, "IDNPS",
                                          "Identifiant National de Professionnel de Santé"));
    json_array_append_new(codings,
                          coding(SYS_G08, rpps ? "8" : "0", rpps ? "N° RPPS" : "N° ADELI"));
    json_object_set_new(type, "coding", codings);
    json_t *ident = json_object();
    json_object_set_new(ident, "use", json_string("official"));
    json_object_set_new(ident, "type", type);
    json_object_set_new(ident, "system", json_string(SYS_IDNPS));
    json_object_set_new(ident, "value", json_string(S(p, ps->f[P_IDNAT])));
    json_object_set_new(res, "identifier", json_pack("[o]", ident));
    json_object_set_new(res, "active", json_true());

    const char *family = S(p, ps->f[P_NOM]), *given = S(p, ps->f[P_PRENOM]);
    const char *prefix = S(p, ps->f[P_CIVEX_CODE]);
    if (*family || *given) {
        json_t *name = json_object();
        json_object_set_new(name, "use", json_string("official"));
        if (*family)
            json_object_set_new(name, "family", json_string(family));
        if (*given)
            json_object_set_new(name, "given", json_pack("[s]", given));
        if (*prefix)
            json_object_set_new(name, "prefix", json_pack("[s]", prefix));
        json_object_set_new(res, "name", json_pack("[o]", name));
    }

    /* qualifications: the professions, then the savoir-faire, each once, in row order */
    json_t *prof = json_array(), *sf = json_array();
    for (uint32_t ri = ps->first; ri; ri = p->rows[ri - 1].next) {
        const Row *r = &p->rows[ri - 1];
        const char *code = S(p, r->f[R_PROF_CODE]);
        append_unique(prof, concept(profession_system(code), code, S(p, r->f[R_PROF_LIB])));
        if (r->f[R_SF_CODE])
            append_unique(sf, concept(savoir_faire_system(S(p, r->f[R_SFTYPE_CODE])),
                                      S(p, r->f[R_SF_CODE]), S(p, r->f[R_SF_LIB])));
    }
    json_t *qual = json_array();
    json_array_extend(prof, sf);
    size_t i;
    json_t *cc;
    json_array_foreach(prof, i, cc)
    {
        json_t *q = json_object();
        json_object_set(q, "code", cc);
        json_array_append_new(qual, q);
    }
    json_decref(prof);
    json_decref(sf);
    json_object_set_new(res, "qualification", qual);
    return res;
}

/* What identifies an activity: where (structure identifiers) and as what (role codes). */
static uint32_t row_key_hash(const RppsParser *p, const Row *r)
{
    static const int key[] = {R_PROF_CODE, R_CAT_CODE,  R_SFTYPE_CODE,  R_SF_CODE,
                              R_MODE_CODE, R_SIRET,     R_SIREN,        R_FINESS,
                              R_FINESS_EJ, R_STRUCT_ID, R_SECTEUR_CODE, R_SECTION_CODE};
    uint64_t h = FNV_INIT;
    for (size_t i = 0; i < sizeof key / sizeof key[0]; i++) {
        const char *s = S(p, r->f[key[i]]);
        h = fnv1a(h, s, strlen(s) + 1); /* the NUL separates fields */
    }
    return (uint32_t)(h ^ (h >> 32));
}

static void telecom_add(json_t *arr, const char *system, const char *value)
{
    if (!*value)
        return;
    json_array_append_new(arr,
                          json_pack("{ssssss}", "system", system, "value", value, "use", "work"));
}

static json_t *role_build(const RppsParser *p, const Person *ps, const Row *r, const char *id)
{
    json_t *res = json_object();
    json_object_set_new(res, "resourceType", json_string("PractitionerRole"));
    json_object_set_new(res, "id", json_string(id));
    if (r->f[R_MODE_CODE])
        json_object_set_new(
            res, "extension",
            json_pack("[{ssso}]", "url", EXT_MODE, "valueCodeableConcept",
                      concept(SYS_R23, S(p, r->f[R_MODE_CODE]), S(p, r->f[R_MODE_LIB]))));
    json_object_set_new(res, "active", json_true());
    json_object_set_new(
        res, "practitioner",
        json_pack("{s:o}", "reference", json_sprintf("Practitioner/rpps-%s", S(p, ps->f[P_IDPP]))));

    /* the structure, by identifier only: the sink resolves it to a stored Organization */
    const char *finess = S(p, r->f[R_FINESS]), *siret = S(p, r->f[R_SIRET]);
    Str fs = str_c(finess), ss = str_c(siret);
    const char *osys = NULL, *oval = NULL;
    if (fs.len == 9 && all_alnum_upper(fs)) {
        osys = SYS_IDNST;
        oval = finess;
    } else if (!fs.len && ss.len == 14 && all_digits(ss)) {
        osys = SYS_SIRENE;
        oval = siret;
    }
    if (osys)
        json_object_set_new(res, "organization",
                            json_pack("{s:{ssss}}", "identifier", "system", osys, "value", oval));

    const char *prof = S(p, r->f[R_PROF_CODE]);
    json_object_set_new(
        res, "code",
        json_pack("[o]", concept(profession_system(prof), prof, S(p, r->f[R_PROF_LIB]))));
    if (r->f[R_SFTYPE_CODE] || r->f[R_SF_CODE]) {
        json_t *spec = json_array();
        if (r->f[R_SFTYPE_CODE])
            json_array_append_new(
                spec, concept(SYS_R04, S(p, r->f[R_SFTYPE_CODE]), S(p, r->f[R_SFTYPE_LIB])));
        if (r->f[R_SF_CODE])
            json_array_append_new(spec, concept(savoir_faire_system(S(p, r->f[R_SFTYPE_CODE])),
                                                S(p, r->f[R_SF_CODE]), S(p, r->f[R_SF_LIB])));
        json_object_set_new(res, "specialty", spec);
    }
    json_t *tel = json_array();
    telecom_add(tel, "phone", S(p, r->f[R_TEL]));
    if (r->f[R_TEL2] != r->f[R_TEL])
        telecom_add(tel, "phone", S(p, r->f[R_TEL2]));
    telecom_add(tel, "fax", S(p, r->f[R_FAX]));
    telecom_add(tel, "email", S(p, r->f[R_EMAIL]));
    if (json_array_size(tel))
        json_object_set_new(res, "telecom", tel);
    else
        json_decref(tel);
    return res;
}

static int person_emit(RppsParser *p, const Person *ps)
{
    int rc = import_emit(p->k, practitioner_build(p, ps), p->file, ps->line);
    if (rc)
        return rc;
    /* roles: the key hash names a row; identical keys of one person are told apart by their
     * rank among them, so the n-th duplicate keeps its id as long as earlier ones stay */
    for (uint32_t ri = ps->first; ri; ri = p->rows[ri - 1].next) {
        const Row *r = &p->rows[ri - 1];
        uint32_t h = row_key_hash(p, r);
        int dup = 0;
        for (uint32_t rj = ps->first; rj != ri; rj = p->rows[rj - 1].next)
            if (row_key_hash(p, &p->rows[rj - 1]) == h)
                dup++;
        char id[80];
        if (dup)
            snprintf(id, sizeof id, "rpps-%s-%08x-%d", S(p, ps->f[P_IDPP]), h, dup + 1);
        else
            snprintf(id, sizeof id, "rpps-%s-%08x", S(p, ps->f[P_IDPP]), h);
        rc = import_emit(p->k, role_build(p, ps, r, id), p->file, r->line);
        if (rc)
            return rc;
    }
    return 0;
}

int rpps_parser_finish(RppsParser *p, Diag *d)
{
    if (!p->header_seen)
        return diag_set(d, ERR_INVALID, "%s : fichier vide (en-tête RPPS attendu)", p->file);
    int rc = flush_pending(p, true);
    if (rc)
        return rc;
    for (size_t i = 0; i < p->npersons; i++) {
        rc = person_emit(p, &p->persons[i]);
        if (rc)
            return rc;
    }
    return 0;
}

int import_parse_rpps(ImportSink *k, const char *path, Diag *d)
{
    LineReader *lr = NULL;
    int rc = line_reader_open(path, &lr, d);
    if (rc)
        return rc;
    RppsParser *p = rpps_parser_new(k, path);
    uint64_t size = line_reader_size(lr);
    for (;;) {
        char *line;
        size_t len;
        Diag ld = {0};
        rc = line_reader_next(lr, &line, &len, &ld);
        if (rc == 0)
            break;
        long lineno = line_reader_lineno(lr);
        if (rc == ERR_TOO_LARGE) {
            if (lineno == 1) {
                rc = diag_set(d, ERR_INVALID, "%s:1 : en-tête trop long", path);
                goto fail;
            }
            rc = flush_pending(p, false);
            if (!rc)
                rc = import_reject(k, path, lineno, "%s", ld.msg);
            if (rc)
                goto fail;
            continue;
        }
        if (rc < 0) {
            rc = diag_set(d, rc, "%s:%ld : %s", path, lineno, ld.msg);
            goto fail;
        }
        rc = rpps_parser_line(p, line, len, lineno, d);
        if (rc)
            goto fail;
        if ((lineno & 0x3fff) == 0)
            import_progress(k, line_reader_offset(lr), size);
    }
    import_progress(k, size, size);
    rc = rpps_parser_finish(p, d);
fail:
    rpps_parser_free(p);
    line_reader_free(lr);
    return rc;
}
