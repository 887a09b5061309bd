/* callbacks.c - the website's call-back requests (see callbacks.h). */
#include "voice/callbacks.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "base/clock.h"
#include "base/log.h"
#include "engine/calendar.h"
#include "voice/calls.h"
#include "voice/outbound.h"

#define CB_MAGIC       0x4342524bu /* "CBRK" */
#define TICK_MS        1000
#define CAL_REFRESH_MS 30000 /* calendars and teams are read again this often */
#define AGENT_SKIP_MS  60000 /* an agent who let a call-back ring out is not offered it again for this long */
#define AGENT_RETRY_MS 3000  /* a call that could not be placed is tried again after this */

static const sb_actor SYSTEM = {"system", 0};

/* ---- settings ---- */

static int setting_int(const json_t *cb, const char *key, int lo, int hi, int dflt, int *out, char *field,
                       size_t field_cap, char *msg, size_t msg_cap)
{
    const json_t *v = json_object_get(cb, key);
    *out = dflt;
    if (v == NULL || json_is_null(v))
        return 0;
    if (!json_is_integer(v) || json_integer_value(v) < lo || json_integer_value(v) > hi) {
        snprintf(field, field_cap, "config.callback.%s", key);
        snprintf(msg, msg_cap, "must be an integer from %d to %d", lo, hi);
        return SB_EINVAL;
    }
    *out = (int)json_integer_value(v);
    return 0;
}

int sb_callback_settings_parse(const json_t *channel_config, sb_callback_settings *out, char *field, size_t field_cap,
                               char *msg, size_t msg_cap)
{
    memset(out, 0, sizeof *out);
    const json_t *cb = json_object_get(channel_config, "callback");
    if (cb == NULL || json_is_null(cb))
        return SB_ENOTFOUND;
    if (!json_is_object(cb)) {
        snprintf(field, field_cap, "config.callback");
        snprintf(msg, msg_cap, "must be an object {\"team_id\": 1, \"max_attempts\": 3, \"retry_seconds\": 600}");
        return SB_EINVAL;
    }
    const char *key;
    json_t *val;
    json_object_foreach ((json_t *)cb, key, val) {
        if (strcmp(key, "team_id") != 0 && strcmp(key, "max_attempts") != 0 && strcmp(key, "retry_seconds") != 0) {
            snprintf(field, field_cap, "config.callback.%.40s", key);
            snprintf(msg, msg_cap, "unknown field (known: team_id, max_attempts, retry_seconds)");
            return SB_EINVAL;
        }
    }
    const json_t *team = json_object_get(cb, "team_id");
    if (!json_is_integer(team) || json_integer_value(team) <= 0) {
        snprintf(field, field_cap, "config.callback.team_id");
        snprintf(msg, msg_cap, "must be the id of the team whose agents call back");
        return SB_EINVAL;
    }
    out->team_id = json_integer_value(team);
    int rc = setting_int(cb, "max_attempts", 1, SB_CALLBACK_MAX_ATTEMPTS, SB_CALLBACK_DEFAULT_ATTEMPTS,
                         &out->max_attempts, field, field_cap, msg, msg_cap);
    if (rc == 0)
        rc = setting_int(cb, "retry_seconds", SB_CALLBACK_MIN_RETRY_S, SB_CALLBACK_MAX_RETRY_S,
                         SB_CALLBACK_DEFAULT_RETRY_S, &out->retry_seconds, field, field_cap, msg, msg_cap);
    return rc;
}

/* A calendar document as stored (with its id and name) -> a calendar, or
 * NULL when it does not build (logged). */
static sb_calendar *calendar_of(const char *text, int64_t calendar_id)
{
    json_t *doc = text != NULL ? json_loads(text, 0, NULL) : NULL;
    if (doc == NULL)
        return NULL;
    json_object_del(doc, "id");
    json_object_del(doc, "name");
    sb_calendar *cal = NULL;
    char field[64], msg[160];
    if (sb_calendar_from_json(doc, &cal, field, sizeof field, msg, sizeof msg) != 0) {
        sb_log(SB_WARN, "callback", "calendar %lld skipped: %s: %s", (long long)calendar_id, field, msg);
        cal = NULL;
    }
    json_decref(doc);
    return cal;
}

/* The team's routing.calendar_id and that calendar's document (NULL: the
 * team has none: always open). SB_ENOTFOUND when the team does not exist. */
static int team_calendar_text(sb_tx *tx, int64_t team_id, int64_t *calendar_id, char **text)
{
    *calendar_id = 0;
    *text = NULL;
    sb_stmt *s = sb_tx_query(tx, "SELECT routing FROM team WHERE id = ?", "i", team_id);
    if (s == NULL)
        return SB_EIO;
    int rc = sb_stmt_step(s);
    if (rc == 1) {
        json_t *routing = json_loads(sb_stmt_text(s, 0), 0, NULL);
        json_t *cid = json_object_get(routing, "calendar_id");
        *calendar_id = json_is_integer(cid) ? json_integer_value(cid) : 0;
        json_decref(routing);
    }
    sb_stmt_end(s);
    if (rc != 1)
        return rc < 0 ? rc : SB_ENOTFOUND;
    if (*calendar_id <= 0)
        return 0;
    s = sb_tx_query(tx, "SELECT data FROM config_item WHERE kind = 'calendar' AND id = ?", "i", *calendar_id);
    if (s == NULL)
        return SB_EIO;
    rc = sb_stmt_step(s);
    if (rc == 1)
        *text = sb_xstrdup(sb_stmt_text(s, 0));
    sb_stmt_end(s);
    return rc < 0 ? rc : 0;
}

