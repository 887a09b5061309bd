/* calltickets.c - calls on the customer's card and ticket (see calltickets.h). */
#include "voice/calltickets.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "api/api.h"
#include "api/stream.h"
#include "base/log.h"
#include "dispatch.h"

#define DEFAULT_CALLBACK_MINUTES 15
#define MAX_CALLBACK_MINUTES     10080 /* a week */

static const sb_actor SYSTEM = {"system", 0};

bool sb_call_recording_path_valid(const char *rel)
{
    if (rel == NULL || rel[0] == '\0' || rel[0] == '/' || strlen(rel) > 512)
        return false;
    /* no ".." component: the path stays under the data directory (the
     * download also checks where symbolic links lead) */
    for (const char *p = rel; *p != '\0';) {
        size_t n = strcspn(p, "/");
        if (n == 2 && p[0] == '.' && p[1] == '.')
            return false;
        p += n;
        if (*p == '/')
            p++;
    }
    for (const char *p = rel; *p != '\0'; p++)
        if ((unsigned char)*p < ' ' || *p == '\\')
            return false;
    return true;
}

int sb_call_phone_channel(sb_tx *tx, int64_t *id, bool *active)
{
    sb_stmt *s = sb_tx_query(tx, "SELECT id, active FROM channel WHERE kind = 'phone' ORDER BY id LIMIT 1", "");
    if (s == NULL)
        return SB_EIO;
    int rc = sb_stmt_step(s);
    if (rc == 1) {
        *id = sb_stmt_int(s, 0);
        *active = sb_stmt_int(s, 1) != 0;
    }
    sb_stmt_end(s);
    if (rc != 0)
        return rc < 0 ? rc : 0;
    *active = true;
    int64_t now = sb_tx_now(tx);
    rc = sb_tx_insert(tx, id,
                      "INSERT INTO channel (kind, name, config, active, created_at, updated_at) "
                      "VALUES ('phone', 'Телефон', '{}', 1, ?, ?)",
                      "ii", now, now);
    if (rc != 0)
        return rc < 0 ? rc : SB_EIO;
    return sb_event_log(tx, SYSTEM, "channel", *id, "channel.created", json_pack("{s:s}", "kind", "phone"));
}

/* "0:35", "2:14", "1:02:03". */
static void duration(int64_t ms, char *out, size_t cap)
{
    int64_t s = ms > 0 ? (ms + 500) / 1000 : 0;
    if (s >= 3600)
        snprintf(out, cap, "%lld:%02lld:%02lld", (long long)(s / 3600), (long long)(s / 60 % 60), (long long)(s % 60));
    else
        snprintf(out, cap, "%lld:%02lld", (long long)(s / 60), (long long)(s % 60));
}

/* A caller id worth a contact of its own when it is no phone number we
 * can normalise (a short or internal number): digits, maybe a '+'. An
 * anonymous call has nobody to call back. */
static bool caller_id_usable(const char *from)
{
    size_t n = strlen(from);
    if (n < 3 || n > 20)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((from[i] >= '0' && from[i] <= '9') || (i == 0 && from[i] == '+')))
            return false;
    return true;
}

/* The contact's language if they are known and have one, else the
 * number's: whether the texts are English (otherwise Russian). */
static int english(sb_tx *tx, const sb_inbound *in, const char *number_lang, bool *en)
{
    int64_t cid = 0;
    int rc = in->phone != NULL
                 ? sb_tx_int(tx, &cid,
                             "SELECT contact_id FROM contact_identity WHERE kind = 'phone' AND scope = 0 "
                             "AND address = ?",
                             "t", in->phone)
                 : sb_tx_int(tx, &cid,
                             "SELECT contact_id FROM contact_identity WHERE kind = 'external' AND scope = ? "
                             "AND address = ?",
                             "it", in->channel_id, in->from_id);
    if (rc < 0)
        return rc;
    char lang[16] = "";
    if (rc == 1) {
        rc = sb_tx_text(tx, lang, sizeof lang, "SELECT language FROM contact WHERE id = ?", "i",
                        sb_contact_resolve(tx, cid));
        if (rc != 0)
            return rc;
    }
    if (lang[0] == '\0' && number_lang != NULL)
        snprintf(lang, sizeof lang, "%s", number_lang);
    *en = strncmp(lang, "en", 2) == 0;
    return 0;
}

