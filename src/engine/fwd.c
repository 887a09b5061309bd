/* fwd.c - the forwarding scheme state machine (see fwd.h).
 *
 *  - schemes: shared, reference-counted copies; a call holds the one it
 *    started with, so a reload never changes a call halfway.
 *  - calls: a hash by the executor's call id. A call in the module always
 *    has at least one leg ringing and one live timer (the step's end, or
 *    the current sequential target's); a call with nothing left to ring
 *    leaves at once.
 *  - agents: a sorted array of (id, available, legs ringing now), so an
 *    agent rung for one call is not offered another.
 *  - timers: one heap (base/theap.c) of (at, call), as in ivr.c; a call
 *    knows its live timer's sequence number, and a timer is cancelled by
 *    forgetting it. */
#include "engine/fwd.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/theap.h"

typedef struct scheme_ref {
    int refs;
    sb_fwd_scheme s;
} scheme_ref;

typedef struct team {
    int64_t id;
    int64_t *agents;
    size_t n;
} team;

typedef struct agent_state {
    int64_t id;
    bool available;
    int ringing; /* this module's legs to the agent, over all calls */
} agent_state;

/* A target of the current step, teams expanded. */
typedef struct entry {
    sb_fwd_target target;
    int64_t team_id;
} entry;

typedef struct leg {
    uint32_t id;
    entry e;
} leg;

typedef struct fwd_call {
    uint64_t id;
    struct fwd_call *next; /* hash chain */
    scheme_ref *scheme;
    int step; /* index into scheme->s.steps */
    entry *entries;
    size_t nentries, cap_entries;
    size_t turn; /* sequential: the next entry to try */
    leg *legs;
    size_t nlegs, cap_legs;
    bool delivered;     /* some leg got through (see fwd.h) */
    uint64_t timer_seq; /* the live timer's sequence number; 0 = none */
    int64_t started;
} fwd_call;

struct sb_fwd {
    scheme_ref **schemes;
    size_t nschemes, cap_schemes;
    team *teams;
    size_t nteams, cap_teams;
    agent_state *agents; /* by id */
    size_t nagents, cap_agents;
    bool trunk;
    fwd_call **buckets;
    size_t nbuckets, ncalls;
    sb_theap timers; /* key: call id */
    uint32_t leg_next;
};

static void *grow(void *v, size_t *cap, size_t n, size_t size)
{
    if (n < *cap)
        return v;
    *cap = *cap ? *cap * 2 : 8;
    return sb_xrealloc(v, *cap * size);
}

const char *sb_fwd_action_name(sb_fwd_action_kind kind)
{
    static const char *const names[] = {"ring", "cancel", "bridge", "destination", "abandoned"};
    return (size_t)kind < SB_ARRAY_LEN(names) ? names[kind] : "?";
}

const char *sb_fwd_reason_name(sb_fwd_reason reason)
{
    static const char *const names[] = {"none", "answered", "timeout", "caller", "final", "backup", "no_scheme"};
    return (size_t)reason < SB_ARRAY_LEN(names) ? names[reason] : "?";
}

void sb_fwd_actions_reset(sb_fwd_actions *out)
{
    out->n = 0;
}

void sb_fwd_actions_free(sb_fwd_actions *out)
{
    free(out->v);
    *out = (sb_fwd_actions){0};
}

static sb_fwd_action *emit(sb_fwd_actions *out, sb_fwd_action_kind kind, const fwd_call *c)
{
    out->v = grow(out->v, &out->cap, out->n, sizeof *out->v);
    sb_fwd_action *a = &out->v[out->n++];
    *a = (sb_fwd_action){.kind = kind};
    if (c != NULL) {
        a->call_id = c->id;
        a->scheme_id = c->scheme->s.id;
        a->step = c->step + 1;
    }
    return a;
}

/* ---- configuration and state ---- */

static void scheme_unref(scheme_ref *r)
{
    if (r != NULL && --r->refs == 0)
        free(r);
}

