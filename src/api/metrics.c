/* metrics.c - GET /api/v1/metrics/summary: service figures of a period
 * [from, to), overall, per team and per active agent. Minimum role:
 * supervisor.
 *
 * Definitions (docs/openapi.yaml repeats them):
 *  - tickets_created: tickets whose created_at is in [from, to).
 *  - first_response: over those created tickets that have a
 *    first_response_at (whenever it came), the minutes
 *    first_response_at - created_at.
 *  - tickets_resolved: tickets whose resolved_at is in [from, to), whenever
 *    they were created (a reopened ticket has none until it is resolved
 *    again; a ticket closed without being resolved has none).
 *  - resolution: over those, the minutes resolved_at - created_at.
 *  - count, median_minutes and p90_minutes: median and 90th percentile by
 *    nearest rank (the value at position ceil(p/100 * count) of the sorted
 *    list), in minutes rounded to one decimal; null when count is 0.
 *    business_median_minutes is the same median of the same durations
 *    counted in business time of the calendar named by the ticket's team
 *    (team.routing.calendar_id), calendar time when the team has none, the
 *    ticket has no team or the calendar cannot be built.
 *  - sla: event-log rows of tickets of type sla.met / sla.missed whose `at`
 *    is in [from, to), by the clock in their data (first_response,
 *    next_response, resolution); met_pct = 100 * met / (met + missed),
 *    one decimal, null when both are 0.
 *  - reassignments: ticket.assigned rows whose `at` is in [from, to) for a
 *    ticket that already had an earlier ticket.assigned row with a non-null
 *    "to": every assignment (or unassignment) after the ticket's first one.
 *  - Every figure belongs to the ticket's *current* team and assignee:
 *    "teams" has every team, "agents" every active agent (zeros when
 *    nothing). team_id / agent_id restrict every figure, overall included,
 *    to the tickets of that team / assignee; the lists keep every entry.
 *
 * The whole computation is one transaction script: it reads the ticket and
 * event tables in full (neither has an index on the times asked about) and
 * builds the response text on the store thread. Measured on the 2-core
 * machine with 200,000 tickets and 2.4 million event rows: 0.15-0.2 s for
 * one day, about 1 s for a year, most of it the event scan; every other
 * store op waits meanwhile. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "base/clock.h"
#include "base/log.h"
#include "engine/calendar.h"

#define MAX_SPAN_MS  (366LL * 24 * 3600 * 1000)
#define MS_PER_TENTH 6000 /* a tenth of a minute */

enum { CLOCK_FIRST_RESPONSE, CLOCK_NEXT_RESPONSE, CLOCK_RESOLUTION, CLOCK_COUNT };
static const char *const clock_names[CLOCK_COUNT] = {"first_response", "next_response", "resolution"};

/* ---- query parameters (parsed on the loop, reported by the action) ---- */

typedef struct summary_args {
    int64_t from, to;          /* [from, to), Unix ms */
    int64_t team_id, agent_id; /* 0: no filter */
    char error[240];           /* the 422 message; "" when valid */
} summary_args;

static const char *const known_params[] = {"from", "to", "team_id", "agent_id"};

/* Refuses unknown and repeated parameters; 0 or -1 with a->error set. */
static int check_param_names(sb_http_req *req, summary_args *a)
{
    char bad[40];
    bool repeated = false;
    if (sb_http_req_query_names(req, known_params, SB_ARRAY_LEN(known_params), bad, sizeof bad, &repeated) == 0)
        return 0;
    if (repeated)
        sb_errorf(a->error, sizeof a->error, "parameter '%s' is given more than once", bad);
    else
        sb_errorf(a->error, sizeof a->error, "unknown parameter '%s' (known: from, to, team_id, agent_id)", bad);
    return -1;
}

static int parse_time(sb_http_req *req, const char *name, int64_t *out, summary_args *a)
{
    const char *v = sb_http_req_query_param(req, name);
    if (v == NULL || v[0] == '\0') {
        sb_errorf(a->error, sizeof a->error,
                  "parameter '%s' is required: an ISO 8601 time such as 2026-11-01T00:00:00Z", name);
        return -1;
    }
    if (sb_clock_parse_iso(v, out) != 0) {
        sb_errorf(a->error, sizeof a->error,
                  "parameter '%s' must be an ISO 8601 time such as 2026-11-01T00:00:00Z or "
                  "2026-11-01T03:00:00%%2B03:00 (a '+' must be sent as %%2B)",
                  name);
        return -1;
    }
    return 0;
}

static int parse_id(sb_http_req *req, const char *name, int64_t *out, summary_args *a)
{
    const char *v = sb_http_req_query_param(req, name);
    if (v != NULL && (!sb_api_parse_id(v, out) || *out == 0)) {
        sb_errorf(a->error, sizeof a->error, "parameter '%s' must be a positive integer id", name);
        return -1;
    }
    return 0;
}

/* Reads the query on the loop (the request is not the store thread's to
 * touch). Errors are reported by the action, after authentication, so a
 * caller without the role learns nothing about the parameters. */
static void parse_args(sb_http_req *req, summary_args *a)
{
    if (check_param_names(req, a) != 0 || parse_time(req, "from", &a->from, a) != 0 ||
        parse_time(req, "to", &a->to, a) != 0 || parse_id(req, "team_id", &a->team_id, a) != 0 ||
        parse_id(req, "agent_id", &a->agent_id, a) != 0)
        return;
    if (a->to <= a->from)
        sb_errorf(a->error, sizeof a->error, "parameter 'to' must be later than 'from'");
    else if (a->to - a->from > MAX_SPAN_MS)
        sb_errorf(a->error, sizeof a->error, "parameter 'to' must be at most 366 days after 'from'");
}

/* ---- figures ---- */

/* Durations in ms, sorted only when the statistics are taken. */
typedef struct series {
    int64_t *v;
    size_t n, cap;
} series;

static void series_add(series *s, int64_t ms)
{
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 16;
        s->v = sb_xrealloc(s->v, s->cap * sizeof *s->v);
    }
    s->v[s->n++] = ms;
}

typedef struct group {
    int64_t id;          /* team or agent id; 0 for overall */
    char *name;          /* NULL for overall */
    int64_t calendar_id; /* teams: routing.calendar_id, 0 if none */
    int64_t created, resolved, reassignments;
    int64_t csat_count, csat_sum; /* survey answers given in the period */
    series first_response, first_response_business;
    series resolution, resolution_business;
    int64_t met[CLOCK_COUNT], missed[CLOCK_COUNT];
} group;

static void group_close(group *g)
{
    free(g->name);
    free(g->first_response.v);
    free(g->first_response_business.v);
    free(g->resolution.v);
    free(g->resolution_business.v);
}

typedef struct calendar_entry {
    int64_t id;
    sb_calendar *cal; /* NULL: missing or invalid; calendar time then */
} calendar_entry;

typedef struct summary {
    group overall;
    group *teams, *agents; /* sorted by id */
    size_t nteams, nagents;
    calendar_entry *calendars; /* loaded on first use, once per request */
    size_t ncalendars;
} summary;

static void summary_close(summary *s)
{
    group_close(&s->overall);
    for (size_t i = 0; i < s->nteams; i++)
        group_close(&s->teams[i]);
    for (size_t i = 0; i < s->nagents; i++)
        group_close(&s->agents[i]);
    for (size_t i = 0; i < s->ncalendars; i++)
        sb_calendar_free(s->calendars[i].cal);
    free(s->teams);
    free(s->agents);
    free(s->calendars);
}

static int cmp_group_id(const void *key, const void *elem)
{
    int64_t id = *(const int64_t *)key, other = ((const group *)elem)->id;
    return id < other ? -1 : id > other;
}

/* The team's or agent's group, or NULL (no team / assignee, an inactive
 * agent, a team that is gone). */
