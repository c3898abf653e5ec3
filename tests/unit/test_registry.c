/*
 * test_registry.c — registration (src/factory.c) and the backend list (src/backends.c):
 * replacing an entity keeps handed-out pointers valid, a plugin registers all or nothing,
 * plugin migrations are picked by backend name, and every listed backend describes itself.
 * SQLite in memory: no server needed.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "backend.h"
#include "kdao.h"
#include "schema.h"

static kdao_factory *new_factory(void) {
  kdao_config *cfg = NULL;
  kdao_factory *f = NULL;
  assert_int_equal(kdao_config_new(&cfg, NULL), KDAO_OK);
  assert_int_equal(kdao_config_set(cfg, "database", "sqlite", NULL), KDAO_OK);
  assert_int_equal(kdao_config_set(cfg, "sqlite_path", ":memory:", NULL), KDAO_OK);
  assert_int_equal(kdao_factory_new(cfg, &f, NULL), KDAO_OK);
  kdao_config_free(cfg);
  return f;
}

static const char *const pk_id[] = {"id", NULL};

static const kdao_field_def note_v1_fields[] = {
    {.name = "id", .type = KDAO_TYPE_ID, .flags = KDAO_FIELD_INSERT_VALUE},
    {.name = "body", .type = KDAO_TYPE_STRING},
    {0}};
static const kdao_field_def note_v2_fields[] = {
    {.name = "id", .type = KDAO_TYPE_ID, .flags = KDAO_FIELD_INSERT_VALUE},
    {.name = "body", .type = KDAO_TYPE_STRING},
    {.name = "title", .type = KDAO_TYPE_STRING, .flags = KDAO_FIELD_REQUIRED},
    {0}};
static const kdao_schema_def note_v1 = {
    .version = KDAO_DEF_VERSION, .name = "notes", .primary_key = pk_id, .fields = note_v1_fields};
static const kdao_schema_def note_v2 = {
    .version = KDAO_DEF_VERSION, .name = "notes", .primary_key = pk_id, .fields = note_v2_fields};

static bool has_field(const kdao_schema *s, const char *name) {
  return kdao__schema_field_index(s, name) >= 0;
}

static void replacing_an_entity_keeps_its_dao_and_old_schema(void **state) {
  (void)state;
  kdao_factory *f = new_factory();
  assert_int_equal(kdao_factory_register_entity(f, &note_v1, NULL), KDAO_OK);
  kdao_dao *before = kdao_factory_dao(f, "notes");
  const kdao_schema *old = kdao_dao_schema(before);
  assert_non_null(before);
  assert_false(has_field(old, "title"));

  assert_int_equal(kdao_factory_register_entity(f, &note_v2, NULL), KDAO_OK);
  /* Same object, new schema; the old schema is still readable. */
  assert_ptr_equal(kdao_factory_dao(f, "notes"), before);
  assert_ptr_not_equal(kdao_dao_schema(before), old);
  assert_true(has_field(kdao_dao_schema(before), "title"));
  assert_string_equal(kdao_schema_name(old), "notes");
  assert_false(has_field(old, "title"));

  /* The replacement is what the DAO validates and stores. */
  assert_int_equal(kdao_factory_connect(f, NULL), KDAO_OK);
  assert_int_equal(kdao_factory_migrate(f, NULL, NULL, NULL, NULL), KDAO_OK);
  json_t *row = NULL;
  kdao_error *err = NULL;
  json_t *bad = json_pack("{s:s}", "body", "x");
  assert_int_equal(kdao_dao_insert(before, bad, 0, 0, &row, &err), KDAO_ERR_SCHEMA);
  kdao_error_free(err);
  json_decref(bad);
  json_t *good = json_pack("{s:s, s:s}", "body", "x", "title", "t");
  assert_int_equal(kdao_dao_insert(before, good, 0, 0, &row, NULL), KDAO_OK);
  assert_string_equal(json_string_value(json_object_get(row, "title")), "t");
  json_decref(row);
  json_decref(good);
  kdao_factory_free(f);
}

static const kdao_field_def broken_fields[] = {
    {.name = "id", .type = KDAO_TYPE_ID},
    {.name = "code", .type = KDAO_TYPE_STRING, .regex = "("}, /* does not compile */
    {0}};
static const kdao_schema_def first_entity = {
    .version = KDAO_DEF_VERSION, .name = "firsts", .primary_key = pk_id, .fields = note_v1_fields};
static const kdao_schema_def broken_entity = {
    .version = KDAO_DEF_VERSION, .name = "brokens", .primary_key = pk_id, .fields = broken_fields};
static const kdao_schema_def *const half_entities[] = {&first_entity, &broken_entity, NULL};

static bool listed(json_t *names, const char *name) {
  size_t i;
  json_t *v;
  bool found = false;
  json_array_foreach(names, i, v) found |= strcmp(json_string_value(v), name) == 0;
  json_decref(names);
  return found;
}

static void a_plugin_failing_on_its_second_entity_registers_nothing(void **state) {
  (void)state;
  kdao_factory *f = new_factory();
  const kdao_plugin_def half = {
      .version = KDAO_DEF_VERSION, .name = "half", .entities = half_entities};
  kdao_error *err = NULL;
  assert_int_equal(kdao_factory_register_plugin(f, &half, &err), KDAO_ERR_MISUSE);
  assert_non_null(strstr(kdao_error_message(err), "brokens"));
  kdao_error_free(err);
  assert_null(kdao_factory_dao(f, "firsts"));
  assert_null(kdao_factory_dao(f, "brokens"));
  assert_false(listed(kdao_factory_plugin_names(f), "half"));
  assert_false(listed(kdao_factory_dao_names(f), "firsts"));
  /* The factory is intact: the same plugin without the broken entity registers. */
  const kdao_schema_def *const ok_entities[] = {&first_entity, NULL};
  const kdao_plugin_def whole = {
      .version = KDAO_DEF_VERSION, .name = "half", .entities = ok_entities};
  assert_int_equal(kdao_factory_register_plugin(f, &whole, NULL), KDAO_OK);
  assert_non_null(kdao_factory_dao(f, "firsts"));
  assert_true(listed(kdao_factory_plugin_names(f), "half"));
  kdao_factory_free(f);
}

