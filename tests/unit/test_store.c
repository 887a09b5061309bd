/* test_store.c - read-only scripts (sb_store_read) on the reader thread:
 * snapshots, refused writes, reads and writes not waiting for each other,
 * shutdown, and the same calls without a loop (the CLI). Against a real
 * SQLite file; the loop is driven one iteration at a time, as the daemon's
 * would be. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/clock.h"
#include "store/store.h"

#define WAIT_MS 10000 /* generous: only a broken store waits this long */

/* A flag set by another thread, read under its mutex. */
typedef struct gate {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool entered; /* the script is waiting */
    bool open;    /* the script may go on */
} gate;

static void gate_init(gate *g)
{
    pthread_mutex_init(&g->mu, NULL);
    pthread_cond_init(&g->cv, NULL);
    g->entered = g->open = false;
}

static void gate_destroy(gate *g)
{
    pthread_mutex_destroy(&g->mu);
    pthread_cond_destroy(&g->cv);
}

/* In a script: says it got here, then waits until the test opens the gate. */
static void gate_wait(gate *g)
{
    pthread_mutex_lock(&g->mu);
    g->entered = true;
    while (!g->open)
        pthread_cond_wait(&g->cv, &g->mu);
    pthread_mutex_unlock(&g->mu);
}

static void gate_open(gate *g)
{
    pthread_mutex_lock(&g->mu);
    g->open = true;
    pthread_cond_broadcast(&g->cv);
    pthread_mutex_unlock(&g->mu);
}

static bool gate_entered(void *arg)
{
    gate *g = arg;
    pthread_mutex_lock(&g->mu);
    bool e = g->entered;
    pthread_mutex_unlock(&g->mu);
    return e;
}

typedef struct fixture {
    char dir[64];
    uv_loop_t loop;
    uv_timer_t tick; /* keeps the loop alive, so uv_run polls the store's async */
    sb_store *st;
    gate gate; /* opened by teardown too, so a failed test does not hang */
} fixture;

static void on_tick(uv_timer_t *t)
{
    (void)t;
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "/tmp/sbstoreXXXXXX");
    if (mkdtemp(f->dir) == NULL)
        return -1;
    gate_init(&f->gate);
    uv_loop_init(&f->loop);
    uv_timer_init(&f->loop, &f->tick);
    uv_timer_start(&f->tick, on_tick, 1, 1);
    if (sb_store_open(&f->st, &f->loop, f->dir) != 0)
        return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    gate_open(&f->gate);
    sb_store_close(f->st);
    gate_destroy(&f->gate);
    uv_timer_stop(&f->tick);
    uv_close((uv_handle_t *)&f->tick, NULL);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    uv_loop_close(&f->loop);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", f->dir);
    if (system(cmd) != 0)
        return -1;
    free(f);
    return 0;
}

typedef struct probe {
    int done, rc;
    int64_t count, count_again, now;
    gate *gate; /* NULL: do not wait */
} probe;

static bool probe_done(void *arg)
{
    return ((probe *)arg)->done > 0;
}

/* Runs loop iterations (the store's before-sleep hook and completions)
 * until cond(arg) holds; false after WAIT_MS. */
static bool run_until(fixture *f, bool (*cond)(void *), void *arg)
{
    uint64_t deadline = sb_clock_mono_us() + WAIT_MS * 1000ull;
    while (!cond(arg)) {
        if (sb_clock_mono_us() > deadline)
            return false;
        uv_run(&f->loop, UV_RUN_ONCE);
    }
    return true;
}

static void probe_done_cb(void *arg, int rc)
{
    probe *p = arg;
    p->done++;
    p->rc = rc;
}

static const char SQL_COUNT[] = "SELECT COUNT(*) FROM setting WHERE key LIKE 't.%'";

static int count_rows(sb_tx *tx, int64_t *out)
{
    return sb_tx_int(tx, out, SQL_COUNT, "") == 1 ? 0 : SB_EIO;
}

static int insert_row(sb_tx *tx, const char *key)
{
    return sb_tx_exec(tx, "INSERT INTO setting (key, value) VALUES (?, 'v')", "t", key);
}

static int write_one(sb_tx *tx, void *arg)
{
    probe *p = arg;
    int rc = insert_row(tx, "t.one");
    if (rc == 0)
        rc = count_rows(tx, &p->count);
    return rc;
}

static int write_two_after_gate(sb_tx *tx, void *arg)
{
    probe *p = arg;
    int rc = insert_row(tx, "t.two");
    if (rc == 0)
        rc = count_rows(tx, &p->count); /* the same statement text as the reads */
    if (p->gate != NULL)
        gate_wait(p->gate); /* the batch stays uncommitted meanwhile */
    return rc;
}

/* Counts, waits at the gate if any, counts again: both in one snapshot. */
static int read_count(sb_tx *tx, void *arg)
{
    probe *p = arg;
    p->now = sb_tx_now(tx);
    int rc = count_rows(tx, &p->count);
    if (p->gate != NULL)
        gate_wait(p->gate);
    if (rc == 0)
        rc = count_rows(tx, &p->count_again);
    return rc;
}

