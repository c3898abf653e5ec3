/* sql.c — see sql.h. */
#include "sql.h"

#include "backend.h"

static void ident(kdao__sql *q, const char *name) { kdao__sb_quote(&q->sb, '"', name, NULL); }

static const kdao__field *key_field(const kdao__sql *q, size_t k) {
  return &q->s->fields[q->s->pk[k]];
}

void kdao__sql_column(kdao__sql *q, const kdao__field *f) {
  if (q->d->alias) {
    kdao__sb_add(&q->sb, q->d->alias);
    kdao__sb_add(&q->sb, ".");
  }
  ident(q, f->name);
}

void kdao__sql_columns(kdao__sql *q) {
  for (size_t i = 0; i < q->s->nfields; i++) {
    if (i) kdao__sb_add(&q->sb, ", ");
    if (q->d->read)
      q->d->read(q, &q->s->fields[i]);
    else
      kdao__sql_column(q, &q->s->fields[i]);
  }
}

static void param(kdao__sql *q, const kdao__field *f) { q->d->param(&q->sb, f, ++q->n); }

/* The entity table, under its alias. */
static void table(kdao__sql *q) {
  ident(q, q->s->table);
  if (q->d->alias) {
    kdao__sb_add(&q->sb, " AS ");
    kdao__sb_add(&q->sb, q->d->alias);
  }
}

static void condition(kdao__sql *q, const kdao__field *f, const char *op) {
  kdao__sql_column(q, f);
  if (f->type == KDAO_TYPE_ARRAY || f->type == KDAO_TYPE_TABLE)
    kdao__sb_add(&q->sb, q->d->json_compare);
  kdao__sb_add(&q->sb, op);
  param(q, f);
  kdao__sb_add(&q->sb, " AND ");
}

/* `pk = placeholder AND ` per key field; returns the key's placeholder if it is one column. */
static int key_conditions(kdao__sql *q) {
  for (size_t k = 0; k < q->s->npk; k++) condition(q, key_field(q, k), " = ");
  return q->s->npk == 1 ? q->n : 0;
}

static void key_list(kdao__sql *q) {
  for (size_t k = 0; k < q->s->npk; k++) {
    if (k) kdao__sb_add(&q->sb, ", ");
    kdao__sql_column(q, key_field(q, k));
  }
}

static void returning(kdao__sql *q) {
  kdao__sb_add(&q->sb, " RETURNING ");
  kdao__sql_columns(q);
}

uint64_t kdao__sql_key_mask(const kdao_schema *s) {
  uint64_t m = 0;
  for (size_t k = 0; k < s->npk; k++) m |= UINT64_C(1) << s->pk[k];
  return m;
}

void kdao__sql_select(kdao__sql *q, kdao__sql_read what, uint64_t filter, bool after) {
  const kdao_schema *s = q->s;
  kdao__sb_add(&q->sb, "SELECT ");
  if (what == KDAO__SQL_COUNT)
    kdao__sb_add(&q->sb, "count(*)");
  else
    kdao__sql_columns(q);
  kdao__sb_add(&q->sb, " FROM ");
  table(q);
  kdao__sb_add(&q->sb, " WHERE ");
  int key = 0;
  if (what == KDAO__SQL_FIND) {
    key = key_conditions(q);
  } else {
    for (size_t i = 0; i < s->nfields; i++)
      if (filter >> i & 1) condition(q, &s->fields[i], q->d->filter_op);
    /* a filter naming exactly a one-column key addresses one row, like FIND */
    if (s->npk == 1 && filter == kdao__sql_key_mask(s)) key = q->n;
  }
  if (after) {
    key = 0;
    kdao__sb_add(&q->sb, "(");
    key_list(q);
    kdao__sb_add(&q->sb, ") > (");
    for (size_t k = 0; k < s->npk; k++) {
      if (k) kdao__sb_add(&q->sb, ", ");
      param(q, key_field(q, k));
    }
    kdao__sb_add(&q->sb, ") AND ");
  }
  q->d->visible(q, key);
  if (what == KDAO__SQL_ALL || what == KDAO__SQL_PAGE) {
    kdao__sb_add(&q->sb, " ORDER BY ");
    key_list(q);
  }
  if (what == KDAO__SQL_PAGE) {
    kdao__sb_add(&q->sb, " LIMIT ");
    param(q, NULL);
  }
}

/* The fields of `mask` in field order: their names, or placeholders for their values. */
static void field_list(kdao__sql *q, uint64_t mask, bool placeholders) {
  const char *sep = "";
  for (size_t i = 0; i < q->s->nfields; i++) {
    if (!(mask >> i & 1)) continue;
    kdao__sb_add(&q->sb, sep);
    if (placeholders)
      param(q, &q->s->fields[i]);
    else
      ident(q, q->s->fields[i].name);
    sep = ", ";
  }
}

