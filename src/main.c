/* ror — command line: wires the modules together. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>
#include <sodium.h>

#include "api/api.h"
#include "auth/auth.h"
#include "capacity/capacity.h"
#include "orient/orient.h"
#include "cli.h"
#include "core/core.h"
#include "events/events.h"
#include "fhir/fhir.h"
#include "http/http.h"
#include "json/json.h"
#include "store/store.h"
#include "terminology/terminology.h"

#define ROR_VERSION "0.1.0"

static void usage(FILE *f)
{
    fprintf(
        f,
        "usage: ror <command> [options]\n"
        "\n"
        "commands:\n"
        "  serve     start the FHIR server\n"
        "  import    import reference data or FHIR files (ror import --help)\n"
        "  user      accounts: add, passwd, disable, grant, key, list (ror user --help)\n"
        "  version   print the version\n"
        "\n"
        "serve options:\n"
        "  --data DIR        data directory (store file ror.db); default ./ror-data\n"
        "  --port N          TCP port (0 = any free port); default 8080\n"
        "  --bind ADDR       IPv4 address to listen on; default 127.0.0.1\n"
        "  --threads N       HTTP worker threads; default 8\n"
        "  --max-body BYTES  largest request body accepted; default 8388608\n"
        "  --seed FILE       load this FHIR Bundle when the store is empty (demo data)\n"
        "  --query-timeout MS  searches running longer are abandoned (413); default 10000\n"
        "  --max-streams N   capacity event streams open at once (more: 503); default: the\n"
        "                    connection limit (open-files limit, raised to its maximum) - 64\n"
        "  --tls-cert FILE --tls-key FILE  serve HTTPS (PEM; TLS 1.2+) instead of HTTP\n"
        "  --rate-limit N    requests per second per client address without credentials\n"
        "                    (burst 2N); 0 = off; default 200\n"
        "  --trust-proxy     the client address is the last X-Forwarded-For entry (only\n"
        "                    behind a reverse proxy that sets it)\n"
        "  --oidc-issuer URL --oidc-audience AUD --oidc-jwks FILE  accept bearer JWTs of\n"
        "                    this issuer (RS256/ES256), signed by a key of FILE (JWKS)\n"
        "  --cookie-secure   mark session cookies Secure (HTTPS terminated by a proxy)\n"
        "  --access-profiles FILE  Ror-Profil-Utilisateur codes -> access profiles 0-5;\n"
        "                    default SPEC/access-profiles.json\n"
        "  --validation      establishment managers' descriptive changes wait for the\n"
        "                    ARS's validation (GET /validation)\n"
        "  --web DIR         the web interface's files (\"\" for none); default %s\n"
        "  --tile-url URL    map tiles of the web interface ({z}/{x}/{y}; \"\": none);\n"
        "                    default OpenStreetMap; --tile-attribution TEXT its credit\n"
        "  --spec DIR        search-parameter data directory; default %s\n"
        "environment: ROR_DATA_DIR overrides the default of --spec, ROR_WEB_DIR that of --web\n",
        ROR_WEB_DIR, ROR_DATA_DIR);
}

/* ------------------------------------------------------------------ wiring */

/* The whole of a small text file (at most 4 MiB), or NULL with d set. */
static char *file_text(const char *path, Diag *d)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        diag_set(d, ERR_IO, "%s : %s", path, strerror(errno));
        return NULL;
    }
    Buf b;
    buf_init(&b, 4u << 20);
    char chunk[8192];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        buf_add(&b, chunk, n);
    bool bad = ferror(f) || b.overflow;
    fclose(f);
    if (bad) {
        buf_cleanup(&b);
        diag_set(d, ERR_IO, "%s : illisible ou trop grand", path);
        return NULL;
    }
    buf_add(&b, "", 1);
    size_t len;
    return buf_steal(&b, &len);
}

static void on_commit(void *ctx, const StoreChange *changes, size_t n)
{
    Events *ev = ctx;
    EventChange *ec = xcalloc(n ? n : 1, sizeof *ec);
    for (size_t i = 0; i < n; i++)
        ec[i] = (EventChange){0,
                              changes[i].type,
                              changes[i].id,
                              changes[i].version,
                              changes[i].last_updated,
                              changes[i].deleted};
    events_publish(ev, ec, n);
    free(ec);
}

int cli_registry_load(const char *dir, FhirRegistry **out, Diag *d)
{
    FhirRegistry *reg = fhir_registry_new();
    char *core = xasprintf("%s/searchparams/core.json", dir);
    char *ror = xasprintf("%s/searchparams/ror", dir);
    char *corr = xasprintf("%s/searchparams/corrections.json", dir);
    int rc = fhir_registry_load_file(reg, core, d);
    if (rc == 0)
        rc = fhir_registry_load_dir(reg, ror, d);
    if (rc == 0)
        rc = fhir_registry_finish(reg, corr, d);
    free(core);
    free(ror);
    free(corr);
    if (rc != 0) {
        fhir_registry_free(reg);
        return rc;
    }
    *out = reg;
    return 0;
}

