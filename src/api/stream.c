/* stream.c - agents' WebSocket feed. Authentication uses the same op as
 * REST (Bearer header, session cookie, or ?access_token= for browsers,
 * which cannot set headers on a WebSocket); the upgrade happens after. */
#include "api/stream.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "base/clock.h"
#include "base/crypto.h"
#include "base/log.h"
#include "channels/webchat.h"

#define SUB_MAGIC 0x5B5C1Bu

typedef struct sub {
    unsigned magic;
    sb_stream_hub *hub;
    sb_ws *ws;
    int64_t agent_id;
    sb_role role;
    char agent_name[128];
    int64_t viewing;       /* ticket number open in this tab, 0: none */
    uint64_t typing_until; /* monotonic ms; typing in `viewing` until then */
    struct sub *prev, *next;
} sub;

struct sb_stream_hub {
    sb_app *app;
    sub *head;
    unsigned n;
};

sb_stream_hub *sb_stream_hub_new(sb_app *app)
{
    sb_stream_hub *h = sb_xcalloc(1, sizeof *h);
    h->app = app;
    return h;
}

void sb_stream_hub_free(sb_stream_hub *hub)
{
    free(hub);
}

unsigned sb_stream_subscribers(const sb_stream_hub *hub)
{
    return hub->n;
}

void sb_stream_broadcast(sb_stream_hub *hub, const sb_str *events, size_t n)
{
    for (sub *s = hub->head; s != NULL; s = s->next)
        if (s->ws != NULL)
            sb_ws_send_texts(s->ws, events, n);
}

void sb_stream_broadcast_role(sb_stream_hub *hub, sb_role min_role, const sb_str *events, size_t n)
{
    for (sub *s = hub->head; s != NULL; s = s->next)
        if (s->ws != NULL && s->role >= min_role)
            sb_ws_send_texts(s->ws, events, n);
}

void sb_stream_send_agent(sb_stream_hub *hub, int64_t agent_id, const char *type, json_t *data)
{
    json_t *ev = json_pack("{s:s,s:o}", "type", type, "data", data);
    char *text = ev != NULL ? json_dumps(ev, JSON_COMPACT) : NULL;
    json_decref(ev);
    if (text == NULL)
        return;
    sb_str one = {text, strlen(text)};
    for (sub *s = hub->head; s != NULL; s = s->next)
        if (s->ws != NULL && s->agent_id == agent_id)
            sb_ws_send_texts(s->ws, &one, 1);
    free(text);
}

unsigned sb_stream_subscribers_role(const sb_stream_hub *hub, sb_role min_role)
{
    unsigned n = 0;
    for (const sub *s = hub->head; s != NULL; s = s->next)
        n += s->ws != NULL && s->role >= min_role;
    return n;
}

static void unlink_sub(sub *s)
{
    sb_stream_hub *h = s->hub;
    if (s->prev)
        s->prev->next = s->next;
    else
        h->head = s->next;
    if (s->next)
        s->next->prev = s->prev;
    h->n--;
}

void sb_stream_close_all(sb_stream_hub *hub)
{
    for (sub *s = hub->head; s != NULL; s = s->next) {
        if (s->ws != NULL) {
            sb_ws *ws = s->ws;
            s->ws = NULL;
            sb_ws_close(ws, 1001, "server shutting down");
        }
    }
}

/* Collision guard: tells every agent who has ticket `number` open and who
 * is typing in it (an agent with two tabs counts once). Sent whenever that
 * changes; a typing mark is good for TYPING_MS unless renewed. */
#define TYPING_MS 6000

static void publish_viewers(sb_stream_hub *h, int64_t number)
{
    if (number <= 0)
        return;
    uint64_t now = sb_clock_mono_ms();
    json_t *list = json_array();
    for (sub *s = h->head; s != NULL; s = s->next) {
        if (s->ws == NULL || s->viewing != number)
            continue;
        bool typing = s->typing_until > now;
        json_t *seen = NULL;
        size_t i;
        json_t *v;
        json_array_foreach (list, i, v)
            if (json_integer_value(json_object_get(v, "agent_id")) == s->agent_id)
                seen = v;
        if (seen != NULL) {
            if (typing)
                json_object_set_new(seen, "typing", json_true());
            continue;
        }
        json_array_append_new(list, json_pack("{s:I,s:s,s:b}", "agent_id", (json_int_t)s->agent_id, "name",
                                              s->agent_name, "typing", typing));
    }
    json_t *ev = json_pack("{s:s,s:{s:I,s:o}}", "type", "ticket.viewers", "data", "ticket_number", (json_int_t)number,
                           "viewers", list);
    char *text = json_dumps(ev, JSON_COMPACT);
    json_decref(ev);
    if (text == NULL)
        return;
    sb_str one = {text, strlen(text)};
    sb_stream_broadcast(h, &one, 1);
    free(text);
}

static void set_viewing(sub *s, int64_t number)
{
    int64_t old = s->viewing;
    s->viewing = number;
    s->typing_until = 0;
    if (old != number)
        publish_viewers(s->hub, old);
    publish_viewers(s->hub, number);
}

