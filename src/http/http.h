/* http.h - Switchboard's own HTTP/1.1 + WebSocket server on libuv.
 *
 * One thread (the core loop) owns every connection. Requests on a connection
 * are handled one at a time (a pipelined request waits until the previous
 * response is written). A handler may answer later (after a store commit): the
 * request object stays valid until sb_http_respond*() is called, even if the
 * peer goes away meanwhile (then the response is silently dropped).
 *
 * Limits protect the daemon: header bytes, header count, body size, time to
 * receive headers and body (slowloris), idle keep-alive time, connections.
 */
#ifndef SB_HTTP_H
#define SB_HTTP_H

#include <uv.h>
#include <jansson.h>

#include "base/sb.h"

typedef struct sb_http_server sb_http_server;
typedef struct sb_http_req sb_http_req;
typedef struct sb_ws sb_ws;

typedef struct sb_http_limits {
    size_t max_header_bytes;    /* all request-line + header bytes; default 16 KiB -> 431 */
    size_t max_headers;         /* default 64 -> 431 */
    size_t max_body_bytes;      /* default 1 MiB -> 413 */
    unsigned header_timeout_ms; /* whole request must arrive within; default 10 s -> 408 + close */
    unsigned idle_timeout_ms;   /* keep-alive idle; default 60 s -> close */
    unsigned max_connections;   /* default 10000; beyond: 503 + close */
    size_t ws_max_message;      /* default 64 KiB; larger frame -> close 1009 */
    size_t ws_max_outbuf;       /* default 8 MiB queued for a slow peer -> close */
} sb_http_limits;

void sb_http_limits_default(sb_http_limits *l);

/* Called for every complete request (body fully read). */
typedef void (*sb_http_handler_fn)(sb_http_req *req, void *ud);

sb_http_server *sb_http_server_new(uv_loop_t *loop, const sb_http_limits *limits, sb_http_handler_fn handler, void *ud);
/* host "127.0.0.1" or "::1" or "0.0.0.0"; port 0 picks a free one. */
int sb_http_server_listen(sb_http_server *srv, const char *host, int port);
int sb_http_server_port(sb_http_server *srv); /* the bound port */
/* Stop accepting new connections; existing ones finish their current request. */
void sb_http_server_stop_accepting(sb_http_server *srv);
/* Close every connection and the listener; cb runs when all handles are closed. */
void sb_http_server_close(sb_http_server *srv, void (*cb)(void *), void *arg);
void sb_http_server_free(sb_http_server *srv); /* after close cb */
unsigned sb_http_server_connections(sb_http_server *srv);
uint64_t sb_http_server_requests_total(sb_http_server *srv);

/* ---- request ---- */
typedef enum sb_http_method {
    SB_HTTP_OTHER = 0,
    SB_HTTP_GET,
    SB_HTTP_HEAD,
    SB_HTTP_POST,
    SB_HTTP_PUT,
    SB_HTTP_PATCH,
    SB_HTTP_DELETE,
    SB_HTTP_OPTIONS,
} sb_http_method;

sb_http_method sb_http_req_method(const sb_http_req *req);
const char *sb_http_req_method_name(const sb_http_req *req);
/* Path without query, percent-decoded? No: raw path, e.g. "/api/v1/tickets/5". */
const char *sb_http_req_path(const sb_http_req *req);
/* Raw query string without '?', "" if none. */
const char *sb_http_req_query(const sb_http_req *req);
/* Decoded value of query parameter `name` (percent and '+' decoded) or NULL.
 * The returned string lives as long as the request. */
const char *sb_http_req_query_param(sb_http_req *req, const char *name);
/* Checks the names of all query parameters against known[0..n): 0 if every
 * one is known and none repeats; else -1 with the offending name in `bad`
 * (decoded, printable ASCII only, cut with "...") and *repeated saying
 * which of the two it was. */
int sb_http_req_query_names(sb_http_req *req, const char *const *known, size_t n, char *bad, size_t cap,
                            bool *repeated);
/* Case-insensitive header lookup; NUL-terminated value or NULL. */
const char *sb_http_req_header(const sb_http_req *req, const char *name);
/* Value of cookie `name` or NULL (lives as long as the request). */
const char *sb_http_req_cookie(sb_http_req *req, const char *name);
sb_str sb_http_req_body(const sb_http_req *req);
/* Peer IP as text ("127.0.0.1"). */
const char *sb_http_req_remote_ip(const sb_http_req *req);
/* Unique id of this request for logs (monotonic per process). */
uint64_t sb_http_req_id(const sb_http_req *req);
/* False once the peer has gone away; responding is still allowed (no-op). */
bool sb_http_req_connected(const sb_http_req *req);

/* Per-request user pointer for async handlers. */
void sb_http_req_set_data(sb_http_req *req, void *data);
void *sb_http_req_data(const sb_http_req *req);

/* Extra response headers; call before respond. Copies name and value. */
void sb_http_add_header(sb_http_req *req, const char *name, const char *value);

/* Send the response and release the request. Exactly one respond per request.
 * Adds Content-Length, Date, Connection; HEAD gets no body. */
void sb_http_respond(sb_http_req *req, int status, const char *content_type, const void *body, size_t len);
/* Serialises `json` (steals the reference) with application/json. */
void sb_http_respond_json(sb_http_req *req, int status, json_t *json);
/* {"error":{"code":code,"message":message}} */
void sb_http_respond_error(sb_http_req *req, int status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Streaming response (Server-Sent Events): sends status + headers with no
 * Content-Length; then sb_http_stream_write() any number of times; the
 * request ends with sb_http_stream_end() or when the peer goes away (on_close
 * is called then, once). */
void sb_http_stream_begin(sb_http_req *req, int status, const char *content_type,
                          void (*on_close)(sb_http_req *req, void *ud), void *ud);
int sb_http_stream_write(sb_http_req *req, const void *p, size_t len);
void sb_http_stream_end(sb_http_req *req);

/* ---- WebSocket ---- */
typedef struct sb_ws_callbacks {
    void (*on_text)(sb_ws *ws, const char *p, size_t len, void *ud);
    /* Called once when the socket is gone (peer close, error, server close).
     * The ws pointer is invalid after this returns. */
    void (*on_close)(sb_ws *ws, void *ud);
} sb_ws_callbacks;

/* Validates the upgrade request (GET, Upgrade: websocket, Sec-WebSocket-Key,
 * version 13); on success sends 101, consumes `req`, and returns the socket.
 * On failure responds 400 itself and returns NULL. */
sb_ws *sb_ws_accept(sb_http_req *req, const sb_ws_callbacks *cbs, void *ud);
int sb_ws_send_text(sb_ws *ws, const char *p, size_t len);
/* Sends several text messages with one write to the socket. */
int sb_ws_send_texts(sb_ws *ws, const sb_str *msgs, size_t n);
/* Starts a close handshake; on_close follows. */
void sb_ws_close(sb_ws *ws, uint16_t code, const char *reason);
const char *sb_ws_remote_ip(const sb_ws *ws);
uint64_t sb_ws_id(const sb_ws *ws);

const char *sb_http_status_text(int status);

#endif
