/* system.c - /healthz, /metrics (Prometheus text), /api/v1/openapi.json,
 * /api/v1/files/{sha256}. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api/api.h"
#include "api/stream.h"
#include "api/system.h"
#include "base/clock.h"
#include "channels/outbox.h"
#include "channels/webchat.h"
#include "voice/calls.h"
#include "voice/retention.h"

extern const unsigned char sb_asset_openapi_json[];
extern const size_t sb_asset_openapi_json_len;

typedef struct health_op {
    sb_app *app;
    sb_http_req *req;
    int version;
    int64_t tickets;
} health_op;

static int health_run(sb_tx *tx, void *arg)
{
    health_op *h = arg;
    return sb_tx_int(tx, &h->tickets, "SELECT COUNT(*) FROM ticket WHERE status IN ('new','open','pending')", "") == 1
               ? 0
               : SB_EIO;
}

static void health_done(void *arg, int rc)
{
    health_op *h = arg;
    sb_http_add_header(h->req, "Cache-Control", "no-store");
    if (rc == 0 && !h->app->stopping) {
        sb_http_respond_json(h->req, 200,
                             json_pack("{s:s,s:s,s:i,s:I,s:I}", "status", "ok", "version", SB_VERSION, "schema",
                                       sb_store_schema_version(h->app->store), "uptime_s",
                                       (json_int_t)((sb_clock_wall_ms() - h->app->started_at) / 1000), "active_tickets",
                                       (json_int_t)h->tickets));
    } else {
        sb_http_respond_json(h->req, 503,
                             json_pack("{s:s,s:{s:s,s:s}}", "status", "unavailable", "error", "code",
                                       h->app->stopping ? "shutting_down" : "store_unavailable", "message",
                                       "the store cannot be read"));
    }
    free(h);
}

void sb_system_healthz(sb_app *app, sb_http_req *req)
{
    health_op *h = sb_xcalloc(1, sizeof *h);
    h->app = app;
    h->req = req;
    sb_store_submit(app->store, health_run, health_done, h);
}

void sb_system_metrics(sb_app *app, sb_http_req *req)
{
    sb_buf b;
    sb_buf_init(&b);
    sb_store_stats st;
    sb_store_get_stats(app->store, &st);
    sb_app_metrics *m = &app->metrics;
#define GAUGE(name, help, type, value)                                                                                 \
    sb_buf_printf(&b,                                                                                                  \
                  "# HELP switchboard_" name " " help "\n# TYPE switchboard_" name " " type "\n"                       \
                  "switchboard_" name " %llu\n",                                                                       \
                  (unsigned long long)(value))
    GAUGE("http_requests_total", "HTTP requests received.", "counter", sb_http_server_requests_total(app->http));
    GAUGE("http_connections", "Open HTTP connections.", "gauge", sb_http_server_connections(app->http));
    GAUGE("stream_subscribers", "Agents connected to /api/v1/stream.", "gauge", sb_stream_subscribers(app->hub));
    GAUGE("webchat_connections", "Chat visitors connected.", "gauge", sb_webchat_connections(app->webchat));
    GAUGE("inbound_messages_total", "Inbound customer messages stored.", "counter", m->inbound_messages);
    GAUGE("inbound_duplicates_total", "Inbound messages recognised as repeats.", "counter", m->inbound_duplicates);
    GAUGE("outbound_sent_total", "Outbound callbacks delivered.", "counter", m->outbound_sent);
    GAUGE("outbound_failed_total", "Outbound callbacks given up.", "counter", m->outbound_failed);
    GAUGE("outbound_retries_total", "Outbound callback attempts to be retried.", "counter", m->outbound_retries);
    GAUGE("outbox_inflight", "Outbound callbacks in flight.", "gauge", sb_outbox_inflight(app->outbox));
    GAUGE("events_published_total", "Events sent to agent streams (counted while at least one listens).", "counter",
          m->events_published);
    GAUGE("rate_limited_total", "Requests refused with 429.", "counter", m->rate_limited);
    GAUGE("overloaded_total", "Requests refused with 503.", "counter", m->overloaded);
    GAUGE("store_commits_total", "Group commits.", "counter", st.commits);
    GAUGE("store_ops_total", "Store operations.", "counter", st.ops);
    GAUGE("store_ops_failed_total", "Store operations rolled back.", "counter", st.ops_failed);
    GAUGE("store_reads_total", "Read-only store operations (reports), run on the reader thread.", "counter", st.reads);
    GAUGE("store_commit_failures_total", "Failed commits.", "counter", st.commit_failures);
    GAUGE("store_checkpoints_total", "WAL checkpoints run.", "counter", st.checkpoints);
    GAUGE("store_last_commit_microseconds",
          "Duration of the last batch: its ops and the commit (without the WAL flush).", "gauge", st.last_commit_us);
    GAUGE("store_max_batch", "Largest number of ops in one commit.", "gauge", st.max_batch);
    GAUGE("store_wal_syncs_total", "WAL flushes; one covers every commit before it.", "counter", st.syncs);
    GAUGE("store_last_wal_sync_microseconds", "Duration of the last WAL flush.", "gauge", st.last_sync_us);
    GAUGE("uptime_seconds", "Seconds since start.", "gauge", (sb_clock_wall_ms() - app->started_at) / 1000);
#undef GAUGE
    sb_calls_metrics_text(app->calls, &b);
    sb_retention_metrics_text(app->retention, &b);
    sb_http_add_header(req, "Cache-Control", "no-store");
    sb_http_respond(req, 200, "text/plain; version=0.0.4; charset=utf-8", b.p, b.len);
    sb_buf_free(&b);
}

/* A download: the op only authenticates; the file is read on the thread
 * pool so that neither the loop nor the store thread (and with it every
 * commit) waits on a large read. */
