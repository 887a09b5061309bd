/* test_callq.c - the call queue's decisions on a virtual clock.
 *
 * Each step's actions are rendered as one line ("ring 100 2, cancel 100 1
 * timeout, ...") so a test reads as the script of what the executor is
 * told. Agents are numbered 1-4 and are members of team 1's queue in that
 * order unless a test says otherwise; calls are numbered from 100. The
 * soak at the end runs 10,000 calls over 200 agents in five queues (one
 * per strategy) with a random executor and checks every action against a
 * model of its own. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/sb.h"
#include "engine/callq.h"

static sb_callq *q;
static sb_callq_actions out;
static int64_t now;
static char line[4096];

static const char *reason(sb_callq_reason r)
{
    return sb_callq_reason_name(r);
}

/* The actions since the last call, as one line; then forgets them. */
static const char *acts(void)
{
    size_t len = 0;
    line[0] = 0;
    for (size_t i = 0; i < out.n; i++) {
        const sb_callq_action *a = &out.v[i];
        char one[128];
        switch (a->kind) {
        case SB_CALLQ_HOLD: snprintf(one, sizeof one, "hold %llu", (unsigned long long)a->call_id); break;
        case SB_CALLQ_RING:
            snprintf(one, sizeof one, "ring %llu %lld", (unsigned long long)a->call_id, (long long)a->agent_id);
            break;
        case SB_CALLQ_CANCEL_RING:
            snprintf(one, sizeof one, "cancel %llu %lld %s", (unsigned long long)a->call_id, (long long)a->agent_id,
                     reason(a->reason));
            break;
        case SB_CALLQ_BRIDGE:
            snprintf(one, sizeof one, "bridge %llu %lld", (unsigned long long)a->call_id, (long long)a->agent_id);
            break;
        case SB_CALLQ_ANNOUNCE:
            snprintf(one, sizeof one, "announce %llu #%d", (unsigned long long)a->call_id, a->position);
            break;
        case SB_CALLQ_LEAVE:
            snprintf(one, sizeof one, "leave %llu %s", (unsigned long long)a->call_id, reason(a->reason));
            break;
        }
        len += (size_t)snprintf(line + len, sizeof line - len, "%s%s", i > 0 ? ", " : "", one);
        assert_true(len < sizeof line);
    }
    sb_callq_actions_reset(&out);
    sb_callq_check(q);
    return line;
}

static sb_callq_config config(int64_t team, sb_callq_strategy strategy)
{
    return (sb_callq_config){.team_id = team, .strategy = strategy, .ring_timeout_seconds = 15};
}

static void put_queue(const sb_callq_config *cfg)
{
    assert_int_equal(sb_callq_put_queue(q, cfg), 0);
}

static int handle(sb_callq_input in)
{
    return sb_callq_handle(q, &in, now, &out);
}

static void agent_state(int64_t agent, bool registered, bool available)
{
    assert_int_equal(
        handle((sb_callq_input){
            .kind = SB_CALLQ_IN_AGENT_STATE, .agent_id = agent, .registered = registered, .available = available}),
        0);
}

/* Members 1..n of team 1, all registered and available. */
static void members(int n)
{
    for (int a = 1; a <= n; a++) {
        assert_int_equal(sb_callq_add_member(q, 1, a, now, &out), 0);
        agent_state(a, true, true);
    }
}

static void join_full(uint64_t call, int64_t team, int priority, int64_t preferred)
{
    assert_int_equal(handle((sb_callq_input){.kind = SB_CALLQ_IN_CALL_JOINED,
                                             .call_id = call,
                                             .team_id = team,
                                             .priority = priority,
                                             .preferred_agent_id = preferred}),
                     0);
}

static void join(uint64_t call)
{
    join_full(call, 1, 0, 0);
}

static void answer(uint64_t call, int64_t agent)
{
    assert_int_equal(handle((sb_callq_input){.kind = SB_CALLQ_IN_LEG_ANSWERED, .call_id = call, .agent_id = agent}), 0);
}

static void refuse(uint64_t call, int64_t agent)
{
    assert_int_equal(
        handle((sb_callq_input){
            .kind = SB_CALLQ_IN_LEG_FAILED, .call_id = call, .agent_id = agent, .fail_reason = SB_CALLQ_FAIL_BUSY}),
        0);
}

