/*
 * fhirpath.c — lexer, precedence-climbing parser and tree-walking evaluator of the FHIRPath
 * subset (see fhirpath.h).
 *
 * Compilation builds an immutable tree; every node is also listed in FhirPath.nodes so that
 * freeing is a flat loop (no recursion over client-controlled depth). Evaluation recursion is
 * bounded by the tree depth, checked at compile time (FP_MAX_DEPTH).
 *
 * Type rule for as()/ofType()/is(): an item whose type is known (choice member "valueXxx",
 * literal, count()) matches X when its type is X or a subtype of X (code/id/markdown < string,
 * url/canonical/oid/uuid < uri, positiveInt/unsignedInt < integer, Age/Count/Distance/
 * Duration/SimpleQuantity < Quantity), compared case-insensitively. An item of unknown type
 * (a plain member) gets a type inferred from its JSON shape (fp_type_infer: "coding" ->
 * CodeableConcept, "low"/"high" -> Range, JSON integer -> integer...) and matches when either
 * type is a subtype of the other; when the shape says nothing, an object matches any complex
 * type and a JSON string matches any string-like primitive. A resource (object with
 * resourceType) matches its resourceType, Resource and DomainResource.
 *
 * One deliberate deviation: `as(code)` / `ofType(code)` / `is(code)` also keep a CodeableConcept
 * or Coding. The ROR guide's SearchParameters write `.value.as(code)` for sub-extensions that
 * the profiles type CodeableConcept (capacityType, capacityStatus...); strict FHIRPath would
 * index nothing for them.
 */
#include <ctype.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "fhirpath/fhirpath_int.h"

/* ---------------------------------------------------------------- FHIR types */

static const char *const fhir_types[] = {
    "base64Binary",
    "boolean",
    "canonical",
    "code",
    "date",
    "dateTime",
    "decimal",
    "id",
    "instant",
    "integer",
    "markdown",
    "oid",
    "positiveInt",
    "string",
    "time",
    "unsignedInt",
    "uri",
    "url",
    "uuid",
    "Address",
    "Age",
    "Annotation",
    "Attachment",
    "CodeableConcept",
    "Coding",
    "ContactDetail",
    "ContactPoint",
    "Contributor",
    "Count",
    "DataRequirement",
    "Distance",
    "Dosage",
    "Duration",
    "Expression",
    "Extension",
    "HumanName",
    "Identifier",
    "Meta",
    "Money",
    "Narrative",
    "ParameterDefinition",
    "Period",
    "Quantity",
    "Range",
    "Ratio",
    "Reference",
    "RelatedArtifact",
    "SampledData",
    "Signature",
    "SimpleQuantity",
    "Timing",
    "TriggerDefinition",
    "UsageContext",
};

static const char *const choice_prefixes[] = {
    "value",     "effective", "onset", "abatement", "deceased",     "multipleBirth", "occurrence",
    "performed", "timing",    "born",  "serviced",  "defaultValue", "fixed",         "pattern",
};

const char *fp_type_from_suffix(const char *suffix, size_t len)
{
    if (len == 0 || !isupper((unsigned char)suffix[0]))
        return NULL;
    for (size_t i = 0; i < sizeof fhir_types / sizeof *fhir_types; i++) {
        const char *t = fhir_types[i];
        if (strlen(t) == len && toupper((unsigned char)t[0]) == suffix[0] &&
            memcmp(t + 1, suffix + 1, len - 1) == 0)
            return t;
    }
    return NULL;
}

bool fp_is_choice_prefix(const char *name, size_t len)
{
    for (size_t i = 0; i < sizeof choice_prefixes / sizeof *choice_prefixes; i++)
        if (strlen(choice_prefixes[i]) == len && memcmp(choice_prefixes[i], name, len) == 0)
            return true;
    return false;
}

/* The type of an explicitly named choice member ("valueCodeableConcept"), else NULL. */
static const char *type_of_key(const char *key)
{
    size_t i = 0;
    while (key[i] && !isupper((unsigned char)key[i]))
        i++;
    if (!key[i] || !fp_is_choice_prefix(key, i))
        return NULL;
    return fp_type_from_suffix(key + i, strlen(key + i));
}

static const char *type_parent(const char *t)
{
    static const char *const pairs[][2] = {
        {"code", "string"},
        {"id", "string"},
        {"markdown", "string"},
        {"url", "uri"},
        {"canonical", "uri"},
        {"oid", "uri"},
        {"uuid", "uri"},
        {"positiveInt", "integer"},
        {"unsignedInt", "integer"},
        {"Age", "Quantity"},
        {"Count", "Quantity"},
        {"Distance", "Quantity"},
        {"Duration", "Quantity"},
        {"SimpleQuantity", "Quantity"},
    };
    for (size_t i = 0; i < sizeof pairs / sizeof *pairs; i++)
        if (strcmp(pairs[i][0], t) == 0)
            return pairs[i][1];
    return NULL;
}

/* t is x or a subtype of x. */
static bool type_is(const char *t, const char *x)
{
    for (; t; t = type_parent(t))
        if (strcasecmp(t, x) == 0)
            return true;
    return false;
}

static bool has(const json_t *o, const char *k)
{
    return json_object_get(o, k) != NULL;
}

