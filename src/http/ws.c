/* ws.c - WebSocket (RFC 6455) on top of an upgraded HTTP connection.
 * Framing, masking, control frames and the close handshake are wslay's;
 * this file moves bytes between wslay and the connection, enforces UTF-8
 * and size limits, pings idle peers and closes peers that read too slowly. */
#include "http/http_internal.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>

#include "base/log.h"

#define WS_PING_MS 30000
#define WS_DEAD_MS (2 * WS_PING_MS + 15000)
#define WS_CLOSE_WAIT_MS 5000

struct sb_ws {
    uint32_t magic;
    sb_http_conn *conn; /* NULL once the connection is gone */
    wslay_event_context_ptr ctx;
    sb_ws_callbacks cbs;
    void *ud;
    uint64_t id;
    char remote_ip[48];
    const char *rbuf; /* bytes being fed to wslay */
    size_t rlen;
    sb_buf out;       /* frames produced by wslay_event_send */
    bool in_recv;
    bool close_timer_armed;
    uint64_t last_rx_ms;
};

static void ws_flush(sb_ws *ws);

static sb_ws *ws_check(const sb_ws *ws)
{
    SB_ASSERT(ws != NULL && ws->magic == SB_WS_MAGIC);
    return (sb_ws *)ws;
}

static ssize_t ws_recv_cb(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, int flags,
                          void *user_data)
{
    sb_ws *ws = user_data;
    SB_UNUSED(flags);
    if (ws->rlen == 0) {
        wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
        return -1;
    }
    size_t n = len < ws->rlen ? len : ws->rlen;
    memcpy(buf, ws->rbuf, n);
    ws->rbuf += n;
    ws->rlen -= n;
    return (ssize_t)n;
}

static ssize_t ws_send_cb(wslay_event_context_ptr ctx, const uint8_t *data, size_t len, int flags,
                          void *user_data)
{
    sb_ws *ws = user_data;
    SB_UNUSED(ctx);
    SB_UNUSED(flags);
    sb_buf_append(&ws->out, data, len);
    return (ssize_t)len;
}

static void ws_fail(sb_ws *ws, uint16_t code, const char *reason)
{
    wslay_event_queue_close(ws->ctx, code, (const uint8_t *)reason, strlen(reason));
    wslay_event_shutdown_read(ws->ctx);
}

static void ws_on_msg(wslay_event_context_ptr ctx, const struct wslay_event_on_msg_recv_arg *arg,
                      void *user_data)
{
    sb_ws *ws = user_data;
    SB_UNUSED(ctx);
    if (arg->opcode == WSLAY_TEXT_FRAME) {
        if (!sb_utf8_valid((const char *)arg->msg, arg->msg_length)) {
            sb_log(SB_INFO, "http", "ws=%llu invalid utf-8, closing", (unsigned long long)ws->id);
            ws_fail(ws, WSLAY_CODE_INVALID_FRAME_PAYLOAD_DATA, "invalid utf-8");
            return;
        }
        if (ws->cbs.on_text != NULL && ws->conn != NULL)
            ws->cbs.on_text(ws, (const char *)arg->msg, arg->msg_length, ws->ud);
    } else if (arg->opcode == WSLAY_BINARY_FRAME) {
        ws_fail(ws, WSLAY_CODE_UNSUPPORTED_DATA, "binary not supported");
    }
    /* ping -> pong and close replies are queued by wslay itself */
}

void sb_ws_feed(sb_ws *ws, const char *p, size_t len)
{
    ws_check(ws);
    sb_http_conn *c = ws->conn;
    if (c == NULL)
        return;
    ws->last_rx_ms = uv_now(c->srv->loop);
    if (!wslay_event_want_read(ws->ctx))
        return; /* after a close frame: ignore the rest */
    ws->rbuf = p;
    ws->rlen = len;
    ws->in_recv = true;
    int rc = wslay_event_recv(ws->ctx);
    ws->in_recv = false;
    ws->rbuf = NULL;
    ws->rlen = 0;
    if (rc != 0) {
        sb_log(SB_DEBUG, "http", "ws=%llu recv error %d", (unsigned long long)ws->id, rc);
        sb_http_conn_close(c);
        return;
    }
    ws_flush(ws);
}

/* Sends what wslay has queued; closes when the close handshake is done or
 * the peer is not reading fast enough. */
