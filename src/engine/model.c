/* model.c - contacts, tickets, messages, events (see model.h). */
#include "engine/model.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "base/log.h"

json_t *sb_json_time(int64_t ms)
{
    if (ms <= 0)
        return json_null();
    char buf[40];
    sb_clock_format_iso(ms, buf, sizeof buf);
    return json_string(buf);
}

json_t *sb_json_text(const char *z)
{
    return z ? json_string(z) : json_null();
}

static json_t *json_int_or_null(sb_stmt *s, int col)
{
    return sb_stmt_isnull(s, col) ? json_null() : json_integer(sb_stmt_int(s, col));
}

/* Stored JSON text → value; falls back to `fallback` if the text is bad. */
static json_t *json_stored(const char *z, json_t *fallback)
{
    json_t *v = z ? json_loads(z, 0, NULL) : NULL;
    if (v == NULL)
        return fallback;
    json_decref(fallback);
    return v;
}

bool sb_ticket_status_valid(const char *z)
{
    static const char *v[] = {"new", "open", "pending", "resolved", "closed"};
    for (size_t i = 0; z && i < SB_ARRAY_LEN(v); i++)
        if (strcmp(z, v[i]) == 0)
            return true;
    return false;
}

bool sb_ticket_priority_valid(const char *z)
{
    static const char *v[] = {"low", "normal", "high", "urgent"};
    for (size_t i = 0; z && i < SB_ARRAY_LEN(v); i++)
        if (strcmp(z, v[i]) == 0)
            return true;
    return false;
}

void sb_emit(json_t *events, const char *type, json_t *data)
{
    if (events == NULL) {
        json_decref(data);
        return;
    }
    json_array_append_new(events, json_pack("{s:s,s:o}", "type", type, "data", data));
}

/* Appends to the event log with `data` already as JSON text. */
static int event_log_text(sb_tx *tx, sb_actor actor, const char *entity, int64_t entity_id, const char *type,
                          const char *data)
{
    return sb_tx_exec(tx,
                      "INSERT INTO event (at, actor_kind, actor_id, entity, entity_id, type, data) "
                      "VALUES (?, ?, ?, ?, ?, ?, ?)",
                      "itItitt", sb_tx_now(tx), actor.kind, actor.id, entity, entity_id, type, data);
}

int sb_event_log(sb_tx *tx, sb_actor actor, const char *entity, int64_t entity_id, const char *type, json_t *data)
{
    char *text = data != NULL ? json_dumps(data, JSON_COMPACT) : NULL;
    json_decref(data);
    int rc = event_log_text(tx, actor, entity, entity_id, type, text ? text : "{}");
    free(text);
    return rc;
}

static int text_backlog(sb_tx *tx, int64_t *upto, int64_t *last)
{
    if (sb_tx_int(tx, upto, "SELECT CAST(value AS INTEGER) FROM setting WHERE key = 'fts_indexed_upto'", "") != 1)
        return SB_EIO;
    if (sb_tx_int(tx, last, "SELECT COALESCE(MAX(id), 0) FROM message", "") != 1)
        return SB_EIO;
    return 0;
}

static int index_text(sb_tx *tx, int64_t upto, int64_t last)
{
    int rc =
        sb_tx_exec(tx, "INSERT INTO message_fts (rowid, text) SELECT id, text FROM message WHERE id > ?", "i", upto);
    if (rc == 0)
        rc = sb_tx_exec(tx, "UPDATE setting SET value = CAST(? AS TEXT) WHERE key = 'fts_indexed_upto'", "i", last);
    return rc;
}

int sb_model_index_text(sb_tx *tx, void *arg)
{
    (void)arg;
    int64_t upto = 0, last = 0;
    int rc = text_backlog(tx, &upto, &last);
    if (rc != 0 || last <= upto)
        return rc;
    return index_text(tx, upto, last);
}

