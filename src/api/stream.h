/* stream.h - /api/v1/stream: the live event feed for agents (WebSocket). */
#ifndef SB_STREAM_H
#define SB_STREAM_H

#include "api/api.h"
#include "app.h"

sb_stream_hub *sb_stream_hub_new(sb_app *app);
void sb_stream_hub_free(sb_stream_hub *hub);
void sb_stream_close_all(sb_stream_hub *hub);
/* Sends serialised events to every subscriber, one write per socket. */
void sb_stream_broadcast(sb_stream_hub *hub, const sb_str *events, size_t n);
unsigned sb_stream_subscribers(const sb_stream_hub *hub);
/* The same, only to subscribers whose role is at least min_role. */
void sb_stream_broadcast_role(sb_stream_hub *hub, sb_role min_role, const sb_str *events, size_t n);
unsigned sb_stream_subscribers_role(const sb_stream_hub *hub, sb_role min_role);
/* One event {"type", "data"} (data stolen) to the tabs of one agent only
 * (an incoming call's caller is not everyone's business). */
void sb_stream_send_agent(sb_stream_hub *hub, int64_t agent_id, const char *type, json_t *data);
/* Handles GET /api/v1/stream (authenticates, then upgrades). */
void sb_stream_handle(sb_app *app, sb_http_req *req);

#endif
