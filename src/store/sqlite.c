/* sqlite.c - SQLite backend of the store.
 *
 * With a loop (the daemon), one *store thread* owns the write connection.
 * The loop submits ops to a queue; the store thread takes everything queued,
 * runs it as one batch transaction (a savepoint per op), indexes text, and
 * commits it (group commit). The commit writes the WAL but does not wait
 * for the disk (synchronous=NORMAL): the batch goes to the *sync thread*,
 * which fdatasync()s the WAL file and only then hands the results back and
 * wakes the loop (uv_async), which calls the completions in submission
 * order. So nothing is answered before it is on disk, exactly as with
 * synchronous=FULL, but the store thread runs the next batch while the
 * previous one is being flushed, and one flush can cover several batches.
 * Meanwhile the loop keeps reading requests, so the next batch grows
 * instead of anyone waiting on the disk.
 *
 * Read-only scripts (sb_store_read) run on a third thread, the *reader*,
 * with a read-only connection of its own, each in a read transaction of
 * its own: SQLite's WAL gives it the last committed state while the store
 * thread goes on committing, so a year's report does not hold up the
 * messages that arrive meanwhile. The reader runs one script at a time.
 *
 * Without a loop (the CLI), ops run and commit at once on the caller's
 * thread, and reads run there too. WAL checkpoints run on the libuv thread
 * pool with their own connection; see wal_hook for how the WAL is kept from
 * growing, and what a long read does to it. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/clock.h"
#include "base/log.h"
#include "store/schema.h"
#include "store/store.h"

#define STMT_CACHE_SIZE  512 /* power of two */
#define CHECKPOINT_PAGES 8000
/* After a checkpoint held back by a reader, the WAL pages to wait for
 * before trying again (not at every commit: each try walks the whole WAL). */
#define CHECKPOINT_RETRY_PAGES 1000
/* The reader's page cache (KiB): reports stream through their tables once,
 * and the operating system caches the file anyway. */
#define READER_CACHE_KIB 16384

struct sb_stmt {
    sqlite3_stmt *s;
    sb_tx *tx;
};

typedef struct cached_stmt {
    const char *key;
    sb_stmt stmt;
} cached_stmt;

typedef struct op {
    sb_tx_fn run;
    sb_done_fn done;
    void *arg;
    int rc;
} op;

typedef struct op_list {
    op *v;
    size_t n, cap;
} op_list;

/* A transaction on one connection, with that connection's statement
 * cache (a cached statement belongs to the connection that prepared it). */
struct sb_tx {
    sb_store *st;
    sqlite3 *db;
    cached_stmt *cache;
    int64_t now;
    int64_t changes;
};

typedef struct garbage_item {
    void (*fn)(void *);
    void *p;
} garbage_item;

struct sb_store {
    sqlite3 *db;      /* the store thread's (or the CLI's) */
    sqlite3 *ckpt_db; /* used only by the checkpoint worker */
    sqlite3 *read_db; /* the reader thread's, opened there on first use */
    uv_loop_t *loop;
    char *path;
    int schema_version;
    cached_stmt cache[STMT_CACHE_SIZE];
    sb_tx tx;
    cached_stmt read_cache[STMT_CACHE_SIZE]; /* read_db's */
    sb_tx read_tx;
    int ckpt_at; /* store thread: WAL pages at which wal_hook asks for a checkpoint */
    sb_tx_fn precommit;
    void *precommit_arg;

    /* shared between the loop and the store thread, under mu */
    pthread_mutex_t mu;
    pthread_cond_t work_cv; /* ops queued or stop */
    pthread_cond_t idle_cv; /* a batch finished */
    op_list queued;         /* submitted, not yet taken */
    op_list syncing;        /* committed, waiting for the WAL flush */
    op_list finished;       /* run and durable (or failed), completions due */
    size_t in_flight;       /* taken by the store thread, not yet finished */
    bool executing;         /* the store thread is running a batch */
    pthread_cond_t sync_cv; /* batches to flush, or sync_stop */
    bool sync_stop;
    garbage_item *garbage; /* made on the store thread, freed there */
    size_t ngarbage, cap_garbage;
    bool stop;
    bool ckpt_wanted;       /* store thread asks the loop to start a checkpoint */
    bool ckpt_running;      /* a background checkpoint is queued or running */
    bool ckpt_finish;       /* one ended: the next commit finishes it cheaply */
    bool ckpt_blocked;      /* one ended short: a reader still needs WAL frames */
    pthread_cond_t read_cv; /* reads queued or read_stop */
    op_list reads;          /* submitted reads, not yet taken */
    size_t reads_in_flight; /* taken by the reader, completion not yet due */
    bool read_stop;
    sb_store_stats stats;

    /* loop side */
    bool threaded;
    bool reader_started;
    pthread_t thread;
    pthread_t sync_thread;
    pthread_t read_thread;
    int wal_fd; /* the sync thread's; -1 until opened */
    char *wal_path;
    uv_async_t *async;     /* heap: freed by its close callback */
    uv_prepare_t *prepare; /* before sleep: hands the iteration's ops over */
    uv_work_t ckpt_work;
    int ckpt_rc;
    bool ckpt_short; /* the worker's pass could not copy every frame */
    bool flushing;
};

