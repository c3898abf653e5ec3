/*
 * dao.c — the DAO operations: everything backend-independent lives here, once.
 *
 * Each public operation checks its arguments (misuse is reported with Kong's argument-error
 * wording), works on a deep copy of the caller's JSON (Kong mutated the caller's tables;
 * kdao never does), validates, fills generated values, enforces what the backend cannot
 * (foreign keys and cascades where it has no native ones), calls the backend once, and
 * publishes events after the write is durable.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "factory.h"
#include "validate.h"

/* ---- error plumbing ---- */

static const char *lua_type_name(const json_t *v) {
  if (v == NULL || json_is_null(v)) return "nil";
  if (json_is_string(v)) return "string";
  if (json_is_number(v)) return "number";
  if (json_is_boolean(v)) return "boolean";
  return "table";
}

static kdao_error *bad_table_arg(int n, const char *method, const json_t *v) {
  return kdao__error_fmt(KDAO_ERR_MISUSE, "bad argument #%d to '%s' (table expected, got %s)", n,
                         method, json_is_array(v) ? "array" : lua_type_name(v));
}

/*
 * Nesting deeper than any JSON text kdao parses (jansson's own limit) can only come from a C
 * caller; copying or printing it recurses once per level (a stack overflow at ~100000), so
 * it is refused first, as a schema error under the member that holds it.
 */
#define MAX_NESTING 2048

static bool nested_deeper(const json_t *v, int levels) {
  if (!json_is_object(v) && !json_is_array(v)) return false;
  if (levels == 0) return true;
  const char *k;
  json_t *e;
  size_t i;
  if (json_is_array(v)) {
    json_array_foreach(v, i, e) if (nested_deeper(e, levels - 1)) return true;
  } else {
    json_object_foreach((json_t *)v, k, e) if (nested_deeper(e, levels - 1)) return true;
  }
  return false;
}

/* Kong's argument checks: an object (#n), optionally not empty; then kdao's nesting bound. */
static kdao_error *check_table(int n, const char *method, const json_t *v, bool non_empty) {
  if (!json_is_object(v)) return bad_table_arg(n, method, v);
  if (non_empty && json_object_size(v) == 0)
    return kdao__error_fmt(KDAO_ERR_MISUSE,
                           "bad argument #%d to '%s' (expected table to not be empty)", n, method);
  const char *k;
  json_t *e;
  json_object_foreach((json_t *)v, k, e) {
    if (!nested_deeper(e, MAX_NESTING)) continue;
    json_t *errors = NULL;
    char *msg = kdao__asprintf("%s is nested more than %d levels deep", k, MAX_NESTING);
    kdao_error *deep = NULL;
    if (msg && kdao__add_error(&errors, k, msg) == 0)
      deep = kdao__error_schema_new(errors); /* takes `errors` */
    else
      json_decref(errors);
    kdao__free(msg);
    return deep ? deep : kdao_error_new(KDAO_ERR_NOMEM, "out of memory");
  }
  return NULL;
}

/*
 * Every error a DAO operation returns names the backend, as Kong's ret_error did, so that
 * kdao_error_string() reads "[<backend> error] ...". Misuse is the caller's, not the backend's.
 */
static int finish(kdao_dao *dao, kdao_error **err, kdao_error *e) {
  if (e == NULL) return KDAO_OK;
  if (e->kind != KDAO_ERR_MISUSE) {
    kdao__error_set_db(e, dao->factory->ops->name);
    /* Without its name the error would read differently: report what went wrong instead. */
    if (!kdao_error_db_name(e)) {
      kdao_error_free(e);
      e = kdao__error_oom();
    }
  }
  return kdao__fail(err, e);
}

static kdao_error *need_dao(const kdao_dao *dao) {
  if (dao == NULL) return kdao_error_new(KDAO_ERR_MISUSE, "dao is NULL");
  if (!dao->factory->connected) return kdao_error_new(KDAO_ERR_MISUSE, "factory is not connected");
  return NULL;
}

#define BACKEND(dao) ((dao)->factory->backend)
#define OPS(dao) ((dao)->factory->ops)

/*
 * Calls a backend op in the style `int op(b, ..., kdao_error **)` and yields its error. The
 * op stores its error in the factory's scratch slot, which op_outcome() empties: arguments
 * are evaluated before the call, so reading the slot there happens after the op returned.
 */
#define CALL(dao, op, ...)                                                     \
  op_outcome(OPS(dao)->op(BACKEND(dao), __VA_ARGS__, &(dao)->factory->op_err), \
             &(dao)->factory->op_err)

static kdao_error *op_outcome(int rc, kdao_error **slot) {
  kdao_error *e = *slot;
  *slot = NULL;
  if (rc != KDAO_OK && e == NULL) e = kdao_error_new(KDAO_ERR_DB, "backend failed without detail");
  return e;
}

static void publish(kdao_dao *dao, kdao_event_type type, const json_t *entity, const json_t *old) {
  kdao_factory *f = dao->factory;
  if (f->on_event && entity) f->on_event(dao->schema->table, type, entity, old, f->on_event_ud);
}

/* ---- keys and filters ---- */

static kdao_error *bad_uuid(const json_t *v) {
  char *t = kdao__value_text(v);
  kdao_error *e = kdao__error_fmt(KDAO_ERR_SCHEMA, "%s is not a valid uuid", t ? t : "?");
  kdao__free(t);
  return e;
}

