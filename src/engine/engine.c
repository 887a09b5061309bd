/* engine.c - routing, queues and SLA clocks (see engine.h).
 *
 * Layout of the state:
 *  - tickets: a chained hash by id, holding only live work (new, open,
 *    pending); a resolved or closed ticket leaves the engine, and comes back
 *    through SB_EV_TICKET_NEW if it is reopened.
 *  - teams: an array; each keeps its members (sorted by agent id, the
 *    round-robin order) and its queue, sorted by priority (urgent first),
 *    then age (created_at), then id, so a returning ticket keeps its place.
 *  - agents: an array; load is the sum of the weights of the tickets they
 *    own that are new or open (a pending ticket waits for the customer and
 *    takes no attention).
 *  - timers: one heap (base/theap.c) of (at, kind, ticket/agent, gen). A
 *    timer is cancelled by bumping the generation it carries, and a stale
 *    entry is skipped when it comes up; the heap is compacted when stale
 *    entries outnumber live ones. */
#include "engine/engine.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/theap.h"

#define LOAD_EPSILON 1e-9

typedef struct ticket ticket;
typedef struct agent agent;
typedef struct team team;

typedef struct sla_clock_state {
    bool active; /* started and not stopped */
    bool paused; /* active, but the ticket is pending */
    bool done;   /* stopped */
    bool warned;
    bool breached;
    int64_t target;   /* ms of (business or calendar) time */
    int64_t consumed; /* ms used before the current segment */
    int64_t seg_start;
    int64_t due;     /* 0 while paused or inactive */
    int64_t warn_at; /* 0 if no warning is pending */
} sla_clock_state;

/* What routing reads of a ticket, all the time. */
typedef struct ticket_core {
    int64_t id, number, contact_id;
    sb_channel_kind channel;
    sb_status status;
    sb_priority priority;
    int64_t team_id, assignee_id, created_at;
    sb_token skill, language;
    bool vip;
    int64_t owner_id;
    sb_token *tags; /* SB_ENGINE_MAX_TAGS of room once the ticket has any; NULL before */
    int ntags;
    sb_token channel_type, contact_language;
} ticket_core;

/* What only rules and templates read: the contact's name, phone and email,
 * the subject, the contact's tags and attributes, in one allocation with
 * only the strings that are there. An open ticket costs the engine a few
 * hundred bytes, not the input's fixed-size buffers. */
typedef struct about {
    const char *contact_name, *contact_phone, *contact_email, *subject;
    const char **contact_tags;
    int ncontact_tags;
    const char **attr_keys, **attr_values;
    int nattrs;
} about;

struct ticket {
    ticket_core info;
    about *about;
    ticket *hash_next;
    team *queue_team; /* the queue it waits in; NULL if none */
    double weight;
    bool counted; /* its weight is in the assignee's load */
    int64_t assigned_at;
    int64_t preferred_id; /* sticky: the agent it waits for */
    int64_t sticky_until;
    int64_t ignored_by;    /* the last agent who let it go unanswered */
    bool queued_for_owner; /* counted in sb_engine.waiting_for_owner */
    bool awaiting_agent;
    int64_t waiting_since; /* the customer's first message not yet answered */
    int64_t first_response_at;
    int reassignments;                        /* owner changes after the first assignment */
    int64_t reported_due[SB_SLA_CLOCK_COUNT]; /* as last told in an SLA_DUE effect */
    bool ever_assigned;
    int64_t policy_id;
    sla_clock_state sla[SB_SLA_CLOCK_COUNT];
    uint32_t gen_sla, gen_unanswered, gen_sticky, gen_time;
    /* for rules */
    char *last_text;           /* the customer's last message (bounded copy) */
    const char *text_language; /* its guessed language, once asked */
    bool text_language_known;
    bool last_auto_reply;
    int64_t last_customer_at, last_agent_at, last_activity_at;
    int64_t last_responder;
    int64_t *fired; /* once-per-ticket rules that ran */
    int nfired;
};

static void core_from_info(ticket_core *c, const sb_ticket_info *in)
{
    *c = (ticket_core){.id = in->id,
                       .number = in->number,
                       .contact_id = in->contact_id,
                       .channel = in->channel,
                       .status = in->status,
                       .priority = in->priority,
                       .team_id = in->team_id,
                       .assignee_id = in->assignee_id,
                       .created_at = in->created_at,
                       .skill = in->skill,
                       .language = in->language,
                       .vip = in->vip,
                       .owner_id = in->owner_id,
                       .ntags = in->ntags,
                       .channel_type = in->channel_type,
                       .contact_language = in->contact_language};
    if (in->ntags > 0) {
        c->tags = sb_xcalloc(SB_ENGINE_MAX_TAGS, sizeof *c->tags);
        memcpy(c->tags, in->tags, (size_t)in->ntags * sizeof *c->tags);
    }
}

/* Copies the non-empty strings of `in` into one allocation. */
static about *about_copy(const sb_ticket_info *in)
{
    const char *one[4] = {in->contact_name, in->contact_phone, in->contact_email, in->subject};
    size_t need = sizeof(about), n = (size_t)in->ncontact_tags + 2 * (size_t)in->nattrs;
    need += n * sizeof(char *);
    for (int i = 0; i < 4; i++)
        need += strlen(one[i]) + 1;
    for (int i = 0; i < in->ncontact_tags; i++)
        need += strlen(in->contact_tags[i].v) + 1;
    for (int i = 0; i < in->nattrs; i++)
        need += strlen(in->attr_keys[i].v) + strlen(in->attr_values[i]) + 2;
    about *a = sb_xmalloc(need);
    const char **ptrs = (const char **)(a + 1);
    char *p = (char *)(ptrs + n);
#define TAKE(dst, src)                                                                                                 \
    do {                                                                                                               \
        size_t len_ = strlen(src) + 1;                                                                                 \
        memcpy(p, (src), len_);                                                                                        \
        (dst) = p;                                                                                                     \
        p += len_;                                                                                                     \
    } while (0)
    TAKE(a->contact_name, in->contact_name);
    TAKE(a->contact_phone, in->contact_phone);
    TAKE(a->contact_email, in->contact_email);
    TAKE(a->subject, in->subject);
    a->contact_tags = ptrs;
    a->ncontact_tags = in->ncontact_tags;
    for (int i = 0; i < in->ncontact_tags; i++)
        TAKE(ptrs[i], in->contact_tags[i].v);
    a->attr_keys = ptrs + in->ncontact_tags;
    a->attr_values = a->attr_keys + in->nattrs;
    a->nattrs = in->nattrs;
    for (int i = 0; i < in->nattrs; i++) {
        TAKE(a->attr_keys[i], in->attr_keys[i].v);
        TAKE(a->attr_values[i], in->attr_values[i]);
    }
#undef TAKE
    return a;
}

struct agent {
    sb_engine_agent_cfg cfg;
    sb_presence presence;
    double load;
    int open; /* tickets owned (new, open or pending) */
    int64_t absent_until;
    int64_t deputy_id;
    int64_t last_assigned_at;
    int missed_in_row;    /* unanswered reassignments since their last reply */
    uint64_t reserved_in; /* kept free for an earlier ticket during drain number ... */
    uint32_t gen_absence;
    bool on_call; /* on a phone call: fully busy whatever their load */
};

struct team {
    sb_engine_team_cfg cfg;
    agent **members; /* sorted by id */
    size_t nmembers, cap_members;
    ticket **queue;
    size_t nqueue, cap_queue;
    int64_t rr_last; /* agent id last assigned by round robin */
};

typedef enum timer_kind {
    TIMER_SLA,
    TIMER_UNANSWERED,
    TIMER_STICKY,
    TIMER_ABSENCE_END,
    TIMER_RULE, /* a time.* rule of a ticket */
    TIMER_TASK, /* a task's reminder or due time */
} timer_kind;

typedef struct template_entry {
    int64_t id;
    char language[8];
    sb_template *tpl;
} template_entry;

/* When automatic replies went to a contact in the last hour. */
typedef struct contact_rate {
    int64_t contact_id;
    int64_t at[16];
    int n;
    struct contact_rate *next;
} contact_rate;

/* A rule run waiting its turn: triggers raised while the engine is in the
 * middle of something (a queue pass) run when that is done. */
typedef struct pending_rule {
    int64_t ticket_id;
    sb_trigger trigger;
    int64_t origin; /* the rule that caused it, which must not run again */
    int depth;
} pending_rule;

typedef struct task {
    sb_task_info info;
    bool reminded, overdue;
    uint32_t gen;
} task;

typedef struct calendar_entry {
    int64_t id;
    sb_calendar *cal;
} calendar_entry;

struct sb_engine {
    sb_engine_cfg cfg;
    ticket **buckets;
    size_t nbuckets, ntickets;
    team **teams;
    size_t nteams;
    team unassigned; /* team 0: the inbox of tickets with no team (manual) */
    agent **agents;  /* in the order they were added (iteration order) */
    agent **by_id;   /* the same, sorted by id: find_agent is called per agent per call event */
    size_t nagents;
    calendar_entry *calendars;
    size_t ncalendars;
    sb_sla_policy *policies;
    size_t npolicies;
    sb_theap timers; /* key: ticket or agent id; aux: a time rule's id */
    /* Queued tickets that entered their queue waiting for their owner (an
     * upper bound: a preference that lapses in the queue is counted until
     * the ticket leaves it). Zero spares the scan in agent_freed. */
    size_t waiting_for_owner;
    uint64_t drain_seq;
    uint32_t gen_next; /* every timer generation is unique, so a timer of a
                        * forgotten ticket can never match a reopened one */
    /* automation */
    sb_rule **rules;
    size_t nrules;
    template_entry *templates;
    size_t ntemplates;
    contact_rate **rates;
    size_t nrates_buckets, nrates;
    pending_rule *pending;
    size_t npending, cap_pending;
    task *tasks; /* open tasks; few enough to keep in an array */
    size_t ntasks, cap_tasks;
    int depth;      /* of the rule run in progress */
    int64_t origin; /* the rule whose actions are being applied; 0 = none */
    sb_engine_leave_fn on_leave;
    void *on_leave_arg;
};

/* ---- names ---- */

static const char *const status_names[] = {"new", "open", "pending", "resolved", "closed"};
static const char *const priority_names[] = {"low", "normal", "high", "urgent"};
static const char *const strategy_names[] = {"round_robin", "least_busy", "manual"};
static const char *const presence_names[] = {"offline", "away", "online"};
static const char *const clock_names[] = {"first_response", "next_response", "resolution"};
static const char *const sla_state_names[] = {"warning", "breached", "met", "missed"};

static int parse_name(const char *z, const char *const *names, int n)
{
    for (int i = 0; z != NULL && i < n; i++)
        if (strcmp(z, names[i]) == 0)
            return i;
    return -1;
}

#define NAME_OF(names, v) ((unsigned)(v) < SB_ARRAY_LEN(names) ? names[v] : "?")

const char *sb_status_name(sb_status s)
{
    return NAME_OF(status_names, s);
}

const char *sb_priority_name(sb_priority p)
{
    return NAME_OF(priority_names, p);
}

const char *sb_strategy_name(sb_strategy s)
{
    return NAME_OF(strategy_names, s);
}

const char *sb_presence_name(sb_presence p)
{
    return NAME_OF(presence_names, p);
}

const char *sb_sla_clock_name(sb_sla_clock c)
{
    return NAME_OF(clock_names, c);
}

const char *sb_sla_state_name(sb_sla_state s)
{
    return NAME_OF(sla_state_names, s);
}

#define PARSER(fn, type, names)                                                                                        \
    int fn(const char *z, type *out)                                                                                   \
    {                                                                                                                  \
        int i = parse_name(z, names, (int)SB_ARRAY_LEN(names));                                                        \
        if (i < 0)                                                                                                     \
            return SB_EINVAL;                                                                                          \
        *out = (type)i;                                                                                                \
        return 0;                                                                                                      \
    }
PARSER(sb_status_parse, sb_status, status_names)
PARSER(sb_priority_parse, sb_priority, priority_names)
PARSER(sb_strategy_parse, sb_strategy, strategy_names)
PARSER(sb_presence_parse, sb_presence, presence_names)

/* ---- effects ---- */

void sb_effects_reset(sb_effects *fx)
{
    for (size_t i = 0; i < fx->n; i++)
        free(fx->v[i].text);
    fx->n = 0;
}

