/* webchat.h - the website chat channel: widget assets, visitor sessions,
 * the visitor WebSocket (/chat/ws) and its SSE + POST fallback. */
#ifndef SB_WEBCHAT_H
#define SB_WEBCHAT_H

#include <jansson.h>

#include "app.h"

sb_webchat *sb_webchat_new(sb_app *app);
/* Closes every visitor connection. */
void sb_webchat_close_all(sb_webchat *wc);
void sb_webchat_free(sb_webchat *wc);
/* True if it handled the request (/widget.js, /chat/...). */
bool sb_webchat_route(sb_webchat *wc, sb_http_req *req, const char *path);
/* After commit: pushes an agent's reply to the visitor's open connections
 * and marks it delivered when at least one received it. */
void sb_webchat_deliver(sb_webchat *wc, const char *visitor_id, json_t *message);
/* Shows "agent is typing" to the visitor. */
void sb_webchat_typing(sb_webchat *wc, const char *visitor_id, const char *agent_name);
unsigned sb_webchat_connections(const sb_webchat *wc);

/* Visitor tokens "v1.<id>.<mac>" signed with the server secret. */
void sb_visitor_token(const char *secret, const char *visitor_id, char *out, size_t cap);
/* Returns true and the visitor id (33 bytes) if the token is genuine. */
bool sb_visitor_token_verify(const char *secret, const char *token, char visitor_id[33]);

#endif
