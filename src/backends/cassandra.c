/*
 * backends/cassandra.c — the Cassandra backend, over kdao's own CQL client (src/cql/), on
 * Kong 0.10.4's keyspace.
 *
 * Storage, as Kong 0.10.4 left it: uuid columns for ids, timestamp (ms) for timestamps,
 * int/boolean natively, text holding JSON for arrays and tables. Every DAO statement is
 * prepared (the cluster caches statements by text, per node) and runs at the configured
 * cassandra_consistency; identifiers come from schemas and are double-quoted.
 *
 * The table's real primary key. Kong's tables do not always key rows by the schema's primary
 * key (ssl_servers_names is keyed by (name, ssl_certificate_id), its schema by name), so the
 * backend reads each table's key columns from system_schema once and addresses rows for
 * UPDATE/DELETE by those, taken from the row it reads first.
 *
 * Uniqueness, race-free. Kong read then wrote, so two concurrent inserts of one name both
 * won. kdao claims each unique value in `kdao_unique` with a lightweight transaction
 * (UPDATE ... IF owner = null, at SERIAL consistency) before writing the row, and inserts the
 * row itself with IF NOT EXISTS, so an existing primary key is a unique error as on
 * PostgreSQL rather than Kong's silent overwrite. The owner is the row's table key. Deletes
 * and updates release reservations with `DELETE ... IF owner = ?`. A reservation left by a
 * writer that died between the two steps (its owner row missing or holding another value) is
 * taken over once it is older than RESERVATION_GRACE_MS. Reservations of rows with a TTL
 * expire with the row.
 *
 * TTL is native: USING TTL on insert. An update with a TTL re-inserts the whole row (the row
 * marker must carry the TTL too, or the key would outlive its cells), keeping `false`
 * booleans that Kong's version lost; an update without a TTL of a row that has one keeps
 * the remaining TTL, so updated cells do not outlive the row.
 *
 * Paging: the server's paging_state in base64url is the page token; pages the server returns
 * empty while it still has more (ALLOW FILTERING does that) are skipped, so kdao never
 * hands out an empty page with a next token. find_all and count page through everything
 * (count reads one key column, 5000 rows a page: COUNT(*) is one request however large the
 * table, so it ends in the request timeout — measured here, 200k rows: COUNT(*) 1.7 s in one
 * request, kdao's paged count 3.4 s in forty).
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cql.h"
#include "backend.h"
#include "strbuf.h"

#define CS_MAX_FIELDS 64
#define CS_MAX_PARAMS (2 * CS_MAX_FIELDS + 8)
#define CS_PAGE_ALL 1000           /* find_all: the page size Kong's driver used */
#define CS_PAGE_COUNT 5000         /* count: key columns only, larger pages */
#define RESERVATION_GRACE_MS 30000 /* an ownerless reservation younger than this is in flight */
#define DDL_TIMEOUT_MS 60000

/* ---- state ---- */

/*
 * A value the backend reserves in kdao_unique: a unique field's (its name, and Kong's text
 * of the value) or a composite unique's (its members' names joined by ',', and the JSON
 * array of their values, absent ones null).
 */
typedef struct cs_key {
  const char *name;      /* kdao_unique.field */
  const kdao__field *f;  /* the field, or NULL for a composite */
  const kdao__unique *u; /* the composite, or NULL */
} cs_key;

#define CS_MAX_KEYS (CS_MAX_FIELDS + 8)

/* What the backend learns once about one entity table. */
typedef struct cs_table {
  const kdao_schema *s;
  char *cols;                 /* select list: every field, in field order */
  char *ttl_cols;             /* cols, then TTL() of each non-key column */
  size_t ckey[CS_MAX_FIELDS]; /* the table's primary-key columns, as field indexes */
  size_t nckey;
  bool ckey_is_pk;          /* the table's key is exactly the schema's primary key */
  bool reserve_pk;          /* the schema key is not the table key: reserve it in kdao_unique */
  cs_key keys[CS_MAX_KEYS]; /* what its writes reserve */
  size_t nkeys;
} cs_table;

typedef struct cs_backend {
  kdao__backend base;
  cql_cluster *cl;
  char *keyspace;
  cql_consistency consistency, serial;
  int timeout_ms;    /* cassandra_timeout: bounds each statement, retries included */
  bool unique_ready; /* kdao_unique is known to exist */
  cs_table **tables;
  size_t ntables;
} cs_backend;

static cs_backend *CS(kdao__backend *b) { return (cs_backend *)b; }

/* Bound values of one statement, with the text and JSON they borrow. */
typedef struct cs_params {
  cql_value v[CS_MAX_PARAMS];
  size_t n;
  char *owned[CS_MAX_PARAMS];
  size_t nowned;
  json_t *jowned[CS_MAX_PARAMS];
  size_t njowned;
} cs_params;

static void params_clear(cs_params *p) {
  for (size_t i = 0; i < p->nowned; i++) kdao__free(p->owned[i]);
  for (size_t i = 0; i < p->njowned; i++) json_decref(p->jowned[i]);
  p->n = p->nowned = p->njowned = 0;
}

/* ---- errors ---- */

static int fail(kdao_error **err, kdao_error *e) { return kdao__fail(err, e); }

static int oom(kdao_error **err) {
  return fail(err, kdao_error_new(KDAO_ERR_NOMEM, "out of memory"));
}

/*
 * No node answers, or none can serve the request for now (too few live replicas, overloaded,
 * still joining): kdao.h's portable "unavailable", which callers may wait out.
 */
static bool cql_unavailable(const cql_error *ce) {
  switch (ce->kind) {
  case CQL_ERR_CONNECT:
  case CQL_ERR_TIMEOUT:
  case CQL_ERR_IO:
  case CQL_ERR_NO_HOSTS: return true;
  case CQL_ERR_SERVER:
    return ce->code == CQL_SERVER_UNAVAILABLE || ce->code == CQL_SERVER_OVERLOADED ||
           ce->code == CQL_SERVER_IS_BOOTSTRAPPING;
  default: return false;
  }
}

static kdao_error *cql_to_kdao(const cql_error *ce) {
  kdao_error *e = kdao_error_new(KDAO_ERR_DB, cql_error_message(ce));
  if (e && cql_unavailable(ce)) {
    kdao__error_set_code(e, KDAO_ERR_CODE_UNAVAILABLE);
  } else if (e && ce->kind == CQL_ERR_SERVER) {
    char code[16];
    snprintf(code, sizeof code, "0x%04X", (unsigned)ce->code);
    kdao__error_set_code(e, code);
  }
  return e;
}

static int cql_fail(kdao_error **err, cql_error *ce) {
  kdao_error *e = cql_to_kdao(ce);
  cql_error_clear(ce);
  return fail(err, e);
}

static kdao_error *unique_error(const char *field, const json_t *value) {
  json_t *fields = json_pack("{sO}", field, value);
  kdao_error *e = fields ? kdao_error_new_fields(KDAO_ERR_UNIQUE, fields) : NULL;
  json_decref(fields);
  return e;
}

/* ---- running statements ---- */

typedef enum cs_kind { RUN_READ, RUN_SERIAL_READ, RUN_WRITE, RUN_LWT } cs_kind;

/*
 * A prepared DAO statement at the configured consistency (SERIAL for the IF part of LWTs).
 *
 * Every statement is marked idempotent, so that a node dying mid-request does not fail the
 * operation: the cluster re-sends it to another node. That is safe for each statement this
 * file sends: reads; plain writes of given values (last write wins, no counters);
 * reservations, whose retry finds the owner already ours; IF owner = ? / IF EXISTS writes,
 * which apply the same values again; row inserts IF NOT EXISTS, whose retry finds the
 * very row it wrote (insert_one tells that apart from another row); and conditional row
 * deletes, whose retry finds the row gone (the delete then reports no row, the one
 * outcome a lost answer changes).
 */
static int run(cs_backend *b, const char *cql, const cs_params *p, cs_kind kind, int32_t page_size,
               const uint8_t *state, size_t state_len, cql_result **out, kdao_error **err) {
  cql_query_opts o = {.consistency = b->consistency,
                      .page_size = page_size,
                      .paging_state = state,
                      .paging_state_len = state_len,
                      .idempotent = 1};
  if (kind == RUN_LWT) o.serial_consistency = b->serial;
  if (kind == RUN_SERIAL_READ) o.consistency = b->serial;
  cql_error ce = {0};
  /* A server-side timeout leaves the outcome unknown; re-sending is safe (see above), so it
     is retried twice, as Kong's driver did, within the one timeout. */
  long long end = kdao__now_ms() + b->timeout_ms;
  for (int attempt = 0;; attempt++) {
    long long left = end - kdao__now_ms();
    o.timeout_ms = left > 0 && left < b->timeout_ms ? (int)left : b->timeout_ms;
    if (cql_cluster_execute(b->cl, cql, p ? p->v : NULL, p ? p->n : 0, &o, out, &ce) == 0)
      return KDAO_OK;
    bool timeout = ce.kind == CQL_ERR_SERVER &&
                   (ce.code == CQL_SERVER_READ_TIMEOUT || ce.code == CQL_SERVER_WRITE_TIMEOUT);
    if (!timeout || attempt == 2 || kdao__now_ms() >= end) return cql_fail(err, &ce);
    cql_error_clear(&ce);
  }
}

/*
 * Unprepared text: DDL, TRUNCATE and one-off statements. The server gives these a minute
 * (truncate_request_timeout), far more than a DAO request: so does the client.
 */
static int run_text(cs_backend *b, const char *cql, kdao_error **err) {
  cql_query_opts o = {.consistency = b->consistency, .timeout_ms = DDL_TIMEOUT_MS};
  cql_error ce = {0};
  if (cql_cluster_query(b->cl, cql, NULL, 0, &o, NULL, &ce) != 0) return cql_fail(err, &ce);
  return KDAO_OK;
}

/* ---- values ---- */

static int param_push(cs_params *p, cql_value v, kdao_error **err) {
  if (p->n >= CS_MAX_PARAMS)
    return fail(err, kdao_error_new(KDAO_ERR_DB, "too many statement parameters"));
  p->v[p->n++] = v;
  return KDAO_OK;
}

static int param_text(cs_params *p, const char *s, kdao_error **err) {
  return param_push(p, cql_v_text(s), err);
}

/* A text the statement owns until params_clear(). */
static int param_text_owned(cs_params *p, char *s, kdao_error **err) {
  if (s == NULL) return oom(err);
  if (p->nowned >= CS_MAX_PARAMS) {
    kdao__free(s);
    return fail(err, kdao_error_new(KDAO_ERR_DB, "too many statement parameters"));
  }
  p->owned[p->nowned++] = s;
  return param_text(p, s, err);
}

static bool is_integral(double d) {
  return d >= -9007199254740992.0 && d <= 9007199254740992.0 && d == (double)(long long)d;
}

