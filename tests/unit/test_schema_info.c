/*
 * test_schema_info.c — schema introspection through the public API only (kdao.h): field
 * count, field info by index and name, primary keys, type names, on the built-in entities of
 * a factory and on a compiled schema with a static nested schema. What the CLI and the
 * admin API rely on to work on any entity.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "kdao.h"

static kdao_factory *factory;

/* A factory with the built-in entities and plugins; never connected, nothing touches disk. */
static int setup(void **state) {
  (void)state;
  kdao_config *cfg = NULL;
  if (kdao_config_new(&cfg, NULL) != KDAO_OK ||
      kdao_config_set(cfg, "database", "sqlite", NULL) != KDAO_OK ||
      kdao_factory_new(cfg, &factory, NULL) != KDAO_OK) {
    kdao_config_free(cfg);
    return -1;
  }
  kdao_config_free(cfg);
  return 0;
}

static int teardown(void **state) {
  (void)state;
  kdao_factory_free(factory);
  return 0;
}

static const kdao_schema *entity(const char *name) {
  kdao_dao *dao = kdao_factory_dao(factory, name);
  assert_non_null(dao);
  return kdao_dao_schema(dao);
}

/* Field `name` of `s`, which must exist. */
static kdao_field_info field(const kdao_schema *s, const char *name) {
  int i = kdao_schema_field_index(s, name);
  if (i < 0) fail_msg("no field '%s'", name);
  kdao_field_info info;
  assert_true(kdao_schema_field_info(s, (size_t)i, &info));
  assert_string_equal(info.name, name);
  return info;
}

static void apis_primary_key(void **state) {
  (void)state;
  const kdao_schema *apis = entity("apis");
  assert_int_equal(kdao_schema_primary_key_count(apis), 1);
  assert_string_equal(kdao_schema_primary_key(apis, 0), "id");
  assert_null(kdao_schema_primary_key(apis, 1));
}

/* Key order is the definition's, not the fields' name order. */
static void plugins_primary_key_keeps_key_order(void **state) {
  (void)state;
  const kdao_schema *plugins = entity("plugins");
  assert_int_equal(kdao_schema_primary_key_count(plugins), 2);
  assert_string_equal(kdao_schema_primary_key(plugins, 0), "id");
  assert_string_equal(kdao_schema_primary_key(plugins, 1), "name");
}

/* Every field once, in name order, each index found again by name; agrees with describe. */
static void apis_fields_by_index_and_name(void **state) {
  (void)state;
  const kdao_schema *apis = entity("apis");
  size_t n = kdao_schema_field_count(apis);
  json_t *described = kdao_schema_describe(apis);
  assert_non_null(described);
  assert_int_equal(n, json_object_size(json_object_get(described, "fields")));
  assert_int_equal(n, 15);
  const char *prev = NULL;
  for (size_t i = 0; i < n; i++) {
    kdao_field_info info;
    assert_true(kdao_schema_field_info(apis, i, &info));
    assert_non_null(json_object_get(json_object_get(described, "fields"), info.name));
    assert_int_equal(kdao_schema_field_index(apis, info.name), (int)i);
    if (prev != NULL) assert_true(strcmp(prev, info.name) < 0);
    prev = info.name;
  }
  json_decref(described);
}

static void apis_types_and_flags(void **state) {
  (void)state;
  const kdao_schema *apis = entity("apis");
  kdao_field_info id = field(apis, "id");
  assert_int_equal(id.type, KDAO_TYPE_ID);
  assert_int_equal(id.flags, KDAO_FIELD_REQUIRED | KDAO_FIELD_INSERT_VALUE);
  assert_false(id.has_default);

  kdao_field_info created = field(apis, "created_at");
  assert_int_equal(created.type, KDAO_TYPE_TIMESTAMP);
  assert_int_equal(created.flags,
                   KDAO_FIELD_REQUIRED | KDAO_FIELD_IMMUTABLE | KDAO_FIELD_INSERT_VALUE);

  kdao_field_info name = field(apis, "name");
  assert_int_equal(name.type, KDAO_TYPE_STRING);
  assert_int_equal(name.flags, KDAO_FIELD_REQUIRED | KDAO_FIELD_UNIQUE);
  assert_null(name.foreign_entity);
  assert_null(name.foreign_field);
  assert_null(name.schema);
  assert_false(name.schema_fn);

  kdao_field_info url = field(apis, "upstream_url");
  assert_int_equal(url.type, KDAO_TYPE_URL);
  assert_int_equal(field(apis, "hosts").type, KDAO_TYPE_ARRAY);
  kdao_field_info retries = field(apis, "retries");
  assert_int_equal(retries.type, KDAO_TYPE_NUMBER);
  assert_int_equal(retries.flags, 0);
  assert_true(retries.has_default);
  assert_int_equal(field(apis, "strip_uri").type, KDAO_TYPE_BOOLEAN);
}

