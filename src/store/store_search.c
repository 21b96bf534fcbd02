/* store search: a SearchPlan compiled to one parameterised SQL query, keyset paging, includes. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "json/json.h"
#include "store/store_int.h"

#define INCLUDE_MAX 1000

typedef enum { B_TEXT, B_INT, B_REAL, B_MAXBLOB } BindKind;

typedef struct Bind {
    BindKind kind;
    const char *s;
    int64_t i;
    double r;
} Bind;

typedef struct Sql {
    Buf text;
    Bind *binds;
    size_t n, cap;
    const ParamMap *params;
    const SearchClause *driving; /* the near clause that drives the main query (g.gd), or NULL */
} Sql;

static void sql_init(Sql *q, Conn *c)
{
    q->params = conn_params(c);
    q->driving = NULL;
    buf_init(&q->text, 1 << 20);
    q->binds = NULL;
    q->n = q->cap = 0;
}

static void sql_cleanup(Sql *q)
{
    buf_cleanup(&q->text);
    free(q->binds);
}

static void sql_add(Sql *q, const char *s)
{
    buf_adds(&q->text, s);
}

static Bind *bind_push(Sql *q)
{
    if (q->n == q->cap) {
        q->cap = q->cap ? q->cap * 2 : 16;
        q->binds = xrealloc(q->binds, q->cap * sizeof *q->binds);
    }
    buf_add(&q->text, "?", 1);
    Bind *b = &q->binds[q->n++];
    memset(b, 0, sizeof *b);
    return b;
}

static void sql_text(Sql *q, const char *s)
{
    Bind *b = bind_push(q);
    b->kind = B_TEXT;
    b->s = s;
}

static void sql_int(Sql *q, int64_t v)
{
    Bind *b = bind_push(q);
    b->kind = B_INT;
    b->i = v;
}

/* The interned id of index key type.code (-1, matching nothing, when unknown). */
static void sql_param(Sql *q, const char *type, const char *code)
{
    Bind *b = bind_push(q);
    b->kind = B_INT;
    b->i = param_id(q->params, type, code);
}

static void sql_real(Sql *q, double v)
{
    Bind *b = bind_push(q);
    b->kind = B_REAL;
    b->r = v;
}

static void sql_bind_all(sqlite3_stmt *st, const Sql *q)
{
    static const unsigned char maxblob[] = {0xff, 0xff, 0xff, 0xff};
    for (size_t i = 0; i < q->n; i++) {
        const Bind *b = &q->binds[i];
        int k = (int)i + 1;
        switch (b->kind) {
        case B_TEXT: sqlite3_bind_text(st, k, b->s, -1, SQLITE_STATIC); break;
        case B_INT: sqlite3_bind_int64(st, k, b->i); break;
        case B_REAL: sqlite3_bind_double(st, k, b->r); break;
        case B_MAXBLOB: sqlite3_bind_blob(st, k, maxblob, sizeof maxblob, SQLITE_STATIC); break;
        }
    }
}

/* ------------------------------------------------------------------ clauses */

static SpType clause_kind(const SearchClause *c)
{
    return c->mod == MOD_IDENTIFIER || c->mod == MOD_OF_TYPE ? SP_TOKEN : c->sp->type;
}

static const char *table_of(SpType t)
{
    switch (t) {
    case SP_TOKEN: return "sp_token";
    case SP_STRING: return "sp_string";
    case SP_REFERENCE: return "sp_reference";
    case SP_DATE: return "sp_date";
    case SP_NUMBER: return "sp_number";
    case SP_QUANTITY: return "sp_quantity";
    case SP_URI: return "sp_uri";
    default: return NULL;
    }
}

/* Append `s` with each '@' replaced by the column prefix `pre` ("" or "g1."). */
static void sql_addc(Sql *q, const char *pre, const char *s)
{
    for (const char *at; (at = strchr(s, '@')) != NULL; s = at + 1) {
        buf_add(&q->text, s, (size_t)(at - s));
        buf_adds(&q->text, pre);
    }
    buf_adds(&q->text, s);
}

/* "<column> <op> ?" with an integer operand. */
static void cmp_int(Sql *q, const char *pre, const char *col_op, int64_t v)
{
    sql_addc(q, pre, col_op);
    sql_int(q, v);
}

