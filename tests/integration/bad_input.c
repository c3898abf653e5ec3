/*
 * bad_input.c — the C driver of the shared bad-input table (tests/bad_input/cases.json, see
 * tests/bad_input/README.md), run against one backend:
 *
 *   bad_input sqlite|postgres|cassandra CASES.json
 *
 * Every case runs through the public API against a real server, after seeding a few rows;
 * each must fail with the table's kind (and under its field), and leave the number of rows
 * of its entity unchanged. The CLI and HTTP drivers read the same table, so one input gets
 * one answer whatever the backend and whatever the interface. Connection settings come
 * from KDAO_* variables; a backend without them is skipped (77) unless KDAO_REQUIRE_ALL=1.
 */
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kdao.h"

static kdao_factory *F;
static const char *BACKEND;
static char TMPDIR_PATH[256];
static json_t *SEEDS; /* "@api" → the seeded api's id, ... */
static int FAILED, PENDING, PASSED, SKIPPED;
static const char *PENDING_ON; /* the running case's pending reason on this backend, if any */

static kdao_dao *dao(const char *name) { return kdao_factory_dao(F, name); }

static void failf(const char *id, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void failf(const char *id, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "%s %s [%s]: ", PENDING_ON ? "PENDING" : "FAIL", id, BACKEND);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
  FAILED++;
}

/* ---- generators: inputs JSON text cannot carry plainly, or would carry at great length ---- */

static json_t *expand(const json_t *v);

static json_t *gen_repeat(const json_t *g) {
  const char *ch = json_string_value(json_object_get(g, "$repeat"));
  const char *prefix = json_string_value(json_object_get(g, "prefix"));
  size_t n = (size_t)json_integer_value(json_object_get(g, "n")),
         plen = prefix ? strlen(prefix) : 0;
  char *buf = malloc(plen + n + 1);
  if (!buf) return NULL;
  if (plen) memcpy(buf, prefix, plen);
  memset(buf + plen, ch && *ch ? *ch : 'a', n);
  json_t *s = json_stringn(buf, plen + n);
  free(buf);
  return s;
}

/* Bytes given in hex, kept as they are: a C caller can build strings jansson would refuse. */
static json_t *gen_bytes(const json_t *g) {
  const char *hex = json_string_value(json_object_get(g, "$bytes"));
  size_t n = strlen(hex) / 2;
  char *buf = malloc(n + 1);
  if (!buf) return NULL;
  for (size_t i = 0; i < n; i++) {
    unsigned int b = 0;
    sscanf(hex + 2 * i, "%2x", &b);
    buf[i] = (char)b;
  }
  json_t *s = json_stringn_nocheck(buf, n);
  free(buf);
  return s;
}

static json_t *gen_deep(const json_t *g) {
  bool array = strcmp(json_string_value(json_object_get(g, "$deep")), "array") == 0;
  json_int_t depth = json_integer_value(json_object_get(g, "depth"));
  json_t *v = json_string("x");
  for (json_int_t i = 0; v && i < depth; i++) {
    json_t *outer = array ? json_array() : json_object();
    if (!outer || (array ? json_array_append_new(outer, v) : json_object_set_new(outer, "a", v))) {
      json_decref(outer);
      return NULL;
    }
    v = outer;
  }
  return v;
}

static json_t *gen_array(const json_t *g) {
  json_int_t n = json_integer_value(json_object_get(g, "n"));
  json_t *a = json_array(), *last = json_object_get(g, "last");
  for (json_int_t i = 0; a && i < n; i++)
    if (json_array_append(a, json_object_get(g, "$array")) != 0) return json_decref(a), NULL;
  if (a && last && !json_is_null(last)) json_array_append(a, last);
  return a;
}

