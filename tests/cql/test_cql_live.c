/*
 * test_cql_live.c — the CQL client against a real Cassandra (scripts/cassandra.sh start).
 *
 * Reads KDAO_CASSANDRA_HOST / KDAO_CASSANDRA_PORT (and KDAO_CASSANDRA_HOSTS, a comma-separated
 * list, for the cluster tests; KDAO_CASSANDRA_USER / _PASSWORD when auth is on). Exits 77
 * (skipped) when KDAO_CASSANDRA_HOST is unset. Works in keyspace kdao_cql_live, dropped at the
 * end.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "cql.h"

#define KS "kdao_cql_live"

static const char *g_host;
static uint16_t g_port;
static cql_cluster *g_cl;

static cql_conn_options conn_opts(const char *keyspace) {
  cql_conn_options o = {
      .host = g_host,
      .port = g_port,
      .username = getenv("KDAO_CASSANDRA_USER"),
      .password = getenv("KDAO_CASSANDRA_PASSWORD"),
      .keyspace = keyspace,
      .request_timeout_ms = 30000,
  };
  return o;
}

static cql_conn *open_conn(const char *keyspace) {
  cql_conn_options o = conn_opts(keyspace);
  cql_error err = {0};
  cql_conn *c = cql_conn_open(&o, &err);
  if (!c) fail_msg("connect: %s", cql_error_message(&err));
  cql_error_clear(&err);
  return c;
}

static void run_ok(const char *q) {
  cql_error err = {0};
  if (cql_cluster_query(g_cl, q, NULL, 0, NULL, NULL, &err) < 0)
    fail_msg("%s: %s", q, cql_error_message(&err));
}

/* ---- connection-level tests -------------------------------------------------------------- */

static void test_conn_open_options_query(void **state) {
  (void)state;
  cql_conn *c = open_conn(NULL);
  cql_error err = {0};
  json_t *sup = cql_conn_supported(c, &err);
  assert_non_null(sup);
  assert_non_null(json_object_get(sup, "CQL_VERSION"));
  json_decref(sup);

  cql_result *r = NULL;
  assert_int_equal(
      cql_conn_query(c, "SELECT release_version FROM system.local", NULL, 0, NULL, &r, &err), 0);
  assert_int_equal(cql_result_kind_of(r), CQL_RESULT_ROWS);
  assert_int_equal(cql_result_row_count(r), 1);
  const char *v;
  size_t len;
  assert_int_equal(cql_result_get_text(r, 0, 0, &v, &len), 0);
  assert_true(len >= 3 && v[0] == '5');
  cql_result_free(r);
  cql_conn_close(c);
}

static void test_conn_refused_names_host(void **state) {
  (void)state;
  cql_conn_options o = {.host = "127.0.0.1", .port = 1, .connect_timeout_ms = 2000};
  cql_error err = {0};
  assert_null(cql_conn_open(&o, &err));
  assert_int_equal(err.kind, CQL_ERR_CONNECT);
  assert_non_null(strstr(cql_error_message(&err), "127.0.0.1:1"));
  cql_error_clear(&err);
}

static void test_conn_streams_in_flight(void **state) {
  (void)state;
  cql_conn *c = open_conn(NULL);
  cql_error err = {0};
  int s[3];
  const char *qs[3] = {"SELECT key FROM system.local", "SELECT cluster_name FROM system.local",
                       "SELECT data_center FROM system.local"};
  for (int i = 0; i < 3; i++) {
    s[i] = cql_conn_submit_query(c, qs[i], NULL, 0, NULL, &err);
    assert_true(s[i] >= 0);
  }
  for (int i = 2; i >= 0; i--) { /* wait in reverse order: responses are parked by stream */
    cql_result *r = NULL;
    assert_int_equal(cql_conn_wait(c, s[i], &r, &err), 0);
    assert_int_equal(cql_result_row_count(r), 1);
    const char *name = cql_result_column_name(r, 0);
    assert_non_null(strstr(qs[i], name));
    cql_result_free(r);
  }
  cql_conn_close(c);
}

