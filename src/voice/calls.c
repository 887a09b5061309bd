/* calls.c - see calls.h. Runs on the core loop. */
#include "voice/calls.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "base/log.h"
#include "engine/calendar.h"
#include "engine/ivr.h"
#include "engine/model.h"
#include "voice/voice.h"

#define MAX_PATH_DIGITS (SB_IVR_PATH_MAX - 1)
#define MAX_LEGS        16   /* agents rung at once for one call */
#define RING_RETRY_MS   3000 /* after every leg failed (or nobody was free), ring again */

/* Where the IVR sent a call when it left it. A queue (ring_all) or an agent
 * is rung while the caller hears the hold prompt; voicemail recording is
 * not executed yet: it plays its prompt and ends. */
typedef enum call_outcome { OUT_NONE, OUT_QUEUE, OUT_AGENT, OUT_VOICEMAIL, OUT_HANGUP } call_outcome;

/* A leg we asked the voice thread to ring (or that answered). */
typedef struct call_leg {
    uint64_t id;
    int64_t agent_id;
} call_leg;

typedef struct call_rec {
    uint64_t id;
    char from[SB_VOICE_EXT_MAX];
    char to[SB_VOICE_EXT_MAX];
    char source[SB_VOICE_ADDR_MAX];
    bool from_extension;
    bool did;    /* the number is one of ours */
    bool in_ivr; /* the IVR has the call */
    call_outcome outcome;
    int64_t queue_team_id, agent_id;
    int64_t offered_at, answered_at;
    uint64_t answer_at_ms; /* monotonic; 0 = no delayed answer pending */
    uint32_t play_id;      /* of the last prompt we started */
    char language[8];
    char path[MAX_PATH_DIGITS + 1];
    call_leg legs[MAX_LEGS]; /* ringing, or the one bridged */
    size_t nlegs;
    uint64_t bridged_leg;   /* 0 until an agent answered */
    uint64_t retry_at_ms;   /* monotonic: ring again then (0: not waiting) */
    uint64_t give_up_at_ms; /* monotonic: queue_max_wait reached (0: none) */
    struct call_rec *next;
} call_rec;

/* An agent who can be rung: their extension and whether any device of it
 * is registered now (REGISTERED seen and not every binding UNREGISTERED). */
typedef struct agent_line {
    int64_t agent_id;
    char extension[SB_VOICE_EXT_MAX];
    unsigned devices;
} agent_line;

typedef struct team_member {
    int64_t agent_id, team_id;
} team_member;

struct sb_calls {
    sb_app *app;
    sb_voice *voice;
    call_rec *calls;
    sb_ivr *ivr;
    sb_ivr_actions acts;
    uv_timer_t answer_timer; /* the earliest delayed answer */
    uv_timer_t ivr_timer;    /* the IVR's next deadline */
    uv_timer_t ring_timer;   /* the earliest retry or give-up of a waiting call */
    bool timer_open;
    agent_line *agents; /* from the store: agents with an extension */
    size_t nagents;
    team_member *members;
    size_t nmembers;
    uint64_t next_leg;
    uint32_t next_play; /* play ids for prompts the IVR did not ask for */
    uint64_t logged, log_failures;
};

/* ---- the call log ---- */