/*
 * Kong's extract_keys for find/delete: every primary-key field must be present ("Missing
 * PRIMARY KEY field" is a programming error), id-typed ones valid UUIDs (a data error).
 * With `allow_partial`, absent non-id key fields are left out (update's addressing rule).
 */
static kdao_error *extract_pk(const kdao_schema *s, const json_t *src, bool allow_partial,
                              json_t **out) {
  *out = NULL;
  size_t present = 0;
  for (size_t i = 0; i < s->npk; i++) {
    const kdao__field *f = &s->fields[s->pk[i]];
    json_t *v = json_object_get(src, f->name);
    if (v == NULL || json_is_null(v)) {
      if (allow_partial && f->type != KDAO_TYPE_ID) continue;
      return kdao_error_new(KDAO_ERR_MISUSE, "Missing PRIMARY KEY field");
    }
    if (f->type == KDAO_TYPE_ID && !(json_is_string(v) && kdao_is_uuid(json_string_value(v))))
      return bad_uuid(v);
    present++;
  }
  /* The common call, find({id = ...}), already is the key: no copy on the hot path. */
  if (present == s->npk && json_object_size(src) == s->npk) {
    *out = json_incref((json_t *)src);
    return NULL;
  }
  json_t *pk = json_object();
  if (pk == NULL) return kdao_error_new(KDAO_ERR_NOMEM, "out of memory");
  for (size_t i = 0; i < s->npk; i++) {
    const char *name = s->fields[s->pk[i]].name;
    json_t *v = json_object_get(src, name);
    if (v && !json_is_null(v) && json_object_set(pk, name, v) != 0) {
      json_decref(pk);
      return kdao__error_oom();
    }
  }
  *out = pk;
  return NULL;
}

/* A filter value typed by its field: "true" → true, "5" → 5; NULL when it cannot be. */
static json_t *typed_value(const kdao__field *f, json_t *v) {
  if (!json_is_string(v)) return json_incref(v);
  const char *sv = json_string_value(v);
  switch (f->type) {
  case KDAO_TYPE_BOOLEAN:
    if (strcasecmp(sv, "true") == 0) return json_true();
    if (strcasecmp(sv, "false") == 0) return json_false();
    return NULL;
  case KDAO_TYPE_NUMBER:
  case KDAO_TYPE_TIMESTAMP: return kdao__number_from_string(sv);
  default: return json_incref(v);
  }
}

static bool of_type(const kdao__field *f, const json_t *v) {
  switch (f->type) {
  case KDAO_TYPE_BOOLEAN: return json_is_boolean(v);
  case KDAO_TYPE_NUMBER:
  case KDAO_TYPE_TIMESTAMP: return json_is_number(v);
  case KDAO_TYPE_STRING:
  case KDAO_TYPE_URL:
  case KDAO_TYPE_ID: return json_is_string(v);
  /* What the validator would take for one: a list string, or a table (checked in depth there). */
  case KDAO_TYPE_ARRAY: return json_is_string(v) || json_is_array(v) || json_is_object(v);
  case KDAO_TYPE_TABLE: return json_is_array(v) || json_is_object(v);
  default: return true;
  }
}

/*
 * Why a typed filter value can match no storable row, or NULL: the value bounds every
 * stored value obeys, and for numbers the field's own check (retries is a smallint), so a
 * filter gets the answer an insert of that value would, on every backend, instead of a
 * database error on one and an empty result on another.
 */
static char *filter_value_problem(kdao_dao *dao, const kdao__field *f, json_t *v) {
  char *msg = NULL;
  if (!of_type(f, v))
    return kdao__asprintf("%s is not %s %s", f->name, f->type == KDAO_TYPE_ARRAY ? "an" : "a",
                          kdao_type_name(f->type));
  if (kdao__value_bounds(f, v, &msg) != 0) return msg ? msg : kdao__strdup("out of memory");
  if (f->type == KDAO_TYPE_NUMBER && f->func) {
    json_t *scratch = json_pack("{sO}", f->name, v), *extra = NULL;
    if (scratch && f->func(dao, f->name, v, scratch, &extra, &msg, f->ud) != 0 && msg) {
      json_decref(extra);
      json_decref(scratch);
      return msg;
    }
    json_decref(extra);
    json_decref(scratch);
  }
  return NULL;
}

/*
 * Filters are checked as Kong did (unknown field, invalid uuid), then typed by the schema,
 * so that "true" finds a boolean column and "5" a number, instead of Kong's database
 * errors. A value that cannot be typed, or that no stored row can hold, is a schema error
 * for that field.
 */
static kdao_error *typed_filter(kdao_dao *dao, const json_t *filter, json_t **out) {
  const kdao_schema *s = dao->schema;
  *out = NULL;
  kdao_error *e = NULL;
  if (kdao_validate_filter(s, filter, &e) != KDAO_OK) return e;
  /* A member that failed to join `typed` would widen the filter: any failure is fatal. */
  unsigned long failures = kdao__alloc_failures();
  json_t *typed = json_object(), *errors = NULL;
  if (typed == NULL) return kdao_error_new(KDAO_ERR_NOMEM, "out of memory");
  const char *k;
  json_t *v;
  json_object_foreach((json_t *)filter, k, v) {
    const kdao__field *f = kdao__schema_field(s, k);
    if (json_is_null(v) || f == NULL) {
      json_object_set(typed, k, v);
      continue;
    }
    json_t *nv = typed_value(f, v);
    char *m = nv ? filter_value_problem(dao, f, nv)
                 : kdao__asprintf("%s is not a %s", k, kdao_type_name(f->type));
    if (m) {
      kdao__add_error(&errors, k, m);
      kdao__free(m);
      json_decref(nv);
    } else {
      json_object_set_new(typed, k, nv);
    }
  }
  if (kdao__alloc_failures() != failures) {
    json_decref(typed);
    json_decref(errors);
    return kdao__error_oom();
  }
  if (errors) {
    json_decref(typed);
    return kdao__error_schema_new(errors);
  }
  *out = typed;
  return NULL;
}

