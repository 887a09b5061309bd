/* test_rules.c - automation rules: what parses (and comes back unchanged),
 * every validation error with the path of the bad value, matching against
 * facts, and a fixed-seed mutation loop that must never crash or leak. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "base/sb.h"
#include "engine/rules.h"

/* ---- helpers ---- */

/* Test JSON is written with ' for " so it stays readable; no test string
 * needs a real apostrophe. Fails the test on JSON that does not load. */
static json_t *load(const char *text)
{
    char *s = sb_xstrdup(text);
    for (char *p = s; *p != '\0'; p++)
        if (*p == '\'')
            *p = '"';
    json_error_t err;
    json_t *j = json_loads(s, JSON_DECODE_ANY, &err);
    free(s);
    if (j == NULL)
        fail_msg("test JSON does not load (%s): %s", err.text, text);
    return j;
}

/* Parses a rule that must be valid and checks that it exports equal JSON. */
static sb_rule *parse_ok(const char *text)
{
    json_t *j = load(text);
    sb_rule *r = NULL;
    char field[128] = "", msg[256] = "";
    int rc = sb_rule_parse(j, &r, field, sizeof field, msg, sizeof msg);
    if (rc != 0) {
        json_decref(j);
        fail_msg("rule rejected at \"%s\": %s\n  %s", field, msg, text);
    }
    assert_non_null(r);
    json_t *back = sb_rule_json(r);
    assert_non_null(back);
    assert_true(json_equal(back, j));
    assert_true(back != j);
    json_decref(back);
    json_decref(j);
    return r;
}

/* Parses `j` (not consumed), which must fail with SB_EINVAL at `want_field`,
 * with a non-empty message containing `want_msg` when that is not NULL. */
static void expect_error_json(const json_t *j, const char *want_field, const char *want_msg, const char *label)
{
    static int sentinel;
    sb_rule *r = (sb_rule *)(void *)&sentinel;
    char field[128] = "unset", msg[256] = "";
    int rc = sb_rule_parse(j, &r, field, sizeof field, msg, sizeof msg);
    if (rc == 0) {
        sb_rule_free(r);
        fail_msg("accepted, expected an error at \"%s\": %s", want_field, label);
    }
    if (rc != SB_EINVAL)
        fail_msg("rc %d, expected SB_EINVAL: %s", rc, label);
    if (r != NULL)
        fail_msg("*out not NULL after an error: %s", label);
    if (strcmp(field, want_field) != 0)
        fail_msg("field \"%s\" (%s), expected \"%s\": %s", field, msg, want_field, label);
    if (msg[0] == '\0')
        fail_msg("empty message at \"%s\": %s", field, label);
    if (want_msg != NULL && strstr(msg, want_msg) == NULL)
        fail_msg("message \"%s\" lacks \"%s\": %s", msg, want_msg, label);
}

static void expect_error(const char *text, const char *want_field, const char *want_msg)
{
    json_t *j = load(text);
    expect_error_json(j, want_field, want_msg, text);
    json_decref(j);
}

/* A rule around one "when" value, one action or one set of top-level keys. */
#define WHEN(w)    "{'id':1,'name':'t','on':['message.customer'],'when':" w ",'actions':[{'type':'stop'}]}"
#define ACTION(a)  "{'id':1,'name':'t','on':['ticket.created'],'actions':[" a "]}"
#define ACTIONS(a) "{'id':1,'name':'t','on':['ticket.created'],'actions':" a "}"
#define TOP(k)     "{" k ",'actions':[{'type':'stop'}]}"

/* Business hours as the engine would answer them, counting the questions. */
typedef struct hours {
    bool open;
    int calls;
    int64_t calendar_id; /* the last calendar asked about */
} hours;

static bool in_hours(void *ctx, int64_t calendar_id)
{
    hours *h = ctx;
    h->calls++;
    h->calendar_id = calendar_id;
    return h->open;
}

static const char *const contact_tags[] = {"vip-gold", "опт"};
static const char *const ticket_tags[] = {"delivery", "возврат"};
static const char *const attr_keys[] = {"city", "company", "empty"};
static const char *const attr_values[] = {"г. Алматы", "ТОО Ромашка", ""};

static sb_rule_facts facts(void)
{
    return (sb_rule_facts){
        .text = "",
        .subject = "",
        .channel = "webchat",
        .language = "ru",
        .status = "open",
        .priority = "normal",
        .team_id = 0,
        .assignee_id = 0,
        .vip = false,
        .contact_tags = contact_tags,
        .ncontact_tags = 2,
        .ticket_tags = ticket_tags,
        .nticket_tags = 2,
        .attr_keys = attr_keys,
        .attr_values = attr_values,
        .nattrs = 3,
        .age_minutes = 0,
    };
}

/* Whether a rule with this "when" (JSON with ') matches the facts. */
static bool when_matches(const char *when, const sb_rule_facts *f)
{
    json_t *j = load("{'id':1,'name':'t','on':['message.customer'],'actions':[{'type':'stop'}]}");
    json_object_set_new(j, "when", load(when));
    sb_rule *r = NULL;
    char field[128] = "", msg[256] = "";
    int rc = sb_rule_parse(j, &r, field, sizeof field, msg, sizeof msg);
    json_decref(j);
    if (rc != 0)
        fail_msg("when rejected at \"%s\": %s\n  %s", field, msg, when);
    bool m = sb_rule_matches(r, f);
    sb_rule_free(r);
    return m;
}

static bool text_matches(const char *when, const char *text)
{
    sb_rule_facts f = facts();
    f.text = text;
    return when_matches(when, &f);
}

/* ---- valid rules ---- */

static void test_header_example(void **state)
{
    sb_rule *r =
        parse_ok("{'id': 3, 'name': 'Urgent words', 'enabled': true,"
                 " 'on': ['ticket.created', 'message.customer'],"
                 " 'once_per_ticket': false,"
                 " 'when': {'all': [{'field': 'text', 'op': 'contains', 'value': 'срочно'},"
                 "                  {'any': [{'field': 'channel', 'op': 'in', 'value': ['telegram', 'webchat']},"
                 "                           {'field': 'contact.vip', 'op': 'is', 'value': true}]}]},"
                 " 'actions': [{'type': 'set_priority', 'value': 'urgent'},"
                 "             {'type': 'notify', 'target': 'supervisor'},"
                 "             {'type': 'stop'}]}");
    assert_int_equal(sb_rule_id(r), 3);
    assert_true(sb_rule_enabled(r));
    assert_false(sb_rule_once_per_ticket(r));
    assert_int_equal(sb_rule_minutes(r), 0);
    for (int t = 0; t < SB_TRIGGER_COUNT; t++)
        assert_int_equal(sb_rule_has_trigger(r, (sb_trigger)t),
                         t == SB_TRIGGER_TICKET_CREATED || t == SB_TRIGGER_MESSAGE_CUSTOMER);
    assert_false(sb_rule_has_trigger(r, SB_TRIGGER_COUNT));
    int n = -1;
    const sb_rule_action *a = sb_rule_actions(r, &n);
    assert_int_equal(n, 3);
    assert_int_equal(a[0].kind, SB_ACTION_SET_PRIORITY);
    assert_string_equal(a[0].value, "urgent");
    assert_int_equal(a[0].id, 0);
    assert_int_equal(a[1].kind, SB_ACTION_NOTIFY);
    assert_string_equal(a[1].value, "supervisor");
    assert_int_equal(a[1].id, 0);
    assert_int_equal(a[2].kind, SB_ACTION_STOP);
    assert_null(a[2].value);

    sb_rule_facts f = facts();
    f.text = "Это СРОЧНО!";
    f.channel = "telegram";
    assert_true(sb_rule_matches(r, &f));
    f.channel = "email";
    assert_false(sb_rule_matches(r, &f));
    f.vip = true;
    assert_true(sb_rule_matches(r, &f));
    f.text = "несрочно";
    assert_false(sb_rule_matches(r, &f));
    sb_rule_free(r);
}

static void test_minimal_rule(void **state)
{
    sb_rule *r = parse_ok("{'id': 9007199254740993, 'name': 'Ж', 'on': ['status.changed'],"
                          " 'actions': [{'type': 'add_tag', 'value': 'seen'}]}");
    assert_int_equal(sb_rule_id(r), 9007199254740993LL);
    assert_true(sb_rule_enabled(r));
    assert_false(sb_rule_once_per_ticket(r));
    assert_int_equal(sb_rule_minutes(r), 0);
    assert_true(sb_rule_has_trigger(r, SB_TRIGGER_STATUS_CHANGED));
    assert_false(sb_rule_has_trigger(r, SB_TRIGGER_TICKET_CREATED));
    int n = 0;
    const sb_rule_action *a = sb_rule_actions(r, &n);
    assert_int_equal(n, 1);
    assert_int_equal(a[0].kind, SB_ACTION_ADD_TAG);
    assert_string_equal(a[0].value, "seen");
    /* No "when": always true, whatever the facts. */
    sb_rule_facts f = facts();
    assert_true(sb_rule_matches(r, &f));
    sb_rule_facts empty = {0};
    assert_true(sb_rule_matches(r, &empty));
    sb_rule_free(r);

    r = parse_ok("{'id': 2, 'name': 'x', 'enabled': false, 'once_per_ticket': true, 'on': ['sla.breached'],"
                 " 'actions': [{'type': 'stop'}]}");
    assert_false(sb_rule_enabled(r));
    assert_true(sb_rule_once_per_ticket(r));
    sb_rule_free(r);

    /* A name of exactly 200 bytes (100 two-byte letters). */
    char text[512];
    char name[201];
    for (int i = 0; i < 100; i++)
        memcpy(name + 2 * i, "ы", 2);
    name[200] = '\0';
    assert_int_equal(strlen(name), 200);
    snprintf(text, sizeof text, "{'id':1,'name':'%s','on':['sla.warning'],'actions':[{'type':'stop'}]}", name);
    r = parse_ok(text);
    sb_rule_free(r);
}

