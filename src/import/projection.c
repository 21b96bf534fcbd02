/*
 * projection.c — projected French coordinates to WGS84 with PROJ.
 *
 * One transformation per EPSG code, created on first use and kept (creating one costs a
 * database lookup; applying it costs ~0.25 µs). Codes PROJ does not know are remembered too,
 * so a file full of one bad code does not query the database for every row.
 *
 * A converted point must fall inside the source CRS's area of use: coordinates given in the
 * wrong system (the classic: overseas UTM read as Lambert-93) land far away, and a position
 * at a wrong place is worse than none.
 */
#include <math.h>
#include <proj.h>
#include <stdio.h>
#include <stdlib.h>

#include "import/import_int.h"

#define CACHE_MAX 32

typedef struct Crs {
    int epsg;
    PJ *op;  /* normalised transformation to EPSG:4326 (lon, lat); NULL: code unusable */
    int err; /* why op is NULL: ERR_UNSUPPORTED */
    char why[160];
    double west, south, east, north; /* area of use, degrees */
} Crs;

struct Projector {
    PJ_CONTEXT *ctx;
    Crs cache[CACHE_MAX];
    int n;
    Crs spare; /* used when the cache is full; rebuilt on every call then */
};

static void crs_clear(Crs *c)
{
    if (c->op)
        proj_destroy(c->op);
    c->op = NULL;
}

/* Fill c for EPSG:epsg: either op and the area, or err and why. */
static void crs_build(Projector *p, Crs *c, int epsg)
{
    char name[32];
    c->epsg = epsg;
    c->op = NULL;
    c->err = ERR_UNSUPPORTED;
    c->why[0] = '\0';
    PJ *crs = NULL, *wgs84 = NULL, *op = NULL;
    if (epsg <= 0 || epsg > 999999) {
        snprintf(c->why, sizeof c->why, "code EPSG %d invalide", epsg);
        return;
    }
    snprintf(name, sizeof name, "EPSG:%d", epsg);
    crs = proj_create(p->ctx, name);
    if (!crs) {
        snprintf(c->why, sizeof c->why, "système de coordonnées EPSG:%d inconnu", epsg);
        goto done;
    }
    /* Only projected systems: their coordinates are metres east/north. A geographic code
     * would make the same numbers mean degrees. */
    if (proj_get_type(crs) != PJ_TYPE_PROJECTED_CRS) {
        snprintf(c->why, sizeof c->why, "EPSG:%d n'est pas un système projeté", epsg);
        goto done;
    }
    const char *area = NULL;
    if (!proj_get_area_of_use(p->ctx, crs, &c->west, &c->south, &c->east, &c->north, &area) ||
        c->west < -180.0 || c->south < -90.0) { /* -1000: unknown */
        snprintf(c->why, sizeof c->why, "EPSG:%d n'a pas de domaine d'emploi connu", epsg);
        goto done;
    }
    wgs84 = proj_create(p->ctx, "EPSG:4326");
    if (wgs84)
        op = proj_create_crs_to_crs_from_pj(p->ctx, crs, wgs84, NULL, NULL);
    if (op) {
        /* EPSG:4326 is latitude-first; normalising makes the output (lon, lat) and the input
         * (easting, northing) whatever the axis order the EPSG database declares. */
        c->op = proj_normalize_for_visualization(p->ctx, op);
    }
    if (!c->op) {
        snprintf(c->why, sizeof c->why, "pas de transformation de EPSG:%d vers WGS84", epsg);
        goto done;
    }
    c->err = 0;
done:
    proj_destroy(op);
    proj_destroy(wgs84);
    proj_destroy(crs);
}

static Crs *crs_get(Projector *p, int epsg)
{
    for (int i = 0; i < p->n; i++)
        if (p->cache[i].epsg == epsg)
            return &p->cache[i];
    Crs *c = p->n < CACHE_MAX ? &p->cache[p->n++] : &p->spare;
    crs_clear(c);
    crs_build(p, c, epsg);
    return c;
}

int projector_new(Projector **out, Diag *d)
{
    Projector *p = xcalloc(1, sizeof *p);
    p->ctx = proj_context_create();
    if (!p->ctx) {
        free(p);
        return diag_set(d, ERR_IO, "PROJ : contexte impossible à créer");
    }
    proj_log_level(p->ctx, PJ_LOG_NONE);
    /* Lambert-93 is needed by nearly every file: if it does not resolve, the PROJ database
     * (proj-data) is missing, and every position would be lost. */
    Crs *c = crs_get(p, 2154);
    if (c->err) {
        int rc = diag_set(d, ERR_IO, "PROJ inutilisable (base proj.db absente ?) : %s", c->why);
        projector_free(p);
        return rc;
    }
    *out = p;
    return 0;
}

static bool in_area(const Crs *c, double lat, double lon)
{
    if (lat < c->south || lat > c->north)
        return false;
    if (c->west <= c->east)
        return lon >= c->west && lon <= c->east;
    return lon >= c->west || lon <= c->east; /* area across the antimeridian */
}

int projector_to_wgs84(Projector *p, int epsg, double x, double y, double *lat, double *lon,
                       Diag *d)
{
    Crs *c = crs_get(p, epsg);
    if (c->err)
        return diag_set(d, c->err, "%s", c->why);
    if (!isfinite(x) || !isfinite(y))
        return diag_set(d, ERR_INVALID, "coordonnées non finies");
    proj_errno_reset(c->op);
    PJ_COORD r = proj_trans(c->op, PJ_FWD, proj_coord(x, y, 0, 0));
    double la = r.lp.phi, lo = r.lp.lam; /* normalised: lam = longitude, in degrees */
    if (proj_errno(c->op) != 0 || !isfinite(la) || !isfinite(lo) || fabs(la) > 90.0 ||
        fabs(lo) > 180.0)
        return diag_set(d, ERR_INVALID, "conversion impossible de (%.2f, %.2f) en EPSG:%d", x, y,
                        epsg);
    if (!in_area(c, la, lo))
        return diag_set(d, ERR_INVALID,
                        "(%.2f, %.2f) en EPSG:%d tombe hors de son domaine d'emploi "
                        "(%.5f, %.5f)",
                        x, y, epsg, la, lo);
    *lat = la;
    *lon = lo;
    return 0;
}

int projector_check_area(Projector *p, int epsg, double lat, double lon, Diag *d)
{
    Crs *c = crs_get(p, epsg);
    if (c->err)
        return diag_set(d, c->err, "%s", c->why);
    if (!in_area(c, lat, lon))
        return diag_set(d, ERR_INVALID, "(%.5f, %.5f) hors du domaine d'emploi de EPSG:%d", lat,
                        lon, epsg);
    return 0;
}

void projector_free(Projector *p)
{
    if (!p)
        return;
    for (int i = 0; i < p->n; i++)
        crs_clear(&p->cache[i]);
    crs_clear(&p->spare);
    proj_context_destroy(p->ctx);
    free(p);
}