/* One value's condition on the columns of the clause's index table, prefixed by `pre`. */
static void value_cond(Sql *q, Arena *a, const SearchClause *c, const SearchValue *v,
                       const char *pre)
{
    switch (clause_kind(c)) {
    case SP_TOKEN:
        if (c->mod == MOD_TEXT) {
            sql_addc(q, pre, "instr(@text, ");
            sql_text(q, v->str);
            sql_add(q, ") > 0");
            break;
        }
        sql_add(q, "(1");
        if (v->code) {
            sql_addc(q, pre, " AND @code = ");
            sql_text(q, v->code);
        }
        if (v->system && *v->system) {
            sql_addc(q, pre, " AND @system = ");
            sql_text(q, v->system);
        } else if (v->system) {
            sql_addc(q, pre, " AND @system IS NULL");
        }
        sql_add(q, ")");
        break;
    case SP_STRING:
        if (c->mod == MOD_EXACT) {
            sql_addc(q, pre, "@raw = ");
            sql_text(q, v->str);
        } else if (c->mod == MOD_CONTAINS) {
            sql_addc(q, pre, "instr(@folded, ");
            sql_text(q, v->str);
            sql_add(q, ") > 0");
        } else { /* starts with: an index range */
            sql_addc(q, pre, "(@folded >= ");
            sql_text(q, v->str);
            sql_addc(q, pre, " AND @folded < ");
            sql_text(q, arena_printf(a, "%s\xff", v->str));
            sql_add(q, ")");
        }
        break;
    case SP_REFERENCE:
        sql_addc(q, pre, "(@tid = ");
        sql_text(q, v->str);
        if (v->ref_type) {
            sql_addc(q, pre, " AND @ttype = ");
            sql_text(q, v->ref_type);
        }
        sql_add(q, ")");
        break;
    case SP_DATE:
        switch (v->prefix) {
        case PFX_EQ:
        case PFX_NE:
            sql_addc(q, pre, v->prefix == PFX_NE ? "NOT (@lo >= " : "(@lo >= ");
            sql_int(q, v->lo);
            sql_addc(q, pre, " AND @hi <= ");
            sql_int(q, v->hi);
            sql_add(q, ")");
            break;
        case PFX_GT: cmp_int(q, pre, "@hi > ", v->hi); break;
        case PFX_LT: cmp_int(q, pre, "@lo < ", v->lo); break;
        case PFX_GE:
        case PFX_LE:
            sql_addc(q, pre, v->prefix == PFX_GE ? "(@hi > " : "(@lo < ");
            sql_int(q, v->prefix == PFX_GE ? v->hi : v->lo);
            sql_addc(q, pre, " OR (@lo >= ");
            sql_int(q, v->lo);
            sql_addc(q, pre, " AND @hi <= ");
            sql_int(q, v->hi);
            sql_add(q, "))");
            break;
        case PFX_SA: cmp_int(q, pre, "@lo > ", v->hi); break;
        case PFX_EB: cmp_int(q, pre, "@hi < ", v->lo); break;
        case PFX_AP: {
            /* approximately: within 10 % of the distance from now, at least a day */
            int64_t gap = llabs(time_now_ms() - v->lo) / 10;
            if (gap < 86400000)
                gap = 86400000;
            sql_addc(q, pre, "(@lo <= ");
            sql_int(q, v->hi + gap);
            sql_addc(q, pre, " AND @hi >= ");
            sql_int(q, v->lo - gap);
            sql_add(q, ")");
            break;
        }
        }
        break;
    case SP_NUMBER:
    case SP_QUANTITY:
        sql_add(q, "(");
        switch (v->prefix) {
        case PFX_EQ:
        case PFX_NE:
            sql_addc(q, pre, v->prefix == PFX_NE ? "NOT (@value >= " : "(@value >= ");
            sql_real(q, v->num_lo);
            sql_addc(q, pre, " AND @value < ");
            sql_real(q, v->num_hi);
            sql_add(q, ")");
            break;
        case PFX_GT:
        case PFX_SA:
            sql_addc(q, pre, "@value > ");
            sql_real(q, v->num);
            break;
        case PFX_LT:
        case PFX_EB:
            sql_addc(q, pre, "@value < ");
            sql_real(q, v->num);
            break;
        case PFX_GE:
            sql_addc(q, pre, "@value >= ");
            sql_real(q, v->num);
            break;
        case PFX_LE:
            sql_addc(q, pre, "@value <= ");
            sql_real(q, v->num);
            break;
        case PFX_AP:
            sql_addc(q, pre, "@value BETWEEN ");
            sql_real(q, v->num - fabs(v->num) * 0.1);
            sql_add(q, " AND ");
            sql_real(q, v->num + fabs(v->num) * 0.1);
            break;
        }
        if (clause_kind(c) == SP_QUANTITY) {
            if (v->system) {
                sql_addc(q, pre, " AND @system = ");
                sql_text(q, v->system);
            }
            if (v->code) {
                sql_addc(q, pre, " AND @code = ");
                sql_text(q, v->code);
            }
        }
        sql_add(q, ")");
        break;
    case SP_URI:
        if (c->mod == MOD_BELOW) {
            sql_addc(q, pre, "(@uri >= ");
            sql_text(q, v->str);
            sql_addc(q, pre, " AND @uri < ");
            sql_text(q, arena_printf(a, "%s\xff", v->str));
            sql_add(q, ")");
        } else if (c->mod == MOD_ABOVE) {
            sql_add(q, "instr(");
            sql_text(q, v->str);
            sql_addc(q, pre, ", @uri) = 1");
        } else {
            sql_addc(q, pre, "@uri = ");
            sql_text(q, v->str);
        }
        break;
    default: sql_add(q, "0"); break;
    }
}

