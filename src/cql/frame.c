/*
 * frame.c — the CQL v4 codec: request encoders and response decoders. Pure: no sockets, no
 * clock. Every length and count read from a response is checked against the bytes that
 * remain before it is used, so a hostile frame is an error and never a read past its end.
 */
#include "cql_int.h"

#include <stdlib.h>
#include <string.h>

/* ---- output buffer ------------------------------------------------------------------------ */

void cql__buf_init(cql_buf *b) { memset(b, 0, sizeof *b); }

void cql__buf_free(cql_buf *b) {
  cql__free(b->data);
  cql__buf_init(b);
}

static bool buf_grow(cql_buf *b, size_t n) {
  if (b->oom) return false;
  if (b->cap - b->len >= n) return true;
  if (n > SIZE_MAX / 2 - b->len) {
    b->oom = true;
    return false;
  }
  size_t cap = b->cap ? b->cap : 256;
  while (cap - b->len < n) cap *= 2;
  uint8_t *d = cql__realloc(b->data, cap);
  if (!d) {
    b->oom = true;
    return false;
  }
  b->data = d;
  b->cap = cap;
  return true;
}

void cql__buf_put(cql_buf *b, const void *p, size_t n) {
  if (n == 0 || !buf_grow(b, n)) return;
  memcpy(b->data + b->len, p, n);
  b->len += n;
}

void cql__buf_u8(cql_buf *b, uint8_t v) { cql__buf_put(b, &v, 1); }

void cql__buf_u16(cql_buf *b, uint16_t v) {
  uint8_t x[2] = {(uint8_t)(v >> 8), (uint8_t)v};
  cql__buf_put(b, x, 2);
}

void cql__buf_i32(cql_buf *b, int32_t v) {
  uint32_t u = (uint32_t)v;
  uint8_t x[4] = {(uint8_t)(u >> 24), (uint8_t)(u >> 16), (uint8_t)(u >> 8), (uint8_t)u};
  cql__buf_put(b, x, 4);
}

void cql__buf_i64(cql_buf *b, int64_t v) {
  cql__buf_i32(b, (int32_t)((uint64_t)v >> 32));
  cql__buf_i32(b, (int32_t)(uint32_t)((uint64_t)v & 0xffffffffu));
}

void cql__buf_string(cql_buf *b, const char *s, size_t n) {
  if (n > 0xffff) { /* cannot be framed: poison the buffer rather than truncate */
    b->oom = true;
    return;
  }
  cql__buf_u16(b, (uint16_t)n);
  cql__buf_put(b, s, n);
}

void cql__buf_long_string(cql_buf *b, const char *s, size_t n) {
  if (n > INT32_MAX) {
    b->oom = true;
    return;
  }
  cql__buf_i32(b, (int32_t)n);
  cql__buf_put(b, s, n);
}

void cql__buf_short_bytes(cql_buf *b, const uint8_t *p, size_t n) {
  cql__buf_string(b, (const char *)p, n);
}

void cql__buf_bytes(cql_buf *b, const uint8_t *p, int32_t n) {
  cql__buf_i32(b, n);
  if (n > 0) cql__buf_put(b, p, (size_t)n);
}

void cql__buf_patch_i32(cql_buf *b, size_t at, int32_t v) {
  if (b->oom || at + 4 > b->len) return;
  uint32_t u = (uint32_t)v;
  b->data[at] = (uint8_t)(u >> 24);
  b->data[at + 1] = (uint8_t)(u >> 16);
  b->data[at + 2] = (uint8_t)(u >> 8);
  b->data[at + 3] = (uint8_t)u;
}

/* ---- reader ------------------------------------------------------------------------------- */

void cql__rd_init(cql_rd *r, const uint8_t *p, size_t len) {
  r->p = p;
  r->len = len;
  r->pos = 0;
  r->bad = false;
}

size_t cql__rd_left(const cql_rd *r) { return r->bad ? 0 : r->len - r->pos; }

const uint8_t *cql__rd_raw(cql_rd *r, size_t n) {
  if (r->bad || n > r->len - r->pos) {
    r->bad = true;
    return NULL;
  }
  const uint8_t *p = r->p + r->pos;
  r->pos += n;
  return p;
}

uint8_t cql__rd_u8(cql_rd *r) {
  const uint8_t *p = cql__rd_raw(r, 1);
  return p ? p[0] : 0;
}

uint16_t cql__rd_u16(cql_rd *r) {
  const uint8_t *p = cql__rd_raw(r, 2);
  return p ? (uint16_t)((p[0] << 8) | p[1]) : 0;
}

