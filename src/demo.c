/* demo.c - see demo.h. Passwords are the documented demo ones (README). */
#include "demo.h"

#include <stdio.h>
#include <string.h>

#include "api/channels.h"
#include "base/crypto.h"
#include "base/log.h"
#include "engine/model.h"
#include "voice/voice.h"

typedef struct demo_agent {
    const char *email, *name, *role, *password, *team, *language;
    char hash[160];
    const char *sip_extension, *sip_password; /* documented in the README */
    char sip_ha1[33];
} demo_agent;

typedef struct seed_op {
    demo_agent agents[3];
    bool seeded;
    int64_t api_id, webchat_id;
    char secret[65];
    int rc;
} seed_op;

/* ---- demo IVR (issue 5; voice decisions, engine/ivr.h) ----
 * Phone number 100 answers with the main menu: 1 → the Sales queue,
 * 2 → the Support queue, 0 → the operator (the Support queue); an agent's
 * three-digit extension typed instead rings that agent. */
static int seed_ivr(sb_tx *tx, int64_t now, int64_t sales, int64_t support)
{
    char menu[512], number[384];
    snprintf(menu, sizeof menu,
             "{\"id\":1,\"name\":\"Main menu / Главное меню\",\"prompt\":\"menu_main\",\"extension_dialing\":true,"
             "\"interdigit_seconds\":2,\"options\":[{\"digit\":\"1\",\"action\":\"queue\",\"team_id\":%lld},"
             "{\"digit\":\"2\",\"action\":\"queue\",\"team_id\":%lld},{\"digit\":\"0\",\"action\":\"operator\"}]}",
             (long long)sales, (long long)support);
    snprintf(number, sizeof number,
             "{\"id\":1,\"name\":\"Demo line / Демо-линия\",\"number\":\"100\",\"language\":\"ru\","
             "\"entry\":{\"action\":\"menu\",\"menu_id\":1},\"operator\":{\"action\":\"queue\",\"team_id\":%lld}}",
             (long long)support);
    static const char SQL[] = "INSERT INTO config_item (kind, id, position, data, created_at, updated_at) "
                              "VALUES (?, 1, 10, ?, ?, ?)";
    int rc = sb_tx_exec(tx, SQL, "ttii", "ivr_menu", menu, now, now);
    if (rc == 0)
        rc = sb_tx_exec(tx, SQL, "ttii", "phone_number", number, now, now);
    return rc;
}
/* ---- end of demo IVR ---- */

static int seed_run(sb_tx *tx, void *arg)
{
    seed_op *s = arg;
    int64_t n = 0;
    if (sb_tx_int(tx, &n, "SELECT COUNT(*) FROM agent", "") != 1)
        return SB_EIO;
    if (n > 0)
        return 0;
    int64_t now = sb_tx_now(tx);
    int rc = sb_tx_exec(tx, "INSERT INTO setting (key, value) VALUES ('company_name', ?)", "t",
                        "Demo Company / Демо-компания");
    if (rc != 0)
        return rc;
    int64_t sales = 0, support = 0;
    if (sb_tx_int(tx, &sales, "INSERT INTO team (name, created_at, updated_at) VALUES (?, ?, ?) RETURNING id", "tii",
                  "Sales", now, now) != 1 ||
        sb_tx_int(tx, &support, "INSERT INTO team (name, created_at, updated_at) VALUES (?, ?, ?) RETURNING id", "tii",
                  "Support", now, now) != 1)
        return SB_EIO;
    for (size_t i = 0; i < SB_ARRAY_LEN(s->agents); i++) {
        demo_agent *a = &s->agents[i];
        int64_t id = 0;
        rc = sb_tx_int(tx, &id,
                       "INSERT INTO agent (email, name, role, password_hash, language, sip_extension, sip_ha1, "
                       "created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
                       "tttttttii", a->email, a->name, a->role, a->hash, a->language, a->sip_extension, a->sip_ha1, now,
                       now);
        if (rc != 1)
            return rc < 0 ? rc : SB_EIO;
        rc = 0;
        if (strcmp(a->team, "Sales") == 0 || strcmp(a->team, "both") == 0)
            rc = sb_tx_exec(tx, "INSERT INTO agent_team (agent_id, team_id) VALUES (?, ?)", "ii", id, sales);
        if (rc == 0 && (strcmp(a->team, "Support") == 0 || strcmp(a->team, "both") == 0))
            rc = sb_tx_exec(tx, "INSERT INTO agent_team (agent_id, team_id) VALUES (?, ?)", "ii", id, support);
        if (rc != 0)
            return rc;
    }
    rc = sb_channel_create(tx, "api", "Shop backend / Интернет-магазин", NULL, NULL, &s->api_id, s->secret);
    if (rc == 0)
        rc = sb_channel_create(tx, "webchat", "Website chat / Чат на сайте", NULL,
                               "{\"prechat\":false,\"greeting\":{\"ru\":\"Здравствуйте! Чем можем помочь?\","
                               "\"en\":\"Hello! How can we help?\"}}",
                               &s->webchat_id, NULL);
    if (rc == 0)
        rc = seed_ivr(tx, now, sales, support); /* demo IVR (issue 5) */
    if (rc == 0)
        rc = sb_event_log(tx, (sb_actor){"system", 0}, "setting", 0, "demo.seeded", NULL);
    if (rc == 0)
        s->seeded = true;
    return rc;
}

