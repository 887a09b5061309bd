/* calls.c - /api/v1/calls: the call log, newest first (supervisors).
 *
 *   GET /api/v1/calls?status=answered|missed|...&limit=50&cursor=ID
 *
 * `next_cursor` is the id to pass as `cursor` for the next (older) page. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"

typedef struct list_args {
    char status[16];
    int64_t cursor, limit;
} list_args;

static bool status_valid(const char *z)
{
    static const char *const v[] = {"answered", "missed", "abandoned", "busy", "voicemail", "rejected", "failed"};
    for (size_t i = 0; i < SB_ARRAY_LEN(v); i++)
        if (strcmp(z, v[i]) == 0)
            return true;
    return false;
}

static json_t *opt_text(sb_stmt *s, int col)
{
    return sb_json_text(sb_stmt_text(s, col));
}

static json_t *call_row(sb_stmt *s)
{
    json_t *row = json_pack("{s:I,s:s,s:s,s:s,s:o,s:o,s:s,s:o,s:o,s:o,s:s,s:o,s:o,s:o}", "id",
                            (json_int_t)sb_stmt_int(s, 0), "direction", sb_stmt_text(s, 1), "from", sb_stmt_text(s, 2),
                            "to", sb_stmt_text(s, 3), "did", opt_text(s, 4), "source", opt_text(s, 5), "status",
                            sb_stmt_text(s, 6), "hangup_by", opt_text(s, 7), "hangup_cause", opt_text(s, 8), "sip_code",
                            sb_stmt_isnull(s, 9) ? json_null() : json_integer(sb_stmt_int(s, 9)), "ivr_path",
                            sb_stmt_text(s, 10), "offered_at", sb_json_time(sb_stmt_int(s, 11)), "answered_at",
                            sb_json_time(sb_stmt_int(s, 12)), "ended_at", sb_json_time(sb_stmt_int(s, 13)));
    json_object_set_new(row, "queue_team_id", sb_stmt_isnull(s, 14) ? json_null() : json_integer(sb_stmt_int(s, 14)));
    json_object_set_new(row, "agent_id", sb_stmt_isnull(s, 15) ? json_null() : json_integer(sb_stmt_int(s, 15)));
    return row;
}

static int list_action(sb_tx *tx, sb_api_op *op)
{
    list_args *a = op->ctx;
    sb_stmt *s = sb_tx_query(
        tx,
        "SELECT id, direction, from_number, to_number, did, source, status, hangup_by, "
        "hangup_cause, sip_code, ivr_path, offered_at, answered_at, ended_at, queue_team_id, agent_id FROM call "
        "WHERE (?1 = '' OR status = ?1) AND (?2 = 0 OR id < ?2) ORDER BY id DESC LIMIT ?3",
        "tii", a->status, a->cursor, a->limit + 1);
    if (s == NULL)
        return SB_EIO;
    json_t *list = json_array();
    int rc;
    int64_t last = 0;
    bool more = false;
    while ((rc = sb_stmt_step(s)) == 1) {
        if ((int64_t)json_array_size(list) == a->limit) {
            more = true;
            break;
        }
        last = sb_stmt_int(s, 0);
        json_array_append_new(list, call_row(s));
    }
    sb_stmt_end(s);
    if (rc < 0) {
        json_decref(list);
        return rc;
    }
    json_t *next = json_null();
    if (more) {
        char buf[32];
        snprintf(buf, sizeof buf, "%lld", (long long)last);
        next = json_string(buf);
    }
    op->out = json_pack("{s:o,s:o}", "calls", list, "next_cursor", next);
    return 0;
}

static void handle_list(sb_app *app, sb_http_req *req)
{
    list_args *a = sb_xcalloc(1, sizeof *a);
    a->limit = 50;
    const char *v;
    const char *bad = NULL;
    if ((v = sb_http_req_query_param(req, "status")) != NULL) {
        if (!status_valid(v))
            bad = "parameter 'status' must be answered, missed, abandoned, busy, voicemail, rejected or failed";
        else
            snprintf(a->status, sizeof a->status, "%s", v);
    }
    if ((v = sb_http_req_query_param(req, "cursor")) != NULL && !sb_api_parse_id(v, &a->cursor))
        bad = "parameter 'cursor' must be the next_cursor of a previous page";
    if ((v = sb_http_req_query_param(req, "limit")) != NULL &&
        (!sb_api_parse_id(v, &a->limit) || a->limit < 1 || a->limit > 200))
        bad = "parameter 'limit' must be 1..200";
    if (bad != NULL) {
        free(a);
        sb_http_respond_error(req, 422, "validation_failed", "%s", bad);
        return;
    }
    sb_api_op *op = sb_api_op_new(app, req, SB_ROLE_SUPERVISOR, list_action);
    op->read_only = true;
    op->ctx = a;
    op->ctx_free = free;
    sb_api_submit(op);
}

bool sb_api_calls_route(sb_app *app, sb_http_req *req, const char *path)
{
    if (strcmp(path, "/api/v1/calls") != 0)
        return false;
    sb_http_method m = sb_http_req_method(req);
    if (m == SB_HTTP_GET || m == SB_HTTP_HEAD)
        handle_list(app, req);
    else
        sb_respond_method_not_allowed(req, "GET");
    return true;
}
