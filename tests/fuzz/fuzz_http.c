/* fuzz_http.c - libFuzzer target: arbitrary bytes into the server's request
 * path (parser, limits, handler dispatch, pipelining, responses, SSE and the
 * WebSocket upgrade + wslay framing) through a socket-less connection.
 *
 * Input byte 0 picks how the rest is split into reads (1..63 bytes at a
 * time, or all at once), so fields split across reads get exercised. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "http/http.h"
#include "http/http_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_PENDING 64

typedef struct fuzz_state {
    sb_http_req *pending[MAX_PENDING];
    size_t npending;
    size_t out_bytes;
} fuzz_state;

static void sink(void *ctx, const char *p, size_t len)
{
    fuzz_state *st = ctx;
    SB_ASSERT(p != NULL && len > 0);
    st->out_bytes += len;
}

static void ws_text(sb_ws *ws, const char *p, size_t len, void *ud)
{
    (void)ud;
    if (len > 0 && p[0] == 'c')
        sb_ws_close(ws, 1000, "bye");
    else
        sb_ws_send_text(ws, p, len);
}

static void ws_closed(sb_ws *ws, void *ud)
{
    (void)ws;
    (void)ud;
}

static void stream_closed(sb_http_req *req, void *ud)
{
    (void)req;
    (void)ud;
}

static void handler(sb_http_req *req, void *ud)
{
    fuzz_state *st = ud;
    const char *path = sb_http_req_path(req);
    /* exercise the getters on whatever arrived */
    const char *a = sb_http_req_query_param(req, "a");
    const char *sid = sb_http_req_cookie(req, "sid");
    const char *host = sb_http_req_header(req, "host");
    sb_str body = sb_http_req_body(req);
    (void)sb_http_req_method(req);
    (void)sb_http_req_method_name(req);
    (void)sb_http_req_query(req);
    if (strncmp(path, "/ws", 3) == 0) {
        static const sb_ws_callbacks cbs = {ws_text, ws_closed};
        sb_ws_accept(req, &cbs, NULL);
    } else if (strncmp(path, "/async", 6) == 0 && st->npending < MAX_PENDING) {
        st->pending[st->npending++] = req;
    } else if (strncmp(path, "/sse", 4) == 0) {
        sb_http_stream_begin(req, 200, "text/event-stream", stream_closed, NULL);
        sb_http_stream_write(req, "data: x\n\n", 9);
        if (path[4] != 'h')
            sb_http_stream_end(req);
    } else if (strncmp(path, "/err", 4) == 0) {
        sb_http_respond_error(req, 422, "invalid", "bad %s", a != NULL ? a : "-");
    } else {
        sb_http_add_header(req, "X-Sid", sid != NULL ? sid : "");
        sb_http_add_header(req, "X-Host", host != NULL ? host : "");
        sb_http_respond(req, 200, "text/plain", body.p, body.len);
    }
}

static void closed(void *arg)
{
    *(int *)arg = 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int log_init;
    if (!log_init) {
        sb_log_set_level(SB_ERROR);
        log_init = 1;
    }
    if (size == 0)
        return 0;
    size_t step = data[0] & 63;
    if (step == 0)
        step = size;
    data++;
    size--;

    uv_loop_t loop;
    uv_loop_init(&loop);
    sb_http_limits limits;
    sb_http_limits_default(&limits);
    limits.max_header_bytes = 2048;
    limits.max_headers = 16;
    limits.max_body_bytes = 4096;
    limits.ws_max_message = 1024;
    fuzz_state st = {0};
    sb_http_server *srv = sb_http_server_new(&loop, &limits, handler, &st);
    sb_http_conn *c = sb_http_conn_new_fake(srv, sink, &st);

    for (size_t off = 0; off < size; off += step) {
        if (sb_http_server_connections(srv) == 0)
            break; /* closed and freed by uv_run below */
        size_t n = size - off < step ? size - off : step;
        sb_http_conn_feed(c, (const char *)data + off, n);
        /* answer the oldest async request now and then */
        if (st.npending > 0 && (data[off] & 1)) {
            sb_http_req *req = st.pending[0];
            memmove(st.pending, st.pending + 1, (st.npending - 1) * sizeof st.pending[0]);
            st.npending--;
            sb_http_respond(req, 200, "text/plain", "late", 4);
            uv_run(&loop, UV_RUN_NOWAIT); /* resumes buffered pipelined requests */
        }
    }
    for (int round = 0; round < 8 && st.npending > 0; round++) {
        while (st.npending > 0)
            sb_http_respond(st.pending[--st.npending], 204, NULL, NULL, 0);
        uv_run(&loop, UV_RUN_NOWAIT);
    }
    int done = 0;
    sb_http_server_close(srv, closed, &done);
    uv_run(&loop, UV_RUN_DEFAULT);
    /* requests still with the "handler" were detached by the close */
    while (st.npending > 0)
        sb_http_respond(st.pending[--st.npending], 200, NULL, NULL, 0);
    SB_ASSERT(done);
    sb_http_server_free(srv);
    SB_ASSERT(uv_loop_close(&loop) == 0);
    return 0;
}