const char *fp_type_infer(const json_t *v)
{
    if (json_is_boolean(v))
        return "boolean";
    if (json_is_integer(v))
        return "integer";
    if (json_is_real(v))
        return "decimal";
    if (!json_is_object(v))
        return NULL;
    const json_t *val = json_object_get(v, "value");
    const json_t *sys = json_object_get(v, "system");
    if (has(v, "coding"))
        return "CodeableConcept";
    if (has(v, "reference"))
        return "Reference";
    if (has(v, "low") || has(v, "high"))
        return "Range";
    if (has(v, "start") || has(v, "end"))
        return "Period";
    if (has(v, "numerator") || has(v, "denominator"))
        return "Ratio";
    if (has(v, "currency"))
        return "Money";
    if (json_is_number(val))
        return "Quantity";
    if (has(v, "url") && !has(v, "contentType"))
        return "Extension";
    if (json_is_string(val))
        return json_is_string(sys) && !strchr(json_string_value(sys), ':') ? "ContactPoint"
                                                                           : "Identifier";
    if (has(v, "code") || json_is_string(sys))
        return "Coding";
    if (has(v, "family") || has(v, "given"))
        return "HumanName";
    if (has(v, "city") || has(v, "line") || has(v, "postalCode") || has(v, "country"))
        return "Address";
    if (has(v, "contentType") || has(v, "data"))
        return "Attachment";
    if (has(v, "lastUpdated") || has(v, "versionId") || has(v, "profile"))
        return "Meta";
    if (has(v, "div"))
        return "Narrative";
    return NULL;
}

static bool is_resource_name(const char *x)
{
    return strcmp(x, "Resource") == 0 || strcmp(x, "DomainResource") == 0;
}

static bool item_is_type(const FpItem *it, const char *x)
{
    const json_t *rt = json_is_object(it->node) ? json_object_get(it->node, "resourceType") : NULL;
    if (json_is_string(rt))
        return strcmp(json_string_value(rt), x) == 0 || is_resource_name(x);
    const char *shape = it->type ? it->type : fp_type_infer(it->node);
    if (shape && strcmp(x, "code") == 0 &&
        (strcmp(shape, "CodeableConcept") == 0 || strcmp(shape, "Coding") == 0))
        return true;                     /* ROR compatibility, see the file comment */
    if (it->type && is_resource_name(x)) /* a resolve()d reference is typed by a resource name */
        return isupper((unsigned char)it->type[0]) &&
               !fp_type_from_suffix(it->type, strlen(it->type));
    if (it->type)
        return type_is(it->type, x);
    if (shape)
        return type_is(shape, x) || type_is(x, shape);
    if (json_is_object(it->node))
        return isupper((unsigned char)x[0]) && !is_resource_name(x);
    if (json_is_string(it->node))
        return type_is(x, "string") || type_is(x, "uri") || strcasecmp(x, "date") == 0 ||
               strcasecmp(x, "dateTime") == 0 || strcasecmp(x, "instant") == 0 ||
               strcasecmp(x, "time") == 0 || strcasecmp(x, "base64Binary") == 0;
    return false;
}

/* ---------------------------------------------------------------- syntax tree */

enum { N_LIT, N_THIS, N_VAR, N_IDENT, N_FUNC, N_INDEX, N_BIN, N_TYPEOP };

enum {
    OP_IMPLIES = 1,
    OP_OR,
    OP_XOR,
    OP_AND,
    OP_EQ,
    OP_NE,
    OP_EQUIV,
    OP_NEQUIV,
    OP_LT,
    OP_GT,
    OP_LE,
    OP_GE,
    OP_UNION,
    OP_IS,
    OP_AS,
};

enum {
    F_WHERE,
    F_SELECT,
    F_ALL,
    F_EXISTS,
    F_EMPTY,
    F_NOT,
    F_FIRST,
    F_LAST,
    F_TAIL,
    F_SINGLE,
    F_COUNT,
    F_AS,
    F_OFTYPE,
    F_IS,
    F_EXTENSION,
    F_RESOLVE,
    F_HASVALUE,
    F_TRACE,
};

static const struct {
    const char *name;
    int minargs, maxargs;
    bool lambda;  /* the argument is evaluated once per input item */
    bool typearg; /* the argument is a type specifier */
} functions[] = {
    [F_WHERE] = {"where", 1, 1, true, false},
    [F_SELECT] = {"select", 1, 1, true, false},
    [F_ALL] = {"all", 1, 1, true, false},
    [F_EXISTS] = {"exists", 0, 1, true, false},
    [F_EMPTY] = {"empty", 0, 0, false, false},
    [F_NOT] = {"not", 0, 0, false, false},
    [F_FIRST] = {"first", 0, 0, false, false},
    [F_LAST] = {"last", 0, 0, false, false},
    [F_TAIL] = {"tail", 0, 0, false, false},
    [F_SINGLE] = {"single", 0, 0, false, false},
    [F_COUNT] = {"count", 0, 0, false, false},
    [F_AS] = {"as", 1, 1, false, true},
    [F_OFTYPE] = {"ofType", 1, 1, false, true},
    [F_IS] = {"is", 1, 1, false, true},
    [F_EXTENSION] = {"extension", 1, 1, false, false},
    [F_RESOLVE] = {"resolve", 0, 0, false, false},
    [F_HASVALUE] = {"hasValue", 0, 0, false, false},
    [F_TRACE] = {"trace", 1, 1, false, false},
};

typedef struct Node {
    int kind;
    int op;             /* OP_* or F_* */
    size_t pos;         /* offset in the source, for messages */
    int depth;          /* height of the subtree */
    struct Node *focus; /* invocation target or left operand; NULL = the current focus */
    struct Node *arg;   /* function argument, indexer or right operand */
    char *name;         /* member, function, variable or type name */
    json_t *lit;        /* literal value (owned) */
    const char *type;   /* literal type */
} Node;

struct FhirPath {
    char *src;
    Node *root;
    Node **nodes;
    size_t nn, cap;
};

/* ---------------------------------------------------------------- lexer */