static void ws_flush(sb_ws *ws)
{
    sb_http_conn *c = ws->conn;
    if (ws->in_recv || c == NULL || c->state != SB_CONN_WS)
        return;
    int rc = wslay_event_send(ws->ctx);
    if (ws->out.len > 0) {
        uv_buf_t b = uv_buf_init(ws->out.p, (unsigned)ws->out.len);
        sb_http_conn_write(c, &b, 1);
        sb_buf_reset(&ws->out);
        if (ws->out.cap > 256 * 1024)
            sb_buf_free(&ws->out);
    }
    if (c->state != SB_CONN_WS)
        return;
    if (rc != 0) {
        sb_http_conn_close(c);
        return;
    }
    if (c->write_bytes > c->srv->limits.ws_max_outbuf) {
        sb_log(SB_WARN, "http", "ws=%llu ip=%s peer too slow (%zu bytes queued), closing",
               (unsigned long long)ws->id, ws->remote_ip, c->write_bytes);
        sb_http_conn_close(c);
        return;
    }
    if (!wslay_event_want_read(ws->ctx) && !wslay_event_want_write(ws->ctx)) {
        sb_http_conn_close_graceful(c);
        return;
    }
    if (wslay_event_get_close_sent(ws->ctx) && !ws->close_timer_armed) {
        ws->close_timer_armed = true;
        sb_http_conn_arm_timer(c, WS_CLOSE_WAIT_MS);
    }
}

void sb_ws_on_timer(sb_ws *ws)
{
    ws_check(ws);
    sb_http_conn *c = ws->conn;
    if (c == NULL)
        return;
    if (ws->close_timer_armed) {
        sb_http_conn_close(c); /* no close reply in time */
        return;
    }
    uint64_t now = uv_now(c->srv->loop);
    if (now - ws->last_rx_ms > WS_DEAD_MS) {
        sb_log(SB_INFO, "http", "ws=%llu ip=%s no traffic, closing", (unsigned long long)ws->id,
               ws->remote_ip);
        sb_http_conn_close(c);
        return;
    }
    struct wslay_event_msg msg = {WSLAY_PING, (const uint8_t *)"", 0};
    wslay_event_queue_msg(ws->ctx, &msg);
    sb_http_conn_arm_timer(c, WS_PING_MS);
    ws_flush(ws);
}

void sb_ws_conn_gone(sb_ws *ws)
{
    ws_check(ws);
    ws->conn = NULL;
    sb_log(SB_DEBUG, "http", "ws=%llu closed", (unsigned long long)ws->id);
    if (ws->cbs.on_close != NULL)
        ws->cbs.on_close(ws, ws->ud);
    wslay_event_context_free(ws->ctx);
    sb_buf_free(&ws->out);
    ws->magic = SB_HTTP_DEAD_MAGIC;
    free(ws);
}

/* True if the comma-separated header value contains `token`. */
static bool header_has_token(const char *value, const char *token)
{
    if (value == NULL)
        return false;
    size_t tlen = strlen(token);
    const char *p = value;
    while (*p != '\0') {
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        const char *start = p;
        while (*p != '\0' && *p != ',')
            p++;
        const char *end = p;
        while (end > start && (end[-1] == ' ' || end[-1] == '\t'))
            end--;
        if ((size_t)(end - start) == tlen && strncasecmp(start, token, tlen) == 0)
            return true;
    }
    return false;
}

static bool ws_key_valid(const char *key)
{
    if (key == NULL || strlen(key) != 24 || key[22] != '=' || key[23] != '=')
        return false;
    unsigned char raw[24];
    int n = EVP_DecodeBlock(raw, (const unsigned char *)key, 24);
    return n == 18; /* 16 bytes plus two padding zeros */
}

/* base64(SHA-1(key + GUID)) into out (29 bytes incl. NUL). */
static bool ws_accept_key(const char *key, char *out)
{
    static const char guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
    char buf[24 + sizeof guid];
    memcpy(buf, key, 24);
    memcpy(buf + 24, guid, sizeof guid - 1);
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    if (EVP_Digest(buf, 24 + sizeof guid - 1, md, &mdlen, EVP_sha1(), NULL) != 1 || mdlen != 20)
        return false;
    EVP_EncodeBlock((unsigned char *)out, md, 20);
    return true;
}

