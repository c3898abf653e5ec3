/*
 * test_pg_backend.c — PostgreSQL-specific behaviour, checked on the server and behind
 * kdao's back with raw libpq: constraint errors from SQLSTATEs, TTL rows in Kong's `ttls`
 * table (and Kong's own TTL rows honoured), keyset pages stable while rows come and go,
 * values stored as Kong stores them and read back exactly.
 */
#include "pg_test.h"

#include <unistd.h>

/* Named after the configured database: test runs sharing a server do not collide. */
static char DB[128];
static kdao_factory *F;
static PGconn *RAW;

static kdao_dao *dao(const char *name) {
  kdao_dao *d = kdao_factory_dao(F, name);
  assert_non_null(d);
  return d;
}

/* A plugin with no config schema stores whatever nested config it is given. */
static const kdao_plugin_def FREEFORM = {
    .version = KDAO_DEF_VERSION,
    .name = "freeform",
};

static int setup(void **state) {
  (void)state;
  snprintf(DB, sizeof DB, "%s_backend", pgt_env("KDAO_PG_DATABASE", "kong"));
  pgt_fresh_database(DB);
  kdao_config *cfg = pgt_config(DB);
  kdao_error *err = NULL;
  if (kdao_factory_new(cfg, &F, &err) != KDAO_OK ||
      kdao_factory_register_plugin(F, &FREEFORM, &err) != KDAO_OK ||
      kdao_factory_connect(F, &err) != KDAO_OK ||
      kdao_factory_migrate(F, NULL, NULL, NULL, &err) != KDAO_OK) {
    fprintf(stderr, "setup: %s\n", kdao_error_string(err));
    return -1;
  }
  kdao_config_free(cfg);
  RAW = pgt_connect(DB);
  return 0;
}

static int teardown(void **state) {
  (void)state;
  kdao_factory_free(F);
  PQfinish(RAW);
  pgt_drop_database(DB);
  return 0;
}

static int clean(void **state) {
  (void)state;
  kdao_error *err = NULL;
  if (kdao_factory_truncate_tables(F, &err) != KDAO_OK) {
    fprintf(stderr, "truncate: %s\n", kdao_error_string(err));
    return -1;
  }
  return 0;
}

static json_t *api(const char *name) {
  char text[256];
  snprintf(text, sizeof text,
           "{\"name\": \"%s\", \"hosts\": [\"%s.test\"], \"upstream_url\": \"http://up\"}", name,
           name);
  return pgt_insert(F, "apis", text, 0);
}

static long long count(const char *entity) {
  long long n = -1;
  kdao_error *err = NULL;
  if (kdao_dao_count(dao(entity), NULL, &n, &err) != KDAO_OK)
    fail_msg("count: %s", kdao_error_string(err));
  return n;
}

/* ---- constraint errors ---- */

static void test_unique_and_foreign_violations_name_the_field(void **state) {
  (void)state;
  json_decref(api("dup"));
  json_t *again = pgt_json("{\"name\": \"dup\", \"hosts\": [\"other.test\"],"
                           " \"upstream_url\": \"http://up\"}");
  json_t *row = NULL;
  kdao_error *err = NULL;
  assert_int_equal(kdao_dao_insert(dao("apis"), again, 0, 0, &row, &err), KDAO_ERR_UNIQUE);
  assert_string_equal(kdao_error_message(err), "name=already exists with value 'dup'");
  assert_string_equal(kdao_error_code(err), "23505");
  assert_string_equal(kdao_error_string(err),
                      "[postgres error] name=already exists with value 'dup'");
  kdao_error_free(err);
  json_decref(again);

  json_t *orphan = pgt_json("{\"consumer_id\": \"6a1a1b8c-0a47-4c7e-9d3b-1f2e3d4c5b6a\","
                            " \"key\": \"k1\"}");
  err = NULL;
  assert_int_equal(kdao_dao_insert(dao("keyauth_credentials"), orphan, 0, 0, &row, &err),
                   KDAO_ERR_FOREIGN);
  assert_string_equal(
      kdao_error_message(err),
      "consumer_id=does not exist with value '6a1a1b8c-0a47-4c7e-9d3b-1f2e3d4c5b6a'");
  assert_string_equal(kdao_error_code(err), "23503");
  kdao_error_free(err);
  json_decref(orphan);
  assert_int_equal(count("keyauth_credentials"), 0);

  /* a unique violation inside a bulk insert: nothing of the batch stays */
  json_t *batch =
      pgt_json("[{\"username\": \"u1\"}, {\"username\": \"u2\"}, {\"username\": \"u1\"}]");
  err = NULL;
  assert_int_equal(kdao_dao_insert_many(dao("consumers"), batch, 0, NULL, &err), KDAO_ERR_UNIQUE);
  assert_string_equal(kdao_error_message(err), "username=already exists with value 'u1'");
  kdao_error_free(err);
  json_decref(batch);
  assert_int_equal(count("consumers"), 0);
}

