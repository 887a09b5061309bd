/* calls.c - /api/v1/calls: the call log (supervisors), missed calls and
 * website call-back requests not yet called back, and calls' recordings.
 *
 *   GET /api/v1/calls?status=answered|missed|...&limit=50&cursor=ID
 *   GET /api/v1/calls/{id}
 *   GET /api/v1/calls/{id}/recording          audio/wav; one Range: bytes=
 *   GET /api/v1/calls/missed?from=&to=&status=open|all&format=json|csv
 *   GET /api/v1/calls/queues?from=&to=&service_level_seconds=20: per queue,
 *       offered/answered/abandoned/missed/voicemail, ASA, abandonment rate
 *                           &delimiter=comma|semicolon&lang=en|ru
 *
 * `next_cursor` is the id to pass as `cursor` for the next (older) page.
 * A recording is read on the thread pool (as /api/v1/files is); its path
 * in the call row is relative to the data directory, and a path that
 * leads out of it (.., an absolute path, a symbolic link) is refused. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api/api.h"
#include "base/clock.h"
#include "base/log.h"
#include "voice/calltickets.h"

#define MISSED_ROWS_MAX 1000
#define WHOLE_FILE_MAX  (64 << 20) /* a 200 without Range, as /api/v1/files */
#define RANGE_CHUNK_MAX (8 << 20)  /* a 206 sends at most this much; players ask again */
#define MISSED_STATUSES "('missed','abandoned','busy','voicemail')"

typedef struct list_args {
    char status[16];
    int64_t cursor, limit;
} list_args;

static bool status_valid(const char *z)
{
    static const char *const v[] = {"answered", "missed", "abandoned", "busy", "voicemail", "rejected", "failed"};
    for (size_t i = 0; i < SB_ARRAY_LEN(v); i++)
        if (strcmp(z, v[i]) == 0)
            return true;
    return false;
}

static json_t *opt_text(sb_stmt *s, int col)
{
    return sb_json_text(sb_stmt_text(s, col));
}

static json_t *opt_int(sb_stmt *s, int col)
{
    return sb_stmt_isnull(s, col) ? json_null() : json_integer(sb_stmt_int(s, col));
}

#define CALL_SELECT                                                                                                    \
    "SELECT c.id, c.direction, c.from_number, c.to_number, c.did, c.source, c.status, c.hangup_by, "                   \
    "c.hangup_cause, c.sip_code, c.ivr_path, c.offered_at, c.answered_at, c.ended_at, c.queue_team_id, c.agent_id, "   \
    "c.contact_id, c.ticket_id, t.number, c.recording, c.recording_ms, c.callback_task_id, "                           \
    "c.recording_deleted_at, c.recording_deleted_by, c.rating, c.talk_ended_at, c.period "                             \
    "FROM call c LEFT JOIN ticket t ON t.id = c.ticket_id "

static json_t *call_row(sb_stmt *s)
{
    json_t *row = json_pack(
        "{s:I,s:s,s:s,s:s,s:o,s:o,s:s,s:o,s:o,s:o,s:s,s:o,s:o,s:o}", "id", (json_int_t)sb_stmt_int(s, 0), "direction",
        sb_stmt_text(s, 1), "from", sb_stmt_text(s, 2), "to", sb_stmt_text(s, 3), "did", opt_text(s, 4), "source",
        opt_text(s, 5), "status", sb_stmt_text(s, 6), "hangup_by", opt_text(s, 7), "hangup_cause", opt_text(s, 8),
        "sip_code", opt_int(s, 9), "ivr_path", sb_stmt_text(s, 10), "offered_at", sb_json_time(sb_stmt_int(s, 11)),
        "answered_at", sb_json_time(sb_stmt_int(s, 12)), "ended_at", sb_json_time(sb_stmt_int(s, 13)));
    json_object_set_new(row, "queue_team_id", opt_int(s, 14));
    json_object_set_new(row, "agent_id", opt_int(s, 15));
    json_object_set_new(row, "contact_id", opt_int(s, 16));
    json_object_set_new(row, "ticket_id", opt_int(s, 17));
    json_object_set_new(row, "ticket_number", opt_int(s, 18));
    json_t *url = json_null();
    bool deleted = !sb_stmt_isnull(s, 22); /* by retention: the row stays, the file is gone */
    if (!sb_stmt_isnull(s, 19) && !deleted) {
        char buf[64];
        snprintf(buf, sizeof buf, "/api/v1/calls/%lld/recording", (long long)sb_stmt_int(s, 0));
        url = json_string(buf);
    }
    json_object_set_new(row, "recording_url", url);
    json_object_set_new(row, "recording_ms", opt_int(s, 20));
    json_object_set_new(row, "callback_task_id", opt_int(s, 21));
    json_object_set_new(row, "recording_deleted_at", deleted ? sb_json_time(sb_stmt_int(s, 22)) : json_null());
    json_object_set_new(row, "recording_deleted_by", opt_text(s, 23));
    json_object_set_new(row, "rating", opt_int(s, 24)); /* the post-call rating, 1-5 */
    json_object_set_new(row, "talk_ended_at", sb_stmt_isnull(s, 25) ? json_null() : sb_json_time(sb_stmt_int(s, 25)));
    /* the number's calendar when the call came: business_hours, after_hours, holiday (null: not through a number) */
    json_object_set_new(row, "period", opt_text(s, 26));
    return row;
}