enum {
    T_EOF,
    T_IDENT,
    T_STRING,
    T_NUMBER,
    T_DATE,
    T_THIS,
    T_VAR,
    T_DOT,
    T_COMMA,
    T_LP,
    T_RP,
    T_LB,
    T_RB,
    T_LBRACE,
    T_RBRACE,
    T_PIPE,
    T_EQ,
    T_NE,
    T_EQUIV,
    T_NEQUIV,
    T_LT,
    T_GT,
    T_LE,
    T_GE,
    T_OTHER,
};

typedef struct Parser {
    FhirPath *fp;
    const char *s;
    size_t len, pos;
    int tok;
    size_t tpos, tlen; /* token text */
    char *text;        /* decoded identifier, string or variable (owned) */
    bool quoted;       /* `backtick` identifier: never a keyword */
    int nest;
    Diag *d;
    int err;
} Parser;

static int syntax_error(Parser *p, size_t pos, const char *what)
{
    if (!p->err)
        p->err = diag_set(p->d, ERR_INVALID, "Expression FHIRPath invalide à la position %zu : %s",
                          pos + 1, what);
    return p->err;
}

static void put_utf8(char *o, size_t *n, unsigned cp)
{
    if (cp < 0x80) {
        o[(*n)++] = (char)cp;
    } else if (cp < 0x800) {
        o[(*n)++] = (char)(0xC0 | cp >> 6);
        o[(*n)++] = (char)(0x80 | (cp & 0x3F));
    } else {
        o[(*n)++] = (char)(0xE0 | cp >> 12);
        o[(*n)++] = (char)(0x80 | ((cp >> 6) & 0x3F));
        o[(*n)++] = (char)(0x80 | (cp & 0x3F));
    }
}

/* Decode a quoted string or identifier whose opening quote is at p->pos. */
static int lex_quoted(Parser *p, char q)
{
    size_t i = p->pos + 1, n = 0;
    char *o = xmalloc(p->len - p->pos + 1);
    for (;;) {
        if (i >= p->len) {
            free(o);
            return syntax_error(
                p, p->pos, q == '`' ? "'`' fermant manquant" : "apostrophe fermante manquante");
        }
        char c = p->s[i++];
        if (c == q)
            break;
        if (c != '\\') {
            o[n++] = c;
            continue;
        }
        char e = i < p->len ? p->s[i++] : '\0';
        unsigned cp = 0;
        switch (e) {
        case '\'':
        case '"':
        case '`':
        case '\\':
        case '/': o[n++] = e; break;
        case 'n': o[n++] = '\n'; break;
        case 'r': o[n++] = '\r'; break;
        case 't': o[n++] = '\t'; break;
        case 'f': o[n++] = '\f'; break;
        case 'u':
            for (int k = 0; k < 4; k++, i++) {
                if (i >= p->len || !isxdigit((unsigned char)p->s[i]))
                    goto bad_escape;
                char h = (char)tolower((unsigned char)p->s[i]);
                cp = cp * 16 + (unsigned)(h <= '9' ? h - '0' : h - 'a' + 10);
            }
            if (cp == 0 || (cp >= 0xD800 && cp <= 0xDFFF))
                goto bad_escape;
            put_utf8(o, &n, cp);
            break;
        default: goto bad_escape;
        }
    }
    o[n] = '\0';
    p->text = o;
    p->tlen = i - p->pos;
    return 0;
bad_escape:
    free(o);
    return syntax_error(p, i - 1, "séquence d'échappement invalide");
}

static int lex(Parser *p)
{
    free(p->text);
    p->text = NULL;
    p->quoted = false;
    for (;;) { /* white space and // comments */
        while (p->pos < p->len && isspace((unsigned char)p->s[p->pos]))
            p->pos++;
        if (p->pos + 1 >= p->len || p->s[p->pos] != '/' || p->s[p->pos + 1] != '/')
            break;
        while (p->pos < p->len && p->s[p->pos] != '\n')
            p->pos++;
    }
    p->tpos = p->pos;
    p->tlen = 1;
    if (p->pos >= p->len) {
        p->tok = T_EOF;
        p->tlen = 0;
        return 0;
    }
    const char *c = p->s + p->pos;
    size_t rest = p->len - p->pos, n = 0;
    if (isalpha((unsigned char)c[0]) || c[0] == '_' || c[0] == '$' || c[0] == '%') {
        n = 1;
        while (n < rest && (isalnum((unsigned char)c[n]) || c[n] == '_'))
            n++;
        if (c[0] == '$' && !(n == 5 && memcmp(c, "$this", 5) == 0))
            return syntax_error(p, p->pos, "seule la variable $this est prise en charge");
        if (c[0] == '%' && n == 1)
            return syntax_error(p, p->pos, "nom de variable attendu après '%'");
        p->tok = c[0] == '$' ? T_THIS : c[0] == '%' ? T_VAR : T_IDENT;
        p->text = xstrndup(c, n);
    } else if (isdigit((unsigned char)c[0])) {
        while (n < rest && isdigit((unsigned char)c[n]))
            n++;
        if (n + 1 < rest && c[n] == '.' && isdigit((unsigned char)c[n + 1]))
            for (n++; n < rest && isdigit((unsigned char)c[n]);)
                n++;
        p->tok = T_NUMBER;
        p->text = xstrndup(c, n);
    } else if (c[0] == '@') {
        n = 1;
        while (n < rest && (isalnum((unsigned char)c[n]) || strchr("-:.+", c[n])))
            n++;
        if (n == 1)
            return syntax_error(p, p->pos, "date attendue après '@'");
        p->tok = T_DATE;
        p->text = xstrndup(c + 1, n - 1);
    } else if (c[0] == '\'' || c[0] == '`') {
        if (lex_quoted(p, c[0]) != 0)
            return p->err;
        p->tok = c[0] == '\'' ? T_STRING : T_IDENT;
        p->quoted = c[0] == '`';
        p->pos += p->tlen;
        return 0;
    } else {
        static const struct {
            const char *s;
            int tok;
        } punct[] = {
            {"!=", T_NE},    {"!~", T_NEQUIV}, {"<=", T_LE},  {">=", T_GE}, {".", T_DOT},
            {",", T_COMMA},  {"(", T_LP},      {")", T_RP},   {"[", T_LB},  {"]", T_RB},
            {"{", T_LBRACE}, {"}", T_RBRACE},  {"|", T_PIPE}, {"=", T_EQ},  {"~", T_EQUIV},
            {"<", T_LT},     {">", T_GT},
        };
        p->tok = T_OTHER;
        n = 1;
        for (size_t i = 0; i < sizeof punct / sizeof *punct; i++) {
            size_t l = strlen(punct[i].s);
            if (l <= rest && memcmp(c, punct[i].s, l) == 0) {
                p->tok = punct[i].tok;
                n = l;
                break;
            }
        }
    }
    p->tlen = n;
    p->pos += n;
    return 0;
}

