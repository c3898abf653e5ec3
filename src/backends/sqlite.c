/*
 * backends/sqlite.c — the embedded backend (the default).
 *
 * One connection per factory, opened in WAL mode with synchronous=NORMAL (a commit is a
 * WAL append, no fsync; durable across process crashes, not power loss) and a busy timeout,
 * with PRAGMA foreign_keys on: UNIQUE and ON DELETE CASCADE constraints are real, so writes
 * need no read-before-write and cascades are complete and atomic.
 *
 * Statements. The SQL of each statement shape — (schema, operation, set of filter or SET
 * fields) — is built once, prepared with SQLITE_PREPARE_PERSISTENT and kept in a small open
 * addressing table; a call only binds, steps and resets. Field sets are bitmasks over the
 * schema's (name-sorted) fields, so schemas are limited to 64 fields.
 *
 * Columns are listed explicitly in schema field order (never `*`): column i of a result is
 * field i, so a row is read back with the schema typing each column, and a table may carry
 * extra columns.
 *
 * Expiry. The `ttls` table holds (key, table, expire_at); every read (find, find_all, pages,
 * count) and the lookups of update and delete skip rows with an expired ttls entry, so an
 * expired row is gone the moment it expires. Rows are purged by purge_expired, before writes
 * at most once a minute, and at once when an expired row is what makes an insert collide
 * with a unique value. The key of a composite primary key is json_array(k1, k2, ...) of its
 * values, computed by SQLite on both sides so both spellings agree. A table gets an AFTER
 * DELETE trigger removing its ttls entries the first time a TTL is written to it, so deletes,
 * cascades and truncates never leave an entry behind for a re-used key to inherit.
 */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

#include "backend.h"
#include "strbuf.h"

#define SQ_DEFAULT_PATH "kdao.db"
#define SQ_BUSY_TIMEOUT_MS 5000
#define SQ_PURGE_INTERVAL_MS 60000LL
#define SQ_MAX_FIELDS 64
#define SQ_TTLS "ttls"

/* ---- SQL text (strbuf.h): identifiers always quoted ---- */

static void sb_ident(kdao__sb *b, const char *name) { kdao__sb_quote(b, '"', name, NULL); }

/* The identifier "<name><suffix>", for names derived from a table's. */
static void sb_ident_suffix(kdao__sb *b, const char *name, const char *suffix) {
  kdao__sb_quote(b, '"', name, suffix);
}

/* ---- the backend state and its statement cache ---- */

typedef enum sq_op {
  SQ_INSERT = 1,
  SQ_FIND,
  SQ_FIND_ALL,   /* a: filter fields */
  SQ_PAGE_FIRST, /* a: filter fields */
  SQ_PAGE_NEXT,  /* a: filter fields */
  SQ_COUNT,      /* a: filter fields */
  SQ_UPDATE,     /* a: SET fields, b: fields set to NULL */
  SQ_DELETE,
  SQ_TRUNCATE,
  SQ_TTL_SET,
  SQ_TTL_TRIGGER,
  SQ_TTL_CLEAR,
  SQ_TTL_EXPIRED,
  SQ_PURGE,
  SQ_PARENT_EXISTS, /* a: the foreign field probed (FK failure diagnosis) */
  SQ_TX,            /* a: which transaction statement (sq_tx_stmt) */
} sq_op;

typedef enum sq_tx_stmt {
  TX_BEGIN,
  TX_COMMIT,
  TX_ROLLBACK,
  TX_SAVEPOINT,
  TX_RELEASE,
  TX_ROLLBACK_TO,
  TX_COUNT
} sq_tx_stmt;

static const char *const tx_sql[TX_COUNT] = {
    [TX_BEGIN] = "BEGIN IMMEDIATE", [TX_COMMIT] = "COMMIT",
    [TX_ROLLBACK] = "ROLLBACK",     [TX_SAVEPOINT] = "SAVEPOINT kdao",
    [TX_RELEASE] = "RELEASE kdao",  [TX_ROLLBACK_TO] = "ROLLBACK TO kdao",
};

typedef struct sq_key {
  const kdao_schema *s;
  unsigned op;
  uint64_t a, b;
} sq_key;

typedef struct sq_slot {
  sq_key key;
  sqlite3_stmt *stmt; /* NULL: empty slot */
} sq_slot;

typedef struct sq_backend {
  kdao__backend base;
  sqlite3 *db;
  char *path;
  sq_slot *slots; /* open addressing, linear probing, power-of-two size */
  size_t nslots, used;
  int depth; /* transaction nesting: 0 outside, 1 in BEGIN, >1 in savepoints */
  long long last_purge_ms;
} sq_backend;

/* Parameters ?1 and ?2 of every statement that filters expired rows. */
#define P_TABLE 1
#define P_NOW 2
#define P_FIRST 3

static uint64_t key_hash(const sq_key *k) {
  uint64_t h = (uint64_t)(uintptr_t)k->s * 0x9e3779b97f4a7c15ull;
  h ^= (uint64_t)k->op + 0x632be59bd9b4e019ull + (h << 6) + (h >> 2);
  h ^= k->a * 0xff51afd7ed558ccdull + (h << 6) + (h >> 2);
  h ^= k->b * 0xc4ceb9fe1a85ec53ull + (h << 6) + (h >> 2);
  return h ^ (h >> 29);
}

static bool key_eq(const sq_key *x, const sq_key *y) {
  return x->s == y->s && x->op == y->op && x->a == y->a && x->b == y->b;
}

static sq_slot *cache_find(sq_backend *b, const sq_key *k) {
  if (!b->nslots) return NULL;
  size_t mask = b->nslots - 1;
  for (size_t i = key_hash(k) & mask;; i = (i + 1) & mask) {
    sq_slot *slot = &b->slots[i];
    if (!slot->stmt || key_eq(&slot->key, k)) return slot;
  }
}

static bool cache_grow(sq_backend *b) {
  size_t n = b->nslots ? b->nslots * 2 : 64;
  sq_slot *old = b->slots;
  size_t old_n = b->nslots;
  b->slots = kdao__calloc(n, sizeof *b->slots);
  if (!b->slots) {
    b->slots = old;
    return false;
  }
  b->nslots = n;
  for (size_t i = 0; i < old_n; i++)
    if (old[i].stmt) *cache_find(b, &old[i].key) = old[i];
  kdao__free(old);
  return true;
}

static void cache_clear(sq_backend *b) {
  for (size_t i = 0; i < b->nslots; i++) sqlite3_finalize(b->slots[i].stmt);
  kdao__free(b->slots);
  b->slots = NULL;
  b->nslots = b->used = 0;
}

/* ---- errors ---- */

static int sq_nomem(kdao_error **err) { return kdao__fail(err, NULL); }

/*
 * The extended result code as the error's code, or the portable code kdao.h names for a
 * full database or disk and for a read-only database (every SQLITE_READONLY_* variant).
 */
static void sq_set_code(kdao_error *e, int code) {
  if ((code & 0xff) == SQLITE_FULL) {
    kdao__error_set_code(e, KDAO_ERR_CODE_FULL);
  } else if ((code & 0xff) == SQLITE_READONLY) {
    kdao__error_set_code(e, KDAO_ERR_CODE_READ_ONLY);
  } else {
    char num[16];
    snprintf(num, sizeof num, "%d", code);
    kdao__error_set_code(e, num);
  }
}

/* A db error carrying SQLite's message and extended result code. */
static int sq_db_error(sq_backend *b, const char *message, int code, kdao_error **err) {
  kdao_error *e = kdao_error_new(KDAO_ERR_DB, message ? message : sqlite3_errstr(code));
  if (e) {
    sq_set_code(e, code);
    kdao__error_set_db(e, b->base.ops->name);
  }
  return kdao__fail(err, e);
}

static int sq_fail(sq_backend *b, kdao_error **err) {
  return sq_db_error(b, sqlite3_errmsg(b->db), sqlite3_extended_errcode(b->db), err);
}

/* A failed bind: SQLITE_NOMEM may be kdao's own (a value it could not serialize). */
static int sq_bind_fail(sq_backend *b, int rc, kdao_error **err) {
  return rc == SQLITE_NOMEM ? sq_nomem(err) : sq_fail(b, err);
}

/* ---- SQL of each statement shape: the shared ones (sql.h) and SQLite's own ---- */

static const kdao__field *fld(const kdao_schema *s, size_t i) { return &s->fields[i]; }

/* The ttls key of a row: its pk column, or json_array of its pk columns. */
static void sql_key_expr(kdao__sb *q, const kdao_schema *s, const char *qualifier) {
  if (s->npk > 1) kdao__sb_add(q, "json_array(");
  for (size_t i = 0; i < s->npk; i++) {
    if (i) kdao__sb_add(q, ", ");
    if (qualifier)
      kdao__sb_add(q, qualifier);
    else
      sb_ident(q, s->table);
    kdao__sb_add(q, ".");
    sb_ident(q, fld(s, s->pk[i])->name);
  }
  if (s->npk > 1) kdao__sb_add(q, ")");
}

