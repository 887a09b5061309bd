/* test_engine.c - the routing engine on a virtual clock: strategies,
 * capacity, queues, sticky owners, deputies, unanswered reassignment,
 * SLA clocks. Every test checks the engine's invariants after each step. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "engine/calendar.h"
#include "engine/engine.h"

#define MIN  (60 * 1000LL)
#define HOUR (60 * MIN)
#define T0   1795000000000LL /* 2026-11-18, an arbitrary Wednesday */

typedef struct world {
    sb_engine *eng;
    sb_effects fx;
    int64_t now;
    int64_t next_ticket;
} world;

static void check(world *w)
{
    char msg[256];
    int bad = sb_engine_check(w->eng, msg, sizeof msg);
    if (bad != 0)
        fail_msg("invariant broken (%d): %s", bad, msg);
}

static int handle(world *w, sb_event ev)
{
    int rc = sb_engine_handle(w->eng, &ev, w->now, &w->fx);
    check(w);
    return rc;
}

static void advance(world *w, int64_t ms)
{
    int64_t until = w->now + ms;
    for (;;) {
        int64_t d = sb_engine_next_deadline(w->eng);
        if (d > until)
            break;
        if (d > w->now)
            w->now = d;
        sb_engine_tick(w->eng, w->now, &w->fx);
        check(w);
    }
    w->now = until;
}

static void team(world *w, int64_t id, sb_strategy strategy)
{
    sb_engine_team_cfg t = {.id = id, .strategy = strategy, .supervisor_id = 100};
    assert_int_equal(sb_engine_put_team(w->eng, &t), 0);
}

static void team_cfg(world *w, sb_engine_team_cfg t)
{
    assert_int_equal(sb_engine_put_team(w->eng, &t), 0);
}

static void agent(world *w, int64_t id, int64_t team_id, bool online)
{
    sb_engine_agent_cfg a = {.id = id, .capacity = 1.0, .teams = {team_id}, .nteams = 1};
    assert_int_equal(sb_engine_put_agent(w->eng, &a), 0);
    if (online)
        assert_int_equal(handle(w, (sb_event){.kind = SB_EV_PRESENCE, .agent_id = id, .presence = SB_PRESENCE_ONLINE}),
                         0);
}

static int64_t ticket_full(world *w, sb_ticket_info info)
{
    info.id = ++w->next_ticket;
    info.number = info.id;
    info.contact_id = 1000 + info.id;
    if (info.created_at == 0)
        info.created_at = w->now;
    assert_int_equal(handle(w, (sb_event){.kind = SB_EV_TICKET_NEW, .ticket = info}), 0);
    return info.id;
}

static int64_t ticket(world *w, int64_t team_id, sb_channel_kind ch, sb_priority prio)
{
    return ticket_full(w,
                       (sb_ticket_info){.channel = ch, .status = SB_STATUS_NEW, .priority = prio, .team_id = team_id});
}

static sb_ticket_view view(world *w, int64_t id)
{
    sb_ticket_view v;
    assert_int_equal(sb_engine_ticket(w->eng, id, &v), 0);
    return v;
}

static int64_t owner(world *w, int64_t id)
{
    return view(w, id).assignee_id;
}

static int count_fx(world *w, sb_effect_kind kind, const char *reason, int64_t agent_id)
{
    int n = 0;
    for (size_t i = 0; i < w->fx.n; i++) {
        const sb_effect *e = &w->fx.v[i];
        if (e->kind == kind && (reason == NULL || (e->reason != NULL && strcmp(e->reason, reason) == 0)) &&
            (agent_id == 0 || e->agent_id == agent_id))
            n++;
    }
    return n;
}

static int setup(void **state)
{
    world *w = calloc(1, sizeof *w);
    w->eng = sb_engine_new(NULL);
    w->now = T0;
    *state = w;
    return 0;
}

static int teardown(void **state)
{
    world *w = *state;
    sb_engine_free(w->eng);
    sb_effects_free(&w->fx);
    free(w);
    return 0;
}

/* ---- strategies and capacity ---- */

static void test_round_robin_rotates_and_skips_offline(void **state)
{
    world *w = *state;
    team(w, 1, SB_STRATEGY_ROUND_ROBIN);
    agent(w, 11, 1, true);
    agent(w, 12, 1, false);
    agent(w, 13, 1, true);
    int64_t got[4];
    for (int i = 0; i < 4; i++)
        got[i] = owner(w, ticket(w, 1, SB_CHANNEL_CHAT, SB_PRIORITY_NORMAL));
    assert_int_equal(got[0], 11);
    assert_int_equal(got[1], 13);
    assert_int_equal(got[2], 11);
    assert_int_equal(got[3], 13);
    handle(w, (sb_event){.kind = SB_EV_PRESENCE, .agent_id = 12, .presence = SB_PRESENCE_ONLINE});
    assert_int_equal(owner(w, ticket(w, 1, SB_CHANNEL_CHAT, SB_PRIORITY_NORMAL)), 11);
    assert_int_equal(owner(w, ticket(w, 1, SB_CHANNEL_CHAT, SB_PRIORITY_NORMAL)), 12);
}

static void test_capacity_weights_by_channel(void **state)
{
    world *w = *state;
    team(w, 1, SB_STRATEGY_LEAST_BUSY);
    agent(w, 11, 1, true);
    /* capacity 1.0: three chats (1/3 each), then nothing more */
    for (int i = 0; i < 3; i++)
        assert_int_equal(owner(w, ticket(w, 1, SB_CHANNEL_CHAT, SB_PRIORITY_NORMAL)), 11);
    int64_t fourth = ticket(w, 1, SB_CHANNEL_CHAT, SB_PRIORITY_NORMAL);
    assert_int_equal(owner(w, fourth), 0);
    assert_true(view(w, fourth).queued);
    sb_agent_view a;
    sb_engine_agent(w->eng, 11, &a);
    assert_true(a.load > 0.999 && a.load < 1.001);
    assert_int_equal(a.open_tickets, 3);
    /* a call is a whole agent: it waits until everything else is done */
    int64_t call = ticket(w, 1, SB_CHANNEL_CALL, SB_PRIORITY_NORMAL);
    assert_int_equal(owner(w, call), 0);
    /* emails weigh 1/10 */
    agent(w, 12, 1, true);
    for (int i = 0; i < 10; i++)
        ticket(w, 1, SB_CHANNEL_EMAIL, SB_PRIORITY_LOW);
    sb_engine_agent(w->eng, 12, &a);
    /* agent 12 took the queued chat and the call first (higher in queue by age) */
    assert_int_equal(owner(w, fourth), 12);
}

/* A phone call takes the whole agent: no chat reaches them while they talk,
 * and what queued meanwhile comes to them when the call ends. */
static void test_agent_on_a_call_gets_no_new_work(void **state)
{
    world *w = *state;
    team(w, 1, SB_STRATEGY_ROUND_ROBIN);
    agent(w, 11, 1, true);
    assert_int_equal(handle(w, (sb_event){.kind = SB_EV_ON_CALL, .agent_id = 11, .on_call = true}), 0);
    sb_agent_view a;
    sb_engine_agent(w->eng, 11, &a);
    assert_true(a.on_call);
    int64_t chat = ticket(w, 1, SB_CHANNEL_CHAT, SB_PRIORITY_NORMAL);
    assert_int_equal(owner(w, chat), 0);
    assert_true(view(w, chat).queued);
    assert_int_equal(handle(w, (sb_event){.kind = SB_EV_ON_CALL, .agent_id = 11, .on_call = false}), 0);
    assert_int_equal(owner(w, chat), 11);
    sb_engine_agent(w->eng, 11, &a);
    assert_false(a.on_call);
    assert_int_equal(handle(w, (sb_event){.kind = SB_EV_ON_CALL, .agent_id = 99, .on_call = true}), SB_ENOTFOUND);
}

