/* voice_config.c - /api/v1/numbers, /api/v1/ivr-menus and
 * /api/v1/forwarding-schemes: phone numbers (DIDs), IVR menus and
 * forwarding schemes, the voice configuration documents
 * (engine/voice_config.h), stored in config_item like the engine's other
 * documents. Each is validated completely by the engine's parser, the ids
 * it names are checked against the store (a scheme's targets by their full
 * path), a menu is checked with every other menu for depth and loops, and
 * a number's digits must be unique. A menu or a scheme something still
 * sends callers to cannot be deleted. Reading is open to every agent;
 * writing needs an admin. The list/get/create/replace/delete itself is the
 * one every configuration document shares (config_docs.h, in config.c):
 * this file holds only what voice documents check. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "api/config_docs.h"
#include "engine/voice_config.h"

/* The path of the field of `doc` that holds `key` = `id`: "calendar_id",
 * "entry.menu_id", "options[2].team_id". */
static void ref_field(const json_t *doc, const char *key, int64_t id, char *out, size_t cap)
{
    const char *k;
    json_t *v;
    snprintf(out, cap, "%s", key);
    json_object_foreach ((json_t *)doc, k, v) {
        if (strcmp(k, key) == 0 && json_integer_value(v) == id) {
            snprintf(out, cap, "%s", k);
            return;
        }
        if (json_is_object(v) && json_integer_value(json_object_get(v, key)) == id) {
            snprintf(out, cap, "%s.%s", k, key);
            return;
        }
        size_t i;
        json_t *item;
        json_array_foreach (v, i, item) {
            if (json_integer_value(json_object_get(item, key)) == id) {
                snprintf(out, cap, "%s[%zu].%s", k, i, key);
                return;
            }
        }
    }
}

/* 422 naming the field unless every id the document names exists. */
static int check_refs(sb_tx *tx, sb_api_op *op, const json_t *doc, const sb_config_refs *r)
{
    static const char SQL_ITEM[] = "SELECT 1 FROM config_item WHERE kind = ? AND id = ?";
    struct {
        const int64_t *ids;
        int n;
        const char *sql, *kind, *what, *key;
    } sets[] = {
        {r->teams, r->nteams, "SELECT 1 FROM team WHERE id = ?", NULL, "team", "team_id"},
        {r->agents, r->nagents, "SELECT 1 FROM agent WHERE id = ?", NULL, "agent", "agent_id"},
        {r->calendars, r->ncalendars, SQL_ITEM, "calendar", "calendar", "calendar_id"},
        {r->menus, r->nmenus, SQL_ITEM, "ivr_menu", "IVR menu", "menu_id"},
        {r->schemes, r->nschemes, SQL_ITEM, "forwarding_scheme", "forwarding scheme", "scheme_id"},
    };
    for (size_t s = 0; s < SB_ARRAY_LEN(sets); s++)
        for (int i = 0; i < sets[s].n; i++) {
            int64_t one = 0, id = sets[s].ids[i];
            int rc = sets[s].kind != NULL ? sb_tx_int(tx, &one, sets[s].sql, "ti", sets[s].kind, id)
                                          : sb_tx_int(tx, &one, sets[s].sql, "i", id);
            if (rc < 0)
                return rc;
            if (rc == 0) {
                char field[96];
                ref_field(doc, sets[s].key, id, field, sizeof field);
                return sb_api_fail(op, 422, "validation_failed", "field '%s': %s %lld does not exist", field,
                                   sets[s].what, (long long)id);
            }
        }
    return 0;
}

/* A menu with all the others: no loops, at most SB_IVR_MAX_DEPTH deep. */
static int check_menu_graph(sb_tx *tx, sb_api_op *op, const json_t *doc, int64_t id)
{
    json_t *list = NULL;
    int rc = sb_api_docs_load(tx, "ivr_menu", id, &list);
    if (rc != 0)
        return rc;
    json_array_append(list, (json_t *)doc);
    sb_config_error err = {{0}, {0}};
    size_t at = 0;
    rc = sb_voice_check_menus(list, id, &at, &err);
    if (rc != 0) {
        int64_t other = json_integer_value(json_object_get(json_array_get(list, at), "id"));
        rc = other == id ? sb_api_fail(op, 422, "validation_failed", "field '%s': %s", err.field, err.message)
                         : sb_api_fail(op, 422, "validation_failed", "field '%s' of IVR menu %lld: %s", err.field,
                                       (long long)other, err.message);
    }
    json_decref(list);
    return rc;
}

/* A number's digits belong to one document. */
static int check_unique_number(sb_tx *tx, sb_api_op *op, const json_t *doc, int64_t id)
{
    const char *number = json_string_value(json_object_get(doc, "number"));
    int64_t other = 0;
    int rc = sb_tx_int(tx, &other,
                       "SELECT id FROM config_item WHERE kind = 'phone_number' AND id <> ? "
                       "AND json_extract(data, '$.number') = ?",
                       "it", id, number);
    if (rc < 0)
        return rc;
    if (rc == 1)
        return sb_api_fail(op, 422, "validation_failed", "field 'number': %s is already phone number %lld", number,
                           (long long)other);
    return 0;
}

