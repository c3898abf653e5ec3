/*
 * test_cassandra_backend.c — what the shared suite cannot see of the Cassandra backend, on a
 * real server: reservations left by a dead writer, primary-key reuse, TTL updates (false
 * values kept, no row left behind after expiry), moving an ssl_servers_names row to another
 * certificate, forged page tokens, tables larger than a page, ';' inside a migration's
 * string literal, and the keyspace's replication settings.
 *
 * Keyspace <cassandra_keyspace>_backend, dropped at the end. Exit 77 (skip) without
 * KDAO_CASSANDRA_CONTACT_POINTS, unless KDAO_REQUIRE_ALL=1.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "cql.h"
#include "kdao.h"

static kdao_factory *F;
static cql_cluster *CL;
static char KEYSPACE[64];

/* A plugin whose Cassandra migration holds a ';' inside a string literal. */
static const kdao_migration_def SEMI_MIGRATIONS[] = {
    {"2017-01-01-000000_semicolons",
     "CREATE TABLE IF NOT EXISTS semi_notes (id text PRIMARY KEY, body text);\n"
     "-- a comment; with a semicolon\n"
     "INSERT INTO semi_notes (id, body) VALUES ('a;b', 'it''s; fine');"},
    {NULL, NULL}};
static const kdao_plugin_def SEMI = {
    .version = KDAO_DEF_VERSION,
    .name = "semi",
    .migrations = (const kdao_plugin_migrations[]){{"cassandra", SEMI_MIGRATIONS}, {NULL, NULL}},
};

static kdao_dao *dao(const char *name) {
  kdao_dao *d = kdao_factory_dao(F, name);
  assert_non_null(d);
  return d;
}

static json_t *J(const char *text) {
  json_t *v = json_loads(text, JSON_DECODE_ANY, NULL);
  if (v == NULL) fail_msg("bad JSON in test: %s", text);
  return v;
}

static json_t *must_insert(const char *entity, const char *text, int ttl) {
  json_t *in = J(text), *row = NULL;
  kdao_error *err = NULL;
  if (kdao_dao_insert(dao(entity), in, ttl, KDAO_DAO_QUIET, &row, &err) != KDAO_OK)
    fail_msg("insert %s: %s", text, kdao_error_string(err));
  json_decref(in);
  return row;
}

static cql_result *cql(const char *q, const cql_value *v, size_t n) {
  cql_error ce = {0};
  cql_result *r = NULL;
  if (cql_cluster_query(CL, q, v, n, NULL, &r, &ce) != 0)
    fail_msg("%s: %s", q, cql_error_message(&ce));
  return r;
}

static const char *str(const json_t *row, const char *k) {
  const char *s = json_string_value(json_object_get(row, k));
  if (s == NULL) fail_msg("%s is not a string", k);
  return s;
}

static const char *API =
    "{\"name\": \"%s\", \"hosts\": [\"h.com\"], \"upstream_url\": \"http://u\"}";

static json_t *api(const char *name, int ttl) {
  char buf[256];
  snprintf(buf, sizeof buf, API, name);
  return must_insert("apis", buf, ttl);
}

static kdao_error *api_fails(const char *name) {
  char buf[256];
  snprintf(buf, sizeof buf, API, name);
  json_t *in = J(buf), *row = NULL;
  kdao_error *err = NULL;
  assert_int_equal(kdao_dao_insert(dao("apis"), in, 0, 0, &row, &err), KDAO_ERR_UNIQUE);
  json_decref(in);
  return err;
}

/* A reservation of apis.name = `name` by a row that does not exist, written `age_s` ago. */
static void orphan_reservation(const char *name, int age_s) {
  char q[256];
  snprintf(q, sizeof q,
           "INSERT INTO \"%s\".kdao_unique (table_name, field, value, owner)"
           " VALUES ('apis', 'name', ?, '[\"00000000-0000-4000-8000-00000000dead\"]')"
           " USING TIMESTAMP ?",
           KEYSPACE);
  cql_value v[2] = {cql_v_text(name), cql_v_bigint(((int64_t)time(NULL) - age_s) * 1000000)};
  cql_result_free(cql(q, v, 2));
}

