/* test_schema.c - the migration that rebuilds `channel` for the 'phone'
 * kind (SQLite's 12-step procedure, foreign keys off around it): a database
 * made by the migrations before it, with tickets, messages, outbox rows
 * and calls pointing at its channels, is migrated by sb_store_migrate and
 * keeps every row and reference; the new kind is accepted, others are
 * not, foreign keys are enforced again afterwards; and a database with a
 * dangling reference is refused by the foreign_key_check before the
 * commit, left as it was. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "store/schema.h"
#include "store/store.h"

typedef struct fixture {
    char dir[64];
    char path[128];
    int phone_version; /* the migration that adds the 'phone' kind */
} fixture;

static int exec(sqlite3 *db, const char *sql)
{
    char *err = NULL;
    int rc = sqlite3_exec(db, sql, NULL, NULL, &err);
    if (rc != SQLITE_OK)
        fprintf(stderr, "sql failed: %s\n", err ? err : "?");
    sqlite3_free(err);
    return rc;
}

static int64_t one_int(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *s = NULL;
    int64_t v = -1;
    if (sqlite3_prepare_v2(db, sql, -1, &s, NULL) == SQLITE_OK && sqlite3_step(s) == SQLITE_ROW)
        v = sqlite3_column_int64(s, 0);
    sqlite3_finalize(s);
    return v;
}

/* A database at the version before the phone kind, with data. */
static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "/tmp/sbschemaXXXXXX");
    if (mkdtemp(f->dir) == NULL)
        return -1;
    snprintf(f->path, sizeof f->path, "%s/switchboard.db", f->dir);
    for (int v = 1; v <= sb_schema_count() && f->phone_version == 0; v++)
        if (strstr(sb_schema_migration(v), "'api','webchat','phone'") != NULL)
            f->phone_version = v;
    if (f->phone_version == 0)
        return -1;
    sqlite3 *db = NULL;
    if (sqlite3_open(f->path, &db) != SQLITE_OK)
        return -1;
    int rc = exec(db, "PRAGMA foreign_keys=ON; PRAGMA journal_mode=WAL; BEGIN");
    for (int v = 1; rc == SQLITE_OK && v < f->phone_version; v++)
        rc = exec(db, sb_schema_migration(v));
    char sql[64];
    snprintf(sql, sizeof sql, "PRAGMA user_version=%d", f->phone_version - 1);
    if (rc == SQLITE_OK)
        rc = exec(db, sql);
    if (rc == SQLITE_OK)
        rc = exec(db,
                  "INSERT INTO channel (id, kind, name, secret, created_at, updated_at) VALUES "
                  "  (3, 'api', 'Shop', 'abc', 1, 1), (7, 'webchat', 'Chat', NULL, 2, 2);"
                  "INSERT INTO contact (id, name, created_at, updated_at) VALUES (1, 'Иван', 1, 1);"
                  "INSERT INTO ticket (id, number, contact_id, channel_id, status, priority, created_at, updated_at) "
                  "  VALUES (1, 1, 1, 3, 'open', 'normal', 1, 1), (2, 2, 1, 7, 'new', 'normal', 2, 2);"
                  "INSERT INTO message (id, ticket_id, channel_id, direction, text, created_at, updated_at) "
                  "  VALUES (1, 1, 3, 'in', 'привет', 1, 1), (2, 2, 7, 'in', 'hi', 2, 2);"
                  "INSERT INTO outbox (message_id, channel_id, url, body, status, next_at, created_at, updated_at) "
                  "  VALUES (1, 3, 'http://x', '{}', 'pending', 1, 1, 1);"
                  "INSERT INTO call (direction, from_number, to_number, status, contact_id, offered_at, ended_at, "
                  "  created_at) VALUES ('in', '79991234567', '100', 'missed', 1, 1, 2, 2);"
                  "COMMIT");
    sqlite3_close(db);
    *state = f;
    return rc == SQLITE_OK ? 0 : -1;
}

static int teardown(void **state)
{
    fixture *f = *state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", f->dir);
    int rc = system(cmd);
    free(f);
    return rc == 0 ? 0 : -1;
}

