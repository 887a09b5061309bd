/* voice_config.h - phone numbers (DIDs), IVR menus and forwarding schemes
 * as configuration documents: what the REST API stores (`/api/v1/numbers`,
 * `/api/v1/ivr-menus`, `/api/v1/forwarding-schemes`) and `switchboard
 * config export|import` moves. Pure
 * parsers in the manner of config.h: each validates a document completely
 * and names the bad field by its JSON path.
 *
 *   phone_number: {"id": 1, "name": "Main line", "number": "100", "language": "ru",
 *                  "entry": DEST,                      what answers the number
 *                  "calendar_id": 1,                   business hours (optional)
 *                  "after_hours": DEST,                outside them (default: entry)
 *                  "holidays": DEST,                   on the calendar's holidays
 *                                                      (default: after_hours, else entry)
 *                  "operator": DEST,                   where `0`/"operator" goes, unless a
 *                                                      menu names its own
 *                  "record_calls": null,               true/false: answered calls are (not)
 *                                                      recorded; null: as [sip] says
 *                  "rating": false}                    true: every call to the number an agent
 *                                                      answers is rated by the caller when the
 *                                                      agent hangs up first (a queue's own
 *                                                      "rating" asks too: either is enough)
 *   ivr_menu:     {"id": 1, "name": "Main menu", "prompt": "menu_main",
 *                  "options": [{"digit": "1", "action": "queue", "team_id": 1},
 *                              {"digit": "2", "action": "submenu", "menu_id": 2}, ...],
 *                  "extension_dialing": true,          three digits typed ring that extension
 *                  "timeout_seconds": 5,               no input this long → fallback
 *                  "interdigit_seconds": 3,            between the digits of an extension
 *                  "invalid_retries": 2,               re-prompts after invalid input, then fallback
 *                  "invalid_prompt": "invalid_choice",
 *                  "fallback": DEST,                   default: the operator, else hang up
 *                  "operator": DEST}
 *   forwarding_scheme: {"id": 1, "name": "Sales",
 *                  "steps": [{"targets": [{"agent": 3}, {"agent": 4}], "mode": "together",
 *                             "seconds": 15},
 *                            {"targets": [{"team": 1}, {"number": "+74951234567"},
 *                                         {"sip_uri": "sip:duty@pbx.example.com"}],
 *                             "mode": "sequential", "seconds": 15}],
 *                  "final": DEST,                      nobody answered: menu, queue, agent,
 *                                                      voicemail or hangup
 *                  "backup": DEST}                     no target could be reached at all
 *                                                      (default: final)
 *     1..10 steps, 1..20 targets a step (each one of agent, team, number,
 *     sip_uri; the same target at most once a step), seconds 1..600, every
 *     key required but "backup". How a call runs through it: fwd.h.
 *
 *   DEST (and an option, which adds "digit"):
 *     {"action": "queue", "team_id": 1}      the team's call queue
 *     {"action": "agent", "agent_id": 3}     ring one agent
 *     {"action": "voicemail", "team_id": 1}  the team's voicemail
 *     {"action": "hangup"}
 *     {"action": "menu", "menu_id": 1}       a number's entry point
 *     {"action": "scheme", "scheme_id": 1}   a forwarding scheme: a number's entry,
 *                                            after_hours and holidays only
 *     {"action": "submenu", "menu_id": 2}    options only
 *     {"action": "repeat"} / {"action": "back"} / {"action": "operator"}   options only
 *                                            ("operator" also as a menu's fallback)
 *   Every DEST that ends the IVR (queue, agent, voicemail, hangup, scheme)
 *   may carry "prompt": "closed", played first. Later kinds ("queue" with a
 *   strategy) slot into the same DEST. A scheme's destinations are never a
 *   scheme and menus never lead to one, so schemes cannot loop.
 *
 * Prompts are names ("menu_main", [a-z0-9_], at most 63 bytes) that the
 * voice executor resolves to a WAV per language. Menus nest at most
 * SB_IVR_MAX_DEPTH deep and never loop: sb_voice_check_menus checks a whole
 * set of menus, since one document alone cannot tell. */
#ifndef SB_VOICE_CONFIG_H
#define SB_VOICE_CONFIG_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "engine/config.h"

#define SB_IVR_MAX_DEPTH   3
#define SB_IVR_NAME_MAX    64
#define SB_IVR_PROMPT_MAX  64
#define SB_IVR_NUMBER_MAX  24
#define SB_IVR_DIGIT_SLOTS 12 /* 0-9, '*', '#' */
#define SB_IVR_EXT_DIGITS  3

typedef enum sb_ivr_do {
    SB_IVR_DO_NONE = 0,  /* not configured */
    SB_IVR_DO_MENU,      /* .id: enter the menu (entry point or submenu) */
    SB_IVR_DO_QUEUE,     /* .id: team */
    SB_IVR_DO_AGENT,     /* .id: agent */
    SB_IVR_DO_VOICEMAIL, /* .id: team */
    SB_IVR_DO_HANGUP,
    SB_IVR_DO_REPEAT,
    SB_IVR_DO_BACK,
    SB_IVR_DO_OPERATOR,
    SB_IVR_DO_SCHEME, /* .id: forwarding scheme */
} sb_ivr_do;

