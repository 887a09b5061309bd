/* config.c - /api/v1/rules, /templates, /calendars, /sla-policies: the
 * engine's configuration documents (formats in engine/config.h and
 * engine/rules.h), and the CRUD that every configuration document shares
 * (config_docs.h; the voice documents use it too). Each is one JSON
 * document, validated completely by the engine's own parsers before it is
 * stored, with the ids it refers to checked against the store. Reading is
 * open to every agent (templates are canned replies); writing needs an
 * admin. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "api/config_docs.h"
#include "dispatch.h"
#include "engine/calendar.h"
#include "engine/config.h"

/* ---- validation ---- */

static int exists(sb_tx *tx, const char *sql, const char *kind, int64_t id)
{
    int64_t one = 0;
    return kind != NULL ? sb_tx_int(tx, &one, sql, "ti", kind, id) : sb_tx_int(tx, &one, sql, "i", id);
}

/* 422 unless every id the document names exists. */
static int check_refs(sb_tx *tx, sb_api_op *op, const sb_config_refs *r)
{
    static const char SQL_ITEM[] = "SELECT 1 FROM config_item WHERE kind = ? AND id = ?";
    struct {
        const int64_t *ids;
        int n;
        const char *sql, *kind, *what;
    } sets[] = {
        {r->teams, r->nteams, "SELECT 1 FROM team WHERE id = ?", NULL, "team"},
        {r->agents, r->nagents, "SELECT 1 FROM agent WHERE id = ?", NULL, "agent"},
        {r->templates, r->ntemplates, SQL_ITEM, "template", "template"},
        {r->calendars, r->ncalendars, SQL_ITEM, "calendar", "calendar"},
    };
    for (size_t s = 0; s < SB_ARRAY_LEN(sets); s++)
        for (int i = 0; i < sets[s].n; i++) {
            int rc = exists(tx, sets[s].sql, sets[s].kind, sets[s].ids[i]);
            if (rc < 0)
                return rc;
            if (rc == 0)
                return sb_api_fail(op, 422, "validation_failed", "%s %lld does not exist", sets[s].what,
                                   (long long)sets[s].ids[i]);
        }
    return 0;
}

/* The engine's documents: what they name exists. */
static int check_engine_doc(sb_tx *tx, sb_api_op *op, const sb_doc_kind *k, const json_t *doc,
                            const sb_config_refs *refs, int64_t id)
{
    (void)k, (void)doc, (void)id;
    return check_refs(tx, op, refs);
}

/* 409 if another document still refers to `kind` `id`. */
static int check_unused(sb_tx *tx, sb_api_op *op, const sb_doc_kind *k, int64_t id)
{
    const char *kind = k->kind;
    if (strcmp(kind, "template") != 0 && strcmp(kind, "calendar") != 0)
        return 0;
    sb_stmt *s = sb_tx_query(
        tx, "SELECT kind, id, data FROM config_item WHERE kind IN ('rule', 'sla_policy', 'phone_number')", "");
    if (s == NULL)
        return SB_EIO;
    int rc, found = 0;
    char by[32] = "";
    int64_t by_id = 0;
    while (found == 0 && (rc = sb_stmt_step(s)) == 1) {
        json_t *doc = json_loads(sb_stmt_text(s, 2), 0, NULL);
        sb_config_refs refs = {0};
        sb_config_error err;
        if (doc != NULL)
            sb_config_check(sb_stmt_text(s, 0), doc, &refs, &err);
        const int64_t *ids = strcmp(kind, "template") == 0 ? refs.templates : refs.calendars;
        int n = strcmp(kind, "template") == 0 ? refs.ntemplates : refs.ncalendars;
        for (int i = 0; i < n; i++)
            if (ids[i] == id) {
                found = 1;
                snprintf(by, sizeof by, "%s", sb_stmt_text(s, 0));
                by_id = sb_stmt_int(s, 1);
            }
        json_decref(doc);
    }
    sb_stmt_end(s);
    if (found == 0 && strcmp(kind, "template") == 0) {
        int64_t used = 0;
        char idtext[24];
        snprintf(idtext, sizeof idtext, "%lld", (long long)id);
        rc = sb_tx_int(tx, &used, "SELECT 1 FROM setting WHERE key = 'engine.csat_template_id' AND value = ?", "t",
                       idtext);
        if (rc == 1)
            return sb_api_fail(op, 409, "conflict", "template %lld is the CSAT survey (settings)", (long long)id);
    }
    if (found == 0) {
        int64_t team = 0;
        if (strcmp(kind, "calendar") == 0 &&
            (rc = sb_tx_int(tx, &team, "SELECT id FROM team WHERE json_extract(routing, '$.calendar_id') = ?", "i",
                            id)) == 1) {
            found = 1;
            snprintf(by, sizeof by, "team");
            by_id = team;
        }
    }
    if (found)
        return sb_api_fail(op, 409, "conflict", "%s %lld is used by %s %lld", kind, (long long)id, by,
                           (long long)by_id);
    return 0;
}

