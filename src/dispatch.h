/* dispatch.h - the routing engine inside the daemon.
 *
 * The engine (engine/engine.h) is pure; this module is its I/O. At start
 * it loads the configuration and every open ticket from the store and
 * builds the engine's state. While serving, the loop feeds it events (a
 * ticket created, a customer message, an agent's reply, a ticket changed
 * through the API, an agent's presence) and wakes it when its next timer is
 * due. What it decides is written back through the store in one
 * transaction per batch of effects: assignments, queue places, priority,
 * status, tags, team, SLA due times and transitions, notes, presence, each
 * with its event-log row, and published to the agents' stream.
 *
 * Everything here runs on the loop. */
#ifndef SB_DISPATCH_H
#define SB_DISPATCH_H

#include <stdbool.h>
#include <stdint.h>

#include "engine/engine.h"

typedef struct sb_app sb_app;
typedef struct sb_dispatch sb_dispatch;

/* Loads configuration and open tickets (synchronously; call before
 * serving). Returns NULL if the store could not be read. */
sb_dispatch *sb_dispatch_start(sb_app *app);
void sb_dispatch_stop(sb_dispatch *d); /* closes the timer; frees after the loop ends */
void sb_dispatch_free(sb_dispatch *d);

/* Re-reads teams, agents and the configuration documents (after a change
 * through the API or the CLI). */
void sb_dispatch_reload(sb_dispatch *d);

/* A ticket was created (or reopened) by an inbound message: reads what
 * routing needs about it and its contact, then hands it to the engine. */
void sb_dispatch_ticket_created(sb_dispatch *d, int64_t ticket_id, const char *text, bool auto_reply);
/* The same for a first-time customer, when the caller already knows all
 * there is (no owner, no history, not VIP): no read needed. */
void sb_dispatch_ticket_known(sb_dispatch *d, const sb_ticket_info *info, const char *text, bool auto_reply);
/* The blacklist's reason if a message from this sender must not be routed
 * nor answered automatically (contact id, raw phone and email, the
 * channel's handle: API channel from.id or web-chat visitor), else NULL. */
const char *sb_dispatch_blocked(sb_dispatch *d, int64_t contact_id, const char *phone, const char *email,
                                const char *handle);
/* Keeps a blacklisted sender's ticket out of routing: closes it, tags it
 * "blacklisted" and logs the reason. The message itself stays stored. */
void sb_dispatch_quarantine(sb_dispatch *d, int64_t ticket_id, const char *reason);

/* Any other event (customer message, agent reply, status, priority,
 * assignment, presence). */
void sb_dispatch_event(sb_dispatch *d, const sb_event *ev);

/* The engine, to read its live state (the supervisors' dashboard). */
const sb_engine *sb_dispatch_engine(const sb_dispatch *d);

#endif