void sb_effects_free(sb_effects *fx)
{
    sb_effects_reset(fx);
    free(fx->v);
    *fx = (sb_effects){0};
}

static sb_effect *push_effect(sb_effects *fx, sb_effect_kind kind, const ticket *t, int64_t now)
{
    if (fx->n == fx->cap) {
        fx->cap = fx->cap ? fx->cap * 2 : 16;
        fx->v = sb_xrealloc(fx->v, fx->cap * sizeof *fx->v);
    }
    sb_effect *e = &fx->v[fx->n++];
    memset(e, 0, sizeof *e);
    e->kind = kind;
    e->at = now;
    if (t != NULL) {
        e->ticket_id = t->info.id;
        e->agent_id = t->info.assignee_id;
        e->team_id = t->info.team_id;
        e->priority = t->info.priority;
    }
    return e;
}

/* automation, defined below */
static void raise_trigger(sb_engine *eng, const ticket *t, sb_trigger trigger);
static void run_rules(sb_engine *eng, ticket *t, sb_trigger trigger, int64_t now, sb_effects *fx);
static void arm_time_rules(sb_engine *eng, ticket *t, int64_t now);
static void auto_reply(sb_engine *eng, ticket *t, int64_t template_id, int64_t now, const char *reason, sb_effects *fx);
static void run_pending(sb_engine *eng, int64_t now, sb_effects *fx);
static void fire_time_rule(sb_engine *eng, ticket *t, int64_t rule_id, int64_t now, sb_effects *fx);
static void set_text(ticket *t, const char *text, bool is_auto_reply);
static void ticket_free(ticket *t);
static const template_entry *find_template(const sb_engine *eng, int64_t id, const char *lang);

/* ---- lookups ---- */

static size_t hash_id(int64_t id, size_t n)
{
    uint64_t x = (uint64_t)id * 0x9E3779B97F4A7C15ull;
    return (size_t)(x >> 17) & (n - 1);
}

static ticket *find_ticket(const sb_engine *eng, int64_t id)
{
    for (ticket *t = eng->buckets[hash_id(id, eng->nbuckets)]; t != NULL; t = t->hash_next)
        if (t->info.id == id)
            return t;
    return NULL;
}

static void hash_insert(sb_engine *eng, ticket *t)
{
    if (eng->ntickets + 1 > eng->nbuckets) {
        size_t n = eng->nbuckets * 2;
        ticket **b = sb_xcalloc(n, sizeof *b);
        for (size_t i = 0; i < eng->nbuckets; i++) {
            ticket *next;
            for (ticket *x = eng->buckets[i]; x != NULL; x = next) {
                next = x->hash_next;
                size_t h = hash_id(x->info.id, n);
                x->hash_next = b[h];
                b[h] = x;
            }
        }
        free(eng->buckets);
        eng->buckets = b;
        eng->nbuckets = n;
    }
    size_t h = hash_id(t->info.id, eng->nbuckets);
    t->hash_next = eng->buckets[h];
    eng->buckets[h] = t;
    eng->ntickets++;
}

static void hash_remove(sb_engine *eng, ticket *t)
{
    ticket **pp = &eng->buckets[hash_id(t->info.id, eng->nbuckets)];
    while (*pp != NULL && *pp != t)
        pp = &(*pp)->hash_next;
    if (*pp == t) {
        *pp = t->hash_next;
        eng->ntickets--;
    }
}