static int list_action(sb_tx *tx, sb_api_op *op)
{
    list_args *a = op->ctx;
    sb_stmt *s = sb_tx_query(tx,
                             CALL_SELECT "WHERE (?1 = '' OR c.status = ?1) AND (?2 = 0 OR c.id < ?2) "
                                         "ORDER BY c.id DESC LIMIT ?3",
                             "tii", a->status, a->cursor, a->limit + 1);
    if (s == NULL)
        return SB_EIO;
    json_t *list = json_array();
    int rc;
    int64_t last = 0;
    bool more = false;
    while ((rc = sb_stmt_step(s)) == 1) {
        if ((int64_t)json_array_size(list) == a->limit) {
            more = true;
            break;
        }
        last = sb_stmt_int(s, 0);
        json_array_append_new(list, call_row(s));
    }
    sb_stmt_end(s);
    if (rc < 0) {
        json_decref(list);
        return rc;
    }
    json_t *next = json_null();
    if (more) {
        char buf[32];
        snprintf(buf, sizeof buf, "%lld", (long long)last);
        next = json_string(buf);
    }
    op->out = json_pack("{s:o,s:o}", "calls", list, "next_cursor", next);
    return 0;
}

static void handle_list(sb_app *app, sb_http_req *req)
{
    list_args *a = sb_xcalloc(1, sizeof *a);
    a->limit = 50;
    const char *v;
    const char *bad = NULL;
    if ((v = sb_http_req_query_param(req, "status")) != NULL) {
        if (!status_valid(v))
            bad = "parameter 'status' must be answered, missed, abandoned, busy, voicemail, rejected or failed";
        else
            snprintf(a->status, sizeof a->status, "%s", v);
    }
    if ((v = sb_http_req_query_param(req, "cursor")) != NULL && !sb_api_parse_id(v, &a->cursor))
        bad = "parameter 'cursor' must be the next_cursor of a previous page";
    if ((v = sb_http_req_query_param(req, "limit")) != NULL &&
        (!sb_api_parse_id(v, &a->limit) || a->limit < 1 || a->limit > 200))
        bad = "parameter 'limit' must be 1..200";
    if (bad != NULL) {
        free(a);
        sb_http_respond_error(req, 422, "validation_failed", "%s", bad);
        return;
    }
    sb_api_op *op = sb_api_op_new(app, req, SB_ROLE_SUPERVISOR, list_action);
    op->read_only = true;
    op->ctx = a;
    op->ctx_free = free;
    sb_api_submit(op);
}

/* ---- one call ---- */

static int get_action(sb_tx *tx, sb_api_op *op)
{
    sb_stmt *s = sb_tx_query(tx, CALL_SELECT "WHERE c.id = ?", "i", op->path_id);
    if (s == NULL)
        return SB_EIO;
    int rc = sb_stmt_step(s);
    json_t *row = rc == 1 ? call_row(s) : NULL;
    sb_stmt_end(s);
    if (rc < 0)
        return rc;
    if (row == NULL)
        return sb_api_fail(op, 404, "not_found", "call %lld does not exist", (long long)op->path_id);
    op->out = json_pack("{s:o}", "call", row);
    return 0;
}

/* ---- the recording ---- */

typedef struct recording_job {
    sb_http_req *req;
    char data_dir[600];
    char rel[520];
    int64_t call_id;
    /* Range: bytes=first-last (last -1: to the end), or the last
     * `suffix` bytes; has_range false: the whole file */
    bool has_range;
    int64_t first, last, suffix;
    /* the answer, made on the thread pool */
    int status; /* 200, 206, 403, 404, 413, 416 */
    int64_t size, from;
    sb_buf content;
    uv_work_t work;
} recording_job;

/* One range of the form the header allows ("bytes=0-", "bytes=100-199",
 * "bytes=-500"); anything else, several ranges included, is ignored and
 * the whole file is sent (RFC 9110 lets a server ignore Range). */
static void parse_range(const char *h, recording_job *j)
{
    if (h == NULL || strncmp(h, "bytes=", 6) != 0 || strchr(h, ',') != NULL)
        return;
    const char *p = h + 6;
    char *end = NULL;
    if (*p == '-') {
        errno = 0;
        long long n = strtoll(p + 1, &end, 10);
        if (end == p + 1 || *end != '\0' || errno != 0 || n < 0)
            return;
        j->suffix = n;
        j->first = -1;
        j->has_range = true;
        return;
    }
    if (*p < '0' || *p > '9')
        return;
    errno = 0;
    long long first = strtoll(p, &end, 10);
    if (errno != 0 || *end != '-')
        return;
    p = end + 1;
    long long last = -1;
    if (*p != '\0') {
        if (*p < '0' || *p > '9')
            return;
        last = strtoll(p, &end, 10);
        if (errno != 0 || *end != '\0' || last < first)
            return;
    }
    j->first = first;
    j->last = last;
    j->has_range = true;
}

/* Resolves the stored path (symbolic links included) and refuses a file
 * outside the data directory, then reads the part asked for. */
