/* ingest.c - bench_ingest: closed-loop load on the signed API-channel
 * inbound endpoint. N keep-alive HTTP/1.1 connections spread over T epoll
 * threads; each connection has one request in flight and sends the next as
 * soon as the previous is answered. The daemon answers an inbound message
 * only after its batch committed (synchronous=FULL), so every 200 carrying a
 * "message_id" is one durable message.
 *
 * Requests (headers, body, HMAC signature) are built before the clock starts.
 * Timed mode measures [warmup, warmup+duration); --requests N instead sends
 * exactly N requests and measures all of them (used to fill the database). */
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/epoll.h>

#include "common.h"

#define IN_CAP       16384
#define REQ_CAP      1024
#define MAX_STATUS   600
#define DRAIN_NS     3000000000ull
#define FILL_TIMEOUT 900.0

typedef struct options {
    const char *url;
    const char *secret;
    int channel;
    int connections;
    int threads;
    double duration;
    double warmup;
    double new_ratio;
    long pool_contacts;
    long requests; /* 0: timed mode */
    long prebuilt; /* requests built before the clock starts */
    bool quiet;
} options;

typedef struct conn {
    int fd;
    bool connecting;
    bool busy;
    bool want_out;
    const char *out;
    size_t out_len, out_off;
    uint64_t t_start;
    size_t in_len;
    char in[IN_CAP];
    char live[REQ_CAP];
} conn;

typedef struct thread_ctx {
    int id;
    int epfd;
    conn *conns;
    int nconns;
    pthread_t thread;
    /* results */
    bench_hist hist; /* measured window only */
    uint64_t ok;     /* measured window: 200 with message_id */
    uint64_t done_total;
    uint64_t ok_total;
    uint64_t status[MAX_STATUS]; /* measured window */
    uint64_t status_total[MAX_STATUS];
    uint64_t duplicates;
    uint64_t bad_body;
    uint64_t proto_errors;
    uint64_t conn_errors;
    uint64_t live_built;
    char first_error[256];
} thread_ctx;

static options opt;
static bench_url url;
static struct sockaddr_storage addr;
static socklen_t addrlen;
static char run_tag[17];
static char *arena;
static uint32_t *req_off, *req_len;
static long nbuilt;
static atomic_long next_seq;
static uint64_t t_begin, t_measure, t_end; /* ns; t_end = 0 in fill mode until done */

