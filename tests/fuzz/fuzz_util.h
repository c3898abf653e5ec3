/*
 * fuzz_util.h — helpers shared by the libFuzzer targets of tests/fuzz/ (header only, each
 * target is one translation unit).
 *
 * A broken invariant is reported with FUZZ_CHECK, which prints the condition and aborts:
 * libFuzzer then keeps the input as a crash artifact, like a sanitizer finding.
 */
#ifndef KDAO_FUZZ_UTIL_H
#define KDAO_FUZZ_UTIL_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kdao.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

#define FUZZ_CHECK(cond, ...)                                                             \
  do {                                                                                    \
    if (!(cond)) {                                                                        \
      fprintf(stderr, "fuzz invariant broken at %s:%d: %s: ", __FILE__, __LINE__, #cond); \
      fprintf(stderr, __VA_ARGS__);                                                       \
      fputc('\n', stderr);                                                                \
      abort();                                                                            \
    }                                                                                     \
  } while (0)

/* The input as a NUL-terminated heap copy of exactly size + 1 bytes, so ASan sees overreads. */
static inline char *fuzz_strdup(const uint8_t *data, size_t size) {
  char *s = malloc(size + 1);
  if (!s) abort();
  memcpy(s, data, size);
  s[size] = '\0';
  return s;
}

/*
 * RFC 3629 UTF-8, as jansson accepts it: no overlong forms, no surrogates, nothing above
 * U+10FFFF. Written out here rather than borrowed from jansson so the check is independent
 * of the library whose output it judges.
 */
static inline bool fuzz_utf8_valid(const char *s, size_t len) {
  const unsigned char *p = (const unsigned char *)s, *end = p + len;
  while (p < end) {
    unsigned c = *p++;
    size_t more;
    unsigned cp, min;
    if (c < 0x80) continue;
    if (c >= 0xc2 && c <= 0xdf)
      more = 1, cp = c & 0x1f, min = 0x80;
    else if (c >= 0xe0 && c <= 0xef)
      more = 2, cp = c & 0x0f, min = 0x800;
    else if (c >= 0xf0 && c <= 0xf4)
      more = 3, cp = c & 0x07, min = 0x10000;
    else
      return false;
    if ((size_t)(end - p) < more) return false;
    for (size_t i = 0; i < more; i++) {
      if ((p[i] & 0xc0) != 0x80) return false;
      cp = cp << 6 | (p[i] & 0x3f);
    }
    p += more;
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return false;
  }
  return true;
}

/*
 * True when every string (and object key) under `v` is valid UTF-8 without NUL bytes:
 * what any JSON kdao builds from request bytes must hold before it reaches the library.
 * *bad receives the first offending string.
 */
static inline bool fuzz_json_text_ok(const json_t *v, const char **bad) {
  if (json_is_string(v)) {
    const char *s = json_string_value(v);
    size_t n = json_string_length(v);
    if (memchr(s, '\0', n) || !fuzz_utf8_valid(s, n)) {
      *bad = s;
      return false;
    }
    return true;
  }
  if (json_is_array(v)) {
    size_t i;
    json_t *e;
    json_array_foreach(v, i, e) if (!fuzz_json_text_ok(e, bad)) return false;
    return true;
  }
  if (json_is_object(v)) {
    const char *k;
    json_t *e;
    json_object_foreach((json_t *)v, k, e) {
      if (!fuzz_utf8_valid(k, strlen(k))) {
        *bad = k;
        return false;
      }
      if (!fuzz_json_text_ok(e, bad)) return false;
    }
  }
  return true;
}

/* A factory on a private SQLite :memory: database, migrated when `connect`. Aborts on failure. */
static inline kdao_factory *fuzz_factory(bool connect) {
  kdao_config *cfg = NULL;
  kdao_factory *f = NULL;
  kdao_error *err = NULL;
  if (kdao_config_new(&cfg, &err) != KDAO_OK ||
      kdao_config_set(cfg, "sqlite_path", ":memory:", &err) != KDAO_OK ||
      kdao_factory_new(cfg, &f, &err) != KDAO_OK ||
      (connect && (kdao_factory_connect(f, &err) != KDAO_OK ||
                   kdao_factory_migrate(f, NULL, NULL, NULL, &err) != KDAO_OK))) {
    fprintf(stderr, "fuzz: cannot set up a SQLite factory: %s\n", kdao_error_message(err));
    abort();
  }
  kdao_config_free(cfg);
  return f;
}

/* Inserts one entity given as JSON text, without events. Aborts on failure. */
static inline void fuzz_insert(kdao_factory *f, const char *dao, const char *json) {
  json_t *e = json_loads(json, 0, NULL);
  kdao_error *err = NULL;
  if (!e ||
      kdao_dao_insert(kdao_factory_dao(f, dao), e, 0, KDAO_DAO_QUIET, NULL, &err) != KDAO_OK) {
    fprintf(stderr, "fuzz: insert into %s failed: %s\n", dao, kdao_error_message(err));
    abort();
  }
  json_decref(e);
}

#endif
