/* api.h - REST plumbing: routing, authentication and the request op.
 *
 * Each API request becomes one store op (sb_api_op): its transaction script
 * authenticates the caller (token or session, checked inside the same
 * transaction so a revoked token stops working at once), checks the role,
 * and runs the endpoint's action. After the commit, the completion sends the
 * response and publishes the events the action produced.
 *
 * An op whose action only reads can set `read_only` before sb_api_submit:
 * it then runs on the store's reader thread (sb_store_read), in a snapshot
 * of the last commit, and does not hold up the store thread's batches.
 * Authentication only reads, so it runs there the same way. */
#ifndef SB_API_H
#define SB_API_H

#include <jansson.h>

#include "app.h"
#include "engine/model.h"
#include "http/http.h"
#include "store/store.h"

typedef enum sb_role { SB_ROLE_NONE = 0, SB_ROLE_AGENT, SB_ROLE_SUPERVISOR, SB_ROLE_ADMIN } sb_role;

sb_role sb_role_parse(const char *z);
const char *sb_role_name(sb_role r);

typedef struct sb_api_op sb_api_op;
typedef int (*sb_api_action)(sb_tx *tx, sb_api_op *op);

struct sb_api_op {
    sb_app *app;
    sb_http_req *req;
    sb_api_action action;
    sb_role min_role; /* SB_ROLE_NONE: no authentication */
    bool read_only;   /* run with sb_store_read: the action must not write */
    /* credentials, extracted before submit */
    char token_hash[65];
    bool via_session;
    bool allow_query_token; /* ?access_token= (WebSocket from browsers) */
    bool csrf_ok;
    /* who is calling (filled by authentication) */
    int64_t agent_id;
    sb_role role;
    /* inputs */
    json_t *body;          /* parsed JSON body or NULL */
    int64_t path_id;       /* numeric path parameter */
    const char *path_rest; /* text after the numeric parameter */
    void *ctx;             /* action-specific */
    void (*ctx_free)(void *);
    /* outputs */
    int status;
    json_t *out;
    json_t *events;       /* published after commit */
    char *out_text;       /* out serialised on the store thread */
    bool out_on_loop;     /* no: `after` builds out on the loop */
    int64_t committed_at; /* the transaction's time, for the events */
    char err_code[40];
    char err_msg[300];
    /* post-commit hook (e.g. poke the outbox) */
    void (*after)(sb_api_op *op);
};

/* Entry point from the HTTP server. */
void sb_api_handle(sb_app *app, sb_http_req *req);

