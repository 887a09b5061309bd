/* ratelimit.h - token buckets per client IP and per API token. */
#ifndef SB_RATELIMIT_H
#define SB_RATELIMIT_H

#include <stdbool.h>

#include "http/http.h"

typedef struct sb_ratelimit sb_ratelimit;

/* rate 0 disables that dimension. Burst is twice the rate. Requests from a
 * peer listed in `trusted_proxies` (comma-separated IPs, may be NULL) are
 * counted against the client named last in their X-Forwarded-For. */
sb_ratelimit *sb_ratelimit_new(unsigned per_ip, unsigned per_token, const char *trusted_proxies);
/* The address a request is counted (and logged) under; `buf` 64 bytes. */
const char *sb_ratelimit_client_ip(const sb_ratelimit *rl, sb_http_req *req, char *buf, size_t cap);
void sb_ratelimit_free(sb_ratelimit *rl);
/* Takes one token from the caller's buckets; false (and seconds to wait in
 * *retry_after) when empty. */
bool sb_ratelimit_allow(sb_ratelimit *rl, sb_http_req *req, unsigned *retry_after);
/* The same for a key of the caller's choice (e.g. chat visitor). */
bool sb_ratelimit_allow_key(sb_ratelimit *rl, const char *key, unsigned rate, uint64_t now_ms, unsigned *retry_after);

#endif
