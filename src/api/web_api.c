/*
 * web_api.c — the web interface's files, served by `ror serve` itself (no other server):
 *
 *   GET /                       WEB/index.html
 *   GET /ui/{file}              WEB/{file}          (one or two path segments: js/app.js)
 *   GET /vendor/{package}/...   WEB/node_modules/{package}/dist/...  (leaflet and its cluster
 *                               plug-in, installed from npm by scripts/setup.sh)
 *   GET /ui-config              {"tileUrl", "tileAttribution", "unitTypes"} (ror serve
 *                               --tile-url; the unit types of data/capacity.json)
 *
 * Names are checked before any file is opened: segments of [A-Za-z0-9._-] not starting with a
 * dot, a known extension (its media type), a listed package — so nothing outside WEB is ever
 * read. Files are read on each request (they are small) with a weak ETag from size and mtime.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <jansson.h>

#include "api/api_int.h"

#define WEB_FILE_MAX (4u << 20)

typedef struct Web {
    char *root;
    char *config; /* GET /ui-config: JSON text */
} Web;

static const struct {
    const char *ext, *type;
} media[] = {
    {".html", "text/html; charset=utf-8"},
    {".js", "text/javascript; charset=utf-8"},
    {".mjs", "text/javascript; charset=utf-8"},
    {".css", "text/css; charset=utf-8"},
    {".json", "application/json; charset=utf-8"},
    {".svg", "image/svg+xml"},
    {".png", "image/png"},
    {".ico", "image/x-icon"},
    {".woff2", "font/woff2"},
    {".webmanifest", "application/manifest+json"},
};

static const char *const packages[] = {"leaflet", "leaflet.markercluster"};

static bool segment_ok(const char *s)
{
    if (!s || !s[0] || s[0] == '.' || strlen(s) > 128)
        return false;
    for (const char *c = s; *c; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
              *c == '.' || *c == '_' || *c == '-'))
            return false;
    return true;
}

static const char *media_type(const char *name)
{
    const char *dot = strrchr(name, '.');
    for (size_t i = 0; dot && i < sizeof media / sizeof media[0]; i++)
        if (strcmp(dot, media[i].ext) == 0)
            return media[i].type;
    return NULL;
}

static void serve_file(HttpRequest *r, const char *path, const char *type, bool immutable)
{
    struct stat st;
    FILE *f = NULL;
    if (stat(path, &st) != 0 || !S_ISREG(st.st_mode) || (size_t)st.st_size > WEB_FILE_MAX ||
        !(f = fopen(path, "rb"))) {
        api_fail(r, ERR_NOT_FOUND, "%s", "page introuvable");
        return;
    }
    char etag[64];
    snprintf(etag, sizeof etag, "W/\"%llx-%llx\"", (unsigned long long)st.st_size,
             (unsigned long long)st.st_mtime);
    http_header_set(r, "ETag", etag);
    http_header_set(r, "Cache-Control", immutable ? "public, max-age=86400" : "no-cache");
    const char *inm = http_header(r, "If-None-Match");
    if (inm && strcmp(inm, etag) == 0) {
        fclose(f);
        http_respond(r, 304, NULL, NULL, 0);
        return;
    }
    size_t len = (size_t)st.st_size;
    char *body = xmalloc(len + 1);
    size_t got = fread(body, 1, len, f);
    fclose(f);
    if (got != len) {
        free(body);
        api_fail(r, ERR_IO, "%s", "fichier illisible");
        return;
    }
    http_respond(r, 200, type, body, len);
}

/* WEB/{a}[/{b}] */
static void h_ui(HttpRequest *r, void *ctx)
{
    Web *w = ctx;
    const char *a = r->params[0], *b = r->params[1];
    const char *last = b ? b : a;
    const char *type = media_type(last);
    if (!segment_ok(a) || (b && !segment_ok(b)) || !type) {
        api_fail(r, ERR_NOT_FOUND, "%s", "page introuvable");
        return;
    }
    char *path = b ? arena_printf(&r->arena, "%s/%s/%s", w->root, a, b)
                   : arena_printf(&r->arena, "%s/%s", w->root, a);
    serve_file(r, path, type, false);
}

static void h_index(HttpRequest *r, void *ctx)
{
    Web *w = ctx;
    serve_file(r, arena_printf(&r->arena, "%s/index.html", w->root), media[0].type, false);
}

/* WEB/node_modules/{package}/dist/{a}[/{b}] */
static void h_vendor(HttpRequest *r, void *ctx)
{
    Web *w = ctx;
    const char *pkg = r->params[0], *a = r->params[1], *b = r->params[2];
    bool known = false;
    for (size_t i = 0; i < sizeof packages / sizeof packages[0]; i++)
        known |= strcmp(pkg, packages[i]) == 0;
    const char *type = media_type(b ? b : a);
    if (!known || !segment_ok(a) || (b && !segment_ok(b)) || !type) {
        api_fail(r, ERR_NOT_FOUND, "%s", "fichier introuvable");
        return;
    }
    char *path = b ? arena_printf(&r->arena, "%s/node_modules/%s/dist/%s/%s", w->root, pkg, a, b)
                   : arena_printf(&r->arena, "%s/node_modules/%s/dist/%s", w->root, pkg, a);
    serve_file(r, path, type, true);
}

/* The settings of the pages that belong to the deployment, not to the files: the map tiles
 * (OpenStreetMap by default; "" for none: the map then shows markers on a blank ground). */
static void h_config(HttpRequest *r, void *ctx)
{
    Web *w = ctx;
    http_header_set(r, "Cache-Control", "no-cache");
    http_respond(r, 200, "application/json; charset=utf-8", xstrdup(w->config), strlen(w->config));
}

void *web_api_routes(HttpServer *s, const char *root, const char *tile_url,
                     const char *tile_attribution, const char *unit_types_json)
{
    if (!root)
        return NULL;
    Web *w = xcalloc(1, sizeof *w);
    w->root = xstrdup(root);
    json_t *cfg = json_pack("{s:s, s:s}", "tileUrl", tile_url ? tile_url : "", "tileAttribution",
                            tile_attribution ? tile_attribution : "");
    json_t *types = unit_types_json ? json_loads(unit_types_json, 0, NULL) : NULL;
    json_object_set_new(cfg, "unitTypes", json_is_object(types) ? types : json_object());
    if (types && !json_is_object(types))
        json_decref(types);
    w->config = json_dumps(cfg, JSON_COMPACT);
    json_decref(cfg);
    http_route(s, HTTP_GET, "/ui-config", h_config, w);
    http_route(s, HTTP_GET, "/", h_index, w);
    http_route(s, HTTP_GET, "/ui/{a}", h_ui, w);
    http_route(s, HTTP_GET, "/ui/{a}/{b}", h_ui, w);
    http_route(s, HTTP_GET, "/vendor/{pkg}/{a}", h_vendor, w);
    http_route(s, HTTP_GET, "/vendor/{pkg}/{a}/{b}", h_vendor, w);
    return w;
}

void web_api_free(void *p)
{
    Web *w = p;
    if (!w)
        return;
    free(w->root);
    free(w->config);
    free(w);
}
