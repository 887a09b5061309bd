/* blacklist.c - /api/v1/blacklist: phones, emails, messenger handles and
 * contacts whose messages are stored but neither routed nor answered
 * automatically (dispatch.c closes their tickets with the reason). Every
 * entry needs a reason and records who added it. Supervisors manage it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "dispatch.h"

#define MAX_VALUE  200
#define MAX_REASON 500

static json_t *entry_json(sb_stmt *s)
{
    return json_pack("{s:I,s:s,s:s,s:s,s:o,s:o}", "id", (json_int_t)sb_stmt_int(s, 0), "kind", sb_stmt_text(s, 1),
                     "value", sb_stmt_text(s, 2), "reason", sb_stmt_text(s, 3), "added_by",
                     sb_stmt_isnull(s, 4) ? json_null() : json_integer(sb_stmt_int(s, 4)), "created_at",
                     sb_json_time(sb_stmt_int(s, 5)));
}

static int list_action(sb_tx *tx, sb_api_op *op)
{
    sb_stmt *s = sb_tx_query(tx, "SELECT id, kind, value, reason, added_by, created_at FROM blacklist ORDER BY id", "");
    if (s == NULL)
        return SB_EIO;
    json_t *list = json_array();
    int rc;
    while ((rc = sb_stmt_step(s)) == 1)
        json_array_append_new(list, entry_json(s));
    sb_stmt_end(s);
    if (rc < 0) {
        json_decref(list);
        return rc;
    }
    op->out = json_pack("{s:o}", "blacklist", list);
    return 0;
}

/* The stored form of `value` for `kind`: E.164 phones, lower-case emails. */
int sb_blacklist_normalize(const char *kind, const char *value, char *out, size_t cap)
{
    if (strcmp(kind, "phone") == 0)
        return sb_phone_normalize(value, "7", out, cap);
    if (strcmp(kind, "email") == 0)
        return sb_email_normalize(value, out, cap);
    if (strcmp(kind, "contact") == 0) {
        char *end = NULL;
        long long id = strtoll(value, &end, 10);
        if (id <= 0 || *end != '\0')
            return SB_EINVAL;
        snprintf(out, cap, "%lld", id);
        return 0;
    }
    if (strcmp(kind, "handle") == 0) {
        if (value[0] == '\0' || strlen(value) >= cap)
            return SB_EINVAL;
        snprintf(out, cap, "%s", value);
        return 0;
    }
    return SB_EINVAL;
}

static void reload_after(sb_api_op *op)
{
    sb_dispatch_reload(op->app->dispatch);
}

static int create_action(sb_tx *tx, sb_api_op *op)
{
    static const char *const allowed[] = {"kind", "value", "reason", NULL};
    const char *kind = NULL, *value = NULL, *reason = NULL;
    int rc = sb_api_only_fields(op, op->body, allowed);
    if (rc || (rc = sb_api_field_str(op, op->body, "kind", true, 16, &kind)) ||
        (rc = sb_api_field_str(op, op->body, "value", true, MAX_VALUE, &value)) ||
        (rc = sb_api_field_str(op, op->body, "reason", true, MAX_REASON, &reason)))
        return rc;
    if (strcmp(kind, "phone") != 0 && strcmp(kind, "email") != 0 && strcmp(kind, "handle") != 0 &&
        strcmp(kind, "contact") != 0)
        return sb_api_fail(op, 422, "validation_failed", "field 'kind' must be phone, email, handle or contact");
    if (reason[strspn(reason, " \t\r\n")] == '\0')
        return sb_api_fail(op, 422, "validation_failed", "field 'reason' is required: say why");
    char norm[MAX_VALUE + 8];
    if (sb_blacklist_normalize(kind, value, norm, sizeof norm) != 0)
        return sb_api_fail(op, 422, "validation_failed", "field 'value' is not a valid %s", kind);
    if (strcmp(kind, "contact") == 0) {
        rc = sb_tx_int(tx, &(int64_t){0}, "SELECT 1 FROM contact WHERE id = ?", "i", strtoll(norm, NULL, 10));
        if (rc < 0)
            return rc;
        if (rc == 0)
            return sb_api_fail(op, 422, "validation_failed", "field 'value': contact %s does not exist", norm);
    }
    int64_t id = 0;
    rc = sb_tx_insert(tx, &id,
                      "INSERT INTO blacklist (kind, value, reason, added_by, created_at) VALUES (?, ?, ?, ?, ?)",
                      "tttIi", kind, norm, reason, op->agent_id, sb_tx_now(tx));
    if (rc == SB_ECONFLICT)
        return sb_api_fail(op, 409, "conflict", "%s %s is already on the blacklist", kind, norm);
    if (rc != 0)
        return rc;
    rc = sb_event_log(tx, (sb_actor){"agent", op->agent_id}, "blacklist", id, "blacklist.added",
                      json_pack("{s:s,s:s,s:s}", "kind", kind, "value", norm, "reason", reason));
    if (rc != 0)
        return rc;
    sb_stmt *s =
        sb_tx_query(tx, "SELECT id, kind, value, reason, added_by, created_at FROM blacklist WHERE id = ?", "i", id);
    if (s != NULL && sb_stmt_step(s) == 1)
        op->out = json_pack("{s:o}", "entry", entry_json(s));
    sb_stmt_end(s);
    op->status = 201;
    op->after = reload_after;
    return 0;
}

static int delete_action(sb_tx *tx, sb_api_op *op)
{
    int rc = sb_tx_int(tx, &(int64_t){0}, "SELECT 1 FROM blacklist WHERE id = ?", "i", op->path_id);
    if (rc < 0)
        return rc;
    if (rc == 0)
        return sb_api_fail(op, 404, "not_found", "blacklist entry %lld does not exist", (long long)op->path_id);
    rc = sb_tx_exec(tx, "DELETE FROM blacklist WHERE id = ?", "i", op->path_id);
    if (rc == 0)
        rc = sb_event_log(tx, (sb_actor){"agent", op->agent_id}, "blacklist", op->path_id, "blacklist.removed", NULL);
    if (rc != 0)
        return rc;
    op->out = json_pack("{s:{s:s,s:I}}", "deleted", "kind", "blacklist", "id", (json_int_t)op->path_id);
    op->after = reload_after;
    return 0;
}

bool sb_api_blacklist_route(sb_app *app, sb_http_req *req, const char *path)
{
    sb_http_method m = sb_http_req_method(req);
    if (strcmp(path, "/api/v1/blacklist") == 0)
        return sb_api_route_collection(app, req, SB_ROLE_SUPERVISOR, list_action, SB_ROLE_SUPERVISOR, create_action);
    int64_t id;
    const char *rest;
    if (strncmp(path, "/api/v1/blacklist/", 18) != 0)
        return false;
    if (!sb_path_id(path, "/api/v1/blacklist/", &id, &rest) || *rest != '\0' || id <= 0) {
        sb_http_respond_error(req, 404, "not_found", "no such resource: %s", path);
        return true;
    }
    if (m != SB_HTTP_DELETE) {
        sb_respond_method_not_allowed(req, "DELETE");
        return true;
    }
    sb_api_op *op = sb_api_op_new(app, req, SB_ROLE_SUPERVISOR, delete_action);
    op->path_id = id;
    sb_api_submit(op);
    return true;
}
