/* config.h - the engine's configuration documents as JSON: what the REST
 * API stores and `switchboard config export|import` moves. Pure parsers:
 * each validates a document completely and names the bad field.
 *
 *   template:   {"id": 1, "name": "Acknowledgement", "shortcut": "ack",
 *                "texts": {"ru": "Ваш запрос №{{ticket.number}} принят", "en": "..."}}
 *   calendar:   {"id": 1, "name": "Moscow office", "time_zone": "Europe/Moscow",
 *                "hours": {...}, "holidays": [...], "working_days": [...]}   (see calendar.h)
 *   sla_policy: {"id": 1, "name": "VIP", "conditions": {"team_id": 2, "channel": "chat",
 *                "vip": true, "tag": "b2b"}, "calendar_id": 1, "warn_pct": 80,
 *                "targets": {"urgent": {"first_response_minutes": 15,
 *                "next_response_minutes": 30, "resolution_minutes": 240}, ...}}
 *   rule:       see rules.h
 *   team routing:  {"strategy": "least_busy", "supervisor_id": 3,
 *                   "unanswered_minutes": {"chat": 5, "email": 0, "call": 1},
 *                   "sticky_wait_minutes": 2, "calendar_id": 1, "auto_away_after": 3}
 *   agent routing: {"capacity": 1.0, "skills": ["billing"], "languages": ["ru", "kk"]} */
#ifndef SB_ENGINE_CONFIG_H
#define SB_ENGINE_CONFIG_H

#include <jansson.h>

#include "engine/engine.h"

/* Error reporting shared by every parser here. */
typedef struct sb_config_error {
    char field[96];
    char message[256];
} sb_config_error;

/* The ids a document refers to, for the caller to check they exist. */
typedef struct sb_config_refs {
    int64_t teams[16], templates[16], calendars[16], agents[16], menus[16];
    int nteams, ntemplates, ncalendars, nagents, nmenus; /* menus: IVR menus (voice_config.h) */
} sb_config_refs;

/* Each returns 0, or SB_EINVAL / SB_ENOTFOUND (unknown time zone) with
 * `err` filled. `doc` must carry a positive "id" and a "name". */
int sb_config_check_template(const json_t *doc, sb_config_error *err);
int sb_config_check_calendar(const json_t *doc, sb_config_error *err);
int sb_config_check_sla_policy(const json_t *doc, sb_config_refs *refs, sb_config_error *err);
int sb_config_check_rule(const json_t *doc, sb_config_refs *refs, sb_config_error *err);
int sb_config_check_team_routing(const json_t *routing, sb_config_refs *refs, sb_config_error *err);
int sb_config_check_agent_routing(const json_t *routing, sb_config_error *err);

/* Any document by stored kind: "rule", "template", "calendar",
 * "sla_policy", and the voice ones (voice_config.h): "phone_number",
 * "ivr_menu". */
int sb_config_check(const char *kind, const json_t *doc, sb_config_refs *refs, sb_config_error *err);

/* Builders for the engine (the document must have passed its check). */
int sb_config_sla_policy(const json_t *doc, sb_sla_policy *out);
int sb_config_team_routing(const json_t *routing, int64_t team_id, sb_engine_team_cfg *out);
int sb_config_agent_routing(const json_t *routing, int64_t agent_id, sb_engine_agent_cfg *out);

#endif
