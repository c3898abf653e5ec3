/*
 * schema.c — compiling schema definitions into immutable kdao_schema objects.
 *
 * Everything that can be decided once is decided here: names are checked (they become SQL
 * identifiers), regexes compiled, JSON defaults parsed, nested definitions compiled, fields
 * sorted by name (so validation order and error order are deterministic) and the primary key
 * resolved to field indexes. The validator then never re-parses a definition.
 */
#include <stdlib.h>
#include <string.h>

#include "schema.h"
#include "error.h"
#include "strbuf.h"
#include "util.h"

const char *kdao_type_name(kdao_type t) {
  switch (t) {
  case KDAO_TYPE_ID: return "id";
  case KDAO_TYPE_STRING: return "string";
  case KDAO_TYPE_NUMBER: return "number";
  case KDAO_TYPE_BOOLEAN: return "boolean";
  case KDAO_TYPE_ARRAY: return "array";
  case KDAO_TYPE_TABLE: return "table";
  case KDAO_TYPE_TIMESTAMP: return "timestamp";
  case KDAO_TYPE_URL: return "url";
  case KDAO_TYPE_ANY:
  default: return "any";
  }
}

int kdao__schema_field_index(const kdao_schema *s, const char *name) {
  if (!s || !name) return -1;
  size_t lo = 0, hi = s->nfields;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    int c = strcmp(name, s->fields[mid].name);
    if (c == 0) return (int)mid;
    if (c < 0)
      hi = mid;
    else
      lo = mid + 1;
  }
  return -1;
}

const kdao__field *kdao__schema_field(const kdao_schema *s, const char *name) {
  int i = kdao__schema_field_index(s, name);
  return i < 0 ? NULL : &s->fields[i];
}

const char *kdao_schema_name(const kdao_schema *schema) { return schema ? schema->name : NULL; }

const char *kdao_schema_table(const kdao_schema *schema) { return schema ? schema->table : NULL; }

size_t kdao_schema_field_count(const kdao_schema *schema) { return schema ? schema->nfields : 0; }

int kdao_schema_field_index(const kdao_schema *schema, const char *name) {
  return kdao__schema_field_index(schema, name);
}

bool kdao_schema_field_info(const kdao_schema *schema, size_t index, kdao_field_info *info) {
  if (!schema || !info || index >= schema->nfields) return false;
  const kdao__field *f = &schema->fields[index];
  *info = (kdao_field_info){
      .name = f->name,
      .type = f->type,
      .flags = f->flags,
      .foreign_entity = f->foreign_entity,
      .foreign_field = f->foreign_field,
      .schema = f->nested,
      .schema_fn = f->schema_fn != NULL,
      .has_default = f->default_value != NULL || f->default_fn != NULL,
  };
  return true;
}

size_t kdao_schema_primary_key_count(const kdao_schema *schema) { return schema ? schema->npk : 0; }

const char *kdao_schema_primary_key(const kdao_schema *schema, size_t i) {
  if (!schema || i >= schema->npk) return NULL;
  return schema->fields[schema->pk[i]].name;
}

static void field_clear(kdao__field *f) {
  kdao__free(f->name);
  json_decref(f->default_value);
  kdao__free(f->foreign_entity);
  kdao__free(f->foreign_field);
  for (size_t i = 0; i < f->n_enum; i++) kdao__free(f->enum_values[i]);
  kdao__free(f->enum_values);
  kdao__free(f->regex_src);
  pcre2_code_free(f->regex);
  kdao_schema_free(f->nested);
}

void kdao_schema_free(kdao_schema *schema) {
  if (!schema) return;
  for (size_t i = 0; i < schema->nfields; i++) field_clear(&schema->fields[i]);
  kdao__free(schema->fields);
  kdao__free(schema->pk);
  for (size_t i = 0; i < schema->nuniques; i++) {
    kdao__free(schema->uniques[i].name);
    kdao__free(schema->uniques[i].fields);
  }
  kdao__free(schema->uniques);
  kdao__free(schema->name);
  kdao__free(schema->table);
  kdao__free(schema);
}

