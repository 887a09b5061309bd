/* webchat.c - see webchat.h. Visitor connections are kept in a hash table
 * by visitor id; each carries a reference count so a store op that finishes
 * after the visitor left does not touch freed memory. */
#include "channels/webchat.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "api/dashboard.h"
#include "api/ratelimit.h"
#include "base/clock.h"
#include "base/crypto.h"
#include "base/log.h"
#include "dispatch.h"
#include "engine/model.h"

extern const unsigned char sb_asset_widget_js[];
extern const size_t sb_asset_widget_js_len;
extern const unsigned char sb_asset_demo_html[];
extern const size_t sb_asset_demo_html_len;

#define BUCKETS        4096
#define VCONN_MAGIC    0x7C0117u
#define MAX_TEXT_CHARS 4000
#define MAX_TEXT_BYTES 16384
#define VISITOR_RATE   5 /* messages per second per visitor (burst 10) */

typedef struct vconn vconn;
struct vconn {
    unsigned magic;
    int refs;
    bool dead;
    sb_webchat *wc;
    vconn *next;      /* bucket chain */
    sb_ws *ws;        /* WebSocket, or */
    sb_http_req *sse; /* an event stream */
    char visitor_id[33];
    int64_t channel_id;
};

struct sb_webchat {
    sb_app *app;
    vconn *buckets[BUCKETS];
    unsigned nconns;
    uv_timer_t *keepalive; /* SSE comments so proxies keep streams open */
};

#define KEEPALIVE_MS 20000

static void on_keepalive(uv_timer_t *t)
{
    sb_webchat *wc = t->data;
    for (size_t b = 0; b < BUCKETS; b++)
        for (vconn *c = wc->buckets[b]; c != NULL; c = c->next)
            if (c->sse != NULL)
                sb_http_stream_write(c->sse, ": keepalive\n\n", 13);
}

static void free_handle(uv_handle_t *h)
{
    free(h);
}

void sb_visitor_token(const char *secret, const char *visitor_id, char *out, size_t cap)
{
    char mac[65];
    char msg[64];
    snprintf(msg, sizeof msg, "visitor:%s", visitor_id);
    sb_hmac_sha256_hex(secret, strlen(secret), msg, strlen(msg), mac);
    snprintf(out, cap, "v1.%s.%.32s", visitor_id, mac);
}

bool sb_visitor_token_verify(const char *secret, const char *token, char visitor_id[33])
{
    if (token == NULL || strlen(token) != 3 + 32 + 1 + 32 || strncmp(token, "v1.", 3) != 0 || token[35] != '.')
        return false;
    char vid[33];
    memcpy(vid, token + 3, 32);
    vid[32] = '\0';
    for (int i = 0; i < 32; i++)
        if (!((vid[i] >= '0' && vid[i] <= '9') || (vid[i] >= 'a' && vid[i] <= 'f')))
            return false;
    char want[128];
    sb_visitor_token(secret, vid, want, sizeof want);
    if (!sb_consttime_streq(want, token))
        return false;
    memcpy(visitor_id, vid, 33);
    return true;
}

sb_webchat *sb_webchat_new(sb_app *app)
{
    sb_webchat *wc = sb_xcalloc(1, sizeof *wc);
    wc->app = app;
    wc->keepalive = sb_xcalloc(1, sizeof *wc->keepalive);
    uv_timer_init(app->loop, wc->keepalive);
    wc->keepalive->data = wc;
    uv_timer_start(wc->keepalive, on_keepalive, KEEPALIVE_MS, KEEPALIVE_MS);
    uv_unref((uv_handle_t *)wc->keepalive);
    return wc;
}

unsigned sb_webchat_connections(const sb_webchat *wc)
{
    return wc->nconns;
}

static size_t bucket_of(const char *vid)
{
    size_t h = 5381;
    for (const char *p = vid; *p; p++)
        h = h * 33 + (unsigned char)*p;
    return h & (BUCKETS - 1);
}

static vconn *vconn_new(sb_webchat *wc, const char *vid, int64_t channel_id)
{
    vconn *c = sb_xcalloc(1, sizeof *c);
    c->magic = VCONN_MAGIC;
    c->refs = 1;
    c->wc = wc;
    snprintf(c->visitor_id, sizeof c->visitor_id, "%s", vid);
    c->channel_id = channel_id;
    size_t b = bucket_of(vid);
    c->next = wc->buckets[b];
    wc->buckets[b] = c;
    wc->nconns++;
    return c;
}

static void vconn_unref(vconn *c)
{
    SB_ASSERT(c->magic == VCONN_MAGIC);
    if (--c->refs > 0)
        return;
    c->magic = 0;
    free(c);
}

/* The connection is gone: unlink it; memory stays while ops hold it. */
static void vconn_gone(vconn *c)
{
    SB_ASSERT(c->magic == VCONN_MAGIC);
    if (c->dead)
        return;
    c->dead = true;
    sb_webchat *wc = c->wc;
    for (vconn **pp = &wc->buckets[bucket_of(c->visitor_id)]; *pp != NULL; pp = &(*pp)->next) {
        if (*pp == c) {
            *pp = c->next;
            break;
        }
    }
    wc->nconns--;
    c->ws = NULL;
    c->sse = NULL;
    vconn_unref(c);
}

