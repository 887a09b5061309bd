/* directory.c - /api/v1/agents and /api/v1/teams: list, get, create, patch.
 *
 * Setting a password needs an argon2id hash (~100 ms), which must not run on
 * the loop nor inside a transaction script. Such a request therefore runs
 * its action twice: first without a hash, which authenticates, checks
 * permissions and validates everything but writes nothing; after that
 * commits, the password is hashed on the thread pool and a second op runs
 * the same action with the hash in op->ctx (validating again, since the
 * store may have changed meanwhile) and writes. Unauthenticated or invalid
 * requests thus never cost a hash. */
#include "api/directory.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "base/crypto.h"
#include "base/log.h"
#include "base/clock.h"
#include "dispatch.h"
#include "engine/config.h"

#define MAX_NAME           200
#define MAX_TEAM_NAME      100
#define MAX_PASSWORD       1024
#define MIN_PASSWORD_CHARS 8
#define MAX_IDS            1000

static void reload_after(sb_api_op *op);

static const char SQL_TEAM_EXISTS[] = "SELECT 1 FROM team WHERE id = ?";
static const char SQL_AGENT_EXISTS[] = "SELECT 1 FROM agent WHERE id = ?";

/* ---- JSON ---- */

/* First column of every row of `s` (already bound) as a JSON array. */
static json_t *ids_array(sb_stmt *s)
{
    json_t *out = json_array();
    while (s != NULL && sb_stmt_step(s) == 1)
        json_array_append_new(out, json_integer(sb_stmt_int(s, 0)));
    sb_stmt_end(s);
    return out;
}

/* A stored JSON object column; {} if it is missing or damaged. */
static json_t *stored_object(const char *z)
{
    json_t *v = z != NULL ? json_loads(z, 0, NULL) : NULL;
    if (!json_is_object(v)) {
        json_decref(v);
        v = json_object();
    }
    return v;
}

/* Validates a "routing" body field of a team or an agent, checks the ids it
 * names, and returns it as text to store (NULL if absent; caller frees). */
static int routing_field(sb_tx *tx, sb_api_op *op, bool team, char **out)
{
    *out = NULL;
    json_t *r = json_object_get(op->body, "routing");
    if (r == NULL)
        return 0;
    sb_config_error err = {{0}, {0}};
    sb_config_refs refs = {0};
    int rc = team ? sb_config_check_team_routing(r, &refs, &err) : sb_config_check_agent_routing(r, &err);
    if (rc != 0)
        return sb_api_fail(op, 422, "validation_failed", "field '%s': %s", err.field, err.message);
    for (int i = 0; i < refs.nagents; i++) {
        if ((rc = sb_tx_int(tx, &(int64_t){0}, SQL_AGENT_EXISTS, "i", refs.agents[i])) < 0)
            return rc;
        if (rc == 0)
            return sb_api_fail(op, 422, "validation_failed", "field 'routing.supervisor_id': agent %lld does not exist",
                               (long long)refs.agents[i]);
    }
    for (int i = 0; i < refs.ncalendars; i++) {
        if ((rc = sb_tx_int(tx, &(int64_t){0}, "SELECT 1 FROM config_item WHERE kind = 'calendar' AND id = ?", "i",
                            refs.calendars[i])) < 0)
            return rc;
        if (rc == 0)
            return sb_api_fail(op, 422, "validation_failed",
                               "field 'routing.calendar_id': calendar %lld does not exist",
                               (long long)refs.calendars[i]);
    }
    *out = json_dumps(r, JSON_COMPACT | JSON_SORT_KEYS);
    return 0;
}

json_t *sb_agent_json(sb_tx *tx, int64_t agent_id)
{
    sb_stmt *s = sb_tx_query(tx,
                             "SELECT id, email, name, role, language, active, created_at, updated_at, routing "
                             "FROM agent WHERE id = ?",
                             "i", agent_id);
    if (s == NULL)
        return NULL;
    json_t *out = NULL;
    if (sb_stmt_step(s) == 1)
        out = json_pack("{s:I,s:o,s:o,s:o,s:o,s:b,s:o,s:o}", "id", (json_int_t)sb_stmt_int(s, 0), "email",
                        sb_json_text(sb_stmt_text(s, 1)), "name", sb_json_text(sb_stmt_text(s, 2)), "role",
                        sb_json_text(sb_stmt_text(s, 3)), "language", sb_json_text(sb_stmt_text(s, 4)), "active",
                        sb_stmt_int(s, 5) != 0, "created_at", sb_json_time(sb_stmt_int(s, 6)), "updated_at",
                        sb_json_time(sb_stmt_int(s, 7)));
    if (out != NULL)
        json_object_set_new(out, "routing", stored_object(sb_stmt_text(s, 8)));
    sb_stmt_end(s);
    if (out == NULL)
        return NULL;
    json_object_set_new(out, "team_ids",
                        ids_array(sb_tx_query(tx,
                                              "SELECT team_id FROM agent_team WHERE agent_id = ? "
                                              "ORDER BY team_id",
                                              "i", agent_id)));
    return out;
}

