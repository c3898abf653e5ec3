/*
 * backends/postgres.c — the PostgreSQL backend, over libpq, on Kong 0.10.4's tables.
 *
 * Statements. Every statement is generated once per (table, operation, shape) from the
 * schema — the shape being which columns a row or filter carries, as bit masks over the
 * schema's sorted fields — then prepared once per connection and reused. Values only ever
 * travel as text-format parameters; identifiers come from schemas (which admit
 * [a-z_][a-z0-9_]* only) and are double-quoted anyway.
 *
 * Storage, as Kong 0.10.4 left it: uuid columns for ids, text holding JSON for arrays and
 * tables (json for plugins.config: the server infers each parameter's type from its column,
 * so one code path serves both), `timestamp without time zone` holding UTC for timestamps.
 * Timestamps are written as to_timestamp(ms / 1000) AT TIME ZONE 'utc' (milliseconds kept:
 * Kong's integer division dropped them) and read as whole milliseconds since the epoch.
 *
 * TTL. Kong's `ttls` table records expiries for entities with a one-column primary key.
 * Every read carries a NOT EXISTS probe of that table (an index lookup on its primary key),
 * so an expired row is invisible from the instant it expires — not only once purged; writes
 * that set a TTL upsert the ttls row in the same statement as the row itself (a data-
 * modifying WITH), and deletes remove it likewise.
 *
 * Paging is keyset: ORDER BY the primary key, WHERE (pk...) > (last page's key), LIMIT
 * size + 1 to learn whether another page follows without a COUNT.
 *
 * Connection loss. Each statement runs through pg_exec(), which re-establishes a lost
 * connection (PQreset) before running and, once, after a failure that left the connection
 * dead, when a retry cannot apply a write twice: the statement was never sent, the server
 * said it terminated the session (SQLSTATE class 57P), or the statement only reads. Inside
 * an open transaction nothing is retried: the transaction is gone with the connection. A
 * reconnect bumps the connection generation, which lazily re-prepares every statement.
 *
 * Constraint failures are classified by SQLSTATE (23505 unique, 23503 foreign) and the
 * failing column is read from the "(column)=(value)" part of the DETAIL field — never from
 * the translated primary message.
 */
#include <libpq-fe.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "strbuf.h"

/* ---- state ---- */

enum pg_op { OP_FIND, OP_FIND_ALL, OP_COUNT, OP_PAGE, OP_INSERT, OP_UPDATE, OP_DELETE };

/* Statement shape flags. */
#define SHAPE_TTL 0x1u   /* insert/update: also set an expiry */
#define SHAPE_AFTER 0x2u /* page: starts after a keyset position */

/* One generated statement; `gen` is the connection generation it was prepared on. */
typedef struct pg_stmt {
  int op;
  uint64_t m1, m2;
  unsigned shape;
  char *sql;
  char name[24];
  unsigned gen;
} pg_stmt;

/* What the backend keeps for one entity table: its statements, built once per shape. */
typedef struct pg_table {
  const kdao_schema *s;
  bool has_ttl; /* one-column primary key: Kong's ttls table can address its rows */
  pg_stmt *stmts;
  size_t nstmts, cap;
} pg_table;

enum pg_tx { TX_NONE, TX_PENDING, TX_OPEN, TX_BROKEN };

typedef struct pg_backend {
  kdao__backend base;
  PGconn *conn;
  unsigned gen;     /* bumped at every (re)connection: prepared statements are per connection */
  unsigned set_gen; /* the generation whose session settings were sent (session_setup) */
  unsigned nstmt;   /* statement names are unique for the life of the backend */
  enum pg_tx tx;    /* PENDING: begin() called, BEGIN not yet sent (sent with the first use) */
  int tx_depth;
  bool tx_doomed; /* an inner rollback: the outermost commit must roll back */
  char *where;    /* "host:port" for messages */
  char *database;
  pg_table **tables;
  size_t ntables;
} pg_backend;

#define PG_MAX_FIELDS 64
#define PG_MAX_PARAMS (2 * PG_MAX_FIELDS + 4)

/* Text-format parameters of one statement; numbers are formatted into `num`. */
typedef struct pg_params {
  int n;
  const char *v[PG_MAX_PARAMS];
  char *owned[PG_MAX_PARAMS];
  int nowned;
  char num[PG_MAX_PARAMS][32];
} pg_params;

/*
 * An empty parameter list. Only the counts need a value: zeroing the whole struct (some
 * 6 KB of slots and number buffers) cost more per statement than building the parameters.
 */
#define PG_PARAMS_INIT(p) ((p).n = 0, (p).nowned = 0)

static void params_clear(pg_params *p) {
  for (int i = 0; i < p->nowned; i++) kdao__free(p->owned[i]);
  p->n = 0;
  p->nowned = 0;
}

/* ---- errors ---- */

static int fail(kdao_error **err, kdao_error *e) { return kdao__fail(err, e); }

static int oom(kdao_error **err) {
  return fail(err, kdao_error_new(KDAO_ERR_NOMEM, "out of memory"));
}

/* libpq messages end in newlines and wrap with "\n\t": one line reads better in an error. */
static char *one_line(const char *msg) {
  char *s = kdao__strdup(msg ? msg : "unknown error");
  if (s == NULL) return NULL;
  char *w = s;
  for (const char *r = s; *r; r++) {
    if (*r == '\n' || *r == '\t' || *r == '\r') {
      if (w > s && w[-1] != ' ') *w++ = ' ';
    } else {
      *w++ = *r;
    }
  }
  while (w > s && w[-1] == ' ') w--;
  *w = '\0';
  return s;
}

/* A server that cannot be reached is a condition the caller may wait out: it says so. */
static kdao_error *unavailable(kdao_error *e) {
  kdao__error_set_code(e, KDAO_ERR_CODE_UNAVAILABLE);
  return e;
}

static kdao_error *conn_error(pg_backend *b, const char *what) {
  char *reason = one_line(PQerrorMessage(b->conn));
  kdao_error *e =
      kdao__error_fmt(KDAO_ERR_DB, "%s %s: %s", what, b->where, reason ? reason : "out of memory");
  kdao__free(reason);
  return unavailable(e);
}

static kdao_error *tx_lost(const pg_backend *b) {
  return unavailable(
      kdao__error_fmt(KDAO_ERR_DB, "transaction aborted: lost the connection to %s", b->where));
}

/*
 * The portable code of a SQLSTATE for the conditions kdao.h names, else the SQLSTATE:
 * connection exceptions (08) and the server going away or not yet up (57P01-57P03), a full
 * disk (53100), a read-only transaction (25006: a standby, default_transaction_read_only).
 */
static const char *state_code(const char *state) {
  if (strncmp(state, "08", 2) == 0 || strcmp(state, "57P01") == 0 || strcmp(state, "57P02") == 0 ||
      strcmp(state, "57P03") == 0)
    return KDAO_ERR_CODE_UNAVAILABLE;
  if (strcmp(state, "53100") == 0) return KDAO_ERR_CODE_FULL;
  if (strcmp(state, "25006") == 0) return KDAO_ERR_CODE_READ_ONLY;
  return state;
}

/* Strips the double quotes PostgreSQL puts around identifiers that need them. */
static char *unquote_ident(const char *s, size_t len) {
  if (len >= 2 && s[0] == '"' && s[len - 1] == '"') {
    s++;
    len -= 2;
  }
  return kdao__strndup(s, len);
}

/*
 * Kong's field map for a unique/foreign failure from DETAIL's "(cols)=(vals)" group. The
 * value is the one kdao sent for that column when it can tell (typed, exactly as given),
 * else the server's text. Composite keys keep Kong's "a, b" spelling.
 */
static kdao_error *constraint_error(int kind, const char *detail, const json_t *row) {
  const char *open = detail ? strchr(detail, '(') : NULL;
  const char *sep = open ? strstr(open, ")=(") : NULL;
  const char *close = sep ? strrchr(sep + 3, ')') : NULL;
  if (close == NULL) return NULL;
  char *col = unquote_ident(open + 1, (size_t)(sep - open - 1));
  json_t *fields = json_object();
  kdao_error *e = NULL;
  if (col && fields) {
    json_t *v = strstr(col, ", ") ? NULL : json_object_get(row, col);
    json_t *val = v ? json_incref(v) : json_stringn(sep + 3, (size_t)(close - sep - 3));
    if (val && json_object_set_new(fields, col, val) == 0) e = kdao_error_new_fields(kind, fields);
  }
  kdao__free(col);
  json_decref(fields);
  return e;
}

