/* tickets.c - /api/v1/tickets: list (filters, FTS, cursor), get, patch,
 * post a reply or a note. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "dispatch.h"
#include "engine/calendar.h"
#include "engine/template.h"
#include "engine/text.h"
#include "channels/outbox.h"
#include "channels/webchat.h"

#define TICKET_FILTERS                                                                                                 \
    "WHERE (?1 IS NULL OR instr(',' || ?1 || ',', ',' || t.status || ',') > 0) "                                       \
    "AND (?2 IS NULL OR instr(',' || ?2 || ',', ',' || t.priority || ',') > 0) "                                       \
    "AND (?3 IS NULL OR (?3 = -1 AND t.assignee_id IS NULL) OR t.assignee_id = ?3) "                                   \
    "AND (?4 IS NULL OR (?4 = -1 AND t.team_id IS NULL) OR t.team_id = ?4) "                                           \
    "AND (?5 IS NULL OR t.channel_id = ?5) AND (?6 IS NULL OR t.contact_id = ?6) "                                     \
    "AND (?7 IS NULL OR t.id < ?7) "                                                                                   \
    "AND (?10 IS NULL OR t.team_id IN (SELECT team_id FROM agent_team WHERE agent_id = ?10)) "                         \
    "AND (?11 IS NULL OR (t.status NOT IN ('resolved', 'closed') AND t.sla IS NOT NULL AND EXISTS "                    \
    "(SELECT 1 FROM json_each(t.sla, '$.state') WHERE value IN ('warning', 'breached')))) "

static const char SQL_LIST[] = SB_TICKET_SELECT TICKET_FILTERS "ORDER BY t.id DESC LIMIT ?8";
static const char SQL_LIST_FTS[] = SB_TICKET_SELECT TICKET_FILTERS
    "AND t.id IN (SELECT m.ticket_id FROM message_fts f JOIN message m ON m.id = f.rowid "
    "WHERE message_fts MATCH ?9) ORDER BY t.id DESC LIMIT ?8";

typedef struct list_args {
    char *status, *priority, *fts;
    int64_t assignee, team, channel, contact, cursor, limit;
    bool assignee_set, team_set, assignee_me, team_mine, sla_at_risk;
} list_args;

static void list_args_free(void *p)
{
    list_args *a = p;
    free(a->status);
    free(a->priority);
    free(a->fts);
    free(a);
}

/* Turns free text into an FTS5 query of quoted prefix terms (AND). */
static char *fts_query(const char *q)
{
    sb_buf b;
    sb_buf_init(&b);
    const char *p = q;
    while (*p) {
        while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
            p++;
        if (*p == '\0')
            break;
        const char *start = p;
        while (*p && *p != ' ' && *p != '\t' && *p != '\n' && *p != '\r')
            p++;
        if (b.len > 0)
            sb_buf_appendz(&b, " ");
        sb_buf_appendz(&b, "\"");
        for (const char *c = start; c < p; c++) {
            if (*c == '"')
                sb_buf_appendz(&b, "\"\"");
            else
                sb_buf_append(&b, c, 1);
        }
        sb_buf_appendz(&b, "\"*");
    }
    if (b.len == 0) {
        sb_buf_free(&b);
        return NULL;
    }
    return b.p;
}

static int list_action(sb_tx *tx, sb_api_op *op)
{
    list_args *a = op->ctx;
    if (a->assignee_me)
        a->assignee = op->agent_id;
    int64_t assignee = a->assignee_set ? a->assignee : 0;
    int64_t team = a->team_set ? a->team : 0;
    int64_t member = a->team_mine ? op->agent_id : 0;
    int64_t at_risk = a->sla_at_risk ? 1 : 0;
    if (a->fts != NULL && sb_model_index_text(tx, NULL) != 0)
        return SB_EIO;
    /* ?9 is the FTS query (NULL and unused without one) */
    sb_stmt *s = sb_tx_query(tx, a->fts != NULL ? SQL_LIST_FTS : SQL_LIST, "ttIIIIIitII", a->status, a->priority,
                             assignee, team, a->channel, a->contact, a->cursor, a->limit + 1, a->fts, member, at_risk);
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
        json_array_append_new(list, sb_ticket_row_json(s));
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
    op->out = json_pack("{s:o,s:o}", "tickets", list, "next_cursor", next);
    return 0;
}

static bool list_words_valid(const char *z, bool (*valid)(const char *))
{
    char buf[128];
    if (strlen(z) >= sizeof buf)
        return false;
    snprintf(buf, sizeof buf, "%s", z);
    char *save = NULL;
    for (char *w = strtok_r(buf, ",", &save); w != NULL; w = strtok_r(NULL, ",", &save))
        if (!valid(w))
            return false;
    return true;
}

