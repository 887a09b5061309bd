/* test_ivr.c - the IVR's decisions on a virtual clock (a number answered
 * by a forwarding scheme included), and the validation of phone number and
 * IVR menu documents.
 *
 * Configuration (teams 1 Sales, 2 Support; agents 3 and 4 with extensions
 * 201 and 202):
 *   menu 1 "menu_main": 1 → Sales queue, 2 → Support queue, 3 → menu 2,
 *          9 → Sales voicemail; extension dialing; operator → Support queue
 *   menu 2 "menu_sub":  1 → agent 4, 2 → menu 3, * → back, # → repeat;
 *          fallback → Sales voicemail
 *   menu 3 "menu_deep": 1 → hang up after "goodbye", * → back
 *   menu 4 "menu_bare": 1 → Sales queue, * → back (no operator, no fallback)
 *   number 100 → menu 1; number 200 → menu 1 in business hours (Mon-Fri
 *   09-18 UTC), Sales voicemail after "closed" after hours, hang up after
 *   "holiday_closed" on 1 January; number 300 → menu 4. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine/ivr.h"
#include "engine/voice_config.h"

static sb_ivr *ivr;
static sb_ivr_actions out;
static int64_t now;
static uint32_t last_play[4096];

static int64_t utc(int y, int mo, int d, int h, int mi)
{
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    return (int64_t)timegm(&tm) * 1000;
}

static json_t *parse(const char *text)
{
    json_error_t e;
    json_t *j = json_loads(text, 0, &e);
    if (j == NULL)
        fail_msg("bad test JSON at %d: %s", e.position, e.text);
    return j;
}

static void put_menu(const char *text)
{
    json_t *j = parse(text);
    sb_config_error err = {{0}, {0}};
    if (sb_voice_check_menu(j, NULL, &err) != 0)
        fail_msg("menu refused: %s: %s", err.field, err.message);
    sb_ivr_menu m;
    assert_int_equal(sb_voice_menu(j, &m), 0);
    assert_int_equal(sb_ivr_put_menu(ivr, &m), 0);
    json_decref(j);
}

static void put_number(const char *text)
{
    json_t *j = parse(text);
    sb_config_error err = {{0}, {0}};
    if (sb_voice_check_number(j, NULL, &err) != 0)
        fail_msg("number refused: %s: %s", err.field, err.message);
    sb_phone_number n;
    assert_int_equal(sb_voice_number(j, &n), 0);
    assert_int_equal(sb_ivr_put_number(ivr, &n), 0);
    json_decref(j);
}

static const char MENU_MAIN[] =
    "{\"id\": 1, \"name\": \"Main\", \"prompt\": \"menu_main\", \"extension_dialing\": true,"
    " \"options\": [{\"digit\": \"1\", \"action\": \"queue\", \"team_id\": 1},"
    "  {\"digit\": \"2\", \"action\": \"queue\", \"team_id\": 2},"
    "  {\"digit\": \"3\", \"action\": \"submenu\", \"menu_id\": 2},"
    "  {\"digit\": \"9\", \"action\": \"voicemail\", \"team_id\": 1}],"
    " \"operator\": {\"action\": \"queue\", \"team_id\": 2}}";

static int setup(void **state)
{
    (void)state;
    ivr = sb_ivr_new();
    now = utc(2026, 3, 2, 10, 0); /* Monday 10:00 UTC */
    memset(last_play, 0, sizeof last_play);
    put_menu(MENU_MAIN);
    put_menu("{\"id\": 2, \"name\": \"Sub\", \"prompt\": \"menu_sub\","
             " \"options\": [{\"digit\": \"1\", \"action\": \"agent\", \"agent_id\": 4},"
             "  {\"digit\": \"2\", \"action\": \"submenu\", \"menu_id\": 3},"
             "  {\"digit\": \"*\", \"action\": \"back\"}, {\"digit\": \"#\", \"action\": \"repeat\"}],"
             " \"fallback\": {\"action\": \"voicemail\", \"team_id\": 1}}");
    put_menu("{\"id\": 3, \"name\": \"Deep\", \"prompt\": \"menu_deep\","
             " \"options\": [{\"digit\": \"1\", \"action\": \"hangup\", \"prompt\": \"goodbye\"},"
             "  {\"digit\": \"*\", \"action\": \"back\"}]}");
    put_menu("{\"id\": 4, \"name\": \"Bare\", \"prompt\": \"menu_bare\", \"timeout_seconds\": 7,"
             " \"invalid_retries\": 0, \"invalid_prompt\": \"try_again\","
             " \"options\": [{\"digit\": \"1\", \"action\": \"queue\", \"team_id\": 1},"
             "  {\"digit\": \"*\", \"action\": \"back\"}]}");
    put_number("{\"id\": 1, \"name\": \"Main line\", \"number\": \"100\", \"language\": \"ru\","
               " \"entry\": {\"action\": \"menu\", \"menu_id\": 1}}");
    put_number("{\"id\": 2, \"name\": \"Office\", \"number\": \"+74950000200\", \"language\": \"en\","
               " \"entry\": {\"action\": \"menu\", \"menu_id\": 1}, \"calendar_id\": 1,"
               " \"after_hours\": {\"action\": \"voicemail\", \"team_id\": 1, \"prompt\": \"closed\"},"
               " \"holidays\": {\"action\": \"hangup\", \"prompt\": \"holiday_closed\"}}");
    put_number("{\"id\": 3, \"name\": \"Bare line\", \"number\": \"300\","
               " \"entry\": {\"action\": \"menu\", \"menu_id\": 4}}");
    json_t *cal = parse("{\"time_zone\": \"UTC\", \"hours\": {\"mon\": [[\"09:00\", \"18:00\"]],"
                        " \"tue\": [[\"09:00\", \"18:00\"]], \"wed\": [[\"09:00\", \"18:00\"]],"
                        " \"thu\": [[\"09:00\", \"18:00\"]], \"fri\": [[\"09:00\", \"18:00\"]]},"
                        " \"holidays\": [{\"date\": \"2026-01-01\", \"recurring\": true}]}");
    sb_calendar *c = NULL;
    char field[64], msg[200];
    if (sb_calendar_from_json(cal, &c, field, sizeof field, msg, sizeof msg) != 0)
        fail_msg("calendar: %s: %s", field, msg);
    json_decref(cal);
    assert_int_equal(sb_ivr_put_calendar(ivr, 1, c), 0);
    assert_int_equal(sb_ivr_put_extension(ivr, "201", 3), 0);
    assert_int_equal(sb_ivr_put_extension(ivr, "202", 4), 0);
    assert_int_equal(sb_ivr_put_extension(ivr, "20", 4), SB_EINVAL);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    sb_ivr_free(ivr);
    sb_ivr_actions_free(&out);
    return 0;
}

