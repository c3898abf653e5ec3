/*
 * test_entities_plugins.c — the plugins entity and the built-in plugins (key-auth,
 * basic-auth, acl): config schemas, credential entities, messages of Kong 0.10.4.
 *
 * Config validation needs the factory that knows the plugins: these tests use a factory
 * that is built but never connected. What needs rows (the duplicate-plugin check, the acls
 * group check, basic-auth's stored password) belongs to the integration suite.
 */
#include "unit/test_entities.h"

#define UUID "7b31b2d8-0d63-4c8b-8a4b-6b1e0b1b8b4e"
#define UUID2 "0c8bd0a6-58a0-4e41-a0a5-1cf3b0c1a6a2"

static kdao_factory *factory;
static kdao_dao *plugins_dao;
static kdao_schema *plugins;

static int setup(void **state) {
  (void)state;
  kdao_config *cfg = NULL;
  kdao_error *err = NULL;
  if (kdao_config_new(&cfg, &err) != KDAO_OK ||
      kdao_config_set(cfg, "sqlite_path", ":memory:", &err) != KDAO_OK ||
      kdao_factory_new(cfg, &factory, &err) != KDAO_OK)
    fail_msg("factory: %s", kdao_error_message(err));
  kdao_config_free(cfg);
  plugins_dao = kdao_factory_dao(factory, "plugins");
  assert_non_null(plugins_dao);
  plugins = compile_def(&kdao__schema_plugins);
  return 0;
}

static int teardown(void **state) {
  (void)state;
  kdao_schema_free(plugins);
  kdao_factory_free(factory);
  return 0;
}

/*
 * A plugin row as a full update sees it: id and created_at present, every rule applied, but
 * no duplicate lookup (that needs a connected factory; on insert it is the last step).
 */
static json_t *plugin_row(const char *name, const char *config_json) {
  json_t *t = json_pack("{sssIssss}", "id", UUID, "created_at", (json_int_t)1500000000000, "name",
                        name, "api_id", UUID2);
  assert_non_null(t);
  if (config_json) json_object_set_new(t, "config", J(config_json));
  return t;
}

static json_t *plugin_ok(const char *name, const char *config_json) {
  return expect_valid_mode(plugins, plugin_row(name, config_json), KDAO_MODE_FULL_UPDATE,
                           plugins_dao);
}

static void plugin_config_error(const char *name, const char *config_json, const char *field,
                                const char *message) {
  expect_field_error_mode(plugins, plugin_row(name, config_json), KDAO_MODE_FULL_UPDATE,
                          plugins_dao, field, message);
}

/* ---- plugins ---- */

static void plugin_name_is_required(void **state) {
  (void)state;
  expect_field_error(plugins, J("{}"), "name", "name is required");
}

static void plugin_unknown_name(void **state) {
  (void)state;
  expect_field_error_mode(plugins, J("{'name': 'world domination'}"), KDAO_MODE_INSERT, plugins_dao,
                          "config", "Plugin \"world domination\" not found");
  /* Outside a factory there is no plugin to look up: the config is not checked. */
  json_decref(expect_valid(plugins, J("{'name': 'world domination', 'config': {'x': 1}}")));
}

static void plugin_config_defaults_come_from_its_schema(void **state) {
  (void)state;
  json_t *out = plugin_ok("key-auth", NULL);
  json_t *want = J("{'key_names': ['apikey'], 'hide_credentials': false, 'anonymous': '',"
                   " 'key_in_body': false}");
  assert_true(json_equal(json_object_get(out, "config"), want));
  assert_true(json_is_true(json_object_get(out, "enabled")));
  json_decref(want);
  json_decref(out);
}

static void plugin_config_errors_are_keyed_config_dot_field(void **state) {
  (void)state;
  plugin_config_error("key-auth", "{'hide_credentials': 'maybe'}", "config.hide_credentials",
                      "hide_credentials is not a boolean");
  plugin_config_error("key-auth", "{'unknown': 1}", "config.unknown",
                      "unknown is an unknown field");
}

static void plugin_no_consumer(void **state) {
  (void)state;
  const char *names[] = {"key-auth", "basic-auth", "acl"};
  const char *configs[] = {NULL, NULL, "{'whitelist': ['admins']}"};
  for (size_t i = 0; i < 3; i++) {
    json_t *t = plugin_row(names[i], configs[i]);
    json_object_set_new(t, "consumer_id", json_string(UUID));
    expect_check_error_mode(plugins, t, KDAO_MODE_FULL_UPDATE, plugins_dao, KDAO_ERR_SCHEMA,
                            "No consumer can be configured for that plugin");
  }
}

