/* app.h - the daemon's process-wide context: loop, config, store, HTTP
 * server, live connections (agent streams, chat visitors), outbox. */
#ifndef SB_APP_H
#define SB_APP_H

#include <jansson.h>
#include <uv.h>

#include "base/config.h"
#include "http/http.h"
#include "store/store.h"

typedef struct sb_stream_hub sb_stream_hub;
typedef struct sb_webchat sb_webchat;
typedef struct sb_outbox sb_outbox;
typedef struct sb_ratelimit sb_ratelimit;

typedef struct sb_app_metrics {
    uint64_t inbound_messages;
    uint64_t inbound_duplicates;
    uint64_t outbound_sent;
    uint64_t outbound_failed;
    uint64_t outbound_retries;
    uint64_t events_published;
    uint64_t rate_limited;
    uint64_t overloaded;
} sb_app_metrics;

typedef struct sb_app {
    uv_loop_t *loop;
    sb_config cfg;
    sb_store *store;
    sb_http_server *http;
    sb_stream_hub *hub;
    sb_webchat *webchat;
    sb_outbox *outbox;
    sb_ratelimit *ratelimit;
    char secret[65]; /* server secret (visitor tokens), from the DB */
    uv_signal_t sig_term, sig_int, sig_hup;
    bool stopping;
    int64_t started_at;
    int64_t demo_channel_id; /* first webchat channel, for /chat/demo */
    sb_app_metrics metrics;
} sb_app;

int sb_app_serve(sb_config *cfg);
/* Publishes committed change events to agent streams and chat visitors. */
void sb_app_publish(sb_app *app, json_t *events);

#endif