static void recording_read(uv_work_t *w)
{
    recording_job *j = w->data;
    char base[PATH_MAX], full[PATH_MAX * 2], real[PATH_MAX];
    j->status = 404;
    if (realpath(j->data_dir, base) == NULL)
        return;
    snprintf(full, sizeof full, "%s/%s", base, j->rel);
    if (realpath(full, real) == NULL)
        return; /* no such file */
    size_t bl = strlen(base);
    if (strncmp(real, base, bl) != 0 || real[bl] != '/') {
        j->status = 403;
        return;
    }
    int fd = open(real, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return;
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return;
    }
    j->size = st.st_size;
    int64_t from = 0, len = j->size;
    if (j->has_range) {
        if (j->first < 0) { /* the last `suffix` bytes */
            if (j->suffix == 0 || j->size == 0) {
                j->status = 416;
                close(fd);
                return;
            }
            len = j->suffix < j->size ? j->suffix : j->size;
            from = j->size - len;
        } else {
            if (j->first >= j->size) {
                j->status = 416;
                close(fd);
                return;
            }
            from = j->first;
            int64_t last = j->last < 0 || j->last >= j->size ? j->size - 1 : j->last;
            len = last - from + 1;
        }
        if (len > RANGE_CHUNK_MAX)
            len = RANGE_CHUNK_MAX;
    } else if (len > WHOLE_FILE_MAX) {
        j->status = 413;
        close(fd);
        return;
    }
    sb_buf_reserve(&j->content, (size_t)len + 1);
    int64_t got = 0;
    while (got < len) {
        size_t want = (size_t)(len - got) < 65536 ? (size_t)(len - got) : 65536;
        ssize_t n = pread(fd, j->content.p + got, want, (off_t)(from + got));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        got += n;
    }
    close(fd);
    if (got != len) {
        j->status = 404; /* changed under us: as good as gone */
        return;
    }
    j->content.len = (size_t)len;
    j->from = from;
    j->status = j->has_range ? 206 : 200;
}

static void recording_send(uv_work_t *w, int status)
{
    recording_job *j = w->data;
    char buf[128];
    sb_http_req *req = j->req;
    if (status != 0)
        j->status = 404;
    switch (j->status) {
    case 200:
    case 206:
        sb_http_add_header(req, "Accept-Ranges", "bytes");
        sb_http_add_header(req, "Cache-Control", "private, max-age=300");
        sb_http_add_header(req, "X-Content-Type-Options", "nosniff");
        snprintf(buf, sizeof buf, "inline; filename=\"call-%lld.wav\"", (long long)j->call_id);
        sb_http_add_header(req, "Content-Disposition", buf);
        if (j->status == 206) {
            snprintf(buf, sizeof buf, "bytes %lld-%lld/%lld", (long long)j->from,
                     (long long)(j->from + (int64_t)j->content.len - 1), (long long)j->size);
            sb_http_add_header(req, "Content-Range", buf);
        }
        sb_http_respond(req, j->status, "audio/wav", j->content.p, j->content.len);
        break;
    case 416:
        snprintf(buf, sizeof buf, "bytes */%lld", (long long)j->size);
        sb_http_add_header(req, "Content-Range", buf);
        sb_http_respond_error(req, 416, "range_not_satisfiable", "the recording has %lld bytes", (long long)j->size);
        break;
    case 403:
        sb_log(SB_WARN, "api", "call=%lld recording path leaves the data directory: refused", (long long)j->call_id);
        sb_http_respond_error(req, 403, "forbidden", "the recording's path is outside the data directory");
        break;
    case 413:
        sb_http_respond_error(req, 413, "too_large", "the recording is over 64 MiB: ask for parts with Range");
        break;
    default:
        sb_http_respond_error(req, 404, "not_found", "the recording of call %lld is missing", (long long)j->call_id);
        break;
    }
    sb_buf_free(&j->content);
    free(j);
}

typedef struct recording_ctx {
    char rel[520];
} recording_ctx;

static int recording_action(sb_tx *tx, sb_api_op *op)
{
    recording_ctx *c = op->ctx;
    sb_stmt *s = sb_tx_query(tx, "SELECT recording, recording_deleted_at, recording_deleted_by FROM call WHERE id = ?",
                             "i", op->path_id);
    if (s == NULL)
        return SB_EIO;
    int rc = sb_stmt_step(s);
    bool has = rc == 1 && !sb_stmt_isnull(s, 0);
    int64_t deleted_at = has && !sb_stmt_isnull(s, 1) ? sb_stmt_int(s, 1) : 0;
    char deleted_by[32] = "";
    if (has)
        snprintf(c->rel, sizeof c->rel, "%s", sb_stmt_text(s, 0));
    if (deleted_at != 0)
        snprintf(deleted_by, sizeof deleted_by, "%s", sb_stmt_isnull(s, 2) ? "retention" : sb_stmt_text(s, 2));
    sb_stmt_end(s);
    if (rc < 0)
        return rc;
    if (rc == 0)
        return sb_api_fail(op, 404, "not_found", "call %lld does not exist", (long long)op->path_id);
    if (!has)
        return sb_api_fail(op, 404, "no_recording", "call %lld has no recording", (long long)op->path_id);
    if (deleted_at != 0) {
        char when[40];
        sb_clock_format_iso(deleted_at, when, sizeof when);
        return sb_api_fail(op, 410, "recording_deleted", "the recording of call %lld was deleted by %s at %s",
                           (long long)op->path_id, deleted_by, when);
    }
    if (!sb_call_recording_path_valid(c->rel)) {
        sb_log(SB_WARN, "api", "call=%lld recording path leaves the data directory: refused", (long long)op->path_id);
        return sb_api_fail(op, 403, "forbidden", "the recording's path is outside the data directory");
    }
    return 0;
}

static void recording_after(sb_api_op *op)
{
    recording_ctx *c = op->ctx;
    recording_job *j = sb_xcalloc(1, sizeof *j);
    j->req = op->req;
    op->req = NULL; /* answered by recording_send */
    j->call_id = op->path_id;
    snprintf(j->data_dir, sizeof j->data_dir, "%s", op->app->cfg.data_dir);
    snprintf(j->rel, sizeof j->rel, "%s", c->rel);
    parse_range(sb_http_req_header(j->req, "Range"), j);
    j->work.data = j;
    uv_queue_work(op->app->loop, &j->work, recording_read, recording_send);
}

