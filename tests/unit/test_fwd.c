/* test_fwd.c - forwarding schemes: the pure decisions (engine/fwd.h) on a
 * virtual clock, and the validation of scheme documents
 * (engine/voice_config.h).
 *
 * Each step's actions are rendered as one line ("ring c1 agent 3 s1 t15;
 * cancel c1 agent 3 timeout; ...") so a test reads as the script of what
 * the executor is told. Agents 3-6 exist; team 1 is agents 3, 4, 5, 6 in
 * that order, team 2 is agents 6, 5. The soak at the end runs 20,000
 * calls through random schemes with a random executor and checks every
 * action against a model of its own. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/fwd.h"
#include "engine/voice_config.h"

static sb_fwd *fwd;
static sb_fwd_actions out;
static int64_t now;

/* Every RING seen: which leg id rings which target of which call. */
typedef struct seen_leg {
    uint64_t call;
    char target[SB_FWD_ADDRESS_MAX + 16];
    uint32_t id;
} seen_leg;
static seen_leg *seen;
static size_t nseen, cap_seen;

static json_t *parse(const char *text)
{
    json_error_t e;
    json_t *j = json_loads(text, 0, &e);
    if (j == NULL)
        fail_msg("bad test JSON at %d: %s", e.position, e.text);
    return j;
}

static void target_text(const sb_fwd_target *t, char *buf, size_t cap)
{
    if (t->kind == SB_FWD_TARGET_AGENT || t->kind == SB_FWD_TARGET_TEAM)
        snprintf(buf, cap, "%s %lld", sb_fwd_target_kind_name(t->kind), (long long)t->id);
    else
        snprintf(buf, cap, "%s %s", sb_fwd_target_kind_name(t->kind), t->address);
}

static void render(const sb_fwd_action *a, char *buf, size_t cap)
{
    char t[SB_FWD_ADDRESS_MAX + 16], via[32] = "";
    target_text(&a->target, t, sizeof t);
    if (a->team_id != 0)
        snprintf(via, sizeof via, " via %lld", (long long)a->team_id);
    unsigned long long c = (unsigned long long)a->call_id;
    switch (a->kind) {
    case SB_FWD_RING: snprintf(buf, cap, "ring c%llu %s%s s%d t%d", c, t, via, a->step, a->timeout_seconds); break;
    case SB_FWD_CANCEL: snprintf(buf, cap, "cancel c%llu %s %s", c, t, sb_fwd_reason_name(a->reason)); break;
    case SB_FWD_BRIDGE:
        snprintf(buf, cap, "bridge c%llu %s%s s%d @%lld", c, t, via, a->step, (long long)a->elapsed_ms);
        break;
    case SB_FWD_DESTINATION:
        snprintf(buf, cap, "%s c%llu %s %lld%s s%d @%lld", sb_fwd_reason_name(a->reason), c,
                 sb_ivr_do_name(a->dest.what), (long long)a->dest.id, a->dest.prompt[0] ? " prompt" : "", a->step,
                 (long long)a->elapsed_ms);
        break;
    case SB_FWD_ABANDONED: snprintf(buf, cap, "abandoned c%llu s%d @%lld", c, a->step, (long long)a->elapsed_ms); break;
    }
}

/* Records the legs of the RINGs in out.v[from..]. */
static void remember_legs(size_t from)
{
    for (size_t i = from; i < out.n; i++) {
        if (out.v[i].kind != SB_FWD_RING)
            continue;
        if (nseen == cap_seen) {
            cap_seen = cap_seen ? cap_seen * 2 : 64;
            seen = realloc(seen, cap_seen * sizeof *seen);
            assert_non_null(seen);
        }
        seen[nseen].call = out.v[i].call_id;
        target_text(&out.v[i].target, seen[nseen].target, sizeof seen[nseen].target);
        seen[nseen++].id = out.v[i].leg_id;
    }
}

/* The leg that last rang `target` ("agent 3") for `call`. */
static uint32_t leg(uint64_t call, const char *target)
{
    for (size_t i = nseen; i-- > 0;)
        if (seen[i].call == call && strcmp(seen[i].target, target) == 0)
            return seen[i].id;
    fail_msg("no leg rang %s for call %llu", target, (unsigned long long)call);
    return 0;
}

/* The last step's actions as one line. */
static const char *actions(void)
{
    static char line[8192];
    size_t len = 0;
    line[0] = '\0';
    for (size_t i = 0; i < out.n && len < sizeof line; i++) {
        char one[400];
        render(&out.v[i], one, sizeof one);
        len += (size_t)snprintf(line + len, sizeof line - len, "%s%s", i ? "; " : "", one);
    }
    return line;
}

static void put_scheme_json(const char *text)
{
    json_t *j = parse(text);
    sb_config_error err = {{0}, {0}};
    if (sb_voice_check_scheme(j, NULL, &err) != 0)
        fail_msg("scheme refused: %s: %s", err.field, err.message);
    sb_fwd_scheme *s = calloc(1, sizeof *s);
    assert_non_null(s);
    assert_int_equal(sb_voice_scheme(j, s), 0);
    assert_int_equal(sb_fwd_put_scheme(fwd, s), 0);
    free(s);
    json_decref(j);
}

static int input(sb_fwd_input in)
{
    sb_fwd_actions_reset(&out);
    int rc = sb_fwd_handle(fwd, &in, now, &out);
    remember_legs(0);
    sb_fwd_check(fwd);
    return rc;
}

static void start(uint64_t call, int64_t scheme)
{
    assert_int_equal(input((sb_fwd_input){.kind = SB_FWD_IN_START, .call_id = call, .scheme_id = scheme}), 0);
}

static void answer(uint64_t call, const char *target)
{
    assert_int_equal(
        input((sb_fwd_input){.kind = SB_FWD_IN_LEG_ANSWERED, .call_id = call, .leg_id = leg(call, target)}), 0);
}

static void failed(uint64_t call, const char *target, sb_fwd_fail why)
{
    assert_int_equal(
        input((sb_fwd_input){.kind = SB_FWD_IN_LEG_FAILED, .call_id = call, .leg_id = leg(call, target), .fail = why}),
        0);
}

static void hang_up(uint64_t call)
{
    assert_int_equal(input((sb_fwd_input){.kind = SB_FWD_IN_HANGUP, .call_id = call}), 0);
}

/* Moves the virtual clock and fires what is due. */
static void advance(int64_t ms)
{
    now += ms;
    sb_fwd_actions_reset(&out);
    if (sb_fwd_next_deadline(fwd) <= now)
        sb_fwd_tick(fwd, now, &out);
    remember_legs(0);
    sb_fwd_check(fwd);
}

static void agents(int available, ...)
{
    va_list ap;
    va_start(ap, available);
    for (int id = va_arg(ap, int); id != 0; id = va_arg(ap, int))
        sb_fwd_set_agent(fwd, id, available != 0);
    va_end(ap);
}

/* "Two SDRs 15 s → all of Sales 15 s → voicemail". */
static const char SALES[] = "{\"id\": 1, \"name\": \"Sales\","
                            " \"steps\": [{\"targets\": [{\"agent\": 3}, {\"agent\": 4}], \"mode\": \"together\","
                            "  \"seconds\": 15},"
                            " {\"targets\": [{\"team\": 1}], \"mode\": \"together\", \"seconds\": 15}],"
                            " \"final\": {\"action\": \"voicemail\", \"team_id\": 1},"
                            " \"backup\": {\"action\": \"hangup\", \"prompt\": \"sorry\"}}";

