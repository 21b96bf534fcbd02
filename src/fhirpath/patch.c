/*
 * patch.c — FHIRPath Patch (FHIR R4 fhirpatch.html) over jansson trees.
 *
 * Operations: add, insert, delete, replace, move, in order. Values come from value[x] (typed),
 * from "resource", or from the nested `part` form, built into an object where each part's
 * `name` becomes a member. Forms the ROR guide's documentation uses and this module accepts
 * on top of the standard (ROR-fhir-documentation, docs/pages/guide/modeleV3/patch-capacitaire/
 * location.md and exemples/mise-a-jour-offre.md):
 *  - a part without `name` is a JSON fragment whose members are merged into the object being
 *    built: `{"name": "value", "part": [{"extension": [{...capacity...}]}]}`;
 *  - `add` without `name` whose value is an object adds each of its members to the target
 *    (so the fragment above adds one extension to `Location`);
 *  - an untyped member `"value": ...` in a part;
 *  - `replace` of an Extension by a non-Extension value sets the extension's value[x]
 *    (`...extension.where(url='nbCapacity')` replaced by 12 sets valueInteger);
 *  - `replace` of a whole list (a path selecting every item of one array) by an array value.
 *
 * Without StructureDefinitions the cardinality of a member being created is guessed from a
 * table of repeating elements (list_elements); an array value always creates an array.
 * `delete` of a path that selects nothing is a no-op, as the specification says.
 * The server owns `id` and `resourceType` of the resource: touching them is ERR_INVALID.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "fhirpath/fhirpath_int.h"

#define PATCH_MAX_PART_DEPTH 32

enum { OP_ADD, OP_INSERT, OP_DELETE, OP_REPLACE, OP_MOVE };

typedef struct Op {
    int type;
    const char *path;
    const char *name;
    json_t *value;          /* owned */
    const char *value_type; /* FHIR type from value[x], or NULL */
    json_int_t index, source, destination;
} Op;

/* Members that repeat: "Type.name" at a resource's top level, "*.name" anywhere. */
static const char *const list_elements[] = {
    "*.extension",
    "*.modifierExtension",
    "*.coding",
    "*.telecom",
    "*.line",
    "*.given",
    "*.prefix",
    "*.suffix",
    "*.profile",
    "*.tag",
    "*.security",
    "*.contained",
    "*.endpoint",
    "*.alias",
    "*.availableTime",
    "*.notAvailable",
    "*.specialty",
    "*.characteristic",
    "*.category",
    "*.daysOfWeek",
    "*.identifier",
    "*.hoursOfOperation",
    "Location.type",
    "Organization.type",
    "Organization.address",
    "Organization.contact",
    "HealthcareService.type",
    "HealthcareService.location",
    "HealthcareService.coverageArea",
    "HealthcareService.serviceProvisionCode",
    "HealthcareService.eligibility",
    "HealthcareService.program",
    "HealthcareService.communication",
    "HealthcareService.referralMethod",
    "Practitioner.name",
    "Practitioner.address",
    "Practitioner.qualification",
    "Practitioner.communication",
    "PractitionerRole.code",
    "PractitionerRole.location",
    "PractitionerRole.healthcareService",
    "Task.basedOn",
    "Task.partOf",
    "Task.performerType",
    "Task.note",
    "Task.input",
    "Task.output",
};

static bool is_list(const json_t *obj, const char *name)
{
    const char *rt = json_string_value(json_object_get(obj, "resourceType"));
    for (size_t i = 0; i < sizeof list_elements / sizeof *list_elements; i++) {
        const char *e = list_elements[i], *dot = strchr(e, '.');
        if (strcmp(dot + 1, name) != 0)
            continue;
        if (e[0] == '*' || (rt && strlen(rt) == (size_t)(dot - e) && !memcmp(rt, e, dot - e)))
            return true;
    }
    return false;
}

static bool is_protected(const json_t *resource, const json_t *owner, const char *key)
{
    return owner == resource && (strcmp(key, "id") == 0 || strcmp(key, "resourceType") == 0);
}

static int protected_error(Diag *d, const char *key)
{
    return diag_set(d, ERR_INVALID,
                    "FHIRPath Patch : l'élément '%s' est géré par le serveur "
                    "et ne peut pas être modifié",
                    key);
}

/* ---------------------------------------------------------------- values */

static int parts_to_object(json_t *parts, int depth, json_t **out, Diag *d);

