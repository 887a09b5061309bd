/* test_http.c - the HTTP/WebSocket server driven over real loopback sockets:
 * the server runs its uv loop in a thread, the test talks to it as a client
 * with blocking sockets. Plus socket-less parser tests on a fake connection. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "http/http.h"
#include "http/http_internal.h"

/* ---- server side (runs on the server thread) ---- */

static atomic_int g_ws_closed;
static atomic_int g_ws_texts;
static atomic_int g_async_disconnected;
static atomic_int g_sse_closed;

typedef struct async_job {
    uv_timer_t timer;
    sb_http_req *req;
} async_job;

static void async_job_closed(uv_handle_t *h)
{
    free(h->data);
}

static void async_job_fire(uv_timer_t *t)
{
    async_job *job = t->data;
    if (!sb_http_req_connected(job->req))
        atomic_fetch_add(&g_async_disconnected, 1);
    const char *n = sb_http_req_query_param(job->req, "n");
    char body[64];
    int len = snprintf(body, sizeof body, "async%s", n != NULL ? n : "");
    sb_http_respond(job->req, 200, "text/plain", body, (size_t)len);
    uv_close((uv_handle_t *)&job->timer, async_job_closed);
}

static void ws_on_text(sb_ws *ws, const char *p, size_t len, void *ud)
{
    (void)ud;
    atomic_fetch_add(&g_ws_texts, 1);
    if (len == 8 && memcmp(p, "close-me", 8) == 0) {
        sb_ws_close(ws, 1000, "bye");
        return;
    }
    sb_ws_send_text(ws, p, len);
}

static void ws_on_close(sb_ws *ws, void *ud)
{
    (void)ws;
    (void)ud;
    atomic_fetch_add(&g_ws_closed, 1);
}

static void sse_on_close(sb_http_req *req, void *ud)
{
    (void)req;
    (void)ud;
    atomic_fetch_add(&g_sse_closed, 1);
}

/* ud is the server's uv loop */
static void handler(sb_http_req *req, void *ud)
{
    const char *path = sb_http_req_path(req);
    if (strcmp(path, "/hello") == 0) {
        sb_http_add_header(req, "X-Test", "yes");
        sb_http_respond(req, 200, "text/plain", "hello", 5);
    } else if (strcmp(path, "/info") == 0) {
        const char *a = sb_http_req_query_param(req, "a");
        const char *b = sb_http_req_query_param(req, "b");
        const char *c = sb_http_req_query_param(req, "c");
        const char *sid = sb_http_req_cookie(req, "sid");
        const char *theme = sb_http_req_cookie(req, "theme");
        const char *ua = sb_http_req_header(req, "X-Agent");
        sb_str body = sb_http_req_body(req);
        char out[1024];
        int len = snprintf(out, sizeof out,
                           "method=%s path=%s query=%s a=%s b=%s c=%s sid=%s theme=%s agent=%s "
                           "body=%.*s ip=%s",
                           sb_http_req_method_name(req), path, sb_http_req_query(req),
                           a ? a : "(null)", b ? b : "(null)", c ? c : "(null)",
                           sid ? sid : "(null)", theme ? theme : "(null)", ua ? ua : "(null)",
                           (int)body.len, body.p, sb_http_req_remote_ip(req));
        sb_http_respond(req, 200, "text/plain", out, (size_t)len);
    } else if (strcmp(path, "/async") == 0) {
        const char *ms = sb_http_req_query_param(req, "ms");
        async_job *job = malloc(sizeof *job);
        job->req = req;
        uv_timer_init(ud, &job->timer);
        job->timer.data = job;
        uv_timer_start(&job->timer, async_job_fire, ms != NULL ? strtoul(ms, NULL, 10) : 50, 0);
    } else if (strcmp(path, "/big") == 0) {
        size_t n = 3 * 1024 * 1024 + 7;
        char *big = malloc(n);
        for (size_t i = 0; i < n; i++)
            big[i] = (char)('a' + i % 26);
        sb_http_respond(req, 200, "application/octet-stream", big, n);
        free(big);
    } else if (strcmp(path, "/json") == 0) {
        sb_http_respond_json(req, 201, json_pack("{s:i}", "ok", 1));
    } else if (strcmp(path, "/ws") == 0) {
        static const sb_ws_callbacks cbs = {ws_on_text, ws_on_close};
        sb_ws_accept(req, &cbs, NULL);
    } else if (strcmp(path, "/sse") == 0) {
        sb_http_stream_begin(req, 200, "text/event-stream", sse_on_close, NULL);
        sb_http_stream_write(req, "data: one\n\n", 11);
        sb_http_stream_write(req, "data: two\n\n", 11);
        sb_http_stream_end(req);
    } else if (strcmp(path, "/sse-hold") == 0) {
        sb_http_stream_begin(req, 200, "text/event-stream", sse_on_close, NULL);
        sb_http_stream_write(req, "data: held\n\n", 12);
    } else {
        sb_http_respond_error(req, 404, "not_found", "no route for %s", path);
    }
}