typedef struct cdr_op {
    char from[SB_VOICE_EXT_MAX], to[SB_VOICE_EXT_MAX], source[SB_VOICE_ADDR_MAX];
    char path[MAX_PATH_DIGITS + 1];
    bool did;
    int64_t queue_team_id, agent_id;
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
                          "hangup_cause, sip_code, ivr_path, queue_team_id, agent_id, offered_at, answered_at, "
                          "ended_at, created_at) VALUES ('in', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                          "tttttttItIIiIii", o->from, o->to, o->did ? o->to : NULL, o->source, o->status, o->hangup_by,
                          o->cause, (int64_t)o->sip_code, o->path, o->queue_team_id, o->agent_id, o->offered_at,
                          o->answered_at, o->ended_at, sb_tx_now(tx));
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
    o->queue_team_id = r->queue_team_id;
    o->agent_id = r->agent_id;
    o->offered_at = r->offered_at;
    o->answered_at = r->answered_at;
    o->ended_at = ev->at_ms;
    o->sip_code = ev->sip_code;
    o->cause = sb_voice_cause_name(ev->cause);
    o->hangup_by = sb_voice_party_name(ev->by);
    /* "answered" is kept for a person answering (answered_at is then when
     * the agent picked up). Answered only by the IVR, the caller who hangs
     * up abandoned it; our own hang-up (the menu's end, a queue's max wait)
     * leaves it missed. */
    if (r->bridged_leg != 0)
        o->status = "answered";
    else if (r->answered_at == 0)
        o->status = ev->cause == SB_VOICE_CAUSE_CANCELLED  ? "missed"
                    : ev->cause == SB_VOICE_CAUSE_REJECTED ? "rejected"
                                                           : "failed";
    else if (ev->cause == SB_VOICE_CAUSE_NO_MEDIA || ev->cause == SB_VOICE_CAUSE_ERROR ||
             ev->cause == SB_VOICE_CAUSE_SHUTDOWN)
        o->status = "failed";
    else if (ev->by == SB_VOICE_BY_CALLER)
        o->status = "abandoned";
    else
        o->status = "missed"; /* voicemail does not record yet */
    sb_log(SB_INFO, "voice", "call=%llu ended from=%s to=%s status=%s by=%s cause=%s path=%s",
           (unsigned long long)r->id, r->from, r->to, o->status, o->hangup_by ? o->hangup_by : "-", o->cause, r->path);
    sb_store_submit(c->app->store, cdr_run, cdr_done, o);
}

/* ---- decisions: the IVR (src/engine/ivr.c) decides, we execute ---- */

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

static void on_ivr_timer(uv_timer_t *t);

static void arm_ivr_timer(sb_calls *c)
{
    if (!c->timer_open)
        return;
    int64_t due = sb_ivr_next_deadline(c->ivr);
    if (due == INT64_MAX) {
        uv_timer_stop(&c->ivr_timer);
        return;
    }
    int64_t now = sb_clock_wall_ms();
    uv_timer_start(&c->ivr_timer, on_ivr_timer, due > now ? (uint64_t)(due - now) : 0, 0);
}

static void play(sb_calls *c, call_rec *r, const char *prompt, const char *lang, bool loop, uint32_t play_id)
{
    char path[700];
    snprintf(path, sizeof path, "%s/%s/%s.wav", c->app->cfg.sip_prompts, lang[0] ? lang : "ru", prompt);
    r->play_id = play_id;
    sb_voice_play(c->voice, r->id, path, loop, play_id);
}

/* A prompt of our own (not the IVR's): ids from the top half, so they never
 * meet the IVR's. */
static uint32_t own_play_id(sb_calls *c)
{
    return 0x80000000u | (++c->next_play & 0x7fffffffu);
}

static void left_ivr(call_rec *r, const sb_ivr_action *a, call_outcome outcome)
{
    r->in_ivr = false;
    r->outcome = outcome;
    snprintf(r->path, sizeof r->path, "%s", a->path);
}

/* ---- ringing agents: ring_all over the registered, free members ---- */

static agent_line *agent_by_id(sb_calls *c, int64_t agent_id)
{
    for (size_t i = 0; i < c->nagents; i++)
        if (c->agents[i].agent_id == agent_id)
            return &c->agents[i];
    return NULL;
}

/* Ringing for, or talking on, some call. (The engine does not hear of it
 * yet: an agent on a call still counts as free for chats.) */
static bool agent_busy(const sb_calls *c, int64_t agent_id)
{
    for (const call_rec *r = c->calls; r != NULL; r = r->next)
        for (size_t i = 0; i < r->nlegs; i++)
            if (r->legs[i].agent_id == agent_id)
                return true;
    return false;
}

static void on_ring_timer(uv_timer_t *t);

static void arm_ring_timer(sb_calls *c)
{
    if (!c->timer_open)
        return;
    uint64_t earliest = 0;
    for (const call_rec *r = c->calls; r != NULL; r = r->next) {
        if (r->retry_at_ms != 0 && (earliest == 0 || r->retry_at_ms < earliest))
            earliest = r->retry_at_ms;
        if (r->give_up_at_ms != 0 && (earliest == 0 || r->give_up_at_ms < earliest))
            earliest = r->give_up_at_ms;
    }
    if (earliest == 0) {
        uv_timer_stop(&c->ring_timer);
        return;
    }
    uint64_t now = sb_clock_mono_ms();
    uv_timer_start(&c->ring_timer, on_ring_timer, earliest > now ? earliest - now : 0, 0);
}