/* A copy of `v` with generators run and "@seed" placeholders replaced. */
static json_t *expand(const json_t *v) {
  if (json_is_string(v)) {
    json_t *seed = json_object_get(SEEDS, json_string_value(v));
    return json_deep_copy(seed ? seed : v);
  }
  if (json_is_array(v)) {
    json_t *out = json_array();
    size_t i;
    json_t *e;
    json_array_foreach(v, i, e) json_array_append_new(out, expand(e));
    return out;
  }
  if (!json_is_object(v)) return json_deep_copy(v);
  if (json_object_get(v, "$repeat")) return gen_repeat(v);
  if (json_object_get(v, "$bytes")) return gen_bytes(v);
  if (json_object_get(v, "$deep")) return gen_deep(v);
  if (json_object_get(v, "$array")) return gen_array(v);
  json_t *out = json_object(), *e;
  const char *k;
  json_object_foreach((json_t *)v, k, e) json_object_set_new_nocheck(out, k, expand(e));
  return out;
}

/* ---- seeds and tokens ---- */

static json_t *seed(const char *entity, const char *text, const char *name) {
  json_error_t je;
  json_t *in = json_loads(text, 0, &je), *in2 = expand(in), *row = NULL;
  kdao_error *err = NULL;
  if (kdao_dao_insert(dao(entity), in2, 0, 0, &row, &err) != KDAO_OK) {
    fprintf(stderr, "seed %s %s: %s\n", entity, text, kdao_error_string(err));
    exit(1);
  }
  json_object_set(SEEDS, name, json_object_get(row, "id"));
  json_decref(in);
  json_decref(in2);
  return row;
}

static void seed_rows(void) {
  SEEDS = json_object();
  json_decref(seed(
      "apis", "{\"name\": \"seed-a\", \"hosts\": [\"a.com\"], \"upstream_url\": \"http://a.com\"}",
      "@api"));
  json_decref(seed(
      "apis", "{\"name\": \"seed-b\", \"hosts\": [\"b.com\"], \"upstream_url\": \"http://b.com\"}",
      "@api2"));
  json_decref(seed(
      "apis", "{\"name\": \"seed-c\", \"hosts\": [\"c.com\"], \"upstream_url\": \"http://c.com\"}",
      "@api3"));
  json_decref(
      seed("consumers", "{\"username\": \"seed-u1\", \"custom_id\": \"seed-c1\"}", "@consumer"));
  json_decref(seed("consumers", "{\"username\": \"seed-u2\"}", "@consumer2"));
  json_decref(seed("plugins", "{\"name\": \"key-auth\", \"api_id\": \"@api\"}", "@plugin"));
  json_decref(seed("plugins", "{\"name\": \"key-auth\", \"api_id\": \"@api2\"}", "@plugin2"));
  json_decref(seed("upstreams", "{\"name\": \"seed-ups.com\"}", "@upstream"));
}

/* A real token of `entity` (pages of one row), then spoilt as the case asks. */
static char *token(const char *entity, const json_t *how) {
  if (json_is_string(how)) return strdup(json_string_value(how));
  if (json_object_get(how, "$repeat")) {
    json_t *s = gen_repeat(how);
    char *t = strdup(json_string_value(s));
    json_decref(s);
    return t;
  }
  json_t *rows = NULL;
  char *next = NULL;
  kdao_error *err = NULL;
  if (kdao_dao_find_page(dao(entity), NULL, NULL, 1, &rows, &next, &err) != KDAO_OK || !next) {
    fprintf(stderr, "token %s: %s\n", entity, err ? kdao_error_string(err) : "no next page");
    exit(1);
  }
  json_decref(rows);
  size_t n = strlen(next);
  char *t = malloc(n + 2);
  strcpy(t, next);
  kdao_free(next);
  const char *kind = json_string_value(json_object_get(how, "$token"));
  if (strcmp(kind, "tamper") == 0)
    t[n / 2] = t[n / 2] == 'A' ? 'B' : 'A';
  else if (strcmp(kind, "truncate") == 0)
    t[n - (size_t)json_integer_value(json_object_get(how, "by"))] = '\0';
  else if (strcmp(kind, "half") == 0)
    t[n / 2] = '\0';
  else if (strcmp(kind, "append") == 0)
    strcat(t, "A");
  return t;
}

/* ---- one case ---- */