json_t *sb_team_json(sb_tx *tx, int64_t team_id)
{
    sb_stmt *s =
        sb_tx_query(tx, "SELECT id, name, created_at, updated_at, routing FROM team WHERE id = ?", "i", team_id);
    if (s == NULL)
        return NULL;
    json_t *out = NULL;
    if (sb_stmt_step(s) == 1)
        out = json_pack("{s:I,s:o,s:o,s:o,s:o}", "id", (json_int_t)sb_stmt_int(s, 0), "name",
                        sb_json_text(sb_stmt_text(s, 1)), "created_at", sb_json_time(sb_stmt_int(s, 2)), "updated_at",
                        sb_json_time(sb_stmt_int(s, 3)), "routing", stored_object(sb_stmt_text(s, 4)));
    sb_stmt_end(s);
    if (out == NULL)
        return NULL;
    json_object_set_new(out, "member_ids",
                        ids_array(sb_tx_query(tx,
                                              "SELECT agent_id FROM agent_team WHERE team_id = ? "
                                              "ORDER BY agent_id",
                                              "i", team_id)));
    return out;
}

/* ---- password hashing off the loop ---- */

typedef struct hash_job {
    uv_work_t work;
    sb_app *app;
    sb_http_req *req;
    json_t *body;
    int64_t path_id;
    sb_role min_role;
    sb_api_action action;
    char *password;
    char hash[256];
    int rc;
} hash_job;

static void hash_job_forget_password(hash_job *j)
{
    if (j->password != NULL) {
        sodium_memzero(j->password, strlen(j->password));
        free(j->password);
        j->password = NULL;
    }
}

static void hash_job_free(void *p)
{
    hash_job *j = p;
    if (j == NULL)
        return;
    hash_job_forget_password(j);
    json_decref(j->body);
    free(j);
}

static void hash_work(uv_work_t *w)
{
    hash_job *j = w->data;
    j->rc = sb_password_hash(j->password, j->hash, sizeof j->hash);
}

static void hash_after(uv_work_t *w, int status)
{
    hash_job *j = w->data;
    hash_job_forget_password(j);
    if (j->app->stopping) { /* the store may be closed already */
        sb_http_add_header(j->req, "Retry-After", "1");
        sb_http_respond_error(j->req, 503, "shutting_down", "the server is shutting down; retry");
        hash_job_free(j);
        return;
    }
    if (status != 0 || j->rc != 0) {
        sb_log(SB_ERROR, "api", "password hashing failed status=%d rc=%d", status, j->rc);
        sb_http_respond_error(j->req, 500, "internal", "could not hash the password");
        hash_job_free(j);
        return;
    }
    sb_api_op *op = sb_api_op_new(j->app, j->req, j->min_role, j->action);
    op->body = j->body;
    j->body = NULL;
    op->path_id = j->path_id;
    op->ctx = j;
    op->ctx_free = hash_job_free;
    sb_api_submit(op);
}

/* After-commit hook of the validating first run: hands the request over to
 * the hashing job instead of answering it. */
static void start_hashing(sb_api_op *op)
{
    hash_job *j = sb_xcalloc(1, sizeof *j);
    j->app = op->app;
    j->req = op->req;
    j->body = json_incref(op->body);
    j->path_id = op->path_id;
    j->min_role = op->min_role;
    j->action = op->action;
    j->password = sb_xstrdup(json_string_value(json_object_get(op->body, "password")));
    j->work.data = j;
    op->req = NULL; /* the second op answers */
    int rc = uv_queue_work(op->app->loop, &j->work, hash_work, hash_after);
    if (rc != 0) {
        sb_log(SB_ERROR, "api", "cannot queue password hashing err=%s", uv_strerror(rc));
        sb_http_add_header(j->req, "Retry-After", "1");
        sb_http_respond_error(j->req, 503, "busy", "retry later");
        hash_job_free(j);
    }
}

/* The argon2 hash of this run, or NULL in the validating first run. */
static const char *op_password_hash(sb_api_op *op)
{
    hash_job *j = op->ctx;
    return j != NULL ? j->hash : NULL;
}

/* ---- validation ---- */

static int check_password(sb_api_op *op, const char *password)
{
    size_t chars = 0;
    for (const unsigned char *p = (const unsigned char *)password; *p; p++)
        if ((*p & 0xC0) != 0x80)
            chars++;
    if (chars < MIN_PASSWORD_CHARS)
        return sb_api_fail(op, 422, "validation_failed", "field 'password' must have at least %d characters",
                           MIN_PASSWORD_CHARS);
    return 0;
}

static bool agent_language_valid(const char *z)
{
    return strcmp(z, "ru") == 0 || strcmp(z, "en") == 0;
}

/* `v` must be an array of ids of existing rows (exists_sql: "SELECT 1 ... WHERE id = ?").
 * On success *sorted is a new sorted array without duplicates. */
