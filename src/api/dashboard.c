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
 *  - today (the local day in the installation's time zone, setting
 *    `timezone`, UTC by default): created = tickets opened by a customer's
 *    message (blacklisted senders' tickets excluded); first_response = agents' first
 *    replies given today, measured from the ticket's creation; resolved and
 *    resolution = resolutions today (each time a ticket becomes resolved),
 *    measured from its creation; csat = survey answers received today;
 *    volume_by_hour = tickets created in each local hour of the day. Medians
 *    by nearest rank, as in /api/v1/metrics/summary.
 *
 * The day runs from local midnight to local midnight (sb_tz_day), so it has
 * 23 or 25 hours when the clocks change. The 24 hour buckets are wall-clock
 * hours: on a day the clocks go forward the skipped hour stays 0, and on a
 * day they go back the repeated hour counts both of its passes, so the
 * buckets always add up to `created`.
 *
 * A change of the zone (PATCH /api/v1/settings, or `config import` and
 * SIGHUP) reaches us from dispatch's reload; the figures of the new day are
 * then read from the store again, as at start, and replace the ones
 * counted so far once that read completes. A ticket that dispatch hands
 * over after one more read of its own, in the moment of the change, may
 * count twice that day. */
#include "api/dashboard.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "api/stream.h"
#include "base/clock.h"
#include "base/log.h"
#include "dispatch.h"
#include "engine/calendar.h"

#define DASHBOARD_MAGIC 0xDA5B0A2Du
#define TICK_MS         1000
#define HEARTBEAT_MS    5000
#define DAY_MS          (24LL * 3600 * 1000)
#define HOUR_MS         (3600LL * 1000)
#define ZONE_CAP        128 /* IANA names are at most 100 bytes (calendar.c) */

/* Durations in ms, in no order until a median is asked for. */
typedef struct series {
    int64_t *v;
    size_t n, cap;
    bool sorted;
    int64_t sum;
} series;

typedef struct today {
    int64_t start, end; /* the local day [start, end), UTC ms; 0, 0 = none yet */
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
    int64_t last_sent;     /* wall ms of the last stream event */
    char zone[ZONE_CAP];   /* the zone `day` is counted in */
    sb_tz *tz;             /* that zone; NULL for UTC */
    char wanted[ZONE_CAP]; /* the zone last asked for (a recount may be under way) */
    uint64_t generation;   /* bumped per request; older recounts are dropped */
    today day;
};

static int64_t floor_div(int64_t a, int64_t b)
{
    return a >= 0 ? a / b : (a - b + 1) / b;
}

/* The day of `tz` (NULL: UTC) that holds `at`. */
static void day_bounds(const sb_tz *tz, int64_t at, int64_t *start, int64_t *end)
{
    if (tz != NULL) {
        sb_tz_day(tz, at, start, end);
        return;
    }
    *start = floor_div(at, DAY_MS) * DAY_MS;
    *end = *start + DAY_MS;
}

/* The bucket of an instant of the day: its local wall-clock hour. */
static int hour_of(const sb_tz *tz, int64_t at)
{
    if (tz == NULL)
        return (int)((at - floor_div(at, DAY_MS) * DAY_MS) / HOUR_MS);
    return sb_tz_to_local(tz, at).minute_of_day / 60;
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

static void today_clear(today *t)
{
    series_clear(&t->first_response);
    series_clear(&t->resolution);
    *t = (today){0};
}

/* Starts the figures again when the day changed. */
static void roll(sb_dashboard *d, int64_t now)
{
    if (now >= d->day.start && now < d->day.end)
        return;
    today_clear(&d->day);
    day_bounds(d->tz, now, &d->day.start, &d->day.end);
    d->dirty = true;
}

/* Whether `at` is in the current day (after rolling over to it). */
static bool in_day(sb_dashboard *d, int64_t at)
{
    roll(d, at);
    return at >= d->day.start && at < d->day.end;
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
    d->day.by_hour[hour_of(d->tz, at)]++;
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
    return json_pack("{s:o,s:s,s:I,s:I,s:o,s:o,s:o,s:o}", "day_start", time_or_null(t->start), "time_zone", d->zone,
                     "created", (json_int_t)t->created, "resolved", (json_int_t)t->resolved, "first_response",
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

/* ---- the figures of the day so far, read from the store ---- */

/* Reads the day [t.start, t.end) of zone `tz` into `t`. At start it runs
 * before the daemon serves; after a change of zone it runs as an op and
 * its result replaces the figures if no newer change came meanwhile. */
typedef struct count_op {
    sb_dashboard *d; /* NULL at start */
    uint64_t generation;
    char zone[ZONE_CAP];
    sb_tz *tz; /* owned until handed to the dashboard; NULL for UTC */
    today t;
    int rc;
} count_op;

static int count_run(sb_tx *tx, void *arg)
{
    count_op *c = arg;
    today *t = &c->t;
    sb_stmt *s = sb_tx_query(tx,
                             "SELECT created_at FROM ticket WHERE created_at >= ? AND created_at < ? AND NOT EXISTS "
                             "(SELECT 1 FROM json_each(ticket.tags) WHERE value = 'blacklisted')",
                             "ii", t->start, t->end);
    while (s != NULL && sb_stmt_step(s) == 1) {
        t->created++;
        t->by_hour[hour_of(c->tz, sb_stmt_int(s, 0))]++;
    }
    sb_stmt_end(s);
    if (s == NULL)
        return SB_EIO;
    s = sb_tx_query(tx,
                    "SELECT first_response_at - created_at FROM ticket WHERE first_response_at >= ? AND "
                    "first_response_at < ?",
                    "ii", t->start, t->end);
    while (s != NULL && sb_stmt_step(s) == 1)
        series_add(&t->first_response, sb_stmt_int(s, 0));
    sb_stmt_end(s);
    s = sb_tx_query(tx, "SELECT resolved_at - created_at FROM ticket WHERE resolved_at >= ? AND resolved_at < ?", "ii",
                    t->start, t->end);
    while (s != NULL && sb_stmt_step(s) == 1) {
        t->resolved++;
        series_add(&t->resolution, sb_stmt_int(s, 0));
    }
    sb_stmt_end(s);
    s = sb_tx_query(tx,
                    "SELECT csat_score FROM ticket WHERE csat_at >= ? AND csat_at < ? AND csat_score BETWEEN 1 AND 5",
                    "ii", t->start, t->end);
    while (s != NULL && sb_stmt_step(s) == 1) {
        t->csat_sum += sb_stmt_int(s, 0);
        t->csat_count++;
    }
    sb_stmt_end(s);
    return 0;
}

/* A count op for zone `name` at wall time `now`. A zone that no longer
 * loads (tzdata changed since the setting was checked) counts in UTC, and
 * the dashboard says so. */
static count_op *count_new(const char *name, int64_t now)
{
    count_op *c = sb_xcalloc(1, sizeof *c);
    snprintf(c->zone, sizeof c->zone, "UTC");
    if (strcmp(name, "UTC") != 0) {
        int rc = sb_tz_load(name, &c->tz);
        if (rc == 0)
            snprintf(c->zone, sizeof c->zone, "%s", name);
        else
            sb_log(SB_WARN, "dashboard", "time zone %s not loaded rc=%d; counting the UTC day", name, rc);
    }
    day_bounds(c->tz, now, &c->t.start, &c->t.end);
    return c;
}

static void count_free(count_op *c)
{
    today_clear(&c->t);
    sb_tz_free(c->tz);
    free(c);
}

/* Puts the counted day and its zone in place of the dashboard's. */
static void count_apply(sb_dashboard *d, count_op *c)
{
    today_clear(&d->day);
    d->day = c->t;
    c->t = (today){0};
    sb_tz_free(d->tz);
    d->tz = c->tz;
    c->tz = NULL;
    snprintf(d->zone, sizeof d->zone, "%s", c->zone);
    d->dirty = true;
}

static void count_done(void *arg, int rc)
{
    count_op *c = arg;
    c->rc = rc;
    sb_dashboard *d = c->d;
    if (d == NULL)
        return; /* start: the caller applies it */
    SB_ASSERT(d->magic == DASHBOARD_MAGIC);
    if (rc != 0)
        sb_log(SB_WARN, "dashboard", "figures of the day in %s not read rc=%d; keeping the old ones", c->zone, rc);
    else if (!d->stopped && c->generation == d->generation)
        count_apply(d, c);
    count_free(c);
}

/* The zone the setting names ("UTC" when never set). */
typedef struct zone_op {
    char zone[ZONE_CAP];
} zone_op;

static int zone_run(sb_tx *tx, void *arg)
{
    zone_op *z = arg;
    sb_stmt *s = sb_tx_query(tx, "SELECT value FROM setting WHERE key = 'engine.timezone'", "");
    if (s == NULL)
        return SB_EIO;
    if (sb_stmt_step(s) == 1 && sb_stmt_text(s, 0) != NULL)
        snprintf(z->zone, sizeof z->zone, "%s", sb_stmt_text(s, 0));
    sb_stmt_end(s);
    return 0;
}

static void zone_done(void *arg, int rc)
{
    if (rc != 0)
        sb_log(SB_WARN, "dashboard", "time zone setting not read rc=%d; counting the UTC day", rc);
    (void)arg;
}

void sb_dashboard_set_time_zone(sb_dashboard *d, const char *name)
{
    if (d == NULL || d->stopped)
        return;
    if (name == NULL || name[0] == '\0')
        name = "UTC";
    if (strcmp(name, d->wanted) == 0)
        return;
    snprintf(d->wanted, sizeof d->wanted, "%s", name);
    count_op *c = count_new(name, sb_clock_wall_ms());
    c->d = d;
    c->generation = ++d->generation;
    sb_log(SB_INFO, "dashboard", "time zone %s: counting the day from its midnight", c->zone);
    sb_store_submit(d->app->store, count_run, count_done, c);
}

sb_dashboard *sb_dashboard_start(sb_app *app)
{
    sb_dashboard *d = sb_xcalloc(1, sizeof *d);
    d->magic = DASHBOARD_MAGIC;
    d->app = app;
    zone_op z = {"UTC"};
    sb_store_submit(app->store, zone_run, zone_done, &z);
    sb_store_flush(app->store);
    snprintf(d->wanted, sizeof d->wanted, "%s", z.zone);
    count_op *c = count_new(z.zone, sb_clock_wall_ms());
    sb_store_submit(app->store, count_run, count_done, c);
    sb_store_flush(app->store);
    if (c->rc != 0) {
        sb_log(SB_WARN, "dashboard", "today's figures not read rc=%d; counting from now", c->rc);
        today_clear(&c->t);
        day_bounds(c->tz, sb_clock_wall_ms(), &c->t.start, &c->t.end);
    }
    count_apply(d, c);
    count_free(c);
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
    today_clear(&d->day);
    sb_tz_free(d->tz);
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