sb_fwd *sb_fwd_new(void)
{
    sb_fwd *f = sb_xcalloc(1, sizeof *f);
    f->nbuckets = 64;
    f->buckets = sb_xcalloc(f->nbuckets, sizeof *f->buckets);
    return f;
}

void sb_fwd_clear_config(sb_fwd *f)
{
    for (size_t i = 0; i < f->nschemes; i++)
        scheme_unref(f->schemes[i]);
    for (size_t i = 0; i < f->nteams; i++)
        free(f->teams[i].agents);
    f->nschemes = f->nteams = 0;
}

static void call_free(fwd_call *c)
{
    scheme_unref(c->scheme);
    free(c->entries);
    free(c->legs);
    free(c);
}

void sb_fwd_free(sb_fwd *f)
{
    if (f == NULL)
        return;
    sb_fwd_clear_config(f);
    for (size_t b = 0; b < f->nbuckets; b++) {
        fwd_call *c = f->buckets[b];
        while (c != NULL) {
            fwd_call *next = c->next;
            call_free(c);
            c = next;
        }
    }
    free(f->buckets);
    sb_theap_close(&f->timers);
    free(f->schemes);
    free(f->teams);
    free(f->agents);
    free(f);
}

int sb_fwd_put_scheme(sb_fwd *f, const sb_fwd_scheme *scheme)
{
    if (scheme->id <= 0 || scheme->nsteps < 1 || scheme->nsteps > SB_FWD_MAX_STEPS)
        return SB_EINVAL;
    for (int i = 0; i < scheme->nsteps; i++)
        if (scheme->steps[i].ntargets < 1 || scheme->steps[i].ntargets > SB_FWD_MAX_TARGETS ||
            scheme->steps[i].seconds < 1)
            return SB_EINVAL;
    scheme_ref *r = sb_xmalloc(sizeof *r);
    r->refs = 1;
    r->s = *scheme;
    for (size_t i = 0; i < f->nschemes; i++)
        if (f->schemes[i]->s.id == scheme->id) {
            scheme_unref(f->schemes[i]);
            f->schemes[i] = r;
            return 0;
        }
    f->schemes = grow(f->schemes, &f->cap_schemes, f->nschemes, sizeof *f->schemes);
    f->schemes[f->nschemes++] = r;
    return 0;
}

int sb_fwd_put_team(sb_fwd *f, int64_t team_id, const int64_t *agent_ids, size_t n)
{
    if (team_id <= 0)
        return SB_EINVAL;
    team *t = NULL;
    for (size_t i = 0; i < f->nteams && t == NULL; i++)
        if (f->teams[i].id == team_id)
            t = &f->teams[i];
    if (t == NULL) {
        f->teams = grow(f->teams, &f->cap_teams, f->nteams, sizeof *f->teams);
        t = &f->teams[f->nteams++];
        *t = (team){.id = team_id};
    }
    free(t->agents);
    t->agents = sb_xcalloc(n ? n : 1, sizeof *t->agents);
    if (n > 0)
        memcpy(t->agents, agent_ids, n * sizeof *agent_ids);
    t->n = n;
    return 0;
}

static scheme_ref *find_scheme(const sb_fwd *f, int64_t id)
{
    for (size_t i = 0; i < f->nschemes; i++)
        if (f->schemes[i]->s.id == id)
            return f->schemes[i];
    return NULL;
}

static const team *find_team(const sb_fwd *f, int64_t id)
{
    for (size_t i = 0; i < f->nteams; i++)
        if (f->teams[i].id == id)
            return &f->teams[i];
    return NULL;
}