/* The same key from bound parameters ?first .. ?first+npk-1. */
static void sql_key_params(kdao__sb *q, const kdao_schema *s, int first) {
  if (s->npk > 1) kdao__sb_add(q, "json_array(");
  for (size_t i = 0; i < s->npk; i++) kdao__sb_addf(q, "%s?%d", i ? ", " : "", first + (int)i);
  if (s->npk > 1) kdao__sb_add(q, ")");
}

/* Values are bound as their storage class: no conversion in the text. */
static void sq_param(kdao__sb *q, const kdao__field *f, int n) {
  (void)f;
  kdao__sb_addf(q, "?%d", n);
}

/*
 * One correlated form whatever addresses the row: the key may be a json_array of several
 * columns, and SQLite probes the ttls index once per candidate row either way.
 */
static void sq_visible(kdao__sql *q, int key) {
  (void)key;
  kdao__sb_add(&q->sb, "NOT EXISTS (SELECT 1 FROM \"" SQ_TTLS "\" WHERE \"table_name\" = ?1"
                       " AND \"primary_key_value\" = ");
  sql_key_expr(&q->sb, q->s, NULL);
  kdao__sb_add(&q->sb, " AND \"expire_at\" <= ?2)");
}

static const char *column_type(kdao_type t) {
  switch (t) {
  case KDAO_TYPE_NUMBER: return "NUMERIC"; /* integers stay integers, reals stay reals */
  case KDAO_TYPE_BOOLEAN:
  case KDAO_TYPE_TIMESTAMP: return "INTEGER";
  default: return "TEXT";
  }
}

/* Filters compare with IS: a JSON null in a filter finds the rows where the column is NULL. */
static const kdao__sql_dialect sq_dialect = {
    .filter_op = " IS ",
    .json_compare = "", /* arrays and tables are stored as canonical JSON text */
    .param = sq_param,
    .visible = sq_visible,
    .type = column_type,
};

static void build_ttl(kdao__sb *q, const kdao_schema *s, sq_op op) {
  switch (op) {
  case SQ_TTL_SET:
    kdao__sb_add(q, "INSERT INTO \"" SQ_TTLS "\" (\"primary_key_value\", \"table_name\","
                    " \"expire_at\") VALUES (");
    sql_key_params(q, s, P_FIRST);
    kdao__sb_add(q, ", ?1, ?2) ON CONFLICT (\"primary_key_value\", \"table_name\")"
                    " DO UPDATE SET \"expire_at\" = excluded.\"expire_at\"");
    break;
  case SQ_TTL_TRIGGER:
    /* Identifiers only (schema names): a trigger body cannot hold bound parameters. */
    kdao__sb_add(q, "CREATE TRIGGER IF NOT EXISTS ");
    sb_ident_suffix(q, s->table, "_kdao_ttl");
    kdao__sb_add(q, " AFTER DELETE ON ");
    sb_ident(q, s->table);
    kdao__sb_add(q, " BEGIN DELETE FROM \"" SQ_TTLS "\" WHERE \"table_name\" = ");
    kdao__sb_quote(q, '\'', s->table, NULL);
    kdao__sb_add(q, " AND \"primary_key_value\" = ");
    sql_key_expr(q, s, "old");
    kdao__sb_add(q, "; END");
    break;
  case SQ_TTL_CLEAR:
    kdao__sb_add(q, "DELETE FROM \"" SQ_TTLS "\" WHERE \"table_name\" = ?1");
    break;
  case SQ_TTL_EXPIRED:
    kdao__sb_add(q, "DELETE FROM \"" SQ_TTLS "\" WHERE \"table_name\" = ?1"
                    " AND \"expire_at\" <= ?2");
    break;
  case SQ_PURGE:
    kdao__sb_add(q, "DELETE FROM ");
    sb_ident(q, s->table);
    kdao__sb_add(q, " WHERE ");
    sql_key_expr(q, s, NULL);
    kdao__sb_add(q, " IN (SELECT \"primary_key_value\" FROM \"" SQ_TTLS "\""
                    " WHERE \"table_name\" = ?1 AND \"expire_at\" <= ?2)");
    break;
  default: break;
  }
}

static char *build_sql(const sq_key *k) {
  if (k->op == SQ_TX) return kdao__strdup(tx_sql[k->a]);
  const kdao_schema *s = k->s;
  kdao__sql q = {.d = &sq_dialect, .s = s, .n = P_FIRST - 1};
  switch ((sq_op)k->op) {
  case SQ_INSERT:
    q.n = 0; /* every column, from ?1: an insert binds no table name or clock */
    kdao__sql_insert(&q, s->nfields < 64 ? (UINT64_C(1) << s->nfields) - 1 : UINT64_MAX);
    break;
  case SQ_FIND: kdao__sql_select(&q, KDAO__SQL_FIND, 0, false); break;
  case SQ_FIND_ALL: kdao__sql_select(&q, KDAO__SQL_ALL, k->a, false); break;
  case SQ_PAGE_FIRST: kdao__sql_select(&q, KDAO__SQL_PAGE, k->a, false); break;
  case SQ_PAGE_NEXT: kdao__sql_select(&q, KDAO__SQL_PAGE, k->a, true); break;
  case SQ_COUNT: kdao__sql_select(&q, KDAO__SQL_COUNT, k->a, false); break;
  case SQ_UPDATE: kdao__sql_update(&q, k->a, k->b); break;
  case SQ_DELETE: kdao__sql_delete(&q, true); break;
  case SQ_TRUNCATE:
    kdao__sb_add(&q.sb, "DELETE FROM ");
    sb_ident(&q.sb, s->table);
    break;
  case SQ_TTL_SET:
  case SQ_TTL_TRIGGER:
  case SQ_TTL_CLEAR:
  case SQ_TTL_EXPIRED:
  case SQ_PURGE: build_ttl(&q.sb, s, (sq_op)k->op); break;
  case SQ_PARENT_EXISTS:
    kdao__sb_add(&q.sb, "SELECT 1 FROM ");
    sb_ident(&q.sb, s->table);
    kdao__sb_add(&q.sb, " WHERE ");
    sb_ident(&q.sb, fld(s, (size_t)k->a)->name);
    kdao__sb_add(&q.sb, " = ?1 LIMIT 1");
    break;
  case SQ_TX: break;
  }
  return kdao__sql_take(&q);
}

/*
 * The prepared statement of a shape, built and prepared on first use. The statement stays
 * owned by the cache; callers reset it when done (sq_done).
 */
static int sq_stmt(sq_backend *b, const kdao_schema *s, sq_op op, uint64_t a, uint64_t bits,
                   sqlite3_stmt **out, kdao_error **err) {
  sq_key k = {s, op, a, bits};
  sq_slot *slot = cache_find(b, &k);
  if (slot && slot->stmt) {
    *out = slot->stmt;
    return KDAO_OK;
  }
  if ((b->used + 1) * 4 > b->nslots * 3) {
    if (!cache_grow(b)) return sq_nomem(err);
    slot = cache_find(b, &k);
  }
  char *sql = build_sql(&k);
  if (!sql) return sq_nomem(err);
  sqlite3_stmt *st = NULL;
  int rc = sqlite3_prepare_v3(b->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &st, NULL);
  kdao__free(sql);
  if (rc != SQLITE_OK) return sq_fail(b, err);
  slot->key = k;
  slot->stmt = st;
  b->used++;
  *out = st;
  return KDAO_OK;
}

static void sq_done(sqlite3_stmt *st) {
  if (st) sqlite3_reset(st);
}

/* ---- binding values and reading rows ---- */

/* Ids are stored lower-case; most already are, and then need no copy. */
static int bind_id(sqlite3_stmt *st, int i, const char *v, size_t n) {
  size_t upper = 0;
  while (upper < n && !(v[upper] >= 'A' && v[upper] <= 'Z')) upper++;
  if (upper == n) return sqlite3_bind_text(st, i, v, (int)n, SQLITE_STATIC);
  char *lower = kdao__malloc(n + 1);
  if (!lower) return SQLITE_NOMEM;
  for (size_t j = 0; j <= n; j++)
    lower[j] = (char)(v[j] >= 'A' && v[j] <= 'Z' ? v[j] + ('a' - 'A') : v[j]);
  return sqlite3_bind_text(st, i, lower, (int)n, kdao__free);
}

/*
 * Binds one JSON value as its storage class. Strings are bound without a copy
 * (SQLITE_STATIC): `v` must stay alive until the statement is reset, which holds for the
 * borrowed arguments of every operation. Ids are stored lower-case (one spelling per uuid);
 * booleans as 0/1; arrays and tables as compact JSON with sorted keys, so equal values have
 * equal text and compare equal in filters.
 */
