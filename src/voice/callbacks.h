/* callbacks.h - the website's call-back requests ("Call me back", issue 5).
 * Runs on the core loop.
 *
 * A visitor leaves their number in the chat widget's form (POST
 * /chat/callback, src/api/callbacks.c). In one transaction the request
 * becomes a row of `callback_request` and, like a missed call, a message of
 * the phone channel on the contact's ticket with a `call_back` task (one
 * open per contact), so agents see it on the ticket and in the missed-calls
 * report; a blacklisted number is stored as `refused` and never dialled.
 * One request per number is pending at a time: another form with the same
 * number joins it (`requests` counts them, a comment becomes a note).
 *
 * The scheduler: once a second, every queued request whose time has come
 * and whose team's business calendar (the team's routing.calendar_id; none:
 * always open) is open is offered to a free agent of the team
 * (sb_calls_free_agent: registered, online, idle; never while callers wait
 * in the team's queue), oldest request first. The call is click-to-call's
 * (sb_outbound_place: the agent's phone first, then the customer through
 * the [trunk] with the caller ID outbound.c picks). At the hang-up:
 *   - answered: the request is done (the call log's transaction closes the
 *     contact's call-back tasks);
 *   - the agent never picked up: no attempt is counted; another agent (not
 *     that one, for a minute) gets it;
 *   - busy, no answer, failed: an attempt; the next after retry_seconds
 *     (within business hours), and after max_attempts the request is
 *     `failed` with a note on the ticket, whose task stays open.
 * The settings are the web chat channel's config.callback ({"team_id",
 * "max_attempts", "retry_seconds"}), copied into each request when it is
 * made. Pending requests are read back from the store at start (one that
 * was `calling` when the daemon stopped is queued again). */
#ifndef SB_VOICE_CALLBACKS_H
#define SB_VOICE_CALLBACKS_H

#include <jansson.h>

#include "app.h"
#include "voice/calltickets.h"
#include "voice/voice.h"

typedef struct sb_callbacks sb_callbacks;

#define SB_CALLBACK_DEFAULT_ATTEMPTS 3
#define SB_CALLBACK_MAX_ATTEMPTS     10
#define SB_CALLBACK_DEFAULT_RETRY_S  600
#define SB_CALLBACK_MIN_RETRY_S      5
#define SB_CALLBACK_MAX_RETRY_S      86400

/* Starts the scheduler (voice must be on: app->calls); loads the pending
 * requests from the store. */
sb_callbacks *sb_callbacks_start(sb_app *app);
/* No new call after this (the hang-ups of calls under way still count). */
void sb_callbacks_stop(sb_callbacks *cb);
/* After the store has closed. NULL is fine. */
void sb_callbacks_free(sb_callbacks *cb);
/* Whether a client address may send another form: at most
 * SB_CALLBACK_PER_WINDOW per SB_CALLBACK_WINDOW_MS (a form calls a phone:
 * the general per-IP limit is far too generous for that). */
#define SB_CALLBACK_PER_WINDOW 10
#define SB_CALLBACK_WINDOW_MS  600000
bool sb_callbacks_allow(sb_callbacks *cb, const char *ip, int64_t now_ms);
/* Reads the teams' calendars again (a configuration change). NULL-safe. */
void sb_callbacks_reload(sb_callbacks *cb);
/* Forgets request `id` (cancelled through the API); a call under way goes on. */
void sb_callbacks_forget(sb_callbacks *cb, int64_t id);

/* A channel's config.callback checked: 0 with the settings, SB_ENOTFOUND
 * when the channel has none (the form is off), SB_EINVAL with `field` and
 * `msg` when it is wrong. */
typedef struct sb_callback_settings {
    int64_t team_id;
    int max_attempts;
    int retry_seconds;
} sb_callback_settings;
int sb_callback_settings_parse(const json_t *channel_config, sb_callback_settings *out, char *field, size_t field_cap,
                               char *msg, size_t msg_cap);

/* What the form asks (validated on the loop; strings NUL-terminated). */
typedef struct sb_callback_form {
    int64_t channel_id;
    char phone[SB_VOICE_EXT_MAX]; /* E.164 */
    char name[256];
    char comment[1024];
    char lang[17];
    int64_t reopen_window_ms; /* [tickets] reopen_window_days */
    bool want_events;         /* an agent stream listens: build the live events */
} sb_callback_form;

typedef enum sb_callback_outcome {
    SB_CALLBACK_QUEUED, /* a new request */
    SB_CALLBACK_JOINED, /* the number's pending request */
    SB_CALLBACK_REFUSED /* blacklisted: stored, never dialled */
} sb_callback_outcome;

/* What the form's transaction did. */
typedef struct sb_callback_made {
    sb_callback_outcome outcome;
    int status; /* 0, or the HTTP status of a refusal before anything was stored */
    const char *code;
    char msg[200];
    int64_t id, team_id, contact_id, ticket_id, ticket_number, task_id;
    int64_t next_attempt_at; /* wall ms; INT64_MAX: the calendar has no hours ahead */
    bool within_hours;       /* the team's calendar is open now */
    int attempts, max_attempts, retry_seconds;
    char status_text[16]; /* the row's status ("queued", "calling", "refused") */
    char phone[SB_VOICE_EXT_MAX];
    bool en;
    char caller_id[SB_VOICE_EXT_MAX];
    char contact_name[128];
    sb_call_ticket ticket; /* the ticket and task made, for after the commit */
} sb_callback_made;

/* The form's transaction script (the store thread): see the top. */
int sb_callback_form_run(sb_tx *tx, const sb_callback_form *f, sb_callback_made *out);
/* On the loop after the commit: routes the ticket, hands the task to the
 * engine, publishes the events and queues a new request. */
void sb_callback_form_after(sb_app *app, sb_callback_made *m);
/* When the commit failed. */
void sb_callback_form_discard(sb_callback_made *m);

#endif
