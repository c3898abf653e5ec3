/*
 * test_conf.c — kong.conf-style configuration (src/conf.c): the file syntax, the
 * environment, every conversion and its error message, atomic loads, masking, cross-checks.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "backend.h"
#include "conf.h"
#include "kdao.h"

/* ---- helpers ---- */

typedef struct fixture {
  kdao_config *cfg;
  char path[64];
} fixture;

static int setup(void **state) {
  fixture *fx = calloc(1, sizeof *fx);
  assert_non_null(fx);
  assert_int_equal(kdao_config_new(&fx->cfg, NULL), KDAO_OK);
  strcpy(fx->path, "/tmp/kdao-test-conf-XXXXXX");
  int fd = mkstemp(fx->path);
  assert_true(fd >= 0);
  close(fd);
  *state = fx;
  return 0;
}

static int teardown(void **state) {
  fixture *fx = *state;
  unlink(fx->path);
  kdao_config_free(fx->cfg);
  free(fx);
  return 0;
}

static void write_file(const fixture *fx, const char *text) {
  FILE *fp = fopen(fx->path, "w");
  assert_non_null(fp);
  fputs(text, fp);
  fclose(fp);
}

/* Loads `text` as a file and expects an error of `kind` whose message is `message`. */
static void expect_file_error(fixture *fx, const char *text, int kind, const char *message) {
  write_file(fx, text);
  kdao_error *err = NULL;
  assert_int_equal(kdao_config_load_file(fx->cfg, fx->path, &err), kind);
  assert_non_null(err);
  assert_int_equal(kdao_error_kind(err), kind);
  assert_string_equal(kdao_error_message(err), message);
  kdao_error_free(err);
}

/* Sets key=value and expects KDAO_ERR_CONFIG with `message`. */
static void expect_set_error(kdao_config *cfg, const char *key, const char *value,
                             const char *message) {
  kdao_error *err = NULL;
  assert_int_equal(kdao_config_set(cfg, key, value, &err), KDAO_ERR_CONFIG);
  assert_non_null(err);
  assert_string_equal(kdao_error_message(err), message);
  kdao_error_free(err);
}

static void expect_set(kdao_config *cfg, const char *key, const char *value,
                       const char *canonical) {
  kdao_error *err = NULL;
  assert_int_equal(kdao_config_set(cfg, key, value, &err), KDAO_OK);
  assert_null(err);
  if (canonical == NULL)
    assert_null(kdao_config_get(cfg, key));
  else
    assert_string_equal(kdao_config_get(cfg, key), canonical);
}

static void expect_check_error(const kdao_config *cfg, const char *message) {
  kdao_error *err = NULL;
  assert_int_equal(kdao_config_check(cfg, &err), KDAO_ERR_CONFIG);
  assert_non_null(err);
  assert_string_equal(kdao_error_message(err), message);
  kdao_error_free(err);
}

/* ---- defaults ---- */

static void test_defaults(void **state) {
  kdao_config *cfg = ((fixture *)*state)->cfg;
  assert_string_equal(kdao_config_get(cfg, "database"), "sqlite");
  assert_string_equal(kdao_config_get(cfg, "sqlite_path"), "kdao.db");
  assert_string_equal(kdao_config_get(cfg, "admin_listen"), "127.0.0.1:8001");
  assert_string_equal(kdao_config_get(cfg, "cassandra_consistency"), "ONE");
  assert_string_equal(kdao_config_get(cfg, "cassandra_data_centers"), "dc1:2,dc2:3");
  assert_null(kdao_config_get(cfg, "pg_password"));
  assert_null(kdao_config_get(cfg, "plugins_dir"));
  assert_null(kdao_config_get(cfg, "no_such_key"));
  assert_int_equal(kdao__config_int(cfg, "pg_port"), 5432);
  assert_int_equal(kdao__config_int(cfg, "admin_max_body"), 1048576);
  assert_false(kdao__config_bool(cfg, "pg_ssl"));
  assert_string_equal(kdao__config_str(cfg, "pg_user"), "kong");
  assert_int_equal(kdao_config_check(cfg, NULL), KDAO_OK);
}

/* ---- file syntax ---- */

