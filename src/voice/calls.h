/* calls.h - the core thread's side of voice: starts the voice thread,
 * hands it the registrar's credentials, takes its events, asks the IVR
 * (src/engine/ivr.c, pure) what to do with each call, executes its answer
 * through the voice thread and keeps the call log.
 *
 * The IVR gets the phone numbers, menus and calendars from the store at
 * start, on SIGHUP and whenever the configuration changes through the API.
 * Where a call leaves the IVR for: a queue rings every registered, free
 * agent of the team at once (ring_all), an agent rings only them, while
 * the caller hears the hold prompt; the first to answer is bridged, and
 * nobody within [sip] queue_max_wait_seconds leaves the call missed.
 * Voicemail plays its prompt and ends. Every call ends up as a row of the
 * `call` table and a `call.ended` event. */
#ifndef SB_VOICE_CALLS_H
#define SB_VOICE_CALLS_H

#include "app.h"

typedef struct sb_calls sb_calls;

/* Starts voice per app->cfg's [sip] section. NULL on failure (logged). */
sb_calls *sb_calls_start(sb_app *app);
int sb_calls_sip_port(const sb_calls *c);
/* Stops the voice thread (ending its calls, whose log rows are submitted
 * to the store before this returns). */
void sb_calls_stop(sb_calls *c);
void sb_calls_free(sb_calls *c);
/* Reads the agents' SIP extensions and the IVR's configuration again
 * (SIGHUP, `switchboard user sip-password`, configuration changes). */
void sb_calls_reload(sb_calls *c);
/* Voice counters for /metrics (NULL-safe). */
void sb_calls_metrics_text(const sb_calls *c, sb_buf *b);
/* Outbound calls through the trunk (src/voice/outbound.h); NULL-safe. */
typedef struct sb_outbound sb_outbound;
sb_outbound *sb_calls_outbound(sb_calls *c);
/* An agent's extension, when a device of it is registered now (false:
 * none); *busy: their phone rings or talks for some call. */
bool sb_calls_agent_line(sb_calls *c, int64_t agent_id, char *extension, size_t cap, bool *busy);
/* A member of `team_id` free for a call the core places (the website's
 * call-back requests, src/voice/callbacks.c): a registered phone,
 * available as for the queues (online, not absent, room in their
 * capacity), not ringing or talking anywhere and idle in the call queue
 * (not in wrap-up). Nobody while callers wait in the team's queue: live
 * callers come first. Fair: the fewest queue calls answered today, ties
 * in member order after `after_agent_id` (round robin). `skip_agent_id`
 * is never chosen. 0 when nobody is free (or c is NULL). */
int64_t sb_calls_free_agent(sb_calls *c, int64_t team_id, int64_t after_agent_id, int64_t skip_agent_id);

#endif
