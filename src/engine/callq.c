/* callq.c - the call queues' state machine (see callq.h).
 *
 *  - queues: an array of pointers (calls point at their queue), each with
 *    its config, members in order, who last answered and its counters.
 *  - agents: a hash by id, shared by all queues. An agent is IDLE,
 *    RINGING for one call (ring_call), TALKING (call left the queue; only
 *    its id and team are kept) or in WRAPUP.
 *  - calls: a hash by the executor's call id, and one list in offering
 *    order over all queues (priority, then joining time, then arrival).
 *    Each call knows its ringing legs and the agents tried this round.
 *  - timers: one heap (base/theap.c) of (at, kind, key), due together in
 *    the order armed, as in ivr.c. An agent has at most one live timer
 *    (ring timeout or wrap-up end), a call three (announcement, max wait,
 *    retry); a timer's generation is its sequence number in the heap, so
 *    it is cancelled by forgetting that, and a stale entry is skipped when
 *    it comes up.
 *  - decisions: every input and every batch of due timers changes state
 *    first, then dispatch() offers waiting calls to free agents once. */
#include "engine/callq.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/sb.h"
#include "base/theap.h"

#define CALL_BUCKETS  1024
#define AGENT_BUCKETS 256

typedef struct call call;
typedef struct queue queue;

typedef struct agent {
    int64_t id;
    struct agent *hnext;
    bool registered, available;
    sb_callq_agent_status status;
    call *ring_call;    /* RINGING */
    uint64_t talk_call; /* TALKING */
    int64_t talk_team;  /* TALKING: whose wrap-up applies */
    int64_t idle_since; /* last queue call ended; INT64_MIN: never */
    int64_t wrapup_until;
    uint32_t calls_answered;
    uint64_t timer_gen; /* ring timeout or wrap-up end; 0 = none */
} agent;

struct queue {
    sb_callq_config cfg;
    agent **members;
    size_t nmembers, cap_members;
    int64_t last_answered; /* agent id; 0 = nobody yet */
    size_t ncalls;
    sb_callq_stats counters; /* waiting and longest_wait_ms unused here */
};

struct call {
    uint64_t id;
    call *hnext;
    call *prev, *next; /* offering order */
    queue *queue;
    int priority;
    int64_t joined;
    agent **legs;
    size_t nlegs, cap_legs;
    int64_t *tried;
    size_t ntried, cap_tried;
    int64_t last_leg_end; /* when the last unanswered ring ended */
    int64_t retry_at;     /* the armed T_RETRY's deadline */
    uint64_t announce_gen, maxwait_gen, retry_gen;
};

typedef enum timer_kind {
    T_RING,
    T_WRAPUP,
    T_ANNOUNCE,
    T_MAXWAIT,
    T_RETRY, /* a new round may start: nothing but the dispatch after it */
} timer_kind;

struct sb_callq {
    queue **queues;
    size_t nqueues, cap_queues;
    agent *agents[AGENT_BUCKETS];
    size_t nagents;
    call *calls[CALL_BUCKETS];
    size_t ncalls;
    call *head, *tail;
    sb_theap timers; /* key: agent id or call id; a timer's gen is its seq */
    agent **scratch;
    size_t cap_scratch;
    sb_callq_random_fn random;
    void *random_ctx;
    uint32_t xorshift;
};

static void *grow(void *v, size_t *cap, size_t n, size_t size)
{
    if (n < *cap)
        return v;
    while (*cap <= n)
        *cap = *cap ? *cap * 2 : 8;
    return sb_xrealloc(v, *cap * size);
}

const char *sb_callq_strategy_name(sb_callq_strategy s)
{
    static const char *const names[] = {"ring_all", "longest_idle", "fewest_calls", "random", "round_robin"};
    return (size_t)s < SB_ARRAY_LEN(names) ? names[s] : "?";
}

int sb_callq_strategy_parse(const char *name, sb_callq_strategy *out)
{
    for (int s = SB_CALLQ_RING_ALL; s <= SB_CALLQ_ROUND_ROBIN; s++) {
        if (name != NULL && strcmp(name, sb_callq_strategy_name((sb_callq_strategy)s)) == 0) {
            *out = (sb_callq_strategy)s;
            return 0;
        }
    }
    return SB_EINVAL;
}