static void remember_plays(void)
{
    for (size_t i = 0; i < out.n; i++)
        if (out.v[i].kind == SB_IVR_PLAY && out.v[i].call_id < SB_ARRAY_LEN(last_play))
            last_play[out.v[i].call_id] = out.v[i].play_id;
}

static int input(sb_ivr_input in)
{
    sb_ivr_actions_reset(&out);
    int rc = sb_ivr_handle(ivr, &in, now, &out);
    remember_plays();
    return rc;
}

static void offer(uint64_t call, const char *number)
{
    assert_int_equal(input((sb_ivr_input){.kind = SB_IVR_IN_OFFERED, .call_id = call, .number = number}), 0);
}

static void press(uint64_t call, char digit)
{
    assert_int_equal(input((sb_ivr_input){.kind = SB_IVR_IN_DIGIT, .call_id = call, .digit = digit}), 0);
}

static void press_all(uint64_t call, const char *digits)
{
    for (const char *p = digits; *p != '\0'; p++)
        press(call, *p);
}

static void play_done(uint64_t call)
{
    assert_int_equal(input((sb_ivr_input){.kind = SB_IVR_IN_PLAY_DONE, .call_id = call, .play_id = last_play[call]}),
                     0);
}

/* Moves the virtual clock and fires what is due. */
static void advance(int64_t ms)
{
    now += ms;
    sb_ivr_actions_reset(&out);
    if (sb_ivr_next_deadline(ivr) <= now)
        sb_ivr_tick(ivr, now, &out);
    remember_plays();
}

/* The actions of the last step, in order, must be exactly `kinds`. */
static void expect(int n, ...)
{
    va_list ap;
    va_start(ap, n);
    char got[256] = "";
    size_t len = 0;
    for (size_t i = 0; i < out.n; i++)
        len += (size_t)snprintf(got + len, sizeof got - len, "%s ", sb_ivr_action_name(out.v[i].kind));
    if (out.n != (size_t)n) {
        va_end(ap);
        fail_msg("expected %d actions, got %zu: %s", n, out.n, got);
    }
    for (int i = 0; i < n; i++) {
        int kind = va_arg(ap, int);
        if (out.v[i].kind != (sb_ivr_action_kind)kind) {
            va_end(ap);
            fail_msg("action %d: expected %s, got: %s", i, sb_ivr_action_name((sb_ivr_action_kind)kind), got);
        }
    }
    va_end(ap);
}

static const sb_ivr_action *last(void)
{
    assert_true(out.n > 0);
    return &out.v[out.n - 1];
}

static void expect_leave(sb_ivr_action_kind kind, int64_t id, const char *path, const char *reason)
{
    const sb_ivr_action *a = last();
    assert_int_equal(a->kind, kind);
    assert_int_equal(a->id, id);
    assert_string_equal(a->path, path);
    assert_string_equal(a->reason, reason);
}

static void expect_play(const char *prompt)
{
    const sb_ivr_action *a = last();
    assert_int_equal(a->kind, SB_IVR_PLAY);
    assert_string_equal(a->prompt, prompt);
    assert_true(a->play_id != 0);
}

/* Offered, answered, prompt played to the end: the caller may press keys. */
static void reach_menu(uint64_t call, const char *number)
{
    offer(call, number);
    expect(2, SB_IVR_ANSWER, SB_IVR_PLAY);
    play_done(call);
    expect(0);
}