static const sb_doc_kind engine_kinds[] = {
    {"rule", "/api/v1/rules", "/api/v1/rules/", "rule", "rules", SB_DOC_POSITION_ORDERED, check_engine_doc,
     check_unused},
    {"template", "/api/v1/templates", "/api/v1/templates/", "template", "templates", SB_DOC_POSITION_REFUSED,
     check_engine_doc, check_unused},
    {"calendar", "/api/v1/calendars", "/api/v1/calendars/", "calendar", "calendars", SB_DOC_POSITION_REFUSED,
     check_engine_doc, check_unused},
    {"sla_policy", "/api/v1/sla-policies", "/api/v1/sla-policies/", "sla_policy", "sla_policies",
     SB_DOC_POSITION_ORDERED, check_engine_doc, check_unused},
};

/* ---- the documents' CRUD (config_docs.h) ---- */

static void reload_after(sb_api_op *op)
{
    sb_dispatch_reload(op->app->dispatch);
}

static const sb_doc_kind *op_kind(sb_api_op *op)
{
    return op->ctx;
}

/* Every kind's documents are listed by position: the ordered kinds' as set,
 * the others' are id * 10 whoever wrote them (this API, import, the demo). */
int sb_api_docs_load(sb_tx *tx, const char *kind, int64_t except, json_t **out)
{
    sb_stmt *s = sb_tx_query(tx, "SELECT data FROM config_item WHERE kind = ? AND id <> ? ORDER BY position, id", "ti",
                             kind, except);
    if (s == NULL)
        return SB_EIO;
    json_t *list = json_array();
    int rc;
    while ((rc = sb_stmt_step(s)) == 1) {
        json_t *doc = json_loads(sb_stmt_text(s, 0), 0, NULL);
        if (doc != NULL)
            json_array_append_new(list, doc);
    }
    sb_stmt_end(s);
    if (rc < 0) {
        json_decref(list);
        return rc;
    }
    *out = list;
    return 0;
}

static int list_action(sb_tx *tx, sb_api_op *op)
{
    const sb_doc_kind *k = op_kind(op);
    json_t *list = NULL;
    int rc = sb_api_docs_load(tx, k->kind, 0, &list);
    if (rc == 0)
        op->out = json_pack("{s:o}", k->many, list);
    return rc;
}

static json_t *load(sb_tx *tx, const char *kind, int64_t id, int64_t *position)
{
    sb_stmt *s = sb_tx_query(tx, "SELECT data, position FROM config_item WHERE kind = ? AND id = ?", "ti", kind, id);
    json_t *doc = NULL;
    if (s != NULL && sb_stmt_step(s) == 1) {
        doc = json_loads(sb_stmt_text(s, 0), 0, NULL);
        if (position != NULL)
            *position = sb_stmt_int(s, 1);
    }
    sb_stmt_end(s);
    return doc;
}

static int get_action(sb_tx *tx, sb_api_op *op)
{
    const sb_doc_kind *k = op_kind(op);
    json_t *doc = load(tx, k->kind, op->path_id, NULL);
    if (doc == NULL)
        return sb_api_fail(op, 404, "not_found", "%s %lld does not exist", k->kind, (long long)op->path_id);
    op->out = json_pack("{s:o}", k->one, doc);
    return 0;
}

