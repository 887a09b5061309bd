/* test_calendar.c - time zones read from TZif files and business calendars.
 *
 * Expected instants come from `zdump -v` output (tzdata 2025b) read by hand
 * and are written as UTC wall times; timegm() turns them into numbers, so
 * no expectation is computed by code that mirrors calendar.c. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "engine/calendar.h"

#define MINS(n)  ((int64_t)(n)*60000)
#define HOURS(n) ((int64_t)(n)*3600000)
#define DAYS(n)  ((int64_t)(n)*86400000)

/* UTC wall time → Unix ms (libc's timegm, independent of the module). */
static int64_t utc(int y, int mo, int d, int h, int mi, int s)
{
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = s;
    return (int64_t)timegm(&tm) * 1000;
}

static sb_tz *load_tz(const char *name)
{
    sb_tz *tz = NULL;
    int rc = sb_tz_load(name, &tz);
    if (rc != 0)
        fail_msg("sb_tz_load(%s) = %d", name, rc);
    return tz;
}

static void assert_local(sb_local_time lt, int y, int mo, int d, int weekday, int minute, int64_t ms)
{
    assert_int_equal(lt.year, y);
    assert_int_equal(lt.month, mo);
    assert_int_equal(lt.day, d);
    assert_int_equal(lt.weekday, weekday);
    assert_int_equal(lt.minute_of_day, minute);
    assert_int_equal(lt.ms_of_minute, ms);
}

/* JSON written with single quotes for readability. */
static json_t *json_q(const char *text)
{
    char *copy = strdup(text);
    for (char *p = copy; *p; p++)
        if (*p == '\'')
            *p = '"';
    json_error_t err;
    json_t *j = json_loads(copy, 0, &err);
    if (j == NULL)
        fail_msg("bad test JSON: %s: %s", err.text, copy);
    free(copy);
    return j;
}

static sb_calendar *cal_q(const char *text)
{
    json_t *j = json_q(text);
    char field[64], msg[256];
    sb_calendar *cal = NULL;
    int rc = sb_calendar_from_json(j, &cal, field, sizeof field, msg, sizeof msg);
    if (rc != 0)
        fail_msg("calendar rejected: %s: %s", field, msg);
    json_decref(j);
    return cal;
}

static void expect_invalid_json(json_t *j, int want_rc, const char *want_field)
{
    char field[64] = "x", msg[256] = "";
    sb_calendar *cal = (sb_calendar *)&cal; /* must be reset to NULL */
    int rc = sb_calendar_from_json(j, &cal, field, sizeof field, msg, sizeof msg);
    if (rc != want_rc || strcmp(field, want_field) != 0)
        fail_msg("want %d at '%s', got %d at '%s' (%s)", want_rc, want_field, rc, field, msg);
    assert_null(cal);
    assert_true(strlen(msg) > 10);
}

static void expect_invalid(const char *text, int want_rc, const char *want_field)
{
    json_t *j = json_q(text);
    expect_invalid_json(j, want_rc, want_field);
    json_decref(j);
}

/* ---- time zones from the system's tzdata ---- */

static void test_tz_moscow(void **state)
{
    sb_tz *tz = load_tz("Europe/Moscow");
    assert_string_equal(sb_tz_name(tz), "Europe/Moscow");
    assert_int_equal(sb_tz_offset(tz, utc(2026, 1, 15, 12, 0, 0)), 3 * 3600);
    assert_int_equal(sb_tz_offset(tz, utc(2026, 7, 15, 12, 0, 0)), 3 * 3600);
    /* zdump: Sat Oct 25 21:59:59 2014 UT = 01:59:59 MSK gmtoff=14400,
     *        Sat Oct 25 22:00:00 2014 UT = 01:00:00 MSK gmtoff=10800 */
    assert_int_equal(sb_tz_offset(tz, utc(2014, 10, 25, 21, 59, 59)), 4 * 3600);
    assert_int_equal(sb_tz_offset(tz, utc(2014, 10, 25, 22, 0, 0)), 3 * 3600);
    assert_local(sb_tz_to_local(tz, utc(2026, 3, 2, 6, 0, 0) + 1234), 2026, 3, 2, 0, 9 * 60, 1234);
    assert_int_equal(sb_tz_from_local(tz, 2026, 3, 2, 9 * 60), utc(2026, 3, 2, 6, 0, 0));
    /* Sunday, and a local date one day after the UTC date. */
    assert_local(sb_tz_to_local(tz, utc(2026, 3, 7, 22, 30, 0)), 2026, 3, 8, 6, 90, 0);
    sb_tz_free(tz);
}

static void test_tz_berlin_spring_forward(void **state)
{
    sb_tz *tz = load_tz("Europe/Berlin");
    /* zdump: Sun Mar 29 00:59:59 2026 UT = 01:59:59 CET, 01:00:00 UT = 03:00:00 CEST */
    assert_int_equal(sb_tz_offset(tz, utc(2026, 3, 29, 0, 59, 59)), 3600);
    assert_int_equal(sb_tz_offset(tz, utc(2026, 3, 29, 1, 0, 0) - 1), 3600);
    assert_int_equal(sb_tz_offset(tz, utc(2026, 3, 29, 1, 0, 0)), 7200);
    assert_local(sb_tz_to_local(tz, utc(2026, 3, 29, 0, 59, 59)), 2026, 3, 29, 6, 119, 59000);
    assert_local(sb_tz_to_local(tz, utc(2026, 3, 29, 1, 0, 0)), 2026, 3, 29, 6, 180, 0);
    /* 02:00-02:59 does not exist: the gap ends at 01:00 UT. */
    assert_int_equal(sb_tz_from_local(tz, 2026, 3, 29, 119), utc(2026, 3, 29, 0, 59, 0));
    assert_int_equal(sb_tz_from_local(tz, 2026, 3, 29, 120), utc(2026, 3, 29, 1, 0, 0));
    assert_int_equal(sb_tz_from_local(tz, 2026, 3, 29, 150), utc(2026, 3, 29, 1, 0, 0));
    assert_int_equal(sb_tz_from_local(tz, 2026, 3, 29, 180), utc(2026, 3, 29, 1, 0, 0));
    assert_int_equal(sb_tz_from_local(tz, 2026, 3, 29, 181), utc(2026, 3, 29, 1, 1, 0));
    /* The local day has 23 hours; minute 1440 is the next midnight. */
    assert_int_equal(sb_tz_from_local(tz, 2026, 3, 29, 0), utc(2026, 3, 28, 23, 0, 0));
    assert_int_equal(sb_tz_from_local(tz, 2026, 3, 30, 0), utc(2026, 3, 29, 22, 0, 0));
    assert_int_equal(sb_tz_from_local(tz, 2026, 3, 29, 1440), utc(2026, 3, 29, 22, 0, 0));
    sb_tz_free(tz);
}

static void test_tz_berlin_fall_back(void **state)
{
    sb_tz *tz = load_tz("Europe/Berlin");
    /* zdump: Sun Oct 25 00:59:59 2026 UT = 02:59:59 CEST, 01:00:00 UT = 02:00:00 CET */
    assert_int_equal(sb_tz_offset(tz, utc(2026, 10, 25, 0, 59, 59)), 7200);
    assert_int_equal(sb_tz_offset(tz, utc(2026, 10, 25, 1, 0, 0)), 3600);
    /* 02:30 happens twice; from_local picks the earlier one. */
    assert_local(sb_tz_to_local(tz, utc(2026, 10, 25, 0, 30, 0)), 2026, 10, 25, 6, 150, 0);
    assert_local(sb_tz_to_local(tz, utc(2026, 10, 25, 1, 30, 0)), 2026, 10, 25, 6, 150, 0);
    assert_int_equal(sb_tz_from_local(tz, 2026, 10, 25, 120), utc(2026, 10, 25, 0, 0, 0));
    assert_int_equal(sb_tz_from_local(tz, 2026, 10, 25, 150), utc(2026, 10, 25, 0, 30, 0));
    assert_int_equal(sb_tz_from_local(tz, 2026, 10, 25, 180), utc(2026, 10, 25, 2, 0, 0));
    assert_int_equal(sb_tz_from_local(tz, 2026, 10, 26, 0) - sb_tz_from_local(tz, 2026, 10, 25, 0), HOURS(25));
    sb_tz_free(tz);
}

static void test_tz_new_york(void **state)
{
    sb_tz *tz = load_tz("America/New_York");
    /* zdump: Sun Mar 8 06:59:59 2026 UT EST -18000, 07:00:00 UT EDT -14400;
     *        Sun Nov 1 05:59:59 2026 UT EDT -14400, 06:00:00 UT EST -18000 */
    assert_int_equal(sb_tz_offset(tz, utc(2026, 3, 8, 6, 59, 59)), -18000);
    assert_int_equal(sb_tz_offset(tz, utc(2026, 3, 8, 7, 0, 0)), -14400);
    assert_int_equal(sb_tz_offset(tz, utc(2026, 11, 1, 5, 59, 59)), -14400);
    assert_int_equal(sb_tz_offset(tz, utc(2026, 11, 1, 6, 0, 0)), -18000);
    assert_int_equal(sb_tz_from_local(tz, 2026, 3, 8, 150), utc(2026, 3, 8, 7, 0, 0));
    assert_int_equal(sb_tz_from_local(tz, 2026, 11, 1, 90), utc(2026, 11, 1, 5, 30, 0));
    /* New Year's Eve locally while UTC is already in 2026 (a Wednesday). */
    assert_local(sb_tz_to_local(tz, utc(2026, 1, 1, 3, 0, 0)), 2025, 12, 31, 2, 22 * 60, 0);
    sb_tz_free(tz);
}

