/* engine.h - the routing and service engine: who gets which ticket, when,
 * and whether it was answered in time.
 *
 * Pure (DESIGN.md §1): effects = handle(state, event, now). It never reads
 * a clock, a socket or the disk; `now` is wall-clock Unix ms passed in by
 * the caller (the daemon's loop, or a test's virtual clock). Timers live in
 * the engine's own heap: the caller asks sb_engine_next_deadline() when to
 * call sb_engine_tick() next.
 *
 * The engine owns the live state of open work: agents with presence, load,
 * capacity, skills, languages and absences; teams with their assignment
 * strategy and queue; open tickets with owner, queue place and SLA clocks.
 * It applies its own decisions to that state at once and reports each as an
 * effect, which the caller persists (store), sends (channels) or pushes
 * (agent streams). After a restart the caller rebuilds the state from the
 * store with the sb_engine_put_* calls; an open ticket with no owner goes
 * back into its queue, so nothing acknowledged is forgotten.
 *
 * Invariants (sb_engine_check): a ticket has at most one owner; every open
 * ticket (new, open, pending) is either assigned or in exactly one queue;
 * an agent's load is the sum of the weights of the tickets they own. */
#ifndef SB_ENGINE_H
#define SB_ENGINE_H

#include <stdbool.h>
#include <stdint.h>

#include "base/sb.h"
#include "engine/calendar.h"
#include "engine/rules.h"
#include "engine/template.h"

#define SB_ENGINE_NAME_MAX   64
#define SB_ENGINE_MAX_TAGS   8
#define SB_ENGINE_MAX_SKILLS 8
#define SB_ENGINE_MAX_LANGS  4
#define SB_ENGINE_MAX_TEAMS  8 /* teams per agent */
#define SB_ENGINE_MAX_ATTRS  8 /* contact attributes rules can test */

typedef enum sb_status {
    SB_STATUS_NEW,
    SB_STATUS_OPEN,
    SB_STATUS_PENDING, /* waiting for the customer */
    SB_STATUS_RESOLVED,
    SB_STATUS_CLOSED,
} sb_status;

typedef enum sb_priority {
    SB_PRIORITY_LOW,
    SB_PRIORITY_NORMAL,
    SB_PRIORITY_HIGH,
    SB_PRIORITY_URGENT,
} sb_priority;

typedef enum sb_presence {
    SB_PRESENCE_OFFLINE,
    SB_PRESENCE_AWAY,
    SB_PRESENCE_ONLINE,
} sb_presence;

typedef enum sb_strategy {
    SB_STRATEGY_ROUND_ROBIN, /* the next member after the one last assigned */
    SB_STRATEGY_LEAST_BUSY,  /* the lowest weighted load */
    SB_STRATEGY_MANUAL,      /* queue only; people take tickets themselves */
} sb_strategy;

/* Channel kinds weigh differently on an agent's load. */
typedef enum sb_channel_kind {
    SB_CHANNEL_CHAT, /* web chat, messengers, API */
    SB_CHANNEL_EMAIL,
    SB_CHANNEL_CALL,
    SB_CHANNEL_KIND_COUNT,
} sb_channel_kind;

const char *sb_status_name(sb_status s);
int sb_status_parse(const char *z, sb_status *out);
const char *sb_priority_name(sb_priority p);
int sb_priority_parse(const char *z, sb_priority *out);
const char *sb_strategy_name(sb_strategy s);
int sb_strategy_parse(const char *z, sb_strategy *out);
const char *sb_presence_name(sb_presence p);
int sb_presence_parse(const char *z, sb_presence *out);

/* Short tokens (skills, languages, tags), NUL-terminated, fixed size. */
typedef struct sb_token {
    char v[32];
} sb_token;

/* ---- configuration ---- */

typedef struct sb_engine_team_cfg {
    int64_t id;
    char name[SB_ENGINE_NAME_MAX];
    sb_strategy strategy;
    int64_t supervisor_id; /* told about reassignments and escalations; 0 = none */
    /* assignee silent this long after the customer wrote → next agent;
     * per channel kind, since an email may wait an hour but a chat cannot;
     * 0 = never */
    int64_t unanswered_ms[SB_CHANNEL_KIND_COUNT];
    int64_t sticky_wait_ms; /* a returning contact waits this long for their owner */
    int64_t calendar_id;    /* business hours of the team; 0 = always open */
    int auto_away_after;    /* this many unanswered in a row → the agent is set away; 0 = never */
} sb_engine_team_cfg;

