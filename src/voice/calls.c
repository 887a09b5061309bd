/* calls.c - see calls.h. Runs on the core loop. */
#include "voice/calls.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "base/log.h"
#include "api/stream.h"
#include "dispatch.h"
#include "engine/calendar.h"
#include "engine/callq.h"
#include "engine/config.h"
#include "engine/fwd.h"
#include "engine/ivr.h"
#include "engine/model.h"
#include "voice/calltickets.h"
#include "voice/outbound.h"
#include "voice/voice.h"

#define MAX_PATH_DIGITS (SB_IVR_PATH_MAX - 1)
#define MAX_LEGS        16   /* agents rung at once for one call */
#define RING_RETRY_MS   3000 /* a direct call: after its leg failed (or the agent was busy), ring again */
#define AVAIL_PERIOD_MS 1000 /* agents' availability for queue calls is refreshed this often */
#define RATING_WAIT_MS  6000 /* the post-call rating: no key this long after the question ends it */
#define RATING_ASKS     2    /* the question, and once more after a key that is not 1-5 */

/* Where the IVR sent a call when it left it. A queue (src/engine/callq.c
 * decides whom to ring) or an agent is rung while the caller hears the hold
 * prompt; OUT_GOODBYE plays a last prompt and hangs up. */
typedef enum call_outcome {
    OUT_NONE,
    OUT_QUEUE,
    OUT_AGENT,
    OUT_VOICEMAIL,
    OUT_HANGUP,
    OUT_GOODBYE,
    OUT_SCHEME, /* a forwarding scheme (src/engine/fwd.c) rings its targets */
    OUT_RATING, /* the agent hung up first: the caller is asked to rate the call */
} call_outcome;

/* Legs the forwarding scheme names get this bit in the voice thread's leg
 * id, so they never meet ours within a call. */
#define FWD_LEG_BIT (1ull << 40)

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
    /* queue calls: the call queue (callq) has the call from joining to LEAVE */
    bool in_queue;                     /* joined, not left */
    bool q_talking;                    /* bridged to a queue agent: their CALL_ENDED is owed */
    bool callback_requested;           /* the caller pressed the callback key */
    bool on_call_sent;                 /* the engine was told agent_id is on this call */
    bool answer_asked;                 /* we told the voice thread to answer (now or after the delay) */
    int64_t preferred_agent_id;        /* a returning customer's owner or last agent (0: none, or not known yet) */
    bool lookup_pending;               /* that is being looked up */
    char blocked[160];                 /* the blacklist's reason: the call was refused ("" = not) */
    int64_t contact_id, ticket_number; /* the caller, as looked up (0: new or not yet known) */
    char contact_name[128];
    int64_t number_id; /* the phone number document the call came in on (for a scheme's destination) */
    bool period_known; /* the IVR said which period of the number's calendar the call came in */
    sb_ivr_period period;
    uint64_t join_at_ms;    /* monotonic: join the queue then at the latest (0: joined or not queued) */
    uint32_t announce_play; /* the position announcement playing (0: none) */
    uint32_t offer_play;    /* the callback offer after it (0: none) */
    char hold_prompt[SB_CALLQ_PROMPT_MAX];
    char recording[256]; /* relative to the data dir; "" = none */
    int64_t recording_ms;
    bool voicemail; /* the caller left a voicemail (recording) */
    /* voicemail: the beep before the recording (0: not played yet) */
    uint32_t vm_beep_play;
    /* the post-call rating (the queue's or the number's "rating"): bridged so
     * that the caller stays when the agent hangs up (LEG_ENDED), then asked
     * for a key 1-5 */
    bool rate;                /* bridged with sb_voice_bridge_keep_caller */
    bool agent_left;          /* the agent hung up first: the call log says so whoever ends the rest */
    uint32_t rating_play;     /* the question playing (0: none) */
    int rating_asks;          /* times the question was played */
    int rating;               /* 1..5; 0: none */
    int64_t talk_ended_at;    /* wall: when the agent hung up (0: with the call) */
    uint64_t rating_until_ms; /* monotonic: no key by then ends the call (0: not waiting) */
    struct call_rec *next;
} call_rec;

/* An agent who can be rung: their extension and whether any device of it
 * is registered now (REGISTERED seen and not every binding UNREGISTERED). */
typedef struct agent_line {
    int64_t agent_id;
    char extension[SB_VOICE_EXT_MAX];
    unsigned devices;
    bool q_known, q_registered, q_available; /* what the call queue was last told */
    bool f_known, f_available;               /* what the forwarding schemes were last told */
    uint32_t busy_mark, direct_mark;         /* refresh_agents: on a leg of some call / of a non-queue call */
} agent_line;

/* A team's queue settings the executor needs beyond the callq's own. */
typedef struct queue_opt {
    int64_t team_id;
    bool voicemail_fallback; /* max wait: voicemail, else goodbye */
    bool ringback;           /* the caller hears ringing, unanswered, until an agent answers */
    bool rating;             /* the caller rates the call when the agent hangs up first */
    char callback_digit;
    int record_calls; /* 0: as the number or [sip] say; 1 yes; -1 no */
} queue_opt;

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
    uint32_t busy_mark; /* mark_busy's last mark */
    team_member *members;
    size_t nmembers;
    uint64_t next_leg;
    uint32_t next_play; /* play ids for prompts the IVR did not ask for */
    sb_callq *callq;
    sb_callq_actions qacts;
    bool running_ivr; /* run_actions is running */
    sb_fwd *fwd;
    sb_fwd_actions facts;
    uv_timer_t fwd_timer;   /* the forwarding schemes' next deadline */
    uv_timer_t callq_timer; /* the call queue's next deadline */
    uv_timer_t avail_timer; /* refreshes agents' availability */
    queue_opt *queues;
    size_t nqueues;
    int64_t count_day; /* fewest_calls counts since the start of this (UTC) day */
    uint64_t logged, log_failures;
    sb_outbound *out; /* outbound calls through the trunk (outbound.c) */
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
    char language[8];
    char recording[256];
    int64_t recording_ms;
    int rating;            /* 1..5; 0: none (NULL) */
    int64_t talk_ended_at; /* the agent hung up before the call ended (0: NULL) */
    const char *period;    /* business_hours, after_hours, holiday; NULL: not through a number */
    int64_t callback_from; /* a call-back's deadline counts from here (the next opening after hours) */
    bool on_ticket;        /* a customer's call: it goes on their ticket */
    bool want_events;      /* an agent stream listened when the call ended */
    const char *data_dir;  /* the configuration's (never changes while serving) */
    int64_t reopen_window_ms;
    sb_call_ticket ticket;
    sb_calls *calls;
} cdr_op;

static int cdr_run(sb_tx *tx, void *arg)
{
    cdr_op *o = arg;
    int rc =
        sb_tx_insert(tx, &o->id,
                     "INSERT INTO call (direction, from_number, to_number, did, source, status, hangup_by, "
                     "hangup_cause, sip_code, ivr_path, queue_team_id, agent_id, offered_at, answered_at, "
                     "ended_at, created_at, recording, recording_ms, rating, talk_ended_at, period) "
                     "VALUES ('in', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                     "tttttttItIIiIiitIIIt", o->from, o->to, o->did ? o->to : NULL, o->source, o->status, o->hangup_by,
                     o->cause, (int64_t)o->sip_code, o->path, o->queue_team_id, o->agent_id, o->offered_at,
                     o->answered_at, o->ended_at, sb_tx_now(tx), o->recording[0] ? o->recording : NULL, o->recording_ms,
                     (int64_t)o->rating, o->talk_ended_at, o->period);
    if (rc == 0)
        rc = sb_event_log(tx, (sb_actor){"system", 0}, "call", o->id, "call.ended",
                          json_pack("{s:s,s:s,s:s,s:o,s:s,s:s,s:o}", "from", o->from, "to", o->to, "status", o->status,
                                    "hangup_by", sb_json_text(o->hangup_by), "cause", o->cause, "path", o->path,
                                    "rating", o->rating != 0 ? json_integer(o->rating) : json_null()));
    if (rc != 0 || !o->on_ticket)
        return rc;
    /* The ticket work has its own savepoint: if it fails, the call row
     * above is still committed. */
    sb_call_facts f = {.call_id = o->id,
                       .from = o->from,
                       .status = o->status,
                       .language = o->language,
                       .queue_team_id = o->queue_team_id,
                       .agent_id = o->agent_id,
                       .offered_at = o->offered_at,
                       .answered_at = o->answered_at,
                       .ended_at = o->ended_at,
                       .talk_ended_at = o->talk_ended_at,
                       .period = o->period,
                       .callback_from = o->callback_from,
                       .recording = o->recording,
                       .recording_ms = o->recording_ms,
                       .data_dir = o->data_dir,
                       .reopen_window_ms = o->reopen_window_ms,
                       .want_events = o->want_events};
    return sb_call_ticket_run(tx, &f, &o->ticket);
}