/* ---------------------------------------------------------------- parser */

static Node *node_new(Parser *p, int kind, size_t pos)
{
    FhirPath *fp = p->fp;
    if (fp->nn == fp->cap) {
        fp->cap = fp->cap ? fp->cap * 2 : 32;
        fp->nodes = xrealloc(fp->nodes, fp->cap * sizeof *fp->nodes);
    }
    Node *n = xcalloc(1, sizeof *n);
    n->kind = kind;
    n->pos = pos;
    n->depth = 1;
    fp->nodes[fp->nn++] = n;
    return n;
}

/* Link children and check the tree height that bounds evaluation recursion. */
static Node *node_link(Parser *p, Node *n, Node *focus, Node *arg)
{
    n->focus = focus;
    n->arg = arg;
    if (focus && focus->depth + 1 > n->depth)
        n->depth = focus->depth + 1;
    if (arg && arg->depth + 1 > n->depth)
        n->depth = arg->depth + 1;
    if (n->depth > FP_MAX_DEPTH) {
        syntax_error(p, n->pos, "expression trop profonde");
        return NULL;
    }
    return n;
}

static bool tok_is(const Parser *p, const char *kw)
{
    return p->tok == T_IDENT && !p->quoted && strcmp(p->text, kw) == 0;
}

static int binop_of(const Parser *p, int *prec)
{
    static const struct {
        int tok;
        const char *kw;
        int op, prec;
    } ops[] = {
        {T_IDENT, "implies", OP_IMPLIES, 1},
        {T_IDENT, "or", OP_OR, 2},
        {T_IDENT, "xor", OP_XOR, 2},
        {T_IDENT, "and", OP_AND, 3},
        {T_EQ, NULL, OP_EQ, 5},
        {T_NE, NULL, OP_NE, 5},
        {T_EQUIV, NULL, OP_EQUIV, 5},
        {T_NEQUIV, NULL, OP_NEQUIV, 5},
        {T_LT, NULL, OP_LT, 6},
        {T_GT, NULL, OP_GT, 6},
        {T_LE, NULL, OP_LE, 6},
        {T_GE, NULL, OP_GE, 6},
        {T_PIPE, NULL, OP_UNION, 7},
        {T_IDENT, "is", OP_IS, 8},
        {T_IDENT, "as", OP_AS, 8},
    };
    for (size_t i = 0; i < sizeof ops / sizeof *ops; i++) {
        if (ops[i].tok == p->tok && (!ops[i].kw || tok_is(p, ops[i].kw))) {
            *prec = ops[i].prec;
            return ops[i].op;
        }
    }
    return 0;
}

static Node *parse_expr(Parser *p, int minprec);

static Node *expect(Parser *p, int tok, const char *what, Node *n)
{
    if (!n)
        return NULL;
    if (p->tok != tok) {
        char msg[64];
        snprintf(msg, sizeof msg, "%s attendu", what);
        syntax_error(p, p->tpos, msg);
        return NULL;
    }
    return lex(p) == 0 ? n : NULL;
}

/* A type specifier: Name or FHIR.Name / System.Name. */
static Node *parse_type(Parser *p, Node *n)
{
    if (p->tok != T_IDENT) {
        syntax_error(p, p->tpos, "nom de type attendu");
        return NULL;
    }
    n->name = p->text;
    p->text = NULL;
    if (lex(p) != 0)
        return NULL;
    if ((strcmp(n->name, "FHIR") == 0 || strcmp(n->name, "System") == 0) && p->tok == T_DOT) {
        if (lex(p) != 0)
            return NULL;
        if (p->tok != T_IDENT) {
            syntax_error(p, p->tpos, "nom de type attendu");
            return NULL;
        }
        free(n->name);
        n->name = p->text;
        p->text = NULL;
        if (lex(p) != 0)
            return NULL;
    }
    return n;
}