/* ---- missed calls and website requests not yet called back ---- */

typedef struct missed_args {
    int64_t from, to; /* [from, to) of the calls' offered_at */
    bool all;         /* status=all: called back too */
    bool csv, semicolon, russian;
    char error[200];
} missed_args;

static const char *const missed_params[] = {"from", "to", "status", "format", "delimiter", "lang"};

/* The query's names (only `known`, each once) and its period [from, to):
 * ISO 8601 times, to after from. 0, or SB_EINVAL with `error` filled. */
static int parse_period(sb_http_req *req, const char *const *known, size_t nknown, const char *known_list,
                        int64_t *from, int64_t *to, char *error, size_t cap)
{
    char bad[40];
    bool repeated = false;
    *to = INT64_MAX;
    if (sb_http_req_query_names(req, known, nknown, bad, sizeof bad, &repeated) != 0) {
        if (repeated)
            sb_errorf(error, cap, "parameter '%s' is given more than once", bad);
        else
            sb_errorf(error, cap, "unknown parameter '%s' (known: %s)", bad, known_list);
        return SB_EINVAL;
    }
    static const char *const times[] = {"from", "to"};
    for (size_t i = 0; i < 2; i++) {
        const char *v = sb_http_req_query_param(req, times[i]);
        if (v != NULL && sb_clock_parse_iso(v, i == 0 ? from : to) != 0) {
            sb_errorf(error, cap,
                      "parameter '%s' must be an ISO 8601 time such as 2026-11-01T00:00:00Z (a '+' must be sent "
                      "as %%2B)",
                      times[i]);
            return SB_EINVAL;
        }
    }
    if (*to <= *from) {
        sb_errorf(error, cap, "parameter 'to' must be later than 'from'");
        return SB_EINVAL;
    }
    return 0;
}

/* Reads the query on the loop; errors are reported by the action, after
 * authentication (as the metrics report does). */
static void parse_missed(sb_http_req *req, missed_args *a)
{
    if (parse_period(req, missed_params, SB_ARRAY_LEN(missed_params), "from, to, status, format, delimiter, lang",
                     &a->from, &a->to, a->error, sizeof a->error) != 0)
        return;
    struct {
        const char *name, *first, *second;
        bool *second_chosen;
    } choices[] = {{"status", "open", "all", &a->all},
                   {"format", "json", "csv", &a->csv},
                   {"delimiter", "comma", "semicolon", &a->semicolon},
                   {"lang", "en", "ru", &a->russian}};
    for (size_t i = 0; i < SB_ARRAY_LEN(choices); i++) {
        const char *v = sb_http_req_query_param(req, choices[i].name);
        if (v == NULL || strcmp(v, choices[i].first) == 0)
            continue;
        if (strcmp(v, choices[i].second) == 0) {
            *choices[i].second_chosen = true;
            continue;
        }
        sb_errorf(a->error, sizeof a->error, "parameter '%s' must be %s or %s", choices[i].name, choices[i].first,
                  choices[i].second);
        return;
    }
}

/* The report's rows: leads waiting for a call from us.
 *
 * Missed calls: one row per call-back task (the calls that share it are
 * attempts of the same customer), or per call where there is none (an
 * anonymous caller, a blacklisted one, calls from before calls went on
 * tickets). The last call of each gives the time, the wait and the queue;
 * `callback_id` names a website request that joined its task.
 *
 * Website call-back requests (callback_request) that no missed call of the
 * period accounts for: a customer who asked to be called back waits as a
 * missed caller does. Grouped by task the same way (the latest request
 * speaks for the group). One that joined a missed call's task is that
 * call's row, never a second one. Refused (blacklisted) and cancelled
 * requests are no leads. Open: queued, calling, or failed (nobody got
 * through: its task stays open), and the task, if any, still open; done
 * (called back) only with status=all.
 *
 * ?1, ?2: the period [from, to) of the calls' offered_at and the requests'
 * created_at; ?3: all (else only the open). Newest first, either kind. */
