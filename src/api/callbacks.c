/* callbacks.c - the website's call-back requests over HTTP (the scheduler:
 * src/voice/callbacks.c).
 *
 *   POST   /chat/callback {"channel_id", "phone", "name"?, "comment"?, "lang"?}   (public, like
 *          the widget's other /chat/ endpoints; no cookies, CORS open)
 *          -> 202 {"callback": {"id", "status": "queued", "duplicate", "within_hours",
 *                               "expected_at", "attempts", "max_attempts"}}
 *          400 bad JSON, 422 {"error": {"code", "message", "field"}}, 403 callback_disabled,
 *          404 no such chat channel, 409 callback_unavailable (no voice or trunk, or the
 *          channel's settings are wrong), 422 refused (blacklisted; stored), 429 rate_limited
 *   GET    /api/v1/callbacks?status=pending|queued|calling|done|failed|refused|cancelled|all
 *          &limit=100  (supervisors) -> {"callbacks": [...]}, newest first
 *   DELETE /api/v1/callbacks/{id}  (supervisors) -> {"callback": {...}} cancelled; 409 when it
 *          is being called or has ended
 *
 * The form's answer is sent after its commit: the request is durable. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "api/ratelimit.h"
#include "base/clock.h"
#include "base/log.h"
#include "voice/callbacks.h"

#define MAX_NAME    200
#define MAX_COMMENT 1000

/* ---- the public form ---- */

typedef struct form_op {
    sb_app *app;
    sb_http_req *req;
    sb_callback_form form;
    sb_callback_made made;
} form_op;

static void respond_field_error(sb_http_req *req, const char *field, const char *fmt, const char *what)
{
    char msg[200];
    snprintf(msg, sizeof msg, fmt, field, what);
    sb_http_respond_json(
        req, 422, json_pack("{s:{s:s,s:s,s:s}}", "error", "code", "validation_failed", "message", msg, "field", field));
}

/* Text a person typed: UTF-8 without control characters (newlines and
 * tabs only where `multiline`). */
static bool clean_text(const char *z, bool multiline)
{
    for (const unsigned char *p = (const unsigned char *)z; *p != '\0'; p++)
        if ((*p < ' ' && !(multiline && (*p == '\n' || *p == '\r' || *p == '\t'))) || *p == 0x7f)
            return false;
    return true;
}

static int form_run(sb_tx *tx, void *arg)
{
    form_op *o = arg;
    return sb_callback_form_run(tx, &o->form, &o->made);
}

static void form_done(void *arg, int rc)
{
    form_op *o = arg;
    sb_callback_made *m = &o->made;
    if (rc != 0) {
        sb_callback_form_discard(m);
        sb_http_add_header(o->req, "Retry-After", "1");
        sb_http_respond_error(o->req, 503, "store_unavailable", "retry later");
    } else if (m->status != 0) {
        sb_callback_form_discard(m);
        sb_http_respond_error(o->req, m->status, m->code, "%s", m->msg);
    } else if (m->outcome == SB_CALLBACK_REFUSED) {
        sb_callback_form_discard(m);
        sb_log(SB_INFO, "callback", "request=%lld refused: blacklisted", (long long)m->id);
        sb_http_respond_json(o->req, 422,
                             json_pack("{s:{s:s,s:s,s:s}}", "error", "code", "refused", "message",
                                       "this number cannot be called back", "field", "phone"));
    } else {
        bool dup = m->outcome == SB_CALLBACK_JOINED;
        sb_log(SB_INFO, "callback", "request=%lld %s channel=%lld team=%lld ticket=%lld within_hours=%d",
               (long long)m->id, dup ? "joined" : "queued", (long long)o->form.channel_id, (long long)m->team_id,
               (long long)m->ticket_id, (int)m->within_hours);
        json_t *cb = json_pack("{s:I,s:s,s:b,s:b,s:o,s:i,s:i}", "id", (json_int_t)m->id, "status", m->status_text,
                               "duplicate", dup, "within_hours", m->within_hours, "expected_at",
                               m->next_attempt_at != INT64_MAX ? sb_json_time(m->next_attempt_at) : json_null(),
                               "attempts", m->attempts, "max_attempts", m->max_attempts);
        sb_callback_form_after(o->app, m);
        sb_http_add_header(o->req, "Cache-Control", "no-store");
        sb_http_respond_json(o->req, 202, json_pack("{s:o}", "callback", cb));
    }
    free(o);
}

