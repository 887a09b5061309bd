/* calendar.c - time zones from TZif files and business calendars (see
 * calendar.h).
 *
 * Time zones: the 64-bit (version 2+) part of a TZif file gives a table of
 * transitions; the POSIX TZ string in its footer gives the rule after the
 * last one. Everything is reduced to "spans": half-open ranges of UTC
 * seconds with one offset, so that a caller walking forward in time can
 * keep the current span and convert without any lookup until it leaves it.
 *
 * Calendars: a local day has at most CAL_MAX_INTERVALS intervals of
 * local minutes. Each interval is mapped to UTC through sb_tz_from_local's
 * rules (gap -> the instant the gap ends, overlap -> the earlier instant).
 * That mapping is monotone, so the UTC intervals of all days are disjoint
 * and ordered, and every query below is a walk over them, day by day. */
#include "engine/calendar.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- limits ---- */

#define TZ_NAME_MAX       100
#define TZ_FILE_MAX       (256 * 1024) /* real TZif files are below 10 KiB */
#define TZ_TRANS_MAX      10000
#define TZ_TYPES_MAX      256
#define TZ_FOOTER_MAX     256
#define TZ_OFFSET_MAX     (26 * 3600)        /* |UT offset| bound, RFC 8536 3.2 */
#define TZ_TIME_LIMIT     (INT64_C(1) << 60) /* transition times must be within +-2^60 s */
#define SPAN_MIN          (-(INT64_C(1) << 62))
#define SPAN_MAX          (INT64_C(1) << 62)
#define DAY_S             INT64_C(86400)
#define DAY_MS            INT64_C(86400000)
#define CAL_MAX_INTERVALS 16
#define CAL_MAX_DATES     1000
/* Calendar queries treat instants outside the years 0001-9999 (the years a
 * calendar date can name) as closed: that keeps day arithmetic far from
 * overflow and bounds the work of elapsed() over absurd ranges. */
#define CAL_MIN_MS      INT64_C(-62135596800000) /* 0001-01-01T00:00Z */
#define CAL_MAX_MS      INT64_C(253402300800000) /* 10000-01-01T00:00Z */
#define CAL_HORIZON_MS  (400 * DAY_MS)
#define LOCAL_DAY_LIMIT INT64_C(100000000000) /* days; sb_tz_from_local saturates beyond */

/* ---- date arithmetic (proleptic Gregorian) ---- */

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    if ((a % b != 0) && ((a < 0) != (b < 0)))
        q--;
    return q;
}

static int64_t floor_mod(int64_t a, int64_t b)
{
    int64_t r = a % b;
    return r != 0 && ((r < 0) != (b < 0)) ? r + b : r;
}

static bool is_leap(int64_t y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int month_days(int64_t y, int m)
{
    static const int days[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return m == 2 && is_leap(y) ? 29 : days[m - 1];
}

/* Days since 1970-01-01 of a civil date (H. Hinnant's algorithm); m 1-12. */
static int64_t days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = floor_div(y, 400);
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *y, int *m, int *d)
{
    z += 719468;
    int64_t era = floor_div(z, 146097);
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = yoe + era * 400 + (*m <= 2);
}

/* 0 = Monday ... 6 = Sunday; 1970-01-01 was a Thursday. */
static int weekday_of(int64_t days)
{
    return (int)floor_mod(days + 3, 7);
}

/* ---- time zones ---- */

/* One date of a POSIX TZ rule: Jn (1-365, Feb 29 never counted), n (0-365)
 * or Mm.w.d, plus the local time of day (may be negative or over 24h). */
typedef struct tz_rule_date {
    char kind; /* 'J', 'D' (zero-based day of year), 'M' */
    int num;   /* J and D */
    int month, week, wday;
    int32_t secs;
} tz_rule_date;

typedef struct tz_rule {
    int32_t std_off, dst_off; /* seconds east of UTC */
    bool has_dst;
    tz_rule_date start, end; /* start: std -> dst, end: dst -> std */
} tz_rule;

struct sb_tz {
    char name[TZ_NAME_MAX + 1];
    size_t ntrans;
    int64_t *trans;      /* UTC seconds, strictly ascending */
    int32_t *trans_off;  /* offset from trans[i] on */
    int32_t initial_off; /* before the first transition: type 0 */
    bool has_rule;
    tz_rule rule;
};

/* A maximal-enough range [from, until) of UTC seconds with one offset. */
typedef struct tz_span {
    int64_t from, until;
    int32_t off;
} tz_span;

static int64_t rule_day(const tz_rule_date *r, int64_t year)
{
    if (r->kind == 'J')
        return days_from_civil(year, 1, 1) + r->num - 1 + (is_leap(year) && r->num >= 60 ? 1 : 0);
    if (r->kind == 'D')
        return days_from_civil(year, 1, 1) + r->num;
    int64_t first = days_from_civil(year, r->month, 1);
    int64_t wd_first = floor_mod(first + 4, 7); /* 0 = Sunday, as in POSIX */
    int64_t day = first + floor_mod(r->wday - wd_first, 7) + (int64_t)(r->week - 1) * 7;
    while (day >= first + month_days(year, r->month)) /* week 5 means "last" */
        day -= 7;
    return day;
}

/* The span of the footer rule containing t, not reaching before `floor`
 * (the last transition of the table). Transitions of the years around t
 * are generated and sorted; two years either side cover rule times of up
 * to +-167 hours. */
static void rule_span(const tz_rule *r, int64_t t, int64_t floor_s, tz_span *s)
{
    s->from = floor_s;
    s->until = SPAN_MAX;
    s->off = r->std_off;
    if (!r->has_dst)
        return;
    int64_t y0, year;
    int m, d;
    civil_from_days(floor_div(t, DAY_S), &y0, &m, &d);
    struct {
        int64_t at;
        int32_t off;
    } tr[10], tmp;
    int n = 0;
    for (year = y0 - 2; year <= y0 + 2; year++) {
        tr[n].at = rule_day(&r->start, year) * DAY_S + r->start.secs - r->std_off;
        tr[n++].off = r->dst_off;
        tr[n].at = rule_day(&r->end, year) * DAY_S + r->end.secs - r->dst_off;
        tr[n++].off = r->std_off;
    }
    /* Stable insertion sort: on equal instants the later year wins, which
     * keeps an all-year DST rule ("0/0,J365/25") in DST. */
    for (int i = 1; i < n; i++) {
        tmp = tr[i];
        int k = i;
        while (k > 0 && tr[k - 1].at > tmp.at) {
            tr[k] = tr[k - 1];
            k--;
        }
        tr[k] = tmp;
    }
    int64_t from = SPAN_MIN;
    s->off = tr[0].off == r->dst_off ? r->std_off : r->dst_off;
    for (int i = 0; i < n; i++) {
        if (tr[i].at <= t) {
            from = tr[i].at;
            s->off = tr[i].off;
        } else {
            s->until = tr[i].at;
            break;
        }
    }
    s->from = from > floor_s ? from : floor_s;
}

static void tz_span_at(const sb_tz *tz, int64_t t, tz_span *s)
{
    size_t n = tz->ntrans;
    if (n == 0 && tz->has_rule) {
        rule_span(&tz->rule, t, SPAN_MIN, s);
        return;
    }
    if (n == 0 || t < tz->trans[0]) {
        s->from = SPAN_MIN;
        s->until = n ? tz->trans[0] : SPAN_MAX;
        s->off = tz->initial_off;
        return;
    }
    if (t >= tz->trans[n - 1]) {
        if (tz->has_rule) {
            rule_span(&tz->rule, t, tz->trans[n - 1], s);
        } else {
            s->from = tz->trans[n - 1];
            s->until = SPAN_MAX;
            s->off = tz->trans_off[n - 1];
        }
        return;
    }
    size_t lo = 0, hi = n - 1; /* trans[lo] <= t < trans[hi] */
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if (tz->trans[mid] <= t)
            lo = mid;
        else
            hi = mid;
    }
    s->from = tz->trans[lo];
    s->until = tz->trans[hi];
    s->off = tz->trans_off[lo];
}