int sb_model_index_text_lazily(sb_tx *tx, void *arg)
{
    sb_text_indexer *ix = arg;
    int64_t upto = 0, last = 0;
    int rc = text_backlog(tx, &upto, &last);
    if (rc != 0)
        return rc;
    if (last <= upto) {
        ix->waiting_since = 0;
        return 0;
    }
    int64_t now = sb_tx_now(tx);
    if (ix->waiting_since == 0)
        ix->waiting_since = now;
    if (last - upto < SB_TEXT_INDEX_CHUNK && now - ix->waiting_since < SB_TEXT_INDEX_DELAY_MS)
        return 0;
    rc = index_text(tx, upto, last);
    if (rc == 0)
        ix->waiting_since = 0;
    return rc;
}

int sb_phone_normalize(const char *raw, const char *default_cc, char *out, size_t cap)
{
    char digits[32];
    size_t n = 0;
    bool plus = false;
    for (const char *p = raw; *p; p++) {
        if (*p == '+' && n == 0 && !plus) {
            plus = true;
        } else if (isdigit((unsigned char)*p)) {
            if (n + 1 >= sizeof digits)
                return SB_EINVAL;
            digits[n++] = *p;
        } else if (strchr(" -().\t", *p) == NULL) {
            return SB_EINVAL;
        }
    }
    digits[n] = '\0';
    const char *cc = default_cc ? default_cc : "7";
    char e164[40];
    if (plus) {
        snprintf(e164, sizeof e164, "+%s", digits);
    } else if (n > 2 && digits[0] == '0' && digits[1] == '0') {
        snprintf(e164, sizeof e164, "+%s", digits + 2);
    } else if (strcmp(cc, "7") == 0 && n == 11 && (digits[0] == '8' || digits[0] == '7')) {
        /* Russian/Kazakh national format with trunk prefix 8 (or 7 without +). */
        snprintf(e164, sizeof e164, "+7%s", digits + 1);
    } else if (n == 10) {
        snprintf(e164, sizeof e164, "+%s%s", cc, digits);
    } else {
        snprintf(e164, sizeof e164, "+%s", digits);
    }
    size_t len = strlen(e164) - 1;
    if (len < 8 || len > 15 || e164[1] == '0')
        return SB_EINVAL;
    if (strlen(e164) + 1 > cap)
        return SB_EINVAL;
    memcpy(out, e164, strlen(e164) + 1);
    return 0;
}

int sb_email_normalize(const char *raw, char *out, size_t cap)
{
    while (*raw == ' ' || *raw == '\t')
        raw++;
    size_t len = strlen(raw);
    while (len > 0 && (raw[len - 1] == ' ' || raw[len - 1] == '\t'))
        len--;
    if (len == 0 || len >= cap || len > 254)
        return SB_EINVAL;
    const char *at = memchr(raw, '@', len);
    if (at == NULL || at == raw || at == raw + len - 1 || memchr(at + 1, '@', len - (size_t)(at - raw) - 1))
        return SB_EINVAL;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)raw[i];
        if (c <= ' ' || c == 0x7f)
            return SB_EINVAL;
        out[i] = (char)(c < 0x80 ? tolower(c) : c);
    }
    out[len] = '\0';
    return 0;
}

int64_t sb_contact_resolve(sb_tx *tx, int64_t contact_id)
{
    for (int hops = 0; hops < 32; hops++) {
        int64_t next = 0;
        int rc = sb_tx_int(tx, &next, "SELECT merged_into FROM contact WHERE id = ?", "i", contact_id);
        if (rc != 1 || next == 0)
            return contact_id;
        contact_id = next;
    }
    return contact_id;
}

static int64_t identity_owner(sb_tx *tx, const char *kind, int64_t scope, const char *address)
{
    int64_t cid = 0;
    int rc = sb_tx_int(tx, &cid, "SELECT contact_id FROM contact_identity WHERE kind = ? AND scope = ? AND address = ?",
                       "tit", kind, scope, address);
    return rc == 1 ? cid : 0;
}

int sb_identity_attach(sb_tx *tx, int64_t contact_id, const char *kind, int64_t scope, const char *address)
{
    if (identity_owner(tx, kind, scope, address) != 0)
        return 0;
    return sb_tx_exec(tx,
                      "INSERT INTO contact_identity (contact_id, kind, scope, address, created_at) "
                      "VALUES (?, ?, ?, ?, ?)",
                      "ititi", contact_id, kind, scope, address, sb_tx_now(tx));
}

