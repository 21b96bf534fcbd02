/* import/rpps.c: the RPPS extract on the real open-data file, and golden cases (tests/data/rpps).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "import/import.h"

#define RPPS_FILE "PS_LibreAcces_Personne_activite_202102020955_first15003.txt"
#define SYS_IDNPS "urn:oid:1.2.250.1.71.4.2.1"
#define SYS_FINESS "urn:oid:1.2.250.1.71.4.2.2"
#define SYS_SIRENE "https://sirene.fr"
#define SYS_G08                                                                                    \
    "https://mos.esante.gouv.fr/NOS/TRE_G08-TypeIdentifiantPersonne/FHIR/"                         \
    "TRE-G08-TypeIdentifiantPersonne"
#define SYS_G15                                                                                    \
    "https://mos.esante.gouv.fr/NOS/TRE_G15-ProfessionSante/FHIR/TRE-G15-ProfessionSante"
#define SYS_R38                                                                                    \
    "https://mos.esante.gouv.fr/NOS/TRE_R38-SpecialiteOrdinale/FHIR/TRE-R38-SpecialiteOrdinale"
#define NCOLS 53

static char *shared_path(const char *rel)
{
    const char *dir = getenv("ROR_SHARED_DIR");
    assert_non_null(dir);
    return xasprintf("%s/%s", dir, rel);
}

static char *fixture_path(const char *name)
{
    const char *dir = getenv("ROR_SOURCE_DIR");
    assert_non_null(dir);
    return xasprintf("%s/tests/data/rpps/%s", dir, name);
}

/* Split a raw line on '|' in place: the test's own, deliberately naive, reading of the file. */
static int split(char *line, char **f, int max)
{
    int n = 0;
    char *p = line;
    for (;;) {
        assert_true(n < max);
        f[n++] = p;
        char *bar = strchr(p, '|');
        if (!bar)
            break;
        *bar = '\0';
        p = bar + 1;
    }
    return n;
}

static const char *str_at(const json_t *v, const char *path)
{
    /* "a.0.b": object keys and array indexes */
    char buf[256];
    snprintf(buf, sizeof buf, "%s", path);
    const json_t *cur = v;
    for (char *tok = strtok(buf, "."); tok && cur; tok = strtok(NULL, ".")) {
        if (json_is_array(cur))
            cur = json_array_get(cur, strtoul(tok, NULL, 10));
        else
            cur = json_object_get(cur, tok);
    }
    return json_string_value(cur);
}

/* True when some coding of the CodeableConcepts (or {code: CC} items) has system|code. */
static bool has_coding(const json_t *arr, const char *key, const char *system, const char *code)
{
    size_t i, j;
    json_t *cc, *c;
    json_array_foreach(arr, i, cc)
    {
        const json_t *concept = key ? json_object_get(cc, key) : cc;
        json_array_foreach(json_object_get(concept, "coding"), j, c)
        {
            if ((!system || strcmp(json_string_value(json_object_get(c, "system")), system) == 0) &&
                strcmp(json_string_value(json_object_get(c, "code")), code) == 0)
                return true;
        }
    }
    return false;
}

static ImportSink *run(const char *path, bool strict, int *rc, Diag *d)
{
    ImportSink *k = import_collector_new(strict);
    *rc = import_parse_rpps(k, path, d);
    return k;
}

static json_t *index_by_id(json_t *res)
{
    json_t *by = json_object();
    size_t i;
    json_t *r;
    json_array_foreach(res, i, r)
        json_object_set(by, json_string_value(json_object_get(r, "id")), r);
    return by;
}