static long long count_rows(const char *entity) {
  long long n = -1;
  kdao_error *err = NULL;
  if (kdao_dao_count(dao(entity), NULL, &n, &err) != KDAO_OK) {
    fprintf(stderr, "count %s: %s\n", entity, kdao_error_string(err));
    kdao_error_free(err);
    return -1;
  }
  return n;
}

static int kind_of(const char *name) {
  static const char *const names[] = {"ok", "db", "unique", "foreign", "schema", "misuse"};
  for (int i = 0; i < (int)(sizeof names / sizeof *names); i++)
    if (strcmp(name, names[i]) == 0) return i;
  return -1; /* notfound: KDAO_OK with no row */
}

static void run_case(const json_t *c) {
  const char *id = json_string_value(json_object_get(c, "id"));
  const char *entity = json_string_value(json_object_get(c, "entity"));
  const char *op = json_string_value(json_object_get(c, "op"));
  const char *kind = json_string_value(json_object_get(c, "kind"));
  const char *field = json_string_value(json_object_get(c, "field"));
  const char *pending = json_string_value(json_object_get(json_object_get(c, "pending"), BACKEND));
  PENDING_ON = pending;
  if (json_object_get(c, "skip_c")) {
    SKIPPED++;
    return;
  }
  int failed_before = FAILED;
  json_t *input = expand(json_object_get(c, "input")), *pk = expand(json_object_get(c, "pk"));
  json_t *out = NULL;
  char *offset = NULL;
  kdao_error *err = NULL;
  kdao_dao *d = dao(entity);
  long long before = count_rows(entity), n = -1;
  int rc;
  if (strcmp(op, "insert") == 0) {
    rc = kdao_dao_insert(d, input, 0, 0, &out, &err);
  } else if (strcmp(op, "update") == 0 || strcmp(op, "full_update") == 0) {
    json_object_update(input, pk);
    rc = kdao_dao_update(d, input, NULL, 0, strcmp(op, "update") ? KDAO_DAO_FULL : 0, &out, &err);
  } else if (strcmp(op, "find") == 0) {
    rc = kdao_dao_find(d, pk, &out, &err);
  } else if (strcmp(op, "delete") == 0) {
    rc = kdao_dao_delete(d, pk, 0, &out, &err);
  } else if (strcmp(op, "find_all") == 0) {
    rc = kdao_dao_find_all(d, input, &out, &err);
    if (rc == KDAO_OK) n = (long long)json_array_size(out);
  } else if (strcmp(op, "count") == 0) {
    rc = kdao_dao_count(d, input, &n, &err);
  } else if (strcmp(op, "page") == 0) {
    const json_t *size = json_object_get(c, "size"), *off = json_object_get(c, "offset");
    size_t sz = json_is_string(size) ? SIZE_MAX : (size_t)json_integer_value(size);
    char *next = NULL;
    if (off) offset = token(entity, off);
    rc = kdao_dao_find_page(d, input, offset, sz, &out, &next, &err);
    if (rc == KDAO_OK) n = (long long)json_array_size(out);
    kdao_free(next);
  } else {
    failf(id, "unknown op '%s'", op);
    goto done;
  }
  int want = kind_of(kind);
  if (want < 0) { /* notfound */
    if (rc != KDAO_OK || (out && !json_is_null(out)))
      failf(id, "expected no row, got %s%s", kdao_error_kind_name(rc),
            err ? kdao_error_string(err) : " and a row");
  } else if (rc != want) {
    failf(id, "expected %s, got %s: %s", kind, rc == KDAO_OK ? "ok" : kdao_error_kind_name(rc),
          err ? kdao_error_string(err) : "");
  } else if (want == KDAO_OK) {
    json_t *rows = json_object_get(c, "rows");
    if (rows && n != json_integer_value(rows))
      failf(id, "expected %lld rows, got %lld", (long long)json_integer_value(rows), n);
  } else if (field && !json_object_get(kdao_error_fields(err), field)) {
    failf(id, "no message under '%s': %s", field, kdao_error_string(err));
  }
  long long after = count_rows(entity);
  if (after != before) failf(id, "%s rows: %lld before, %lld after", entity, before, after);
done:
  if (pending && FAILED > failed_before) {
    FAILED = failed_before;
    PENDING++;
  } else if (FAILED == failed_before) {
    PASSED++;
    if (pending) fprintf(stderr, "NOTE %s [%s]: pending '%s' but passes\n", id, BACKEND, pending);
  }
  kdao_error_free(err);
  json_decref(out);
  json_decref(input);
  json_decref(pk);
  free(offset);
}