static void vconn_send(vconn *c, json_t *msg)
{
    if (c->dead)
        return;
    char *text = json_dumps(msg, JSON_COMPACT);
    if (c->ws != NULL) {
        sb_ws_send_text(c->ws, text, strlen(text));
    } else if (c->sse != NULL) {
        sb_buf b;
        sb_buf_init(&b);
        sb_buf_printf(&b, "data: %s\n\n", text);
        sb_http_stream_write(c->sse, b.p, b.len);
        sb_buf_free(&b);
    }
    free(text);
}

/* Sends to every connection of the visitor except `skip`; returns how many. */
static int send_visitor(sb_webchat *wc, const char *vid, json_t *msg, vconn *skip)
{
    int n = 0;
    for (vconn *c = wc->buckets[bucket_of(vid)]; c != NULL; c = c->next) {
        if (c != skip && strcmp(c->visitor_id, vid) == 0) {
            vconn_send(c, msg);
            n++;
        }
    }
    return n;
}

/* What a visitor may see of a message. */
static json_t *visitor_view(json_t *m)
{
    json_t *author = json_object_get(m, "author");
    json_t *name = author ? json_object_get(author, "name") : NULL;
    json_t *a = (name != NULL && json_is_string(name) &&
                 strcmp(json_string_value(json_object_get(author, "kind")), "agent") == 0)
                    ? json_pack("{s:O}", "name", name)
                    : json_null();
    return json_pack("{s:O,s:O,s:O,s:o,s:O,s:O}", "id", json_object_get(m, "id"), "direction",
                     json_object_get(m, "direction"), "text", json_object_get(m, "text"), "author", a, "created_at",
                     json_object_get(m, "created_at"), "client_id", json_object_get(m, "client_id"));
}

void sb_webchat_close_all(sb_webchat *wc)
{
    if (wc->keepalive != NULL) {
        uv_timer_stop(wc->keepalive);
        uv_close((uv_handle_t *)wc->keepalive, free_handle);
        wc->keepalive = NULL;
    }
    for (size_t b = 0; b < BUCKETS; b++) {
        while (wc->buckets[b] != NULL) {
            vconn *c = wc->buckets[b];
            if (c->ws != NULL) {
                sb_ws *ws = c->ws;
                vconn_gone(c); /* on_close will find it dead */
                sb_ws_close(ws, 1001, "server shutting down");
            } else if (c->sse != NULL) {
                sb_http_req *r = c->sse;
                vconn_gone(c);
                vconn_unref(c); /* on_close does not follow stream_end */
                sb_http_stream_end(r);
            } else {
                vconn_gone(c);
            }
        }
    }
}

void sb_webchat_free(sb_webchat *wc)
{
    free(wc);
}

/* ---- delivery of agent replies ---- */

typedef struct delivered_op {
    sb_app *app;
    int64_t message_id;
    json_t *events;
} delivered_op;

static int delivered_run(sb_tx *tx, void *arg)
{
    delivered_op *d = arg;
    int rc = sb_tx_exec(tx,
                        "UPDATE message SET delivery_status = 'delivered', updated_at = ? "
                        "WHERE id = ? AND delivery_status IN ('queued','sent')",
                        "ii", sb_tx_now(tx), d->message_id);
    if (rc == 0 && sb_tx_changes(tx) > 0)
        sb_emit(d->events, "message.updated", sb_message_json(tx, d->message_id));
    return rc;
}

static void delivered_done(void *arg, int rc)
{
    delivered_op *d = arg;
    if (rc == 0)
        sb_app_publish(d->app, d->events);
    json_decref(d->events);
    free(d);
}

static void mark_delivered(sb_app *app, int64_t message_id)
{
    delivered_op *d = sb_xcalloc(1, sizeof *d);
    d->app = app;
    d->message_id = message_id;
    d->events = json_array();
    sb_store_submit(app->store, delivered_run, delivered_done, d);
}

void sb_webchat_deliver(sb_webchat *wc, const char *visitor_id, json_t *message)
{
    json_t *msg = json_pack("{s:s,s:o}", "type", "message", "message", visitor_view(message));
    int n = send_visitor(wc, visitor_id, msg, NULL);
    json_decref(msg);
    if (n > 0)
        mark_delivered(wc->app, json_integer_value(json_object_get(message, "id")));
}

void sb_webchat_typing(sb_webchat *wc, const char *visitor_id, const char *agent_name)
{
    json_t *msg = json_pack("{s:s,s:s?}", "type", "typing", "name", agent_name);
    send_visitor(wc, visitor_id, msg, NULL);
    json_decref(msg);
}

/* ---- config ---- */

typedef struct chan_op {
    sb_app *app;
    sb_http_req *req;
    int64_t channel_id;
    json_t *out;
    int status;
} chan_op;

/* Loads the webchat channel's public settings; 404 if not an active webchat. */
static int load_channel(sb_tx *tx, int64_t id, json_t **out)
{
    sb_stmt *s =
        sb_tx_query(tx, "SELECT name, config FROM channel WHERE id = ? AND kind = 'webchat' AND active = 1", "i", id);
    if (s == NULL)
        return SB_EIO;
    int rc = sb_stmt_step(s);
    if (rc == 1) {
        json_t *cfg = json_loads(sb_stmt_text(s, 1), 0, NULL);
        if (cfg == NULL)
            cfg = json_object();
        json_t *greeting = json_object_get(cfg, "greeting");
        json_t *color = json_object_get(cfg, "color");
        *out = json_pack("{s:I,s:s,s:b,s:O,s:O}", "channel_id", (json_int_t)id, "name", sb_stmt_text(s, 0), "prechat",
                         json_is_true(json_object_get(cfg, "prechat")), "greeting", greeting ? greeting : json_null(),
                         "color", color ? color : json_null());
        /* the widget shows its "Call me back" form (POST /chat/callback) */
        json_object_set_new(*out, "callback", json_boolean(json_is_object(json_object_get(cfg, "callback"))));
        json_decref(cfg);
    }
    sb_stmt_end(s);
    return rc < 0 ? rc : (rc == 1 ? 0 : SB_ENOTFOUND);
}

