/* webhooks.h - /api/v1/webhooks: rules' webhook deliveries and the secret
 * they are signed with (admins). */
#ifndef SB_API_WEBHOOKS_H
#define SB_API_WEBHOOKS_H

#include <stdbool.h>

#include "app.h"
#include "http/http.h"

bool sb_api_webhooks_route(sb_app *app, sb_http_req *req, const char *path);

#endif
