/* outbound.c - outbound calls through the SIP trunk (see outbound.h). */
#include "voice/outbound.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "api/stream.h"
#include "base/clock.h"
#include "base/log.h"
#include "dispatch.h"
#include "voice/calls.h"
#include "voice/calltickets.h"

#define OUT_MAGIC 0x4f555443u /* "OUTC" */

/* One outbound call from the API's request to its hang-up. */
typedef struct out_call {
    uint32_t magic;
    int64_t live_id;
    uint64_t voice_id; /* SB_VOICE_ORIGINATE_BIT | live_id */
    int64_t agent_id, contact_id, ticket_id, task_id;
    char number[SB_VOICE_EXT_MAX]; /* E.164 */
    char caller_id[SB_VOICE_EXT_MAX];
    char contact_name[128];
    int64_t placed_at, agent_answered_at, answered_at; /* wall ms; 0 = not (yet) */
    int agent_code, customer_code;                     /* LEG_FAILED's sip_code (0: none) */
    bool ending;                                       /* sb_outbound_hangup asked for the end */
    bool on_call_sent;                                 /* the engine knows the agent is on it */
    char recording[256];                               /* relative to the data dir; "" = none */
    int64_t recording_ms;
    void (*on_end)(void *arg, int64_t live_id, const char *status, bool agent_answered);
    void *on_end_arg;
    struct out_call *next;
} out_call;

struct sb_outbound {
    sb_app *app;
    sb_calls *calls;
    sb_voice *voice;
    out_call *list;
    int64_t next_live;
};

void sb_outbound_voice_options(const sb_config *cfg, sb_voice_options *opt)
{
    snprintf(opt->trunk_host, sizeof opt->trunk_host, "%s", cfg->trunk_host);
    snprintf(opt->trunk_username, sizeof opt->trunk_username, "%s", cfg->trunk_username);
    snprintf(opt->trunk_password, sizeof opt->trunk_password, "%s", cfg->trunk_password);
    opt->trunk_tcp = cfg->trunk_tcp != 0;
    if (cfg->trunk_host[0] != '\0') /* never the password */
        sb_log(SB_INFO, "voice", "trunk host=%s transport=%s user=%s", cfg->trunk_host, cfg->trunk_tcp ? "tcp" : "udp",
               cfg->trunk_username[0] ? cfg->trunk_username : "-");
    /* checked when the file was read */
    if (sb_cidr_parse_list(cfg->trunk_allow, opt->trunk_allow, SB_CIDR_LIST_MAX, &opt->trunk_nallow) != 0)
        opt->trunk_nallow = 0;
    snprintf(opt->trunk_in_username, sizeof opt->trunk_in_username, "%s", cfg->trunk_in_username);
    opt->trunk_register = cfg->trunk_register != 0;
    opt->trunk_register_expires = cfg->trunk_register_expires;
    snprintf(opt->trunk_in_password, sizeof opt->trunk_in_password, "%s", cfg->trunk_in_password);
    if (opt->trunk_nallow == 0 && cfg->trunk_in_username[0] == '\0')
        sb_log(SB_WARN, "voice",
               "calls to our numbers are accepted from any address: set [trunk] allow and/or inbound_username");
    else
        sb_log(SB_INFO, "voice", "calls to our numbers: from %zu allowed address range(s)%s%s", opt->trunk_nallow,
               cfg->trunk_in_username[0] ? ", digest user " : "", cfg->trunk_in_username);
}

sb_outbound *sb_outbound_new(sb_app *app, sb_calls *calls, sb_voice *voice)
{
    sb_outbound *o = sb_xcalloc(1, sizeof *o);
    o->app = app;
    o->calls = calls;
    o->voice = voice;
    return o;
}

void sb_outbound_free(sb_outbound *o)
{
    if (o == NULL)
        return;
    while (o->list != NULL) {
        out_call *r = o->list;
        o->list = r->next;
        r->magic = 0;
        free(r);
    }
    free(o);
}

