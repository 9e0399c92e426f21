/* error.c - error codes, messages and the per-thread detail line. */
#include <stdarg.h>
#include <stdio.h>

#include "common/error.h"

static _Thread_local char g_detail[512];

const char *pefa_strerror(int err)
{
    switch (err) {
#define PEFA_X_CASE(name, num, msg) \
    case -(num): return msg;
        PEFA_ERROR_LIST(PEFA_X_CASE)
#undef PEFA_X_CASE
    default: return "unknown error";
    }
}

const char *pefa_last_error_detail(void)
{
    return g_detail;
}

int pefa__set_error(int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(g_detail, sizeof g_detail, fmt, ap);
    va_end(ap);
    return code;
}

unsigned pefa_version_number(void)
{
    return PEFA_VERSION_NUMBER;
}

#define PEFA_STR2(x) #x
#define PEFA_STR(x) PEFA_STR2(x)
const char *pefa_version_string(void)
{
    return PEFA_STR(PEFA_VERSION_MAJOR) "." PEFA_STR(PEFA_VERSION_MINOR) "." PEFA_STR(PEFA_VERSION_PATCH);
}