static void emit_conds(Sql *q, Arena *a, const SearchClause *cs, size_t n, const char *type,
                       const char *pkcol);

/* The OR of a clause's values, on the columns of its index table (alias-free). */
static void emit_values(Sql *q, Arena *a, const SearchClause *c, const char *pre)
{
    sql_add(q, "(");
    for (size_t i = 0; i < c->nvalues; i++) {
        if (i)
            sql_add(q, " OR ");
        value_cond(q, a, c, &c->values[i], pre);
    }
    sql_add(q, ")");
}

#define METRES_PER_DEGREE 111195.08 /* on the sphere of core's haversine */

/* The pks of the positions within v's great-circle radius: the R*Tree selects a bounding box
 * (latitude band; longitude band unless it would reach a pole or the antimeridian), the exact
 * distance decides. */
static void emit_geo_box(Sql *q, const SearchValue *v)
{
    double dlat = v->radius_m / METRES_PER_DEGREE + 1e-6;
    sql_add(q, "lat1 >= ");
    sql_real(q, v->lat - dlat);
    sql_add(q, " AND lat0 <= ");
    sql_real(q, v->lat + dlat);
    double far_lat = fabs(v->lat) + dlat;
    if (far_lat < 89.0) {
        double dlon = dlat / cos(far_lat * M_PI / 180.0);
        if (v->lon - dlon > -180.0 && v->lon + dlon < 180.0) {
            sql_add(q, " AND lon1 >= ");
            sql_real(q, v->lon - dlon);
            sql_add(q, " AND lon0 <= ");
            sql_real(q, v->lon + dlon);
        }
    }
}

static void emit_geo_set(Sql *q, const SearchValue *v)
{
    sql_add(q, "SELECT id FROM sp_geo WHERE ");
    emit_geo_box(q, v);
    sql_add(q, " AND ror_distance(lat, lon, ");
    sql_real(q, v->lat);
    sql_add(q, ", ");
    sql_real(q, v->lon);
    sql_add(q, ") <= ");
    sql_real(q, v->radius_m);
}

/* The distance of resource r.pk to the plan's near point, in metres: its own position, or the
 * nearest position within the radius among the resources its chaining reference points to. */
static void emit_distance(Sql *q, const SearchPlan *p)
{
    const SearchValue *v = &p->near->values[0];
    if (q->driving == p->near) {
        sql_add(q, "g.gd");
        return;
    }
    if (!p->near_via) {
        sql_add(q, "(SELECT ror_distance(lat, lon, ");
        sql_real(q, v->lat);
        sql_add(q, ", ");
        sql_real(q, v->lon);
        sql_add(q, ") FROM sp_geo WHERE id = r.pk)");
        return;
    }
    sql_add(q, "(SELECT min(ror_distance(g.lat, g.lon, ");
    sql_real(q, v->lat);
    sql_add(q, ", ");
    sql_real(q, v->lon);
    sql_add(q, ")) FROM sp_reference s JOIN resource t ON t.type = s.ttype AND t.id = s.tid"
               " JOIN sp_geo g ON g.id = t.pk WHERE s.res = r.pk AND s.param = ");
    sql_param(q, p->type, p->near_via->sp->code);
    sql_add(q, " AND t.type = ");
    sql_text(q, p->near_via->chain_type);
    sql_add(q, " AND t.deleted = 0 AND ror_distance(g.lat, g.lon, ");
    sql_real(q, v->lat);
    sql_add(q, ", ");
    sql_real(q, v->lon);
    sql_add(q, ") <= ");
    sql_real(q, v->radius_m);
    sql_add(q, ")");
}