static void hang_up(uint64_t call)
{
    assert_int_equal(handle((sb_callq_input){.kind = SB_CALLQ_IN_CALL_LEFT, .call_id = call}), 0);
}

static void end_call(int64_t agent)
{
    assert_int_equal(handle((sb_callq_input){.kind = SB_CALLQ_IN_CALL_ENDED, .agent_id = agent}), 0);
}

static int key(uint64_t call, char digit)
{
    return handle((sb_callq_input){.kind = SB_CALLQ_IN_KEY, .call_id = call, .digit = digit});
}

/* Moves the virtual clock and fires what is due. */
static void advance_ms(int64_t ms)
{
    now += ms;
    sb_callq_tick(q, now, &out);
}

static void advance(int seconds)
{
    advance_ms((int64_t)seconds * 1000);
}

/* Answers, ends the call at once (no wrap-up configured), clears output. */
static void take_call(uint64_t call, int64_t agent)
{
    answer(call, agent);
    end_call(agent);
    acts();
}

static int setup(void **state)
{
    (void)state;
    q = sb_callq_new();
    now = 1000000;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    sb_callq_free(q);
    sb_callq_actions_free(&out);
    return 0;
}

/* ---- strategies ---- */

static void test_round_robin_follows_who_answered(void **state)
{
    (void)state;
    sb_callq_config cfg = config(1, SB_CALLQ_ROUND_ROBIN);
    put_queue(&cfg);
    members(4);
    acts();

    join(100); /* nobody answered yet: the first member */
    assert_string_equal(acts(), "hold 100, ring 100 1");
    answer(100, 1);
    assert_string_equal(acts(), "bridge 100 1, leave 100 answered");

    join(101); /* after 1, who answered */
    assert_string_equal(acts(), "hold 101, ring 101 2");
    refuse(101, 2);
    assert_string_equal(acts(), "ring 101 3");
    advance(15); /* 3 lets it ring out: 4 next */
    assert_string_equal(acts(), "cancel 101 3 timeout, ring 101 4");
    hang_up(101);
    assert_string_equal(acts(), "cancel 101 4 abandoned, leave 101 abandoned");

    /* 3 and 4 were rung after 1 answered; the next call still starts after
     * 1, the last one who answered: 2. */
    end_call(1);
    acts();
    join(102);
    assert_string_equal(acts(), "hold 102, ring 102 2");
    answer(102, 2);
    acts();
    join(103); /* after 2: 3, although 1 is free and first in order */
    assert_string_equal(acts(), "hold 103, ring 103 3");
    answer(103, 3);
    acts();
    join(104); /* after 3: 4; 2 is talking */
    assert_string_equal(acts(), "hold 104, ring 104 4");
    answer(104, 4);
    acts();
    join(105); /* after 4: wraps around to 1 */
    assert_string_equal(acts(), "hold 105, ring 105 1");
}

static void test_longest_idle(void **state)
{
    (void)state;
    sb_callq_config cfg = config(1, SB_CALLQ_LONGEST_IDLE);
    put_queue(&cfg);
    members(3);
    acts();

    join(100); /* nobody had a call: member order */
    assert_string_equal(acts(), "hold 100, ring 100 1");
    answer(100, 1);
    acts();
    join(101);
    assert_string_equal(acts(), "hold 101, ring 101 2");
    answer(101, 2);
    acts();
    advance(10);
    end_call(2); /* 2 idle since t+10 */
    advance(10);
    end_call(1); /* 1 idle since t+20 */
    acts();

    join(102); /* 3 never had a call: idle longest */
    assert_string_equal(acts(), "hold 102, ring 102 3");
    answer(102, 3);
    acts();
    join(103); /* 2 has been idle longer than 1, although 1 comes first */
    assert_string_equal(acts(), "hold 103, ring 103 2");
    answer(103, 2);
    acts();
    advance(5);
    end_call(3);
    acts();
    join(104); /* 1 (idle since t+20) before 3 (since t+25) */
    assert_string_equal(acts(), "hold 104, ring 104 1");
    advance(15); /* ring timeout moves on to the next longest idle */
    assert_string_equal(acts(), "cancel 104 1 timeout, ring 104 3");
}

