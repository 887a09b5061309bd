/* main.c - the `switchboard` command line: serve, db, user, token, channel, config. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>

#include "api/api.h"
#include "api/channels.h"
#include "app.h"
#include "base/config.h"
#include "base/crypto.h"
#include "base/log.h"
#include "engine/config_io.h"
#include "engine/model.h"
#include "store/store.h"
#include "voice/voice.h"

static void usage(FILE *out)
{
    fprintf(out, "usage: switchboard COMMAND [options]   (every command takes --config FILE and --data DIR)\n"
                 "  serve [--listen HOST:PORT] [--sip HOST:PORT]   run the daemon (--sip: voice on UDP+TCP)\n"
                 "  db migrate                                 apply schema migrations\n"
                 "  db backup FILE                             online backup of the database\n"
                 "  user add EMAIL --name NAME --role agent|supervisor|admin [--password PW]\n"
                 "  user list\n"
                 "  user passwd EMAIL [--password PW]          (password from stdin when omitted)\n"
                 "  user sip-password EMAIL --extension EXT [--password PW]\n"
                 "                                             the agent's phone login (SIP digest, [sip] realm)\n"
                 "  token create --agent EMAIL                 prints a new API token once\n"
                 "  token revoke TOKEN                         revokes a token\n"
                 "  channel add api --name NAME [--callback-url URL]\n"
                 "  channel add webchat --name NAME\n"
                 "  channel list\n"
                 "  channel secret ID                          prints an API channel's signing secret\n"
                 "  channel rotate-secret ID                   gives it a new secret (the old one stops working)\n"
                 "  config export FILE                         rules, templates, calendars, SLA policies, routing\n"
                 "  config import FILE                         validates all of it, then replaces the stored one\n"
                 "  config webhook-secret                      prints the key rules' webhooks are signed with\n"
                 "  version\n");
}

typedef struct cli {
    sb_config cfg;
    int argc;
    char **argv; /* positional arguments left after options */
    const char *name, *role, *password, *agent, *callback_url, *listen, *sip, *extension;
} cli;

static int parse_args(cli *c, int argc, char **argv)
{
    const char *config = NULL, *data = NULL;
    c->argv = calloc((size_t)argc + 1, sizeof(char *));
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char **slot = NULL;
        if (strcmp(a, "--config") == 0)
            slot = &config;
        else if (strcmp(a, "--data") == 0)
            slot = &data;
        else if (strcmp(a, "--name") == 0)
            slot = &c->name;
        else if (strcmp(a, "--role") == 0)
            slot = &c->role;
        else if (strcmp(a, "--password") == 0)
            slot = &c->password;
        else if (strcmp(a, "--agent") == 0)
            slot = &c->agent;
        else if (strcmp(a, "--callback-url") == 0)
            slot = &c->callback_url;
        else if (strcmp(a, "--listen") == 0)
            slot = &c->listen;
        else if (strcmp(a, "--sip") == 0)
            slot = &c->sip;
        else if (strcmp(a, "--extension") == 0)
            slot = &c->extension;
        if (slot != NULL) {
            if (i + 1 >= argc) {
                fprintf(stderr, "switchboard: %s needs a value\n", a);
                return -1;
            }
            *slot = argv[++i];
        } else if (strncmp(a, "--", 2) == 0 && strcmp(a, "--help") != 0) {
            fprintf(stderr, "switchboard: unknown option %s\n", a);
            return -1;
        } else {
            c->argv[c->argc++] = argv[i];
        }
    }
    sb_config_defaults(&c->cfg);
    if (config != NULL) {
        char err[256];
        int rc = sb_config_load(&c->cfg, config, err, sizeof err);
        if (rc != 0) {
            if (rc > 0)
                fprintf(stderr, "switchboard: %s:%d: %s\n", config, rc, err);
            else
                fprintf(stderr, "switchboard: %s\n", err);
            return -1;
        }
    }
    if (data != NULL)
        snprintf(c->cfg.data_dir, sizeof c->cfg.data_dir, "%s", data);
    if (c->listen != NULL && sb_config_parse_listen(&c->cfg, c->listen) != 0) {
        fprintf(stderr, "switchboard: --listen wants HOST:PORT\n");
        return -1;
    }
    if (c->sip != NULL && sb_config_parse_sip_listen(&c->cfg, c->sip) != 0) {
        fprintf(stderr, "switchboard: --sip wants HOST:PORT\n");
        return -1;
    }
    return 0;
}

