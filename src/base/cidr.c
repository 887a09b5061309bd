/* cidr.c - address lists (see cidr.h). */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "base/cidr.h"
#include "base/sb.h"

#define SEPARATORS ", \t"

/* One entry "ADDR" or "ADDR/BITS" (len bytes of s). */
static int parse_one(const char *s, size_t len, sb_cidr *out)
{
    char buf[64];
    if (len == 0 || len >= sizeof buf)
        return SB_EINVAL;
    memcpy(buf, s, len);
    buf[len] = '\0';
    char *slash = strchr(buf, '/');
    unsigned max = 0, bits = 0;
    if (slash != NULL)
        *slash = '\0';
    memset(out, 0, sizeof *out);
    if (inet_pton(AF_INET, buf, out->addr) == 1) {
        max = 32;
    } else if (inet_pton(AF_INET6, buf, out->addr) == 1) {
        max = 128;
        out->v6 = true;
    } else {
        return SB_EINVAL;
    }
    bits = max;
    if (slash != NULL) {
        const char *b = slash + 1;
        if (b[0] == '\0' || strspn(b, "0123456789") != strlen(b) || strlen(b) > 3)
            return SB_EINVAL;
        bits = (unsigned)strtoul(b, NULL, 10);
        if (bits > max)
            return SB_EINVAL;
    }
    out->bits = (uint8_t)bits;
    /* host bits must be clear: "10.1.2.3/8" is a typo more often than not */
    for (unsigned i = bits; i < max; i++)
        if (out->addr[i / 8] & (0x80u >> (i % 8)))
            return SB_EINVAL;
    return 0;
}

int sb_cidr_parse_list(const char *s, sb_cidr *out, size_t cap, size_t *n)
{
    *n = 0;
    while (*s != '\0') {
        s += strspn(s, SEPARATORS);
        size_t len = strcspn(s, SEPARATORS);
        if (len == 0)
            break;
        if (*n == cap || parse_one(s, len, &out[*n]) != 0)
            return SB_EINVAL;
        (*n)++;
        s += len;
    }
    return 0;
}

static bool prefix_equal(const uint8_t *a, const uint8_t *b, unsigned bits)
{
    unsigned whole = bits / 8, rest = bits % 8;
    if (memcmp(a, b, whole) != 0)
        return false;
    if (rest == 0)
        return true;
    uint8_t mask = (uint8_t)(0xffu << (8 - rest));
    return (a[whole] & mask) == (b[whole] & mask);
}

bool sb_cidr_match(const sb_cidr *list, size_t n, const struct sockaddr *sa)
{
    uint8_t v4[4], v6[16];
    bool have4 = false, have6 = false;
    if (sa->sa_family == AF_INET) {
        memcpy(v4, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, 4);
        have4 = true;
    } else if (sa->sa_family == AF_INET6) {
        const struct in6_addr *a = &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr;
        memcpy(v6, a, 16);
        have6 = true;
        if (IN6_IS_ADDR_V4MAPPED(a)) {
            memcpy(v4, v6 + 12, 4);
            have4 = true;
        }
    }
    for (size_t i = 0; i < n; i++) {
        const sb_cidr *c = &list[i];
        if (c->v6 ? have6 && prefix_equal(c->addr, v6, c->bits) : have4 && prefix_equal(c->addr, v4, c->bits))
            return true;
    }
    return false;
}
