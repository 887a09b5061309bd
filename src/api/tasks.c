/* tasks.c - /api/v1/tasks: call backs and follow-ups with an owner, a
 * deadline and an optional reminder, tied to a ticket and/or a contact.
 * The engine keeps the open ones and reminds their owner, marks them
 * overdue, tells the team's supervisor and runs task.overdue rules.
 *
 *   GET   /api/v1/tasks?assignee=me|ID&status=open|done|cancelled|all&overdue=1
 *   POST  /api/v1/tasks {"title", "kind", "ticket_number" | "contact_id", "assignee_id",
 *                        "due_at", "remind_at"}
 *   PATCH /api/v1/tasks/{id} {"title", "status", "due_at", "remind_at", "assignee_id"} */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "base/clock.h"
#include "dispatch.h"

#define MAX_TITLE 200

#define TASK_SELECT                                                                                                    \
    "SELECT k.id, k.title, k.kind, k.ticket_id, t.number, k.contact_id, k.assignee_id, k.due_at, k.remind_at, "        \
    "k.status, k.created_by, k.rule_id, k.reminded_at, k.overdue_at, k.done_at, k.created_at, k.updated_at "           \
    "FROM task k LEFT JOIN ticket t ON t.id = k.ticket_id "

static json_t *opt_int(sb_stmt *s, int col)
{
    return sb_stmt_isnull(s, col) ? json_null() : json_integer(sb_stmt_int(s, col));
}

static json_t *task_row(sb_stmt *s)
{
    return json_pack("{s:I,s:s,s:s,s:o,s:o,s:o,s:o,s:o,s:o,s:s,s:o,s:o,s:o,s:o,s:o,s:o,s:o}", "id",
                     (json_int_t)sb_stmt_int(s, 0), "title", sb_stmt_text(s, 1), "kind", sb_stmt_text(s, 2),
                     "ticket_id", opt_int(s, 3), "ticket_number", opt_int(s, 4), "contact_id", opt_int(s, 5),
                     "assignee_id", opt_int(s, 6), "due_at", sb_json_time(sb_stmt_int(s, 7)), "remind_at",
                     sb_json_time(sb_stmt_int(s, 8)), "status", sb_stmt_text(s, 9), "created_by", opt_int(s, 10),
                     "rule_id", opt_int(s, 11), "reminded_at", sb_json_time(sb_stmt_int(s, 12)), "overdue_at",
                     sb_json_time(sb_stmt_int(s, 13)), "done_at", sb_json_time(sb_stmt_int(s, 14)), "created_at",
                     sb_json_time(sb_stmt_int(s, 15)), "updated_at", sb_json_time(sb_stmt_int(s, 16)));
}

json_t *sb_task_json(sb_tx *tx, int64_t id)
{
    sb_stmt *s = sb_tx_query(tx, TASK_SELECT "WHERE k.id = ?", "i", id);
    json_t *out = s != NULL && sb_stmt_step(s) == 1 ? task_row(s) : NULL;
    sb_stmt_end(s);
    return out;
}

/* What the engine needs to know after the commit. */
typedef struct task_ctx {
    sb_event ev;
} task_ctx;

static void task_after(sb_api_op *op)
{
    task_ctx *c = op->ctx;
    sb_dispatch_event(op->app->dispatch, &c->ev);
}

static int engine_view(sb_tx *tx, sb_api_op *op, int64_t id)
{
    sb_stmt *s =
        sb_tx_query(tx, "SELECT ticket_id, assignee_id, due_at, remind_at, status FROM task WHERE id = ?", "i", id);
    if (s == NULL || sb_stmt_step(s) != 1) {
        sb_stmt_end(s);
        return SB_EIO;
    }
    task_ctx *c = sb_xcalloc(1, sizeof *c);
    bool open = strcmp(sb_stmt_text(s, 4), "open") == 0;
    c->ev = (sb_event){.kind = open ? SB_EV_TASK : SB_EV_TASK_DONE,
                       .task = {.id = id,
                                .ticket_id = sb_stmt_int(s, 0),
                                .assignee_id = sb_stmt_int(s, 1),
                                .due_at = sb_stmt_int(s, 2),
                                .remind_at = sb_stmt_int(s, 3)}};
    sb_stmt_end(s);
    op->ctx = c;
    op->ctx_free = free;
    op->after = task_after;
    return 0;
}