static int config_run(sb_tx *tx, void *arg)
{
    chan_op *c = arg;
    return load_channel(tx, c->channel_id, &c->out);
}

static void config_done(void *arg, int rc)
{
    chan_op *c = arg;
    if (rc == 0) {
        sb_http_add_header(c->req, "Cache-Control", "no-cache");
        sb_http_respond_json(c->req, 200, c->out);
        c->out = NULL;
    } else if (rc == SB_ENOTFOUND) {
        sb_http_respond_error(c->req, 404, "not_found", "no such chat channel");
    } else {
        sb_http_add_header(c->req, "Retry-After", "1");
        sb_http_respond_error(c->req, 503, "store_unavailable", "retry later");
    }
    json_decref(c->out);
    free(c);
}

static bool channel_param(sb_http_req *req, int64_t *id)
{
    const char *v = sb_http_req_query_param(req, "channel");
    return v != NULL && sb_api_parse_id(v, id) && *id > 0;
}

/* ---- session ---- */

typedef struct session_op {
    sb_app *app;
    sb_http_req *req;
    json_t *body;
    int64_t channel_id;
    char visitor_id[33];
    char token[128];
    json_t *messages;
    json_t *events;
    char err_field[32];
    int err;
} session_op;

static void session_free(session_op *s)
{
    json_decref(s->body);
    json_decref(s->messages);
    json_decref(s->events);
    free(s);
}

#define HISTORY_SQL                                                                                                    \
    "SELECT m.id, m.direction, m.text, a.name, m.created_at, m.client_id, m.delivery_status "                          \
    "FROM message m JOIN ticket t ON t.id = m.ticket_id JOIN channel ch ON ch.id = m.channel_id "                      \
    "LEFT JOIN agent a ON a.id = m.author_agent_id "                                                                   \
    "WHERE t.contact_id = ? AND m.direction IN ('in','out') AND ch.kind = 'webchat' "                                  \
    "AND m.created_at >= ? ORDER BY m.id DESC LIMIT 100"

static int session_run(sb_tx *tx, void *arg)
{
    session_op *s = arg;
    json_t *chan = NULL;
    int rc = load_channel(tx, s->channel_id, &chan);
    json_decref(chan);
    if (rc != 0)
        return rc;
    const char *name = json_string_value(json_object_get(s->body, "name"));
    const char *email = json_string_value(json_object_get(s->body, "email"));
    const char *phone = json_string_value(json_object_get(s->body, "phone"));
    const char *lang = json_string_value(json_object_get(s->body, "lang"));
    if (lang != NULL && strlen(lang) > 16)
        lang = NULL; /* a browser language tag, else ignored */
    char phone_n[40], email_n[256];
    if (phone != NULL && phone[0] != '\0' && sb_phone_normalize(phone, "7", phone_n, sizeof phone_n) != 0) {
        snprintf(s->err_field, sizeof s->err_field, "phone");
        return SB_EINVAL;
    }
    if (email != NULL && email[0] != '\0' && sb_email_normalize(email, email_n, sizeof email_n) != 0) {
        snprintf(s->err_field, sizeof s->err_field, "email");
        return SB_EINVAL;
    }
    int64_t now = sb_tx_now(tx);
    int64_t cid = 0, since = now;
    sb_stmt *st = sb_tx_query(tx,
                              "SELECT contact_id, created_at FROM contact_identity WHERE kind = 'webchat' "
                              "AND scope = 0 AND address = ?",
                              "t", s->visitor_id);
    if (st == NULL)
        return SB_EIO;
    if (sb_stmt_step(st) == 1) {
        cid = sb_stmt_int(st, 0);
        since = sb_stmt_int(st, 1);
    }
    sb_stmt_end(st);
    bool has_data = (name && name[0]) || (email && email[0]) || (phone && phone[0]);
    if (cid == 0 && has_data) {
        /* Pre-chat data: a contact of its own. An email or phone typed into
         * a form is not proof of identity, so it never links this visitor to
         * an existing customer's conversation; agents can merge contacts. */
        rc = sb_tx_insert(tx, &cid, "INSERT INTO contact (name, language, created_at, updated_at) VALUES (?, ?, ?, ?)",
                          "ttii", (name && name[0]) ? name : NULL, lang, now, now);
        if (rc != 0)
            return rc < 0 ? rc : SB_EIO;
        rc = sb_identity_attach(tx, cid, "webchat", 0, s->visitor_id);
        if (rc == 0)
            rc = sb_event_log(tx, (sb_actor){"contact", cid}, "contact", cid, "contact.created",
                              json_pack("{s:s}", "source", "webchat"));
        if (rc != 0)
            return rc;
        sb_emit(s->events, "contact.created", sb_contact_json(tx, cid));
    } else if (cid != 0 && has_data) {
        cid = sb_contact_resolve(tx, cid);
        /* Fills an empty name only: an agent's correction wins. */
        if (name && name[0])
            rc = sb_tx_exec(tx, "UPDATE contact SET name = ?, updated_at = ? WHERE id = ? AND name IS NULL", "tii",
                            name, now, cid);
        if (rc != 0)
            return rc;
    }
    if (cid != 0) {
        cid = sb_contact_resolve(tx, cid);
        if (phone && phone[0] && (rc = sb_identity_attach(tx, cid, "phone", 0, phone_n)) != 0)
            return rc;
        if (email && email[0] && (rc = sb_identity_attach(tx, cid, "email", 0, email_n)) != 0)
            return rc;
        json_t *list = json_array();
        st = sb_tx_query(tx, HISTORY_SQL, "ii", cid, since);
        while (st != NULL && (rc = sb_stmt_step(st)) == 1) {
            json_t *m = json_pack("{s:I,s:s,s:s,s:o,s:o,s:o}", "id", (json_int_t)sb_stmt_int(st, 0), "direction",
                                  sb_stmt_text(st, 1), "text", sb_stmt_text(st, 2), "author",
                                  sb_stmt_isnull(st, 3) ? json_null() : json_pack("{s:s}", "name", sb_stmt_text(st, 3)),
                                  "created_at", sb_json_time(sb_stmt_int(st, 4)), "client_id",
                                  sb_stmt_isnull(st, 5) ? json_null() : json_string(sb_stmt_text(st, 5)));
            json_array_insert_new(list, 0, m);
        }
        sb_stmt_end(st);
        s->messages = list;
        /* Replies that waited for the visitor are delivered now. */
        size_t i;
        json_t *m;
        json_array_foreach (list, i, m) {
            if (strcmp(json_string_value(json_object_get(m, "direction")), "out") != 0)
                continue;
            int64_t mid = json_integer_value(json_object_get(m, "id"));
            rc = sb_tx_exec(tx,
                            "UPDATE message SET delivery_status = 'delivered', updated_at = ? "
                            "WHERE id = ? AND delivery_status IN ('queued','sent')",
                            "ii", now, mid);
            if (rc != 0)
                return rc;
            if (sb_tx_changes(tx) > 0)
                sb_emit(s->events, "message.updated", sb_message_json(tx, mid));
        }
    }
    return 0;
}

