/*
 * test_unique_race.c — two processes insert the same 50 API names at the same instant, on a
 * real Cassandra: exactly one insert of each name may win, the other must get Kong's unique
 * error, and the table must end with one row per name.
 *
 * Kong 0.10 checked uniqueness by a read before the write, so both processes won most names
 * and the table ended with duplicates; kdao reserves values with lightweight transactions.
 *
 * Settings come from KDAO_* variables (scripts/test.sh exports them); the test runs in a
 * keyspace of its own (<cassandra_keyspace>_race) and drops its tables at the end. Exit 77
 * (skip) without KDAO_CASSANDRA_CONTACT_POINTS, unless KDAO_REQUIRE_ALL=1.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kdao.h"

enum { NAMES = 50, WRITERS = 2 };

static char KEYSPACE[64];

static int open_factory(kdao_factory **f) {
  kdao_config *cfg = NULL;
  kdao_error *err = NULL;
  int rc = kdao_config_new(&cfg, &err);
  if (rc == KDAO_OK) rc = kdao_config_load_env(cfg, &err);
  if (rc == KDAO_OK) rc = kdao_config_set(cfg, "database", "cassandra", &err);
  if (rc == KDAO_OK) rc = kdao_config_set(cfg, "cassandra_keyspace", KEYSPACE, &err);
  if (rc == KDAO_OK) rc = kdao_factory_open(cfg, f, &err);
  if (rc != KDAO_OK) fprintf(stderr, "open: %s\n", kdao_error_string(err));
  kdao_error_free(err);
  kdao_config_free(cfg);
  return rc;
}

/*
 * One writer: for each name, waits for the parent's signal on `go`, inserts it, and reports
 * on `out` one byte: 'W' won, 'U' lost with the expected unique error, 'E' anything else.
 * The parent signals both writers at once for every name, so each name is a real race (a
 * single start signal would let the writer that wins the first name stay ahead).
 */
static int writer(int go, int out) {
  kdao_factory *f = NULL;
  if (open_factory(&f) != KDAO_OK) return 2;
  kdao_dao *apis = kdao_factory_dao(f, "apis");
  /* Warm up (connections, prepared statements, table metadata) so that the race starts at
     the signal and not at whichever writer finished connecting first. */
  char warm[160];
  snprintf(warm, sizeof warm,
           "{\"name\": \"warm-%d\", \"hosts\": [\"w.com\"], "
           "\"upstream_url\": \"http://w.com\"}",
           (int)getpid());
  json_t *win = json_loads(warm, 0, NULL), *wrow = NULL, *gone = NULL;
  if (kdao_dao_insert(apis, win, 0, KDAO_DAO_QUIET, &wrow, NULL) != KDAO_OK) return 2;
  json_t *wpk = json_pack("{sO}", "id", json_object_get(wrow, "id"));
  if (kdao_dao_delete(apis, wpk, KDAO_DAO_QUIET, &gone, NULL) != KDAO_OK || gone == NULL) return 2;
  json_decref(win);
  json_decref(wrow);
  json_decref(wpk);
  json_decref(gone);
  for (int i = 0; i < NAMES; i++) {
    char c, verdict;
    if (read(go, &c, 1) != 1) return 2;
    char name[32], body[160], want[96];
    snprintf(name, sizeof name, "race-%02d", i);
    snprintf(body, sizeof body,
             "{\"name\": \"%s\", \"hosts\": [\"%s.com\"], "
             "\"upstream_url\": \"http://x.com\"}",
             name, name);
    snprintf(want, sizeof want, "name=already exists with value '%s'", name);
    json_t *in = json_loads(body, 0, NULL), *row = NULL;
    kdao_error *err = NULL;
    int rc = kdao_dao_insert(apis, in, 0, KDAO_DAO_QUIET, &row, &err);
    if (rc == KDAO_OK)
      verdict = 'W';
    else if (rc == KDAO_ERR_UNIQUE && strcmp(kdao_error_message(err), want) == 0)
      verdict = 'U';
    else {
      fprintf(stderr, "writer %d, %s: %s\n", (int)getpid(), name, kdao_error_string(err));
      verdict = 'E';
    }
    kdao_error_free(err);
    json_decref(row);
    json_decref(in);
    if (write(out, &verdict, 1) != 1) return 2;
  }
  kdao_factory_free(f);
  return 0;
}