/* ---- main ---- */

static int backend_available(void) {
  if (strcmp(BACKEND, "sqlite") == 0) return 1;
  if (strcmp(BACKEND, "postgres") == 0) return getenv("KDAO_PG_HOST") != NULL;
  if (strcmp(BACKEND, "cassandra") == 0) return getenv("KDAO_CASSANDRA_CONTACT_POINTS") != NULL;
  return 0;
}

static int open_factory(void) {
  kdao_config *cfg = NULL;
  kdao_error *err = NULL;
  if (kdao_config_new(&cfg, &err) != KDAO_OK || kdao_config_load_env(cfg, &err) != KDAO_OK ||
      kdao_config_set(cfg, "database", BACKEND, &err) != KDAO_OK)
    goto fail;
  if (strcmp(BACKEND, "sqlite") == 0) {
    char path[300];
    snprintf(path, sizeof path, "%s/kdao.db", TMPDIR_PATH);
    kdao_config_set(cfg, "sqlite_path", path, NULL);
  }
  int rc = kdao_factory_open(cfg, &F, &err);
  kdao_config_free(cfg);
  cfg = NULL;
  if (rc != KDAO_OK || kdao_factory_drop_schema(F, &err) != KDAO_OK ||
      kdao_factory_migrate(F, NULL, NULL, NULL, &err) != KDAO_OK)
    goto fail;
  return 0;
fail:
  fprintf(stderr, "bad_input: open %s: %s\n", BACKEND, kdao_error_string(err));
  kdao_error_free(err);
  kdao_config_free(cfg);
  return -1;
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: bad_input BACKEND CASES.json [CASE_ID_PREFIX]\n");
    return 2;
  }
  BACKEND = argv[1];
  const char *only = argc > 3 ? argv[3] : NULL;
  if (!backend_available()) {
    const char *req = getenv("KDAO_REQUIRE_ALL");
    bool must = req && strcmp(req, "1") == 0;
    fprintf(stderr, "bad_input: no settings for backend '%s'%s\n", BACKEND,
            must ? " (KDAO_REQUIRE_ALL=1: failing)" : ", skipped");
    return must ? 1 : 77;
  }
  json_error_t je;
  /* NUL bytes in values are part of the table (\u0000): a C caller can pass them. */
  json_t *cases = json_load_file(argv[2], JSON_ALLOW_NUL, &je);
  if (!json_is_array(cases)) {
    fprintf(stderr, "bad_input: %s:%d: %s\n", argv[2], je.line, je.text);
    return 1;
  }
  snprintf(TMPDIR_PATH, sizeof TMPDIR_PATH, "/tmp/kdao-bad-input-XXXXXX");
  if (mkdtemp(TMPDIR_PATH) == NULL || open_factory() != 0) return 1;
  seed_rows();
  size_t i;
  json_t *c;
  json_array_foreach(cases, i, c) {
    if (!only || strncmp(json_string_value(json_object_get(c, "id")), only, strlen(only)) == 0)
      run_case(c);
  }
  printf("bad_input %s: %d passed, %d failed, %d pending, %d skipped (of %zu cases)\n", BACKEND,
         PASSED, FAILED, PENDING, SKIPPED, json_array_size(cases));
  kdao_factory_drop_schema(F, NULL);
  kdao_factory_free(F);
  json_decref(SEEDS);
  json_decref(cases);
  char cmd[300];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", TMPDIR_PATH);
  if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", TMPDIR_PATH);
  return FAILED ? 1 : 0;
}