/* Seed: every resource of a Bundle, through the one write path, in one transaction. */
typedef struct Seed {
    json_t *bundle;
    size_t loaded;
} Seed;

static int seed_txn(StoreTxn *t, void *ctx, Diag *d)
{
    Seed *s = ctx;
    json_t *e;
    size_t i;
    Arena a;
    arena_init(&a);
    int rc = 0;
    json_array_foreach(json_object_get(s->bundle, "entry"), i, e)
    {
        json_t *res = json_object_get(e, "resource");
        const char *type = json_str(res, "resourceType");
        if (!type || !fhir_type_find(type, strlen(type))) {
            rc = diag_set(d, ERR_INVALID, "entrée %zu : type de ressource non pris en charge", i);
            break;
        }
        if ((rc = fhir_resource_check(type, res, d)) != 0) {
            diag_set(d, rc, "entrée %zu (%s/%s) : %s", i, type, json_str(res, "id"),
                     d ? d->msg : "");
            break;
        }
        StoredResource out;
        StorePut p = {.type = type, .id = json_str(res, "id"), .res = res, .author = "demo"};
        if ((rc = store_txn_put(t, &a, &p, &out, d)) != 0)
            break;
        s->loaded++;
    }
    arena_cleanup(&a);
    return rc;
}

static int seed_load(Store *store, const char *path, Diag *d)
{
    int64_t n = 0;
    int rc = store_count(store, NULL, &n, d);
    if (rc != 0 || n > 0)
        return rc;
    int64_t t0 = time_mono_ns();
    json_error_t e;
    json_t *bundle = json_load_file(path, JSON_REJECT_DUPLICATES, &e);
    if (!bundle)
        return diag_set(d, ERR_INVALID, "%s:%d : %s", path, e.line, e.text);
    int64_t t1 = time_mono_ns();
    Seed s = {bundle, 0};
    rc = store_write(store, seed_txn, &s, d);
    json_decref(bundle);
    if (rc == 0)
        log_info("seed: %zu resources loaded from %s (read %lld ms, write %lld ms)", s.loaded, path,
                 (long long)((t1 - t0) / 1000000), (long long)((time_mono_ns() - t1) / 1000000));
    return rc;
}

/* The terminology follows committed CodeSystem/ValueSet changes (applied by its next query). */
static void on_terminology_events(void *ctx, const EventChange *c, size_t n)
{
    for (size_t i = 0; i < n; i++)
        terminology_note_change(ctx, c[i].type, c[i].id);
}

/* Load the stored NOS terminology and the bindings table, then follow changes. */
static int terminology_start(const char *spec, Store *store, const FhirRegistry *reg,
                             Events *events, Terminology **out, Diag *d)
{
    char *bindings = xasprintf("%s/bindings.json", spec);
    TerminologyOptions to = {.store = store, .reg = reg, .bindings_path = bindings};
    int rc = terminology_open(&to, out, d);
    free(bindings);
    if (rc != 0)
        return rc;
    events_subscribe(events, on_terminology_events, *out);
    size_t ncs, nvs, nconcepts;
    terminology_counts(*out, &ncs, &nvs, &nconcepts);
    log_info("terminology: %zu CodeSystem, %zu ValueSet, %zu concepts, %zu bindings", ncs, nvs,
             nconcepts, terminology_binding_count(*out));
    return 0;
}

/* The orientation index follows committed Organization/Location/HealthcareService changes. */
static void on_orient_events(void *ctx, const EventChange *c, size_t n)
{
    for (size_t i = 0; i < n; i++)
        orient_note_change(ctx, c[i].type, c[i].id);
}

static int orient_start(Store *store, const FhirRegistry *reg, const CapacityExpiry *expiry,
                        Events *events, Orient **out, Diag *d)
{
    OrientOptions oo = {.store = store, .reg = reg, .expiry = expiry};
    int rc = orient_open(&oo, out, d);
    if (rc != 0)
        return rc;
    events_subscribe(events, on_orient_events, *out);
    return 0;
}

