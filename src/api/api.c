/* api.c - request dispatch, authentication, the op lifecycle, validation. */
#include "api/api.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api/dashboard.h"
#include "api/ratelimit.h"
#include "api/webhooks.h"
#include "base/crypto.h"
#include "base/log.h"

sb_role sb_role_parse(const char *z)
{
    if (z == NULL)
        return SB_ROLE_NONE;
    if (strcmp(z, "agent") == 0)
        return SB_ROLE_AGENT;
    if (strcmp(z, "supervisor") == 0)
        return SB_ROLE_SUPERVISOR;
    if (strcmp(z, "admin") == 0)
        return SB_ROLE_ADMIN;
    return SB_ROLE_NONE;
}

const char *sb_role_name(sb_role r)
{
    switch (r) {
    case SB_ROLE_AGENT: return "agent";
    case SB_ROLE_SUPERVISOR: return "supervisor";
    case SB_ROLE_ADMIN: return "admin";
    case SB_ROLE_NONE: break;
    }
    return "none";
}

bool sb_path_id(const char *path, const char *prefix, int64_t *id, const char **rest)
{
    size_t pl = strlen(prefix);
    if (strncmp(path, prefix, pl) != 0)
        return false;
    const char *p = path + pl;
    if (*p < '0' || *p > '9')
        return false;
    int64_t v = 0;
    while (*p >= '0' && *p <= '9') {
        if (v > (INT64_MAX - 9) / 10)
            return false;
        v = v * 10 + (*p - '0');
        p++;
    }
    if (*p != '\0' && *p != '/')
        return false;
    *id = v;
    if (rest != NULL)
        *rest = p;
    return true;
}

void sb_respond_method_not_allowed(sb_http_req *req, const char *allow)
{
    sb_http_add_header(req, "Allow", allow);
    sb_http_respond_error(req, 405, "method_not_allowed", "%s is not allowed here; allowed: %s",
                          sb_http_req_method_name(req), allow);
}

sb_api_op *sb_api_op_new(sb_app *app, sb_http_req *req, sb_role min_role, sb_api_action action)
{
    sb_api_op *op = sb_xcalloc(1, sizeof *op);
    op->app = app;
    op->req = req;
    op->min_role = min_role;
    op->action = action;
    op->status = 200;
    op->events = json_array();
    return op;
}

void sb_api_op_free(sb_api_op *op)
{
    if (op == NULL)
        return;
    json_decref(op->body);
    json_decref(op->out);
    json_decref(op->events);
    sb_store_free_later(op->app->store, op->out_text);
    if (op->ctx_free != NULL)
        op->ctx_free(op->ctx);
    free(op);
}

int sb_api_fail(sb_api_op *op, int status, const char *code, const char *fmt, ...)
{
    op->status = status;
    snprintf(op->err_code, sizeof op->err_code, "%s", code);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(op->err_msg, sizeof op->err_msg, fmt, ap);
    va_end(ap);
    switch (status) {
    case 401: return SB_EAUTH;
    case 403: return SB_EPERM;
    case 404: return SB_ENOTFOUND;
    case 409: return SB_ECONFLICT;
    case 413: return SB_ETOOBIG;
    default: return SB_EINVAL;
    }
}

bool sb_api_parse_body(sb_api_op *op)
{
    sb_str body = sb_http_req_body(op->req);
    const char *ct = sb_http_req_header(op->req, "Content-Type");
    if (ct != NULL && strncasecmp(ct, "application/json", 16) != 0) {
        sb_http_respond_error(op->req, 415, "unsupported_media_type", "the body must be application/json");
        sb_api_op_free(op);
        return false;
    }
    if (!sb_utf8_valid(body.p, body.len)) {
        sb_http_respond_error(op->req, 400, "invalid_utf8", "the body is not valid UTF-8");
        sb_api_op_free(op);
        return false;
    }
    json_error_t err;
    json_t *v = json_loadb(body.p ? body.p : "", body.len, JSON_REJECT_DUPLICATES, &err);
    if (v == NULL) {
        sb_http_respond_error(op->req, 400, "malformed_json", "malformed JSON at offset %d: %s", err.position,
                              err.text);
        sb_api_op_free(op);
        return false;
    }
    if (!json_is_object(v)) {
        json_decref(v);
        sb_http_respond_error(op->req, 400, "malformed_json", "the body must be a JSON object");
        sb_api_op_free(op);
        return false;
    }
    op->body = v;
    return true;
}

