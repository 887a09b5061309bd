/* config.c - validation of the engine's configuration documents (see
 * config.h). */
#include "engine/config.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "engine/calendar.h"
#include "engine/rules.h"
#include "engine/template.h"
#include "engine/voice_config.h"

#define MAX_NAME      200
#define MAX_SHORTCUT  32
#define MAX_LANGUAGES 16
#define MAX_MINUTES   (366 * 24 * 60)

static int bad(sb_config_error *err, int rc, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int bad(sb_config_error *err, int rc, const char *field, const char *fmt, ...)
{
    sb_errorf(err->field, sizeof err->field, "%s", field);
    va_list ap;
    va_start(ap, fmt);
    sb_verrorf(err->message, sizeof err->message, fmt, ap);
    va_end(ap);
    return rc;
}

static int only(const json_t *obj, const char *const *allowed, size_t n, const char *prefix, sb_config_error *err)
{
    const char *key;
    json_t *v;
    json_object_foreach ((json_t *)obj, key, v) {
        (void)v;
        bool ok = false;
        for (size_t i = 0; i < n && !ok; i++)
            ok = strcmp(key, allowed[i]) == 0;
        if (!ok) {
            char field[96];
            sb_errorf(field, sizeof field, "%s%s", prefix, key);
            return bad(err, SB_EINVAL, field, "unknown field \"%s\"", key);
        }
    }
    return 0;
}

static int id_and_name(const json_t *doc, sb_config_error *err)
{
    if (!json_is_object(doc))
        return bad(err, SB_EINVAL, "", "must be a JSON object");
    const json_t *id = json_object_get(doc, "id");
    if (!json_is_integer(id) || json_integer_value(id) <= 0)
        return bad(err, SB_EINVAL, "id", "must be a positive integer");
    const char *name = json_string_value(json_object_get(doc, "name"));
    if (name == NULL || name[0] == '\0' || strlen(name) > MAX_NAME || !sb_utf8_valid(name, strlen(name)))
        return bad(err, SB_EINVAL, "name", "is required: 1 to %d bytes of text", MAX_NAME);
    return 0;
}

/* An optional positive id field; adds it to `list` for the existence check. */
static int ref_id(const json_t *obj, const char *key, const char *field, int64_t *list, int *n, int64_t *out,
                  sb_config_error *err)
{
    const json_t *v = json_object_get(obj, key);
    if (v == NULL || json_is_null(v))
        return 0;
    if (!json_is_integer(v) || json_integer_value(v) <= 0)
        return bad(err, SB_EINVAL, field, "must be a positive id");
    if (out != NULL)
        *out = json_integer_value(v);
    if (list != NULL && *n < 16)
        list[(*n)++] = json_integer_value(v);
    return 0;
}

static int minutes(const json_t *obj, const char *key, const char *field, int64_t *out_ms, sb_config_error *err)
{
    const json_t *v = json_object_get(obj, key);
    if (v == NULL || json_is_null(v))
        return 0;
    if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > MAX_MINUTES)
        return bad(err, SB_EINVAL, field, "must be 0 to %d minutes", MAX_MINUTES);
    *out_ms = json_integer_value(v) * 60000;
    return 0;
}

/* ---- templates ---- */