#define LEAD_REQUESTS "('queued','calling','failed','done')"
#define MISSED_ROWS                                                                                                    \
    "SELECT 'call' AS kind, c.id AS id, c.from_number, c.status, c.offered_at AS at, c.ended_at, c.queue_team_id, "    \
    "tm.name, c.agent_id, c.contact_id, ct.name, c.ticket_id, t.number, k.id, k.status, k.due_at, k.done_at, "         \
    "k.assignee_id, g.attempts, g.first_at, NULL, k.due_at, w.id "                                                     \
    "FROM (SELECT max(id) AS last_id, count(*) AS attempts, min(offered_at) AS first_at FROM call "                    \
    "WHERE status IN " MISSED_STATUSES " AND direction = 'in' AND offered_at >= ?1 AND offered_at < ?2 "               \
    "GROUP BY COALESCE(callback_task_id, -id)) g "                                                                     \
    "JOIN call c ON c.id = g.last_id LEFT JOIN task k ON k.id = c.callback_task_id "                                   \
    "LEFT JOIN contact ct ON ct.id = c.contact_id LEFT JOIN ticket t ON t.id = c.ticket_id "                           \
    "LEFT JOIN team tm ON tm.id = c.queue_team_id "                                                                    \
    "LEFT JOIN (SELECT task_id, max(id) AS id FROM callback_request WHERE task_id IS NOT NULL AND status "             \
    "IN " LEAD_REQUESTS " GROUP BY task_id) w ON w.task_id = c.callback_task_id "                                      \
    "WHERE ?3 OR k.status = 'open' "                                                                                   \
    "UNION ALL "                                                                                                       \
    "SELECT 'web_request', r.id, r.phone, r.status, r.created_at, NULL, r.team_id, tm.name, r.agent_id, "              \
    "r.contact_id, ct.name, r.ticket_id, t.number, k.id, k.status, k.due_at, k.done_at, k.assignee_id, g.requests, "   \
    "NULL, r.name, COALESCE(CASE WHEN r.status IN ('queued','calling') THEN NULLIF(r.next_attempt_at, 0) END, "        \
    "k.due_at), r.id "                                                                                                 \
    "FROM (SELECT max(id) AS last_id, sum(requests) AS requests FROM callback_request WHERE status IN " LEAD_REQUESTS  \
    " AND created_at >= ?1 AND created_at < ?2 GROUP BY COALESCE(task_id, -id)) g "                                    \
    "JOIN callback_request r ON r.id = g.last_id LEFT JOIN task k ON k.id = r.task_id "                                \
    "LEFT JOIN contact ct ON ct.id = r.contact_id LEFT JOIN ticket t ON t.id = r.ticket_id "                           \
    "LEFT JOIN team tm ON tm.id = r.team_id "                                                                          \
    "WHERE (?3 OR (r.status IN ('queued','calling','failed') AND (k.id IS NULL OR k.status = 'open'))) "               \
    "AND NOT EXISTS (SELECT 1 FROM call m WHERE m.callback_task_id = r.task_id AND m.status IN " MISSED_STATUSES       \
    " AND m.direction = 'in' AND m.offered_at >= ?1 AND m.offered_at < ?2)"

static const char MISSED_SQL[] = MISSED_ROWS " ORDER BY at DESC, kind, id DESC LIMIT ?4";
/* The totals count every row, also beyond the list's MISSED_ROWS_MAX. */
static const char MISSED_TOTALS_SQL[] = "SELECT kind, count(*) FROM (" MISSED_ROWS ") GROUP BY kind";

enum {
    M_KIND,
    M_ID, /* the last call's, or the request's */
    M_PHONE,
    M_STATUS,
    M_AT, /* the last call's offered_at, or when the request was made */
    M_ENDED,
    M_TEAM,
    M_TEAM_NAME,
    M_AGENT,
    M_CONTACT,
    M_CONTACT_NAME,
    M_TICKET,
    M_TICKET_NUMBER,
    M_TASK,
    M_TASK_STATUS,
    M_TASK_DUE,
    M_DONE,
    M_ASSIGNEE,
    M_ATTEMPTS, /* missed calls on the task; forms sent for a request */
    M_FIRST,
    M_NAME,        /* the name the website's form gave */
    M_DUE,         /* the task's due time; a queued request's next attempt */
    M_CALLBACK_ID, /* the request (a call's: one that joined its task) */
};

static bool is_web_request(sb_stmt *s)
{
    return strcmp(sb_stmt_text(s, M_KIND), "web_request") == 0;
}

/* How long the last caller waited before hanging up; false for a website
 * request (nobody was on the line). */
static bool waited_seconds(sb_stmt *s, int64_t *seconds)
{
    if (sb_stmt_isnull(s, M_ENDED))
        return false;
    int64_t ms = sb_stmt_int(s, M_ENDED) - sb_stmt_int(s, M_AT);
    *seconds = ms > 0 ? (ms + 500) / 1000 : 0;
    return true;
}

static json_t *opt_time(sb_stmt *s, int col)
{
    return sb_stmt_isnull(s, col) ? json_null() : sb_json_time(sb_stmt_int(s, col));
}

static json_t *missed_row(sb_stmt *s)
{
    bool web = is_web_request(s);
    int64_t waited = 0;
    bool on_line = waited_seconds(s, &waited);
    json_t *row = json_pack(
        "{s:s,s:o,s:o,s:s,s:o,s:s,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:I}", "kind", web ? "web_request" : "call",
        "call_id", web ? json_null() : json_integer(sb_stmt_int(s, M_ID)), "callback_id", opt_int(s, M_CALLBACK_ID),
        "phone", sb_stmt_text(s, M_PHONE), "name", opt_text(s, M_NAME), "status", sb_stmt_text(s, M_STATUS),
        "requested_at", web ? sb_json_time(sb_stmt_int(s, M_AT)) : json_null(), "last_call_at",
        web ? json_null() : sb_json_time(sb_stmt_int(s, M_AT)), "first_call_at", opt_time(s, M_FIRST), "waited_seconds",
        on_line ? json_integer(waited) : json_null(), "due_at", opt_time(s, M_DUE), "queue_team_id", opt_int(s, M_TEAM),
        "queue_name", opt_text(s, M_TEAM_NAME), "agent_id", opt_int(s, M_AGENT), "ticket_id", opt_int(s, M_TICKET),
        "ticket_number", opt_int(s, M_TICKET_NUMBER), "attempts", (json_int_t)sb_stmt_int(s, M_ATTEMPTS));
    json_object_set_new(
        row, "contact",
        sb_stmt_isnull(s, M_CONTACT)
            ? json_null()
            : json_pack("{s:I,s:o}", "id", (json_int_t)sb_stmt_int(s, M_CONTACT), "name", opt_text(s, M_CONTACT_NAME)));
    json_object_set_new(row, "task",
                        sb_stmt_isnull(s, M_TASK)
                            ? json_null()
                            : json_pack("{s:I,s:s,s:o,s:o,s:o}", "id", (json_int_t)sb_stmt_int(s, M_TASK), "status",
                                        sb_stmt_text(s, M_TASK_STATUS), "due_at", opt_time(s, M_TASK_DUE), "done_at",
                                        opt_time(s, M_DONE), "assignee_id", opt_int(s, M_ASSIGNEE)));
    return row;
}

