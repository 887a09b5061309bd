/* dispatch.c - the routing engine inside the daemon (see dispatch.h).
 *
 * Reads happen in store ops whose results come back to the loop as JSON;
 * the engine is touched only on the loop. The engine's decisions are
 * applied to the store by one op per batch of effects. If the daemon stops
 * between a decision and its commit, the next start rebuilds the state from
 * the store: an open ticket without an owner is routed again, so nothing is
 * lost, at worst decided twice. */
#include "dispatch.h"

#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "api/dashboard.h"
#include "api/stream.h"
#include "app.h"
#include "base/clock.h"
#include "channels/outbox.h"
#include "base/log.h"
#include "engine/config.h"
#include "engine/model.h"
#include "voice/calls.h"
#include "voice/callbacks.h"

struct sb_dispatch {
    sb_app *app;
    sb_engine *eng;
    sb_effects fx;
    uv_timer_t *timer; /* heap: freed by its close callback */
    uv_check_t *check; /* submits the iteration's effects after its I/O */
    int64_t armed_for;
    bool stopped;
    json_t *blacklist; /* rows [kind, value, reason], from the last load */
};

static const sb_actor SYSTEM = {"system", 0};

/* ---- reading the store ---- */

static json_t *rows(sb_tx *tx, const char *sql, int ncols, const char *types)
{
    json_t *out = json_array();
    sb_stmt *s = sb_tx_query(tx, sql, "");
    while (s != NULL && sb_stmt_step(s) == 1) {
        json_t *row = json_array();
        for (int c = 0; c < ncols; c++) {
            if (sb_stmt_isnull(s, c))
                json_array_append_new(row, json_null());
            else if (types[c] == 'i')
                json_array_append_new(row, json_integer(sb_stmt_int(s, c)));
            else
                json_array_append_new(row, json_string(sb_stmt_text(s, c)));
        }
        json_array_append_new(out, row);
    }
    sb_stmt_end(s);
    return out;
}

#define TICKET_ROW_SQL                                                                                                 \
    "SELECT t.id, t.number, t.contact_id, ch.kind, t.status, t.priority, t.team_id, t.assignee_id, t.created_at, "     \
    "t.first_response_at, t.tags, c.name, c.language, c.vip, COALESCE(c.owner_id, (SELECT m.author_agent_id FROM "     \
    "message m JOIN ticket t2 ON t2.id = m.ticket_id WHERE t2.contact_id = t.contact_id AND m.direction = 'out' "      \
    "AND m.author_agent_id IS NOT NULL ORDER BY m.id DESC LIMIT 1)), c.tags, t.subject, c.attributes FROM ticket t "   \
    "JOIN contact c "                                                                                                  \
    "ON c.id = t.contact_id LEFT JOIN channel ch ON ch.id = t.channel_id "
#define TICKET_ROW_TYPES "iiitttiiiitttiittt"
#define TICKET_ROW_COLS  18

typedef struct load_op {
    sb_dispatch *d;
    bool tickets;
    json_t *out;
    int rc;
} load_op;

static int load_run(sb_tx *tx, void *arg)
{
    load_op *l = arg;
    l->out = json_pack(
        "{s:o,s:o,s:o,s:o}", "teams", rows(tx, "SELECT id, name, routing FROM team ORDER BY id", 3, "itt"), "agents",
        rows(tx,
             "SELECT id, name, role, active, routing, presence, absent_until, deputy_id FROM agent "
             "ORDER BY id",
             8, "ittittii"),
        "members", rows(tx, "SELECT agent_id, team_id FROM agent_team ORDER BY agent_id, team_id", 2, "ii"), "config",
        rows(tx, "SELECT kind, id, data FROM config_item ORDER BY kind, position, id", 3, "tit"));
    json_object_set_new(l->out, "blacklist", rows(tx, "SELECT kind, value, reason FROM blacklist", 3, "ttt"));
    json_object_set_new(l->out, "settings",
                        rows(tx, "SELECT key, value FROM setting WHERE key LIKE 'engine.%'", 2, "tt"));
    if (l->tickets)
        json_object_set_new(l->out, "tasks",
                            rows(tx,
                                 "SELECT id, COALESCE(ticket_id, 0), COALESCE(assignee_id, 0), due_at, "
                                 "COALESCE(remind_at, 0), reminded_at IS NOT NULL, overdue_at IS NOT NULL "
                                 "FROM task WHERE status = 'open'",
                                 7, "iiiiiii"));
    if (l->tickets)
        json_object_set_new(l->out, "tickets",
                            rows(tx, TICKET_ROW_SQL "WHERE t.status IN ('new', 'open', 'pending') ORDER BY t.id",
                                 TICKET_ROW_COLS, TICKET_ROW_TYPES));
    return 0;
}

static void load_done(void *arg, int rc)
{
    ((load_op *)arg)->rc = rc;
}

/* ---- building the engine's configuration ---- */

