/* test_model.c - the store (group commit, savepoint rollback, completion
 * order) and the ticket model (ingest, joining, reopening, idempotency,
 * normalisation) against a real SQLite file. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/clock.h"
#include "base/crypto.h"
#include "engine/model.h"
#include "store/schema.h"
#include "store/store.h"

typedef struct fixture {
    char dir[64];
    uv_loop_t loop;
    sb_store *st;
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "/tmp/sbunitXXXXXX");
    if (mkdtemp(f->dir) == NULL)
        return -1;
    uv_loop_init(&f->loop);
    if (sb_store_open(&f->st, &f->loop, f->dir) != 0)
        return -1;
    sb_store_set_precommit(f->st, sb_model_index_text, NULL);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    sb_store_close(f->st);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    uv_loop_close(&f->loop);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", f->dir);
    if (system(cmd) != 0)
        return -1;
    free(f);
    return 0;
}

/* ---- store ---- */

typedef struct counter_op {
    int ran, done, rc;
    int order[8];
    int norder;
    int64_t value;
} counter_op;

static int insert_setting(sb_tx *tx, void *arg)
{
    counter_op *c = arg;
    c->ran++;
    return sb_tx_exec(tx, "INSERT INTO setting (key, value) VALUES ('k', 'v')", "");
}

static int failing_insert(sb_tx *tx, void *arg)
{
    counter_op *c = arg;
    c->ran++;
    int rc = sb_tx_exec(tx, "INSERT INTO setting (key, value) VALUES ('other', 'x')", "");
    if (rc != 0)
        return rc;
    return SB_EINVAL; /* the insert above must be rolled back */
}

static int count_settings(sb_tx *tx, void *arg)
{
    counter_op *c = arg;
    return sb_tx_int(tx, &c->value, "SELECT COUNT(*) FROM setting WHERE key IN ('k', 'other')", "") == 1 ? 0 : SB_EIO;
}

static void record_done(void *arg, int rc)
{
    counter_op *c = arg;
    c->done++;
    c->rc = rc;
}

static void test_store_completion_after_commit(void **state)
{
    fixture *f = *state;
    counter_op a = {0}, b = {0}, dup = {0}, n = {0};
    sb_store_submit(f->st, insert_setting, record_done, &a);
    sb_store_submit(f->st, failing_insert, record_done, &b);
    sb_store_submit(f->st, insert_setting, record_done, &dup); /* unique key: conflict */
    /* Nothing is acknowledged before the batch commits and the loop runs
     * the completions. */
    assert_int_equal(a.done, 0);
    sb_store_flush(f->st);
    assert_int_equal(sb_store_pending(f->st), 0);
    assert_int_equal(a.ran, 1);
    assert_int_equal(a.done, 1);
    assert_int_equal(a.rc, 0);
    assert_int_equal(b.rc, SB_EINVAL);
    assert_int_equal(dup.rc, SB_ECONFLICT);
    sb_store_submit(f->st, count_settings, record_done, &n);
    sb_store_flush(f->st);
    assert_int_equal(n.value, 1); /* only the first insert survived */
}

static void test_store_durable_across_reopen(void **state)
{
    fixture *f = *state;
    counter_op a = {0}, n = {0};
    sb_store_submit(f->st, insert_setting, record_done, &a);
    sb_store_flush(f->st);
    sb_store_close(f->st);
    assert_int_equal(sb_store_open(&f->st, &f->loop, f->dir), 0);
    sb_store_submit(f->st, count_settings, record_done, &n);
    sb_store_flush(f->st);
    assert_int_equal(n.value, 1);
    assert_int_equal(sb_store_schema_version(f->st), sb_schema_count());
}

static void test_store_backup(void **state)
{
    fixture *f = *state;
    counter_op a = {0};
    sb_store_submit(f->st, insert_setting, record_done, &a);
    sb_store_flush(f->st);
    char path[128];
    snprintf(path, sizeof path, "%s/backup.db", f->dir);
    assert_int_equal(sb_store_backup(f->dir, path), 0);
    assert_int_equal(access(path, R_OK), 0);
}

/* ---- normalisation ---- */

