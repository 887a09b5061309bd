/* callq.h - the call queue's decisions: which agent's phone rings for
 * which waiting call, for how long, when a call gives up waiting, and what
 * the caller hears about their place in line.
 *
 * Pure (DESIGN.md §1), like ivr.h: actions = handle(state, input, now).
 * The voice executor reports what happens (a call joined a team's queue, a
 * leg to an agent answered or failed, the caller hung up or pressed a key,
 * the agent's call ended) and executes the actions (ring, cancel a ring,
 * bridge, announce a position, play the hold prompt, and the call's way
 * out). The engine reports agents' availability, folded from the model it
 * keeps for chats too: registered phone, presence online, chat load within
 * capacity. `now` is monotonic ms from the caller (the loop or a test's
 * virtual clock); the queue keeps its timers (ring timeouts, wrap-up ends,
 * position announcements, max wait) in its own heap, and the caller asks
 * sb_callq_next_deadline() when to call sb_callq_tick().
 *
 * Semantics (Asterisk app_queue / FreeSWITCH mod_callcenter, DESIGN §5):
 *  - An agent is offered a call only when registered, available and idle:
 *    never while ringing for any call, talking, or in wrap-up. An agent
 *    belongs to any number of queues; their state is shared.
 *  - Waiting calls are offered in order: higher priority first, then the
 *    one that joined first. Every waiting call is offered at once to a
 *    different free agent ("autofill"); ring_all offers one call to every
 *    free member, so the calls behind it wait for the next free agent.
 *  - Strategies pick among the free members not yet tried for this call
 *    in the current round (an agent who let it ring out or refused it is
 *    skipped until every free member was tried; then a new round starts):
 *      ring_all      every free member at once; the first answer wins.
 *      longest_idle  idle longest since their last call ended (never had
 *                    one: longest of all); ties by member order.
 *      fewest_calls  fewest answered queue calls since
 *                    sb_callq_reset_counts() (the day's start); ties by
 *                    member order.
 *      random        uniform among candidates, from the PRNG given with
 *                    sb_callq_set_random() (deterministic in tests).
 *      round_robin   the first candidate after the member who last
 *                    *answered* a call of this queue, in member order —
 *                    not after the last one rung.
 *  - A returning customer's preferred agent (sticky owner) is rung alone
 *    first for `preferred_seconds` when they can be offered the call at the
 *    moment it joins; after that (or if they cannot) the strategy runs,
 *    with the preferred agent counted as tried for the first round.
 *  - When every free member was tried for a call, a new round starts
 *    `retry_seconds` after its last ring ended (Asterisk's `retry`; 0: at
 *    once), so an agent alone on duty is not rung back-to-back.
 *  - Ring timeout per member (`ring_timeout_seconds`): CANCEL_RING and
 *    move on. An agent who becomes unable to take calls while ringing:
 *    CANCEL_RING and move on.
 *  - Answer: CANCEL_RING of the other legs, BRIDGE, LEAVE(answered). The
 *    agent talks until CALL_ENDED_FOR_AGENT, then wraps up for
 *    `wrapup_seconds` of the call's queue.
 *  - Max wait (`max_wait_seconds`, 0 = none): LEAVE(timeout); the caller
 *    routes to the queue's fallback. The callback key: LEAVE(callback).
 *    The caller hanging up: LEAVE(abandoned). Every call that joined
 *    leaves exactly once, with one LEAVE.
 *  - Position announcements every `announce_seconds` (0 = none): the
 *    call's 1-based place among the calls in its queue, in offering order.
 */
#ifndef SB_CALLQ_H
#define SB_CALLQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SB_CALLQ_PROMPT_MAX 64

typedef struct sb_callq sb_callq;

typedef enum sb_callq_strategy {
    SB_CALLQ_RING_ALL,
    SB_CALLQ_LONGEST_IDLE,
    SB_CALLQ_FEWEST_CALLS,
    SB_CALLQ_RANDOM,
    SB_CALLQ_ROUND_ROBIN,
} sb_callq_strategy;

const char *sb_callq_strategy_name(sb_callq_strategy s);
/* SB_EINVAL for an unknown name. */
int sb_callq_strategy_parse(const char *name, sb_callq_strategy *out);

