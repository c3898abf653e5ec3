/*
 * sqlite_bench.c — kdao's SQLite backend against raw sqlite3 prepared statements, same run,
 * same file, same pragmas.
 *
 *   bench_sqlite [N] [DIR]     N operations per measure (default 20000), DIR for the file
 *
 * The raw side is the floor: for each operation the one statement a hand-written program
 * would run on an identical table (uuid and timestamp generated like kdao's), reading the
 * columns without building JSON. The kdao side goes through the public API and so pays for
 * everything a caller gets: validation, generated values, JSON rows, expiry checks, events.
 *
 * Then the paging test: 100 000 apis paged 100 at a time, every row seen exactly once, and
 * the first page timed against the last (keyset pages cost the same wherever they are).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "kdao.h"
#include "util.h" /* kdao__uuid_v4, kdao__now_ms: the raw side generates values alike */

#define PAGING_ROWS 100000
#define PAGE_SIZE 100

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what, kdao_error *err) {
  fprintf(stderr, "bench_sqlite: %s: %s\n", what, err ? kdao_error_string(err) : "failed");
  exit(1);
}

static void raw_check(sqlite3 *db, int rc, const char *what) {
  if (rc != SQLITE_OK && rc != SQLITE_DONE && rc != SQLITE_ROW) {
    fprintf(stderr, "bench_sqlite: raw %s: %s\n", what, sqlite3_errmsg(db));
    exit(1);
  }
}

struct bench;
typedef double (*measure_fn)(struct bench *b, size_t from, size_t to);

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/*
 * Runs n operations of each side in ROUNDS alternating slices, so that load from other
 * processes falls on both sides alike. Prints the overall rates and the median of the
 * per-slice ratios, which a burst of load on one slice cannot move.
 */
#define ROUNDS 10
static void compare(struct bench *b, const char *op, size_t n, measure_fn kdao, measure_fn raw) {
  double kdao_s = 0, raw_s = 0, ratios[ROUNDS];
  for (size_t r = 0; r < ROUNDS; r++) {
    size_t from = n * r / ROUNDS, to = n * (r + 1) / ROUNDS;
    double k = kdao(b, from, to), w = raw(b, from, to);
    kdao_s += k;
    raw_s += w;
    ratios[r] = w / k;
  }
  qsort(ratios, ROUNDS, sizeof *ratios, cmp_double);
  double median = (ratios[ROUNDS / 2 - 1] + ratios[ROUNDS / 2]) / 2;
  printf("%-24s kdao %9.0f ops/s   raw %9.0f ops/s   kdao/raw %.2f (median of slices %.2f)\n", op,
         (double)n / kdao_s, (double)n / raw_s, raw_s / kdao_s, median);
}

/*
 * ---- raw side: an identical consumers table in the same file, with the same children
 * (plugins, key-auth, basic-auth and acl rows reference consumers ON DELETE CASCADE) ----
 */

typedef struct raw {
  sqlite3 *db;
  sqlite3_stmt *insert, *find, *find_ttl, *page_first, *page_next, *update, *delete;
} raw;

static sqlite3_stmt *raw_prepare(sqlite3 *db, const char *sql) {
  sqlite3_stmt *st = NULL;
  raw_check(db, sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, &st, NULL), sql);
  return st;
}

