/*
 * test_oom.c — out of memory, everywhere: an allocator (kdao_set_allocator, which jansson and
 * the CQL client share) that fails the Nth allocation, for N = 1, 2, ... until an operation
 * completes without reaching N. Each operation of a representative run (configuration,
 * factory open and migrations, every kind of write and read, validation, errors) runs once
 * per N on a fresh copy of a prepared SQLite database, and must:
 *
 *  - return KDAO_OK, KDAO_ERR_NOMEM, or the error the operation gives without the failure
 *    (then with the same message: an allocation failure must not turn into a data error);
 *  - leave every table exactly as it was when it fails (no partial write);
 *  - give the same result as a run without failure when it succeeds;
 *  - neither crash nor leak (the ASan build's LeakSanitizer checks that).
 *
 * Two modes: only the Nth allocation fails (the error paths then have memory to report
 * with), and every allocation from the Nth on fails (so do the error constructors).
 * Only the operation under test runs with the countdown; setup and checks allocate freely.
 * SQLite's own allocations are not hooked. KDAO_OOM_VERBOSE=1 prints every failure point.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "kdao.h"

/* ---- the failing allocator ---- */

static long COUNT;   /* allocations since arm() */
static long FAIL_AT; /* 0: never fail */
static bool STICKY;  /* fail every allocation from FAIL_AT on, not only that one */
static bool HIT;     /* an allocation was failed since arm() */

static bool should_fail(void) {
  if (FAIL_AT == 0) return false;
  COUNT++;
  if (COUNT == FAIL_AT || (STICKY && COUNT > FAIL_AT)) {
    HIT = true;
    return true;
  }
  return false;
}

static void *t_malloc(size_t n) { return should_fail() ? NULL : malloc(n); }
static void *t_realloc(void *p, size_t n) { return should_fail() ? NULL : realloc(p, n); }
static void t_free(void *p) { free(p); }

static void arm(long n) {
  COUNT = 0;
  HIT = false;
  FAIL_AT = n;
}

static void disarm(void) { FAIL_AT = 0; }

/* ---- fixtures: a prepared database, copied for every run ---- */

static char DIR_PATH[256];
static char TEMPLATE[300]; /* migrated, with the base rows below */
static char WORK[300];     /* the copy an operation runs on */
static char PLUGINS[300];  /* plugins_dir with one JSON plugin */
static char CONF[300];     /* a kong.conf-style file */

static kdao_factory *F;
/* Base rows of the template, by id. */
static char API1[37], API2[37], CONSUMER[37], PLUGIN1[37];

static json_t *J(const char *text) {
  json_error_t e;
  json_t *v = json_loads(text, JSON_DECODE_ANY, &e);
  if (v == NULL) fail_msg("bad JSON in test: %s: %s", text, e.text);
  return v;
}

/* JSON from a printf format (the ids of the base rows go in this way). */
static json_t *JF(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static json_t *JF(const char *fmt, ...) {
  char buf[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  return J(buf);
}

static void write_file(const char *path, const char *text) {
  FILE *fp = fopen(path, "w");
  assert_non_null(fp);
  fputs(text, fp);
  fclose(fp);
}

static void copy_file(const char *from, const char *to) {
  FILE *in = fopen(from, "rb"), *out = fopen(to, "wb");
  assert_non_null(in);
  assert_non_null(out);
  char buf[65536];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, in)) > 0) assert_int_equal(fwrite(buf, 1, n, out), n);
  fclose(in);
  fclose(out);
}

static kdao_config *config_for(const char *path) {
  kdao_config *cfg = NULL;
  kdao_error *err = NULL;
  if (kdao_config_new(&cfg, &err) != KDAO_OK ||
      kdao_config_set(cfg, "database", "sqlite", &err) != KDAO_OK ||
      kdao_config_set(cfg, "sqlite_path", path, &err) != KDAO_OK ||
      kdao_config_set(cfg, "plugins_dir", PLUGINS, &err) != KDAO_OK)
    fail_msg("config: %s", kdao_error_string(err));
  return cfg;
}

static kdao_factory *open_at(const char *path) {
  kdao_config *cfg = config_for(path);
  kdao_factory *f = NULL;
  kdao_error *err = NULL;
  if (kdao_factory_open(cfg, &f, &err) != KDAO_OK) fail_msg("open: %s", kdao_error_string(err));
  kdao_config_free(cfg);
  return f;
}

static kdao_dao *D(const char *name) {
  kdao_dao *d = kdao_factory_dao(F, name);
  assert_non_null(d);
  return d;
}