static void test_least_busy_breaks_ties_fairly(void **state)
{
    world *w = *state;
    team(w, 1, SB_STRATEGY_LEAST_BUSY);
    agent(w, 11, 1, true);
    agent(w, 12, 1, true);
    agent(w, 13, 1, true);
    int64_t a = ticket(w, 1, SB_CHANNEL_EMAIL, SB_PRIORITY_NORMAL);
    w->now += 1000;
    int64_t b = ticket(w, 1, SB_CHANNEL_EMAIL, SB_PRIORITY_NORMAL);
    w->now += 1000;
    int64_t c = ticket(w, 1, SB_CHANNEL_EMAIL, SB_PRIORITY_NORMAL);
    /* all equal at first: each agent gets one, not the lowest id thrice */
    int64_t owners[3] = {owner(w, a), owner(w, b), owner(w, c)};
    assert_int_not_equal(owners[0], owners[1]);
    assert_int_not_equal(owners[1], owners[2]);
    assert_int_not_equal(owners[0], owners[2]);
    /* the one who resolves first is least busy next */
    w->now += 1000;
    handle(w, (sb_event){.kind = SB_EV_STATUS, .ticket_id = b, .status = SB_STATUS_RESOLVED, .agent_id = owners[1]});
    assert_int_equal(owner(w, ticket(w, 1, SB_CHANNEL_CHAT, SB_PRIORITY_NORMAL)), owners[1]);
}

static void test_skills_and_languages_must_match(void **state)
{
    world *w = *state;
    team(w, 1, SB_STRATEGY_ROUND_ROBIN);
    sb_engine_agent_cfg ru = {.id = 11, .teams = {1}, .nteams = 1, .languages = {{"ru"}}, .nlanguages = 1};
    sb_engine_agent_cfg kk = {.id = 12,
                              .teams = {1},
                              .nteams = 1,
                              .languages = {{"ru"}, {"kk"}},
                              .nlanguages = 2,
                              .skills = {{"billing"}},
                              .nskills = 1};
    sb_engine_put_agent(w->eng, &ru);
    sb_engine_put_agent(w->eng, &kk);
    handle(w, (sb_event){.kind = SB_EV_PRESENCE, .agent_id = 11, .presence = SB_PRESENCE_ONLINE});
    handle(w, (sb_event){.kind = SB_EV_PRESENCE, .agent_id = 12, .presence = SB_PRESENCE_ONLINE});
    for (int i = 0; i < 2; i++) {
        int64_t t = ticket_full(w, (sb_ticket_info){.channel = SB_CHANNEL_CHAT,
                                                    .status = SB_STATUS_NEW,
                                                    .priority = SB_PRIORITY_NORMAL,
                                                    .team_id = 1,
                                                    .language = {"kk"}});
        assert_int_equal(owner(w, t), 12);
    }
    int64_t billing = ticket_full(w, (sb_ticket_info){.channel = SB_CHANNEL_CHAT,
                                                      .status = SB_STATUS_NEW,
                                                      .priority = SB_PRIORITY_NORMAL,
                                                      .team_id = 1,
                                                      .skill = {"billing"}});
    assert_int_equal(owner(w, billing), 12);
    /* agent 12 is full now; the next Kazakh chat waits rather than going to 11 */
    int64_t t = ticket_full(w, (sb_ticket_info){.channel = SB_CHANNEL_CHAT,
                                                .status = SB_STATUS_NEW,
                                                .priority = SB_PRIORITY_NORMAL,
                                                .team_id = 1,
                                                .language = {"kk"}});
    assert_int_equal(owner(w, t), 0);
    assert_true(view(w, t).queued);
}

/* ---- queues ---- */

static void test_queue_keeps_places_and_nothing_is_forgotten(void **state)
{
    world *w = *state;
    team(w, 1, SB_STRATEGY_ROUND_ROBIN);
    agent(w, 11, 1, false);
    /* night: nobody online */
    int64_t normal1 = ticket(w, 1, SB_CHANNEL_CHAT, SB_PRIORITY_NORMAL);
    w->now += MIN;
    int64_t low = ticket(w, 1, SB_CHANNEL_CHAT, SB_PRIORITY_LOW);
    w->now += MIN;
    int64_t urgent = ticket(w, 1, SB_CHANNEL_CHAT, SB_PRIORITY_URGENT);
    w->now += MIN;
    int64_t normal2 = ticket(w, 1, SB_CHANNEL_CHAT, SB_PRIORITY_NORMAL);
    assert_int_equal(sb_engine_queue_length(w->eng, 1), 4);
    assert_int_equal(view(w, urgent).queue_position, 1);
    assert_int_equal(view(w, normal1).queue_position, 2);
    assert_int_equal(view(w, normal2).queue_position, 3);
    assert_int_equal(view(w, low).queue_position, 4);
    /* morning: the agent comes online and gets them in that order, up to capacity */
    sb_effects_reset(&w->fx);
    handle(w, (sb_event){.kind = SB_EV_PRESENCE, .agent_id = 11, .presence = SB_PRESENCE_ONLINE});
    assert_int_equal(owner(w, urgent), 11);
    assert_int_equal(owner(w, normal1), 11);
    assert_int_equal(owner(w, normal2), 11);
    assert_int_equal(owner(w, low), 0);
    assert_int_equal(w->fx.v[0].ticket_id, urgent);
    /* resolving one frees room for the last */
    handle(w, (sb_event){.kind = SB_EV_STATUS, .ticket_id = urgent, .status = SB_STATUS_RESOLVED, .agent_id = 11});
    assert_int_equal(owner(w, low), 11);
    assert_int_equal(sb_engine_queue_length(w->eng, 1), 0);
}

static void test_priority_change_resorts_queue(void **state)
{
    world *w = *state;
    team(w, 1, SB_STRATEGY_LEAST_BUSY);
    int64_t a = ticket(w, 1, SB_CHANNEL_CHAT, SB_PRIORITY_NORMAL);
    w->now += MIN;
    int64_t b = ticket(w, 1, SB_CHANNEL_CHAT, SB_PRIORITY_NORMAL);
    assert_int_equal(view(w, b).queue_position, 2);
    handle(w, (sb_event){.kind = SB_EV_PRIORITY, .ticket_id = b, .priority = SB_PRIORITY_HIGH});
    assert_int_equal(view(w, b).queue_position, 1);
    assert_int_equal(view(w, a).queue_position, 2);
}