static int bind_value(sqlite3_stmt *st, int i, const kdao__field *f, const json_t *v) {
  switch (json_typeof(v)) {
  case JSON_STRING:
    if (f && f->type == KDAO_TYPE_ID)
      return bind_id(st, i, json_string_value(v), json_string_length(v));
    return sqlite3_bind_text(st, i, json_string_value(v), (int)json_string_length(v),
                             SQLITE_STATIC);
  case JSON_INTEGER: return sqlite3_bind_int64(st, i, json_integer_value(v));
  case JSON_REAL:
    if (f && f->type == KDAO_TYPE_TIMESTAMP)
      return sqlite3_bind_int64(st, i, (sqlite3_int64)json_real_value(v));
    return sqlite3_bind_double(st, i, json_real_value(v));
  case JSON_TRUE: return sqlite3_bind_int(st, i, 1);
  case JSON_FALSE: return sqlite3_bind_int(st, i, 0);
  case JSON_NULL: return sqlite3_bind_null(st, i);
  case JSON_ARRAY:
  case JSON_OBJECT: {
    /* jansson's dump may drop what it has no memory for: any failure voids the text. */
    unsigned long failures = kdao__alloc_failures();
    char *text = json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS);
    if (!text || kdao__alloc_failures() != failures) {
      kdao__free(text);
      return SQLITE_NOMEM;
    }
    int rc = sqlite3_bind_text(st, i, text, -1, SQLITE_TRANSIENT);
    kdao__free(text);
    return rc;
  }
  }
  return SQLITE_MISUSE;
}

static int bind_opt(sqlite3_stmt *st, int i, const kdao__field *f, const json_t *v) {
  return v ? bind_value(st, i, f, v) : sqlite3_bind_null(st, i);
}

static int bind_alive(sqlite3_stmt *st, const kdao_schema *s, long long now) {
  int rc = sqlite3_bind_text(st, P_TABLE, s->table, -1, SQLITE_STATIC);
  return rc ? rc : sqlite3_bind_int64(st, P_NOW, now);
}

/* Binds the pk fields of `obj` from ?first; a missing one is a misuse. */
static int bind_pk(sq_backend *b, sqlite3_stmt *st, const kdao_schema *s, const json_t *obj,
                   int first, kdao_error **err) {
  for (size_t i = 0; i < s->npk; i++) {
    const kdao__field *f = fld(s, s->pk[i]);
    json_t *v = json_object_get(obj, f->name);
    if (!v) return kdao__fail(err, kdao__error_fmt(KDAO_ERR_MISUSE, "Missing PRIMARY KEY field"));
    int rc = bind_value(st, first + (int)i, f, v);
    if (rc != SQLITE_OK) return sq_bind_fail(b, rc, err);
  }
  return KDAO_OK;
}

static json_t *column_json(sqlite3_stmt *st, int i, int type, const kdao__field *f) {
  switch (f->type) {
  case KDAO_TYPE_BOOLEAN: return json_boolean(sqlite3_column_int(st, i) != 0);
  case KDAO_TYPE_TIMESTAMP: return json_integer(sqlite3_column_int64(st, i));
  case KDAO_TYPE_NUMBER:
    if (type == SQLITE_INTEGER) return json_integer(sqlite3_column_int64(st, i));
    return json_real(sqlite3_column_double(st, i));
  case KDAO_TYPE_ARRAY:
  case KDAO_TYPE_TABLE: {
    const char *text = (const char *)sqlite3_column_text(st, i);
    if (!text) return NULL;
    json_t *v = json_loadb(text, (size_t)sqlite3_column_bytes(st, i), JSON_DECODE_ANY, NULL);
    if (v) return v;
    break; /* not JSON (written by hand): hand back the text */
  }
  default: break;
  }
  const char *text = (const char *)sqlite3_column_text(st, i);
  return text ? json_stringn(text, (size_t)sqlite3_column_bytes(st, i)) : NULL;
}

/* The current result row as an entity: column i is field i; NULL columns are absent. */
static int read_row(sq_backend *b, sqlite3_stmt *st, const kdao_schema *s, json_t **out,
                    kdao_error **err) {
  json_t *row = json_object();
  if (!row) return sq_nomem(err);
  for (size_t i = 0; i < s->nfields; i++) {
    int type = sqlite3_column_type(st, (int)i);
    if (type == SQLITE_NULL) continue;
    /* A JSON column that failed to parse for want of memory must not come back as text. */
    unsigned long failures = kdao__alloc_failures();
    json_t *v = column_json(st, (int)i, type, fld(s, i));
    if (!v || kdao__alloc_failures() != failures) {
      json_decref(row);
      json_decref(v);
      if (kdao__alloc_failures() != failures || sqlite3_errcode(b->db) == SQLITE_NOMEM)
        return sq_nomem(err);
      return kdao__fail(err, kdao__error_fmt(KDAO_ERR_DB, "column %s of %s is not valid UTF-8",
                                             fld(s, i)->name, s->table));
    }
    if (json_object_set_new_nocheck(row, fld(s, i)->name, v) != 0) {
      json_decref(row);
      return sq_nomem(err);
    }
  }
  *out = row;
  return KDAO_OK;
}

/*
 * Steps a statement returning at most one row: *out = the row or NULL. A negative return
 * is a failed step (-rc), which the caller classifies (constraint failures) before the
 * reset clears the message.
 *
 * The statement is always stepped to SQLITE_DONE. For a write with RETURNING, that is where
 * an autocommit transaction commits and where SQLite runs its WAL hook: stopping at the row
 * and committing in sqlite3_reset would skip the automatic checkpoints and let the WAL
 * file grow without bound (the benchmark caught it at 56 MB after 3000 inserts).
 */
static int step_one(sq_backend *b, sqlite3_stmt *st, const kdao_schema *s, json_t **out,
                    kdao_error **err) {
  *out = NULL;
  int rc = sqlite3_step(st);
  if (rc == SQLITE_ROW) {
    int kind = read_row(b, st, s, out, err);
    if (kind) return kind;
    rc = sqlite3_step(st);
  }
  if (rc == SQLITE_DONE) return KDAO_OK;
  json_decref(*out);
  *out = NULL;
  return -rc;
}

/* Appends up to `limit` rows (0: all) to `rows`; *more = a row beyond the limit exists. */
static int step_rows(sq_backend *b, sqlite3_stmt *st, const kdao_schema *s, size_t limit,
                     json_t *rows, bool *more, kdao_error **err) {
  size_t n = 0;
  for (;;) {
    int rc = sqlite3_step(st);
    if (rc == SQLITE_DONE) return KDAO_OK;
    if (rc != SQLITE_ROW) return sq_fail(b, err);
    if (limit && n == limit) {
      *more = true;
      return KDAO_OK;
    }
    json_t *row = NULL;
    int kind = read_row(b, st, s, &row, err);
    if (kind) return kind;
    if (json_array_append_new(rows, row) != 0) return sq_nomem(err);
    n++;
  }
}

/* ---- filters ---- */

static int filter_mask(const kdao_schema *s, const json_t *filter, uint64_t *mask,
                       kdao_error **err) {
  *mask = 0;
  if (!filter) return KDAO_OK;
  const char *name;
  json_t *v;
  json_object_foreach((json_t *)filter, name, v) {
    int i = kdao__schema_field_index(s, name);
    if (i < 0) {
      json_t *fields = json_pack("{s:s}", name, "unknown field");
      return kdao__fail(err, fields ? kdao__error_schema_new(fields) : NULL);
    }
    *mask |= 1ull << i;
  }
  return KDAO_OK;
}

static int bind_filter(sq_backend *b, sqlite3_stmt *st, const kdao_schema *s, uint64_t mask,
                       const json_t *filter, int *param, kdao_error **err) {
  for (size_t i = 0; i < s->nfields; i++) {
    if (!(mask >> i & 1)) continue;
    const kdao__field *f = fld(s, i);
    int rc = bind_value(st, (*param)++, f, json_object_get(filter, f->name));
    if (rc != SQLITE_OK) return sq_bind_fail(b, rc, err);
  }
  return KDAO_OK;
}

/* ---- transactions: BEGIN IMMEDIATE outside, SAVEPOINTs inside ---- */

static int tx_exec(sq_backend *b, sq_tx_stmt which, kdao_error **err) {
  sqlite3_stmt *st = NULL;
  int kind = sq_stmt(b, NULL, SQ_TX, which, 0, &st, err);
  /*
   * Undoing must work when kdao has no memory left for its statement cache: SQLite's own
   * exec does without it. Anything else reports the failure.
   */
  if (kind && err == NULL) return sqlite3_exec(b->db, tx_sql[which], NULL, NULL, NULL);
  if (kind) return kind;
  int rc = sqlite3_step(st);
  if (rc != SQLITE_DONE) kind = sq_fail(b, err);
  sq_done(st);
  return kind;
}