static int map_rc(int rc)
{
    switch (rc & 0xff) {
    case SQLITE_OK:
    case SQLITE_DONE:
    case SQLITE_ROW: return 0;
    case SQLITE_CONSTRAINT: return SB_ECONFLICT;
    case SQLITE_BUSY:
    case SQLITE_LOCKED: return SB_EAGAIN;
    case SQLITE_NOMEM: return SB_ENOMEM;
    case SQLITE_TOOBIG: return SB_ETOOBIG;
    case SQLITE_READONLY: return SB_EPERM; /* a write inside sb_store_read */
    default: return SB_EIO;
    }
}

static int exec_simple(sqlite3 *db, const char *sql)
{
    char *err = NULL;
    int rc = sqlite3_exec(db, sql, NULL, NULL, &err);
    if (rc != SQLITE_OK) {
        sb_log(SB_ERROR, "store", "sql failed rc=%d err=\"%s\"", rc, err ? err : "?");
        sqlite3_free(err);
        return map_rc(rc);
    }
    return 0;
}

static int wal_hook(void *ud, sqlite3 *db, const char *name, int pages);

static int open_conn(const char *path, sqlite3 **out)
{
    sqlite3 *db = NULL;
    int rc = sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        sb_log(SB_ERROR, "store", "open failed path=%s err=\"%s\"", path, db ? sqlite3_errmsg(db) : "?");
        sqlite3_close(db);
        return SB_EIO;
    }
    sqlite3_busy_timeout(db, 10000);
    *out = db;
    return 0;
}

static char *db_path(const char *data_dir)
{
    size_t n = strlen(data_dir) + 32;
    char *p = sb_xmalloc(n);
    snprintf(p, n, "%s/switchboard.db", data_dir);
    return p;
}

/* PRAGMA foreign_key_check inside migration `v`'s transaction: SB_EIO
 * (and the first offending row logged) if any reference dangles. */
static int foreign_keys_intact(sqlite3 *db, int v)
{
    sqlite3_stmt *s = NULL;
    if (sqlite3_prepare_v2(db, "PRAGMA foreign_key_check", -1, &s, NULL) != SQLITE_OK) {
        sb_log(SB_ERROR, "store", "migration %d: foreign_key_check failed err=\"%s\"", v, sqlite3_errmsg(db));
        return SB_EIO;
    }
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW)
        sb_log(SB_ERROR, "store", "migration %d leaves a dangling reference table=%s rowid=%lld parent=%s", v,
               (const char *)sqlite3_column_text(s, 0), (long long)sqlite3_column_int64(s, 1),
               (const char *)sqlite3_column_text(s, 2));
    sqlite3_finalize(s);
    return rc == SQLITE_DONE ? 0 : SB_EIO;
}

static int apply_migrations(sqlite3 *db, int *version)
{
    sqlite3_stmt *s = NULL;
    int cur = 0;
    if (sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &s, NULL) == SQLITE_OK && sqlite3_step(s) == SQLITE_ROW)
        cur = sqlite3_column_int(s, 0);
    sqlite3_finalize(s);
    int n = sb_schema_count();
    if (cur > n) {
        sb_log(SB_ERROR, "store", "database schema version %d is newer than this binary (%d)", cur, n);
        return SB_EINVAL;
    }
    if (cur == n) {
        if (version != NULL)
            *version = n;
        return 0;
    }
    /* A migration that rebuilds a table others refer to (SQLite's 12-step
     * procedure) needs foreign keys off, which only takes effect outside a
     * transaction; each migration then proves it left no dangling
     * reference before it commits. */
    int rc = exec_simple(db, "PRAGMA foreign_keys=OFF");
    for (int v = cur + 1; rc == 0 && v <= n; v++) {
        rc = exec_simple(db, "BEGIN IMMEDIATE");
        if (rc == 0)
            rc = exec_simple(db, sb_schema_migration(v));
        if (rc == 0)
            rc = foreign_keys_intact(db, v);
        if (rc == 0) {
            char sql[64];
            snprintf(sql, sizeof sql, "PRAGMA user_version=%d", v);
            rc = exec_simple(db, sql);
        }
        if (rc == 0)
            rc = exec_simple(db, "COMMIT");
        if (rc != 0) {
            exec_simple(db, "ROLLBACK");
            sb_log(SB_ERROR, "store", "migration %d failed", v);
            break;
        }
        sb_log(SB_INFO, "store", "migrated schema to version %d", v);
    }
    int on = exec_simple(db, "PRAGMA foreign_keys=ON");
    if (rc == 0)
        rc = on;
    if (rc == 0 && version != NULL)
        *version = n;
    return rc;
}

static sb_stmt *cache_get(sb_tx *tx, const char *sql)
{
    uintptr_t h = (uintptr_t)sql;
    h ^= h >> 17;
    h *= 0x9E3779B97F4A7C15ull;
    size_t i = (size_t)(h >> 40) & (STMT_CACHE_SIZE - 1);
    for (size_t n = 0; n < STMT_CACHE_SIZE; n++, i = (i + 1) & (STMT_CACHE_SIZE - 1)) {
        cached_stmt *c = &tx->cache[i];
        if (c->key == sql)
            return &c->stmt;
        if (c->key == NULL) {
            int rc = sqlite3_prepare_v3(tx->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &c->stmt.s, NULL);
            if (rc != SQLITE_OK) {
                sb_log(SB_ERROR, "store", "prepare failed err=\"%s\" sql=\"%.80s\"", sqlite3_errmsg(tx->db), sql);
                c->stmt.s = NULL;
                return NULL;
            }
            c->key = sql;
            c->stmt.tx = tx;
            return &c->stmt;
        }
    }
    SB_ASSERT(!"statement cache full");
    return NULL;
}