/* ---- list ---- */

typedef struct list_args {
    int64_t assignee; /* 0 = anyone */
    char status[16];  /* "" = all */
    bool overdue;
} list_args;

static int list_action(sb_tx *tx, sb_api_op *op)
{
    list_args *a = op->ctx;
    sb_stmt *s = sb_tx_query(tx,
                             TASK_SELECT "WHERE (?1 = 0 OR k.assignee_id = ?1) AND (?2 = '' OR k.status = ?2) "
                                         "AND (?3 = 0 OR (k.status = 'open' AND k.due_at <= ?4)) "
                                         "ORDER BY k.status = 'open' DESC, k.due_at, k.id LIMIT 1000",
                             "itii", a->assignee, a->status, (int64_t)a->overdue, sb_tx_now(tx));
    if (s == NULL)
        return SB_EIO;
    json_t *list = json_array();
    int rc;
    while ((rc = sb_stmt_step(s)) == 1)
        json_array_append_new(list, task_row(s));
    sb_stmt_end(s);
    if (rc < 0) {
        json_decref(list);
        return rc;
    }
    op->out = json_pack("{s:o}", "tasks", list);
    return 0;
}

static int list_with_me(sb_tx *tx, sb_api_op *op)
{
    list_args *a = op->ctx;
    if (a->assignee == -1)
        a->assignee = op->agent_id;
    return list_action(tx, op);
}

static void handle_list(sb_app *app, sb_http_req *req)
{
    list_args *a = sb_xcalloc(1, sizeof *a);
    snprintf(a->status, sizeof a->status, "open");
    sb_api_op *op = sb_api_op_new(app, req, SB_ROLE_AGENT, list_with_me);
    op->ctx = a;
    op->ctx_free = free;
    const char *v;
    if ((v = sb_http_req_query_param(req, "status")) != NULL) {
        if (strcmp(v, "all") == 0)
            a->status[0] = '\0';
        else if (strcmp(v, "open") == 0 || strcmp(v, "done") == 0 || strcmp(v, "cancelled") == 0)
            snprintf(a->status, sizeof a->status, "%s", v);
        else
            goto bad_status;
    }
    if ((v = sb_http_req_query_param(req, "overdue")) != NULL)
        a->overdue = strcmp(v, "1") == 0 || strcmp(v, "true") == 0;
    if ((v = sb_http_req_query_param(req, "assignee")) != NULL && strcmp(v, "me") != 0 &&
        !sb_api_parse_id(v, &a->assignee)) {
        sb_http_respond_error(req, 422, "validation_failed", "parameter 'assignee' must be 'me' or an agent id");
        sb_api_op_free(op);
        return;
    }
    if (v != NULL && strcmp(v, "me") == 0)
        a->assignee = -1; /* resolved to the caller below */
    sb_api_submit(op);
    return;
bad_status:
    sb_http_respond_error(req, 422, "validation_failed", "parameter 'status' must be open, done, cancelled or all");
    sb_api_op_free(op);
}

/* ---- create and change ---- */

static int time_field(sb_api_op *op, const char *name, bool required, int64_t *out, bool *present)
{
    json_t *v = json_object_get(op->body, name);
    *present = v != NULL;
    if (v == NULL || json_is_null(v)) {
        if (required)
            return sb_api_fail(op, 422, "validation_failed", "field '%s' is required (ISO-8601)", name);
        *out = 0;
        return 0;
    }
    if (!json_is_string(v) || sb_clock_parse_iso(json_string_value(v), out) != 0)
        return sb_api_fail(op, 422, "validation_failed", "field '%s' must be an ISO-8601 time", name);
    return 0;
}

static int check_agent(sb_tx *tx, sb_api_op *op, int64_t id)
{
    int rc = sb_tx_int(tx, &(int64_t){0}, "SELECT 1 FROM agent WHERE id = ? AND active = 1", "i", id);
    if (rc < 0)
        return rc;
    return rc == 1
               ? 0
               : sb_api_fail(op, 422, "validation_failed", "field 'assignee_id': no active agent %lld", (long long)id);
}

static bool kind_valid(const char *z)
{
    return strcmp(z, "call_back") == 0 || strcmp(z, "follow_up") == 0 || strcmp(z, "other") == 0;
}