int64_t sb_ticket_id_by_number(sb_tx *tx, int64_t number)
{
    int64_t id = 0;
    return sb_tx_int(tx, &id, "SELECT id FROM ticket WHERE number = ?", "i", number) == 1 ? id : 0;
}

static json_t *ticket_row_json(sb_stmt *s);

/* The engine's SLA record of a ticket ({"due": {clock: ms}, "state": {clock:
 * outcome}}) as the API shows it: due times as ISO-8601, null when a clock
 * is not running. */
static json_t *sla_json(const char *stored)
{
    static const char *const clocks[] = {"first_response", "next_response", "resolution"};
    json_t *in = stored != NULL ? json_loads(stored, 0, NULL) : NULL;
    json_t *due = json_object(), *state = json_object_get(in, "state");
    for (size_t i = 0; i < SB_ARRAY_LEN(clocks); i++)
        json_object_set_new(due, clocks[i],
                            sb_json_time(json_integer_value(json_object_get(json_object_get(in, "due"), clocks[i]))));
    json_t *out =
        json_pack("{s:o,s:o}", "due", due, "state", json_is_object(state) ? json_incref(state) : json_object());
    json_decref(in);
    return out;
}

json_t *sb_ticket_row_json(sb_stmt *s)
{
    json_t *t = ticket_row_json(s);
    if (t == NULL)
        return NULL;
    json_object_set_new(t, "sla", sla_json(sb_stmt_text(s, 19)));
    /* the satisfaction survey: when it went out, and the answer */
    json_t *csat = json_pack("{s:o,s:o,s:o,s:o}", "requested_at", sb_json_time(sb_stmt_int(s, 23)), "score",
                             sb_stmt_isnull(s, 20) ? json_null() : json_integer(sb_stmt_int(s, 20)), "comment",
                             sb_json_text(sb_stmt_text(s, 21)), "answered_at", sb_json_time(sb_stmt_int(s, 22)));
    json_object_set_new(t, "csat", csat);
    return t;
}

static json_t *ticket_row_json(sb_stmt *s)
{
    return json_pack("{s:I,s:I,s:I,s:I,s:o,s:s,s:s,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:{s:I,s:o},s:o}", "id",
                     (json_int_t)sb_stmt_int(s, 0), "number", (json_int_t)sb_stmt_int(s, 1), "contact_id",
                     (json_int_t)sb_stmt_int(s, 2), "channel_id", (json_int_t)sb_stmt_int(s, 3), "subject",
                     sb_json_text(sb_stmt_text(s, 4)), "status", sb_stmt_text(s, 5), "priority", sb_stmt_text(s, 6),
                     "team_id", json_int_or_null(s, 7), "assignee_id", json_int_or_null(s, 8), "tags",
                     json_stored(sb_stmt_text(s, 9), json_array()), "attributes",
                     json_stored(sb_stmt_text(s, 10), json_object()), "created_at", sb_json_time(sb_stmt_int(s, 11)),
                     "updated_at", sb_json_time(sb_stmt_int(s, 12)), "last_message_at",
                     sb_json_time(sb_stmt_int(s, 13)), "first_response_at", sb_json_time(sb_stmt_int(s, 14)),
                     "resolved_at", sb_json_time(sb_stmt_int(s, 15)), "closed_at", sb_json_time(sb_stmt_int(s, 16)),
                     "contact", "id", (json_int_t)sb_stmt_int(s, 2), "name", sb_json_text(sb_stmt_text(s, 17)),
                     "channel_kind", sb_json_text(sb_stmt_text(s, 18)));
}

json_t *sb_ticket_json(sb_tx *tx, int64_t ticket_id)
{
    sb_stmt *s = sb_tx_query(tx, SB_TICKET_SELECT "WHERE t.id = ?", "i", ticket_id);
    if (s == NULL)
        return NULL;
    json_t *out = NULL;
    if (sb_stmt_step(s) == 1)
        out = sb_ticket_row_json(s);
    sb_stmt_end(s);
    return out;
}