static void put_config(sb_dispatch *d, const json_t *load)
{
    sb_engine *eng = d->eng;
    json_decref(d->blacklist);
    d->blacklist = json_incref(json_object_get(load, "blacklist"));
    sb_engine_cfg cfg = {0};
    const char *zone = NULL;
    size_t si;
    json_t *set;
    json_array_foreach (json_object_get(load, "settings"), si, set) {
        const char *key = json_string_value(json_array_get(set, 0)), *value = json_string_value(json_array_get(set, 1));
        if (strcmp(key, "engine.csat_template_id") == 0)
            cfg.csat_template_id = strtoll(value, NULL, 10);
        else if (strcmp(key, "engine.auto_replies_per_hour") == 0)
            cfg.auto_replies_per_hour = (int)strtol(value, NULL, 10);
        else if (strcmp(key, "engine.company_name") == 0)
            snprintf(cfg.company_name, sizeof cfg.company_name, "%s", value);
        else if (strcmp(key, "engine.default_language") == 0)
            snprintf(cfg.default_language, sizeof cfg.default_language, "%s", value);
        else if (strcmp(key, "engine.weight_chat") == 0)
            cfg.weight[SB_CHANNEL_CHAT] = strtod(value, NULL);
        else if (strcmp(key, "engine.weight_email") == 0)
            cfg.weight[SB_CHANNEL_EMAIL] = strtod(value, NULL);
        else if (strcmp(key, "engine.timezone") == 0)
            zone = value;
    }
    sb_dashboard_set_time_zone(d->app->dashboard, zone); /* the day it counts */
    sb_engine_set_cfg(eng, &cfg);
    sb_engine_clear_config(eng);
    size_t i;
    json_t *row;
    json_array_foreach (json_object_get(load, "config"), i, row) {
        const char *kind = json_string_value(json_array_get(row, 0));
        int64_t id = json_integer_value(json_array_get(row, 1));
        json_t *doc = json_loads(json_string_value(json_array_get(row, 2)), 0, NULL);
        if (doc == NULL)
            continue;
        if (strcmp(kind, "calendar") == 0) {
            json_object_del(doc, "id");
            json_object_del(doc, "name");
            sb_calendar *cal = NULL;
            char field[64], msg[160];
            if (sb_calendar_from_json(doc, &cal, field, sizeof field, msg, sizeof msg) == 0)
                sb_engine_put_calendar(eng, id, cal);
            else
                sb_log(SB_WARN, "dispatch", "calendar %lld skipped: %s: %s", (long long)id, field, msg);
        } else if (strcmp(kind, "template") == 0) {
            const char *lang;
            json_t *text;
            json_object_foreach (json_object_get(doc, "texts"), lang, text) {
                sb_template *t = NULL;
                char err[160];
                if (sb_template_parse(json_string_value(text), &t, err, sizeof err) == 0)
                    sb_engine_put_template(eng, id, lang, t);
            }
        } else if (strcmp(kind, "sla_policy") == 0) {
            sb_sla_policy p;
            if (sb_config_sla_policy(doc, &p) == 0)
                sb_engine_put_sla_policy(eng, &p);
        }
        json_decref(doc);
    }
    /* rules last: they refer to templates and teams */
    json_array_foreach (json_object_get(load, "teams"), i, row) {
        json_t *routing = json_loads(json_string_value(json_array_get(row, 2)), 0, NULL);
        sb_engine_team_cfg t;
        if (sb_config_team_routing(routing != NULL ? routing : json_object(),
                                   json_integer_value(json_array_get(row, 0)), &t) == 0) {
            snprintf(t.name, sizeof t.name, "%s", json_string_value(json_array_get(row, 1)));
            sb_engine_put_team(eng, &t);
        }
        json_decref(routing);
    }
    json_t *members = json_object_get(load, "members");
    json_array_foreach (json_object_get(load, "agents"), i, row) {
        int64_t id = json_integer_value(json_array_get(row, 0));
        json_t *routing = json_loads(json_string_value(json_array_get(row, 4)), 0, NULL);
        sb_engine_agent_cfg a;
        if (sb_config_agent_routing(routing != NULL ? routing : json_object(), id, &a) != 0)
            sb_config_agent_routing(NULL, id, &a);
        json_decref(routing);
        snprintf(a.name, sizeof a.name, "%s", json_string_value(json_array_get(row, 1)));
        const char *role = json_string_value(json_array_get(row, 2));
        a.supervisor = role != NULL && strcmp(role, "agent") != 0;
        size_t k;
        json_t *m;
        json_array_foreach (members, k, m) {
            if (json_integer_value(json_array_get(m, 0)) == id && a.nteams < SB_ENGINE_MAX_TEAMS)
                a.teams[a.nteams++] = json_integer_value(json_array_get(m, 1));
        }
        sb_engine_put_agent(eng, &a);
        sb_presence p = SB_PRESENCE_OFFLINE;
        if (json_integer_value(json_array_get(row, 3)) != 0)
            sb_presence_parse(json_string_value(json_array_get(row, 5)), &p);
        int64_t now = sb_clock_wall_ms();
        sb_engine_handle(eng, &(sb_event){.kind = SB_EV_PRESENCE, .agent_id = id, .presence = p}, now, &d->fx);
        int64_t until = json_integer_value(json_array_get(row, 6));
        if (until > now)
            sb_engine_handle(eng,
                             &(sb_event){.kind = SB_EV_ABSENCE,
                                         .agent_id = id,
                                         .until = until,
                                         .deputy_id = json_integer_value(json_array_get(row, 7))},
                             now, &d->fx);
    }
    json_array_foreach (json_object_get(load, "config"), i, row) {
        if (strcmp(json_string_value(json_array_get(row, 0)), "rule") != 0)
            continue;
        json_t *doc = json_loads(json_string_value(json_array_get(row, 2)), 0, NULL);
        sb_rule *r = NULL;
        char field[64], msg[160];
        if (doc != NULL && sb_rule_parse(doc, &r, field, sizeof field, msg, sizeof msg) == 0 &&
            sb_engine_put_rule(eng, r) != 0)
            sb_rule_free(r);
        json_decref(doc);
    }
}

/* ---- tickets ---- */

static void token_copy(sb_token *t, const json_t *v)
{
    const char *z = json_string_value(v);
    snprintf(t->v, sizeof t->v, "%s", z != NULL ? z : "");
}