/*
 * The value of field `f` for its column: arrays and tables as JSON text (Kong's columns are
 * text), integral reals as integers (Kong's number columns are int), the rest converted by
 * the column type the statement was prepared with.
 */
static int param_field(cs_params *p, const kdao__field *f, const json_t *v, kdao_error **err) {
  if (v == NULL || json_is_null(v)) return param_push(p, cql_v_null(), err);
  if (f->type == KDAO_TYPE_ARRAY || f->type == KDAO_TYPE_TABLE)
    return param_text_owned(p, json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY), err);
  if (json_is_real(v) && is_integral(json_real_value(v))) {
    json_t *i = json_integer((json_int_t)json_real_value(v));
    if (i == NULL || p->njowned >= CS_MAX_PARAMS) {
      json_decref(i);
      return oom(err);
    }
    p->jowned[p->njowned++] = i;
    return param_push(p, cql_v_json(i), err);
  }
  return param_push(p, cql_v_json(v), err);
}

/* A JSON column (see kdao__json_column); text that is not JSON is handed back as stored. */
static json_t *decode_json_text(const kdao__field *f, json_t *cell) {
  json_t *j = kdao__json_column(f, json_string_value(cell), json_string_length(cell));
  return j ? j : json_incref(cell);
}

/* The value of a stored cell as the schema types it (new reference; NULL for null). */
static json_t *decode_cell(const kdao__field *f, json_t *cell) {
  if (cell == NULL || json_is_null(cell)) return NULL;
  if ((f->type == KDAO_TYPE_ARRAY || f->type == KDAO_TYPE_TABLE) && json_is_string(cell))
    return decode_json_text(f, cell);
  if (json_is_real(cell) && is_integral(json_real_value(cell)))
    return json_integer((json_int_t)json_real_value(cell));
  return json_incref(cell);
}

/* Row `i` of `r` (columns in field order) as an entity: null columns are absent. */
static json_t *row_decode(const kdao_schema *s, const cql_result *r, size_t i) {
  json_t *row = json_object();
  if (row == NULL) return NULL;
  for (size_t c = 0; c < s->nfields; c++) {
    if (cql_result_is_null(r, i, c) != 0) continue;
    json_t *cell = cql_result_cell_json(r, i, c);
    json_t *v = decode_cell(&s->fields[c], cell);
    json_decref(cell);
    if (v == NULL || json_object_set_new(row, s->fields[c].name, v) != 0) {
      json_decref(row);
      return NULL;
    }
  }
  return row;
}

/* The row as the backend wrote it: nulls dropped, numbers and ids as a read would give. */
static json_t *row_normalise(const kdao_schema *s, const json_t *in) {
  json_t *row = json_object();
  if (row == NULL) return NULL;
  for (size_t i = 0; i < s->nfields; i++) {
    const kdao__field *f = &s->fields[i];
    json_t *v = json_object_get(in, f->name), *nv;
    if (v == NULL || json_is_null(v)) continue;
    if (json_is_real(v) && is_integral(json_real_value(v))) {
      nv = json_integer((json_int_t)json_real_value(v));
    } else if (f->type == KDAO_TYPE_ID && json_is_string(v)) {
      char *low = kdao__strdup(json_string_value(v));
      for (char *c = low; c && *c; c++)
        if (*c >= 'A' && *c <= 'F') *c = (char)(*c - 'A' + 'a');
      nv = low ? json_string(low) : NULL;
      kdao__free(low);
    } else {
      nv = json_deep_copy(v);
    }
    if (nv == NULL || json_object_set_new(row, f->name, nv) != 0) {
      json_decref(row);
      return NULL;
    }
  }
  return row;
}

/* ---- tables ---- */

static void table_free(cs_table *t) {
  if (t == NULL) return;
  kdao__free(t->cols);
  kdao__free(t->ttl_cols);
  kdao__free(t);
}

static void tables_forget(cs_backend *b) {
  for (size_t i = 0; i < b->ntables; i++) table_free(b->tables[i]);
  kdao__free(b->tables);
  b->tables = NULL;
  b->ntables = 0;
}

static bool is_ckey(const cs_table *t, size_t field) {
  for (size_t k = 0; k < t->nckey; k++)
    if (t->ckey[k] == field) return true;
  return false;
}

static bool is_schema_pk(const kdao_schema *s, size_t field) {
  for (size_t k = 0; k < s->npk; k++)
    if (s->pk[k] == field) return true;
  return false;
}

/*
 * Reads the table's columns from system_schema: its key columns (partition key, then
 * clustering, in position order) and a check that every schema field has a column.
 */
static int table_learn(cs_backend *b, cs_table *t, kdao_error **err) {
  const kdao_schema *s = t->s;
  cs_params p = {0};
  param_text(&p, b->keyspace, err);
  param_text(&p, s->table, err);
  cql_result *r = NULL;
  int rc = run(b,
               "SELECT column_name, kind, position FROM system_schema.columns"
               " WHERE keyspace_name = ? AND table_name = ?",
               &p, RUN_READ, 0, NULL, 0, &r, err);
  if (rc != KDAO_OK) return rc;
  bool have[CS_MAX_FIELDS] = {0};
  size_t npart = 0;
  long long pos[CS_MAX_FIELDS];
  int part[CS_MAX_FIELDS]; /* 0 partition, 1 clustering */
  size_t nrows = cql_result_row_count(r);
  for (size_t i = 0; i < nrows; i++) {
    const char *name, *kind;
    size_t nlen, klen;
    int64_t position = 0;
    if (cql_result_get_text(r, i, 0, &name, &nlen) != 0 ||
        cql_result_get_text(r, i, 1, &kind, &klen) != 0)
      continue;
    cql_result_get_int64(r, i, 2, &position);
    char fname[128];
    if (nlen >= sizeof fname) continue;
    memcpy(fname, name, nlen);
    fname[nlen] = '\0';
    int fi = kdao__schema_field_index(s, fname);
    if (fi < 0) continue; /* a column Kong left that the schema no longer has */
    have[fi] = true;
    bool pk = klen == 13 && memcmp(kind, "partition_key", 13) == 0;
    bool ck = klen == 10 && memcmp(kind, "clustering", 10) == 0;
    if (!pk && !ck) continue;
    /* insertion sort by (partition first, position) */
    size_t at = t->nckey;
    int key = pk ? 0 : 1;
    while (at > 0 && (part[at - 1] > key || (part[at - 1] == key && pos[at - 1] > position))) {
      t->ckey[at] = t->ckey[at - 1];
      part[at] = part[at - 1];
      pos[at] = pos[at - 1];
      at--;
    }
    t->ckey[at] = (size_t)fi;
    part[at] = key;
    pos[at] = position;
    t->nckey++;
    if (pk) npart++;
  }
  cql_result_free(r);
  if (nrows == 0)
    return fail(err, kdao__error_fmt(KDAO_ERR_DB, "[Invalid] unconfigured table %s", s->table));
  for (size_t i = 0; i < s->nfields; i++)
    if (!have[i])
      return fail(err, kdao__error_fmt(KDAO_ERR_DB, "table %s has no column %s", s->table,
                                       s->fields[i].name));
  if (npart == 0)
    return fail(err, kdao__error_fmt(KDAO_ERR_DB, "table %s: no partition key", s->table));
  t->ckey_is_pk = t->nckey == s->npk;
  for (size_t k = 0; t->ckey_is_pk && k < s->npk; k++) t->ckey_is_pk = is_ckey(t, s->pk[k]);
  t->reserve_pk = !t->ckey_is_pk && s->npk == 1 && !(s->fields[s->pk[0]].flags & KDAO_FIELD_UNIQUE);
  for (size_t i = 0; i < s->nfields; i++)
    if ((s->fields[i].flags & KDAO_FIELD_UNIQUE) || (t->reserve_pk && i == s->pk[0]))
      t->keys[t->nkeys++] = (cs_key){s->fields[i].name, &s->fields[i], NULL};
  if (s->nuniques > CS_MAX_KEYS - t->nkeys)
    return fail(err, kdao__error_fmt(KDAO_ERR_DB, "%s: too many uniques", s->table));
  for (size_t i = 0; i < s->nuniques; i++)
    t->keys[t->nkeys++] = (cs_key){s->uniques[i].name, NULL, &s->uniques[i]};
  return KDAO_OK;
}

static int table_get(cs_backend *b, const kdao_schema *s, cs_table **out, kdao_error **err) {
  for (size_t i = 0; i < b->ntables; i++) {
    if (b->tables[i]->s == s) {
      *out = b->tables[i];
      return KDAO_OK;
    }
  }
  if (s->nfields > CS_MAX_FIELDS)
    return fail(err,
                kdao__error_fmt(KDAO_ERR_DB, "%s: more than %d fields", s->table, CS_MAX_FIELDS));
  cs_table *t = kdao__calloc(1, sizeof *t);
  if (t == NULL) return oom(err);
  t->s = s;
  int rc = table_learn(b, t, err);
  if (rc != KDAO_OK) {
    table_free(t);
    return rc;
  }
  kdao__sb cols = {0}, ttl = {0};
  for (size_t i = 0; i < s->nfields; i++)
    kdao__sb_addf(&cols, "%s\"%s\"", i ? ", " : "", s->fields[i].name);
  kdao__sb_addf(&ttl, "%s", cols.p ? cols.p : "");
  for (size_t i = 0; i < s->nfields; i++)
    if (!is_ckey(t, i)) kdao__sb_addf(&ttl, ", TTL(\"%s\")", s->fields[i].name);
  t->cols = kdao__sb_take(&cols);
  t->ttl_cols = kdao__sb_take(&ttl);
  cs_table **grown =
      t->cols && t->ttl_cols ? kdao__realloc(b->tables, (b->ntables + 1) * sizeof *grown) : NULL;
  if (grown == NULL) {
    table_free(t);
    return oom(err);
  }
  b->tables = grown;
  b->tables[b->ntables++] = t;
  *out = t;
  return KDAO_OK;
}

/* `WHERE "a" = ? AND "b" = ?` over the members of `filter` in field order; binds them. */
static int where_filter(kdao__sb *q, cs_params *p, const kdao_schema *s, const json_t *filter,
                        kdao_error **err) {
  bool first = true;
  for (size_t i = 0; filter && i < s->nfields; i++) {
    json_t *v = json_object_get(filter, s->fields[i].name);
    if (v == NULL) continue;
    kdao__sb_addf(q, "%s\"%s\" = ?", first ? " WHERE " : " AND ", s->fields[i].name);
    first = false;
    int rc = param_field(p, &s->fields[i], v, err);
    if (rc != KDAO_OK) return rc;
  }
  return KDAO_OK;
}

/* `WHERE` on the table's key columns, valued from `row`. */
static int where_ckey(kdao__sb *q, cs_params *p, const cs_table *t, const json_t *row,
                      kdao_error **err) {
  for (size_t k = 0; k < t->nckey; k++) {
    const kdao__field *f = &t->s->fields[t->ckey[k]];
    kdao__sb_addf(q, "%s\"%s\" = ?", k ? " AND " : " WHERE ", f->name);
    int rc = param_field(p, f, json_object_get(row, f->name), err);
    if (rc != KDAO_OK) return rc;
  }
  return KDAO_OK;
}

