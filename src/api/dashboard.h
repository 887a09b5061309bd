/* dashboard.h - the supervisors' live dashboard: GET /api/v1/dashboard and
 * the `dashboard` stream event.
 *
 * The snapshot is built on the loop from the routing engine's live state
 * (open tickets, queues, agents, SLA clocks) and from the figures of the
 * day kept here in memory: read once from the store at start, then counted
 * as dispatch hands the engine its events (a ticket created, an agent's
 * first reply, a resolution) and as survey answers arrive. "Today" is the
 * local day in the installation's time zone (setting `timezone`, UTC by
 * default): the figures start again at local midnight.
 *
 * A 1 s timer sends the snapshot to the streams of supervisors and admins
 * when something changed since the last one, and at least every few
 * seconds while anything waits, so that "longest wait" keeps moving. It is
 * not even built when no supervisor listens. Everything here runs on the
 * loop; every function accepts a NULL dashboard (tools, start-up). */
#ifndef SB_DASHBOARD_H
#define SB_DASHBOARD_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "app.h"
#include "http/http.h"

/* Reads today's figures (synchronously: call before serving) and starts
 * the timer. */
sb_dashboard *sb_dashboard_start(sb_app *app);
void sb_dashboard_stop(sb_dashboard *d); /* closes the timer */
void sb_dashboard_free(sb_dashboard *d); /* after the loop ran the close */

/* The installation's time zone is (now) `name` (NULL: UTC). When it is
 * another than before, the figures of the day are read again from the
 * store for that zone's day; until that read completes the old zone
 * stays. */
void sb_dashboard_set_time_zone(sb_dashboard *d, const char *name);

/* Something the snapshot shows may have changed. */
void sb_dashboard_touch(sb_dashboard *d);
/* Figures of the day, at wall time `at` (ms). */
void sb_dashboard_ticket_created(sb_dashboard *d, int64_t at);
void sb_dashboard_first_response(sb_dashboard *d, int64_t created_at, int64_t at);
void sb_dashboard_resolved(sb_dashboard *d, int64_t created_at, int64_t at);
void sb_dashboard_csat(sb_dashboard *d, int score, int64_t at);

/* The snapshot at wall time `now` (new reference). */
json_t *sb_dashboard_snapshot(sb_dashboard *d, int64_t now);

/* GET /api/v1/dashboard (minimum role supervisor). */
bool sb_api_dashboard_route(sb_app *app, sb_http_req *req, const char *path);

#endif