static int setup(void **state)
{
    (void)state;
    fwd = sb_fwd_new();
    now = 1000000;
    nseen = 0;
    static const int64_t team1[] = {3, 4, 5, 6}, team2[] = {6, 5};
    assert_int_equal(sb_fwd_put_team(fwd, 1, team1, 4), 0);
    assert_int_equal(sb_fwd_put_team(fwd, 2, team2, 2), 0);
    assert_int_equal(sb_fwd_put_team(fwd, 0, team2, 2), SB_EINVAL);
    put_scheme_json(SALES);
    agents(true, 3, 4, 5, 6, 0);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    sb_fwd_free(fwd);
    sb_fwd_actions_free(&out);
    free(seen);
    seen = NULL;
    nseen = cap_seen = 0;
    return 0;
}

/* ---- the scheme's course ---- */

static void test_together_then_the_team(void **state)
{
    (void)state;
    start(1, 1);
    assert_string_equal(actions(), "ring c1 agent 3 s1 t15; ring c1 agent 4 s1 t15");
    assert_int_equal(sb_fwd_next_deadline(fwd), now + 15000);
    assert_true(sb_fwd_ringing(fwd, 3) && sb_fwd_ringing(fwd, 4) && !sb_fwd_ringing(fwd, 5));
    advance(14999);
    assert_string_equal(actions(), "");
    /* step 1's time is over: its legs are cancelled, the team rings in
     * member order (6 is not available) */
    agents(false, 6, 0);
    advance(1);
    assert_string_equal(actions(), "cancel c1 agent 3 timeout; cancel c1 agent 4 timeout; "
                                   "ring c1 agent 3 via 1 s2 t15; ring c1 agent 4 via 1 s2 t15; "
                                   "ring c1 agent 5 via 1 s2 t15");
    advance(4000);
    answer(1, "agent 5");
    assert_string_equal(actions(),
                        "cancel c1 agent 3 answered; cancel c1 agent 4 answered; bridge c1 agent 5 via 1 s2 @19000");
    assert_int_equal(sb_fwd_calls(fwd), 0);
    assert_false(sb_fwd_ringing(fwd, 3) || sb_fwd_ringing(fwd, 5));
    /* the stale timer of step 2 fires nothing */
    advance(60000);
    assert_string_equal(actions(), "");
    assert_int_equal(sb_fwd_next_deadline(fwd), INT64_MAX);
}

static void test_nobody_answers_final(void **state)
{
    (void)state;
    start(1, 1);
    advance(2000);
    failed(1, "agent 3", SB_FWD_FAIL_BUSY); /* agent 4 rings on */
    assert_string_equal(actions(), "");
    advance(13000);
    assert_string_equal(actions(), "cancel c1 agent 4 timeout; ring c1 agent 3 via 1 s2 t15; "
                                   "ring c1 agent 4 via 1 s2 t15; ring c1 agent 5 via 1 s2 t15; "
                                   "ring c1 agent 6 via 1 s2 t15");
    advance(15000);
    assert_string_equal(actions(), "cancel c1 agent 3 timeout; cancel c1 agent 4 timeout; "
                                   "cancel c1 agent 5 timeout; cancel c1 agent 6 timeout; "
                                   "final c1 voicemail 1 s2 @30000");
    assert_int_equal(out.v[out.n - 1].dest.what, SB_IVR_DO_VOICEMAIL);
    assert_int_equal(out.v[out.n - 1].scheme_id, 1);
    assert_int_equal(sb_fwd_calls(fwd), 0);
}

static void test_every_leg_failing_moves_on_at_once(void **state)
{
    (void)state;
    start(1, 1);
    advance(1000);
    failed(1, "agent 3", SB_FWD_FAIL_NO_ANSWER);
    failed(1, "agent 4", SB_FWD_FAIL_BUSY);
    /* step 2 starts now, with a full 15 s */
    assert_string_equal(actions(), "ring c1 agent 3 via 1 s2 t15; ring c1 agent 4 via 1 s2 t15; "
                                   "ring c1 agent 5 via 1 s2 t15; ring c1 agent 6 via 1 s2 t15");
    assert_int_equal(sb_fwd_next_deadline(fwd), now + 15000);
    for (int a = 3; a <= 6; a++) {
        char t[16];
        snprintf(t, sizeof t, "agent %d", a);
        failed(1, t, SB_FWD_FAIL_BUSY);
    }
    assert_string_equal(actions(), "final c1 voicemail 1 s2 @1000");
}

static void test_sequential_rings_each_in_turn(void **state)
{
    (void)state;
    put_scheme_json("{\"id\": 2, \"name\": \"Duty\", \"steps\": [{\"mode\": \"sequential\", \"seconds\": 10,"
                    " \"targets\": [{\"agent\": 3}, {\"agent\": 4}, {\"team\": 2}, {\"number\": \"+74950000001\"},"
                    "  {\"sip_uri\": \"sip:duty@pbx.example.com\"}]}],"
                    " \"final\": {\"action\": \"menu\", \"menu_id\": 1}}");
    sb_fwd_set_trunk(fwd, true);
    agents(false, 4, 0);
    start(7, 2);
    assert_string_equal(actions(), "ring c7 agent 3 s1 t10");
    advance(10000);
    /* agent 4 is not available: skipped at no cost; team 2 is 6 then 5 */
    assert_string_equal(actions(), "cancel c7 agent 3 timeout; ring c7 agent 6 via 2 s1 t10");
    advance(3000);
    failed(7, "agent 6", SB_FWD_FAIL_BUSY);
    assert_string_equal(actions(), "ring c7 agent 5 via 2 s1 t10");
    assert_int_equal(sb_fwd_next_deadline(fwd), now + 10000); /* a full turn after a failure */
    advance(10000);
    assert_string_equal(actions(), "cancel c7 agent 5 timeout; ring c7 number +74950000001 s1 t10");
    advance(10000);
    assert_string_equal(actions(),
                        "cancel c7 number +74950000001 timeout; ring c7 sip_uri sip:duty@pbx.example.com s1 t10");
    advance(9999);
    assert_string_equal(actions(), "");
    advance(1);
    assert_string_equal(actions(), "cancel c7 sip_uri sip:duty@pbx.example.com timeout; final c7 menu 1 s1 @43000");
    /* without the trunk the number is skipped, the SIP address (no trunk
     * needed) rings; it cannot be reached, and the backup is the final
     * when the document has none */
    sb_fwd_set_trunk(fwd, false);
    agents(false, 3, 5, 6, 0);
    start(8, 2);
    assert_string_equal(actions(), "ring c8 sip_uri sip:duty@pbx.example.com s1 t10");
    failed(8, "sip_uri sip:duty@pbx.example.com", SB_FWD_FAIL_UNREACHABLE);
    assert_string_equal(actions(), "backup c8 menu 1 s1 @0");
}

static void test_a_sequential_target_answers(void **state)
{
    (void)state;
    put_scheme_json("{\"id\": 2, \"name\": \"Duty\", \"steps\": [{\"mode\": \"sequential\", \"seconds\": 5,"
                    " \"targets\": [{\"agent\": 3}, {\"agent\": 4}]}, {\"mode\": \"together\", \"seconds\": 5,"
                    " \"targets\": [{\"agent\": 6}]}], \"final\": {\"action\": \"hangup\"}}");
    start(1, 2);
    advance(5000);
    assert_string_equal(actions(), "cancel c1 agent 3 timeout; ring c1 agent 4 s1 t5");
    /* an agent that becomes unavailable while ringing keeps ringing */
    agents(false, 4, 0);
    advance(1000);
    answer(1, "agent 4");
    assert_string_equal(actions(), "bridge c1 agent 4 s1 @6000");
}