/* The error of a failed result (or of the connection when there is no result). */
static kdao_error *result_error(pg_backend *b, const PGresult *r, const json_t *row) {
  const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
  kdao_error *e = NULL;
  if (state && strcmp(state, "23505") == 0)
    e = constraint_error(KDAO_ERR_UNIQUE, PQresultErrorField(r, PG_DIAG_MESSAGE_DETAIL), row);
  else if (state && strcmp(state, "23503") == 0)
    e = constraint_error(KDAO_ERR_FOREIGN, PQresultErrorField(r, PG_DIAG_MESSAGE_DETAIL), row);
  if (e == NULL) {
    if (PQstatus(b->conn) == CONNECTION_BAD) {
      e = conn_error(b, "lost the connection to");
    } else {
      const char *msg = r ? PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY) : NULL;
      char *text = one_line(msg ? msg : PQerrorMessage(b->conn));
      e = kdao_error_new(KDAO_ERR_DB, text ? text : "out of memory");
      kdao__free(text);
    }
  }
  if (e && state && !kdao_error_code(e)) kdao__error_set_code(e, state_code(state));
  return e;
}

static bool result_ok(const PGresult *r) {
  ExecStatusType st = PQresultStatus(r);
  return r && (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK);
}

/* ---- connection ---- */

static kdao_error *pg_reconnect(pg_backend *b) {
  PQreset(b->conn);
  if (PQstatus(b->conn) != CONNECTION_OK) return conn_error(b, "could not connect to");
  b->gen++;
  return NULL;
}

/* Runs a statement without parameters or results (BEGIN, COMMIT, ...). */
static kdao_error *pg_simple(pg_backend *b, const char *sql) {
  PGresult *r = PQexec(b->conn, sql);
  kdao_error *e = result_ok(r) ? NULL : result_error(b, r, NULL);
  PQclear(r);
  return e;
}

/*
 * Session settings, sent once per connection. Generic plans: every kdao statement is
 * prepared once and addressed by key, unique field or keyset position, where a plan made
 * for the actual values is never better; but the server's heuristic keeps re-planning the
 * keyset page on every call (its generic plan, costed for an unknown LIMIT, looks dearer
 * than a custom one), which costs more than running it. Servers before 12 lack the
 * setting and keep their heuristic. A failure here is not the caller's: the statement that
 * follows reports a dead connection.
 */
static void session_setup(pg_backend *b) {
  b->set_gen = b->gen;
  if (PQserverVersion(b->conn) >= 120000)
    kdao_error_free(pg_simple(b, "SET plan_cache_mode = force_generic_plan"));
}

/*
 * Makes the connection usable: reconnects when it was lost outside a transaction, and
 * sends the BEGIN of a pending transaction. A BEGIN that fails on a connection found dead
 * only now is retried once on a fresh one: nothing ran yet.
 */
static kdao_error *pg_ready(pg_backend *b) {
  if (b->tx == TX_BROKEN) return tx_lost(b);
  kdao_error *e;
  if (PQstatus(b->conn) != CONNECTION_OK) {
    if (b->tx == TX_OPEN) {
      b->tx = TX_BROKEN;
      return conn_error(b, "lost the connection to");
    }
    if ((e = pg_reconnect(b))) return e;
  }
  if (b->set_gen != b->gen) session_setup(b);
  if (b->tx != TX_PENDING) return NULL;
  e = pg_simple(b, "BEGIN");
  if (e && PQstatus(b->conn) == CONNECTION_BAD) {
    kdao_error_free(e);
    if ((e = pg_reconnect(b)) == NULL) e = pg_simple(b, "BEGIN");
  }
  if (e == NULL) b->tx = TX_OPEN;
  return e;
}

/* Reads every result of the statement just sent; keeps the first error, else the first. */
static PGresult *pg_collect(PGconn *conn) {
  PGresult *keep = NULL, *r;
  while ((r = PQgetResult(conn)) != NULL) {
    if (keep == NULL || (result_ok(keep) && !result_ok(r))) {
      PQclear(keep);
      keep = r;
    } else {
      PQclear(r);
    }
  }
  return keep;
}

/*
 * May a failed statement run again on a new connection? Only outside a transaction, only
 * when the connection died, and only when a second run cannot apply a write twice.
 */
static bool pg_may_retry(const pg_backend *b, const PGresult *r, bool sent, bool idempotent) {
  if (b->tx == TX_OPEN || b->tx == TX_BROKEN || PQstatus(b->conn) != CONNECTION_BAD) return false;
  if (!sent || idempotent) return true;
  const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
  return state && strncmp(state, "57P", 3) == 0; /* the server ended the session first */
}

/* Prepares `st` on the current connection unless it already is. */
static PGresult *pg_prepare(pg_backend *b, pg_stmt *st) {
  if (st->gen == b->gen) return NULL;
  PGresult *r = PQprepare(b->conn, st->name, st->sql, 0, NULL);
  if (result_ok(r)) {
    st->gen = b->gen;
    PQclear(r);
    return NULL;
  }
  return r ? r : PQmakeEmptyPGresult(b->conn, PGRES_FATAL_ERROR);
}

/*
 * Runs prepared statement `st` (or, when NULL, the one-off text `sql`) with parameters
 * `p`. *out = the result (caller PQclear()s). `row` names the values for constraint errors.
 */
static int pg_exec(pg_backend *b, pg_stmt *st, const char *sql, const pg_params *p, bool idempotent,
                   const json_t *row, PGresult **out, kdao_error **err) {
  *out = NULL;
  for (int attempt = 0;; attempt++) {
    kdao_error *e = pg_ready(b);
    if (e) return fail(err, e);
    bool sent = false;
    PGresult *r = st ? pg_prepare(b, st) : NULL;
    if (r == NULL) {
      int ok = st ? PQsendQueryPrepared(b->conn, st->name, p->n, p->v, NULL, NULL, 0)
                  : PQsendQueryParams(b->conn, sql, p->n, NULL, p->v, NULL, NULL, 0);
      if (ok) {
        sent = true;
        r = pg_collect(b->conn);
        if (result_ok(r)) {
          *out = r;
          return KDAO_OK;
        }
      }
    }
    if (attempt == 0 && pg_may_retry(b, r, sent, idempotent)) {
      PQclear(r);
      continue;
    }
    if (b->tx == TX_OPEN && PQstatus(b->conn) == CONNECTION_BAD) b->tx = TX_BROKEN;
    e = result_error(b, r, row);
    PQclear(r);
    return fail(err, e);
  }
}

/* ---- tables and statements ---- */

static void table_free(pg_table *t) {
  if (t == NULL) return;
  for (size_t i = 0; i < t->nstmts; i++) kdao__free(t->stmts[i].sql);
  kdao__free(t->stmts);
  kdao__free(t);
}

static const kdao__field *pk_field(const kdao_schema *s, size_t k) { return &s->fields[s->pk[k]]; }

static int table_get(pg_backend *b, const kdao_schema *s, pg_table **out, kdao_error **err) {
  for (size_t i = 0; i < b->ntables; i++) {
    if (b->tables[i]->s == s) {
      *out = b->tables[i];
      return KDAO_OK;
    }
  }
  if (s->nfields > PG_MAX_FIELDS)
    return fail(err,
                kdao__error_fmt(KDAO_ERR_DB, "%s: more than %d fields", s->table, PG_MAX_FIELDS));
  pg_table **grown = kdao__realloc(b->tables, (b->ntables + 1) * sizeof *grown);
  if (grown == NULL) return oom(err);
  b->tables = grown;
  if ((*out = kdao__calloc(1, sizeof **out)) == NULL) return oom(err);
  (*out)->s = s;
  (*out)->has_ttl = s->npk == 1;
  b->tables[b->ntables++] = *out;
  return KDAO_OK;
}

/* The clock of ttls.expire_at: UTC without a time zone, as Kong wrote it. */
#define PG_NOW "(now() AT TIME ZONE 'utc')"

/*
 * The ttls key of a row addressed by its primary key, from the statement's parameter $n
 * rather than from the row: an uncorrelated probe, which the planner runs once before the
 * table is even read (an InitPlan and a one-time filter) instead of joining per row. The
 * uuid cast spells the key as Kong stored it (t.id::text: lower case, hyphens) whatever
 * spelling the caller sent. NULL when the key type has no such spelling (numbers).
 */
static const char *ttl_key_cast(const kdao_schema *s) {
  if (s->npk != 1) return NULL;
  switch (pk_field(s, 0)->type) {
  case KDAO_TYPE_ID: return "::uuid::text";
  case KDAO_TYPE_STRING: return "::text";
  default: return NULL;
  }
}

