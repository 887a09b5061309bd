/* server.c - HTTP/1.1 server on libuv: connections, request parsing with
 * http_parser, limits, responses and Server-Sent Events streaming.
 *
 * A connection handles one request at a time. Bytes that arrive while a
 * request is with its handler are buffered unparsed (reading stops once
 * INBUF_CAP is buffered) and parsed after the response has been written.
 * Connection objects are freed only from uv_close callbacks. */
#include "http/http_internal.h"

#include <limits.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "base/clock.h"
#include "base/log.h"

#define INBUF_CAP (64 * 1024)
#define LINGER_MS 2000
#define LISTEN_BACKLOG 4096

static _Atomic uint64_t g_next_req_id; /* process-wide, any loop */

static void conn_run(sb_http_conn *c, const char *p, size_t len, bool from_in);
static void conn_fail(sb_http_conn *c, int status);
static void conn_update_reading(sb_http_conn *c);
static void conn_schedule_resume(sb_http_conn *c);
static void srv_handle_closed(sb_http_server *srv);

/* ---- small output helpers (the hot path avoids printf) ---- */

static void buf_lit(sb_buf *b, const char *z)
{
    sb_buf_append(b, z, strlen(z));
}

static void buf_u64(sb_buf *b, uint64_t v)
{
    char tmp[24];
    size_t n = sizeof tmp;
    do {
        tmp[--n] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    sb_buf_append(b, tmp + n, sizeof tmp - n);
}

static const char *srv_date(sb_http_server *srv)
{
    static const char days[7][4] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char months[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                       "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    int64_t sec = sb_clock_wall_ms() / 1000;
    if (sec != srv->date_sec) {
        time_t t = (time_t)sec;
        struct tm tm;
        gmtime_r(&t, &tm);
        snprintf(srv->date, sizeof srv->date, "%s, %02d %s %04d %02d:%02d:%02d GMT",
                 days[tm.tm_wday % 7], tm.tm_mday, months[tm.tm_mon % 12], tm.tm_year + 1900,
                 tm.tm_hour, tm.tm_min, tm.tm_sec);
        srv->date_sec = sec;
    }
    return srv->date;
}

/* Status line, Date, optional Content-Type, the caller's headers. */
static void build_head_start(sb_http_conn *c, int status, const char *content_type,
                             const sb_http_out_hdr *extra)
{
    sb_buf *o = &c->out;
    sb_buf_reset(o);
    sb_buf_reserve(o, 256);
    buf_lit(o, "HTTP/1.1 ");
    buf_u64(o, (uint64_t)(status >= 100 && status <= 999 ? status : 500));
    buf_lit(o, " ");
    buf_lit(o, sb_http_status_text(status));
    buf_lit(o, "\r\nDate: ");
    buf_lit(o, srv_date(c->srv));
    buf_lit(o, "\r\n");
    if (content_type != NULL && content_type[0] != '\0' && strpbrk(content_type, "\r\n") == NULL) {
        buf_lit(o, "Content-Type: ");
        buf_lit(o, content_type);
        buf_lit(o, "\r\n");
    }
    for (const sb_http_out_hdr *h = extra; h != NULL; h = h->next) {
        buf_lit(o, h->name);
        buf_lit(o, ": ");
        buf_lit(o, h->value);
        buf_lit(o, "\r\n");
    }
}

/* ---- writing ---- */

typedef struct write_req {
    uv_write_t req;
    sb_http_conn *conn;
    size_t len;
    char data[];
} write_req;

static void write_cb(uv_write_t *r, int status)
{
    write_req *wr = (write_req *)r;
    sb_http_conn *c = wr->conn;
    SB_ASSERT(c->magic == SB_HTTP_CONN_MAGIC);
    c->writes_pending--;
    c->write_bytes -= wr->len;
    free(wr);
    if (status < 0) {
        if (c->state != SB_CONN_CLOSING) {
            sb_log(SB_DEBUG, "http", "conn=%llu write failed: %s", (unsigned long long)c->id,
                   uv_strerror(status));
            sb_http_conn_close(c);
        }
        return;
    }
    if (c->writes_pending == 0 && (c->state == SB_CONN_READING || c->state == SB_CONN_WS) &&
        c->in.len > 0)
        conn_schedule_resume(c);
    conn_update_reading(c);
}

void sb_http_conn_write(sb_http_conn *c, const uv_buf_t *bufs, unsigned nbufs)
{
    if (c->state == SB_CONN_CLOSING || c->state == SB_CONN_LINGER)
        return;
    if (c->fake) {
        for (unsigned i = 0; i < nbufs; i++) {
            if (c->sink != NULL && bufs[i].len > 0)
                c->sink(c->sink_ctx, bufs[i].base, bufs[i].len);
        }
        return;
    }
    size_t total = 0;
    for (unsigned i = 0; i < nbufs; i++)
        total += bufs[i].len;
    if (total == 0)
        return;
    size_t skip = 0;
    if (c->writes_pending == 0) {
        int n = uv_try_write((uv_stream_t *)&c->tcp, bufs, nbufs);
        if (n >= 0) {
            skip = (size_t)n;
        } else if (n != UV_EAGAIN) {
            sb_log(SB_DEBUG, "http", "conn=%llu write failed: %s", (unsigned long long)c->id,
                   uv_strerror(n));
            sb_http_conn_close(c);
            return;
        }
        if (skip == total)
            return;
    }
    size_t rem = total - skip;
    write_req *wr = sb_xmalloc(sizeof *wr + rem);
    wr->conn = c;
    wr->len = rem;
    size_t off = 0;
    for (unsigned i = 0; i < nbufs; i++) {
        size_t len = bufs[i].len;
        const char *p = bufs[i].base;
        if (skip >= len) {
            skip -= len;
            continue;
        }
        memcpy(wr->data + off, p + skip, len - skip);
        off += len - skip;
        skip = 0;
    }
    uv_buf_t b = uv_buf_init(wr->data, (unsigned)rem);
    int rc = uv_write(&wr->req, (uv_stream_t *)&c->tcp, &b, 1, write_cb);
    if (rc < 0) {
        free(wr);
        sb_http_conn_close(c);
        return;
    }
    c->writes_pending++;
    c->write_bytes += rem;
}

/* ---- connection lifetime ---- */

static void resume_unlink(sb_http_server *srv, sb_http_conn *c)
{
    if (!c->on_resume_list)
        return;
    for (sb_http_conn **pp = &srv->resume_head; *pp != NULL; pp = &(*pp)->resume_next) {
        if (*pp == c) {
            *pp = c->resume_next;
            break;
        }
    }
    c->on_resume_list = false;
    c->resume_next = NULL;
}

/* Detached stream: the peer left before stream_begin could write anything.
 * on_close must not run inside stream_begin, so it is deferred. */
typedef struct stream_defer {
    uv_timer_t timer;
    sb_http_req *req;
} stream_defer;

static void stream_defer_closed(uv_handle_t *h)
{
    free(h->data);
}

static void stream_defer_cb(uv_timer_t *t)
{
    stream_defer *d = t->data;
    sb_http_req *req = d->req;
    if (!req->stream_ended && req->stream_on_close != NULL) {
        req->in_on_close = true;
        req->stream_on_close(req, req->stream_ud);
    }
    sb_http_req_free(req);
    uv_close((uv_handle_t *)&d->timer, stream_defer_closed);
}

static void conn_finalize(sb_http_conn *c)
{
    sb_http_server *srv = c->srv;
    resume_unlink(srv, c);
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        srv->conns = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    srv->nconns--;

    sb_http_req *req = c->req;
    c->req = NULL;
    if (req != NULL) {
        req->conn = NULL;
        if (req->state == SB_REQ_STREAMING) {
            if (req->stream_on_close != NULL) {
                req->in_on_close = true;
                req->stream_on_close(req, req->stream_ud);
            }
            sb_http_req_free(req);
        } else if (req->state == SB_REQ_PARSING) {
            sb_http_req_free(req);
        }
        /* SB_REQ_HANDLING: the handler still owns it; respond frees it. */
    }
    if (c->ws != NULL) {
        sb_ws *ws = c->ws;
        c->ws = NULL;
        sb_ws_conn_gone(ws);
    }
    sb_log(SB_DEBUG, "http", "conn=%llu closed", (unsigned long long)c->id);
    sb_http_req_free(c->spare);
    sb_buf_free(&c->in);
    sb_buf_free(&c->out);
    c->magic = SB_HTTP_DEAD_MAGIC;
    free(c);
    srv_handle_closed(srv);
}

static void conn_close_cb(uv_handle_t *h)
{
    sb_http_conn *c = h->data;
    SB_ASSERT(c->magic == SB_HTTP_CONN_MAGIC);
    if (--c->handles_open == 0)
        conn_finalize(c);
}

void sb_http_conn_close(sb_http_conn *c)
{
    if (c->state == SB_CONN_CLOSING)
        return;
    c->state = SB_CONN_CLOSING;
    c->reading = false;
    c->handles_open = c->fake ? 1 : 2;
    uv_close((uv_handle_t *)&c->timer, conn_close_cb);
    if (!c->fake)
        uv_close((uv_handle_t *)&c->tcp, conn_close_cb);
}

static void shutdown_cb(uv_shutdown_t *r, int status)
{
    sb_http_conn *c = r->data;
    SB_ASSERT(c->magic == SB_HTTP_CONN_MAGIC);
    if (status < 0 && c->state != SB_CONN_CLOSING)
        sb_http_conn_close(c);
}

/* Closing right away could turn unread input into a RST that destroys the
 * response we just queued (e.g. a 413 while the client is still sending),
 * so send FIN after the writes and drain input for a little while. */
void sb_http_conn_close_graceful(sb_http_conn *c)
{
    if (c->state == SB_CONN_CLOSING || c->state == SB_CONN_LINGER)
        return;
    if (c->fake) {
        sb_http_conn_close(c);
        return;
    }
    c->state = SB_CONN_LINGER;
    sb_buf_reset(&c->in);
    c->shutdown_req.data = c;
    int rc = uv_shutdown(&c->shutdown_req, (uv_stream_t *)&c->tcp, shutdown_cb);
    if (rc < 0) {
        sb_http_conn_close(c);
        return;
    }
    sb_http_conn_arm_timer(c, LINGER_MS);
    conn_update_reading(c);
}

static void timer_cb(uv_timer_t *t)
{
    sb_http_conn *c = t->data;
    SB_ASSERT(c->magic == SB_HTTP_CONN_MAGIC);
    switch (c->state) {
    case SB_CONN_READING:
        if (c->msg_in_progress) {
            sb_log(SB_INFO, "http", "conn=%llu ip=%s request timeout", (unsigned long long)c->id,
                   c->remote_ip);
            conn_fail(c, 408);
        } else {
            sb_log(SB_DEBUG, "http", "conn=%llu idle timeout", (unsigned long long)c->id);
            sb_http_conn_close(c);
        }
        break;
    case SB_CONN_WS:
        if (c->ws != NULL)
            sb_ws_on_timer(c->ws);
        break;
    case SB_CONN_LINGER:
        sb_http_conn_close(c);
        break;
    case SB_CONN_HANDLING:
    case SB_CONN_CLOSING:
        break;
    }
}

void sb_http_conn_arm_timer(sb_http_conn *c, uint64_t ms)
{
    if (c->state == SB_CONN_CLOSING)
        return;
    uv_timer_start(&c->timer, timer_cb, ms, 0);
}

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    sb_http_conn *c = h->data;
    SB_UNUSED(suggested);
    SB_ASSERT(c->magic == SB_HTTP_CONN_MAGIC);
    buf->base = c->srv->read_buf;
    buf->len = sizeof c->srv->read_buf;
}

static void conn_on_data(sb_http_conn *c, const char *p, size_t len)
{
    if (c->state == SB_CONN_CLOSING || c->state == SB_CONN_LINGER)
        return;
    if (c->in.len == 0) {
        conn_run(c, p, len, false);
    } else {
        sb_buf_append(&c->in, p, len);
        conn_run(c, c->in.p, c->in.len, true);
    }
}

static void read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    sb_http_conn *c = s->data;
    SB_ASSERT(c->magic == SB_HTTP_CONN_MAGIC);
    if (nread > 0) {
        conn_on_data(c, buf->base, (size_t)nread);
    } else if (nread < 0) {
        if (c->state != SB_CONN_LINGER)
            sb_log(SB_DEBUG, "http", "conn=%llu read: %s", (unsigned long long)c->id,
                   uv_strerror((int)nread));
        sb_http_conn_close(c);
    }
}