int sb_api_field_str(sb_api_op *op, json_t *obj, const char *name, bool required, size_t maxlen, const char **out)
{
    json_t *v = json_object_get(obj, name);
    if (v == NULL || json_is_null(v)) {
        if (required)
            return sb_api_fail(op, 422, "validation_failed", "field '%s' is required", name);
        return 0;
    }
    if (!json_is_string(v))
        return sb_api_fail(op, 422, "validation_failed", "field '%s' must be a string", name);
    if (json_string_length(v) > maxlen)
        return sb_api_fail(op, 422, "validation_failed", "field '%s' is longer than %zu bytes", name, maxlen);
    if (strlen(json_string_value(v)) != json_string_length(v))
        return sb_api_fail(op, 422, "validation_failed", "field '%s' contains a NUL character", name);
    if (required && json_string_length(v) == 0)
        return sb_api_fail(op, 422, "validation_failed", "field '%s' must not be empty", name);
    *out = json_string_value(v);
    return 0;
}

int sb_api_field_int(sb_api_op *op, json_t *obj, const char *name, bool required, int64_t *out, bool *present)
{
    json_t *v = json_object_get(obj, name);
    if (present != NULL)
        *present = v != NULL;
    if (v == NULL) {
        if (required)
            return sb_api_fail(op, 422, "validation_failed", "field '%s' is required", name);
        return 0;
    }
    if (json_is_null(v)) {
        *out = 0;
        return 0;
    }
    if (!json_is_integer(v))
        return sb_api_fail(op, 422, "validation_failed", "field '%s' must be an integer", name);
    *out = json_integer_value(v);
    return 0;
}

int sb_api_only_fields(sb_api_op *op, json_t *obj, const char *const *allowed)
{
    const char *key;
    json_t *val;
    json_object_foreach (obj, key, val) {
        bool ok = false;
        for (const char *const *a = allowed; *a != NULL; a++)
            if (strcmp(key, *a) == 0)
                ok = true;
        if (!ok)
            return sb_api_fail(op, 422, "unknown_field", "unknown field '%s'", key);
    }
    return 0;
}

int sb_api_validate_tags(sb_api_op *op, json_t *tags)
{
    if (!json_is_array(tags) || json_array_size(tags) > 50)
        return sb_api_fail(op, 422, "validation_failed", "field 'tags' must be an array of at most 50 strings");
    size_t i;
    json_t *t;
    json_array_foreach (tags, i, t) {
        if (!json_is_string(t) || json_string_length(t) == 0 || json_string_length(t) > 64 ||
            strlen(json_string_value(t)) != json_string_length(t))
            return sb_api_fail(op, 422, "validation_failed",
                               "field 'tags' must contain non-empty strings of at most 64 bytes");
    }
    return 0;
}

int sb_api_validate_attributes(sb_api_op *op, json_t *attrs)
{
    if (!json_is_object(attrs) || json_object_size(attrs) > 100)
        return sb_api_fail(op, 422, "validation_failed", "field 'attributes' must be an object of at most %d keys",
                           100);
    const char *key;
    json_t *v;
    json_object_foreach (attrs, key, v) {
        size_t kl = strlen(key);
        if (kl == 0 || kl > 64)
            return sb_api_fail(op, 422, "validation_failed", "field 'attributes': keys must be 1..%d bytes", 64);
        if (json_is_string(v)) {
            if (json_string_length(v) > 4096)
                return sb_api_fail(op, 422, "validation_failed",
                                   "field 'attributes': value of '%s' is longer than %d bytes", key, 4096);
        } else if (!json_is_number(v) && !json_is_boolean(v) && !json_is_null(v)) {
            return sb_api_fail(op, 422, "validation_failed",
                               "field 'attributes': value of '%s' must be a string, number, boolean or null", key);
        }
    }
    return 0;
}

bool sb_api_parse_id(const char *z, int64_t *out)
{
    char *end = NULL;
    long long v = strtoll(z, &end, 10);
    if (z[0] == '\0' || *end != '\0' || v < 0)
        return false;
    *out = v;
    return true;
}

int sb_api_collect_ids(sb_stmt *s, int64_t **ids, size_t *n)
{
    *ids = NULL;
    *n = 0;
    if (s == NULL)
        return SB_EIO;
    size_t cap = 0;
    int rc;
    while ((rc = sb_stmt_step(s)) == 1) {
        if (*n == cap) {
            cap = cap ? cap * 2 : 16;
            *ids = sb_xrealloc(*ids, cap * sizeof **ids);
        }
        (*ids)[(*n)++] = sb_stmt_int(s, 0);
    }
    sb_stmt_end(s);
    if (rc < 0) {
        free(*ids);
        *ids = NULL;
        *n = 0;
    }
    return rc;
}

/* Authentication happens inside the op's transaction. It only reads (no
 * session is touched or extended), so it runs in read-only ops too. */