static void a_version_1_plugin_definition_is_refused_with_what_to_do(void **state) {
  (void)state;
  kdao_factory *f = new_factory();
  const kdao_plugin_def old = {.version = 1, .name = "old"};
  kdao_error *err = NULL;
  assert_int_equal(kdao_factory_register_plugin(f, &old, &err), KDAO_ERR_MISUSE);
  assert_non_null(strstr(kdao_error_message(err), "keyed by backend name"));
  kdao_error_free(err);
  assert_false(listed(kdao_factory_plugin_names(f), "old"));
  /* Schema definitions kept their layout: version 1 still compiles. */
  kdao_schema_def v1 = note_v1;
  v1.version = 1;
  assert_int_equal(kdao_factory_register_entity(f, &v1, NULL), KDAO_OK);
  kdao_factory_free(f);
}

static const kdao_migration_def notes_sqlite[] = {
    {"2026-01-01-notes", "CREATE TABLE \"firsts\" (\"id\" TEXT PRIMARY KEY, \"body\" TEXT)"},
    {NULL, NULL}};
static const kdao_migration_def never_run[] = {{"never", "this is not SQL"}, {NULL, NULL}};
static const kdao_schema_def *const first_only[] = {&first_entity, NULL};

static void plugin_migrations_are_picked_by_backend_name(void **state) {
  (void)state;
  kdao_factory *f = new_factory();
  /* Other names, built or not, are ignored: one definition serves every build. */
  const kdao_plugin_migrations by_backend[] = {{"postgres", never_run},
                                               {"no-such-backend", never_run},
                                               {"sqlite", notes_sqlite},
                                               {NULL, NULL}};
  const kdao_plugin_def def = {.version = KDAO_DEF_VERSION,
                               .name = "with-migrations",
                               .entities = first_only,
                               .migrations = by_backend};
  assert_int_equal(kdao_factory_register_plugin(f, &def, NULL), KDAO_OK);
  assert_int_equal(kdao_factory_connect(f, NULL), KDAO_OK);
  kdao_error *err = NULL;
  assert_int_equal(kdao_factory_migrate(f, NULL, NULL, NULL, &err), KDAO_OK);
  json_t *done = NULL;
  assert_int_equal(kdao_factory_migrations(f, &done, NULL), KDAO_OK);
  json_t *mine = json_object_get(done, "with-migrations");
  assert_int_equal(json_array_size(mine), 1);
  assert_string_equal(json_string_value(json_array_get(mine, 0)), "2026-01-01-notes");
  json_decref(done);
  kdao_factory_free(f);
}

static void two_migration_lists_for_the_backend_are_refused(void **state) {
  (void)state;
  kdao_factory *f = new_factory();
  const kdao_plugin_migrations twice[] = {
      {"sqlite", notes_sqlite}, {"sqlite", never_run}, {NULL, NULL}};
  const kdao_plugin_def def = {
      .version = KDAO_DEF_VERSION, .name = "twice", .entities = first_only, .migrations = twice};
  kdao_error *err = NULL;
  assert_int_equal(kdao_factory_register_plugin(f, &def, &err), KDAO_ERR_MISUSE);
  assert_non_null(strstr(kdao_error_message(err), "two migration lists"));
  kdao_error_free(err);
  assert_null(kdao_factory_dao(f, "firsts"));
  kdao_factory_free(f);
}

static void every_listed_backend_describes_itself(void **state) {
  (void)state;
  assert_non_null(kdao__backends[0]);
  kdao_config *cfg = NULL;
  assert_int_equal(kdao_config_new(&cfg, NULL), KDAO_OK);
  /* The first backend is the default `database`. */
  assert_string_equal(kdao_config_get(cfg, "database"), kdao__backends[0]->name);
  for (const kdao__backend_ops *const *b = kdao__backends; *b != NULL; b++) {
    assert_ptr_equal(kdao__backend_find((*b)->name), *b);
    assert_non_null(kdao__backend_migrations(*b, "core"));
    /* Its name is a `database` value, its keys are configuration keys. */
    assert_int_equal(kdao_config_set(cfg, "database", (*b)->name, NULL), KDAO_OK);
    for (const kdao__conf_option *o = (*b)->options; o && o->key; o++) {
      const char *v = kdao_config_get(cfg, o->key);
      if (o->def == NULL)
        assert_null(v);
      else
        assert_string_equal(v, o->def);
    }
  }
  assert_null(kdao__backend_find("no-such-backend"));
  kdao_error *err = NULL;
  assert_int_equal(kdao_config_set(cfg, "database", "no-such-backend", &err), KDAO_ERR_CONFIG);
  assert_non_null(strstr(kdao_error_message(err), kdao__backends[0]->name));
  kdao_error_free(err);
  kdao_config_free(cfg);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(replacing_an_entity_keeps_its_dao_and_old_schema),
      cmocka_unit_test(a_plugin_failing_on_its_second_entity_registers_nothing),
      cmocka_unit_test(a_version_1_plugin_definition_is_refused_with_what_to_do),
      cmocka_unit_test(plugin_migrations_are_picked_by_backend_name),
      cmocka_unit_test(two_migration_lists_for_the_backend_are_refused),
      cmocka_unit_test(every_listed_backend_describes_itself),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
