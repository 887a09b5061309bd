/* channels.c - /api/v1/channels: list, create, get, patch, and the signed
 * inbound endpoint of API channels. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "api/api.h"
#include "dispatch.h"
#include "api/channels.h"
#include "api/dashboard.h"
#include "api/stream.h"
#include "base/crypto.h"
#include "base/log.h"
#include "channels/api_inbound.h"
#include "voice/callbacks.h"

#define CHANNEL_COLS "id, kind, name, callback_url, active, config, created_at, updated_at"

static json_t *channel_row(sb_stmt *s, const char *public_url)
{
    json_t *cfg = json_loads(sb_stmt_text(s, 5), 0, NULL);
    json_t *c = json_pack("{s:I,s:s,s:s,s:o,s:b,s:o,s:o,s:o}", "id", (json_int_t)sb_stmt_int(s, 0), "kind",
                          sb_stmt_text(s, 1), "name", sb_stmt_text(s, 2), "callback_url",
                          sb_stmt_isnull(s, 3) ? json_null() : json_string(sb_stmt_text(s, 3)), "active",
                          (int)sb_stmt_int(s, 4), "config", cfg ? cfg : json_object(), "created_at",
                          sb_json_time(sb_stmt_int(s, 6)), "updated_at", sb_json_time(sb_stmt_int(s, 7)));
    if (strcmp(sb_stmt_text(s, 1), "webchat") == 0) {
        char snippet[600];
        snprintf(snippet, sizeof snippet, "<script src=\"%s/widget.js\" data-channel=\"%lld\" async></script>",
                 public_url, (long long)sb_stmt_int(s, 0));
        json_object_set_new(c, "widget_snippet", json_string(snippet));
    } else if (strcmp(sb_stmt_text(s, 1), "api") == 0) { /* a phone channel has no inbound URL */
        char url[300];
        snprintf(url, sizeof url, "%s/api/v1/channels/%lld/inbound", public_url, (long long)sb_stmt_int(s, 0));
        json_object_set_new(c, "inbound_url", json_string(url));
    }
    return c;
}

json_t *sb_channel_json(sb_tx *tx, int64_t id, const char *public_url)
{
    sb_stmt *s = sb_tx_query(tx, "SELECT " CHANNEL_COLS " FROM channel WHERE id = ?", "i", id);
    json_t *out = NULL;
    if (s != NULL && sb_stmt_step(s) == 1)
        out = channel_row(s, public_url);
    sb_stmt_end(s);
    return out;
}

int sb_channel_create(sb_tx *tx, const char *kind, const char *name, const char *callback_url, const char *config,
                      int64_t *id, char secret_out[65])
{
    char secret[65] = "";
    if (strcmp(kind, "api") == 0)
        sb_random_hex(secret, 32);
    int64_t now = sb_tx_now(tx);
    int rc =
        sb_tx_int(tx, id,
                  "INSERT INTO channel (kind, name, secret, callback_url, config, created_at, updated_at) "
                  "VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id",
                  "tttttii", kind, name, secret[0] ? secret : NULL, callback_url, config ? config : "{}", now, now);
    if (rc != 1)
        return rc < 0 ? rc : SB_EIO;
    if (secret_out != NULL)
        memcpy(secret_out, secret, sizeof secret);
    return 0;
}

int sb_channel_rotate_secret(sb_tx *tx, int64_t id, sb_actor actor, char secret_out[65])
{
    char secret[65];
    sb_random_hex(secret, 32);
    int rc = sb_tx_exec(tx, "UPDATE channel SET secret = ?, updated_at = ? WHERE id = ? AND kind = 'api'", "tii",
                        secret, sb_tx_now(tx), id);
    if (rc != 0)
        return rc;
    if (sb_tx_changes(tx) == 0)
        return SB_ENOTFOUND;
    rc = sb_event_log(tx, actor, "channel", id, "channel.secret_rotated", NULL);
    if (rc != 0)
        return rc;
    memcpy(secret_out, secret, sizeof secret);
    return 0;
}

