/* system.h - health and metrics endpoints. */
#ifndef SB_SYSTEM_H
#define SB_SYSTEM_H

#include "app.h"

void sb_system_healthz(sb_app *app, sb_http_req *req);
void sb_system_metrics(sb_app *app, sb_http_req *req);

#endif