/* ---- reads ---- */

/* One page of `SELECT <list> FROM t [WHERE filter ALLOW FILTERING]`. */
static int select_page(cs_backend *b, const cs_table *t, cs_kind kind, const char *list,
                       const json_t *filter, int32_t page_size, const uint8_t *state,
                       size_t state_len, cql_result **out, kdao_error **err) {
  kdao__sb q = {0};
  cs_params p = {0};
  kdao__sb_addf(&q, "SELECT %s FROM \"%s\"", list, t->s->table);
  int rc = where_filter(&q, &p, t->s, filter, err);
  if (rc == KDAO_OK && filter && json_object_size(filter) > 0)
    kdao__sb_addf(&q, " ALLOW FILTERING");
  char *cql = kdao__sb_take(&q);
  if (rc == KDAO_OK && cql == NULL) rc = oom(err);
  if (rc == KDAO_OK) rc = run(b, cql, &p, kind, page_size, state, state_len, out, err);
  kdao__free(cql);
  params_clear(&p);
  return rc;
}

/* The row addressed by `pk` (NULL when none); with `ttl`, the longest remaining TTL too. */
static int find_row(cs_backend *b, const cs_table *t, cs_kind kind, const json_t *pk, json_t **out,
                    int *ttl, kdao_error **err) {
  *out = NULL;
  cql_result *r = NULL;
  int rc = select_page(b, t, kind, ttl ? t->ttl_cols : t->cols, pk, 0, NULL, 0, &r, err);
  if (rc != KDAO_OK) return rc;
  size_t n = cql_result_row_count(r);
  if (n > 1) {
    rc = fail(err, kdao_error_new(KDAO_ERR_DB, "bad rows result"));
  } else if (n == 1) {
    if ((*out = row_decode(t->s, r, 0)) == NULL) rc = oom(err);
    for (size_t c = t->s->nfields; ttl && c < cql_result_column_count(r); c++) {
      int64_t left = 0;
      if (cql_result_get_int64(r, 0, c, &left) == 0 && left > *ttl) *ttl = (int)left;
    }
  }
  cql_result_free(r);
  return rc;
}

/*
 * The row a write is about to change. At a weak consistency (ONE) a replica may not have the
 * row yet although its insert succeeded; a miss is confirmed with a SERIAL read, which sees
 * every insert (they are lightweight transactions), so updating or deleting a row just
 * inserted works at any consistency. The confirmation is single-partition only: when the
 * server refuses it (a key that does not name the partition), the first answer stands.
 */
static int find_for_write(cs_backend *b, const cs_table *t, const json_t *pk, json_t **out,
                          int *ttl, kdao_error **err) {
  int rc = find_row(b, t, RUN_READ, pk, out, ttl, err);
  if (rc != KDAO_OK || *out != NULL) return rc;
  kdao_error *e = NULL;
  if (find_row(b, t, RUN_SERIAL_READ, pk, out, ttl, &e) != KDAO_OK) kdao_error_free(e);
  return KDAO_OK;
}

/* Calls `each` for every row matching `filter`, page after page. */
static int select_all(cs_backend *b, const cs_table *t, const char *list, const json_t *filter,
                      int32_t page_size, int (*each)(const cql_result *, size_t, void *), void *ud,
                      kdao_error **err) {
  uint8_t *state = NULL;
  size_t state_len = 0;
  int rc;
  for (;;) {
    cql_result *r = NULL;
    rc = select_page(b, t, RUN_READ, list, filter, page_size, state, state_len, &r, err);
    kdao__free(state);
    state = NULL;
    if (rc != KDAO_OK) break;
    size_t n = cql_result_row_count(r);
    for (size_t i = 0; rc == KDAO_OK && i < n; i++)
      if (each(r, i, ud) != 0) rc = oom(err);
    const uint8_t *next =
        cql_result_has_more_pages(r) ? cql_result_paging_state(r, &state_len) : NULL;
    if (rc == KDAO_OK && next) {
      state = kdao__malloc(state_len ? state_len : 1);
      if (state == NULL)
        rc = oom(err);
      else
        memcpy(state, next, state_len);
    }
    cql_result_free(r);
    if (rc != KDAO_OK || state == NULL) break;
  }
  kdao__free(state);
  return rc;
}

typedef struct collect_ctx {
  const kdao_schema *s;
  json_t *rows;
} collect_ctx;

static int collect_row(const cql_result *r, size_t i, void *ud) {
  collect_ctx *c = ud;
  return json_array_append_new(c->rows, row_decode(c->s, r, i));
}

static int count_row(const cql_result *r, size_t i, void *ud) {
  (void)r;
  (void)i;
  ++*(long long *)ud;
  return 0;
}

static int cs_find(kdao__backend *base, const kdao_schema *s, const json_t *pk, json_t **out,
                   kdao_error **err) {
  cs_table *t;
  *out = NULL;
  int rc = table_get(CS(base), s, &t, err);
  return rc != KDAO_OK ? rc : find_row(CS(base), t, RUN_READ, pk, out, NULL, err);
}

static int cs_find_all(kdao__backend *base, const kdao_schema *s, const json_t *filter,
                       json_t **out, kdao_error **err) {
  cs_table *t;
  *out = NULL;
  int rc = table_get(CS(base), s, &t, err);
  if (rc != KDAO_OK) return rc;
  collect_ctx c = {.s = s, .rows = json_array()};
  if (c.rows == NULL) return oom(err);
  rc = select_all(CS(base), t, t->cols, filter, CS_PAGE_ALL, collect_row, &c, err);
  if (rc != KDAO_OK) {
    json_decref(c.rows);
    return rc;
  }
  *out = c.rows;
  return KDAO_OK;
}

static int cs_count(kdao__backend *base, const kdao_schema *s, const json_t *filter, long long *out,
                    kdao_error **err) {
  cs_table *t;
  *out = 0;
  int rc = table_get(CS(base), s, &t, err);
  if (rc != KDAO_OK) return rc;
  char list[160];
  snprintf(list, sizeof list, "\"%s\"", s->fields[t->ckey[0]].name);
  long long n = 0;
  rc = select_all(CS(base), t, list, filter, CS_PAGE_COUNT, count_row, &n, err);
  if (rc == KDAO_OK) *out = n;
  return rc;
}

/* A copy of the server's paging state of `r` into *state (NULL when it has no more pages). */
static int keep_state(const cql_result *r, uint8_t **state, size_t *state_len, kdao_error **err) {
  kdao__free(*state);
  *state = NULL;
  *state_len = 0;
  size_t len = 0;
  const uint8_t *ps = cql_result_has_more_pages(r) ? cql_result_paging_state(r, &len) : NULL;
  if (ps == NULL) return KDAO_OK;
  if ((*state = kdao__malloc(len ? len : 1)) == NULL) return oom(err);
  memcpy(*state, ps, len);
  *state_len = len;
  return KDAO_OK;
}

/*
 * Does a row follow `state`? The server hands out a paging state whenever a page fills up,
 * without knowing whether anything is left; one row past it tells. Pages the server returns
 * empty while it still has more (ALLOW FILTERING) are stepped over.
 */
static int row_follows(cs_backend *b, const cs_table *t, const json_t *filter, const uint8_t *state,
                       size_t state_len, bool *follows, kdao_error **err) {
  *follows = false;
  uint8_t *cur = NULL;
  size_t cur_len = 0;
  int rc = KDAO_OK;
  for (const uint8_t *at = state; rc == KDAO_OK && at && !*follows; at = cur) {
    cql_result *r = NULL;
    rc = select_page(b, t, RUN_READ, t->cols, filter, 1, at, at == state ? state_len : cur_len, &r,
                     err);
    if (rc != KDAO_OK) break;
    *follows = cql_result_row_count(r) > 0;
    rc = keep_state(r, &cur, &cur_len, err);
    cql_result_free(r);
  }
  kdao__free(cur);
  return rc;
}

/*
 * A page is the server's paging_state: requests continue from it until `size` rows are in
 * (with ALLOW FILTERING the server may stop short, even at none, while it has more), then a
 * full page with a state is followed by a one-row probe, so the last page never hands out a
 * state that leads to nothing. The probe is the cost of that: one more single-row request
 * per page that has a successor, and for an exactly full last page.
 */
static int cs_find_page(kdao__backend *base, const kdao_schema *s, const json_t *filter,
                        const unsigned char *after, size_t after_len, size_t size, json_t **out,
                        unsigned char **next, size_t *next_len, kdao_error **err) {
  cs_backend *b = CS(base);
  *out = NULL;
  *next = NULL;
  *next_len = 0;
  cs_table *t;
  int rc = table_get(b, s, &t, err);
  if (rc != KDAO_OK) return rc;
  if (size > INT32_MAX) size = INT32_MAX;
  collect_ctx c = {.s = s, .rows = json_array()};
  if (c.rows == NULL) return oom(err);
  uint8_t *state = NULL;
  size_t state_len = 0;
  if (after) {
    if ((state = kdao__malloc(after_len ? after_len : 1)) == NULL) {
      json_decref(c.rows);
      return oom(err);
    }
    memcpy(state, after, after_len);
    state_len = after_len;
  }
  bool first = true;
  do {
    size_t have = json_array_size(c.rows);
    cql_result *r = NULL;
    kdao_error *e = NULL;
    rc = select_page(b, t, RUN_READ, t->cols, filter, (int32_t)(size - have), state, state_len, &r,
                     &e);
    if (rc != KDAO_OK) {
      /* the server's verdict on a paging state it no longer takes (its table was recreated) */
      if (first && after && strstr(kdao_error_message(e), "paging state")) {
        kdao_error_free(e);
        rc = fail(err, kdao__invalid_offset());
      } else {
        rc = fail(err, e);
      }
      break;
    }
    size_t n = cql_result_row_count(r);
    for (size_t i = 0; rc == KDAO_OK && i < n; i++)
      if (collect_row(r, i, &c) != 0) rc = oom(err);
    if (rc == KDAO_OK) rc = keep_state(r, &state, &state_len, err);
    cql_result_free(r);
    first = false;
  } while (rc == KDAO_OK && state && json_array_size(c.rows) < size);
  bool follows = false;
  if (rc == KDAO_OK && state) rc = row_follows(b, t, filter, state, state_len, &follows, err);
  if (rc == KDAO_OK && follows) {
    *next = state;
    *next_len = state_len;
    state = NULL;
  }
  kdao__free(state);
  if (rc != KDAO_OK) {
    json_decref(c.rows);
    return rc;
  }
  *out = c.rows;
  return KDAO_OK;
}

/* ---- kdao's own secrets ---- */

static const char secrets_ddl[] =
    "CREATE TABLE IF NOT EXISTS kdao_secrets (name text PRIMARY KEY, value text)";