/* Checks a find_all/find_page/count filter argument (NULL allowed: no filter). */
static kdao_error *filter_arg(kdao_dao *dao, const char *method, const json_t *filter,
                              json_t **typed) {
  *typed = NULL;
  kdao_error *e = need_dao(dao);
  if (e || filter == NULL) return e;
  if ((e = check_table(1, method, filter, true))) return e;
  return typed_filter(dao, filter, typed);
}

/* ---- generated values and foreign keys ---- */

static kdao_error *fill_insert_values(const kdao_schema *s, json_t *row) {
  for (size_t i = 0; i < s->nfields; i++) {
    const kdao__field *f = &s->fields[i];
    if (!(f->flags & KDAO_FIELD_INSERT_VALUE)) continue;
    json_t *v = json_object_get(row, f->name);
    if (v && !json_is_null(v)) continue;
    json_t *nv = NULL;
    if (f->type == KDAO_TYPE_ID) {
      char id[37];
      kdao__uuid_v4(id);
      nv = json_string(id);
    } else if (f->type == KDAO_TYPE_TIMESTAMP) {
      nv = json_integer(kdao__now_ms());
    } else {
      continue;
    }
    if (nv == NULL || json_object_set_new(row, f->name, nv) != 0)
      return kdao_error_new(KDAO_ERR_NOMEM, "out of memory");
  }
  return NULL;
}

/*
 * Foreign check for backends without FOREIGN KEY constraints: each referenced row must exist.
 * All violations are reported together, as Kong did. Before the write (`current` false) it is
 * a plain read, and references to non-key columns are looked up by filter. After the write
 * (`current`) each parent referenced by its key is read with find_current, ordered with the
 * parent's delete; non-key references have no such read (no entity of Kong's has one).
 */
static kdao_error *check_foreign(kdao_dao *dao, const json_t *row, bool current) {
  if (OPS(dao)->caps & KDAO__CAP_NATIVE_FOREIGN) return NULL;
  json_t *missing = NULL;
  for (size_t i = 0; i < dao->nforeign; i++) {
    const kdao__foreign *fg = &dao->foreign[i];
    const char *name = dao->schema->fields[fg->field].name;
    json_t *v = json_object_get(row, name);
    if (v == NULL || json_is_null(v)) continue;
    const kdao_schema *ps = fg->parent->schema;
    bool by_key = ps->npk == 1 && ps->pk[0] == fg->parent_field;
    if (current && !by_key) continue;
    json_t *key = json_pack("{sO}", ps->fields[fg->parent_field].name, v);
    json_t *found = NULL;
    kdao_error *e = current  ? CALL(fg->parent, find_current, ps, key, &found)
                    : by_key ? CALL(fg->parent, find, ps, key, &found)
                             : CALL(fg->parent, find_all, ps, key, &found);
    json_decref(key);
    if (e) {
      json_decref(missing);
      return e;
    }
    if (found == NULL || (json_is_array(found) && json_array_size(found) == 0)) {
      if (!missing) missing = json_object();
      json_object_set(missing, name, v);
    }
    json_decref(found);
  }
  if (missing == NULL) return NULL;
  kdao_error *e = kdao_error_new_fields(KDAO_ERR_FOREIGN, missing);
  json_decref(missing);
  return e;
}

/*
 * The check before an insert and the write after it are not atomic: a parent deleted in
 * between, its cascade having looked for children before this one was stored, would leave
 * the new rows orphans. So once they are stored their parents are looked up again with
 * find_current. A parent still there will find the rows itself: its delete sweeps for
 * children once more after removing the parent (do_delete), and find_current is ordered
 * with that removal. A parent gone: the rows are deleted again and the insert reports the
 * foreign error it would have got a moment later. A failed undo is reported instead, since
 * the rows may then remain.
 */
static kdao_error *recheck_foreign(kdao_dao *dao, const json_t *rows) {
  /* Native foreign keys decided inside the write; `rows` is one row or an array of them. */
  if ((OPS(dao)->caps & KDAO__CAP_NATIVE_FOREIGN) || dao->nforeign == 0) return NULL;
  size_t n = json_is_array(rows) ? json_array_size(rows) : 1;
  kdao_error *e = NULL;
  for (size_t i = 0; i < n && e == NULL; i++)
    e = check_foreign(dao, json_is_array(rows) ? json_array_get(rows, i) : rows, true);
  if (e == NULL || e->kind != KDAO_ERR_FOREIGN) return e;
  for (size_t i = 0; i < n; i++) {
    const json_t *row = json_is_array(rows) ? json_array_get(rows, i) : rows;
    json_t *pk = NULL, *gone = NULL;
    kdao_error *u = extract_pk(dao->schema, row, false, &pk);
    if (u == NULL) u = CALL(dao, delete, dao->schema, pk, &gone);
    json_decref(pk);
    json_decref(gone);
    if (u) {
      kdao_error_free(e);
      return u;
    }
  }
  return e;
}