static int tx_begin(sq_backend *b, kdao_error **err) {
  int kind = tx_exec(b, b->depth ? TX_SAVEPOINT : TX_BEGIN, err);
  if (!kind) b->depth++;
  return kind;
}

static int tx_commit(sq_backend *b, kdao_error **err) {
  if (b->depth == 0) return KDAO_OK;
  int kind = tx_exec(b, b->depth > 1 ? TX_RELEASE : TX_COMMIT, err);
  if (kind && b->depth == 1) { /* a failed COMMIT leaves the transaction open: end it */
    tx_exec(b, TX_ROLLBACK, NULL);
  }
  b->depth--;
  return kind;
}

static void tx_rollback(sq_backend *b) {
  if (b->depth == 0) return;
  if (b->depth > 1) {
    tx_exec(b, TX_ROLLBACK_TO, NULL);
    tx_exec(b, TX_RELEASE, NULL);
  } else if (!sqlite3_get_autocommit(b->db)) { /* SQLite may have rolled back already */
    tx_exec(b, TX_ROLLBACK, NULL);
  }
  b->depth--;
}

/* ---- expiry ---- */

static int ttl_set(sq_backend *b, const kdao_schema *s, const json_t *row, int ttl,
                   kdao_error **err) {
  sqlite3_stmt *st = NULL;
  int kind = sq_stmt(b, s, SQ_TTL_TRIGGER, 0, 0, &st, err);
  if (kind) return kind;
  int rc = sqlite3_step(st);
  sq_done(st);
  if (rc != SQLITE_DONE) return sq_fail(b, err);
  if ((kind = sq_stmt(b, s, SQ_TTL_SET, 0, 0, &st, err))) return kind;
  long long expire = kdao__now_ms() + (long long)ttl * 1000;
  if (bind_alive(st, s, expire) != SQLITE_OK)
    kind = sq_fail(b, err);
  else if (!(kind = bind_pk(b, st, s, row, P_FIRST, err)) && sqlite3_step(st) != SQLITE_DONE)
    kind = sq_fail(b, err);
  sq_done(st);
  return kind;
}

static const kdao_schema *schema_of_table(const kdao_schema *const *schemas, size_t n,
                                          const char *table) {
  for (size_t i = 0; i < n; i++)
    if (strcmp(schemas[i]->table, table) == 0) return schemas[i];
  return NULL;
}

/* Deletes the expired rows of one table, then its ttls entries whose row is gone. */
static int purge_table(sq_backend *b, const kdao_schema *s, long long now, long long *purged,
                       kdao_error **err) {
  sqlite3_stmt *st = NULL;
  int kind = sq_stmt(b, s, SQ_PURGE, 0, 0, &st, err);
  if (kind) return kind;
  if (bind_alive(st, s, now) != SQLITE_OK || sqlite3_step(st) != SQLITE_DONE)
    kind = sq_fail(b, err);
  else
    *purged += sqlite3_changes(b->db);
  sq_done(st);
  if (kind || (kind = sq_stmt(b, s, SQ_TTL_EXPIRED, 0, 0, &st, err))) return kind;
  if (bind_alive(st, s, now) != SQLITE_OK || sqlite3_step(st) != SQLITE_DONE)
    kind = sq_fail(b, err);
  sq_done(st);
  return kind;
}

static bool table_exists(sq_backend *b, const char *table) {
  sqlite3_stmt *st = NULL;
  if (sqlite3_prepare_v2(b->db, "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1",
                         -1, &st, NULL) != SQLITE_OK)
    return false;
  sqlite3_bind_text(st, 1, table, -1, SQLITE_STATIC);
  bool found = sqlite3_step(st) == SQLITE_ROW;
  sqlite3_finalize(st);
  return found;
}

/* Runs `sql` with ?1 = `now`, appending the text of its first column to `names`. */
static int query_names(sq_backend *b, const char *sql, long long now, json_t *names,
                       kdao_error **err) {
  sqlite3_stmt *st = NULL;
  if (sqlite3_prepare_v2(b->db, sql, -1, &st, NULL) != SQLITE_OK) return sq_fail(b, err);
  sqlite3_bind_int64(st, 1, now);
  int kind = KDAO_OK, rc;
  while (!kind && (rc = sqlite3_step(st)) == SQLITE_ROW)
    if (json_array_append_new(names, json_string((const char *)sqlite3_column_text(st, 0))))
      kind = sq_nomem(err);
  if (!kind && rc != SQLITE_DONE) kind = sq_fail(b, err);
  sqlite3_finalize(st);
  return kind;
}

static int purge_all(sq_backend *b, const kdao_schema *const *schemas, size_t n,
                     const json_t *tables, long long now, long long *purged, kdao_error **err) {
  size_t i;
  json_t *name;
  json_array_foreach(tables, i, name) {
    const kdao_schema *s = schema_of_table(schemas, n, json_string_value(name));
    int kind = s ? purge_table(b, s, now, purged, err) : KDAO_OK;
    if (kind) return kind;
  }
  return KDAO_OK;
}

/*
 * Deletes expired rows table by table (no events, like Kong's purge; cascades apply). The
 * table names are read first: the deletes change ttls, which a live SELECT must not see.
 * Entries of tables this factory has no schema for are left alone: removing them without
 * their rows would bring expired rows back for the process that owns those tables.
 */
static int sq_purge(sq_backend *b, const kdao_schema *const *schemas, size_t n, long long *purged,
                    kdao_error **err) {
  *purged = 0;
  long long now = kdao__now_ms();
  b->last_purge_ms = now;
  if (!table_exists(b, SQ_TTLS)) return KDAO_OK; /* not migrated yet: nothing can have expired */
  json_t *tables = json_array();
  if (!tables) return sq_nomem(err);
  int kind = query_names(
      b, "SELECT DISTINCT \"table_name\" FROM \"" SQ_TTLS "\" WHERE \"expire_at\" <= ?1", now,
      tables, err);
  if (!kind && json_array_size(tables) > 0 && !(kind = tx_begin(b, err))) {
    kind = purge_all(b, schemas, n, tables, now, purged, err);
    kind = kind ? kind : tx_commit(b, err);
    if (kind) tx_rollback(b);
  }
  json_decref(tables);
  return kind;
}

/* Before writes, outside explicit transactions: purge at most once per interval. */
static void maybe_purge(sq_backend *b) {
  if (b->depth || kdao__now_ms() - b->last_purge_ms < SQ_PURGE_INTERVAL_MS) return;
  long long purged;
  kdao_error *ignored = NULL;
  size_t n = 0;
  const kdao_schema *const *schemas = kdao__factory_schemas(b->base.factory, &n);
  sq_purge(b, schemas, n, &purged, &ignored); /* best effort: the write reports its own errors */
  kdao_error_free(ignored);
}

/* ---- constraint failures → Kong's unique / foreign errors ---- */

static json_t *value_of(const char *field, const json_t *row, const json_t *alt) {
  json_t *v = json_object_get(row, field);
  return v ? v : json_object_get(alt, field);
}

/* Columns named by an index (expression parts have no name): "a, b". */
static char *index_columns(sq_backend *b, const char *index) {
  sqlite3_stmt *st = NULL;
  if (sqlite3_prepare_v2(b->db, "SELECT name FROM pragma_index_info(?1) WHERE name NOT NULL", -1,
                         &st, NULL) != SQLITE_OK)
    return NULL;
  sqlite3_bind_text(st, 1, index, -1, SQLITE_STATIC);
  kdao__sb cols = {0};
  while (sqlite3_step(st) == SQLITE_ROW) {
    if (cols.n) kdao__sb_add(&cols, ", ");
    kdao__sb_add(&cols, (const char *)sqlite3_column_text(st, 0));
  }
  sqlite3_finalize(st);
  return kdao__sb_take(&cols);
}

/*
 * "UNIQUE constraint failed: t.a, t.b" → "a, b"; "... index 'x'" → the named columns of
 * index x. Kong keys a composite violation "a, b" with the value "va, vb".
 */
static char *unique_columns(sq_backend *b, const char *message) {
  const char *p = strstr(message, "constraint failed: ");
  if (!p) return NULL;
  p += strlen("constraint failed: ");
  if (strncmp(p, "index '", 7) == 0) {
    char *index = kdao__strdup(p + 7);
    if (!index) return NULL;
    char *end = strchr(index, '\'');
    if (end) *end = '\0';
    char *cols = index_columns(b, index);
    kdao__free(index);
    return cols;
  }
  kdao__sb cols = {0};
  while (*p) {
    const char *dot = strchr(p, '.');
    if (!dot) break;
    const char *end = strstr(dot, ", ");
    size_t n = end ? (size_t)(end - dot - 1) : strlen(dot + 1);
    if (cols.n) kdao__sb_add(&cols, ", ");
    kdao__sb_addn(&cols, dot + 1, n);
    if (!end) break;
    p = end + 2;
  }
  return kdao__sb_take(&cols);
}