static void test_nothing_reachable_is_the_backup(void **state)
{
    (void)state;
    put_scheme_json("{\"id\": 3, \"name\": \"Outside\", \"steps\": [{\"mode\": \"together\", \"seconds\": 20,"
                    " \"targets\": [{\"number\": \"+74950000001\"}, {\"sip_uri\": \"sip:a@10.0.0.1:5062\"}]},"
                    " {\"mode\": \"sequential\", \"seconds\": 20, \"targets\": [{\"agent\": 3}]}],"
                    " \"final\": {\"action\": \"queue\", \"team_id\": 1},"
                    " \"backup\": {\"action\": \"voicemail\", \"team_id\": 2}}");
    /* no trunk and agent 3 away: the number is skipped, the SIP address
     * rings and cannot be reached: nothing got through, the backup */
    agents(false, 3, 0);
    start(1, 3);
    assert_string_equal(actions(), "ring c1 sip_uri sip:a@10.0.0.1:5062 s1 t20");
    failed(1, "sip_uri sip:a@10.0.0.1:5062", SB_FWD_FAIL_UNREACHABLE);
    assert_string_equal(actions(), "backup c1 voicemail 2 s2 @0");
    assert_int_equal(sb_fwd_calls(fwd), 0);
    /* with the trunk, the numbers ring; they fail unreachable (the trunk
     * refused): our side could not deliver, so the backup again */
    sb_fwd_set_trunk(fwd, true);
    start(2, 3);
    assert_string_equal(actions(), "ring c2 number +74950000001 s1 t20; ring c2 sip_uri sip:a@10.0.0.1:5062 s1 t20");
    failed(2, "number +74950000001", SB_FWD_FAIL_UNREACHABLE);
    failed(2, "sip_uri sip:a@10.0.0.1:5062", SB_FWD_FAIL_UNREACHABLE);
    assert_string_equal(actions(), "backup c2 voicemail 2 s2 @0");
    /* one leg that got through (it rang out) makes it the final */
    start(3, 3);
    failed(3, "number +74950000001", SB_FWD_FAIL_UNREACHABLE);
    failed(3, "sip_uri sip:a@10.0.0.1:5062", SB_FWD_FAIL_NO_ANSWER);
    assert_string_equal(actions(), "final c3 queue 1 s2 @0");
    /* a step whose every leg failed at once: the next one rings at once */
    sb_fwd_set_trunk(fwd, false);
    agents(true, 3, 0);
    start(4, 3);
    assert_string_equal(actions(), "ring c4 sip_uri sip:a@10.0.0.1:5062 s1 t20");
    failed(4, "sip_uri sip:a@10.0.0.1:5062", SB_FWD_FAIL_UNREACHABLE);
    assert_string_equal(actions(), "ring c4 agent 3 s2 t20");
    failed(4, "agent 3", SB_FWD_FAIL_UNREACHABLE); /* registered a moment ago, gone now */
    assert_string_equal(actions(), "backup c4 voicemail 2 s2 @0");
    /* the SALES backup carries its prompt */
    agents(false, 3, 4, 5, 6, 0);
    start(5, 1);
    assert_string_equal(actions(), "backup c5 hangup 0 prompt s2 @0");
}

static void test_caller_hangs_up(void **state)
{
    (void)state;
    start(1, 1);
    advance(3000);
    hang_up(1);
    assert_string_equal(actions(), "cancel c1 agent 3 caller; cancel c1 agent 4 caller; abandoned c1 s1 @3000");
    assert_int_equal(sb_fwd_calls(fwd), 0);
    /* whatever comes late is for a call that left */
    assert_int_equal(input((sb_fwd_input){.kind = SB_FWD_IN_LEG_ANSWERED, .call_id = 1, .leg_id = leg(1, "agent 3")}),
                     SB_ENOTFOUND);
    assert_int_equal(input((sb_fwd_input){.kind = SB_FWD_IN_HANGUP, .call_id = 1}), SB_ENOTFOUND);
    assert_string_equal(actions(), "");
    advance(60000);
    assert_string_equal(actions(), "");
}

static void test_stale_legs_and_bad_input(void **state)
{
    (void)state;
    start(1, 1);
    uint32_t old = leg(1, "agent 3");
    agents(false, 6, 0);
    advance(15000); /* step 2: agent 3 rings again, as a new leg (with 4 and 5) */
    assert_true(leg(1, "agent 3") != old);
    /* step 1's leg reporting late changes nothing: its answer crossed the
     * CANCEL (the executor hangs that leg up) */
    assert_int_equal(input((sb_fwd_input){.kind = SB_FWD_IN_LEG_ANSWERED, .call_id = 1, .leg_id = old}), SB_ENOTFOUND);
    assert_int_equal(
        input((sb_fwd_input){.kind = SB_FWD_IN_LEG_FAILED, .call_id = 1, .leg_id = old, .fail = SB_FWD_FAIL_BUSY}),
        SB_ENOTFOUND);
    assert_int_equal(
        input((sb_fwd_input){
            .kind = SB_FWD_IN_LEG_FAILED, .call_id = 1, .leg_id = leg(1, "agent 3"), .fail = (sb_fwd_fail)9}),
        SB_EINVAL);
    assert_int_equal(input((sb_fwd_input){.kind = SB_FWD_IN_START, .call_id = 1, .scheme_id = 1}), SB_ECONFLICT);
    assert_int_equal(input((sb_fwd_input){.kind = SB_FWD_IN_HANGUP, .call_id = 2}), SB_ENOTFOUND);
    assert_int_equal(input((sb_fwd_input){.kind = (sb_fwd_input_kind)42, .call_id = 1}), SB_EINVAL);
    assert_string_equal(actions(), "");
    /* a leg of another call is not this call's */
    agents(true, 6, 0);
    start(2, 1);
    assert_string_equal(actions(), "ring c2 agent 6 via 1 s2 t15"); /* 3, 4, 5 ring for call 1 */
    assert_int_equal(input((sb_fwd_input){.kind = SB_FWD_IN_LEG_ANSWERED, .call_id = 1, .leg_id = leg(2, "agent 6")}),
                     SB_ENOTFOUND);
    /* a scheme that is not loaded: a hang-up, at once */
    start(3, 99);
    assert_string_equal(actions(), "no_scheme c3 hangup 0 s0 @0");
    assert_int_equal(out.v[0].scheme_id, 99);
    assert_int_equal(sb_fwd_calls(fwd), 2);
}

static void test_an_agent_rings_for_one_call_at_a_time(void **state)
{
    (void)state;
    start(1, 1);
    start(2, 1);
    /* 3 and 4 ring for call 1: step 1 of call 2 has nobody, so its step 2
     * rings the rest of the team at once */
    assert_string_equal(actions(), "ring c2 agent 5 via 1 s2 t15; ring c2 agent 6 via 1 s2 t15");
    advance(1000);
    answer(1, "agent 3");
    assert_string_equal(actions(), "cancel c1 agent 4 answered; bridge c1 agent 3 s1 @1000");
    agents(false, 3, 0); /* the executor: agent 3 talks */
    start(3, 1);
    assert_string_equal(actions(), "ring c3 agent 4 s1 t15");
    assert_true(sb_fwd_ringing(fwd, 4) && sb_fwd_ringing(fwd, 6) && !sb_fwd_ringing(fwd, 3));
    advance(14000);
    /* call 2's step 2 ends: nobody answered */
    assert_string_equal(actions(),
                        "cancel c2 agent 5 timeout; cancel c2 agent 6 timeout; final c2 voicemail 1 s2 @15000");
    advance(1000);
    /* call 3's step 2: agent 3 talks, 4 was just cancelled, 5 and 6 are free now */
    assert_string_equal(actions(), "cancel c3 agent 4 timeout; ring c3 agent 4 via 1 s2 t15; "
                                   "ring c3 agent 5 via 1 s2 t15; ring c3 agent 6 via 1 s2 t15");
}