/* Agent typing in a web chat ticket: find the visitor, then notify. */
typedef struct typing_op {
    sb_app *app;
    int64_t number;
    char visitor[33];
    char name[128];
} typing_op;

static int typing_run(sb_tx *tx, void *arg)
{
    typing_op *t = arg;
    sb_stmt *s = sb_tx_query(tx,
                             "SELECT ci.address FROM ticket t JOIN contact_identity ci ON ci.contact_id = t.contact_id "
                             "WHERE t.number = ? AND ci.kind = 'webchat' ORDER BY ci.id DESC LIMIT 1",
                             "i", t->number);
    if (s == NULL)
        return SB_EIO;
    if (sb_stmt_step(s) == 1)
        snprintf(t->visitor, sizeof t->visitor, "%s", sb_stmt_text(s, 0));
    sb_stmt_end(s);
    return 0;
}

static void typing_done(void *arg, int rc)
{
    typing_op *t = arg;
    if (rc == 0 && t->visitor[0] != '\0')
        sb_webchat_typing(t->app->webchat, t->visitor, t->name);
    free(t);
}

static void on_text(sb_ws *ws, const char *p, size_t len, void *ud)
{
    sub *s = ud;
    SB_ASSERT(s->magic == SUB_MAGIC);
    json_t *v = json_loadb(p, len, 0, NULL);
    const char *type = json_string_value(json_object_get(v, "type"));
    if (type != NULL && strcmp(type, "ping") == 0) {
        sb_ws_send_text(ws, "{\"type\":\"pong\"}", 15);
    } else if (type != NULL && strcmp(type, "viewing") == 0 &&
               (json_is_integer(json_object_get(v, "ticket_number")) ||
                json_is_null(json_object_get(v, "ticket_number")))) {
        json_int_t n = json_integer_value(json_object_get(v, "ticket_number"));
        set_viewing(s, n > 0 ? n : 0);
    } else if (type != NULL && strcmp(type, "typing") == 0 && json_is_integer(json_object_get(v, "ticket_number"))) {
        typing_op *t = sb_xcalloc(1, sizeof *t);
        t->app = s->hub->app;
        t->number = json_integer_value(json_object_get(v, "ticket_number"));
        if (t->number > 0 && t->number == s->viewing) {
            bool was = s->typing_until > sb_clock_mono_ms();
            s->typing_until = sb_clock_mono_ms() + TYPING_MS;
            if (!was)
                publish_viewers(s->hub, s->viewing);
        }
        snprintf(t->name, sizeof t->name, "%s", s->agent_name);
        sb_store_submit(t->app->store, typing_run, typing_done, t);
    } else {
        static const char err[] =
            "{\"type\":\"error\",\"code\":\"unknown_type\",\"message\":\"expected ping, viewing or typing\"}";
        sb_ws_send_text(ws, err, sizeof err - 1);
    }
    json_decref(v);
}

static void on_close(sb_ws *ws, void *ud)
{
    sub *s = ud;
    SB_ASSERT(s->magic == SUB_MAGIC);
    unlink_sub(s);
    if (s->viewing != 0 && s->hub->head != NULL)
        publish_viewers(s->hub, s->viewing);
    s->magic = 0;
    free(s);
}

static const sb_ws_callbacks sub_cbs = {on_text, on_close};

typedef struct stream_ctx {
    char name[128];
} stream_ctx;

static int stream_action(sb_tx *tx, sb_api_op *op)
{
    stream_ctx *c = op->ctx;
    sb_stmt *s = sb_tx_query(tx, "SELECT name FROM agent WHERE id = ?", "i", op->agent_id);
    if (s != NULL && sb_stmt_step(s) == 1)
        snprintf(c->name, sizeof c->name, "%s", sb_stmt_text(s, 0));
    sb_stmt_end(s);
    return 0;
}

static void stream_upgrade(sb_api_op *op)
{
    stream_ctx *c = op->ctx;
    sb_stream_hub *h = op->app->hub;
    sub *s = sb_xcalloc(1, sizeof *s);
    s->magic = SUB_MAGIC;
    s->hub = h;
    s->agent_id = op->agent_id;
    s->role = op->role;
    snprintf(s->agent_name, sizeof s->agent_name, "%s", c->name);
    sb_http_req *req = op->req;
    op->req = NULL; /* the upgrade consumes the request */
    /* Link first: a failed accept calls nothing, so undo by hand. */
    s->next = h->head;
    if (h->head)
        h->head->prev = s;
    h->head = s;
    h->n++;
    s->ws = sb_ws_accept(req, &sub_cbs, s);
    if (s->ws == NULL) {
        unlink_sub(s);
        free(s);
        return;
    }
    static const char hello[] = "{\"type\":\"hello\",\"data\":{}}";
    sb_ws_send_text(s->ws, hello, sizeof hello - 1);
}

void sb_stream_handle(sb_app *app, sb_http_req *req)
{
    sb_api_op *op = sb_api_op_new(app, req, SB_ROLE_AGENT, stream_action);
    op->ctx = sb_xcalloc(1, sizeof(stream_ctx));
    op->ctx_free = free;
    op->after = stream_upgrade;
    op->allow_query_token = true;
    sb_api_submit(op);
}
