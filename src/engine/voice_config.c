/* voice_config.c - validation of phone number and IVR menu documents (see
 * voice_config.h). */
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
};

const char *sb_ivr_do_name(sb_ivr_do what)
{
    for (size_t i = 0; i < SB_ARRAY_LEN(action_kinds); i++)
        if (action_kinds[i].what == what)
            return action_kinds[i].name;
    return "none";
}

/* Which actions a place allows, as a NULL-terminated list of names. */
static const char *const number_actions[] = {"menu", "queue", "agent", "voicemail", "hangup", NULL};
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

static void add_ref(int64_t *list, int *n, int64_t id)
{
    if (*n < 16)
        list[(*n)++] = id;
}

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
                k->what == SB_IVR_DO_HANGUP;
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
                add_ref(refs->menus, &refs->nmenus, out->id);
            else if (k->what == SB_IVR_DO_AGENT)
                add_ref(refs->agents, &refs->nagents, out->id);
            else
                add_ref(refs->teams, &refs->nteams, out->id);
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

/* ---- phone numbers ---- */

static int number_parse(const json_t *doc, sb_phone_number *p, sb_config_refs *refs, sb_config_error *err)
{
    static const char *const keys[] = {"id",          "name",        "number",   "language", "entry",
                                       "calendar_id", "after_hours", "holidays", "operator", NULL};
    int rc = id_and_name(doc, err);
    if (rc == 0)
        rc = only(doc, keys, "", err);
    if (rc != 0)
        return rc;
    *p = (sb_phone_number){.id = json_integer_value(json_object_get(doc, "id"))};
    const char *number = json_string_value(json_object_get(doc, "number"));
    size_t n = number != NULL ? strlen(number) : 0, plus = n > 0 && number[0] == '+';
    if (n == plus || n - plus > MAX_NUMBER_LEN || strspn(number + plus, "0123456789") != n - plus)
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
            add_ref(refs->calendars, &refs->ncalendars, p->calendar_id);
    }
    if ((rc = dest_field(doc, "after_hours", number_actions, &p->after_hours, refs, err)) != 0 ||
        (rc = dest_field(doc, "holidays", number_actions, &p->holidays, refs, err)) != 0 ||
        (rc = dest_field(doc, "operator", operator_actions, &p->operator_target, refs, err)) != 0)
        return rc;
    if (p->calendar_id == 0 && (p->after_hours.what != SB_IVR_DO_NONE || p->holidays.what != SB_IVR_DO_NONE))
        return bad(err, p->after_hours.what != SB_IVR_DO_NONE ? "after_hours" : "holidays",
                   "needs \"calendar_id\": the calendar tells business hours, after hours and holidays apart");
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