/* ---- the form's transaction ---- */

static int refuse(sb_callback_made *m, int status, const char *code, const char *msg)
{
    m->status = status;
    m->code = code;
    snprintf(m->msg, sizeof m->msg, "%s", msg);
    return 0; /* nothing was written: the commit is empty */
}

/* Another form for a number whose request is pending: it joins it. */
static int join_pending(sb_tx *tx, const sb_callback_form *f, sb_callback_made *m, bool en)
{
    int64_t now = sb_tx_now(tx);
    int rc = sb_tx_exec(tx, "UPDATE callback_request SET requests = requests + 1, updated_at = ? WHERE id = ?", "ii",
                        now, m->id);
    if (rc == 0)
        rc = sb_event_log(tx, SYSTEM, "callback_request", m->id, "callback.requested_again",
                          json_pack("{s:I}", "channel_id", (json_int_t)f->channel_id));
    if (rc != 0 || m->ticket_id == 0 || (f->comment[0] == '\0' && f->name[0] == '\0'))
        return rc;
    char note[1400];
    snprintf(note, sizeof note,
             en ? "Call-back requested again from the website.%s%s%s%s"
                : "Повторный запрос обратного звонка с сайта.%s%s%s%s",
             f->name[0] ? (en ? " Name: " : " Имя: ") : "", f->name,
             f->comment[0] ? (en ? " Comment: " : " Комментарий: ") : "", f->comment);
    sb_delivery *dl = NULL;
    json_t *msg = NULL;
    rc = sb_ticket_add_message(tx, m->ticket_id, 0, false, note, m->ticket.events, &dl, &msg);
    sb_delivery_free(dl);
    json_decref(msg);
    return rc;
}

static int pending_of(sb_tx *tx, const char *phone, sb_callback_made *m)
{
    sb_stmt *s = sb_tx_query(tx,
                             "SELECT id, status, attempts, max_attempts, retry_seconds, COALESCE(next_attempt_at, 0), "
                             "COALESCE(team_id, 0), COALESCE(contact_id, 0), COALESCE(ticket_id, 0), "
                             "COALESCE(task_id, 0) FROM callback_request WHERE phone = ? AND status IN "
                             "('queued','calling')",
                             "t", phone);
    if (s == NULL)
        return SB_EIO;
    int rc = sb_stmt_step(s);
    if (rc == 1) {
        m->id = sb_stmt_int(s, 0);
        snprintf(m->status_text, sizeof m->status_text, "%s", sb_stmt_text(s, 1));
        m->attempts = (int)sb_stmt_int(s, 2);
        m->max_attempts = (int)sb_stmt_int(s, 3);
        m->retry_seconds = (int)sb_stmt_int(s, 4);
        m->next_attempt_at = sb_stmt_int(s, 5);
        m->team_id = sb_stmt_int(s, 6);
        m->contact_id = sb_stmt_int(s, 7);
        m->ticket_id = sb_stmt_int(s, 8);
        m->task_id = sb_stmt_int(s, 9);
    }
    sb_stmt_end(s);
    return rc;
}

/* The contact's open call-back task (a missed call may have left one), or
 * a new one due when we expect to call. */
static int call_back_task(sb_tx *tx, sb_callback_made *m, bool en, int64_t due)
{
    int64_t task = 0, now = sb_tx_now(tx);
    int rc = sb_tx_int(tx, &task,
                       "SELECT id FROM task WHERE status = 'open' AND kind = 'call_back' AND contact_id = ? "
                       "ORDER BY id LIMIT 1",
                       "i", m->contact_id);
    if (rc < 0)
        return rc;
    if (rc == 1) {
        m->task_id = task;
        return 0;
    }
    int64_t assignee = 0;
    rc = sb_tx_int(tx, &assignee, "SELECT COALESCE(assignee_id, 0) FROM ticket WHERE id = ?", "i", m->ticket_id);
    if (rc != 1)
        return rc < 0 ? rc : SB_EIO;
    char title[120];
    snprintf(title, sizeof title, en ? "Call back %s (website request)" : "Перезвонить %s (заявка с сайта)",
             m->ticket.phone);
    rc = sb_tx_insert(tx, &task,
                      "INSERT INTO task (title, kind, ticket_id, contact_id, assignee_id, due_at, created_at, "
                      "updated_at) VALUES (?, 'call_back', ?, ?, ?, ?, ?, ?)",
                      "tiiIiii", title, m->ticket_id, m->contact_id, assignee, due, now, now);
    if (rc != 0)
        return rc < 0 ? rc : SB_EIO;
    rc = sb_event_log(tx, SYSTEM, "task", task, "task.created",
                      json_pack("{s:s,s:I,s:I}", "kind", "call_back", "ticket_id", (json_int_t)m->ticket_id,
                                "callback_request_id", (json_int_t)m->id));
    if (rc != 0)
        return rc;
    if (m->ticket.events != NULL) {
        json_t *t = sb_task_json(tx, task);
        if (t == NULL)
            return SB_EIO;
        sb_emit(m->ticket.events, "task.created", t);
    }
    m->task_id = task;
    m->ticket.task = (sb_task_info){.id = task, .ticket_id = m->ticket_id, .assignee_id = assignee, .due_at = due};
    return 0;
}