/* ---- CSV, as the metrics report writes it: UTF-8 with a byte order
 * mark, CRLF, a header row; ';' and decimal commas with
 * delimiter=semicolon; a field a spreadsheet would run as a formula gets
 * a leading apostrophe. ---- */

static void csv_text(sb_buf *b, char sep, const char *z, bool first)
{
    if (!first)
        sb_buf_append(b, &sep, 1);
    if (z == NULL)
        return;
    bool formula = z[0] == '=' || z[0] == '+' || z[0] == '-' || z[0] == '@' || z[0] == '\t' || z[0] == '\r';
    bool quote = formula || strchr(z, sep) != NULL || strpbrk(z, "\"\r\n") != NULL;
    if (quote)
        sb_buf_append(b, "\"", 1);
    if (formula)
        sb_buf_append(b, "'", 1);
    for (const char *p = z; *p != '\0'; p++) {
        if (*p == '"')
            sb_buf_append(b, "\"", 1);
        sb_buf_append(b, p, 1);
    }
    if (quote)
        sb_buf_append(b, "\"", 1);
}

static void csv_time(sb_buf *b, char sep, int64_t ms, bool first)
{
    char iso[40] = "";
    if (ms > 0)
        sb_clock_format_iso(ms, iso, sizeof iso);
    csv_text(b, sep, iso, first);
}

static const char *label_of(const char *const (*table)[3], size_t n, const char *value, bool russian)
{
    for (size_t i = 0; value != NULL && i < n; i++)
        if (strcmp(value, table[i][0]) == 0)
            return table[i][russian ? 2 : 1];
    return value;
}

/* A row of the CSV: the columns of the JSON a spreadsheet needs. A website
 * request's time goes in the first column, its waited time is empty, its
 * contact is the form's name when the contact has none. */
static void csv_missed_row(sb_buf *b, char sep, bool russian, sb_stmt *s)
{
    static const char *const task_status[][3] = {
        {"open", "open", "открыта"}, {"done", "done", "выполнена"}, {"cancelled", "cancelled", "отменена"}};
    static const char *const kinds[][3] = {{"call", "call", "звонок"},
                                           {"web_request", "website request", "заявка с сайта"}};
    static const char *const request_status[][3] = {{"queued", "queued", "в очереди"},
                                                    {"calling", "calling", "звоним"},
                                                    {"failed", "not reached", "не дозвонились"},
                                                    {"done", "reached", "дозвонились"}};
    bool web = is_web_request(s);
    char num[32];
    csv_time(b, sep, sb_stmt_int(s, M_AT), true);
    csv_text(b, sep, sb_stmt_text(s, M_PHONE), false);
    const char *who = sb_stmt_text(s, M_CONTACT_NAME);
    csv_text(b, sep, who != NULL && who[0] != '\0' ? who : sb_stmt_text(s, M_NAME), false);
    num[0] = '\0';
    if (!sb_stmt_isnull(s, M_TICKET_NUMBER))
        snprintf(num, sizeof num, "%lld", (long long)sb_stmt_int(s, M_TICKET_NUMBER));
    csv_text(b, sep, num, false);
    csv_text(b, sep, sb_stmt_text(s, M_TEAM_NAME), false);
    int64_t waited = 0;
    num[0] = '\0';
    if (waited_seconds(s, &waited))
        snprintf(num, sizeof num, "%lld", (long long)waited);
    csv_text(b, sep, num, false);
    sb_buf_printf(b, "%c%lld", sep, (long long)sb_stmt_int(s, M_ATTEMPTS));
    csv_text(b, sep, label_of(task_status, SB_ARRAY_LEN(task_status), sb_stmt_text(s, M_TASK_STATUS), russian), false);
    csv_time(b, sep, sb_stmt_isnull(s, M_DUE) ? 0 : sb_stmt_int(s, M_DUE), false);
    csv_text(b, sep, label_of(kinds, SB_ARRAY_LEN(kinds), sb_stmt_text(s, M_KIND), russian), false);
    csv_text(b, sep,
             web ? label_of(request_status, SB_ARRAY_LEN(request_status), sb_stmt_text(s, M_STATUS), russian) : NULL,
             false);
    sb_buf_append(b, "\r\n", 2);
}

/* How many rows of each kind the period has (the list stops at
 * MISSED_ROWS_MAX). */
static int missed_totals(sb_tx *tx, const missed_args *a, int64_t *calls, int64_t *requests)
{
    *calls = *requests = 0;
    sb_stmt *s = sb_tx_query(tx, MISSED_TOTALS_SQL, "iib", a->from, a->to, a->all);
    if (s == NULL)
        return SB_EIO;
    int rc;
    while ((rc = sb_stmt_step(s)) == 1)
        *(strcmp(sb_stmt_text(s, 0), "web_request") == 0 ? requests : calls) = sb_stmt_int(s, 1);
    sb_stmt_end(s);
    return rc < 0 ? rc : 0;
}

