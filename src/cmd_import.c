/* cmd_import.c — `ror import <kind> [options] FILE|DIR...` */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "capacity/capacity.h"
#include "cli.h"
#include "import/import.h"
#include "store/store.h"

int cli_store_open(const char *data, const char *spec, FhirRegistry **reg, Store **store, Diag *d)
{
    int rc = cli_data_dir_lock(data, d);
    if (rc == 0)
        rc = cli_registry_load(spec, reg, d);
    if (rc == 0) {
        char *path = xasprintf("%s/ror.db", data);
        StoreOptions so = {.path = path, .reg = *reg, .readers = 1};
        rc = store_open(&so, store, d);
        free(path);
    }
    return rc;
}

int cli_data_dir_lock(const char *dir, Diag *d)
{
    if (mkdir(dir, 0750) != 0 && errno != EEXIST)
        return diag_set(d, ERR_IO, "impossible de créer %s : %s", dir, strerror(errno));
    char *path = xasprintf("%s/ror.lock", dir);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0640);
    free(path);
    if (fd < 0)
        return diag_set(d, ERR_IO, "%s/ror.lock : %s", dir, strerror(errno));
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        close(fd);
        return diag_set(d, ERR_CONFLICT,
                        "le dossier %s est déjà utilisé par un autre processus ror (serveur ou "
                        "import en cours) : arrêtez-le d'abord",
                        dir);
    }
    return 0; /* fd stays open: the lock is released when the process exits */
}

static void usage(FILE *f)
{
    fprintf(f, "usage: ror import <kind> [options] FILE|DIR...\n\nkinds:\n");
    for (const ImportKind *const *k = import_kinds(); *k; k++)
        fprintf(f, "  %-9s %s\n", (*k)->name, (*k)->help);
    fprintf(f,
            "\noptions:\n"
            "  --data DIR     data directory (store ror.db); default ./ror-data\n"
            "  --feed NAME    feed this import replaces (what it no longer holds is closed);\n"
            "                 default: the kind's name\n"
            "  --no-close     partial extract: close nothing\n"
            "  --max-close PCT  fail rather than close more than PCT %% of the feed (and more\n"
            "                 than 100 resources); default 10, 100 = no limit\n"
            "  --strict       the first rejected record aborts the import (nothing written)\n"
            "  --dry-run      check and count everything, write nothing\n"
            "  --author NAME  recorded with every version written; default import:$USER\n"
            "  --threads N    preparation threads; default: number of CPUs\n"
            "  --spec DIR     search-parameter data directory; default %s\n"
            "  --json         print the summary as JSON on stdout\n"
            "  --quiet        no progress bar\n"
            "exit status: 0 done, 3 done but records were rejected, 1 failed (store unchanged),\n"
            "2 usage error\n",
            ROR_DATA_DIR);
}

typedef struct FileList {
    char **v;
    size_t n, cap;
} FileList;

static void files_add(FileList *l, char *path)
{
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 16;
        l->v = xrealloc(l->v, l->cap * sizeof *l->v);
    }
    l->v[l->n++] = path;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool importable_name(const char *name)
{
    static const char *const ext[] = {".json", ".ndjson", ".gz", ".tgz", ".tar", ".csv", ".txt"};
    size_t n = strlen(name);
    if (name[0] == '.')
        return false;
    for (size_t i = 0; i < sizeof ext / sizeof ext[0]; i++) {
        size_t m = strlen(ext[i]);
        if (n > m && strcmp(name + n - m, ext[i]) == 0)
            return true;
    }
    return false;
}

/* A directory stands for the importable files under it, sorted (so runs are reproducible). */
static int expand(const char *path, FileList *out, Diag *d)
{
    struct stat st;
    if (stat(path, &st) != 0)
        return diag_set(d, ERR_IO, "%s : %s", path, strerror(errno));
    if (!S_ISDIR(st.st_mode)) {
        files_add(out, xstrdup(path));
        return 0;
    }
    DIR *dir = opendir(path);
    if (!dir)
        return diag_set(d, ERR_IO, "%s : %s", path, strerror(errno));
    FileList here = {0};
    struct dirent *e;
    while ((e = readdir(dir)))
        if (e->d_name[0] != '.')
            files_add(&here, xasprintf("%s/%s", path, e->d_name));
    closedir(dir);
    qsort(here.v, here.n, sizeof *here.v, cmp_str);
    int rc = 0;
    for (size_t i = 0; i < here.n; i++) {
        if (rc == 0 && stat(here.v[i], &st) == 0 &&
            (S_ISDIR(st.st_mode) || importable_name(strrchr(here.v[i], '/') + 1)))
            rc = expand(here.v[i], out, d);
        free(here.v[i]);
    }
    free(here.v);
    return rc;
}

