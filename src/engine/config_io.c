/* config_io.c - `switchboard config export|import`: the whole engine
 * configuration as one JSON file, so a setup can be versioned, reviewed and
 * moved between installations of the same directory.
 *
 *   {"switchboard_config": 1,
 *    "calendars": [...], "templates": [...], "sla_policies": [...], "rules": [...],
 *    "ivr_menus": [...], "numbers": [...],             (engine/voice_config.h)
 *    "forwarding_schemes": [...],
 *    "teams": [{"id": 1, "name": "Sales", "routing": {...}}],
 *    "agents": [{"email": "anna@example.com", "routing": {...}}]}
 *
 * Import is all or nothing: every document is validated with the same
 * parsers the API uses, every id a document names must exist (in the file
 * or, for teams and agents, in the store), and then the documents replace
 * the stored ones in one transaction. Teams are matched by id, agents by
 * email; teams and agents not in the file keep their routing. */
#include "engine/config_io.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/calendar.h"
#include "engine/config.h"
#include "engine/voice_config.h"

#define FORMAT_VERSION 1

typedef struct section {
    const char *key;  /* in the file */
    const char *kind; /* in config_item */
    bool ordered;
} section;

static const section sections[] = {
    {"calendars", "calendar", false},
    {"templates", "template", false},
    {"sla_policies", "sla_policy", true},
    {"rules", "rule", true},
    {"ivr_menus", "ivr_menu", false},
    {"numbers", "phone_number", false},
    {"forwarding_schemes", "forwarding_scheme", false},
};

