/* calls.c - see calls.h. Runs on the core loop. */
#include "voice/calls.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "base/log.h"
#include "engine/model.h"
#include "voice/voice.h"

#define MAX_PATH_DIGITS 32

typedef struct call_rec {
    uint64_t id;
    char from[SB_VOICE_EXT_MAX];
    char to[SB_VOICE_EXT_MAX];
    char source[SB_VOICE_ADDR_MAX];
    bool from_extension;
    bool did;
    int64_t offered_at, answered_at;
    uint64_t answer_at_ms; /* monotonic; 0 = no delayed answer pending */
    char path[MAX_PATH_DIGITS + 1];
    struct call_rec *next;
} call_rec;

struct sb_calls {
    sb_app *app;
    sb_voice *voice;
    call_rec *calls;
    uv_timer_t answer_timer; /* the earliest delayed answer */
    bool timer_open;
    char welcome[600];
    uint64_t logged, log_failures;
};

/* ---- the call log ---- */

typedef struct cdr_op {
    char from[SB_VOICE_EXT_MAX], to[SB_VOICE_EXT_MAX], source[SB_VOICE_ADDR_MAX];
    char path[MAX_PATH_DIGITS + 1];
    bool did;
    const char *status, *hangup_by, *cause;
    int sip_code;
    int64_t offered_at, answered_at, ended_at;
    int64_t id;
    sb_calls *calls;
} cdr_op;

static int cdr_run(sb_tx *tx, void *arg)
{
    cdr_op *o = arg;
    int rc = sb_tx_insert(tx, &o->id,
                          "INSERT INTO call (direction, from_number, to_number, did, source, status, hangup_by, "
                          "hangup_cause, sip_code, ivr_path, offered_at, answered_at, ended_at, created_at) "
                          "VALUES ('in', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                          "tttttttItiIii", o->from, o->to, o->did ? o->to : NULL, o->source, o->status, o->hangup_by,
                          o->cause, (int64_t)o->sip_code, o->path, o->offered_at, o->answered_at, o->ended_at,
                          sb_tx_now(tx));
    if (rc != 0)
        return rc;
    return sb_event_log(tx, (sb_actor){"system", 0}, "call", o->id, "call.ended",
                        json_pack("{s:s,s:s,s:s,s:o,s:s,s:s}", "from", o->from, "to", o->to, "status", o->status,
                                  "hangup_by", sb_json_text(o->hangup_by), "cause", o->cause, "path", o->path));
}

static void cdr_done(void *arg, int rc)
{
    cdr_op *o = arg;
    if (rc != 0) {
        o->calls->log_failures++;
        sb_log(SB_ERROR, "voice", "call log row lost from=%s to=%s rc=%d", o->from, o->to, rc);
    } else {
        o->calls->logged++;
    }
    free(o);
}

static void log_call(sb_calls *c, const call_rec *r, const sb_voice_event *ev)
{
    cdr_op *o = sb_xcalloc(1, sizeof *o);
    o->calls = c;
    memcpy(o->from, r->from, sizeof o->from);
    memcpy(o->to, r->to, sizeof o->to);
    memcpy(o->source, r->source, sizeof o->source);
    memcpy(o->path, r->path, sizeof o->path);
    o->did = r->did;
    o->offered_at = r->offered_at;
    o->answered_at = r->answered_at;
    o->ended_at = ev->at_ms;
    o->sip_code = ev->sip_code;
    o->cause = sb_voice_cause_name(ev->cause);
    o->hangup_by = sb_voice_party_name(ev->by);
    if (r->answered_at != 0)
        o->status = "answered";
    else if (ev->cause == SB_VOICE_CAUSE_CANCELLED)
        o->status = "missed";
    else if (ev->cause == SB_VOICE_CAUSE_REJECTED)
        o->status = "rejected";
    else
        o->status = "failed";
    sb_log(SB_INFO, "voice", "call=%llu ended from=%s to=%s status=%s by=%s cause=%s path=%s",
           (unsigned long long)r->id, r->from, r->to, o->status, o->hangup_by ? o->hangup_by : "-", o->cause, r->path);
    sb_store_submit(c->app->store, cdr_run, cdr_done, o);
}

/* ---- decisions (the fixed minimum; see calls.h) ---- */

static bool is_did(const sb_calls *c, const char *number)
{
    const char *p = c->app->cfg.sip_dids;
    size_t n = strlen(number);
    while (*p) {
        while (*p == ' ' || *p == ',')
            p++;
        const char *start = p;
        while (*p && *p != ',' && *p != ' ')
            p++;
        if ((size_t)(p - start) == n && n > 0 && memcmp(start, number, n) == 0)
            return true;
    }
    return false;
}

