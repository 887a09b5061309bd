/* webhooks.c - /api/v1/webhooks: what admins need to see of rules'
 * webhooks. A webhook is a rule action (engine/rules.c); dispatch.c puts
 * each call in the outbox (kind 'webhook') and outbox.c delivers it, signed
 * with the installation's webhook secret (setting 'webhook_secret', made at
 * boot). Here: the recent deliveries with their status, attempts and last
 * error, and the secret itself, shown or replaced. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/webhooks.h"

#include "api/api.h"
#include "base/crypto.h"

#define DEFAULT_LIMIT 50
#define MAX_LIMIT     200

typedef struct deliveries_ctx {
    int64_t limit;
    char status[8]; /* "" = any */
} deliveries_ctx;

static json_t *time_or_null(sb_stmt *s, int col)
{
    return sb_stmt_isnull(s, col) ? json_null() : sb_json_time(sb_stmt_int(s, col));
}

static json_t *int_or_null(sb_stmt *s, int col)
{
    return sb_stmt_isnull(s, col) ? json_null() : json_integer(sb_stmt_int(s, col));
}

/* Newest first. The rule and the ticket come from the stored body
 * ({"event": "rule.webhook", "rule_id", "at", "ticket"}); next_at only
 * means something while the delivery is pending. */
static int deliveries_action(sb_tx *tx, sb_api_op *op)
{
    const deliveries_ctx *c = op->ctx;
    sb_stmt *s = sb_tx_query(tx,
                             "SELECT id, url, status, attempts, next_at, last_error, created_at, updated_at, "
                             "json_extract(body, '$.rule_id'), json_extract(body, '$.ticket.number') "
                             "FROM outbox WHERE kind = 'webhook' AND (?1 = '' OR status = ?1) "
                             "ORDER BY id DESC LIMIT ?2",
                             "ti", c->status, c->limit);
    if (s == NULL)
        return SB_EIO;
    json_t *list = json_array();
    int rc;
    while ((rc = sb_stmt_step(s)) == 1) {
        bool pending = strcmp(sb_stmt_text(s, 2), "pending") == 0;
        const char *err = sb_stmt_text(s, 5);
        json_array_append_new(list, json_pack("{s:I,s:s,s:o,s:o,s:s,s:I,s:o,s:o,s:o,s:o}", "id",
                                              (json_int_t)sb_stmt_int(s, 0), "url", sb_stmt_text(s, 1), "rule_id",
                                              int_or_null(s, 8), "ticket_number", int_or_null(s, 9), "status",
                                              sb_stmt_text(s, 2), "attempts", (json_int_t)sb_stmt_int(s, 3), "next_at",
                                              pending ? time_or_null(s, 4) : json_null(), "last_error",
                                              err != NULL ? json_string(err) : json_null(), "created_at",
                                              time_or_null(s, 6), "updated_at", time_or_null(s, 7)));
    }
    sb_stmt_end(s);
    if (rc < 0) {
        json_decref(list);
        return rc;
    }
    op->out = json_pack("{s:o}", "deliveries", list);
    return 0;
}

static int secret_get_action(sb_tx *tx, sb_api_op *op)
{
    sb_stmt *s = sb_tx_query(tx, "SELECT value FROM setting WHERE key = 'webhook_secret'", "");
    if (s == NULL)
        return SB_EIO;
    int rc = sb_stmt_step(s);
    if (rc == 1)
        op->out = json_pack("{s:s}", "secret", sb_stmt_text(s, 0));
    sb_stmt_end(s);
    if (rc < 0)
        return rc;
    return rc == 1 ? 0 : SB_EIO; /* made at boot: its absence is a broken store */
}

/* A new secret applies to every delivery from now on, the pending ones
 * included: the outbox reads the key each time it sends. */
static int secret_rotate_action(sb_tx *tx, sb_api_op *op)
{
    char secret[65];
    sb_random_hex(secret, 32);
    int rc = sb_tx_exec(tx, "INSERT OR REPLACE INTO setting (key, value) VALUES ('webhook_secret', ?)", "t", secret);
    if (rc == 0)
        rc = sb_event_log(tx, (sb_actor){"agent", op->agent_id}, "settings", 0, "webhook.secret_rotated", NULL);
    if (rc != 0)
        return rc;
    op->out = json_pack("{s:s}", "secret", secret);
    return 0;
}

static bool route_deliveries(sb_app *app, sb_http_req *req)
{
    sb_http_method m = sb_http_req_method(req);
    if (m != SB_HTTP_GET && m != SB_HTTP_HEAD) {
        sb_respond_method_not_allowed(req, "GET");
        return true;
    }
    deliveries_ctx *c = sb_xcalloc(1, sizeof *c);
    c->limit = DEFAULT_LIMIT;
    const char *limit = sb_http_req_query_param(req, "limit");
    const char *status = sb_http_req_query_param(req, "status");
    if (limit != NULL && (!sb_api_parse_id(limit, &c->limit) || c->limit < 1 || c->limit > MAX_LIMIT)) {
        free(c);
        sb_http_respond_error(req, 422, "validation_failed", "parameter 'limit' must be 1..%d", MAX_LIMIT);
        return true;
    }
    if (status != NULL && strcmp(status, "pending") != 0 && strcmp(status, "sent") != 0 &&
        strcmp(status, "failed") != 0) {
        free(c);
        sb_http_respond_error(req, 422, "validation_failed", "parameter 'status' must be pending, sent or failed");
        return true;
    }
    snprintf(c->status, sizeof c->status, "%s", status != NULL ? status : "");
    sb_api_op *op = sb_api_op_new(app, req, SB_ROLE_ADMIN, deliveries_action);
    op->ctx = c;
    op->ctx_free = free;
    sb_api_submit(op);
    return true;
}

bool sb_api_webhooks_route(sb_app *app, sb_http_req *req, const char *path)
{
    if (strncmp(path, "/api/v1/webhooks", 16) != 0 || (path[16] != '\0' && path[16] != '/'))
        return false;
    if (strcmp(path, "/api/v1/webhooks/deliveries") == 0)
        return route_deliveries(app, req);
    if (strcmp(path, "/api/v1/webhooks/secret") != 0) {
        sb_http_respond_error(req, 404, "not_found", "no such resource: %s", path);
        return true;
    }
    sb_http_method m = sb_http_req_method(req);
    sb_api_action action;
    if (m == SB_HTTP_GET || m == SB_HTTP_HEAD) {
        action = secret_get_action;
    } else if (m == SB_HTTP_POST) {
        action = secret_rotate_action;
    } else {
        sb_respond_method_not_allowed(req, "GET, POST");
        return true;
    }
    sb_api_submit(sb_api_op_new(app, req, SB_ROLE_ADMIN, action));
    return true;
}