/* A subquery yielding the pk of every live resource of `type` that matches `c`. */
static void emit_set(Sql *q, Arena *a, const SearchClause *c, const char *type)
{
    if (c->reverse) {
        sql_add(q, "SELECT t.pk FROM sp_reference s JOIN resource t ON t.type = s.ttype AND "
                   "t.id = s.tid WHERE s.param = ");
        sql_param(q, c->chain_type, c->sp->code);
        sql_add(q, " AND s.ttype = ");
        sql_text(q, type);
        sql_add(q, " AND t.deleted = 0 AND s.res IN (SELECT t.pk FROM resource t WHERE t.type = ");
        sql_text(q, c->chain_type);
        sql_add(q, " AND t.deleted = 0");
        emit_conds(q, a, c->chain, c->nchain, c->chain_type, "t.pk");
        sql_add(q, ")");
        return;
    }
    if (c->chain) {
        sql_add(q, "SELECT s.res FROM sp_reference s JOIN resource t ON t.type = s.ttype AND "
                   "t.id = s.tid WHERE s.param = ");
        sql_param(q, type, c->sp->code);
        sql_add(q, " AND t.type = ");
        sql_text(q, c->chain_type);
        sql_add(q, " AND t.deleted = 0");
        emit_conds(q, a, c->chain, c->nchain, c->chain_type, "t.pk");
        return;
    }
    if (sp_is_geo(c->sp)) {
        emit_geo_set(q, &c->values[0]);
        return;
    }
    bool negate = c->mod == MOD_NOT || (c->mod == MOD_MISSING && c->values[0].missing);
    if (negate) {
        sql_add(q, "SELECT pk FROM resource WHERE type = ");
        sql_text(q, type);
        sql_add(q, " AND deleted = 0 AND pk NOT IN (");
    }
    sql_add(q, "SELECT res FROM ");
    sql_add(q, table_of(clause_kind(c)));
    sql_add(q, " WHERE param = ");
    sql_param(q, type, c->param);
    if (c->mod != MOD_MISSING) {
        sql_add(q, " AND ");
        emit_values(q, a, c, "");
    }
    if (negate)
        sql_add(q, ")");
}

/* Does the clause take part in its parameter's correlation group? (Negations and chains keep
 * their own set semantics.) */
static int clause_group(const SearchClause *c)
{
    if (c->chain || c->reverse || c->mod == MOD_NOT || c->mod == MOD_MISSING ||
        c->mod == MOD_IDENTIFIER || c->mod == MOD_OF_TYPE)
        return 0;
    return c->sp->group;
}

/* The clauses of one correlation group as ONE subquery: the first criterion drives (through its
 * value index), every other one is an EXISTS on the same resource and group element. Linear in
 * the number of criteria, unlike a self-join whose planning grows with the join count. */
static void emit_group(Sql *q, Arena *a, const SearchClause *cs, size_t n, int group,
                       const char *type)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (clause_group(&cs[i]) != group)
            continue;
        const char *table = table_of(clause_kind(&cs[i]));
        char pre[16];
        snprintf(pre, sizeof pre, "g%zu.", k);
        if (k == 0) {
            sql_add(q, arena_printf(
                           a, "SELECT g0.res FROM %s g0 WHERE g0.grp > 0 AND g0.param = ", table));
        } else {
            sql_add(q, arena_printf(a,
                                    " AND EXISTS (SELECT 1 FROM %s g%zu WHERE g%zu.res = g0.res "
                                    "AND g%zu.grp = g0.grp AND g%zu.param = ",
                                    table, k, k, k, k));
        }
        sql_param(q, type, cs[i].param);
        sql_add(q, " AND ");
        emit_values(q, a, &cs[i], pre);
        if (k > 0)
            sql_add(q, ")");
        k++;
    }
}

/* Each independent criterion (a clause, or a whole correlation group) as a set of pks, written
 * between `open` and `close`; `first` replaces `open` for the first one. Returns the count. */
static size_t emit_units(Sql *q, Arena *a, const SearchClause *cs, size_t n, const char *type,
                         const char *first, const char *open, const char *close)
{
    int done[64];
    size_t ndone = 0, units = 0;
    for (size_t i = 0; i < n; i++) {
        if (&cs[i] == q->driving)
            continue; /* the FROM clause already holds it */
        int g = clause_group(&cs[i]);
        if (g) {
            bool seen = false;
            for (size_t k = 0; k < ndone; k++)
                seen |= done[k] == g;
            if (seen)
                continue;
            if (ndone < 64)
                done[ndone++] = g;
        }
        sql_add(q, units++ ? open : first);
        if (g)
            emit_group(q, a, cs, n, g, type);
        else
            emit_set(q, a, &cs[i], type);
        sql_add(q, close);
    }
    return units;
}

/* AND of clauses on resources of `type` whose pk is `pkcol`. */
static void emit_conds(Sql *q, Arena *a, const SearchClause *cs, size_t n, const char *type,
                       const char *pkcol)
{
    const char *open = arena_printf(a, " AND %s IN (", pkcol);
    emit_units(q, a, cs, n, type, open, open, ")");
}

/* The number of matches. The criteria's sets hold only live resources of the type (index rows
 * are removed with their resource), so their intersection is counted without touching
 * `resource`. */
