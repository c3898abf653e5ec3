/*
 * error.c — kdao_error: Kong 0.10's error objects (kong/dao/errors.lua) and their printable
 * form (kong/tools/printable.lua), with keys sorted so messages are deterministic.
 */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "schema.h"
#include "error.h"
#include "util.h"

const char *kdao_error_kind_name(kdao_status kind) {
  switch (kind) {
  case KDAO_OK: return "ok";
#define KDAO__ERR_NAME(name, num, str) \
  case name: return str;
    KDAO_ERROR_MAP(KDAO__ERR_NAME)
#undef KDAO__ERR_NAME
  default: return "unknown";
  }
}

kdao_status kdao_error_kind(const kdao_error *err) { return err ? err->kind : KDAO_OK; }

const char *kdao_error_message(const kdao_error *err) {
  return err && err->message ? err->message : "";
}

const json_t *kdao_error_fields(const kdao_error *err) { return err ? err->fields : NULL; }

const char *kdao_error_db_name(const kdao_error *err) { return err ? err->db_name : NULL; }

const char *kdao_error_string(const kdao_error *err) {
  if (!err) return "";
  return err->string ? err->string : kdao_error_message(err);
}

const char *kdao_error_code(const kdao_error *err) { return err ? err->code : NULL; }

/*
 * The error of an allocation failure when not even an error can be allocated: shared,
 * never modified, never freed. Handing it out keeps "a failure always comes with an error"
 * true, so no caller mistakes a NULL error for success.
 */
static char oom_message[] = "out of memory";
static kdao_error oom_error = {.kind = KDAO_ERR_NOMEM, .message = oom_message};

kdao_error *kdao__error_oom(void) { return &oom_error; }

void kdao_error_free(kdao_error *err) {
  if (!err || err == &oom_error) return;
  kdao__free(err->message);
  json_decref(err->fields);
  kdao__free(err->db_name);
  kdao__free(err->code);
  kdao__free(err->string);
  kdao__free(err);
}

/* An error that owns `message` (freed on failure). */
static kdao_error *error_take(int kind, char *message) {
  if (!message) return &oom_error;
  kdao_error *e = kdao__calloc(1, sizeof *e);
  if (!e) {
    kdao__free(message);
    return &oom_error;
  }
  e->kind = kind;
  e->message = message;
  return e;
}

kdao_error *kdao_error_new(kdao_status kind, const char *message) {
  return error_take(kind, kdao__strdup(message ? message : ""));
}

kdao_error *kdao_error_new_db(kdao_status kind, const char *db_name, const char *message) {
  kdao_error *e = kdao_error_new(kind, message);
  if (e != &oom_error && db_name) {
    kdao__error_set_db(e, db_name);
    /* A constructor reports its failure: an error without the asked-for name is not one. */
    if (!e->db_name) {
      kdao_error_free(e);
      return &oom_error;
    }
  }
  return e;
}

kdao_error *kdao__error_fmt(int kind, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  char *message = kdao__vasprintf(fmt, ap);
  va_end(ap);
  return error_take(kind, message);
}

/* ---- printable form ---- */

/* A growable string that turns broken on allocation failure (checked once at the end). */
typedef struct strbuf {
  char *data;
  size_t len, cap;
  bool broken;
} strbuf;

static void sb_append(strbuf *sb, const char *s, size_t n) {
  if (sb->broken) return;
  if (sb->len + n + 1 > sb->cap) {
    size_t cap = sb->cap ? sb->cap : 64;
    while (cap < sb->len + n + 1) cap *= 2;
    char *data = kdao__realloc(sb->data, cap);
    if (!data) {
      sb->broken = true;
      return;
    }
    sb->data = data;
    sb->cap = cap;
  }
  memcpy(sb->data + sb->len, s, n);
  sb->len += n;
  sb->data[sb->len] = '\0';
}

static void sb_puts(strbuf *sb, const char *s) { sb_append(sb, s, strlen(s)); }

/* Appends `v` as Lua's tostring() would print it (strings as they are). */
static void sb_value(strbuf *sb, const json_t *v) {
  char *text = kdao__value_text(v);
  if (!text) {
    sb->broken = true;
    return;
  }
  sb_puts(sb, text);
  kdao__free(text);
}