static void test_fewest_calls(void **state)
{
    (void)state;
    sb_callq_config cfg = config(1, SB_CALLQ_FEWEST_CALLS);
    put_queue(&cfg);
    members(3);
    agent_state(3, true, false);
    acts();

    join(100); /* 0 and 0: member order */
    assert_string_equal(acts(), "hold 100, ring 100 1");
    take_call(100, 1);
    join(101); /* 1 has one call, 2 none */
    assert_string_equal(acts(), "hold 101, ring 101 2");
    take_call(101, 2);
    join(102); /* one each: member order */
    assert_string_equal(acts(), "hold 102, ring 102 1");
    take_call(102, 1); /* 1: two calls, 2: one */

    agent_state(3, true, true);
    join(103); /* 3 has none */
    assert_string_equal(acts(), "hold 103, ring 103 3");
    advance(15); /* 3 does not answer: 2 (one call) before 1 (two) */
    assert_string_equal(acts(), "cancel 103 3 timeout, ring 103 2");
    take_call(103, 2);
    join(104); /* 1: 2, 2: 2, 3: 0 */
    assert_string_equal(acts(), "hold 104, ring 104 3");
    take_call(104, 3);

    sb_callq_agent_info info;
    assert_int_equal(sb_callq_agent_get(q, 2, &info), 0);
    assert_int_equal(info.calls_answered, 2);
    sb_callq_reset_counts(q); /* a new day: everyone at 0, member order */
    join(105);
    assert_string_equal(acts(), "hold 105, ring 105 1");
}

static const uint32_t scripted[] = {2, 0, 5, 7, 1};
static size_t scripted_at;

static uint32_t scripted_random(void *ctx)
{
    (void)ctx;
    return scripted[scripted_at++ % SB_ARRAY_LEN(scripted)];
}

static void test_random_uses_the_given_prng(void **state)
{
    (void)state;
    sb_callq_config cfg = config(1, SB_CALLQ_RANDOM);
    put_queue(&cfg);
    members(4);
    acts();
    scripted_at = 0;
    sb_callq_set_random(q, scripted_random, NULL);

    join(100); /* candidates 1 2 3 4, draw 2 → 3 */
    assert_string_equal(acts(), "hold 100, ring 100 3");
    answer(100, 3);
    acts();
    join(101); /* 1 2 4, draw 0 → 1 */
    assert_string_equal(acts(), "hold 101, ring 101 1");
    answer(101, 1);
    acts();
    join(102); /* 2 4, draw 5 → 4 */
    assert_string_equal(acts(), "hold 102, ring 102 4");
    refuse(102, 4); /* 2 alone is left untried; a single candidate draws too: 7 % 1 */
    assert_string_equal(acts(), "ring 102 2");
    assert_int_equal(scripted_at, 4);

    /* Without a PRNG given, the built-in one spreads calls over everyone. */
    sb_callq_set_random(q, NULL, NULL);
    answer(102, 2);
    end_call(1);
    end_call(2);
    end_call(3);
    acts(); /* 4 is free too */
    int seen[5] = {0};
    for (uint64_t c = 200; c < 400; c++) {
        join(c);
        assert_int_equal(out.n, 2);
        assert_int_equal(out.v[1].kind, SB_CALLQ_RING);
        int64_t agent = out.v[1].agent_id;
        seen[agent]++;
        acts();
        take_call(c, agent);
    }
    for (int a = 1; a <= 4; a++)
        assert_true(seen[a] > 20);
}

static void test_ring_all(void **state)
{
    (void)state;
    sb_callq_config cfg = config(1, SB_CALLQ_RING_ALL);
    put_queue(&cfg);
    members(3);
    acts();

    join(100);
    assert_string_equal(acts(), "hold 100, ring 100 1, ring 100 2, ring 100 3");
    answer(100, 2);
    assert_string_equal(acts(), "cancel 100 3 answered, cancel 100 1 answered, bridge 100 2, leave 100 answered");

    join(101); /* everyone free: 1 and 3; 102 waits behind it */
    join(102);
    assert_string_equal(acts(), "hold 101, ring 101 1, ring 101 3, hold 102");
    advance(15); /* nobody answers: a new round for the oldest call */
    assert_string_equal(acts(), "cancel 101 1 timeout, cancel 101 3 timeout, ring 101 1, ring 101 3");
    end_call(2); /* 2 is free again: 101 is ringing, so 102 gets 2 */
    assert_string_equal(acts(), "ring 102 2");
    refuse(101, 1); /* 101 still rings 3; 102 rings 2: nothing new */
    assert_string_equal(acts(), "");
    answer(101, 3);
    assert_string_equal(acts(), "bridge 101 3, leave 101 answered");
    end_call(3); /* 1 and 3 are free, 102 rings 2 alone until its round ends */
    assert_string_equal(acts(), "");
}

