/* clock.c - system clock access (the one file allowed to read it). */
#include "clock.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

uint64_t sb_clock_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

uint64_t sb_clock_mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

int64_t sb_clock_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void sb_clock_format_iso(int64_t wall_ms, char *out, size_t cap)
{
    time_t secs = (time_t)(wall_ms / 1000);
    int ms = (int)(wall_ms % 1000);
    if (ms < 0) {
        ms += 1000;
        secs -= 1;
    }
    struct tm tm;
    gmtime_r(&secs, &tm);
    snprintf(out, cap, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
             tm.tm_min, tm.tm_sec, ms);
}

static int digits(const char *z, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (z[i] < '0' || z[i] > '9')
            return -1;
        v = v * 10 + (z[i] - '0');
    }
    *out = v;
    return 0;
}

int sb_clock_parse_iso(const char *z, int64_t *wall_ms)
{
    int y, mo, d, h, mi, s, ms = 0;
    if (strlen(z) < 19 || digits(z, 4, &y) || z[4] != '-' || digits(z + 5, 2, &mo) || z[7] != '-' ||
        digits(z + 8, 2, &d) || (z[10] != 'T' && z[10] != ' ') || digits(z + 11, 2, &h) || z[13] != ':' ||
        digits(z + 14, 2, &mi) || z[16] != ':' || digits(z + 17, 2, &s))
        return -1;
    const char *p = z + 19;
    if (*p == '.') {
        p++;
        int n = 0, frac = 0;
        while (*p >= '0' && *p <= '9') {
            if (n < 3) {
                frac = frac * 10 + (*p - '0');
                n++;
            }
            p++;
        }
        if (n == 0)
            return -1;
        while (n < 3) {
            frac *= 10;
            n++;
        }
        ms = frac;
    }
    int off_min = 0;
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int oh, om;
        int sign = *p == '-' ? -1 : 1;
        if (digits(p + 1, 2, &oh) || p[3] != ':' || digits(p + 4, 2, &om))
            return -1;
        off_min = sign * (oh * 60 + om);
        p += 6;
    } else {
        return -1;
    }
    if (*p != '\0' || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || s > 60)
        return -1;
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = s;
    time_t t = timegm(&tm);
    *wall_ms = ((int64_t)t - (int64_t)off_min * 60) * 1000 + ms;
    return 0;
}