/* Roles of Practitioner/rpps-<idpp>, in emission order. */
static json_t *roles_of(json_t *res, const char *idpp)
{
    char ref[64];
    snprintf(ref, sizeof ref, "Practitioner/rpps-%s", idpp);
    json_t *out = json_array();
    size_t i;
    json_t *r;
    json_array_foreach(res, i, r)
    {
        const char *p = str_at(r, "practitioner.reference");
        if (p && strcmp(p, ref) == 0)
            json_array_append(out, r);
    }
    return out;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool finess_valid(const char *s)
{
    if (strlen(s) != 9)
        return false;
    for (; *s; s++)
        if (!((*s >= '0' && *s <= '9') || (*s >= 'A' && *s <= 'Z')))
            return false;
    return true;
}

/* Check a person against its raw lines (fields as read by split). */
static void check_person(json_t *res, json_t *by, json_t *lines)
{
    char *raw = xstrdup(json_string_value(json_array_get(lines, 0)));
    char *f[NCOLS + 1];
    assert_int_equal(split(raw, f, NCOLS + 1), NCOLS);
    char id[64];
    snprintf(id, sizeof id, "rpps-%s", f[1]);
    json_t *pr = json_object_get(by, id);
    assert_non_null(pr);
    assert_string_equal(str_at(pr, "resourceType"), "Practitioner");
    assert_string_equal(str_at(pr, "identifier.0.system"), SYS_IDNPS);
    assert_string_equal(str_at(pr, "identifier.0.value"), f[2]);
    json_t *types = json_pack(
        "[O]", json_object_get(json_array_get(json_object_get(pr, "identifier"), 0), "type"));
    assert_true(has_coding(types, NULL, SYS_G08, f[0]));
    json_decref(types);
    assert_string_equal(str_at(pr, "name.0.family"), f[7]);
    assert_string_equal(str_at(pr, "name.0.given.0"), f[8]);
    if (*f[3])
        assert_string_equal(str_at(pr, "name.0.prefix.0"), f[3]);
    else
        assert_null(str_at(pr, "name.0.prefix"));
    assert_true(json_is_true(json_object_get(pr, "active")));
    json_t *qual = json_object_get(pr, "qualification");
    assert_true(has_coding(qual, "code", NULL, f[9]));
    json_t *roles = roles_of(res, f[1]);
    free(raw);

    assert_int_equal(json_array_size(roles), json_array_size(lines));
    size_t i;
    json_t *l;
    json_array_foreach(lines, i, l)
    {
        raw = xstrdup(json_string_value(l));
        assert_int_equal(split(raw, f, NCOLS + 1), NCOLS);
        json_t *role = json_array_get(roles, i);
        assert_true(has_coding(json_object_get(role, "code"), NULL, NULL, f[9]));
        if (*f[15]) {
            assert_true(has_coding(json_object_get(role, "specialty"), NULL, NULL, f[15]));
            assert_true(has_coding(qual, "code", NULL, f[15]));
        }
        if (*f[17])
            assert_string_equal(str_at(role, "extension.0.valueCodeableConcept.coding.0.code"),
                                f[17]);
        if (*f[21]) {
            assert_string_equal(str_at(role, "organization.identifier.system"), SYS_FINESS);
            assert_string_equal(str_at(role, "organization.identifier.value"), f[21]);
        }
        if (*f[40]) {
            assert_string_equal(str_at(role, "telecom.0.system"), "phone");
            assert_string_equal(str_at(role, "telecom.0.value"), f[40]);
        }
        free(raw);
    }
    json_decref(roles);
}

/* The real extract: one Practitioner per distinct person, one role per row, each checked
 * against the raw lines the test reads on its own. */
static void test_real_file(void **state)
{
    (void)state;
    char *path = shared_path("data/rpps/" RPPS_FILE);
    int rc;
    Diag d = {0};
    ImportSink *k = run(path, false, &rc, &d);
    assert_int_equal(rc, 0);
    json_t *res = import_collector_resources(k);
    assert_int_equal(json_array_size(import_collector_rejects(k)), 0);

    /* the test's own reading: persons, rows, FINESS references, SIRET-only references */
    FILE *fp = fopen(path, "r");
    assert_non_null(fp);
    char *line = NULL;
    size_t cap = 0;
    ssize_t n = getline(&line, &cap, fp); /* header */
    assert_true(n > 0);
    json_t *persons = json_object(); /* idpp -> [raw lines] */
    size_t rows = 0, nfin = 0, nsiret = 0, finess_cap = 16384;
    char **finess = xmalloc(finess_cap * sizeof *finess);
    while ((n = getline(&line, &cap, fp)) > 0) {
        if (line[n - 1] == '\n')
            line[--n] = '\0';
        char *copy = xstrdup(line);
        char *f[NCOLS + 1];
        assert_int_equal(split(copy, f, NCOLS + 1), NCOLS);
        rows++;
        json_t *lines = json_object_get(persons, f[1]);
        if (!lines) {
            lines = json_array();
            json_object_set_new(persons, f[1], lines);
        }
        json_array_append_new(lines, json_string(line));
        if (finess_valid(f[21])) {
            assert_true(nfin < finess_cap);
            finess[nfin++] = xasprintf("%s|%s", f[1], f[21]);
        } else if (!*f[21] && strlen(f[19]) == 14) {
            nsiret++;
        }
        free(copy);
    }
    free(line);
    fclose(fp);
    assert_int_equal(rows, 15003);

    size_t npract = 0, nrole = 0, nrolefin = 0, nrolesiret = 0;
    char **rolefin = xmalloc((nfin + 1) * sizeof *rolefin);
    size_t i;
    json_t *r;
    json_array_foreach(res, i, r)
    {
        const char *type = str_at(r, "resourceType");
        if (strcmp(type, "Practitioner") == 0) {
            npract++;
            continue;
        }
        assert_string_equal(type, "PractitionerRole");
        nrole++;
        const char *sys = str_at(r, "organization.identifier.system");
        if (sys && strcmp(sys, SYS_FINESS) == 0) {
            assert_true(nrolefin < nfin);
            const char *ref = str_at(r, "practitioner.reference");
            rolefin[nrolefin++] = xasprintf("%s|%s", ref + strlen("Practitioner/rpps-"),
                                            str_at(r, "organization.identifier.value"));
        } else if (sys) {
            assert_string_equal(sys, SYS_SIRENE);
            nrolesiret++;
        }
        assert_null(json_object_get(r, "meta"));
    }
    assert_int_equal(npract, json_object_size(persons));
    assert_int_equal(nrole, rows);
    /* every row with a FINESS site gives a role referring to it, and only those */
    assert_int_equal(nrolefin, nfin);
    assert_int_equal(nrolesiret, nsiret);
    qsort(finess, nfin, sizeof *finess, cmp_str);
    qsort(rolefin, nrolefin, sizeof *rolefin, cmp_str);
    for (i = 0; i < nfin; i++)
        assert_string_equal(finess[i], rolefin[i]);

    /* ids are unique */
    json_t *by = index_by_id(res);
    assert_int_equal(json_object_size(by), json_array_size(res));

    /* spot checks: a pharmacist with a FINESS site, a physician with a savoir-faire, an Adeli
     * osteopath, and the first person of the file with several activities */
    static const char *const spot[] = {"10000012566", "10000010172", "010001949"};
    for (i = 0; i < sizeof spot / sizeof spot[0]; i++) {
        json_t *lines = json_object_get(persons, spot[i]);
        assert_non_null(lines);
        check_person(res, by, lines);
    }
    const char *key;
    json_t *lines;
    size_t multi = 0;
    json_object_foreach(persons, key, lines)
    {
        if (json_array_size(lines) > 1 && multi < 5) {
            check_person(res, by, lines);
            multi++;
        }
    }
    assert_int_equal(multi, 5);

    /* a re-import gives byte-identical resources */
    ImportSink *k2 = run(path, false, &rc, &d);
    assert_int_equal(rc, 0);
    char *a = json_dumps(res, JSON_COMPACT | JSON_PRESERVE_ORDER);
    char *b = json_dumps(import_collector_resources(k2), JSON_COMPACT | JSON_PRESERVE_ORDER);
    assert_non_null(a);
    assert_string_equal(a, b);
    free(a);
    free(b);
    import_collector_free(k2);

    for (i = 0; i < nfin; i++) {
        free(finess[i]);
        free(rolefin[i]);
    }
    free(finess);
    free(rolefin);
    json_decref(by);
    json_decref(persons);
    import_collector_free(k);
    free(path);
}

static void assert_strings(json_t *arr, const char *const *want, size_t n)
{
    for (size_t i = 0; i < json_array_size(arr) && i < n; i++)
        assert_string_equal(json_string_value(json_array_get(arr, i)), want[i]);
    assert_int_equal(json_array_size(arr), n);
}

/* Bad rows: exact rejects with file:line; good rows around them are kept and grouped. */
static void test_bad_rows(void **state)
{
    (void)state;
    char *path = fixture_path("bad.txt");
    int rc;
    Diag d = {0};
    ImportSink *k = run(path, false, &rc, &d);
    assert_int_equal(rc, 0);
    char *want[9];
    want[0] = xasprintf("%s:3: 54 colonnes au lieu de 53", path);
    want[1] = xasprintf("%s:4: identifiant PP manquant", path);
    want[2] =
        xasprintf("%s:5: type d'identifiant PP « 5 » inconnu (0 Adeli ou 8 RPPS attendu)", path);
    want[3] = xasprintf("%s:6: identification nationale PP « 819900000099 » différente du type "
                        "suivi de l'identifiant (819900000022)",
                        path);
    want[4] = xasprintf("%s:7: identifiant PP « 1990000 » invalide (RPPS : 11 chiffres)", path);
    want[5] = xasprintf("%s:10: encodage illisible (ni UTF-8 ni Latin-1)", path);
    want[6] = xasprintf("%s:11: caractère de contrôle dans la ligne", path);
    want[7] = xasprintf("%s:12: code profession manquant", path);
    want[8] = xasprintf("%s:14: ligne incomplète : 9 colonnes au lieu de 53", path);
    assert_strings(import_collector_rejects(k), (const char *const *)want, 9);
    char *warn = xasprintf(
        "%s:16: numéro FINESS site « 12345 » invalide : la structure n'est pas référencée", path);
    assert_strings(import_collector_warnings(k), (const char *const *)&warn, 1);

    /* persons in first-seen order, each followed by its roles in row order */
    json_t *res = import_collector_resources(k);
    assert_int_equal(json_array_size(res), 8);
    static const char *const order[] = {"Practitioner",     "PractitionerRole", "PractitionerRole",
                                        "PractitionerRole", "Practitioner",     "PractitionerRole",
                                        "Practitioner",     "PractitionerRole"};
    for (size_t i = 0; i < 8; i++)
        assert_string_equal(str_at(json_array_get(res, i), "resourceType"), order[i]);

    json_t *x = json_array_get(res, 0);
    assert_string_equal(str_at(x, "id"), "rpps-19900000011");
    assert_string_equal(str_at(x, "identifier.0.value"), "819900000011");
    assert_string_equal(str_at(x, "identifier.0.type.coding.1.code"), "8");
    assert_string_equal(str_at(x, "name.0.family"), "MARTIN");
    assert_string_equal(str_at(x, "name.0.prefix.0"), "DR");
    /* one qualification per distinct code across the three rows */
    json_t *qual = json_object_get(x, "qualification");
    assert_int_equal(json_array_size(qual), 2);
    assert_true(has_coding(qual, "code", SYS_G15, "10"));
    assert_true(has_coding(qual, "code", SYS_R38, "SM26"));

    json_t *r2 = json_array_get(res, 1), *r9 = json_array_get(res, 2),
           *r13 = json_array_get(res, 3);
    assert_string_equal(str_at(r2, "practitioner.reference"), "Practitioner/rpps-19900000011");
    assert_string_equal(str_at(r2, "organization.identifier.system"), SYS_FINESS);
    assert_string_equal(str_at(r2, "organization.identifier.value"), "750000001");
    assert_null(str_at(r2, "organization.reference"));
    assert_string_equal(str_at(r2, "code.0.coding.0.system"), SYS_G15);
    assert_string_equal(str_at(r2, "specialty.0.coding.0.code"), "S");
    assert_string_equal(str_at(r2, "specialty.1.coding.0.code"), "SM26");
    assert_string_equal(str_at(r2, "extension.0.valueCodeableConcept.coding.0.code"), "L");
    assert_string_equal(str_at(r2, "telecom.0.value"), "0102030405");
    assert_string_equal(str_at(r2, "telecom.1.system"), "email");
    assert_string_equal(str_at(r9, "organization.identifier.value"), "130000003");
    assert_string_equal(str_at(r9, "telecom.0.system"), "fax");
    /* the same activity twice: the second is told apart by its rank */
    char *dup = xasprintf("%s-2", str_at(r2, "id"));
    assert_string_equal(str_at(r13, "id"), dup);
    assert_string_not_equal(str_at(r9, "id"), str_at(r2, "id"));
    free(dup);

    json_t *y = json_array_get(res, 4);
    assert_string_equal(str_at(y, "id"), "rpps-759912345");
    assert_string_equal(str_at(y, "identifier.0.value"), "0759912345");
    assert_string_equal(str_at(y, "identifier.0.type.coding.1.code"), "0");
    assert_string_equal(str_at(y, "name.0.given.0"), "Hélène");
    assert_null(str_at(y, "name.0.prefix"));
    json_t *yr = json_array_get(res, 5);
    assert_string_equal(str_at(yr, "organization.identifier.system"), SYS_SIRENE);
    assert_string_equal(str_at(yr, "organization.identifier.value"), "12345678900011");
    json_t *wr = json_array_get(res, 7);
    assert_string_equal(str_at(wr, "practitioner.reference"), "Practitioner/rpps-19900000033");
    assert_null(json_object_get(wr, "organization"));

    for (size_t i = 0; i < 9; i++)
        free(want[i]);
    free(warn);
    import_collector_free(k);

    /* strict: the first bad row stops the import */
    k = run(path, true, &rc, &d);
    assert_int_not_equal(rc, 0);
    assert_int_equal(json_array_size(import_collector_rejects(k)), 1);
    assert_int_equal(json_array_size(import_collector_resources(k)), 0);
    import_collector_free(k);
    free(path);
}

/* Rows in Windows-1252 (header included) and UTF-8 rows in one file; CRLF line ends; gzip. */
static void test_latin1(void **state)
{
    (void)state;
    char *path = fixture_path("latin1.txt");
    int rc;
    Diag d = {0};
    ImportSink *k = run(path, false, &rc, &d);
    assert_int_equal(rc, 0);
    assert_int_equal(json_array_size(import_collector_rejects(k)), 0);
    json_t *res = import_collector_resources(k);
    assert_int_equal(json_array_size(res), 4);
    json_t *a = json_array_get(res, 0), *b = json_array_get(res, 2);
    assert_string_equal(str_at(a, "name.0.family"), "LEFÈVRE-CŒUR");
    assert_string_equal(str_at(a, "name.0.given.0"), "Hélène");
    assert_string_equal(str_at(a, "qualification.0.code.coding.0.display"), "Médecin");
    assert_string_equal(str_at(b, "name.0.family"), "ÉLOÏSE");
    assert_string_equal(str_at(b, "name.0.given.0"), "Zoé");

    /* the same bytes gzip-compressed give the same resources */
    char gz[] = "/tmp/test_rpps_XXXXXX";
    int fd = mkstemp(gz);
    assert_true(fd >= 0);
    close(fd);
    FILE *in = fopen(path, "rb");
    assert_non_null(in);
    gzFile out = gzopen(gz, "wb");
    assert_non_null(out);
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, in)) > 0)
        assert_int_equal(gzwrite(out, buf, (unsigned)n), (int)n);
    fclose(in);
    assert_int_equal(gzclose(out), Z_OK);
    ImportSink *k2 = run(gz, false, &rc, &d);
    assert_int_equal(rc, 0);
    assert_true(json_equal(res, import_collector_resources(k2)));
    import_collector_free(k2);
    unlink(gz);
    import_collector_free(k);
    free(path);
}

