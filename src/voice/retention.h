/* retention.h - recordings and voicemail are deleted after [sip]
 * recordings_keep_days / voicemail_keep_days (0 = kept forever).
 *
 * A sweep runs at start and then hourly, in batches of call rows ended
 * before the limit whose recording is still there:
 *
 *   1. the reader thread lists them (and whether a row that is kept names
 *      the same file: that file stays);
 *   2. the libuv thread pool unlinks the files (only inside the data
 *      directory), fsyncs their directories and removes a month directory
 *      (recordings/YYYY-MM) left empty, unless it is this month's or the
 *      last one's within two days of the turn, where a call under way
 *      may still start a recording;
 *   3. one store transaction marks each call row (recording_deleted_at,
 *      recording_deleted_by = 'retention'), marks the recording attachment
 *      of the call's message on its ticket, and logs one event with counts.
 *
 * Files go before rows: a crash between 2 and 3 leaves rows whose file is
 * missing, which the next sweep marks; the other order could leave a file
 * that no row would ever lead back to. A file that cannot be deleted keeps
 * its row unmarked and is tried again at the next sweep. The loop only
 * starts and ends the steps; the log says counts, never paths or numbers. */
#ifndef SB_VOICE_RETENTION_H
#define SB_VOICE_RETENTION_H

#include "app.h"

typedef struct sb_retention sb_retention;

/* Starts the sweeps; NULL when both limits are 0 (nothing to do). */
sb_retention *sb_retention_start(sb_app *app);
/* No new step after this; a step under way ends at its completion. */
void sb_retention_stop(sb_retention *r);
/* After the loop has run out (stop first). NULL is fine. */
void sb_retention_free(sb_retention *r);
/* Prometheus text: the switchboard_voice_retention_* counters (zero when
 * r is NULL, so that /metrics always has them). */
void sb_retention_metrics_text(const sb_retention *r, sb_buf *b);

#endif
