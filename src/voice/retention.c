/* retention.c - deletes recordings and voicemail past their keep days
 * (see retention.h). */
#include "voice/retention.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/clock.h"
#include "base/log.h"
#include "engine/model.h"
#include "voice/calltickets.h"

#define RETENTION_MAGIC   0x52455431u /* "RET1" */
#define SWEEP_INTERVAL_MS (3600 * 1000)
#define BATCH             500
#define DAY_MS            (86400LL * 1000)
#define REL_CAP           520
#define MONTH_MARGIN_MS   (2 * DAY_MS)

typedef enum outcome {
    FAILED = 0, /* still there (not deleted, refused): tried again next sweep */
    DELETED,
    MISSING,     /* already gone (a crash after the unlink, a hand) */
    KEPT_SHARED, /* the row's file is also a kept row's: only the row is marked */
} outcome;

typedef struct candidate {
    int64_t call_id, ended_at;
    char rel[REL_CAP]; /* relative to the data directory */
    bool voicemail, shared;
    outcome result;
} candidate;

/* One sweep, batch after batch; each step touches only this. */
typedef struct sweep {
    sb_retention *r;                /* loop side only */
    int64_t call_before, vm_before; /* wall ms: rows ended before are due; 0 = never */
    int64_t after_ended, after_id;  /* the next batch starts after this (ended_at, id) */
    char data_dir[PATH_MAX];
    char month_before[8]; /* "YYYY-MM": emptied month directories before it are removed */
    candidate *v;
    size_t n;
    int first_errno;                                     /* of a file that could not be deleted, for the log */
    uint64_t calls, voicemails, missing, shared, failed; /* this sweep */
    uint64_t dirs_removed;                               /* this sweep */
    uv_work_t work;
} sweep;

struct sb_retention {
    unsigned magic;
    sb_app *app;
    uv_timer_t *timer; /* heap: freed by its close callback */
    sweep *sweep;      /* the one under way, or NULL */
    bool stopped;
    uint64_t sweeps, calls_deleted, voicemails_deleted, failures;
};

static const sb_actor SYSTEM = {"system", 0};

static void read_batch(sweep *s);

/* ---- 1: which rows are due (reader thread) ---- */

/* A row is a voicemail by its status or by the file voicemail mode made
 * (a caller who said nothing leaves a missed call with a -vm file). A row
 * is due when it ended before its kind's limit; 0 is no limit, as no call
 * ended before 1970. */
#define IS_VM(t)  "(" t ".status = 'voicemail' OR " t ".recording LIKE '%-vm.wav')"
#define IS_DUE(t) t ".ended_at < CASE WHEN " IS_VM(t) " THEN ?1 ELSE ?2 END"

/* clang-format off */
static const char SQL_DUE[] =
    "SELECT c.id, c.recording, " IS_VM("c") ", "
    "EXISTS (SELECT 1 FROM call o WHERE o.recording = c.recording AND o.id <> c.id "
    "AND o.recording_deleted_at IS NULL AND NOT (" IS_DUE("o") ")), c.ended_at "
    "FROM call c WHERE c.recording IS NOT NULL AND c.recording_deleted_at IS NULL "
    "AND c.ended_at < CASE WHEN ?1 > ?2 THEN ?1 ELSE ?2 END AND (c.ended_at, c.id) > (?3, ?4) "
    "AND " IS_DUE("c") " ORDER BY c.ended_at, c.id LIMIT ?5";
/* clang-format on */

static int select_run(sb_tx *tx, void *arg)
{
    sweep *s = arg;
    sb_stmt *st =
        sb_tx_query(tx, SQL_DUE, "iiiii", s->vm_before, s->call_before, s->after_ended, s->after_id, (int64_t)BATCH);
    if (st == NULL)
        return SB_EIO;
    int rc;
    s->n = 0;
    while ((rc = sb_stmt_step(st)) == 1) {
        SB_ASSERT(s->n < BATCH);
        candidate *c = &s->v[s->n++];
        c->call_id = sb_stmt_int(st, 0);
        c->ended_at = sb_stmt_int(st, 4);
        snprintf(c->rel, sizeof c->rel, "%s", sb_stmt_text(st, 1));
        c->voicemail = sb_stmt_int(st, 2) != 0;
        c->shared = sb_stmt_int(st, 3) != 0;
        c->result = FAILED;
    }
    sb_stmt_end(st);
    return rc < 0 ? rc : 0;
}

/* ---- 2: the files (thread pool) ---- */

/* 0 when the directory holding `path` resolves inside `root` (already
 * resolved), so that a link in the way cannot lead the unlink elsewhere;
 * ENOENT when that directory is gone, else EPERM. */
