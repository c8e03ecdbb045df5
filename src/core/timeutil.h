/* Clocks and sleeping. */
#ifndef GM_CORE_TIMEUTIL_H
#define GM_CORE_TIMEUTIL_H

#include <stdint.h>
#include <time.h>

int64_t gm_now_ms(void);      /* monotonic milliseconds */
int64_t gm_wall_ms(void);     /* Unix epoch milliseconds */
void gm_sleep_ms(int64_t ms); /* restarts after signals */

/* "2015-08-30T12:36:00Z" */
void gm_time_iso8601(time_t t, char out[32]);
/* Parses "YYYY-MM-DDTHH:MM:SS[.fff](Z|+hh:mm)"; returns -1 when malformed. */
time_t gm_time_parse_iso8601(const char *s);

#endif