const char *sb_callq_reason_name(sb_callq_reason r)
{
    static const char *const names[] = {"none",      "answered",    "timeout", "callback",
                                        "abandoned", "unavailable", "removed"};
    return (size_t)r < SB_ARRAY_LEN(names) ? names[r] : "?";
}

const char *sb_callq_action_name(sb_callq_action_kind kind)
{
    static const char *const names[] = {"hold", "ring", "cancel_ring", "bridge", "announce", "leave"};
    return (size_t)kind < SB_ARRAY_LEN(names) ? names[kind] : "?";
}

void sb_callq_actions_reset(sb_callq_actions *out)
{
    out->n = 0;
}

void sb_callq_actions_free(sb_callq_actions *out)
{
    free(out->v);
    *out = (sb_callq_actions){0};
}

static sb_callq_action *emit(sb_callq_actions *out, sb_callq_action_kind kind, const call *c, const agent *a)
{
    out->v = grow(out->v, &out->cap, out->n, sizeof *out->v);
    sb_callq_action *act = &out->v[out->n++];
    *act = (sb_callq_action){.kind = kind};
    if (c != NULL) {
        act->call_id = c->id;
        act->team_id = c->queue->cfg.team_id;
    }
    if (a != NULL)
        act->agent_id = a->id;
    return act;
}

/* ---- lookups ---- */

static queue *find_queue(const sb_callq *q, int64_t team_id)
{
    for (size_t i = 0; i < q->nqueues; i++)
        if (q->queues[i]->cfg.team_id == team_id)
            return q->queues[i];
    return NULL;
}

static agent *find_agent(const sb_callq *q, int64_t id)
{
    for (agent *a = q->agents[(uint64_t)id % AGENT_BUCKETS]; a != NULL; a = a->hnext)
        if (a->id == id)
            return a;
    return NULL;
}

static agent *get_agent(sb_callq *q, int64_t id)
{
    agent *a = find_agent(q, id);
    if (a != NULL)
        return a;
    a = sb_xcalloc(1, sizeof *a);
    a->id = id;
    a->idle_since = INT64_MIN;
    a->hnext = q->agents[(uint64_t)id % AGENT_BUCKETS];
    q->agents[(uint64_t)id % AGENT_BUCKETS] = a;
    q->nagents++;
    return a;
}

static call *find_call(const sb_callq *q, uint64_t id)
{
    for (call *c = q->calls[id % CALL_BUCKETS]; c != NULL; c = c->hnext)
        if (c->id == id)
            return c;
    return NULL;
}

static bool is_member(const queue *qu, const agent *a)
{
    for (size_t i = 0; i < qu->nmembers; i++)
        if (qu->members[i] == a)
            return true;
    return false;
}

/* ---- timers ---- */

static bool timer_live(const sb_timer *tm, void *ctx)
{
    const sb_callq *q = ctx;
    if (tm->kind == T_RING || tm->kind == T_WRAPUP) {
        const agent *a = find_agent(q, (int64_t)tm->key);
        return a != NULL && a->timer_gen == tm->seq;
    }
    const call *c = find_call(q, tm->key);
    if (c == NULL)
        return false;
    if (tm->kind == T_ANNOUNCE)
        return c->announce_gen == tm->seq;
    return tm->kind == T_MAXWAIT ? c->maxwait_gen == tm->seq : c->retry_gen == tm->seq;
}

/* Live timers are at most one per agent and three per call. Returns the
 * timer's generation. */
static uint64_t arm(sb_callq *q, timer_kind kind, uint64_t key, int64_t at)
{
    sb_theap_compact_stale(&q->timers, q->nagents + 3 * q->ncalls, timer_live, q);
    return sb_theap_push(&q->timers, (sb_timer){.at = at, .key = key, .kind = (uint8_t)kind});
}

