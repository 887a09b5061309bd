/* clock.h - the only place that reads the system clocks.
 * Everything else takes `now` as a parameter. */
#ifndef SB_CLOCK_H
#define SB_CLOCK_H

#include <stddef.h>
#include <stdint.h>

/* Monotonic milliseconds (for timeouts and durations). */
uint64_t sb_clock_mono_ms(void);
/* Monotonic microseconds (for latency measurements). */
uint64_t sb_clock_mono_us(void);
/* Wall clock, Unix milliseconds (for stored timestamps). */
int64_t sb_clock_wall_ms(void);
/* "2026-11-23T21:07:39.123Z" */
void sb_clock_format_iso(int64_t wall_ms, char *out, size_t cap);
/* Parses RFC 3339 / ISO 8601 "YYYY-MM-DDTHH:MM:SS[.fff](Z|+HH:MM)"; 0 or -1. */
int sb_clock_parse_iso(const char *z, int64_t *wall_ms);

#endif