static call_rec *rec_find(sb_calls *c, uint64_t id, call_rec ***link)
{
    for (call_rec **pp = &c->calls; *pp != NULL; pp = &(*pp)->next) {
        if ((*pp)->id == id) {
            if (link != NULL)
                *link = pp;
            return *pp;
        }
    }
    return NULL;
}

static void on_answer_timer(uv_timer_t *t);

static void arm_answer_timer(sb_calls *c)
{
    uint64_t earliest = 0;
    for (call_rec *r = c->calls; r != NULL; r = r->next)
        if (r->answer_at_ms != 0 && (earliest == 0 || r->answer_at_ms < earliest))
            earliest = r->answer_at_ms;
    if (earliest == 0) {
        uv_timer_stop(&c->answer_timer);
        return;
    }
    uint64_t now = sb_clock_mono_ms();
    uv_timer_start(&c->answer_timer, on_answer_timer, earliest > now ? earliest - now : 0, 0);
}

static void on_answer_timer(uv_timer_t *t)
{
    sb_calls *c = t->data;
    uint64_t now = sb_clock_mono_ms();
    for (call_rec *r = c->calls; r != NULL; r = r->next) {
        if (r->answer_at_ms != 0 && r->answer_at_ms <= now) {
            r->answer_at_ms = 0;
            sb_voice_answer(c->voice, r->id);
        }
    }
    arm_answer_timer(c);
}

static void on_offered(sb_calls *c, const sb_voice_event *ev)
{
    call_rec *r = sb_xcalloc(1, sizeof *r);
    r->id = ev->call_id;
    memcpy(r->from, ev->from, sizeof r->from);
    memcpy(r->to, ev->to, sizeof r->to);
    memcpy(r->source, ev->source, sizeof r->source);
    r->from_extension = ev->from_extension;
    r->offered_at = ev->at_ms;
    r->did = is_did(c, ev->to);
    r->next = c->calls;
    c->calls = r;
    sb_log(SB_INFO, "voice", "call=%llu offered from=%s to=%s src=%s extension=%d", (unsigned long long)r->id, r->from,
           r->to, r->source, (int)r->from_extension);
    if (!r->did) {
        sb_voice_reject(c->voice, r->id, 404);
        return;
    }
    if (c->app->cfg.sip_answer_delay_ms == 0) {
        sb_voice_answer(c->voice, r->id);
        return;
    }
    r->answer_at_ms = sb_clock_mono_ms() + c->app->cfg.sip_answer_delay_ms;
    arm_answer_timer(c);
}

static void on_voice_event(const sb_voice_event *ev, void *arg)
{
    sb_calls *c = arg;
    call_rec **link = NULL;
    call_rec *r = ev->call_id != 0 ? rec_find(c, ev->call_id, &link) : NULL;
    switch (ev->kind) {
    case SB_VOICE_REGISTERED:
    case SB_VOICE_UNREGISTERED:
        sb_log(SB_INFO, "voice", "%s ext=%s agent=%lld contact=%s",
               ev->kind == SB_VOICE_REGISTERED ? "registered" : "unregistered", ev->extension, (long long)ev->agent_id,
               ev->contact);
        break;
    case SB_VOICE_CALL_OFFERED: on_offered(c, ev); break;
    case SB_VOICE_ANSWERED:
        if (r == NULL)
            break;
        r->answered_at = ev->at_ms;
        sb_voice_play(c->voice, r->id, c->welcome, false);
        break;
    case SB_VOICE_DTMF:
        if (r == NULL)
            break;
        if (strlen(r->path) < MAX_PATH_DIGITS) {
            size_t n = strlen(r->path);
            r->path[n] = ev->digit;
            r->path[n + 1] = '\0';
        }
        sb_log(SB_INFO, "voice", "call=%llu dtmf=%c", (unsigned long long)r->id, ev->digit);
        break;
    case SB_VOICE_PLAY_DONE:
        if (r != NULL && ev->cause == SB_VOICE_CAUSE_ERROR)
            sb_log(SB_WARN, "voice", "call=%llu prompt could not be played", (unsigned long long)r->id);
        break;
    case SB_VOICE_HANGUP:
        if (r == NULL)
            break;
        *link = r->next;
        log_call(c, r, ev);
        free(r);
        if (c->timer_open)
            arm_answer_timer(c);
        break;
    }
}

/* ---- the registrar's credentials ---- */

typedef struct ext_op {
    sb_calls *calls;
    sb_voice_extension *ext;
    size_t n;
} ext_op;

