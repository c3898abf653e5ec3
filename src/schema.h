/*
 * schema.h — compiled schemas and the error internals shared by libkdao's files.
 * Internal: never installed. Symbols shared across files are `kdao__`-prefixed.
 */
#ifndef KDAO_SCHEMA_H
#define KDAO_SCHEMA_H

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <stdarg.h>

#include "kdao.h"

/* A compiled field. */
typedef struct kdao__field {
  char *name;
  kdao_type type;
  unsigned flags;
  json_t *default_value; /* owned, or NULL */
  kdao_default_fn default_fn;
  char *foreign_entity; /* from "entity:field", or NULL */
  char *foreign_field;
  char **enum_values; /* owned, n_enum entries */
  size_t n_enum;
  char *regex_src;
  pcre2_code *regex;
  kdao_func_fn func;
  kdao_schema *nested; /* owned compiled static nested schema, or NULL */
  kdao_schema_fn schema_fn;
  void *ud;
} kdao__field;

struct kdao_schema {
  char *name;  /* DAO name, NULL for nested */
  char *table; /* table name, NULL for nested */
  kdao__field *fields;
  size_t nfields; /* fields are sorted by name: deterministic validation order */
  size_t *pk;     /* indexes into fields of the primary key, in key order */
  size_t npk;
  unsigned flags;
  kdao_self_check_fn self_check;
  void *ud;
};

/* Index of field `name` in `s`, or -1. Binary search (fields are sorted). */
int kdao__schema_field_index(const kdao_schema *s, const char *name);
const kdao__field *kdao__schema_field(const kdao_schema *s, const char *name);

/* Name of a type as Kong spells it ("id", "string", ..., "any"). */
const char *kdao__type_name(kdao_type t);

/* ---- errors ---- */

struct kdao_error {
  int kind;
  char *message; /* Kong's message */
  json_t *fields;
  char *db_name;
  char *code;
  char *string; /* cached kdao_error_string */
};

/* printf-style constructor; returns NULL only on OOM. */
kdao_error *kdao__error_fmt(int kind, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* A schema error holding `fields` (STOLEN: field → message map). */
kdao_error *kdao__error_schema_new(json_t *fields);

/* Sets the backend name of `e` (kept if already set). */
void kdao__error_set_db(kdao_error *e, const char *db_name);
void kdao__error_set_code(kdao_error *e, const char *code);

/*
 * Hands `e` to the caller: stores it in *err (when err is non-NULL) or frees it. Returns
 * e's kind (KDAO_ERR_NOMEM when e is NULL: constructors only fail when out of memory).
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

/* ---- small helpers ---- */
char *kdao__strdup(const char *s);
char *kdao__asprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
char *kdao__vasprintf(const char *fmt, va_list ap) __attribute__((format(printf, 1, 0)));

/*
 * A value as Lua's tostring() prints it in Kong's messages: strings as they are, numbers
 * with "%.14g" (integers without ".0"), true/false, "nil" for NULL/null, other values as
 * compact JSON. malloc()ed; NULL when out of memory.
 */
char *kdao__value_text(const json_t *v);
char *kdao__number_text(double d);
/*
 * A string read as Lua's tonumber() does (the validator's coercion; independent of the
 * locale), as a JSON integer when integral: a new reference, or NULL when not a number.
 */
json_t *kdao__number_from_string(const char *s);
/* A random UUID v4 into out[37]. */
void kdao__uuid_v4(char out[37]);
/* Milliseconds since the epoch (UTC). */
long long kdao__now_ms(void);

/* ---- validation internals ---- */

/*
 * kdao_validate with Kong's `old_t`: when `old` (an object, borrowed) is given and `mode`
 * is an update, fields flagged immutable (and not required) whose new value differs from
 * the old one collect "<f> cannot be updated". kdao_validate() is this with old == NULL.
 */
int kdao__validate(const kdao_schema *schema, json_t *entity, kdao_mode mode, const json_t *old,
                   kdao_dao *dao, kdao_error **err);

/* True when `v` is an array in Kong's sense (utils.is_array): a JSON array, or an object
 * whose keys are exactly "1".."n" (an empty object included). */
bool kdao__is_array(const json_t *v);

#endif
