/* outbound.c - outbound calls through the SIP trunk: click-to-call and
 * call-back (the calls themselves: src/voice/outbound.c).
 *
 *   POST   /api/v1/calls {"to", "contact_id"?, "ticket_id"?, "task_id"?, "agent_id"?}
 *          -> 202 {"call": {"id": LIVE_ID, "direction": "out", "from", "to", "agent_id",
 *                           "contact_id", "contact_name", "ticket_id", "task_id", "stage"}}
 *   DELETE /api/v1/calls/{live id} -> 202 {"call": {...,"stage": "ending"}}
 *
 * An agent calls for themselves; a supervisor may name another agent. The
 * store is read first (the agent's extension, the contact with that
 * number, the blacklist, the DID the customer last called), on the reader
 * thread; the call is placed on the loop after it, where the registrar's
 * state and the live calls are (no registered phone: 409 no_phone). The
 * live id is not a call log row: the row is written at the hang-up. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "voice/calls.h"
#include "voice/outbound.h"

static const char *const place_fields[] = {"to", "contact_id", "ticket_id", "task_id", "agent_id", NULL};

typedef struct place_ctx {
    sb_outbound_request rq;
} place_ctx;

int sb_outbound_last_did(sb_tx *tx, const char *e164, int64_t contact_id, char *out, size_t cap)
{
    char bare[40], national[40] = "";
    snprintf(bare, sizeof bare, "%s", e164 + 1);
    if (strncmp(e164, "+7", 2) == 0)
        snprintf(national, sizeof national, "8%s", e164 + 2);
    sb_stmt *s = sb_tx_query(tx,
                             "SELECT did FROM call WHERE direction = 'in' AND did IS NOT NULL AND did <> '' "
                             "AND (from_number IN (?1, ?2, ?3) OR (?4 > 0 AND contact_id = ?4)) "
                             "ORDER BY offered_at DESC, id DESC LIMIT 1",
                             "ttti", e164, bare, national, contact_id);
    if (s == NULL)
        return SB_EIO;
    out[0] = '\0';
    int rc = sb_stmt_step(s);
    const char *did = rc == 1 ? sb_stmt_text(s, 0) : "";
    size_t n = strlen(did);
    if (n < cap && strspn(did, "0123456789+") == n) /* a number, as the trunk takes it */
        memcpy(out, did, n + 1);
    sb_stmt_end(s);
    return rc < 0 ? rc : 0;
}

/* The id of the row `sql` finds for `id` (0 if none). */
static int lookup(sb_tx *tx, const char *sql, int64_t id, int64_t *out)
{
    *out = 0;
    int rc = sb_tx_int(tx, out, sql, "i", id);
    return rc < 0 ? rc : 0;
}