static uint64_t splitmix64(uint64_t x)
{
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

/* Builds request number seq into buf; returns its length, 0 if it did not fit. */
static size_t build_request(long seq, char *buf, size_t cap)
{
    char body[512], contact[96], sig[72];
    uint64_t r = splitmix64((uint64_t)seq ^ 0x5157u);
    double u = (double)(r >> 11) / (double)(1ull << 53);
    if (u < opt.new_ratio)
        snprintf(contact, sizeof contact, "n-%s-%ld", run_tag, seq);
    else
        snprintf(contact, sizeof contact, "pool-%ld", (long)(splitmix64(r) % (uint64_t)opt.pool_contacts));
    int blen = snprintf(body, sizeof body,
                        "{\"external_id\":\"b-%s-%ld\",\"from\":{\"id\":\"%s\",\"name\":\"Bench\"},"
                        "\"text\":\"Hello, where is my order %ld? It was due yesterday.\"}",
                        run_tag, seq, contact, seq);
    if (blen < 0 || (size_t)blen >= sizeof body)
        return 0;
    bench_sign(opt.secret, body, (size_t)blen, sig);
    int n = snprintf(buf, cap,
                     "POST /api/v1/channels/%d/inbound HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n"
                     "X-Switchboard-Signature: %s\r\nContent-Length: %d\r\n\r\n%s",
                     opt.channel, url.hostport, sig, blen, body);
    if (n < 0 || (size_t)n >= cap)
        return 0;
    return (size_t)n;
}

static void prebuild(void)
{
    nbuilt = opt.prebuilt;
    arena = malloc((size_t)nbuilt * 400 + REQ_CAP);
    req_off = malloc((size_t)nbuilt * sizeof *req_off);
    req_len = malloc((size_t)nbuilt * sizeof *req_len);
    if (arena == NULL || req_off == NULL || req_len == NULL) {
        fprintf(stderr, "bench_ingest: cannot allocate %ld prebuilt requests\n", nbuilt);
        exit(1);
    }
    size_t cap = (size_t)nbuilt * 400 + REQ_CAP, off = 0;
    for (long i = 0; i < nbuilt; i++) {
        if (cap - off < REQ_CAP) {
            cap *= 2;
            arena = bench_xrealloc(arena, cap);
        }
        size_t n = build_request(i, arena + off, REQ_CAP);
        if (n == 0) {
            fprintf(stderr, "bench_ingest: request %ld does not fit\n", i);
            exit(1);
        }
        req_off[i] = (uint32_t)off;
        req_len[i] = (uint32_t)n;
        off += n;
        if (off > UINT32_MAX - 2 * REQ_CAP) {
            fprintf(stderr, "bench_ingest: --prebuilt too large\n");
            exit(1);
        }
    }
}

static void note_error(thread_ctx *t, const char *fmt, const char *detail)
{
    if (t->first_error[0] == '\0')
        snprintf(t->first_error, sizeof t->first_error, fmt, detail);
}

static void set_events(thread_ctx *t, conn *c, bool out)
{
    struct epoll_event ev;
    memset(&ev, 0, sizeof ev);
    ev.events = EPOLLIN | (out ? EPOLLOUT : 0u);
    ev.data.ptr = c;
    epoll_ctl(t->epfd, EPOLL_CTL_MOD, c->fd, &ev);
    c->want_out = out;
}

static int conn_open(thread_ctx *t, conn *c)
{
    c->fd = socket(addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0) {
        note_error(t, "socket: %s", strerror(errno));
        return -1;
    }
    bench_nodelay(c->fd);
    c->in_len = 0;
    c->busy = false;
    c->connecting = true;
    int rc = connect(c->fd, (struct sockaddr *)&addr, addrlen);
    if (rc != 0 && errno != EINPROGRESS) {
        note_error(t, "connect: %s", strerror(errno));
        close(c->fd);
        c->fd = -1;
        return -1;
    }
    struct epoll_event ev;
    memset(&ev, 0, sizeof ev);
    ev.events = EPOLLIN | EPOLLOUT;
    ev.data.ptr = c;
    epoll_ctl(t->epfd, EPOLL_CTL_ADD, c->fd, &ev);
    c->want_out = true;
    return 0;
}

static void conn_drop(thread_ctx *t, conn *c)
{
    if (c->fd >= 0) {
        epoll_ctl(t->epfd, EPOLL_CTL_DEL, c->fd, NULL);
        close(c->fd);
    }
    c->fd = -1;
    c->busy = false;
    c->connecting = false;
}

static bool in_window(uint64_t now)
{
    if (opt.requests > 0)
        return true;
    return now >= t_measure && now < t_end;
}

static void try_write(thread_ctx *t, conn *c);

/* Takes the next request; false when there is nothing left to send. */
static bool start_request(thread_ctx *t, conn *c)
{
    uint64_t now = bench_now_ns();
    if (opt.requests == 0 && now >= t_end)
        return false;
    long seq = atomic_fetch_add_explicit(&next_seq, 1, memory_order_relaxed);
    if (opt.requests > 0 && seq >= opt.requests)
        return false;
    if (seq < nbuilt) {
        c->out = arena + req_off[seq];
        c->out_len = req_len[seq];
    } else {
        c->out_len = build_request(seq, c->live, sizeof c->live);
        c->out = c->live;
        t->live_built++;
    }
    c->out_off = 0;
    c->busy = true;
    c->in_len = 0;
    c->t_start = bench_now_ns();
    try_write(t, c);
    return true;
}

static void reconnect(thread_ctx *t, conn *c)
{
    conn_drop(t, c);
    t->conn_errors++;
    if (opt.requests == 0 && bench_now_ns() >= t_end)
        return;
    conn_open(t, c);
}

static void try_write(thread_ctx *t, conn *c)
{
    while (c->out_off < c->out_len) {
        ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);
        if (n > 0) {
            c->out_off += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            if (!c->want_out)
                set_events(t, c, true);
            return;
        }
        note_error(t, "send: %s", strerror(errno));
        reconnect(t, c);
        return;
    }
    if (c->want_out)
        set_events(t, c, false);
}