static void handle_list(sb_app *app, sb_http_req *req)
{
    list_args *a = sb_xcalloc(1, sizeof *a);
    a->limit = 50;
    const char *v;
#define BAD(field, msg)                                                                                                \
    do {                                                                                                               \
        list_args_free(a);                                                                                             \
        sb_http_respond_error(req, 422, "validation_failed", "parameter '%s' %s", field, msg);                         \
        return;                                                                                                        \
    } while (0)
    if ((v = sb_http_req_query_param(req, "status")) != NULL) {
        if (!list_words_valid(v, sb_ticket_status_valid))
            BAD("status", "must be new, open, pending, resolved or closed (comma-separated)");
        a->status = sb_xstrdup(v);
    }
    if ((v = sb_http_req_query_param(req, "priority")) != NULL) {
        if (!list_words_valid(v, sb_ticket_priority_valid))
            BAD("priority", "must be low, normal, high or urgent (comma-separated)");
        a->priority = sb_xstrdup(v);
    }
    if ((v = sb_http_req_query_param(req, "assignee")) != NULL) {
        a->assignee_set = true;
        if (strcmp(v, "me") == 0)
            a->assignee_me = true;
        else if (strcmp(v, "none") == 0)
            a->assignee = -1;
        else if (!sb_api_parse_id(v, &a->assignee) || a->assignee == 0)
            BAD("assignee", "must be an agent id, 'me' or 'none'");
    }
    if ((v = sb_http_req_query_param(req, "team")) != NULL) {
        a->team_set = true;
        if (strcmp(v, "none") == 0)
            a->team = -1;
        else if (strcmp(v, "mine") == 0) {
            a->team_set = false;
            a->team_mine = true;
        } else if (!sb_api_parse_id(v, &a->team) || a->team == 0)
            BAD("team", "must be a team id, 'mine' or 'none'");
    }
    if ((v = sb_http_req_query_param(req, "sla")) != NULL) {
        if (strcmp(v, "at_risk") != 0)
            BAD("sla", "must be 'at_risk'");
        a->sla_at_risk = true;
    }
    if ((v = sb_http_req_query_param(req, "channel")) != NULL && !sb_api_parse_id(v, &a->channel))
        BAD("channel", "must be a channel id");
    if ((v = sb_http_req_query_param(req, "contact")) != NULL && !sb_api_parse_id(v, &a->contact))
        BAD("contact", "must be a contact id");
    if ((v = sb_http_req_query_param(req, "cursor")) != NULL && !sb_api_parse_id(v, &a->cursor))
        BAD("cursor", "must be the next_cursor of a previous page");
    if ((v = sb_http_req_query_param(req, "limit")) != NULL &&
        (!sb_api_parse_id(v, &a->limit) || a->limit < 1 || a->limit > 200))
        BAD("limit", "must be 1..200");
    if ((v = sb_http_req_query_param(req, "q")) != NULL) {
        if (strlen(v) > 200 || !sb_utf8_valid(v, strlen(v)))
            BAD("q", "must be valid UTF-8 of at most 200 bytes");
        a->fts = fts_query(v);
    }
#undef BAD
    sb_api_op *op = sb_api_op_new(app, req, SB_ROLE_AGENT, list_action);
    op->ctx = a;
    op->ctx_free = list_args_free;
    sb_api_submit(op);
}

static int load_messages(sb_tx *tx, const char *sql, int64_t id, json_t **out)
{
    sb_stmt *s = sb_tx_query(tx, sql, "i", id);
    if (s == NULL)
        return SB_EIO;
    json_t *msgs = json_array();
    int rc;
    while ((rc = sb_stmt_step(s)) == 1)
        json_array_append_new(msgs, sb_message_row_json(s));
    sb_stmt_end(s);
    if (rc < 0) {
        json_decref(msgs);
        return rc;
    }
    *out = msgs;
    return 0;
}

int sb_contact_timeline(sb_tx *tx, int64_t contact_id, json_t **out);
int sb_contact_timeline(sb_tx *tx, int64_t contact_id, json_t **out)
{
    return load_messages(tx, SB_MESSAGE_SELECT "WHERE t.contact_id = ? ORDER BY m.created_at, m.id", contact_id, out);
}

static int get_action(sb_tx *tx, sb_api_op *op)
{
    int64_t tid = sb_ticket_id_by_number(tx, op->path_id);
    if (tid == 0)
        return sb_api_fail(op, 404, "not_found", "ticket #%lld does not exist", (long long)op->path_id);
    json_t *t = sb_ticket_json(tx, tid);
    if (t == NULL)
        return SB_EIO;
    json_t *msgs = NULL;
    int rc = load_messages(tx, SB_MESSAGE_SELECT "WHERE m.ticket_id = ? ORDER BY m.id", tid, &msgs);
    if (rc != 0) {
        json_decref(t);
        return rc;
    }
    json_t *contact = sb_contact_json(tx, json_integer_value(json_object_get(t, "contact_id")));
    op->out = json_pack("{s:o,s:o,s:o}", "ticket", t, "contact", contact ? contact : json_null(), "messages", msgs);
    return 0;
}

static int exists(sb_tx *tx, const char *sql, int64_t id)
{
    int64_t one = 0;
    return sb_tx_int(tx, &one, sql, "i", id);
}

/* What a PATCH changed, for the engine once it is committed. */
typedef struct patch_ctx {
    int64_t ticket_id;
    bool status, priority, assignment;
    sb_status new_status;
    sb_priority new_priority;
    int64_t assignee, team;
} patch_ctx;

static void patch_after(sb_api_op *op)
{
    patch_ctx *p = op->ctx;
    sb_dispatch *d = op->app->dispatch;
    if (p->assignment)
        sb_dispatch_event(
            d,
            &(sb_event){.kind = SB_EV_ASSIGN, .ticket_id = p->ticket_id, .agent_id = p->assignee, .team_id = p->team});
    if (p->priority)
        sb_dispatch_event(d,
                          &(sb_event){.kind = SB_EV_PRIORITY, .ticket_id = p->ticket_id, .priority = p->new_priority});
    if (p->status)
        sb_dispatch_event(
            d, &(sb_event){
                   .kind = SB_EV_STATUS, .ticket_id = p->ticket_id, .status = p->new_status, .agent_id = op->agent_id});
}