static void ring_one(sb_calls *c, call_rec *r, int64_t agent_id)
{
    const agent_line *ag = agent_by_id(c, agent_id);
    if (ag == NULL || ag->devices == 0 || r->nlegs == MAX_LEGS || agent_busy(c, agent_id))
        return;
    uint64_t leg_id = ++c->next_leg;
    if (sb_voice_ring(c->voice, r->id, leg_id, ag->extension, c->app->cfg.sip_ring_timeout_seconds) != 0)
        return;
    sb_log(SB_INFO, "voice", "call=%llu ringing agent=%lld ext=%s leg=%llu", (unsigned long long)r->id,
           (long long)agent_id, ag->extension, (unsigned long long)leg_id);
    r->legs[r->nlegs++] = (call_leg){leg_id, agent_id};
}

/* Rings every registered agent of the call's queue who is not ringing or
 * talking already (or the one agent the IVR chose). Nobody to ring: try
 * again in a moment while the caller waits on hold. */
static void ring_agents(sb_calls *c, call_rec *r)
{
    if (r->bridged_leg != 0)
        return;
    if (r->outcome == OUT_AGENT) {
        ring_one(c, r, r->agent_id);
    } else {
        for (size_t i = 0; i < c->nmembers; i++)
            if (c->members[i].team_id == r->queue_team_id)
                ring_one(c, r, c->members[i].agent_id);
    }
    r->retry_at_ms = r->nlegs == 0 ? sb_clock_mono_ms() + RING_RETRY_MS : 0;
    arm_ring_timer(c);
}

static void drop_leg(call_rec *r, uint64_t leg_id)
{
    for (size_t i = 0; i < r->nlegs; i++) {
        if (r->legs[i].id == leg_id) {
            r->legs[i] = r->legs[--r->nlegs];
            return;
        }
    }
}

static call_leg *find_leg(call_rec *r, uint64_t leg_id)
{
    for (size_t i = 0; i < r->nlegs; i++)
        if (r->legs[i].id == leg_id)
            return &r->legs[i];
    return NULL;
}

static void on_ring_timer(uv_timer_t *t)
{
    sb_calls *c = t->data;
    uint64_t now = sb_clock_mono_ms();
    for (call_rec *r = c->calls; r != NULL; r = r->next) {
        if (r->bridged_leg != 0)
            continue;
        if (r->give_up_at_ms != 0 && r->give_up_at_ms <= now) {
            /* Nobody answered within queue_max_wait: a missed call (the
             * IVR's fallback for this comes later). */
            sb_log(SB_INFO, "voice", "call=%llu nobody answered in %us: hanging up", (unsigned long long)r->id,
                   c->app->cfg.sip_queue_max_wait_seconds);
            for (size_t i = 0; i < r->nlegs; i++)
                sb_voice_cancel_leg(c->voice, r->id, r->legs[i].id);
            r->nlegs = 0;
            r->give_up_at_ms = r->retry_at_ms = 0;
            sb_voice_hangup(c->voice, r->id);
        } else if (r->retry_at_ms != 0 && r->retry_at_ms <= now) {
            r->retry_at_ms = 0;
            ring_agents(c, r);
        }
    }
    arm_ring_timer(c);
}

static void on_leg_event(sb_calls *c, call_rec *r, const sb_voice_event *ev)
{
    call_leg *leg = find_leg(r, ev->leg_id);
    if (leg == NULL)
        return; /* cancelled by us meanwhile: the voice thread ended it */
    switch (ev->kind) {
    case SB_VOICE_LEG_RINGING:
        sb_log(SB_INFO, "voice", "call=%llu leg=%llu ringing", (unsigned long long)r->id,
               (unsigned long long)ev->leg_id);
        break;
    case SB_VOICE_LEG_FAILED:
        sb_log(SB_INFO, "voice", "call=%llu leg=%llu agent=%lld failed code=%d", (unsigned long long)r->id,
               (unsigned long long)ev->leg_id, (long long)leg->agent_id, ev->sip_code);
        drop_leg(r, ev->leg_id);
        if (r->nlegs == 0 && r->bridged_leg == 0) {
            r->retry_at_ms = sb_clock_mono_ms() + RING_RETRY_MS;
            arm_ring_timer(c);
        }
        break;
    case SB_VOICE_LEG_ANSWERED: {
        if (r->bridged_leg != 0) { /* another agent was first */
            sb_voice_cancel_leg(c->voice, r->id, ev->leg_id);
            drop_leg(r, ev->leg_id);
            break;
        }
        call_leg won = *leg;
        for (size_t i = 0; i < r->nlegs; i++)
            if (r->legs[i].id != won.id)
                sb_voice_cancel_leg(c->voice, r->id, r->legs[i].id);
        r->legs[0] = won;
        r->nlegs = 1;
        r->bridged_leg = won.id;
        r->agent_id = won.agent_id;
        r->answered_at = ev->at_ms;
        r->retry_at_ms = r->give_up_at_ms = 0;
        sb_voice_bridge(c->voice, r->id, won.id);
        sb_log(SB_INFO, "voice", "call=%llu answered by agent=%lld ext=%s leg=%llu", (unsigned long long)r->id,
               (long long)won.agent_id, ev->extension, (unsigned long long)won.id);
        arm_ring_timer(c);
        break;
    }
    default: break;
    }
}

