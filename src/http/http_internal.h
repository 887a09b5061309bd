/* http_internal.h - structures shared by server.c, request.c and ws.c, and
 * the socket-less entry points used by the fuzzer and unit tests.
 * Not part of the public contract (http.h). */
#ifndef SB_HTTP_INTERNAL_H
#define SB_HTTP_INTERNAL_H

#include <http_parser.h>
#include <wslay/wslay.h>

#include "http/http.h"

#define SB_HTTP_SERVER_MAGIC 0x53425356u /* "SBSV" */
#define SB_HTTP_CONN_MAGIC 0x5342434eu   /* "SBCN" */
#define SB_HTTP_REQ_MAGIC 0x53425251u    /* "SBRQ" */
#define SB_WS_MAGIC 0x53425753u          /* "SBWS" */
#define SB_HTTP_DEAD_MAGIC 0xdeadbeefu

typedef struct sb_http_conn sb_http_conn;

/* Fake write sink: lets the parser and response code run without a socket. */
typedef void (*sb_http_sink_fn)(void *ctx, const char *p, size_t len);

/* ---- per-request arena ---- */
typedef struct sb_http_arena_block {
    struct sb_http_arena_block *next;
    size_t cap;
    size_t used;
    char data[];
} sb_http_arena_block;

typedef struct sb_http_arena {
    sb_http_arena_block *extra; /* overflow blocks, freed on reset */
    size_t used;                /* bytes used in `first` */
    _Alignas(16) char first[1024];
} sb_http_arena;

void *sb_http_arena_alloc(sb_http_arena *a, size_t n);
char *sb_http_arena_strndup(sb_http_arena *a, const char *p, size_t len);
void sb_http_arena_reset(sb_http_arena *a);

/* ---- request ---- */
typedef struct sb_http_hdr {
    uint32_t name_off, name_len;
    uint32_t value_off, value_len;
} sb_http_hdr;

typedef struct sb_http_out_hdr {
    struct sb_http_out_hdr *next;
    const char *name;
    const char *value;
} sb_http_out_hdr;

typedef enum sb_http_req_state {
    SB_REQ_PARSING = 0, /* being filled by the parser */
    SB_REQ_HANDLING,    /* handed to the handler, no response yet */
    SB_REQ_STREAMING,   /* sb_http_stream_begin() was called */
} sb_http_req_state;

struct sb_http_req {
    uint32_t magic;
    sb_http_req_state state;
    sb_http_conn *conn; /* NULL once the peer is gone (detached) */
    uint64_t id;
    unsigned method;      /* enum http_method */
    unsigned http_major, http_minor;
    bool keep_alive;
    bool upgrade;
    bool chunked_stream;  /* streaming with Transfer-Encoding: chunked */
    bool in_on_close;
    bool stream_head;    /* HEAD request streamed: headers only */
    bool stream_ended;   /* detached stream ended before its on_close ran */
    uv_loop_t *loop;

    /* raw holds the URL then header names and values, each NUL-terminated. */
    sb_buf raw;
    size_t url_len;
    unsigned raw_state; /* 0 url, 1 header name, 2 header value */
    sb_http_hdr *hdrs;
    size_t nhdrs, hdrs_cap;
    const char *path;  /* into raw */
    const char *query; /* into raw or "" */
    sb_buf body;

    char remote_ip[48];
    sb_http_out_hdr *out_hdrs, *out_hdrs_tail;
    void *data;
    void (*stream_on_close)(sb_http_req *req, void *ud);
    void *stream_ud;
    sb_http_arena arena;
};

sb_http_req *sb_http_req_new(void);
void sb_http_req_reset(sb_http_req *req);
void sb_http_req_free(sb_http_req *req);
/* Called once the headers are complete: splits path and query. */
void sb_http_req_finish_headers(sb_http_req *req);

/* ---- connection ---- */
typedef enum sb_http_conn_state {
    SB_CONN_READING = 0, /* parsing requests */
    SB_CONN_HANDLING,    /* a request is with the handler or streaming */
    SB_CONN_WS,          /* upgraded: bytes belong to wslay */
    SB_CONN_LINGER,      /* response sent, FIN sent, draining input */
    SB_CONN_CLOSING,     /* uv_close() called */
} sb_http_conn_state;

struct sb_http_conn {
    uint32_t magic;
    sb_http_conn_state state;
    sb_http_server *srv;
    sb_http_conn *prev, *next;         /* server's connection list */
    sb_http_conn *resume_next;         /* server's resume list */
    bool on_resume_list;
    uint64_t id;
    uv_tcp_t tcp;
    uv_timer_t timer;
    uv_shutdown_t shutdown_req;
    int handles_open;
    bool reading;
    bool in_run;          /* inside conn_run(): respond must not recurse */
    bool msg_in_progress; /* first byte of a request seen, not complete */
    bool close_after_write;
    bool fake;
    sb_http_sink_fn sink;
    void *sink_ctx;

    http_parser parser;
    int err_status;       /* limit hit inside a parser callback */
    size_t hdr_bytes;
    sb_buf in;            /* received, not yet parsed bytes */
    sb_buf out;           /* response head being built (reused) */
    unsigned writes_pending;
    size_t write_bytes;   /* bytes queued in uv_write requests */

    sb_http_req *req;     /* current request (parsing or handling) */
    sb_http_req *spare;   /* a reset request kept for reuse */
    sb_ws *ws;
    char remote_ip[48];
};

struct sb_http_server {
    uint32_t magic;
    uv_loop_t *loop;
    sb_http_limits limits;
    sb_http_handler_fn handler;
    void *ud;
    uv_tcp_t listener;
    bool listening;      /* listener handle initialised and not closed */
    uv_idle_t resume_idle;
    bool resume_active;
    sb_http_conn *resume_head;
    sb_http_conn *conns;
    unsigned nconns;
    uint64_t requests_total;
    uint64_t next_conn_id;
    bool draining;
    bool closing;
    int handles_open;    /* listener + idle + connections */
    void (*close_cb)(void *);
    void *close_arg;
    char read_buf[65536];
    int64_t date_sec;
    char date[40];
};

/* Writes to the peer (socket or fake sink); copies what cannot go out now. */
void sb_http_conn_write(sb_http_conn *c, const uv_buf_t *bufs, unsigned nbufs);
/* Closes now: pending writes are dropped. */
void sb_http_conn_close(sb_http_conn *c);
/* Sends FIN after queued writes, drains input briefly, then closes. */
void sb_http_conn_close_graceful(sb_http_conn *c);
/* The request on `c` is done (response written): reuse or free it. */
void sb_http_conn_req_done(sb_http_conn *c);
void sb_http_conn_arm_timer(sb_http_conn *c, uint64_t ms);

/* Socket-less connection for fuzzing/tests; closed by sb_http_server_close. */
sb_http_conn *sb_http_conn_new_fake(sb_http_server *srv, sb_http_sink_fn sink, void *ctx);
/* Feeds received bytes as if read from the socket. */
void sb_http_conn_feed(sb_http_conn *c, const char *p, size_t len);

/* ws.c */
void sb_ws_feed(sb_ws *ws, const char *p, size_t len);
void sb_ws_on_timer(sb_ws *ws);
/* Connection is going away: calls on_close once and frees the ws. */
void sb_ws_conn_gone(sb_ws *ws);

#endif