static void test_file_syntax(void **state) {
  fixture *fx = *state;
  write_file(fx, "# a comment line\n"
                 "\n"
                 "   database = postgres   \n"
                 "pg_host=db.example.com# no space before the comment\n"
                 "pg_password = p\\#ss # the hash is escaped\n"
                 "pg_user = admin\r\n"
                 "pg_database = NONE\n"
                 "sqlite_path =\n"
                 "  # indented comment\n"
                 "pg_port = 6432 # trailing comment\n"
                 "pg_port = 7432\n");
  kdao_error *err = NULL;
  assert_int_equal(kdao_config_load_file(fx->cfg, fx->path, &err), KDAO_OK);
  assert_null(err);
  assert_string_equal(kdao_config_get(fx->cfg, "database"), "postgres");
  assert_string_equal(kdao_config_get(fx->cfg, "pg_host"), "db.example.com");
  assert_string_equal(kdao_config_get(fx->cfg, "pg_password"), "p#ss");
  assert_string_equal(kdao_config_get(fx->cfg, "pg_user"), "admin");
  assert_null(kdao_config_get(fx->cfg, "pg_database"));
  assert_null(kdao_config_get(fx->cfg, "sqlite_path"));
  /* The last assignment of a key wins, as with Kong's penlight reader. */
  assert_int_equal(kdao__config_int(fx->cfg, "pg_port"), 7432);
  /* Keys the file does not name keep their defaults. */
  assert_string_equal(kdao_config_get(fx->cfg, "cassandra_keyspace"), "kong");
}

static void test_file_missing(void **state) {
  fixture *fx = *state;
  kdao_error *err = NULL;
  assert_int_equal(kdao_config_load_file(fx->cfg, "/nonexistent/kdao.conf", &err), KDAO_ERR_IO);
  assert_non_null(strstr(kdao_error_message(err), "/nonexistent/kdao.conf"));
  kdao_error_free(err);
}

/* A file with no end, an oversized one and a binary one are refused, and change nothing. */
static void test_file_not_a_config(void **state) {
  fixture *fx = *state;
  kdao_error *err = NULL;
  assert_int_equal(kdao_config_load_file(fx->cfg, "/dev/zero", &err), KDAO_ERR_CONFIG);
  assert_non_null(strstr(kdao_error_message(err), "larger than 1048576 bytes"));
  kdao_error_free(err);
  size_t n = 1024 * 1024 + 1;
  char *big = malloc(n + 1);
  assert_non_null(big);
  memset(big, '#', n);
  big[n] = '\0';
  write_file(fx, big);
  free(big);
  assert_int_equal(kdao_config_load_file(fx->cfg, fx->path, &err), KDAO_ERR_CONFIG);
  kdao_error_free(err);
  FILE *fp = fopen(fx->path, "w");
  assert_non_null(fp);
  fwrite("pg_port = 7\n\0\n", 1, 15, fp);
  fclose(fp);
  assert_int_equal(kdao_config_load_file(fx->cfg, fx->path, &err), KDAO_ERR_CONFIG);
  assert_non_null(strstr(kdao_error_message(err), "NUL byte"));
  kdao_error_free(err);
  assert_string_equal(kdao_config_get(fx->cfg, "pg_port"), "5432");
}

static void test_file_unknown_key(void **state) {
  fixture *fx = *state;
  char want[160];
  snprintf(want, sizeof want, "%s:3: unknown configuration key 'pg_hots'", fx->path);
  expect_file_error(fx, "database = postgres\n\npg_hots = x\n", KDAO_ERR_CONFIG, want);
}

static void test_file_bad_line(void **state) {
  fixture *fx = *state;
  char want[160];
  snprintf(want, sizeof want, "%s:1: expected 'key = value', got 'pg_host localhost'", fx->path);
  expect_file_error(fx, "pg_host localhost\n", KDAO_ERR_CONFIG, want);
}

static void test_file_bad_value_names_line(void **state) {
  fixture *fx = *state;
  char want[160];
  snprintf(want, sizeof want, "%s:2: pg_ssl is not a boolean: 'yes'", fx->path);
  expect_file_error(fx, "pg_host = h\npg_ssl = yes # comment\n", KDAO_ERR_CONFIG, want);
}