typedef struct sb_engine_agent_cfg {
    int64_t id;
    char name[SB_ENGINE_NAME_MAX];
    bool supervisor; /* role supervisor or admin */
    double capacity; /* in load units; <= 0 means the default (1.0) */
    sb_token skills[SB_ENGINE_MAX_SKILLS];
    int nskills;
    sb_token languages[SB_ENGINE_MAX_LANGS];
    int nlanguages;
    int64_t teams[SB_ENGINE_MAX_TEAMS];
    int nteams;
} sb_engine_agent_cfg;

/* SLA targets for one priority; 0 = no target for that clock. */
typedef struct sb_sla_targets {
    int64_t first_response_ms;
    int64_t next_response_ms;
    int64_t resolution_ms;
} sb_sla_targets;

/* An SLA policy applies to the tickets its conditions match; the first
 * matching policy (in the order they were put) wins. A condition left at
 * its zero value matches everything. */
typedef struct sb_sla_policy {
    int64_t id;
    /* conditions */
    int64_t team_id;
    int channel_kind; /* -1 any, else sb_channel_kind */
    int vip;          /* -1 any, 0 non-VIP, 1 VIP */
    sb_token tag;     /* "" any */
    /* targets per priority, business or calendar time */
    sb_sla_targets targets[4];
    int64_t calendar_id; /* business time of this calendar; 0 = calendar time */
    int warn_pct;        /* warn when this % of a target has passed; 0 = no warning */
} sb_sla_policy;

typedef struct sb_engine_cfg {
    double weight[SB_CHANNEL_KIND_COUNT]; /* load per ticket; defaults 1/3, 1/10, 1 (a call: the whole agent) */
    int auto_replies_per_hour;            /* per contact; default 3 */
    int64_t csat_template_id;             /* sent when a ticket is resolved; 0 = no survey */
    char company_name[SB_ENGINE_NAME_MAX];
    char default_language[8]; /* for templates when the contact's is unknown; default "ru" */
} sb_engine_cfg;

/* ---- events in ---- */

typedef struct sb_ticket_info {
    int64_t id;
    int64_t number;
    int64_t contact_id;
    sb_channel_kind channel;
    sb_status status;
    sb_priority priority;
    int64_t team_id;
    int64_t assignee_id; /* 0 = none */
    int64_t created_at;
    /* routing needs */
    sb_token skill;    /* "" = none required */
    sb_token language; /* "" = any */
    bool vip;
    int64_t owner_id; /* the contact's owner or last agent, for sticky routing */
    sb_token tags[SB_ENGINE_MAX_TAGS];
    int ntags;
    /* what rules and templates look at */
    sb_token channel_type;     /* "webchat", "api", "email", "telegram", ... */
    sb_token contact_language; /* "" = unknown */
    char contact_name[SB_ENGINE_NAME_MAX];
    char contact_phone[32];
    char contact_email[SB_ENGINE_NAME_MAX];
    char subject[128];
    sb_token contact_tags[SB_ENGINE_MAX_TAGS];
    int ncontact_tags;
    sb_token attr_keys[SB_ENGINE_MAX_ATTRS];
    char attr_values[SB_ENGINE_MAX_ATTRS][64];
    int nattrs;
    int64_t first_response_at; /* when loaded after a restart: 0 = not yet */
} sb_ticket_info;

typedef enum sb_event_kind {
    SB_EV_TICKET_NEW,       /* .ticket: a ticket was created (or loaded) */
    SB_EV_CUSTOMER_MESSAGE, /* .ticket_id: the customer wrote */
    SB_EV_AGENT_REPLY,      /* .ticket_id, .agent_id: an agent replied to the customer */
    SB_EV_STATUS,           /* .ticket_id, .status, .agent_id (0 = system/customer) */
    SB_EV_PRIORITY,         /* .ticket_id, .priority */
    SB_EV_ASSIGN,           /* .ticket_id, .agent_id (0 = unassign), .team_id (0 = keep) */
    SB_EV_PRESENCE,         /* .agent_id, .presence */
    SB_EV_ABSENCE,          /* .agent_id, .until (0 = back), .deputy_id */
    SB_EV_HANDOVER,         /* .agent_id: give their open tickets to their deputy */
    SB_EV_TAKE,             /* .ticket_id, .agent_id: an agent takes a queued ticket */
    SB_EV_TASK,             /* .task: a task was created or changed (open) */
    SB_EV_TASK_DONE,        /* .task.id: done or cancelled */
    SB_EV_ON_CALL,          /* .agent_id is (.on_call) or is no longer on a phone call */
} sb_event_kind;

