/* contacts.c - /api/v1/contacts: search (name or identity, cursor), create
 * with identities, get, patch (adds identities), timeline across every
 * ticket of the contact, merge of a duplicate into a surviving contact. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"

/* In tickets.c: every message of every ticket of one contact, in time order. */
int sb_contact_timeline(sb_tx *tx, int64_t contact_id, json_t **out);

#define MAX_NAME     200
#define MAX_LANGUAGE 16
#define MAX_Q        200

/* ---- small helpers ---- */

/* The stored form of a JSON value (malloc'd) or NULL if v is NULL. */
static char *dump_or_null(json_t *v)
{
    return v ? json_dumps(v, JSON_COMPACT) : NULL;
}

static int contact_state(sb_tx *tx, int64_t id, bool *exists, int64_t *merged_into)
{
    sb_stmt *s = sb_tx_query(tx, "SELECT merged_into FROM contact WHERE id = ?", "i", id);
    if (s == NULL)
        return SB_EIO;
    int rc = sb_stmt_step(s);
    *exists = rc == 1;
    *merged_into = rc == 1 ? sb_stmt_int(s, 0) : 0;
    sb_stmt_end(s);
    return rc < 0 ? rc : 0;
}

/* ---- input validation (shared by create and patch) ---- */

typedef struct contact_input {
    bool has_name, has_language, has_vip, has_owner;
    const char *name;     /* NULL: clear */
    const char *language; /* NULL: clear */
    bool vip;
    int64_t owner_id;   /* 0: none */
    json_t *tags;       /* borrowed from the body; NULL if absent */
    json_t *attributes; /* borrowed from the body; NULL if absent */
    char phone[40];     /* E.164; "" if absent */
    char email[256];    /* normalised; "" if absent */
} contact_input;

/* A string field that may also be null (clear) or "" (clear). */
static int field_text_or_null(sb_api_op *op, json_t *body, const char *name, size_t maxlen, bool *present,
                              const char **out)
{
    json_t *v = json_object_get(body, name);
    *present = v != NULL;
    *out = NULL;
    if (v == NULL || json_is_null(v))
        return 0;
    int rc = sb_api_field_str(op, body, name, false, maxlen, out);
    if (rc != 0)
        return rc;
    if (*out != NULL && (*out)[0] == '\0')
        *out = NULL;
    return 0;
}

static bool language_valid(const char *z)
{
    for (const char *p = z; *p; p++) {
        char c = *p;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_'))
            return false;
    }
    return true;
}

/* Validates the shapes of the body; nothing here touches the store. */
static int contact_input_parse(sb_api_op *op, json_t *body, contact_input *in)
{
    memset(in, 0, sizeof *in);
    int rc;
    if ((rc = field_text_or_null(op, body, "name", MAX_NAME, &in->has_name, &in->name)) != 0 ||
        (rc = field_text_or_null(op, body, "language", MAX_LANGUAGE, &in->has_language, &in->language)) != 0)
        return rc;
    if (in->language != NULL && !language_valid(in->language))
        return sb_api_fail(op, 422, "validation_failed",
                           "field 'language' must be a language code such as 'ru' or 'en'");
    json_t *v = json_object_get(body, "vip");
    if (v != NULL) {
        if (!json_is_boolean(v))
            return sb_api_fail(op, 422, "validation_failed", "field 'vip' must be a boolean");
        in->has_vip = true;
        in->vip = json_is_true(v);
    }
    if ((rc = sb_api_field_int(op, body, "owner_id", false, &in->owner_id, &in->has_owner)) != 0)
        return rc;
    if (in->has_owner && in->owner_id < 0)
        return sb_api_fail(op, 422, "validation_failed", "field 'owner_id' must be an agent id or null");
    v = json_object_get(body, "tags");
    if (v != NULL) {
        if ((rc = sb_api_validate_tags(op, v)) != 0)
            return rc;
        in->tags = v;
    }
    v = json_object_get(body, "attributes");
    if (v != NULL) {
        if ((rc = sb_api_validate_attributes(op, v)) != 0)
            return rc;
        in->attributes = v;
    }
    const char *phone = NULL, *email = NULL;
    if ((rc = sb_api_field_str(op, body, "phone", false, 64, &phone)) != 0 ||
        (rc = sb_api_field_str(op, body, "email", false, 254, &email)) != 0)
        return rc;
    if (phone != NULL && phone[0] != '\0' && sb_phone_normalize(phone, "7", in->phone, sizeof in->phone) != 0)
        return sb_api_fail(op, 422, "validation_failed", "field 'phone' is not a valid phone number");
    if (email != NULL && email[0] != '\0' && sb_email_normalize(email, in->email, sizeof in->email) != 0)
        return sb_api_fail(op, 422, "validation_failed", "field 'email' is not a valid email address");
    return 0;
}