int sb_config_check_template(const json_t *doc, sb_config_error *err)
{
    static const char *const keys[] = {"id", "name", "shortcut", "texts"};
    int rc = id_and_name(doc, err);
    if (rc == 0)
        rc = only(doc, keys, SB_ARRAY_LEN(keys), "", err);
    if (rc != 0)
        return rc;
    const json_t *shortcut = json_object_get(doc, "shortcut");
    if (shortcut != NULL && !json_is_null(shortcut)) {
        const char *z = json_string_value(shortcut);
        if (z == NULL || z[0] == '\0' || strlen(z) > MAX_SHORTCUT || strcspn(z, " \t\r\n") != strlen(z) ||
            !sb_utf8_valid(z, strlen(z)))
            return bad(err, SB_EINVAL, "shortcut", "must be 1 to %d bytes without spaces", MAX_SHORTCUT);
    }
    const json_t *texts = json_object_get(doc, "texts");
    if (!json_is_object(texts) || json_object_size(texts) == 0 || json_object_size(texts) > MAX_LANGUAGES)
        return bad(err, SB_EINVAL, "texts", "is required: an object of 1 to %d language → text", MAX_LANGUAGES);
    const char *lang;
    json_t *text;
    json_object_foreach ((json_t *)texts, lang, text) {
        char field[96];
        sb_errorf(field, sizeof field, "texts.%s", lang);
        size_t n = strlen(lang);
        if (n < 2 || n > 7 || strspn(lang, "abcdefghijklmnopqrstuvwxyz-") != n)
            return bad(err, SB_EINVAL, field, "a language is a lower-case code such as \"ru\" or \"en\"");
        const char *z = json_string_value(text);
        if (z == NULL)
            return bad(err, SB_EINVAL, field, "must be text");
        sb_template *t = NULL;
        char msg[200];
        if (sb_template_parse(z, &t, msg, sizeof msg) != 0)
            return bad(err, SB_EINVAL, field, "%s", msg);
        sb_template_free(t);
    }
    return 0;
}

/* ---- calendars ---- */

int sb_config_check_calendar(const json_t *doc, sb_config_error *err)
{
    int rc = id_and_name(doc, err);
    if (rc != 0)
        return rc;
    json_t *copy = json_deep_copy(doc);
    json_object_del(copy, "id");
    json_object_del(copy, "name");
    sb_calendar *cal = NULL;
    rc = sb_calendar_from_json(copy, &cal, err->field, sizeof err->field, err->message, sizeof err->message);
    sb_calendar_free(cal);
    json_decref(copy);
    return rc;
}

/* ---- SLA policies ---- */

static const char *const channel_kinds[] = {"chat", "email", "call"};
static const char *const priority_keys[] = {"low", "normal", "high", "urgent"};

static int sla_policy_parse(const json_t *doc, sb_sla_policy *p, sb_config_refs *refs, sb_config_error *err)
{
    static const char *const keys[] = {"id", "name", "conditions", "calendar_id", "warn_pct", "targets"};
    static const char *const cond_keys[] = {"team_id", "channel", "vip", "tag"};
    static const char *const target_keys[] = {"first_response_minutes", "next_response_minutes", "resolution_minutes"};
    sb_config_refs scratch = {0};
    if (refs == NULL)
        refs = &scratch;
    int rc = id_and_name(doc, err);
    if (rc == 0)
        rc = only(doc, keys, SB_ARRAY_LEN(keys), "", err);
    if (rc != 0)
        return rc;
    *p = (sb_sla_policy){.id = json_integer_value(json_object_get(doc, "id")), .channel_kind = -1, .vip = -1};
    const json_t *cond = json_object_get(doc, "conditions");
    if (cond != NULL && !json_is_null(cond)) {
        if (!json_is_object(cond))
            return bad(err, SB_EINVAL, "conditions", "must be an object");
        if ((rc = only(cond, cond_keys, SB_ARRAY_LEN(cond_keys), "conditions.", err)) != 0 ||
            (rc = ref_id(cond, "team_id", "conditions.team_id", refs->teams, &refs->nteams, &p->team_id, err)) != 0)
            return rc;
        const json_t *ch = json_object_get(cond, "channel");
        if (ch != NULL && !json_is_null(ch)) {
            const char *z = json_string_value(ch);
            for (int i = 0; z != NULL && i < SB_CHANNEL_KIND_COUNT; i++)
                if (strcmp(z, channel_kinds[i]) == 0)
                    p->channel_kind = i;
            if (p->channel_kind < 0)
                return bad(err, SB_EINVAL, "conditions.channel", "must be \"chat\", \"email\" or \"call\"");
        }
        const json_t *vip = json_object_get(cond, "vip");
        if (vip != NULL && !json_is_null(vip)) {
            if (!json_is_boolean(vip))
                return bad(err, SB_EINVAL, "conditions.vip", "must be true or false");
            p->vip = json_is_true(vip);
        }
        const json_t *tag = json_object_get(cond, "tag");
        if (tag != NULL && !json_is_null(tag)) {
            const char *z = json_string_value(tag);
            if (z == NULL || z[0] == '\0' || strlen(z) >= sizeof p->tag.v)
                return bad(err, SB_EINVAL, "conditions.tag", "must be a tag of 1 to %zu bytes", sizeof p->tag.v - 1);
            snprintf(p->tag.v, sizeof p->tag.v, "%s", z);
        }
    }
    if ((rc = ref_id(doc, "calendar_id", "calendar_id", refs->calendars, &refs->ncalendars, &p->calendar_id, err)) != 0)
        return rc;
    const json_t *warn = json_object_get(doc, "warn_pct");
    if (warn != NULL && !json_is_null(warn)) {
        if (!json_is_integer(warn) || json_integer_value(warn) < 0 || json_integer_value(warn) > 99)
            return bad(err, SB_EINVAL, "warn_pct", "must be 0 to 99");
        p->warn_pct = (int)json_integer_value(warn);
    }
    const json_t *targets = json_object_get(doc, "targets");
    if (!json_is_object(targets) || json_object_size(targets) == 0)
        return bad(err, SB_EINVAL, "targets", "is required: targets for at least one priority");
    if ((rc = only(targets, priority_keys, SB_ARRAY_LEN(priority_keys), "targets.", err)) != 0)
        return rc;
    for (int pr = 0; pr < 4; pr++) {
        const json_t *t = json_object_get(targets, priority_keys[pr]);
        if (t == NULL)
            continue;
        char prefix[48], field[96];
        sb_errorf(prefix, sizeof prefix, "targets.%s.", priority_keys[pr]);
        if (!json_is_object(t))
            return bad(err, SB_EINVAL, "targets", "targets.%s must be an object", priority_keys[pr]);
        if ((rc = only(t, target_keys, SB_ARRAY_LEN(target_keys), prefix, err)) != 0)
            return rc;
        int64_t *dst[] = {&p->targets[pr].first_response_ms, &p->targets[pr].next_response_ms,
                          &p->targets[pr].resolution_ms};
        for (int k = 0; k < 3; k++) {
            sb_errorf(field, sizeof field, "%s%s", prefix, target_keys[k]);
            if ((rc = minutes(t, target_keys[k], field, dst[k], err)) != 0)
                return rc;
        }
    }
    return 0;
}