static bool missed_status(const char *status)
{
    return strcmp(status, "missed") == 0 || strcmp(status, "abandoned") == 0 || strcmp(status, "busy") == 0 ||
           strcmp(status, "voicemail") == 0;
}

/* The message that tells the agents what happened on the phone. */
static int call_text(sb_tx *tx, const sb_call_facts *f, bool en, char *out, size_t cap)
{
    char name[128] = "", wait[24], talk[24];
    int rc = 0;
    int64_t until = f->answered_at != 0 && strcmp(f->status, "answered") == 0 ? f->answered_at : f->ended_at;
    duration(until - f->offered_at, wait, sizeof wait);
    if (strcmp(f->status, "answered") == 0) {
        duration((f->talk_ended_at != 0 ? f->talk_ended_at : f->ended_at) - f->answered_at, talk, sizeof talk);
        if (f->agent_id != 0)
            rc = sb_tx_text(tx, name, sizeof name, "SELECT name FROM agent WHERE id = ?", "i", f->agent_id);
        if (name[0] == '\0')
            snprintf(name, sizeof name, "%s", en ? "an agent" : "оператор");
        snprintf(out, cap, en ? "Inbound call, %s, answered by %s" : "Входящий звонок, %s, ответил(а) %s", talk, name);
        return rc;
    }
    if (strcmp(f->status, "voicemail") == 0) {
        duration(f->recording_ms, talk, sizeof talk);
        snprintf(out, cap, en ? "Voicemail, %s" : "Голосовое сообщение, %s", talk);
        return 0;
    }
    if (!missed_status(f->status)) {
        snprintf(out, cap, en ? "Call dropped (waited %s)" : "Звонок прервался (ожидание %s)", wait);
        return 0;
    }
    bool after = f->period != NULL && strcmp(f->period, "after_hours") == 0;
    bool holiday = f->period != NULL && strcmp(f->period, "holiday") == 0;
    const char *head = strcmp(f->status, "busy") == 0 ? (en ? "Missed call, line busy" : "Пропущенный звонок, занято")
                       : after ? (en ? "Missed call after hours" : "Пропущенный звонок в нерабочее время")
                       : holiday ? (en ? "Missed call on a holiday" : "Пропущенный звонок в праздник")
                                 : (en ? "Missed call" : "Пропущенный звонок");
    char target[200] = "";
    if (f->queue_team_id != 0) {
        rc = sb_tx_text(tx, name, sizeof name, "SELECT name FROM team WHERE id = ?", "i", f->queue_team_id);
        if (rc == 0 && name[0] != '\0')
            snprintf(target, sizeof target, en ? "queue \u201c%s\u201d, " : "очередь «%s», ", name);
    } else if (f->agent_id != 0) {
        rc = sb_tx_text(tx, name, sizeof name, "SELECT name FROM agent WHERE id = ?", "i", f->agent_id);
        if (rc == 0 && name[0] != '\0')
            snprintf(target, sizeof target, en ? "agent %s, " : "оператор %s, ", name);
    }
    snprintf(out, cap, en ? "%s (%swaited %s)" : "%s (%sожидание %s)", head, target, wait);
    return rc;
}

/* The recording as an attachment of the message, or NULL. The file is
 * served by GET /api/v1/calls/{id}/recording, never by its path. */
static json_t *recording_attachment(const sb_call_facts *f)
{
    if (!sb_call_recording_path_valid(f->recording))
        return NULL;
    char name[64], url[80], path[1100];
    snprintf(name, sizeof name, "call-%lld.wav", (long long)f->call_id);
    snprintf(url, sizeof url, "/api/v1/calls/%lld/recording", (long long)f->call_id);
    json_t *a = json_pack("{s:s,s:s,s:s,s:I}", "name", name, "mime", "audio/wav", "url", url, "duration_ms",
                          (json_int_t)f->recording_ms);
    snprintf(path, sizeof path, "%s/%s", f->data_dir, f->recording);
    struct stat st;
    if (stat(path, &st) == 0 && S_ISREG(st.st_mode))
        json_object_set_new(a, "size", json_integer((json_int_t)st.st_size));
    return json_pack("[o]", a);
}