/*
 * No expired ttls row for this one: `t."<pk>"::text` is the form Kong stores in
 * ttls.primary_key_value. Kong's ttls cannot address a composite key: always visible.
 */
static void pg_visible(kdao__sql *q, int key) {
  const kdao_schema *s = q->s;
  if (s->npk != 1) {
    kdao__sb_add(&q->sb, "true");
    return;
  }
  const char *cast = key ? ttl_key_cast(s) : NULL;
  kdao__sb_add(&q->sb, "NOT EXISTS (SELECT 1 FROM ttls x WHERE x.primary_key_value = ");
  if (cast) {
    kdao__sb_addf(&q->sb, "$%d%s", key, cast);
  } else {
    kdao__sql_column(q, pk_field(s, 0));
    kdao__sb_add(&q->sb, "::text");
  }
  kdao__sb_add(&q->sb, " AND x.table_name = ");
  kdao__sb_quote(&q->sb, '\'', s->table, NULL);
  kdao__sb_add(&q->sb, " AND x.expire_at <= " PG_NOW ")");
}

/* The parameter placeholder for a value of field `f`: timestamps arrive as epoch ms. */
static void pg_param(kdao__sb *q, const kdao__field *f, int n) {
  if (f && f->type == KDAO_TYPE_TIMESTAMP)
    kdao__sb_addf(q, "to_timestamp($%d::float8 / 1000) AT TIME ZONE 'utc'", n);
  else
    kdao__sb_addf(q, "$%d", n);
}

/* Timestamps are read back as whole milliseconds since the epoch. */
static void pg_read(kdao__sql *q, const kdao__field *f) {
  if (f->type != KDAO_TYPE_TIMESTAMP) {
    kdao__sql_column(q, f);
    return;
  }
  kdao__sb_add(&q->sb, "(extract(epoch from ");
  kdao__sql_column(q, f);
  kdao__sb_add(&q->sb, ") * 1000)::bigint AS ");
  kdao__sb_quote(&q->sb, '"', f->name, NULL);
}

static const char *ddl_type(kdao_type t) {
  switch (t) {
  case KDAO_TYPE_ID: return "uuid";
  case KDAO_TYPE_NUMBER: return "double precision";
  case KDAO_TYPE_BOOLEAN: return "boolean";
  case KDAO_TYPE_TIMESTAMP: return "timestamp without time zone";
  default: return "text";
  }
}

static const kdao__sql_dialect pg_dialect = {
    .alias = "t",
    .filter_op = " = ",
    .json_compare = "::text", /* plugins.config is json, which has no equality */
    .param = pg_param,
    .read = pg_read,
    .visible = pg_visible,
    .type = ddl_type,
    .timestamp_default = "(CURRENT_TIMESTAMP(3) AT TIME ZONE 'utc')",
};

/* A CTE upserting the ttls row of the row returned by CTE `r`, expiring in $n seconds. */
static void sql_ttl_upsert(kdao__sb *q, const kdao_schema *s, int n) {
  const kdao__field *pk = pk_field(s, 0);
  kdao__sb_addf(q,
                ", x AS (INSERT INTO ttls (primary_key_value, primary_uuid_value, primary_key_name,"
                " table_name, expire_at) SELECT r.\"%s\"::text, %s%s%s, '%s', '%s',"
                " " PG_NOW " + $%d::integer * interval '1 second' FROM r"
                " ON CONFLICT (primary_key_value, table_name) DO UPDATE"
                " SET expire_at = EXCLUDED.expire_at)",
                pk->name, pk->type == KDAO_TYPE_ID ? "r.\"" : "NULL::uuid",
                pk->type == KDAO_TYPE_ID ? pk->name : "", pk->type == KDAO_TYPE_ID ? "\"" : "",
                pk->name, s->table, n);
}

/* A CTE removing any ttls row left for the key of CTE `r` (Kong left them behind). */
static void sql_ttl_forget(kdao__sb *q, const kdao_schema *s) {
  kdao__sb_addf(q,
                ", x AS (DELETE FROM ttls WHERE table_name = '%s'"
                " AND primary_key_value IN (SELECT r.\"%s\"::text FROM r))",
                s->table, pk_field(s, 0)->name);
}

/* The shared shapes (sql.h), wrapped where the ttls table is written in the same statement. */
static char *sql_build(const pg_table *t, int op, uint64_t m1, uint64_t m2, unsigned shape) {
  const kdao_schema *s = t->s;
  kdao__sql q = {.d = &pg_dialect, .s = s};
  /* insert: a text key clears a stale ttls row (names get reused; uuids do not) */
  bool forget = op == OP_INSERT && t->has_ttl && pk_field(s, 0)->type != KDAO_TYPE_ID;
  bool cte = (shape & SHAPE_TTL) || forget;
  switch (op) {
  case OP_FIND: kdao__sql_select(&q, KDAO__SQL_FIND, 0, false); break;
  case OP_FIND_ALL: kdao__sql_select(&q, KDAO__SQL_ALL, m1, false); break;
  case OP_COUNT: kdao__sql_select(&q, KDAO__SQL_COUNT, m1, false); break;
  case OP_PAGE: kdao__sql_select(&q, KDAO__SQL_PAGE, m1, shape & SHAPE_AFTER); break;
  case OP_INSERT:
  case OP_UPDATE:
    if (cte) kdao__sb_add(&q.sb, "WITH r AS (");
    if (op == OP_INSERT)
      kdao__sql_insert(&q, m1);
    else
      kdao__sql_update(&q, m1, m2);
    if (!cte) break;
    kdao__sb_add(&q.sb, ")");
    if (shape & SHAPE_TTL)
      sql_ttl_upsert(&q.sb, s, ++q.n);
    else
      sql_ttl_forget(&q.sb, s);
    kdao__sb_add(&q.sb, " SELECT * FROM r");
    break;
  case OP_DELETE: {
    /*
     * An expired row is deleted too (purge would take it) but reported as not found. With a
     * one-column key the ttls row goes by a direct index lookup on the parameter, and the
     * same lookup says whether the row had expired.
     */
    const char *cast = ttl_key_cast(s);
    if (cast)
      kdao__sb_addf(&q.sb,
                    "WITH x AS (DELETE FROM ttls WHERE primary_key_value = $1%s AND table_name"
                    " = '%s' RETURNING expire_at <= " PG_NOW " AS expired) ",
                    cast, s->table);
    else
      kdao__sb_add(&q.sb, "WITH r AS (");
    kdao__sql_delete(&q, false);
    if (cast) {
      kdao__sb_add(&q.sb, ", NOT EXISTS (SELECT 1 FROM x WHERE x.expired) AS kdao_visible");
      break;
    }
    kdao__sb_add(&q.sb, ", ");
    pg_visible(&q, 0);
    kdao__sb_add(&q.sb, " AS kdao_visible)");
    if (t->has_ttl) sql_ttl_forget(&q.sb, s);
    kdao__sb_add(&q.sb, " SELECT * FROM r");
    break;
  }
  default: break;
  }
  return kdao__sql_take(&q);
}

static int stmt_get(pg_backend *b, pg_table *t, int op, uint64_t m1, uint64_t m2, unsigned shape,
                    pg_stmt **out, kdao_error **err) {
  for (size_t i = 0; i < t->nstmts; i++) {
    pg_stmt *st = &t->stmts[i];
    if (st->op == op && st->m1 == m1 && st->m2 == m2 && st->shape == shape) {
      *out = st;
      return KDAO_OK;
    }
  }
  if (t->nstmts == t->cap) {
    size_t cap = t->cap ? t->cap * 2 : 8;
    pg_stmt *g = kdao__realloc(t->stmts, cap * sizeof *g);
    if (g == NULL) return oom(err);
    t->stmts = g;
    t->cap = cap;
  }
  char *sql = sql_build(t, op, m1, m2, shape);
  if (sql == NULL) return oom(err);
  pg_stmt *st = &t->stmts[t->nstmts++];
  *st = (pg_stmt){.op = op, .m1 = m1, .m2 = m2, .shape = shape, .sql = sql, .gen = 0};
  snprintf(st->name, sizeof st->name, "kdao_%u", ++b->nstmt);
  *out = st;
  return KDAO_OK;
}

/* ---- values ---- */

/* The mask of fields `obj` holds. A key naming no field is the caller's bug. */
static int object_mask(const kdao_schema *s, const json_t *obj, uint64_t *mask, kdao_error **err) {
  *mask = 0;
  const char *k;
  json_t *v;
  json_object_foreach((json_t *)obj, k, v) {
    if (json_is_null(v)) continue;
    int i = kdao__schema_field_index(s, k);
    if (i < 0) return fail(err, kdao__error_fmt(KDAO_ERR_DB, "%s has no column '%s'", s->table, k));
    *mask |= UINT64_C(1) << i;
  }
  return KDAO_OK;
}