/* One team's queue. Seconds are whole seconds; 0 disables what it can. */
typedef struct sb_callq_config {
    int64_t team_id;
    sb_callq_strategy strategy;
    int ring_timeout_seconds;              /* per member ring; > 0 */
    int wrapup_seconds;                    /* after each answered call */
    int max_wait_seconds;                  /* 0 = wait forever */
    int announce_seconds;                  /* position announcement period; 0 = never */
    int preferred_seconds;                 /* preferred agent rings alone; 0 = ring timeout */
    int retry_seconds;                     /* pause before a new round once every free member was tried */
    char callback_digit;                   /* key that leaves a callback request; 0 = none */
    char hold_prompt[SB_CALLQ_PROMPT_MAX]; /* "" = music on hold */
} sb_callq_config;

/* ---- inputs ---- */

typedef enum sb_callq_input_kind {
    SB_CALLQ_IN_CALL_JOINED,  /* .call_id joins .team_id's queue; .priority, .preferred_agent_id */
    SB_CALLQ_IN_LEG_ANSWERED, /* .agent_id answered the ring for .call_id */
    SB_CALLQ_IN_LEG_FAILED,   /* .agent_id's leg for .call_id failed: .fail_reason */
    SB_CALLQ_IN_CALL_LEFT,    /* the caller hung up while waiting */
    SB_CALLQ_IN_CALL_ENDED,   /* .agent_id's queue call ended: wrap-up starts */
    SB_CALLQ_IN_AGENT_STATE,  /* .agent_id is .registered, .available */
    SB_CALLQ_IN_KEY,          /* the caller of .call_id pressed .digit */
} sb_callq_input_kind;

/* For the executor's call log: every failure moves on the same way. */
typedef enum sb_callq_fail_reason {
    SB_CALLQ_FAIL_NO_ANSWER,
    SB_CALLQ_FAIL_BUSY, /* the phone said busy or rejected */
    SB_CALLQ_FAIL_ERROR,
} sb_callq_fail_reason;

typedef struct sb_callq_input {
    sb_callq_input_kind kind;
    uint64_t call_id;
    int64_t team_id;
    int64_t agent_id;
    int64_t preferred_agent_id; /* 0 = none */
    int priority;               /* higher is offered first; 0 normal */
    sb_callq_fail_reason fail_reason;
    bool registered; /* AGENT_STATE: a phone is registered */
    bool available;  /* AGENT_STATE: presence online and chats allow a call */
    char digit;
} sb_callq_input;

/* ---- actions out ---- */

typedef enum sb_callq_action_kind {
    SB_CALLQ_HOLD,        /* play .prompt ("" = music) on a loop while waiting */
    SB_CALLQ_RING,        /* ring .agent_id for .call_id, .timeout_seconds */
    SB_CALLQ_CANCEL_RING, /* stop ringing .agent_id for .call_id; .reason says why */
    SB_CALLQ_BRIDGE,      /* connect .call_id to .agent_id's answered leg */
    SB_CALLQ_ANNOUNCE,    /* tell .call_id it is .position in line */
    SB_CALLQ_LEAVE,       /* .call_id leaves the queue (forgotten): .reason, .waited_ms */
} sb_callq_action_kind;

/* Why a call leaves, or why a ring is cancelled. */
typedef enum sb_callq_reason {
    SB_CALLQ_R_NONE,
    SB_CALLQ_R_ANSWERED,    /* LEAVE: bridged; CANCEL_RING: someone else answered */
    SB_CALLQ_R_TIMEOUT,     /* LEAVE: max wait, go to fallback; CANCEL_RING: ring timeout */
    SB_CALLQ_R_CALLBACK,    /* LEAVE: callback requested */
    SB_CALLQ_R_ABANDONED,   /* LEAVE: the caller hung up (nothing to execute) */
    SB_CALLQ_R_UNAVAILABLE, /* CANCEL_RING: the agent can no longer take calls */
    SB_CALLQ_R_REMOVED,     /* CANCEL_RING: no longer a member; LEAVE: queue removed */
} sb_callq_reason;
/* A CANCEL_RING sent because the call left carries the LEAVE's reason
 * (ABANDONED, TIMEOUT, CALLBACK, REMOVED) and comes before the LEAVE. */

const char *sb_callq_reason_name(sb_callq_reason r);

