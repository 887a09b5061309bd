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

#include "engine/callq.h"
#include "engine/engine.h"

/* Error reporting shared by every parser here. */
typedef struct sb_config_error {
    char field[96];
    char message[256];
} sb_config_error;

/* The ids a document refers to, for the caller to check they exist. Teams
 * and agents have room for a forwarding scheme's every target (10 steps of
 * 20, plus its two destinations). */
#define SB_CONFIG_REFS_PEOPLE 256
typedef struct sb_config_refs {
    int64_t teams[SB_CONFIG_REFS_PEOPLE], templates[16], calendars[16], agents[SB_CONFIG_REFS_PEOPLE], menus[16];
    int64_t schemes[16];                                 /* forwarding schemes (voice_config.h) */
    int nteams, ntemplates, ncalendars, nagents, nmenus; /* menus: IVR menus (voice_config.h) */
    int nschemes;
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
 * "ivr_menu", "forwarding_scheme". */
int sb_config_check(const char *kind, const json_t *doc, sb_config_refs *refs, sb_config_error *err);

/* Builders for the engine (the document must have passed its check). */
int sb_config_sla_policy(const json_t *doc, sb_sla_policy *out);
int sb_config_team_routing(const json_t *routing, int64_t team_id, sb_engine_team_cfg *out);
/* A team's call queue: routing.call_queue (absent or null: the defaults).
 *   {"strategy": "round_robin",        ring_all (default), longest_idle, fewest_calls, random
 *    "ring_timeout_seconds": 20,       5..300; default: out->ring_timeout_seconds ([sip])
 *    "wrapup_seconds": 0,              0..3600 after each answered call
 *    "max_wait_seconds": 120,          0..7200 (0 = wait forever); default: out->max_wait_seconds
 *    "announce_seconds": 0,            0 or 10..3600: the caller hears their place in line
 *    "preferred_seconds": 0,           the returning customer's agent rings alone (0 = ring timeout)
 *    "retry_seconds": 3,               pause before ringing everyone again
 *    "callback_digit": "*",            leaves a call-back request instead of waiting; null = none
 *    "hold_prompt": "wait",            played on a loop while waiting
 *    "max_wait_fallback": "voicemail", or "hangup"
 *    "ringback": false,                true: the caller is not answered while waiting (hears ringing;
 *                                      no hold prompt, announcements nor callback key)
 *    "rating": false,                  true: when the agent hangs up first, the caller is asked to
 *                                      rate the call (a key 1-5; the voice executor reads it);
 *                                      the number's own "rating" asks too: either is enough
 *    "record_calls": null}             true/false: calls answered through the queue are (not)
 *                                      recorded, whatever the number or [sip] say
 * `out` carries the installation's defaults in; it is filled completely. */
int sb_config_call_queue(const json_t *call_queue, int64_t team_id, sb_callq_config *out, bool *voicemail_fallback,
                         sb_config_error *err);
int sb_config_agent_routing(const json_t *routing, int64_t agent_id, sb_engine_agent_cfg *out);

#endif