/* Drops a UTF-8 sequence that a size limit cut short at the end of z. */
static void utf8_trim(char *z)
{
    size_t n = strlen(z), k = n;
    while (k > 0 && ((unsigned char)z[k - 1] & 0xC0) == 0x80)
        k--;
    if (k == 0)
        return;
    unsigned char lead = (unsigned char)z[k - 1];
    size_t need = lead < 0x80 ? 1 : (lead & 0xE0) == 0xC0 ? 2 : (lead & 0xF0) == 0xE0 ? 3 : 4;
    if (n - (k - 1) < need)
        z[k - 1] = '\0';
}

/* The request on the contact's ticket: a message of the phone channel, as
 * a missed call leaves one, and the call-back task. */
static int put_on_ticket(sb_tx *tx, const sb_callback_form *f, sb_callback_made *m, bool en, int64_t reopen_ms)
{
    int64_t channel_id = 0;
    bool active = false;
    int rc = sb_call_phone_channel(tx, &channel_id, &active);
    if (rc != 0 || !active)
        return rc; /* a deactivated phone channel keeps calls off tickets: the request is still dialled */
    char external[40];
    snprintf(external, sizeof external, "callback:%lld", (long long)m->id);
    snprintf(m->ticket.phone, sizeof m->ticket.phone, "%s", f->phone);
    snprintf(m->ticket.text, sizeof m->ticket.text, "%s%s%.180s",
             en ? "Call-back request from the website" : "Запрос обратного звонка с сайта", f->comment[0] ? ": " : "",
             f->comment);
    utf8_trim(m->ticket.text);
    sb_inbound in;
    memset(&in, 0, sizeof in);
    in.channel_id = channel_id;
    in.channel_kind = "phone";
    in.external_id = external;
    in.phone = f->phone;
    in.name = f->name[0] ? f->name : NULL;
    in.timestamp = sb_tx_now(tx);
    in.reopen_window_ms = reopen_ms;
    in.default_country_code = "7";
    /* the whole comment on the ticket; the engine's rules see the short text */
    char text[1400];
    snprintf(text, sizeof text, "%s%s%s", en ? "Call-back request from the website" : "Запрос обратного звонка с сайта",
             f->comment[0] ? ": " : "", f->comment);
    in.text = text;
    rc = sb_ingest(tx, &in, &m->ticket.res, m->ticket.events);
    if (rc != 0)
        return rc;
    m->ticket.ingested = !m->ticket.res.duplicate;
    m->contact_id = m->ticket.res.contact_id;
    m->ticket_id = m->ticket.res.ticket_id;
    m->ticket_number = m->ticket.res.ticket_number;
    int64_t due = m->next_attempt_at != INT64_MAX ? m->next_attempt_at : sb_tx_now(tx);
    return call_back_task(tx, m, en, due);
}