/* Drops cancelled timers from the top, so the next deadline is a real one. */
static void timers_trim(sb_callq *q)
{
    sb_theap_trim(&q->timers, timer_live, q);
}

int64_t sb_callq_next_deadline(const sb_callq *q)
{
    return sb_theap_next_at(&q->timers);
}

/* ---- life cycle ---- */

sb_callq *sb_callq_new(void)
{
    sb_callq *q = sb_xcalloc(1, sizeof *q);
    q->xorshift = 2463534242u;
    return q;
}

static void call_free(call *c)
{
    free(c->legs);
    free(c->tried);
    free(c);
}

void sb_callq_free(sb_callq *q)
{
    if (q == NULL)
        return;
    for (call *c = q->head; c != NULL;) {
        call *next = c->next;
        call_free(c);
        c = next;
    }
    for (size_t b = 0; b < AGENT_BUCKETS; b++) {
        for (agent *a = q->agents[b]; a != NULL;) {
            agent *next = a->hnext;
            free(a);
            a = next;
        }
    }
    for (size_t i = 0; i < q->nqueues; i++) {
        free(q->queues[i]->members);
        free(q->queues[i]);
    }
    free(q->queues);
    sb_theap_close(&q->timers);
    free(q->scratch);
    free(q);
}

void sb_callq_set_random(sb_callq *q, sb_callq_random_fn fn, void *ctx)
{
    q->random = fn;
    q->random_ctx = ctx;
}

static uint32_t next_random(sb_callq *q)
{
    if (q->random != NULL)
        return q->random(q->random_ctx);
    uint32_t x = q->xorshift;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    q->xorshift = x;
    return x;
}

void sb_callq_reset_counts(sb_callq *q)
{
    for (size_t b = 0; b < AGENT_BUCKETS; b++)
        for (agent *a = q->agents[b]; a != NULL; a = a->hnext)
            a->calls_answered = 0;
}

static bool valid_digit(char d)
{
    return (d >= '0' && d <= '9') || d == '*' || d == '#' || (d >= 'A' && d <= 'D');
}

/* ---- rings and leaving ---- */

static bool offerable(const agent *a)
{
    return a->registered && a->available && a->status == SB_CALLQ_AGENT_IDLE;
}

static bool was_tried(const call *c, const agent *a)
{
    for (size_t i = 0; i < c->ntried; i++)
        if (c->tried[i] == a->id)
            return true;
    return false;
}

static void ring(sb_callq *q, call *c, agent *a, int seconds, int64_t now, sb_callq_actions *out)
{
    SB_ASSERT(offerable(a));
    a->status = SB_CALLQ_AGENT_RINGING;
    a->ring_call = c;
    a->timer_gen = arm(q, T_RING, (uint64_t)a->id, now + (int64_t)seconds * 1000);
    c->legs = grow(c->legs, &c->cap_legs, c->nlegs, sizeof *c->legs);
    c->legs[c->nlegs++] = a;
    if (!was_tried(c, a)) {
        c->tried = grow(c->tried, &c->cap_tried, c->ntried, sizeof *c->tried);
        c->tried[c->ntried++] = a->id;
    }
    emit(out, SB_CALLQ_RING, c, a)->timeout_seconds = seconds;
}

/* The agent stops ringing (timeout, failure, answer, cancel). */
static void end_ring(agent *a, int64_t now)
{
    call *c = a->ring_call;
    SB_ASSERT(a->status == SB_CALLQ_AGENT_RINGING && c != NULL);
    for (size_t i = 0; i < c->nlegs; i++) {
        if (c->legs[i] == a) {
            c->legs[i] = c->legs[--c->nlegs];
            break;
        }
    }
    c->last_leg_end = now;
    a->status = SB_CALLQ_AGENT_IDLE;
    a->ring_call = NULL;
    a->timer_gen = 0;
}

static void cancel_ring(agent *a, sb_callq_reason why, int64_t now, sb_callq_actions *out)
{
    call *c = a->ring_call;
    end_ring(a, now);
    emit(out, SB_CALLQ_CANCEL_RING, c, a)->reason = why;
}

