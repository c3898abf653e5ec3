/*
 * dao_suite.c — the one DAO integration suite, run against every backend:
 *
 *   dao_suite sqlite | postgres | cassandra
 *
 * Everything goes through the public API (include/kdao.h) against a real server: the same
 * assertions on every backend, so a backend difference is a visible failure. Connection
 * settings come from KDAO_* environment variables (kdao_config_load_env), as the test
 * scripts export them. A backend whose settings are absent is skipped (exit 77) unless
 * KDAO_REQUIRE_ALL=1, which CI sets so that nothing is silently skipped there.
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
#include <pthread.h>

#include "kdao.h"

static kdao_factory *F;
static const char *BACKEND;
static char TMPDIR_PATH[256];

/* ---- events recorded by the factory callback ---- */

typedef struct event {
  char collection[64];
  kdao_event_type type;
  json_t *entity, *old;
} event;

static event EVENTS[64];
static size_t NEVENTS;

static void on_event(const char *collection, kdao_event_type type, const json_t *entity,
                     const json_t *old, void *ud) {
  (void)ud;
  if (NEVENTS >= sizeof EVENTS / sizeof *EVENTS) return;
  event *e = &EVENTS[NEVENTS++];
  snprintf(e->collection, sizeof e->collection, "%s", collection);
  e->type = type;
  e->entity = json_deep_copy(entity);
  e->old = old ? json_deep_copy(old) : NULL;
}

static void events_reset(void) {
  for (size_t i = 0; i < NEVENTS; i++) {
    json_decref(EVENTS[i].entity);
    json_decref(EVENTS[i].old);
  }
  NEVENTS = 0;
}

/* ---- helpers ---- */

static kdao_dao *dao(const char *name) {
  kdao_dao *d = kdao_factory_dao(F, name);
  assert_non_null(d);
  return d;
}

static json_t *J(const char *text) {
  json_error_t e;
  json_t *v = json_loads(text, JSON_DECODE_ANY, &e);
  if (v == NULL) fail_msg("bad JSON in test: %s: %s", text, e.text);
  return v;
}

/* True when `got` equals the JSON `text` (the parsed expectation is freed). */
static bool jeq(const json_t *got, const char *text) {
  json_t *want = J(text);
  bool eq = json_equal((json_t *)got, want);
  json_decref(want);
  return eq;
}

/* Inserts `text` into `entity` and returns the stored row; fails the test on error. */
static json_t *must_insert(const char *entity, const char *text) {
  json_t *in = J(text), *row = NULL;
  kdao_error *err = NULL;
  int rc = kdao_dao_insert(dao(entity), in, 0, 0, &row, &err);
  if (rc != KDAO_OK) fail_msg("insert %s %s: %s", entity, text, kdao_error_string(err));
  json_decref(in);
  return row;
}

/* Expects an insert to fail with `kind`; returns the error for further checks. */
static kdao_error *insert_fails(const char *entity, const char *text, int kind) {
  json_t *in = J(text), *row = NULL;
  kdao_error *err = NULL;
  int rc = kdao_dao_insert(dao(entity), in, 0, 0, &row, &err);
  json_decref(in);
  if (rc == KDAO_OK) {
    char *s = json_dumps(row, 0);
    fail_msg("insert %s %s unexpectedly succeeded: %s", entity, text, s);
  }
  assert_null(row);
  assert_non_null(err);
  if (rc != kind)
    fail_msg("expected %s error, got %s: %s", kdao_error_kind_name(kind), kdao_error_kind_name(rc),
             kdao_error_string(err));
  assert_int_equal(kdao_error_kind(err), kind);
  return err;
}

static void assert_field_msg(const kdao_error *err, const char *field, const char *msg) {
  const json_t *fields = kdao_error_fields(err);
  if (fields == NULL) fail_msg("error has no fields: %s", kdao_error_string(err));
  json_t *v = json_object_get(fields, field);
  if (!json_is_string(v)) fail_msg("no message for %s in: %s", field, kdao_error_message(err));
  assert_string_equal(json_string_value(v), msg);
}

static long long count_of(const char *entity, const char *filter) {
  json_t *f = filter ? J(filter) : NULL;
  long long n = -1;
  kdao_error *err = NULL;
  if (kdao_dao_count(dao(entity), f, &n, &err) != KDAO_OK)
    fail_msg("count: %s", kdao_error_string(err));
  json_decref(f);
  return n;
}

static json_t *find_by(const char *entity, const char *field, const char *value) {
  json_t *pk = json_pack("{ss}", field, value), *row = NULL;
  kdao_error *err = NULL;
  if (kdao_dao_find(dao(entity), pk, &row, &err) != KDAO_OK)
    fail_msg("find: %s", kdao_error_string(err));
  json_decref(pk);
  return row;
}

static const char *str(const json_t *row, const char *key) {
  json_t *v = json_object_get(row, key);
  if (!json_is_string(v)) fail_msg("%s is not a string in row", key);
  return json_string_value(v);
}

/* ---- setup ---- */

static int backend_available(void) {
  if (strcmp(BACKEND, "sqlite") == 0) return 1;
  if (strcmp(BACKEND, "postgres") == 0) return getenv("KDAO_PG_HOST") != NULL;
  if (strcmp(BACKEND, "cassandra") == 0) return getenv("KDAO_CASSANDRA_CONTACT_POINTS") != NULL;
  return 0;
}

/* The suite's configuration: the environment's, on the backend under test. NULL on error. */
static kdao_config *suite_config(void) {
  kdao_config *cfg = NULL;
  kdao_error *err = NULL;
  if (kdao_config_new(&cfg, &err) != KDAO_OK || kdao_config_load_env(cfg, &err) != KDAO_OK ||
      kdao_config_set(cfg, "database", BACKEND, &err) != KDAO_OK) {
    fprintf(stderr, "config: %s\n", kdao_error_string(err));
    kdao_error_free(err);
    kdao_config_free(cfg);
    return NULL;
  }
  if (strcmp(BACKEND, "sqlite") == 0) {
    char path[300];
    snprintf(path, sizeof path, "%s/kdao.db", TMPDIR_PATH);
    kdao_config_set(cfg, "sqlite_path", path, NULL);
  }
  return cfg;
}

static int open_factory(void **state) {
  (void)state;
  kdao_config *cfg = suite_config();
  kdao_error *err = NULL;
  if (cfg == NULL) return -1;
  int rc = kdao_factory_open(cfg, &F, &err);
  kdao_config_free(cfg);
  if (rc != KDAO_OK) {
    fprintf(stderr, "open: %s\n", kdao_error_string(err));
    kdao_error_free(err);
    return -1;
  }
  if (kdao_factory_drop_schema(F, &err) != KDAO_OK ||
      kdao_factory_migrate(F, NULL, NULL, NULL, &err) != KDAO_OK) {
    fprintf(stderr, "migrate: %s\n", kdao_error_string(err));
    kdao_error_free(err);
    return -1;
  }
  kdao_factory_on_event(F, on_event, NULL);
  return 0;
}

static int close_factory(void **state) {
  (void)state;
  events_reset();
  kdao_factory_free(F);
  F = NULL;
  return 0;
}

static int clean(void **state) {
  (void)state;
  kdao_error *err = NULL;
  if (kdao_factory_truncate_tables(F, &err) != KDAO_OK) {
    fprintf(stderr, "truncate: %s\n", kdao_error_string(err));
    kdao_error_free(err);
    return -1;
  }
  events_reset();
  return 0;
}

static const char *SEED = "{\"name\": \"mockbin\", \"hosts\": [\"mockbin.com\"], "
                          "\"upstream_url\": \"http://mockbin.com\"}";

/* ---- tests: insert and the seed example ---- */