static void test_an_agent_named_twice_rings_once(void **state)
{
    (void)state;
    put_scheme_json("{\"id\": 4, \"name\": \"Overlap\", \"steps\": [{\"mode\": \"together\", \"seconds\": 30,"
                    " \"targets\": [{\"team\": 2}, {\"agent\": 5}, {\"team\": 1}, {\"team\": 77}]}],"
                    " \"final\": {\"action\": \"hangup\"}}");
    start(1, 4);
    /* team 2 (6, 5) first, agent 5 again, team 1 adds 3 and 4; team 77 is unknown: nobody */
    assert_string_equal(actions(), "ring c1 agent 6 via 2 s1 t30; ring c1 agent 5 via 2 s1 t30; "
                                   "ring c1 agent 3 via 1 s1 t30; ring c1 agent 4 via 1 s1 t30");
}

static void test_a_reload_keeps_the_scheme_of_a_call(void **state)
{
    (void)state;
    start(1, 1);
    /* scheme 1 changes: call 1 goes on with the one it started with */
    put_scheme_json("{\"id\": 1, \"name\": \"Sales v2\", \"steps\": [{\"targets\": [{\"agent\": 6}],"
                    " \"mode\": \"together\", \"seconds\": 5}], \"final\": {\"action\": \"hangup\"}}");
    start(2, 1);
    assert_string_equal(actions(), "ring c2 agent 6 s1 t5");
    /* teams are read when a step starts: team 1 is now agents 5 and 4 */
    static const int64_t team1[] = {5, 4};
    sb_fwd_clear_config(fwd);
    assert_int_equal(sb_fwd_put_team(fwd, 1, team1, 2), 0);
    advance(5000);
    assert_string_equal(actions(), "cancel c2 agent 6 timeout; final c2 hangup 0 s1 @5000");
    advance(10000);
    assert_string_equal(actions(), "cancel c1 agent 3 timeout; cancel c1 agent 4 timeout; "
                                   "ring c1 agent 5 via 1 s2 t15; ring c1 agent 4 via 1 s2 t15");
    /* the scheme is gone for new calls */
    start(3, 1);
    assert_string_equal(actions(), "no_scheme c3 hangup 0 s0 @0");
    advance(15000);
    assert_string_equal(actions(), "cancel c1 agent 5 timeout; cancel c1 agent 4 timeout; "
                                   "final c1 voicemail 1 s2 @30000");
}

static void test_bad_schemes_are_not_loaded(void **state)
{
    (void)state;
    sb_fwd_scheme *s = calloc(1, sizeof *s);
    assert_non_null(s);
    s->id = 5;
    assert_int_equal(sb_fwd_put_scheme(fwd, s), SB_EINVAL); /* no steps */
    s->nsteps = 1;
    s->steps[0].seconds = 10;
    assert_int_equal(sb_fwd_put_scheme(fwd, s), SB_EINVAL); /* no targets */
    s->steps[0].ntargets = 1;
    s->steps[0].targets[0] = (sb_fwd_target){.kind = SB_FWD_TARGET_AGENT, .id = 3};
    assert_int_equal(sb_fwd_put_scheme(fwd, s), 0);
    free(s);
}

/* ---- validation ---- */

static void check_refused(const char *text, const char *field)
{
    json_t *j = parse(text);
    sb_config_error err = {{0}, {0}};
    sb_config_refs *refs = calloc(1, sizeof *refs);
    assert_non_null(refs);
    int rc = sb_voice_check_scheme(j, refs, &err);
    free(refs);
    json_decref(j);
    if (rc != SB_EINVAL)
        fail_msg("accepted: %s", text);
    if (strcmp(err.field, field) != 0)
        fail_msg("field %s (%s), expected %s for %s", err.field, err.message, field, text);
}