static int patch_action(sb_tx *tx, sb_api_op *op)
{
    static const char *const allowed[] = {"status", "priority", "assignee_id", "team_id",
                                          "tags",   "subject",  "attributes",  NULL};
    int rc = sb_api_only_fields(op, op->body, allowed);
    if (rc != 0)
        return rc;
    int64_t tid = sb_ticket_id_by_number(tx, op->path_id);
    if (tid == 0)
        return sb_api_fail(op, 404, "not_found", "ticket #%lld does not exist", (long long)op->path_id);
    json_t *before = sb_ticket_json(tx, tid);
    if (before == NULL)
        return SB_EIO;
    const char *status = NULL, *priority = NULL, *subject = NULL;
    int64_t assignee = 0, team = 0;
    bool has_assignee = false, has_team = false;
    json_t *tags = json_object_get(op->body, "tags");
    sb_actor actor = {"agent", op->agent_id};
    int64_t now = sb_tx_now(tx);
    json_t *changes = json_object();
    if ((rc = sb_api_field_str(op, op->body, "status", false, 16, &status)) ||
        (rc = sb_api_field_str(op, op->body, "priority", false, 16, &priority)) ||
        (rc = sb_api_field_str(op, op->body, "subject", false, 500, &subject)) ||
        (rc = sb_api_field_int(op, op->body, "assignee_id", false, &assignee, &has_assignee)) ||
        (rc = sb_api_field_int(op, op->body, "team_id", false, &team, &has_team)))
        goto out;
    if (status != NULL && !sb_ticket_status_valid(status)) {
        rc = sb_api_fail(op, 422, "validation_failed",
                         "field 'status' must be one of new, open, pending, resolved, closed");
        goto out;
    }
    if (priority != NULL && !sb_ticket_priority_valid(priority)) {
        rc = sb_api_fail(op, 422, "validation_failed", "field 'priority' must be one of low, normal, high, urgent");
        goto out;
    }
    if (tags != NULL && (rc = sb_api_validate_tags(op, tags)) != 0)
        goto out;
    json_t *attrs = json_object_get(op->body, "attributes");
    if (attrs != NULL && (rc = sb_api_validate_attributes(op, attrs)) != 0)
        goto out;
    if (has_assignee && assignee != 0 && exists(tx, "SELECT 1 FROM agent WHERE id = ? AND active = 1", assignee) != 1) {
        rc =
            sb_api_fail(op, 422, "validation_failed", "field 'assignee_id': no active agent %lld", (long long)assignee);
        goto out;
    }
    if (has_team && team != 0 && exists(tx, "SELECT 1 FROM team WHERE id = ?", team) != 1) {
        rc = sb_api_fail(op, 422, "validation_failed", "field 'team_id': no team %lld", (long long)team);
        goto out;
    }
    const char *old_status = json_string_value(json_object_get(before, "status"));
    if (status != NULL && strcmp(status, old_status) != 0) {
        rc = sb_tx_exec(tx,
                        "UPDATE ticket SET status = ?1, updated_at = ?2, "
                        "resolved_at = CASE WHEN ?1 = 'resolved' THEN ?2 WHEN ?1 IN ('new','open','pending') "
                        "THEN NULL ELSE resolved_at END, "
                        "closed_at = CASE WHEN ?1 = 'closed' THEN ?2 ELSE NULL END WHERE id = ?3",
                        "tii", status, now, tid);
        if (rc == 0)
            rc = sb_event_log(tx, actor, "ticket", tid, "ticket.status",
                              json_pack("{s:s,s:s}", "from", old_status, "to", status));
        if (rc != 0)
            goto out;
        json_object_set_new(changes, "status", json_pack("[s,s]", old_status, status));
    }
    const char *old_priority = json_string_value(json_object_get(before, "priority"));
    if (priority != NULL && strcmp(priority, old_priority) != 0) {
        rc = sb_tx_exec(tx, "UPDATE ticket SET priority = ?, updated_at = ? WHERE id = ?", "tii", priority, now, tid);
        if (rc == 0)
            rc = sb_event_log(tx, actor, "ticket", tid, "ticket.priority",
                              json_pack("{s:s,s:s}", "from", old_priority, "to", priority));
        if (rc != 0)
            goto out;
        json_object_set_new(changes, "priority", json_pack("[s,s]", old_priority, priority));
    }
    json_t *old_assignee = json_object_get(before, "assignee_id");
    if (has_assignee && json_integer_value(old_assignee) != assignee) {
        rc =
            sb_tx_exec(tx, "UPDATE ticket SET assignee_id = ?, updated_at = ? WHERE id = ?", "Iii", assignee, now, tid);
        if (rc == 0)
            rc = sb_event_log(
                tx, actor, "ticket", tid, "ticket.assigned",
                json_pack("{s:O,s:o}", "from", old_assignee, "to", assignee ? json_integer(assignee) : json_null()));
        if (rc != 0)
            goto out;
        json_object_set_new(changes, "assignee_id",
                            json_pack("[O,o]", old_assignee, assignee ? json_integer(assignee) : json_null()));
    }
    json_t *old_team = json_object_get(before, "team_id");
    if (has_team && json_integer_value(old_team) != team) {
        rc = sb_tx_exec(tx, "UPDATE ticket SET team_id = ?, updated_at = ? WHERE id = ?", "Iii", team, now, tid);
        if (rc == 0)
            rc = sb_event_log(tx, actor, "ticket", tid, "ticket.team",
                              json_pack("{s:O,s:o}", "from", old_team, "to", team ? json_integer(team) : json_null()));
        if (rc != 0)
            goto out;
        json_object_set_new(changes, "team_id", json_pack("[O,o]", old_team, team ? json_integer(team) : json_null()));
    }
    if (tags != NULL && !json_equal(tags, json_object_get(before, "tags"))) {
        char *text = json_dumps(tags, JSON_COMPACT);
        rc = sb_tx_exec(tx, "UPDATE ticket SET tags = ?, updated_at = ? WHERE id = ?", "tii", text, now, tid);
        free(text);
        if (rc == 0)
            rc = sb_event_log(tx, actor, "ticket", tid, "ticket.tags",
                              json_pack("{s:O,s:O}", "from", json_object_get(before, "tags"), "to", tags));
        if (rc != 0)
            goto out;
        json_object_set_new(changes, "tags", json_pack("[O,O]", json_object_get(before, "tags"), tags));
    }
    if (attrs != NULL && !json_equal(attrs, json_object_get(before, "attributes"))) {
        char *text = json_dumps(attrs, JSON_COMPACT | JSON_SORT_KEYS);
        rc = sb_tx_exec(tx, "UPDATE ticket SET attributes = ?, updated_at = ? WHERE id = ?", "tii", text, now, tid);
        free(text);
        if (rc == 0)
            rc = sb_event_log(tx, actor, "ticket", tid, "ticket.attributes",
                              json_pack("{s:O,s:O}", "from", json_object_get(before, "attributes"), "to", attrs));
        if (rc != 0)
            goto out;
        json_object_set_new(changes, "attributes", json_pack("[O,O]", json_object_get(before, "attributes"), attrs));
    }
    json_t *old_subject = json_object_get(before, "subject");
    if (subject != NULL && (!json_is_string(old_subject) || strcmp(json_string_value(old_subject), subject) != 0)) {
        rc = sb_tx_exec(tx, "UPDATE ticket SET subject = ?, updated_at = ? WHERE id = ?", "tii", subject, now, tid);
        if (rc != 0)
            goto out;
        json_object_set_new(changes, "subject", json_pack("[O,s]", old_subject, subject));
    }
    json_t *after = sb_ticket_json(tx, tid);
    if (json_object_size(changes) > 0)
        sb_emit(op->events, "ticket.updated", json_pack("{s:O,s:O}", "ticket", after, "changes", changes));
    patch_ctx *p = sb_xcalloc(1, sizeof *p);
    p->ticket_id = tid;
    p->status = json_object_get(changes, "status") != NULL &&
                sb_status_parse(json_string_value(json_object_get(after, "status")), &p->new_status) == 0;
    p->priority = json_object_get(changes, "priority") != NULL &&
                  sb_priority_parse(json_string_value(json_object_get(after, "priority")), &p->new_priority) == 0;
    p->assignment = json_object_get(changes, "assignee_id") != NULL || json_object_get(changes, "team_id") != NULL;
    p->assignee = json_integer_value(json_object_get(after, "assignee_id"));
    p->team = json_object_get(changes, "team_id") != NULL ? json_integer_value(json_object_get(after, "team_id")) : 0;
    op->ctx = p;
    op->ctx_free = free;
    op->after = patch_after;
    op->out = json_pack("{s:o}", "ticket", after);
    rc = 0;
out:
    json_decref(changes);
    json_decref(before);
    return rc;
}