/* Add `v` (reference taken) as member `key` of `obj`: repeated members become arrays. */
static void member_merge(json_t *obj, const char *key, json_t *v)
{
    json_t *old = json_object_get(obj, key);
    if (!old) {
        json_object_set_new(obj, key,
                            json_is_array(v) || !is_list(obj, key) ? v : json_pack("[o]", v));
    } else if (json_is_array(old)) {
        if (json_is_array(v)) {
            json_array_extend(old, v);
            json_decref(v);
        } else {
            json_array_append_new(old, v);
        }
    } else {
        json_t *a = json_pack("[O]", old);
        if (json_is_array(v)) {
            json_array_extend(a, v);
            json_decref(v);
        } else {
            json_array_append_new(a, v);
        }
        json_object_set_new(obj, key, a);
    }
}

/* The value a Parameters part carries: value[x], "value", resource or nested parts.
 * *out NULL when the part has none. */
static int part_value(json_t *part, int depth, json_t **out, const char **type, Diag *d)
{
    const char *key;
    json_t *v;
    *out = NULL;
    *type = NULL;
    json_object_foreach(part, key, v)
    {
        if (strncmp(key, "value", 5) == 0 && (key[5] == '\0' || isupper((unsigned char)key[5]))) {
            if (*out)
                goto dup;
            *out = json_deep_copy(v);
            *type = key[5] ? fp_type_from_suffix(key + 5, strlen(key + 5)) : NULL;
            if (key[5] && !*type)
                *type = key + 5; /* not an R4 data type (valueExtension...): keep the name */
        } else if (strcmp(key, "resource") == 0) {
            if (*out)
                goto dup;
            *out = json_deep_copy(v);
        } else if (strcmp(key, "part") == 0) {
            if (*out)
                goto dup;
            int rc = parts_to_object(v, depth + 1, out, d);
            if (rc != 0)
                return rc;
        }
    }
    return 0;
dup:
    json_decref(*out);
    *out = NULL;
    return diag_set(d, ERR_INVALID, "FHIRPath Patch : une partie porte plusieurs valeurs");
}

/* The member name a part named `name` with a value of `type` takes: choice elements get their
 * type suffix ("value" + Integer -> "valueInteger"). Untyped values are typed by their shape. */
static char *member_name(const char *name, const char *type, const json_t *v)
{
    if (!fp_is_choice_prefix(name, strlen(name)))
        return xstrdup(name);
    if (!type)
        type = json_is_string(v) ? "string" : fp_type_infer(v);
    if (!type)
        return xstrdup(name);
    char *s = xasprintf("%s%s", name, type);
    s[strlen(name)] = (char)toupper((unsigned char)s[strlen(name)]);
    return s;
}

static int parts_to_object(json_t *parts, int depth, json_t **out, Diag *d)
{
    if (!json_is_array(parts))
        return diag_set(d, ERR_INVALID, "FHIRPath Patch : 'part' doit être un tableau");
    if (depth > PATCH_MAX_PART_DEPTH)
        return diag_set(d, ERR_INVALID, "FHIRPath Patch : parties trop imbriquées");
    json_t *obj = json_object();
    size_t i;
    json_t *p;
    json_array_foreach(parts, i, p)
    {
        if (!json_is_object(p))
            goto bad;
        const char *name = json_string_value(json_object_get(p, "name"));
        if (!name) { /* ROR guide: a bare JSON fragment */
            const char *k;
            json_t *v;
            json_object_foreach(p, k, v) member_merge(obj, k, json_deep_copy(v));
            continue;
        }
        json_t *v;
        const char *type;
        int rc = part_value(p, depth, &v, &type, d);
        if (rc != 0) {
            json_decref(obj);
            return rc;
        }
        if (!v) {
            json_decref(obj);
            return diag_set(d, ERR_INVALID,
                            "FHIRPath Patch : la partie '%.100s' n'a pas de "
                            "valeur",
                            name);
        }
        char *key = member_name(name, type, v);
        member_merge(obj, key, v);
        free(key);
    }
    *out = obj;
    return 0;
bad:
    json_decref(obj);
    return diag_set(d, ERR_INVALID, "FHIRPath Patch : partie malformée");
}

/* ---------------------------------------------------------------- operations */

/* The string value[x] of a part, borrowed from the Parameters. */
static const char *part_string(json_t *part)
{
    const char *k;
    json_t *v;
    json_object_foreach(part, k, v) if (strncmp(k, "value", 5) == 0 &&
                                        json_is_string(v)) return json_string_value(v);
    return NULL;
}