static void test_scheme_validation(void **state)
{
    (void)state;
    json_t *j = parse(SALES);
    sb_config_error err = {{0}, {0}};
    sb_config_refs refs = {0};
    assert_int_equal(sb_voice_check_scheme(j, &refs, &err), 0);
    assert_int_equal(refs.nagents, 2);
    assert_int_equal(refs.nteams, 2); /* team 1, and the voicemail's */
    sb_fwd_scheme s;
    assert_int_equal(sb_voice_scheme(j, &s), 0);
    json_decref(j);
    assert_int_equal(s.nsteps, 2);
    assert_int_equal(s.steps[0].ntargets, 2);
    assert_int_equal(s.steps[1].targets[0].kind, SB_FWD_TARGET_TEAM);
    assert_int_equal(s.final_dest.what, SB_IVR_DO_VOICEMAIL);
    assert_string_equal(s.backup.prompt, "sorry");

    static const char head[] = "{\"id\": 1, \"name\": \"S\", ";
    static const char fin[] = "\"final\": {\"action\": \"hangup\"}";
    struct {
        const char *steps, *rest, *field;
    } bad[] = {
        {NULL, "", "steps"},
        {"[]", "", "steps"},
        {"{}", "", "steps"},
        {"[1]", "", "steps[0]"},
        {"[{\"mode\": \"together\", \"seconds\": 5}]", "", "steps[0].targets"},
        {"[{\"targets\": [], \"mode\": \"together\", \"seconds\": 5}]", "", "steps[0].targets"},
        {"[{\"targets\": [{}], \"mode\": \"together\", \"seconds\": 5}]", "", "steps[0].targets[0]"},
        {"[{\"targets\": [3], \"mode\": \"together\", \"seconds\": 5}]", "", "steps[0].targets[0]"},
        {"[{\"targets\": [{\"agent\": 3, \"team\": 1}], \"mode\": \"together\", \"seconds\": 5}]", "",
         "steps[0].targets[0]"},
        {"[{\"targets\": [{\"phone\": \"1\"}], \"mode\": \"together\", \"seconds\": 5}]", "",
         "steps[0].targets[0].phone"},
        {"[{\"targets\": [{\"agent\": \"3\"}], \"mode\": \"together\", \"seconds\": 5}]", "",
         "steps[0].targets[0].agent"},
        {"[{\"targets\": [{\"team\": 0}], \"mode\": \"together\", \"seconds\": 5}]", "", "steps[0].targets[0].team"},
        {"[{\"targets\": [{\"number\": \"+7 495\"}], \"mode\": \"together\", \"seconds\": 5}]", "",
         "steps[0].targets[0].number"},
        {"[{\"targets\": [{\"number\": 74950000001}], \"mode\": \"together\", \"seconds\": 5}]", "",
         "steps[0].targets[0].number"},
        {"[{\"targets\": [{\"sip_uri\": \"duty@pbx\"}], \"mode\": \"together\", \"seconds\": 5}]", "",
         "steps[0].targets[0].sip_uri"},
        {"[{\"targets\": [{\"sip_uri\": \"sip:@pbx\"}], \"mode\": \"together\", \"seconds\": 5}]", "",
         "steps[0].targets[0].sip_uri"},
        {"[{\"targets\": [{\"sip_uri\": \"sip:a@\"}], \"mode\": \"together\", \"seconds\": 5}]", "",
         "steps[0].targets[0].sip_uri"},
        {"[{\"targets\": [{\"sip_uri\": \"sip:a@pbx:0\"}], \"mode\": \"together\", \"seconds\": 5}]", "",
         "steps[0].targets[0].sip_uri"},
        {"[{\"targets\": [{\"sip_uri\": \"sip:a@pbx:70000\"}], \"mode\": \"together\", \"seconds\": 5}]", "",
         "steps[0].targets[0].sip_uri"},
        {"[{\"targets\": [{\"sip_uri\": \"sip:a@pbx;transport=tcp\"}], \"mode\": \"together\", \"seconds\": 5}]", "",
         "steps[0].targets[0].sip_uri"},
        {"[{\"targets\": [{\"sip_uri\": \"sip:a b@pbx\"}], \"mode\": \"together\", \"seconds\": 5}]", "",
         "steps[0].targets[0].sip_uri"},
        {"[{\"targets\": [{\"sip_uri\": \"sip:a@-pbx\"}], \"mode\": \"together\", \"seconds\": 5}]", "",
         "steps[0].targets[0].sip_uri"},
        {"[{\"targets\": [{\"sip_uri\": \"sip:a@[::1\"}], \"mode\": \"together\", \"seconds\": 5}]", "",
         "steps[0].targets[0].sip_uri"},
        {"[{\"targets\": [{\"agent\": 3}, {\"agent\": 4}, {\"agent\": 3}], \"mode\": \"together\", \"seconds\": 5}]",
         "", "steps[0].targets[2].agent"},
        {"[{\"targets\": [{\"number\": \"101\"}, {\"number\": \"101\"}], \"mode\": \"together\", \"seconds\": 5}]", "",
         "steps[0].targets[1].number"},
        {"[{\"targets\": [{\"agent\": 3}], \"seconds\": 5}]", "", "steps[0].mode"},
        {"[{\"targets\": [{\"agent\": 3}], \"mode\": \"all\", \"seconds\": 5}]", "", "steps[0].mode"},
        {"[{\"targets\": [{\"agent\": 3}], \"mode\": \"together\"}]", "", "steps[0].seconds"},
        {"[{\"targets\": [{\"agent\": 3}], \"mode\": \"together\", \"seconds\": 0}]", "", "steps[0].seconds"},
        {"[{\"targets\": [{\"agent\": 3}], \"mode\": \"together\", \"seconds\": 601}]", "", "steps[0].seconds"},
        {"[{\"targets\": [{\"agent\": 3}], \"mode\": \"together\", \"seconds\": 15.5}]", "", "steps[0].seconds"},
        {"[{\"targets\": [{\"agent\": 3}], \"mode\": \"together\", \"seconds\": 5, \"delay\": 1}]", "",
         "steps[0].delay"},
        {"[{\"targets\": [{\"agent\": 3}], \"mode\": \"together\", \"seconds\": 5},"
         " {\"targets\": [{\"agent\": 3}], \"mode\": \"sequential\", \"seconds\": -1}]",
         "", "steps[1].seconds"},
    };
    for (size_t i = 0; i < SB_ARRAY_LEN(bad); i++) {
        char text[1024];
        if (bad[i].steps != NULL)
            snprintf(text, sizeof text, "%s\"steps\": %s, %s%s}", head, bad[i].steps, fin, bad[i].rest);
        else
            snprintf(text, sizeof text, "%s%s%s}", head, fin, bad[i].rest);
        check_refused(text, bad[i].field);
    }
    static const char step[] = "\"steps\": [{\"targets\": [{\"agent\": 3}], \"mode\": \"together\", \"seconds\": 5}]";
    struct {
        const char *rest, *field;
    } bad_ends[] = {
        {"", "final"},
        {", \"final\": {\"action\": \"scheme\", \"scheme_id\": 2}", "final.action"},
        {", \"final\": {\"action\": \"submenu\", \"menu_id\": 2}", "final.action"},
        {", \"final\": {\"action\": \"operator\"}", "final.action"},
        {", \"final\": {\"action\": \"voicemail\"}", "final.team_id"},
        {", \"final\": {\"action\": \"menu\", \"menu_id\": 1, \"prompt\": \"x\"}", "final.prompt"},
        {", \"final\": {\"action\": \"hangup\"}, \"backup\": {\"action\": \"repeat\"}", "backup.action"},
        {", \"final\": {\"action\": \"hangup\"}, \"backup\": \"hangup\"", "backup"},
        {", \"final\": {\"action\": \"hangup\"}, \"ring_back\": true", "ring_back"},
    };
    for (size_t i = 0; i < SB_ARRAY_LEN(bad_ends); i++) {
        char text[1024];
        snprintf(text, sizeof text, "%s%s%s}", head, step, bad_ends[i].rest);
        check_refused(text, bad_ends[i].field);
    }
    char text[4096];
    check_refused("{\"id\": 1, \"steps\": [], \"final\": {\"action\": \"hangup\"}}", "name");
    /* limits: 10 steps of 20 targets pass, 11 steps or 21 targets do not */
    size_t len = (size_t)snprintf(text, sizeof text, "%s\"steps\": [", head);
    for (int st = 0; st < 11; st++)
        len += (size_t)snprintf(text + len, sizeof text - len,
                                "%s{\"targets\": [{\"agent\": %d}], \"mode\": "
                                "\"sequential\", \"seconds\": 600}",
                                st ? ", " : "", st + 1);
    snprintf(text + len, sizeof text - len, "], %s}", fin);
    check_refused(text, "steps");
    len = (size_t)snprintf(text, sizeof text, "%s\"steps\": [{\"mode\": \"together\", \"seconds\": 1, \"targets\": [",
                           head);
    for (int t = 0; t < 21; t++)
        len += (size_t)snprintf(text + len, sizeof text - len, "%s{\"agent\": %d}", t ? ", " : "", t + 1);
    snprintf(text + len, sizeof text - len, "]}], %s}", fin);
    check_refused(text, "steps[0].targets");

    /* the largest scheme: every target's id reaches the reference check */
    json_t *big = json_pack("{s:i,s:s,s:[],s:{s:s}}", "id", 9, "name", "Big", "steps", "final", "action", "hangup");
    for (int st = 0; st < SB_FWD_MAX_STEPS; st++) {
        json_t *targets = json_array();
        for (int t = 0; t < SB_FWD_MAX_TARGETS; t++)
            json_array_append_new(targets, json_pack("{s:i}", t % 2 ? "agent" : "team", st * 100 + t + 1));
        json_array_append_new(json_object_get(big, "steps"),
                              json_pack("{s:o,s:s,s:i}", "targets", targets, "mode", "together", "seconds", 600));
    }
    sb_config_refs many = {0};
    assert_int_equal(sb_voice_check_scheme(big, &many, &err), 0);
    assert_int_equal(many.nagents, 100);
    assert_int_equal(many.nteams, 100);
    assert_int_equal(many.agents[99], 920);
    json_decref(big);

    /* good addresses */
    j = parse(
        "{\"id\": 2, \"name\": \"Out\", \"steps\": [{\"mode\": \"sequential\", \"seconds\": 600, \"targets\": ["
        "{\"number\": \"+74951234567\"}, {\"number\": \"101\"}, {\"sip_uri\": \"sip:duty@pbx.example.com\"},"
        "{\"sip_uri\": \"sips:+74951234567@10.0.0.5:5061\"}, {\"sip_uri\": \"sip:201@[2001:db8::1]:5060\"}]}],"
        " \"final\": {\"action\": \"menu\", \"menu_id\": 4}, \"backup\": {\"action\": \"agent\", \"agent_id\": 5}}");
    sb_config_refs r2 = {0};
    assert_int_equal(sb_voice_check_scheme(j, &r2, &err), 0);
    assert_int_equal(r2.nmenus, 1);
    assert_int_equal(r2.menus[0], 4);
    assert_int_equal(r2.agents[0], 5);
    assert_int_equal(sb_voice_scheme(j, &s), 0);
    assert_int_equal(s.steps[0].mode, SB_FWD_SEQUENTIAL);
    assert_string_equal(s.steps[0].targets[4].address, "sip:201@[2001:db8::1]:5060");
    assert_int_equal(s.backup.what, SB_IVR_DO_AGENT);
    json_decref(j);
}

/* A number points at a scheme in each calendar period, never from its
 * operator; the IVR hands the call over with the scheme's id. */