/* An open task: a call back or a follow-up, with its times. */
typedef struct sb_task_info {
    int64_t id;
    int64_t ticket_id; /* 0 = none */
    int64_t assignee_id;
    int64_t due_at;
    int64_t remind_at; /* 0 = no reminder */
} sb_task_info;

typedef struct sb_event {
    sb_event_kind kind;
    sb_ticket_info ticket;
    sb_task_info task;
    int64_t ticket_id;
    int64_t agent_id;
    int64_t team_id;
    int64_t deputy_id;
    int64_t until;
    sb_status status;
    sb_priority priority;
    sb_presence presence;
    const char *text;   /* the customer's message (TICKET_NEW, CUSTOMER_MESSAGE); NULL = none */
    bool auto_reply;    /* that message is itself an automatic reply: never answer it automatically */
    bool restored;      /* TICKET_NEW: loaded after a restart, not new: no ticket.created rules */
    bool without_rules; /* no rules run for this event (closing a blacklisted sender's ticket) */
    bool on_call;       /* ON_CALL: a call takes the whole agent: no new work meanwhile */
} sb_event;

/* ---- effects out ---- */

typedef enum sb_effect_kind {
    SB_FX_ASSIGN,        /* .ticket_id → .agent_id (0 = none) in .team_id; .reason */
    SB_FX_QUEUE,         /* .ticket_id waits in .team_id's queue; .reason */
    SB_FX_NOTIFY,        /* tell .agent_id about .ticket_id; .reason */
    SB_FX_PRIORITY,      /* .ticket_id's priority became .priority */
    SB_FX_SLA_DUE,       /* .ticket_id's due times changed: .due[] (0 = none) */
    SB_FX_SLA_EVENT,     /* .ticket_id: .sla_clock reached .sla_state at .at */
    SB_FX_PRESENCE,      /* .agent_id is now .presence; .reason ("auto_away") */
    SB_FX_STATUS,        /* .ticket_id's status became .status (by a rule) */
    SB_FX_TAG,           /* .ticket_id: tag .text added (.added) or removed */
    SB_FX_REPLY,         /* send .text to the customer in the ticket's channel; .template_id; .reason "rule"/"csat" */
    SB_FX_NOTE,          /* add internal note .text */
    SB_FX_TASK,          /* create task .text due .due_at for .agent_id */
    SB_FX_WEBHOOK,       /* POST the ticket's event to .text (URL); .trigger */
    SB_FX_TEAM,          /* .ticket_id moved to .team_id */
    SB_FX_TASK_REMINDER, /* .task_id is due at .due_at; its assignee (.agent_id) is reminded */
    SB_FX_TASK_OVERDUE,  /* .task_id passed .due_at undone */
} sb_effect_kind;

typedef enum sb_sla_clock {
    SB_SLA_FIRST_RESPONSE,
    SB_SLA_NEXT_RESPONSE,
    SB_SLA_RESOLUTION,
    SB_SLA_CLOCK_COUNT,
} sb_sla_clock;

typedef enum sb_sla_state {
    SB_SLA_WARNING,
    SB_SLA_BREACHED,
    SB_SLA_MET,    /* stopped in time */
    SB_SLA_MISSED, /* stopped after its breach */
} sb_sla_state;

const char *sb_sla_clock_name(sb_sla_clock c);
const char *sb_sla_state_name(sb_sla_state s);

typedef struct sb_effect {
    sb_effect_kind kind;
    int64_t ticket_id;
    int64_t agent_id;
    int64_t team_id;
    int64_t at;
    const char *reason; /* static string: "round_robin", "sticky", "deputy", "unanswered", ... */
    sb_priority priority;
    sb_presence presence;
    sb_sla_clock sla_clock;
    sb_sla_state sla_state;
    int64_t due[SB_SLA_CLOCK_COUNT];
    sb_status status;
    char *text; /* owned by the effect list */
    bool added;
    int64_t template_id;
    int64_t rule_id; /* the rule that caused it; 0 = routing/SLA */
    int64_t due_at;
    int64_t task_id;
    const char *trigger;
} sb_effect;

typedef struct sb_effects {
    sb_effect *v;
    size_t n, cap;
} sb_effects;

void sb_effects_reset(sb_effects *fx);
void sb_effects_free(sb_effects *fx);

/* ---- the engine ---- */

typedef struct sb_engine sb_engine;

sb_engine *sb_engine_new(const sb_engine_cfg *cfg /* NULL = defaults */);
/* Replaces the settings (weights apply to assignments made from now on). */
void sb_engine_set_cfg(sb_engine *eng, const sb_engine_cfg *cfg);
void sb_engine_free(sb_engine *eng);

/* Configuration. Putting an existing id replaces it. The engine takes the
 * calendar (freed with the engine or when replaced). */