static int bind_args(sqlite3_stmt *s, const char *fmt, va_list ap)
{
    int idx = 1;
    for (const char *f = fmt; f != NULL && *f != '\0'; f++, idx++) {
        int rc = SQLITE_OK;
        switch (*f) {
        case 'i': rc = sqlite3_bind_int64(s, idx, va_arg(ap, int64_t)); break;
        case 'I': {
            int64_t v = va_arg(ap, int64_t);
            rc = v == 0 ? sqlite3_bind_null(s, idx) : sqlite3_bind_int64(s, idx, v);
            break;
        }
        case 'b': rc = sqlite3_bind_int(s, idx, va_arg(ap, int) ? 1 : 0); break;
        case 't': {
            const char *z = va_arg(ap, const char *);
            rc = z == NULL ? sqlite3_bind_null(s, idx) : sqlite3_bind_text(s, idx, z, -1, SQLITE_STATIC);
            break;
        }
        case 's': {
            sb_str v = va_arg(ap, sb_str);
            rc = v.p == NULL ? sqlite3_bind_null(s, idx) : sqlite3_bind_text(s, idx, v.p, (int)v.len, SQLITE_STATIC);
            break;
        }
        default: SB_ASSERT(!"bad bind format");
        }
        if (rc != SQLITE_OK)
            return map_rc(rc);
    }
    return 0;
}

static sb_stmt *vquery(sb_tx *tx, const char *sql, const char *fmt, va_list ap)
{
    sb_stmt *stmt = cache_get(tx, sql);
    if (stmt == NULL)
        return NULL;
    sqlite3_reset(stmt->s);
    sqlite3_clear_bindings(stmt->s);
    if (bind_args(stmt->s, fmt, ap) != 0) {
        sb_log(SB_ERROR, "store", "bind failed sql=\"%.80s\"", sql);
        return NULL;
    }
    return stmt;
}

sb_stmt *sb_tx_query(sb_tx *tx, const char *sql, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    sb_stmt *s = vquery(tx, sql, fmt, ap);
    va_end(ap);
    return s;
}

int sb_stmt_step(sb_stmt *st)
{
    int rc = sqlite3_step(st->s);
    if (rc == SQLITE_ROW)
        return 1;
    if (rc == SQLITE_DONE) {
        st->tx->changes = sqlite3_changes64(st->tx->db);
        return 0;
    }
    int mapped = map_rc(rc);
    if (mapped != SB_ECONFLICT)
        sb_log(SB_ERROR, "store", "step failed rc=%d err=\"%s\"", rc, sqlite3_errmsg(st->tx->db));
    return mapped;
}

int64_t sb_stmt_int(sb_stmt *st, int col)
{
    return sqlite3_column_int64(st->s, col);
}

const char *sb_stmt_text(sb_stmt *st, int col)
{
    return (const char *)sqlite3_column_text(st->s, col);
}

bool sb_stmt_isnull(sb_stmt *st, int col)
{
    return sqlite3_column_type(st->s, col) == SQLITE_NULL;
}

void sb_stmt_end(sb_stmt *st)
{
    if (st != NULL)
        sqlite3_reset(st->s);
}

/* Runs a statement to completion; 0 or a negative SB_E*. */
static int vexec(sb_tx *tx, const char *sql, const char *fmt, va_list ap)
{
    sb_stmt *s = vquery(tx, sql, fmt, ap);
    if (s == NULL)
        return SB_EIO;
    int rc;
    while ((rc = sb_stmt_step(s)) == 1)
        ;
    sb_stmt_end(s);
    return rc;
}

int sb_tx_exec(sb_tx *tx, const char *sql, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = vexec(tx, sql, fmt, ap);
    va_end(ap);
    return rc;
}

int sb_tx_int(sb_tx *tx, int64_t *out, const char *sql, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    sb_stmt *s = vquery(tx, sql, fmt, ap);
    va_end(ap);
    if (s == NULL)
        return SB_EIO;
    int rc = sb_stmt_step(s);
    if (rc == 1)
        *out = sb_stmt_int(s, 0);
    sb_stmt_end(s);
    return rc;
}

int sb_tx_text(sb_tx *tx, char *out, size_t cap, const char *sql, const char *fmt, ...)
{
    out[0] = '\0';
    va_list ap;
    va_start(ap, fmt);
    sb_stmt *s = vquery(tx, sql, fmt, ap);
    va_end(ap);
    if (s == NULL)
        return SB_EIO;
    int rc = sb_stmt_step(s);
    if (rc == 1 && sb_stmt_text(s, 0) != NULL)
        snprintf(out, cap, "%s", sb_stmt_text(s, 0));
    sb_stmt_end(s);
    return rc < 0 ? rc : 0;
}

int sb_tx_insert(sb_tx *tx, int64_t *id, const char *sql, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = vexec(tx, sql, fmt, ap);
    va_end(ap);
    if (rc == 0)
        *id = sqlite3_last_insert_rowid(tx->db);
    return rc;
}

int64_t sb_tx_changes(sb_tx *tx)
{
    return tx->changes;
}

int64_t sb_tx_now(sb_tx *tx)
{
    return tx->now;
}

static void free_handle(uv_handle_t *h)
{
    free(h);
}

static void list_push(op_list *l, op o)
{
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 64;
        l->v = sb_xrealloc(l->v, l->cap * sizeof *l->v);
    }
    l->v[l->n++] = o;
}

