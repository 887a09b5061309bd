/* auth.c - login (argon2id verified on the thread pool), logout, me. */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "api/directory.h"
#include "api/ratelimit.h"
#include "base/clock.h"
#include "base/crypto.h"
#include "base/log.h"

#define LOGIN_RATE 5 /* attempts per second per account, burst 10 */

typedef struct login_ctx {
    sb_app *app;
    sb_http_req *req;
    char *email;
    char *password;
    char *hash; /* stored argon2 hash, NULL if no such agent */
    int64_t agent_id;
    bool ok;
    char session[65];
    char session_hash[65];
    char csrf[33];
    json_t *agent;
    uv_work_t work;
} login_ctx;

static void login_free(login_ctx *lc)
{
    if (lc->password != NULL)
        sodium_memzero(lc->password, strlen(lc->password));
    free(lc->password);
    free(lc->email);
    free(lc->hash);
    json_decref(lc->agent);
    free(lc);
}

static int login_create_session(sb_tx *tx, void *arg)
{
    login_ctx *lc = arg;
    int64_t now = sb_tx_now(tx);
    int64_t ttl = (int64_t)lc->app->cfg.session_ttl_hours * 3600 * 1000;
    int rc = sb_tx_exec(tx, "DELETE FROM session WHERE expires_at <= ?", "i", now);
    if (rc != 0)
        return rc;
    rc = sb_tx_exec(tx, "INSERT INTO session (hash, agent_id, created_at, expires_at) VALUES (?, ?, ?, ?)", "tiii",
                    lc->session_hash, lc->agent_id, now, now + ttl);
    if (rc != 0)
        return rc;
    rc = sb_event_log(tx, (sb_actor){"agent", lc->agent_id}, "agent", lc->agent_id, "agent.login", NULL);
    if (rc != 0)
        return rc;
    lc->agent = sb_agent_json(tx, lc->agent_id);
    return lc->agent ? 0 : SB_EIO;
}

static void login_session_done(void *arg, int rc)
{
    login_ctx *lc = arg;
    if (rc != 0) {
        sb_http_respond_error(lc->req, 503, "store_unavailable", "could not create the session");
        login_free(lc);
        return;
    }
    char cookie[256];
    unsigned ttl_s = lc->app->cfg.session_ttl_hours * 3600;
    snprintf(cookie, sizeof cookie, "sb_session=%s; Path=/; HttpOnly; SameSite=Strict; Max-Age=%u", lc->session, ttl_s);
    sb_http_add_header(lc->req, "Set-Cookie", cookie);
    snprintf(cookie, sizeof cookie, "sb_csrf=%s; Path=/; SameSite=Strict; Max-Age=%u", lc->csrf, ttl_s);
    sb_http_add_header(lc->req, "Set-Cookie", cookie);
    sb_http_add_header(lc->req, "Cache-Control", "no-store");
    json_t *out = json_pack("{s:O,s:s}", "agent", lc->agent, "csrf_token", lc->csrf);
    sb_http_respond_json(lc->req, 200, out);
    sb_log(SB_INFO, "auth", "login agent=%lld", (long long)lc->agent_id);
    login_free(lc);
}

static void login_verify_work(uv_work_t *w)
{
    login_ctx *lc = w->data;
    /* An unknown email costs the same as a wrong password: hash instead. */
    bool ok = false;
    if (lc->hash != NULL) {
        ok = sb_password_verify(lc->hash, lc->password);
    } else {
        char scratch[256];
        sb_password_hash(lc->password, scratch, sizeof scratch);
    }
    lc->ok = ok && lc->hash != NULL;
}

static void login_verify_after(uv_work_t *w, int status)
{
    login_ctx *lc = w->data;
    if (lc->app->stopping) { /* the store may be closed already */
        sb_http_add_header(lc->req, "Retry-After", "1");
        sb_http_respond_error(lc->req, 503, "shutting_down", "the server is shutting down; retry");
        login_free(lc);
        return;
    }
    if (!lc->ok) {
        sb_log(SB_INFO, "auth", "login failed ip=%s", sb_http_req_remote_ip(lc->req));
        sb_http_respond_error(lc->req, 401, "invalid_credentials", "wrong email or password");
        login_free(lc);
        return;
    }
    sb_random_hex(lc->session, 32);
    sb_sha256_hex(lc->session, strlen(lc->session), lc->session_hash);
    sb_random_hex(lc->csrf, 16);
    sb_store_submit(lc->app->store, login_create_session, login_session_done, lc);
}