static json_t *unique_fields(const char *cols, const json_t *row, const json_t *alt) {
  if (!strstr(cols, ", ")) {
    json_t *v = value_of(cols, row, alt);
    return json_pack("{s:O}", cols, v ? v : json_null());
  }
  kdao__sb joined = {0};
  char *names = kdao__strdup(cols);
  if (!names) return NULL;
  char *save = NULL;
  for (char *name = strtok_r(names, ", ", &save); name; name = strtok_r(NULL, ", ", &save)) {
    json_t *v = value_of(name, row, alt);
    char *text = json_is_string(v) ? NULL : json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
    if (joined.n) kdao__sb_add(&joined, ", ");
    kdao__sb_add(&joined, json_is_string(v) ? json_string_value(v) : text ? text : "nil");
    kdao__free(text);
  }
  kdao__free(names);
  char *value = kdao__sb_take(&joined);
  json_t *fields = value ? json_pack("{s:s}", cols, value) : NULL;
  kdao__free(value);
  return fields;
}

/* True when the parent row a foreign field points at exists. */
static bool parent_exists(sq_backend *b, const kdao__field *f, const json_t *v) {
  const kdao_schema *ps = kdao__factory_schema(b->base.factory, f->foreign_entity);
  int pf = ps ? kdao__schema_field_index(ps, f->foreign_field) : -1;
  if (pf < 0) return true; /* unknown parent: cannot be the culprit we can name */
  sqlite3_stmt *st = NULL;
  if (sq_stmt(b, ps, SQ_PARENT_EXISTS, (uint64_t)pf, 0, &st, NULL) != KDAO_OK) return true;
  bool found =
      bind_value(st, 1, fld(ps, (size_t)pf), v) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW;
  sq_done(st);
  return found;
}

/* SQLite does not say which foreign key failed: probe each parent, only on failure. */
static json_t *foreign_fields(sq_backend *b, const kdao_schema *s, const json_t *row,
                              const json_t *alt) {
  for (size_t i = 0; i < s->nfields; i++) {
    const kdao__field *f = fld(s, i);
    if (!f->foreign_entity) continue;
    json_t *v = value_of(f->name, row, alt);
    if (!v || json_is_null(v) || parent_exists(b, f, v)) continue;
    return json_pack("{s:O}", f->name, v);
  }
  return NULL;
}

/*
 * A write failed with `rc` (the statement not yet reset, so the message is still there).
 * `row` holds the values written, `alt` further values (the pk of an update).
 */
static int write_error(sq_backend *b, const kdao_schema *s, const json_t *row, const json_t *alt,
                       kdao_error **err) {
  int code = sqlite3_extended_errcode(b->db);
  /* Naming the culprit allocates: failing that, a unique or foreign error would read as db. */
  unsigned long failures = kdao__alloc_failures();
  char *message = kdao__strdup(sqlite3_errmsg(b->db));
  if (!message) return sq_nomem(err);
  json_t *fields = NULL;
  int kind = KDAO_ERR_DB;
  if (code == SQLITE_CONSTRAINT_UNIQUE || code == SQLITE_CONSTRAINT_PRIMARYKEY) {
    char *cols = unique_columns(b, message);
    fields = cols ? unique_fields(cols, row, alt) : NULL;
    kdao__free(cols);
    kind = KDAO_ERR_UNIQUE;
  } else if (code == SQLITE_CONSTRAINT_FOREIGNKEY) {
    fields = foreign_fields(b, s, row, alt);
    kind = KDAO_ERR_FOREIGN;
  }
  int result;
  if (kdao__alloc_failures() != failures) {
    result = sq_nomem(err);
  } else if (fields) {
    kdao_error *e = kdao_error_new_fields(kind, fields);
    if (e) {
      char num[16];
      snprintf(num, sizeof num, "%d", code);
      kdao__error_set_code(e, num);
    }
    result = kdao__fail(err, e);
  } else {
    result = sq_db_error(b, message, code, err);
  }
  json_decref(fields);
  kdao__free(message);
  return result;
}

static bool is_unique_failure(sq_backend *b) {
  int code = sqlite3_extended_errcode(b->db);
  return code == SQLITE_CONSTRAINT_UNIQUE || code == SQLITE_CONSTRAINT_PRIMARYKEY;
}

/* An expired row still holds its unique values until purged: purge, say if it helped. */
static bool purge_helped(sq_backend *b) {
  long long purged = 0;
  kdao_error *ignored = NULL;
  size_t n = 0;
  const kdao_schema *const *schemas = kdao__factory_schemas(b->base.factory, &n);
  sq_purge(b, schemas, n, &purged, &ignored);
  kdao_error_free(ignored);
  return purged > 0;
}

/* ---- the operations ---- */

static int check_schema(const kdao_schema *s, kdao_error **err) {
  if (s->nfields > SQ_MAX_FIELDS || s->npk == 0 || !s->table)
    return kdao__fail(err, kdao__error_fmt(KDAO_ERR_MISUSE,
                                           "sqlite backend: entity %s needs a primary key "
                                           "and at most %d fields",
                                           s->name ? s->name : "?", SQ_MAX_FIELDS));
  return KDAO_OK;
}

static int insert_once(sq_backend *b, const kdao_schema *s, const json_t *row, json_t **out,
                       bool *retry, kdao_error **err) {
  sqlite3_stmt *st = NULL;
  int kind = sq_stmt(b, s, SQ_INSERT, 0, 0, &st, err);
  if (kind) return kind;
  for (size_t i = 0; i < s->nfields; i++) {
    const kdao__field *f = fld(s, i);
    int rc = bind_opt(st, (int)i + 1, f, json_object_get(row, f->name));
    if (rc != SQLITE_OK) {
      kind = sq_bind_fail(b, rc, err);
      goto cleanup;
    }
  }
  kind = step_one(b, st, s, out, err);
  if (kind < 0) {
    if (retry && is_unique_failure(b)) {
      sq_done(st);
      st = NULL;
      if (purge_helped(b)) {
        *retry = true;
        return KDAO_OK;
      }
      /* the purge overwrote the message: re-run the insert to classify its failure */
      return insert_once(b, s, row, out, NULL, err);
    }
    kind = write_error(b, s, row, NULL, err);
  }
cleanup:
  sq_done(st);
  return kind;
}

static int sq_insert_row(sq_backend *b, const kdao_schema *s, const json_t *row, json_t **out,
                         kdao_error **err) {
  bool retry = false;
  int kind = insert_once(b, s, row, out, &retry, err);
  if (!kind && retry) kind = insert_once(b, s, row, out, NULL, err);
  return kind;
}

static int sq_insert(kdao__backend *base, const kdao_schema *s, const json_t *row, int ttl,
                     json_t **out, kdao_error **err) {
  sq_backend *b = (sq_backend *)base;
  *out = NULL;
  int kind = check_schema(s, err);
  if (kind) return kind;
  maybe_purge(b);
  /*
   * In a transaction even without a TTL: the row is read back from RETURNING after SQLite
   * has written it, and when that read fails (out of memory) the write must not stay.
   * Composite uniques are checked in it too: the write transaction excludes other writers.
   */
  if ((kind = tx_begin(b, err))) return kind;
  if (!(kind = s->nuniques ? kdao__uniques_check(base, s, row, NULL, err) : KDAO_OK) &&
      !(kind = sq_insert_row(b, s, row, out, err)) &&
      (ttl <= 0 || !(kind = ttl_set(b, s, *out, ttl, err))))
    kind = tx_commit(b, err);
  if (kind) {
    tx_rollback(b);
    json_decref(*out);
    *out = NULL;
  }
  return kind;
}

static int sq_insert_many(kdao__backend *base, const kdao_schema *s, const json_t *rows,
                          json_t **out, kdao_error **err) {
  sq_backend *b = (sq_backend *)base;
  *out = NULL;
  int kind = check_schema(s, err);
  if (kind) return kind;
  json_t *stored = json_array();
  if (!stored) return sq_nomem(err);
  maybe_purge(b);
  if ((kind = tx_begin(b, err))) goto cleanup;
  size_t i;
  json_t *row;
  json_array_foreach(rows, i, row) {
    json_t *one = NULL;
    if ((kind = kdao__uniques_check(base, s, row, NULL, err)) ||
        (kind = sq_insert_row(b, s, row, &one, err)))
      break;
    if (json_array_append_new(stored, one) != 0) {
      kind = sq_nomem(err);
      break;
    }
  }
  kind = kind ? kind : tx_commit(b, err);
  if (kind) tx_rollback(b);
cleanup:
  if (kind)
    json_decref(stored);
  else
    *out = stored;
  return kind;
}