/* ---- the rules every strategy follows ---- */

static void test_wrapup_keeps_an_agent_out(void **state)
{
    (void)state;
    sb_callq_config cfg = config(1, SB_CALLQ_LONGEST_IDLE);
    cfg.wrapup_seconds = 30;
    put_queue(&cfg);
    members(1);
    acts();

    join(100);
    answer(100, 1);
    acts();
    end_call(1);
    assert_string_equal(acts(), "");
    sb_callq_agent_info info;
    assert_int_equal(sb_callq_agent_get(q, 1, &info), 0);
    assert_int_equal(info.status, SB_CALLQ_AGENT_WRAPUP);
    assert_int_equal(info.wrapup_until, now + 30000);
    assert_int_equal(sb_callq_next_deadline(q), now + 30000);

    join(101);
    assert_string_equal(acts(), "hold 101");
    agent_state(1, true, true); /* presence says available: wrap-up still holds */
    assert_string_equal(acts(), "");
    advance_ms(29999);
    assert_string_equal(acts(), "");
    advance_ms(1);
    assert_string_equal(acts(), "ring 101 1");
}

static void test_ringing_or_talking_agent_is_never_rung_again(void **state)
{
    (void)state;
    sb_callq_config cfg = config(1, SB_CALLQ_ROUND_ROBIN);
    cfg.retry_seconds = 5;
    put_queue(&cfg);
    members(2);
    acts();

    join(100);
    join(101);
    join(102); /* both agents ring for the first two calls: 102 waits */
    assert_string_equal(acts(), "hold 100, ring 100 1, hold 101, ring 101 2, hold 102");
    answer(100, 1);
    assert_string_equal(acts(), "bridge 100 1, leave 100 answered");
    /* 2 refuses 101: 1 is talking and 2 was tried, so 101 pauses for the
     * retry time while 102 gets 2; 1 is never offered anything. */
    refuse(101, 2);
    assert_string_equal(acts(), "ring 102 2");
    hang_up(102);
    assert_string_equal(acts(), "cancel 102 2 abandoned, leave 102 abandoned");
    advance(4);
    assert_string_equal(acts(), "");
    advance(1);
    assert_string_equal(acts(), "ring 101 2");

    /* The executor's answer crossed our cancel: not ours any more. */
    hang_up(101);
    acts();
    assert_int_equal(handle((sb_callq_input){.kind = SB_CALLQ_IN_LEG_ANSWERED, .call_id = 101, .agent_id = 2}),
                     SB_ENOTFOUND);
    join(103);
    assert_string_equal(acts(), "hold 103, ring 103 2");
    assert_int_equal(handle((sb_callq_input){.kind = SB_CALLQ_IN_LEG_ANSWERED, .call_id = 103, .agent_id = 1}),
                     SB_ENOTFOUND);
    assert_string_equal(acts(), "");
}

static void test_autofill_offers_waiting_calls_at_once(void **state)
{
    (void)state;
    sb_callq_config cfg = config(1, SB_CALLQ_LONGEST_IDLE);
    cfg.wrapup_seconds = 10;
    put_queue(&cfg);
    members(2);
    acts();

    /* Both agents finish a call at the same moment and wrap up together. */
    join(1);
    join(2);
    answer(1, 1);
    answer(2, 2);
    end_call(1);
    end_call(2);
    acts();

    join(100);
    advance(1);
    join(101);
    advance(1);
    join(102);
    assert_string_equal(acts(), "hold 100, hold 101, hold 102");
    advance(8); /* both free at once: the two oldest calls ring, one each */
    assert_string_equal(acts(), "ring 100 1, ring 101 2");
    answer(100, 1);
    assert_string_equal(acts(), "bridge 100 1, leave 100 answered");
    answer(101, 2);
    acts();

    /* A VIP joining last is offered first. */
    join_full(103, 1, 0, 0);
    join_full(104, 1, 5, 0);
    end_call(1);
    end_call(2);
    acts();
    advance(10);
    assert_string_equal(acts(), "ring 104 1, ring 102 2");
    sb_callq_stats st;
    assert_int_equal(sb_callq_stats_get(q, 1, now, &st), 0);
    assert_int_equal(st.waiting, 3);
}