static void test_every_action(void **state)
{
    sb_rule *r = parse_ok(ACTIONS("[{'type': 'set_priority', 'value': 'low'},"
                                  " {'type': 'set_status', 'value': 'pending'},"
                                  " {'type': 'assign_team', 'id': 4},"
                                  " {'type': 'assign_agent', 'id': 17},"
                                  " {'type': 'assign_agent', 'value': 'contact_owner'},"
                                  " {'type': 'assign_agent', 'value': 'last_responder'},"
                                  " {'type': 'add_tag', 'value': 'доставка'},"
                                  " {'type': 'remove_tag', 'value': 'new'},"
                                  " {'type': 'send_template', 'id': 12},"
                                  " {'type': 'add_note', 'value': 'Клиент просит перезвонить'},"
                                  " {'type': 'notify', 'target': 'assignee'},"
                                  " {'type': 'notify', 'target': 'team'},"
                                  " {'type': 'notify', 'target': 'supervisor'},"
                                  " {'type': 'notify', 'id': 21},"
                                  " {'type': 'create_task', 'title': 'Перезвонить', 'due_minutes': 90},"
                                  " {'type': 'create_task', 'title': 'Call', 'due_minutes': 0, 'assignee': 5},"
                                  " {'type': 'webhook', 'url': 'https://example.kz/hook?a=1'},"
                                  " {'type': 'webhook', 'url': 'http://10.0.0.1:8080/x'},"
                                  " {'type': 'add_tag', 'value': '1234567890123456789012345678901'},"
                                  " {'type': 'stop'}]"));
    static const struct {
        sb_action_kind kind;
        int64_t id;
        const char *value;
        int64_t minutes;
    } want[] = {
        {SB_ACTION_SET_PRIORITY, 0, "low", 0},
        {SB_ACTION_SET_STATUS, 0, "pending", 0},
        {SB_ACTION_ASSIGN_TEAM, 4, NULL, 0},
        {SB_ACTION_ASSIGN_AGENT, 17, NULL, 0},
        {SB_ACTION_ASSIGN_AGENT, 0, "contact_owner", 0},
        {SB_ACTION_ASSIGN_AGENT, 0, "last_responder", 0},
        {SB_ACTION_ADD_TAG, 0, "доставка", 0},
        {SB_ACTION_REMOVE_TAG, 0, "new", 0},
        {SB_ACTION_SEND_TEMPLATE, 12, NULL, 0},
        {SB_ACTION_ADD_NOTE, 0, "Клиент просит перезвонить", 0},
        {SB_ACTION_NOTIFY, 0, "assignee", 0},
        {SB_ACTION_NOTIFY, 0, "team", 0},
        {SB_ACTION_NOTIFY, 0, "supervisor", 0},
        {SB_ACTION_NOTIFY, 21, NULL, 0},
        {SB_ACTION_CREATE_TASK, 0, "Перезвонить", 90},
        {SB_ACTION_CREATE_TASK, 5, "Call", 0},
        {SB_ACTION_WEBHOOK, 0, "https://example.kz/hook?a=1", 0},
        {SB_ACTION_WEBHOOK, 0, "http://10.0.0.1:8080/x", 0},
        {SB_ACTION_ADD_TAG, 0, "1234567890123456789012345678901", 0},
        {SB_ACTION_STOP, 0, NULL, 0},
    };
    int n = 0;
    const sb_rule_action *a = sb_rule_actions(r, &n);
    assert_int_equal(n, SB_ARRAY_LEN(want)); /* 20: the most a rule takes */
    for (int i = 0; i < n; i++) {
        if (a[i].kind != want[i].kind || a[i].id != want[i].id || a[i].minutes != want[i].minutes)
            fail_msg("action %d: kind %d id %lld minutes %lld", i, (int)a[i].kind, (long long)a[i].id,
                     (long long)a[i].minutes);
        if (want[i].value == NULL)
            assert_null(a[i].value);
        else
            assert_string_equal(a[i].value, want[i].value);
    }
    sb_rule_free(r);

    /* The largest create_task due time. */
    r = parse_ok(ACTION("{'type': 'create_task', 'title': 't', 'due_minutes': 527040}"));
    a = sb_rule_actions(r, &n);
    assert_int_equal(n, 1);
    assert_int_equal(a[0].minutes, 527040);
    sb_rule_free(r);
}

static void test_time_triggers(void **state)
{
    static const struct {
        const char *name;
        sb_trigger t;
    } timed[] = {
        {"time.no_customer_reply", SB_TRIGGER_NO_CUSTOMER_REPLY},
        {"time.no_agent_reply", SB_TRIGGER_NO_AGENT_REPLY},
        {"time.idle", SB_TRIGGER_IDLE},
    };
    for (size_t i = 0; i < SB_ARRAY_LEN(timed); i++) {
        char text[256];
        snprintf(text, sizeof text, "{'id':5,'name':'t','on':['%s'],'minutes':30,'actions':[{'type':'stop'}]}",
                 timed[i].name);
        sb_rule *r = parse_ok(text);
        assert_int_equal(sb_rule_minutes(r), 30);
        for (int t = 0; t < SB_TRIGGER_COUNT; t++)
            assert_int_equal(sb_rule_has_trigger(r, (sb_trigger)t), t == (int)timed[i].t);
        assert_string_equal(sb_trigger_name(timed[i].t), timed[i].name);
        sb_rule_free(r);
    }
    sb_rule *r = parse_ok("{'id':5,'name':'t','on':['time.idle'],'minutes':1,'actions':[{'type':'stop'}]}");
    assert_int_equal(sb_rule_minutes(r), 1);
    sb_rule_free(r);
    r = parse_ok("{'id':5,'name':'t','on':['time.no_agent_reply'],'minutes':527040,'actions':[{'type':'stop'}]}");
    assert_int_equal(sb_rule_minutes(r), 527040);
    sb_rule_free(r);
    /* A time event next to ordinary ones. */
    r = parse_ok("{'id':5,'name':'t','on':['ticket.created','time.idle'],'minutes':15,'actions':[{'type':'stop'}]}");
    assert_true(sb_rule_has_trigger(r, SB_TRIGGER_TICKET_CREATED));
    assert_true(sb_rule_has_trigger(r, SB_TRIGGER_IDLE));
    assert_false(sb_rule_has_trigger(r, SB_TRIGGER_NO_AGENT_REPLY));
    assert_int_equal(sb_rule_minutes(r), 15);
    sb_rule_free(r);

    static const char *const names[] = {
        "ticket.created",         "message.customer",    "message.agent", "status.changed",
        "priority.changed",       "assignment.changed",  "sla.warning",   "sla.breached",
        "time.no_customer_reply", "time.no_agent_reply", "time.idle",     "task.overdue",
    };
    assert_int_equal(SB_ARRAY_LEN(names), SB_TRIGGER_COUNT);
    for (int t = 0; t < SB_TRIGGER_COUNT; t++)
        assert_string_equal(sb_trigger_name((sb_trigger)t), names[t]);
    assert_string_equal(sb_trigger_name(SB_TRIGGER_COUNT), "?");
    assert_string_equal(sb_trigger_name((sb_trigger)-1), "?");
}

/* {"all": [...]} of n "team is_set" conditions; the caller frees it. */
static char *team_group(int n)
{
    sb_buf b;
    sb_buf_init(&b);
    sb_buf_appendz(&b, "{'all':[");
    for (int i = 0; i < n; i++)
        sb_buf_appendz(&b, i > 0 ? ",{'field':'team','op':'is_set'}" : "{'field':'team','op':'is_set'}");
    sb_buf_appendz(&b, "]}");
    return b.p;
}