static void test_phone_normalize(void **state)
{
    char out[40];
    assert_int_equal(sb_phone_normalize("8 (916) 123-45-67", "7", out, sizeof out), 0);
    assert_string_equal(out, "+79161234567");
    assert_int_equal(sb_phone_normalize("+7 916 123 45 67", "7", out, sizeof out), 0);
    assert_string_equal(out, "+79161234567");
    assert_int_equal(sb_phone_normalize("79161234567", "7", out, sizeof out), 0);
    assert_string_equal(out, "+79161234567");
    assert_int_equal(sb_phone_normalize("9161234567", "7", out, sizeof out), 0);
    assert_string_equal(out, "+79161234567");
    assert_int_equal(sb_phone_normalize("0044 20 7946 0958", "7", out, sizeof out), 0);
    assert_string_equal(out, "+442079460958");
    assert_int_not_equal(sb_phone_normalize("call me", "7", out, sizeof out), 0);
    assert_int_not_equal(sb_phone_normalize("123", "7", out, sizeof out), 0);
    assert_int_not_equal(sb_phone_normalize("+1234567890123456", "7", out, sizeof out), 0);
}

static void test_email_normalize(void **state)
{
    char out[256];
    assert_int_equal(sb_email_normalize("  Ivan.Petrov@Example.RU ", out, sizeof out), 0);
    assert_string_equal(out, "ivan.petrov@example.ru");
    assert_int_not_equal(sb_email_normalize("no-at-sign", out, sizeof out), 0);
    assert_int_not_equal(sb_email_normalize("a@b@c", out, sizeof out), 0);
    assert_int_not_equal(sb_email_normalize("@b", out, sizeof out), 0);
    assert_int_not_equal(sb_email_normalize("a b@c", out, sizeof out), 0);
}

/* ---- ingest ---- */

typedef struct ingest_op {
    sb_inbound in;
    sb_ingest_result res;
    json_t *events;
    int64_t resolve_ticket; /* if set: mark resolved at `resolved_at` instead */
    int64_t resolved_at;
    const char *status;
} ingest_op;

static int ingest_run(sb_tx *tx, void *arg)
{
    ingest_op *op = arg;
    if (op->resolve_ticket != 0)
        return sb_tx_exec(tx, "UPDATE ticket SET status = ?, resolved_at = ? WHERE id = ?", "tii", op->status,
                          op->resolved_at, op->resolve_ticket);
    return sb_ingest(tx, &op->in, &op->res, op->events);
}

static void ingest_done(void *arg, int rc)
{
    assert_int_equal(rc, 0);
}

static sb_ingest_result ingest(fixture *f, const char *external_id, const char *from_id, const char *phone,
                               const char *text, int64_t window_ms, json_t *events)
{
    ingest_op op;
    memset(&op, 0, sizeof op);
    op.in.channel_id = 1;
    op.in.channel_kind = "api";
    op.in.external_id = external_id;
    op.in.from_id = from_id;
    op.in.phone = phone;
    op.in.text = text;
    op.in.reopen_window_ms = window_ms;
    op.in.default_country_code = "7";
    op.events = events;
    sb_store_submit(f->st, ingest_run, ingest_done, &op);
    sb_store_flush(f->st);
    return op.res;
}

static void set_status(fixture *f, int64_t ticket, const char *status, int64_t resolved_at)
{
    ingest_op op;
    memset(&op, 0, sizeof op);
    op.resolve_ticket = ticket;
    op.status = status;
    op.resolved_at = resolved_at;
    sb_store_submit(f->st, ingest_run, ingest_done, &op);
    sb_store_flush(f->st);
}

static int add_channel(sb_tx *tx, void *arg)
{
    return sb_tx_exec(
        tx, "INSERT INTO channel (id, kind, name, created_at, updated_at) VALUES (1, 'api', 'test', 0, 0)", "");
}

typedef struct load_op {
    int64_t id;
    json_t *json;
} load_op;

static int load_message(sb_tx *tx, void *arg)
{
    load_op *lo = arg;
    lo->json = sb_message_json(tx, lo->id);
    return lo->json ? 0 : SB_ENOTFOUND;
}

static int count_fts(sb_tx *tx, void *arg)
{
    counter_op *c = arg;
    return sb_tx_int(tx, &c->value, "SELECT COUNT(*) FROM message_fts WHERE message_fts MATCH '\"заказ\"*'", "") == 1
               ? 0
               : SB_EIO;
}

typedef struct event_data_op {
    const char *type;
    int64_t entity_id;
    json_t *data;
} event_data_op;