typedef struct sb_callq_action {
    sb_callq_action_kind kind;
    uint64_t call_id;
    int64_t team_id;
    int64_t agent_id;
    int timeout_seconds;
    int position;
    sb_callq_reason reason;
    int64_t waited_ms; /* LEAVE: time from joining to leaving */
    char prompt[SB_CALLQ_PROMPT_MAX];
} sb_callq_action;

typedef struct sb_callq_actions {
    sb_callq_action *v;
    size_t n, cap;
} sb_callq_actions;

void sb_callq_actions_reset(sb_callq_actions *out);
void sb_callq_actions_free(sb_callq_actions *out);
const char *sb_callq_action_name(sb_callq_action_kind kind);

/* ---- the queues ---- */

sb_callq *sb_callq_new(void);
void sb_callq_free(sb_callq *q);

/* The PRNG for the random strategy: returns uniform 32-bit values. Without
 * one, a fixed-seed xorshift is used (still deterministic). */
typedef uint32_t (*sb_callq_random_fn)(void *ctx);
void sb_callq_set_random(sb_callq *q, sb_callq_random_fn fn, void *ctx);

/* Adds or replaces team's queue; waiting calls keep waiting under the new
 * settings from their next decision on. SB_EINVAL for a bad config. */
int sb_callq_put_queue(sb_callq *q, const sb_callq_config *cfg);
/* Removes a queue: its calls LEAVE(removed), their rings are cancelled. */
int sb_callq_remove_queue(sb_callq *q, int64_t team_id, int64_t now, sb_callq_actions *out);
/* Members, in order (the order round_robin and ties follow). Adding an
 * existing member does nothing. A new agent is unregistered and
 * unavailable until AGENT_STATE says otherwise. */
int sb_callq_add_member(sb_callq *q, int64_t team_id, int64_t agent_id, int64_t now, sb_callq_actions *out);
/* Cancels the agent's ring for a call of this queue. */
int sb_callq_remove_member(sb_callq *q, int64_t team_id, int64_t agent_id, int64_t now, sb_callq_actions *out);

/* Handles one input at `now`; appends the actions to `out`. SB_ENOTFOUND
 * for a call or queue the module does not have, or a leg that is not
 * ringing (the executor hangs that leg up: the answer crossed a cancel);
 * SB_ECONFLICT for a call that already joined, or CALL_ENDED for an agent
 * not on a queue call; SB_EINVAL for a bad input. Nothing changes then. */
int sb_callq_handle(sb_callq *q, const sb_callq_input *in, int64_t now, sb_callq_actions *out);
/* Fires every timer due at or before `now`. */
void sb_callq_tick(sb_callq *q, int64_t now, sb_callq_actions *out);
/* When sb_callq_tick should run next; INT64_MAX if nothing is due. */
int64_t sb_callq_next_deadline(const sb_callq *q);

/* Starts a new counting day for fewest_calls (agents' answered counts). */
void sb_callq_reset_counts(sb_callq *q);

/* ---- metrics ---- */

typedef struct sb_callq_stats {
    size_t waiting;          /* calls in the queue now (ringing or not) */
    int64_t longest_wait_ms; /* of the calls in the queue now */
    uint64_t joined, answered, abandoned, timed_out, callbacks, removed;
    int64_t answer_wait_total_ms; /* ASA = answer_wait_total_ms / answered */
} sb_callq_stats;

int sb_callq_stats_get(const sb_callq *q, int64_t team_id, int64_t now, sb_callq_stats *out);

typedef enum sb_callq_agent_status {
    SB_CALLQ_AGENT_IDLE,
    SB_CALLQ_AGENT_RINGING,
    SB_CALLQ_AGENT_TALKING,
    SB_CALLQ_AGENT_WRAPUP,
} sb_callq_agent_status;

typedef struct sb_callq_agent_info {
    sb_callq_agent_status status;
    uint64_t call_id; /* RINGING, TALKING */
    bool registered, available;
    uint32_t calls_answered; /* since sb_callq_reset_counts */
    int64_t wrapup_until;    /* WRAPUP */
} sb_callq_agent_info;

int sb_callq_agent_get(const sb_callq *q, int64_t agent_id, sb_callq_agent_info *out);
/* Calls in all queues now. */
size_t sb_callq_calls(const sb_callq *q);
/* Checks internal consistency (agents vs calls, counts); aborts through
 * SB_ASSERT on a broken invariant. For tests and debug builds. */
void sb_callq_check(const sb_callq *q);

#endif