/* The call leaves the queue and is forgotten: its rings are cancelled. */
static void leave(sb_callq *q, call *c, sb_callq_reason why, int64_t now, sb_callq_actions *out)
{
    while (c->nlegs > 0)
        cancel_ring(c->legs[c->nlegs - 1], why, now, out);
    sb_callq_action *act = emit(out, SB_CALLQ_LEAVE, c, NULL);
    act->reason = why;
    act->waited_ms = now - c->joined;

    sb_callq_stats *st = &c->queue->counters;
    switch (why) {
    case SB_CALLQ_R_ANSWERED:
        st->answered++;
        st->answer_wait_total_ms += now - c->joined;
        break;
    case SB_CALLQ_R_TIMEOUT: st->timed_out++; break;
    case SB_CALLQ_R_CALLBACK: st->callbacks++; break;
    case SB_CALLQ_R_ABANDONED: st->abandoned++; break;
    default: st->removed++; break;
    }

    call **pp = &q->calls[c->id % CALL_BUCKETS];
    while (*pp != c)
        pp = &(*pp)->hnext;
    *pp = c->hnext;
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        q->head = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    else
        q->tail = c->prev;
    c->queue->ncalls--;
    q->ncalls--;
    call_free(c);
}

/* ---- the strategies ---- */

/* The members this call may be offered now: free and not tried this
 * round. When every free member was tried, a new round starts, once the
 * retry pause after the last ring is over (a timer wakes the dispatch). */
static size_t candidates(sb_callq *q, call *c, int64_t now)
{
    queue *qu = c->queue;
    q->scratch = grow(q->scratch, &q->cap_scratch, qu->nmembers, sizeof *q->scratch);
    for (int round = 0; round < 2; round++) {
        size_t n = 0, free_members = 0;
        for (size_t i = 0; i < qu->nmembers; i++) {
            agent *a = qu->members[i];
            if (!offerable(a))
                continue;
            free_members++;
            if (!was_tried(c, a))
                q->scratch[n++] = a;
        }
        if (n > 0 || free_members == 0)
            return n;
        int64_t again = c->last_leg_end + (int64_t)qu->cfg.retry_seconds * 1000;
        if (now < again) {
            if (c->retry_gen == 0 || c->retry_at != again) {
                c->retry_at = again;
                c->retry_gen = arm(q, T_RETRY, c->id, again);
            }
            return 0;
        }
        c->ntried = 0;
    }
    return 0;
}

static agent *pick(sb_callq *q, call *c, size_t n)
{
    agent **v = q->scratch;
    agent *best = v[0];
    switch (c->queue->cfg.strategy) {
    case SB_CALLQ_RING_ALL: break;
    case SB_CALLQ_LONGEST_IDLE:
        for (size_t i = 1; i < n; i++)
            if (v[i]->idle_since < best->idle_since)
                best = v[i];
        break;
    case SB_CALLQ_FEWEST_CALLS:
        for (size_t i = 1; i < n; i++)
            if (v[i]->calls_answered < best->calls_answered)
                best = v[i];
        break;
    case SB_CALLQ_RANDOM: best = v[next_random(q) % n]; break;
    case SB_CALLQ_ROUND_ROBIN: {
        /* Candidates are in member order: the first one after the member
         * who last answered, wrapping around. */
        queue *qu = c->queue;
        size_t start = 0;
        for (size_t i = 0; i < qu->nmembers; i++)
            if (qu->members[i]->id == qu->last_answered)
                start = i + 1;
        size_t best_dist = SIZE_MAX;
        for (size_t k = 0; k < n; k++) {
            size_t pos = 0;
            while (qu->members[pos] != v[k])
                pos++;
            size_t dist = (pos + qu->nmembers - start % qu->nmembers) % qu->nmembers;
            if (dist < best_dist) {
                best_dist = dist;
                best = v[k];
            }
        }
        break;
    }
    }
    return best;
}

static size_t count_offerable(const sb_callq *q)
{
    size_t n = 0;
    for (size_t b = 0; b < AGENT_BUCKETS; b++)
        for (const agent *a = q->agents[b]; a != NULL; a = a->hnext)
            n += offerable(a);
    return n;
}