void sb_delivery_free(sb_delivery *d)
{
    if (d == NULL)
        return;
    free(d->channel_kind);
    free(d->visitor_id);
    json_decref(d->message);
    free(d);
}

void sb_delivery_send(sb_app *app, const sb_delivery *d)
{
    if (d == NULL || d->channel_kind == NULL)
        return;
    if (strcmp(d->channel_kind, "api") == 0)
        sb_outbox_poke(app->outbox);
    else if (strcmp(d->channel_kind, "webchat") == 0 && d->visitor_id != NULL)
        sb_webchat_deliver(app->webchat, d->visitor_id, d->message);
}

static void reply_ctx_free(void *p)
{
    sb_delivery_free(p);
}

static void reply_after(sb_api_op *op)
{
    sb_delivery *d = op->ctx;
    if (d == NULL || d->channel_kind == NULL)
        return;
    sb_dispatch_event(op->app->dispatch,
                      &(sb_event){.kind = SB_EV_AGENT_REPLY, .ticket_id = d->ticket_id, .agent_id = op->agent_id});
    sb_delivery_send(op->app, d);
}

/* The API channel's callback body for an outbound message. */
static char *api_callback_body(sb_tx *tx, int64_t ticket_id, json_t *message)
{
    json_t *t = sb_ticket_json(tx, ticket_id);
    const char *from_id = NULL;
    sb_stmt *s = sb_tx_query(tx,
                             "SELECT ci.address FROM contact_identity ci JOIN ticket t ON t.contact_id = ci.contact_id "
                             "WHERE t.id = ? AND ci.kind = 'external' AND ci.scope = ? ORDER BY ci.id LIMIT 1",
                             "ii", ticket_id, json_integer_value(json_object_get(message, "channel_id")));
    json_t *to = json_object();
    if (s != NULL && sb_stmt_step(s) == 1) {
        from_id = sb_stmt_text(s, 0);
        json_object_set_new(to, "id", json_string(from_id));
    }
    sb_stmt_end(s);
    json_t *author = json_object_get(message, "author");
    json_t *body = json_pack(
        "{s:s,s:{s:I,s:O},s:O,s:{s:I,s:O,s:O,s:O,s:O},s:o}", "event", "message.created", "ticket", "number",
        json_integer_value(json_object_get(t, "number")), "status", json_object_get(t, "status"), "to", to, "message",
        "id", json_integer_value(json_object_get(message, "id")), "text", json_object_get(message, "text"), "author",
        author ? author : json_null(), "attachments", json_object_get(message, "attachments"), "created_at",
        json_object_get(message, "created_at"), "contact_id", json_incref(json_object_get(t, "contact_id")));
    json_decref(to);
    char *text = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    json_decref(t);
    return text;
}

/* An agent's first reply moves a new ticket to open and sets its first
 * response time (automatic replies do not: they answer nobody's question). */
