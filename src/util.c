/*
 * util.c — small helpers shared by libkdao's files: strings, UUIDs, time, and Lua-style
 * printing of JSON scalars (Kong's messages concatenate values the way Lua prints them).
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include <openssl/rand.h>

#include "schema.h"
#include "util.h"

static char *util_vasprintf(const char *fmt, va_list ap) {
  va_list ap2;
  va_copy(ap2, ap);
  int n = vsnprintf(NULL, 0, fmt, ap2);
  va_end(ap2);
  if (n < 0) return NULL;
  char *buf = kdao__malloc((size_t)n + 1);
  if (!buf) return NULL;
  vsnprintf(buf, (size_t)n + 1, fmt, ap);
  return buf;
}

char *kdao__asprintf(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  char *s = util_vasprintf(fmt, ap);
  va_end(ap);
  return s;
}

char *kdao__vasprintf(const char *fmt, va_list ap) { return util_vasprintf(fmt, ap); }

/* Fills `buf` with random bytes: the kernel first, OpenSSL's CSPRNG as the fallback. */
static void util_random_bytes(unsigned char *buf, size_t n) {
  size_t got = 0;
  while (got < n) {
    ssize_t r = getrandom(buf + got, n - got, 0);
    if (r < 0) {
      if (errno == EINTR) continue;
      break;
    }
    got += (size_t)r;
  }
  if (got == n) return;
  if (RAND_bytes(buf, (int)n) == 1) return;
  /*
   * Both sources failing means the system has no entropy to give; ids must still be
   * distinct, so mix the clock and a counter rather than returning zeros.
   */
  static unsigned long long counter;
  unsigned long long seed = (unsigned long long)kdao__now_ms();
  seed ^= ++counter * 0x9E3779B97F4A7C15ull;
  for (size_t i = 0; i < n; i++) {
    seed ^= seed << 13;
    seed ^= seed >> 7;
    seed ^= seed << 17;
    buf[i] = (unsigned char)seed;
  }
}

void kdao__uuid_v4(char out[37]) {
  static const char hex[] = "0123456789abcdef";
  unsigned char b[16];
  util_random_bytes(b, sizeof b);
  b[6] = (unsigned char)((b[6] & 0x0f) | 0x40); /* version 4 */
  b[8] = (unsigned char)((b[8] & 0x3f) | 0x80); /* RFC 4122 variant */
  char *p = out;
  for (int i = 0; i < 16; i++) {
    if (i == 4 || i == 6 || i == 8 || i == 10) *p++ = '-';
    *p++ = hex[b[i] >> 4];
    *p++ = hex[b[i] & 0x0f];
  }
  *p = '\0';
}

long long kdao__now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int util_is_hex(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

bool kdao_is_uuid(const char *s) {
  if (!s || strlen(s) != 36) return false;
  for (int i = 0; i < 36; i++) {
    bool dash = (i == 8 || i == 13 || i == 18 || i == 23);
    if (dash ? s[i] != '-' : !util_is_hex(s[i])) return false;
  }
  return true;
}

bool kdao__utf8_valid(const char *s, size_t n) {
  const unsigned char *p = (const unsigned char *)s, *end = p + n;
  while (p < end) {
    unsigned c = *p++;
    if (c < 0x80) continue;
    size_t more = c >= 0xF0 ? 3 : c >= 0xE0 ? 2 : 1;
    if (c < 0xC2 || c > 0xF4 || (size_t)(end - p) < more) return false;
    unsigned cp = c & (0x3Fu >> more);
    for (size_t i = 0; i < more; i++, p++) {
      if ((*p & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (*p & 0x3Fu);
    }
    if ((more == 2 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) ||
        (more == 3 && (cp < 0x10000 || cp > 0x10FFFF)))
      return false;
  }
  return true;
}

char *kdao__number_text(double d) {
  /* Lua 5.1 / LuaJIT tostring(): LUAI_NUMFFORMAT "%.14g". */
  if (isnan(d)) return kdao__strdup(signbit(d) ? "-nan" : "nan");
  if (isinf(d)) return kdao__strdup(d < 0 ? "-inf" : "inf");
  char *s = kdao__asprintf("%.14g", d);
  /* A host program's LC_NUMERIC may print a decimal comma; Lua's messages use a point. */
  for (char *p = s; p && *p; p++)
    if (*p == ',') *p = '.';
  return s;
}

char *kdao__value_text(const json_t *v) {
  if (!v || json_is_null(v)) return kdao__strdup("nil");
  switch (json_typeof(v)) {
  case JSON_STRING: return kdao__strdup(json_string_value(v));
  case JSON_INTEGER: return kdao__asprintf("%" JSON_INTEGER_FORMAT, json_integer_value(v));
  case JSON_REAL: return kdao__number_text(json_real_value(v));
  case JSON_TRUE: return kdao__strdup("true");
  case JSON_FALSE: return kdao__strdup("false");
  default: return json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
  }
}