static void test_errors_decoded(void **state) {
  (void)state;
  cql_conn *c = open_conn(KS);
  cql_error err = {0};
  assert_int_equal(cql_conn_query(c, "SELEKT * FROM nowhere", NULL, 0, NULL, NULL, &err), -1);
  assert_int_equal(err.kind, CQL_ERR_SERVER);
  assert_int_equal(err.code, CQL_SERVER_SYNTAX_ERROR);
  assert_true(strncmp(cql_error_message(&err), "[Syntax error] ", 15) == 0);

  assert_int_equal(cql_conn_query(c, "SELECT * FROM no_such_table", NULL, 0, NULL, NULL, &err), -1);
  assert_int_equal(err.code, CQL_SERVER_INVALID);
  assert_true(strncmp(cql_error_message(&err), "[Invalid] ", 10) == 0);
  assert_non_null(err.host);

  assert_int_equal(
      cql_conn_query(c, "CREATE TABLE types (id uuid PRIMARY KEY)", NULL, 0, NULL, NULL, &err), -1);
  assert_int_equal(err.code, CQL_SERVER_ALREADY_EXISTS);
  assert_string_equal(err.keyspace, KS);
  assert_string_equal(err.table, "types");
  assert_true(strncmp(cql_error_message(&err), "[Already exists] ", 17) == 0);

  /* A server error leaves the connection usable. */
  assert_false(cql_conn_is_broken(c));
  assert_int_equal(cql_conn_query(c, "SELECT now() FROM system.local", NULL, 0, NULL, NULL, &err),
                   0);
  cql_error_clear(&err);
  cql_conn_close(c);
}

static void test_events_schema_change(void **state) {
  (void)state;
  cql_conn *ev = open_conn(NULL);
  cql_error err = {0};
  const char *types[] = {"SCHEMA_CHANGE", NULL};
  assert_int_equal(cql_conn_register(ev, types, &err), 0);
  run_ok("CREATE TABLE IF NOT EXISTS " KS ".evt (id int PRIMARY KEY)");
  cql_event *e = NULL;
  int got = 0;
  for (int i = 0; i < 20 && !got; i++) {
    got = cql_conn_next_event(ev, 500, &e, &err);
    if (got == 1 && (!e->name || strcmp(e->name, "evt") != 0)) {
      cql_event_free(e);
      got = 0;
    }
  }
  assert_int_equal(got, 1);
  assert_string_equal(e->type, "SCHEMA_CHANGE");
  assert_string_equal(e->change, "CREATED");
  assert_string_equal(e->target, "TABLE");
  assert_string_equal(e->keyspace, KS);
  cql_event_free(e);
  cql_conn_close(ev);
}

/* With PasswordAuthenticator on (KDAO_CASSANDRA_AUTH=password scripts/cassandra.sh start):
 * a wrong password is the server's BAD_CREDENTIALS, no credentials a client-side AUTH error. */
static void test_auth_failures(void **state) {
  (void)state;
  if (!getenv("KDAO_CASSANDRA_USER")) skip();
  cql_conn_options o = conn_opts(NULL);
  o.password = "wrong-password";
  cql_error err = {0};
  assert_null(cql_conn_open(&o, &err));
  assert_int_equal(err.kind, CQL_ERR_SERVER);
  assert_int_equal(err.code, CQL_SERVER_BAD_CREDENTIALS);
  assert_true(strncmp(cql_error_message(&err), "[Bad credentials] ", 18) == 0);
  assert_null(strstr(cql_error_message(&err), "wrong-password"));
  o.username = o.password = NULL;
  assert_null(cql_conn_open(&o, &err));
  assert_int_equal(err.kind, CQL_ERR_AUTH);
  assert_non_null(strstr(cql_error_message(&err), "PasswordAuthenticator"));
  cql_error_clear(&err);
}

/* ---- values round trip ------------------------------------------------------------------- */