static int check_ids(sb_tx *tx, sb_api_op *op, json_t *v, const char *field, const char *exists_sql, const char *what,
                     json_t **sorted)
{
    *sorted = NULL;
    if (!json_is_array(v) || json_array_size(v) > MAX_IDS)
        return sb_api_fail(op, 422, "validation_failed", "field '%s' must be an array of at most %d %s ids", field,
                           MAX_IDS, what);
    size_t n = json_array_size(v), len = 0;
    int64_t *ids = sb_xcalloc(n ? n : 1, sizeof *ids);
    size_t i;
    json_t *x;
    int rc = 0;
    json_array_foreach (v, i, x) {
        if (!json_is_integer(x) || json_integer_value(x) <= 0) {
            rc = sb_api_fail(op, 422, "validation_failed", "field '%s' must contain %s ids", field, what);
            goto out;
        }
        int64_t id = json_integer_value(x), one = 0;
        rc = sb_tx_int(tx, &one, exists_sql, "i", id);
        if (rc < 0)
            goto out;
        if (rc == 0) {
            rc = sb_api_fail(op, 422, "validation_failed", "field '%s': no %s %lld", field, what, (long long)id);
            goto out;
        }
        /* insertion sort, skipping duplicates: the arrays are small */
        size_t at = 0;
        while (at < len && ids[at] < id)
            at++;
        if (at < len && ids[at] == id)
            continue;
        memmove(ids + at + 1, ids + at, (len - at) * sizeof *ids);
        ids[at] = id;
        len++;
    }
    rc = 0;
    *sorted = json_array();
    for (i = 0; i < len; i++)
        json_array_append_new(*sorted, json_integer(ids[i]));
out:
    free(ids);
    return rc;
}

static int set_agent_teams(sb_tx *tx, int64_t agent_id, json_t *team_ids)
{
    int rc = sb_tx_exec(tx, "DELETE FROM agent_team WHERE agent_id = ?", "i", agent_id);
    size_t i;
    json_t *x;
    json_array_foreach (team_ids, i, x) {
        if (rc != 0)
            break;
        rc = sb_tx_exec(tx, "INSERT OR IGNORE INTO agent_team (agent_id, team_id) VALUES (?, ?)", "ii", agent_id,
                        (int64_t)json_integer_value(x));
    }
    return rc;
}

static int set_team_members(sb_tx *tx, int64_t team_id, json_t *member_ids)
{
    int rc = sb_tx_exec(tx, "DELETE FROM agent_team WHERE team_id = ?", "i", team_id);
    size_t i;
    json_t *x;
    json_array_foreach (member_ids, i, x) {
        if (rc != 0)
            break;
        rc = sb_tx_exec(tx, "INSERT OR IGNORE INTO agent_team (agent_id, team_id) VALUES (?, ?)", "ii",
                        (int64_t)json_integer_value(x), team_id);
    }
    return rc;
}

/* ---- agents ---- */

static int list_agents_action(sb_tx *tx, sb_api_op *op)
{
    int64_t *ids = NULL;
    size_t n = 0;
    int rc = sb_api_collect_ids(sb_tx_query(tx, "SELECT id FROM agent ORDER BY id", ""), &ids, &n);
    if (rc < 0)
        return rc;
    json_t *list = json_array();
    for (size_t i = 0; i < n; i++) {
        json_t *a = sb_agent_json(tx, ids[i]);
        if (a != NULL)
            json_array_append_new(list, a);
    }
    free(ids);
    op->out = json_pack("{s:o}", "agents", list);
    return 0;
}

static int get_agent_action(sb_tx *tx, sb_api_op *op)
{
    json_t *a = sb_agent_json(tx, op->path_id);
    if (a == NULL)
        return sb_api_fail(op, 404, "not_found", "agent %lld does not exist", (long long)op->path_id);
    op->out = json_pack("{s:o}", "agent", a);
    return 0;
}

