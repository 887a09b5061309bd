/* config.c - bootstrap INI via inih. Unknown keys are errors (typos must
 * not silently fall back to defaults). */
#include "base/config.h"

#include <ini.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/cidr.h"
#include "base/log.h"

void sb_config_defaults(sb_config *c)
{
    memset(c, 0, sizeof *c);
    snprintf(c->listen_host, sizeof c->listen_host, "127.0.0.1");
    c->listen_port = 8080;
    snprintf(c->data_dir, sizeof c->data_dir, "data");
    snprintf(c->log_level, sizeof c->log_level, "info");
    c->max_body_bytes = 8u << 20;
#ifdef SB_WEB_ROOT
    snprintf(c->web_root, sizeof c->web_root, "%s", SB_WEB_ROOT);
#endif
    c->max_connections = 20000;
    c->header_timeout_ms = 10000;
    c->idle_timeout_ms = 75000;
    c->rate_per_ip = 2000;
    c->rate_per_token = 2000;
    c->max_pending_ops = 50000;
    c->reopen_window_ms = 3LL * 24 * 3600 * 1000;
    c->session_ttl_hours = 24 * 7;
    c->outbox_max_attempts = 10;
    c->outbox_timeout_ms = 10000;
    snprintf(c->sip_realm, sizeof c->sip_realm, "switchboard");
    c->sip_no_media_seconds = 30;
    c->sip_ring_timeout_seconds = 20;
    c->sip_queue_max_wait_seconds = 120;
    c->sip_record_calls = 1;
    c->sip_voicemail_max_seconds = 120;
    c->sip_voicemail_silence_seconds = 5;
#ifdef SB_PROMPTS_DIR
    snprintf(c->sip_prompts, sizeof c->sip_prompts, "%s", SB_PROMPTS_DIR);
#endif
    c->sip_register_max_failures = 5;
    c->sip_register_lockout_seconds = 300;
    c->sip_auth_invites = 1;
    c->sip_blacklist_prompt = 0;
    c->sip_invite_rate_per_second = 100;
    c->sip_invite_burst = 200;
    c->sip_overload_lag_ms = 2000;
    c->trunk_ring_timeout_seconds = 60;
    c->trunk_register_expires = 300;
}

typedef struct load_ctx {
    sb_config *c;
    char *err;
    size_t errcap;
} load_ctx;

static int parse_uint(const char *v, unsigned long long max, unsigned long long *out)
{
    char *end = NULL;
    if (v[0] == '-' || v[0] == '\0')
        return -1;
    unsigned long long n = strtoull(v, &end, 10);
    if (*end != '\0' || n > max)
        return -1;
    *out = n;
    return 0;
}

/* true|1|yes or false|0|no: the INI's booleans */
static int parse_bool(const char *v, int *out)
{
    if (strcmp(v, "true") == 0 || strcmp(v, "1") == 0 || strcmp(v, "yes") == 0)
        *out = 1;
    else if (strcmp(v, "false") == 0 || strcmp(v, "0") == 0 || strcmp(v, "no") == 0)
        *out = 0;
    else
        return -1;
    return 0;
}