static int rotate_action(sb_tx *tx, sb_api_op *op)
{
    char secret[65];
    int rc = sb_channel_rotate_secret(tx, op->path_id, (sb_actor){"agent", op->agent_id}, secret);
    if (rc == SB_ENOTFOUND)
        return sb_api_fail(op, 404, "not_found", "API channel %lld does not exist", (long long)op->path_id);
    if (rc != 0)
        return rc;
    op->out = json_pack("{s:I,s:s}", "channel_id", (json_int_t)op->path_id, "secret", secret);
    return 0;
}

static const char *public_url(sb_app *app)
{
    return app->cfg.public_url;
}

static int list_action(sb_tx *tx, sb_api_op *op)
{
    sb_stmt *s = sb_tx_query(tx, "SELECT " CHANNEL_COLS " FROM channel ORDER BY id", "");
    if (s == NULL)
        return SB_EIO;
    json_t *list = json_array();
    int rc;
    while ((rc = sb_stmt_step(s)) == 1)
        json_array_append_new(list, channel_row(s, public_url(op->app)));
    sb_stmt_end(s);
    op->out = json_pack("{s:o}", "channels", list);
    return rc < 0 ? rc : 0;
}

static int get_action(sb_tx *tx, sb_api_op *op)
{
    json_t *c = sb_channel_json(tx, op->path_id, public_url(op->app));
    if (c == NULL)
        return sb_api_fail(op, 404, "not_found", "channel %lld does not exist", (long long)op->path_id);
    op->out = json_pack("{s:o}", "channel", c);
    return 0;
}

bool sb_callback_url_valid(const char *url)
{
    if (url == NULL)
        return true;
    if (strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0)
        return false;
    for (const char *p = url; *p; p++)
        if ((unsigned char)*p <= ' ' || *p == 0x7f)
            return false;
    return strlen(url) > 8 && strlen(url) < 2048;
}

/* A web chat channel's config.callback (the website's call-back form,
 * src/voice/callbacks.h): well-formed and naming a team that exists. */
static int check_callback(sb_tx *tx, sb_api_op *op, const json_t *cfg)
{
    sb_callback_settings set;
    char field[64] = "", msg[160] = "";
    int rc = cfg != NULL ? sb_callback_settings_parse(cfg, &set, field, sizeof field, msg, sizeof msg) : SB_ENOTFOUND;
    if (rc == SB_ENOTFOUND)
        return 0;
    if (rc != 0)
        return sb_api_fail(op, 422, "validation_failed", "field '%s' %s", field, msg);
    int64_t found = 0;
    rc = sb_tx_int(tx, &found, "SELECT id FROM team WHERE id = ?", "i", set.team_id);
    if (rc < 0)
        return rc;
    if (rc == 0)
        return sb_api_fail(op, 422, "validation_failed", "field 'config.callback.team_id': team %lld does not exist",
                           (long long)set.team_id);
    return 0;
}

static int create_action(sb_tx *tx, sb_api_op *op)
{
    static const char *const allowed[] = {"kind", "name", "callback_url", "config", NULL};
    const char *kind = NULL, *name = NULL, *url = NULL;
    int rc = sb_api_only_fields(op, op->body, allowed);
    if (rc || (rc = sb_api_field_str(op, op->body, "kind", true, 16, &kind)) ||
        (rc = sb_api_field_str(op, op->body, "name", true, 200, &name)) ||
        (rc = sb_api_field_str(op, op->body, "callback_url", false, 2047, &url)))
        return rc;
    if (strcmp(kind, "api") != 0 && strcmp(kind, "webchat") != 0)
        return sb_api_fail(op, 422, "validation_failed", "field 'kind' must be 'api' or 'webchat'");
    if (!sb_callback_url_valid(url))
        return sb_api_fail(op, 422, "validation_failed", "field 'callback_url' must be an http(s) URL");
    json_t *cfg = json_object_get(op->body, "config");
    if (cfg != NULL && !json_is_object(cfg))
        return sb_api_fail(op, 422, "validation_failed", "field 'config' must be an object");
    rc = check_callback(tx, op, cfg);
    if (rc != 0)
        return rc;
    char *cfg_text = cfg ? json_dumps(cfg, JSON_COMPACT) : NULL;
    int64_t id = 0;
    char secret[65];
    rc = sb_channel_create(tx, kind, name, url, cfg_text, &id, secret);
    free(cfg_text);
    if (rc != 0)
        return rc;
    rc = sb_event_log(tx, (sb_actor){"agent", op->agent_id}, "channel", id, "channel.created",
                      json_pack("{s:s}", "kind", kind));
    if (rc != 0)
        return rc;
    json_t *c = sb_channel_json(tx, id, public_url(op->app));
    if (secret[0] != '\0')
        json_object_set_new(c, "secret", json_string(secret));
    op->out = json_pack("{s:o}", "channel", c);
    op->status = 201;
    return 0;
}