static void emit_count(Sql *q, Arena *a, const SearchPlan *p)
{
    if (p->nclauses == 0) {
        sql_add(q, "SELECT count(*) FROM resource r WHERE r.type = ");
        sql_text(q, p->type);
        sql_add(q, " AND r.deleted = 0");
        return;
    }
    size_t mark = q->text.len, nbinds = q->n;
    sql_add(q, "SELECT count(*) FROM (");
    size_t units = emit_units(q, a, p->clauses, p->nclauses, p->type, "", " INTERSECT ", "");
    sql_add(q, ")");
    if (units == 1) { /* one set may repeat a pk (several matching values): count it once */
        q->text.len = mark;
        q->n = nbinds;
        sql_add(q, "SELECT count(*) FROM (SELECT DISTINCT * FROM (");
        emit_units(q, a, p->clauses, p->nclauses, p->type, "", "", "");
        sql_add(q, "))");
    }
}

static void emit_where(Sql *q, Arena *a, const SearchPlan *p)
{
    sql_add(q, " WHERE r.type = ");
    sql_text(q, p->type);
    sql_add(q, " AND r.deleted = 0");
    emit_conds(q, a, p->clauses, p->nclauses, p->type, "r.pk");
}

/* ------------------------------------------------------------------ sorting and cursors */

static void emit_sort_expr(Sql *q, const SearchPlan *p, const SearchSort *s)
{
    if (!s->sp) { /* _sort=near (the parser checked that the plan has a near criterion) */
        sql_add(q, "coalesce(");
        emit_distance(q, p);
        sql_add(q, ", 9e999)");
        return;
    }
    const char *col;
    switch (s->sp->type) {
    case SP_TOKEN: col = "code"; break;
    case SP_STRING: col = "folded"; break;
    case SP_REFERENCE: col = "tid"; break;
    case SP_DATE: col = s->desc ? "hi" : "lo"; break;
    case SP_URI: col = "uri"; break;
    default: col = "value"; break;
    }
    /* missing values sort last in both directions: the largest blob ascending, -inf descending */
    sql_add(q, "coalesce((SELECT ");
    sql_add(q, s->desc ? "max(" : "min(");
    sql_add(q, col);
    sql_add(q, ") FROM ");
    sql_add(q, table_of(s->sp->type));
    sql_add(q, " WHERE res = r.pk AND param = ");
    sql_param(q, p->type, s->sp->code);
    sql_add(q, s->desc ? "), -9e999)" : "), X'FFFFFFFF')");
}

/* Cursor: JSON array of the last row's sort values then its pk: [["t","abc"],["r",1.5],7]. */
static char *cursor_make(sqlite3_stmt *st, int first_sort_col, size_t nsorts, int64_t pk)
{
    json_t *arr = json_array();
    for (size_t i = 0; i < nsorts; i++) {
        int col = first_sort_col + (int)i;
        json_t *v;
        switch (sqlite3_column_type(st, col)) {
        case SQLITE_INTEGER:
            v = json_pack("[sI]", "i", (json_int_t)sqlite3_column_int64(st, col));
            break;
        case SQLITE_FLOAT: {
            double r = sqlite3_column_double(st, col);
            v = isinf(r) ? json_pack("[s]", "-inf") : json_pack("[sf]", "r", r);
            break;
        }
        case SQLITE_TEXT:
            v = json_pack("[ss%]", "t", (const char *)sqlite3_column_text(st, col),
                          (size_t)sqlite3_column_bytes(st, col));
            break;
        default: v = json_pack("[s]", "max"); break;
        }
        json_array_append_new(arr, v ? v : json_null());
    }
    json_array_append_new(arr, json_integer(pk));
    char *s = json_dumps(arr, JSON_COMPACT | JSON_REAL_PRECISION(17));
    json_decref(arr);
    return s;
}