static int inside(const char *root, const char *path)
{
    char dir[PATH_MAX], real[PATH_MAX];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash == NULL)
        return EPERM;
    *slash = '\0';
    if (realpath(dir, real) == NULL)
        return errno == ENOENT ? ENOENT : EPERM;
    size_t n = strlen(root);
    return strncmp(real, root, n) == 0 && (real[n] == '/' || real[n] == '\0') ? 0 : EPERM;
}

static void sync_dir(const char *path)
{
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash == NULL)
        return;
    *slash = '\0';
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return;
    (void)fsync(fd);
    close(fd);
}

static outcome delete_file(const char *root, const char *path, int *err)
{
    struct stat st;
    int rc = inside(root, path);
    if (rc != 0) {
        *err = rc;
        return rc == ENOENT ? MISSING : FAILED; /* no directory: no file either */
    }
    if (lstat(path, &st) != 0) {
        *err = errno;
        return errno == ENOENT ? MISSING : FAILED;
    }
    if (S_ISDIR(st.st_mode)) {
        *err = EISDIR;
        return FAILED;
    }
    if (unlink(path) != 0) {
        *err = errno;
        return errno == ENOENT ? MISSING : FAILED;
    }
    return DELETED;
}

/* The length of rel's directory part ("recordings/2026-11" of
 * "recordings/2026-11/x.wav"). */
static size_t dir_len(const char *rel)
{
    const char *slash = strrchr(rel, '/');
    return slash != NULL ? (size_t)(slash - rel) : 0;
}

static bool same_dir(const char *a, const char *b)
{
    size_t n = dir_len(a);
    return n == dir_len(b) && strncmp(a, b, n) == 0;
}

/* Removes the month directory (recordings/YYYY-MM) that holds rel when it
 * is empty and its month is before s->month_before, so that a directory a
 * recording may still be started in (a call offered late last month) is
 * never taken from under the writer. rmdir fails on a directory with
 * files and on a link, which is all the check the rest needs. */
static void remove_month_dir(sweep *s, const char *root, const char *rel)
{
    static const char prefix[] = "recordings/";
    const size_t plen = sizeof prefix - 1, len = dir_len(rel);
    const char *month = rel + plen;
    if (len != plen + 7 || strncmp(rel, prefix, plen) != 0 || month[4] != '-' ||
        strncmp(month, s->month_before, 7) >= 0)
        return;
    char dir[PATH_MAX];
    int n = snprintf(dir, sizeof dir, "%s/%.*s", root, (int)len, rel);
    if (n < 0 || (size_t)n >= sizeof dir)
        return;
    if (rmdir(dir) == 0) {
        s->dirs_removed++;
        sync_dir(dir);
    }
}

static void unlink_work(uv_work_t *w)
{
    sweep *s = w->data;
    char root[PATH_MAX], path[PATH_MAX];
    char synced[REL_CAP] = "";  /* a file of the directory fsynced last */
    char emptied[REL_CAP] = ""; /* a file gone from the directory to try removing */
    bool have_root = realpath(s->data_dir, root) != NULL;
    for (size_t i = 0; i < s->n; i++) {
        candidate *c = &s->v[i];
        int err = 0;
        if (c->shared) {
            c->result = KEPT_SHARED;
            continue;
        }
        if (!have_root || !sb_call_recording_path_valid(c->rel)) {
            c->result = FAILED;
            err = have_root ? EPERM : ENOENT;
        } else {
            int n = snprintf(path, sizeof path, "%s/%s", root, c->rel);
            if (n < 0 || (size_t)n >= sizeof path)
                err = ENAMETOOLONG;
            else
                c->result = delete_file(root, path, &err);
        }
        if (c->result == FAILED && s->first_errno == 0)
            s->first_errno = err;
        if (c->result != DELETED && c->result != MISSING)
            continue;
        /* the deletion is durable before the row says so */
        if (c->result == DELETED && (synced[0] == '\0' || !same_dir(c->rel, synced))) {
            sync_dir(path);
            snprintf(synced, sizeof synced, "%s", c->rel);
        }
        /* a directory left behind is tried once the batch moves on from
         * it (rows come in the order they ended: mostly month by month) */
        if (emptied[0] != '\0' && !same_dir(c->rel, emptied))
            remove_month_dir(s, root, emptied);
        snprintf(emptied, sizeof emptied, "%s", c->rel);
    }
    if (emptied[0] != '\0')
        remove_month_dir(s, root, emptied);
}

/* ---- 3: the rows (store thread) ---- */

/* Marks the call's recording attachment on its message (the phone
 * channel's "call:<id>"): no size, who deleted it and when. */