static int param_text(pg_params *p, char *text, kdao_error **err) {
  if (text == NULL) return oom(err);
  p->owned[p->nowned++] = text;
  p->v[p->n++] = text;
  return KDAO_OK;
}

/* Decimal text of `n` in `buf` (32 bytes), without snprintf's format parsing. */
static const char *format_integer(json_int_t n, char *buf) {
  char *p = buf + 31;
  *p = '\0';
  unsigned long long u = n < 0 ? 0ULL - (unsigned long long)n : (unsigned long long)n;
  do {
    *--p = (char)('0' + u % 10);
    u /= 10;
  } while (u);
  if (n < 0) *--p = '-';
  return p;
}

/* Appends the text form of `v` for a column of field `f`. */
static int param_add(pg_params *p, const kdao__field *f, const json_t *v, kdao_error **err) {
  if (p->n >= PG_MAX_PARAMS)
    return fail(err, kdao_error_new(KDAO_ERR_DB, "too many statement parameters"));
  char *num = p->num[p->n];
  switch (json_typeof(v)) {
  case JSON_STRING: p->v[p->n++] = json_string_value(v); return KDAO_OK;
  case JSON_TRUE:
  case JSON_FALSE: p->v[p->n++] = json_is_true(v) ? "true" : "false"; return KDAO_OK;
  case JSON_INTEGER: p->v[p->n++] = format_integer(json_integer_value(v), num); return KDAO_OK;
  case JSON_REAL:
    snprintf(num, sizeof p->num[0], "%.17g", json_real_value(v));
    p->v[p->n++] = num;
    return KDAO_OK;
  case JSON_NULL: p->v[p->n++] = NULL; return KDAO_OK;
  default: (void)f; return param_text(p, json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY), err);
  }
}

/* Appends the values of the fields in `mask`, in field order (the statement's order). */
static int params_fields(pg_params *p, const kdao_schema *s, uint64_t mask, const json_t *obj,
                         kdao_error **err) {
  for (size_t i = 0; i < s->nfields; i++) {
    if (!(mask >> i & 1)) continue;
    int rc = param_add(p, &s->fields[i], json_object_get(obj, s->fields[i].name), err);
    if (rc != KDAO_OK) return rc;
  }
  return KDAO_OK;
}

/* The primary-key values of `obj` in key order, the order of the statements' key conditions. */
static int params_key(pg_params *p, const kdao_schema *s, const json_t *obj, kdao_error **err) {
  for (size_t k = 0; k < s->npk; k++) {
    json_t *v = json_object_get(obj, pk_field(s, k)->name);
    if (v == NULL) return fail(err, kdao_error_new(KDAO_ERR_MISUSE, "Missing PRIMARY KEY field"));
    int rc = param_add(p, pk_field(s, k), v, err);
    if (rc != KDAO_OK) return rc;
  }
  return KDAO_OK;
}

static json_t *decode_number(const char *v) {
  /* The common case, a short integer (every timestamp), without strtoll's locale work. */
  const char *d = v + (*v == '-');
  size_t nd = strspn(d, "0123456789");
  if (nd > 0 && nd <= 18 && d[nd] == '\0') {
    long long n = 0;
    for (size_t i = 0; i < nd; i++) n = n * 10 + (d[i] - '0');
    return json_integer(*v == '-' ? -n : n);
  }
  char *end;
  long long n = strtoll(v, &end, 10);
  if (*end == '\0' && end != v) return json_integer(n);
  return json_real(strtod(v, NULL));
}

/*
 * A JSON column (see kdao__json_column). Text that is not JSON at all is handed back as it is
 * rather than hiding the whole row.
 */
static json_t *decode_json(const kdao__field *f, const char *v, int len) {
  json_t *j = kdao__json_column(f, v, (size_t)len);
  return j ? j : json_stringn(v, (size_t)len);
}

static json_t *decode_value(const kdao__field *f, const char *v, int len) {
  switch (f->type) {
  case KDAO_TYPE_NUMBER:
  case KDAO_TYPE_TIMESTAMP: return decode_number(v);
  case KDAO_TYPE_BOOLEAN: return json_boolean(v[0] == 't');
  case KDAO_TYPE_ARRAY:
  case KDAO_TYPE_TABLE: return decode_json(f, v, len);
  default:
    /* the server sends valid UTF-8 (client_encoding is UTF8): no second check here */
    return json_stringn_nocheck(v, (size_t)len);
  }
}

/* Row `i` of `r` as an entity: NULL columns are absent. Field names are schema identifiers. */
static json_t *row_decode(const kdao_schema *s, const PGresult *r, int i) {
  json_t *row = json_object();
  if (row == NULL) return NULL;
  for (size_t c = 0; c < s->nfields; c++) {
    if (PQgetisnull(r, i, (int)c)) continue;
    json_t *v = decode_value(&s->fields[c], PQgetvalue(r, i, (int)c), PQgetlength(r, i, (int)c));
    if (v == NULL || json_object_set_new_nocheck(row, s->fields[c].name, v) != 0) {
      json_decref(row);
      return NULL;
    }
  }
  return row;
}

static int rows_decode(const kdao_schema *s, const PGresult *r, int n, json_t **out,
                       kdao_error **err) {
  json_t *rows = json_array();
  if (rows == NULL) return oom(err);
  for (int i = 0; i < n; i++) {
    if (json_array_append_new(rows, row_decode(s, r, i)) != 0) {
      json_decref(rows);
      return oom(err);
    }
  }
  *out = rows;
  return KDAO_OK;
}

/* ---- entity operations ---- */

static pg_backend *PG(kdao__backend *b) { return (pg_backend *)b; }

static kdao_error *ttl_unsupported(void) {
  return kdao_error_new(KDAO_ERR_DB, "cannot set a TTL if the entity has no primary key, or "
                                     "has more than one primary key");
}

static int insert_row(pg_backend *b, const kdao_schema *s, const json_t *row, int ttl, json_t **out,
                      kdao_error **err) {
  pg_table *t;
  pg_stmt *st;
  uint64_t mask;
  pg_params p;
  PG_PARAMS_INIT(p);
  PGresult *r = NULL;
  int rc;
  if ((rc = table_get(b, s, &t, err)) || (rc = object_mask(s, row, &mask, err))) return rc;
  if (ttl > 0 && !t->has_ttl) return fail(err, ttl_unsupported());
  if ((rc = stmt_get(b, t, OP_INSERT, mask, 0, ttl > 0 ? SHAPE_TTL : 0, &st, err))) return rc;
  if ((rc = params_fields(&p, s, mask, row, err))) goto cleanup;
  if (ttl > 0) {
    snprintf(p.num[p.n], sizeof p.num[0], "%d", ttl);
    p.v[p.n] = p.num[p.n];
    p.n++;
  }
  if ((rc = pg_exec(b, st, NULL, &p, false, row, &r, err))) goto cleanup;
  if (PQntuples(r) != 1 || (*out = row_decode(s, r, 0)) == NULL)
    rc = fail(err, kdao_error_new(KDAO_ERR_DB, "insert returned no row"));
cleanup:
  PQclear(r);
  params_clear(&p);
  return rc;
}

/* ---- composite uniques: advisory locks ---- */

static int pg_begin(kdao__backend *base, kdao_error **err);
static int pg_commit(kdao__backend *base, kdao_error **err);
static int pg_rollback(kdao__backend *base);
static int pg_find(kdao__backend *base, const kdao_schema *s, const json_t *pk, json_t **out,
                   kdao_error **err);

/*
 * FNV-1a, 64 bits, without case (an id may be spelt in either): the advisory lock key of a
 * text. A collision only makes two writers wait for each other.
 */
static uint64_t lock_hash(uint64_t h, const char *text, size_t len) {
  for (size_t i = 0; i < len; i++) {
    unsigned char c = (unsigned char)text[i];
    if (c >= 'A' && c <= 'Z') c = (unsigned char)(c - 'A' + 'a');
    h = (h ^ c) * UINT64_C(0x100000001b3);
  }
  return h;
}

/*
 * Takes the transaction's advisory lock on `what` (a composite's name, or "" for a primary
 * key) holding `values` in `table`. Released at COMMIT or ROLLBACK; a writer of the same
 * value waits here, then sees what the holder committed.
 */