/* Every condition form that must parse, exported back unchanged. */
static void test_conditions_parse(void **state)
{
    static const char *const whens[] = {
        "{'field':'subject','op':'not_contains','value':['a','b c']}",
        "{'field':'text','op':'matches','value':'^\\\\d+$'}",
        "{'field':'channel','op':'not_in','value':'email'}",
        "{'field':'language','op':'is_not_set'}",
        "{'field':'status','op':'ne','value':['new','closed']}",
        "{'field':'priority','op':'in','value':['low','normal','high','urgent']}",
        "{'field':'team','op':'eq','value':3}",
        "{'field':'assignee','op':'not_in','value':[1,2,3]}",
        "{'field':'contact.tag','op':'not_has','value':['a','b']}",
        "{'field':'ticket.tag','op':'has','value':'x'}",
        "{'field':'contact.attributes.город','op':'ne','value':'Астана'}",
        "{'field':'ticket.age_minutes','op':'gte','value':0}",
        "{'field':'ticket.age_minutes','op':'lt','value':527040}",
        "{'field':'business_hours','op':'is','value':false,'calendar':2}",
        /* four groups deep with the leaf at the fifth level */
        "{'all':[{'any':[{'all':[{'any':[{'field':'text','op':'contains','value':'x'}]}]}]}]}",
    };
    for (size_t i = 0; i < SB_ARRAY_LEN(whens); i++) {
        char text[512];
        snprintf(text, sizeof text, WHEN("%s"), whens[i]);
        sb_rule_free(parse_ok(text));
    }
    /* 50 conditions in a group and 100 values in a list are the limits. */
    char *group = team_group(50);
    sb_rule_facts f = facts();
    f.team_id = 1;
    assert_true(when_matches(group, &f));
    free(group);
    sb_buf b;
    sb_buf_init(&b);
    sb_buf_appendz(&b, "{'field':'assignee','op':'in','value':[1");
    for (int i = 2; i <= 100; i++)
        sb_buf_printf(&b, ",%d", i);
    sb_buf_appendz(&b, "]}");
    f.assignee_id = 100;
    assert_true(when_matches(b.p, &f));
    f.assignee_id = 101;
    assert_false(when_matches(b.p, &f));
    sb_buf_free(&b);
}

/* ---- validation errors ---- */

typedef struct bad_rule {
    const char *json;
    const char *field;
    const char *msg; /* a part of the message, or NULL */
} bad_rule;

static void check_table(const bad_rule *cases, size_t n)
{
    for (size_t i = 0; i < n; i++)
        expect_error(cases[i].json, cases[i].field, cases[i].msg);
}

static void test_errors_top_level(void **state)
{
    static const bad_rule cases[] = {
        {"[]", "", "object"},
        {"'rule'", "", "object"},
        {"null", "", "object"},
        {"{'id':1,'name':'t','on':['ticket.created'],'actions':[{'type':'stop'}],'tags':[]}", "tags", "\"tags\""},
        {"{'id':1,'name':'t','on':['ticket.created'],'actions':[{'type':'stop'}],'Enabled':true}", "Enabled", NULL},
        {TOP("'name':'t','on':['ticket.created']"), "id", NULL},
        {TOP("'id':0,'name':'t','on':['ticket.created']"), "id", NULL},
        {TOP("'id':-4,'name':'t','on':['ticket.created']"), "id", NULL},
        {TOP("'id':'1','name':'t','on':['ticket.created']"), "id", NULL},
        {TOP("'id':1.5,'name':'t','on':['ticket.created']"), "id", NULL},
        {TOP("'id':null,'name':'t','on':['ticket.created']"), "id", NULL},
        {TOP("'id':1,'on':['ticket.created']"), "name", NULL},
        {TOP("'id':1,'name':'','on':['ticket.created']"), "name", NULL},
        {TOP("'id':1,'name':7,'on':['ticket.created']"), "name", NULL},
        {TOP("'id':1,'name':'t','enabled':'yes','on':['ticket.created']"), "enabled", NULL},
        {TOP("'id':1,'name':'t','enabled':1,'on':['ticket.created']"), "enabled", NULL},
        {TOP("'id':1,'name':'t','enabled':null,'on':['ticket.created']"), "enabled", NULL},
        {TOP("'id':1,'name':'t','once_per_ticket':0,'on':['ticket.created']"), "once_per_ticket", NULL},
        {TOP("'id':1,'name':'t'"), "on", NULL},
        {TOP("'id':1,'name':'t','on':[]"), "on", NULL},
        {TOP("'id':1,'name':'t','on':'ticket.created'"), "on", NULL},
        {TOP("'id':1,'name':'t','on':{}"), "on", NULL},
        {TOP("'id':1,'name':'t','on':['ticket.deleted']"), "on[0]", "unknown event"},
        {TOP("'id':1,'name':'t','on':['ticket.created','ticket.deleted']"), "on[1]", "unknown event"},
        {TOP("'id':1,'name':'t','on':['ticket.created',5]"), "on[1]", NULL},
        {TOP("'id':1,'name':'t','on':['ticket.created','Ticket.Created']"), "on[1]", NULL},
        {TOP("'id':1,'name':'t','on':['ticket.created','message.customer','']"), "on[2]", NULL},
        {TOP("'id':1,'name':'t','on':['time.idle']"), "minutes", "required"},
        {TOP("'id':1,'name':'t','on':['ticket.created','time.no_agent_reply']"), "minutes", "required"},
        {TOP("'id':1,'name':'t','on':['ticket.created'],'minutes':30"), "minutes", "only"},
        {TOP("'id':1,'name':'t','on':['time.idle'],'minutes':0"), "minutes", NULL},
        {TOP("'id':1,'name':'t','on':['time.idle'],'minutes':-5"), "minutes", NULL},
        {TOP("'id':1,'name':'t','on':['time.idle'],'minutes':527041"), "minutes", NULL},
        {TOP("'id':1,'name':'t','on':['time.idle'],'minutes':'30'"), "minutes", NULL},
        {TOP("'id':1,'name':'t','on':['time.idle'],'minutes':30.0"), "minutes", NULL},
        {TOP("'id':1,'name':'t','on':['time.idle'],'minutes':null"), "minutes", NULL},
        /* the first bad value is reported, in the order id, name, enabled, on */
        {TOP("'id':0,'name':'','enabled':3,'on':[]"), "id", NULL},
        {TOP("'id':1,'name':'','enabled':3,'on':[]"), "name", NULL},
        {TOP("'id':1,'name':'t','enabled':3,'once_per_ticket':3,'on':[]"), "enabled", NULL},
    };
    check_table(cases, SB_ARRAY_LEN(cases));

    /* A name of 201 bytes. */
    char name[202];
    memset(name, 'n', 201);
    name[201] = '\0';
    json_t *j = load("{'id':1,'on':['ticket.created'],'actions':[{'type':'stop'}]}");
    json_object_set_new(j, "name", json_string(name));
    expect_error_json(j, "name", NULL, "name of 201 bytes");
    json_decref(j);
}

