/*
 * pg_test.h — what the PostgreSQL tests share: the skip rule, a raw libpq connection for
 * looking behind kdao's back, throw-away databases, and factories opened on them.
 *
 * The server comes from scripts/postgres.sh (KDAO_PG_* in the environment). Without it the
 * tests skip (exit 77), unless KDAO_REQUIRE_ALL=1 makes that a failure. Each test program
 * works in its own database, created here, so the programs can run in parallel with each
 * other and with the integration suite (which uses KDAO_PG_DATABASE itself).
 */
#ifndef KDAO_PG_TEST_H
#define KDAO_PG_TEST_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <libpq-fe.h>

#include "kdao.h"

/* Exits 77 (skip) when no server is configured, or fails when everything is required. */
static inline void pgt_require_server(void) {
  if (getenv("KDAO_PG_HOST")) return;
  const char *all = getenv("KDAO_REQUIRE_ALL");
  if (all && strcmp(all, "1") == 0) {
    fprintf(stderr, "KDAO_PG_HOST is not set but KDAO_REQUIRE_ALL=1\n");
    exit(1);
  }
  fprintf(stderr, "skipped: no PostgreSQL configured (run scripts/postgres.sh start)\n");
  exit(77);
}

static inline const char *pgt_env(const char *name, const char *fallback) {
  const char *v = getenv(name);
  return v && *v ? v : fallback;
}

static inline void pgt_quiet(void *ud, const char *message) {
  (void)ud;
  (void)message;
}

/* A raw connection to `db` (NULL: KDAO_PG_DATABASE). Fails the test when impossible. */
static inline PGconn *pgt_connect(const char *db) {
  const char *keys[] = {"host", "port", "user", "password", "dbname", NULL};
  const char *vals[] = {pgt_env("KDAO_PG_HOST", "127.0.0.1"),
                        pgt_env("KDAO_PG_PORT", "5432"),
                        pgt_env("KDAO_PG_USER", "kong"),
                        pgt_env("KDAO_PG_PASSWORD", ""),
                        db ? db : pgt_env("KDAO_PG_DATABASE", "kong"),
                        NULL};
  PGconn *c = PQconnectdbParams(keys, vals, 0);
  if (PQstatus(c) != CONNECTION_OK) fail_msg("connect: %s", PQerrorMessage(c));
  PQsetNoticeProcessor(c, pgt_quiet, NULL);
  return c;
}

/* Runs `sql` (no parameters) and returns its result; fails the test on error. */
static inline PGresult *pgt_exec(PGconn *c, const char *sql) {
  PGresult *r = PQexec(c, sql);
  ExecStatusType st = PQresultStatus(r);
  if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)
    fail_msg("%s\n  failed: %s", sql, PQerrorMessage(c));
  return r;
}

/* The single value of a one-row, one-column query, as a malloc()ed string (NULL for NULL). */
static inline char *pgt_value(PGconn *c, const char *fmt, ...) {
  char sql[2048];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(sql, sizeof sql, fmt, ap);
  va_end(ap);
  PGresult *r = pgt_exec(c, sql);
  if (PQntuples(r) != 1) fail_msg("%s\n  returned %d rows", sql, PQntuples(r));
  char *v = PQgetisnull(r, 0, 0) ? NULL : strdup(PQgetvalue(r, 0, 0));
  PQclear(r);
  return v;
}

/* Creates database `name` afresh (dropping a leftover of an earlier run). */
static inline void pgt_fresh_database(const char *name) {
  PGconn *c = pgt_connect(NULL);
  char sql[256];
  snprintf(sql, sizeof sql, "DROP DATABASE IF EXISTS \"%s\" WITH (FORCE)", name);
  PQclear(pgt_exec(c, sql));
  snprintf(sql, sizeof sql, "CREATE DATABASE \"%s\" ENCODING 'UTF8' TEMPLATE template0", name);
  PQclear(pgt_exec(c, sql));
  PQfinish(c);
}

static inline void pgt_drop_database(const char *name) {
  PGconn *c = pgt_connect(NULL);
  char sql[256];
  snprintf(sql, sizeof sql, "DROP DATABASE IF EXISTS \"%s\" WITH (FORCE)", name);
  PQclear(pgt_exec(c, sql));
  PQfinish(c);
}

/* A configuration for the test server, database `db`. */
static inline kdao_config *pgt_config(const char *db) {
  kdao_config *cfg = NULL;
  kdao_error *err = NULL;
  if (kdao_config_new(&cfg, &err) != KDAO_OK || kdao_config_load_env(cfg, &err) != KDAO_OK ||
      kdao_config_set(cfg, "database", "postgres", &err) != KDAO_OK ||
      (db && kdao_config_set(cfg, "pg_database", db, &err) != KDAO_OK))
    fail_msg("config: %s", kdao_error_string(err));
  return cfg;
}

/* A connected factory on database `db`, migrated from scratch. */
static inline kdao_factory *pgt_factory(const char *db) {
  kdao_config *cfg = pgt_config(db);
  kdao_factory *f = NULL;
  kdao_error *err = NULL;
  if (kdao_factory_open(cfg, &f, &err) != KDAO_OK) fail_msg("open: %s", kdao_error_string(err));
  kdao_config_free(cfg);
  if (kdao_factory_drop_schema(f, &err) != KDAO_OK ||
      kdao_factory_migrate(f, NULL, NULL, NULL, &err) != KDAO_OK)
    fail_msg("migrate: %s", kdao_error_string(err));
  return f;
}

static inline json_t *pgt_json(const char *text) {
  json_error_t e;
  json_t *v = json_loads(text, JSON_DECODE_ANY, &e);
  if (v == NULL) fail_msg("bad JSON in test: %s: %s", text, e.text);
  return v;
}

/* Inserts `text` into `entity` (with `ttl`), returning the stored row; fails on error. */
static inline json_t *pgt_insert(kdao_factory *f, const char *entity, const char *text, int ttl) {
  json_t *in = pgt_json(text), *row = NULL;
  kdao_error *err = NULL;
  if (kdao_dao_insert(kdao_factory_dao(f, entity), in, ttl, KDAO_DAO_QUIET, &row, &err) != KDAO_OK)
    fail_msg("insert %s %s: %s", entity, text, kdao_error_string(err));
  json_decref(in);
  return row;
}

static inline json_t *pgt_find(kdao_factory *f, const char *entity, const char *field,
                               const char *value) {
  json_t *pk = json_pack("{ss}", field, value), *row = NULL;
  kdao_error *err = NULL;
  if (kdao_dao_find(kdao_factory_dao(f, entity), pk, &row, &err) != KDAO_OK)
    fail_msg("find %s: %s", entity, kdao_error_string(err));
  json_decref(pk);
  return row;
}

static inline const char *pgt_str(const json_t *row, const char *key) {
  json_t *v = json_object_get(row, key);
  if (!json_is_string(v)) fail_msg("%s is not a string in the row", key);
  return json_string_value(v);
}

#endif