static void test_digit_routes_to_queue(void **state)
{
    (void)state;
    offer(1, "100");
    expect(2, SB_IVR_ANSWER, SB_IVR_PLAY);
    expect_play("menu_main");
    assert_string_equal(last()->language, "ru");
    assert_int_equal(last()->number_id, 1);
    assert_int_equal(sb_ivr_next_deadline(ivr), INT64_MAX); /* no timer while the prompt plays */
    play_done(1);
    expect(0);
    assert_int_equal(sb_ivr_next_deadline(ivr), now + 5000);
    advance(2000);
    press(1, '1');
    expect(1, SB_IVR_QUEUE);
    expect_leave(SB_IVR_QUEUE, 1, "1", "selected");
    assert_int_equal(last()->period, SB_IVR_BUSINESS_HOURS);
    assert_int_equal(sb_ivr_calls(ivr), 0);
    /* the old timer is stale: nothing fires */
    advance(10000);
    expect(0);
    reach_menu(2, "100");
    press(2, '9');
    expect_leave(SB_IVR_VOICEMAIL, 1, "9", "selected");
}

static void test_key_during_prompt_stops_it(void **state)
{
    (void)state;
    offer(1, "100");
    uint32_t first = last_play[1];
    press(1, '7'); /* no option, begins no extension: invalid */
    expect(2, SB_IVR_STOP_PLAY, SB_IVR_PLAY);
    assert_int_equal(out.v[0].play_id, first);
    expect_play("invalid_choice");
    /* the stopped prompt's PLAY_DONE comes late and changes nothing */
    assert_int_equal(input((sb_ivr_input){.kind = SB_IVR_IN_PLAY_DONE, .call_id = 1, .play_id = first}), 0);
    expect(0);
    play_done(1);
    expect(1, SB_IVR_PLAY);
    expect_play("menu_main");
    press(1, '1');
    expect(2, SB_IVR_STOP_PLAY, SB_IVR_QUEUE);
    expect_leave(SB_IVR_QUEUE, 1, "7>1", "selected");
}

static void test_extension_dialing(void **state)
{
    (void)state;
    reach_menu(1, "100");
    press(1, '2'); /* an option and the start of 201/202: wait for more */
    expect(0);
    assert_int_equal(sb_ivr_next_deadline(ivr), now + 3000);
    advance(1000);
    press(1, '0');
    expect(0);
    advance(2999); /* the interdigit timeout restarts with each key */
    expect(0);
    press(1, '1');
    expect_leave(SB_IVR_RING_AGENT, 3, "201", "extension");
    /* one key then silence: that key's option */
    reach_menu(2, "100");
    press(2, '2');
    advance(3000);
    expect(1, SB_IVR_QUEUE);
    expect_leave(SB_IVR_QUEUE, 2, "2", "selected");
    /* an extension nobody has is invalid: the menu again */
    reach_menu(3, "100");
    press_all(3, "29");
    press(3, '9');
    expect(1, SB_IVR_PLAY);
    expect_play("invalid_choice");
    char path[SB_IVR_PATH_MAX];
    assert_int_equal(sb_ivr_call_path(ivr, 3, path, sizeof path), 0);
    assert_string_equal(path, "299");
    play_done(3);
    expect_play("menu_main");
    play_done(3);
    /* '#' in the middle of an extension is invalid too */
    press_all(3, "20#");
    expect_play("invalid_choice");
    assert_int_equal(sb_ivr_call_path(ivr, 3, path, sizeof path), 0);
    assert_string_equal(path, "299>20#");
    /* two digits then silence */
    play_done(3);
    play_done(3);
    press_all(3, "20");
    advance(3000);
    expect(1, SB_IVR_QUEUE); /* third invalid input: the fallback, here the operator */
    expect_leave(SB_IVR_QUEUE, 2, "299>20#>20", "invalid");
    /* a menu without extension dialing takes '2' at once */
    reach_menu(4, "100");
    press(4, '3');
    expect_play("menu_sub");
    play_done(4);
    press(4, '2');
    expect_play("menu_deep");
}

static void test_timeout_goes_to_fallback(void **state)
{
    (void)state;
    /* menu 1 has no fallback: its operator */
    reach_menu(1, "100");
    advance(4999);
    expect(0);
    advance(1);
    expect(1, SB_IVR_QUEUE);
    expect_leave(SB_IVR_QUEUE, 2, "t", "timeout");
    /* menu 2's fallback is the Sales voicemail */
    reach_menu(2, "100");
    press(2, '3');
    play_done(2);
    advance(5000);
    expect_leave(SB_IVR_VOICEMAIL, 1, "3>t", "timeout");
    /* no fallback and no operator anywhere: hang up after menu 4's 7 s */
    reach_menu(3, "300");
    advance(6999);
    expect(0);
    advance(1);
    expect_leave(SB_IVR_HANGUP, 0, "t", "timeout");
    assert_int_equal(sb_ivr_calls(ivr), 0);
}

static void test_invalid_reprompts_then_fallback(void **state)
{
    (void)state;
    reach_menu(1, "100");
    for (int i = 0; i < 2; i++) {
        press(1, '7');
        expect(1, SB_IVR_PLAY);
        expect_play("invalid_choice");
        play_done(1);
        expect_play("menu_main");
        play_done(1);
        expect(0);
    }
    press(1, '7');
    expect_leave(SB_IVR_QUEUE, 2, "7>7>7", "invalid");
    /* invalid_retries 0: the first wrong key is the last */
    reach_menu(2, "300");
    press(2, '5');
    expect_leave(SB_IVR_HANGUP, 0, "5", "invalid");
    /* the invalid count starts again in a submenu */
    reach_menu(3, "100");
    press_all(3, "77");
    play_done(3);
    play_done(3);
    press(3, '3');
    expect_play("menu_sub");
    play_done(3);
    press(3, '8');
    expect_play("invalid_choice");
}