static void test_errors_when(void **state)
{
    static const bad_rule cases[] = {
        {WHEN("'x'"), "when", "object"},
        {WHEN("[]"), "when", "object"},
        {WHEN("null"), "when", "object"},
        {WHEN("{'field':'text','op':'contains','value':'x','foo':1}"), "when.foo", "\"foo\""},
        {WHEN("{'all':[{'field':'text','op':'contains','value':'x','foo':1}]}"), "when.all[0].foo", "\"foo\""},
        {WHEN("{'all':[{'field':'text','op':'contains','value':'x'},{'feild':'text'}]}"), "when.all[1].feild", NULL},
        {WHEN("{'op':'contains','value':'x'}"), "when.field", "required"},
        {WHEN("{}"), "when.field", NULL},
        {WHEN("{'field':5,'op':'contains','value':'x'}"), "when.field", NULL},
        {WHEN("{'field':'txt','op':'contains','value':'x'}"), "when.field", "\"txt\""},
        {WHEN("{'field':'Text','op':'contains','value':'x'}"), "when.field", NULL},
        {WHEN("{'field':'contact.attributes','op':'eq','value':'x'}"), "when.field", NULL},
        {WHEN("{'field':'contact.attributes.','op':'eq','value':'x'}"), "when.field", NULL},
        {WHEN("{'field':'contact.attributes.abcdefghijklmnopqrstuvwxyz012345','op':'eq','value':'x'}"), "when.field",
         NULL},
        {WHEN("{'field':'contact.attribute.city','op':'eq','value':'x'}"), "when.field", NULL},
        {WHEN("{'field':'text','value':'x'}"), "when.op", "required"},
        {WHEN("{'field':'text','op':'equals','value':'x'}"), "when.op", "\"equals\""},
        {WHEN("{'field':'text','op':7,'value':'x'}"), "when.op", NULL},
        {WHEN("{'all':[{'any':[{'field':'text','op':'CONTAINS','value':'x'}]}]}"), "when.all[0].any[0].op", NULL},
        /* an operator the field does not take */
        {WHEN("{'field':'priority','op':'contains','value':'high'}"), "when.op", "does not apply"},
        {WHEN("{'field':'text','op':'eq','value':'x'}"), "when.op", NULL},
        {WHEN("{'field':'text','op':'is_set'}"), "when.op", NULL},
        {WHEN("{'field':'channel','op':'contains','value':'x'}"), "when.op", NULL},
        {WHEN("{'field':'status','op':'is_set'}"), "when.op", NULL},
        {WHEN("{'field':'team','op':'gt','value':1}"), "when.op", NULL},
        {WHEN("{'field':'contact.vip','op':'eq','value':true}"), "when.op", NULL},
        {WHEN("{'field':'contact.tag','op':'in','value':'x'}"), "when.op", NULL},
        {WHEN("{'field':'contact.attributes.city','op':'matches','value':'x'}"), "when.op", NULL},
        {WHEN("{'field':'ticket.age_minutes','op':'eq','value':1}"), "when.op", NULL},
        {WHEN("{'field':'business_hours','op':'eq','value':true,'calendar':1}"), "when.op", NULL},
        /* values */
        {WHEN("{'field':'text','op':'contains'}"), "when.value", "required"},
        {WHEN("{'field':'team','op':'eq'}"), "when.value", "required"},
        {WHEN("{'field':'contact.vip','op':'is'}"), "when.value", "required"},
        {WHEN("{'field':'team','op':'is_set','value':1}"), "when.value", "no value"},
        {WHEN("{'field':'language','op':'is_not_set','value':null}"), "when.value", NULL},
        {WHEN("{'field':'contact.attributes.city','op':'is_set','value':'x'}"), "when.value", NULL},
        {WHEN("{'field':'priority','op':'eq','value':'critical'}"), "when.value", "\"critical\""},
        {WHEN("{'field':'priority','op':'in','value':['high','Urgent']}"), "when.value", "\"Urgent\""},
        {WHEN("{'field':'status','op':'in','value':['open','waiting']}"), "when.value", "\"waiting\""},
        {WHEN("{'field':'status','op':'eq','value':5}"), "when.value", NULL},
        {WHEN("{'field':'channel','op':'in','value':[]}"), "when.value", NULL},
        {WHEN("{'field':'text','op':'contains','value':[]}"), "when.value", NULL},
        {WHEN("{'field':'text','op':'contains','value':''}"), "when.value", NULL},
        {WHEN("{'field':'text','op':'contains','value':['a','']}"), "when.value", NULL},
        {WHEN("{'field':'text','op':'contains','value':['a',1]}"), "when.value", NULL},
        {WHEN("{'field':'text','op':'contains','value':{}}"), "when.value", NULL},
        {WHEN("{'field':'contact.tag','op':'has','value':'12345678901234567890123456789012'}"), "when.value", NULL},
        {WHEN("{'field':'team','op':'in','value':[1,'2']}"), "when.value", NULL},
        {WHEN("{'field':'team','op':'in','value':[1,2.5]}"), "when.value", NULL},
        {WHEN("{'field':'team','op':'in','value':[]}"), "when.value", NULL},
        {WHEN("{'field':'team','op':'eq','value':'3'}"), "when.value", NULL},
        {WHEN("{'field':'assignee','op':'eq','value':0}"), "when.value", NULL},
        {WHEN("{'field':'assignee','op':'ne','value':-1}"), "when.value", NULL},
        {WHEN("{'field':'contact.vip','op':'is','value':'true'}"), "when.value", NULL},
        {WHEN("{'field':'contact.vip','op':'is','value':1}"), "when.value", NULL},
        {WHEN("{'field':'ticket.age_minutes','op':'gt','value':-1}"), "when.value", NULL},
        {WHEN("{'field':'ticket.age_minutes','op':'gt','value':527041}"), "when.value", NULL},
        {WHEN("{'field':'ticket.age_minutes','op':'gt','value':'5'}"), "when.value", NULL},
        {WHEN("{'field':'text','op':'matches','value':'(abc'}"), "when.value",
         "invalid regular expression: missing closing parenthesis at offset 4"},
        {WHEN("{'field':'subject','op':'matches','value':'a{2,1}'}"), "when.value", "at offset"},
        {WHEN("{'field':'text','op':'matches','value':''}"), "when.value", NULL},
        {WHEN("{'field':'text','op':'matches','value':['a']}"), "when.value", NULL},
        {WHEN("{'field':'business_hours','op':'is','value':true}"), "when.calendar", "calendar"},
        {WHEN("{'field':'business_hours','op':'is','value':true,'calendar':0}"), "when.calendar", NULL},
        {WHEN("{'field':'business_hours','op':'is','value':true,'calendar':'1'}"), "when.calendar", NULL},
        {WHEN("{'field':'business_hours','op':'is','value':'yes','calendar':1}"), "when.value", NULL},
        {WHEN("{'field':'text','op':'contains','value':'x','calendar':1}"), "when.calendar", NULL},
        {WHEN("{'field':'team','op':'is_set','calendar':1}"), "when.calendar", NULL},
        /* groups */
        {WHEN("{'all':[{'field':'team','op':'is_set'}],'any':[{'field':'team','op':'is_set'}]}"), "when",
         "exactly one key"},
        {WHEN("{'all':[{'field':'team','op':'is_set'}],'field':'team'}"), "when", NULL},
        {WHEN("{'any':[{'any':[],'all':[]}]}"), "when.any[0]", NULL},
        {WHEN("{'all':[]}"), "when.all", NULL},
        {WHEN("{'any':{}}"), "when.any", NULL},
        {WHEN("{'all':null}"), "when.all", NULL},
        {WHEN("{'all':['x']}"), "when.all[0]", "object"},
        {WHEN("{'all':[{'field':'team','op':'is_set'},[]]}"), "when.all[1]", NULL},
        /* five groups put the leaf at the sixth level */
        {WHEN("{'all':[{'any':[{'all':[{'any':[{'all':[{'field':'text','op':'contains','value':'x'}]}]}]}]}]}"),
         "when.all[0].any[0].all[0].any[0].all[0]", "5 deep"},
    };
    check_table(cases, SB_ARRAY_LEN(cases));

    /* 51 conditions in a group, 101 values in a list, 2001 bytes of text. */
    char *group = team_group(51);
    json_t *j = load("{'id':1,'name':'t','on':['message.customer'],'actions':[{'type':'stop'}]}");
    json_object_set_new(j, "when", load(group));
    free(group);
    expect_error_json(j, "when.all", "50", "51 conditions");

    json_t *ids = json_array();
    for (int i = 1; i <= 101; i++)
        json_array_append_new(ids, json_integer(i));
    json_object_set_new(j, "when", json_pack("{s:s,s:s,s:o}", "field", "team", "op", "in", "value", ids));
    expect_error_json(j, "when.value", NULL, "101 ids");

    json_t *words = json_array();
    for (int i = 1; i <= 101; i++)
        json_array_append_new(words, json_string("w"));
    json_object_set_new(j, "when", json_pack("{s:s,s:s,s:o}", "field", "text", "op", "contains", "value", words));
    expect_error_json(j, "when.value", NULL, "101 words");

    char long_text[2002];
    memset(long_text, 'a', 2001);
    long_text[2001] = '\0';
    json_object_set_new(j, "when", json_pack("{s:s,s:s,s:s}", "field", "text", "op", "contains", "value", long_text));
    expect_error_json(j, "when.value", NULL, "2001 bytes");
    long_text[2000] = '\0';
    json_object_set_new(j, "when", json_pack("{s:s,s:s,s:s}", "field", "text", "op", "contains", "value", long_text));
    sb_rule *r = NULL;
    assert_int_equal(sb_rule_parse(j, &r, NULL, 0, NULL, 0), 0);
    sb_rule_free(r);
    json_decref(j);
}

