/* metrics.c - service figures of a period [from, to). Minimum role:
 * supervisor.
 *
 *   GET /api/v1/metrics/summary: overall, per team and per active agent.
 *   GET /api/v1/metrics/report?by=agent|team|channel|tag: one row per
 *     agent, team, channel kind or tag with the same figures, and a total;
 *     format=csv gives the same table as a spreadsheet file.
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
 *    one decimal, null when both are 0. Reports add "all": the three
 *    clocks together.
 *  - reassignments: ticket.assigned rows whose `at` is in [from, to) for a
 *    ticket that already had an earlier ticket.assigned row with a non-null
 *    "to": every assignment (or unassignment) after the ticket's first one.
 *  - Every figure belongs to the ticket's *current* team, assignee, channel
 *    and tags: the summary's "teams" has every team, "agents" every active
 *    agent (zeros when nothing). team_id / agent_id restrict every figure,
 *    overall included, to the tickets of that team / assignee; the lists
 *    keep every entry.
 *  - Report rows: by=agent every active agent, and an inactive one that has
 *    figures; by=team every team; by=channel every channel kind that has a
 *    channel (a ticket's channel is the one it was opened in); by=tag every
 *    tag on a ticket that has figures, a ticket with several tags counting
 *    in each. A row with key null gathers the tickets with no assignee, no
 *    team or no tag, when there are any. The total is the summary's
 *    "overall": tag rows can add up to more than it, and agent or team rows
 *    to less when the null row is left out.
 *
 * The whole computation is one read-only transaction script: it reads the
 * ticket table in full (it has no index on the times asked about) and the
 * event log's SLA and assignment rows through the event_metrics index, and
 * builds the response text. It runs on the store's reader thread with its
 * own connection (op->read_only, sb_store_read), in a snapshot of the last
 * commit, so the store thread goes on committing inbound messages and
 * replies meanwhile; two reports wait for each other (one reader).
 * Measured with bench/reports.py (200,000 tickets over a year, 2.4 million
 * event rows) on the shared 2-core machine: one day 40-55 ms, a month
 * 150-165 ms, a year 1.4-1.5 s, the summary and every report alike (on the
 * store thread: 40-190 ms, 175-200 ms and 1.5-1.8 s). Inbound messages
 * posted one after another during a year's summary are answered in 0.8 ms
 * (median; 6 ms at most) instead of waiting the report out. by=tag reads
 * each row's tags in place; parsing them with jansson had made a year's tag
 * report take 3.2 s. */
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

/* What the figures are grouped by: the summary's teams and agents, or one
 * dimension of a report. */
typedef enum report_by { BY_SUMMARY, BY_AGENT, BY_TEAM, BY_CHANNEL, BY_TAG } report_by;
static const char *const by_names[] = {"summary", "agent", "team", "channel", "tag"};

/* ---- query parameters (parsed on the loop, reported by the action) ---- */

typedef struct summary_args {
    int64_t from, to;          /* [from, to), Unix ms */
    int64_t team_id, agent_id; /* 0: no filter */
    report_by by;
    bool csv;       /* format=csv */
    bool semicolon; /* delimiter=semicolon: ';' between fields, ',' in decimals */
    bool russian;   /* lang=ru: the CSV's header row and labels */
    char filename[96];
    char error[240]; /* the 422 message; "" when valid */
} summary_args;

static const char *const summary_params[] = {"from", "to", "team_id", "agent_id"};
static const char *const report_params[] = {"from", "to", "by", "team_id", "agent_id", "format", "delimiter", "lang"};

