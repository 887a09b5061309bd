/* simday.c - a contact-center day replayed on a virtual clock against the
 * real engine (src/engine/engine.c), in well under a second.
 *
 * Wednesday 2026-11-18 in Moscow (UTC+3), then the night and the next
 * morning until 12:00. Requests arrive by a Poisson process whose rate
 * follows a working day (quiet night, peaks at 10-12 and 15-17), over chat,
 * email and calls, for two teams. 18 agents work three 9-hour shifts
 * (from 07, 09 and 12 local), so nobody is online from 21:00 to 07:00; two agents are
 * absent all day with deputies; one agent never answers; 10 % of customers
 * are VIPs with a tighter SLA; 30 % are returning customers with an owner;
 * at 14:00 a burst of 300 urgent messages lands within ten minutes.
 * Simulated agents answer what they are given after a think time that
 * depends on the channel, talk a little and resolve; at the end of a shift
 * they hand their open tickets back to the queue.
 *
 * Asserted: the engine's invariants after every step (one owner at most,
 * every open ticket owned or queued, loads consistent); every breach
 * reached the team's supervisor; every ticket was answered and resolved by
 * the end; nothing is left in a queue. Prints FRT and SLA figures.
 *
 * Usage: simday [--seed N] [--requests N] [--quiet] */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "engine/engine.h"

#define SEC  1000LL
#define MIN  (60 * SEC)
#define HOUR (60 * MIN)
/* 2026-11-18 00:00 Moscow = 2026-11-17 21:00 UTC */
#define DAY0 1794949200000LL

#define NAGENTS       20
#define TEMPLATE_ACK  1
#define RULE_URGENT   1
#define RULE_ESCALATE 4
#define IGNORER       7
#define SUP_SALES     19
#define SUP_SUPP      20

#define FAIL(...)                                                                                                      \
    do {                                                                                                               \
        fprintf(stderr, "simday: FAIL: " __VA_ARGS__);                                                                 \
        fprintf(stderr, "\n");                                                                                         \
        exit(1);                                                                                                       \
    } while (0)

/* ---- a small deterministic PRNG (xorshift64*) ---- */

static uint64_t rng_state = 0x5eed5eed;

static double uniform(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return (double)((rng_state * 2685821657736338717ull) >> 11) / 9007199254740992.0;
}

static int64_t between(int64_t lo, int64_t hi)
{
    return lo + (int64_t)(uniform() * (double)(hi - lo));
}

/* ---- simulation events ---- */

typedef enum sim_kind {
    SIM_ARRIVAL,
    SIM_AGENT_REPLY,    /* the agent a ticket is assigned to answers */
    SIM_CUSTOMER_REPLY, /* the customer writes again */
    SIM_RESOLVE,
    SIM_SHIFT_START,
    SIM_SHIFT_END,
} sim_kind;

typedef struct sim_event {
    int64_t at;
    int64_t seq;
    sim_kind kind;
    int64_t ticket;
    int64_t agent;
    uint32_t gen; /* the ticket's assignment generation it was planned for */
} sim_event;

typedef struct sim_heap {
    sim_event *v;
    size_t n, cap;
    int64_t seq;
} sim_heap;

static bool ev_before(const sim_event *a, const sim_event *b)
{
    return a->at != b->at ? a->at < b->at : a->seq < b->seq;
}

static void sim_push(sim_heap *h, sim_event e)
{
    if (h->n == h->cap) {
        h->cap = h->cap ? h->cap * 2 : 1024;
        h->v = realloc(h->v, h->cap * sizeof *h->v);
    }
    e.seq = h->seq++;
    size_t i = h->n++;
    h->v[i] = e;
    while (i > 0 && ev_before(&h->v[i], &h->v[(i - 1) / 2])) {
        sim_event t = h->v[i];
        h->v[i] = h->v[(i - 1) / 2];
        h->v[(i - 1) / 2] = t;
        i = (i - 1) / 2;
    }
}

static sim_event sim_pop(sim_heap *h)
{
    sim_event top = h->v[0];
    h->v[0] = h->v[--h->n];
    for (size_t i = 0;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < h->n && ev_before(&h->v[l], &h->v[m]))
            m = l;
        if (r < h->n && ev_before(&h->v[r], &h->v[m]))
            m = r;
        if (m == i)
            break;
        sim_event t = h->v[i];
        h->v[i] = h->v[m];
        h->v[m] = t;
        i = m;
    }
    return top;
}