static int op_parse(json_t *param, Op *op, Diag *d)
{
    static const char *const types[] = {"add", "insert", "delete", "replace", "move"};
    const char *name = json_string_value(json_object_get(param, "name"));
    json_t *parts = json_object_get(param, "part");
    *op = (Op){.type = -1};
    if (!name || strcmp(name, "operation") != 0 || !json_is_array(parts))
        return diag_set(d, ERR_INVALID,
                        "FHIRPath Patch : chaque paramètre doit être une "
                        "'operation' avec des 'part'");
    const char *type = NULL;
    bool seen_index = false, seen_src = false, seen_dst = false;
    size_t i;
    json_t *p;
    json_array_foreach(parts, i, p)
    {
        const char *pn = json_string_value(json_object_get(p, "name"));
        json_t *v = NULL;
        const char *vt = NULL;
        int rc = pn ? part_value(p, 0, &v, &vt, d)
                    : diag_set(d, ERR_INVALID, "FHIRPath Patch : partie sans nom");
        if (rc != 0)
            return rc;
        if (pn && strcmp(pn, "value") == 0 && !op->value) {
            op->value = v;
            op->value_type = vt;
            continue;
        }
        const char **sp = !pn                       ? NULL
                          : strcmp(pn, "type") == 0 ? &type
                          : strcmp(pn, "path") == 0 ? &op->path
                          : strcmp(pn, "name") == 0 ? &op->name
                                                    : NULL;
        json_int_t *ip = !pn                              ? NULL
                         : strcmp(pn, "index") == 0       ? &op->index
                         : strcmp(pn, "source") == 0      ? &op->source
                         : strcmp(pn, "destination") == 0 ? &op->destination
                                                          : NULL;
        bool *seen = ip == &op->index ? &seen_index : ip == &op->source ? &seen_src : &seen_dst;
        if (sp && !*sp && json_is_string(v)) {
            *sp = part_string(p); /* v is a copy: keep a pointer into the Parameters */
        } else if (ip && !*seen && json_is_integer(v) && json_integer_value(v) >= 0) {
            *ip = json_integer_value(v);
            *seen = true;
        } else {
            json_decref(v);
            return diag_set(d, ERR_INVALID,
                            "FHIRPath Patch : partie '%.100s' inconnue, "
                            "répétée ou mal typée",
                            pn);
        }
        json_decref(v);
    }
    for (size_t k = 0; type && k < sizeof types / sizeof *types; k++)
        if (strcmp(type, types[k]) == 0)
            op->type = (int)k;
    if (op->type < 0)
        return diag_set(d, ERR_INVALID,
                        "FHIRPath Patch : type d'opération absent ou inconnu "
                        "(add, insert, delete, replace, move)");
    if (!op->path)
        return diag_set(d, ERR_INVALID, "FHIRPath Patch : 'path' manquant");
    if ((op->type == OP_ADD || op->type == OP_INSERT || op->type == OP_REPLACE) && !op->value)
        return diag_set(d, ERR_INVALID, "FHIRPath Patch : 'value' manquant pour '%s'", type);
    if (op->type == OP_ADD && !op->name && !json_is_object(op->value))
        return diag_set(d, ERR_INVALID, "FHIRPath Patch : 'name' manquant pour 'add'");
    if ((op->type == OP_INSERT && !seen_index) || (op->type == OP_MOVE && (!seen_src || !seen_dst)))
        return diag_set(d, ERR_INVALID,
                        "FHIRPath Patch : 'index', 'source' ou 'destination' "
                        "manquant pour '%s'",
                        type);
    return 0;
}

static int not_found(Diag *d, const char *path)
{
    diag_expr(d, "%s", path);
    return diag_set(d, ERR_NOT_FOUND,
                    "FHIRPath Patch : aucun élément ne correspond au chemin "
                    "'%.300s'",
                    path);
}

static int multiple(Diag *d, const char *path, size_t n)
{
    diag_expr(d, "%s", path);
    return diag_set(d, ERR_MULTIPLE,
                    "FHIRPath Patch : le chemin '%.300s' désigne %zu éléments "
                    "au lieu d'un seul",
                    path, n);
}

/* The array all items of `r` belong to (insert and move work on a list). */
static int select_list(const FpResult *r, const Op *op, json_t **list, Diag *d)
{
    if (r->n == 0)
        return not_found(d, op->path);
    for (size_t i = 0; i < r->n; i++) {
        const FpItem *it = &r->items[i];
        if (it->index == FP_NO_INDEX || !it->owner)
            return diag_set(d, ERR_INVALID, "FHIRPath Patch : '%.300s' ne désigne pas une liste",
                            op->path);
        if (it->owner != r->items[0].owner || strcmp(it->key, r->items[0].key) != 0)
            return multiple(d, op->path, r->n);
    }
    *list = json_object_get(r->items[0].owner, r->items[0].key);
    return 0;
}