/* Offers every waiting call without a ringing leg to free members, in
 * offering order, until no agent is free (Asterisk's autofill). */
static void dispatch(sb_callq *q, int64_t now, sb_callq_actions *out)
{
    size_t free_agents = count_offerable(q);
    for (call *c = q->head; c != NULL && free_agents > 0; c = c->next) {
        if (c->nlegs > 0)
            continue;
        size_t n = candidates(q, c, now);
        if (n == 0)
            continue;
        int seconds = c->queue->cfg.ring_timeout_seconds;
        if (c->queue->cfg.strategy == SB_CALLQ_RING_ALL) {
            for (size_t i = 0; i < n; i++)
                ring(q, c, q->scratch[i], seconds, now, out);
            free_agents -= n;
        } else {
            ring(q, c, pick(q, c, n), seconds, now, out);
            free_agents--;
        }
    }
}

/* ---- configuration ---- */

int sb_callq_put_queue(sb_callq *q, const sb_callq_config *cfg)
{
    if (cfg->team_id <= 0 || (unsigned)cfg->strategy > SB_CALLQ_ROUND_ROBIN || cfg->ring_timeout_seconds <= 0 ||
        cfg->wrapup_seconds < 0 || cfg->max_wait_seconds < 0 || cfg->announce_seconds < 0 ||
        cfg->preferred_seconds < 0 || cfg->retry_seconds < 0 ||
        (cfg->callback_digit != 0 && !valid_digit(cfg->callback_digit)) ||
        memchr(cfg->hold_prompt, 0, sizeof cfg->hold_prompt) == NULL)
        return SB_EINVAL;
    queue *qu = find_queue(q, cfg->team_id);
    if (qu == NULL) {
        qu = sb_xcalloc(1, sizeof *qu);
        q->queues = grow(q->queues, &q->cap_queues, q->nqueues, sizeof *q->queues);
        q->queues[q->nqueues++] = qu;
    }
    qu->cfg = *cfg;
    return 0;
}

int sb_callq_remove_queue(sb_callq *q, int64_t team_id, int64_t now, sb_callq_actions *out)
{
    queue *qu = find_queue(q, team_id);
    if (qu == NULL)
        return SB_ENOTFOUND;
    for (call *c = q->head; c != NULL;) {
        call *next = c->next;
        if (c->queue == qu)
            leave(q, c, SB_CALLQ_R_REMOVED, now, out);
        c = next;
    }
    for (size_t i = 0; i < q->nqueues; i++) {
        if (q->queues[i] == qu) {
            memmove(&q->queues[i], &q->queues[i + 1], (q->nqueues - i - 1) * sizeof *q->queues);
            q->nqueues--;
            break;
        }
    }
    free(qu->members);
    free(qu);
    dispatch(q, now, out);
    timers_trim(q);
    return 0;
}

int sb_callq_add_member(sb_callq *q, int64_t team_id, int64_t agent_id, int64_t now, sb_callq_actions *out)
{
    queue *qu = find_queue(q, team_id);
    if (qu == NULL)
        return SB_ENOTFOUND;
    if (agent_id <= 0)
        return SB_EINVAL;
    agent *a = get_agent(q, agent_id);
    if (is_member(qu, a))
        return 0;
    qu->members = grow(qu->members, &qu->cap_members, qu->nmembers, sizeof *qu->members);
    qu->members[qu->nmembers++] = a;
    dispatch(q, now, out);
    timers_trim(q);
    return 0;
}

int sb_callq_remove_member(sb_callq *q, int64_t team_id, int64_t agent_id, int64_t now, sb_callq_actions *out)
{
    queue *qu = find_queue(q, team_id);
    agent *a = find_agent(q, agent_id);
    if (qu == NULL || a == NULL || !is_member(qu, a))
        return SB_ENOTFOUND;
    size_t i = 0;
    while (qu->members[i] != a)
        i++;
    memmove(&qu->members[i], &qu->members[i + 1], (qu->nmembers - i - 1) * sizeof *qu->members);
    qu->nmembers--;
    if (a->status == SB_CALLQ_AGENT_RINGING && a->ring_call->queue == qu)
        cancel_ring(a, SB_CALLQ_R_REMOVED, now, out);
    dispatch(q, now, out);
    timers_trim(q);
    return 0;
}