/* ---- what the simulation remembers per ticket ---- */

typedef struct sim_ticket {
    sb_channel_kind channel;
    int64_t team;
    int64_t created_at;
    int64_t owner;
    uint32_t gen;
    int exchanges_left;
    bool resolved;
    bool vip;
    sb_priority priority;
    int64_t first_response_at;
    int breaches, escalations, rule_escalations, acks;
    bool burst, urgent_by_rule;
} sim_ticket;

typedef struct sim {
    sb_engine *eng;
    sb_effects fx;
    sim_heap heap;
    sim_ticket *t; /* index = ticket id */
    int64_t nt;
    int64_t now;
    bool on_shift[NAGENTS + 1];
    /* figures */
    long assigns, reassigns, unanswered, auto_away, queued, breaches[SB_SLA_CLOCK_COUNT], met[SB_SLA_CLOCK_COUNT],
        missed[SB_SLA_CLOCK_COUNT], warnings, escalations, checks, sticky, deputy;
    int max_queue;
    int64_t *frt; /* first response times, ms */
    size_t nfrt;
} sim;

static void check(sim *s)
{
    char msg[256];
    s->checks++;
    if (sb_engine_check(s->eng, msg, sizeof msg) != 0)
        FAIL("invariant at %lld: %s", (long long)s->now, msg);
}

static int64_t think_time(sb_channel_kind ch)
{
    switch (ch) {
    case SB_CHANNEL_CALL: return between(5 * SEC, 30 * SEC);
    case SB_CHANNEL_EMAIL: return between(1 * MIN, 6 * MIN);
    default: return between(10 * SEC, 90 * SEC);
    }
}

/* Reacts to what the engine decided. */
static void apply_effects(sim *s)
{
    for (size_t i = 0; i < s->fx.n; i++) {
        const sb_effect *e = &s->fx.v[i];
        sim_ticket *t = e->ticket_id > 0 && e->ticket_id <= s->nt ? &s->t[e->ticket_id] : NULL;
        switch (e->kind) {
        case SB_FX_ASSIGN:
            if (t == NULL)
                FAIL("assignment of unknown ticket %lld", (long long)e->ticket_id);
            if (e->agent_id != 0) {
                s->assigns++;
                if (t->owner != 0 || t->gen > 0)
                    s->reassigns += t->gen > 0;
                if (e->reason != NULL && strcmp(e->reason, "sticky") == 0)
                    s->sticky++;
                if (e->reason != NULL && strcmp(e->reason, "deputy") == 0)
                    s->deputy++;
            } else if (e->reason != NULL && strcmp(e->reason, "unanswered") == 0) {
                s->unanswered++;
            }
            t->owner = e->agent_id;
            t->gen++;
            if (e->agent_id != 0 && e->agent_id != IGNORER && !t->resolved)
                sim_push(&s->heap, (sim_event){.at = s->now + think_time(t->channel),
                                               .kind = SIM_AGENT_REPLY,
                                               .ticket = e->ticket_id,
                                               .agent = e->agent_id,
                                               .gen = t->gen});
            break;
        case SB_FX_QUEUE: s->queued++; break;
        case SB_FX_SLA_EVENT:
            if (e->sla_state == SB_SLA_BREACHED) {
                s->breaches[e->sla_clock]++;
                t->breaches++;
            } else if (e->sla_state == SB_SLA_MET) {
                s->met[e->sla_clock]++;
            } else if (e->sla_state == SB_SLA_MISSED) {
                s->missed[e->sla_clock]++;
            } else {
                s->warnings++;
            }
            break;
        case SB_FX_REPLY:
            if (e->template_id != TEMPLATE_ACK)
                break;
            t->acks++;
            if (e->text == NULL || (strstr(e->text, "№") == NULL && strstr(e->text, "#") == NULL))
                FAIL("acknowledgement without the ticket number: %s", e->text ? e->text : "(null)");
            break;
        case SB_FX_PRIORITY:
            if (e->rule_id == RULE_URGENT && e->priority == SB_PRIORITY_URGENT)
                t->urgent_by_rule = true;
            break;
        case SB_FX_NOTIFY:
            if (e->rule_id == RULE_ESCALATE && e->agent_id == (t->team == 1 ? SUP_SALES : SUP_SUPP))
                t->rule_escalations++;
            if (e->reason != NULL && strcmp(e->reason, "sla_breached") == 0) {
                if (e->agent_id != (t->team == 1 ? SUP_SALES : SUP_SUPP))
                    FAIL("breach of ticket %lld went to agent %lld", (long long)e->ticket_id, (long long)e->agent_id);
                s->escalations++;
                t->escalations++;
            }
            break;
        case SB_FX_PRESENCE:
            if (e->reason != NULL && strcmp(e->reason, "auto_away") == 0)
                s->auto_away++;
            break;
        default: break;
        }
    }
    sb_effects_reset(&s->fx);
}