void sb_api_callback_form(sb_app *app, sb_http_req *req)
{
    if (app->calls == NULL || app->cfg.trunk_host[0] == '\0') {
        sb_http_respond_error(req, 409, "callback_unavailable", "call-back requests are not available now");
        return;
    }
    sb_api_op *parse = sb_api_op_new(app, req, SB_ROLE_NONE, NULL);
    if (!sb_api_parse_body(parse))
        return;
    json_t *body = json_incref(parse->body);
    sb_api_op_free(parse);
    static const char *const allowed[] = {"channel_id", "phone", "name", "comment", "lang", "token", "page", NULL};
    form_op *o = sb_xcalloc(1, sizeof *o);
    sb_callback_form *f = &o->form;
    const char *key;
    json_t *val;
    json_object_foreach (body, key, val) {
        bool known = false;
        for (const char *const *a = allowed; *a != NULL; a++)
            known = known || strcmp(*a, key) == 0;
        if (!known) {
            sb_http_respond_json(req, 422,
                                 json_pack("{s:{s:s,s:s,s:s}}", "error", "code", "unknown_field", "message",
                                           "unknown field", "field", key));
            goto done;
        }
        if (strcmp(key, "channel_id") != 0 && !json_is_string(val) && !json_is_null(val)) {
            respond_field_error(req, key, "field '%s' must be a string%s", "");
            goto done;
        }
    }
    json_t *ch = json_object_get(body, "channel_id");
    if (!json_is_integer(ch) || json_integer_value(ch) <= 0) {
        respond_field_error(req, "channel_id", "field '%s' must be a positive integer%s", "");
        goto done;
    }
    f->channel_id = json_integer_value(ch);
    const char *phone = json_string_value(json_object_get(body, "phone"));
    const char *name = json_string_value(json_object_get(body, "name"));
    const char *comment = json_string_value(json_object_get(body, "comment"));
    const char *lang = json_string_value(json_object_get(body, "lang"));
    if (phone == NULL || phone[0] == '\0') {
        respond_field_error(req, "phone", "field '%s' is required%s", "");
        goto done;
    }
    if (strlen(phone) > 40 || sb_phone_normalize(phone, "7", f->phone, sizeof f->phone) != 0) {
        respond_field_error(req, "phone", "field '%s' must be a phone number%s",
                            " (international +79991234567, or national 8 999 123-45-67)");
        goto done;
    }
    if (name != NULL && (strlen(name) > MAX_NAME || !clean_text(name, false))) {
        respond_field_error(req, "name", "field '%s' must be at most 200 bytes of text%s", "");
        goto done;
    }
    if (comment != NULL && (strlen(comment) > MAX_COMMENT || !clean_text(comment, true))) {
        respond_field_error(req, "comment", "field '%s' must be at most 1000 bytes of text%s", "");
        goto done;
    }
    if (lang != NULL && (strlen(lang) >= sizeof f->lang || strspn(lang, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQ"
                                                                        "RSTUVWXYZ-") != strlen(lang))) {
        respond_field_error(req, "lang", "field '%s' must be a language tag such as \"ru\" or \"en-US\"%s", "");
        goto done;
    }
    /* a form calls somebody's phone: far fewer than the general limit */
    char ipbuf[64];
    const char *ip = sb_ratelimit_client_ip(app->ratelimit, req, ipbuf, sizeof ipbuf);
    if (!sb_callbacks_allow(app->callbacks, ip != NULL ? ip : "", sb_clock_wall_ms())) {
        app->metrics.rate_limited++;
        sb_http_add_header(req, "Retry-After", "600");
        sb_http_respond_error(req, 429, "rate_limited", "too many call-back requests; try again later");
        goto done;
    }
    snprintf(f->name, sizeof f->name, "%s", name != NULL ? name : "");
    snprintf(f->comment, sizeof f->comment, "%s", comment != NULL ? comment : "");
    snprintf(f->lang, sizeof f->lang, "%s", lang != NULL ? lang : "");
    f->reopen_window_ms = app->cfg.reopen_window_ms;
    f->want_events = sb_call_ticket_want_events(app);
    o->app = app;
    o->req = req;
    json_decref(body);
    sb_store_submit(app->store, form_run, form_done, o);
    return;
done:
    json_decref(body);
    free(o);
}