/* ---- inputs ---- */

static int joined(sb_callq *q, const sb_callq_input *in, int64_t now, sb_callq_actions *out)
{
    queue *qu = find_queue(q, in->team_id);
    if (qu == NULL)
        return SB_ENOTFOUND;
    if (in->call_id == 0)
        return SB_EINVAL;
    if (find_call(q, in->call_id) != NULL)
        return SB_ECONFLICT;
    call *c = sb_xcalloc(1, sizeof *c);
    c->id = in->call_id;
    c->queue = qu;
    c->priority = in->priority;
    c->joined = now;
    c->hnext = q->calls[c->id % CALL_BUCKETS];
    q->calls[c->id % CALL_BUCKETS] = c;
    /* After the last call of the same or higher priority: later joiners
     * come after earlier ones. */
    call *after = q->tail;
    while (after != NULL && after->priority < c->priority)
        after = after->prev;
    c->prev = after;
    c->next = after != NULL ? after->next : q->head;
    if (c->next != NULL)
        c->next->prev = c;
    else
        q->tail = c;
    if (after != NULL)
        after->next = c;
    else
        q->head = c;
    qu->ncalls++;
    q->ncalls++;
    qu->counters.joined++;

    sb_callq_action *hold = emit(out, SB_CALLQ_HOLD, c, NULL);
    snprintf(hold->prompt, sizeof hold->prompt, "%s", qu->cfg.hold_prompt);
    if (qu->cfg.announce_seconds > 0)
        c->announce_gen = arm(q, T_ANNOUNCE, c->id, now + (int64_t)qu->cfg.announce_seconds * 1000);
    if (qu->cfg.max_wait_seconds > 0)
        c->maxwait_gen = arm(q, T_MAXWAIT, c->id, now + (int64_t)qu->cfg.max_wait_seconds * 1000);
    agent *preferred = in->preferred_agent_id > 0 ? find_agent(q, in->preferred_agent_id) : NULL;
    if (preferred != NULL && offerable(preferred)) {
        int seconds = qu->cfg.preferred_seconds > 0 ? qu->cfg.preferred_seconds : qu->cfg.ring_timeout_seconds;
        ring(q, c, preferred, seconds, now, out);
    }
    return 0;
}

static int answered(sb_callq *q, const sb_callq_input *in, int64_t now, sb_callq_actions *out)
{
    call *c = find_call(q, in->call_id);
    agent *a = find_agent(q, in->agent_id);
    if (c == NULL || a == NULL || a->status != SB_CALLQ_AGENT_RINGING || a->ring_call != c)
        return SB_ENOTFOUND;
    end_ring(a, now);
    while (c->nlegs > 0)
        cancel_ring(c->legs[c->nlegs - 1], SB_CALLQ_R_ANSWERED, now, out);
    a->status = SB_CALLQ_AGENT_TALKING;
    a->talk_call = c->id;
    a->talk_team = c->queue->cfg.team_id;
    a->calls_answered++;
    c->queue->last_answered = a->id;
    emit(out, SB_CALLQ_BRIDGE, c, a);
    leave(q, c, SB_CALLQ_R_ANSWERED, now, out);
    return 0;
}

static int call_ended(sb_callq *q, const sb_callq_input *in, int64_t now)
{
    agent *a = find_agent(q, in->agent_id);
    if (a == NULL)
        return SB_ENOTFOUND;
    if (a->status != SB_CALLQ_AGENT_TALKING)
        return SB_ECONFLICT;
    const queue *qu = find_queue(q, a->talk_team);
    int wrapup = qu != NULL ? qu->cfg.wrapup_seconds : 0;
    a->idle_since = now;
    a->talk_call = 0;
    if (wrapup > 0) {
        a->status = SB_CALLQ_AGENT_WRAPUP;
        a->wrapup_until = now + (int64_t)wrapup * 1000;
        a->timer_gen = arm(q, T_WRAPUP, (uint64_t)a->id, a->wrapup_until);
    } else {
        a->status = SB_CALLQ_AGENT_IDLE;
    }
    return 0;
}

