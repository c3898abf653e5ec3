/*
 * plugin_json.c — plugins described in JSON (a plugins_dir for the CLI), the declarative
 * twin of Kong's daos.lua + schema.lua. The format is documented in docs/plugins.md.
 *
 * The description is turned into the same kdao_plugin_def a C caller would write and
 * registered through the same path, so JSON plugins get exactly the C plugins' behaviour.
 * Strings are borrowed from the parsed JSON; everything else is allocated in a small arena
 * released after registration (registration copies what it keeps).
 */
#include <stdlib.h>
#include <string.h>

#include "factory.h"

typedef struct arena {
  void **ptrs;
  size_t n, cap;
  kdao_error *err; /* first error met while building */
  const char *origin;
} arena;

static void *arena_keep(arena *a, void *p) {
  if (p == NULL) {
    if (!a->err) a->err = kdao_error_new(KDAO_ERR_NOMEM, "out of memory");
    return NULL;
  }
  if (a->n == a->cap) {
    size_t cap = a->cap ? a->cap * 2 : 16;
    void **g = kdao__realloc(a->ptrs, cap * sizeof *g);
    if (g == NULL) {
      kdao__free(p);
      if (!a->err) a->err = kdao_error_new(KDAO_ERR_NOMEM, "out of memory");
      return NULL;
    }
    a->ptrs = g;
    a->cap = cap;
  }
  return a->ptrs[a->n++] = p;
}

static void arena_free(arena *a) {
  for (size_t i = 0; i < a->n; i++) kdao__free(a->ptrs[i]);
  kdao__free(a->ptrs);
}

static void fail(arena *a, const char *what, const char *detail) {
  if (!a->err)
    a->err = kdao__error_fmt(KDAO_ERR_CONFIG, "%s: %s%s%s", a->origin, what, detail ? ": " : "",
                             detail ? detail : "");
}

static bool type_from_name(const char *s, kdao_type *t) {
  static const struct {
    const char *name;
    kdao_type t;
  } map[] = {{"id", KDAO_TYPE_ID},
             {"string", KDAO_TYPE_STRING},
             {"number", KDAO_TYPE_NUMBER},
             {"boolean", KDAO_TYPE_BOOLEAN},
             {"array", KDAO_TYPE_ARRAY},
             {"table", KDAO_TYPE_TABLE},
             {"timestamp", KDAO_TYPE_TIMESTAMP},
             {"url", KDAO_TYPE_URL},
             {"text", KDAO_TYPE_ANY},
             {"any", KDAO_TYPE_ANY}};
  for (size_t i = 0; i < sizeof map / sizeof *map; i++)
    if (strcmp(s, map[i].name) == 0) {
      *t = map[i].t;
      return true;
    }
  return false;
}

static const char *str_member(arena *a, const json_t *o, const char *key, bool required) {
  json_t *v = json_object_get(o, key);
  if (v == NULL && !required) return NULL;
  if (!json_is_string(v)) {
    fail(a, key, "must be a string");
    return NULL;
  }
  return json_string_value(v);
}

static const kdao_schema_def *schema_from_json(arena *a, const json_t *o, const char *name);

static const char *const *string_list(arena *a, const json_t *arr, const char *what) {
  if (!json_is_array(arr)) {
    fail(a, what, "must be an array of strings");
    return NULL;
  }
  const char **list = arena_keep(a, kdao__calloc(json_array_size(arr) + 1, sizeof *list));
  size_t i;
  json_t *v;
  json_array_foreach(arr, i, v) {
    if (!list) return NULL;
    if (!json_is_string(v)) {
      fail(a, what, "must be an array of strings");
      return NULL;
    }
    list[i] = json_string_value(v);
  }
  return list;
}

static const char *const FIELD_KEYS[] = {
    "type", "required", "unique", "immutable", "dao_insert_value", "default", "foreign",
    "enum", "regex",    "schema", NULL};

static void field_from_json(arena *a, const char *name, const json_t *o, kdao_field_def *f) {
  if (!json_is_object(o)) return fail(a, name, "field must be an object");
  const char *k;
  json_t *v;
  json_object_foreach((json_t *)o, k, v) {
    bool known = false;
    for (const char *const *p = FIELD_KEYS; *p; p++) known |= strcmp(*p, k) == 0;
    if (!known) return fail(a, name, "unknown field attribute"), (void)0;
  }
  f->name = name;
  const char *type = str_member(a, o, "type", false);
  if (type && !type_from_name(type, &f->type)) return fail(a, name, "unknown type");
  static const struct {
    const char *key;
    unsigned flag;
  } flags[] = {{"required", KDAO_FIELD_REQUIRED},
               {"unique", KDAO_FIELD_UNIQUE},
               {"immutable", KDAO_FIELD_IMMUTABLE},
               {"dao_insert_value", KDAO_FIELD_INSERT_VALUE}};
  for (size_t i = 0; i < sizeof flags / sizeof *flags; i++) {
    json_t *b = json_object_get(o, flags[i].key);
    if (b && !json_is_boolean(b)) return fail(a, name, "flags must be booleans");
    if (json_is_true(b)) f->flags |= flags[i].flag;
  }
  json_t *def = json_object_get(o, "default");
  if (def) f->default_json = arena_keep(a, json_dumps(def, JSON_ENCODE_ANY | JSON_COMPACT));
  f->foreign = str_member(a, o, "foreign", false);
  f->regex = str_member(a, o, "regex", false);
  json_t *en = json_object_get(o, "enum");
  if (en) f->enum_values = string_list(a, en, "enum");
  json_t *sub = json_object_get(o, "schema");
  if (sub) f->schema = schema_from_json(a, sub, NULL);
}