static void test_tz_almaty(void **state)
{
    sb_tz *tz = load_tz("Asia/Almaty");
    /* zdump: Thu Feb 29 17:59:59 2024 UT = 23:59:59 +06, 18:00:00 UT = 23:00:00 +05 */
    assert_int_equal(sb_tz_offset(tz, utc(2024, 2, 29, 17, 59, 59)), 6 * 3600);
    assert_int_equal(sb_tz_offset(tz, utc(2024, 2, 29, 18, 0, 0)), 5 * 3600);
    assert_local(sb_tz_to_local(tz, utc(2024, 2, 29, 18, 0, 0)), 2024, 2, 29, 3, 23 * 60, 0);
    assert_int_equal(sb_tz_from_local(tz, 2024, 2, 29, 23 * 60 + 30), utc(2024, 2, 29, 17, 30, 0));
    assert_int_equal(sb_tz_from_local(tz, 2024, 3, 1, 0), utc(2024, 2, 29, 19, 0, 0));
    assert_int_equal(sb_tz_offset(tz, utc(2040, 6, 1, 0, 0, 0)), 5 * 3600); /* footer <+05>-5 */
    sb_tz_free(tz);
}

/* After 2037 the tables end and the POSIX TZ footer takes over. */
static void test_tz_footer_after_2037(void **state)
{
    static const struct {
        const char *zone;
        int y, mo, d, h, mi, s;
        int32_t off;
    } cases[] = {
        /* zdump -v -c 2040,2041 */
        {"Europe/Berlin", 2040, 7, 1, 12, 0, 0, 7200},
        {"Europe/Berlin", 2040, 1, 15, 12, 0, 0, 3600},
        {"Europe/Berlin", 2040, 3, 25, 0, 59, 59, 3600},
        {"Europe/Berlin", 2040, 3, 25, 1, 0, 0, 7200},
        {"Europe/Berlin", 2040, 10, 28, 0, 59, 59, 7200},
        {"Europe/Berlin", 2040, 10, 28, 1, 0, 0, 3600},
        {"Europe/Berlin", 2400, 3, 26, 0, 59, 59, 3600},
        {"Europe/Berlin", 2400, 3, 26, 1, 0, 0, 7200},
        {"America/New_York", 2040, 3, 11, 6, 59, 59, -18000},
        {"America/New_York", 2040, 3, 11, 7, 0, 0, -14400},
        {"America/New_York", 2040, 11, 4, 5, 59, 59, -14400},
        {"America/New_York", 2040, 11, 4, 6, 0, 0, -18000},
        /* southern hemisphere: DST across the new year */
        {"Australia/Sydney", 2040, 3, 31, 15, 59, 59, 39600},
        {"Australia/Sydney", 2040, 3, 31, 16, 0, 0, 36000},
        {"Australia/Sydney", 2040, 10, 6, 15, 59, 59, 36000},
        {"Australia/Sydney", 2040, 10, 6, 16, 0, 0, 39600},
        {"Australia/Sydney", 2041, 1, 1, 0, 0, 0, 39600},
        /* <-02>2<-01>,M3.5.0/-1,M10.5.0/0: negative rule time */
        {"America/Nuuk", 2040, 3, 25, 0, 59, 59, -7200},
        {"America/Nuuk", 2040, 3, 25, 1, 0, 0, -3600},
        {"America/Nuuk", 2040, 10, 28, 0, 59, 59, -3600},
        {"America/Nuuk", 2040, 10, 28, 1, 0, 0, -7200},
        /* <-04>4<-03>,M9.1.6/24,M4.1.6/24 */
        {"America/Santiago", 2040, 4, 8, 2, 59, 59, -10800},
        {"America/Santiago", 2040, 4, 8, 3, 0, 0, -14400},
        {"America/Santiago", 2040, 9, 2, 3, 59, 59, -14400},
        {"America/Santiago", 2040, 9, 2, 4, 0, 0, -10800},
        /* EET-2EEST,M3.4.4/50,M10.4.4/50: over-24h rule time (the table
         * covers Ramadan until the 2080s) */
        {"Asia/Gaza", 2090, 3, 24, 23, 59, 59, 7200},
        {"Asia/Gaza", 2090, 3, 25, 0, 0, 0, 10800},
        {"Asia/Gaza", 2090, 10, 27, 22, 59, 59, 10800},
        {"Asia/Gaza", 2090, 10, 27, 23, 0, 0, 7200},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        sb_tz *tz = load_tz(cases[i].zone);
        int64_t at = utc(cases[i].y, cases[i].mo, cases[i].d, cases[i].h, cases[i].mi, cases[i].s);
        int32_t off = sb_tz_offset(tz, at);
        if (off != cases[i].off)
            fail_msg("%s at %04d-%02d-%02d %02d:%02d:%02d UT: offset %d, want %d", cases[i].zone, cases[i].y,
                     cases[i].mo, cases[i].d, cases[i].h, cases[i].mi, cases[i].s, (int)off, (int)cases[i].off);
        sb_tz_free(tz);
    }
    sb_tz *tz = load_tz("Europe/Berlin");
    assert_local(sb_tz_to_local(tz, utc(2040, 7, 1, 12, 0, 0)), 2040, 7, 1, 6, 14 * 60, 0);
    assert_int_equal(sb_tz_from_local(tz, 2040, 3, 25, 150), utc(2040, 3, 25, 1, 0, 0));
    assert_int_equal(sb_tz_from_local(tz, 2040, 10, 28, 150), utc(2040, 10, 28, 0, 30, 0));
    /* The extremes neither crash nor overflow. */
    sb_local_time lt = sb_tz_to_local(tz, INT64_MAX);
    assert_true(lt.year > 290000000);
    lt = sb_tz_to_local(tz, INT64_MIN);
    assert_true(lt.year < -290000000);
    assert_int_equal(sb_tz_from_local(tz, 2000000000, 1, 1, 0), INT64_MAX);
    assert_int_equal(sb_tz_from_local(tz, -2000000000, 1, 1, 0), INT64_MIN);
    sb_tz_free(tz);
}

static void test_tz_utc(void **state)
{
    const char *names[] = {"UTC", "Etc/UTC"};
    for (size_t i = 0; i < 2; i++) {
        sb_tz *tz = load_tz(names[i]);
        assert_string_equal(sb_tz_name(tz), names[i]);
        assert_int_equal(sb_tz_offset(tz, 0), 0);
        assert_int_equal(sb_tz_offset(tz, utc(2026, 7, 1, 0, 0, 0)), 0);
        assert_int_equal(sb_tz_offset(tz, utc(2100, 7, 1, 0, 0, 0)), 0);
        assert_local(sb_tz_to_local(tz, -1), 1969, 12, 31, 2, 1439, 59999);
        assert_local(sb_tz_to_local(tz, utc(2024, 2, 29, 23, 59, 0)), 2024, 2, 29, 3, 1439, 0);
        assert_local(sb_tz_to_local(tz, utc(2000, 3, 1, 0, 0, 0)), 2000, 3, 1, 2, 0, 0);
        assert_int_equal(sb_tz_from_local(tz, 2024, 2, 29, 1439), utc(2024, 2, 29, 23, 59, 0));
        assert_int_equal(sb_tz_from_local(tz, 1600, 3, 1, 0), utc(1600, 3, 1, 0, 0, 0));
        /* out-of-range months and days roll over */
        assert_int_equal(sb_tz_from_local(tz, 2025, 13, 1, 0), utc(2026, 1, 1, 0, 0, 0));
        assert_int_equal(sb_tz_from_local(tz, 2026, 3, 0, 0), utc(2026, 2, 28, 0, 0, 0));
        sb_tz_free(tz);
    }
}

static void test_tz_bad_names(void **state)
{
    const char *bad[] = {
        "Mars/Olympus_Mons",
        "../../etc/passwd",
        "Europe/../Europe/Berlin",
        "/etc/passwd",
        "/usr/share/zoneinfo/UTC",
        "",
        "Europe/Berlin ",
        "Europe\\Berlin",
        "Europe/Berlin\n",
        "zone.tab",
        "Europe",      /* a directory */
        "Europe/",     /* still a directory */
        "tzdata.zi",   /* '.' is not allowed */
        "leapseconds", /* a text file, not a zone */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        sb_tz *tz = (sb_tz *)&tz;
        int rc = sb_tz_load(bad[i], &tz);
        if (rc != SB_ENOTFOUND)
            fail_msg("sb_tz_load('%s') = %d", bad[i], rc);
        assert_null(tz);
    }
    char long_name[128];
    memset(long_name, 'A', 101);
    long_name[101] = '\0';
    sb_tz *tz = NULL;
    assert_int_equal(sb_tz_load(long_name, &tz), SB_ENOTFOUND);
    /* Leap-second zones count TAI-like seconds: refused as unusable data. */
    if (access("/usr/share/zoneinfo/right/UTC", R_OK) == 0)
        assert_int_equal(sb_tz_load("right/UTC", &tz), SB_EINVAL);
}

/* ---- time zones from crafted TZif files ($SB_TZDIR) ---- */

typedef struct tzdir {
    char path[64];
    char files[64][64];
    int nfiles;
} tzdir;

static int tzdir_setup(void **state)
{
    tzdir *d = calloc(1, sizeof *d);
    snprintf(d->path, sizeof d->path, "/tmp/sbtzXXXXXX");
    if (mkdtemp(d->path) == NULL)
        return -1;
    setenv("SB_TZDIR", d->path, 1);
    *state = d;
    return 0;
}

static int tzdir_teardown(void **state)
{
    tzdir *d = *state;
    unsetenv("SB_TZDIR");
    char p[160];
    for (int i = d->nfiles - 1; i >= 0; i--) {
        snprintf(p, sizeof p, "%s/%s", d->path, d->files[i]);
        if (unlink(p) != 0 && rmdir(p) != 0)
            return -1;
    }
    if (rmdir(d->path) != 0)
        return -1;
    free(d);
    return 0;
}

static void tzdir_write(tzdir *d, const char *name, const void *data, size_t len)
{
    char p[160];
    snprintf(p, sizeof p, "%s/%s", d->path, name);
    FILE *f = fopen(p, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
    snprintf(d->files[d->nfiles++], sizeof d->files[0], "%s", name);
}

static size_t put32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
    return 4;
}

