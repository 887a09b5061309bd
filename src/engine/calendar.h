/* calendar.h - IANA time zones (read from the system's TZif files) and
 * business calendars: weekly hours, holidays (one-off or recurring every
 * year) and special working days, with business-time arithmetic.
 *
 * Pure after loading: no clock, no I/O. Times are Unix milliseconds (UTC);
 * "local" means wall-clock time in the calendar's zone. */
#ifndef SB_CALENDAR_H
#define SB_CALENDAR_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "base/sb.h"

/* ---- time zones ---- */

typedef struct sb_tz sb_tz;

/* Loads zone `name` ("Europe/Moscow", "UTC") from $SB_TZDIR or
 * /usr/share/zoneinfo. SB_ENOTFOUND for an unknown or malformed name
 * (names with "..", a leading '/', or characters outside [A-Za-z0-9/_+-]
 * are refused without touching the disk); SB_EINVAL for a corrupt file. */
int sb_tz_load(const char *name, sb_tz **out);
void sb_tz_free(sb_tz *tz);
const char *sb_tz_name(const sb_tz *tz);
/* Seconds east of UTC in effect at `utc_ms` (uses the file's POSIX TZ
 * footer for instants after the last transition). */
int32_t sb_tz_offset(const sb_tz *tz, int64_t utc_ms);

/* A local date and time broken down. */
typedef struct sb_local_time {
    int year, month, day; /* month 1-12 */
    int weekday;          /* 0 = Monday ... 6 = Sunday */
    int minute_of_day;    /* 0-1439 */
    int64_t ms_of_minute; /* 0-59999 */
} sb_local_time;

sb_local_time sb_tz_to_local(const sb_tz *tz, int64_t utc_ms);
/* The UTC instant of a local wall time. In a gap (clocks jump forward) the
 * wall time does not exist: the instant the gap ends is returned. In an
 * overlap (clocks go back) the earlier instant is returned. */
int64_t sb_tz_from_local(const sb_tz *tz, int year, int month, int day, int minute_of_day);
/* The local day that holds `utc_ms`: [*start, *end) from its midnight to
 * the next, as UTC instants by sb_tz_from_local's rules (a midnight in a
 * gap is the instant the gap ends). A day has 23 or 25 hours when the
 * clocks change. Consecutive days are adjacent and never overlap: when the
 * clocks go back across midnight, the instants whose wall-clock date is
 * the previous day again belong to the day that had begun. */
void sb_tz_day(const sb_tz *tz, int64_t utc_ms, int64_t *start, int64_t *end);

/* ---- business calendars ---- */

typedef struct sb_calendar sb_calendar;

/* Builds a calendar from its JSON form:
 *   {"time_zone": "Europe/Moscow",
 *    "hours": {"mon": [["09:00","18:00"]], "tue": [...], ..., "sun": []},
 *    "holidays": [{"date": "2026-01-01", "recurring": true, "name": "New Year"}],
 *    "working_days": [{"date": "2026-11-01", "hours": [["10:00","15:00"]]}]}
 * Intervals are [start, end) local times "HH:MM", end may be "24:00"; a day's
 * intervals must not overlap. A missing weekday has no hours. A holiday has
 * no hours that day; a working day has the given hours that day (it wins
 * over a holiday on the same date). Unknown keys are errors.
 * On error returns SB_EINVAL (or SB_ENOTFOUND for an unknown time zone,
 * field "time_zone") and fills `field` with the path of the bad value
 * ("hours.mon[1]", "holidays[0].date", ...) and `msg` with a readable
 * English sentence. */
int sb_calendar_from_json(const json_t *j, sb_calendar **out, char *field, size_t field_cap, char *msg, size_t msg_cap);
void sb_calendar_free(sb_calendar *cal);
const sb_tz *sb_calendar_tz(const sb_calendar *cal);

/* True if `utc_ms` falls inside business hours. */
bool sb_calendar_is_open(const sb_calendar *cal, int64_t utc_ms);
/* True if the local day of `utc_ms` is a holiday (one-off or recurring)
 * that no special working day of the same date overrides. */
bool sb_calendar_is_holiday(const sb_calendar *cal, int64_t utc_ms);
/* The first instant >= utc_ms that is inside business hours; INT64_MAX if
 * the calendar has no hours within the next 400 days. */
int64_t sb_calendar_next_open(const sb_calendar *cal, int64_t utc_ms);
/* The instant at which `business_ms` of business time has passed, counting
 * from `start_ms` (business time before start is not counted). With
 * business_ms = 0 this is sb_calendar_next_open(start). INT64_MAX if it is
 * more than 400 days of calendar time away. */
int64_t sb_calendar_add(const sb_calendar *cal, int64_t start_ms, int64_t business_ms);
/* Business time (ms) inside [from_ms, to_ms); 0 if to <= from. */
int64_t sb_calendar_elapsed(const sb_calendar *cal, int64_t from_ms, int64_t to_ms);

#endif