static int lock_value(pg_backend *b, const char *table, const char *what, const json_t *values,
                      kdao_error **err) {
  char *text = json_dumps(values, JSON_COMPACT | JSON_ENCODE_ANY);
  if (text == NULL) return oom(err);
  uint64_t h = lock_hash(UINT64_C(0xcbf29ce484222325), table, strlen(table) + 1);
  h = lock_hash(h, what, strlen(what) + 1);
  h = lock_hash(h, text, strlen(text));
  kdao__free(text);
  pg_params p;
  PG_PARAMS_INIT(p);
  snprintf(p.num[0], sizeof p.num[0], "%lld", (long long)h);
  p.v[p.n++] = p.num[0];
  PGresult *r = NULL;
  int rc = pg_exec(b, NULL, "SELECT pg_advisory_xact_lock($1::bigint)", &p, true, NULL, &r, err);
  PQclear(r);
  return rc;
}

/* Locks then checks every composite unique of `row` (`self`: its key when updating). */
static int claim_uniques(pg_backend *b, const kdao_schema *s, const json_t *row, const json_t *self,
                         kdao_error **err) {
  for (size_t i = 0; i < s->nuniques; i++) {
    json_t *values = kdao__unique_values(s, &s->uniques[i], row);
    int rc = values ? lock_value(b, s->table, s->uniques[i].name, values, err) : oom(err);
    json_decref(values);
    if (rc != KDAO_OK) return rc;
  }
  return kdao__uniques_check(&b->base, s, row, self, err);
}

/* Ends the transaction a claimed write opened: commits after `rc` == KDAO_OK, else rolls back. */
static int claim_end(pg_backend *b, int rc, kdao_error **err) {
  if (rc == KDAO_OK) return pg_commit(&b->base, err);
  pg_rollback(&b->base);
  return rc;
}

/*
 * Composite uniques are checked under their advisory locks, in the insert's transaction:
 * Kong's tables carry no constraint for them, and must not get one.
 */
static int pg_insert(kdao__backend *base, const kdao_schema *s, const json_t *row, int ttl,
                     json_t **out, kdao_error **err) {
  pg_backend *b = PG(base);
  *out = NULL;
  if (s->nuniques == 0) return insert_row(b, s, row, ttl, out, err);
  pg_begin(base, err);
  int rc = claim_uniques(b, s, row, NULL, err);
  if (rc == KDAO_OK) rc = insert_row(b, s, row, ttl, out, err);
  if ((rc = claim_end(b, rc, err)) != KDAO_OK) {
    json_decref(*out);
    *out = NULL;
  }
  return rc;
}

/* Reads with `filter` (NULL: every row) through one of the SELECT operations. */
static int pg_select(pg_backend *b, const kdao_schema *s, int op, const json_t *filter,
                     const json_t *after, size_t limit, PGresult **r, kdao_error **err) {
  pg_table *t;
  pg_stmt *st;
  uint64_t mask = 0;
  pg_params p;
  PG_PARAMS_INIT(p);
  int rc;
  if ((rc = table_get(b, s, &t, err))) return rc;
  if (op != OP_FIND && filter && (rc = object_mask(s, filter, &mask, err))) return rc;
  if ((rc = stmt_get(b, t, op, mask, 0, after ? SHAPE_AFTER : 0, &st, err))) return rc;
  rc = op == OP_FIND ? params_key(&p, s, filter, err) : params_fields(&p, s, mask, filter, err);
  if (rc) goto cleanup;
  for (size_t k = 0; after && k < s->npk; k++)
    if ((rc = param_add(&p, pk_field(s, k), json_array_get(after, k), err))) goto cleanup;
  if (op == OP_PAGE) {
    snprintf(p.num[p.n], sizeof p.num[0], "%zu", limit);
    p.v[p.n] = p.num[p.n];
    p.n++;
  }
  rc = pg_exec(b, st, NULL, &p, true, NULL, r, err);
cleanup:
  params_clear(&p);
  return rc;
}

static int pg_find(kdao__backend *base, const kdao_schema *s, const json_t *pk, json_t **out,
                   kdao_error **err) {
  *out = NULL;
  PGresult *r = NULL;
  int rc = pg_select(PG(base), s, OP_FIND, pk, NULL, 0, &r, err);
  if (rc == KDAO_OK && PQntuples(r) > 1)
    rc = fail(err, kdao_error_new(KDAO_ERR_DB, "bad rows result"));
  else if (rc == KDAO_OK && PQntuples(r) == 1 && (*out = row_decode(s, r, 0)) == NULL)
    rc = oom(err);
  PQclear(r);
  return rc;
}

static int pg_find_all(kdao__backend *base, const kdao_schema *s, const json_t *filter,
                       json_t **out, kdao_error **err) {
  *out = NULL;
  PGresult *r = NULL;
  int rc = pg_select(PG(base), s, OP_FIND_ALL, filter, NULL, 0, &r, err);
  if (rc == KDAO_OK) rc = rows_decode(s, r, PQntuples(r), out, err);
  PQclear(r);
  return rc;
}

static int pg_find_page(kdao__backend *base, const kdao_schema *s, const json_t *filter,
                        const unsigned char *after, size_t after_len, size_t size, json_t **out,
                        unsigned char **next, size_t *next_len, kdao_error **err) {
  *out = NULL;
  *next = NULL;
  *next_len = 0;
  json_t *keys = NULL;
  unsigned long failures = kdao__alloc_failures();
  if (after) keys = kdao__keyset_decode(after, after_len, s->npk);
  if (kdao__alloc_failures() != failures) { /* a truncated parse, maybe */
    json_decref(keys);
    return fail(err, NULL);
  }
  if (after && keys == NULL) return fail(err, kdao__invalid_offset());
  PGresult *r = NULL;
  int rc = pg_select(PG(base), s, OP_PAGE, filter, keys, size + 1, &r, err);
  json_decref(keys);
  if (rc != KDAO_OK) return rc;
  int n = PQntuples(r);
  bool more = (size_t)n > size;
  rc = rows_decode(s, r, more ? (int)size : n, out, err);
  PQclear(r);
  if (rc == KDAO_OK && more) {
    char *pos = kdao__keyset_encode(s, json_array_get(*out, size - 1));
    if (pos == NULL) {
      rc = oom(err);
    } else {
      *next = (unsigned char *)pos;
      *next_len = strlen(pos);
    }
  }
  if (rc != KDAO_OK) {
    json_decref(*out);
    *out = NULL;
  }
  return rc;
}

static int pg_count(kdao__backend *base, const kdao_schema *s, const json_t *filter, long long *out,
                    kdao_error **err) {
  *out = 0;
  PGresult *r = NULL;
  int rc = pg_select(PG(base), s, OP_COUNT, filter, NULL, 0, &r, err);
  if (rc == KDAO_OK) *out = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
  PQclear(r);
  return rc;
}

static int update_row(pg_backend *b, const kdao_schema *s, const json_t *pk, const json_t *values,
                      const json_t *nulls, int ttl, json_t **out, kdao_error **err) {
  pg_table *t;
  pg_stmt *st;
  uint64_t set = 0, clear = 0, pkmask = 0;
  pg_params p;
  PG_PARAMS_INIT(p);
  PGresult *r = NULL;
  int rc;
  if ((rc = table_get(b, s, &t, err)) || (rc = object_mask(s, values, &set, err))) return rc;
  if (ttl > 0 && !t->has_ttl) return fail(err, ttl_unsupported());
  size_t i;
  json_t *v;
  json_array_foreach(nulls, i, v) {
    int fi = kdao__schema_field_index(s, json_string_value(v));
    if (fi < 0) return fail(err, kdao__error_fmt(KDAO_ERR_DB, "%s has no column", s->table));
    clear |= UINT64_C(1) << fi;
  }
  pkmask = kdao__sql_key_mask(s);
  set &= ~pkmask; /* the key addresses the row; it is never rewritten */
  clear &= ~(set | pkmask);
  if ((rc = stmt_get(b, t, OP_UPDATE, set, clear, ttl > 0 ? SHAPE_TTL : 0, &st, err))) return rc;
  if ((rc = params_fields(&p, s, set, values, err)) || (rc = params_key(&p, s, pk, err)))
    goto cleanup;
  if (ttl > 0) {
    snprintf(p.num[p.n], sizeof p.num[0], "%d", ttl);
    p.v[p.n] = p.num[p.n];
    p.n++;
  }
  if ((rc = pg_exec(b, st, NULL, &p, false, values, &r, err))) goto cleanup;
  if (PQntuples(r) == 1 && (*out = row_decode(s, r, 0)) == NULL) rc = oom(err);
cleanup:
  PQclear(r);
  params_clear(&p);
  return rc;
}