static int patch_action(sb_tx *tx, sb_api_op *op)
{
    static const char *const allowed[] = {"name", "callback_url", "config", "active", NULL};
    const char *name = NULL, *url = NULL;
    int rc = sb_api_only_fields(op, op->body, allowed);
    if (rc || (rc = sb_api_field_str(op, op->body, "name", false, 200, &name)) ||
        (rc = sb_api_field_str(op, op->body, "callback_url", false, 2047, &url)))
        return rc;
    if (!sb_callback_url_valid(url))
        return sb_api_fail(op, 422, "validation_failed", "field 'callback_url' must be an http(s) URL");
    json_t *cfg = json_object_get(op->body, "config");
    if (cfg != NULL && !json_is_object(cfg))
        return sb_api_fail(op, 422, "validation_failed", "field 'config' must be an object");
    rc = check_callback(tx, op, cfg);
    if (rc != 0)
        return rc;
    json_t *active = json_object_get(op->body, "active");
    if (active != NULL && !json_is_boolean(active))
        return sb_api_fail(op, 422, "validation_failed", "field 'active' must be a boolean");
    json_t *before = sb_channel_json(tx, op->path_id, "");
    if (before == NULL)
        return sb_api_fail(op, 404, "not_found", "channel %lld does not exist", (long long)op->path_id);
    json_decref(before);
    int64_t now = sb_tx_now(tx);
    char *cfg_text = cfg ? json_dumps(cfg, JSON_COMPACT) : NULL;
    rc = sb_tx_exec(tx,
                    "UPDATE channel SET name = COALESCE(?1, name), "
                    "callback_url = CASE WHEN ?2 THEN ?3 ELSE callback_url END, config = COALESCE(?4, config), "
                    "active = CASE WHEN ?5 THEN ?6 ELSE active END, updated_at = ?7 WHERE id = ?8",
                    "tbttbbii", name, json_object_get(op->body, "callback_url") != NULL, url, cfg_text, active != NULL,
                    json_is_true(active), now, op->path_id);
    free(cfg_text);
    if (rc != 0)
        return rc;
    rc = sb_event_log(tx, (sb_actor){"agent", op->agent_id}, "channel", op->path_id, "channel.updated", NULL);
    if (rc != 0)
        return rc;
    op->out = json_pack("{s:o}", "channel", sb_channel_json(tx, op->path_id, public_url(op->app)));
    return 0;
}

/* ---- inbound ---- */

/* Stores decoded attachment bytes under DATA/files/<sha256> durably. */
static int store_file(const char *data_dir, const unsigned char *p, size_t len, char sha[65])
{
    sb_sha256_hex(p, len, sha);
    char dir[600], path[700], tmp[720];
    snprintf(dir, sizeof dir, "%s/files", data_dir);
    snprintf(path, sizeof path, "%s/%s", dir, sha);
    struct stat stt;
    if (stat(path, &stt) == 0)
        return 0;
    if (mkdir(dir, 0750) != 0 && errno != EEXIST)
        return SB_EIO;
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
    if (fd < 0)
        return SB_EIO;
    size_t off = 0;
    while (off < len) {
        ssize_t n = write(fd, p + off, len - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            close(fd);
            unlink(tmp);
            return SB_EIO;
        }
        off += (size_t)n;
    }
    if (fsync(fd) != 0 || close(fd) != 0 || rename(tmp, path) != 0) {
        unlink(tmp);
        return SB_EIO;
    }
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        fsync(dfd);
        close(dfd);
    }
    return 0;
}