/* A file that fails on its last line changes nothing, not even its valid first lines. */
static void test_file_atomic(void **state) {
  fixture *fx = *state;
  write_file(fx, "database = postgres\npg_host = other\npg_port = many\n");
  assert_int_equal(kdao_config_load_file(fx->cfg, fx->path, NULL), KDAO_ERR_CONFIG);
  assert_string_equal(kdao_config_get(fx->cfg, "database"), "sqlite");
  assert_string_equal(kdao_config_get(fx->cfg, "pg_host"), "127.0.0.1");
  assert_int_equal(kdao__config_int(fx->cfg, "pg_port"), 5432);
}

/* ---- environment ---- */

static void test_env_overrides_file(void **state) {
  fixture *fx = *state;
  write_file(fx, "pg_port = 6000\npg_host = filehost\npg_user = fileuser\n");
  assert_int_equal(kdao_config_load_file(fx->cfg, fx->path, NULL), KDAO_OK);
  setenv("KDAO_PG_PORT", " 6001 # from the environment", 1);
  setenv("KDAO_PG_HOST", "", 1); /* empty: unset, overriding the file */
  setenv("KDAO_NOT_A_KEY", "ignored", 1);
  kdao_error *err = NULL;
  int rc = kdao_config_load_env(fx->cfg, &err);
  unsetenv("KDAO_PG_PORT");
  unsetenv("KDAO_PG_HOST");
  unsetenv("KDAO_NOT_A_KEY");
  assert_int_equal(rc, KDAO_OK);
  assert_int_equal(kdao__config_int(fx->cfg, "pg_port"), 6001);
  assert_null(kdao_config_get(fx->cfg, "pg_host"));
  assert_string_equal(kdao_config_get(fx->cfg, "pg_user"), "fileuser");
}

static void test_env_error_is_atomic(void **state) {
  fixture *fx = *state;
  setenv("KDAO_DATABASE", "postgres", 1);
  setenv("KDAO_CASSANDRA_CONSISTENCY", "ANY", 1);
  kdao_error *err = NULL;
  int rc = kdao_config_load_env(fx->cfg, &err);
  unsetenv("KDAO_DATABASE");
  unsetenv("KDAO_CASSANDRA_CONSISTENCY");
  assert_int_equal(rc, KDAO_ERR_CONFIG);
  assert_string_equal(kdao_error_message(err),
                      "KDAO_CASSANDRA_CONSISTENCY: cassandra_consistency has an invalid "
                      "value: 'ANY' (ALL, EACH_QUORUM, QUORUM, LOCAL_QUORUM, ONE, TWO, THREE, "
                      "LOCAL_ONE)");
  kdao_error_free(err);
  assert_string_equal(kdao_config_get(fx->cfg, "database"), "sqlite");
}

/* ---- conversions ---- */

static void test_booleans(void **state) {
  kdao_config *cfg = ((fixture *)*state)->cfg;
  expect_set(cfg, "pg_ssl", "true", "on");
  assert_true(kdao__config_bool(cfg, "pg_ssl"));
  expect_set(cfg, "pg_ssl", "off", "off");
  expect_set(cfg, "pg_ssl", " on ", "on");
  expect_set(cfg, "pg_ssl", "false", "off");
  assert_false(kdao__config_bool(cfg, "pg_ssl"));
  expect_set_error(cfg, "pg_ssl", "yes", "pg_ssl is not a boolean: 'yes'");
  expect_set_error(cfg, "cassandra_ssl", "ON", "cassandra_ssl is not a boolean: 'ON'");
  expect_set_error(cfg, "pg_ssl_verify", "1", "pg_ssl_verify is not a boolean: '1'");
  /* A failed set leaves the previous value. */
  assert_string_equal(kdao_config_get(cfg, "pg_ssl"), "off");
}

static void test_numbers(void **state) {
  kdao_config *cfg = ((fixture *)*state)->cfg;
  expect_set(cfg, "cassandra_timeout", "250", "250");
  assert_int_equal(kdao__config_int(cfg, "cassandra_timeout"), 250);
  expect_set(cfg, "admin_max_body", "1", "1");
  expect_set_error(cfg, "admin_max_body", "0",
                   "admin_max_body must be between 1 and 1073741824: '0'");
  expect_set_error(cfg, "pg_port", "54x", "pg_port is not a number: '54x'");
  expect_set_error(cfg, "pg_port", "1.5", "pg_port is not a number: '1.5'");
  expect_set_error(cfg, "pg_port", "+5", "pg_port is not a number: '+5'");
  expect_set_error(cfg, "pg_port", "0x10", "pg_port is not a number: '0x10'");
  expect_set_error(cfg, "cassandra_port", "99999999999999999999",
                   "cassandra_port is not a number: '99999999999999999999'");
  expect_set_error(cfg, "pg_port", "70000", "pg_port must be between 1 and 65535: '70000'");
  expect_set_error(cfg, "cassandra_repl_factor", "0",
                   "cassandra_repl_factor must be between 1 and 1000: '0'");
}