static int first_reply(sb_tx *tx, int64_t tid, sb_actor actor, int64_t now, json_t *events)
{
    sb_stmt *s = sb_tx_query(tx, "SELECT status, first_response_at FROM ticket WHERE id = ?", "i", tid);
    char status[16] = "";
    bool first = false;
    if (s != NULL && sb_stmt_step(s) == 1) {
        snprintf(status, sizeof status, "%s", sb_stmt_text(s, 0));
        first = sb_stmt_isnull(s, 1);
    }
    sb_stmt_end(s);
    bool reopen = strcmp(status, "new") == 0;
    int rc = sb_tx_exec(tx,
                        "UPDATE ticket SET updated_at = ?1, first_response_at = COALESCE(first_response_at, ?1), "
                        "status = CASE WHEN status = 'new' THEN 'open' ELSE status END WHERE id = ?2",
                        "ii", now, tid);
    if (rc == 0 && reopen)
        rc = sb_event_log(tx, actor, "ticket", tid, "ticket.status",
                          json_pack("{s:s,s:s}", "from", "new", "to", "open"));
    if (rc == 0 && first)
        rc = sb_event_log(tx, actor, "ticket", tid, "ticket.first_response", NULL);
    if (rc != 0)
        return rc;
    if (reopen || first) {
        json_t *changes = json_object();
        if (reopen)
            json_object_set_new(changes, "status", json_pack("[s,s]", "new", "open"));
        if (first)
            json_object_set_new(changes, "first_response_at", sb_json_time(now));
        sb_emit(events, "ticket.updated",
                json_pack("{s:o,s:o}", "ticket", sb_ticket_json(tx, tid), "changes", changes));
    }
    return 0;
}

int sb_ticket_add_message(sb_tx *tx, int64_t tid, int64_t agent_id, bool reply, const char *text, json_t *events,
                          sb_delivery **out, json_t **message)
{
    return sb_ticket_add_message_to(tx, tid, agent_id, reply, text, 0, NULL, events, out, message);
}

int sb_ticket_add_message_to(sb_tx *tx, int64_t tid, int64_t agent_id, bool reply, const char *text, int64_t channel_id,
                             json_t *attachments, json_t *events, sb_delivery **out, json_t **message)
{
    int64_t now = sb_tx_now(tx);
    sb_actor actor = agent_id != 0 ? (sb_actor){"agent", agent_id} : (sb_actor){"system", 0};
    sb_delivery *d = sb_xcalloc(1, sizeof *d);
    d->ticket_id = tid;
    *out = d;
    int rc;
    if (!reply)
        channel_id = 0;
    if (reply && channel_id != 0) {
        sb_stmt *s = sb_tx_query(tx, "SELECT kind FROM channel WHERE id = ?", "i", channel_id);
        if (s != NULL && sb_stmt_step(s) == 1)
            d->channel_kind = sb_xstrdup(sb_stmt_text(s, 0));
        sb_stmt_end(s);
        if (d->channel_kind == NULL)
            return SB_EIO;
    } else if (reply) {
        /* Answer where the customer last wrote; else the ticket's channel. */
        rc = sb_tx_int(tx, &channel_id,
                       "SELECT COALESCE((SELECT channel_id FROM message WHERE ticket_id = ?1 AND direction = 'in' "
                       "ORDER BY id DESC LIMIT 1), (SELECT channel_id FROM ticket WHERE id = ?1))",
                       "i", tid);
        if (rc != 1)
            return SB_EIO;
        sb_stmt *s = sb_tx_query(tx, "SELECT kind FROM channel WHERE id = ?", "i", channel_id);
        if (s != NULL && sb_stmt_step(s) == 1)
            d->channel_kind = sb_xstrdup(sb_stmt_text(s, 0));
        sb_stmt_end(s);
        if (d->channel_kind == NULL)
            return SB_EIO;
    }
    int64_t mid = 0;
    char *att = attachments != NULL && json_array_size(attachments) > 0 ? json_dumps(attachments, JSON_COMPACT) : NULL;
    rc = sb_tx_insert(tx, &mid,
                      "INSERT INTO message (ticket_id, channel_id, direction, author_agent_id, text, attachments, "
                      "delivery_status, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                      "iItItttii", tid, channel_id, reply ? "out" : "note", agent_id, text, att != NULL ? att : "[]",
                      reply ? "queued" : NULL, now, now);
    free(att);
    if (rc != 0)
        return rc < 0 ? rc : SB_EIO;
    rc = sb_event_log(tx, actor, "ticket", tid, "message.created",
                      json_pack("{s:I,s:s}", "message_id", (json_int_t)mid, "direction", reply ? "out" : "note"));
    if (rc == 0 && reply && agent_id != 0)
        rc = first_reply(tx, tid, actor, now, events);
    if (rc != 0)
        return rc;
    json_t *msg = sb_message_json(tx, mid);
    if (msg == NULL)
        return SB_EIO;
    if (reply && strcmp(d->channel_kind, "api") == 0) {
        char *body = api_callback_body(tx, tid, msg);
        rc = sb_outbox_enqueue(tx, channel_id, mid, body);
        free(body);
        json_decref(msg);
        if (rc != 0)
            return rc;
        /* Reload: the enqueue may have marked it failed (no callback URL). */
        msg = sb_message_json(tx, mid);
        if (msg == NULL)
            return SB_EIO;
    } else if (reply && strcmp(d->channel_kind, "webchat") == 0) {
        sb_stmt *s =
            sb_tx_query(tx,
                        "SELECT ci.address FROM contact_identity ci JOIN ticket t ON t.contact_id = ci.contact_id "
                        "WHERE t.id = ? AND ci.kind = 'webchat' ORDER BY ci.id DESC LIMIT 1",
                        "i", tid);
        if (s != NULL && sb_stmt_step(s) == 1)
            d->visitor_id = sb_xstrdup(sb_stmt_text(s, 0));
        sb_stmt_end(s);
    }
    d->message = json_incref(msg);
    sb_emit(events, "message.created", json_incref(msg));
    *message = msg;
    return 0;
}