/* Gives (kind, address) to the contact. Already its own: nothing to do;
 * owned by another contact: 409 naming the field and the owner. */
static int identity_claim(sb_tx *tx, sb_api_op *op, int64_t contact_id, const char *field, const char *kind,
                          const char *address, bool *added)
{
    *added = false;
    int64_t owner = 0;
    int rc =
        sb_tx_int(tx, &owner, "SELECT contact_id FROM contact_identity WHERE kind = ? AND scope = 0 AND address = ?",
                  "tt", kind, address);
    if (rc < 0)
        return rc;
    if (rc == 1 && owner == contact_id)
        return 0;
    if (rc == 1)
        return sb_api_fail(op, 409, "conflict", "field '%s': %s already belongs to contact %lld", field, address,
                           (long long)owner);
    rc = sb_tx_exec(tx,
                    "INSERT INTO contact_identity (contact_id, kind, scope, address, created_at) "
                    "VALUES (?, ?, 0, ?, ?)",
                    "itti", contact_id, kind, address, sb_tx_now(tx));
    if (rc == 0)
        *added = true;
    return rc;
}

static int owner_check(sb_tx *tx, sb_api_op *op, const contact_input *in)
{
    if (!in->has_owner || in->owner_id == 0)
        return 0;
    int64_t one = 0;
    int rc = sb_tx_int(tx, &one, "SELECT 1 FROM agent WHERE id = ?", "i", in->owner_id);
    if (rc < 0)
        return rc;
    if (rc == 0)
        return sb_api_fail(op, 422, "validation_failed", "field 'owner_id': no agent %lld", (long long)in->owner_id);
    return 0;
}

/* ---- list ---- */

typedef struct list_args {
    char *like;     /* "%q%" with LIKE wildcards escaped; NULL: no filter */
    char phone[40]; /* q as E.164 when it looks like a phone number, else "" */
    int64_t cursor, limit;
} list_args;

static void list_args_free(void *p)
{
    list_args *a = p;
    if (a == NULL)
        return;
    free(a->like);
    free(a);
}

static const char SQL_LIST[] =
    "SELECT c.id FROM contact c WHERE c.merged_into IS NULL AND (?1 IS NULL OR c.id < ?1) "
    "AND (?2 IS NULL OR c.name LIKE ?2 ESCAPE '\\' OR EXISTS (SELECT 1 FROM contact_identity ci "
    "WHERE ci.contact_id = c.id AND (ci.address LIKE ?2 ESCAPE '\\' OR ci.address = ?3))) "
    "ORDER BY c.id DESC LIMIT ?4";