typedef struct sb_ivr_target {
    sb_ivr_do what;
    int64_t id;
    char prompt[SB_IVR_PROMPT_MAX]; /* "" = none */
} sb_ivr_target;

typedef struct sb_ivr_menu {
    int64_t id;
    char prompt[SB_IVR_PROMPT_MAX];
    sb_ivr_target options[SB_IVR_DIGIT_SLOTS]; /* by sb_ivr_digit_slot */
    bool extension_dialing;
    int timeout_s, interdigit_s, invalid_retries;
    char invalid_prompt[SB_IVR_PROMPT_MAX];
    sb_ivr_target fallback;        /* NONE: the operator, else hang up */
    sb_ivr_target operator_target; /* NONE: the number's */
} sb_ivr_menu;

typedef struct sb_phone_number {
    int64_t id;
    char number[SB_IVR_NUMBER_MAX];
    char language[8];
    sb_ivr_target entry, after_hours, holidays, operator_target; /* NONE: not set */
    int64_t calendar_id;                                         /* 0 = always business hours */
    int record_calls; /* answered calls recorded: 0 as [sip] record_calls says, 1 yes, -1 no */
    bool rating;      /* the caller rates calls an agent answered (the agent hung up first) */
} sb_phone_number;

/* ---- forwarding schemes ---- */

#define SB_FWD_MAX_STEPS   10
#define SB_FWD_MAX_TARGETS 20
#define SB_FWD_MAX_SECONDS 600
#define SB_FWD_ADDRESS_MAX 128 /* a number or SIP URI, with its NUL */

typedef enum sb_fwd_target_kind {
    SB_FWD_TARGET_AGENT,   /* .id */
    SB_FWD_TARGET_TEAM,    /* .id: its members, in member order */
    SB_FWD_TARGET_NUMBER,  /* .address: "+74951234567", through an outbound trunk */
    SB_FWD_TARGET_SIP_URI, /* .address: "sip:user@host[:port]", through an outbound trunk */
} sb_fwd_target_kind;

typedef struct sb_fwd_target {
    sb_fwd_target_kind kind;
    int64_t id;
    char address[SB_FWD_ADDRESS_MAX];
} sb_fwd_target;

typedef enum sb_fwd_mode {
    SB_FWD_TOGETHER,   /* every target rings at once for the step's seconds */
    SB_FWD_SEQUENTIAL, /* one target after another, each for the step's seconds */
} sb_fwd_mode;

typedef struct sb_fwd_step {
    sb_fwd_mode mode;
    int seconds;
    int ntargets;
    sb_fwd_target targets[SB_FWD_MAX_TARGETS];
} sb_fwd_step;

typedef struct sb_fwd_scheme {
    int64_t id;
    int nsteps;
    sb_fwd_step steps[SB_FWD_MAX_STEPS];
    sb_ivr_target final_dest; /* menu, queue, agent, voicemail or hangup */
    sb_ivr_target backup;     /* the same kinds; final_dest when the document has none */
} sb_fwd_scheme;

const char *sb_fwd_target_kind_name(sb_fwd_target_kind kind); /* "agent", "team", "number", "sip_uri" */

/* '0'..'9' → 0..9, '*' → 10, '#' → 11; -1 for anything else. */
int sb_ivr_digit_slot(char digit);
const char *sb_ivr_do_name(sb_ivr_do what);

/* Validate one document (kind "phone_number" / "ivr_menu" /
 * "forwarding_scheme"); the ids it names go to `refs` (teams, agents,
 * calendars, menus, schemes) for the caller to check they exist. 0 or
 * SB_EINVAL with `err` filled. */
int sb_voice_check_number(const json_t *doc, sb_config_refs *refs, sb_config_error *err);
int sb_voice_check_menu(const json_t *doc, sb_config_refs *refs, sb_config_error *err);
int sb_voice_check_scheme(const json_t *doc, sb_config_refs *refs, sb_config_error *err);

/* Builders (the document must have passed its check). */
int sb_voice_number(const json_t *doc, sb_phone_number *out);
int sb_voice_menu(const json_t *doc, sb_ivr_menu *out);
int sb_voice_scheme(const json_t *doc, sb_fwd_scheme *out);

/* Checks that the menus of `list` (a JSON array of menu documents, each
 * valid on its own) never loop through their submenus and nest at most
 * SB_IVR_MAX_DEPTH deep, counting the menu a caller enters as level 1.
 * A submenu missing from the list ends the walk (the reference check
 * reports it). On a violation fills `err` with the field of an offending
 * option ("options[1].menu_id") and sets *menu_index to the position in
 * `list` of the menu that has it; the option is taken from the menu whose
 * id is `focus` when it takes part (the document being saved), else the
 * last step of the offending path. */
int sb_voice_check_menus(const json_t *list, int64_t focus, size_t *menu_index, sb_config_error *err);

#endif