static sb_store *open_store(cli *c)
{
    if (mkdir(c->cfg.data_dir, 0750) != 0 && errno != EEXIST) {
        fprintf(stderr, "switchboard: cannot create %s: %s\n", c->cfg.data_dir, strerror(errno));
        return NULL;
    }
    sb_store *st = NULL;
    if (sb_store_open(&st, NULL, c->cfg.data_dir) != 0) {
        fprintf(stderr, "switchboard: cannot open the store in %s\n", c->cfg.data_dir);
        return NULL;
    }
    return st;
}

/* Runs one transaction script synchronously (the CLI has no loop). */
typedef struct sync_op {
    sb_tx_fn fn;
    void *arg;
    int rc;
} sync_op;

static int sync_run(sb_tx *tx, void *arg)
{
    sync_op *so = arg;
    return so->fn(tx, so->arg);
}

static void sync_done(void *arg, int rc)
{
    ((sync_op *)arg)->rc = rc;
}

static int run_sync(sb_store *st, sb_tx_fn fn, void *arg)
{
    sync_op so = {fn, arg, SB_EINTERNAL};
    sb_store_submit(st, sync_run, sync_done, &so);
    sb_store_flush(st);
    return so.rc;
}

static char *read_password(const char *prompt)
{
    static char buf[1024];
    bool tty = isatty(0);
    struct termios old, quiet;
    if (tty) {
        fprintf(stderr, "%s", prompt);
        tcgetattr(0, &old);
        quiet = old;
        quiet.c_lflag &= ~(tcflag_t)ECHO;
        tcsetattr(0, TCSANOW, &quiet);
    }
    char *r = fgets(buf, sizeof buf, stdin);
    if (tty) {
        tcsetattr(0, TCSANOW, &old);
        fprintf(stderr, "\n");
    }
    if (r == NULL)
        return NULL;
    buf[strcspn(buf, "\r\n")] = '\0';
    return buf;
}

/* ---- user ---- */

typedef struct user_op {
    const char *email, *name, *role, *hash;
    int64_t id;
    json_t *list;
} user_op;

static int user_add_run(sb_tx *tx, void *arg)
{
    user_op *u = arg;
    int64_t now = sb_tx_now(tx);
    int rc = sb_tx_int(tx, &u->id,
                       "INSERT INTO agent (email, name, role, password_hash, created_at, updated_at) "
                       "VALUES (?, ?, ?, ?, ?, ?) RETURNING id",
                       "ttttii", u->email, u->name, u->role, u->hash, now, now);
    if (rc != 1)
        return rc < 0 ? rc : SB_EIO;
    return sb_event_log(tx, (sb_actor){"system", 0}, "agent", u->id, "agent.created", json_pack("{s:s}", "via", "cli"));
}

static int user_list_run(sb_tx *tx, void *arg)
{
    user_op *u = arg;
    sb_stmt *s = sb_tx_query(tx, "SELECT id, email, name, role, active FROM agent ORDER BY id", "");
    if (s == NULL)
        return SB_EIO;
    u->list = json_array();
    while (sb_stmt_step(s) == 1)
        json_array_append_new(u->list, json_pack("{s:I,s:s,s:s,s:s,s:b}", "id", (json_int_t)sb_stmt_int(s, 0), "email",
                                                 sb_stmt_text(s, 1), "name", sb_stmt_text(s, 2), "role",
                                                 sb_stmt_text(s, 3), "active", (int)sb_stmt_int(s, 4)));
    sb_stmt_end(s);
    return 0;
}

static int user_passwd_run(sb_tx *tx, void *arg)
{
    user_op *u = arg;
    int rc = sb_tx_exec(tx, "UPDATE agent SET password_hash = ?, updated_at = ? WHERE email = ?", "tit", u->hash,
                        sb_tx_now(tx), u->email);
    if (rc != 0)
        return rc;
    if (sb_tx_changes(tx) == 0)
        return SB_ENOTFOUND;
    int64_t id = 0;
    sb_tx_int(tx, &id, "SELECT id FROM agent WHERE email = ?", "t", u->email);
    rc = sb_tx_exec(tx, "DELETE FROM session WHERE agent_id = ?", "i", id);
    if (rc != 0)
        return rc;
    return sb_event_log(tx, (sb_actor){"system", 0}, "agent", id, "agent.password_changed",
                        json_pack("{s:s}", "via", "cli"));
}

