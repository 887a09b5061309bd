/* api_inbound.h - parsing and validation of an API channel's inbound
 * message (pure: no I/O, so it can be fuzzed). */
#ifndef SB_API_INBOUND_H
#define SB_API_INBOUND_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

typedef struct sb_api_inbound {
    json_t *root; /* owns every string below */
    const char *external_id;
    const char *text;                           /* "" when absent */
    const char *from_id, *name, *phone, *email; /* NULL when absent or empty */
    json_t *attachments;                        /* validated array (borrowed from root) or NULL */
    int64_t timestamp;                          /* ms, 0 when absent */
    bool auto_reply; /* the sender says it was sent automatically (an autoresponder): never answered automatically */
    /* on failure */
    int status; /* 400 or 422 */
    char code[32];
    char message[200];
} sb_api_inbound;

/* 0 on success; otherwise -1 with status/code/message set. */
int sb_api_inbound_parse(const char *body, size_t len, sb_api_inbound *out);
void sb_api_inbound_free(sb_api_inbound *in);

#endif