static int list_action(sb_tx *tx, sb_api_op *op)
{
    list_args *a = op->ctx;
    int64_t *ids = NULL;
    size_t n = 0;
    sb_stmt *s = sb_tx_query(tx, SQL_LIST, "Itti", a->cursor, a->like, a->phone[0] ? a->phone : NULL, a->limit + 1);
    int rc = sb_api_collect_ids(s, &ids, &n);
    if (rc < 0)
        return rc;
    bool more = (int64_t)n > a->limit;
    if (more)
        n = (size_t)a->limit;
    json_t *list = json_array();
    for (size_t i = 0; i < n; i++) {
        json_t *c = sb_contact_json(tx, ids[i]);
        if (c != NULL)
            json_array_append_new(list, c);
    }
    json_t *next = json_null();
    if (more && n > 0) {
        char buf[32];
        snprintf(buf, sizeof buf, "%lld", (long long)ids[n - 1]);
        next = json_string(buf);
    }
    free(ids);
    op->out = json_pack("{s:o,s:o}", "contacts", list, "next_cursor", next);
    return 0;
}

/* A q that is only digits and phone punctuation, with enough digits. */
static bool looks_like_phone(const char *q)
{
    size_t digits = 0;
    for (const char *p = q; *p; p++) {
        if (*p >= '0' && *p <= '9')
            digits++;
        else if (strchr("+ -().", *p) == NULL)
            return false;
    }
    return digits >= 5;
}

static char *like_pattern(const char *q)
{
    sb_buf b;
    sb_buf_init(&b);
    sb_buf_appendz(&b, "%");
    for (const char *p = q; *p; p++) {
        if (*p == '%' || *p == '_' || *p == '\\')
            sb_buf_appendz(&b, "\\");
        sb_buf_append(&b, p, 1);
    }
    sb_buf_appendz(&b, "%");
    return b.p;
}

static void handle_list(sb_app *app, sb_http_req *req)
{
    list_args *a = sb_xcalloc(1, sizeof *a);
    a->limit = 50;
    const char *v;
#define BAD(field, msg)                                                                                                \
    do {                                                                                                               \
        list_args_free(a);                                                                                             \
        sb_http_respond_error(req, 422, "validation_failed", "parameter '%s' %s", field, msg);                         \
        return;                                                                                                        \
    } while (0)
    if ((v = sb_http_req_query_param(req, "cursor")) != NULL && !sb_api_parse_id(v, &a->cursor))
        BAD("cursor", "must be the next_cursor of a previous page");
    if ((v = sb_http_req_query_param(req, "limit")) != NULL &&
        (!sb_api_parse_id(v, &a->limit) || a->limit < 1 || a->limit > 200))
        BAD("limit", "must be 1..200");
    if ((v = sb_http_req_query_param(req, "q")) != NULL) {
        size_t len = strlen(v);
        if (len > MAX_Q || !sb_utf8_valid(v, len))
            BAD("q", "must be valid UTF-8 of at most 200 bytes");
        while (*v == ' ')
            v++;
        if (*v != '\0') {
            a->like = like_pattern(v);
            if (looks_like_phone(v) && sb_phone_normalize(v, "7", a->phone, sizeof a->phone) != 0)
                a->phone[0] = '\0';
        }
    }
#undef BAD
    sb_api_op *op = sb_api_op_new(app, req, SB_ROLE_AGENT, list_action);
    op->ctx = a;
    op->ctx_free = list_args_free;
    sb_api_submit(op);
}

/* ---- create ---- */

static int create_action(sb_tx *tx, sb_api_op *op)
{
    static const char *const allowed[] = {"name", "phone", "email", "language", "vip", "tags", "attributes", NULL};
    contact_input in;
    int rc = sb_api_only_fields(op, op->body, allowed);
    if (rc != 0 || (rc = contact_input_parse(op, op->body, &in)) != 0)
        return rc;
    int64_t now = sb_tx_now(tx);
    char *tags = dump_or_null(in.tags);
    char *attrs = dump_or_null(in.attributes);
    int64_t cid = 0;
    rc = sb_tx_int(tx, &cid,
                   "INSERT INTO contact (name, language, vip, tags, attributes, created_at, updated_at) "
                   "VALUES (?, ?, ?, COALESCE(?, '[]'), COALESCE(?, '{}'), ?, ?) RETURNING id",
                   "ttbttii", in.name, in.language, in.vip, tags, attrs, now, now);
    free(tags);
    free(attrs);
    if (rc != 1)
        return rc < 0 ? rc : SB_EIO;
    bool added;
    if (in.phone[0] != '\0' && (rc = identity_claim(tx, op, cid, "phone", "phone", in.phone, &added)) != 0)
        return rc;
    if (in.email[0] != '\0' && (rc = identity_claim(tx, op, cid, "email", "email", in.email, &added)) != 0)
        return rc;
    rc = sb_event_log(tx, (sb_actor){"agent", op->agent_id}, "contact", cid, "contact.created", json_object());
    if (rc != 0)
        return rc;
    json_t *c = sb_contact_json(tx, cid);
    if (c == NULL)
        return SB_EIO;
    sb_emit(op->events, "contact.created", json_incref(c));
    op->out = json_pack("{s:o}", "contact", c);
    op->status = 201;
    return 0;
}