typedef struct sip_op {
    const char *email, *extension;
    char ha1[33];
    int64_t id;
} sip_op;

static int user_sip_run(sb_tx *tx, void *arg)
{
    sip_op *o = arg;
    if (sb_tx_int(tx, &o->id, "SELECT id FROM agent WHERE email = ?", "t", o->email) != 1)
        return SB_ENOTFOUND;
    int rc = sb_tx_exec(tx, "UPDATE agent SET sip_extension = ?, sip_ha1 = ?, updated_at = ? WHERE id = ?", "ttii",
                        o->extension, o->ha1, sb_tx_now(tx), o->id);
    if (rc != 0)
        return rc;
    return sb_event_log(tx, (sb_actor){"system", 0}, "agent", o->id, "agent.sip_password_changed",
                        json_pack("{s:s,s:s}", "via", "cli", "extension", o->extension));
}

static bool extension_valid(const char *z)
{
    size_t n = strlen(z);
    if (n < 2 || n > 8)
        return false;
    for (size_t i = 0; i < n; i++)
        if (z[i] < '0' || z[i] > '9')
            return false;
    return true;
}

/* `user sip-password EMAIL --extension EXT`: stores HA1 =
 * MD5(EXT:realm:password), never the password. */
static int cmd_user_sip(cli *c, sb_store *st)
{
    char email[256];
    if (c->argc < 3 || c->extension == NULL || sb_email_normalize(c->argv[2], email, sizeof email) != 0) {
        fprintf(stderr, "usage: switchboard user sip-password EMAIL --extension EXT [--password PW]\n");
        return 2;
    }
    if (!extension_valid(c->extension)) {
        fprintf(stderr, "switchboard: --extension must be 2 to 8 digits\n");
        return 2;
    }
    const char *pw = c->password ? c->password : read_password("SIP password: ");
    if (pw == NULL || strlen(pw) < 8) {
        fprintf(stderr, "switchboard: the password must have at least 8 characters\n");
        return 2;
    }
    sip_op o = {email, c->extension, "", 0};
    sb_voice_ha1(c->extension, c->cfg.sip_realm, pw, o.ha1);
    int rc = run_sync(st, user_sip_run, &o);
    if (rc == SB_ENOTFOUND) {
        fprintf(stderr, "switchboard: no agent %s\n", email);
        return 1;
    }
    if (rc == SB_ECONFLICT) {
        fprintf(stderr, "switchboard: extension %s belongs to another agent\n", c->extension);
        return 1;
    }
    if (rc != 0) {
        fprintf(stderr, "switchboard: cannot set the SIP password (%s)\n", sb_strerror(rc));
        return 1;
    }
    printf("{\"id\":%lld,\"email\":\"%s\",\"extension\":\"%s\",\"realm\":\"%s\"}\n", (long long)o.id, email,
           c->extension, c->cfg.sip_realm);
    return 0;
}

static int hash_password(const char *given, char *out, size_t cap)
{
    const char *pw = given ? given : read_password("Password: ");
    if (pw == NULL || strlen(pw) < 8) {
        fprintf(stderr, "switchboard: the password must have at least 8 characters\n");
        return -1;
    }
    if (sb_password_hash(pw, out, cap) != 0) {
        fprintf(stderr, "switchboard: cannot hash the password\n");
        return -1;
    }
    return 0;
}

