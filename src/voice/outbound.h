/* outbound.h - outbound calls through the SIP trunk: click-to-call and
 * call-back. Runs on the core loop.
 *
 * POST /api/v1/calls (src/api/outbound.c) places a call for an agent: the
 * voice thread rings the agent's phone first (every registered device; it
 * shows the customer's number and name), and once they pick up it dials
 * the customer through the [trunk] and bridges the two
 * (sb_voice_originate). The caller ID is the DID the customer last called
 * us on (their latest inbound call row), else [trunk] from_number.
 *
 * Ids: the voice thread names an originated call by the id the core gives
 * it, SB_VOICE_ORIGINATE_BIT | live id. The live id (1, 2, ... from the
 * start of the process) is what the API returns and what
 * DELETE /api/v1/calls/{live id} takes; it stays small so that a browser's
 * JSON numbers hold it exactly. calls.c hands every event whose call id has
 * the bit to sb_outbound_on_event.
 *
 * At the hang-up a row of the call log is written (direction 'out', from
 * the caller ID, to the customer's E.164 number; status answered, busy
 * (486/600/603), missed (no answer: 408/480/487, or given up while it
 * rang), failed (the agent never picked up, the trunk refused...);
 * hangup_by agent, customer or system) with its agent, contact and ticket.
 * When the customer answered, the same transaction closes the contact's
 * open call-back tasks (sb_call_close_callbacks): calling the customer back
 * closes the loop. */
#ifndef SB_VOICE_OUTBOUND_H
#define SB_VOICE_OUTBOUND_H

#include <jansson.h>

#include "app.h"
#include "voice/voice.h"

typedef struct sb_outbound sb_outbound;

/* Copies [trunk] into the voice thread's options (before it starts). */
void sb_outbound_voice_options(const sb_config *cfg, sb_voice_options *opt);
sb_outbound *sb_outbound_new(sb_app *app, sb_calls *calls, sb_voice *voice);
/* Calls still listed are dropped unlogged (the voice thread has stopped:
 * their hangups came before this, so normally there are none). */
void sb_outbound_free(sb_outbound *o);
/* An event of an originated call (call_id has SB_VOICE_ORIGINATE_BIT). */
void sb_outbound_on_event(sb_outbound *o, const sb_voice_event *ev);
/* Whether the agent's phone rings or talks for an outbound call (queues
 * and direct calls then leave them alone). NULL-safe. */
bool sb_outbound_agent_busy(const sb_outbound *o, int64_t agent_id);

/* What POST /api/v1/calls found in the store (strings NUL-terminated). */
typedef struct sb_outbound_request {
    int64_t agent_id;
    char number[SB_VOICE_EXT_MAX]; /* E.164 */
    char caller_id[SB_VOICE_EXT_MAX];
    int64_t contact_id; /* 0: no contact has the number */
    char contact_name[128];
    int64_t ticket_id, task_id; /* 0: none */
    /* Told once, at the hang-up, after the call log row was submitted
     * (NULL: nobody): its status and whether the agent picked up. The
     * website's call-back requests (callbacks.c) count their attempts so. */
    void (*on_end)(void *arg, int64_t live_id, const char *status, bool agent_answered);
    void *on_end_arg;
} sb_outbound_request;

/* Places the call on the loop: 0 with *call (the API's JSON, new
 * reference), or an HTTP status with code/message set: 409 no_phone (no
 * registered device), 409 agent_busy (ringing or talking already), 409
 * no_trunk, 503 (the voice thread refused the command). */
int sb_outbound_place(sb_outbound *o, const sb_outbound_request *rq, json_t **call, const char **code, char *msg,
                      size_t cap);
/* Hangs up live call `live_id` (any stage). Only its agent or, with
 * `supervisor`, anyone may. 0 with *call, 404 not_found or 403 forbidden. */
int sb_outbound_hangup(sb_outbound *o, int64_t live_id, int64_t agent_id, bool supervisor, json_t **call,
                       const char **code, char *msg, size_t cap);

/* What the [trunk] dials for an E.164 number: prefix_numbers, then the
 * digits without "+". 0, or SB_EINVAL when it does not fit a user part. */
int sb_outbound_dial_string(const char *prefix, const char *e164, char out[SB_VOICE_EXT_MAX]);

/* The DID the customer last called us on (their latest inbound call that
 * reached a number of ours), or "" if they never did: the caller ID they
 * know us by. In a transaction script (src/api/outbound.c). */
int sb_outbound_last_did(sb_tx *tx, const char *e164, int64_t contact_id, char *out, size_t cap);

#endif