/* A setting's text ("" when unset). */
static void setting_text(sb_tx *tx, const char *key, char *out, size_t cap)
{
    out[0] = '\0';
    sb_stmt *s = sb_tx_query(tx, "SELECT value FROM setting WHERE key = ?", "t", key);
    if (s != NULL && sb_stmt_step(s) == 1)
        snprintf(out, cap, "%s", sb_stmt_text(s, 0));
    sb_stmt_end(s);
}

/* Renders template `template_id` for ticket `tid` as agent `agent_id` would
 * send it: in `lang`, else the contact's language, else the default one,
 * with the same placeholder values as the engine's automatic replies. */
static int render_for_agent(sb_tx *tx, sb_api_op *op, int64_t tid, int64_t template_id, const char *lang, char **out)
{
    json_t *doc = NULL, *t = sb_ticket_json(tx, tid);
    sb_stmt *s = sb_tx_query(tx, "SELECT data FROM config_item WHERE kind = 'template' AND id = ?", "i", template_id);
    if (s != NULL && sb_stmt_step(s) == 1)
        doc = json_loads(sb_stmt_text(s, 0), 0, NULL);
    sb_stmt_end(s);
    int rc = 0;
    if (doc == NULL || t == NULL) {
        rc = t == NULL ? SB_EIO
                       : sb_api_fail(op, 422, "validation_failed", "field 'template_id': template %lld does not exist",
                                     (long long)template_id);
        goto out;
    }
    /* the contact and the people named in placeholders */
    int64_t contact = json_integer_value(json_object_get(t, "contact_id"));
    int64_t team = json_integer_value(json_object_get(t, "team_id"));
    char contact_lang[16] = "", phone[64] = "", email[256] = "", agent[128] = "", team_name[128] = "", company[64] = "",
         deflang[16] = "", next_open[40] = "";
    s = sb_tx_query(
        tx,
        "SELECT c.language, (SELECT address FROM contact_identity WHERE contact_id = c.id AND kind = 'phone' "
        "ORDER BY id LIMIT 1), (SELECT address FROM contact_identity WHERE contact_id = c.id AND kind = "
        "'email' ORDER BY id LIMIT 1), (SELECT name FROM agent WHERE id = ?2), (SELECT name FROM team WHERE "
        "id = ?3), (SELECT json_extract(routing, '$.calendar_id') FROM team WHERE id = ?3) FROM contact c "
        "WHERE c.id = ?1",
        "iii", contact, op->agent_id, team);
    int64_t calendar_id = 0;
    if (s != NULL && sb_stmt_step(s) == 1) {
        char *dst[] = {contact_lang, phone, email, agent, team_name};
        size_t cap[] = {sizeof contact_lang, sizeof phone, sizeof email, sizeof agent, sizeof team_name};
        for (int i = 0; i < 5; i++)
            if (sb_stmt_text(s, i) != NULL)
                snprintf(dst[i], cap[i], "%s", sb_stmt_text(s, i));
        calendar_id = sb_stmt_int(s, 5);
    }
    sb_stmt_end(s);
    setting_text(tx, "engine.company_name", company, sizeof company);
    setting_text(tx, "engine.default_language", deflang, sizeof deflang);
    json_t *texts = json_object_get(doc, "texts");
    const char *want[] = {lang, contact_lang, deflang[0] ? deflang : "ru"};
    const char *text = NULL, *chosen = NULL;
    for (size_t i = 0; i < SB_ARRAY_LEN(want) && text == NULL; i++)
        if (want[i] != NULL && want[i][0] != '\0' && (text = json_string_value(json_object_get(texts, want[i]))))
            chosen = want[i];
    if (text == NULL) { /* any language it has */
        const char *k;
        json_t *v;
        json_object_foreach (texts, k, v) {
            text = json_string_value(v);
            chosen = k;
            break;
        }
    }
    if (calendar_id != 0) {
        s = sb_tx_query(tx, "SELECT data FROM config_item WHERE kind = 'calendar' AND id = ?", "i", calendar_id);
        json_t *cdoc = s != NULL && sb_stmt_step(s) == 1 ? json_loads(sb_stmt_text(s, 0), 0, NULL) : NULL;
        sb_stmt_end(s);
        sb_calendar *cal = NULL;
        char field[8], msg[8];
        if (cdoc != NULL) {
            json_object_del(cdoc, "id");
            json_object_del(cdoc, "name");
        }
        if (cdoc != NULL && sb_calendar_from_json(cdoc, &cal, field, sizeof field, msg, sizeof msg) == 0) {
            int64_t at = sb_calendar_next_open(cal, sb_tx_now(tx));
            if (at != INT64_MAX) {
                sb_local_time lt = sb_tz_to_local(sb_calendar_tz(cal), at);
                sb_template_format_time(lt.year, lt.month, lt.day, lt.minute_of_day, chosen, next_open,
                                        sizeof next_open);
            }
        }
        sb_calendar_free(cal);
        json_decref(cdoc);
    }
    sb_template *tpl = NULL;
    char err[160];
    if (text == NULL || sb_template_parse(text, &tpl, err, sizeof err) != 0) {
        rc = sb_api_fail(op, 422, "validation_failed", "field 'template_id': template %lld has no usable text",
                         (long long)template_id);
        goto out;
    }
    json_t *contact_obj = json_object_get(t, "contact");
    sb_template_values v = {.contact_name = json_string_value(json_object_get(contact_obj, "name")),
                            .contact_phone = phone[0] ? phone : NULL,
                            .contact_email = email[0] ? email : NULL,
                            .ticket_subject = json_string_value(json_object_get(t, "subject")),
                            .ticket_status = json_string_value(json_object_get(t, "status")),
                            .ticket_priority = json_string_value(json_object_get(t, "priority")),
                            .ticket_channel = json_string_value(json_object_get(t, "channel_kind")),
                            .ticket_number = json_integer_value(json_object_get(t, "number")),
                            .agent_name = agent[0] ? agent : NULL,
                            .team_name = team_name[0] ? team_name : NULL,
                            .company_name = company,
                            .next_open = next_open[0] ? next_open : NULL};
    *out = sb_template_render(tpl, sb_template_value, &v);
    sb_template_free(tpl);
out:
    json_decref(doc);
    json_decref(t);
    return rc;
}