/*
 * A plain read first (the steady state: one request per factory). When it finds nothing,
 * the table is made sure of and the candidate offered with INSERT ... IF NOT EXISTS: a
 * lightweight transaction, so of concurrent writers on any nodes exactly one applies and the
 * others are handed its value.
 */
static int cs_secret(kdao__backend *base, const char *name, const char *candidate, char **out,
                     kdao_error **err) {
  cs_backend *b = CS(base);
  *out = NULL;
  cs_params p = {0};
  param_text(&p, name, err);
  cql_result *r = NULL;
  kdao_error *e = NULL;
  const char *v;
  size_t len;
  if (run(b, "SELECT value FROM kdao_secrets WHERE name = ?", &p, RUN_READ, 0, NULL, 0, &r, &e) ==
      KDAO_OK) {
    if (cql_result_row_count(r) == 1 && cql_result_get_text(r, 0, 0, &v, &len) == 0 &&
        (*out = kdao__strndup(v, len)) == NULL) {
      cql_result_free(r);
      params_clear(&p);
      return oom(err);
    }
    cql_result_free(r);
    r = NULL;
  } else {
    kdao_error_free(e); /* most likely the table is missing: the DDL below says otherwise */
  }
  params_clear(&p);
  if (*out) return KDAO_OK;
  int rc = run_text(b, secrets_ddl, err);
  if (rc != KDAO_OK) return rc;
  param_text(&p, name, err);
  param_text(&p, candidate, err);
  rc = run(b, "INSERT INTO kdao_secrets (name, value) VALUES (?, ?) IF NOT EXISTS", &p, RUN_LWT, 0,
           NULL, 0, &r, err);
  params_clear(&p);
  if (rc != KDAO_OK) return rc;
  int col = cql_result_column_index(r, "value");
  if (cql_result_applied(r) == 1)
    *out = kdao__strdup(candidate);
  else if (col >= 0 && cql_result_get_text(r, 0, (size_t)col, &v, &len) == 0)
    *out = kdao__strndup(v, len);
  else
    rc = fail(err, kdao_error_new(KDAO_ERR_DB, "kdao_secrets: value not stored"));
  cql_result_free(r);
  if (rc == KDAO_OK && *out == NULL) rc = oom(err);
  return rc;
}

/* ---- unique reservations ---- */

static const char unique_ddl[] =
    "CREATE TABLE IF NOT EXISTS kdao_unique (table_name text, field text, value text,"
    " owner text, PRIMARY KEY ((table_name, field, value)))";

static int unique_ready(cs_backend *b, kdao_error **err) {
  if (b->unique_ready) return KDAO_OK;
  int rc = run_text(b, unique_ddl, err);
  if (rc == KDAO_OK) b->unique_ready = true;
  return rc;
}

/*
 * The owner of a reservation: the values of the row's table key, as JSON text. The table key
 * (not the schema's) names one stored row: two ssl_servers_names rows of one name differ by
 * certificate, so one can never pass for the other's retry.
 */
static char *owner_of(const cs_table *t, const json_t *row) {
  json_t *a = json_array();
  for (size_t k = 0; a && k < t->nckey; k++) {
    json_t *v = json_object_get(row, t->s->fields[t->ckey[k]].name);
    if (json_array_append(a, v ? v : json_null()) != 0) {
      json_decref(a);
      return NULL;
    }
  }
  char *text = a ? json_dumps(a, JSON_COMPACT) : NULL;
  json_decref(a);
  return text;
}

/* A value as reserved: Kong's text form (strings as they are). */
static char *reserved_text(const json_t *v) { return kdao__value_text(v); }

/* Does `row` hold a value for `k`? A composite always does (absent members are null). */
static bool key_present(const cs_key *k, const json_t *row) {
  if (k->u) return true;
  json_t *v = json_object_get(row, k->f->name);
  return v != NULL && !json_is_null(v);
}

/* The reserved text of `row`'s value for `k`; NULL when it holds none, or without memory. */
static char *key_text(const cs_table *t, const cs_key *k, const json_t *row) {
  if (k->f) return key_present(k, row) ? reserved_text(json_object_get(row, k->f->name)) : NULL;
  json_t *a = kdao__unique_values(t->s, k->u, row);
  char *text = a ? json_dumps(a, JSON_COMPACT) : NULL;
  json_decref(a);
  return text;
}

/* Kong's error for a value of `k` held by another row. */
static kdao_error *key_error(const cs_table *t, const cs_key *k, const json_t *row) {
  if (k->u) return kdao__unique_violation(t->s, k->u, row);
  return unique_error(k->f->name, json_object_get(row, k->f->name));
}

/* Runs an LWT on kdao_unique: *applied = its [applied]; *owner (optional) the current owner. */
static int unique_lwt(cs_backend *b, const char *cql, cs_params *p, bool *applied, char **owner,
                      kdao_error **err) {
  cql_result *r = NULL;
  int rc = run(b, cql, p, RUN_LWT, 0, NULL, 0, &r, err);
  params_clear(p);
  if (rc != KDAO_OK) return rc;
  *applied = cql_result_applied(r) == 1;
  if (owner) {
    *owner = NULL;
    int col = cql_result_column_index(r, "owner");
    const char *s;
    size_t len;
    if (!*applied && col >= 0 && cql_result_get_text(r, 0, (size_t)col, &s, &len) == 0)
      *owner = kdao__strndup(s, len);
  }
  cql_result_free(r);
  return KDAO_OK;
}

/*
 * Is the reservation of `value` by `owner` stale: its owner row gone or holding another
 * value, and the reservation old enough that no insert can still be on its way?
 */
static int reservation_stale(cs_backend *b, const cs_table *t, const cs_key *k, const char *value,
                             const char *owner, bool *stale, kdao_error **err) {
  *stale = false;
  const kdao_schema *s = t->s;
  json_t *keys = json_loads(owner, 0, NULL);
  json_t *pk = json_object();
  for (size_t c = 0; keys && pk && c < t->nckey; c++)
    json_object_set(pk, s->fields[t->ckey[c]].name, json_array_get(keys, c));
  json_decref(keys);
  if (pk == NULL) return oom(err);
  json_t *row = NULL;
  int rc = json_object_size(pk) == t->nckey ? find_for_write(b, t, pk, &row, NULL, err) : KDAO_OK;
  json_decref(pk);
  if (rc != KDAO_OK) return rc;
  if (row) {
    char *held = key_text(t, k, row);
    bool same = held && strcmp(held, value) == 0;
    kdao__free(held);
    json_decref(row);
    if (same) return KDAO_OK;
  }
  cs_params p = {0};
  param_text(&p, s->table, err);
  param_text(&p, k->name, err);
  param_text(&p, value, err);
  cql_result *r = NULL;
  rc = run(b,
           "SELECT WRITETIME(owner) FROM kdao_unique WHERE table_name = ? AND field = ?"
           " AND value = ?",
           &p, RUN_READ, 0, NULL, 0, &r, err);
  params_clear(&p);
  if (rc != KDAO_OK) return rc;
  int64_t written_us = 0;
  if (cql_result_get_int64(r, 0, 0, &written_us) == 0)
    *stale = kdao__now_ms() - written_us / 1000 > RESERVATION_GRACE_MS;
  cql_result_free(r);
  return KDAO_OK;
}

/*
 * The one statement that takes a reservation: from nobody (`from` NULL), from a stale
 * holder, or from the row's previous self (a new TTL, a new table key). An UPDATE, not an
 * INSERT: it writes no row marker, so the reservation lives exactly as long as its owner
 * cell and a TTL given later covers all of it. *applied, and *holder (optional) the owner
 * found when not applied.
 */
static int claim(cs_backend *b, const cs_table *t, const cs_key *k, const char *value,
                 const char *owner, const char *from, int ttl, bool *applied, char **holder,
                 kdao_error **err) {
  cs_params p = {0};
  param_push(&p, cql_v_int(ttl > 0 ? ttl : 0), err);
  param_text(&p, owner, err);
  param_text(&p, t->s->table, err);
  param_text(&p, k->name, err);
  param_text(&p, value, err);
  param_push(&p, from ? cql_v_text(from) : cql_v_null(), err);
  return unique_lwt(b,
                    "UPDATE kdao_unique USING TTL ? SET owner = ? WHERE table_name = ?"
                    " AND field = ? AND value = ? IF owner = ?",
                    &p, applied, holder, err);
}

static void release(cs_backend *b, const cs_table *t, const cs_key *k, const json_t *row,
                    const char *owner);

/*
 * Is `row`'s value for `k` held by a stored row other than `owner`'s? Rows written by Kong
 * (or by anything that does not reserve) have no reservation: once the claim is ours, no kdao
 * writer can race on the value, and a read through the columns' secondary indexes (Kong's
 * own check) finds them. A composite's absent members cannot be filtered on: the read
 * narrows by the present ones and the comparison decides.
 */
static int held_elsewhere(cs_backend *b, const cs_table *t, const cs_key *k, const json_t *row,
                          const char *owner, bool *held, kdao_error **err) {
  *held = false;
  json_t *flt = json_object();
  if (flt == NULL) return oom(err);
  for (size_t m = 0; m < (k->u ? k->u->n : 1); m++) {
    const char *name = k->u ? t->s->fields[k->u->fields[m]].name : k->f->name;
    json_t *v = json_object_get(row, name);
    if (v && !json_is_null(v)) json_object_set(flt, name, v);
  }
  json_t *rows = NULL;
  int rc = cs_find_all(&b->base, t->s, json_object_size(flt) ? flt : NULL, &rows, err);
  json_decref(flt);
  char *mine = rc == KDAO_OK ? key_text(t, k, row) : NULL;
  if (rc == KDAO_OK && mine == NULL) rc = oom(err);
  size_t i;
  json_t *other;
  json_array_foreach(rows, i, other) {
    if (rc != KDAO_OK || *held) break;
    char *theirs = key_text(t, k, other);
    char *who = theirs && strcmp(theirs, mine) == 0 ? owner_of(t, other) : NULL;
    if (who) *held = strcmp(who, owner) != 0;
    kdao__free(who);
    kdao__free(theirs);
  }
  kdao__free(mine);
  json_decref(rows);
  return rc;
}

/*
 * Reserves `row`'s value for `k` on behalf of `owner` (ttl > 0: expiring with the row). A
 * value reserved by someone else is a unique error naming the field — unless that
 * reservation is stale, when it is taken over. Finding `owner` already there is a re-sent
 * claim of ours. A value a row holds without reservation (Kong wrote it) is a unique error
 * too.
 */