/* Reading stays on while a request is handled (to notice a peer that goes
 * away) until INBUF_CAP unparsed bytes pile up. */
static void conn_update_reading(sb_http_conn *c)
{
    if (c->fake || c->state == SB_CONN_CLOSING)
        return;
    bool want = c->state == SB_CONN_LINGER || c->in.len < INBUF_CAP;
    if (want && !c->reading) {
        if (uv_read_start((uv_stream_t *)&c->tcp, alloc_cb, read_cb) == 0)
            c->reading = true;
    } else if (!want && c->reading) {
        uv_read_stop((uv_stream_t *)&c->tcp);
        c->reading = false;
    }
}

static void resume_idle_cb(uv_idle_t *h)
{
    sb_http_server *srv = h->data;
    SB_ASSERT(srv->magic == SB_HTTP_SERVER_MAGIC);
    while (srv->resume_head != NULL) {
        sb_http_conn *c = srv->resume_head;
        srv->resume_head = c->resume_next;
        c->resume_next = NULL;
        c->on_resume_list = false;
        if ((c->state == SB_CONN_READING || c->state == SB_CONN_WS) && c->writes_pending == 0 &&
            c->in.len > 0)
            conn_run(c, c->in.p, c->in.len, true);
    }
    uv_idle_stop(h);
    srv->resume_active = false;
}