typedef struct fixture {
    uv_loop_t loop;
    uv_async_t wake;
    atomic_int op; /* 1 stop accepting, 2 close */
    sb_http_server *srv;
    sb_http_limits limits;
    pthread_t thread;
    sem_t sem;
    int port;
    bool closed;
    unsigned conns_at_close;
    uint64_t requests_at_close;
} fixture;

static void server_closed(void *arg)
{
    fixture *f = arg;
    f->closed = true;
}

static void wake_cb(uv_async_t *a)
{
    fixture *f = a->data;
    int op = atomic_exchange(&f->op, 0);
    if (op == 1) {
        sb_http_server_stop_accepting(f->srv);
        sem_post(&f->sem);
    } else if (op == 2) {
        f->conns_at_close = sb_http_server_connections(f->srv);
        f->requests_at_close = sb_http_server_requests_total(f->srv);
        sb_http_server_close(f->srv, server_closed, f);
        uv_close((uv_handle_t *)&f->wake, NULL);
    }
}

static void *server_thread(void *arg)
{
    fixture *f = arg;
    uv_loop_init(&f->loop);
    f->srv = sb_http_server_new(&f->loop, &f->limits, handler, &f->loop);
    int rc = sb_http_server_listen(f->srv, "127.0.0.1", 0);
    f->port = rc == 0 ? sb_http_server_port(f->srv) : -1;
    uv_async_init(&f->loop, &f->wake, wake_cb);
    f->wake.data = f;
    sem_post(&f->sem);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    sb_http_server_free(f->srv);
    f->srv = NULL;
    return (void *)(intptr_t)uv_loop_close(&f->loop);
}

static fixture *server_start(const sb_http_limits *limits)
{
    fixture *f = calloc(1, sizeof *f);
    if (limits != NULL)
        f->limits = *limits;
    else
        sb_http_limits_default(&f->limits);
    sem_init(&f->sem, 0, 0);
    atomic_store(&g_ws_closed, 0);
    atomic_store(&g_ws_texts, 0);
    atomic_store(&g_async_disconnected, 0);
    atomic_store(&g_sse_closed, 0);
    pthread_create(&f->thread, NULL, server_thread, f);
    sem_wait(&f->sem);
    assert_true(f->port > 0);
    return f;
}

static void server_stop_accepting(fixture *f)
{
    atomic_store(&f->op, 1);
    uv_async_send(&f->wake);
    sem_wait(&f->sem);
}

/* Closes the server, joins the thread; the loop must end with no handles. */
static void server_stop(fixture *f)
{
    atomic_store(&f->op, 2);
    uv_async_send(&f->wake);
    void *ret;
    pthread_join(f->thread, &ret);
    assert_int_equal((intptr_t)ret, 0);
    assert_true(f->closed);
    sem_destroy(&f->sem);
    free(f);
}

/* ---- client side ---- */

typedef struct client {
    int fd;
    char buf[256 * 1024];
    size_t len;
} client;