json_t *sb_message_row_json(sb_stmt *s)
{
    json_t *author = json_null();
    if (!sb_stmt_isnull(s, 4))
        author = json_pack("{s:s,s:I,s:o}", "kind", "agent", "id", (json_int_t)sb_stmt_int(s, 4), "name",
                           sb_json_text(sb_stmt_text(s, 13)));
    else if (!sb_stmt_isnull(s, 5))
        author = json_pack("{s:s,s:I}", "kind", "contact", "id", (json_int_t)sb_stmt_int(s, 5));
    return json_pack("{s:I,s:I,s:I,s:o,s:s,s:o,s:s,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o}", "id",
                     (json_int_t)sb_stmt_int(s, 0), "ticket_id", (json_int_t)sb_stmt_int(s, 1), "ticket_number",
                     (json_int_t)sb_stmt_int(s, 14), "channel_id", json_int_or_null(s, 2), "direction",
                     sb_stmt_text(s, 3), "author", author, "text", sb_stmt_text(s, 6), "attachments",
                     json_stored(sb_stmt_text(s, 7), json_array()), "delivery_status", sb_json_text(sb_stmt_text(s, 8)),
                     "delivery_error", sb_json_text(sb_stmt_text(s, 9)), "external_id",
                     sb_json_text(sb_stmt_text(s, 10)), "client_id", sb_json_text(sb_stmt_text(s, 15)), "sent_at",
                     sb_json_time(sb_stmt_int(s, 16)), "created_at", sb_json_time(sb_stmt_int(s, 11)), "updated_at",
                     sb_json_time(sb_stmt_int(s, 12)));
}

json_t *sb_message_json(sb_tx *tx, int64_t message_id)
{
    sb_stmt *s = sb_tx_query(tx, SB_MESSAGE_SELECT "WHERE m.id = ?", "i", message_id);
    if (s == NULL)
        return NULL;
    json_t *out = NULL;
    if (sb_stmt_step(s) == 1)
        out = sb_message_row_json(s);
    sb_stmt_end(s);
    return out;
}

json_t *sb_contact_json(sb_tx *tx, int64_t contact_id)
{
    sb_stmt *s = sb_tx_query(tx,
                             "SELECT id, name, language, vip, owner_id, tags, attributes, merged_into, "
                             "created_at, updated_at FROM contact WHERE id = ?",
                             "i", contact_id);
    if (s == NULL)
        return NULL;
    json_t *out = NULL;
    if (sb_stmt_step(s) == 1) {
        out = json_pack("{s:I,s:o,s:o,s:b,s:o,s:o,s:o,s:o,s:o,s:o}", "id", (json_int_t)sb_stmt_int(s, 0), "name",
                        sb_json_text(sb_stmt_text(s, 1)), "language", sb_json_text(sb_stmt_text(s, 2)), "vip",
                        (int)sb_stmt_int(s, 3), "owner_id", json_int_or_null(s, 4), "tags",
                        json_stored(sb_stmt_text(s, 5), json_array()), "attributes",
                        json_stored(sb_stmt_text(s, 6), json_object()), "merged_into", json_int_or_null(s, 7),
                        "created_at", sb_json_time(sb_stmt_int(s, 8)), "updated_at", sb_json_time(sb_stmt_int(s, 9)));
    }
    sb_stmt_end(s);
    if (out == NULL)
        return NULL;
    json_t *ids = json_array();
    s = sb_tx_query(tx, "SELECT kind, scope, address FROM contact_identity WHERE contact_id = ? ORDER BY id", "i",
                    contact_id);
    while (s != NULL && sb_stmt_step(s) == 1) {
        json_t *one = json_pack("{s:s,s:s}", "kind", sb_stmt_text(s, 0), "address", sb_stmt_text(s, 2));
        if (sb_stmt_int(s, 1) != 0)
            json_object_set_new(one, "channel_id", json_integer(sb_stmt_int(s, 1)));
        json_array_append_new(ids, one);
    }
    sb_stmt_end(s);
    json_object_set_new(out, "identities", ids);
    return out;
}

/* What one query tells about an identity: its contact and, when that
 * contact was not merged away, the ticket a new message would join. */
typedef struct identity_look {
    int64_t contact_id;
    int64_t merged_into;
    bool nameless;
    bool ticket_known; /* ticket_* below are valid (0 = no ticket to join) */
    bool created;      /* the contact is new */
    int64_t ticket_id, ticket_number;
    char ticket_status[16];
} identity_look;