static void test_types_round_trip(void **state) {
  (void)state;
  cql_error err = {0};
  const char *id = "de305d54-75b4-431b-adb2-eb6b9e546014";
  const char *tags[] = {"a", "ünï", "日本"};
  const char *mk[] = {"k1", "k2"}, *mv[] = {"v1", "v2"};
  cql_value vals[] = {
      cql_v_uuid_str(id),
      cql_v_text("héllo wörld ✓"),
      cql_v_int(-42),
      cql_v_bigint(INT64_C(1) << 40),
      cql_v_bool(1),
      cql_v_timestamp(1500000000123),
      cql_v_text_list(tags, 3),
      cql_v_text_set(tags, 2),
      cql_v_text_map(mk, mv, 2),
  };
  const char *ins = "INSERT INTO " KS ".types (id, t, i, b, f, ts, l, s, m) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)";
  assert_int_equal(cql_cluster_execute(g_cl, ins, vals, 9, NULL, NULL, &err), 0);

  const char *sel = "SELECT id, t, i, b, f, ts, l, s, m FROM " KS ".types WHERE id = ?";
  cql_value key = cql_v_uuid_str(id);
  cql_result *r = NULL;
  assert_int_equal(cql_cluster_execute(g_cl, sel, &key, 1, NULL, &r, &err), 0);
  assert_int_equal(cql_result_row_count(r), 1);
  json_t *row = cql_result_row_json(r, 0);
  assert_non_null(row);
  char *dump = json_dumps(row, JSON_SORT_KEYS | JSON_COMPACT);
  assert_string_equal(dump, "{\"b\":1099511627776,\"f\":true,\"i\":-42,"
                            "\"id\":\"de305d54-75b4-431b-adb2-eb6b9e546014\","
                            "\"l\":[\"a\",\"ünï\",\"日本\"],\"m\":{\"k1\":\"v1\",\"k2\":\"v2\"},"
                            "\"s\":[\"a\",\"ünï\"],\"t\":\"héllo wörld ✓\",\"ts\":1500000000123}");
  free(dump);
  json_decref(row);
  int64_t i64;
  assert_int_equal(cql_result_get_int64(r, 0, 2, &i64), 0);
  assert_int_equal(i64, -42);
  cql_result_free(r);

  /* Nulls and an empty list, bound from JSON. Cassandra stores an empty list as null. */
  const char *id2 = "00000000-0000-4000-8000-000000000002";
  json_t *j = json_pack("[s, n, n, n, n, n, [], n, n]", id2);
  cql_value jv[9];
  for (size_t k = 0; k < 9; k++) jv[k] = cql_v_json(json_array_get(j, k));
  assert_int_equal(cql_cluster_execute(g_cl, ins, jv, 9, NULL, NULL, &err), 0);
  json_decref(j);
  key = cql_v_uuid_str(id2);
  assert_int_equal(cql_cluster_execute(g_cl, sel, &key, 1, NULL, &r, &err), 0);
  row = cql_result_row_json(r, 0);
  assert_true(json_is_null(json_object_get(row, "t")));
  assert_true(json_is_null(json_object_get(row, "l")));
  assert_true(json_is_null(json_object_get(row, "i")));
  assert_int_equal(cql_result_is_null(r, 0, 1), 1);
  json_decref(row);
  cql_result_free(r);

  /* JSON values converted by column type, including a uuid string and an int range check. */
  json_t *good =
      json_pack("[s, s, i, i, b, I, [s], [s], {s:s}]", "00000000-0000-4000-8000-000000000003", "x",
                7, 8, 0, (json_int_t)1, "e", "f", "g", "h");
  for (size_t k = 0; k < 9; k++) jv[k] = cql_v_json(json_array_get(good, k));
  assert_int_equal(cql_cluster_execute(g_cl, ins, jv, 9, NULL, NULL, &err), 0);
  json_t *big = json_integer(INT64_C(1) << 40);
  jv[2] = cql_v_json(big); /* into the int column: out of range */
  assert_int_equal(cql_cluster_execute(g_cl, ins, jv, 9, NULL, NULL, &err), -1);
  assert_int_equal(err.kind, CQL_ERR_MISUSE);
  json_decref(big);
  json_decref(good);
  cql_error_clear(&err);
}