static void insert_seed_api_fills_defaults_and_generated_values(void **state) {
  (void)state;
  json_t *row = must_insert("apis", SEED);
  assert_true(kdao_is_uuid(str(row, "id")));
  json_t *ca = json_object_get(row, "created_at");
  assert_true(json_is_integer(ca));
  assert_true(json_integer_value(ca) > 1000000000000LL); /* milliseconds: 13 digits */
  assert_string_equal(str(row, "name"), "mockbin");
  assert_string_equal(str(row, "upstream_url"), "http://mockbin.com");
  assert_true(jeq(json_object_get(row, "hosts"), "[\"mockbin.com\"]"));
  assert_true(json_is_true(json_object_get(row, "strip_uri")));
  assert_true(json_is_false(json_object_get(row, "preserve_host")));
  assert_true(json_is_false(json_object_get(row, "https_only")));
  assert_true(json_is_true(json_object_get(row, "http_if_terminated")));
  assert_int_equal(json_integer_value(json_object_get(row, "retries")), 5);
  assert_int_equal(json_integer_value(json_object_get(row, "upstream_read_timeout")), 60000);
  assert_null(json_object_get(row, "uris")); /* NULL columns are absent */
  /* find returns the same row */
  json_t *again = find_by("apis", "id", str(row, "id"));
  assert_non_null(again);
  assert_true(json_equal(row, again));
  /* one ENTITY_CREATED event carrying the stored row */
  assert_int_equal(NEVENTS, 1);
  assert_string_equal(EVENTS[0].collection, "apis");
  assert_int_equal(EVENTS[0].type, KDAO_EVENT_CREATED);
  assert_true(json_equal(EVENTS[0].entity, row));
  json_decref(row);
  json_decref(again);
}

static void insert_coerces_strings_like_forms(void **state) {
  (void)state;
  json_t *row = must_insert("apis", "{\"name\": \" forms \", \"hosts\": \"a.com, b.com\", "
                                    "\"upstream_url\": \"http://x.com\", \"retries\": \"3\", "
                                    "\"strip_uri\": \"FALSE\"}");
  assert_string_equal(str(row, "name"), "forms");
  assert_true(jeq(json_object_get(row, "hosts"), "[\"a.com\", \"b.com\"]"));
  assert_int_equal(json_integer_value(json_object_get(row, "retries")), 3);
  assert_true(json_is_false(json_object_get(row, "strip_uri")));
  json_decref(row);
}

static void insert_does_not_touch_the_callers_json(void **state) {
  (void)state;
  json_t *in = J(SEED), *copy = json_deep_copy(in), *row = NULL;
  assert_int_equal(kdao_dao_insert(dao("apis"), in, 0, 0, &row, NULL), KDAO_OK);
  assert_true(json_equal(in, copy));
  json_decref(in);
  json_decref(copy);
  json_decref(row);
}

static void duplicate_name_is_a_unique_error_with_kongs_message(void **state) {
  (void)state;
  json_decref(must_insert("apis", SEED));
  events_reset();
  kdao_error *err = insert_fails("apis", SEED, KDAO_ERR_UNIQUE);
  assert_field_msg(err, "name", "already exists with value 'mockbin'");
  assert_string_equal(kdao_error_message(err), "name=already exists with value 'mockbin'");
  char expect[128];
  snprintf(expect, sizeof expect, "[%s error] name=already exists with value 'mockbin'", BACKEND);
  assert_string_equal(kdao_error_string(err), expect);
  assert_string_equal(kdao_error_db_name(err), BACKEND);
  kdao_error_free(err);
  assert_int_equal(count_of("apis", NULL), 1);
  assert_int_equal(NEVENTS, 0);
}

static void schema_errors_carry_kongs_messages_and_write_nothing(void **state) {
  (void)state;
  kdao_error *err;
  err = insert_fails("apis", "{\"name\": \"a\", \"hosts\": [\"a.com\"], \"upstream_url\": \"x\"}",
                     KDAO_ERR_SCHEMA);
  assert_field_msg(err, "upstream_url", "upstream_url is not a url");
  kdao_error_free(err);
  err = insert_fails("apis",
                     "{\"name\": \"a\", \"hosts\": [\"a.com\"], "
                     "\"upstream_url\": \"ftp://a.com\"}",
                     KDAO_ERR_SCHEMA);
  assert_field_msg(err, "upstream_url", "Supported protocols are HTTP and HTTPS");
  kdao_error_free(err);
  err = insert_fails("apis",
                     "{\"name\": \"a\", \"hosts\": [\"a.com\"], "
                     "\"upstream_url\": \"http://a.com\", \"foo\": 1}",
                     KDAO_ERR_SCHEMA);
  assert_field_msg(err, "foo", "foo is an unknown field");
  kdao_error_free(err);
  err = insert_fails("apis",
                     "{\"name\": \"a\", \"hosts\": [\"a.com\"], "
                     "\"upstream_url\": \"http://a.com\", \"retries\": \"many\"}",
                     KDAO_ERR_SCHEMA);
  assert_field_msg(err, "retries", "retries is not a number");
  kdao_error_free(err);
  err = insert_fails("apis", "{\"name\": \"a\", \"upstream_url\": \"http://a.com\"}",
                     KDAO_ERR_SCHEMA);
  assert_string_equal(kdao_error_message(err),
                      "at least one of 'hosts', 'uris' or 'methods' must be specified");
  kdao_error_free(err);
  err = insert_fails("apis", "{\"hosts\": [\"a.com\"], \"upstream_url\": \"http://a.com\"}",
                     KDAO_ERR_SCHEMA);
  assert_field_msg(err, "name", "name is required");
  kdao_error_free(err);
  err = insert_fails("consumers", "{}", KDAO_ERR_SCHEMA);
  assert_field_msg(err, "username", "At least a 'custom_id' or a 'username' must be specified");
  assert_field_msg(err, "custom_id", "At least a 'custom_id' or a 'username' must be specified");
  kdao_error_free(err);
  assert_int_equal(count_of("apis", NULL), 0);
  assert_int_equal(count_of("consumers", NULL), 0);
  assert_int_equal(NEVENTS, 0);
}

static void misuse_is_not_a_data_error(void **state) {
  (void)state;
  kdao_error *err = NULL;
  json_t *row = NULL;
  assert_int_equal(kdao_dao_insert(dao("apis"), NULL, 0, 0, &row, &err), KDAO_ERR_MISUSE);
  assert_string_equal(kdao_error_message(err),
                      "bad argument #1 to 'insert' (table expected, got nil)");
  kdao_error_free(err);
  json_t *empty = J("{}");
  assert_int_equal(kdao_dao_find(dao("apis"), empty, &row, &err), KDAO_ERR_MISUSE);
  assert_string_equal(kdao_error_message(err), "Missing PRIMARY KEY field");
  kdao_error_free(err);
  assert_int_equal(kdao_dao_find_all(dao("apis"), empty, &row, &err), KDAO_ERR_MISUSE);
  assert_string_equal(kdao_error_message(err),
                      "bad argument #1 to 'find_all' (expected table to not be empty)");
  kdao_error_free(err);
  json_decref(empty);
}

static void bad_uuid_and_unknown_filters_are_schema_errors(void **state) {
  (void)state;
  kdao_error *err = NULL;
  json_t *rows = NULL, *f = J("{\"id\": \"123\"}");
  assert_int_equal(kdao_dao_find_all(dao("apis"), f, &rows, &err), KDAO_ERR_SCHEMA);
  assert_field_msg(err, "id", "123 is not a valid uuid");
  kdao_error_free(err);
  json_decref(f);
  f = J("{\"foo\": \"bar\"}");
  assert_int_equal(kdao_dao_count(dao("apis"), f, NULL, &err), KDAO_ERR_SCHEMA);
  assert_field_msg(err, "foo", "unknown field");
  kdao_error_free(err);
  json_decref(f);
  f = J("{\"id\": \"not-a-uuid\"}");
  assert_int_equal(kdao_dao_find(dao("apis"), f, &rows, &err), KDAO_ERR_SCHEMA);
  assert_string_equal(kdao_error_message(err), "not-a-uuid is not a valid uuid");
  kdao_error_free(err);
  json_decref(f);
  assert_null(rows);
}

/*
 * Values no backend can store the same way: refused by the validator with the same answer
 * everywhere, and nothing written (PostgreSQL answered 500, SQLite stored them).
 */