static void raw_open(raw *r, const char *path) {
  /* kdao's flags: a factory is used by one thread at a time, so no connection mutex. */
  if (sqlite3_open_v2(path, &r->db,
                      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                      NULL) != SQLITE_OK)
    die("raw open", NULL);
  sqlite3_busy_timeout(r->db, 5000);
  raw_check(r->db,
            sqlite3_exec(r->db,
                         "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;"
                         "PRAGMA foreign_keys = ON;"
                         "DROP TABLE IF EXISTS raw_plugins; DROP TABLE IF EXISTS raw_keyauth;"
                         "DROP TABLE IF EXISTS raw_basicauth; DROP TABLE IF EXISTS raw_acls;"
                         "DROP TABLE IF EXISTS raw_consumers;"
                         "CREATE TABLE raw_consumers (id TEXT NOT NULL PRIMARY KEY,"
                         " custom_id TEXT UNIQUE, username TEXT UNIQUE, created_at INTEGER);"
                         /* consumers' children in kdao: deletes probe each (cascades) */
                         "CREATE TABLE raw_plugins (id TEXT, name TEXT, api_id TEXT,"
                         " consumer_id TEXT REFERENCES raw_consumers (id) ON DELETE CASCADE,"
                         " PRIMARY KEY (id, name));"
                         "CREATE INDEX raw_plugins_consumer ON raw_plugins (consumer_id);"
                         "CREATE TABLE raw_keyauth (id TEXT PRIMARY KEY, consumer_id TEXT"
                         " REFERENCES raw_consumers (id) ON DELETE CASCADE, key TEXT UNIQUE);"
                         "CREATE INDEX raw_keyauth_consumer ON raw_keyauth (consumer_id);"
                         "CREATE TABLE raw_basicauth (id TEXT PRIMARY KEY, consumer_id TEXT"
                         " REFERENCES raw_consumers (id) ON DELETE CASCADE);"
                         "CREATE INDEX raw_basicauth_consumer ON raw_basicauth (consumer_id);"
                         "CREATE TABLE raw_acls (id TEXT PRIMARY KEY, consumer_id TEXT"
                         " REFERENCES raw_consumers (id) ON DELETE CASCADE);"
                         "CREATE INDEX raw_acls_consumer ON raw_acls (consumer_id)",
                         NULL, NULL, NULL),
            "schema");
  r->insert = raw_prepare(r->db, "INSERT INTO raw_consumers (id, custom_id, username,"
                                 " created_at) VALUES (?1, ?2, ?3, ?4)");
  r->find = raw_prepare(r->db, "SELECT created_at, custom_id, id, username FROM"
                               " raw_consumers WHERE id = ?1");
  /* The same find with kdao's expiry filter: what hiding expired rows costs by itself. */
  r->find_ttl = raw_prepare(r->db, "SELECT created_at, custom_id, id, username FROM"
                                   " raw_consumers WHERE id = ?1 AND NOT EXISTS (SELECT 1"
                                   " FROM ttls WHERE table_name = 'raw_consumers' AND"
                                   " primary_key_value = raw_consumers.id AND"
                                   " expire_at <= ?2)");
  r->page_first = raw_prepare(r->db, "SELECT created_at, custom_id, id, username FROM"
                                     " raw_consumers ORDER BY id LIMIT ?1");
  r->page_next = raw_prepare(r->db, "SELECT created_at, custom_id, id, username FROM"
                                    " raw_consumers WHERE id > ?2 ORDER BY id LIMIT ?1");
  r->update = raw_prepare(r->db, "UPDATE raw_consumers SET username = ?2 WHERE id = ?1");
  r->delete = raw_prepare(r->db, "DELETE FROM raw_consumers WHERE id = ?1");
}

static void raw_close(raw *r) {
  sqlite3_finalize(r->insert);
  sqlite3_finalize(r->find);
  sqlite3_finalize(r->find_ttl);
  sqlite3_finalize(r->page_first);
  sqlite3_finalize(r->page_next);
  sqlite3_finalize(r->update);
  sqlite3_finalize(r->delete);
  sqlite3_close(r->db);
}

/* Steps to the end, touching every column as a reader would; returns the rows seen. */
static size_t raw_run(raw *r, sqlite3_stmt *st, char *last_id, size_t last_size) {
  size_t rows = 0;
  int rc;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    volatile long long created = sqlite3_column_int64(st, 0);
    (void)created;
    (void)sqlite3_column_text(st, 1);
    const char *id = (const char *)sqlite3_column_text(st, 2);
    (void)sqlite3_column_text(st, 3);
    if (last_id) snprintf(last_id, last_size, "%s", id);
    rows++;
  }
  raw_check(r->db, rc, "step");
  sqlite3_reset(st);
  return rows;
}

/* ---- the measures ---- */

typedef struct bench {
  size_t n;
  kdao_factory *f;
  kdao_dao *consumers;
  raw r;
  char (*kdao_ids)[37];
  char (*raw_ids)[37];
} bench;