static int mark_message(sb_tx *tx, int64_t call_id, int64_t now)
{
    char external[40], url[80];
    snprintf(external, sizeof external, "call:%lld", (long long)call_id);
    snprintf(url, sizeof url, "/api/v1/calls/%lld/recording", (long long)call_id);
    sb_stmt *st = sb_tx_query(tx,
                              "SELECT id, attachments FROM message WHERE external_id = ? "
                              "AND channel_id IN (SELECT id FROM channel WHERE kind = 'phone')",
                              "t", external);
    if (st == NULL)
        return SB_EIO;
    int64_t id = 0;
    json_t *list = NULL;
    int rc = sb_stmt_step(st);
    if (rc == 1) {
        id = sb_stmt_int(st, 0);
        list = json_loads(sb_stmt_text(st, 1), 0, NULL);
    }
    sb_stmt_end(st);
    if (rc < 0 || list == NULL)
        return rc < 0 ? rc : 0;
    bool changed = false;
    size_t i;
    json_t *a;
    json_array_foreach (list, i, a) {
        if (!json_is_object(a) || json_object_get(a, "deleted_at") != NULL)
            continue;
        const char *u = json_string_value(json_object_get(a, "url"));
        if (u == NULL || strcmp(u, url) != 0)
            continue;
        json_object_del(a, "size");
        json_object_set_new(a, "deleted_at", sb_json_time(now));
        json_object_set_new(a, "deleted_by", json_string("retention"));
        changed = true;
    }
    rc = 0;
    if (changed) {
        char *text = json_dumps(list, JSON_COMPACT);
        rc = sb_tx_exec(tx, "UPDATE message SET attachments = ?, updated_at = ? WHERE id = ?", "tii", text, now, id);
        free(text);
    }
    json_decref(list);
    return rc;
}

static int mark_run(sb_tx *tx, void *arg)
{
    sweep *s = arg;
    int64_t now = sb_tx_now(tx);
    int64_t calls = 0, voicemails = 0;
    for (size_t i = 0; i < s->n; i++) {
        const candidate *c = &s->v[i];
        if (c->result == FAILED)
            continue;
        int rc = sb_tx_exec(tx,
                            "UPDATE call SET recording_deleted_at = ?, recording_deleted_by = 'retention' "
                            "WHERE id = ? AND recording_deleted_at IS NULL",
                            "ii", now, c->call_id);
        if (rc == 0)
            rc = mark_message(tx, c->call_id, now);
        if (rc != 0)
            return rc;
        if (c->voicemail)
            voicemails++;
        else
            calls++;
    }
    if (calls + voicemails == 0)
        return 0;
    return sb_event_log(tx, SYSTEM, "call", 0, "recordings.deleted",
                        json_pack("{s:I,s:I,s:s}", "calls", (json_int_t)calls, "voicemails", (json_int_t)voicemails,
                                  "by", "retention"));
}

/* ---- the steps, on the loop ---- */

static void finish(sweep *s)
{
    sb_retention *r = s->r;
    SB_ASSERT(r->magic == RETENTION_MAGIC && r->sweep == s);
    r->sweeps++;
    r->calls_deleted += s->calls;
    r->voicemails_deleted += s->voicemails;
    r->failures += s->failed;
    if (s->calls + s->voicemails > 0)
        sb_log(SB_INFO, "retention",
               "recordings deleted calls=%llu voicemails=%llu already_missing=%llu file_shared_kept=%llu "
               "month_dirs_removed=%llu",
               (unsigned long long)s->calls, (unsigned long long)s->voicemails, (unsigned long long)s->missing,
               (unsigned long long)s->shared, (unsigned long long)s->dirs_removed);
    if (s->failed > 0)
        sb_log(SB_WARN, "retention", "recordings not deleted count=%llu first_error=%s (tried again next sweep)",
               (unsigned long long)s->failed, strerror(s->first_errno));
    r->sweep = NULL;
    free(s->v);
    free(s);
}

static void mark_done(void *arg, int rc)
{
    sweep *s = arg;
    if (rc != 0) {
        /* the files are gone; the next sweep finds them missing and marks them */
        sb_log(SB_WARN, "retention", "call rows not marked rc=%d count=%zu", rc, s->n);
        finish(s);
        return;
    }
    for (size_t i = 0; i < s->n; i++) {
        const candidate *c = &s->v[i];
        if (c->result == FAILED) {
            s->failed++;
            continue;
        }
        if (c->voicemail)
            s->voicemails++;
        else
            s->calls++;
        s->missing += c->result == MISSING;
        s->shared += c->result == KEPT_SHARED;
    }
    bool more = s->n == BATCH;
    if (s->n > 0) {
        s->after_ended = s->v[s->n - 1].ended_at;
        s->after_id = s->v[s->n - 1].call_id;
    }
    if (!more || s->r->stopped)
        finish(s);
    else
        read_batch(s);
}