static int authenticate(sb_tx *tx, sb_api_op *op)
{
    if (op->token_hash[0] == '\0')
        return sb_api_fail(op, 401, "unauthorized", "authentication required (Bearer token or session)");
    sb_stmt *s;
    if (op->via_session)
        s = sb_tx_query(tx,
                        "SELECT a.id, a.role FROM session s JOIN agent a ON a.id = s.agent_id "
                        "WHERE s.hash = ? AND s.expires_at > ? AND a.active = 1",
                        "ti", op->token_hash, sb_tx_now(tx));
    else
        s = sb_tx_query(tx,
                        "SELECT a.id, a.role FROM api_token t JOIN agent a ON a.id = t.agent_id "
                        "WHERE t.hash = ? AND t.revoked_at IS NULL AND a.active = 1",
                        "t", op->token_hash);
    if (s == NULL)
        return SB_EIO;
    int rc = sb_stmt_step(s);
    if (rc == 1) {
        op->agent_id = sb_stmt_int(s, 0);
        op->role = sb_role_parse(sb_stmt_text(s, 1));
    }
    sb_stmt_end(s);
    if (rc < 0)
        return rc;
    if (rc == 0)
        return sb_api_fail(op, 401, "unauthorized", "invalid or expired credentials");
    if (op->via_session && !op->csrf_ok)
        return sb_api_fail(op, 403, "csrf_failed", "missing or wrong X-CSRF-Token header");
    if (op->role < op->min_role)
        return sb_api_fail(op, 403, "forbidden", "this needs the %s role", sb_role_name(op->min_role));
    return 0;
}

static int op_action(sb_tx *tx, sb_api_op *op)
{
    if (op->min_role != SB_ROLE_NONE) {
        int rc = authenticate(tx, op);
        if (rc != 0)
            return rc;
    }
    int rc = op->action(tx, op);
    if (rc != 0 && op->err_code[0] == '\0') {
        switch (rc) {
        case SB_ENOTFOUND: sb_api_fail(op, 404, "not_found", "not found"); break;
        case SB_ECONFLICT: sb_api_fail(op, 409, "conflict", "conflicts with existing data"); break;
        case SB_EINVAL: sb_api_fail(op, 422, "validation_failed", "invalid input"); break;
        case SB_EAGAIN: sb_api_fail(op, 503, "busy", "the store is busy, retry"); break;
        default: sb_api_fail(op, 500, "internal", "internal error"); break;
        }
    }
    return rc;
}

/* Runs on the store thread: the action, then the response body as text, so
 * that the JSON it built is freed where it was made. The events go to the
 * loop as JSON (sb_app_publish_built). */
static int op_run(sb_tx *tx, void *arg)
{
    sb_api_op *op = arg;
    int rc = op_action(tx, op);
    if (rc == 0 && op->out_on_loop) {
        op->committed_at = sb_tx_now(tx);
    } else if (rc == 0) {
        if (op->out == NULL)
            op->out = json_object();
        op->out_text = json_dumps(op->out, JSON_COMPACT);
        json_decref(op->out);
        op->out = NULL;
        op->committed_at = sb_tx_now(tx);
    } else {
        json_decref(op->out);
        op->out = NULL;
        json_decref(op->events);
        op->events = NULL;
    }
    return rc;
}

static void op_done(void *arg, int rc)
{
    sb_api_op *op = arg;
    if (op->req != NULL) {
        /* One line per API request, with the ids that tie it to the
         * connection and the agent (no bodies, no credentials). */
        int status = rc == 0 ? op->status : op->err_code[0] ? op->status : 503;
        sb_log(status >= 500 ? SB_WARN : SB_DEBUG, "api", "req=%llu agent=%lld %s %s status=%d code=%s",
               (unsigned long long)sb_http_req_id(op->req), (long long)op->agent_id, sb_http_req_method_name(op->req),
               sb_http_req_path(op->req), status,
               rc == 0           ? "ok"
               : op->err_code[0] ? op->err_code
                                 : "store");
    }
    if (rc == 0) {
        /* Answer first: the caller's latency must not grow with the
         * number of agents watching the stream. */
        if (op->after != NULL)
            op->after(op);
        if (op->req != NULL && op->out_text != NULL) {
            sb_http_respond(op->req, op->status, "application/json", op->out_text, strlen(op->out_text));
            op->req = NULL;
        } else if (op->req != NULL) {
            json_t *out = op->out ? op->out : json_object();
            op->out = NULL;
            sb_http_respond_json(op->req, op->status, out);
            op->req = NULL;
        }
        sb_app_publish_built(op->app, op->events, op->committed_at);
        op->events = NULL;
    } else if (op->req != NULL) {
        if (op->err_code[0] == '\0') {
            /* run succeeded but the commit did not: nothing was promised */
            sb_http_add_header(op->req, "Retry-After", "1");
            sb_http_respond_error(op->req, 503, "store_unavailable", "%s",
                                  op->read_only ? "the store could not be read; retry"
                                                : "the change could not be stored; retry");
        } else {
            if (op->status == 503)
                sb_http_add_header(op->req, "Retry-After", "1");
            sb_http_respond_error(op->req, op->status, op->err_code, "%s", op->err_msg);
        }
    }
    sb_api_op_free(op);
}