static int place_action(sb_tx *tx, sb_api_op *op)
{
    place_ctx *c = op->ctx;
    sb_outbound_request *rq = &c->rq;
    const sb_config *cfg = &op->app->cfg;
    if (op->app->calls == NULL || cfg->trunk_host[0] == '\0')
        return sb_api_fail(op, 409, "no_trunk", "outbound calls need voice ([sip] listen) and a [trunk] host");
    int rc = sb_api_only_fields(op, op->body, place_fields);
    const char *to = NULL;
    bool has_agent = false;
    int64_t agent_id = 0;
    if (rc == 0)
        rc = sb_api_field_str(op, op->body, "to", true, 64, &to);
    if (rc == 0)
        rc = sb_api_field_int(op, op->body, "contact_id", false, &rq->contact_id, NULL);
    if (rc == 0)
        rc = sb_api_field_int(op, op->body, "ticket_id", false, &rq->ticket_id, NULL);
    if (rc == 0)
        rc = sb_api_field_int(op, op->body, "task_id", false, &rq->task_id, NULL);
    if (rc == 0)
        rc = sb_api_field_int(op, op->body, "agent_id", false, &agent_id, &has_agent);
    if (rc != 0)
        return rc;
    if (sb_phone_normalize(to, "7", rq->number, sizeof rq->number) != 0)
        return sb_api_fail(op, 422, "validation_failed", "field 'to' must be a phone number (E.164, or national)");
    rq->agent_id = has_agent && agent_id != 0 ? agent_id : op->agent_id;
    if (rq->agent_id != op->agent_id && op->role < SB_ROLE_SUPERVISOR)
        return sb_api_fail(op, 403, "forbidden", "only a supervisor may place a call for another agent");
    /* the agent and their extension */
    sb_stmt *s = sb_tx_query(tx, "SELECT sip_extension FROM agent WHERE id = ? AND active = 1", "i", rq->agent_id);
    if (s == NULL)
        return SB_EIO;
    rc = sb_stmt_step(s);
    bool has_ext = rc == 1 && !sb_stmt_isnull(s, 0) && sb_stmt_text(s, 0)[0] != '\0';
    sb_stmt_end(s);
    if (rc < 0)
        return rc;
    if (rc == 0)
        return sb_api_fail(op, 422, "validation_failed", "agent %lld does not exist", (long long)rq->agent_id);
    if (!has_ext)
        return sb_api_fail(op, 409, "no_phone", "agent %lld has no SIP extension", (long long)rq->agent_id);
    /* what the call is about */
    int64_t found = 0, task_ticket = 0, task_contact = 0;
    if (rq->task_id != 0) {
        s = sb_tx_query(tx, "SELECT COALESCE(ticket_id, 0), COALESCE(contact_id, 0) FROM task WHERE id = ?", "i",
                        rq->task_id);
        if (s == NULL)
            return SB_EIO;
        rc = sb_stmt_step(s);
        if (rc == 1) {
            task_ticket = sb_stmt_int(s, 0);
            task_contact = sb_stmt_int(s, 1);
        }
        sb_stmt_end(s);
        if (rc < 0)
            return rc;
        if (rc == 0)
            return sb_api_fail(op, 422, "validation_failed", "task %lld does not exist", (long long)rq->task_id);
    }
    if (rq->ticket_id != 0) {
        rc = lookup(tx, "SELECT id FROM ticket WHERE id = ?", rq->ticket_id, &found);
        if (rc != 0)
            return rc;
        if (found == 0)
            return sb_api_fail(op, 422, "validation_failed", "ticket %lld does not exist", (long long)rq->ticket_id);
    } else {
        rq->ticket_id = task_ticket;
    }
    if (rq->contact_id != 0) {
        rc = lookup(tx, "SELECT id FROM contact WHERE id = ?", rq->contact_id, &found);
        if (rc != 0)
            return rc;
        if (found == 0)
            return sb_api_fail(op, 422, "validation_failed", "contact %lld does not exist", (long long)rq->contact_id);
        rq->contact_id = sb_contact_resolve(tx, rq->contact_id);
    } else {
        /* the contact with this number, else the task's */
        rc = sb_tx_int(tx, &found,
                       "SELECT contact_id FROM contact_identity WHERE kind = 'phone' AND scope = 0 AND address = ?",
                       "t", rq->number);
        if (rc < 0)
            return rc;
        rq->contact_id = rc == 1 ? sb_contact_resolve(tx, found) : task_contact;
    }
    if (rq->contact_id != 0) {
        s = sb_tx_query(tx, "SELECT COALESCE(name, '') FROM contact WHERE id = ?", "i", rq->contact_id);
        if (s == NULL)
            return SB_EIO;
        if (sb_stmt_step(s) == 1)
            snprintf(rq->contact_name, sizeof rq->contact_name, "%s", sb_stmt_text(s, 0));
        sb_stmt_end(s);
    }
    /* nobody calls a blacklisted customer */
    char cid[24];
    snprintf(cid, sizeof cid, "%lld", (long long)rq->contact_id);
    rc = sb_tx_int(tx, &found,
                   "SELECT 1 FROM blacklist WHERE (kind = 'phone' AND value = ?) OR (kind = 'contact' AND value = ?)",
                   "tt", rq->number, cid);
    if (rc < 0)
        return rc;
    if (rc == 1)
        return sb_api_fail(op, 422, "blacklisted", "%s is blacklisted", rq->number);
    /* the caller ID: the number the customer knows us by */
    rc = sb_outbound_last_did(tx, rq->number, rq->contact_id, rq->caller_id, sizeof rq->caller_id);
    if (rc != 0)
        return rc;
    if (rq->caller_id[0] == '\0')
        snprintf(rq->caller_id, sizeof rq->caller_id, "%s",
                 cfg->trunk_from_number[0] ? cfg->trunk_from_number : "anonymous");
    return 0;
}

static void respond(sb_api_op *op, int status, json_t *call, const char *code, const char *msg)
{
    if (status == 0)
        sb_http_respond_json(op->req, 202, json_pack("{s:o}", "call", call));
    else
        sb_http_respond_error(op->req, status, code, "%s", msg);
    op->req = NULL;
}

static void place_after(sb_api_op *op)
{
    place_ctx *c = op->ctx;
    json_t *call = NULL;
    const char *code = "internal";
    char msg[200] = "";
    int status = sb_outbound_place(sb_calls_outbound(op->app->calls), &c->rq, &call, &code, msg, sizeof msg);
    respond(op, status, call, code, msg);
}

static int hangup_action(sb_tx *tx, sb_api_op *op)
{
    (void)tx;
    if (op->app->calls == NULL)
        return sb_api_fail(op, 404, "not_found", "no outbound call %lld is in progress", (long long)op->path_id);
    return 0; /* authenticated: the loop checks whose call it is */
}

static void hangup_after(sb_api_op *op)
{
    json_t *call = NULL;
    const char *code = "internal";
    char msg[200] = "";
    int status = sb_outbound_hangup(sb_calls_outbound(op->app->calls), op->path_id, op->agent_id,
                                    op->role >= SB_ROLE_SUPERVISOR, &call, &code, msg, sizeof msg);
    respond(op, status, call, code, msg);
}

bool sb_api_outbound_route(sb_app *app, sb_http_req *req, const char *path)
{
    sb_http_method m = sb_http_req_method(req);
    int64_t id = 0;
    const char *rest = NULL;
    sb_api_op *op;
    if (m == SB_HTTP_POST && strcmp(path, "/api/v1/calls") == 0) {
        op = sb_api_op_new(app, req, SB_ROLE_AGENT, place_action);
        if (!sb_api_parse_body(op))
            return true;
        op->ctx = sb_xcalloc(1, sizeof(place_ctx));
        op->ctx_free = free;
        op->after = place_after;
    } else if (m == SB_HTTP_DELETE && sb_path_id(path, "/api/v1/calls/", &id, &rest) && *rest == '\0' && id > 0) {
        op = sb_api_op_new(app, req, SB_ROLE_AGENT, hangup_action);
        op->path_id = id;
        op->after = hangup_after;
    } else {
        return false;
    }
    op->read_only = true;
    op->out_on_loop = true;
    sb_api_submit(op);
    return true;
}
