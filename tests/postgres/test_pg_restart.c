/*
 * test_pg_restart.c — a factory survives its server: after a restart the next operation
 * reconnects and succeeds (reads, writes, bulk writes, transactions), writes are not
 * applied twice, and while the server is down operations return db errors naming
 * host:port, with the portable code "unavailable", instead of crashing.
 *
 * It restarts the server of scripts/postgres.sh between operations, so CTest runs it
 * alone (RUN_SERIAL).
 */
#include "pg_test.h"

#include <unistd.h>

static const char DB[] = "kdao_test_restart";

static void server(const char *cmd) {
  char line[1024];
  snprintf(line, sizeof line, "%s %s >/dev/null", pgt_env("KDAO_PG_SCRIPT", KDAO_PG_SCRIPT), cmd);
  if (system(line) != 0) fail_msg("'%s' failed", line);
}

static long long count_named(kdao_factory *f, const char *name) {
  json_t *flt = json_pack("{ss}", "name", name);
  long long n = -1;
  kdao_error *err = NULL;
  if (kdao_dao_count(kdao_factory_dao(f, "apis"), flt, &n, &err) != KDAO_OK)
    fail_msg("count: %s", kdao_error_string(err));
  json_decref(flt);
  return n;
}

static void test_operations_after_restart_reconnect(void **state) {
  (void)state;
  pgt_fresh_database(DB);
  kdao_factory *f = pgt_factory(DB);
  json_t *a = pgt_insert(f, "apis",
                         "{\"name\": \"a\", \"hosts\": [\"a.test\"],"
                         " \"upstream_url\": \"http://up\"}",
                         0);

  server("restart"); /* a read */
  json_t *found = pgt_find(f, "apis", "id", pgt_str(a, "id"));
  assert_true(json_equal(a, found));
  json_decref(found);

  server("restart"); /* a write: runs once, not twice */
  json_decref(pgt_insert(f, "apis",
                         "{\"name\": \"b\", \"hosts\": [\"b.test\"],"
                         " \"upstream_url\": \"http://up\"}",
                         0));
  assert_int_equal(count_named(f, "b"), 1);

  server("restart"); /* a bulk write */
  json_t *many =
      pgt_json("[{\"name\": \"c1\", \"uris\": [\"/c1\"], \"upstream_url\": \"http://up\"},"
               " {\"name\": \"c2\", \"uris\": [\"/c2\"], \"upstream_url\": \"http://up\"}]");
  json_t *rows = NULL;
  kdao_error *err = NULL;
  if (kdao_dao_insert_many(kdao_factory_dao(f, "apis"), many, 0, &rows, &err) != KDAO_OK)
    fail_msg("insert_many: %s", kdao_error_string(err));
  assert_int_equal(json_array_size(rows), 2);
  json_decref(rows);
  json_decref(many);

  server("restart"); /* a delete: a transaction whose BEGIN meets the dead connection */
  json_t *pk = json_pack("{ss}", "id", pgt_str(a, "id")), *gone = NULL;
  if (kdao_dao_delete(kdao_factory_dao(f, "apis"), pk, 0, &gone, &err) != KDAO_OK)
    fail_msg("delete: %s", kdao_error_string(err));
  assert_non_null(gone);
  json_decref(gone);

  /* server down: an error naming the server, then recovery once it is back */
  server("halt");
  found = NULL;
  int rc = kdao_dao_find(kdao_factory_dao(f, "apis"), pk, &found, &err);
  server("start");
  assert_int_equal(rc, KDAO_ERR_DB);
  assert_null(found);
  char where[300];
  snprintf(where, sizeof where, "%s:%s", pgt_env("KDAO_PG_HOST", ""), pgt_env("KDAO_PG_PORT", ""));
  if (strstr(kdao_error_message(err), where) == NULL)
    fail_msg("error does not name %s: %s", where, kdao_error_message(err));
  assert_string_equal(kdao_error_db_name(err), "postgres");
  assert_string_equal(kdao_error_code(err), KDAO_ERR_CODE_UNAVAILABLE);
  kdao_error_free(err);
  err = NULL;
  assert_int_equal(count_named(f, "b"), 1);

  json_decref(pk);
  json_decref(a);
  kdao_factory_free(f);
  pgt_drop_database(DB);
}

/* A connection that cannot be made says where and why, and never shows the password. */
static void test_connection_failure_names_server_not_password(void **state) {
  (void)state;
  kdao_config *cfg = pgt_config(DB);
  kdao_config_set(cfg, "pg_port", "1", NULL);
  kdao_config_set(cfg, "pg_password", "Sup3rS3cretPw", NULL);
  kdao_factory *f = NULL;
  kdao_error *err = NULL;
  assert_int_equal(kdao_factory_open(cfg, &f, &err), KDAO_ERR_DB);
  assert_null(f);
  char where[300];
  snprintf(where, sizeof where, "%s:1", pgt_env("KDAO_PG_HOST", ""));
  if (strstr(kdao_error_string(err), where) == NULL)
    fail_msg("error does not name %s: %s", where, kdao_error_string(err));
  assert_null(strstr(kdao_error_string(err), "Sup3rS3cretPw"));
  kdao_error_free(err);
  kdao_config_free(cfg);
}

int main(void) {
  pgt_require_server();
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_operations_after_restart_reconnect),
      cmocka_unit_test(test_connection_failure_names_server_not_password),
  };
  return cmocka_run_group_tests_name("postgres_restart", tests, NULL, NULL);
}