static size_t put_header(unsigned char *p, char version, uint32_t timecnt, uint32_t typecnt, uint32_t charcnt)
{
    memset(p, 0, 44);
    memcpy(p, "TZif", 4);
    p[4] = (unsigned char)version;
    put32(p + 32, timecnt);
    put32(p + 36, typecnt);
    put32(p + 40, charcnt);
    return 44;
}

/* A version 2 file: a minimal version 1 block, then transitions `at` to
 * types `type` (offsets `offs`), then "\n<footer>\n" (footer NULL: none). */
static size_t make_tzif(unsigned char *buf, const int64_t *at, const uint8_t *type, uint32_t n, const int32_t *offs,
                        uint32_t ntypes, const char *footer)
{
    size_t len = put_header(buf, '2', 0, 1, 4);
    len += put32(buf + len, 0);
    buf[len++] = 0;
    buf[len++] = 0;
    memcpy(buf + len, "AAA", 4);
    len += 4;
    len += put_header(buf + len, '2', n, ntypes, 4);
    for (uint32_t i = 0; i < n; i++) {
        len += put32(buf + len, (uint32_t)((uint64_t)at[i] >> 32));
        len += put32(buf + len, (uint32_t)at[i]);
    }
    for (uint32_t i = 0; i < n; i++)
        buf[len++] = type[i];
    for (uint32_t i = 0; i < ntypes; i++) {
        len += put32(buf + len, (uint32_t)offs[i]);
        buf[len++] = 0;
        buf[len++] = 0;
    }
    memcpy(buf + len, "AAA", 4);
    len += 4;
    if (footer != NULL) {
        len += (size_t)snprintf((char *)buf + len, 300, "\n%s\n", footer);
    }
    return len;
}

static void write_rule_zone(tzdir *d, const char *name, int32_t std_off, const char *footer)
{
    unsigned char buf[1024];
    size_t len = make_tzif(buf, NULL, NULL, 0, &std_off, 1, footer);
    tzdir_write(d, name, buf, len);
}

static void expect_offsets(const char *zone, const int64_t *at, const int32_t *off, size_t n)
{
    sb_tz *tz = load_tz(zone);
    for (size_t i = 0; i < n; i++)
        if (sb_tz_offset(tz, at[i]) != off[i])
            fail_msg("%s: case %zu: offset %d, want %d", zone, i, (int)sb_tz_offset(tz, at[i]), (int)off[i]);
    sb_tz_free(tz);
}

/* The footer forms Jn, n and Mm.w.d with negative and over-24h times;
 * expectations from `zdump -v -c 2027,2029 '<TZ string>'` (glibc). */
static void test_tz_footer_forms(void **state)
{
    tzdir *d = *state;
    write_rule_zone(d, "Julian", 3600, "AAA-1BBB,J60/0,299/25");
    const int64_t j_at[] = {
        utc(2027, 2, 28, 22, 59, 59),  utc(2027, 2, 28, 23, 0, 0),   utc(2027, 10, 27, 22, 59, 59),
        utc(2027, 10, 27, 23, 0, 0),   utc(2028, 2, 29, 22, 59, 59), utc(2028, 2, 29, 23, 0, 0),
        utc(2028, 10, 26, 22, 59, 59), utc(2028, 10, 26, 23, 0, 0),
    };
    const int32_t j_off[] = {3600, 7200, 7200, 3600, 3600, 7200, 7200, 3600};
    expect_offsets("Julian", j_at, j_off, 8);

    write_rule_zone(d, "West", -10800, "AAA3BBB,J60/-3,300/26");
    const int64_t w_at[] = {
        utc(2027, 2, 28, 23, 59, 59), utc(2027, 3, 1, 0, 0, 0),     utc(2027, 10, 29, 3, 59, 59),
        utc(2027, 10, 29, 4, 0, 0),   utc(2028, 2, 29, 23, 59, 59), utc(2028, 3, 1, 0, 0, 0),
        utc(2028, 10, 28, 3, 59, 59), utc(2028, 10, 28, 4, 0, 0),
    };
    const int32_t w_off[] = {-10800, -7200, -7200, -10800, -10800, -7200, -7200, -10800};
    expect_offsets("West", w_at, w_off, 8);

    write_rule_zone(d, "Odd", 19800, "AAA-5:30BBB-6:45,M4.5.0/-26,M9.1.5/150");
    const int64_t o_at[] = {
        utc(2027, 4, 23, 16, 29, 59), utc(2027, 4, 23, 16, 30, 0),  utc(2027, 9, 8, 23, 14, 59),
        utc(2027, 9, 8, 23, 15, 0),   utc(2028, 4, 28, 16, 29, 59), utc(2028, 4, 28, 16, 30, 0),
        utc(2028, 9, 6, 23, 14, 59),  utc(2028, 9, 6, 23, 15, 0),
    };
    const int32_t o_off[] = {19800, 24300, 24300, 19800, 19800, 24300, 24300, 19800};
    expect_offsets("Odd", o_at, o_off, 8);

    /* RFC 8536 3.3.1: DST all year. (glibc's zdump disagrees for the last
     * hour of the year; the RFC is what zic relies on.) */
    write_rule_zone(d, "AllYearDst", 3600, "AAA-1BBB,0/0,J365/25");
    const int64_t a_at[] = {utc(2027, 1, 1, 0, 30, 0), utc(2027, 6, 1, 0, 0, 0), utc(2027, 12, 31, 23, 30, 0),
                            utc(2028, 12, 31, 23, 59, 59)};
    const int32_t a_off[] = {7200, 7200, 7200, 7200};
    expect_offsets("AllYearDst", a_at, a_off, 4);

    write_rule_zone(d, "Fixed", 12600, "<+0330>-3:30");
    const int64_t f_at[] = {0, utc(2027, 6, 1, 0, 0, 0), utc(2300, 1, 1, 0, 0, 0)};
    const int32_t f_off[] = {12600, 12600, 12600};
    expect_offsets("Fixed", f_at, f_off, 3);

    /* DST without a rule: tzcode's default ",M3.2.0,M11.1.0" (02:00 local). */
    write_rule_zone(d, "NoRule", -18000, "AAA5BBB");
    const int64_t n_at[] = {utc(2030, 3, 10, 6, 59, 59), utc(2030, 3, 10, 7, 0, 0), utc(2030, 11, 3, 5, 59, 59),
                            utc(2030, 11, 3, 6, 0, 0)};
    const int32_t n_off[] = {-18000, -14400, -14400, -18000};
    expect_offsets("NoRule", n_at, n_off, 4);
}

/* A table followed by a footer, and a table without one. */
static void test_tz_table_and_footer(void **state)
{
    tzdir *d = *state;
    unsigned char buf[1024];
    const int64_t at[] = {utc(1990, 1, 1, 0, 0, 0) / 1000};
    const uint8_t type[] = {1};
    const int32_t offs[] = {3600, 10800};
    tzdir_write(d, "Jump", buf, make_tzif(buf, at, type, 1, offs, 2, "<+03>-3"));
    sb_tz *tz = load_tz("Jump");
    assert_int_equal(sb_tz_offset(tz, utc(1989, 12, 31, 23, 59, 59)), 3600); /* type 0 before */
    assert_int_equal(sb_tz_offset(tz, utc(1990, 1, 1, 0, 0, 0)), 10800);
    assert_int_equal(sb_tz_offset(tz, utc(2500, 1, 1, 0, 0, 0)), 10800);
    /* local 01:00-02:59 on 1990-01-01 was skipped */
    assert_int_equal(sb_tz_from_local(tz, 1990, 1, 1, 59), utc(1989, 12, 31, 23, 59, 0));
    assert_int_equal(sb_tz_from_local(tz, 1990, 1, 1, 90), utc(1990, 1, 1, 0, 0, 0));
    assert_int_equal(sb_tz_from_local(tz, 1990, 1, 1, 180), utc(1990, 1, 1, 0, 0, 0));
    assert_int_equal(sb_tz_from_local(tz, 1990, 1, 1, 181), utc(1990, 1, 1, 0, 1, 0));
    sb_tz_free(tz);

    tzdir_write(d, "NoFooter", buf, make_tzif(buf, at, type, 1, offs, 2, NULL));
    tz = load_tz("NoFooter");
    assert_int_equal(sb_tz_offset(tz, utc(1980, 1, 1, 0, 0, 0)), 3600);
    assert_int_equal(sb_tz_offset(tz, utc(2200, 1, 1, 0, 0, 0)), 10800);
    sb_tz_free(tz);

    /* $SB_TZDIR replaces the system directory. */
    assert_int_equal(sb_tz_load("Europe/Berlin", &tz), SB_ENOTFOUND);
}

/* ---- the local day of an instant (sb_tz_day) ---- */

static void expect_day(const sb_tz *tz, int64_t at, int64_t start, int64_t end)
{
    int64_t s = 0, e = 0;
    sb_tz_day(tz, at, &s, &e);
    if (s != start || e != end)
        fail_msg("%s: day of %lld is [%lld, %lld), want [%lld, %lld)", sb_tz_name(tz), (long long)at, (long long)s,
                 (long long)e, (long long)start, (long long)end);
}

