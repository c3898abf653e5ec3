/* strbuf.c — see strbuf.h. */
#include "strbuf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool sb_reserve(kdao__sb *b, size_t extra) {
  if (b->oom) return false;
  if (b->n + extra + 1 <= b->cap) return true;
  size_t cap = b->cap ? b->cap * 2 : 256;
  while (cap < b->n + extra + 1) cap *= 2;
  char *p = kdao__realloc(b->p, cap);
  if (p == NULL) {
    b->oom = true;
    return false;
  }
  b->p = p;
  b->cap = cap;
  return true;
}

void kdao__sb_addn(kdao__sb *b, const char *text, size_t n) {
  if (!sb_reserve(b, n)) return;
  memcpy(b->p + b->n, text, n);
  b->n += n;
  b->p[b->n] = '\0';
}

void kdao__sb_add(kdao__sb *b, const char *text) { kdao__sb_addn(b, text, strlen(text)); }

void kdao__sb_addf(kdao__sb *b, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int len = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  if (len < 0) {
    b->oom = true;
    return;
  }
  if (!sb_reserve(b, (size_t)len)) return;
  va_start(ap, fmt);
  vsnprintf(b->p + b->n, (size_t)len + 1, fmt, ap);
  va_end(ap);
  b->n += (size_t)len;
}

void kdao__sb_quote(kdao__sb *b, char quote, const char *text, const char *suffix) {
  kdao__sb_addn(b, &quote, 1);
  for (int part = 0; part < 2; part++) {
    for (const char *p = part ? suffix : text; p && *p; p++) {
      if (*p == quote) kdao__sb_addn(b, &quote, 1);
      kdao__sb_addn(b, p, 1);
    }
  }
  kdao__sb_addn(b, &quote, 1);
}

void kdao__sb_drop(kdao__sb *b, size_t k) {
  if (b->oom || b->p == NULL) return;
  b->n = k < b->n ? b->n - k : 0;
  b->p[b->n] = '\0';
}

char *kdao__sb_take(kdao__sb *b) {
  char *text = b->oom ? NULL : b->p;
  if (text == NULL) kdao__free(b->p);
  b->p = NULL;
  b->n = b->cap = 0;
  return text;
}