/* 1: a whole response is in c->in; 0: need more; -1: malformed. */
static int parse_response(conn *c, int *status, size_t *head_len, size_t *body_len, bool *server_close)
{
    c->in[c->in_len] = '\0';
    const char *end = strstr(c->in, "\r\n\r\n");
    if (end == NULL)
        return c->in_len >= IN_CAP - 1 ? -1 : 0;
    *status = bench_http_status(c->in);
    if (*status < 0)
        return -1;
    *head_len = (size_t)(end - c->in) + 4;
    char save = c->in[*head_len];
    c->in[*head_len] = '\0';
    const char *cl = strcasestr(c->in, "\r\ncontent-length:");
    *server_close = strcasestr(c->in, "\r\nconnection: close") != NULL;
    bool chunked = strcasestr(c->in, "\r\ntransfer-encoding:") != NULL;
    c->in[*head_len] = save;
    if (cl == NULL || chunked)
        return -1;
    *body_len = strtoul(cl + 17, NULL, 10);
    if (*head_len + *body_len >= IN_CAP)
        return -1;
    return c->in_len >= *head_len + *body_len ? 1 : 0;
}

static void on_response(thread_ctx *t, conn *c, int status, const char *body, size_t body_len)
{
    uint64_t now = bench_now_ns();
    bool measured = in_window(now);
    bool ok = false;
    int st = status > 0 && status < MAX_STATUS ? status : 0;
    t->done_total++;
    t->status_total[st]++;
    if (status == 200) {
        if (bench_memmem_z(body, body_len, "\"message_id\"") != NULL) {
            ok = true;
            if (bench_memmem_z(body, body_len, "\"duplicate\":true") != NULL)
                t->duplicates++;
        } else {
            t->bad_body++;
            note_error(t, "200 without message_id: %s", body);
        }
    } else if (t->first_error[0] == '\0') {
        char msg[200];
        snprintf(msg, sizeof msg, "%d %.*s", status, (int)(body_len < 150 ? body_len : 150), body);
        note_error(t, "first non-200: %s", msg);
    }
    if (ok)
        t->ok_total++;
    if (measured) {
        t->status[st]++;
        if (ok) {
            t->ok++;
            hist_add(&t->hist, (now - c->t_start) / 1000);
        }
    }
}

