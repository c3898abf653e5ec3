/*
 * util.h — small helpers every piece uses (util.c): strings, value text as Lua prints it,
 * UUIDs, clocks.
 * Internal: never installed.
 */
#ifndef KDAO_UTIL_H
#define KDAO_UTIL_H

#include <stdarg.h>

#include "alloc.h"
#include "kdao.h"

char *kdao__asprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
char *kdao__vasprintf(const char *fmt, va_list ap) __attribute__((format(printf, 1, 0)));

/*
 * A value as Lua's tostring() prints it in Kong's messages: strings as they are, numbers
 * with "%.14g" (integers without ".0"), true/false, "nil" for NULL/null, other values as
 * compact JSON. kdao__malloc()ed; NULL when out of memory.
 */
char *kdao__value_text(const json_t *v);
char *kdao__number_text(double d);
/*
 * True when the n bytes at s are UTF-8 as jansson accepts it (no overlong forms, no
 * surrogates): lets a failed json_string() be told apart from out of memory.
 */
bool kdao__utf8_valid(const char *s, size_t n);
/* A random UUID v4 into out[37]. */
void kdao__uuid_v4(char out[37]);
/* Milliseconds since the epoch (UTC). */
long long kdao__now_ms(void);

#endif