static void session_done(void *arg, int rc)
{
    session_op *s = arg;
    if (rc == 0) {
        sb_app_publish(s->app, s->events);
        sb_http_add_header(s->req, "Cache-Control", "no-store");
        sb_http_respond_json(s->req, 200,
                             json_pack("{s:s,s:s,s:o}", "token", s->token, "visitor_id", s->visitor_id, "messages",
                                       s->messages ? json_incref(s->messages) : json_array()));
    } else if (rc == SB_ENOTFOUND) {
        sb_http_respond_error(s->req, 404, "not_found", "no such chat channel");
    } else if (rc == SB_EINVAL) {
        sb_http_respond_error(s->req, 422, "validation_failed", "field '%s' is not valid", s->err_field);
    } else {
        sb_http_add_header(s->req, "Retry-After", "1");
        sb_http_respond_error(s->req, 503, "store_unavailable", "retry later");
    }
    session_free(s);
}

static void handle_session(sb_webchat *wc, sb_http_req *req)
{
    sb_api_op *parse = sb_api_op_new(wc->app, req, SB_ROLE_NONE, NULL);
    if (!sb_api_parse_body(parse))
        return;
    json_t *body = json_incref(parse->body);
    sb_api_op_free(parse);
    static const char *const allowed[] = {"channel_id", "token", "name", "email", "phone", "lang", "page", NULL};
    const char *key;
    json_t *val;
    json_object_foreach (body, key, val) {
        bool ok = false;
        for (const char *const *a = allowed; *a; a++)
            ok = ok || strcmp(*a, key) == 0;
        if (!ok) {
            sb_http_respond_error(req, 422, "unknown_field", "unknown field '%s'", key);
            json_decref(body);
            return;
        }
        if (strcmp(key, "channel_id") != 0 && !json_is_string(val) && !json_is_null(val)) {
            sb_http_respond_error(req, 422, "validation_failed", "field '%s' must be a string", key);
            json_decref(body);
            return;
        }
        size_t limit = strcmp(key, "page") == 0 ? 8000 : strcmp(key, "token") == 0 ? 128 : 254;
        if (json_is_string(val) && json_string_length(val) > limit) {
            sb_http_respond_error(req, 422, "validation_failed", "field '%s' is too long", key);
            json_decref(body);
            return;
        }
    }
    json_t *ch = json_object_get(body, "channel_id");
    if (!json_is_integer(ch) || json_integer_value(ch) <= 0) {
        sb_http_respond_error(req, 422, "validation_failed", "field 'channel_id' must be a positive integer");
        json_decref(body);
        return;
    }
    session_op *s = sb_xcalloc(1, sizeof *s);
    s->app = wc->app;
    s->req = req;
    s->body = body;
    s->events = json_array();
    s->channel_id = json_integer_value(ch);
    if (!sb_visitor_token_verify(wc->app->secret, json_string_value(json_object_get(body, "token")), s->visitor_id))
        sb_random_hex(s->visitor_id, 16);
    sb_visitor_token(wc->app->secret, s->visitor_id, s->token, sizeof s->token);
    sb_store_submit(wc->app->store, session_run, session_done, s);
}