static double kdao_insert(bench *b, size_t from, size_t to) {
  double t = now_s();
  for (size_t i = from; i < to; i++) {
    char name[32], custom[32];
    snprintf(name, sizeof name, "user%zu", i);
    snprintf(custom, sizeof custom, "c%zu", i);
    json_t *e = json_pack("{s:s, s:s}", "username", name, "custom_id", custom);
    json_t *row = NULL;
    kdao_error *err = NULL;
    if (kdao_dao_insert(b->consumers, e, 0, 0, &row, &err) != KDAO_OK) die("insert", err);
    snprintf(b->kdao_ids[i], 37, "%s", json_string_value(json_object_get(row, "id")));
    json_decref(row);
    json_decref(e);
  }
  return now_s() - t;
}

static double raw_insert(bench *b, size_t from, size_t to) {
  double t = now_s();
  for (size_t i = from; i < to; i++) {
    char name[32], custom[32];
    snprintf(name, sizeof name, "user%zu", i);
    snprintf(custom, sizeof custom, "c%zu", i);
    kdao__uuid_v4(b->raw_ids[i]);
    sqlite3_stmt *st = b->r.insert;
    sqlite3_bind_text(st, 1, b->raw_ids[i], -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, custom, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, name, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, kdao__now_ms());
    raw_check(b->r.db, sqlite3_step(st), "insert");
    sqlite3_reset(st);
  }
  return now_s() - t;
}

/* Finds in a scattered order (a stride coprime with n) so the cache is not flattered. */
static size_t scatter(size_t i, size_t n) { return (i * 7919) % n; }

static double kdao_find(bench *b, size_t from, size_t to) {
  double t = now_s();
  for (size_t i = from; i < to; i++) {
    json_t *pk = json_pack("{s:s}", "id", b->kdao_ids[scatter(i, b->n)]);
    json_t *row = NULL;
    kdao_error *err = NULL;
    if (kdao_dao_find(b->consumers, pk, &row, &err) != KDAO_OK || !row) die("find", err);
    json_decref(row);
    json_decref(pk);
  }
  return now_s() - t;
}

static double raw_find_with(bench *b, sqlite3_stmt *st, size_t from, size_t to) {
  double t = now_s();
  for (size_t i = from; i < to; i++) {
    sqlite3_bind_text(st, 1, b->raw_ids[scatter(i, b->n)], -1, SQLITE_STATIC);
    if (sqlite3_bind_parameter_count(st) > 1) sqlite3_bind_int64(st, 2, kdao__now_ms());
    if (raw_run(&b->r, st, NULL, 0) != 1) die("raw find: row missing", NULL);
  }
  return now_s() - t;
}

static double raw_find(bench *b, size_t from, size_t to) {
  return raw_find_with(b, b->r.find, from, to);
}

static double raw_find_ttl(bench *b, size_t from, size_t to) {
  return raw_find_with(b, b->r.find_ttl, from, to);
}

/* Pages of 100 through the whole table, again and again until n pages were read. */
static double kdao_list(bench *b, size_t from, size_t to) {
  double t = now_s();
  char *offset = NULL;
  for (size_t i = from; i < to; i++) {
    json_t *rows = NULL;
    char *next = NULL;
    kdao_error *err = NULL;
    if (kdao_dao_find_page(b->consumers, NULL, offset, PAGE_SIZE, &rows, &next, &err))
      die("find_page", err);
    json_decref(rows);
    kdao_free(offset);
    offset = next;
  }
  kdao_free(offset);
  return now_s() - t;
}

static double raw_list(bench *b, size_t from, size_t to) {
  double t = now_s();
  char last[64] = "";
  for (size_t i = from; i < to; i++) {
    sqlite3_stmt *st = last[0] ? b->r.page_next : b->r.page_first;
    sqlite3_bind_int(st, 1, PAGE_SIZE + 1);
    if (last[0]) sqlite3_bind_text(st, 2, last, -1, SQLITE_TRANSIENT);
    size_t rows = raw_run(&b->r, st, last, sizeof last);
    if (rows <= PAGE_SIZE) last[0] = '\0'; /* last page: start over */
  }
  return now_s() - t;
}