int32_t cql__rd_i32(cql_rd *r) {
  const uint8_t *p = cql__rd_raw(r, 4);
  if (!p) return 0;
  uint32_t u = ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
  return (int32_t)u;
}

int64_t cql__rd_i64(cql_rd *r) {
  uint64_t hi = (uint32_t)cql__rd_i32(r);
  uint64_t lo = (uint32_t)cql__rd_i32(r);
  return (int64_t)((hi << 32) | lo);
}

const char *cql__rd_string(cql_rd *r, size_t *n) {
  size_t len = cql__rd_u16(r);
  const uint8_t *p = cql__rd_raw(r, len);
  *n = p ? len : 0;
  return (const char *)p;
}

const uint8_t *cql__rd_bytes(cql_rd *r, int32_t *n) {
  int32_t len = cql__rd_i32(r);
  *n = -1;
  if (r->bad || len < 0) return NULL;
  const uint8_t *p = cql__rd_raw(r, (size_t)len);
  if (p) *n = len;
  return p;
}

const uint8_t *cql__rd_short_bytes(cql_rd *r, size_t *n) {
  return (const uint8_t *)cql__rd_string(r, n);
}

char *cql__rd_strdup(cql_rd *r, bool *oom) {
  size_t n;
  const char *s = cql__rd_string(r, &n);
  if (!s) return NULL;
  char *d = cql__strndup(s, n);
  if (!d) *oom = true;
  return d;
}

/* ---- frames ------------------------------------------------------------------------------- */

cql_decode_status cql__frame_parse(const uint8_t *data, size_t len, cql_frame *f,
                                   size_t *consumed) {
  if (len < CQL_HEADER_LEN) {
    *consumed = CQL_HEADER_LEN;
    return CQL_DECODE_NEED_MORE;
  }
  if (data[0] != (CQL_RESPONSE_FLAG | CQL_PROTOCOL_VERSION)) return CQL_DECODE_MALFORMED;
  uint32_t body =
      ((uint32_t)data[5] << 24) | ((uint32_t)data[6] << 16) | ((uint32_t)data[7] << 8) | data[8];
  if (body > CQL_MAX_BODY) return CQL_DECODE_MALFORMED;
  if (len - CQL_HEADER_LEN < body) {
    *consumed = CQL_HEADER_LEN + (size_t)body;
    return CQL_DECODE_NEED_MORE;
  }
  f->version = data[0];
  f->flags = data[1];
  f->stream = (int16_t)(uint16_t)((data[2] << 8) | data[3]);
  f->opcode = data[4];
  f->body = data + CQL_HEADER_LEN;
  f->body_len = body;
  *consumed = CQL_HEADER_LEN + (size_t)body;
  return CQL_DECODE_FRAME;
}

size_t cql__frame_begin(cql_buf *b, int16_t stream, uint8_t opcode) {
  size_t start = b->len;
  cql__buf_u8(b, CQL_PROTOCOL_VERSION);
  cql__buf_u8(b, 0);
  cql__buf_u16(b, (uint16_t)stream);
  cql__buf_u8(b, opcode);
  cql__buf_i32(b, 0);
  return start;
}

void cql__frame_finish(cql_buf *b, size_t start) {
  size_t body = b->len - start - CQL_HEADER_LEN;
  if (body > CQL_MAX_BODY) {
    b->oom = true;
    return;
  }
  cql__buf_patch_i32(b, start + 5, (int32_t)body);
}

/* ---- request encoders --------------------------------------------------------------------- */

void cql__enc_startup(cql_buf *b) {
  cql__buf_u16(b, 1);
  cql__buf_string(b, "CQL_VERSION", 11);
  cql__buf_string(b, "3.0.0", 5);
}

/* SASL PLAIN: authzid (empty) NUL authcid NUL password. */
void cql__enc_auth_response(cql_buf *b, const char *user, const char *password) {
  size_t ul = strlen(user), pl = strlen(password);
  if (ul + pl + 2 > INT32_MAX) {
    b->oom = true;
    return;
  }
  cql__buf_i32(b, (int32_t)(ul + pl + 2));
  cql__buf_u8(b, 0);
  cql__buf_put(b, user, ul);
  cql__buf_u8(b, 0);
  cql__buf_put(b, password, pl);
}

void cql__enc_register(cql_buf *b, const char *const *events) {
  size_t n = 0;
  while (events[n]) n++;
  cql__buf_u16(b, (uint16_t)n);
  for (size_t i = 0; i < n; i++) cql__buf_string(b, events[i], strlen(events[i]));
}

static uint16_t consistency_wire(cql_consistency c, cql_consistency dflt) {
  if (c == CQL_CONSISTENCY_DEFAULT) c = dflt;
  return (uint16_t)(c - 1);
}