/* name(args) or name, applied to `focus` (NULL: the current focus). Current token: name. */
static Node *parse_invocation(Parser *p, Node *focus)
{
    size_t pos = p->tpos;
    char *name = p->text;
    p->text = NULL;
    if (lex(p) != 0) {
        free(name);
        return NULL;
    }
    if (p->tok != T_LP) {
        Node *n = node_new(p, N_IDENT, pos);
        n->name = name;
        return node_link(p, n, focus, NULL);
    }
    Node *n = node_new(p, N_FUNC, pos);
    n->name = name;
    size_t f = 0, nf = sizeof functions / sizeof *functions;
    while (f < nf && strcmp(functions[f].name, name) != 0)
        f++;
    if (f == nf) {
        char msg[160];
        bool ascii = strlen(name) <= 100;
        for (const char *q = name; *q && ascii; q++)
            ascii = isprint((unsigned char)*q);
        /* the message reaches JSON: never echo bytes that may not be UTF-8 */
        snprintf(msg, sizeof msg, "fonction inconnue ou non prise en charge '%s'",
                 ascii ? name : "?");
        syntax_error(p, pos, msg);
        return NULL;
    }
    n->op = (int)f;
    if (lex(p) != 0)
        return NULL;
    Node *arg = NULL;
    int nargs = 0;
    if (p->tok != T_RP) {
        nargs = 1;
        if (functions[f].typearg) {
            arg = parse_type(p, node_new(p, N_LIT, p->tpos));
        } else {
            arg = parse_expr(p, 0);
        }
        if (!arg)
            return NULL;
        if (p->tok == T_COMMA)
            nargs = 2;
    }
    if (nargs < functions[f].minargs || nargs > functions[f].maxargs) {
        char msg[160];
        snprintf(msg, sizeof msg, "mauvais nombre d'arguments pour la fonction '%s'", name);
        syntax_error(p, pos, msg);
        return NULL;
    }
    return expect(p, T_RP, "')'", node_link(p, n, focus, arg));
}

static Node *parse_literal(Parser *p)
{
    Node *n = node_new(p, N_LIT, p->tpos);
    if (p->tok == T_STRING) {
        n->lit = json_string(p->text);
        n->type = "string";
        if (!n->lit) {
            syntax_error(p, p->tpos, "chaîne qui n'est pas de l'UTF-8 valide");
            return NULL;
        }
    } else if (p->tok == T_DATE) {
        n->lit = json_string(p->text);
        n->type = p->text[0] == 'T' ? "time" : strchr(p->text, 'T') ? "dateTime" : "date";
    } else if (p->tok == T_NUMBER) {
        errno = 0;
        long long v = strtoll(p->text, NULL, 10);
        if (!strchr(p->text, '.') && errno == 0) {
            n->lit = json_integer(v);
            n->type = "integer";
        } else {
            n->lit = json_real(strtod(p->text, NULL));
            n->type = "decimal";
        }
    } else {
        n->lit = tok_is(p, "true") ? json_true() : json_false();
        n->type = "boolean";
    }
    return lex(p) == 0 ? n : NULL;
}

static Node *parse_primary(Parser *p)
{
    size_t pos = p->tpos;
    switch (p->tok) {
    case T_LP: {
        if (lex(p) != 0)
            return NULL;
        return expect(p, T_RP, "')'", parse_expr(p, 0));
    }
    case T_STRING:
    case T_NUMBER:
    case T_DATE: return parse_literal(p);
    case T_THIS: {
        Node *n = node_new(p, N_THIS, pos);
        return lex(p) == 0 ? n : NULL;
    }
    case T_VAR: {
        static const char *const vars[] = {"%resource", "%rootResource", "%context", "%ucum"};
        Node *n = node_new(p, N_VAR, pos);
        for (size_t i = 0; i < sizeof vars / sizeof *vars; i++)
            if (strcmp(p->text, vars[i]) == 0)
                n->op = (int)i + 1;
        if (!n->op) {
            syntax_error(p, pos, "variable inconnue");
            return NULL;
        }
        return lex(p) == 0 ? n : NULL;
    }
    case T_LBRACE: {
        Node *n = node_new(p, N_LIT, pos);
        if (lex(p) != 0)
            return NULL;
        return expect(p, T_RBRACE, "'}'", n);
    }
    case T_IDENT:
        if (tok_is(p, "true") || tok_is(p, "false"))
            return parse_literal(p);
        return parse_invocation(p, NULL);
    case T_EOF: syntax_error(p, pos, "fin d'expression inattendue"); return NULL;
    default: syntax_error(p, pos, "terme attendu"); return NULL;
    }
}

static Node *parse_unary(Parser *p)
{
    if (p->tok == T_OTHER && (p->s[p->tpos] == '-' || p->s[p->tpos] == '+')) {
        bool neg = p->s[p->tpos] == '-';
        size_t pos = p->tpos;
        if (lex(p) != 0)
            return NULL;
        if (p->tok != T_NUMBER) {
            syntax_error(p, pos, "signe accepté seulement devant un nombre");
            return NULL;
        }
        Node *n = parse_literal(p);
        if (n && neg && json_is_integer(n->lit))
            json_integer_set(n->lit, -json_integer_value(n->lit));
        else if (n && neg)
            json_real_set(n->lit, -json_real_value(n->lit));
        return n;
    }
    Node *n = parse_primary(p);
    while (n && (p->tok == T_DOT || p->tok == T_LB)) {
        if (p->tok == T_DOT) {
            if (lex(p) != 0)
                return NULL;
            if (p->tok != T_IDENT) {
                syntax_error(p, p->tpos, "nom d'élément ou de fonction attendu après '.'");
                return NULL;
            }
            n = parse_invocation(p, n);
        } else {
            Node *ix = node_new(p, N_INDEX, p->tpos);
            if (lex(p) != 0)
                return NULL;
            Node *arg = parse_expr(p, 0);
            n = expect(p, T_RB, "']'", arg ? node_link(p, ix, n, arg) : NULL);
        }
    }
    return n;
}

static Node *parse_expr(Parser *p, int minprec)
{
    if (++p->nest > FP_MAX_NEST) {
        syntax_error(p, p->tpos, "expression trop imbriquée");
        return NULL;
    }
    Node *left = parse_unary(p);
    int prec = 0, op;
    while (left && (op = binop_of(p, &prec)) != 0 && prec >= minprec) {
        Node *n = node_new(p, op == OP_IS || op == OP_AS ? N_TYPEOP : N_BIN, p->tpos);
        n->op = op;
        if (lex(p) != 0)
            return NULL;
        if (op == OP_IS || op == OP_AS) {
            left = parse_type(p, n) ? node_link(p, n, left, NULL) : NULL;
            continue;
        }
        Node *right = parse_expr(p, prec + 1);
        left = right ? node_link(p, n, left, right) : NULL;
    }
    p->nest--;
    return left;
}

