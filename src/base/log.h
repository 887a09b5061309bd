/* log.h - structured, leveled logging: one line per record, key=value pairs.
 * Never log secrets, tokens, passwords or whole customer messages. */
#ifndef SB_LOG_H
#define SB_LOG_H

typedef enum sb_log_level { SB_DEBUG = 0, SB_INFO, SB_WARN, SB_ERROR } sb_log_level;

/* path NULL or "-" logs to stderr. */
int sb_log_open(const char *path, sb_log_level min);
/* Reopens the log file (SIGHUP, for logrotate). */
int sb_log_reopen(void);
void sb_log_close(void);
void sb_log_set_level(sb_log_level min);
int sb_log_level_parse(const char *z, sb_log_level *out);

/* sb_log(SB_INFO, "http", "conn=%u req=%llu status=%d", ...) */
void sb_log(sb_log_level level, const char *module, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif
