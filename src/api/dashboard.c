/* dashboard.c - the supervisors' live dashboard (see dashboard.h).
 *
 * Definitions (docs/openapi.yaml repeats them):
 *  - open: the engine's open tickets (new, open, pending).
 *  - waiting: open tickets with no owner whose status is new or open (a
 *    pending ticket waits for the customer, not for us).
 *  - longest_wait_seconds: over the waiting tickets whose customer waits
 *    for an answer, the time since the customer's first message not yet
 *    answered (after a restart: since the ticket's creation).
 *  - sla_at_risk / sla_breached: open tickets with a running SLA clock past
 *    its warning but not its due time / past its due time.
 *  - today (UTC day): created = tickets opened by a customer's message
 *    (blacklisted senders' tickets excluded); first_response = agents' first
 *    replies given today, measured from the ticket's creation; resolved and
 *    resolution = resolutions today (each time a ticket becomes resolved),
 *    measured from its creation; csat = survey answers received today;
 *    volume_by_hour = tickets created in each UTC hour of the day. Medians
 *    by nearest rank, as in /api/v1/metrics/summary. */
#include "api/dashboard.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "api/stream.h"
#include "base/clock.h"
#include "base/log.h"
#include "dispatch.h"

#define DASHBOARD_MAGIC 0xDA5B0A2Du
#define TICK_MS         1000
#define HEARTBEAT_MS    5000
#define DAY_MS          (24LL * 3600 * 1000)
#define HOUR_MS         (3600LL * 1000)

/* Durations in ms, in no order until a median is asked for. */
typedef struct series {
    int64_t *v;
    size_t n, cap;
    bool sorted;
    int64_t sum;
} series;

typedef struct today {
    int64_t day; /* days since the epoch (UTC) */
    int64_t created, resolved;
    int64_t by_hour[24];
    series first_response, resolution;
    int64_t csat_sum, csat_count;
} today;

struct sb_dashboard {
    unsigned magic;
    sb_app *app;
    uv_timer_t *timer; /* heap: freed by its close callback */
    bool dirty;
    bool stopped;
    int64_t last_sent; /* wall ms of the last stream event */
    today day;
};

static int64_t day_of(int64_t ms)
{
    return ms >= 0 ? ms / DAY_MS : (ms - DAY_MS + 1) / DAY_MS;
}

static void series_add(series *s, int64_t ms)
{
    if (ms < 0)
        ms = 0; /* clocks of different machines: never a negative duration */
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 64;
        s->v = sb_xrealloc(s->v, s->cap * sizeof *s->v);
    }
    s->v[s->n++] = ms;
    s->sum += ms;
    s->sorted = false;
}

