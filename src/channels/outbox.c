/* outbox.c - see outbox.h. libcurl's multi_socket API on the core loop:
 * curl tells us which sockets to watch (uv_poll) and when to time out
 * (uv_timer); we never call curl from inside its own callbacks. */
#include "channels/outbox.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/clock.h"
#include "base/crypto.h"
#include "base/log.h"
#include "engine/model.h"

#define MAX_INFLIGHT 64
#define SCAN_BATCH   128
#define OUTBOX_MAGIC 0x0B0C5EEDu
#define RESPONSE_CAP 4096

typedef struct transfer transfer;

struct sb_outbox {
    unsigned magic;
    sb_app *app;
    CURLM *multi;
    uv_timer_t curl_timer; /* curl's own timeout */
    uv_timer_t due_timer;  /* next retry due */
    bool scanning, rescan, closing;
    transfer *inflight; /* list */
    unsigned ninflight;
    int open_handles;
    void (*close_cb)(void *);
    void *close_arg;
};

struct transfer {
    sb_outbox *ob;
    transfer *next;
    CURL *easy;
    struct curl_slist *headers;
    int64_t id;
    int64_t message_id;
    unsigned attempts;
    char *url;
    char *body;
    char error[CURL_ERROR_SIZE];
    long status;
    long retry_after_s;
    size_t response_len;
    CURLcode result;
};

typedef struct poll_ctx {
    uv_poll_t poll;
    sb_outbox *ob;
    curl_socket_t fd;
} poll_ctx;

int64_t sb_outbox_backoff_ms(unsigned failures)
{
    int64_t ms = 1000;
    for (unsigned i = 1; i < failures && ms < 3600 * 1000; i++)
        ms *= 2;
    return ms > 3600 * 1000 ? 3600 * 1000 : ms;
}

int sb_outbox_enqueue(sb_tx *tx, int64_t channel_id, int64_t message_id, const char *body)
{
    char url[2048] = "";
    sb_stmt *s = sb_tx_query(tx, "SELECT callback_url FROM channel WHERE id = ?", "i", channel_id);
    if (s == NULL)
        return SB_EIO;
    if (sb_stmt_step(s) == 1 && sb_stmt_text(s, 0) != NULL)
        snprintf(url, sizeof url, "%s", sb_stmt_text(s, 0));
    sb_stmt_end(s);
    int64_t now = sb_tx_now(tx);
    if (url[0] == '\0') {
        return sb_tx_exec(tx,
                          "UPDATE message SET delivery_status = 'failed', "
                          "delivery_error = 'the channel has no callback_url' WHERE id = ?",
                          "i", message_id);
    }
    return sb_tx_exec(tx,
                      "INSERT INTO outbox (message_id, channel_id, url, body, status, attempts, next_at, "
                      "created_at, updated_at) VALUES (?, ?, ?, ?, 'pending', 0, ?, ?, ?)",
                      "iittiii", message_id, channel_id, url, body, now, now, now);
}

int sb_outbox_enqueue_webhook(sb_tx *tx, int64_t channel_id, const char *url, const char *body)
{
    int64_t now = sb_tx_now(tx);
    return sb_tx_exec(tx,
                      "INSERT INTO outbox (kind, channel_id, url, body, status, attempts, next_at, created_at, "
                      "updated_at) VALUES ('webhook', ?, ?, ?, 'pending', 0, ?, ?, ?)",
                      "ittiii", channel_id, url, body, now, now, now);
}

static void check_multi(sb_outbox *ob);
static void scan(sb_outbox *ob);

static void on_poll(uv_poll_t *h, int status, int events)
{
    poll_ctx *pc = h->data;
    sb_outbox *ob = pc->ob;
    int flags = 0;
    if (status < 0)
        flags = CURL_CSELECT_ERR;
    if (events & UV_READABLE)
        flags |= CURL_CSELECT_IN;
    if (events & UV_WRITABLE)
        flags |= CURL_CSELECT_OUT;
    int running = 0;
    curl_multi_socket_action(ob->multi, pc->fd, flags, &running);
    check_multi(ob);
}

static void handle_closed(uv_handle_t *h)
{
    sb_outbox *ob = h->data;
    if (h->type == UV_POLL) {
        poll_ctx *pc = h->data;
        ob = pc->ob;
        free(pc);
    }
    ob->open_handles--;
    if (ob->closing && ob->open_handles == 0 && ob->close_cb != NULL)
        ob->close_cb(ob->close_arg);
}