static int reserve(cs_backend *b, const cs_table *t, const cs_key *k, const json_t *row,
                   const char *owner, int ttl, kdao_error **err) {
  int rc = unique_ready(b, err);
  if (rc != KDAO_OK) return rc;
  char *value = key_text(t, k, row);
  if (value == NULL) return oom(err);
  bool applied = false;
  char *holder = NULL;
  rc = claim(b, t, k, value, owner, NULL, ttl, &applied, &holder, err);
  if (rc == KDAO_OK && !applied && holder && strcmp(holder, owner) == 0) applied = true;
  if (rc == KDAO_OK && !applied && holder) {
    bool stale = false;
    rc = reservation_stale(b, t, k, value, holder, &stale, err);
    if (rc == KDAO_OK && stale) rc = claim(b, t, k, value, owner, holder, ttl, &applied, NULL, err);
  }
  bool held = false;
  if (rc == KDAO_OK && applied) {
    rc = held_elsewhere(b, t, k, row, owner, &held, err);
    if (rc != KDAO_OK || held) release(b, t, k, row, owner);
  }
  if (rc == KDAO_OK && (!applied || held)) rc = fail(err, key_error(t, k, row));
  kdao__free(holder);
  kdao__free(value);
  return rc;
}

/* Gives up `owner`'s reservation of `row`'s value for `k` (best effort: a leftover is taken
 * over later). */
static void release(cs_backend *b, const cs_table *t, const cs_key *k, const json_t *row,
                    const char *owner) {
  kdao_error *e = NULL;
  char *value = key_text(t, k, row);
  if (value == NULL || unique_ready(b, &e) != KDAO_OK) {
    kdao__free(value);
    kdao_error_free(e);
    return;
  }
  cs_params p = {0};
  param_text(&p, t->s->table, &e);
  param_text(&p, k->name, &e);
  param_text(&p, value, &e);
  param_text(&p, owner, &e);
  bool applied;
  unique_lwt(b,
             "DELETE FROM kdao_unique WHERE table_name = ? AND field = ? AND value = ?"
             " IF owner = ?",
             &p, &applied, NULL, &e);
  kdao_error_free(e);
  kdao__free(value);
}

/* Hands the reservation of `row`'s value for `k` from `from` to `owner` with a new TTL. */
static int reservation_move(cs_backend *b, const cs_table *t, const cs_key *k, const json_t *row,
                            const char *from, const char *owner, int ttl, kdao_error **err) {
  int rc = unique_ready(b, err);
  if (rc != KDAO_OK) return rc;
  char *value = key_text(t, k, row);
  if (value == NULL) return oom(err);
  bool applied;
  rc = claim(b, t, k, value, owner, from, ttl, &applied, NULL, err);
  kdao__free(value);
  return rc;
}

/* Releases every reservation `row` holds (keys flagged in `only`, or all when NULL). */
static void release_row(cs_backend *b, const cs_table *t, const json_t *row, const char *owner,
                        const bool *only) {
  for (size_t j = 0; j < t->nkeys; j++) {
    if (!key_present(&t->keys[j], row) || (only && !only[j])) continue;
    release(b, t, &t->keys[j], row, owner);
  }
}

/* ---- writes ---- */

static bool same_value(const json_t *a, const json_t *b) {
  if (a == NULL || b == NULL) return a == b;
  return json_equal((json_t *)a, (json_t *)b);
}

/*
 * Did an INSERT ... IF NOT EXISTS that was not applied find exactly `row`? Then it is this
 * very insert, re-sent after its first node died having applied it.
 */
static bool lwt_found_row(const cql_result *r, const kdao_schema *s, const json_t *row) {
  for (size_t i = 0; i < s->nfields; i++) {
    int col = cql_result_column_index(r, s->fields[i].name);
    if (col < 0) return false;
    json_t *cell = cql_result_cell_json(r, 0, (size_t)col);
    json_t *v = decode_cell(&s->fields[i], cell);
    bool same = same_value(v, json_object_get(row, s->fields[i].name));
    json_decref(cell);
    json_decref(v);
    if (!same) return false;
  }
  return true;
}

/*
 * Runs the statement built in `q` with `p` unless building it failed (`rc`), then frees both.
 * *r (NULL on failure) is the caller's to free.
 */
static int run_built(cs_backend *b, int rc, kdao__sb *q, cs_params *p, cs_kind kind, cql_result **r,
                     kdao_error **err) {
  *r = NULL;
  char *cql = kdao__sb_take(q);
  if (rc == KDAO_OK && cql == NULL) rc = oom(err);
  if (rc == KDAO_OK) rc = run(b, cql, p, kind, 0, NULL, 0, r, err);
  kdao__free(cql);
  params_clear(p);
  return rc;
}

/* `INSERT INTO t (every column) VALUES (...) [IF NOT EXISTS] [USING TTL ?]` for `row`. */
static int write_row(cs_backend *b, const cs_table *t, const json_t *row, bool if_not_exists,
                     int ttl, bool *applied, kdao_error **err) {
  const kdao_schema *s = t->s;
  kdao__sb q = {0};
  cs_params p = {0};
  int rc = KDAO_OK;
  kdao__sb_addf(&q, "INSERT INTO \"%s\" (%s) VALUES (", s->table, t->cols);
  for (size_t i = 0; rc == KDAO_OK && i < s->nfields; i++) {
    kdao__sb_addf(&q, "%s?", i ? ", " : "");
    rc = param_field(&p, &s->fields[i], json_object_get(row, s->fields[i].name), err);
  }
  kdao__sb_addf(&q, ")%s%s", if_not_exists ? " IF NOT EXISTS" : "", ttl > 0 ? " USING TTL ?" : "");
  if (rc == KDAO_OK && ttl > 0) rc = param_push(&p, cql_v_int(ttl), err);
  cql_result *r;
  rc = run_built(b, rc, &q, &p, if_not_exists ? RUN_LWT : RUN_WRITE, &r, err);
  if (rc == KDAO_OK)
    *applied = !if_not_exists || cql_result_applied(r) == 1 || lwt_found_row(r, s, row);
  cql_result_free(r);
  return rc;
}

/*
 * Reserves the unique values of `row` for `owner`, then writes it IF NOT EXISTS; on any
 * failure the reservations made are given back. *out = the row as stored.
 */
static int insert_one(cs_backend *b, const cs_table *t, const json_t *row, int ttl, json_t **out,
                      kdao_error **err) {
  const kdao_schema *s = t->s;
  *out = NULL;
  json_t *stored = row_normalise(s, row);
  char *owner = stored ? owner_of(t, stored) : NULL;
  if (owner == NULL) {
    json_decref(stored);
    return oom(err);
  }
  bool taken[CS_MAX_KEYS] = {0};
  int rc = KDAO_OK;
  for (size_t j = 0; rc == KDAO_OK && j < t->nkeys; j++) {
    if (!key_present(&t->keys[j], stored)) continue;
    rc = reserve(b, t, &t->keys[j], stored, owner, ttl, err);
    taken[j] = rc == KDAO_OK;
  }
  bool applied = false;
  if (rc == KDAO_OK) rc = write_row(b, t, stored, true, ttl, &applied, err);
  if (rc == KDAO_OK && !applied) {
    const char *k = s->fields[s->pk[0]].name;
    rc = fail(err, unique_error(k, json_object_get(stored, k)));
  }
  if (rc != KDAO_OK) {
    release_row(b, t, stored, owner, taken);
    json_decref(stored);
  } else {
    *out = stored;
  }
  kdao__free(owner);
  return rc;
}

static int cs_insert(kdao__backend *base, const kdao_schema *s, const json_t *row, int ttl,
                     json_t **out, kdao_error **err) {
  cs_table *t;
  *out = NULL;
  int rc = table_get(CS(base), s, &t, err);
  return rc != KDAO_OK ? rc : insert_one(CS(base), t, row, ttl, out, err);
}

/* Is field `field` reserved: a single-field key or a member of a composite? */
static bool key_member(const cs_table *t, size_t field) {
  for (size_t j = 0; j < t->nkeys; j++) {
    const cs_key *k = &t->keys[j];
    if (k->f == &t->s->fields[field]) return true;
    for (size_t m = 0; k->u && m < k->u->n; m++)
      if (k->u->fields[m] == field) return true;
  }
  return false;
}

/*
 * Removes the stored row `row` and its reservations. A lightweight transaction, conditioned
 * on the reserved values read: a plain DELETE racing an UPDATE ... IF EXISTS could lose to
 * the update's later timestamp and leave its cells behind, and an update that changed a
 * reserved value in between would have its new reservation left to no one. *applied false:
 * the row is gone or holds other values now. Being a lightweight transaction, it is also
 * ordered with SERIAL reads of the row (cs_find_current: a child inserted during its
 * parent's delete relies on it), and of two concurrent deletes only one applies, so only one
 * releases the reservations and reports the row.
 */
static int remove_row(cs_backend *b, const cs_table *t, const json_t *row, bool *applied,
                      kdao_error **err) {
  kdao__sb q = {0};
  cs_params p = {0};
  kdao__sb_addf(&q, "DELETE FROM \"%s\"", t->s->table);
  int rc = where_ckey(&q, &p, t, row, err);
  bool first = true;
  for (size_t i = 0; rc == KDAO_OK && i < t->s->nfields; i++) {
    if (is_ckey(t, i) || !key_member(t, i)) continue;
    const kdao__field *f = &t->s->fields[i];
    json_t *v = json_object_get(row, f->name);
    kdao__sb_addf(&q, "%s\"%s\" = ?", first ? " IF " : " AND ", f->name);
    first = false;
    rc = v && !json_is_null(v) ? param_field(&p, f, v, err) : param_push(&p, cql_v_null(), err);
  }
  if (first) kdao__sb_add(&q, " IF EXISTS");
  cql_result *r;
  rc = run_built(b, rc, &q, &p, RUN_LWT, &r, err);
  if (rc == KDAO_OK) *applied = cql_result_applied(r) == 1;
  cql_result_free(r);
  if (rc != KDAO_OK || !*applied) return rc;
  char *owner = owner_of(t, row);
  if (owner == NULL) return oom(err);
  release_row(b, t, row, owner, NULL);
  kdao__free(owner);
  return KDAO_OK;
}

/*
 * Cassandra has no multi-row transaction: rows are inserted one by one and, when one fails,
 * those already written are removed again (with their reservations), so the batch leaves
 * nothing behind unless the removal itself fails.
 */
static int cs_insert_many(kdao__backend *base, const kdao_schema *s, const json_t *rows,
                          json_t **out, kdao_error **err) {
  cs_backend *b = CS(base);
  *out = NULL;
  cs_table *t;
  int rc = table_get(b, s, &t, err);
  if (rc != KDAO_OK) return rc;
  json_t *stored = json_array();
  if (stored == NULL) return oom(err);
  size_t i;
  json_t *row;
  json_array_foreach(rows, i, row) {
    json_t *one = NULL;
    if ((rc = insert_one(b, t, row, 0, &one, err)) != KDAO_OK) break;
    json_array_append_new(stored, one);
  }
  if (rc != KDAO_OK) {
    json_array_foreach(stored, i, row) {
      kdao_error *e = NULL;
      bool gone;
      remove_row(b, t, row, &gone, &e);
      kdao_error_free(e);
    }
    json_decref(stored);
    return rc;
  }
  *out = stored;
  return KDAO_OK;
}

