/* calls.h - the core thread's side of voice: starts the voice thread,
 * hands it the registrar's credentials, takes its events, decides what to
 * do with a call and keeps the call log.
 *
 * The decisions here are a fixed, configuration-driven minimum until the
 * engine's IVR is glued in: a DID listed in [sip] dids rings for
 * answer_delay_ms, is answered and hears prompts/<language>/welcome.wav;
 * the digits the caller presses become the call's path; anything else is
 * rejected with 404. Every call ends up as a row of the `call` table and a
 * `call.ended` event. */
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
/* Reads the agents' SIP extensions again and hands them to the registrar
 * (SIGHUP, after `switchboard user sip-password`). */
void sb_calls_reload(sb_calls *c);
/* Voice counters for /metrics (NULL-safe). */
void sb_calls_metrics_text(const sb_calls *c, sb_buf *b);

#endif