static void a_dead_writers_old_reservation_is_taken_over(void **state) {
  (void)state;
  orphan_reservation("ghost", 3600);
  json_decref(api("ghost", 0));
  /* one in flight (young) still counts as taken */
  orphan_reservation("young", 0);
  kdao_error *err = api_fails("young");
  assert_string_equal(kdao_error_message(err), "name=already exists with value 'young'");
  kdao_error_free(err);
}

static void an_existing_primary_key_is_a_unique_error(void **state) {
  (void)state;
  json_t *a = api("first", 0);
  char buf[256];
  snprintf(buf, sizeof buf,
           "{\"id\": \"%s\", \"name\": \"second\", \"hosts\": [\"h.com\"],"
           " \"upstream_url\": \"http://u\"}",
           str(a, "id"));
  json_t *in = J(buf), *row = NULL;
  kdao_error *err = NULL;
  assert_int_equal(kdao_dao_insert(dao("apis"), in, 0, 0, &row, &err), KDAO_ERR_UNIQUE);
  char want[128];
  snprintf(want, sizeof want, "id=already exists with value '%s'", str(a, "id"));
  assert_string_equal(kdao_error_message(err), want);
  kdao_error_free(err);
  /* the stored row is untouched and "second" was given back */
  json_t *pk = json_pack("{ss}", "id", str(a, "id")), *found = NULL;
  assert_int_equal(kdao_dao_find(dao("apis"), pk, &found, NULL), KDAO_OK);
  assert_string_equal(str(found, "name"), "first");
  json_decref(api("second", 0));
  json_decref(found);
  json_decref(pk);
  json_decref(in);
  json_decref(a);
}

/* Rows of `id` in apis, as Cassandra sees them (expired or not, kdao or not). */
static size_t raw_rows(const char *id) {
  char q[128];
  snprintf(q, sizeof q, "SELECT id FROM \"%s\".apis WHERE id = ?", KEYSPACE);
  cql_value v = cql_v_uuid_str(id);
  cql_result *r = cql(q, &v, 1);
  size_t n = cql_result_row_count(r);
  cql_result_free(r);
  return n;
}

static void ttl_updates_keep_false_and_leave_nothing_behind(void **state) {
  (void)state;
  json_t *a = api("short", 0), *b = api("shorter", 2), *row = NULL;
  /* a TTL set by update, with a false value in the same update (Kong lost it) */
  json_t *vals = json_pack("{sssb}", "id", str(a, "id"), "strip_uri", 0);
  assert_int_equal(kdao_dao_update(dao("apis"), vals, NULL, 2, 0, &row, NULL), KDAO_OK);
  assert_true(json_is_false(json_object_get(row, "strip_uri")));
  json_decref(row);
  json_decref(vals);
  json_t *pk = json_pack("{ss}", "id", str(a, "id"));
  assert_int_equal(kdao_dao_find(dao("apis"), pk, &row, NULL), KDAO_OK);
  assert_true(json_is_false(json_object_get(row, "strip_uri")));
  json_decref(row);
  /* an update without TTL of a row that has one must not outlive it */
  vals = json_pack("{sssi}", "id", str(b, "id"), "retries", 1);
  assert_int_equal(kdao_dao_update(dao("apis"), vals, NULL, 0, 0, &row, NULL), KDAO_OK);
  assert_int_equal(json_integer_value(json_object_get(row, "retries")), 1);
  json_decref(row);
  json_decref(vals);
  sleep(3);
  assert_int_equal(raw_rows(str(a, "id")), 0);
  assert_int_equal(raw_rows(str(b, "id")), 0);
  /* and their names are free again */
  json_decref(api("short", 0));
  json_decref(api("shorter", 0));
  json_decref(pk);
  json_decref(a);
  json_decref(b);
}