static int cs_delete(kdao__backend *base, const kdao_schema *s, const json_t *pk, json_t **out,
                     kdao_error **err) {
  cs_backend *b = CS(base);
  *out = NULL;
  cs_table *t;
  json_t *old = NULL;
  int rc = table_get(b, s, &t, err);
  /* A row changed between the read and the delete is read again: the event names the row
     as it went, and its reservations are the ones released. */
  for (int attempt = 0; rc == KDAO_OK && attempt < 8; attempt++) {
    bool applied = false;
    rc = find_for_write(b, t, pk, &old, NULL, err);
    if (rc != KDAO_OK || old == NULL) return rc;
    rc = remove_row(b, t, old, &applied, err);
    if (rc == KDAO_OK && applied) {
      *out = old;
      return KDAO_OK;
    }
    json_decref(old);
    old = NULL;
  }
  return rc != KDAO_OK ? rc : fail(err, kdao_error_new(KDAO_ERR_DB, "row kept changing"));
}

/*
 * A SERIAL read: Paxos orders it with every insert (IF NOT EXISTS) and delete (IF EXISTS)
 * of the row, at any cassandra_consistency. Rows are addressed by their partition here (the
 * parents dao.c checks are keyed by id); a key the server cannot read serially is read at
 * the configured consistency instead.
 */
static int cs_find_current(kdao__backend *base, const kdao_schema *s, const json_t *pk,
                           json_t **out, kdao_error **err) {
  cs_backend *b = CS(base);
  *out = NULL;
  cs_table *t;
  int rc = table_get(b, s, &t, err);
  if (rc != KDAO_OK) return rc;
  return find_row(b, t, t->ckey_is_pk ? RUN_SERIAL_READ : RUN_READ, pk, out, NULL, err);
}

/* `UPDATE t [USING TTL ?] SET ... WHERE <table key> IF EXISTS` for the changed columns. */
static int update_in_place(cs_backend *b, const cs_table *t, const json_t *old,
                           const json_t *merged, const bool *changed, int ttl, bool *applied,
                           kdao_error **err) {
  const kdao_schema *s = t->s;
  kdao__sb q = {0};
  cs_params p = {0};
  int rc = KDAO_OK;
  kdao__sb_addf(&q, "UPDATE \"%s\"%s SET ", s->table, ttl > 0 ? " USING TTL ?" : "");
  if (ttl > 0) rc = param_push(&p, cql_v_int(ttl), err);
  bool first = true;
  for (size_t i = 0; rc == KDAO_OK && i < s->nfields; i++) {
    if (!changed[i]) continue;
    kdao__sb_addf(&q, "%s\"%s\" = ?", first ? "" : ", ", s->fields[i].name);
    first = false;
    rc = param_field(&p, &s->fields[i], json_object_get(merged, s->fields[i].name), err);
  }
  if (rc == KDAO_OK) rc = where_ckey(&q, &p, t, old, err);
  kdao__sb_addf(&q, " IF EXISTS");
  cql_result *r;
  rc = run_built(b, rc, &q, &p, RUN_LWT, &r, err);
  if (rc == KDAO_OK) *applied = cql_result_applied(r) == 1;
  cql_result_free(r);
  return rc;
}

/* A new key for the table (ssl_servers_names' certificate): old row out, new row in, atomically. */
static int rekey_row(cs_backend *b, const cs_table *t, const json_t *old, const json_t *merged,
                     int ttl, kdao_error **err) {
  const kdao_schema *s = t->s;
  kdao__sb del = {0}, ins = {0};
  cs_params pd = {0}, pi = {0};
  kdao__sb_addf(&del, "DELETE FROM \"%s\"", s->table);
  int rc = where_ckey(&del, &pd, t, old, err);
  kdao__sb_addf(&ins, "INSERT INTO \"%s\" (%s) VALUES (", s->table, t->cols);
  for (size_t i = 0; rc == KDAO_OK && i < s->nfields; i++) {
    kdao__sb_addf(&ins, "%s?", i ? ", " : "");
    rc = param_field(&pi, &s->fields[i], json_object_get(merged, s->fields[i].name), err);
  }
  kdao__sb_addf(&ins, ")%s", ttl > 0 ? " USING TTL ?" : "");
  if (rc == KDAO_OK && ttl > 0) rc = param_push(&pi, cql_v_int(ttl), err);
  char *dq = kdao__sb_take(&del), *iq = kdao__sb_take(&ins);
  if (rc == KDAO_OK && (dq == NULL || iq == NULL)) rc = oom(err);
  if (rc == KDAO_OK) {
    cql_batch_stmt st[2] = {{.query = dq, .prepare = 1, .values = pd.v, .n_values = pd.n},
                            {.query = iq, .prepare = 1, .values = pi.v, .n_values = pi.n}};
    cql_query_opts o = {.consistency = b->consistency};
    cql_error ce = {0};
    if (cql_cluster_batch(b->cl, CQL_BATCH_LOGGED, st, 2, &o, NULL, &ce) != 0)
      rc = cql_fail(err, &ce);
  }
  kdao__free(dq);
  kdao__free(iq);
  params_clear(&pd);
  params_clear(&pi);
  return rc;
}

/* The update's target row: `old` with `values` set and `nulls` removed, as it will be stored. */
static json_t *merge_row(const kdao_schema *s, const json_t *old, const json_t *values,
                         const json_t *nulls) {
  json_t *m = kdao__row_merge(old, values, nulls);
  json_t *n = m ? row_normalise(s, m) : NULL;
  json_decref(m);
  return n;
}

static int cs_update(kdao__backend *base, const kdao_schema *s, const json_t *pk,
                     const json_t *values, const json_t *nulls, int ttl, json_t **out,
                     kdao_error **err) {
  cs_backend *b = CS(base);
  *out = NULL;
  cs_table *t;
  json_t *old = NULL, *merged = NULL;
  char *was = NULL, *now = NULL; /* reservation owners before and after */
  int left = 0;                  /* remaining TTL of the stored row */
  bool changed[CS_MAX_FIELDS] = {0};
  bool kchanged[CS_MAX_KEYS] = {0}, taken[CS_MAX_KEYS] = {0}, moved[CS_MAX_KEYS] = {0},
       dropped[CS_MAX_KEYS] = {0}; /* per reserved key */
  int rc = table_get(b, s, &t, err);
  if (rc == KDAO_OK) rc = find_for_write(b, t, pk, &old, &left, err);
  if (rc != KDAO_OK || old == NULL) return rc;
  if ((merged = merge_row(s, old, values, nulls)) == NULL || (was = owner_of(t, old)) == NULL ||
      (now = owner_of(t, merged)) == NULL) {
    rc = oom(err);
    goto cleanup;
  }
  bool rekey = false, any = false;
  for (size_t i = 0; i < s->nfields; i++) {
    json_t *ov = json_object_get(old, s->fields[i].name);
    json_t *nv = json_object_get(merged, s->fields[i].name);
    if (same_value(ov, nv)) continue;
    if (is_schema_pk(s, i)) continue; /* the key addresses the row; never rewritten */
    if (is_ckey(t, i)) rekey = true;  /* a table key column outside the schema key */
    changed[i] = true;
    any = true;
  }
  for (size_t j = 0; j < t->nkeys; j++) {
    char *ot = key_text(t, &t->keys[j], old), *nt = key_text(t, &t->keys[j], merged);
    kchanged[j] = (ot || nt) && !(ot && nt && strcmp(ot, nt) == 0);
    dropped[j] = ot && kchanged[j];
    kdao__free(ot);
    kdao__free(nt);
  }
  int row_ttl = ttl > 0 ? ttl : left;
  bool owner_moves = strcmp(was, now) != 0;
  /* Reservations first: new values are reserved; kept ones follow a new TTL or table key. */
  for (size_t j = 0; rc == KDAO_OK && j < t->nkeys; j++) {
    const cs_key *k = &t->keys[j];
    if (!key_present(k, merged)) continue;
    if (kchanged[j]) {
      rc = reserve(b, t, k, merged, now, row_ttl, err);
      taken[j] = rc == KDAO_OK;
    } else if (ttl > 0 || owner_moves) {
      rc = reservation_move(b, t, k, merged, was, now, row_ttl, err);
      moved[j] = rc == KDAO_OK;
    }
  }
  bool applied = true;
  if (rc == KDAO_OK && rekey) {
    rc = rekey_row(b, t, old, merged, row_ttl, err);
  } else if (rc == KDAO_OK && ttl > 0) {
    /* the row marker must expire too: re-insert the whole row (Kong's way, without losing
       `false` values) */
    rc = write_row(b, t, merged, false, ttl, &applied, err);
  } else if (rc == KDAO_OK && any) {
    rc = update_in_place(b, t, old, merged, changed, left, &applied, err);
  }
  if (rc != KDAO_OK || !applied) {
    /* nothing was written: give back what was reserved, hand back what was moved */
    release_row(b, t, merged, now, taken);
    for (size_t j = 0; j < t->nkeys; j++) {
      kdao_error *e = NULL;
      if (moved[j]) reservation_move(b, t, &t->keys[j], old, now, was, left, &e);
      kdao_error_free(e);
    }
    goto cleanup;
  }
  release_row(b, t, old, was, dropped);
  *out = merged;
  merged = NULL;
cleanup:
  json_decref(old);
  json_decref(merged);
  kdao__free(was);
  kdao__free(now);
  return rc;
}

/* Empties a table (TRUNCATE only when it holds rows: it flushes and snapshots) and forgets
 * the table's reservations. */
static int cs_truncate(kdao__backend *base, const kdao_schema *s, kdao_error **err) {
  cs_backend *b = CS(base);
  cs_table *t;
  int rc = table_get(b, s, &t, err);
  if (rc != KDAO_OK) return rc;
  char *cql =
      kdao__asprintf("SELECT \"%s\" FROM \"%s\" LIMIT 1", s->fields[t->ckey[0]].name, s->table);
  if (cql == NULL) return oom(err);
  cql_result *r = NULL;
  rc = run(b, cql, NULL, RUN_READ, 0, NULL, 0, &r, err);
  kdao__free(cql);
  if (rc != KDAO_OK) return rc;
  bool empty = cql_result_row_count(r) == 0;
  cql_result_free(r);
  if (!empty) {
    cql = kdao__asprintf("TRUNCATE \"%s\"", s->table);
    if (cql == NULL) return oom(err);
    rc = run_text(b, cql, err);
    kdao__free(cql);
    if (rc != KDAO_OK) return rc;
  }
  if ((rc = unique_ready(b, err)) != KDAO_OK) return rc;
  /* reservations of this table: a filtered scan of kdao_unique, then one delete each */
  for (;;) {
    cs_params p = {0};
    param_text(&p, s->table, err);
    rc = run(b,
             "SELECT field, value FROM kdao_unique WHERE table_name = ? LIMIT 1000"
             " ALLOW FILTERING",
             &p, RUN_READ, 0, NULL, 0, &r, err);
    params_clear(&p);
    if (rc != KDAO_OK) return rc;
    size_t n = cql_result_row_count(r);
    for (size_t i = 0; rc == KDAO_OK && i < n; i++) {
      const char *f, *v;
      size_t flen, vlen;
      if (cql_result_get_text(r, i, 0, &f, &flen) != 0 ||
          cql_result_get_text(r, i, 1, &v, &vlen) != 0)
        continue;
      param_text(&p, s->table, err);
      param_push(&p, cql_v_textn(f, flen), err);
      param_push(&p, cql_v_textn(v, vlen), err);
      rc = run(b, "DELETE FROM kdao_unique WHERE table_name = ? AND field = ? AND value = ?", &p,
               RUN_WRITE, 0, NULL, 0, NULL, err);
      params_clear(&p);
    }
    cql_result_free(r);
    if (rc != KDAO_OK || n < 1000) return rc;
  }
}