#define MAX_REPLY_ATTACHMENTS 10

/* Agents attach files inline: [{name, mime?, data (base64)}]. Checked before
 * anything is written; decoded and stored by sb_api_store_attachments. */
static int check_reply_attachments(sb_api_op *op, json_t *list)
{
    if (list == NULL || json_is_null(list))
        return 0;
    if (!json_is_array(list) || json_array_size(list) > MAX_REPLY_ATTACHMENTS)
        return sb_api_fail(op, 422, "validation_failed", "field 'attachments' must be an array of at most %d items",
                           MAX_REPLY_ATTACHMENTS);
    static const char *const allowed[] = {"name", "mime", "data", NULL};
    size_t i;
    json_t *a;
    json_array_foreach (list, i, a) {
        if (!json_is_object(a))
            return sb_api_fail(op, 422, "validation_failed", "field 'attachments[%zu]' must be an object", i);
        const char *key;
        json_t *v;
        json_object_foreach (a, key, v) {
            bool known = false;
            for (const char *const *k = allowed; *k != NULL; k++)
                known = known || strcmp(*k, key) == 0;
            if (!known)
                return sb_api_fail(op, 422, "validation_failed", "field 'attachments[%zu].%s' is not allowed", i, key);
        }
        const char *name = json_string_value(json_object_get(a, "name"));
        const char *mime = json_string_value(json_object_get(a, "mime"));
        const char *data = json_string_value(json_object_get(a, "data"));
        if (name == NULL || name[0] == '\0' || strlen(name) > 255 || !sb_utf8_valid(name, strlen(name)))
            return sb_api_fail(op, 422, "validation_failed", "field 'attachments[%zu].name' must be 1-255 bytes", i);
        if (json_object_get(a, "mime") != NULL && (mime == NULL || strlen(mime) > 127))
            return sb_api_fail(op, 422, "validation_failed", "field 'attachments[%zu].mime' must be a media type", i);
        if (data == NULL)
            return sb_api_fail(op, 422, "validation_failed", "field 'attachments[%zu].data' is required (base64)", i);
    }
    return 0;
}

/* A reply through another channel: the customer must have an address
 * there (their identity on that API channel, or their web chat). */
static int check_reply_channel(sb_tx *tx, sb_api_op *op, int64_t tid, int64_t channel_id)
{
    sb_stmt *s = sb_tx_query(tx,
                             "SELECT ch.kind, (SELECT count(*) FROM contact_identity ci JOIN ticket t ON "
                             "t.contact_id = ci.contact_id WHERE t.id = ?1 AND ((ch.kind = 'api' AND ci.kind = "
                             "'external' AND ci.scope = ch.id) OR (ch.kind = 'webchat' AND ci.kind = 'webchat'))) "
                             "FROM channel ch WHERE ch.id = ?2",
                             "ii", tid, channel_id);
    if (s == NULL)
        return SB_EIO;
    int step = sb_stmt_step(s);
    int64_t reachable = step == 1 ? sb_stmt_int(s, 1) : 0;
    sb_stmt_end(s);
    if (step < 0)
        return step;
    if (step == 0)
        return sb_api_fail(op, 422, "validation_failed", "field 'channel_id': channel %lld does not exist",
                           (long long)channel_id);
    if (reachable == 0)
        return sb_api_fail(op, 422, "validation_failed",
                           "field 'channel_id': the customer has no address on channel %lld", (long long)channel_id);
    return 0;
}

/* @mentions in a note: "@Анна" or "@anna" (a first name or the part of an
 * email before the @, any case) tells that agent. */
static bool mention_matches(const char *word, size_t len, const char *candidate, size_t clen)
{
    if (clen == 0 || clen > 120 || len > 120)
        return false;
    char w[128], c[128];
    memcpy(w, word, len);
    w[len] = '\0';
    memcpy(c, candidate, clen);
    c[clen] = '\0';
    return sb_text_contains(w, c) && sb_text_contains(c, w);
}

static int notify_mentions(sb_tx *tx, sb_api_op *op, int64_t tid, int64_t number, const char *text)
{
    if (strchr(text, '@') == NULL)
        return 0;
    sb_stmt *s = sb_tx_query(tx, "SELECT id, name, email FROM agent WHERE active = 1 AND id != ?", "i", op->agent_id);
    if (s == NULL)
        return SB_EIO;
    json_t *who = json_array();
    int rc;
    while ((rc = sb_stmt_step(s)) == 1) {
        const char *name = sb_stmt_text(s, 1), *email = sb_stmt_text(s, 2);
        size_t first = strcspn(name, " ");
        size_t local = strcspn(email, "@");
        for (const char *p = strchr(text, '@'); p != NULL; p = strchr(p + 1, '@')) {
            if (p > text && !strchr(" \t\r\n(,;:", p[-1]))
                continue; /* part of an email address */
            const char *w = p + 1;
            size_t len = 0;
            while (w[len] != '\0' && !strchr(" \t\r\n,;:!?()@", w[len]))
                len++;
            while (len > 0 && w[len - 1] == '.')
                len--;
            if (mention_matches(w, len, name, first) || mention_matches(w, len, email, local)) {
                json_array_append_new(who, json_integer(sb_stmt_int(s, 0)));
                break;
            }
        }
    }
    sb_stmt_end(s);
    size_t i;
    json_t *v;
    json_array_foreach (who, i, v) {
        if (rc < 0)
            break;
        json_int_t agent = json_integer_value(v);
        rc = sb_event_log(tx, (sb_actor){"agent", op->agent_id}, "agent", agent, "agent.notified",
                          json_pack("{s:I,s:s}", "ticket_id", (json_int_t)tid, "reason", "mentioned"));
        if (rc == 0)
            sb_emit(op->events, "notification",
                    json_pack("{s:I,s:I,s:I,s:s,s:I}", "agent_id", agent, "ticket_id", (json_int_t)tid, "ticket_number",
                              (json_int_t)number, "reason", "mentioned", "by", (json_int_t)op->agent_id));
    }
    json_decref(who);
    return rc < 0 ? rc : 0;
}