int sb_engine_put_team(sb_engine *eng, const sb_engine_team_cfg *team);
int sb_engine_put_agent(sb_engine *eng, const sb_engine_agent_cfg *agent);
int sb_engine_put_calendar(sb_engine *eng, int64_t id, sb_calendar *cal);
int sb_engine_put_sla_policy(sb_engine *eng, const sb_sla_policy *policy);
/* Rules run in the order they were put; putting an existing id replaces it
 * in place. The engine takes the rule. SB_ENOTFOUND if the rule names a
 * template, team or calendar the engine does not have. */
int sb_engine_put_rule(sb_engine *eng, sb_rule *rule);
int sb_engine_remove_rule(sb_engine *eng, int64_t rule_id);
/* Drops every rule, template, SLA policy and calendar, to put the current
 * ones again (a reload). Tickets keep their SLA clocks; the policies and
 * calendars are looked up by id when next needed. */
void sb_engine_clear_config(sb_engine *eng);
/* A template's text in one language ("ru", "en", ...). The engine takes it. */
int sb_engine_put_template(sb_engine *eng, int64_t id, const char *language, sb_template *tpl);

/* Handles one event at `now`; appends the effects to `fx`. Returns
 * SB_ENOTFOUND for an unknown ticket/agent/team and SB_EINVAL for an
 * impossible request (e.g. taking a ticket for an agent of another team);
 * the state is unchanged then. */
int sb_engine_handle(sb_engine *eng, const sb_event *ev, int64_t now, sb_effects *fx);
/* Fires every timer due at or before `now`. */
void sb_engine_tick(sb_engine *eng, int64_t now, sb_effects *fx);
/* When sb_engine_tick should run next; INT64_MAX if nothing is due. */
int64_t sb_engine_next_deadline(const sb_engine *eng);

/* ---- reading the state ---- */

typedef struct sb_ticket_view {
    int64_t id;
    sb_status status;
    sb_priority priority;
    int64_t team_id;
    int64_t assignee_id;
    bool queued;
    int queue_position; /* 1-based in its team's queue; 0 if not queued */
    int64_t due[SB_SLA_CLOCK_COUNT];
    bool breached[SB_SLA_CLOCK_COUNT];
    int64_t first_response_at;
    int reassignments;
    int64_t created_at;
    int64_t waiting_since; /* the customer's first message not yet answered (for a
                            * ticket loaded after a restart: its creation); 0 = answered */
    sb_token channel_type;
    bool sla_at_risk;  /* a running clock passed its warning but not its due time */
    bool sla_breached; /* a running clock passed its due time */
} sb_ticket_view;

int sb_engine_ticket(const sb_engine *eng, int64_t ticket_id, sb_ticket_view *out);

typedef struct sb_agent_view {
    int64_t id;
    sb_presence presence;
    double load, capacity;
    int open_tickets;
    int64_t absent_until;
    int64_t deputy_id;
    const char *name; /* the engine's; valid until the agent is put again */
    bool supervisor;
    bool on_call; /* talking on the phone (the voice side says so) */
} sb_agent_view;

int sb_engine_agent(const sb_engine *eng, int64_t agent_id, sb_agent_view *out);
/* Tickets waiting in a team's queue. */
int sb_engine_queue_length(const sb_engine *eng, int64_t team_id);
size_t sb_engine_open_tickets(const sb_engine *eng);

/* Every open ticket (in no particular order), every agent, every team, for
 * live figures. The views are built for the call; fn must not change the
 * engine. A ticket's `queue_position` is 0 in these views: it costs a
 * binary search per ticket (ask sb_engine_ticket for one). */
void sb_engine_each_ticket(const sb_engine *eng, void (*fn)(void *arg, const sb_ticket_view *t), void *arg);
void sb_engine_each_agent(const sb_engine *eng, void (*fn)(void *arg, const sb_agent_view *a), void *arg);
void sb_engine_each_team(const sb_engine *eng, void (*fn)(void *arg, int64_t id, const char *name), void *arg);

/* Told when a ticket leaves the engine (resolved or closed; .status says
 * which), with its last view, after its status.changed rules ran. fn must
 * not change the engine. NULL stops it. */
typedef void (*sb_engine_leave_fn)(void *arg, const sb_ticket_view *t, int64_t now);
void sb_engine_on_leave(sb_engine *eng, sb_engine_leave_fn fn, void *arg);

/* Checks the invariants; returns the number of violations and describes
 * the first in `msg`. */
int sb_engine_check(const sb_engine *eng, char *msg, size_t msg_cap);

#endif
