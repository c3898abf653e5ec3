/*
 * cluster_check.c — kdao on a Cassandra cluster losing nodes (run by scripts/test-cluster.sh).
 *
 *   cassandra_cluster_check <operations> <kill-after> <kill-one-command> <kill-another-command>
 *
 * Creates its keyspace with replication factor 3, then runs <operations> rounds of: insert an
 * API, find it by id, update it, find it by name; every 25 rounds a count and a page. After
 * round <kill-after> it runs <kill-one-command> through the shell (the script kills one node
 * with SIGKILL there) and carries on: every operation must still succeed. Consistency is
 * KDAO_CLUSTER_CONSISTENCY (default QUORUM, which two of three replicas satisfy). At ONE a
 * read may reach a replica that has not applied a write yet: reads of fresh data are then
 * retried for up to 2 s and the retries counted (at QUORUM they must not happen).
 *
 * Then every acknowledged insert is read back (none may be lost), the latency of every call is
 * reported (p50, p99, max; overall and from the kill on), and <kill-another-command> leaves one
 * node of three: at QUORUM the first call must fail at once with a clear Unavailable error
 * (its latency is reported). Settings come from KDAO_* variables (contact points, port,
 * cassandra_timeout); keyspace and factor are set here.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "kdao.h"

static int failures, stale_reads;

/* Latency of every call, in ms, in call order. */
static double *lat;
static size_t nlat, lat_cap;
static char **acked; /* ids of acknowledged inserts */
static size_t nacked;

static double now_s(void);

static void record(double ms) {
  if (nlat == lat_cap) {
    lat_cap = lat_cap ? lat_cap * 2 : 1024;
    lat = realloc(lat, lat_cap * sizeof *lat);
    if (!lat) abort();
  }
  lat[nlat++] = ms;
}

/* Times one call (an expression). */
static double t_call;
#define TIMED(call) (t_call = now_s(), (call), record((now_s() - t_call) * 1000.0))

/* Retries `read` (which returns true when it saw what it expects) for up to 2 s. */
#define EVENTUALLY(read)                                \
  do {                                                  \
    for (int try_ = 0; !(read) && try_ < 100; try_++) { \
      stale_reads++;                                    \
      usleep(20 * 1000);                                \
    }                                                   \
  } while (0)

/* Takes the error's address: the call that sets it is an argument too, and the order in which
 * arguments are evaluated is unspecified. */