/* Whether the blacklist names the caller: no call-back task for them (the
 * ticket itself is quarantined after the commit, as for any message). */
static int blacklisted(sb_tx *tx, const char *phone, int64_t contact_id, bool *out)
{
    char id[24];
    snprintf(id, sizeof id, "%lld", (long long)contact_id);
    int rc =
        sb_tx_int(tx, &(int64_t){0},
                  "SELECT 1 FROM blacklist WHERE (kind = 'phone' AND value = ?) OR (kind = 'contact' AND value = ?)",
                  "tt", phone, id);
    *out = rc == 1;
    return rc < 0 ? rc : 0;
}

static int64_t callback_minutes(sb_tx *tx)
{
    int64_t v = 0;
    if (sb_tx_int(tx, &v,
                  "SELECT CAST(value AS INTEGER) FROM setting WHERE key = 'engine.missed_call_callback_minutes'",
                  "") != 1 ||
        v < 1 || v > MAX_CALLBACK_MINUTES)
        v = DEFAULT_CALLBACK_MINUTES;
    return v;
}

/* A missed call: a call-back task on the ticket, or, when the contact has
 * one open already (it keeps its due time), a note with the attempts. */
static int call_back(sb_tx *tx, const sb_call_facts *f, bool en, sb_call_ticket *out)
{
    int64_t contact = out->res.contact_id, tid = out->res.ticket_id, task = 0;
    int rc = sb_tx_int(tx, &task,
                       "SELECT id FROM task WHERE status = 'open' AND kind = 'call_back' AND contact_id = ? "
                       "ORDER BY id LIMIT 1",
                       "i", contact);
    if (rc < 0)
        return rc;
    if (rc == 1) {
        int64_t attempts = 0;
        rc = sb_tx_exec(tx, "UPDATE call SET callback_task_id = ? WHERE id = ?", "ii", task, f->call_id);
        if (rc == 0 && sb_tx_int(tx, &attempts, "SELECT count(*) FROM call WHERE callback_task_id = ?", "i", task) != 1)
            rc = SB_EIO;
        if (rc != 0)
            return rc;
        char note[200];
        snprintf(note, sizeof note,
                 en ? "Missed call again (attempt %lld): the call-back task is already open."
                    : "Снова пропущенный звонок (попытка %lld): задача перезвонить уже открыта.",
                 (long long)attempts);
        sb_delivery *dl = NULL;
        json_t *msg = NULL;
        rc = sb_ticket_add_message(tx, tid, 0, false, note, out->events, &dl, &msg);
        sb_delivery_free(dl);
        json_decref(msg);
        return rc;
    }
    int64_t assignee = 0, now = sb_tx_now(tx);
    rc = sb_tx_int(tx, &assignee, "SELECT COALESCE(assignee_id, 0) FROM ticket WHERE id = ?", "i", tid);
    if (rc != 1)
        return rc < 0 ? rc : SB_EIO;
    int64_t from = f->ended_at > 0 ? f->ended_at : now;
    if (f->callback_from > from) /* after hours: from the next opening */
        from = f->callback_from;
    int64_t due = from + callback_minutes(tx) * 60000;
    char title[120];
    snprintf(title, sizeof title, en ? "Call back %s" : "Перезвонить %s", out->phone[0] ? out->phone : f->from);
    rc = sb_tx_insert(tx, &task,
                      "INSERT INTO task (title, kind, ticket_id, contact_id, assignee_id, due_at, created_at, "
                      "updated_at) VALUES (?, 'call_back', ?, ?, ?, ?, ?, ?)",
                      "tiiIiii", title, tid, contact, assignee, due, now, now);
    if (rc != 0)
        return rc < 0 ? rc : SB_EIO;
    rc = sb_event_log(tx, SYSTEM, "task", task, "task.created",
                      json_pack("{s:s,s:I,s:I}", "kind", "call_back", "ticket_id", (json_int_t)tid, "call_id",
                                (json_int_t)f->call_id));
    if (rc == 0)
        rc = sb_tx_exec(tx, "UPDATE call SET callback_task_id = ? WHERE id = ?", "ii", task, f->call_id);
    if (rc != 0)
        return rc;
    if (out->events != NULL) {
        json_t *t = sb_task_json(tx, task);
        if (t == NULL)
            return SB_EIO;
        sb_emit(out->events, "task.created", t);
    }
    out->task = (sb_task_info){.id = task, .ticket_id = tid, .assignee_id = assignee, .due_at = due};
    return 0;
}