/*
 * An update changing a member of a composite unique claims the composite the row will hold.
 * The row's own key is locked first, so that two updates of one row, each changing another
 * member, cannot both check a composite the other is about to change.
 */
static int pg_update(kdao__backend *base, const kdao_schema *s, const json_t *pk,
                     const json_t *values, const json_t *nulls, int ttl, json_t **out,
                     kdao_error **err) {
  pg_backend *b = PG(base);
  *out = NULL;
  if (s->nuniques == 0 || !kdao__unique_touched(s, values, nulls))
    return update_row(b, s, pk, values, nulls, ttl, out, err);
  pg_begin(base, err);
  json_t *key = json_array(), *old = NULL, *merged = NULL;
  int rc = key ? KDAO_OK : oom(err);
  for (size_t k = 0; rc == KDAO_OK && k < s->npk; k++)
    if (json_array_append(key, json_object_get(pk, pk_field(s, k)->name)) != 0) rc = oom(err);
  if (rc == KDAO_OK) rc = lock_value(b, s->table, "", key, err);
  if (rc == KDAO_OK) rc = pg_find(base, s, pk, &old, err);
  if (rc == KDAO_OK && old) {
    if ((merged = kdao__row_merge(old, values, nulls)) == NULL) rc = oom(err);
    if (rc == KDAO_OK) rc = claim_uniques(b, s, merged, pk, err);
    if (rc == KDAO_OK) rc = update_row(b, s, pk, values, nulls, ttl, out, err);
  }
  json_decref(key);
  json_decref(old);
  json_decref(merged);
  if ((rc = claim_end(b, rc, err)) != KDAO_OK) {
    json_decref(*out);
    *out = NULL;
  }
  return rc;
}

static int pg_delete(kdao__backend *base, const kdao_schema *s, const json_t *pk, json_t **out,
                     kdao_error **err) {
  pg_backend *b = PG(base);
  *out = NULL;
  pg_table *t;
  pg_stmt *st;
  pg_params p;
  PG_PARAMS_INIT(p);
  PGresult *r = NULL;
  int rc;
  if ((rc = table_get(b, s, &t, err)) || (rc = stmt_get(b, t, OP_DELETE, 0, 0, 0, &st, err)))
    return rc;
  if ((rc = params_key(&p, s, pk, err))) goto cleanup;
  if ((rc = pg_exec(b, st, NULL, &p, false, pk, &r, err))) goto cleanup;
  /* An expired row goes too (purge would take it), but it was not there to delete. */
  bool visible = PQntuples(r) == 1 && PQgetvalue(r, 0, (int)s->nfields)[0] == 't';
  if (visible && (*out = row_decode(s, r, 0)) == NULL) rc = oom(err);
cleanup:
  PQclear(r);
  params_clear(&p);
  return rc;
}

static int pg_truncate(kdao__backend *base, const kdao_schema *s, kdao_error **err) {
  pg_backend *b = PG(base);
  char *sql = kdao__asprintf("WITH x AS (DELETE FROM ttls WHERE table_name = '%s')"
                             " DELETE FROM \"%s\"",
                             s->table, s->table);
  if (sql == NULL) return oom(err);
  pg_params p = {0};
  PGresult *r = NULL;
  int rc = pg_exec(b, NULL, sql, &p, true, NULL, &r, err);
  PQclear(r);
  kdao__free(sql);
  return rc;
}

/* ---- bulk insert: one pipeline, one implicit transaction ---- */

typedef struct bulk_row {
  pg_stmt *st;
  uint64_t mask;
} bulk_row;

/* Sends every row, then a sync; the server runs them as one implicit transaction. */
static bool bulk_send(pg_backend *b, const kdao_schema *s, const json_t *rows, const bulk_row *plan,
                      kdao_error **e) {
  if (!PQenterPipelineMode(b->conn)) return false;
  size_t i;
  json_t *row;
  json_array_foreach(rows, i, row) {
    pg_params p;
    PG_PARAMS_INIT(p);
    kdao_error *pe = NULL;
    if (params_fields(&p, s, plan[i].mask, row, &pe) != KDAO_OK) {
      *e = pe;
      params_clear(&p);
      return false;
    }
    int ok = PQsendQueryPrepared(b->conn, plan[i].st->name, p.n, p.v, NULL, NULL, 0);
    params_clear(&p);
    if (!ok) return false;
  }
  return PQpipelineSync(b->conn) == 1;
}

/*
 * Reads the pipeline's results: one per row (each followed by NULL), then the sync. The
 * first failure is returned with its row's index in *bad; rows after it come back
 * PIPELINE_ABORTED.
 */
static PGresult *bulk_receive(pg_backend *b, const kdao_schema *s, const json_t *rows, json_t *out,
                              size_t *bad) {
  PGresult *failed = NULL;
  for (size_t i = 0; i < json_array_size(rows); i++) {
    PGresult *r = PQgetResult(b->conn);
    if (r == NULL) return failed ? failed : PQmakeEmptyPGresult(b->conn, PGRES_FATAL_ERROR);
    if (failed == NULL && result_ok(r) && PQntuples(r) == 1) {
      json_array_append_new(out, row_decode(s, r, 0));
      PQclear(r);
    } else if (failed == NULL && PQresultStatus(r) != PGRES_PIPELINE_ABORTED) {
      failed = r;
      *bad = i;
    } else {
      PQclear(r);
    }
    PQclear(PQgetResult(b->conn)); /* the NULL that ends each query's results */
  }
  PGresult *sync = PQgetResult(b->conn);
  if (PQresultStatus(sync) != PGRES_PIPELINE_SYNC && failed == NULL)
    failed = sync;
  else
    PQclear(sync);
  return failed;
}

/*
 * Rows with composite uniques go one by one, each claimed, in one transaction: a pipeline
 * cannot take a lock and check before each insert.
 */
static int insert_claimed(pg_backend *b, const kdao_schema *s, const json_t *rows, json_t **out,
                          kdao_error **err) {
  json_t *stored = json_array();
  if (stored == NULL) return oom(err);
  pg_begin(&b->base, err);
  int rc = KDAO_OK;
  size_t i;
  json_t *row;
  json_array_foreach(rows, i, row) {
    json_t *one = NULL;
    if ((rc = pg_insert(&b->base, s, row, 0, &one, err)) != KDAO_OK) break;
    if (json_array_append_new(stored, one) != 0) {
      rc = oom(err);
      break;
    }
  }
  if ((rc = claim_end(b, rc, err)) != KDAO_OK) {
    json_decref(stored);
    return rc;
  }
  *out = stored;
  return KDAO_OK;
}

static int pg_insert_many(kdao__backend *base, const kdao_schema *s, const json_t *rows,
                          json_t **out, kdao_error **err) {
  pg_backend *b = PG(base);
  *out = NULL;
  size_t n = json_array_size(rows);
  pg_table *t;
  int rc = table_get(b, s, &t, err);
  if (rc != KDAO_OK) return rc;
  if (s->nuniques) return insert_claimed(b, s, rows, out, err);
  bulk_row *plan = kdao__calloc(n ? n : 1, sizeof *plan);
  if (plan == NULL) return oom(err);
  for (size_t i = 0; i < n; i++) {
    if ((rc = object_mask(s, json_array_get(rows, i), &plan[i].mask, err)) ||
        (rc = stmt_get(b, t, OP_INSERT, plan[i].mask, 0, 0, &plan[i].st, err)))
      goto cleanup;
  }
  for (int attempt = 0;; attempt++) {
    json_t *stored = NULL;
    size_t bad = 0;
    bool sent = false;
    PGresult *r = NULL;
    kdao_error *e = pg_ready(b);
    for (size_t i = 0; e == NULL && r == NULL && i < n; i++) r = pg_prepare(b, plan[i].st);
    if (e == NULL && r == NULL && (stored = json_array()) == NULL)
      e = kdao_error_new(KDAO_ERR_NOMEM, "out of memory");
    if (e == NULL && r == NULL) {
      sent = bulk_send(b, s, rows, plan, &e);
      if (e == NULL && sent)
        r = bulk_receive(b, s, rows, stored, &bad);
      else if (e == NULL)
        r = PQmakeEmptyPGresult(b->conn, PGRES_FATAL_ERROR);
      if (PQpipelineStatus(b->conn) != PQ_PIPELINE_OFF && !PQexitPipelineMode(b->conn)) {
        /* results left unread: this connection's protocol state cannot be trusted */
        PQreset(b->conn);
        b->gen++;
      }
    }
    if (e == NULL && r == NULL && json_array_size(stored) == n) {
      *out = stored;
      rc = KDAO_OK;
      break;
    }
    json_decref(stored);
    if (e == NULL && attempt == 0 && pg_may_retry(b, r, sent, false)) {
      PQclear(r);
      continue;
    }
    if (b->tx == TX_OPEN && PQstatus(b->conn) == CONNECTION_BAD) b->tx = TX_BROKEN;
    if (e == NULL) e = result_error(b, r, json_array_get(rows, bad));
    PQclear(r);
    rc = fail(err, e);
    break;
  }
cleanup:
  kdao__free(plan);
  return rc;
}