static void seed_done(void *arg, int rc)
{
    seed_op *s = arg;
    if (rc != 0)
        sb_log(SB_ERROR, "demo", "seeding failed rc=%d", rc);
    if (rc != 0 || !s->seeded)
        return;
    sb_log(SB_INFO, "demo", "seeded demo data api_channel=%lld webchat_channel=%lld", (long long)s->api_id,
           (long long)s->webchat_id);
    printf("Demo data created:\n");
    for (size_t i = 0; i < SB_ARRAY_LEN(s->agents); i++)
        printf("  %-11s %-28s password: %s  SIP extension %s password: %s\n", s->agents[i].role, s->agents[i].email,
               s->agents[i].password, s->agents[i].sip_extension, s->agents[i].sip_password);
    printf("  API channel %lld secret: %s\n", (long long)s->api_id, s->secret);
    printf("  Website chat channel %lld: open /chat/demo\n", (long long)s->webchat_id);
    fflush(stdout);
}

typedef struct count_op {
    int64_t agents;
    int rc;
} count_op;

static int count_agents(sb_tx *tx, void *arg)
{
    count_op *c = arg;
    return sb_tx_int(tx, &c->agents, "SELECT COUNT(*) FROM agent", "") == 1 ? 0 : SB_EIO;
}

static void count_done(void *arg, int rc)
{
    ((count_op *)arg)->rc = rc;
}

static void record_rc(void *arg, int rc)
{
    seed_done(arg, rc);
    ((seed_op *)arg)->rc = rc;
}

int sb_demo_seed(sb_store *store, const char *sip_realm)
{
    /* Hashing the demo passwords costs ~0.3 s: only for an empty database. */
    count_op c = {0, 0};
    sb_store_submit(store, count_agents, count_done, &c);
    sb_store_flush(store);
    if (c.rc != 0 || c.agents > 0)
        return c.rc;
    seed_op s;
    memset(&s, 0, sizeof s);
    demo_agent agents[3] = {
        {"admin@demo.switchboard", "Olga Admin / Ольга Админ", "admin", "demo-admin-1", "both", "ru", "", "201",
         "demo-sip-201", ""},
        {"anna@demo.switchboard", "Anna Sales / Анна Продажи", "agent", "demo-anna-1", "Sales", "ru", "", "202",
         "demo-sip-202", ""},
        {"boris@demo.switchboard", "Boris Support / Борис Поддержка", "supervisor", "demo-boris-1", "Support", "en", "",
         "203", "demo-sip-203", ""},
    };
    memcpy(s.agents, agents, sizeof agents);
    for (size_t i = 0; i < SB_ARRAY_LEN(s.agents); i++) {
        if (sb_password_hash(s.agents[i].password, s.agents[i].hash, sizeof s.agents[i].hash) != 0)
            return SB_ENOMEM;
        sb_voice_ha1(s.agents[i].sip_extension, sip_realm, s.agents[i].sip_password, s.agents[i].sip_ha1);
    }
    sb_store_submit(store, seed_run, record_rc, &s);
    sb_store_flush(store);
    return s.rc;
}