/* The UTC second of local second L: walks the spans that can contain it
 * (offsets are within +-TZ_OFFSET_MAX). The first span in which L - off
 * falls is the earliest instant (overlap rule); if L - off falls before a
 * span's start, L was skipped by a jump forward and the span's start is
 * the instant the gap ends. */
static int64_t tz_from_local_s(const sb_tz *tz, int64_t local, tz_span *s)
{
    tz_span_at(tz, local - TZ_OFFSET_MAX, s);
    for (int i = 0; i < 64; i++) {
        int64_t t = local - s->off;
        if (t < s->from)
            return s->from;
        if (t < s->until)
            return t;
        tz_span_at(tz, s->until, s);
    }
    return local - s->off; /* more than 64 transitions in 52 hours: not a real zone */
}

/* A converter that remembers the last span, for walks over many days. */
typedef struct tz_conv {
    const sb_tz *tz;
    bool valid;
    tz_span span;
} tz_conv;

static int32_t conv_offset(tz_conv *c, int64_t t)
{
    if (!c->valid || t < c->span.from || t >= c->span.until) {
        tz_span_at(c->tz, t, &c->span);
        c->valid = true;
    }
    return c->span.off;
}

/* If L - off lies in the cached span at least 2 * TZ_OFFSET_MAX after its
 * start, no earlier span can hold another instant with local time L, so
 * L - off is the answer without a lookup. */
static int64_t conv_from_local(tz_conv *c, int64_t local)
{
    if (c->valid) {
        int64_t t = local - c->span.off;
        if (t >= c->span.from + 2 * TZ_OFFSET_MAX && t < c->span.until)
            return t;
    }
    int64_t t = tz_from_local_s(c->tz, local, &c->span);
    c->valid = true;
    return t;
}

const char *sb_tz_name(const sb_tz *tz)
{
    return tz->name;
}

int32_t sb_tz_offset(const sb_tz *tz, int64_t utc_ms)
{
    tz_span s;
    tz_span_at(tz, floor_div(utc_ms, 1000), &s);
    return s.off;
}

static sb_local_time local_from_days(int64_t days, int64_t ms_of_day)
{
    sb_local_time lt;
    int64_t y;
    civil_from_days(days, &y, &lt.month, &lt.day);
    lt.year = (int)y;
    lt.weekday = weekday_of(days);
    lt.minute_of_day = (int)(ms_of_day / 60000);
    lt.ms_of_minute = ms_of_day % 60000;
    return lt;
}

sb_local_time sb_tz_to_local(const sb_tz *tz, int64_t utc_ms)
{
    /* Split first so that adding the offset cannot overflow near INT64_MAX. */
    int64_t days = floor_div(utc_ms, DAY_MS);
    int64_t ms = floor_mod(utc_ms, DAY_MS) + (int64_t)sb_tz_offset(tz, utc_ms) * 1000;
    if (ms < 0) {
        ms += DAY_MS;
        days--;
    } else if (ms >= DAY_MS) {
        ms -= DAY_MS;
        days++;
    }
    return local_from_days(days, ms);
}

/* Out-of-range months, days and minutes roll over (minute 1440 is the next
 * midnight); dates beyond about 270 million years saturate. */
int64_t sb_tz_from_local(const sb_tz *tz, int year, int month, int day, int minute_of_day)
{
    int64_t months = (int64_t)month - 1;
    int64_t y = (int64_t)year + floor_div(months, 12);
    int64_t days =
        days_from_civil(y, (int)floor_mod(months, 12) + 1, 1) + (int64_t)day - 1 + floor_div(minute_of_day, 1440);
    if (days > LOCAL_DAY_LIMIT)
        return INT64_MAX;
    if (days < -LOCAL_DAY_LIMIT)
        return INT64_MIN;
    tz_span s;
    return tz_from_local_s(tz, days * DAY_S + floor_mod(minute_of_day, 1440) * 60, &s) * 1000;
}