static void test_phone_kind_keeps_references(void **state)
{
    fixture *f = *state;
    int version = 0;
    assert_int_equal(sb_store_migrate(f->dir, &version), 0);
    assert_int_equal(version, sb_schema_count());
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
    assert_int_equal(one_int(db, "PRAGMA user_version"), sb_schema_count());
    /* same ids, same data, references intact */
    assert_int_equal(one_int(db, "SELECT count(*) FROM channel"), 2);
    assert_int_equal(one_int(db, "SELECT count(*) FROM channel WHERE id = 3 AND kind = 'api' AND secret = 'abc'"), 1);
    assert_int_equal(one_int(db, "SELECT count(*) FROM ticket t JOIN channel c ON c.id = t.channel_id"), 2);
    assert_int_equal(one_int(db, "SELECT count(*) FROM message m JOIN channel c ON c.id = m.channel_id"), 2);
    assert_int_equal(one_int(db, "SELECT channel_id FROM outbox"), 3);
    assert_int_equal(one_int(db, "SELECT count(*) FROM pragma_foreign_key_check"), 0);
    /* the foreign keys still name `channel`, not the table it was built as */
    assert_int_equal(one_int(db, "SELECT count(*) FROM sqlite_master WHERE sql LIKE '%channel_new%'"), 0);
    assert_int_equal(one_int(db, "SELECT count(*) FROM pragma_foreign_key_list('ticket') WHERE \"table\" = 'channel'"),
                     1);
    /* the new kind, the call's new columns */
    assert_int_equal(exec(db, "INSERT INTO channel (kind, name, created_at, updated_at) "
                              "VALUES ('phone', 'Телефон', 3, 3)"),
                     SQLITE_OK);
    assert_int_not_equal(exec(db, "INSERT INTO channel (kind, name, created_at, updated_at) "
                                  "VALUES ('sms', 'SMS', 3, 3)"),
                         SQLITE_OK);
    assert_int_equal(exec(db, "UPDATE call SET ticket_id = 1, recording = 'r/1.wav', recording_ms = 5, "
                              "callback_task_id = NULL"),
                     SQLITE_OK);
    assert_int_equal(one_int(db, "SELECT count(*) FROM sqlite_master WHERE name IN ('call_missed', 'call_callback')"),
                     2);
    sqlite3_close(db);

    /* the store's own connection enforces foreign keys again */
    sb_store *st = NULL;
    assert_int_equal(sb_store_open(&st, NULL, f->dir), 0);
    sb_store_close(st);
    assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
    assert_int_equal(exec(db, "PRAGMA foreign_keys=ON"), SQLITE_OK);
    assert_int_not_equal(exec(db, "UPDATE call SET ticket_id = 999"), SQLITE_OK);
    sqlite3_close(db);
}

static int check_fk(sb_tx *tx, void *arg)
{
    (void)arg;
    /* a ticket of a channel that does not exist must be refused */
    return sb_tx_exec(tx,
                      "INSERT INTO ticket (number, contact_id, channel_id, status, priority, created_at, updated_at) "
                      "VALUES (99, 1, 4242, 'new', 'normal', 1, 1)",
                      "");
}

static void fk_done(void *arg, int rc)
{
    *(int *)arg = rc;
}

static void test_store_enforces_foreign_keys_after(void **state)
{
    fixture *f = *state;
    sb_store *st = NULL;
    assert_int_equal(sb_store_open(&st, NULL, f->dir), 0);
    int rc = 1;
    sb_store_submit(st, check_fk, fk_done, &rc);
    sb_store_flush(st);
    sb_store_close(st);
    assert_int_equal(rc, SB_ECONFLICT);
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
    assert_int_equal(one_int(db, "SELECT count(*) FROM ticket WHERE number = 99"), 0);
    sqlite3_close(db);
}

static void test_dangling_reference_refused(void **state)
{
    fixture *f = *state;
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
    /* made behind the foreign keys' back, as a damaged file would have it */
    assert_int_equal(exec(db, "PRAGMA foreign_keys=OFF; UPDATE message SET channel_id = 4242 WHERE id = 2"), SQLITE_OK);
    sqlite3_close(db);
    int version = 0;
    assert_int_not_equal(sb_store_migrate(f->dir, &version), 0);
    assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
    assert_int_equal(one_int(db, "PRAGMA user_version"), f->phone_version - 1);
    assert_int_equal(one_int(db, "SELECT count(*) FROM sqlite_master WHERE name = 'channel_new'"), 0);
    assert_int_equal(one_int(db, "SELECT count(*) FROM channel"), 2);
    sqlite3_close(db);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_phone_kind_keeps_references, setup, teardown),
        cmocka_unit_test_setup_teardown(test_store_enforces_foreign_keys_after, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dangling_reference_refused, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