/* ---- transactions: none in Cassandra ---- */

static int cs_begin(kdao__backend *base, kdao_error **err) {
  (void)base;
  (void)err;
  return KDAO_OK;
}

static int cs_commit(kdao__backend *base, kdao_error **err) {
  (void)base;
  (void)err;
  return KDAO_OK;
}

static int cs_rollback(kdao__backend *base) {
  (void)base;
  return KDAO_OK;
}

/* ---- migrations ---- */

static int cs_migrations_current(kdao__backend *base, json_t **out, kdao_error **err) {
  cs_backend *b = CS(base);
  *out = NULL;
  cs_params p = {0};
  param_text(&p, b->keyspace, err);
  cql_result *r = NULL;
  int rc = run(b,
               "SELECT table_name FROM system_schema.tables WHERE keyspace_name = ?"
               " AND table_name = 'schema_migrations'",
               &p, RUN_READ, 0, NULL, 0, &r, err);
  params_clear(&p);
  if (rc != KDAO_OK) return rc;
  bool exists = cql_result_row_count(r) > 0;
  cql_result_free(r);
  json_t *all = json_object();
  if (all == NULL) return oom(err);
  if (exists) {
    rc =
        run(b, "SELECT id, migrations FROM schema_migrations", NULL, RUN_READ, 0, NULL, 0, &r, err);
    for (size_t i = 0; rc == KDAO_OK && i < cql_result_row_count(r); i++) {
      json_t *row = cql_result_row_json(r, i);
      json_t *id = json_object_get(row, "id"), *names = json_object_get(row, "migrations");
      if (json_is_null(names)) names = NULL;
      if (!json_is_string(id) || (names && !json_is_array(names)) ||
          json_object_set_new(all, json_string_value(id),
                              names ? json_incref(names) : json_array()) != 0)
        rc = fail(err, kdao_error_new(KDAO_ERR_DB, "unreadable schema_migrations row"));
      json_decref(row);
    }
    cql_result_free(r);
  }
  if (rc != KDAO_OK) {
    json_decref(all);
    return rc;
  }
  *out = all;
  return KDAO_OK;
}

/*
 * The end of the CQL statement starting at `p`: the first ';' outside string literals
 * ('it''s', $$...$$), quoted identifiers ("a""b") and comments (--, //, / * * /).
 */
static const char *statement_end(const char *p) {
  while (*p && *p != ';') {
    if (*p == '\'' || *p == '"') {
      char qc = *p++;
      while (*p && !(*p == qc && p[1] != qc)) p += *p == qc ? 2 : 1;
      if (*p) p++;
    } else if (p[0] == '$' && p[1] == '$') {
      const char *e = strstr(p + 2, "$$");
      p = e ? e + 2 : p + strlen(p);
    } else if ((p[0] == '-' && p[1] == '-') || (p[0] == '/' && p[1] == '/')) {
      p += strcspn(p, "\n");
    } else if (p[0] == '/' && p[1] == '*') {
      const char *e = strstr(p + 2, "*/");
      p = e ? e + 2 : p + strlen(p);
    } else {
      p++;
    }
  }
  return p;
}

/* Only whitespace and comments between `p` and `end`? */
static bool statement_blank(const char *p, const char *end) {
  while (p < end) {
    if (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n') {
      p++;
    } else if ((p[0] == '-' && p[1] == '-') || (p[0] == '/' && p[1] == '/')) {
      p += strcspn(p, "\n");
    } else if (p[0] == '/' && p[1] == '*') {
      const char *e = strstr(p + 2, "*/");
      p = e ? e + 2 : end;
    } else {
      return false;
    }
  }
  return true;
}

/* Runs each statement of `up` in turn; the client waits for schema agreement after DDL. */
static int run_statements(cs_backend *b, const char *up, kdao_error **err) {
  const char *p = up ? up : "";
  while (*p) {
    const char *end = statement_end(p);
    if (!statement_blank(p, end)) {
      char *one = kdao__strndup(p, (size_t)(end - p));
      if (one == NULL) return oom(err);
      int rc = run_text(b, one, err);
      kdao__free(one);
      if (rc != KDAO_OK) return rc;
    }
    p = *end ? end + 1 : end;
  }
  return KDAO_OK;
}

static int cs_migration_apply(kdao__backend *base, const char *identifier, const char *name,
                              const char *up, kdao_error **err) {
  cs_backend *b = CS(base);
  int rc = run_statements(b, up, err);
  tables_forget(b); /* columns and keys may have changed */
  if (rc != KDAO_OK) return rc;
  cs_params p = {0};
  const char *names[1] = {name};
  param_push(&p, cql_v_text_list(names, 1), err);
  param_text(&p, identifier, err);
  rc = run(b, "UPDATE schema_migrations SET migrations = migrations + ? WHERE id = ?", &p,
           RUN_WRITE, 0, NULL, 0, NULL, err);
  params_clear(&p);
  return rc != KDAO_OK ? rc : unique_ready(b, err);
}

static const char *cql_type_of(kdao_type t) {
  switch (t) {
  case KDAO_TYPE_ID: return "uuid";
  case KDAO_TYPE_NUMBER: return "double";
  case KDAO_TYPE_BOOLEAN: return "boolean";
  case KDAO_TYPE_TIMESTAMP: return "timestamp";
  default: return "text";
  }
}

/*
 * A table for a plugin entity that brings no Cassandra migration, in Kong's idiom: uuid ids,
 * JSON as text, and a secondary index on each foreign and unique column (the lookups the DAO
 * makes by them). Numbers are double: a schema number may hold a fraction.
 */
static char *cs_schema_ddl(kdao__backend *base, const kdao_schema *s) {
  (void)base;
  kdao__sb q = {0};
  kdao__sb_addf(&q, "CREATE TABLE IF NOT EXISTS \"%s\" (", s->table);
  for (size_t i = 0; i < s->nfields; i++)
    kdao__sb_addf(&q, "\"%s\" %s, ", s->fields[i].name, cql_type_of(s->fields[i].type));
  kdao__sb_addf(&q, "PRIMARY KEY (");
  for (size_t k = 0; k < s->npk; k++)
    kdao__sb_addf(&q, "%s\"%s\"", k ? ", " : "", s->fields[s->pk[k]].name);
  kdao__sb_addf(&q, "))");
  for (size_t i = 0; i < s->nfields; i++) {
    const kdao__field *f = &s->fields[i];
    if (i == s->pk[0] || !(f->foreign_entity || (f->flags & KDAO_FIELD_UNIQUE))) continue;
    kdao__sb_addf(&q, ";\nCREATE INDEX IF NOT EXISTS ON \"%s\" (\"%s\")", s->table, f->name);
  }
  return kdao__sb_take(&q);
}

static int cs_drop_schema(kdao__backend *base, const char *const *tables, size_t n,
                          kdao_error **err) {
  cs_backend *b = CS(base);
  tables_forget(b);
  b->unique_ready = false;
  int rc = KDAO_OK;
  /* nodes: created by the core migrations for Kong's sake, though no kdao entity uses it */
  const char *extra[] = {"nodes", "kdao_unique", "kdao_secrets", "schema_migrations"};
  size_t nextra = sizeof extra / sizeof *extra;
  for (size_t i = 0; rc == KDAO_OK && i < n + nextra; i++) {
    char *cql = kdao__asprintf("DROP TABLE IF EXISTS \"%s\"", i < n ? tables[i] : extra[i - n]);
    if (cql == NULL) return oom(err);
    rc = run_text(b, cql, err);
    kdao__free(cql);
  }
  return rc;
}

/* Cassandra expires rows itself (TTL is native): nothing is left to purge. */
static int cs_purge_expired(kdao__backend *base, const kdao_schema *const *schemas, size_t n,
                            long long *purged, kdao_error **err) {
  (void)base;
  (void)schemas;
  (void)n;
  (void)err;
  *purged = 0;
  return KDAO_OK;
}

/* ---- open / close ---- */

static json_t *cs_infos(kdao__backend *base) {
  return json_pack("{s:s, s:s}", "desc", "keyspace", "name", CS(base)->keyspace);
}

static void cs_close(kdao__backend *base) {
  cs_backend *b = CS(base);
  if (b == NULL) return;
  cql_cluster_close(b->cl);
  tables_forget(b);
  kdao__free(b->keyspace);
  kdao__free(b);
}

static cql_consistency consistency_of(const char *name) {
  static const struct {
    const char *name;
    cql_consistency c;
  } map[] = {{"ALL", CQL_ALL},       {"EACH_QUORUM", CQL_EACH_QUORUM},
             {"QUORUM", CQL_QUORUM}, {"LOCAL_QUORUM", CQL_LOCAL_QUORUM},
             {"ONE", CQL_ONE},       {"TWO", CQL_TWO},
             {"THREE", CQL_THREE},   {"LOCAL_ONE", CQL_LOCAL_ONE}};
  for (size_t i = 0; name && i < sizeof map / sizeof *map; i++)
    if (strcmp(map[i].name, name) == 0) return map[i].c;
  return CQL_ONE;
}

/* "a, b" → a NULL-terminated array of trimmed, non-empty items, all in one allocation. */
static char **split_list(const char *text, size_t *n) {
  *n = 0;
  size_t len = text ? strlen(text) : 0, items = 1;
  for (size_t i = 0; i < len; i++) items += text[i] == ',';
  char **out = kdao__malloc((items + 1) * sizeof *out + len + 1);
  if (out == NULL) return NULL;
  char *buf = (char *)(out + items + 1);
  memcpy(buf, text ? text : "", len + 1);
  for (char *tok = strtok(buf, ","); tok; tok = strtok(NULL, ",")) {
    while (*tok == ' ' || *tok == '\t') tok++;
    char *e = tok + strlen(tok);
    while (e > tok && (e[-1] == ' ' || e[-1] == '\t')) *--e = '\0';
    if (*tok) out[(*n)++] = tok;
  }
  out[*n] = NULL;
  return out;
}