static int create_agent_action(sb_tx *tx, sb_api_op *op)
{
    static const char *const allowed[] = {"email", "name", "role", "password", "language", "team_ids", NULL};
    const char *email_raw = NULL, *name = NULL, *role = "agent", *password = NULL, *language = "ru";
    char email[256];
    json_t *teams = NULL;
    int rc = sb_api_only_fields(op, op->body, allowed);
    if (rc || (rc = sb_api_field_str(op, op->body, "email", true, 254, &email_raw)) ||
        (rc = sb_api_field_str(op, op->body, "name", true, MAX_NAME, &name)) ||
        (rc = sb_api_field_str(op, op->body, "role", false, 16, &role)) ||
        (rc = sb_api_field_str(op, op->body, "password", true, MAX_PASSWORD, &password)) ||
        (rc = sb_api_field_str(op, op->body, "language", false, 8, &language)))
        return rc;
    if (sb_email_normalize(email_raw, email, sizeof email) != 0)
        return sb_api_fail(op, 422, "validation_failed", "field 'email' is not a valid email address");
    if (sb_role_parse(role) == SB_ROLE_NONE)
        return sb_api_fail(op, 422, "validation_failed", "field 'role' must be agent, supervisor or admin");
    if ((rc = check_password(op, password)) != 0)
        return rc;
    if (!agent_language_valid(language))
        return sb_api_fail(op, 422, "validation_failed", "field 'language' must be 'ru' or 'en'");
    json_t *team_ids = json_object_get(op->body, "team_ids");
    if (team_ids != NULL && !json_is_null(team_ids) &&
        (rc = check_ids(tx, op, team_ids, "team_ids", SQL_TEAM_EXISTS, "team", &teams)) != 0)
        return rc;
    int64_t id = 0;
    rc = sb_tx_int(tx, &id, "SELECT id FROM agent WHERE email = ?", "t", email);
    if (rc < 0)
        goto out;
    if (rc == 1) {
        rc = sb_api_fail(op, 409, "conflict", "field 'email': agent %lld already has this email", (long long)id);
        goto out;
    }
    const char *hash = op_password_hash(op);
    if (hash == NULL) {
        op->after = start_hashing;
        rc = 0;
        goto out;
    }
    int64_t now = sb_tx_now(tx);
    rc = sb_tx_int(tx, &id,
                   "INSERT INTO agent (email, name, role, password_hash, language, active, created_at, updated_at) "
                   "VALUES (?, ?, ?, ?, ?, 1, ?, ?) RETURNING id",
                   "tttttii", email, name, role, hash, language, now, now);
    if (rc != 1) {
        rc = rc == 0 ? SB_EIO : rc;
        goto out;
    }
    if (teams != NULL && (rc = set_agent_teams(tx, id, teams)) != 0)
        goto out;
    rc = sb_event_log(tx, (sb_actor){"agent", op->agent_id}, "agent", id, "agent.created",
                      json_pack("{s:s}", "role", role));
    if (rc != 0)
        goto out;
    json_t *a = sb_agent_json(tx, id);
    if (a == NULL) {
        rc = SB_EIO;
        goto out;
    }
    sb_emit(op->events, "agent.created", json_incref(a));
    op->out = json_pack("{s:o}", "agent", a);
    op->status = 201;
    if (op->after == NULL)
        op->after = reload_after;
    rc = 0;
out:
    json_decref(teams);
    return rc;
}

/* An admin may change anything; an agent only their own name, language and
 * password. Taking away the last active admin is refused. */
