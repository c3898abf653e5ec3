/*
 * pg_bench.c — kdao's PostgreSQL backend against raw libpq prepared statements, on the
 * same server, table and data, in one run.
 *
 *   bench_pg [N]      N operations per measurement (default 5000; bulk: N rows)
 *
 * Connection from KDAO_PG_* (scripts/postgres.sh env). It works in its own database,
 * kdao_bench, created afresh. The raw side is the floor a hand-written libpq program
 * reaches: prepared statements, one round trip each, no validation, no row decoding into
 * JSON, and for bulk inserts the whole batch in one pipeline. Ratios are kdao's throughput
 * over raw's (1.00 = as fast as raw libpq); "kdao us" and "raw us" are the client CPU
 * microseconds per operation (this process: kdao + libpq, or libpq alone).
 */
#include <libpq-fe.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kdao.h"

static kdao_factory *F;
static kdao_dao *D;
static PGconn *RAW;
static size_t N = 5000;

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what, const char *why) {
  fprintf(stderr, "bench_pg: %s: %s\n", what, why);
  exit(1);
}

static void kdie(const char *what, kdao_error *err) { die(what, kdao_error_string(err)); }

static void quiet(void *ud, const char *msg) {
  (void)ud;
  (void)msg;
}

static const char *env(const char *k, const char *d) {
  const char *v = getenv(k);
  return v && *v ? v : d;
}

static PGconn *raw_connect(const char *db) {
  const char *keys[] = {"host", "port", "user", "password", "dbname", NULL};
  const char *vals[] = {env("KDAO_PG_HOST", "127.0.0.1"),
                        env("KDAO_PG_PORT", "5432"),
                        env("KDAO_PG_USER", "kong"),
                        env("KDAO_PG_PASSWORD", ""),
                        db,
                        NULL};
  PGconn *c = PQconnectdbParams(keys, vals, 0);
  if (PQstatus(c) != CONNECTION_OK) die("connect", PQerrorMessage(c));
  return c;
}

static void raw_ok(PGresult *r, const char *what) {
  ExecStatusType st = PQresultStatus(r);
  if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) die(what, PQresultErrorMessage(r));
  PQclear(r);
}

static void prepare(const char *name, const char *sql) {
  raw_ok(PQprepare(RAW, name, sql, 0, NULL), name);
}

static void raw_run(const char *name, int n, const char *const *v) {
  raw_ok(PQexecPrepared(RAW, name, n, v, NULL, NULL, 0), name);
}

static void uuid(size_t i, char out[37], int side) {
  snprintf(out, 37, "%08x-0000-4000-8000-%012zx", (unsigned)side, i);
}

/* ---- kdao side ---- */

static void k_insert_as(size_t i, int side, const char *prefix) {
  char id[37], name[32];
  uuid(i, id, side);
  snprintf(name, sizeof name, "%s%zu", prefix, i);
  json_t *in = json_pack("{ss ss ss}", "id", id, "username", name, "custom_id", name);
  kdao_error *err = NULL;
  if (kdao_dao_insert(D, in, 0, KDAO_DAO_QUIET, NULL, &err) != KDAO_OK) kdie("insert", err);
  json_decref(in);
}

static void k_insert(size_t i) { k_insert_as(i, 1, "k"); }

/* More rows of kdao's own, for the second insert comparison. */
static void k_insert_more(size_t i) { k_insert_as(i, 4, "j"); }

static void k_find(size_t i) {
  char id[37];
  uuid(i, id, 1);
  json_t *pk = json_pack("{ss}", "id", id), *row = NULL;
  kdao_error *err = NULL;
  if (kdao_dao_find(D, pk, &row, &err) != KDAO_OK || row == NULL) kdie("find", err);
  json_decref(row);
  json_decref(pk);
}