static void values_every_backend_refuses_alike(void **state) {
  (void)state;
  json_t *api = must_insert("apis", "{\"name\": \"v\", \"hosts\": [\"v.com\"], "
                                    "\"upstream_url\": \"http://v.com\"}");
  char big[3001];
  memset(big, 'k', sizeof big - 1);
  big[sizeof big - 1] = '\0';
  char *long_name = NULL;
  struct {
    const char *entity, *json, *field, *msg;
  } cases[] = {
      {"plugins", "{\"id\": \"x\", \"name\": \"key-auth\", \"api_id\": \"%s\"}", "id",
       "id is not a valid uuid"},
      {"plugins", "{\"id\": 123, \"name\": \"key-auth\", \"api_id\": \"%s\"}", "id",
       "id is not a valid uuid"},
      {"plugins", "{\"id\": {}, \"name\": \"key-auth\", \"api_id\": \"%s\"}", "id",
       "id is not a valid uuid"},
      {"plugins", "{\"id\": \"\", \"name\": \"key-auth\", \"api_id\": \"%s\"}", "id",
       "id is not a valid uuid"},
      {"plugins", "{\"name\": \"key-auth\", \"api_id\": \"%s\", \"created_at\": 1.5e300}",
       "created_at", "created_at is not a timestamp"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    char text[512];
    snprintf(text, sizeof text, cases[i].json, str(api, "id"));
    kdao_error *err = insert_fails(cases[i].entity, text, KDAO_ERR_SCHEMA);
    assert_field_msg(err, cases[i].field, cases[i].msg);
    kdao_error_free(err);
  }
  /* JSON text cannot carry a NUL to kdao (jansson refuses it by default); an API user can. */
  json_t *nul = json_pack("{ss#}", "username", "a\0b", (int)3), *row = NULL;
  kdao_error *err = NULL;
  assert_int_equal(kdao_dao_insert(dao("consumers"), nul, 0, 0, &row, &err), KDAO_ERR_SCHEMA);
  assert_field_msg(err, "username", "username must not contain a NUL byte");
  kdao_error_free(err);
  assert_int_equal(kdao_dao_count(dao("consumers"), nul, NULL, &err), KDAO_ERR_SCHEMA);
  assert_field_msg(err, "username", "username must not contain a NUL byte");
  kdao_error_free(err);
  json_decref(nul);
  long_name = malloc(sizeof big + 32);
  snprintf(long_name, sizeof big + 32, "{\"username\": \"%s\"}", big);
  err = insert_fails("consumers", long_name, KDAO_ERR_SCHEMA);
  assert_field_msg(err, "username", "username must be at most 2048 bytes (an indexed value)");
  kdao_error_free(err);
  assert_int_equal(count_of("plugins", NULL), 0);
  assert_int_equal(count_of("consumers", NULL), 0);

  /* Filters get the answer an insert of the value would: a schema error, not 0 rows. */
  const char *filters[][3] = {
      {"apis", "{\"retries\": \"1.5\"}", "retries"},
      {"apis", "{\"retries\": \"99999999999999999999\"}", "retries"},
      {"apis", "{\"retries\": 1e300}", "retries"},
      {"apis", "{\"created_at\": 1.5e300}", "created_at"},
      {"apis", "{\"strip_uri\": 5}", "strip_uri"},
      {"consumers", "{\"username\": 5}", "username"},
      {"consumers", "{\"username\": {}}", "username"},
  };
  for (size_t i = 0; i < sizeof filters / sizeof *filters; i++) {
    json_t *f = J(filters[i][1]);
    long long n = -1;
    if (kdao_dao_count(dao(filters[i][0]), f, &n, &err) != KDAO_ERR_SCHEMA)
      fail_msg("count %s %s: not a schema error", filters[i][0], filters[i][1]);
    if (!json_object_get(kdao_error_fields(err), filters[i][2]))
      fail_msg("count %s %s: %s", filters[i][0], filters[i][1], kdao_error_string(err));
    kdao_error_free(err);
    json_decref(f);
  }
  snprintf(long_name, sizeof big + 32, "{\"username\": \"%s\"}", big);
  json_t *f = J(long_name), *rows = NULL;
  assert_int_equal(kdao_dao_find_all(dao("consumers"), f, &rows, &err), KDAO_ERR_SCHEMA);
  kdao_error_free(err);
  json_decref(f);
  free(long_name);
  json_decref(api);
}

/* ---- find_all, count, filters ---- */

static void find_all_and_count_filter_with_typed_values(void **state) {
  (void)state;
  json_decref(must_insert("apis", "{\"name\": \"a\", \"hosts\": [\"a.com\"], "
                                  "\"upstream_url\": \"http://a.com\", \"strip_uri\": false}"));
  json_decref(must_insert("apis", "{\"name\": \"b\", \"hosts\": [\"b.com\"], "
                                  "\"upstream_url\": \"http://b.com\", \"retries\": 7}"));
  assert_int_equal(count_of("apis", NULL), 2);
  assert_int_equal(count_of("apis", "{\"strip_uri\": \"true\"}"), 1);
  assert_int_equal(count_of("apis", "{\"retries\": \"7\"}"), 1);
  assert_int_equal(count_of("apis", "{\"retries\": 5}"), 1);
  assert_int_equal(count_of("apis", "{\"name\": \"zzz\"}"), 0);
  json_t *f = J("{\"name\": \"b\"}"), *rows = NULL;
  assert_int_equal(kdao_dao_find_all(dao("apis"), f, &rows, NULL), KDAO_OK);
  assert_int_equal(json_array_size(rows), 1);
  assert_string_equal(str(json_array_get(rows, 0), "upstream_url"), "http://b.com");
  json_decref(rows);
  json_decref(f);
  assert_int_equal(kdao_dao_find_all(dao("apis"), NULL, &rows, NULL), KDAO_OK);
  assert_int_equal(json_array_size(rows), 2);
  json_decref(rows);
}

static void find_of_a_missing_row_is_not_an_error(void **state) {
  (void)state;
  json_t *row = find_by("apis", "id", "00000000-0000-4000-8000-000000000000");
  assert_null(row);
}

/* ---- update ---- */

static void partial_update_changes_only_given_fields(void **state) {
  (void)state;
  json_t *api = must_insert("apis", SEED);
  events_reset();
  json_t *vals = json_pack("{sssi}", "id", str(api, "id"), "retries", 9), *row = NULL;
  kdao_error *err = NULL;
  assert_int_equal(kdao_dao_update(dao("apis"), vals, NULL, 0, 0, &row, &err), KDAO_OK);
  assert_non_null(row);
  assert_int_equal(json_integer_value(json_object_get(row, "retries")), 9);
  assert_string_equal(str(row, "name"), "mockbin");
  assert_true(json_equal(json_object_get(row, "hosts"), json_object_get(api, "hosts")));
  assert_true(json_equal(json_object_get(row, "created_at"), json_object_get(api, "created_at")));
  /* ENTITY_UPDATED with the new row and, as Kong sent, the old one */
  assert_int_equal(NEVENTS, 1);
  assert_int_equal(EVENTS[0].type, KDAO_EVENT_UPDATED);
  assert_true(json_equal(EVENTS[0].entity, row));
  assert_true(json_equal(EVENTS[0].old, api));
  json_decref(vals);
  json_decref(row);
  /* filter_keys fill absent values (Kong's update(tbl, filter_keys)) */
  vals = J("{\"upstream_url\": \"https://new.example\"}");
  json_t *keys = json_pack("{ss}", "id", str(api, "id"));
  assert_int_equal(kdao_dao_update(dao("apis"), vals, keys, 0, 0, &row, &err), KDAO_OK);
  assert_string_equal(str(row, "upstream_url"), "https://new.example");
  assert_int_equal(json_integer_value(json_object_get(row, "retries")), 9);
  json_decref(vals);
  json_decref(keys);
  json_decref(row);
  json_decref(api);
}

static void full_update_replaces_the_entity(void **state) {
  (void)state;
  json_t *api = must_insert("apis", "{\"name\": \"full\", \"hosts\": [\"a.com\"], "
                                    "\"uris\": [\"/x\"], \"upstream_url\": \"http://a.com\", "
                                    "\"retries\": 2}");
  json_t *vals = json_pack("{sssOsssss[s]}", "id", str(api, "id"), "created_at",
                           json_object_get(api, "created_at"), "name", "full2", "upstream_url",
                           "http://b.com", "hosts", "b.com");
  json_t *row = NULL;
  kdao_error *err = NULL;
  if (kdao_dao_update(dao("apis"), vals, NULL, 0, KDAO_DAO_FULL, &row, &err) != KDAO_OK)
    fail_msg("full update: %s", kdao_error_string(err));
  assert_string_equal(str(row, "name"), "full2");
  assert_null(json_object_get(row, "uris"));                                /* unset */
  assert_int_equal(json_integer_value(json_object_get(row, "retries")), 5); /* default */
  json_decref(vals);
  json_decref(row);
  json_decref(api);
}

static void partial_update_with_null_clears_a_column(void **state) {
  (void)state;
  json_t *api = must_insert("apis", "{\"name\": \"nulls\", \"hosts\": [\"a.com\"], "
                                    "\"uris\": [\"/x\"], \"upstream_url\": \"http://a.com\"}");
  json_t *vals = json_pack("{sssn}", "id", str(api, "id"), "uris"), *row = NULL;
  kdao_error *err = NULL;
  if (kdao_dao_update(dao("apis"), vals, NULL, 0, 0, &row, &err) != KDAO_OK)
    fail_msg("null update: %s", kdao_error_string(err));
  assert_null(json_object_get(row, "uris"));
  assert_true(jeq(json_object_get(row, "hosts"), "[\"a.com\"]"));
  json_decref(vals);
  json_decref(row);
  /* a required field cannot be cleared */
  vals = json_pack("{sssn}", "id", str(api, "id"), "name");
  assert_int_equal(kdao_dao_update(dao("apis"), vals, NULL, 0, 0, &row, &err), KDAO_ERR_SCHEMA);
  assert_field_msg(err, "name", "name is required");
  kdao_error_free(err);
  json_t *still = find_by("apis", "id", str(api, "id"));
  assert_string_equal(str(still, "name"), "nulls");
  json_decref(still);
  json_decref(vals);
  json_decref(api);
}

static void update_of_a_missing_row_returns_no_row(void **state) {
  (void)state;
  json_t *vals = J("{\"id\": \"00000000-0000-4000-8000-000000000000\", \"retries\": 1}");
  json_t *row = J("{}");
  kdao_error *err = NULL;
  json_decref(row);
  assert_int_equal(kdao_dao_update(dao("apis"), vals, NULL, 0, 0, &row, &err), KDAO_OK);
  assert_null(row);
  assert_int_equal(NEVENTS, 0);
  json_decref(vals);
}

static void update_to_a_taken_unique_value_fails(void **state) {
  (void)state;
  json_decref(must_insert("apis", SEED));
  json_t *b = must_insert("apis", "{\"name\": \"other\", \"hosts\": [\"o.com\"], "
                                  "\"upstream_url\": \"http://o.com\"}");
  json_t *vals = json_pack("{ssss}", "id", str(b, "id"), "name", "mockbin"), *row = NULL;
  kdao_error *err = NULL;
  assert_int_equal(kdao_dao_update(dao("apis"), vals, NULL, 0, 0, &row, &err), KDAO_ERR_UNIQUE);
  assert_field_msg(err, "name", "already exists with value 'mockbin'");
  kdao_error_free(err);
  json_t *still = find_by("apis", "id", str(b, "id"));
  assert_string_equal(str(still, "name"), "other");
  json_decref(still);
  json_decref(vals);
  json_decref(b);
}

/* ---- plugins ---- */

static void plugin_with_missing_api_is_a_foreign_error(void **state) {
  (void)state;
  kdao_error *err = insert_fails(
      "plugins", "{\"name\": \"key-auth\", \"api_id\": \"00000000-0000-4000-8000-000000000001\"}",
      KDAO_ERR_FOREIGN);
  assert_field_msg(err, "api_id",
                   "does not exist with value '00000000-0000-4000-8000-000000000001'");
  kdao_error_free(err);
  assert_int_equal(count_of("plugins", NULL), 0);
}

static void plugin_config_is_validated_defaulted_and_merged(void **state) {
  (void)state;
  json_t *api = must_insert("apis", SEED);
  char buf[512];
  snprintf(buf, sizeof buf,
           "{\"name\": \"key-auth\", \"api_id\": \"%s\", "
           "\"config\": {\"key_names\": \"apikey, token\"}}",
           str(api, "id"));
  json_t *p = must_insert("plugins", buf);
  json_t *cfg = json_object_get(p, "config");
  assert_true(jeq(json_object_get(cfg, "key_names"), "[\"apikey\", \"token\"]"));
  assert_true(json_is_false(json_object_get(cfg, "hide_credentials")));
  assert_true(json_is_true(json_object_get(p, "enabled")));
  /* a second key-auth on the same api is refused with Kong's unique message */
  kdao_error *err = insert_fails("plugins", buf, KDAO_ERR_UNIQUE);
  assert_string_equal(kdao_error_message(err), "name=already exists with value 'key-auth'");
  kdao_error_free(err);
  /* unknown plugin */
  err = insert_fails("plugins", "{\"name\": \"nope\"}", KDAO_ERR_SCHEMA);
  assert_field_msg(err, "config", "Plugin \"nope\" not found");
  kdao_error_free(err);
  /* bad config value */
  snprintf(buf, sizeof buf, "{\"name\": \"key-auth\", \"config\": {\"hide_credentials\": \"x\"}}");
  err = insert_fails("plugins", buf, KDAO_ERR_SCHEMA);
  assert_field_msg(err, "config.hide_credentials", "hide_credentials is not a boolean");
  kdao_error_free(err);
  /* partial update of config keeps the stored keys */
  json_t *vals = json_pack("{sssss{sb}}", "id", str(p, "id"), "name", "key-auth", "config",
                           "hide_credentials", 1);
  json_t *row = NULL;
  if (kdao_dao_update(dao("plugins"), vals, NULL, 0, 0, &row, &err) != KDAO_OK)
    fail_msg("plugin update: %s", kdao_error_string(err));
  cfg = json_object_get(row, "config");
  assert_true(json_is_true(json_object_get(cfg, "hide_credentials")));
  assert_true(jeq(json_object_get(cfg, "key_names"), "[\"apikey\", \"token\"]"));
  json_decref(vals);
  json_decref(row);
  /* addressed by id alone, as Kong's update allowed */
  vals = json_pack("{sssb}", "id", str(p, "id"), "enabled", 0);
  if (kdao_dao_update(dao("plugins"), vals, NULL, 0, 0, &row, &err) != KDAO_OK)
    fail_msg("plugin update by id: %s", kdao_error_string(err));
  assert_true(json_is_false(json_object_get(row, "enabled")));
  json_decref(vals);
  json_decref(row);
  json_decref(p);
  json_decref(api);
}

static void plugin_uniqueness_is_per_api_and_consumer(void **state) {
  (void)state;
  json_t *api = must_insert("apis", SEED);
  json_t *c = must_insert("consumers", "{\"username\": \"carol\"}");
  char buf[512];
  /* a global rate of the same plugin, one per api, one per consumer: all distinct */
  json_decref(must_insert("plugins", "{\"name\": \"acl\", \"config\": {\"whitelist\": \"a\"}}"));
  snprintf(buf, sizeof buf,
           "{\"name\": \"acl\", \"api_id\": \"%s\", "
           "\"config\": {\"whitelist\": \"a\"}}",
           str(api, "id"));
  json_decref(must_insert("plugins", buf));
  kdao_error *err = insert_fails("plugins", buf, KDAO_ERR_UNIQUE);
  kdao_error_free(err);
  /* key-auth cannot be configured for a consumer (no_consumer) */
  snprintf(buf, sizeof buf, "{\"name\": \"key-auth\", \"consumer_id\": \"%s\"}", str(c, "id"));
  err = insert_fails("plugins", buf, KDAO_ERR_SCHEMA);
  assert_string_equal(kdao_error_message(err), "No consumer can be configured for that plugin");
  kdao_error_free(err);
  /* a plugin on an api_id that is not a uuid */
  err = insert_fails("plugins", "{\"name\": \"key-auth\", \"api_id\": \"nope\"}", KDAO_ERR_SCHEMA);
  kdao_error_free(err);
  assert_int_equal(count_of("plugins", "{\"name\": \"acl\"}"), 2);
  json_decref(c);
  json_decref(api);
}

static void api_uris_lose_their_trailing_slash(void **state) {
  (void)state;
  json_t *api = must_insert("apis", "{\"name\": \"slash\", \"uris\": [\"/a/\", \"/\"], "
                                    "\"upstream_url\": \"http://a.com\"}");
  assert_true(jeq(json_object_get(api, "uris"), "[\"/a\", \"/\"]"));
  kdao_error *err = insert_fails("apis",
                                 "{\"name\": \"bad\", \"uris\": [\"a\"], "
                                 "\"upstream_url\": \"http://a.com\"}",
                                 KDAO_ERR_SCHEMA);
  assert_field_msg(err, "uris", "uri with value 'a' is invalid: must be prefixed with slash");
  kdao_error_free(err);
  json_decref(api);
}

static void basic_auth_digest_is_not_hashed_twice(void **state) {
  (void)state;
  json_t *c = must_insert("consumers", "{\"username\": \"dave\"}");
  char buf[256];
  snprintf(buf, sizeof buf, "{\"consumer_id\": \"%s\", \"username\": \"dv\", \"password\": \"pw\"}",
           str(c, "id"));
  json_t *cred = must_insert("basicauth_credentials", buf);
  json_t *vals = json_pack("{sssO}", "id", str(cred, "id"), "password",
                           json_object_get(cred, "password")),
         *row = NULL;
  kdao_error *err = NULL;
  if (kdao_dao_update(dao("basicauth_credentials"), vals, NULL, 0, 0, &row, &err) != KDAO_OK)
    fail_msg("re-save: %s", kdao_error_string(err));
  assert_string_equal(str(row, "password"), str(cred, "password"));
  json_decref(vals);
  json_decref(row);
  json_decref(cred);
  json_decref(c);
}

static void deleting_an_api_deletes_its_plugins_with_events(void **state) {
  (void)state;
  json_t *api = must_insert("apis", SEED);
  char buf[256];
  snprintf(buf, sizeof buf, "{\"name\": \"key-auth\", \"api_id\": \"%s\"}", str(api, "id"));
  json_t *p = must_insert("plugins", buf);
  events_reset();
  json_t *pk = json_pack("{ss}", "id", str(api, "id")), *row = NULL;
  kdao_error *err = NULL;
  assert_int_equal(kdao_dao_delete(dao("apis"), pk, 0, &row, &err), KDAO_OK);
  assert_true(json_equal(row, api));
  assert_int_equal(count_of("plugins", NULL), 0);
  assert_null(find_by("apis", "id", str(api, "id")));
  assert_int_equal(NEVENTS, 2);
  assert_string_equal(EVENTS[0].collection, "apis");
  assert_int_equal(EVENTS[0].type, KDAO_EVENT_DELETED);
  assert_string_equal(EVENTS[1].collection, "plugins");
  assert_string_equal(str(EVENTS[1].entity, "id"), str(p, "id"));
  /* deleting again finds nothing */
  json_decref(row);
  assert_int_equal(kdao_dao_delete(dao("apis"), pk, 0, &row, &err), KDAO_OK);
  assert_null(row);
  json_decref(pk);
  json_decref(p);
  json_decref(api);
}

static void quiet_writes_publish_nothing(void **state) {
  (void)state;
  json_t *in = J(SEED), *row = NULL;
  assert_int_equal(kdao_dao_insert(dao("apis"), in, 0, KDAO_DAO_QUIET, &row, NULL), KDAO_OK);
  json_t *pk = json_pack("{ss}", "id", str(row, "id")), *gone = NULL;
  assert_int_equal(kdao_dao_delete(dao("apis"), pk, KDAO_DAO_QUIET, &gone, NULL), KDAO_OK);
  assert_non_null(gone);
  assert_int_equal(NEVENTS, 0);
  json_decref(in);
  json_decref(row);
  json_decref(pk);
  json_decref(gone);
}

/* ---- credentials (built-in plugins) ---- */

static void key_auth_credential_lifecycle(void **state) {
  (void)state;
  json_t *c = must_insert("consumers", "{\"username\": \"bob\"}");
  char buf[256];
  snprintf(buf, sizeof buf, "{\"consumer_id\": \"%s\", \"key\": \"secret-key\"}", str(c, "id"));
  json_t *cred = must_insert("keyauth_credentials", buf);
  assert_string_equal(str(cred, "key"), "secret-key");
  json_t *f = J("{\"key\": \"secret-key\"}"), *rows = NULL;
  assert_int_equal(kdao_dao_find_all(dao("keyauth_credentials"), f, &rows, NULL), KDAO_OK);
  assert_int_equal(json_array_size(rows), 1);
  assert_string_equal(str(json_array_get(rows, 0), "consumer_id"), str(c, "id"));
  json_decref(rows);
  /* a generated key when none is given */
  snprintf(buf, sizeof buf, "{\"consumer_id\": \"%s\"}", str(c, "id"));
  json_t *gen = must_insert("keyauth_credentials", buf);
  assert_int_equal(strlen(str(gen, "key")), 32);
  /* duplicate key */
  snprintf(buf, sizeof buf, "{\"consumer_id\": \"%s\", \"key\": \"secret-key\"}", str(c, "id"));
  kdao_error *err = insert_fails("keyauth_credentials", buf, KDAO_ERR_UNIQUE);
  assert_field_msg(err, "key", "already exists with value 'secret-key'");
  kdao_error_free(err);
  /* unknown consumer */
  err =
      insert_fails("keyauth_credentials",
                   "{\"consumer_id\": \"00000000-0000-4000-8000-000000000002\"}", KDAO_ERR_FOREIGN);
  assert_field_msg(err, "consumer_id",
                   "does not exist with value '00000000-0000-4000-8000-000000000002'");
  kdao_error_free(err);
  /* the consumer's deletion removes its credentials */
  events_reset();
  json_t *pk = json_pack("{ss}", "id", str(c, "id")), *row = NULL;
  assert_int_equal(kdao_dao_delete(dao("consumers"), pk, 0, &row, NULL), KDAO_OK);
  assert_int_equal(kdao_dao_find_all(dao("keyauth_credentials"), f, &rows, NULL), KDAO_OK);
  assert_int_equal(json_array_size(rows), 0);
  assert_int_equal(count_of("keyauth_credentials", NULL), 0);
  assert_int_equal(NEVENTS, 3); /* the consumer and its two credentials */
  json_decref(rows);
  json_decref(f);
  json_decref(pk);
  json_decref(row);
  json_decref(gen);
  json_decref(cred);
  json_decref(c);
}

static void basic_auth_password_is_hashed_and_acl_groups_unique(void **state) {
  (void)state;
  json_t *c = must_insert("consumers", "{\"username\": \"alice\"}");
  char buf[256];
  snprintf(buf, sizeof buf, "{\"consumer_id\": \"%s\", \"username\": \"al\", \"password\": \"pw\"}",
           str(c, "id"));
  json_t *cred = must_insert("basicauth_credentials", buf);
  assert_int_equal(strlen(str(cred, "password")), 40); /* hex SHA-1 */
  assert_string_not_equal(str(cred, "password"), "pw");
  snprintf(buf, sizeof buf, "{\"consumer_id\": \"%s\", \"group\": \"admins\"}", str(c, "id"));
  json_decref(must_insert("acls", buf));
  kdao_error *err = insert_fails("acls", buf, KDAO_ERR_SCHEMA);
  assert_field_msg(err, "group", "ACL group already exist for this consumer");
  kdao_error_free(err);
  json_decref(cred);
  json_decref(c);
}

/* ---- upstreams and targets ---- */

static void upstream_orderlist_and_target_normalisation(void **state) {
  (void)state;
  json_t *u = must_insert("upstreams", "{\"name\": \"backend.svc\", \"slots\": 10}");
  json_t *ol = json_object_get(u, "orderlist");
  assert_int_equal(json_array_size(ol), 10);
  char buf[256];
  snprintf(buf, sizeof buf, "{\"upstream_id\": \"%s\", \"target\": \"1.2.3.4\"}", str(u, "id"));
  json_t *t = must_insert("targets", buf);
  assert_string_equal(str(t, "target"), "1.2.3.4:8000");
  assert_int_equal(json_integer_value(json_object_get(t, "weight")), 100);
  kdao_error *err = insert_fails("upstreams", "{\"name\": \"1.2.3.4\"}", KDAO_ERR_SCHEMA);
  assert_string_equal(kdao_error_message(err), "Invalid name; no ip addresses allowed");
  kdao_error_free(err);
  json_decref(t);
  json_decref(u);
}

/* ---- TTL ---- */

static void ttl_rows_are_never_returned_after_expiry(void **state) {
  (void)state;
  json_t *in = J(SEED), *row = NULL, *keep = NULL;
  kdao_error *err = NULL;
  if (kdao_dao_insert(dao("apis"), in, 1, 0, &row, &err) != KDAO_OK)
    fail_msg("ttl insert: %s", kdao_error_string(err));
  /*
   * Visibility before expiry is checked on a row with a long TTL: Cassandra counts TTLs in
   * whole seconds from the second of the write, so a ttl=1 row may legitimately be gone a few
   * milliseconds after an insert made late in a second.
   */
  json_t *other =
      J("{\"name\": \"lasting\", \"hosts\": [\"l.com\"], \"upstream_url\": \"http://l.com\"}");
  if (kdao_dao_insert(dao("apis"), other, 60, 0, &keep, &err) != KDAO_OK)
    fail_msg("ttl insert: %s", kdao_error_string(err));
  json_t *now = find_by("apis", "id", str(keep, "id"));
  assert_non_null(now);
  json_decref(now);
  usleep(1300 * 1000);
  assert_null(find_by("apis", "id", str(row, "id")));
  assert_int_equal(count_of("apis", NULL), 1);
  assert_int_equal(count_of("apis", "{\"name\": \"mockbin\"}"), 0);
  json_t *rows = NULL;
  assert_int_equal(kdao_dao_find_all(dao("apis"), NULL, &rows, NULL), KDAO_OK);
  assert_int_equal(json_array_size(rows), 1);
  assert_string_equal(str(json_array_get(rows, 0), "name"), "lasting");
  json_decref(rows);
  char *next = NULL;
  assert_int_equal(kdao_dao_find_page(dao("apis"), NULL, NULL, 10, &rows, &next, NULL), KDAO_OK);
  assert_int_equal(json_array_size(rows), 1);
  assert_string_equal(str(json_array_get(rows, 0), "name"), "lasting");
  assert_null(next);
  json_decref(rows);
  /* an expired row cannot be updated either */
  json_t *vals = json_pack("{sssi}", "id", str(row, "id"), "retries", 1), *upd = NULL;
  assert_int_equal(kdao_dao_update(dao("apis"), vals, NULL, 0, 0, &upd, NULL), KDAO_OK);
  assert_null(upd);
  /* purge removes it, after which the name is free again */
  assert_int_equal(kdao_factory_purge_expired(F, NULL, &err), KDAO_OK);
  json_decref(must_insert("apis", SEED));
  json_decref(vals);
  json_decref(other);
  json_decref(keep);
  json_decref(in);
  json_decref(row);
}

/* ---- pagination ---- */

static void pages_visit_every_row_exactly_once(void **state) {
  (void)state;
  enum { N = 1000, SIZE = 100 };
  json_t *batch = json_array();
  for (int i = 0; i < N; i++) {
    char name[32], host[48];
    snprintf(name, sizeof name, "api-%04d", i);
    snprintf(host, sizeof host, "h%d.example.com", i);
    json_array_append_new(batch, json_pack("{sss[s]ss}", "name", name, "hosts", host,
                                           "upstream_url", "http://up.example.com"));
  }
  kdao_error *err = NULL;
  if (kdao_dao_insert_many(dao("apis"), batch, KDAO_DAO_QUIET, NULL, &err) != KDAO_OK)
    fail_msg("insert_many: %s", kdao_error_string(err));
  json_decref(batch);
  assert_int_equal(count_of("apis", NULL), N);
  json_t *seen = json_object();
  char *offset = NULL;
  int pages = 0;
  do {
    json_t *rows = NULL;
    char *next = NULL;
    if (kdao_dao_find_page(dao("apis"), NULL, offset, SIZE, &rows, &next, &err) != KDAO_OK)
      fail_msg("page: %s", kdao_error_string(err));
    assert_true(json_array_size(rows) <= SIZE);
    size_t i;
    json_t *r;
    json_array_foreach(rows, i, r) {
      assert_null(json_object_get(seen, str(r, "id")));
      json_object_set_new(seen, str(r, "id"), json_true());
    }
    /* rows inserted while paging do not disturb what was already seen */
    if (pages == 3) {
      json_decref(must_insert("apis", "{\"name\": \"late\", \"hosts\": [\"late.com\"], "
                                      "\"upstream_url\": \"http://late.com\"}"));
    }
    json_decref(rows);
    kdao_free(offset);
    offset = next;
    pages++;
  } while (offset != NULL && pages < 100);
  assert_true(json_object_size(seen) == N || json_object_size(seen) == N + 1);
  json_decref(seen);
  /* a malformed token is a clear error, not a crash */
  json_t *rows = NULL;
  assert_int_equal(kdao_dao_find_page(dao("apis"), NULL, "%%garbage%%", 10, &rows, NULL, &err),
                   KDAO_ERR_SCHEMA);
  kdao_error_free(err);
  /* a filtered page */
  json_t *f = J("{\"name\": \"api-0007\"}");
  char *next = NULL;
  assert_int_equal(kdao_dao_find_page(dao("apis"), f, NULL, 10, &rows, &next, NULL), KDAO_OK);
  assert_int_equal(json_array_size(rows), 1);
  assert_null(next);
  json_decref(rows);
  json_decref(f);
}

/* Inserts `n` apis named <prefix>-NNNN in one batch. */
static void insert_apis(const char *prefix, int n) {
  json_t *batch = json_array();
  for (int i = 0; i < n; i++) {
    char name[64];
    snprintf(name, sizeof name, "%s-%04d", prefix, i);
    json_array_append_new(batch, json_pack("{sss[s]ss}", "name", name, "hosts", "p.example.com",
                                           "upstream_url", "http://paged.example.com"));
  }
  kdao_error *err = NULL;
  if (kdao_dao_insert_many(dao("apis"), batch, KDAO_DAO_QUIET, NULL, &err) != KDAO_OK)
    fail_msg("insert_many: %s", kdao_error_string(err));
  json_decref(batch);
}

/* One page that must succeed; returns its rows, *next its token. */
static json_t *page(kdao_dao *d, const json_t *filter, const char *offset, size_t size,
                    char **next) {
  json_t *rows = NULL;
  kdao_error *err = NULL;
  if (kdao_dao_find_page(d, filter, offset, size, &rows, next, &err) != KDAO_OK)
    fail_msg("page of %zu after %s: %s", size, offset ? offset : "(start)", kdao_error_string(err));
  return rows;
}

/* Pages through apis (filtered or not) by `size`: every row once, no empty page. */
static void page_through(const json_t *filter, size_t size, int total, int expected_pages) {
  json_t *seen = json_object();
  char *offset = NULL;
  int pages = 0;
  do {
    char *next = NULL;
    json_t *rows = page(dao("apis"), filter, offset, size, &next);
    if (json_array_size(rows) == 0) fail_msg("page %d by %zu is empty", pages, size);
    assert_true(json_array_size(rows) <= size);
    size_t i;
    json_t *r;
    json_array_foreach(rows, i, r) {
      if (json_object_get(seen, str(r, "id"))) fail_msg("%s seen twice", str(r, "name"));
      json_object_set_new(seen, str(r, "id"), json_true());
    }
    json_decref(rows);
    kdao_free(offset);
    offset = next;
    pages++;
  } while (offset != NULL && pages < 1000);
  if ((int)json_object_size(seen) != total || pages != expected_pages)
    fail_msg("by %zu: %zu rows in %d pages, expected %d in %d", size, json_object_size(seen), pages,
             total, expected_pages);
  json_decref(seen);
}

static void pages_of_250_rows_by_100_and_by_50(void **state) {
  (void)state;
  insert_apis("by", 250);
  page_through(NULL, 100, 250, 3);
  page_through(NULL, 50, 250, 5); /* the last page exactly full: no token after it */
  page_through(NULL, 250, 250, 1);
  json_t *f = J("{\"upstream_url\": \"http://paged.example.com\"}");
  page_through(f, 50, 250, 5);
  json_decref(f);
}

static void an_exactly_full_last_page_has_no_token(void **state) {
  (void)state;
  insert_apis("full", 4);
  char *next = NULL, *last = NULL;
  json_t *rows = page(dao("apis"), NULL, NULL, 4, &next);
  assert_int_equal(json_array_size(rows), 4);
  if (next) fail_msg("a page holding every row hands out %s", next);
  json_decref(rows);
  rows = page(dao("apis"), NULL, NULL, 2, &next);
  assert_int_equal(json_array_size(rows), 2);
  assert_non_null(next);
  json_decref(rows);
  rows = page(dao("apis"), NULL, next, 2, &last);
  assert_int_equal(json_array_size(rows), 2);
  if (last) fail_msg("the exactly full last page hands out %s", last);
  json_decref(rows);
  kdao_free(next);
  /* filtered (Cassandra: ALLOW FILTERING, which may page short) */
  json_t *f = J("{\"upstream_url\": \"http://paged.example.com\"}");
  rows = page(dao("apis"), f, NULL, 4, &next);
  assert_int_equal(json_array_size(rows), 4);
  if (next) fail_msg("a filtered page holding every match hands out %s", next);
  json_decref(rows);
  json_decref(f);
}

/* The one answer to an unusable token, word for word the same on every backend. */
static void assert_invalid_offset(const json_t *filter, const char *token, const char *what) {
  json_t *rows = NULL;
  char *next = NULL;
  kdao_error *err = NULL;
  int rc = kdao_dao_find_page(dao("apis"), filter, token, 2, &rows, &next, &err);
  if (rc != KDAO_ERR_SCHEMA)
    fail_msg("%s (%s): %s %s", what, token, kdao_error_kind_name(rc), kdao_error_string(err));
  char want[128];
  snprintf(want, sizeof want, "[%s error] offset=invalid offset", BACKEND);
  assert_string_equal(kdao_error_string(err), want);
  assert_string_equal(kdao_error_message(err), "offset=invalid offset");
  assert_true(jeq(kdao_error_fields(err), "{\"offset\": \"invalid offset\"}"));
  assert_null(rows);
  assert_null(next);
  kdao_error_free(err);
}

static void page_tokens_are_tamper_evident(void **state) {
  (void)state;
  insert_apis("tamper", 5);
  for (int i = 0; i < 5; i++) {
    char c[64];
    snprintf(c, sizeof c, "{\"username\": \"tamper-%d\"}", i);
    json_decref(must_insert("consumers", c));
  }
  json_t *f = J("{\"upstream_url\": \"http://paged.example.com\"}");
  json_t *other_f = J("{\"upstream_url\": \"http://other.example.com\"}");
  char *t = NULL, *tf = NULL, *tc = NULL;
  json_decref(page(dao("apis"), NULL, NULL, 2, &t));
  json_decref(page(dao("apis"), f, NULL, 2, &tf));
  json_decref(page(dao("consumers"), NULL, NULL, 2, &tc));
  assert_non_null(t);
  assert_non_null(tf);
  assert_non_null(tc);
  /* the genuine tokens work, where they were made */
  char *next = NULL;
  json_t *rows = page(dao("apis"), NULL, t, 2, &next);
  assert_int_equal(json_array_size(rows), 2);
  json_decref(rows);
  kdao_free(next);
  rows = page(dao("apis"), f, tf, 2, &next);
  assert_int_equal(json_array_size(rows), 2);
  json_decref(rows);
  kdao_free(next);

  size_t n = strlen(t);
  char *m = malloc(n + 8);
  assert_non_null(m);
  static const char subst[] = "Aa0-_";
  for (size_t i = 0; i < n; i++) {
    for (const char *c = subst; *c; c++) {
      if (*c == t[i]) continue;
      memcpy(m, t, n + 1);
      m[i] = *c;
      char what[64];
      snprintf(what, sizeof what, "character %zu changed", i);
      assert_invalid_offset(NULL, m, what);
    }
  }
  for (size_t cut = 0; cut < n; cut += n / 7 + 1) {
    memcpy(m, t, cut);
    m[cut] = '\0';
    assert_invalid_offset(NULL, m, "truncated");
  }
  memcpy(m, t, n - 1);
  m[n - 1] = '\0';
  assert_invalid_offset(NULL, m, "last character cut");
  snprintf(m, n + 8, "%sAAAA", t);
  assert_invalid_offset(NULL, m, "extended");
  snprintf(m, n + 8, "%sA", t);
  assert_invalid_offset(NULL, m, "extended by one");
  free(m);
  assert_invalid_offset(NULL, tc, "another table's token");
  assert_invalid_offset(NULL, tf, "a filtered page's token without the filter");
  assert_invalid_offset(f, t, "an unfiltered page's token with a filter");
  assert_invalid_offset(other_f, tf, "another filter's token");
  assert_invalid_offset(NULL, "%%garbage%%", "not base64url");
  assert_invalid_offset(NULL, "", "empty");
  kdao_free(t);
  kdao_free(tf);
  kdao_free(tc);
  json_decref(f);
  json_decref(other_f);
}

/* ---- one page key per database, whoever pages first ---- */

enum { KEY_RACERS = 4 };

typedef struct key_racer {
  pthread_t thread;
  kdao_config *cfg;
  char *token;
  char error[256];
} key_racer;

static void *race_for_the_key(void *arg) {
  key_racer *r = arg;
  kdao_factory *f = NULL;
  kdao_error *err = NULL;
  json_t *rows = NULL;
  if (kdao_factory_open(r->cfg, &f, &err) != KDAO_OK ||
      kdao_dao_find_page(kdao_factory_dao(f, "apis"), NULL, NULL, 1, &rows, &r->token, &err) !=
          KDAO_OK)
    snprintf(r->error, sizeof r->error, "%s", kdao_error_string(err));
  json_decref(rows);
  kdao_error_free(err);
  kdao_factory_free(f);
  return NULL;
}

/*
 * Factories on one database create its page key at the same moment, from scratch: they must
 * all end up with one key, so each hands out the very same token for the same page, and a
 * factory opened later accepts it.
 */
static void factories_on_one_database_share_the_page_key(void **state) {
  (void)state;
  kdao_error *err = NULL;
  if (kdao_factory_drop_schema(F, &err) != KDAO_OK ||
      kdao_factory_migrate(F, NULL, NULL, NULL, &err) != KDAO_OK)
    fail_msg("reset: %s", kdao_error_string(err));
  insert_apis("key", 3); /* writes only: the key table is still missing */
  key_racer racers[KEY_RACERS] = {0};
  for (int i = 0; i < KEY_RACERS; i++) {
    racers[i].cfg = suite_config();
    assert_non_null(racers[i].cfg);
  }
  for (int i = 0; i < KEY_RACERS; i++)
    assert_int_equal(pthread_create(&racers[i].thread, NULL, race_for_the_key, &racers[i]), 0);
  for (int i = 0; i < KEY_RACERS; i++) assert_int_equal(pthread_join(racers[i].thread, NULL), 0);
  char *mine = NULL;
  json_decref(page(dao("apis"), NULL, NULL, 1, &mine));
  assert_non_null(mine);
  for (int i = 0; i < KEY_RACERS; i++) {
    if (racers[i].error[0]) fail_msg("factory %d: %s", i, racers[i].error);
    if (racers[i].token == NULL || strcmp(racers[i].token, mine) != 0)
      fail_msg("factory %d's token %s differs from %s", i, racers[i].token, mine);
    kdao_free(racers[i].token);
    kdao_config_free(racers[i].cfg);
  }
  kdao_free(mine);
}

static void insert_many_is_all_or_nothing(void **state) {
  (void)state;
  json_t *batch = J("[{\"name\": \"ok1\", \"hosts\": [\"a.com\"], \"upstream_url\": \"http://a\"},"
                    " {\"name\": \"bad\", \"upstream_url\": \"nope\"}]");
  kdao_error *err = NULL;
  assert_int_equal(kdao_dao_insert_many(dao("apis"), batch, 0, NULL, &err), KDAO_ERR_SCHEMA);
  assert_true(strncmp(kdao_error_message(err), "[1] ", 4) == 0);
  kdao_error_free(err);
  assert_int_equal(count_of("apis", NULL), 0);
  json_decref(batch);
}

/* ---- unicode and values round-trip ---- */

static void values_round_trip_exactly(void **state) {
  (void)state;
  json_t *c =
      must_insert("consumers", "{\"username\": \"zoë — 日本 🚀\", \"custom_id\": \"x'y\\\"z\"}");
  json_t *back = find_by("consumers", "id", str(c, "id"));
  assert_string_equal(str(back, "username"), "zoë — 日本 🚀");
  assert_string_equal(str(back, "custom_id"), "x'y\"z");
  json_decref(back);
  json_t *u = must_insert("upstreams", "{\"name\": \"empty.svc\", \"slots\": 10, "
                                       "\"orderlist\": [1,2,3,4,5,6,7,8,9,10]}");
  back = find_by("upstreams", "id", str(u, "id"));
  assert_true(jeq(json_object_get(back, "orderlist"), "[1,2,3,4,5,6,7,8,9,10]"));
  json_decref(back);
  json_t *a = must_insert("apis", "{\"name\": \"m\", \"methods\": [\"GET\"], \"hosts\": [], "
                                  "\"upstream_url\": \"http://m.com\"}");
  back = find_by("apis", "id", str(a, "id"));
  json_t *hosts = json_object_get(back, "hosts");
  assert_true(hosts == NULL || (json_is_array(hosts) && json_array_size(hosts) == 0));
  json_decref(back);
  json_decref(a);
  json_decref(u);
  json_decref(c);
}

/* ---- custom entities through the C API ---- */

static const kdao_field_def NOTE_FIELDS[] = {
    {.name = "id", .type = KDAO_TYPE_ID, .flags = KDAO_FIELD_REQUIRED | KDAO_FIELD_INSERT_VALUE},
    {.name = "created_at", .type = KDAO_TYPE_TIMESTAMP, .flags = KDAO_FIELD_INSERT_VALUE},
    {.name = "consumer_id",
     .type = KDAO_TYPE_ID,
     .flags = KDAO_FIELD_REQUIRED,
     .foreign = "consumers:id"},
    {.name = "body", .type = KDAO_TYPE_STRING, .flags = KDAO_FIELD_REQUIRED},
    {.name = "tags", .type = KDAO_TYPE_ARRAY, .default_json = "[]"},
    {0}};
static const char *const NOTE_PK[] = {"id", NULL};
static const kdao_schema_def NOTE = {
    .version = KDAO_DEF_VERSION, .name = "notes", .primary_key = NOTE_PK, .fields = NOTE_FIELDS};

static void custom_entities_register_migrate_and_cascade(void **state) {
  (void)state;
  kdao_config *cfg = NULL;
  kdao_factory *f = NULL;
  kdao_error *err = NULL;
  assert_int_equal(kdao_config_new(&cfg, NULL), KDAO_OK);
  kdao_config_load_env(cfg, NULL);
  kdao_config_set(cfg, "database", BACKEND, NULL);
  if (strcmp(BACKEND, "sqlite") == 0) {
    char path[300];
    snprintf(path, sizeof path, "%s/kdao.db", TMPDIR_PATH);
    kdao_config_set(cfg, "sqlite_path", path, NULL);
  }
  assert_int_equal(kdao_factory_new(cfg, &f, NULL), KDAO_OK);
  kdao_config_free(cfg);
  if (kdao_factory_register_entity(f, &NOTE, &err) != KDAO_OK)
    fail_msg("register: %s", kdao_error_string(err));
  if (kdao_factory_connect(f, &err) != KDAO_OK ||
      kdao_factory_migrate(f, NULL, NULL, NULL, &err) != KDAO_OK)
    fail_msg("connect/migrate: %s", kdao_error_string(err));
  int pending = -1;
  assert_int_equal(kdao_factory_pending_migrations(f, &pending, NULL), KDAO_OK);
  assert_int_equal(pending, 0);
  kdao_dao *notes = kdao_factory_dao(f, "notes");
  assert_non_null(notes);
  json_t *in = J("{\"username\": \"writer\"}"), *c = NULL, *n = NULL;
  assert_int_equal(kdao_dao_insert(kdao_factory_dao(f, "consumers"), in, 0, 0, &c, NULL), KDAO_OK);
  json_decref(in);
  in = json_pack("{ssss}", "consumer_id", str(c, "id"), "body", "hello");
  if (kdao_dao_insert(notes, in, 0, 0, &n, &err) != KDAO_OK)
    fail_msg("note: %s", kdao_error_string(err));
  assert_true(jeq(json_object_get(n, "tags"), "[]"));
  /* an update nobody listens to: one UPDATE ... RETURNING, same result */
  json_t *vals = json_pack("{ssss}", "id", str(n, "id"), "body", "edited"), *upd = NULL;
  if (kdao_dao_update(notes, vals, NULL, 0, 0, &upd, &err) != KDAO_OK)
    fail_msg("note update: %s", kdao_error_string(err));
  assert_string_equal(str(upd, "body"), "edited");
  assert_true(json_equal(json_object_get(upd, "created_at"), json_object_get(n, "created_at")));
  json_decref(upd);
  json_object_set_new(vals, "id", json_string("00000000-0000-4000-8000-00000000000f"));
  assert_int_equal(kdao_dao_update(notes, vals, NULL, 0, 0, &upd, NULL), KDAO_OK);
  assert_null(upd);
  json_decref(vals);
  json_decref(in);
  json_decref(n);
  json_t *pk = json_pack("{ss}", "id", str(c, "id")), *gone = NULL;
  assert_int_equal(kdao_dao_delete(kdao_factory_dao(f, "consumers"), pk, 0, &gone, NULL), KDAO_OK);
  long long left = -1;
  assert_int_equal(kdao_dao_count(notes, NULL, &left, NULL), KDAO_OK);
  assert_int_equal(left, 0);
  json_decref(pk);
  json_decref(gone);
  json_decref(c);
  /* Last test: leave the database empty for the next run. */
  assert_int_equal(kdao_factory_drop_schema(f, NULL), KDAO_OK);
  kdao_factory_free(f);
}

static void migrations_are_recorded_and_idempotent(void **state) {
  (void)state;
  json_t *m = NULL;
  assert_int_equal(kdao_factory_migrations(F, &m, NULL), KDAO_OK);
  assert_true(json_array_size(json_object_get(m, "core")) > 0);
  assert_true(json_array_size(json_object_get(m, "key-auth")) > 0);
  json_decref(m);
  int ran = -1;
  assert_int_equal(kdao_factory_migrate(F, NULL, NULL, &ran, NULL), KDAO_OK);
  assert_int_equal(ran, 0);
}

int main(int argc, char **argv) {
  BACKEND = argc > 1 ? argv[1] : "sqlite";
  if (!backend_available()) {
    const char *req = getenv("KDAO_REQUIRE_ALL");
    fprintf(stderr, "dao_suite: no settings for backend '%s'%s\n", BACKEND,
            req && strcmp(req, "1") == 0 ? " (KDAO_REQUIRE_ALL=1: failing)" : ", skipped");
    return req && strcmp(req, "1") == 0 ? 1 : 77;
  }
  snprintf(TMPDIR_PATH, sizeof TMPDIR_PATH, "/tmp/kdao-suite-XXXXXX");
  if (mkdtemp(TMPDIR_PATH) == NULL) return 1;
#define T(fn) cmocka_unit_test_setup(fn, clean)
  const struct CMUnitTest tests[] = {
      T(insert_seed_api_fills_defaults_and_generated_values),
      T(insert_coerces_strings_like_forms),
      T(insert_does_not_touch_the_callers_json),
      T(duplicate_name_is_a_unique_error_with_kongs_message),
      T(schema_errors_carry_kongs_messages_and_write_nothing),
      T(misuse_is_not_a_data_error),
      T(bad_uuid_and_unknown_filters_are_schema_errors),
      T(values_every_backend_refuses_alike),
      T(find_all_and_count_filter_with_typed_values),
      T(find_of_a_missing_row_is_not_an_error),
      T(partial_update_changes_only_given_fields),
      T(full_update_replaces_the_entity),
      T(partial_update_with_null_clears_a_column),
      T(update_of_a_missing_row_returns_no_row),
      T(update_to_a_taken_unique_value_fails),
      T(plugin_with_missing_api_is_a_foreign_error),
      T(plugin_config_is_validated_defaulted_and_merged),
      T(plugin_uniqueness_is_per_api_and_consumer),
      T(api_uris_lose_their_trailing_slash),
      T(basic_auth_digest_is_not_hashed_twice),
      T(deleting_an_api_deletes_its_plugins_with_events),
      T(quiet_writes_publish_nothing),
      T(key_auth_credential_lifecycle),
      T(basic_auth_password_is_hashed_and_acl_groups_unique),
      T(upstream_orderlist_and_target_normalisation),
      T(ttl_rows_are_never_returned_after_expiry),
      T(pages_visit_every_row_exactly_once),
      T(pages_of_250_rows_by_100_and_by_50),
      T(an_exactly_full_last_page_has_no_token),
      T(page_tokens_are_tamper_evident),
      T(factories_on_one_database_share_the_page_key),
      T(insert_many_is_all_or_nothing),
      T(values_round_trip_exactly),
      T(migrations_are_recorded_and_idempotent),
      T(custom_entities_register_migrate_and_cascade),
  };
  char group[64];
  snprintf(group, sizeof group, "dao_suite/%s", BACKEND);
  int failed = _cmocka_run_group_tests(group, tests, sizeof tests / sizeof *tests, open_factory,
                                       close_factory);
  char cmd[300];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", TMPDIR_PATH);
  if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", TMPDIR_PATH);
  return failed ? 1 : 0;
}