/* ---- TTL ---- */

static void test_ttl_rows_use_kongs_table_expire_and_purge(void **state) {
  (void)state;
  json_t *c = pgt_insert(F, "consumers", "{\"username\": \"brief\"}", 1);
  const char *id = pgt_str(c, "id");
  char *name = pgt_value(RAW,
                         "SELECT primary_key_name || ',' || primary_uuid_value || ','"
                         " || table_name FROM ttls WHERE primary_key_value = '%s'",
                         id);
  char want[128];
  snprintf(want, sizeof want, "id,%s,consumers", id);
  assert_string_equal(name, want);
  free(name);
  json_t *found = pgt_find(F, "consumers", "id", id);
  assert_non_null(found);
  json_decref(found);
  assert_int_equal(count("consumers"), 1);

  usleep(1300 * 1000);
  assert_null(pgt_find(F, "consumers", "id", id));
  assert_int_equal(count("consumers"), 0);
  json_t *rows = NULL, *none = NULL;
  char *next = NULL;
  kdao_error *err = NULL;
  assert_int_equal(kdao_dao_find_all(dao("consumers"), NULL, &rows, &err), KDAO_OK);
  assert_int_equal(json_array_size(rows), 0);
  json_decref(rows);
  assert_int_equal(kdao_dao_find_page(dao("consumers"), NULL, NULL, 10, &rows, &next, &err),
                   KDAO_OK);
  assert_int_equal(json_array_size(rows), 0);
  json_decref(rows);
  json_t *upd = json_pack("{ss ss}", "id", id, "custom_id", "x");
  assert_int_equal(kdao_dao_update(dao("consumers"), upd, NULL, 0, 0, &none, &err), KDAO_OK);
  assert_null(none);
  json_decref(upd);

  /* still on disk until purged; purge removes the row and its ttls row */
  char *left = pgt_value(RAW, "SELECT count(*) FROM consumers");
  assert_string_equal(left, "1");
  free(left);
  long long purged = 0;
  assert_int_equal(kdao_factory_purge_expired(F, &purged, &err), KDAO_OK);
  assert_int_equal(purged, 1);
  left = pgt_value(RAW, "SELECT (SELECT count(*) FROM consumers) + (SELECT count(*) FROM ttls)");
  assert_string_equal(left, "0");
  free(left);
  json_decref(c);

  /* an expiry Kong wrote (through its upsert_ttl) hides a row from kdao too */
  json_t *k = pgt_insert(F, "consumers", "{\"username\": \"kong-ttl\"}", 0);
  char sql[512];
  snprintf(sql, sizeof sql,
           "SELECT upsert_ttl('%s', '%s', 'id', 'consumers',"
           " (now() AT TIME ZONE 'utc') - interval '1 second')",
           pgt_str(k, "id"), pgt_str(k, "id"));
  PQclear(pgt_exec(RAW, sql));
  assert_null(pgt_find(F, "consumers", "id", pgt_str(k, "id")));
  json_decref(k);

  /* deleting a row with a TTL removes its ttls row: nothing stale for a reused key */
  json_t *d = pgt_insert(F, "consumers", "{\"username\": \"gone\"}", 100);
  json_t *pk = json_pack("{ss}", "id", pgt_str(d, "id")), *deleted = NULL;
  assert_int_equal(kdao_dao_delete(dao("consumers"), pk, 0, &deleted, &err), KDAO_OK);
  assert_non_null(deleted);
  char *stale =
      pgt_value(RAW, "SELECT count(*) FROM ttls WHERE primary_key_value = '%s'", pgt_str(d, "id"));
  assert_string_equal(stale, "0");
  free(stale);
  json_decref(deleted);
  json_decref(pk);
  json_decref(d);
}