/* ---- insert ---- */

/* Validates a copy of `entity` and completes it into a row ready for the backend. */
static kdao_error *prepare_insert(kdao_dao *dao, const json_t *entity, json_t **out) {
  *out = NULL;
  /*
   * jansson drops what it has no memory for (a member of a copy) without always saying so:
   * a failure anywhere before the write voids the row rather than writing a different one.
   */
  unsigned long failures = kdao__alloc_failures();
  json_t *row = json_deep_copy(entity);
  if (row == NULL) return kdao_error_new(KDAO_ERR_NOMEM, "out of memory");
  kdao_error *e = NULL;
  if (kdao_validate(dao->schema, row, KDAO_MODE_INSERT, dao, &e) != KDAO_OK ||
      (e = fill_insert_values(dao->schema, row)) != NULL ||
      (e = check_foreign(dao, row, false)) != NULL ||
      (kdao__alloc_failures() != failures && (e = kdao__error_oom()))) {
    json_decref(row);
    return e;
  }
  *out = row;
  return NULL;
}

kdao_status kdao_dao_insert(kdao_dao *dao, const json_t *entity, int ttl, unsigned flags,
                            json_t **row, kdao_error **err) {
  if (row) *row = NULL;
  kdao_error *e = need_dao(dao);
  if (e) return kdao__fail(err, e);
  if ((e = check_table(1, "insert", entity, false))) return finish(dao, err, e);
  if (ttl < 0) return finish(dao, err, kdao_error_new(KDAO_ERR_MISUSE, "ttl must be >= 0"));
  json_t *prepared = NULL, *stored = NULL;
  if ((e = prepare_insert(dao, entity, &prepared))) return finish(dao, err, e);
  e = CALL(dao, insert, dao->schema, prepared, ttl, &stored);
  json_decref(prepared);
  if (e == NULL) e = recheck_foreign(dao, stored);
  if (e) {
    json_decref(stored);
    return finish(dao, err, e);
  }
  if (!(flags & KDAO_DAO_QUIET)) publish(dao, KDAO_EVENT_CREATED, stored, NULL);
  if (row)
    *row = stored;
  else
    json_decref(stored);
  return KDAO_OK;
}

kdao_status kdao_dao_insert_many(kdao_dao *dao, const json_t *entities, unsigned flags,
                                 json_t **rows, kdao_error **err) {
  if (rows) *rows = NULL;
  kdao_error *e = need_dao(dao);
  if (e) return kdao__fail(err, e);
  if (!json_is_array(entities))
    return finish(dao, err,
                  kdao__error_fmt(KDAO_ERR_MISUSE,
                                  "bad argument #1 to 'insert_many' (array expected, "
                                  "got %s)",
                                  lua_type_name(entities)));
  unsigned long failures = kdao__alloc_failures(); /* see prepare_insert */
  json_t *prepared = json_array(), *stored = NULL;
  size_t i;
  json_t *ent;
  json_array_foreach(entities, i, ent) {
    json_t *one = NULL;
    if ((e = check_table(1, "insert", ent, false)) == NULL) e = prepare_insert(dao, ent, &one);
    if (e) {
      /* The element's index leads the message so a caller can find the culprit. */
      kdao_error *wrapped = kdao__error_fmt(e->kind, "[%zu] %s", i, kdao_error_message(e));
      if (wrapped != kdao__error_oom() && e->fields) wrapped->fields = json_incref(e->fields);
      kdao_error_free(e);
      json_decref(prepared);
      return finish(dao, err, wrapped);
    }
    json_array_append_new(prepared, one);
  }
  if (prepared == NULL || kdao__alloc_failures() != failures) {
    json_decref(prepared);
    return finish(dao, err, kdao__error_oom());
  }
  e = CALL(dao, insert_many, dao->schema, prepared, &stored);
  json_decref(prepared);
  if (e == NULL) e = recheck_foreign(dao, stored);
  if (e) {
    json_decref(stored);
    return finish(dao, err, e);
  }
  if (!(flags & KDAO_DAO_QUIET))
    json_array_foreach(stored, i, ent) publish(dao, KDAO_EVENT_CREATED, ent, NULL);
  if (rows)
    *rows = stored;
  else
    json_decref(stored);
  return KDAO_OK;
}

/* ---- reads ---- */

kdao_status kdao_dao_find(kdao_dao *dao, const json_t *pk, json_t **row, kdao_error **err) {
  if (row) *row = NULL;
  kdao_error *e = need_dao(dao);
  if (e) return kdao__fail(err, e);
  if ((e = check_table(1, "find", pk, false))) return finish(dao, err, e);
  json_t *key = NULL, *found = NULL;
  if ((e = extract_pk(dao->schema, pk, false, &key))) return finish(dao, err, e);
  e = CALL(dao, find, dao->schema, key, &found);
  json_decref(key);
  if (e) return finish(dao, err, e);
  if (row)
    *row = found;
  else
    json_decref(found);
  return KDAO_OK;
}