static void tags_copy(sb_token *out, int *n, const char *json_text)
{
    json_t *tags = json_text != NULL ? json_loads(json_text, 0, NULL) : NULL;
    size_t i;
    json_t *v;
    *n = 0;
    json_array_foreach (tags, i, v) {
        if (*n < SB_ENGINE_MAX_TAGS && json_is_string(v))
            token_copy(&out[(*n)++], v);
    }
    json_decref(tags);
}

static int ticket_info(const json_t *row, sb_ticket_info *t)
{
    memset(t, 0, sizeof *t);
    t->id = json_integer_value(json_array_get(row, 0));
    t->number = json_integer_value(json_array_get(row, 1));
    t->contact_id = json_integer_value(json_array_get(row, 2));
    token_copy(&t->channel_type, json_array_get(row, 3));
    t->channel = SB_CHANNEL_CHAT; /* api, webchat and the messengers to come */
    if (sb_status_parse(json_string_value(json_array_get(row, 4)), &t->status) != 0 ||
        sb_priority_parse(json_string_value(json_array_get(row, 5)), &t->priority) != 0)
        return SB_EINVAL;
    t->team_id = json_integer_value(json_array_get(row, 6));
    t->assignee_id = json_integer_value(json_array_get(row, 7));
    t->created_at = json_integer_value(json_array_get(row, 8));
    t->first_response_at = json_integer_value(json_array_get(row, 9));
    tags_copy(t->tags, &t->ntags, json_string_value(json_array_get(row, 10)));
    const char *name = json_string_value(json_array_get(row, 11));
    snprintf(t->contact_name, sizeof t->contact_name, "%s", name != NULL ? name : "");
    token_copy(&t->contact_language, json_array_get(row, 12));
    t->vip = json_integer_value(json_array_get(row, 13)) != 0;
    t->owner_id = json_integer_value(json_array_get(row, 14));
    tags_copy(t->contact_tags, &t->ncontact_tags, json_string_value(json_array_get(row, 15)));
    const char *subject = json_string_value(json_array_get(row, 16));
    snprintf(t->subject, sizeof t->subject, "%s", subject != NULL ? subject : "");
    /* contact attributes, for rules (texts, numbers and booleans as text) */
    const char *attrs_text = json_string_value(json_array_get(row, 17));
    json_t *attrs = attrs_text != NULL ? json_loads(attrs_text, 0, NULL) : NULL;
    const char *key;
    json_t *v;
    json_object_foreach (attrs, key, v) {
        if (t->nattrs == SB_ENGINE_MAX_ATTRS || strlen(key) >= sizeof t->attr_keys[0].v)
            continue;
        char *value = json_is_string(v) ? sb_xstrdup(json_string_value(v)) : json_dumps(v, JSON_ENCODE_ANY);
        if (value == NULL || json_is_null(v)) {
            free(value);
            continue;
        }
        snprintf(t->attr_keys[t->nattrs].v, sizeof t->attr_keys[0].v, "%s", key);
        snprintf(t->attr_values[t->nattrs], sizeof t->attr_values[0], "%s", value);
        t->nattrs++;
        free(value);
    }
    json_decref(attrs);
    return 0;
}

/* ---- applying effects ---- */

typedef struct fx_op {
    sb_dispatch *d;
    sb_effect *v;
    size_t n;
    json_t *events;
    int64_t at;
    sb_delivery **deliveries; /* replies to send once committed */
    size_t ndeliveries;
    bool want_events;    /* an agent stream listened when the effects were made */
    bool poke_outbox;    /* webhooks were queued */
    sb_task_info *tasks; /* tasks rules created, for the engine once committed */
    size_t ntasks;
} fx_op;

static json_t *iso_or_null(int64_t ms)
{
    return sb_json_time(ms);
}