static void test_zero_is_the_operator(void **state)
{
    (void)state;
    reach_menu(1, "100");
    press(1, '0');
    expect_leave(SB_IVR_QUEUE, 2, "0", "operator");
    /* a submenu without an operator of its own uses its parent's */
    reach_menu(2, "100");
    press(2, '3');
    play_done(2);
    press(2, '0');
    expect_leave(SB_IVR_QUEUE, 2, "3>0", "operator");
    /* nobody to be the operator: 0 is just a wrong key */
    reach_menu(3, "300");
    press(3, '0');
    expect_leave(SB_IVR_HANGUP, 0, "0", "invalid");
    /* an explicit option for 0 wins over the operator */
    put_menu("{\"id\": 5, \"name\": \"Zero\", \"prompt\": \"menu_zero\","
             " \"options\": [{\"digit\": \"0\", \"action\": \"agent\", \"agent_id\": 3}],"
             " \"operator\": {\"action\": \"queue\", \"team_id\": 2}}");
    put_number("{\"id\": 4, \"name\": \"Zero\", \"number\": \"400\","
               " \"entry\": {\"action\": \"menu\", \"menu_id\": 5}}");
    reach_menu(4, "400");
    press(4, '0');
    expect_leave(SB_IVR_RING_AGENT, 3, "0", "selected");
    /* the number's operator when no menu names one */
    put_number("{\"id\": 3, \"name\": \"Bare line\", \"number\": \"300\","
               " \"entry\": {\"action\": \"menu\", \"menu_id\": 4},"
               " \"operator\": {\"action\": \"agent\", \"agent_id\": 4, \"prompt\": \"connecting\"}}");
    reach_menu(5, "300");
    press(5, '0');
    expect(1, SB_IVR_PLAY);
    expect_play("connecting");
    press(5, '1'); /* keys during the goodbye do nothing */
    expect(0);
    play_done(5);
    expect_leave(SB_IVR_RING_AGENT, 4, "0", "operator");
}

static void test_repeat_and_back(void **state)
{
    (void)state;
    reach_menu(1, "100");
    press(1, '3');
    expect_play("menu_sub");
    play_done(1);
    press(1, '#');
    expect(1, SB_IVR_PLAY);
    expect_play("menu_sub");
    play_done(1);
    press(1, '*');
    expect_play("menu_main");
    play_done(1);
    press_all(1, "3");
    play_done(1);
    press(1, '2');
    expect_play("menu_deep");
    play_done(1);
    press(1, '*');
    expect_play("menu_sub");
    press(1, '1'); /* barge-in in the submenu */
    expect(2, SB_IVR_STOP_PLAY, SB_IVR_RING_AGENT);
    expect_leave(SB_IVR_RING_AGENT, 4, "3>#>*>3>2>*>1", "selected");
    /* back at the top menu plays it again */
    reach_menu(2, "300");
    press(2, '*');
    expect(1, SB_IVR_PLAY);
    expect_play("menu_bare");
    /* a prompt before hanging up: the hang-up waits for its end */
    reach_menu(3, "100");
    press(3, '3');
    play_done(3);
    press(3, '2');
    play_done(3);
    press(3, '1');
    expect(1, SB_IVR_PLAY);
    expect_play("goodbye");
    play_done(3);
    expect_leave(SB_IVR_HANGUP, 0, "3>2>1", "selected");
}

static void test_calendar_chooses_the_entry(void **state)
{
    (void)state;
    offer(1, "+74950000200"); /* Monday 10:00: business hours */
    expect(2, SB_IVR_ANSWER, SB_IVR_PLAY);
    expect_play("menu_main");
    assert_string_equal(last()->language, "en");
    assert_int_equal(last()->period, SB_IVR_BUSINESS_HOURS);
    now = utc(2026, 3, 2, 18, 0); /* Monday 18:00: closed */
    offer(2, "+74950000200");
    expect(2, SB_IVR_ANSWER, SB_IVR_PLAY);
    expect_play("closed");
    play_done(2);
    expect_leave(SB_IVR_VOICEMAIL, 1, "", "entry");
    assert_int_equal(last()->period, SB_IVR_AFTER_HOURS);
    now = utc(2026, 3, 7, 11, 0); /* Saturday */
    offer(3, "+74950000200");
    expect_play("closed");
    assert_int_equal(last()->period, SB_IVR_AFTER_HOURS);
    now = utc(2026, 1, 1, 11, 0); /* a Thursday, and a holiday */
    offer(4, "+74950000200");
    expect_play("holiday_closed");
    assert_int_equal(last()->period, SB_IVR_HOLIDAY);
    play_done(4);
    expect_leave(SB_IVR_HANGUP, 0, "", "entry");
    now = utc(2027, 1, 1, 11, 0); /* recurring */
    offer(5, "+74950000200");
    expect_play("holiday_closed");
    /* a number without a calendar is always in business hours */
    offer(6, "100");
    expect_play("menu_main");
    assert_int_equal(last()->period, SB_IVR_BUSINESS_HOURS);
    /* a queue entry without a prompt leaves at once, unanswered */
    put_number("{\"id\": 9, \"name\": \"Direct\", \"number\": \"900\", \"calendar_id\": 1,"
               " \"entry\": {\"action\": \"queue\", \"team_id\": 1},"
               " \"after_hours\": {\"action\": \"voicemail\", \"team_id\": 2}}");
    offer(7, "900"); /* 2027-01-01 is a holiday: no holiday entry, so the after-hours one */
    expect(1, SB_IVR_VOICEMAIL);
    expect_leave(SB_IVR_VOICEMAIL, 2, "", "entry");
    assert_int_equal(last()->period, SB_IVR_HOLIDAY);
    now = utc(2027, 1, 4, 9, 0); /* Monday 09:00 */
    offer(8, "900");
    expect(1, SB_IVR_QUEUE);
    expect_leave(SB_IVR_QUEUE, 1, "", "entry");
}