static int login_lookup(sb_tx *tx, void *arg)
{
    login_ctx *lc = arg;
    sb_stmt *s = sb_tx_query(tx, "SELECT id, password_hash FROM agent WHERE email = ? AND active = 1", "t", lc->email);
    if (s == NULL)
        return SB_EIO;
    int rc = sb_stmt_step(s);
    if (rc == 1) {
        lc->agent_id = sb_stmt_int(s, 0);
        const char *h = sb_stmt_text(s, 1);
        lc->hash = h ? sb_xstrdup(h) : NULL;
    }
    sb_stmt_end(s);
    return rc < 0 ? rc : 0;
}

static void login_lookup_done(void *arg, int rc)
{
    login_ctx *lc = arg;
    if (rc != 0) {
        sb_http_respond_error(lc->req, 503, "store_unavailable", "retry later");
        login_free(lc);
        return;
    }
    lc->work.data = lc;
    uv_queue_work(lc->app->loop, &lc->work, login_verify_work, login_verify_after);
}

static void handle_login(sb_app *app, sb_http_req *req)
{
    sb_api_op *op = sb_api_op_new(app, req, SB_ROLE_NONE, NULL);
    if (!sb_api_parse_body(op))
        return;
    const char *email = NULL, *password = NULL;
    static const char *const allowed[] = {"email", "password", NULL};
    if (sb_api_only_fields(op, op->body, allowed) || sb_api_field_str(op, op->body, "email", true, 254, &email) ||
        sb_api_field_str(op, op->body, "password", true, 1024, &password)) {
        sb_http_respond_error(req, op->status, op->err_code, "%s", op->err_msg);
        sb_api_op_free(op);
        return;
    }
    char norm[256];
    const char *who = sb_email_normalize(email, norm, sizeof norm) == 0 ? norm : email;
    /* Password guessing is slowed per account, whatever the source address. */
    char key[300];
    unsigned retry = 0;
    snprintf(key, sizeof key, "login:%s", who);
    if (!sb_ratelimit_allow_key(app->ratelimit, key, LOGIN_RATE, sb_clock_mono_ms(), &retry)) {
        char buf[16];
        snprintf(buf, sizeof buf, "%u", retry ? retry : 1);
        sb_http_add_header(req, "Retry-After", buf);
        sb_http_respond_error(req, 429, "rate_limited", "too many login attempts for this account; retry later");
        sb_api_op_free(op);
        return;
    }
    login_ctx *lc = sb_xcalloc(1, sizeof *lc);
    lc->app = app;
    lc->req = req;
    lc->email = sb_xstrdup(who);
    lc->password = sb_xstrdup(password);
    sb_api_op_free(op);
    sb_store_submit(app->store, login_lookup, login_lookup_done, lc);
}

/* Runs on the loop after the commit (actions must not touch the request). */
static void clear_cookies(sb_api_op *op)
{
    sb_http_add_header(op->req, "Set-Cookie", "sb_session=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0");
    sb_http_add_header(op->req, "Set-Cookie", "sb_csrf=; Path=/; SameSite=Strict; Max-Age=0");
}

static int logout_action(sb_tx *tx, sb_api_op *op)
{
    if (op->via_session) {
        int rc = sb_tx_exec(tx, "DELETE FROM session WHERE hash = ?", "t", op->token_hash);
        if (rc != 0)
            return rc;
    }
    op->out = json_pack("{s:b}", "ok", 1);
    op->after = clear_cookies;
    return 0;
}

static int me_action(sb_tx *tx, sb_api_op *op)
{
    op->out = json_pack("{s:o}", "agent", sb_agent_json(tx, op->agent_id));
    return 0;
}

bool sb_api_auth_route(sb_app *app, sb_http_req *req, const char *path)
{
    if (strncmp(path, "/api/v1/auth/", 13) != 0)
        return false;
    sb_http_method m = sb_http_req_method(req);
    if (strcmp(path, "/api/v1/auth/login") == 0) {
        if (m != SB_HTTP_POST)
            sb_respond_method_not_allowed(req, "POST");
        else
            handle_login(app, req);
    } else if (strcmp(path, "/api/v1/auth/logout") == 0) {
        if (m != SB_HTTP_POST)
            sb_respond_method_not_allowed(req, "POST");
        else
            sb_api_submit(sb_api_op_new(app, req, SB_ROLE_AGENT, logout_action));
    } else if (strcmp(path, "/api/v1/auth/me") == 0) {
        if (m != SB_HTTP_GET && m != SB_HTTP_HEAD)
            sb_respond_method_not_allowed(req, "GET");
        else
            sb_api_submit(sb_api_op_new(app, req, SB_ROLE_AGENT, me_action));
    } else {
        sb_http_respond_error(req, 404, "not_found", "no such resource: %s", path);
    }
    return true;
}