static int apply_one(sb_tx *tx, fx_op *o, const sb_effect *e, json_t *events)
{
    int64_t now = sb_tx_now(tx);
    int64_t tid = e->ticket_id;
    json_t *rule = e->rule_id != 0 ? json_integer(e->rule_id) : json_null();
    int rc = 0;
    switch (e->kind) {
    case SB_FX_ASSIGN:
        if (e->reason != NULL && (strcmp(e->reason, "manual") == 0 || strcmp(e->reason, "kept") == 0))
            break; /* the API wrote that change itself, or it is already stored */
        rc = sb_tx_exec(tx, "UPDATE ticket SET assignee_id = ?, team_id = ?, updated_at = ? WHERE id = ?", "IIii",
                        e->agent_id, e->team_id, now, tid);
        if (rc == 0)
            rc =
                sb_event_log(tx, SYSTEM, "ticket", tid, "ticket.assigned",
                             json_pack("{s:o,s:o,s:s,s:O}", "to", e->agent_id ? json_integer(e->agent_id) : json_null(),
                                       "team_id", e->team_id ? json_integer(e->team_id) : json_null(), "reason",
                                       e->reason ? e->reason : "", "rule_id", rule));
        break;
    case SB_FX_QUEUE:
        if (e->team_id == 0)
            break; /* the shared inbox is where every new ticket starts: not news */
        rc = sb_event_log(tx, SYSTEM, "ticket", tid, "ticket.queued",
                          json_pack("{s:o,s:s}", "team_id", e->team_id ? json_integer(e->team_id) : json_null(),
                                    "reason", e->reason ? e->reason : ""));
        break;
    case SB_FX_TEAM:
        rc = sb_tx_exec(tx, "UPDATE ticket SET team_id = ?, updated_at = ? WHERE id = ?", "Iii", e->team_id, now, tid);
        if (rc == 0)
            rc = sb_event_log(tx, SYSTEM, "ticket", tid, "ticket.team",
                              json_pack("{s:I,s:O}", "to", (json_int_t)e->team_id, "rule_id", rule));
        break;
    case SB_FX_PRIORITY:
        rc = sb_tx_exec(tx, "UPDATE ticket SET priority = ?, updated_at = ? WHERE id = ?", "tii",
                        sb_priority_name(e->priority), now, tid);
        if (rc == 0 && e->rule_id != 0)
            rc = sb_event_log(tx, SYSTEM, "ticket", tid, "ticket.priority",
                              json_pack("{s:s,s:O}", "to", sb_priority_name(e->priority), "rule_id", rule));
        break;
    case SB_FX_STATUS:
        rc = sb_tx_exec(tx,
                        "UPDATE ticket SET status = ?1, updated_at = ?2, "
                        "resolved_at = CASE WHEN ?1 = 'resolved' THEN ?2 WHEN ?1 IN ('new','open','pending') "
                        "THEN NULL ELSE resolved_at END, "
                        "closed_at = CASE WHEN ?1 = 'closed' THEN ?2 ELSE NULL END WHERE id = ?3",
                        "tii", sb_status_name(e->status), now, tid);
        if (rc == 0)
            rc = sb_event_log(tx, SYSTEM, "ticket", tid, "ticket.status",
                              json_pack("{s:s,s:O}", "to", sb_status_name(e->status), "rule_id", rule));
        break;
    case SB_FX_TAG:
        rc = e->added ? sb_tx_exec(tx,
                                   "UPDATE ticket SET tags = json_insert(tags, '$[#]', ?), updated_at = ? "
                                   "WHERE id = ? AND NOT EXISTS (SELECT 1 FROM json_each(ticket.tags) WHERE value = ?)",
                                   "tiit", e->text, now, tid, e->text)
                      : sb_tx_exec(tx,
                                   "UPDATE ticket SET tags = (SELECT COALESCE(json_group_array(value), '[]') FROM "
                                   "json_each(ticket.tags) WHERE value <> ?), updated_at = ? WHERE id = ?",
                                   "tii", e->text, now, tid);
        if (rc == 0)
            rc = sb_event_log(tx, SYSTEM, "ticket", tid, e->added ? "ticket.tag_added" : "ticket.tag_removed",
                              json_pack("{s:s,s:O}", "tag", e->text, "rule_id", rule));
        break;
    case SB_FX_SLA_DUE:
        rc = sb_tx_exec(tx,
                        "UPDATE ticket SET sla = json_set(COALESCE(sla, '{}'), '$.due.first_response', ?, "
                        "'$.due.next_response', ?, '$.due.resolution', ?) WHERE id = ?",
                        "IIIi", e->due[SB_SLA_FIRST_RESPONSE], e->due[SB_SLA_NEXT_RESPONSE], e->due[SB_SLA_RESOLUTION],
                        tid);
        break;
    case SB_FX_SLA_EVENT: {
        char type[40], path[48];
        snprintf(type, sizeof type, "sla.%s", sb_sla_state_name(e->sla_state));
        snprintf(path, sizeof path, "$.state.%s", sb_sla_clock_name(e->sla_clock));
        rc = sb_tx_exec(tx, "UPDATE ticket SET sla = json_set(COALESCE(sla, '{}'), ?, ?) WHERE id = ?", "tti", path,
                        sb_sla_state_name(e->sla_state), tid);
        if (rc == 0)
            rc = sb_event_log(
                tx, SYSTEM, "ticket", tid, type,
                json_pack("{s:s,s:o}", "clock", sb_sla_clock_name(e->sla_clock), "at", iso_or_null(e->at)));
        if (rc == 0)
            sb_emit(events, type,
                    json_pack("{s:I,s:s,s:o}", "ticket_id", (json_int_t)tid, "clock", sb_sla_clock_name(e->sla_clock),
                              "at", iso_or_null(e->at)));
        break;
    }
    case SB_FX_NOTE: {
        int64_t mid = 0;
        rc = sb_tx_insert(tx, &mid,
                          "INSERT INTO message (ticket_id, direction, text, created_at, updated_at) "
                          "VALUES (?, 'note', ?, ?, ?)",
                          "itii", tid, e->text, now, now);
        if (rc == 0)
            rc = sb_event_log(
                tx, SYSTEM, "ticket", tid, "message.created",
                json_pack("{s:I,s:s,s:O}", "message_id", (json_int_t)mid, "direction", "note", "rule_id", rule));
        if (rc == 0)
            sb_emit(events, "message.created", sb_message_json(tx, mid));
        break;
    }
    case SB_FX_NOTIFY:
        rc = sb_event_log(tx, SYSTEM, "agent", e->agent_id, "agent.notified",
                          json_pack("{s:I,s:s,s:O}", "ticket_id", (json_int_t)tid, "reason", e->reason ? e->reason : "",
                                    "rule_id", rule));
        if (rc == 0)
            sb_emit(events, "notification",
                    json_pack("{s:I,s:I,s:s}", "agent_id", (json_int_t)e->agent_id, "ticket_id", (json_int_t)tid,
                              "reason", e->reason ? e->reason : ""));
        break;
    case SB_FX_PRESENCE:
        rc = sb_tx_exec(tx, "UPDATE agent SET presence = ?, updated_at = ? WHERE id = ?", "tii",
                        sb_presence_name(e->presence), now, e->agent_id);
        if (rc == 0)
            rc = sb_event_log(tx, SYSTEM, "agent", e->agent_id, "agent.presence",
                              json_pack("{s:s,s:s}", "presence", sb_presence_name(e->presence), "reason",
                                        e->reason ? e->reason : ""));
        if (rc == 0)
            sb_emit(events, "agent.presence",
                    json_pack("{s:I,s:s,s:s}", "agent_id", (json_int_t)e->agent_id, "presence",
                              sb_presence_name(e->presence), "reason", e->reason ? e->reason : ""));
        break;
    case SB_FX_REPLY: {
        sb_delivery *dl = NULL;
        json_t *msg = NULL;
        rc = sb_ticket_add_message(tx, tid, 0, true, e->text != NULL ? e->text : "", events, &dl, &msg);
        json_decref(msg);
        if (rc == 0 && e->reason != NULL && strcmp(e->reason, "csat") == 0)
            rc = sb_tx_exec(tx, "UPDATE ticket SET csat_requested_at = ? WHERE id = ?", "ii", now, tid);
        if (rc == 0)
            rc = sb_event_log(tx, SYSTEM, "ticket", tid, "ticket.auto_reply",
                              json_pack("{s:I,s:s,s:O}", "template_id", (json_int_t)e->template_id, "reason",
                                        e->reason ? e->reason : "", "rule_id", rule));
        o->deliveries = sb_xrealloc(o->deliveries, (o->ndeliveries + 1) * sizeof *o->deliveries);
        o->deliveries[o->ndeliveries++] = dl;
        break;
    }
    case SB_FX_WEBHOOK: {
        json_t *t = sb_ticket_json(tx, tid);
        if (t == NULL)
            break; /* gone (merged away) */
        int64_t channel = json_integer_value(json_object_get(t, "channel_id"));
        json_t *body = json_pack("{s:s,s:O,s:o,s:o}", "event", "rule.webhook", "rule_id", rule, "at",
                                 sb_json_time(e->at), "ticket", t);
        char *text = json_dumps(body, JSON_COMPACT);
        json_decref(body);
        rc = sb_outbox_enqueue_webhook(tx, channel, e->text, text);
        free(text);
        if (rc == 0)
            rc = sb_event_log(tx, SYSTEM, "ticket", tid, "ticket.webhook", json_pack("{s:O}", "rule_id", rule));
        o->poke_outbox = rc == 0;
        break;
    }
    case SB_FX_TASK: {
        int64_t id = 0, contact = 0;
        sb_tx_int(tx, &contact, "SELECT contact_id FROM ticket WHERE id = ?", "i", tid);
        rc = sb_tx_insert(tx, &id,
                          "INSERT INTO task (title, kind, ticket_id, contact_id, assignee_id, due_at, rule_id, "
                          "created_at, updated_at) VALUES (?, 'follow_up', ?, ?, ?, ?, ?, ?, ?)",
                          "tIIIiIii", e->text != NULL ? e->text : "", tid, contact, e->agent_id, e->due_at, e->rule_id,
                          now, now);
        if (rc == 0)
            rc = sb_event_log(tx, SYSTEM, "task", id, "task.created",
                              json_pack("{s:I,s:O}", "ticket_id", (json_int_t)tid, "rule_id", rule));
        if (rc == 0) {
            o->tasks = sb_xrealloc(o->tasks, (o->ntasks + 1) * sizeof *o->tasks);
            o->tasks[o->ntasks++] =
                (sb_task_info){.id = id, .ticket_id = tid, .assignee_id = e->agent_id, .due_at = e->due_at};
        }
        break;
    }
    case SB_FX_TASK_REMINDER:
    case SB_FX_TASK_OVERDUE: {
        bool overdue = e->kind == SB_FX_TASK_OVERDUE;
        rc = sb_tx_exec(tx,
                        overdue ? "UPDATE task SET overdue_at = ?, updated_at = ? WHERE id = ? AND status = 'open'"
                                : "UPDATE task SET reminded_at = ?, updated_at = ? WHERE id = ? AND status = 'open'",
                        "iii", now, now, e->task_id);
        if (rc == 0)
            rc = sb_event_log(tx, SYSTEM, "task", e->task_id, overdue ? "task.overdue" : "task.reminder",
                              json_pack("{s:o,s:o}", "due_at", sb_json_time(e->due_at), "assignee_id",
                                        e->agent_id ? json_integer(e->agent_id) : json_null()));
        if (rc == 0)
            sb_emit(events, overdue ? "task.overdue" : "task.reminder",
                    json_pack("{s:I,s:o,s:o}", "task_id", (json_int_t)e->task_id, "ticket_id",
                              tid ? json_integer(tid) : json_null(), "agent_id",
                              e->agent_id ? json_integer(e->agent_id) : json_null()));
        break;
    }
    default: break;
    }
    json_decref(rule);
    return rc;
}