static int patch_agent_action(sb_tx *tx, sb_api_op *op)
{
    static const char *const allowed[] = {"name",     "role",     "language", "active",
                                          "password", "team_ids", "routing",  NULL};
    static const char *const self_allowed[] = {"name", "language", "password", NULL};
    int64_t id = op->path_id;
    int rc = sb_api_only_fields(op, op->body, allowed);
    if (rc != 0)
        return rc;
    if (op->role < SB_ROLE_ADMIN) {
        if (op->agent_id != id)
            return sb_api_fail(op, 403, "forbidden", "only an admin may change another agent");
        const char *key;
        json_t *v;
        json_object_foreach (op->body, key, v) {
            bool ok = false;
            for (const char *const *a = self_allowed; *a != NULL; a++)
                if (strcmp(key, *a) == 0)
                    ok = true;
            if (!ok)
                return sb_api_fail(op, 403, "forbidden", "only an admin may change '%s'", key);
        }
    }
    const char *name = NULL, *role = NULL, *language = NULL, *password = NULL;
    if ((rc = sb_api_field_str(op, op->body, "name", false, MAX_NAME, &name)) ||
        (rc = sb_api_field_str(op, op->body, "role", false, 16, &role)) ||
        (rc = sb_api_field_str(op, op->body, "language", false, 8, &language)) ||
        (rc = sb_api_field_str(op, op->body, "password", false, MAX_PASSWORD, &password)))
        return rc;
    if (name != NULL && name[0] == '\0')
        return sb_api_fail(op, 422, "validation_failed", "field 'name' must not be empty");
    if (role != NULL && sb_role_parse(role) == SB_ROLE_NONE)
        return sb_api_fail(op, 422, "validation_failed", "field 'role' must be agent, supervisor or admin");
    if (language != NULL && !agent_language_valid(language))
        return sb_api_fail(op, 422, "validation_failed", "field 'language' must be 'ru' or 'en'");
    if (password != NULL && (rc = check_password(op, password)) != 0)
        return rc;
    json_t *active = json_object_get(op->body, "active");
    if (active != NULL && !json_is_boolean(active))
        return sb_api_fail(op, 422, "validation_failed", "field 'active' must be a boolean");

    json_t *before = sb_agent_json(tx, id);
    if (before == NULL)
        return sb_api_fail(op, 404, "not_found", "agent %lld does not exist", (long long)id);
    json_t *teams = NULL;
    json_t *fields = json_array();
    char *routing = NULL;
    json_t *team_ids = json_object_get(op->body, "team_ids");
    if (team_ids != NULL && (rc = check_ids(tx, op, team_ids, "team_ids", SQL_TEAM_EXISTS, "team", &teams)) != 0)
        goto out;
    if ((rc = routing_field(tx, op, false, &routing)) != 0)
        goto out;
    const char *hash = op_password_hash(op);
    if (password != NULL && hash == NULL) {
        op->after = start_hashing;
        rc = 0;
        goto out;
    }

    if (name != NULL && strcmp(name, json_string_value(json_object_get(before, "name"))) != 0)
        json_array_append_new(fields, json_string("name"));
    if (role != NULL && strcmp(role, json_string_value(json_object_get(before, "role"))) != 0)
        json_array_append_new(fields, json_string("role"));
    if (language != NULL && strcmp(language, json_string_value(json_object_get(before, "language"))) != 0)
        json_array_append_new(fields, json_string("language"));
    bool deactivated = false;
    if (active != NULL && json_is_true(active) != json_is_true(json_object_get(before, "active"))) {
        json_array_append_new(fields, json_string("active"));
        deactivated = json_is_false(active);
    }
    if (hash != NULL)
        json_array_append_new(fields, json_string("password"));
    bool teams_changed = teams != NULL && !json_equal(teams, json_object_get(before, "team_ids"));
    if (teams_changed)
        json_array_append_new(fields, json_string("team_ids"));
    if (routing != NULL && !json_equal(json_object_get(op->body, "routing"), json_object_get(before, "routing"))) {
        json_array_append_new(fields, json_string("routing"));
        if ((rc = sb_tx_exec(tx, "UPDATE agent SET routing = ? WHERE id = ?", "ti", routing, id)) != 0)
            goto out;
    }

    if (json_array_size(fields) > 0) {
        rc =
            sb_tx_exec(tx,
                       "UPDATE agent SET name = COALESCE(?1, name), role = COALESCE(?2, role), "
                       "language = COALESCE(?3, language), active = CASE WHEN ?4 THEN ?5 ELSE active END, "
                       "password_hash = COALESCE(?6, password_hash), updated_at = ?7 WHERE id = ?8",
                       "tttbbtii", name, role, language, active != NULL, json_is_true(active), hash, sb_tx_now(tx), id);
        if (rc != 0)
            goto out;
    }
    if (role != NULL || deactivated) {
        int64_t admins = 0;
        rc = sb_tx_int(tx, &admins, "SELECT COUNT(*) FROM agent WHERE role = 'admin' AND active = 1", "");
        if (rc != 1) {
            rc = rc == 0 ? SB_EIO : rc;
            goto out;
        }
        if (admins == 0) {
            rc = sb_api_fail(op, 409, "conflict", "at least one active admin must remain");
            goto out;
        }
    }
    if (deactivated && (rc = sb_tx_exec(tx, "DELETE FROM session WHERE agent_id = ?", "i", id)) != 0)
        goto out;
    if (hash != NULL) {
        /* A new password ends the agent's other sessions (keeps the caller's own). */
        const char *keep = op->via_session && op->agent_id == id ? op->token_hash : "";
        rc = sb_tx_exec(tx, "DELETE FROM session WHERE agent_id = ? AND hash <> ?", "it", id, keep);
        if (rc != 0)
            goto out;
    }
    if (teams_changed && (rc = set_agent_teams(tx, id, teams)) != 0)
        goto out;
    if (json_array_size(fields) > 0) {
        rc = sb_event_log(tx, (sb_actor){"agent", op->agent_id}, "agent", id, "agent.updated",
                          json_pack("{s:O}", "fields", fields));
        if (rc != 0)
            goto out;
    }
    json_t *a = sb_agent_json(tx, id);
    if (a == NULL) {
        rc = SB_EIO;
        goto out;
    }
    if (json_array_size(fields) > 0)
        sb_emit(op->events, "agent.updated", json_pack("{s:O,s:O}", "agent", a, "fields", fields));
    op->out = json_pack("{s:o}", "agent", a);
    rc = 0;
    if (op->after == NULL)
        op->after = reload_after;
out:
    free(routing);
    json_decref(teams);
    json_decref(fields);
    json_decref(before);
    return rc;
}

static void reload_after(sb_api_op *op)
{
    sb_dispatch_reload(op->app->dispatch);
}

/* ---- presence and absence ---- */

typedef struct presence_ctx {
    sb_event ev;
    bool handover;
} presence_ctx;

static void presence_after(sb_api_op *op)
{
    presence_ctx *p = op->ctx;
    sb_dispatch_event(op->app->dispatch, &p->ev);
    if (p->handover)
        sb_dispatch_event(op->app->dispatch, &(sb_event){.kind = SB_EV_HANDOVER, .agent_id = p->ev.agent_id});
}

/* POST /api/v1/agents/{id}/presence {"presence": "online"|"away"|"offline"}:
 * the agent themselves, or a supervisor. */