static out_call *find_voice(sb_outbound *o, uint64_t voice_id, out_call ***link)
{
    for (out_call **pp = &o->list; *pp != NULL; pp = &(*pp)->next) {
        if ((*pp)->voice_id == voice_id) {
            if (link != NULL)
                *link = pp;
            return *pp;
        }
    }
    return NULL;
}

bool sb_outbound_agent_busy(const sb_outbound *o, int64_t agent_id)
{
    for (const out_call *r = o != NULL ? o->list : NULL; r != NULL; r = r->next)
        if (r->agent_id == agent_id)
            return true;
    return false;
}

int sb_outbound_dial_string(const char *prefix, const char *e164, char out[SB_VOICE_EXT_MAX])
{
    const char *digits = e164[0] == '+' ? e164 + 1 : e164;
    int n = snprintf(out, SB_VOICE_EXT_MAX, "%s%s", prefix, digits);
    if (n <= 0 || n >= SB_VOICE_EXT_MAX || strspn(out, "0123456789+*#") != (size_t)n)
        return SB_EINVAL;
    return 0;
}

/* ---- what the agent's workspace hears ---- */

static json_t *call_json(const out_call *r, const char *stage)
{
    json_t *d = json_pack("{s:I,s:s,s:s,s:s,s:I,s:s}", "id", (json_int_t)r->live_id, "direction", "out", "from",
                          r->caller_id, "to", r->number, "agent_id", (json_int_t)r->agent_id, "stage", stage);
    json_object_set_new(d, "contact_id", r->contact_id != 0 ? json_integer(r->contact_id) : json_null());
    json_object_set_new(d, "contact_name", r->contact_name[0] ? json_string(r->contact_name) : json_null());
    json_object_set_new(d, "ticket_id", r->ticket_id != 0 ? json_integer(r->ticket_id) : json_null());
    json_object_set_new(d, "task_id", r->task_id != 0 ? json_integer(r->task_id) : json_null());
    return d;
}

/* call.ringing (their phone), call.answered (the customer), call.ended:
 * the same types inbound calls use, with direction "out" and the live id
 * as call_id. Only the agent's own tabs get them. */
static void tell_agent(sb_outbound *o, const out_call *r, const char *type, const char *stage)
{
    if (o->app->hub == NULL)
        return;
    json_t *d = call_json(r, stage);
    json_object_set_new(d, "call_id", json_integer(r->live_id));
    sb_stream_send_agent(o->app->hub, r->agent_id, type, d);
}

static void tell_on_call(sb_outbound *o, out_call *r, bool on)
{
    if (r->on_call_sent == on || o->app->dispatch == NULL)
        return;
    r->on_call_sent = on;
    sb_dispatch_event(o->app->dispatch, &(sb_event){.kind = SB_EV_ON_CALL, .agent_id = r->agent_id, .on_call = on});
}

/* ---- placing and ending ---- */