/* ---- the supervisors' list ---- */

#define CB_SELECT                                                                                                      \
    "SELECT r.id, r.channel_id, r.phone, r.name, r.comment, r.language, r.team_id, r.status, r.reason, r.attempts, "   \
    "r.max_attempts, r.retry_seconds, r.next_attempt_at, r.last_attempt_at, r.last_result, r.agent_id, "               \
    "r.contact_id, r.ticket_id, t.number, r.task_id, r.requests, r.created_at, r.updated_at, r.done_at "               \
    "FROM callback_request r LEFT JOIN ticket t ON t.id = r.ticket_id "

static json_t *opt_int(sb_stmt *s, int col)
{
    return sb_stmt_isnull(s, col) ? json_null() : json_integer(sb_stmt_int(s, col));
}

static json_t *opt_text(sb_stmt *s, int col)
{
    return sb_stmt_isnull(s, col) ? json_null() : json_string(sb_stmt_text(s, col));
}

static json_t *opt_time(sb_stmt *s, int col)
{
    return sb_stmt_isnull(s, col) ? json_null() : sb_json_time(sb_stmt_int(s, col));
}

static json_t *callback_row(sb_stmt *s)
{
    json_t *row =
        json_pack("{s:I,s:o,s:s,s:o,s:o,s:o,s:o,s:s,s:o,s:I,s:I,s:I}", "id", (json_int_t)sb_stmt_int(s, 0),
                  "channel_id", opt_int(s, 1), "phone", sb_stmt_text(s, 2), "name", opt_text(s, 3), "comment",
                  opt_text(s, 4), "language", opt_text(s, 5), "team_id", opt_int(s, 6), "status", sb_stmt_text(s, 7),
                  "reason", opt_text(s, 8), "attempts", (json_int_t)sb_stmt_int(s, 9), "max_attempts",
                  (json_int_t)sb_stmt_int(s, 10), "retry_seconds", (json_int_t)sb_stmt_int(s, 11));
    json_object_set_new(row, "next_attempt_at", opt_time(s, 12));
    json_object_set_new(row, "last_attempt_at", opt_time(s, 13));
    json_object_set_new(row, "last_result", opt_text(s, 14));
    json_object_set_new(row, "agent_id", opt_int(s, 15));
    json_object_set_new(row, "contact_id", opt_int(s, 16));
    json_object_set_new(row, "ticket_id", opt_int(s, 17));
    json_object_set_new(row, "ticket_number", opt_int(s, 18));
    json_object_set_new(row, "task_id", opt_int(s, 19));
    json_object_set_new(row, "requests", json_integer(sb_stmt_int(s, 20)));
    json_object_set_new(row, "created_at", sb_json_time(sb_stmt_int(s, 21)));
    json_object_set_new(row, "updated_at", sb_json_time(sb_stmt_int(s, 22)));
    json_object_set_new(row, "done_at", opt_time(s, 23));
    return row;
}

typedef struct list_args {
    char status[16]; /* "" = all */
    int64_t limit;
    char error[160];
} list_args;

static const char *const list_params[] = {"status", "limit"};

static void parse_list(sb_http_req *req, list_args *a)
{
    char bad[40];
    bool repeated = false;
    a->limit = 100;
    if (sb_http_req_query_names(req, list_params, SB_ARRAY_LEN(list_params), bad, sizeof bad, &repeated) != 0) {
        sb_errorf(a->error, sizeof a->error,
                  repeated ? "parameter '%s' is given more than once" : "unknown parameter '%s' (known: status, limit)",
                  bad);
        return;
    }
    static const char *const statuses[] = {"pending", "queued",  "calling",   "done",
                                           "failed",  "refused", "cancelled", "all"};
    const char *st = sb_http_req_query_param(req, "status");
    if (st != NULL) {
        bool ok = false;
        for (size_t i = 0; i < SB_ARRAY_LEN(statuses); i++)
            ok = ok || strcmp(st, statuses[i]) == 0;
        if (!ok) {
            sb_errorf(a->error, sizeof a->error,
                      "parameter 'status' must be pending, queued, calling, done, failed, refused, cancelled or all");
            return;
        }
        if (strcmp(st, "all") != 0)
            snprintf(a->status, sizeof a->status, "%s", st);
    }
    const char *lim = sb_http_req_query_param(req, "limit");
    if (lim != NULL && (!sb_api_parse_id(lim, &a->limit) || a->limit < 1 || a->limit > 1000))
        sb_errorf(a->error, sizeof a->error, "parameter 'limit' must be 1 to 1000");
}