/* ---- visitor messages ---- */

typedef struct msg_op {
    sb_app *app;
    vconn *conn;      /* WebSocket/SSE sender (ref held), or */
    sb_http_req *req; /* POST /chat/messages */
    int64_t channel_id;
    char visitor_id[33];
    char *client_id;
    char *text;
    char external_id[80];
    sb_ingest_result res;
    json_t *events;
    json_t *message;
} msg_op;

static void msg_free(msg_op *m)
{
    if (m->conn != NULL)
        vconn_unref(m->conn);
    free(m->client_id);
    free(m->text);
    json_decref(m->events);
    json_decref(m->message);
    free(m);
}

static int msg_run(sb_tx *tx, void *arg)
{
    msg_op *m = arg;
    json_t *chan = NULL;
    int rc = load_channel(tx, m->channel_id, &chan);
    json_decref(chan);
    if (rc != 0)
        return rc;
    sb_inbound in;
    memset(&in, 0, sizeof in);
    in.channel_id = m->channel_id;
    in.channel_kind = "webchat";
    snprintf(m->external_id, sizeof m->external_id, "v:%s:%s", m->visitor_id, m->client_id);
    in.external_id = m->external_id;
    in.client_id = m->client_id;
    in.visitor_id = m->visitor_id;
    in.text = m->text;
    in.reopen_window_ms = m->app->cfg.reopen_window_ms;
    in.default_country_code = "7";
    rc = sb_ingest(tx, &in, &m->res, m->events);
    if (rc == 0)
        m->message = sb_message_json(tx, m->res.message_id);
    return rc;
}

static void msg_done(void *arg, int rc)
{
    msg_op *m = arg;
    sb_webchat *wc = m->app->webchat;
    if (rc == 0) {
        if (m->res.duplicate) {
            m->app->metrics.inbound_duplicates++;
        } else {
            m->app->metrics.inbound_messages++;
            sb_dashboard_csat(m->app->dashboard, m->res.csat_score, m->res.created_at);
            const char *blocked = sb_dispatch_blocked(m->app->dispatch, m->res.contact_id, NULL, NULL, m->visitor_id);
            if (blocked != NULL)
                sb_dispatch_quarantine(m->app->dispatch, m->res.ticket_id, blocked);
            else if (m->res.ticket_created)
                sb_dispatch_ticket_created(m->app->dispatch, m->res.ticket_id, m->text, false);
            else
                sb_dispatch_event(
                    m->app->dispatch,
                    &(sb_event){.kind = SB_EV_CUSTOMER_MESSAGE, .ticket_id = m->res.ticket_id, .text = m->text});
        }
        sb_app_publish(m->app, m->events);
        json_t *ack = json_pack("{s:s,s:s,s:I,s:I}", "type", "ack", "client_id", m->client_id, "message_id",
                                (json_int_t)m->res.message_id, "ticket_number", (json_int_t)m->res.ticket_number);
        if (m->conn != NULL)
            vconn_send(m->conn, ack);
        if (m->req != NULL)
            sb_http_respond_json(m->req, 200,
                                 json_pack("{s:I,s:I}", "message_id", (json_int_t)m->res.message_id, "ticket_number",
                                           (json_int_t)m->res.ticket_number));
        json_decref(ack);
        if (!m->res.duplicate && m->message != NULL) {
            json_t *echo = json_pack("{s:s,s:o}", "type", "message", "message", visitor_view(m->message));
            send_visitor(wc, m->visitor_id, echo, m->conn);
            json_decref(echo);
        }
    } else {
        const char *code = rc == SB_ENOTFOUND ? "not_found"
                           : rc == SB_EINVAL  ? "validation_failed"
                                              : "store_unavailable";
        const char *text = rc == SB_ENOTFOUND ? "no such chat channel"
                           : rc == SB_EINVAL  ? "the message was rejected"
                                              : "the message could not be stored; retry";
        if (m->conn != NULL) {
            json_t *err = json_pack("{s:s,s:s,s:s,s:s}", "type", "error", "code", code, "message", text, "client_id",
                                    m->client_id);
            vconn_send(m->conn, err);
            json_decref(err);
        }
        if (m->req != NULL) {
            int status = rc == SB_ENOTFOUND ? 404 : rc == SB_EINVAL ? 422 : 503;
            if (status == 503)
                sb_http_add_header(m->req, "Retry-After", "1");
            sb_http_respond_error(m->req, status, code, "%s", text);
        }
    }
    msg_free(m);
}

/* Validates a visitor message; returns NULL or an error message. */
static const char *check_message(json_t *client_id, json_t *text)
{
    if (!json_is_string(client_id) || json_string_length(client_id) == 0 || json_string_length(client_id) > 64)
        return "client_id must be a string of 1..64 characters";
    if (!json_is_string(text))
        return "text must be a string";
    const char *t = json_string_value(text);
    size_t len = json_string_length(text);
    if (strlen(t) != len)
        return "text must not contain NUL";
    bool blank = true;
    size_t chars = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)t[i];
        if ((c & 0xC0) != 0x80)
            chars++;
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r')
            blank = false;
    }
    if (blank)
        return "text must not be empty";
    if (chars > MAX_TEXT_CHARS || len > MAX_TEXT_BYTES)
        return "text is longer than 4000 characters";
    return NULL;
}