static void test_errors_actions(void **state)
{
    static const bad_rule cases[] = {
        {"{'id':1,'name':'t','on':['ticket.created']}", "actions", NULL},
        {ACTIONS("[]"), "actions", NULL},
        {ACTIONS("{'type':'stop'}"), "actions", NULL},
        {ACTIONS("'stop'"), "actions", NULL},
        {ACTION("'stop'"), "actions[0]", "object"},
        {ACTION("{'type':'stop'},null"), "actions[1]", NULL},
        {ACTION("{}"), "actions[0].type", "required"},
        {ACTION("{'type':'explode'}"), "actions[0].type", "\"explode\""},
        {ACTION("{'type':'STOP'}"), "actions[0].type", NULL},
        {ACTION("{'type':1}"), "actions[0].type", NULL},
        {ACTION("{'type':'stop','foo':1}"), "actions[0].foo", "\"foo\""},
        {ACTION("{'type':'add_tag','value':'x','Value':'y'}"), "actions[0].Value", NULL},
        /* a key the action does not take */
        {ACTION("{'type':'set_priority','value':'high','id':3}"), "actions[0].id", "takes no"},
        {ACTION("{'type':'stop','value':'x'}"), "actions[0].value", NULL},
        {ACTION("{'type':'set_status','value':'open','target':'team'}"), "actions[0].target", NULL},
        {ACTION("{'type':'assign_team','id':1,'value':'x'}"), "actions[0].value", NULL},
        {ACTION("{'type':'send_template','id':1,'title':'x'}"), "actions[0].title", NULL},
        {ACTION("{'type':'add_note','value':'x','url':'http://x'}"), "actions[0].url", NULL},
        {ACTION("{'type':'notify','target':'team','value':'x'}"), "actions[0].value", NULL},
        {ACTION("{'type':'create_task','title':'x','due_minutes':1,'id':2}"), "actions[0].id", NULL},
        {ACTION("{'type':'webhook','url':'http://x','value':'http://x'}"), "actions[0].value", NULL},
        {ACTION("{'type':'assign_agent','id':2,'assignee':2}"), "actions[0].assignee", NULL},
        /* bad values */
        {ACTION("{'type':'set_priority','value':'critical'}"), "actions[0].value", NULL},
        {ACTION("{'type':'set_priority','value':'High'}"), "actions[0].value", NULL},
        {ACTION("{'type':'set_priority'}"), "actions[0].value", NULL},
        {ACTION("{'type':'set_priority','value':['high']}"), "actions[0].value", NULL},
        {ACTION("{'type':'set_status','value':'waiting'}"), "actions[0].value", NULL},
        {ACTION("{'type':'set_status'}"), "actions[0].value", NULL},
        {ACTION("{'type':'assign_team'}"), "actions[0].id", NULL},
        {ACTION("{'type':'assign_team','id':0}"), "actions[0].id", NULL},
        {ACTION("{'type':'assign_team','id':'4'}"), "actions[0].id", NULL},
        {ACTION("{'type':'assign_agent','value':'someone'}"), "actions[0].value", NULL},
        {ACTION("{'type':'assign_agent'}"), "actions[0].value", NULL},
        {ACTION("{'type':'assign_agent','id':-1}"), "actions[0].id", NULL},
        {ACTION("{'type':'assign_agent','id':3,'value':'contact_owner'}"), "actions[0].id", NULL},
        {ACTION("{'type':'add_tag','value':'12345678901234567890123456789012'}"), "actions[0].value", "31"},
        {ACTION("{'type':'add_tag','value':''}"), "actions[0].value", NULL},
        {ACTION("{'type':'add_tag'}"), "actions[0].value", NULL},
        {ACTION("{'type':'remove_tag','value':3}"), "actions[0].value", NULL},
        {ACTION("{'type':'send_template'}"), "actions[0].id", NULL},
        {ACTION("{'type':'send_template','id':-2}"), "actions[0].id", NULL},
        {ACTION("{'type':'add_note','value':''}"), "actions[0].value", NULL},
        {ACTION("{'type':'add_note'}"), "actions[0].value", NULL},
        {ACTION("{'type':'notify'}"), "actions[0].target", NULL},
        {ACTION("{'type':'notify','target':'everyone'}"), "actions[0].target", NULL},
        {ACTION("{'type':'notify','target':'Team'}"), "actions[0].target", NULL},
        {ACTION("{'type':'notify','id':0}"), "actions[0].id", NULL},
        {ACTION("{'type':'notify','id':4,'target':'team'}"), "actions[0].id", NULL},
        {ACTION("{'type':'create_task','due_minutes':30}"), "actions[0].title", NULL},
        {ACTION("{'type':'create_task','title':'','due_minutes':30}"), "actions[0].title", NULL},
        {ACTION("{'type':'create_task','title':'x'}"), "actions[0].due_minutes", NULL},
        {ACTION("{'type':'create_task','title':'x','due_minutes':-1}"), "actions[0].due_minutes", NULL},
        {ACTION("{'type':'create_task','title':'x','due_minutes':527041}"), "actions[0].due_minutes", NULL},
        {ACTION("{'type':'create_task','title':'x','due_minutes':'30'}"), "actions[0].due_minutes", NULL},
        {ACTION("{'type':'create_task','title':'x','due_minutes':30,'assignee':0}"), "actions[0].assignee", NULL},
        {ACTION("{'type':'create_task','title':'x','due_minutes':30,'assignee':'5'}"), "actions[0].assignee", NULL},
        {ACTION("{'type':'webhook','url':'ftp://x'}"), "actions[0].url", NULL},
        {ACTION("{'type':'webhook','url':'HTTP://x'}"), "actions[0].url", NULL},
        {ACTION("{'type':'webhook','url':'http://x y'}"), "actions[0].url", NULL},
        {ACTION("{'type':'webhook','url':'http://x/\\r\\nHost: z'}"), "actions[0].url", "control characters"},
        {ACTION("{'type':'webhook','url':'example.kz/hook'}"), "actions[0].url", NULL},
        {ACTION("{'type':'webhook'}"), "actions[0].url", NULL},
        /* the first bad action is reported */
        {ACTION("{'type':'stop'},{'type':'set_status','value':'x'},{'type':'boom'}"), "actions[1].value", NULL},
        {ACTION("{'type':'stop'},{'type':'stop'},{'type':'boom'}"), "actions[2].type", NULL},
    };
    check_table(cases, SB_ARRAY_LEN(cases));

    /* 21 actions; a 201-byte task title; a 2001-byte note and URL. */
    json_t *j = load(ACTION("{'type':'stop'}"));
    json_t *actions = json_array();
    for (int i = 0; i < 21; i++)
        json_array_append_new(actions, json_pack("{s:s}", "type", "stop"));
    json_object_set_new(j, "actions", actions);
    expect_error_json(j, "actions", "20", "21 actions");

    char big[2100];
    memset(big, 't', 201);
    big[201] = '\0';
    json_object_set_new(j, "actions",
                        json_pack("[{s:s,s:s,s:i}]", "type", "create_task", "title", big, "due_minutes", 5));
    expect_error_json(j, "actions[0].title", NULL, "201-byte title");
    memset(big, 'n', 2001);
    big[2001] = '\0';
    json_object_set_new(j, "actions", json_pack("[{s:s,s:s}]", "type", "add_note", "value", big));
    expect_error_json(j, "actions[0].value", NULL, "2001-byte note");
    memcpy(big, "https://", 8);
    json_object_set_new(j, "actions", json_pack("[{s:s,s:s}]", "type", "webhook", "url", big));
    expect_error_json(j, "actions[0].url", NULL, "2001-byte URL");
    json_decref(j);
}

/* Strings made with the _nocheck constructors carry bytes jansson would
 * never load: every place a string is read must refuse them. */
static void test_errors_invalid_utf8(void **state)
{
    static const char *const bad[] = {"\xff", "ok\xd0", "\xc0\xaf", "ab\xed\xa0\x80", "\xf4\x90\x80\x80"};
    for (size_t i = 0; i < SB_ARRAY_LEN(bad); i++) {
        const char *z = bad[i];
        char tag[64];
        snprintf(tag, sizeof tag, "x%s", z);
        json_t *j = load("{'id':1,'on':['ticket.created'],'actions':[{'type':'stop'}]}");
        json_object_set_new(j, "name", json_string_nocheck(z));
        expect_error_json(j, "name", NULL, "name");
        json_object_set_new(j, "name", json_string("t"));

        json_object_set_new(j, "on", json_pack("[o]", json_string_nocheck(z)));
        expect_error_json(j, "on[0]", NULL, "on");
        json_object_set_new(j, "on", json_pack("[s]", "message.customer"));

        static const struct {
            const char *field, *op, *path;
        } leaves[] = {
            {"text", "contains", "when.value"},
            {"subject", "not_contains", "when.value"},
            {"text", "matches", "when.value"},
            {"channel", "eq", "when.value"},
            {"language", "in", "when.value"},
            {"contact.tag", "has", "when.value"},
            {"ticket.tag", "not_has", "when.value"},
            {"contact.attributes.city", "eq", "when.value"},
            {"contact.attributes.city", "contains", "when.value"},
            {"status", "eq", "when.value"},
        };
        for (size_t k = 0; k < SB_ARRAY_LEN(leaves); k++) {
            json_object_set_new(j, "when",
                                json_pack("{s:s,s:s,s:o}", "field", leaves[k].field, "op", leaves[k].op, "value",
                                          json_string_nocheck(tag)));
            expect_error_json(j, leaves[k].path, NULL, leaves[k].field);
            /* the same inside a list of values */
            json_object_set_new(j, "when",
                                json_pack("{s:s,s:s,s:[s,o]}", "field", leaves[k].field, "op", leaves[k].op, "value",
                                          "ok", json_string_nocheck(tag)));
            expect_error_json(j, leaves[k].path, NULL, leaves[k].field);
        }
        /* field names and operators */
        char field[64];
        snprintf(field, sizeof field, "contact.attributes.%s", z);
        json_object_set_new(j, "when",
                            json_pack("{s:o,s:s,s:s}", "field", json_string_nocheck(field), "op", "eq", "value", "x"));
        expect_error_json(j, "when.field", NULL, "attribute name");
        json_object_set_new(j, "when",
                            json_pack("{s:s,s:o,s:s}", "field", "text", "op", json_string_nocheck(z), "value", "x"));
        expect_error_json(j, "when.op", NULL, "op");
        json_object_del(j, "when");

        /* action values */
        json_object_set_new(j, "actions",
                            json_pack("[{s:s,s:o}]", "type", "add_tag", "value", json_string_nocheck(tag)));
        expect_error_json(j, "actions[0].value", NULL, "add_tag");
        json_object_set_new(j, "actions",
                            json_pack("[{s:s,s:o}]", "type", "remove_tag", "value", json_string_nocheck(tag)));
        expect_error_json(j, "actions[0].value", NULL, "remove_tag");
        json_object_set_new(j, "actions",
                            json_pack("[{s:s,s:o}]", "type", "add_note", "value", json_string_nocheck(tag)));
        expect_error_json(j, "actions[0].value", NULL, "add_note");
        json_object_set_new(
            j, "actions",
            json_pack("[{s:s,s:o,s:i}]", "type", "create_task", "title", json_string_nocheck(tag), "due_minutes", 5));
        expect_error_json(j, "actions[0].title", NULL, "create_task");
        char url[64];
        snprintf(url, sizeof url, "https://example.kz/%s", z);
        json_object_set_new(j, "actions", json_pack("[{s:s,s:o}]", "type", "webhook", "url", json_string_nocheck(url)));
        expect_error_json(j, "actions[0].url", NULL, "webhook");
        json_object_set_new(j, "actions",
                            json_pack("[{s:s,s:o}]", "type", "set_status", "value", json_string_nocheck(z)));
        expect_error_json(j, "actions[0].value", NULL, "set_status");
        json_object_set_new(j, "actions", json_pack("[{s:o}]", "type", json_string_nocheck(z)));
        expect_error_json(j, "actions[0].type", NULL, "type");
        json_decref(j);
    }

    /* Invalid UTF-8 in the facts never matches and never crashes. */
    sb_rule_facts f = facts();
    f.text = "\xff срочно";
    assert_false(when_matches("{'field':'text','op':'contains','value':'срочно'}", &f));
    assert_true(when_matches("{'field':'text','op':'not_contains','value':'срочно'}", &f));
    assert_false(when_matches("{'field':'text','op':'matches','value':'срочно'}", &f));
    f.text = "ok";
    f.subject = "\xd0";
    assert_false(when_matches("{'field':'subject','op':'contains','value':'ok'}", &f));
}