/* Decode a cursor into binds (one per sort key) and the pk. ERR_INVALID when malformed. */
static int cursor_parse(Arena *a, const char *cur, size_t nsorts, Bind *vals, int64_t *pk, Diag *d)
{
    json_t *arr = NULL;
    int rc = json_parse(cur, strlen(cur), &arr, NULL);
    if (rc != 0 || !json_is_array(arr) || json_array_size(arr) != nsorts + 1 ||
        !json_is_integer(json_array_get(arr, nsorts)))
        goto bad;
    for (size_t i = 0; i < nsorts; i++) {
        json_t *e = json_array_get(arr, i);
        const char *k = json_string_value(json_array_get(e, 0));
        json_t *v = json_array_get(e, 1);
        memset(&vals[i], 0, sizeof vals[i]);
        if (!k)
            goto bad;
        if (strcmp(k, "i") == 0 && json_is_integer(v)) {
            vals[i].kind = B_INT;
            vals[i].i = json_integer_value(v);
        } else if (strcmp(k, "r") == 0 && json_is_number(v)) {
            vals[i].kind = B_REAL;
            vals[i].r = json_number_value(v);
        } else if (strcmp(k, "t") == 0 && json_is_string(v)) {
            vals[i].kind = B_TEXT;
            vals[i].s = arena_strndup(a, json_string_value(v), json_string_length(v));
        } else if (strcmp(k, "-inf") == 0) {
            vals[i].kind = B_REAL;
            vals[i].r = -INFINITY;
        } else if (strcmp(k, "max") == 0) {
            vals[i].kind = B_MAXBLOB;
        } else {
            goto bad;
        }
    }
    *pk = json_integer_value(json_array_get(arr, nsorts));
    json_decref(arr);
    return 0;
bad:
    json_decref(arr);
    return diag_set(d, ERR_INVALID, "curseur de pagination invalide");
}

static void sql_bind_value(Sql *q, const Bind *v)
{
    Bind *b = bind_push(q);
    *b = *v;
}

/* (s1 > v1) OR (s1 = v1 AND s2 > v2) ... OR (s1 = v1 ... AND r.pk > pk); < for descending. */
static void emit_keyset(Sql *q, const SearchPlan *p, const Bind *vals, int64_t pk)
{
    sql_add(q, " AND (");
    for (size_t k = 0; k <= p->nsorts; k++) {
        if (k)
            sql_add(q, " OR ");
        sql_add(q, "(1");
        for (size_t j = 0; j < k; j++) {
            sql_add(q, " AND ");
            emit_sort_expr(q, p, &p->sorts[j]);
            sql_add(q, " = ");
            sql_bind_value(q, &vals[j]);
        }
        sql_add(q, " AND ");
        if (k < p->nsorts) {
            emit_sort_expr(q, p, &p->sorts[k]);
            sql_add(q, p->sorts[k].desc ? " < " : " > ");
            sql_bind_value(q, &vals[k]);
        } else {
            sql_add(q, "r.pk > ");
            sql_int(q, pk);
        }
        sql_add(q, ")");
    }
    sql_add(q, ")");
}

/* ------------------------------------------------------------------ execution */

#define RES_COLS "r.pk, r.type, r.id, r.version, r.last_updated, r.deleted, r.author, r.body"

static void row_fill(Arena *a, sqlite3_stmt *st, StoredResource *out, int64_t *pk)
{
    *pk = sqlite3_column_int64(st, 0);
    out->type = arena_strdup(a, (const char *)sqlite3_column_text(st, 1));
    out->id = arena_strdup(a, (const char *)sqlite3_column_text(st, 2));
    out->version = sqlite3_column_int64(st, 3);
    out->last_updated = sqlite3_column_int64(st, 4);
    out->deleted = sqlite3_column_int(st, 5) != 0;
    out->author = arena_strdup(a, (const char *)sqlite3_column_text(st, 6));
    out->len = (size_t)sqlite3_column_bytes(st, 7);
    out->body = arena_strndup(a, (const char *)sqlite3_column_text(st, 7), out->len);
    out->distance = NAN;
}

/* A growable set of resources with their pks (duplicates refused). */
typedef struct ResSet {
    StoredResource *items;
    int64_t *pks;
    size_t n, cap;
} ResSet;

static bool set_has(const ResSet *s, int64_t pk)
{
    for (size_t i = 0; i < s->n; i++)
        if (s->pks[i] == pk)
            return true;
    return false;
}

static void set_add(ResSet *s, const StoredResource *r, int64_t pk)
{
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 32;
        s->items = xrealloc(s->items, s->cap * sizeof *s->items);
        s->pks = xrealloc(s->pks, s->cap * sizeof *s->pks);
    }
    s->items[s->n] = *r;
    s->pks[s->n++] = pk;
}

static int step_rows(Conn *c, Arena *a, Sql *q, const ResSet *matches, ResSet *inc, Diag *d)
{
    sqlite3_stmt *st = conn_stmt(c, q->text.p, d);
    if (!st)
        return ERR_IO;
    sql_bind_all(st, q);
    int step;
    while ((step = sqlite3_step(st)) == SQLITE_ROW && inc->n < INCLUDE_MAX) {
        int64_t pk = sqlite3_column_int64(st, 0);
        if (set_has(matches, pk) || set_has(inc, pk))
            continue;
        StoredResource r;
        row_fill(a, st, &r, &pk);
        set_add(inc, &r, pk);
    }
    sqlite3_reset(st);
    return step == SQLITE_ROW || step == SQLITE_DONE ? 0 : conn_error(c, d);
}