static void test_tz_day(void **state)
{
    /* Tokyo, +09 all year: the day starts at 15:00 UTC the day before. */
    sb_tz *tz = load_tz("Asia/Tokyo");
    expect_day(tz, utc(2026, 11, 24, 15, 0, 0), utc(2026, 11, 24, 15, 0, 0), utc(2026, 11, 25, 15, 0, 0));
    expect_day(tz, utc(2026, 11, 24, 14, 59, 59) + 999, utc(2026, 11, 23, 15, 0, 0), utc(2026, 11, 24, 15, 0, 0));
    sb_tz_free(tz);
    /* Berlin: 23 hours on 2026-03-29, 25 hours on 2026-10-25 (zdump above). */
    tz = load_tz("Europe/Berlin");
    expect_day(tz, utc(2026, 3, 29, 12, 0, 0), utc(2026, 3, 28, 23, 0, 0), utc(2026, 3, 29, 22, 0, 0));
    expect_day(tz, utc(2026, 3, 28, 23, 0, 0), utc(2026, 3, 28, 23, 0, 0), utc(2026, 3, 29, 22, 0, 0));
    expect_day(tz, utc(2026, 3, 29, 22, 0, 0), utc(2026, 3, 29, 22, 0, 0), utc(2026, 3, 30, 22, 0, 0));
    expect_day(tz, utc(2026, 10, 25, 0, 30, 0), utc(2026, 10, 24, 22, 0, 0), utc(2026, 10, 25, 23, 0, 0));
    expect_day(tz, utc(2026, 10, 25, 1, 30, 0), utc(2026, 10, 24, 22, 0, 0), utc(2026, 10, 25, 23, 0, 0));
    sb_tz_free(tz);
    /* Almaty went from +06 to +05 at local midnight 2024-03-01, which came
     * at 19:00 UT (zdump: Feb 29 18:00 UT = 23:00 +05). */
    tz = load_tz("Asia/Almaty");
    expect_day(tz, utc(2024, 2, 29, 18, 30, 0), utc(2024, 2, 28, 18, 0, 0), utc(2024, 2, 29, 19, 0, 0));
    expect_day(tz, utc(2024, 2, 29, 19, 0, 0), utc(2024, 2, 29, 19, 0, 0), utc(2024, 3, 1, 19, 0, 0));
    sb_tz_free(tz);
    /* Sao Paulo changed its clocks at midnight. zdump: Oct 15 2017 02:59:59
     * UT = Oct 14 23:59:59 -03, 03:00:00 UT = Oct 15 01:00:00 -02 (the
     * midnight never came: the day starts when the gap ends, 23 hours);
     * Feb 18 2018 02:00:00 UT = Feb 17 23:00:00 -03 (25 hours). */
    tz = load_tz("America/Sao_Paulo");
    expect_day(tz, utc(2017, 10, 15, 12, 0, 0), utc(2017, 10, 15, 3, 0, 0), utc(2017, 10, 16, 2, 0, 0));
    expect_day(tz, utc(2017, 10, 15, 2, 59, 59), utc(2017, 10, 14, 3, 0, 0), utc(2017, 10, 15, 3, 0, 0));
    expect_day(tz, utc(2018, 2, 18, 2, 30, 0), utc(2018, 2, 17, 2, 0, 0), utc(2018, 2, 18, 3, 0, 0));
    sb_tz_free(tz);
    /* Apia skipped 2011-12-30: Dec 29 23:59:59 -10 was followed by Dec 31
     * 00:00:00 +14 (Dec 30 10:00 UT). */
    tz = load_tz("Pacific/Apia");
    expect_day(tz, utc(2011, 12, 30, 9, 0, 0), utc(2011, 12, 29, 10, 0, 0), utc(2011, 12, 30, 10, 0, 0));
    expect_day(tz, utc(2011, 12, 30, 10, 0, 0), utc(2011, 12, 30, 10, 0, 0), utc(2011, 12, 31, 10, 0, 0));
    sb_tz_free(tz);
}

/* Clocks that go back across midnight: 00:30 +01 becomes 23:30 +00 of the
 * day before, at 2026-01-10 23:30 UT. The half hour after the change reads
 * January 10 again but belongs to January 11, which began at 23:00 UT. */
static void test_tz_day_back_across_midnight(void **state)
{
    tzdir *d = *state;
    unsigned char buf[1024];
    const int64_t at[] = {utc(2026, 1, 10, 23, 30, 0) / 1000};
    const uint8_t type[] = {1};
    const int32_t offs[] = {3600, 0};
    tzdir_write(d, "Back", buf, make_tzif(buf, at, type, 1, offs, 2, "<+00>0"));
    sb_tz *tz = load_tz("Back");
    assert_local(sb_tz_to_local(tz, utc(2026, 1, 10, 23, 40, 0)), 2026, 1, 10, 5, 23 * 60 + 40, 0);
    expect_day(tz, utc(2026, 1, 10, 22, 0, 0), utc(2026, 1, 9, 23, 0, 0), utc(2026, 1, 10, 23, 0, 0));
    expect_day(tz, utc(2026, 1, 10, 23, 10, 0), utc(2026, 1, 10, 23, 0, 0), utc(2026, 1, 12, 0, 0, 0));
    expect_day(tz, utc(2026, 1, 10, 23, 40, 0), utc(2026, 1, 10, 23, 0, 0), utc(2026, 1, 12, 0, 0, 0));
    expect_day(tz, utc(2026, 1, 12, 0, 0, 0), utc(2026, 1, 12, 0, 0, 0), utc(2026, 1, 13, 0, 0, 0));
    sb_tz_free(tz);
}

static void expect_load(const char *name, int want)
{
    sb_tz *tz = NULL;
    int rc = sb_tz_load(name, &tz);
    if (rc != want)
        fail_msg("sb_tz_load(%s) = %d, want %d", name, rc, want);
    if (rc == 0)
        sb_tz_free(tz);
    else
        assert_null(tz);
}

static void test_tz_corrupt_files(void **state)
{
    tzdir *d = *state;
    unsigned char buf[1024];
    const int64_t at[] = {1000, 2000};
    const uint8_t type[] = {1, 0};
    const int32_t offs[] = {3600, 7200};
    size_t len = make_tzif(buf, at, type, 2, offs, 2, "AAA-1");
    tzdir_write(d, "Good", buf, len);
    expect_load("Good", 0);

    tzdir_write(d, "Truncated", buf, len - 12);
    expect_load("Truncated", SB_EINVAL);
    tzdir_write(d, "NoNewline", buf, len - 1);
    expect_load("NoNewline", SB_EINVAL);
    tzdir_write(d, "Short", buf, 30);
    expect_load("Short", SB_EINVAL);

    unsigned char bad[1024];
    memcpy(bad, buf, len);
    put32(bad + 54 + 32, 0xffffffffu); /* v2 timecnt: bounded before allocating */
    tzdir_write(d, "HugeCount", bad, len);
    expect_load("HugeCount", SB_EINVAL);

    memcpy(bad, buf, len);
    put32(bad + 54 + 36, 0); /* v2 typecnt 0 */
    tzdir_write(d, "NoTypes", bad, len);
    expect_load("NoTypes", SB_EINVAL);

    const uint8_t bad_type[] = {1, 2};
    tzdir_write(d, "BadTypeIndex", bad, make_tzif(bad, at, bad_type, 2, offs, 2, "AAA-1"));
    expect_load("BadTypeIndex", SB_EINVAL);

    const int64_t unordered[] = {2000, 1000};
    tzdir_write(d, "Unordered", bad, make_tzif(bad, unordered, type, 2, offs, 2, "AAA-1"));
    expect_load("Unordered", SB_EINVAL);

    const int32_t huge_off[] = {3600, 100000};
    tzdir_write(d, "HugeOffset", bad, make_tzif(bad, at, type, 2, huge_off, 2, "AAA-1"));
    expect_load("HugeOffset", SB_EINVAL);

    const char *bad_footers[] = {"1ABC",
                                 "AAA",
                                 "AAA-1BBB,M13.1.0,M10.5.0",
                                 "AAA-1BBB,M3.5.0",
                                 "AAA-1BBB,J0,J365",
                                 "AAA-1BBB,M3.5.0/168,M10.5.0",
                                 "AAA-25",
                                 "AAA-1 ",
                                 "<AB>-1"};
    for (size_t i = 0; i < sizeof bad_footers / sizeof bad_footers[0]; i++) {
        char name[32];
        snprintf(name, sizeof name, "BadFooter%zu", i);
        tzdir_write(d, name, bad, make_tzif(bad, at, type, 2, offs, 2, bad_footers[i]));
        expect_load(name, SB_EINVAL);
    }

    memcpy(bad, buf, len);
    bad[4] = 0; /* version 1 */
    tzdir_write(d, "Version1", bad, len);
    expect_load("Version1", SB_EINVAL);

    tzdir_write(d, "Text", "hello, world\n", 13);
    expect_load("Text", SB_ENOTFOUND);

    /* A name with ".." is refused even where the file exists. */
    char sub[96];
    snprintf(sub, sizeof sub, "%s/sub", d->path);
    assert_int_equal(mkdir(sub, 0700), 0);
    snprintf(d->files[d->nfiles++], sizeof d->files[0], "sub");
    setenv("SB_TZDIR", sub, 1);
    expect_load("../Good", SB_ENOTFOUND);
    setenv("SB_TZDIR", d->path, 1);
}

/* ---- calendars ---- */

static const char *moscow_json = "{'time_zone': 'Europe/Moscow',"
                                 " 'hours': {'mon': [['09:00', '13:00'], ['14:00', '18:00']],"
                                 "           'tue': [['14:00', '18:00'], ['09:00', '13:00']],"
                                 "           'wed': [['09:00', '13:00'], ['14:00', '18:00']],"
                                 "           'thu': [['09:00', '13:00'], ['14:00', '18:00']],"
                                 "           'fri': [['09:00', '13:00'], ['14:00', '18:00']],"
                                 "           'sat': [], 'sun': []},"
                                 " 'holidays': [{'date': '2026-01-01', 'recurring': true, 'name': 'New Year'},"
                                 "              {'date': '2024-02-29', 'recurring': true},"
                                 "              {'date': '2026-05-04', 'recurring': false},"
                                 "              {'date': '2026-06-12', 'name': 'Russia Day'}],"
                                 " 'working_days': [{'date': '2026-11-07', 'hours': [['10:00', '15:00']],"
                                 "                   'name': 'Transferred Saturday'},"
                                 "                  {'date': '2026-06-12', 'hours': [['12:00', '13:00']]}]}";