static int read_then_write(sb_tx *tx, void *arg)
{
    probe *p = arg;
    int rc = count_rows(tx, &p->count);
    if (rc != 0)
        return rc;
    return insert_row(tx, "t.sneaky");
}

static void commit_one(fixture *f)
{
    probe w = {0};
    sb_store_submit(f->st, write_one, probe_done_cb, &w);
    sb_store_flush(f->st);
    assert_int_equal(w.done, 1);
    assert_int_equal(w.rc, 0);
    assert_int_equal(w.count, 1);
}

static void test_read_sees_committed(void **state)
{
    fixture *f = *state;
    commit_one(f);
    probe r = {0};
    int64_t before = sb_clock_wall_ms();
    sb_store_read(f->st, read_count, probe_done_cb, &r);
    assert_true(run_until(f, probe_done, &r));
    assert_int_equal(r.rc, 0);
    assert_int_equal(r.count, 1);
    assert_true(r.now >= before && r.now <= sb_clock_wall_ms());
    sb_store_stats stats;
    sb_store_get_stats(f->st, &stats);
    assert_int_equal(stats.reads, 1);
    assert_int_equal(stats.reads_failed, 0);
}

/* A write batch held open on the store thread: a read meanwhile neither
 * waits for it nor sees its rows. The write ran the count statement first,
 * so a statement cache shared between the connections would hand the read
 * the writer's statement, which sees the uncommitted row. */
static void test_read_skips_uncommitted_batch(void **state)
{
    fixture *f = *state;
    commit_one(f);
    gate *g = &f->gate;
    probe w = {.gate = g}, r = {0};
    sb_store_submit(f->st, write_two_after_gate, probe_done_cb, &w);
    assert_true(run_until(f, gate_entered, g));
    assert_int_equal(w.count, 2); /* the writer sees its own row */

    sb_store_read(f->st, read_count, probe_done_cb, &r);
    assert_true(run_until(f, probe_done, &r)); /* while the store thread is busy */
    assert_int_equal(r.rc, 0);
    assert_int_equal(r.count, 1);
    assert_int_equal(w.done, 0);

    gate_open(g);
    assert_true(run_until(f, probe_done, &w));
    assert_int_equal(w.rc, 0);
    probe again = {0};
    sb_store_read(f->st, read_count, probe_done_cb, &again);
    assert_true(run_until(f, probe_done, &again));
    assert_int_equal(again.count, 2); /* committed now */
}

/* A read held open on the reader thread: a write submitted meanwhile
 * commits and completes; the read keeps its snapshot to its end. */
static void test_write_commits_during_read(void **state)
{
    fixture *f = *state;
    commit_one(f);
    gate *g = &f->gate;
    probe r = {.gate = g}, w = {0};
    sb_store_read(f->st, read_count, probe_done_cb, &r);
    assert_true(run_until(f, gate_entered, g));

    sb_store_submit(f->st, write_two_after_gate, probe_done_cb, &w);
    assert_true(run_until(f, probe_done, &w));
    assert_int_equal(w.rc, 0);
    assert_int_equal(w.count, 2);
    assert_int_equal(r.done, 0);

    gate_open(g);
    assert_true(run_until(f, probe_done, &r));
    assert_int_equal(r.rc, 0);
    assert_int_equal(r.count, 1);
    assert_int_equal(r.count_again, 1); /* one snapshot, whatever committed */
}

static void test_write_in_read_fails(void **state)
{
    fixture *f = *state;
    commit_one(f);
    probe bad = {0};
    sb_store_read(f->st, read_then_write, probe_done_cb, &bad);
    assert_true(run_until(f, probe_done, &bad));
    assert_int_equal(bad.rc, SB_EPERM);
    assert_int_equal(bad.count, 1);
    sb_store_stats stats;
    sb_store_get_stats(f->st, &stats);
    assert_int_equal(stats.reads_failed, 1);

    /* Nothing was written, and both sides go on working. */
    probe r = {0}, w = {0};
    sb_store_read(f->st, read_count, probe_done_cb, &r);
    assert_true(run_until(f, probe_done, &r));
    assert_int_equal(r.rc, 0);
    assert_int_equal(r.count, 1);
    sb_store_submit(f->st, write_two_after_gate, probe_done_cb, &w);
    sb_store_flush(f->st);
    assert_int_equal(w.rc, 0);
    assert_int_equal(w.count, 2);
}

/* Reads run one at a time, in order, each completed as soon as it ends. */
static void test_reads_in_order(void **state)
{
    fixture *f = *state;
    commit_one(f);
    gate *g = &f->gate;
    probe first = {.gate = g}, second = {0};
    sb_store_read(f->st, read_count, probe_done_cb, &first);
    sb_store_read(f->st, read_count, probe_done_cb, &second);
    assert_true(run_until(f, gate_entered, g));
    for (int i = 0; i < 20; i++)
        uv_run(&f->loop, UV_RUN_ONCE);
    assert_int_equal(second.done, 0); /* one reader: waits for the first */
    gate_open(g);
    assert_true(run_until(f, probe_done, &second));
    assert_int_equal(first.done, 1);
    assert_int_equal(second.rc, 0);
}