static int missed_action(sb_tx *tx, sb_api_op *op)
{
    missed_args *a = op->ctx;
    if (a->error[0] != '\0')
        return sb_api_fail(op, 422, "validation_failed", "%s", a->error);
    sb_stmt *s = sb_tx_query(tx, MISSED_SQL, "iibi", a->from, a->to, a->all, (int64_t)MISSED_ROWS_MAX);
    if (s == NULL)
        return SB_EIO;
    int rc;
    if (a->csv) {
        static const char *const header[][2] = {{"Last call", "Последний звонок"},
                                                {"Phone", "Телефон"},
                                                {"Contact", "Клиент"},
                                                {"Ticket", "Обращение"},
                                                {"Queue", "Очередь"},
                                                {"Waited (s)", "Ожидание (с)"},
                                                {"Attempts", "Попыток"},
                                                {"Call back", "Перезвон"},
                                                {"Due", "Срок"},
                                                {"Kind", "Вид"},
                                                {"Request", "Заявка"}};
        char sep = a->semicolon ? ';' : ',';
        sb_buf b;
        sb_buf_init(&b);
        sb_buf_append(&b, "\xEF\xBB\xBF", 3);
        for (size_t i = 0; i < SB_ARRAY_LEN(header); i++)
            csv_text(&b, sep, header[i][a->russian ? 1 : 0], i == 0);
        sb_buf_append(&b, "\r\n", 2);
        while ((rc = sb_stmt_step(s)) == 1)
            csv_missed_row(&b, sep, a->russian, s);
        sb_stmt_end(s);
        if (rc < 0) {
            sb_buf_free(&b);
            return rc;
        }
        sb_buf_append(&b, "", 1); /* NUL-terminated: out_text is a C string */
        op->out_text = b.p;
        op->out_on_loop = true;
        return 0;
    }
    json_t *list = json_array();
    while ((rc = sb_stmt_step(s)) == 1)
        json_array_append_new(list, missed_row(s));
    sb_stmt_end(s);
    int64_t calls = 0, requests = 0;
    if (rc >= 0)
        rc = missed_totals(tx, a, &calls, &requests);
    if (rc < 0) {
        json_decref(list);
        return rc;
    }
    json_t *body =
        json_pack("{s:o,s:o,s:s,s:o,s:{s:I,s:I,s:I}}", "from", a->from > 0 ? sb_json_time(a->from) : json_null(), "to",
                  a->to < INT64_MAX ? sb_json_time(a->to) : json_null(), "status", a->all ? "all" : "open", "calls",
                  list, "totals", "all", (json_int_t)(calls + requests), "missed_calls", (json_int_t)calls,
                  "web_requests", (json_int_t)requests);
    op->out = body;
    return 0;
}

/* The CSV goes out as a download named after the day it was made. */
static void missed_send(sb_api_op *op)
{
    const missed_args *a = op->ctx;
    if (!a->csv || op->req == NULL || op->out_text == NULL)
        return;
    char day[40], disposition[120];
    sb_clock_format_iso(sb_clock_wall_ms(), day, sizeof day);
    day[10] = '\0';
    snprintf(disposition, sizeof disposition, "attachment; filename=\"missed-calls-%s.csv\"", day);
    sb_http_add_header(op->req, "Content-Disposition", disposition);
    sb_http_respond(op->req, 200, "text/csv; charset=utf-8", op->out_text, strlen(op->out_text));
    op->req = NULL;
}

static void handle_missed(sb_app *app, sb_http_req *req)
{
    missed_args *a = sb_xcalloc(1, sizeof *a);
    parse_missed(req, a);
    sb_api_op *op = sb_api_op_new(app, req, SB_ROLE_SUPERVISOR, missed_action);
    op->read_only = true;
    op->ctx = a;
    op->ctx_free = free;
    op->after = missed_send;
    sb_api_submit(op);
}

/* ---- per-queue figures: how well each team answers the phone ---- */

typedef struct queues_args {
    int64_t from, to;
    int sl_seconds; /* service level: answered within this many seconds */
    char error[200];
} queues_args;

static const char *const queues_params[] = {"from", "to", "service_level_seconds"};

static void parse_queues(sb_http_req *req, queues_args *a)
{
    a->sl_seconds = 20;
    if (parse_period(req, queues_params, SB_ARRAY_LEN(queues_params), "from, to, service_level_seconds", &a->from,
                     &a->to, a->error, sizeof a->error) != 0)
        return;
    const char *v = sb_http_req_query_param(req, "service_level_seconds");
    if (v != NULL) {
        char *end = NULL;
        long n = strtol(v, &end, 10);
        if (end == v || *end != '\0' || n < 1 || n > 3600) {
            sb_errorf(a->error, sizeof a->error, "parameter 'service_level_seconds' must be 1 to 3600");
            return;
        }
        a->sl_seconds = (int)n;
    }
}

/* Inbound calls that reached a queue, by team: offered, answered (by a
 * person), abandoned while waiting, missed (our max wait, nobody), voicemail;
 * ASA (the average wait of the answered), the average wait before
 * abandoning, the average talk (to the agent's hang-up when the caller
 * stayed to rate the call), the service level (answered within N s, of
 * the answered and abandoned), the abandonment rate, and the post-call
 * ratings (how many, their average; null when none). */