/* Whether the effect changes what a ticket looks like. */
static bool touches_ticket(const sb_effect *e)
{
    switch (e->kind) {
    case SB_FX_ASSIGN:
    case SB_FX_TEAM:
    case SB_FX_PRIORITY:
    case SB_FX_STATUS:
    case SB_FX_TAG:
    case SB_FX_SLA_DUE:
    case SB_FX_SLA_EVENT: return true;
    default: return false;
    }
}

static int fx_run(sb_tx *tx, void *arg)
{
    fx_op *o = arg;
    o->at = sb_tx_now(tx);
    for (size_t i = 0; i < o->n; i++) {
        /* An effect for a ticket that is gone (merged away) is skipped,
         * not a reason to lose the others. */
        int rc = apply_one(tx, o, &o->v[i], o->want_events ? o->events : NULL);
        if (rc != 0)
            return rc;
    }
    for (size_t i = 0; o->want_events && i < o->n; i++) {
        bool seen = false;
        for (size_t j = 0; j < i && !seen; j++)
            seen = touches_ticket(&o->v[j]) && o->v[j].ticket_id == o->v[i].ticket_id;
        if (!seen && touches_ticket(&o->v[i])) {
            json_t *t = sb_ticket_json(tx, o->v[i].ticket_id);
            if (t != NULL)
                sb_emit(o->events, "ticket.updated", json_pack("{s:o,s:s}", "ticket", t, "by", "engine"));
        }
    }
    return 0;
}