/* The ticket a new message of contact C joins: its newest active ticket,
 * else its newest one resolved after R. Two max() lookups on the
 * (contact_id, status) index: an IN list or an ORDER BY here would make
 * SQLite build a temporary table at every inbound message. */
#define ACTIVE_TICKET(c, r)                                                                                            \
    "COALESCE((SELECT max(id) FROM ticket WHERE contact_id = " c " AND status <> 'resolved' AND status <> 'closed'), " \
    "(SELECT max(id) FROM ticket WHERE contact_id = " c " AND status = 'resolved' AND resolved_at > " r "))"

static int lookup_identity(sb_tx *tx, const char *kind, int64_t scope, const char *address, int64_t reopen_after,
                           identity_look *out)
{
    memset(out, 0, sizeof *out);
    sb_stmt *s =
        sb_tx_query(tx,
                    "SELECT c.id, c.merged_into, c.name IS NULL, t.id, t.status, t.number FROM contact_identity ci "
                    "JOIN contact c ON c.id = ci.contact_id LEFT JOIN ticket t ON t.id = " ACTIVE_TICKET(
                        "c.id", "?4") " "
                                      "WHERE ci.kind = ?1 AND ci.scope = ?2 AND ci.address = ?3",
                    "titi", kind, scope, address, reopen_after);
    if (s == NULL)
        return SB_EIO;
    int rc = sb_stmt_step(s);
    if (rc == 1) {
        out->contact_id = sb_stmt_int(s, 0);
        out->merged_into = sb_stmt_int(s, 1);
        out->nameless = sb_stmt_int(s, 2) != 0;
        out->ticket_known = out->merged_into == 0;
        if (!sb_stmt_isnull(s, 3)) {
            out->ticket_id = sb_stmt_int(s, 3);
            snprintf(out->ticket_status, sizeof out->ticket_status, "%s", sb_stmt_text(s, 4));
            out->ticket_number = sb_stmt_int(s, 5);
        }
    }
    sb_stmt_end(s);
    return rc < 0 ? rc : 0;
}

/* Finds the contact by any identity of the inbound message, or creates it;
 * attaches the identities it did not have yet. When the lookup already
 * found the ticket to join, `look` says so (ticket_known). */
static int find_or_create_contact(sb_tx *tx, const sb_inbound *in, const char *phone, const char *email,
                                  int64_t *contact_id, identity_look *look, json_t *events)
{
    struct {
        const char *kind;
        int64_t scope;
        const char *address;
    } ids[4];
    size_t n = 0;
    if (in->visitor_id != NULL)
        ids[n++] = (typeof(ids[0])){"webchat", 0, in->visitor_id};
    if (in->from_id != NULL)
        ids[n++] = (typeof(ids[0])){"external", in->channel_id, in->from_id};
    if (phone != NULL)
        ids[n++] = (typeof(ids[0])){"phone", 0, phone};
    if (email != NULL)
        ids[n++] = (typeof(ids[0])){"email", 0, email};
    /* Look identities up until one has an owner (one query also finds the
     * owner's ticket); remember the answers so that attaching the others
     * below needs no second look. */
    int64_t reopen_after = sb_tx_now(tx) - in->reopen_window_ms;
    int64_t owner[4] = {0};
    size_t looked = 0;
    int64_t cid = 0;
    int rc;
    while (looked < n && cid == 0) {
        rc = lookup_identity(tx, ids[looked].kind, ids[looked].scope, ids[looked].address, reopen_after, look);
        if (rc != 0)
            return rc;
        cid = owner[looked++] = look->contact_id;
    }
    bool created = cid == 0;
    look->created = created;
    if (cid != 0) {
        /* Follow merges to the surviving contact; fill a missing name. */
        bool nameless = look->nameless;
        int64_t next = look->merged_into;
        for (int hops = 0; next != 0 && hops < 32; hops++) {
            cid = next;
            sb_stmt *s = sb_tx_query(tx, "SELECT merged_into, name IS NULL FROM contact WHERE id = ?", "i", cid);
            if (s == NULL)
                return SB_EIO;
            next = 0;
            rc = sb_stmt_step(s);
            if (rc == 1) {
                next = sb_stmt_int(s, 0);
                nameless = sb_stmt_int(s, 1) != 0;
            }
            sb_stmt_end(s);
            if (rc < 0)
                return rc;
        }
        if (nameless && in->name != NULL && in->name[0] != '\0') {
            rc = sb_tx_exec(tx, "UPDATE contact SET name = ?, updated_at = ? WHERE id = ?", "tii", in->name,
                            sb_tx_now(tx), cid);
            if (rc != 0)
                return rc;
        }
    } else {
        look->ticket_known = true; /* a new contact has no ticket */
        rc = sb_tx_insert(tx, &cid, "INSERT INTO contact (name, created_at, updated_at) VALUES (?, ?, ?)", "tii",
                          (in->name && in->name[0]) ? in->name : NULL, sb_tx_now(tx), sb_tx_now(tx));
        if (rc != 0)
            return rc < 0 ? rc : SB_EIO;
        rc = sb_event_log(tx, (sb_actor){"system", 0}, "contact", cid, "contact.created", NULL);
        if (rc != 0)
            return rc;
    }
    for (size_t i = 0; i < n; i++) {
        if (i < looked && owner[i] != 0)
            continue; /* already this contact's, or someone else's */
        if (i < looked)
            rc = sb_tx_exec(tx,
                            "INSERT INTO contact_identity (contact_id, kind, scope, address, created_at) "
                            "VALUES (?, ?, ?, ?, ?)",
                            "ititi", cid, ids[i].kind, ids[i].scope, ids[i].address, sb_tx_now(tx));
        else
            rc = sb_identity_attach(tx, cid, ids[i].kind, ids[i].scope, ids[i].address);
        if (rc != 0)
            return rc;
    }
    if (created && events != NULL)
        sb_emit(events, "contact.created", sb_contact_json(tx, cid));
    *contact_id = cid;
    return 0;
}