int sb_outbound_place(sb_outbound *o, const sb_outbound_request *rq, json_t **call, const char **code, char *msg,
                      size_t cap)
{
    *call = NULL;
    const sb_config *cfg = &o->app->cfg;
    char ext[SB_VOICE_EXT_MAX];
    bool busy = false;
    if (cfg->trunk_host[0] == '\0') {
        *code = "no_trunk";
        snprintf(msg, cap, "no SIP trunk is configured ([trunk] host)");
        return 409;
    }
    if (!sb_calls_agent_line(o->calls, rq->agent_id, ext, sizeof ext, &busy)) {
        *code = "no_phone";
        snprintf(msg, cap, "agent %lld has no registered SIP phone", (long long)rq->agent_id);
        return 409;
    }
    if (busy) {
        *code = "agent_busy";
        snprintf(msg, cap, "agent %lld is ringing or talking on a call", (long long)rq->agent_id);
        return 409;
    }
    sb_voice_originate_opts vo;
    memset(&vo, 0, sizeof vo);
    snprintf(vo.extension, sizeof vo.extension, "%s", ext);
    vo.agent_timeout_s = cfg->sip_ring_timeout_seconds;
    vo.customer_timeout_s = cfg->trunk_ring_timeout_seconds;
    snprintf(vo.caller_id, sizeof vo.caller_id, "%s", rq->caller_id);
    snprintf(vo.display, sizeof vo.display, "%s", rq->number);
    if (cfg->sip_prompts[0] != '\0') /* a tone: any language's will do */
        snprintf(vo.ringback, sizeof vo.ringback, "%s/ru/ringback.wav", cfg->sip_prompts);
    /* the display name goes between quotes in From: no quote, backslash
     * or control character */
    size_t k = 0;
    for (const char *p = rq->contact_name; *p != '\0' && k + 1 < sizeof vo.display_name; p++)
        if ((unsigned char)*p >= ' ' && *p != '"' && *p != '\\' && *p != 0x7f)
            vo.display_name[k++] = *p;
    while (k > 0 && ((unsigned char)vo.display_name[k - 1] & 0xC0) == 0x80)
        k--; /* a UTF-8 sequence cut short by the size goes */
    if (k > 0 && ((unsigned char)vo.display_name[k - 1] & 0xC0) == 0xC0)
        k--;
    vo.display_name[k] = '\0';
    if (sb_outbound_dial_string(cfg->trunk_prefix, rq->number, vo.number) != 0) {
        *code = "validation_failed";
        snprintf(msg, cap, "the number does not fit the trunk's dial string");
        return 422;
    }
    out_call *r = sb_xcalloc(1, sizeof *r);
    r->magic = OUT_MAGIC;
    r->live_id = ++o->next_live;
    r->voice_id = SB_VOICE_ORIGINATE_BIT | (uint64_t)r->live_id;
    r->agent_id = rq->agent_id;
    r->contact_id = rq->contact_id;
    r->ticket_id = rq->ticket_id;
    r->task_id = rq->task_id;
    r->on_end = rq->on_end;
    r->on_end_arg = rq->on_end_arg;
    snprintf(r->number, sizeof r->number, "%s", rq->number);
    snprintf(r->caller_id, sizeof r->caller_id, "%s", rq->caller_id);
    snprintf(r->contact_name, sizeof r->contact_name, "%s", rq->contact_name);
    r->placed_at = sb_clock_wall_ms();
    if (sb_voice_originate(o->voice, r->voice_id, &vo) != 0) {
        free(r);
        *code = "voice_unavailable";
        snprintf(msg, cap, "the voice thread cannot take the call now");
        return 503;
    }
    r->next = o->list;
    o->list = r;
    sb_log(SB_INFO, "voice", "outbound=%lld agent=%lld ext=%s to=%s caller_id=%s contact=%lld", (long long)r->live_id,
           (long long)r->agent_id, ext, r->number, r->caller_id, (long long)r->contact_id);
    *call = call_json(r, "ringing_agent");
    return 0;
}

int sb_outbound_hangup(sb_outbound *o, int64_t live_id, int64_t agent_id, bool supervisor, json_t **call,
                       const char **code, char *msg, size_t cap)
{
    *call = NULL;
    out_call *r = o != NULL && live_id > 0 ? find_voice(o, SB_VOICE_ORIGINATE_BIT | (uint64_t)live_id, NULL) : NULL;
    if (r == NULL) {
        *code = "not_found";
        snprintf(msg, cap, "no outbound call %lld is in progress", (long long)live_id);
        return 404;
    }
    if (r->agent_id != agent_id && !supervisor) {
        *code = "forbidden";
        snprintf(msg, cap, "outbound call %lld is another agent's", (long long)live_id);
        return 403;
    }
    r->ending = true;
    sb_voice_hangup(o->voice, r->voice_id); /* the HANGUP event ends it */
    sb_log(SB_INFO, "voice", "outbound=%lld hang-up asked by agent=%lld", (long long)live_id, (long long)agent_id);
    *call = call_json(r, "ending");
    return 0;
}