static int ext_run(sb_tx *tx, void *arg)
{
    ext_op *o = arg;
    sb_stmt *s = sb_tx_query(tx,
                             "SELECT sip_extension, id, sip_ha1 FROM agent WHERE active = 1 AND "
                             "sip_extension IS NOT NULL AND sip_ha1 IS NOT NULL ORDER BY sip_extension",
                             "");
    if (s == NULL)
        return SB_EIO;
    size_t cap = 0;
    int rc;
    while ((rc = sb_stmt_step(s)) == 1) {
        const char *ext = sb_stmt_text(s, 0), *ha1 = sb_stmt_text(s, 2);
        if (strlen(ext) >= SB_VOICE_EXT_MAX || strlen(ha1) != 32)
            continue;
        if (o->n == cap) {
            cap = cap ? cap * 2 : 16;
            o->ext = sb_xrealloc(o->ext, cap * sizeof *o->ext);
        }
        sb_voice_extension *e = &o->ext[o->n++];
        memset(e, 0, sizeof *e);
        snprintf(e->extension, sizeof e->extension, "%s", ext);
        e->agent_id = sb_stmt_int(s, 1);
        memcpy(e->ha1, ha1, 33);
    }
    sb_stmt_end(s);
    return rc < 0 ? rc : 0;
}

static void ext_done(void *arg, int rc)
{
    ext_op *o = arg;
    if (rc != 0)
        sb_log(SB_ERROR, "voice", "cannot read SIP extensions rc=%d", rc);
    else if (o->calls->voice != NULL)
        sb_voice_set_extensions(o->calls->voice, o->ext, o->n);
    free(o->ext);
    free(o);
}

void sb_calls_reload(sb_calls *c)
{
    if (c == NULL || c->voice == NULL)
        return;
    ext_op *o = sb_xcalloc(1, sizeof *o);
    o->calls = c;
    sb_store_read(c->app->store, ext_run, ext_done, o);
}

/* ---- lifecycle ---- */

sb_calls *sb_calls_start(sb_app *app)
{
    const sb_config *cfg = &app->cfg;
    sb_calls *c = sb_xcalloc(1, sizeof *c);
    c->app = app;
    snprintf(c->welcome, sizeof c->welcome, "%s/%s/welcome.wav", cfg->sip_prompts, cfg->sip_language);
    sb_voice_options opt;
    memset(&opt, 0, sizeof opt);
    snprintf(opt.host, sizeof opt.host, "%s", cfg->sip_host);
    opt.port = cfg->sip_port;
    snprintf(opt.realm, sizeof opt.realm, "%s", cfg->sip_realm);
    opt.no_media_seconds = cfg->sip_no_media_seconds;
    opt.ring_timeout_seconds = 120;
    opt.register_max_failures = cfg->sip_register_max_failures;
    opt.register_lockout_seconds = cfg->sip_register_lockout_seconds;
    if (sb_voice_start(&c->voice, app->loop, &opt, on_voice_event, c) != 0) {
        free(c);
        return NULL;
    }
    uv_timer_init(app->loop, &c->answer_timer);
    c->answer_timer.data = c;
    c->timer_open = true;
    sb_calls_reload(c);
    sb_store_flush(app->store); /* the registrar knows its extensions before the first REGISTER */
    sb_log(SB_INFO, "voice", "sip listening addr=%s:%d realm=%s dids=%s", cfg->sip_host, sb_voice_port(c->voice),
           cfg->sip_realm, cfg->sip_dids);
    return c;
}

int sb_calls_sip_port(const sb_calls *c)
{
    return c != NULL ? sb_voice_port(c->voice) : 0;
}

void sb_calls_stop(sb_calls *c)
{
    if (c == NULL || c->voice == NULL)
        return;
    sb_voice_stop(c->voice, NULL, NULL); /* delivers the last hangups */
    if (c->timer_open) {
        c->timer_open = false;
        uv_close((uv_handle_t *)&c->answer_timer, NULL);
    }
}

void sb_calls_free(sb_calls *c)
{
    if (c == NULL)
        return;
    sb_voice_free(c->voice);
    while (c->calls != NULL) {
        call_rec *r = c->calls;
        c->calls = r->next;
        free(r);
    }
    free(c);
}

void sb_calls_metrics_text(const sb_calls *c, sb_buf *b)
{
    if (c == NULL)
        return;
    sb_voice_metrics_text(c->voice, b);
    sb_buf_printf(b,
                  "# HELP switchboard_voice_calls_logged_total Calls written to the call log.\n"
                  "# TYPE switchboard_voice_calls_logged_total counter\nswitchboard_voice_calls_logged_total %llu\n",
                  (unsigned long long)c->logged);
}
