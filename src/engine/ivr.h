/* ivr.h - the IVR's decisions: which menu a caller hears, what a key does,
 * when silence or wrong keys send the call on, and where the call goes
 * when it leaves the IVR.
 *
 * Pure (DESIGN.md §1), like the engine: actions = handle(state, input,
 * now). The voice thread reports what happens on a call (offered to a
 * number, a key, a prompt finished, the caller hung up) and executes the
 * actions (answer, play, stop playing, reject, and the call's way out:
 * queue, ring an agent, voicemail, hang up). `now` is wall-clock Unix ms
 * from the caller (the loop, or a test's virtual clock): business hours
 * are wall time. The IVR keeps its timers (no key within the menu's
 * timeout, the pause between the digits of an extension) in its own heap;
 * the caller asks sb_ivr_next_deadline() when to call sb_ivr_tick().
 *
 * A call's life here:
 *   OFFERED to an unknown number      → REJECT 404.
 *   OFFERED to a number               → the number's destination for the
 *     calendar period (business hours, after hours, holiday). A menu is
 *     answered and its prompt played; a queue, agent or voicemail without
 *     a prompt leaves at once (the queue answers when an agent does).
 *   PLAY_DONE of a menu prompt        → the menu's timer starts.
 *   A key while a prompt plays        → STOP_PLAY, then the key counts
 *     (barge-in).
 *   A key                             → its option; `0` without an option
 *     of its own → the operator; with extension dialing, a first key that
 *     begins an extension waits for three digits (the interdigit timeout
 *     alone means the single key's option); anything else is invalid.
 *   Invalid                           → the invalid prompt and the menu
 *     again, `invalid_retries` times; then the fallback.
 *   No key for `timeout_seconds`      → the fallback (default: the
 *     operator, else hang up).
 *   repeat / back                     → the menu's prompt again / the
 *     parent menu's (back at the top repeats).
 *   HANGUP                            → ABANDONED (for the call log).
 *   A forwarding scheme (a number's destination for the period)
 *                                     → HANGUP with .id = 0 and
 *     .scheme_id set: the call leaves the IVR for the scheme (fwd.h). An
 *     executor that runs schemes starts it there instead of hanging up;
 *     one that does not (calls.c today) just hangs up. When the scheme
 *     ends in a destination (its final or backup), sb_ivr_enter() brings
 *     the call back in.
 * Every action that ends the call's time in the IVR carries the path the
 * caller took: keys per menu joined by '>' ("1>2", "9>9>t", "201"), where
 * "t" is a timeout; plus the reason and the calendar period. */
#ifndef SB_IVR_H
#define SB_IVR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/calendar.h"
#include "engine/voice_config.h"

#define SB_IVR_PATH_MAX 64

typedef struct sb_ivr sb_ivr;

typedef enum sb_ivr_period {
    SB_IVR_BUSINESS_HOURS, /* or no calendar */
    SB_IVR_AFTER_HOURS,
    SB_IVR_HOLIDAY,
} sb_ivr_period;

const char *sb_ivr_period_name(sb_ivr_period p);

/* ---- inputs ---- */

typedef enum sb_ivr_input_kind {
    SB_IVR_IN_OFFERED,   /* .call_id was offered to .number (the DID dialled) */
    SB_IVR_IN_DIGIT,     /* .digit: '0'-'9', '*', '#' */
    SB_IVR_IN_PLAY_DONE, /* .play_id finished (or was stopped) */
    SB_IVR_IN_HANGUP,    /* the caller hung up */
} sb_ivr_input_kind;

typedef struct sb_ivr_input {
    sb_ivr_input_kind kind;
    uint64_t call_id; /* the voice thread's id of the call */
    const char *number;
    char digit;
    uint32_t play_id;
} sb_ivr_input;

/* ---- actions out ---- */

typedef enum sb_ivr_action_kind {
    SB_IVR_ANSWER,    /* answer the call (before the first prompt) */
    SB_IVR_PLAY,      /* play .prompt in .language; report PLAY_DONE with .play_id */
    SB_IVR_STOP_PLAY, /* stop .play_id: the caller pressed a key */
    SB_IVR_REJECT,    /* refuse the call with SIP .sip_status (404: unknown number) */
    /* The call leaves the IVR (the IVR forgets it); .path, .reason, .period, .number_id: */
    SB_IVR_QUEUE,      /* into team .id's queue */
    SB_IVR_RING_AGENT, /* ring agent .id */
    SB_IVR_VOICEMAIL,  /* team .id's voicemail */
    SB_IVR_HANGUP,     /* hang up */
    SB_IVR_ABANDONED,  /* the caller hung up in the IVR: nothing to execute */
} sb_ivr_action_kind;

