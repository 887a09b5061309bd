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

/* Events serialised where they were made. JSON built on the store thread
 * is turned into text there and freed there: freeing thousands of small
 * objects on the loop, from another thread's malloc arena, cost the loop
 * more than a third of its time (measured with perf). */
typedef struct sb_event_texts {
    sb_str *v;
    size_t n;
} sb_event_texts;

/* Serialises events ({"type","data"} objects; "at" is added) and releases
 * the array. Safe on any thread. */
void sb_event_texts_take(sb_event_texts *out, json_t *events, int64_t now_ms);
void sb_event_texts_free(sb_event_texts *t);
/* The same, handing the texts back to the store thread that made them. */
void sb_event_texts_release(sb_store *store, sb_event_texts *t);

int sb_app_serve(sb_config *cfg);
/* Publishes serialised events to agent streams; frees them. */
void sb_app_publish_texts(sb_app *app, sb_event_texts *t);
/* Publishes committed change events to the agents' streams. */
void sb_app_publish(sb_app *app, json_t *events);

#endif