static int cmp_cstr(const void *a, const void *b) {
  return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The object's keys in lexicographic order; NULL when out of memory (or empty: *n == 0). */
static const char **sorted_keys(const json_t *obj, size_t *n) {
  *n = json_object_size(obj);
  if (*n == 0) return NULL;
  const char **keys = kdao__malloc(*n * sizeof *keys);
  if (!keys) return NULL;
  size_t i = 0;
  const char *k;
  const json_t *v;
  json_object_foreach((json_t *)obj, k, v) {
    (void)v;
    keys[i++] = k;
  }
  qsort(keys, *n, sizeof *keys, cmp_cstr);
  return keys;
}

static void sb_printable(strbuf *sb, const json_t *fields);

static void sb_item(strbuf *sb, const json_t *v) {
  if (json_is_array(v)) {
    /* table.concat(v, ","). */
    size_t i;
    const json_t *el;
    json_array_foreach(v, i, el) {
      if (i > 0) sb_puts(sb, ",");
      sb_value(sb, el);
    }
  } else if (json_is_object(v)) {
    sb_printable(sb, v);
  } else {
    sb_value(sb, v);
  }
}

static void sb_printable(strbuf *sb, const json_t *fields) {
  size_t n;
  const char **keys = sorted_keys(fields, &n);
  if (n > 0 && !keys) {
    sb->broken = true;
    return;
  }
  for (size_t i = 0; i < n; i++) {
    if (i > 0) sb_puts(sb, " ");
    sb_puts(sb, keys[i]);
    sb_puts(sb, "=");
    sb_item(sb, json_object_get(fields, keys[i]));
  }
  kdao__free(keys);
}

char *kdao__printable(const json_t *fields) {
  strbuf sb = {0};
  sb_puts(&sb, "");
  if (json_is_object(fields))
    sb_printable(&sb, fields);
  else if (fields)
    sb_item(&sb, fields);
  if (sb.broken) {
    kdao__free(sb.data);
    return NULL;
  }
  return sb.data;
}

/* ---- field-level errors ---- */

kdao_error *kdao__error_schema_new(json_t *fields) {
  if (!fields) return &oom_error;
  char *message = kdao__printable(fields);
  kdao_error *e = error_take(KDAO_ERR_SCHEMA, message);
  if (e == &oom_error) {
    json_decref(fields);
    return e;
  }
  e->fields = fields;
  return e;
}

/* Kong's serializers for unique/foreign: field → "<prefix> '<value>'". */
static json_t *serialize_values(const json_t *values, const char *prefix) {
  json_t *out = json_object();
  if (!out) return NULL;
  const char *k;
  const json_t *v;
  json_object_foreach((json_t *)values, k, v) {
    char *text = kdao__value_text(v);
    char *msg = text ? kdao__asprintf("%s '%s'", prefix, text) : NULL;
    kdao__free(text);
    if (!msg || json_object_set_new(out, k, json_string(msg)) != 0) {
      kdao__free(msg);
      json_decref(out);
      return NULL;
    }
    kdao__free(msg);
  }
  return out;
}

kdao_error *kdao_error_new_fields(kdao_status kind, const json_t *fields) {
  if (!json_is_object(fields)) {
    /* Kong: a non-table "tbl" is used as the message itself. */
    char *text = fields ? (json_is_string(fields) ? kdao__strdup(json_string_value(fields))
                                                  : kdao__value_text(fields))
                        : kdao__strdup("");
    return error_take(kind, text);
  }
  json_t *tbl;
  if (kind == KDAO_ERR_UNIQUE)
    tbl = serialize_values(fields, "already exists with value");
  else if (kind == KDAO_ERR_FOREIGN)
    tbl = serialize_values(fields, "does not exist with value");
  else
    tbl = json_deep_copy(fields);
  if (!tbl) return &oom_error;
  kdao_error *e = kdao__error_schema_new(tbl);
  if (e != &oom_error) e->kind = kind;
  return e;
}

void kdao__error_set_db(kdao_error *e, const char *db_name) {
  if (!e || e == &oom_error || !db_name || e->db_name) return;
  char *name = kdao__strdup(db_name);
  char *string = kdao__asprintf("[%s error] %s", db_name, kdao_error_message(e));
  if (!name || !string) {
    /* Out of memory: the error keeps its message, only the decoration is lost. */
    kdao__free(name);
    kdao__free(string);
    return;
  }
  e->db_name = name;
  kdao__free(e->string);
  e->string = string;
}

void kdao__error_set_code(kdao_error *e, const char *code) {
  if (!e || e == &oom_error) return;
  char *copy = code ? kdao__strdup(code) : NULL;
  if (code && !copy) return;
  kdao__free(e->code);
  e->code = copy;
}

int kdao__fail(kdao_error **err, kdao_error *e) {
  if (!e) e = &oom_error;
  int kind = e->kind;
  if (err)
    *err = e;
  else
    kdao_error_free(e);
  return kind;
}

int kdao__add_error_value(json_t **errors, const char *key, json_t *value) {
  if (!value) return -1;
  if (!*errors && !(*errors = json_object())) {
    json_decref(value);
    return -1;
  }
  json_t *prev = json_object_get(*errors, key);
  if (!prev) return json_object_set_new(*errors, key, value);
  if (!json_is_array(prev)) {
    json_t *list = json_pack("[O]", prev);
    if (!list || json_object_set_new(*errors, key, list) != 0) {
      json_decref(value);
      return -1;
    }
    prev = list;
  }
  /* A list added to a key that already has messages is flattened into it (see docs). */
  int rc = json_is_array(value) ? json_array_extend(prev, value) : json_array_append(prev, value);
  json_decref(value);
  return rc;
}

int kdao__add_error(json_t **errors, const char *key, const char *message) {
  /* Messages from callbacks are not guaranteed UTF-8; losing them would be worse. */
  json_t *v = json_string(message);
  if (!v && message) v = json_string_nocheck(message);
  return kdao__add_error_value(errors, key, v);
}