static void an_ssl_server_name_moves_to_another_certificate(void **state) {
  (void)state;
  json_t *c1 = must_insert("ssl_certificates", "{\"cert\": \"c1\", \"key\": \"k1\"}", 0);
  json_t *c2 = must_insert("ssl_certificates", "{\"cert\": \"c2\", \"key\": \"k2\"}", 0);
  char buf[256];
  snprintf(buf, sizeof buf, "{\"name\": \"a.com\", \"ssl_certificate_id\": \"%s\"}", str(c1, "id"));
  json_decref(must_insert("ssl_servers_names", buf, 0));
  json_t *vals = json_pack("{ssss}", "name", "a.com", "ssl_certificate_id", str(c2, "id"));
  json_t *row = NULL;
  kdao_error *err = NULL;
  if (kdao_dao_update(dao("ssl_servers_names"), vals, NULL, 0, 0, &row, &err) != KDAO_OK)
    fail_msg("update: %s", kdao_error_string(err));
  assert_string_equal(str(row, "ssl_certificate_id"), str(c2, "id"));
  json_decref(row);
  long long n = -1;
  assert_int_equal(kdao_dao_count(dao("ssl_servers_names"), NULL, &n, NULL), KDAO_OK);
  assert_int_equal(n, 1);
  /* the name stays taken */
  snprintf(buf, sizeof buf, "{\"name\": \"a.com\", \"ssl_certificate_id\": \"%s\"}", str(c1, "id"));
  json_t *in = J(buf);
  assert_int_equal(kdao_dao_insert(dao("ssl_servers_names"), in, 0, 0, &row, &err),
                   KDAO_ERR_UNIQUE);
  assert_string_equal(kdao_error_message(err), "name=already exists with value 'a.com'");
  kdao_error_free(err);
  json_decref(in);
  json_decref(vals);
  json_decref(c1);
  json_decref(c2);
}

static void a_forged_page_token_is_an_invalid_offset(void **state) {
  (void)state;
  for (int i = 0; i < 3; i++) {
    char name[16];
    snprintf(name, sizeof name, "p%d", i);
    json_decref(api(name, 0));
  }
  json_t *rows = NULL;
  char *next = NULL;
  assert_int_equal(kdao_dao_find_page(dao("apis"), NULL, NULL, 2, &rows, &next, NULL), KDAO_OK);
  assert_non_null(next);
  json_decref(rows);
  kdao_free(next);
  /* right version byte, garbage state; and no version byte */
  const char *forged[] = {"AWdhcmJhZ2UgcGFnaW5nIHN0YXRl", "Z2FyYmFnZQ", "AQ"};
  for (size_t i = 0; i < sizeof forged / sizeof *forged; i++) {
    kdao_error *err = NULL;
    rows = NULL;
    int rc = kdao_dao_find_page(dao("apis"), NULL, forged[i], 2, &rows, &next, &err);
    if (rc != KDAO_ERR_SCHEMA) fail_msg("token %s: %s", forged[i], kdao_error_string(err));
    assert_string_equal(kdao_error_message(err), "offset=invalid offset");
    assert_null(rows);
    kdao_error_free(err);
  }
}

static void count_and_find_all_span_many_pages(void **state) {
  (void)state;
  enum { N = 2300 }; /* more than two find_all pages */
  json_t *batch = json_array();
  for (int i = 0; i < N; i++) {
    char name[16];
    snprintf(name, sizeof name, "many-%04d", i);
    json_array_append_new(
        batch, json_pack("{sss[s]ss}", "name", name, "hosts", "m.com", "upstream_url", "http://m"));
  }
  kdao_error *err = NULL;
  if (kdao_dao_insert_many(dao("apis"), batch, KDAO_DAO_QUIET, NULL, &err) != KDAO_OK)
    fail_msg("insert_many: %s", kdao_error_string(err));
  json_decref(batch);
  long long n = -1;
  assert_int_equal(kdao_dao_count(dao("apis"), NULL, &n, NULL), KDAO_OK);
  assert_int_equal(n, N);
  json_t *rows = NULL, *f = J("{\"hosts\": [\"m.com\"]}");
  assert_int_equal(kdao_dao_find_all(dao("apis"), NULL, &rows, NULL), KDAO_OK);
  assert_int_equal(json_array_size(rows), N);
  json_decref(rows);
  /* a filter on a column without index: server-side filtering, pages may come back short */
  assert_int_equal(kdao_dao_count(dao("apis"), f, &n, NULL), KDAO_OK);
  assert_int_equal(n, N);
  json_decref(f);
}