static int presence_action(sb_tx *tx, sb_api_op *op)
{
    static const char *const allowed[] = {"presence", NULL};
    const char *z = NULL;
    int rc = sb_api_only_fields(op, op->body, allowed);
    if (rc || (rc = sb_api_field_str(op, op->body, "presence", true, 16, &z)))
        return rc;
    presence_ctx *p = sb_xcalloc(1, sizeof *p);
    op->ctx = p;
    op->ctx_free = free;
    p->ev = (sb_event){.kind = SB_EV_PRESENCE, .agent_id = op->path_id};
    if (sb_presence_parse(z, &p->ev.presence) != 0)
        return sb_api_fail(op, 422, "validation_failed", "field 'presence' must be online, away or offline");
    if (op->agent_id != op->path_id && op->role < SB_ROLE_SUPERVISOR)
        return sb_api_fail(op, 403, "forbidden", "only a supervisor may set another agent's presence");
    if ((rc = sb_tx_int(tx, &(int64_t){0}, "SELECT 1 FROM agent WHERE id = ? AND active = 1", "i", op->path_id)) < 0)
        return rc;
    if (rc == 0)
        return sb_api_fail(op, 404, "not_found", "agent %lld does not exist", (long long)op->path_id);
    rc = sb_tx_exec(tx, "UPDATE agent SET presence = ?, updated_at = ? WHERE id = ?", "tii", z, sb_tx_now(tx),
                    op->path_id);
    if (rc == 0)
        rc = sb_event_log(tx, (sb_actor){"agent", op->agent_id}, "agent", op->path_id, "agent.presence",
                          json_pack("{s:s}", "presence", z));
    if (rc != 0)
        return rc;
    sb_emit(op->events, "agent.presence", json_pack("{s:I,s:s}", "agent_id", (json_int_t)op->path_id, "presence", z));
    op->out = json_pack("{s:I,s:s}", "agent_id", (json_int_t)op->path_id, "presence", z);
    op->after = presence_after;
    return 0;
}

/* POST /api/v1/agents/{id}/absence {"until": ISO-8601 | null, "deputy_id": id | null,
 * "handover": bool}: supervisors mark an agent absent (until = null: back). */
static int absence_action(sb_tx *tx, sb_api_op *op)
{
    static const char *const allowed[] = {"until", "deputy_id", "handover", NULL};
    int rc = sb_api_only_fields(op, op->body, allowed);
    if (rc != 0)
        return rc;
    presence_ctx *p = sb_xcalloc(1, sizeof *p);
    op->ctx = p;
    op->ctx_free = free;
    p->ev = (sb_event){.kind = SB_EV_ABSENCE, .agent_id = op->path_id};
    json_t *until = json_object_get(op->body, "until"), *deputy = json_object_get(op->body, "deputy_id"),
           *handover = json_object_get(op->body, "handover");
    if (until != NULL && !json_is_null(until) &&
        (!json_is_string(until) || sb_clock_parse_iso(json_string_value(until), &p->ev.until) != 0))
        return sb_api_fail(op, 422, "validation_failed", "field 'until' must be an ISO-8601 time or null");
    if (deputy != NULL && !json_is_null(deputy) && (!json_is_integer(deputy) || json_integer_value(deputy) <= 0))
        return sb_api_fail(op, 422, "validation_failed", "field 'deputy_id' must be an agent id or null");
    if (handover != NULL && !json_is_boolean(handover))
        return sb_api_fail(op, 422, "validation_failed", "field 'handover' must be a boolean");
    p->ev.deputy_id = json_integer_value(deputy);
    p->handover = json_is_true(handover);
    if (p->ev.deputy_id == op->path_id)
        return sb_api_fail(op, 422, "validation_failed", "field 'deputy_id': an agent cannot be their own deputy");
    if (p->handover && p->ev.deputy_id == 0)
        return sb_api_fail(op, 422, "validation_failed", "field 'handover' needs a 'deputy_id'");
    int64_t ids[2] = {op->path_id, p->ev.deputy_id};
    for (int i = 0; i < 2; i++) {
        if (ids[i] == 0)
            continue;
        if ((rc = sb_tx_int(tx, &(int64_t){0}, "SELECT 1 FROM agent WHERE id = ? AND active = 1", "i", ids[i])) < 0)
            return rc;
        if (rc == 0)
            return i == 0 ? sb_api_fail(op, 404, "not_found", "agent %lld does not exist", (long long)ids[i])
                          : sb_api_fail(op, 422, "validation_failed", "field 'deputy_id': no active agent %lld",
                                        (long long)ids[i]);
    }
    rc = sb_tx_exec(tx, "UPDATE agent SET absent_until = ?, deputy_id = ?, updated_at = ? WHERE id = ?", "IIii",
                    p->ev.until, p->ev.deputy_id, sb_tx_now(tx), op->path_id);
    if (rc == 0)
        rc = sb_event_log(tx, (sb_actor){"agent", op->agent_id}, "agent", op->path_id, "agent.absence",
                          json_pack("{s:o,s:o,s:b}", "until", sb_json_time(p->ev.until), "deputy_id",
                                    p->ev.deputy_id ? json_integer(p->ev.deputy_id) : json_null(), "handover",
                                    p->handover));
    if (rc != 0)
        return rc;
    op->out = json_pack("{s:I,s:o,s:o}", "agent_id", (json_int_t)op->path_id, "absent_until", sb_json_time(p->ev.until),
                        "deputy_id", p->ev.deputy_id ? json_integer(p->ev.deputy_id) : json_null());
    op->after = presence_after;
    return 0;
}