int sb_call_close_callbacks(sb_tx *tx, int64_t contact_id, int64_t call_id, sb_call_ticket *out)
{
    int64_t *ids = NULL;
    size_t n = 0;
    sb_stmt *s = sb_tx_query(tx, "SELECT id FROM task WHERE status = 'open' AND kind = 'call_back' AND contact_id = ?",
                             "i", contact_id);
    if (s == NULL)
        return SB_EIO;
    int rc = sb_api_collect_ids(s, &ids, &n);
    int64_t now = sb_tx_now(tx);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        rc = sb_tx_exec(tx, "UPDATE task SET status = 'done', done_at = ?, updated_at = ? WHERE id = ?", "iii", now,
                        now, ids[i]);
        if (rc == 0)
            rc = sb_event_log(tx, SYSTEM, "task", ids[i], "task.updated",
                              json_pack("{s:s,s:I}", "status", "done", "call_id", (json_int_t)call_id));
        if (rc == 0 && out->events != NULL) {
            json_t *t = sb_task_json(tx, ids[i]);
            if (t == NULL)
                rc = SB_EIO;
            else
                sb_emit(out->events, "task.updated", t);
        }
        if (rc == 0) {
            out->done = sb_xrealloc(out->done, (out->ndone + 1) * sizeof *out->done);
            out->done[out->ndone++] = ids[i];
        }
    }
    free(ids);
    return rc;
}

/* Everything besides the call row; the caller undoes it all on failure. */
static int ticket_work(sb_tx *tx, const sb_call_facts *f, sb_call_ticket *out)
{
    int64_t channel_id = 0;
    bool active = false;
    int rc = sb_call_phone_channel(tx, &channel_id, &active);
    if (rc != 0 || !active)
        return rc; /* a deactivated phone channel keeps calls off tickets */
    sb_inbound in;
    memset(&in, 0, sizeof in);
    if (sb_phone_normalize(f->from, "7", out->phone, sizeof out->phone) == 0) {
        in.phone = out->phone;
    } else {
        out->phone[0] = '\0';
        if (!caller_id_usable(f->from))
            return 0; /* anonymous: nobody to put it on */
        in.from_id = f->from;
    }
    char external[40];
    snprintf(external, sizeof external, "call:%lld", (long long)f->call_id);
    in.channel_id = channel_id;
    in.channel_kind = "phone";
    in.external_id = external;
    in.text = out->text;
    in.timestamp = f->offered_at;
    in.reopen_window_ms = f->reopen_window_ms;
    in.default_country_code = "7";
    bool en = false;
    rc = english(tx, &in, f->language, &en);
    if (rc == 0)
        rc = call_text(tx, f, en, out->text, sizeof out->text);
    if (rc != 0)
        return rc;
    in.attachments = recording_attachment(f);
    rc = sb_ingest(tx, &in, &out->res, out->events);
    json_decref(in.attachments);
    if (rc != 0)
        return rc;
    out->ingested = !out->res.duplicate;
    rc = sb_tx_exec(tx, "UPDATE call SET contact_id = ?, ticket_id = ? WHERE id = ?", "iii", out->res.contact_id,
                    out->res.ticket_id, f->call_id);
    if (rc != 0 || !out->ingested)
        return rc;
    if (strcmp(f->status, "answered") == 0)
        return sb_call_close_callbacks(tx, out->res.contact_id, f->call_id, out);
    if (!missed_status(f->status))
        return 0;
    bool blocked = false;
    rc = blacklisted(tx, out->phone, out->res.contact_id, &blocked);
    if (rc != 0 || blocked)
        return rc;
    return call_back(tx, f, en, out);
}