static void test_numbers_point_at_schemes(void **state)
{
    (void)state;
    json_t *j = parse("{\"id\": 1, \"name\": \"N\", \"number\": \"100\", \"calendar_id\": 1,"
                      " \"entry\": {\"action\": \"scheme\", \"scheme_id\": 1},"
                      " \"after_hours\": {\"action\": \"scheme\", \"scheme_id\": 2, \"prompt\": \"closed\"},"
                      " \"holidays\": {\"action\": \"scheme\", \"scheme_id\": 3}}");
    sb_config_error err = {{0}, {0}};
    sb_config_refs refs = {0};
    assert_int_equal(sb_voice_check_number(j, &refs, &err), 0);
    assert_int_equal(refs.nschemes, 3);
    assert_int_equal(refs.schemes[2], 3);
    sb_phone_number n;
    assert_int_equal(sb_voice_number(j, &n), 0);
    assert_int_equal(n.entry.what, SB_IVR_DO_SCHEME);
    assert_int_equal(n.after_hours.id, 2);
    json_decref(j);
    static const char *const bad[][2] = {
        {"{\"id\": 1, \"name\": \"N\", \"number\": \"100\", \"entry\": {\"action\": \"scheme\"}}", "entry.scheme_id"},
        {"{\"id\": 1, \"name\": \"N\", \"number\": \"100\", \"entry\": {\"action\": \"scheme\", \"scheme_id\": 1},"
         " \"operator\": {\"action\": \"scheme\", \"scheme_id\": 1}}",
         "operator.action"},
        {"{\"id\": 1, \"name\": \"N\", \"number\": \"100\", \"entry\": {\"action\": \"scheme\", \"menu_id\": 1}}",
         "entry.menu_id"},
    };
    for (size_t i = 0; i < SB_ARRAY_LEN(bad); i++) {
        json_t *b = parse(bad[i][0]);
        assert_int_equal(sb_voice_check_number(b, NULL, &err), SB_EINVAL);
        assert_string_equal(err.field, bad[i][1]);
        json_decref(b);
    }
    /* menus never lead to a scheme */
    json_t *m = parse("{\"id\": 1, \"name\": \"M\", \"prompt\": \"p\","
                      " \"options\": [{\"digit\": \"1\", \"action\": \"scheme\", \"scheme_id\": 1}]}");
    assert_int_equal(sb_voice_check_menu(m, NULL, &err), SB_EINVAL);
    assert_string_equal(err.field, "options[0].action");
    json_decref(m);
}

/* ---- soak ---- */

#define SOAK_CALLS   20000
#define SOAK_AGENTS  40
#define SOAK_TEAMS   6
#define SOAK_SCHEMES 8
#define MAX_ENTRIES  (SB_FWD_MAX_TARGETS + SOAK_AGENTS)

static uint64_t rng_state = 88172645463325252ull;

static uint32_t rnd(uint32_t n)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state % n);
}

/* The model: the semantics of fwd.h written out plainly over arrays
 * indexed by agent id. It says what each event must produce; the soak
 * compares that with what the module did, action for action. */
typedef struct mleg {
    sb_fwd_target t;
    int64_t team;
    uint32_t id; /* the module's, learnt from its RING */
} mleg;

typedef struct mcall {
    int state; /* 0 not started, 1 in a scheme, 2 left */
    sb_fwd_scheme *s;
    int step;
    size_t turn;
    sb_fwd_target entries[MAX_ENTRIES];
    int64_t entry_team[MAX_ENTRIES];
    size_t nentries;
    mleg legs[MAX_ENTRIES];
    size_t nlegs;
    bool delivered;
    int64_t deadline, started;
} mcall;

static mcall *mc;
static bool mavail[SOAK_AGENTS + 1];
static int mringing[SOAK_AGENTS + 1];
static bool mtrunk;
static int64_t mmembers[SOAK_TEAMS + 1][SOAK_AGENTS];
static size_t mnmembers[SOAK_TEAMS + 1];
static sb_fwd_scheme mschemes[SOAK_SCHEMES + 1];
static bool mscheme_loaded[SOAK_SCHEMES + 1];
static char expected[2 * MAX_ENTRIES + 8][400];
static size_t nexpected;