static int post_message_action(sb_tx *tx, sb_api_op *op)
{
    static const char *const allowed[] = {"text", "kind", "template_id", "language", "channel_id", "attachments", NULL};
    int rc = sb_api_only_fields(op, op->body, allowed);
    const char *text = NULL, *kind = "reply", *lang = NULL;
    int64_t template_id = 0, channel_id = 0;
    bool has_template = false, has_channel = false;
    json_t *files = json_object_get(op->body, "attachments");
    bool has_files = json_is_array(files) && json_array_size(files) > 0;
    if (rc || (rc = check_reply_attachments(op, files)) ||
        (rc = sb_api_field_int(op, op->body, "template_id", false, &template_id, &has_template)) ||
        (rc = sb_api_field_str(op, op->body, "text", !has_template && !has_files, 65536, &text)) ||
        (rc = sb_api_field_str(op, op->body, "kind", false, 16, &kind)) ||
        (rc = sb_api_field_str(op, op->body, "language", false, 8, &lang)) ||
        (rc = sb_api_field_int(op, op->body, "channel_id", false, &channel_id, &has_channel)))
        return rc;
    if (strcmp(kind, "reply") != 0 && strcmp(kind, "note") != 0)
        return sb_api_fail(op, 422, "validation_failed", "field 'kind' must be 'reply' or 'note'");
    if (has_template && text != NULL)
        return sb_api_fail(op, 422, "validation_failed", "give either 'text' or 'template_id', not both");
    if (has_channel && strcmp(kind, "note") == 0)
        return sb_api_fail(op, 422, "validation_failed", "field 'channel_id': a note goes to no channel");
    int64_t tid = sb_ticket_id_by_number(tx, op->path_id);
    if (tid == 0)
        return sb_api_fail(op, 404, "not_found", "ticket #%lld does not exist", (long long)op->path_id);
    if (has_channel && (rc = check_reply_channel(tx, op, tid, channel_id)) != 0)
        return rc;
    char *rendered = NULL;
    if (has_template && (rc = render_for_agent(tx, op, tid, template_id, lang, &rendered)) != 0)
        return rc;
    if (rendered != NULL)
        text = rendered;
    json_t *stored = NULL;
    if (has_files && (rc = sb_api_store_attachments(op, files, &stored)) != 0) {
        json_decref(stored);
        free(rendered);
        return rc;
    }
    sb_delivery *d = NULL;
    json_t *msg = NULL;
    bool reply = strcmp(kind, "reply") == 0;
    rc = sb_ticket_add_message_to(tx, tid, op->agent_id, reply, text != NULL ? text : "", channel_id, stored,
                                  op->events, &d, &msg);
    json_decref(stored);
    if (rc == 0 && !reply && text != NULL)
        rc = notify_mentions(tx, op, tid, op->path_id, text);
    free(rendered);
    op->ctx = d;
    op->ctx_free = reply_ctx_free;
    if (rc != 0) {
        json_decref(msg);
        return rc;
    }
    op->out = json_pack("{s:o}", "message", msg);
    op->status = 201;
    op->after = reply_after;
    return 0;
}

bool sb_api_tickets_route(sb_app *app, sb_http_req *req, const char *path)
{
    if (strcmp(path, "/api/v1/tickets") == 0) {
        if (sb_http_req_method(req) != SB_HTTP_GET && sb_http_req_method(req) != SB_HTTP_HEAD)
            sb_respond_method_not_allowed(req, "GET");
        else
            handle_list(app, req);
        return true;
    }
    int64_t number;
    const char *rest;
    if (!sb_path_id(path, "/api/v1/tickets/", &number, &rest)) {
        if (strncmp(path, "/api/v1/tickets/", 16) == 0) {
            sb_http_respond_error(req, 404, "not_found", "ticket numbers are positive integers");
            return true;
        }
        return false;
    }
    sb_http_method m = sb_http_req_method(req);
    sb_api_op *op = NULL;
    if (*rest == '\0') {
        if (m == SB_HTTP_GET || m == SB_HTTP_HEAD) {
            op = sb_api_op_new(app, req, SB_ROLE_AGENT, get_action);
        } else if (m == SB_HTTP_PATCH) {
            op = sb_api_op_new(app, req, SB_ROLE_AGENT, patch_action);
            if (!sb_api_parse_body(op))
                return true;
        } else {
            sb_respond_method_not_allowed(req, "GET, PATCH");
            return true;
        }
    } else if (strcmp(rest, "/messages") == 0) {
        if (m != SB_HTTP_POST) {
            sb_respond_method_not_allowed(req, "POST");
            return true;
        }
        op = sb_api_op_new(app, req, SB_ROLE_AGENT, post_message_action);
        if (!sb_api_parse_body(op))
            return true;
    } else {
        sb_http_respond_error(req, 404, "not_found", "no such resource: %s", path);
        return true;
    }
    op->path_id = number;
    sb_api_submit(op);
    return true;
}
