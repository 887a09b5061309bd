/* log.c - line-oriented structured log: "ts level module msg". */
#include "log.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "clock.h"

static FILE *g_out;
static char *g_path;
static sb_log_level g_min = SB_INFO;
/* The store thread logs too; reopening swaps the stream under this lock. */
static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;

static const char *level_name(sb_log_level l)
{
    switch (l) {
    case SB_DEBUG: return "debug";
    case SB_INFO: return "info";
    case SB_WARN: return "warn";
    case SB_ERROR: return "error";
    }
    return "?";
}

int sb_log_level_parse(const char *z, sb_log_level *out)
{
    static const char *names[] = {"debug", "info", "warn", "error"};
    for (int i = 0; i < 4; i++) {
        if (strcasecmp(z, names[i]) == 0) {
            *out = (sb_log_level)i;
            return 0;
        }
    }
    return -1;
}

int sb_log_open(const char *path, sb_log_level min)
{
    g_min = min;
    free(g_path);
    g_path = NULL;
    if (path != NULL && strcmp(path, "-") != 0 && path[0] != '\0')
        g_path = strdup(path);
    return sb_log_reopen();
}

static int reopen_locked(void);

int sb_log_reopen(void)
{
    pthread_mutex_lock(&g_mu);
    int rc = reopen_locked();
    pthread_mutex_unlock(&g_mu);
    return rc;
}

static int reopen_locked(void)
{
    if (g_out != NULL && g_out != stderr)
        fclose(g_out);
    g_out = stderr;
    if (g_path == NULL)
        return 0;
    FILE *f = fopen(g_path, "a");
    if (f == NULL)
        return -1;
    setvbuf(f, NULL, _IOLBF, 0);
    g_out = f;
    return 0;
}

void sb_log_close(void)
{
    if (g_out != NULL && g_out != stderr)
        fclose(g_out);
    g_out = NULL;
    free(g_path);
    g_path = NULL;
}

void sb_log_set_level(sb_log_level min)
{
    g_min = min;
}

void sb_log(sb_log_level level, const char *module, const char *fmt, ...)
{
    if (level < g_min)
        return;
    char ts[40];
    sb_clock_format_iso(sb_clock_wall_ms(), ts, sizeof ts);
    char line[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    pthread_mutex_lock(&g_mu);
    FILE *out = g_out ? g_out : stderr;
    fprintf(out, "ts=%s level=%s module=%s %s\n", ts, level_name(level), module, line);
    pthread_mutex_unlock(&g_mu);
}