/* A short row in the middle, and a last line cut short (no newline). */
static void test_truncated(void **state)
{
    (void)state;
    char *path = fixture_path("truncated.txt");
    int rc;
    Diag d = {0};
    ImportSink *k = run(path, false, &rc, &d);
    assert_int_equal(rc, 0);
    char *want[2];
    want[0] = xasprintf("%s:3: ligne incomplète : 20 colonnes au lieu de 53", path);
    want[1] = xasprintf("%s:5: dernière ligne tronquée : 30 colonnes au lieu de 53", path);
    assert_strings(import_collector_rejects(k), (const char *const *)want, 2);
    assert_int_equal(json_array_size(import_collector_resources(k)), 4);
    free(want[0]);
    free(want[1]);
    import_collector_free(k);
    free(path);
}

static char *write_temp(const char *content, size_t len)
{
    char tmpl[] = "/tmp/test_rpps_XXXXXX";
    int fd = mkstemp(tmpl);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, content, len), (ssize_t)len);
    close(fd);
    return xstrdup(tmpl);
}

/* Whole-file errors: not an RPPS header, empty file, missing file. */
static void test_file_errors(void **state)
{
    (void)state;
    char *path = fixture_path("not_rpps.txt");
    int rc;
    Diag d = {0};
    ImportSink *k = run(path, false, &rc, &d);
    assert_int_equal(rc, ERR_INVALID);
    assert_non_null(strstr(d.msg, "colonne « Type d'identifiant PP » absente"));
    import_collector_free(k);
    free(path);

    char *empty = write_temp("", 0);
    k = run(empty, false, &rc, &d);
    assert_int_equal(rc, ERR_INVALID);
    assert_non_null(strstr(d.msg, "fichier vide"));
    import_collector_free(k);
    unlink(empty);
    free(empty);

    k = run("/nonexistent/rpps.txt", false, &rc, &d);
    assert_int_equal(rc, ERR_IO);
    import_collector_free(k);
}

