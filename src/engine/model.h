/* model.h - the ticket model as transaction scripts: contacts and their
 * identities, tickets, messages and the append-only event log.
 *
 * Every function here runs inside a store transaction (sb_tx) and appends
 * the change events it causes to `events` (a JSON array of
 * {"type":..., "data":...}) which the caller broadcasts after commit. */
#ifndef SB_MODEL_H
#define SB_MODEL_H

#include <jansson.h>

#include "base/sb.h"
#include "store/store.h"

typedef struct sb_actor {
    const char *kind; /* "agent", "contact", "system" */
    int64_t id;
} sb_actor;

/* A normalised inbound message from any channel. */
typedef struct sb_inbound {
    int64_t channel_id;
    const char *channel_kind; /* "api", "webchat", ... */
    const char *external_id;  /* unique per channel; NULL if none */
    const char *client_id;    /* the sender's own id for the message (webchat) */
    const char *from_id;      /* channel-scoped sender id (api: from.id) */
    const char *visitor_id;   /* webchat visitor */
    const char *name;
    const char *phone; /* raw, normalised here */
    const char *email; /* raw, normalised here */
    const char *text;
    json_t *attachments; /* array of {name,mime,size,sha256|url}; borrowed */
    int64_t timestamp;   /* sender's time (ms) or 0 */
    int64_t reopen_window_ms;
    const char *default_country_code; /* "7" */
} sb_inbound;

typedef struct sb_ingest_result {
    int64_t contact_id;
    int64_t ticket_id;
    int64_t ticket_number;
    int64_t message_id;
    bool duplicate;
    bool ticket_created;
} sb_ingest_result;

int sb_ingest(sb_tx *tx, const sb_inbound *in, sb_ingest_result *res, json_t *events);

/* Normalisers: 0 on success with the canonical form in out. */
int sb_phone_normalize(const char *raw, const char *default_cc, char *out, size_t cap);
int sb_email_normalize(const char *raw, char *out, size_t cap);

/* Rows as JSON (NULL if not found). */
json_t *sb_ticket_json(sb_tx *tx, int64_t ticket_id);
json_t *sb_message_json(sb_tx *tx, int64_t message_id);
json_t *sb_contact_json(sb_tx *tx, int64_t contact_id);
int64_t sb_ticket_id_by_number(sb_tx *tx, int64_t number);

/* Appends to the event log and to `events` (if not NULL) for broadcast. */
int sb_event_log(sb_tx *tx, sb_actor actor, const char *entity, int64_t entity_id, const char *type,
                 json_t *data /* stolen */);
void sb_emit(json_t *events, const char *type, json_t *data /* stolen */);

/* Follows merged_into links to the surviving contact. */
int64_t sb_contact_resolve(sb_tx *tx, int64_t contact_id);

/* Adds identity (kind, scope, address) to the contact unless someone owns it. */
int sb_identity_attach(sb_tx *tx, int64_t contact_id, const char *kind, int64_t scope, const char *address);

/* Indexes the messages inserted since the last call for full-text search;
 * registered as the store's pre-commit script, so a batch's messages are
 * searchable exactly when they are committed. */
int sb_model_index_text(sb_tx *tx, void *arg);

/* Ticket status / priority vocabulary. */
bool sb_ticket_status_valid(const char *z);
bool sb_ticket_priority_valid(const char *z);

/* A JSON string, or null for NULL. */
json_t *sb_json_text(const char *z);

/* ISO-8601 string for a stored ms timestamp; json null for 0/NULL. */
json_t *sb_json_time(int64_t ms);

#endif