void sb_tz_day(const sb_tz *tz, int64_t utc_ms, int64_t *start, int64_t *end)
{
    sb_local_time lt = sb_tz_to_local(tz, utc_ms);
    int64_t s = sb_tz_from_local(tz, lt.year, lt.month, lt.day, 0);
    int64_t e = sb_tz_from_local(tz, lt.year, lt.month, lt.day + 1, 0);
    if (utc_ms >= e) { /* back across midnight: still the day that began at e */
        s = e;
        e = sb_tz_from_local(tz, lt.year, lt.month, lt.day + 2, 0);
    } else if (utc_ms < s) { /* a wall date reached before its own midnight: defensive */
        e = s;
        s = sb_tz_from_local(tz, lt.year, lt.month, lt.day - 1, 0);
    }
    *start = s;
    *end = e;
}

/* ---- TZif parsing ---- */

static bool tz_name_valid(const char *name)
{
    size_t len = strlen(name);
    if (len == 0 || len > TZ_NAME_MAX || name[0] == '/' || strstr(name, "..") != NULL)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = name[i];
        bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '/' || c == '_' ||
                  c == '+' || c == '-';
        if (!ok)
            return false;
    }
    return true;
}

/* Reads a whole regular file of at most TZ_FILE_MAX bytes. */
static int read_zone_file(const char *path, unsigned char **out, size_t *out_len)
{
    int rc = 0;
    unsigned char *buf = NULL;
    size_t len = 0;
    /* O_NONBLOCK: a FIFO planted in the zone directory must not hang us. */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0)
        return errno == ENOENT || errno == ENOTDIR || errno == EACCES || errno == ELOOP ? SB_ENOTFOUND : SB_EIO;
    struct stat st;
    if (fstat(fd, &st) != 0) {
        rc = SB_EIO;
        goto fail;
    }
    if (!S_ISREG(st.st_mode)) {
        rc = SB_ENOTFOUND;
        goto fail;
    }
    if (st.st_size > TZ_FILE_MAX) {
        rc = SB_EINVAL;
        goto fail;
    }
    /* One byte more than the size, to notice a file that grew meanwhile. */
    size_t cap = (size_t)st.st_size + 1;
    buf = sb_xmalloc(cap);
    for (;;) {
        ssize_t n = read(fd, buf + len, cap - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rc = SB_EIO;
            goto fail;
        }
        if (n == 0)
            break;
        len += (size_t)n;
        if (len == cap) {
            rc = SB_EINVAL;
            goto fail;
        }
    }
    close(fd);
    *out = buf;
    *out_len = len;
    return 0;
fail:
    free(buf);
    close(fd);
    return rc;
}

typedef struct tzif_header {
    char version;
    uint32_t isutcnt, isstdcnt, leapcnt, timecnt, typecnt, charcnt;
} tzif_header;

static uint32_t be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int64_t be64(const unsigned char *p)
{
    return (int64_t)((uint64_t)be32(p) << 32 | be32(p + 4));
}

/* The version 1 header of a version 2+ file only needs to be skipped, and
 * "slim" files may leave its counts at zero. */
static int parse_header(const unsigned char *p, size_t len, bool strict, tzif_header *h)
{
    if (len < 44 || memcmp(p, "TZif", 4) != 0)
        return SB_EINVAL;
    h->version = (char)p[4];
    h->isutcnt = be32(p + 20);
    h->isstdcnt = be32(p + 24);
    h->leapcnt = be32(p + 28);
    h->timecnt = be32(p + 32);
    h->typecnt = be32(p + 36);
    h->charcnt = be32(p + 40);
    /* Bounded before any size is computed from them. */
    if (strict && (h->typecnt == 0 || h->charcnt == 0))
        return SB_EINVAL;
    if (h->timecnt > TZ_TRANS_MAX || h->typecnt > TZ_TYPES_MAX || h->charcnt > TZ_FILE_MAX ||
        h->leapcnt > TZ_FILE_MAX || (h->isstdcnt != 0 && h->isstdcnt != h->typecnt) ||
        (h->isutcnt != 0 && h->isutcnt != h->typecnt))
        return SB_EINVAL;
    return 0;
}

static size_t data_size(const tzif_header *h, size_t time_size)
{
    return (size_t)h->timecnt * time_size + h->timecnt + (size_t)h->typecnt * 6 + h->charcnt +
           (size_t)h->leapcnt * (time_size + 4) + h->isstdcnt + h->isutcnt;
}

/* [+-]hh[:mm[:ss]] with hh <= max_hours. */
static const char *parse_hms(const char *p, int max_hours, int32_t *out)
{
    int sign = 1, h = 0, m = 0, s = 0, digits = 0;
    if (*p == '+' || *p == '-')
        sign = *p++ == '-' ? -1 : 1;
    while (*p >= '0' && *p <= '9' && digits < 3) {
        h = h * 10 + (*p++ - '0');
        digits++;
    }
    if (digits == 0 || h > max_hours)
        return NULL;
    for (int part = 0; part < 2 && *p == ':'; part++) {
        p++;
        int v = 0;
        digits = 0;
        while (*p >= '0' && *p <= '9' && digits < 2) {
            v = v * 10 + (*p++ - '0');
            digits++;
        }
        if (digits == 0 || v > 59)
            return NULL;
        if (part == 0)
            m = v;
        else
            s = v;
    }
    *out = sign * (h * 3600 + m * 60 + s);
    return p;
}

static const char *parse_abbr(const char *p)
{
    const char *b;
    if (*p == '<') {
        b = ++p;
        while ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '+' ||
               *p == '-')
            p++;
        return *p == '>' && p - b >= 3 ? p + 1 : NULL;
    }
    b = p;
    while ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z'))
        p++;
    return p - b >= 3 ? p : NULL;
}

static const char *parse_num(const char *p, int lo, int hi, int *out)
{
    int v = 0, digits = 0;
    while (*p >= '0' && *p <= '9' && digits < 4) {
        v = v * 10 + (*p++ - '0');
        digits++;
    }
    if (digits == 0 || v < lo || v > hi)
        return NULL;
    *out = v;
    return p;
}