/* ---- get ---- */

static int get_action(sb_tx *tx, sb_api_op *op)
{
    json_t *c = sb_contact_json(tx, op->path_id);
    if (c == NULL)
        return sb_api_fail(op, 404, "not_found", "contact %lld does not exist", (long long)op->path_id);
    op->out = json_pack("{s:o}", "contact", c);
    return 0;
}

/* ---- patch ---- */

static int patch_action(sb_tx *tx, sb_api_op *op)
{
    static const char *const allowed[] = {"name",     "language", "vip",   "tags", "attributes",
                                          "owner_id", "phone",    "email", NULL};
    contact_input in;
    int rc = sb_api_only_fields(op, op->body, allowed);
    if (rc != 0 || (rc = contact_input_parse(op, op->body, &in)) != 0)
        return rc;
    int64_t cid = op->path_id;
    json_t *before = sb_contact_json(tx, cid);
    if (before == NULL)
        return sb_api_fail(op, 404, "not_found", "contact %lld does not exist", (long long)cid);
    json_t *fields = json_array();
    char *tags = NULL, *attrs = NULL;
    json_t *merged = json_object_get(before, "merged_into");
    if (!json_is_null(merged)) {
        rc = sb_api_fail(op, 409, "conflict", "contact %lld was merged into contact %lld", (long long)cid,
                         (long long)json_integer_value(merged));
        goto out;
    }
    if ((rc = owner_check(tx, op, &in)) != 0)
        goto out;

    json_t *new_name = in.has_name ? sb_json_text(in.name) : NULL;
    json_t *new_language = in.has_language ? sb_json_text(in.language) : NULL;
    if (new_name != NULL && !json_equal(new_name, json_object_get(before, "name")))
        json_array_append_new(fields, json_string("name"));
    if (new_language != NULL && !json_equal(new_language, json_object_get(before, "language")))
        json_array_append_new(fields, json_string("language"));
    json_decref(new_name);
    json_decref(new_language);
    if (in.has_vip && in.vip != json_is_true(json_object_get(before, "vip")))
        json_array_append_new(fields, json_string("vip"));
    if (in.has_owner && json_integer_value(json_object_get(before, "owner_id")) != in.owner_id)
        json_array_append_new(fields, json_string("owner_id"));
    if (in.tags != NULL && !json_equal(in.tags, json_object_get(before, "tags"))) {
        json_array_append_new(fields, json_string("tags"));
        tags = json_dumps(in.tags, JSON_COMPACT);
    }
    if (in.attributes != NULL && !json_equal(in.attributes, json_object_get(before, "attributes"))) {
        json_array_append_new(fields, json_string("attributes"));
        attrs = json_dumps(in.attributes, JSON_COMPACT);
    }
    bool added;
    if (in.phone[0] != '\0') {
        if ((rc = identity_claim(tx, op, cid, "phone", "phone", in.phone, &added)) != 0)
            goto out;
        if (added)
            json_array_append_new(fields, json_string("phone"));
    }
    if (in.email[0] != '\0') {
        if ((rc = identity_claim(tx, op, cid, "email", "email", in.email, &added)) != 0)
            goto out;
        if (added)
            json_array_append_new(fields, json_string("email"));
    }
    if (json_array_size(fields) > 0) {
        rc = sb_tx_exec(tx,
                        "UPDATE contact SET name = CASE WHEN ?1 THEN ?2 ELSE name END, "
                        "language = CASE WHEN ?3 THEN ?4 ELSE language END, "
                        "vip = CASE WHEN ?5 THEN ?6 ELSE vip END, "
                        "owner_id = CASE WHEN ?7 THEN ?8 ELSE owner_id END, "
                        "tags = COALESCE(?9, tags), attributes = COALESCE(?10, attributes), updated_at = ?11 "
                        "WHERE id = ?12",
                        "btbtbbbIttii", in.has_name, in.name, in.has_language, in.language, in.has_vip, in.vip,
                        in.has_owner, in.owner_id, tags, attrs, sb_tx_now(tx), cid);
        if (rc != 0)
            goto out;
        rc = sb_event_log(tx, (sb_actor){"agent", op->agent_id}, "contact", cid, "contact.updated",
                          json_pack("{s:O}", "fields", fields));
        if (rc != 0)
            goto out;
    }
    json_t *after = sb_contact_json(tx, cid);
    if (after == NULL) {
        rc = SB_EIO;
        goto out;
    }
    if (json_array_size(fields) > 0)
        sb_emit(op->events, "contact.updated", json_pack("{s:O,s:O}", "contact", after, "fields", fields));
    op->out = json_pack("{s:o}", "contact", after);
    rc = 0;
out:
    free(tags);
    free(attrs);
    json_decref(fields);
    json_decref(before);
    return rc;
}