/* Stores the attachments: `data` is decoded into a file, `url` is kept. */
int sb_api_store_attachments(sb_api_op *op, json_t *in, json_t **out)
{
    *out = json_array();
    size_t i;
    json_t *a;
    json_array_foreach (in, i, a) {
        const char *name = json_string_value(json_object_get(a, "name"));
        const char *mime = json_string_value(json_object_get(a, "mime"));
        const char *url = json_string_value(json_object_get(a, "url"));
        const char *data = json_string_value(json_object_get(a, "data"));
        json_t *meta = json_pack("{s:s?,s:s}", "name", name, "mime", mime ? mime : "application/octet-stream");
        json_array_append_new(*out, meta);
        if (data == NULL) {
            json_object_set_new(meta, "url", json_string(url));
            continue;
        }
        unsigned char *bytes = NULL;
        size_t len = 0;
        if (sb_base64_decode(data, strlen(data), &bytes, &len) != 0)
            return sb_api_fail(op, 422, "validation_failed", "field 'attachments[%zu].data' is not valid base64", i);
        char sha[65];
        int rc = store_file(op->app->cfg.data_dir, bytes, len, sha);
        free(bytes);
        if (rc != 0)
            return sb_api_fail(op, 503, "storage_failed", "the attachment could not be stored");
        char href[128];
        snprintf(href, sizeof href, "/api/v1/files/%s", sha);
        json_object_set_new(meta, "sha256", json_string(sha));
        json_object_set_new(meta, "size", json_integer((json_int_t)len));
        json_object_set_new(meta, "url", json_string(href));
    }
    return 0;
}

/* The request's body and signature, copied on the loop: transaction scripts
 * run on the store thread and must not touch the request. The body is
 * parsed and its signature checked on the loop, with the key the loop last
 * saw for the channel; the transaction re-reads the channel and trusts that
 * check only when the key is still the same, so a rotated secret takes
 * effect at once. The response and the message.created event are built on
 * the loop too, from `res`: the store thread is ingest's bottleneck. */
typedef struct inbound_ctx {
    sb_buf body;
    char *signature;
    sb_api_inbound msg; /* parsed on the loop */
    int parse_rc;
    char key[65]; /* the key sig_ok was computed with; "" = not checked */
    bool sig_ok;
    char new_key[65]; /* the store's key, for the loop's cache */
    sb_ingest_result res;
    json_t *atts;     /* the attachments as stored, or NULL */
    bool want_events; /* an agent stream listened when the request came */
} inbound_ctx;

static void inbound_ctx_free(void *p)
{
    inbound_ctx *c = p;
    sb_api_inbound_free(&c->msg);
    json_decref(c->atts);
    sb_buf_free(&c->body);
    free(c->signature);
    free(c);
}

static void remember_key(sb_app *app, int64_t channel_id, const char *secret)
{
    for (size_t i = 0; i < app->nchannel_keys; i++) {
        if (app->channel_keys[i].channel_id == channel_id) {
            snprintf(app->channel_keys[i].secret, sizeof app->channel_keys[i].secret, "%s", secret);
            return;
        }
    }
    app->channel_keys = sb_xrealloc(app->channel_keys, (app->nchannel_keys + 1) * sizeof *app->channel_keys);
    sb_channel_key *k = &app->channel_keys[app->nchannel_keys++];
    k->channel_id = channel_id;
    snprintf(k->secret, sizeof k->secret, "%s", secret);
}

static const char *known_key(const sb_app *app, int64_t channel_id)
{
    for (size_t i = 0; i < app->nchannel_keys; i++)
        if (app->channel_keys[i].channel_id == channel_id)
            return app->channel_keys[i].secret;
    return NULL;
}

static void fill_inbound(sb_inbound *in, const sb_api_op *op, const sb_api_inbound *msg, json_t *atts)
{
    memset(in, 0, sizeof *in);
    in->channel_id = op->path_id;
    in->channel_kind = "api";
    in->external_id = msg->external_id;
    in->from_id = msg->from_id;
    in->name = msg->name;
    in->phone = msg->phone;
    in->email = msg->email;
    in->text = msg->text;
    in->attachments = atts;
    in->timestamp = msg->timestamp;
    in->reopen_window_ms = op->app->cfg.reopen_window_ms;
    in->default_country_code = "7";
    in->defer_message_event = true;
}

/* After the commit, on the loop: the answer, and the message.created event
 * (only built when an agent stream listens to it). */