static group *find_group(group *v, size_t n, int64_t id)
{
    return id > 0 && n > 0 ? bsearch(&id, v, n, sizeof *v, cmp_group_id) : NULL;
}

/* Loads groups from `s`: column 0 id, 1 name, 2 (teams) calendar id. */
static int load_groups(sb_stmt *s, group **out, size_t *n)
{
    if (s == NULL)
        return SB_EIO;
    size_t cap = 0;
    int rc;
    while ((rc = sb_stmt_step(s)) == 1) {
        if (*n == cap) {
            cap = cap ? cap * 2 : 16;
            *out = sb_xrealloc(*out, cap * sizeof **out);
        }
        group *g = &(*out)[(*n)++];
        memset(g, 0, sizeof *g);
        g->id = sb_stmt_int(s, 0);
        g->name = sb_xstrdup(sb_stmt_text(s, 1) ? sb_stmt_text(s, 1) : "");
        g->calendar_id = sb_stmt_int(s, 2);
    }
    sb_stmt_end(s);
    return rc < 0 ? rc : 0;
}

/* The calendar `id` as the engine builds it (without "id" and "name"),
 * loaded from the store the first time this request needs it. */
static int get_calendar(sb_tx *tx, summary *sum, int64_t id, const sb_calendar **out)
{
    *out = NULL;
    if (id <= 0)
        return 0;
    for (size_t i = 0; i < sum->ncalendars; i++)
        if (sum->calendars[i].id == id) {
            *out = sum->calendars[i].cal;
            return 0;
        }
    sb_stmt *s = sb_tx_query(tx, "SELECT data FROM config_item WHERE kind = 'calendar' AND id = ?", "i", id);
    if (s == NULL)
        return SB_EIO;
    int rc = sb_stmt_step(s);
    json_t *doc = rc == 1 ? json_loads(sb_stmt_text(s, 0), 0, NULL) : NULL;
    sb_stmt_end(s);
    if (rc < 0)
        return rc;
    sb_calendar *cal = NULL;
    if (json_is_object(doc)) {
        json_object_del(doc, "id");
        json_object_del(doc, "name");
        char field[64], msg[160];
        if (sb_calendar_from_json(doc, &cal, field, sizeof field, msg, sizeof msg) != 0)
            sb_log(SB_WARN, "metrics", "calendar=%lld unusable, counting calendar time: %s: %s", (long long)id, field,
                   msg);
    } else {
        sb_log(SB_WARN, "metrics", "calendar=%lld missing or not an object, counting calendar time", (long long)id);
    }
    json_decref(doc);
    sum->calendars = sb_xrealloc(sum->calendars, (sum->ncalendars + 1) * sizeof *sum->calendars);
    sum->calendars[sum->ncalendars++] = (calendar_entry){id, cal};
    *out = cal;
    return 0;
}

static int64_t business_ms(const sb_calendar *cal, int64_t from, int64_t to)
{
    return cal != NULL ? sb_calendar_elapsed(cal, from, to) : to - from;
}

/* Both time filters in one pass over the ticket table: a ticket can be
 * created in the period, resolved in it, or both. */