/* ---- teams ---- */

static int list_teams_action(sb_tx *tx, sb_api_op *op)
{
    int64_t *ids = NULL;
    size_t n = 0;
    int rc = sb_api_collect_ids(sb_tx_query(tx, "SELECT id FROM team ORDER BY id", ""), &ids, &n);
    if (rc < 0)
        return rc;
    json_t *list = json_array();
    for (size_t i = 0; i < n; i++) {
        json_t *t = sb_team_json(tx, ids[i]);
        if (t != NULL)
            json_array_append_new(list, t);
    }
    free(ids);
    op->out = json_pack("{s:o}", "teams", list);
    return 0;
}

static int get_team_action(sb_tx *tx, sb_api_op *op)
{
    json_t *t = sb_team_json(tx, op->path_id);
    if (t == NULL)
        return sb_api_fail(op, 404, "not_found", "team %lld does not exist", (long long)op->path_id);
    op->out = json_pack("{s:o}", "team", t);
    return 0;
}

/* 409 if another team (not `self`) has this name. */
static int team_name_free(sb_tx *tx, sb_api_op *op, const char *name, int64_t self)
{
    int64_t other = 0;
    int rc = sb_tx_int(tx, &other, "SELECT id FROM team WHERE name = ?", "t", name);
    if (rc < 0)
        return rc;
    if (rc == 1 && other != self)
        return sb_api_fail(op, 409, "conflict", "field 'name': team %lld already has this name", (long long)other);
    return 0;
}

static int create_team_action(sb_tx *tx, sb_api_op *op)
{
    static const char *const allowed[] = {"name", "member_ids", "routing", NULL};
    const char *name = NULL;
    json_t *members = NULL;
    char *routing = NULL;
    int rc = sb_api_only_fields(op, op->body, allowed);
    if (rc || (rc = sb_api_field_str(op, op->body, "name", true, MAX_TEAM_NAME, &name)) ||
        (rc = routing_field(tx, op, true, &routing)))
        return rc;
    json_t *member_ids = json_object_get(op->body, "member_ids");
    if (member_ids != NULL && !json_is_null(member_ids) &&
        (rc = check_ids(tx, op, member_ids, "member_ids", SQL_AGENT_EXISTS, "agent", &members)) != 0)
        goto out;
    if ((rc = team_name_free(tx, op, name, 0)) != 0)
        goto out;
    int64_t now = sb_tx_now(tx), id = 0;
    rc = sb_tx_int(tx, &id, "INSERT INTO team (name, created_at, updated_at) VALUES (?, ?, ?) RETURNING id", "tii",
                   name, now, now);
    if (rc != 1) {
        rc = rc == 0 ? SB_EIO : rc;
        goto out;
    }
    if (members != NULL && (rc = set_team_members(tx, id, members)) != 0)
        goto out;
    if (routing != NULL && (rc = sb_tx_exec(tx, "UPDATE team SET routing = ? WHERE id = ?", "ti", routing, id)) != 0)
        goto out;
    rc = sb_event_log(tx, (sb_actor){"agent", op->agent_id}, "team", id, "team.created",
                      json_pack("{s:s}", "name", name));
    if (rc != 0)
        goto out;
    json_t *t = sb_team_json(tx, id);
    if (t == NULL) {
        rc = SB_EIO;
        goto out;
    }
    sb_emit(op->events, "team.created", json_incref(t));
    op->out = json_pack("{s:o}", "team", t);
    op->status = 201;
    if (op->after == NULL)
        op->after = reload_after;
    rc = 0;
out:
    json_decref(members);
    free(routing);
    return rc;
}