kdao_status kdao_dao_find_all(kdao_dao *dao, const json_t *filter, json_t **rows,
                              kdao_error **err) {
  if (rows) *rows = NULL;
  json_t *typed = NULL, *found = NULL;
  kdao_error *e = filter_arg(dao, "find_all", filter, &typed);
  if (e) return dao ? finish(dao, err, e) : kdao__fail(err, e);
  e = CALL(dao, find_all, dao->schema, typed, &found);
  json_decref(typed);
  if (e) return finish(dao, err, e);
  if (rows)
    *rows = found;
  else
    json_decref(found);
  return KDAO_OK;
}

/* ---- page tokens ---- */

#define PAGE_KEY_SECRET "page_token_key"

/*
 * The database's page key: read (or stored, by whichever process pages first) once per
 * factory, so every process and node sharing the database accepts the others' tokens.
 */
static kdao_error *page_key(kdao_dao *dao, const unsigned char **key) {
  kdao_factory *f = dao->factory;
  if (!f->page_key_ready) {
    char *candidate = kdao__page_key_new(), *stored = NULL;
    if (candidate == NULL) return kdao_error_new(KDAO_ERR_DB, "no randomness for the page key");
    kdao_error *e = CALL(dao, secret, PAGE_KEY_SECRET, candidate, &stored);
    kdao__free(candidate);
    if (e) return e;
    size_t len = 0;
    unsigned char *raw = kdao__b64_decode(stored, &len);
    kdao__free(stored);
    if (raw == NULL || len != KDAO__PAGE_KEY_LEN) {
      kdao__free(raw);
      return kdao_error_new(KDAO_ERR_DB, "kdao_secrets: " PAGE_KEY_SECRET " is not a 32-byte key");
    }
    memcpy(f->page_key, raw, KDAO__PAGE_KEY_LEN);
    kdao__free(raw);
    f->page_key_ready = true;
  }
  *key = f->page_key;
  return NULL;
}

/*
 * What a token is bound to besides its table: the typed filter, keys sorted, so that
 * {"strip_uri": "true"} and {"strip_uri": true} page alike and any other filter does not.
 */