static void test_manual_team_and_take(void **state)
{
    world *w = *state;
    team(w, 1, SB_STRATEGY_MANUAL);
    team(w, 2, SB_STRATEGY_MANUAL);
    agent(w, 11, 1, true);
    agent(w, 21, 2, true);
    int64_t t = ticket(w, 1, SB_CHANNEL_EMAIL, SB_PRIORITY_NORMAL);
    assert_int_equal(owner(w, t), 0);
    assert_true(view(w, t).queued);
    assert_int_equal(handle(w, (sb_event){.kind = SB_EV_TAKE, .ticket_id = t, .agent_id = 21}), SB_EINVAL);
    assert_int_equal(handle(w, (sb_event){.kind = SB_EV_TAKE, .ticket_id = t, .agent_id = 11}), 0);
    assert_int_equal(owner(w, t), 11);
    assert_int_equal(handle(w, (sb_event){.kind = SB_EV_TAKE, .ticket_id = t, .agent_id = 11}), SB_ECONFLICT);
    assert_int_equal(handle(w, (sb_event){.kind = SB_EV_TAKE, .ticket_id = 999, .agent_id = 11}), SB_ENOTFOUND);
    /* a manual move to the other team's agent, then back to the queue */
    assert_int_equal(handle(w, (sb_event){.kind = SB_EV_ASSIGN, .ticket_id = t, .agent_id = 21, .team_id = 2}), 0);
    assert_int_equal(owner(w, t), 21);
    sb_agent_view a;
    sb_engine_agent(w->eng, 11, &a);
    assert_int_equal(a.open_tickets, 0);
    assert_int_equal(handle(w, (sb_event){.kind = SB_EV_ASSIGN, .ticket_id = t, .agent_id = 0}), 0);
    assert_int_equal(owner(w, t), 0);
    assert_int_equal(sb_engine_queue_length(w->eng, 2), 1);
}

/* ---- sticky owners and deputies ---- */

static void test_sticky_owner_waits_then_team(void **state)
{
    world *w = *state;
    team_cfg(w, (sb_engine_team_cfg){.id = 1, .strategy = SB_STRATEGY_ROUND_ROBIN, .sticky_wait_ms = 5 * MIN});
    agent(w, 11, 1, true);
    agent(w, 12, 1, true);
    sb_ticket_info info = {.channel = SB_CHANNEL_CHAT,
                           .status = SB_STATUS_NEW,
                           .priority = SB_PRIORITY_NORMAL,
                           .team_id = 1,
                           .owner_id = 12};
    /* owner free: straight to them, though round robin would pick 11 */
    int64_t t1 = ticket_full(w, info);
    assert_int_equal(owner(w, t1), 12);
    assert_int_equal(count_fx(w, SB_FX_ASSIGN, "sticky", 12), 1);
    /* owner away: the ticket waits for them ... */
    handle(w, (sb_event){.kind = SB_EV_PRESENCE, .agent_id = 12, .presence = SB_PRESENCE_AWAY});
    int64_t t2 = ticket_full(w, info);
    assert_int_equal(owner(w, t2), 0);
    assert_true(view(w, t2).queued);
    /* ... and gets them when they are back within the wait */
    advance(w, 2 * MIN);
    handle(w, (sb_event){.kind = SB_EV_PRESENCE, .agent_id = 12, .presence = SB_PRESENCE_ONLINE});
    assert_int_equal(owner(w, t2), 12);
    /* owner away for longer than the wait: the team takes it */
    handle(w, (sb_event){.kind = SB_EV_PRESENCE, .agent_id = 12, .presence = SB_PRESENCE_OFFLINE});
    int64_t t3 = ticket_full(w, info);
    assert_int_equal(owner(w, t3), 0);
    advance(w, 5 * MIN - 1);
    assert_int_equal(owner(w, t3), 0);
    advance(w, 1);
    assert_int_equal(owner(w, t3), 11);
}

static void test_deputy_takes_new_work_and_handover(void **state)
{
    world *w = *state;
    team_cfg(w, (sb_engine_team_cfg){.id = 1, .strategy = SB_STRATEGY_ROUND_ROBIN, .supervisor_id = 13});
    sb_sla_policy p = {.id = 1, .channel_kind = -1, .vip = -1};
    for (int i = 0; i < 4; i++)
        p.targets[i] = (sb_sla_targets){.first_response_ms = 30 * MIN, .resolution_ms = 8 * HOUR};
    sb_engine_put_sla_policy(w->eng, &p);
    agent(w, 11, 1, true);
    agent(w, 12, 1, true);
    agent(w, 13, 1, false);
    sb_ticket_info info = {.channel = SB_CHANNEL_EMAIL,
                           .status = SB_STATUS_NEW,
                           .priority = SB_PRIORITY_NORMAL,
                           .team_id = 1,
                           .owner_id = 11};
    int64_t before = ticket_full(w, info);
    assert_int_equal(owner(w, before), 11);
    int64_t due = view(w, before).due[SB_SLA_RESOLUTION];
    assert_int_equal(due, T0 + 8 * HOUR);
    /* 11 is away until tomorrow with 12 as deputy */
    assert_int_equal(
        handle(w, (sb_event){.kind = SB_EV_ABSENCE, .agent_id = 11, .until = w->now + 24 * HOUR, .deputy_id = 11}),
        SB_EINVAL);
    assert_int_equal(
        handle(w, (sb_event){.kind = SB_EV_ABSENCE, .agent_id = 11, .until = w->now + 24 * HOUR, .deputy_id = 12}), 0);
    sb_effects_reset(&w->fx);
    int64_t after = ticket_full(w, info);
    assert_int_equal(owner(w, after), 12);
    assert_int_equal(count_fx(w, SB_FX_ASSIGN, "deputy", 12), 1);
    /* round robin skips the absent agent */
    assert_int_equal(owner(w, ticket(w, 1, SB_CHANNEL_EMAIL, SB_PRIORITY_NORMAL)), 12);
    /* handover: the old ticket moves with its SLA clock intact */
    w->now += HOUR;
    assert_int_equal(handle(w, (sb_event){.kind = SB_EV_HANDOVER, .agent_id = 11}), 0);
    assert_int_equal(owner(w, before), 12);
    assert_int_equal(view(w, before).due[SB_SLA_RESOLUTION], due);
    sb_agent_view a;
    sb_engine_agent(w->eng, 11, &a);
    assert_int_equal(a.open_tickets, 0);
    /* back the next day: work flows again */
    advance(w, 24 * HOUR);
    assert_int_equal(owner(w, ticket(w, 1, SB_CHANNEL_EMAIL, SB_PRIORITY_NORMAL)), 11);
}

/* ---- unanswered ---- */

static void test_unanswered_goes_to_next_and_auto_away(void **state)
{
    world *w = *state;
    team_cfg(w, (sb_engine_team_cfg){.id = 1,
                                     .strategy = SB_STRATEGY_ROUND_ROBIN,
                                     .supervisor_id = 19,
                                     .unanswered_ms = {[SB_CHANNEL_CHAT] = 3 * MIN},
                                     .auto_away_after = 2});
    agent(w, 11, 1, true);
    agent(w, 12, 1, true);
    sb_engine_agent_cfg sup = {.id = 19, .supervisor = true};
    sb_engine_put_agent(w->eng, &sup);
    int64_t t = ticket(w, 1, SB_CHANNEL_CHAT, SB_PRIORITY_NORMAL);
    assert_int_equal(owner(w, t), 11);
    sb_effects_reset(&w->fx);
    advance(w, 3 * MIN);
    assert_int_equal(owner(w, t), 12);
    assert_int_equal(view(w, t).reassignments, 1);
    assert_int_equal(count_fx(w, SB_FX_ASSIGN, "unanswered", 0), 1);
    assert_int_equal(count_fx(w, SB_FX_NOTIFY, "unanswered", 19), 1);
    /* 12 answers in time: it stays */
    advance(w, MIN);
    handle(w, (sb_event){.kind = SB_EV_AGENT_REPLY, .ticket_id = t, .agent_id = 12});
    advance(w, 10 * MIN);
    assert_int_equal(owner(w, t), 12);
    /* 11 ignores a second one: set away, supervisor told */
    int64_t t2 = ticket(w, 1, SB_CHANNEL_CHAT, SB_PRIORITY_NORMAL);
    assert_int_equal(owner(w, t2), 11);
    sb_effects_reset(&w->fx);
    advance(w, 3 * MIN);
    assert_int_equal(owner(w, t2), 12);
    assert_int_equal(count_fx(w, SB_FX_PRESENCE, "auto_away", 11), 1);
    assert_int_equal(count_fx(w, SB_FX_NOTIFY, "auto_away", 19), 1);
    sb_agent_view a;
    sb_engine_agent(w->eng, 11, &a);
    assert_int_equal(a.presence, SB_PRESENCE_AWAY);
    /* a customer waiting on a ticket held by someone gone gets reassigned too */
    handle(w, (sb_event){.kind = SB_EV_PRESENCE, .agent_id = 11, .presence = SB_PRESENCE_ONLINE});
    handle(w, (sb_event){.kind = SB_EV_PRESENCE, .agent_id = 12, .presence = SB_PRESENCE_OFFLINE});
    handle(w, (sb_event){.kind = SB_EV_CUSTOMER_MESSAGE, .ticket_id = t});
    advance(w, 3 * MIN);
    assert_int_equal(owner(w, t), 11);
}

