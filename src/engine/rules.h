/* rules.h - automation rules: when an event happens to a ticket and the
 * conditions hold, run the actions.
 *
 * A rule in its JSON form (what the API and `config export` use):
 *   {"id": 3, "name": "Urgent words", "enabled": true,
 *    "on": ["ticket.created", "message.customer"],
 *    "once_per_ticket": false,
 *    "when": {"all": [{"field": "text", "op": "contains", "value": "срочно"},
 *                     {"any": [{"field": "channel", "op": "in", "value": ["telegram", "webchat"]},
 *                              {"field": "contact.vip", "op": "is", "value": true}]}]},
 *    "actions": [{"type": "set_priority", "value": "urgent"},
 *                {"type": "notify", "target": "supervisor"},
 *                {"type": "stop"}]}
 * Rules run in the order they are given to the engine. "when" may be
 * omitted (always true). Time triggers take a number of minutes:
 *   {"on": ["time.no_agent_reply"], "minutes": 30, ...}
 *
 * Parsing validates everything (unknown keys, fields, operators, value
 * types, regexes, template ids are checked by the engine); a rule that
 * parsed can never fail at run time. */
#ifndef SB_RULES_H
#define SB_RULES_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "engine/text.h"

typedef enum sb_trigger {
    SB_TRIGGER_TICKET_CREATED,
    SB_TRIGGER_MESSAGE_CUSTOMER,
    SB_TRIGGER_MESSAGE_AGENT,
    SB_TRIGGER_STATUS_CHANGED,
    SB_TRIGGER_PRIORITY_CHANGED,
    SB_TRIGGER_ASSIGNMENT_CHANGED,
    SB_TRIGGER_SLA_WARNING,
    SB_TRIGGER_SLA_BREACHED,
    SB_TRIGGER_NO_CUSTOMER_REPLY, /* minutes since the agent's last reply, customer silent */
    SB_TRIGGER_NO_AGENT_REPLY,    /* minutes since the customer wrote, no agent reply */
    SB_TRIGGER_IDLE,              /* minutes in the same status with nothing happening */
    SB_TRIGGER_TASK_OVERDUE,      /* a task of the ticket passed its due time undone */
    SB_TRIGGER_COUNT,
} sb_trigger;

const char *sb_trigger_name(sb_trigger t);

typedef enum sb_action_kind {
    SB_ACTION_SET_PRIORITY,  /* .value: priority name */
    SB_ACTION_SET_STATUS,    /* .value: status name */
    SB_ACTION_ASSIGN_TEAM,   /* .id */
    SB_ACTION_ASSIGN_AGENT,  /* .id, or .value "contact_owner" / "last_responder" */
    SB_ACTION_ADD_TAG,       /* .value */
    SB_ACTION_REMOVE_TAG,    /* .value */
    SB_ACTION_SEND_TEMPLATE, /* .id: template */
    SB_ACTION_ADD_NOTE,      /* .value: text */
    SB_ACTION_NOTIFY,        /* .value "assignee"/"team"/"supervisor", or .id: agent */
    SB_ACTION_CREATE_TASK,   /* .value: title; .minutes: due in; .id: assignee (0 = ticket's) */
    SB_ACTION_WEBHOOK,       /* .value: URL */
    SB_ACTION_STOP,
} sb_action_kind;

typedef struct sb_rule_action {
    sb_action_kind kind;
    int64_t id;
    char *value;
    int64_t minutes;
} sb_rule_action;

/* The facts a rule's conditions look at, gathered by the engine. */
typedef struct sb_rule_facts {
    const char *text;     /* the message that triggered, or "" */
    const char *subject;  /* "" if none */
    const char *channel;  /* channel type: "webchat", "api", "email", "telegram", ... */
    const char *language; /* the text's guessed language, else the contact's, else NULL */
    const char *status;   /* status name */
    const char *priority; /* priority name */
    int64_t team_id, assignee_id;
    bool vip;
    const char *const *contact_tags;
    int ncontact_tags;
    const char *const *ticket_tags;
    int nticket_tags;
    /* contact attributes, as key/value pairs */
    const char *const *attr_keys;
    const char *const *attr_values;
    int nattrs;
    int64_t age_minutes; /* since the ticket was created */
    /* business hours: the engine answers for calendar id at the event's time */
    bool (*in_business_hours)(void *ctx, int64_t calendar_id);
    void *ctx;
} sb_rule_facts;

typedef struct sb_rule sb_rule;

/* Parses and validates a rule. On error returns SB_EINVAL with the path of
 * the bad value in `field` ("when.all[1].op", "actions[0].value", "on[2]")
 * and an English sentence in `msg`. */
int sb_rule_parse(const json_t *j, sb_rule **out, char *field, size_t field_cap, char *msg, size_t msg_cap);
void sb_rule_free(sb_rule *r);
/* The rule as JSON again (new reference), for export and the API. */
json_t *sb_rule_json(const sb_rule *r);

int64_t sb_rule_id(const sb_rule *r);
bool sb_rule_enabled(const sb_rule *r);
bool sb_rule_once_per_ticket(const sb_rule *r);
bool sb_rule_has_trigger(const sb_rule *r, sb_trigger t);
/* For time triggers: the rule's minutes (0 if it has none). */
int64_t sb_rule_minutes(const sb_rule *r);
bool sb_rule_matches(const sb_rule *r, const sb_rule_facts *f);
const sb_rule_action *sb_rule_actions(const sb_rule *r, int *n);

#endif