static void test_max_wait_leaves_for_the_fallback(void **state)
{
    (void)state;
    sb_callq_config cfg = config(1, SB_CALLQ_LONGEST_IDLE);
    cfg.max_wait_seconds = 60;
    cfg.ring_timeout_seconds = 90;
    put_queue(&cfg);
    members(1);
    agent_state(1, true, false);
    acts();

    join(100);
    advance(30);
    agent_state(1, true, true); /* rings from t+30; max wait comes first */
    assert_string_equal(acts(), "hold 100, ring 100 1");
    advance_ms(29999);
    assert_string_equal(acts(), "");
    advance_ms(1);
    assert_int_equal(out.n, 2);
    assert_int_equal(out.v[1].waited_ms, 60000);
    assert_string_equal(acts(), "cancel 100 1 timeout, leave 100 timeout");
    assert_int_equal(sb_callq_calls(q), 0);
    sb_callq_stats st;
    assert_int_equal(sb_callq_stats_get(q, 1, now, &st), 0);
    assert_int_equal(st.timed_out, 1);
    assert_int_equal(st.waiting, 0);
}

static void test_position_announcements(void **state)
{
    (void)state;
    sb_callq_config cfg = config(1, SB_CALLQ_LONGEST_IDLE);
    cfg.announce_seconds = 30;
    put_queue(&cfg);
    acts();

    join(100);
    advance(5);
    join(101);
    advance(5);
    join(102);
    acts();
    advance(20); /* t+30 */
    assert_string_equal(acts(), "announce 100 #1");
    advance(5);
    assert_string_equal(acts(), "announce 101 #2");
    advance(1);
    hang_up(100); /* the first in line leaves: everyone moves up */
    acts();
    advance(4); /* t+40 */
    assert_string_equal(acts(), "announce 102 #2");
    advance(25); /* t+65 */
    assert_string_equal(acts(), "announce 101 #1");
    advance(5);
    assert_string_equal(acts(), "announce 102 #2");

    sb_callq_stats st;
    assert_int_equal(sb_callq_stats_get(q, 1, now, &st), 0);
    assert_int_equal(st.waiting, 2);
    assert_int_equal(st.longest_wait_ms, 65000);
    assert_int_equal(st.abandoned, 1);
    assert_int_equal(st.joined, 3);
}

static void test_callback_key(void **state)
{
    (void)state;
    sb_callq_config cfg = config(1, SB_CALLQ_LONGEST_IDLE);
    cfg.callback_digit = '1';
    snprintf(cfg.hold_prompt, sizeof cfg.hold_prompt, "%s", "queue_hold");
    put_queue(&cfg);
    members(1);
    acts();

    join(100);
    assert_string_equal(out.v[0].prompt, "queue_hold");
    assert_string_equal(acts(), "hold 100, ring 100 1");
    assert_int_equal(key(100, '5'), 0);
    assert_string_equal(acts(), "");
    assert_int_equal(key(100, 'x'), SB_EINVAL);
    advance(7);
    assert_int_equal(key(100, '1'), 0);
    assert_int_equal(out.v[1].waited_ms, 7000);
    assert_string_equal(acts(), "cancel 100 1 callback, leave 100 callback");
    assert_int_equal(key(100, '1'), SB_ENOTFOUND);
    assert_int_equal(handle((sb_callq_input){.kind = SB_CALLQ_IN_CALL_LEFT, .call_id = 100}), SB_ENOTFOUND);
    sb_callq_stats st;
    assert_int_equal(sb_callq_stats_get(q, 1, now, &st), 0);
    assert_int_equal(st.callbacks, 1);
    assert_int_equal(st.abandoned, 0);
}

