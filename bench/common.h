/* common.h - pieces shared by the benchmark programs: monotonic time, a
 * log-linear latency histogram, URL parsing, request signing, sockets.
 * Header-only (static inline) so each bench_* stays one translation unit. */
#ifndef SB_BENCH_COMMON_H
#define SB_BENCH_COMMON_H

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sodium.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BENCH_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

static inline uint64_t bench_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static inline void *bench_xcalloc(size_t n, size_t size)
{
    void *p = calloc(n, size);
    if (p == NULL) {
        fprintf(stderr, "bench: out of memory\n");
        exit(1);
    }
    return p;
}

static inline void *bench_xrealloc(void *p, size_t size)
{
    void *q = realloc(p, size);
    if (q == NULL) {
        fprintf(stderr, "bench: out of memory\n");
        exit(1);
    }
    return q;
}

/* ---- histogram ----
 * Values in microseconds. Below 128 us every value has its own bucket; above,
 * each power of two is split into 64 buckets, so a reported percentile is at
 * most ~1.6% above the true value (we report the bucket's upper bound). */
#define HIST_SUB     64
#define HIST_BUCKETS (HIST_SUB * 42)

typedef struct bench_hist {
    uint64_t counts[HIST_BUCKETS];
    uint64_t n;
    uint64_t max_us;
    uint64_t min_us;
    double sum_us;
} bench_hist;

static inline void hist_init(bench_hist *h)
{
    memset(h, 0, sizeof *h);
    h->min_us = UINT64_MAX;
}

static inline size_t hist_index(uint64_t v)
{
    if (v < 2 * HIST_SUB)
        return (size_t)v;
    int msb = 63 - __builtin_clzll(v);
    int e = msb - 6; /* v >> e lands in [64, 128) */
    size_t idx = (size_t)HIST_SUB * (size_t)e + (size_t)(v >> e);
    return idx < HIST_BUCKETS ? idx : HIST_BUCKETS - 1;
}

static inline uint64_t hist_upper(size_t idx)
{
    if (idx < 2 * HIST_SUB)
        return idx;
    size_t e = idx / HIST_SUB - 1;
    uint64_t m = idx - HIST_SUB * e;
    return ((m + 1) << e) - 1;
}

static inline void hist_add(bench_hist *h, uint64_t us)
{
    h->counts[hist_index(us)]++;
    h->n++;
    h->sum_us += (double)us;
    if (us > h->max_us)
        h->max_us = us;
    if (us < h->min_us)
        h->min_us = us;
}

static inline void hist_merge(bench_hist *into, const bench_hist *from)
{
    for (size_t i = 0; i < HIST_BUCKETS; i++)
        into->counts[i] += from->counts[i];
    into->n += from->n;
    into->sum_us += from->sum_us;
    if (from->max_us > into->max_us)
        into->max_us = from->max_us;
    if (from->min_us < into->min_us)
        into->min_us = from->min_us;
}

/* Percentile in microseconds (bucket upper bound, capped at the true max). */
static inline uint64_t hist_pct(const bench_hist *h, double pct)
{
    if (h->n == 0)
        return 0;
    uint64_t want = (uint64_t)((pct / 100.0) * (double)h->n + 0.999999);
    if (want == 0)
        want = 1;
    uint64_t seen = 0;
    for (size_t i = 0; i < HIST_BUCKETS; i++) {
        seen += h->counts[i];
        if (seen >= want) {
            uint64_t v = hist_upper(i);
            return v > h->max_us ? h->max_us : v;
        }
    }
    return h->max_us;
}

static inline double us_to_ms(uint64_t us)
{
    return (double)us / 1000.0;
}

/* ---- URL, signing, sockets ---- */

typedef struct bench_url {
    char host[256];
    char port[8];
    char hostport[270]; /* for the Host header */
} bench_url;