/* ---- the call log ---- */

typedef struct out_cdr {
    sb_outbound *out;
    int64_t id;
    int64_t agent_id, contact_id, ticket_id, task_id;
    char from[SB_VOICE_EXT_MAX], to[SB_VOICE_EXT_MAX], source[SB_VOICE_ADDR_MAX];
    const char *status, *hangup_by, *cause;
    int sip_code;
    int64_t offered_at, answered_at, ended_at;
    char recording[256];
    int64_t recording_ms;
    sb_call_ticket ticket; /* the call-back tasks closed */
} out_cdr;

/* The task the agent called about, when it is an open call-back of
 * another contact (the contact's own are closed with the others). */
static int close_task(sb_tx *tx, out_cdr *w)
{
    int64_t contact = 0;
    int rc =
        sb_tx_int(tx, &contact,
                  "SELECT COALESCE(contact_id, 0) FROM task WHERE id = ? AND status = 'open' AND kind = 'call_back'",
                  "i", w->task_id);
    if (rc != 1)
        return rc < 0 ? rc : 0;
    if (contact != 0 && contact == w->contact_id)
        return 0;
    int64_t now = sb_tx_now(tx);
    rc = sb_tx_exec(tx, "UPDATE task SET status = 'done', done_at = ?, updated_at = ? WHERE id = ?", "iii", now, now,
                    w->task_id);
    if (rc == 0)
        rc = sb_event_log(tx, (sb_actor){"agent", w->agent_id}, "task", w->task_id, "task.updated",
                          json_pack("{s:s,s:I}", "status", "done", "call_id", (json_int_t)w->id));
    if (rc == 0 && w->ticket.events != NULL) {
        json_t *t = sb_task_json(tx, w->task_id);
        if (t == NULL)
            return SB_EIO;
        sb_emit(w->ticket.events, "task.updated", t);
    }
    if (rc == 0) {
        w->ticket.done = sb_xrealloc(w->ticket.done, (w->ticket.ndone + 1) * sizeof *w->ticket.done);
        w->ticket.done[w->ticket.ndone++] = w->task_id;
    }
    return rc;
}

static int cdr_run(sb_tx *tx, void *arg)
{
    out_cdr *w = arg;
    int rc = sb_tx_insert(tx, &w->id,
                          "INSERT INTO call (direction, from_number, to_number, did, source, status, hangup_by, "
                          "hangup_cause, sip_code, agent_id, contact_id, ticket_id, offered_at, answered_at, "
                          "ended_at, created_at, recording, recording_ms) "
                          "VALUES ('out', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                          "tttttttIIIIiIiitI", w->from, w->to, w->from, w->source, w->status, w->hangup_by, w->cause,
                          (int64_t)w->sip_code, w->agent_id, w->contact_id, w->ticket_id, w->offered_at, w->answered_at,
                          w->ended_at, sb_tx_now(tx), w->recording[0] ? w->recording : NULL, w->recording_ms);
    if (rc == 0)
        rc = sb_event_log(tx, (sb_actor){"agent", w->agent_id}, "call", w->id, "call.ended",
                          json_pack("{s:s,s:s,s:s,s:s,s:o,s:s}", "direction", "out", "from", w->from, "to", w->to,
                                    "status", w->status, "hangup_by", sb_json_text(w->hangup_by), "cause", w->cause));
    if (rc == 0 && strcmp(w->status, "failed") != 0) { /* the customer's phone rang: on their ticket */
        sb_call_out_facts f = {.call_id = w->id,
                               .agent_id = w->agent_id,
                               .contact_id = w->contact_id,
                               .ticket_id = w->ticket_id,
                               .status = w->status,
                               .answered_at = w->answered_at,
                               .ended_at = w->ended_at,
                               .recording = w->recording,
                               .recording_ms = w->recording_ms,
                               .data_dir = w->out->app->cfg.data_dir};
        rc = sb_call_ticket_outbound(tx, &f, w->ticket.events);
    }
    if (rc != 0 || strcmp(w->status, "answered") != 0)
        return rc;
    /* the customer was reached: their call-back tasks are done, in a
     * savepoint of their own (if it fails, the call row still commits) */
    rc = sb_tx_exec(tx, "SAVEPOINT out_callbacks", "");
    if (rc != 0)
        return rc;
    if (w->contact_id != 0)
        rc = sb_call_close_callbacks(tx, w->contact_id, w->id, &w->ticket);
    if (rc == 0 && w->task_id != 0)
        rc = close_task(tx, w);
    if (rc == 0)
        return sb_tx_exec(tx, "RELEASE out_callbacks", "");
    sb_log(SB_WARN, "voice", "call_row=%lld call-back tasks not closed rc=%d (the row stays)", (long long)w->id, rc);
    json_t *events = w->ticket.events;
    sb_call_ticket_discard(&w->ticket);
    w->ticket.events = events != NULL ? json_array() : NULL;
    rc = sb_tx_exec(tx, "ROLLBACK TO out_callbacks", "");
    if (rc == 0)
        rc = sb_tx_exec(tx, "RELEASE out_callbacks", "");
    return rc;
}