static const kdao_schema_def *schema_from_json(arena *a, const json_t *o, const char *name) {
  if (!json_is_object(o)) return fail(a, name ? name : "schema", "must be an object"), NULL;
  json_t *fields = json_object_get(o, "fields");
  if (!json_is_object(fields)) return fail(a, name ? name : "schema", "needs \"fields\""), NULL;
  kdao_schema_def *s = arena_keep(a, kdao__calloc(1, sizeof *s));
  kdao_field_def *fs = arena_keep(a, kdao__calloc(json_object_size(fields) + 1, sizeof *fs));
  if (!s || !fs) return NULL;
  s->version = KDAO_DEF_VERSION;
  s->name = name;
  s->fields = fs;
  if (name) {
    s->table = str_member(a, o, "table", false);
    json_t *pk = json_object_get(o, "primary_key");
    s->primary_key = pk ? string_list(a, pk, "primary_key") : NULL;
    if (!pk) fail(a, name, "entity needs \"primary_key\"");
  }
  if (json_is_true(json_object_get(o, "flexible"))) s->flags |= KDAO_SCHEMA_FLEXIBLE;
  if (json_is_true(json_object_get(o, "no_consumer"))) s->flags |= KDAO_SCHEMA_NO_CONSUMER;
  size_t i = 0;
  const char *k;
  json_t *v;
  json_object_foreach(fields, k, v) field_from_json(a, k, v, &fs[i++]);
  return s;
}

static const kdao_migration_def *migrations_from_json(arena *a, const json_t *arr) {
  if (!json_is_array(arr)) return fail(a, "migrations", "must be arrays"), NULL;
  kdao_migration_def *m = arena_keep(a, kdao__calloc(json_array_size(arr) + 1, sizeof *m));
  size_t i;
  json_t *v;
  json_array_foreach(arr, i, v) {
    if (!m) return NULL;
    m[i].name = str_member(a, v, "name", true);
    m[i].up = str_member(a, v, "up", true);
  }
  return m;
}

int kdao__plugin_register_json(kdao_factory *f, const json_t *desc, const char *origin,
                               kdao_error **err) {
  arena a = {.origin = origin ? origin : "plugin"};
  kdao_plugin_def def = {.version = KDAO_DEF_VERSION};
  if (!json_is_object(desc)) fail(&a, "plugin", "must be a JSON object");
  def.name = str_member(&a, desc, "name", true);
  json_t *cfg = json_object_get(desc, "config");
  if (cfg) {
    kdao_schema_def *c = (kdao_schema_def *)schema_from_json(&a, cfg, NULL);
    if (c && json_is_true(json_object_get(desc, "no_consumer")))
      c->flags |= KDAO_SCHEMA_NO_CONSUMER;
    def.config = c;
  }
  json_t *daos = json_object_get(desc, "daos");
  if (daos && !json_is_object(daos)) fail(&a, "daos", "must be an object");
  const kdao_schema_def **ents =
      arena_keep(&a, kdao__calloc(json_object_size(daos) + 1, sizeof *ents));
  size_t n = 0;
  const char *k;
  json_t *v;
  json_object_foreach(daos, k, v) if (ents) ents[n++] = schema_from_json(&a, v, k);
  def.entities = ents;
  /* Every backend's list is passed on: the factory picks its own and ignores the others. */
  json_t *migs = json_object_get(desc, "migrations");
  if (migs && !json_is_object(migs)) fail(&a, "migrations", "must be an object");
  kdao_plugin_migrations *pm = arena_keep(&a, kdao__calloc(json_object_size(migs) + 1, sizeof *pm));
  n = 0;
  json_object_foreach(migs, k, v) if (pm) {
    pm[n].backend = k;
    pm[n++].migrations = migrations_from_json(&a, v);
  }
  def.migrations = pm;
  int rc;
  if (a.err) {
    rc = kdao__fail(err, a.err);
  } else {
    rc = kdao_factory_register_plugin(f, &def, err);
  }
  arena_free(&a);
  return rc;
}