static int load_event_data(sb_tx *tx, void *arg)
{
    event_data_op *e = arg;
    sb_stmt *s = sb_tx_query(tx, "SELECT data FROM event WHERE type = ? AND entity_id = ? ORDER BY id LIMIT 1", "ti",
                             e->type, e->entity_id);
    if (s == NULL)
        return SB_EIO;
    if (sb_stmt_step(s) == 1)
        e->data = json_loads(sb_stmt_text(s, 0), 0, NULL);
    sb_stmt_end(s);
    return e->data ? 0 : SB_ENOTFOUND;
}

static json_t *event_data(fixture *f, const char *type, int64_t entity_id)
{
    event_data_op e = {type, entity_id, NULL};
    sb_store_submit(f->st, load_event_data, ingest_done, &e);
    sb_store_flush(f->st);
    return e.data;
}

static void test_ingest_threading(void **state)
{
    fixture *f = *state;
    counter_op c = {0};
    sb_store_submit(f->st, add_channel, record_done, &c);
    sb_store_flush(f->st);
    assert_int_equal(c.rc, 0);
    const int64_t day = 24 * 3600 * 1000LL;

    json_t *events = json_array();
    sb_ingest_result r1 = ingest(f, "m1", "cust-1", "8 916 123-45-67", "Где мой заказ?", 3 * day, events);
    assert_true(r1.ticket_created);
    assert_false(r1.duplicate);
    assert_int_equal(r1.ticket_number, 1);
    /* ticket.created + message.created + contact.created were emitted */
    assert_int_equal(json_array_size(events), 3);
    /* The message.created event, built without reading the row back, is
     * exactly what reading it gives. */
    json_t *built = NULL;
    size_t i;
    json_t *ev;
    json_array_foreach (events, i, ev)
        if (strcmp(json_string_value(json_object_get(ev, "type")), "message.created") == 0)
            built = json_object_get(ev, "data");
    assert_non_null(built);
    load_op lo = {r1.message_id, NULL};
    sb_store_submit(f->st, load_message, ingest_done, &lo);
    sb_store_flush(f->st);
    assert_non_null(lo.json);
    assert_true(json_equal(built, lo.json));
    json_decref(lo.json);
    json_decref(events);

    /* The event log rows (written as text, not through jansson) are JSON. */
    json_t *ev_msg = event_data(f, "message.created", r1.ticket_id);
    assert_non_null(ev_msg);
    assert_int_equal(json_integer_value(json_object_get(ev_msg, "message_id")), r1.message_id);
    assert_string_equal(json_string_value(json_object_get(ev_msg, "direction")), "in");
    json_decref(ev_msg);
    json_t *ev_ticket = event_data(f, "ticket.created", r1.ticket_id);
    assert_non_null(ev_ticket);
    assert_int_equal(json_integer_value(json_object_get(ev_ticket, "number")), 1);
    assert_int_equal(json_integer_value(json_object_get(ev_ticket, "channel_id")), 1);
    json_decref(ev_ticket);

    /* Same external id: the same message, nothing new. */
    sb_ingest_result again = ingest(f, "m1", "cust-1", NULL, "Где мой заказ?", 3 * day, NULL);
    assert_true(again.duplicate);
    assert_int_equal(again.message_id, r1.message_id);
    assert_int_equal(again.ticket_number, 1);

    /* The same person by phone only (another spelling) joins the open ticket. */
    sb_ingest_result r2 = ingest(f, "m2", NULL, "+7 (916) 1234567", "Алло?", 3 * day, NULL);
    assert_false(r2.ticket_created);
    assert_int_equal(r2.contact_id, r1.contact_id);
    assert_int_equal(r2.ticket_id, r1.ticket_id);

    /* Resolved recently: reopened. */
    set_status(f, r1.ticket_id, "resolved", sb_clock_wall_ms());
    sb_ingest_result r3 = ingest(f, "m3", "cust-1", NULL, "Ещё вопрос", 3 * day, NULL);
    assert_int_equal(r3.ticket_id, r1.ticket_id);
    assert_false(r3.ticket_created);

    /* Resolved long ago: a new ticket with the next number. */
    set_status(f, r1.ticket_id, "resolved", 1000);
    sb_ingest_result r4 = ingest(f, "m4", "cust-1", NULL, "Новый вопрос", 3 * day, NULL);
    assert_true(r4.ticket_created);
    assert_int_equal(r4.ticket_number, 2);

    /* Closed: never reopened. */
    set_status(f, r4.ticket_id, "closed", 0);
    sb_ingest_result r5 = ingest(f, "m5", "cust-1", NULL, "И ещё", 3 * day, NULL);
    assert_true(r5.ticket_created);
    assert_int_equal(r5.ticket_number, 3);

    /* Committed messages are searchable (indexed once per batch). */
    counter_op fts = {0};
    sb_store_submit(f->st, count_fts, record_done, &fts);
    sb_store_flush(f->st);
    assert_int_equal(fts.rc, 0);
    assert_int_equal(fts.value, 1);

    /* Another customer gets their own contact and ticket. */
    sb_ingest_result r6 = ingest(f, "m6", "cust-2", NULL, "Hello", 3 * day, NULL);
    assert_int_not_equal(r6.contact_id, r1.contact_id);
    assert_int_equal(r6.ticket_number, 4);
}