/* <consistency><flags>[values][page size][paging state][serial][timestamp] */
static int enc_params(cql_buf *b, const cql_type *types, size_t ntypes, const cql_value *values,
                      size_t n, const cql_query_opts *opts, cql_error *err) {
  static const cql_query_opts none;
  if (!opts) opts = &none;
  uint8_t flags = 0;
  if (n > 0) flags |= CQL_QF_VALUES;
  if (opts->page_size > 0) flags |= CQL_QF_PAGE_SIZE;
  if (opts->paging_state && opts->paging_state_len > 0) flags |= CQL_QF_PAGING_STATE;
  if (opts->serial_consistency != CQL_CONSISTENCY_DEFAULT) flags |= CQL_QF_SERIAL_CONSISTENCY;
  if (opts->timestamp_us > 0) flags |= CQL_QF_DEFAULT_TIMESTAMP;
  if (n > 0xffff) return cql__fail(err, CQL_ERR_MISUSE, "too many values: %zu", n);
  cql__buf_u16(b, consistency_wire(opts->consistency, CQL_ONE));
  cql__buf_u8(b, flags);
  if (n > 0) {
    cql__buf_u16(b, (uint16_t)n);
    for (size_t i = 0; i < n; i++) {
      const cql_type *t = i < ntypes ? &types[i] : NULL;
      if (cql__value_encode(b, &values[i], t, i, err) < 0) return -1;
    }
  }
  if (flags & CQL_QF_PAGE_SIZE) cql__buf_i32(b, opts->page_size);
  if (flags & CQL_QF_PAGING_STATE) {
    if (opts->paging_state_len > INT32_MAX)
      return cql__fail(err, CQL_ERR_MISUSE, "paging state too long");
    cql__buf_bytes(b, opts->paging_state, (int32_t)opts->paging_state_len);
  }
  if (flags & CQL_QF_SERIAL_CONSISTENCY)
    cql__buf_u16(b, consistency_wire(opts->serial_consistency, CQL_SERIAL));
  if (flags & CQL_QF_DEFAULT_TIMESTAMP) cql__buf_i64(b, opts->timestamp_us);
  return 0;
}

int cql__enc_query(cql_buf *b, const char *query, const cql_value *values, size_t n,
                   const cql_query_opts *opts, cql_error *err) {
  cql__buf_long_string(b, query, strlen(query));
  return enc_params(b, NULL, 0, values, n, opts, err);
}

int cql__enc_execute(cql_buf *b, const cql_prepared *p, const cql_value *values, size_t n,
                     const cql_query_opts *opts, cql_error *err) {
  if (n != p->nparams)
    return cql__fail(err, CQL_ERR_MISUSE, "statement expects %zu values, got %zu", p->nparams, n);
  cql__buf_short_bytes(b, p->id, p->id_len);
  /* Types array of the bind markers: the columns' types. */
  cql_type stack[32];
  cql_type *types = stack;
  if (n > 32) {
    types = cql__malloc(n * sizeof *types);
    if (!types) return cql__fail(err, CQL_ERR_NOMEM, "out of memory");
  }
  for (size_t i = 0; i < n; i++) types[i] = p->params[i].type;
  int rc = enc_params(b, types, n, values, n, opts, err);
  if (types != stack) cql__free(types);
  return rc;
}

int cql__enc_batch(cql_buf *b, cql_batch_type type, const cql_batch_stmt *stmts,
                   const cql_prepared *const *prepared, size_t n, const cql_query_opts *opts,
                   cql_error *err) {
  static const cql_query_opts none;
  if (!opts) opts = &none;
  if (n > 0xffff) return cql__fail(err, CQL_ERR_MISUSE, "too many statements in a batch: %zu", n);
  cql__buf_u8(b, (uint8_t)type);
  cql__buf_u16(b, (uint16_t)n);
  for (size_t i = 0; i < n; i++) {
    const cql_prepared *p = prepared ? prepared[i] : stmts[i].prepared;
    size_t nv = stmts[i].n_values;
    if (nv > 0xffff) return cql__fail(err, CQL_ERR_MISUSE, "too many values: %zu", nv);
    if (p) {
      if (nv != p->nparams)
        return cql__fail(err, CQL_ERR_MISUSE, "batch statement %zu expects %zu values, got %zu", i,
                         p->nparams, nv);
      cql__buf_u8(b, 1);
      cql__buf_short_bytes(b, p->id, p->id_len);
    } else if (stmts[i].query) {
      cql__buf_u8(b, 0);
      cql__buf_long_string(b, stmts[i].query, strlen(stmts[i].query));
    } else {
      return cql__fail(err, CQL_ERR_MISUSE, "batch statement %zu has no query", i);
    }
    cql__buf_u16(b, (uint16_t)nv);
    for (size_t k = 0; k < nv; k++) {
      const cql_type *t = p ? &p->params[k].type : NULL;
      if (cql__value_encode(b, &stmts[i].values[k], t, k, err) < 0) return -1;
    }
  }
  uint8_t flags = 0;
  if (opts->serial_consistency != CQL_CONSISTENCY_DEFAULT) flags |= CQL_QF_SERIAL_CONSISTENCY;
  if (opts->timestamp_us > 0) flags |= CQL_QF_DEFAULT_TIMESTAMP;
  cql__buf_u16(b, consistency_wire(opts->consistency, CQL_ONE));
  cql__buf_u8(b, flags);
  if (flags & CQL_QF_SERIAL_CONSISTENCY)
    cql__buf_u16(b, consistency_wire(opts->serial_consistency, CQL_SERIAL));
  if (flags & CQL_QF_DEFAULT_TIMESTAMP) cql__buf_i64(b, opts->timestamp_us);
  return 0;
}

