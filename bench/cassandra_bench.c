/*
 * cassandra_bench.c — kdao's Cassandra backend through the C API: insert, find by id,
 * partial update, paging through the table, delete; each over N rows of `apis`.
 *
 *   bench_cassandra [N]      N rows (default 1000)
 *
 * Connection from KDAO_CASSANDRA_CONTACT_POINTS / KDAO_CASSANDRA_PORT; it works in its own
 * keyspace, kdao_bench, dropped and migrated afresh, and leaves the apis table empty for
 * bench/cassandra_bench.py, which runs the same operations with the DataStax driver
 * (scripts/bench-cassandra.sh runs both and prints ratios). Output: one line per operation,
 * "<op> <ops per second>".
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "kdao.h"

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void kdie(const char *what, kdao_error *err) {
  fprintf(stderr, "bench_cassandra: %s: %s\n", what, kdao_error_string(err));
  exit(1);
}

static void report(const char *op, size_t n, double seconds) {
  printf("%s %.1f\n", op, (double)n / seconds);
  fflush(stdout);
}

int main(int argc, char **argv) {
  size_t n = argc > 1 ? (size_t)strtoul(argv[1], NULL, 10) : 1000;
  if (n == 0) n = 1000;
  kdao_config *cfg = NULL;
  kdao_factory *f = NULL;
  kdao_error *err = NULL;
  if (kdao_config_new(&cfg, &err) != KDAO_OK || kdao_config_load_env(cfg, &err) != KDAO_OK ||
      kdao_config_set(cfg, "database", "cassandra", &err) != KDAO_OK ||
      kdao_config_set(cfg, "cassandra_keyspace", "kdao_bench", &err) != KDAO_OK ||
      kdao_factory_open(cfg, &f, &err) != KDAO_OK)
    kdie("open", err);
  kdao_config_free(cfg);
  if (kdao_factory_drop_schema(f, &err) != KDAO_OK ||
      kdao_factory_migrate(f, NULL, NULL, NULL, &err) != KDAO_OK)
    kdie("migrate", err);
  kdao_dao *apis = kdao_factory_dao(f, "apis");
  json_t *ids = json_array();

  double t = now_s();
  for (size_t i = 0; i < n; i++) {
    char name[32];
    snprintf(name, sizeof name, "bench-%06zu", i);
    json_t *in = json_pack("{sss[s]ss}", "name", name, "hosts", "bench.example.com", "upstream_url",
                           "http://up.example.com"),
           *row = NULL;
    if (kdao_dao_insert(apis, in, 0, KDAO_DAO_QUIET, &row, &err) != KDAO_OK) kdie("insert", err);
    json_array_append(ids, json_object_get(row, "id"));
    json_decref(row);
    json_decref(in);
  }
  report("insert", n, now_s() - t);

  t = now_s();
  for (size_t i = 0; i < n; i++) {
    json_t *pk = json_pack("{sO}", "id", json_array_get(ids, i)), *row = NULL;
    if (kdao_dao_find(apis, pk, &row, &err) != KDAO_OK || row == NULL) kdie("find", err);
    json_decref(row);
    json_decref(pk);
  }
  report("find", n, now_s() - t);

  t = now_s();
  for (size_t i = 0; i < n; i++) {
    json_t *vals = json_pack("{sOsi}", "id", json_array_get(ids, i), "retries", 3), *row = NULL;
    if (kdao_dao_update(apis, vals, NULL, 0, KDAO_DAO_QUIET, &row, &err) != KDAO_OK || row == NULL)
      kdie("update", err);
    json_decref(row);
    json_decref(vals);
  }
  report("update", n, now_s() - t);

  /* paging: rows per second through pages of 100 */
  t = now_s();
  size_t seen = 0;
  char *offset = NULL;
  do {
    json_t *rows = NULL;
    char *next = NULL;
    if (kdao_dao_find_page(apis, NULL, offset, 100, &rows, &next, &err) != KDAO_OK)
      kdie("page", err);
    seen += json_array_size(rows);
    json_decref(rows);
    kdao_free(offset);
    offset = next;
  } while (offset);
  if (seen != n) fprintf(stderr, "bench_cassandra: paged %zu rows of %zu\n", seen, n);
  report("page_rows", seen, now_s() - t);

  t = now_s();
  for (size_t i = 0; i < n; i++) {
    json_t *pk = json_pack("{sO}", "id", json_array_get(ids, i)), *row = NULL;
    if (kdao_dao_delete(apis, pk, KDAO_DAO_QUIET, &row, &err) != KDAO_OK || row == NULL)
      kdie("delete", err);
    json_decref(row);
    json_decref(pk);
  }
  report("delete", n, now_s() - t);

  json_decref(ids);
  kdao_factory_free(f);
  return 0;
}