static void cdr_done(void *arg, int rc)
{
    out_cdr *w = arg;
    if (rc != 0) {
        sb_log(SB_ERROR, "voice", "outbound call log row lost to=%s rc=%d", w->to, rc);
        sb_call_ticket_discard(&w->ticket);
    } else {
        sb_log(SB_DEBUG, "voice", "outbound call row=%lld status=%s tasks_done=%zu", (long long)w->id, w->status,
               w->ticket.ndone);
        sb_call_ticket_after(w->out->app, &w->ticket); /* the engine and the stream hear of the tasks */
    }
    free(w);
}

/* answered: the customer picked up. busy: they refused (486, 600, 603).
 * missed: no answer (408, 480, 487), or the agent or the system gave up
 * while it rang. failed: the customer was never rung (the agent did not
 * pick up, no trunk) or the trunk refused (401, 403, 5xx...). */
static const char *call_status(const out_call *r, const sb_voice_event *ev, int *code)
{
    *code = r->customer_code != 0 ? r->customer_code : ev->sip_code;
    if (r->answered_at != 0)
        return "answered";
    if (r->agent_answered_at == 0) {
        if (r->agent_code != 0)
            *code = r->agent_code;
        return "failed";
    }
    switch (*code) {
    case 486:
    case 600:
    case 603: return "busy";
    case 0:
    case 408:
    case 480:
    case 487: return "missed";
    default: return "failed";
    }
}

/* Returns the status written (a literal). */
static const char *log_call(sb_outbound *o, const out_call *r, const sb_voice_event *ev)
{
    out_cdr *w = sb_xcalloc(1, sizeof *w);
    w->out = o;
    w->agent_id = r->agent_id;
    w->contact_id = r->contact_id;
    w->ticket_id = r->ticket_id;
    w->task_id = r->task_id;
    snprintf(w->from, sizeof w->from, "%s", r->caller_id);
    snprintf(w->to, sizeof w->to, "%s", r->number);
    snprintf(w->source, sizeof w->source, "%s:%s", o->app->cfg.trunk_tcp ? "tcp" : "udp", o->app->cfg.trunk_host);
    w->status = call_status(r, ev, &w->sip_code);
    w->hangup_by = sb_voice_party_name(ev->by);
    w->cause = sb_voice_cause_name(ev->cause);
    w->offered_at = r->placed_at;
    w->answered_at = r->answered_at;
    w->ended_at = ev->at_ms;
    memcpy(w->recording, r->recording, sizeof w->recording);
    w->recording_ms = r->recording_ms;
    w->ticket.at = ev->at_ms;
    if (sb_call_ticket_want_events(o->app))
        w->ticket.events = json_array();
    sb_log(SB_INFO, "voice", "outbound=%lld ended to=%s status=%s by=%s cause=%s code=%d", (long long)r->live_id,
           r->number, w->status, w->hangup_by ? w->hangup_by : "-", w->cause, w->sip_code);
    const char *status = w->status;
    sb_store_submit(o->app->store, cdr_run, cdr_done, w);
    return status;
}