static void check(int rc, kdao_error **err, const char *what, int round) {
  if (rc == KDAO_OK) return;
  fprintf(stderr, "round %d: %s: %s\n", round, what, kdao_error_string(*err));
  failures++;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static void report(const char *what, const double *v, size_t n) {
  if (n == 0) return;
  double *s = malloc(n * sizeof *s);
  if (!s) abort();
  memcpy(s, v, n * sizeof *s);
  qsort(s, n, sizeof *s, cmp_double);
  printf("cluster check: latency %s: %zu calls, p50 %.1f ms, p99 %.1f ms, max %.1f ms\n", what, n,
         s[n / 2], s[(size_t)((double)(n - 1) * 0.99)], s[n - 1]);
  free(s);
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
  TIMED(check(kdao_dao_insert(apis, in, 0, KDAO_DAO_QUIET, &row, &err), &err, "insert", i));
  ops++;
  if (row) {
    acked = realloc(acked, (nacked + 1) * sizeof *acked);
    if (!acked) abort();
    acked[nacked++] = strdup(json_string_value(json_object_get(row, "id")));
  }
  kdao_error_free(err), err = NULL;
  if (row) {
    json_t *pk = json_pack("{sO}", "id", json_object_get(row, "id"));
    EVENTUALLY((json_decref(found), found = NULL,
                TIMED(check(kdao_dao_find(apis, pk, &found, &err), &err, "find", i)),
                kdao_error_free(err), err = NULL, found != NULL));
    ops++;
    if (found == NULL || !json_equal(found, row)) {
      fprintf(stderr, "round %d: find did not return the inserted row\n", i);
      failures++;
    }
    json_t *vals = json_pack("{sOsi}", "id", json_object_get(row, "id"), "retries", 3);
    TIMED(
        check(kdao_dao_update(apis, vals, NULL, 0, KDAO_DAO_QUIET, &upd, &err), &err, "update", i));
    ops++;
    kdao_error_free(err), err = NULL;
    if (upd == NULL || json_integer_value(json_object_get(upd, "retries")) != 3) {
      fprintf(stderr, "round %d: update did not apply\n", i);
      failures++;
    }
    json_t *flt = json_pack("{ss}", "name", name);
    EVENTUALLY((json_decref(rows), rows = NULL,
                TIMED(check(kdao_dao_find_all(apis, flt, &rows, &err), &err, "find_all", i)),
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
    EVENTUALLY((TIMED(check(kdao_dao_count(apis, NULL, &n, &err), &err, "count", i)),
                kdao_error_free(err), err = NULL, n == (long long)nacked));
    ops++;
    if (n != (long long)nacked) {
      fprintf(stderr, "round %d: count %lld, want %zu\n", i, n, nacked);
      failures++;
    }
    json_t *page = NULL;
    char *next = NULL;
    TIMED(check(kdao_dao_find_page(apis, NULL, NULL, 10, &page, &next, &err), &err, "page", i));
    ops++;
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

/* Every acknowledged insert must be there, read at the run's consistency. */
static int lost_rows(kdao_factory *f) {
  kdao_dao *apis = kdao_factory_dao(f, "apis");
  int lost = 0;
  for (size_t i = 0; i < nacked; i++) {
    json_t *pk = json_pack("{ss}", "id", acked[i]), *row = NULL;
    kdao_error *err = NULL;
    if (kdao_dao_find(apis, pk, &row, &err) != KDAO_OK || row == NULL) {
      fprintf(stderr, "acknowledged row %s not found%s%s\n", acked[i], err ? ": " : "",
              err ? kdao_error_string(err) : "");
      lost++;
    }
    kdao_error_free(err);
    json_decref(row);
    json_decref(pk);
  }
  return lost;
}

/* With one node of three left, QUORUM cannot be met: the first call must say so, at once. */
static int first_call_unavailable(kdao_factory *f, const char *consistency) {
  kdao_dao *apis = kdao_factory_dao(f, "apis");
  json_t *in = json_pack("{sss[s]ss}", "name", "after-two-kills", "hosts", "b.example.com",
                         "upstream_url", "http://up.example.com"),
         *row = NULL;
  kdao_error *err = NULL;
  double t0 = now_s();
  int rc = kdao_dao_insert(apis, in, 0, KDAO_DAO_QUIET, &row, &err);
  double ms = (now_s() - t0) * 1000.0;
  int bad = 0;
  if (strcmp(consistency, "ONE") == 0) {
    printf("cluster check: two nodes down at ONE: insert %s in %.1f ms\n",
           rc == KDAO_OK ? "succeeded" : kdao_error_string(err), ms);
    bad = rc != KDAO_OK;
  } else {
    const char *m = rc == KDAO_OK ? "(succeeded)" : kdao_error_string(err);
    printf("cluster check: two nodes down at %s: first call answered in %.1f ms: %s\n", consistency,
           ms, m);
    bad = rc == KDAO_OK || strstr(m, "Unavailable") == NULL || ms > 1000.0;
    if (bad) fprintf(stderr, "the first call with two nodes down is not a fast Unavailable\n");
  }
  kdao_error_free(err);
  json_decref(row);
  json_decref(in);
  return bad;
}

int main(int argc, char **argv) {
  if (argc != 5) {
    fprintf(stderr, "usage: %s <operations> <kill-after> <kill-one> <kill-another>\n", argv[0]);
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
  const char *consistency = getenv("KDAO_CLUSTER_CONSISTENCY");
  if (!consistency || !*consistency) consistency = "QUORUM";
  if (rc == KDAO_OK) rc = kdao_config_set(cfg, "cassandra_consistency", consistency, &err);
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
  size_t calls_before = 0;
  for (int i = 0; i < rounds; i++) {
    ops += round_trip(f, i);
    if (i + 1 == kill_after) {
      ops_before = ops;
      calls_before = nlat;
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
  printf("cluster check: %d operations at %s with a node down in %.1fs; %d failures, %d reads"
         " retried until the replica caught up\n",
         ops - ops_before, consistency, t1 - (t_kill ? t_kill : t0), failures, stale_reads);
  if (strcmp(consistency, "ONE") != 0 && stale_reads > 0) {
    fprintf(stderr, "stale reads at %s\n", consistency);
    failures++;
  }
  report("overall", lat, nlat);
  report("from the kill on", lat + calls_before, nlat - calls_before);
  report("the 50 calls after the kill", lat + calls_before,
         nlat - calls_before < 50 ? nlat - calls_before : 50);
  int lost = lost_rows(f);
  printf("cluster check: %zu acknowledged inserts, %d lost\n", nacked, lost);
  failures += lost;
  if (system(argv[4]) != 0) {
    fprintf(stderr, "command failed: %s\n", argv[4]);
    failures++;
  }
  failures += first_call_unavailable(f, consistency);
  kdao_factory_free(f);
  for (size_t i = 0; i < nacked; i++) free(acked[i]);
  free(acked);
  free(lat);
  return failures ? 1 : 0;
}