/* Errors in small or missing buffers are cut, never overrun. */
static void test_error_buffers(void **state)
{
    json_t *j = load(WHEN("{'all':[{'any':[{'field':'text','op':'contains','value':'x','oops':1}]}]}"));
    sb_rule *r = NULL;
    char field[8], msg[6];
    assert_int_equal(sb_rule_parse(j, &r, field, sizeof field, msg, sizeof msg), SB_EINVAL);
    assert_null(r);
    assert_string_equal(field, "when.al");
    assert_string_equal(msg, "unkno");
    assert_int_equal(sb_rule_parse(j, &r, NULL, 0, NULL, 0), SB_EINVAL);
    assert_null(r);
    char full[64];
    assert_int_equal(sb_rule_parse(j, &r, full, sizeof full, NULL, 0), SB_EINVAL);
    assert_string_equal(full, "when.all[0].any[0].oops");
    json_decref(j);

    /* An error message quoting a Cyrillic value is cut between letters. */
    j = load(WHEN("{'field':'priority','op':'eq','value':'срочный'}"));
    char m[23]; /* 'unknown priority "' is 18 bytes, then two letters of 2 bytes and the NUL */
    assert_int_equal(sb_rule_parse(j, &r, NULL, 0, m, sizeof m), SB_EINVAL);
    assert_string_equal(m, "unknown priority \"ср");
    char m2[22]; /* the second letter does not fit whole and is left out */
    assert_int_equal(sb_rule_parse(j, &r, NULL, 0, m2, sizeof m2), SB_EINVAL);
    assert_string_equal(m2, "unknown priority \"с");
    assert_true(sb_utf8_valid(m2, strlen(m2)));
    json_decref(j);
}

/* ---- matching ---- */

static void test_match_text(void **state)
{
    const char *urgent = "{'field':'text','op':'contains','value':'срочно'}";
    assert_true(text_matches(urgent, "СРОЧНО!!!"));
    assert_true(text_matches(urgent, "Срочно, пожалуйста"));
    assert_true(text_matches(urgent, "Помогите, это срочно"));
    assert_false(text_matches(urgent, "несрочно"));
    assert_false(text_matches(urgent, "Вопрос несрочный"));
    assert_false(text_matches(urgent, ""));

    const char *any = "{'field':'text','op':'contains','value':['срочно','urgent','не работает']}";
    assert_true(text_matches(any, "URGENT please"));
    assert_true(text_matches(any, "Сайт НЕ  РАБОТАЕТ."));
    assert_true(text_matches(any, "срочно"));
    assert_false(text_matches(any, "всё работает"));
    assert_false(text_matches(any, "urgently"));

    const char *none = "{'field':'text','op':'not_contains','value':['спасибо','thanks']}";
    assert_true(text_matches(none, "Где мой заказ?"));
    assert_true(text_matches(none, ""));
    assert_false(text_matches(none, "Спасибо!"));
    assert_false(text_matches(none, "ok, THANKS"));

    json_t *when = json_pack("{s:s,s:s,s:s}", "field", "text", "op", "matches", "value", "заказ\\s*№?\\s*\\d+");
    char *wz = json_dumps(when, 0);
    for (char *p = wz; *p != '\0'; p++)
        if (*p == '"')
            *p = '\'';
    json_decref(when);
    assert_true(text_matches(wz, "Заказ № 123"));
    assert_true(text_matches(wz, "где ЗАКАЗ №123?"));
    assert_true(text_matches(wz, "заказ 77"));
    assert_false(text_matches(wz, "Заказ № абв"));
    assert_false(text_matches(wz, "номер 123"));
    free(wz);

    /* Subject, with a NULL subject read as empty. */
    sb_rule_facts f = facts();
    f.subject = "Re: Возврат товара";
    assert_true(when_matches("{'field':'subject','op':'contains','value':'возврат'}", &f));
    assert_false(when_matches("{'field':'subject','op':'not_contains','value':'возврат'}", &f));
    f.subject = NULL;
    f.text = NULL;
    assert_false(when_matches("{'field':'subject','op':'contains','value':'возврат'}", &f));
    assert_true(when_matches("{'field':'subject','op':'not_contains','value':'возврат'}", &f));
    assert_true(when_matches("{'field':'text','op':'matches','value':'^$'}", &f));
    assert_false(when_matches("{'field':'text','op':'matches','value':'x'}", &f));
}