static void plugin_without_config_schema_accepts_any_config(void **state) {
  (void)state;
  kdao_factory *f = NULL;
  kdao_error *err = NULL;
  kdao_config *cfg = NULL;
  assert_int_equal(kdao_config_new(&cfg, &err), KDAO_OK);
  assert_int_equal(kdao_config_set(cfg, "sqlite_path", ":memory:", &err), KDAO_OK);
  assert_int_equal(kdao_factory_new(cfg, &f, &err), KDAO_OK);
  const kdao_plugin_def loose = {.version = KDAO_DEF_VERSION, .name = "loose"};
  assert_int_equal(kdao_factory_register_plugin(f, &loose, &err), KDAO_OK);
  json_t *t = plugin_row("loose", "{'anything': [1, 2]}");
  json_decref(expect_valid_mode(plugins, t, KDAO_MODE_FULL_UPDATE, kdao_factory_dao(f, "plugins")));
  kdao_factory_free(f);
  kdao_config_free(cfg);
}

static void plugin_partial_update_without_name_or_config(void **state) {
  (void)state;
  /* Kong raised a Lua error without a name; kdao has nothing to check. */
  json_decref(expect_valid_mode(plugins, J("{'enabled': false}"), KDAO_MODE_UPDATE, plugins_dao));
  /* Without config, the stored config is kept and not re-checked (Kong checked {}). */
  json_decref(expect_valid_mode(plugins, J("{'name': 'acl', 'enabled': false}"), KDAO_MODE_UPDATE,
                                plugins_dao));
}

/* ---- key-auth ---- */

static void keyauth_key_names(void **state) {
  (void)state;
  json_decref(plugin_ok("key-auth", "{'key_names': ['x-kong-key', 'api_key', 'K9']}"));
  plugin_config_error("key-auth", "{'key_names': ['good', 'x y']}", "config.key_names",
                      "'x y' is illegal: bad header name 'x y', allowed characters are "
                      "A-Z, a-z, 0-9, '_', and '-'");
  plugin_config_error("key-auth", "{'key_names': ['a.b']}", "config.key_names",
                      "'a.b' is illegal: bad header name 'a.b', allowed characters are "
                      "A-Z, a-z, 0-9, '_', and '-'");
  plugin_config_error("key-auth", "{'key_names': ['']}", "config.key_names",
                      "'' is illegal: no header name provided");
  /* Kong's required only refuses nil and "": an empty list passes (and matches nothing). */
  json_decref(plugin_ok("key-auth", "{'key_names': []}"));
}

static void auth_anonymous(void **state) {
  (void)state;
  const char *names[] = {"key-auth", "basic-auth"};
  for (size_t i = 0; i < 2; i++) {
    json_decref(plugin_ok(names[i], "{'anonymous': ''}"));
    json_decref(plugin_ok(names[i], "{'anonymous': '" UUID "'}"));
    plugin_config_error(names[i], "{'anonymous': 'bob'}", "config.anonymous",
                        "the anonymous user must be empty or a valid uuid");
  }
  json_t *out = plugin_ok("basic-auth", NULL);
  json_t *want = J("{'anonymous': '', 'hide_credentials': false}");
  assert_true(json_equal(json_object_get(out, "config"), want));
  json_decref(want);
  json_decref(out);
}

static void keyauth_credentials(void **state) {
  (void)state;
  kdao_schema *s = compile_def(kdao__plugin_key_auth.entities[0]);
  assert_string_equal(kdao_schema_table(s), "keyauth_credentials");
  assert_null(kdao__plugin_key_auth.entities[1]);
  expect_field_error(s, J("{}"), "consumer_id", "consumer_id is required");

  json_t *a = expect_valid(s, J("{'consumer_id': '" UUID "'}"));
  json_t *b = expect_valid(s, J("{'consumer_id': '" UUID "'}"));
  const char *ka = json_string_value(json_object_get(a, "key"));
  assert_non_null(ka);
  assert_int_equal(strlen(ka), 32);
  assert_int_equal(strspn(ka, "0123456789abcdef"), 32);
  assert_string_not_equal(ka, json_string_value(json_object_get(b, "key")));
  json_decref(a);
  json_decref(b);

  json_t *c = expect_valid(s, J("{'consumer_id': '" UUID "', 'key': 'my-key'}"));
  assert_string_equal(json_string_value(json_object_get(c, "key")), "my-key");
  json_decref(c);
  kdao_schema_free(s);
}

/* ---- basic-auth ---- */

static void basicauth_credentials(void **state) {
  (void)state;
  kdao_schema *s = compile_def(kdao__plugin_basic_auth.entities[0]);
  assert_string_equal(kdao_schema_table(s), "basicauth_credentials");
  expect_field_error(s, J("{'consumer_id': '" UUID "'}"), "username", "username is required");

  /* Known answers: sha1("secret" .. consumer_id) and sha1("nil" .. consumer_id). */
  json_t *out = expect_valid(s, J("{'consumer_id': '" UUID "', 'username': 'bob',"
                                  " 'password': 'secret'}"));
  assert_string_equal(json_string_value(json_object_get(out, "password")),
                      "fae7e1be090ac461022099b0b0b1d2c814eebc98");
  json_decref(out);
  out = expect_valid(s, J("{'consumer_id': '" UUID "', 'username': 'bob'}"));
  assert_string_equal(json_string_value(json_object_get(out, "password")),
                      "bdbddbe86510e44dc59e5453f9a5d04fc99db13d");
  json_decref(out);
  /* A partial update that does not touch the password leaves it alone. */
  out = expect_valid_mode(s, J("{'username': 'alice'}"), KDAO_MODE_UPDATE, NULL);
  assert_null(json_object_get(out, "password"));
  json_decref(out);
  kdao_schema_free(s);
}

