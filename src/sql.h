/*
 * sql.h — the statement shapes the SQL backends (sqlite.c, postgres.c) have in common,
 * written once (sql.c) and spelled per backend by a small dialect: placeholders, how a
 * column is read back, how a JSON column compares, the condition hiding expired rows.
 * Statements are built once per shape and cached by the backends: nothing here runs per
 * operation. Internal.
 *
 * Identifiers come from schemas and are always double-quoted. Conditions are written as
 * "cond AND " so that shapes chain them; the last is always the visibility condition.
 */
#ifndef KDAO_SQL_H
#define KDAO_SQL_H

#include <stdbool.h>
#include <stdint.h>

#include "schema.h"
#include "strbuf.h"

typedef struct kdao__sql kdao__sql;

typedef struct kdao__sql_dialect {
  /* Alias of the entity table in every statement, qualifying its columns; NULL: none. */
  const char *alias;
  /* Comparison of a filter field with its value; primary keys always use " = ". */
  const char *filter_op;
  /* Appended to an array/table column compared with a parameter ("" when stored as text). */
  const char *json_compare;
  /* Placeholder `n` for a value of field `f` (NULL: a plain number such as a LIMIT). */
  void (*param)(kdao__sb *b, const kdao__field *f, int n);
  /* A column in a select or RETURNING list as the backend reads it; NULL: the column. */
  void (*read)(kdao__sql *q, const kdao__field *f);
  /*
   * The condition true of rows that have not expired. `key` > 0 when the statement
   * addresses one row by a one-column primary key, bound at placeholder `key`.
   */
  void (*visible)(kdao__sql *q, int key);
  /* Column type of a field, and the DEFAULT of timestamp columns (NULL: none). */
  const char *(*type)(kdao_type t);
  const char *timestamp_default;
} kdao__sql_dialect;

/* A statement being built. */
struct kdao__sql {
  kdao__sb sb;
  const kdao__sql_dialect *d;
  const kdao_schema *s;
  int n; /* placeholders written so far: the next one is n + 1 */
};

typedef enum kdao__sql_read {
  KDAO__SQL_FIND,  /* by primary key, one row */
  KDAO__SQL_ALL,   /* by filter, in key order */
  KDAO__SQL_COUNT, /* by filter, count(*) */
  KDAO__SQL_PAGE,  /* by filter, in key order, LIMIT (a placeholder) */
} kdao__sql_read;

/* The bits of the primary-key fields, in the field masks statements are shaped by. */
uint64_t kdao__sql_key_mask(const kdao_schema *s);

/* [alias.]"name" */
void kdao__sql_column(kdao__sql *q, const kdao__field *f);
/* Every field in field order, through the dialect's `read`: column i of a row is field i. */
void kdao__sql_columns(kdao__sql *q);

/*
 * SELECT of `what`: filter fields `filter` (field order; ignored for FIND, which takes the
 * key in key order), with `after` the keyset condition (pk...) > (placeholders...), then
 * the visibility condition, ORDER BY the key for ALL and PAGE, LIMIT for PAGE.
 */
void kdao__sql_select(kdao__sql *q, kdao__sql_read what, uint64_t filter, bool after);

/* INSERT of the fields of `fields`, RETURNING the row. */
void kdao__sql_insert(kdao__sql *q, uint64_t fields);

/*
 * UPDATE addressed by the key (placeholders after the SET values, in key order) of the
 * rows visible: SET the fields of `set` to values, those of `nulls` to NULL. RETURNING
 * the row.
 */
void kdao__sql_update(kdao__sql *q, uint64_t set, uint64_t nulls);

/*
 * DELETE addressed by the key (placeholders in key order), of visible rows only when
 * `visible_only`, RETURNING the row (callers may append more RETURNING columns).
 */
void kdao__sql_delete(kdao__sql *q, bool visible_only);

/*
 * CREATE TABLE IF NOT EXISTS for any entity, then CREATE INDEX IF NOT EXISTS on each
 * foreign field (cascades and filters read by it) that is not the whole key. Key columns
 * are NOT NULL, UNIQUE goes on unique fields that are not the whole key, and foreign
 * fields reference their parent (looked up in `f`) ON DELETE CASCADE.
 */
void kdao__sql_create_table(kdao__sql *q, const kdao_factory *f);

/* Hands the text to the caller (kdao__free()), NULL after an allocation failure. */
char *kdao__sql_take(kdao__sql *q);

#endif