/* ---- SLA ---- */

static void sla_policy(world *w, int warn_pct)
{
    sb_sla_policy p = {.id = 1, .channel_kind = -1, .vip = -1, .warn_pct = warn_pct};
    for (int i = 0; i < 4; i++)
        p.targets[i] =
            (sb_sla_targets){.first_response_ms = 60 * MIN, .next_response_ms = 30 * MIN, .resolution_ms = 4 * HOUR};
    p.targets[SB_PRIORITY_URGENT].first_response_ms = 10 * MIN;
    assert_int_equal(sb_engine_put_sla_policy(w->eng, &p), 0);
}

static void test_sla_first_response_warning_breach_met(void **state)
{
    world *w = *state;
    team(w, 1, SB_STRATEGY_MANUAL);
    sla_policy(w, 80);
    int64_t t = ticket(w, 1, SB_CHANNEL_EMAIL, SB_PRIORITY_NORMAL);
    assert_int_equal(view(w, t).due[SB_SLA_FIRST_RESPONSE], T0 + 60 * MIN);
    sb_effects_reset(&w->fx);
    advance(w, 48 * MIN - 1);
    assert_int_equal(count_fx(w, SB_FX_SLA_EVENT, NULL, 0), 0);
    advance(w, 1);
    assert_int_equal(w->fx.n, 1);
    assert_int_equal(w->fx.v[0].sla_clock, SB_SLA_FIRST_RESPONSE);
    assert_int_equal(w->fx.v[0].sla_state, SB_SLA_WARNING);
    advance(w, 12 * MIN);
    assert_true(view(w, t).breached[SB_SLA_FIRST_RESPONSE]);
    assert_int_equal(w->fx.v[w->fx.n - 1].sla_state, SB_SLA_BREACHED);
    assert_int_equal(w->fx.v[w->fx.n - 1].at, T0 + 60 * MIN);
    /* a reply after the breach: missed, not met */
    handle(w, (sb_event){.kind = SB_EV_TAKE, .ticket_id = t, .agent_id = 0});
    sb_engine_agent_cfg a = {.id = 11, .teams = {1}, .nteams = 1};
    sb_engine_put_agent(w->eng, &a);
    handle(w, (sb_event){.kind = SB_EV_TAKE, .ticket_id = t, .agent_id = 11});
    sb_effects_reset(&w->fx);
    handle(w, (sb_event){.kind = SB_EV_AGENT_REPLY, .ticket_id = t, .agent_id = 11});
    assert_int_equal(count_fx(w, SB_FX_SLA_EVENT, NULL, 0), 1);
    assert_int_equal(w->fx.v[0].sla_state, SB_SLA_MISSED);
    /* the customer writes again: the next-response clock runs, and is met */
    w->now += HOUR;
    handle(w, (sb_event){.kind = SB_EV_CUSTOMER_MESSAGE, .ticket_id = t});
    assert_int_equal(view(w, t).due[SB_SLA_NEXT_RESPONSE], w->now + 30 * MIN);
    advance(w, 10 * MIN);
    sb_effects_reset(&w->fx);
    handle(w, (sb_event){.kind = SB_EV_AGENT_REPLY, .ticket_id = t, .agent_id = 11});
    assert_int_equal(w->fx.v[0].sla_clock, SB_SLA_NEXT_RESPONSE);
    assert_int_equal(w->fx.v[0].sla_state, SB_SLA_MET);
}

static void test_sla_pauses_while_pending(void **state)
{
    world *w = *state;
    team(w, 1, SB_STRATEGY_MANUAL);
    sla_policy(w, 0);
    int64_t t = ticket(w, 1, SB_CHANNEL_EMAIL, SB_PRIORITY_NORMAL);
    assert_int_equal(view(w, t).due[SB_SLA_RESOLUTION], T0 + 4 * HOUR);
    advance(w, HOUR);
    handle(w, (sb_event){.kind = SB_EV_STATUS, .ticket_id = t, .status = SB_STATUS_PENDING});
    assert_int_equal(view(w, t).due[SB_SLA_RESOLUTION], 0); /* paused: no due time */
    advance(w, 10 * HOUR);                                  /* the customer takes their time */
    assert_false(view(w, t).breached[SB_SLA_RESOLUTION]);
    handle(w, (sb_event){.kind = SB_EV_CUSTOMER_MESSAGE, .ticket_id = t});
    assert_int_equal(view(w, t).status, SB_STATUS_OPEN);
    assert_int_equal(view(w, t).due[SB_SLA_RESOLUTION], w->now + 3 * HOUR);
    advance(w, 3 * HOUR);
    assert_true(view(w, t).breached[SB_SLA_RESOLUTION]);
}

static void test_sla_priority_change_retargets(void **state)
{
    world *w = *state;
    team(w, 1, SB_STRATEGY_MANUAL);
    sla_policy(w, 0);
    int64_t t = ticket(w, 1, SB_CHANNEL_CHAT, SB_PRIORITY_NORMAL);
    advance(w, 5 * MIN);
    handle(w, (sb_event){.kind = SB_EV_PRIORITY, .ticket_id = t, .priority = SB_PRIORITY_URGENT});
    /* urgent: 10 minutes from creation, 5 of them already used */
    assert_int_equal(view(w, t).due[SB_SLA_FIRST_RESPONSE], T0 + 10 * MIN);
}

static void test_sla_first_matching_policy(void **state)
{
    world *w = *state;
    team(w, 1, SB_STRATEGY_MANUAL);
    sb_sla_policy vip = {.id = 1, .channel_kind = -1, .vip = 1};
    sb_sla_policy rest = {.id = 2, .channel_kind = -1, .vip = -1};
    for (int i = 0; i < 4; i++) {
        vip.targets[i].first_response_ms = 5 * MIN;
        rest.targets[i].first_response_ms = 60 * MIN;
    }
    sb_engine_put_sla_policy(w->eng, &vip);
    sb_engine_put_sla_policy(w->eng, &rest);
    int64_t v = ticket_full(w, (sb_ticket_info){.channel = SB_CHANNEL_CHAT,
                                                .status = SB_STATUS_NEW,
                                                .priority = SB_PRIORITY_NORMAL,
                                                .team_id = 1,
                                                .vip = true});
    int64_t n = ticket(w, 1, SB_CHANNEL_CHAT, SB_PRIORITY_NORMAL);
    assert_int_equal(view(w, v).due[SB_SLA_FIRST_RESPONSE], T0 + 5 * MIN);
    assert_int_equal(view(w, n).due[SB_SLA_FIRST_RESPONSE], T0 + 60 * MIN);
}