static void cdr_done(void *arg, int rc)
{
    cdr_op *o = arg;
    if (rc != 0) {
        o->calls->log_failures++;
        sb_log(SB_ERROR, "voice", "call log row lost from=%s to=%s rc=%d", o->from, o->to, rc);
        sb_call_ticket_discard(&o->ticket);
    } else {
        o->calls->logged++;
        sb_call_ticket_after(o->calls->app, &o->ticket);
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
    /* the agent who hung up first ended the conversation, whoever ends the
     * rating after it */
    o->hangup_by = sb_voice_party_name(r->agent_left ? SB_VOICE_BY_AGENT : ev->by);
    memcpy(o->language, r->language, sizeof o->language);
    memcpy(o->recording, r->recording, sizeof o->recording);
    o->recording_ms = r->recording_ms;
    o->rating = r->rating;
    o->talk_ended_at = r->talk_ended_at;
    if (r->period_known) {
        o->period = sb_ivr_period_name(r->period);
        /* after hours or on a holiday nobody can call back before the
         * number's calendar opens again: the call-back's time starts then */
        const sb_phone_number *n = sb_ivr_number(c->ivr, r->number_id);
        const sb_calendar *cal = n != NULL && n->calendar_id != 0 ? sb_ivr_calendar(c->ivr, n->calendar_id) : NULL;
        if (r->period != SB_IVR_BUSINESS_HOURS && cal != NULL)
            o->callback_from = sb_calendar_next_open(cal, ev->at_ms);
    }
    o->want_events = sb_call_ticket_want_events(c->app);
    o->data_dir = c->app->cfg.data_dir;
    o->reopen_window_ms = c->app->cfg.reopen_window_ms;
    /* "answered" is kept for a person answering (answered_at is then when
     * the agent picked up). Answered only by the IVR, the caller who hangs
     * up abandoned it; our own hang-up (the menu's end, a queue's max wait)
     * leaves it missed. */
    if (r->blocked[0] != '\0')
        o->status = "rejected"; /* blacklisted: busy, or our word and goodbye */
    else if (r->bridged_leg != 0)
        o->status = "answered";
    else if (r->voicemail)
        o->status = "voicemail";
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
        o->status = "missed"; /* the menu's end, a queue's max wait */
    /* A customer's call goes on their ticket; an agent's extension
     * calling, or a number that is not ours, does not. */
    o->on_ticket = !r->from_extension && r->did && strcmp(o->status, "rejected") != 0;
    sb_log(SB_INFO, "voice", "call=%llu ended from=%s to=%s status=%s by=%s cause=%s path=%s rating=%d",
           (unsigned long long)r->id, r->from, r->to, o->status, o->hangup_by ? o->hangup_by : "-", o->cause, r->path,
           r->rating);
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
    if (!r->period_known && a->number_id != 0) { /* the first exit: when the call came */
        r->period_known = true;
        r->period = a->period;
    }
    snprintf(r->path, sizeof r->path, "%s", a->path);
}

/* ---- recordings: DATA/recordings/YYYY-MM/<offered_at>-<call_id>[-vm].wav ---- */

/* Asks the voice thread to record the call into a new file under the data
 * dir (the month of the offer, UTC). 0, or SB_EINVAL (a path too long). */
static int start_recording(sb_calls *c, call_rec *r, const sb_voice_record_opts *o, const char *suffix)
{
    char month[40], rel[sizeof r->recording], path[SB_VOICE_PATH_MAX];
    sb_clock_format_iso(r->offered_at, month, sizeof month);
    month[7] = '\0'; /* "YYYY-MM" */
    int n = snprintf(rel, sizeof rel, "recordings/%s/%lld-%llu%s.wav", month, (long long)r->offered_at,
                     (unsigned long long)r->id, suffix);
    int m = snprintf(path, sizeof path, "%s/%s", c->app->cfg.data_dir, rel);
    int rc = n < 0 || (size_t)n >= sizeof rel || m < 0 || (size_t)m >= sizeof path
                 ? SB_EINVAL
                 : sb_voice_record(c->voice, r->id, path, o);
    if (rc != 0)
        sb_log(SB_WARN, "voice", "call=%llu cannot record rc=%d", (unsigned long long)r->id, rc);
    return rc;
}

/* Records a bridged call, the customer left and the agent right, until it
 * ends ([sip] record_calls). Sent right after the bridge command, so the
 * voice thread starts it with the relay. */
static const queue_opt *queue_opts(const sb_calls *c, int64_t team_id);

/* Whether an answered call is recorded: its queue's record_calls when set,
 * else its number's, else [sip] record_calls. */
static bool records(sb_calls *c, const call_rec *r)
{
    int says = 0;
    const queue_opt *qo = r->queue_team_id != 0 ? queue_opts(c, r->queue_team_id) : NULL;
    if (qo != NULL)
        says = qo->record_calls;
    const sb_phone_number *n = says == 0 && r->number_id != 0 ? sb_ivr_number(c->ivr, r->number_id) : NULL;
    if (n != NULL)
        says = n->record_calls;
    return says != 0 ? says > 0 : c->app->cfg.sip_record_calls != 0;
}

static void start_call_recording(sb_calls *c, call_rec *r)
{
    if (!records(c, r))
        return;
    sb_voice_record_opts o = {.mode = SB_VOICE_REC_CALL};
    (void)start_recording(c, r, &o, "");
}

/* Voicemail after its prompt: the beep, then the caller's message (mono)
 * until voicemail_max_seconds or voicemail_silence_seconds without
 * speech; RECORDING_DONE then hangs up. */
static void voicemail_next(sb_calls *c, call_rec *r)
{
    if (r->vm_beep_play == 0) {
        r->vm_beep_play = own_play_id(c);
        play(c, r, "beep", r->language, false, r->vm_beep_play);
        return;
    }
    sb_voice_record_opts o = {.mode = SB_VOICE_REC_VOICEMAIL,
                              .max_seconds = c->app->cfg.sip_voicemail_max_seconds,
                              .silence_seconds = c->app->cfg.sip_voicemail_silence_seconds};
    if (start_recording(c, r, &o, "-vm") != 0)
        sb_voice_hangup(c->voice, r->id);
}

/* The file is the call's (the call log keeps it). A voicemail counts when
 * more than a second of it is the caller's: the silence that ended it is
 * not. A voicemail cut by its length or its silence (or failing) ends the
 * call; a call recording ends with its call anyway. */
static void on_recording_done(sb_calls *c, call_rec *r, const sb_voice_event *ev)
{
    const char *rel = ev->path;
    size_t dl = strlen(c->app->cfg.data_dir);
    if (strncmp(rel, c->app->cfg.data_dir, dl) == 0 && rel[dl] == '/')
        rel += dl + 1;
    sb_log(SB_INFO, "voice", "call=%llu recording=%s ms=%lld bytes=%llu reason=%s", (unsigned long long)r->id, rel,
           (long long)ev->duration_ms, (unsigned long long)ev->bytes, sb_voice_rec_reason_name(ev->reason));
    if (ev->duration_ms > 0 && strlen(rel) < sizeof r->recording) { /* it was made to fit */
        memcpy(r->recording, rel, strlen(rel) + 1);
        r->recording_ms = ev->duration_ms;
    }
    if (r->outcome != OUT_VOICEMAIL)
        return;
    int64_t talk_ms = ev->duration_ms;
    if (ev->reason == SB_VOICE_REC_SILENCE)
        talk_ms -= (int64_t)c->app->cfg.sip_voicemail_silence_seconds * 1000;
    r->voicemail = talk_ms > 1000;
    if (ev->reason == SB_VOICE_REC_MAX_LENGTH || ev->reason == SB_VOICE_REC_SILENCE || ev->reason == SB_VOICE_REC_ERROR)
        sb_voice_hangup(c->voice, r->id);
}

/* ---- ringing agents ---- */

/* c->agents is sorted by id (load_agents). */
static agent_line *agent_by_id(sb_calls *c, int64_t agent_id)
{
    size_t lo = 0, hi = c->nagents;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (c->agents[mid].agent_id == agent_id)
            return &c->agents[mid];
        if (c->agents[mid].agent_id < agent_id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

static int agent_line_cmp(const void *a, const void *b)
{
    int64_t x = ((const agent_line *)a)->agent_id, y = ((const agent_line *)b)->agent_id;
    return (x > y) - (x < y);
}

static const queue_opt *queue_opts(const sb_calls *c, int64_t team_id)
{
    for (size_t i = 0; i < c->nqueues; i++)
        if (c->queues[i].team_id == team_id)
            return &c->queues[i];
    return NULL;
}

/* Ringing for, or talking on, some call. */
static bool agent_busy(const sb_calls *c, int64_t agent_id)
{
    for (const call_rec *r = c->calls; r != NULL; r = r->next)
        for (size_t i = 0; i < r->nlegs; i++)
            if (r->legs[i].agent_id == agent_id)
                return true;
    return sb_outbound_agent_busy(c->out, agent_id);
}

/* Ringing for, or talking on, a call that is not a queue's (the call queue
 * knows its own). */
static bool agent_on_direct_call(const sb_calls *c, int64_t agent_id)
{
    for (const call_rec *r = c->calls; r != NULL; r = r->next)
        if (r->outcome != OUT_QUEUE)
            for (size_t i = 0; i < r->nlegs; i++)
                if (r->legs[i].agent_id == agent_id)
                    return true;
    return sb_outbound_agent_busy(c->out, agent_id);
}

/* Tells the engine an agent is on (or off) a call: a call takes the whole
 * agent, so no chat is assigned to them meanwhile. */
static void tell_on_call(sb_calls *c, call_rec *r, bool on)
{
    if (r->agent_id == 0 || r->on_call_sent == on || c->app->dispatch == NULL)
        return;
    r->on_call_sent = on;
    sb_dispatch_event(c->app->dispatch, &(sb_event){.kind = SB_EV_ON_CALL, .agent_id = r->agent_id, .on_call = on});
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
        if (r->join_at_ms != 0 && (earliest == 0 || r->join_at_ms < earliest))
            earliest = r->join_at_ms;
        if (r->rating_until_ms != 0 && (earliest == 0 || r->rating_until_ms < earliest))
            earliest = r->rating_until_ms;
    }
    if (earliest == 0) {
        uv_timer_stop(&c->ring_timer);
        return;
    }
    uint64_t now = sb_clock_mono_ms();
    uv_timer_start(&c->ring_timer, on_ring_timer, earliest > now ? earliest - now : 0, 0);
}

/* Tells the agent's workspace about a call of theirs: call.ringing,
 * call.answered (the card pops), call.ended. Only their own tabs get it. */
static void tell_agent(sb_calls *c, const call_rec *r, int64_t agent_id, const char *type)
{
    if (c->app->hub == NULL || agent_id == 0)
        return;
    json_t *d = json_pack("{s:I,s:I,s:s,s:s}", "call_id", (json_int_t)r->id, "agent_id", (json_int_t)agent_id, "from",
                          r->from, "to", r->to);
    if (r->queue_team_id != 0)
        json_object_set_new(d, "queue_team_id", json_integer(r->queue_team_id));
    if (r->contact_id != 0) {
        json_object_set_new(d, "contact_id", json_integer(r->contact_id));
        json_object_set_new(d, "contact_name", json_string(r->contact_name));
        if (r->ticket_number != 0)
            json_object_set_new(d, "ticket_number", json_integer(r->ticket_number));
    }
    sb_stream_send_agent(c->app->hub, agent_id, type, d);
}

/* Rings one agent's devices for the call; false if they cannot be rung. */
/* Rings one agent's devices for the call as leg `leg_id` (0: a new id);
 * false if they cannot be rung. */
static bool ring_one_as(sb_calls *c, call_rec *r, int64_t agent_id, unsigned timeout_s, uint64_t leg_id)
{
    const agent_line *ag = agent_by_id(c, agent_id);
    if (ag == NULL || ag->devices == 0 || r->nlegs == MAX_LEGS || agent_busy(c, agent_id))
        return false;
    if (leg_id == 0)
        leg_id = ++c->next_leg;
    if (sb_voice_ring(c->voice, r->id, leg_id, ag->extension, timeout_s) != 0)
        return false;
    sb_log(SB_INFO, "voice", "call=%llu ringing agent=%lld ext=%s leg=%llu", (unsigned long long)r->id,
           (long long)agent_id, ag->extension, (unsigned long long)leg_id);
    r->legs[r->nlegs++] = (call_leg){leg_id, agent_id};
    tell_agent(c, r, agent_id, "call.ringing");
    return true;
}

static bool ring_one(sb_calls *c, call_rec *r, int64_t agent_id, unsigned timeout_s)
{
    return ring_one_as(c, r, agent_id, timeout_s, 0);
}

/* A direct call (an extension, an IVR "agent" option) rings its one agent;
 * busy or not registered: again in a moment while the caller waits. */
static void ring_direct(sb_calls *c, call_rec *r)
{
    if (r->bridged_leg != 0)
        return;
    ring_one(c, r, r->agent_id, c->app->cfg.sip_ring_timeout_seconds);
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

static call_leg *leg_of_agent(call_rec *r, int64_t agent_id)
{
    for (size_t i = 0; i < r->nlegs; i++)
        if (r->legs[i].agent_id == agent_id)
            return &r->legs[i];
    return NULL;
}

/* Whether the caller is asked to rate the call when the agent of leg `won`
 * hangs up first: the call's queue asks for it, or the number it came in
 * on does (either is enough), whichever way an agent got it (a queue, an
 * IVR option or extension, the operator, a forwarding scheme). A leg
 * outside (a scheme's number or SIP address) is no agent of ours: never.
 * The settings when the agent answers count. */
static bool rates(sb_calls *c, const call_rec *r, const call_leg *won)
{
    if (won->agent_id == 0)
        return false;
    const queue_opt *qo = r->outcome == OUT_QUEUE ? queue_opts(c, r->queue_team_id) : NULL;
    if (qo != NULL && qo->rating)
        return true;
    const sb_phone_number *n = r->number_id != 0 ? sb_ivr_number(c->ivr, r->number_id) : NULL;
    return n != NULL && n->rating;
}

/* Connects the caller to the answered leg `won` (the others are cancelled). */
static void bridge_leg(sb_calls *c, call_rec *r, call_leg won)
{
    r->rate = rates(c, r, &won);
    for (size_t i = 0; i < r->nlegs; i++) {
        if (r->legs[i].id != won.id) {
            sb_voice_cancel_leg(c->voice, r->id, r->legs[i].id);
            tell_agent(c, r, r->legs[i].agent_id, "call.ended");
        }
    }
    r->legs[0] = won;
    r->nlegs = 1;
    r->bridged_leg = won.id;
    r->agent_id = won.agent_id;
    r->retry_at_ms = r->give_up_at_ms = 0;
    r->announce_play = r->offer_play = 0;
    if (r->rate)
        sb_voice_bridge_keep_caller(c->voice, r->id, won.id);
    else
        sb_voice_bridge(c->voice, r->id, won.id);
    start_call_recording(c, r);
    tell_on_call(c, r, true);
    tell_agent(c, r, won.agent_id, "call.answered");
    sb_log(SB_INFO, "voice", "call=%llu answered by agent=%lld leg=%llu", (unsigned long long)r->id,
           (long long)won.agent_id, (unsigned long long)won.id);
    arm_ring_timer(c);
}

/* ---- the call queue (src/engine/callq.c decides, we execute) ---- */

static int callq_input(sb_calls *c, sb_callq_input in)
{
    int rc = sb_callq_handle(c->callq, &in, (int64_t)sb_clock_mono_ms(), &c->qacts);
    if (rc != 0 && rc != SB_ENOTFOUND)
        sb_log(SB_WARN, "voice", "call=%llu queue refused input %d rc=%d", (unsigned long long)in.call_id, (int)in.kind,
               rc);
    if (rc == SB_ENOTFOUND && in.kind == SB_CALLQ_IN_LEG_ANSWERED) {
        /* the answer crossed a cancel: that phone is hung up */
        call_rec *r = rec_find(c, in.call_id, NULL);
        call_leg *leg = r != NULL ? leg_of_agent(r, in.agent_id) : NULL;
        if (leg != NULL) {
            sb_voice_cancel_leg(c->voice, r->id, leg->id);
            drop_leg(r, leg->id);
        }
    }
    return rc;
}

static void on_callq_timer(uv_timer_t *t);

static void arm_callq_timer(sb_calls *c)
{
    if (!c->timer_open)
        return;
    int64_t due = sb_callq_next_deadline(c->callq);
    if (due == INT64_MAX) {
        uv_timer_stop(&c->callq_timer);
        return;
    }
    int64_t now = (int64_t)sb_clock_mono_ms();
    uv_timer_start(&c->callq_timer, on_callq_timer, due > now ? (uint64_t)(due - now) : 0, 0);
}

static void start_voicemail(sb_calls *c, call_rec *r, int64_t team_id);

static void position_prompt(int position, char *out, size_t cap)
{
    if (position >= 1 && position <= 9)
        snprintf(out, cap, "position_%d", position);
    else
        snprintf(out, cap, "position_many");
}

static void callback_prompt(char digit, char *out, size_t cap)
{
    if (digit == '*')
        snprintf(out, cap, "callback_offer_star");
    else if (digit == '#')
        snprintf(out, cap, "callback_offer_hash");
    else
        snprintf(out, cap, "callback_offer_%c", digit);
}

static void exec_callq_action(sb_calls *c, const sb_callq_action *a)
{
    call_rec *r = rec_find(c, a->call_id, NULL);
    if (r == NULL)
        return; /* the call has ended: its hangup told the queue */
    switch (a->kind) {
    case SB_CALLQ_HOLD:
        snprintf(r->hold_prompt, sizeof r->hold_prompt, "%s", a->prompt[0] ? a->prompt : "wait");
        if (r->announce_play == 0 && r->offer_play == 0)
            play(c, r, r->hold_prompt, r->language, true, own_play_id(c));
        break;
    case SB_CALLQ_RING:
        if (!ring_one(c, r, a->agent_id, (unsigned)a->timeout_seconds))
            callq_input(c, (sb_callq_input){.kind = SB_CALLQ_IN_LEG_FAILED,
                                            .call_id = r->id,
                                            .agent_id = a->agent_id,
                                            .fail_reason = SB_CALLQ_FAIL_ERROR});
        break;
    case SB_CALLQ_CANCEL_RING: {
        call_leg *leg = leg_of_agent(r, a->agent_id);
        if (leg != NULL && leg->id != r->bridged_leg) {
            sb_voice_cancel_leg(c->voice, r->id, leg->id);
            tell_agent(c, r, a->agent_id, "call.ended");
            drop_leg(r, leg->id);
        }
        break;
    }
    case SB_CALLQ_BRIDGE: {
        call_leg *leg = leg_of_agent(r, a->agent_id);
        if (leg == NULL) {
            sb_log(SB_WARN, "voice", "call=%llu no leg to bridge for agent=%lld", (unsigned long long)r->id,
                   (long long)a->agent_id);
            break;
        }
        r->q_talking = true;
        bridge_leg(c, r, *leg);
        break;
    }
    case SB_CALLQ_ANNOUNCE: {
        char prompt[SB_CALLQ_PROMPT_MAX];
        position_prompt(a->position, prompt, sizeof prompt);
        r->offer_play = 0;
        r->announce_play = own_play_id(c);
        play(c, r, prompt, r->language, false, r->announce_play);
        break;
    }
    case SB_CALLQ_LEAVE:
        r->in_queue = false;
        sb_log(SB_INFO, "voice", "call=%llu left queue=%lld reason=%s waited_ms=%lld", (unsigned long long)r->id,
               (long long)a->team_id, sb_callq_reason_name(a->reason), (long long)a->waited_ms);
        switch (a->reason) {
        case SB_CALLQ_R_TIMEOUT: {
            const queue_opt *qo = queue_opts(c, a->team_id);
            if (qo == NULL || qo->voicemail_fallback) {
                start_voicemail(c, r, a->team_id);
            } else if (!r->answer_asked) {
                sb_voice_hangup(c->voice, r->id); /* still ringing (ringback): nothing to say */
            } else {
                r->outcome = OUT_GOODBYE;
                play(c, r, "goodbye", r->language, false, own_play_id(c));
            }
            break;
        }
        case SB_CALLQ_R_CALLBACK:
            r->callback_requested = true;
            r->outcome = OUT_GOODBYE;
            play(c, r, "callback_ok", r->language, false, own_play_id(c));
            break;
        case SB_CALLQ_R_REMOVED: sb_voice_hangup(c->voice, r->id); break;
        default: break; /* answered: bridged; abandoned: the caller is gone */
        }
        break;
    }
}

/* Executes what the call queue decided, and what that causes, then re-arms
 * its timer. */
static void callq_run(sb_calls *c)
{
    for (int round = 0; round < 64 && c->qacts.n > 0; round++) {
        sb_callq_actions acts = c->qacts;
        c->qacts = (sb_callq_actions){0};
        for (size_t i = 0; i < acts.n; i++)
            exec_callq_action(c, &acts.v[i]);
        sb_callq_actions_free(&acts);
    }
    arm_callq_timer(c);
}

static void on_callq_timer(uv_timer_t *t)
{
    sb_calls *c = t->data;
    sb_callq_tick(c->callq, (int64_t)sb_clock_mono_ms(), &c->qacts);
    callq_run(c);
}

/* ---- forwarding schemes (src/engine/fwd.c decides, we execute) ---- */

static void on_fwd_timer(uv_timer_t *t);

static void arm_fwd_timer(sb_calls *c)
{
    if (!c->timer_open)
        return;
    int64_t due = sb_fwd_next_deadline(c->fwd);
    if (due == INT64_MAX) {
        uv_timer_stop(&c->fwd_timer);
        return;
    }
    int64_t now = (int64_t)sb_clock_mono_ms();
    uv_timer_start(&c->fwd_timer, on_fwd_timer, due > now ? (uint64_t)(due - now) : 0, 0);
}

static int fwd_input(sb_calls *c, sb_fwd_input in)
{
    int rc = sb_fwd_handle(c->fwd, &in, (int64_t)sb_clock_mono_ms(), &c->facts);
    if (rc == SB_ENOTFOUND && in.kind == SB_FWD_IN_LEG_ANSWERED) {
        call_rec *r = rec_find(c, in.call_id, NULL); /* the answer crossed our cancel */
        call_leg *leg = r != NULL ? find_leg(r, FWD_LEG_BIT | in.leg_id) : NULL;
        if (leg != NULL) {
            sb_voice_cancel_leg(c->voice, r->id, leg->id);
            drop_leg(r, leg->id);
        }
    } else if (rc != 0 && rc != SB_ENOTFOUND) {
        sb_log(SB_WARN, "voice", "call=%llu scheme refused input %d rc=%d", (unsigned long long)in.call_id,
               (int)in.kind, rc);
    }
    return rc;
}

static void run_actions(sb_calls *c);

/* A scheme's number or SIP address: a leg rung outside, with no agent. A
 * number goes to the [trunk] host (E.164 "+7...": prefix_numbers and the
 * digits; any other form as written) with its credentials; a SIP address
 * is INVITEd as it is. The callee sees the caller's number, or with
 * [trunk] forward_caller_id = number the one the caller dialled. */
static bool ring_outside(sb_calls *c, call_rec *r, const sb_fwd_target *t, unsigned timeout_s, uint64_t leg_id)
{
    const sb_config *cfg = &c->app->cfg;
    bool via_trunk = t->kind == SB_FWD_TARGET_NUMBER;
    char uri[SB_VOICE_ADDR_MAX], dial[SB_VOICE_EXT_MAX];
    if (r->nlegs == MAX_LEGS)
        return false;
    if (via_trunk) {
        if (cfg->trunk_host[0] == '\0') /* not offered: the scheme sees no trunk */
            return false;
        if (t->address[0] == '+' ? sb_outbound_dial_string(cfg->trunk_prefix, t->address, dial) != 0
                                 : snprintf(dial, sizeof dial, "%s", t->address) >= (int)sizeof dial)
            return false;
        if (snprintf(uri, sizeof uri, "sip:%s@%s%s", dial, cfg->trunk_host, cfg->trunk_tcp ? ";transport=tcp" : "") >=
            (int)sizeof uri)
            return false;
    } else {
        snprintf(uri, sizeof uri, "%s", t->address);
    }
    const char *caller_id = cfg->trunk_forward_number && r->to[0] != '\0' ? r->to : r->from;
    if (sb_voice_ring_out(c->voice, r->id, leg_id, uri, caller_id, via_trunk, timeout_s) != 0)
        return false;
    sb_log(SB_INFO, "voice", "call=%llu ringing outside (%s) leg=%llu", (unsigned long long)r->id,
           via_trunk ? "a number through the trunk" : "a SIP address", (unsigned long long)leg_id);
    r->legs[r->nlegs++] = (call_leg){leg_id, 0};
    return true;
}

static void exec_fwd_action(sb_calls *c, const sb_fwd_action *a)
{
    call_rec *r = rec_find(c, a->call_id, NULL);
    if (r == NULL)
        return;
    switch (a->kind) {
    case SB_FWD_RING:
        if (a->target.kind == SB_FWD_TARGET_AGENT
                ? !ring_one_as(c, r, a->target.id, (unsigned)a->timeout_seconds, FWD_LEG_BIT | a->leg_id)
                : !ring_outside(c, r, &a->target, (unsigned)a->timeout_seconds, FWD_LEG_BIT | a->leg_id))
            fwd_input(c, (sb_fwd_input){.kind = SB_FWD_IN_LEG_FAILED,
                                        .call_id = r->id,
                                        .leg_id = a->leg_id,
                                        .fail = SB_FWD_FAIL_UNREACHABLE});
        break;
    case SB_FWD_CANCEL: {
        call_leg *leg = find_leg(r, FWD_LEG_BIT | a->leg_id);
        if (leg != NULL && leg->id != r->bridged_leg) {
            sb_voice_cancel_leg(c->voice, r->id, leg->id);
            tell_agent(c, r, leg->agent_id, "call.ended");
            drop_leg(r, leg->id);
        }
        break;
    }
    case SB_FWD_BRIDGE: {
        call_leg *leg = find_leg(r, FWD_LEG_BIT | a->leg_id);
        if (leg != NULL)
            bridge_leg(c, r, *leg);
        break;
    }
    case SB_FWD_DESTINATION: {
        sb_log(SB_INFO, "voice", "call=%llu scheme=%lld over (%s) after %lld ms", (unsigned long long)r->id,
               (long long)a->scheme_id, sb_fwd_reason_name(a->reason), (long long)a->elapsed_ms);
        r->outcome = OUT_NONE;
        int rc = a->reason == SB_FWD_R_NO_SCHEME
                     ? SB_EINVAL
                     : sb_ivr_enter(c->ivr, r->id, r->number_id, &a->dest, r->answer_asked,
                                    a->reason == SB_FWD_R_BACKUP ? "backup" : "final", sb_clock_wall_ms(), &c->acts);
        if (rc != 0) {
            r->outcome = OUT_HANGUP;
            sb_voice_hangup(c->voice, r->id);
            break;
        }
        r->in_ivr = true;
        run_actions(c);
        break;
    }
    case SB_FWD_ABANDONED: break;
    }
}

static void fwd_run(sb_calls *c)
{
    for (int round = 0; round < 64 && c->facts.n > 0; round++) {
        sb_fwd_actions acts = c->facts;
        c->facts = (sb_fwd_actions){0};
        for (size_t i = 0; i < acts.n; i++)
            exec_fwd_action(c, &acts.v[i]);
        sb_fwd_actions_free(&acts);
    }
    arm_fwd_timer(c);
}

static void on_fwd_timer(uv_timer_t *t)
{
    sb_calls *c = t->data;
    sb_fwd_tick(c->fwd, (int64_t)sb_clock_mono_ms(), &c->facts);
    fwd_run(c);
}

static sb_fwd_fail fwd_fail(int sip_code)
{
    if (sip_code == 408 || sip_code == 480)
        return SB_FWD_FAIL_NO_ANSWER;
    if (sip_code == 486 || sip_code == 600 || sip_code == 603)
        return SB_FWD_FAIL_BUSY;
    return SB_FWD_FAIL_UNREACHABLE;
}

/* Whether an agent can take a queue call, from the model the chats use:
 * online, not absent, room left in their capacity, and not ringing or
 * talking on a direct call. */
/* Whether the agent may take a call as far as the workspace says: online,
 * not absent, room left in their capacity (a call they are on counts). */
static bool agent_open_for_calls(const sb_calls *c, const agent_line *ag, int64_t now)
{
    const sb_engine *eng = c->app->dispatch != NULL ? sb_dispatch_engine(c->app->dispatch) : NULL;
    sb_agent_view v;
    if (eng == NULL || sb_engine_agent(eng, ag->agent_id, &v) != 0)
        return false;
    if (v.presence != SB_PRESENCE_ONLINE || v.absent_until > now)
        return false;
    return v.load < v.capacity - 1e-9 || v.on_call;
}

static bool agent_available(const sb_calls *c, const agent_line *ag, int64_t now)
{
    return agent_open_for_calls(c, ag, now) && !agent_on_direct_call(c, ag->agent_id);
}

/* Marks, in one pass over the calls, the agents on some leg and those on
 * a leg of a call that is not a queue's: what agent_busy and
 * agent_on_direct_call would say for each, without a pass per agent (at
 * 1,000 calls and 1,000 agents that was a million steps a refresh). */
static uint32_t mark_busy(sb_calls *c)
{
    uint32_t mark = ++c->busy_mark;
    for (const call_rec *r = c->calls; r != NULL; r = r->next) {
        for (size_t i = 0; i < r->nlegs; i++) {
            agent_line *ag = r->legs[i].agent_id != 0 ? agent_by_id(c, r->legs[i].agent_id) : NULL;
            if (ag == NULL)
                continue;
            ag->busy_mark = mark;
            if (r->outcome != OUT_QUEUE)
                ag->direct_mark = mark;
        }
    }
    return mark;
}

/* Tells the call queue whose phones can ring now (what changed). */
static void refresh_agents(sb_calls *c)
{
    int64_t now = sb_clock_wall_ms();
    uint32_t mark = mark_busy(c);
    for (size_t i = 0; i < c->nagents; i++) {
        agent_line *ag = &c->agents[i];
        bool out_busy = sb_outbound_agent_busy(c->out, ag->agent_id);
        bool reg = ag->devices > 0, avail = agent_open_for_calls(c, ag, now) && ag->direct_mark != mark && !out_busy;
        /* a scheme rings only an agent free for a call: registered, available,
         * not ringing or talking anywhere, not in a queue's wrap-up */
        sb_callq_agent_info qi;
        bool idle = sb_callq_agent_get(c->callq, ag->agent_id, &qi) != 0 || qi.status == SB_CALLQ_AGENT_IDLE;
        bool free_for_fwd = reg && avail && idle && ag->busy_mark != mark && !out_busy;
        if (!ag->f_known || ag->f_available != free_for_fwd) {
            ag->f_known = true;
            ag->f_available = free_for_fwd;
            sb_fwd_set_agent(c->fwd, ag->agent_id, free_for_fwd);
        }
        if (ag->q_known && ag->q_registered == reg && ag->q_available == avail)
            continue;
        ag->q_known = true;
        ag->q_registered = reg;
        ag->q_available = avail;
        callq_input(
            c, (sb_callq_input){
                   .kind = SB_CALLQ_IN_AGENT_STATE, .agent_id = ag->agent_id, .registered = reg, .available = avail});
    }
}

static void on_avail_timer(uv_timer_t *t)
{
    sb_calls *c = t->data;
    int64_t day = sb_clock_wall_ms() / 86400000;
    if (day != c->count_day) {
        c->count_day = day;
        sb_callq_reset_counts(c->callq);
    }
    refresh_agents(c);
    callq_run(c);
}

static void join_queue(sb_calls *c, call_rec *r)
{
    refresh_agents(c);
    const queue_opt *qo = queue_opts(c, r->queue_team_id);
    if (!r->answer_asked && (qo == NULL || !qo->ringback)) {
        r->answer_asked = true; /* the caller hears the hold prompt and their place in line */
        sb_voice_answer(c->voice, r->id);
    }
    r->in_queue = true;
    snprintf(r->hold_prompt, sizeof r->hold_prompt, "wait");
    int rc = callq_input(c, (sb_callq_input){.kind = SB_CALLQ_IN_CALL_JOINED,
                                             .call_id = r->id,
                                             .team_id = r->queue_team_id,
                                             .preferred_agent_id = r->preferred_agent_id});
    if (rc != 0) {
        /* no such queue (the team is gone, or settings not loaded yet):
         * hold, then the voicemail at the installation's max wait */
        r->in_queue = false;
        play(c, r, "wait", r->language, true, own_play_id(c));
        r->give_up_at_ms = sb_clock_mono_ms() + (uint64_t)c->app->cfg.sip_queue_max_wait_seconds * 1000;
        arm_ring_timer(c);
    }
    callq_run(c);
}

static void on_ring_timer(uv_timer_t *t)
{
    sb_calls *c = t->data;
    uint64_t now = sb_clock_mono_ms();
    for (call_rec *r = c->calls; r != NULL; r = r->next) {
        if (r->join_at_ms != 0 && r->join_at_ms <= now) {
            r->join_at_ms = 0; /* the caller's look-up is slow: join without it */
            join_queue(c, r);
        }
        if (r->rating_until_ms != 0 && r->rating_until_ms <= now) {
            r->rating_until_ms = 0; /* no key: no rating */
            sb_log(SB_INFO, "voice", "call=%llu no rating given", (unsigned long long)r->id);
            sb_voice_hangup(c->voice, r->id);
        }
        if (r->bridged_leg != 0)
            continue;
        if (r->give_up_at_ms != 0 && r->give_up_at_ms <= now) {
            /* Nobody answered within queue_max_wait: the team's voicemail */
            sb_log(SB_INFO, "voice", "call=%llu nobody answered in %us", (unsigned long long)r->id,
                   c->app->cfg.sip_queue_max_wait_seconds);
            for (size_t i = 0; i < r->nlegs; i++)
                sb_voice_cancel_leg(c->voice, r->id, r->legs[i].id);
            r->nlegs = 0;
            r->give_up_at_ms = r->retry_at_ms = 0;
            start_voicemail(c, r, r->queue_team_id);
        } else if (r->retry_at_ms != 0 && r->retry_at_ms <= now) {
            r->retry_at_ms = 0;
            ring_direct(c, r);
        }
    }
    arm_ring_timer(c);
}

static sb_callq_fail_reason fail_reason(int sip_code)
{
    if (sip_code == 408 || sip_code == 480)
        return SB_CALLQ_FAIL_NO_ANSWER;
    if (sip_code == 486 || sip_code == 600 || sip_code == 603)
        return SB_CALLQ_FAIL_BUSY;
    return SB_CALLQ_FAIL_ERROR;
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
    case SB_VOICE_LEG_FAILED: {
        int64_t agent_id = leg->agent_id;
        if (r->outcome == OUT_SCHEME) {
            drop_leg(r, ev->leg_id);
            tell_agent(c, r, agent_id, "call.ended");
            fwd_input(c, (sb_fwd_input){.kind = SB_FWD_IN_LEG_FAILED,
                                        .call_id = r->id,
                                        .leg_id = (uint32_t)(ev->leg_id & ~FWD_LEG_BIT),
                                        .fail = fwd_fail(ev->sip_code)});
            fwd_run(c);
            break;
        }
        sb_log(SB_INFO, "voice", "call=%llu leg=%llu agent=%lld failed code=%d", (unsigned long long)r->id,
               (unsigned long long)ev->leg_id, (long long)agent_id, ev->sip_code);
        drop_leg(r, ev->leg_id);
        tell_agent(c, r, agent_id, "call.ended");
        if (r->outcome == OUT_QUEUE && r->in_queue) {
            callq_input(c, (sb_callq_input){.kind = SB_CALLQ_IN_LEG_FAILED,
                                            .call_id = r->id,
                                            .agent_id = agent_id,
                                            .fail_reason = fail_reason(ev->sip_code)});
            callq_run(c);
        } else if (r->nlegs == 0 && r->bridged_leg == 0 && r->outcome == OUT_AGENT) {
            r->retry_at_ms = sb_clock_mono_ms() + RING_RETRY_MS;
            arm_ring_timer(c);
        }
        break;
    }
    case SB_VOICE_LEG_ANSWERED:
        if (r->bridged_leg != 0) { /* another agent was first */
            sb_voice_cancel_leg(c->voice, r->id, ev->leg_id);
            drop_leg(r, ev->leg_id);
            break;
        }
        if (r->outcome == OUT_SCHEME) {
            int64_t before = r->answered_at;
            r->answered_at = ev->at_ms;
            fwd_input(c, (sb_fwd_input){.kind = SB_FWD_IN_LEG_ANSWERED,
                                        .call_id = r->id,
                                        .leg_id = (uint32_t)(ev->leg_id & ~FWD_LEG_BIT)});
            fwd_run(c);
            if (r->bridged_leg == 0)
                r->answered_at = before;
        } else if (r->outcome == OUT_QUEUE) {
            if (!r->in_queue) { /* left meanwhile (max wait, callback) */
                sb_voice_cancel_leg(c->voice, r->id, ev->leg_id);
                drop_leg(r, ev->leg_id);
                break;
            }
            /* answered_at becomes the agent's pick-up if the queue bridges */
            int64_t ivr_answer = r->answered_at;
            r->answered_at = ev->at_ms;
            callq_input(
                c, (sb_callq_input){.kind = SB_CALLQ_IN_LEG_ANSWERED, .call_id = r->id, .agent_id = leg->agent_id});
            callq_run(c);
            if (r->bridged_leg == 0)
                r->answered_at = ivr_answer;
        } else {
            r->answered_at = ev->at_ms;
            bridge_leg(c, r, *leg);
        }
        break;
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
    refresh_agents(c);
    callq_run(c);
}

/* The team's voicemail: the prompt, then (PLAY_DONE) the call ends. Used by
 * the IVR and by a queue's max wait. */
static void start_voicemail(sb_calls *c, call_rec *r, int64_t team_id)
{
    r->outcome = OUT_VOICEMAIL;
    r->queue_team_id = team_id;
    if (!r->answer_asked) { /* straight from ringing (a number's entry, a ringback queue) */
        r->answer_asked = true;
        sb_voice_answer(c->voice, r->id);
    }
    play(c, r, "voicemail", r->language, false, own_play_id(c));
}

/* After the position announcement: the callback offer when the queue has a
 * key for it, else back to the hold prompt. */
static void resume_hold(sb_calls *c, call_rec *r)
{
    r->announce_play = r->offer_play = 0;
    play(c, r, r->hold_prompt[0] ? r->hold_prompt : "wait", r->language, true, own_play_id(c));
}

static void after_announcement(sb_calls *c, call_rec *r)
{
    const queue_opt *qo = queue_opts(c, r->queue_team_id);
    r->announce_play = 0;
    if (qo == NULL || qo->callback_digit == 0) {
        resume_hold(c, r);
        return;
    }
    char prompt[SB_CALLQ_PROMPT_MAX];
    callback_prompt(qo->callback_digit, prompt, sizeof prompt);
    r->offer_play = own_play_id(c);
    play(c, r, prompt, r->language, false, r->offer_play);
}

/* ---- the post-call rating (a queue's or a number's "rating": true) ---- */

/* The question ("please rate the call from 1 to 5"). A key counts from
 * its first word on; the wait for one starts when it ends (PLAY_DONE). */
static void rating_ask(sb_calls *c, call_rec *r)
{
    r->rating_asks++;
    r->rating_until_ms = 0;
    r->rating_play = own_play_id(c);
    play(c, r, "rating_ask", r->language, false, r->rating_play);
    arm_ring_timer(c);
}

/* The agent of a rated call hung up first (LEG_ENDED): they are free from
 * now on (their wrap-up starts, chats may come), and the caller, still on
 * the line, is asked to rate the call. A LEG_ENDED we did not ask for
 * leaves the caller with nobody: we hang up. */
static void on_agent_left(sb_calls *c, call_rec *r, const sb_voice_event *ev)
{
    if (!r->rate || r->agent_left || ev->leg_id != r->bridged_leg) {
        sb_voice_hangup(c->voice, r->id);
        return;
    }
    r->agent_left = true;
    r->talk_ended_at = ev->at_ms;
    sb_log(SB_INFO, "voice", "call=%llu agent=%lld hung up: asking the caller for a rating", (unsigned long long)r->id,
           (long long)r->agent_id);
    for (size_t i = 0; i < r->nlegs; i++)
        tell_agent(c, r, r->legs[i].agent_id, "call.ended");
    r->nlegs = 0;
    if (r->q_talking) /* the agent's wrap-up starts */
        callq_input(c, (sb_callq_input){.kind = SB_CALLQ_IN_CALL_ENDED, .call_id = r->id, .agent_id = r->agent_id});
    r->q_talking = false;
    tell_on_call(c, r, false);
    callq_run(c);
    r->outcome = OUT_RATING;
    rating_ask(c, r);
}

/* 1-5 is the rating: thanks, then we hang up. Another key asks again
 * once; after that it ends the call without a rating. */
static void rating_key(sb_calls *c, call_rec *r, char digit)
{
    r->rating_until_ms = 0;
    if (digit >= '1' && digit <= '5') {
        r->rating = digit - '0';
        r->rating_play = 0;
        r->outcome = OUT_GOODBYE;
        sb_log(SB_INFO, "voice", "call=%llu rated %d", (unsigned long long)r->id, r->rating);
        play(c, r, "rating_thanks", r->language, false, own_play_id(c));
    } else if (r->rating_asks < RATING_ASKS) {
        rating_ask(c, r);
    } else {
        sb_log(SB_INFO, "voice", "call=%llu no rating given (key %c)", (unsigned long long)r->id, digit);
        sb_voice_hangup(c->voice, r->id);
    }
    arm_ring_timer(c);
}

/* The question ended: the caller has RATING_WAIT_MS for a key. A question
 * that could not be played ends the call at once. */
static void rating_asked(sb_calls *c, call_rec *r, const sb_voice_event *ev)
{
    if (ev->cause == SB_VOICE_CAUSE_ERROR) {
        sb_voice_hangup(c->voice, r->id);
        return;
    }
    r->rating_until_ms = sb_clock_mono_ms() + RATING_WAIT_MS;
    arm_ring_timer(c);
}

/* Executes what the IVR decided, then re-arms its timer. */
static void run_actions(sb_calls *c)
{
    /* Re-entrant: a scheme's destination brings a call back into the IVR
     * while we run its actions; the new ones join this list, and this loop
     * runs them (on a copy: the list may grow under us). */
    if (c->running_ivr)
        return;
    c->running_ivr = true;
    for (size_t i = 0; i < c->acts.n; i++) {
        sb_ivr_action act = c->acts.v[i];
        const sb_ivr_action *a = &act;
        call_rec *r = rec_find(c, a->call_id, NULL);
        if (r == NULL)
            continue;
        if (a->language[0] != '\0') {
            _Static_assert(sizeof r->language == sizeof a->language, "language fields differ");
            memcpy(r->language, a->language, sizeof r->language);
            r->language[sizeof r->language - 1] = '\0';
        }
        if (a->number_id != 0)
            r->number_id = a->number_id;
        switch (a->kind) {
        case SB_IVR_ANSWER:
            r->answer_asked = true;
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
            if (a->kind == SB_IVR_QUEUE && r->lookup_pending) {
                /* who the caller is comes within milliseconds: wait for it (at most 1 s) */
                r->join_at_ms = sb_clock_mono_ms() + 1000;
                arm_ring_timer(c);
            } else if (a->kind == SB_IVR_QUEUE) {
                join_queue(c, r);
            } else {
                play(c, r, "wait", r->language, true, own_play_id(c));
                r->give_up_at_ms = sb_clock_mono_ms() + (uint64_t)c->app->cfg.sip_queue_max_wait_seconds * 1000;
                ring_direct(c, r);
            }
            break;
        case SB_IVR_VOICEMAIL:
            left_ivr(r, a, OUT_VOICEMAIL);
            if (r->answered_at == 0 && r->answer_at_ms == 0) /* a number straight to voicemail */
                sb_voice_answer(c->voice, r->id);
            start_voicemail(c, r, a->id);
            break;
        case SB_IVR_HANGUP:
            if (a->scheme_id != 0) { /* the number forwards by a scheme */
                left_ivr(r, a, OUT_SCHEME);
                refresh_agents(c);
                if (fwd_input(
                        c, (sb_fwd_input){.kind = SB_FWD_IN_START, .call_id = r->id, .scheme_id = a->scheme_id}) != 0) {
                    r->outcome = OUT_HANGUP;
                    sb_voice_hangup(c->voice, r->id);
                }
                fwd_run(c);
                break;
            }
            left_ivr(r, a, OUT_HANGUP);
            sb_voice_hangup(c->voice, r->id);
            break;
        case SB_IVR_ABANDONED: left_ivr(r, a, OUT_NONE); break;
        }
    }
    sb_ivr_actions_reset(&c->acts);
    c->running_ivr = false;
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

/* ---- the returning customer's agent ---- */

/* Looks the caller up while the IVR talks to them: the contact with this
 * phone number, its owner, else the agent of its latest ticket. A queue
 * rings that agent first (preferred_seconds) when they can take the call. */
typedef struct sticky_op {
    sb_calls *calls;
    uint64_t call_id;
    char phone[40];
    int64_t agent_id, contact_id, ticket_number;
    char name[128];
} sticky_op;

static int sticky_run(sb_tx *tx, void *arg)
{
    sticky_op *o = arg;
    sb_stmt *s = sb_tx_query(tx,
                             "SELECT c.id, COALESCE(c.name, ''), COALESCE(c.owner_id, (SELECT t.assignee_id "
                             "FROM ticket t WHERE t.contact_id = c.id AND t.assignee_id IS NOT NULL "
                             "ORDER BY t.id DESC LIMIT 1), 0), "
                             "COALESCE((SELECT t.number FROM ticket t WHERE t.contact_id = c.id ORDER BY t.id DESC "
                             "LIMIT 1), 0) FROM contact_identity i JOIN contact c ON c.id = i.contact_id "
                             "WHERE i.kind = 'phone' AND i.scope = 0 AND i.address = ? AND c.merged_into IS NULL",
                             "t", o->phone);
    if (s == NULL)
        return SB_EIO;
    int rc = sb_stmt_step(s);
    if (rc == 1) {
        o->contact_id = sb_stmt_int(s, 0);
        snprintf(o->name, sizeof o->name, "%s", sb_stmt_text(s, 1));
        o->agent_id = sb_stmt_int(s, 2);
        o->ticket_number = sb_stmt_int(s, 3);
    }
    sb_stmt_end(s);
    return rc < 0 ? rc : 0;
}

static void sticky_done(void *arg, int rc)
{
    sticky_op *o = arg;
    call_rec *r = o->calls->voice != NULL ? rec_find(o->calls, o->call_id, NULL) : NULL;
    if (r != NULL) {
        r->lookup_pending = false;
        if (rc == 0 && o->contact_id > 0) {
            r->contact_id = o->contact_id;
            r->ticket_number = o->ticket_number;
            snprintf(r->contact_name, sizeof r->contact_name, "%s", o->name);
        }
        if (rc == 0 && o->agent_id > 0) {
            r->preferred_agent_id = o->agent_id;
            sb_log(SB_DEBUG, "voice", "call=%llu returning customer, preferred agent=%lld", (unsigned long long)r->id,
                   (long long)o->agent_id);
        }
        if (r->join_at_ms != 0) {
            r->join_at_ms = 0;
            join_queue(o->calls, r);
        }
    }
    free(o);
}

static void look_up_caller(sb_calls *c, call_rec *r)
{
    char phone[40];
    if (r->from_extension || sb_phone_normalize(r->from, "7", phone, sizeof phone) != 0)
        return;
    sticky_op *o = sb_xcalloc(1, sizeof *o);
    o->calls = c;
    o->call_id = r->id;
    memcpy(o->phone, phone, sizeof o->phone);
    r->lookup_pending = true;
    sb_store_read(c->app->store, sticky_run, sticky_done, o);
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
    const char *why = r->from_extension ? NULL : sb_dispatch_blocked(c->app->dispatch, 0, r->from, NULL, NULL);
    if (why != NULL) {
        /* a blacklisted caller: busy, or a word and goodbye; logged, never routed */
        snprintf(r->blocked, sizeof r->blocked, "%s", why);
        r->in_ivr = false;
        sb_log(SB_INFO, "voice", "call=%llu from a blacklisted number: %s", (unsigned long long)r->id,
               c->app->cfg.sip_blacklist_prompt ? "prompt" : "busy");
        if (c->app->cfg.sip_blacklist_prompt) {
            r->outcome = OUT_GOODBYE;
            r->answer_asked = true;
            sb_voice_answer(c->voice, r->id);
            play(c, r, "blocked", "ru", false, own_play_id(c));
        } else {
            r->outcome = OUT_HANGUP;
            sb_voice_reject(c->voice, r->id, 486);
        }
        return;
    }
    look_up_caller(c, r);
    ivr_input(c, r, (sb_ivr_input){.kind = SB_IVR_IN_OFFERED, .number = r->to});
}

static void on_voice_event(const sb_voice_event *ev, void *arg)
{
    sb_calls *c = arg;
    if ((ev->call_id & SB_VOICE_ORIGINATE_BIT) != 0) { /* our outbound calls: outbound.c */
        sb_outbound_on_event(c->out, ev);
        return;
    }
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
        if (r->in_ivr) {
            ivr_input(c, r, (sb_ivr_input){.kind = SB_IVR_IN_DIGIT, .digit = ev->digit});
        } else if (r->in_queue) {
            callq_input(c, (sb_callq_input){.kind = SB_CALLQ_IN_KEY, .call_id = r->id, .digit = ev->digit});
            callq_run(c);
        } else if (r->outcome == OUT_RATING) {
            rating_key(c, r, ev->digit);
        }
        break;
    case SB_VOICE_PLAY_DONE:
        if (r == NULL)
            break;
        if (ev->cause == SB_VOICE_CAUSE_ERROR)
            sb_log(SB_WARN, "voice", "call=%llu prompt could not be played", (unsigned long long)r->id);
        if (r->in_ivr)
            ivr_input(c, r, (sb_ivr_input){.kind = SB_IVR_IN_PLAY_DONE, .play_id = ev->play_id});
        else if (r->outcome == OUT_VOICEMAIL && ev->play_id == r->play_id)
            voicemail_next(c, r); /* the beep, then the recording */
        else if (r->outcome == OUT_GOODBYE && ev->play_id == r->play_id)
            sb_voice_hangup(c->voice, r->id);
        else if (r->in_queue && ev->play_id == r->announce_play)
            after_announcement(c, r);
        else if (r->in_queue && ev->play_id == r->offer_play)
            resume_hold(c, r);
        else if (r->outcome == OUT_RATING && ev->play_id == r->rating_play)
            rating_asked(c, r, ev);
        break;
    case SB_VOICE_RECORDING_DONE:
        if (r != NULL)
            on_recording_done(c, r, ev);
        break;
    case SB_VOICE_LEG_ENDED:
        if (r != NULL)
            on_agent_left(c, r, ev);
        break;
    case SB_VOICE_HANGUP:
        if (r == NULL)
            break;
        if (r->in_ivr) /* the caller left the menu: the IVR reports the path */
            ivr_input(c, r, (sb_ivr_input){.kind = SB_IVR_IN_HANGUP});
        if (r->outcome == OUT_SCHEME && r->bridged_leg == 0) {
            fwd_input(c, (sb_fwd_input){.kind = SB_FWD_IN_HANGUP, .call_id = r->id});
            fwd_run(c);
        }
        if (r->in_queue)
            callq_input(c, (sb_callq_input){.kind = SB_CALLQ_IN_CALL_LEFT, .call_id = r->id});
        else if (r->q_talking) /* the agent's wrap-up starts */
            callq_input(c, (sb_callq_input){.kind = SB_CALLQ_IN_CALL_ENDED, .call_id = r->id, .agent_id = r->agent_id});
        r->in_queue = r->q_talking = false;
        for (size_t i = 0; i < r->nlegs; i++)
            tell_agent(c, r, r->legs[i].agent_id, "call.ended");
        r->nlegs = 0;
        tell_on_call(c, r, false);
        callq_run(c);
        /* the call queue's actions for it were skipped or done: unlink it */
        rec_find(c, r->id, &link);
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
    json_t *teams;  /* [[id, routing], ...] */
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
                    "SELECT kind, id, data FROM config_item WHERE kind IN ('phone_number', 'ivr_menu', 'calendar', "
                    "'forwarding_scheme') "
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
    if (rc < 0)
        return rc;
    s = sb_tx_query(tx, "SELECT id, routing FROM team ORDER BY id", "");
    if (s == NULL)
        return SB_EIO;
    o->teams = json_array();
    while ((rc = sb_stmt_step(s)) == 1)
        json_array_append_new(o->teams, json_pack("[I,s]", (json_int_t)sb_stmt_int(s, 0),
                                                  sb_stmt_isnull(s, 1) ? "{}" : sb_stmt_text(s, 1)));
    sb_stmt_end(s);
    return rc < 0 ? rc : 0;
}

static bool has_member(const team_member *m, size_t n, int64_t team_id, int64_t agent_id)
{
    for (size_t i = 0; i < n; i++)
        if (m[i].team_id == team_id && m[i].agent_id == agent_id)
            return true;
    return false;
}

/* Gives the call queue every team's settings (routing.call_queue, with the
 * [sip] defaults) and members, in member order; teams and members that are
 * gone leave it (their waiting calls go to the fallback). Runs before the
 * members list is replaced. */
static void load_queues(sb_calls *c, const ext_op *o)
{
    int64_t now = (int64_t)sb_clock_mono_ms();
    for (size_t i = 0; i < c->nmembers; i++)
        if (!has_member(o->members, o->nmembers, c->members[i].team_id, c->members[i].agent_id))
            sb_callq_remove_member(c->callq, c->members[i].team_id, c->members[i].agent_id, now, &c->qacts);
    queue_opt *queues = sb_xcalloc(json_array_size(o->teams) + 1, sizeof *queues);
    size_t nq = 0, i;
    json_t *row;
    json_array_foreach (o->teams, i, row) {
        int64_t team_id = json_integer_value(json_array_get(row, 0));
        json_t *routing = json_loads(json_string_value(json_array_get(row, 1)), 0, NULL);
        sb_callq_config q = {.ring_timeout_seconds = (int)c->app->cfg.sip_ring_timeout_seconds,
                             .max_wait_seconds = (int)c->app->cfg.sip_queue_max_wait_seconds};
        bool vm = true;
        sb_config_error err;
        if (sb_config_call_queue(json_object_get(routing, "call_queue"), team_id, &q, &vm, &err) != 0 ||
            sb_callq_put_queue(c->callq, &q) != 0) {
            sb_log(SB_WARN, "voice", "team %lld: call queue settings skipped (%s)", (long long)team_id, err.field);
            q = (sb_callq_config){.ring_timeout_seconds = (int)c->app->cfg.sip_ring_timeout_seconds,
                                  .max_wait_seconds = (int)c->app->cfg.sip_queue_max_wait_seconds};
            sb_config_call_queue(NULL, team_id, &q, &vm, &err);
            sb_callq_put_queue(c->callq, &q);
        }
        json_t *cq = json_object_get(routing, "call_queue");
        const json_t *rec = json_object_get(cq, "record_calls");
        queues[nq++] = (queue_opt){team_id,
                                   vm,
                                   json_is_true(json_object_get(cq, "ringback")),
                                   json_is_true(json_object_get(cq, "rating")),
                                   q.callback_digit,
                                   json_is_true(rec)    ? 1
                                   : json_is_false(rec) ? -1
                                                        : 0};
        json_decref(routing);
    }
    for (size_t k = 0; k < c->nqueues; k++) {
        bool kept = false;
        for (size_t j = 0; j < nq && !kept; j++)
            kept = queues[j].team_id == c->queues[k].team_id;
        if (!kept)
            sb_callq_remove_queue(c->callq, c->queues[k].team_id, now, &c->qacts);
    }
    free(c->queues);
    c->queues = queues;
    c->nqueues = nq;
    for (size_t k = 0; k < o->nmembers; k++)
        sb_callq_add_member(c->callq, o->members[k].team_id, o->members[k].agent_id, now, &c->qacts);
}

/* Takes the agents' extensions and teams, keeping the registration state
 * of agents whose extension stayed (the voice thread reports the bindings
 * it drops for the others). */
static void load_agents(sb_calls *c, ext_op *o)
{
    load_queues(c, o);
    agent_line *agents = o->n > 0 ? sb_xcalloc(o->n, sizeof *agents) : NULL;
    for (size_t i = 0; i < o->n; i++) {
        agents[i].agent_id = o->ext[i].agent_id;
        memcpy(agents[i].extension, o->ext[i].extension, sizeof agents[i].extension);
        const agent_line *old = agent_by_id(c, agents[i].agent_id);
        if (old != NULL && strcmp(old->extension, agents[i].extension) == 0)
            agents[i].devices = old->devices;
        /* q_known stays false: the queue hears everyone's state again (new
         * members start unregistered there) */
    }
    if (o->n > 1)
        qsort(agents, o->n, sizeof *agents, agent_line_cmp);
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
    sb_fwd_clear_config(c->fwd);
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
            } else if (strcmp(kind, "forwarding_scheme") == 0) {
                sb_fwd_scheme *scheme = sb_xcalloc(1, sizeof *scheme);
                if (sb_voice_scheme(doc, scheme) == 0)
                    rc = sb_fwd_put_scheme(c->fwd, scheme);
                free(scheme);
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
    /* the schemes' team targets: members in member order (load_agents ran) */
    int64_t *ids = sb_xcalloc(c->nmembers + 1, sizeof *ids);
    json_array_foreach (o->teams, i, row) {
        int64_t team_id = json_integer_value(json_array_get(row, 0));
        size_t n = 0;
        for (size_t k = 0; k < c->nmembers; k++)
            if (c->members[k].team_id == team_id)
                ids[n++] = c->members[k].agent_id;
        sb_fwd_put_team(c->fwd, team_id, ids, n);
    }
    free(ids);
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
        refresh_agents(o->calls);
        callq_run(o->calls);
    }
    json_decref(o->config);
    json_decref(o->teams);
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
    c->callq = sb_callq_new();
    c->fwd = sb_fwd_new();
    /* schemes ring numbers through the [trunk] (SIP addresses need none) */
    sb_fwd_set_trunk(c->fwd, cfg->trunk_host[0] != '\0');
    c->count_day = sb_clock_wall_ms() / 86400000;
    sb_voice_options opt;
    memset(&opt, 0, sizeof opt);
    snprintf(opt.host, sizeof opt.host, "%s", cfg->sip_host);
    opt.port = cfg->sip_port;
    snprintf(opt.realm, sizeof opt.realm, "%s", cfg->sip_realm);
    opt.no_media_seconds = cfg->sip_no_media_seconds;
    opt.ring_timeout_seconds = 120;
    opt.register_max_failures = cfg->sip_register_max_failures;
    opt.register_lockout_seconds = cfg->sip_register_lockout_seconds;
    opt.invite_rate_per_second = cfg->sip_invite_rate_per_second;
    opt.invite_burst = cfg->sip_invite_burst;
    opt.overload_lag_ms = cfg->sip_overload_lag_ms;
    opt.auth_invites = cfg->sip_auth_invites != 0;
    if (!opt.auth_invites)
        sb_log(SB_WARN, "voice",
               "[sip] auth_invites = false: a phone's INVITE is believed without a challenge "
               "when it comes from where that extension registered");
    sb_outbound_voice_options(cfg, &opt); /* [trunk] */
    if (sb_voice_start(&c->voice, app->loop, &opt, on_voice_event, c) != 0) {
        sb_ivr_free(c->ivr);
        sb_callq_free(c->callq);
        sb_fwd_free(c->fwd);
        free(c);
        return NULL;
    }
    c->out = sb_outbound_new(app, c, c->voice);
    uv_timer_init(app->loop, &c->answer_timer);
    c->answer_timer.data = c;
    uv_timer_init(app->loop, &c->ivr_timer);
    c->ivr_timer.data = c;
    uv_timer_init(app->loop, &c->ring_timer);
    c->ring_timer.data = c;
    uv_timer_init(app->loop, &c->callq_timer);
    c->callq_timer.data = c;
    uv_timer_init(app->loop, &c->fwd_timer);
    c->fwd_timer.data = c;
    uv_timer_init(app->loop, &c->avail_timer);
    c->avail_timer.data = c;
    uv_timer_start(&c->avail_timer, on_avail_timer, AVAIL_PERIOD_MS, AVAIL_PERIOD_MS);
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
        uv_close((uv_handle_t *)&c->callq_timer, NULL);
        uv_close((uv_handle_t *)&c->fwd_timer, NULL);
        uv_close((uv_handle_t *)&c->avail_timer, NULL);
    }
}

void sb_calls_free(sb_calls *c)
{
    if (c == NULL)
        return;
    sb_voice_free(c->voice);
    sb_outbound_free(c->out);
    sb_ivr_free(c->ivr);
    sb_ivr_actions_free(&c->acts);
    sb_callq_free(c->callq);
    sb_callq_actions_free(&c->qacts);
    sb_fwd_free(c->fwd);
    sb_fwd_actions_free(&c->facts);
    free(c->queues);
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
    static const struct {
        const char *name, *help, *type;
        size_t off;
    } rows[] = {
        {"voice_queue_waiting", "Calls waiting in the queue now.", "gauge", offsetof(sb_callq_stats, waiting)},
        {"voice_queue_joined_total", "Calls that joined the queue.", "counter", offsetof(sb_callq_stats, joined)},
        {"voice_queue_answered_total", "Queue calls answered by an agent.", "counter",
         offsetof(sb_callq_stats, answered)},
        {"voice_queue_abandoned_total", "Callers who hung up while waiting.", "counter",
         offsetof(sb_callq_stats, abandoned)},
        {"voice_queue_timed_out_total", "Calls that reached the maximum wait.", "counter",
         offsetof(sb_callq_stats, timed_out)},
        {"voice_queue_callbacks_total", "Callers who asked to be called back.", "counter",
         offsetof(sb_callq_stats, callbacks)},
    };
    int64_t now = (int64_t)sb_clock_mono_ms();
    for (size_t k = 0; k < SB_ARRAY_LEN(rows); k++) {
        sb_buf_printf(b, "# HELP switchboard_%s %s\n# TYPE switchboard_%s %s\n", rows[k].name, rows[k].help,
                      rows[k].name, rows[k].type);
        for (size_t i = 0; i < c->nqueues; i++) {
            sb_callq_stats st;
            if (sb_callq_stats_get(c->callq, c->queues[i].team_id, now, &st) != 0)
                continue;
            unsigned long long v = rows[k].off == offsetof(sb_callq_stats, waiting)
                                       ? (unsigned long long)st.waiting
                                       : (unsigned long long)*(const uint64_t *)((const char *)&st + rows[k].off);
            sb_buf_printf(b, "switchboard_%s{team=\"%lld\"} %llu\n", rows[k].name, (long long)c->queues[i].team_id, v);
        }
    }
    sb_buf_printf(b,
                  "# HELP switchboard_voice_calls_logged_total Calls written to the call log.\n"
                  "# TYPE switchboard_voice_calls_logged_total counter\nswitchboard_voice_calls_logged_total %llu\n",
                  (unsigned long long)c->logged);
}

sb_outbound *sb_calls_outbound(sb_calls *c)
{
    return c != NULL ? c->out : NULL;
}

bool sb_calls_agent_line(sb_calls *c, int64_t agent_id, char *extension, size_t cap, bool *busy)
{
    const agent_line *ag = c != NULL ? agent_by_id(c, agent_id) : NULL;
    if (ag == NULL || ag->devices == 0)
        return false;
    snprintf(extension, cap, "%s", ag->extension);
    *busy = agent_busy(c, agent_id);
    return true;
}

int64_t sb_calls_free_agent(sb_calls *c, int64_t team_id, int64_t after_agent_id, int64_t skip_agent_id)
{
    if (c == NULL || c->nmembers == 0)
        return 0;
    sb_callq_stats st;
    if (sb_callq_stats_get(c->callq, team_id, (int64_t)sb_clock_mono_ms(), &st) == 0 && st.waiting > 0)
        return 0; /* callers waiting in the team's queue come first */
    int64_t now = sb_clock_wall_ms(), best = 0;
    size_t n = c->nmembers, start = 0;
    for (size_t i = 0; i < n; i++)
        if (c->members[i].team_id == team_id && c->members[i].agent_id == after_agent_id)
            start = i + 1;
    uint32_t best_calls = UINT32_MAX;
    for (size_t k = 0; k < n; k++) {
        const team_member *m = &c->members[(start + k) % n];
        if (m->team_id != team_id || m->agent_id == skip_agent_id)
            continue;
        const agent_line *ag = agent_by_id(c, m->agent_id);
        if (ag == NULL || ag->devices == 0 || !agent_available(c, ag, now) || agent_busy(c, ag->agent_id))
            continue;
        sb_callq_agent_info qi;
        uint32_t answered = 0;
        if (sb_callq_agent_get(c->callq, ag->agent_id, &qi) == 0) {
            if (qi.status != SB_CALLQ_AGENT_IDLE)
                continue; /* ringing, talking or in wrap-up for a queue */
            answered = qi.calls_answered;
        }
        if (answered < best_calls) {
            best = ag->agent_id;
            best_calls = answered;
        }
    }
    return best;
}