/* ---- type descriptions -------------------------------------------------------------------- */

void cql__type_clear(cql_type *t) {
  for (uint16_t i = 0; i < t->nsub; i++) cql__type_clear(&t->sub[i]);
  cql__free(t->sub);
  t->sub = NULL;
  t->nsub = 0;
}

void cql__columns_free(cql_column *cols, size_t n) {
  if (!cols) return;
  for (size_t i = 0; i < n; i++) {
    cql__free(cols[i].name);
    cql__type_clear(&cols[i].type);
  }
  cql__free(cols);
}

static int type_subs(cql_rd *r, cql_type *t, size_t n, int depth, bool *oom) {
  /* Each sub-type takes at least 2 bytes: a hostile count cannot make us allocate more
     * than the frame could describe. */
  if (n > cql__rd_left(r) / 2) {
    r->bad = true;
    return -1;
  }
  if (n == 0) return 0;
  t->sub = cql__calloc(n, sizeof *t->sub);
  if (!t->sub) {
    *oom = true;
    return -1;
  }
  t->nsub = (uint16_t)n;
  for (size_t i = 0; i < n; i++)
    if (cql__type_read(r, &t->sub[i], depth + 1, oom) < 0) return -1;
  return 0;
}

int cql__type_read(cql_rd *r, cql_type *t, int depth, bool *oom) {
  memset(t, 0, sizeof *t);
  if (depth > CQL_MAX_TYPE_DEPTH) {
    r->bad = true;
    return -1;
  }
  t->id = cql__rd_u16(r);
  size_t n;
  switch (t->id) {
  case CQL_TYPE_CUSTOM: cql__rd_string(r, &n); break;
  case CQL_TYPE_LIST:
  case CQL_TYPE_SET: return type_subs(r, t, 1, depth, oom);
  case CQL_TYPE_MAP: return type_subs(r, t, 2, depth, oom);
  case CQL_TYPE_UDT: {
    cql__rd_string(r, &n); /* keyspace */
    cql__rd_string(r, &n); /* type name */
    size_t fields = cql__rd_u16(r);
    if (r->bad || fields > cql__rd_left(r) / 4) {
      r->bad = true;
      return -1;
    }
    t->sub = fields ? cql__calloc(fields, sizeof *t->sub) : NULL;
    if (fields && !t->sub) {
      *oom = true;
      return -1;
    }
    t->nsub = (uint16_t)fields;
    for (size_t i = 0; i < fields; i++) {
      cql__rd_string(r, &n); /* field name: not kept */
      if (cql__type_read(r, &t->sub[i], depth + 1, oom) < 0) return -1;
    }
    break;
  }
  case CQL_TYPE_TUPLE: return type_subs(r, t, cql__rd_u16(r), depth, oom);
  default:
    if (t->id > CQL_TYPE_TINYINT || t->id == 0x000A) {
      r->bad = true; /* unknown type id: we could not find the cell boundaries */
      return -1;
    }
    break;
  }
  return r->bad ? -1 : 0;
}

/* ---- responses ---------------------------------------------------------------------------- */

static int malformed(cql_error *err, const char *what) {
  return cql__fail(err, CQL_ERR_MALFORMED, "malformed frame: %s", what);
}

static int nomem(cql_error *err) { return cql__fail(err, CQL_ERR_NOMEM, "out of memory"); }

/* <flags><columns_count>[<paging_state>][<global_table_spec>?<col_spec_1>...<col_spec_n>]
 * `prepared_meta` adds <pk_count><pk_index...> and has no paging state. */