static client *client_open(int port)
{
    client *c = calloc(1, sizeof *c);
    c->fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(c->fd >= 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    assert_int_equal(connect(c->fd, (struct sockaddr *)&sa, sizeof sa), 0);
    struct timeval tv = {.tv_sec = 5};
    setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return c;
}

static void client_close(client *c)
{
    close(c->fd);
    free(c);
}

static void send_all(client *c, const void *p, size_t len)
{
    const char *s = p;
    while (len > 0) {
        ssize_t n = send(c->fd, s, len, MSG_NOSIGNAL);
        if (n <= 0)
            return; /* server may have closed: the test checks the reply */
        s += n;
        len -= (size_t)n;
    }
}

static void send_str(client *c, const char *s)
{
    send_all(c, s, strlen(s));
}

/* false on EOF, error or timeout */
static bool client_fill(client *c)
{
    if (c->len == sizeof c->buf)
        return false;
    ssize_t n = recv(c->fd, c->buf + c->len, sizeof c->buf - c->len, 0);
    if (n <= 0)
        return false;
    c->len += (size_t)n;
    return true;
}

static void client_take(client *c, size_t n, char *out)
{
    memcpy(out, c->buf, n);
    memmove(c->buf, c->buf + n, c->len - n);
    c->len -= n;
}

/* Reads one response (head + body); NULL if the connection ended first. */
static char *read_response(client *c, bool no_body)
{
    char *end;
    for (;;) {
        c->buf[c->len < sizeof c->buf ? c->len : sizeof c->buf - 1] = '\0';
        end = c->len > 0 ? strstr(c->buf, "\r\n\r\n") : NULL;
        if (end != NULL)
            break;
        if (!client_fill(c))
            return NULL;
    }
    size_t head_len = (size_t)(end - c->buf) + 4;
    size_t need = head_len;
    if (!no_body) {
        char *cl = strcasestr(c->buf, "\r\nContent-Length:");
        if (cl != NULL && cl < end) {
            need += strtoul(cl + 17, NULL, 10);
        } else if (strcasestr(c->buf, "Transfer-Encoding: chunked") != NULL) {
            for (;;) {
                c->buf[c->len < sizeof c->buf ? c->len : sizeof c->buf - 1] = '\0';
                char *term = strstr(c->buf + head_len - 2, "\r\n0\r\n\r\n");
                if (term != NULL) {
                    need = (size_t)(term - c->buf) + 7;
                    break;
                }
                if (!client_fill(c))
                    return NULL;
            }
        }
    }
    while (c->len < need) {
        if (!client_fill(c))
            return NULL;
    }
    char *out = malloc(need + 1);
    client_take(c, need, out);
    out[need] = '\0';
    return out;
}

/* True if the server closes the connection (nothing else arrives). */
static bool read_eof(client *c)
{
    char tmp[4096];
    for (;;) {
        ssize_t n = recv(c->fd, tmp, sizeof tmp, 0);
        if (n == 0)
            return true;
        if (n < 0)
            return errno == ECONNRESET;
    }
}

static void expect_status(const char *resp, int status)
{
    assert_non_null(resp);
    char line[32];
    snprintf(line, sizeof line, "HTTP/1.1 %d ", status);
    if (strncmp(resp, line, strlen(line)) != 0)
        fail_msg("expected %d, got: %.80s", status, resp);
}

static const char *body_of(const char *resp)
{
    const char *p = strstr(resp, "\r\n\r\n");
    return p != NULL ? p + 4 : "";
}

/* ---- tests ---- */

static void test_get_query_cookie(void **state)
{
    (void)state;
    fixture *f = server_start(NULL);
    client *c = client_open(f->port);
    send_str(c, "GET /info?a=1&b=hello+world%21&c=%E2%82%AC&d HTTP/1.1\r\nHost: x\r\n"
                "Cookie: theme=\"dark\";  sid=abc%20; other=1\r\nX-Agent:   tester  \r\n\r\n");
    char *r = read_response(c, false);
    expect_status(r, 200);
    assert_non_null(strstr(r, "\r\nConnection: keep-alive\r\n"));
    assert_non_null(strstr(r, "\r\nDate: "));
    assert_non_null(strstr(r, "\r\nContent-Type: text/plain\r\n"));
    assert_string_equal(body_of(r), "method=GET path=/info query=a=1&b=hello+world%21&c=%E2%82%AC&d "
                                    "a=1 b=hello world! c=\xE2\x82\xAC sid=abc%20 theme=dark "
                                    "agent=tester body= ip=127.0.0.1");
    free(r);
    /* same connection: POST with a body, then 404 JSON */
    send_str(c, "POST /info HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nabcde");
    r = read_response(c, false);
    expect_status(r, 200);
    assert_non_null(strstr(r, "method=POST path=/info query= a=(null)"));
    assert_non_null(strstr(r, "body=abcde "));
    free(r);
    send_str(c, "GET /nope HTTP/1.1\r\nHost: x\r\n\r\n");
    r = read_response(c, false);
    expect_status(r, 404);
    assert_string_equal(body_of(r), "{\"error\":{\"code\":\"not_found\",\"message\":\"no route for /nope\"}}");
    free(r);
    send_str(c, "GET /json HTTP/1.1\r\nHost: x\r\n\r\n");
    r = read_response(c, false);
    expect_status(r, 201);
    assert_non_null(strstr(r, "Content-Type: application/json"));
    assert_string_equal(body_of(r), "{\"ok\":1}");
    free(r);
    client_close(c);
    server_stop(f);
}

static void test_pipelined_in_order(void **state)
{
    (void)state;
    fixture *f = server_start(NULL);
    client *c = client_open(f->port);
    /* the first one answers later; the second must wait for it */
    send_str(c, "GET /async?ms=100&n=1 HTTP/1.1\r\nHost: x\r\n\r\n"
                "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n"
                "GET /async?ms=1&n=3 HTTP/1.1\r\nHost: x\r\n\r\n"
                "GET /info?a=4 HTTP/1.1\r\nHost: x\r\n\r\n");
    char *r1 = read_response(c, false);
    char *r2 = read_response(c, false);
    char *r3 = read_response(c, false);
    char *r4 = read_response(c, false);
    expect_status(r1, 200);
    assert_string_equal(body_of(r1), "async1");
    expect_status(r2, 200);
    assert_string_equal(body_of(r2), "hello");
    assert_non_null(strstr(r2, "\r\nX-Test: yes\r\n"));
    expect_status(r3, 200);
    assert_string_equal(body_of(r3), "async3");
    expect_status(r4, 200);
    assert_non_null(strstr(r4, "a=4"));
    free(r1);
    free(r2);
    free(r3);
    free(r4);
    client_close(c);
    server_stop(f);
    assert_int_equal(atomic_load(&g_async_disconnected), 0);
}

/* A response too big for one write goes through uv_write; the pipelined
 * request behind it is parsed only once it has been written. */
static void test_big_response_then_pipelined(void **state)
{
    (void)state;
    fixture *f = server_start(NULL);
    client *c = client_open(f->port);
    send_str(c, "GET /big HTTP/1.1\r\nHost: x\r\n\r\nGET /hello HTTP/1.1\r\nHost: x\r\n\r\n");
    usleep(100 * 1000); /* let the socket buffers fill up */
    char head[4096];
    size_t total = 0, need = 0;
    while (need == 0 || total < need) {
        assert_true(client_fill(c));
        if (need == 0) {
            c->buf[c->len < sizeof c->buf ? c->len : sizeof c->buf - 1] = '\0';
            char *end = strstr(c->buf, "\r\n\r\n");
            if (end == NULL)
                continue;
            size_t hl = (size_t)(end - c->buf) + 4;
            client_take(c, hl, head);
            head[hl] = '\0';
            expect_status(head, 200);
            assert_non_null(strstr(head, "Content-Length: 3145735\r\n"));
            need = 3145735;
        }
        size_t take = c->len < need - total ? c->len : need - total;
        for (size_t i = 0; i < take; i++)
            assert_int_equal(c->buf[i], (char)('a' + (total + i) % 26));
        char *tmp = malloc(take + 1);
        client_take(c, take, tmp);
        free(tmp);
        total += take;
    }
    char *r = read_response(c, false);
    expect_status(r, 200);
    assert_string_equal(body_of(r), "hello");
    free(r);
    client_close(c);
    server_stop(f);
}

static void test_split_bytes(void **state)
{
    (void)state;
    fixture *f = server_start(NULL);
    client *c = client_open(f->port);
    const char *req = "GET /info?a=split HTTP/1.1\r\nHost: x\r\nX-Agent: slow-writer\r\n"
                      "Cookie: sid=s1\r\n\r\n";
    for (const char *p = req; *p != '\0'; p++) {
        send_all(c, p, 1);
        usleep(200);
    }
    char *r = read_response(c, false);
    expect_status(r, 200);
    assert_non_null(strstr(r, "a=split"));
    assert_non_null(strstr(r, "agent=slow-writer"));
    assert_non_null(strstr(r, "sid=s1"));
    free(r);
    client_close(c);
    server_stop(f);
}

static void test_async_and_disconnect(void **state)
{
    (void)state;
    fixture *f = server_start(NULL);
    client *c = client_open(f->port);
    send_str(c, "GET /async?ms=30&n=7 HTTP/1.1\r\nHost: x\r\n\r\n");
    char *r = read_response(c, false);
    expect_status(r, 200);
    assert_string_equal(body_of(r), "async7");
    free(r);
    /* peer leaves while the handler works: the response is dropped */
    send_str(c, "GET /async?ms=300 HTTP/1.1\r\nHost: x\r\n\r\n");
    usleep(50 * 1000);
    client_close(c);
    /* the handler ends after 300 ms and finds its peer gone; a loaded machine
     * (sanitizers, parallel tests) may take longer, so wait for it up to 10 s */
    for (int i = 0; i < 1000 && atomic_load(&g_async_disconnected) == 0; i++)
        usleep(10 * 1000);
    assert_int_equal(atomic_load(&g_async_disconnected), 1);
    server_stop(f);
}

static void test_body_too_large(void **state)
{
    (void)state;
    sb_http_limits l;
    sb_http_limits_default(&l);
    l.max_body_bytes = 1000;
    fixture *f = server_start(&l);
    client *c = client_open(f->port);
    send_str(c, "POST /info HTTP/1.1\r\nHost: x\r\nContent-Length: 10000000\r\n\r\n");
    char *r = read_response(c, false);
    expect_status(r, 413);
    assert_non_null(strstr(r, "Connection: close"));
    assert_non_null(strstr(body_of(r), "\"code\":\"payload_too_large\""));
    free(r);
    assert_true(read_eof(c));
    client_close(c);

    /* chunked bodies are bounded too */
    c = client_open(f->port);
    char big[700];
    memset(big, 'x', sizeof big);
    send_str(c, "POST /info HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n2bc\r\n");
    send_all(c, big, sizeof big);
    send_str(c, "\r\n2bc\r\n");
    send_all(c, big, sizeof big);
    send_str(c, "\r\n0\r\n\r\n");
    r = read_response(c, false);
    expect_status(r, 413);
    free(r);
    assert_true(read_eof(c));
    client_close(c);

    /* a chunked body within the limit works */
    c = client_open(f->port);
    send_str(c, "POST /info HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                "3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n");
    r = read_response(c, false);
    expect_status(r, 200);
    assert_non_null(strstr(r, "body=abcde "));
    free(r);
    client_close(c);
    server_stop(f);
}

static void test_headers_too_large(void **state)
{
    (void)state;
    fixture *f = server_start(NULL);
    /* too many headers */
    client *c = client_open(f->port);
    send_str(c, "GET /hello HTTP/1.1\r\nHost: x\r\n");
    for (int i = 0; i < 100; i++) {
        char h[64];
        snprintf(h, sizeof h, "X-H%d: %d\r\n", i, i);
        send_str(c, h);
    }
    send_str(c, "\r\n");
    char *r = read_response(c, false);
    expect_status(r, 431);
    assert_non_null(strstr(body_of(r), "\"code\":\"headers_too_large\""));
    free(r);
    assert_true(read_eof(c));
    client_close(c);
    /* too many header bytes */
    c = client_open(f->port);
    char *big = malloc(40000);
    memset(big, 'a', 39999);
    big[39999] = '\0';
    send_str(c, "GET /hello HTTP/1.1\r\nX-Big: ");
    send_str(c, big);
    send_str(c, "\r\n\r\n");
    free(big);
    r = read_response(c, false);
    expect_status(r, 431);
    free(r);
    client_close(c);
    server_stop(f);
}

static void test_garbage(void **state)
{
    (void)state;
    fixture *f = server_start(NULL);
    client *c = client_open(f->port);
    send_str(c, "GARBAGE \x01\x02 nonsense\r\n\r\n");
    char *r = read_response(c, false);
    expect_status(r, 400);
    assert_non_null(strstr(body_of(r), "\"code\":\"bad_request\""));
    free(r);
    assert_true(read_eof(c));
    client_close(c);
    /* HTTP/1.1 requires Host; HTTP/1.0 does not. */
    c = client_open(f->port);
    send_str(c, "GET /hello HTTP/1.1\r\nX-Any: 1\r\n\r\n");
    r = read_response(c, false);
    expect_status(r, 400);
    free(r);
    client_close(c);
    c = client_open(f->port);
    send_str(c, "GET /hello HTTP/1.0\r\n\r\n");
    r = read_response(c, false);
    expect_status(r, 200);
    free(r);
    client_close(c);
    server_stop(f);
}

static void test_slowloris(void **state)
{
    (void)state;
    sb_http_limits l;
    sb_http_limits_default(&l);
    l.header_timeout_ms = 200;
    fixture *f = server_start(&l);
    client *c = client_open(f->port);
    send_str(c, "GET /hello HTTP/1.1\r\nHost: x\r\n");
    usleep(100 * 1000);
    send_str(c, "X-A: 1\r\n"); /* trickling does not extend the deadline */
    char *r = read_response(c, false);
    expect_status(r, 408);
    assert_non_null(strstr(body_of(r), "\"code\":\"request_timeout\""));
    free(r);
    assert_true(read_eof(c));
    client_close(c);
    server_stop(f);
}

static void test_idle_timeout(void **state)
{
    (void)state;
    sb_http_limits l;
    sb_http_limits_default(&l);
    l.idle_timeout_ms = 150;
    fixture *f = server_start(&l);
    client *c = client_open(f->port);
    send_str(c, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n");
    char *r = read_response(c, false);
    expect_status(r, 200);
    free(r);
    assert_true(read_eof(c)); /* closed silently after idle_timeout_ms */
    client_close(c);
    server_stop(f);
}

static void test_head(void **state)
{
    (void)state;
    fixture *f = server_start(NULL);
    client *c = client_open(f->port);
    send_str(c, "HEAD /hello HTTP/1.1\r\nHost: x\r\n\r\n");
    char *r = read_response(c, true);
    expect_status(r, 200);
    assert_non_null(strstr(r, "Content-Length: 5\r\n"));
    assert_string_equal(body_of(r), "");
    free(r);
    /* if a body had been sent it would show up in front of this response */
    send_str(c, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n");
    r = read_response(c, false);
    expect_status(r, 200);
    assert_string_equal(body_of(r), "hello");
    free(r);
    client_close(c);
    server_stop(f);
}

static void test_connection_close(void **state)
{
    (void)state;
    fixture *f = server_start(NULL);
    client *c = client_open(f->port);
    send_str(c, "GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
                "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n");
    char *r = read_response(c, false);
    expect_status(r, 200);
    assert_non_null(strstr(r, "Connection: close\r\n"));
    free(r);
    assert_true(read_eof(c)); /* the second request is not answered */
    client_close(c);

    c = client_open(f->port); /* HTTP/1.0: close by default */
    send_str(c, "GET /hello HTTP/1.0\r\n\r\n");
    r = read_response(c, false);
    expect_status(r, 200);
    assert_non_null(strstr(r, "Connection: close\r\n"));
    free(r);
    assert_true(read_eof(c));
    client_close(c);

    c = client_open(f->port); /* HTTP/1.0 keep-alive */
    send_str(c, "GET /hello HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    r = read_response(c, false);
    expect_status(r, 200);
    assert_non_null(strstr(r, "Connection: keep-alive\r\n"));
    free(r);
    send_str(c, "GET /hello HTTP/1.0\r\n\r\n");
    r = read_response(c, false);
    expect_status(r, 200);
    free(r);
    assert_true(read_eof(c));
    client_close(c);
    server_stop(f);
}

static void test_sse(void **state)
{
    (void)state;
    fixture *f = server_start(NULL);
    client *c = client_open(f->port);
    send_str(c, "GET /sse HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n");
    char *r = read_response(c, false);
    expect_status(r, 200);
    assert_non_null(strstr(r, "Content-Type: text/event-stream\r\n"));
    assert_non_null(strstr(r, "Transfer-Encoding: chunked\r\n"));
    assert_string_equal(body_of(r), "b\r\ndata: one\n\n\r\nb\r\ndata: two\n\n\r\n0\r\n\r\n");
    free(r);
    /* keep-alive after a finished stream */
    send_str(c, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n");
    r = read_response(c, false);
    expect_status(r, 200);
    free(r);
    /* a held stream ends when the peer leaves: on_close once */
    send_str(c, "GET /sse-hold HTTP/1.1\r\nHost: x\r\n\r\n");
    while (strstr(c->buf, "data: held") == NULL) {
        assert_true(client_fill(c));
        c->buf[c->len] = '\0';
    }
    client_close(c);
    for (int i = 0; i < 200 && atomic_load(&g_sse_closed) == 0; i++)
        usleep(5 * 1000);
    assert_int_equal(atomic_load(&g_sse_closed), 1);
    server_stop(f);
    assert_int_equal(atomic_load(&g_sse_closed), 1);
}

static void test_max_connections(void **state)
{
    (void)state;
    sb_http_limits l;
    sb_http_limits_default(&l);
    l.max_connections = 2;
    fixture *f = server_start(&l);
    client *a = client_open(f->port);
    client *b = client_open(f->port);
    send_str(a, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n");
    send_str(b, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n");
    char *r = read_response(a, false);
    expect_status(r, 200);
    free(r);
    r = read_response(b, false);
    expect_status(r, 200);
    free(r);
    client *c = client_open(f->port);
    r = read_response(c, false);
    expect_status(r, 503);
    assert_non_null(strstr(r, "Retry-After: 1\r\n"));
    assert_non_null(strstr(body_of(r), "\"code\":\"overloaded\""));
    free(r);
    assert_true(read_eof(c));
    client_close(c);
    client_close(a);
    client_close(b);
    server_stop(f);
}

static void test_stop_accepting(void **state)
{
    (void)state;
    fixture *f = server_start(NULL);
    client *idle = client_open(f->port);
    client *busy = client_open(f->port);
    send_str(idle, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n");
    char *r = read_response(idle, false);
    expect_status(r, 200);
    free(r);
    send_str(busy, "GET /async?ms=200&n=9 HTTP/1.1\r\nHost: x\r\n\r\n");
    usleep(50 * 1000);
    server_stop_accepting(f);
    assert_true(read_eof(idle)); /* idle keep-alive connection closed */
    r = read_response(busy, false); /* in-flight request finishes */
    expect_status(r, 200);
    assert_string_equal(body_of(r), "async9");
    assert_non_null(strstr(r, "Connection: close\r\n"));
    free(r);
    assert_true(read_eof(busy));
    /* no longer listening */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)f->port)};
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    assert_int_not_equal(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    close(fd);
    client_close(idle);
    client_close(busy);
    server_stop(f);
}

/* ---- WebSocket ---- */

static size_t ws_frame(uint8_t *out, int opcode, const void *payload, size_t len)
{
    static const uint8_t mask[4] = {0x37, 0xfa, 0x21, 0x3d};
    size_t n = 0;
    out[n++] = (uint8_t)(0x80 | opcode);
    if (len < 126) {
        out[n++] = (uint8_t)(0x80 | len);
    } else {
        out[n++] = 0x80 | 126;
        out[n++] = (uint8_t)(len >> 8);
        out[n++] = (uint8_t)len;
    }
    memcpy(out + n, mask, 4);
    n += 4;
    for (size_t i = 0; i < len; i++)
        out[n + i] = ((const uint8_t *)payload)[i] ^ mask[i % 4];
    return n + len;
}

/* Reads one unmasked server frame; returns opcode or -1. */
static int ws_read(client *c, uint8_t *payload, size_t *len)
{
    while (c->len < 2) {
        if (!client_fill(c))
            return -1;
    }
    const uint8_t *h = (const uint8_t *)c->buf;
    int opcode = h[0] & 0x0f;
    size_t plen = h[1] & 0x7f;
    size_t hl = 2;
    if (plen == 126) {
        while (c->len < 4) {
            if (!client_fill(c))
                return -1;
        }
        h = (const uint8_t *)c->buf;
        plen = ((size_t)h[2] << 8) | h[3];
        hl = 4;
    }
    while (c->len < hl + plen) {
        if (!client_fill(c))
            return -1;
    }
    char hdr[4];
    client_take(c, hl, hdr);
    client_take(c, plen, (char *)payload);
    *len = plen;
    return opcode;
}

static client *ws_connect(fixture *f)
{
    client *c = client_open(f->port);
    send_str(c, "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: keep-alive, Upgrade\r\n"
                "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n");
    char *r = read_response(c, true);
    expect_status(r, 101);
    assert_non_null(strstr(r, "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"));
    assert_non_null(strcasestr(r, "Upgrade: websocket\r\n"));
    free(r);
    return c;
}

static void test_ws_echo_close(void **state)
{
    (void)state;
    fixture *f = server_start(NULL);
    client *c = ws_connect(f);
    uint8_t frame[512], payload[512];
    size_t len;
    send_all(c, frame, ws_frame(frame, 1, "hi there", 8));
    assert_int_equal(ws_read(c, payload, &len), 1);
    assert_int_equal(len, 8);
    assert_memory_equal(payload, "hi there", 8);
    /* 300-byte message: 16-bit length both ways */
    char big[300];
    memset(big, 'z', sizeof big);
    send_all(c, frame, ws_frame(frame, 1, big, sizeof big));
    assert_int_equal(ws_read(c, payload, &len), 1);
    assert_int_equal(len, 300);
    /* ping -> pong */
    send_all(c, frame, ws_frame(frame, 9, "p", 1));
    assert_int_equal(ws_read(c, payload, &len), 10);
    assert_int_equal(len, 1);
    /* client close -> server close reply, then TCP close */
    uint8_t code[2] = {0x03, 0xe8};
    send_all(c, frame, ws_frame(frame, 8, code, 2));
    assert_int_equal(ws_read(c, payload, &len), 8);
    assert_int_equal(len, 2);
    assert_int_equal((payload[0] << 8) | payload[1], 1000);
    assert_true(read_eof(c));
    client_close(c);
    for (int i = 0; i < 200 && atomic_load(&g_ws_closed) == 0; i++)
        usleep(5 * 1000);
    assert_int_equal(atomic_load(&g_ws_closed), 1);

    /* server-initiated close */
    c = ws_connect(f);
    send_all(c, frame, ws_frame(frame, 1, "close-me", 8));
    assert_int_equal(ws_read(c, payload, &len), 8);
    assert_int_equal((payload[0] << 8) | payload[1], 1000);
    assert_memory_equal(payload + 2, "bye", 3);
    send_all(c, frame, ws_frame(frame, 8, code, 2));
    assert_true(read_eof(c));
    client_close(c);

    /* server shutdown with an open socket: on_close too */
    c = ws_connect(f);
    send_all(c, frame, ws_frame(frame, 1, "x", 1));
    assert_int_equal(ws_read(c, payload, &len), 1);
    server_stop(f);
    assert_int_equal(atomic_load(&g_ws_closed), 3);
    client_close(c);
}

static void test_ws_invalid_utf8_and_limits(void **state)
{
    (void)state;
    sb_http_limits l;
    sb_http_limits_default(&l);
    l.ws_max_message = 100;
    fixture *f = server_start(&l);
    client *c = ws_connect(f);
    uint8_t frame[512], payload[512];
    size_t len;
    send_all(c, frame, ws_frame(frame, 1, "\xc3\x28", 2));
    assert_int_equal(ws_read(c, payload, &len), 8);
    assert_true(len >= 2);
    assert_int_equal((payload[0] << 8) | payload[1], 1007);
    assert_true(read_eof(c));
    client_close(c);

    c = ws_connect(f);
    char big[200];
    memset(big, 'a', sizeof big);
    send_all(c, frame, ws_frame(frame, 1, big, sizeof big));
    assert_int_equal(ws_read(c, payload, &len), 8);
    assert_int_equal((payload[0] << 8) | payload[1], 1009);
    assert_true(read_eof(c));
    client_close(c);

    /* bad upgrade: no key */
    c = client_open(f->port);
    send_str(c, "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                "Sec-WebSocket-Version: 13\r\n\r\n");
    char *r = read_response(c, false);
    expect_status(r, 400);
    free(r);
    assert_true(read_eof(c));
    client_close(c);
    /* plain GET of the ws route: 400, connection stays usable */
    c = client_open(f->port);
    send_str(c, "GET /ws HTTP/1.1\r\nHost: x\r\n\r\n");
    r = read_response(c, false);
    expect_status(r, 400);
    free(r);
    send_str(c, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n");
    r = read_response(c, false);
    expect_status(r, 200);
    free(r);
    client_close(c);
    server_stop(f);
    assert_int_equal(atomic_load(&g_ws_closed), 2);
}

/* ---- socket-less: fake connection, bytes fed one at a time ---- */

static void sink(void *ctx, const char *p, size_t len)
{
    sb_buf_append(ctx, p, len);
}

static void fake_closed(void *arg)
{
    *(bool *)arg = true;
}

static void test_fake_conn_bytewise(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    sb_http_server *srv = sb_http_server_new(&loop, NULL, handler, &loop);
    sb_buf out;
    sb_buf_init(&out);
    sb_http_conn *c = sb_http_conn_new_fake(srv, sink, &out);
    const char *in = "GET /info?a=%41%4&b=%zz+ HTTP/1.1\r\nHost: x\r\nCookie: a=1;sid=\"q\"\r\n"
                     "X-Agent:\r\n\r\nHEAD /hello HTTP/1.1\r\nHost: x\r\n\r\n";
    for (const char *p = in; *p != '\0'; p++)
        sb_http_conn_feed(c, p, 1);
    assert_non_null(strstr(out.p, "a=A%4 b=%zz  c=(null) sid=q theme=(null) agent= body="));
    const char *second = strstr(out.p, "HTTP/1.1 200 OK\r\nDate");
    assert_non_null(second);
    second = strstr(second + 1, "HTTP/1.1 200 OK\r\n");
    assert_non_null(second);
    assert_string_equal(body_of(second), "");
    assert_int_equal(sb_http_server_requests_total(srv), 2);
    bool closed = false;
    sb_http_server_close(srv, fake_closed, &closed);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_true(closed);
    sb_http_server_free(srv);
    assert_int_equal(uv_loop_close(&loop), 0);
    sb_buf_free(&out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_get_query_cookie),
        cmocka_unit_test(test_pipelined_in_order),
        cmocka_unit_test(test_big_response_then_pipelined),
        cmocka_unit_test(test_split_bytes),
        cmocka_unit_test(test_async_and_disconnect),
        cmocka_unit_test(test_body_too_large),
        cmocka_unit_test(test_headers_too_large),
        cmocka_unit_test(test_garbage),
        cmocka_unit_test(test_slowloris),
        cmocka_unit_test(test_idle_timeout),
        cmocka_unit_test(test_head),
        cmocka_unit_test(test_connection_close),
        cmocka_unit_test(test_sse),
        cmocka_unit_test(test_max_connections),
        cmocka_unit_test(test_stop_accepting),
        cmocka_unit_test(test_ws_echo_close),
        cmocka_unit_test(test_ws_invalid_utf8_and_limits),
        cmocka_unit_test(test_fake_conn_bytewise),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
