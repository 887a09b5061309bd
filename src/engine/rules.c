/* rules.c - parsing, validation and evaluation of automation rules (see
 * rules.h). A rule keeps the JSON it was made from, so export gives back
 * exactly what was saved. */
#include "engine/rules.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/sb.h"

#define MAX_DEPTH   5
#define MAX_KIDS    50
#define MAX_VALUES  100
#define MAX_ACTIONS 20
#define MAX_TEXT    2000
#define MAX_TOKEN   31
#define MAX_MINUTES (366 * 24 * 60)

typedef enum cond_field {
    F_TEXT,
    F_SUBJECT,
    F_CHANNEL,
    F_LANGUAGE,
    F_STATUS,
    F_PRIORITY,
    F_TEAM,
    F_ASSIGNEE,
    F_VIP,
    F_CONTACT_TAG,
    F_TICKET_TAG,
    F_ATTRIBUTE,
    F_AGE,
    F_BUSINESS_HOURS,
} cond_field;

typedef enum cond_op {
    OP_CONTAINS,
    OP_NOT_CONTAINS,
    OP_MATCHES,
    OP_EQ,
    OP_NE,
    OP_IN,
    OP_NOT_IN,
    OP_IS_SET,
    OP_IS_NOT_SET,
    OP_IS,
    OP_HAS,
    OP_NOT_HAS,
    OP_GT,
    OP_GTE,
    OP_LT,
    OP_LTE,
} cond_op;

static const char *const op_names[] = {"contains", "not_contains", "matches",    "eq", "ne",  "in",
                                       "not_in",   "is_set",       "is_not_set", "is", "has", "not_has",
                                       "gt",       "gte",          "lt",         "lte"};

typedef struct cond cond;

struct cond {
    enum { C_ALL, C_ANY, C_LEAF } kind;
    cond *kids;
    int nkids;
    cond_field field;
    cond_op op;
    char **values; /* strings (text, tokens) */
    int nvalues;
    int64_t *ids; /* team / assignee ids */
    int nids;
    int64_t number; /* age minutes, calendar id */
    bool flag;      /* vip, business_hours */
    char *key;      /* attribute name */
    sb_regex *re;
};

struct sb_rule {
    int64_t id;
    bool enabled, once;
    uint32_t triggers; /* bit per sb_trigger */
    int64_t minutes;
    cond when; /* C_ALL with no kids = always */
    sb_rule_action *actions;
    int nactions;
    json_t *source;
};

static const char *const trigger_names[] = {
    "ticket.created",         "message.customer",    "message.agent", "status.changed",
    "priority.changed",       "assignment.changed",  "sla.warning",   "sla.breached",
    "time.no_customer_reply", "time.no_agent_reply", "time.idle",     "task.overdue",
};

static const char *const action_names[] = {"set_priority", "set_status",  "assign_team",   "assign_agent",
                                           "add_tag",      "remove_tag",  "send_template", "add_note",
                                           "notify",       "create_task", "webhook",       "stop"};

static const char *const status_names[] = {"new", "open", "pending", "resolved", "closed"};
static const char *const priority_names[] = {"low", "normal", "high", "urgent"};

const char *sb_trigger_name(sb_trigger t)
{
    return (unsigned)t < SB_ARRAY_LEN(trigger_names) ? trigger_names[t] : "?";
}

static int index_of(const char *z, const char *const *names, size_t n)
{
    for (size_t i = 0; z != NULL && i < n; i++)
        if (strcmp(z, names[i]) == 0)
            return (int)i;
    return -1;
}

/* ---- errors ---- */

typedef struct perr {
    char *field;
    size_t field_cap;
    char *msg;
    size_t msg_cap;
} perr;