static void handle(sim *s, sb_event ev)
{
    int rc = sb_engine_handle(s->eng, &ev, s->now, &s->fx);
    if (rc != 0)
        FAIL("event %d for ticket %lld rejected: %d", (int)ev.kind, (long long)ev.ticket_id, rc);
    apply_effects(s);
    check(s);
}

/* Arrivals per hour (local) for 10,000 a day: a working day's curve. */
static const double hourly_share[24] = {
    0.4, 0.3, 0.2, 0.2, 0.2, 0.3, 0.6, 1.5, 3.5, 6.0, 9.0, 9.5, /* 00-11: peak 10-12 */
    7.0, 6.5, 7.0, 9.0, 9.5, 7.5, 5.0, 3.5, 2.5, 1.8, 1.2, 0.8, /* 12-23: peak 15-17 */
};

static void plan_arrivals(sim *s, long requests)
{
    double total = 0;
    for (int h = 0; h < 24; h++)
        total += hourly_share[h];
    /* thinning: draw exponential gaps at the peak rate, keep by the curve */
    double peak = 0;
    for (int h = 0; h < 24; h++)
        peak = fmax(peak, hourly_share[h]);
    double per_ms_peak = (double)requests * peak / total / (double)HOUR;
    long n = 0;
    for (double at = 0; n < requests;) {
        at += -log(1.0 - uniform()) / per_ms_peak;
        if (at >= 24.0 * HOUR)
            at = 0; /* wrap: keep the day's count exact */
        int h = (int)(at / HOUR);
        if (uniform() * peak < hourly_share[h]) {
            sim_push(&s->heap, (sim_event){.at = DAY0 + (int64_t)at, .kind = SIM_ARRIVAL});
            n++;
        }
    }
    /* the "срочно" burst: 300 urgent messages from 14:00 to 14:10 */
    for (int i = 0; i < 300; i++)
        sim_push(&s->heap,
                 (sim_event){.at = DAY0 + 14 * HOUR + between(0, 10 * MIN), .kind = SIM_ARRIVAL, .agent = -1});
}

