/* fanout.c - bench_fanout: M agent WebSocket feeds (/api/v1/stream), then K
 * signed inbound messages posted one at a time; for every (message, socket)
 * pair, the time from just before the POST is written to the arrival of that
 * message's "message.created" event on the socket.
 *
 * Receiver threads own the sockets (epoll); the main thread posts over one
 * keep-alive connection and publishes each message's start time before
 * writing it, so a receiver always finds the start time of an event it sees. */
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/epoll.h>

#include "common.h"

#define MAX_HANDSHAKES 128 /* per thread, in flight at once */

enum conn_state { C_IDLE, C_CONNECTING, C_UPGRADING, C_WAIT_HELLO, C_OPEN, C_DEAD };

typedef struct options {
    const char *url;
    const char *secret;
    const char *token;
    int channel;
    int sockets;
    int messages;
    double interval_ms;
    int threads;
    double connect_timeout;
    double settle;
    int contacts;
    bool fresh_contacts;
} options;

typedef struct ws_conn {
    int fd;
    enum conn_state state;
    char *buf; /* bytes received, not yet parsed */
    size_t len, cap;
    char *frag; /* a fragmented message being reassembled */
    size_t frag_len, frag_cap;
    int frag_opcode;
    uint32_t got; /* message.created events received */
} ws_conn;

typedef struct rx_thread {
    int id;
    int epfd;
    ws_conn *conns;
    int n;
    int next_to_open;
    int handshaking;
    pthread_t thread;
    bench_hist hist;
    uint32_t *per_msg;     /* events of message k received by this thread's sockets */
    uint64_t *per_msg_max; /* slowest socket for message k, us */
    atomic_ulong received; /* message.created events matched to this run */
    uint64_t other_events;
    uint64_t foreign_events; /* message.created not from this run */
    uint64_t closed_early;
    uint64_t failed;
    char first_error[256];
} rx_thread;

static options opt;
static bench_url url;
static struct sockaddr_storage addr;
static socklen_t addrlen;
static char run_tag[17];
static char ext_prefix[64];     /* "external_id":"f-<tag>- */
static _Atomic uint64_t *t0_ns; /* per message: when the POST started */
static atomic_int opened;       /* sockets that received hello */
static atomic_int dead;         /* sockets that failed before hello */
static atomic_bool stopping;

static void note_error(rx_thread *t, const char *what, const char *detail)
{
    if (t->first_error[0] == '\0')
        snprintf(t->first_error, sizeof t->first_error, "%s: %s", what, detail);
}

static void conn_kill(rx_thread *t, ws_conn *c, bool before_hello)
{
    if (c->fd >= 0) {
        epoll_ctl(t->epfd, EPOLL_CTL_DEL, c->fd, NULL);
        close(c->fd);
    }
    c->fd = -1;
    if (c->state == C_CONNECTING || c->state == C_UPGRADING || c->state == C_WAIT_HELLO)
        t->handshaking--;
    if (before_hello) {
        t->failed++;
        atomic_fetch_add(&dead, 1);
    } else {
        t->closed_early++;
    }
    c->state = C_DEAD;
}