static int read_metadata(cql_rd *r, int32_t *flags_out, cql_column **cols_out, size_t *ncols_out,
                         const uint8_t **paging, size_t *paging_len, bool prepared_meta,
                         cql_error *err) {
  int32_t flags = cql__rd_i32(r);
  int32_t ncols = cql__rd_i32(r);
  if (r->bad || ncols < 0) return malformed(err, "bad column count");
  if (prepared_meta) {
    int32_t pk = cql__rd_i32(r);
    if (r->bad || pk < 0 || (size_t)pk > cql__rd_left(r) / 2)
      return malformed(err, "bad partition key count");
    cql__rd_raw(r, (size_t)pk * 2);
  } else if (flags & CQL_RF_HAS_MORE_PAGES) {
    int32_t n;
    const uint8_t *p = cql__rd_bytes(r, &n);
    if (r->bad) return malformed(err, "bad paging state");
    *paging = p;
    *paging_len = n > 0 ? (size_t)n : 0;
  }
  *flags_out = flags;
  *ncols_out = (size_t)ncols;
  if (flags & CQL_RF_NO_METADATA) return 0;
  size_t n;
  if (flags & CQL_RF_GLOBAL_TABLES_SPEC) {
    cql__rd_string(r, &n);
    cql__rd_string(r, &n);
  }
  /* A column spec takes at least 4 bytes (empty name, type id). */
  if (r->bad || (size_t)ncols > cql__rd_left(r) / 4)
    return malformed(err, "column count larger than the frame");
  if (ncols == 0) return 0;
  cql_column *cols = cql__calloc((size_t)ncols, sizeof *cols);
  if (!cols) return nomem(err);
  *cols_out = cols;
  bool oom = false;
  for (int32_t i = 0; i < ncols; i++) {
    if (!(flags & CQL_RF_GLOBAL_TABLES_SPEC)) {
      cql__rd_string(r, &n);
      cql__rd_string(r, &n);
    }
    cols[i].name = cql__rd_strdup(r, &oom);
    if (oom) return nomem(err);
    if (cql__type_read(r, &cols[i].type, 0, &oom) < 0)
      return oom ? nomem(err) : malformed(err, "bad column type");
  }
  return 0;
}

static int read_rows(cql_rd *r, cql_result *res, cql_error *err) {
  if (read_metadata(r, &res->flags, &res->cols, &res->ncols, &res->paging_state, &res->paging_len,
                    false, err) < 0)
    return -1;
  int32_t nrows = cql__rd_i32(r);
  if (r->bad || nrows < 0) return malformed(err, "bad row count");
  res->nrows = (size_t)nrows;
  if (res->ncols == 0 || nrows == 0) return 0;
  /* Every cell takes at least its 4-byte length. */
  if ((size_t)nrows > cql__rd_left(r) / 4 / res->ncols)
    return malformed(err, "row count larger than the frame");
  res->cells = cql__calloc((size_t)nrows * res->ncols, sizeof *res->cells);
  if (!res->cells) return nomem(err);
  for (size_t i = 0; i < (size_t)nrows * res->ncols; i++) {
    int32_t n;
    const uint8_t *p = cql__rd_bytes(r, &n);
    if (r->bad) return malformed(err, "cell larger than the frame");
    res->cells[i].len = n;
    res->cells[i].off = p ? (uint32_t)(p - res->body) : 0;
  }
  return 0;
}

static int read_prepared(cql_rd *r, cql_result *res, cql_error *err) {
  cql_prepared *p = cql__calloc(1, sizeof *p);
  if (!p) return nomem(err);
  res->prepared = p;
  size_t n;
  const uint8_t *id = cql__rd_short_bytes(r, &n);
  if (!id) return malformed(err, "bad prepared id");
  p->id = cql__malloc(n ? n : 1);
  if (!p->id) return nomem(err);
  memcpy(p->id, id, n);
  p->id_len = n;
  int32_t flags;
  const uint8_t *unused_ps = NULL;
  size_t unused_len = 0;
  if (read_metadata(r, &flags, &p->params, &p->nparams, &unused_ps, &unused_len, true, err) < 0)
    return -1;
  if (p->nparams > 0 && !p->params) /* bind markers without metadata: cannot bind */
    return malformed(err, "prepared statement without bind metadata");
  /* The result metadata follows; we always ask for metadata with each EXECUTE, so it is
     * read (to validate it) and dropped. */
  int32_t rflags;
  cql_column *rcols = NULL;
  size_t nr = 0;
  int rc = read_metadata(r, &rflags, &rcols, &nr, &unused_ps, &unused_len, false, err);
  cql__columns_free(rcols, nr);
  return rc;
}