static int count_fts_after_catch_up(sb_tx *tx, void *arg)
{
    int rc = sb_model_index_text(tx, NULL);
    return rc != 0 ? rc : count_fts(tx, arg);
}

static int64_t fts_count(fixture *f, sb_tx_fn fn)
{
    counter_op c = {0};
    sb_store_submit(f->st, fn, record_done, &c);
    sb_store_flush(f->st);
    assert_int_equal(c.rc, 0);
    return c.value;
}

/* The daemon's pre-commit indexer works in chunks (a backlog of
 * SB_TEXT_INDEX_CHUNK messages, or one waiting SB_TEXT_INDEX_DELAY_MS);
 * a search's own catch-up makes everything committed findable anyway. */
static void test_text_indexed_lazily(void **state)
{
    fixture *f = *state;
    sb_text_indexer ix = {0};
    sb_store_set_precommit(f->st, sb_model_index_text_lazily, &ix);
    counter_op c = {0};
    sb_store_submit(f->st, add_channel, record_done, &c);
    sb_store_flush(f->st);
    assert_int_equal(c.rc, 0);
    const int64_t day = 24 * 3600 * 1000LL;

    ingest(f, "l1", "lazy-1", NULL, "Где мой заказ?", day, NULL);
    assert_int_equal(fts_count(f, count_fts), 0); /* waiting, not indexed */
    assert_int_equal(fts_count(f, count_fts_after_catch_up), 1);

    ingest(f, "l2", "lazy-2", NULL, "Второй заказ", day, NULL);
    assert_int_equal(fts_count(f, count_fts), 1);
    usleep((SB_TEXT_INDEX_DELAY_MS + 100) * 1000);
    ingest(f, "l3", "lazy-3", NULL, "Без слова", day, NULL); /* a commit after the delay indexes */
    assert_int_equal(fts_count(f, count_fts), 2);
    assert_int_equal(ix.waiting_since, 0);
}

static void test_csat_rating(void **state)
{
    (void)state;
    const char *c = NULL;
    assert_int_equal(sb_csat_rating("5", &c), 5);
    assert_null(c);
    assert_int_equal(sb_csat_rating("  4 - ok", &c), 4);
    assert_string_equal(c, "ok");
    assert_int_equal(sb_csat_rating("5/5 спасибо", &c), 5);
    assert_string_equal(c, "спасибо");
    assert_int_equal(sb_csat_rating("3.", &c), 3);
    assert_null(c);
    assert_int_equal(sb_csat_rating("10", &c), 0);
    assert_int_equal(sb_csat_rating("0", &c), 0);
    assert_int_equal(sb_csat_rating("6", &c), 0);
    assert_int_equal(sb_csat_rating("5a", &c), 0);
    assert_int_equal(sb_csat_rating("спасибо, 5", &c), 0);
    assert_int_equal(sb_csat_rating("", &c), 0);
}

int main(void)
{
    sb_crypto_init();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_store_completion_after_commit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_store_durable_across_reopen, setup, teardown),
        cmocka_unit_test_setup_teardown(test_store_backup, setup, teardown),
        cmocka_unit_test(test_phone_normalize),
        cmocka_unit_test(test_email_normalize),
        cmocka_unit_test_setup_teardown(test_ingest_threading, setup, teardown),
        cmocka_unit_test_setup_teardown(test_text_indexed_lazily, setup, teardown),
        cmocka_unit_test(test_csat_rating),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