static int cmd_serve(int argc, char **argv)
{
    const char *data = "ror-data", *bind = "127.0.0.1", *seed = NULL;
    const char *spec = getenv("ROR_DATA_DIR") ? getenv("ROR_DATA_DIR") : ROR_DATA_DIR;
    int port = 8080, threads = 8, query_timeout = 10000;
    long max_streams = 0;
    size_t max_body = 8u << 20;
    const char *tls_cert = NULL, *tls_key = NULL, *oidc_issuer = NULL, *oidc_audience = NULL;
    const char *oidc_jwks = NULL, *profiles_path = NULL;
    const char *web = getenv("ROR_WEB_DIR") ? getenv("ROR_WEB_DIR") : ROR_WEB_DIR;
    const char *tile_url = "https://tile.openstreetmap.org/{z}/{x}/{y}.png";
    const char *tile_attr = "© les contributeurs d'OpenStreetMap";
    double rate_limit = 200;
    bool trust_proxy = false, cookie_secure = false, validation = false;
    static const struct option opts[] = {
        {"data", required_argument, NULL, 'd'},
        {"port", required_argument, NULL, 'p'},
        {"bind", required_argument, NULL, 'b'},
        {"threads", required_argument, NULL, 't'},
        {"max-body", required_argument, NULL, 'm'},
        {"seed", required_argument, NULL, 's'},
        {"spec", required_argument, NULL, 'S'},
        {"query-timeout", required_argument, NULL, 'q'},
        {"max-streams", required_argument, NULL, 'M'},
        {"tls-cert", required_argument, NULL, 'C'},
        {"tls-key", required_argument, NULL, 'K'},
        {"rate-limit", required_argument, NULL, 'r'},
        {"trust-proxy", no_argument, NULL, 'T'},
        {"oidc-issuer", required_argument, NULL, 'I'},
        {"oidc-audience", required_argument, NULL, 'A'},
        {"oidc-jwks", required_argument, NULL, 'J'},
        {"cookie-secure", no_argument, NULL, 'c'},
        {"access-profiles", required_argument, NULL, 'P'},
        {"validation", no_argument, NULL, 'V'},
        {"web", required_argument, NULL, 'W'},
        {"tile-url", required_argument, NULL, 'U'},
        {"tile-attribution", required_argument, NULL, 'a'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'd': data = optarg; break;
        case 'p': port = atoi(optarg); break;
        case 'b': bind = optarg; break;
        case 't': threads = atoi(optarg); break;
        case 'm': max_body = strtoull(optarg, NULL, 10); break;
        case 's': seed = optarg; break;
        case 'S': spec = optarg; break;
        case 'q': query_timeout = atoi(optarg); break;
        case 'M': max_streams = atol(optarg); break;
        case 'C': tls_cert = optarg; break;
        case 'K': tls_key = optarg; break;
        case 'r': rate_limit = strtod(optarg, NULL); break;
        case 'T': trust_proxy = true; break;
        case 'I': oidc_issuer = optarg; break;
        case 'A': oidc_audience = optarg; break;
        case 'J': oidc_jwks = optarg; break;
        case 'c': cookie_secure = true; break;
        case 'P': profiles_path = optarg; break;
        case 'V': validation = true; break;
        case 'W': web = optarg[0] ? optarg : NULL; break;
        case 'U': tile_url = optarg; break;
        case 'a': tile_attr = optarg; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (port < 0 || port > 65535 || threads < 1 || threads > 256 || max_body < 1024 ||
        query_timeout < 1 || max_streams < 0 || !(rate_limit >= 0) || (!tls_cert != !tls_key) ||
        (!oidc_jwks != !oidc_issuer) || (!oidc_jwks != !oidc_audience)) {
        fprintf(stderr, "ror: invalid --port, --threads, --max-body, --query-timeout, "
                        "--max-streams or --rate-limit, or --tls-cert without --tls-key, or an "
                        "incomplete --oidc-issuer/--oidc-audience/--oidc-jwks\n");
        return 2;
    }
    if (mkdir(data, 0750) != 0 && errno != EEXIST) {
        fprintf(stderr, "ror: cannot create %s: %s\n", data, strerror(errno));
        return 1;
    }

    /* signals are handled by sigwait in this thread; block them before any thread starts */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);

    Diag d = {{0}, {0}};
    FhirRegistry *reg = NULL;
    Store *store = NULL;
    Events *events = events_new();
    HttpServer *http = NULL;
    Api *api = NULL;
    Terminology *term = NULL;
    CapacityExpiry *expiry = NULL;
    Orient *orient = NULL;
    AuthJwks *jwks = NULL;
    char *cert = NULL, *key = NULL, *profiles = NULL;
    int rc = cli_data_dir_lock(data, &d);
    if (rc == 0 && tls_cert) {
        cert = file_text(tls_cert, &d);
        key = cert ? file_text(tls_key, &d) : NULL;
        rc = key ? 0 : ERR_IO;
    }
    if (rc == 0 && oidc_jwks) {
        char *text = file_text(oidc_jwks, &d);
        rc = text ? auth_jwks_load(text, strlen(text), &jwks, &d) : ERR_IO;
        free(text);
    }
    if (rc == 0) {
        char *def = profiles_path ? NULL : xasprintf("%s/access-profiles.json", spec);
        if (profiles_path || access(def, R_OK) == 0) {
            profiles = file_text(profiles_path ? profiles_path : def, &d);
            rc = profiles ? 0 : ERR_IO;
        }
        free(def);
    }
    if (rc == 0)
        rc = cli_registry_load(spec, &reg, &d);
    if (rc == 0) {
        char *path = xasprintf("%s/ror.db", data);
        StoreOptions so = {
            .path = path, .reg = reg, .readers = threads + 2, .query_timeout_ms = query_timeout};
        rc = store_open(&so, &store, &d);
        free(path);
    }
    if (rc == 0) {
        store_set_commit_hook(store, on_commit, events);
        capacity_attach(store); /* capacity events recorded with every Location version */
        if (seed)
            rc = seed_load(store, seed, &d);
    }
    if (rc == 0)
        rc = terminology_start(spec, store, reg, events, &term, &d);
    if (rc == 0) {
        char *path = xasprintf("%s/capacity.json", spec);
        rc = capacity_expiry_load(path, &expiry, &d);
        free(path);
    }
    if (rc == 0)
        rc = orient_start(store, reg, expiry, events, &orient, &d);
    char *unit_types = NULL; /* the pages group units as the bed views do */
    if (rc == 0) {
        char *path = xasprintf("%s/capacity.json", spec);
        char *text = file_text(path, &d);
        json_t *doc = text ? json_loads(text, 0, NULL) : NULL;
        json_t *ut = json_object_get(doc, "unitTypes");
        unit_types = ut ? json_dumps(ut, JSON_COMPACT) : NULL;
        json_decref(doc);
        free(text);
        free(path);
    }
    if (rc == 0) {
        ApiOptions ao = {.store = store,
                         .reg = reg,
                         .base_path = "/fhir",
                         .software_version = ROR_VERSION,
                         .term = term,
                         .events = events,
                         .capacity_expiry = expiry,
                         .orient = orient,
                         .max_streams = (size_t)max_streams,
                         .jwks = jwks,
                         .oidc_issuer = oidc_issuer,
                         .oidc_audience = oidc_audience,
                         .cookie_secure = cookie_secure,
                         .profile_codes_json = profiles,
                         .validation = validation,
                         .web_root = web,
                         .tile_url = tile_url,
                         .tile_attribution = tile_attr,
                         .unit_types_json = unit_types};
        api = api_new(&ao, &d);
        rc = api ? 0 : ERR_INVALID;
    }
    if (rc == 0) {
        http = http_server_new();
        api_routes(api, http);
        HttpOptions ho = {.bind = bind,
                          .port = port,
                          .threads = threads,
                          .max_body = max_body,
                          .timeout_s = 60,
                          .tls_cert_pem = cert,
                          .tls_key_pem = key,
                          .rate_per_s = rate_limit,
                          .trust_proxy = trust_proxy};
        rc = http_start(http, &ho, &d);
    }
    if (rc == 0) {
        printf("ror: listening on %s://%s:%d/fhir\n", cert ? "https" : "http", bind,
               http_port(http));
        fflush(stdout);
        int sig = 0;
        sigwait(&sigs, &sig);
        log_info("signal %d: stopping", sig);
    } else {
        fprintf(stderr, "ror: %s\n", d.msg);
    }
    /* Stop in an order that answers every write in flight: no new connections; the writer
     * commits what is queued and resumes the suspended requests (later writes get 503); then
     * the HTTP server stops with no suspended connection left; then the store closes. */
    http_quiesce(http);
    api_stop(api); /* subscription deliveries save their progress while the store still writes */
    if (store)
        store_drain(store);
    http_stop(http);
    api_free(api);
    orient_free(orient); /* before the store: its updater reads from it */
    store_close(store);
    terminology_free(term);
    capacity_expiry_free(expiry);
    events_free(events);
    fhir_registry_free(reg);
    auth_jwks_free(jwks);
    if (key)
        sodium_memzero(key, strlen(key));
    free(key);
    free(cert);
    free(profiles);
    free(unit_types);
    return rc == 0 ? 0 : 1;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (strcmp(argv[1], "serve") == 0)
        return cmd_serve(argc - 1, argv + 1);
    if (strcmp(argv[1], "import") == 0)
        return cli_import(argc - 1, argv + 1);
    if (strcmp(argv[1], "user") == 0)
        return cli_user(argc - 1, argv + 1);
    if (strcmp(argv[1], "version") == 0) {
        printf("ror %s\n", ROR_VERSION);
        return 0;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "help") == 0) {
        usage(stdout);
        return 0;
    }
    fprintf(stderr, "ror: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return 2;
}
