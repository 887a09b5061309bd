/* ratelimit.c - fixed-size table of token buckets. A slot is taken over by
 * a new key when it has refilled completely (an idle client forgets its
 * history), so memory is bounded whatever the number of clients. */
#include "api/ratelimit.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "base/sb.h"

#define SLOTS 16384
#define PROBE 8

typedef struct bucket {
    uint64_t hash;
    double tokens;
    uint64_t last_ms;
} bucket;

struct sb_ratelimit {
    unsigned per_ip, per_token;
    char trusted[256]; /* ",ip1,ip2," */
    bucket *slots;
};

sb_ratelimit *sb_ratelimit_new(unsigned per_ip, unsigned per_token, const char *trusted_proxies)
{
    sb_ratelimit *rl = sb_xcalloc(1, sizeof *rl);
    rl->per_ip = per_ip;
    rl->per_token = per_token;
    size_t n = 0;
    rl->trusted[n++] = ',';
    for (const char *p = trusted_proxies ? trusted_proxies : ""; *p && n + 2 < sizeof rl->trusted; p++)
        if (*p != ' ')
            rl->trusted[n++] = *p;
    rl->trusted[n++] = ',';
    rl->trusted[n] = '\0';
    rl->slots = sb_xcalloc(SLOTS, sizeof *rl->slots);
    return rl;
}

void sb_ratelimit_free(sb_ratelimit *rl)
{
    if (rl == NULL)
        return;
    free(rl->slots);
    free(rl);
}

static uint64_t fnv(const char *z)
{
    uint64_t h = 1469598103934665603ull;
    for (; *z; z++) {
        h ^= (unsigned char)*z;
        h *= 1099511628211ull;
    }
    return h ? h : 1;
}

bool sb_ratelimit_allow_key(sb_ratelimit *rl, const char *key, unsigned rate, uint64_t now_ms, unsigned *retry_after)
{
    if (rate == 0)
        return true;
    double burst = 2.0 * rate;
    uint64_t h = fnv(key);
    bucket *b = NULL, *free_slot = NULL;
    for (int i = 0; i < PROBE; i++) {
        bucket *c = &rl->slots[(h + (uint64_t)i) & (SLOTS - 1)];
        if (c->hash == h) {
            b = c;
            break;
        }
        double refill = c->tokens + (double)(now_ms - c->last_ms) * rate / 1000.0;
        if (free_slot == NULL && (c->hash == 0 || refill >= burst))
            free_slot = c;
    }
    if (b == NULL) {
        /* Table crowded: fail open rather than punish a stranger. */
        if (free_slot == NULL)
            return true;
        b = free_slot;
        b->hash = h;
        b->tokens = burst;
        b->last_ms = now_ms;
    }
    b->tokens += (double)(now_ms - b->last_ms) * rate / 1000.0;
    if (b->tokens > burst)
        b->tokens = burst;
    b->last_ms = now_ms;
    if (b->tokens < 1.0) {
        *retry_after = (unsigned)((1.0 - b->tokens) / rate) + 1;
        return false;
    }
    b->tokens -= 1.0;
    return true;
}

const char *sb_ratelimit_client_ip(const sb_ratelimit *rl, sb_http_req *req, char *buf, size_t cap)
{
    const char *peer = sb_http_req_remote_ip(req);
    char probe[80];
    snprintf(probe, sizeof probe, ",%s,", peer);
    const char *xff = sb_http_req_header(req, "X-Forwarded-For");
    if (xff == NULL || strstr(rl->trusted, probe) == NULL)
        return peer;
    /* The proxy appends the address it saw: the last entry is the one
     * that cannot have been forged by the client. */
    const char *last = strrchr(xff, ',');
    last = last ? last + 1 : xff;
    while (*last == ' ')
        last++;
    size_t len = strcspn(last, " ");
    if (len == 0 || len >= cap)
        return peer;
    memcpy(buf, last, len);
    buf[len] = '\0';
    return buf;
}

bool sb_ratelimit_allow(sb_ratelimit *rl, sb_http_req *req, unsigned *retry_after)
{
    uint64_t now = sb_clock_mono_ms();
    char key[128], ip[64];
    snprintf(key, sizeof key, "ip:%s", sb_ratelimit_client_ip(rl, req, ip, sizeof ip));
    if (!sb_ratelimit_allow_key(rl, key, rl->per_ip, now, retry_after))
        return false;
    const char *auth = sb_http_req_header(req, "Authorization");
    if (auth != NULL) {
        snprintf(key, sizeof key, "tok:%.100s", auth);
        if (!sb_ratelimit_allow_key(rl, key, rl->per_token, now, retry_after))
            return false;
    }
    return true;
}