static int read_schema_change(cql_rd *r, cql_result *res, cql_error *err) {
  bool oom = false;
  res->change_type = cql__rd_strdup(r, &oom);
  res->change_target = cql__rd_strdup(r, &oom);
  res->keyspace = cql__rd_strdup(r, &oom);
  if (!oom && !r->bad && res->change_target && strcmp(res->change_target, "KEYSPACE") != 0)
    res->change_name = cql__rd_strdup(r, &oom);
  /* FUNCTION/AGGREGATE also carry argument types: not needed, and ignorable by the spec. */
  if (oom) return nomem(err);
  return r->bad ? malformed(err, "bad schema change") : 0;
}

static int read_result(cql_rd *r, cql_result *res, cql_error *err) {
  int32_t kind = cql__rd_i32(r);
  if (r->bad) return malformed(err, "missing result kind");
  res->kind = (cql_result_kind)kind;
  bool oom = false;
  switch (kind) {
  case CQL_RESULT_VOID: return 0;
  case CQL_RESULT_ROWS: return read_rows(r, res, err);
  case CQL_RESULT_SET_KEYSPACE:
    res->keyspace = cql__rd_strdup(r, &oom);
    if (oom) return nomem(err);
    return r->bad ? malformed(err, "bad keyspace") : 0;
  case CQL_RESULT_PREPARED: return read_prepared(r, res, err);
  case CQL_RESULT_SCHEMA_CHANGE: return read_schema_change(r, res, err);
  default: return malformed(err, "unknown result kind");
  }
}

static int read_warnings(cql_rd *r, cql_result *res, cql_error *err) {
  size_t n = cql__rd_u16(r);
  if (r->bad || n > cql__rd_left(r) / 2) return malformed(err, "bad warning list");
  if (n == 0) return 0;
  res->warnings = cql__calloc(n, sizeof *res->warnings);
  if (!res->warnings) return nomem(err);
  bool oom = false;
  for (size_t i = 0; i < n; i++) {
    res->warnings[i] = cql__rd_strdup(r, &oom);
    if (oom) return nomem(err);
    if (r->bad) return malformed(err, "bad warning");
    res->nwarnings++;
  }
  return 0;
}

static void skip_bytes_map(cql_rd *r) {
  size_t n = cql__rd_u16(r), len;
  int32_t bn;
  for (size_t i = 0; i < n && !r->bad; i++) {
    cql__rd_string(r, &len);
    cql__rd_bytes(r, &bn);
  }
}

static int decode_result(const cql_frame *f, cql_response *out, cql_error *err) {
  cql_result *res = cql__calloc(1, sizeof *res);
  if (!res) return nomem(err);
  out->result = res;
  res->body = cql__malloc(f->body_len ? f->body_len : 1);
  if (!res->body) return nomem(err);
  memcpy(res->body, f->body, f->body_len);
  res->body_len = f->body_len;
  cql_rd r;
  cql__rd_init(&r, res->body, res->body_len);
  if (f->flags & CQL_FLAG_TRACING) cql__rd_raw(&r, 16);
  if ((f->flags & CQL_FLAG_WARNING) && read_warnings(&r, res, err) < 0) return -1;
  if (f->flags & CQL_FLAG_CUSTOM_PAYLOAD) skip_bytes_map(&r);
  if (r.bad) return malformed(err, "bad frame prefix");
  return read_result(&r, res, err);
}

static int read_inet(cql_rd *r, cql_event *ev, cql_error *err) {
  uint8_t n = cql__rd_u8(r);
  const uint8_t *a = cql__rd_raw(r, n);
  int32_t port = cql__rd_i32(r);
  if (r->bad || (n != 4 && n != 16)) return malformed(err, "bad inet");
  char text[64];
  if (n == 4)
    snprintf(text, sizeof text, "%u.%u.%u.%u", a[0], a[1], a[2], a[3]);
  else
    snprintf(text, sizeof text,
             "%02x%02x:%02x%02x:%02x%02x:%02x%02x:%02x%02x:%02x%02x:%02x%02x:%02x%02x", a[0], a[1],
             a[2], a[3], a[4], a[5], a[6], a[7], a[8], a[9], a[10], a[11], a[12], a[13], a[14],
             a[15]);
  ev->address = cql__strdup(text);
  ev->port = port;
  return ev->address ? 0 : nomem(err);
}

static int decode_event(cql_rd *r, cql_response *out, cql_error *err) {
  cql_event *ev = cql__calloc(1, sizeof *ev);
  if (!ev) return nomem(err);
  out->event = ev;
  bool oom = false;
  ev->type = cql__rd_strdup(r, &oom);
  ev->change = cql__rd_strdup(r, &oom);
  if (oom) return nomem(err);
  if (r->bad) return malformed(err, "bad event");
  if (strcmp(ev->type, "SCHEMA_CHANGE") != 0) return read_inet(r, ev, err);
  ev->target = cql__rd_strdup(r, &oom);
  ev->keyspace = cql__rd_strdup(r, &oom);
  if (!oom && ev->target && strcmp(ev->target, "KEYSPACE") != 0) ev->name = cql__rd_strdup(r, &oom);
  if (oom) return nomem(err);
  return r->bad ? malformed(err, "bad schema change event") : 0;
}