/* Buffered bytes are parsed from the loop, not from inside sb_http_respond():
 * a handler answering request A must not find itself running request B. */
static void conn_schedule_resume(sb_http_conn *c)
{
    sb_http_server *srv = c->srv;
    if (c->on_resume_list || srv->closing)
        return;
    c->on_resume_list = true;
    c->resume_next = srv->resume_head;
    srv->resume_head = c;
    if (!srv->resume_active) {
        uv_idle_start(&srv->resume_idle, resume_idle_cb);
        srv->resume_active = true;
    }
}

/* ---- parser callbacks ---- */

static int hdr_bytes_add(sb_http_conn *c, size_t n)
{
    c->hdr_bytes += n;
    if (c->hdr_bytes > c->srv->limits.max_header_bytes) {
        c->err_status = 431;
        return -1;
    }
    return 0;
}

static int on_message_begin(http_parser *p)
{
    sb_http_conn *c = p->data;
    SB_ASSERT(c->req == NULL || c->req->state == SB_REQ_PARSING);
    if (c->req == NULL) {
        if (c->spare != NULL) {
            c->req = c->spare;
            c->spare = NULL;
        } else {
            c->req = sb_http_req_new();
        }
    }
    c->req->conn = c;
    c->msg_in_progress = true;
    c->hdr_bytes = 16; /* method, version, CRLFs */
    c->err_status = 0;
    sb_http_conn_arm_timer(c, c->srv->limits.header_timeout_ms);
    return 0;
}