static int run_cached(sb_tx *tx, const char *sql)
{
    sb_stmt *s = cache_get(tx, sql);
    if (s == NULL)
        return SB_EIO;
    int rc = sqlite3_step(s->s);
    sqlite3_reset(s->s);
    return rc == SQLITE_DONE || rc == SQLITE_ROW ? 0 : map_rc(rc);
}

static const char SQL_BEGIN[] = "BEGIN IMMEDIATE";
static const char SQL_COMMIT[] = "COMMIT";
static const char SQL_ROLLBACK[] = "ROLLBACK";
static const char SQL_SAVEPOINT[] = "SAVEPOINT sbop";
static const char SQL_RELEASE[] = "RELEASE sbop";
static const char SQL_ROLLBACK_TO[] = "ROLLBACK TO sbop";

/* Runs ops[0..n) as one transaction and commits it; sets each op's rc. */
static void execute_batch(sb_store *st, op *ops, size_t n)
{
    uint64_t t0 = sb_clock_mono_us();
    int rc = run_cached(&st->tx, SQL_BEGIN);
    bool failed = rc != 0;
    for (size_t i = 0; i < n; i++) {
        op *o = &ops[i];
        if (failed) {
            o->rc = rc == SB_EAGAIN ? SB_EAGAIN : SB_EIO;
            continue;
        }
        o->rc = run_cached(&st->tx, SQL_SAVEPOINT);
        if (o->rc != 0) {
            failed = true;
            continue;
        }
        st->tx.now = sb_clock_wall_ms();
        st->tx.changes = 0;
        o->rc = o->run(&st->tx, o->arg);
        if (o->rc != 0 && run_cached(&st->tx, SQL_ROLLBACK_TO) != 0)
            failed = true;
        if (run_cached(&st->tx, SQL_RELEASE) != 0)
            failed = true;
    }
    if (rc == 0) {
        int crc = failed ? SB_EIO : 0;
        if (crc == 0 && st->precommit != NULL) {
            st->tx.now = sb_clock_wall_ms();
            crc = st->precommit(&st->tx, st->precommit_arg);
        }
        if (crc == 0)
            crc = run_cached(&st->tx, SQL_COMMIT);
        if (crc != 0) {
            sb_log(SB_ERROR, "store", "commit failed rc=%d ops=%zu err=\"%s\"", crc, n, sqlite3_errmsg(st->db));
            run_cached(&st->tx, SQL_ROLLBACK);
            for (size_t i = 0; i < n; i++)
                if (ops[i].rc == 0)
                    ops[i].rc = SB_EIO;
        }
        pthread_mutex_lock(&st->mu);
        st->stats.commits++;
        if (crc != 0)
            st->stats.commit_failures++;
        pthread_mutex_unlock(&st->mu);
    } else {
        sb_log(SB_ERROR, "store", "cannot begin a transaction rc=%d", rc);
    }
    pthread_mutex_lock(&st->mu);
    st->stats.ops += n;
    for (size_t i = 0; i < n; i++)
        if (ops[i].rc != 0)
            st->stats.ops_failed++;
    st->stats.last_commit_us = sb_clock_mono_us() - t0;
    if (n > st->stats.max_batch)
        st->stats.max_batch = n;
    pthread_mutex_unlock(&st->mu);
}

/* With mu held: waits until `from` has ops (false once it is empty and
 * *stop is set), then moves them to *take and leaves `from` the spare
 * array (emptied), so the two arrays are reused turn about. */
static bool take_ops(sb_store *st, op_list *from, pthread_cond_t *cv, const bool *stop, op_list *spare, op_list *take)
{
    while (!*stop && from->n == 0)
        pthread_cond_wait(cv, &st->mu);
    if (from->n == 0)
        return false;
    *take = *from;
    *from = *spare;
    from->n = 0;
    return true;
}

static void *store_thread(void *arg)
{
    sb_store *st = arg;
    op_list batch = {0}, take;
    pthread_mutex_lock(&st->mu);
    while (take_ops(st, &st->queued, &st->work_cv, &st->stop, &batch, &take)) {
        st->in_flight += take.n;
        st->executing = true;
        garbage_item *garbage = st->garbage;
        size_t ngarbage = st->ngarbage;
        st->garbage = NULL;
        st->ngarbage = st->cap_garbage = 0;
        pthread_mutex_unlock(&st->mu);

        for (size_t i = 0; i < ngarbage; i++)
            garbage[i].fn(garbage[i].p);
        free(garbage);

        execute_batch(st, take.v, take.n);

        pthread_mutex_lock(&st->mu);
        for (size_t i = 0; i < take.n; i++)
            list_push(&st->syncing, take.v[i]);
        st->executing = false;
        batch = take;
        pthread_cond_signal(&st->sync_cv);
    }
    pthread_mutex_unlock(&st->mu);
    free(batch.v);
    return NULL;
}

/* fdatasync() of the WAL file through a descriptor of our own: it flushes
 * every write to that file made before the call, whoever made it. SQLite
 * keeps the file (same inode) while its connections are open; the check
 * below only guards against a file replaced behind our back. */
static int sync_wal(sb_store *st)
{
    struct stat a, b;
    if (st->wal_fd >= 0 &&
        (stat(st->wal_path, &a) != 0 || fstat(st->wal_fd, &b) != 0 || a.st_ino != b.st_ino || a.st_dev != b.st_dev)) {
        close(st->wal_fd);
        st->wal_fd = -1;
    }
    if (st->wal_fd < 0) {
        st->wal_fd = open(st->wal_path, O_RDONLY | O_CLOEXEC);
        if (st->wal_fd < 0) {
            sb_log(SB_ERROR, "store", "cannot open the WAL for syncing path=%s errno=%d", st->wal_path, errno);
            return SB_EIO;
        }
    }
    if (fdatasync(st->wal_fd) != 0) {
        sb_log(SB_ERROR, "store", "WAL fdatasync failed errno=%d", errno);
        return SB_EIO;
    }
    return 0;
}