static void must_insert(const char *entity, json_t *in, char id[37]) {
  json_t *row = NULL;
  kdao_error *err = NULL;
  if (kdao_dao_insert(D(entity), in, 0, 0, &row, &err) != KDAO_OK)
    fail_msg("insert %s: %s", entity, kdao_error_string(err));
  if (id) snprintf(id, 37, "%s", json_string_value(json_object_get(row, "id")));
  json_decref(row);
  json_decref(in);
}

static const char *NOTES_PLUGIN =
    "{\"name\": \"notes\", \"no_consumer\": true,\n"
    " \"config\": {\"fields\": {\"max_length\": {\"type\": \"number\", \"default\": 280},\n"
    "   \"mode\": {\"type\": \"string\", \"enum\": [\"public\", \"private\"], \"default\": "
    "\"private\"}}},\n"
    " \"daos\": {\"notes\": {\"primary_key\": [\"id\"], \"fields\": {\n"
    "   \"id\": {\"type\": \"id\", \"dao_insert_value\": true, \"required\": true},\n"
    "   \"created_at\": {\"type\": \"timestamp\", \"dao_insert_value\": true},\n"
    "   \"consumer_id\": {\"type\": \"id\", \"required\": true, \"foreign\": \"consumers:id\"},\n"
    "   \"body\": {\"type\": \"string\", \"required\": true, \"regex\": \"^\\\\S\"},\n"
    "   \"tags\": {\"type\": \"array\", \"default\": []}}}}}\n";

static int group_setup(void **state) {
  (void)state;
  assert_int_equal(kdao_set_allocator(&(kdao_allocator){t_malloc, t_realloc, t_free}), KDAO_OK);
  /* Thousands of fresh copies and commits: memory-backed storage when there is some. */
  struct stat st;
  const char *base = stat("/dev/shm", &st) == 0 && S_ISDIR(st.st_mode) ? "/dev/shm" : P_tmpdir;
  snprintf(DIR_PATH, sizeof DIR_PATH, "%s/kdao-oom-XXXXXX", base);
  if (!mkdtemp(DIR_PATH)) return -1;
  snprintf(TEMPLATE, sizeof TEMPLATE, "%s/template.db", DIR_PATH);
  snprintf(WORK, sizeof WORK, "%s/work.db", DIR_PATH);
  snprintf(PLUGINS, sizeof PLUGINS, "%s/plugins", DIR_PATH);
  snprintf(CONF, sizeof CONF, "%s/kdao.conf", DIR_PATH);
  if (mkdir(PLUGINS, 0700) != 0) return -1;
  char path[400];
  snprintf(path, sizeof path, "%s/notes.json", PLUGINS);
  write_file(path, NOTES_PLUGIN);
  write_file(CONF, "# OOM test\npg_host = db.example.com # comment\npg_port = 6543\n"
                   "cassandra_contact_points = 10.0.0.1, 10.0.0.2\npg_ssl = on\n"
                   "cassandra_consistency = QUORUM\n");

  F = open_at(TEMPLATE);
  kdao_error *err = NULL;
  if (kdao_factory_migrate(F, NULL, NULL, NULL, &err) != KDAO_OK)
    fail_msg("migrate: %s", kdao_error_string(err));
  must_insert("apis",
              J("{\"name\": \"a1\", \"hosts\": [\"a1.com\"], \"uris\": [\"/a1\"], "
                "\"upstream_url\": \"http://a1.com\"}"),
              API1);
  must_insert("apis",
              J("{\"name\": \"a2\", \"hosts\": [\"a2.com\", \"b2.com\"], "
                "\"upstream_url\": \"http://a2.com\"}"),
              API2);
  for (int i = 3; i <= 6; i++)
    must_insert("apis",
                JF("{\"name\": \"a%d\", \"uris\": [\"/a%d\"], \"upstream_url\": "
                   "\"http://a%d.com\"}",
                   i, i, i),
                NULL);
  must_insert("consumers", J("{\"username\": \"bob\", \"custom_id\": \"b1\"}"), CONSUMER);
  must_insert("plugins", JF("{\"name\": \"key-auth\", \"api_id\": \"%s\"}", API1), PLUGIN1);
  must_insert("plugins", JF("{\"name\": \"basic-auth\", \"api_id\": \"%s\"}", API1), NULL);
  must_insert("plugins",
              JF("{\"name\": \"acl\", \"api_id\": \"%s\", "
                 "\"config\": {\"whitelist\": [\"g1\"]}}",
                 API2),
              NULL);
  must_insert("keyauth_credentials", JF("{\"consumer_id\": \"%s\", \"key\": \"k1\"}", CONSUMER),
              NULL);
  must_insert("basicauth_credentials",
              JF("{\"consumer_id\": \"%s\", \"username\": \"u1\", \"password\": \"p1\"}", CONSUMER),
              NULL);
  must_insert("acls", JF("{\"consumer_id\": \"%s\", \"group\": \"g1\"}", CONSUMER), NULL);
  must_insert("notes", JF("{\"consumer_id\": \"%s\", \"body\": \"hello\"}", CONSUMER), NULL);
  kdao_factory_free(F);
  F = NULL;
  return 0;
}