/* Accepts http://HOST:PORT[/] (HOST may be [v6]). */
static inline int bench_parse_url(const char *url, bench_url *out)
{
    memset(out, 0, sizeof *out);
    if (strncmp(url, "http://", 7) != 0)
        return -1;
    const char *p = url + 7;
    const char *end = p + strcspn(p, "/");
    if ((size_t)(end - p) >= sizeof out->hostport)
        return -1;
    memcpy(out->hostport, p, (size_t)(end - p));
    const char *colon = strrchr(out->hostport, ':');
    const char *close = strrchr(out->hostport, ']');
    if (colon == NULL || (close != NULL && colon < close)) {
        snprintf(out->port, sizeof out->port, "80");
        colon = out->hostport + strlen(out->hostport);
    } else {
        snprintf(out->port, sizeof out->port, "%s", colon + 1);
    }
    const char *h = out->hostport;
    size_t hl = (size_t)(colon - h);
    if (hl >= 2 && h[0] == '[' && h[hl - 1] == ']') {
        h++;
        hl -= 2;
    }
    if (hl == 0 || hl >= sizeof out->host)
        return -1;
    memcpy(out->host, h, hl);
    return 0;
}

static inline int bench_resolve(const bench_url *u, struct sockaddr_storage *sa, socklen_t *salen)
{
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_socktype = SOCK_STREAM;
    int rc = getaddrinfo(u->host, u->port, &hints, &res);
    if (rc != 0 || res == NULL) {
        fprintf(stderr, "bench: cannot resolve %s:%s: %s\n", u->host, u->port, gai_strerror(rc));
        return -1;
    }
    memcpy(sa, res->ai_addr, res->ai_addrlen);
    *salen = res->ai_addrlen;
    freeaddrinfo(res);
    return 0;
}

/* Header value: sha256=<hex HMAC-SHA256(body) keyed with the secret's bytes>. */
static inline void bench_sign(const char *secret, const char *body, size_t len, char out[72])
{
    crypto_auth_hmacsha256_state st;
    unsigned char mac[crypto_auth_hmacsha256_BYTES];
    crypto_auth_hmacsha256_init(&st, (const unsigned char *)secret, strlen(secret));
    crypto_auth_hmacsha256_update(&st, (const unsigned char *)body, len);
    crypto_auth_hmacsha256_final(&st, mac);
    memcpy(out, "sha256=", 7);
    sodium_bin2hex(out + 7, 65, mac, sizeof mac);
}

static inline void bench_nodelay(int fd)
{
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

static inline rlim_t bench_raise_nofile(rlim_t want)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return 0;
    if (rl.rlim_cur < want) {
        rl.rlim_cur = want < rl.rlim_max ? want : rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
        getrlimit(RLIMIT_NOFILE, &rl);
    }
    return rl.rlim_cur;
}

/* A unique-enough tag so repeated runs against one database never reuse an
 * external_id or a "new" contact id. */
static inline void bench_run_tag(char out[17])
{
    unsigned char r[8];
    randombytes_buf(r, sizeof r);
    sodium_bin2hex(out, 17, r, sizeof r);
}

/* Option values: the whole string must be a number; exits on junk. */
static inline long bench_opt_long(const char *name, const char *v)
{
    char *end = NULL;
    errno = 0;
    long n = strtol(v, &end, 10);
    if (v[0] == '\0' || *end != '\0' || errno != 0) {
        fprintf(stderr, "bench: --%s wants an integer, not '%s'\n", name, v);
        exit(2);
    }
    return n;
}

static inline double bench_opt_double(const char *name, const char *v)
{
    char *end = NULL;
    errno = 0;
    double d = strtod(v, &end);
    if (v[0] == '\0' || *end != '\0' || errno != 0) {
        fprintf(stderr, "bench: --%s wants a number, not '%s'\n", name, v);
        exit(2);
    }
    return d;
}

/* The status code of an "HTTP/1.x NNN ..." status line, -1 if malformed. */
static inline int bench_http_status(const char *line)
{
    if (strncmp(line, "HTTP/1.", 7) != 0 || line[8] != ' ')
        return -1;
    char *end = NULL;
    long n = strtol(line + 9, &end, 10);
    return end == line + 12 && n >= 100 && n <= 999 ? (int)n : -1;
}

static inline const char *bench_memmem_z(const char *hay, size_t len, const char *needle)
{
    return memmem(hay, len, needle, strlen(needle));
}

#endif
