/*
 * strbuf.h — a growable text buffer with a sticky out-of-memory state, for SQL/CQL text
 * built once per statement shape. Appends after a failed allocation do nothing; the caller
 * checks once, at kdao__sb_take(). Internal.
 */
#ifndef KDAO_STRBUF_H
#define KDAO_STRBUF_H

#include <stdbool.h>
#include <stddef.h>

#include "alloc.h"

typedef struct kdao__sb {
  char *p;  /* NUL-terminated text, or NULL while empty */
  size_t n; /* length */
  size_t cap;
  bool oom; /* an allocation failed: the text is incomplete */
} kdao__sb;

void kdao__sb_addn(kdao__sb *b, const char *text, size_t n);
void kdao__sb_add(kdao__sb *b, const char *text);
void kdao__sb_addf(kdao__sb *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/*
 * `text` + `suffix` (may be NULL) between `quote`s with the quote doubled inside: an SQL
 * identifier with '"', a string literal with '\''.
 */
void kdao__sb_quote(kdao__sb *b, char quote, const char *text, const char *suffix);

/* Removes the last `k` characters (a trailing separator). */
void kdao__sb_drop(kdao__sb *b, size_t k);

/* Hands the text to the caller (kdao__free()), or frees it and returns NULL after an OOM. */
char *kdao__sb_take(kdao__sb *b);

#endif