static agent *find_agent(const sb_engine *eng, int64_t id)
{
    size_t lo = 0, hi = eng->nagents;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int64_t v = eng->by_id[mid]->cfg.id;
        if (v == id)
            return eng->by_id[mid];
        if (v < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

static team *find_team(sb_engine *eng, int64_t id)
{
    if (id == 0)
        return &eng->unassigned;
    for (size_t i = 0; i < eng->nteams; i++)
        if (eng->teams[i]->cfg.id == id)
            return eng->teams[i];
    return NULL;
}

static const sb_calendar *find_calendar(const sb_engine *eng, int64_t id)
{
    for (size_t i = 0; id != 0 && i < eng->ncalendars; i++)
        if (eng->calendars[i].id == id)
            return eng->calendars[i].cal;
    return NULL;
}

static const sb_sla_policy *find_policy(const sb_engine *eng, int64_t id)
{
    for (size_t i = 0; id != 0 && i < eng->npolicies; i++)
        if (eng->policies[i].id == id)
            return &eng->policies[i];
    return NULL;
}

static bool agent_in_team(const agent *a, int64_t team_id)
{
    for (int i = 0; i < a->cfg.nteams; i++)
        if (a->cfg.teams[i] == team_id)
            return true;
    return false;
}

static bool has_token(const sb_token *v, int n, const char *z)
{
    for (int i = 0; i < n; i++)
        if (strcmp(v[i].v, z) == 0)
            return true;
    return false;
}

/* ---- timers ---- */

/* Timers due at the same ms: by kind, then ticket or agent id. Time rules of
 * one ticket due together stay tied (the heap's shape decides). */
static bool timer_tie(const sb_timer *a, const sb_timer *b)
{
    if (a->kind != b->kind)
        return a->kind < b->kind;
    return (int64_t)a->key < (int64_t)b->key;
}

static const task *find_task_const(const sb_engine *eng, int64_t id)
{
    for (size_t i = 0; i < eng->ntasks; i++)
        if (eng->tasks[i].info.id == id)
            return &eng->tasks[i];
    return NULL;
}

static bool timer_live(const sb_engine *eng, const sb_timer *tm)
{
    int64_t id = (int64_t)tm->key;
    if (tm->kind == TIMER_TASK) {
        const task *k = find_task_const(eng, id);
        return k != NULL && k->gen == tm->gen;
    }
    if (tm->kind == TIMER_ABSENCE_END) {
        const agent *a = find_agent(eng, id);
        return a != NULL && a->gen_absence == tm->gen;
    }
    const ticket *t = find_ticket(eng, id);
    if (t == NULL)
        return false;
    switch ((timer_kind)tm->kind) {
    case TIMER_SLA: return t->gen_sla == tm->gen;
    case TIMER_UNANSWERED: return t->gen_unanswered == tm->gen;
    case TIMER_STICKY: return t->gen_sticky == tm->gen;
    case TIMER_RULE: return t->gen_time == tm->gen;
    default: return false;
    }
}

static bool timer_keep(const sb_timer *tm, void *ctx)
{
    return timer_live(ctx, tm);
}

static void push_timer(sb_engine *eng, sb_timer tm)
{
    if (tm.at == INT64_MAX)
        return;
    /* drops cancelled entries once they outnumber the live ones */
    size_t live_bound = eng->ntickets * 3 + eng->nagents + 1024;
    sb_theap_compact_stale(&eng->timers, live_bound, timer_keep, eng);
    sb_theap_push(&eng->timers, tm);
}

static void arm(sb_engine *eng, timer_kind kind, int64_t id, uint32_t gen, int64_t at)
{
    push_timer(eng, (sb_timer){.at = at, .key = (uint64_t)id, .gen = gen, .kind = (uint8_t)kind});
}

static void arm_rule(sb_engine *eng, int64_t ticket_id, int64_t rule_id, uint32_t gen, int64_t at)
{
    push_timer(eng, (sb_timer){.at = at, .key = (uint64_t)ticket_id, .aux = rule_id, .gen = gen, .kind = TIMER_RULE});
}

int64_t sb_engine_next_deadline(const sb_engine *eng)
{
    return sb_theap_next_at(&eng->timers);
}

/* ---- load and availability ---- */

static bool status_live(sb_status s)
{
    return s == SB_STATUS_NEW || s == SB_STATUS_OPEN || s == SB_STATUS_PENDING;
}

static bool status_weighs(sb_status s)
{
    return s == SB_STATUS_NEW || s == SB_STATUS_OPEN;
}

/* Brings the assignee's load in line with the ticket's status and owner. */
static void recount(sb_engine *eng, ticket *t)
{
    bool want = t->info.assignee_id != 0 && status_weighs(t->info.status);
    if (want == t->counted)
        return;
    agent *a = find_agent(eng, t->info.assignee_id);
    if (a == NULL) {
        t->counted = false;
        return;
    }
    a->load += want ? t->weight : -t->weight;
    if (fabs(a->load) < LOAD_EPSILON)
        a->load = 0;
    t->counted = want;
}

static bool absent(const agent *a, int64_t now)
{
    return a->absent_until > now;
}

/* The agent who stands in for `a` right now: a itself, or its deputy while
 * it is absent (one hop: a deputy's own deputy is not followed). */
static agent *standing_in(sb_engine *eng, agent *a, int64_t now)
{
    if (a == NULL || !absent(a, now))
        return a;
    agent *d = find_agent(eng, a->deputy_id);
    return d != NULL && !absent(d, now) ? d : NULL;
}

/* What `t` weighs on `a`: a call takes the whole agent, whatever their
 * capacity; other channels weigh what the configuration says. */
static double weight_on(const sb_engine *eng, const agent *a, const ticket *t)
{
    return t->info.channel == SB_CHANNEL_CALL ? a->cfg.capacity : eng->cfg.weight[t->info.channel];
}

static bool has_room(const sb_engine *eng, const agent *a, const ticket *t, int64_t now)
{
    if (a->presence != SB_PRESENCE_ONLINE || absent(a, now) || a->on_call)
        return false;
    return a->load + weight_on(eng, a, t) <= a->cfg.capacity + LOAD_EPSILON;
}

/* Whether `a` could take `t` once they have room. */
static bool suits(const agent *a, const ticket *t, int64_t now)
{
    if (a->presence != SB_PRESENCE_ONLINE || absent(a, now))
        return false;
    if (t->info.skill.v[0] != '\0' && !has_token(a->cfg.skills, a->cfg.nskills, t->info.skill.v))
        return false;
    if (t->info.language.v[0] != '\0' && !has_token(a->cfg.languages, a->cfg.nlanguages, t->info.language.v))
        return false;
    return true;
}

static bool can_take(const sb_engine *eng, const agent *a, const ticket *t, int64_t now)
{
    return a->reserved_in != eng->drain_seq && has_room(eng, a, t, now) && suits(a, t, now);
}

/* ---- queues ---- */

static bool queue_before(const ticket *a, const ticket *b)
{
    if (a->info.priority != b->info.priority)
        return a->info.priority > b->info.priority;
    if (a->info.created_at != b->info.created_at)
        return a->info.created_at < b->info.created_at;
    return a->info.id < b->info.id;
}

static size_t queue_lower_bound(const team *tm, const ticket *t)
{
    size_t lo = 0, hi = tm->nqueue;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (queue_before(tm->queue[mid], t))
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static void dequeue(sb_engine *eng, ticket *t)
{
    team *tm = t->queue_team;
    if (tm == NULL)
        return;
    if (t->queued_for_owner) {
        eng->waiting_for_owner--;
        t->queued_for_owner = false;
    }
    size_t i = queue_lower_bound(tm, t);
    SB_ASSERT(i < tm->nqueue && tm->queue[i] == t);
    memmove(&tm->queue[i], &tm->queue[i + 1], (tm->nqueue - i - 1) * sizeof *tm->queue);
    tm->nqueue--;
    t->queue_team = NULL;
}

static void queue_insert(team *tm, ticket *t)
{
    if (tm->nqueue == tm->cap_queue) {
        tm->cap_queue = tm->cap_queue ? tm->cap_queue * 2 : 16;
        tm->queue = sb_xrealloc(tm->queue, tm->cap_queue * sizeof *tm->queue);
    }
    size_t i = queue_lower_bound(tm, t);
    memmove(&tm->queue[i + 1], &tm->queue[i], (tm->nqueue - i) * sizeof *tm->queue);
    tm->queue[i] = t;
    tm->nqueue++;
    t->queue_team = tm;
}

static void enqueue(sb_engine *eng, ticket *t, int64_t now, const char *reason, sb_effects *fx)
{
    team *tm = find_team(eng, t->info.team_id);
    if (tm == NULL) { /* the team was removed: the shared inbox keeps it */
        t->info.team_id = 0;
        tm = &eng->unassigned;
    }
    if (t->queue_team == tm)
        return;
    dequeue(eng, t);
    queue_insert(tm, t);
    if (t->preferred_id != 0) {
        t->queued_for_owner = true;
        eng->waiting_for_owner++;
    }
    sb_effect *e = push_effect(fx, SB_FX_QUEUE, t, now);
    e->reason = reason;
}

/* ---- notifications ---- */

static void notify(sb_engine *eng, int64_t agent_id, const ticket *t, int64_t now, const char *reason, sb_effects *fx)
{
    agent *a = standing_in(eng, find_agent(eng, agent_id), now);
    if (a == NULL)
        return;
    sb_effect *e = push_effect(fx, SB_FX_NOTIFY, t, now);
    e->agent_id = a->cfg.id;
    e->reason = reason;
}

/* ---- assignment ---- */

static void unanswered_arm(sb_engine *eng, ticket *t, int64_t now)
{
    t->gen_unanswered = ++eng->gen_next;
    team *tm = find_team(eng, t->info.team_id);
    int64_t after = tm != NULL ? tm->cfg.unanswered_ms[t->info.channel] : 0;
    if (after <= 0 || t->info.assignee_id == 0 || !status_weighs(t->info.status) || !t->awaiting_agent)
        return;
    arm(eng, TIMER_UNANSWERED, t->info.id, t->gen_unanswered, now + after);
}

static void set_assignee(sb_engine *eng, ticket *t, agent *a, int64_t now, const char *reason, sb_effects *fx)
{
    int64_t old = t->info.assignee_id, next = a != NULL ? a->cfg.id : 0;
    if (old == next)
        return;
    agent *prev = find_agent(eng, old);
    if (prev != NULL) {
        if (t->counted)
            prev->load -= t->weight;
        if (fabs(prev->load) < LOAD_EPSILON)
            prev->load = 0;
        prev->open--;
    }
    t->counted = false;
    t->info.assignee_id = next;
    if (a != NULL) {
        a->open++;
        a->last_assigned_at = now;
        t->assigned_at = now;
        t->weight = weight_on(eng, a, t);
        dequeue(eng, t);
        recount(eng, t);
    }
    if (next != 0 && t->ever_assigned)
        t->reassignments++;
    if (next != 0)
        t->ever_assigned = true;
    sb_effect *e = push_effect(fx, SB_FX_ASSIGN, t, now);
    e->reason = reason;
    e->rule_id = eng->origin;
    if (a != NULL)
        notify(eng, a->cfg.id, t, now, "assigned", fx);
    unanswered_arm(eng, t, now);
    raise_trigger(eng, t, SB_TRIGGER_ASSIGNMENT_CHANGED);
}

/* Picks the member of `tm` who should get `t`, or NULL. */
static agent *choose(sb_engine *eng, team *tm, const ticket *t, int64_t now)
{
    if (tm->nmembers == 0 || tm->cfg.strategy == SB_STRATEGY_MANUAL)
        return NULL;
    /* Members in rotation order, starting after the one last assigned:
     * both strategies use it, round robin to pick the next, least busy to
     * break ties between equally loaded agents fairly rather than by id. */
    size_t start = 0;
    while (start < tm->nmembers && tm->members[start]->cfg.id <= tm->rr_last)
        start++;
    agent *best = NULL, *fallback = NULL;
    for (size_t k = 0; k < tm->nmembers; k++) {
        agent *a = tm->members[(start + k) % tm->nmembers];
        if (!can_take(eng, a, t, now))
            continue;
        if (a->cfg.id == t->ignored_by) { /* only if nobody else can */
            if (fallback == NULL)
                fallback = a;
            continue;
        }
        if (tm->cfg.strategy == SB_STRATEGY_ROUND_ROBIN) {
            best = a;
            break;
        }
        if (best == NULL || a->load < best->load - LOAD_EPSILON ||
            (fabs(a->load - best->load) <= LOAD_EPSILON && a->last_assigned_at < best->last_assigned_at))
            best = a;
    }
    return best != NULL ? best : fallback;
}

/* Tries the sticky owner (or the deputy standing in). Returns true when the
 * ticket is placed or still waits for them. */
static bool route_sticky(sb_engine *eng, ticket *t, int64_t now, sb_effects *fx)
{
    if (t->preferred_id == 0)
        return false;
    agent *owner = find_agent(eng, t->preferred_id);
    agent *a = standing_in(eng, owner, now);
    if (a != NULL && can_take(eng, a, t, now)) {
        t->preferred_id = 0;
        t->gen_sticky = ++eng->gen_next;
        set_assignee(eng, t, a, now, a == owner ? "sticky" : "deputy", fx);
        return true;
    }
    if (owner == NULL || t->sticky_until <= now) { /* stop waiting */
        t->preferred_id = 0;
        t->gen_sticky = ++eng->gen_next;
    }
    return false;
}

static void drain(sb_engine *eng, team *tm, int64_t now, sb_effects *fx);
static const char *text_language(ticket *t);

/* What a ticket needs of its agent, unless something set it already. A
 * language is required when someone in the team declares the customer's
 * language (the contact's, else the one their message is written in): a
 * Kazakh-speaking customer then waits for a Kazakh-speaking agent rather
 * than going to anyone. A skill is required when one of the ticket's tags
 * names a skill someone in the team has (a rule tags "billing", the
 * billing specialists get it). Teams that declare nothing route as before. */
static void requirements(sb_engine *eng, ticket *t, const team *tm)
{
    (void)eng;
    if (t->info.language.v[0] == '\0') {
        const char *lang = t->info.contact_language.v[0] != '\0' ? t->info.contact_language.v : text_language(t);
        for (size_t i = 0; lang != NULL && i < tm->nmembers; i++)
            if (has_token(tm->members[i]->cfg.languages, tm->members[i]->cfg.nlanguages, lang)) {
                snprintf(t->info.language.v, sizeof t->info.language.v, "%s", lang);
                break;
            }
    }
    for (int k = 0; t->info.skill.v[0] == '\0' && k < t->info.ntags; k++)
        for (size_t i = 0; i < tm->nmembers; i++)
            if (has_token(tm->members[i]->cfg.skills, tm->members[i]->cfg.nskills, t->info.tags[k].v)) {
                t->info.skill = t->info.tags[k];
                break;
            }
}

/* Places an unowned live ticket: its sticky owner, else the team's
 * strategy, else its queue. */
static void route(sb_engine *eng, ticket *t, int64_t now, sb_effects *fx)
{
    if (t->info.assignee_id != 0 || !status_live(t->info.status))
        return;
    if (route_sticky(eng, t, now, fx))
        return;
    if (t->preferred_id != 0) {
        enqueue(eng, t, now, "waiting_for_owner", fx);
        return;
    }
    team *tm = find_team(eng, t->info.team_id);
    if (tm != NULL)
        requirements(eng, t, tm);
    if (tm != NULL && tm->nqueue > 0 && tm->cfg.strategy != SB_STRATEGY_MANUAL) {
        /* others are waiting: take a place in line, then the line moves */
        enqueue(eng, t, now, "no_agent_free", fx);
        drain(eng, tm, now, fx);
        return;
    }
    agent *a = tm != NULL ? choose(eng, tm, t, now) : NULL;
    if (a != NULL) {
        tm->rr_last = a->cfg.id;
        set_assignee(eng, t, a, now, sb_strategy_name(tm->cfg.strategy), fx);
        return;
    }
    enqueue(eng, t, now, tm != NULL && tm->cfg.strategy == SB_STRATEGY_MANUAL ? "manual" : "no_agent_free", fx);
}

/* Offers a team's queue, in order, to whoever can take work now. */
/* Whether any member could take even the lightest ticket: a full team
 * leaves its queue alone, so a long queue costs nothing per event. */
static bool team_has_room(const sb_engine *eng, const team *tm, int64_t now)
{
    double lightest = fmin(eng->cfg.weight[SB_CHANNEL_CHAT], eng->cfg.weight[SB_CHANNEL_EMAIL]);
    for (size_t i = 0; i < tm->nmembers; i++) {
        const agent *a = tm->members[i];
        if (a->presence == SB_PRESENCE_ONLINE && !absent(a, now) && !a->on_call &&
            a->load + lightest <= a->cfg.capacity + LOAD_EPSILON)
            return true;
    }
    return false;
}

/* Offers a team's queue, in order, to whoever can take work now.
 *
 * Order is kept without starving heavy work: when a ticket cannot be placed
 * because the agents who could take it are busy (a call needs a whole
 * agent, a chat a third), the one of them nearest to having room is held
 * back for it, so the lighter tickets behind it cannot keep that agent busy
 * for ever, while the others keep taking them. A held agent gets the ticket
 * on a later pass, when their load has fallen. Tickets nobody present could
 * take (a skill or language no one online has) do not hold anyone, and
 * neither do tickets waiting for their own owner. */
static void drain(sb_engine *eng, team *tm, int64_t now, sb_effects *fx)
{
    if (tm == NULL || tm->nqueue == 0)
        return;
    uint64_t seq = ++eng->drain_seq;
    size_t reserved = 0;
    for (size_t i = 0;
         i < tm->nqueue && reserved < tm->nmembers && (eng->waiting_for_owner > 0 || team_has_room(eng, tm, now));) {
        ticket *t = tm->queue[i];
        size_t before = tm->nqueue;
        if (t->preferred_id != 0)
            route_sticky(eng, t, now, fx);
        if (t->info.assignee_id == 0 && t->preferred_id == 0 && tm->cfg.strategy != SB_STRATEGY_MANUAL) {
            agent *a = choose(eng, tm, t, now);
            if (a != NULL) {
                tm->rr_last = a->cfg.id;
                set_assignee(eng, t, a, now, sb_strategy_name(tm->cfg.strategy), fx);
            } else {
                /* hold back the suitable agent nearest to having room */
                agent *hold = NULL;
                for (size_t k = 0; k < tm->nmembers; k++) {
                    agent *m = tm->members[k];
                    if (m->reserved_in != seq && suits(m, t, now) && (hold == NULL || m->load < hold->load))
                        hold = m;
                }
                if (hold != NULL) {
                    hold->reserved_in = seq;
                    reserved++;
                }
            }
        }
        if (tm->nqueue == before)
            i++;
    }
    ++eng->drain_seq; /* the reservations end with the pass */
}

/* Work may be waiting for `a`: sticky tickets anywhere, its teams' queues. */
static void agent_freed(sb_engine *eng, agent *a, int64_t now, sb_effects *fx)
{
    if (a == NULL || a->presence != SB_PRESENCE_ONLINE || absent(a, now))
        return;
    for (size_t i = 0; eng->waiting_for_owner > 0 && i < eng->nteams; i++) {
        team *tm = eng->teams[i];
        for (size_t j = 0; j < tm->nqueue;) {
            ticket *t = tm->queue[j];
            size_t before = tm->nqueue;
            if (t->preferred_id != 0) {
                agent *owner = find_agent(eng, t->preferred_id);
                if (owner == a || standing_in(eng, owner, now) == a)
                    route_sticky(eng, t, now, fx);
            }
            if (tm->nqueue == before)
                j++;
        }
    }
    for (int i = 0; i < a->cfg.nteams; i++)
        drain(eng, find_team(eng, a->cfg.teams[i]), now, fx);
}

/* ---- SLA ---- */

static bool policy_matches(const sb_sla_policy *p, const ticket *t)
{
    if (p->team_id != 0 && p->team_id != t->info.team_id)
        return false;
    if (p->channel_kind >= 0 && p->channel_kind != (int)t->info.channel)
        return false;
    if (p->vip >= 0 && p->vip != (int)t->info.vip)
        return false;
    if (p->tag.v[0] != '\0' && !has_token(t->info.tags, t->info.ntags, p->tag.v))
        return false;
    return true;
}

static int64_t clock_add(const sb_calendar *cal, int64_t from, int64_t ms)
{
    if (cal != NULL)
        return sb_calendar_add(cal, from, ms);
    return ms > INT64_MAX - from ? INT64_MAX : from + ms;
}

static int64_t clock_elapsed(const sb_calendar *cal, int64_t from, int64_t to)
{
    if (to <= from)
        return 0;
    return cal != NULL ? sb_calendar_elapsed(cal, from, to) : to - from;
}

/* Recomputes due and warning times of the running clocks and re-arms the
 * ticket's SLA timer for the earliest of them. */
static void sla_rearm(sb_engine *eng, ticket *t, int64_t now, sb_effects *fx, bool report)
{
    const sb_sla_policy *p = find_policy(eng, t->policy_id);
    const sb_calendar *cal = p != NULL ? find_calendar(eng, p->calendar_id) : NULL;
    int64_t next = INT64_MAX;
    for (int c = 0; c < SB_SLA_CLOCK_COUNT; c++) {
        sla_clock_state *s = &t->sla[c];
        if (!s->active || s->paused) {
            s->due = 0;
            s->warn_at = 0;
            continue;
        }
        int64_t left = s->target - s->consumed;
        s->due = s->breached ? s->due : clock_add(cal, s->seg_start, left > 0 ? left : 0);
        s->warn_at = 0;
        if (p != NULL && p->warn_pct > 0 && !s->warned && !s->breached) {
            int64_t warn_after = s->target * p->warn_pct / 100 - s->consumed;
            s->warn_at = clock_add(cal, s->seg_start, warn_after > 0 ? warn_after : 0);
            if (s->warn_at < next)
                next = s->warn_at;
        }
        if (!s->breached && s->due < next)
            next = s->due;
    }
    /* Report due times only when they changed since the last report: a
     * ticket without an SLA policy costs the store nothing. */
    bool changed = false;
    for (int c = 0; c < SB_SLA_CLOCK_COUNT; c++)
        changed |= t->sla[c].due != t->reported_due[c];
    if (report && changed) {
        sb_effect *e = push_effect(fx, SB_FX_SLA_DUE, t, now);
        for (int c = 0; c < SB_SLA_CLOCK_COUNT; c++)
            e->due[c] = t->reported_due[c] = t->sla[c].due;
    }
    t->gen_sla = ++eng->gen_next;
    arm(eng, TIMER_SLA, t->info.id, t->gen_sla, next);
}

static void sla_event(ticket *t, sb_sla_clock c, sb_sla_state st, int64_t at, sb_effects *fx)
{
    sb_effect *e = push_effect(fx, SB_FX_SLA_EVENT, t, at);
    e->sla_clock = c;
    e->sla_state = st;
}

static void sla_start(sb_engine *eng, ticket *t, sb_sla_clock c, int64_t at)
{
    const sb_sla_policy *p = find_policy(eng, t->policy_id);
    int64_t target = p != NULL ? p->targets[t->info.priority].first_response_ms : 0;
    if (p != NULL && c == SB_SLA_NEXT_RESPONSE)
        target = p->targets[t->info.priority].next_response_ms;
    if (p != NULL && c == SB_SLA_RESOLUTION)
        target = p->targets[t->info.priority].resolution_ms;
    sla_clock_state *s = &t->sla[c];
    *s = (sla_clock_state){0};
    if (target <= 0)
        return;
    s->active = true;
    s->target = target;
    s->seg_start = at;
    s->paused = t->info.status == SB_STATUS_PENDING;
}

static void sla_stop(ticket *t, sb_sla_clock c, int64_t now, sb_effects *fx)
{
    sla_clock_state *s = &t->sla[c];
    if (!s->active)
        return;
    s->active = false;
    s->done = true;
    sla_event(t, c, s->breached ? SB_SLA_MISSED : SB_SLA_MET, now, fx);
}

static void sla_pause(sb_engine *eng, ticket *t, int64_t now)
{
    const sb_sla_policy *p = find_policy(eng, t->policy_id);
    const sb_calendar *cal = p != NULL ? find_calendar(eng, p->calendar_id) : NULL;
    for (int c = 0; c < SB_SLA_CLOCK_COUNT; c++) {
        sla_clock_state *s = &t->sla[c];
        if (!s->active || s->paused)
            continue;
        s->consumed += clock_elapsed(cal, s->seg_start, now);
        s->paused = true;
    }
}

static void sla_resume(ticket *t, int64_t now)
{
    for (int c = 0; c < SB_SLA_CLOCK_COUNT; c++) {
        sla_clock_state *s = &t->sla[c];
        if (s->active && s->paused) {
            s->paused = false;
            s->seg_start = now;
        }
    }
}

/* Chooses the policy (first match) and starts the clocks at creation. */
static void sla_begin(sb_engine *eng, ticket *t, int64_t now)
{
    t->policy_id = 0;
    for (size_t i = 0; i < eng->npolicies; i++)
        if (policy_matches(&eng->policies[i], t)) {
            t->policy_id = eng->policies[i].id;
            break;
        }
    if (t->first_response_at == 0)
        sla_start(eng, t, SB_SLA_FIRST_RESPONSE, t->info.created_at);
    sla_start(eng, t, SB_SLA_RESOLUTION, t->info.created_at);
    (void)now;
}

/* A priority change keeps the time used and swaps the targets. */
static void sla_retarget(sb_engine *eng, ticket *t)
{
    const sb_sla_policy *p = find_policy(eng, t->policy_id);
    for (int c = 0; c < SB_SLA_CLOCK_COUNT; c++) {
        sla_clock_state *s = &t->sla[c];
        if (!s->active || p == NULL)
            continue;
        const sb_sla_targets *tg = &p->targets[t->info.priority];
        int64_t target = c == SB_SLA_FIRST_RESPONSE  ? tg->first_response_ms
                         : c == SB_SLA_NEXT_RESPONSE ? tg->next_response_ms
                                                     : tg->resolution_ms;
        if (target > 0)
            s->target = target;
    }
}

static void sla_fire(sb_engine *eng, ticket *t, int64_t now, sb_effects *fx)
{
    for (int c = 0; c < SB_SLA_CLOCK_COUNT; c++) {
        sla_clock_state *s = &t->sla[c];
        if (!s->active || s->paused)
            continue;
        if (!s->warned && !s->breached && s->warn_at != 0 && s->warn_at <= now) {
            s->warned = true;
            sla_event(t, (sb_sla_clock)c, SB_SLA_WARNING, s->warn_at, fx);
            raise_trigger(eng, t, SB_TRIGGER_SLA_WARNING);
        }
        if (!s->breached && s->due != 0 && s->due <= now) {
            s->breached = true;
            sla_event(t, (sb_sla_clock)c, SB_SLA_BREACHED, s->due, fx);
            raise_trigger(eng, t, SB_TRIGGER_SLA_BREACHED);
            team *tm = find_team(eng, t->info.team_id);
            if (tm != NULL && tm->cfg.supervisor_id != 0)
                notify(eng, tm->cfg.supervisor_id, t, now, "sla_breached", fx);
        }
    }
    sla_rearm(eng, t, now, fx, false);
}

/* ---- configuration ---- */

void sb_engine_set_cfg(sb_engine *eng, const sb_engine_cfg *cfg)
{
    eng->cfg = cfg != NULL ? *cfg : (sb_engine_cfg){0};
    double defaults[SB_CHANNEL_KIND_COUNT] = {1.0 / 3, 1.0 / 10, 1.0};
    for (int i = 0; i < SB_CHANNEL_KIND_COUNT; i++)
        if (eng->cfg.weight[i] <= 0)
            eng->cfg.weight[i] = defaults[i];
    if (eng->cfg.auto_replies_per_hour <= 0)
        eng->cfg.auto_replies_per_hour = 3;
    if (eng->cfg.auto_replies_per_hour > 16)
        eng->cfg.auto_replies_per_hour = 16;
    if (eng->cfg.default_language[0] == '\0')
        snprintf(eng->cfg.default_language, sizeof eng->cfg.default_language, "ru");
}

sb_engine *sb_engine_new(const sb_engine_cfg *cfg)
{
    sb_engine *eng = sb_xcalloc(1, sizeof *eng);
    sb_theap_init(&eng->timers, timer_tie);
    sb_engine_set_cfg(eng, cfg);
    eng->nbuckets = 64;
    eng->buckets = sb_xcalloc(eng->nbuckets, sizeof *eng->buckets);
    eng->unassigned.cfg.strategy = SB_STRATEGY_MANUAL;
    eng->drain_seq = 1; /* agents start with reserved_in 0: never reserved */
    return eng;
}

static void team_free(team *tm)
{
    free(tm->members);
    free(tm->queue);
}

void sb_engine_free(sb_engine *eng)
{
    if (eng == NULL)
        return;
    for (size_t i = 0; i < eng->nbuckets; i++) {
        ticket *next;
        for (ticket *t = eng->buckets[i]; t != NULL; t = next) {
            next = t->hash_next;
            ticket_free(t);
        }
    }
    free(eng->buckets);
    for (size_t i = 0; i < eng->nteams; i++) {
        team_free(eng->teams[i]);
        free(eng->teams[i]);
    }
    team_free(&eng->unassigned);
    free(eng->teams);
    for (size_t i = 0; i < eng->nagents; i++)
        free(eng->agents[i]);
    free(eng->agents);
    free(eng->by_id);
    for (size_t i = 0; i < eng->ncalendars; i++)
        sb_calendar_free(eng->calendars[i].cal);
    free(eng->calendars);
    free(eng->policies);
    sb_theap_close(&eng->timers);
    for (size_t i = 0; i < eng->nrules; i++)
        sb_rule_free(eng->rules[i]);
    free(eng->rules);
    for (size_t i = 0; i < eng->ntemplates; i++)
        sb_template_free(eng->templates[i].tpl);
    free(eng->templates);
    for (size_t i = 0; i < eng->nrates_buckets; i++) {
        contact_rate *next;
        for (contact_rate *r = eng->rates[i]; r != NULL; r = next) {
            next = r->next;
            free(r);
        }
    }
    free(eng->rates);
    free(eng->pending);
    free(eng->tasks);
    free(eng);
}

/* Rebuilds every team's member list (sorted by id) from the agents. */
static void rebuild_members(sb_engine *eng)
{
    for (size_t i = 0; i < eng->nteams; i++) {
        team *tm = eng->teams[i];
        tm->nmembers = 0;
        for (size_t j = 0; j < eng->nagents; j++) {
            agent *a = eng->agents[j];
            if (!agent_in_team(a, tm->cfg.id))
                continue;
            if (tm->nmembers == tm->cap_members) {
                tm->cap_members = tm->cap_members ? tm->cap_members * 2 : 8;
                tm->members = sb_xrealloc(tm->members, tm->cap_members * sizeof *tm->members);
            }
            size_t k = tm->nmembers++;
            while (k > 0 && tm->members[k - 1]->cfg.id > a->cfg.id) {
                tm->members[k] = tm->members[k - 1];
                k--;
            }
            tm->members[k] = a;
        }
    }
}

int sb_engine_put_team(sb_engine *eng, const sb_engine_team_cfg *cfg)
{
    if (cfg->id <= 0 || (unsigned)cfg->strategy > SB_STRATEGY_MANUAL || cfg->sticky_wait_ms < 0 ||
        cfg->auto_away_after < 0)
        return SB_EINVAL;
    for (int i = 0; i < SB_CHANNEL_KIND_COUNT; i++)
        if (cfg->unanswered_ms[i] < 0)
            return SB_EINVAL;
    team *tm = find_team(eng, cfg->id);
    if (tm == NULL) {
        tm = sb_xcalloc(1, sizeof *tm);
        eng->teams = sb_xrealloc(eng->teams, (eng->nteams + 1) * sizeof *eng->teams);
        eng->teams[eng->nteams++] = tm;
    }
    tm->cfg = *cfg;
    rebuild_members(eng);
    return 0;
}

int sb_engine_put_agent(sb_engine *eng, const sb_engine_agent_cfg *cfg)
{
    if (cfg->id <= 0 || cfg->nskills < 0 || cfg->nskills > SB_ENGINE_MAX_SKILLS || cfg->nlanguages < 0 ||
        cfg->nlanguages > SB_ENGINE_MAX_LANGS || cfg->nteams < 0 || cfg->nteams > SB_ENGINE_MAX_TEAMS)
        return SB_EINVAL;
    agent *a = find_agent(eng, cfg->id);
    if (a == NULL) {
        a = sb_xcalloc(1, sizeof *a);
        a->cfg.id = cfg->id;
        eng->agents = sb_xrealloc(eng->agents, (eng->nagents + 1) * sizeof *eng->agents);
        eng->by_id = sb_xrealloc(eng->by_id, (eng->nagents + 1) * sizeof *eng->by_id);
        size_t k = eng->nagents;
        while (k > 0 && eng->by_id[k - 1]->cfg.id > cfg->id) {
            eng->by_id[k] = eng->by_id[k - 1];
            k--;
        }
        eng->by_id[k] = a;
        eng->agents[eng->nagents++] = a;
    }
    a->cfg = *cfg;
    if (a->cfg.capacity <= 0)
        a->cfg.capacity = 1.0;
    rebuild_members(eng);
    return 0;
}

int sb_engine_put_calendar(sb_engine *eng, int64_t id, sb_calendar *cal)
{
    if (id <= 0 || cal == NULL)
        return SB_EINVAL;
    for (size_t i = 0; i < eng->ncalendars; i++)
        if (eng->calendars[i].id == id) {
            sb_calendar_free(eng->calendars[i].cal);
            eng->calendars[i].cal = cal;
            return 0;
        }
    eng->calendars = sb_xrealloc(eng->calendars, (eng->ncalendars + 1) * sizeof *eng->calendars);
    eng->calendars[eng->ncalendars++] = (calendar_entry){id, cal};
    return 0;
}

int sb_engine_put_template(sb_engine *eng, int64_t id, const char *language, sb_template *tpl)
{
    if (id <= 0 || tpl == NULL || language == NULL || strlen(language) == 0 || strlen(language) >= 8)
        return SB_EINVAL;
    for (size_t i = 0; i < eng->ntemplates; i++)
        if (eng->templates[i].id == id && strcmp(eng->templates[i].language, language) == 0) {
            sb_template_free(eng->templates[i].tpl);
            eng->templates[i].tpl = tpl;
            return 0;
        }
    eng->templates = sb_xrealloc(eng->templates, (eng->ntemplates + 1) * sizeof *eng->templates);
    template_entry *te = &eng->templates[eng->ntemplates++];
    te->id = id;
    snprintf(te->language, sizeof te->language, "%s", language);
    te->tpl = tpl;
    return 0;
}

int sb_engine_put_rule(sb_engine *eng, sb_rule *rule)
{
    int n = 0;
    const sb_rule_action *acts = sb_rule_actions(rule, &n);
    for (int i = 0; i < n; i++) {
        if (acts[i].kind == SB_ACTION_SEND_TEMPLATE && find_template(eng, acts[i].id, NULL) == NULL)
            return SB_ENOTFOUND;
        if (acts[i].kind == SB_ACTION_ASSIGN_TEAM && find_team(eng, acts[i].id) == NULL)
            return SB_ENOTFOUND;
    }
    for (size_t i = 0; i < eng->nrules; i++)
        if (sb_rule_id(eng->rules[i]) == sb_rule_id(rule)) {
            sb_rule_free(eng->rules[i]);
            eng->rules[i] = rule;
            return 0;
        }
    eng->rules = sb_xrealloc(eng->rules, (eng->nrules + 1) * sizeof *eng->rules);
    eng->rules[eng->nrules++] = rule;
    return 0;
}

void sb_engine_clear_config(sb_engine *eng)
{
    for (size_t i = 0; i < eng->nrules; i++)
        sb_rule_free(eng->rules[i]);
    eng->nrules = 0;
    for (size_t i = 0; i < eng->ntemplates; i++)
        sb_template_free(eng->templates[i].tpl);
    eng->ntemplates = 0;
    for (size_t i = 0; i < eng->ncalendars; i++)
        sb_calendar_free(eng->calendars[i].cal);
    eng->ncalendars = 0;
    eng->npolicies = 0;
}

int sb_engine_remove_rule(sb_engine *eng, int64_t rule_id)
{
    for (size_t i = 0; i < eng->nrules; i++)
        if (sb_rule_id(eng->rules[i]) == rule_id) {
            sb_rule_free(eng->rules[i]);
            memmove(&eng->rules[i], &eng->rules[i + 1], (eng->nrules - i - 1) * sizeof *eng->rules);
            eng->nrules--;
            return 0;
        }
    return SB_ENOTFOUND;
}

int sb_engine_put_sla_policy(sb_engine *eng, const sb_sla_policy *p)
{
    if (p->id <= 0 || p->warn_pct < 0 || p->warn_pct >= 100 || p->channel_kind >= SB_CHANNEL_KIND_COUNT || p->vip > 1)
        return SB_EINVAL;
    for (size_t i = 0; i < eng->npolicies; i++)
        if (eng->policies[i].id == p->id) {
            eng->policies[i] = *p;
            return 0;
        }
    eng->policies = sb_xrealloc(eng->policies, (eng->npolicies + 1) * sizeof *eng->policies);
    eng->policies[eng->npolicies++] = *p;
    return 0;
}

/* ---- events ---- */

static void ticket_free(ticket *t)
{
    free(t->info.tags);
    free(t->about);
    free(t->last_text);
    free(t->fired);
    free(t);
}

static void forget(sb_engine *eng, ticket *t)
{
    dequeue(eng, t);
    hash_remove(eng, t);
    ticket_free(t);
}

static int ticket_new(sb_engine *eng, const sb_ticket_info *info, const char *text, bool is_auto_reply, bool restored,
                      int64_t now, sb_effects *fx)
{
    if (info->id <= 0 || (unsigned)info->channel >= SB_CHANNEL_KIND_COUNT ||
        (unsigned)info->status > SB_STATUS_CLOSED || (unsigned)info->priority > SB_PRIORITY_URGENT || info->ntags < 0 ||
        info->ntags > SB_ENGINE_MAX_TAGS)
        return SB_EINVAL;
    if (find_ticket(eng, info->id) != NULL || !status_live(info->status))
        return info->status == SB_STATUS_RESOLVED || info->status == SB_STATUS_CLOSED ? 0 : SB_ECONFLICT;
    ticket *t = sb_xcalloc(1, sizeof *t);
    core_from_info(&t->info, info);
    t->about = about_copy(info);
    t->info.assignee_id = 0;
    if (t->info.created_at == 0)
        t->info.created_at = now;
    t->first_response_at = info->first_response_at;
    t->awaiting_agent = true;
    t->waiting_since = restored ? t->info.created_at : now;
    t->last_customer_at = t->info.created_at;
    t->last_activity_at = now;
    set_text(t, text, is_auto_reply);
    hash_insert(eng, t);
    int64_t id = t->info.id;
    if (!restored) {
        /* Rules first: they may set the priority, team, tags or owner that
         * routing and the SLA policy then go by. */
        run_rules(eng, t, SB_TRIGGER_TICKET_CREATED, now, fx);
        t = find_ticket(eng, id);
        if (t == NULL)
            return 0; /* a rule resolved or closed it */
    }
    sla_begin(eng, t, now);
    sla_rearm(eng, t, now, fx, true);
    arm_time_rules(eng, t, now);
    agent *prev = find_agent(eng, info->assignee_id);
    if (prev != NULL && t->info.assignee_id == 0) { /* loaded with its owner: it stays theirs */
        set_assignee(eng, t, prev, now, "kept", fx);
        return 0;
    }
    if (t->info.assignee_id != 0)
        return 0; /* a rule chose the owner */
    if (info->owner_id != 0 && find_agent(eng, info->owner_id) != NULL) {
        /* Sticky: the owner (or their deputy) if free now, else wait for
         * them up to the team's sticky_wait, then the team. */
        team *tm = find_team(eng, info->team_id);
        int64_t wait = tm != NULL ? tm->cfg.sticky_wait_ms : 0;
        t->preferred_id = info->owner_id;
        t->sticky_until = now + wait;
        t->gen_sticky = ++eng->gen_next;
        if (wait > 0)
            arm(eng, TIMER_STICKY, t->info.id, t->gen_sticky, t->sticky_until);
    }
    route(eng, t, now, fx);
    return 0;
}

/* Changes the status. A resolved or closed ticket leaves the engine: its
 * status.changed rules run first, while it is still here, and the caller
 * must not touch `t` afterwards (returns false then). */
static bool set_status(sb_engine *eng, ticket *t, sb_status st, int64_t now, sb_effects *fx)
{
    sb_status old = t->info.status;
    if (old == st)
        return true;
    t->info.status = st;
    t->last_activity_at = now;
    if (st == SB_STATUS_PENDING)
        sla_pause(eng, t, now);
    else if (old == SB_STATUS_PENDING)
        sla_resume(t, now);
    if (!status_live(st)) {
        sla_stop(t, SB_SLA_FIRST_RESPONSE, now, fx);
        sla_stop(t, SB_SLA_NEXT_RESPONSE, now, fx);
        sla_stop(t, SB_SLA_RESOLUTION, now, fx);
        int64_t id = t->info.id;
        if (st == SB_STATUS_RESOLVED && eng->cfg.csat_template_id != 0)
            auto_reply(eng, t, eng->cfg.csat_template_id, now, "csat", fx);
        run_rules(eng, t, SB_TRIGGER_STATUS_CHANGED, now, fx);
        t = find_ticket(eng, id); /* a rule may have moved it on already */
        if (t == NULL || status_live(t->info.status))
            return t != NULL;
        agent *a = find_agent(eng, t->info.assignee_id);
        recount(eng, t);
        if (a != NULL)
            a->open--;
        if (eng->on_leave != NULL) {
            sb_ticket_view v;
            sb_engine_ticket(eng, t->info.id, &v);
            eng->on_leave(eng->on_leave_arg, &v, now);
        }
        forget(eng, t);
        agent_freed(eng, a, now, fx);
        return false;
    }
    recount(eng, t);
    sla_rearm(eng, t, now, fx, true);
    if (!status_weighs(st))
        t->gen_unanswered = ++eng->gen_next;
    arm_time_rules(eng, t, now);
    raise_trigger(eng, t, SB_TRIGGER_STATUS_CHANGED);
    agent_freed(eng, find_agent(eng, t->info.assignee_id), now, fx);
    return true;
}

static void set_priority(sb_engine *eng, ticket *t, sb_priority p, int64_t now, sb_effects *fx)
{
    if (p == t->info.priority)
        return;
    if (t->queue_team != NULL) { /* re-sorted within its queue */
        team *tm = t->queue_team;
        dequeue(eng, t);
        t->info.priority = p;
        queue_insert(tm, t);
    } else {
        t->info.priority = p;
    }
    sla_retarget(eng, t);
    sla_rearm(eng, t, now, fx, true);
    sb_effect *e = push_effect(fx, SB_FX_PRIORITY, t, now);
    e->rule_id = eng->origin;
    raise_trigger(eng, t, SB_TRIGGER_PRIORITY_CHANGED);
}

/* ---- automation ---- */

#define MAX_RULE_DEPTH 8    /* rules triggering rules, at most this deep */
#define MAX_TEXT_KEPT  4096 /* of the customer's last message, for conditions */

static void set_text(ticket *t, const char *text, bool is_auto_reply)
{
    free(t->last_text);
    t->last_text = NULL;
    t->last_auto_reply = is_auto_reply;
    t->text_language = NULL;
    t->text_language_known = false;
    if (text == NULL)
        return;
    size_t n = strnlen(text, MAX_TEXT_KEPT);
    while (n > 0 && n < strlen(text) && ((unsigned char)text[n] & 0xC0) == 0x80)
        n--; /* never cut a character in half */
    t->last_text = sb_xstrndup(text, n);
}

static void raise_trigger(sb_engine *eng, const ticket *t, sb_trigger trigger)
{
    if (eng->nrules == 0 || eng->depth >= MAX_RULE_DEPTH)
        return;
    if (eng->npending == eng->cap_pending) {
        eng->cap_pending = eng->cap_pending ? eng->cap_pending * 2 : 16;
        eng->pending = sb_xrealloc(eng->pending, eng->cap_pending * sizeof *eng->pending);
    }
    eng->pending[eng->npending++] =
        (pending_rule){.ticket_id = t->info.id, .trigger = trigger, .origin = eng->origin, .depth = eng->depth + 1};
}

/* The language of the customer's last message, guessed once per message. */
static const char *text_language(ticket *t)
{
    if (!t->text_language_known) {
        t->text_language = t->last_text != NULL && t->last_text[0] != '\0' ? sb_text_language(t->last_text) : NULL;
        t->text_language_known = true;
    }
    return t->text_language;
}

static bool fired_once(const ticket *t, int64_t rule_id)
{
    for (int i = 0; i < t->nfired; i++)
        if (t->fired[i] == rule_id)
            return true;
    return false;
}

typedef struct facts_ctx {
    const sb_engine *eng;
    int64_t now;
} facts_ctx;

static bool facts_business_hours(void *ctx, int64_t calendar_id)
{
    const facts_ctx *c = ctx;
    const sb_calendar *cal = find_calendar(c->eng, calendar_id);
    return cal != NULL && sb_calendar_is_open(cal, c->now);
}

/* Runs one rule's actions. Returns false if the ticket left the engine. */
static bool apply_actions(sb_engine *eng, ticket *t, const sb_rule *r, int64_t now, sb_effects *fx, bool *stop);

/* Whether rule `r` runs for `trigger` on `t` now. */
static bool rule_applies(sb_engine *eng, ticket *t, const sb_rule *r, sb_trigger trigger, int64_t origin, int64_t now)
{
    if (!sb_rule_enabled(r) || !sb_rule_has_trigger(r, trigger) || sb_rule_id(r) == origin)
        return false;
    if (sb_rule_once_per_ticket(r) && fired_once(t, sb_rule_id(r)))
        return false;
    const char *ttags[SB_ENGINE_MAX_TAGS];
    for (int i = 0; i < t->info.ntags; i++)
        ttags[i] = t->info.tags[i].v;
    const about *ab = t->about;
    const char *text = t->last_text != NULL ? t->last_text : "";
    const char *lang = text_language(t);
    if (lang == NULL && t->info.contact_language.v[0] != '\0')
        lang = t->info.contact_language.v;
    facts_ctx ctx = {eng, now};
    sb_rule_facts f = {.text = text,
                       .subject = ab->subject,
                       .channel = t->info.channel_type.v,
                       .language = lang,
                       .status = sb_status_name(t->info.status),
                       .priority = sb_priority_name(t->info.priority),
                       .team_id = t->info.team_id,
                       .assignee_id = t->info.assignee_id,
                       .vip = t->info.vip,
                       .contact_tags = ab->contact_tags,
                       .ncontact_tags = ab->ncontact_tags,
                       .ticket_tags = ttags,
                       .nticket_tags = t->info.ntags,
                       .attr_keys = ab->attr_keys,
                       .attr_values = ab->attr_values,
                       .nattrs = ab->nattrs,
                       .age_minutes = (now - t->info.created_at) / 60000,
                       .in_business_hours = facts_business_hours,
                       .ctx = &ctx};
    return sb_rule_matches(r, &f);
}

/* Runs the rules for `trigger` in order, at the current depth, skipping the
 * rule whose own action caused the trigger. */
static void run_rules_from(sb_engine *eng, ticket *t, sb_trigger trigger, int64_t origin, int64_t now, sb_effects *fx)
{
    int64_t id = t->info.id;
    for (size_t i = 0; i < eng->nrules; i++) {
        const sb_rule *r = eng->rules[i];
        if (!rule_applies(eng, t, r, trigger, origin, now))
            continue;
        if (sb_rule_once_per_ticket(r)) {
            t->fired = sb_xrealloc(t->fired, (size_t)(t->nfired + 1) * sizeof *t->fired);
            t->fired[t->nfired++] = sb_rule_id(r);
        }
        bool stop = false;
        if (!apply_actions(eng, t, r, now, fx, &stop))
            return;
        t = find_ticket(eng, id);
        if (t == NULL || stop)
            return;
    }
}

static void run_rules(sb_engine *eng, ticket *t, sb_trigger trigger, int64_t now, sb_effects *fx)
{
    if (eng->nrules == 0 || eng->depth >= MAX_RULE_DEPTH)
        return;
    int saved_depth = eng->depth;
    int64_t saved_origin = eng->origin;
    eng->depth++;
    run_rules_from(eng, t, trigger, eng->origin, now, fx);
    eng->depth = saved_depth;
    eng->origin = saved_origin;
}

/* Runs the triggers raised meanwhile, oldest first, until none is left. */
static void run_pending(sb_engine *eng, int64_t now, sb_effects *fx)
{
    for (size_t i = 0; i < eng->npending; i++) {
        pending_rule p = eng->pending[i];
        ticket *t = find_ticket(eng, p.ticket_id);
        if (t == NULL)
            continue;
        eng->depth = p.depth;
        run_rules_from(eng, t, p.trigger, p.origin, now, fx);
        eng->origin = 0;
    }
    eng->npending = 0;
    eng->depth = 0;
    eng->origin = 0;
}

/* time.* rules: each is armed from the moment its clock starts, and
 * re-armed whenever something happens to the ticket. */
static void arm_time_rules(sb_engine *eng, ticket *t, int64_t now)
{
    t->gen_time = ++eng->gen_next;
    for (size_t i = 0; i < eng->nrules; i++) {
        const sb_rule *r = eng->rules[i];
        int64_t after = sb_rule_minutes(r) * 60000, from = 0;
        if (after <= 0 || !sb_rule_enabled(r))
            continue;
        if (sb_rule_has_trigger(r, SB_TRIGGER_NO_AGENT_REPLY) && t->awaiting_agent)
            from = t->last_customer_at;
        else if (sb_rule_has_trigger(r, SB_TRIGGER_NO_CUSTOMER_REPLY) && !t->awaiting_agent && t->last_agent_at != 0)
            from = t->last_agent_at;
        else if (sb_rule_has_trigger(r, SB_TRIGGER_IDLE))
            from = t->last_activity_at;
        if (from != 0)
            arm_rule(eng, t->info.id, sb_rule_id(r), t->gen_time, (from + after > now ? from + after : now));
    }
}

static void fire_time_rule(sb_engine *eng, ticket *t, int64_t rule_id, int64_t now, sb_effects *fx)
{
    for (size_t i = 0; i < eng->nrules; i++) {
        const sb_rule *r = eng->rules[i];
        if (sb_rule_id(r) != rule_id)
            continue;
        sb_trigger trig =
            sb_rule_has_trigger(r, SB_TRIGGER_NO_AGENT_REPLY) && t->awaiting_agent       ? SB_TRIGGER_NO_AGENT_REPLY
            : sb_rule_has_trigger(r, SB_TRIGGER_NO_CUSTOMER_REPLY) && !t->awaiting_agent ? SB_TRIGGER_NO_CUSTOMER_REPLY
                                                                                         : SB_TRIGGER_IDLE;
        if (!rule_applies(eng, t, r, trig, 0, now))
            return;
        if (sb_rule_once_per_ticket(r)) {
            t->fired = sb_xrealloc(t->fired, (size_t)(t->nfired + 1) * sizeof *t->fired);
            t->fired[t->nfired++] = sb_rule_id(r);
        }
        eng->depth = 1;
        bool stop = false;
        apply_actions(eng, t, r, now, fx, &stop);
        eng->depth = 0;
        eng->origin = 0;
        return;
    }
}

/* ---- templates ---- */

static const template_entry *find_template(const sb_engine *eng, int64_t id, const char *lang)
{
    const template_entry *any = NULL;
    for (size_t i = 0; i < eng->ntemplates; i++) {
        const template_entry *te = &eng->templates[i];
        if (te->id != id)
            continue;
        if (lang != NULL && strcmp(te->language, lang) == 0)
            return te;
        if (any == NULL)
            any = te;
    }
    return any;
}

/* The placeholder values of `t` now, in language `lang`. */
static void template_values(const sb_engine *eng, const ticket *t, int64_t now, const char *lang, sb_template_values *v,
                            char *next_open, size_t cap)
{
    const agent *a = find_agent(eng, t->info.assignee_id);
    const team *tm = find_team((sb_engine *)eng, t->info.team_id);
    *v = (sb_template_values){.contact_name = t->about->contact_name,
                              .contact_phone = t->about->contact_phone,
                              .contact_email = t->about->contact_email,
                              .ticket_subject = t->about->subject,
                              .ticket_status = sb_status_name(t->info.status),
                              .ticket_priority = sb_priority_name(t->info.priority),
                              .ticket_channel = t->info.channel_type.v,
                              .ticket_number = t->info.number,
                              .agent_name = a != NULL ? a->cfg.name : NULL,
                              .team_name = tm != NULL ? tm->cfg.name : NULL,
                              .company_name = eng->cfg.company_name};
    const sb_calendar *cal = tm != NULL ? find_calendar(eng, tm->cfg.calendar_id) : NULL;
    int64_t at = cal != NULL ? sb_calendar_next_open(cal, now) : INT64_MAX;
    if (at != INT64_MAX) {
        sb_local_time lt = sb_tz_to_local(sb_calendar_tz(cal), at);
        sb_template_format_time(lt.year, lt.month, lt.day, lt.minute_of_day, lang, next_open, cap);
        v->next_open = next_open;
    }
}

/* Loop protection: true (and counted) if the contact may get one more
 * automatic reply this hour. */
static bool rate_allows(sb_engine *eng, int64_t contact_id, int64_t now)
{
    int limit = eng->cfg.auto_replies_per_hour;
    if (eng->nrates + 1 > eng->nrates_buckets * 2) { /* grow, and drop contacts quiet for an hour */
        size_t n = eng->nrates_buckets ? eng->nrates_buckets * 2 : 64;
        contact_rate **b = sb_xcalloc(n, sizeof *b);
        eng->nrates = 0;
        for (size_t i = 0; i < eng->nrates_buckets; i++) {
            contact_rate *next;
            for (contact_rate *r = eng->rates[i]; r != NULL; r = next) {
                next = r->next;
                if (r->n == 0 || r->at[r->n - 1] <= now - 3600000) {
                    free(r);
                    continue;
                }
                size_t h = hash_id(r->contact_id, n);
                r->next = b[h];
                b[h] = r;
                eng->nrates++;
            }
        }
        free(eng->rates);
        eng->rates = b;
        eng->nrates_buckets = n;
    }
    size_t h = hash_id(contact_id, eng->nrates_buckets);
    contact_rate *r = eng->rates[h];
    while (r != NULL && r->contact_id != contact_id)
        r = r->next;
    if (r == NULL) {
        r = sb_xcalloc(1, sizeof *r);
        r->contact_id = contact_id;
        r->next = eng->rates[h];
        eng->rates[h] = r;
        eng->nrates++;
    }
    int kept = 0;
    for (int i = 0; i < r->n; i++)
        if (r->at[i] > now - 3600000)
            r->at[kept++] = r->at[i];
    r->n = kept;
    if (r->n >= limit)
        return false;
    r->at[r->n++] = now;
    return true;
}

/* Sends template `template_id` to the customer, in their language, unless
 * the message that led here was itself automatic or the contact already
 * had their hourly share of automatic replies. */
static void auto_reply(sb_engine *eng, ticket *t, int64_t template_id, int64_t now, const char *reason, sb_effects *fx)
{
    if (t->last_auto_reply && strcmp(reason, "csat") != 0)
        return;
    const char *lang = t->info.contact_language.v[0] != '\0' ? t->info.contact_language.v : NULL;
    if (lang == NULL)
        lang = text_language(t);
    if (lang == NULL)
        lang = eng->cfg.default_language;
    const template_entry *te = find_template(eng, template_id, lang);
    if (te == NULL || !rate_allows(eng, t->info.contact_id, now))
        return;
    sb_template_values values;
    char next_open[40];
    template_values(eng, t, now, te->language, &values, next_open, sizeof next_open);
    sb_effect *e = push_effect(fx, SB_FX_REPLY, t, now);
    e->text = sb_template_render(te->tpl, sb_template_value, &values);
    e->template_id = template_id;
    e->reason = reason;
    e->rule_id = eng->origin;
}

static void notify_target(sb_engine *eng, ticket *t, const sb_rule_action *a, int64_t now, sb_effects *fx)
{
    team *tm = find_team(eng, t->info.team_id);
    size_t mark = fx->n;
    if (a->id != 0)
        notify(eng, a->id, t, now, "rule", fx);
    else if (strcmp(a->value, "assignee") == 0)
        notify(eng, t->info.assignee_id, t, now, "rule", fx);
    else if (strcmp(a->value, "supervisor") == 0)
        notify(eng, tm != NULL ? tm->cfg.supervisor_id : 0, t, now, "rule", fx);
    else
        for (size_t i = 0; tm != NULL && i < tm->nmembers; i++)
            notify(eng, tm->members[i]->cfg.id, t, now, "rule", fx);
    for (size_t i = mark; i < fx->n; i++)
        fx->v[i].rule_id = eng->origin;
}

static void tag(ticket *t, const char *value, bool add, int64_t now, int64_t rule_id, sb_effects *fx)
{
    int at = -1;
    for (int i = 0; i < t->info.ntags; i++)
        if (strcmp(t->info.tags[i].v, value) == 0)
            at = i;
    if (add == (at >= 0) || (add && t->info.ntags == SB_ENGINE_MAX_TAGS))
        return;
    if (t->info.tags == NULL)
        t->info.tags = sb_xcalloc(SB_ENGINE_MAX_TAGS, sizeof *t->info.tags);
    if (add) {
        snprintf(t->info.tags[t->info.ntags++].v, sizeof t->info.tags[0].v, "%s", value);
    } else {
        t->info.tags[at] = t->info.tags[--t->info.ntags];
    }
    sb_effect *e = push_effect(fx, SB_FX_TAG, t, now);
    e->text = sb_xstrdup(value);
    e->added = add;
    e->rule_id = rule_id;
}

static bool apply_actions(sb_engine *eng, ticket *t, const sb_rule *r, int64_t now, sb_effects *fx, bool *stop)
{
    int n = 0;
    const sb_rule_action *acts = sb_rule_actions(r, &n);
    int64_t id = t->info.id, saved = eng->origin;
    eng->origin = sb_rule_id(r);
    bool alive = true;
    for (int i = 0; alive && i < n && !*stop; i++) {
        const sb_rule_action *a = &acts[i];
        switch (a->kind) {
        case SB_ACTION_SET_PRIORITY: {
            sb_priority p;
            if (sb_priority_parse(a->value, &p) == 0)
                set_priority(eng, t, p, now, fx);
            break;
        }
        case SB_ACTION_SET_STATUS: {
            sb_status st;
            if (sb_status_parse(a->value, &st) != 0 || st == t->info.status)
                break;
            sb_effect *e = push_effect(fx, SB_FX_STATUS, t, now);
            e->status = st;
            e->rule_id = eng->origin;
            alive = set_status(eng, t, st, now, fx);
            break;
        }
        case SB_ACTION_ASSIGN_TEAM: {
            if (find_team(eng, a->id) == NULL || a->id == t->info.team_id)
                break;
            agent *prev = find_agent(eng, t->info.assignee_id);
            dequeue(eng, t);
            t->info.team_id = a->id;
            sb_effect *e = push_effect(fx, SB_FX_TEAM, t, now);
            e->rule_id = eng->origin;
            if (prev != NULL && !agent_in_team(prev, a->id)) {
                set_assignee(eng, t, NULL, now, "team_changed", fx);
                agent_freed(eng, prev, now, fx);
            }
            if (t->sla[SB_SLA_RESOLUTION].active || t->sla[SB_SLA_FIRST_RESPONSE].active)
                route(eng, t, now, fx);
            break;
        }
        case SB_ACTION_ASSIGN_AGENT: {
            int64_t who = a->id;
            if (who == 0 && a->value != NULL)
                who = strcmp(a->value, "contact_owner") == 0 ? t->info.owner_id : t->last_responder;
            agent *to = standing_in(eng, find_agent(eng, who), now);
            if (to != NULL && to->cfg.id != t->info.assignee_id) {
                agent *prev = find_agent(eng, t->info.assignee_id);
                t->preferred_id = 0;
                t->gen_sticky = ++eng->gen_next;
                set_assignee(eng, t, to, now, "rule", fx);
                agent_freed(eng, prev, now, fx);
            }
            break;
        }
        case SB_ACTION_ADD_TAG:
        case SB_ACTION_REMOVE_TAG: tag(t, a->value, a->kind == SB_ACTION_ADD_TAG, now, eng->origin, fx); break;
        case SB_ACTION_SEND_TEMPLATE: auto_reply(eng, t, a->id, now, "rule", fx); break;
        case SB_ACTION_ADD_NOTE: {
            sb_effect *e = push_effect(fx, SB_FX_NOTE, t, now);
            e->text = sb_xstrdup(a->value);
            e->rule_id = eng->origin;
            break;
        }
        case SB_ACTION_NOTIFY: notify_target(eng, t, a, now, fx); break;
        case SB_ACTION_CREATE_TASK: {
            sb_effect *e = push_effect(fx, SB_FX_TASK, t, now);
            e->text = sb_xstrdup(a->value);
            e->due_at = now + a->minutes * 60000;
            e->agent_id = a->id != 0 ? a->id : t->info.assignee_id;
            e->rule_id = eng->origin;
            break;
        }
        case SB_ACTION_WEBHOOK: {
            sb_effect *e = push_effect(fx, SB_FX_WEBHOOK, t, now);
            e->text = sb_xstrdup(a->value);
            e->rule_id = eng->origin;
            break;
        }
        case SB_ACTION_STOP: *stop = true; break;
        }
        if (alive)
            alive = find_ticket(eng, id) == t;
    }
    eng->origin = saved;
    return alive;
}

static int handle_ticket_event(sb_engine *eng, const sb_event *ev, ticket *t, int64_t now, sb_effects *fx)
{
    switch (ev->kind) {
    case SB_EV_CUSTOMER_MESSAGE:
        set_text(t, ev->text, ev->auto_reply);
        t->last_customer_at = now;
        t->last_activity_at = now;
        if (t->info.status == SB_STATUS_PENDING)
            set_status(eng, t, SB_STATUS_OPEN, now, fx);
        if (!t->awaiting_agent) {
            t->awaiting_agent = true;
            t->waiting_since = now;
            if (t->first_response_at != 0) {
                sla_start(eng, t, SB_SLA_NEXT_RESPONSE, now);
                sla_rearm(eng, t, now, fx, true);
            }
            unanswered_arm(eng, t, now);
        }
        arm_time_rules(eng, t, now);
        raise_trigger(eng, t, SB_TRIGGER_MESSAGE_CUSTOMER);
        return 0;
    case SB_EV_AGENT_REPLY: {
        agent *by = find_agent(eng, ev->agent_id);
        if (by == NULL)
            return SB_ENOTFOUND;
        by->missed_in_row = 0;
        bool first = t->first_response_at == 0;
        if (first) {
            t->first_response_at = now;
            sla_stop(t, SB_SLA_FIRST_RESPONSE, now, fx);
        }
        sla_stop(t, SB_SLA_NEXT_RESPONSE, now, fx);
        t->awaiting_agent = false;
        t->last_agent_at = now;
        t->last_activity_at = now;
        t->last_responder = by->cfg.id;
        if (ev->agent_id == t->info.assignee_id)
            t->gen_unanswered = ++eng->gen_next;
        if (t->info.status == SB_STATUS_NEW)
            set_status(eng, t, SB_STATUS_OPEN, now, fx);
        sla_rearm(eng, t, now, fx, true);
        arm_time_rules(eng, t, now);
        raise_trigger(eng, t, SB_TRIGGER_MESSAGE_AGENT);
        return 0;
    }
    case SB_EV_STATUS:
        if ((unsigned)ev->status > SB_STATUS_CLOSED)
            return SB_EINVAL;
        if (ev->agent_id != 0 && ev->agent_id == t->info.assignee_id)
            t->gen_unanswered = ++eng->gen_next;
        set_status(eng, t, ev->status, now, fx);
        return 0;
    case SB_EV_PRIORITY:
        if ((unsigned)ev->priority > SB_PRIORITY_URGENT)
            return SB_EINVAL;
        set_priority(eng, t, ev->priority, now, fx);
        return 0;
    case SB_EV_ASSIGN: {
        agent *a = NULL;
        if (ev->agent_id != 0 && (a = find_agent(eng, ev->agent_id)) == NULL)
            return SB_ENOTFOUND;
        if (ev->team_id != 0 && find_team(eng, ev->team_id) == NULL)
            return SB_ENOTFOUND;
        agent *prev = find_agent(eng, t->info.assignee_id);
        if (ev->team_id != 0 && ev->team_id != t->info.team_id) {
            dequeue(eng, t);
            t->info.team_id = ev->team_id;
        }
        t->preferred_id = 0;
        t->gen_sticky = ++eng->gen_next;
        if (a != NULL) {
            set_assignee(eng, t, a, now, "manual", fx);
        } else {
            if (prev != NULL)
                set_assignee(eng, t, NULL, now, "manual", fx);
            route(eng, t, now, fx);
        }
        if (prev != NULL && prev != a)
            agent_freed(eng, prev, now, fx);
        return 0;
    }
    case SB_EV_TAKE: {
        agent *a = find_agent(eng, ev->agent_id);
        if (a == NULL)
            return SB_ENOTFOUND;
        if (t->info.assignee_id != 0)
            return SB_ECONFLICT;
        if (t->info.team_id != 0 && !agent_in_team(a, t->info.team_id))
            return SB_EINVAL;
        t->preferred_id = 0;
        t->gen_sticky = ++eng->gen_next;
        set_assignee(eng, t, a, now, "taken", fx);
        return 0;
    }
    default: return SB_EINVAL;
    }
}

/* Arms a task's next moment: its reminder, then its due time. */
static void task_arm(sb_engine *eng, task *k)
{
    k->gen = ++eng->gen_next;
    int64_t at = INT64_MAX;
    if (!k->reminded && k->info.remind_at != 0 && k->info.remind_at < k->info.due_at)
        at = k->info.remind_at;
    else if (!k->overdue)
        at = k->info.due_at;
    if (at != INT64_MAX)
        arm(eng, TIMER_TASK, k->info.id, k->gen, at);
}

static int task_put(sb_engine *eng, const sb_task_info *info)
{
    if (info->id <= 0 || info->due_at <= 0)
        return SB_EINVAL;
    task *k = (task *)find_task_const(eng, info->id);
    if (k == NULL) {
        if (eng->ntasks == eng->cap_tasks) {
            eng->cap_tasks = eng->cap_tasks ? eng->cap_tasks * 2 : 16;
            eng->tasks = sb_xrealloc(eng->tasks, eng->cap_tasks * sizeof *eng->tasks);
        }
        k = &eng->tasks[eng->ntasks++];
        memset(k, 0, sizeof *k);
    } else if (info->due_at != k->info.due_at || info->remind_at != k->info.remind_at) {
        k->reminded = k->overdue = false; /* new times, new chances */
    }
    k->info = *info;
    task_arm(eng, k);
    return 0;
}

static int task_done(sb_engine *eng, int64_t id)
{
    for (size_t i = 0; i < eng->ntasks; i++)
        if (eng->tasks[i].info.id == id) {
            eng->tasks[i] = eng->tasks[--eng->ntasks];
            return 0;
        }
    return SB_ENOTFOUND;
}

static void task_fire(sb_engine *eng, task *k, int64_t now, sb_effects *fx)
{
    ticket *t = k->info.ticket_id != 0 ? find_ticket(eng, k->info.ticket_id) : NULL;
    bool remind = !k->reminded && k->info.remind_at != 0 && k->info.remind_at < k->info.due_at;
    size_t first = fx->n;
    sb_effect *e = push_effect(fx, remind ? SB_FX_TASK_REMINDER : SB_FX_TASK_OVERDUE, t, now);
    e->task_id = k->info.id;
    e->due_at = k->info.due_at;
    e->ticket_id = k->info.ticket_id;
    agent *a = standing_in(eng, find_agent(eng, k->info.assignee_id), now);
    e->agent_id = a != NULL ? a->cfg.id : k->info.assignee_id;
    if (remind) {
        k->reminded = true;
        if (a != NULL)
            notify(eng, a->cfg.id, t, now, "task_reminder", fx);
    } else {
        k->overdue = true;
        if (a != NULL)
            notify(eng, a->cfg.id, t, now, "task_overdue", fx);
        if (t != NULL) {
            team *tm = find_team(eng, t->info.team_id);
            if (tm != NULL && tm->cfg.supervisor_id != 0)
                notify(eng, tm->cfg.supervisor_id, t, now, "task_overdue", fx);
            raise_trigger(eng, t, SB_TRIGGER_TASK_OVERDUE);
        }
    }
    for (size_t i = first; i < fx->n; i++)
        fx->v[i].task_id = k->info.id;
    task_arm(eng, k);
}

static int dispatch(sb_engine *eng, const sb_event *ev, int64_t now, sb_effects *fx)
{
    switch (ev->kind) {
    case SB_EV_TASK: return task_put(eng, &ev->task);
    case SB_EV_TASK_DONE: return task_done(eng, ev->task.id);
    case SB_EV_ON_CALL: {
        agent *a = find_agent(eng, ev->agent_id);
        if (a == NULL)
            return SB_ENOTFOUND;
        a->on_call = ev->on_call;
        if (!a->on_call)
            agent_freed(eng, a, now, fx); /* the queue may have waited for them */
        return 0;
    }
    case SB_EV_TICKET_NEW: return ticket_new(eng, &ev->ticket, ev->text, ev->auto_reply, ev->restored, now, fx);
    case SB_EV_CUSTOMER_MESSAGE:
    case SB_EV_AGENT_REPLY:
    case SB_EV_STATUS:
    case SB_EV_PRIORITY:
    case SB_EV_ASSIGN:
    case SB_EV_TAKE: {
        ticket *t = find_ticket(eng, ev->ticket_id);
        if (t == NULL)
            return SB_ENOTFOUND;
        return handle_ticket_event(eng, ev, t, now, fx);
    }
    case SB_EV_PRESENCE: {
        agent *a = find_agent(eng, ev->agent_id);
        if (a == NULL)
            return SB_ENOTFOUND;
        if ((unsigned)ev->presence > SB_PRESENCE_ONLINE)
            return SB_EINVAL;
        a->presence = ev->presence;
        a->missed_in_row = 0;
        agent_freed(eng, a, now, fx);
        return 0;
    }
    case SB_EV_ABSENCE: {
        agent *a = find_agent(eng, ev->agent_id);
        if (a == NULL)
            return SB_ENOTFOUND;
        if (ev->deputy_id != 0 && (ev->deputy_id == a->cfg.id || find_agent(eng, ev->deputy_id) == NULL))
            return SB_EINVAL;
        a->absent_until = ev->until;
        a->deputy_id = ev->deputy_id;
        a->gen_absence = ++eng->gen_next;
        if (ev->until > now)
            arm(eng, TIMER_ABSENCE_END, a->cfg.id, a->gen_absence, ev->until);
        else
            agent_freed(eng, a, now, fx);
        return 0;
    }
    case SB_EV_HANDOVER: {
        agent *a = find_agent(eng, ev->agent_id);
        if (a == NULL)
            return SB_ENOTFOUND;
        agent *d = find_agent(eng, a->deputy_id);
        if (d == NULL)
            return SB_EINVAL;
        /* Collect first: reassigning changes nothing in the hash, but keep
         * the walk independent of what set_assignee does. */
        ticket **mine = NULL;
        size_t n = 0;
        for (size_t i = 0; i < eng->nbuckets; i++)
            for (ticket *t = eng->buckets[i]; t != NULL; t = t->hash_next)
                if (t->info.assignee_id == a->cfg.id) {
                    mine = sb_xrealloc(mine, (n + 1) * sizeof *mine);
                    mine[n++] = t;
                }
        for (size_t i = 0; i < n; i++)
            set_assignee(eng, mine[i], d, now, "handover", fx);
        free(mine);
        return 0;
    }
    default: return SB_EINVAL;
    }
}

int sb_engine_handle(sb_engine *eng, const sb_event *ev, int64_t now, sb_effects *fx)
{
    if (ev->without_rules)
        eng->depth = MAX_RULE_DEPTH; /* raise_trigger and run_rules do nothing at this depth */
    int rc = dispatch(eng, ev, now, fx);
    if (ev->without_rules) {
        eng->depth = 0;
        eng->npending = 0;
    }
    run_pending(eng, now, fx);
    return rc;
}

static void fire(sb_engine *eng, const sb_timer *tm, int64_t now, sb_effects *fx)
{
    int64_t id = (int64_t)tm->key;
    if (tm->kind == TIMER_TASK) {
        task_fire(eng, (task *)find_task_const(eng, id), now, fx);
        return;
    }
    if (tm->kind == TIMER_ABSENCE_END) {
        agent_freed(eng, find_agent(eng, id), now, fx);
        return;
    }
    ticket *t = find_ticket(eng, id);
    switch ((timer_kind)tm->kind) {
    case TIMER_SLA: sla_fire(eng, t, now, fx); break;
    case TIMER_RULE: fire_time_rule(eng, t, tm->aux, now, fx); break;
    case TIMER_STICKY:
        if (t->preferred_id != 0 && t->info.assignee_id == 0) {
            t->preferred_id = 0;
            dequeue(eng, t);
            route(eng, t, now, fx);
        }
        break;
    case TIMER_UNANSWERED: {
        agent *a = find_agent(eng, t->info.assignee_id);
        if (a == NULL)
            break;
        team *team_of = find_team(eng, t->info.team_id);
        t->ignored_by = a->cfg.id;
        a->missed_in_row++;
        set_assignee(eng, t, NULL, now, "unanswered", fx);
        int64_t supervisor = team_of != NULL ? team_of->cfg.supervisor_id : 0;
        if (supervisor != 0)
            notify(eng, supervisor, t, now, "unanswered", fx);
        /* Like a queue's auto-pause: someone who lets several tickets in a
         * row go unanswered is probably not at the desk. */
        if (team_of != NULL && team_of->cfg.auto_away_after > 0 && a->missed_in_row >= team_of->cfg.auto_away_after &&
            a->presence == SB_PRESENCE_ONLINE) {
            a->presence = SB_PRESENCE_AWAY;
            sb_effect *e = push_effect(fx, SB_FX_PRESENCE, NULL, now);
            e->agent_id = a->cfg.id;
            e->presence = SB_PRESENCE_AWAY;
            e->reason = "auto_away";
            if (supervisor != 0)
                notify(eng, supervisor, t, now, "auto_away", fx);
        }
        route(eng, t, now, fx);
        break;
    }
    default: break;
    }
}

void sb_engine_tick(sb_engine *eng, int64_t now, sb_effects *fx)
{
    sb_timer tm;
    while (sb_theap_pop_due(&eng->timers, now, &tm)) {
        if (timer_live(eng, &tm))
            fire(eng, &tm, now, fx);
        run_pending(eng, now, fx);
    }
}

/* ---- reading ---- */

/* `position`: find the ticket's place in its queue (a binary search of a
 * queue that may hold 100,000 tickets: a cache miss per step, which
 * dominated walking every ticket, so the walk skips it). */
static void ticket_view(const ticket *t, sb_ticket_view *out, bool position)
{
    memset(out, 0, sizeof *out);
    out->id = t->info.id;
    out->status = t->info.status;
    out->priority = t->info.priority;
    out->team_id = t->info.team_id;
    out->assignee_id = t->info.assignee_id;
    out->queued = t->queue_team != NULL;
    if (t->queue_team != NULL && position)
        out->queue_position = (int)queue_lower_bound(t->queue_team, t) + 1;
    for (int c = 0; c < SB_SLA_CLOCK_COUNT; c++) {
        const sla_clock_state *s = &t->sla[c];
        out->due[c] = s->due;
        out->breached[c] = s->breached;
        out->sla_breached |= s->active && s->breached;
        out->sla_at_risk |= s->active && s->warned && !s->breached;
    }
    out->first_response_at = t->first_response_at;
    out->reassignments = t->reassignments;
    out->created_at = t->info.created_at;
    out->waiting_since = t->awaiting_agent ? t->waiting_since : 0;
    out->channel_type = t->info.channel_type;
}

int sb_engine_ticket(const sb_engine *eng, int64_t id, sb_ticket_view *out)
{
    const ticket *t = find_ticket(eng, id);
    if (t == NULL)
        return SB_ENOTFOUND;
    ticket_view(t, out, true);
    return 0;
}

static void agent_view(const agent *a, sb_agent_view *out)
{
    *out = (sb_agent_view){.id = a->cfg.id,
                           .presence = a->presence,
                           .load = a->load,
                           .capacity = a->cfg.capacity,
                           .open_tickets = a->open,
                           .absent_until = a->absent_until,
                           .deputy_id = a->deputy_id,
                           .name = a->cfg.name,
                           .supervisor = a->cfg.supervisor,
                           .on_call = a->on_call};
}

int sb_engine_agent(const sb_engine *eng, int64_t id, sb_agent_view *out)
{
    const agent *a = find_agent(eng, id);
    if (a == NULL)
        return SB_ENOTFOUND;
    agent_view(a, out);
    return 0;
}

void sb_engine_each_ticket(const sb_engine *eng, void (*fn)(void *arg, const sb_ticket_view *t), void *arg)
{
    sb_ticket_view v;
    for (size_t b = 0; b < eng->nbuckets; b++)
        for (const ticket *t = eng->buckets[b]; t != NULL; t = t->hash_next) {
            ticket_view(t, &v, false);
            fn(arg, &v);
        }
}

void sb_engine_each_agent(const sb_engine *eng, void (*fn)(void *arg, const sb_agent_view *a), void *arg)
{
    sb_agent_view v;
    for (size_t i = 0; i < eng->nagents; i++) {
        agent_view(eng->agents[i], &v);
        fn(arg, &v);
    }
}

void sb_engine_each_team(const sb_engine *eng, void (*fn)(void *arg, int64_t id, const char *name), void *arg)
{
    for (size_t i = 0; i < eng->nteams; i++)
        fn(arg, eng->teams[i]->cfg.id, eng->teams[i]->cfg.name);
}

void sb_engine_on_leave(sb_engine *eng, sb_engine_leave_fn fn, void *arg)
{
    eng->on_leave = fn;
    eng->on_leave_arg = arg;
}

int sb_engine_queue_length(const sb_engine *eng, int64_t team_id)
{
    const team *tm = find_team((sb_engine *)eng, team_id);
    return tm != NULL ? (int)tm->nqueue : -1;
}

size_t sb_engine_open_tickets(const sb_engine *eng)
{
    return eng->ntickets;
}

int sb_engine_check(const sb_engine *eng, char *msg, size_t cap)
{
    int bad = 0;
    if (cap > 0)
        msg[0] = '\0';
#define VIOLATION(...)                                                                                                 \
    do {                                                                                                               \
        if (bad++ == 0 && cap > 0)                                                                                     \
            snprintf(msg, cap, __VA_ARGS__);                                                                           \
    } while (0)
    double *load = sb_xcalloc(eng->nagents + 1, sizeof *load);
    int *open = sb_xcalloc(eng->nagents + 1, sizeof *open);
    for (size_t i = 0; i < eng->nbuckets; i++)
        for (const ticket *t = eng->buckets[i]; t != NULL; t = t->hash_next) {
            bool assigned = t->info.assignee_id != 0;
            if (assigned && t->queue_team != NULL)
                VIOLATION("ticket %lld is assigned to %lld and queued", (long long)t->info.id,
                          (long long)t->info.assignee_id);
            if (!assigned && t->queue_team == NULL)
                VIOLATION("ticket %lld has no owner and no queue place", (long long)t->info.id);
            if (t->queue_team != NULL) {
                const team *tm = t->queue_team;
                size_t k = queue_lower_bound(tm, t);
                if (k >= tm->nqueue || tm->queue[k] != t)
                    VIOLATION("ticket %lld is not where its queue says", (long long)t->info.id);
            }
            for (size_t j = 0; assigned && j < eng->nagents; j++)
                if (eng->agents[j]->cfg.id == t->info.assignee_id) {
                    open[j]++;
                    if (t->counted)
                        load[j] += t->weight;
                }
        }
    size_t queued = 0;
    for (size_t i = 0; i <= eng->nteams; i++) {
        const team *tm = i < eng->nteams ? eng->teams[i] : &eng->unassigned;
        queued += tm->nqueue;
        for (size_t k = 0; k < tm->nqueue; k++) {
            if (tm->queue[k]->queue_team != tm)
                VIOLATION("queue of team %lld holds ticket %lld that belongs elsewhere", (long long)tm->cfg.id,
                          (long long)tm->queue[k]->info.id);
            if (k > 0 && !queue_before(tm->queue[k - 1], tm->queue[k]))
                VIOLATION("queue of team %lld is out of order at %zu", (long long)tm->cfg.id, k);
        }
    }
    size_t unowned = 0;
    for (size_t i = 0; i < eng->nbuckets; i++)
        for (const ticket *t = eng->buckets[i]; t != NULL; t = t->hash_next)
            unowned += t->queue_team != NULL;
    if (unowned != queued)
        VIOLATION("queues hold %zu tickets but %zu tickets are queued", queued, unowned);
    for (size_t j = 0; j < eng->nagents; j++) {
        const agent *a = eng->agents[j];
        if (fabs(a->load - load[j]) > 1e-6)
            VIOLATION("agent %lld has load %.4f but owns %.4f", (long long)a->cfg.id, a->load, load[j]);
        if (a->open != open[j])
            VIOLATION("agent %lld counts %d tickets but owns %d", (long long)a->cfg.id, a->open, open[j]);
    }
    free(load);
    free(open);
#undef VIOLATION
    return bad;
}