static void test_calendar_is_open_boundaries(void **state)
{
    sb_calendar *cal = cal_q(moscow_json);
    assert_string_equal(sb_tz_name(sb_calendar_tz(cal)), "Europe/Moscow");
    /* Monday 2026-03-02, MSK = UTC+3: [09:00,13:00) [14:00,18:00) */
    assert_false(sb_calendar_is_open(cal, utc(2026, 3, 2, 6, 0, 0) - 1));
    assert_true(sb_calendar_is_open(cal, utc(2026, 3, 2, 6, 0, 0)));
    assert_true(sb_calendar_is_open(cal, utc(2026, 3, 2, 10, 0, 0) - 1));
    assert_false(sb_calendar_is_open(cal, utc(2026, 3, 2, 10, 0, 0)));
    assert_false(sb_calendar_is_open(cal, utc(2026, 3, 2, 11, 0, 0) - 1));
    assert_true(sb_calendar_is_open(cal, utc(2026, 3, 2, 11, 0, 0)));
    assert_true(sb_calendar_is_open(cal, utc(2026, 3, 2, 15, 0, 0) - 1));
    assert_false(sb_calendar_is_open(cal, utc(2026, 3, 2, 15, 0, 0)));
    /* Tuesday's intervals were given out of order */
    assert_true(sb_calendar_is_open(cal, utc(2026, 3, 3, 6, 0, 0)));
    assert_false(sb_calendar_is_open(cal, utc(2026, 3, 3, 10, 30, 0)));
    assert_true(sb_calendar_is_open(cal, utc(2026, 3, 3, 11, 30, 0)));
    /* weekend */
    assert_false(sb_calendar_is_open(cal, utc(2026, 3, 7, 8, 0, 0)));
    assert_false(sb_calendar_is_open(cal, utc(2026, 3, 8, 8, 0, 0)));
    /* outside the supported years */
    assert_false(sb_calendar_is_open(cal, INT64_MIN));
    assert_false(sb_calendar_is_open(cal, INT64_MAX));
    sb_calendar_free(cal);
}

static void test_calendar_next_open(void **state)
{
    sb_calendar *cal = cal_q(moscow_json);
    /* inside: itself; lunch: after lunch */
    assert_int_equal(sb_calendar_next_open(cal, utc(2026, 3, 2, 7, 0, 0)), utc(2026, 3, 2, 7, 0, 0));
    assert_int_equal(sb_calendar_next_open(cal, utc(2026, 3, 2, 10, 0, 0)), utc(2026, 3, 2, 11, 0, 0));
    /* Friday 18:00 → Monday 09:00 */
    assert_int_equal(sb_calendar_next_open(cal, utc(2026, 3, 6, 15, 0, 0)), utc(2026, 3, 9, 6, 0, 0));
    assert_int_equal(sb_calendar_next_open(cal, utc(2026, 3, 7, 12, 0, 0)), utc(2026, 3, 9, 6, 0, 0));
    /* recurring New Year: Thu 2026, Fri 2027, Sat 2028, Mon 2029 */
    assert_int_equal(sb_calendar_next_open(cal, utc(2025, 12, 31, 15, 0, 0)), utc(2026, 1, 2, 6, 0, 0));
    assert_int_equal(sb_calendar_next_open(cal, utc(2026, 12, 31, 15, 0, 0)), utc(2027, 1, 4, 6, 0, 0));
    assert_int_equal(sb_calendar_next_open(cal, utc(2027, 12, 31, 15, 0, 0)), utc(2028, 1, 3, 6, 0, 0));
    assert_int_equal(sb_calendar_next_open(cal, utc(2028, 12, 29, 15, 0, 0)), utc(2029, 1, 2, 6, 0, 0));
    assert_false(sb_calendar_is_open(cal, utc(2030, 1, 1, 7, 0, 0)));
    assert_true(sb_calendar_is_open(cal, utc(2030, 1, 2, 7, 0, 0)));
    /* recurring Feb 29 only in leap years */
    assert_false(sb_calendar_is_open(cal, utc(2028, 2, 29, 7, 0, 0)));
    assert_true(sb_calendar_is_open(cal, utc(2028, 2, 28, 7, 0, 0)));
    assert_true(sb_calendar_is_open(cal, utc(2028, 3, 1, 7, 0, 0)));
    assert_true(sb_calendar_is_open(cal, utc(2027, 3, 1, 7, 0, 0)));
    /* one-off holiday Monday 2026-05-04, not repeated in 2027 */
    assert_false(sb_calendar_is_open(cal, utc(2026, 5, 4, 7, 0, 0)));
    assert_int_equal(sb_calendar_next_open(cal, utc(2026, 5, 1, 15, 0, 0)), utc(2026, 5, 5, 6, 0, 0));
    assert_true(sb_calendar_is_open(cal, utc(2027, 5, 4, 7, 0, 0)));
    /* special working Saturday 2026-11-07 10:00-15:00 */
    assert_int_equal(sb_calendar_next_open(cal, utc(2026, 11, 6, 15, 0, 0)), utc(2026, 11, 7, 7, 0, 0));
    assert_true(sb_calendar_is_open(cal, utc(2026, 11, 7, 8, 0, 0)));
    assert_int_equal(sb_calendar_next_open(cal, utc(2026, 11, 7, 12, 0, 0)), utc(2026, 11, 9, 6, 0, 0));
    assert_false(sb_calendar_is_open(cal, utc(2026, 11, 14, 8, 0, 0)));
    /* a working day wins over a holiday on the same date */
    assert_false(sb_calendar_is_open(cal, utc(2026, 6, 12, 6, 30, 0)));
    assert_true(sb_calendar_is_open(cal, utc(2026, 6, 12, 9, 0, 0)));
    assert_int_equal(sb_calendar_next_open(cal, utc(2026, 6, 12, 6, 0, 0)), utc(2026, 6, 12, 9, 0, 0));
    /* add(x, 0) is next_open(x) */
    assert_int_equal(sb_calendar_add(cal, utc(2026, 3, 6, 15, 0, 0), 0), utc(2026, 3, 9, 6, 0, 0));
    assert_int_equal(sb_calendar_next_open(cal, INT64_MAX), INT64_MAX);
    assert_int_equal(sb_calendar_next_open(cal, INT64_MIN), INT64_MAX);
    sb_calendar_free(cal);
}

static void test_calendar_add_and_elapsed(void **state)
{
    sb_calendar *cal = cal_q(moscow_json);
    /* Friday 17:00 + 2h → 1h on Friday, 1h on Monday */
    assert_int_equal(sb_calendar_add(cal, utc(2026, 3, 6, 14, 0, 0), HOURS(2)), utc(2026, 3, 9, 7, 0, 0));
    /* the whole day ends exactly at the close */
    assert_int_equal(sb_calendar_add(cal, utc(2026, 3, 2, 6, 0, 0), HOURS(8)), utc(2026, 3, 2, 15, 0, 0));
    assert_int_equal(sb_calendar_add(cal, utc(2026, 3, 2, 6, 0, 0), HOURS(8) + 1), utc(2026, 3, 3, 6, 0, 0) + 1);
    /* across lunch */
    assert_int_equal(sb_calendar_add(cal, utc(2026, 3, 2, 9, 0, 0), HOURS(2)), utc(2026, 3, 2, 12, 0, 0));
    /* from a closed instant */
    assert_int_equal(sb_calendar_add(cal, utc(2026, 3, 2, 2, 0, 0), MINS(30)), utc(2026, 3, 2, 6, 30, 0));
    /* Wednesday 17:00 + 2h across the New Year holiday → Friday 10:00 */
    assert_int_equal(sb_calendar_add(cal, utc(2025, 12, 31, 14, 0, 0), HOURS(2)), utc(2026, 1, 2, 7, 0, 0));
    /* a week: 5 × 8h; a New Year week: Monday-Thursday only */
    assert_int_equal(sb_calendar_elapsed(cal, utc(2026, 3, 1, 21, 0, 0), utc(2026, 3, 8, 21, 0, 0)), HOURS(40));
    assert_int_equal(sb_calendar_elapsed(cal, utc(2026, 12, 27, 21, 0, 0), utc(2027, 1, 3, 21, 0, 0)), HOURS(32));
    assert_int_equal(sb_calendar_elapsed(cal, utc(2026, 3, 2, 9, 30, 0), utc(2026, 3, 2, 11, 15, 0)), MINS(45));
    assert_int_equal(sb_calendar_elapsed(cal, utc(2026, 3, 3, 0, 0, 0), utc(2026, 3, 2, 0, 0, 0)), 0);
    assert_int_equal(sb_calendar_elapsed(cal, utc(2026, 3, 3, 0, 0, 0), utc(2026, 3, 3, 0, 0, 0)), 0);
    /* a year: 2026 has 261 weekdays, minus Jan 1, Jun 12 (7h of 8h lost),
     * May 4; plus the 5h working Saturday */
    assert_int_equal(sb_calendar_elapsed(cal, utc(2025, 12, 31, 21, 0, 0), utc(2026, 12, 31, 21, 0, 0)),
                     HOURS(261 * 8 - 8 - 7 - 8 + 5));
    assert_int_equal(sb_calendar_add(cal, utc(2026, 3, 2, 6, 0, 0), INT64_MAX), INT64_MAX);
    assert_int_equal(sb_calendar_add(cal, INT64_MAX, 5), INT64_MAX);
    assert_int_equal(sb_calendar_elapsed(cal, INT64_MAX - 1, INT64_MAX), 0);
    sb_calendar_free(cal);
}