static const char *parse_rule_date(const char *p, tz_rule_date *r)
{
    r->secs = 2 * 3600;
    if (*p == 'J') {
        r->kind = 'J';
        p = parse_num(p + 1, 1, 365, &r->num);
    } else if (*p == 'M') {
        r->kind = 'M';
        p = parse_num(p + 1, 1, 12, &r->month);
        if (p != NULL && *p == '.')
            p = parse_num(p + 1, 1, 5, &r->week);
        else
            p = NULL;
        if (p != NULL && *p == '.')
            p = parse_num(p + 1, 0, 6, &r->wday);
        else
            p = NULL;
    } else {
        r->kind = 'D';
        p = parse_num(p, 0, 365, &r->num);
    }
    if (p != NULL && *p == '/')
        p = parse_hms(p + 1, 167, &r->secs); /* RFC 8536 allows -167..167 hours */
    return p;
}

/* The POSIX TZ string of the footer, e.g. "CET-1CEST,M3.5.0,M10.5.0/3",
 * "<+05>-5", "<-02>2<-01>,M3.5.0/-1,M10.5.0/0". An empty footer means no
 * rule. */
static int parse_footer(const char *z, tz_rule *r, bool *has_rule)
{
    int32_t v;
    *has_rule = false;
    memset(r, 0, sizeof *r);
    if (*z == '\0')
        return 0;
    const char *p = parse_abbr(z);
    if (p != NULL)
        p = parse_hms(p, 24, &v);
    if (p == NULL)
        return SB_EINVAL;
    r->std_off = -v; /* POSIX offsets count west of Greenwich */
    if (*p != '\0') {
        p = parse_abbr(p);
        if (p == NULL)
            return SB_EINVAL;
        r->has_dst = true;
        r->dst_off = r->std_off + 3600;
        if (*p != '\0' && *p != ',') {
            p = parse_hms(p, 24, &v);
            if (p == NULL)
                return SB_EINVAL;
            r->dst_off = -v;
        }
        if (*p == ',') {
            p = parse_rule_date(p + 1, &r->start);
            if (p == NULL || *p != ',')
                return SB_EINVAL;
            p = parse_rule_date(p + 1, &r->end);
            if (p == NULL)
                return SB_EINVAL;
        } else {
            /* No rule given: the US rules, as tzcode assumes. */
            r->start = (tz_rule_date){.kind = 'M', .month = 3, .week = 2, .wday = 0, .secs = 7200};
            r->end = (tz_rule_date){.kind = 'M', .month = 11, .week = 1, .wday = 0, .secs = 7200};
        }
        if (*p != '\0')
            return SB_EINVAL;
    }
    if (r->std_off < -TZ_OFFSET_MAX || r->std_off > TZ_OFFSET_MAX || r->dst_off < -TZ_OFFSET_MAX ||
        r->dst_off > TZ_OFFSET_MAX)
        return SB_EINVAL;
    *has_rule = true;
    return 0;
}

/* Parses a TZif file. Only the version 2+ data block is used; files with
 * leap-second records ("right/" zones) are refused because their
 * timestamps are not POSIX time. */
static int parse_tzif(const unsigned char *buf, size_t len, sb_tz *tz)
{
    tzif_header h;
    if (len < 4 || memcmp(buf, "TZif", 4) != 0)
        return SB_ENOTFOUND; /* not a zone file at all (e.g. "leapseconds") */
    int rc = parse_header(buf, len, false, &h);
    if (rc != 0)
        return rc;
    if (h.version < '2')
        return SB_EINVAL;
    size_t pos = 44 + data_size(&h, 4);
    if (pos > len)
        return SB_EINVAL;
    rc = parse_header(buf + pos, len - pos, true, &h);
    if (rc != 0)
        return rc;
    if (h.leapcnt != 0)
        return SB_EINVAL;
    pos += 44;
    size_t size = data_size(&h, 8);
    if (size > len - pos)
        return SB_EINVAL;
    const unsigned char *times = buf + pos;
    const unsigned char *idx = times + (size_t)h.timecnt * 8;
    const unsigned char *types = idx + h.timecnt;
    int32_t offs[TZ_TYPES_MAX];
    for (uint32_t i = 0; i < h.typecnt; i++) {
        const unsigned char *t = types + (size_t)i * 6;
        offs[i] = (int32_t)be32(t);
        if (offs[i] < -TZ_OFFSET_MAX || offs[i] > TZ_OFFSET_MAX || t[4] > 1 || t[5] >= h.charcnt)
            return SB_EINVAL;
    }
    tz->ntrans = h.timecnt;
    if (h.timecnt > 0) {
        tz->trans = sb_xmalloc((size_t)h.timecnt * sizeof *tz->trans);
        tz->trans_off = sb_xmalloc((size_t)h.timecnt * sizeof *tz->trans_off);
    }
    for (uint32_t i = 0; i < h.timecnt; i++) {
        int64_t at = be64(times + (size_t)i * 8);
        if (at < -TZ_TIME_LIMIT || at > TZ_TIME_LIMIT || (i > 0 && at <= tz->trans[i - 1]) || idx[i] >= h.typecnt)
            return SB_EINVAL;
        tz->trans[i] = at;
        tz->trans_off[i] = offs[idx[i]];
    }
    tz->initial_off = offs[0];
    pos += size;
    if (pos == len)
        return 0; /* no footer: the last transition's type holds forever */
    if (buf[pos] != '\n')
        return SB_EINVAL;
    const unsigned char *end = memchr(buf + pos + 1, '\n', len - pos - 1);
    size_t flen = end != NULL ? (size_t)(end - (buf + pos + 1)) : 0;
    if (end == NULL || flen > TZ_FOOTER_MAX || memchr(buf + pos + 1, '\0', flen) != NULL)
        return SB_EINVAL;
    char footer[TZ_FOOTER_MAX + 1];
    memcpy(footer, buf + pos + 1, flen);
    footer[flen] = '\0';
    return parse_footer(footer, &tz->rule, &tz->has_rule);
}