/* ---- compilation ---- */

/*
 * Identifiers that may reach SQL/CQL (entity names, tables, entity fields):
 * [a-z_][a-z0-9_]*. Nested (config) schemas are stored as JSON, so their keys may also use
 * upper case and '-'; '.' is never allowed because it separates re-keyed nested errors.
 */
static bool valid_name(const char *s, bool strict) {
  if (!s || !*s) return false;
  for (const char *p = s; *p; p++) {
    char c = *p;
    bool ok = (c >= 'a' && c <= 'z') || c == '_' || (p > s && c >= '0' && c <= '9');
    if (!strict) ok = ok || (c >= 'A' && c <= 'Z') || (p > s && c == '-');
    if (!ok) return false;
  }
  return true;
}

/* Compile context: the error prefix ("schema \"apis\"" or "nested schema") and out error. */
typedef struct compile_ctx {
  const char *what;
  kdao_error **err;
} compile_ctx;

#define COMPILE_FAIL(ctx, ...) kdao__fail((ctx)->err, kdao__error_fmt(KDAO_ERR_MISUSE, __VA_ARGS__))

static int compile_schema(const kdao_schema_def *def, bool entity, kdao_schema **out,
                          kdao_error **err);
static int compile_uniques(compile_ctx *ctx, const kdao_schema_def *def, kdao_schema *s);

static int compile_foreign(compile_ctx *ctx, kdao__field *f, const char *foreign) {
  const char *colon = strchr(foreign, ':');
  if (colon) {
    f->foreign_entity = kdao__strndup(foreign, (size_t)(colon - foreign));
    f->foreign_field = kdao__strdup(colon + 1);
    if (!f->foreign_entity || !f->foreign_field) return kdao__fail(ctx->err, NULL);
  }
  if (!colon || !valid_name(f->foreign_entity, true) || !valid_name(f->foreign_field, true))
    return COMPILE_FAIL(ctx, "%s: field \"%s\": foreign \"%s\" is not \"entity:field\"", ctx->what,
                        f->name, foreign);
  return KDAO_OK;
}

static int compile_enum(compile_ctx *ctx, kdao__field *f, const char *const *values) {
  size_t n = 0;
  while (values[n]) n++;
  f->enum_values = kdao__calloc(n ? n : 1, sizeof *f->enum_values);
  if (!f->enum_values) return kdao__fail(ctx->err, NULL);
  for (size_t i = 0; i < n; i++) {
    if (!(f->enum_values[i] = kdao__strdup(values[i]))) return kdao__fail(ctx->err, NULL);
    f->n_enum = i + 1;
  }
  return KDAO_OK;
}

static int compile_regex(compile_ctx *ctx, kdao__field *f, const char *src) {
  if (!(f->regex_src = kdao__strdup(src))) return kdao__fail(ctx->err, NULL);
  int code;
  PCRE2_SIZE offset;
  /* ngx.re.find without flags: plain PCRE, unanchored, byte semantics. */
  f->regex = pcre2_compile((PCRE2_SPTR)src, PCRE2_ZERO_TERMINATED, 0, &code, &offset, NULL);
  if (f->regex) return KDAO_OK;
  PCRE2_UCHAR msg[256];
  if (pcre2_get_error_message(code, msg, sizeof msg) < 0) strcpy((char *)msg, "unknown error");
  return COMPILE_FAIL(ctx, "%s: field \"%s\": bad regex \"%s\": %s at offset %zu", ctx->what,
                      f->name, src, (const char *)msg, (size_t)offset);
}

