/* app.h - the daemon's process-wide context: loop, config, store, HTTP
 * server, live connections (agent streams, chat visitors), outbox. */
#ifndef SB_APP_H
#define SB_APP_H

#include <jansson.h>
#include <uv.h>

#include "base/config.h"
#include "http/http.h"
#include "engine/model.h"
#include "store/store.h"

typedef struct sb_stream_hub sb_stream_hub;
typedef struct sb_webchat sb_webchat;
typedef struct sb_outbox sb_outbox;
typedef struct sb_ratelimit sb_ratelimit;
typedef struct sb_dispatch sb_dispatch;
typedef struct sb_web sb_web;
typedef struct sb_dashboard sb_dashboard;
typedef struct sb_calls sb_calls;
typedef struct sb_retention sb_retention;
typedef struct sb_callbacks sb_callbacks;

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

/* An API channel's signing secret as last read from the store (loop only). */
typedef struct sb_channel_key {
    int64_t channel_id;
    char secret[65];
} sb_channel_key;

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
    /* Lets the loop check inbound signatures before the store sees them;
     * the store's copy stays the authority (see channels.c). */
    sb_channel_key *channel_keys;
    size_t nchannel_keys;
    sb_text_indexer text_indexer; /* the store thread's */
    sb_dispatch *dispatch;        /* the routing engine (NULL in tools) */
    sb_web *web;                  /* the browser workspace; NULL when not built */
    sb_dashboard *dashboard;      /* supervisors' live figures (NULL in tools) */
    sb_calls *calls;              /* voice (NULL unless [sip] listen is set) */
    sb_retention *retention;      /* recordings retention (NULL when kept forever) */
    sb_callbacks *callbacks;      /* the website's call-back requests (NULL unless voice is on) */
} sb_app;

/* Events as text, one per {"type","data"} object ("at" is added). */
typedef struct sb_event_texts {
    sb_str *v;
    size_t n;
} sb_event_texts;

/* Serialises events and releases the array. Safe on any thread. */
void sb_event_texts_take(sb_event_texts *out, json_t *events, int64_t now_ms);
void sb_event_texts_free(sb_event_texts *t);

int sb_app_serve(sb_config *cfg);
/* Publishes the events a transaction script built on the store thread
 * (committed at `at_ms`) and hands the JSON back to that thread to be freed:
 * freeing thousands of small objects on the loop, from another thread's
 * malloc arena, cost the loop more than a third of its time (perf). The
 * text is made here, and only when an agent stream is listening, so the
 * store thread spends no time on it. */
void sb_app_publish_built(sb_app *app, json_t *events, int64_t at_ms);
/* Publishes committed change events to the agents' streams. */
void sb_app_publish(sb_app *app, json_t *events);

#endif