static void setup_engine(sim *s)
{
    s->eng = sb_engine_new(NULL);
    sb_engine_team_cfg sales = {.id = 1,
                                .strategy = SB_STRATEGY_ROUND_ROBIN,
                                .supervisor_id = SUP_SALES,
                                .unanswered_ms = {[SB_CHANNEL_CHAT] = 5 * MIN, [SB_CHANNEL_CALL] = MIN},
                                .sticky_wait_ms = 2 * MIN,
                                .auto_away_after = 3};
    sb_engine_team_cfg support = sales;
    support.id = 2;
    support.strategy = SB_STRATEGY_LEAST_BUSY;
    support.supervisor_id = SUP_SUPP;
    sb_engine_put_team(s->eng, &sales);
    sb_engine_put_team(s->eng, &support);
    for (int64_t id = 1; id <= NAGENTS; id++) {
        sb_engine_agent_cfg a = {.id = id, .capacity = 1.5}; /* 4 chats, or 15 emails, or a call */
        if (id <= 8) {
            a.teams[a.nteams++] = 1;
        } else if (id <= 18) {
            a.teams[a.nteams++] = 2;
        } else {
            a.supervisor = true;
        }
        sb_engine_put_agent(s->eng, &a);
    }
    /* SLA: VIPs first (first match wins), then everyone. Calendar time:
     * chats and calls are answered around the clock when someone is in. */
    sb_sla_policy vip = {.id = 1, .channel_kind = -1, .vip = 1, .warn_pct = 80};
    sb_sla_policy rest = {.id = 2, .channel_kind = -1, .vip = -1, .warn_pct = 80};
    for (int p = 0; p < 4; p++) {
        vip.targets[p] =
            (sb_sla_targets){.first_response_ms = 5 * MIN, .next_response_ms = 10 * MIN, .resolution_ms = 4 * HOUR};
        rest.targets[p] =
            (sb_sla_targets){.first_response_ms = 30 * MIN, .next_response_ms = 30 * MIN, .resolution_ms = 24 * HOUR};
    }
    rest.targets[SB_PRIORITY_URGENT].first_response_ms = 15 * MIN;
    sb_engine_put_sla_policy(s->eng, &vip);
    sb_engine_put_sla_policy(s->eng, &rest);
    /* absences: 3 (deputy 4) and 12 (deputy 13) are away until tomorrow night */
    handle(s, (sb_event){.kind = SB_EV_ABSENCE, .agent_id = 3, .until = DAY0 + 48 * HOUR, .deputy_id = 4});
    handle(s, (sb_event){.kind = SB_EV_ABSENCE, .agent_id = 12, .until = DAY0 + 48 * HOUR, .deputy_id = 13});
    /* three shifts of 9 hours starting 07:00, 09:00 and 12:00 (by id mod 3),
     * both days: nobody is online from 21:00 to 07:00 */
    for (int day = 0; day < 2; day++)
        for (int64_t id = 1; id <= 18; id++) {
            int64_t start = DAY0 + day * 24 * HOUR + (int64_t[]){7, 9, 12}[id % 3] * HOUR;
            sim_push(&s->heap, (sim_event){.at = start, .kind = SIM_SHIFT_START, .agent = id});
            sim_push(&s->heap, (sim_event){.at = start + 9 * HOUR, .kind = SIM_SHIFT_END, .agent = id});
        }
}

/* What customers write, in the languages our users' customers use. */
static const char *const texts[] = {
    "Здравствуйте, у меня не работает доставка заказа",
    "Добрый день! Подскажите, когда будет возврат денег?",
    "Не могу войти в личный кабинет",
    "Добрий день, коли буде доставка?",
    "Сәлеметсіз бе, тапсырысым қашан келеді?",
    "Hello, my order has not arrived yet. Can you check it?",
    "Хочу изменить адрес доставки",
    "Спасибо, всё получил, но есть вопрос по гарантии",
};

static void rule_json(sim *s, const char *json)
{
    json_t *j = json_loads(json, 0, NULL);
    sb_rule *r = NULL;
    char field[64], msg[160];
    if (j == NULL || sb_rule_parse(j, &r, field, sizeof field, msg, sizeof msg) != 0)
        FAIL("rule rejected: %s: %s", field, msg);
    json_decref(j);
    if (sb_engine_put_rule(s->eng, r) != 0)
        FAIL("rule not accepted by the engine");
}

static void template_json(sim *s, int64_t id, const char *lang, const char *text)
{
    sb_template *t = NULL;
    char err[128];
    if (sb_template_parse(text, &t, err, sizeof err) != 0 || sb_engine_put_template(s->eng, id, lang, t) != 0)
        FAIL("template rejected: %s", err);
}

/* The automation a team would set up: acknowledge every request in the
 * customer's language, make "срочно" urgent, treat VIPs as high priority,
 * and escalate every SLA breach (bump the priority, tell the supervisor). */