int sb_callback_form_run(sb_tx *tx, const sb_callback_form *f, sb_callback_made *m)
{
    int64_t now = sb_tx_now(tx);
    m->ticket.at = now;
    bool en = strncmp(f->lang, "en", 2) == 0;
    m->en = en;
    snprintf(m->phone, sizeof m->phone, "%s", f->phone);
    if (f->want_events)
        m->ticket.events = json_array();
    /* the channel and its settings */
    char config[4096];
    sb_stmt *s = sb_tx_query(tx, "SELECT config FROM channel WHERE id = ? AND kind = 'webchat' AND active = 1", "i",
                             f->channel_id);
    if (s == NULL)
        return SB_EIO;
    int rc = sb_stmt_step(s);
    if (rc == 1)
        snprintf(config, sizeof config, "%s", sb_stmt_text(s, 0));
    sb_stmt_end(s);
    if (rc < 0)
        return rc;
    if (rc == 0)
        return refuse(m, 404, "not_found", "no such chat channel");
    json_t *cfg = json_loads(config, 0, NULL);
    sb_callback_settings set;
    char field[64] = "", why[160] = "";
    rc = sb_callback_settings_parse(cfg, &set, field, sizeof field, why, sizeof why);
    json_decref(cfg);
    if (rc == SB_ENOTFOUND)
        return refuse(m, 403, "callback_disabled", "this channel does not take call-back requests");
    if (rc != 0) {
        sb_log(SB_WARN, "callback", "channel=%lld call-back settings wrong: %s: %s", (long long)f->channel_id, field,
               why);
        return refuse(m, 409, "callback_unavailable", "call-back requests are not available now");
    }
    /* the team and its business hours */
    int64_t calendar_id = 0;
    char *cal_text = NULL;
    rc = team_calendar_text(tx, set.team_id, &calendar_id, &cal_text);
    if (rc == SB_ENOTFOUND) {
        sb_log(SB_WARN, "callback", "channel=%lld call-back team=%lld does not exist", (long long)f->channel_id,
               (long long)set.team_id);
        return refuse(m, 409, "callback_unavailable", "call-back requests are not available now");
    }
    if (rc != 0)
        return rc;
    sb_calendar *cal = calendar_of(cal_text, calendar_id);
    free(cal_text);
    m->within_hours = cal == NULL || sb_calendar_is_open(cal, now);
    int64_t next = m->within_hours ? now : sb_calendar_next_open(cal, now);
    sb_calendar_free(cal);
    /* the number's pending request, if any */
    rc = pending_of(tx, f->phone, m);
    if (rc < 0)
        return rc;
    if (rc == 1) {
        m->outcome = SB_CALLBACK_JOINED;
        if (m->status_text[0] == 'q' && m->next_attempt_at < next)
            m->next_attempt_at = next; /* as the scheduler will see it */
        return join_pending(tx, f, m, en);
    }
    m->team_id = set.team_id;
    m->max_attempts = set.max_attempts;
    m->retry_seconds = set.retry_seconds;
    m->next_attempt_at = next;
    /* blacklisted (the number, or the contact who has it): stored, refused */
    int64_t contact = 0, one = 0;
    rc = sb_tx_int(tx, &contact,
                   "SELECT contact_id FROM contact_identity WHERE kind = 'phone' AND scope = 0 "
                   "AND address = ?",
                   "t", f->phone);
    if (rc < 0)
        return rc;
    contact = rc == 1 ? sb_contact_resolve(tx, contact) : 0;
    char cid[24];
    snprintf(cid, sizeof cid, "%lld", (long long)contact);
    rc = sb_tx_int(tx, &one,
                   "SELECT 1 FROM blacklist WHERE (kind = 'phone' AND value = ?) OR (kind = 'contact' AND value = ?)",
                   "tt", f->phone, cid);
    if (rc < 0)
        return rc;
    bool blocked = rc == 1;
    m->outcome = blocked ? SB_CALLBACK_REFUSED : SB_CALLBACK_QUEUED;
    snprintf(m->status_text, sizeof m->status_text, "%s", blocked ? "refused" : "queued");
    rc = sb_tx_insert(tx, &m->id,
                      "INSERT INTO callback_request (channel_id, phone, name, comment, language, team_id, status, "
                      "reason, max_attempts, retry_seconds, next_attempt_at, contact_id, created_at, updated_at, "
                      "done_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                      "ittttittiiIIiiI", f->channel_id, f->phone, f->name[0] ? f->name : NULL,
                      f->comment[0] ? f->comment : NULL, f->lang[0] ? f->lang : NULL, m->team_id, m->status_text,
                      blocked ? "blacklisted" : NULL, (int64_t)m->max_attempts, (int64_t)m->retry_seconds,
                      blocked || next == INT64_MAX ? 0 : next, contact, now, now, blocked ? now : 0);
    if (rc != 0)
        return rc < 0 ? rc : SB_EIO;
    rc = sb_event_log(
        tx, SYSTEM, "callback_request", m->id, blocked ? "callback.refused" : "callback.requested",
        json_pack("{s:I,s:I}", "channel_id", (json_int_t)f->channel_id, "team_id", (json_int_t)m->team_id));
    if (rc != 0 || blocked)
        return rc; /* like a blacklisted caller: no ticket, nobody rung */
    rc = put_on_ticket(tx, f, m, en, f->reopen_window_ms);
    if (rc == 0)
        rc = sb_outbound_last_did(tx, f->phone, m->contact_id, m->caller_id, sizeof m->caller_id);
    if (rc == 0 && m->contact_id != 0)
        rc = sb_tx_text(tx, m->contact_name, sizeof m->contact_name, "SELECT name FROM contact WHERE id = ?", "i",
                        m->contact_id);
    if (rc == 0)
        rc = sb_tx_exec(tx,
                        "UPDATE callback_request SET contact_id = ?, ticket_id = ?, task_id = ?, caller_id = ? "
                        "WHERE id = ?",
                        "IIIti", m->contact_id, m->ticket_id, m->task_id, m->caller_id, m->id);
    return rc;
}

/* ---- the scheduler ---- */

typedef enum req_state { REQ_QUEUED, REQ_CALLING } req_state;

typedef struct cb_req {
    int64_t id, team_id, contact_id, ticket_id, task_id;
    char phone[SB_VOICE_EXT_MAX], caller_id[SB_VOICE_EXT_MAX], contact_name[128];
    bool en;
    int attempts, max_attempts, retry_seconds;
    int64_t next_at; /* wall ms */
    req_state state;
    int64_t live_id, agent_id;
    int64_t skip_agent, skip_until; /* who let it ring out, and until when they are passed over */
    struct cb_req *next;
} cb_req;

typedef struct team_cal {
    int64_t team_id;
    sb_calendar *cal;   /* NULL: always open */
    int64_t last_agent; /* round robin among equals */
} team_cal;

typedef struct cb_limit {
    uint64_t hash;
    int64_t window_start;
    unsigned count;
} cb_limit;