int sb_call_ticket_run(sb_tx *tx, const sb_call_facts *f, sb_call_ticket *out)
{
    memset(out, 0, sizeof *out);
    out->at = sb_tx_now(tx);
    int rc = sb_tx_exec(tx, "SAVEPOINT call_ticket", "");
    if (rc != 0)
        return rc;
    if (f->want_events)
        out->events = json_array();
    rc = ticket_work(tx, f, out);
    if (rc == 0)
        return sb_tx_exec(tx, "RELEASE call_ticket", "");
    sb_log(SB_WARN, "voice", "call_row=%lld not put on a ticket rc=%d (the call log row stays)", (long long)f->call_id,
           rc);
    json_decref(out->events);
    free(out->done);
    memset(out, 0, sizeof *out);
    out->at = sb_tx_now(tx);
    rc = sb_tx_exec(tx, "ROLLBACK TO call_ticket", "");
    if (rc == 0)
        rc = sb_tx_exec(tx, "RELEASE call_ticket", "");
    return rc;
}

bool sb_call_ticket_want_events(sb_app *app)
{
    return sb_stream_subscribers(app->hub) > 0;
}

void sb_call_ticket_after(sb_app *app, sb_call_ticket *t)
{
    sb_dispatch *d = app->dispatch;
    if (t->ingested && d != NULL) {
        /* Calls are never answered automatically (auto_reply): a reply
         * through the phone channel would reach nobody. */
        const char *blocked = sb_dispatch_blocked(d, t->res.contact_id, t->phone[0] ? t->phone : NULL, NULL, NULL);
        if (blocked != NULL)
            sb_dispatch_quarantine(d, t->res.ticket_id, blocked);
        else if (t->res.ticket_created)
            sb_dispatch_ticket_created(d, t->res.ticket_id, t->text, true);
        else
            sb_dispatch_event(d, &(sb_event){.kind = SB_EV_CUSTOMER_MESSAGE,
                                             .ticket_id = t->res.ticket_id,
                                             .text = t->text,
                                             .auto_reply = true});
    }
    if (d != NULL && t->task.id != 0)
        sb_dispatch_event(d, &(sb_event){.kind = SB_EV_TASK, .task = t->task});
    for (size_t i = 0; d != NULL && i < t->ndone; i++)
        sb_dispatch_event(d, &(sb_event){.kind = SB_EV_TASK_DONE, .task = {.id = t->done[i]}});
    sb_app_publish_built(app, t->events, t->at);
    t->events = NULL;
    free(t->done);
    t->done = NULL;
    t->ndone = 0;
}

void sb_call_ticket_discard(sb_call_ticket *t)
{
    json_decref(t->events);
    t->events = NULL;
    free(t->done);
    t->done = NULL;
    t->ndone = 0;
}

/* ---- at start ---- */

typedef struct channel_op {
    int64_t id;
    bool active;
} channel_op;

static int channel_run(sb_tx *tx, void *arg)
{
    channel_op *o = arg;
    return sb_call_phone_channel(tx, &o->id, &o->active);
}

static void channel_done(void *arg, int rc)
{
    channel_op *o = arg;
    if (rc != 0)
        sb_log(SB_ERROR, "voice", "cannot make the phone channel rc=%d (calls will try again)", rc);
    else
        sb_log(SB_INFO, "voice", "phone channel=%lld active=%d", (long long)o->id, (int)o->active);
    free(o);
}

void sb_call_tickets_start(sb_app *app)
{
    sb_store_submit(app->store, channel_run, channel_done, sb_xcalloc(1, sizeof(channel_op)));
}

/* ---- outbound calls on the ticket ---- */