static int list_action(sb_tx *tx, sb_api_op *op)
{
    const list_args *a = op->ctx;
    if (a->error[0] != '\0')
        return sb_api_fail(op, 422, "validation_failed", "%s", a->error);
    sb_stmt *s = sb_tx_query(tx,
                             CB_SELECT "WHERE ?1 = '' OR r.status = ?1 OR (?1 = 'pending' AND r.status IN "
                                       "('queued','calling')) ORDER BY r.id DESC LIMIT ?2",
                             "ti", a->status, a->limit);
    if (s == NULL)
        return SB_EIO;
    json_t *list = json_array();
    int rc;
    while ((rc = sb_stmt_step(s)) == 1)
        json_array_append_new(list, callback_row(s));
    sb_stmt_end(s);
    if (rc < 0) {
        json_decref(list);
        return rc;
    }
    op->out = json_pack("{s:o}", "callbacks", list);
    return 0;
}

/* ---- cancelling ---- */

static int cancel_action(sb_tx *tx, sb_api_op *op)
{
    char status[16] = "";
    sb_stmt *s = sb_tx_query(tx, "SELECT status FROM callback_request WHERE id = ?", "i", op->path_id);
    if (s == NULL)
        return SB_EIO;
    int rc = sb_stmt_step(s);
    if (rc == 1)
        snprintf(status, sizeof status, "%s", sb_stmt_text(s, 0));
    sb_stmt_end(s);
    if (rc < 0)
        return rc;
    if (rc == 0)
        return sb_api_fail(op, 404, "not_found", "call-back request %lld does not exist", (long long)op->path_id);
    if (strcmp(status, "queued") != 0)
        return sb_api_fail(op, 409, "not_queued", "call-back request %lld is %s, not queued", (long long)op->path_id,
                           status);
    int64_t now = sb_tx_now(tx);
    rc = sb_tx_exec(tx,
                    "UPDATE callback_request SET status = 'cancelled', reason = 'cancelled by a supervisor', "
                    "next_attempt_at = NULL, done_at = ?, updated_at = ? WHERE id = ?",
                    "iii", now, now, op->path_id);
    if (rc == 0)
        rc = sb_event_log(tx, (sb_actor){"agent", op->agent_id}, "callback_request", op->path_id, "callback.cancelled",
                          NULL);
    if (rc != 0)
        return rc;
    s = sb_tx_query(tx, CB_SELECT "WHERE r.id = ?", "i", op->path_id);
    if (s == NULL || sb_stmt_step(s) != 1) {
        sb_stmt_end(s);
        return SB_EIO;
    }
    op->out = json_pack("{s:o}", "callback", callback_row(s));
    sb_stmt_end(s);
    return 0;
}

static void cancel_after(sb_api_op *op)
{
    sb_callbacks_forget(op->app->callbacks, op->path_id);
}

bool sb_api_callbacks_route(sb_app *app, sb_http_req *req, const char *path)
{
    sb_http_method m = sb_http_req_method(req);
    int64_t id = 0;
    const char *rest = NULL;
    sb_api_op *op;
    if (strcmp(path, "/api/v1/callbacks") == 0) {
        if (m != SB_HTTP_GET && m != SB_HTTP_HEAD) {
            sb_respond_method_not_allowed(req, "GET, HEAD");
            return true;
        }
        list_args *a = sb_xcalloc(1, sizeof *a);
        parse_list(req, a);
        op = sb_api_op_new(app, req, SB_ROLE_SUPERVISOR, list_action);
        op->ctx = a;
        op->ctx_free = free;
        op->read_only = true;
    } else if (sb_path_id(path, "/api/v1/callbacks/", &id, &rest) && *rest == '\0' && id > 0) {
        if (m != SB_HTTP_DELETE) {
            sb_respond_method_not_allowed(req, "DELETE");
            return true;
        }
        op = sb_api_op_new(app, req, SB_ROLE_SUPERVISOR, cancel_action);
        op->path_id = id;
        op->after = cancel_after;
    } else {
        return false;
    }
    sb_api_submit(op);
    return true;
}