int sb_tz_load(const char *name, sb_tz **out)
{
    int rc;
    unsigned char *buf = NULL;
    size_t len = 0;
    sb_tz *tz = NULL;
    *out = NULL;
    if (name == NULL || !tz_name_valid(name))
        return SB_ENOTFOUND;
    const char *dir = getenv("SB_TZDIR");
    if (dir == NULL || dir[0] == '\0')
        dir = "/usr/share/zoneinfo";
    char path[4096];
    int n = snprintf(path, sizeof path, "%s/%s", dir, name);
    if (n < 0 || (size_t)n >= sizeof path)
        return SB_ENOTFOUND;
    rc = read_zone_file(path, &buf, &len);
    if (rc != 0)
        goto fail;
    tz = sb_xcalloc(1, sizeof *tz);
    snprintf(tz->name, sizeof tz->name, "%s", name);
    rc = parse_tzif(buf, len, tz);
    if (rc != 0)
        goto fail;
    free(buf);
    *out = tz;
    return 0;
fail:
    free(buf);
    sb_tz_free(tz);
    return rc;
}

void sb_tz_free(sb_tz *tz)
{
    if (tz == NULL)
        return;
    free(tz->trans);
    free(tz->trans_off);
    free(tz);
}

/* ---- calendars ---- */

typedef struct cal_interval {
    int16_t start, end; /* local minutes, 0-1440 */
} cal_interval;

typedef struct cal_hours {
    int n;
    cal_interval iv[CAL_MAX_INTERVALS]; /* sorted, disjoint */
} cal_hours;

typedef struct cal_working_day {
    int64_t day;  /* days since 1970-01-01 */
    size_t index; /* position in the JSON array, for error messages */
    cal_hours hours;
} cal_working_day;

struct sb_calendar {
    sb_tz *tz;
    cal_hours week[7];      /* 0 = Monday */
    bool recurring[13][32]; /* [month][day] */
    int64_t *holidays;      /* one-off, sorted days */
    size_t nholidays;
    cal_working_day *working; /* sorted by day, unique */
    size_t nworking;
};

typedef struct utc_interval {
    int64_t start, end; /* ms, start < end */
} utc_interval;

static bool holiday_on(const sb_calendar *cal, int64_t day)
{
    size_t lo = 0, hi = cal->nholidays;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (cal->holidays[mid] == day)
            return true;
        if (cal->holidays[mid] < day)
            lo = mid + 1;
        else
            hi = mid;
    }
    return false;
}