static int group_teardown(void **state) {
  (void)state;
  char cmd[400];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", DIR_PATH);
  int rc = system(cmd);
  (void)rc;
  kdao_set_allocator(NULL);
  return 0;
}

/* ---- snapshots: every table, as find_all returns it ---- */

static json_t *snapshot(void) {
  json_t *all = json_object(), *names = kdao_factory_dao_names(F);
  size_t i;
  json_t *name;
  json_array_foreach(names, i, name) {
    json_t *rows = NULL;
    kdao_error *err = NULL;
    if (kdao_dao_find_all(D(json_string_value(name)), NULL, &rows, &err) != KDAO_OK)
      fail_msg("snapshot: %s", kdao_error_string(err));
    json_object_set_new(all, json_string_value(name), rows);
  }
  json_decref(names);
  return all;
}

/* Generated values differ from run to run: compare everything else. */
static const char *const GENERATED[] = {"id", "created_at", "key", NULL};

static void strip_generated(json_t *v, const json_t *keep) {
  if (json_is_array(v)) {
    size_t i;
    json_t *el;
    json_array_foreach(v, i, el) strip_generated(el, keep);
  } else if (json_is_object(v)) {
    for (size_t i = 0; GENERATED[i]; i++) {
      json_t *g = json_object_get(v, GENERATED[i]);
      /* Values of the base rows are known: only new ones are generated. */
      if (g && !(json_is_string(g) && json_object_get(keep, json_string_value(g))))
        json_object_del(v, GENERATED[i]);
    }
  }
}