/* A number whose destination is a forwarding scheme: the call leaves the
 * IVR with the scheme's id; when the scheme ends in a destination, the
 * call comes back in (engine/fwd.h). */
static void test_schemes_leave_and_come_back(void **state)
{
    (void)state;
    put_number("{\"id\": 8, \"name\": \"Sales line\", \"number\": \"800\", \"calendar_id\": 1,"
               " \"entry\": {\"action\": \"scheme\", \"scheme_id\": 5},"
               " \"after_hours\": {\"action\": \"scheme\", \"scheme_id\": 6, \"prompt\": \"closed\"}}");
    offer(1, "800"); /* Monday 10:00: business hours, unanswered (ringback) */
    expect(1, SB_IVR_HANGUP);
    expect_leave(SB_IVR_HANGUP, 0, "", "entry");
    assert_int_equal(last()->scheme_id, 5);
    assert_int_equal(sb_ivr_calls(ivr), 0);
    /* nobody answered: the scheme's final is menu 1, which answers */
    sb_ivr_target menu = {.what = SB_IVR_DO_MENU, .id = 1};
    sb_ivr_actions_reset(&out);
    assert_int_equal(sb_ivr_enter(ivr, 1, 8, &menu, false, "final", now, &out), 0);
    remember_plays();
    expect(2, SB_IVR_ANSWER, SB_IVR_PLAY);
    expect_play("menu_main");
    play_done(1);
    press(1, '1');
    expect_leave(SB_IVR_QUEUE, 1, "1", "selected");
    assert_int_equal(last()->number_id, 8);
    assert_int_equal(last()->scheme_id, 0);
    /* after hours: the prompt, then the other scheme */
    now = utc(2026, 3, 2, 20, 0);
    offer(2, "800");
    expect(2, SB_IVR_ANSWER, SB_IVR_PLAY);
    expect_play("closed");
    play_done(2);
    expect_leave(SB_IVR_HANGUP, 0, "", "entry");
    assert_int_equal(last()->scheme_id, 6);
    assert_int_equal(last()->period, SB_IVR_AFTER_HOURS);
    /* its backup: voicemail after a prompt; answered already, so no ANSWER */
    sb_ivr_target vm = {.what = SB_IVR_DO_VOICEMAIL, .id = 2};
    snprintf(vm.prompt, sizeof vm.prompt, "sorry");
    sb_ivr_actions_reset(&out);
    assert_int_equal(sb_ivr_enter(ivr, 2, 8, &vm, true, "backup", now, &out), 0);
    remember_plays();
    expect(1, SB_IVR_PLAY);
    expect_play("sorry");
    assert_string_equal(last()->language, "ru");
    play_done(2);
    expect_leave(SB_IVR_VOICEMAIL, 2, "", "backup");
    assert_int_equal(last()->period, SB_IVR_AFTER_HOURS);
    /* refused: a call in the IVR, an unknown number, a destination that
     * cannot start a call */
    offer(3, "100");
    sb_ivr_target hang = {.what = SB_IVR_DO_HANGUP};
    sb_ivr_actions_reset(&out);
    assert_int_equal(sb_ivr_enter(ivr, 3, 8, &hang, true, "final", now, &out), SB_ECONFLICT);
    assert_int_equal(sb_ivr_enter(ivr, 4, 99, &hang, true, "final", now, &out), SB_ENOTFOUND);
    sb_ivr_target bad[] = {{.what = SB_IVR_DO_SCHEME, .id = 5},
                           {.what = SB_IVR_DO_REPEAT},
                           {.what = SB_IVR_DO_OPERATOR},
                           {.what = SB_IVR_DO_NONE}};
    for (size_t i = 0; i < SB_ARRAY_LEN(bad); i++)
        assert_int_equal(sb_ivr_enter(ivr, 4, 8, &bad[i], true, "final", now, &out), SB_EINVAL);
    expect(0);
    assert_int_equal(sb_ivr_enter(ivr, 4, 8, &hang, true, "final", now, &out), 0);
    expect_leave(SB_IVR_HANGUP, 0, "", "final");
    assert_int_equal(last()->scheme_id, 0);
}