/* Takes "position" out of the body (it is not part of the document). */
static int take_position(sb_api_op *op, const sb_doc_kind *k, json_t *doc, int64_t *position, bool *given)
{
    json_t *p = json_object_get(doc, "position");
    *given = p != NULL && k->position != SB_DOC_POSITION_NONE;
    if (!*given)
        return 0;
    if (k->position == SB_DOC_POSITION_REFUSED)
        return sb_api_fail(op, 422, "validation_failed", "field 'position': a %s has no position", k->kind);
    if (!json_is_integer(p) || json_integer_value(p) < 0 || json_integer_value(p) > 1000000)
        return sb_api_fail(op, 422, "validation_failed", "field 'position' must be 0 to 1000000");
    *position = json_integer_value(p);
    json_object_del(doc, "position");
    return 0;
}

static json_t *with_position(json_t *doc, const sb_doc_kind *k, int64_t position)
{
    if (k->position == SB_DOC_POSITION_ORDERED)
        json_object_set_new(doc, "position", json_integer(position));
    return doc;
}

/* Validates `doc` as document `id` of kind k; 422 naming the field. */
static int check_doc(sb_tx *tx, sb_api_op *op, const sb_doc_kind *k, const json_t *doc, int64_t id)
{
    sb_config_error err = {{0}, {0}};
    sb_config_refs refs = {0};
    int rc = sb_config_check(k->kind, doc, &refs, &err);
    if (rc != 0)
        return sb_api_fail(op, 422, "validation_failed", "field '%s': %s", err.field[0] ? err.field : "(body)",
                           err.message);
    return k->check != NULL ? k->check(tx, op, k, doc, &refs, id) : 0;
}

static int save(sb_tx *tx, sb_api_op *op, bool create)
{
    const sb_doc_kind *k = op_kind(op);
    json_t *doc = json_deep_copy(op->body);
    int64_t position = 0, id = op->path_id;
    bool given = false;
    int rc = take_position(op, k, doc, &position, &given);
    if (rc != 0)
        goto out;
    json_t *jid = json_object_get(doc, "id");
    if (create && jid == NULL) {
        rc = sb_tx_int(tx, &id, "SELECT COALESCE(MAX(id), 0) + 1 FROM config_item WHERE kind = ?", "t", k->kind);
        if (rc != 1) {
            rc = rc == 0 ? SB_EIO : rc;
            goto out;
        }
        json_object_set_new(doc, "id", json_integer(id));
    } else if (!create && jid == NULL) {
        json_object_set_new(doc, "id", json_integer(id));
    } else if (!json_is_integer(jid) || json_integer_value(jid) <= 0 ||
               (!create && json_integer_value(jid) != op->path_id)) {
        rc = sb_api_fail(op, 422, "validation_failed", "field 'id' must be %s",
                         create ? "a positive integer" : "the id in the path");
        goto out;
    } else {
        id = json_integer_value(jid);
    }
    int64_t old_position = 0;
    json_t *before = load(tx, k->kind, id, &old_position);
    bool existed = before != NULL;
    json_decref(before);
    if (create && existed) {
        rc = sb_api_fail(op, 409, "conflict", "%s %lld already exists", k->kind, (long long)id);
        goto out;
    }
    if (!create && !existed) {
        rc = sb_api_fail(op, 404, "not_found", "%s %lld does not exist", k->kind, (long long)id);
        goto out;
    }
    if (!given)
        position = create ? id * 10 : old_position;
    if ((rc = check_doc(tx, op, k, doc, id)) != 0)
        goto out;
    char *text = json_dumps(doc, JSON_COMPACT);
    int64_t now = sb_tx_now(tx);
    rc = create
             ? sb_tx_exec(tx,
                          "INSERT INTO config_item (kind, id, position, data, created_at, updated_at) "
                          "VALUES (?, ?, ?, ?, ?, ?)",
                          "tiitii", k->kind, id, position, text, now, now)
             : sb_tx_exec(tx, "UPDATE config_item SET position = ?, data = ?, updated_at = ? WHERE kind = ? AND id = ?",
                          "ititi", position, text, now, k->kind, id);
    free(text);
    if (rc == 0)
        rc = sb_event_log(tx, (sb_actor){"agent", op->agent_id}, k->kind, id,
                          create ? "config.created" : "config.updated", json_pack("{s:s}", "kind", k->kind));
    if (rc != 0)
        goto out;
    op->out = json_pack("{s:O}", k->one, with_position(doc, k, position));
    op->status = create ? 201 : 200;
    op->after = reload_after;
out:
    json_decref(doc);
    return rc;
}

static int create_action(sb_tx *tx, sb_api_op *op)
{
    return save(tx, op, true);
}