static sb_calendar *moscow_office_hours(void)
{
    json_error_t jerr;
    json_t *j = json_loads("{\"time_zone\":\"Europe/Moscow\",\"hours\":{"
                           "\"mon\":[[\"09:00\",\"18:00\"]],\"tue\":[[\"09:00\",\"18:00\"]],"
                           "\"wed\":[[\"09:00\",\"18:00\"]],\"thu\":[[\"09:00\",\"18:00\"]],"
                           "\"fri\":[[\"09:00\",\"18:00\"]]},"
                           "\"holidays\":[{\"date\":\"2026-12-31\",\"recurring\":true}]}",
                           0, &jerr);
    assert_non_null(j);
    sb_calendar *cal = NULL;
    char field[64], msg[128];
    assert_int_equal(sb_calendar_from_json(j, &cal, field, sizeof field, msg, sizeof msg), 0);
    json_decref(j);
    return cal;
}

static void test_sla_in_business_hours(void **state)
{
    world *w = *state;
    team(w, 1, SB_STRATEGY_MANUAL);
    assert_int_equal(sb_engine_put_calendar(w->eng, 7, moscow_office_hours()), 0);
    sb_sla_policy p = {.id = 1, .channel_kind = -1, .vip = -1, .calendar_id = 7};
    for (int i = 0; i < 4; i++)
        p.targets[i] = (sb_sla_targets){.first_response_ms = HOUR, .resolution_ms = 8 * HOUR};
    assert_int_equal(sb_engine_put_sla_policy(w->eng, &p), 0);
    /* Friday 2026-11-20 17:30 Moscow (14:30 UTC): 30 minutes today, 30 on Monday */
    w->now = 1795185000000LL;
    int64_t t = ticket(w, 1, SB_CHANNEL_EMAIL, SB_PRIORITY_NORMAL);
    assert_int_equal(view(w, t).due[SB_SLA_FIRST_RESPONSE], 1795415400000LL); /* Mon 09:30 MSK */
    /* 8 business hours: 0.5 h Friday + 7.5 h Monday → Monday 16:30 */
    assert_int_equal(view(w, t).due[SB_SLA_RESOLUTION], 1795440600000LL);
    /* pending over the weekend costs nothing; pending on Monday morning does */
    advance(w, 15 * MIN); /* 17:45 */
    handle(w, (sb_event){.kind = SB_EV_STATUS, .ticket_id = t, .status = SB_STATUS_PENDING});
    w->now = 1795417200000LL; /* Monday 10:00 */
    handle(w, (sb_event){.kind = SB_EV_STATUS, .ticket_id = t, .status = SB_STATUS_OPEN});
    /* used: 15 min; left 45 min of the first response: due Monday 10:45 */
    assert_int_equal(view(w, t).due[SB_SLA_FIRST_RESPONSE], 1795417200000LL + 45 * MIN);
    /* a ticket on New Year's Eve (a recurring holiday, Thursday) waits for Friday */
    w->now = 1798696800000LL; /* 2026-12-31 09:00 MSK */
    int64_t nye = ticket(w, 1, SB_CHANNEL_EMAIL, SB_PRIORITY_NORMAL);
    assert_int_equal(view(w, nye).due[SB_SLA_FIRST_RESPONSE], 1798786800000LL); /* 2027-01-01 10:00 MSK */
}

/* ---- rules and templates ---- */

static void rule(world *w, const char *json)
{
    json_error_t jerr;
    json_t *j = json_loads(json, 0, &jerr);
    if (j == NULL)
        fail_msg("bad JSON in test: %s", jerr.text);
    sb_rule *r = NULL;
    char field[64], msg[160];
    if (sb_rule_parse(j, &r, field, sizeof field, msg, sizeof msg) != 0)
        fail_msg("rule rejected: %s: %s", field, msg);
    json_decref(j);
    assert_int_equal(sb_engine_put_rule(w->eng, r), 0);
}

static void template_text(world *w, int64_t id, const char *lang, const char *text)
{
    sb_template *t = NULL;
    char err[128];
    assert_int_equal(sb_template_parse(text, &t, err, sizeof err), 0);
    assert_int_equal(sb_engine_put_template(w->eng, id, lang, t), 0);
}

static int64_t message_ticket(world *w, int64_t team_id, const char *text, const char *lang, int64_t contact)
{
    sb_ticket_info info = {.id = ++w->next_ticket,
                           .channel = SB_CHANNEL_CHAT,
                           .status = SB_STATUS_NEW,
                           .priority = SB_PRIORITY_NORMAL,
                           .team_id = team_id,
                           .created_at = w->now,
                           .channel_type = {"telegram"},
                           .contact_name = "Айгерим Сапарова"};
    info.number = 340 + info.id;
    info.contact_id = contact != 0 ? contact : 1000 + info.id;
    if (lang != NULL)
        snprintf(info.contact_language.v, sizeof info.contact_language.v, "%s", lang);
    assert_int_equal(handle(w, (sb_event){.kind = SB_EV_TICKET_NEW, .ticket = info, .text = text}), 0);
    return info.id;
}

static const sb_effect *find_fx(world *w, sb_effect_kind kind, int64_t ticket_id)
{
    for (size_t i = 0; i < w->fx.n; i++)
        if (w->fx.v[i].kind == kind && (ticket_id == 0 || w->fx.v[i].ticket_id == ticket_id))
            return &w->fx.v[i];
    return NULL;
}

static void test_rule_urgent_words_before_routing(void **state)
{
    world *w = *state;
    team(w, 1, SB_STRATEGY_ROUND_ROBIN);
    sla_policy(w, 0);
    rule(w,
         "{\"id\":1,\"name\":\"urgent\",\"on\":[\"ticket.created\",\"message.customer\"],"
         "\"when\":{\"field\":\"text\",\"op\":\"contains\",\"value\":\"срочно\"},"
         "\"actions\":[{\"type\":\"set_priority\",\"value\":\"urgent\"},{\"type\":\"add_tag\",\"value\":\"urgent\"}]}");
    int64_t calm = message_ticket(w, 1, "Здравствуйте, вопрос по доставке", NULL, 0);
    w->now += MIN;
    sb_effects_reset(&w->fx);
    int64_t hot = message_ticket(w, 1, "СРОЧНО!!! Не проходит оплата", NULL, 0);
    assert_int_equal(view(w, calm).priority, SB_PRIORITY_NORMAL);
    assert_int_equal(view(w, hot).priority, SB_PRIORITY_URGENT);
    /* decided before routing: first in the queue, with the urgent SLA target */
    assert_int_equal(view(w, hot).queue_position, 1);
    assert_int_equal(view(w, hot).due[SB_SLA_FIRST_RESPONSE], w->now + 10 * MIN);
    const sb_effect *e = find_fx(w, SB_FX_TAG, hot);
    assert_non_null(e);
    assert_string_equal(e->text, "urgent");
    assert_int_equal(e->rule_id, 1);
    /* "несрочно" is another word */
    int64_t not_hot = message_ticket(w, 1, "это несрочно", NULL, 0);
    assert_int_equal(view(w, not_hot).priority, SB_PRIORITY_NORMAL);
    /* a later message can raise it too */
    handle(w, (sb_event){.kind = SB_EV_CUSTOMER_MESSAGE, .ticket_id = calm, .text = "Срочно, пожалуйста"});
    assert_int_equal(view(w, calm).priority, SB_PRIORITY_URGENT);
}