struct sb_callbacks {
    uint32_t magic;
    cb_limit limits[1024]; /* forms per client address (sb_callbacks_allow) */
    sb_app *app;
    uv_timer_t timer;
    bool timer_open, stopped, loaded, cal_loading, cal_dirty;
    unsigned load_tries;
    uint64_t cal_loaded_ms; /* monotonic; 0 = never */
    cb_req *list;           /* oldest first */
    team_cal *teams;
    size_t nteams;
};

static team_cal *team_of(sb_callbacks *cb, int64_t team_id)
{
    for (size_t i = 0; i < cb->nteams; i++)
        if (cb->teams[i].team_id == team_id)
            return &cb->teams[i];
    return NULL;
}

static void append(sb_callbacks *cb, cb_req *r)
{
    cb_req **pp = &cb->list;
    while (*pp != NULL && (*pp)->id < r->id)
        pp = &(*pp)->next;
    r->next = *pp;
    *pp = r;
}

static void unlink_req(sb_callbacks *cb, cb_req *r)
{
    for (cb_req **pp = &cb->list; *pp != NULL; pp = &(*pp)->next)
        if (*pp == r) {
            *pp = r->next;
            free(r);
            return;
        }
}

/* ---- writing what happened ---- */

typedef struct save_op {
    sb_callbacks *cb;
    int64_t id, ticket_id, agent_id, next_at, attempt_at, at;
    int attempts, max_attempts;
    const char *status, *result; /* literals */
    bool en;
    json_t *events;
    int64_t committed;
} save_op;

static int save_run(sb_tx *tx, void *arg)
{
    save_op *w = arg;
    int64_t now = sb_tx_now(tx);
    w->committed = now;
    bool ended = strcmp(w->status, "done") == 0 || strcmp(w->status, "failed") == 0;
    int rc = sb_tx_exec(tx,
                        "UPDATE callback_request SET status = ?, attempts = ?, next_attempt_at = ?, last_result = "
                        "COALESCE(?, last_result), agent_id = COALESCE(?, agent_id), last_attempt_at = "
                        "COALESCE(?, last_attempt_at), done_at = ?, updated_at = ? WHERE id = ?",
                        "tiItIIIii", w->status, (int64_t)w->attempts, ended || w->next_at == INT64_MAX ? 0 : w->next_at,
                        w->result, w->agent_id, w->attempt_at, ended ? now : 0, now, w->id);
    if (rc == 0 && ended)
        rc = sb_event_log(tx, SYSTEM, "callback_request", w->id,
                          strcmp(w->status, "done") == 0 ? "callback.done" : "callback.failed",
                          json_pack("{s:i,s:s}", "attempts", w->attempts, "result", w->result ? w->result : ""));
    if (rc != 0 || strcmp(w->status, "failed") != 0 || w->ticket_id == 0)
        return rc;
    /* the agents see on the ticket that nobody got through; the task stays open */
    char note[300];
    snprintf(note, sizeof note,
             w->en ? "Website call-back request: no answer after %d attempt(s) (last: %s). The call-back task stays "
                     "open."
                   : "Заявка на обратный звонок с сайта: не дозвонились за %d попыт(ки/ок) (последняя: %s). Задача "
                     "перезвонить остаётся открытой.",
             w->attempts, w->result ? w->result : "-");
    sb_delivery *dl = NULL;
    json_t *msg = NULL;
    rc = sb_ticket_add_message(tx, w->ticket_id, 0, false, note, w->events, &dl, &msg);
    sb_delivery_free(dl);
    json_decref(msg);
    return rc;
}

static void save_done(void *arg, int rc)
{
    save_op *w = arg;
    if (rc != 0) {
        sb_log(SB_ERROR, "callback", "request=%lld status=%s not saved rc=%d", (long long)w->id, w->status, rc);
        json_decref(w->events);
    } else {
        sb_app_publish_built(w->cb->app, w->events, w->committed);
    }
    free(w);
}

static void save(sb_callbacks *cb, const cb_req *r, const char *status, const char *result, int64_t attempt_at)
{
    save_op *w = sb_xcalloc(1, sizeof *w);
    w->cb = cb;
    w->id = r->id;
    w->ticket_id = r->ticket_id;
    w->agent_id = r->agent_id;
    w->next_at = strcmp(status, "queued") == 0 ? r->next_at : 0;
    const team_cal *t = team_of(cb, r->team_id);
    if (w->next_at > 0 && t != NULL && t->cal != NULL && sb_calendar_next_open(t->cal, w->next_at) != INT64_MAX)
        w->next_at = sb_calendar_next_open(t->cal, w->next_at); /* what the list shows */
    w->attempt_at = attempt_at;
    w->attempts = r->attempts;
    w->max_attempts = r->max_attempts;
    w->status = status;
    w->result = result;
    w->en = r->en;
    if (sb_call_ticket_want_events(cb->app))
        w->events = json_array();
    sb_store_submit(cb->app->store, save_run, save_done, w);
}

/* ---- placing the calls ---- */