static int sq_find(kdao__backend *base, const kdao_schema *s, const json_t *pk, json_t **out,
                   kdao_error **err) {
  sq_backend *b = (sq_backend *)base;
  *out = NULL;
  sqlite3_stmt *st = NULL;
  int kind = check_schema(s, err);
  if (kind || (kind = sq_stmt(b, s, SQ_FIND, 0, 0, &st, err))) return kind;
  if (bind_alive(st, s, kdao__now_ms()) != SQLITE_OK)
    kind = sq_fail(b, err);
  else if (!(kind = bind_pk(b, st, s, pk, P_FIRST, err)) &&
           (kind = step_one(b, st, s, out, err)) < 0)
    kind = sq_fail(b, err);
  sq_done(st);
  return kind;
}

/* Prepares a filtered read: binds ?1 ?2 and the filter; *param = the next parameter. */
static int read_prepare(sq_backend *b, const kdao_schema *s, sq_op op, const json_t *filter,
                        sqlite3_stmt **st, int *param, kdao_error **err) {
  uint64_t mask;
  int kind = check_schema(s, err);
  if (kind || (kind = filter_mask(s, filter, &mask, err)) ||
      (kind = sq_stmt(b, s, op, mask, 0, st, err)))
    return kind;
  *param = P_FIRST;
  if (bind_alive(*st, s, kdao__now_ms()) != SQLITE_OK) return sq_fail(b, err);
  return bind_filter(b, *st, s, mask, filter, param, err);
}

static int sq_find_all(kdao__backend *base, const kdao_schema *s, const json_t *filter,
                       json_t **out, kdao_error **err) {
  sq_backend *b = (sq_backend *)base;
  *out = NULL;
  sqlite3_stmt *st = NULL;
  int param;
  int kind = read_prepare(b, s, SQ_FIND_ALL, filter, &st, &param, err);
  json_t *rows = kind ? NULL : json_array();
  if (!kind && !rows) kind = sq_nomem(err);
  bool more = false;
  if (!kind) kind = step_rows(b, st, s, 0, rows, &more, err);
  sq_done(st);
  if (kind)
    json_decref(rows);
  else
    *out = rows;
  return kind;
}

/*
 * Binds the key values of a page position. The values are bound without a copy, so *keys
 * must outlive the statement's steps: the caller releases it after the reset.
 */
static int bind_keyset(sq_backend *b, sqlite3_stmt *st, const kdao_schema *s,
                       const unsigned char *after, size_t after_len, int *param, json_t **keys,
                       kdao_error **err) {
  unsigned long failures = kdao__alloc_failures();
  *keys = kdao__keyset_decode(after, after_len, s->npk);
  if (kdao__alloc_failures() != failures) return sq_nomem(err); /* a truncated parse, maybe */
  if (!*keys) return kdao__fail(err, kdao__invalid_offset());
  for (size_t i = 0; i < s->npk; i++) {
    int rc = bind_value(st, (*param)++, fld(s, s->pk[i]), json_array_get(*keys, i));
    if (rc != SQLITE_OK) return sq_bind_fail(b, rc, err);
  }
  return KDAO_OK;
}

/*
 * One page by keyset: rows after the last key of the previous page, in key order, LIMIT
 * size+1 so the extra row says whether a next page exists without a COUNT.
 */
static int sq_find_page(kdao__backend *base, const kdao_schema *s, const json_t *filter,
                        const unsigned char *after, size_t after_len, size_t size, json_t **out,
                        unsigned char **next, size_t *next_len, kdao_error **err) {
  sq_backend *b = (sq_backend *)base;
  *out = NULL;
  *next = NULL;
  *next_len = 0;
  if (size == 0) size = 100;
  sqlite3_stmt *st = NULL;
  int param;
  json_t *rows = NULL, *keys = NULL;
  int kind = read_prepare(b, s, after ? SQ_PAGE_NEXT : SQ_PAGE_FIRST, filter, &st, &param, err);
  if (!kind && after) kind = bind_keyset(b, st, s, after, after_len, &param, &keys, err);
  if (!kind && sqlite3_bind_int64(st, param, (sqlite3_int64)size + 1) != SQLITE_OK)
    kind = sq_fail(b, err);
  if (!kind && !(rows = json_array())) kind = sq_nomem(err);
  bool more = false;
  if (!kind) kind = step_rows(b, st, s, size, rows, &more, err);
  sq_done(st);
  json_decref(keys);
  char *pos = NULL;
  if (!kind && more && !(pos = kdao__keyset_encode(s, json_array_get(rows, size - 1))))
    kind = sq_nomem(err);
  if (pos) {
    *next = (unsigned char *)pos;
    *next_len = strlen(pos);
  }
  if (kind)
    json_decref(rows);
  else
    *out = rows;
  return kind;
}

static int sq_count(kdao__backend *base, const kdao_schema *s, const json_t *filter, long long *out,
                    kdao_error **err) {
  sq_backend *b = (sq_backend *)base;
  *out = 0;
  sqlite3_stmt *st = NULL;
  int param;
  int kind = read_prepare(b, s, SQ_COUNT, filter, &st, &param, err);
  if (!kind) {
    if (sqlite3_step(st) == SQLITE_ROW)
      *out = sqlite3_column_int64(st, 0);
    else
      kind = sq_fail(b, err);
  }
  sq_done(st);
  return kind;
}

/* SET fields (values minus the key: the row is addressed by it) and NULL fields. */
static int update_masks(const kdao_schema *s, const json_t *values, const json_t *nulls,
                        uint64_t *set, uint64_t *null_mask, kdao_error **err) {
  int kind = filter_mask(s, values, set, err);
  if (kind) return kind;
  *set &= ~kdao__sql_key_mask(s);
  *null_mask = 0;
  size_t i;
  json_t *name;
  json_array_foreach(nulls, i, name) {
    int f = json_is_string(name) ? kdao__schema_field_index(s, json_string_value(name)) : -1;
    if (f < 0)
      return kdao__fail(err, kdao__error_fmt(KDAO_ERR_MISUSE,
                                             "update: nulls[%zu] names no "
                                             "field of %s",
                                             i, s->name ? s->name : s->table));
    *null_mask |= 1ull << f;
  }
  *null_mask &= ~(*set | kdao__sql_key_mask(s));
  return KDAO_OK;
}

static int update_once(sq_backend *b, const kdao_schema *s, const json_t *pk, const json_t *values,
                       uint64_t set, uint64_t nulls, json_t **out, bool *retry, kdao_error **err) {
  sqlite3_stmt *st = NULL;
  int kind = sq_stmt(b, s, SQ_UPDATE, set, nulls, &st, err);
  if (kind) return kind;
  int param = P_FIRST;
  if (bind_alive(st, s, kdao__now_ms()) != SQLITE_OK) {
    kind = sq_fail(b, err);
    goto cleanup;
  }
  if ((kind = bind_filter(b, st, s, set, values, &param, err)) ||
      (kind = bind_pk(b, st, s, pk, param, err)))
    goto cleanup;
  kind = step_one(b, st, s, out, err);
  if (kind < 0) {
    if (retry && is_unique_failure(b)) {
      sq_done(st);
      if (purge_helped(b)) {
        *retry = true;
        return KDAO_OK;
      }
      return update_once(b, s, pk, values, set, nulls, out, NULL, err);
    }
    kind = write_error(b, s, values, pk, err);
  }
cleanup:
  sq_done(st);
  return kind;
}

static int update_row(sq_backend *b, const kdao_schema *s, const json_t *pk, const json_t *values,
                      uint64_t set, uint64_t nulls, json_t **out, kdao_error **err) {
  bool retry = false;
  int kind = update_once(b, s, pk, values, set, nulls, out, &retry, err);
  if (!kind && retry) kind = update_once(b, s, pk, values, set, nulls, out, NULL, err);
  return kind;
}

/*
 * An update changing a member of a composite unique: the row as it will be, checked against
 * the others inside the caller's write transaction. No stored row: nothing to check (the
 * update then finds none either).
 */
static int check_update(sq_backend *b, const kdao_schema *s, const json_t *pk, const json_t *values,
                        const json_t *nulls, kdao_error **err) {
  json_t *old = NULL;
  int kind = b->base.ops->find(&b->base, s, pk, &old, err);
  if (kind || !old) return kind;
  json_t *merged = kdao__row_merge(old, values, nulls);
  kind = merged ? kdao__uniques_check(&b->base, s, merged, pk, err) : sq_nomem(err);
  json_decref(merged);
  json_decref(old);
  return kind;
}