static void test_unknown_number_and_bad_input(void **state)
{
    (void)state;
    offer(1, "999");
    expect(1, SB_IVR_REJECT);
    assert_int_equal(last()->sip_status, 404);
    assert_string_equal(last()->reason, "unknown_number");
    assert_int_equal(sb_ivr_calls(ivr), 0);
    assert_int_equal(input((sb_ivr_input){.kind = SB_IVR_IN_OFFERED, .call_id = 2}), 0);
    expect(1, SB_IVR_REJECT);
    assert_int_equal(input((sb_ivr_input){.kind = SB_IVR_IN_DIGIT, .call_id = 1, .digit = '1'}), SB_ENOTFOUND);
    offer(3, "100");
    assert_int_equal(input((sb_ivr_input){.kind = SB_IVR_IN_OFFERED, .call_id = 3, .number = "100"}), SB_ECONFLICT);
    assert_int_equal(input((sb_ivr_input){.kind = SB_IVR_IN_DIGIT, .call_id = 3, .digit = 'A'}), SB_EINVAL);
    expect(0);
    /* the caller hangs up in a submenu: the path is kept for the log */
    play_done(3);
    press(3, '3');
    assert_int_equal(input((sb_ivr_input){.kind = SB_IVR_IN_HANGUP, .call_id = 3}), 0);
    expect(1, SB_IVR_ABANDONED);
    expect_leave(SB_IVR_ABANDONED, 0, "3", "caller");
    assert_int_equal(sb_ivr_calls(ivr), 0);
    assert_int_equal(input((sb_ivr_input){.kind = SB_IVR_IN_HANGUP, .call_id = 3}), SB_ENOTFOUND);
}

static void test_reload_during_a_call(void **state)
{
    (void)state;
    reach_menu(1, "100");
    press(1, '3');
    play_done(1);
    sb_ivr_clear_config(ivr);
    put_menu(MENU_MAIN);
    /* menu 2 is gone: the next step hangs up */
    press(1, '1');
    expect_leave(SB_IVR_HANGUP, 0, "3", "config_changed");
    /* the number is gone too */
    offer(2, "100");
    expect(1, SB_IVR_REJECT);
}

static void test_many_calls(void **state)
{
    (void)state;
    enum { N = 3000 };
    for (uint64_t c = 1; c <= N; c++) {
        offer(1000000 + c, "100");
        assert_int_equal(
            input((sb_ivr_input){.kind = SB_IVR_IN_PLAY_DONE, .call_id = 1000000 + c, .play_id = out.v[1].play_id}), 0);
        if (c % 3 == 0)
            press(1000000 + c, '2'); /* collecting an extension: 3 s */
        now += 1;
    }
    assert_int_equal(sb_ivr_calls(ivr), N);
    /* every third call paused after '2' (3 s): the Support queue, as
     * selected; the others hear nothing for 5 s: the operator */
    size_t selected = 0, timeout = 0;
    for (int step = 0; step < 2; step++) {
        advance(3000);
        for (size_t i = 0; i < out.n; i++) {
            assert_int_equal(out.v[i].kind, SB_IVR_QUEUE);
            assert_int_equal(out.v[i].id, 2);
            selected += strcmp(out.v[i].reason, "selected") == 0;
            timeout += strcmp(out.v[i].reason, "timeout") == 0;
        }
    }
    assert_int_equal(selected, N / 3);
    assert_int_equal(timeout, N - N / 3);
    assert_int_equal(sb_ivr_calls(ivr), 0);
    advance(60000); /* only stale timers are left */
    expect(0);
    assert_int_equal(sb_ivr_next_deadline(ivr), INT64_MAX);
}

/* ---- validation ---- */

static void check_refused(int (*check)(const json_t *, sb_config_refs *, sb_config_error *), const char *text,
                          const char *field)
{
    json_t *j = parse(text);
    sb_config_error err = {{0}, {0}};
    sb_config_refs refs = {0};
    int rc = check(j, &refs, &err);
    json_decref(j);
    if (rc != SB_EINVAL)
        fail_msg("accepted: %s", text);
    if (strcmp(err.field, field) != 0)
        fail_msg("field %s (%s), expected %s", err.field, err.message, field);
}

static void test_menu_validation(void **state)
{
    (void)state;
    json_t *j = parse(MENU_MAIN);
    sb_config_error err = {{0}, {0}};
    sb_config_refs refs = {0};
    assert_int_equal(sb_voice_check_menu(j, &refs, &err), 0);
    json_decref(j);
    assert_int_equal(refs.nteams, 4); /* 1, 2, 1 (voicemail), 2 (operator) */
    assert_int_equal(refs.nmenus, 1);
    assert_int_equal(refs.menus[0], 2);
    const char *head = "{\"id\": 1, \"name\": \"M\", \"prompt\": \"p\", ";
    struct {
        const char *rest, *field;
    } bad[] = {
        {"\"options\": [{\"digit\": \"A\", \"action\": \"repeat\"}]}", "options[0].digit"},
        {"\"options\": [{\"digit\": \"12\", \"action\": \"repeat\"}]}", "options[0].digit"},
        {"\"options\": [{\"action\": \"repeat\"}]}", "options[0].digit"},
        {"\"options\": [{\"digit\": \"1\", \"action\": \"repeat\"}, {\"digit\": \"1\", \"action\": \"back\"}]}",
         "options[1].digit"},
        {"\"options\": [{\"digit\": \"1\", \"action\": \"dance\"}]}", "options[0].action"},
        {"\"options\": [{\"digit\": \"1\", \"action\": \"menu\", \"menu_id\": 2}]}", "options[0].action"},
        {"\"options\": [{\"digit\": \"1\", \"action\": \"queue\"}]}", "options[0].team_id"},
        {"\"options\": [{\"digit\": \"1\", \"action\": \"queue\", \"team_id\": -1}]}", "options[0].team_id"},
        {"\"options\": [{\"digit\": \"1\", \"action\": \"repeat\", \"team_id\": 1}]}", "options[0].team_id"},
        {"\"options\": [{\"digit\": \"1\", \"action\": \"repeat\", \"prompt\": \"x\"}]}", "options[0].prompt"},
        {"\"options\": [{\"digit\": \"1\", \"action\": \"hangup\", \"prompt\": \"Bye!\"}]}", "options[0].prompt"},
        {"\"options\": [\"1\"]}", "options[0]"},
        {"\"options\": {\"1\": {}}}", "options"},
        {"\"timeout_seconds\": 0}", "timeout_seconds"},
        {"\"timeout_seconds\": 61}", "timeout_seconds"},
        {"\"invalid_retries\": 6}", "invalid_retries"},
        {"\"extension_dialing\": \"yes\"}", "extension_dialing"},
        {"\"fallback\": {\"action\": \"submenu\", \"menu_id\": 2}}", "fallback.action"},
        {"\"fallback\": {\"action\": \"repeat\"}}", "fallback.action"},
        {"\"operator\": {\"action\": \"operator\"}}", "operator.action"},
        {"\"operator\": \"queue\"}", "operator"},
        {"\"colour\": \"red\"}", "colour"},
    };
    for (size_t i = 0; i < SB_ARRAY_LEN(bad); i++) {
        char text[512];
        snprintf(text, sizeof text, "%s%s", head, bad[i].rest);
        check_refused(sb_voice_check_menu, text, bad[i].field);
    }
    check_refused(sb_voice_check_menu, "{\"id\": 1, \"name\": \"M\"}", "prompt");
    check_refused(sb_voice_check_menu, "{\"id\": 1, \"name\": \"M\", \"prompt\": \"Menu Main\"}", "prompt");
    check_refused(sb_voice_check_menu, "{\"id\": 0, \"name\": \"M\", \"prompt\": \"p\"}", "id");
    check_refused(sb_voice_check_menu, "{\"id\": 1, \"prompt\": \"p\"}", "name");
}