/* ---- transactions ---- */

/*
 * begin() only marks the transaction: BEGIN travels with the first statement that needs
 * it, so a connection lost before then is simply re-established, and a transaction that
 * ends up running nothing costs no round trip.
 */
static int pg_begin(kdao__backend *base, kdao_error **err) {
  (void)err;
  pg_backend *b = PG(base);
  if (b->tx_depth++ == 0) {
    b->tx = TX_PENDING;
    b->tx_doomed = false;
  }
  return KDAO_OK;
}

static void tx_end(pg_backend *b) {
  b->tx = TX_NONE;
  b->tx_depth = 0;
  b->tx_doomed = false;
}

static int pg_rollback(kdao__backend *base) {
  pg_backend *b = PG(base);
  if (b->tx_depth == 0) return KDAO_OK;
  if (--b->tx_depth > 0) {
    b->tx_doomed = true;
    return KDAO_OK;
  }
  if (b->tx == TX_OPEN && PQstatus(b->conn) == CONNECTION_OK)
    kdao_error_free(pg_simple(b, "ROLLBACK"));
  tx_end(b);
  return KDAO_OK;
}

static int pg_commit(kdao__backend *base, kdao_error **err) {
  pg_backend *b = PG(base);
  if (b->tx_depth == 0) return KDAO_OK;
  if (--b->tx_depth > 0) return KDAO_OK;
  if (b->tx_doomed) {
    b->tx_depth = 1;
    pg_rollback(base);
    return fail(err, kdao_error_new(KDAO_ERR_DB, "transaction rolled back"));
  }
  enum pg_tx state = b->tx;
  tx_end(b);
  if (state == TX_PENDING) return KDAO_OK;
  if (state == TX_BROKEN) return fail(err, tx_lost(b));
  PGresult *r = PQexec(b->conn, "COMMIT");
  int rc = KDAO_OK;
  if (!result_ok(r))
    rc = fail(err, result_error(b, r, NULL));
  else if (strcmp(PQcmdStatus(r), "ROLLBACK") == 0) /* the transaction had failed */
    rc = fail(err, kdao_error_new(KDAO_ERR_DB, "transaction rolled back"));
  PQclear(r);
  return rc;
}

/* ---- migrations and maintenance ---- */

/* Prepared plans may describe tables that DDL just replaced: start afresh. */
static void forget_prepared(pg_backend *b) {
  if (PQstatus(b->conn) == CONNECTION_OK) kdao_error_free(pg_simple(b, "DEALLOCATE ALL"));
  b->gen++;
}

static int pg_migrations_current(kdao__backend *base, json_t **out, kdao_error **err) {
  pg_backend *b = PG(base);
  *out = NULL;
  pg_params p = {0};
  PGresult *r = NULL;
  int rc = pg_exec(b, NULL, "SELECT to_regclass('schema_migrations') IS NOT NULL", &p, true, NULL,
                   &r, err);
  if (rc != KDAO_OK) return rc;
  bool exists = PQgetvalue(r, 0, 0)[0] == 't';
  PQclear(r);
  json_t *all = json_object();
  if (all == NULL) return oom(err);
  if (exists) {
    rc = pg_exec(b, NULL, "SELECT id, array_to_json(migrations)::text FROM schema_migrations", &p,
                 true, NULL, &r, err);
    for (int i = 0; rc == KDAO_OK && i < PQntuples(r); i++) {
      json_t *names =
          PQgetisnull(r, i, 1) ? json_array() : json_loads(PQgetvalue(r, i, 1), 0, NULL);
      if (!json_is_array(names) || json_object_set_new(all, PQgetvalue(r, i, 0), names) != 0)
        rc = fail(err, kdao_error_new(KDAO_ERR_DB, "unreadable schema_migrations row"));
    }
    PQclear(r);
  }
  if (rc != KDAO_OK) {
    json_decref(all);
    return rc;
  }
  *out = all;
  return KDAO_OK;
}

/* schema_migrations as Kong keeps it: one row per identifier, names appended in order. */
static const char record_sql[] =
    "INSERT INTO schema_migrations (id, migrations) VALUES ($1, ARRAY[$2::varchar(100)])"
    " ON CONFLICT (id) DO UPDATE"
    " SET migrations = array_append(schema_migrations.migrations, $2::varchar(100))";

/* A migration and its record in one transaction: a failed step leaves no trace. */
static int pg_migration_apply(kdao__backend *base, const char *identifier, const char *name,
                              const char *up, kdao_error **err) {
  pg_backend *b = PG(base);
  kdao_error *e = pg_ready(b);
  if (e) return fail(err, e);
  bool own_tx = b->tx == TX_NONE;
  if (own_tx && (e = pg_simple(b, "BEGIN"))) return fail(err, e);
  if (up && up[strspn(up, " \t\r\n;")] != '\0') e = pg_simple(b, up);
  if (e == NULL) {
    const char *vals[2] = {identifier, name};
    PGresult *r = PQexecParams(b->conn, record_sql, 2, NULL, vals, NULL, NULL, 0);
    if (!result_ok(r)) e = result_error(b, r, NULL);
    PQclear(r);
  }
  if (own_tx && e == NULL) e = pg_simple(b, "COMMIT");
  if (own_tx && e && PQstatus(b->conn) == CONNECTION_OK) kdao_error_free(pg_simple(b, "ROLLBACK"));
  forget_prepared(b);
  return e ? fail(err, e) : KDAO_OK;
}

/*
 * A table for a plugin entity that brings no PostgreSQL migration (sql.h), in Kong's idiom:
 * uuid ids, JSON as text, UTC timestamps defaulting to now.
 */
static char *pg_schema_ddl(kdao__backend *base, const kdao_schema *s) {
  kdao__sql q = {.d = &pg_dialect, .s = s};
  kdao__sql_create_table(&q, base->factory);
  return kdao__sql_take(&q);
}

static int pg_drop_schema(kdao__backend *base, const char *const *tables, size_t n,
                          kdao_error **err) {
  pg_backend *b = PG(base);
  kdao__sb q = {0};
  kdao__sb_add(&q, "DROP TABLE IF EXISTS ");
  for (size_t i = 0; i < n; i++) kdao__sb_addf(&q, "\"%s\", ", tables[i]);
  /* nodes: created by the core migrations for Kong's sake, though no kdao entity uses it */
  kdao__sb_add(&q, "ttls, nodes, kdao_secrets, schema_migrations CASCADE;"
                   "DROP FUNCTION IF EXISTS upsert_ttl(text, uuid, text, text, timestamp)");
  char *sql = kdao__sb_take(&q);
  if (sql == NULL) return oom(err);
  kdao_error *e = pg_ready(b);
  if (e == NULL) e = pg_simple(b, sql);
  kdao__free(sql);
  forget_prepared(b);
  return e ? fail(err, e) : KDAO_OK;
}

static int table_exists(pg_backend *b, const char *table, bool *exists, kdao_error **err) {
  pg_params p = {.n = 1, .v = {table}};
  PGresult *r = NULL;
  int rc =
      pg_exec(b, NULL, "SELECT to_regclass(quote_ident($1)) IS NOT NULL", &p, true, NULL, &r, err);
  if (rc == KDAO_OK) *exists = PQgetvalue(r, 0, 0)[0] == 't';
  PQclear(r);
  return rc;
}

/* Deletes each table's expired rows together with their ttls rows, table by table. */
static int pg_purge_expired(kdao__backend *base, const kdao_schema *const *schemas, size_t n,
                            long long *purged, kdao_error **err) {
  pg_backend *b = PG(base);
  *purged = 0;
  for (size_t i = 0; i < n; i++) {
    const kdao_schema *s = schemas[i];
    if (s->npk != 1) continue;
    const kdao__field *pk = pk_field(s, 0);
    bool exists = false;
    int rc = table_exists(b, s->table, &exists, err);
    if (rc != KDAO_OK) return rc;
    if (!exists) continue; /* declared by a plugin whose migrations never ran */
    char *sql =
        kdao__asprintf("WITH d AS (DELETE FROM ttls WHERE table_name = '%s'"
                       " AND expire_at <= (now() AT TIME ZONE 'utc') RETURNING primary_key_value)"
                       " DELETE FROM \"%s\" WHERE \"%s\" IN (SELECT primary_key_value::%s FROM d)",
                       s->table, s->table, pk->name, pk->type == KDAO_TYPE_ID ? "uuid" : "text");
    if (sql == NULL) return oom(err);
    pg_params p = {0};
    PGresult *r = NULL;
    rc = pg_exec(b, NULL, sql, &p, true, NULL, &r, err);
    kdao__free(sql);
    if (rc != KDAO_OK) return rc;
    *purged += strtoll(PQcmdTuples(r), NULL, 10);
    PQclear(r);
  }
  return KDAO_OK;
}