static int socket_cb(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
    sb_outbox *ob = userp;
    poll_ctx *pc = socketp;
    if (what == CURL_POLL_REMOVE) {
        if (pc != NULL) {
            uv_poll_stop(&pc->poll);
            if (ob->multi != NULL)
                curl_multi_assign(ob->multi, fd, NULL);
            uv_close((uv_handle_t *)&pc->poll, handle_closed);
        }
        return 0;
    }
    if (pc == NULL) {
        pc = sb_xcalloc(1, sizeof *pc);
        pc->ob = ob;
        pc->fd = fd;
        if (uv_poll_init_socket(ob->app->loop, &pc->poll, fd) != 0) {
            free(pc);
            return -1;
        }
        pc->poll.data = pc;
        ob->open_handles++;
        curl_multi_assign(ob->multi, fd, pc);
    }
    int events = 0;
    if (what & CURL_POLL_IN)
        events |= UV_READABLE;
    if (what & CURL_POLL_OUT)
        events |= UV_WRITABLE;
    uv_poll_start(&pc->poll, events, on_poll);
    return 0;
}

static void on_curl_timeout(uv_timer_t *t)
{
    sb_outbox *ob = t->data;
    int running = 0;
    curl_multi_socket_action(ob->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    check_multi(ob);
}

static int timer_cb(CURLM *multi, long timeout_ms, void *userp)
{
    sb_outbox *ob = userp;
    if (timeout_ms < 0)
        uv_timer_stop(&ob->curl_timer);
    else /* 0 means "now": the loop calls us back on its next turn */
        uv_timer_start(&ob->curl_timer, on_curl_timeout, (uint64_t)timeout_ms, 0);
    return 0;
}

static void on_due(uv_timer_t *t)
{
    scan(t->data);
}

sb_outbox *sb_outbox_new(sb_app *app)
{
    sb_outbox *ob = sb_xcalloc(1, sizeof *ob);
    ob->magic = OUTBOX_MAGIC;
    ob->app = app;
    ob->multi = curl_multi_init();
    curl_multi_setopt(ob->multi, CURLMOPT_SOCKETFUNCTION, socket_cb);
    curl_multi_setopt(ob->multi, CURLMOPT_SOCKETDATA, ob);
    curl_multi_setopt(ob->multi, CURLMOPT_TIMERFUNCTION, timer_cb);
    curl_multi_setopt(ob->multi, CURLMOPT_TIMERDATA, ob);
    curl_multi_setopt(ob->multi, CURLMOPT_MAX_HOST_CONNECTIONS, 16L);
    uv_timer_init(app->loop, &ob->curl_timer);
    ob->curl_timer.data = ob;
    uv_timer_init(app->loop, &ob->due_timer);
    ob->due_timer.data = ob;
    ob->open_handles = 2;
    return ob;
}

unsigned sb_outbox_inflight(const sb_outbox *ob)
{
    return ob->ninflight;
}

static size_t discard_cb(char *p, size_t size, size_t n, void *ud)
{
    transfer *t = ud;
    t->response_len += size * n;
    return size * n;
}

static size_t header_cb(char *p, size_t size, size_t n, void *ud)
{
    transfer *t = ud;
    size_t len = size * n;
    if (len > 12 && strncasecmp(p, "Retry-After:", 12) == 0) {
        char buf[32];
        size_t l = len - 12 < sizeof buf - 1 ? len - 12 : sizeof buf - 1;
        memcpy(buf, p + 12, l);
        buf[l] = '\0';
        long v = strtol(buf, NULL, 10);
        if (v > 0 && v < 86400)
            t->retry_after_s = v;
    }
    return len;
}

static void transfer_free(transfer *t)
{
    curl_slist_free_all(t->headers);
    curl_easy_cleanup(t->easy);
    free(t->url);
    free(t->body);
    free(t);
}

static void start_transfer(sb_outbox *ob, transfer *t, const char *secret)
{
    char sig[65];
    sb_hmac_sha256_hex(secret ? secret : "", secret ? strlen(secret) : 0, t->body, strlen(t->body), sig);
    char hdr[128];
    t->headers = curl_slist_append(t->headers, "Content-Type: application/json");
    snprintf(hdr, sizeof hdr, "X-Switchboard-Signature: sha256=%s", sig);
    t->headers = curl_slist_append(t->headers, hdr);
    snprintf(hdr, sizeof hdr, "X-Switchboard-Delivery: %lld", (long long)t->id);
    t->headers = curl_slist_append(t->headers, hdr);
    snprintf(hdr, sizeof hdr, "X-Switchboard-Attempt: %u", t->attempts + 1);
    t->headers = curl_slist_append(t->headers, hdr);
    t->headers = curl_slist_append(t->headers, "Expect:");
    t->easy = curl_easy_init();
    curl_easy_setopt(t->easy, CURLOPT_URL, t->url);
    curl_easy_setopt(t->easy, CURLOPT_POSTFIELDS, t->body);
    curl_easy_setopt(t->easy, CURLOPT_POSTFIELDSIZE, (long)strlen(t->body));
    curl_easy_setopt(t->easy, CURLOPT_HTTPHEADER, t->headers);
    curl_easy_setopt(t->easy, CURLOPT_USERAGENT, "Switchboard/" SB_VERSION);
    curl_easy_setopt(t->easy, CURLOPT_TIMEOUT_MS, (long)ob->app->cfg.outbox_timeout_ms);
    curl_easy_setopt(t->easy, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
    curl_easy_setopt(t->easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(t->easy, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(t->easy, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(t->easy, CURLOPT_WRITEFUNCTION, discard_cb);
    curl_easy_setopt(t->easy, CURLOPT_WRITEDATA, t);
    curl_easy_setopt(t->easy, CURLOPT_HEADERFUNCTION, header_cb);
    curl_easy_setopt(t->easy, CURLOPT_HEADERDATA, t);
    curl_easy_setopt(t->easy, CURLOPT_ERRORBUFFER, t->error);
    curl_easy_setopt(t->easy, CURLOPT_PRIVATE, t);
    t->next = ob->inflight;
    ob->inflight = t;
    ob->ninflight++;
    curl_multi_add_handle(ob->multi, t->easy);
}

/* ---- scanning for due rows ---- */

typedef struct scan_row {
    int64_t id, message_id;
    unsigned attempts;
    char *url, *body, *secret;
} scan_row;

typedef struct scan_op {
    sb_outbox *ob;
    scan_row rows[SCAN_BATCH];
    size_t n;
    int64_t next_due; /* earliest future next_at, 0 if none */
    int64_t skip[MAX_INFLIGHT];
    size_t nskip;
} scan_op;

static int scan_run(sb_tx *tx, void *arg)
{
    scan_op *so = arg;
    int64_t now = sb_tx_now(tx);
    sb_stmt *s = sb_tx_query(tx,
                             "SELECT o.id, o.message_id, o.attempts, o.url, o.body, CASE WHEN o.kind = 'webhook' "
                             "THEN (SELECT value FROM setting WHERE key = 'webhook_secret') ELSE c.secret END "
                             "FROM outbox o "
                             "JOIN channel c ON c.id = o.channel_id WHERE o.status = 'pending' AND o.next_at <= ? "
                             "ORDER BY o.next_at, o.id LIMIT ?",
                             "ii", now, (int64_t)(SCAN_BATCH + MAX_INFLIGHT));
    if (s == NULL)
        return SB_EIO;
    int rc;
    while ((rc = sb_stmt_step(s)) == 1 && so->n < SCAN_BATCH) {
        int64_t id = sb_stmt_int(s, 0);
        bool busy = false;
        for (size_t i = 0; i < so->nskip; i++)
            if (so->skip[i] == id)
                busy = true;
        if (busy)
            continue;
        scan_row *r = &so->rows[so->n++];
        r->id = id;
        r->message_id = sb_stmt_int(s, 1);
        r->attempts = (unsigned)sb_stmt_int(s, 2);
        r->url = sb_xstrdup(sb_stmt_text(s, 3));
        r->body = sb_xstrdup(sb_stmt_text(s, 4));
        r->secret = sb_stmt_text(s, 5) ? sb_xstrdup(sb_stmt_text(s, 5)) : NULL;
    }
    sb_stmt_end(s);
    if (rc < 0)
        return rc;
    int64_t due = 0;
    rc = sb_tx_int(tx, &due, "SELECT MIN(next_at) FROM outbox WHERE status = 'pending' AND next_at > ?", "i", now);
    if (rc == 1)
        so->next_due = due;
    return rc < 0 ? rc : 0;
}

static void scan_done(void *arg, int rc)
{
    scan_op *so = arg;
    sb_outbox *ob = so->ob;
    ob->scanning = false;
    for (size_t i = 0; i < so->n; i++) {
        scan_row *r = &so->rows[i];
        if (rc == 0 && !ob->closing && ob->ninflight < MAX_INFLIGHT) {
            transfer *t = sb_xcalloc(1, sizeof *t);
            t->ob = ob;
            t->id = r->id;
            t->message_id = r->message_id;
            t->attempts = r->attempts;
            t->url = r->url;
            t->body = r->body;
            r->url = r->body = NULL;
            start_transfer(ob, t, r->secret);
        } else {
            ob->rescan = true;
        }
        free(r->url);
        free(r->body);
        if (r->secret != NULL)
            memset(r->secret, 0, strlen(r->secret));
        free(r->secret);
    }
    if (!ob->closing && so->next_due > 0) {
        int64_t wait = so->next_due - sb_clock_wall_ms();
        uv_timer_start(&ob->due_timer, on_due, wait > 0 ? (uint64_t)wait : 0, 0);
    }
    free(so);
    if (ob->rescan && !ob->closing && ob->ninflight < MAX_INFLIGHT) {
        ob->rescan = false;
        scan(ob);
    }
}

static void scan(sb_outbox *ob)
{
    if (ob->closing)
        return;
    if (ob->scanning || ob->ninflight >= MAX_INFLIGHT) {
        ob->rescan = true;
        return;
    }
    ob->scanning = true;
    scan_op *so = sb_xcalloc(1, sizeof *so);
    so->ob = ob;
    for (transfer *t = ob->inflight; t != NULL && so->nskip < MAX_INFLIGHT; t = t->next)
        so->skip[so->nskip++] = t->id;
    sb_store_submit(ob->app->store, scan_run, scan_done, so);
}

void sb_outbox_start(sb_outbox *ob)
{
    scan(ob);
}

void sb_outbox_poke(sb_outbox *ob)
{
    scan(ob);
}

/* ---- results ---- */

typedef struct result_op {
    sb_outbox *ob;
    int64_t id, message_id;
    unsigned attempts;
    bool ok, permanent;
    long retry_after_s;
    char error[300];
    json_t *events;
} result_op;

static int result_run(sb_tx *tx, void *arg)
{
    result_op *r = arg;
    int64_t now = sb_tx_now(tx);
    unsigned max = r->ob->app->cfg.outbox_max_attempts;
    int rc;
    const char *mstatus = NULL;
    if (r->ok) {
        rc = sb_tx_exec(tx,
                        "UPDATE outbox SET status = 'sent', attempts = ?, updated_at = ?, last_error = NULL "
                        "WHERE id = ?",
                        "iii", (int64_t)r->attempts, now, r->id);
        mstatus = "sent";
    } else if (r->permanent || r->attempts >= max) {
        rc = sb_tx_exec(tx,
                        "UPDATE outbox SET status = 'failed', attempts = ?, updated_at = ?, last_error = ? "
                        "WHERE id = ?",
                        "iiti", (int64_t)r->attempts, now, r->error, r->id);
        mstatus = "failed";
    } else {
        int64_t wait = sb_outbox_backoff_ms(r->attempts);
        /* Jitter of up to 25% spreads retries of many rows. */
        char rnd[3];
        sb_random_hex(rnd, 1);
        wait += wait * (int64_t)strtol(rnd, NULL, 16) / 1024;
        if (r->retry_after_s > 0 && r->retry_after_s * 1000 > wait)
            wait = r->retry_after_s * 1000;
        rc = sb_tx_exec(tx, "UPDATE outbox SET attempts = ?, next_at = ?, updated_at = ?, last_error = ? WHERE id = ?",
                        "iiiti", (int64_t)r->attempts, now + wait, now, r->error, r->id);
    }
    if (rc != 0 || mstatus == NULL || r->message_id == 0)
        return rc;
    rc = sb_tx_exec(tx, "UPDATE message SET delivery_status = ?, delivery_error = ?, updated_at = ? WHERE id = ?",
                    "ttii", mstatus, r->ok ? NULL : r->error, now, r->message_id);
    if (rc != 0)
        return rc;
    int64_t tid = 0;
    if (sb_tx_int(tx, &tid, "SELECT ticket_id FROM message WHERE id = ?", "i", r->message_id) == 1)
        rc = sb_event_log(tx, (sb_actor){"system", 0}, "ticket", tid, r->ok ? "message.delivered" : "message.failed",
                          json_pack("{s:I,s:s}", "message_id", (json_int_t)r->message_id, "error", r->error));
    sb_emit(r->events, "message.updated", sb_message_json(tx, r->message_id));
    return rc;
}

static void result_done(void *arg, int rc)
{
    result_op *r = arg;
    if (rc == 0) {
        if (r->ok)
            r->ob->app->metrics.outbound_sent++;
        else if (r->permanent || r->attempts >= r->ob->app->cfg.outbox_max_attempts)
            r->ob->app->metrics.outbound_failed++;
        else
            r->ob->app->metrics.outbound_retries++;
        sb_app_publish(r->ob->app, r->events);
    }
    json_decref(r->events);
    sb_outbox *ob = r->ob;
    free(r);
    scan(ob);
}

static void finish_transfer(sb_outbox *ob, transfer *t)
{
    result_op *r = sb_xcalloc(1, sizeof *r);
    r->ob = ob;
    r->id = t->id;
    r->message_id = t->message_id;
    r->attempts = t->attempts + 1;
    r->retry_after_s = t->retry_after_s;
    r->events = json_array();
    if (t->result != CURLE_OK) {
        snprintf(r->error, sizeof r->error, "%s", t->error[0] ? t->error : curl_easy_strerror(t->result));
    } else if (t->status >= 200 && t->status < 300) {
        r->ok = true;
    } else {
        snprintf(r->error, sizeof r->error, "HTTP %ld from the callback URL", t->status);
        /* The receiver rejected the content itself: retrying cannot help. */
        r->permanent = t->status >= 400 && t->status < 500 && t->status != 408 && t->status != 425 && t->status != 429;
    }
    sb_log(r->ok ? SB_DEBUG : SB_WARN, "outbox", "delivery=%lld message=%lld attempt=%u status=%ld result=%s",
           (long long)t->id, (long long)t->message_id, r->attempts, t->status, r->ok ? "sent" : r->error);
    sb_store_submit(ob->app->store, result_run, result_done, r);
}

static void check_multi(sb_outbox *ob)
{
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read(ob->multi, &left)) != NULL) {
        if (msg->msg != CURLMSG_DONE)
            continue;
        transfer *t = NULL;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&t);
        t->result = msg->data.result;
        curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &t->status);
        curl_multi_remove_handle(ob->multi, t->easy);
        for (transfer **pp = &ob->inflight; *pp != NULL; pp = &(*pp)->next) {
            if (*pp == t) {
                *pp = t->next;
                break;
            }
        }
        ob->ninflight--;
        if (!ob->closing)
            finish_transfer(ob, t);
        transfer_free(t);
    }
}

void sb_outbox_close(sb_outbox *ob, void (*cb)(void *), void *arg)
{
    ob->closing = true;
    ob->close_cb = cb;
    ob->close_arg = arg;
    while (ob->inflight != NULL) {
        transfer *t = ob->inflight;
        ob->inflight = t->next;
        curl_multi_remove_handle(ob->multi, t->easy);
        transfer_free(t);
    }
    ob->ninflight = 0;
    /* Cleanup closes cached connections; their poll handles close with them. */
    curl_multi_cleanup(ob->multi);
    ob->multi = NULL;
    uv_timer_stop(&ob->curl_timer);
    uv_timer_stop(&ob->due_timer);
    uv_close((uv_handle_t *)&ob->curl_timer, handle_closed);
    uv_close((uv_handle_t *)&ob->due_timer, handle_closed);
}

void sb_outbox_free(sb_outbox *ob)
{
    if (ob == NULL)
        return;
    if (ob->multi != NULL)
        curl_multi_cleanup(ob->multi);
    ob->magic = 0;
    free(ob);
}