static void flush_effects(sb_dispatch *d);

static void fx_done(void *arg, int rc)
{
    fx_op *o = arg;
    if (rc != 0)
        sb_log(SB_WARN, "dispatch", "effects not stored rc=%d count=%zu", rc, o->n);
    else
        sb_app_publish_built(o->d->app, o->events, o->at);
    for (size_t i = 0; i < o->ndeliveries; i++) {
        if (rc == 0)
            sb_delivery_send(o->d->app, o->deliveries[i]);
        sb_delivery_free(o->deliveries[i]);
    }
    free(o->deliveries);
    if (rc == 0 && o->poke_outbox)
        sb_outbox_poke(o->d->app->outbox);
    for (size_t i = 0; rc == 0 && i < o->ntasks && !o->d->stopped; i++)
        sb_engine_handle(o->d->eng, &(sb_event){.kind = SB_EV_TASK, .task = o->tasks[i]}, sb_clock_wall_ms(),
                         &o->d->fx);
    if (o->ntasks > 0 && !o->d->stopped)
        flush_effects(o->d);
    free(o->tasks);
    if (rc != 0)
        json_decref(o->events);
    for (size_t i = 0; i < o->n; i++)
        free(o->v[i].text);
    free(o->v);
    free(o);
}

static void arm(sb_dispatch *d);
static void on_check(uv_check_t *h);
static void submit_effects(sb_dispatch *d);

/* Effects wait for the end of the loop iteration (the check phase, after
 * its I/O callbacks): everything decided in one iteration goes to the
 * store as one op, in the same batch as the requests that caused it. */
static void flush_effects(sb_dispatch *d)
{
    sb_dashboard_touch(d->app->dashboard);
    if (d->fx.n > 0 && !d->stopped)
        uv_check_start(d->check, on_check);
    arm(d);
}

static void submit_effects(sb_dispatch *d)
{
    if (d->fx.n > 0) {
        fx_op *o = sb_xcalloc(1, sizeof *o);
        o->d = d;
        o->n = d->fx.n;
        o->v = sb_xcalloc(o->n, sizeof *o->v);
        for (size_t i = 0; i < o->n; i++) {
            o->v[i] = d->fx.v[i];
            o->v[i].text = d->fx.v[i].text != NULL ? sb_xstrdup(d->fx.v[i].text) : NULL;
        }
        o->events = json_array();
        o->want_events = sb_stream_subscribers(d->app->hub) > 0;
        sb_effects_reset(&d->fx);
        sb_store_submit(d->app->store, fx_run, fx_done, o);
    }
}

static void on_check(uv_check_t *h)
{
    sb_dispatch *d = h->data;
    uv_check_stop(h);
    submit_effects(d);
}

/* ---- the timer ---- */

static void on_timer(uv_timer_t *h)
{
    sb_dispatch *d = h->data;
    d->armed_for = INT64_MAX;
    sb_engine_tick(d->eng, sb_clock_wall_ms(), &d->fx);
    sb_dashboard_touch(d->app->dashboard);
    /* Timers run before the loop polls: submitted now, the effects go out
     * in this iteration (the check phase would wait for the next I/O). */
    submit_effects(d);
    arm(d);
}

static void arm(sb_dispatch *d)
{
    if (d->stopped)
        return;
    int64_t next = sb_engine_next_deadline(d->eng);
    if (next == d->armed_for)
        return;
    d->armed_for = next;
    if (next == INT64_MAX) {
        uv_timer_stop(d->timer);
        return;
    }
    int64_t wait = next - sb_clock_wall_ms();
    uv_timer_start(d->timer, on_timer, wait > 0 ? (uint64_t)wait : 0, 0);
}

/* ---- the public side ---- */

static void load_into(sb_dispatch *d, const json_t *load)
{
    put_config(d, load);
    size_t i;
    json_t *row;
    int64_t now = sb_clock_wall_ms();
    json_array_foreach (json_object_get(load, "tickets"), i, row) {
        sb_ticket_info info;
        if (ticket_info(row, &info) == 0)
            sb_engine_handle(d->eng, &(sb_event){.kind = SB_EV_TICKET_NEW, .ticket = info, .restored = true}, now,
                             &d->fx);
    }
    json_array_foreach (json_object_get(load, "tasks"), i, row) {
        /* a reminder or an overdue already told is not told again */
        bool reminded = json_integer_value(json_array_get(row, 5)) != 0;
        if (json_integer_value(json_array_get(row, 6)) != 0)
            continue;
        sb_task_info t = {.id = json_integer_value(json_array_get(row, 0)),
                          .ticket_id = json_integer_value(json_array_get(row, 1)),
                          .assignee_id = json_integer_value(json_array_get(row, 2)),
                          .due_at = json_integer_value(json_array_get(row, 3)),
                          .remind_at = reminded ? 0 : json_integer_value(json_array_get(row, 4))};
        sb_engine_handle(d->eng, &(sb_event){.kind = SB_EV_TASK, .task = t}, now, &d->fx);
    }
}