static int decode_supported(cql_rd *r, cql_response *out, cql_error *err) {
  json_t *obj = json_object();
  if (!obj) return nomem(err);
  out->supported = obj;
  size_t n = cql__rd_u16(r);
  for (size_t i = 0; i < n && !r->bad; i++) {
    size_t kl, vl;
    const char *k = cql__rd_string(r, &kl);
    size_t nv = cql__rd_u16(r);
    if (r->bad || nv > cql__rd_left(r) / 2) return malformed(err, "bad supported map");
    json_t *arr = json_array();
    if (!arr || json_object_setn_new(obj, k, kl, arr) < 0) return nomem(err);
    for (size_t j = 0; j < nv; j++) {
      const char *v = cql__rd_string(r, &vl);
      if (!v) return malformed(err, "bad supported value");
      if (json_array_append_new(arr, json_stringn(v, vl)) < 0) return nomem(err);
    }
  }
  return r->bad ? malformed(err, "bad supported map") : 0;
}

void cql_event_free(cql_event *ev) {
  if (!ev) return;
  cql__free(ev->type);
  cql__free(ev->change);
  cql__free(ev->address);
  cql__free(ev->target);
  cql__free(ev->keyspace);
  cql__free(ev->name);
  cql__free(ev);
}

void cql_prepared_free(cql_prepared *p) {
  if (!p) return;
  cql__free(p->id);
  cql__columns_free(p->params, p->nparams);
  cql__free(p->query);
  cql__free(p);
}

void cql_result_free(cql_result *r) {
  if (!r) return;
  cql__free(r->body);
  cql__columns_free(r->cols, r->ncols);
  cql__free(r->cells);
  cql__free(r->keyspace);
  cql__free(r->change_type);
  cql__free(r->change_target);
  cql__free(r->change_name);
  cql_prepared_free(r->prepared);
  for (size_t i = 0; i < r->nwarnings; i++) cql__free(r->warnings[i]);
  cql__free(r->warnings);
  cql__free(r);
}

void cql__response_clear(cql_response *r) {
  cql_result_free(r->result);
  cql_event_free(r->event);
  cql__free(r->authenticator);
  json_decref(r->supported);
  memset(r, 0, sizeof *r);
}

int cql__response_decode(const cql_frame *f, cql_response *out, cql_error *server_error,
                         cql_error *err) {
  memset(out, 0, sizeof *out);
  out->opcode = f->opcode;
  out->stream = f->stream;
  if (f->flags & CQL_FLAG_COMPRESSION)
    return cql__fail(err, CQL_ERR_PROTOCOL, "compressed frame received but not negotiated");
  cql_rd r;
  cql__rd_init(&r, f->body, f->body_len);
  int rc = 0;
  bool oom = false;
  switch (f->opcode) {
  case CQL_OP_ERROR: {
    /* Errors carry the tracing id / warnings prefix too; skip them before the code. */
    if (f->flags & CQL_FLAG_TRACING) cql__rd_raw(&r, 16);
    if (f->flags & CQL_FLAG_WARNING) {
      size_t n = cql__rd_u16(&r), l;
      for (size_t i = 0; i < n && !r.bad; i++) cql__rd_string(&r, &l);
    }
    if (f->flags & CQL_FLAG_CUSTOM_PAYLOAD) skip_bytes_map(&r);
    if (r.bad) return malformed(err, "bad error prefix");
    cql_error tmp = {0};
    if (cql__error_decode(r.p + r.pos, cql__rd_left(&r), &tmp) < 0) {
      cql__error_move(err, &tmp);
      return -1;
    }
    cql__error_move(server_error, &tmp);
    return 0;
  }
  case CQL_OP_READY:
  case CQL_OP_AUTH_SUCCESS:
  case CQL_OP_AUTH_CHALLENGE: return 0; /* tokens are not needed by SASL PLAIN */
  case CQL_OP_AUTHENTICATE:
    out->authenticator = cql__rd_strdup(&r, &oom);
    if (oom) return nomem(err);
    return r.bad ? malformed(err, "bad authenticator") : 0;
  case CQL_OP_SUPPORTED: rc = decode_supported(&r, out, err); break;
  case CQL_OP_RESULT: rc = decode_result(f, out, err); break;
  case CQL_OP_EVENT: rc = decode_event(&r, out, err); break;
  default: return cql__fail(err, CQL_ERR_PROTOCOL, "unexpected opcode 0x%02x", f->opcode);
  }
  if (rc < 0) cql__response_clear(out);
  return rc;
}