sb_ws *sb_ws_accept(sb_http_req *req, const sb_ws_callbacks *cbs, void *ud)
{
    SB_ASSERT(req != NULL && req->magic == SB_HTTP_REQ_MAGIC && req->state == SB_REQ_HANDLING);
    const char *key = sb_http_req_header(req, "sec-websocket-key");
    const char *version = sb_http_req_header(req, "sec-websocket-version");
    char accept[32];
    if (req->method != HTTP_GET || !header_has_token(sb_http_req_header(req, "upgrade"), "websocket") ||
        !header_has_token(sb_http_req_header(req, "connection"), "upgrade") || version == NULL ||
        strcmp(version, "13") != 0 || !ws_key_valid(key) || !ws_accept_key(key, accept)) {
        sb_http_add_header(req, "Sec-WebSocket-Version", "13");
        sb_http_respond_error(req, 400, "bad_request", "invalid websocket upgrade request");
        return NULL;
    }
    sb_http_conn *c = req->conn;
    if (c == NULL || c->state != SB_CONN_HANDLING) {
        sb_http_respond_error(req, 400, "bad_request", "connection gone");
        return NULL;
    }

    sb_ws *ws = sb_xcalloc(1, sizeof *ws);
    ws->magic = SB_WS_MAGIC;
    ws->cbs = *cbs;
    ws->ud = ud;
    ws->id = req->id;
    memcpy(ws->remote_ip, req->remote_ip, sizeof ws->remote_ip);
    sb_buf_init(&ws->out);
    struct wslay_event_callbacks wcbs = {
        .recv_callback = ws_recv_cb,
        .send_callback = ws_send_cb,
        .on_msg_recv_callback = ws_on_msg,
    };
    if (wslay_event_context_server_init(&ws->ctx, &wcbs, ws) != 0) {
        free(ws);
        sb_http_respond_error(req, 500, "internal", "out of memory");
        return NULL;
    }
    wslay_event_config_set_max_recv_msg_length(ws->ctx, c->srv->limits.ws_max_message);

    sb_buf *o = &c->out;
    sb_buf_reset(o);
    sb_buf_appendz(o, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                      "Connection: Upgrade\r\nSec-WebSocket-Accept: ");
    sb_buf_appendz(o, accept);
    sb_buf_appendz(o, "\r\n");
    for (const sb_http_out_hdr *h = req->out_hdrs; h != NULL; h = h->next) {
        sb_buf_appendz(o, h->name);
        sb_buf_appendz(o, ": ");
        sb_buf_appendz(o, h->value);
        sb_buf_appendz(o, "\r\n");
    }
    sb_buf_appendz(o, "\r\n");
    uv_buf_t b = uv_buf_init(o->p, (unsigned)o->len);
    sb_http_conn_write(c, &b, 1);

    sb_log(SB_DEBUG, "http", "conn=%llu ws=%llu open", (unsigned long long)c->id,
           (unsigned long long)ws->id);
    /* From here on the connection reports the socket's end through the ws
     * (conn_finalize -> sb_ws_conn_gone -> on_close), even if the write
     * above already failed. */
    ws->conn = c;
    c->ws = ws;
    ws->last_rx_ms = uv_now(c->srv->loop);
    c->close_after_write = false;
    if (c->state == SB_CONN_HANDLING) {
        c->state = SB_CONN_WS;
        sb_http_conn_arm_timer(c, WS_PING_MS);
    }
    sb_http_conn_req_done(c);
    return ws;
}

int sb_ws_send_text(sb_ws *ws, const char *p, size_t len)
{
    ws_check(ws);
    sb_http_conn *c = ws->conn;
    if (c == NULL || c->state != SB_CONN_WS || wslay_event_get_close_sent(ws->ctx) ||
        !wslay_event_get_write_enabled(ws->ctx))
        return SB_EIO;
    struct wslay_event_msg msg = {WSLAY_TEXT_FRAME, (const uint8_t *)p, len};
    if (wslay_event_queue_msg(ws->ctx, &msg) != 0)
        return SB_EIO;
    ws_flush(ws);
    return c->state == SB_CONN_WS ? 0 : SB_EIO;
}

int sb_ws_send_texts(sb_ws *ws, const sb_str *msgs, size_t n)
{
    ws_check(ws);
    sb_http_conn *c = ws->conn;
    if (c == NULL || c->state != SB_CONN_WS || wslay_event_get_close_sent(ws->ctx) ||
        !wslay_event_get_write_enabled(ws->ctx))
        return SB_EIO;
    for (size_t i = 0; i < n; i++) {
        struct wslay_event_msg msg = {WSLAY_TEXT_FRAME, (const uint8_t *)msgs[i].p, msgs[i].len};
        if (wslay_event_queue_msg(ws->ctx, &msg) != 0)
            return SB_EIO;
    }
    ws_flush(ws); /* all frames in one write */
    return c->state == SB_CONN_WS ? 0 : SB_EIO;
}

void sb_ws_close(sb_ws *ws, uint16_t code, const char *reason)
{
    ws_check(ws);
    sb_http_conn *c = ws->conn;
    if (c == NULL || c->state != SB_CONN_WS || wslay_event_get_close_sent(ws->ctx))
        return;
    size_t rlen = reason != NULL ? strlen(reason) : 0;
    if (rlen > 123)
        rlen = 123;
    if (wslay_event_queue_close(ws->ctx, code, (const uint8_t *)(reason ? reason : ""), rlen) != 0) {
        sb_http_conn_close(c);
        return;
    }
    ws_flush(ws);
}

const char *sb_ws_remote_ip(const sb_ws *ws)
{
    return ws_check(ws)->remote_ip;
}

uint64_t sb_ws_id(const sb_ws *ws)
{
    return ws_check(ws)->id;
}