/* ---- timeline ---- */

static int timeline_action(sb_tx *tx, sb_api_op *op)
{
    json_t *c = sb_contact_json(tx, op->path_id);
    if (c == NULL)
        return sb_api_fail(op, 404, "not_found", "contact %lld does not exist", (long long)op->path_id);
    int64_t *ids = NULL;
    size_t n = 0;
    int rc = sb_api_collect_ids(
        sb_tx_query(tx, "SELECT id FROM ticket WHERE contact_id = ? ORDER BY id", "i", op->path_id), &ids, &n);
    if (rc < 0) {
        json_decref(c);
        return rc;
    }
    json_t *tickets = json_array();
    for (size_t i = 0; i < n; i++) {
        json_t *t = sb_ticket_json(tx, ids[i]);
        if (t != NULL)
            json_array_append_new(tickets, t);
    }
    free(ids);
    json_t *messages = NULL;
    rc = sb_contact_timeline(tx, op->path_id, &messages);
    if (rc != 0) {
        json_decref(c);
        json_decref(tickets);
        return rc;
    }
    op->out = json_pack("{s:o,s:o,s:o}", "contact", c, "tickets", tickets, "messages", messages);
    return 0;
}

/* ---- merge ---- */

/* Tags of `into` followed by those of `other` it did not have. */
static json_t *tags_union(json_t *into, json_t *other)
{
    json_t *out = json_is_array(into) ? json_copy(into) : json_array();
    size_t i, j;
    json_t *t, *u;
    json_array_foreach (other, i, t) {
        bool seen = false;
        json_array_foreach (out, j, u) {
            if (json_equal(t, u)) {
                seen = true;
                break;
            }
        }
        if (!seen)
            json_array_append(out, t);
    }
    return out;
}

/* Attributes of `into`, plus the keys only `other` has. */
static json_t *attributes_union(json_t *into, json_t *other)
{
    json_t *out = json_is_object(into) ? json_copy(into) : json_object();
    const char *key;
    json_t *v;
    json_object_foreach (other, key, v) {
        if (json_object_get(out, key) == NULL)
            json_object_set(out, key, v);
    }
    return out;
}

/* Moves everything `other` owns to `into` and marks `other` merged. The
 * surviving contact keeps its own values; only empty ones are filled. */