/* A scheme's agents and teams, named by their path
 * ("steps[1].targets[0].team"), must exist. */
static int check_scheme_targets(sb_tx *tx, sb_api_op *op, const json_t *doc)
{
    size_t i, j;
    json_t *step, *t;
    json_array_foreach (json_object_get(doc, "steps"), i, step) {
        json_array_foreach (json_object_get(step, "targets"), j, t) {
            bool agent = json_object_get(t, "agent") != NULL;
            if (!agent && json_object_get(t, "team") == NULL)
                continue;
            const char *key = agent ? "agent" : "team";
            int64_t one = 0, id = json_integer_value(json_object_get(t, key));
            int rc = sb_tx_int(tx, &one, agent ? "SELECT 1 FROM agent WHERE id = ?" : "SELECT 1 FROM team WHERE id = ?",
                               "i", id);
            if (rc < 0)
                return rc;
            if (rc == 0)
                return sb_api_fail(op, 422, "validation_failed",
                                   "field 'steps[%zu].targets[%zu].%s': %s %lld does not exist", i, j, key, key,
                                   (long long)id);
        }
    }
    return 0;
}

/* After the engine's parser: the menu graph, a scheme's targets or a
 * number's digits, then every id the document names. */
static int check_voice_doc(sb_tx *tx, sb_api_op *op, const sb_doc_kind *k, const json_t *doc,
                           const sb_config_refs *refs, int64_t id)
{
    int rc;
    if (strcmp(k->kind, "ivr_menu") == 0)
        rc = check_menu_graph(tx, op, doc, id);
    else if (strcmp(k->kind, "forwarding_scheme") == 0)
        rc = check_scheme_targets(tx, op, doc);
    else
        rc = check_unique_number(tx, op, doc, id);
    if (rc == 0)
        rc = check_refs(tx, op, doc, refs);
    return rc;
}

static const char *kind_words(const char *kind)
{
    if (strcmp(kind, "ivr_menu") == 0)
        return "IVR menu";
    if (strcmp(kind, "forwarding_scheme") == 0)
        return "forwarding scheme";
    return "phone number";
}

/* 409 while a number, a menu or a scheme still sends callers to menu or
 * scheme `id` (k). Other kinds are never referred to by voice documents. */
static int check_unused(sb_tx *tx, sb_api_op *op, const sb_doc_kind *k, int64_t id)
{
    bool menu = strcmp(k->kind, "ivr_menu") == 0;
    if (!menu && strcmp(k->kind, "forwarding_scheme") != 0)
        return 0;
    sb_stmt *s = sb_tx_query(tx,
                             "SELECT kind, id, data FROM config_item "
                             "WHERE kind IN ('phone_number', 'ivr_menu', 'forwarding_scheme') ORDER BY kind, id",
                             "");
    if (s == NULL)
        return SB_EIO;
    int rc;
    int64_t by_id = 0;
    char by[32] = "";
    while (by_id == 0 && (rc = sb_stmt_step(s)) == 1) {
        const char *kind = sb_stmt_text(s, 0);
        int64_t doc_id = sb_stmt_int(s, 1);
        if (strcmp(kind, k->kind) == 0 && doc_id == id)
            continue;
        json_t *doc = json_loads(sb_stmt_text(s, 2), 0, NULL);
        sb_config_refs *refs = sb_xcalloc(1, sizeof *refs);
        sb_config_error err;
        if (doc != NULL)
            sb_config_check(kind, doc, refs, &err);
        const int64_t *ids = menu ? refs->menus : refs->schemes;
        int n = menu ? refs->nmenus : refs->nschemes;
        for (int i = 0; i < n; i++)
            if (ids[i] == id) {
                by_id = doc_id;
                snprintf(by, sizeof by, "%s", kind_words(kind));
            }
        free(refs);
        json_decref(doc);
    }
    sb_stmt_end(s);
    if (by_id != 0)
        return sb_api_fail(op, 409, "conflict", "%s %lld is used by %s %lld", kind_words(k->kind), (long long)id, by,
                           (long long)by_id);
    return rc < 0 ? rc : 0;
}

/* ---- routing: the CRUD is config.c's ---- */

/* No "position" of ours: a voice document is listed by id (its position is
 * id * 10), and the parser refuses the field like any unknown one. */
static const sb_doc_kind kinds[] = {
    {"phone_number", "/api/v1/numbers", "/api/v1/numbers/", "number", "numbers", SB_DOC_POSITION_NONE, check_voice_doc,
     check_unused},
    {"ivr_menu", "/api/v1/ivr-menus", "/api/v1/ivr-menus/", "ivr_menu", "ivr_menus", SB_DOC_POSITION_NONE,
     check_voice_doc, check_unused},
    {"forwarding_scheme", "/api/v1/forwarding-schemes", "/api/v1/forwarding-schemes/", "forwarding_scheme",
     "forwarding_schemes", SB_DOC_POSITION_NONE, check_voice_doc, check_unused},
};

bool sb_api_voice_config_route(sb_app *app, sb_http_req *req, const char *path)
{
    return sb_api_docs_route(app, req, path, kinds, SB_ARRAY_LEN(kinds));
}