static int scan_tickets(sb_tx *tx, const summary_args *a, summary *sum)
{
    sb_stmt *s =
        sb_tx_query(tx,
                    "SELECT team_id, assignee_id, created_at, first_response_at, resolved_at FROM ticket "
                    "WHERE ((created_at >= ?1 AND created_at < ?2) OR (resolved_at >= ?1 AND resolved_at < ?2)) "
                    "AND (?3 IS NULL OR team_id = ?3) AND (?4 IS NULL OR assignee_id = ?4)",
                    "iiII", a->from, a->to, a->team_id, a->agent_id);
    if (s == NULL)
        return SB_EIO;
    int rc;
    while ((rc = sb_stmt_step(s)) == 1) {
        group *team = find_group(sum->teams, sum->nteams, sb_stmt_int(s, 0));
        group *agent = find_group(sum->agents, sum->nagents, sb_stmt_int(s, 1));
        group *in[3] = {&sum->overall, team, agent};
        int64_t created = sb_stmt_int(s, 2);
        bool has_first = !sb_stmt_isnull(s, 3), has_resolved = !sb_stmt_isnull(s, 4);
        int64_t first = sb_stmt_int(s, 3), resolved = sb_stmt_int(s, 4);
        bool counts_created = created >= a->from && created < a->to;
        bool counts_resolved = has_resolved && resolved >= a->from && resolved < a->to;
        const sb_calendar *cal = NULL;
        if (team != NULL && (counts_resolved || (counts_created && has_first))) {
            rc = get_calendar(tx, sum, team->calendar_id, &cal);
            if (rc != 0)
                break;
        }
        for (size_t i = 0; i < SB_ARRAY_LEN(in); i++) {
            group *g = in[i];
            if (g == NULL)
                continue;
            if (counts_created) {
                g->created++;
                if (has_first) {
                    series_add(&g->first_response, first - created);
                    series_add(&g->first_response_business, business_ms(cal, created, first));
                }
            }
            if (counts_resolved) {
                g->resolved++;
                series_add(&g->resolution, resolved - created);
                series_add(&g->resolution_business, business_ms(cal, created, resolved));
            }
        }
    }
    sb_stmt_end(s);
    return rc < 0 ? rc : 0;
}

/* Survey answers (ticket.csat) given in the period. */
static int scan_csat(sb_tx *tx, const summary_args *a, summary *sum)
{
    sb_stmt *s = sb_tx_query(tx,
                             "SELECT team_id, assignee_id, csat_score FROM ticket WHERE csat_at >= ?1 AND csat_at < ?2 "
                             "AND (?3 IS NULL OR team_id = ?3) AND (?4 IS NULL OR assignee_id = ?4)",
                             "iiII", a->from, a->to, a->team_id, a->agent_id);
    if (s == NULL)
        return SB_EIO;
    int rc;
    while ((rc = sb_stmt_step(s)) == 1) {
        group *in[3] = {&sum->overall, find_group(sum->teams, sum->nteams, sb_stmt_int(s, 0)),
                        find_group(sum->agents, sum->nagents, sb_stmt_int(s, 1))};
        for (size_t i = 0; i < SB_ARRAY_LEN(in); i++)
            if (in[i] != NULL) {
                in[i]->csat_count++;
                in[i]->csat_sum += sb_stmt_int(s, 2);
            }
    }
    sb_stmt_end(s);
    return rc < 0 ? rc : 0;
}

/* SLA outcomes and reassignments in one pass over the event log. The
 * earlier-assignment test uses the event_entity index (hence the
 * `type <> 'message.created'` term, the index's own condition). */