static int cmd_user(cli *c, sb_store *st)
{
    const char *sub = c->argc > 1 ? c->argv[1] : "";
    user_op u;
    memset(&u, 0, sizeof u);
    char email[256], hash[256];
    if (strcmp(sub, "add") == 0) {
        if (c->argc < 3 || c->name == NULL || c->role == NULL) {
            fprintf(stderr,
                    "usage: switchboard user add EMAIL --name NAME --role agent|supervisor|admin [--password PW]\n");
            return 2;
        }
        if (sb_email_normalize(c->argv[2], email, sizeof email) != 0) {
            fprintf(stderr, "switchboard: '%s' is not an email address\n", c->argv[2]);
            return 2;
        }
        if (sb_role_parse(c->role) == SB_ROLE_NONE) {
            fprintf(stderr, "switchboard: --role must be agent, supervisor or admin\n");
            return 2;
        }
        if (hash_password(c->password, hash, sizeof hash) != 0)
            return 2;
        u.email = email;
        u.name = c->name;
        u.role = c->role;
        u.hash = hash;
        int rc = run_sync(st, user_add_run, &u);
        if (rc == SB_ECONFLICT) {
            fprintf(stderr, "switchboard: an agent with email %s exists\n", email);
            return 1;
        }
        if (rc != 0) {
            fprintf(stderr, "switchboard: cannot add the agent (%s)\n", sb_strerror(rc));
            return 1;
        }
        printf("{\"id\":%lld,\"email\":\"%s\",\"role\":\"%s\"}\n", (long long)u.id, email, c->role);
        return 0;
    }
    if (strcmp(sub, "list") == 0) {
        int rc = run_sync(st, user_list_run, &u);
        if (rc != 0)
            return 1;
        size_t i;
        json_t *a;
        json_array_foreach (u.list, i, a) {
            printf("%-5lld %-11s %-6s %-32s %s\n", (long long)json_integer_value(json_object_get(a, "id")),
                   json_string_value(json_object_get(a, "role")),
                   json_is_true(json_object_get(a, "active")) ? "active" : "off",
                   json_string_value(json_object_get(a, "email")), json_string_value(json_object_get(a, "name")));
        }
        json_decref(u.list);
        return 0;
    }
    if (strcmp(sub, "sip-password") == 0)
        return cmd_user_sip(c, st);
    if (strcmp(sub, "passwd") == 0) {
        if (c->argc < 3 || sb_email_normalize(c->argv[2], email, sizeof email) != 0) {
            fprintf(stderr, "usage: switchboard user passwd EMAIL [--password PW]\n");
            return 2;
        }
        if (hash_password(c->password, hash, sizeof hash) != 0)
            return 2;
        u.email = email;
        u.hash = hash;
        int rc = run_sync(st, user_passwd_run, &u);
        if (rc == SB_ENOTFOUND) {
            fprintf(stderr, "switchboard: no agent %s\n", email);
            return 1;
        }
        return rc == 0 ? 0 : 1;
    }
    usage(stderr);
    return 2;
}

/* ---- token ---- */

typedef struct token_op {
    const char *email;
    char token[80];
    char hash[65];
    int64_t id;
} token_op;

static int token_create_run(sb_tx *tx, void *arg)
{
    token_op *t = arg;
    int64_t agent = 0;
    int rc = sb_tx_int(tx, &agent, "SELECT id FROM agent WHERE email = ? AND active = 1", "t", t->email);
    if (rc != 1)
        return rc < 0 ? rc : SB_ENOTFOUND;
    char prefix[16];
    snprintf(prefix, sizeof prefix, "%.12s", t->token);
    rc = sb_tx_int(tx, &t->id,
                   "INSERT INTO api_token (agent_id, hash, prefix, created_at) VALUES (?, ?, ?, ?) RETURNING id",
                   "itti", agent, t->hash, prefix, sb_tx_now(tx));
    if (rc != 1)
        return rc < 0 ? rc : SB_EIO;
    return sb_event_log(tx, (sb_actor){"system", 0}, "agent", agent, "token.created",
                        json_pack("{s:I,s:s}", "token_id", (json_int_t)t->id, "prefix", prefix));
}

static int token_revoke_run(sb_tx *tx, void *arg)
{
    token_op *t = arg;
    int rc = sb_tx_exec(tx, "UPDATE api_token SET revoked_at = ? WHERE hash = ? AND revoked_at IS NULL", "it",
                        sb_tx_now(tx), t->hash);
    if (rc != 0)
        return rc;
    return sb_tx_changes(tx) == 0 ? SB_ENOTFOUND : 0;
}