static int apply_add(json_t *res, const FpResult *r, Op *op, Diag *d)
{
    if (r->n != 1)
        return r->n ? multiple(d, op->path, r->n) : not_found(d, op->path);
    json_t *target = r->items[0].node;
    if (!json_is_object(target))
        return diag_set(d, ERR_INVALID,
                        "FHIRPath Patch : '%.300s' ne désigne pas un élément "
                        "auquel ajouter '%s'",
                        op->path, op->name ? op->name : "");
    json_t *adds = op->name ? json_pack("{sO}", op->name, op->value) : json_incref(op->value);
    const char *k;
    json_t *v;
    int rc = 0;
    json_object_foreach(adds, k, v)
    {
        json_t *old = json_object_get(target, k);
        if (is_protected(res, target, k)) {
            rc = protected_error(d, k);
            break;
        }
        if (old && !json_is_array(old)) {
            rc = diag_set(d, ERR_INVALID,
                          "FHIRPath Patch : l'élément '%.100s' existe déjà et "
                          "n'est pas répétable (utiliser replace)",
                          k);
            break;
        }
        member_merge(target, k, json_incref(v));
    }
    json_decref(adds);
    return rc;
}

/* Replace an item by op->value, following the rules in the file comment. */
static int replace_item(const FpItem *it, Op *op)
{
    json_t *owner = it->owner, *v = op->value;
    bool is_ext = json_is_object(v) && json_is_string(json_object_get(v, "url"));
    if (json_is_object(it->node) && json_is_string(json_object_get(it->node, "url")) &&
        !json_is_array(v) &&
        (op->value_type ? strcmp(op->value_type, "Extension") != 0 : !is_ext)) {
        /* an Extension replaced by a non-Extension value: set its value[x] */
        owner = it->node;
        const char *k, *keep = NULL;
        json_t *x;
        void *tmp;
        json_object_foreach_safe(owner, tmp, k, x)
        {
            if (strncmp(k, "value", 5) == 0 && isupper((unsigned char)k[5])) {
                keep = keep ? keep : fp_type_from_suffix(k + 5, strlen(k + 5));
                json_object_del(owner, k);
            }
        }
        char *key = member_name("value", op->value_type ? op->value_type : keep, v);
        json_object_set(owner, key, v);
        free(key);
        return 0;
    }
    size_t plen = 0;
    while (it->key[plen] && !isupper((unsigned char)it->key[plen]))
        plen++;
    if (op->value_type && it->key[plen] && fp_is_choice_prefix(it->key, plen) &&
        fp_type_from_suffix(it->key + plen, strlen(it->key + plen))) {
        /* a choice element may change type: valueInteger -> valueString */
        char *old = xstrdup(it->key);
        old[plen] = '\0';
        char *key = member_name(old, op->value_type, v);
        old[plen] = it->key[plen];
        json_object_del(owner, old);
        json_object_set(owner, key, v);
        free(key);
        free(old);
        return 0;
    }
    if (it->index == FP_NO_INDEX)
        json_object_set(owner, it->key, v);
    else
        json_array_set(json_object_get(owner, it->key), it->index, v);
    return 0;
}

/* ROR guide form: replace with `name` sets that member of the single target. */
static int replace_named(json_t *res, const FpResult *r, Op *op, Diag *d)
{
    if (r->n > 1)
        return multiple(d, op->path, r->n);
    json_t *target = r->n ? r->items[0].node : NULL;
    json_t *old = json_object_get(target, op->name);
    if (!old) {
        diag_expr(d, "%s.%s", op->path, op->name);
        return diag_set(d, ERR_NOT_FOUND,
                        "FHIRPath Patch : aucun élément '%.100s' sous le "
                        "chemin '%.300s'",
                        op->name, op->path);
    }
    if (is_protected(res, target, op->name))
        return protected_error(d, op->name);
    if (json_is_array(old) && !json_is_array(op->value))
        json_object_set_new(target, op->name, json_pack("[O]", op->value));
    else
        json_object_set(target, op->name, op->value);
    return 0;
}