static const cal_working_day *working_day_on(const sb_calendar *cal, int64_t day)
{
    size_t lo = 0, hi = cal->nworking;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (cal->working[mid].day == day)
            return &cal->working[mid];
        if (cal->working[mid].day < day)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

static const cal_hours *hours_on(const sb_calendar *cal, int64_t day)
{
    static const cal_hours closed = {0};
    const cal_working_day *w = working_day_on(cal, day);
    if (w != NULL)
        return &w->hours;
    if (holiday_on(cal, day))
        return &closed;
    int64_t y;
    int m, d;
    civil_from_days(day, &y, &m, &d);
    if (cal->recurring[m][d])
        return &closed;
    return &cal->week[weekday_of(day)];
}

/* The business intervals of local day `day` in UTC ms, ascending; intervals
 * swallowed by a gap are dropped, and everything is clipped to
 * [CAL_MIN_MS, CAL_MAX_MS). Returns their number. */
static int day_intervals(const sb_calendar *cal, tz_conv *conv, int64_t day, utc_interval *out)
{
    const cal_hours *h = hours_on(cal, day);
    int n = 0;
    for (int i = 0; i < h->n; i++) {
        int64_t s = conv_from_local(conv, day * DAY_S + h->iv[i].start * 60) * 1000;
        int64_t e = conv_from_local(conv, day * DAY_S + h->iv[i].end * 60) * 1000;
        if (s < CAL_MIN_MS)
            s = CAL_MIN_MS;
        if (e > CAL_MAX_MS)
            e = CAL_MAX_MS;
        if (s < e)
            out[n++] = (utc_interval){s, e};
    }
    return n;
}

/* The local day of an instant in range. */
static int64_t local_day(tz_conv *conv, int64_t utc_ms)
{
    return floor_div(utc_ms + (int64_t)conv_offset(conv, floor_div(utc_ms, 1000)) * 1000, DAY_MS);
}

/* A day's intervals all start at or after this instant (offsets are
 * bounded), which tells a walk when it may stop. */
static int64_t day_lower_bound(int64_t day)
{
    return (day * DAY_S - TZ_OFFSET_MAX) * 1000;
}

const sb_tz *sb_calendar_tz(const sb_calendar *cal)
{
    return cal->tz;
}

/* Walks are started one day early: in a zone whose clocks go back across
 * midnight an instant's local date can be one day after the day whose
 * intervals cover it. */
bool sb_calendar_is_open(const sb_calendar *cal, int64_t utc_ms)
{
    if (utc_ms < CAL_MIN_MS || utc_ms >= CAL_MAX_MS)
        return false;
    tz_conv conv = {.tz = cal->tz};
    int64_t first = local_day(&conv, utc_ms) - 1;
    utc_interval iv[CAL_MAX_INTERVALS];
    for (int64_t day = first; day <= first + 2; day++) {
        int n = day_intervals(cal, &conv, day, iv);
        for (int i = 0; i < n; i++)
            if (iv[i].start <= utc_ms && utc_ms < iv[i].end)
                return true;
    }
    return false;
}

/* The local date decides, as hours_on does: a special working day beats a
 * holiday on the same date. */
bool sb_calendar_is_holiday(const sb_calendar *cal, int64_t utc_ms)
{
    if (utc_ms < CAL_MIN_MS || utc_ms >= CAL_MAX_MS)
        return false;
    tz_conv conv = {.tz = cal->tz};
    int64_t day = local_day(&conv, utc_ms);
    if (working_day_on(cal, day) != NULL)
        return false;
    if (holiday_on(cal, day))
        return true;
    int64_t y;
    int m, d;
    civil_from_days(day, &y, &m, &d);
    return cal->recurring[m][d];
}

int64_t sb_calendar_next_open(const sb_calendar *cal, int64_t utc_ms)
{
    return sb_calendar_add(cal, utc_ms, 0);
}

/* Shared by add and next_open: business_ms == 0 yields the first open
 * instant, otherwise the instant where the count is used up (which may be
 * the end of an interval). */
int64_t sb_calendar_add(const sb_calendar *cal, int64_t start_ms, int64_t business_ms)
{
    if (start_ms >= CAL_MAX_MS)
        return INT64_MAX;
    if (business_ms < 0)
        business_ms = 0;
    int64_t horizon = start_ms + CAL_HORIZON_MS;
    int64_t cur = start_ms < CAL_MIN_MS ? CAL_MIN_MS : start_ms;
    int64_t remaining = business_ms;
    tz_conv conv = {.tz = cal->tz};
    utc_interval iv[CAL_MAX_INTERVALS];
    for (int64_t day = local_day(&conv, cur) - 1; day_lower_bound(day) <= horizon; day++) {
        int n = day_intervals(cal, &conv, day, iv);
        for (int i = 0; i < n; i++) {
            if (iv[i].end <= cur)
                continue;
            int64_t s = iv[i].start > cur ? iv[i].start : cur;
            if (s > horizon)
                return INT64_MAX;
            int64_t len = iv[i].end - s;
            if (business_ms == 0)
                return s;
            if (remaining <= len)
                return s + remaining <= horizon ? s + remaining : INT64_MAX;
            remaining -= len;
        }
    }
    return INT64_MAX;
}

int64_t sb_calendar_elapsed(const sb_calendar *cal, int64_t from_ms, int64_t to_ms)
{
    if (from_ms < CAL_MIN_MS)
        from_ms = CAL_MIN_MS;
    if (to_ms > CAL_MAX_MS)
        to_ms = CAL_MAX_MS;
    if (to_ms <= from_ms)
        return 0;
    int64_t total = 0;
    tz_conv conv = {.tz = cal->tz};
    utc_interval iv[CAL_MAX_INTERVALS];
    for (int64_t day = local_day(&conv, from_ms) - 1; day_lower_bound(day) < to_ms; day++) {
        int n = day_intervals(cal, &conv, day, iv);
        for (int i = 0; i < n; i++) {
            int64_t s = iv[i].start > from_ms ? iv[i].start : from_ms;
            int64_t e = iv[i].end < to_ms ? iv[i].end : to_ms;
            if (s < e)
                total += e - s;
        }
    }
    return total;
}

void sb_calendar_free(sb_calendar *cal)
{
    if (cal == NULL)
        return;
    sb_tz_free(cal->tz);
    free(cal->holidays);
    free(cal->working);
    free(cal);
}

/* ---- calendar JSON ---- */

typedef struct parse_ctx {
    char *field;
    size_t field_cap;
    char *msg;
    size_t msg_cap;
} parse_ctx;

/* Records the error (field path + sentence) and returns rc. */
static int fail_at(parse_ctx *pc, int rc, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int fail_at(parse_ctx *pc, int rc, const char *field, const char *fmt, ...)
{
    if (pc->field != NULL && pc->field_cap > 0)
        snprintf(pc->field, pc->field_cap, "%s", field);
    if (pc->msg != NULL && pc->msg_cap > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(pc->msg, pc->msg_cap, fmt, ap);
        va_end(ap);
    }
    return rc;
}

/* Builds a field path; paths longer than the buffer are cut short. */
static void path_fmt(char *buf, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void path_fmt(char *buf, size_t cap, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, cap, fmt, ap);
    va_end(ap);
}

/* `prefix` is the path of the object plus its separator ("", "holidays[0]."). */
static int check_keys(parse_ctx *pc, const json_t *obj, const char *prefix, const char *const *allowed, size_t nallowed)
{
    const char *key;
    json_t *v;
    json_object_foreach ((json_t *)obj, key, v) {
        bool known = false;
        for (size_t i = 0; i < nallowed && !known; i++)
            known = strcmp(key, allowed[i]) == 0;
        if (!known) {
            char path[160];
            path_fmt(path, sizeof path, "%s%s", prefix, key);
            return fail_at(pc, SB_EINVAL, path, "unknown key '%.40s'", key);
        }
    }
    return 0;
}

/* "HH:MM" from 00:00 to 24:00 → minutes. */
static bool parse_clock(const json_t *v, int *out)
{
    const char *z = json_string_value(v);
    if (z == NULL || json_string_length(v) != 5)
        return false;
    for (int i = 0; i < 5; i++)
        if (i == 2 ? z[i] != ':' : (z[i] < '0' || z[i] > '9'))
            return false;
    int h = (z[0] - '0') * 10 + (z[1] - '0');
    int m = (z[3] - '0') * 10 + (z[4] - '0');
    if (h > 24 || m > 59 || (h == 24 && m != 0))
        return false;
    *out = h * 60 + m;
    return true;
}

static void format_clock(int minutes, char *buf, size_t cap)
{
    snprintf(buf, cap, "%02d:%02d", minutes / 60 % 100, minutes % 60);
}

/* An array of ["HH:MM", "HH:MM"] intervals at `path`; sorted into h. */
static int parse_hours(parse_ctx *pc, const json_t *arr, const char *path, cal_hours *h)
{
    char ipath[200], a[8], b[8], c[8], d[8];
    if (!json_is_array(arr))
        return fail_at(pc, SB_EINVAL, path, "hours must be an array of [\"HH:MM\", \"HH:MM\"] intervals");
    size_t n = json_array_size(arr);
    if (n > CAL_MAX_INTERVALS)
        return fail_at(pc, SB_EINVAL, path, "at most %d intervals are allowed per day", CAL_MAX_INTERVALS);
    cal_interval iv[CAL_MAX_INTERVALS];
    for (size_t i = 0; i < n; i++) {
        const json_t *pair = json_array_get(arr, i);
        path_fmt(ipath, sizeof ipath, "%s[%zu]", path, i);
        if (!json_is_array(pair) || json_array_size(pair) != 2 || !json_is_string(json_array_get(pair, 0)) ||
            !json_is_string(json_array_get(pair, 1)))
            return fail_at(pc, SB_EINVAL, ipath, "an interval must be an array of two \"HH:MM\" strings");
        int start, end;
        const json_t *sv = json_array_get(pair, 0), *ev = json_array_get(pair, 1);
        if (!parse_clock(sv, &start))
            return fail_at(pc, SB_EINVAL, ipath, "start time '%.20s' is not a valid time (HH:MM from 00:00 to 23:59)",
                           json_string_value(sv));
        if (start == 1440)
            return fail_at(pc, SB_EINVAL, ipath, "24:00 can only end an interval, not start one");
        if (!parse_clock(ev, &end))
            return fail_at(pc, SB_EINVAL, ipath, "end time '%.20s' is not a valid time (HH:MM from 00:00 to 24:00)",
                           json_string_value(ev));
        if (start >= end)
            return fail_at(pc, SB_EINVAL, ipath, "start %s is not before end %s", json_string_value(sv),
                           json_string_value(ev));
        for (size_t k = 0; k < i; k++) {
            if (iv[k].start < end && start < iv[k].end) {
                format_clock(start, a, sizeof a);
                format_clock(end, b, sizeof b);
                format_clock(iv[k].start, c, sizeof c);
                format_clock(iv[k].end, d, sizeof d);
                return fail_at(pc, SB_EINVAL, ipath, "interval %s-%s overlaps interval %zu (%s-%s) of the same day", a,
                               b, k, c, d);
            }
        }
        iv[i] = (cal_interval){(int16_t)start, (int16_t)end};
    }
    /* Insertion sort by start; the intervals are disjoint. */
    h->n = (int)n;
    for (size_t i = 0; i < n; i++) {
        size_t k = i;
        while (k > 0 && h->iv[k - 1].start > iv[i].start) {
            h->iv[k] = h->iv[k - 1];
            k--;
        }
        h->iv[k] = iv[i];
    }
    return 0;
}

static const char *const weekday_keys[7] = {"mon", "tue", "wed", "thu", "fri", "sat", "sun"};

static int parse_week(parse_ctx *pc, const json_t *hours, sb_calendar *cal)
{
    char path[64];
    if (!json_is_object(hours))
        return fail_at(pc, SB_EINVAL, "hours",
                       "hours must be an object with the keys mon, tue, wed, thu, fri, sat, sun");
    const char *key;
    json_t *v;
    json_object_foreach ((json_t *)hours, key, v) {
        int wd = -1;
        for (int i = 0; i < 7; i++)
            if (strcmp(key, weekday_keys[i]) == 0)
                wd = i;
        if (wd < 0) {
            char kpath[160];
            path_fmt(kpath, sizeof kpath, "hours.%s", key);
            return fail_at(pc, SB_EINVAL, kpath, "unknown weekday '%.40s' (use mon, tue, wed, thu, fri, sat or sun)",
                           key);
        }
    }
    for (int wd = 0; wd < 7; wd++) {
        const json_t *day = json_object_get(hours, weekday_keys[wd]);
        if (day == NULL)
            continue;
        path_fmt(path, sizeof path, "hours.%s", weekday_keys[wd]);
        int rc = parse_hours(pc, day, path, &cal->week[wd]);
        if (rc != 0)
            return rc;
    }
    return 0;
}

/* "YYYY-MM-DD", a real date of the proleptic Gregorian calendar. */
static bool parse_date(const json_t *v, int *year, int *month, int *day)
{
    const char *z = json_string_value(v);
    if (z == NULL || json_string_length(v) != 10)
        return false;
    for (int i = 0; i < 10; i++)
        if ((i == 4 || i == 7) ? z[i] != '-' : (z[i] < '0' || z[i] > '9'))
            return false;
    *year = (z[0] - '0') * 1000 + (z[1] - '0') * 100 + (z[2] - '0') * 10 + (z[3] - '0');
    *month = (z[5] - '0') * 10 + (z[6] - '0');
    *day = (z[8] - '0') * 10 + (z[9] - '0');
    return *year >= 1 && *month >= 1 && *month <= 12 && *day >= 1 && *day <= month_days(*year, *month);
}

static int parse_date_field(parse_ctx *pc, const json_t *obj, const char *prefix, int *y, int *m, int *d)
{
    char path[80];
    path_fmt(path, sizeof path, "%sdate", prefix);
    const json_t *v = json_object_get(obj, "date");
    if (v == NULL)
        return fail_at(pc, SB_EINVAL, path, "date is required");
    if (!json_is_string(v))
        return fail_at(pc, SB_EINVAL, path, "date must be a string \"YYYY-MM-DD\"");
    if (!parse_date(v, y, m, d))
        return fail_at(pc, SB_EINVAL, path, "'%.20s' is not a valid date (YYYY-MM-DD)", json_string_value(v));
    return 0;
}

static int parse_name_field(parse_ctx *pc, const json_t *obj, const char *prefix)
{
    const json_t *v = json_object_get(obj, "name");
    if (v == NULL || json_is_string(v))
        return 0;
    char path[80];
    path_fmt(path, sizeof path, "%sname", prefix);
    return fail_at(pc, SB_EINVAL, path, "name must be a string");
}

static int compare_days(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* The common part of a holiday and a working day: an object with known
 * keys, a "date" and an optional "name". Leaves "<array>[i]." in prefix. */
static int parse_dated(parse_ctx *pc, const json_t *entry, const char *array, size_t i, const char *const *keys,
                       size_t nkeys, const char *not_object, char *prefix, size_t prefix_cap, int *y, int *m, int *d)
{
    path_fmt(prefix, prefix_cap, "%s[%zu]", array, i);
    if (!json_is_object(entry))
        return fail_at(pc, SB_EINVAL, prefix, "%s", not_object);
    path_fmt(prefix, prefix_cap, "%s[%zu].", array, i);
    int rc = check_keys(pc, entry, prefix, keys, nkeys);
    if (rc == 0)
        rc = parse_date_field(pc, entry, prefix, y, m, d);
    if (rc == 0)
        rc = parse_name_field(pc, entry, prefix);
    return rc;
}

static int parse_holidays(parse_ctx *pc, const json_t *arr, sb_calendar *cal)
{
    static const char *const keys[] = {"date", "recurring", "name"};
    char prefix[40], path[80];
    if (!json_is_array(arr))
        return fail_at(pc, SB_EINVAL, "holidays", "holidays must be an array");
    size_t n = json_array_size(arr);
    if (n > CAL_MAX_DATES)
        return fail_at(pc, SB_EINVAL, "holidays", "at most %d holidays are allowed", CAL_MAX_DATES);
    cal->holidays = sb_xcalloc(n ? n : 1, sizeof *cal->holidays);
    for (size_t i = 0; i < n; i++) {
        const json_t *h = json_array_get(arr, i);
        int y, m, d;
        int rc = parse_dated(pc, h, "holidays", i, keys, SB_ARRAY_LEN(keys),
                             "a holiday must be an object with a \"date\"", prefix, sizeof prefix, &y, &m, &d);
        if (rc != 0)
            return rc;
        const json_t *rec = json_object_get(h, "recurring");
        if (rec != NULL && !json_is_boolean(rec)) {
            path_fmt(path, sizeof path, "%srecurring", prefix);
            return fail_at(pc, SB_EINVAL, path, "recurring must be true or false");
        }
        if (json_is_true(rec))
            cal->recurring[m][d] = true; /* Feb 29 then matches leap years only */
        else
            cal->holidays[cal->nholidays++] = days_from_civil(y, m, d);
    }
    qsort(cal->holidays, cal->nholidays, sizeof *cal->holidays, compare_days);
    return 0;
}

static int compare_working(const void *a, const void *b)
{
    const cal_working_day *x = a, *y = b;
    if (x->day != y->day)
        return (x->day > y->day) - (x->day < y->day);
    return (x->index > y->index) - (x->index < y->index);
}

static int parse_working_days(parse_ctx *pc, const json_t *arr, sb_calendar *cal)
{
    static const char *const keys[] = {"date", "hours", "name"};
    char prefix[40], path[80];
    if (!json_is_array(arr))
        return fail_at(pc, SB_EINVAL, "working_days", "working_days must be an array");
    size_t n = json_array_size(arr);
    if (n > CAL_MAX_DATES)
        return fail_at(pc, SB_EINVAL, "working_days", "at most %d working days are allowed", CAL_MAX_DATES);
    cal->working = sb_xcalloc(n ? n : 1, sizeof *cal->working);
    for (size_t i = 0; i < n; i++) {
        const json_t *w = json_array_get(arr, i);
        int y, m, d;
        int rc = parse_dated(pc, w, "working_days", i, keys, SB_ARRAY_LEN(keys),
                             "a working day must be an object with \"date\" and \"hours\"", prefix, sizeof prefix, &y,
                             &m, &d);
        if (rc != 0)
            return rc;
        cal_working_day *wd = &cal->working[cal->nworking++];
        wd->day = days_from_civil(y, m, d);
        wd->index = i;
        path_fmt(path, sizeof path, "%shours", prefix);
        const json_t *hours = json_object_get(w, "hours");
        if (hours == NULL)
            return fail_at(pc, SB_EINVAL, path, "hours is required (use [] for a day without hours)");
        rc = parse_hours(pc, hours, path, &wd->hours);
        if (rc != 0)
            return rc;
    }
    qsort(cal->working, cal->nworking, sizeof *cal->working, compare_working);
    /* Two entries for one date would leave its hours ambiguous: report the
     * entry that came later in the array. */
    size_t dup = SIZE_MAX, first = 0;
    for (size_t i = 1; i < cal->nworking; i++) {
        if (cal->working[i].day == cal->working[i - 1].day && cal->working[i].index < dup) {
            dup = cal->working[i].index;
            first = cal->working[i - 1].index;
        }
    }
    if (dup != SIZE_MAX) {
        path_fmt(path, sizeof path, "working_days[%zu].date", dup);
        return fail_at(pc, SB_EINVAL, path, "this date is already a working day (working_days[%zu])", first);
    }
    return 0;
}

static int parse_time_zone(parse_ctx *pc, const json_t *j, sb_calendar *cal)
{
    const json_t *v = json_object_get(j, "time_zone");
    if (v == NULL)
        return fail_at(pc, SB_EINVAL, "time_zone", "time_zone is required");
    if (!json_is_string(v))
        return fail_at(pc, SB_EINVAL, "time_zone", "time_zone must be a string such as \"Europe/Berlin\"");
    const char *name = json_string_value(v);
    int rc = strlen(name) == json_string_length(v) ? sb_tz_load(name, &cal->tz) : SB_ENOTFOUND;
    if (rc == SB_ENOTFOUND)
        return fail_at(pc, SB_ENOTFOUND, "time_zone", "unknown time zone '%.100s'", name);
    if (rc != 0)
        return fail_at(pc, rc, "time_zone", "the data of time zone '%.100s' could not be read", name);
    return 0;
}

int sb_calendar_from_json(const json_t *j, sb_calendar **out, char *field, size_t field_cap, char *msg, size_t msg_cap)
{
    static const char *const keys[] = {"time_zone", "hours", "holidays", "working_days"};
    parse_ctx pc = {field, field_cap, msg, msg_cap};
    int rc;
    *out = NULL;
    fail_at(&pc, 0, "", "%s", "");
    sb_calendar *cal = sb_xcalloc(1, sizeof *cal);
    if (!json_is_object(j)) {
        rc = fail_at(&pc, SB_EINVAL, "", "a calendar must be a JSON object");
        goto fail;
    }
    rc = check_keys(&pc, j, "", keys, SB_ARRAY_LEN(keys));
    if (rc != 0)
        goto fail;
    rc = parse_time_zone(&pc, j, cal);
    if (rc != 0)
        goto fail;
    const json_t *v = json_object_get(j, "hours");
    if (v != NULL) {
        rc = parse_week(&pc, v, cal);
        if (rc != 0)
            goto fail;
    }
    v = json_object_get(j, "holidays");
    if (v != NULL) {
        rc = parse_holidays(&pc, v, cal);
        if (rc != 0)
            goto fail;
    }
    v = json_object_get(j, "working_days");
    if (v != NULL) {
        rc = parse_working_days(&pc, v, cal);
        if (rc != 0)
            goto fail;
    }
    *out = cal;
    return 0;
fail:
    sb_calendar_free(cal);
    return rc;
}