/* The JSON of an inbound message just inserted, built from what the ingest
 * knows instead of reading it back (the same shape as sb_message_json; a
 * unit test holds them equal). */
json_t *sb_inbound_message_json(const sb_inbound *in, const sb_ingest_result *res, json_t *attachments)
{
    int64_t now = res->created_at;
    json_t *att = attachments ? json_deep_copy(attachments) : NULL;
    return json_pack("{s:I,s:I,s:I,s:I,s:s,s:{s:s,s:I},s:s,s:o,s:s,s:n,s:o,s:o,s:o,s:o,s:o}", "id",
                     (json_int_t)res->message_id, "ticket_id", (json_int_t)res->ticket_id, "ticket_number",
                     (json_int_t)res->ticket_number, "channel_id", (json_int_t)in->channel_id, "direction", "in",
                     "author", "kind", "contact", "id", (json_int_t)res->contact_id, "text", in->text, "attachments",
                     att ? att : json_array(), "delivery_status", "received", "delivery_error", "external_id",
                     sb_json_text(in->external_id), "client_id", sb_json_text(in->client_id), "sent_at",
                     sb_json_time(in->timestamp), "created_at", sb_json_time(now), "updated_at", sb_json_time(now));
}

static int set_ticket_status(sb_tx *tx, int64_t ticket_id, const char *from, const char *to, sb_actor actor)
{
    int64_t now = sb_tx_now(tx);
    int rc = sb_tx_exec(tx,
                        "UPDATE ticket SET status = ?, updated_at = ?, "
                        "resolved_at = CASE WHEN ?3 = 'resolved' THEN ?4 WHEN ?3 IN ('new','open','pending') "
                        "THEN NULL ELSE resolved_at END, "
                        "closed_at = CASE WHEN ?5 = 'closed' THEN ?6 ELSE NULL END WHERE id = ?7",
                        "tititii", to, now, to, now, to, now, ticket_id);
    if (rc != 0)
        return rc;
    return sb_event_log(tx, actor, "ticket", ticket_id, "ticket.status",
                        json_pack("{s:s,s:s}", "from", from, "to", to));
}