static void start_connect(rx_thread *t, ws_conn *c)
{
    c->fd = socket(addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    t->handshaking++;
    c->state = C_CONNECTING;
    if (c->fd < 0) {
        note_error(t, "socket", strerror(errno));
        conn_kill(t, c, true);
        return;
    }
    bench_nodelay(c->fd);
    if (connect(c->fd, (struct sockaddr *)&addr, addrlen) != 0 && errno != EINPROGRESS) {
        note_error(t, "connect", strerror(errno));
        conn_kill(t, c, true);
        return;
    }
    struct epoll_event ev;
    memset(&ev, 0, sizeof ev);
    ev.events = EPOLLOUT | EPOLLIN;
    ev.data.ptr = c;
    epoll_ctl(t->epfd, EPOLL_CTL_ADD, c->fd, &ev);
}

static void send_upgrade(rx_thread *t, ws_conn *c)
{
    char req[1024];
    int n = snprintf(req, sizeof req,
                     "GET /api/v1/stream?access_token=%s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\n"
                     "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                     "Sec-WebSocket-Version: 13\r\n\r\n",
                     opt.token, url.hostport);
    /* A fresh socket's send buffer always takes a request this small. */
    if (n < 0 || (size_t)n >= sizeof req || send(c->fd, req, (size_t)n, MSG_NOSIGNAL) != n) {
        note_error(t, "upgrade send", strerror(errno));
        conn_kill(t, c, true);
        return;
    }
    struct epoll_event ev;
    memset(&ev, 0, sizeof ev);
    ev.events = EPOLLIN;
    ev.data.ptr = c;
    epoll_ctl(t->epfd, EPOLL_CTL_MOD, c->fd, &ev);
    c->state = C_UPGRADING;
}

static void send_pong(ws_conn *c, const char *p, size_t len)
{
    unsigned char f[2 + 4 + 125];
    if (len > 125)
        len = 125;
    f[0] = 0x80 | 0x0A;
    f[1] = 0x80 | (unsigned char)len;
    memset(f + 2, 0, 4); /* zero mask key: the payload goes as is */
    memcpy(f + 6, p, len);
    (void)!send(c->fd, f, 6 + len, MSG_NOSIGNAL | MSG_DONTWAIT);
}

static void on_text(rx_thread *t, ws_conn *c, const char *p, size_t len, uint64_t now)
{
    if (c->state == C_WAIT_HELLO) {
        if (bench_memmem_z(p, len, "\"type\":\"hello\"") != NULL) {
            c->state = C_OPEN;
            t->handshaking--;
            atomic_fetch_add(&opened, 1);
        }
        return;
    }
    if (bench_memmem_z(p, len, "\"type\":\"message.created\"") == NULL) {
        t->other_events++;
        return;
    }
    const char *e = bench_memmem_z(p, len, ext_prefix);
    if (e == NULL) {
        t->foreign_events++;
        return;
    }
    long k = strtol(e + strlen(ext_prefix), NULL, 10);
    if (k < 0 || k >= opt.messages) {
        t->foreign_events++;
        return;
    }
    uint64_t start = atomic_load_explicit(&t0_ns[k], memory_order_acquire);
    uint64_t us = start != 0 && now > start ? (now - start) / 1000 : 0;
    hist_add(&t->hist, us);
    t->per_msg[k]++;
    if (us > t->per_msg_max[k])
        t->per_msg_max[k] = us;
    c->got++;
    atomic_fetch_add_explicit(&t->received, 1, memory_order_relaxed);
}

/* Parses whole frames from c->buf; returns -1 when the socket must go. */
static int parse_frames(rx_thread *t, ws_conn *c, uint64_t now)
{
    size_t off = 0;
    while (c->len - off >= 2) {
        const unsigned char *h = (const unsigned char *)c->buf + off;
        bool fin = (h[0] & 0x80) != 0;
        int opcode = h[0] & 0x0F;
        bool masked = (h[1] & 0x80) != 0;
        uint64_t plen = h[1] & 0x7F;
        size_t hl = 2;
        if (plen == 126) {
            if (c->len - off < 4)
                break;
            plen = ((uint64_t)h[2] << 8) | h[3];
            hl = 4;
        } else if (plen == 127) {
            if (c->len - off < 10)
                break;
            plen = 0;
            for (int i = 0; i < 8; i++)
                plen = (plen << 8) | h[2 + i];
            hl = 10;
        }
        if (plen > (64u << 20)) {
            note_error(t, "frame", "larger than 64 MiB");
            return -1;
        }
        size_t mk = masked ? 4 : 0;
        if (c->len - off < hl + mk + plen)
            break;
        char *payload = c->buf + off + hl + mk;
        if (masked)
            for (uint64_t i = 0; i < plen; i++)
                payload[i] ^= (char)h[hl + (i & 3)];
        off += hl + mk + (size_t)plen;
        if (opcode == 0x8) {
            note_error(t, "server closed the socket", c->state == C_OPEN ? "after hello" : "before hello");
            return -1;
        }
        if (opcode == 0x9) {
            send_pong(c, payload, (size_t)plen);
            continue;
        }
        if (opcode == 0xA)
            continue;
        if (opcode == 0x1 || opcode == 0x2 || opcode == 0x0) {
            if (opcode != 0)
                c->frag_opcode = opcode;
            if (fin && c->frag_len == 0) {
                if (c->frag_opcode == 0x1)
                    on_text(t, c, payload, (size_t)plen, now);
                continue;
            }
            if (c->frag_len + plen > c->frag_cap) {
                c->frag_cap = (c->frag_len + (size_t)plen) * 2;
                c->frag = bench_xrealloc(c->frag, c->frag_cap);
            }
            memcpy(c->frag + c->frag_len, payload, (size_t)plen);
            c->frag_len += (size_t)plen;
            if (fin) {
                if (c->frag_opcode == 0x1)
                    on_text(t, c, c->frag, c->frag_len, now);
                c->frag_len = 0;
            }
        }
    }
    if (off > 0) {
        memmove(c->buf, c->buf + off, c->len - off);
        c->len -= off;
    }
    return 0;
}

static void on_readable(rx_thread *t, ws_conn *c)
{
    for (;;) {
        if (c->cap - c->len < 4096) {
            c->cap = c->cap ? c->cap * 2 : 8192;
            c->buf = bench_xrealloc(c->buf, c->cap);
        }
        ssize_t n = recv(c->fd, c->buf + c->len, c->cap - c->len - 1, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        if (n <= 0) {
            if (!atomic_load(&stopping))
                note_error(t, "connection closed", n == 0 ? "EOF" : strerror(errno));
            conn_kill(t, c, c->state != C_OPEN);
            return;
        }
        uint64_t now = bench_now_ns();
        c->len += (size_t)n;
        if (c->state == C_UPGRADING) {
            c->buf[c->len] = '\0';
            char *end = strstr(c->buf, "\r\n\r\n");
            if (end == NULL)
                continue;
            if (strncmp(c->buf, "HTTP/1.1 101", 12) != 0) {
                char line[160];
                snprintf(line, sizeof line, "%.*s", (int)strcspn(c->buf, "\r\n"), c->buf);
                note_error(t, "upgrade refused", line);
                conn_kill(t, c, true);
                return;
            }
            size_t hl = (size_t)(end - c->buf) + 4;
            memmove(c->buf, c->buf + hl, c->len - hl);
            c->len -= hl;
            c->state = C_WAIT_HELLO;
        }
        if (parse_frames(t, c, now) != 0) {
            conn_kill(t, c, c->state != C_OPEN);
            return;
        }
    }
}

static void *rx_main(void *arg)
{
    rx_thread *t = arg;
    struct epoll_event evs[512];
    t->epfd = epoll_create1(EPOLL_CLOEXEC);
    while (!atomic_load(&stopping)) {
        while (t->next_to_open < t->n && t->handshaking < MAX_HANDSHAKES)
            start_connect(t, &t->conns[t->next_to_open++]);
        int n = epoll_wait(t->epfd, evs, (int)BENCH_ARRAY_LEN(evs), 5);
        for (int i = 0; i < n; i++) {
            ws_conn *c = evs[i].data.ptr;
            if (c->fd < 0)
                continue;
            if (c->state == C_CONNECTING) {
                int err = 0;
                socklen_t el = sizeof err;
                getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &el);
                if (err != 0 || (evs[i].events & (EPOLLERR | EPOLLHUP))) {
                    note_error(t, "connect", strerror(err ? err : ECONNRESET));
                    conn_kill(t, c, true);
                } else if (evs[i].events & EPOLLOUT) {
                    send_upgrade(t, c);
                }
                continue;
            }
            on_readable(t, c);
        }
    }
    for (int i = 0; i < t->n; i++) {
        ws_conn *c = &t->conns[i];
        if (c->fd >= 0)
            close(c->fd);
        free(c->buf);
        free(c->frag);
    }
    close(t->epfd);
    return NULL;
}

/* ---- the poster: one blocking keep-alive connection ---- */

static int post_open(void)
{
    int fd = socket(addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&addr, addrlen) != 0) {
        fprintf(stderr, "bench_fanout: cannot connect the poster: %s\n", strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    bench_nodelay(fd);
    return fd;
}

/* Sends one request and reads its answer; returns the HTTP status or -1. */
static int post_one(int fd, const char *req, size_t len, char *resp, size_t cap)
{
    size_t off = 0;
    while (off < len) {
        ssize_t n = send(fd, req + off, len - off, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        off += (size_t)n;
    }
    size_t got = 0;
    for (;;) {
        ssize_t n = recv(fd, resp + got, cap - 1 - got, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        got += (size_t)n;
        resp[got] = '\0';
        char *end = strstr(resp, "\r\n\r\n");
        if (end == NULL) {
            if (got >= cap - 1)
                return -1;
            continue;
        }
        size_t hl = (size_t)(end - resp) + 4;
        resp[hl - 1] = '\0';
        const char *cl = strcasestr(resp, "\r\ncontent-length:");
        resp[hl - 1] = '\n';
        if (cl == NULL)
            return -1;
        size_t blen = strtoul(cl + 17, NULL, 10);
        if (hl + blen >= cap)
            return -1;
        if (got >= hl + blen)
            return bench_http_status(resp);
    }
}

/* external_id "<kind>-<run tag>-<k>", contact "fanout-<run tag>-<contact>". */
static size_t build_post(char **out, const char *kind, int k, int contact)
{
    char body[400], sig[72];
    int bl = snprintf(body, sizeof body,
                      "{\"external_id\":\"%s-%s-%d\",\"from\":{\"id\":\"fanout-%s-%d\",\"name\":\"Bench\"},"
                      "\"text\":\"Fan-out probe %d\"}",
                      kind, run_tag, k, run_tag, contact, k);
    bench_sign(opt.secret, body, (size_t)bl, sig);
    *out = bench_xcalloc(1, 1024);
    return (size_t)snprintf(*out, 1024,
                            "POST /api/v1/channels/%d/inbound HTTP/1.1\r\nHost: %s\r\n"
                            "Content-Type: application/json\r\nX-Switchboard-Signature: %s\r\n"
                            "Content-Length: %d\r\n\r\n%s",
                            opt.channel, url.hostport, sig, bl, body);
}

static void sleep_until(uint64_t t)
{
    uint64_t now = bench_now_ns();
    if (t <= now)
        return;
    struct timespec ts = {(time_t)((t - now) / 1000000000ull), (long)((t - now) % 1000000000ull)};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: bench_fanout --url http://HOST:PORT --secret HEX --token TOKEN [options]\n"
               "  --channel ID          API channel id (default 1)\n"
               "  --sockets M           WebSocket feeds to open (default 2000)\n"
               "  --messages K          inbound messages to post (default 200)\n"
               "  --interval-ms MS      spacing between POST starts (default 20)\n"
               "  --threads T           receiver threads (default 1)\n"
               "  --connect-timeout S   give up opening sockets after S seconds (default 60)\n"
               "  --settle S            wait for late events after the last POST (default 5)\n"
               "  --contacts N          messages come from N contacts whose tickets are opened by an\n"
               "                        untimed message each before timing, so every timed message\n"
               "                        makes exactly one event, message.created (default 50)\n"
               "  --fresh-contacts      every timed message comes from a new contact instead: three\n"
               "                        events (contact.created, ticket.created, message.created)\n");
}

static int parse_options(int argc, char **argv)
{
    static const struct option longs[] = {
        {"url", required_argument, NULL, 'u'},
        {"secret", required_argument, NULL, 's'},
        {"token", required_argument, NULL, 'T'},
        {"channel", required_argument, NULL, 'C'},
        {"sockets", required_argument, NULL, 'm'},
        {"messages", required_argument, NULL, 'k'},
        {"interval-ms", required_argument, NULL, 'i'},
        {"threads", required_argument, NULL, 't'},
        {"connect-timeout", required_argument, NULL, 'c'},
        {"settle", required_argument, NULL, 'S'},
        {"contacts", required_argument, NULL, 'n'},
        {"fresh-contacts", no_argument, NULL, 'f'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    opt.url = "http://127.0.0.1:8080";
    opt.channel = 1;
    opt.sockets = 2000;
    opt.messages = 200;
    opt.interval_ms = 20;
    opt.threads = 1;
    opt.connect_timeout = 60;
    opt.settle = 5;
    opt.contacts = 50;
    int ch;
    while ((ch = getopt_long(argc, argv, "", longs, NULL)) != -1) {
        switch (ch) {
        case 'u': opt.url = optarg; break;
        case 's': opt.secret = optarg; break;
        case 'T': opt.token = optarg; break;
        case 'C': opt.channel = (int)bench_opt_long("channel", optarg); break;
        case 'm': opt.sockets = (int)bench_opt_long("sockets", optarg); break;
        case 'k': opt.messages = (int)bench_opt_long("messages", optarg); break;
        case 'i': opt.interval_ms = bench_opt_double("interval-ms", optarg); break;
        case 't': opt.threads = (int)bench_opt_long("threads", optarg); break;
        case 'c': opt.connect_timeout = bench_opt_double("connect-timeout", optarg); break;
        case 'S': opt.settle = bench_opt_double("settle", optarg); break;
        case 'n': opt.contacts = (int)bench_opt_long("contacts", optarg); break;
        case 'f': opt.fresh_contacts = true; break;
        case 'h': usage(stdout); exit(0);
        default: usage(stderr); return -1;
        }
    }
    if (opt.secret == NULL || opt.token == NULL) {
        fprintf(stderr, "bench_fanout: --secret and --token are required\n");
        return -1;
    }
    if (opt.sockets < 1 || opt.messages < 1 || opt.interval_ms < 0 || opt.threads < 1 || opt.channel < 1 ||
        opt.connect_timeout <= 0 || opt.settle < 0 || opt.contacts < 1) {
        fprintf(stderr, "bench_fanout: bad option value\n");
        return -1;
    }
    if (opt.threads > opt.sockets)
        opt.threads = opt.sockets;
    if (bench_parse_url(opt.url, &url) != 0) {
        fprintf(stderr, "bench_fanout: --url must be http://HOST:PORT\n");
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (parse_options(argc, argv) != 0)
        return 2;
    if (sodium_init() < 0)
        return 1;
    signal(SIGPIPE, SIG_IGN);
    rlim_t lim = bench_raise_nofile((rlim_t)opt.sockets + 64);
    if (lim < (rlim_t)opt.sockets + 16) {
        fprintf(stderr, "bench_fanout: RLIMIT_NOFILE is %llu, too low for %d sockets (raise the hard limit)\n",
                (unsigned long long)lim, opt.sockets);
        return 1;
    }
    if (bench_resolve(&url, &addr, &addrlen) != 0)
        return 1;
    bench_run_tag(run_tag);
    snprintf(ext_prefix, sizeof ext_prefix, "\"external_id\":\"f-%s-", run_tag);

    /* Requests are built and signed before anything is timed. The untimed
     * ones (external_id "fw-...", which the receivers do not match) open one
     * ticket per contact. */
    int nwarm = opt.fresh_contacts ? 0 : opt.contacts;
    char **warm = bench_xcalloc((size_t)nwarm + 1, sizeof *warm);
    size_t *warm_lens = bench_xcalloc((size_t)nwarm + 1, sizeof *warm_lens);
    for (int i = 0; i < nwarm; i++)
        warm_lens[i] = build_post(&warm[i], "fw", i, i);
    char **reqs = bench_xcalloc((size_t)opt.messages, sizeof *reqs);
    size_t *req_lens = bench_xcalloc((size_t)opt.messages, sizeof *req_lens);
    for (int k = 0; k < opt.messages; k++)
        req_lens[k] = build_post(&reqs[k], "f", k, opt.fresh_contacts ? opt.contacts + k : k % opt.contacts);
    t0_ns = bench_xcalloc((size_t)opt.messages, sizeof *t0_ns);

    rx_thread *ts = bench_xcalloc((size_t)opt.threads, sizeof *ts);
    ws_conn *conns = bench_xcalloc((size_t)opt.sockets, sizeof *conns);
    for (int i = 0; i < opt.sockets; i++)
        conns[i].fd = -1;
    int per = opt.sockets / opt.threads, extra = opt.sockets % opt.threads, at = 0;
    uint64_t c0 = bench_now_ns();
    for (int i = 0; i < opt.threads; i++) {
        rx_thread *t = &ts[i];
        t->id = i;
        t->conns = conns + at;
        t->n = per + (i < extra ? 1 : 0);
        at += t->n;
        hist_init(&t->hist);
        t->per_msg = bench_xcalloc((size_t)opt.messages, sizeof *t->per_msg);
        t->per_msg_max = bench_xcalloc((size_t)opt.messages, sizeof *t->per_msg_max);
        pthread_create(&t->thread, NULL, rx_main, t);
    }
    uint64_t deadline = c0 + (uint64_t)(opt.connect_timeout * 1e9);
    while (atomic_load(&opened) + atomic_load(&dead) < opt.sockets && bench_now_ns() < deadline)
        sleep_until(bench_now_ns() + 5000000);
    double connect_s = (double)(bench_now_ns() - c0) / 1e9;
    int nopen = atomic_load(&opened);
    printf("bench_fanout  url=%s channel=%d sockets=%d messages=%d interval=%.0f ms receiver_threads=%d\n", opt.url,
           opt.channel, opt.sockets, opt.messages, opt.interval_ms, opt.threads);
    if (opt.fresh_contacts)
        printf("  events per message   3 (every message from a new contact: contact.created, ticket.created, "
               "message.created)\n");
    else
        printf("  events per message   1 (message.created; %d contacts whose tickets were opened untimed)\n",
               opt.contacts);
    printf("  sockets connected    %d of %d in %.2f s (failed: %d)\n", nopen, opt.sockets, connect_s,
           atomic_load(&dead));
    fflush(stdout);

    bench_hist post_hist;
    hist_init(&post_hist);
    int post_fail = 0, posted = 0;
    char first_post_error[256] = "";
    int fd = nopen > 0 ? post_open() : -1;
    char resp[16384];
    for (int i = 0; i < nwarm && fd >= 0; i++) {
        int status = post_one(fd, warm[i], warm_lens[i], resp, sizeof resp);
        if (status != 200) {
            fprintf(stderr, "bench_fanout: untimed setup POST answered %d: %.200s\n", status,
                    status > 0 ? resp : "(connection failed)");
            close(fd);
            fd = -1;
        }
    }
    sleep_until(bench_now_ns() + 300000000ull); /* let the sockets drain the setup events */
    uint64_t p0 = bench_now_ns(), last_post = p0;
    for (int k = 0; k < opt.messages && fd >= 0; k++) {
        sleep_until(p0 + (uint64_t)((double)k * opt.interval_ms * 1e6));
        uint64_t start = bench_now_ns();
        atomic_store_explicit(&t0_ns[k], start, memory_order_release);
        int status = post_one(fd, reqs[k], req_lens[k], resp, sizeof resp);
        last_post = bench_now_ns();
        hist_add(&post_hist, (last_post - start) / 1000);
        posted++;
        if (status != 200 || strstr(resp, "\"message_id\"") == NULL) {
            post_fail++;
            if (first_post_error[0] == '\0')
                snprintf(first_post_error, sizeof first_post_error, "status %d: %.150s", status,
                         status > 0 ? resp : "(connection failed)");
            if (status < 0) {
                close(fd);
                fd = post_open();
            }
        }
    }
    if (fd >= 0)
        close(fd);
    uint64_t expected = (uint64_t)nopen * (uint64_t)(posted - post_fail);
    uint64_t settle_end = last_post + (uint64_t)(opt.settle * 1e9);
    for (;;) {
        uint64_t got = 0;
        for (int i = 0; i < opt.threads; i++)
            got += atomic_load(&ts[i].received);
        if (got >= expected || bench_now_ns() >= settle_end)
            break;
        sleep_until(bench_now_ns() + 2000000);
    }
    atomic_store(&stopping, true);
    for (int i = 0; i < opt.threads; i++)
        pthread_join(ts[i].thread, NULL);

    bench_hist h, last;
    hist_init(&h);
    hist_init(&last);
    uint64_t received = 0, other = 0, foreign = 0, closed = 0;
    const char *first_error = "";
    for (int i = 0; i < opt.threads; i++) {
        hist_merge(&h, &ts[i].hist);
        received += atomic_load(&ts[i].received);
        other += ts[i].other_events;
        foreign += ts[i].foreign_events;
        closed += ts[i].closed_early;
        if (first_error[0] == '\0' && ts[i].first_error[0] != '\0')
            first_error = ts[i].first_error;
    }
    /* Per message: when the slowest socket got it. */
    for (int k = 0; k < posted; k++) {
        uint64_t mx = 0, cnt = 0;
        for (int i = 0; i < opt.threads; i++) {
            cnt += ts[i].per_msg[k];
            if (ts[i].per_msg_max[k] > mx)
                mx = ts[i].per_msg_max[k];
        }
        if (cnt > 0)
            hist_add(&last, mx);
    }
    int incomplete = 0;
    for (int i = 0; i < opt.sockets; i++)
        if (conns[i].got != (uint32_t)(posted - post_fail) && conns[i].state == C_OPEN)
            incomplete++;
    printf("  messages posted      %d (failed: %d)%s%s\n", posted, post_fail, first_post_error[0] ? "  first: " : "",
           first_post_error);
    printf("  POST latency ms      p50 %.3f  p99 %.3f  max %.3f\n", us_to_ms(hist_pct(&post_hist, 50)),
           us_to_ms(hist_pct(&post_hist, 99)), us_to_ms(post_hist.max_us));
    printf("  events expected      %llu  received %llu  missing %lld  (sockets missing some: %d, closed early: "
           "%llu)\n",
           (unsigned long long)expected, (unsigned long long)received, (long long)expected - (long long)received,
           incomplete, (unsigned long long)closed);
    printf("  other events seen    %llu (ticket.*, contact.*), foreign message.created %llu\n",
           (unsigned long long)other, (unsigned long long)foreign);
    if (first_error[0])
        printf("  first error          %s\n", first_error);
    printf("  delivery ms (all message x socket pairs)  p50 %.3f  p90 %.3f  p99 %.3f  max %.3f  mean %.3f\n",
           us_to_ms(hist_pct(&h, 50)), us_to_ms(hist_pct(&h, 90)), us_to_ms(hist_pct(&h, 99)), us_to_ms(h.max_us),
           h.n ? h.sum_us / (double)h.n / 1000.0 : 0.0);
    printf("  last socket ms (per message)              p50 %.3f  p99 %.3f  max %.3f\n", us_to_ms(hist_pct(&last, 50)),
           us_to_ms(hist_pct(&last, 99)), us_to_ms(last.max_us));
    printf("RESULT fanout events_per_message=%d sockets=%d connected=%d expected=%llu received=%llu "
           "p50_ms=%.3f p90_ms=%.3f p99_ms=%.3f max_ms=%.3f last_p99_ms=%.3f post_p50_ms=%.3f\n",
           opt.fresh_contacts ? 3 : 1, opt.sockets, nopen, (unsigned long long)expected, (unsigned long long)received,
           us_to_ms(hist_pct(&h, 50)), us_to_ms(hist_pct(&h, 90)), us_to_ms(hist_pct(&h, 99)), us_to_ms(h.max_us),
           us_to_ms(hist_pct(&last, 99)), us_to_ms(hist_pct(&post_hist, 50)));
    for (int i = 0; i < opt.threads; i++) {
        free(ts[i].per_msg);
        free(ts[i].per_msg_max);
    }
    for (int k = 0; k < opt.messages; k++)
        free(reqs[k]);
    for (int i = 0; i < nwarm; i++)
        free(warm[i]);
    free(warm);
    free(warm_lens);
    free(reqs);
    free(req_lens);
    free((void *)t0_ns);
    free(ts);
    free(conns);
    bool ok = nopen == opt.sockets && received == expected && expected > 0;
    return ok ? 0 : 1;
}