static void test_enums(void **state) {
  kdao_config *cfg = ((fixture *)*state)->cfg;
  expect_set(cfg, "database", "cassandra", "cassandra");
  expect_set_error(cfg, "database", "mysql",
                   "database has an invalid value: 'mysql' (sqlite, postgres, cassandra)");
  expect_set_error(cfg, "cassandra_lb_policy", "roundrobin",
                   "cassandra_lb_policy has an invalid value: 'roundrobin' (RoundRobin, "
                   "DCAwareRoundRobin)");
  expect_set_error(cfg, "cassandra_repl_strategy", "Simple",
                   "cassandra_repl_strategy has an invalid value: 'Simple' (SimpleStrategy, "
                   "NetworkTopologyStrategy)");
}

static void test_arrays(void **state) {
  kdao_config *cfg = ((fixture *)*state)->cfg;
  expect_set(cfg, "cassandra_contact_points", " 10.0.0.1 , node2,node3 ", "10.0.0.1,node2,node3");
  expect_set(cfg, "custom_plugins", "rate-limiting", "rate-limiting");
  expect_set_error(cfg, "cassandra_contact_points", "a,,b",
                   "cassandra_contact_points has an empty element: 'a,,b'");
  expect_set_error(cfg, "custom_plugins", "a, ", "custom_plugins has an empty element: 'a,'");
}

static void test_unset_values(void **state) {
  kdao_config *cfg = ((fixture *)*state)->cfg;
  expect_set(cfg, "pg_host", "NONE", NULL);
  expect_set(cfg, "cassandra_port", "", NULL);
  expect_set(cfg, "pg_database", NULL, NULL);
  expect_set(cfg, "pg_user", "  # only a comment", NULL);
  assert_int_equal(kdao__config_int(cfg, "cassandra_port"), 0);
}

/* Found by tests/fuzz/fuzz_config: such a value was stored, then kdao_config_dump failed. */
static void test_values_must_be_utf8(void **state) {
  fixture *fx = *state;
  expect_set_error(fx->cfg, "pg_host", "caf\xe9", "pg_host is not valid UTF-8");
  expect_set_error(fx->cfg, "custom_plugins", "a,(\x91", "custom_plugins is not valid UTF-8");
  char want[160];
  snprintf(want, sizeof want, "%s:2: pg_user is not valid UTF-8", fx->path);
  expect_file_error(fx, "pg_host = ok\npg_user = \xc3\n", KDAO_ERR_CONFIG, want);
  assert_string_equal(kdao_config_get(fx->cfg, "pg_host"), "127.0.0.1");
  expect_set(fx->cfg, "pg_user", "caf\xc3\xa9", "caf\xc3\xa9");
  json_t *dump = kdao_config_dump(fx->cfg);
  assert_non_null(dump);
  assert_string_equal(json_string_value(json_object_get(dump, "pg_user")), "caf\xc3\xa9");
  json_decref(dump);
}

static void test_set_unknown_key(void **state) {
  kdao_config *cfg = ((fixture *)*state)->cfg;
  expect_set_error(cfg, "pg_hots", "x", "unknown configuration key 'pg_hots'");
  assert_int_equal(kdao_config_set(NULL, "pg_host", "x", NULL), KDAO_ERR_MISUSE);
}

/* ---- output ---- */