static void test_calendar_midnight_continuity(void **state)
{
    sb_calendar *cal = cal_q("{'time_zone': 'UTC', 'hours': {'mon': [['20:00', '24:00']],"
                             " 'tue': [['00:00', '02:00'], ['22:00', '24:00']], 'wed': [['00:00', '01:00']]}}");
    /* Monday 2026-03-02 */
    assert_false(sb_calendar_is_open(cal, utc(2026, 3, 2, 20, 0, 0) - 1));
    assert_true(sb_calendar_is_open(cal, utc(2026, 3, 2, 20, 0, 0)));
    assert_true(sb_calendar_is_open(cal, utc(2026, 3, 3, 0, 0, 0) - 1));
    assert_true(sb_calendar_is_open(cal, utc(2026, 3, 3, 0, 0, 0)));
    assert_false(sb_calendar_is_open(cal, utc(2026, 3, 3, 2, 0, 0)));
    assert_int_equal(sb_calendar_next_open(cal, utc(2026, 3, 2, 23, 30, 0)), utc(2026, 3, 2, 23, 30, 0));
    assert_int_equal(sb_calendar_add(cal, utc(2026, 3, 2, 23, 0, 0), HOURS(2)), utc(2026, 3, 3, 1, 0, 0));
    assert_int_equal(sb_calendar_add(cal, utc(2026, 3, 3, 1, 0, 0), HOURS(2)), utc(2026, 3, 3, 23, 0, 0));
    assert_int_equal(sb_calendar_add(cal, utc(2026, 3, 3, 23, 0, 0), HOURS(2)), utc(2026, 3, 4, 1, 0, 0));
    assert_int_equal(sb_calendar_elapsed(cal, utc(2026, 3, 2, 0, 0, 0), utc(2026, 3, 5, 0, 0, 0)), HOURS(9));
    assert_int_equal(sb_calendar_elapsed(cal, utc(2026, 3, 2, 23, 0, 0), utc(2026, 3, 3, 1, 0, 0)), HOURS(2));
    sb_calendar_free(cal);
}

static void test_calendar_dst_berlin(void **state)
{
    /* every day 00:00-24:00: the DST days have 23 and 25 hours */
    sb_calendar *cal =
        cal_q("{'time_zone': 'Europe/Berlin', 'hours': {'mon': [['00:00', '24:00']],"
              " 'tue': [['00:00', '24:00']], 'wed': [['00:00', '24:00']], 'thu': [['00:00', '24:00']],"
              " 'fri': [['00:00', '24:00']], 'sat': [['00:00', '24:00']], 'sun': [['00:00', '24:00']]}}");
    assert_true(sb_calendar_is_open(cal, utc(2026, 3, 29, 1, 0, 0) - 1));
    assert_true(sb_calendar_is_open(cal, utc(2026, 3, 29, 1, 0, 0)));
    assert_int_equal(sb_calendar_add(cal, utc(2026, 3, 28, 23, 0, 0), HOURS(23)), utc(2026, 3, 29, 22, 0, 0));
    assert_int_equal(sb_calendar_elapsed(cal, utc(2026, 3, 28, 23, 0, 0), utc(2026, 3, 29, 22, 0, 0)), HOURS(23));
    assert_int_equal(sb_calendar_elapsed(cal, utc(2026, 10, 24, 22, 0, 0), utc(2026, 10, 25, 23, 0, 0)), HOURS(25));
    sb_calendar_free(cal);

    /* only Sundays 00:00-24:00: 2026-03-29 lasts 23h, 2026-10-25 25h */
    cal = cal_q("{'time_zone': 'Europe/Berlin', 'hours': {'sun': [['00:00', '24:00']]}}");
    assert_int_equal(sb_calendar_add(cal, utc(2026, 3, 28, 11, 0, 0), HOURS(23)), utc(2026, 3, 29, 22, 0, 0));
    assert_int_equal(sb_calendar_add(cal, utc(2026, 3, 28, 11, 0, 0), HOURS(23) + 1), utc(2026, 4, 4, 22, 0, 0) + 1);
    assert_int_equal(sb_calendar_elapsed(cal, utc(2026, 3, 23, 0, 0, 0), utc(2026, 3, 30, 12, 0, 0)), HOURS(23));
    assert_int_equal(sb_calendar_elapsed(cal, utc(2026, 3, 16, 0, 0, 0), utc(2026, 3, 23, 12, 0, 0)), HOURS(24));
    assert_int_equal(sb_calendar_add(cal, utc(2026, 10, 24, 10, 0, 0), HOURS(25)), utc(2026, 10, 25, 23, 0, 0));
    assert_int_equal(sb_calendar_elapsed(cal, utc(2026, 10, 19, 0, 0, 0), utc(2026, 10, 26, 12, 0, 0)), HOURS(25));
    sb_calendar_free(cal);

    /* an interval across the gap is shortened, across the overlap lengthened */
    cal = cal_q("{'time_zone': 'Europe/Berlin', 'hours': {'sun': [['01:00', '04:00']]}}");
    assert_int_equal(sb_calendar_elapsed(cal, utc(2026, 3, 28, 0, 0, 0), utc(2026, 3, 30, 0, 0, 0)), HOURS(2));
    assert_true(sb_calendar_is_open(cal, utc(2026, 3, 29, 1, 0, 0) - 1));
    assert_true(sb_calendar_is_open(cal, utc(2026, 3, 29, 1, 0, 0)));
    assert_false(sb_calendar_is_open(cal, utc(2026, 3, 29, 2, 0, 0)));
    assert_int_equal(sb_calendar_elapsed(cal, utc(2026, 10, 24, 0, 0, 0), utc(2026, 10, 26, 0, 0, 0)), HOURS(4));
    assert_int_equal(sb_calendar_next_open(cal, utc(2026, 10, 24, 12, 0, 0)), utc(2026, 10, 24, 23, 0, 0));
    assert_true(sb_calendar_is_open(cal, utc(2026, 10, 25, 1, 30, 0))); /* the second 02:30 */
    assert_int_equal(sb_calendar_add(cal, utc(2026, 10, 24, 23, 0, 0), HOURS(4)), utc(2026, 10, 25, 3, 0, 0));
    sb_calendar_free(cal);

    /* an interval inside the gap vanishes; inside the overlap it counts on
     * the first pass only */
    cal = cal_q("{'time_zone': 'Europe/Berlin', 'hours': {'sun': [['02:00', '02:30']]}}");
    assert_int_equal(sb_calendar_elapsed(cal, utc(2026, 3, 28, 0, 0, 0), utc(2026, 3, 30, 0, 0, 0)), 0);
    assert_false(sb_calendar_is_open(cal, utc(2026, 3, 29, 1, 0, 0)));
    assert_int_equal(sb_calendar_next_open(cal, utc(2026, 3, 28, 12, 0, 0)), utc(2026, 4, 5, 0, 0, 0));
    assert_int_equal(sb_calendar_elapsed(cal, utc(2026, 10, 24, 0, 0, 0), utc(2026, 10, 26, 0, 0, 0)), MINS(30));
    assert_true(sb_calendar_is_open(cal, utc(2026, 10, 25, 0, 15, 0)));
    assert_false(sb_calendar_is_open(cal, utc(2026, 10, 25, 1, 15, 0)));
    sb_calendar_free(cal);
}

static const char *weekdays_9_18 = "'hours': {'mon': [['09:00', '18:00']], 'tue': [['09:00', '18:00']],"
                                   " 'wed': [['09:00', '18:00']], 'thu': [['09:00', '18:00']],"
                                   " 'fri': [['09:00', '18:00']]}}";

static sb_calendar *weekday_calendar(const char *zone)
{
    char text[512];
    snprintf(text, sizeof text, "{'time_zone': '%s', %s", zone, weekdays_9_18);
    return cal_q(text);
}

static void test_calendar_other_zones(void **state)
{
    sb_calendar *cal = weekday_calendar("America/New_York");
    /* Friday 18:00 EDT → Monday 09:00 EST */
    assert_int_equal(sb_calendar_next_open(cal, utc(2026, 10, 30, 22, 0, 0)), utc(2026, 11, 2, 14, 0, 0));
    assert_int_equal(sb_calendar_elapsed(cal, utc(2026, 10, 30, 13, 0, 0), utc(2026, 11, 2, 23, 0, 0)), HOURS(18));
    sb_calendar_free(cal);

    cal = weekday_calendar("Asia/Almaty");
    assert_true(sb_calendar_is_open(cal, utc(2024, 2, 29, 3, 0, 0)));  /* 09:00 +06 */
    assert_false(sb_calendar_is_open(cal, utc(2024, 3, 1, 3, 30, 0))); /* 08:30 +05 */
    assert_int_equal(sb_calendar_next_open(cal, utc(2024, 2, 29, 12, 0, 0)), utc(2024, 3, 1, 4, 0, 0));
    assert_int_equal(sb_calendar_elapsed(cal, utc(2024, 2, 29, 0, 0, 0), utc(2024, 3, 2, 0, 0, 0)), HOURS(18));
    sb_calendar_free(cal);

    cal = weekday_calendar("Europe/Berlin");
    /* 2040 is beyond the table: Sunday → Monday 09:00 CEST */
    assert_int_equal(sb_calendar_next_open(cal, utc(2040, 7, 1, 12, 0, 0)), utc(2040, 7, 2, 7, 0, 0));
    sb_calendar_free(cal);
}

static void test_calendar_no_hours(void **state)
{
    const char *texts[] = {"{'time_zone': 'UTC'}", "{'time_zone': 'Etc/UTC', 'hours': {'mon': [], 'sun': []}}",
                           "{'time_zone': 'UTC', 'hours': {}, 'holidays': [], 'working_days': []}"};
    for (size_t i = 0; i < 3; i++) {
        sb_calendar *cal = cal_q(texts[i]);
        int64_t t = utc(2026, 3, 2, 12, 0, 0);
        assert_false(sb_calendar_is_open(cal, t));
        assert_int_equal(sb_calendar_next_open(cal, t), INT64_MAX);
        assert_int_equal(sb_calendar_add(cal, t, 0), INT64_MAX);
        assert_int_equal(sb_calendar_add(cal, t, HOURS(1)), INT64_MAX);
        assert_int_equal(sb_calendar_elapsed(cal, t, t + DAYS(365)), 0);
        sb_calendar_free(cal);
    }
}