static void on_call_end(void *arg, int64_t live_id, const char *status, bool agent_answered)
{
    sb_callbacks *cb = arg;
    SB_ASSERT(cb->magic == CB_MAGIC);
    cb_req *r = cb->list;
    while (r != NULL && !(r->state == REQ_CALLING && r->live_id == live_id))
        r = r->next;
    if (r == NULL)
        return; /* cancelled meanwhile */
    int64_t now = sb_clock_wall_ms();
    r->state = REQ_QUEUED;
    r->live_id = 0;
    if (strcmp(status, "answered") == 0) {
        sb_log(SB_INFO, "callback", "request=%lld answered attempt=%d agent=%lld", (long long)r->id, r->attempts + 1,
               (long long)r->agent_id);
        r->attempts++;
        save(cb, r, "done", status, 0);
        unlink_req(cb, r);
        return;
    }
    if (!agent_answered || cb->app->stopping) {
        /* the customer was never dialled: no attempt of theirs; another
         * agent gets it (this one is passed over for a while) */
        r->skip_agent = r->agent_id;
        r->skip_until = now + AGENT_SKIP_MS;
        r->next_at = now;
        sb_log(SB_INFO, "callback", "request=%lld agent=%lld did not pick up (%s): queued again", (long long)r->id,
               (long long)r->agent_id, cb->app->stopping ? "shutdown" : status);
        save(cb, r, "queued", cb->app->stopping ? "interrupted" : "agent_no_answer", 0);
        return;
    }
    r->attempts++;
    if (r->attempts >= r->max_attempts) {
        sb_log(SB_INFO, "callback", "request=%lld failed after %d attempt(s) last=%s", (long long)r->id, r->attempts,
               status);
        save(cb, r, "failed", status, 0);
        unlink_req(cb, r);
        return;
    }
    r->next_at = now + (int64_t)r->retry_seconds * 1000;
    sb_log(SB_INFO, "callback", "request=%lld attempt=%d/%d %s: next in %ds or later", (long long)r->id, r->attempts,
           r->max_attempts, status, r->retry_seconds);
    save(cb, r, "queued", status, 0);
}

static void place(sb_callbacks *cb, cb_req *r, team_cal *t, int64_t agent_id, int64_t now)
{
    const sb_config *cfg = &cb->app->cfg;
    sb_outbound_request rq;
    memset(&rq, 0, sizeof rq);
    rq.agent_id = agent_id;
    snprintf(rq.number, sizeof rq.number, "%s", r->phone);
    snprintf(rq.caller_id, sizeof rq.caller_id, "%s",
             r->caller_id[0]             ? r->caller_id
             : cfg->trunk_from_number[0] ? cfg->trunk_from_number
                                         : "anonymous");
    rq.contact_id = r->contact_id;
    snprintf(rq.contact_name, sizeof rq.contact_name, "%s", r->contact_name);
    rq.ticket_id = r->ticket_id;
    rq.task_id = r->task_id;
    rq.on_end = on_call_end;
    rq.on_end_arg = cb;
    json_t *call = NULL;
    const char *code = "internal";
    char msg[200] = "";
    int status = sb_outbound_place(sb_calls_outbound(cb->app->calls), &rq, &call, &code, msg, sizeof msg);
    if (status == 422) { /* the trunk cannot dial this number at all */
        sb_log(SB_WARN, "callback", "request=%lld cannot be dialled: %s", (long long)r->id, msg);
        save(cb, r, "failed", "undialable", 0);
        unlink_req(cb, r);
        return;
    }
    if (status != 0) {
        sb_log(SB_WARN, "callback", "request=%lld not placed: %s (%s)", (long long)r->id, code, msg);
        r->next_at = now + AGENT_RETRY_MS;
        return;
    }
    r->live_id = json_integer_value(json_object_get(call, "id"));
    json_decref(call);
    r->state = REQ_CALLING;
    r->agent_id = agent_id;
    t->last_agent = agent_id;
    sb_log(SB_INFO, "callback", "request=%lld outbound=%lld agent=%lld attempt=%d/%d", (long long)r->id,
           (long long)r->live_id, (long long)agent_id, r->attempts + 1, r->max_attempts);
    save(cb, r, "calling", NULL, now);
}

/* ---- teams' calendars ---- */

typedef struct cal_op {
    sb_callbacks *cb;
    json_t *rows; /* [[team_id, calendar_id, data|null], ...] */
} cal_op;

static int cal_run(sb_tx *tx, void *arg)
{
    cal_op *o = arg;
    int64_t *ids = NULL;
    size_t n = 0;
    sb_stmt *s = sb_tx_query(tx, "SELECT id FROM team ORDER BY id", "");
    if (s == NULL)
        return SB_EIO;
    int rc = sb_api_collect_ids(s, &ids, &n);
    o->rows = json_array();
    for (size_t i = 0; rc == 0 && i < n; i++) {
        int64_t calendar_id = 0;
        char *text = NULL;
        rc = team_calendar_text(tx, ids[i], &calendar_id, &text);
        if (rc == SB_ENOTFOUND)
            rc = 0;
        else if (rc == 0)
            json_array_append_new(o->rows, json_pack("[I,I,s?]", (json_int_t)ids[i], (json_int_t)calendar_id, text));
        free(text);
    }
    free(ids);
    return rc;
}