static void on_registration(sb_calls *c, const sb_voice_event *ev)
{
    agent_line *ag = agent_by_id(c, ev->agent_id);
    if (ag == NULL)
        return;
    if (ev->kind == SB_VOICE_REGISTERED)
        ag->devices++;
    else if (ag->devices > 0)
        ag->devices--;
}

/* Executes what the IVR decided, then re-arms its timer. */
static void run_actions(sb_calls *c)
{
    for (size_t i = 0; i < c->acts.n; i++) {
        const sb_ivr_action *a = &c->acts.v[i];
        call_rec *r = rec_find(c, a->call_id, NULL);
        if (r == NULL)
            continue;
        if (a->language[0] != '\0')
            snprintf(r->language, sizeof r->language, "%s", a->language);
        switch (a->kind) {
        case SB_IVR_ANSWER:
            if (c->app->cfg.sip_answer_delay_ms == 0) {
                sb_voice_answer(c->voice, r->id);
            } else { /* ring a moment first, like a person picking up */
                r->answer_at_ms = sb_clock_mono_ms() + c->app->cfg.sip_answer_delay_ms;
                arm_answer_timer(c);
            }
            break;
        case SB_IVR_PLAY: play(c, r, a->prompt, r->language, false, a->play_id); break;
        case SB_IVR_STOP_PLAY: sb_voice_stop_play(c->voice, r->id); break;
        case SB_IVR_REJECT:
            left_ivr(r, a, OUT_HANGUP);
            r->did = false;
            sb_voice_reject(c->voice, r->id, a->sip_status);
            break;
        case SB_IVR_QUEUE:
        case SB_IVR_RING_AGENT:
            left_ivr(r, a, a->kind == SB_IVR_QUEUE ? OUT_QUEUE : OUT_AGENT);
            if (a->kind == SB_IVR_QUEUE)
                r->queue_team_id = a->id;
            else
                r->agent_id = a->id;
            sb_log(SB_INFO, "voice", "call=%llu %s=%lld path=%s reason=%s (waits on hold)", (unsigned long long)r->id,
                   a->kind == SB_IVR_QUEUE ? "queue" : "agent", (long long)a->id, a->path, a->reason);
            play(c, r, "wait", r->language, true, own_play_id(c));
            r->give_up_at_ms = sb_clock_mono_ms() + (uint64_t)c->app->cfg.sip_queue_max_wait_seconds * 1000;
            ring_agents(c, r);
            break;
        case SB_IVR_VOICEMAIL:
            left_ivr(r, a, OUT_VOICEMAIL);
            r->queue_team_id = a->id;
            play(c, r, "voicemail", r->language, false, own_play_id(c));
            break;
        case SB_IVR_HANGUP:
            left_ivr(r, a, OUT_HANGUP);
            sb_voice_hangup(c->voice, r->id);
            break;
        case SB_IVR_ABANDONED: left_ivr(r, a, OUT_NONE); break;
        }
    }
    sb_ivr_actions_reset(&c->acts);
    arm_ivr_timer(c);
}

static void ivr_input(sb_calls *c, call_rec *r, sb_ivr_input in)
{
    in.call_id = r->id;
    int rc = sb_ivr_handle(c->ivr, &in, sb_clock_wall_ms(), &c->acts);
    if (rc != 0 && rc != SB_ENOTFOUND)
        sb_log(SB_WARN, "voice", "call=%llu ivr refused input rc=%d", (unsigned long long)r->id, rc);
    run_actions(c);
}

