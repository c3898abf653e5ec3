/*
 * backend_unique.c — the composite-unique check the SQL backends run inside a write.
 *
 * A composite (schema.h, kdao__unique) has no constraint in Kong's tables, and an absent
 * member equals an absent one, which no SQL UNIQUE says. So the backend reads, but only
 * where no other writer can slip in between the read and its write: in SQLite's write
 * transaction (BEGIN IMMEDIATE holds the database's write lock), on PostgreSQL after an
 * advisory transaction lock on the composite's value. The read goes through the backend's
 * own find_all, so expired rows do not count, as they do not for finds.
 */
#include <string.h>
#include <strings.h>

#include "backend.h"

/* Is `row` the row `self` addresses (its primary key; ids compared without case)? */
static bool same_row(const kdao_schema *s, const json_t *row, const json_t *self) {
  if (self == NULL) return false;
  for (size_t k = 0; k < s->npk; k++) {
    const kdao__field *f = &s->fields[s->pk[k]];
    json_t *a = json_object_get(row, f->name), *b = json_object_get(self, f->name);
    if (a == NULL || b == NULL) return false;
    if (f->type == KDAO_TYPE_ID && json_is_string(a) && json_is_string(b)) {
      if (strcasecmp(json_string_value(a), json_string_value(b)) != 0) return false;
    } else if (!json_equal(a, b)) {
      return false;
    }
  }
  return true;
}

/* Is composite `u` of `row` held by a stored row other than `self`? */
static int unique_held(kdao__backend *b, const kdao_schema *s, const kdao__unique *u,
                       const json_t *row, const json_t *self, bool *held, kdao_error **err) {
  *held = false;
  /* The present members narrow the read; the comparison decides on the absent ones. */
  json_t *filter = json_object();
  if (filter == NULL) return kdao__fail(err, NULL);
  for (size_t k = 0; k < u->n; k++) {
    const char *name = s->fields[u->fields[k]].name;
    json_t *v = json_object_get(row, name);
    if (v && !json_is_null(v) && json_object_set(filter, name, v) != 0) {
      json_decref(filter);
      return kdao__fail(err, NULL);
    }
  }
  json_t *rows = NULL;
  int rc = b->ops->find_all(b, s, json_object_size(filter) ? filter : NULL, &rows, err);
  json_decref(filter);
  size_t i;
  json_t *other;
  json_array_foreach(rows, i, other) {
    if (kdao__unique_same(s, u, other, row) && !same_row(s, other, self)) {
      *held = true;
      break;
    }
  }
  json_decref(rows);
  return rc;
}

int kdao__uniques_check(kdao__backend *b, const kdao_schema *s, const json_t *row,
                        const json_t *self, kdao_error **err) {
  for (size_t i = 0; i < s->nuniques; i++) {
    bool held = false;
    int rc = unique_held(b, s, &s->uniques[i], row, self, &held, err);
    if (rc != KDAO_OK) return rc;
    if (held) {
      kdao_error *e = kdao__unique_violation(s, &s->uniques[i], row);
      return kdao__fail(err, e);
    }
  }
  return KDAO_OK;
}

json_t *kdao__row_merge(const json_t *old, const json_t *values, const json_t *nulls) {
  json_t *m = json_deep_copy(old);
  if (m == NULL) return NULL;
  const char *k;
  json_t *v;
  json_object_foreach((json_t *)values, k, v) {
    if (json_is_null(v))
      json_object_del(m, k);
    else if (json_object_set(m, k, v) != 0) {
      json_decref(m);
      return NULL;
    }
  }
  size_t i;
  json_array_foreach(nulls, i, v) {
    if (json_is_string(v)) json_object_del(m, json_string_value(v));
  }
  return m;
}