static msg_op *msg_new(sb_webchat *wc, int64_t channel_id, const char *vid, json_t *client_id, json_t *text)
{
    msg_op *m = sb_xcalloc(1, sizeof *m);
    m->app = wc->app;
    m->channel_id = channel_id;
    snprintf(m->visitor_id, sizeof m->visitor_id, "%s", vid);
    m->client_id = sb_xstrdup(json_string_value(client_id));
    m->text = sb_xstrdup(json_string_value(text));
    m->events = json_array();
    return m;
}

static bool visitor_rate_ok(sb_webchat *wc, const char *vid)
{
    char key[64];
    unsigned retry = 0;
    snprintf(key, sizeof key, "visitor:%s", vid);
    return sb_ratelimit_allow_key(wc->app->ratelimit, key, VISITOR_RATE, sb_clock_mono_ms(), &retry);
}

static void ws_error(vconn *c, const char *code, const char *message, json_t *client_id)
{
    json_t *err = json_pack("{s:s,s:s,s:s}", "type", "error", "code", code, "message", message);
    if (json_is_string(client_id))
        json_object_set(err, "client_id", client_id);
    vconn_send(c, err);
    json_decref(err);
}

/* Visitor typing: agents watching the stream see it on the ticket. */
typedef struct typing_op {
    sb_app *app;
    char vid[33];
    int64_t contact_id, ticket_number;
} typing_op;

static int typing_run(sb_tx *tx, void *arg)
{
    typing_op *t = arg;
    sb_stmt *s = sb_tx_query(tx,
                             "SELECT t.contact_id, t.number FROM contact_identity ci JOIN ticket t "
                             "ON t.contact_id = ci.contact_id WHERE ci.kind = 'webchat' AND ci.scope = 0 "
                             "AND ci.address = ? AND t.status IN ('new','open','pending') ORDER BY t.id DESC LIMIT 1",
                             "t", t->vid);
    if (s == NULL)
        return SB_EIO;
    if (sb_stmt_step(s) == 1) {
        t->contact_id = sb_stmt_int(s, 0);
        t->ticket_number = sb_stmt_int(s, 1);
    }
    sb_stmt_end(s);
    return 0;
}

static void typing_done(void *arg, int rc)
{
    typing_op *t = arg;
    if (rc == 0 && t->ticket_number != 0) {
        json_t *events = json_array();
        sb_emit(events, "contact.typing",
                json_pack("{s:I,s:I}", "ticket_number", (json_int_t)t->ticket_number, "contact_id",
                          (json_int_t)t->contact_id));
        sb_app_publish(t->app, events);
        json_decref(events);
    }
    free(t);
}

static void visitor_typing(sb_webchat *wc, const char *vid)
{
    char key[64];
    unsigned retry = 0;
    snprintf(key, sizeof key, "typing:%s", vid);
    if (!sb_ratelimit_allow_key(wc->app->ratelimit, key, 1, sb_clock_mono_ms(), &retry))
        return; /* at most about one notice a second per visitor */
    typing_op *t = sb_xcalloc(1, sizeof *t);
    t->app = wc->app;
    memcpy(t->vid, vid, sizeof t->vid);
    sb_store_submit(wc->app->store, typing_run, typing_done, t);
}

static void on_ws_text(sb_ws *ws, const char *p, size_t len, void *ud)
{
    vconn *c = ud;
    SB_ASSERT(c->magic == VCONN_MAGIC);
    if (c->dead)
        return;
    json_error_t jerr;
    json_t *v = json_loadb(p, len, JSON_REJECT_DUPLICATES, &jerr);
    const char *type = json_string_value(json_object_get(v, "type"));
    if (v == NULL || type == NULL) {
        ws_error(c, "malformed_json", "expected a JSON object with a type", NULL);
    } else if (strcmp(type, "ping") == 0) {
        json_t *pong = json_pack("{s:s}", "type", "pong");
        vconn_send(c, pong);
        json_decref(pong);
    } else if (strcmp(type, "typing") == 0) {
        visitor_typing(c->wc, c->visitor_id);
    } else if (strcmp(type, "message") == 0) {
        json_t *cid = json_object_get(v, "client_id");
        const char *bad = check_message(cid, json_object_get(v, "text"));
        if (bad != NULL) {
            ws_error(c, "validation_failed", bad, cid);
        } else if (!visitor_rate_ok(c->wc, c->visitor_id)) {
            ws_error(c, "rate_limited", "too many messages; slow down", cid);
        } else {
            msg_op *m = msg_new(c->wc, c->channel_id, c->visitor_id, cid, json_object_get(v, "text"));
            m->conn = c;
            c->refs++;
            sb_store_submit(c->wc->app->store, msg_run, msg_done, m);
        }
    } else {
        ws_error(c, "unknown_type", "unknown message type", NULL);
    }
    json_decref(v);
}

static void on_ws_close(sb_ws *ws, void *ud)
{
    vconn *c = ud;
    SB_ASSERT(c->magic == VCONN_MAGIC);
    if (!c->dead)
        vconn_gone(c);
    vconn_unref(c); /* the socket's own reference */
}

static const sb_ws_callbacks visitor_ws_cbs = {on_ws_text, on_ws_close};