static int on_url(http_parser *p, const char *at, size_t len)
{
    sb_http_conn *c = p->data;
    if (hdr_bytes_add(c, len) != 0)
        return -1;
    sb_buf_append(&c->req->raw, at, len);
    c->req->url_len += len;
    return 0;
}

static int on_header_field(http_parser *p, const char *at, size_t len)
{
    sb_http_conn *c = p->data;
    sb_http_req *req = c->req;
    if (hdr_bytes_add(c, len) != 0)
        return -1;
    if (req->raw_state != 1) {
        if (req->nhdrs >= c->srv->limits.max_headers) {
            c->err_status = 431;
            return -1;
        }
        sb_buf_append(&req->raw, "", 1); /* ends the url or previous value */
        if (req->nhdrs == req->hdrs_cap) {
            req->hdrs_cap = req->hdrs_cap ? req->hdrs_cap * 2 : 16;
            req->hdrs = sb_xrealloc(req->hdrs, req->hdrs_cap * sizeof *req->hdrs);
        }
        sb_http_hdr *h = &req->hdrs[req->nhdrs++];
        h->name_off = (uint32_t)req->raw.len;
        h->name_len = 0;
        h->value_off = 0;
        h->value_len = 0;
        req->raw_state = 1;
        c->hdr_bytes += 4; /* ": " and CRLF */
    }
    sb_buf_append(&req->raw, at, len);
    req->hdrs[req->nhdrs - 1].name_len += (uint32_t)len;
    return 0;
}

static int on_header_value(http_parser *p, const char *at, size_t len)
{
    sb_http_conn *c = p->data;
    sb_http_req *req = c->req;
    if (hdr_bytes_add(c, len) != 0)
        return -1;
    if (req->raw_state != 2) {
        SB_ASSERT(req->raw_state == 1);
        sb_buf_append(&req->raw, "", 1);
        req->hdrs[req->nhdrs - 1].value_off = (uint32_t)req->raw.len;
        req->raw_state = 2;
    }
    sb_buf_append(&req->raw, at, len);
    req->hdrs[req->nhdrs - 1].value_len += (uint32_t)len;
    return 0;
}

static int on_headers_complete(http_parser *p)
{
    sb_http_conn *c = p->data;
    sb_http_req *req = c->req;
    if (req->raw_state == 1) { /* name without a value callback */
        sb_buf_append(&req->raw, "", 1);
        req->hdrs[req->nhdrs - 1].value_off = (uint32_t)req->raw.len;
    }
    sb_buf_append(&req->raw, "", 1);
    req->raw_state = 3;
    for (size_t i = 0; i < req->nhdrs; i++) {
        sb_http_hdr *h = &req->hdrs[i];
        char *v = req->raw.p + h->value_off;
        while (h->value_len > 0 && (v[h->value_len - 1] == ' ' || v[h->value_len - 1] == '\t'))
            v[--h->value_len] = '\0';
    }
    sb_http_req_finish_headers(req);
    req->method = p->method;
    req->http_major = p->http_major;
    req->http_minor = p->http_minor;
    /* RFC 9112 3.2: an HTTP/1.1 request without Host is answered with 400. */
    if (p->http_major == 1 && p->http_minor >= 1 && sb_http_req_header(req, "host") == NULL) {
        c->err_status = 400;
        return -1;
    }

    bool chunked = (p->flags & F_CHUNKED) != 0;
    if (!chunked && p->content_length != ULLONG_MAX) {
        if (p->content_length > c->srv->limits.max_body_bytes) {
            c->err_status = 413;
            return -1;
        }
        if (p->content_length > 0)
            sb_buf_reserve(&req->body, (size_t)p->content_length);
    }
    if (p->http_major == 1 && p->http_minor >= 1 && (chunked || (p->content_length != ULLONG_MAX &&
                                                               p->content_length > 0))) {
        const char *expect = sb_http_req_header(req, "expect");
        if (expect != NULL && strcasecmp(expect, "100-continue") == 0) {
            static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
            uv_buf_t b = uv_buf_init((char *)cont, sizeof cont - 1);
            sb_http_conn_write(c, &b, 1);
        }
    }
    return 0;
}

static int on_body(http_parser *p, const char *at, size_t len)
{
    sb_http_conn *c = p->data;
    sb_http_req *req = c->req;
    if (req->body.len + len > c->srv->limits.max_body_bytes) {
        c->err_status = 413;
        return -1;
    }
    sb_buf_append(&req->body, at, len);
    return 0;
}

static int on_message_complete(http_parser *p)
{
    sb_http_conn *c = p->data;
    c->req->keep_alive = http_should_keep_alive(p) != 0;
    c->req->upgrade = p->upgrade != 0;
    c->msg_in_progress = false;
    /* Stop here: the handler runs outside the parser, and pipelined
     * requests wait for this one's response. */
    http_parser_pause(p, 1);
    return 0;
}