static void test_preferred_agent_first(void **state)
{
    (void)state;
    sb_callq_config cfg = config(1, SB_CALLQ_ROUND_ROBIN);
    cfg.preferred_seconds = 10;
    put_queue(&cfg);
    members(3);
    acts();

    join_full(100, 1, 0, 3); /* 3 alone for 10 s, though 1 and 2 are free */
    assert_string_equal(acts(), "hold 100, ring 100 3");
    assert_int_equal(out.n, 0);
    advance(10); /* then the strategy; 3 counts as tried */
    assert_string_equal(acts(), "cancel 100 3 timeout, ring 100 1");
    answer(100, 1);
    acts();

    agent_state(2, true, false);
    join_full(101, 1, 0, 2); /* the owner cannot take it: the strategy at once */
    assert_string_equal(acts(), "hold 101, ring 101 3");
    answer(101, 3);
    acts();

    /* The owner need not be a member of the queue. */
    agent_state(9, true, true);
    acts();
    join_full(102, 1, 0, 9);
    assert_string_equal(acts(), "hold 102, ring 102 9");
    answer(102, 9);
    assert_string_equal(acts(), "bridge 102 9, leave 102 answered");
    sb_callq_agent_info info;
    assert_int_equal(sb_callq_agent_get(q, 9, &info), 0);
    assert_int_equal(info.status, SB_CALLQ_AGENT_TALKING);
    assert_int_equal(info.call_id, 102);
}

static void test_unavailable_while_ringing(void **state)
{
    (void)state;
    sb_callq_config cfg = config(1, SB_CALLQ_ROUND_ROBIN);
    put_queue(&cfg);
    members(3);
    acts();

    join(100);
    assert_string_equal(acts(), "hold 100, ring 100 1");
    agent_state(1, true, false); /* away, or a chat filled their capacity */
    assert_string_equal(acts(), "cancel 100 1 unavailable, ring 100 2");
    agent_state(1, true, true); /* back, but 100 is ringing 2 already */
    assert_string_equal(acts(), "");
    agent_state(2, false, true); /* the phone unregistered */
    assert_string_equal(acts(), "cancel 100 2 unavailable, ring 100 3");
    assert_int_equal(sb_callq_remove_member(q, 1, 3, now, &out), 0);
    assert_string_equal(acts(), "cancel 100 3 removed, ring 100 1");
    assert_int_equal(sb_callq_remove_queue(q, 1, now, &out), 0);
    assert_string_equal(acts(), "cancel 100 1 removed, leave 100 removed");
}

static void test_metrics_and_bad_input(void **state)
{
    (void)state;
    sb_callq_config cfg = config(1, SB_CALLQ_ROUND_ROBIN);
    put_queue(&cfg);
    members(1);
    acts();

    join(100);
    advance(4);
    answer(100, 1);
    end_call(1);
    join(101);
    advance(8);
    answer(101, 1);
    acts();
    sb_callq_stats st;
    assert_int_equal(sb_callq_stats_get(q, 1, now, &st), 0);
    assert_int_equal(st.answered, 2);
    assert_int_equal(st.answer_wait_total_ms, 12000); /* ASA 6 s */

    assert_int_equal(handle((sb_callq_input){.kind = SB_CALLQ_IN_CALL_JOINED, .call_id = 200, .team_id = 7}),
                     SB_ENOTFOUND);
    join(200);
    assert_int_equal(handle((sb_callq_input){.kind = SB_CALLQ_IN_CALL_JOINED, .call_id = 200, .team_id = 1}),
                     SB_ECONFLICT);
    assert_int_equal(handle((sb_callq_input){.kind = SB_CALLQ_IN_CALL_ENDED, .agent_id = 5}), SB_ENOTFOUND);
    end_call(1);
    assert_int_equal(handle((sb_callq_input){.kind = SB_CALLQ_IN_CALL_ENDED, .agent_id = 1}), SB_ECONFLICT);
    assert_int_equal(handle((sb_callq_input){.kind = SB_CALLQ_IN_LEG_FAILED, .call_id = 200, .agent_id = 4}),
                     SB_ENOTFOUND);
    sb_callq_config bad = config(2, SB_CALLQ_RANDOM);
    bad.ring_timeout_seconds = 0;
    assert_int_equal(sb_callq_put_queue(q, &bad), SB_EINVAL);
    bad = config(2, (sb_callq_strategy)9);
    assert_int_equal(sb_callq_put_queue(q, &bad), SB_EINVAL);
    bad = config(2, SB_CALLQ_RANDOM);
    bad.callback_digit = 'z';
    assert_int_equal(sb_callq_put_queue(q, &bad), SB_EINVAL);

    sb_callq_strategy s;
    assert_int_equal(sb_callq_strategy_parse("round_robin", &s), 0);
    assert_int_equal(s, SB_CALLQ_ROUND_ROBIN);
    assert_int_equal(sb_callq_strategy_parse("roundrobin", &s), SB_EINVAL);
    acts();
}