/* Common checks of ?channel=&token= for ws/events/messages/typing. */
static bool visitor_params(sb_webchat *wc, sb_http_req *req, int64_t *channel_id, char vid[33])
{
    if (!channel_param(req, channel_id)) {
        sb_http_respond_error(req, 422, "validation_failed", "parameter 'channel' must be a channel id");
        return false;
    }
    if (!sb_visitor_token_verify(wc->app->secret, sb_http_req_query_param(req, "token"), vid)) {
        sb_http_respond_error(req, 401, "unauthorized", "missing or invalid visitor token; call /chat/session");
        return false;
    }
    return true;
}

static void accept_ws(sb_webchat *wc, sb_http_req *req, int64_t channel_id, const char *vid)
{
    vconn *c = vconn_new(wc, vid, channel_id);
    c->refs++; /* held by the socket until on_close */
    sb_ws *ws = sb_ws_accept(req, &visitor_ws_cbs, c);
    if (ws == NULL) {
        vconn_gone(c);
        vconn_unref(c);
        return;
    }
    c->ws = ws;
}

static void accept_sse(sb_webchat *wc, sb_http_req *req, int64_t channel_id, const char *vid);

/* A live connection (WebSocket or event stream) opens only for an active
 * chat channel, checked in the store first. */
typedef struct open_op {
    sb_webchat *wc;
    sb_http_req *req;
    int64_t channel_id;
    char vid[33];
    bool sse;
} open_op;

static int open_run(sb_tx *tx, void *arg)
{
    open_op *o = arg;
    json_t *chan = NULL;
    int rc = load_channel(tx, o->channel_id, &chan);
    json_decref(chan);
    return rc;
}

static void open_done(void *arg, int rc)
{
    open_op *o = arg;
    if (rc == SB_ENOTFOUND) {
        sb_http_respond_error(o->req, 404, "not_found", "no such chat channel");
    } else if (rc != 0 || o->wc->app->stopping) {
        sb_http_add_header(o->req, "Retry-After", "1");
        sb_http_respond_error(o->req, 503, "unavailable", "retry later");
    } else if (o->sse) {
        accept_sse(o->wc, o->req, o->channel_id, o->vid);
    } else {
        accept_ws(o->wc, o->req, o->channel_id, o->vid);
    }
    free(o);
}

static void open_live(sb_webchat *wc, sb_http_req *req, bool sse)
{
    int64_t channel_id;
    char vid[33];
    if (!visitor_params(wc, req, &channel_id, vid))
        return;
    open_op *o = sb_xcalloc(1, sizeof *o);
    o->wc = wc;
    o->req = req;
    o->channel_id = channel_id;
    o->sse = sse;
    memcpy(o->vid, vid, sizeof o->vid);
    sb_store_submit(wc->app->store, open_run, open_done, o);
}

static void on_sse_close(sb_http_req *req, void *ud)
{
    vconn *c = ud;
    SB_ASSERT(c->magic == VCONN_MAGIC);
    if (!c->dead)
        vconn_gone(c);
    vconn_unref(c);
}

static void accept_sse(sb_webchat *wc, sb_http_req *req, int64_t channel_id, const char *vid)
{
    vconn *c = vconn_new(wc, vid, channel_id);
    c->refs++;
    c->sse = req;
    sb_http_add_header(req, "Cache-Control", "no-store");
    sb_http_add_header(req, "X-Accel-Buffering", "no");
    sb_http_stream_begin(req, 200, "text/event-stream", on_sse_close, c);
    sb_http_stream_write(req, ": connected\n\n", 13);
}

static void handle_post_message(sb_webchat *wc, sb_http_req *req)
{
    int64_t channel_id;
    char vid[33];
    if (!visitor_params(wc, req, &channel_id, vid))
        return;
    sb_api_op *parse = sb_api_op_new(wc->app, req, SB_ROLE_NONE, NULL);
    if (!sb_api_parse_body(parse))
        return;
    json_t *cid = json_object_get(parse->body, "client_id");
    const char *bad = check_message(cid, json_object_get(parse->body, "text"));
    static const char *const allowed[] = {"client_id", "text", NULL};
    if (sb_api_only_fields(parse, parse->body, allowed) != 0) {
        sb_http_respond_error(req, 422, parse->err_code, "%s", parse->err_msg);
    } else if (bad != NULL) {
        sb_http_respond_error(req, 422, "validation_failed", "%s", bad);
    } else if (!visitor_rate_ok(wc, vid)) {
        sb_http_add_header(req, "Retry-After", "1");
        sb_http_respond_error(req, 429, "rate_limited", "too many messages; slow down");
    } else {
        msg_op *m = msg_new(wc, channel_id, vid, cid, json_object_get(parse->body, "text"));
        m->req = req;
        sb_store_submit(wc->app->store, msg_run, msg_done, m);
    }
    sb_api_op_free(parse);
}

static void serve_asset(sb_http_req *req, const char *type, const unsigned char *p, size_t len, const char *cache)
{
    sb_http_add_header(req, "Cache-Control", cache);
    sb_http_add_header(req, "X-Content-Type-Options", "nosniff");
    sb_http_respond(req, 200, type, p, len);
}