static int sq_update(kdao__backend *base, const kdao_schema *s, const json_t *pk,
                     const json_t *values, const json_t *nulls, int ttl, json_t **out,
                     kdao_error **err) {
  sq_backend *b = (sq_backend *)base;
  *out = NULL;
  uint64_t set, null_mask;
  int kind = check_schema(s, err);
  if (kind || (kind = update_masks(s, values, nulls, &set, &null_mask, err))) return kind;
  maybe_purge(b);
  /* In a transaction whatever the TTL, for the read-back (see sq_insert), and for the
   * composite uniques an update claims. */
  bool claims = s->nuniques && kdao__unique_touched(s, values, nulls);
  if ((kind = tx_begin(b, err))) return kind;
  if (claims) kind = check_update(b, s, pk, values, nulls, err);
  if (!kind) kind = update_row(b, s, pk, values, set, null_mask, out, err);
  if (!kind && *out && ttl > 0) kind = ttl_set(b, s, *out, ttl, err);
  kind = kind ? kind : tx_commit(b, err);
  if (kind) {
    tx_rollback(b);
    json_decref(*out);
    *out = NULL;
  }
  return kind;
}

static int sq_delete(kdao__backend *base, const kdao_schema *s, const json_t *pk, json_t **out,
                     kdao_error **err) {
  sq_backend *b = (sq_backend *)base;
  *out = NULL;
  sqlite3_stmt *st = NULL;
  int kind = check_schema(s, err);
  if (kind) return kind;
  maybe_purge(b);
  /* In a transaction, for the read-back (see sq_insert). */
  if ((kind = tx_begin(b, err))) return kind;
  if ((kind = sq_stmt(b, s, SQ_DELETE, 0, 0, &st, err))) {
    tx_rollback(b);
    return kind;
  }
  if (bind_alive(st, s, kdao__now_ms()) != SQLITE_OK)
    kind = sq_fail(b, err);
  else if (!(kind = bind_pk(b, st, s, pk, P_FIRST, err)) &&
           (kind = step_one(b, st, s, out, err)) < 0)
    kind = write_error(b, s, pk, NULL, err);
  sq_done(st);
  kind = kind ? kind : tx_commit(b, err);
  if (kind) {
    tx_rollback(b);
    json_decref(*out);
    *out = NULL;
  }
  return kind;
}

static int run_simple(sq_backend *b, const kdao_schema *s, sq_op op, kdao_error **err) {
  sqlite3_stmt *st = NULL;
  int kind = sq_stmt(b, s, op, 0, 0, &st, err);
  if (kind) return kind;
  if (sqlite3_bind_parameter_count(st) >= P_TABLE &&
      sqlite3_bind_text(st, P_TABLE, s->table, -1, SQLITE_STATIC) != SQLITE_OK)
    kind = sq_fail(b, err);
  else if (sqlite3_step(st) != SQLITE_DONE)
    kind = sq_fail(b, err);
  sq_done(st);
  return kind;
}

/* Kong's PostgreSQL truncate cascades; here the foreign keys do. */
static int sq_truncate(kdao__backend *base, const kdao_schema *s, kdao_error **err) {
  sq_backend *b = (sq_backend *)base;
  int kind = check_schema(s, err);
  if (kind || (kind = tx_begin(b, err))) return kind;
  if (!(kind = run_simple(b, s, SQ_TRUNCATE, err)) && !(kind = run_simple(b, s, SQ_TTL_CLEAR, err)))
    kind = tx_commit(b, err);
  if (kind) tx_rollback(b);
  return kind;
}

static int sq_begin(kdao__backend *base, kdao_error **err) {
  return tx_begin((sq_backend *)base, err);
}

static int sq_commit(kdao__backend *base, kdao_error **err) {
  return tx_commit((sq_backend *)base, err);
}

static int sq_rollback(kdao__backend *base) {
  tx_rollback((sq_backend *)base);
  return KDAO_OK;
}

/* ---- migrations ---- */

#define SQ_MIGRATIONS_DDL                                                      \
  "CREATE TABLE IF NOT EXISTS \"schema_migrations\" (\"id\" TEXT PRIMARY KEY," \
  " \"migrations\" TEXT /* JSON array of names, in the order run */)"

static int sq_migrations_current(kdao__backend *base, json_t **out, kdao_error **err) {
  sq_backend *b = (sq_backend *)base;
  *out = NULL;
  json_t *all = json_object();
  if (!all) return sq_nomem(err);
  if (!table_exists(b, "schema_migrations")) {
    *out = all;
    return KDAO_OK;
  }
  sqlite3_stmt *st = NULL;
  int kind = KDAO_OK, rc;
  if (sqlite3_prepare_v2(b->db, "SELECT \"id\", \"migrations\" FROM \"schema_migrations\"", -1, &st,
                         NULL) != SQLITE_OK)
    kind = sq_fail(b, err);
  while (!kind && (rc = sqlite3_step(st)) == SQLITE_ROW) {
    const char *text = (const char *)sqlite3_column_text(st, 1);
    json_t *names = text ? json_loads(text, 0, NULL) : json_array();
    if (!json_is_array(names)) {
      json_decref(names);
      kind = kdao__fail(err, kdao__error_fmt(KDAO_ERR_DB,
                                             "schema_migrations: migrations of %s is not a "
                                             "JSON array",
                                             (const char *)sqlite3_column_text(st, 0)));
    } else if (json_object_set_new(all, (const char *)sqlite3_column_text(st, 0), names)) {
      kind = sq_nomem(err);
    }
  }
  if (!kind && rc != SQLITE_DONE) kind = sq_fail(b, err);
  sqlite3_finalize(st);
  if (kind)
    json_decref(all);
  else
    *out = all;
  return kind;
}

static int record_migration(sq_backend *b, const char *identifier, const char *name,
                            kdao_error **err) {
  sqlite3_stmt *st = NULL;
  if (sqlite3_prepare_v2(b->db,
                         "INSERT INTO \"schema_migrations\" (\"id\", \"migrations\")"
                         " VALUES (?1, json_array(?2)) ON CONFLICT (\"id\") DO UPDATE"
                         " SET \"migrations\" = json_insert(\"migrations\", '$[#]', ?2)",
                         -1, &st, NULL) != SQLITE_OK)
    return sq_fail(b, err);
  sqlite3_bind_text(st, 1, identifier, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
  int kind = sqlite3_step(st) == SQLITE_DONE ? KDAO_OK : sq_fail(b, err);
  sqlite3_finalize(st);
  return kind;
}

static int exec_sql(sq_backend *b, const char *sql, kdao_error **err) {
  char *message = NULL;
  int rc = sqlite3_exec(b->db, sql, NULL, NULL, &message);
  if (rc == SQLITE_OK) return KDAO_OK;
  int kind = sq_db_error(b, message, sqlite3_extended_errcode(b->db), err);
  sqlite3_free(message);
  return kind;
}

/* The migration and its record commit together or not at all. */
static int sq_migration_apply(kdao__backend *base, const char *identifier, const char *name,
                              const char *up, kdao_error **err) {
  sq_backend *b = (sq_backend *)base;
  int kind = tx_begin(b, err);
  if (kind) return kind;
  if (!(kind = exec_sql(b, SQ_MIGRATIONS_DDL, err)) && !(kind = exec_sql(b, up, err)) &&
      !(kind = record_migration(b, identifier, name, err)))
    kind = tx_commit(b, err);
  if (kind) tx_rollback(b);
  return kind;
}

/* ---- kdao's own secrets ---- */

#define SQ_SECRETS "kdao_secrets"

/* The stored value of `name` into *out (NULL when none, or when the table is missing). */
static int secret_read(sq_backend *b, const char *name, char **out, kdao_error **err) {
  *out = NULL;
  if (!table_exists(b, SQ_SECRETS)) return KDAO_OK;
  sqlite3_stmt *st = NULL;
  if (sqlite3_prepare_v2(b->db, "SELECT \"value\" FROM \"" SQ_SECRETS "\" WHERE \"name\" = ?1", -1,
                         &st, NULL) != SQLITE_OK)
    return sq_fail(b, err);
  sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
  int kind = KDAO_OK, rc = sqlite3_step(st);
  if (rc == SQLITE_ROW) {
    const char *v = (const char *)sqlite3_column_text(st, 0);
    if (v && !(*out = kdao__strdup(v))) kind = sq_nomem(err);
  } else if (rc != SQLITE_DONE) {
    kind = sq_fail(b, err);
  }
  sqlite3_finalize(st);
  return kind;
}

/* Writers are serialised by the database lock: INSERT OR IGNORE keeps the first value. */
static int sq_secret(kdao__backend *base, const char *name, const char *candidate, char **out,
                     kdao_error **err) {
  sq_backend *b = (sq_backend *)base;
  int kind = secret_read(b, name, out, err);
  if (kind || *out) return kind;
  kind = exec_sql(b,
                  "CREATE TABLE IF NOT EXISTS \"" SQ_SECRETS "\" (\"name\" TEXT PRIMARY KEY,"
                  " \"value\" TEXT NOT NULL)",
                  err);
  sqlite3_stmt *st = NULL;
  if (!kind && sqlite3_prepare_v2(b->db,
                                  "INSERT OR IGNORE INTO \"" SQ_SECRETS "\" (\"name\", \"value\")"
                                  " VALUES (?1, ?2)",
                                  -1, &st, NULL) != SQLITE_OK)
    kind = sq_fail(b, err);
  if (!kind) {
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, candidate, -1, SQLITE_STATIC);
    if (sqlite3_step(st) != SQLITE_DONE) kind = sq_fail(b, err);
  }
  sqlite3_finalize(st);
  if (!kind) kind = secret_read(b, name, out, err);
  if (!kind && !*out)
    kind = kdao__fail(err, kdao_error_new(KDAO_ERR_DB, SQ_SECRETS ": value not stored"));
  return kind;
}