int sb_config_check_sla_policy(const json_t *doc, sb_config_refs *refs, sb_config_error *err)
{
    sb_sla_policy p;
    return sla_policy_parse(doc, &p, refs, err);
}

int sb_config_sla_policy(const json_t *doc, sb_sla_policy *out)
{
    sb_config_error err;
    return sla_policy_parse(doc, out, NULL, &err);
}

/* ---- rules ---- */

int sb_config_check_rule(const json_t *doc, sb_config_refs *refs, sb_config_error *err)
{
    sb_rule *r = NULL;
    int rc = sb_rule_parse(doc, &r, err->field, sizeof err->field, err->message, sizeof err->message);
    if (rc != 0)
        return rc;
    int n = 0;
    const sb_rule_action *acts = sb_rule_actions(r, &n);
    for (int i = 0; refs != NULL && i < n; i++) {
        const sb_rule_action *a = &acts[i];
        if (a->kind == SB_ACTION_SEND_TEMPLATE && refs->ntemplates < 16)
            refs->templates[refs->ntemplates++] = a->id;
        if (a->kind == SB_ACTION_ASSIGN_TEAM && refs->nteams < 16)
            refs->teams[refs->nteams++] = a->id;
        if ((a->kind == SB_ACTION_ASSIGN_AGENT || a->kind == SB_ACTION_NOTIFY || a->kind == SB_ACTION_CREATE_TASK) &&
            a->id != 0 && refs->nagents < 16)
            refs->agents[refs->nagents++] = a->id;
    }
    sb_rule_free(r);
    return 0;
}