static double kdao_update(bench *b, size_t from, size_t to) {
  double t = now_s();
  for (size_t i = from; i < to; i++) {
    char name[32];
    snprintf(name, sizeof name, "renamed%zu", i);
    json_t *v = json_pack("{s:s, s:s}", "id", b->kdao_ids[i], "username", name);
    json_t *row = NULL;
    kdao_error *err = NULL;
    if (kdao_dao_update(b->consumers, v, NULL, 0, 0, &row, &err) != KDAO_OK || !row)
      die("update", err);
    json_decref(row);
    json_decref(v);
  }
  return now_s() - t;
}

static double raw_update(bench *b, size_t from, size_t to) {
  double t = now_s();
  for (size_t i = from; i < to; i++) {
    char name[32];
    snprintf(name, sizeof name, "renamed%zu", i);
    sqlite3_bind_text(b->r.update, 1, b->raw_ids[i], -1, SQLITE_STATIC);
    sqlite3_bind_text(b->r.update, 2, name, -1, SQLITE_STATIC);
    raw_check(b->r.db, sqlite3_step(b->r.update), "update");
    sqlite3_reset(b->r.update);
  }
  return now_s() - t;
}

static double kdao_delete(bench *b, size_t from, size_t to) {
  double t = now_s();
  for (size_t i = from; i < to; i++) {
    json_t *pk = json_pack("{s:s}", "id", b->kdao_ids[i]);
    json_t *row = NULL;
    kdao_error *err = NULL;
    if (kdao_dao_delete(b->consumers, pk, 0, &row, &err) != KDAO_OK || !row) die("delete", err);
    json_decref(row);
    json_decref(pk);
  }
  return now_s() - t;
}

static double raw_delete(bench *b, size_t from, size_t to) {
  double t = now_s();
  for (size_t i = from; i < to; i++) {
    sqlite3_bind_text(b->r.delete, 1, b->raw_ids[i], -1, SQLITE_STATIC);
    raw_check(b->r.db, sqlite3_step(b->r.delete), "delete");
    sqlite3_reset(b->r.delete);
  }
  return now_s() - t;
}

/* ---- paging: every row exactly once, first page vs last page ---- */

static int cmp_id(const void *a, const void *b) { return strcmp(a, b); }

static void insert_apis(kdao_dao *apis, char (*ids)[37], size_t total) {
  for (size_t done = 0; done < total;) {
    json_t *batch = json_array();
    size_t n = total - done < 1000 ? total - done : 1000;
    for (size_t i = 0; i < n; i++) {
      char name[32];
      snprintf(name, sizeof name, "api%zu", done + i);
      json_array_append_new(batch, json_pack("{s:s, s:s, s:[s]}", "name", name, "upstream_url",
                                             "http://upstream.example", "hosts", "example.com"));
    }
    json_t *rows = NULL;
    kdao_error *err = NULL;
    if (kdao_dao_insert_many(apis, batch, KDAO_DAO_QUIET, &rows, &err) != KDAO_OK)
      die("insert_many apis", err);
    for (size_t i = 0; i < n; i++)
      snprintf(ids[done + i], 37, "%s",
               json_string_value(json_object_get(json_array_get(rows, i), "id")));
    json_decref(rows);
    json_decref(batch);
    done += n;
  }
}

