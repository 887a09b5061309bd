/* app.c - `switchboard serve`: wires the loop, store, HTTP server, live
 * connections and outbox together; graceful shutdown on SIGTERM/SIGINT. */
#include "app.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include "api/api.h"
#include "api/dashboard.h"
#include "api/ratelimit.h"
#include "api/stream.h"
#include "api/system.h"
#include "base/clock.h"
#include "base/crypto.h"
#include "base/log.h"
#include "channels/outbox.h"
#include "channels/webchat.h"
#include "demo.h"
#include "dispatch.h"
#include "web.h"
#include "engine/model.h"
#include "voice/calls.h"
#include "voice/calltickets.h"
#include "voice/retention.h"
#include "voice/callbacks.h"

void sb_event_texts_take(sb_event_texts *out, json_t *events, int64_t now_ms)
{
    out->v = NULL;
    out->n = 0;
    if (events == NULL)
        return;
    size_t i, cap = json_array_size(events);
    json_t *ev;
    char at[40];
    sb_clock_format_iso(now_ms, at, sizeof at);
    if (cap > 0)
        out->v = sb_xcalloc(cap, sizeof *out->v);
    json_array_foreach (events, i, ev) {
        json_t *data = json_object_get(ev, "data");
        if (data == NULL || json_is_null(data))
            continue;
        json_object_set_new(ev, "at", json_string(at));
        char *text = json_dumps(ev, JSON_COMPACT);
        out->v[out->n++] = (sb_str){text, strlen(text)};
    }
    json_decref(events);
}

void sb_event_texts_free(sb_event_texts *t)
{
    for (size_t i = 0; i < t->n; i++)
        free((char *)t->v[i].p);
    free(t->v);
    t->v = NULL;
    t->n = 0;
}

static void decref_json(void *p)
{
    json_decref(p);
}

void sb_app_publish_built(sb_app *app, json_t *events, int64_t at_ms)
{
    if (events == NULL)
        return;
    if (sb_stream_subscribers(app->hub) > 0) {
        sb_event_texts t;
        sb_event_texts_take(&t, json_incref(events), at_ms);
        app->metrics.events_published += t.n;
        if (t.n > 0)
            sb_stream_broadcast(app->hub, t.v, t.n);
        sb_event_texts_free(&t);
    }
    sb_store_release_later(app->store, decref_json, events);
}

void sb_app_publish(sb_app *app, json_t *events)
{
    sb_event_texts t;
    sb_event_texts_take(&t, json_incref(events), sb_clock_wall_ms());
    if (t.n > 0 && sb_stream_subscribers(app->hub) > 0) {
        app->metrics.events_published += t.n;
        sb_stream_broadcast(app->hub, t.v, t.n);
    }
    sb_event_texts_free(&t); /* made here, on the loop */
}

static const char landing[] =
    "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Switchboard</title>"
    "<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\"></head><body style=\"font:16px "
    "system-ui;max-width:40em;margin:3em auto;padding:0 1em\"><h1>Switchboard</h1><p>The daemon is running.</p>"
    "<ul><li><a href=\"/chat/demo\">Website chat demo</a></li><li><a href=\"/api/v1/openapi.json\">REST API "
    "(OpenAPI)</a></li><li><a href=\"/healthz\">Health</a> &middot; <a href=\"/metrics\">Metrics</a></li></ul>"
    "</body></html>";

static void on_request(sb_http_req *req, void *ud)
{
    sb_app *app = ud;
    const char *path = sb_http_req_path(req);
    sb_http_method m = sb_http_req_method(req);
    bool get = m == SB_HTTP_GET || m == SB_HTTP_HEAD;
    if (strcmp(path, "/healthz") == 0) {
        if (get)
            sb_system_healthz(app, req);
        else
            sb_respond_method_not_allowed(req, "GET");
    } else if (strcmp(path, "/metrics") == 0) {
        if (get)
            sb_system_metrics(app, req);
        else
            sb_respond_method_not_allowed(req, "GET");
    } else if (strncmp(path, "/api/", 5) == 0) {
        sb_api_handle(app, req);
    } else if (sb_webchat_route(app->webchat, req, path)) {
        /* handled */
    } else if (sb_web_route(app->web, req, path)) {
        /* the workspace */
    } else if (strcmp(path, "/") == 0 && get) {
        sb_http_add_header(req, "Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'");
        sb_http_respond(req, 200, "text/html; charset=utf-8", landing, sizeof landing - 1);
    } else {
        sb_http_respond_error(req, 404, "not_found", "no such resource: %s", path);
    }
}

static void on_http_closed(void *arg)
{
    sb_app *app = arg;
    uv_stop(app->loop);
}