static const http_parser_settings g_settings = {
    .on_message_begin = on_message_begin,
    .on_url = on_url,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

/* ---- dispatch ---- */

static void conn_dispatch(sb_http_conn *c)
{
    sb_http_server *srv = c->srv;
    sb_http_req *req = c->req;
    req->state = SB_REQ_HANDLING;
    req->id = atomic_fetch_add(&g_next_req_id, 1) + 1;
    req->loop = srv->loop;
    memcpy(req->remote_ip, c->remote_ip, sizeof req->remote_ip);
    c->state = SB_CONN_HANDLING;
    uv_timer_stop(&c->timer);
    srv->requests_total++;
    srv->handler(req, srv->ud);
}

/* Parses from p; returns bytes consumed. Runs the handler when a request is
 * complete. */
static size_t conn_parse(sb_http_conn *c, const char *p, size_t len)
{
    size_t n = http_parser_execute(&c->parser, &g_settings, p, len);
    enum http_errno e = HTTP_PARSER_ERRNO(&c->parser);
    if (c->err_status != 0) {
        conn_fail(c, c->err_status);
        return len;
    }
    if (e == HPE_PAUSED) {
        http_parser_pause(&c->parser, 0);
        conn_dispatch(c);
        return n;
    }
    if (e != HPE_OK || n < len) {
        conn_fail(c, e == HPE_HEADER_OVERFLOW ? 431 : 400);
        return len;
    }
    return n;
}

static void conn_run(sb_http_conn *c, const char *p, size_t len, bool from_in)
{
    size_t off = 0;
    c->in_run = true;
    while (off < len) {
        if (c->state == SB_CONN_READING && c->writes_pending == 0) {
            off += conn_parse(c, p + off, len - off);
        } else if (c->state == SB_CONN_WS && c->ws != NULL) {
            sb_ws_feed(c->ws, p + off, len - off);
            off = len;
        } else if (c->state == SB_CONN_LINGER || c->state == SB_CONN_CLOSING) {
            off = len;
        } else {
            break;
        }
    }
    c->in_run = false;
    if (from_in)
        sb_buf_consume(&c->in, off);
    else if (off < len && c->state != SB_CONN_CLOSING && c->state != SB_CONN_LINGER)
        sb_buf_append(&c->in, p + off, len - off);
    conn_update_reading(c);
}

void sb_http_conn_req_done(sb_http_conn *c)
{
    sb_http_req *req = c->req;
    c->req = NULL;
    if (c->spare == NULL) {
        sb_http_req_reset(req);
        c->spare = req;
    } else {
        sb_http_req_free(req);
    }
    if (c->state == SB_CONN_CLOSING || c->state == SB_CONN_LINGER)
        return;
    if (c->state == SB_CONN_HANDLING)
        c->state = SB_CONN_READING;
    if (c->close_after_write) {
        sb_http_conn_close_graceful(c);
        return;
    }
    if (c->state == SB_CONN_READING)
        sb_http_conn_arm_timer(c, c->srv->draining ? LINGER_MS : c->srv->limits.idle_timeout_ms);
    if (!c->in_run && c->in.len > 0)
        conn_schedule_resume(c);
    conn_update_reading(c);
}

/* ---- error responses generated by the server itself ---- */

static void error_code_for(int status, const char **code, const char **message)
{
    switch (status) {
    case 408: *code = "request_timeout"; *message = "request not received in time"; break;
    case 413: *code = "payload_too_large"; *message = "request body too large"; break;
    case 431: *code = "headers_too_large"; *message = "request headers too large"; break;
    case 503: *code = "overloaded"; *message = "too many connections"; break;
    default: *code = "bad_request"; *message = "malformed request"; break;
    }
}

static char *error_json(const char *code, const char *message, size_t *len)
{
    json_t *j = json_pack("{s:{s:s,s:s}}", "error", "code", code, "message", message);
    if (j == NULL)
        j = json_pack("{s:{s:s,s:s}}", "error", "code", "internal", "message", "error");
    char *s = j != NULL ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    if (s == NULL)
        s = sb_xstrdup("{\"error\":{\"code\":\"internal\",\"message\":\"error\"}}");
    *len = strlen(s);
    return s;
}

/* Answers a request the handler never saw, then closes. */
static void conn_fail(sb_http_conn *c, int status)
{
    const char *code, *message;
    error_code_for(status, &code, &message);
    if (status != 503)
        sb_log(SB_INFO, "http", "conn=%llu ip=%s status=%d code=%s", (unsigned long long)c->id,
               c->remote_ip, status, code);
    c->msg_in_progress = false;
    size_t len;
    char *body = error_json(code, message, &len);
    build_head_start(c, status, "application/json", NULL);
    buf_lit(&c->out, "Content-Length: ");
    buf_u64(&c->out, len);
    buf_lit(&c->out, "\r\nConnection: close\r\n");
    if (status == 503)
        buf_lit(&c->out, "Retry-After: 1\r\n");
    buf_lit(&c->out, "\r\n");
    uv_buf_t bufs[2] = {uv_buf_init(c->out.p, (unsigned)c->out.len), uv_buf_init(body, (unsigned)len)};
    sb_http_conn_write(c, bufs, 2);
    free(body);
    if (c->state == SB_CONN_CLOSING)
        return;
    if (c->state == SB_CONN_HANDLING)
        c->state = SB_CONN_READING;
    sb_http_conn_close_graceful(c);
}

/* ---- responses ---- */

static sb_http_req *req_check(sb_http_req *req)
{
    SB_ASSERT(req != NULL && req->magic == SB_HTTP_REQ_MAGIC);
    return req;
}

/* True when the response can go out; otherwise the request is released. */
static bool req_take_conn(sb_http_req *req, sb_http_conn **out)
{
    sb_http_conn *c = req->conn;
    if (c == NULL) {
        sb_http_req_free(req);
        return false;
    }
    SB_ASSERT(c->magic == SB_HTTP_CONN_MAGIC && c->req == req);
    if (c->state == SB_CONN_CLOSING || c->state == SB_CONN_LINGER) {
        c->req = NULL;
        sb_http_req_free(req);
        return false;
    }
    *out = c;
    return true;
}

void sb_http_respond(sb_http_req *req, int status, const char *content_type, const void *body,
                     size_t len)
{
    req_check(req);
    SB_ASSERT(req->state == SB_REQ_HANDLING);
    sb_http_conn *c;
    if (!req_take_conn(req, &c))
        return;
    bool no_body = req->method == HTTP_HEAD || status == 204 || status == 304 || status < 200;
    bool keep = req->keep_alive && !req->upgrade && !c->srv->draining;
    build_head_start(c, status, content_type, req->out_hdrs);
    sb_buf *o = &c->out;
    if (status != 204 && status != 304 && status >= 200) {
        buf_lit(o, "Content-Length: ");
        buf_u64(o, len);
        buf_lit(o, "\r\n");
    }
    buf_lit(o, keep ? "Connection: keep-alive\r\n\r\n" : "Connection: close\r\n\r\n");
    uv_buf_t bufs[2] = {uv_buf_init(o->p, (unsigned)o->len), uv_buf_init((char *)body, (unsigned)len)};
    sb_http_conn_write(c, bufs, !no_body && len > 0 ? 2 : 1);
    c->close_after_write = !keep;
    sb_http_conn_req_done(c);
}

void sb_http_respond_json(sb_http_req *req, int status, json_t *json)
{
    char *s = json != NULL ? json_dumps(json, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
    json_decref(json);
    if (s == NULL) {
        sb_http_respond_error(req, 500, "internal", "response encoding failed");
        return;
    }
    sb_http_respond(req, status, "application/json", s, strlen(s));
    free(s);
}

void sb_http_respond_error(sb_http_req *req, int status, const char *code, const char *fmt, ...)
{
    char message[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(message, sizeof message, fmt, ap);
    va_end(ap);
    size_t len;
    char *body = error_json(code, message, &len);
    sb_http_respond(req, status, "application/json", body, len);
    free(body);
}

/* ---- streaming ---- */

void sb_http_stream_begin(sb_http_req *req, int status, const char *content_type,
                          void (*on_close)(sb_http_req *req, void *ud), void *ud)
{
    req_check(req);
    SB_ASSERT(req->state == SB_REQ_HANDLING);
    req->state = SB_REQ_STREAMING;
    req->stream_on_close = on_close;
    req->stream_ud = ud;
    sb_http_conn *c = req->conn;
    if (c == NULL) {
        stream_defer *d = sb_xmalloc(sizeof *d);
        d->req = req;
        uv_timer_init(req->loop, &d->timer);
        d->timer.data = d;
        uv_timer_start(&d->timer, stream_defer_cb, 0, 0);
        return;
    }
    if (c->state == SB_CONN_CLOSING || c->state == SB_CONN_LINGER)
        return; /* conn_finalize calls on_close */
    req->chunked_stream = req->http_major == 1 && req->http_minor >= 1;
    req->stream_head = req->method == HTTP_HEAD;
    bool keep = req->chunked_stream && req->keep_alive && !req->upgrade && !c->srv->draining;
    req->keep_alive = keep;
    build_head_start(c, status, content_type, req->out_hdrs);
    sb_buf *o = &c->out;
    if (sb_http_req_header(req, "cache-control") == NULL)
        buf_lit(o, "Cache-Control: no-cache\r\n");
    if (req->chunked_stream)
        buf_lit(o, "Transfer-Encoding: chunked\r\n");
    buf_lit(o, keep ? "Connection: keep-alive\r\n\r\n" : "Connection: close\r\n\r\n");
    uv_buf_t b = uv_buf_init(o->p, (unsigned)o->len);
    sb_http_conn_write(c, &b, 1);
}

int sb_http_stream_write(sb_http_req *req, const void *p, size_t len)
{
    req_check(req);
    SB_ASSERT(req->state == SB_REQ_STREAMING);
    sb_http_conn *c = req->conn;
    if (c == NULL || c->state == SB_CONN_CLOSING || c->state == SB_CONN_LINGER)
        return SB_EIO;
    if (len == 0 || req->stream_head)
        return 0;
    if (req->chunked_stream) {
        char size[24];
        int n = snprintf(size, sizeof size, "%zx\r\n", len);
        uv_buf_t bufs[3] = {uv_buf_init(size, (unsigned)n), uv_buf_init((char *)p, (unsigned)len),
                            uv_buf_init((char *)"\r\n", 2)};
        sb_http_conn_write(c, bufs, 3);
    } else {
        uv_buf_t b = uv_buf_init((char *)p, (unsigned)len);
        sb_http_conn_write(c, &b, 1);
    }
    if (c->state == SB_CONN_CLOSING)
        return SB_EIO;
    if (c->write_bytes > c->srv->limits.ws_max_outbuf) {
        sb_log(SB_WARN, "http", "conn=%llu req=%llu stream peer too slow, closing",
               (unsigned long long)c->id, (unsigned long long)req->id);
        sb_http_conn_close(c);
        return SB_EIO;
    }
    return 0;
}

void sb_http_stream_end(sb_http_req *req)
{
    req_check(req);
    if (req->in_on_close)
        return; /* freed after on_close returns */
    SB_ASSERT(req->state == SB_REQ_STREAMING);
    if (req->conn == NULL) {
        req->stream_ended = true; /* the deferred close frees it */
        return;
    }
    sb_http_conn *c;
    if (!req_take_conn(req, &c))
        return;
    if (req->chunked_stream && !req->stream_head) {
        uv_buf_t b = uv_buf_init((char *)"0\r\n\r\n", 5);
        sb_http_conn_write(c, &b, 1);
    }
    c->close_after_write = !req->keep_alive || c->srv->draining;
    sb_http_conn_req_done(c);
}

/* ---- server ---- */

static void srv_handle_closed(sb_http_server *srv)
{
    SB_ASSERT(srv->handles_open > 0);
    if (--srv->handles_open == 0 && srv->closing && srv->close_cb != NULL) {
        void (*cb)(void *) = srv->close_cb;
        srv->close_cb = NULL;
        cb(srv->close_arg);
    }
}

static void srv_handle_close_cb(uv_handle_t *h)
{
    sb_http_server *srv = h->data;
    SB_ASSERT(srv->magic == SB_HTTP_SERVER_MAGIC);
    srv_handle_closed(srv);
}

sb_http_server *sb_http_server_new(uv_loop_t *loop, const sb_http_limits *limits,
                                   sb_http_handler_fn handler, void *ud)
{
    sb_http_server *srv = sb_xcalloc(1, sizeof *srv);
    srv->magic = SB_HTTP_SERVER_MAGIC;
    srv->loop = loop;
    if (limits != NULL)
        srv->limits = *limits;
    else
        sb_http_limits_default(&srv->limits);
    srv->handler = handler;
    srv->ud = ud;
    srv->date_sec = -1;
    uv_idle_init(loop, &srv->resume_idle);
    srv->resume_idle.data = srv;
    srv->handles_open = 1;
    return srv;
}

static sb_http_conn *conn_new(sb_http_server *srv)
{
    sb_http_conn *c = sb_xcalloc(1, sizeof *c);
    c->magic = SB_HTTP_CONN_MAGIC;
    c->srv = srv;
    c->id = ++srv->next_conn_id;
    c->state = SB_CONN_READING;
    sb_buf_init(&c->in);
    sb_buf_init(&c->out);
    http_parser_init(&c->parser, HTTP_REQUEST);
    c->parser.data = c;
    uv_timer_init(srv->loop, &c->timer);
    c->timer.data = c;
    c->next = srv->conns;
    if (srv->conns != NULL)
        srv->conns->prev = c;
    srv->conns = c;
    srv->nconns++;
    srv->handles_open++;
    return c;
}

static void on_connection(uv_stream_t *listener, int status)
{
    sb_http_server *srv = listener->data;
    SB_ASSERT(srv->magic == SB_HTTP_SERVER_MAGIC);
    if (status < 0) {
        sb_log(SB_WARN, "http", "accept: %s", uv_strerror(status));
        return;
    }
    sb_http_conn *c = conn_new(srv);
    uv_tcp_init(srv->loop, &c->tcp);
    c->tcp.data = c;
    int rc = uv_accept(listener, (uv_stream_t *)&c->tcp);
    if (rc < 0) {
        sb_log(SB_WARN, "http", "accept: %s", uv_strerror(rc));
        sb_http_conn_close(c);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    struct sockaddr_storage ss;
    int sslen = sizeof ss;
    if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &sslen) == 0) {
        if (ss.ss_family == AF_INET6)
            uv_ip6_name((struct sockaddr_in6 *)&ss, c->remote_ip, sizeof c->remote_ip);
        else
            uv_ip4_name((struct sockaddr_in *)&ss, c->remote_ip, sizeof c->remote_ip);
    }
    sb_log(SB_DEBUG, "http", "conn=%llu ip=%s open", (unsigned long long)c->id, c->remote_ip);
    if (srv->nconns > srv->limits.max_connections || srv->draining || srv->closing) {
        sb_log(SB_WARN, "http", "conn=%llu ip=%s over max_connections=%u", (unsigned long long)c->id,
               c->remote_ip, srv->limits.max_connections);
        conn_fail(c, 503);
        return;
    }
    sb_http_conn_arm_timer(c, srv->limits.header_timeout_ms);
    conn_update_reading(c);
}

int sb_http_server_listen(sb_http_server *srv, const char *host, int port)
{
    SB_ASSERT(srv->magic == SB_HTTP_SERVER_MAGIC && !srv->listening && !srv->closing);
    struct sockaddr_storage ss;
    if (uv_ip4_addr(host, port, (struct sockaddr_in *)&ss) != 0 &&
        uv_ip6_addr(host, port, (struct sockaddr_in6 *)&ss) != 0)
        return SB_EINVAL;
    uv_tcp_init(srv->loop, &srv->listener);
    srv->listener.data = srv;
    srv->listening = true;
    srv->handles_open++;
    /* libuv sets SO_REUSEADDR in uv_tcp_bind. */
    int rc = uv_tcp_bind(&srv->listener, (const struct sockaddr *)&ss, 0);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&srv->listener, LISTEN_BACKLOG, on_connection);
    if (rc != 0) {
        sb_log(SB_ERROR, "http", "listen %s:%d: %s", host, port, uv_strerror(rc));
        uv_close((uv_handle_t *)&srv->listener, srv_handle_close_cb);
        srv->listening = false;
        return SB_EIO;
    }
    sb_log(SB_INFO, "http", "listening on %s:%d", host, sb_http_server_port(srv));
    return 0;
}

int sb_http_server_port(sb_http_server *srv)
{
    SB_ASSERT(srv->magic == SB_HTTP_SERVER_MAGIC);
    if (!srv->listening)
        return 0;
    struct sockaddr_storage ss;
    int len = sizeof ss;
    if (uv_tcp_getsockname(&srv->listener, (struct sockaddr *)&ss, &len) != 0)
        return 0;
    if (ss.ss_family == AF_INET6)
        return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    return ntohs(((struct sockaddr_in *)&ss)->sin_port);
}

void sb_http_server_stop_accepting(sb_http_server *srv)
{
    SB_ASSERT(srv->magic == SB_HTTP_SERVER_MAGIC);
    srv->draining = true;
    if (srv->listening) {
        uv_close((uv_handle_t *)&srv->listener, srv_handle_close_cb);
        srv->listening = false;
    }
    /* Idle keep-alive connections have no request to finish. */
    for (sb_http_conn *c = srv->conns; c != NULL; c = c->next) {
        if (c->state == SB_CONN_READING && !c->msg_in_progress && c->in.len == 0)
            sb_http_conn_close_graceful(c);
    }
}

void sb_http_server_close(sb_http_server *srv, void (*cb)(void *), void *arg)
{
    SB_ASSERT(srv->magic == SB_HTTP_SERVER_MAGIC && !srv->closing);
    srv->draining = true;
    if (srv->listening) {
        uv_close((uv_handle_t *)&srv->listener, srv_handle_close_cb);
        srv->listening = false;
    }
    srv->closing = true;
    srv->close_cb = cb;
    srv->close_arg = arg;
    for (sb_http_conn *c = srv->conns; c != NULL; c = c->next)
        sb_http_conn_close(c);
    uv_idle_stop(&srv->resume_idle);
    srv->resume_active = false;
    uv_close((uv_handle_t *)&srv->resume_idle, srv_handle_close_cb);
}

void sb_http_server_free(sb_http_server *srv)
{
    if (srv == NULL)
        return;
    SB_ASSERT(srv->magic == SB_HTTP_SERVER_MAGIC && srv->handles_open == 0);
    srv->magic = SB_HTTP_DEAD_MAGIC;
    free(srv);
}

unsigned sb_http_server_connections(sb_http_server *srv)
{
    SB_ASSERT(srv->magic == SB_HTTP_SERVER_MAGIC);
    return srv->nconns;
}

uint64_t sb_http_server_requests_total(sb_http_server *srv)
{
    SB_ASSERT(srv->magic == SB_HTTP_SERVER_MAGIC);
    return srv->requests_total;
}

/* ---- socket-less connections ---- */

sb_http_conn *sb_http_conn_new_fake(sb_http_server *srv, sb_http_sink_fn sink, void *ctx)
{
    SB_ASSERT(srv->magic == SB_HTTP_SERVER_MAGIC && !srv->closing);
    sb_http_conn *c = conn_new(srv);
    c->fake = true;
    c->sink = sink;
    c->sink_ctx = ctx;
    snprintf(c->remote_ip, sizeof c->remote_ip, "%s", "127.0.0.1");
    sb_http_conn_arm_timer(c, srv->limits.header_timeout_ms);
    return c;
}

void sb_http_conn_feed(sb_http_conn *c, const char *p, size_t len)
{
    SB_ASSERT(c->magic == SB_HTTP_CONN_MAGIC);
    conn_on_data(c, p, len);
}