static int compile_default(compile_ctx *ctx, kdao__field *f, const char *text) {
  json_error_t jerr;
  unsigned long failures = kdao__alloc_failures();
  f->default_value = json_loads(text, JSON_DECODE_ANY, &jerr);
  if (f->default_value && json_is_null(f->default_value)) {
    /* A nil default is no default in Kong. */
    json_decref(f->default_value);
    f->default_value = NULL;
  }
  if (f->default_value || strcmp(text, "null") == 0) return KDAO_OK;
  /* jansson reports some of its allocation failures without an error code. */
  if (kdao__alloc_failures() != failures) return kdao__fail(ctx->err, NULL);
  return COMPILE_FAIL(ctx, "%s: field \"%s\": bad default_json '%s': %s", ctx->what, f->name, text,
                      jerr.text);
}

static int compile_field(compile_ctx *ctx, const kdao_field_def *d, bool entity, kdao__field *f) {
  if (!(f->name = kdao__strdup(d->name))) return kdao__fail(ctx->err, NULL);
  if (!valid_name(d->name, entity))
    return COMPILE_FAIL(ctx, "%s: invalid field name \"%s\" (allowed: %s)", ctx->what, d->name,
                        entity ? "[a-z_][a-z0-9_]*" : "[A-Za-z_][A-Za-z0-9_-]*");
  if ((unsigned)d->type > KDAO_TYPE_URL)
    return COMPILE_FAIL(ctx, "%s: field \"%s\": unknown type %d", ctx->what, d->name, (int)d->type);
  if (d->schema && d->schema_fn)
    return COMPILE_FAIL(ctx, "%s: field \"%s\": both schema and schema_fn are set", ctx->what,
                        d->name);
  f->type = d->type;
  f->flags = d->flags;
  f->default_fn = d->default_fn;
  f->func = d->func;
  f->schema_fn = d->schema_fn;
  f->ud = d->ud;

  int rc;
  if (d->foreign && (rc = compile_foreign(ctx, f, d->foreign)) != KDAO_OK) return rc;
  if (d->enum_values && (rc = compile_enum(ctx, f, d->enum_values)) != KDAO_OK) return rc;
  if (d->regex && (rc = compile_regex(ctx, f, d->regex)) != KDAO_OK) return rc;
  bool json_default = d->default_json && !d->default_fn;
  if (json_default && (rc = compile_default(ctx, f, d->default_json)) != KDAO_OK) return rc;
  if (d->schema) {
    kdao_error *sub = NULL;
    rc = compile_schema(d->schema, false, &f->nested, &sub);
    if (rc != KDAO_OK) {
      if (rc == KDAO_ERR_NOMEM) {
        kdao_error_free(sub);
        return kdao__fail(ctx->err, NULL);
      }
      int out =
          COMPILE_FAIL(ctx, "%s: field \"%s\": %s", ctx->what, d->name, kdao_error_message(sub));
      kdao_error_free(sub);
      return out;
    }
  }
  return KDAO_OK;
}

static int cmp_field(const void *a, const void *b) {
  return strcmp(((const kdao__field *)a)->name, ((const kdao__field *)b)->name);
}

static int compile_fields(compile_ctx *ctx, const kdao_schema_def *def, bool entity,
                          kdao_schema *s) {
  size_t n = 0;
  if (def->fields)
    while (def->fields[n].name) n++;
  s->fields = kdao__calloc(n ? n : 1, sizeof *s->fields);
  if (!s->fields) return kdao__fail(ctx->err, NULL);
  for (size_t i = 0; i < n; i++) {
    /* Count the field before compiling it so a partial one is freed with the schema. */
    s->nfields = i + 1;
    int rc = compile_field(ctx, &def->fields[i], entity, &s->fields[i]);
    if (rc != KDAO_OK) return rc;
  }
  qsort(s->fields, n, sizeof *s->fields, cmp_field);
  for (size_t i = 1; i < n; i++)
    if (strcmp(s->fields[i - 1].name, s->fields[i].name) == 0)
      return COMPILE_FAIL(ctx, "%s: duplicate field \"%s\"", ctx->what, s->fields[i].name);
  return KDAO_OK;
}