static int cmp_text(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/*
 * A snapshot with generated values stripped and each table's rows in a fixed order: rows
 * come in primary-key order, and a new row's key is random.
 */
static json_t *comparable(const json_t *snap, const json_t *keep) {
  json_t *out = json_object();
  const char *k;
  json_t *rows;
  json_object_foreach((json_t *)snap, k, rows) {
    json_t *copy = json_deep_copy(rows);
    strip_generated(copy, keep);
    size_t n = json_array_size(copy), i;
    char **texts = calloc(n + 1, sizeof *texts);
    json_t *row;
    json_array_foreach(copy, i, row) texts[i] = json_dumps(row, JSON_SORT_KEYS);
    qsort(texts, n, sizeof *texts, cmp_text);
    json_t *sorted = json_array();
    for (i = 0; i < n; i++) {
      json_array_append_new(sorted, json_loads(texts[i], 0, NULL));
      free(texts[i]);
    }
    free(texts);
    json_decref(copy);
    json_object_set_new(out, k, sorted);
  }
  return out;
}

/* The ids of every row of a snapshot (so that new rows' generated values can be told apart). */
static json_t *known_ids(const json_t *snap) {
  json_t *ids = json_object();
  const char *k;
  json_t *rows;
  json_object_foreach((json_t *)snap, k, rows) {
    size_t i;
    json_t *row;
    json_array_foreach(rows, i, row) {
      json_t *id = json_object_get(row, "id");
      if (json_is_string(id)) json_object_set_new(ids, json_string_value(id), json_true());
    }
  }
  return ids;
}

/* ---- the operations ---- */

/*
 * One operation. `setup` (optional) prepares it with the allocator working; `run` runs it
 * with the countdown armed and returns its status, leaving its result (any JSON value,
 * NULL for none) in *out; `cleanup` (optional) frees what setup made.
 */
typedef struct op {
  const char *name;
  bool factory; /* runs on a fresh copy of the template, opened in F */
  /* The state it changes (every table, a config's dump), NULL for none: a failure leaves it. */
  json_t *(*state)(void);
  bool always; /* its result is compared even when it fails (what a later retry gives) */
  void (*setup)(void);
  kdao_status (*run)(json_t **out, kdao_error **err);
  void (*cleanup)(void);
} op;

static kdao_config *CFG;
static json_t *INPUT;
static char *TOKEN;

static void setup_config(void) {
  CFG = NULL;
  assert_int_equal(kdao_config_new(&CFG, NULL), KDAO_OK);
}

static void cleanup_config(void) {
  kdao_config_free(CFG);
  CFG = NULL;
}

static kdao_status run_config_new(json_t **out, kdao_error **err) {
  kdao_config *cfg = NULL;
  kdao_status rc = kdao_config_new(&cfg, err);
  disarm();
  if (rc == KDAO_OK)
    *out = kdao_config_dump(cfg);
  else
    assert_null(cfg);
  kdao_config_free(cfg);
  return rc;
}

static json_t *config_state(void) { return kdao_config_dump(CFG); }

static kdao_status run_config_set(json_t **out, kdao_error **err) {
  (void)out;
  return kdao_config_set(CFG, "cassandra_data_centers", "east:2, west:3", err);
}

static kdao_status run_config_set_string(json_t **out, kdao_error **err) {
  (void)out;
  return kdao_config_set(CFG, "pg_host", "db.example.com", err);
}

static kdao_status run_config_set_bad(json_t **out, kdao_error **err) {
  (void)out;
  return kdao_config_set(CFG, "pg_port", "70000", err);
}

static kdao_status run_config_load_file(json_t **out, kdao_error **err) {
  (void)out;
  return kdao_config_load_file(CFG, CONF, err);
}

static kdao_status run_config_describe(json_t **out, kdao_error **err) {
  (void)err;
  *out = kdao_config_describe();
  return *out ? KDAO_OK : KDAO_ERR_NOMEM;
}

static kdao_status run_open_migrate(json_t **out, kdao_error **err) {
  kdao_factory *f = NULL;
  kdao_status rc = kdao_factory_open(CFG, &f, err);
  int ran = 0;
  if (rc == KDAO_OK)
    rc = kdao_factory_migrate(f, NULL, NULL, &ran, err);
  else
    assert_null(f);
  disarm();
  kdao_factory_free(f);
  /* What was recorded must be what ran: migrating again completes the same set. */
  f = open_at(WORK);
  kdao_error *e2 = NULL;
  if (kdao_factory_migrate(f, NULL, NULL, NULL, &e2) != KDAO_OK ||
      kdao_factory_migrations(f, out, &e2) != KDAO_OK)
    fail_msg("migrating after a failure: %s", kdao_error_string(e2));
  kdao_factory_free(f);
  return rc;
}

static void setup_open(void) {
  unlink(WORK);
  CFG = config_for(WORK);
}

static void setup_input(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void setup_input(const char *fmt, ...) {
  char buf[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  INPUT = J(buf);
}

static void cleanup_input(void) {
  json_decref(INPUT);
  INPUT = NULL;
  kdao_free(TOKEN);
  TOKEN = NULL;
}

static kdao_status insert_into(const char *entity, json_t **out, kdao_error **err) {
  return kdao_dao_insert(D(entity), INPUT, 0, 0, out, err);
}

static void setup_api(void) {
  setup_input("{\"name\": \"new-api\", \"hosts\": [\"x.com\", \"y.com\"], \"uris\": [\"/x\", "
              "\"/y/\"], \"methods\": [\"GET\", \"POST\"], \"upstream_url\": "
              "\"http://x.com:8080/p\", \"retries\": \"3\"}");
}
static kdao_status run_insert_api(json_t **out, kdao_error **err) {
  return insert_into("apis", out, err);
}

static void setup_plugin(void) {
  setup_input("{\"name\": \"key-auth\", \"api_id\": \"%s\"}", API2);
}
static kdao_status run_insert_plugin(json_t **out, kdao_error **err) {
  return insert_into("plugins", out, err);
}

static void setup_keyauth(void) { setup_input("{\"consumer_id\": \"%s\"}", CONSUMER); }
static kdao_status run_insert_keyauth(json_t **out, kdao_error **err) {
  return insert_into("keyauth_credentials", out, err);
}

static void setup_basicauth(void) {
  setup_input("{\"consumer_id\": \"%s\", \"username\": \"u2\", \"password\": \"secret\"}",
              CONSUMER);
}
static kdao_status run_insert_basicauth(json_t **out, kdao_error **err) {
  return insert_into("basicauth_credentials", out, err);
}

static void setup_note(void) {
  setup_input("{\"consumer_id\": \"%s\", \"body\": \"hi\", \"tags\": [\"a\"]}", CONSUMER);
}
static kdao_status run_insert_note(json_t **out, kdao_error **err) {
  return insert_into("notes", out, err);
}

/* Operations whose own error is part of the run: unique, foreign and schema failures. */
static void setup_unique(void) {
  setup_input("{\"name\": \"a1\", \"hosts\": [\"z.com\"], \"upstream_url\": \"http://z.com\"}");
}
static kdao_status run_insert_unique(json_t **out, kdao_error **err) {
  return insert_into("apis", out, err);
}

static void setup_foreign(void) {
  setup_input("{\"name\": \"key-auth\", \"api_id\": \"00000000-0000-4000-8000-000000000001\"}");
}
static kdao_status run_insert_foreign(json_t **out, kdao_error **err) {
  return insert_into("plugins", out, err);
}

static void setup_invalid(void) {
  setup_input("{\"name\": \"bad name!\", \"hosts\": [\"x..com\", 3], \"upstream_url\": \"nope\", "
              "\"retries\": -1, \"what\": 1}");
}
static kdao_status run_insert_invalid(json_t **out, kdao_error **err) {
  return insert_into("apis", out, err);
}

static void setup_find(void) { setup_input("{\"id\": \"%s\"}", API1); }
static kdao_status run_find(json_t **out, kdao_error **err) {
  return kdao_dao_find(D("apis"), INPUT, out, err);
}

static void setup_find_all(void) { setup_input("{\"api_id\": \"%s\"}", API1); }
static kdao_status run_find_all(json_t **out, kdao_error **err) {
  return kdao_dao_find_all(D("plugins"), INPUT, out, err);
}

static void setup_page(void) {
  json_t *rows = NULL;
  assert_int_equal(kdao_dao_find_page(D("apis"), NULL, NULL, 2, &rows, &TOKEN, NULL), KDAO_OK);
  assert_non_null(TOKEN);
  json_decref(rows);
}
static kdao_status run_find_page(json_t **out, kdao_error **err) {
  json_t *rows = NULL;
  char *next = NULL;
  kdao_status rc = kdao_dao_find_page(D("apis"), NULL, TOKEN, 2, &rows, &next, err);
  disarm();
  if (rc == KDAO_OK)
    *out = json_pack("{so s?s}", "rows", rows, "next", next);
  else
    assert_null(next);
  kdao_free(next);
  return rc;
}

static void setup_count(void) { setup_input("{\"api_id\": \"%s\"}", API1); }
static kdao_status run_count(json_t **out, kdao_error **err) {
  long long n = -1;
  kdao_status rc = kdao_dao_count(D("plugins"), INPUT, &n, err);
  disarm();
  if (rc == KDAO_OK) *out = json_integer(n);
  return rc;
}

static void setup_update_partial(void) {
  setup_input("{\"id\": \"%s\", \"config\": {\"hide_credentials\": true}}", PLUGIN1);
}
static kdao_status run_update_partial(json_t **out, kdao_error **err) {
  return kdao_dao_update(D("plugins"), INPUT, NULL, 0, 0, out, err);
}

static void setup_update_api(void) {
  setup_input("{\"id\": \"%s\", \"hosts\": [\"c.com\"], \"upstream_url\": \"http://c.com\"}", API1);
}
static kdao_status run_update_api(json_t **out, kdao_error **err) {
  return kdao_dao_update(D("apis"), INPUT, NULL, 0, 0, out, err);
}

/* A full update replaces the stored row: start from it (created_at is required). */
static void setup_update_full(void) {
  json_t *pk = JF("{\"id\": \"%s\"}", API2);
  assert_int_equal(kdao_dao_find(D("apis"), pk, &INPUT, NULL), KDAO_OK);
  json_decref(pk);
  json_object_set_new(INPUT, "name", json_string("a2b"));
  json_object_del(INPUT, "hosts");
  json_object_set_new(INPUT, "uris", J("[\"/full\"]"));
}
static kdao_status run_update_full(json_t **out, kdao_error **err) {
  return kdao_dao_update(D("apis"), INPUT, NULL, 0, KDAO_DAO_FULL, out, err);
}

static void setup_delete_consumer(void) { setup_input("{\"id\": \"%s\"}", CONSUMER); }
static kdao_status run_delete_consumer(json_t **out, kdao_error **err) {
  return kdao_dao_delete(D("consumers"), INPUT, 0, out, err);
}

static void setup_delete_api(void) { setup_input("{\"id\": \"%s\"}", API1); }
static kdao_status run_delete_api(json_t **out, kdao_error **err) {
  return kdao_dao_delete(D("apis"), INPUT, 0, out, err);
}

static void setup_insert_many(void) {
  setup_input("[{\"name\": \"m1\", \"hosts\": [\"m1.com\"], \"upstream_url\": \"http://m1\"},"
              " {\"name\": \"m2\", \"uris\": [\"/m2\"], \"upstream_url\": \"http://m2\"},"
              " {\"name\": \"m3\", \"methods\": [\"PUT\"], \"upstream_url\": \"http://m3\"}]");
}
static kdao_status run_insert_many(json_t **out, kdao_error **err) {
  return kdao_dao_insert_many(D("apis"), INPUT, 0, out, err);
}

static void setup_insert_many_bad(void) {
  setup_input("[{\"name\": \"m1\", \"hosts\": [\"m1.com\"], \"upstream_url\": \"http://m1\"},"
              " {\"name\": \"a2\", \"uris\": [\"/m2\"], \"upstream_url\": \"http://m2\"}]");
}

static void setup_validate(void) {
  setup_input("{\"name\": \"basic-auth\", \"api_id\": \"%s\", \"config\": {\"hide_credentials\": "
              "\"true\"}}",
              API2);
}
static kdao_status run_validate(json_t **out, kdao_error **err) {
  kdao_dao *d = D("plugins");
  kdao_status rc = kdao_validate(kdao_dao_schema(d), INPUT, KDAO_MODE_INSERT, d, err);
  disarm();
  *out = json_incref(INPUT);
  return rc;
}

static void setup_validate_bad(void) {
  setup_input("{\"name\": \"key-auth\", \"api_id\": \"nope\", \"config\": {\"key_names\": "
              "[\"a b\"], \"extra\": 1}}");
}

static kdao_status run_validate_filter(json_t **out, kdao_error **err) {
  (void)out;
  return kdao_validate_filter(kdao_dao_schema(D("plugins")), INPUT, err);
}
static void setup_filter_bad(void) { setup_input("{\"api_id\": \"x\", \"nope\": 1}"); }

static void setup_errors(void) { setup_input("{\"name\": \"a1\", \"n\": 3, \"r\": 1.5}"); }
static kdao_status run_errors(json_t **out, kdao_error **err) {
  (void)err;
  kdao_error *e1 = kdao_error_new_fields(KDAO_ERR_UNIQUE, INPUT);
  kdao_error *e2 = kdao_error_new_db(KDAO_ERR_DB, "sqlite", "boom");
  kdao_error *e3 = kdao_error_new(KDAO_ERR_SCHEMA, "bad");
  /* Out of memory, a constructor hands out the shared KDAO_ERR_NOMEM error. */
  bool ok = kdao_error_kind(e1) == KDAO_ERR_UNIQUE && kdao_error_kind(e2) == KDAO_ERR_DB &&
            kdao_error_kind(e3) == KDAO_ERR_SCHEMA;
  disarm();
  if (!ok)
    for (kdao_error *const *e = (kdao_error *const[]){e1, e2, e3, NULL}; *e; e++)
      assert_true(kdao_error_kind(*e) != KDAO_ERR_NOMEM ||
                  strcmp(kdao_error_message(*e), "out of memory") == 0);
  if (ok)
    *out = json_pack("[sss O sss]", kdao_error_string(e1), kdao_error_message(e1),
                     kdao_error_kind_name(kdao_error_kind(e1)), kdao_error_fields(e1),
                     kdao_error_string(e2), kdao_error_db_name(e2), kdao_error_string(e3));
  kdao_error_free(e1);
  kdao_error_free(e2);
  kdao_error_free(e3);
  return ok ? KDAO_OK : KDAO_ERR_NOMEM;
}

static kdao_status run_describe(json_t **out, kdao_error **err) {
  (void)err;
  json_t *d = kdao_schema_describe(kdao_dao_schema(D("plugins")));
  json_t *n = kdao_factory_dao_names(F);
  json_t *i = kdao_factory_infos(F);
  disarm();
  kdao_status rc = d && n && i ? KDAO_OK : KDAO_ERR_NOMEM;
  if (rc == KDAO_OK) *out = json_pack("[OOO]", d, n, i);
  json_decref(d);
  json_decref(n);
  json_decref(i);
  return rc;
}

#define OP(name, fac, db, setup, run, cleanup) \
  { name, fac, (db) ? snapshot : NULL, false, setup, run, cleanup }
#define OP_CONFIG(name, run) \
  { name, false, config_state, false, setup_config, run, cleanup_config }
static const op OPS[] = {
    OP("config_new", false, false, NULL, run_config_new, NULL),
    OP_CONFIG("config_set_list", run_config_set),
    OP_CONFIG("config_set_string", run_config_set_string),
    OP_CONFIG("config_set_bad", run_config_set_bad),
    OP_CONFIG("config_load_file", run_config_load_file),
    OP("config_describe", false, false, NULL, run_config_describe, NULL),
    {"open_migrate", false, NULL, true, setup_open, run_open_migrate, cleanup_config},
    OP("insert_api", true, true, setup_api, run_insert_api, cleanup_input),
    OP("insert_plugin", true, true, setup_plugin, run_insert_plugin, cleanup_input),
    OP("insert_keyauth", true, true, setup_keyauth, run_insert_keyauth, cleanup_input),
    OP("insert_basicauth", true, true, setup_basicauth, run_insert_basicauth, cleanup_input),
    OP("insert_json_plugin_entity", true, true, setup_note, run_insert_note, cleanup_input),
    OP("insert_unique", true, true, setup_unique, run_insert_unique, cleanup_input),
    OP("insert_foreign", true, true, setup_foreign, run_insert_foreign, cleanup_input),
    OP("insert_invalid", true, true, setup_invalid, run_insert_invalid, cleanup_input),
    OP("find", true, false, setup_find, run_find, cleanup_input),
    OP("find_all_filter", true, false, setup_find_all, run_find_all, cleanup_input),
    OP("find_page_token", true, false, setup_page, run_find_page, cleanup_input),
    OP("count_filter", true, false, setup_count, run_count, cleanup_input),
    OP("update_partial_plugin", true, true, setup_update_partial, run_update_partial,
       cleanup_input),
    OP("update_partial_api", true, true, setup_update_api, run_update_api, cleanup_input),
    OP("update_full", true, true, setup_update_full, run_update_full, cleanup_input),
    OP("delete_cascade_consumer", true, true, setup_delete_consumer, run_delete_consumer,
       cleanup_input),
    OP("delete_cascade_api", true, true, setup_delete_api, run_delete_api, cleanup_input),
    OP("insert_many", true, true, setup_insert_many, run_insert_many, cleanup_input),
    OP("insert_many_unique", true, true, setup_insert_many_bad, run_insert_many, cleanup_input),
    OP("validate", true, false, setup_validate, run_validate, cleanup_input),
    OP("validate_bad", true, false, setup_validate_bad, run_validate, cleanup_input),
    OP("validate_filter_bad", true, false, setup_filter_bad, run_validate_filter, cleanup_input),
    OP("errors", false, false, setup_errors, run_errors, cleanup_input),
    OP("describe", true, false, NULL, run_describe, NULL),
};

/* ---- the driver ---- */

typedef struct outcome {
  kdao_status rc;
  char *message; /* the error's string, when rc is not KDAO_OK */
  json_t *result;
  json_t *before, *after; /* snapshots (database operations) */
} outcome;

static void outcome_clear(outcome *o) {
  free(o->message);
  json_decref(o->result);
  json_decref(o->before);
  json_decref(o->after);
  memset(o, 0, sizeof *o);
}

/* Runs `o` once with the Nth allocation failing (0: none); false when N was not reached. */
static bool run_once(const op *o, long n, outcome *res) {
  memset(res, 0, sizeof *res);
  if (o->factory) {
    copy_file(TEMPLATE, WORK);
    F = open_at(WORK);
  }
  if (o->setup) o->setup();
  if (o->state) res->before = o->state();
  kdao_error *err = NULL;
  arm(n);
  res->rc = o->run(&res->result, &err);
  disarm();
  bool hit = HIT;
  if (res->rc != KDAO_OK) {
    if (err && kdao_error_kind(err) != res->rc)
      fail_msg("%s, N=%ld: status %s but error kind %s", o->name, n, kdao_error_kind_name(res->rc),
               kdao_error_kind_name(kdao_error_kind(err)));
    if (!err && res->rc != KDAO_ERR_NOMEM)
      fail_msg("%s, N=%ld: status %s without an error", o->name, n, kdao_error_kind_name(res->rc));
    res->message = strdup(err ? kdao_error_string(err) : "");
  } else if (err) {
    fail_msg("%s, N=%ld: KDAO_OK with an error: %s", o->name, n, kdao_error_string(err));
  }
  kdao_error_free(err);
  if (o->state) res->after = o->state();
  if (o->cleanup) o->cleanup();
  if (o->factory) {
    kdao_factory_free(F);
    F = NULL;
  }
  return hit;
}

static bool json_same(const json_t *a, const json_t *b) {
  return (!a && !b) || (a && b && json_equal((json_t *)a, (json_t *)b));
}

/* Narrows a difference down to the first member or element that differs. */
static void narrow(const json_t **want, const json_t **got, char *path, size_t cap) {
  while (json_is_object(*want) && json_is_object(*got)) {
    const char *k;
    json_t *v, *next = NULL;
    json_object_foreach((json_t *)*want, k, v) {
      json_t *g = json_object_get(*got, k);
      if (!g || !json_equal(v, g)) {
        next = v;
        break;
      }
    }
    if (!next || json_object_size(*want) != json_object_size(*got)) return;
    size_t len = strlen(path);
    snprintf(path + len, cap - len, ".%s", k);
    *got = json_object_get(*got, k);
    *want = next;
  }
}

static void fail_diff(const char *what, const op *o, long n, const json_t *want,
                      const json_t *got) {
  char path[256] = "";
  narrow(&want, &got, path, sizeof path);
  char *w = want ? json_dumps(want, JSON_SORT_KEYS | JSON_ENCODE_ANY) : NULL;
  char *g = got ? json_dumps(got, JSON_SORT_KEYS | JSON_ENCODE_ANY) : NULL;
  fail_msg("%s, N=%ld (%s): %s at '%s'\n want: %s\n got:  %s", o->name, n,
           STICKY ? "sticky" : "once", what, path, w ? w : "(null)", g ? g : "(null)");
}

static void check_op(const op *o) {
  bool verbose = getenv("KDAO_OOM_VERBOSE") != NULL;
  /* KDAO_OOM_ONLY=<name>: one operation, when chasing a failure. */
  const char *only = getenv("KDAO_OOM_ONLY");
  if (only && strcmp(only, o->name) != 0) skip();
  outcome ref;
  run_once(o, 0, &ref);
  if (verbose)
    fprintf(stderr, "%s: reference %s %s\n", o->name, kdao_error_kind_name(ref.rc),
            ref.message ? ref.message : "");
  json_t *ids = ref.before ? known_ids(ref.before) : json_object();
  strip_generated(ref.result, ids);
  if (ref.after && o->state == snapshot) {
    json_t *after = comparable(ref.after, ids);
    json_decref(ref.after);
    ref.after = after;
  }
  long tried[2] = {0, 0};
  for (int mode = 0; mode < 2; mode++) {
    STICKY = mode == 1;
    for (long n = 1;; n++) {
      outcome res;
      bool hit = run_once(o, n, &res);
      tried[mode] = n;
      if (verbose && hit)
        fprintf(stderr, "%s N=%ld %s: %s %s\n", o->name, n, STICKY ? "sticky" : "once",
                kdao_error_kind_name(res.rc), res.message ? res.message : "");
      if (res.rc == ref.rc) {
        if (res.rc != KDAO_OK && strcmp(res.message, ref.message) != 0)
          fail_msg("%s, N=%ld (%s): the operation's error changed: want \"%s\", got \"%s\"",
                   o->name, n, STICKY ? "sticky" : "once", ref.message, res.message);
        strip_generated(res.result, ids);
        if (!json_same(ref.result, res.result))
          fail_diff("result differs", o, n, ref.result, res.result);
        if (ref.after) {
          json_t *after =
              o->state == snapshot ? comparable(res.after, ids) : json_incref(res.after);
          if (!json_same(ref.after, after)) fail_diff("rows differ", o, n, ref.after, after);
          json_decref(after);
        }
      } else if (res.rc == KDAO_ERR_NOMEM) {
        if (!hit) fail_msg("%s, N=%ld: KDAO_ERR_NOMEM without a failed allocation", o->name, n);
        if (res.before && !json_same(res.before, res.after))
          fail_diff("partial write", o, n, res.before, res.after);
        if (o->always && !json_same(ref.result, res.result))
          fail_diff("result after a retry differs", o, n, ref.result, res.result);
      } else {
        fail_msg("%s, N=%ld (%s): %s (%s) where %s or nomem was expected", o->name, n,
                 STICKY ? "sticky" : "once", kdao_error_kind_name(res.rc), res.message,
                 kdao_error_kind_name(ref.rc));
      }
      outcome_clear(&res);
      if (!hit) break;
    }
  }
  printf("%-28s %6ld allocations (%s), N tried: %ld once + %ld sticky%s%s\n", o->name, tried[0] - 1,
         kdao_error_kind_name(ref.rc), tried[0], tried[1], ref.message ? ": " : "",
         ref.message ? ref.message : "");
  fflush(stdout);
  json_decref(ids);
  outcome_clear(&ref);
}

static void test_op(void **state) { check_op(*state); }

int main(void) {
  struct CMUnitTest tests[sizeof OPS / sizeof *OPS];
  for (size_t i = 0; i < sizeof OPS / sizeof *OPS; i++)
    tests[i] = (struct CMUnitTest){OPS[i].name, test_op, NULL, NULL, (void *)&OPS[i]};
  return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