void fhirpath_free(FhirPath *fp)
{
    if (!fp)
        return;
    for (size_t i = 0; i < fp->nn; i++) {
        free(fp->nodes[i]->name);
        json_decref(fp->nodes[i]->lit);
        free(fp->nodes[i]);
    }
    free(fp->nodes);
    free(fp->src);
    free(fp);
}

int fhirpath_compile(const char *expr, FhirPath **out, Diag *d)
{
    if (!expr)
        return diag_set(d, ERR_INVALID, "Expression FHIRPath absente");
    size_t len = strlen(expr);
    if (len > FP_MAX_EXPR)
        return diag_set(d, ERR_INVALID, "Expression FHIRPath trop longue (%zu octets, maximum %d)",
                        len, FP_MAX_EXPR);
    FhirPath *fp = xcalloc(1, sizeof *fp);
    fp->src = xstrdup(expr);
    Parser p = {.fp = fp, .s = fp->src, .len = len, .d = d};
    if (lex(&p) != 0)
        goto fail;
    if (p.tok == T_EOF) {
        syntax_error(&p, 0, "expression vide");
        goto fail;
    }
    fp->root = parse_expr(&p, 0);
    if (!fp->root)
        goto fail;
    if (p.tok != T_EOF) {
        const char *c = p.s + p.tpos;
        if (p.tok == T_OTHER && !isprint((unsigned char)*c)) {
            syntax_error(&p, p.tpos, "caractère inattendu");
        } else if (p.tok == T_OTHER || tok_is(&p, "in") || tok_is(&p, "contains") ||
                   tok_is(&p, "div") || tok_is(&p, "mod")) {
            char msg[96];
            snprintf(msg, sizeof msg, "opérateur '%.*s' non pris en charge", (int)p.tlen, c);
            syntax_error(&p, p.tpos, msg);
        } else {
            syntax_error(&p, p.tpos, "fin d'expression attendue");
        }
        goto fail;
    }
    free(p.text);
    *out = fp;
    return 0;
fail:
    free(p.text);
    fhirpath_free(fp);
    return p.err ? p.err : ERR_INVALID;
}

const char *fhirpath_source(const FhirPath *fp)
{
    return fp->src;
}

/* ---------------------------------------------------------------- evaluation */

typedef struct Ctx {
    json_t *root;
    FpResult *own; /* computed values live here; moved to the caller's result on success */
    Diag *d;
} Ctx;

static void push(FpResult *r, FpItem it)
{
    if (r->n == r->cap) {
        r->cap = r->cap ? r->cap * 2 : 8;
        r->items = xrealloc(r->items, r->cap * sizeof *r->items);
    }
    r->items[r->n++] = it;
}

static void coll_free(FpResult *r)
{
    free(r->items);
    *r = (FpResult){0};
}

/* Push a computed value, which the result owns. Takes the reference `v`. */
static void push_value(Ctx *c, FpResult *r, json_t *v, const char *type)
{
    FpResult *o = c->own;
    if (o->nowned == o->capowned) {
        o->capowned = o->capowned ? o->capowned * 2 : 8;
        o->owned = xrealloc(o->owned, o->capowned * sizeof *o->owned);
    }
    o->owned[o->nowned++] = v;
    push(r, (FpItem){.node = v, .index = FP_NO_INDEX, .type = type});
}

static void push_bool(Ctx *c, FpResult *r, bool b)
{
    push_value(c, r, json_boolean(b), "boolean");
}

/* Push member `key` of `owner` (arrays flatten; JSON nulls, aligned with "_x" arrays, skipped). */
static void push_member(FpResult *r, json_t *owner, const char *key, const char *type)
{
    json_t *v = json_object_get(owner, key);
    if (json_is_array(v)) {
        for (size_t i = 0; i < json_array_size(v); i++)
            if (!json_is_null(json_array_get(v, i)))
                push(r, (FpItem){json_array_get(v, i), owner, key, i, type});
    } else if (v && !json_is_null(v)) {
        push(r, (FpItem){v, owner, key, FP_NO_INDEX, type});
    }
}

static void navigate(const FpItem *it, const char *name, FpResult *r)
{
    json_t *o = it->node;
    if (!json_is_object(o))
        return;
    if (isupper((unsigned char)name[0])) {
        const json_t *rt = json_object_get(o, "resourceType");
        if (json_is_string(rt)) {
            if (strcmp(json_string_value(rt), name) == 0 || is_resource_name(name))
                push(r, *it);
            return;
        }
    }
    void *iter = json_object_iter_at(o, name);
    if (iter) {
        /* the key string must come from the tree: the compiled path may die first */
        push_member(r, o, json_object_iter_key(iter), type_of_key(name));
        return;
    }
    size_t len = strlen(name);
    const char *key;
    json_t *v;
    json_object_foreach(o, key, v)
    {
        const char *t;
        if (strncmp(key, name, len) == 0 && (t = fp_type_from_suffix(key + len, strlen(key + len))))
            push_member(r, o, key, t);
    }
}

/* FHIRPath truth of a collection, leniently: -1 empty, else 0/1 (a non-boolean counts as true). */
static int truth(const FpResult *r)
{
    if (r->n == 0)
        return -1;
    if (r->n == 1 && json_is_boolean(r->items[0].node))
        return json_is_true(r->items[0].node);
    return 1;
}

