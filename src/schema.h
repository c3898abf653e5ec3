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

#endif