static int on_sip_value(load_ctx *lc, const char *name, const char *value)
{
    sb_config *c = lc->c;
    unsigned long long n = 0;
    if (strcmp(name, "listen") == 0) {
        if (value[0] == '\0')
            c->sip_host[0] = '\0';
        else if (sb_config_parse_sip_listen(c, value) != 0)
            goto bad;
    } else if (strcmp(name, "realm") == 0) {
        if (value[0] == '\0' || strlen(value) >= sizeof c->sip_realm || strchr(value, '"') != NULL)
            goto bad;
        snprintf(c->sip_realm, sizeof c->sip_realm, "%s", value);
    } else if (strcmp(name, "no_media_seconds") == 0) {
        if (parse_uint(value, 86400, &n) != 0)
            goto bad;
        c->sip_no_media_seconds = (unsigned)n;
    } else if (strcmp(name, "prompts") == 0) {
        snprintf(c->sip_prompts, sizeof c->sip_prompts, "%s", value);
    } else if (strcmp(name, "answer_delay_ms") == 0) {
        if (parse_uint(value, 60000, &n) != 0)
            goto bad;
        c->sip_answer_delay_ms = (unsigned)n;
    } else if (strcmp(name, "ring_timeout_seconds") == 0) {
        if (parse_uint(value, 600, &n) != 0 || n == 0)
            goto bad;
        c->sip_ring_timeout_seconds = (unsigned)n;
    } else if (strcmp(name, "queue_max_wait_seconds") == 0) {
        if (parse_uint(value, 86400, &n) != 0 || n == 0)
            goto bad;
        c->sip_queue_max_wait_seconds = (unsigned)n;
    } else if (strcmp(name, "record_calls") == 0) {
        if (parse_bool(value, &c->sip_record_calls) != 0)
            goto bad;
    } else if (strcmp(name, "voicemail_max_seconds") == 0) {
        if (parse_uint(value, 3600, &n) != 0 || n == 0)
            goto bad;
        c->sip_voicemail_max_seconds = (unsigned)n;
    } else if (strcmp(name, "voicemail_silence_seconds") == 0) {
        if (parse_uint(value, 600, &n) != 0)
            goto bad;
        c->sip_voicemail_silence_seconds = (unsigned)n;
    } else if (strcmp(name, "recordings_keep_days") == 0) {
        if (parse_uint(value, 36500, &n) != 0)
            goto bad;
        c->sip_recordings_keep_days = (unsigned)n;
    } else if (strcmp(name, "voicemail_keep_days") == 0) {
        if (parse_uint(value, 36500, &n) != 0)
            goto bad;
        c->sip_voicemail_keep_days = (unsigned)n;
    } else if (strcmp(name, "invite_rate_per_second") == 0) {
        if (parse_uint(value, 100000, &n) != 0)
            goto bad;
        c->sip_invite_rate_per_second = (unsigned)n;
    } else if (strcmp(name, "overload_lag_ms") == 0) {
        if (parse_uint(value, 600000, &n) != 0)
            goto bad;
        c->sip_overload_lag_ms = (unsigned)n;
    } else if (strcmp(name, "invite_burst") == 0) {
        if (parse_uint(value, 100000, &n) != 0)
            goto bad;
        c->sip_invite_burst = (unsigned)n;
    } else if (strcmp(name, "blacklist") == 0) {
        if (strcmp(value, "busy") == 0)
            c->sip_blacklist_prompt = 0;
        else if (strcmp(value, "prompt") == 0)
            c->sip_blacklist_prompt = 1;
        else
            goto bad;
    } else if (strcmp(name, "register_max_failures") == 0) {
        if (parse_uint(value, 1000, &n) != 0)
            goto bad;
        c->sip_register_max_failures = (unsigned)n;
    } else if (strcmp(name, "auth_invites") == 0) {
        if (parse_bool(value, &c->sip_auth_invites) != 0)
            goto bad;
    } else if (strcmp(name, "register_lockout_seconds") == 0) {
        if (parse_uint(value, 86400, &n) != 0)
            goto bad;
        c->sip_register_lockout_seconds = (unsigned)n;
    } else {
        snprintf(lc->err, lc->errcap, "unknown key [sip] %s", name);
        return 0;
    }
    return 1;
bad:
    snprintf(lc->err, lc->errcap, "bad value for [sip] %s", name);
    return 0;
}

/* A value for a SIP user part or a URI's host: 1..cap-1 of `allowed`. */
static bool chars_ok(const char *v, size_t cap, const char *allowed)
{
    size_t n = strlen(v);
    return n > 0 && n < cap && strspn(v, allowed) == n;
}

#define DIGITS     "0123456789"
#define ALNUM      DIGITS "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
#define USER_CHARS ALNUM "+*#._-"

/* [trunk]: the provider outbound calls go through. The password is kept
 * as given (a digest needs it) and never logged or echoed in an error. */