/* ---- soak ---- */

#define SOAK_CALLS  10000
#define SOAK_AGENTS 200
#define SOAK_QUEUES 5

typedef struct model_agent {
    uint64_t ringing; /* call id; 0 = none */
    uint64_t talking;
    int64_t talk_team;
    int64_t wrapup_until;
    bool registered, available;
} model_agent;

static model_agent magents[SOAK_AGENTS + 1];
static unsigned char mcalls[SOAK_CALLS + 1]; /* 0 not joined, 1 in queue, 2 left */
static int64_t mteam[SOAK_CALLS + 1];
static size_t leaves;
static uint64_t rng_state = 88172645463325252ull;

static uint32_t rnd(uint32_t n)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state % n);
}

static const int soak_wrapup[SOAK_QUEUES + 1] = {0, 0, 5, 10, 20, 3};

/* Every action the module sends is checked against the model. */
static void soak_apply(void)
{
    for (size_t i = 0; i < out.n; i++) {
        const sb_callq_action *a = &out.v[i];
        assert_true(a->call_id >= 1 && a->call_id <= SOAK_CALLS);
        assert_int_equal(mcalls[a->call_id], 1);
        model_agent *m = a->agent_id > 0 ? &magents[a->agent_id] : NULL;
        switch (a->kind) {
        case SB_CALLQ_HOLD: break;
        case SB_CALLQ_RING:
            assert_non_null(m);
            assert_int_equal(m->ringing, 0); /* never two calls at once */
            assert_int_equal(m->talking, 0);
            assert_true(now >= m->wrapup_until); /* never in wrap-up */
            assert_true(m->registered && m->available);
            m->ringing = a->call_id;
            break;
        case SB_CALLQ_CANCEL_RING:
            assert_non_null(m);
            assert_int_equal(m->ringing, a->call_id);
            m->ringing = 0;
            break;
        case SB_CALLQ_BRIDGE:
            assert_non_null(m);
            assert_int_equal(m->talking, a->call_id);
            break;
        case SB_CALLQ_ANNOUNCE: assert_true(a->position >= 1); break;
        case SB_CALLQ_LEAVE:
            for (int ag = 1; ag <= SOAK_AGENTS; ag++)
                assert_true(magents[ag].ringing != a->call_id);
            mcalls[a->call_id] = 2;
            leaves++;
            break;
        }
    }
    sb_callq_actions_reset(&out);
}

/* Ticks at every deadline on the way, so each is checked at its instant. */
static void soak_advance(int64_t ms)
{
    int64_t target = now + ms;
    while (sb_callq_next_deadline(q) <= target) {
        now = sb_callq_next_deadline(q);
        sb_callq_tick(q, now, &out);
        soak_apply();
    }
    now = target;
}