/* Closing finishes the reads already submitted (their completions run). */
static void test_close_finishes_reads(void **state)
{
    fixture *f = *state;
    commit_one(f);
    probe r1 = {0}, r2 = {0};
    sb_store_read(f->st, read_count, probe_done_cb, &r1);
    sb_store_read(f->st, read_count, probe_done_cb, &r2);
    sb_store_close(f->st);
    f->st = NULL;
    assert_int_equal(r1.done, 1);
    assert_int_equal(r2.done, 1);
    assert_int_equal(r2.count, 1);
    assert_int_equal(sb_store_open(&f->st, &f->loop, f->dir), 0);
}

/* Without a loop (the CLI) a read runs at once on the one connection,
 * which refuses writes only while it runs. */
static void test_read_without_loop(void **state)
{
    fixture *f = *state;
    commit_one(f);
    sb_store_close(f->st);
    f->st = NULL;
    sb_store *st = NULL;
    assert_int_equal(sb_store_open(&st, NULL, f->dir), 0);
    probe r = {0}, bad = {0}, w = {0};
    sb_store_read(st, read_count, probe_done_cb, &r);
    sb_store_read(st, read_then_write, probe_done_cb, &bad);
    sb_store_flush(st);
    assert_int_equal(r.done, 1);
    assert_int_equal(r.rc, 0);
    assert_int_equal(r.count, 1);
    assert_int_equal(bad.done, 1);
    assert_int_equal(bad.rc, SB_EPERM);
    sb_store_submit(st, write_two_after_gate, probe_done_cb, &w);
    sb_store_flush(st);
    assert_int_equal(w.rc, 0);
    assert_int_equal(w.count, 2); /* the refused row is not there */
    sb_store_close(st);
    assert_int_equal(sb_store_open(&f->st, &f->loop, f->dir), 0);
}

/* ---- the WAL while a read is open ---- */

#define BIG_ROWS  10
#define BIG_BYTES (4 << 20) /* 10 rows: 40 MiB of WAL, over the 8000-page (31 MiB) checkpoint threshold */

typedef struct big_write {
    int done, rc;
    char key[32];
} big_write;

static int write_big(sb_tx *tx, void *arg)
{
    big_write *b = arg;
    return sb_tx_exec(tx, "INSERT INTO setting (key, value) VALUES (?, hex(randomblob(?)))", "ti", b->key,
                      (int64_t)(BIG_BYTES / 2));
}

static void big_done(void *arg, int rc)
{
    big_write *b = arg;
    b->done++;
    b->rc = rc;
}

static bool big_one_done(void *arg)
{
    return ((big_write *)arg)->done > 0;
}

static off_t wal_size(fixture *f)
{
    char path[128];
    snprintf(path, sizeof path, "%s/switchboard.db-wal", f->dir);
    struct stat sb;
    return stat(path, &sb) == 0 ? sb.st_size : -1;
}

static void write_bigs(fixture *f, const char *prefix)
{
    big_write v[BIG_ROWS];
    memset(v, 0, sizeof v);
    for (int i = 0; i < BIG_ROWS; i++) {
        snprintf(v[i].key, sizeof v[i].key, "%s.%d", prefix, i);
        sb_store_submit(f->st, write_big, big_done, &v[i]);
        assert_true(run_until(f, big_one_done, &v[i])); /* a commit each */
        assert_int_equal(v[i].rc, 0);
    }
}

/* A read holds its snapshot while 40 MiB are committed: the commits go on
 * (checkpoints cannot copy those frames and do not wait), and the WAL keeps
 * growing. Once the read has ended, checkpoints catch up and the WAL starts
 * over: 40 MiB more do not make it grow again. */
static void test_wal_during_long_read(void **state)
{
    fixture *f = *state;
    commit_one(f);
    gate *g = &f->gate;
    probe r = {.gate = g};
    sb_store_read(f->st, read_count, probe_done_cb, &r);
    assert_true(run_until(f, gate_entered, g));
    write_bigs(f, "t.a");
    off_t held = wal_size(f);
    assert_true(held >= (off_t)BIG_ROWS * BIG_BYTES);
    assert_int_equal(r.done, 0);
    gate_open(g);
    assert_true(run_until(f, probe_done, &r));
    assert_int_equal(r.count_again, 1);

    write_bigs(f, "t.b");
    sb_store_flush(f->st);
    off_t after = wal_size(f);
    /* Restarted after a background pass or two (each row is 1024 pages):
     * without a restart the file would have grown by all 40 MiB. */
    assert_true(after < held + (off_t)BIG_ROWS * BIG_BYTES * 3 / 4);
    sb_store_stats stats;
    sb_store_get_stats(f->st, &stats);
    assert_true(stats.checkpoints >= 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_read_sees_committed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_read_skips_uncommitted_batch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_write_commits_during_read, setup, teardown),
        cmocka_unit_test_setup_teardown(test_write_in_read_fails, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reads_in_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_close_finishes_reads, setup, teardown),
        cmocka_unit_test_setup_teardown(test_read_without_loop, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wal_during_long_read, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