static void test_counter(void **state) {
  (void)state;
  cql_error err = {0};
  const char *up = "UPDATE " KS ".counters SET n = n + ? WHERE k = ?";
  cql_value v[] = {cql_v_bigint(5), cql_v_text("hits")};
  assert_int_equal(cql_cluster_execute(g_cl, up, v, 2, NULL, NULL, &err), 0);
  assert_int_equal(cql_cluster_execute(g_cl, up, v, 2, NULL, NULL, &err), 0);
  cql_result *r = NULL;
  assert_int_equal(cql_cluster_execute(g_cl, "SELECT n FROM " KS ".counters WHERE k = ?", &v[1], 1,
                                       NULL, &r, &err),
                   0);
  int64_t n = 0;
  assert_int_equal(cql_result_get_int64(r, 0, 0, &n), 0);
  assert_int_equal(n, 10);
  cql_result_free(r);
}

/* ---- paging, LWT, batch, unprepared ----------------------------------------------------- */

static void test_paging_each_row_once(void **state) {
  (void)state;
  cql_error err = {0};
  for (int i = 0; i < 250; i++) {
    cql_value v[] = {cql_v_int(i), cql_v_text("row")};
    assert_int_equal(cql_cluster_execute(g_cl, "INSERT INTO " KS ".pages (k, v) VALUES (?, ?)", v,
                                         2, NULL, NULL, &err),
                     0);
  }
  static unsigned char seen[250];
  memset(seen, 0, sizeof seen);
  size_t total = 0, pages = 0;
  uint8_t *state_copy = NULL;
  size_t state_len = 0;
  for (;;) {
    cql_query_opts qo = {
        .page_size = 100, .paging_state = state_copy, .paging_state_len = state_len};
    cql_result *r = NULL;
    assert_int_equal(
        cql_cluster_execute(g_cl, "SELECT k FROM " KS ".pages", NULL, 0, &qo, &r, &err), 0);
    pages++;
    assert_true(cql_result_row_count(r) <= 100);
    for (size_t i = 0; i < cql_result_row_count(r); i++) {
      int64_t k;
      assert_int_equal(cql_result_get_int64(r, i, 0, &k), 0);
      assert_true(k >= 0 && k < 250);
      assert_int_equal(seen[k], 0);
      seen[k] = 1;
      total++;
    }
    free(state_copy);
    state_copy = NULL;
    size_t len = 0;
    const uint8_t *ps = cql_result_paging_state(r, &len);
    if (ps) {
      state_copy = malloc(len);
      assert_non_null(state_copy);
      memcpy(state_copy, ps, len);
      state_len = len;
    }
    cql_result_free(r);
    if (!state_copy) break;
  }
  assert_int_equal(total, 250);
  assert_true(pages >= 3);
}

static void test_lwt_applied(void **state) {
  (void)state;
  cql_error err = {0};
  const char *q = "INSERT INTO " KS ".lwt (k, v) VALUES (?, ?) IF NOT EXISTS";
  cql_value v1[] = {cql_v_text("key"), cql_v_text("first")};
  cql_value v2[] = {cql_v_text("key"), cql_v_text("second")};
  cql_query_opts qo = {.serial_consistency = CQL_SERIAL};
  cql_result *r = NULL;
  assert_int_equal(cql_cluster_execute(g_cl, q, v1, 2, &qo, &r, &err), 0);
  assert_int_equal(cql_result_applied(r), 1);
  cql_result_free(r);
  assert_int_equal(cql_cluster_execute(g_cl, q, v2, 2, &qo, &r, &err), 0);
  assert_int_equal(cql_result_applied(r), 0);
  /* The existing row comes back with the not-applied answer. */
  int col = cql_result_column_index(r, "v");
  assert_true(col >= 0);
  const char *s;
  size_t len;
  assert_int_equal(cql_result_get_text(r, 0, (size_t)col, &s, &len), 0);
  assert_int_equal(len, 5);
  assert_memory_equal(s, "first", 5);
  cql_result_free(r);
  /* Not an LWT: no [applied] column. */
  assert_int_equal(cql_cluster_query(g_cl, "SELECT * FROM " KS ".lwt", NULL, 0, NULL, &r, &err), 0);
  assert_int_equal(cql_result_applied(r), -1);
  cql_result_free(r);
}