static void *sync_thread(void *arg)
{
    sb_store *st = arg;
    op_list spare = {0}, take;
    pthread_mutex_lock(&st->mu);
    while (take_ops(st, &st->syncing, &st->sync_cv, &st->sync_stop, &spare, &take)) {
        pthread_mutex_unlock(&st->mu);

        uint64_t t0 = sb_clock_mono_us();
        int rc = sync_wal(st);
        uint64_t took = sb_clock_mono_us() - t0;

        pthread_mutex_lock(&st->mu);
        st->stats.syncs++;
        st->stats.last_sync_us = took;
        for (size_t i = 0; i < take.n; i++) {
            if (rc != 0 && take.v[i].rc == 0)
                take.v[i].rc = SB_EIO; /* committed but maybe not durable: nothing is promised */
            list_push(&st->finished, take.v[i]);
        }
        st->in_flight -= take.n;
        spare = take;
        pthread_cond_broadcast(&st->idle_cv);
        uv_async_send(st->async);
    }
    pthread_mutex_unlock(&st->mu);
    free(spare.v);
    return NULL;
}

/* ---- the reader ---- */

static const char SQL_BEGIN_READ[] = "BEGIN";
static const char SQL_END_READ[] = "ROLLBACK";

/* Opens the reader's connection: read-only, so that a write attempted in a
 * read script fails (SQLITE_READONLY -> SB_EPERM) instead of taking the
 * write lock from the store thread. */
static int open_reader(sb_store *st)
{
    sqlite3 *db = NULL;
    int rc = sqlite3_open_v2(st->path, &db, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        sb_log(SB_ERROR, "store", "cannot open the reader path=%s err=\"%s\"", st->path, db ? sqlite3_errmsg(db) : "?");
        sqlite3_close(db);
        return SB_EIO;
    }
    sqlite3_busy_timeout(db, 10000);
    char sql[80];
    snprintf(sql, sizeof sql, "PRAGMA temp_store=MEMORY; PRAGMA cache_size=-%d", READER_CACHE_KIB);
    rc = exec_simple(db, sql);
    if (rc != 0) {
        sqlite3_close(db);
        return rc;
    }
    st->read_db = db;
    st->read_tx.db = db;
    return 0;
}

/* Runs one read script in a read transaction of its own on tx's
 * connection. The snapshot is taken by the script's first statement and
 * kept to its end, however many commits the store thread makes meanwhile. */
static int execute_read(sb_tx *tx, op *o)
{
    int rc = run_cached(tx, SQL_BEGIN_READ);
    if (rc != 0)
        return rc;
    tx->now = sb_clock_wall_ms();
    tx->changes = 0;
    rc = o->run(tx, o->arg);
    /* Nothing to keep: a write the script tried has already failed. */
    int erc = run_cached(tx, SQL_END_READ);
    if (erc != 0 && rc == 0)
        rc = erc;
    return rc;
}

/* The reader thread: one read at a time, each completed (handed to the loop)
 * as soon as it ends, so a short read queued behind a long one waits for
 * that one only. */
static void *read_thread(void *arg)
{
    sb_store *st = arg;
    pthread_mutex_lock(&st->mu);
    for (;;) {
        while (!st->read_stop && st->reads.n == 0)
            pthread_cond_wait(&st->read_cv, &st->mu);
        if (st->reads.n == 0)
            break;
        op o = st->reads.v[0];
        memmove(st->reads.v, st->reads.v + 1, (st->reads.n - 1) * sizeof *st->reads.v);
        st->reads.n--;
        st->reads_in_flight++;
        pthread_mutex_unlock(&st->mu);

        uint64_t t0 = sb_clock_mono_us();
        o.rc = st->read_db != NULL ? 0 : open_reader(st);
        if (o.rc == 0)
            o.rc = execute_read(&st->read_tx, &o);
        uint64_t took = sb_clock_mono_us() - t0;

        pthread_mutex_lock(&st->mu);
        st->stats.reads++;
        if (o.rc != 0)
            st->stats.reads_failed++;
        st->stats.last_read_us = took;
        list_push(&st->finished, o);
        st->reads_in_flight--;
        pthread_cond_broadcast(&st->idle_cv);
        uv_async_send(st->async);
    }
    pthread_mutex_unlock(&st->mu);
    for (size_t i = 0; i < STMT_CACHE_SIZE; i++)
        sqlite3_finalize(st->read_cache[i].stmt.s);
    sqlite3_close(st->read_db);
    st->read_db = NULL;
    return NULL;
}

/* Stops the reader after the reads already submitted (loop thread). */
static void stop_reader(sb_store *st)
{
    if (!st->reader_started)
        return;
    pthread_mutex_lock(&st->mu);
    st->read_stop = true;
    pthread_cond_signal(&st->read_cv);
    pthread_mutex_unlock(&st->mu);
    pthread_join(st->read_thread, NULL);
}

/* ---- checkpoints ---- */