static void series_clear(series *s)
{
    free(s->v);
    *s = (series){0};
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static json_t *seconds(int64_t ms)
{
    return json_real((double)((ms + 50) / 100) / 10.0); /* one decimal */
}

/* {count, median_seconds, average_seconds}; the medians by nearest rank. */
static json_t *series_json(series *s)
{
    if (s->n == 0)
        return json_pack("{s:i,s:n,s:n}", "count", 0, "median_seconds", "average_seconds");
    if (!s->sorted) {
        qsort(s->v, s->n, sizeof *s->v, cmp_i64);
        s->sorted = true;
    }
    size_t rank = (s->n + 1) / 2; /* ceil(n / 2), 1-based */
    return json_pack("{s:I,s:o,s:o}", "count", (json_int_t)s->n, "median_seconds", seconds(s->v[rank - 1]),
                     "average_seconds", seconds(s->sum / (int64_t)s->n));
}

/* Starts the figures again when the day changed. */
static void roll(sb_dashboard *d, int64_t now)
{
    int64_t day = day_of(now);
    if (day == d->day.day)
        return;
    series_clear(&d->day.first_response);
    series_clear(&d->day.resolution);
    d->day = (today){.day = day};
    d->dirty = true;
}

/* Whether `at` is in the current day (after rolling over to it). */
static bool in_day(sb_dashboard *d, int64_t at)
{
    roll(d, at);
    return day_of(at) == d->day.day;
}

void sb_dashboard_touch(sb_dashboard *d)
{
    if (d != NULL)
        d->dirty = true;
}

void sb_dashboard_ticket_created(sb_dashboard *d, int64_t at)
{
    if (d == NULL || !in_day(d, at))
        return;
    d->day.created++;
    d->day.by_hour[(at - d->day.day * DAY_MS) / HOUR_MS]++;
    d->dirty = true;
}

void sb_dashboard_first_response(sb_dashboard *d, int64_t created_at, int64_t at)
{
    if (d == NULL || !in_day(d, at))
        return;
    series_add(&d->day.first_response, at - created_at);
    d->dirty = true;
}

void sb_dashboard_resolved(sb_dashboard *d, int64_t created_at, int64_t at)
{
    if (d == NULL || !in_day(d, at))
        return;
    d->day.resolved++;
    series_add(&d->day.resolution, at - created_at);
    d->dirty = true;
}

void sb_dashboard_csat(sb_dashboard *d, int score, int64_t at)
{
    if (d == NULL || score < 1 || score > 5 || !in_day(d, at))
        return;
    d->day.csat_sum += score;
    d->day.csat_count++;
    d->dirty = true;
}

/* ---- the snapshot ---- */

/* Figures of one team, one channel kind, or all. */
typedef struct group {
    int64_t team_id;
    const char *name; /* team name or channel kind; the engine's, borrowed */
    int waiting, open, at_risk, breached;
    int64_t oldest; /* earliest waiting_since of the waiting tickets; 0 = none */
} group;

typedef struct groups {
    group *v;
    size_t n, cap;
} groups;

typedef struct collect {
    int64_t now;
    groups teams, channels;
    group total;
} collect;

static group *groups_add(groups *g, int64_t team_id, const char *name)
{
    if (g->n == g->cap) {
        g->cap = g->cap ? g->cap * 2 : 8;
        g->v = sb_xrealloc(g->v, g->cap * sizeof *g->v);
    }
    g->v[g->n] = (group){.team_id = team_id, .name = name};
    return &g->v[g->n++];
}

static void add_team(void *arg, int64_t id, const char *name)
{
    collect *c = arg;
    groups_add(&c->teams, id, name);
}

static void count(group *g, const sb_ticket_view *t)
{
    g->open++;
    g->at_risk += t->sla_at_risk;
    g->breached += t->sla_breached;
    if (t->assignee_id != 0 || (t->status != SB_STATUS_NEW && t->status != SB_STATUS_OPEN))
        return;
    g->waiting++;
    if (t->waiting_since != 0 && (g->oldest == 0 || t->waiting_since < g->oldest))
        g->oldest = t->waiting_since;
}

static void add_ticket(void *arg, const sb_ticket_view *t)
{
    collect *c = arg;
    group *team = NULL, *channel = NULL;
    for (size_t i = 0; i < c->teams.n && team == NULL; i++)
        if (c->teams.v[i].team_id == t->team_id)
            team = &c->teams.v[i];
    if (team == NULL) /* a team the engine does not know (deleted) */
        team = groups_add(&c->teams, t->team_id, NULL);
    for (size_t i = 0; i < c->channels.n && channel == NULL; i++)
        if (strcmp(c->channels.v[i].name, t->channel_type.v) == 0)
            channel = &c->channels.v[i];
    if (channel == NULL)
        channel = groups_add(&c->channels, 0, sb_xstrdup(t->channel_type.v));
    count(team, t);
    count(channel, t);
    count(&c->total, t);
}

static json_t *group_json(const group *g, int64_t now)
{
    int64_t wait = g->oldest != 0 && now > g->oldest ? (now - g->oldest) / 1000 : 0;
    return json_pack("{s:i,s:I,s:i,s:i,s:i}", "waiting", g->waiting, "longest_wait_seconds", (json_int_t)wait, "open",
                     g->open, "sla_at_risk", g->at_risk, "sla_breached", g->breached);
}

static json_t *time_or_null(int64_t ms)
{
    if (ms <= 0)
        return json_null();
    char buf[40];
    sb_clock_format_iso(ms, buf, sizeof buf);
    return json_string(buf);
}

typedef struct agents_ctx {
    json_t *list;
    int64_t now;
} agents_ctx;

static void add_agent(void *arg, const sb_agent_view *a)
{
    agents_ctx *c = arg;
    bool absent = a->absent_until > c->now;
    json_array_append_new(c->list,
                          json_pack("{s:I,s:s,s:s,s:b,s:o,s:o,s:f,s:f,s:i}", "id", (json_int_t)a->id, "name",
                                    a->name ? a->name : "", "presence", sb_presence_name(a->presence), "absent", absent,
                                    "absent_until", time_or_null(absent ? a->absent_until : 0), "deputy_id",
                                    absent && a->deputy_id != 0 ? json_integer(a->deputy_id) : json_null(), "load",
                                    (double)((int64_t)(a->load * 100 + 0.5)) / 100, "capacity", a->capacity,
                                    "open_tickets", a->open_tickets));
}

static json_t *today_json(sb_dashboard *d)
{
    today *t = &d->day;
    json_t *hours = json_array();
    for (int h = 0; h < 24; h++)
        json_array_append_new(hours, json_integer(t->by_hour[h]));
    json_t *csat = t->csat_count > 0
                       ? json_pack("{s:I,s:f}", "count", (json_int_t)t->csat_count, "average",
                                   (double)((t->csat_sum * 100 + t->csat_count / 2) / t->csat_count) / 100)
                       : json_pack("{s:i,s:n}", "count", 0, "average");
    return json_pack("{s:o,s:s,s:I,s:I,s:o,s:o,s:o,s:o}", "day_start", time_or_null(t->day * DAY_MS), "time_zone",
                     "UTC", "created", (json_int_t)t->created, "resolved", (json_int_t)t->resolved, "first_response",
                     series_json(&t->first_response), "resolution", series_json(&t->resolution), "csat", csat,
                     "volume_by_hour", hours);
}

json_t *sb_dashboard_snapshot(sb_dashboard *d, int64_t now)
{
    if (d == NULL)
        return json_object();
    roll(d, now);
    const sb_engine *eng = sb_dispatch_engine(d->app->dispatch);
    collect c = {.now = now};
    groups_add(&c.teams, 0, NULL); /* the shared inbox: tickets of no team */
    json_t *agents = json_array();
    if (eng != NULL) {
        sb_engine_each_team(eng, add_team, &c);
        sb_engine_each_ticket(eng, add_ticket, &c);
        agents_ctx a = {agents, now};
        sb_engine_each_agent(eng, add_agent, &a);
    }
    json_t *teams = json_array(), *channels = json_array();
    for (size_t i = 0; i < c.teams.n; i++) {
        json_t *g = group_json(&c.teams.v[i], now);
        json_object_set_new(g, "team_id", c.teams.v[i].team_id ? json_integer(c.teams.v[i].team_id) : json_null());
        json_object_set_new(g, "name", c.teams.v[i].name ? json_string(c.teams.v[i].name) : json_null());
        json_array_append_new(teams, g);
    }
    for (size_t i = 0; i < c.channels.n; i++) {
        json_t *g = group_json(&c.channels.v[i], now);
        json_object_set_new(g, "kind", json_string(c.channels.v[i].name));
        json_array_append_new(channels, g);
        free((char *)c.channels.v[i].name);
    }
    free(c.teams.v);
    free(c.channels.v);
    return json_pack("{s:o,s:o,s:o,s:o,s:o,s:o}", "at", time_or_null(now), "totals", group_json(&c.total, now), "teams",
                     teams, "channels", channels, "agents", agents, "today", today_json(d));
}

/* ---- the stream ---- */

static void on_tick(uv_timer_t *h)
{
    sb_dashboard *d = h->data;
    SB_ASSERT(d->magic == DASHBOARD_MAGIC);
    int64_t now = sb_clock_wall_ms();
    roll(d, now);
    if (d->app->hub == NULL || sb_stream_subscribers_role(d->app->hub, SB_ROLE_SUPERVISOR) == 0)
        return; /* the dirty mark stays for the next listener */
    if (!d->dirty && now - d->last_sent < HEARTBEAT_MS)
        return;
    json_t *ev =
        json_pack("{s:s,s:o,s:o}", "type", "dashboard", "data", sb_dashboard_snapshot(d, now), "at", time_or_null(now));
    char *text = json_dumps(ev, JSON_COMPACT);
    json_decref(ev);
    if (text == NULL)
        return;
    sb_str one = {text, strlen(text)};
    sb_stream_broadcast_role(d->app->hub, SB_ROLE_SUPERVISOR, &one, 1);
    d->app->metrics.events_published++;
    free(text);
    d->dirty = false;
    d->last_sent = now;
}

/* ---- start-up: the figures of the day so far ---- */

typedef struct load_op {
    int64_t day_start;
    today *t;
} load_op;

static int load_run(sb_tx *tx, void *arg)
{
    load_op *l = arg;
    today *t = l->t;
    sb_stmt *s = sb_tx_query(tx,
                             "SELECT created_at FROM ticket WHERE created_at >= ? AND NOT EXISTS "
                             "(SELECT 1 FROM json_each(ticket.tags) WHERE value = 'blacklisted')",
                             "i", l->day_start);
    while (s != NULL && sb_stmt_step(s) == 1) {
        int64_t hour = (sb_stmt_int(s, 0) - l->day_start) / HOUR_MS;
        t->created++;
        t->by_hour[hour < 24 ? hour : 23]++;
    }
    sb_stmt_end(s);
    if (s == NULL)
        return SB_EIO;
    s = sb_tx_query(tx, "SELECT first_response_at - created_at FROM ticket WHERE first_response_at >= ?", "i",
                    l->day_start);
    while (s != NULL && sb_stmt_step(s) == 1)
        series_add(&t->first_response, sb_stmt_int(s, 0));
    sb_stmt_end(s);
    s = sb_tx_query(tx, "SELECT resolved_at - created_at FROM ticket WHERE resolved_at >= ?", "i", l->day_start);
    while (s != NULL && sb_stmt_step(s) == 1) {
        t->resolved++;
        series_add(&t->resolution, sb_stmt_int(s, 0));
    }
    sb_stmt_end(s);
    s = sb_tx_query(tx, "SELECT csat_score FROM ticket WHERE csat_at >= ? AND csat_score BETWEEN 1 AND 5", "i",
                    l->day_start);
    while (s != NULL && sb_stmt_step(s) == 1) {
        t->csat_sum += sb_stmt_int(s, 0);
        t->csat_count++;
    }
    sb_stmt_end(s);
    return 0;
}

static void load_done(void *arg, int rc)
{
    if (rc != 0)
        sb_log(SB_WARN, "dashboard", "today's figures not read rc=%d; counting from now", rc);
    (void)arg;
}

sb_dashboard *sb_dashboard_start(sb_app *app)
{
    sb_dashboard *d = sb_xcalloc(1, sizeof *d);
    d->magic = DASHBOARD_MAGIC;
    d->app = app;
    int64_t now = sb_clock_wall_ms();
    today t = {.day = day_of(now)};
    load_op l = {t.day * DAY_MS, &t};
    sb_store_submit(app->store, load_run, load_done, &l);
    sb_store_flush(app->store);
    d->day = t;
    d->dirty = true;
    d->timer = sb_xcalloc(1, sizeof *d->timer);
    uv_timer_init(app->loop, d->timer);
    d->timer->data = d;
    uv_timer_start(d->timer, on_tick, TICK_MS, TICK_MS);
    uv_unref((uv_handle_t *)d->timer); /* it does not keep the daemon running */
    return d;
}

static void free_timer(uv_handle_t *h)
{
    free(h);
}

void sb_dashboard_stop(sb_dashboard *d)
{
    if (d == NULL || d->stopped)
        return;
    d->stopped = true;
    uv_timer_stop(d->timer);
    uv_close((uv_handle_t *)d->timer, free_timer);
    d->timer = NULL;
}

void sb_dashboard_free(sb_dashboard *d)
{
    if (d == NULL)
        return;
    SB_ASSERT(d->stopped);
    series_clear(&d->day.first_response);
    series_clear(&d->day.resolution);
    d->magic = 0;
    free(d);
}

/* ---- GET /api/v1/dashboard ---- */

/* The store op only authenticates; the snapshot is made on the loop. */
static int dashboard_action(sb_tx *tx, sb_api_op *op)
{
    (void)tx;
    (void)op;
    return 0;
}

static void dashboard_after(sb_api_op *op)
{
    op->out = sb_dashboard_snapshot(op->app->dashboard, sb_clock_wall_ms());
}

bool sb_api_dashboard_route(sb_app *app, sb_http_req *req, const char *path)
{
    if (strcmp(path, "/api/v1/dashboard") != 0)
        return false;
    sb_http_method m = sb_http_req_method(req);
    if (m != SB_HTTP_GET && m != SB_HTTP_HEAD) {
        sb_respond_method_not_allowed(req, "GET");
        return true;
    }
    sb_api_op *op = sb_api_op_new(app, req, SB_ROLE_SUPERVISOR, dashboard_action);
    op->out_on_loop = true;
    op->after = dashboard_after;
    sb_api_submit(op);
    return true;
}