static void test_batch(void **state) {
  (void)state;
  cql_error err = {0};
  cql_value a[] = {cql_v_int(1000), cql_v_text("b1")};
  cql_value b[] = {cql_v_int(1001), cql_v_text("b2")};
  cql_batch_stmt stmts[] = {
      {.query = "INSERT INTO " KS ".pages (k, v) VALUES (?, ?)",
       .prepare = 1,
       .values = a,
       .n_values = 2},
      {.query = "INSERT INTO " KS ".pages (k, v) VALUES (?, ?)", .values = b, .n_values = 2},
  };
  assert_int_equal(cql_cluster_batch(g_cl, CQL_BATCH_LOGGED, stmts, 2, NULL, NULL, &err), 0);
  cql_result *r = NULL;
  assert_int_equal(cql_cluster_query(g_cl, "SELECT v FROM " KS ".pages WHERE k IN (1000, 1001)",
                                     NULL, 0, NULL, &r, &err),
                   0);
  assert_int_equal(cql_result_row_count(r), 2);
  cql_result_free(r);
  assert_int_equal(cql_cluster_query(g_cl, "DELETE FROM " KS ".pages WHERE k IN (1000, 1001)", NULL,
                                     0, NULL, NULL, &err),
                   0);
}

/* Dropping a table makes the node forget statements prepared on it: a raw EXECUTE then gets
 * UNPREPARED (with the id), and the cluster re-prepares transparently. */
static void test_unprepared_recovery(void **state) {
  (void)state;
  cql_error err = {0};
  const char *sel = "SELECT v FROM " KS ".unprep WHERE k = ?";
  run_ok("CREATE TABLE IF NOT EXISTS " KS ".unprep (k int PRIMARY KEY, v text)");
  cql_value k = cql_v_int(1);
  assert_int_equal(cql_cluster_execute(g_cl, sel, &k, 1, NULL, NULL, &err), 0);

  cql_conn *c = open_conn(NULL);
  cql_prepared *p = NULL;
  assert_int_equal(cql_conn_prepare(c, sel, &p, &err), 0);
  assert_int_equal(cql_prepared_param_count(p), 1);
  assert_int_equal(cql_prepared_param_type(p, 0), CQL_TYPE_INT);
  assert_string_equal(cql_prepared_param_name(p, 0), "k");

  run_ok("DROP TABLE " KS ".unprep");
  run_ok("CREATE TABLE " KS ".unprep (k int PRIMARY KEY, v text)");
  run_ok("INSERT INTO " KS ".unprep (k, v) VALUES (1, 'back')");

  assert_int_equal(cql_conn_execute(c, p, &k, 1, NULL, NULL, &err), -1);
  assert_int_equal(err.kind, CQL_ERR_SERVER);
  assert_int_equal(err.code, CQL_SERVER_UNPREPARED);
  size_t idlen;
  const uint8_t *id = cql_prepared_id(p, &idlen);
  assert_int_equal(err.unprepared_id_len, idlen);
  assert_memory_equal(err.unprepared_id, id, idlen);
  assert_true(strncmp(cql_error_message(&err), "[Unprepared] ", 13) == 0);
  cql_error_clear(&err);
  cql_prepared_free(p);
  cql_conn_close(c);

  cql_result *r = NULL;
  assert_int_equal(cql_cluster_execute(g_cl, sel, &k, 1, NULL, &r, &err), 0);
  assert_int_equal(cql_result_row_count(r), 1);
  json_t *v = cql_result_cell_json(r, 0, 0);
  assert_string_equal(json_string_value(v), "back");
  json_decref(v);
  cql_result_free(r);
}