static void a_semicolon_inside_a_literal_does_not_split(void **state) {
  (void)state;
  char q[128];
  snprintf(q, sizeof q, "SELECT id, body FROM \"%s\".semi_notes", KEYSPACE);
  cql_result *r = cql(q, NULL, 0);
  assert_int_equal(cql_result_row_count(r), 1);
  json_t *row = cql_result_row_json(r, 0);
  assert_string_equal(str(row, "id"), "a;b");
  assert_string_equal(str(row, "body"), "it's; fine");
  json_decref(row);
  cql_result_free(r);
}

/*
 * Rows as Kong 0.10.4 wrote them (JSON text columns, cjson's "{}" for an empty array,
 * plugin config as text) read back through kdao; and kdao's rows read raw hold what Kong's
 * code expects to decode.
 */
static void rows_are_shared_with_kong(void **state) {
  (void)state;
  char q[512];
  snprintf(q, sizeof q,
           "INSERT INTO \"%s\".apis (id, name, hosts, uris, methods, upstream_url, strip_uri,"
           " preserve_host, retries, created_at) VALUES (?, 'kong-made', '[\"k.com\"]', '{}',"
           " '[\"GET\",\"POST\"]', 'http://k', true, false, 5, 1500000000000)",
           KEYSPACE);
  const char *id = "6b2a9f1e-52c0-4c5e-9d7f-0e6f3c1b2a90";
  cql_value v = cql_v_uuid_str(id);
  cql_result_free(cql(q, &v, 1));
  snprintf(q, sizeof q,
           "INSERT INTO \"%s\".plugins (id, name, api_id, config, enabled, created_at)"
           " VALUES (7c1e7a9e-5b7e-4c1d-8d0f-3f1b9e2a4c11, 'key-auth', ?,"
           " '{\"key_names\":[\"apikey\"],\"hide_credentials\":false}', true,"
           " 1500000000000)",
           KEYSPACE);
  cql_result_free(cql(q, &v, 1));
  json_t *pk = json_pack("{ss}", "id", id), *row = NULL;
  assert_int_equal(kdao_dao_find(dao("apis"), pk, &row, NULL), KDAO_OK);
  assert_non_null(row);
  assert_string_equal(str(row, "name"), "kong-made");
  json_t *want = J("{\"hosts\": [\"k.com\"], \"uris\": [], \"methods\": [\"GET\", \"POST\"],"
                   " \"created_at\": 1500000000000, \"strip_uri\": true, \"retries\": 5}");
  const char *k;
  json_t *wv;
  json_object_foreach(want, k, wv) {
    if (!json_equal(wv, json_object_get(row, k))) fail_msg("%s differs", k);
  }
  json_decref(want);
  json_decref(row);
  /* the plugin of that api, found through the index on api_id, config decoded */
  json_t *flt = json_pack("{ss}", "api_id", id), *rows = NULL;
  assert_int_equal(kdao_dao_find_all(dao("plugins"), flt, &rows, NULL), KDAO_OK);
  assert_int_equal(json_array_size(rows), 1);
  assert_true(json_is_false(
      json_object_get(json_object_get(json_array_get(rows, 0), "config"), "hide_credentials")));
  json_decref(rows);
  json_decref(flt);
  /* Kong reserved nothing: its name is still found taken */
  kdao_error *err = api_fails("kong-made");
  assert_string_equal(kdao_error_message(err), "name=already exists with value 'kong-made'");
  kdao_error_free(err);
  /* deleting the api through kdao takes the plugin along */
  assert_int_equal(kdao_dao_delete(dao("apis"), pk, 0, &row, NULL), KDAO_OK);
  json_decref(row);
  long long n = -1;
  assert_int_equal(kdao_dao_count(dao("plugins"), NULL, &n, NULL), KDAO_OK);
  assert_int_equal(n, 0);
  json_decref(pk);
  /* kdao's row, read raw: JSON text, uuid, timestamp, as Kong decodes them */
  json_t *a = api("kdao-made", 0);
  snprintf(q, sizeof q, "SELECT hosts, upstream_url, created_at, id FROM \"%s\".apis WHERE id = ?",
           KEYSPACE);
  v = cql_v_uuid_str(str(a, "id"));
  cql_result *r = cql(q, &v, 1);
  assert_int_equal(cql_result_column_type(r, 0), CQL_TYPE_VARCHAR);
  assert_int_equal(cql_result_column_type(r, 2), CQL_TYPE_TIMESTAMP);
  assert_int_equal(cql_result_column_type(r, 3), CQL_TYPE_UUID);
  const char *text;
  size_t len;
  assert_int_equal(cql_result_get_text(r, 0, 0, &text, &len), 0);
  assert_true(len == strlen("[\"h.com\"]") && memcmp(text, "[\"h.com\"]", len) == 0);
  int64_t ms = 0;
  assert_int_equal(cql_result_get_int64(r, 0, 2, &ms), 0);
  assert_int_equal(ms, json_integer_value(json_object_get(a, "created_at")));
  cql_result_free(r);
  json_decref(a);
}