static void ckpt_work(uv_work_t *w)
{
    sb_store *st = w->data;
    int log_pages = 0, ckpt_pages = 0;
    st->ckpt_rc = sqlite3_wal_checkpoint_v2(st->ckpt_db, NULL, SQLITE_CHECKPOINT_PASSIVE, &log_pages, &ckpt_pages);
    st->ckpt_short = st->ckpt_rc == SQLITE_BUSY || (st->ckpt_rc == SQLITE_OK && ckpt_pages < log_pages);
}

static void ckpt_after(uv_work_t *w, int status)
{
    sb_store *st = w->data;
    if (st->ckpt_rc != SQLITE_OK && st->ckpt_rc != SQLITE_BUSY)
        sb_log(SB_WARN, "store", "checkpoint failed rc=%d", st->ckpt_rc);
    pthread_mutex_lock(&st->mu);
    st->ckpt_running = false;
    /* Held back by a reader: what it left is the bulk of the WAL, to be
     * copied by another pass here, not by the store thread. */
    st->ckpt_finish = !st->ckpt_short;
    st->ckpt_blocked = st->ckpt_short;
    st->stats.checkpoints++;
    pthread_mutex_unlock(&st->mu);
}

/* Calls the completions of finished ops, in submission order. */
static void drain(sb_store *st)
{
    pthread_mutex_lock(&st->mu);
    op_list done = st->finished;
    st->finished = (op_list){0};
    bool start_ckpt = st->ckpt_wanted && !st->ckpt_running && st->loop != NULL;
    if (start_ckpt) {
        st->ckpt_wanted = false;
        st->ckpt_running = true;
    }
    pthread_mutex_unlock(&st->mu);
    if (start_ckpt) {
        st->ckpt_work.data = st;
        uv_queue_work(st->loop, &st->ckpt_work, ckpt_work, ckpt_after);
    }
    for (size_t i = 0; i < done.n; i++)
        if (done.v[i].done != NULL)
            done.v[i].done(done.v[i].arg, done.v[i].rc);
    free(done.v);
}

static void on_prepare(uv_prepare_t *h);

static void on_async(uv_async_t *h)
{
    drain(h->data);
}

/* Called on the store thread after each commit with the WAL size in pages.
 * The bulk of a checkpoint runs on the thread pool; but a writer that never
 * pauses keeps appending meanwhile, so the WAL could never start over.
 * Therefore, once a background pass has ended, the next commit over the
 * threshold finishes the job here: only the frames written since that pass
 * are copied, and the next transaction restarts the WAL from its start.
 *
 * A read transaction of the reader (sb_store_read) pins the frames
 * committed after its snapshot: no checkpoint may copy them, and the WAL
 * cannot restart, until it ends. Passive checkpoints never wait for it;
 * they copy what they may and report the rest. So while a read is open the
 * WAL grows by whatever is committed meanwhile; a pass that ended short is
 * retried on the thread pool every CHECKPOINT_RETRY_PAGES (each try walks
 * the whole unchecked WAL), and the store thread finishes only after a
 * background pass that was not held back, so it never copies the backlog
 * itself. Once the read has ended, the next pass catches up and the WAL
 * restarts as before. */
static int wal_hook(void *ud, sqlite3 *db, const char *name, int pages)
{
    sb_store *st = ud;
    if (pages < CHECKPOINT_PAGES) {
        st->ckpt_at = CHECKPOINT_PAGES;
        return SQLITE_OK;
    }
    pthread_mutex_lock(&st->mu);
    bool running = st->ckpt_running, finish = st->ckpt_finish, blocked = st->ckpt_blocked;
    st->ckpt_finish = false;
    st->ckpt_blocked = false;
    pthread_mutex_unlock(&st->mu);
    if (running)
        return SQLITE_OK;
    if (finish) {
        int log_pages = 0, done_pages = 0;
        int rc = sqlite3_wal_checkpoint_v2(db, NULL, SQLITE_CHECKPOINT_PASSIVE, &log_pages, &done_pages);
        pthread_mutex_lock(&st->mu);
        st->stats.checkpoints++;
        pthread_mutex_unlock(&st->mu);
        if (rc == SQLITE_OK && done_pages == log_pages)
            return SQLITE_OK;
        blocked = true; /* a reader began after the background pass */
    }
    if (blocked)
        st->ckpt_at = pages + CHECKPOINT_RETRY_PAGES;
    if (pages < st->ckpt_at)
        return SQLITE_OK;
    pthread_mutex_lock(&st->mu);
    st->ckpt_wanted = true; /* the loop starts it when it drains */
    pthread_mutex_unlock(&st->mu);
    return SQLITE_OK;
}