static void on_ivr_timer(uv_timer_t *t)
{
    sb_calls *c = t->data;
    sb_ivr_tick(c->ivr, sb_clock_wall_ms(), &c->acts);
    run_actions(c);
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
    r->did = true; /* until the IVR says the number is not ours */
    r->in_ivr = true;
    r->next = c->calls;
    c->calls = r;
    sb_log(SB_INFO, "voice", "call=%llu offered from=%s to=%s src=%s extension=%d", (unsigned long long)r->id, r->from,
           r->to, r->source, (int)r->from_extension);
    ivr_input(c, r, (sb_ivr_input){.kind = SB_IVR_IN_OFFERED, .number = r->to});
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
        on_registration(c, ev);
        break;
    case SB_VOICE_CALL_OFFERED: on_offered(c, ev); break;
    case SB_VOICE_ANSWERED:
        if (r != NULL && r->bridged_leg == 0)
            r->answered_at = ev->at_ms;
        break;
    case SB_VOICE_LEG_RINGING:
    case SB_VOICE_LEG_ANSWERED:
    case SB_VOICE_LEG_FAILED:
        if (r != NULL)
            on_leg_event(c, r, ev);
        break;
    case SB_VOICE_DTMF:
        if (r == NULL)
            break;
        sb_log(SB_INFO, "voice", "call=%llu dtmf=%c", (unsigned long long)r->id, ev->digit);
        if (r->in_ivr)
            ivr_input(c, r, (sb_ivr_input){.kind = SB_IVR_IN_DIGIT, .digit = ev->digit});
        break;
    case SB_VOICE_PLAY_DONE:
        if (r == NULL)
            break;
        if (ev->cause == SB_VOICE_CAUSE_ERROR)
            sb_log(SB_WARN, "voice", "call=%llu prompt could not be played", (unsigned long long)r->id);
        if (r->in_ivr)
            ivr_input(c, r, (sb_ivr_input){.kind = SB_IVR_IN_PLAY_DONE, .play_id = ev->play_id});
        else if (r->outcome == OUT_VOICEMAIL && ev->play_id == r->play_id)
            sb_voice_hangup(c->voice, r->id); /* recording comes with the next slice */
        break;
    case SB_VOICE_HANGUP:
        if (r == NULL)
            break;
        if (r->in_ivr) /* the caller left the menu: the IVR reports the path */
            ivr_input(c, r, (sb_ivr_input){.kind = SB_IVR_IN_HANGUP});
        *link = r->next;
        log_call(c, r, ev);
        free(r);
        if (c->timer_open) {
            arm_answer_timer(c);
            arm_ring_timer(c);
        }
        break;
    }
}

/* ---- the registrar's credentials ---- */

typedef struct ext_op {
    sb_calls *calls;
    sb_voice_extension *ext;
    size_t n;
    json_t *config; /* [[kind, id, data], ...]: numbers, menus, calendars */
    team_member *members;
    size_t nmembers;
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
    if (rc < 0)
        return rc;
    s = sb_tx_query(tx,
                    "SELECT kind, id, data FROM config_item WHERE kind IN ('phone_number', 'ivr_menu', 'calendar') "
                    "ORDER BY kind, id",
                    "");
    if (s == NULL)
        return SB_EIO;
    o->config = json_array();
    while ((rc = sb_stmt_step(s)) == 1)
        json_array_append_new(
            o->config, json_pack("[s,I,s]", sb_stmt_text(s, 0), (json_int_t)sb_stmt_int(s, 1), sb_stmt_text(s, 2)));
    sb_stmt_end(s);
    if (rc < 0)
        return rc;
    s = sb_tx_query(tx,
                    "SELECT at.agent_id, at.team_id FROM agent_team at JOIN agent a ON a.id = at.agent_id "
                    "WHERE a.active = 1 ORDER BY at.team_id, at.agent_id",
                    "");
    if (s == NULL)
        return SB_EIO;
    cap = 0;
    while ((rc = sb_stmt_step(s)) == 1) {
        if (o->nmembers == cap) {
            cap = cap ? cap * 2 : 16;
            o->members = sb_xrealloc(o->members, cap * sizeof *o->members);
        }
        o->members[o->nmembers++] = (team_member){sb_stmt_int(s, 0), sb_stmt_int(s, 1)};
    }
    sb_stmt_end(s);
    return rc < 0 ? rc : 0;
}

/* Takes the agents' extensions and teams, keeping the registration state
 * of agents whose extension stayed (the voice thread reports the bindings
 * it drops for the others). */