static void test_rule_routes_by_language(void **state)
{
    world *w = *state;
    team(w, 1, SB_STRATEGY_ROUND_ROBIN);
    team(w, 2, SB_STRATEGY_ROUND_ROBIN);
    agent(w, 11, 1, true);
    agent(w, 21, 2, true);
    rule(w, "{\"id\":1,\"name\":\"kazakh\",\"on\":[\"ticket.created\"],"
            "\"when\":{\"field\":\"language\",\"op\":\"eq\",\"value\":\"kk\"},"
            "\"actions\":[{\"type\":\"assign_team\",\"id\":2}]}");
    int64_t kk = message_ticket(w, 1, "Сәлеметсіз бе, тапсырысым қашан келеді?", NULL, 0);
    int64_t ru = message_ticket(w, 1, "Здравствуйте, когда придёт мой заказ?", NULL, 0);
    assert_int_equal(view(w, kk).team_id, 2);
    assert_int_equal(owner(w, kk), 21);
    assert_int_equal(owner(w, ru), 11);
    /* a rule naming a team the engine does not have is refused */
    json_t *j = json_loads("{\"id\":2,\"name\":\"x\",\"on\":[\"ticket.created\"],"
                           "\"actions\":[{\"type\":\"assign_team\",\"id\":99}]}",
                           0, NULL);
    sb_rule *r = NULL;
    char field[64], msg[128];
    assert_int_equal(sb_rule_parse(j, &r, field, sizeof field, msg, sizeof msg), 0);
    assert_int_equal(sb_engine_put_rule(w->eng, r), SB_ENOTFOUND);
    sb_rule_free(r);
    json_decref(j);
}

static void test_acknowledgement_in_the_contacts_language_once(void **state)
{
    world *w = *state;
    team(w, 1, SB_STRATEGY_MANUAL);
    template_text(w, 1, "ru", "Ваш запрос №{{ticket.number}} принят в работу");
    template_text(w, 1, "en", "Your request #{{ticket.number}} has been received");
    rule(w, "{\"id\":1,\"name\":\"ack\",\"on\":[\"ticket.created\"],"
            "\"actions\":[{\"type\":\"send_template\",\"id\":1}]}");
    int64_t en = message_ticket(w, 1, "Hello, my order has not arrived yet", "en", 0);
    const sb_effect *e = find_fx(w, SB_FX_REPLY, en);
    assert_non_null(e);
    assert_string_equal(e->text, "Your request #341 has been received");
    int64_t ru = message_ticket(w, 1, "Здравствуйте, у меня не работает доставка заказа", NULL, 0);
    e = find_fx(w, SB_FX_REPLY, ru);
    assert_non_null(e);
    assert_string_equal(e->text, "Ваш запрос №342 принят в работу");
    /* never answer an automatic reply */
    sb_effects_reset(&w->fx);
    sb_ticket_info info = {.id = 50, .number = 50, .contact_id = 7, .channel = SB_CHANNEL_EMAIL, .team_id = 1};
    handle(w, (sb_event){.kind = SB_EV_TICKET_NEW, .ticket = info, .text = "Out of office", .auto_reply = true});
    assert_null(find_fx(w, SB_FX_REPLY, 50));
    /* at most three automatic replies per contact and hour */
    int replies = 0;
    for (int i = 0; i < 5; i++) {
        sb_effects_reset(&w->fx);
        int64_t t = message_ticket(w, 1, "ещё вопрос", "ru", 4242);
        replies += find_fx(w, SB_FX_REPLY, t) != NULL;
        handle(w, (sb_event){.kind = SB_EV_STATUS, .ticket_id = t, .status = SB_STATUS_CLOSED});
    }
    assert_int_equal(replies, 3);
    w->now += HOUR;
    sb_effects_reset(&w->fx);
    assert_non_null(find_fx(w, SB_FX_REPLY, message_ticket(w, 1, "снова", "ru", 4242)));
}

static void test_rules_cannot_loop(void **state)
{
    world *w = *state;
    team(w, 1, SB_STRATEGY_MANUAL);
    /* two rules that undo each other, and one that re-triggers itself */
    rule(w, "{\"id\":1,\"name\":\"up\",\"on\":[\"priority.changed\"],"
            "\"actions\":[{\"type\":\"set_priority\",\"value\":\"urgent\"}]}");
    rule(w, "{\"id\":2,\"name\":\"down\",\"on\":[\"priority.changed\"],"
            "\"actions\":[{\"type\":\"set_priority\",\"value\":\"low\"}]}");
    rule(w, "{\"id\":3,\"name\":\"self\",\"on\":[\"ticket.created\",\"priority.changed\"],"
            "\"actions\":[{\"type\":\"add_note\",\"value\":\"seen\"}]}");
    int64_t t = ticket(w, 1, SB_CHANNEL_CHAT, SB_PRIORITY_NORMAL);
    sb_effects_reset(&w->fx);
    assert_int_equal(handle(w, (sb_event){.kind = SB_EV_PRIORITY, .ticket_id = t, .priority = SB_PRIORITY_HIGH}), 0);
    /* it ends, and after a bounded number of steps */
    assert_true(w->fx.n < 200);
    assert_true(count_fx(w, SB_FX_PRIORITY, NULL, 0) <= 10);
}

static void test_once_per_ticket_and_stop(void **state)
{
    world *w = *state;
    team(w, 1, SB_STRATEGY_MANUAL);
    rule(w, "{\"id\":1,\"name\":\"first\",\"on\":[\"message.customer\"],\"once_per_ticket\":true,"
            "\"actions\":[{\"type\":\"add_note\",\"value\":\"returning customer\"},{\"type\":\"stop\"}]}");
    rule(w, "{\"id\":2,\"name\":\"second\",\"on\":[\"message.customer\"],"
            "\"actions\":[{\"type\":\"add_tag\",\"value\":\"talkative\"}]}");
    int64_t t = ticket(w, 1, SB_CHANNEL_CHAT, SB_PRIORITY_NORMAL);
    sb_effects_reset(&w->fx);
    handle(w, (sb_event){.kind = SB_EV_CUSTOMER_MESSAGE, .ticket_id = t, .text = "ещё"});
    assert_int_equal(count_fx(w, SB_FX_NOTE, NULL, 0), 1);
    assert_int_equal(count_fx(w, SB_FX_TAG, NULL, 0), 0); /* stopped */
    handle(w, (sb_event){.kind = SB_EV_CUSTOMER_MESSAGE, .ticket_id = t, .text = "и ещё"});
    assert_int_equal(count_fx(w, SB_FX_NOTE, NULL, 0), 1); /* once */
    assert_int_equal(count_fx(w, SB_FX_TAG, NULL, 0), 1);
}

static void test_breach_escalation_rule(void **state)
{
    world *w = *state;
    team_cfg(w, (sb_engine_team_cfg){.id = 1, .strategy = SB_STRATEGY_MANUAL, .supervisor_id = 19});
    sb_engine_agent_cfg sup = {.id = 19, .supervisor = true};
    sb_engine_put_agent(w->eng, &sup);
    sla_policy(w, 0);
    rule(w, "{\"id\":1,\"name\":\"escalate\",\"on\":[\"sla.breached\"],"
            "\"actions\":[{\"type\":\"set_priority\",\"value\":\"high\"},"
            "{\"type\":\"assign_agent\",\"id\":19},{\"type\":\"notify\",\"target\":\"supervisor\"}]}");
    int64_t t = ticket(w, 1, SB_CHANNEL_EMAIL, SB_PRIORITY_NORMAL);
    sb_effects_reset(&w->fx);
    advance(w, 60 * MIN);
    assert_true(view(w, t).breached[SB_SLA_FIRST_RESPONSE]);
    assert_int_equal(view(w, t).priority, SB_PRIORITY_HIGH);
    assert_int_equal(owner(w, t), 19);
    assert_true(count_fx(w, SB_FX_NOTIFY, "rule", 19) >= 1);
}