/* A resolution counts in the dashboard's figures of the day. */
static void on_leave(void *arg, const sb_ticket_view *t, int64_t now)
{
    sb_dispatch *d = arg;
    if (t->status == SB_STATUS_RESOLVED)
        sb_dashboard_resolved(d->app->dashboard, t->created_at, now);
}

const sb_engine *sb_dispatch_engine(const sb_dispatch *d)
{
    return d != NULL ? d->eng : NULL;
}

sb_dispatch *sb_dispatch_start(sb_app *app)
{
    sb_dispatch *d = sb_xcalloc(1, sizeof *d);
    d->app = app;
    d->eng = sb_engine_new(NULL);
    sb_engine_on_leave(d->eng, on_leave, d);
    d->armed_for = INT64_MAX;
    d->timer = sb_xcalloc(1, sizeof *d->timer);
    uv_timer_init(app->loop, d->timer);
    d->timer->data = d;
    uv_unref((uv_handle_t *)d->timer);
    d->check = sb_xcalloc(1, sizeof *d->check);
    uv_check_init(app->loop, d->check);
    d->check->data = d;
    load_op l = {d, true, NULL, SB_EINTERNAL};
    sb_store_submit(app->store, load_run, load_done, &l);
    sb_store_flush(app->store);
    if (l.rc != 0 || l.out == NULL) {
        json_decref(l.out);
        sb_dispatch_stop(d);
        sb_dispatch_free(d);
        return NULL;
    }
    load_into(d, l.out);
    sb_log(SB_INFO, "dispatch", "engine ready open_tickets=%zu", sb_engine_open_tickets(d->eng));
    json_decref(l.out);
    malloc_trim(0); /* the rows were read once; give their memory back */
    flush_effects(d);
    return d;
}

static void free_timer(uv_handle_t *h)
{
    free(h);
}

void sb_dispatch_stop(sb_dispatch *d)
{
    if (d == NULL || d->stopped)
        return;
    submit_effects(d); /* what was decided is still stored */
    d->stopped = true;
    uv_timer_stop(d->timer);
    uv_close((uv_handle_t *)d->timer, free_timer);
    uv_check_stop(d->check);
    uv_close((uv_handle_t *)d->check, free_timer);
}

void sb_dispatch_free(sb_dispatch *d)
{
    if (d == NULL)
        return;
    sb_engine_free(d->eng);
    sb_effects_free(&d->fx);
    json_decref(d->blacklist);
    free(d);
}

static void reload_done(void *arg, int rc)
{
    load_op *l = arg;
    if (rc == 0 && l->out != NULL && !l->d->stopped) {
        put_config(l->d, l->out);
        flush_effects(l->d);
    }
    json_decref(l->out);
    free(l);
}

void sb_dispatch_reload(sb_dispatch *d)
{
    if (d == NULL || d->stopped)
        return;
    sb_calls_reload(d->app->calls); /* the IVR reads numbers, menus and calendars too */
    /* so do the website's call-back requests */
    sb_callbacks_reload(d->app->callbacks);
    load_op *l = sb_xcalloc(1, sizeof *l);
    l->d = d;
    sb_store_submit(d->app->store, load_run, reload_done, l);
}

typedef struct created_op {
    sb_dispatch *d;
    int64_t ticket_id;
    char *text;
    bool auto_reply;
    json_t *row;
} created_op;

static int created_run(sb_tx *tx, void *arg)
{
    created_op *c = arg;
    sb_stmt *s = sb_tx_query(tx, TICKET_ROW_SQL "WHERE t.id = ?", "i", c->ticket_id);
    if (s == NULL)
        return SB_EIO;
    if (sb_stmt_step(s) == 1) {
        c->row = json_array();
        for (int col = 0; col < TICKET_ROW_COLS; col++)
            json_array_append_new(c->row, sb_stmt_isnull(s, col)         ? json_null()
                                          : TICKET_ROW_TYPES[col] == 'i' ? json_integer(sb_stmt_int(s, col))
                                                                         : json_string(sb_stmt_text(s, col)));
    }
    sb_stmt_end(s);
    return 0;
}

static void created_done(void *arg, int rc)
{
    created_op *c = arg;
    sb_dispatch *d = c->d;
    sb_ticket_info info;
    if (rc == 0 && c->row != NULL && !d->stopped && ticket_info(c->row, &info) == 0) {
        sb_event ev = {.kind = SB_EV_TICKET_NEW, .ticket = info, .text = c->text, .auto_reply = c->auto_reply};
        int r = sb_engine_handle(d->eng, &ev, sb_clock_wall_ms(), &d->fx);
        if (r == SB_ECONFLICT) /* already known (reopened while open): a customer message */
            sb_engine_handle(
                d->eng,
                &(sb_event){
                    .kind = SB_EV_CUSTOMER_MESSAGE, .ticket_id = info.id, .text = c->text, .auto_reply = c->auto_reply},
                sb_clock_wall_ms(), &d->fx);
        flush_effects(d);
    }
    json_decref(c->row);
    free(c->text);
    free(c);
}

/* Reads a new or reopened ticket and hands it to the engine. */
static void read_ticket(sb_dispatch *d, int64_t ticket_id, const char *text, bool auto_reply)
{
    created_op *c = sb_xcalloc(1, sizeof *c);
    c->d = d;
    c->ticket_id = ticket_id;
    c->text = text != NULL ? sb_xstrdup(text) : NULL;
    c->auto_reply = auto_reply;
    sb_store_submit(d->app->store, created_run, created_done, c);
}

void sb_dispatch_ticket_created(sb_dispatch *d, int64_t ticket_id, const char *text, bool auto_reply)
{
    if (d == NULL || d->stopped)
        return;
    sb_dashboard_ticket_created(d->app->dashboard, sb_clock_wall_ms());
    read_ticket(d, ticket_id, text, auto_reply);
}

