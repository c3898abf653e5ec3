/*
 * schema.h — compiled schemas (schema.c): the structs the validator, the factory and the
 * backends read. Internal: never installed. Symbols shared across files are `kdao__`-prefixed.
 */
#ifndef KDAO_SCHEMA_H
#define KDAO_SCHEMA_H

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

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

/*
 * A composite unique: no two rows hold equal values in every member, an absent value
 * equalling an absent one (Kong's plugins: one `name` per (api_id, consumer_id), global
 * ones included). Kong checked these by reading before writing; here the backend enforces
 * them inside the write (docs/architecture.md, "Uniques").
 */
typedef struct kdao__unique {
  char *name;     /* "a,b": the members, in definition order (a reservation's name) */
  size_t *fields; /* member field indexes, in definition order */
  size_t n;
  size_t report;       /* the field a violation is reported under */
  const char *message; /* static; NULL: a unique error {report: value} */
} kdao__unique;

/* A composite unique of a built-in definition; lists end with schema == NULL. */
typedef struct kdao__unique_def {
  const kdao_schema_def *schema; /* the definition it belongs to (matched by address) */
  const char *const *fields;     /* NULL-terminated members */
  const char *report;            /* member named in the error */
  const char *message;           /* Kong's schema-error message, or NULL for a unique error */
} kdao__unique_def;

/* The built-in entities' composite uniques (src/schemas/common.c). */
extern const kdao__unique_def kdao__unique_defs[];

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
  kdao__unique *uniques; /* composite uniques (entities only) */
  size_t nuniques;
};

/* Index of field `name` in `s`, or -1. Binary search (fields are sorted). */
int kdao__schema_field_index(const kdao_schema *s, const char *name);
const kdao__field *kdao__schema_field(const kdao_schema *s, const char *name);

/*
 * The values of `row` in the members of `u`, as a JSON array with null for an absent value
 * and ids in lower case: equal arrays are equal composites. New reference, NULL: no memory.
 */
json_t *kdao__unique_values(const kdao_schema *s, const kdao__unique *u, const json_t *row);

/* Do rows `a` and `b` hold the same composite of `u`? */
bool kdao__unique_same(const kdao_schema *s, const kdao__unique *u, const json_t *a,
                       const json_t *b);

/* The error of a violation of `u` by `row`: Kong's, as the definition names it. */
kdao_error *kdao__unique_violation(const kdao_schema *s, const kdao__unique *u, const json_t *row);

/* Does an update setting `values` and clearing `nulls` touch a member of a composite? */
bool kdao__unique_touched(const kdao_schema *s, const json_t *values, const json_t *nulls);

#endif
