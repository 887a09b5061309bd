/* store.h - the durable store, shaped as submit -> completion.
 *
 * Callers never talk SQL connections directly. They submit a *transaction
 * script* (`run`) and a completion (`done`):
 *
 *     sb_store_submit(store, run, done, arg);
 *
 * `run(tx, arg)` executes inside a transaction and may only touch `tx` and
 * its own `arg`: it runs on the store's own thread. If it
 * returns non-zero, everything it wrote is rolled back and nothing else is
 * affected. `done(arg, rc)` runs later on the core loop, *after* the writes
 * are durable (committed with fsync): rc is run's result, or SB_EIO if the
 * commit failed. This is the one place where a reply promising durability
 * (HTTP 200, chat ack) may be released.
 *
 * The SQLite backend queues `run`; the loop's before-sleep hook wakes the
 * store thread, which runs everything queued as one batch transaction (a
 * savepoint per op), commits it with one fsync (group commit), and hands the
 * results back; the loop then calls the completions in submission order.
 * Without a loop (the CLI) an op runs and commits at once.
 *
 * Scripts that only read can go the other way instead:
 *
 *     sb_store_read(store, run, done, arg);
 *
 * runs `run` in a read transaction (a consistent snapshot of the last
 * commit) on the store's *reader* thread, with a read-only connection of
 * its own, so that a long read (a year's report) neither waits for nor
 * holds up the batches of the store thread. `done(arg, rc)` runs on the
 * loop when it ends. The reader takes one script at a time, in submission
 * order; reads are not ordered with respect to submitted writes (a read
 * sees a write once that write's completion has run, not before). A write
 * inside a read script fails with SB_EPERM. Without a loop it runs at once
 * on the one connection, which query_only keeps from writing.
 *
 * SQL uses `?` placeholders and types shared by SQLite and PostgreSQL.
 * Arguments are bound from a format string:
 *   'i' int64_t, 'I' int64_t or NULL when 0, 't' const char * (NULL -> NULL),
 *   's' sb_str (p == NULL -> NULL), 'b' bool.
 * Statements are prepared once and cached by the SQL text's address, so pass
 * string literals.
 */
#ifndef SB_STORE_H
#define SB_STORE_H

#include <uv.h>

#include "base/sb.h"

typedef struct sb_store sb_store;
typedef struct sb_tx sb_tx;
typedef struct sb_stmt sb_stmt;

typedef int (*sb_tx_fn)(sb_tx *tx, void *arg);
typedef void (*sb_done_fn)(void *arg, int rc);

typedef struct sb_store_stats {
    uint64_t commits;
    uint64_t ops;
    uint64_t ops_failed;
    uint64_t commit_failures;
    uint64_t checkpoints;
    uint64_t last_commit_us;
    uint64_t max_batch;
    uint64_t syncs; /* WAL flushes (one may cover several commits) */
    uint64_t last_sync_us;
    uint64_t reads; /* sb_store_read scripts run */
    uint64_t reads_failed;
    uint64_t last_read_us;
} sb_store_stats;

/* Opens (creating) DIR/switchboard.db and applies migrations.
 * loop may be NULL for command-line use: then submit runs and commits at once. */
int sb_store_open(sb_store **out, uv_loop_t *loop, const char *data_dir);
/* Commits what is pending, finishes the reads submitted, waits for a
 * running checkpoint, closes. */
void sb_store_close(sb_store *st);

void sb_store_submit(sb_store *st, sb_tx_fn run, sb_done_fn done, void *arg);
/* A read-only script on the reader thread (see above). */
void sb_store_read(sb_store *st, sb_tx_fn run, sb_done_fn done, void *arg);
/* Waits until everything submitted is committed (and every read has run)
 * and runs the completions
 * (start-up, shutdown, CLI and tests; the daemon's loop needs no call). */
void sb_store_flush(sb_store *st);
/* Registers a script run once per batch just before COMMIT (inside the
 * batch transaction; its failure fails the whole batch). Used for work that
 * is cheaper in bulk, such as full-text indexing. */
void sb_store_set_precommit(sb_store *st, sb_tx_fn fn, void *arg);
/* Frees `p` (malloc'ed by a transaction script) on the store's thread at
 * its next batch. glibc frees of another thread's chunks contend for that
 * thread's arena lock; handing them back keeps the loop from waiting. */
void sb_store_free_later(sb_store *st, void *p);
/* The same with a destructor: fn(p) runs on the store's thread. */
void sb_store_release_later(sb_store *st, void (*fn)(void *), void *p);
/* Number of ops waiting for the current batch to commit. Reads are not
 * counted: a queue of reports must not turn away the writes. */
size_t sb_store_pending(const sb_store *st);
void sb_store_get_stats(const sb_store *st, sb_store_stats *out);
int sb_store_schema_version(sb_store *st);
/* Online backup to `path` using SQLite's backup API on a separate connection. */
int sb_store_backup(const char *data_dir, const char *path);
/* Applies migrations and returns the resulting version (CLI). */
int sb_store_migrate(const char *data_dir, int *version);

/* ---- inside a transaction script ---- */
/* Prepares (cached) and binds; returns NULL on error (logged). */
sb_stmt *sb_tx_query(sb_tx *tx, const char *sql, const char *fmt, ...);
/* 1 = a row is ready, 0 = done, <0 = error (SB_ECONFLICT on constraint). */
int sb_stmt_step(sb_stmt *st);
int64_t sb_stmt_int(sb_stmt *st, int col);
/* NUL-terminated text valid until the next step/end; NULL for SQL NULL. */
const char *sb_stmt_text(sb_stmt *st, int col);
bool sb_stmt_isnull(sb_stmt *st, int col);
/* Resets the statement for reuse; always call when finished with a query. */
void sb_stmt_end(sb_stmt *st);

/* Runs a statement to completion; returns 0, SB_ECONFLICT or SB_EIO. */
int sb_tx_exec(sb_tx *tx, const char *sql, const char *fmt, ...);
/* Runs a query expected to return one integer (first column of first row).
 * Returns 1 with *out set, 0 if no row, <0 on error. */
int sb_tx_int(sb_tx *tx, int64_t *out, const char *sql, const char *fmt, ...);
/* Copies the first column of the first row into out[cap] ("" when there is
 * no row or it is NULL). Returns 0, or <0 on error. */
int sb_tx_text(sb_tx *tx, char *out, size_t cap, const char *sql, const char *fmt, ...);
/* Runs an INSERT and sets *id to the new row's rowid; 0 or a negative SB_E*.
 * Cheaper than `RETURNING id`, which SQLite runs through a temporary table. */
int sb_tx_insert(sb_tx *tx, int64_t *id, const char *sql, const char *fmt, ...);
/* Rows changed by the last exec. */
int64_t sb_tx_changes(sb_tx *tx);
/* Wall-clock time of this transaction (ms), the same for all its rows. */
int64_t sb_tx_now(sb_tx *tx);

#endif