static bool item_eq(const json_t *a, const json_t *b, bool equiv)
{
    if (json_is_number(a) && json_is_number(b))
        return json_number_value(a) == json_number_value(b);
    if (equiv && json_is_string(a) && json_is_string(b))
        return strcasecmp(json_string_value(a), json_string_value(b)) == 0;
    return json_equal(a, b);
}

static int eval(Ctx *c, const Node *n, const FpResult *focus, FpResult *r);

static int eval_single_string(Ctx *c, const Node *n, const FpResult *focus, const char **s)
{
    FpResult a = {0};
    int rc = eval(c, n, focus, &a);
    if (rc == 0 && (a.n != 1 || !json_is_string(a.items[0].node)))
        rc = diag_set(c->d, ERR_INVALID, "FHIRPath : une chaîne unique est attendue (position %zu)",
                      n->pos + 1);
    if (rc == 0)
        *s = json_string_value(a.items[0].node);
    coll_free(&a);
    return rc;
}

static void resolve_item(Ctx *c, const FpItem *it, FpResult *r)
{
    const json_t *ref = json_object_get(it->node, "reference");
    const char *s = json_string_value(ref), *slash;
    if (!s || !(slash = strrchr(s, '/')) || slash == s)
        return;
    const char *b = slash;
    while (b > s && b[-1] != '/')
        b--;
    if (!isupper((unsigned char)*b))
        return;
    json_t *type = json_stringn(b, (size_t)(slash - b));
    if (!type)
        return;
    /* owner NULL: a resolved reference is not patchable in place */
    push_value(c, r, type, NULL);
    r->items[r->n - 1] = (FpItem){it->node, NULL, NULL, FP_NO_INDEX, json_string_value(type)};
}

static int eval_func(Ctx *c, const Node *n, const FpResult *focus, const FpResult *in, FpResult *r)
{
    int rc = 0, f = n->op;
    FpResult t = {0};
    if (functions[f].lambda && n->arg) {
        bool all = true, any = false;
        for (size_t i = 0; i < in->n; i++) {
            FpResult one = {.items = &in->items[i], .n = 1, .cap = 1};
            rc = eval(c, n->arg, &one, &t);
            if (rc != 0)
                break;
            if (f == F_SELECT) {
                for (size_t k = 0; k < t.n; k++)
                    push(r, t.items[k]);
            } else if (truth(&t) == 1) {
                any = true;
                if (f == F_WHERE)
                    push(r, in->items[i]);
            } else {
                all = false;
            }
            t.n = 0;
        }
        if (rc == 0 && f == F_EXISTS)
            push_bool(c, r, any);
        if (rc == 0 && f == F_ALL)
            push_bool(c, r, all);
        coll_free(&t);
        return rc;
    }
    switch (f) {
    case F_EXISTS: push_bool(c, r, in->n > 0); break;
    case F_EMPTY: push_bool(c, r, in->n == 0); break;
    case F_NOT: {
        int b = truth(in);
        if (b >= 0)
            push_bool(c, r, !b);
        break;
    }
    case F_FIRST:
        if (in->n)
            push(r, in->items[0]);
        break;
    case F_LAST:
        if (in->n)
            push(r, in->items[in->n - 1]);
        break;
    case F_TAIL:
        for (size_t i = 1; i < in->n; i++)
            push(r, in->items[i]);
        break;
    case F_SINGLE:
        if (in->n > 1)
            return diag_set(c->d, ERR_INVALID, "FHIRPath : single() appliqué à %zu éléments",
                            in->n);
        if (in->n)
            push(r, in->items[0]);
        break;
    case F_COUNT: push_value(c, r, json_integer((json_int_t)in->n), "integer"); break;
    case F_AS:
    case F_OFTYPE:
        for (size_t i = 0; i < in->n; i++)
            if (item_is_type(&in->items[i], n->arg->name))
                push(r, in->items[i]);
        break;
    case F_IS:
        if (in->n > 1)
            return diag_set(c->d, ERR_INVALID, "FHIRPath : is() appliqué à %zu éléments", in->n);
        if (in->n)
            push_bool(c, r, item_is_type(&in->items[0], n->arg->name));
        break;
    case F_EXTENSION: {
        const char *url;
        if ((rc = eval_single_string(c, n->arg, focus, &url)) != 0)
            return rc;
        for (size_t i = 0; i < in->n; i++) {
            navigate(&in->items[i], "extension", &t);
            for (size_t k = 0; k < t.n; k++) {
                const json_t *u = json_object_get(t.items[k].node, "url");
                if (json_is_string(u) && strcmp(json_string_value(u), url) == 0)
                    push(r, t.items[k]);
            }
            t.n = 0;
        }
        break;
    }
    case F_RESOLVE:
        for (size_t i = 0; i < in->n; i++)
            resolve_item(c, &in->items[i], r);
        break;
    case F_HASVALUE:
        push_bool(c, r,
                  in->n == 1 && !json_is_object(in->items[0].node) &&
                      !json_is_array(in->items[0].node));
        break;
    case F_TRACE:
        for (size_t i = 0; i < in->n; i++)
            push(r, in->items[i]);
        break;
    }
    coll_free(&t);
    return rc;
}

static void eval_logic(Ctx *c, int op, int a, int b, FpResult *r)
{
    int v = -1;
    switch (op) {
    case OP_AND: v = (a == 0 || b == 0) ? 0 : (a == 1 && b == 1) ? 1 : -1; break;
    case OP_OR: v = (a == 1 || b == 1) ? 1 : (a == 0 && b == 0) ? 0 : -1; break;
    case OP_XOR: v = (a < 0 || b < 0) ? -1 : a != b; break;
    case OP_IMPLIES: v = a == 0 ? 1 : a == 1 ? b : (b == 1 ? 1 : -1); break;
    }
    if (v >= 0)
        push_bool(c, r, v);
}