/*
 * Reads and writes addressed by key probe ttls with the key as Kong spelled it (lower-case
 * uuid text) whatever spelling the caller used: an expired row stays hidden from find,
 * update and delete by an upper-case id, and a delete takes the ttls row with it.
 */
static void upper(char *s) {
  for (; *s; s++)
    if (*s >= 'a' && *s <= 'f') *s = (char)(*s - 'a' + 'A');
}

static void test_ttl_probe_by_key_spelling(void **state) {
  (void)state;
  kdao_error *err = NULL;
  json_t *gone = pgt_insert(F, "consumers", "{\"username\": \"expired\"}", 0);
  json_t *live = pgt_insert(F, "consumers", "{\"username\": \"alive\"}", 100);
  char sql[512], gone_id[40], live_id[40];
  snprintf(gone_id, sizeof gone_id, "%s", pgt_str(gone, "id"));
  snprintf(live_id, sizeof live_id, "%s", pgt_str(live, "id"));
  snprintf(sql, sizeof sql,
           "SELECT upsert_ttl('%s', '%s', 'id', 'consumers',"
           " (now() AT TIME ZONE 'utc') - interval '1 second')",
           gone_id, gone_id);
  PQclear(pgt_exec(RAW, sql));
  upper(gone_id);
  upper(live_id);

  assert_null(pgt_find(F, "consumers", "id", gone_id));
  json_t *found = pgt_find(F, "consumers", "id", live_id);
  assert_non_null(found);
  json_decref(found);

  json_t *upd = json_pack("{ss ss}", "id", gone_id, "custom_id", "x"), *row = NULL;
  assert_int_equal(kdao_dao_update(dao("consumers"), upd, NULL, 0, KDAO_DAO_QUIET, &row, &err),
                   KDAO_OK);
  assert_null(row);
  json_decref(upd);

  json_t *pk = json_pack("{ss}", "id", gone_id);
  assert_int_equal(kdao_dao_delete(dao("consumers"), pk, KDAO_DAO_QUIET, &row, &err), KDAO_OK);
  assert_null(row); /* it had expired: not there to delete, though it is removed */
  json_decref(pk);
  pk = json_pack("{ss}", "id", live_id);
  assert_int_equal(kdao_dao_delete(dao("consumers"), pk, KDAO_DAO_QUIET, &row, &err), KDAO_OK);
  assert_non_null(row);
  json_decref(row);
  json_decref(pk);
  char *left =
      pgt_value(RAW, "SELECT (SELECT count(*) FROM consumers) + (SELECT count(*) FROM ttls)");
  assert_string_equal(left, "0");
  free(left);
  json_decref(gone);
  json_decref(live);
}

/* ---- paging ---- */

