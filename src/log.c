/* log.c: leveled diagnostics on stderr with a timestamp; thread-safe via stdio locking. */
#include <stdarg.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include "surgegate/common.h"
#include "surgegate/log.h"

enum sg_log_level sg_log_level = SG_LOG_INFO;

static const char *const log_names[] = {"error", "warn", "info", "debug"};

void sg_log_set_level(enum sg_log_level level)
{
    sg_log_level = level;
}

int sg_log_parse_level(const char *s, enum sg_log_level *out)
{
    for (size_t i = 0; i < SG_ARRAY_SIZE(log_names); i++) {
        if (strcmp(s, log_names[i]) == 0) {
            *out = (enum sg_log_level)i;
            return SG_OK;
        }
    }
    return SG_ERR;
}

void sg_log(enum sg_log_level level, const char *fmt, ...)
{
    if (level > sg_log_level)
        return;
    char line[2048];
    struct timeval tv;
    struct tm tm;
    gettimeofday(&tv, NULL);
    gmtime_r(&tv.tv_sec, &tm);
    int n = (int)strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%S", &tm);
    n += snprintf(line + n, sizeof(line) - (size_t)n, ".%03dZ %s: ", (int)(tv.tv_usec / 1000),
                  log_names[level]);
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
    va_end(ap);
    if (m < 0)
        m = 0;
    size_t len = (size_t)n + (size_t)m;
    if (len > sizeof(line) - 2)
        len = sizeof(line) - 2;
    line[len++] = '\n';
    fwrite(line, 1, len, stderr);
}