int sb_config_check(const char *kind, const json_t *doc, sb_config_refs *refs, sb_config_error *err)
{
    if (strcmp(kind, "rule") == 0)
        return sb_config_check_rule(doc, refs, err);
    if (strcmp(kind, "template") == 0)
        return sb_config_check_template(doc, err);
    if (strcmp(kind, "calendar") == 0)
        return sb_config_check_calendar(doc, err);
    if (strcmp(kind, "sla_policy") == 0)
        return sb_config_check_sla_policy(doc, refs, err);
    if (strcmp(kind, "phone_number") == 0)
        return sb_voice_check_number(doc, refs, err);
    if (strcmp(kind, "ivr_menu") == 0)
        return sb_voice_check_menu(doc, refs, err);
    if (strcmp(kind, "forwarding_scheme") == 0)
        return sb_voice_check_scheme(doc, refs, err);
    return bad(err, SB_EINVAL, "", "unknown kind of document \"%s\"", kind);
}

/* ---- routing of teams and agents ---- */

static int team_routing_parse(const json_t *j, sb_engine_team_cfg *t, sb_config_refs *refs, sb_config_error *err)
{
    static const char *const keys[] = {"strategy",    "supervisor_id",   "unanswered_minutes", "sticky_wait_minutes",
                                       "calendar_id", "auto_away_after", "call_queue"};
    sb_config_refs scratch = {0};
    if (refs == NULL)
        refs = &scratch;
    if (!json_is_object(j))
        return bad(err, SB_EINVAL, "routing", "must be an object");
    int rc = only(j, keys, SB_ARRAY_LEN(keys), "routing.", err);
    if (rc != 0)
        return rc;
    t->strategy = SB_STRATEGY_ROUND_ROBIN;
    const json_t *st = json_object_get(j, "strategy");
    if (st != NULL && sb_strategy_parse(json_string_value(st), &t->strategy) != 0)
        return bad(err, SB_EINVAL, "routing.strategy", "must be \"round_robin\", \"least_busy\" or \"manual\"");
    if ((rc = ref_id(j, "supervisor_id", "routing.supervisor_id", refs->agents, &refs->nagents, &t->supervisor_id,
                     err)) != 0 ||
        (rc = ref_id(j, "calendar_id", "routing.calendar_id", refs->calendars, &refs->ncalendars, &t->calendar_id,
                     err)) != 0 ||
        (rc = minutes(j, "sticky_wait_minutes", "routing.sticky_wait_minutes", &t->sticky_wait_ms, err)) != 0)
        return rc;
    const json_t *un = json_object_get(j, "unanswered_minutes");
    if (un != NULL && !json_is_null(un)) {
        if (!json_is_object(un))
            return bad(err, SB_EINVAL, "routing.unanswered_minutes", "must be an object: {\"chat\": 5, ...}");
        if ((rc = only(un, channel_kinds, SB_ARRAY_LEN(channel_kinds), "routing.unanswered_minutes.", err)) != 0)
            return rc;
        for (int k = 0; k < SB_CHANNEL_KIND_COUNT; k++) {
            char field[96];
            sb_errorf(field, sizeof field, "routing.unanswered_minutes.%s", channel_kinds[k]);
            if ((rc = minutes(un, channel_kinds[k], field, &t->unanswered_ms[k], err)) != 0)
                return rc;
        }
    }
    const json_t *aa = json_object_get(j, "auto_away_after");
    if (aa != NULL && !json_is_null(aa)) {
        if (!json_is_integer(aa) || json_integer_value(aa) < 0 || json_integer_value(aa) > 100)
            return bad(err, SB_EINVAL, "routing.auto_away_after", "must be 0 (never) to 100");
        t->auto_away_after = (int)json_integer_value(aa);
    }
    sb_callq_config q = {0};
    bool vm;
    return sb_config_call_queue(json_object_get(j, "call_queue"), 0, &q, &vm, err);
}

static int seconds_in(const json_t *obj, const char *key, int lo, int hi, int *out, sb_config_error *err)
{
    const json_t *v = json_object_get(obj, key);
    if (v == NULL || json_is_null(v))
        return 0;
    if (!json_is_integer(v) || json_integer_value(v) < lo || json_integer_value(v) > hi) {
        char field[96];
        sb_errorf(field, sizeof field, "routing.call_queue.%s", key);
        return bad(err, SB_EINVAL, field, "must be %d to %d seconds", lo, hi);
    }
    *out = (int)json_integer_value(v);
    return 0;
}