static void serve_demo(sb_webchat *wc, sb_http_req *req)
{
    /* The demo page names the first active webchat channel. */
    char id[24];
    const char *v = sb_http_req_query_param(req, "channel");
    int64_t n = 0;
    if (v != NULL && channel_param(req, &n))
        snprintf(id, sizeof id, "%lld", (long long)n);
    else
        snprintf(id, sizeof id, "%lld", (long long)wc->app->demo_channel_id);
    sb_buf b;
    sb_buf_init(&b);
    const char *src = (const char *)sb_asset_demo_html;
    const char *mark = "__CHANNEL_ID__";
    size_t ml = strlen(mark);
    size_t i = 0;
    while (i < sb_asset_demo_html_len) {
        if (i + ml <= sb_asset_demo_html_len && memcmp(src + i, mark, ml) == 0) {
            sb_buf_appendz(&b, id);
            i += ml;
        } else {
            sb_buf_append(&b, src + i, 1);
            i++;
        }
    }
    sb_http_add_header(req, "Content-Security-Policy",
                       "default-src 'self'; connect-src 'self' ws: wss:; style-src 'self' 'unsafe-inline'; "
                       "img-src 'self' data:; frame-ancestors 'none'");
    sb_http_add_header(req, "Cache-Control", "no-cache");
    sb_http_add_header(req, "X-Content-Type-Options", "nosniff");
    sb_http_respond(req, 200, "text/html; charset=utf-8", b.p, b.len);
    sb_buf_free(&b);
}

bool sb_webchat_route(sb_webchat *wc, sb_http_req *req, const char *path)
{
    sb_http_method m = sb_http_req_method(req);
    bool get = m == SB_HTTP_GET || m == SB_HTTP_HEAD;
    if (strcmp(path, "/widget.js") == 0) {
        if (!get)
            sb_respond_method_not_allowed(req, "GET");
        else {
            sb_http_add_header(req, "Access-Control-Allow-Origin", "*");
            sb_http_add_header(req, "Cross-Origin-Resource-Policy", "cross-origin");
            serve_asset(req, "text/javascript; charset=utf-8", sb_asset_widget_js, sb_asset_widget_js_len,
                        "public, max-age=300");
        }
        return true;
    }
    if (strncmp(path, "/chat/", 6) != 0)
        return false;
    /* The widget runs on customers' sites: allow cross-origin calls. No
     * cookies are used, the visitor token travels in the body/query. */
    sb_http_add_header(req, "Access-Control-Allow-Origin", "*");
    sb_http_add_header(req, "Access-Control-Expose-Headers", "Retry-After");
    if (m == SB_HTTP_OPTIONS) {
        sb_http_add_header(req, "Access-Control-Allow-Methods", "GET, POST, OPTIONS");
        sb_http_add_header(req, "Access-Control-Allow-Headers", "Content-Type");
        sb_http_add_header(req, "Access-Control-Max-Age", "86400");
        sb_http_respond(req, 204, NULL, NULL, 0);
        return true;
    }
    if (sb_store_pending(wc->app->store) >= wc->app->cfg.max_pending_ops) {
        wc->app->metrics.overloaded++;
        sb_http_add_header(req, "Retry-After", "1");
        sb_http_respond_error(req, 503, "overloaded", "the server is overloaded; retry later");
        return true;
    }
    unsigned retry = 0;
    if (!sb_ratelimit_allow(wc->app->ratelimit, req, &retry)) {
        char buf[16];
        snprintf(buf, sizeof buf, "%u", retry ? retry : 1);
        sb_http_add_header(req, "Retry-After", buf);
        sb_http_respond_error(req, 429, "rate_limited", "too many requests");
        return true;
    }
    if (strcmp(path, "/chat/demo") == 0) {
        if (!get)
            sb_respond_method_not_allowed(req, "GET");
        else
            serve_demo(wc, req);
    } else if (strcmp(path, "/chat/config") == 0) {
        int64_t id;
        if (!get) {
            sb_respond_method_not_allowed(req, "GET");
        } else if (!channel_param(req, &id)) {
            sb_http_respond_error(req, 422, "validation_failed", "parameter 'channel' must be a channel id");
        } else {
            chan_op *c = sb_xcalloc(1, sizeof *c);
            c->app = wc->app;
            c->req = req;
            c->channel_id = id;
            sb_store_submit(wc->app->store, config_run, config_done, c);
        }
    } else if (strcmp(path, "/chat/session") == 0) {
        if (m != SB_HTTP_POST)
            sb_respond_method_not_allowed(req, "POST");
        else
            handle_session(wc, req);
    } else if (strcmp(path, "/chat/ws") == 0) {
        if (!get)
            sb_respond_method_not_allowed(req, "GET");
        else
            open_live(wc, req, false);
    } else if (strcmp(path, "/chat/events") == 0) {
        if (!get)
            sb_respond_method_not_allowed(req, "GET");
        else
            open_live(wc, req, true);
    } else if (strcmp(path, "/chat/messages") == 0) {
        if (m != SB_HTTP_POST)
            sb_respond_method_not_allowed(req, "POST");
        else
            handle_post_message(wc, req);
    } else if (strcmp(path, "/chat/callback") == 0) {
        if (m != SB_HTTP_POST)
            sb_respond_method_not_allowed(req, "POST");
        else
            sb_api_callback_form(wc->app, req); /* the "Call me back" form */
    } else if (strcmp(path, "/chat/typing") == 0) {
        int64_t channel_id;
        char vid[33];
        if (m != SB_HTTP_POST)
            sb_respond_method_not_allowed(req, "POST");
        else if (visitor_params(wc, req, &channel_id, vid)) {
            visitor_typing(wc, vid);
            sb_http_respond_json(req, 200, json_pack("{s:b}", "ok", 1));
        }
    } else {
        sb_http_respond_error(req, 404, "not_found", "no such resource: %s", path);
    }
    return true;
}