static void test_dump_masks_secrets(void **state) {
  kdao_config *cfg = ((fixture *)*state)->cfg;
  expect_set(cfg, "pg_password", "hunter2", "hunter2");
  json_t *dump = kdao_config_dump(cfg);
  assert_non_null(dump);
  assert_string_equal(json_string_value(json_object_get(dump, "pg_password")), "******");
  /* An unset secret is shown as unset, not masked. */
  assert_true(json_is_null(json_object_get(dump, "cassandra_password")));
  assert_int_equal(json_integer_value(json_object_get(dump, "pg_port")), 5432);
  assert_true(json_is_false(json_object_get(dump, "pg_ssl")));
  json_t *dcs = json_object_get(dump, "cassandra_data_centers");
  assert_int_equal(json_array_size(dcs), 2);
  assert_string_equal(json_string_value(json_array_get(dcs, 1)), "dc2:3");
  char *text = json_dumps(dump, 0);
  assert_null(strstr(text, "hunter2"));
  free(text);
  /* The getter is not for printing: it returns the secret itself. */
  assert_string_equal(kdao_config_get(cfg, "pg_password"), "hunter2");
  json_decref(dump);
}

static void test_describe_covers_every_key(void **state) {
  kdao_config *cfg = ((fixture *)*state)->cfg;
  json_t *rows = kdao_config_describe();
  json_t *dump = kdao_config_dump(cfg);
  assert_non_null(rows);
  assert_int_equal(json_array_size(rows), json_object_size(dump));
  size_t i;
  json_t *row;
  json_array_foreach(rows, i, row) {
    const char *key = json_string_value(json_object_get(row, "key"));
    assert_non_null(json_object_get(dump, key));
    const char *env = json_string_value(json_object_get(row, "env"));
    assert_int_equal(strncmp(env, "KDAO_", 5), 0);
    assert_non_null(json_string_value(json_object_get(row, "description")));
  }
  json_decref(rows);
  json_decref(dump);
}

static void test_copy_is_independent(void **state) {
  kdao_config *cfg = ((fixture *)*state)->cfg;
  expect_set(cfg, "pg_host", "one", "one");
  kdao_config *copy = kdao__config_copy(cfg);
  assert_non_null(copy);
  expect_set(cfg, "pg_host", "two", "two");
  assert_string_equal(kdao_config_get(copy, "pg_host"), "one");
  kdao_config_free(copy);
  kdao_config_free(NULL);
}

/* ---- cross-key rules ---- */

static void test_check_dc_aware(void **state) {
  kdao_config *cfg = ((fixture *)*state)->cfg;
  expect_set(cfg, "cassandra_lb_policy", "DCAwareRoundRobin", "DCAwareRoundRobin");
  expect_check_error(cfg, "must specify 'cassandra_local_datacenter' when DCAwareRoundRobin "
                          "policy is in use");
  expect_set(cfg, "cassandra_local_datacenter", "dc1", "dc1");
  assert_int_equal(kdao_config_check(cfg, NULL), KDAO_OK);
}

static void test_check_contact_points(void **state) {
  kdao_config *cfg = ((fixture *)*state)->cfg;
  expect_set(cfg, "cassandra_contact_points", "127.0.0.1,::1,node-2.example.com",
             "127.0.0.1,::1,node-2.example.com");
  assert_int_equal(kdao_config_check(cfg, NULL), KDAO_OK);
  expect_set(cfg, "cassandra_contact_points", "10.0.0.1,10.0.0.2:9042", "10.0.0.1,10.0.0.2:9042");
  expect_check_error(cfg, "bad cassandra contact point '10.0.0.2:9042': port must be "
                          "specified in cassandra_port");
  expect_set(cfg, "cassandra_contact_points", "bad/host", "bad/host");
  expect_check_error(cfg, "bad cassandra contact point 'bad/host': invalid hostname: "
                          "bad/host");
}

static void test_check_data_centers_and_listen(void **state) {
  kdao_config *cfg = ((fixture *)*state)->cfg;
  expect_set(cfg, "cassandra_data_centers", "dc1:2,dc2", "dc1:2,dc2");
  expect_check_error(cfg, "cassandra_data_centers has an invalid value: 'dc2' (expected "
                          "<name>:<replication factor>)");
  expect_set(cfg, "cassandra_data_centers", "dc1:3", "dc1:3");
  expect_set(cfg, "admin_listen", "8001", "8001");
  expect_check_error(cfg, "admin_listen must be of the form 'address:port': '8001'");
  expect_set(cfg, "admin_listen", "0.0.0.0:8001", "0.0.0.0:8001");
  assert_int_equal(kdao_config_check(cfg, NULL), KDAO_OK);
  expect_set(cfg, "admin_listen", "off", "off");
  assert_int_equal(kdao_config_check(cfg, NULL), KDAO_OK);
  expect_set(cfg, "admin_listen_ssl", "off", "off");
  expect_check_error(cfg, "admin_listen_ssl must be of the form 'address:port': 'off'");
  expect_set(cfg, "admin_listen_ssl", "[::]:8444", "[::]:8444");
  assert_int_equal(kdao_config_check(cfg, NULL), KDAO_OK);
}