static void test_soak(void **state)
{
    (void)state;
    memset(magents, 0, sizeof magents);
    memset(mcalls, 0, sizeof mcalls);
    leaves = 0;
    for (int t = 1; t <= SOAK_QUEUES; t++) {
        sb_callq_config cfg = config(t, (sb_callq_strategy)(t - 1));
        cfg.wrapup_seconds = soak_wrapup[t];
        cfg.max_wait_seconds = 300;
        cfg.announce_seconds = 20;
        cfg.callback_digit = '9';
        cfg.preferred_seconds = 8;
        cfg.retry_seconds = t % 2;
        put_queue(&cfg);
    }
    for (int a = 1; a <= SOAK_AGENTS; a++) {
        assert_int_equal(sb_callq_add_member(q, a % SOAK_QUEUES + 1, a, now, &out), 0);
        assert_int_equal(sb_callq_add_member(q, (a * 7 / 3) % SOAK_QUEUES + 1, a, now, &out), 0);
        magents[a].registered = magents[a].available = rnd(10) != 0;
        agent_state(a, magents[a].registered, magents[a].available);
        soak_apply();
    }

    uint64_t next_call = 1;
    long steps = 0;
    while (next_call <= SOAK_CALLS || sb_callq_calls(q) > 0) {
        assert_true(++steps < 2000000);
        int ag = (int)rnd(SOAK_AGENTS) + 1;
        model_agent *m = &magents[ag];
        uint64_t c = next_call > 1 ? rnd((uint32_t)(next_call - 1)) + 1 : 0;
        switch (rnd(10)) {
        case 0:
        case 1:
            if (next_call <= SOAK_CALLS) {
                int64_t team = (int64_t)rnd(SOAK_QUEUES) + 1;
                mcalls[next_call] = 1;
                mteam[next_call] = team;
                int priority = rnd(20) == 0 ? 1 : 0; /* one statement each: a fixed draw order */
                int64_t preferred = rnd(10) == 0 ? (int64_t)rnd(SOAK_AGENTS) + 1 : 0;
                join_full(next_call, team, priority, preferred);
                next_call++;
            }
            break;
        case 2:
        case 3:
            if (m->ringing != 0) {
                uint64_t call = m->ringing;
                m->ringing = 0;
                m->talking = call;
                m->talk_team = mteam[call];
                answer(call, ag);
            }
            break;
        case 4:
            if (m->ringing != 0) {
                uint64_t call = m->ringing;
                m->ringing = 0;
                refuse(call, ag);
            }
            break;
        case 5:
            if (m->talking != 0) {
                m->talking = 0;
                m->wrapup_until = now + (int64_t)soak_wrapup[m->talk_team] * 1000;
                end_call(ag);
            }
            break;
        case 6:
            if (c != 0 && mcalls[c] == 1) {
                if (rnd(4) == 0)
                    assert_int_equal(key(c, rnd(2) ? '9' : '3'), 0);
                else
                    hang_up(c);
            }
            break;
        case 7:
            m->available = rnd(8) != 0;
            m->registered = rnd(20) != 0;
            agent_state(ag, m->registered, m->available);
            break;
        default: soak_advance(rnd(1500)); break;
        }
        soak_apply();
        if (steps % 512 == 0)
            sb_callq_check(q);
    }
    sb_callq_check(q);

    /* Every call joined and left exactly once (LEAVE of a call not in the
     * queue fails in soak_apply), and the counters agree. */
    assert_int_equal(leaves, SOAK_CALLS);
    for (int call = 1; call <= SOAK_CALLS; call++)
        assert_int_equal(mcalls[call], 2);
    uint64_t joined = 0, answered = 0, other = 0;
    for (int t = 1; t <= SOAK_QUEUES; t++) {
        sb_callq_stats st;
        assert_int_equal(sb_callq_stats_get(q, t, now, &st), 0);
        assert_int_equal(st.waiting, 0);
        joined += st.joined;
        answered += st.answered;
        other += st.abandoned + st.timed_out + st.callbacks;
        assert_true(st.answered > 100); /* every strategy got real work */
    }
    assert_int_equal(joined, SOAK_CALLS);
    assert_int_equal(answered + other, SOAK_CALLS);
    print_message("soak: %llu answered, %llu other, %ld steps\n", (unsigned long long)answered,
                  (unsigned long long)other, steps);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_round_robin_follows_who_answered, setup, teardown),
        cmocka_unit_test_setup_teardown(test_longest_idle, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fewest_calls, setup, teardown),
        cmocka_unit_test_setup_teardown(test_random_uses_the_given_prng, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ring_all, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wrapup_keeps_an_agent_out, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ringing_or_talking_agent_is_never_rung_again, setup, teardown),
        cmocka_unit_test_setup_teardown(test_autofill_offers_waiting_calls_at_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_max_wait_leaves_for_the_fallback, setup, teardown),
        cmocka_unit_test_setup_teardown(test_position_announcements, setup, teardown),
        cmocka_unit_test_setup_teardown(test_callback_key, setup, teardown),
        cmocka_unit_test_setup_teardown(test_preferred_agent_first, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unavailable_while_ringing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_metrics_and_bad_input, setup, teardown),
        cmocka_unit_test_setup_teardown(test_soak, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