static void unlink_done(uv_work_t *w, int status)
{
    sweep *s = w->data;
    if (status != 0 || s->r->stopped) {
        finish(s); /* nothing marked: the next start marks what is missing */
        return;
    }
    sb_store_submit(s->r->app->store, mark_run, mark_done, s);
}

static void select_done(void *arg, int rc)
{
    sweep *s = arg;
    if (rc != 0)
        sb_log(SB_WARN, "retention", "due recordings not read rc=%d", rc);
    if (rc != 0 || s->n == 0 || s->r->stopped) {
        finish(s);
        return;
    }
    s->work.data = s;
    uv_queue_work(s->r->app->loop, &s->work, unlink_work, unlink_done);
}

static void read_batch(sweep *s)
{
    s->n = 0;
    sb_store_read(s->r->app->store, select_run, select_done, s);
}

static int64_t cutoff(int64_t now, unsigned days)
{
    return days == 0 ? 0 : now - (int64_t)days * DAY_MS;
}

static void on_tick(uv_timer_t *h)
{
    sb_retention *r = h->data;
    SB_ASSERT(r->magic == RETENTION_MAGIC);
    if (r->stopped || r->sweep != NULL)
        return; /* the last one is still under way */
    const sb_config *cfg = &r->app->cfg;
    int64_t now = sb_clock_wall_ms();
    sweep *s = sb_xcalloc(1, sizeof *s);
    s->r = r;
    s->call_before = cutoff(now, cfg->sip_recordings_keep_days);
    s->vm_before = cutoff(now, cfg->sip_voicemail_keep_days);
    snprintf(s->data_dir, sizeof s->data_dir, "%s", cfg->data_dir);
    char month[40];
    sb_clock_format_iso(now - MONTH_MARGIN_MS, month, sizeof month);
    snprintf(s->month_before, sizeof s->month_before, "%.7s", month);
    s->v = sb_xcalloc(BATCH, sizeof *s->v);
    r->sweep = s;
    read_batch(s);
}

sb_retention *sb_retention_start(sb_app *app)
{
    const sb_config *cfg = &app->cfg;
    if (cfg->sip_recordings_keep_days == 0 && cfg->sip_voicemail_keep_days == 0)
        return NULL;
    sb_retention *r = sb_xcalloc(1, sizeof *r);
    r->magic = RETENTION_MAGIC;
    r->app = app;
    r->timer = sb_xcalloc(1, sizeof *r->timer);
    uv_timer_init(app->loop, r->timer);
    r->timer->data = r;
    uv_timer_start(r->timer, on_tick, 0, SWEEP_INTERVAL_MS);
    uv_unref((uv_handle_t *)r->timer); /* it does not keep the daemon running */
    sb_log(SB_INFO, "retention", "recordings kept days=%u voicemail kept days=%u (0: forever)",
           cfg->sip_recordings_keep_days, cfg->sip_voicemail_keep_days);
    return r;
}

static void free_timer(uv_handle_t *h)
{
    free(h);
}

void sb_retention_stop(sb_retention *r)
{
    if (r == NULL || r->stopped)
        return;
    SB_ASSERT(r->magic == RETENTION_MAGIC);
    r->stopped = true;
    uv_timer_stop(r->timer);
    uv_close((uv_handle_t *)r->timer, free_timer);
    r->timer = NULL;
}

void sb_retention_free(sb_retention *r)
{
    if (r == NULL)
        return;
    SB_ASSERT(r->magic == RETENTION_MAGIC && r->stopped && r->sweep == NULL);
    r->magic = 0;
    free(r);
}

void sb_retention_metrics_text(const sb_retention *r, sb_buf *b)
{
    const sb_retention zero = {0};
    if (r == NULL)
        r = &zero;
    const struct {
        const char *name, *help;
        uint64_t value;
    } rows[] = {
        {"voice_retention_sweeps_total", "Retention sweeps of recordings and voicemail finished.", r->sweeps},
        {"voice_recordings_deleted_total", "Call recordings deleted by retention ([sip] recordings_keep_days).",
         r->calls_deleted},
        {"voice_voicemails_deleted_total", "Voicemail recordings deleted by retention ([sip] voicemail_keep_days).",
         r->voicemails_deleted},
        {"voice_retention_failures_total", "Recordings past retention that could not be deleted (tried again).",
         r->failures},
    };
    for (size_t i = 0; i < SB_ARRAY_LEN(rows); i++)
        sb_buf_printf(b, "# HELP switchboard_%s %s\n# TYPE switchboard_%s counter\nswitchboard_%s %llu\n", rows[i].name,
                      rows[i].help, rows[i].name, rows[i].name, (unsigned long long)rows[i].value);
}