static void plugins_foreign_and_config(void **state) {
  (void)state;
  const kdao_schema *plugins = entity("plugins");
  kdao_field_info api_id = field(plugins, "api_id");
  assert_int_equal(api_id.type, KDAO_TYPE_ID);
  assert_string_equal(api_id.foreign_entity, "apis");
  assert_string_equal(api_id.foreign_field, "id");
  kdao_field_info consumer_id = field(plugins, "consumer_id");
  assert_string_equal(consumer_id.foreign_entity, "consumers");
  assert_string_equal(consumer_id.foreign_field, "id");

  /* config's schema depends on the row's plugin name: no static schema to hand out */
  kdao_field_info config = field(plugins, "config");
  assert_int_equal(config.type, KDAO_TYPE_TABLE);
  assert_null(config.schema);
  assert_true(config.schema_fn);
  assert_true(config.has_default);
}

/* A plugin's config schema is a nested schema: fields, but no name, table or key. */
static void plugin_config_schema(void **state) {
  (void)state;
  const kdao_schema *conf = kdao_factory_plugin_schema(factory, "key-auth");
  assert_non_null(conf);
  assert_null(kdao_schema_name(conf));
  assert_int_equal(kdao_schema_primary_key_count(conf), 0);
  assert_null(kdao_schema_primary_key(conf, 0));
  kdao_field_info names = field(conf, "key_names");
  assert_int_equal(names.type, KDAO_TYPE_ARRAY);
  assert_int_equal(names.flags, KDAO_FIELD_REQUIRED);
  assert_true(names.has_default);
  assert_int_equal(field(conf, "hide_credentials").type, KDAO_TYPE_BOOLEAN);
}

static const kdao_field_def limits_fields[] = {
    {.name = "second", .type = KDAO_TYPE_NUMBER},
    {.name = "minute", .type = KDAO_TYPE_NUMBER, .flags = KDAO_FIELD_REQUIRED},
    {0},
};
static const kdao_schema_def limits_def = {.version = KDAO_DEF_VERSION, .fields = limits_fields};
static const kdao_field_def outer_fields[] = {
    {.name = "limits", .type = KDAO_TYPE_TABLE, .schema = &limits_def},
    {.name = "label", .type = KDAO_TYPE_ANY},
    {0},
};
static const kdao_schema_def outer_def = {.version = KDAO_DEF_VERSION, .fields = outer_fields};

/* A static nested schema is reachable from its field and lives with the outer schema. */
static void static_nested_schema(void **state) {
  (void)state;
  kdao_schema *outer = NULL;
  assert_int_equal(kdao_schema_compile(&outer_def, &outer, NULL), KDAO_OK);
  kdao_field_info limits = field(outer, "limits");
  assert_non_null(limits.schema);
  assert_false(limits.schema_fn);
  assert_int_equal(kdao_schema_field_count(limits.schema), 2);
  kdao_field_info first;
  assert_true(kdao_schema_field_info(limits.schema, 0, &first));
  assert_string_equal(first.name, "minute"); /* name order, not definition order */
  assert_int_equal(first.flags, KDAO_FIELD_REQUIRED);
  assert_int_equal(field(outer, "label").type, KDAO_TYPE_ANY);
  kdao_schema_free(outer);
}

static void out_of_range_and_null(void **state) {
  (void)state;
  const kdao_schema *apis = entity("apis");
  kdao_field_info info = {.name = "untouched"};
  assert_false(kdao_schema_field_info(apis, kdao_schema_field_count(apis), &info));
  assert_false(kdao_schema_field_info(NULL, 0, &info));
  assert_string_equal(info.name, "untouched");
  assert_false(kdao_schema_field_info(apis, 0, NULL));
  assert_int_equal(kdao_schema_field_index(apis, "nope"), -1);
  assert_int_equal(kdao_schema_field_index(apis, NULL), -1);
  assert_int_equal(kdao_schema_field_index(NULL, "id"), -1);
  assert_int_equal(kdao_schema_field_count(NULL), 0);
  assert_int_equal(kdao_schema_primary_key_count(NULL), 0);
  assert_null(kdao_schema_primary_key(NULL, 0));
}

static void type_names(void **state) {
  (void)state;
  assert_string_equal(kdao_type_name(KDAO_TYPE_ID), "id");
  assert_string_equal(kdao_type_name(KDAO_TYPE_URL), "url");
  assert_string_equal(kdao_type_name(KDAO_TYPE_ANY), "any");
  assert_string_equal(kdao_type_name((kdao_type)99), "any");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(apis_primary_key),
      cmocka_unit_test(plugins_primary_key_keeps_key_order),
      cmocka_unit_test(apis_fields_by_index_and_name),
      cmocka_unit_test(apis_types_and_flags),
      cmocka_unit_test(plugins_foreign_and_config),
      cmocka_unit_test(plugin_config_schema),
      cmocka_unit_test(static_nested_schema),
      cmocka_unit_test(out_of_range_and_null),
      cmocka_unit_test(type_names),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