/* Apply one _include/_revinclude to the resources src->items[from..n). */
static int include_apply(Conn *c, Arena *a, const SearchInclude *inc, const ResSet *src,
                         size_t from, const ResSet *matches, ResSet *out, Diag *d)
{
    Sql q;
    sql_init(&q, c);
    int rc = 0;
    bool any = false;
    if (!inc->rev) {
        sql_add(&q, "SELECT t.pk, t.type, t.id, t.version, t.last_updated, t.deleted, "
                    "t.author, t.body FROM sp_reference s JOIN resource t ON t.type = s.ttype "
                    "AND t.id = s.tid WHERE t.deleted = 0 AND s.param = ");
        sql_param(&q, inc->src_type, inc->sp->code);
        if (inc->target_type) {
            sql_add(&q, " AND t.type = ");
            sql_text(&q, inc->target_type);
        }
        sql_add(&q, " AND s.res IN (");
        for (size_t i = from; i < src->n; i++)
            if (strcmp(src->items[i].type, inc->src_type) == 0) {
                if (any)
                    sql_add(&q, ",");
                sql_int(&q, src->pks[i]);
                any = true;
            }
        sql_add(&q, ")");
        if (any)
            rc = step_rows(c, a, &q, matches, out, d);
    } else {
        /* resources of src_type whose reference points at one of the set's resources */
        for (size_t i = from; i < src->n && rc == 0; i++) {
            if (!inc->sp->ntargets)
                continue;
            bool target = false;
            for (size_t k = 0; k < inc->sp->ntargets; k++)
                target |= strcmp(inc->sp->targets[k], src->items[i].type) == 0;
            if (!target)
                continue;
            q.text.len = 0;
            q.n = 0;
            sql_add(&q, "SELECT t.pk, t.type, t.id, t.version, t.last_updated, t.deleted, "
                        "t.author, t.body FROM sp_reference s JOIN resource t ON t.pk = s.res "
                        "WHERE t.deleted = 0 AND s.param = ");
            sql_param(&q, inc->src_type, inc->sp->code);
            sql_add(&q, " AND s.ttype = ");
            sql_text(&q, src->items[i].type);
            sql_add(&q, " AND s.tid = ");
            sql_text(&q, src->items[i].id);
            rc = step_rows(c, a, &q, matches, out, d);
        }
    }
    sql_cleanup(&q);
    return rc;
}

static int includes_run(Conn *c, Arena *a, const SearchPlan *p, const ResSet *matches, ResSet *inc,
                        Diag *d)
{
    /* round 1 on the matches; later rounds on what the previous round added, with the
     * :iterate includes (and, leniently, those whose source type is not the searched type) */
    for (size_t i = 0; i < p->nincludes; i++) {
        int rc = include_apply(c, a, &p->includes[i], matches, 0, matches, inc, d);
        if (rc != 0)
            return rc;
    }
    size_t from = 0;
    while (from < inc->n && inc->n < INCLUDE_MAX) {
        size_t upto = inc->n;
        for (size_t i = 0; i < p->nincludes; i++) {
            const SearchInclude *x = &p->includes[i];
            if (!x->iterate && strcmp(x->src_type, p->type) == 0)
                continue;
            ResSet window = {inc->items, inc->pks, upto, inc->cap};
            int rc = include_apply(c, a, x, &window, from, matches, inc, d);
            if (rc != 0)
                return rc;
        }
        from = upto;
    }
    return 0;
}