static int outbound_message(sb_tx *tx, const sb_call_out_facts *f, json_t *events)
{
    int64_t channel_id = 0, tid = f->ticket_id, cid = f->contact_id;
    bool active = false;
    int rc = sb_call_phone_channel(tx, &channel_id, &active);
    if (rc != 0 || !active)
        return rc;
    if (tid == 0 && cid != 0) {
        rc = sb_tx_int(tx, &tid, "SELECT id FROM ticket WHERE contact_id = ? ORDER BY id DESC LIMIT 1", "i",
                       sb_contact_resolve(tx, cid));
        if (rc < 0)
            return rc;
    }
    if (tid == 0)
        return 0;
    char lang[16] = "", name[128] = "", talk[24], text[256];
    rc = sb_tx_text(
        tx, lang, sizeof lang,
        "SELECT COALESCE(c.language, '') FROM ticket t JOIN contact c ON c.id = t.contact_id WHERE t.id = ?", "i", tid);
    if (rc == 0 && f->agent_id != 0)
        rc = sb_tx_text(tx, name, sizeof name, "SELECT name FROM agent WHERE id = ?", "i", f->agent_id);
    if (rc != 0)
        return rc;
    bool en = strncmp(lang, "en", 2) == 0;
    if (name[0] == '\0')
        snprintf(name, sizeof name, "%s", en ? "an agent" : "оператор");
    if (strcmp(f->status, "answered") == 0) {
        duration(f->ended_at - f->answered_at, talk, sizeof talk);
        snprintf(text, sizeof text, en ? "Outbound call, %s, by %s" : "Исходящий звонок, %s, звонил(а) %s", talk, name);
    } else {
        const char *what = strcmp(f->status, "busy") == 0     ? (en ? "busy" : "занято")
                           : strcmp(f->status, "missed") == 0 ? (en ? "no answer" : "не ответили")
                                                              : (en ? "not connected" : "не соединилось");
        snprintf(text, sizeof text, en ? "Outbound call by %s: %s" : "Исходящий звонок (%s): %s", name, what);
    }
    sb_call_facts rf = {
        .call_id = f->call_id, .recording = f->recording, .recording_ms = f->recording_ms, .data_dir = f->data_dir};
    json_t *att = recording_attachment(&rf);
    char *atts = att != NULL ? json_dumps(att, JSON_COMPACT) : NULL;
    json_decref(att);
    char ext[40]; /* as an inbound call's message: the call row's id */
    snprintf(ext, sizeof ext, "call:%lld", (long long)f->call_id);
    int64_t now = sb_tx_now(tx), mid = 0;
    rc = sb_tx_insert(tx, &mid,
                      "INSERT INTO message (ticket_id, channel_id, direction, author_agent_id, text, attachments, "
                      "external_id, created_at, updated_at) VALUES (?, ?, 'out', ?, ?, ?, ?, ?, ?)",
                      "iiItttii", tid, channel_id, f->agent_id, text, atts != NULL ? atts : "[]", ext, now, now);
    free(atts);
    if (rc != 0)
        return rc < 0 ? rc : SB_EIO;
    rc = sb_tx_exec(tx, "UPDATE call SET ticket_id = ? WHERE id = ?", "ii", tid, f->call_id);
    if (rc == 0)
        rc = sb_event_log(tx, (sb_actor){"agent", f->agent_id}, "ticket", tid, "message.created",
                          json_pack("{s:I,s:s,s:I}", "message_id", (json_int_t)mid, "direction", "out", "call_id",
                                    (json_int_t)f->call_id));
    if (rc == 0 && events != NULL) {
        json_t *m = sb_message_json(tx, mid);
        if (m == NULL)
            return SB_EIO;
        sb_emit(events, "message.created", m);
    }
    return rc;
}

int sb_call_ticket_outbound(sb_tx *tx, const sb_call_out_facts *f, json_t *events)
{
    int rc = sb_tx_exec(tx, "SAVEPOINT call_out_ticket", "");
    if (rc != 0)
        return rc;
    size_t nev = events != NULL ? json_array_size(events) : 0;
    rc = outbound_message(tx, f, events);
    if (rc == 0)
        return sb_tx_exec(tx, "RELEASE call_out_ticket", "");
    sb_log(SB_WARN, "voice", "call_row=%lld outbound call not put on a ticket rc=%d (the call log row stays)",
           (long long)f->call_id, rc);
    while (events != NULL && json_array_size(events) > nev)
        json_array_remove(events, json_array_size(events) - 1);
    rc = sb_tx_exec(tx, "ROLLBACK TO call_out_ticket", "");
    if (rc == 0)
        rc = sb_tx_exec(tx, "RELEASE call_out_ticket", "");
    return rc;
}
