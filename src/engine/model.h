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
    /* Leave the message.created event to the caller, who builds it on the
     * loop with sb_inbound_message_json (the store thread is the
     * bottleneck of ingest; the loop has time to spare). */
    bool defer_message_event;
} sb_inbound;

typedef struct sb_ingest_result {
    int64_t contact_id;
    int64_t ticket_id;
    int64_t ticket_number;
    int64_t message_id;
    bool duplicate;
    bool ticket_created;
    bool contact_created; /* a first-time customer: nothing more to know about them */
    int64_t created_at;   /* the new message's time (ms) */
    int csat_score;       /* the survey answer this message gave (1-5); 0 = none */
} sb_ingest_result;

/* Stores an inbound message. The live events (contact.created,
 * ticket.created/updated, message.created) are appended to `events`; with
 * events NULL (no agent stream listening) they are not even built. */
int sb_ingest(sb_tx *tx, const sb_inbound *in, sb_ingest_result *res, json_t *events);
/* The message.created data of an ingested message, as a read of the row
 * would give it; `attachments` (borrowed) is what was stored, or NULL. Pure:
 * safe on any thread. */
json_t *sb_inbound_message_json(const sb_inbound *in, const sb_ingest_result *res, json_t *attachments);

/* A customer's answer to the satisfaction survey: 1-5 as the message's
 * first word ("5", "4 - ok", "5/5 спасибо"), the rest as *comment (or
 * NULL). 0 if the message is not a rating. Pure. */
int sb_csat_rating(const char *text, const char **comment);

/* Normalisers: 0 on success with the canonical form in out. */
int sb_phone_normalize(const char *raw, const char *default_cc, char *out, size_t cap);
int sb_email_normalize(const char *raw, char *out, size_t cap);

/* The SELECTs whose rows sb_ticket_row_json / sb_message_row_json read;
 * append "WHERE ..." (and ORDER BY) to them. */
#define SB_TICKET_SELECT                                                                                               \
    "SELECT t.id, t.number, t.contact_id, t.channel_id, t.subject, t.status, t.priority, t.team_id, "                  \
    "t.assignee_id, t.tags, t.attributes, t.created_at, t.updated_at, t.last_message_at, t.first_response_at, "        \
    "t.resolved_at, t.closed_at, c.name, ch.kind, t.sla, t.csat_score, t.csat_comment, t.csat_at, "                    \
    "t.csat_requested_at FROM ticket t JOIN contact c ON c.id = t.contact_id "                                         \
    "LEFT JOIN channel ch ON ch.id = t.channel_id "
#define SB_MESSAGE_SELECT                                                                                              \
    "SELECT m.id, m.ticket_id, m.channel_id, m.direction, m.author_agent_id, m.author_contact_id, m.text, "            \
    "m.attachments, m.delivery_status, m.delivery_error, m.external_id, m.created_at, m.updated_at, a.name, "          \
    "t.number, m.client_id, m.sent_at FROM message m JOIN ticket t ON t.id = m.ticket_id "                             \
    "LEFT JOIN agent a ON a.id = m.author_agent_id "
json_t *sb_ticket_row_json(sb_stmt *s);
json_t *sb_message_row_json(sb_stmt *s);

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

/* Indexes the messages inserted since the last call for full-text search.
 * Every search calls it first, so search always sees every committed
 * message. */
int sb_model_index_text(sb_tx *tx, void *arg);

/* The store's pre-commit script: indexes in chunks, when at least
 * SB_TEXT_INDEX_CHUNK messages wait or the oldest has waited
 * SB_TEXT_INDEX_DELAY_MS. FTS5 writes one segment (and later merges it)
 * per call, so one call per 64-message batch cost 10% of ingest
 * throughput; the searches' own catch-up keeps results complete. `arg` is
 * an sb_text_indexer, used only on the store thread. */
#define SB_TEXT_INDEX_CHUNK    2048
#define SB_TEXT_INDEX_DELAY_MS 1000
typedef struct sb_text_indexer {
    int64_t waiting_since; /* ms; 0 = nothing waits */
} sb_text_indexer;
int sb_model_index_text_lazily(sb_tx *tx, void *arg);

/* Ticket status / priority vocabulary. */
bool sb_ticket_status_valid(const char *z);
bool sb_ticket_priority_valid(const char *z);

/* A JSON string, or null for NULL. */
json_t *sb_json_text(const char *z);

/* ISO-8601 string for a stored ms timestamp; json null for 0/NULL. */
json_t *sb_json_time(int64_t ms);

#endif