int sb_store_open(sb_store **out, uv_loop_t *loop, const char *data_dir)
{
    static bool configured;
    if (!configured) {
        /* Memory statistics cost a global mutex per allocation. */
        sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
        configured = true;
    }
    sb_store *st = sb_xcalloc(1, sizeof *st);
    st->loop = loop;
    st->path = db_path(data_dir);
    st->tx.st = st;
    st->tx.cache = st->cache;
    st->read_tx.st = st;
    st->read_tx.cache = st->read_cache;
    st->ckpt_at = CHECKPOINT_PAGES;
    pthread_mutex_init(&st->mu, NULL);
    pthread_cond_init(&st->work_cv, NULL);
    pthread_cond_init(&st->idle_cv, NULL);
    pthread_cond_init(&st->sync_cv, NULL);
    pthread_cond_init(&st->read_cv, NULL);
    st->wal_fd = -1;
    int rc = open_conn(st->path, &st->db);
    if (rc != 0)
        goto fail;
    st->tx.db = st->db;
    rc = exec_simple(st->db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; "
                             "PRAGMA foreign_keys=ON; PRAGMA temp_store=MEMORY; "
                             "PRAGMA cache_size=-65536");
    if (rc != 0)
        goto fail;
    rc = apply_migrations(st->db, &st->schema_version);
    if (rc != 0)
        goto fail;
    if (loop != NULL) {
        /* Commits only write the WAL; the sync thread flushes it before
         * anything is answered (see the top of this file). */
        rc = exec_simple(st->db, "PRAGMA synchronous=NORMAL");
        if (rc != 0)
            goto fail;
        size_t n = strlen(st->path) + 8;
        st->wal_path = sb_xmalloc(n);
        snprintf(st->wal_path, n, "%s-wal", st->path);
        sqlite3_wal_autocheckpoint(st->db, 0);
        sqlite3_wal_hook(st->db, wal_hook, st);
        rc = open_conn(st->path, &st->ckpt_db);
        if (rc != 0)
            goto fail;
        /* A connection opens the WAL only once it has read the database;
         * until then its checkpoints do nothing. */
        rc = exec_simple(st->ckpt_db, "SELECT count(*) FROM sqlite_master");
        if (rc != 0)
            goto fail;
        st->async = sb_xcalloc(1, sizeof *st->async);
        uv_async_init(loop, st->async, on_async);
        st->async->data = st;
        uv_unref((uv_handle_t *)st->async);
        st->prepare = sb_xcalloc(1, sizeof *st->prepare);
        uv_prepare_init(loop, st->prepare);
        st->prepare->data = st;
        uv_prepare_start(st->prepare, on_prepare);
        uv_unref((uv_handle_t *)st->prepare);
        if (pthread_create(&st->sync_thread, NULL, sync_thread, st) != 0) {
            uv_close((uv_handle_t *)st->async, free_handle);
            uv_close((uv_handle_t *)st->prepare, free_handle);
            rc = SB_EIO;
            goto fail;
        }
        if (pthread_create(&st->thread, NULL, store_thread, st) != 0) {
            pthread_mutex_lock(&st->mu);
            st->sync_stop = true;
            pthread_cond_signal(&st->sync_cv);
            pthread_mutex_unlock(&st->mu);
            pthread_join(st->sync_thread, NULL);
            uv_close((uv_handle_t *)st->async, free_handle);
            uv_close((uv_handle_t *)st->prepare, free_handle);
            rc = SB_EIO;
            goto fail;
        }
        st->threaded = true;
    }
    *out = st;
    return 0;
fail:
    sqlite3_close(st->db);
    sqlite3_close(st->ckpt_db);
    free(st->wal_path);
    free(st->path);
    free(st);
    return rc;
}

void sb_store_close(sb_store *st)
{
    if (st == NULL)
        return;
    sb_store_flush(st);
    if (st->threaded) {
        pthread_mutex_lock(&st->mu);
        st->stop = true;
        pthread_cond_signal(&st->work_cv);
        pthread_mutex_unlock(&st->mu);
        pthread_join(st->thread, NULL);
        pthread_mutex_lock(&st->mu);
        st->sync_stop = true;
        pthread_cond_signal(&st->sync_cv);
        pthread_mutex_unlock(&st->mu);
        pthread_join(st->sync_thread, NULL);
        /* Before the final checkpoint below, which waits for readers. */
        stop_reader(st);
        if (st->wal_fd >= 0)
            close(st->wal_fd);
        drain(st);
        uv_close((uv_handle_t *)st->async, free_handle);
        uv_prepare_stop(st->prepare);
        uv_close((uv_handle_t *)st->prepare, free_handle);
        /* A queued checkpoint holds ckpt_db; let the loop finish it. */
        for (;;) {
            pthread_mutex_lock(&st->mu);
            bool running = st->ckpt_running;
            pthread_mutex_unlock(&st->mu);
            if (!running)
                break;
            uv_run(st->loop, UV_RUN_ONCE);
        }
    }
    for (size_t i = 0; i < STMT_CACHE_SIZE; i++)
        sqlite3_finalize(st->cache[i].stmt.s);
    /* Leave an empty WAL behind for the next start. */
    sqlite3_wal_checkpoint_v2(st->db, NULL, SQLITE_CHECKPOINT_TRUNCATE, NULL, NULL);
    sqlite3_close(st->ckpt_db);
    sqlite3_close(st->db);
    pthread_mutex_destroy(&st->mu);
    pthread_cond_destroy(&st->work_cv);
    pthread_cond_destroy(&st->idle_cv);
    pthread_cond_destroy(&st->sync_cv);
    pthread_cond_destroy(&st->read_cv);
    for (size_t i = 0; i < st->ngarbage; i++)
        st->garbage[i].fn(st->garbage[i].p);
    free(st->garbage);
    free(st->queued.v);
    free(st->finished.v);
    free(st->syncing.v);
    free(st->reads.v);
    free(st->wal_path);
    free(st->path);
    free(st);
}

void sb_store_submit(sb_store *st, sb_tx_fn run, sb_done_fn done, void *arg)
{
    op o = {run, done, arg, 0};
    if (!st->threaded) {
        /* Command line: run and commit now; the completion follows in flush. */
        execute_batch(st, &o, 1);
        list_push(&st->finished, o);
        return;
    }
    /* Queued only: the loop's before-sleep hook wakes the store thread once
     * for everything this iteration produced (one batch, few wake-ups). */
    pthread_mutex_lock(&st->mu);
    list_push(&st->queued, o);
    pthread_mutex_unlock(&st->mu);
}