int search_run(Conn *c, Arena *a, const SearchPlan *p, StorePage *out, Diag *d)
{
    Sql q;
    int rc = 0;
    memset(out, 0, sizeof *out);
    out->total = -1;

    if (p->total == TOTAL_ACCURATE || p->summary_count || p->count == 0) {
        sql_init(&q, c);
        emit_count(&q, a, p);
        sqlite3_stmt *st = conn_stmt(c, q.text.p, d);
        if (!st) {
            sql_cleanup(&q);
            return ERR_IO;
        }
        sql_bind_all(st, &q);
        if (sqlite3_step(st) == SQLITE_ROW)
            out->total = sqlite3_column_int64(st, 0);
        else
            rc = conn_error(c, d);
        sqlite3_reset(st);
        sql_cleanup(&q);
        if (rc != 0 || p->summary_count || p->count == 0)
            return rc;
    }

    Bind *vals = arena_alloc(a, (p->nsorts + 1) * sizeof *vals);
    int64_t after_pk = 0;
    if (p->cursor && (rc = cursor_parse(a, p->cursor, p->nsorts, vals, &after_pk, d)) != 0)
        return rc;

    sql_init(&q, c);
    if (p->near && !p->near_via)
        q.driving = p->near;
    /* The page's keys are found and sorted on narrow rows (pk, sort keys, distance); only the
     * page's rows then fetch their bodies (a sort of thousands of rows with their bodies cost
     * more than the search). */
    sql_add(&q, "SELECT " RES_COLS);
    for (size_t i = 0; i < p->nsorts; i++) {
        char col[32];
        snprintf(col, sizeof col, ", t.s%zu", i);
        sql_add(&q, col);
    }
    int dist_col = 8 + (int)p->nsorts;
    if (p->near)
        sql_add(&q, ", t.dd");
    sql_add(&q, " FROM (SELECT r.pk AS k");
    for (size_t i = 0; i < p->nsorts; i++) {
        char col[32];
        snprintf(col, sizeof col, " AS s%zu", i);
        sql_add(&q, ", ");
        emit_sort_expr(&q, p, &p->sorts[i]);
        sql_add(&q, col);
    }
    if (p->near) {
        sql_add(&q, ", ");
        emit_distance(&q, p);
        sql_add(&q, " AS dd");
    }
    if (q.driving) {
        /* proximity drives: the positions in the box with their distance, then their
         * resources (no distance recomputed per row by a subquery) */
        sql_add(&q, " FROM (SELECT id AS gid, ror_distance(lat, lon, ");
        sql_real(&q, p->near->values[0].lat);
        sql_add(&q, ", ");
        sql_real(&q, p->near->values[0].lon);
        sql_add(&q, ") AS gd FROM sp_geo WHERE ");
        emit_geo_box(&q, &p->near->values[0]);
        sql_add(&q, ") g JOIN resource r ON r.pk = g.gid");
    } else {
        sql_add(&q, " FROM resource r");
    }
    emit_where(&q, a, p);
    if (q.driving) {
        sql_add(&q, " AND g.gd <= ");
        sql_real(&q, p->near->values[0].radius_m);
    }
    if (p->cursor)
        emit_keyset(&q, p, vals, after_pk);
    sql_add(&q, " ORDER BY ");
    for (size_t i = 0; i < p->nsorts; i++) {
        char col[32];
        snprintf(col, sizeof col, "s%zu%s, ", i, p->sorts[i].desc ? " DESC" : "");
        sql_add(&q, col);
    }
    sql_add(&q, "r.pk LIMIT ");
    sql_int(&q, p->count + 1);
    sql_add(&q, ") t JOIN resource r ON r.pk = t.k ORDER BY ");
    for (size_t i = 0; i < p->nsorts; i++) {
        char col[32];
        snprintf(col, sizeof col, "t.s%zu%s, ", i, p->sorts[i].desc ? " DESC" : "");
        sql_add(&q, col);
    }
    sql_add(&q, "t.k");
    if (q.text.overflow) {
        sql_cleanup(&q);
        return diag_set(d, ERR_TOO_LARGE, "requête trop complexe");
    }

    sqlite3_stmt *st = conn_stmt(c, q.text.p, d);
    if (!st) {
        sql_cleanup(&q);
        return ERR_IO;
    }
    sql_bind_all(st, &q);
    ResSet matches = {0};
    int step;
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        int64_t pk;
        if (matches.n == (size_t)p->count) {
            /* one more row exists: the cursor continues after the last row kept */
            sqlite3_reset(st);
            sql_bind_all(st, &q);
            break;
        }
        StoredResource r;
        row_fill(a, st, &r, &pk);
        if (p->near && sqlite3_column_type(st, dist_col) != SQLITE_NULL)
            r.distance = sqlite3_column_double(st, dist_col);
        set_add(&matches, &r, pk);
        if (matches.n == (size_t)p->count) {
            char *cur = cursor_make(st, 8, p->nsorts, pk);
            out->next_cursor = arena_strdup(a, cur);
            free(cur);
        }
    }
    if (step == SQLITE_DONE)
        out->next_cursor = NULL; /* the page was the last one */
    else if (step != SQLITE_ROW)
        rc = conn_error(c, d);
    sqlite3_reset(st);
    sql_cleanup(&q);

    ResSet inc = {0};
    if (rc == 0 && p->nincludes)
        rc = includes_run(c, a, p, &matches, &inc, d);
    if (rc == 0) {
        out->matches = arena_alloc(a, (matches.n + 1) * sizeof *out->matches);
        if (matches.n)
            memcpy(out->matches, matches.items, matches.n * sizeof *out->matches);
        out->nmatches = matches.n;
        out->included = arena_alloc(a, (inc.n + 1) * sizeof *out->included);
        if (inc.n)
            memcpy(out->included, inc.items, inc.n * sizeof *out->included);
        out->nincluded = inc.n;
    }
    free(matches.items);
    free(matches.pks);
    free(inc.items);
    free(inc.pks);
    return rc;
}