static void on_readable(thread_ctx *t, conn *c)
{
    for (;;) {
        ssize_t n = recv(c->fd, c->in + c->in_len, IN_CAP - 1 - c->in_len, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        if (n <= 0) {
            if (c->busy)
                note_error(t, "connection closed mid-request (%s)", n == 0 ? "EOF" : strerror(errno));
            reconnect(t, c);
            return;
        }
        c->in_len += (size_t)n;
        int status = 0;
        size_t head = 0, blen = 0;
        bool server_close = false;
        int rc = parse_response(c, &status, &head, &blen, &server_close);
        if (rc == 0)
            continue;
        if (rc < 0 || !c->busy || c->in_len != head + blen) {
            t->proto_errors++;
            note_error(t, "malformed or unexpected response: %.120s", c->in);
            reconnect(t, c);
            return;
        }
        c->busy = false;
        on_response(t, c, status, c->in + head, blen);
        c->in_len = 0;
        if (server_close) {
            reconnect(t, c);
            return;
        }
        start_request(t, c);
        return;
    }
}

static void *thread_main(void *arg)
{
    thread_ctx *t = arg;
    struct epoll_event evs[256];
    t->epfd = epoll_create1(EPOLL_CLOEXEC);
    for (int i = 0; i < t->nconns; i++)
        conn_open(t, &t->conns[i]);
    for (;;) {
        uint64_t now = bench_now_ns();
        int busy = 0, open = 0;
        for (int i = 0; i < t->nconns; i++) {
            conn *c = &t->conns[i];
            if (c->fd < 0)
                continue;
            open++;
            if (c->busy || c->connecting)
                busy++;
        }
        bool exhausted = opt.requests > 0 ? atomic_load(&next_seq) >= opt.requests : now >= t_end;
        if ((exhausted && busy == 0) || open == 0)
            break; /* open == 0: every connection failed and could not reconnect */
        if (opt.requests == 0 && now >= t_end + DRAIN_NS)
            break; /* give up on answers that never come */
        if (opt.requests > 0 && now >= t_begin + (uint64_t)(FILL_TIMEOUT * 1e9))
            break;
        int n = epoll_wait(t->epfd, evs, (int)BENCH_ARRAY_LEN(evs), 10);
        for (int i = 0; i < n; i++) {
            conn *c = evs[i].data.ptr;
            if (c->fd < 0)
                continue;
            if (c->connecting) {
                if (evs[i].events & (EPOLLERR | EPOLLHUP)) {
                    int err = 0;
                    socklen_t el = sizeof err;
                    getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &el);
                    note_error(t, "connect failed: %s", strerror(err ? err : ECONNREFUSED));
                    conn_drop(t, c);
                    t->conn_errors++;
                    continue;
                }
                if (evs[i].events & EPOLLOUT) {
                    c->connecting = false;
                    set_events(t, c, false);
                    if (!start_request(t, c))
                        conn_drop(t, c);
                }
                continue;
            }
            if (evs[i].events & EPOLLOUT)
                try_write(t, c);
            if (c->fd >= 0 && (evs[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP)))
                on_readable(t, c);
        }
        /* Idle connections (nothing was left to send) are closed. */
        for (int i = 0; i < t->nconns; i++) {
            conn *c = &t->conns[i];
            if (c->fd >= 0 && !c->busy && !c->connecting)
                conn_drop(t, c);
        }
    }
    for (int i = 0; i < t->nconns; i++)
        conn_drop(t, &t->conns[i]);
    close(t->epfd);
    return NULL;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: bench_ingest --url http://HOST:PORT --secret HEX [options]\n"
               "  --channel ID        API channel id (default 1)\n"
               "  --connections N     keep-alive connections (default 64)\n"
               "  --threads T         client threads (default 2)\n"
               "  --duration S        measured seconds (default 10)\n"
               "  --warmup S          seconds before measuring (default 2)\n"
               "  --new-ratio R       share of messages from a brand-new contact (default 0.2)\n"
               "  --pool N            existing-contact pool size (default 10000)\n"
               "  --requests N        send exactly N requests, no warmup, measure all (fill mode)\n"
               "  --prebuilt N        requests built before the clock starts (default: enough for\n"
               "                      50,000/s in timed mode, N in fill mode)\n"
               "  --quiet             print only the RESULT line\n");
}