static void test_match_fields(void **state)
{
    sb_rule_facts f = facts();
    /* channel */
    assert_true(when_matches("{'field':'channel','op':'in','value':['telegram','webchat']}", &f));
    assert_false(when_matches("{'field':'channel','op':'in','value':['telegram','email']}", &f));
    assert_true(when_matches("{'field':'channel','op':'eq','value':'webchat'}", &f));
    assert_false(when_matches("{'field':'channel','op':'eq','value':'WebChat'}", &f));
    assert_true(when_matches("{'field':'channel','op':'not_in','value':['email','api']}", &f));
    assert_false(when_matches("{'field':'channel','op':'ne','value':'webchat'}", &f));

    /* language, possibly unknown */
    assert_true(when_matches("{'field':'language','op':'eq','value':'ru'}", &f));
    assert_false(when_matches("{'field':'language','op':'eq','value':'kk'}", &f));
    assert_true(when_matches("{'field':'language','op':'in','value':['uk','ru']}", &f));
    assert_true(when_matches("{'field':'language','op':'is_set'}", &f));
    assert_false(when_matches("{'field':'language','op':'is_not_set'}", &f));
    f.language = NULL;
    assert_false(when_matches("{'field':'language','op':'is_set'}", &f));
    assert_true(when_matches("{'field':'language','op':'is_not_set'}", &f));
    assert_false(when_matches("{'field':'language','op':'eq','value':'ru'}", &f));
    assert_false(when_matches("{'field':'language','op':'in','value':['ru','uk','kk','en']}", &f));
    assert_true(when_matches("{'field':'language','op':'ne','value':'ru'}", &f));
    assert_true(when_matches("{'field':'language','op':'not_in','value':['ru','en']}", &f));
    f.language = "kk";
    assert_true(when_matches("{'field':'language','op':'not_in','value':['ru','en']}", &f));

    /* status and priority */
    assert_true(when_matches("{'field':'status','op':'in','value':['new','open']}", &f));
    assert_false(when_matches("{'field':'status','op':'in','value':['pending','resolved','closed']}", &f));
    assert_true(when_matches("{'field':'status','op':'eq','value':'open'}", &f));
    assert_true(when_matches("{'field':'status','op':'not_in','value':['closed']}", &f));
    assert_true(when_matches("{'field':'priority','op':'in','value':['normal','high']}", &f));
    assert_false(when_matches("{'field':'priority','op':'in','value':['high','urgent']}", &f));
    assert_true(when_matches("{'field':'priority','op':'ne','value':'urgent'}", &f));
    f.priority = "urgent";
    assert_false(when_matches("{'field':'priority','op':'ne','value':'urgent'}", &f));
    assert_true(when_matches("{'field':'priority','op':'eq','value':'urgent'}", &f));

    /* team and assignee: 0 is "not set" */
    assert_false(when_matches("{'field':'team','op':'is_set'}", &f));
    assert_true(when_matches("{'field':'team','op':'is_not_set'}", &f));
    assert_false(when_matches("{'field':'team','op':'eq','value':3}", &f));
    assert_true(when_matches("{'field':'team','op':'ne','value':3}", &f));
    f.team_id = 3;
    assert_true(when_matches("{'field':'team','op':'is_set'}", &f));
    assert_false(when_matches("{'field':'team','op':'is_not_set'}", &f));
    assert_true(when_matches("{'field':'team','op':'eq','value':3}", &f));
    assert_true(when_matches("{'field':'team','op':'eq','value':[3]}", &f));
    assert_true(when_matches("{'field':'team','op':'in','value':[1,2,3]}", &f));
    assert_false(when_matches("{'field':'team','op':'in','value':[1,2]}", &f));
    assert_false(when_matches("{'field':'team','op':'not_in','value':[3,4]}", &f));
    assert_false(when_matches("{'field':'team','op':'ne','value':3}", &f));
    assert_false(when_matches("{'field':'assignee','op':'is_set'}", &f));
    assert_true(when_matches("{'field':'assignee','op':'is_not_set'}", &f));
    f.assignee_id = 42;
    assert_true(when_matches("{'field':'assignee','op':'is_set'}", &f));
    assert_false(when_matches("{'field':'assignee','op':'is_not_set'}", &f));
    assert_true(when_matches("{'field':'assignee','op':'eq','value':42}", &f));
    assert_false(when_matches("{'field':'assignee','op':'eq','value':3}", &f));
    assert_true(when_matches("{'field':'assignee','op':'in','value':[41,42]}", &f));
    assert_true(when_matches("{'field':'assignee','op':'not_in','value':[41,43]}", &f));

    /* VIP */
    assert_false(when_matches("{'field':'contact.vip','op':'is','value':true}", &f));
    assert_true(when_matches("{'field':'contact.vip','op':'is','value':false}", &f));
    f.vip = true;
    assert_true(when_matches("{'field':'contact.vip','op':'is','value':true}", &f));
    assert_false(when_matches("{'field':'contact.vip','op':'is','value':false}", &f));

    /* tags: exact names, any of a list */
    assert_true(when_matches("{'field':'contact.tag','op':'has','value':'опт'}", &f));
    assert_true(when_matches("{'field':'contact.tag','op':'has','value':['x','vip-gold']}", &f));
    assert_false(when_matches("{'field':'contact.tag','op':'has','value':'delivery'}", &f));
    assert_false(when_matches("{'field':'contact.tag','op':'has','value':'VIP-GOLD'}", &f));
    assert_true(when_matches("{'field':'contact.tag','op':'not_has','value':'blocked'}", &f));
    assert_false(when_matches("{'field':'contact.tag','op':'not_has','value':['blocked','опт']}", &f));
    assert_true(when_matches("{'field':'ticket.tag','op':'has','value':'возврат'}", &f));
    assert_true(when_matches("{'field':'ticket.tag','op':'has','value':['a','delivery']}", &f));
    assert_false(when_matches("{'field':'ticket.tag','op':'has','value':'опт'}", &f));
    assert_true(when_matches("{'field':'ticket.tag','op':'not_has','value':'опт'}", &f));
    f.ncontact_tags = 0;
    f.contact_tags = NULL;
    assert_false(when_matches("{'field':'contact.tag','op':'has','value':'опт'}", &f));
    assert_true(when_matches("{'field':'contact.tag','op':'not_has','value':'опт'}", &f));

    /* contact attributes */
    assert_true(when_matches("{'field':'contact.attributes.city','op':'eq','value':'г. Алматы'}", &f));
    assert_false(when_matches("{'field':'contact.attributes.city','op':'eq','value':'Алматы'}", &f));
    assert_true(when_matches("{'field':'contact.attributes.city','op':'contains','value':'алматы'}", &f));
    assert_true(when_matches("{'field':'contact.attributes.city','op':'contains','value':['астана','АЛМАТЫ']}", &f));
    assert_false(when_matches("{'field':'contact.attributes.city','op':'contains','value':'алма'}", &f));
    assert_true(when_matches("{'field':'contact.attributes.city','op':'in','value':['Астана','г. Алматы']}", &f));
    assert_true(when_matches("{'field':'contact.attributes.city','op':'ne','value':'Астана'}", &f));
    assert_true(when_matches("{'field':'contact.attributes.city','op':'is_set'}", &f));
    assert_false(when_matches("{'field':'contact.attributes.city','op':'is_not_set'}", &f));
    assert_true(when_matches("{'field':'contact.attributes.company','op':'contains','value':'ромашка'}", &f));
    /* a missing attribute and an empty one are both "not set" */
    assert_false(when_matches("{'field':'contact.attributes.phone','op':'is_set'}", &f));
    assert_true(when_matches("{'field':'contact.attributes.phone','op':'is_not_set'}", &f));
    assert_false(when_matches("{'field':'contact.attributes.empty','op':'is_set'}", &f));
    assert_true(when_matches("{'field':'contact.attributes.empty','op':'is_not_set'}", &f));
    assert_false(when_matches("{'field':'contact.attributes.phone','op':'eq','value':'x'}", &f));
    assert_false(when_matches("{'field':'contact.attributes.phone','op':'contains','value':'x'}", &f));
    assert_true(when_matches("{'field':'contact.attributes.phone','op':'ne','value':'x'}", &f));
    /* attribute names are matched exactly */
    assert_false(when_matches("{'field':'contact.attributes.City','op':'is_set'}", &f));
    f.nattrs = 0;
    assert_false(when_matches("{'field':'contact.attributes.city','op':'is_set'}", &f));
}

static void test_match_age(void **state)
{
    static const struct {
        const char *op;
        int64_t age;
        bool want;
    } cases[] = {
        {"gt", 29, false}, {"gt", 30, false}, {"gt", 31, true},  {"gte", 29, false},
        {"gte", 30, true}, {"gte", 31, true}, {"lt", 29, true},  {"lt", 30, false},
        {"lt", 31, false}, {"lte", 29, true}, {"lte", 30, true}, {"lte", 31, false},
    };
    for (size_t i = 0; i < SB_ARRAY_LEN(cases); i++) {
        char when[128];
        snprintf(when, sizeof when, "{'field':'ticket.age_minutes','op':'%s','value':30}", cases[i].op);
        sb_rule_facts f = facts();
        f.age_minutes = cases[i].age;
        if (when_matches(when, &f) != cases[i].want)
            fail_msg("age %lld %s 30: expected %d", (long long)cases[i].age, cases[i].op, cases[i].want);
    }
    sb_rule_facts f = facts();
    f.age_minutes = 0;
    assert_true(when_matches("{'field':'ticket.age_minutes','op':'gte','value':0}", &f));
    assert_false(when_matches("{'field':'ticket.age_minutes','op':'gt','value':0}", &f));
}

static void test_match_business_hours(void **state)
{
    hours h = {.open = true};
    sb_rule_facts f = facts();
    f.in_business_hours = in_hours;
    f.ctx = &h;
    assert_true(when_matches("{'field':'business_hours','op':'is','value':true,'calendar':7}", &f));
    assert_int_equal(h.calls, 1);
    assert_int_equal(h.calendar_id, 7);
    assert_false(when_matches("{'field':'business_hours','op':'is','value':false,'calendar':8}", &f));
    assert_int_equal(h.calls, 2);
    assert_int_equal(h.calendar_id, 8);
    h.open = false;
    assert_false(when_matches("{'field':'business_hours','op':'is','value':true,'calendar':9}", &f));
    assert_true(when_matches("{'field':'business_hours','op':'is','value':false,'calendar':9}", &f));
    assert_int_equal(h.calls, 4);
    assert_int_equal(h.calendar_id, 9);

    /* Two calendars in one rule: each asked about once, in order. */
    h = (hours){.open = true};
    assert_false(when_matches("{'all':[{'field':'business_hours','op':'is','value':true,'calendar':1},"
                              "{'field':'business_hours','op':'is','value':false,'calendar':2}]}",
                              &f));
    assert_int_equal(h.calls, 2);
    assert_int_equal(h.calendar_id, 2);

    /* Conditions stop at the first that decides: the callback is not asked. */
    h = (hours){.open = true};
    assert_false(when_matches("{'all':[{'field':'team','op':'eq','value':99},"
                              "{'field':'business_hours','op':'is','value':true,'calendar':3}]}",
                              &f));
    assert_int_equal(h.calls, 0);

    /* Without a callback business hours never hold either way. */
    f.in_business_hours = NULL;
    assert_false(when_matches("{'field':'business_hours','op':'is','value':true,'calendar':1}", &f));
    assert_false(when_matches("{'field':'business_hours','op':'is','value':false,'calendar':1}", &f));
}

static void test_match_groups(void **state)
{
    sb_rule_facts f = facts();
    f.text = "Срочно нужен возврат";
    f.channel = "telegram";
    f.priority = "high";
    assert_true(when_matches("{'all':[{'field':'channel','op':'eq','value':'telegram'}]}", &f));
    assert_false(when_matches("{'any':[{'field':'channel','op':'eq','value':'email'}]}", &f));
    assert_true(when_matches("{'all':[{'field':'text','op':'contains','value':'срочно'},"
                             "{'field':'text','op':'contains','value':'возврат'}]}",
                             &f));
    assert_false(when_matches("{'all':[{'field':'text','op':'contains','value':'срочно'},"
                              "{'field':'channel','op':'eq','value':'email'}]}",
                              &f));
    assert_true(when_matches("{'any':[{'field':'channel','op':'eq','value':'email'},"
                             "{'field':'priority','op':'eq','value':'high'}]}",
                             &f));
    assert_false(when_matches("{'any':[{'field':'channel','op':'eq','value':'email'},"
                              "{'field':'priority','op':'eq','value':'low'}]}",
                              &f));
    /* (email or high) and not vip and (urgent text or (telegram and any of the tags)) */
    const char *nested = "{'all':[{'any':[{'field':'channel','op':'eq','value':'email'},"
                         "{'field':'priority','op':'in','value':['high','urgent']}]},"
                         "{'field':'contact.vip','op':'is','value':false},"
                         "{'any':[{'field':'text','op':'contains','value':'жалоба'},"
                         "{'all':[{'field':'channel','op':'eq','value':'telegram'},"
                         "{'any':[{'field':'ticket.tag','op':'has','value':'delivery'},"
                         "{'field':'contact.tag','op':'has','value':'none'}]}]}]}]}";
    assert_true(when_matches(nested, &f));
    f.vip = true;
    assert_false(when_matches(nested, &f));
    f.vip = false;
    f.nticket_tags = 0;
    assert_false(when_matches(nested, &f));
    f.text = "Это ЖАЛОБА";
    assert_true(when_matches(nested, &f));
    f.priority = "low";
    assert_false(when_matches(nested, &f));
    f.channel = "email";
    assert_true(when_matches(nested, &f));
}

