/* cidr.h - address lists: "203.0.113.7, 198.51.100.0/24, 2001:db8::/32".
 *
 * Used where a peer is trusted by its address, such as the SIP trunk's
 * allow-list ([trunk] allow). An IPv4 entry also matches the IPv4-mapped
 * IPv6 form of its addresses (::ffff:a.b.c.d), which is how a dual-stack
 * socket reports an IPv4 peer. A bare address is a /32 (or /128). */
#ifndef SB_BASE_CIDR_H
#define SB_BASE_CIDR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct sockaddr;

/* the most entries a configured list holds */
#define SB_CIDR_LIST_MAX 32

typedef struct sb_cidr {
    uint8_t addr[16]; /* IPv4 in the first 4 bytes; host bits cleared */
    uint8_t bits;     /* prefix length: 0..32 (IPv4) or 0..128 (IPv6) */
    bool v6;
} sb_cidr;

/* Parses a list separated by commas and/or spaces into out[0..cap). 0 with
 * *n set, or SB_EINVAL (a bad entry, a prefix too long, host bits set, or
 * more than cap entries); "" is an empty list. */
int sb_cidr_parse_list(const char *s, sb_cidr *out, size_t cap, size_t *n);
/* Whether sa (AF_INET or AF_INET6) is inside one of the n entries. */
bool sb_cidr_match(const sb_cidr *list, size_t n, const struct sockaddr *sa);

#endif