static void test_pages_are_stable_while_rows_come_and_go(void **state) {
  (void)state;
  enum { N = 60, PAGE = 7 };
  char *ids[N];
  for (int i = 0; i < N; i++) {
    char text[64];
    snprintf(text, sizeof text, "{\"username\": \"p%02d\"}", i);
    json_t *row = pgt_insert(F, "consumers", text, 0);
    ids[i] = strdup(pgt_str(row, "id"));
    json_decref(row);
  }
  /* rows deleted while paging: every 5th; all others must be seen exactly once */
  int seen[N] = {0};
  char *offset = NULL;
  int pages = 0, extra = 0;
  kdao_error *err = NULL;
  do {
    json_t *rows = NULL;
    char *next = NULL;
    if (kdao_dao_find_page(dao("consumers"), NULL, offset, PAGE, &rows, &next, &err) != KDAO_OK)
      fail_msg("page: %s", kdao_error_string(err));
    assert_true(json_array_size(rows) <= PAGE);
    size_t k;
    json_t *r;
    json_array_foreach(rows, k, r) {
      int hit = 0;
      for (int i = 0; i < N; i++)
        if (ids[i] && strcmp(ids[i], pgt_str(r, "id")) == 0) {
          seen[i]++;
          hit = 1;
        }
      extra += !hit;
    }
    json_decref(rows);
    kdao_free(offset);
    offset = next;
    /* between pages: new rows anywhere in key order, and some unvisited ones go away */
    char text[64];
    snprintf(text, sizeof text, "{\"username\": \"new%d\"}", pages);
    json_decref(pgt_insert(F, "consumers", text, 0));
    for (int i = pages * 5; i < N && i < pages * 5 + 5; i += 5) {
      if (seen[i]) continue;
      json_t *pk = json_pack("{ss}", "id", ids[i]);
      assert_int_equal(kdao_dao_delete(dao("consumers"), pk, KDAO_DAO_QUIET, NULL, &err), KDAO_OK);
      json_decref(pk);
      free(ids[i]);
      ids[i] = NULL;
    }
    pages++;
    assert_true(pages < 100);
  } while (offset);
  for (int i = 0; i < N; i++) {
    if (ids[i]) assert_int_equal(seen[i], 1);
    free(ids[i]);
  }
  assert_true(extra <= pages); /* only inserted rows beyond the originals */

  /* a token that is not one of ours is a schema error, not a crash */
  json_t *rows = NULL;
  char *next = NULL;
  assert_int_equal(
      kdao_dao_find_page(dao("consumers"), NULL, "not-a-token!", 5, &rows, &next, &err),
      KDAO_ERR_SCHEMA);
  kdao_error_free(err);
}

/* ---- values ---- */