static void load_agents(sb_calls *c, ext_op *o)
{
    agent_line *agents = o->n > 0 ? sb_xcalloc(o->n, sizeof *agents) : NULL;
    for (size_t i = 0; i < o->n; i++) {
        agents[i].agent_id = o->ext[i].agent_id;
        memcpy(agents[i].extension, o->ext[i].extension, sizeof agents[i].extension);
        const agent_line *old = agent_by_id(c, agents[i].agent_id);
        if (old != NULL && strcmp(old->extension, agents[i].extension) == 0)
            agents[i].devices = old->devices;
    }
    free(c->agents);
    c->agents = agents;
    c->nagents = o->n;
    free(c->members);
    c->members = o->members;
    c->nmembers = o->nmembers;
    o->members = NULL;
}

/* Hands the IVR its numbers, menus, calendars and the agents' extensions
 * (documents that no longer build are skipped and logged). */
static void load_ivr(sb_calls *c, const ext_op *o)
{
    sb_ivr_clear_config(c->ivr);
    size_t i;
    json_t *row;
    json_array_foreach (o->config, i, row) {
        const char *kind = json_string_value(json_array_get(row, 0));
        json_int_t id = json_integer_value(json_array_get(row, 1));
        json_t *doc = json_loads(json_string_value(json_array_get(row, 2)), 0, NULL);
        if (doc == NULL)
            continue;
        int rc = SB_EINVAL;
        if (strcmp(kind, "calendar") == 0) {
            json_object_del(doc, "id");
            json_object_del(doc, "name");
            sb_calendar *cal = NULL;
            char field[64], msg[160];
            if (sb_calendar_from_json(doc, &cal, field, sizeof field, msg, sizeof msg) == 0)
                rc = sb_ivr_put_calendar(c->ivr, id, cal);
        } else {
            json_object_set_new(doc, "id", json_integer(id));
            if (strcmp(kind, "phone_number") == 0) {
                sb_phone_number num;
                if (sb_voice_number(doc, &num) == 0)
                    rc = sb_ivr_put_number(c->ivr, &num);
            } else {
                sb_ivr_menu *menu = sb_xcalloc(1, sizeof *menu);
                if (sb_voice_menu(doc, menu) == 0)
                    rc = sb_ivr_put_menu(c->ivr, menu);
                free(menu);
            }
        }
        if (rc != 0)
            sb_log(SB_WARN, "voice", "%s %lld skipped rc=%d", kind, (long long)id, rc);
        json_decref(doc);
    }
    for (size_t k = 0; k < o->n; k++)
        if (strlen(o->ext[k].extension) == SB_IVR_EXT_DIGITS)
            sb_ivr_put_extension(c->ivr, o->ext[k].extension, o->ext[k].agent_id);
}

static void ext_done(void *arg, int rc)
{
    ext_op *o = arg;
    if (rc != 0)
        sb_log(SB_ERROR, "voice", "cannot read SIP extensions rc=%d", rc);
    else if (o->calls->voice != NULL) {
        sb_voice_set_extensions(o->calls->voice, o->ext, o->n);
        load_agents(o->calls, o);
        load_ivr(o->calls, o);
        arm_ivr_timer(o->calls); /* calls whose menu went away have news */
        run_actions(o->calls);
    }
    json_decref(o->config);
    free(o->ext);
    free(o->members);
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
    c->ivr = sb_ivr_new();
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
        sb_ivr_free(c->ivr);
        free(c);
        return NULL;
    }
    uv_timer_init(app->loop, &c->answer_timer);
    c->answer_timer.data = c;
    uv_timer_init(app->loop, &c->ivr_timer);
    c->ivr_timer.data = c;
    uv_timer_init(app->loop, &c->ring_timer);
    c->ring_timer.data = c;
    c->timer_open = true;
    sb_calls_reload(c);
    sb_store_flush(app->store); /* the registrar knows its extensions before the first REGISTER */
    sb_log(SB_INFO, "voice", "sip listening addr=%s:%d realm=%s", cfg->sip_host, sb_voice_port(c->voice),
           cfg->sip_realm);
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
        uv_close((uv_handle_t *)&c->ivr_timer, NULL);
        uv_close((uv_handle_t *)&c->ring_timer, NULL);
    }
}

void sb_calls_free(sb_calls *c)
{
    if (c == NULL)
        return;
    sb_voice_free(c->voice);
    sb_ivr_free(c->ivr);
    sb_ivr_actions_free(&c->acts);
    free(c->agents);
    free(c->members);
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