static int eval_binary(Ctx *c, const Node *n, const FpResult *a, const FpResult *b, FpResult *r)
{
    switch (n->op) {
    case OP_AND:
    case OP_OR:
    case OP_XOR:
    case OP_IMPLIES: eval_logic(c, n->op, truth(a), truth(b), r); return 0;
    case OP_UNION:
        for (int side = 0; side < 2; side++) {
            const FpResult *s = side ? b : a;
            for (size_t i = 0; i < s->n; i++) {
                bool dup = false;
                for (size_t k = 0; k < r->n && !dup; k++)
                    dup = item_eq(r->items[k].node, s->items[i].node, false);
                if (!dup)
                    push(r, s->items[i]);
            }
        }
        return 0;
    case OP_EQ:
    case OP_NE:
    case OP_EQUIV:
    case OP_NEQUIV: {
        bool equiv = n->op == OP_EQUIV || n->op == OP_NEQUIV;
        if (!equiv && (a->n == 0 || b->n == 0))
            return 0;
        bool eq = a->n == b->n;
        for (size_t i = 0; i < a->n && eq; i++)
            eq = item_eq(a->items[i].node, b->items[i].node, equiv);
        push_bool(c, r, (n->op == OP_EQ || n->op == OP_EQUIV) ? eq : !eq);
        return 0;
    }
    default: { /* < > <= >= on singletons of the same kind; anything else is empty */
        if (a->n != 1 || b->n != 1)
            return 0;
        const json_t *x = a->items[0].node, *y = b->items[0].node;
        double cmp;
        if (json_is_number(x) && json_is_number(y))
            cmp = json_number_value(x) - json_number_value(y);
        else if (json_is_string(x) && json_is_string(y))
            cmp = strcmp(json_string_value(x), json_string_value(y));
        else
            return 0;
        bool v = n->op == OP_LT   ? cmp < 0
                 : n->op == OP_GT ? cmp > 0
                 : n->op == OP_LE ? cmp <= 0
                                  : cmp >= 0;
        push_bool(c, r, v);
        return 0;
    }
    }
}

static int eval(Ctx *c, const Node *n, const FpResult *focus, FpResult *r)
{
    FpResult in = {0}, b = {0};
    const FpResult *src = focus;
    int rc = 0;
    if (n->focus && n->kind != N_BIN) {
        if ((rc = eval(c, n->focus, focus, &in)) != 0)
            goto done;
        src = &in;
    }
    switch (n->kind) {
    case N_LIT:
        if (n->lit)
            push_value(c, r, json_copy(n->lit), n->type);
        break;
    case N_THIS:
        for (size_t i = 0; i < focus->n; i++)
            push(r, focus->items[i]);
        break;
    case N_VAR:
        if (n->op == 4)
            push_value(c, r, json_string("http://unitsofmeasure.org"), "string");
        else if (c->root)
            push(r, (FpItem){c->root, NULL, NULL, FP_NO_INDEX, NULL});
        break;
    case N_IDENT:
        for (size_t i = 0; i < src->n; i++)
            navigate(&src->items[i], n->name, r);
        break;
    case N_FUNC: rc = eval_func(c, n, focus, src, r); break;
    case N_TYPEOP:
        if (n->op == OP_AS) {
            for (size_t i = 0; i < src->n; i++)
                if (item_is_type(&src->items[i], n->name))
                    push(r, src->items[i]);
        } else if (src->n == 1) {
            push_bool(c, r, item_is_type(&src->items[0], n->name));
        } else if (src->n > 1) {
            rc = diag_set(c->d, ERR_INVALID, "FHIRPath : 'is' appliqué à %zu éléments", src->n);
        }
        break;
    case N_INDEX: {
        if ((rc = eval(c, n->arg, focus, &b)) != 0)
            break;
        if (b.n != 1 || !json_is_integer(b.items[0].node)) {
            rc =
                diag_set(c->d, ERR_INVALID,
                         "FHIRPath : l'indice doit être un entier (position %zu)", n->arg->pos + 1);
            break;
        }
        json_int_t k = json_integer_value(b.items[0].node);
        if (k >= 0 && (uint64_t)k < src->n)
            push(r, src->items[k]);
        break;
    }
    case N_BIN:
        if ((rc = eval(c, n->focus, focus, &in)) != 0 || (rc = eval(c, n->arg, focus, &b)) != 0)
            break;
        rc = eval_binary(c, n, &in, &b, r);
        break;
    }
done:
    coll_free(&in);
    coll_free(&b);
    return rc;
}

void fp_result_cleanup(FpResult *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->nowned; i++)
        json_decref(r->owned[i]);
    free(r->owned);
    free(r->items);
    *r = (FpResult){0};
}

int fhirpath_eval(const FhirPath *fp, json_t *root, FpResult *out, Diag *d)
{
    FpResult own = {0}, res = {0};
    FpItem top = {root, NULL, NULL, FP_NO_INDEX, NULL};
    FpResult focus = {.items = &top, .n = root ? 1 : 0, .cap = 1};
    Ctx c = {.root = root, .own = &own, .d = d};
    int rc = eval(&c, fp->root, &focus, &res);
    if (rc != 0)
        goto fail;
    fp_result_cleanup(out);
    *out = (FpResult){res.items, res.n, res.cap, own.owned, own.nowned, own.capowned};
    return 0;
fail:
    coll_free(&res);
    fp_result_cleanup(&own);
    return rc;
}

int fhirpath_eval_str(const char *expr, json_t *root, FpResult *out, Diag *d)
{
    FhirPath *fp = NULL;
    int rc = fhirpath_compile(expr, &fp, d);
    if (rc == 0)
        rc = fhirpath_eval(fp, root, out, d);
    fhirpath_free(fp);
    return rc;
}