static void extract_credentials(sb_api_op *op)
{
    const char *auth = sb_http_req_header(op->req, "Authorization");
    if (auth != NULL && strncasecmp(auth, "Bearer ", 7) == 0) {
        const char *tok = auth + 7;
        while (*tok == ' ')
            tok++;
        sb_sha256_hex(tok, strlen(tok), op->token_hash);
        return;
    }
    const char *qtok = op->allow_query_token ? sb_http_req_query_param(op->req, "access_token") : NULL;
    if (qtok != NULL && qtok[0] != '\0') {
        sb_sha256_hex(qtok, strlen(qtok), op->token_hash);
        return;
    }
    const char *cookie = sb_http_req_cookie(op->req, "sb_session");
    if (cookie != NULL && cookie[0] != '\0') {
        sb_sha256_hex(cookie, strlen(cookie), op->token_hash);
        op->via_session = true;
        sb_http_method m = sb_http_req_method(op->req);
        if (m == SB_HTTP_GET || m == SB_HTTP_HEAD || m == SB_HTTP_OPTIONS) {
            op->csrf_ok = true;
        } else {
            const char *want = sb_http_req_cookie(op->req, "sb_csrf");
            const char *got = sb_http_req_header(op->req, "X-CSRF-Token");
            op->csrf_ok = want != NULL && got != NULL && want[0] != '\0' && sb_consttime_streq(want, got);
        }
    }
}

void sb_api_submit(sb_api_op *op)
{
    if (op->min_role != SB_ROLE_NONE)
        extract_credentials(op);
    if (op->read_only)
        sb_store_read(op->app->store, op_run, op_done, op);
    else
        sb_store_submit(op->app->store, op_run, op_done, op);
}

static bool check_limits(sb_app *app, sb_http_req *req)
{
    if (sb_store_pending(app->store) >= app->cfg.max_pending_ops) {
        app->metrics.overloaded++;
        sb_http_add_header(req, "Retry-After", "1");
        sb_http_respond_error(req, 503, "overloaded", "the server is overloaded; retry later");
        return false;
    }
    unsigned retry = 0;
    if (!sb_ratelimit_allow(app->ratelimit, req, &retry)) {
        app->metrics.rate_limited++;
        char buf[16];
        snprintf(buf, sizeof buf, "%u", retry ? retry : 1);
        sb_http_add_header(req, "Retry-After", buf);
        sb_http_respond_error(req, 429, "rate_limited", "too many requests; retry after %s s", buf);
        return false;
    }
    return true;
}

void sb_api_handle(sb_app *app, sb_http_req *req)
{
    const char *path = sb_http_req_path(req);
    if (strncmp(path, "/api/v1/", 8) != 0) {
        sb_http_respond_error(req, 404, "not_found", "no such resource");
        return;
    }
    if (!check_limits(app, req))
        return;
    if (sb_api_auth_route(app, req, path) || sb_api_tickets_route(app, req, path) ||
        sb_api_contacts_route(app, req, path) || sb_api_directory_route(app, req, path) ||
        sb_api_channels_route(app, req, path) || sb_api_config_route(app, req, path) ||
        sb_api_voice_config_route(app, req, path) || sb_api_blacklist_route(app, req, path) ||
        sb_api_tasks_route(app, req, path) || sb_api_webhooks_route(app, req, path) ||
        sb_api_metrics_route(app, req, path) || sb_api_system_route(app, req, path) ||
        sb_api_dashboard_route(app, req, path) || sb_api_outbound_route(app, req, path) ||
        sb_api_callbacks_route(app, req, path) || sb_api_calls_route(app, req, path))
        return;
    sb_http_respond_error(req, 404, "not_found", "no such resource: %s", path);
}

bool sb_api_route_collection(sb_app *app, sb_http_req *req, sb_role list_role, sb_api_action list, sb_role create_role,
                             sb_api_action create)
{
    sb_http_method m = sb_http_req_method(req);
    sb_api_op *op = NULL;
    if (m == SB_HTTP_GET || m == SB_HTTP_HEAD) {
        op = sb_api_op_new(app, req, list_role, list);
    } else if (m == SB_HTTP_POST) {
        op = sb_api_op_new(app, req, create_role, create);
        if (!sb_api_parse_body(op))
            return true;
    } else {
        sb_respond_method_not_allowed(req, "GET, POST");
        return true;
    }
    sb_api_submit(op);
    return true;
}
