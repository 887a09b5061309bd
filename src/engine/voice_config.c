/* voice_config.c - validation of phone number, IVR menu and forwarding
 * scheme documents (see voice_config.h). */
#include "engine/voice_config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_NAME       200
#define MAX_NUMBER_LEN 20

static int bad(sb_config_error *err, const char *field, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int bad(sb_config_error *err, const char *field, const char *fmt, ...)
{
    sb_errorf(err->field, sizeof err->field, "%s", field);
    va_list ap;
    va_start(ap, fmt);
    sb_verrorf(err->message, sizeof err->message, fmt, ap);
    va_end(ap);
    return SB_EINVAL;
}

static bool in_list(const char *key, const char *const *allowed)
{
    for (const char *const *a = allowed; *a != NULL; a++)
        if (strcmp(key, *a) == 0)
            return true;
    return false;
}

/* Unknown keys are errors, named with `prefix` ("", "options[2]."). */
static int only(const json_t *obj, const char *const *allowed, const char *prefix, sb_config_error *err)
{
    const char *key;
    json_t *v;
    json_object_foreach ((json_t *)obj, key, v) {
        (void)v;
        if (!in_list(key, allowed)) {
            char field[96];
            sb_errorf(field, sizeof field, "%s%s", prefix, key);
            return bad(err, field, "unknown field \"%s\"", key);
        }
    }
    return 0;
}

static int id_and_name(const json_t *doc, sb_config_error *err)
{
    if (!json_is_object(doc))
        return bad(err, "", "must be a JSON object");
    const json_t *id = json_object_get(doc, "id");
    if (!json_is_integer(id) || json_integer_value(id) <= 0)
        return bad(err, "id", "must be a positive integer");
    const char *name = json_string_value(json_object_get(doc, "name"));
    if (name == NULL || name[0] == '\0' || strlen(name) > MAX_NAME || !sb_utf8_valid(name, strlen(name)))
        return bad(err, "name", "is required: 1 to %d bytes of text", MAX_NAME);
    return 0;
}

int sb_ivr_digit_slot(char digit)
{
    if (digit >= '0' && digit <= '9')
        return digit - '0';
    if (digit == '*')
        return 10;
    if (digit == '#')
        return 11;
    return -1;
}

static const struct action_kind {
    const char *name;
    sb_ivr_do what;
    const char *id_key; /* NULL: takes no id */
    const char *refers; /* what the id names, for messages */
} action_kinds[] = {
    {"menu", SB_IVR_DO_MENU, "menu_id", "menu"},
    {"submenu", SB_IVR_DO_MENU, "menu_id", "menu"},
    {"queue", SB_IVR_DO_QUEUE, "team_id", "team"},
    {"agent", SB_IVR_DO_AGENT, "agent_id", "agent"},
    {"voicemail", SB_IVR_DO_VOICEMAIL, "team_id", "team"},
    {"hangup", SB_IVR_DO_HANGUP, NULL, NULL},
    {"repeat", SB_IVR_DO_REPEAT, NULL, NULL},
    {"back", SB_IVR_DO_BACK, NULL, NULL},
    {"operator", SB_IVR_DO_OPERATOR, NULL, NULL},
    {"scheme", SB_IVR_DO_SCHEME, "scheme_id", "forwarding scheme"},
};

const char *sb_ivr_do_name(sb_ivr_do what)
{
    for (size_t i = 0; i < SB_ARRAY_LEN(action_kinds); i++)
        if (action_kinds[i].what == what)
            return action_kinds[i].name;
    return "none";
}

/* Which actions a place allows, as a NULL-terminated list of names. A
 * scheme only answers a number (never from a menu, nor as a scheme's own
 * destination), so a scheme cannot lead back to itself. */
static const char *const number_actions[] = {"menu", "queue", "agent", "voicemail", "hangup", "scheme", NULL};
static const char *const scheme_end_actions[] = {"menu", "queue", "agent", "voicemail", "hangup", NULL};
static const char *const option_actions[] = {"queue",  "agent", "voicemail", "hangup", "submenu",
                                             "repeat", "back",  "operator",  NULL};
static const char *const fallback_actions[] = {"queue", "agent", "voicemail", "hangup", "operator", NULL};
static const char *const operator_actions[] = {"queue", "agent", "voicemail", "hangup", NULL};

static bool prompt_valid(const char *z)
{
    size_t n = z != NULL ? strlen(z) : 0;
    return n > 0 && n < SB_IVR_PROMPT_MAX && strspn(z, "abcdefghijklmnopqrstuvwxyz0123456789_") == n;
}

static int prompt_field(const json_t *obj, const char *key, const char *field, bool required, char *out,
                        sb_config_error *err)
{
    const json_t *v = json_object_get(obj, key);
    if (v == NULL || json_is_null(v)) {
        if (required)
            return bad(err, field, "is required: a prompt name such as \"menu_main\"");
        return 0;
    }
    const char *z = json_string_value(v);
    if (!prompt_valid(z))
        return bad(err, field, "must be a prompt name: 1 to %d bytes of a-z, 0-9 and _ (\"menu_main\")",
                   SB_IVR_PROMPT_MAX - 1);
    snprintf(out, SB_IVR_PROMPT_MAX, "%s", z);
    return 0;
}

static void add_ref(int64_t *list, int *n, size_t cap, int64_t id)
{
    if ((size_t)*n < cap)
        list[(*n)++] = id;
}

#define ADD_REF(refs, what, id) add_ref((refs)->what, &(refs)->n##what, SB_ARRAY_LEN((refs)->what), (id))

/* One destination object at `prefix` ("entry.", "options[1]."); `option`
 * allows its "digit" key. */
static int dest_parse(const json_t *obj, const char *prefix, const char *const *allowed, bool option,
                      sb_ivr_target *out, sb_config_refs *refs, sb_config_error *err)
{
    char field[96], where[96];
    snprintf(where, sizeof where, "%.*s", (int)(strlen(prefix) > 0 ? strlen(prefix) - 1 : 0), prefix);
    if (!json_is_object(obj))
        return bad(err, where, "must be an object such as {\"action\": \"queue\", \"team_id\": 1}");
    sb_errorf(field, sizeof field, "%saction", prefix);
    const char *name = json_string_value(json_object_get(obj, "action"));
    const struct action_kind *k = NULL;
    for (size_t i = 0; name != NULL && i < SB_ARRAY_LEN(action_kinds); i++)
        if (strcmp(name, action_kinds[i].name) == 0)
            k = &action_kinds[i];
    if (k == NULL || !in_list(k->name, allowed)) {
        char list[160] = "";
        size_t len = 0;
        for (const char *const *a = allowed; *a != NULL; a++)
            len += (size_t)snprintf(list + len, sizeof list - len, "%s%s", len ? ", " : "", *a);
        if (name == NULL)
            return bad(err, field, "is required: one of %s", list);
        return bad(err, field, "unknown action \"%.40s\" here; one of %s", name, list);
    }
    bool ends = k->what == SB_IVR_DO_QUEUE || k->what == SB_IVR_DO_AGENT || k->what == SB_IVR_DO_VOICEMAIL ||
                k->what == SB_IVR_DO_HANGUP || k->what == SB_IVR_DO_SCHEME;
    const char *keys[5] = {"action", NULL, NULL, NULL, NULL};
    int nk = 1;
    if (k->id_key != NULL)
        keys[nk++] = k->id_key;
    if (ends)
        keys[nk++] = "prompt";
    if (option)
        keys[nk++] = "digit";
    int rc = only(obj, keys, prefix, err);
    if (rc != 0)
        return rc;
    *out = (sb_ivr_target){.what = k->what};
    if (k->id_key != NULL) {
        sb_errorf(field, sizeof field, "%s%s", prefix, k->id_key);
        const json_t *id = json_object_get(obj, k->id_key);
        if (!json_is_integer(id) || json_integer_value(id) <= 0)
            return bad(err, field, "is required: the id of a %s", k->refers);
        out->id = json_integer_value(id);
        if (refs != NULL) {
            if (k->what == SB_IVR_DO_MENU)
                ADD_REF(refs, menus, out->id);
            else if (k->what == SB_IVR_DO_SCHEME)
                ADD_REF(refs, schemes, out->id);
            else if (k->what == SB_IVR_DO_AGENT)
                ADD_REF(refs, agents, out->id);
            else
                ADD_REF(refs, teams, out->id);
        }
    }
    if (ends) {
        sb_errorf(field, sizeof field, "%sprompt", prefix);
        if ((rc = prompt_field(obj, "prompt", field, false, out->prompt, err)) != 0)
            return rc;
    }
    return 0;
}

/* An optional destination `key` of `doc`. */
static int dest_field(const json_t *doc, const char *key, const char *const *allowed, sb_ivr_target *out,
                      sb_config_refs *refs, sb_config_error *err)
{
    const json_t *v = json_object_get(doc, key);
    if (v == NULL || json_is_null(v))
        return 0;
    char prefix[48];
    snprintf(prefix, sizeof prefix, "%s.", key);
    return dest_parse(v, prefix, allowed, false, out, refs, err);
}

static int int_field(const json_t *doc, const char *key, int lo, int hi, int def, int *out, sb_config_error *err)
{
    const json_t *v = json_object_get(doc, key);
    *out = def;
    if (v == NULL || json_is_null(v))
        return 0;
    if (!json_is_integer(v) || json_integer_value(v) < lo || json_integer_value(v) > hi)
        return bad(err, key, "must be %d to %d", lo, hi);
    *out = (int)json_integer_value(v);
    return 0;
}

/* 1 to MAX_NUMBER_LEN digits, optionally after a '+'. */
static bool number_valid(const char *number)
{
    size_t n = number != NULL ? strlen(number) : 0, plus = n > 0 && number[0] == '+';
    return n > plus && n - plus <= MAX_NUMBER_LEN && strspn(number + plus, "0123456789") == n - plus;
}

/* ---- phone numbers ---- */

static int number_parse(const json_t *doc, sb_phone_number *p, sb_config_refs *refs, sb_config_error *err)
{
    static const char *const keys[] = {"id",          "name",     "number",   "language",     "entry",  "calendar_id",
                                       "after_hours", "holidays", "operator", "record_calls", "rating", NULL};
    int rc = id_and_name(doc, err);
    if (rc == 0)
        rc = only(doc, keys, "", err);
    if (rc != 0)
        return rc;
    *p = (sb_phone_number){.id = json_integer_value(json_object_get(doc, "id"))};
    const char *number = json_string_value(json_object_get(doc, "number"));
    if (!number_valid(number))
        return bad(err, "number", "is required: 1 to %d digits, optionally after a '+' (\"100\", \"+74951234567\")",
                   MAX_NUMBER_LEN);
    snprintf(p->number, sizeof p->number, "%s", number);
    snprintf(p->language, sizeof p->language, "ru");
    const json_t *lang = json_object_get(doc, "language");
    if (lang != NULL && !json_is_null(lang)) {
        const char *z = json_string_value(lang);
        if (z == NULL || (strcmp(z, "ru") != 0 && strcmp(z, "en") != 0))
            return bad(err, "language", "must be \"ru\" or \"en\" (the languages prompts are recorded in)");
        snprintf(p->language, sizeof p->language, "%s", z);
    }
    const json_t *entry = json_object_get(doc, "entry");
    if (entry == NULL || json_is_null(entry))
        return bad(err, "entry",
                   "is required: what answers the number, such as {\"action\": \"menu\", \"menu_id\": 1}");
    if ((rc = dest_field(doc, "entry", number_actions, &p->entry, refs, err)) != 0)
        return rc;
    const json_t *cal = json_object_get(doc, "calendar_id");
    if (cal != NULL && !json_is_null(cal)) {
        if (!json_is_integer(cal) || json_integer_value(cal) <= 0)
            return bad(err, "calendar_id", "must be the id of a calendar");
        p->calendar_id = json_integer_value(cal);
        if (refs != NULL)
            ADD_REF(refs, calendars, p->calendar_id);
    }
    if ((rc = dest_field(doc, "after_hours", number_actions, &p->after_hours, refs, err)) != 0 ||
        (rc = dest_field(doc, "holidays", number_actions, &p->holidays, refs, err)) != 0 ||
        (rc = dest_field(doc, "operator", operator_actions, &p->operator_target, refs, err)) != 0)
        return rc;
    if (p->calendar_id == 0 && (p->after_hours.what != SB_IVR_DO_NONE || p->holidays.what != SB_IVR_DO_NONE))
        return bad(err, p->after_hours.what != SB_IVR_DO_NONE ? "after_hours" : "holidays",
                   "needs \"calendar_id\": the calendar tells business hours, after hours and holidays apart");
    const json_t *rec = json_object_get(doc, "record_calls");
    if (rec != NULL && !json_is_null(rec) && !json_is_boolean(rec))
        return bad(err, "record_calls", "must be true, false, or null (as the installation's [sip] record_calls says)");
    p->record_calls = json_is_true(rec) ? 1 : json_is_false(rec) ? -1 : 0;
    const json_t *rating = json_object_get(doc, "rating");
    if (rating != NULL && !json_is_null(rating) && !json_is_boolean(rating))
        return bad(err, "rating", "must be true or false (the caller rates calls an agent answered)");
    p->rating = json_is_true(rating);
    return 0;
}

int sb_voice_check_number(const json_t *doc, sb_config_refs *refs, sb_config_error *err)
{
    sb_phone_number p;
    sb_config_refs scratch = {0};
    return number_parse(doc, &p, refs != NULL ? refs : &scratch, err);
}

int sb_voice_number(const json_t *doc, sb_phone_number *out)
{
    sb_config_error err;
    return number_parse(doc, out, NULL, &err);
}

/* ---- IVR menus ---- */

static int menu_parse(const json_t *doc, sb_ivr_menu *m, int *option_index, sb_config_refs *refs, sb_config_error *err)
{
    static const char *const keys[] = {"id",
                                       "name",
                                       "prompt",
                                       "options",
                                       "extension_dialing",
                                       "timeout_seconds",
                                       "interdigit_seconds",
                                       "invalid_retries",
                                       "invalid_prompt",
                                       "fallback",
                                       "operator",
                                       NULL};
    int rc = id_and_name(doc, err);
    if (rc == 0)
        rc = only(doc, keys, "", err);
    if (rc != 0)
        return rc;
    *m = (sb_ivr_menu){.id = json_integer_value(json_object_get(doc, "id"))};
    for (int i = 0; option_index != NULL && i < SB_IVR_DIGIT_SLOTS; i++)
        option_index[i] = -1;
    if ((rc = prompt_field(doc, "prompt", "prompt", true, m->prompt, err)) != 0)
        return rc;
    snprintf(m->invalid_prompt, sizeof m->invalid_prompt, "invalid_choice");
    if ((rc = prompt_field(doc, "invalid_prompt", "invalid_prompt", false, m->invalid_prompt, err)) != 0)
        return rc;
    const json_t *options = json_object_get(doc, "options");
    if (options != NULL && !json_is_null(options) &&
        (!json_is_array(options) || json_array_size(options) > SB_IVR_DIGIT_SLOTS))
        return bad(err, "options", "must be an array of at most %d options, one per key", SB_IVR_DIGIT_SLOTS);
    int index[SB_IVR_DIGIT_SLOTS];
    for (int i = 0; i < SB_IVR_DIGIT_SLOTS; i++)
        index[i] = -1;
    for (size_t i = 0; options != NULL && i < json_array_size(options); i++) {
        const json_t *o = json_array_get(options, i);
        char prefix[32], field[48];
        snprintf(prefix, sizeof prefix, "options[%zu].", i);
        snprintf(field, sizeof field, "options[%zu].digit", i);
        const char *digit = json_is_object(o) ? json_string_value(json_object_get(o, "digit")) : NULL;
        int slot = digit != NULL && strlen(digit) == 1 ? sb_ivr_digit_slot(digit[0]) : -1;
        if (json_is_object(o) && slot < 0)
            return bad(err, field, "must be one key: \"0\" to \"9\", \"*\" or \"#\"");
        if (slot >= 0 && index[slot] >= 0)
            return bad(err, field, "key %s is already options[%d]", digit, index[slot]);
        sb_ivr_target t;
        if ((rc = dest_parse(o, prefix, option_actions, true, &t, refs, err)) != 0)
            return rc;
        index[slot] = (int)i;
        m->options[slot] = t;
    }
    if (option_index != NULL)
        memcpy(option_index, index, sizeof index);
    const json_t *ext = json_object_get(doc, "extension_dialing");
    if (ext != NULL && !json_is_null(ext)) {
        if (!json_is_boolean(ext))
            return bad(err, "extension_dialing", "must be true or false");
        m->extension_dialing = json_is_true(ext);
    }
    if ((rc = int_field(doc, "timeout_seconds", 1, 60, 5, &m->timeout_s, err)) != 0 ||
        (rc = int_field(doc, "interdigit_seconds", 1, 10, 3, &m->interdigit_s, err)) != 0 ||
        (rc = int_field(doc, "invalid_retries", 0, 5, 2, &m->invalid_retries, err)) != 0 ||
        (rc = dest_field(doc, "fallback", fallback_actions, &m->fallback, refs, err)) != 0 ||
        (rc = dest_field(doc, "operator", operator_actions, &m->operator_target, refs, err)) != 0)
        return rc;
    return 0;
}

int sb_voice_check_menu(const json_t *doc, sb_config_refs *refs, sb_config_error *err)
{
    sb_ivr_menu m;
    sb_config_refs scratch = {0};
    return menu_parse(doc, &m, NULL, refs != NULL ? refs : &scratch, err);
}

int sb_voice_menu(const json_t *doc, sb_ivr_menu *out)
{
    sb_config_error err;
    return menu_parse(doc, out, NULL, NULL, &err);
}

/* ---- forwarding schemes ---- */

const char *sb_fwd_target_kind_name(sb_fwd_target_kind kind)
{
    static const char *const names[] = {"agent", "team", "number", "sip_uri"};
    return (size_t)kind < SB_ARRAY_LEN(names) ? names[kind] : "?";
}

/* "sip:" or "sips:", a user, '@', a host name, an IPv4 address or an IPv6
 * one in brackets, and an optional port; no parameters or headers (the
 * trunk adds what it needs). */
static bool sip_uri_valid(const char *z)
{
    static const char USER[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.!~*'()&=+$,?/%";
    static const char HOST[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.";
    if (z == NULL || strlen(z) >= SB_FWD_ADDRESS_MAX)
        return false;
    const char *p = strncmp(z, "sip:", 4) == 0 ? z + 4 : strncmp(z, "sips:", 5) == 0 ? z + 5 : NULL;
    if (p == NULL)
        return false;
    size_t user = strspn(p, USER);
    if (user == 0 || p[user] != '@')
        return false;
    const char *host = p + user + 1;
    size_t hlen;
    if (host[0] == '[') {
        hlen = strspn(host + 1, "0123456789abcdefABCDEF:.");
        if (hlen < 2 || host[1 + hlen] != ']')
            return false;
        hlen += 2;
    } else {
        hlen = strspn(host, HOST);
        if (hlen == 0 || host[0] == '.' || host[0] == '-' || host[hlen - 1] == '.' || host[hlen - 1] == '-')
            return false;
    }
    const char *rest = host + hlen;
    if (*rest == '\0')
        return true;
    if (*rest != ':')
        return false;
    size_t digits = strspn(rest + 1, "0123456789");
    if (digits == 0 || digits > 5 || rest[1 + digits] != '\0')
        return false;
    long port = strtol(rest + 1, NULL, 10);
    return port >= 1 && port <= 65535;
}

static bool same_target(const sb_fwd_target *a, const sb_fwd_target *b)
{
    if (a->kind != b->kind)
        return false;
    if (a->kind == SB_FWD_TARGET_AGENT || a->kind == SB_FWD_TARGET_TEAM)
        return a->id == b->id;
    return strcmp(a->address, b->address) == 0;
}

/* One target at `where` ("steps[0].targets[1]"): exactly one of agent,
 * team, number, sip_uri. */
static int target_parse(const json_t *obj, const char *where, sb_fwd_target *out, sb_config_refs *refs,
                        sb_config_error *err)
{
    static const char *const keys[] = {"agent", "team", "number", "sip_uri", NULL};
    if (!json_is_object(obj) || json_object_size(obj) == 0)
        return bad(err, where,
                   "must be one target: {\"agent\": 3}, {\"team\": 1}, {\"number\": \"+74951234567\"} or "
                   "{\"sip_uri\": \"sip:user@host\"}");
    char prefix[64], field[96];
    sb_errorf(prefix, sizeof prefix, "%s.", where);
    int rc = only(obj, keys, prefix, err);
    if (rc != 0)
        return rc;
    if (json_object_size(obj) > 1)
        return bad(err, where, "must name one target only: agent, team, number or sip_uri");
    const char *key = json_object_iter_key(json_object_iter((json_t *)obj));
    const json_t *v = json_object_iter_value(json_object_iter((json_t *)obj));
    sb_errorf(field, sizeof field, "%s%s", prefix, key);
    *out = (sb_fwd_target){.kind = SB_FWD_TARGET_AGENT};
    if (strcmp(key, "agent") == 0 || strcmp(key, "team") == 0) {
        bool agent = key[0] == 'a';
        if (!json_is_integer(v) || json_integer_value(v) <= 0)
            return bad(err, field, "must be the id of %s", agent ? "an agent" : "a team");
        out->kind = agent ? SB_FWD_TARGET_AGENT : SB_FWD_TARGET_TEAM;
        out->id = json_integer_value(v);
        if (refs != NULL && agent)
            ADD_REF(refs, agents, out->id);
        else if (refs != NULL)
            ADD_REF(refs, teams, out->id);
        return 0;
    }
    const char *z = json_string_value(v);
    if (strcmp(key, "number") == 0) {
        if (!number_valid(z))
            return bad(err, field, "must be a phone number: 1 to %d digits, optionally after a '+' (\"+74951234567\")",
                       MAX_NUMBER_LEN);
        out->kind = SB_FWD_TARGET_NUMBER;
    } else {
        if (!sip_uri_valid(z))
            return bad(err, field,
                       "must be a SIP address such as \"sip:duty@pbx.example.com\" or \"sip:201@10.0.0.5:5060\" "
                       "(sip: or sips:, a user, @, a host, an optional port; at most %d bytes)",
                       SB_FWD_ADDRESS_MAX - 1);
        out->kind = SB_FWD_TARGET_SIP_URI;
    }
    snprintf(out->address, sizeof out->address, "%s", z);
    return 0;
}

static int step_parse(const json_t *obj, int index, sb_fwd_step *out, sb_config_refs *refs, sb_config_error *err)
{
    static const char *const keys[] = {"targets", "mode", "seconds", NULL};
    char where[32], prefix[40], field[64];
    sb_errorf(where, sizeof where, "steps[%d]", index);
    sb_errorf(prefix, sizeof prefix, "%s.", where);
    if (!json_is_object(obj))
        return bad(err, where,
                   "must be an object such as {\"targets\": [{\"agent\": 3}], \"mode\": \"together\", "
                   "\"seconds\": 15}");
    int rc = only(obj, keys, prefix, err);
    if (rc != 0)
        return rc;
    *out = (sb_fwd_step){.mode = SB_FWD_TOGETHER};
    const json_t *targets = json_object_get(obj, "targets");
    sb_errorf(field, sizeof field, "%stargets", prefix);
    if (!json_is_array(targets) || json_array_size(targets) < 1 || json_array_size(targets) > SB_FWD_MAX_TARGETS)
        return bad(err, field, "is required: 1 to %d targets (agents, teams, numbers, SIP addresses)",
                   SB_FWD_MAX_TARGETS);
    for (size_t i = 0; i < json_array_size(targets); i++) {
        char at[64];
        sb_errorf(at, sizeof at, "%stargets[%zu]", prefix, i);
        sb_fwd_target *t = &out->targets[i];
        if ((rc = target_parse(json_array_get(targets, i), at, t, refs, err)) != 0)
            return rc;
        for (size_t j = 0; j < i; j++)
            if (same_target(&out->targets[j], t)) {
                sb_errorf(field, sizeof field, "%s.%s", at, sb_fwd_target_kind_name(t->kind));
                return bad(err, field, "%s is already targets[%zu] of this step", sb_fwd_target_kind_name(t->kind), j);
            }
        out->ntargets++;
    }
    sb_errorf(field, sizeof field, "%smode", prefix);
    const char *mode = json_string_value(json_object_get(obj, "mode"));
    if (mode != NULL && strcmp(mode, "sequential") == 0)
        out->mode = SB_FWD_SEQUENTIAL;
    else if (mode == NULL || strcmp(mode, "together") != 0)
        return bad(err, field,
                   "is required: \"together\" (every target rings at once) or \"sequential\" (one after another)");
    sb_errorf(field, sizeof field, "%sseconds", prefix);
    const json_t *sec = json_object_get(obj, "seconds");
    if (!json_is_integer(sec) || json_integer_value(sec) < 1 || json_integer_value(sec) > SB_FWD_MAX_SECONDS)
        return bad(err, field, "is required: 1 to %d, how long the step rings (sequential: each target in turn)",
                   SB_FWD_MAX_SECONDS);
    out->seconds = (int)json_integer_value(sec);
    return 0;
}

static int scheme_parse(const json_t *doc, sb_fwd_scheme *f, sb_config_refs *refs, sb_config_error *err)
{
    static const char *const keys[] = {"id", "name", "steps", "final", "backup", NULL};
    int rc = id_and_name(doc, err);
    if (rc == 0)
        rc = only(doc, keys, "", err);
    if (rc != 0)
        return rc;
    *f = (sb_fwd_scheme){.id = json_integer_value(json_object_get(doc, "id"))};
    const json_t *steps = json_object_get(doc, "steps");
    if (!json_is_array(steps) || json_array_size(steps) < 1 || json_array_size(steps) > SB_FWD_MAX_STEPS)
        return bad(err, "steps",
                   "is required: 1 to %d steps, each {\"targets\": [...], \"mode\": ..., \"seconds\": ...}",
                   SB_FWD_MAX_STEPS);
    for (size_t i = 0; i < json_array_size(steps); i++) {
        if ((rc = step_parse(json_array_get(steps, i), (int)i, &f->steps[i], refs, err)) != 0)
            return rc;
        f->nsteps++;
    }
    const json_t *fin = json_object_get(doc, "final");
    if (fin == NULL || json_is_null(fin))
        return bad(err, "final",
                   "is required: where the call goes when nobody answers, such as {\"action\": \"voicemail\", "
                   "\"team_id\": 1}");
    if ((rc = dest_field(doc, "final", scheme_end_actions, &f->final_dest, refs, err)) != 0 ||
        (rc = dest_field(doc, "backup", scheme_end_actions, &f->backup, refs, err)) != 0)
        return rc;
    if (f->backup.what == SB_IVR_DO_NONE)
        f->backup = f->final_dest;
    return 0;
}

int sb_voice_check_scheme(const json_t *doc, sb_config_refs *refs, sb_config_error *err)
{
    sb_fwd_scheme *f = sb_xcalloc(1, sizeof *f); /* ~30 KB: not on the stack */
    sb_config_refs scratch = {0};
    int rc = scheme_parse(doc, f, refs != NULL ? refs : &scratch, err);
    free(f);
    return rc;
}

int sb_voice_scheme(const json_t *doc, sb_fwd_scheme *out)
{
    sb_config_error err;
    return scheme_parse(doc, out, NULL, &err);
}

/* ---- the menus together: depth and loops ---- */

typedef struct menu_graph {
    size_t n;
    sb_ivr_menu *menus;
    int (*index)[SB_IVR_DIGIT_SLOTS]; /* option slot → position in "options" */
} menu_graph;

typedef struct violation {
    bool found, loop;
    size_t path[SB_IVR_MAX_DEPTH + 1]; /* positions in the list */
    int slot[SB_IVR_MAX_DEPTH];        /* the option taken from path[k] */
    int len;                           /* menus in path */
} violation;

static long find_menu(const menu_graph *g, int64_t id)
{
    for (size_t i = 0; i < g->n; i++)
        if (g->menus[i].id == id)
            return (long)i;
    return -1;
}

/* Depth-first from path[len - 1]; stops at the first loop or the first
 * path one menu longer than allowed. */
static bool walk(const menu_graph *g, violation *v, int len)
{
    const sb_ivr_menu *m = &g->menus[v->path[len - 1]];
    for (int s = 0; s < SB_IVR_DIGIT_SLOTS; s++) {
        if (m->options[s].what != SB_IVR_DO_MENU)
            continue;
        long next = find_menu(g, m->options[s].id);
        if (next < 0)
            continue;
        v->slot[len - 1] = s;
        bool loop = false;
        for (int k = 0; k < len; k++)
            loop = loop || v->path[k] == (size_t)next;
        if (loop || len == SB_IVR_MAX_DEPTH) {
            v->path[len] = (size_t)next;
            v->len = len + 1;
            v->loop = loop;
            v->found = true;
            return true;
        }
        v->path[len] = (size_t)next;
        if (walk(g, v, len + 1))
            return true;
    }
    return false;
}

int sb_voice_check_menus(const json_t *list, int64_t focus, size_t *menu_index, sb_config_error *err)
{
    menu_graph g = {.n = json_array_size(list)};
    g.menus = sb_xcalloc(g.n ? g.n : 1, sizeof *g.menus);
    g.index = sb_xcalloc(g.n ? g.n : 1, sizeof *g.index);
    sb_config_error scratch;
    for (size_t i = 0; i < g.n; i++)
        if (menu_parse(json_array_get(list, i), &g.menus[i], g.index[i], NULL, &scratch) != 0)
            g.menus[i] = (sb_ivr_menu){.id = 0};
    violation v = {0};
    for (size_t i = 0; i < g.n && !v.found; i++) {
        v.path[0] = i;
        walk(&g, &v, 1);
    }
    int rc = 0;
    if (v.found) {
        int edge = v.len - 2; /* the last step */
        for (int k = 0; k < v.len - 1; k++)
            if (focus != 0 && g.menus[v.path[k]].id == focus) {
                edge = k;
                break;
            }
        char trail[96] = "";
        size_t tl = 0;
        for (int k = 0; k < v.len && tl < sizeof trail; k++)
            tl += (size_t)snprintf(trail + tl, sizeof trail - tl, "%s%lld", k ? " > " : "",
                                   (long long)g.menus[v.path[k]].id);
        char field[48];
        snprintf(field, sizeof field, "options[%d].menu_id", g.index[v.path[edge]][v.slot[edge]]);
        *menu_index = v.path[edge];
        if (v.loop)
            rc = bad(err, field, "submenu %lld leads back to menu %lld (%s): menus must not loop",
                     (long long)g.menus[v.path[edge + 1]].id, (long long)g.menus[v.path[v.len - 1]].id, trail);
        else
            rc = bad(err, field, "menus would nest %d levels deep (%s); at most %d are allowed", v.len, trail,
                     SB_IVR_MAX_DEPTH);
    }
    free(g.menus);
    free(g.index);
    return rc;
}