/* The agent's slot, or where it would go (binary search by id). */
static size_t agent_slot(const sb_fwd *f, int64_t id)
{
    size_t lo = 0, hi = f->nagents;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (f->agents[mid].id < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static agent_state *find_agent(const sb_fwd *f, int64_t id)
{
    size_t i = agent_slot(f, id);
    return i < f->nagents && f->agents[i].id == id ? &f->agents[i] : NULL;
}

static agent_state *agent_add(sb_fwd *f, int64_t id)
{
    size_t i = agent_slot(f, id);
    if (i < f->nagents && f->agents[i].id == id)
        return &f->agents[i];
    f->agents = grow(f->agents, &f->cap_agents, f->nagents, sizeof *f->agents);
    memmove(&f->agents[i + 1], &f->agents[i], (f->nagents - i) * sizeof *f->agents);
    f->nagents++;
    f->agents[i] = (agent_state){.id = id};
    return &f->agents[i];
}

void sb_fwd_set_agent(sb_fwd *f, int64_t agent_id, bool available)
{
    if (agent_id > 0)
        agent_add(f, agent_id)->available = available;
}

void sb_fwd_set_trunk(sb_fwd *f, bool up)
{
    f->trunk = up;
}

bool sb_fwd_ringing(const sb_fwd *f, int64_t agent_id)
{
    const agent_state *a = find_agent(f, agent_id);
    return a != NULL && a->ringing > 0;
}

/* ---- calls ---- */

static size_t bucket_of(const sb_fwd *f, uint64_t id)
{
    return (size_t)((id * 0x9E3779B97F4A7C15ull) >> 32) & (f->nbuckets - 1);
}

static fwd_call *find_call(const sb_fwd *f, uint64_t id)
{
    for (fwd_call *c = f->buckets[bucket_of(f, id)]; c != NULL; c = c->next)
        if (c->id == id)
            return c;
    return NULL;
}

static void rehash(sb_fwd *f)
{
    size_t old_n = f->nbuckets;
    fwd_call **old = f->buckets;
    f->nbuckets = old_n * 2;
    f->buckets = sb_xcalloc(f->nbuckets, sizeof *f->buckets);
    for (size_t b = 0; b < old_n; b++) {
        fwd_call *c = old[b];
        while (c != NULL) {
            fwd_call *next = c->next;
            size_t nb = bucket_of(f, c->id);
            c->next = f->buckets[nb];
            f->buckets[nb] = c;
            c = next;
        }
    }
    free(old);
}

static fwd_call *add_call(sb_fwd *f, uint64_t id, scheme_ref *scheme, int64_t now)
{
    if (f->ncalls >= f->nbuckets)
        rehash(f);
    fwd_call *c = sb_xcalloc(1, sizeof *c);
    c->id = id;
    c->scheme = scheme;
    scheme->refs++;
    c->step = -1;
    c->started = now;
    size_t b = bucket_of(f, id);
    c->next = f->buckets[b];
    f->buckets[b] = c;
    f->ncalls++;
    return c;
}

/* The call leaves the module; its legs must be gone already. */
static void remove_call(sb_fwd *f, fwd_call *c)
{
    SB_ASSERT(c->nlegs == 0);
    fwd_call **p = &f->buckets[bucket_of(f, c->id)];
    while (*p != c)
        p = &(*p)->next;
    *p = c->next;
    f->ncalls--;
    call_free(c);
}

size_t sb_fwd_calls(const sb_fwd *f)
{
    return f->ncalls;
}

/* ---- timers ---- */

static bool timer_live(const sb_timer *tm, void *ctx)
{
    const fwd_call *c = find_call(ctx, tm->key);
    return c != NULL && c->timer_seq == tm->seq;
}

/* Each call has at most one live timer: stale entries are dropped when
 * they outnumber the calls. */
static void arm(sb_fwd *f, fwd_call *c, int64_t at)
{
    sb_theap_compact_stale(&f->timers, f->ncalls, timer_live, f);
    c->timer_seq = sb_theap_push(&f->timers, (sb_timer){.at = at, .key = c->id});
}

static void disarm(fwd_call *c)
{
    c->timer_seq = 0;
}

/* Drops stale timers from the top, so that the next deadline is a live
 * one (no wake-up for nothing). */
static void timers_trim(sb_fwd *f)
{
    sb_theap_trim(&f->timers, timer_live, f);
}

int64_t sb_fwd_next_deadline(const sb_fwd *f)
{
    return sb_theap_next_at(&f->timers);
}

/* ---- decisions ---- */

static const sb_fwd_step *current_step(const fwd_call *c)
{
    return &c->scheme->s.steps[c->step];
}

static bool same_target(const sb_fwd_target *a, const sb_fwd_target *b)
{
    if (a->kind != b->kind)
        return false;
    if (a->kind == SB_FWD_TARGET_AGENT || a->kind == SB_FWD_TARGET_TEAM)
        return a->id == b->id;
    return strcmp(a->address, b->address) == 0;
}

static void add_entry(fwd_call *c, const sb_fwd_target *t, int64_t team_id)
{
    for (size_t i = 0; i < c->nentries; i++)
        if (same_target(&c->entries[i].target, t))
            return; /* rings once, at its first place */
    c->entries = grow(c->entries, &c->cap_entries, c->nentries, sizeof *c->entries);
    c->entries[c->nentries++] = (entry){.target = *t, .team_id = team_id};
}

/* The step's targets with teams replaced by their members. */
static void expand(const sb_fwd *f, fwd_call *c, const sb_fwd_step *st)
{
    c->nentries = 0;
    for (int i = 0; i < st->ntargets; i++) {
        const sb_fwd_target *t = &st->targets[i];
        if (t->kind != SB_FWD_TARGET_TEAM) {
            add_entry(c, t, 0);
            continue;
        }
        const team *tm = find_team(f, t->id);
        for (size_t k = 0; tm != NULL && k < tm->n; k++) {
            sb_fwd_target member = {.kind = SB_FWD_TARGET_AGENT, .id = tm->agents[k]};
            add_entry(c, &member, t->id);
        }
    }
}

static bool reachable(const sb_fwd *f, const entry *e)
{
    switch (e->target.kind) {
    case SB_FWD_TARGET_AGENT: {
        const agent_state *a = find_agent(f, e->target.id);
        return a != NULL && a->available && a->ringing == 0;
    }
    case SB_FWD_TARGET_NUMBER: return f->trunk;
    case SB_FWD_TARGET_SIP_URI: return true; /* INVITEd directly: no trunk needed */
    case SB_FWD_TARGET_TEAM: break;
    }
    return false;
}

static void ring(sb_fwd *f, fwd_call *c, const entry *e, sb_fwd_actions *out)
{
    uint32_t id = ++f->leg_next;
    if (id == 0)
        id = ++f->leg_next;
    c->legs = grow(c->legs, &c->cap_legs, c->nlegs, sizeof *c->legs);
    c->legs[c->nlegs++] = (leg){.id = id, .e = *e};
    if (e->target.kind == SB_FWD_TARGET_AGENT)
        agent_add(f, e->target.id)->ringing++;
    sb_fwd_action *a = emit(out, SB_FWD_RING, c);
    a->leg_id = id;
    a->target = e->target;
    a->team_id = e->team_id;
    a->timeout_seconds = current_step(c)->seconds;
}

/* Forgets leg `i` (no action). */
static void drop_leg(sb_fwd *f, fwd_call *c, size_t i)
{
    if (c->legs[i].e.target.kind == SB_FWD_TARGET_AGENT) {
        agent_state *a = find_agent(f, c->legs[i].e.target.id);
        SB_ASSERT(a != NULL && a->ringing > 0);
        a->ringing--;
    }
    memmove(&c->legs[i], &c->legs[i + 1], (c->nlegs - i - 1) * sizeof *c->legs);
    c->nlegs--;
}

static void cancel_legs(sb_fwd *f, fwd_call *c, sb_fwd_reason reason, sb_fwd_actions *out)
{
    for (size_t i = 0; i < c->nlegs; i++) {
        sb_fwd_action *a = emit(out, SB_FWD_CANCEL, c);
        a->leg_id = c->legs[i].id;
        a->target = c->legs[i].e.target;
        a->team_id = c->legs[i].e.team_id;
        a->reason = reason;
    }
    while (c->nlegs > 0)
        drop_leg(f, c, c->nlegs - 1);
}

static size_t find_leg(const fwd_call *c, uint32_t id)
{
    for (size_t i = 0; i < c->nlegs; i++)
        if (c->legs[i].id == id)
            return i;
    return SIZE_MAX;
}

/* Sequential: rings the next reachable target of the step; false when
 * none is left. */
static bool next_turn(sb_fwd *f, fwd_call *c, int64_t now, sb_fwd_actions *out)
{
    while (c->turn < c->nentries) {
        const entry *e = &c->entries[c->turn++];
        if (reachable(f, e)) {
            ring(f, c, e, out);
            arm(f, c, now + (int64_t)current_step(c)->seconds * 1000);
            return true;
        }
    }
    return false;
}

static void leave(sb_fwd *f, fwd_call *c, sb_fwd_action_kind kind, sb_fwd_reason reason, int64_t now,
                  sb_fwd_actions *out)
{
    disarm(c);
    sb_fwd_action *a = emit(out, kind, c);
    a->reason = reason;
    a->elapsed_ms = now - c->started;
    if (kind == SB_FWD_DESTINATION)
        a->dest = reason == SB_FWD_R_FINAL ? c->scheme->s.final_dest : c->scheme->s.backup;
    if (c->step >= c->scheme->s.nsteps)
        a->step = c->scheme->s.nsteps;
    remove_call(f, c);
}

/* Starts the steps after the current one until one rings something; past
 * the last, the call leaves for the final or the backup destination. */
static void next_step(sb_fwd *f, fwd_call *c, int64_t now, sb_fwd_actions *out)
{
    disarm(c);
    while (++c->step < c->scheme->s.nsteps) {
        const sb_fwd_step *st = current_step(c);
        expand(f, c, st);
        c->turn = 0;
        if (st->mode == SB_FWD_SEQUENTIAL) {
            if (next_turn(f, c, now, out))
                return;
            continue;
        }
        for (size_t i = 0; i < c->nentries; i++)
            if (reachable(f, &c->entries[i]))
                ring(f, c, &c->entries[i], out);
        if (c->nlegs > 0) {
            arm(f, c, now + (int64_t)st->seconds * 1000);
            return;
        }
    }
    leave(f, c, SB_FWD_DESTINATION, c->delivered ? SB_FWD_R_FINAL : SB_FWD_R_BACKUP, now, out);
}

/* The current ring is over without an answer (every leg of a together
 * step, or the sequential target's): on to what comes next. */
static void ring_over(sb_fwd *f, fwd_call *c, int64_t now, sb_fwd_actions *out)
{
    disarm(c);
    if (current_step(c)->mode == SB_FWD_SEQUENTIAL && next_turn(f, c, now, out))
        return;
    next_step(f, c, now, out);
}

static int start(sb_fwd *f, const sb_fwd_input *in, int64_t now, sb_fwd_actions *out)
{
    scheme_ref *r = find_scheme(f, in->scheme_id);
    if (r == NULL) {
        sb_fwd_action *a = emit(out, SB_FWD_DESTINATION, NULL);
        a->call_id = in->call_id;
        a->scheme_id = in->scheme_id;
        a->reason = SB_FWD_R_NO_SCHEME;
        a->dest = (sb_ivr_target){.what = SB_IVR_DO_HANGUP};
        return 0;
    }
    fwd_call *c = add_call(f, in->call_id, r, now);
    next_step(f, c, now, out);
    return 0;
}

static int handle(sb_fwd *f, const sb_fwd_input *in, int64_t now, sb_fwd_actions *out);

int sb_fwd_handle(sb_fwd *f, const sb_fwd_input *in, int64_t now, sb_fwd_actions *out)
{
    int rc = handle(f, in, now, out);
    timers_trim(f);
    return rc;
}

static int handle(sb_fwd *f, const sb_fwd_input *in, int64_t now, sb_fwd_actions *out)
{
    fwd_call *c = find_call(f, in->call_id);
    if (in->kind == SB_FWD_IN_START)
        return c != NULL ? SB_ECONFLICT : start(f, in, now, out);
    if (c == NULL)
        return SB_ENOTFOUND;
    switch (in->kind) {
    case SB_FWD_IN_LEG_ANSWERED: {
        size_t i = find_leg(c, in->leg_id);
        if (i == SIZE_MAX)
            return SB_ENOTFOUND;
        leg won = c->legs[i];
        drop_leg(f, c, i);
        cancel_legs(f, c, SB_FWD_R_ANSWERED, out);
        c->delivered = true;
        sb_fwd_action *a = emit(out, SB_FWD_BRIDGE, c);
        a->leg_id = won.id;
        a->target = won.e.target;
        a->team_id = won.e.team_id;
        a->reason = SB_FWD_R_ANSWERED;
        a->elapsed_ms = now - c->started;
        disarm(c);
        remove_call(f, c);
        return 0;
    }
    case SB_FWD_IN_LEG_FAILED: {
        if (in->fail != SB_FWD_FAIL_NO_ANSWER && in->fail != SB_FWD_FAIL_BUSY && in->fail != SB_FWD_FAIL_UNREACHABLE)
            return SB_EINVAL;
        size_t i = find_leg(c, in->leg_id);
        if (i == SIZE_MAX)
            return SB_ENOTFOUND;
        if (in->fail != SB_FWD_FAIL_UNREACHABLE)
            c->delivered = true;
        drop_leg(f, c, i);
        if (c->nlegs == 0)
            ring_over(f, c, now, out);
        return 0;
    }
    case SB_FWD_IN_HANGUP:
        cancel_legs(f, c, SB_FWD_R_CALLER, out);
        leave(f, c, SB_FWD_ABANDONED, SB_FWD_R_CALLER, now, out);
        return 0;
    case SB_FWD_IN_START: break;
    }
    return SB_EINVAL;
}

void sb_fwd_tick(sb_fwd *f, int64_t now, sb_fwd_actions *out)
{
    sb_timer tm;
    while (sb_theap_pop_due(&f->timers, now, &tm)) {
        fwd_call *c = find_call(f, tm.key);
        if (c == NULL || c->timer_seq != tm.seq)
            continue;
        /* the legs rang their time: they count as delivered */
        c->delivered = true;
        cancel_legs(f, c, SB_FWD_R_TIMEOUT, out);
        ring_over(f, c, now, out);
    }
    timers_trim(f);
}

void sb_fwd_check(const sb_fwd *f)
{
    size_t calls = 0;
    int *ringing = sb_xcalloc(f->nagents ? f->nagents : 1, sizeof *ringing);
    for (size_t b = 0; b < f->nbuckets; b++)
        for (const fwd_call *c = f->buckets[b]; c != NULL; c = c->next) {
            calls++;
            SB_ASSERT(bucket_of(f, c->id) == b);
            SB_ASSERT(c->scheme != NULL && c->scheme->refs > 0);
            SB_ASSERT(c->step >= 0 && c->step < c->scheme->s.nsteps);
            SB_ASSERT(c->nlegs > 0 && c->timer_seq != 0);
            if (current_step(c)->mode == SB_FWD_SEQUENTIAL)
                SB_ASSERT(c->nlegs == 1);
            for (size_t i = 0; i < c->nlegs; i++) {
                SB_ASSERT(c->legs[i].id != 0 && c->legs[i].e.target.kind != SB_FWD_TARGET_TEAM);
                for (size_t j = 0; j < i; j++)
                    SB_ASSERT(!same_target(&c->legs[i].e.target, &c->legs[j].e.target));
                if (c->legs[i].e.target.kind == SB_FWD_TARGET_AGENT) {
                    size_t k = agent_slot(f, c->legs[i].e.target.id);
                    SB_ASSERT(k < f->nagents && f->agents[k].id == c->legs[i].e.target.id);
                    ringing[k]++;
                }
            }
            bool armed = false;
            for (size_t h = 0; h < f->timers.n && !armed; h++)
                armed = f->timers.v[h].key == c->id && f->timers.v[h].seq == c->timer_seq;
            SB_ASSERT(armed);
        }
    SB_ASSERT(calls == f->ncalls);
    for (size_t k = 0; k < f->nagents; k++) {
        SB_ASSERT(ringing[k] == f->agents[k].ringing);
        SB_ASSERT(k == 0 || f->agents[k - 1].id < f->agents[k].id);
    }
    free(ringing);
}
