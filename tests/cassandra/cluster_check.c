/*
 * cluster_check.c — kdao on a Cassandra cluster losing a node (run by scripts/test-cluster.sh).
 *
 *   cassandra_cluster_check <operations> <kill-after> <command>
 *
 * Creates its keyspace with replication factor 3, then runs <operations> rounds of: insert an
 * API, find it by id, update it, find it by name; every 25 rounds a count and a page. After
 * round <kill-after> it runs <command> through the shell (the script kills one node there) and
 * carries on. Every operation runs at consistency ONE, so each must keep succeeding with a
 * node gone; any failure is printed and makes the exit status 1. At ONE a read may reach a
 * replica that has not applied a write yet: reads of fresh data are retried for up to 2 s
 * (eventual consistency is the promise) and the retries are counted and reported. Settings come from KDAO_*
 * variables (contact points, port); keyspace, factor and consistency are set here.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "kdao.h"

static int failures, stale_reads;

/* Retries `read` (which returns true when it saw what it expects) for up to 2 s. */
#define EVENTUALLY(read)                                \
  do {                                                  \
    for (int try_ = 0; !(read) && try_ < 100; try_++) { \
      stale_reads++;                                    \
      usleep(20 * 1000);                                \
    }                                                   \
  } while (0)

static void check(int rc, kdao_error *err, const char *what, int round) {
  if (rc == KDAO_OK) return;
  fprintf(stderr, "round %d: %s: %s\n", round, what, kdao_error_string(err));
  failures++;
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* One round; returns the number of operations it made. */
static int round_trip(kdao_factory *f, int i) {
  kdao_dao *apis = kdao_factory_dao(f, "apis");
  char name[32];
  snprintf(name, sizeof name, "node-loss-%04d", i);
  json_t *in = json_pack("{sss[s]ss}", "name", name, "hosts", "a.example.com", "upstream_url",
                         "http://up.example.com"),
         *row = NULL, *found = NULL, *upd = NULL, *rows = NULL;
  kdao_error *err = NULL;
  int ops = 0;
  check(kdao_dao_insert(apis, in, 0, KDAO_DAO_QUIET, &row, &err), err, "insert", i), ops++;
  kdao_error_free(err), err = NULL;
  if (row) {
    json_t *pk = json_pack("{sO}", "id", json_object_get(row, "id"));
    EVENTUALLY((json_decref(found), found = NULL,
                check(kdao_dao_find(apis, pk, &found, &err), err, "find", i), kdao_error_free(err),
                err = NULL, found != NULL));
    ops++;
    if (found == NULL || !json_equal(found, row)) {
      fprintf(stderr, "round %d: find did not return the inserted row\n", i);
      failures++;
    }
    json_t *vals = json_pack("{sOsi}", "id", json_object_get(row, "id"), "retries", 3);
    check(kdao_dao_update(apis, vals, NULL, 0, KDAO_DAO_QUIET, &upd, &err), err, "update", i),
        ops++;
    kdao_error_free(err), err = NULL;
    if (upd == NULL || json_integer_value(json_object_get(upd, "retries")) != 3) {
      fprintf(stderr, "round %d: update did not apply\n", i);
      failures++;
    }
    json_t *flt = json_pack("{ss}", "name", name);
    EVENTUALLY((json_decref(rows), rows = NULL,
                check(kdao_dao_find_all(apis, flt, &rows, &err), err, "find_all", i),
                kdao_error_free(err), err = NULL, json_array_size(rows) == 1));
    ops++;
    if (json_array_size(rows) != 1) {
      fprintf(stderr, "round %d: find_all by name found %zu rows\n", i, json_array_size(rows));
      failures++;
    }
    json_decref(flt);
    json_decref(vals);
    json_decref(pk);
  }
  if (i % 25 == 24) {
    long long n = -1;
    EVENTUALLY((check(kdao_dao_count(apis, NULL, &n, &err), err, "count", i), kdao_error_free(err),
                err = NULL, n == i + 1));
    ops++;
    if (n != i + 1) {
      fprintf(stderr, "round %d: count %lld, want %d\n", i, n, i + 1);
      failures++;
    }
    json_t *page = NULL;
    char *next = NULL;
    check(kdao_dao_find_page(apis, NULL, NULL, 10, &page, &next, &err), err, "page", i), ops++;
    kdao_error_free(err), err = NULL;
    json_decref(page);
    kdao_free(next);
  }
  json_decref(in);
  json_decref(row);
  json_decref(found);
  json_decref(upd);
  json_decref(rows);
  return ops;
}

int main(int argc, char **argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: %s <operations> <kill-after> <command>\n", argv[0]);
    return 2;
  }
  int rounds = atoi(argv[1]), kill_after = atoi(argv[2]);
  kdao_config *cfg = NULL;
  kdao_factory *f = NULL;
  kdao_error *err = NULL;
  int rc = kdao_config_new(&cfg, &err);
  if (rc == KDAO_OK) rc = kdao_config_load_env(cfg, &err);
  if (rc == KDAO_OK) rc = kdao_config_set(cfg, "database", "cassandra", &err);
  if (rc == KDAO_OK) rc = kdao_config_set(cfg, "cassandra_keyspace", "kdao_cluster", &err);
  if (rc == KDAO_OK) rc = kdao_config_set(cfg, "cassandra_repl_factor", "3", &err);
  if (rc == KDAO_OK) rc = kdao_config_set(cfg, "cassandra_consistency", "ONE", &err);
  if (rc == KDAO_OK) rc = kdao_factory_open(cfg, &f, &err);
  if (rc == KDAO_OK) rc = kdao_factory_drop_schema(f, &err);
  if (rc == KDAO_OK) rc = kdao_factory_migrate(f, NULL, NULL, NULL, &err);
  kdao_config_free(cfg);
  if (rc != KDAO_OK) {
    fprintf(stderr, "setup: %s\n", kdao_error_string(err));
    return 1;
  }
  double t0 = now_s(), t_kill = 0;
  int ops = 0, ops_before = 0;
  for (int i = 0; i < rounds; i++) {
    ops += round_trip(f, i);
    if (i + 1 == kill_after) {
      ops_before = ops;
      t_kill = now_s();
      printf("cluster check: %d operations on 3 nodes in %.1fs; running: %s\n", ops, t_kill - t0,
             argv[3]);
      fflush(stdout);
      if (system(argv[3]) != 0) {
        fprintf(stderr, "command failed: %s\n", argv[3]);
        failures++;
      }
    }
  }
  double t1 = now_s();
  printf("cluster check: %d operations with a node down in %.1fs; %d failures, %d reads"
         " retried until the replica caught up\n",
         ops - ops_before, t1 - (t_kill ? t_kill : t0), failures, stale_reads);
  kdao_factory_free(f);
  return failures ? 1 : 0;
}