void sb_store_read(sb_store *st, sb_tx_fn run, sb_done_fn done, void *arg)
{
    op o = {run, done, arg, 0};
    if (!st->threaded) {
        /* Command line: on the one connection, kept from writing by
         * query_only (the same SQLITE_READONLY as the reader's). */
        o.rc = exec_simple(st->db, "PRAGMA query_only=ON");
        if (o.rc == 0)
            o.rc = execute_read(&st->tx, &o);
        int rc = exec_simple(st->db, "PRAGMA query_only=OFF");
        if (o.rc == 0)
            o.rc = rc;
        list_push(&st->finished, o);
        return;
    }
    if (!st->reader_started) {
        if (pthread_create(&st->read_thread, NULL, read_thread, st) != 0) {
            sb_log(SB_ERROR, "store", "cannot start the reader thread");
            o.rc = SB_EIO;
            pthread_mutex_lock(&st->mu);
            list_push(&st->finished, o);
            pthread_mutex_unlock(&st->mu);
            uv_async_send(st->async);
            return;
        }
        st->reader_started = true;
    }
    pthread_mutex_lock(&st->mu);
    list_push(&st->reads, o);
    pthread_cond_signal(&st->read_cv);
    pthread_mutex_unlock(&st->mu);
}

static void on_prepare(uv_prepare_t *h)
{
    sb_store *st = h->data;
    pthread_mutex_lock(&st->mu);
    if (st->queued.n > 0 && !st->executing)
        pthread_cond_signal(&st->work_cv);
    pthread_mutex_unlock(&st->mu);
}

void sb_store_free_later(sb_store *st, void *p)
{
    sb_store_release_later(st, free, p);
}

void sb_store_release_later(sb_store *st, void (*fn)(void *), void *p)
{
    if (p == NULL)
        return;
    if (!st->threaded) {
        fn(p);
        return;
    }
    pthread_mutex_lock(&st->mu);
    if (st->ngarbage == st->cap_garbage) {
        st->cap_garbage = st->cap_garbage ? st->cap_garbage * 2 : 256;
        st->garbage = sb_xrealloc(st->garbage, st->cap_garbage * sizeof *st->garbage);
    }
    st->garbage[st->ngarbage++] = (garbage_item){fn, p};
    pthread_mutex_unlock(&st->mu);
}

void sb_store_set_precommit(sb_store *st, sb_tx_fn fn, void *arg)
{
    st->precommit = fn;
    st->precommit_arg = arg;
}

void sb_store_flush(sb_store *st)
{
    if (st->flushing)
        return; /* a completion submitted more work: the outer loop waits for it */
    st->flushing = true;
    for (;;) {
        pthread_mutex_lock(&st->mu);
        if (st->threaded && st->queued.n > 0)
            pthread_cond_signal(&st->work_cv);
        while (st->threaded && (st->queued.n > 0 || st->in_flight > 0 || st->reads.n > 0 || st->reads_in_flight > 0))
            pthread_cond_wait(&st->idle_cv, &st->mu);
        bool more = st->finished.n > 0;
        pthread_mutex_unlock(&st->mu);
        if (!more)
            break;
        drain(st);
    }
    st->flushing = false;
}

size_t sb_store_pending(const sb_store *st)
{
    sb_store *m = (sb_store *)st;
    pthread_mutex_lock(&m->mu);
    size_t n = m->queued.n + m->in_flight;
    pthread_mutex_unlock(&m->mu);
    return n;
}

void sb_store_get_stats(const sb_store *st, sb_store_stats *out)
{
    sb_store *m = (sb_store *)st;
    pthread_mutex_lock(&m->mu);
    *out = m->stats;
    pthread_mutex_unlock(&m->mu);
}

int sb_store_schema_version(sb_store *st)
{
    return st->schema_version;
}

int sb_store_migrate(const char *data_dir, int *version)
{
    sb_store *st = NULL;
    int rc = sb_store_open(&st, NULL, data_dir);
    if (rc != 0)
        return rc;
    if (version != NULL)
        *version = sb_store_schema_version(st);
    sb_store_close(st);
    return 0;
}

int sb_store_backup(const char *data_dir, const char *path)
{
    char *src_path = db_path(data_dir);
    sqlite3 *src = NULL, *dst = NULL;
    int rc = open_conn(src_path, &src);
    free(src_path);
    if (rc != 0)
        return rc;
    rc = open_conn(path, &dst);
    if (rc != 0) {
        sqlite3_close(src);
        return rc;
    }
    sqlite3_backup *b = sqlite3_backup_init(dst, "main", src, "main");
    if (b == NULL) {
        sb_log(SB_ERROR, "store", "backup init failed err=\"%s\"", sqlite3_errmsg(dst));
        rc = SB_EIO;
    } else {
        int s;
        /* One step inside one read transaction: in WAL mode it does not block
         * the daemon's writer, and it cannot be restarted by its commits. */
        do {
            s = sqlite3_backup_step(b, -1);
            if (s == SQLITE_BUSY || s == SQLITE_LOCKED)
                sqlite3_sleep(10);
        } while (s == SQLITE_OK || s == SQLITE_BUSY || s == SQLITE_LOCKED);
        rc = s == SQLITE_DONE ? 0 : map_rc(s);
        sqlite3_backup_finish(b);
    }
    if (rc == 0)
        rc = exec_simple(dst, "PRAGMA journal_mode=DELETE");
    sqlite3_close(dst);
    sqlite3_close(src);
    return rc;
}