static const char *listed(const sb_dispatch *d, const char *kind, const char *value)
{
    size_t i;
    json_t *row;
    json_array_foreach (d->blacklist, i, row) {
        if (strcmp(json_string_value(json_array_get(row, 0)), kind) == 0 &&
            strcmp(json_string_value(json_array_get(row, 1)), value) == 0)
            return json_string_value(json_array_get(row, 2));
    }
    return NULL;
}

const char *sb_dispatch_blocked(sb_dispatch *d, int64_t contact_id, const char *phone, const char *email,
                                const char *handle)
{
    if (d == NULL || json_array_size(d->blacklist) == 0)
        return NULL;
    char buf[256];
    const char *why = NULL;
    snprintf(buf, sizeof buf, "%lld", (long long)contact_id);
    if (contact_id != 0)
        why = listed(d, "contact", buf);
    if (why == NULL && phone != NULL && sb_blacklist_normalize("phone", phone, buf, sizeof buf) == 0)
        why = listed(d, "phone", buf);
    if (why == NULL && email != NULL && sb_blacklist_normalize("email", email, buf, sizeof buf) == 0)
        why = listed(d, "email", buf);
    if (why == NULL && handle != NULL)
        why = listed(d, "handle", handle);
    return why;
}

typedef struct quarantine_op {
    sb_dispatch *d;
    int64_t ticket_id;
    char *reason;
    json_t *events; /* NULL when no agent stream listens */
    int64_t at;
} quarantine_op;

static int quarantine_run(sb_tx *tx, void *arg)
{
    quarantine_op *q = arg;
    int64_t now = sb_tx_now(tx);
    int rc = sb_tx_exec(tx,
                        "UPDATE ticket SET status = 'closed', closed_at = ?1, updated_at = ?1, "
                        "tags = CASE WHEN EXISTS (SELECT 1 FROM json_each(tags) WHERE value = 'blacklisted') "
                        "THEN tags ELSE json_insert(tags, '$[#]', 'blacklisted') END WHERE id = ?2",
                        "ii", now, q->ticket_id);
    if (rc == 0)
        rc = sb_event_log(tx, SYSTEM, "ticket", q->ticket_id, "ticket.blacklisted",
                          json_pack("{s:s}", "reason", q->reason));
    if (rc == 0 && q->events != NULL)
        sb_emit(q->events, "ticket.updated",
                json_pack("{s:o,s:s}", "ticket", sb_ticket_json(tx, q->ticket_id), "by", "engine"));
    q->at = now;
    return rc;
}

static void quarantine_done(void *arg, int rc)
{
    quarantine_op *q = arg;
    if (rc != 0)
        sb_log(SB_WARN, "dispatch", "blacklisted ticket %lld not closed rc=%d", (long long)q->ticket_id, rc);
    if (rc == 0 && q->events != NULL)
        sb_app_publish_built(q->d->app, q->events, q->at);
    else
        json_decref(q->events);
    free(q->reason);
    free(q);
}

void sb_dispatch_quarantine(sb_dispatch *d, int64_t ticket_id, const char *reason)
{
    if (d == NULL || d->stopped)
        return;
    /* the engine lets go of it if it had it (a contact listed later),
     * without rules: nothing may answer a blacklisted sender */
    sb_engine_handle(
        d->eng,
        &(sb_event){.kind = SB_EV_STATUS, .ticket_id = ticket_id, .status = SB_STATUS_CLOSED, .without_rules = true},
        sb_clock_wall_ms(), &d->fx);
    flush_effects(d);
    quarantine_op *q = sb_xcalloc(1, sizeof *q);
    q->d = d;
    q->events = sb_stream_subscribers(d->app->hub) > 0 ? json_array() : NULL;
    q->ticket_id = ticket_id;
    q->reason = sb_xstrdup(reason);
    sb_store_submit(d->app->store, quarantine_run, quarantine_done, q);
}

void sb_dispatch_ticket_known(sb_dispatch *d, const sb_ticket_info *info, const char *text, bool auto_reply)
{
    if (d == NULL || d->stopped)
        return;
    sb_dashboard_ticket_created(d->app->dashboard, sb_clock_wall_ms());
    sb_engine_handle(d->eng,
                     &(sb_event){.kind = SB_EV_TICKET_NEW, .ticket = *info, .text = text, .auto_reply = auto_reply},
                     sb_clock_wall_ms(), &d->fx);
    flush_effects(d);
}

void sb_dispatch_event(sb_dispatch *d, const sb_event *ev)
{
    if (d == NULL || d->stopped)
        return;
    /* an agent's first reply counts in the dashboard's first response times */
    sb_ticket_view before;
    bool unanswered = ev->kind == SB_EV_AGENT_REPLY && sb_engine_ticket(d->eng, ev->ticket_id, &before) == 0 &&
                      before.first_response_at == 0;
    int64_t now = sb_clock_wall_ms();
    int rc = sb_engine_handle(d->eng, ev, now, &d->fx);
    if (rc == SB_ENOTFOUND && ev->kind == SB_EV_CUSTOMER_MESSAGE) {
        /* the message reopened a resolved ticket, which had left the engine */
        read_ticket(d, ev->ticket_id, ev->text, ev->auto_reply);
        return;
    }
    if (rc == 0 && unanswered)
        sb_dashboard_first_response(d->app->dashboard, before.created_at, now);
    if (rc != 0 && rc != SB_ENOTFOUND)
        sb_log(SB_DEBUG, "dispatch", "event %d not taken rc=%d", (int)ev->kind, rc);
    flush_effects(d);
}