static void on_outbox_closed(void *arg)
{
    sb_app *app = arg;
    sb_http_server_close(app->http, on_http_closed, app);
}

static void begin_shutdown(sb_app *app, const char *why)
{
    if (app->stopping)
        return;
    app->stopping = true;
    sb_log(SB_INFO, "app", "shutting down reason=%s", why);
    sb_http_server_stop_accepting(app->http);
    sb_dispatch_stop(app->dispatch);
    sb_retention_stop(app->retention);
    /* no new call-back; the hang-ups below still count */
    sb_callbacks_stop(app->callbacks);
    sb_calls_stop(app->calls);  /* ends the calls; their log rows join the flush */
    sb_store_flush(app->store); /* answers everything that waited on a commit */
    sb_stream_close_all(app->hub);
    sb_webchat_close_all(app->webchat);
    uv_signal_stop(&app->sig_term);
    uv_signal_stop(&app->sig_int);
    sb_outbox_close(app->outbox, on_outbox_closed, app);
}

static void on_signal(uv_signal_t *h, int signum)
{
    sb_app *app = h->data;
    if (signum == SIGHUP) {
        sb_log_reopen();
        sb_log(SB_INFO, "app", "log reopened");
        sb_dispatch_reload(app->dispatch); /* picks up `config import` and `user sip-password` */
        return;
    }
    begin_shutdown(app, signum == SIGTERM ? "SIGTERM" : "SIGINT");
}

typedef struct boot_op {
    sb_app *app;
    int64_t webchat_id;
} boot_op;

static int boot_run(sb_tx *tx, void *arg)
{
    boot_op *b = arg;
    sb_stmt *s = sb_tx_query(tx, "SELECT value FROM setting WHERE key = 'secret'", "");
    if (s == NULL)
        return SB_EIO;
    if (sb_stmt_step(s) == 1)
        snprintf(b->app->secret, sizeof b->app->secret, "%s", sb_stmt_text(s, 0));
    sb_stmt_end(s);
    if (b->app->secret[0] == '\0') {
        sb_random_hex(b->app->secret, 32);
        int rc = sb_tx_exec(tx, "INSERT INTO setting (key, value) VALUES ('secret', ?)", "t", b->app->secret);
        if (rc != 0)
            return rc;
    }
    char hook[65];
    sb_random_hex(hook, 32);
    int hrc = sb_tx_exec(tx, "INSERT OR IGNORE INTO setting (key, value) VALUES ('webhook_secret', ?)", "t", hook);
    if (hrc != 0)
        return hrc;
    int64_t id = 0;
    if (sb_tx_int(tx, &id, "SELECT MIN(id) FROM channel WHERE kind = 'webchat' AND active = 1", "") == 1)
        b->webchat_id = id;
    return 0;
}

static void boot_done(void *arg, int rc)
{
    boot_op *b = arg;
    if (rc != 0)
        sb_log(SB_ERROR, "app", "cannot read settings rc=%d", rc);
    b->app->demo_channel_id = b->webchat_id;
}