int cli_import(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "--help") == 0) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    const ImportKind *kind = import_kind_find(argv[1]);
    if (!kind) {
        fprintf(stderr, "ror import: type d'import inconnu « %s »\n", argv[1]);
        usage(stderr);
        return 2;
    }
    const char *data = "ror-data";
    const char *spec = getenv("ROR_DATA_DIR") ? getenv("ROR_DATA_DIR") : ROR_DATA_DIR;
    ImportOptions o = {.progress = isatty(2)};
    bool json = false;
    static const struct option opts[] = {
        {"data", required_argument, NULL, 'd'},
        {"feed", required_argument, NULL, 'f'},
        {"no-close", no_argument, NULL, 'n'},
        {"strict", no_argument, NULL, 's'},
        {"dry-run", no_argument, NULL, 'r'},
        {"author", required_argument, NULL, 'a'},
        {"threads", required_argument, NULL, 't'},
        {"spec", required_argument, NULL, 'S'},
        {"json", no_argument, NULL, 'j'},
        {"quiet", no_argument, NULL, 'q'},
        {"max-close", required_argument, NULL, 'm'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int c;
    optind = 2;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'd': data = optarg; break;
        case 'f': o.feed = optarg; break;
        case 'n': o.no_close = true; break;
        case 's': o.strict = true; break;
        case 'r': o.dry_run = true; break;
        case 'a': o.author = optarg; break;
        case 't': o.threads = atoi(optarg); break;
        case 'S': spec = optarg; break;
        case 'j': json = true; break;
        case 'q': o.progress = false; break;
        case 'm':
            o.max_close_pct = atoi(optarg);
            if (o.max_close_pct < 1 || o.max_close_pct > 100) {
                fprintf(stderr, "ror import: --max-close attend un pourcentage de 1 à 100\n");
                return 2;
            }
            break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind >= argc) {
        fprintf(stderr, "ror import: aucun fichier à importer\n");
        return 2;
    }
    if (o.feed && (!*o.feed || strlen(o.feed) > 63)) {
        fprintf(stderr, "ror import: --feed doit faire de 1 à 63 caractères\n");
        return 2;
    }
    char *author = NULL;
    if (!o.author) {
        const char *user = getenv("USER");
        author = xasprintf("import:%s", user && *user ? user : "inconnu");
        o.author = author;
    }
    Diag d = {{0}, {0}};
    FileList files = {0};
    FhirRegistry *reg = NULL;
    Store *store = NULL;
    int rc = 0;
    for (int i = optind; i < argc && rc == 0; i++)
        rc = expand(argv[i], &files, &d);
    if (rc == 0 && files.n == 0)
        rc = diag_set(&d, ERR_INVALID, "aucun fichier importable trouvé");
    if (rc == 0)
        rc = cli_store_open(data, spec, &reg, &store, &d);
    if (rc == 0)
        capacity_attach(store); /* imported Locations record their capacity events too */
    Terminology *term = NULL;
    if (rc == 0) { /* codes are checked as on the API (once the NOS are in the store) */
        char *bindings = xasprintf("%s/bindings.json", spec);
        TerminologyOptions to = {.store = store, .reg = reg, .bindings_path = bindings};
        rc = terminology_open(&to, &term, &d);
        free(bindings);
        o.term = term;
    }
    ImportSummary sum = {0};
    if (rc == 0)
        rc = import_run(store, reg, kind, (const char *const *)files.v, files.n, &o, &sum, &d);
    store_close(store);
    terminology_free(term);
    fhir_registry_free(reg);
    for (size_t i = 0; i < files.n; i++)
        free(files.v[i]);
    free(files.v);
    free(author);

    double rate = sum.seconds > 0 ? (double)sum.read / sum.seconds : 0;
    if (json)
        printf("{\"ok\":%s,\"dry_run\":%s,\"read\":%lld,\"created\":%lld,\"updated\":%lld,"
               "\"unchanged\":%lld,\"closed\":%lld,\"rejected\":%lld,\"warnings\":%lld,"
               "\"seconds\":%.3f}\n",
               rc == 0 ? "true" : "false", o.dry_run ? "true" : "false", (long long)sum.read,
               (long long)sum.created, (long long)sum.updated, (long long)sum.unchanged,
               (long long)sum.closed, (long long)sum.rejected, (long long)sum.warnings,
               sum.seconds);
    if (rc != 0) {
        fprintf(stderr, "ror import: échec, rien n'a été modifié : %s\n", d.msg);
        return 1;
    }
    fprintf(stderr,
            "ror import %s%s : %lld lues, %lld créées, %lld mises à jour, %lld inchangées, "
            "%lld fermées, %lld rejetées, %lld avertissements — %.1f s (%.0f ressources/s)\n",
            kind->name, o.dry_run ? " (essai, rien n'a été écrit)" : "", (long long)sum.read,
            (long long)sum.created, (long long)sum.updated, (long long)sum.unchanged,
            (long long)sum.closed, (long long)sum.rejected, (long long)sum.warnings, sum.seconds,
            rate);
    return sum.rejected > 0 ? 3 : 0;
}