/* The replication of keyspace `ks` as Cassandra reports it, e.g. {"class": ..., "dc1": "2"}. */
static json_t *replication_of(const char *ks) {
  cql_value v = cql_v_text(ks);
  cql_result *r =
      cql("SELECT replication FROM system_schema.keyspaces WHERE keyspace_name = ?", &v, 1);
  json_t *rep = cql_result_row_count(r) == 1 ? cql_result_cell_json(r, 0, 0) : NULL;
  cql_result_free(r);
  return rep;
}

static void the_keyspace_is_created_with_the_configured_replication(void **state) {
  (void)state;
  json_t *rep = replication_of(KEYSPACE);
  assert_string_equal(str(rep, "class"), "org.apache.cassandra.locator.SimpleStrategy");
  assert_string_equal(str(rep, "replication_factor"), "1");
  json_decref(rep);
  /* NetworkTopologyStrategy with cassandra_data_centers (SimpleSnitch's one DC) */
  char nts[80];
  snprintf(nts, sizeof nts, "%s_nts", KEYSPACE);
  kdao_config *cfg = NULL;
  kdao_factory *f = NULL;
  kdao_error *err = NULL;
  if (kdao_config_new(&cfg, &err) != KDAO_OK || kdao_config_load_env(cfg, &err) != KDAO_OK ||
      kdao_config_set(cfg, "database", "cassandra", &err) != KDAO_OK ||
      kdao_config_set(cfg, "cassandra_keyspace", nts, &err) != KDAO_OK ||
      kdao_config_set(cfg, "cassandra_repl_strategy", "NetworkTopologyStrategy", &err) != KDAO_OK ||
      kdao_config_set(cfg, "cassandra_data_centers", "datacenter1:1", &err) != KDAO_OK ||
      kdao_factory_open(cfg, &f, &err) != KDAO_OK)
    fail_msg("open: %s", kdao_error_string(err));
  kdao_config_free(cfg);
  json_t *infos = kdao_factory_infos(f);
  assert_string_equal(str(infos, "desc"), "keyspace");
  assert_string_equal(str(infos, "name"), nts);
  json_decref(infos);
  kdao_factory_free(f);
  rep = replication_of(nts);
  assert_string_equal(str(rep, "class"), "org.apache.cassandra.locator.NetworkTopologyStrategy");
  assert_string_equal(str(rep, "datacenter1"), "1");
  json_decref(rep);
  char q[128];
  snprintf(q, sizeof q, "DROP KEYSPACE \"%s\"", nts);
  cql_result_free(cql(q, NULL, 0));
}

/* No node answers: a db error with the portable code a caller can wait out. */
static void an_unreachable_cluster_is_unavailable(void **state) {
  (void)state;
  kdao_config *cfg = NULL;
  kdao_factory *f = NULL;
  kdao_error *err = NULL;
  if (kdao_config_new(&cfg, &err) != KDAO_OK ||
      kdao_config_set(cfg, "database", "cassandra", &err) != KDAO_OK ||
      kdao_config_set(cfg, "cassandra_contact_points", "127.0.0.1", &err) != KDAO_OK ||
      kdao_config_set(cfg, "cassandra_port", "1", &err) != KDAO_OK)
    fail_msg("config: %s", kdao_error_string(err));
  assert_int_equal(kdao_factory_open(cfg, &f, &err), KDAO_ERR_DB);
  assert_null(f);
  assert_string_equal(kdao_error_code(err), KDAO_ERR_CODE_UNAVAILABLE);
  kdao_error_free(err);
  kdao_config_free(cfg);
}