static void expect_line(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void expect_line(const char *fmt, ...)
{
    assert_true(nexpected < SB_ARRAY_LEN(expected));
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(expected[nexpected++], sizeof expected[0], fmt, ap);
    va_end(ap);
}

static bool m_same(const sb_fwd_target *a, const sb_fwd_target *b)
{
    char x[SB_FWD_ADDRESS_MAX + 16], y[SB_FWD_ADDRESS_MAX + 16];
    target_text(a, x, sizeof x);
    target_text(b, y, sizeof y);
    return strcmp(x, y) == 0;
}

static bool m_reachable(const sb_fwd_target *t)
{
    if (t->kind == SB_FWD_TARGET_AGENT)
        return t->id >= 1 && t->id <= SOAK_AGENTS && mavail[t->id] && mringing[t->id] == 0;
    return t->kind == SB_FWD_TARGET_SIP_URI || (t->kind == SB_FWD_TARGET_NUMBER && mtrunk);
}

static void m_expand(mcall *m)
{
    const sb_fwd_step *st = &m->s->steps[m->step];
    m->nentries = 0;
    for (int i = 0; i < st->ntargets; i++) {
        sb_fwd_target one[SOAK_AGENTS];
        int64_t team = 0;
        size_t n = 0;
        if (st->targets[i].kind == SB_FWD_TARGET_TEAM) {
            team = st->targets[i].id;
            for (size_t k = 0; team >= 1 && team <= SOAK_TEAMS && k < mnmembers[team]; k++)
                one[n++] = (sb_fwd_target){.kind = SB_FWD_TARGET_AGENT, .id = mmembers[team][k]};
        } else {
            one[n++] = st->targets[i];
        }
        for (size_t k = 0; k < n; k++) {
            bool dup = false;
            for (size_t e = 0; e < m->nentries && !dup; e++)
                dup = m_same(&m->entries[e], &one[k]);
            if (!dup) {
                m->entries[m->nentries] = one[k];
                m->entry_team[m->nentries++] = team;
            }
        }
    }
}

static void m_ring(uint64_t call, mcall *m, size_t e)
{
    char t[SB_FWD_ADDRESS_MAX + 16], via[32] = "";
    m->legs[m->nlegs++] = (mleg){.t = m->entries[e], .team = m->entry_team[e]};
    if (m->entries[e].kind == SB_FWD_TARGET_AGENT)
        mringing[m->entries[e].id]++;
    target_text(&m->entries[e], t, sizeof t);
    if (m->entry_team[e] != 0)
        snprintf(via, sizeof via, " via %lld", (long long)m->entry_team[e]);
    expect_line("ring c%llu %s%s s%d t%d", (unsigned long long)call, t, via, m->step + 1, m->s->steps[m->step].seconds);
}

static void m_drop(mcall *m, size_t i)
{
    if (m->legs[i].t.kind == SB_FWD_TARGET_AGENT)
        mringing[m->legs[i].t.id]--;
    memmove(&m->legs[i], &m->legs[i + 1], (m->nlegs - i - 1) * sizeof m->legs[0]);
    m->nlegs--;
}

static void m_cancel_all(uint64_t call, mcall *m, const char *reason)
{
    while (m->nlegs > 0) {
        char t[SB_FWD_ADDRESS_MAX + 16];
        target_text(&m->legs[0].t, t, sizeof t);
        expect_line("cancel c%llu %s %s", (unsigned long long)call, t, reason);
        m_drop(m, 0);
    }
}

static void m_leave(mcall *m)
{
    m->state = 2;
    m->deadline = INT64_MAX;
    free(m->s);
    m->s = NULL;
}

static bool m_next_turn(uint64_t call, mcall *m)
{
    while (m->turn < m->nentries) {
        size_t e = m->turn++;
        if (m_reachable(&m->entries[e])) {
            m_ring(call, m, e);
            m->deadline = now + (int64_t)m->s->steps[m->step].seconds * 1000;
            return true;
        }
    }
    return false;
}

static void m_next_step(uint64_t call, mcall *m)
{
    m->deadline = INT64_MAX;
    for (m->step++; m->step < m->s->nsteps; m->step++) {
        m_expand(m);
        m->turn = 0;
        if (m->s->steps[m->step].mode == SB_FWD_SEQUENTIAL) {
            if (m_next_turn(call, m))
                return;
            continue;
        }
        for (size_t e = 0; e < m->nentries; e++)
            if (m_reachable(&m->entries[e]))
                m_ring(call, m, e);
        if (m->nlegs > 0) {
            m->deadline = now + (int64_t)m->s->steps[m->step].seconds * 1000;
            return;
        }
    }
    const sb_ivr_target *d = m->delivered ? &m->s->final_dest : &m->s->backup;
    expect_line("%s c%llu %s %lld%s s%d @%lld", m->delivered ? "final" : "backup", (unsigned long long)call,
                sb_ivr_do_name(d->what), (long long)d->id, d->prompt[0] ? " prompt" : "", m->s->nsteps,
                (long long)(now - m->started));
    m_leave(m);
}

static void m_ring_over(uint64_t call, mcall *m)
{
    m->deadline = INT64_MAX;
    if (m->s->steps[m->step].mode == SB_FWD_SEQUENTIAL && m_next_turn(call, m))
        return;
    m_next_step(call, m);
}

/* Compares the module's actions out.v[from..to) with the model's, and
 * gives the model the module's leg ids. */
static void compare(size_t from, size_t to)
{
    char got[400];
    bool same = to - from == nexpected;
    for (size_t i = 0; same && i < nexpected; i++) {
        render(&out.v[from + i], got, sizeof got);
        same = strcmp(got, expected[i]) == 0;
    }
    if (!same) {
        fprintf(stderr, "at %lld the model expected:\n", (long long)now);
        for (size_t i = 0; i < nexpected; i++)
            fprintf(stderr, "  %s\n", expected[i]);
        fprintf(stderr, "the module did:\n");
        for (size_t i = from; i < to; i++) {
            render(&out.v[i], got, sizeof got);
            fprintf(stderr, "  %s\n", got);
        }
        fail_msg("the module and the model disagree");
    }
    for (size_t i = from; i < to; i++) {
        const sb_fwd_action *a = &out.v[i];
        if (a->kind != SB_FWD_RING)
            continue;
        mcall *m = &mc[a->call_id];
        bool found = false;
        for (size_t k = 0; k < m->nlegs && !found; k++)
            if (m->legs[k].id == 0 && m_same(&m->legs[k].t, &a->target)) {
                m->legs[k].id = a->leg_id;
                found = true;
            }
        assert_true(found);
    }
    nexpected = 0;
}

static uint32_t soak_leg_id(uint64_t call, uint32_t pick)
{
    mcall *m = &mc[call];
    return m->nlegs > 0 ? m->legs[pick % m->nlegs].id : 0;
}

/* One input to both; the module's actions must be the model's. */
static void soak_input(sb_fwd_input in)
{
    mcall *m = &mc[in.call_id];
    int want = 0;
    nexpected = 0;
    switch (in.kind) {
    case SB_FWD_IN_START:
        if (m->state == 1) {
            want = SB_ECONFLICT;
        } else if (in.scheme_id < 1 || in.scheme_id > SOAK_SCHEMES || !mscheme_loaded[in.scheme_id]) {
            expect_line("no_scheme c%llu hangup 0 s0 @0", (unsigned long long)in.call_id);
            m->state = 2;
        } else {
            m->state = 1;
            m->s = malloc(sizeof *m->s);
            assert_non_null(m->s);
            *m->s = mschemes[in.scheme_id];
            m->step = -1;
            m->started = now;
            m_next_step(in.call_id, m);
        }
        break;
    case SB_FWD_IN_LEG_ANSWERED:
    case SB_FWD_IN_LEG_FAILED: {
        size_t k = SIZE_MAX;
        for (size_t i = 0; m->state == 1 && i < m->nlegs; i++)
            if (m->legs[i].id == in.leg_id)
                k = i;
        if (m->state != 1 || k == SIZE_MAX) {
            want = SB_ENOTFOUND;
            break;
        }
        if (in.kind == SB_FWD_IN_LEG_FAILED) {
            m->delivered = m->delivered || in.fail != SB_FWD_FAIL_UNREACHABLE;
            m_drop(m, k);
            if (m->nlegs == 0)
                m_ring_over(in.call_id, m);
            break;
        }
        mleg won = m->legs[k];
        m_drop(m, k);
        m_cancel_all(in.call_id, m, "answered");
        char t[SB_FWD_ADDRESS_MAX + 16], via[32] = "";
        target_text(&won.t, t, sizeof t);
        if (won.team != 0)
            snprintf(via, sizeof via, " via %lld", (long long)won.team);
        expect_line("bridge c%llu %s%s s%d @%lld", (unsigned long long)in.call_id, t, via, m->step + 1,
                    (long long)(now - m->started));
        /* the executor: the agent talks (sometimes briefly free again at once) */
        if (won.t.kind == SB_FWD_TARGET_AGENT && rnd(3) != 0) {
            mavail[won.t.id] = false;
            sb_fwd_set_agent(fwd, won.t.id, false);
        }
        m_leave(m);
        break;
    }
    case SB_FWD_IN_HANGUP:
        if (m->state != 1) {
            want = SB_ENOTFOUND;
            break;
        }
        m_cancel_all(in.call_id, m, "caller");
        expect_line("abandoned c%llu s%d @%lld", (unsigned long long)in.call_id, m->step + 1,
                    (long long)(now - m->started));
        m_leave(m);
        break;
    }
    sb_fwd_actions_reset(&out);
    assert_int_equal(sb_fwd_handle(fwd, &in, now, &out), want);
    for (size_t i = 0; i < out.n; i++)
        assert_int_equal(out.v[i].call_id, in.call_id);
    compare(0, out.n);
}

/* Ticks at every deadline on the way. The module fires due calls in its
 * own order: each call's actions are one run, checked against the model
 * firing that call then; afterwards no model deadline may be due. */
static void soak_advance(int64_t ms)
{
    int64_t target = now + ms;
    while (sb_fwd_next_deadline(fwd) <= target) {
        now = sb_fwd_next_deadline(fwd);
        sb_fwd_actions_reset(&out);
        sb_fwd_tick(fwd, now, &out);
        size_t from = 0;
        while (from < out.n) {
            uint64_t call = out.v[from].call_id;
            size_t to = from;
            while (to < out.n && out.v[to].call_id == call)
                to++;
            mcall *m = &mc[call];
            assert_int_equal(m->state, 1);
            assert_int_equal(m->deadline, now);
            m->delivered = true;
            m_cancel_all(call, m, "timeout");
            m_ring_over(call, m);
            compare(from, to);
            from = to;
        }
    }
    now = target;
}

static void random_team(int t)
{
    int64_t members[SOAK_AGENTS];
    size_t n = 0, want = rnd(9);
    while (n < want) {
        int64_t a = (int64_t)rnd(SOAK_AGENTS) + 1;
        bool dup = false;
        for (size_t k = 0; k < n; k++)
            dup = dup || members[k] == a;
        if (!dup)
            members[n++] = a;
    }
    memcpy(mmembers[t], members, n * sizeof members[0]);
    mnmembers[t] = n;
    assert_int_equal(sb_fwd_put_team(fwd, t, members, n), 0);
}

/* A random scheme document, through the validator and the builder. */
static void random_scheme(int id)
{
    json_t *steps = json_array();
    int nsteps = (int)rnd(4) + 1;
    for (int st = 0; st < nsteps; st++) {
        json_t *targets = json_array();
        int n = (int)rnd(5) + 1;
        for (int k = 0; k < n; k++) {
            uint32_t kind = rnd(10);
            json_t *t = kind < 6   ? json_pack("{s:i}", "agent", (int)rnd(SOAK_AGENTS) + 1)
                        : kind < 8 ? json_pack("{s:i}", "team", (int)rnd(SOAK_TEAMS + 1) + 1) /* 7: unknown */
                        : kind < 9 ? json_pack("{s:s}", "number", rnd(2) ? "+74950000001" : "+74950000002")
                                   : json_pack("{s:s}", "sip_uri", rnd(2) ? "sip:a@pbx.example.com" : "sip:b@10.0.0.1");
            bool dup = false;
            size_t i;
            json_t *have;
            json_array_foreach (targets, i, have) {
                dup = dup || json_equal(have, t);
            }
            if (dup)
                json_decref(t);
            else
                json_array_append_new(targets, t);
        }
        json_array_append_new(steps, json_pack("{s:o,s:s,s:i}", "targets", targets, "mode",
                                               rnd(2) ? "together" : "sequential", "seconds", (int)rnd(20) + 1));
    }
    json_t *doc = json_pack("{s:i,s:s,s:o,s:{s:s,s:i}}", "id", id, "name", "random", "steps", steps, "final", "action",
                            "voicemail", "team_id", 1);
    if (rnd(2))
        json_object_set_new(doc, "backup", json_pack("{s:s,s:s}", "action", "hangup", "prompt", "sorry"));
    sb_config_error err = {{0}, {0}};
    if (sb_voice_check_scheme(doc, NULL, &err) != 0)
        fail_msg("random scheme refused: %s: %s", err.field, err.message);
    assert_int_equal(sb_voice_scheme(doc, &mschemes[id]), 0);
    json_decref(doc);
    assert_int_equal(sb_fwd_put_scheme(fwd, &mschemes[id]), 0);
    mscheme_loaded[id] = true;
}

static void test_soak(void **state)
{
    (void)state;
    mc = calloc(SOAK_CALLS + 1, sizeof *mc);
    assert_non_null(mc);
    memset(mringing, 0, sizeof mringing);
    memset(mscheme_loaded, 0, sizeof mscheme_loaded);
    sb_fwd_clear_config(fwd);
    for (int a = 1; a <= SOAK_AGENTS; a++) {
        mavail[a] = rnd(10) < 6;
        sb_fwd_set_agent(fwd, a, mavail[a]);
    }
    mtrunk = true;
    sb_fwd_set_trunk(fwd, true);
    for (int t = 1; t <= SOAK_TEAMS; t++)
        random_team(t);
    for (int s = 1; s <= SOAK_SCHEMES; s++)
        random_scheme(s);

    uint64_t next_call = 1;
    long steps = 0;
    while (next_call <= SOAK_CALLS || sb_fwd_calls(fwd) > 0) {
        assert_true(++steps < 5000000);
        uint64_t c = next_call > 1 ? rnd((uint32_t)(next_call - 1)) + 1 : 1;
        switch (rnd(24)) {
        case 0:
        case 1:
        case 2:
            if (next_call <= SOAK_CALLS && sb_fwd_calls(fwd) < 60) {
                /* now and then a scheme that is not loaded */
                int64_t scheme = rnd(50) == 0 ? SOAK_SCHEMES + 1 : (int64_t)rnd(SOAK_SCHEMES) + 1;
                soak_input((sb_fwd_input){.kind = SB_FWD_IN_START, .call_id = next_call++, .scheme_id = scheme});
            }
            break;
        case 3:
        case 4:
        case 5:
            if (mc[c].state == 1)
                soak_input(
                    (sb_fwd_input){.kind = SB_FWD_IN_LEG_ANSWERED, .call_id = c, .leg_id = soak_leg_id(c, rnd(64))});
            break;
        case 6:
        case 7:
        case 8:
        case 9:
            if (mc[c].state == 1)
                soak_input((sb_fwd_input){.kind = SB_FWD_IN_LEG_FAILED,
                                          .call_id = c,
                                          .leg_id = soak_leg_id(c, rnd(64)),
                                          .fail = (sb_fwd_fail)rnd(3)});
            break;
        case 10:
            if (mc[c].state != 0)
                soak_input((sb_fwd_input){.kind = SB_FWD_IN_HANGUP, .call_id = c});
            break;
        case 11: {
            /* a stale or foreign leg id, or a second START */
            uint32_t id = (uint32_t)rnd(1000000) + 1;
            bool live = false;
            for (size_t k = 0; mc[c].state == 1 && k < mc[c].nlegs; k++)
                live = live || mc[c].legs[k].id == id;
            if (!live && mc[c].state != 0)
                soak_input((sb_fwd_input){
                    .kind = rnd(2) ? SB_FWD_IN_LEG_ANSWERED : SB_FWD_IN_LEG_FAILED, .call_id = c, .leg_id = id});
            else if (mc[c].state == 1)
                soak_input((sb_fwd_input){.kind = SB_FWD_IN_START, .call_id = c, .scheme_id = 1});
            break;
        }
        case 12:
        case 13: {
            int a = (int)rnd(SOAK_AGENTS) + 1;
            mavail[a] = rnd(10) < 6;
            sb_fwd_set_agent(fwd, a, mavail[a]);
            break;
        }
        case 14:
            if (rnd(20) == 0) {
                mtrunk = !mtrunk;
                sb_fwd_set_trunk(fwd, mtrunk);
            }
            break;
        case 15:
            if (rnd(30) == 0) /* a reload: calls keep their schemes */
                random_scheme((int)rnd(SOAK_SCHEMES) + 1);
            else if (rnd(30) == 0)
                random_team((int)rnd(SOAK_TEAMS) + 1);
            break;
        default: soak_advance(rnd(4000)); break;
        }
        if (steps % 512 == 0)
            sb_fwd_check(fwd);
        for (int a = 1; a <= SOAK_AGENTS; a++)
            if (mringing[a] > 1)
                fail_msg("agent %d rings for %d calls at once", a, mringing[a]);
    }
    sb_fwd_check(fwd);
    /* every call started and left exactly once; the counts show real work */
    for (uint64_t call = 1; call <= SOAK_CALLS; call++) {
        assert_int_equal(mc[call].state, 2);
        assert_null(mc[call].s);
    }
    for (int a = 1; a <= SOAK_AGENTS; a++)
        assert_int_equal(mringing[a], 0);
    print_message("soak: %llu calls, %ld steps\n", (unsigned long long)SOAK_CALLS, steps);
    free(mc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_together_then_the_team, setup, teardown),
        cmocka_unit_test_setup_teardown(test_nobody_answers_final, setup, teardown),
        cmocka_unit_test_setup_teardown(test_every_leg_failing_moves_on_at_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sequential_rings_each_in_turn, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_sequential_target_answers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_nothing_reachable_is_the_backup, setup, teardown),
        cmocka_unit_test_setup_teardown(test_caller_hangs_up, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stale_legs_and_bad_input, setup, teardown),
        cmocka_unit_test_setup_teardown(test_an_agent_rings_for_one_call_at_a_time, setup, teardown),
        cmocka_unit_test_setup_teardown(test_an_agent_named_twice_rings_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_reload_keeps_the_scheme_of_a_call, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_schemes_are_not_loaded, setup, teardown),
        cmocka_unit_test(test_scheme_validation),
        cmocka_unit_test(test_numbers_point_at_schemes),
        cmocka_unit_test_setup_teardown(test_soak, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