static void test_disabled_never_matches(void **state)
{
    sb_rule *r = parse_ok("{'id':1,'name':'off','enabled':false,'on':['ticket.created'],'actions':[{'type':'stop'}]}");
    sb_rule_facts f = facts();
    assert_false(sb_rule_matches(r, &f));
    sb_rule_free(r);
    r = parse_ok("{'id':1,'name':'off','enabled':false,'on':['ticket.created'],"
                 "'when':{'field':'channel','op':'eq','value':'webchat'},'actions':[{'type':'stop'}]}");
    assert_false(sb_rule_matches(r, &f));
    sb_rule_free(r);
    r = parse_ok("{'id':1,'name':'on','enabled':true,'on':['ticket.created'],"
                 "'when':{'field':'channel','op':'eq','value':'webchat'},'actions':[{'type':'stop'}]}");
    assert_true(sb_rule_matches(r, &f));
    sb_rule_free(r);
}

/* ---- robustness ---- */

static uint64_t rng_state;

static uint64_t rng(void)
{
    /* xorshift64*: fixed seed, the same variants on every run */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 2685821657736338717ULL;
}

static const char fuzz_seed[] =
    "{\"id\": 7, \"name\": \"Жалобы VIP\", \"enabled\": true, \"on\": [\"message.customer\", \"time.idle\"],"
    " \"minutes\": 30, \"once_per_ticket\": true,"
    " \"when\": {\"all\": [{\"field\": \"text\", \"op\": \"contains\", \"value\": [\"срочно\", \"жалоба\"]},"
    " {\"any\": [{\"field\": \"channel\", \"op\": \"in\", \"value\": [\"telegram\", \"webchat\"]},"
    " {\"field\": \"contact.vip\", \"op\": \"is\", \"value\": true},"
    " {\"field\": \"text\", \"op\": \"matches\", \"value\": \"заказ\\\\s*№?\\\\s*\\\\d+\"},"
    " {\"field\": \"language\", \"op\": \"is_set\"},"
    " {\"field\": \"team\", \"op\": \"in\", \"value\": [1, 2]},"
    " {\"field\": \"contact.attributes.city\", \"op\": \"contains\", \"value\": \"алматы\"},"
    " {\"field\": \"ticket.age_minutes\", \"op\": \"gte\", \"value\": 10},"
    " {\"field\": \"ticket.tag\", \"op\": \"not_has\", \"value\": \"spam\"},"
    " {\"field\": \"business_hours\", \"op\": \"is\", \"value\": false, \"calendar\": 2}]}]},"
    " \"actions\": [{\"type\": \"set_priority\", \"value\": \"urgent\"},"
    " {\"type\": \"assign_agent\", \"value\": \"contact_owner\"},"
    " {\"type\": \"notify\", \"target\": \"supervisor\"},"
    " {\"type\": \"create_task\", \"title\": \"Перезвонить\", \"due_minutes\": 60, \"assignee\": 3},"
    " {\"type\": \"webhook\", \"url\": \"https://example.kz/h\"}, {\"type\": \"stop\"}]}";

static void test_mutations(void **state)
{
    /* Bytes that keep a mutated text close to JSON, so many variants load. */
    static const char dict[] = "{}[]\",:0123456789-.eE tfnru\\ \xd0\xb0";
    static const char *const tokens[] = {"\"is_set\"",
                                         "\"value\"",
                                         "[]",
                                         "{}",
                                         "null",
                                         "0",
                                         "-1",
                                         "\"\"",
                                         "\"calendar\"",
                                         "\"all\"",
                                         "\"any\"",
                                         "true",
                                         "99999999999999999999",
                                         "\"(\"",
                                         "\"matches\"",
                                         "\"field\"",
                                         "[[[[[[",
                                         "\"id\""};
    size_t seed_len = strlen(fuzz_seed);
    char *buf = malloc(seed_len * 2 + 64);
    assert_non_null(buf);
    hours h = {.open = true};
    sb_rule_facts f = facts();
    f.text = "Срочно! Заказ № 55";
    f.team_id = 2;
    f.in_business_hours = in_hours;
    f.ctx = &h;

    /* The seed itself is valid. */
    json_t *seed = json_loads(fuzz_seed, 0, NULL);
    assert_non_null(seed);
    sb_rule *r = NULL;
    assert_int_equal(sb_rule_parse(seed, &r, NULL, 0, NULL, 0), 0);
    assert_true(sb_rule_matches(r, &f));
    sb_rule_free(r);
    json_decref(seed);

    int loaded = 0, parsed = 0, rejected = 0, matched = 0;
    rng_state = 0x5b0a4d5eed2026ULL;
    for (int iter = 0; iter < 2000; iter++) {
        size_t len = seed_len;
        memcpy(buf, fuzz_seed, len);
        /* mostly one mutation, so that many variants still parse */
        int nmut = rng() % 4 == 0 ? 2 + (int)(rng() % 3) : 1;
        for (int m = 0; m < nmut; m++) {
            size_t at = len > 0 ? (size_t)(rng() % len) : 0;
            switch (rng() % 5) {
            case 0: /* flip a bit */
                if (len > 0)
                    buf[at] ^= (char)(1u << (rng() % 8));
                break;
            case 1: /* insert a byte */
                if (len < seed_len * 2) {
                    memmove(buf + at + 1, buf + at, len - at);
                    buf[at] = dict[rng() % (sizeof dict - 1)];
                    len++;
                }
                break;
            case 2: /* delete a run of bytes */
                if (len > 0) {
                    size_t n = 1 + (size_t)(rng() % 8);
                    if (n > len - at)
                        n = len - at;
                    memmove(buf + at, buf + at + n, len - at - n);
                    len -= n;
                }
                break;
            case 3: /* overwrite a byte */
                if (len > 0)
                    buf[at] = dict[rng() % (sizeof dict - 1)];
                break;
            default: { /* splice in a token */
                const char *t = tokens[rng() % SB_ARRAY_LEN(tokens)];
                size_t n = strlen(t);
                if (len + n <= seed_len * 2) {
                    memmove(buf + at + n, buf + at, len - at);
                    memcpy(buf + at, t, n);
                    len += n;
                }
                break;
            }
            }
        }
        json_t *j = json_loadb(buf, len, 0, NULL);
        if (j == NULL)
            continue;
        loaded++;
        char field[128], msg[256];
        r = NULL;
        int rc = sb_rule_parse(j, &r, field, sizeof field, msg, sizeof msg);
        if (rc == 0) {
            parsed++;
            assert_non_null(r);
            json_t *back = sb_rule_json(r);
            assert_true(json_equal(back, j));
            json_decref(back);
            matched += sb_rule_matches(r, &f);
            sb_rule_facts empty = {0};
            sb_rule_matches(r, &empty);
            int n = 0;
            const sb_rule_action *a = sb_rule_actions(r, &n);
            assert_true(n >= 1 && n <= 20);
            for (int i = 0; i < n; i++)
                assert_true((unsigned)a[i].kind <= SB_ACTION_STOP);
            sb_rule_free(r);
        } else {
            rejected++;
            assert_int_equal(rc, SB_EINVAL);
            assert_null(r);
            assert_true(msg[0] != '\0');
            assert_true(sb_utf8_valid(msg, strlen(msg)));
            assert_true(sb_utf8_valid(field, strlen(field)));
        }
        json_decref(j);
    }
    free(buf);
    print_message("mutations: %d of 2000 loaded as JSON, %d parsed (%d matched), %d rejected\n", loaded, parsed,
                  matched, rejected);
    /* The loop must reach both sides of the parser to be worth running. */
    assert_true(parsed >= 50);
    assert_true(rejected >= 200);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_header_example),      cmocka_unit_test(test_minimal_rule),
        cmocka_unit_test(test_every_action),        cmocka_unit_test(test_time_triggers),
        cmocka_unit_test(test_conditions_parse),    cmocka_unit_test(test_errors_top_level),
        cmocka_unit_test(test_errors_when),         cmocka_unit_test(test_errors_actions),
        cmocka_unit_test(test_errors_invalid_utf8), cmocka_unit_test(test_error_buffers),
        cmocka_unit_test(test_match_text),          cmocka_unit_test(test_match_fields),
        cmocka_unit_test(test_match_age),           cmocka_unit_test(test_match_business_hours),
        cmocka_unit_test(test_match_groups),        cmocka_unit_test(test_disabled_never_matches),
        cmocka_unit_test(test_mutations),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