static void test_number_validation(void **state)
{
    (void)state;
    const char *head = "{\"id\": 1, \"name\": \"N\", ";
    const char *entry = "\"entry\": {\"action\": \"menu\", \"menu_id\": 1}";
    struct {
        const char *rest, *field;
    } bad[] = {
        {"\"number\": \"\", %s}", "number"},
        {"\"number\": \"+\", %s}", "number"},
        {"\"number\": \"10a\", %s}", "number"},
        {"\"number\": \"123456789012345678901\", %s}", "number"},
        {"\"number\": 100, %s}", "number"},
        {"\"number\": \"100\", \"language\": \"de\", %s}", "language"},
        {"\"number\": \"100\"}", "entry"},
        {"\"number\": \"100\", \"entry\": {\"action\": \"submenu\", \"menu_id\": 1}}", "entry.action"},
        {"\"number\": \"100\", \"entry\": {\"action\": \"repeat\"}}", "entry.action"},
        {"\"number\": \"100\", \"entry\": {\"action\": \"menu\"}}", "entry.menu_id"},
        {"\"number\": \"100\", \"entry\": {\"action\": \"menu\", \"menu_id\": 1, \"prompt\": \"x\"}}", "entry.prompt"},
        {"\"number\": \"100\", %s, \"after_hours\": {\"action\": \"hangup\"}}", "after_hours"},
        {"\"number\": \"100\", %s, \"holidays\": {\"action\": \"hangup\"}}", "holidays"},
        {"\"number\": \"100\", %s, \"calendar_id\": \"1\"}", "calendar_id"},
        {"\"number\": \"100\", %s, \"calendar_id\": 1, \"after_hours\": {\"action\": \"voicemail\"}}",
         "after_hours.team_id"},
        {"\"number\": \"100\", %s, \"operator\": {\"action\": \"menu\", \"menu_id\": 1}}", "operator.action"},
        {"\"number\": \"100\", %s, \"trunk\": 1}", "trunk"},
        {"\"number\": \"100\", %s, \"rating\": \"yes\"}", "rating"},
        {"\"number\": \"100\", %s, \"rating\": 1}", "rating"},
    };
    for (size_t i = 0; i < SB_ARRAY_LEN(bad); i++) {
        char rest[400], text[512];
        snprintf(rest, sizeof rest, bad[i].rest, entry);
        snprintf(text, sizeof text, "%s%s", head, rest);
        check_refused(sb_voice_check_number, text, bad[i].field);
    }
    json_t *j = parse("{\"id\": 1, \"name\": \"N\", \"number\": \"+74951234567\", \"calendar_id\": 2,"
                      " \"entry\": {\"action\": \"menu\", \"menu_id\": 1},"
                      " \"after_hours\": {\"action\": \"voicemail\", \"team_id\": 3, \"prompt\": \"closed\"},"
                      " \"operator\": {\"action\": \"agent\", \"agent_id\": 5}}");
    sb_config_error err = {{0}, {0}};
    sb_config_refs refs = {0};
    assert_int_equal(sb_voice_check_number(j, &refs, &err), 0);
    assert_int_equal(refs.nmenus, 1);
    assert_int_equal(refs.ncalendars, 1);
    assert_int_equal(refs.calendars[0], 2);
    assert_int_equal(refs.teams[0], 3);
    assert_int_equal(refs.agents[0], 5);
    sb_phone_number n;
    assert_int_equal(sb_voice_number(j, &n), 0);
    assert_string_equal(n.language, "ru"); /* the default */
    assert_int_equal(n.holidays.what, SB_IVR_DO_NONE);
    assert_false(n.rating); /* the default: only a queue's own setting asks */
    json_decref(j);
    j = parse("{\"id\": 3, \"name\": \"R\", \"number\": \"300\", \"rating\": true,"
              " \"entry\": {\"action\": \"agent\", \"agent_id\": 5}}");
    sb_phone_number rated;
    assert_int_equal(sb_voice_check_number(j, NULL, &err), 0);
    assert_int_equal(sb_voice_number(j, &rated), 0);
    assert_true(rated.rating);
    json_decref(j);
    /* the same digits twice in one IVR */
    sb_phone_number dup = n;
    dup.id = 2;
    assert_int_equal(sb_ivr_put_number(ivr, &n), 0);
    assert_int_equal(sb_ivr_put_number(ivr, &dup), SB_ECONFLICT);
    assert_int_equal(sb_ivr_put_number(ivr, &n), 0); /* replacing itself is fine */
}

