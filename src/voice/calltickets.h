/* calltickets.h - calls on the customer's card and ticket.
 *
 * When the call log writes a call row (calls.c, cdr_run), an inbound call
 * from a customer is also ingested as a message of the phone channel, with
 * the caller's number as the contact's phone identity, exactly as a chat
 * message would be: it joins the contact's open ticket, reopens a recently
 * resolved one or opens a new one. The message says what happened
 * ("Пропущенный звонок (очередь «Продажи», ожидание 0:35)", "Inbound call,
 * 2:14, answered by Anna", "Голосовое сообщение, 0:42") in the contact's
 * language, else the number's; a recording is attached as audio/wav served
 * by GET /api/v1/calls/{id}/recording.
 *
 * A missed call (missed, abandoned, busy, voicemail) leaves a `call_back`
 * task on that ticket, due in the setting missed_call_callback_minutes
 * (15), for the ticket's assignee or, with none, for the team to see; a
 * contact has at most one open call-back task, so a second missed call
 * only adds a note. An answered call (the customer got through) closes the
 * contact's open call-back tasks, as an answered outbound call will.
 *
 * The run side executes inside the call log's transaction, on the store
 * thread, within a savepoint of its own: whatever fails here is logged and
 * rolled back alone, and the call row stays. The after side runs on the
 * loop once that transaction is durable: routing, the engine's task
 * timers and the agents' stream. */
#ifndef SB_VOICE_CALLTICKETS_H
#define SB_VOICE_CALLTICKETS_H

#include <jansson.h>

#include "app.h"
#include "engine/engine.h"
#include "engine/model.h"
#include "store/store.h"

/* What the call log knows about an ended inbound call (strings borrowed). */
typedef struct sb_call_facts {
    int64_t call_id; /* its row, already inserted in this transaction */
    const char *from;
    const char *status;   /* as stored: answered, missed, abandoned, busy, voicemail, failed */
    const char *language; /* the number's (the IVR's) language, "" if none */
    int64_t queue_team_id, agent_id;
    int64_t offered_at, answered_at, ended_at; /* wall ms; answered_at 0 = never */
    int64_t talk_ended_at;                     /* the agent hung up before the call's end (a rating); 0: none */
    const char *period;                        /* business_hours, after_hours, holiday; NULL: unknown */
    int64_t callback_from;                     /* a call-back's deadline counts from here if later than the end */
    const char *recording;                     /* relative to data_dir; NULL or "" = none */
    int64_t recording_ms;
    const char *data_dir;
    int64_t reopen_window_ms;
    bool want_events; /* an agent stream listened when the call ended */
} sb_call_facts;

/* What the run did, for the loop after the commit. */
typedef struct sb_call_ticket {
    bool ingested;
    sb_ingest_result res;
    char phone[40];    /* the caller's E.164 number, "" if not one */
    char text[256];    /* the message's text (the engine's rules see it) */
    sb_task_info task; /* the call-back task created (id 0: none) */
    int64_t *done;     /* call-back tasks closed (malloc'd) */
    size_t ndone;
    json_t *events; /* for the agents' stream; NULL when nobody listens */
    int64_t at;     /* the transaction's time */
} sb_call_ticket;

/* Whether an agent stream listens now (the run builds live events only then). */
bool sb_call_ticket_want_events(sb_app *app);
/* Runs inside the call log's transaction. Always 0 unless the savepoint
 * itself fails: a failure of the ticket work is logged and undone alone. */
int sb_call_ticket_run(sb_tx *tx, const sb_call_facts *f, sb_call_ticket *out);
/* On the loop after the commit: routes the ticket, hands the tasks to the
 * engine, publishes the events (which it takes). */
void sb_call_ticket_after(sb_app *app, sb_call_ticket *t);
/* Releases what the run left when the commit failed. */
void sb_call_ticket_discard(sb_call_ticket *t);

/* Marks the contact's open call-back tasks done: call `call_id` reached
 * them (an inbound call answered by a person, or an answered outbound
 * call). Each closed task gets an event-log row naming the call and a
 * task.updated event in out->events; its id goes to out->done for the
 * engine. 0 or a store error. */
int sb_call_close_callbacks(sb_tx *tx, int64_t contact_id, int64_t call_id, sb_call_ticket *out);

/* An outbound call (outbound.c), as the ticket timeline shows it. */
typedef struct sb_call_out_facts {
    int64_t call_id;                         /* its row, already inserted in this transaction */
    int64_t agent_id, contact_id, ticket_id; /* ticket 0: the contact's latest */
    const char *status;                      /* answered, busy, missed, failed */
    int64_t answered_at, ended_at;
    const char *recording; /* relative to data_dir; NULL or "" = none */
    int64_t recording_ms;
    const char *data_dir;
} sb_call_out_facts;

/* Puts an outbound call on the customer's ticket (the call's, else the
 * contact's latest) as a message of the agent's on the phone channel,
 * direction out, never delivered anywhere: "Исходящий звонок, 2:14,
 * звонил(а) Анна" / "Outbound call, busy", in the contact's language, the
 * recording attached; and ties the call row to that ticket. Nothing when
 * the customer has no ticket or the phone channel is off. Inside the
 * caller's transaction, in a savepoint: a failure leaves the call row.
 * `events` (may be NULL) gets message.created. */
int sb_call_ticket_outbound(sb_tx *tx, const sb_call_out_facts *f, json_t *events);

/* The phone channel's id (the oldest 'phone' row), made ("Телефон",
 * active) when there is none; *active says whether calls go on tickets. */
int sb_call_phone_channel(sb_tx *tx, int64_t *id, bool *active);
/* Makes sure the phone channel exists (at start, when voice is on). */
void sb_call_tickets_start(sb_app *app);

/* A recording's stored path is relative to the data directory, without
 * ".." components, control characters or backslashes. (The download also
 * resolves symbolic links and refuses a file outside the directory.) */
bool sb_call_recording_path_valid(const char *rel);

#endif
