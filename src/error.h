/*
 * error.h — error internals (error.c): the error struct, constructors libkdao uses
 * internally, Kong's error-map helpers and printable form.
 * Internal: never installed.
 */
#ifndef KDAO_ERROR_H
#define KDAO_ERROR_H

#include "kdao.h"

struct kdao_error {
  int kind;
  char *message; /* Kong's message */
  json_t *fields;
  char *db_name;
  char *code;
  char *string; /* cached kdao_error_string */
};

/*
 * The shared "out of memory" error every constructor returns when it cannot allocate (never
 * NULL): kdao_error_free() ignores it, and nothing may modify it.
 */
kdao_error *kdao__error_oom(void);

/* printf-style constructor; kdao__error_oom() when out of memory. */
kdao_error *kdao__error_fmt(int kind, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* A schema error holding `fields` (STOLEN: field → message map). */
kdao_error *kdao__error_schema_new(json_t *fields);

/* Sets the backend name of `e` (kept if already set). */
void kdao__error_set_db(kdao_error *e, const char *db_name);
void kdao__error_set_code(kdao_error *e, const char *code);

/*
 * Hands `e` to the caller: stores it in *err (when err is non-NULL) or frees it. Returns
 * e's kind. A NULL `e` (an allocation failed) hands out kdao__error_oom().
 */
int kdao__fail(kdao_error **err, kdao_error *e);

/* Kong's utils.add_error: first message under a key is a string, more make an array. */
int kdao__add_error(json_t **errors, const char *key, const char *message);

/*
 * Same with a JSON message (STOLEN): a string, or an array of strings (re-keyed nested
 * errors); an array added under a key that already has messages is flattened into its list.
 * Creates *errors when NULL. Returns 0, or -1 when out of memory.
 */
int kdao__add_error_value(json_t **errors, const char *key, json_t *value);

/* Kong's printable form of a field map ("k=v k2=v2", keys sorted, arrays joined by ","). */
char *kdao__printable(const json_t *fields);

#endif