static int on_trunk_value(load_ctx *lc, const char *name, const char *value)
{
    sb_config *c = lc->c;
    unsigned long long n = 0;
    if (strcmp(name, "host") == 0) {
        if (value[0] != '\0' && !chars_ok(value, sizeof c->trunk_host, ALNUM ".-:[]"))
            goto bad;
        snprintf(c->trunk_host, sizeof c->trunk_host, "%s", value);
    } else if (strcmp(name, "username") == 0) {
        if (value[0] != '\0' && !chars_ok(value, sizeof c->trunk_username, USER_CHARS "@!~$&=,;?/"))
            goto bad;
        snprintf(c->trunk_username, sizeof c->trunk_username, "%s", value);
    } else if (strcmp(name, "password") == 0) {
        if (strlen(value) >= sizeof c->trunk_password)
            goto bad;
        snprintf(c->trunk_password, sizeof c->trunk_password, "%s", value);
    } else if (strcmp(name, "from_number") == 0) {
        if (value[0] != '\0' && !chars_ok(value, sizeof c->trunk_from_number, USER_CHARS))
            goto bad;
        snprintf(c->trunk_from_number, sizeof c->trunk_from_number, "%s", value);
    } else if (strcmp(name, "transport") == 0) {
        if (strcmp(value, "udp") == 0)
            c->trunk_tcp = 0;
        else if (strcmp(value, "tcp") == 0)
            c->trunk_tcp = 1;
        else
            goto bad;
    } else if (strcmp(name, "prefix_numbers") == 0) {
        if (value[0] != '\0' && !chars_ok(value, 9, DIGITS "+*#"))
            goto bad;
        snprintf(c->trunk_prefix, sizeof c->trunk_prefix, "%s", value);
    } else if (strcmp(name, "ring_timeout_seconds") == 0) {
        if (parse_uint(value, 600, &n) != 0 || n == 0)
            goto bad;
        c->trunk_ring_timeout_seconds = (unsigned)n;
    } else if (strcmp(name, "allow") == 0) {
        sb_cidr list[SB_CIDR_LIST_MAX];
        size_t k = 0;
        if (strlen(value) >= sizeof c->trunk_allow || sb_cidr_parse_list(value, list, SB_CIDR_LIST_MAX, &k) != 0)
            goto bad;
        snprintf(c->trunk_allow, sizeof c->trunk_allow, "%s", value);
    } else if (strcmp(name, "inbound_username") == 0) {
        if (value[0] != '\0' && !chars_ok(value, sizeof c->trunk_in_username, USER_CHARS "@!~$&=,;?/"))
            goto bad;
        snprintf(c->trunk_in_username, sizeof c->trunk_in_username, "%s", value);
    } else if (strcmp(name, "register") == 0) {
        if (parse_bool(value, &c->trunk_register) != 0)
            goto bad;
    } else if (strcmp(name, "register_expires") == 0) {
        if (parse_uint(value, 86400, &n) != 0 || n < 60)
            goto bad;
        c->trunk_register_expires = (unsigned)n;
    } else if (strcmp(name, "forward_caller_id") == 0) {
        if (strcmp(value, "caller") == 0)
            c->trunk_forward_number = 0;
        else if (strcmp(value, "number") == 0)
            c->trunk_forward_number = 1;
        else
            goto bad;
    } else if (strcmp(name, "inbound_password") == 0) {
        if (strlen(value) >= sizeof c->trunk_in_password)
            goto bad;
        snprintf(c->trunk_in_password, sizeof c->trunk_in_password, "%s", value);
    } else {
        snprintf(lc->err, lc->errcap, "unknown key [trunk] %s", name);
        return 0;
    }
    return 1;
bad:
    snprintf(lc->err, lc->errcap, "bad value for [trunk] %s", name);
    return 0;
}

#define MATCH(s, n) (strcmp(section, s) == 0 && strcmp(name, n) == 0)