static int cmd_token(cli *c, sb_store *st)
{
    const char *sub = c->argc > 1 ? c->argv[1] : "";
    token_op t;
    memset(&t, 0, sizeof t);
    char email[256];
    if (strcmp(sub, "create") == 0) {
        if (c->agent == NULL || sb_email_normalize(c->agent, email, sizeof email) != 0) {
            fprintf(stderr, "usage: switchboard token create --agent EMAIL\n");
            return 2;
        }
        t.email = email;
        char rnd[65];
        sb_random_hex(rnd, 32);
        snprintf(t.token, sizeof t.token, "sbt_%s", rnd);
        sb_sha256_hex(t.token, strlen(t.token), t.hash);
        int rc = run_sync(st, token_create_run, &t);
        if (rc == SB_ENOTFOUND) {
            fprintf(stderr, "switchboard: no active agent %s\n", email);
            return 1;
        }
        if (rc != 0)
            return 1;
        printf("%s\n", t.token);
        return 0;
    }
    if (strcmp(sub, "revoke") == 0) {
        if (c->argc < 3) {
            fprintf(stderr, "usage: switchboard token revoke TOKEN\n");
            return 2;
        }
        sb_sha256_hex(c->argv[2], strlen(c->argv[2]), t.hash);
        int rc = run_sync(st, token_revoke_run, &t);
        if (rc == SB_ENOTFOUND) {
            fprintf(stderr, "switchboard: no such active token\n");
            return 1;
        }
        return rc == 0 ? 0 : 1;
    }
    usage(stderr);
    return 2;
}

/* ---- channel ---- */

typedef struct channel_op {
    const char *kind, *name, *url;
    const char *public_url;
    int64_t id;
    char secret[65];
    json_t *out;
} channel_op;

static int channel_add_run(sb_tx *tx, void *arg)
{
    channel_op *c = arg;
    int rc = sb_channel_create(tx, c->kind, c->name, c->url, NULL, &c->id, c->secret);
    if (rc != 0)
        return rc;
    rc = sb_event_log(tx, (sb_actor){"system", 0}, "channel", c->id, "channel.created",
                      json_pack("{s:s}", "via", "cli"));
    if (rc != 0)
        return rc;
    c->out = sb_channel_json(tx, c->id, c->public_url);
    if (c->secret[0] != '\0')
        json_object_set_new(c->out, "secret", json_string(c->secret));
    return 0;
}

static int channel_secret_run(sb_tx *tx, void *arg)
{
    channel_op *c = arg;
    sb_stmt *s = sb_tx_query(tx, "SELECT secret FROM channel WHERE id = ? AND kind = 'api'", "i", c->id);
    if (s == NULL)
        return SB_EIO;
    int rc = sb_stmt_step(s);
    if (rc == 1 && sb_stmt_text(s, 0) != NULL)
        snprintf(c->secret, sizeof c->secret, "%s", sb_stmt_text(s, 0));
    sb_stmt_end(s);
    if (rc < 0)
        return rc;
    return c->secret[0] ? 0 : SB_ENOTFOUND;
}

static int channel_rotate_run(sb_tx *tx, void *arg)
{
    channel_op *c = arg;
    return sb_channel_rotate_secret(tx, c->id, (sb_actor){"system", 0}, c->secret);
}

static int channel_list_run(sb_tx *tx, void *arg)
{
    channel_op *c = arg;
    sb_stmt *s = sb_tx_query(tx, "SELECT id FROM channel ORDER BY id", "");
    if (s == NULL)
        return SB_EIO;
    json_t *ids = json_array();
    while (sb_stmt_step(s) == 1)
        json_array_append_new(ids, json_integer(sb_stmt_int(s, 0)));
    sb_stmt_end(s);
    c->out = json_array();
    size_t i;
    json_t *id;
    json_array_foreach (ids, i, id)
        json_array_append_new(c->out, sb_channel_json(tx, json_integer_value(id), c->public_url));
    json_decref(ids);
    return 0;
}