static int fail(char *err, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int fail(char *err, size_t cap, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    sb_verrorf(err, cap, fmt, ap);
    va_end(ap);
    return SB_EINVAL;
}

int sb_config_export(sb_tx *tx, json_t **out)
{
    json_t *doc = json_pack("{s:i}", "switchboard_config", FORMAT_VERSION);
    int rc = 0;
    for (size_t i = 0; i < SB_ARRAY_LEN(sections) && rc == 0; i++) {
        json_t *list = json_array();
        json_object_set_new(doc, sections[i].key, list);
        sb_stmt *s = sb_tx_query(tx, "SELECT data, position FROM config_item WHERE kind = ? ORDER BY position, id", "t",
                                 sections[i].kind);
        if (s == NULL) {
            rc = SB_EIO;
            break;
        }
        while ((rc = sb_stmt_step(s)) == 1) {
            json_t *item = json_loads(sb_stmt_text(s, 0), 0, NULL);
            if (item == NULL)
                continue;
            if (sections[i].ordered)
                json_object_set_new(item, "position", json_integer(sb_stmt_int(s, 1)));
            json_array_append_new(list, item);
        }
        sb_stmt_end(s);
    }
    struct {
        const char *key, *sql;
    } people[] = {
        {"teams", "SELECT id, name, routing FROM team ORDER BY id"},
        {"agents", "SELECT email, routing FROM agent ORDER BY id"},
    };
    for (size_t p = 0; p < SB_ARRAY_LEN(people) && rc >= 0; p++) {
        json_t *list = json_array();
        json_object_set_new(doc, people[p].key, list);
        sb_stmt *s = sb_tx_query(tx, people[p].sql, "");
        if (s == NULL) {
            rc = SB_EIO;
            break;
        }
        while ((rc = sb_stmt_step(s)) == 1) {
            bool team = p == 0;
            json_t *routing = json_loads(sb_stmt_text(s, team ? 2 : 1), 0, NULL);
            if (!json_is_object(routing)) {
                json_decref(routing);
                routing = json_object();
            }
            json_array_append_new(list, team ? json_pack("{s:I,s:s,s:o}", "id", (json_int_t)sb_stmt_int(s, 0), "name",
                                                         sb_stmt_text(s, 1), "routing", routing)
                                             : json_pack("{s:s,s:o}", "email", sb_stmt_text(s, 0), "routing", routing));
        }
        sb_stmt_end(s);
    }
    if (rc < 0) {
        json_decref(doc);
        return rc;
    }
    /* the engine's settings, in the form GET /api/v1/settings shows them */
    json_t *settings = json_object(), *weights = json_object();
    sb_stmt *s = sb_tx_query(tx, "SELECT key, value FROM setting WHERE key LIKE 'engine.%' ORDER BY key", "");
    while (s != NULL && sb_stmt_step(s) == 1) {
        const char *key = sb_stmt_text(s, 0) + 7, *value = sb_stmt_text(s, 1);
        if (strcmp(key, "csat_template_id") == 0 || strcmp(key, "auto_replies_per_hour") == 0 ||
            strcmp(key, "missed_call_callback_minutes") == 0)
            json_object_set_new(settings, key, json_integer(strtoll(value, NULL, 10)));
        else if (strncmp(key, "weight_", 7) == 0)
            json_object_set_new(weights, key + 7, json_real(strtod(value, NULL)));
        else
            json_object_set_new(settings, key, json_string(value));
    }
    sb_stmt_end(s);
    if (json_object_size(weights) > 0)
        json_object_set_new(settings, "weights", weights);
    else
        json_decref(weights);
    json_object_set_new(doc, "settings", settings);
    *out = doc;
    return 0;
}

static bool has_id(const json_t *list, int64_t id);

/* Validates the "settings" section; `in` for references to its templates. */
static int check_settings(const json_t *in, const json_t *set, char *err, size_t cap)
{
    if (set == NULL)
        return 0;
    if (!json_is_object(set))
        return fail(err, cap, "settings: must be an object");
    const char *key;
    json_t *v;
    json_object_foreach ((json_t *)set, key, v) {
        if (strcmp(key, "csat_template_id") == 0) {
            if (!json_is_null(v) &&
                (!json_is_integer(v) || !has_id(json_object_get(in, "templates"), json_integer_value(v))))
                return fail(err, cap, "settings.csat_template_id: must be a template in the file, or null");
        } else if (strcmp(key, "auto_replies_per_hour") == 0) {
            if (!json_is_integer(v) || json_integer_value(v) < 1 || json_integer_value(v) > 16)
                return fail(err, cap, "settings.auto_replies_per_hour: must be 1 to 16");
        } else if (strcmp(key, "missed_call_callback_minutes") == 0) {
            if (!json_is_integer(v) || json_integer_value(v) < 1 || json_integer_value(v) > 10080)
                return fail(err, cap, "settings.missed_call_callback_minutes: must be 1 to 10080 (a week)");
        } else if (strcmp(key, "company_name") == 0 || strcmp(key, "default_language") == 0) {
            if (!json_is_string(v) || strlen(json_string_value(v)) > (strcmp(key, "company_name") == 0 ? 63 : 7))
                return fail(err, cap, "settings.%s: must be a short text", key);
        } else if (strcmp(key, "timezone") == 0) {
            const char *z = json_string_value(v);
            sb_tz *tz = NULL;
            int rc = z == NULL ? SB_ENOTFOUND : strcmp(z, "UTC") == 0 ? 0 : sb_tz_load(z, &tz);
            sb_tz_free(tz);
            if (rc != 0)
                return fail(err, cap,
                            "settings.timezone: must be an IANA time zone this system has, such as "
                            "\"Europe/Moscow\"");
        } else if (strcmp(key, "weights") == 0) {
            const char *k;
            json_t *w;
            if (!json_is_object(v))
                return fail(err, cap, "settings.weights: must be an object");
            json_object_foreach (v, k, w) {
                if ((strcmp(k, "chat") != 0 && strcmp(k, "email") != 0) || !json_is_number(w) ||
                    !(json_number_value(w) > 0 && json_number_value(w) <= 1))
                    return fail(err, cap, "settings.weights.%s: chat and email weigh above 0 and at most 1", k);
            }
        } else {
            return fail(err, cap, "settings.%s: unknown setting", key);
        }
    }
    return 0;
}

static int put_setting(sb_tx *tx, const char *key, const char *value)
{
    char k[64];
    snprintf(k, sizeof k, "engine.%s", key);
    return sb_tx_exec(tx, "INSERT INTO setting (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = ?2",
                      "tt", k, value);
}

/* Replaces the engine's settings with the file's (absent: left alone). */
static int import_settings(sb_tx *tx, const json_t *set)
{
    if (set == NULL)
        return 0;
    int rc = sb_tx_exec(tx, "DELETE FROM setting WHERE key LIKE 'engine.%'", "");
    const char *key;
    json_t *v;
    json_object_foreach ((json_t *)set, key, v) {
        char buf[80];
        if (rc != 0)
            break;
        if (json_is_null(v))
            continue;
        if (strcmp(key, "weights") == 0) {
            const char *k;
            json_t *w;
            json_object_foreach (v, k, w) {
                char wk[32];
                snprintf(wk, sizeof wk, "weight_%s", k);
                snprintf(buf, sizeof buf, "%.6f", json_number_value(w));
                if (rc == 0)
                    rc = put_setting(tx, wk, buf);
            }
        } else if (json_is_integer(v)) {
            snprintf(buf, sizeof buf, "%lld", (long long)json_integer_value(v));
            rc = put_setting(tx, key, buf);
        } else {
            rc = put_setting(tx, key, json_string_value(v));
        }
    }
    return rc;
}

/* Whether `list` (a file section) has a document with this id. */
static bool has_id(const json_t *list, int64_t id)
{
    size_t i;
    json_t *v;
    json_array_foreach (list, i, v) {
        if (json_integer_value(json_object_get(v, "id")) == id)
            return true;
    }
    return false;
}

static int check_refs(sb_tx *tx, const json_t *in, const sb_config_refs *r, const char *where, char *err, size_t cap)
{
    for (int i = 0; i < r->ntemplates; i++)
        if (!has_id(json_object_get(in, "templates"), r->templates[i]))
            return fail(err, cap, "%s: template %lld is not in the file", where, (long long)r->templates[i]);
    for (int i = 0; i < r->ncalendars; i++)
        if (!has_id(json_object_get(in, "calendars"), r->calendars[i]))
            return fail(err, cap, "%s: calendar %lld is not in the file", where, (long long)r->calendars[i]);
    for (int i = 0; i < r->nmenus; i++)
        if (!has_id(json_object_get(in, "ivr_menus"), r->menus[i]))
            return fail(err, cap, "%s: IVR menu %lld is not in the file", where, (long long)r->menus[i]);
    for (int i = 0; i < r->nschemes; i++)
        if (!has_id(json_object_get(in, "forwarding_schemes"), r->schemes[i]))
            return fail(err, cap, "%s: forwarding scheme %lld is not in the file", where, (long long)r->schemes[i]);
    for (int i = 0; i < r->nteams; i++) {
        int rc = sb_tx_int(tx, &(int64_t){0}, "SELECT 1 FROM team WHERE id = ?", "i", r->teams[i]);
        if (rc < 0)
            return rc;
        if (rc == 0)
            return fail(err, cap, "%s: team %lld does not exist", where, (long long)r->teams[i]);
    }
    for (int i = 0; i < r->nagents; i++) {
        int rc = sb_tx_int(tx, &(int64_t){0}, "SELECT 1 FROM agent WHERE id = ?", "i", r->agents[i]);
        if (rc < 0)
            return rc;
        if (rc == 0)
            return fail(err, cap, "%s: agent %lld does not exist", where, (long long)r->agents[i]);
    }
    return 0;
}

/* Validates one section; `positions` receives each document's position. */
static int check_section(sb_tx *tx, const json_t *in, const section *sec, char *err, size_t cap)
{
    const json_t *list = json_object_get(in, sec->key);
    if (list == NULL)
        return 0;
    if (!json_is_array(list))
        return fail(err, cap, "%s: must be an array", sec->key);
    for (size_t i = 0; i < json_array_size(list); i++) {
        char where[64];
        snprintf(where, sizeof where, "%s[%zu]", sec->key, i);
        json_t *doc = json_deep_copy(json_array_get(list, i));
        if (!json_is_object(doc)) {
            json_decref(doc);
            return fail(err, cap, "%s: must be an object", where);
        }
        const json_t *pos = json_object_get(doc, "position");
        if (pos != NULL && (!sec->ordered || !json_is_integer(pos) || json_integer_value(pos) < 0 ||
                            json_integer_value(pos) > 1000000)) {
            json_decref(doc);
            return fail(err, cap, "%s.position: %s", where,
                        sec->ordered ? "must be 0 to 1000000" : "this kind has no position");
        }
        json_object_del(doc, "position");
        sb_config_error e = {{0}, {0}};
        sb_config_refs refs = {0};
        int rc = sb_config_check(sec->kind, doc, &refs, &e);
        int64_t id = json_integer_value(json_object_get(doc, "id"));
        json_decref(doc);
        if (rc != 0)
            return fail(err, cap, "%s.%s: %s", where, e.field, e.message);
        for (size_t j = 0; j < i; j++)
            if (json_integer_value(json_object_get(json_array_get(list, j), "id")) == id)
                return fail(err, cap, "%s.id: %lld appears twice", where, (long long)id);
        if ((rc = check_refs(tx, in, &refs, where, err, cap)) != 0)
            return rc;
    }
    return 0;
}

/* What one voice document cannot tell alone: menus nest at most
 * SB_IVR_MAX_DEPTH deep without loops, and a number's digits are unique. */
static int check_voice(const json_t *in, char *err, size_t cap)
{
    const json_t *menus = json_object_get(in, "ivr_menus"), *numbers = json_object_get(in, "numbers");
    sb_config_error e = {{0}, {0}};
    size_t at = 0;
    if (menus != NULL && sb_voice_check_menus(menus, 0, &at, &e) != 0)
        return fail(err, cap, "ivr_menus[%zu].%s: %s", at, e.field, e.message);
    for (size_t i = 0; i < json_array_size(numbers); i++)
        for (size_t j = 0; j < i; j++) {
            const char *a = json_string_value(json_object_get(json_array_get(numbers, i), "number"));
            const char *b = json_string_value(json_object_get(json_array_get(numbers, j), "number"));
            if (a != NULL && b != NULL && strcmp(a, b) == 0)
                return fail(err, cap, "numbers[%zu].number: %s is already numbers[%zu]", i, a, j);
        }
    return 0;
}

static char *routing_text(const json_t *routing)
{
    return routing != NULL ? json_dumps(routing, JSON_COMPACT | JSON_SORT_KEYS) : sb_xstrdup("{}");
}

int sb_config_import(sb_tx *tx, const json_t *in, sb_config_import_stats *stats, char *err, size_t cap)
{
    static const char *const top[] = {
        "switchboard_config", "calendars", "templates", "sla_policies", "rules", "ivr_menus", "numbers",
        "forwarding_schemes", "teams",     "agents",    "settings"};
    memset(stats, 0, sizeof *stats);
    if (!json_is_object(in))
        return fail(err, cap, "the file must hold a JSON object");
    if (json_integer_value(json_object_get(in, "switchboard_config")) != FORMAT_VERSION)
        return fail(err, cap, "switchboard_config: this is not a Switchboard configuration (version %d)",
                    FORMAT_VERSION);
    const char *key;
    json_t *v;
    json_object_foreach ((json_t *)in, key, v) {
        bool ok = false;
        for (size_t i = 0; i < SB_ARRAY_LEN(top) && !ok; i++)
            ok = strcmp(key, top[i]) == 0;
        if (!ok)
            return fail(err, cap, "%s: unknown section", key);
    }
    int rc;
    for (size_t i = 0; i < SB_ARRAY_LEN(sections); i++)
        if ((rc = check_section(tx, in, &sections[i], err, cap)) != 0)
            return rc;
    if ((rc = check_voice(in, err, cap)) != 0)
        return rc;
    /* teams and agents: routing only */
    const json_t *teams = json_object_get(in, "teams"), *agents = json_object_get(in, "agents");
    if ((teams != NULL && !json_is_array(teams)) || (agents != NULL && !json_is_array(agents)))
        return fail(err, cap, "%s: must be an array", teams != NULL && !json_is_array(teams) ? "teams" : "agents");
    size_t i;
    json_array_foreach (teams, i, v) {
        char where[64];
        snprintf(where, sizeof where, "teams[%zu]", i);
        int64_t id = json_integer_value(json_object_get(v, "id"));
        if ((rc = sb_tx_int(tx, &(int64_t){0}, "SELECT 1 FROM team WHERE id = ?", "i", id)) < 0)
            return rc;
        if (rc == 0)
            return fail(err, cap, "%s.id: team %lld does not exist", where, (long long)id);
        sb_config_error e = {{0}, {0}};
        sb_config_refs refs = {0};
        const json_t *routing = json_object_get(v, "routing");
        if (routing != NULL && sb_config_check_team_routing(routing, &refs, &e) != 0)
            return fail(err, cap, "%s.%s: %s", where, e.field, e.message);
        if ((rc = check_refs(tx, in, &refs, where, err, cap)) != 0)
            return rc;
    }
    json_array_foreach (agents, i, v) {
        char where[64];
        snprintf(where, sizeof where, "agents[%zu]", i);
        const char *email = json_string_value(json_object_get(v, "email"));
        if ((rc = sb_tx_int(tx, &(int64_t){0}, "SELECT 1 FROM agent WHERE email = ?", "t", email ? email : "")) < 0)
            return rc;
        if (rc == 0)
            return fail(err, cap, "%s.email: no agent %s", where, email ? email : "(missing)");
        sb_config_error e = {{0}, {0}};
        const json_t *routing = json_object_get(v, "routing");
        if (routing != NULL && sb_config_check_agent_routing(routing, &e) != 0)
            return fail(err, cap, "%s.%s: %s", where, e.field, e.message);
    }

    if ((rc = check_settings(in, json_object_get(in, "settings"), err, cap)) != 0)
        return rc;

    /* all valid: replace */
    int64_t now = sb_tx_now(tx);
    if ((rc = sb_tx_exec(tx, "DELETE FROM config_item", "")) != 0)
        return rc;
    for (size_t s = 0; s < SB_ARRAY_LEN(sections); s++) {
        json_array_foreach (json_object_get(in, sections[s].key), i, v) {
            json_t *doc = json_deep_copy(v);
            int64_t id = json_integer_value(json_object_get(doc, "id"));
            const json_t *pos = json_object_get(doc, "position");
            int64_t position = pos != NULL ? json_integer_value(pos) : id * 10;
            json_object_del(doc, "position");
            char *text = json_dumps(doc, JSON_COMPACT);
            json_decref(doc);
            rc = sb_tx_exec(tx,
                            "INSERT INTO config_item (kind, id, position, data, created_at, updated_at) "
                            "VALUES (?, ?, ?, ?, ?, ?)",
                            "tiitii", sections[s].kind, id, position, text, now, now);
            free(text);
            if (rc != 0)
                return rc;
            stats->documents++;
        }
    }
    json_array_foreach (teams, i, v) {
        char *text = routing_text(json_object_get(v, "routing"));
        rc = sb_tx_exec(tx, "UPDATE team SET routing = ?, updated_at = ? WHERE id = ?", "tii", text, now,
                        json_integer_value(json_object_get(v, "id")));
        free(text);
        if (rc != 0)
            return rc;
        stats->teams++;
    }
    json_array_foreach (agents, i, v) {
        char *text = routing_text(json_object_get(v, "routing"));
        rc = sb_tx_exec(tx, "UPDATE agent SET routing = ?, updated_at = ? WHERE email = ?", "tit", text, now,
                        json_string_value(json_object_get(v, "email")));
        free(text);
        if (rc != 0)
            return rc;
        stats->agents++;
    }
    if ((rc = import_settings(tx, json_object_get(in, "settings"))) != 0)
        return rc;
    return sb_event_log(
        tx, (sb_actor){"system", 0}, "config", 0, "config.imported",
        json_pack("{s:i,s:i,s:i}", "documents", stats->documents, "teams", stats->teams, "agents", stats->agents));
}
