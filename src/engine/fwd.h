/* fwd.h - forwarding schemes' decisions: which phones ring for a call,
 * together or one after another, for how long, and where the call goes
 * when nobody answers ("two SDRs 15 s → all of Sales 15 s → voicemail").
 *
 * Pure (DESIGN.md §1), like ivr.h and callq.h: actions = handle(state,
 * input, now). `now` is monotonic ms from the caller (the loop, or a
 * test's virtual clock); the module keeps its timers in its own heap and
 * the caller asks sb_fwd_next_deadline() when to call sb_fwd_tick(). The
 * scheme document is in voice_config.h.
 *
 * Semantics:
 *  - A call runs the steps in order. When a step starts, its targets are
 *    expanded: a team becomes its members in member order; an agent
 *    named twice (directly and through a team, or in two teams) rings
 *    once, at their first place.
 *  - A target is reachable when it is an agent the executor reported
 *    available (registered and free) and this module is not ringing them
 *    for another call; a number while an outbound trunk is up
 *    (sb_fwd_set_trunk); a SIP URI always (the executor INVITEs it
 *    directly). Unreachable targets are skipped, costing no time.
 *  - together: every reachable target rings at once for the step's
 *    `seconds`. One leg failing leaves the others ringing; when every leg
 *    failed, the next step starts at once; when the time is over, the
 *    legs still ringing are cancelled and the next step starts.
 *  - sequential: the targets ring one at a time, each for the step's
 *    `seconds` (so a step of 3 lasts up to 3 × seconds). Reachability is
 *    judged at each target's turn. A leg that fails moves on to the next
 *    target at once, with a full `seconds` for it; when the last target is
 *    done, the next step starts.
 *  - A step in which nothing is reachable is skipped at once.
 *  - A leg answers: every other leg is cancelled, the answered one is
 *    bridged, and the call leaves the module.
 *  - After the last step: the scheme's `final` destination if any leg was
 *    delivered (it rang: answered, rang out, busy or declined, or was
 *    cancelled when its time was over); its `backup` when no leg ever got
 *    through — nothing was reachable, or every leg failed UNREACHABLE
 *    (nobody registered, no trunk): our side could not deliver the call.
 *  - The caller hangs up: every leg is cancelled; the call leaves.
 *  - A call keeps the scheme it started with when the configuration is
 *    reloaded; teams are expanded with the members known when each step
 *    starts.
 *
 * How an executor drives it (src/voice/calls.c, with the IVR):
 *  1. Configuration, at start and on every reload: sb_fwd_clear_config(),
 *     then sb_fwd_put_scheme() for every "forwarding_scheme" document
 *     (built with sb_voice_scheme()) and sb_fwd_put_team() for every team
 *     with its agents in member order.
 *  2. State, whenever it changes: sb_fwd_set_agent(agent, available), true
 *     while the agent has a device registered and is free for a call (not
 *     talking, not ringing for a queue, not in wrap-up); sb_fwd_set_trunk()
 *     while an outbound trunk can place calls to numbers. The
 *     module counts the agents it rings as busy for its other calls
 *     (sb_fwd_ringing() tells the queue side not to ring them); after a
 *     BRIDGE it forgets the call, so the executor reports that agent
 *     unavailable while they talk.
 *  3. The IVR sends a call to a scheme with an SB_IVR_HANGUP action whose
 *     .scheme_id is set (ivr.h): instead of hanging up, keep its
 *     .number_id (for step 5) and handle SB_FWD_IN_START {call_id,
 *     scheme_id}. The caller hears ringback meanwhile, unless the IVR
 *     answered already (a menu or a prompt).
 *  4. Leg events: SB_FWD_IN_LEG_ANSWERED {call_id, leg_id} on the leg's
 *     first 200; SB_FWD_IN_LEG_FAILED {call_id, leg_id, fail} with
 *     NO_ANSWER (408, 480, the voice thread's own ring timeout), BUSY (486,
 *     600, 603: the person is there) or UNREACHABLE (no device registered,
 *     404, a trunk refusing or failing: 403, 5xx, transport errors);
 *     SB_FWD_IN_HANGUP {call_id} when the caller hangs up during the
 *     scheme. An answer refused with SB_ENOTFOUND crossed our CANCEL: hang
 *     that leg up. A late failure of a cancelled leg is SB_ENOTFOUND too,
 *     and changes nothing.
 *  5. After each handle and tick, run the actions in order, then re-arm
 *     one timer for sb_fwd_next_deadline() (INT64_MAX: none):
 *       RING {call_id, leg_id, target, timeout_seconds}: INVITE the agent's
 *         devices, or the number / SIP URI through the trunk, as leg
 *         `leg_id` (unique in this module, never 0). The module cancels the
 *         leg itself when its time is over; timeout_seconds may also bound
 *         the voice thread's ring, whose expiry is then a NO_ANSWER.
 *       CANCEL {call_id, leg_id, reason}: CANCEL the leg (BYE if its 200
 *         crossed).
 *       BRIDGE {call_id, leg_id}: answer the caller if still ringing and
 *         connect the leg; the call has left the module.
 *       DESTINATION {call_id, dest, reason}: sb_ivr_enter(ivr, call_id,
 *         number, &dest, answered, "final" or "backup", now, ...) and run
 *         the IVR's actions (a menu, a queue, voicemail, a hang-up, with
 *         its prompt). NO_SCHEME (START named a scheme that is not loaded)
 *         comes with a hang-up.
 *       ABANDONED {call_id}: nothing to execute (the call log).
 *     Every START ends in exactly one BRIDGE, DESTINATION or ABANDONED,
 *     and the CANCELs of its legs come before it. */
#ifndef SB_FWD_H
#define SB_FWD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/voice_config.h"