static int put_action(sb_tx *tx, sb_api_op *op)
{
    return save(tx, op, false);
}

static int delete_action(sb_tx *tx, sb_api_op *op)
{
    const sb_doc_kind *k = op_kind(op);
    json_t *doc = load(tx, k->kind, op->path_id, NULL);
    if (doc == NULL)
        return sb_api_fail(op, 404, "not_found", "%s %lld does not exist", k->kind, (long long)op->path_id);
    json_decref(doc);
    int rc = k->check_unused != NULL ? k->check_unused(tx, op, k, op->path_id) : 0;
    if (rc == 0)
        rc = sb_tx_exec(tx, "DELETE FROM config_item WHERE kind = ? AND id = ?", "ti", k->kind, op->path_id);
    if (rc == 0)
        rc = sb_event_log(tx, (sb_actor){"agent", op->agent_id}, k->kind, op->path_id, "config.deleted",
                          json_pack("{s:s}", "kind", k->kind));
    if (rc == 0) {
        op->out = json_pack("{s:{s:s,s:I}}", "deleted", "kind", k->kind, "id", (json_int_t)op->path_id);
        op->after = reload_after;
    }
    return rc;
}

static bool submit(sb_app *app, sb_http_req *req, sb_role role, sb_api_action action, const sb_doc_kind *k, int64_t id,
                   bool body, bool read_only)
{
    sb_api_op *op = sb_api_op_new(app, req, role, action);
    op->ctx = (void *)k;
    op->path_id = id;
    op->read_only = read_only;
    if (body && !sb_api_parse_body(op))
        return true;
    sb_api_submit(op);
    return true;
}

bool sb_api_docs_route(sb_app *app, sb_http_req *req, const char *path, const sb_doc_kind *kinds, size_t nkinds)
{
    sb_http_method m = sb_http_req_method(req);
    bool read = m == SB_HTTP_GET || m == SB_HTTP_HEAD;
    for (size_t i = 0; i < nkinds; i++) {
        const sb_doc_kind *k = &kinds[i];
        if (strcmp(path, k->collection) == 0) {
            if (read)
                return submit(app, req, SB_ROLE_AGENT, list_action, k, 0, false, true);
            if (m == SB_HTTP_POST)
                return submit(app, req, SB_ROLE_ADMIN, create_action, k, 0, true, false);
            sb_respond_method_not_allowed(req, "GET, POST");
            return true;
        }
        if (strncmp(path, k->prefix, strlen(k->prefix)) != 0)
            continue;
        int64_t id;
        const char *rest;
        if (!sb_path_id(path, k->prefix, &id, &rest) || *rest != '\0' || id <= 0) {
            sb_http_respond_error(req, 404, "not_found", "no such resource: %s", path);
            return true;
        }
        if (read)
            return submit(app, req, SB_ROLE_AGENT, get_action, k, id, false, true);
        if (m == SB_HTTP_PUT)
            return submit(app, req, SB_ROLE_ADMIN, put_action, k, id, true, false);
        if (m == SB_HTTP_DELETE)
            return submit(app, req, SB_ROLE_ADMIN, delete_action, k, id, false, false);
        sb_respond_method_not_allowed(req, "GET, PUT, DELETE");
        return true;
    }
    return false;
}

/* ---- engine settings: /api/v1/settings ---- */

static int settings_json(sb_tx *tx, json_t **out)
{
    json_t *o = json_pack("{s:n,s:i,s:s,s:s,s:{s:f,s:f},s:s,s:i}", "csat_template_id", "auto_replies_per_hour", 3,
                          "company_name", "", "default_language", "ru", "weights", "chat", 1.0 / 3, "email", 0.1,
                          "timezone", "UTC", "missed_call_callback_minutes", 15);
    sb_stmt *s = sb_tx_query(tx, "SELECT key, value FROM setting WHERE key LIKE 'engine.%'", "");
    if (s == NULL) {
        json_decref(o);
        return SB_EIO;
    }
    while (sb_stmt_step(s) == 1) {
        const char *key = sb_stmt_text(s, 0) + 7, *value = sb_stmt_text(s, 1);
        if (strcmp(key, "csat_template_id") == 0 || strcmp(key, "auto_replies_per_hour") == 0 ||
            strcmp(key, "missed_call_callback_minutes") == 0)
            json_object_set_new(o, key, json_integer(strtoll(value, NULL, 10)));
        else if (strcmp(key, "company_name") == 0 || strcmp(key, "default_language") == 0 ||
                 strcmp(key, "timezone") == 0)
            json_object_set_new(o, key, json_string(value));
        else if (strcmp(key, "weight_chat") == 0 || strcmp(key, "weight_email") == 0)
            json_object_set_new(json_object_get(o, "weights"), key + 7, json_real(strtod(value, NULL)));
    }
    sb_stmt_end(s);
    *out = o;
    return 0;
}