static int compile_pk(compile_ctx *ctx, const kdao_schema_def *def, kdao_schema *s) {
  size_t n = 0;
  if (def->primary_key)
    while (def->primary_key[n]) n++;
  if (n == 0) return COMPILE_FAIL(ctx, "%s: an entity needs a primary_key", ctx->what);
  if (!(s->pk = kdao__calloc(n, sizeof *s->pk))) return kdao__fail(ctx->err, NULL);
  for (size_t i = 0; i < n; i++) {
    int idx = kdao__schema_field_index(s, def->primary_key[i]);
    if (idx < 0)
      return COMPILE_FAIL(ctx, "%s: primary key \"%s\" names no field", ctx->what,
                          def->primary_key[i]);
    for (size_t j = 0; j < i; j++)
      if (s->pk[j] == (size_t)idx)
        return COMPILE_FAIL(ctx, "%s: primary key \"%s\" listed twice", ctx->what,
                            def->primary_key[i]);
    s->pk[i] = (size_t)idx;
  }
  s->npk = n;
  return KDAO_OK;
}

static int compile_schema(const kdao_schema_def *def, bool entity, kdao_schema **out,
                          kdao_error **err) {
  *out = NULL;
  if (!def) return kdao__fail(err, kdao__error_fmt(KDAO_ERR_MISUSE, "schema definition is NULL"));

  char *what = entity && def->name ? kdao__asprintf("schema \"%s\"", def->name)
                                   : kdao__strdup(entity ? "schema" : "nested schema");
  if (!what) return kdao__fail(err, NULL);
  compile_ctx ctx = {what, err};
  kdao_schema *s = kdao__calloc(1, sizeof *s);
  int rc = KDAO_OK;
  if (!s) {
    rc = kdao__fail(err, NULL);
    goto cleanup;
  }
  s->flags = def->flags;
  s->self_check = def->self_check;
  s->ud = def->ud;

  /* Version 2 changed only the plugin definition: schema definitions of 1 read the same. */
  if (def->version < 1 || def->version > KDAO_DEF_VERSION) {
    rc = COMPILE_FAIL(&ctx, "%s: definition version %u, expected %u", what, def->version,
                      (unsigned)KDAO_DEF_VERSION);
    goto cleanup;
  }
  if (entity) {
    const char *table = def->table ? def->table : def->name;
    if (!valid_name(def->name, true) || !valid_name(table, true)) {
      rc = COMPILE_FAIL(&ctx, "%s: an entity needs a name and table matching [a-z_][a-z0-9_]*",
                        what);
      goto cleanup;
    }
    if (!(s->name = kdao__strdup(def->name)) || !(s->table = kdao__strdup(table))) {
      rc = kdao__fail(err, NULL);
      goto cleanup;
    }
  }
  if ((rc = compile_fields(&ctx, def, entity, s)) != KDAO_OK) goto cleanup;
  if (entity && (rc = compile_pk(&ctx, def, s)) != KDAO_OK) goto cleanup;
  if (entity && (rc = compile_uniques(&ctx, def, s)) != KDAO_OK) goto cleanup;
  *out = s;
  s = NULL;

cleanup:
  kdao_schema_free(s);
  kdao__free(what);
  return rc;
}

kdao_status kdao_schema_compile(const kdao_schema_def *def, kdao_schema **out, kdao_error **err) {
  if (!out)
    return kdao__fail(
        err, kdao__error_fmt(KDAO_ERR_MISUSE, "bad argument #2 to 'schema_compile' (out is NULL)"));
  /* A definition with a name is an entity; without one it is a nested (config) schema. */
  return compile_schema(def, def && def->name, out, err);
}

/* ---- composite uniques ---- */

static bool unique_member(const kdao__unique *u, size_t field) {
  for (size_t k = 0; k < u->n; k++)
    if (u->fields[k] == field) return true;
  return false;
}