/* Refuses unknown and repeated parameters; 0 or -1 with a->error set. */
static int check_param_names(sb_http_req *req, const char *const *known, size_t n, summary_args *a)
{
    char bad[40];
    bool repeated = false;
    if (sb_http_req_query_names(req, known, n, bad, sizeof bad, &repeated) == 0)
        return 0;
    if (repeated) {
        sb_errorf(a->error, sizeof a->error, "parameter '%s' is given more than once", bad);
        return -1;
    }
    char list[120] = "";
    size_t used = 0;
    for (size_t i = 0; i < n && used < sizeof list; i++)
        used += (size_t)snprintf(list + used, sizeof list - used, "%s%s", i > 0 ? ", " : "", known[i]);
    sb_errorf(a->error, sizeof a->error, "unknown parameter '%s' (known: %s)", bad, list);
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

/* The index in `choices` of the parameter's value; when it is absent, an
 * error if `required`, else 0 (the first choice is the default). */
static int parse_choice(sb_http_req *req, const char *name, const char *const *choices, size_t n, bool required,
                        int *out, summary_args *a)
{
    const char *v = sb_http_req_query_param(req, name);
    if (v == NULL && !required) {
        *out = 0;
        return 0;
    }
    for (size_t i = 0; v != NULL && i < n; i++)
        if (strcmp(v, choices[i]) == 0) {
            *out = (int)i;
            return 0;
        }
    char list[80] = "";
    size_t used = 0;
    for (size_t i = 0; i < n && used < sizeof list; i++)
        used += (size_t)snprintf(list + used, sizeof list - used, "%s%s", i > 0 ? ", " : "", choices[i]);
    sb_errorf(a->error, sizeof a->error, "parameter '%s' %s one of %s", name, v == NULL ? "is required:" : "must be",
              list);
    return -1;
}

/* The civil date a valid query time names in its own offset
 * ("2026-11-01T00:00:00+03:00" -> 2026-11-01); for the end of a period,
 * the date of the instant just before it, the period's last day. */
static void query_date(const char *raw, bool end, char out[11])
{
    char civil[21];
    memcpy(civil, raw, 19); /* "YYYY-MM-DDTHH:MM:SS", checked by parse_time */
    civil[19] = 'Z';
    civil[20] = '\0';
    int64_t ms = 0;
    int rc = sb_clock_parse_iso(civil, &ms);
    SB_ASSERT(rc == 0);
    char iso[40];
    sb_clock_format_iso(end ? ms - 1 : ms, iso, sizeof iso);
    memcpy(out, iso, 10);
    out[10] = '\0';
}

/* Reads the query on the loop (the request is not the store thread's to
 * touch). Errors are reported by the action, after authentication, so a
 * caller without the role learns nothing about the parameters. */
static void parse_args(sb_http_req *req, bool report, summary_args *a)
{
    static const char *const report_by_names[] = {"agent", "team", "channel", "tag"};
    static const char *const formats[] = {"json", "csv"};
    static const char *const delimiters[] = {"comma", "semicolon"};
    static const char *const langs[] = {"en", "ru"};
    int by_index = 0, format = 0, delimiter = 0, lang = 0;
    if (report ? check_param_names(req, report_params, SB_ARRAY_LEN(report_params), a) != 0
               : check_param_names(req, summary_params, SB_ARRAY_LEN(summary_params), a) != 0)
        return;
    if (parse_time(req, "from", &a->from, a) != 0 || parse_time(req, "to", &a->to, a) != 0)
        return;
    if (report && (parse_choice(req, "by", report_by_names, SB_ARRAY_LEN(report_by_names), true, &by_index, a) != 0 ||
                   parse_choice(req, "format", formats, SB_ARRAY_LEN(formats), false, &format, a) != 0 ||
                   parse_choice(req, "delimiter", delimiters, SB_ARRAY_LEN(delimiters), false, &delimiter, a) != 0 ||
                   parse_choice(req, "lang", langs, SB_ARRAY_LEN(langs), false, &lang, a) != 0))
        return;
    if (parse_id(req, "team_id", &a->team_id, a) != 0 || parse_id(req, "agent_id", &a->agent_id, a) != 0)
        return;
    if (a->to <= a->from) {
        sb_errorf(a->error, sizeof a->error, "parameter 'to' must be later than 'from'");
        return;
    }
    if (a->to - a->from > MAX_SPAN_MS) {
        sb_errorf(a->error, sizeof a->error, "parameter 'to' must be at most 366 days after 'from'");
        return;
    }
    if (!report)
        return;
    a->by = (report_by)(BY_AGENT + by_index);
    a->csv = format == 1;
    a->semicolon = delimiter == 1;
    a->russian = lang == 1;
    char first[11], last[11];
    query_date(sb_http_req_query_param(req, "from"), false, first);
    query_date(sb_http_req_query_param(req, "to"), true, last);
    if (strcmp(first, last) >= 0)
        snprintf(a->filename, sizeof a->filename, "report-by-%s-%s.csv", by_names[a->by], first);
    else
        snprintf(a->filename, sizeof a->filename, "report-by-%s-%s_%s.csv", by_names[a->by], first, last);
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
    int64_t id;          /* team or agent id; 0 for overall and named groups */
    char *name;          /* NULL for overall and the null row */
    int64_t calendar_id; /* teams: routing.calendar_id, 0 if none */
    bool active;         /* agents: listed in a report even without figures */
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

static bool group_has_figures(const group *g)
{
    bool any = g->created > 0 || g->resolved > 0 || g->reassignments > 0 || g->csat_count > 0;
    for (int c = 0; c < CLOCK_COUNT; c++)
        any = any || g->met[c] > 0 || g->missed[c] > 0;
    return any;
}

typedef struct calendar_entry {
    int64_t id;
    sb_calendar *cal; /* NULL: missing or invalid; calendar time then */
} calendar_entry;

typedef struct channel_entry {
    int64_t id;
    group *kind; /* the row of the channel's kind */
} channel_entry;

typedef struct summary {
    report_by by;
    group overall;
    group *teams, *agents; /* sorted by id; teams always (their calendars) */
    size_t nteams, nagents;
    group none;    /* report: no assignee / team / tag */
    group **named; /* report by channel kind or tag, sorted by name */
    size_t nnamed, capnamed;
    channel_entry *channels; /* by=channel: sorted by id */
    size_t nchannels;
    group **hits; /* the groups the current row counts in */
    size_t nhits, caphits;
    calendar_entry *calendars; /* loaded on first use, once per request */
    size_t ncalendars;
} summary;

static void summary_close(summary *s)
{
    group_close(&s->overall);
    group_close(&s->none);
    for (size_t i = 0; i < s->nteams; i++)
        group_close(&s->teams[i]);
    for (size_t i = 0; i < s->nagents; i++)
        group_close(&s->agents[i]);
    for (size_t i = 0; i < s->nnamed; i++) {
        group_close(s->named[i]);
        free(s->named[i]);
    }
    for (size_t i = 0; i < s->ncalendars; i++)
        sb_calendar_free(s->calendars[i].cal);
    free(s->teams);
    free(s->agents);
    free(s->named);
    free(s->channels);
    free(s->hits);
    free(s->calendars);
}

static int cmp_group_id(const void *key, const void *elem)
{
    int64_t id = *(const int64_t *)key, other = ((const group *)elem)->id;
    return id < other ? -1 : id > other;
}

/* The team's or agent's group, or NULL (no team / assignee, an inactive
 * agent in the summary, a team that is gone). */
static group *find_group(group *v, size_t n, int64_t id)
{
    return id > 0 && n > 0 ? bsearch(&id, v, n, sizeof *v, cmp_group_id) : NULL;
}

/* The named group (channel kind or tag) `name`, made the first time it is
 * asked for; the list stays sorted by name (byte order). */
static group *named_group(summary *sum, const char *name)
{
    size_t lo = 0, hi = sum->nnamed;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(name, sum->named[mid]->name);
        if (c == 0)
            return sum->named[mid];
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    if (sum->nnamed == sum->capnamed) {
        sum->capnamed = sum->capnamed ? sum->capnamed * 2 : 16;
        sum->named = sb_xrealloc(sum->named, sum->capnamed * sizeof *sum->named);
    }
    memmove(&sum->named[lo + 1], &sum->named[lo], (sum->nnamed - lo) * sizeof *sum->named);
    group *g = sb_xcalloc(1, sizeof *g);
    g->name = sb_xstrdup(name);
    sum->named[lo] = g;
    sum->nnamed++;
    return g;
}

static void hit(summary *sum, group *g)
{
    if (g == NULL)
        return;
    for (size_t i = 0; i < sum->nhits; i++)
        if (sum->hits[i] == g)
            return; /* a tag given twice counts once */
    if (sum->nhits == sum->caphits) {
        sum->caphits = sum->caphits ? sum->caphits * 2 : 8;
        sum->hits = sb_xrealloc(sum->hits, sum->caphits * sizeof *sum->hits);
    }
    sum->hits[sum->nhits++] = g;
}

static int cmp_channel_id(const void *key, const void *elem)
{
    int64_t id = *(const int64_t *)key, other = ((const channel_entry *)elem)->id;
    return id < other ? -1 : id > other;
}

/* Adds the groups of each tag in the JSON array `tags`; false when there
 * is none (or the text is not an array of strings). */
static bool hit_tags_json(summary *sum, const char *tags)
{
    json_t *list = json_loads(tags, 0, NULL);
    bool any = false;
    size_t i;
    json_t *tag;
    json_array_foreach (list, i, tag) {
        if (json_is_string(tag) && json_string_length(tag) > 0) {
            hit(sum, named_group(sum, json_string_value(tag)));
            any = true;
        }
    }
    json_decref(list);
    return any;
}

/* The same for the usual case, read in place: by=tag looks at the tags of
 * every row of every scan, and jansson's parse (allocations per element)
 * doubled the cost of a year's report. Text with an escape, or not in the
 * simple shape, goes to jansson. */
static bool hit_tags(summary *sum, const char *tags)
{
    if (tags == NULL || strchr(tags, '\\') != NULL)
        return tags != NULL && hit_tags_json(sum, tags);
    const char *p = tags + strspn(tags, " ");
    if (*p++ != '[')
        return hit_tags_json(sum, tags);
    bool any = false;
    char name[256];
    p += strspn(p, " ");
    while (*p == '"') {
        const char *end = strchr(p + 1, '"');
        if (end == NULL || (size_t)(end - p - 1) >= sizeof name)
            return hit_tags_json(sum, tags);
        size_t len = (size_t)(end - p - 1);
        memcpy(name, p + 1, len);
        name[len] = '\0';
        if (len > 0) {
            hit(sum, named_group(sum, name));
            any = true;
        }
        p = end + 1 + strspn(end + 1, " ");
        if (*p == ',')
            p += 1 + strspn(p + 1, " ");
        else
            break;
    }
    if (*p != ']') {
        sum->nhits = 1; /* only overall: start over with jansson */
        return hit_tags_json(sum, tags);
    }
    return any;
}

/* Collects in sum->hits the groups a ticket's figures count in: overall,
 * then the summary's team and agent, or the report's row(s). Columns from
 * `col` on: team_id, assignee_id, channel_id, tags. */
static void ticket_groups(summary *sum, sb_stmt *s, int col)
{
    int64_t team_id = sb_stmt_int(s, col), assignee_id = sb_stmt_int(s, col + 1);
    sum->nhits = 0;
    hit(sum, &sum->overall);
    switch (sum->by) {
    case BY_SUMMARY:
        hit(sum, find_group(sum->teams, sum->nteams, team_id));
        hit(sum, find_group(sum->agents, sum->nagents, assignee_id));
        break;
    case BY_AGENT: {
        group *g = find_group(sum->agents, sum->nagents, assignee_id);
        hit(sum, g != NULL ? g : &sum->none);
        break;
    }
    case BY_TEAM: {
        group *g = find_group(sum->teams, sum->nteams, team_id);
        hit(sum, g != NULL ? g : &sum->none);
        break;
    }
    case BY_CHANNEL: {
        int64_t channel_id = sb_stmt_int(s, col + 2);
        channel_entry *c = sum->nchannels > 0 ? bsearch(&channel_id, sum->channels, sum->nchannels,
                                                        sizeof *sum->channels, cmp_channel_id)
                                              : NULL;
        hit(sum, c != NULL ? c->kind : &sum->none);
        break;
    }
    case BY_TAG:
        if (!hit_tags(sum, sb_stmt_text(s, col + 3)))
            hit(sum, &sum->none);
        break;
    }
}

/* Loads groups from `s`: column 0 id, 1 name, 2 (teams) calendar id,
 * 3 active. */
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
        g->active = sb_stmt_int(s, 3) != 0;
    }
    sb_stmt_end(s);
    return rc < 0 ? rc : 0;
}