static void test_calendar_horizon(void **state)
{
    sb_calendar *cal =
        cal_q("{'time_zone': 'UTC', 'working_days': [{'date': '2027-06-01', 'hours': [['10:00', '11:00']]}]}");
    int64_t target = utc(2027, 6, 1, 10, 0, 0);
    assert_int_equal(sb_calendar_next_open(cal, utc(2026, 6, 1, 0, 0, 0)), target);
    assert_int_equal(sb_calendar_next_open(cal, target - DAYS(400)), target);
    assert_int_equal(sb_calendar_next_open(cal, target - DAYS(400) - 1), INT64_MAX);
    assert_int_equal(sb_calendar_next_open(cal, utc(2026, 1, 1, 0, 0, 0)), INT64_MAX);
    /* the result itself must lie within 400 days */
    assert_int_equal(sb_calendar_add(cal, target - DAYS(400), 0), target);
    assert_int_equal(sb_calendar_add(cal, target - DAYS(400), 1), INT64_MAX);
    assert_int_equal(sb_calendar_add(cal, target - DAYS(400) + HOURS(1), HOURS(1)), target + HOURS(1));
    assert_int_equal(sb_calendar_add(cal, target - DAYS(400) + HOURS(1), HOURS(1) + 1), INT64_MAX);
    assert_int_equal(sb_calendar_add(cal, target - DAYS(399), HOURS(1)), target + HOURS(1));
    assert_int_equal(sb_calendar_elapsed(cal, 0, utc(2030, 1, 1, 0, 0, 0)), HOURS(1));
    sb_calendar_free(cal);
}

static uint64_t rng_state = 0x9e3779b97f4a7c15u;

static uint64_t rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

/* Holidays, a lunch break, Sunday hours inside the DST hour and a
 * working day on a DST Sunday. */
static const char *mixed_json = "{'time_zone': 'Europe/Berlin',"
                                " 'hours': {'mon': [['00:00', '01:00'], ['08:00', '12:00'], ['13:00', '17:30']],"
                                "           'tue': [['08:00', '12:00'], ['13:00', '17:30']],"
                                "           'wed': [['08:00', '12:00'], ['13:00', '17:30']],"
                                "           'thu': [['08:00', '12:00'], ['13:00', '17:30']],"
                                "           'fri': [['08:00', '12:00'], ['13:00', '17:30']],"
                                "           'sat': [['10:00', '14:00']],"
                                "           'sun': [['01:30', '02:30'], ['23:00', '24:00']]},"
                                " 'holidays': [{'date': '2025-12-25', 'recurring': true},"
                                "              {'date': '2025-01-01', 'recurring': true},"
                                "              {'date': '2026-04-03'}],"
                                " 'working_days': [{'date': '2026-03-29', 'hours': [['00:00', '24:00']]},"
                                "                  {'date': '2026-10-25', 'hours': [['01:00', '04:00']]}]}";

static void test_calendar_random_consistency(void **state)
{
    sb_calendar *cal = cal_q(mixed_json);
    int64_t lo = utc(2025, 6, 1, 0, 0, 0), hi = utc(2028, 1, 1, 0, 0, 0);
    for (int i = 0; i < 3000; i++) {
        int64_t from = lo + (int64_t)(rng() % (uint64_t)(hi - lo));
        int64_t d = i % 10 == 0 ? 0 : (int64_t)(rng() % (uint64_t)HOURS(150));
        int64_t r = sb_calendar_add(cal, from, d);
        assert_true(r != INT64_MAX);
        assert_true(r >= from);
        if (sb_calendar_elapsed(cal, from, r) != d)
            fail_msg("from=%lld d=%lld r=%lld elapsed=%lld", (long long)from, (long long)d, (long long)r,
                     (long long)sb_calendar_elapsed(cal, from, r));
        if (d > 0) {
            assert_true(sb_calendar_is_open(cal, r - 1));
            assert_int_equal(sb_calendar_elapsed(cal, from, r - 1), d - 1);
        } else {
            assert_true(sb_calendar_is_open(cal, r));
        }
        int64_t n = sb_calendar_next_open(cal, from);
        assert_true(sb_calendar_is_open(cal, n));
        assert_int_equal(sb_calendar_elapsed(cal, from, n), 0);
        /* elapsed over one millisecond agrees with is_open */
        int64_t t = lo + (int64_t)(rng() % (uint64_t)(hi - lo));
        assert_int_equal(sb_calendar_elapsed(cal, t, t + 1), sb_calendar_is_open(cal, t) ? 1 : 0);
        /* additivity */
        int64_t b = from + (int64_t)(rng() % (uint64_t)DAYS(20)), c = b + (int64_t)(rng() % (uint64_t)DAYS(20));
        assert_int_equal(sb_calendar_elapsed(cal, from, c),
                         sb_calendar_elapsed(cal, from, b) + sb_calendar_elapsed(cal, b, c));
    }
    sb_calendar_free(cal);
}

/* Minute samples of is_open around both DST changes add up to elapsed(). */
static void test_calendar_sampled_dst_weeks(void **state)
{
    sb_calendar *cal = cal_q(mixed_json);
    const int64_t weeks[] = {utc(2026, 3, 26, 0, 0, 0), utc(2026, 10, 22, 0, 0, 0), utc(2027, 3, 25, 0, 0, 0),
                             utc(2027, 10, 28, 0, 0, 0)};
    for (size_t w = 0; w < 4; w++) {
        int64_t open_minutes = 0;
        for (int64_t t = weeks[w]; t < weeks[w] + DAYS(7); t += MINS(1))
            open_minutes += sb_calendar_is_open(cal, t);
        assert_int_equal(sb_calendar_elapsed(cal, weeks[w], weeks[w] + DAYS(7)), MINS(open_minutes));
    }
    /* 2026-03-29 is a working day 00:00-24:00 of 23 hours */
    assert_int_equal(sb_calendar_elapsed(cal, utc(2026, 3, 28, 23, 0, 0), utc(2026, 3, 29, 22, 0, 0)), HOURS(23));
    sb_calendar_free(cal);
}

/* ---- validation ---- */