static int scan_events(sb_tx *tx, const summary_args *a, summary *sum)
{
    sb_stmt *s =
        sb_tx_query(tx,
                    "SELECT e.type, json_extract(e.data, '$.clock'), t.team_id, t.assignee_id FROM event e "
                    "JOIN ticket t ON t.id = e.entity_id "
                    "WHERE e.at >= ?1 AND e.at < ?2 AND e.entity = 'ticket' "
                    "AND e.type IN ('sla.met', 'sla.missed', 'ticket.assigned') "
                    "AND (?3 IS NULL OR t.team_id = ?3) AND (?4 IS NULL OR t.assignee_id = ?4) "
                    "AND (e.type <> 'ticket.assigned' OR EXISTS (SELECT 1 FROM event p WHERE p.entity = 'ticket' "
                    "AND p.entity_id = e.entity_id AND p.type <> 'message.created' AND p.type = 'ticket.assigned' "
                    "AND p.id < e.id AND json_extract(p.data, '$.to') IS NOT NULL))",
                    "iiII", a->from, a->to, a->team_id, a->agent_id);
    if (s == NULL)
        return SB_EIO;
    int rc;
    while ((rc = sb_stmt_step(s)) == 1) {
        const char *type = sb_stmt_text(s, 0);
        const char *clock = sb_stmt_text(s, 1);
        group *in[3] = {&sum->overall, find_group(sum->teams, sum->nteams, sb_stmt_int(s, 2)),
                        find_group(sum->agents, sum->nagents, sb_stmt_int(s, 3))};
        bool reassigned = strcmp(type, "ticket.assigned") == 0;
        bool met = strcmp(type, "sla.met") == 0;
        int c = 0;
        while (!reassigned && c < CLOCK_COUNT && (clock == NULL || strcmp(clock, clock_names[c]) != 0))
            c++;
        if (!reassigned && c == CLOCK_COUNT)
            continue; /* a clock this version does not know */
        for (size_t i = 0; i < SB_ARRAY_LEN(in); i++) {
            if (in[i] == NULL)
                continue;
            if (reassigned)
                in[i]->reassignments++;
            else if (met)
                in[i]->met[c]++;
            else
                in[i]->missed[c]++;
        }
    }
    sb_stmt_end(s);
    return rc < 0 ? rc : 0;
}

/* ---- JSON ---- */

/* Tenths rounded half away from zero, as a number with one decimal. */
static json_t *tenths_json(int64_t num, int64_t den)
{
    int64_t t = num >= 0 ? (num + den / 2) / den : -((-num + den / 2) / den);
    return json_real((double)t / 10.0);
}

static int cmp_int64(const void *x, const void *y)
{
    int64_t a = *(const int64_t *)x, b = *(const int64_t *)y;
    return a < b ? -1 : a > b;
}

/* Nearest rank: the value at position ceil(pct/100 * n) of the sorted list. */
static json_t *percentile_json(series *s, int pct)
{
    if (s->n == 0)
        return json_null();
    size_t rank = (s->n * (size_t)pct + 99) / 100;
    return tenths_json(s->v[rank - 1], MS_PER_TENTH);
}

static void series_sort(series *s)
{
    if (s->n > 1) /* v is NULL while n is 0, and qsort must not get NULL */
        qsort(s->v, s->n, sizeof *s->v, cmp_int64);
}

static json_t *durations_json(series *calendar, series *business)
{
    series_sort(calendar);
    series_sort(business);
    return json_pack("{s:I,s:o,s:o,s:o}", "count", (json_int_t)calendar->n, "median_minutes",
                     percentile_json(calendar, 50), "p90_minutes", percentile_json(calendar, 90),
                     "business_median_minutes", percentile_json(business, 50));
}

/* Adds the figures of `g` to `obj`; returns obj. */
static json_t *group_json(group *g, json_t *obj)
{
    json_t *sla = json_object();
    for (int c = 0; c < CLOCK_COUNT; c++) {
        int64_t all = g->met[c] + g->missed[c];
        json_object_set_new(sla, clock_names[c],
                            json_pack("{s:I,s:I,s:o}", "met", (json_int_t)g->met[c], "missed", (json_int_t)g->missed[c],
                                      "met_pct", all > 0 ? tenths_json(1000 * g->met[c], all) : json_null()));
    }
    json_object_set_new(obj, "tickets_created", json_integer(g->created));
    json_object_set_new(obj, "tickets_resolved", json_integer(g->resolved));
    json_object_set_new(obj, "first_response", durations_json(&g->first_response, &g->first_response_business));
    json_object_set_new(obj, "resolution", durations_json(&g->resolution, &g->resolution_business));
    json_object_set_new(obj, "sla", sla);
    json_object_set_new(obj, "reassignments", json_integer(g->reassignments));
    json_object_set_new(obj, "csat",
                        json_pack("{s:I,s:o}", "count", (json_int_t)g->csat_count, "average",
                                  g->csat_count > 0 ? tenths_json(10 * g->csat_sum, g->csat_count) : json_null()));
    return obj;
}