static int parse_options(int argc, char **argv)
{
    static const struct option longs[] = {
        {"url", required_argument, NULL, 'u'},      {"secret", required_argument, NULL, 's'},
        {"channel", required_argument, NULL, 'C'},  {"connections", required_argument, NULL, 'c'},
        {"threads", required_argument, NULL, 't'},  {"duration", required_argument, NULL, 'd'},
        {"warmup", required_argument, NULL, 'w'},   {"new-ratio", required_argument, NULL, 'r'},
        {"pool", required_argument, NULL, 'p'},     {"requests", required_argument, NULL, 'n'},
        {"prebuilt", required_argument, NULL, 'b'}, {"quiet", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'},           {NULL, 0, NULL, 0},
    };
    opt.url = "http://127.0.0.1:8080";
    opt.channel = 1;
    opt.connections = 64;
    opt.threads = 2;
    opt.duration = 10;
    opt.warmup = 2;
    opt.new_ratio = 0.2;
    opt.pool_contacts = 10000;
    int ch;
    while ((ch = getopt_long(argc, argv, "", longs, NULL)) != -1) {
        switch (ch) {
        case 'u': opt.url = optarg; break;
        case 's': opt.secret = optarg; break;
        case 'C': opt.channel = (int)bench_opt_long("channel", optarg); break;
        case 'c': opt.connections = (int)bench_opt_long("connections", optarg); break;
        case 't': opt.threads = (int)bench_opt_long("threads", optarg); break;
        case 'd': opt.duration = bench_opt_double("duration", optarg); break;
        case 'w': opt.warmup = bench_opt_double("warmup", optarg); break;
        case 'r': opt.new_ratio = bench_opt_double("new-ratio", optarg); break;
        case 'p': opt.pool_contacts = bench_opt_long("pool", optarg); break;
        case 'n': opt.requests = bench_opt_long("requests", optarg); break;
        case 'b': opt.prebuilt = bench_opt_long("prebuilt", optarg); break;
        case 'q': opt.quiet = true; break;
        case 'h': usage(stdout); exit(0);
        default: usage(stderr); return -1;
        }
    }
    if (opt.secret == NULL || opt.secret[0] == '\0') {
        fprintf(stderr, "bench_ingest: --secret is required\n");
        return -1;
    }
    if (opt.connections < 1 || opt.threads < 1 || opt.duration <= 0 || opt.warmup < 0 || opt.new_ratio < 0 ||
        opt.new_ratio > 1 || opt.pool_contacts < 1 || opt.requests < 0 || opt.prebuilt < 0 || opt.channel < 1) {
        fprintf(stderr, "bench_ingest: bad option value\n");
        return -1;
    }
    if (opt.threads > opt.connections)
        opt.threads = opt.connections;
    if (opt.prebuilt == 0)
        opt.prebuilt = opt.requests > 0 ? opt.requests : (long)(50000.0 * (opt.duration + opt.warmup));
    if (opt.requests > 0 && opt.prebuilt > opt.requests)
        opt.prebuilt = opt.requests;
    if (bench_parse_url(opt.url, &url) != 0) {
        fprintf(stderr, "bench_ingest: --url must be http://HOST:PORT\n");
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
    bench_raise_nofile((rlim_t)opt.connections + 64);
    if (bench_resolve(&url, &addr, &addrlen) != 0)
        return 1;
    bench_run_tag(run_tag);
    uint64_t b0 = bench_now_ns();
    prebuild();
    double build_s = (double)(bench_now_ns() - b0) / 1e9;

    thread_ctx *ts = bench_xcalloc((size_t)opt.threads, sizeof *ts);
    conn *conns = bench_xcalloc((size_t)opt.connections, sizeof *conns);
    for (int i = 0; i < opt.connections; i++)
        conns[i].fd = -1;
    int per = opt.connections / opt.threads, extra = opt.connections % opt.threads, at = 0;
    t_begin = bench_now_ns();
    t_measure = opt.requests > 0 ? t_begin : t_begin + (uint64_t)(opt.warmup * 1e9);
    t_end = opt.requests > 0 ? UINT64_MAX : t_measure + (uint64_t)(opt.duration * 1e9);
    for (int i = 0; i < opt.threads; i++) {
        ts[i].id = i;
        ts[i].conns = conns + at;
        ts[i].nconns = per + (i < extra ? 1 : 0);
        at += ts[i].nconns;
        hist_init(&ts[i].hist);
        pthread_create(&ts[i].thread, NULL, thread_main, &ts[i]);
    }
    for (int i = 0; i < opt.threads; i++)
        pthread_join(ts[i].thread, NULL);
    uint64_t t_done = bench_now_ns();

    bench_hist h;
    hist_init(&h);
    uint64_t ok = 0, ok_total = 0, done_total = 0, dup = 0, bad = 0, proto = 0, connerr = 0, live = 0;
    uint64_t status[MAX_STATUS] = {0}, status_total[MAX_STATUS] = {0};
    const char *first_error = "";
    for (int i = 0; i < opt.threads; i++) {
        thread_ctx *t = &ts[i];
        hist_merge(&h, &t->hist);
        ok += t->ok;
        ok_total += t->ok_total;
        done_total += t->done_total;
        dup += t->duplicates;
        bad += t->bad_body;
        proto += t->proto_errors;
        connerr += t->conn_errors;
        live += t->live_built;
        for (int s = 0; s < MAX_STATUS; s++) {
            status[s] += t->status[s];
            status_total[s] += t->status_total[s];
        }
        if (first_error[0] == '\0' && t->first_error[0] != '\0')
            first_error = t->first_error;
    }
    uint64_t measured = 0, non200 = 0;
    for (int s = 0; s < MAX_STATUS; s++) {
        measured += status[s];
        if (s != 200)
            non200 += status[s];
    }
    double window_s = opt.requests > 0 ? (double)(t_done - t_begin) / 1e9 : opt.duration;
    double rate = (double)ok / window_s;
    char by_status[512] = "";
    size_t bl = 0;
    for (int s = 0; s < MAX_STATUS; s++)
        if (s != 200 && status[s] > 0 && bl < sizeof by_status - 32)
            bl += (size_t)snprintf(by_status + bl, sizeof by_status - bl, "%s%d:%llu", bl ? " " : "", s == 0 ? 0 : s,
                                   (unsigned long long)status[s]);
    if (!opt.quiet) {
        printf("bench_ingest  url=%s channel=%d connections=%d threads=%d new_ratio=%.2f pool=%ld\n", opt.url,
               opt.channel, opt.connections, opt.threads, opt.new_ratio, opt.pool_contacts);
        if (opt.requests > 0)
            printf("  mode                 fill: exactly %ld requests (all measured)\n", opt.requests);
        else
            printf("  mode                 timed: warmup %.1f s, measured %.1f s\n", opt.warmup, opt.duration);
        printf("  prebuilt requests    %ld in %.2f s (built live during the run: %llu)\n", nbuilt, build_s,
               (unsigned long long)live);
        printf("  requests measured    %llu   (all phases: %llu answered, %llu ok)\n", (unsigned long long)measured,
               (unsigned long long)done_total, (unsigned long long)ok_total);
        printf("  200 + message_id     %llu   (duplicates among them: %llu)\n", (unsigned long long)ok,
               (unsigned long long)dup);
        printf("  non-200              %llu   %s%s%s\n", (unsigned long long)non200, bl ? "(" : "", by_status,
               bl ? ")" : "");
        printf("  errors               connection=%llu protocol=%llu 200-without-message_id=%llu\n",
               (unsigned long long)connerr, (unsigned long long)proto, (unsigned long long)bad);
        if (first_error[0])
            printf("  first error          %s\n", first_error);
        printf("  durable msg/s        %.0f   (over %.2f s)\n", rate, window_s);
        printf("  latency ms           p50 %.3f  p90 %.3f  p99 %.3f  p99.9 %.3f  max %.3f  mean %.3f\n",
               us_to_ms(hist_pct(&h, 50)), us_to_ms(hist_pct(&h, 90)), us_to_ms(hist_pct(&h, 99)),
               us_to_ms(hist_pct(&h, 99.9)), us_to_ms(h.max_us), h.n ? h.sum_us / (double)h.n / 1000.0 : 0.0);
    }
    printf("RESULT ingest requests=%llu ok=%llu non200=%llu errors=%llu msgs_per_s=%.0f p50_ms=%.3f p90_ms=%.3f "
           "p99_ms=%.3f max_ms=%.3f seconds=%.2f\n",
           (unsigned long long)measured, (unsigned long long)ok, (unsigned long long)non200,
           (unsigned long long)(connerr + proto + bad), rate, us_to_ms(hist_pct(&h, 50)), us_to_ms(hist_pct(&h, 90)),
           us_to_ms(hist_pct(&h, 99)), us_to_ms(h.max_us), window_s);
    free(ts);
    free(conns);
    free(arena);
    free(req_off);
    free(req_len);
    bool complete = opt.requests == 0 || ok_total == (uint64_t)opt.requests;
    return (ok > 0 && complete) ? 0 : 1;
}