typedef struct sb_ivr_action {
    sb_ivr_action_kind kind;
    uint64_t call_id;
    int64_t id;        /* team or agent */
    int64_t number_id; /* the phone number document; 0 for REJECT */
    int64_t scheme_id; /* HANGUP: not 0 when the call leaves for this forwarding scheme */
    uint32_t play_id;
    int sip_status;
    sb_ivr_period period;
    /* static: "entry" (the number's destination), "selected" (an option),
     * "operator", "extension", "timeout", "invalid", "unknown_number",
     * "no_operator", "caller", "config_changed" */
    const char *reason;
    char prompt[SB_IVR_PROMPT_MAX];
    char language[8];
    char path[SB_IVR_PATH_MAX];
} sb_ivr_action;

typedef struct sb_ivr_actions {
    sb_ivr_action *v;
    size_t n, cap;
} sb_ivr_actions;

void sb_ivr_actions_reset(sb_ivr_actions *out);
void sb_ivr_actions_free(sb_ivr_actions *out);
const char *sb_ivr_action_name(sb_ivr_action_kind kind);

/* ---- the IVR ---- */

sb_ivr *sb_ivr_new(void);
void sb_ivr_free(sb_ivr *ivr);

/* Configuration. Putting an existing id replaces it. Calls in progress
 * keep going and look their menus up again at each step; a menu that
 * disappeared hangs the call up (reason "config_changed"). */
void sb_ivr_clear_config(sb_ivr *ivr); /* numbers, menus, calendars, extensions */
/* SB_ECONFLICT if another number has the same digits. */
int sb_ivr_put_number(sb_ivr *ivr, const sb_phone_number *number);
/* The number with this id, or NULL. */
const sb_phone_number *sb_ivr_number(const sb_ivr *ivr, int64_t id);
/* The calendar with this id, or NULL. */
const sb_calendar *sb_ivr_calendar(const sb_ivr *ivr, int64_t id);
int sb_ivr_put_menu(sb_ivr *ivr, const sb_ivr_menu *menu);
/* The IVR takes the calendar (freed with the IVR, or when replaced or
 * cleared). A number whose calendar the IVR lacks is always in business
 * hours. */
int sb_ivr_put_calendar(sb_ivr *ivr, int64_t id, sb_calendar *cal);
/* An agent's extension: SB_IVR_EXT_DIGITS digits. SB_EINVAL otherwise. */
int sb_ivr_put_extension(sb_ivr *ivr, const char *extension, int64_t agent_id);

/* Handles one input at `now`; appends the actions to `out`. SB_ENOTFOUND
 * for a call the IVR does not have (it left, or was never offered),
 * SB_ECONFLICT for an offer of a call it has, SB_EINVAL for a bad digit;
 * nothing changes then. */
int sb_ivr_handle(sb_ivr *ivr, const sb_ivr_input *in, int64_t now, sb_ivr_actions *out);
/* Brings a call that left the IVR back in at `dest` (a forwarding scheme's
 * final or backup destination: a menu, a queue, an agent, voicemail or a
 * hang-up, with its prompt), as a call to number `number_id` (its language
 * and operator; the calendar period is taken again at `now`). `answered`
 * says whether the caller was answered already (no second ANSWER then).
 * `reason` (static, e.g. "final", "backup") goes on the leaving action.
 * SB_ECONFLICT if the call is in the IVR, SB_ENOTFOUND for an unknown
 * number, SB_EINVAL for a destination that cannot start a call (none,
 * scheme, repeat, back, operator); nothing changes then. */
int sb_ivr_enter(sb_ivr *ivr, uint64_t call_id, int64_t number_id, const sb_ivr_target *dest, bool answered,
                 const char *reason, int64_t now, sb_ivr_actions *out);
/* Fires every timer due at or before `now`. */
void sb_ivr_tick(sb_ivr *ivr, int64_t now, sb_ivr_actions *out);
/* When sb_ivr_tick should run next; INT64_MAX if nothing is due. */
int64_t sb_ivr_next_deadline(const sb_ivr *ivr);

/* Calls in the IVR now. */
size_t sb_ivr_calls(const sb_ivr *ivr);
/* The path so far of a call in the IVR; SB_ENOTFOUND if it is not. */
int sb_ivr_call_path(const sb_ivr *ivr, uint64_t call_id, char *out, size_t cap);

#endif