/* by=channel: a row for every kind that has a channel, and the map from
 * channel id to it. */
static int load_channels(sb_tx *tx, summary *sum)
{
    sb_stmt *s = sb_tx_query(tx, "SELECT id, kind FROM channel ORDER BY id", "");
    if (s == NULL)
        return SB_EIO;
    size_t cap = 0;
    int rc;
    while ((rc = sb_stmt_step(s)) == 1) {
        if (sum->nchannels == cap) {
            cap = cap ? cap * 2 : 8;
            sum->channels = sb_xrealloc(sum->channels, cap * sizeof *sum->channels);
        }
        const char *kind = sb_stmt_text(s, 1);
        sum->channels[sum->nchannels++] = (channel_entry){sb_stmt_int(s, 0), named_group(sum, kind ? kind : "")};
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
    sb_stmt *s = sb_tx_query(
        tx,
        "SELECT team_id, assignee_id, channel_id, tags, created_at, first_response_at, resolved_at FROM ticket "
        "WHERE ((created_at >= ?1 AND created_at < ?2) OR (resolved_at >= ?1 AND resolved_at < ?2)) "
        "AND (?3 IS NULL OR team_id = ?3) AND (?4 IS NULL OR assignee_id = ?4)",
        "iiII", a->from, a->to, a->team_id, a->agent_id);
    if (s == NULL)
        return SB_EIO;
    int rc;
    while ((rc = sb_stmt_step(s)) == 1) {
        group *team = find_group(sum->teams, sum->nteams, sb_stmt_int(s, 0));
        int64_t created = sb_stmt_int(s, 4);
        bool has_first = !sb_stmt_isnull(s, 5), has_resolved = !sb_stmt_isnull(s, 6);
        int64_t first = sb_stmt_int(s, 5), resolved = sb_stmt_int(s, 6);
        bool counts_created = created >= a->from && created < a->to;
        bool counts_resolved = has_resolved && resolved >= a->from && resolved < a->to;
        const sb_calendar *cal = NULL;
        if (team != NULL && (counts_resolved || (counts_created && has_first))) {
            rc = get_calendar(tx, sum, team->calendar_id, &cal);
            if (rc != 0)
                break;
        }
        ticket_groups(sum, s, 0);
        for (size_t i = 0; i < sum->nhits; i++) {
            group *g = sum->hits[i];
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
                             "SELECT csat_score, team_id, assignee_id, channel_id, tags FROM ticket "
                             "WHERE csat_at >= ?1 AND csat_at < ?2 "
                             "AND (?3 IS NULL OR team_id = ?3) AND (?4 IS NULL OR assignee_id = ?4)",
                             "iiII", a->from, a->to, a->team_id, a->agent_id);
    if (s == NULL)
        return SB_EIO;
    int rc;
    while ((rc = sb_stmt_step(s)) == 1) {
        ticket_groups(sum, s, 1);
        for (size_t i = 0; i < sum->nhits; i++) {
            sum->hits[i]->csat_count++;
            sum->hits[i]->csat_sum += sb_stmt_int(s, 0);
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
    sb_stmt *s = sb_tx_query(
        tx,
        "SELECT e.type, json_extract(e.data, '$.clock'), t.team_id, t.assignee_id, t.channel_id, t.tags FROM event e "
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
        bool reassigned = strcmp(type, "ticket.assigned") == 0;
        bool met = strcmp(type, "sla.met") == 0;
        int c = 0;
        while (!reassigned && c < CLOCK_COUNT && (clock == NULL || strcmp(clock, clock_names[c]) != 0))
            c++;
        if (!reassigned && c == CLOCK_COUNT)
            continue; /* a clock this version does not know */
        ticket_groups(sum, s, 2);
        for (size_t i = 0; i < sum->nhits; i++) {
            group *g = sum->hits[i];
            if (reassigned)
                g->reassignments++;
            else if (met)
                g->met[c]++;
            else
                g->missed[c]++;
        }
    }
    sb_stmt_end(s);
    return rc < 0 ? rc : 0;
}

/* ---- numbers ---- */

/* num / den in tenths, rounded half away from zero. */
static int64_t tenths(int64_t num, int64_t den)
{
    return num >= 0 ? (num + den / 2) / den : -((-num + den / 2) / den);
}

static int cmp_int64(const void *x, const void *y)
{
    int64_t a = *(const int64_t *)x, b = *(const int64_t *)y;
    return a < b ? -1 : a > b;
}

static void series_sort(series *s)
{
    if (s->n > 1) /* v is NULL while n is 0, and qsort must not get NULL */
        qsort(s->v, s->n, sizeof *s->v, cmp_int64);
}

static void group_sort(group *g)
{
    series_sort(&g->first_response);
    series_sort(&g->first_response_business);
    series_sort(&g->resolution);
    series_sort(&g->resolution_business);
}

/* Nearest rank: the value at position ceil(pct/100 * n) of the sorted list,
 * in tenths of a minute; false when the list is empty. */
static bool percentile(const series *s, int pct, int64_t *out)
{
    if (s->n == 0)
        return false;
    size_t rank = (s->n * (size_t)pct + 99) / 100;
    *out = tenths(s->v[rank - 1], MS_PER_TENTH);
    return true;
}

static int64_t sla_met_all(const group *g)
{
    return g->met[CLOCK_FIRST_RESPONSE] + g->met[CLOCK_NEXT_RESPONSE] + g->met[CLOCK_RESOLUTION];
}

static int64_t sla_missed_all(const group *g)
{
    return g->missed[CLOCK_FIRST_RESPONSE] + g->missed[CLOCK_NEXT_RESPONSE] + g->missed[CLOCK_RESOLUTION];
}

/* ---- JSON ---- */

/* Tenths as a number with one decimal. */
static json_t *tenths_json(int64_t num, int64_t den)
{
    return json_real((double)tenths(num, den) / 10.0);
}

static json_t *percentile_json(const series *s, int pct)
{
    int64_t v;
    return percentile(s, pct, &v) ? json_real((double)v / 10.0) : json_null();
}

static json_t *durations_json(const series *calendar, const series *business)
{
    return json_pack("{s:I,s:o,s:o,s:o}", "count", (json_int_t)calendar->n, "median_minutes",
                     percentile_json(calendar, 50), "p90_minutes", percentile_json(calendar, 90),
                     "business_median_minutes", percentile_json(business, 50));
}

static json_t *sla_json(int64_t met, int64_t missed)
{
    return json_pack("{s:I,s:I,s:o}", "met", (json_int_t)met, "missed", (json_int_t)missed, "met_pct",
                     met + missed > 0 ? tenths_json(1000 * met, met + missed) : json_null());
}

/* Adds the figures of `g` (sorted) to `obj`; with `all`, the SLA of the
 * three clocks together too. Returns obj. */
static json_t *group_json(const group *g, json_t *obj, bool all)
{
    json_t *sla = json_object();
    for (int c = 0; c < CLOCK_COUNT; c++)
        json_object_set_new(sla, clock_names[c], sla_json(g->met[c], g->missed[c]));
    if (all)
        json_object_set_new(sla, "all", sla_json(sla_met_all(g), sla_missed_all(g)));
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
        json_array_append_new(list, group_json(&v[i], obj, false));
    }
    return list;
}

/* A report's rows in order: agents or teams by id (agents: the active, and
 * the inactive with figures), channel kinds or tags by name, then the null
 * row if it has figures. Calls fn for each; sorts each group first. */
static void each_row(summary *sum, void (*fn)(summary *sum, group *g, void *arg), void *arg)
{
    group *ids = sum->by == BY_AGENT ? sum->agents : sum->by == BY_TEAM ? sum->teams : NULL;
    size_t nids = sum->by == BY_AGENT ? sum->nagents : sum->by == BY_TEAM ? sum->nteams : 0;
    for (size_t i = 0; i < nids; i++)
        if (sum->by != BY_AGENT || ids[i].active || group_has_figures(&ids[i])) {
            group_sort(&ids[i]);
            fn(sum, &ids[i], arg);
        }
    for (size_t i = 0; i < sum->nnamed; i++) {
        group_sort(sum->named[i]);
        fn(sum, sum->named[i], arg);
    }
    if (group_has_figures(&sum->none)) {
        group_sort(&sum->none);
        fn(sum, &sum->none, arg);
    }
}

static void row_json(summary *sum, group *g, void *arg)
{
    json_t *obj = json_object();
    if (g == &sum->none)
        json_object_set_new(obj, "key", json_null());
    else if (sum->by == BY_AGENT || sum->by == BY_TEAM)
        json_object_set_new(obj, "key", json_integer(g->id));
    else
        json_object_set_new(obj, "key", json_string(g->name));
    json_object_set_new(obj, "name", sb_json_text(g->name));
    json_array_append_new(arg, group_json(g, obj, true));
}

/* ---- CSV ---- */

/* RFC 4180 text in UTF-8 with a byte order mark (so that spreadsheet
 * programs do not take it for the local 8-bit code page), CRLF line ends,
 * a header row. With delimiter=semicolon the fields are separated by ';'
 * and decimals written with a comma, as spreadsheets set to Russian (and
 * most continental European) conventions read them; otherwise ',' and '.'. */
typedef struct csv_out {
    sb_buf buf;
    char sep, decimal;
    bool russian;
} csv_out;

enum {
    COL_CREATED,
    COL_RESOLVED,
    COL_FIRST_COUNT,
    COL_FIRST_MEDIAN,
    COL_FIRST_P90,
    COL_FIRST_BUSINESS,
    COL_RESOLUTION_MEDIAN,
    COL_RESOLUTION_P90,
    COL_RESOLUTION_BUSINESS,
    COL_SLA_MET,
    COL_SLA_MISSED,
    COL_SLA_PCT,
    COL_CSAT_COUNT,
    COL_CSAT_AVERAGE,
    COL_REASSIGNMENTS,
    COL_COUNT
};

/* Header row: {English, Russian}. */
static const char *const csv_columns[COL_COUNT][2] = {
    {"Tickets created", "Создано обращений"},
    {"Tickets resolved", "Решено обращений"},
    {"First responses", "Первых ответов"},
    {"First response, median (min)", "Первый ответ, медиана (мин)"},
    {"First response, 90th percentile (min)", "Первый ответ, 90-й процентиль (мин)"},
    {"First response, median in business hours (min)", "Первый ответ, медиана в рабочее время (мин)"},
    {"Resolution, median (min)", "Решение, медиана (мин)"},
    {"Resolution, 90th percentile (min)", "Решение, 90-й процентиль (мин)"},
    {"Resolution, median in business hours (min)", "Решение, медиана в рабочее время (мин)"},
    {"SLA met", "SLA соблюдён"},
    {"SLA missed", "SLA нарушен"},
    {"SLA met, %", "SLA соблюдён, %"},
    {"CSAT answers", "Оценок CSAT"},
    {"CSAT average", "Средняя оценка CSAT"},
    {"Reassignments", "Переназначений"},
};

static const char *const csv_by_column[][2] = {
    [BY_AGENT] = {"Agent", "Оператор"},
    [BY_TEAM] = {"Team", "Команда"},
    [BY_CHANNEL] = {"Channel", "Канал"},
    [BY_TAG] = {"Tag", "Тег"},
};

static const char *const csv_none_row[][2] = {
    [BY_AGENT] = {"(unassigned)", "(без ответственного)"},
    [BY_TEAM] = {"(no team)", "(без команды)"},
    [BY_CHANNEL] = {"(unknown channel)", "(неизвестный канал)"},
    [BY_TAG] = {"(no tags)", "(без тегов)"},
};

static const char *csv_label(const csv_out *c, const char *const pair[2])
{
    return pair[c->russian ? 1 : 0];
}

/* A text field, quoted when it holds the separator, a quote or a line end
 * (quotes doubled). A name that a spreadsheet would run as a formula
 * (=, +, -, @, tab, CR first) gets a leading apostrophe. */
static void csv_text(csv_out *c, const char *z, bool first)
{
    if (!first)
        sb_buf_append(&c->buf, &c->sep, 1);
    bool formula = z[0] == '=' || z[0] == '+' || z[0] == '-' || z[0] == '@' || z[0] == '\t' || z[0] == '\r';
    bool quote = formula || strchr(z, c->sep) != NULL || strpbrk(z, "\"\r\n") != NULL;
    if (quote)
        sb_buf_append(&c->buf, "\"", 1);
    if (formula)
        sb_buf_append(&c->buf, "'", 1);
    for (const char *p = z; *p != '\0'; p++) {
        if (*p == '"')
            sb_buf_append(&c->buf, "\"", 1);
        sb_buf_append(&c->buf, p, 1);
    }
    if (quote)
        sb_buf_append(&c->buf, "\"", 1);
}

static void csv_int(csv_out *c, int64_t v)
{
    sb_buf_printf(&c->buf, "%c%lld", c->sep, (long long)v);
}

/* A number of tenths with one decimal ("12.5" or "12,5"). */
static void csv_tenths(csv_out *c, int64_t t)
{
    int64_t whole = t / 10, frac = t % 10;
    sb_buf_printf(&c->buf, "%c%s%lld%c%lld", c->sep, t < 0 && whole == 0 ? "-" : "", (long long)whole, c->decimal,
                  (long long)(frac < 0 ? -frac : frac));
}

static void csv_empty(csv_out *c)
{
    sb_buf_append(&c->buf, &c->sep, 1);
}

static void csv_percentile(csv_out *c, const series *s, int pct)
{
    int64_t v;
    if (percentile(s, pct, &v))
        csv_tenths(c, v);
    else
        csv_empty(c);
}

/* The figure columns of `g` (sorted) and the line end. */
static void csv_figures(csv_out *c, const group *g)
{
    int64_t met = sla_met_all(g), missed = sla_missed_all(g);
    csv_int(c, g->created);
    csv_int(c, g->resolved);
    csv_int(c, (int64_t)g->first_response.n);
    csv_percentile(c, &g->first_response, 50);
    csv_percentile(c, &g->first_response, 90);
    csv_percentile(c, &g->first_response_business, 50);
    csv_percentile(c, &g->resolution, 50);
    csv_percentile(c, &g->resolution, 90);
    csv_percentile(c, &g->resolution_business, 50);
    csv_int(c, met);
    csv_int(c, missed);
    if (met + missed > 0)
        csv_tenths(c, tenths(1000 * met, met + missed));
    else
        csv_empty(c);
    csv_int(c, g->csat_count);
    if (g->csat_count > 0)
        csv_tenths(c, tenths(10 * g->csat_sum, g->csat_count));
    else
        csv_empty(c);
    csv_int(c, g->reassignments);
    sb_buf_append(&c->buf, "\r\n", 2);
}

/* Agent and team reports have an id column after the name. */
static bool csv_has_id(report_by by)
{
    return by == BY_AGENT || by == BY_TEAM;
}

static void csv_row(summary *sum, group *g, void *arg)
{
    csv_out *c = arg;
    bool none = g == &sum->none;
    csv_text(c, none ? csv_label(c, csv_none_row[sum->by]) : g->name, true);
    if (csv_has_id(sum->by) && none)
        csv_empty(c);
    else if (csv_has_id(sum->by))
        csv_int(c, g->id);
    csv_figures(c, g);
}

/* The report as CSV text (malloc'd). */
static char *report_csv(summary *sum, const summary_args *a)
{
    csv_out c = {.sep = a->semicolon ? ';' : ',', .decimal = a->semicolon ? ',' : '.', .russian = a->russian};
    sb_buf_init(&c.buf);
    sb_buf_append(&c.buf, "\xEF\xBB\xBF", 3);
    csv_text(&c, csv_label(&c, csv_by_column[sum->by]), true);
    if (csv_has_id(sum->by))
        csv_text(&c, "ID", false);
    for (int i = 0; i < COL_COUNT; i++)
        csv_text(&c, csv_label(&c, csv_columns[i]), false);
    sb_buf_append(&c.buf, "\r\n", 2);
    each_row(sum, csv_row, &c);
    group_sort(&sum->overall);
    static const char *const total[2] = {"Total", "Итого"};
    csv_text(&c, csv_label(&c, total), true);
    if (csv_has_id(sum->by))
        csv_empty(&c);
    csv_figures(&c, &sum->overall);
    return c.buf.p;
}

/* Runs on the loop after the read: the CSV goes out as a download named
 * after the report and its period. */
static void send_csv(sb_api_op *op)
{
    const summary_args *a = op->ctx;
    if (op->req == NULL || op->out_text == NULL)
        return;
    char disposition[160];
    snprintf(disposition, sizeof disposition, "attachment; filename=\"%s\"", a->filename);
    sb_http_add_header(op->req, "Content-Disposition", disposition);
    sb_http_respond(op->req, 200, "text/csv; charset=utf-8", op->out_text, strlen(op->out_text));
    op->req = NULL;
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

/* The groups the rows are made of, then the three scans. */
static int compute(sb_tx *tx, const summary_args *a, summary *sum)
{
    sum->by = a->by;
    int rc = load_groups(sb_tx_query(tx,
                                     "SELECT id, name, json_extract(routing, '$.calendar_id'), 1 FROM team "
                                     "ORDER BY id",
                                     ""),
                         &sum->teams, &sum->nteams);
    if (rc == 0 && a->by == BY_SUMMARY)
        rc = load_groups(sb_tx_query(tx, "SELECT id, name, 0, active FROM agent WHERE active = 1 ORDER BY id", ""),
                         &sum->agents, &sum->nagents);
    else if (rc == 0 && a->by == BY_AGENT)
        rc = load_groups(sb_tx_query(tx, "SELECT id, name, 0, active FROM agent ORDER BY id", ""), &sum->agents,
                         &sum->nagents);
    else if (rc == 0 && a->by == BY_CHANNEL)
        rc = load_channels(tx, sum);
    if (rc == 0)
        rc = scan_tickets(tx, a, sum);
    if (rc == 0)
        rc = scan_events(tx, a, sum);
    if (rc == 0)
        rc = scan_csat(tx, a, sum);
    return rc;
}

static json_t *summary_json(summary *sum)
{
    group_sort(&sum->overall);
    for (size_t i = 0; i < sum->nteams; i++)
        group_sort(&sum->teams[i]);
    for (size_t i = 0; i < sum->nagents; i++)
        group_sort(&sum->agents[i]);
    return json_pack("{s:o,s:o,s:o}", "overall", group_json(&sum->overall, json_object(), false), "teams",
                     groups_json(sum->teams, sum->nteams, "team_id"), "agents",
                     groups_json(sum->agents, sum->nagents, "agent_id"));
}

static json_t *report_json(summary *sum)
{
    json_t *rows = json_array();
    each_row(sum, row_json, rows);
    group_sort(&sum->overall);
    return json_pack("{s:s,s:o,s:o}", "by", by_names[sum->by], "rows", rows, "total",
                     group_json(&sum->overall, json_object(), true));
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
    rc = compute(tx, a, &sum);
    if (rc != 0)
        goto out;
    if (a->csv) {
        op->out_text = report_csv(&sum, a);
        op->out_on_loop = true;
        op->after = send_csv;
        goto out;
    }
    char from[40], to[40];
    sb_clock_format_iso(a->from, from, sizeof from);
    sb_clock_format_iso(a->to, to, sizeof to);
    json_t *body = json_pack("{s:s,s:s}", "from", from, "to", to);
    json_t *figures = a->by == BY_SUMMARY ? summary_json(&sum) : report_json(&sum);
    json_object_update(body, figures);
    json_decref(figures);
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
    bool report = strcmp(path, "/api/v1/metrics/report") == 0;
    if (!report && strcmp(path, "/api/v1/metrics/summary") != 0)
        return false;
    sb_http_method m = sb_http_req_method(req);
    if (m != SB_HTTP_GET && m != SB_HTTP_HEAD) {
        sb_respond_method_not_allowed(req, "GET");
        return true;
    }
    summary_args *a = sb_xcalloc(1, sizeof *a);
    parse_args(req, report, a);
    sb_api_op *op = sb_api_op_new(app, req, SB_ROLE_SUPERVISOR, summary_action);
    op->ctx = a;
    op->ctx_free = free;
    op->read_only = true;
    sb_api_submit(op);
    return true;
}