static int fail(perr *e, const char *path, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int fail(perr *e, const char *path, const char *fmt, ...)
{
    sb_errorf(e->field, e->field_cap, "%s", path);
    va_list ap;
    va_start(ap, fmt);
    sb_verrorf(e->msg, e->msg_cap, fmt, ap);
    va_end(ap);
    return SB_EINVAL;
}

/* Paths of nested values; a path too long for the buffer is cut (the
 * nesting limits keep real ones short). */
static void sub(char *out, size_t cap, const char *path, const char *key)
{
    int n = snprintf(out, cap, "%s%s%s", path, path[0] ? "." : "", key);
    if (n < 0)
        out[0] = '\0';
}

static void idx(char *out, size_t cap, const char *path, size_t i)
{
    int n = snprintf(out, cap, "%s[%zu]", path, i);
    if (n < 0)
        out[0] = '\0';
}

static bool only_keys(const json_t *obj, const char *const *allowed, size_t n, const char **bad)
{
    const char *key;
    json_t *v;
    json_object_foreach ((json_t *)obj, key, v) {
        (void)v;
        if (index_of(key, allowed, n) < 0) {
            *bad = key;
            return false;
        }
    }
    return true;
}

static bool token_ok(const char *z)
{
    size_t n = strlen(z);
    return n > 0 && n <= MAX_TOKEN && sb_utf8_valid(z, n);
}

/* ---- conditions ---- */

static void cond_clear(cond *c)
{
    for (int i = 0; i < c->nkids; i++)
        cond_clear(&c->kids[i]);
    free(c->kids);
    for (int i = 0; i < c->nvalues; i++)
        free(c->values[i]);
    free(c->values);
    free(c->ids);
    free(c->key);
    sb_regex_free(c->re);
    memset(c, 0, sizeof *c);
}

/* Reads `value` as one string or an array of strings. */
static int read_strings(const json_t *v, cond *c, perr *e, const char *path, bool tokens)
{
    const json_t *arr = v;
    json_t *single = NULL;
    if (json_is_string(v)) {
        single = json_array();
        json_array_append((json_t *)single, (json_t *)v);
        arr = single;
    }
    if (!json_is_array(arr) || json_array_size(arr) == 0 || json_array_size(arr) > MAX_VALUES) {
        json_decref(single);
        return fail(e, path, "must be a string or a non-empty array of at most %d strings", MAX_VALUES);
    }
    c->values = sb_xcalloc(json_array_size(arr), sizeof *c->values);
    for (size_t i = 0; i < json_array_size(arr); i++) {
        const json_t *s = json_array_get(arr, i);
        const char *z = json_string_value(s);
        size_t n = z ? strlen(z) : 0;
        if (z == NULL || n == 0 || n > MAX_TEXT || !sb_utf8_valid(z, n) || (tokens && !token_ok(z))) {
            json_decref(single);
            return fail(e, path, tokens ? "must be non-empty names of at most %d bytes" : "must be non-empty text",
                        MAX_TOKEN);
        }
        c->values[c->nvalues++] = sb_xstrdup(z);
    }
    json_decref(single);
    return 0;
}

static int read_ids(const json_t *v, cond *c, perr *e, const char *path)
{
    size_t n = json_is_array(v) ? json_array_size(v) : 1;
    if ((!json_is_array(v) && !json_is_integer(v)) || n == 0 || n > MAX_VALUES)
        return fail(e, path, "must be an id or a non-empty array of ids");
    c->ids = sb_xcalloc(n, sizeof *c->ids);
    for (size_t i = 0; i < n; i++) {
        const json_t *x = json_is_array(v) ? json_array_get(v, i) : v;
        if (!json_is_integer(x) || json_integer_value(x) <= 0)
            return fail(e, path, "ids are positive integers");
        c->ids[c->nids++] = json_integer_value(x);
    }
    return 0;
}

static int parse_cond(const json_t *j, cond *c, perr *e, const char *path, int depth);

static int parse_group(const json_t *arr, cond *c, perr *e, const char *path, int depth)
{
    if (!json_is_array(arr) || json_array_size(arr) == 0 || json_array_size(arr) > MAX_KIDS)
        return fail(e, path, "must be a non-empty array of at most %d conditions", MAX_KIDS);
    c->kids = sb_xcalloc(json_array_size(arr), sizeof *c->kids);
    for (size_t i = 0; i < json_array_size(arr); i++) {
        char p[256];
        idx(p, sizeof p, path, i);
        c->nkids++;
        int rc = parse_cond(json_array_get(arr, i), &c->kids[i], e, p, depth + 1);
        if (rc != 0)
            return rc;
    }
    return 0;
}

static int parse_leaf(const json_t *j, cond *c, perr *e, const char *path)
{
    static const char *const keys[] = {"field", "op", "value", "calendar"};
    const char *bad = NULL;
    char p[256];
    if (!only_keys(j, keys, SB_ARRAY_LEN(keys), &bad)) {
        sub(p, sizeof p, path, bad);
        return fail(e, p, "unknown key \"%s\"", bad);
    }
    const char *field = json_string_value(json_object_get(j, "field"));
    const char *op = json_string_value(json_object_get(j, "op"));
    const json_t *value = json_object_get(j, "value");
    c->kind = C_LEAF;
    sub(p, sizeof p, path, "field");
    if (field == NULL)
        return fail(e, p, "is required: a field name");
    static const char *const fields[] = {"text",
                                         "subject",
                                         "channel",
                                         "language",
                                         "status",
                                         "priority",
                                         "team",
                                         "assignee",
                                         "contact.vip",
                                         "contact.tag",
                                         "ticket.tag",
                                         "contact.attributes",
                                         "ticket.age_minutes",
                                         "business_hours"};
    int f = index_of(field, fields, SB_ARRAY_LEN(fields));
    if (f < 0 && strncmp(field, "contact.attributes.", 19) == 0 && token_ok(field + 19)) {
        f = F_ATTRIBUTE;
        c->key = sb_xstrdup(field + 19);
    } else if (f == F_ATTRIBUTE) {
        f = -1;
    }
    if (f < 0)
        return fail(e, p, "unknown field \"%s\"", field);
    c->field = (cond_field)f;
    sub(p, sizeof p, path, "op");
    int o = index_of(op, op_names, SB_ARRAY_LEN(op_names));
    if (o < 0)
        return fail(e, p, op == NULL ? "is required" : "unknown operator \"%s\"", op ? op : "");
    c->op = (cond_op)o;
    /* which operators each field takes */
    static const uint32_t allowed[] = {
        [F_TEXT] = 1u << OP_CONTAINS | 1u << OP_NOT_CONTAINS | 1u << OP_MATCHES,
        [F_SUBJECT] = 1u << OP_CONTAINS | 1u << OP_NOT_CONTAINS | 1u << OP_MATCHES,
        [F_CHANNEL] = 1u << OP_EQ | 1u << OP_NE | 1u << OP_IN | 1u << OP_NOT_IN,
        [F_LANGUAGE] =
            1u << OP_EQ | 1u << OP_NE | 1u << OP_IN | 1u << OP_NOT_IN | 1u << OP_IS_SET | 1u << OP_IS_NOT_SET,
        [F_STATUS] = 1u << OP_EQ | 1u << OP_NE | 1u << OP_IN | 1u << OP_NOT_IN,
        [F_PRIORITY] = 1u << OP_EQ | 1u << OP_NE | 1u << OP_IN | 1u << OP_NOT_IN,
        [F_TEAM] = 1u << OP_EQ | 1u << OP_NE | 1u << OP_IN | 1u << OP_NOT_IN | 1u << OP_IS_SET | 1u << OP_IS_NOT_SET,
        [F_ASSIGNEE] =
            1u << OP_EQ | 1u << OP_NE | 1u << OP_IN | 1u << OP_NOT_IN | 1u << OP_IS_SET | 1u << OP_IS_NOT_SET,
        [F_VIP] = 1u << OP_IS,
        [F_CONTACT_TAG] = 1u << OP_HAS | 1u << OP_NOT_HAS,
        [F_TICKET_TAG] = 1u << OP_HAS | 1u << OP_NOT_HAS,
        [F_ATTRIBUTE] = 1u << OP_EQ | 1u << OP_NE | 1u << OP_IN | 1u << OP_NOT_IN | 1u << OP_CONTAINS |
                        1u << OP_IS_SET | 1u << OP_IS_NOT_SET,
        [F_AGE] = 1u << OP_GT | 1u << OP_GTE | 1u << OP_LT | 1u << OP_LTE,
        [F_BUSINESS_HOURS] = 1u << OP_IS,
    };
    if (!(allowed[c->field] & (1u << c->op)))
        return fail(e, p, "operator \"%s\" does not apply to field \"%s\"", op, field);
    const json_t *cal = json_object_get(j, "calendar");
    if (cal != NULL && c->field != F_BUSINESS_HOURS) {
        sub(p, sizeof p, path, "calendar");
        return fail(e, p, "only business_hours takes a calendar");
    }
    bool needs_value = c->op != OP_IS_SET && c->op != OP_IS_NOT_SET;
    sub(p, sizeof p, path, "value");
    if (!needs_value) {
        if (value != NULL)
            return fail(e, p, "operator \"%s\" takes no value", op);
        return 0;
    }
    if (value == NULL)
        return fail(e, p, "is required");
    switch (c->field) {
    case F_TEXT:
    case F_SUBJECT:
        if (c->op == OP_MATCHES) {
            const char *pattern = json_string_value(value);
            if (pattern == NULL)
                return fail(e, p, "must be a regular expression");
            char err[160];
            if (sb_regex_compile(pattern, &c->re, err, sizeof err) != 0)
                return fail(e, p, "invalid regular expression: %s", err);
            return 0;
        }
        return read_strings(value, c, e, p, false);
    case F_CHANNEL:
    case F_LANGUAGE:
    case F_CONTACT_TAG:
    case F_TICKET_TAG:
    case F_ATTRIBUTE: return read_strings(value, c, e, p, c->field != F_ATTRIBUTE);
    case F_STATUS:
    case F_PRIORITY: {
        int rc = read_strings(value, c, e, p, true);
        const char *const *names = c->field == F_STATUS ? status_names : priority_names;
        size_t n = c->field == F_STATUS ? SB_ARRAY_LEN(status_names) : SB_ARRAY_LEN(priority_names);
        for (int i = 0; rc == 0 && i < c->nvalues; i++)
            if (index_of(c->values[i], names, n) < 0)
                rc = fail(e, p, "unknown %s \"%s\"", c->field == F_STATUS ? "status" : "priority", c->values[i]);
        return rc;
    }
    case F_TEAM:
    case F_ASSIGNEE: return read_ids(value, c, e, p);
    case F_VIP:
        if (!json_is_boolean(value))
            return fail(e, p, "must be true or false");
        c->flag = json_is_true(value);
        return 0;
    case F_AGE:
        if (!json_is_integer(value) || json_integer_value(value) < 0 || json_integer_value(value) > MAX_MINUTES)
            return fail(e, p, "must be a number of minutes");
        c->number = json_integer_value(value);
        return 0;
    case F_BUSINESS_HOURS:
        if (!json_is_boolean(value))
            return fail(e, p, "must be true or false");
        c->flag = json_is_true(value);
        sub(p, sizeof p, path, "calendar");
        if (!json_is_integer(cal) || json_integer_value(cal) <= 0)
            return fail(e, p, "is required: the id of a calendar");
        c->number = json_integer_value(cal);
        return 0;
    }
    return fail(e, p, "is not supported");
}

static int parse_cond(const json_t *j, cond *c, perr *e, const char *path, int depth)
{
    if (!json_is_object(j))
        return fail(e, path, "must be an object");
    if (depth > MAX_DEPTH)
        return fail(e, path, "conditions nest at most %d deep", MAX_DEPTH);
    const json_t *all = json_object_get(j, "all"), *any = json_object_get(j, "any");
    if (all != NULL || any != NULL) {
        if (json_object_size(j) != 1)
            return fail(e, path, "a group has exactly one key, \"all\" or \"any\"");
        char p[256];
        sub(p, sizeof p, path, all != NULL ? "all" : "any");
        c->kind = all != NULL ? C_ALL : C_ANY;
        return parse_group(all != NULL ? all : any, c, e, p, depth);
    }
    return parse_leaf(j, c, e, path);
}

/* ---- actions ---- */

/* A URL goes into an HTTP request line: no spaces, no control characters
 * (a "\r\n" would let a rule write its own headers), printable ASCII only
 * (non-ASCII must be percent-encoded). */
static bool url_chars_ok(const char *url)
{
    for (const unsigned char *c = (const unsigned char *)url; *c != '\0'; c++)
        if (*c <= 0x20 || *c >= 0x7f)
            return false;
    return true;
}

/* Whether `word` is one of the space-separated words of `list`. */
static bool word_in(const char *list, const char *word)
{
    size_t n = strlen(word);
    for (const char *p = list; *p != '\0';) {
        size_t len = strcspn(p, " ");
        if (len == n && memcmp(p, word, n) == 0)
            return true;
        p += len;
        while (*p == ' ')
            p++;
    }
    return false;
}

static int parse_action(const json_t *j, sb_rule_action *a, perr *e, const char *path)
{
    char p[256];
    if (!json_is_object(j))
        return fail(e, path, "must be an object");
    static const char *const keys[] = {"type", "value", "id", "target", "title", "due_minutes", "assignee", "url"};
    const char *bad = NULL;
    if (!only_keys(j, keys, SB_ARRAY_LEN(keys), &bad)) {
        sub(p, sizeof p, path, bad);
        return fail(e, p, "unknown key \"%s\"", bad);
    }
    const char *type = json_string_value(json_object_get(j, "type"));
    int k = index_of(type, action_names, SB_ARRAY_LEN(action_names));
    sub(p, sizeof p, path, "type");
    if (k < 0)
        return fail(e, p, type == NULL ? "is required" : "unknown action \"%s\"", type ? type : "");
    a->kind = (sb_action_kind)k;
    const json_t *value = json_object_get(j, "value"), *id = json_object_get(j, "id");
    const char *str = json_string_value(value);
    /* every key an action does not use is an error, so typos show */
    static const char *const uses[] = {
        [SB_ACTION_SET_PRIORITY] = "value", [SB_ACTION_SET_STATUS] = "value",
        [SB_ACTION_ASSIGN_TEAM] = "id",     [SB_ACTION_ASSIGN_AGENT] = "id value",
        [SB_ACTION_ADD_TAG] = "value",      [SB_ACTION_REMOVE_TAG] = "value",
        [SB_ACTION_SEND_TEMPLATE] = "id",   [SB_ACTION_ADD_NOTE] = "value",
        [SB_ACTION_NOTIFY] = "target id",   [SB_ACTION_CREATE_TASK] = "title due_minutes assignee",
        [SB_ACTION_WEBHOOK] = "url",        [SB_ACTION_STOP] = "",
    };
    const char *key;
    json_t *v;
    json_object_foreach ((json_t *)j, key, v) {
        (void)v;
        if (strcmp(key, "type") == 0)
            continue;
        if (!word_in(uses[a->kind], key)) {
            sub(p, sizeof p, path, key);
            return fail(e, p, "action \"%s\" takes no \"%s\"", type, key);
        }
    }
    sub(p, sizeof p, path, "value");
    switch (a->kind) {
    case SB_ACTION_SET_PRIORITY:
        if (index_of(str, priority_names, SB_ARRAY_LEN(priority_names)) < 0)
            return fail(e, p, "must be one of low, normal, high, urgent");
        break;
    case SB_ACTION_SET_STATUS:
        if (index_of(str, status_names, SB_ARRAY_LEN(status_names)) < 0)
            return fail(e, p, "must be one of new, open, pending, resolved, closed");
        break;
    case SB_ACTION_ASSIGN_TEAM:
    case SB_ACTION_SEND_TEMPLATE:
        sub(p, sizeof p, path, "id");
        if (!json_is_integer(id) || json_integer_value(id) <= 0)
            return fail(e, p, "is required: a positive id");
        a->id = json_integer_value(id);
        return 0;
    case SB_ACTION_ASSIGN_AGENT:
        if (id != NULL) {
            sub(p, sizeof p, path, "id");
            if (!json_is_integer(id) || json_integer_value(id) <= 0 || value != NULL)
                return fail(e, p, "an agent id, or instead \"value\": \"contact_owner\" / \"last_responder\"");
            a->id = json_integer_value(id);
            return 0;
        }
        if (str == NULL || (strcmp(str, "contact_owner") != 0 && strcmp(str, "last_responder") != 0))
            return fail(e, p, "must be \"contact_owner\" or \"last_responder\" (or give \"id\")");
        break;
    case SB_ACTION_ADD_TAG:
    case SB_ACTION_REMOVE_TAG:
        if (str == NULL || !token_ok(str))
            return fail(e, p, "must be a tag of 1 to %d bytes", MAX_TOKEN);
        break;
    case SB_ACTION_ADD_NOTE:
        if (str == NULL || str[0] == '\0' || strlen(str) > MAX_TEXT || !sb_utf8_valid(str, strlen(str)))
            return fail(e, p, "must be text of 1 to %d bytes", MAX_TEXT);
        break;
    case SB_ACTION_NOTIFY: {
        const char *target = json_string_value(json_object_get(j, "target"));
        if (id != NULL) {
            sub(p, sizeof p, path, "id");
            if (!json_is_integer(id) || json_integer_value(id) <= 0 || target != NULL)
                return fail(e, p, "an agent id, or instead a \"target\"");
            a->id = json_integer_value(id);
            return 0;
        }
        sub(p, sizeof p, path, "target");
        if (target == NULL ||
            (strcmp(target, "assignee") != 0 && strcmp(target, "team") != 0 && strcmp(target, "supervisor") != 0))
            return fail(e, p, "must be \"assignee\", \"team\" or \"supervisor\" (or give \"id\")");
        str = target;
        break;
    }
    case SB_ACTION_CREATE_TASK: {
        const char *title = json_string_value(json_object_get(j, "title"));
        const json_t *due = json_object_get(j, "due_minutes"), *who = json_object_get(j, "assignee");
        sub(p, sizeof p, path, "title");
        if (title == NULL || title[0] == '\0' || strlen(title) > 200 || !sb_utf8_valid(title, strlen(title)))
            return fail(e, p, "is required: 1 to 200 bytes");
        sub(p, sizeof p, path, "due_minutes");
        if (!json_is_integer(due) || json_integer_value(due) < 0 || json_integer_value(due) > MAX_MINUTES)
            return fail(e, p, "is required: minutes from now");
        sub(p, sizeof p, path, "assignee");
        if (who != NULL && (!json_is_integer(who) || json_integer_value(who) <= 0))
            return fail(e, p, "must be an agent id");
        a->minutes = json_integer_value(due);
        a->id = who != NULL ? json_integer_value(who) : 0;
        str = title;
        break;
    }
    case SB_ACTION_WEBHOOK: {
        const char *url = json_string_value(json_object_get(j, "url"));
        sub(p, sizeof p, path, "url");
        if (url == NULL || strlen(url) > 2000 || !url_chars_ok(url) ||
            (strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0))
            return fail(e, p, "must be an http:// or https:// URL without spaces or control characters");
        str = url;
        break;
    }
    case SB_ACTION_STOP: return 0;
    }
    a->value = str != NULL ? sb_xstrdup(str) : NULL;
    return 0;
}

/* ---- rules ---- */

void sb_rule_free(sb_rule *r)
{
    if (r == NULL)
        return;
    cond_clear(&r->when);
    for (int i = 0; i < r->nactions; i++)
        free(r->actions[i].value);
    free(r->actions);
    json_decref(r->source);
    free(r);
}

int sb_rule_parse(const json_t *j, sb_rule **out, char *field, size_t field_cap, char *msg, size_t msg_cap)
{
    perr e = {field, field_cap, msg, msg_cap};
    *out = NULL;
    if (!json_is_object(j))
        return fail(&e, "", "a rule is a JSON object");
    static const char *const keys[] = {"id", "name", "enabled", "on", "once_per_ticket", "minutes", "when", "actions"};
    const char *bad = NULL;
    if (!only_keys(j, keys, SB_ARRAY_LEN(keys), &bad))
        return fail(&e, bad, "unknown key \"%s\"", bad);
    sb_rule *r = sb_xcalloc(1, sizeof *r);
    r->when.kind = C_ALL;
    int rc;
    const json_t *id = json_object_get(j, "id"), *name = json_object_get(j, "name"),
                 *enabled = json_object_get(j, "enabled"), *on = json_object_get(j, "on"),
                 *once = json_object_get(j, "once_per_ticket"), *minutes = json_object_get(j, "minutes"),
                 *when = json_object_get(j, "when"), *actions = json_object_get(j, "actions");
    if (!json_is_integer(id) || json_integer_value(id) <= 0) {
        rc = fail(&e, "id", "is required: a positive integer");
        goto fail;
    }
    r->id = json_integer_value(id);
    const char *name_z = json_string_value(name);
    if (name_z == NULL || name_z[0] == '\0' || strlen(name_z) > 200 || !sb_utf8_valid(name_z, strlen(name_z))) {
        rc = fail(&e, "name", "is required: 1 to 200 bytes of text");
        goto fail;
    }
    if ((enabled != NULL && !json_is_boolean(enabled)) || (once != NULL && !json_is_boolean(once))) {
        rc = fail(&e, enabled != NULL && !json_is_boolean(enabled) ? "enabled" : "once_per_ticket",
                  "must be true or false");
        goto fail;
    }
    r->enabled = enabled == NULL || json_is_true(enabled);
    r->once = json_is_true(once);
    if (!json_is_array(on) || json_array_size(on) == 0) {
        rc = fail(&e, "on", "is required: a non-empty array of events");
        goto fail;
    }
    bool timed = false;
    for (size_t i = 0; i < json_array_size(on); i++) {
        int t = index_of(json_string_value(json_array_get(on, i)), trigger_names, SB_ARRAY_LEN(trigger_names));
        if (t < 0) {
            char p[32];
            idx(p, sizeof p, "on", i);
            rc = fail(&e, p,
                      "unknown event; one of ticket.created, message.customer, message.agent, "
                      "status.changed, priority.changed, assignment.changed, sla.warning, sla.breached, "
                      "time.no_customer_reply, time.no_agent_reply, time.idle, task.overdue");
            goto fail;
        }
        r->triggers |= 1u << t;
        timed |= t == SB_TRIGGER_NO_CUSTOMER_REPLY || t == SB_TRIGGER_NO_AGENT_REPLY || t == SB_TRIGGER_IDLE;
    }
    if (timed != (minutes != NULL)) {
        rc = fail(&e, "minutes", timed ? "is required with a time.* event" : "applies only to time.* events");
        goto fail;
    }
    if (timed) {
        if (!json_is_integer(minutes) || json_integer_value(minutes) <= 0 ||
            json_integer_value(minutes) > MAX_MINUTES) {
            rc = fail(&e, "minutes", "must be 1 to %d", MAX_MINUTES);
            goto fail;
        }
        r->minutes = json_integer_value(minutes);
    }
    if (when != NULL) {
        rc = parse_cond(when, &r->when, &e, "when", 1);
        if (rc != 0)
            goto fail;
    }
    if (!json_is_array(actions) || json_array_size(actions) == 0 || json_array_size(actions) > MAX_ACTIONS) {
        rc = fail(&e, "actions", "is required: 1 to %d actions", MAX_ACTIONS);
        goto fail;
    }
    r->actions = sb_xcalloc(json_array_size(actions), sizeof *r->actions);
    for (size_t i = 0; i < json_array_size(actions); i++) {
        char p[32];
        idx(p, sizeof p, "actions", i);
        r->nactions++;
        rc = parse_action(json_array_get(actions, i), &r->actions[i], &e, p);
        if (rc != 0)
            goto fail;
    }
    r->source = json_deep_copy(j);
    *out = r;
    return 0;
fail:
    sb_rule_free(r);
    return rc;
}

json_t *sb_rule_json(const sb_rule *r)
{
    return json_deep_copy(r->source);
}

int64_t sb_rule_id(const sb_rule *r)
{
    return r->id;
}

bool sb_rule_enabled(const sb_rule *r)
{
    return r->enabled;
}

bool sb_rule_once_per_ticket(const sb_rule *r)
{
    return r->once;
}

bool sb_rule_has_trigger(const sb_rule *r, sb_trigger t)
{
    return (unsigned)t < SB_TRIGGER_COUNT && (r->triggers & (1u << t));
}

int64_t sb_rule_minutes(const sb_rule *r)
{
    return r->minutes;
}

const sb_rule_action *sb_rule_actions(const sb_rule *r, int *n)
{
    *n = r->nactions;
    return r->actions;
}

/* ---- evaluation ---- */

static bool in_strings(const cond *c, const char *z)
{
    for (int i = 0; z != NULL && i < c->nvalues; i++)
        if (strcmp(c->values[i], z) == 0)
            return true;
    return false;
}

static bool in_list(const char *const *list, int n, const char *z)
{
    for (int i = 0; i < n; i++)
        if (strcmp(list[i], z) == 0)
            return true;
    return false;
}

static bool text_test(const cond *c, const char *text)
{
    if (text == NULL)
        text = "";
    if (c->op == OP_MATCHES)
        return sb_regex_match(c->re, text);
    bool any = false;
    for (int i = 0; !any && i < c->nvalues; i++)
        any = sb_text_contains(text, c->values[i]);
    return c->op == OP_CONTAINS ? any : !any;
}

static bool value_test(const cond *c, const char *z)
{
    switch (c->op) {
    case OP_EQ:
    case OP_IN: return in_strings(c, z);
    case OP_NE:
    case OP_NOT_IN: return !in_strings(c, z);
    case OP_IS_SET: return z != NULL && z[0] != '\0';
    case OP_IS_NOT_SET: return z == NULL || z[0] == '\0';
    case OP_CONTAINS: return z != NULL && text_test(c, z);
    default: return false;
    }
}

static bool id_test(const cond *c, int64_t id)
{
    bool in = false;
    for (int i = 0; i < c->nids; i++)
        in |= c->ids[i] == id;
    switch (c->op) {
    case OP_EQ:
    case OP_IN: return in;
    case OP_NE:
    case OP_NOT_IN: return !in;
    case OP_IS_SET: return id != 0;
    case OP_IS_NOT_SET: return id == 0;
    default: return false;
    }
}

static bool leaf_test(const cond *c, const sb_rule_facts *f)
{
    switch (c->field) {
    case F_TEXT: return text_test(c, f->text);
    case F_SUBJECT: return text_test(c, f->subject);
    case F_CHANNEL: return value_test(c, f->channel);
    case F_LANGUAGE: return value_test(c, f->language);
    case F_STATUS: return value_test(c, f->status);
    case F_PRIORITY: return value_test(c, f->priority);
    case F_TEAM: return id_test(c, f->team_id);
    case F_ASSIGNEE: return id_test(c, f->assignee_id);
    case F_VIP: return f->vip == c->flag;
    case F_CONTACT_TAG:
    case F_TICKET_TAG: {
        bool has = c->field == F_CONTACT_TAG ? in_list(f->contact_tags, f->ncontact_tags, c->values[0])
                                             : in_list(f->ticket_tags, f->nticket_tags, c->values[0]);
        for (int i = 1; !has && i < c->nvalues; i++)
            has = c->field == F_CONTACT_TAG ? in_list(f->contact_tags, f->ncontact_tags, c->values[i])
                                            : in_list(f->ticket_tags, f->nticket_tags, c->values[i]);
        return c->op == OP_HAS ? has : !has;
    }
    case F_ATTRIBUTE: {
        const char *v = NULL;
        for (int i = 0; v == NULL && i < f->nattrs; i++)
            if (strcmp(f->attr_keys[i], c->key) == 0)
                v = f->attr_values[i];
        return value_test(c, v);
    }
    case F_AGE:
        switch (c->op) {
        case OP_GT: return f->age_minutes > c->number;
        case OP_GTE: return f->age_minutes >= c->number;
        case OP_LT: return f->age_minutes < c->number;
        case OP_LTE: return f->age_minutes <= c->number;
        default: return false;
        }
    case F_BUSINESS_HOURS: return f->in_business_hours != NULL && f->in_business_hours(f->ctx, c->number) == c->flag;
    }
    return false;
}

static bool cond_test(const cond *c, const sb_rule_facts *f)
{
    switch (c->kind) {
    case C_LEAF: return leaf_test(c, f);
    case C_ALL:
        for (int i = 0; i < c->nkids; i++)
            if (!cond_test(&c->kids[i], f))
                return false;
        return true;
    case C_ANY:
        for (int i = 0; i < c->nkids; i++)
            if (cond_test(&c->kids[i], f))
                return true;
        return false;
    }
    return false;
}

bool sb_rule_matches(const sb_rule *r, const sb_rule_facts *f)
{
    return r->enabled && cond_test(&r->when, f);
}