static void raise_nofile(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max > 65536 ? 65536 : rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

int sb_app_serve(sb_config *cfg)
{
    sb_app app;
    memset(&app, 0, sizeof app);
    app.cfg = *cfg;
    app.started_at = sb_clock_wall_ms();
    raise_nofile();
    signal(SIGPIPE, SIG_IGN);
    if (mkdir(cfg->data_dir, 0750) != 0 && errno != EEXIST) {
        sb_log(SB_ERROR, "app", "cannot create data dir %s", cfg->data_dir);
        return 1;
    }
    if (app.cfg.public_url[0] == '\0')
        snprintf(app.cfg.public_url, sizeof app.cfg.public_url, "http://%s:%d",
                 strchr(cfg->listen_host, ':') ? "localhost" : cfg->listen_host, cfg->listen_port);
    uv_loop_t loop;
    uv_loop_init(&loop);
    app.loop = &loop;
    int rc = sb_store_open(&app.store, &loop, cfg->data_dir);
    if (rc != 0) {
        sb_log(SB_ERROR, "app", "cannot open the store in %s rc=%d", cfg->data_dir, rc);
        uv_loop_close(&loop);
        return 1;
    }
    sb_store_set_precommit(app.store, sb_model_index_text_lazily, &app.text_indexer);
    if (cfg->demo) {
        rc = sb_demo_seed(app.store, cfg->sip_realm);
        if (rc != 0)
            sb_log(SB_ERROR, "app", "demo seed failed rc=%d", rc);
    }
    boot_op boot = {&app, 0};
    sb_store_submit(app.store, boot_run, boot_done, &boot);
    sb_store_flush(app.store);
    if (app.secret[0] == '\0') {
        sb_store_close(app.store);
        uv_loop_close(&loop);
        return 1;
    }

    app.web = sb_web_load(cfg->web_root);
    app.dispatch = sb_dispatch_start(&app);
    if (app.dispatch == NULL) {
        sb_log(SB_ERROR, "app", "cannot load the routing engine's state");
        sb_store_close(app.store);
        uv_run(&loop, UV_RUN_DEFAULT);
        uv_loop_close(&loop);
        return 1;
    }

    sb_http_limits limits;
    sb_http_limits_default(&limits);
    limits.max_body_bytes = cfg->max_body_bytes;
    limits.max_connections = cfg->max_connections;
    limits.header_timeout_ms = cfg->header_timeout_ms;
    limits.idle_timeout_ms = cfg->idle_timeout_ms;
    app.ratelimit = sb_ratelimit_new(cfg->rate_per_ip, cfg->rate_per_token, cfg->trusted_proxies);
    app.hub = sb_stream_hub_new(&app);
    app.dashboard = sb_dashboard_start(&app);
    app.webchat = sb_webchat_new(&app);
    app.outbox = sb_outbox_new(&app);
    app.http = sb_http_server_new(&loop, &limits, on_request, &app);
    rc = sb_http_server_listen(app.http, cfg->listen_host, cfg->listen_port);
    if (rc != 0) {
        sb_log(SB_ERROR, "app", "cannot listen on %s:%d: %s", cfg->listen_host, cfg->listen_port, uv_strerror(rc));
        fprintf(stderr, "switchboard: cannot listen on %s:%d: %s\n", cfg->listen_host, cfg->listen_port,
                uv_strerror(rc));
        return 1;
    }
    if (cfg->sip_host[0] != '\0') {
        app.calls = sb_calls_start(&app);
        if (app.calls == NULL) {
            fprintf(stderr, "switchboard: cannot start voice (SIP on %s:%d)\n", cfg->sip_host, cfg->sip_port);
            return 1;
        }
        printf("switchboard sip on %s:%d\n", cfg->sip_host, sb_calls_sip_port(app.calls));
        sb_call_tickets_start(&app); /* the phone channel calls' messages belong to */
        /* the website's call-back requests */
        app.callbacks = sb_callbacks_start(&app);
    }
    app.retention = sb_retention_start(&app); /* with voice off too: files made before */
    uv_signal_init(&loop, &app.sig_term);
    uv_signal_init(&loop, &app.sig_int);
    uv_signal_init(&loop, &app.sig_hup);
    app.sig_term.data = app.sig_int.data = app.sig_hup.data = &app;
    uv_signal_start(&app.sig_term, on_signal, SIGTERM);
    uv_signal_start(&app.sig_int, on_signal, SIGINT);
    uv_signal_start(&app.sig_hup, on_signal, SIGHUP);
    uv_unref((uv_handle_t *)&app.sig_hup);
    sb_outbox_start(app.outbox);
    sb_log(SB_INFO, "app", "listening addr=%s:%d data=%s version=%s", cfg->listen_host, sb_http_server_port(app.http),
           cfg->data_dir, SB_VERSION);
    /* A line scripts and tests can wait for. */
    printf("switchboard listening on http://%s:%d\n", cfg->listen_host, sb_http_server_port(app.http));
    fflush(stdout);

    uv_run(&loop, UV_RUN_DEFAULT);

    sb_store_flush(app.store);
    uv_close((uv_handle_t *)&app.sig_term, NULL);
    uv_close((uv_handle_t *)&app.sig_int, NULL);
    uv_close((uv_handle_t *)&app.sig_hup, NULL);
    sb_dispatch_stop(app.dispatch);
    sb_dashboard_stop(app.dashboard);
    sb_retention_stop(app.retention);
    sb_callbacks_stop(app.callbacks);
    sb_store_close(app.store);
    uv_run(&loop, UV_RUN_DEFAULT); /* let closing handles finish */
    sb_dispatch_free(app.dispatch);
    sb_dashboard_free(app.dashboard);
    sb_calls_free(app.calls);
    sb_callbacks_free(app.callbacks); /* after the calls: their last hang-ups told it */
    sb_retention_free(app.retention);
    sb_web_free(app.web);
    sb_http_server_free(app.http);
    sb_outbox_free(app.outbox);
    sb_webchat_free(app.webchat);
    sb_stream_hub_free(app.hub);
    sb_ratelimit_free(app.ratelimit);
    free(app.channel_keys);
    int close_rc = uv_loop_close(&loop);
    if (close_rc != 0)
        sb_log(SB_WARN, "app", "loop closed with handles left rc=%d", close_rc);
    sb_log(SB_INFO, "app", "stopped");
    return 0;
}