static void cal_done(void *arg, int rc)
{
    cal_op *o = arg;
    sb_callbacks *cb = o->cb;
    SB_ASSERT(cb->magic == CB_MAGIC);
    cb->cal_loading = false;
    if (rc != 0) {
        sb_log(SB_WARN, "callback", "teams' calendars not read rc=%d (kept as they were)", rc);
    } else {
        size_t n = json_array_size(o->rows), i;
        team_cal *teams = sb_xcalloc(n + 1, sizeof *teams);
        json_t *row;
        json_array_foreach (o->rows, i, row) {
            teams[i].team_id = json_integer_value(json_array_get(row, 0));
            teams[i].cal =
                calendar_of(json_string_value(json_array_get(row, 2)), json_integer_value(json_array_get(row, 1)));
            const team_cal *old = team_of(cb, teams[i].team_id);
            teams[i].last_agent = old != NULL ? old->last_agent : 0;
        }
        for (size_t k = 0; k < cb->nteams; k++)
            sb_calendar_free(cb->teams[k].cal);
        free(cb->teams);
        cb->teams = teams;
        cb->nteams = n;
        cb->cal_loaded_ms = sb_clock_mono_ms();
    }
    json_decref(o->rows);
    free(o);
}

static void reload_calendars(sb_callbacks *cb)
{
    cb->cal_loading = true;
    cb->cal_dirty = false;
    cal_op *o = sb_xcalloc(1, sizeof *o);
    o->cb = cb;
    sb_store_read(cb->app->store, cal_run, cal_done, o);
}

/* ---- the pending requests at start ---- */

typedef struct load_op {
    sb_callbacks *cb;
    cb_req *first; /* oldest first */
    size_t n;
} load_op;

static int load_run(sb_tx *tx, void *arg)
{
    load_op *o = arg;
    /* a call under way when the daemon stopped was hung up with it */
    int rc = sb_tx_exec(tx,
                        "UPDATE callback_request SET status = 'queued', last_result = 'interrupted', updated_at = ? "
                        "WHERE status = 'calling'",
                        "i", sb_tx_now(tx));
    if (rc != 0)
        return rc;
    sb_stmt *s =
        sb_tx_query(tx,
                    "SELECT r.id, COALESCE(r.team_id, 0), COALESCE(r.contact_id, 0), COALESCE(r.ticket_id, 0), "
                    "COALESCE(r.task_id, 0), r.phone, COALESCE(r.caller_id, ''), "
                    "COALESCE(c.name, r.name, ''), COALESCE(r.language, ''), r.attempts, r.max_attempts, "
                    "r.retry_seconds, COALESCE(r.last_attempt_at, 0) FROM callback_request r "
                    "LEFT JOIN contact c ON c.id = r.contact_id WHERE r.status = 'queued' ORDER BY r.id DESC",
                    "");
    if (s == NULL)
        return SB_EIO;
    while ((rc = sb_stmt_step(s)) == 1) {
        cb_req *r = sb_xcalloc(1, sizeof *r);
        r->id = sb_stmt_int(s, 0);
        r->team_id = sb_stmt_int(s, 1);
        r->contact_id = sb_stmt_int(s, 2);
        r->ticket_id = sb_stmt_int(s, 3);
        r->task_id = sb_stmt_int(s, 4);
        snprintf(r->phone, sizeof r->phone, "%s", sb_stmt_text(s, 5));
        snprintf(r->caller_id, sizeof r->caller_id, "%s", sb_stmt_text(s, 6));
        snprintf(r->contact_name, sizeof r->contact_name, "%s", sb_stmt_text(s, 7));
        r->en = strncmp(sb_stmt_text(s, 8), "en", 2) == 0;
        r->attempts = (int)sb_stmt_int(s, 9);
        r->max_attempts = (int)sb_stmt_int(s, 10);
        r->retry_seconds = (int)sb_stmt_int(s, 11);
        /* next_attempt_at is what the API shows (the calendar taken into
         * account when it was written); the scheduler's own bound is the
         * retry interval after the last attempt, the calendar being checked
         * at every tick (it may have changed) */
        r->next_at = r->attempts > 0 ? sb_stmt_int(s, 12) + (int64_t)r->retry_seconds * 1000 : 0;
        r->next = o->first;
        o->first = r;
        o->n++;
    }
    sb_stmt_end(s);
    return rc < 0 ? rc : 0;
}

static void load_done(void *arg, int rc)
{
    load_op *o = arg;
    sb_callbacks *cb = o->cb;
    SB_ASSERT(cb->magic == CB_MAGIC);
    if (rc != 0) {
        sb_log(SB_ERROR, "callback", "pending call-back requests not read rc=%d (tried again)", rc);
        while (o->first != NULL) {
            cb_req *r = o->first;
            o->first = r->next;
            free(r);
        }
    } else {
        while (o->first != NULL) {
            cb_req *r = o->first;
            o->first = r->next;
            append(cb, r);
        }
        cb->loaded = true;
        sb_log(SB_INFO, "callback", "pending call-back requests=%zu", o->n);
    }
    free(o);
}

static void load_pending(sb_callbacks *cb)
{
    load_op *o = sb_xcalloc(1, sizeof *o);
    o->cb = cb;
    sb_store_submit(cb->app->store, load_run, load_done, o);
}

/* ---- the tick ---- */