static int cmd_channel(cli *c, sb_store *st)
{
    const char *sub = c->argc > 1 ? c->argv[1] : "";
    channel_op ch;
    memset(&ch, 0, sizeof ch);
    char public_url[300];
    if (c->cfg.public_url[0])
        snprintf(public_url, sizeof public_url, "%s", c->cfg.public_url);
    else
        snprintf(public_url, sizeof public_url, "http://%s:%d", c->cfg.listen_host, c->cfg.listen_port);
    ch.public_url = public_url;
    if (strcmp(sub, "add") == 0) {
        const char *kind = c->argc > 2 ? c->argv[2] : "";
        if ((strcmp(kind, "api") != 0 && strcmp(kind, "webchat") != 0) || c->name == NULL) {
            fprintf(stderr, "usage: switchboard channel add api|webchat --name NAME [--callback-url URL]\n");
            return 2;
        }
        if (!sb_callback_url_valid(c->callback_url)) {
            fprintf(stderr, "switchboard: --callback-url must be an http(s) URL\n");
            return 2;
        }
        ch.kind = kind;
        ch.name = c->name;
        ch.url = c->callback_url;
        int rc = run_sync(st, channel_add_run, &ch);
        if (rc != 0) {
            fprintf(stderr, "switchboard: cannot add the channel (%s)\n", sb_strerror(rc));
            return 1;
        }
        char *text = json_dumps(ch.out, JSON_COMPACT);
        printf("%s\n", text);
        free(text);
        json_decref(ch.out);
        return 0;
    }
    if (strcmp(sub, "secret") == 0 || strcmp(sub, "rotate-secret") == 0) {
        char *end = NULL;
        ch.id = c->argc > 2 ? strtoll(c->argv[2], &end, 10) : 0;
        if (ch.id <= 0 || *end != '\0') {
            fprintf(stderr, "usage: switchboard channel %s ID\n", sub);
            return 2;
        }
        int rc = run_sync(st, strcmp(sub, "secret") == 0 ? channel_secret_run : channel_rotate_run, &ch);
        if (rc == SB_ENOTFOUND) {
            fprintf(stderr, "switchboard: no API channel %lld\n", (long long)ch.id);
            return 1;
        }
        if (rc != 0)
            return 1;
        printf("%s\n", ch.secret);
        return 0;
    }
    if (strcmp(sub, "list") == 0) {
        if (run_sync(st, channel_list_run, &ch) != 0)
            return 1;
        char *text = json_dumps(ch.out, JSON_INDENT(2));
        printf("%s\n", text);
        free(text);
        json_decref(ch.out);
        return 0;
    }
    usage(stderr);
    return 2;
}

typedef struct config_job {
    json_t *doc;
    sb_config_import_stats stats;
    char err[512];
} config_job;

static int config_export_run(sb_tx *tx, void *arg)
{
    config_job *j = arg;
    return sb_config_export(tx, &j->doc);
}

static int config_import_run(sb_tx *tx, void *arg)
{
    config_job *j = arg;
    return sb_config_import(tx, j->doc, &j->stats, j->err, sizeof j->err);
}

/* The secret rules' webhooks are signed with (made on first use). */
static int webhook_secret_run(sb_tx *tx, void *arg)
{
    char *out = arg, fresh[65];
    sb_random_hex(fresh, 32);
    int rc = sb_tx_exec(tx, "INSERT OR IGNORE INTO setting (key, value) VALUES ('webhook_secret', ?)", "t", fresh);
    sb_stmt *s = rc == 0 ? sb_tx_query(tx, "SELECT value FROM setting WHERE key = 'webhook_secret'", "") : NULL;
    if (s != NULL && sb_stmt_step(s) == 1)
        snprintf(out, 65, "%s", sb_stmt_text(s, 0));
    sb_stmt_end(s);
    return rc != 0 ? rc : out[0] ? 0 : SB_EIO;
}

static int cmd_config(cli *c, sb_store *st)
{
    const char *sub = c->argc > 1 ? c->argv[1] : "";
    config_job j = {0};
    if (strcmp(sub, "webhook-secret") == 0) {
        char secret[65] = "";
        if (run_sync(st, webhook_secret_run, secret) != 0)
            return 1;
        printf("%s\n", secret);
        return 0;
    }
    if (c->argc < 3 || (strcmp(sub, "export") != 0 && strcmp(sub, "import") != 0)) {
        fprintf(stderr, "usage: switchboard config export|import FILE   (FILE - is stdout/stdin)\n");
        return 2;
    }
    const char *path = c->argv[2];
    if (strcmp(sub, "export") == 0) {
        if (run_sync(st, config_export_run, &j) != 0) {
            fprintf(stderr, "switchboard: cannot read the configuration\n");
            return 1;
        }
        int rc = strcmp(path, "-") == 0 ? json_dumpf(j.doc, stdout, JSON_INDENT(2))
                                        : json_dump_file(j.doc, path, JSON_INDENT(2));
        if (strcmp(path, "-") == 0)
            fputc('\n', stdout);
        json_decref(j.doc);
        if (rc != 0) {
            fprintf(stderr, "switchboard: cannot write %s\n", path);
            return 1;
        }
        return 0;
    }
    json_error_t jerr;
    j.doc = strcmp(path, "-") == 0 ? json_loadf(stdin, JSON_REJECT_DUPLICATES, &jerr)
                                   : json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
    if (j.doc == NULL) {
        fprintf(stderr, "switchboard: %s:%d:%d: %s\n", path, jerr.line, jerr.column, jerr.text);
        return 1;
    }
    int rc = run_sync(st, config_import_run, &j);
    json_decref(j.doc);
    if (rc != 0) {
        fprintf(stderr, "switchboard: %s: %s\n", path, j.err[0] ? j.err : sb_strerror(rc));
        return 1;
    }
    printf("imported %d documents, routing of %d teams and %d agents\n", j.stats.documents, j.stats.teams,
           j.stats.agents);
    return 0;
}