static void test_schema_agreement(void **state) {
  (void)state;
  cql_error err = {0};
  run_ok("CREATE TABLE IF NOT EXISTS " KS ".agree (k int PRIMARY KEY)");
  assert_int_equal(cql_cluster_wait_schema_agreement(g_cl, &err), 1);
  run_ok("CREATE INDEX IF NOT EXISTS ON " KS ".types(t)");
  cql_result *r = NULL;
  cql_value t = cql_v_text("x");
  /* A legacy index on a table that has data builds in the background: until then reads
     * through it fail with READ_FAILURE ("index not yet available"). Wait for it, bounded. */
  int rc = -1;
  for (int i = 0; i < 50 && rc < 0; i++) {
    rc =
        cql_cluster_execute(g_cl, "SELECT id FROM " KS ".types WHERE t = ?", &t, 1, NULL, &r, &err);
    if (rc < 0 && err.code != CQL_SERVER_READ_FAILURE) break;
    if (rc < 0) nanosleep(&(struct timespec){0, 200000000L}, NULL);
  }
  if (rc < 0) fail_msg("index query: %s", cql_error_message(&err));
  cql_error_clear(&err);
  assert_int_equal(cql_result_row_count(r), 1);
  cql_result_free(r);
}

/* ---- cluster ------------------------------------------------------------------------------ */

static size_t split_hosts(char *list, const char **out, size_t max) {
  size_t n = 0;
  for (char *tok = strtok(list, ","); tok && n < max; tok = strtok(NULL, ",")) out[n++] = tok;
  return n;
}

static void test_cluster_down_contact_point(void **state) {
  (void)state;
  /* 127.0.0.254 has nothing listening: it is marked down and the others serve. */
  const char *cps[] = {"127.0.0.254", g_host};
  cql_cluster_options o = {.contact_points = cps,
                           .n_contact_points = 2,
                           .port = g_port,
                           .username = getenv("KDAO_CASSANDRA_USER"),
                           .password = getenv("KDAO_CASSANDRA_PASSWORD"),
                           .connect_timeout_ms = 2000,
                           .keyspace = KS,
                           .discover_peers = 1};
  cql_error err = {0};
  cql_cluster *cl = cql_cluster_open(&o, &err);
  assert_non_null(cl);
  assert_false(cql_cluster_node_is_up(cl, 0));
  for (int i = 0; i < 6; i++) {
    cql_result *r = NULL;
    assert_int_equal(cql_cluster_query(cl, "SELECT k FROM lwt", NULL, 0, NULL, &r, &err), 0);
    cql_result_free(r);
  }
  cql_cluster_close(cl);
}

static void test_cluster_discovery(void **state) {
  (void)state;
  const char *env = getenv("KDAO_CASSANDRA_HOSTS");
  char buf[256];
  snprintf(buf, sizeof buf, "%s", env ? env : g_host);
  const char *hosts[9];
  size_t nh = split_hosts(buf, hosts, 9);
  if (nh < 2) skip();
  /* Only the first contact point: the others must be discovered from system.peers. */
  cql_cluster_options o = {.contact_points = hosts,
                           .n_contact_points = 1,
                           .port = g_port,
                           .username = getenv("KDAO_CASSANDRA_USER"),
                           .password = getenv("KDAO_CASSANDRA_PASSWORD"),
                           .policy = CQL_LB_DC_AWARE,
                           .discover_peers = 1};
  cql_error err = {0};
  cql_cluster *cl = cql_cluster_open(&o, &err);
  assert_non_null(cl);
  assert_int_equal(cql_cluster_node_count(cl), nh);
  for (size_t i = 0; i < nh; i++) assert_string_equal(cql_cluster_node_dc(cl, i), "datacenter1");
  /* Round-robin: every node gets queries, each prepares its own statement. */
  for (size_t i = 0; i < nh * 2; i++) {
    cql_value k = cql_v_text("key");
    cql_result *r = NULL;
    assert_int_equal(
        cql_cluster_execute(cl, "SELECT v FROM " KS ".lwt WHERE k = ?", &k, 1, NULL, &r, &err), 0);
    cql_result_free(r);
  }
  assert_int_equal(cql_cluster_wait_schema_agreement(cl, &err), 1);
  cql_cluster_close(cl);
}