static kdao_error *filter_text(const json_t *typed, char **out) {
  *out = NULL;
  if (typed == NULL) return NULL;
  *out = json_dumps(typed, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
  return *out ? NULL : kdao_error_new(KDAO_ERR_NOMEM, "out of memory");
}

/* One page: the token opened into the backend's position, and the next position sealed. */
static kdao_error *find_page(kdao_dao *dao, const json_t *typed, const char *offset, size_t size,
                             json_t **rows, char **next) {
  const unsigned char *key = NULL;
  char *flt = NULL;
  unsigned char *after = NULL, *nx = NULL;
  size_t after_len = 0, nx_len = 0;
  kdao_error *e = filter_text(typed, &flt);
  if (e == NULL && offset) {
    if ((e = page_key(dao, &key)) == NULL) {
      unsigned long failures = kdao__alloc_failures();
      int rc = kdao__page_token_open(key, dao->schema->table, flt, offset, &after, &after_len);
      /* A token that could not be decoded for want of memory is not a malformed one. */
      if (rc > 0 && kdao__alloc_failures() != failures) rc = -1;
      if (rc != 0)
        e = rc < 0 ? kdao_error_new(KDAO_ERR_NOMEM, "out of memory") : kdao__invalid_offset();
    }
  }
  if (e == NULL)
    e = CALL(dao, find_page, dao->schema, typed, after, after_len, size, rows, &nx, &nx_len);
  if (e == NULL && nx && (e = page_key(dao, &key)) == NULL &&
      (*next = kdao__page_token_seal(key, dao->schema->table, flt, nx, nx_len)) == NULL)
    e = kdao_error_new(KDAO_ERR_NOMEM, "out of memory");
  if (e) {
    json_decref(*rows);
    *rows = NULL;
  }
  kdao__free(nx);
  kdao__free(after);
  kdao__free(flt);
  return e;
}

kdao_status kdao_dao_find_page(kdao_dao *dao, const json_t *filter, const char *offset, size_t size,
                               json_t **rows, char **next, kdao_error **err) {
  if (rows) *rows = NULL;
  if (next) *next = NULL;
  json_t *typed = NULL, *found = NULL;
  char *nx = NULL;
  kdao_error *e = filter_arg(dao, "find_page", filter, &typed);
  if (e) return dao ? finish(dao, err, e) : kdao__fail(err, e);
  e = find_page(dao, typed, offset, size ? size : 100, &found, &nx);
  json_decref(typed);
  if (e) return finish(dao, err, e);
  if (rows)
    *rows = found;
  else
    json_decref(found);
  if (next)
    *next = nx;
  else
    kdao__free(nx);
  return KDAO_OK;
}

kdao_status kdao_dao_count(kdao_dao *dao, const json_t *filter, long long *count,
                           kdao_error **err) {
  if (count) *count = 0;
  json_t *typed = NULL;
  long long n = 0;
  kdao_error *e = filter_arg(dao, "count", filter, &typed);
  if (e) return dao ? finish(dao, err, e) : kdao__fail(err, e);
  e = CALL(dao, count, dao->schema, typed, &n);
  json_decref(typed);
  if (e) return finish(dao, err, e);
  if (count) *count = n;
  return KDAO_OK;
}

/* ---- update ---- */

/*
 * Resolves absent non-id key fields (plugins are addressed by id alone in Kong's update):
 * the row must be unique by the key fields that are present.
 */
static kdao_error *complete_pk(kdao_dao *dao, json_t *pk, bool *found) {
  *found = true;
  if (json_object_size(pk) == dao->schema->npk) return NULL;
  if (json_object_size(pk) == 0)
    return kdao_error_new(KDAO_ERR_MISUSE, "Missing PRIMARY KEY field");
  json_t *rows = NULL;
  kdao_error *e = CALL(dao, find_all, dao->schema, pk, &rows);
  if (e) return e;
  if (json_array_size(rows) == 0)
    *found = false;
  else if (json_array_size(rows) > 1)
    e = kdao_error_new(KDAO_ERR_DB, "bad rows result");
  else {
    json_t *r = json_array_get(rows, 0);
    for (size_t i = 0; i < dao->schema->npk; i++) {
      const char *k = dao->schema->fields[dao->schema->pk[i]].name;
      if (json_object_set(pk, k, json_object_get(r, k)) != 0 && e == NULL) e = kdao__error_oom();
    }
  }
  json_decref(rows);
  return e;
}

/* The nested schema of field `f` for `entity` (static, or chosen by its callback). */
static const kdao_schema *nested_schema(kdao_dao *dao, const kdao__field *f, json_t *entity) {
  if (f->nested) return f->nested;
  if (!f->schema_fn) return NULL;
  char *msg = NULL;
  const kdao_schema *s = f->schema_fn(dao, entity, &msg, f->ud);
  kdao__free(msg);
  return s;
}

/*
 * Kong's `fix`: in a partial update a nested table (plugin config) keeps the stored values
 * of sub-fields it does not mention. Flexible tables are replaced wholesale, as in Kong.
 */
static void merge_nested(kdao_dao *dao, const kdao_schema *s, json_t *old, json_t *values) {
  for (size_t i = 0; i < s->nfields; i++) {
    const kdao__field *f = &s->fields[i];
    json_t *ov = json_object_get(old, f->name), *nv = json_object_get(values, f->name);
    if (!json_is_object(ov) || !json_is_object(nv)) continue;
    const kdao_schema *sub = nested_schema(dao, f, old);
    if (sub == NULL || (sub->flags & KDAO_SCHEMA_FLEXIBLE)) continue;
    for (size_t j = 0; j < sub->nfields; j++) {
      const char *k = sub->fields[j].name;
      json_t *stored = json_object_get(ov, k);
      if (stored && !json_object_get(nv, k)) json_object_set(nv, k, stored);
    }
    merge_nested(dao, sub, ov, nv);
  }
}

/*
 * `immutable` is enforced against the stored row — Kong 0.10 declared it but never passed
 * the old row to its validator. Kong's exemption of required fields is kept (created_at is
 * both, and a full update must resend it).
 */
static kdao_error *check_immutable(const kdao_schema *s, const json_t *old, const json_t *values) {
  json_t *errors = NULL;
  for (size_t i = 0; i < s->nfields; i++) {
    const kdao__field *f = &s->fields[i];
    if (!(f->flags & KDAO_FIELD_IMMUTABLE) || (f->flags & KDAO_FIELD_REQUIRED)) continue;
    json_t *ov = json_object_get(old, f->name), *nv = json_object_get(values, f->name);
    if (ov && nv && !json_equal(ov, nv)) {
      char *m = kdao__asprintf("%s cannot be updated", f->name);
      kdao__add_error(&errors, f->name, m ? m : "cannot be updated");
      kdao__free(m);
    }
  }
  return errors ? kdao__error_schema_new(errors) : NULL;
}

/*
 * Splits a validated entity into the columns to set and the columns to null: in a full
 * update every absent field; in a partial one the fields given as JSON null (Kong 0.11's
 * ngx.null: the only way to clear a column without replacing the entity). A required
 * field cannot be cleared.
 */
static kdao_error *split_values(const kdao_schema *s, const json_t *entity, bool full,
                                json_t **values, json_t **nulls) {
  *values = json_object();
  *nulls = json_array();
  if (*values == NULL || *nulls == NULL) return kdao_error_new(KDAO_ERR_NOMEM, "out of memory");
  json_t *errors = NULL;
  for (size_t i = 0; i < s->nfields; i++) {
    bool is_pk = false;
    for (size_t k = 0; k < s->npk; k++) is_pk |= s->pk[k] == i;
    if (is_pk) continue;
    const kdao__field *f = &s->fields[i];
    json_t *v = json_object_get(entity, f->name);
    if (v && !json_is_null(v)) {
      json_object_set(*values, f->name, v);
    } else if (full || v) {
      if (v && (f->flags & KDAO_FIELD_REQUIRED)) {
        char *m = kdao__asprintf("%s is required", f->name);
        kdao__add_error(&errors, f->name, m ? m : "required");
        kdao__free(m);
      }
      json_array_append_new(*nulls, json_string(f->name));
    }
  }
  return errors ? kdao__error_schema_new(errors) : NULL;
}

typedef struct update_ctx {
  json_t *entity, *pk, *old, *values, *nulls, *row;
} update_ctx;

static void update_ctx_free(update_ctx *u) {
  json_decref(u->entity);
  json_decref(u->pk);
  json_decref(u->old);
  json_decref(u->values);
  json_decref(u->nulls);
  json_decref(u->row);
}

/*
 * Whether an update must read the stored row first: for the event (Kong sent the old row),
 * to merge nested tables in a partial update, or to enforce `immutable`. Otherwise the
 * backend's UPDATE ... RETURNING is the only round trip.
 */
static bool update_reads_old(const kdao_dao *dao, bool full, bool announce) {
  if (announce) return true;
  for (size_t i = 0; i < dao->schema->nfields; i++) {
    const kdao__field *f = &dao->schema->fields[i];
    if (!full && (f->nested || f->schema_fn)) return true;
    if ((f->flags & KDAO_FIELD_IMMUTABLE) && !(f->flags & KDAO_FIELD_REQUIRED)) return true;
  }
  return false;
}

static kdao_error *do_update(kdao_dao *dao, const json_t *values, const json_t *filter_keys,
                             int ttl, bool full, bool announce, update_ctx *u) {
  kdao_error *e;
  if ((e = check_table(1, "update", values, true))) return e;
  if (filter_keys && (e = check_table(2, "update", filter_keys, true))) return e;
  if (ttl < 0) return kdao_error_new(KDAO_ERR_MISUSE, "ttl must be >= 0");
  unsigned long failures = kdao__alloc_failures(); /* see prepare_insert */
  if ((u->entity = json_deep_copy(values)) == NULL)
    return kdao_error_new(KDAO_ERR_NOMEM, "out of memory");
  const char *k;
  json_t *v;
  json_object_foreach((json_t *)filter_keys, k, v) {
    if (!json_object_get(u->entity, k)) json_object_set(u->entity, k, v);
  }
  if (kdao__alloc_failures() != failures) return kdao__error_oom();
  if (kdao_validate(dao->schema, u->entity, full ? KDAO_MODE_FULL_UPDATE : KDAO_MODE_UPDATE, dao,
                    &e) != KDAO_OK)
    return e;
  bool found = true;
  if ((e = extract_pk(dao->schema, u->entity, true, &u->pk))) return e;
  if ((e = complete_pk(dao, u->pk, &found)) || !found) return e;
  if (update_reads_old(dao, full, announce)) {
    if ((e = CALL(dao, find, dao->schema, u->pk, &u->old)) || u->old == NULL) return e;
    if ((e = check_immutable(dao->schema, u->old, u->entity))) return e;
    if (!full) merge_nested(dao, dao->schema, u->old, u->entity);
  }
  if ((e = split_values(dao->schema, u->entity, full, &u->values, &u->nulls))) return e;
  if ((e = check_foreign(dao, u->values, false))) return e;
  if (kdao__alloc_failures() != failures) return kdao__error_oom();
  return CALL(dao, update, dao->schema, u->pk, u->values, u->nulls, ttl, &u->row);
}

kdao_status kdao_dao_update(kdao_dao *dao, const json_t *values, const json_t *filter_keys, int ttl,
                            unsigned flags, json_t **row, kdao_error **err) {
  if (row) *row = NULL;
  kdao_error *e = need_dao(dao);
  if (e) return kdao__fail(err, e);
  update_ctx u = {0};
  bool announce = dao->factory->on_event && !(flags & KDAO_DAO_QUIET);
  e = do_update(dao, values, filter_keys, ttl, flags & KDAO_DAO_FULL, announce, &u);
  if (e == NULL && u.row && announce) publish(dao, KDAO_EVENT_UPDATED, u.row, u.old);
  if (e == NULL && row) {
    *row = u.row;
    u.row = NULL;
  }
  update_ctx_free(&u);
  return finish(dao, err, e);
}

/* ---- delete with cascade ---- */

typedef struct doomed {
  kdao_dao *dao;
  json_t *row;
} doomed;

typedef struct doomed_list {
  doomed *items;
  size_t n, cap;
} doomed_list;

static void doomed_free(doomed_list *l) {
  for (size_t i = 0; i < l->n; i++) json_decref(l->items[i].row);
  kdao__free(l->items);
}

static kdao_error *doomed_push(doomed_list *l, kdao_dao *dao, json_t *row) {
  if (l->n == l->cap) {
    size_t cap = l->cap ? l->cap * 2 : 8;
    doomed *g = kdao__realloc(l->items, cap * sizeof *g);
    if (g == NULL) return kdao_error_new(KDAO_ERR_NOMEM, "out of memory");
    l->items = g;
    l->cap = cap;
  }
  l->items[l->n++] = (doomed){dao, json_incref(row)};
  return NULL;
}

/*
 * Collects, parent first, every row that references `row` through a foreign field, at any
 * depth (Kong's cascade without native foreign keys stopped at one level, and its events likewise). Depth is
 * bounded by the schema graph; a cycle would need a self-referencing entity chain, which
 * the `seen` guard on (dao,row) pairs keeps finite.
 */
static kdao_error *collect_cascade(kdao_dao *dao, const json_t *row, doomed_list *l, int depth) {
  if (depth > 32) return kdao_error_new(KDAO_ERR_DB, "cascade too deep");
  for (size_t i = 0; i < dao->ncascade; i++) {
    const kdao__cascade *c = &dao->cascade[i];
    json_t *pv = json_object_get(row, dao->schema->fields[c->parent_field].name);
    if (pv == NULL || json_is_null(pv)) continue;
    json_t *flt = json_pack("{sO}", c->child->schema->fields[c->child_field].name, pv);
    json_t *rows = NULL;
    kdao_error *e = CALL(c->child, find_all, c->child->schema, flt, &rows);
    json_decref(flt);
    if (e) return e;
    size_t k;
    json_t *child;
    json_array_foreach(rows, k, child) {
      if ((e = doomed_push(l, c->child, child)) ||
          (e = collect_cascade(c->child, child, l, depth + 1))) {
        json_decref(rows);
        return e;
      }
    }
    json_decref(rows);
  }
  return NULL;
}

/*
 * Deletes the collected children from index `from` on, deepest first, for backends without
 * ON DELETE CASCADE. A child someone else deleted meanwhile (another delete, an insert
 * undoing itself) is dropped from the list: its event is not ours to send.
 */
static kdao_error *delete_children(doomed_list *l, size_t from) {
  kdao_error *e = NULL;
  for (size_t i = l->n; e == NULL && i-- > from;) {
    json_t *pk = NULL, *gone = NULL;
    e = extract_pk(l->items[i].dao->schema, l->items[i].row, false, &pk);
    if (!e) e = CALL(l->items[i].dao, delete, l->items[i].dao->schema, pk, &gone);
    json_decref(pk);
    if (!e && gone == NULL) {
      json_decref(l->items[i].row);
      l->items[i].row = NULL;
    }
    json_decref(gone);
  }
  size_t kept = from;
  for (size_t i = from; i < l->n; i++)
    if (l->items[i].row) l->items[kept++] = l->items[i];
  l->n = kept;
  return e;
}

/*
 * Without native cascades, children are deleted before their parent and then looked for once
 * more: an insert that checked the parent before it went may have stored its row after the
 * first look. Such an insert checks the parent again after writing (recheck_foreign), ordered
 * with the parent's removal, so every child is either found by this sweep or undone by its
 * own insert.
 */
static kdao_error *do_delete(kdao_dao *dao, const json_t *key, json_t **deleted,
                             doomed_list *children) {
  json_t *row = NULL;
  /* A filter that failed to build would find every row: see prepare_insert. */
  unsigned long failures = kdao__alloc_failures();
  kdao_error *e = CALL(dao, find, dao->schema, key, &row);
  if (e || row == NULL) return e;
  bool native = OPS(dao)->caps & KDAO__CAP_NATIVE_CASCADE;
  if ((e = collect_cascade(dao, row, children, 0)) == NULL &&
      (kdao__alloc_failures() == failures || (e = kdao__error_oom()) == NULL) &&
      (native || (e = delete_children(children, 0)) == NULL))
    e = CALL(dao, delete, dao->schema, key, deleted);
  if (e == NULL && *deleted && !native) {
    size_t swept = children->n;
    if ((e = collect_cascade(dao, row, children, 0)) == NULL) e = delete_children(children, swept);
  }
  json_decref(row);
  return e;
}

/*
 * The referencing rows are read and the parent deleted in one transaction, so the events
 * name exactly the rows that went (Kong read them outside any transaction). When nobody
 * listens and the backend cascades natively, there is nothing to read: one DELETE does it.
 */
static kdao_error *delete_with_cascade(kdao_dao *dao, const json_t *key, bool announce,
                                       json_t **deleted, doomed_list *children) {
  bool native = OPS(dao)->caps & KDAO__CAP_NATIVE_CASCADE;
  if (dao->ncascade == 0 || (native && !announce))
    return CALL(dao, delete, dao->schema, key, deleted);
  kdao_error *e = NULL;
  if (OPS(dao)->begin(BACKEND(dao), &e) != KDAO_OK) return e;
  if ((e = do_delete(dao, key, deleted, children)) == NULL) {
    OPS(dao)->commit(BACKEND(dao), &e);
  } else {
    OPS(dao)->rollback(BACKEND(dao));
  }
  if (e) {
    json_decref(*deleted);
    *deleted = NULL;
  }
  return e;
}

kdao_status kdao_dao_delete(kdao_dao *dao, const json_t *pk, unsigned flags, json_t **row,
                            kdao_error **err) {
  if (row) *row = NULL;
  kdao_error *e = need_dao(dao);
  if (e) return kdao__fail(err, e);
  if ((e = check_table(1, "delete", pk, false))) return finish(dao, err, e);
  json_t *key = NULL, *deleted = NULL;
  if ((e = extract_pk(dao->schema, pk, false, &key))) return finish(dao, err, e);
  bool announce = dao->factory->on_event && !(flags & KDAO_DAO_QUIET);
  doomed_list children = {0};
  e = delete_with_cascade(dao, key, announce, &deleted, &children);
  json_decref(key);
  if (e == NULL && deleted && announce) {
    publish(dao, KDAO_EVENT_DELETED, deleted, NULL);
    for (size_t i = 0; i < children.n; i++)
      publish(children.items[i].dao, KDAO_EVENT_DELETED, children.items[i].row, NULL);
  }
  doomed_free(&children);
  if (e == NULL && row)
    *row = deleted;
  else
    json_decref(deleted);
  return finish(dao, err, e);
}

kdao_status kdao_dao_truncate(kdao_dao *dao, kdao_error **err) {
  kdao_error *e = need_dao(dao);
  if (e) return kdao__fail(err, e);
  return finish(dao, err, CALL(dao, truncate, dao->schema));
}

/* ---- accessors ---- */

const char *kdao_dao_name(const kdao_dao *dao) { return dao ? dao->schema->name : NULL; }
const char *kdao_dao_table(const kdao_dao *dao) { return dao ? dao->schema->table : NULL; }
const kdao_schema *kdao_dao_schema(const kdao_dao *dao) { return dao ? dao->schema : NULL; }
kdao_factory *kdao_dao_factory(kdao_dao *dao) { return dao ? dao->factory : NULL; }