static int cmd_db(cli *c)
{
    const char *sub = c->argc > 1 ? c->argv[1] : "";
    if (strcmp(sub, "migrate") == 0) {
        if (mkdir(c->cfg.data_dir, 0750) != 0 && errno != EEXIST) {
            fprintf(stderr, "switchboard: cannot create %s\n", c->cfg.data_dir);
            return 1;
        }
        int version = 0;
        if (sb_store_migrate(c->cfg.data_dir, &version) != 0) {
            fprintf(stderr, "switchboard: migration failed\n");
            return 1;
        }
        printf("schema version %d\n", version);
        return 0;
    }
    if (strcmp(sub, "backup") == 0) {
        if (c->argc < 3) {
            fprintf(stderr, "usage: switchboard db backup FILE\n");
            return 2;
        }
        if (access(c->argv[2], F_OK) == 0) {
            fprintf(stderr, "switchboard: %s exists; choose a new file\n", c->argv[2]);
            return 1;
        }
        int rc = sb_store_backup(c->cfg.data_dir, c->argv[2]);
        if (rc != 0) {
            fprintf(stderr, "switchboard: backup failed (%s)\n", sb_strerror(rc));
            return 1;
        }
        printf("backup written to %s\n", c->argv[2]);
        return 0;
    }
    usage(stderr);
    return 2;
}

/* Runs the command once the arguments are parsed; returns the exit code. */
static int run_command(cli *c)
{
    if (c->argc == 0) {
        usage(stderr);
        return 2;
    }
    sb_log_level level = SB_INFO;
    sb_log_level_parse(c->cfg.log_level, &level);
    const char *cmd = c->argv[0];
    if (strcmp(cmd, "version") == 0) {
        printf("switchboard %s\n", SB_VERSION);
        return 0;
    }
    if (sb_crypto_init() != 0) {
        fprintf(stderr, "switchboard: libsodium failed to initialise\n");
        return 1;
    }
    curl_global_init(CURL_GLOBAL_DEFAULT);
    int rc;
    if (strcmp(cmd, "serve") == 0) {
        sb_log_open(c->cfg.log_file[0] ? c->cfg.log_file : NULL, level);
        rc = sb_app_serve(&c->cfg);
    } else {
        sb_log_open(NULL, level > SB_WARN ? level : SB_WARN);
        if (strcmp(cmd, "db") == 0) {
            rc = cmd_db(c);
        } else if (strcmp(cmd, "user") == 0 || strcmp(cmd, "token") == 0 || strcmp(cmd, "channel") == 0 ||
                   strcmp(cmd, "config") == 0) {
            sb_store *st = open_store(c);
            if (st == NULL) {
                rc = 1;
            } else {
                rc = strcmp(cmd, "user") == 0     ? cmd_user(c, st)
                     : strcmp(cmd, "token") == 0  ? cmd_token(c, st)
                     : strcmp(cmd, "config") == 0 ? cmd_config(c, st)
                                                  : cmd_channel(c, st);
                sb_store_close(st);
            }
        } else {
            fprintf(stderr, "switchboard: unknown command '%s'\n", cmd);
            usage(stderr);
            rc = 2;
        }
    }
    curl_global_cleanup();
    sb_log_close();
    return rc;
}

int main(int argc, char **argv)
{
    cli c;
    memset(&c, 0, sizeof c);
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "help") == 0) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    int rc = parse_args(&c, argc, argv) != 0 ? 2 : run_command(&c);
    free(c.argv);
    return rc;
}