/* A chain of menus: `edges` pairs (from, to) as submenu options on key 1, 2... */
static json_t *menus(const int (*edges)[2], size_t nedges, int nmenus)
{
    json_t *list = json_array();
    for (int id = 1; id <= nmenus; id++) {
        json_t *opts = json_array();
        int key = 1;
        json_array_append_new(opts, json_pack("{s:s,s:s,s:i}", "digit", "0", "action", "queue", "team_id", 1));
        for (size_t e = 0; e < nedges; e++)
            if (edges[e][0] == id) {
                char digit[2] = {(char)('0' + key++), '\0'};
                json_array_append_new(
                    opts, json_pack("{s:s,s:s,s:i}", "digit", digit, "action", "submenu", "menu_id", edges[e][1]));
            }
        json_array_append_new(list,
                              json_pack("{s:i,s:s,s:s,s:o}", "id", id, "name", "m", "prompt", "p", "options", opts));
    }
    return list;
}

static int graph(const int (*edges)[2], size_t nedges, int nmenus, int64_t focus, size_t *index, sb_config_error *err)
{
    json_t *list = menus(edges, nedges, nmenus);
    int rc = sb_voice_check_menus(list, focus, index, err);
    json_decref(list);
    return rc;
}

static void test_depth_and_loops(void **state)
{
    (void)state;
    sb_config_error err = {{0}, {0}};
    size_t index = 99;
    static const int three[][2] = {{1, 2}, {2, 3}, {1, 3}, {4, 2}};
    assert_int_equal(graph(three, SB_ARRAY_LEN(three), 4, 0, &index, &err), 0);
    /* 1 > 2 > 3 > 4: four levels; saving menu 3 names its option */
    static const int four[][2] = {{1, 2}, {2, 3}, {3, 4}};
    assert_int_equal(graph(four, SB_ARRAY_LEN(four), 4, 3, &index, &err), SB_EINVAL);
    assert_string_equal(err.field, "options[1].menu_id");
    assert_int_equal(index, 2);
    assert_non_null(strstr(err.message, "1 > 2 > 3 > 4"));
    /* saving menu 1 (the new top) names menu 1's option */
    assert_int_equal(graph(four, SB_ARRAY_LEN(four), 4, 1, &index, &err), SB_EINVAL);
    assert_int_equal(index, 0);
    assert_string_equal(err.field, "options[1].menu_id");
    /* no focus (an imported file): the last step */
    assert_int_equal(graph(four, SB_ARRAY_LEN(four), 4, 0, &index, &err), SB_EINVAL);
    assert_int_equal(index, 2);
    /* loops: to itself, and through another menu */
    static const int self[][2] = {{1, 1}};
    assert_int_equal(graph(self, 1, 1, 1, &index, &err), SB_EINVAL);
    assert_string_equal(err.field, "options[1].menu_id");
    assert_non_null(strstr(err.message, "loop"));
    static const int two[][2] = {{1, 2}, {2, 1}};
    assert_int_equal(graph(two, 2, 2, 2, &index, &err), SB_EINVAL);
    assert_int_equal(index, 1);
    assert_non_null(strstr(err.message, "leads back"));
    /* a submenu that is not in the list ends the walk */
    static const int missing[][2] = {{1, 7}};
    assert_int_equal(graph(missing, 1, 1, 1, &index, &err), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_digit_routes_to_queue, setup, teardown),
        cmocka_unit_test_setup_teardown(test_key_during_prompt_stops_it, setup, teardown),
        cmocka_unit_test_setup_teardown(test_extension_dialing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_timeout_goes_to_fallback, setup, teardown),
        cmocka_unit_test_setup_teardown(test_invalid_reprompts_then_fallback, setup, teardown),
        cmocka_unit_test_setup_teardown(test_zero_is_the_operator, setup, teardown),
        cmocka_unit_test_setup_teardown(test_repeat_and_back, setup, teardown),
        cmocka_unit_test_setup_teardown(test_calendar_chooses_the_entry, setup, teardown),
        cmocka_unit_test_setup_teardown(test_schemes_leave_and_come_back, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unknown_number_and_bad_input, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reload_during_a_call, setup, teardown),
        cmocka_unit_test_setup_teardown(test_many_calls, setup, teardown),
        cmocka_unit_test_setup_teardown(test_menu_validation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_number_validation, setup, teardown),
        cmocka_unit_test(test_depth_and_loops),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