typedef struct sb_fwd sb_fwd;

/* ---- inputs ---- */

typedef enum sb_fwd_input_kind {
    SB_FWD_IN_START,        /* .call_id starts scheme .scheme_id */
    SB_FWD_IN_LEG_ANSWERED, /* leg .leg_id of .call_id answered */
    SB_FWD_IN_LEG_FAILED,   /* leg .leg_id of .call_id ended unanswered: .fail */
    SB_FWD_IN_HANGUP,       /* the caller of .call_id hung up */
} sb_fwd_input_kind;

typedef enum sb_fwd_fail {
    SB_FWD_FAIL_NO_ANSWER,   /* rang out */
    SB_FWD_FAIL_BUSY,        /* busy or declined: the call reached them */
    SB_FWD_FAIL_UNREACHABLE, /* the leg could not be placed at all */
} sb_fwd_fail;

typedef struct sb_fwd_input {
    sb_fwd_input_kind kind;
    uint64_t call_id;
    int64_t scheme_id; /* START */
    uint32_t leg_id;   /* LEG_* */
    sb_fwd_fail fail;  /* LEG_FAILED */
} sb_fwd_input;

/* ---- actions out ---- */

typedef enum sb_fwd_action_kind {
    SB_FWD_RING,        /* ring .target as leg .leg_id of .call_id for .timeout_seconds */
    SB_FWD_CANCEL,      /* stop leg .leg_id: .reason */
    SB_FWD_BRIDGE,      /* connect .call_id to its answered leg .leg_id; the call leaves */
    SB_FWD_DESTINATION, /* nobody answered: .dest, .reason FINAL / BACKUP / NO_SCHEME; the call leaves */
    SB_FWD_ABANDONED,   /* the caller hung up; the call leaves, nothing to execute */
} sb_fwd_action_kind;

typedef enum sb_fwd_reason {
    SB_FWD_R_NONE,      /* RING */
    SB_FWD_R_ANSWERED,  /* BRIDGE; CANCEL: another leg answered */
    SB_FWD_R_TIMEOUT,   /* CANCEL: the leg's time is over */
    SB_FWD_R_CALLER,    /* CANCEL, ABANDONED: the caller hung up */
    SB_FWD_R_FINAL,     /* DESTINATION: the steps are done and nobody answered */
    SB_FWD_R_BACKUP,    /* DESTINATION: no leg could be delivered at all */
    SB_FWD_R_NO_SCHEME, /* DESTINATION (a hang-up): the scheme is not loaded */
} sb_fwd_reason;

typedef struct sb_fwd_action {
    sb_fwd_action_kind kind;
    uint64_t call_id;
    uint32_t leg_id;      /* RING, CANCEL, BRIDGE */
    sb_fwd_target target; /* RING, CANCEL, BRIDGE: an agent, number or SIP URI (never a team) */
    int64_t team_id;      /* the team target an agent was rung through; 0: named directly */
    int step;             /* 1-based step of the scheme; 0 for NO_SCHEME */
    int timeout_seconds;  /* RING */
    sb_fwd_reason reason;
    sb_ivr_target dest; /* DESTINATION */
    int64_t scheme_id;
    int64_t elapsed_ms; /* BRIDGE, DESTINATION, ABANDONED: since START */
} sb_fwd_action;

typedef struct sb_fwd_actions {
    sb_fwd_action *v;
    size_t n, cap;
} sb_fwd_actions;

void sb_fwd_actions_reset(sb_fwd_actions *out);
void sb_fwd_actions_free(sb_fwd_actions *out);
const char *sb_fwd_action_name(sb_fwd_action_kind kind);
const char *sb_fwd_reason_name(sb_fwd_reason reason);

/* ---- the module ---- */

sb_fwd *sb_fwd_new(void);
void sb_fwd_free(sb_fwd *f);

/* Configuration: schemes and teams (agents' availability and the trunk
 * are state and stay). Putting an existing id replaces it; calls in
 * progress keep the scheme they started with. SB_EINVAL for a scheme
 * without steps or a team id <= 0. */
void sb_fwd_clear_config(sb_fwd *f);
int sb_fwd_put_scheme(sb_fwd *f, const sb_fwd_scheme *scheme);
int sb_fwd_put_team(sb_fwd *f, int64_t team_id, const int64_t *agent_ids, size_t n);

/* State. An agent never reported is unavailable; the trunk starts down. */
void sb_fwd_set_agent(sb_fwd *f, int64_t agent_id, bool available);
void sb_fwd_set_trunk(sb_fwd *f, bool up);

/* Handles one input at `now`; appends the actions to `out`. SB_ENOTFOUND
 * for a call the module does not have or a leg that is not ringing;
 * SB_ECONFLICT for a START of a call it has; SB_EINVAL for a bad input.
 * Nothing changes then. */
int sb_fwd_handle(sb_fwd *f, const sb_fwd_input *in, int64_t now, sb_fwd_actions *out);
/* Fires every timer due at or before `now`. */
void sb_fwd_tick(sb_fwd *f, int64_t now, sb_fwd_actions *out);
/* When sb_fwd_tick should run next: the earliest live deadline (cancelled
 * timers never wake the executor); INT64_MAX if nothing is due. */
int64_t sb_fwd_next_deadline(const sb_fwd *f);

/* Calls in a scheme now. */
size_t sb_fwd_calls(const sb_fwd *f);
/* Whether the module is ringing this agent for some call. */
bool sb_fwd_ringing(const sb_fwd *f, int64_t agent_id);
/* Checks internal consistency (legs vs agents' ring counts, every call
 * ringing with a timer armed); aborts through SB_ASSERT. For tests. */
void sb_fwd_check(const sb_fwd *f);

#endif