static int get_settings_action(sb_tx *tx, sb_api_op *op)
{
    json_t *o = NULL;
    int rc = settings_json(tx, &o);
    if (rc == 0)
        op->out = json_pack("{s:o}", "settings", o);
    return rc;
}

static int put_setting(sb_tx *tx, const char *key, const char *value)
{
    char k[64];
    snprintf(k, sizeof k, "engine.%s", key);
    if (value == NULL)
        return sb_tx_exec(tx, "DELETE FROM setting WHERE key = ?", "t", k);
    return sb_tx_exec(tx, "INSERT INTO setting (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = ?2",
                      "tt", k, value);
}

/* The installation's time zone (the dashboard's day) must be one the
 * TZif reader loads, as a business calendar's would be. "UTC" needs no
 * file: it is the default, and the dashboard counts it without one. */
static int check_time_zone(sb_api_op *op, const char *name)
{
    if (name == NULL)
        return sb_api_fail(op, 422, "validation_failed",
                           "field 'timezone' must be an IANA time zone name such as \"Europe/Moscow\"");
    if (strcmp(name, "UTC") == 0)
        return 0;
    sb_tz *tz = NULL;
    int rc = sb_tz_load(name, &tz);
    sb_tz_free(tz);
    if (rc == SB_ENOTFOUND)
        return sb_api_fail(op, 422, "validation_failed",
                           "field 'timezone': unknown time zone \"%.100s\" (an IANA name such as \"Asia/Almaty\")",
                           name);
    if (rc == SB_EINVAL)
        return sb_api_fail(op, 422, "validation_failed", "field 'timezone': the zone file of \"%.100s\" is corrupt",
                           name);
    return rc;
}