static const char QUEUES_SQL[] =
    "SELECT c.queue_team_id, COALESCE(tm.name, ''), count(*), "
    "sum(c.status = 'answered'), sum(c.status = 'abandoned'), sum(c.status = 'missed'), "
    "sum(c.status = 'voicemail'), "
    "COALESCE(avg(CASE WHEN c.status = 'answered' THEN c.answered_at - c.offered_at END), 0), "
    "COALESCE(avg(CASE WHEN c.status = 'abandoned' THEN c.ended_at - c.offered_at END), 0), "
    "COALESCE(avg(CASE WHEN c.status = 'answered' THEN COALESCE(c.talk_ended_at, c.ended_at) - c.answered_at END), 0), "
    "sum(c.status = 'answered' AND c.answered_at - c.offered_at <= ?3), count(c.rating), COALESCE(sum(c.rating), 0) "
    "FROM call c LEFT JOIN team tm ON tm.id = c.queue_team_id "
    "WHERE c.direction = 'in' AND c.queue_team_id IS NOT NULL AND c.offered_at >= ?1 AND c.offered_at < ?2 "
    "GROUP BY c.queue_team_id ORDER BY c.queue_team_id";

static double ratio(int64_t a, int64_t b)
{
    return b > 0 ? (double)a / (double)b : 0.0;
}

static int queues_action(sb_tx *tx, sb_api_op *op)
{
    queues_args *a = op->ctx;
    if (a->error[0] != '\0')
        return sb_api_fail(op, 422, "validation_failed", "%s", a->error);
    sb_stmt *st = sb_tx_query(tx, QUEUES_SQL, "iii", a->from, a->to, (int64_t)a->sl_seconds * 1000);
    if (st == NULL)
        return SB_EIO;
    json_t *list = json_array();
    int rc;
    while ((rc = sb_stmt_step(st)) == 1) {
        int64_t offered = sb_stmt_int(st, 2), answered = sb_stmt_int(st, 3), abandoned = sb_stmt_int(st, 4);
        int64_t within = sb_stmt_int(st, 10);
        json_array_append_new(
            list,
            json_pack("{s:I,s:s,s:I,s:I,s:I,s:I,s:I,s:f,s:f,s:f,s:f,s:f}", "team_id", (json_int_t)sb_stmt_int(st, 0),
                      "team_name", sb_stmt_text(st, 1), "offered", (json_int_t)offered, "answered",
                      (json_int_t)answered, "abandoned", (json_int_t)abandoned, "missed",
                      (json_int_t)sb_stmt_int(st, 5), "voicemail", (json_int_t)sb_stmt_int(st, 6), "asa_seconds",
                      (double)sb_stmt_int(st, 7) / 1000.0, "abandon_wait_seconds", (double)sb_stmt_int(st, 8) / 1000.0,
                      "talk_seconds", (double)sb_stmt_int(st, 9) / 1000.0, "service_level",
                      ratio(within, answered + abandoned), "abandonment_rate", ratio(abandoned, offered)));
        int64_t rated = sb_stmt_int(st, 11);
        json_t *q = json_array_get(list, json_array_size(list) - 1);
        json_object_set_new(q, "rating_count", json_integer(rated));
        json_object_set_new(q, "rating_average",
                            rated > 0 ? json_real(ratio(sb_stmt_int(st, 12), rated)) : json_null());
    }
    sb_stmt_end(st);
    if (rc < 0) {
        json_decref(list);
        return rc;
    }
    op->out = json_pack("{s:o,s:i}", "queues", list, "service_level_seconds", a->sl_seconds);
    return 0;
}

static void handle_queues(sb_app *app, sb_http_req *req)
{
    queues_args *a = sb_xcalloc(1, sizeof *a);
    parse_queues(req, a);
    sb_api_op *op = sb_api_op_new(app, req, SB_ROLE_SUPERVISOR, queues_action);
    op->read_only = true;
    op->ctx = a;
    op->ctx_free = free;
    sb_api_submit(op);
}

bool sb_api_calls_route(sb_app *app, sb_http_req *req, const char *path)
{
    if (strncmp(path, "/api/v1/calls", 13) != 0 || (path[13] != '\0' && path[13] != '/'))
        return false;
    sb_http_method m = sb_http_req_method(req);
    if (m != SB_HTTP_GET && m != SB_HTTP_HEAD) { /* POST and DELETE: sb_api_outbound_route */
        sb_respond_method_not_allowed(req, path[13] == '\0' ? "GET, POST" : "GET, DELETE");
        return true;
    }
    if (path[13] == '\0') {
        handle_list(app, req);
        return true;
    }
    if (strcmp(path, "/api/v1/calls/missed") == 0) {
        handle_missed(app, req);
        return true;
    }
    if (strcmp(path, "/api/v1/calls/queues") == 0) {
        handle_queues(app, req);
        return true;
    }
    int64_t id;
    const char *rest;
    if (!sb_path_id(path, "/api/v1/calls/", &id, &rest) || id <= 0 ||
        (*rest != '\0' && strcmp(rest, "/recording") != 0)) {
        sb_http_respond_error(req, 404, "not_found", "no such resource: %s", path);
        return true;
    }
    sb_api_op *op;
    if (*rest == '\0') {
        op = sb_api_op_new(app, req, SB_ROLE_SUPERVISOR, get_action);
    } else {
        /* agents play it from the ticket's message, as they open its files */
        op = sb_api_op_new(app, req, SB_ROLE_AGENT, recording_action);
        op->ctx = sb_xcalloc(1, sizeof(recording_ctx));
        op->ctx_free = free;
        op->after = recording_after;
    }
    op->read_only = true;
    op->path_id = id;
    sb_api_submit(op);
    return true;
}