int sb_config_call_queue(const json_t *j, int64_t team_id, sb_callq_config *out, bool *voicemail_fallback,
                         sb_config_error *err)
{
    static const char *const keys[] = {"strategy",         "ring_timeout_seconds", "wrapup_seconds", "max_wait_seconds",
                                       "announce_seconds", "preferred_seconds",    "retry_seconds",  "callback_digit",
                                       "hold_prompt",      "max_wait_fallback",    "ringback",       "rating",
                                       "record_calls"};
    sb_callq_config d = {.team_id = team_id,
                         .strategy = SB_CALLQ_RING_ALL,
                         .ring_timeout_seconds = out->ring_timeout_seconds > 0 ? out->ring_timeout_seconds : 20,
                         .max_wait_seconds = out->max_wait_seconds,
                         .retry_seconds = 3};
    snprintf(d.hold_prompt, sizeof d.hold_prompt, "wait");
    *voicemail_fallback = true;
    if (j == NULL || json_is_null(j)) {
        *out = d;
        return 0;
    }
    if (!json_is_object(j))
        return bad(err, SB_EINVAL, "routing.call_queue", "must be an object");
    int rc = only(j, keys, SB_ARRAY_LEN(keys), "routing.call_queue.", err);
    if (rc != 0)
        return rc;
    const json_t *st = json_object_get(j, "strategy");
    if (st != NULL && !json_is_null(st) && sb_callq_strategy_parse(json_string_value(st), &d.strategy) != 0)
        return bad(err, SB_EINVAL, "routing.call_queue.strategy",
                   "must be \"ring_all\", \"longest_idle\", \"fewest_calls\", \"random\" or \"round_robin\"");
    if ((rc = seconds_in(j, "ring_timeout_seconds", 5, 300, &d.ring_timeout_seconds, err)) != 0 ||
        (rc = seconds_in(j, "wrapup_seconds", 0, 3600, &d.wrapup_seconds, err)) != 0 ||
        (rc = seconds_in(j, "max_wait_seconds", 0, 7200, &d.max_wait_seconds, err)) != 0 ||
        (rc = seconds_in(j, "preferred_seconds", 0, 300, &d.preferred_seconds, err)) != 0 ||
        (rc = seconds_in(j, "retry_seconds", 0, 300, &d.retry_seconds, err)) != 0 ||
        (rc = seconds_in(j, "announce_seconds", 0, 3600, &d.announce_seconds, err)) != 0)
        return rc;
    if (d.announce_seconds != 0 && d.announce_seconds < 10)
        return bad(err, SB_EINVAL, "routing.call_queue.announce_seconds", "must be 0 (never) or 10 to 3600 seconds");
    const json_t *cb = json_object_get(j, "callback_digit");
    if (cb != NULL && !json_is_null(cb)) {
        const char *z = json_string_value(cb);
        if (z == NULL || strlen(z) != 1 || strchr("123456789*#", z[0]) == NULL)
            return bad(err, SB_EINVAL, "routing.call_queue.callback_digit", "must be one of 1-9, * or #, or null");
        d.callback_digit = z[0];
    }
    const json_t *hp = json_object_get(j, "hold_prompt");
    if (hp != NULL && !json_is_null(hp)) {
        const char *z = json_string_value(hp);
        size_t n = z != NULL ? strlen(z) : 0;
        bool okp = n > 0 && n < sizeof d.hold_prompt;
        for (size_t i = 0; okp && i < n; i++)
            okp = (z[i] >= 'a' && z[i] <= 'z') || (z[i] >= '0' && z[i] <= '9') || z[i] == '_';
        if (!okp)
            return bad(err, SB_EINVAL, "routing.call_queue.hold_prompt", "must be a prompt name: [a-z0-9_], 1 to %zu",
                       sizeof d.hold_prompt - 1);
        snprintf(d.hold_prompt, sizeof d.hold_prompt, "%s", z);
    }
    const json_t *rb = json_object_get(j, "ringback");
    if (rb != NULL && !json_is_null(rb) && !json_is_boolean(rb))
        return bad(err, SB_EINVAL, "routing.call_queue.ringback", "must be true or false");
    if (json_is_true(rb) && (d.announce_seconds != 0 || d.callback_digit != 0))
        return bad(err, SB_EINVAL, "routing.call_queue.ringback",
                   "a ringing (unanswered) caller hears no announcements nor a callback offer");
    const json_t *ra = json_object_get(j, "rating");
    if (ra != NULL && !json_is_null(ra) && !json_is_boolean(ra))
        return bad(err, SB_EINVAL, "routing.call_queue.rating", "must be true or false");
    const json_t *rec = json_object_get(j, "record_calls");
    if (rec != NULL && !json_is_null(rec) && !json_is_boolean(rec))
        return bad(err, SB_EINVAL, "routing.call_queue.record_calls",
                   "must be true, false, or null (as the number or [sip] record_calls say)");
    const json_t *fb = json_object_get(j, "max_wait_fallback");
    if (fb != NULL && !json_is_null(fb)) {
        const char *z = json_string_value(fb);
        if (z == NULL || (strcmp(z, "voicemail") != 0 && strcmp(z, "hangup") != 0))
            return bad(err, SB_EINVAL, "routing.call_queue.max_wait_fallback", "must be \"voicemail\" or \"hangup\"");
        *voicemail_fallback = strcmp(z, "voicemail") == 0;
    }
    *out = d;
    return 0;
}

