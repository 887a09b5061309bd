/* outbox.h - durable at-least-once delivery of outbound HTTP callbacks.
 *
 * A reply to an API-channel ticket inserts an outbox row in the same
 * transaction as the message. After commit the outbox is poked; it POSTs the
 * body, signed with the channel's secret, to the channel's callback URL with
 * libcurl (multi interface driven by the core loop). Failures are retried
 * with exponential backoff (Retry-After honoured); the message's delivery
 * status becomes sent or failed and a message.updated event is published.
 * Rows survive restarts: pending rows are picked up again at start. */
#ifndef SB_OUTBOX_H
#define SB_OUTBOX_H

#include "app.h"
#include "store/store.h"

sb_outbox *sb_outbox_new(sb_app *app);
void sb_outbox_start(sb_outbox *ob);
void sb_outbox_poke(sb_outbox *ob);
/* Aborts transfers in flight (they stay pending in the store) and closes
 * handles; cb runs when everything is closed. */
void sb_outbox_close(sb_outbox *ob, void (*cb)(void *), void *arg);
void sb_outbox_free(sb_outbox *ob);
unsigned sb_outbox_inflight(const sb_outbox *ob);

/* Inside a transaction: queue `body` for the channel's callback URL.
 * If the channel has no callback URL the message is marked failed instead. */
int sb_outbox_enqueue(sb_tx *tx, int64_t channel_id, int64_t message_id, const char *body);
/* A rule's webhook: POSTed to `url`, signed with the installation's webhook
 * secret (setting webhook_secret, `switchboard config webhook-secret`), retried
 * like a callback. `channel_id` is the ticket's channel (for the records). */
int sb_outbox_enqueue_webhook(sb_tx *tx, int64_t channel_id, const char *url, const char *body);

/* Backoff before attempt n+1 (n >= 1 failures so far), ms, without jitter. */
int64_t sb_outbox_backoff_ms(unsigned failures);

#endif