static void k_find_all(size_t i) {
  char name[32];
  snprintf(name, sizeof name, "k%zu", i);
  json_t *flt = json_pack("{ss}", "username", name), *rows = NULL;
  kdao_error *err = NULL;
  if (kdao_dao_find_all(D, flt, &rows, &err) != KDAO_OK || json_array_size(rows) != 1)
    kdie("find_all", err);
  json_decref(rows);
  json_decref(flt);
}

static char *K_OFFSET;
static void k_page(size_t i) {
  (void)i;
  json_t *rows = NULL;
  char *next = NULL;
  kdao_error *err = NULL;
  if (kdao_dao_find_page(D, NULL, K_OFFSET, 100, &rows, &next, &err) != KDAO_OK) kdie("page", err);
  json_decref(rows);
  kdao_free(K_OFFSET);
  K_OFFSET = next; /* wraps to the first page after the last */
}

static void k_update(size_t i) {
  char id[37], v[32];
  uuid(i, id, 1);
  snprintf(v, sizeof v, "ku%zu", i);
  json_t *in = json_pack("{ss ss}", "id", id, "custom_id", v), *row = NULL;
  kdao_error *err = NULL;
  if (kdao_dao_update(D, in, NULL, 0, KDAO_DAO_QUIET, &row, &err) != KDAO_OK || row == NULL)
    kdie("update", err);
  json_decref(row);
  json_decref(in);
}

static void k_delete(size_t i) {
  char id[37];
  uuid(i, id, 1);
  json_t *pk = json_pack("{ss}", "id", id);
  kdao_error *err = NULL;
  if (kdao_dao_delete(D, pk, KDAO_DAO_QUIET, NULL, &err) != KDAO_OK) kdie("delete", err);
  json_decref(pk);
}

/* ---- raw side: the same statements a careful libpq program would prepare ---- */