static int patch_settings_action(sb_tx *tx, sb_api_op *op)
{
    static const char *const allowed[] = {"csat_template_id",
                                          "auto_replies_per_hour",
                                          "company_name",
                                          "default_language",
                                          "weights",
                                          "timezone",
                                          "missed_call_callback_minutes",
                                          NULL};
    int rc = sb_api_only_fields(op, op->body, allowed);
    if (rc != 0)
        return rc;
    json_t *csat = json_object_get(op->body, "csat_template_id"),
           *per = json_object_get(op->body, "auto_replies_per_hour"),
           *company = json_object_get(op->body, "company_name"), *lang = json_object_get(op->body, "default_language");
    char buf[32];
    if (csat != NULL) {
        if (!json_is_null(csat) && (!json_is_integer(csat) || json_integer_value(csat) <= 0))
            return sb_api_fail(op, 422, "validation_failed", "field 'csat_template_id' must be a template id or null");
        if (!json_is_null(csat)) {
            rc = sb_tx_int(tx, &(int64_t){0}, "SELECT 1 FROM config_item WHERE kind = 'template' AND id = ?", "i",
                           json_integer_value(csat));
            if (rc < 0)
                return rc;
            if (rc == 0)
                return sb_api_fail(op, 422, "validation_failed",
                                   "field 'csat_template_id': template %lld does not exist",
                                   (long long)json_integer_value(csat));
            snprintf(buf, sizeof buf, "%lld", (long long)json_integer_value(csat));
        }
        if ((rc = put_setting(tx, "csat_template_id", json_is_null(csat) ? NULL : buf)) != 0)
            return rc;
    }
    if (per != NULL) {
        if (!json_is_integer(per) || json_integer_value(per) < 1 || json_integer_value(per) > 16)
            return sb_api_fail(op, 422, "validation_failed", "field 'auto_replies_per_hour' must be 1 to 16");
        snprintf(buf, sizeof buf, "%lld", (long long)json_integer_value(per));
        if ((rc = put_setting(tx, "auto_replies_per_hour", buf)) != 0)
            return rc;
    }
    json_t *callback = json_object_get(op->body, "missed_call_callback_minutes");
    if (callback != NULL) {
        /* the due time of the call-back task a missed call leaves */
        if (!json_is_integer(callback) || json_integer_value(callback) < 1 || json_integer_value(callback) > 10080)
            return sb_api_fail(op, 422, "validation_failed",
                               "field 'missed_call_callback_minutes' must be 1 to 10080 (a week)");
        snprintf(buf, sizeof buf, "%lld", (long long)json_integer_value(callback));
        if ((rc = put_setting(tx, "missed_call_callback_minutes", buf)) != 0)
            return rc;
    }
    if (company != NULL) {
        const char *z = json_string_value(company);
        if (z == NULL || strlen(z) > 63)
            return sb_api_fail(op, 422, "validation_failed", "field 'company_name' must be text of at most 63 bytes");
        if ((rc = put_setting(tx, "company_name", z)) != 0)
            return rc;
    }
    if (lang != NULL) {
        const char *z = json_string_value(lang);
        size_t n = z != NULL ? strlen(z) : 0;
        if (n < 2 || n > 7 || strspn(z, "abcdefghijklmnopqrstuvwxyz-") != n)
            return sb_api_fail(op, 422, "validation_failed", "field 'default_language' must be a code such as \"ru\"");
        if ((rc = put_setting(tx, "default_language", z)) != 0)
            return rc;
    }
    json_t *weights = json_object_get(op->body, "weights");
    if (weights != NULL) {
        static const char *const weighed[] = {"chat", "email"};
        const char *wk;
        json_t *wv;
        if (!json_is_object(weights))
            return sb_api_fail(op, 422, "validation_failed", "field 'weights' must be an object: {\"chat\": 0.33}");
        json_object_foreach (weights, wk, wv) {
            bool known = strcmp(wk, weighed[0]) == 0 || strcmp(wk, weighed[1]) == 0;
            double w = json_number_value(wv);
            if (!known)
                return sb_api_fail(op, 422, "validation_failed",
                                   "field 'weights.%s': only chat and email have weights (a call takes the whole "
                                   "agent)",
                                   wk);
            if (!json_is_number(wv) || !(w > 0 && w <= 1))
                return sb_api_fail(op, 422, "validation_failed", "field 'weights.%s' must be above 0 and at most 1",
                                   wk);
            char key[32];
            snprintf(key, sizeof key, "weight_%s", wk);
            snprintf(buf, sizeof buf, "%.6f", w);
            if ((rc = put_setting(tx, key, buf)) != 0)
                return rc;
        }
    }
    json_t *zone = json_object_get(op->body, "timezone");
    if (zone != NULL) {
        const char *z = json_string_value(zone);
        if ((rc = check_time_zone(op, z)) != 0)
            return rc;
        if ((rc = put_setting(tx, "timezone", z)) != 0)
            return rc;
    }
    rc = sb_event_log(tx, (sb_actor){"agent", op->agent_id}, "settings", 0, "settings.updated", json_incref(op->body));
    json_t *o = NULL;
    if (rc == 0)
        rc = settings_json(tx, &o);
    if (rc != 0)
        return rc;
    op->out = json_pack("{s:o}", "settings", o);
    op->after = reload_after;
    return 0;
}

static bool route_settings(sb_app *app, sb_http_req *req, const char *path)
{
    if (strcmp(path, "/api/v1/settings") != 0)
        return false;
    sb_http_method m = sb_http_req_method(req);
    if (m == SB_HTTP_GET || m == SB_HTTP_HEAD) {
        sb_api_submit(sb_api_op_new(app, req, SB_ROLE_AGENT, get_settings_action));
    } else if (m == SB_HTTP_PATCH) {
        sb_api_op *op = sb_api_op_new(app, req, SB_ROLE_ADMIN, patch_settings_action);
        if (sb_api_parse_body(op))
            sb_api_submit(op);
    } else {
        sb_respond_method_not_allowed(req, "GET, PATCH");
    }
    return true;
}

/* ---- routing ---- */

bool sb_api_config_route(sb_app *app, sb_http_req *req, const char *path)
{
    if (route_settings(app, req, path))
        return true;
    return sb_api_docs_route(app, req, path, engine_kinds, SB_ARRAY_LEN(engine_kinds));
}
