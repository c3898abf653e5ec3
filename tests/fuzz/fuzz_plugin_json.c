/*
 * fuzz_plugin_json.c — libFuzzer target over JSON plugin descriptions (a plugins_dir file,
 * docs/plugins.md): parsed with jansson and registered with kdao__plugin_register_json on a
 * fresh, unconnected SQLite :memory: factory.
 *
 * A refused description must be refused with KDAO_ERR_CONFIG or KDAO_ERR_MISUSE. An accepted
 * one without hand-written migrations is then put to use: connect and migrate (which runs
 * the CREATE TABLE generated from the fuzzed names and attributes), read every entity, and
 * validate an empty and a small config against the plugin's config schema. Descriptions with
 * "migrations" stop after registration: their SQL is the plugin author's to run, and running
 * arbitrary SQL (ATTACH ...) could write files.
 */
#include "factory.h"
#include "fuzz_util.h"

static bool kind_in(int kind, int a, int b) { return kind == a || kind == b; }

static void use_plugin(kdao_factory *f, const char *name, bool has_config) {
  kdao_error *err = NULL;
  int rc = kdao_factory_connect(f, &err);
  if (rc == KDAO_OK) rc = kdao_factory_migrate(f, NULL, NULL, NULL, &err);
  if (rc != KDAO_OK) {
    /* A foreign key to a missing entity, a table clashing with a core one: refused, fine. */
    FUZZ_CHECK(kind_in(rc, KDAO_ERR_MISUSE, KDAO_ERR_DB) && kdao_error_message(err),
               "connect/migrate failed with %s", kdao_error_kind_name(rc));
    kdao_error_free(err);
    return;
  }
  json_t *names = kdao_factory_dao_names(f);
  size_t i;
  json_t *n;
  json_array_foreach(names, i, n) {
    json_t *rows = NULL;
    rc = kdao_dao_find_all(kdao_factory_dao(f, json_string_value(n)), NULL, &rows, &err);
    FUZZ_CHECK(rc == KDAO_OK || rc == KDAO_ERR_DB, "find_all on %s failed with %s",
               json_string_value(n), kdao_error_kind_name(rc));
    json_decref(rows);
    kdao_error_free(err);
    err = NULL;
  }
  json_decref(names);
  const kdao_schema *config = kdao_factory_plugin_schema(f, name);
  FUZZ_CHECK((config != NULL) == has_config, "plugin '%s': config schema %p", name,
             (const void *)config);
  if (!config) return;
  static const char *const samples[] = {"{}", "{\"a\": 1, \"b\": [\"x\"], \"c\": {\"d\": true}}"};
  for (size_t s = 0; s < sizeof samples / sizeof *samples; s++) {
    json_t *cfg = json_loads(samples[s], 0, NULL);
    rc = kdao_validate(config, cfg, KDAO_MODE_INSERT, NULL, &err);
    FUZZ_CHECK(rc == KDAO_OK || rc == KDAO_ERR_SCHEMA, "validating %s failed with %s", samples[s],
               kdao_error_kind_name(rc));
    json_decref(cfg);
    kdao_error_free(err);
    err = NULL;
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  json_t *desc = json_loadb((const char *)data, size, 0, NULL);
  if (!desc) return 0;
  kdao_factory *f = fuzz_factory(false);
  kdao_error *err = NULL;
  int rc = kdao__plugin_register_json(f, desc, "fuzz.json", &err);
  if (rc == KDAO_OK) {
    const char *name = json_string_value(json_object_get(desc, "name"));
    FUZZ_CHECK(name != NULL, "a description without a name was registered");
    if (!json_object_get(desc, "migrations"))
      use_plugin(f, name, json_object_get(desc, "config") != NULL);
  } else {
    FUZZ_CHECK(kind_in(rc, KDAO_ERR_CONFIG, KDAO_ERR_MISUSE) && kdao_error_message(err),
               "registration failed with %s", kdao_error_kind_name(rc));
  }
  kdao_error_free(err);
  kdao_factory_free(f);
  json_decref(desc);
  return 0;
}