int sb_config_check_team_routing(const json_t *routing, sb_config_refs *refs, sb_config_error *err)
{
    sb_engine_team_cfg t = {0};
    return team_routing_parse(routing, &t, refs, err);
}

int sb_config_team_routing(const json_t *routing, int64_t team_id, sb_engine_team_cfg *out)
{
    sb_config_error err;
    *out = (sb_engine_team_cfg){.id = team_id};
    return team_routing_parse(routing, out, NULL, &err);
}

static int tokens(const json_t *arr, const char *field, sb_token *out, int cap, int *n, sb_config_error *err)
{
    if (arr == NULL || json_is_null(arr))
        return 0;
    if (!json_is_array(arr) || json_array_size(arr) > (size_t)cap)
        return bad(err, SB_EINVAL, field, "must be an array of at most %d names", cap);
    for (size_t i = 0; i < json_array_size(arr); i++) {
        const char *z = json_string_value(json_array_get(arr, i));
        if (z == NULL || z[0] == '\0' || strlen(z) >= sizeof out[0].v || !sb_utf8_valid(z, strlen(z)))
            return bad(err, SB_EINVAL, field, "names are 1 to %zu bytes of text", sizeof out[0].v - 1);
        snprintf(out[*n].v, sizeof out[0].v, "%s", z);
        (*n)++;
    }
    return 0;
}

static int agent_routing_parse(const json_t *j, sb_engine_agent_cfg *a, sb_config_error *err)
{
    static const char *const keys[] = {"capacity", "skills", "languages"};
    if (!json_is_object(j))
        return bad(err, SB_EINVAL, "routing", "must be an object");
    int rc = only(j, keys, SB_ARRAY_LEN(keys), "routing.", err);
    if (rc != 0)
        return rc;
    const json_t *cap = json_object_get(j, "capacity");
    if (cap != NULL && !json_is_null(cap)) {
        double c = json_number_value(cap);
        if (!json_is_number(cap) || !isfinite(c) || c <= 0 || c > 100)
            return bad(err, SB_EINVAL, "routing.capacity", "must be a number above 0 and at most 100");
        a->capacity = c;
    }
    if ((rc = tokens(json_object_get(j, "skills"), "routing.skills", a->skills, SB_ENGINE_MAX_SKILLS, &a->nskills,
                     err)) != 0)
        return rc;
    return tokens(json_object_get(j, "languages"), "routing.languages", a->languages, SB_ENGINE_MAX_LANGS,
                  &a->nlanguages, err);
}

int sb_config_check_agent_routing(const json_t *routing, sb_config_error *err)
{
    sb_engine_agent_cfg a = {0};
    return agent_routing_parse(routing, &a, err);
}

int sb_config_agent_routing(const json_t *routing, int64_t agent_id, sb_engine_agent_cfg *out)
{
    sb_config_error err;
    *out = (sb_engine_agent_cfg){.id = agent_id};
    return agent_routing_parse(routing, out, &err);
}