static int merge_action(sb_tx *tx, sb_api_op *op)
{
    static const char *const allowed[] = {"other_id", NULL};
    int64_t into = op->path_id, other = 0;
    int rc = sb_api_only_fields(op, op->body, allowed);
    if (rc != 0 || (rc = sb_api_field_int(op, op->body, "other_id", true, &other, NULL)) != 0)
        return rc;
    if (other <= 0)
        return sb_api_fail(op, 422, "validation_failed", "field 'other_id' must be a contact id");
    if (other == into)
        return sb_api_fail(op, 422, "validation_failed", "field 'other_id' must differ from the contact id");
    bool exists;
    int64_t merged_into;
    if ((rc = contact_state(tx, into, &exists, &merged_into)) != 0)
        return rc;
    if (!exists)
        return sb_api_fail(op, 404, "not_found", "contact %lld does not exist", (long long)into);
    if (merged_into != 0)
        return sb_api_fail(op, 409, "conflict", "contact %lld was already merged into contact %lld", (long long)into,
                           (long long)merged_into);
    if ((rc = contact_state(tx, other, &exists, &merged_into)) != 0)
        return rc;
    if (!exists)
        return sb_api_fail(op, 404, "not_found", "contact %lld does not exist", (long long)other);
    if (merged_into != 0)
        return sb_api_fail(op, 409, "conflict", "contact %lld was already merged into contact %lld", (long long)other,
                           (long long)merged_into);

    int64_t now = sb_tx_now(tx);
    sb_actor actor = {"agent", op->agent_id};
    json_t *a = sb_contact_json(tx, into);
    json_t *b = sb_contact_json(tx, other);
    json_t *tags = NULL, *attrs = NULL;
    char *tags_text = NULL, *attrs_text = NULL;
    int64_t *tickets = NULL;
    size_t ntickets = 0;
    if (a == NULL || b == NULL) {
        rc = SB_EIO;
        goto out;
    }
    rc = sb_api_collect_ids(sb_tx_query(tx, "SELECT id FROM ticket WHERE contact_id = ? ORDER BY id", "i", other),
                            &tickets, &ntickets);
    if (rc < 0)
        goto out;
    if ((rc = sb_tx_exec(tx, "UPDATE contact_identity SET contact_id = ? WHERE contact_id = ?", "ii", into, other)) !=
            0 ||
        (rc = sb_tx_exec(tx, "UPDATE ticket SET contact_id = ?, updated_at = ? WHERE contact_id = ?", "iii", into, now,
                         other)) != 0 ||
        (rc = sb_tx_exec(tx, "UPDATE message SET author_contact_id = ? WHERE author_contact_id = ?", "ii", into,
                         other)) != 0)
        goto out;
    /* Contacts merged into `other` earlier now point at the survivor. */
    if ((rc = sb_tx_exec(tx, "UPDATE contact SET merged_into = ? WHERE merged_into = ?", "ii", into, other)) != 0)
        goto out;
    tags = tags_union(json_object_get(a, "tags"), json_object_get(b, "tags"));
    attrs = attributes_union(json_object_get(a, "attributes"), json_object_get(b, "attributes"));
    tags_text = json_dumps(tags, JSON_COMPACT);
    attrs_text = json_dumps(attrs, JSON_COMPACT);
    rc = sb_tx_exec(tx,
                    "UPDATE contact SET name = COALESCE(NULLIF(name, ''), ?2), "
                    "language = COALESCE(NULLIF(language, ''), ?3), vip = MAX(vip, ?4), "
                    "owner_id = COALESCE(owner_id, ?5), tags = ?6, attributes = ?7, updated_at = ?8 WHERE id = ?1",
                    "ittbItti", into, json_string_value(json_object_get(b, "name")),
                    json_string_value(json_object_get(b, "language")), json_is_true(json_object_get(b, "vip")),
                    (int64_t)json_integer_value(json_object_get(b, "owner_id")), tags_text, attrs_text, now);
    if (rc != 0)
        goto out;
    rc = sb_tx_exec(tx, "UPDATE contact SET merged_into = ?, updated_at = ? WHERE id = ?", "iii", into, now, other);
    if (rc != 0)
        goto out;
    rc = sb_event_log(tx, actor, "contact", into, "contact.merged",
                      json_pack("{s:I,s:I}", "merged_id", (json_int_t)other, "tickets_moved", (json_int_t)ntickets));
    if (rc == 0)
        rc = sb_event_log(tx, actor, "contact", other, "contact.merged",
                          json_pack("{s:I}", "merged_into", (json_int_t)into));
    if (rc != 0)
        goto out;

    json_t *c = sb_contact_json(tx, into);
    if (c == NULL) {
        rc = SB_EIO;
        goto out;
    }
    /* Open workspaces show the moved tickets under the survivor at once. */
    for (size_t i = 0; i < ntickets; i++) {
        json_t *t = sb_ticket_json(tx, tickets[i]);
        if (t != NULL)
            sb_emit(op->events, "ticket.updated",
                    json_pack("{s:o,s:{s:[I,I]}}", "ticket", t, "changes", "contact_id", (json_int_t)other,
                              (json_int_t)into));
    }
    sb_emit(op->events, "contact.merged", json_pack("{s:O,s:I}", "contact", c, "merged_id", (json_int_t)other));
    op->out = json_pack("{s:o}", "contact", c);
    rc = 0;
out:
    free(tickets);
    free(tags_text);
    free(attrs_text);
    json_decref(tags);
    json_decref(attrs);
    json_decref(a);
    json_decref(b);
    return rc;
}