static void setup_rules(sim *s)
{
    template_json(s, TEMPLATE_ACK, "ru", "Ваш запрос №{{ticket.number}} принят в работу");
    template_json(s, TEMPLATE_ACK, "uk", "Ваш запит №{{ticket.number}} прийнято в роботу");
    template_json(s, TEMPLATE_ACK, "kk", "Сіздің №{{ticket.number}} өтінішіңіз қабылданды");
    template_json(s, TEMPLATE_ACK, "en", "Your request #{{ticket.number}} has been received");
    rule_json(s, "{\"id\":1,\"name\":\"Срочно\",\"on\":[\"ticket.created\",\"message.customer\"],"
                 "\"when\":{\"field\":\"text\",\"op\":\"contains\",\"value\":[\"срочно\",\"urgent\"]},"
                 "\"actions\":[{\"type\":\"set_priority\",\"value\":\"urgent\"}]}");
    rule_json(s, "{\"id\":2,\"name\":\"VIP\",\"on\":[\"ticket.created\"],"
                 "\"when\":{\"all\":[{\"field\":\"contact.vip\",\"op\":\"is\",\"value\":true},"
                 "{\"field\":\"priority\",\"op\":\"in\",\"value\":[\"low\",\"normal\"]}]},"
                 "\"actions\":[{\"type\":\"set_priority\",\"value\":\"high\"}]}");
    rule_json(s, "{\"id\":3,\"name\":\"Ack\",\"on\":[\"ticket.created\"],\"once_per_ticket\":true,"
                 "\"actions\":[{\"type\":\"send_template\",\"id\":1}]}");
    rule_json(s, "{\"id\":4,\"name\":\"Escalate\",\"on\":[\"sla.breached\"],"
                 "\"actions\":[{\"type\":\"notify\",\"target\":\"supervisor\"}]}");
    rule_json(s, "{\"id\":5,\"name\":\"Bump\",\"on\":[\"sla.breached\"],"
                 "\"when\":{\"field\":\"priority\",\"op\":\"in\",\"value\":[\"low\",\"normal\"]},"
                 "\"actions\":[{\"type\":\"set_priority\",\"value\":\"high\"}]}");
}

static void arrival(sim *s, bool urgent)
{
    int64_t id = ++s->nt;
    s->t = realloc(s->t, (size_t)(id + 1) * sizeof *s->t);
    sim_ticket *t = &s->t[id];
    memset(t, 0, sizeof *t);
    double r = uniform();
    t->channel = r < 0.6 ? SB_CHANNEL_CHAT : r < 0.95 ? SB_CHANNEL_EMAIL : SB_CHANNEL_CALL;
    t->team = uniform() < 0.4 ? 1 : 2;
    t->vip = uniform() < 0.1;
    t->created_at = s->now;
    t->priority = SB_PRIORITY_NORMAL;
    t->burst = urgent;
    t->exchanges_left = (int)between(0, 2);
    sb_ticket_info info = {.id = id,
                           .number = id,
                           .contact_id = id,
                           .channel = t->channel,
                           .status = SB_STATUS_NEW,
                           .priority = t->priority,
                           .team_id = t->team,
                           .created_at = s->now,
                           .vip = t->vip,
                           .channel_type = {"webchat"}};
    if (uniform() < 0.3) /* returning: their owner is someone of that team */
        info.owner_id = t->team == 1 ? between(1, 9) : between(9, 19);
    const char *text = urgent ? "СРОЧНО!!! Не проходит оплата, помогите" : texts[between(0, SB_ARRAY_LEN(texts))];
    handle(s, (sb_event){.kind = SB_EV_TICKET_NEW, .ticket = info, .text = text});
}

static void agent_reply(sim *s, const sim_event *ev)
{
    sim_ticket *t = &s->t[ev->ticket];
    if (t->resolved || t->owner != ev->agent || t->gen != ev->gen || !s->on_shift[ev->agent])
        return; /* reassigned meanwhile, or the shift is over */
    handle(s, (sb_event){.kind = SB_EV_AGENT_REPLY, .ticket_id = ev->ticket, .agent_id = ev->agent});
    if (t->first_response_at == 0) {
        t->first_response_at = s->now;
        s->frt[s->nfrt++] = s->now - t->created_at;
    }
    if (t->exchanges_left-- > 0)
        sim_push(
            &s->heap,
            (sim_event){.at = s->now + between(15 * SEC, 90 * SEC), .kind = SIM_CUSTOMER_REPLY, .ticket = ev->ticket});
    else
        sim_push(&s->heap, (sim_event){.at = s->now + (t->channel == SB_CHANNEL_CALL ? between(1 * MIN, 4 * MIN)
                                                                                     : between(5 * SEC, 30 * SEC)),
                                       .kind = SIM_RESOLVE,
                                       .ticket = ev->ticket,
                                       .agent = ev->agent,
                                       .gen = t->gen});
}

static void customer_reply(sim *s, const sim_event *ev)
{
    sim_ticket *t = &s->t[ev->ticket];
    if (t->resolved)
        return;
    handle(s, (sb_event){.kind = SB_EV_CUSTOMER_MESSAGE, .ticket_id = ev->ticket});
    if (t->owner != 0 && t->owner != IGNORER && s->on_shift[t->owner])
        sim_push(&s->heap, (sim_event){.at = s->now + think_time(t->channel),
                                       .kind = SIM_AGENT_REPLY,
                                       .ticket = ev->ticket,
                                       .agent = t->owner,
                                       .gen = t->gen});
}