/* Rows holding `name`: must be exactly one. */
static long long rows_named(kdao_factory *f, const char *name) {
  json_t *flt = json_pack("{ss}", "name", name);
  long long n = -1;
  kdao_error *err = NULL;
  if (kdao_dao_count(kdao_factory_dao(f, "apis"), flt, &n, &err) != KDAO_OK)
    fprintf(stderr, "count %s: %s\n", name, kdao_error_string(err));
  kdao_error_free(err);
  json_decref(flt);
  return n;
}

int main(void) {
  const char *cps = getenv("KDAO_CASSANDRA_CONTACT_POINTS");
  if (cps == NULL || *cps == '\0') {
    const char *req = getenv("KDAO_REQUIRE_ALL");
    bool required = req && strcmp(req, "1") == 0;
    fprintf(stderr, "test_unique_race: KDAO_CASSANDRA_CONTACT_POINTS unset%s\n",
            required ? " (KDAO_REQUIRE_ALL=1: failing)" : ", skipped");
    return required ? 1 : 77;
  }
  const char *ks = getenv("KDAO_CASSANDRA_KEYSPACE");
  snprintf(KEYSPACE, sizeof KEYSPACE, "%s_race", ks && *ks ? ks : "kdao_test");

  kdao_factory *f = NULL;
  kdao_error *err = NULL;
  if (open_factory(&f) != KDAO_OK) return 1;
  if (kdao_factory_drop_schema(f, &err) != KDAO_OK ||
      kdao_factory_migrate(f, NULL, NULL, NULL, &err) != KDAO_OK) {
    fprintf(stderr, "migrate: %s\n", kdao_error_string(err));
    return 1;
  }

  int go[WRITERS][2], out[WRITERS][2];
  pid_t pid[WRITERS];
  for (int w = 0; w < WRITERS; w++) {
    if (pipe(go[w]) != 0 || pipe(out[w]) != 0 || (pid[w] = fork()) < 0) return 1;
    if (pid[w] == 0) {
      close(go[w][1]);
      close(out[w][0]);
      _exit(writer(go[w][0], out[w][1]));
    }
    close(go[w][0]);
    close(out[w][1]);
  }
  /* Name after name: release both writers together, then collect both verdicts. */
  char verdict[WRITERS][NAMES];
  int failures = 0;
  for (int i = 0; i < NAMES; i++) {
    for (int w = 0; w < WRITERS; w++)
      if (write(go[w][1], "g", 1) != 1) return 1;
    for (int w = 0; w < WRITERS; w++)
      if (read(out[w][0], &verdict[w][i], 1) != 1) {
        fprintf(stderr, "writer %d stopped at name %d\n", w, i);
        return 1;
      }
  }
  for (int w = 0; w < WRITERS; w++) {
    int status = 0;
    waitpid(pid[w], &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      fprintf(stderr, "writer %d failed (status %d)\n", w, status);
      return 1;
    }
  }
  int wins = 0;
  for (int i = 0; i < NAMES; i++) {
    char name[32];
    snprintf(name, sizeof name, "race-%02d", i);
    int won = 0;
    for (int w = 0; w < WRITERS; w++) {
      won += verdict[w][i] == 'W';
      if (verdict[w][i] == 'E') failures++;
    }
    wins += won;
    long long rows = rows_named(f, name);
    if (won != 1 || rows != 1) {
      fprintf(stderr, "%s: %d winners, %lld rows (want 1 and 1)\n", name, won, rows);
      failures++;
    }
  }
  long long total = -1;
  if (kdao_dao_count(kdao_factory_dao(f, "apis"), NULL, &total, NULL) != KDAO_OK ||
      total != NAMES) {
    fprintf(stderr, "apis holds %lld rows, want %d\n", total, NAMES);
    failures++;
  }
  if (wins != NAMES) failures++;
  int first = 0;
  for (int i = 0; i < NAMES; i++) first += verdict[0][i] == 'W';
  printf("unique race: %d names, %d successes (writer 0: %d, writer 1: %d), %d other errors\n",
         NAMES, wins, first, wins - first, failures);
  kdao_factory_drop_schema(f, NULL);
  kdao_factory_free(f);
  return failures ? 1 : 0;
}