static int setup(void **state) {
  (void)state;
  kdao_config *cfg = NULL;
  kdao_error *err = NULL;
  if (kdao_config_new(&cfg, &err) != KDAO_OK || kdao_config_load_env(cfg, &err) != KDAO_OK ||
      kdao_config_set(cfg, "database", "cassandra", &err) != KDAO_OK ||
      kdao_config_set(cfg, "cassandra_keyspace", KEYSPACE, &err) != KDAO_OK ||
      kdao_factory_new(cfg, &F, &err) != KDAO_OK ||
      kdao_factory_register_plugin(F, &SEMI, &err) != KDAO_OK ||
      kdao_factory_connect(F, &err) != KDAO_OK || kdao_factory_drop_schema(F, &err) != KDAO_OK ||
      kdao_factory_migrate(F, NULL, NULL, NULL, &err) != KDAO_OK) {
    fprintf(stderr, "setup: %s\n", kdao_error_string(err));
    return -1;
  }
  kdao_config_free(cfg);
  const char *cps = getenv("KDAO_CASSANDRA_CONTACT_POINTS"), *port = getenv("KDAO_CASSANDRA_PORT");
  char host[256];
  snprintf(host, sizeof host, "%s", cps);
  host[strcspn(host, ",")] = '\0';
  const char *points[1] = {host};
  cql_cluster_options o = {.contact_points = points,
                           .n_contact_points = 1,
                           .port = (uint16_t)(port ? atoi(port) : 9042)};
  cql_error ce = {0};
  if ((CL = cql_cluster_open(&o, &ce)) == NULL) {
    fprintf(stderr, "connect: %s\n", cql_error_message(&ce));
    return -1;
  }
  return 0;
}

static int teardown(void **state) {
  (void)state;
  kdao_factory_drop_schema(F, NULL);
  kdao_factory_free(F);
  cql_cluster_close(CL);
  return 0;
}

static int clean(void **state) {
  (void)state;
  return kdao_factory_truncate_tables(F, NULL) == KDAO_OK ? 0 : -1;
}

int main(void) {
  const char *cps = getenv("KDAO_CASSANDRA_CONTACT_POINTS");
  if (cps == NULL || *cps == '\0') {
    const char *req = getenv("KDAO_REQUIRE_ALL");
    bool required = req && strcmp(req, "1") == 0;
    fprintf(stderr, "test_cassandra_backend: KDAO_CASSANDRA_CONTACT_POINTS unset%s\n",
            required ? " (KDAO_REQUIRE_ALL=1: failing)" : ", skipped");
    return required ? 1 : 77;
  }
  const char *ks = getenv("KDAO_CASSANDRA_KEYSPACE");
  snprintf(KEYSPACE, sizeof KEYSPACE, "%s_backend", ks && *ks ? ks : "kdao_test");
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup(a_dead_writers_old_reservation_is_taken_over, clean),
      cmocka_unit_test_setup(an_existing_primary_key_is_a_unique_error, clean),
      cmocka_unit_test_setup(ttl_updates_keep_false_and_leave_nothing_behind, clean),
      cmocka_unit_test_setup(an_ssl_server_name_moves_to_another_certificate, clean),
      cmocka_unit_test_setup(a_forged_page_token_is_an_invalid_offset, clean),
      cmocka_unit_test_setup(count_and_find_all_span_many_pages, clean),
      cmocka_unit_test_setup(rows_are_shared_with_kong, clean),
      cmocka_unit_test(a_semicolon_inside_a_literal_does_not_split),
      cmocka_unit_test(the_keyspace_is_created_with_the_configured_replication),
      cmocka_unit_test(an_unreachable_cluster_is_unavailable),
  };
  return cmocka_run_group_tests_name("cassandra_backend", tests, setup, teardown);
}