/* Role ids do not depend on row order or on rows added before them. */
static void test_ids_stable(void **state)
{
    (void)state;
    char *path = fixture_path("bad.txt");
    FILE *fp = fopen(path, "r");
    assert_non_null(fp);
    char *lines[20] = {0};
    size_t cap = 0;
    int n = 0;
    while (n < 20 && getline(&lines[n], &cap, fp) > 0) {
        n++;
        cap = 0;
    }
    fclose(fp);
    /* header, then rows 2 (X), 8 (Y), 9 (X), 16 (W) of bad.txt; then W, X(9), a new row for X
     * (row 13's activity), Y, X(2) */
    char *one = xasprintf("%s%s%s%s%s", lines[0], lines[1], lines[7], lines[8], lines[15]);
    char *two =
        xasprintf("%s%s%s%s%s%s", lines[0], lines[15], lines[8], lines[12], lines[7], lines[1]);
    char *p1 = write_temp(one, strlen(one)), *p2 = write_temp(two, strlen(two));
    int rc;
    Diag d = {0};
    ImportSink *k1 = run(p1, false, &rc, &d);
    assert_int_equal(rc, 0);
    ImportSink *k2 = run(p2, false, &rc, &d);
    assert_int_equal(rc, 0);
    json_t *by2 = index_by_id(import_collector_resources(k2));
    size_t i;
    json_t *r;
    json_array_foreach(import_collector_resources(k1), i, r)
    {
        json_t *same = json_object_get(by2, str_at(r, "id"));
        assert_non_null(same);
        if (strcmp(str_at(r, "resourceType"), "PractitionerRole") == 0)
            assert_true(json_equal(r, same));
    }
    /* one more role in the second file: X's extra activity */
    assert_int_equal(json_array_size(import_collector_resources(k2)),
                     json_array_size(import_collector_resources(k1)) + 1);
    json_decref(by2);
    import_collector_free(k1);
    import_collector_free(k2);
    unlink(p1);
    unlink(p2);
    free(p1);
    free(p2);
    free(one);
    free(two);
    for (i = 0; i < 20; i++)
        free(lines[i]);
    free(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_real_file),   cmocka_unit_test(test_bad_rows),
        cmocka_unit_test(test_latin1),      cmocka_unit_test(test_truncated),
        cmocka_unit_test(test_file_errors), cmocka_unit_test(test_ids_stable),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