static void inbound_committed(sb_api_op *op)
{
    inbound_ctx *c = op->ctx;
    sb_app *app = op->app;
    if (c->new_key[0] != '\0')
        remember_key(app, op->path_id, c->new_key);
    const sb_ingest_result *res = &c->res;
    op->out = json_pack("{s:I,s:I,s:I,s:I,s:b}", "ticket_number", (json_int_t)res->ticket_number, "ticket_id",
                        (json_int_t)res->ticket_id, "message_id", (json_int_t)res->message_id, "contact_id",
                        (json_int_t)res->contact_id, "duplicate", res->duplicate);
    if (res->duplicate) {
        app->metrics.inbound_duplicates++;
        return;
    }
    app->metrics.inbound_messages++;
    sb_dashboard_csat(app->dashboard, res->csat_score, res->created_at);
    const char *blocked =
        sb_dispatch_blocked(app->dispatch, res->contact_id, c->msg.phone, c->msg.email, c->msg.from_id);
    if (blocked != NULL) {
        sb_dispatch_quarantine(app->dispatch, res->ticket_id, blocked);
    } else if (res->ticket_created && res->contact_created) {
        sb_ticket_info info = {.id = res->ticket_id,
                               .number = res->ticket_number,
                               .contact_id = res->contact_id,
                               .channel = SB_CHANNEL_CHAT,
                               .status = SB_STATUS_NEW,
                               .priority = SB_PRIORITY_NORMAL,
                               .created_at = res->created_at,
                               .channel_type = {"api"}};
        if (c->msg.name != NULL)
            snprintf(info.contact_name, sizeof info.contact_name, "%s", c->msg.name);
        if (c->msg.phone != NULL)
            snprintf(info.contact_phone, sizeof info.contact_phone, "%s", c->msg.phone);
        if (c->msg.email != NULL)
            snprintf(info.contact_email, sizeof info.contact_email, "%s", c->msg.email);
        sb_dispatch_ticket_known(app->dispatch, &info, c->msg.text, c->msg.auto_reply);
    } else if (res->ticket_created) {
        sb_dispatch_ticket_created(app->dispatch, res->ticket_id, c->msg.text, c->msg.auto_reply);
    } else {
        sb_dispatch_event(app->dispatch, &(sb_event){.kind = SB_EV_CUSTOMER_MESSAGE,
                                                     .ticket_id = res->ticket_id,
                                                     .text = c->msg.text,
                                                     .auto_reply = c->msg.auto_reply});
    }
    if (c->want_events) {
        sb_inbound in;
        fill_inbound(&in, op, &c->msg, c->atts);
        sb_emit(op->events, "message.created", sb_inbound_message_json(&in, res, c->atts));
    }
}

static int inbound_action(sb_tx *tx, sb_api_op *op)
{
    char secret[65] = "";
    char kind[16] = "";
    int64_t active = 0;
    sb_stmt *s = sb_tx_query(tx, "SELECT kind, secret, active FROM channel WHERE id = ?", "i", op->path_id);
    if (s == NULL)
        return SB_EIO;
    int rc = sb_stmt_step(s);
    if (rc == 1) {
        snprintf(kind, sizeof kind, "%s", sb_stmt_text(s, 0));
        if (sb_stmt_text(s, 1) != NULL)
            snprintf(secret, sizeof secret, "%s", sb_stmt_text(s, 1));
        active = sb_stmt_int(s, 2);
    }
    sb_stmt_end(s);
    if (rc < 0)
        return rc;
    if (rc == 0 || strcmp(kind, "api") != 0)
        return sb_api_fail(op, 404, "not_found", "API channel %lld does not exist", (long long)op->path_id);
    inbound_ctx *in_ctx = op->ctx;
    bool sig_ok;
    if (in_ctx->key[0] != '\0' && sodium_memcmp(in_ctx->key, secret, sizeof secret) == 0) {
        sig_ok = in_ctx->sig_ok;
    } else {
        sig_ok = sb_signature_ok(secret, in_ctx->body.p ? in_ctx->body.p : "", in_ctx->body.len, in_ctx->signature);
        memcpy(in_ctx->new_key, secret, sizeof secret);
    }
    if (!sig_ok)
        return sb_api_fail(op, 401, "bad_signature",
                           "X-Switchboard-Signature must be sha256=<hex HMAC-SHA256 of the body>");
    if (!active)
        return sb_api_fail(op, 409, "channel_inactive", "channel %lld is deactivated", (long long)op->path_id);
    const sb_api_inbound *msg = &in_ctx->msg;
    if (in_ctx->parse_rc != 0)
        return sb_api_fail(op, msg->status, msg->code, "%s", msg->message);
    /* A repeat is answered from the store; its attachments are not written again. */
    int64_t dup = 0;
    json_t *atts = NULL;
    if (msg->attachments != NULL &&
        sb_tx_int(tx, &dup, "SELECT id FROM message WHERE channel_id = ? AND external_id = ?", "it", op->path_id,
                  msg->external_id) != 1) {
        rc = sb_api_store_attachments(op, msg->attachments, &atts);
        if (rc != 0) {
            json_decref(atts);
            return rc;
        }
    }
    sb_inbound in;
    fill_inbound(&in, op, msg, atts);
    rc = sb_ingest(tx, &in, &in_ctx->res, in_ctx->want_events ? op->events : NULL);
    if (rc != 0) {
        json_decref(atts);
        return rc;
    }
    in_ctx->atts = atts;
    op->after = inbound_committed;
    op->out_on_loop = true;
    return 0;
}