static void test_calendar_validation(void **state)
{
    static const struct {
        const char *json;
        int rc;
        const char *field;
    } cases[] = {
        {"[]", SB_EINVAL, ""},
        {"{'time_zone': 'UTC', 'color': 'red'}", SB_EINVAL, "color"},
        {"{}", SB_EINVAL, "time_zone"},
        {"{'hours': {}}", SB_EINVAL, "time_zone"},
        {"{'time_zone': 3}", SB_EINVAL, "time_zone"},
        {"{'time_zone': 'Mars/Olympus_Mons'}", SB_ENOTFOUND, "time_zone"},
        {"{'time_zone': '../../etc/passwd'}", SB_ENOTFOUND, "time_zone"},
        {"{'time_zone': 'UTC', 'hours': []}", SB_EINVAL, "hours"},
        {"{'time_zone': 'UTC', 'hours': {'monday': []}}", SB_EINVAL, "hours.monday"},
        {"{'time_zone': 'UTC', 'hours': {'Mon': []}}", SB_EINVAL, "hours.Mon"},
        {"{'time_zone': 'UTC', 'hours': {'mon': 'all day'}}", SB_EINVAL, "hours.mon"},
        {"{'time_zone': 'UTC', 'hours': {'mon': [['09:00', '12:00'], ['13:00']]}}", SB_EINVAL, "hours.mon[1]"},
        {"{'time_zone': 'UTC', 'hours': {'mon': [['09:00', 1200]]}}", SB_EINVAL, "hours.mon[0]"},
        {"{'time_zone': 'UTC', 'hours': {'mon': [['09:00', '12:00', '13:00']]}}", SB_EINVAL, "hours.mon[0]"},
        {"{'time_zone': 'UTC', 'hours': {'tue': [['9:00', '12:00']]}}", SB_EINVAL, "hours.tue[0]"},
        {"{'time_zone': 'UTC', 'hours': {'tue': [['09:00', '25:00']]}}", SB_EINVAL, "hours.tue[0]"},
        {"{'time_zone': 'UTC', 'hours': {'tue': [['09:60', '12:00']]}}", SB_EINVAL, "hours.tue[0]"},
        {"{'time_zone': 'UTC', 'hours': {'tue': [['09:00', '24:30']]}}", SB_EINVAL, "hours.tue[0]"},
        {"{'time_zone': 'UTC', 'hours': {'tue': [['09:00', '12-00']]}}", SB_EINVAL, "hours.tue[0]"},
        {"{'time_zone': 'UTC', 'hours': {'tue': [['09:00', '12:00 ']]}}", SB_EINVAL, "hours.tue[0]"},
        {"{'time_zone': 'UTC', 'hours': {'tue': [['24:00', '24:00']]}}", SB_EINVAL, "hours.tue[0]"},
        {"{'time_zone': 'UTC', 'hours': {'wed': [['18:00', '09:00']]}}", SB_EINVAL, "hours.wed[0]"},
        {"{'time_zone': 'UTC', 'hours': {'wed': [['09:00', '09:00']]}}", SB_EINVAL, "hours.wed[0]"},
        {"{'time_zone': 'UTC', 'hours': {'thu': [['09:00', '12:00'], ['13:00', '18:00'], ['11:00', '14:00']]}}",
         SB_EINVAL, "hours.thu[2]"},
        {"{'time_zone': 'UTC', 'hours': {'thu': [['13:00', '18:00'], ['09:00', '13:30']]}}", SB_EINVAL, "hours.thu[1]"},
        {"{'time_zone': 'UTC', 'hours': {'thu': [['09:00', '18:00'], ['10:00', '11:00']]}}", SB_EINVAL, "hours.thu[1]"},
        {"{'time_zone': 'UTC', 'holidays': {}}", SB_EINVAL, "holidays"},
        {"{'time_zone': 'UTC', 'holidays': ['2026-01-01']}", SB_EINVAL, "holidays[0]"},
        {"{'time_zone': 'UTC', 'holidays': [{'recurring': true}]}", SB_EINVAL, "holidays[0].date"},
        {"{'time_zone': 'UTC', 'holidays': [{'date': '2026-01-01'}, {'date': '2026-02-29'}]}", SB_EINVAL,
         "holidays[1].date"},
        {"{'time_zone': 'UTC', 'holidays': [{'date': '2025-02-29', 'recurring': true}]}", SB_EINVAL,
         "holidays[0].date"},
        {"{'time_zone': 'UTC', 'holidays': [{'date': '1900-02-29'}]}", SB_EINVAL, "holidays[0].date"},
        {"{'time_zone': 'UTC', 'holidays': [{'date': '2026-04-31'}]}", SB_EINVAL, "holidays[0].date"},
        {"{'time_zone': 'UTC', 'holidays': [{'date': '2026-13-01'}]}", SB_EINVAL, "holidays[0].date"},
        {"{'time_zone': 'UTC', 'holidays': [{'date': '2026-00-10'}]}", SB_EINVAL, "holidays[0].date"},
        {"{'time_zone': 'UTC', 'holidays': [{'date': '2026-1-01'}]}", SB_EINVAL, "holidays[0].date"},
        {"{'time_zone': 'UTC', 'holidays': [{'date': '0000-01-01'}]}", SB_EINVAL, "holidays[0].date"},
        {"{'time_zone': 'UTC', 'holidays': [{'date': 20260101}]}", SB_EINVAL, "holidays[0].date"},
        {"{'time_zone': 'UTC', 'holidays': [{'date': '2026-01-01', 'recurring': 'yes'}]}", SB_EINVAL,
         "holidays[0].recurring"},
        {"{'time_zone': 'UTC', 'holidays': [{'date': '2026-01-01', 'name': 7}]}", SB_EINVAL, "holidays[0].name"},
        {"{'time_zone': 'UTC', 'holidays': [{'date': '2026-01-01', 'when': 'always'}]}", SB_EINVAL, "holidays[0].when"},
        {"{'time_zone': 'UTC', 'working_days': {}}", SB_EINVAL, "working_days"},
        {"{'time_zone': 'UTC', 'working_days': [3]}", SB_EINVAL, "working_days[0]"},
        {"{'time_zone': 'UTC', 'working_days': [{'date': '2026-11-07'}]}", SB_EINVAL, "working_days[0].hours"},
        {"{'time_zone': 'UTC', 'working_days': [{'date': '2026-11-07', 'hours': {}}]}", SB_EINVAL,
         "working_days[0].hours"},
        {"{'time_zone': 'UTC', 'working_days': [{'hours': []}]}", SB_EINVAL, "working_days[0].date"},
        {"{'time_zone': 'UTC', 'working_days': [{'date': '2026-11-31', 'hours': []}]}", SB_EINVAL,
         "working_days[0].date"},
        {"{'time_zone': 'UTC', 'working_days': [{'date': '2026-11-07', 'hours': [], 'recurring': true}]}", SB_EINVAL,
         "working_days[0].recurring"},
        {"{'time_zone': 'UTC', 'working_days': [{'date': '2026-11-01', 'hours': []},"
         " {'date': '2026-11-07', 'hours': []},"
         " {'date': '2026-11-08', 'hours': [['10:00', '15:00'], ['14:00', '16:00']]}]}",
         SB_EINVAL, "working_days[2].hours[1]"},
        {"{'time_zone': 'UTC', 'working_days': [{'date': '2026-11-01', 'hours': []},"
         " {'date': '2026-11-07', 'hours': []}, {'date': '2026-11-08', 'hours': [['10:00', '09:00']]}]}",
         SB_EINVAL, "working_days[2].hours[0]"},
        {"{'time_zone': 'UTC', 'working_days': [{'date': '2026-11-07', 'hours': []},"
         " {'date': '2026-11-08', 'hours': []}, {'date': '2026-11-07', 'hours': [['10:00', '15:00']]}]}",
         SB_EINVAL, "working_days[2].date"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        expect_invalid(cases[i].json, cases[i].rc, cases[i].field);

    /* These are accepted: adjacent intervals, 24:00 as an end, Feb 29 of a
     * leap year (also recurring), 2000-02-29, an empty working day. */
    sb_calendar *cal = cal_q("{'time_zone': 'UTC', 'hours': {'mon': [['12:00', '24:00'], ['00:00', '12:00']]},"
                             " 'holidays': [{'date': '2024-02-29', 'recurring': true}, {'date': '2000-02-29'},"
                             " {'date': '2026-01-01'}, {'date': '2026-01-01'}],"
                             " 'working_days': [{'date': '2026-11-07', 'hours': []}]}");
    assert_int_equal(sb_calendar_elapsed(cal, utc(2026, 3, 2, 0, 0, 0), utc(2026, 3, 3, 0, 0, 0)), HOURS(24));
    sb_calendar_free(cal);
}

static void test_calendar_validation_limits(void **state)
{
    /* 16 intervals per day are fine, 17 are not */
    json_t *j = json_q("{'time_zone': 'UTC', 'hours': {'wed': []}}");
    json_t *wed = json_object_get(json_object_get(j, "hours"), "wed");
    char a[8], b[8];
    for (int i = 0; i < 17; i++) {
        snprintf(a, sizeof a, "%02d:00", i);
        snprintf(b, sizeof b, "%02d:30", i);
        json_array_append_new(wed, json_pack("[s,s]", a, b));
        if (i == 15) {
            char field[64], msg[256];
            sb_calendar *cal = NULL;
            assert_int_equal(sb_calendar_from_json(j, &cal, field, sizeof field, msg, sizeof msg), 0);
            sb_calendar_free(cal);
        }
    }
    expect_invalid_json(j, SB_EINVAL, "hours.wed");
    json_decref(j);

    /* 1000 holidays / working days are fine, 1001 are not */
    const char *lists[] = {"holidays", "working_days"};
    for (int l = 0; l < 2; l++) {
        j = json_q("{'time_zone': 'UTC'}");
        json_t *arr = json_array();
        json_object_set_new(j, lists[l], arr);
        char date[16];
        for (int i = 0; i < 1001; i++) {
            snprintf(date, sizeof date, "%04d-01-01", 1000 + i);
            json_array_append_new(arr, l == 0 ? json_pack("{s:s}", "date", date)
                                              : json_pack("{s:s,s:[]}", "date", date, "hours"));
            if (i == 999) {
                char field[64], msg[256];
                sb_calendar *cal = NULL;
                assert_int_equal(sb_calendar_from_json(j, &cal, field, sizeof field, msg, sizeof msg), 0);
                sb_calendar_free(cal);
            }
        }
        expect_invalid_json(j, SB_EINVAL, lists[l]);
        json_decref(j);
    }
}

static void test_calendar_error_messages(void **state)
{
    json_t *j = json_q("{'time_zone': 'UTC', 'hours': {'fri': [['09:00', '25:00']]}}");
    char field[64], msg[256];
    sb_calendar *cal = NULL;
    assert_int_equal(sb_calendar_from_json(j, &cal, field, sizeof field, msg, sizeof msg), SB_EINVAL);
    assert_string_equal(field, "hours.fri[0]");
    assert_non_null(strstr(msg, "25:00"));
    /* tiny or absent buffers are safe */
    char small_field[4], small_msg[8];
    assert_int_equal(sb_calendar_from_json(j, &cal, small_field, sizeof small_field, small_msg, sizeof small_msg),
                     SB_EINVAL);
    assert_string_equal(small_field, "hou");
    assert_int_equal(strlen(small_msg), 7);
    assert_int_equal(sb_calendar_from_json(j, &cal, NULL, 0, NULL, 0), SB_EINVAL);
    json_decref(j);

    j = json_q("{'time_zone': 'Mars/Olympus_Mons'}");
    assert_int_equal(sb_calendar_from_json(j, &cal, field, sizeof field, msg, sizeof msg), SB_ENOTFOUND);
    assert_string_equal(field, "time_zone");
    assert_non_null(strstr(msg, "Mars/Olympus_Mons"));
    json_decref(j);

    /* success clears both */
    j = json_q("{'time_zone': 'UTC'}");
    assert_int_equal(sb_calendar_from_json(j, &cal, field, sizeof field, msg, sizeof msg), 0);
    assert_string_equal(field, "");
    assert_string_equal(msg, "");
    sb_calendar_free(cal);
    json_decref(j);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tz_moscow),
        cmocka_unit_test(test_tz_berlin_spring_forward),
        cmocka_unit_test(test_tz_berlin_fall_back),
        cmocka_unit_test(test_tz_new_york),
        cmocka_unit_test(test_tz_almaty),
        cmocka_unit_test(test_tz_footer_after_2037),
        cmocka_unit_test(test_tz_utc),
        cmocka_unit_test(test_tz_bad_names),
        cmocka_unit_test_setup_teardown(test_tz_footer_forms, tzdir_setup, tzdir_teardown),
        cmocka_unit_test_setup_teardown(test_tz_table_and_footer, tzdir_setup, tzdir_teardown),
        cmocka_unit_test_setup_teardown(test_tz_corrupt_files, tzdir_setup, tzdir_teardown),
        cmocka_unit_test(test_tz_day),
        cmocka_unit_test_setup_teardown(test_tz_day_back_across_midnight, tzdir_setup, tzdir_teardown),
        cmocka_unit_test(test_calendar_is_open_boundaries),
        cmocka_unit_test(test_calendar_next_open),
        cmocka_unit_test(test_calendar_add_and_elapsed),
        cmocka_unit_test(test_calendar_midnight_continuity),
        cmocka_unit_test(test_calendar_dst_berlin),
        cmocka_unit_test(test_calendar_other_zones),
        cmocka_unit_test(test_calendar_no_hours),
        cmocka_unit_test(test_calendar_horizon),
        cmocka_unit_test(test_calendar_random_consistency),
        cmocka_unit_test(test_calendar_sampled_dst_weeks),
        cmocka_unit_test(test_calendar_validation),
        cmocka_unit_test(test_calendar_validation_limits),
        cmocka_unit_test(test_calendar_error_messages),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