static int patch_team_action(sb_tx *tx, sb_api_op *op)
{
    static const char *const allowed[] = {"name", "member_ids", "routing", NULL};
    const char *name = NULL;
    int64_t id = op->path_id;
    int rc = sb_api_only_fields(op, op->body, allowed);
    if (rc || (rc = sb_api_field_str(op, op->body, "name", false, MAX_TEAM_NAME, &name)))
        return rc;
    if (name != NULL && name[0] == '\0')
        return sb_api_fail(op, 422, "validation_failed", "field 'name' must not be empty");
    json_t *before = sb_team_json(tx, id);
    if (before == NULL)
        return sb_api_fail(op, 404, "not_found", "team %lld does not exist", (long long)id);
    json_t *members = NULL;
    json_t *fields = json_array();
    char *routing = NULL;
    json_t *member_ids = json_object_get(op->body, "member_ids");
    if (member_ids != NULL &&
        (rc = check_ids(tx, op, member_ids, "member_ids", SQL_AGENT_EXISTS, "agent", &members)) != 0)
        goto out;
    if ((rc = routing_field(tx, op, true, &routing)) != 0)
        goto out;
    if (routing != NULL && !json_equal(json_object_get(op->body, "routing"), json_object_get(before, "routing"))) {
        json_array_append_new(fields, json_string("routing"));
        if ((rc = sb_tx_exec(tx, "UPDATE team SET routing = ? WHERE id = ?", "ti", routing, id)) != 0)
            goto out;
    }
    if (name != NULL && strcmp(name, json_string_value(json_object_get(before, "name"))) != 0) {
        if ((rc = team_name_free(tx, op, name, id)) != 0)
            goto out;
        json_array_append_new(fields, json_string("name"));
    }
    if (members != NULL && !json_equal(members, json_object_get(before, "member_ids"))) {
        if ((rc = set_team_members(tx, id, members)) != 0)
            goto out;
        json_array_append_new(fields, json_string("member_ids"));
    }
    if (json_array_size(fields) > 0) {
        rc = sb_tx_exec(tx, "UPDATE team SET name = COALESCE(?, name), updated_at = ? WHERE id = ?", "tii", name,
                        sb_tx_now(tx), id);
        if (rc == 0)
            rc = sb_event_log(tx, (sb_actor){"agent", op->agent_id}, "team", id, "team.updated",
                              json_pack("{s:O}", "fields", fields));
        if (rc != 0)
            goto out;
    }
    json_t *t = sb_team_json(tx, id);
    if (t == NULL) {
        rc = SB_EIO;
        goto out;
    }
    if (json_array_size(fields) > 0)
        sb_emit(op->events, "team.updated", json_pack("{s:O,s:O}", "team", t, "fields", fields));
    op->out = json_pack("{s:o}", "team", t);
    rc = 0;
    if (op->after == NULL)
        op->after = reload_after;
out:
    free(routing);
    json_decref(members);
    json_decref(fields);
    json_decref(before);
    return rc;
}

/* ---- routing ---- */

typedef struct resource {
    const char *collection; /* "/api/v1/agents" */
    const char *prefix;     /* "/api/v1/agents/" */
    sb_api_action list, get, create, patch;
    sb_role create_role, patch_role;
} resource;

/* Agents: PATCH admits any agent; patch_agent_action enforces admin-or-self. */
static const resource agents = {"/api/v1/agents",    "/api/v1/agents/",  list_agents_action, get_agent_action,
                                create_agent_action, patch_agent_action, SB_ROLE_ADMIN,      SB_ROLE_AGENT};
static const resource teams = {"/api/v1/teams",    "/api/v1/teams/",  list_teams_action,  get_team_action,
                               create_team_action, patch_team_action, SB_ROLE_SUPERVISOR, SB_ROLE_SUPERVISOR};

static bool route_resource(sb_app *app, sb_http_req *req, const char *path, const resource *r)
{
    sb_http_method m = sb_http_req_method(req);
    bool read = m == SB_HTTP_GET || m == SB_HTTP_HEAD;
    sb_api_op *op = NULL;
    if (strcmp(path, r->collection) == 0)
        return sb_api_route_collection(app, req, SB_ROLE_AGENT, r->list, r->create_role, r->create);
    size_t pl = strlen(r->prefix);
    if (strncmp(path, r->prefix, pl) != 0)
        return false;
    int64_t id;
    const char *rest;
    if (!sb_path_id(path, r->prefix, &id, &rest) || *rest != '\0') {
        sb_http_respond_error(req, 404, "not_found", "no such resource: %s", path);
        return true;
    }
    if (read) {
        op = sb_api_op_new(app, req, SB_ROLE_AGENT, r->get);
    } else if (m == SB_HTTP_PATCH) {
        op = sb_api_op_new(app, req, r->patch_role, r->patch);
        if (!sb_api_parse_body(op))
            return true;
    } else {
        sb_respond_method_not_allowed(req, "GET, PATCH");
        return true;
    }
    op->path_id = id;
    sb_api_submit(op);
    return true;
}

static bool route_agent_state(sb_app *app, sb_http_req *req, const char *path)
{
    int64_t id;
    const char *rest;
    if (!sb_path_id(path, "/api/v1/agents/", &id, &rest) ||
        (strcmp(rest, "/presence") != 0 && strcmp(rest, "/absence") != 0))
        return false;
    if (sb_http_req_method(req) != SB_HTTP_POST) {
        sb_respond_method_not_allowed(req, "POST");
        return true;
    }
    bool presence = strcmp(rest, "/presence") == 0;
    sb_api_op *op = sb_api_op_new(app, req, presence ? SB_ROLE_AGENT : SB_ROLE_SUPERVISOR,
                                  presence ? presence_action : absence_action);
    if (!sb_api_parse_body(op))
        return true;
    op->path_id = id;
    sb_api_submit(op);
    return true;
}

bool sb_api_directory_route(sb_app *app, sb_http_req *req, const char *path)
{
    return route_agent_state(app, req, path) || route_resource(app, req, path, &agents) ||
           route_resource(app, req, path, &teams);
}