json_t *kdao__unique_values(const kdao_schema *s, const kdao__unique *u, const json_t *row) {
  json_t *a = json_array();
  for (size_t k = 0; a && k < u->n; k++) {
    const kdao__field *f = &s->fields[u->fields[k]];
    json_t *v = json_object_get(row, f->name);
    json_t *nv;
    if (v == NULL || json_is_null(v)) {
      nv = json_null();
    } else if (f->type == KDAO_TYPE_ID && json_is_string(v)) {
      char *low = kdao__strdup(json_string_value(v));
      for (char *c = low; c && *c; c++)
        if (*c >= 'A' && *c <= 'Z') *c = (char)(*c - 'A' + 'a');
      nv = low ? json_string(low) : NULL;
      kdao__free(low);
    } else {
      nv = json_incref(v);
    }
    if (json_array_append_new(a, nv) != 0) {
      json_decref(a);
      a = NULL;
    }
  }
  return a;
}

bool kdao__unique_same(const kdao_schema *s, const kdao__unique *u, const json_t *a,
                       const json_t *b) {
  json_t *va = kdao__unique_values(s, u, a), *vb = kdao__unique_values(s, u, b);
  bool same = va && vb && json_equal(va, vb);
  json_decref(va);
  json_decref(vb);
  return same;
}

kdao_error *kdao__unique_violation(const kdao_schema *s, const kdao__unique *u, const json_t *row) {
  const char *name = s->fields[u->report].name;
  json_t *v = json_object_get(row, name);
  json_t *fields = u->message ? json_pack("{ss}", name, u->message)
                              : json_pack("{sO}", name, v ? v : json_null());
  if (fields == NULL) return kdao_error_new(KDAO_ERR_NOMEM, "out of memory");
  if (u->message) return kdao__error_schema_new(fields);
  kdao_error *e = kdao_error_new_fields(KDAO_ERR_UNIQUE, fields);
  json_decref(fields);
  return e;
}

bool kdao__unique_touched(const kdao_schema *s, const json_t *values, const json_t *nulls) {
  for (size_t i = 0; i < s->nuniques; i++) {
    for (size_t k = 0; k < s->uniques[i].n; k++) {
      const char *name = s->fields[s->uniques[i].fields[k]].name;
      if (json_object_get(values, name)) return true;
      size_t j;
      json_t *n;
      json_array_foreach(nulls, j, n) {
        if (json_is_string(n) && strcmp(json_string_value(n), name) == 0) return true;
      }
    }
  }
  return false;
}

/* The composite uniques the built-in list declares for `def`. */
static int compile_uniques(compile_ctx *ctx, const kdao_schema_def *def, kdao_schema *s) {
  size_t n = 0;
  for (const kdao__unique_def *d = kdao__unique_defs; d->schema; d++) n += d->schema == def;
  if (n == 0) return KDAO_OK;
  if (!(s->uniques = kdao__calloc(n, sizeof *s->uniques))) return kdao__fail(ctx->err, NULL);
  for (const kdao__unique_def *d = kdao__unique_defs; d->schema; d++) {
    if (d->schema != def) continue;
    kdao__unique *u = &s->uniques[s->nuniques++];
    while (d->fields[u->n]) u->n++;
    if (!(u->fields = kdao__calloc(u->n, sizeof *u->fields))) return kdao__fail(ctx->err, NULL);
    kdao__sb name = {0};
    for (size_t k = 0; k < u->n; k++) {
      int idx = kdao__schema_field_index(s, d->fields[k]);
      if (idx < 0) {
        kdao__free(kdao__sb_take(&name));
        return COMPILE_FAIL(ctx, "%s: unique \"%s\" names no field", ctx->what, d->fields[k]);
      }
      u->fields[k] = (size_t)idx;
      kdao__sb_addf(&name, "%s%s", k ? "," : "", d->fields[k]);
    }
    int report = kdao__schema_field_index(s, d->report);
    if (report < 0 || !unique_member(u, (size_t)report)) {
      kdao__free(kdao__sb_take(&name));
      return COMPILE_FAIL(ctx, "%s: unique reports a field it does not hold", ctx->what);
    }
    u->report = (size_t)report;
    u->message = d->message;
    if (!(u->name = kdao__sb_take(&name))) return kdao__fail(ctx->err, NULL);
  }
  return KDAO_OK;
}