static int on_value(void *ud, const char *section, const char *name, const char *value)
{
    load_ctx *lc = ud;
    sb_config *c = lc->c;
    unsigned long long n = 0;
    if (MATCH("server", "listen")) {
        if (sb_config_parse_listen(c, value) != 0)
            goto bad;
    } else if (MATCH("server", "data_dir")) {
        snprintf(c->data_dir, sizeof c->data_dir, "%s", value);
    } else if (MATCH("server", "public_url")) {
        snprintf(c->public_url, sizeof c->public_url, "%s", value);
    } else if (MATCH("server", "web_root")) {
        snprintf(c->web_root, sizeof c->web_root, "%s", value);
    } else if (MATCH("log", "file")) {
        snprintf(c->log_file, sizeof c->log_file, "%s", value);
    } else if (MATCH("log", "level")) {
        sb_log_level l;
        if (sb_log_level_parse(value, &l) != 0)
            goto bad;
        snprintf(c->log_level, sizeof c->log_level, "%s", value);
    } else if (MATCH("http", "max_body")) {
        if (parse_uint(value, 1ull << 30, &n))
            goto bad;
        c->max_body_bytes = (size_t)n;
    } else if (MATCH("http", "max_connections")) {
        if (parse_uint(value, 1000000, &n) || n == 0)
            goto bad;
        c->max_connections = (unsigned)n;
    } else if (MATCH("http", "header_timeout_ms")) {
        if (parse_uint(value, 3600000, &n) || n == 0)
            goto bad;
        c->header_timeout_ms = (unsigned)n;
    } else if (MATCH("http", "idle_timeout_ms")) {
        if (parse_uint(value, 3600000, &n) || n == 0)
            goto bad;
        c->idle_timeout_ms = (unsigned)n;
    } else if (MATCH("http", "trusted_proxies")) {
        if (strlen(value) >= sizeof c->trusted_proxies)
            goto bad;
        snprintf(c->trusted_proxies, sizeof c->trusted_proxies, "%s", value);
    } else if (MATCH("limits", "rate_per_ip")) {
        if (parse_uint(value, 10000000, &n))
            goto bad;
        c->rate_per_ip = (unsigned)n;
    } else if (MATCH("limits", "rate_per_token")) {
        if (parse_uint(value, 10000000, &n))
            goto bad;
        c->rate_per_token = (unsigned)n;
    } else if (MATCH("limits", "max_pending_ops")) {
        if (parse_uint(value, 10000000, &n) || n == 0)
            goto bad;
        c->max_pending_ops = (unsigned)n;
    } else if (MATCH("tickets", "reopen_window_days")) {
        if (parse_uint(value, 3650, &n))
            goto bad;
        c->reopen_window_ms = (int64_t)n * 24 * 3600 * 1000;
    } else if (MATCH("auth", "session_ttl_hours")) {
        if (parse_uint(value, 24 * 365, &n) || n == 0)
            goto bad;
        c->session_ttl_hours = (unsigned)n;
    } else if (MATCH("outbox", "max_attempts")) {
        if (parse_uint(value, 1000, &n) || n == 0)
            goto bad;
        c->outbox_max_attempts = (unsigned)n;
    } else if (MATCH("outbox", "timeout_ms")) {
        if (parse_uint(value, 600000, &n) || n == 0)
            goto bad;
        c->outbox_timeout_ms = (unsigned)n;
    } else if (MATCH("demo", "seed")) {
        if (parse_bool(value, &c->demo) != 0)
            goto bad;
    } else if (strcmp(section, "sip") == 0) {
        return on_sip_value(lc, name, value);
    } else if (strcmp(section, "trunk") == 0) {
        return on_trunk_value(lc, name, value);
    } else {
        snprintf(lc->err, lc->errcap, "unknown key [%s] %s", section, name);
        return 0;
    }
    return 1;
bad:
    snprintf(lc->err, lc->errcap, "bad value for [%s] %s", section, name);
    return 0;
}

int sb_config_load(sb_config *c, const char *path, char *err, size_t errcap)
{
    load_ctx lc = {c, err, errcap};
    err[0] = '\0';
    int rc = ini_parse(path, on_value, &lc);
    if (rc == -1)
        snprintf(err, errcap, "cannot open %s", path);
    else if (rc > 0 && err[0] == '\0')
        snprintf(err, errcap, "syntax error");
    if (rc == 0 && c->trunk_register && (c->trunk_host[0] == '\0' || c->trunk_username[0] == '\0')) {
        snprintf(err, errcap, "[trunk] register needs host and username");
        rc = 1;
    }
    return rc;
}

int sb_config_parse_listen(sb_config *c, const char *z)
{
    const char *colon = strrchr(z, ':');
    const char *port = z;
    char host[64] = "";
    if (colon != NULL) {
        size_t hl = (size_t)(colon - z);
        const char *h = z;
        if (hl >= 2 && z[0] == '[' && z[hl - 1] == ']') {
            h = z + 1;
            hl -= 2;
        }
        if (hl == 0 || hl >= sizeof host)
            return -1;
        memcpy(host, h, hl);
        host[hl] = '\0';
        port = colon + 1;
    }
    unsigned long long n;
    if (parse_uint(port, 65535, &n) != 0)
        return -1;
    if (host[0] != '\0')
        snprintf(c->listen_host, sizeof c->listen_host, "%s", host);
    c->listen_port = (int)n;
    return 0;
}

int sb_config_parse_sip_listen(sb_config *c, const char *z)
{
    sb_config tmp = *c;
    if (sb_config_parse_listen(&tmp, z) != 0 || strchr(z, ':') == NULL)
        return -1;
    snprintf(c->sip_host, sizeof c->sip_host, "%s", tmp.listen_host);
    c->sip_port = tmp.listen_port;
    return 0;
}