static int apply_replace(json_t *res, const FpResult *r, Op *op, Diag *d)
{
    if (op->name)
        return replace_named(res, r, op, d);
    if (r->n == 0)
        return not_found(d, op->path);
    for (size_t i = 0; i < r->n; i++) {
        if (!r->items[i].owner)
            return diag_set(d, ERR_INVALID,
                            "FHIRPath Patch : '%.300s' ne désigne pas un élément "
                            "modifiable",
                            op->path);
        if (is_protected(res, r->items[i].owner, r->items[i].key))
            return protected_error(d, r->items[i].key);
    }
    json_t *list = NULL;
    Diag scratch;
    if (json_is_array(op->value) && select_list(r, op, &list, &scratch) == 0 &&
        json_array_size(list) == r->n) {
        /* the whole list replaced by a list */
        char *key = xstrdup(r->items[0].key);
        json_object_set(r->items[0].owner, key, op->value);
        free(key);
        return 0;
    }
    if (r->n > 1)
        return multiple(d, op->path, r->n);
    return replace_item(&r->items[0], op);
}

static int apply_delete(json_t *res, const FpResult *r, Op *op, Diag *d)
{
    if (r->n == 0)
        return 0; /* fhirpatch.html: deleting nothing is not an error */
    if (r->n > 1)
        return multiple(d, op->path, r->n);
    const FpItem *it = &r->items[0];
    if (!it->owner)
        return diag_set(d, ERR_INVALID,
                        "FHIRPath Patch : '%.300s' ne désigne pas un élément "
                        "supprimable",
                        op->path);
    if (is_protected(res, it->owner, it->key))
        return protected_error(d, it->key);
    json_t *arr = json_object_get(it->owner, it->key);
    if (it->index != FP_NO_INDEX && json_array_size(arr) > 1) {
        json_array_remove(arr, it->index);
    } else {
        char *key = xstrdup(it->key); /* the tree owns it->key, and deletion frees it */
        json_object_del(it->owner, key);
        free(key);
    }
    return 0;
}

static int apply_list_op(const FpResult *r, Op *op, Diag *d)
{
    json_t *list;
    int rc = select_list(r, op, &list, d);
    if (rc != 0)
        return rc;
    size_t n = json_array_size(list);
    if (op->type == OP_INSERT) {
        if ((size_t)op->index > n)
            return diag_set(d, ERR_INVALID,
                            "FHIRPath Patch : index %lld hors de la liste "
                            "(%zu éléments)",
                            (long long)op->index, n);
        json_array_insert(list, (size_t)op->index, op->value);
        return 0;
    }
    if ((size_t)op->source >= n || (size_t)op->destination >= n)
        return diag_set(d, ERR_INVALID,
                        "FHIRPath Patch : source ou destination hors de la liste "
                        "(%zu éléments)",
                        n);
    json_t *moved = json_incref(json_array_get(list, (size_t)op->source));
    json_array_remove(list, (size_t)op->source);
    json_array_insert_new(list, (size_t)op->destination, moved);
    return 0;
}

int fhirpath_patch_apply(json_t *resource, json_t *parameters, Diag *d)
{
    json_t *params = json_object_get(parameters, "parameter");
    const char *rt = json_string_value(json_object_get(parameters, "resourceType"));
    if (!json_is_object(resource) || !json_is_object(parameters) ||
        (rt && strcmp(rt, "Parameters") != 0) || !json_is_array(params) ||
        json_array_size(params) == 0)
        return diag_set(d, ERR_INVALID,
                        "FHIRPath Patch : une ressource Parameters avec au moins "
                        "une opération est attendue");
    size_t i;
    json_t *param;
    json_array_foreach(params, i, param)
    {
        Op op;
        FpResult r = {0};
        int rc = op_parse(param, &op, d);
        if (rc == 0)
            rc = fhirpath_eval_str(op.path, resource, &r, d);
        if (rc == 0 && op.name && op.type != OP_ADD && op.type != OP_REPLACE)
            rc = diag_set(d, ERR_INVALID, "FHIRPath Patch : 'name' est réservé à 'add'");
        if (rc == 0) {
            switch (op.type) {
            case OP_ADD: rc = apply_add(resource, &r, &op, d); break;
            case OP_REPLACE: rc = apply_replace(resource, &r, &op, d); break;
            case OP_DELETE: rc = apply_delete(resource, &r, &op, d); break;
            default: rc = apply_list_op(&r, &op, d); break;
            }
        }
        fp_result_cleanup(&r);
        json_decref(op.value);
        if (rc != 0)
            return rc;
    }
    return 0;
}