static void test_values_round_trip_and_are_stored_as_kong_stores_them(void **state) {
  (void)state;
  const char *unicode = "h\xc3\xa9llo \xe4\xb8\x96\xe7\x95\x8c \xf0\x9f\x9a\x80 \\\" '";
  json_t *c = json_pack("{ss ss}", "username", unicode, "custom_id", "O'Brien; DROP TABLE apis;--");
  json_t *stored = NULL;
  kdao_error *err = NULL;
  assert_int_equal(kdao_dao_insert(dao("consumers"), c, 0, 0, &stored, &err), KDAO_OK);
  json_t *back = pgt_find(F, "consumers", "id", pgt_str(stored, "id"));
  assert_string_equal(pgt_str(back, "username"), unicode);
  assert_string_equal(pgt_str(back, "custom_id"), "O'Brien; DROP TABLE apis;--");
  assert_true(json_equal(stored, back));
  /* created_at: milliseconds kept, stored as UTC without time zone */
  long long ms = json_integer_value(json_object_get(back, "created_at"));
  assert_true(ms > 1400000000000LL);
  char *same = pgt_value(RAW,
                         "SELECT created_at = to_timestamp(%lld / 1000.0) AT TIME ZONE 'utc'"
                         " FROM consumers WHERE id = '%s'",
                         ms, pgt_str(back, "id"));
  assert_string_equal(same, "t");
  free(same);
  json_decref(back);

  /* plugin config: nested, empty containers, unicode, numbers; plugins.config is json */
  const char *config = "{\"a\": {\"b\": [1, 2.5, {\"c\": \"\xc3\xa9\"}], \"d\": true},"
                       " \"empty_list\": [], \"empty_map\": {}, \"big\": 9007199254740993,"
                       " \"neg\": -3, \"s\": \"x\\ny\"}";
  json_t *a = api("cfg");
  json_t *plugin = json_pack("{ss ss so}", "name", "freeform", "api_id", pgt_str(a, "id"), "config",
                             pgt_json(config));
  json_t *prow = NULL;
  if (kdao_dao_insert(dao("plugins"), plugin, 0, 0, &prow, &err) != KDAO_OK)
    fail_msg("plugin: %s", kdao_error_string(err));
  json_t *pk = json_pack("{sO sO}", "id", json_object_get(prow, "id"), "name",
                         json_object_get(prow, "name"));
  json_t *pback = NULL;
  assert_int_equal(kdao_dao_find(dao("plugins"), pk, &pback, &err), KDAO_OK);
  json_t *want = pgt_json(config);
  assert_true(json_equal(json_object_get(pback, "config"), want));
  char *type = pgt_value(RAW, "SELECT pg_typeof(config)::text FROM plugins");
  assert_string_equal(type, "json");
  free(type);

  /* arrays are JSON text; Kong's cjson wrote empty arrays as {} and kdao reads them as [] */
  char *hosts = pgt_value(RAW, "SELECT hosts FROM apis WHERE id = '%s'", pgt_str(a, "id"));
  assert_string_equal(hosts, "[\"cfg.test\"]");
  free(hosts);
  PQclear(pgt_exec(RAW, "UPDATE apis SET methods = '{}', uris = '[\"\\/v1\"]'"));
  json_t *aback = pgt_find(F, "apis", "id", pgt_str(a, "id"));
  assert_true(json_is_array(json_object_get(aback, "methods")));
  assert_int_equal(json_array_size(json_object_get(aback, "methods")), 0);
  assert_string_equal(json_string_value(json_array_get(json_object_get(aback, "uris"), 0)), "/v1");

  /* a row Kong inserted itself (column defaults, its literals) reads like any other */
  PQclear(pgt_exec(RAW, "INSERT INTO apis (id, name, upstream_url, preserve_host, hosts)"
                        " VALUES ('0b5d5b43-22c8-4bd7-8d4a-6c3b7c5d6e7f', 'by-kong',"
                        " 'http://kong', false, '[\"kong.test\"]')"));
  json_t *kong = pgt_find(F, "apis", "id", "0b5d5b43-22c8-4bd7-8d4a-6c3b7c5d6e7f");
  assert_non_null(kong);
  assert_string_equal(pgt_str(kong, "name"), "by-kong");
  assert_int_equal(json_integer_value(json_object_get(kong, "retries")), 5);
  assert_true(json_integer_value(json_object_get(kong, "created_at")) >= 1000000000000LL);
  assert_true(json_is_false(json_object_get(kong, "preserve_host")));

  json_decref(kong);
  json_decref(aback);
  json_decref(want);
  json_decref(pback);
  json_decref(pk);
  json_decref(prow);
  json_decref(plugin);
  json_decref(a);
  json_decref(stored);
  json_decref(c);
}

int main(void) {
  pgt_require_server();
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup(test_unique_and_foreign_violations_name_the_field, clean),
      cmocka_unit_test_setup(test_ttl_rows_use_kongs_table_expire_and_purge, clean),
      cmocka_unit_test_setup(test_ttl_probe_by_key_spelling, clean),
      cmocka_unit_test_setup(test_pages_are_stable_while_rows_come_and_go, clean),
      cmocka_unit_test_setup(test_values_round_trip_and_are_stored_as_kong_stores_them, clean),
  };
  return cmocka_run_group_tests_name("postgres_backend", tests, setup, teardown);
}