/* Kong's keyspace creation: the replication settings apply only when it does not exist. */
static char *keyspace_ddl(const kdao_config *cfg, const char *ks) {
  kdao__sb q = {0};
  kdao__sb_addf(&q, "CREATE KEYSPACE IF NOT EXISTS \"%s\" WITH REPLICATION = {", ks);
  const char *strategy = kdao__config_str(cfg, "cassandra_repl_strategy");
  if (strategy && strcmp(strategy, "NetworkTopologyStrategy") == 0) {
    kdao__sb_addf(&q, "'class': 'NetworkTopologyStrategy'");
    size_t n;
    char **dcs = split_list(kdao__config_str(cfg, "cassandra_data_centers"), &n);
    if (dcs == NULL) q.oom = true;
    for (size_t i = 0; dcs && i < n; i++) {
      char *colon = strrchr(dcs[i], ':');
      if (colon == NULL) continue; /* conf.c checked the form */
      *colon = '\0';
      kdao__sb_addf(&q, ", '%s': %lld", dcs[i], strtoll(colon + 1, NULL, 10));
    }
    kdao__free(dcs);
  } else {
    kdao__sb_addf(&q, "'class': 'SimpleStrategy', 'replication_factor': %lld",
                  kdao__config_int(cfg, "cassandra_repl_factor"));
  }
  kdao__sb_addf(&q, "}");
  return kdao__sb_take(&q);
}

extern const kdao__backend_ops kdao__cassandra_ops; /* defined at the end */

static int cs_open(kdao_factory *f, const kdao_config *cfg, kdao__backend **out, kdao_error **err) {
  *out = NULL;
  cs_backend *b = kdao__calloc(1, sizeof *b);
  if (b == NULL) return oom(err);
  b->base.ops = &kdao__cassandra_ops;
  b->base.factory = f;
  b->keyspace = kdao__strdup(kdao__config_str(cfg, "cassandra_keyspace"));
  const char *cname = kdao__config_str(cfg, "cassandra_consistency");
  b->consistency = consistency_of(cname);
  b->serial = cname && strncmp(cname, "LOCAL_", 6) == 0 ? CQL_LOCAL_SERIAL : CQL_SERIAL;
  size_t ncp = 0;
  char **cps = split_list(kdao__config_str(cfg, "cassandra_contact_points"), &ncp);
  if (b->keyspace == NULL || cps == NULL) {
    kdao__free(cps);
    cs_close(&b->base);
    return oom(err);
  }
  const char *user = kdao__config_str(cfg, "cassandra_username");
  const char *password = kdao__config_str(cfg, "cassandra_password");
  bool auth = user && *user && password && *password;
  const char *policy = kdao__config_str(cfg, "cassandra_lb_policy");
  int timeout = (int)kdao__config_int(cfg, "cassandra_timeout");
  b->timeout_ms = timeout;
  cql_cluster_options o = {
      .contact_points = (const char *const *)cps,
      .n_contact_points = ncp,
      .port = (uint16_t)kdao__config_int(cfg, "cassandra_port"),
      .username = auth ? user : NULL,
      .password = auth ? password : NULL,
      .tls = kdao__config_bool(cfg, "cassandra_ssl"),
      .tls_verify = kdao__config_bool(cfg, "cassandra_ssl_verify"),
      .tls_ca_file = kdao__config_str(cfg, "lua_ssl_trusted_certificate"),
      .policy =
          policy && strcmp(policy, "DCAwareRoundRobin") == 0 ? CQL_LB_DC_AWARE : CQL_LB_ROUND_ROBIN,
      .local_dc = kdao__config_str(cfg, "cassandra_local_datacenter"),
      .default_consistency = b->consistency,
      .connect_timeout_ms = timeout,
      .request_timeout_ms = timeout,
      .schema_agreement_timeout_ms =
          (int)kdao__config_int(cfg, "cassandra_schema_consensus_timeout"),
      .discover_peers = 1,
  };
  cql_error ce = {0};
  b->cl = cql_cluster_open(&o, &ce);
  kdao__free(cps);
  int rc = b->cl ? KDAO_OK : cql_fail(err, &ce);
  char *ddl = rc == KDAO_OK ? keyspace_ddl(cfg, b->keyspace) : NULL;
  if (rc == KDAO_OK && ddl == NULL) rc = oom(err);
  if (rc == KDAO_OK) rc = run_text(b, ddl, err);
  kdao__free(ddl);
  if (rc == KDAO_OK && cql_cluster_set_keyspace(b->cl, b->keyspace, &ce) != 0)
    rc = cql_fail(err, &ce);
  if (rc != KDAO_OK) {
    cs_close(&b->base);
    return rc;
  }
  *out = &b->base;
  return KDAO_OK;
}

/* ---- configuration ---- */

/* ANY is left out on purpose, as in Kong: the level is used for reads and writes alike. */
static const char *const consistencies[] = {
    "ALL", "EACH_QUORUM", "QUORUM", "LOCAL_QUORUM", "ONE", "TWO", "THREE", "LOCAL_ONE", NULL};
static const char *const lb_policies[] = {"RoundRobin", "DCAwareRoundRobin", NULL};
static const char *const repl_strategies[] = {"SimpleStrategy", "NetworkTopologyStrategy", NULL};

static const kdao__conf_option cs_options[] = {
    KDAO__OPT_ARRAY("cassandra_contact_points", "127.0.0.1",
                    "Cassandra nodes to contact first: addresses or host names, without port."),
    KDAO__OPT_NUM("cassandra_port", "9042", 1, 65535, "Cassandra native protocol port."),
    KDAO__OPT_STR("cassandra_keyspace", "kong", "Cassandra keyspace."),
    KDAO__OPT_NUM("cassandra_timeout", "5000", 1, 86400000,
                  "Cassandra timeout, in milliseconds: bounds each statement as a whole "
                  "(connecting, waiting, re-sending to other nodes)."),
    KDAO__OPT_BOOL("cassandra_ssl", "off", "Connect to Cassandra over TLS."),
    KDAO__OPT_BOOL("cassandra_ssl_verify", "off",
                   "Verify Cassandra certificates against `lua_ssl_trusted_certificate`."),
    KDAO__OPT_STR("cassandra_username", "kong",
                  "Cassandra user (authentication happens only when a password is set too)."),
    KDAO__OPT_SECRET("cassandra_password", "Cassandra password."),
    KDAO__OPT_ENUM("cassandra_consistency", "ONE", consistencies,
                   "Consistency level of every read and write."),
    KDAO__OPT_ENUM("cassandra_lb_policy", "RoundRobin", lb_policies,
                   "Load-balancing policy across the cluster's nodes."),
    KDAO__OPT_STR("cassandra_local_datacenter", NULL,
                  "Local data center; required by `DCAwareRoundRobin`."),
    KDAO__OPT_ENUM("cassandra_repl_strategy", "SimpleStrategy", repl_strategies,
                   "Replication strategy used when the keyspace is created."),
    KDAO__OPT_NUM("cassandra_repl_factor", "1", 1, 1000,
                  "Replication factor of `SimpleStrategy` keyspaces."),
    KDAO__OPT_ARRAY("cassandra_data_centers", "dc1:2,dc2:3",
                    "`name:factor` pairs of `NetworkTopologyStrategy` keyspaces."),
    KDAO__OPT_NUM("cassandra_schema_consensus_timeout", "10000", 0, 86400000,
                  "Longest wait for schema agreement after DDL, in milliseconds."),
    KDAO__OPT_END,
};

static bool hostname_ok(const char *s) {
  if (*s == '\0' || *s == '.' || *s == '-') return false;
  for (const char *p = s; *p != '\0'; p++)
    if (!isalnum((unsigned char)*p) && *p != '.' && *p != '-' && *p != '_') return false;
  return true;
}

/* Kong's contact point rule: an address or a name, the port comes from cassandra_port. */
static char *check_contact_point(const char *cp) {
  const char *colon = strchr(cp, ':');
  if (cp[0] == '[' || (colon != NULL && strchr(colon + 1, ':') == NULL))
    return kdao__asprintf("bad cassandra contact point '%s': port must be specified in "
                          "cassandra_port",
                          cp);
  if (colon != NULL) {
    unsigned char addr[16];
    if (inet_pton(AF_INET6, cp, addr) != 1)
      return kdao__asprintf("bad cassandra contact point '%s': invalid ipv6 address: %s", cp, cp);
    return NULL;
  }
  if (!hostname_ok(cp))
    return kdao__asprintf("bad cassandra contact point '%s': invalid hostname: %s", cp, cp);
  return NULL;
}

static char *check_data_center(const char *dc) {
  const char *colon = strrchr(dc, ':');
  long long n;
  if (colon == NULL || colon == dc || !kdao__config_parse_int(colon + 1, &n) || n < 1)
    return kdao__asprintf("cassandra_data_centers has an invalid value: '%s' (expected "
                          "<name>:<replication factor>)",
                          dc);
  return NULL;
}

static int cs_config_check(const kdao_config *cfg, char **msg) {
  *msg = NULL;
  const char *policy = kdao_config_get(cfg, "cassandra_lb_policy");
  if (policy != NULL && strcmp(policy, "DCAwareRoundRobin") == 0 &&
      kdao_config_get(cfg, "cassandra_local_datacenter") == NULL) {
    *msg = kdao__strdup("must specify 'cassandra_local_datacenter' when DCAwareRoundRobin "
                        "policy is in use");
    return *msg != NULL ? KDAO_OK : KDAO_ERR_NOMEM;
  }
  int rc = kdao__config_check_each(cfg, "cassandra_contact_points", check_contact_point, msg);
  if (rc == KDAO_OK && *msg == NULL)
    rc = kdao__config_check_each(cfg, "cassandra_data_centers", check_data_center, msg);
  return rc;
}

/* Core and built-in plugin migrations (src/migrations/cassandra.c). */
extern const kdao__migration_set kdao__cassandra_migrations[];

const kdao__backend_ops kdao__cassandra_ops = {
    .version = KDAO__BACKEND_OPS_VERSION,
    .name = "cassandra",
    .caps = 0,
    .migrations = kdao__cassandra_migrations,
    .options = cs_options,
    .config_check = cs_config_check,
    .open = cs_open,
    .close = cs_close,
    .infos = cs_infos,
    .insert = cs_insert,
    .insert_many = cs_insert_many,
    .find = cs_find,
    .find_all = cs_find_all,
    .find_page = cs_find_page,
    .count = cs_count,
    .update = cs_update,
    .delete = cs_delete,
    .find_current = cs_find_current,
    .truncate = cs_truncate,
    .begin = cs_begin,
    .commit = cs_commit,
    .rollback = cs_rollback,
    .migrations_current = cs_migrations_current,
    .migration_apply = cs_migration_apply,
    .schema_ddl = cs_schema_ddl,
    .drop_schema = cs_drop_schema,
    .purge_expired = cs_purge_expired,
    .secret = cs_secret,
};