/* Sets an error for the response and returns the SB_E* code to roll back. */
int sb_api_fail(sb_api_op *op, int status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Submits op to the store with the given action. */
void sb_api_submit(sb_api_op *op);
sb_api_op *sb_api_op_new(sb_app *app, sb_http_req *req, sb_role min_role, sb_api_action action);
/* Parses the request body as a JSON object into op->body; responds 400/415
 * and returns false on failure (op freed). */
bool sb_api_parse_body(sb_api_op *op);
void sb_api_op_free(sb_api_op *op);

/* Body field helpers for validation (422 naming the field). Each returns 0
 * or fails the op. `out` untouched when the field is absent. */
int sb_api_field_str(sb_api_op *op, json_t *obj, const char *name, bool required, size_t maxlen, const char **out);
int sb_api_field_int(sb_api_op *op, json_t *obj, const char *name, bool required, int64_t *out, bool *present);
/* Tags: an array of at most 50 non-empty strings of at most 64 bytes. */
int sb_api_validate_tags(sb_api_op *op, json_t *tags);
/* Custom attributes: an object of at most 100 keys (1..64 bytes) whose
 * values are strings (at most 4096 bytes), numbers, booleans or null. */
int sb_api_validate_attributes(sb_api_op *op, json_t *attrs);
/* A non-negative decimal id from a query parameter. */
bool sb_api_parse_id(const char *z, int64_t *out);
/* Reads the first column of every row of `s` (already bound) into *ids
 * (malloc'd). Returns 0 or a store error. */
int sb_api_collect_ids(sb_stmt *s, int64_t **ids, size_t *n);
/* Rejects keys not in the NULL-terminated list (422 unknown_field). */
int sb_api_only_fields(sb_api_op *op, json_t *obj, const char *const *allowed);

/* Routes of each resource file. Each returns true if it handled the path. */
bool sb_api_auth_route(sb_app *app, sb_http_req *req, const char *path);
bool sb_api_tickets_route(sb_app *app, sb_http_req *req, const char *path);
bool sb_api_contacts_route(sb_app *app, sb_http_req *req, const char *path);
bool sb_api_directory_route(sb_app *app, sb_http_req *req, const char *path); /* agents, teams */
bool sb_api_channels_route(sb_app *app, sb_http_req *req, const char *path);
bool sb_api_system_route(sb_app *app, sb_http_req *req, const char *path);
bool sb_api_config_route(sb_app *app, sb_http_req *req, const char *path);       /* rules, templates, calendars, SLA */
bool sb_api_voice_config_route(sb_app *app, sb_http_req *req, const char *path); /* numbers, menus, schemes */
bool sb_api_blacklist_route(sb_app *app, sb_http_req *req, const char *path);
bool sb_api_tasks_route(sb_app *app, sb_http_req *req, const char *path);
bool sb_api_metrics_route(sb_app *app, sb_http_req *req, const char *path); /* /api/v1/metrics/{summary,report} */
bool sb_api_calls_route(sb_app *app, sb_http_req *req, const char *path);   /* /api/v1/calls: the call log */
/* POST /api/v1/calls (place an outbound call), DELETE /api/v1/calls/{live id} */
bool sb_api_outbound_route(sb_app *app, sb_http_req *req, const char *path);
/* GET /api/v1/callbacks, DELETE /api/v1/callbacks/{id}: the website's call-back requests */
bool sb_api_callbacks_route(sb_app *app, sb_http_req *req, const char *path);
/* POST /chat/callback: the widget's "Call me back" form (public; src/api/callbacks.c) */
void sb_api_callback_form(sb_app *app, sb_http_req *req);
/* A task as GET /api/v1/tasks shows it (NULL if there is none). */
json_t *sb_task_json(sb_tx *tx, int64_t id);
/* The stored form of a blacklist value of `kind` (phone, email, handle,
 * contact): E.164 phones, lower-case emails. 0 or SB_EINVAL. */
int sb_blacklist_normalize(const char *kind, const char *value, char *out, size_t cap);

/* A reply or note added to a ticket, and what it takes to deliver the
 * reply once committed. */
typedef struct sb_delivery {
    int64_t ticket_id;
    char *channel_kind; /* NULL for a note */
    char *visitor_id;   /* webchat */
    json_t *message;
} sb_delivery;

/* Adds a reply (sent in the channel the customer last wrote in) or an
 * internal note to ticket `tid`. `agent_id` 0 means the system (automatic
 * replies), which does not count as the ticket's first response. Appends
 * the events, returns the message JSON (new reference) and the delivery
 * to pass to sb_delivery_send after the commit; *out is set even on
 * failure and must be freed with sb_delivery_free. */
int sb_ticket_add_message(sb_tx *tx, int64_t tid, int64_t agent_id, bool reply, const char *text, json_t *events,
                          sb_delivery **out, json_t **message);
/* The same through channel `channel_id` (0: where the customer last wrote),
 * with `attachments` (stored metadata, see sb_api_store_attachments; NULL:
 * none). The caller has checked the customer is reachable there. */
int sb_ticket_add_message_to(sb_tx *tx, int64_t tid, int64_t agent_id, bool reply, const char *text, int64_t channel_id,
                             json_t *attachments, json_t *events, sb_delivery **out, json_t **message);
/* Decodes the `data` of each attachment into DATA/files/<sha256> (durably)
 * and sets *out to their metadata (name, mime, sha256, size, url). */
int sb_api_store_attachments(sb_api_op *op, json_t *in, json_t **out);
void sb_delivery_send(sb_app *app, const sb_delivery *d);
void sb_delivery_free(sb_delivery *d);

/* "/api/v1/tickets/12/messages" with prefix "/api/v1/tickets/" -> 12, rest "/messages".
 * Returns false if no number follows the prefix. */
bool sb_path_id(const char *path, const char *prefix, int64_t *id, const char **rest);
void sb_respond_method_not_allowed(sb_http_req *req, const char *allow);
/* A collection: GET/HEAD lists (list_role), POST creates from the JSON body
 * (create_role), anything else is 405. Always handles the request. */
bool sb_api_route_collection(sb_app *app, sb_http_req *req, sb_role list_role, sb_api_action list, sb_role create_role,
                             sb_api_action create);

#endif