static void r_insert(size_t i) {
  char id[37], name[32], ms[32];
  uuid(i, id, 2);
  snprintf(name, sizeof name, "r%zu", i);
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  snprintf(ms, sizeof ms, "%lld", (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000);
  const char *v[] = {id, name, name, ms};
  raw_run("ins", 4, v);
}

/* The same insert returning the stored row, as kdao's does (the server's share of the gap). */
static void r_insert_returning(size_t i) {
  char id[37], name[32], ms[32];
  uuid(i, id, 3);
  snprintf(name, sizeof name, "q%zu", i);
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  snprintf(ms, sizeof ms, "%lld", (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000);
  const char *v[] = {id, name, name, ms};
  raw_run("ins_ret", 4, v);
}

static void r_find(size_t i) {
  char id[37];
  uuid(i, id, 2);
  const char *v[] = {id};
  raw_run("find", 1, v);
}

/* The same read with the TTL visibility probe kdao adds for Kong's ttls table. */
static void r_find_ttl(size_t i) {
  char id[37];
  uuid(i, id, 2);
  const char *v[] = {id};
  raw_run("find_ttl", 1, v);
}

static void r_find_all(size_t i) {
  char name[32];
  snprintf(name, sizeof name, "r%zu", i);
  const char *v[] = {name};
  raw_run("by_name", 1, v);
}

static char R_AFTER[37] = "00000000-0000-0000-0000-000000000000";
static void r_page(size_t i) {
  (void)i;
  const char *v[] = {R_AFTER};
  PGresult *r = PQexecPrepared(RAW, "page", 1, v, NULL, NULL, 0);
  int n = PQntuples(r);
  if (n == 100)
    snprintf(R_AFTER, sizeof R_AFTER, "%s", PQgetvalue(r, n - 1, 0));
  else
    strcpy(R_AFTER, "00000000-0000-0000-0000-000000000000");
  raw_ok(r, "page");
}

static void r_update(size_t i) {
  char id[37], val[32];
  uuid(i, id, 2);
  snprintf(val, sizeof val, "ru%zu", i);
  const char *v[] = {val, id};
  raw_run("upd", 2, v);
}

static void r_delete(size_t i) {
  char id[37];
  uuid(i, id, 2);
  const char *v[] = {id};
  raw_run("del", 1, v);
}

/* ---- bulk ---- */

static json_t *bulk_rows(size_t n, size_t base) {
  json_t *rows = json_array();
  for (size_t i = 0; i < n; i++) {
    char name[32];
    snprintf(name, sizeof name, "b%zu", base + i);
    json_array_append_new(rows, json_pack("{ss}", "username", name));
  }
  return rows;
}

static double k_bulk(size_t n) {
  json_t *rows = bulk_rows(n, 0);
  kdao_error *err = NULL;
  double t = now_s();
  if (kdao_dao_insert_many(D, rows, KDAO_DAO_QUIET, NULL, &err) != KDAO_OK)
    kdie("insert_many", err);
  t = now_s() - t;
  json_decref(rows);
  return t;
}

static double r_bulk(size_t n) {
  double t = now_s();
  if (!PQenterPipelineMode(RAW)) die("pipeline", PQerrorMessage(RAW));
  for (size_t i = 0; i < n; i++) {
    char id[37], name[32];
    uuid(100000000 + i, id, 2);
    snprintf(name, sizeof name, "rb%zu", i);
    const char *v[] = {id, name, name, "1500000000000"};
    if (!PQsendQueryPrepared(RAW, "ins", 4, v, NULL, NULL, 0)) die("send", PQerrorMessage(RAW));
  }
  PQpipelineSync(RAW);
  for (size_t i = 0; i < n; i++) {
    PGresult *r = PQgetResult(RAW);
    raw_ok(r, "bulk");
    PQclear(PQgetResult(RAW));
  }
  PQclear(PQgetResult(RAW)); /* sync */
  PQexitPipelineMode(RAW);
  return now_s() - t;
}

/* ---- driver ---- */

static double cpu_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* Wall and client-CPU seconds of fn over [from, to). */
static void timed(void (*fn)(size_t), size_t from, size_t to, double *wall, double *cpu) {
  double t = now_s(), c = cpu_s();
  for (size_t i = from; i < to; i++) fn(i);
  *cpu += cpu_s() - c;
  *wall += now_s() - t;
}

enum { SLICES = 10 };

/*
 * N operations of each side in SLICES alternating slices, so that load from other
 * processes falls on both sides alike. Reports the overall ratio, the median of the
 * per-slice ratios (a burst of load on one slice cannot move it) and the client CPU per
 * operation of each side: this process's time in kdao or libpq, which the server and the
 * machine's other load barely touch — kdao's own overhead, measured directly.
 */
static void compare(const char *op, void (*kfn)(size_t), void (*rfn)(size_t), const char *goal) {
  double kw = 0, rw = 0, kc = 0, rc = 0, ratios[SLICES];
  for (size_t j = 0; j < SLICES; j++) {
    size_t from = N * j / SLICES, to = N * (j + 1) / SLICES;
    double k = 0, r = 0;
    timed(kfn, from, to, &k, &kc);
    timed(rfn, from, to, &r, &rc);
    kw += k;
    rw += r;
    ratios[j] = r / k;
  }
  qsort(ratios, SLICES, sizeof *ratios, cmp_double);
  double median = (ratios[SLICES / 2 - 1] + ratios[SLICES / 2]) / 2;
  printf("%-26s %9.0f %9.0f %6.2f %6.2f %7.1f %7.1f   %s\n", op, (double)N / kw, (double)N / rw,
         rw / kw, median, kc * 1e6 / (double)N, rc * 1e6 / (double)N, goal);
}

int main(int argc, char **argv) {
  if (argc > 1) N = (size_t)strtoul(argv[1], NULL, 10);
  if (N < SLICES) N = 5000;
  if (!getenv("KDAO_PG_HOST")) die("setup", "KDAO_PG_* not set (source scripts/postgres.sh env)");
  PGconn *admin = raw_connect(env("KDAO_PG_DATABASE", "kong"));
  PQsetNoticeProcessor(admin, quiet, NULL);
  PQclear(PQexec(admin, "DROP DATABASE IF EXISTS kdao_bench WITH (FORCE)"));
  raw_ok(PQexec(admin, "CREATE DATABASE kdao_bench"), "create database");
  PQfinish(admin);

  kdao_config *cfg = NULL;
  kdao_error *err = NULL;
  if (kdao_config_new(&cfg, &err) || kdao_config_load_env(cfg, &err) ||
      kdao_config_set(cfg, "database", "postgres", &err) ||
      kdao_config_set(cfg, "pg_database", "kdao_bench", &err) || kdao_factory_open(cfg, &F, &err) ||
      kdao_factory_migrate(F, NULL, NULL, NULL, &err))
    kdie("open", err);
  kdao_config_free(cfg);
  D = kdao_factory_dao(F, "consumers");
  RAW = raw_connect("kdao_bench");
  prepare("ins", "INSERT INTO consumers (id, username, custom_id, created_at)"
                 " VALUES ($1, $2, $3, to_timestamp($4::float8 / 1000) AT TIME ZONE 'utc')");
  const char *cols = "id, username, custom_id, (extract(epoch from created_at) * 1000)::bigint";
  char sql[512];
  snprintf(sql, sizeof sql,
           "INSERT INTO consumers (id, username, custom_id, created_at)"
           " VALUES ($1, $2, $3, to_timestamp($4::float8 / 1000) AT TIME ZONE 'utc') RETURNING %s",
           cols);
  prepare("ins_ret", sql);
  snprintf(sql, sizeof sql, "SELECT %s FROM consumers WHERE id = $1", cols);
  prepare("find", sql);
  snprintf(sql, sizeof sql,
           "SELECT %s FROM consumers t WHERE id = $1 AND NOT EXISTS (SELECT 1 FROM ttls x"
           " WHERE x.primary_key_value = t.id::text AND x.table_name = 'consumers'"
           " AND x.expire_at <= (now() AT TIME ZONE 'utc'))",
           cols);
  prepare("find_ttl", sql);
  snprintf(sql, sizeof sql, "SELECT %s FROM consumers WHERE username = $1 ORDER BY id", cols);
  prepare("by_name", sql);
  snprintf(sql, sizeof sql, "SELECT %s FROM consumers WHERE id > $1 ORDER BY id LIMIT 100", cols);
  prepare("page", sql);
  prepare("upd", "UPDATE consumers SET custom_id = $1 WHERE id = $2");
  prepare("del", "DELETE FROM consumers WHERE id = $1");

  printf("kdao vs raw libpq, PostgreSQL %d, %zu operations each in %d alternating slices\n",
         PQserverVersion(RAW), N, SLICES);
  printf("%-26s %9s %9s %6s %6s %7s %7s   %s\n", "operation", "kdao/s", "raw/s", "ratio", "median",
         "kdao us", "raw us", "goal");
  compare("insert", k_insert, r_insert, ">= 0.85");
  compare("insert (raw + RETURNING)", k_insert_more, r_insert_returning, "");
  compare("find by pk", k_find, r_find, ">= 0.90");
  compare("find by pk (raw + ttl probe)", k_find, r_find_ttl, "");
  compare("find_all by unique field", k_find_all, r_find_all, ">= 0.90");
  compare("page of 100", k_page, r_page, "");
  compare("update", k_update, r_update, "");
  compare("delete", k_delete, r_delete, "");
  double k, r;
  k = k_bulk(N), r = r_bulk(N);
  printf("%-26s %9.0f %9.0f %6.2f %6s %7s %7s   %s\n", "bulk insert (rows/s)", (double)N / k,
         (double)N / r, r / k, "", "", "", ">= 0.50 (raw pipelined)");

  kdao_free(K_OFFSET);
  kdao_factory_free(F);
  PQfinish(RAW);
  return 0;
}