static void test_time_rule_no_agent_reply(void **state)
{
    world *w = *state;
    team(w, 1, SB_STRATEGY_MANUAL);
    rule(w, "{\"id\":1,\"name\":\"nudge\",\"on\":[\"time.no_agent_reply\"],\"minutes\":30,"
            "\"actions\":[{\"type\":\"add_tag\",\"value\":\"waiting\"}]}");
    agent(w, 11, 1, true);
    int64_t t = ticket(w, 1, SB_CHANNEL_EMAIL, SB_PRIORITY_NORMAL);
    sb_effects_reset(&w->fx);
    advance(w, 30 * MIN - 1);
    assert_int_equal(count_fx(w, SB_FX_TAG, NULL, 0), 0);
    advance(w, 1);
    assert_int_equal(count_fx(w, SB_FX_TAG, NULL, 0), 1);
    /* the agent answers: the clock stops; the customer writes: it starts again */
    handle(w, (sb_event){.kind = SB_EV_TAKE, .ticket_id = t, .agent_id = 11});
    handle(w, (sb_event){.kind = SB_EV_AGENT_REPLY, .ticket_id = t, .agent_id = 11});
    sb_effects_reset(&w->fx);
    advance(w, 2 * HOUR);
    assert_int_equal(count_fx(w, SB_FX_TAG, NULL, 0), 0);
    handle(w, (sb_event){.kind = SB_EV_CUSTOMER_MESSAGE, .ticket_id = t, .text = "?"});
    advance(w, 30 * MIN);
    assert_int_equal(count_fx(w, SB_FX_TAG, NULL, 0), 0); /* already tagged: nothing new to add */
    assert_true(sb_engine_next_deadline(w->eng) > w->now);
}

static void test_resolve_sends_survey_and_runs_rules(void **state)
{
    world *w = *state;
    sb_engine_free(w->eng);
    sb_engine_cfg cfg = {.csat_template_id = 9};
    w->eng = sb_engine_new(&cfg);
    team(w, 1, SB_STRATEGY_MANUAL);
    template_text(w, 9, "ru", "Оцените, пожалуйста, нашу работу по запросу №{{ticket.number}}: {{csat.scale}}");
    rule(w, "{\"id\":1,\"name\":\"crm\",\"on\":[\"status.changed\"],"
            "\"when\":{\"field\":\"status\",\"op\":\"eq\",\"value\":\"resolved\"},"
            "\"actions\":[{\"type\":\"webhook\",\"url\":\"http://127.0.0.1:9/crm\"}]}");
    rule(w, "{\"id\":2,\"name\":\"spam\",\"on\":[\"ticket.created\"],"
            "\"when\":{\"field\":\"text\",\"op\":\"matches\",\"value\":\"casino|казино\"},"
            "\"actions\":[{\"type\":\"set_status\",\"value\":\"closed\"},{\"type\":\"add_note\",\"value\":\"x\"}]}");
    int64_t t = message_ticket(w, 1, "Не работает вход", "ru", 0);
    sb_effects_reset(&w->fx);
    handle(w, (sb_event){.kind = SB_EV_STATUS, .ticket_id = t, .status = SB_STATUS_RESOLVED});
    const sb_effect *e = find_fx(w, SB_FX_REPLY, t);
    assert_non_null(e);
    assert_string_equal(e->reason, "csat");
    assert_string_equal(e->text, "Оцените, пожалуйста, нашу работу по запросу №341: 1–5");
    e = find_fx(w, SB_FX_WEBHOOK, t);
    assert_non_null(e);
    assert_string_equal(e->text, "http://127.0.0.1:9/crm");
    assert_int_equal(sb_engine_ticket(w->eng, t, &(sb_ticket_view){0}), SB_ENOTFOUND);
    /* a rule that closes the ticket it was created for: gone, nothing left behind */
    sb_effects_reset(&w->fx);
    int64_t spam = message_ticket(w, 1, "Лучшее КАЗИНО онлайн", NULL, 0);
    assert_int_equal(sb_engine_ticket(w->eng, spam, &(sb_ticket_view){0}), SB_ENOTFOUND);
    assert_int_equal(count_fx(w, SB_FX_NOTE, NULL, 0), 0);
    assert_int_equal(sb_engine_queue_length(w->eng, 1), 0);
}

static void test_tasks_remind_and_escalate(void **state)
{
    world *w = *state;
    team_cfg(w, (sb_engine_team_cfg){.id = 1, .strategy = SB_STRATEGY_MANUAL, .supervisor_id = 19});
    agent(w, 11, 1, true);
    agent(w, 12, 1, true);
    sb_engine_agent_cfg sup = {.id = 19, .supervisor = true};
    sb_engine_put_agent(w->eng, &sup);
    rule(w, "{\"id\":1,\"name\":\"late\",\"on\":[\"task.overdue\"],"
            "\"actions\":[{\"type\":\"set_priority\",\"value\":\"high\"}]}");
    int64_t t = ticket(w, 1, SB_CHANNEL_CALL, SB_PRIORITY_NORMAL);
    sb_task_info task = {
        .id = 7, .ticket_id = t, .assignee_id = 11, .due_at = w->now + HOUR, .remind_at = w->now + 45 * MIN};
    assert_int_equal(handle(w, (sb_event){.kind = SB_EV_TASK, .task = task}), 0);
    sb_effects_reset(&w->fx);
    advance(w, 45 * MIN - 1);
    assert_int_equal(count_fx(w, SB_FX_TASK_REMINDER, NULL, 0), 0);
    advance(w, 1);
    assert_int_equal(count_fx(w, SB_FX_TASK_REMINDER, NULL, 11), 1);
    assert_int_equal(count_fx(w, SB_FX_NOTIFY, "task_reminder", 11), 1);
    /* 11 goes away with a deputy: the overdue notice goes to the deputy, and to the supervisor */
    handle(w, (sb_event){.kind = SB_EV_ABSENCE, .agent_id = 11, .until = w->now + 24 * HOUR, .deputy_id = 12});
    advance(w, 15 * MIN);
    assert_int_equal(count_fx(w, SB_FX_TASK_OVERDUE, NULL, 12), 1);
    assert_int_equal(count_fx(w, SB_FX_NOTIFY, "task_overdue", 12), 1);
    assert_int_equal(count_fx(w, SB_FX_NOTIFY, "task_overdue", 19), 1);
    assert_int_equal(view(w, t).priority, SB_PRIORITY_HIGH); /* the task.overdue rule */
    /* once overdue, nothing more fires; a new due time starts again; done ends it */
    sb_effects_reset(&w->fx);
    advance(w, 10 * HOUR);
    assert_int_equal(w->fx.n, 0);
    task.due_at = w->now + MIN;
    task.remind_at = 0;
    handle(w, (sb_event){.kind = SB_EV_TASK, .task = task});
    assert_int_equal(handle(w, (sb_event){.kind = SB_EV_TASK_DONE, .task = {.id = 7}}), 0);
    advance(w, HOUR);
    assert_int_equal(count_fx(w, SB_FX_TASK_OVERDUE, NULL, 0), 0);
    assert_int_equal(handle(w, (sb_event){.kind = SB_EV_TASK_DONE, .task = {.id = 7}}), SB_ENOTFOUND);
}