/* CREATE TABLE for any schema (sql.h): plugins without migrations. */
static char *sq_schema_ddl(kdao__backend *base, const kdao_schema *s) {
  if (!s || !s->table || s->npk == 0) return NULL;
  kdao__sql q = {.d = &sq_dialect, .s = s};
  kdao__sql_create_table(&q, base->factory);
  return kdao__sql_take(&q);
}

static int drop_table(sq_backend *b, const char *table, kdao_error **err) {
  kdao__sb q = {0};
  kdao__sb_add(&q, "DROP TABLE IF EXISTS ");
  sb_ident(&q, table);
  char *sql = kdao__sb_take(&q);
  if (!sql) return sq_nomem(err);
  int kind = exec_sql(b, sql, err);
  kdao__free(sql);
  return kind;
}

/* Foreign keys off while dropping: parents and children go in any order. */
static int sq_drop_schema(kdao__backend *base, const char *const *tables, size_t n,
                          kdao_error **err) {
  sq_backend *b = (sq_backend *)base;
  cache_clear(b); /* prepared statements would hold the tables (and the trigger memo) */
  int kind = exec_sql(b, "PRAGMA foreign_keys = OFF", err);
  if (kind) return kind;
  if (!(kind = tx_begin(b, err))) {
    for (size_t i = 0; i < n && !kind; i++) kind = drop_table(b, tables[i], err);
    if (!kind && !(kind = drop_table(b, SQ_TTLS, err)) &&
        !(kind = drop_table(b, SQ_SECRETS, err)) &&
        !(kind = drop_table(b, "schema_migrations", err)))
      kind = tx_commit(b, err);
    if (kind) tx_rollback(b);
  }
  kdao_error *ignored = NULL;
  exec_sql(b, "PRAGMA foreign_keys = ON", &ignored);
  kdao_error_free(ignored);
  return kind;
}

static int sq_purge_expired(kdao__backend *base, const kdao_schema *const *schemas, size_t n,
                            long long *purged, kdao_error **err) {
  long long count = 0;
  int kind = sq_purge((sq_backend *)base, schemas, n, &count, err);
  if (purged) *purged = kind ? 0 : count;
  return kind;
}

/* ---- connection ---- */

static int sq_setup(sq_backend *b, kdao_error **err) {
  sqlite3_busy_timeout(b->db, SQ_BUSY_TIMEOUT_MS);
  sqlite3_extended_result_codes(b->db, 1);
  /* journal_mode answers "memory" for :memory: databases: not an error. */
  int kind = exec_sql(b, "PRAGMA journal_mode = WAL", err);
  if (!kind) kind = exec_sql(b, "PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON", err);
  return kind;
}

static void sq_close(kdao__backend *base) {
  sq_backend *b = (sq_backend *)base;
  if (!b) return;
  cache_clear(b);
  sqlite3_close_v2(b->db);
  kdao__free(b->path);
  kdao__free(b);
}

extern const kdao__backend_ops kdao__sqlite_ops; /* defined at the end */

/*
 * A database on a read-only file system (a read-only container root, a volume mounted ro)
 * cannot get the -shm file WAL mode reads through, so even reads would fail to open it.
 * Nothing can write the file through such a mount, which is what SQLite's immutable mode
 * assumes: opened that way reads work and writes fail with SQLITE_READONLY. Immutable mode
 * ignores the WAL, so only a database whose WAL is absent or empty (checkpointed by the last
 * clean close) qualifies; with a WAL and its -shm left behind SQLite reads both read-only.
 */
static bool sq_open_immutable(const char *path) {
  struct statvfs vfs;
  if (strcmp(path, ":memory:") == 0 || statvfs(path, &vfs) != 0 || !(vfs.f_flag & ST_RDONLY))
    return false;
  char *wal = kdao__asprintf("%s-wal", path);
  struct stat st;
  bool no_wal = wal && (stat(wal, &st) != 0 || st.st_size == 0);
  kdao__free(wal);
  return no_wal;
}

/*
 * "file:<path>?immutable=1", the path's URI-special characters percent-encoded; an absolute
 * path gets an empty authority ("file:///..."), so that one starting with "//" is no host.
 */
static char *sq_immutable_uri(const char *path) {
  kdao__sb u = {0};
  kdao__sb_add(&u, path[0] == '/' ? "file://" : "file:");
  for (const char *p = path; *p; p++) {
    if (*p == '%' || *p == '?' || *p == '#')
      kdao__sb_addf(&u, "%%%02X", (unsigned char)*p);
    else
      kdao__sb_addn(&u, p, 1);
  }
  kdao__sb_add(&u, "?immutable=1");
  return kdao__sb_take(&u);
}

static int sq_open(kdao_factory *f, const kdao_config *cfg, kdao__backend **out, kdao_error **err) {
  *out = NULL;
  sq_backend *b = kdao__calloc(1, sizeof *b);
  if (!b) return sq_nomem(err);
  b->base.ops = &kdao__sqlite_ops;
  b->base.factory = f;
  const char *path = cfg ? kdao__config_str(cfg, "sqlite_path") : NULL;
  b->path = kdao__strdup(path && *path ? path : SQ_DEFAULT_PATH);
  if (!b->path) {
    kdao__free(b);
    return sq_nomem(err);
  }
  char *ro_uri = NULL;
  if (sq_open_immutable(b->path) && !(ro_uri = sq_immutable_uri(b->path))) {
    sq_close(&b->base);
    return sq_nomem(err);
  }
  int rc = ro_uri ? sqlite3_open_v2(ro_uri, &b->db,
                                    SQLITE_OPEN_READONLY | SQLITE_OPEN_URI | SQLITE_OPEN_NOMUTEX |
                                        SQLITE_OPEN_EXRESCODE,
                                    NULL)
                  : sqlite3_open_v2(b->path, &b->db,
                                    SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
                                        SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_EXRESCODE,
                                    NULL);
  kdao__free(ro_uri);
  int kind;
  if (rc != SQLITE_OK && b->db) {
    char *message = kdao__asprintf("%s: %s", b->path, sqlite3_errmsg(b->db));
    kind = message ? sq_db_error(b, message, sqlite3_extended_errcode(b->db), err) : sq_nomem(err);
    kdao__free(message);
  } else if (rc != SQLITE_OK) {
    kind = sq_nomem(err);
  } else {
    kind = sq_setup(b, err);
  }
  if (kind) {
    sq_close(&b->base);
    return kind;
  }
  *out = &b->base;
  return KDAO_OK;
}

static json_t *sq_infos(kdao__backend *base) {
  sq_backend *b = (sq_backend *)base;
  return json_pack("{s:s, s:s}", "desc", "file", "name", b->path);
}

/* ---- configuration ---- */

static const kdao__conf_option sq_options[] = {
    KDAO__OPT_STR("sqlite_path", "kdao.db", "SQLite database file (`:memory:` for a private one)."),
    KDAO__OPT_END,
};

/* Core and built-in plugin migrations (src/migrations/sqlite.c). */
extern const kdao__migration_set kdao__sqlite_migrations[];

const kdao__backend_ops kdao__sqlite_ops = {
    .version = KDAO__BACKEND_OPS_VERSION,
    .name = "sqlite",
    .caps = KDAO__CAP_NATIVE_CASCADE | KDAO__CAP_NATIVE_FOREIGN | KDAO__CAP_TRANSACTIONS,
    .migrations = kdao__sqlite_migrations,
    .options = sq_options,
    .open = sq_open,
    .close = sq_close,
    .infos = sq_infos,
    .insert = sq_insert,
    .insert_many = sq_insert_many,
    .find = sq_find,
    .find_all = sq_find_all,
    .find_page = sq_find_page,
    .count = sq_count,
    .update = sq_update,
    .delete = sq_delete,
    .truncate = sq_truncate,
    .begin = sq_begin,
    .commit = sq_commit,
    .rollback = sq_rollback,
    .migrations_current = sq_migrations_current,
    .migration_apply = sq_migration_apply,
    .schema_ddl = sq_schema_ddl,
    .drop_schema = sq_drop_schema,
    .purge_expired = sq_purge_expired,
    .secret = sq_secret,
};