static json_t *groups_json(group *v, size_t n, const char *id_key)
{
    json_t *list = json_array();
    for (size_t i = 0; i < n; i++) {
        json_t *obj = json_object();
        json_object_set_new(obj, id_key, json_integer(v[i].id));
        json_object_set_new(obj, "name", sb_json_text(v[i].name));
        json_array_append_new(list, group_json(&v[i], obj));
    }
    return list;
}

/* ---- the action ---- */

static int check_filter(sb_tx *tx, sb_api_op *op, const char *sql, int64_t id, const char *param, const char *what)
{
    if (id == 0)
        return 0;
    int64_t one = 0;
    int rc = sb_tx_int(tx, &one, sql, "i", id);
    if (rc < 0)
        return rc;
    if (rc == 0)
        return sb_api_fail(op, 422, "validation_failed", "parameter '%s': no %s %lld", param, what, (long long)id);
    return 0;
}

static int summary_action(sb_tx *tx, sb_api_op *op)
{
    const summary_args *a = op->ctx;
    if (a->error[0] != '\0')
        return sb_api_fail(op, 422, "validation_failed", "%s", a->error);
    int rc = check_filter(tx, op, "SELECT 1 FROM team WHERE id = ?", a->team_id, "team_id", "team");
    if (rc == 0)
        rc = check_filter(tx, op, "SELECT 1 FROM agent WHERE id = ?", a->agent_id, "agent_id", "agent");
    if (rc != 0)
        return rc;
    summary sum;
    memset(&sum, 0, sizeof sum);
    rc = load_groups(
        sb_tx_query(tx, "SELECT id, name, json_extract(routing, '$.calendar_id') FROM team ORDER BY id", ""),
        &sum.teams, &sum.nteams);
    if (rc == 0)
        rc = load_groups(sb_tx_query(tx, "SELECT id, name, 0 FROM agent WHERE active = 1 ORDER BY id", ""), &sum.agents,
                         &sum.nagents);
    if (rc == 0)
        rc = scan_tickets(tx, a, &sum);
    if (rc == 0)
        rc = scan_events(tx, a, &sum);
    if (rc == 0)
        rc = scan_csat(tx, a, &sum);
    if (rc != 0)
        goto out;
    char from[40], to[40];
    sb_clock_format_iso(a->from, from, sizeof from);
    sb_clock_format_iso(a->to, to, sizeof to);
    json_t *body = json_pack(
        "{s:s,s:s,s:o,s:o,s:o}", "from", from, "to", to, "overall", group_json(&sum.overall, json_object()), "teams",
        groups_json(sum.teams, sum.nteams, "team_id"), "agents", groups_json(sum.agents, sum.nagents, "agent_id"));
    /* Serialised here rather than by the op, to print 12.3 and not
     * 12.300000000000001 (jansson's default is 17 significant digits);
     * out_on_loop tells the op that the text is already made. */
    op->out_text = body != NULL ? json_dumps(body, JSON_COMPACT | JSON_REAL_PRECISION(15)) : NULL;
    json_decref(body);
    if (op->out_text == NULL) {
        rc = SB_EINTERNAL;
        goto out;
    }
    op->out_on_loop = true;
out:
    summary_close(&sum);
    return rc;
}

bool sb_api_metrics_route(sb_app *app, sb_http_req *req, const char *path)
{
    if (strcmp(path, "/api/v1/metrics/summary") != 0)
        return false;
    sb_http_method m = sb_http_req_method(req);
    if (m != SB_HTTP_GET && m != SB_HTTP_HEAD) {
        sb_respond_method_not_allowed(req, "GET");
        return true;
    }
    summary_args *a = sb_xcalloc(1, sizeof *a);
    parse_args(req, a);
    sb_api_op *op = sb_api_op_new(app, req, SB_ROLE_SUPERVISOR, summary_action);
    op->ctx = a;
    op->ctx_free = free;
    sb_api_submit(op);
    return true;
}