/* admin_auth's two forms; a malformed value is refused without being quoted. */
static void test_check_admin_auth(void **state) {
  kdao_config *cfg = ((fixture *)*state)->cfg;
  static const char *const good[] = {"token:s3cret", "basic:admin:pa:ss", "basic:a:b"};
  static const char *const bad[] = {"s3cret",    "token:",       "basic:admin",
                                    "basic::pw", "basic:admin:", "Token:x"};
  for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
    expect_set(cfg, "admin_auth", good[i], good[i]);
    assert_int_equal(kdao_config_check(cfg, NULL), KDAO_OK);
  }
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    expect_set(cfg, "admin_auth", bad[i], bad[i]);
    expect_check_error(cfg, "admin_auth must be 'token:<secret>' or 'basic:<user>:<password>' "
                            "(the value is not shown)");
  }
  expect_set(cfg, "admin_auth", "token:s3cret", "token:s3cret");
  json_t *dump = kdao_config_dump(cfg);
  assert_string_equal(json_string_value(json_object_get(dump, "admin_auth")), "******");
  json_decref(dump);
}

int main(void) {
  /* The examples below are the keys of every backend: a build without one skips. */
  if (kdao__backend_find("postgres") == NULL || kdao__backend_find("cassandra") == NULL) {
    fprintf(stderr, "test_conf: this build lacks a backend whose keys the tests use: skipped\n");
    return 77;
  }
  /* The tests set the KDAO_* variables they need; any inherited from the caller (test.sh
     exports the servers' settings) would override the files under test. */
  for (int again = 1; again;) {
    again = 0;
    for (char **e = environ; *e; e++) {
      if (strncmp(*e, "KDAO_", 5) != 0) continue;
      char name[128];
      size_t n = strcspn(*e, "=");
      if (n >= sizeof name) continue;
      memcpy(name, *e, n);
      name[n] = '\0';
      unsetenv(name);
      again = 1;
      break;
    }
  }

  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_defaults, setup, teardown),
      cmocka_unit_test_setup_teardown(test_file_syntax, setup, teardown),
      cmocka_unit_test_setup_teardown(test_file_missing, setup, teardown),
      cmocka_unit_test_setup_teardown(test_file_not_a_config, setup, teardown),
      cmocka_unit_test_setup_teardown(test_file_unknown_key, setup, teardown),
      cmocka_unit_test_setup_teardown(test_file_bad_line, setup, teardown),
      cmocka_unit_test_setup_teardown(test_file_bad_value_names_line, setup, teardown),
      cmocka_unit_test_setup_teardown(test_file_atomic, setup, teardown),
      cmocka_unit_test_setup_teardown(test_env_overrides_file, setup, teardown),
      cmocka_unit_test_setup_teardown(test_env_error_is_atomic, setup, teardown),
      cmocka_unit_test_setup_teardown(test_booleans, setup, teardown),
      cmocka_unit_test_setup_teardown(test_numbers, setup, teardown),
      cmocka_unit_test_setup_teardown(test_enums, setup, teardown),
      cmocka_unit_test_setup_teardown(test_arrays, setup, teardown),
      cmocka_unit_test_setup_teardown(test_unset_values, setup, teardown),
      cmocka_unit_test_setup_teardown(test_values_must_be_utf8, setup, teardown),
      cmocka_unit_test_setup_teardown(test_set_unknown_key, setup, teardown),
      cmocka_unit_test_setup_teardown(test_dump_masks_secrets, setup, teardown),
      cmocka_unit_test_setup_teardown(test_check_admin_auth, setup, teardown),
      cmocka_unit_test_setup_teardown(test_describe_covers_every_key, setup, teardown),
      cmocka_unit_test_setup_teardown(test_copy_is_independent, setup, teardown),
      cmocka_unit_test_setup_teardown(test_check_dc_aware, setup, teardown),
      cmocka_unit_test_setup_teardown(test_check_contact_points, setup, teardown),
      cmocka_unit_test_setup_teardown(test_check_data_centers_and_listen, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