int sb_callq_handle(sb_callq *q, const sb_callq_input *in, int64_t now, sb_callq_actions *out)
{
    int rc = 0;
    call *c = NULL;
    agent *a = NULL;
    switch (in->kind) {
    case SB_CALLQ_IN_CALL_JOINED: rc = joined(q, in, now, out); break;
    case SB_CALLQ_IN_LEG_ANSWERED: rc = answered(q, in, now, out); break;
    case SB_CALLQ_IN_LEG_FAILED:
        c = find_call(q, in->call_id);
        a = find_agent(q, in->agent_id);
        if (c == NULL || a == NULL || a->status != SB_CALLQ_AGENT_RINGING || a->ring_call != c)
            rc = SB_ENOTFOUND;
        else
            end_ring(a, now);
        break;
    case SB_CALLQ_IN_CALL_LEFT:
        c = find_call(q, in->call_id);
        if (c == NULL)
            rc = SB_ENOTFOUND;
        else
            leave(q, c, SB_CALLQ_R_ABANDONED, now, out);
        break;
    case SB_CALLQ_IN_CALL_ENDED: rc = call_ended(q, in, now); break;
    case SB_CALLQ_IN_AGENT_STATE:
        if (in->agent_id <= 0) {
            rc = SB_EINVAL;
            break;
        }
        a = get_agent(q, in->agent_id);
        a->registered = in->registered;
        a->available = in->available;
        if (a->status == SB_CALLQ_AGENT_RINGING && !(a->registered && a->available))
            cancel_ring(a, SB_CALLQ_R_UNAVAILABLE, now, out);
        break;
    case SB_CALLQ_IN_KEY:
        c = find_call(q, in->call_id);
        if (!valid_digit(in->digit))
            rc = SB_EINVAL;
        else if (c == NULL)
            rc = SB_ENOTFOUND;
        else if (c->queue->cfg.callback_digit != 0 && in->digit == c->queue->cfg.callback_digit)
            leave(q, c, SB_CALLQ_R_CALLBACK, now, out);
        break;
    default: rc = SB_EINVAL; break;
    }
    if (rc == 0)
        dispatch(q, now, out);
    timers_trim(q);
    return rc;
}

/* The call's place among the calls of its queue, in offering order. */
static int position(const sb_callq *q, const call *c)
{
    int pos = 1;
    for (const call *o = q->head; o != c; o = o->next)
        pos += o->queue == c->queue;
    return pos;
}

static void fire(sb_callq *q, const sb_timer *tm, sb_callq_actions *out)
{
    if (tm->kind == T_RING || tm->kind == T_WRAPUP) {
        agent *a = find_agent(q, (int64_t)tm->key);
        if (a == NULL || a->timer_gen != tm->seq)
            return;
        if (tm->kind == T_RING) {
            cancel_ring(a, SB_CALLQ_R_TIMEOUT, tm->at, out);
        } else {
            a->status = SB_CALLQ_AGENT_IDLE;
            a->timer_gen = 0;
        }
        return;
    }
    call *c = find_call(q, tm->key);
    if (c == NULL)
        return;
    if (tm->kind == T_ANNOUNCE && c->announce_gen == tm->seq) {
        emit(out, SB_CALLQ_ANNOUNCE, c, NULL)->position = position(q, c);
        c->announce_gen = arm(q, T_ANNOUNCE, c->id, tm->at + (int64_t)c->queue->cfg.announce_seconds * 1000);
    } else if (tm->kind == T_MAXWAIT && c->maxwait_gen == tm->seq) {
        leave(q, c, SB_CALLQ_R_TIMEOUT, tm->at, out);
    } else if (tm->kind == T_RETRY && c->retry_gen == tm->seq) {
        c->retry_gen = 0;
    }
}