bool sb_api_channels_route(sb_app *app, sb_http_req *req, const char *path)
{
    sb_http_method m = sb_http_req_method(req);
    sb_api_op *op = NULL;
    if (strcmp(path, "/api/v1/channels") == 0)
        return sb_api_route_collection(app, req, SB_ROLE_AGENT, list_action, SB_ROLE_ADMIN, create_action);
    int64_t id;
    const char *rest;
    if (!sb_path_id(path, "/api/v1/channels/", &id, &rest)) {
        if (strncmp(path, "/api/v1/channels/", 17) != 0)
            return false;
        sb_http_respond_error(req, 404, "not_found", "channel ids are positive integers");
        return true;
    }
    if (*rest == '\0') {
        if (m == SB_HTTP_GET || m == SB_HTTP_HEAD) {
            op = sb_api_op_new(app, req, SB_ROLE_AGENT, get_action);
        } else if (m == SB_HTTP_PATCH) {
            op = sb_api_op_new(app, req, SB_ROLE_ADMIN, patch_action);
            if (!sb_api_parse_body(op))
                return true;
        } else {
            sb_respond_method_not_allowed(req, "GET, PATCH");
            return true;
        }
    } else if (strcmp(rest, "/secret") == 0) {
        if (m != SB_HTTP_POST) {
            sb_respond_method_not_allowed(req, "POST");
            return true;
        }
        op = sb_api_op_new(app, req, SB_ROLE_ADMIN, rotate_action);
    } else if (strcmp(rest, "/inbound") == 0) {
        if (m != SB_HTTP_POST) {
            sb_respond_method_not_allowed(req, "POST");
            return true;
        }
        op = sb_api_op_new(app, req, SB_ROLE_NONE, inbound_action);
        inbound_ctx *c = sb_xcalloc(1, sizeof *c);
        sb_str body = sb_http_req_body(req);
        sb_buf_append(&c->body, body.p ? body.p : "", body.len);
        const char *sig = sb_http_req_header(req, "X-Switchboard-Signature");
        c->signature = sig ? sb_xstrdup(sig) : NULL;
        c->parse_rc = sb_api_inbound_parse(c->body.p ? c->body.p : "", c->body.len, &c->msg);
        c->want_events = sb_stream_subscribers(app->hub) > 0;
        const char *key = known_key(app, id);
        if (key != NULL) {
            snprintf(c->key, sizeof c->key, "%s", key);
            c->sig_ok = sb_signature_ok(key, c->body.p ? c->body.p : "", c->body.len, c->signature);
        }
        op->ctx = c;
        op->ctx_free = inbound_ctx_free;
    } else {
        sb_http_respond_error(req, 404, "not_found", "no such resource: %s", path);
        return true;
    }
    op->path_id = id;
    sb_api_submit(op);
    return true;
}