/* ---- kdao's own secrets ---- */

/* The stored value of `name` into *out (NULL when none); *missing when the table is. */
static int secret_read(pg_backend *b, const char *name, char **out, bool *missing,
                       kdao_error **err) {
  *out = NULL;
  *missing = false;
  pg_params p = {.n = 1, .v = {name}};
  PGresult *r = NULL;
  kdao_error *e = NULL;
  if (pg_exec(b, NULL, "SELECT value FROM kdao_secrets WHERE name = $1", &p, true, NULL, &r, &e) !=
      KDAO_OK) {
    if (strcmp(kdao_error_code(e) ? kdao_error_code(e) : "", "42P01") != 0) return fail(err, e);
    kdao_error_free(e); /* undefined_table: nobody paged on this database yet */
    *missing = true;
    return KDAO_OK;
  }
  int rc = KDAO_OK;
  if (PQntuples(r) == 1 && (*out = kdao__strdup(PQgetvalue(r, 0, 0))) == NULL) rc = oom(err);
  PQclear(r);
  return rc;
}

/*
 * The table may be created by several processes at once: CREATE TABLE IF NOT EXISTS then
 * fails in the loser with a duplicate (42P07, or 23505 on the catalog's type index), which
 * means the table is there. The first INSERT wins; the others read its value.
 */
static int pg_secret(kdao__backend *base, const char *name, const char *candidate, char **out,
                     kdao_error **err) {
  pg_backend *b = PG(base);
  bool missing = false;
  int rc = secret_read(b, name, out, &missing, err);
  if (rc != KDAO_OK || *out) return rc;
  pg_params none = {0};
  PGresult *r = NULL;
  kdao_error *e = NULL;
  if (missing &&
      pg_exec(
          b, NULL,
          "CREATE TABLE IF NOT EXISTS kdao_secrets (name text PRIMARY KEY, value text NOT NULL)",
          &none, true, NULL, &r, &e) != KDAO_OK) {
    const char *code = kdao_error_code(e) ? kdao_error_code(e) : "";
    if (strcmp(code, "42P07") != 0 && strcmp(code, "23505") != 0) return fail(err, e);
    kdao_error_free(e);
  }
  PQclear(r);
  r = NULL;
  pg_params p = {.n = 2, .v = {name, candidate}};
  rc = pg_exec(b, NULL,
               "INSERT INTO kdao_secrets (name, value) VALUES ($1, $2)"
               " ON CONFLICT (name) DO NOTHING",
               &p, true, NULL, &r, err);
  PQclear(r);
  if (rc == KDAO_OK) rc = secret_read(b, name, out, &missing, err);
  if (rc == KDAO_OK && *out == NULL)
    rc = fail(err, kdao_error_new(KDAO_ERR_DB, "kdao_secrets: value not stored"));
  return rc;
}

/* ---- open / close ---- */

static json_t *pg_infos(kdao__backend *base) {
  return json_pack("{s:s, s:s}", "desc", "database", "name", PG(base)->database);
}

static void pg_close(kdao__backend *base) {
  pg_backend *b = PG(base);
  if (b == NULL) return;
  PQfinish(b->conn);
  for (size_t i = 0; i < b->ntables; i++) table_free(b->tables[i]);
  kdao__free(b->tables);
  kdao__free(b->where);
  kdao__free(b->database);
  kdao__free(b);
}

/* A library prints nothing: server notices ("table does not exist, skipping") are dropped. */
static void pg_notice_ignore(void *ud, const char *message) {
  (void)ud;
  (void)message;
}

extern const kdao__backend_ops kdao__postgres_ops; /* defined at the end */

static int pg_open(kdao_factory *f, const kdao_config *cfg, kdao__backend **out, kdao_error **err) {
  *out = NULL;
  pg_backend *b = kdao__calloc(1, sizeof *b);
  if (b == NULL) return oom(err);
  b->base.ops = &kdao__postgres_ops;
  b->base.factory = f;
  b->gen = 1;
  char port[16];
  snprintf(port, sizeof port, "%lld", kdao__config_int(cfg, "pg_port"));
  const char *host = kdao__config_str(cfg, "pg_host");
  const char *password = kdao__config_str(cfg, "pg_password");
  const char *ca = kdao__config_str(cfg, "lua_ssl_trusted_certificate");
  bool ssl = kdao__config_bool(cfg, "pg_ssl"), verify = kdao__config_bool(cfg, "pg_ssl_verify");
  b->where = kdao__asprintf("%s:%s", host ? host : "", port);
  b->database = kdao__strdup(kdao__config_str(cfg, "pg_database"));
  if (b->where == NULL || b->database == NULL) {
    pg_close(&b->base);
    return oom(err);
  }
  const char *keys[12], *vals[12];
  int n = 0;
#define KV(k, v) (keys[n] = (k), vals[n] = (v), n++)
  KV("host", host);
  KV("port", port);
  KV("user", kdao__config_str(cfg, "pg_user"));
  KV("dbname", b->database);
  if (password && *password) KV("password", password);
  KV("sslmode", !ssl ? "disable" : verify ? "verify-full" : "require");
  if (ssl && verify && ca && *ca) KV("sslrootcert", ca);
  KV("application_name", "kdao");
  KV("client_encoding", "UTF8");
  KV("connect_timeout", "10");
#undef KV
  keys[n] = vals[n] = NULL;
  b->conn = PQconnectdbParams(keys, vals, 0);
  if (b->conn == NULL) {
    pg_close(&b->base);
    return oom(err);
  }
  PQsetNoticeProcessor(b->conn, pg_notice_ignore, NULL);
  if (PQstatus(b->conn) != CONNECTION_OK) {
    kdao_error *e = conn_error(b, "could not connect to");
    pg_close(&b->base);
    return fail(err, e);
  }
  *out = &b->base;
  return KDAO_OK;
}

/* ---- configuration ---- */

static const kdao__conf_option pg_options[] = {
    KDAO__OPT_STR("pg_host", "127.0.0.1", "PostgreSQL host name, address or socket directory."),
    KDAO__OPT_NUM("pg_port", "5432", 1, 65535, "PostgreSQL port."),
    KDAO__OPT_STR("pg_user", "kong", "PostgreSQL user."),
    KDAO__OPT_SECRET("pg_password", "PostgreSQL password."),
    KDAO__OPT_STR("pg_database", "kong", "PostgreSQL database."),
    KDAO__OPT_BOOL("pg_ssl", "off", "Connect to PostgreSQL over TLS."),
    KDAO__OPT_BOOL(
        "pg_ssl_verify", "off",
        "Verify the PostgreSQL server certificate against `lua_ssl_trusted_certificate`."),
    KDAO__OPT_END,
};

/* Core and built-in plugin migrations (src/migrations/postgres.c). */
extern const kdao__migration_set kdao__postgres_migrations[];

const kdao__backend_ops kdao__postgres_ops = {
    .version = KDAO__BACKEND_OPS_VERSION,
    .name = "postgres",
    .migrations = kdao__postgres_migrations,
    .options = pg_options,
    .caps = KDAO__CAP_NATIVE_CASCADE | KDAO__CAP_NATIVE_FOREIGN | KDAO__CAP_TRANSACTIONS,
    .open = pg_open,
    .close = pg_close,
    .infos = pg_infos,
    .insert = pg_insert,
    .insert_many = pg_insert_many,
    .find = pg_find,
    .find_all = pg_find_all,
    .find_page = pg_find_page,
    .count = pg_count,
    .update = pg_update,
    .delete = pg_delete,
    .truncate = pg_truncate,
    .begin = pg_begin,
    .commit = pg_commit,
    .rollback = pg_rollback,
    .migrations_current = pg_migrations_current,
    .migration_apply = pg_migration_apply,
    .schema_ddl = pg_schema_ddl,
    .drop_schema = pg_drop_schema,
    .purge_expired = pg_purge_expired,
    .secret = pg_secret,
};
