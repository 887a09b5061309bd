/* ratelimit.h - token buckets per client IP and per API token. */
#ifndef SB_RATELIMIT_H
#define SB_RATELIMIT_H

#include <stdbool.h>

#include "http/http.h"

typedef struct sb_ratelimit sb_ratelimit;

/* rate 0 disables that dimension. Burst is twice the rate. */
sb_ratelimit *sb_ratelimit_new(unsigned per_ip, unsigned per_token);
void sb_ratelimit_free(sb_ratelimit *rl);
/* Takes one token from the caller's buckets; false (and seconds to wait in
 * *retry_after) when empty. */
bool sb_ratelimit_allow(sb_ratelimit *rl, sb_http_req *req, unsigned *retry_after);
/* The same for a key of the caller's choice (e.g. chat visitor). */
bool sb_ratelimit_allow_key(sb_ratelimit *rl, const char *key, unsigned rate, uint64_t now_ms, unsigned *retry_after);

#endif