/* Timers fire in deadline order, each batch with the same deadline as at
 * that instant, followed by one dispatch then. */
void sb_callq_tick(sb_callq *q, int64_t now, sb_callq_actions *out)
{
    for (;;) {
        const sb_timer *top = sb_theap_peek(&q->timers);
        if (top == NULL || top->at > now)
            break;
        /* the batch due at `at` (nothing in the heap is due before it) */
        int64_t at = top->at;
        sb_timer tm;
        while (sb_theap_pop_due(&q->timers, at, &tm))
            fire(q, &tm, out);
        dispatch(q, at, out);
    }
    timers_trim(q);
}

/* ---- metrics and checks ---- */

int sb_callq_stats_get(const sb_callq *q, int64_t team_id, int64_t now, sb_callq_stats *out)
{
    const queue *qu = find_queue(q, team_id);
    if (qu == NULL)
        return SB_ENOTFOUND;
    *out = qu->counters;
    out->waiting = qu->ncalls;
    out->longest_wait_ms = 0;
    for (const call *c = q->head; c != NULL; c = c->next)
        if (c->queue == qu && now - c->joined > out->longest_wait_ms)
            out->longest_wait_ms = now - c->joined;
    return 0;
}

int sb_callq_agent_get(const sb_callq *q, int64_t agent_id, sb_callq_agent_info *out)
{
    const agent *a = find_agent(q, agent_id);
    if (a == NULL)
        return SB_ENOTFOUND;
    *out = (sb_callq_agent_info){
        .status = a->status,
        .registered = a->registered,
        .available = a->available,
        .calls_answered = a->calls_answered,
        .wrapup_until = a->status == SB_CALLQ_AGENT_WRAPUP ? a->wrapup_until : 0,
    };
    if (a->status == SB_CALLQ_AGENT_RINGING)
        out->call_id = a->ring_call->id;
    else if (a->status == SB_CALLQ_AGENT_TALKING)
        out->call_id = a->talk_call;
    return 0;
}

size_t sb_callq_calls(const sb_callq *q)
{
    return q->ncalls;
}

void sb_callq_check(const sb_callq *q)
{
    size_t ringing = 0, legs = 0, ncalls = 0;
    for (size_t b = 0; b < AGENT_BUCKETS; b++) {
        for (const agent *a = q->agents[b]; a != NULL; a = a->hnext) {
            SB_ASSERT((a->status == SB_CALLQ_AGENT_RINGING) == (a->ring_call != NULL));
            SB_ASSERT(a->status != SB_CALLQ_AGENT_IDLE || a->timer_gen == 0);
            SB_ASSERT(a->status != SB_CALLQ_AGENT_TALKING || a->timer_gen == 0);
            if (a->status != SB_CALLQ_AGENT_RINGING)
                continue;
            ringing++;
            SB_ASSERT(find_call(q, a->ring_call->id) == a->ring_call);
            size_t seen = 0;
            for (size_t i = 0; i < a->ring_call->nlegs; i++)
                seen += a->ring_call->legs[i] == a;
            SB_ASSERT(seen == 1);
        }
    }
    const call *prev = NULL;
    for (const call *c = q->head; c != NULL; prev = c, c = c->next) {
        ncalls++;
        SB_ASSERT(c->prev == prev);
        SB_ASSERT(find_call(q, c->id) == c);
        SB_ASSERT(prev == NULL || prev->priority > c->priority ||
                  (prev->priority == c->priority && prev->joined <= c->joined));
        for (size_t i = 0; i < c->nlegs; i++)
            SB_ASSERT(c->legs[i]->ring_call == c);
        legs += c->nlegs;
    }
    SB_ASSERT(prev == q->tail);
    SB_ASSERT(ncalls == q->ncalls);
    SB_ASSERT(legs == ringing);
    size_t per_queue = 0;
    for (size_t i = 0; i < q->nqueues; i++)
        per_queue += q->queues[i]->ncalls;
    SB_ASSERT(per_queue == q->ncalls);
}