void kdao__sql_insert(kdao__sql *q, uint64_t fields) {
  kdao__sb_add(&q->sb, "INSERT INTO ");
  table(q);
  kdao__sb_add(&q->sb, " (");
  field_list(q, fields, false);
  kdao__sb_add(&q->sb, ") VALUES (");
  field_list(q, fields, true);
  kdao__sb_add(&q->sb, ")");
  returning(q);
}

void kdao__sql_update(kdao__sql *q, uint64_t set, uint64_t nulls) {
  const kdao_schema *s = q->s;
  kdao__sb_add(&q->sb, "UPDATE ");
  table(q);
  kdao__sb_add(&q->sb, " SET ");
  const char *sep = "";
  for (size_t i = 0; i < s->nfields; i++) {
    if (!((set | nulls) >> i & 1)) continue;
    kdao__sb_add(&q->sb, sep);
    ident(q, s->fields[i].name);
    kdao__sb_add(&q->sb, " = ");
    if (set >> i & 1)
      param(q, &s->fields[i]);
    else
      kdao__sb_add(&q->sb, "NULL");
    sep = ", ";
  }
  if (!*sep) { /* nothing to change: a no-op SET still returns the (unexpired) row */
    ident(q, key_field(q, 0)->name);
    kdao__sb_add(&q->sb, " = ");
    kdao__sql_column(q, key_field(q, 0));
  }
  kdao__sb_add(&q->sb, " WHERE ");
  q->d->visible(q, key_conditions(q));
  returning(q);
}

void kdao__sql_delete(kdao__sql *q, bool visible_only) {
  kdao__sb_add(&q->sb, "DELETE FROM ");
  table(q);
  kdao__sb_add(&q->sb, " WHERE ");
  int key = key_conditions(q);
  if (visible_only)
    q->d->visible(q, key);
  else
    kdao__sb_drop(&q->sb, 5); /* the last " AND " */
  returning(q);
}

static bool whole_key(const kdao_schema *s, size_t i) { return s->npk == 1 && s->pk[0] == i; }

void kdao__sql_create_table(kdao__sql *q, const kdao_factory *f) {
  const kdao_schema *s = q->s;
  kdao__sb_add(&q->sb, "CREATE TABLE IF NOT EXISTS ");
  ident(q, s->table);
  kdao__sb_add(&q->sb, " (");
  for (size_t i = 0; i < s->nfields; i++) {
    const kdao__field *fd = &s->fields[i];
    ident(q, fd->name);
    kdao__sb_add(&q->sb, " ");
    kdao__sb_add(&q->sb, q->d->type(fd->type));
    if (fd->type == KDAO_TYPE_TIMESTAMP && q->d->timestamp_default) {
      kdao__sb_add(&q->sb, " DEFAULT ");
      kdao__sb_add(&q->sb, q->d->timestamp_default);
    }
    /* SQLite, for compatibility with its past, would let a key column hold NULL */
    for (size_t k = 0; k < s->npk; k++)
      if (s->pk[k] == i) kdao__sb_add(&q->sb, " NOT NULL");
    if ((fd->flags & KDAO_FIELD_UNIQUE) && !whole_key(s, i)) kdao__sb_add(&q->sb, " UNIQUE");
    const kdao_schema *parent =
        fd->foreign_entity ? kdao__factory_schema(f, fd->foreign_entity) : NULL;
    if (parent) {
      kdao__sb_add(&q->sb, " REFERENCES ");
      ident(q, parent->table);
      kdao__sb_add(&q->sb, " (");
      ident(q, fd->foreign_field);
      kdao__sb_add(&q->sb, ") ON DELETE CASCADE");
    }
    kdao__sb_add(&q->sb, ", ");
  }
  kdao__sb_add(&q->sb, "PRIMARY KEY (");
  for (size_t k = 0; k < s->npk; k++) {
    if (k) kdao__sb_add(&q->sb, ", ");
    ident(q, key_field(q, k)->name);
  }
  kdao__sb_add(&q->sb, "))");
  for (size_t i = 0; i < s->nfields; i++) {
    const kdao__field *fd = &s->fields[i];
    if (!fd->foreign_entity || whole_key(s, i)) continue;
    kdao__sb_addf(&q->sb, "; CREATE INDEX IF NOT EXISTS \"%s_%s_idx\" ON ", s->table, fd->name);
    ident(q, s->table);
    kdao__sb_add(&q->sb, " (");
    ident(q, fd->name);
    kdao__sb_add(&q->sb, ")");
  }
}

char *kdao__sql_take(kdao__sql *q) { return kdao__sb_take(&q->sb); }