/* ---- description ---- */

static int describe_set(json_t *obj, const char *key, json_t *value) {
  return value ? json_object_set_new(obj, key, value) : -1;
}

static json_t *describe_field(const kdao__field *f) {
  json_t *d = json_object();
  if (!d) return NULL;
  int rc = 0;
  /* Kong's /plugins/schema output: the definition as written, functions as "function". */
  if (f->type != KDAO_TYPE_ANY) rc |= describe_set(d, "type", json_string(kdao_type_name(f->type)));
  if (f->flags & KDAO_FIELD_REQUIRED) rc |= describe_set(d, "required", json_true());
  if (f->flags & KDAO_FIELD_UNIQUE) rc |= describe_set(d, "unique", json_true());
  if (f->flags & KDAO_FIELD_IMMUTABLE) rc |= describe_set(d, "immutable", json_true());
  if (f->flags & KDAO_FIELD_INSERT_VALUE) rc |= describe_set(d, "dao_insert_value", json_true());
  if (f->default_fn)
    rc |= describe_set(d, "default", json_string("function"));
  else if (f->default_value)
    rc |= describe_set(d, "default", json_deep_copy(f->default_value));
  if (f->foreign_entity) {
    char *fk = kdao__asprintf("%s:%s", f->foreign_entity, f->foreign_field);
    rc |= describe_set(d, "foreign", fk ? json_string(fk) : NULL);
    kdao__free(fk);
  }
  if (f->enum_values) {
    json_t *e = json_array();
    for (size_t i = 0; e && i < f->n_enum; i++)
      if (json_array_append_new(e, json_string(f->enum_values[i])) != 0) {
        json_decref(e);
        e = NULL;
      }
    rc |= describe_set(d, "enum", e);
  }
  if (f->regex_src) rc |= describe_set(d, "regex", json_string(f->regex_src));
  if (f->func) rc |= describe_set(d, "func", json_string("function"));
  if (f->nested)
    rc |= describe_set(d, "schema", kdao_schema_describe(f->nested));
  else if (f->schema_fn)
    rc |= describe_set(d, "schema", json_string("function"));
  if (rc != 0) {
    json_decref(d);
    return NULL;
  }
  return d;
}

json_t *kdao_schema_describe(const kdao_schema *schema) {
  if (!schema) return NULL;
  json_t *out = json_object();
  json_t *fields = json_object();
  int rc = (out && fields) ? 0 : -1;
  for (size_t i = 0; rc == 0 && i < schema->nfields; i++)
    rc = describe_set(fields, schema->fields[i].name, describe_field(&schema->fields[i]));
  if (rc == 0) {
    rc = json_object_set(out, "fields", fields);
  }
  if (rc == 0 && schema->table) {
    json_t *pk = json_array();
    for (size_t i = 0; pk && i < schema->npk; i++)
      if (json_array_append_new(pk, json_string(schema->fields[schema->pk[i]].name)) != 0) {
        json_decref(pk);
        pk = NULL;
      }
    rc |= describe_set(out, "primary_key", pk);
    rc |= describe_set(out, "table", json_string(schema->table));
  }
  if (rc == 0 && (schema->flags & KDAO_SCHEMA_NO_CONSUMER))
    rc = describe_set(out, "no_consumer", json_true());
  if (rc == 0 && (schema->flags & KDAO_SCHEMA_FLEXIBLE))
    rc = describe_set(out, "flexible", json_true());
  if (rc == 0 && schema->self_check) rc = describe_set(out, "self_check", json_string("function"));
  json_decref(fields);
  if (rc != 0) {
    json_decref(out);
    return NULL;
  }
  return out;
}