/* ---- setup -------------------------------------------------------------------------------- */

static int setup(void **state) {
  (void)state;
  const char *cps[] = {g_host};
  cql_cluster_options o = {.contact_points = cps,
                           .n_contact_points = 1,
                           .port = g_port,
                           .username = getenv("KDAO_CASSANDRA_USER"),
                           .password = getenv("KDAO_CASSANDRA_PASSWORD"),
                           .request_timeout_ms = 30000,
                           .discover_peers = 1};
  cql_error err = {0};
  g_cl = cql_cluster_open(&o, &err);
  if (!g_cl) {
    fprintf(stderr, "cluster open: %s\n", cql_error_message(&err));
    cql_error_clear(&err);
    return -1;
  }
  const char *ddl[] = {
      "DROP KEYSPACE IF EXISTS " KS,
      "CREATE KEYSPACE " KS " WITH replication = {'class': 'SimpleStrategy', "
      "'replication_factor': 1}",
      "CREATE TABLE " KS ".types (id uuid PRIMARY KEY, t text, i int, b bigint, f boolean, "
      "ts timestamp, l list<text>, s set<text>, m map<text, text>)",
      "CREATE TABLE " KS ".counters (k text PRIMARY KEY, n counter)",
      "CREATE TABLE " KS ".pages (k int PRIMARY KEY, v text)",
      "CREATE TABLE " KS ".lwt (k text PRIMARY KEY, v text)",
  };
  for (size_t i = 0; i < sizeof ddl / sizeof ddl[0]; i++)
    if (cql_cluster_query(g_cl, ddl[i], NULL, 0, NULL, NULL, &err) < 0) {
      fprintf(stderr, "%s: %s\n", ddl[i], cql_error_message(&err));
      cql_error_clear(&err);
      return -1;
    }
  return 0;
}

static int teardown(void **state) {
  (void)state;
  cql_error err = {0};
  cql_cluster_query(g_cl, "DROP KEYSPACE IF EXISTS " KS, NULL, 0, NULL, NULL, &err);
  cql_error_clear(&err);
  cql_cluster_close(g_cl);
  return 0;
}

int main(void) {
  g_host = getenv("KDAO_CASSANDRA_HOST");
  if (!g_host || !*g_host) {
    printf("KDAO_CASSANDRA_HOST not set: skipping (start one with scripts/cassandra.sh)\n");
    return 77;
  }
  const char *port = getenv("KDAO_CASSANDRA_PORT");
  g_port = (uint16_t)(port ? atoi(port) : 9042);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_conn_open_options_query),
      cmocka_unit_test(test_conn_refused_names_host),
      cmocka_unit_test(test_conn_streams_in_flight),
      cmocka_unit_test(test_errors_decoded),
      cmocka_unit_test(test_events_schema_change),
      cmocka_unit_test(test_auth_failures),
      cmocka_unit_test(test_types_round_trip),
      cmocka_unit_test(test_counter),
      cmocka_unit_test(test_paging_each_row_once),
      cmocka_unit_test(test_lwt_applied),
      cmocka_unit_test(test_batch),
      cmocka_unit_test(test_unprepared_recovery),
      cmocka_unit_test(test_schema_agreement),
      cmocka_unit_test(test_cluster_down_contact_point),
      cmocka_unit_test(test_cluster_discovery),
  };
  return cmocka_run_group_tests_name("cql_live", tests, setup, teardown);
}