static int create_action(sb_tx *tx, sb_api_op *op)
{
    static const char *const allowed[] = {"title",       "kind",   "ticket_number", "contact_id",
                                          "assignee_id", "due_at", "remind_at",     NULL};
    const char *title = NULL, *kind = "follow_up";
    int64_t number = 0, contact = 0, assignee = op->agent_id, due = 0, remind = 0;
    bool has_number = false, has_contact = false, has_assignee = false, p = false;
    int rc = sb_api_only_fields(op, op->body, allowed);
    if (rc || (rc = sb_api_field_str(op, op->body, "title", true, MAX_TITLE, &title)) ||
        (rc = sb_api_field_str(op, op->body, "kind", false, 16, &kind)) ||
        (rc = sb_api_field_int(op, op->body, "ticket_number", false, &number, &has_number)) ||
        (rc = sb_api_field_int(op, op->body, "contact_id", false, &contact, &has_contact)) ||
        (rc = sb_api_field_int(op, op->body, "assignee_id", false, &assignee, &has_assignee)) ||
        (rc = time_field(op, "due_at", true, &due, &p)) || (rc = time_field(op, "remind_at", false, &remind, &p)))
        return rc;
    if (title[0] == '\0')
        return sb_api_fail(op, 422, "validation_failed", "field 'title' must not be empty");
    if (!kind_valid(kind))
        return sb_api_fail(op, 422, "validation_failed", "field 'kind' must be call_back, follow_up or other");
    if (remind != 0 && remind >= due)
        return sb_api_fail(op, 422, "validation_failed", "field 'remind_at' must be before 'due_at'");
    if (!has_assignee)
        assignee = op->agent_id;
    if ((rc = check_agent(tx, op, assignee)) != 0)
        return rc;
    int64_t tid = 0;
    if (has_number) {
        tid = sb_ticket_id_by_number(tx, number);
        if (tid == 0)
            return sb_api_fail(op, 422, "validation_failed", "field 'ticket_number': ticket #%lld does not exist",
                               (long long)number);
        if (!has_contact && sb_tx_int(tx, &contact, "SELECT contact_id FROM ticket WHERE id = ?", "i", tid) < 0)
            return SB_EIO;
    }
    if (has_contact && contact != 0 &&
        (rc = sb_tx_int(tx, &(int64_t){0}, "SELECT 1 FROM contact WHERE id = ?", "i", contact)) != 1)
        return rc < 0 ? rc
                      : sb_api_fail(op, 422, "validation_failed", "field 'contact_id': contact %lld does not exist",
                                    (long long)contact);
    int64_t now = sb_tx_now(tx), id = 0;
    rc = sb_tx_insert(
        tx, &id,
        "INSERT INTO task (title, kind, ticket_id, contact_id, assignee_id, due_at, remind_at, created_by, "
        "created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        "ttIIiiIiii", title, kind, tid, contact, assignee, due, remind, op->agent_id, now, now);
    if (rc != 0)
        return rc < 0 ? rc : SB_EIO;
    rc = sb_event_log(tx, (sb_actor){"agent", op->agent_id}, "task", id, "task.created",
                      json_pack("{s:s,s:o}", "kind", kind, "ticket_id", tid ? json_integer(tid) : json_null()));
    if (rc == 0)
        rc = engine_view(tx, op, id);
    if (rc != 0)
        return rc;
    json_t *t = sb_task_json(tx, id);
    sb_emit(op->events, "task.created", json_incref(t));
    op->out = json_pack("{s:o}", "task", t);
    op->status = 201;
    return 0;
}

static int patch_action(sb_tx *tx, sb_api_op *op)
{
    static const char *const allowed[] = {"title", "status", "due_at", "remind_at", "assignee_id", NULL};
    const char *title = NULL, *status = NULL;
    int64_t due = 0, remind = 0, assignee = 0;
    bool has_due = false, has_remind = false, has_assignee = false;
    int rc = sb_api_only_fields(op, op->body, allowed);
    if (rc || (rc = sb_api_field_str(op, op->body, "title", false, MAX_TITLE, &title)) ||
        (rc = sb_api_field_str(op, op->body, "status", false, 16, &status)) ||
        (rc = time_field(op, "due_at", false, &due, &has_due)) ||
        (rc = time_field(op, "remind_at", false, &remind, &has_remind)) ||
        (rc = sb_api_field_int(op, op->body, "assignee_id", false, &assignee, &has_assignee)))
        return rc;
    json_t *before = sb_task_json(tx, op->path_id);
    if (before == NULL)
        return sb_api_fail(op, 404, "not_found", "task %lld does not exist", (long long)op->path_id);
    json_decref(before);
    if (title != NULL && title[0] == '\0')
        return sb_api_fail(op, 422, "validation_failed", "field 'title' must not be empty");
    if (status != NULL && strcmp(status, "open") != 0 && strcmp(status, "done") != 0 &&
        strcmp(status, "cancelled") != 0)
        return sb_api_fail(op, 422, "validation_failed", "field 'status' must be open, done or cancelled");
    if (has_due && due == 0)
        return sb_api_fail(op, 422, "validation_failed", "field 'due_at' cannot be removed");
    if (has_assignee && (rc = check_agent(tx, op, assignee)) != 0)
        return rc;
    int64_t now = sb_tx_now(tx);
    rc = sb_tx_exec(
        tx,
        "UPDATE task SET title = COALESCE(?1, title), status = COALESCE(?2, status), "
        "due_at = CASE WHEN ?3 THEN ?4 ELSE due_at END, remind_at = CASE WHEN ?5 THEN ?6 ELSE remind_at END, "
        "assignee_id = CASE WHEN ?7 THEN ?8 ELSE assignee_id END, "
        "done_at = CASE WHEN ?2 = 'done' THEN ?9 WHEN ?2 = 'open' THEN NULL ELSE done_at END, "
        "overdue_at = CASE WHEN ?3 THEN NULL ELSE overdue_at END, "
        "reminded_at = CASE WHEN ?3 OR ?5 THEN NULL ELSE reminded_at END, updated_at = ?9 WHERE id = ?10",
        "ttbIbIbiii", title, status, has_due, due, has_remind, remind, has_assignee, assignee, now, op->path_id);
    int64_t d = 0, r = 0;
    if (rc == 0 && sb_tx_int(tx, &d, "SELECT due_at FROM task WHERE id = ?", "i", op->path_id) == 1 &&
        sb_tx_int(tx, &r, "SELECT COALESCE(remind_at, 0) FROM task WHERE id = ?", "i", op->path_id) == 1 && r != 0 &&
        r >= d)
        return sb_api_fail(op, 422, "validation_failed", "field 'remind_at' must be before 'due_at'");
    if (rc == 0)
        rc = sb_event_log(tx, (sb_actor){"agent", op->agent_id}, "task", op->path_id, "task.updated",
                          json_pack("{s:o}", "status", status ? json_string(status) : json_null()));
    if (rc == 0)
        rc = engine_view(tx, op, op->path_id);
    if (rc != 0)
        return rc;
    json_t *t = sb_task_json(tx, op->path_id);
    sb_emit(op->events, "task.updated", json_incref(t));
    op->out = json_pack("{s:o}", "task", t);
    return 0;
}

bool sb_api_tasks_route(sb_app *app, sb_http_req *req, const char *path)
{
    sb_http_method m = sb_http_req_method(req);
    if (strcmp(path, "/api/v1/tasks") == 0) {
        if (m == SB_HTTP_GET || m == SB_HTTP_HEAD) {
            handle_list(app, req);
            return true;
        }
        return sb_api_route_collection(app, req, SB_ROLE_AGENT, list_with_me, SB_ROLE_AGENT, create_action);
    }
    int64_t id;
    const char *rest;
    if (strncmp(path, "/api/v1/tasks/", 14) != 0)
        return false;
    if (!sb_path_id(path, "/api/v1/tasks/", &id, &rest) || *rest != '\0' || id <= 0) {
        sb_http_respond_error(req, 404, "not_found", "no such resource: %s", path);
        return true;
    }
    if (m != SB_HTTP_PATCH) {
        sb_respond_method_not_allowed(req, "PATCH");
        return true;
    }
    sb_api_op *op = sb_api_op_new(app, req, SB_ROLE_AGENT, patch_action);
    if (!sb_api_parse_body(op))
        return true;
    op->path_id = id;
    sb_api_submit(op);
    return true;
}