static void test_out_of_hours_reply_names_the_next_opening(void **state)
{
    world *w = *state;
    assert_int_equal(sb_engine_put_calendar(w->eng, 7, moscow_office_hours()), 0);
    team_cfg(w, (sb_engine_team_cfg){.id = 1, .strategy = SB_STRATEGY_MANUAL, .calendar_id = 7});
    template_text(w, 2, "ru", "Мы уже отдыхаем и ответим {{business_hours.next_open}}");
    template_text(w, 2, "en", "We are closed; we will answer on {{business_hours.next_open}}");
    rule(w, "{\"id\":1,\"name\":\"night\",\"on\":[\"ticket.created\"],"
            "\"when\":{\"field\":\"business_hours\",\"op\":\"is\",\"value\":false,\"calendar\":7},"
            "\"actions\":[{\"type\":\"send_template\",\"id\":2}]}");
    w->now = 1795188600000LL; /* Friday 2026-11-20 18:30 Moscow: closed until Monday 09:00 */
    int64_t ru = message_ticket(w, 1, "Здравствуйте, вопрос по заказу", "ru", 0);
    const sb_effect *e = find_fx(w, SB_FX_REPLY, ru);
    assert_non_null(e);
    assert_string_equal(e->text, "Мы уже отдыхаем и ответим 23.11.2026 09:00");
    int64_t en = message_ticket(w, 1, "Hello, where is my order?", "en", 0);
    e = find_fx(w, SB_FX_REPLY, en);
    assert_non_null(e);
    assert_string_equal(e->text, "We are closed; we will answer on 2026-11-23 09:00");
    /* during business hours: no such reply */
    sb_effects_reset(&w->fx);
    w->now = 1795417200000LL; /* Monday 10:00 */
    int64_t day = message_ticket(w, 1, "Добрый день", "ru", 0);
    assert_null(find_fx(w, SB_FX_REPLY, day));
}

static void test_language_and_skill_come_from_the_customer_and_tags(void **state)
{
    world *w = *state;
    team(w, 1, SB_STRATEGY_ROUND_ROBIN);
    sb_engine_agent_cfg ru = {.id = 11, .teams = {1}, .nteams = 1, .languages = {{"ru"}}, .nlanguages = 1};
    sb_engine_agent_cfg kk = {.id = 12,
                              .teams = {1},
                              .nteams = 1,
                              .languages = {{"ru"}, {"kk"}},
                              .nlanguages = 2,
                              .skills = {{"billing"}},
                              .nskills = 1};
    sb_engine_put_agent(w->eng, &ru);
    sb_engine_put_agent(w->eng, &kk);
    handle(w, (sb_event){.kind = SB_EV_PRESENCE, .agent_id = 11, .presence = SB_PRESENCE_ONLINE});
    /* only 11 is online: a Kazakh message waits for 12 rather than going to 11 */
    int64_t t = message_ticket(w, 1, "Сәлеметсіз бе, тапсырысым қашан келеді?", NULL, 0);
    assert_int_equal(owner(w, t), 0);
    assert_true(view(w, t).queued);
    handle(w, (sb_event){.kind = SB_EV_PRESENCE, .agent_id = 12, .presence = SB_PRESENCE_ONLINE});
    assert_int_equal(owner(w, t), 12);
    /* Russian: nobody lacks it, anyone may take it */
    int64_t r = message_ticket(w, 1, "Здравствуйте, когда придёт мой заказ?", NULL, 0);
    assert_int_not_equal(owner(w, r), 0);
    /* a rule's tag that names a skill: only the specialist */
    rule(w, "{\"id\":1,\"name\":\"billing\",\"on\":[\"ticket.created\"],"
            "\"when\":{\"field\":\"text\",\"op\":\"contains\",\"value\":\"оплата\"},"
            "\"actions\":[{\"type\":\"add_tag\",\"value\":\"billing\"}]}");
    for (int i = 0; i < 2; i++) {
        int64_t b = message_ticket(w, 1, "Не проходит оплата", NULL, 0);
        int64_t o = owner(w, b);
        assert_true(o == 12 || (o == 0 && view(w, b).queued));
    }
}

static void test_bad_events_change_nothing(void **state)
{
    world *w = *state;
    team(w, 1, SB_STRATEGY_ROUND_ROBIN);
    agent(w, 11, 1, true);
    int64_t t = ticket(w, 1, SB_CHANNEL_CHAT, SB_PRIORITY_NORMAL);
    assert_int_equal(handle(w, (sb_event){.kind = SB_EV_ASSIGN, .ticket_id = t, .agent_id = 77}), SB_ENOTFOUND);
    assert_int_equal(handle(w, (sb_event){.kind = SB_EV_ASSIGN, .ticket_id = t, .team_id = 77}), SB_ENOTFOUND);
    assert_int_equal(handle(w, (sb_event){.kind = SB_EV_STATUS, .ticket_id = t, .status = (sb_status)42}), SB_EINVAL);
    assert_int_equal(handle(w, (sb_event){.kind = SB_EV_PRESENCE, .agent_id = 77}), SB_ENOTFOUND);
    assert_int_equal(handle(w, (sb_event){.kind = (sb_event_kind)99}), SB_EINVAL);
    sb_ticket_info dup = {.id = t, .channel = SB_CHANNEL_CHAT, .status = SB_STATUS_NEW, .team_id = 1};
    assert_int_equal(handle(w, (sb_event){.kind = SB_EV_TICKET_NEW, .ticket = dup}), SB_ECONFLICT);
    assert_int_equal(owner(w, t), 11);
    sb_engine_team_cfg bad = {.id = 0};
    assert_int_equal(sb_engine_put_team(w->eng, &bad), SB_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_round_robin_rotates_and_skips_offline, setup, teardown),
        cmocka_unit_test_setup_teardown(test_capacity_weights_by_channel, setup, teardown),
        cmocka_unit_test_setup_teardown(test_agent_on_a_call_gets_no_new_work, setup, teardown),
        cmocka_unit_test_setup_teardown(test_least_busy_breaks_ties_fairly, setup, teardown),
        cmocka_unit_test_setup_teardown(test_skills_and_languages_must_match, setup, teardown),
        cmocka_unit_test_setup_teardown(test_queue_keeps_places_and_nothing_is_forgotten, setup, teardown),
        cmocka_unit_test_setup_teardown(test_priority_change_resorts_queue, setup, teardown),
        cmocka_unit_test_setup_teardown(test_manual_team_and_take, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sticky_owner_waits_then_team, setup, teardown),
        cmocka_unit_test_setup_teardown(test_deputy_takes_new_work_and_handover, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unanswered_goes_to_next_and_auto_away, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sla_first_response_warning_breach_met, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sla_pauses_while_pending, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sla_priority_change_retargets, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sla_first_matching_policy, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sla_in_business_hours, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rule_urgent_words_before_routing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rule_routes_by_language, setup, teardown),
        cmocka_unit_test_setup_teardown(test_acknowledgement_in_the_contacts_language_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rules_cannot_loop, setup, teardown),
        cmocka_unit_test_setup_teardown(test_once_per_ticket_and_stop, setup, teardown),
        cmocka_unit_test_setup_teardown(test_breach_escalation_rule, setup, teardown),
        cmocka_unit_test_setup_teardown(test_time_rule_no_agent_reply, setup, teardown),
        cmocka_unit_test_setup_teardown(test_resolve_sends_survey_and_runs_rules, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tasks_remind_and_escalate, setup, teardown),
        cmocka_unit_test_setup_teardown(test_out_of_hours_reply_names_the_next_opening, setup, teardown),
        cmocka_unit_test_setup_teardown(test_language_and_skill_come_from_the_customer_and_tags, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_events_change_nothing, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