typedef struct file_job {
    sb_http_req *req;
    char path[700];
    sb_buf content;
    bool found;
    uv_work_t work;
} file_job;

typedef struct file_ctx {
    char sha[65];
} file_ctx;

static int file_action(sb_tx *tx, sb_api_op *op)
{
    return 0; /* authentication is all the store has to do */
}

static void file_read(uv_work_t *w)
{
    file_job *j = w->data;
    int fd = open(j->path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return;
    struct stat st;
    if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size <= (64 << 20)) {
        sb_buf_reserve(&j->content, (size_t)st.st_size);
        ssize_t n;
        char chunk[65536];
        while ((n = read(fd, chunk, sizeof chunk)) > 0)
            sb_buf_append(&j->content, chunk, (size_t)n);
        j->found = n == 0;
    }
    close(fd);
}

static void file_send(uv_work_t *w, int status)
{
    file_job *j = w->data;
    if (status != 0 || !j->found) {
        sb_http_respond_error(j->req, 404, "not_found", "no such file");
    } else {
        sb_http_add_header(j->req, "Cache-Control", "private, max-age=31536000, immutable");
        sb_http_add_header(j->req, "X-Content-Type-Options", "nosniff");
        sb_http_add_header(j->req, "Content-Disposition", "attachment");
        sb_http_respond(j->req, 200, "application/octet-stream", j->content.p, j->content.len);
    }
    sb_buf_free(&j->content);
    free(j);
}

static void file_after(sb_api_op *op)
{
    file_ctx *f = op->ctx;
    file_job *j = sb_xcalloc(1, sizeof *j);
    j->req = op->req;
    op->req = NULL; /* answered by file_send */
    snprintf(j->path, sizeof j->path, "%s/files/%s", op->app->cfg.data_dir, f->sha);
    j->work.data = j;
    uv_queue_work(op->app->loop, &j->work, file_read, file_send);
}

static bool is_sha256(const char *z)
{
    if (strlen(z) != 64)
        return false;
    for (const char *p = z; *p; p++)
        if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
            return false;
    return true;
}

bool sb_api_system_route(sb_app *app, sb_http_req *req, const char *path)
{
    sb_http_method m = sb_http_req_method(req);
    if (strcmp(path, "/api/v1/openapi.json") == 0) {
        if (m != SB_HTTP_GET && m != SB_HTTP_HEAD) {
            sb_respond_method_not_allowed(req, "GET");
        } else {
            sb_http_add_header(req, "Cache-Control", "public, max-age=300");
            sb_http_respond(req, 200, "application/json", sb_asset_openapi_json, sb_asset_openapi_json_len);
        }
        return true;
    }
    if (strcmp(path, "/api/v1/stream") == 0) {
        if (m != SB_HTTP_GET)
            sb_respond_method_not_allowed(req, "GET");
        else
            sb_stream_handle(app, req);
        return true;
    }
    if (strncmp(path, "/api/v1/files/", 14) == 0) {
        if (m != SB_HTTP_GET && m != SB_HTTP_HEAD) {
            sb_respond_method_not_allowed(req, "GET");
        } else if (!is_sha256(path + 14)) {
            sb_http_respond_error(req, 404, "not_found", "no such file");
        } else {
            sb_api_op *op = sb_api_op_new(app, req, SB_ROLE_AGENT, file_action);
            file_ctx *f = sb_xcalloc(1, sizeof *f);
            snprintf(f->sha, sizeof f->sha, "%s", path + 14);
            op->ctx = f;
            op->ctx_free = free;
            op->after = file_after;
            sb_api_submit(op);
        }
        return true;
    }
    return false;
}
