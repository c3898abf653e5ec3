/*
 * error.c — cql_error helpers and the label tables generated from the X-macro maps in cql.h.
 */
#include "cql_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void cql_error_clear(cql_error *err) {
  if (!err) return;
  cql__free(err->message);
  cql__free(err->server_message);
  cql__free(err->host);
  cql__free(err->write_type);
  cql__free(err->keyspace);
  cql__free(err->table);
  cql__free(err->function);
  cql__free(err->arg_types);
  cql__free(err->unprepared_id);
  memset(err, 0, sizeof *err);
}

const char *cql_error_kind_name(cql_error_kind kind) {
  switch (kind) {
#define CQL_X_(name, label) \
  case CQL_ERR_##name: return label;
    CQL_ERROR_KIND_MAP(CQL_X_)
#undef CQL_X_
  }
  return "Unknown error";
}

const char *cql_server_code_name(int32_t code) {
  switch (code) {
#define CQL_X_(name, num, label) \
  case num: return label;
    CQL_SERVER_ERROR_MAP(CQL_X_)
#undef CQL_X_
  }
  return "Unknown error";
}

const char *cql_error_message(const cql_error *err) {
  if (!err) return "No error";
  if (err->message) return err->message;
  if (err->kind == CQL_ERR_SERVER) return cql_server_code_name(err->code);
  return cql_error_kind_name(err->kind);
}

const char *cql_consistency_name(cql_consistency c) {
  static const char *const names[] = {
      "DEFAULT", "ANY",          "ONE",         "TWO",    "THREE",        "QUORUM",
      "ALL",     "LOCAL_QUORUM", "EACH_QUORUM", "SERIAL", "LOCAL_SERIAL", "LOCAL_ONE",
  };
  if ((unsigned)c < sizeof names / sizeof names[0]) return names[c];
  return "UNKNOWN";
}

int cql__fail(cql_error *err, cql_error_kind kind, const char *fmt, ...) {
  if (!err) return -1;
  cql_error_clear(err);
  err->kind = kind;
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  if (n < 0) return -1;
  err->message = cql__malloc((size_t)n + 1);
  if (!err->message) return -1; /* cql_error_message() falls back to the kind's label */
  va_start(ap, fmt);
  vsnprintf(err->message, (size_t)n + 1, fmt, ap);
  va_end(ap);
  return -1;
}

void cql__error_set_host(cql_error *err, const char *host) {
  if (!err || !host) return;
  cql__free(err->host);
  err->host = cql__strdup(host); /* best effort: NULL on out-of-memory is acceptable */
}

void cql__error_move(cql_error *dst, cql_error *src) {
  if (!dst) {
    cql_error_clear(src);
    return;
  }
  cql_error_clear(dst);
  *dst = *src;
  memset(src, 0, sizeof *src);
}

char *cql__strndup(const char *s, size_t n) {
  char *d = cql__malloc(n + 1);
  if (!d) return NULL;
  if (n) memcpy(d, s, n);
  d[n] = '\0';
  return d;
}

char *cql__strdup(const char *s) { return s ? cql__strndup(s, strlen(s)) : NULL; }

int64_t cql__now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}