/* ---- recording: DATA/recordings/YYYY-MM/<placed_at>-out<live id>.wav ---- */

static void start_recording(sb_outbound *o, out_call *r)
{
    if (!o->app->cfg.sip_record_calls)
        return;
    char month[40], path[SB_VOICE_PATH_MAX];
    sb_clock_format_iso(r->placed_at, month, sizeof month);
    month[7] = '\0'; /* "YYYY-MM" */
    int n = snprintf(path, sizeof path, "%s/recordings/%s/%lld-out%lld.wav", o->app->cfg.data_dir, month,
                     (long long)r->placed_at, (long long)r->live_id);
    sb_voice_record_opts opt = {.mode = SB_VOICE_REC_CALL};
    if (n < 0 || (size_t)n >= sizeof path || sb_voice_record(o->voice, r->voice_id, path, &opt) != 0)
        sb_log(SB_WARN, "voice", "outbound=%lld cannot record", (long long)r->live_id);
}

static void on_recording_done(sb_outbound *o, out_call *r, const sb_voice_event *ev)
{
    const char *rel = ev->path;
    size_t dl = strlen(o->app->cfg.data_dir);
    if (strncmp(rel, o->app->cfg.data_dir, dl) == 0 && rel[dl] == '/')
        rel += dl + 1;
    if (ev->duration_ms > 0 && strlen(rel) < sizeof r->recording) {
        memcpy(r->recording, rel, strlen(rel) + 1);
        r->recording_ms = ev->duration_ms;
    }
}

/* ---- the voice thread's events ---- */

void sb_outbound_on_event(sb_outbound *o, const sb_voice_event *ev)
{
    out_call **link = NULL;
    out_call *r = o != NULL ? find_voice(o, ev->call_id, &link) : NULL;
    if (r == NULL)
        return;
    SB_ASSERT(r->magic == OUT_MAGIC);
    bool agent_leg = ev->leg_id == SB_VOICE_LEG_AGENT;
    switch (ev->kind) {
    case SB_VOICE_LEG_RINGING:
        if (agent_leg)
            tell_agent(o, r, "call.ringing", "ringing_agent");
        sb_log(SB_INFO, "voice", "outbound=%lld %s rings", (long long)r->live_id, agent_leg ? "agent" : "customer");
        break;
    case SB_VOICE_LEG_ANSWERED:
        if (agent_leg) {
            r->agent_answered_at = ev->at_ms;
            tell_on_call(o, r, true);
            sb_log(SB_INFO, "voice", "outbound=%lld agent picked up ext=%s", (long long)r->live_id, ev->extension);
        } else {
            r->answered_at = ev->at_ms;
            start_recording(o, r);
            tell_agent(o, r, "call.answered", "talking");
            sb_log(SB_INFO, "voice", "outbound=%lld customer answered", (long long)r->live_id);
        }
        break;
    case SB_VOICE_LEG_FAILED:
        if (agent_leg)
            r->agent_code = ev->sip_code;
        else
            r->customer_code = ev->sip_code;
        break;
    case SB_VOICE_RECORDING_DONE: on_recording_done(o, r, ev); break;
    case SB_VOICE_HANGUP:
        *link = r->next;
        tell_on_call(o, r, false);
        tell_agent(o, r, "call.ended", "ended");
        const char *status = log_call(o, r, ev);
        if (r->on_end != NULL)
            r->on_end(r->on_end_arg, r->live_id, status, r->agent_answered_at != 0);
        r->magic = 0;
        free(r);
        break;
    default: break; /* the customer's digits, nothing else comes */
    }
}