/* ---- acl ---- */

static void acl_config_lists(void **state) {
  (void)state;
  json_decref(plugin_ok("acl", "{'whitelist': ['admins']}"));
  json_decref(plugin_ok("acl", "{'blacklist': 'bots, crawlers'}"));
  plugin_config_error("acl", "{'whitelist': ['a'], 'blacklist': ['b']}", "config",
                      "You cannot set both a whitelist and a blacklist");
  plugin_config_error("acl", "{}", "config", "You must set at least a whitelist or blacklist");
  plugin_config_error("acl", "{'whitelist': [], 'blacklist': ''}", "config",
                      "You must set at least a whitelist or blacklist");
  plugin_config_error("acl", NULL, "config", "You must set at least a whitelist or blacklist");
}

static void acl_entity(void **state) {
  (void)state;
  kdao_schema *s = compile_def(kdao__plugin_acl.entities[0]);
  assert_string_equal(kdao_schema_table(s), "acls");
  expect_field_error(s, J("{'consumer_id': '" UUID "'}"), "group", "group is required");
  expect_field_error(s, J("{'group': 'admins'}"), "consumer_id", "consumer_id is required");
  /* Without a DAO there is no group lookup, as in Kong without singletons.dao. */
  json_decref(expect_valid(s, J("{'consumer_id': '" UUID "', 'group': 'admins'}")));
  kdao_schema_free(s);
}

static void every_backend_ships_core_and_builtin_plugin_migrations(void **state) {
  (void)state;
  const char *ids[] = {"core", "key-auth", "basic-auth", "acl"};
  for (const kdao__backend_ops *const *b = kdao__backends; *b != NULL; b++)
    for (size_t i = 0; i < sizeof ids / sizeof *ids; i++) {
      const kdao_migration_def *m = kdao__backend_migrations(*b, ids[i]);
      assert_non_null(m);
      assert_non_null(m[0].name);
    }
  assert_null(kdao__backend_migrations(kdao__backends[0], "no-such-plugin"));
}

static void cassandra_core_migrations_are_kongs(void **state) {
  (void)state;
  const kdao__backend_ops *cs = kdao__backend_find("cassandra");
  if (cs == NULL) skip(); /* not built */
  const char *owners[] = {"key-auth", "basic-auth", "acl"};
  const char *first[] = {"2015-07-31-172400_init_keyauth", "2015-08-03-132400_init_basicauth",
                         "2015-08-25-841841_init_acl"};
  for (size_t i = 0; i < 3; i++)
    assert_string_equal(kdao__backend_migrations(cs, owners[i])[0].name, first[i]);
  const kdao_migration_def *core = kdao__backend_migrations(cs, "core");
  const char *names[] = {"2015-01-12-175310_skeleton",
                         "2015-01-12-175310_init_schema",
                         "2015-11-23-817313_nodes",
                         "2016-02-25-160900_remove_null_consumer_id",
                         "2016-02-29-121813_remove_ttls",
                         "2016-09-05-212515_retries_step_1",
                         "2016-09-05-212515_retries_step_2",
                         "2016-09-16-141423_upstreams",
                         "2016-12-14-172100_move_ssl_certs_to_core",
                         "2016-11-11-151900_new_apis_router_1",
                         "2016-11-11-151900_new_apis_router_2",
                         "2016-11-11-151900_new_apis_router_3",
                         "2017-01-24-132600_upstream_timeouts",
                         "2017-01-24-132600_upstream_timeouts_2"};
  size_t n = sizeof names / sizeof *names;
  for (size_t i = 0; i < n; i++) {
    assert_non_null(core[i].name);
    assert_string_equal(core[i].name, names[i]);
    assert_non_null(core[i].up);
  }
  assert_null(core[n].name);
  /* The keyspace is the backend's: no statement may name one. */
  for (size_t i = 0; i < n; i++) assert_null(strstr(core[i].up, "KEYSPACE"));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(plugin_name_is_required),
      cmocka_unit_test(plugin_unknown_name),
      cmocka_unit_test(plugin_config_defaults_come_from_its_schema),
      cmocka_unit_test(plugin_config_errors_are_keyed_config_dot_field),
      cmocka_unit_test(plugin_no_consumer),
      cmocka_unit_test(plugin_without_config_schema_accepts_any_config),
      cmocka_unit_test(plugin_partial_update_without_name_or_config),
      cmocka_unit_test(keyauth_key_names),
      cmocka_unit_test(auth_anonymous),
      cmocka_unit_test(keyauth_credentials),
      cmocka_unit_test(basicauth_credentials),
      cmocka_unit_test(acl_config_lists),
      cmocka_unit_test(acl_entity),
      cmocka_unit_test(every_backend_ships_core_and_builtin_plugin_migrations),
      cmocka_unit_test(cassandra_core_migrations_are_kongs),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