static void on_tick(uv_timer_t *t)
{
    sb_callbacks *cb = t->data;
    SB_ASSERT(cb->magic == CB_MAGIC);
    if (cb->stopped || cb->app->stopping)
        return;
    if (!cb->loaded) {
        if (++cb->load_tries % 30 == 0)
            load_pending(cb);
        return;
    }
    uint64_t mono = sb_clock_mono_ms();
    if (!cb->cal_loading && (cb->cal_dirty || cb->cal_loaded_ms == 0 || mono - cb->cal_loaded_ms >= CAL_REFRESH_MS))
        reload_calendars(cb);
    if (cb->cal_loaded_ms == 0)
        return;
    int64_t now = sb_clock_wall_ms();
    for (cb_req *r = cb->list, *next; r != NULL; r = next) {
        next = r->next; /* place() may drop r */
        if (r->state != REQ_QUEUED || r->next_at > now)
            continue;
        team_cal *tc = team_of(cb, r->team_id);
        if (tc == NULL || (tc->cal != NULL && !sb_calendar_is_open(tc->cal, now)))
            continue; /* a team that is gone keeps its requests until a supervisor cancels them */
        int64_t agent =
            sb_calls_free_agent(cb->app->calls, r->team_id, tc->last_agent, r->skip_until > now ? r->skip_agent : 0);
        if (agent != 0)
            place(cb, r, tc, agent, now);
    }
}

/* ---- lifecycle ---- */

sb_callbacks *sb_callbacks_start(sb_app *app)
{
    sb_callbacks *cb = sb_xcalloc(1, sizeof *cb);
    cb->magic = CB_MAGIC;
    cb->app = app;
    uv_timer_init(app->loop, &cb->timer);
    cb->timer.data = cb;
    uv_timer_start(&cb->timer, on_tick, TICK_MS, TICK_MS);
    uv_unref((uv_handle_t *)&cb->timer);
    cb->timer_open = true;
    load_pending(cb);
    return cb;
}

void sb_callbacks_stop(sb_callbacks *cb)
{
    if (cb == NULL || cb->stopped)
        return;
    cb->stopped = true;
    if (cb->timer_open) {
        cb->timer_open = false;
        uv_close((uv_handle_t *)&cb->timer, NULL);
    }
}

void sb_callbacks_free(sb_callbacks *cb)
{
    if (cb == NULL)
        return;
    while (cb->list != NULL) {
        cb_req *r = cb->list;
        cb->list = r->next;
        free(r);
    }
    for (size_t k = 0; k < cb->nteams; k++)
        sb_calendar_free(cb->teams[k].cal);
    free(cb->teams);
    cb->magic = 0;
    free(cb);
}

void sb_callbacks_forget(sb_callbacks *cb, int64_t id)
{
    for (cb_req *r = cb != NULL ? cb->list : NULL; r != NULL; r = r->next)
        if (r->id == id) {
            unlink_req(cb, r);
            return;
        }
}

/* ---- after the form's commit ---- */

void sb_callback_form_after(sb_app *app, sb_callback_made *m)
{
    sb_call_ticket_after(app, &m->ticket);
    sb_callbacks *cb = app->callbacks;
    if (cb == NULL || m->status != 0 || m->outcome != SB_CALLBACK_QUEUED)
        return;
    cb_req *r = sb_xcalloc(1, sizeof *r);
    r->id = m->id;
    r->team_id = m->team_id;
    r->contact_id = m->contact_id;
    r->ticket_id = m->ticket_id;
    r->task_id = m->task_id;
    snprintf(r->phone, sizeof r->phone, "%s", m->phone);
    r->en = m->en;
    snprintf(r->caller_id, sizeof r->caller_id, "%s", m->caller_id);
    snprintf(r->contact_name, sizeof r->contact_name, "%s", m->contact_name);
    r->attempts = 0;
    r->max_attempts = m->max_attempts;
    r->retry_seconds = m->retry_seconds;
    r->next_at = 0; /* now, if the team's calendar is open (checked at each tick) */
    append(cb, r);
    cb->cal_dirty = true; /* the team or its calendar may be new */
}

void sb_callback_form_discard(sb_callback_made *m)
{
    sb_call_ticket_discard(&m->ticket);
}

/* ---- how many forms one address may send ---- */

bool sb_callbacks_allow(sb_callbacks *cb, const char *ip, int64_t now_ms)
{
    if (cb == NULL)
        return true;
    uint64_t h = 1469598103934665603ull;
    for (const char *p = ip; *p != '\0'; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211ull;
    if (h == 0)
        h = 1;
    cb_limit *slot = &cb->limits[h % SB_ARRAY_LEN(cb->limits)];
    if (slot->hash != h || now_ms - slot->window_start >= SB_CALLBACK_WINDOW_MS) {
        /* a stranger sharing the slot starts the window over: fail open */
        slot->hash = h;
        slot->window_start = now_ms;
        slot->count = 0;
    }
    if (slot->count >= SB_CALLBACK_PER_WINDOW)
        return false;
    slot->count++;
    return true;
}

void sb_callbacks_reload(sb_callbacks *cb)
{
    if (cb != NULL)
        cb->cal_dirty = true; /* read at the next tick */
}