/* ---- ERROR bodies ------------------------------------------------------------------------- */

static char *join_string_list(cql_rd *r, bool *oom) {
  size_t n = cql__rd_u16(r);
  cql_buf b;
  cql__buf_init(&b);
  for (size_t i = 0; i < n && !r->bad; i++) {
    size_t l;
    const char *s = cql__rd_string(r, &l);
    if (i > 0) cql__buf_put(&b, ", ", 2);
    cql__buf_put(&b, s, l);
  }
  cql__buf_u8(&b, 0);
  if (b.oom || r->bad) {
    *oom = b.oom;
    cql__buf_free(&b);
    return NULL;
  }
  return (char *)b.data;
}

static void read_error_fields(cql_rd *r, cql_error *e, bool *oom) {
  switch (e->code) {
  case CQL_SERVER_UNAVAILABLE:
    e->consistency = (cql_consistency)(cql__rd_u16(r) + 1);
    e->required = cql__rd_i32(r);
    e->alive = cql__rd_i32(r);
    break;
  case CQL_SERVER_WRITE_TIMEOUT:
    e->consistency = (cql_consistency)(cql__rd_u16(r) + 1);
    e->received = cql__rd_i32(r);
    e->block_for = cql__rd_i32(r);
    e->write_type = cql__rd_strdup(r, oom);
    break;
  case CQL_SERVER_READ_TIMEOUT:
    e->consistency = (cql_consistency)(cql__rd_u16(r) + 1);
    e->received = cql__rd_i32(r);
    e->block_for = cql__rd_i32(r);
    e->data_present = cql__rd_u8(r) != 0;
    break;
  case CQL_SERVER_READ_FAILURE:
    e->consistency = (cql_consistency)(cql__rd_u16(r) + 1);
    e->received = cql__rd_i32(r);
    e->block_for = cql__rd_i32(r);
    e->num_failures = cql__rd_i32(r);
    e->data_present = cql__rd_u8(r) != 0;
    break;
  case CQL_SERVER_WRITE_FAILURE:
    e->consistency = (cql_consistency)(cql__rd_u16(r) + 1);
    e->received = cql__rd_i32(r);
    e->block_for = cql__rd_i32(r);
    e->num_failures = cql__rd_i32(r);
    e->write_type = cql__rd_strdup(r, oom);
    break;
  case CQL_SERVER_FUNCTION_FAILURE:
    e->keyspace = cql__rd_strdup(r, oom);
    e->function = cql__rd_strdup(r, oom);
    e->arg_types = join_string_list(r, oom);
    break;
  case CQL_SERVER_ALREADY_EXISTS:
    e->keyspace = cql__rd_strdup(r, oom);
    e->table = cql__rd_strdup(r, oom);
    break;
  case CQL_SERVER_UNPREPARED: {
    size_t n;
    const uint8_t *id = cql__rd_short_bytes(r, &n);
    if (id) {
      e->unprepared_id = cql__malloc(n ? n : 1);
      if (!e->unprepared_id)
        *oom = true;
      else
        memcpy(e->unprepared_id, id, n);
      e->unprepared_id_len = n;
    }
    break;
  }
  default: break;
  }
}

int cql__error_decode(const uint8_t *body, size_t len, cql_error *e) {
  cql_error_clear(e);
  cql_rd r;
  cql__rd_init(&r, body, len);
  int32_t code = cql__rd_i32(&r);
  size_t ml;
  const char *msg = cql__rd_string(&r, &ml);
  if (r.bad) return malformed(e, "bad error body");
  e->kind = CQL_ERR_SERVER;
  e->code = code;
  bool oom = false;
  read_error_fields(&r, e, &oom);
  if (oom) {
    cql_error_clear(e);
    return nomem(e);
  }
  if (r.bad) {
    cql_error_clear(e);
    return malformed(e, "bad error fields");
  }
  e->server_message = cql__strndup(msg, ml);
  if (!e->server_message) {
    cql_error_clear(e);
    return nomem(e);
  }
  /* "[Invalid] unconfigured table foo", the way lua-cassandra phrased server errors. */
  size_t need = strlen(cql_server_code_name(code)) + ml + 4;
  e->message = cql__malloc(need);
  if (!e->message) {
    cql_error_clear(e);
    return nomem(e);
  }
  snprintf(e->message, need, "[%s] %s", cql_server_code_name(code), e->server_message);
  return 0;
}