static void paging_test(kdao_factory *f) {
  kdao_dao *apis = kdao_factory_dao(f, "apis");
  char(*ids)[37] = calloc(PAGING_ROWS, 37);
  char(*seen)[37] = calloc(PAGING_ROWS + PAGE_SIZE, 37);
  if (!apis || !ids || !seen) die("paging setup", NULL);
  double t = now_s();
  insert_apis(apis, ids, PAGING_ROWS);
  printf("paging: inserted %d apis (insert_many, batches of 1000) in %.2f s\n", PAGING_ROWS,
         now_s() - t);

  size_t nseen = 0, pages = 0;
  double first = 0, last = 0, all = 0;
  /* Pass 0 checks every row comes once (and warms the cache); pass 1 is timed. */
  for (int pass = 0; pass < 2; pass++) {
    char *offset = NULL;
    pages = 0;
    all = now_s();
    do {
      json_t *rows = NULL;
      char *next = NULL;
      kdao_error *err = NULL;
      double t0 = now_s();
      if (kdao_dao_find_page(apis, NULL, offset, PAGE_SIZE, &rows, &next, &err) != KDAO_OK)
        die("find_page apis", err);
      double dt = now_s() - t0;
      if (pages++ == 0) first = dt;
      last = dt;
      size_t i;
      json_t *row;
      json_array_foreach(rows, i, row) {
        if (pass > 0) break;
        if (nseen == PAGING_ROWS + PAGE_SIZE) die("paging: more rows than inserted", NULL);
        snprintf(seen[nseen++], 37, "%s", json_string_value(json_object_get(row, "id")));
      }
      json_decref(rows);
      kdao_free(offset);
      offset = next;
    } while (offset);
    all = now_s() - all;
  }

  /* Exactly once: the ids seen, sorted, equal the ids inserted, sorted. */
  qsort(ids, PAGING_ROWS, 37, cmp_id);
  qsort(seen, nseen, 37, cmp_id);
  bool ok = nseen == PAGING_ROWS;
  for (size_t i = 0; ok && i < nseen; i++) ok = strcmp(ids[i], seen[i]) == 0;
  printf("paging: %zu pages of %d, %zu rows, each row exactly once: %s\n", pages, PAGE_SIZE, nseen,
         ok ? "yes" : "NO");
  printf("paging: first page %.3f ms, last page %.3f ms, all pages %.2f s (%.0f rows/s)\n",
         first * 1e3, last * 1e3, all, (double)nseen / all);
  free(ids);
  free(seen);
  if (!ok) exit(1);
}

/* ---- main ---- */

static kdao_factory *open_factory(const char *path) {
  kdao_config *cfg = NULL;
  kdao_factory *f = NULL;
  kdao_error *err = NULL;
  if (kdao_config_new(&cfg, &err) || kdao_config_set(cfg, "database", "sqlite", &err) ||
      kdao_config_set(cfg, "sqlite_path", path, &err) || kdao_factory_open(cfg, &f, &err) ||
      kdao_factory_drop_schema(f, &err) || kdao_factory_migrate(f, NULL, NULL, NULL, &err))
    die("factory", err);
  kdao_config_free(cfg);
  return f;
}

int main(int argc, char **argv) {
  bench b = {.n = argc > 1 ? strtoul(argv[1], NULL, 10) : 20000};
  const char *dir = argc > 2 ? argv[2] : "/tmp";
  if (b.n < PAGE_SIZE * 2) {
    fprintf(stderr, "usage: bench_sqlite [N >= %d] [DIR]\n", PAGE_SIZE * 2);
    return 2;
  }
  char path[512];
  snprintf(path, sizeof path, "%s/kdao_bench_%ld.db", dir, (long)getpid());
  b.f = open_factory(path);
  b.consumers = kdao_factory_dao(b.f, "consumers");
  raw_open(&b.r, path);
  b.kdao_ids = calloc(b.n, 37);
  b.raw_ids = calloc(b.n, 37);
  if (!b.consumers || !b.kdao_ids || !b.raw_ids) die("setup", NULL);

  printf("sqlite %s, N = %zu, file %s (WAL, synchronous=NORMAL)\n", sqlite3_libversion(), b.n,
         path);
  compare(&b, "insert", b.n, kdao_insert, raw_insert);
  compare(&b, "find by pk", b.n, kdao_find, raw_find);
  compare(&b, "(raw find + ttl filter)", b.n, raw_find_ttl, raw_find);
  compare(&b, "list (page of 100)", b.n / 10, kdao_list, raw_list);
  compare(&b, "update", b.n, kdao_update, raw_update);
  compare(&b, "delete", b.n, kdao_delete, raw_delete);

  paging_test(b.f);

  raw_close(&b.r);
  kdao_factory_free(b.f);
  free(b.kdao_ids);
  free(b.raw_ids);
  static const char *const suffixes[] = {"", "-wal", "-shm"};
  for (size_t i = 0; i < sizeof suffixes / sizeof *suffixes; i++) {
    char file[600];
    snprintf(file, sizeof file, "%s%s", path, suffixes[i]);
    unlink(file);
  }
  return 0;
}