/* ---- routing ---- */

bool sb_api_contacts_route(sb_app *app, sb_http_req *req, const char *path)
{
    static const char prefix[] = "/api/v1/contacts/";
    sb_http_method m = sb_http_req_method(req);
    if (strcmp(path, "/api/v1/contacts") == 0) {
        if (m == SB_HTTP_GET || m == SB_HTTP_HEAD) {
            handle_list(app, req);
        } else if (m == SB_HTTP_POST) {
            sb_api_op *op = sb_api_op_new(app, req, SB_ROLE_AGENT, create_action);
            if (sb_api_parse_body(op))
                sb_api_submit(op);
        } else {
            sb_respond_method_not_allowed(req, "GET, POST");
        }
        return true;
    }
    int64_t id;
    const char *rest;
    if (!sb_path_id(path, prefix, &id, &rest)) {
        if (strncmp(path, prefix, sizeof prefix - 1) == 0) {
            sb_http_respond_error(req, 404, "not_found", "contact ids are positive integers");
            return true;
        }
        return false;
    }
    sb_api_op *op = NULL;
    bool needs_body = false;
    if (*rest == '\0') {
        if (m == SB_HTTP_GET || m == SB_HTTP_HEAD) {
            op = sb_api_op_new(app, req, SB_ROLE_AGENT, get_action);
        } else if (m == SB_HTTP_PATCH) {
            op = sb_api_op_new(app, req, SB_ROLE_AGENT, patch_action);
            needs_body = true;
        } else {
            sb_respond_method_not_allowed(req, "GET, PATCH");
            return true;
        }
    } else if (strcmp(rest, "/timeline") == 0) {
        if (m != SB_HTTP_GET && m != SB_HTTP_HEAD) {
            sb_respond_method_not_allowed(req, "GET");
            return true;
        }
        op = sb_api_op_new(app, req, SB_ROLE_AGENT, timeline_action);
    } else if (strcmp(rest, "/merge") == 0) {
        if (m != SB_HTTP_POST) {
            sb_respond_method_not_allowed(req, "POST");
            return true;
        }
        op = sb_api_op_new(app, req, SB_ROLE_AGENT, merge_action);
        needs_body = true;
    } else {
        sb_http_respond_error(req, 404, "not_found", "no such resource: %s", path);
        return true;
    }
    if (needs_body && !sb_api_parse_body(op))
        return true;
    op->path_id = id;
    sb_api_submit(op);
    return true;
}
