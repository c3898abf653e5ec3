/*
 * value.c — CQL values: binding (cql_value and JSON → wire bytes for a column type) and
 * reading (result cells → C types and JSON). Pure, like frame.c.
 */
#include "cql_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- uuids -------------------------------------------------------------------------------- */

static int hexval(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

int cql_uuid_parse(const char *s, size_t len, uint8_t out[16]) {
  if (!s || (len != 32 && len != 36)) return -1;
  size_t k = 0; /* nibbles written */
  for (size_t i = 0; i < len; i++) {
    if (len == 36 && (i == 8 || i == 13 || i == 18 || i == 23)) {
      if (s[i] != '-') return -1;
      continue;
    }
    int h = hexval(s[i]);
    if (h < 0 || k >= 32) return -1;
    if (k % 2 == 0)
      out[k / 2] = (uint8_t)(h << 4);
    else
      out[k / 2] |= (uint8_t)h;
    k++;
  }
  return k == 32 ? 0 : -1;
}

void cql_uuid_format(const uint8_t u[16], char out[37]) {
  static const char hex[] = "0123456789abcdef";
  size_t o = 0;
  for (int i = 0; i < 16; i++) {
    if (i == 4 || i == 6 || i == 8 || i == 10) out[o++] = '-';
    out[o++] = hex[u[i] >> 4];
    out[o++] = hex[u[i] & 15];
  }
  out[o] = '\0';
}

/* ---- binding ------------------------------------------------------------------------------ */

static const char *type_name(uint16_t id) {
  switch (id) {
  case CQL_TYPE_ASCII: return "ascii";
  case CQL_TYPE_BIGINT: return "bigint";
  case CQL_TYPE_BLOB: return "blob";
  case CQL_TYPE_BOOLEAN: return "boolean";
  case CQL_TYPE_COUNTER: return "counter";
  case CQL_TYPE_DOUBLE: return "double";
  case CQL_TYPE_FLOAT: return "float";
  case CQL_TYPE_INT: return "int";
  case CQL_TYPE_TIMESTAMP: return "timestamp";
  case CQL_TYPE_UUID: return "uuid";
  case CQL_TYPE_VARCHAR: return "text";
  case CQL_TYPE_TIMEUUID: return "timeuuid";
  case CQL_TYPE_SMALLINT: return "smallint";
  case CQL_TYPE_TINYINT: return "tinyint";
  case CQL_TYPE_LIST: return "list";
  case CQL_TYPE_MAP: return "map";
  case CQL_TYPE_SET: return "set";
  default: return "unsupported type";
  }
}

static int mismatch(cql_error *err, size_t index, const char *what, uint16_t type) {
  return cql__fail(err, CQL_ERR_MISUSE, "value %zu: cannot bind %s to a %s column", index, what,
                   type_name(type));
}

/* Length-prefixed [value] helpers: reserve the 4-byte length, write, patch. */
static size_t value_begin(cql_buf *b) {
  size_t at = b->len;
  cql__buf_i32(b, 0);
  return at;
}

static void value_end(cql_buf *b, size_t at) {
  size_t n = b->len - at - 4;
  if (n > INT32_MAX) {
    b->oom = true;
    return;
  }
  cql__buf_patch_i32(b, at, (int32_t)n);
}

static int enc_int(cql_buf *b, int64_t v, uint16_t type, size_t index, cql_error *err) {
  switch (type) {
  case CQL_TYPE_INT:
    if (v < INT32_MIN || v > INT32_MAX)
      return cql__fail(err, CQL_ERR_MISUSE, "value %zu: %lld out of range for int", index,
                       (long long)v);
    cql__buf_i32(b, 4);
    cql__buf_i32(b, (int32_t)v);
    return 0;
  case CQL_TYPE_BIGINT:
  case CQL_TYPE_COUNTER:
  case CQL_TYPE_TIMESTAMP:
    cql__buf_i32(b, 8);
    cql__buf_i64(b, v);
    return 0;
  case CQL_TYPE_SMALLINT:
    if (v < INT16_MIN || v > INT16_MAX)
      return cql__fail(err, CQL_ERR_MISUSE, "value %zu: %lld out of range for smallint", index,
                       (long long)v);
    cql__buf_i32(b, 2);
    cql__buf_u16(b, (uint16_t)(int16_t)v);
    return 0;
  case CQL_TYPE_TINYINT:
    if (v < INT8_MIN || v > INT8_MAX)
      return cql__fail(err, CQL_ERR_MISUSE, "value %zu: %lld out of range for tinyint", index,
                       (long long)v);
    cql__buf_i32(b, 1);
    cql__buf_u8(b, (uint8_t)(int8_t)v);
    return 0;
  case CQL_TYPE_DOUBLE: {
    double d = (double)v;
    uint64_t u;
    memcpy(&u, &d, 8);
    cql__buf_i32(b, 8);
    cql__buf_i64(b, (int64_t)u);
    return 0;
  }
  default: return mismatch(err, index, "an integer", type);
  }
}

static int enc_double(cql_buf *b, double d, uint16_t type, size_t index, cql_error *err) {
  if (type == CQL_TYPE_FLOAT) {
    float f = (float)d;
    uint32_t u;
    memcpy(&u, &f, 4);
    cql__buf_i32(b, 4);
    cql__buf_i32(b, (int32_t)u);
    return 0;
  }
  if (type != CQL_TYPE_DOUBLE) return mismatch(err, index, "a real number", type);
  uint64_t u;
  memcpy(&u, &d, 8);
  cql__buf_i32(b, 8);
  cql__buf_i64(b, (int64_t)u);
  return 0;
}

static int enc_text(cql_buf *b, const char *s, size_t len, uint16_t type, size_t index,
                    cql_error *err) {
  uint8_t u[16];
  switch (type) {
  case CQL_TYPE_VARCHAR:
  case CQL_TYPE_ASCII:
  case CQL_TYPE_BLOB:
    if (len > INT32_MAX) return cql__fail(err, CQL_ERR_MISUSE, "value %zu: text too long", index);
    cql__buf_bytes(b, (const uint8_t *)s, (int32_t)len);
    return 0;
  case CQL_TYPE_UUID:
  case CQL_TYPE_TIMEUUID:
    if (cql_uuid_parse(s, len, u) < 0)
      return cql__fail(err, CQL_ERR_MISUSE, "value %zu: \"%.*s\" is not a uuid", index,
                       (int)(len > 64 ? 64 : len), s ? s : "");
    cql__buf_i32(b, 16);
    cql__buf_put(b, u, 16);
    return 0;
  default: return mismatch(err, index, "a string", type);
  }
}

static bool is_collection(uint16_t id) { return id == CQL_TYPE_LIST || id == CQL_TYPE_SET; }

static int enc_text_list(cql_buf *b, const cql_value *v, const cql_type *t, size_t index,
                         cql_error *err) {
  uint16_t elem = t && t->nsub == 1 ? t->sub[0].id : CQL_TYPE_VARCHAR;
  if (t && !is_collection(t->id)) return mismatch(err, index, "a list", t->id);
  if (v->u.list.count > INT32_MAX)
    return cql__fail(err, CQL_ERR_MISUSE, "value %zu: list too long", index);
  size_t at = value_begin(b);
  cql__buf_i32(b, (int32_t)v->u.list.count);
  for (size_t i = 0; i < v->u.list.count; i++) {
    const char *s = v->u.list.items[i];
    if (!s) return cql__fail(err, CQL_ERR_MISUSE, "value %zu: NULL list element", index);
    if (enc_text(b, s, strlen(s), elem, index, err) < 0) return -1;
  }
  value_end(b, at);
  return 0;
}

static int enc_text_map(cql_buf *b, const cql_value *v, const cql_type *t, size_t index,
                        cql_error *err) {
  uint16_t kt = CQL_TYPE_VARCHAR, vt = CQL_TYPE_VARCHAR;
  if (t) {
    if (t->id != CQL_TYPE_MAP || t->nsub != 2) return mismatch(err, index, "a map", t->id);
    kt = t->sub[0].id;
    vt = t->sub[1].id;
  }
  if (v->u.map.count > INT32_MAX)
    return cql__fail(err, CQL_ERR_MISUSE, "value %zu: map too long", index);
  size_t at = value_begin(b);
  cql__buf_i32(b, (int32_t)v->u.map.count);
  for (size_t i = 0; i < v->u.map.count; i++) {
    const char *k = v->u.map.keys[i], *s = v->u.map.vals[i];
    if (!k || !s) return cql__fail(err, CQL_ERR_MISUSE, "value %zu: NULL map entry", index);
    if (enc_text(b, k, strlen(k), kt, index, err) < 0 ||
        enc_text(b, s, strlen(s), vt, index, err) < 0)
      return -1;
  }
  value_end(b, at);
  return 0;
}

/* JSON → wire, driven by the column type (t may be NULL: natural mapping). */
static int enc_json(cql_buf *b, const json_t *j, const cql_type *t, size_t index, int depth,
                    cql_error *err);

static int enc_json_array(cql_buf *b, const json_t *j, const cql_type *t, size_t index, int depth,
                          cql_error *err) {
  static const cql_type text = {.id = CQL_TYPE_VARCHAR};
  if (t && !is_collection(t->id)) return mismatch(err, index, "an array", t->id);
  const cql_type *elem = t && t->nsub == 1 ? &t->sub[0] : &text;
  size_t at = value_begin(b);
  cql__buf_i32(b, (int32_t)json_array_size(j));
  for (size_t i = 0; i < json_array_size(j); i++) {
    const json_t *e = json_array_get(j, i);
    if (json_is_null(e))
      return cql__fail(err, CQL_ERR_MISUSE, "value %zu: null inside a collection", index);
    if (enc_json(b, e, elem, index, depth + 1, err) < 0) return -1;
  }
  value_end(b, at);
  return 0;
}

static int enc_json_object(cql_buf *b, const json_t *j, const cql_type *t, size_t index, int depth,
                           cql_error *err) {
  static const cql_type text = {.id = CQL_TYPE_VARCHAR};
  if (t && (t->id != CQL_TYPE_MAP || t->nsub != 2)) return mismatch(err, index, "an object", t->id);
  const cql_type *kt = t ? &t->sub[0] : &text, *vt = t ? &t->sub[1] : &text;
  size_t at = value_begin(b);
  cql__buf_i32(b, (int32_t)json_object_size(j));
  const char *key;
  const json_t *val;
  json_object_foreach((json_t *)j, key, val) {
    if (json_is_null(val))
      return cql__fail(err, CQL_ERR_MISUSE, "value %zu: null inside a map", index);
    if (enc_text(b, key, strlen(key), kt->id, index, err) < 0 ||
        enc_json(b, val, vt, index, depth + 1, err) < 0)
      return -1;
  }
  value_end(b, at);
  return 0;
}

static int enc_json(cql_buf *b, const json_t *j, const cql_type *t, size_t index, int depth,
                    cql_error *err) {
  if (depth > CQL_MAX_TYPE_DEPTH)
    return cql__fail(err, CQL_ERR_MISUSE, "value %zu: nested too deeply", index);
  switch (json_typeof(j)) {
  case JSON_NULL: cql__buf_i32(b, -1); return 0;
  case JSON_TRUE:
  case JSON_FALSE:
    if (t && t->id != CQL_TYPE_BOOLEAN) return mismatch(err, index, "a boolean", t->id);
    cql__buf_i32(b, 1);
    cql__buf_u8(b, json_is_true(j) ? 1 : 0);
    return 0;
  case JSON_INTEGER:
    return enc_int(b, json_integer_value(j), t ? t->id : CQL_TYPE_BIGINT, index, err);
  case JSON_REAL: return enc_double(b, json_real_value(j), t ? t->id : CQL_TYPE_DOUBLE, index, err);
  case JSON_STRING:
    return enc_text(b, json_string_value(j), json_string_length(j), t ? t->id : CQL_TYPE_VARCHAR,
                    index, err);
  case JSON_ARRAY: return enc_json_array(b, j, t, index, depth, err);
  case JSON_OBJECT: return enc_json_object(b, j, t, index, depth, err);
  }
  return mismatch(err, index, "this JSON value", t ? t->id : 0);
}

int cql__value_encode(cql_buf *b, const cql_value *v, const cql_type *t, size_t index,
                      cql_error *err) {
  uint16_t type = t ? t->id : (uint16_t)v->type;
  if (!t && v->type == CQL_TYPE_AUTO && v->kind != CQL_VAL_JSON && v->kind != CQL_VAL_NULL &&
      v->kind != CQL_VAL_UNSET)
    return cql__fail(err, CQL_ERR_MISUSE, "value %zu: no type given and none known", index);
  switch (v->kind) {
  case CQL_VAL_NULL: cql__buf_i32(b, -1); return 0;
  case CQL_VAL_UNSET: cql__buf_i32(b, -2); return 0;
  case CQL_VAL_BOOL:
    if (type != CQL_TYPE_BOOLEAN) return mismatch(err, index, "a boolean", type);
    cql__buf_i32(b, 1);
    cql__buf_u8(b, v->u.b ? 1 : 0);
    return 0;
  case CQL_VAL_INT: return enc_int(b, v->u.i, type, index, err);
  case CQL_VAL_DOUBLE: return enc_double(b, v->u.d, type, index, err);
  case CQL_VAL_TEXT: return enc_text(b, v->u.s.ptr, v->u.s.len, type, index, err);
  case CQL_VAL_BLOB:
    if (v->u.s.len > INT32_MAX)
      return cql__fail(err, CQL_ERR_MISUSE, "value %zu: blob too long", index);
    cql__buf_bytes(b, (const uint8_t *)v->u.s.ptr, (int32_t)v->u.s.len);
    return 0;
  case CQL_VAL_UUID:
    if (type != CQL_TYPE_UUID && type != CQL_TYPE_TIMEUUID)
      return mismatch(err, index, "a uuid", type);
    cql__buf_i32(b, 16);
    cql__buf_put(b, v->u.uuid, 16);
    return 0;
  case CQL_VAL_TEXT_LIST: return enc_text_list(b, v, t, index, err);
  case CQL_VAL_TEXT_MAP: return enc_text_map(b, v, t, index, err);
  case CQL_VAL_JSON:
    if (!v->u.json) {
      cql__buf_i32(b, -1);
      return 0;
    }
    return enc_json(b, v->u.json, t, index, 0, err);
  }
  return cql__fail(err, CQL_ERR_MISUSE, "value %zu: unknown value kind", index);
}

/* ---- reading cells ------------------------------------------------------------------------ */

static int64_t be_int(const uint8_t *p, size_t n) {
  /* Sign-extend a big-endian two's complement integer of n (1..8) bytes. */
  uint64_t u = (p[0] & 0x80) ? UINT64_MAX : 0;
  for (size_t i = 0; i < n; i++) u = (u << 8) | p[i];
  return (int64_t)u;
}

static json_t *hex_json(const uint8_t *p, size_t len) {
  static const char hex[] = "0123456789abcdef";
  if (len > (SIZE_MAX - 3) / 2) return NULL;
  char *s = cql__malloc(len * 2 + 3);
  if (!s) return NULL;
  s[0] = '0';
  s[1] = 'x';
  for (size_t i = 0; i < len; i++) {
    s[2 + 2 * i] = hex[p[i] >> 4];
    s[3 + 2 * i] = hex[p[i] & 15];
  }
  json_t *j = json_stringn(s, len * 2 + 2);
  cql__free(s);
  return j;
}

static json_t *inet_json(const uint8_t *p, size_t len) {
  char text[64];
  if (len == 4) {
    snprintf(text, sizeof text, "%u.%u.%u.%u", p[0], p[1], p[2], p[3]);
    return json_string(text);
  }
  if (len == 16) {
    size_t o = 0;
    for (int i = 0; i < 16; i += 2)
      o += (size_t)snprintf(text + o, sizeof text - o, "%s%x", i ? ":" : "",
                            (unsigned)(p[i] << 8 | p[i + 1]));
    return json_string(text);
  }
  return NULL;
}

static json_t *collection_json(const uint8_t *p, size_t len, const cql_type *t, int depth) {
  cql_rd r;
  cql__rd_init(&r, p, len);
  int32_t n = cql__rd_i32(&r);
  bool map = t->id == CQL_TYPE_MAP;
  if (r.bad || n < 0 || t->nsub != (map ? 2 : 1) || (size_t)n > cql__rd_left(&r) / (map ? 8 : 4))
    return NULL; /* a hostile count cannot make us loop past the cell */
  json_t *out = map ? json_object() : json_array();
  for (int32_t i = 0; out && i < n; i++) {
    int32_t kl, vl;
    const uint8_t *k = cql__rd_bytes(&r, &kl);
    if (r.bad) goto fail;
    json_t *kj = k ? cql__cell_to_json(k, (size_t)kl, &t->sub[0], depth + 1) : json_null();
    if (!kj) goto fail;
    if (!map) {
      if (json_array_append_new(out, kj) < 0) goto fail;
      continue;
    }
    const uint8_t *v = cql__rd_bytes(&r, &vl);
    json_t *vj = r.bad ? NULL
                 : v   ? cql__cell_to_json(v, (size_t)vl, &t->sub[1], depth + 1)
                       : json_null();
    const char *key = json_is_string(kj) ? json_string_value(kj) : NULL;
    char num[32];
    if (!key && json_is_integer(kj)) {
      snprintf(num, sizeof num, "%lld", (long long)json_integer_value(kj));
      key = num;
    }
    int rc = (vj && key) ? json_object_set_new(out, key, vj) : (json_decref(vj), -1);
    json_decref(kj);
    if (rc < 0) goto fail;
  }
  return out;
fail:
  json_decref(out);
  return NULL;
}

json_t *cql__cell_to_json(const uint8_t *p, size_t len, const cql_type *t, int depth) {
  if (depth > CQL_MAX_TYPE_DEPTH) return NULL;
  char u[37];
  switch (t->id) {
  case CQL_TYPE_VARCHAR:
  case CQL_TYPE_ASCII: return json_stringn((const char *)p, len); /* NULL when not valid UTF-8 */
  case CQL_TYPE_INT:
  case CQL_TYPE_BIGINT:
  case CQL_TYPE_COUNTER:
  case CQL_TYPE_TIMESTAMP:
  case CQL_TYPE_SMALLINT:
  case CQL_TYPE_TINYINT: {
    size_t want = t->id == CQL_TYPE_INT        ? 4
                  : t->id == CQL_TYPE_SMALLINT ? 2
                  : t->id == CQL_TYPE_TINYINT  ? 1
                                               : 8;
    if (len == 0) return json_null(); /* legacy "empty" value */
    return len == want ? json_integer(be_int(p, len)) : NULL;
  }
  case CQL_TYPE_BOOLEAN:
    if (len == 0) return json_null();
    return len == 1 ? json_boolean(p[0] != 0) : NULL;
  case CQL_TYPE_UUID:
  case CQL_TYPE_TIMEUUID:
    if (len == 0) return json_null();
    if (len != 16) return NULL;
    cql_uuid_format(p, u);
    return json_string(u);
  case CQL_TYPE_DOUBLE:
  case CQL_TYPE_FLOAT: {
    if (len == 8 && t->id == CQL_TYPE_DOUBLE) {
      uint64_t bits = (uint64_t)be_int(p, 8);
      double d;
      memcpy(&d, &bits, 8);
      return json_real(d);
    }
    if (len == 4 && t->id == CQL_TYPE_FLOAT) {
      uint32_t bits = (uint32_t)be_int(p, 4);
      float f;
      memcpy(&f, &bits, 4);
      return json_real(f);
    }
    return len == 0 ? json_null() : NULL;
  }
  case CQL_TYPE_INET: return inet_json(p, len);
  case CQL_TYPE_LIST:
  case CQL_TYPE_SET:
  case CQL_TYPE_MAP: return collection_json(p, len, t, depth);
  default: return hex_json(p, len);
  }
}

/* ---- result accessors --------------------------------------------------------------------- */

cql_result_kind cql_result_kind_of(const cql_result *r) { return r ? r->kind : CQL_RESULT_VOID; }

size_t cql_result_row_count(const cql_result *r) {
  return r && r->kind == CQL_RESULT_ROWS ? r->nrows : 0;
}

size_t cql_result_column_count(const cql_result *r) {
  return r && r->kind == CQL_RESULT_ROWS ? r->ncols : 0;
}

static const cql_column *column(const cql_result *r, size_t col) {
  if (!r || !r->cols || col >= r->ncols) return NULL;
  return &r->cols[col];
}

const char *cql_result_column_name(const cql_result *r, size_t col) {
  const cql_column *c = column(r, col);
  return c ? c->name : NULL;
}

int cql_result_column_type(const cql_result *r, size_t col) {
  const cql_column *c = column(r, col);
  return c ? c->type.id : -1;
}

int cql_result_column_subtype(const cql_result *r, size_t col, int which) {
  const cql_column *c = column(r, col);
  if (!c || which < 0 || which >= c->type.nsub) return -1;
  return c->type.sub[which].id;
}

int cql_result_column_index(const cql_result *r, const char *name) {
  if (!r || !r->cols || !name) return -1;
  for (size_t i = 0; i < r->ncols; i++)
    if (strcmp(r->cols[i].name, name) == 0) return (int)i;
  return -1;
}

static const cql_cell *cell(const cql_result *r, size_t row, size_t col) {
  if (!r || r->kind != CQL_RESULT_ROWS || row >= r->nrows || col >= r->ncols) return NULL;
  return &r->cells[row * r->ncols + col];
}

int cql_result_is_null(const cql_result *r, size_t row, size_t col) {
  const cql_cell *c = cell(r, row, col);
  return c ? c->len < 0 : -1;
}

const uint8_t *cql_result_cell(const cql_result *r, size_t row, size_t col, size_t *len) {
  const cql_cell *c = cell(r, row, col);
  if (!c || c->len < 0) return NULL;
  if (len) *len = (size_t)c->len;
  return r->body + c->off;
}

static const uint8_t *typed_cell(const cql_result *r, size_t row, size_t col, size_t *len,
                                 int *type) {
  const uint8_t *p = cql_result_cell(r, row, col, len);
  *type = cql_result_column_type(r, col);
  return p;
}

int cql_result_get_bool(const cql_result *r, size_t row, size_t col, int *out) {
  size_t len;
  int type;
  const uint8_t *p = typed_cell(r, row, col, &len, &type);
  if (!p || type != CQL_TYPE_BOOLEAN || len != 1) return -1;
  *out = p[0] != 0;
  return 0;
}

int cql_result_get_int64(const cql_result *r, size_t row, size_t col, int64_t *out) {
  size_t len;
  int type;
  const uint8_t *p = typed_cell(r, row, col, &len, &type);
  if (!p) return -1;
  switch (type) {
  case CQL_TYPE_INT:
    if (len != 4) return -1;
    break;
  case CQL_TYPE_SMALLINT:
    if (len != 2) return -1;
    break;
  case CQL_TYPE_TINYINT:
    if (len != 1) return -1;
    break;
  case CQL_TYPE_BIGINT:
  case CQL_TYPE_COUNTER:
  case CQL_TYPE_TIMESTAMP:
    if (len != 8) return -1;
    break;
  default: return -1;
  }
  *out = be_int(p, len);
  return 0;
}

int cql_result_get_text(const cql_result *r, size_t row, size_t col, const char **s, size_t *len) {
  int type;
  const uint8_t *p = typed_cell(r, row, col, len, &type);
  if (!p || (type != CQL_TYPE_VARCHAR && type != CQL_TYPE_ASCII)) return -1;
  *s = (const char *)p;
  return 0;
}

int cql_result_get_uuid(const cql_result *r, size_t row, size_t col, uint8_t out[16]) {
  size_t len;
  int type;
  const uint8_t *p = typed_cell(r, row, col, &len, &type);
  if (!p || (type != CQL_TYPE_UUID && type != CQL_TYPE_TIMEUUID) || len != 16) return -1;
  memcpy(out, p, 16);
  return 0;
}

json_t *cql_result_cell_json(const cql_result *r, size_t row, size_t col) {
  const cql_cell *c = cell(r, row, col);
  const cql_column *k = column(r, col);
  if (!c) return NULL;
  if (c->len < 0) return json_null();
  if (!k) /* no metadata: raw bytes */
    return hex_json(r->body + c->off, (size_t)c->len);
  return cql__cell_to_json(r->body + c->off, (size_t)c->len, &k->type, 0);
}

json_t *cql_result_row_json(const cql_result *r, size_t row) {
  if (!r || !r->cols || row >= cql_result_row_count(r)) return NULL;
  json_t *obj = json_object();
  for (size_t i = 0; obj && i < r->ncols; i++) {
    json_t *v = cql_result_cell_json(r, row, i);
    if (!v || json_object_set_new(obj, r->cols[i].name, v) < 0) {
      json_decref(obj);
      return NULL;
    }
  }
  return obj;
}

int cql_result_applied(const cql_result *r) {
  int col = cql_result_column_index(r, "[applied]");
  int applied;
  if (col < 0 || cql_result_get_bool(r, 0, (size_t)col, &applied) < 0) return -1;
  return applied;
}

int cql_result_has_more_pages(const cql_result *r) {
  return r && r->kind == CQL_RESULT_ROWS && (r->flags & CQL_RF_HAS_MORE_PAGES) &&
         r->paging_state != NULL;
}

const uint8_t *cql_result_paging_state(const cql_result *r, size_t *len) {
  if (!cql_result_has_more_pages(r)) return NULL;
  if (len) *len = r->paging_len;
  return r->paging_state;
}

const char *cql_result_keyspace(const cql_result *r) {
  if (!r || (r->kind != CQL_RESULT_SET_KEYSPACE && r->kind != CQL_RESULT_SCHEMA_CHANGE))
    return NULL;
  return r->keyspace;
}

const char *cql_result_schema_change_type(const cql_result *r) {
  return r && r->kind == CQL_RESULT_SCHEMA_CHANGE ? r->change_type : NULL;
}

const char *cql_result_schema_change_target(const cql_result *r) {
  return r && r->kind == CQL_RESULT_SCHEMA_CHANGE ? r->change_target : NULL;
}

const char *cql_result_schema_change_name(const cql_result *r) {
  return r && r->kind == CQL_RESULT_SCHEMA_CHANGE ? r->change_name : NULL;
}

size_t cql_result_warning_count(const cql_result *r) { return r ? r->nwarnings : 0; }

const char *cql_result_warning(const cql_result *r, size_t i) {
  return r && i < r->nwarnings ? r->warnings[i] : NULL;
}

/* ---- prepared accessors ------------------------------------------------------------------- */

size_t cql_prepared_param_count(const cql_prepared *p) { return p ? p->nparams : 0; }

const char *cql_prepared_param_name(const cql_prepared *p, size_t i) {
  return p && i < p->nparams ? p->params[i].name : NULL;
}

int cql_prepared_param_type(const cql_prepared *p, size_t i) {
  return p && i < p->nparams ? p->params[i].type.id : -1;
}

const uint8_t *cql_prepared_id(const cql_prepared *p, size_t *len) {
  if (!p) return NULL;
  if (len) *len = p->id_len;
  return p->id;
}