int sb_csat_rating(const char *text, const char **comment)
{
    const char *p = text;
    *comment = NULL;
    while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
        p++;
    if (*p < '1' || *p > '5' || (p[1] >= '0' && p[1] <= '9'))
        return 0;
    int score = *p - '0';
    p++;
    if (strncmp(p, "/5", 2) == 0)
        p += 2;
    /* a rating is the message's first word: "5", "4 - good", "5/5 спасибо" */
    if (*p != '\0' && strchr(" \t\r\n.,!:;-)", *p) == NULL)
        return 0;
    while (*p != '\0' && strchr(" \t\r\n.,!:;-)", *p) != NULL)
        p++;
    if (*p != '\0')
        *comment = p;
    return score;
}

int sb_ingest(sb_tx *tx, const sb_inbound *in, sb_ingest_result *res, json_t *events)
{
    memset(res, 0, sizeof *res);
    int64_t now = sb_tx_now(tx);
    int rc;

    /* Idempotency: the same (channel, external id) is the same message. */
    if (in->external_id != NULL) {
        sb_stmt *s = sb_tx_query(tx,
                                 "SELECT m.id, m.ticket_id, t.number, t.contact_id FROM message m "
                                 "JOIN ticket t ON t.id = m.ticket_id "
                                 "WHERE m.channel_id = ? AND m.external_id = ?",
                                 "it", in->channel_id, in->external_id);
        if (s == NULL)
            return SB_EIO;
        rc = sb_stmt_step(s);
        if (rc == 1) {
            res->message_id = sb_stmt_int(s, 0);
            res->ticket_id = sb_stmt_int(s, 1);
            res->ticket_number = sb_stmt_int(s, 2);
            res->contact_id = sb_stmt_int(s, 3);
            res->duplicate = true;
        }
        sb_stmt_end(s);
        if (rc < 0)
            return rc;
        if (res->duplicate)
            return 0;
    }

    char phone[40], email[256];
    const char *phone_p = NULL, *email_p = NULL;
    if (in->phone != NULL && in->phone[0] != '\0') {
        if (sb_phone_normalize(in->phone, in->default_country_code, phone, sizeof phone) != 0)
            return SB_EINVAL;
        phone_p = phone;
    }
    if (in->email != NULL && in->email[0] != '\0') {
        if (sb_email_normalize(in->email, email, sizeof email) != 0)
            return SB_EINVAL;
        email_p = email;
    }
    if (in->visitor_id == NULL && in->from_id == NULL && phone_p == NULL && email_p == NULL)
        return SB_EINVAL;

    identity_look look;
    rc = find_or_create_contact(tx, in, phone_p, email_p, &res->contact_id, &look, events);
    res->contact_created = look.created;
    if (rc != 0)
        return rc;
    sb_actor actor = {"contact", res->contact_id};

    /* Join the contact's active ticket, or reopen a recently resolved one,
     * or open a new one (the identity lookup usually found it already). */
    int64_t tid = 0;
    const char *status = NULL;
    char status_buf[16] = "";
    if (look.ticket_known) {
        tid = look.ticket_id;
        res->ticket_number = look.ticket_number;
        snprintf(status_buf, sizeof status_buf, "%s", look.ticket_status);
        status = status_buf;
    } else {
        sb_stmt *s = sb_tx_query(tx, "SELECT id, status, number FROM ticket WHERE id = " ACTIVE_TICKET("?1", "?2"),
                                 "ii", res->contact_id, now - in->reopen_window_ms);
        if (s == NULL)
            return SB_EIO;
        rc = sb_stmt_step(s);
        if (rc == 1) {
            tid = sb_stmt_int(s, 0);
            res->ticket_number = sb_stmt_int(s, 2);
            snprintf(status_buf, sizeof status_buf, "%s", sb_stmt_text(s, 1));
            status = status_buf;
        }
        sb_stmt_end(s);
        if (rc < 0)
            return rc;
    }

    bool ticket_changed = false;
    if (tid == 0) {
        int64_t number = 0;
        rc = sb_tx_int(tx, &number, "SELECT COALESCE(MAX(number), 0) + 1 FROM ticket", "");
        if (rc != 1)
            return SB_EIO;
        char subject[256];
        size_t sl = 0;
        /* Subject: the first line of the text, cut at a UTF-8 boundary. */
        for (const char *p = in->text; *p && *p != '\n' && *p != '\r' && sl < 120; p++)
            subject[sl++] = *p;
        while (sl > 0 && ((unsigned char)in->text[sl] & 0xC0) == 0x80)
            sl--;
        subject[sl] = '\0';
        rc = sb_tx_insert(tx, &tid,
                          "INSERT INTO ticket (number, contact_id, channel_id, subject, status, priority, "
                          "created_at, updated_at, last_message_at) "
                          "VALUES (?, ?, ?, ?, 'new', 'normal', ?, ?, ?)",
                          "iiitiii", number, res->contact_id, in->channel_id, sl > 0 ? subject : NULL, now, now, now);
        if (rc != 0)
            return rc < 0 ? rc : SB_EIO;
        res->ticket_created = true;
        res->ticket_number = number;
        char data[96];
        snprintf(data, sizeof data, "{\"number\":%lld,\"channel_id\":%lld}", (long long)number,
                 (long long)in->channel_id);
        rc = event_log_text(tx, actor, "ticket", tid, "ticket.created", data);
        if (rc != 0)
            return rc;
    } else {
        bool rated = false;
        const char *comment = NULL;
        int score = strcmp(status, "resolved") == 0 ? sb_csat_rating(in->text, &comment) : 0;
        if (score > 0) {
            /* The answer to a survey that went out: stored on the ticket,
             * which stays resolved. */
            rc = sb_tx_exec(tx,
                            "UPDATE ticket SET csat_score = ?, csat_comment = ?, csat_at = ?, updated_at = ? "
                            "WHERE id = ? AND csat_requested_at IS NOT NULL AND csat_score IS NULL",
                            "itiii", (int64_t)score, comment, now, now, tid);
            if (rc != 0)
                return rc;
            rated = sb_tx_changes(tx) > 0;
            if (rated) {
                res->csat_score = score;
                char data[48];
                snprintf(data, sizeof data, "{\"score\":%d}", score);
                rc = event_log_text(tx, actor, "ticket", tid, "ticket.csat", data);
                if (rc != 0)
                    return rc;
            }
        }
        if (!rated && (strcmp(status, "pending") == 0 || strcmp(status, "resolved") == 0)) {
            rc = set_ticket_status(tx, tid, status, "open", actor);
            if (rc != 0)
                return rc;
            ticket_changed = true;
        }
        rc = sb_tx_exec(tx, "UPDATE ticket SET last_message_at = ?, updated_at = ? WHERE id = ?", "iii", now, now, tid);
        if (rc != 0)
            return rc;
    }
    res->ticket_id = tid;

    char *att = in->attachments ? json_dumps(in->attachments, JSON_COMPACT) : NULL;
    rc = sb_tx_insert(tx, &res->message_id,
                      "INSERT INTO message (ticket_id, channel_id, direction, author_contact_id, text, "
                      "attachments, delivery_status, external_id, client_id, sent_at, created_at, updated_at) "
                      "VALUES (?, ?, 'in', ?, ?, ?, 'received', ?, ?, ?, ?, ?)",
                      "iiittttIii", tid, in->channel_id, res->contact_id, in->text, att ? att : "[]", in->external_id,
                      in->client_id, in->timestamp, now, now);
    if (rc != 0) {
        free(att);
        return rc < 0 ? rc : SB_EIO;
    }
    /* Fixed shapes of numbers only: written directly, not through jansson
     * (ingest's JSON work is a tenth of the store thread's time). */
    char data[96];
    snprintf(data, sizeof data, "{\"message_id\":%lld,\"direction\":\"in\"}", (long long)res->message_id);
    rc = event_log_text(tx, actor, "ticket", tid, "message.created", data);
    if (rc != 0) {
        free(att);
        return rc;
    }

    if (events == NULL) {
        /* nobody listens: the event log above is the record */
    } else if (res->ticket_created) {
        sb_emit(events, "ticket.created", sb_ticket_json(tx, tid));
    } else if (ticket_changed) {
        sb_emit(events, "ticket.updated",
                json_pack("{s:o,s:{s:[s,s]}}", "ticket", sb_ticket_json(tx, tid), "changes", "status", status, "open"));
    }
    res->created_at = now;
    if (!in->defer_message_event && events != NULL)
        sb_emit(events, "message.created", sb_inbound_message_json(in, res, in->attachments));
    free(att);
    return 0;
}