static void resolve(sim *s, const sim_event *ev)
{
    sim_ticket *t = &s->t[ev->ticket];
    if (t->resolved || t->owner != ev->agent || t->gen != ev->gen || !s->on_shift[ev->agent])
        return;
    handle(s, (sb_event){
                  .kind = SB_EV_STATUS, .ticket_id = ev->ticket, .status = SB_STATUS_RESOLVED, .agent_id = ev->agent});
    t->resolved = true;
}

static void shift_end(sim *s, int64_t agent_id)
{
    s->on_shift[agent_id] = false;
    handle(s, (sb_event){.kind = SB_EV_PRESENCE, .agent_id = agent_id, .presence = SB_PRESENCE_OFFLINE});
    /* hand open work back: the engine places it with whoever is still in */
    for (int64_t id = 1; id <= s->nt; id++)
        if (!s->t[id].resolved && s->t[id].owner == agent_id)
            handle(s, (sb_event){.kind = SB_EV_ASSIGN, .ticket_id = id, .agent_id = 0});
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    long requests = 10000;
    bool quiet = false;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--seed") == 0 && i + 1 < argc)
            rng_state = strtoull(argv[++i], NULL, 10) | 1;
        else if (strcmp(argv[i], "--requests") == 0 && i + 1 < argc)
            requests = strtol(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--quiet") == 0)
            quiet = true;
        else
            FAIL("usage: simday [--seed N] [--requests N] [--quiet]");
    }
    sim s = {.now = DAY0};
    s.frt = calloc((size_t)requests + 400, sizeof *s.frt);
    s.t = calloc(1, sizeof *s.t);
    setup_engine(&s);
    setup_rules(&s);
    plan_arrivals(&s, requests);
    int64_t end = DAY0 + 36 * HOUR; /* the next day, 12:00 */
    while (s.heap.n > 0 || sb_engine_next_deadline(s.eng) <= end) {
        int64_t next_sim = s.heap.n > 0 ? s.heap.v[0].at : INT64_MAX;
        int64_t next_eng = sb_engine_next_deadline(s.eng);
        if (next_eng <= next_sim && next_eng <= end) {
            s.now = next_eng > s.now ? next_eng : s.now;
            sb_engine_tick(s.eng, s.now, &s.fx);
            apply_effects(&s);
            check(&s);
            continue;
        }
        if (next_sim > end)
            break;
        sim_event ev = sim_pop(&s.heap);
        s.now = ev.at;
        switch (ev.kind) {
        case SIM_ARRIVAL: arrival(&s, ev.agent == -1); break;
        case SIM_AGENT_REPLY: agent_reply(&s, &ev); break;
        case SIM_CUSTOMER_REPLY: customer_reply(&s, &ev); break;
        case SIM_RESOLVE: resolve(&s, &ev); break;
        case SIM_SHIFT_START:
            s.on_shift[ev.agent] = true;
            handle(&s, (sb_event){.kind = SB_EV_PRESENCE, .agent_id = ev.agent, .presence = SB_PRESENCE_ONLINE});
            break;
        case SIM_SHIFT_END: shift_end(&s, ev.agent); break;
        }
        int q = sb_engine_queue_length(s.eng, 1) + sb_engine_queue_length(s.eng, 2);
        if (q > s.max_queue)
            s.max_queue = q;
    }

    /* ---- the day's verdict ---- */
    long unresolved = 0, unanswered_tickets = 0, breach_without_escalation = 0, ack_not_once = 0, burst_not_urgent = 0,
         urgent_not_burst = 0;
    for (int64_t id = 1; id <= s.nt; id++) {
        const sim_ticket *t = &s.t[id];
        unresolved += !t->resolved;
        unanswered_tickets += t->first_response_at == 0;
        breach_without_escalation += t->breaches != t->escalations || t->breaches != t->rule_escalations;
        ack_not_once += t->acks != 1;
        burst_not_urgent += t->burst && !t->urgent_by_rule;
        urgent_not_burst += !t->burst && t->urgent_by_rule;
    }
    long total_breaches = 0;
    for (int c = 0; c < SB_SLA_CLOCK_COUNT; c++)
        total_breaches += s.breaches[c];
    qsort(s.frt, s.nfrt, sizeof *s.frt, cmp_i64);
    double p50 = s.nfrt ? (double)s.frt[s.nfrt / 2] / MIN : 0, p90 = s.nfrt ? (double)s.frt[s.nfrt * 9 / 10] / MIN : 0;
    if (!quiet) {
        printf("simday: %lld requests (%ld + 300 urgent burst), 18 agents on three shifts, 2 supervisors\n",
               (long long)s.nt, requests);
        printf("  assignments %ld (sticky %ld, via deputy %ld), reassignments %ld, unanswered returns %ld, "
               "auto-away %ld\n",
               s.assigns, s.sticky, s.deputy, s.reassigns, s.unanswered, s.auto_away);
        printf("  queued %ld times, longest queue %d\n", s.queued, s.max_queue);
        printf("  first response: p50 %.1f min, p90 %.1f min (over %zu tickets; night arrivals wait for 07:00)\n", p50,
               p90, s.nfrt);
        for (int c = 0; c < SB_SLA_CLOCK_COUNT; c++) {
            long done = s.met[c] + s.missed[c];
            printf("  SLA %-15s met %ld, missed %ld (%.1f%% met), breaches %ld\n", sb_sla_clock_name((sb_sla_clock)c),
                   s.met[c], s.missed[c], done ? 100.0 * (double)s.met[c] / (double)done : 0.0, s.breaches[c]);
        }
        printf("  SLA warnings %ld, breaches %ld, escalated to a supervisor %ld\n", s.warnings, total_breaches,
               s.escalations);
        printf("  invariant checks %ld: all held; unresolved at the end %ld\n", s.checks, unresolved);
        printf("  rules: every ticket acknowledged once; 300 of 300 \"СРОЧНО\" messages made urgent by the rule; "
               "every breach escalated to the team's supervisor\n");
    }
    if (unresolved != 0 && getenv("SIMDAY_DEBUG") != NULL) {
        long by_owner[NAGENTS + 1] = {0}, queued_n = 0;
        for (int64_t id = 1; id <= s.nt; id++) {
            if (s.t[id].resolved)
                continue;
            sb_ticket_view v;
            sb_engine_ticket(s.eng, id, &v);
            queued_n += v.queued;
            if (v.assignee_id >= 0 && v.assignee_id <= NAGENTS)
                by_owner[v.assignee_id]++;
            if (v.assignee_id != 0)
                fprintf(
                    stderr,
                    "ticket %lld owner %lld sim-owner %lld ch %d status %d gen %u created %lld first %lld left %d\n",
                    (long long)id, (long long)v.assignee_id, (long long)s.t[id].owner, (int)s.t[id].channel,
                    (int)v.status, s.t[id].gen, (long long)(s.t[id].created_at - DAY0) / MIN,
                    (long long)s.t[id].first_response_at, s.t[id].exchanges_left);
        }
        fprintf(stderr, "unresolved: queued %ld; by owner:", queued_n);
        for (int i = 0; i <= NAGENTS; i++)
            fprintf(stderr, " %d:%ld", i, by_owner[i]);
        fprintf(stderr, "\n");
    }
    if (unresolved != 0 || unanswered_tickets != 0)
        FAIL("%ld tickets unresolved, %ld never answered", unresolved, unanswered_tickets);
    if (ack_not_once != 0)
        FAIL("%ld tickets did not get exactly one acknowledgement", ack_not_once);
    if (burst_not_urgent != 0 || urgent_not_burst != 0)
        FAIL("the \"срочно\" rule missed %ld and wrongly hit %ld", burst_not_urgent, urgent_not_burst);
    if (breach_without_escalation != 0)
        FAIL("%ld tickets with a breach that reached no supervisor", breach_without_escalation);
    if (sb_engine_open_tickets(s.eng) != 0)
        FAIL("%zu tickets still open in the engine", sb_engine_open_tickets(s.eng));
    if (s.unanswered == 0 || s.auto_away == 0 || s.deputy == 0 || s.sticky == 0)
        FAIL("the day did not exercise everything: unanswered %ld auto-away %ld deputy %ld sticky %ld", s.unanswered,
             s.auto_away, s.deputy, s.sticky);
    printf("simday: passed\n");
    sb_engine_free(s.eng);
    sb_effects_free(&s.fx);
    free(s.heap.v);
    free(s.t);
    free(s.frt);
    return 0;
}
