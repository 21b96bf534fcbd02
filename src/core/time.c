/* core time: clocks and FHIR date/dateTime/instant ranges. */
#include "core/core.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

int64_t time_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t time_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Days from 1970-01-01 to y-m-d in the proleptic Gregorian calendar (H. Hinnant's algorithm). */
static int64_t days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

void time_format_instant(int64_t ms, char out[32])
{
    time_t secs = (time_t)(ms >= 0 ? ms / 1000 : (ms - 999) / 1000);
    int msec = (int)(ms - (int64_t)secs * 1000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    char tmp[96]; /* the compiler cannot prove the fields are small: format wide, copy 31 */
    snprintf(tmp, sizeof tmp, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, msec);
    memcpy(out, tmp, 31);
    out[31] = 0;
}

static bool digits(const char *s, size_t len, size_t at, size_t n, int *out)
{
    if (at + n > len)
        return false;
    int v = 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[at + i];
        if (c < '0' || c > '9')
            return false;
        v = v * 10 + (c - '0');
    }
    *out = v;
    return true;
}

static int days_in_month(int y, int m)
{
    static const int dm[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
        return 29;
    return dm[m - 1];
}

int time_parse_range(const char *s, size_t len, int64_t *low, int64_t *high)
{
    int y, mo = 1, d = 1, h = 0, mi = 0, sec = 0;
    int64_t frac_ms = 0;
    size_t at = 0;
    enum { P_YEAR, P_MONTH, P_DAY, P_MINUTE, P_SECOND, P_MILLI } prec;

    if (!digits(s, len, 0, 4, &y))
        return ERR_INVALID;
    at = 4;
    prec = P_YEAR;
    if (at < len && s[at] == '-') {
        if (!digits(s, len, at + 1, 2, &mo) || mo < 1 || mo > 12)
            return ERR_INVALID;
        at += 3;
        prec = P_MONTH;
        if (at < len && s[at] == '-') {
            if (!digits(s, len, at + 1, 2, &d) || d < 1 || d > days_in_month(y, mo))
                return ERR_INVALID;
            at += 3;
            prec = P_DAY;
        }
    }
    int64_t tz_ms = 0;
    if (at < len && s[at] == 'T') {
        if (prec != P_DAY)
            return ERR_INVALID;
        if (!digits(s, len, at + 1, 2, &h) || h > 23 || at + 3 >= len || s[at + 3] != ':' ||
            !digits(s, len, at + 4, 2, &mi) || mi > 59)
            return ERR_INVALID;
        at += 6;
        prec = P_MINUTE;
        if (at < len && s[at] == ':') {
            if (!digits(s, len, at + 1, 2, &sec) || sec > 60)
                return ERR_INVALID;
            at += 3;
            prec = P_SECOND;
            if (at < len && s[at] == '.') {
                size_t n = 0;
                at++;
                while (at + n < len && s[at + n] >= '0' && s[at + n] <= '9')
                    n++;
                if (n == 0 || n > 9)
                    return ERR_INVALID;
                int64_t v = 0;
                for (size_t i = 0; i < 3; i++)
                    v = v * 10 + (i < n ? s[at + i] - '0' : 0);
                frac_ms = v;
                at += n;
                prec = P_MILLI;
            }
        }
        if (at < len && s[at] == 'Z') {
            at++;
        } else if (at < len && (s[at] == '+' || s[at] == '-')) {
            int th, tm;
            if (!digits(s, len, at + 1, 2, &th) || th > 14 || at + 3 >= len || s[at + 3] != ':' ||
                !digits(s, len, at + 4, 2, &tm) || tm > 59)
                return ERR_INVALID;
            tz_ms = ((int64_t)th * 60 + tm) * 60000 * (s[at] == '+' ? 1 : -1);
            at += 6;
        }
    }
    if (at != len)
        return ERR_INVALID;
    if (sec == 60)
        sec = 59; /* leap second: clamp */

    int64_t base = days_from_civil(y, mo, d) * 86400000 +
                   ((int64_t)h * 3600 + mi * 60 + sec) * 1000 + frac_ms - tz_ms;
    int64_t span;
    switch (prec) {
    case P_YEAR: span = days_from_civil(y + 1, 1, 1) * 86400000 - base; break;
    case P_MONTH: span = (int64_t)days_in_month(y, mo) * 86400000; break;
    case P_DAY: span = 86400000; break;
    case P_MINUTE: span = 60000; break;
    case P_SECOND: span = 1000; break;
    default: span = 1; break;
    }
    *low = base;
    *high = base + span - 1;
    return 0;
}
