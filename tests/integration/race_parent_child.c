/*
 * race_parent_child.c — children inserted while their parent is deleted must not survive it:
 *
 *   race_parent_child sqlite | postgres | cassandra [consistency]
 *
 * Each round the test process inserts an api and a consumer, then releases five worker
 * processes at the same instant (each has its own factory and connections): one inserts a
 * plugin on the api, one a key-auth and one a basic-auth credential on the consumer, one
 * deletes the api and one the consumer. Afterwards neither parent exists, so no child of
 * theirs may exist either: every insert either failed with a foreign error or its row was
 * cascaded away. In rounds where the deleters listen for events, a child that was inserted
 * must appear among their DELETED events where kdao does the cascade (Cassandra). The key and username of every child must be free
 * again: a new credential holding them is inserted on a parent that stays.
 *
 * Without a guard, a backend that checks the parent and then writes (Kong's Cassandra DAO)
 * leaves orphans in most rounds; native foreign keys (SQLite, PostgreSQL) leave none.
 *
 * Settings come from KDAO_* variables, as for dao_suite. SQLite works in a temporary
 * directory, Cassandra in a keyspace of its own (<cassandra_keyspace>_pc, or _pc_<level> with
 * a consistency argument), PostgreSQL in KDAO_PG_DATABASE (CTest keeps this test and
 * integration_postgres apart). Exit 77 (skip) without settings, unless KDAO_REQUIRE_ALL=1.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "kdao.h"

enum { ROUNDS = 50, WORKERS = 5, MAX_EVENTS = 8 };
enum { W_PLUGIN, W_KEYAUTH, W_BASICAUTH, W_DEL_API, W_DEL_CONSUMER };

static const char *BACKEND, *CONSISTENCY;
static char TMPDIR_PATH[256], KEYSPACE[96];

/* Test process → worker: what to race on in this round. */
typedef struct order {
  int round, announce;
  char api[37], consumer[37];
} order;

/*
 * Worker → test process: 'W' inserted (id = its row), 'F' foreign error, 'D' deleted (ids =
 * the children named by its DELETED events), 'E' anything else.
 */
typedef struct report {
  char verdict;
  int nids;
  char ids[MAX_EVENTS][37];
} report;

static bool backend_available(void) {
  if (strcmp(BACKEND, "sqlite") == 0) return true;
  if (strcmp(BACKEND, "postgres") == 0) return getenv("KDAO_PG_HOST") != NULL;
  if (strcmp(BACKEND, "cassandra") == 0) return getenv("KDAO_CASSANDRA_CONTACT_POINTS") != NULL;
  return false;
}

static kdao_factory *open_factory(void) {
  kdao_config *cfg = NULL;
  kdao_factory *f = NULL;
  kdao_error *err = NULL;
  int rc = kdao_config_new(&cfg, &err);
  if (rc == KDAO_OK) rc = kdao_config_load_env(cfg, &err);
  if (rc == KDAO_OK) rc = kdao_config_set(cfg, "database", BACKEND, &err);
  if (rc == KDAO_OK && strcmp(BACKEND, "sqlite") == 0) {
    char path[300];
    snprintf(path, sizeof path, "%s/kdao.db", TMPDIR_PATH);
    rc = kdao_config_set(cfg, "sqlite_path", path, &err);
  }
  if (rc == KDAO_OK && strcmp(BACKEND, "cassandra") == 0)
    rc = kdao_config_set(cfg, "cassandra_keyspace", KEYSPACE, &err);
  if (rc == KDAO_OK && CONSISTENCY)
    rc = kdao_config_set(cfg, "cassandra_consistency", CONSISTENCY, &err);
  if (rc == KDAO_OK) rc = kdao_factory_open(cfg, &f, &err);
  if (rc != KDAO_OK) fprintf(stderr, "open: %s\n", kdao_error_string(err));
  kdao_error_free(err);
  kdao_config_free(cfg);
  return f;
}

/* ---- workers ---- */

static report *EVENTS_TO; /* the deleter's report, filled by its event callback */

static void on_event(const char *collection, kdao_event_type type, const json_t *entity,
                     const json_t *old, void *ud) {
  (void)old;
  (void)ud;
  if (type != KDAO_EVENT_DELETED || EVENTS_TO == NULL || EVENTS_TO->nids >= MAX_EVENTS) return;
  if (strcmp(collection, "apis") == 0 || strcmp(collection, "consumers") == 0) return;
  const char *id = json_string_value(json_object_get(entity, "id"));
  if (id) snprintf(EVENTS_TO->ids[EVENTS_TO->nids++], 37, "%s", id);
}

static json_t *child_body(int role, const order *o) {
  char key[48];
  switch (role) {
  case W_PLUGIN: return json_pack("{s:s, s:s}", "name", "key-auth", "api_id", o->api);
  case W_KEYAUTH:
    snprintf(key, sizeof key, "race-key-%d", o->round);
    return json_pack("{s:s, s:s}", "consumer_id", o->consumer, "key", key);
  default:
    snprintf(key, sizeof key, "race-user-%d", o->round);
    return json_pack("{s:s, s:s, s:s}", "consumer_id", o->consumer, "username", key, "password",
                     "pw");
  }
}

static const char *const CHILD_DAO[] = {"plugins", "keyauth_credentials", "basicauth_credentials"};

static void act(kdao_factory *f, int role, const order *o, report *rep) {
  kdao_error *err = NULL;
  json_t *row = NULL;
  if (role >= W_DEL_API) {
    bool api = role == W_DEL_API;
    json_t *pk = json_pack("{s:s}", "id", api ? o->api : o->consumer);
    EVENTS_TO = rep;
    kdao_factory_on_event(f, o->announce ? on_event : NULL, NULL);
    int rc = kdao_dao_delete(kdao_factory_dao(f, api ? "apis" : "consumers"), pk, 0, &row, &err);
    EVENTS_TO = NULL;
    rep->verdict = rc == KDAO_OK && row ? 'D' : 'E';
    json_decref(pk);
  } else {
    json_t *in = child_body(role, o);
    int rc = kdao_dao_insert(kdao_factory_dao(f, CHILD_DAO[role]), in, 0, 0, &row, &err);
    rep->verdict = rc == KDAO_OK ? 'W' : rc == KDAO_ERR_FOREIGN ? 'F' : 'E';
    if (rc == KDAO_OK) {
      rep->nids = 1;
      snprintf(rep->ids[0], 37, "%s", json_string_value(json_object_get(row, "id")));
    }
    json_decref(in);
  }
  if (rep->verdict == 'E')
    fprintf(stderr, "round %d, worker %d: %s\n", o->round, role,
            err ? kdao_error_string(err) : "nothing deleted");
  kdao_error_free(err);
  json_decref(row);
}

static int worker(int role, int go, int out) {
  kdao_factory *f = open_factory();
  if (f == NULL) return 2;
  /* Warm up (connections, prepared statements, table metadata) so that the race starts at
     the signal, not when the slowest worker has connected. */
  json_t *rows = NULL;
  kdao_dao_find_all(kdao_factory_dao(f, role < W_DEL_API ? CHILD_DAO[role] : "apis"), NULL, &rows,
                    NULL);
  json_decref(rows);
  order o;
  while (read(go, &o, sizeof o) == (ssize_t)sizeof o) {
    /* The deleters start a little late in some rounds, so that inserts sometimes lead. */
    if (role >= W_DEL_API && o.round % 3 != 0) {
      struct timespec ts = {0, (o.round % 3) * 1000000L};
      nanosleep(&ts, NULL);
    }
    report rep = {0};
    act(f, role, &o, &rep);
    if (write(out, &rep, sizeof rep) != (ssize_t)sizeof rep) return 2;
  }
  kdao_factory_free(f);
  return 0;
}

/* ---- the test process ---- */

static int failures;

static void check(bool ok, int round, const char *what) {
  if (ok) return;
  fprintf(stderr, "round %d: %s\n", round, what);
  failures++;
}

static json_t *insert(kdao_factory *f, const char *dao, json_t *body) {
  json_t *row = NULL;
  kdao_error *err = NULL;
  if (kdao_dao_insert(kdao_factory_dao(f, dao), body, 0, KDAO_DAO_QUIET, &row, &err) != KDAO_OK)
    fprintf(stderr, "insert %s: %s\n", dao, kdao_error_string(err));
  kdao_error_free(err);
  json_decref(body);
  return row;
}

static long long children(kdao_factory *f, const char *dao, const char *field, const char *id) {
  json_t *flt = json_pack("{s:s}", field, id);
  long long n = -1;
  kdao_error *err = NULL;
  if (kdao_dao_count(kdao_factory_dao(f, dao), flt, &n, &err) != KDAO_OK)
    fprintf(stderr, "count %s: %s\n", dao, kdao_error_string(err));
  kdao_error_free(err);
  json_decref(flt);
  return n;
}

/* By filter: the plugins' primary key is (id, name). */
static bool exists(kdao_factory *f, const char *dao, const char *id) {
  return children(f, dao, "id", id) != 0;
}

/* A credential holding the raced key (or username) goes in, then out again. */
static bool value_free(kdao_factory *f, int role, const order *raced, const char *keeper) {
  order o = *raced;
  snprintf(o.consumer, sizeof o.consumer, "%s", keeper);
  json_t *row = insert(f, CHILD_DAO[role], child_body(role, &o));
  if (row == NULL) return false;
  json_t *pk = json_pack("{s:O}", "id", json_object_get(row, "id")), *gone = NULL;
  kdao_dao_delete(kdao_factory_dao(f, CHILD_DAO[role]), pk, KDAO_DAO_QUIET, &gone, NULL);
  json_decref(gone);
  json_decref(pk);
  json_decref(row);
  return true;
}

int main(int argc, char **argv) {
  BACKEND = argc > 1 ? argv[1] : "sqlite";
  CONSISTENCY = argc > 2 ? argv[2] : NULL;
  if (!backend_available()) {
    const char *req = getenv("KDAO_REQUIRE_ALL");
    bool required = req && strcmp(req, "1") == 0;
    fprintf(stderr, "race_parent_child: no settings for backend '%s'%s\n", BACKEND,
            required ? " (KDAO_REQUIRE_ALL=1: failing)" : ", skipped");
    return required ? 1 : 77;
  }
  const char *ks = getenv("KDAO_CASSANDRA_KEYSPACE");
  snprintf(KEYSPACE, sizeof KEYSPACE, "%s_pc%s%s", ks && *ks ? ks : "kdao_test",
           CONSISTENCY ? "_" : "", CONSISTENCY ? CONSISTENCY : "");
  for (char *c = KEYSPACE; *c; c++)
    if (*c >= 'A' && *c <= 'Z') *c = (char)(*c - 'A' + 'a');
  snprintf(TMPDIR_PATH, sizeof TMPDIR_PATH, "/tmp/kdao-race-XXXXXX");
  if (mkdtemp(TMPDIR_PATH) == NULL) return 1;

  kdao_factory *f = open_factory();
  kdao_error *err = NULL;
  if (f == NULL) return 1;
  if (kdao_factory_drop_schema(f, &err) != KDAO_OK ||
      kdao_factory_migrate(f, NULL, NULL, NULL, &err) != KDAO_OK) {
    fprintf(stderr, "migrate: %s\n", kdao_error_string(err));
    return 1;
  }
  json_t *keeper = insert(f, "consumers", json_pack("{s:s}", "username", "keeper"));
  if (keeper == NULL) return 1;
  const char *keeper_id = json_string_value(json_object_get(keeper, "id"));

  int go[WORKERS][2], out[WORKERS][2];
  pid_t pid[WORKERS];
  for (int w = 0; w < WORKERS; w++) {
    if (pipe(go[w]) != 0 || pipe(out[w]) != 0 || (pid[w] = fork()) < 0) return 1;
    if (pid[w] == 0) {
      close(go[w][1]);
      close(out[w][0]);
      _exit(worker(w, go[w][0], out[w][1]));
    }
    close(go[w][0]);
    close(out[w][1]);
  }

  int won = 0, refused = 0;
  for (int r = 0; r < ROUNDS; r++) {
    order o = {.round = r, .announce = r % 2 == 0};
    char name[32];
    snprintf(name, sizeof name, "race-api-%d", r);
    json_t *api = insert(f, "apis",
                         json_pack("{s:s, s:[s], s:s}", "name", name, "hosts", "race.example",
                                   "upstream_url", "http://upstream.example"));
    snprintf(name, sizeof name, "race-consumer-%d", r);
    json_t *consumer = insert(f, "consumers", json_pack("{s:s}", "username", name));
    if (api == NULL || consumer == NULL) return 1;
    snprintf(o.api, sizeof o.api, "%s", json_string_value(json_object_get(api, "id")));
    snprintf(o.consumer, sizeof o.consumer, "%s",
             json_string_value(json_object_get(consumer, "id")));
    json_decref(api);
    json_decref(consumer);

    for (int w = 0; w < WORKERS; w++)
      if (write(go[w][1], &o, sizeof o) != (ssize_t)sizeof o) return 1;
    report rep[WORKERS];
    for (int w = 0; w < WORKERS; w++)
      if (read(out[w][0], &rep[w], sizeof rep[w]) != (ssize_t)sizeof rep[w]) {
        fprintf(stderr, "worker %d stopped in round %d\n", w, r);
        return 1;
      }

    check(rep[W_DEL_API].verdict == 'D' && rep[W_DEL_CONSUMER].verdict == 'D', r,
          "a parent delete failed");
    check(!exists(f, "apis", o.api) && !exists(f, "consumers", o.consumer), r,
          "a deleted parent is still there");
    check(children(f, "plugins", "api_id", o.api) == 0, r, "orphan plugin of the deleted api");
    check(children(f, "keyauth_credentials", "consumer_id", o.consumer) == 0, r,
          "orphan key-auth credential of the deleted consumer");
    check(children(f, "basicauth_credentials", "consumer_id", o.consumer) == 0, r,
          "orphan basic-auth credential of the deleted consumer");
    for (int w = W_PLUGIN; w <= W_BASICAUTH; w++) {
      check(rep[w].verdict == 'W' || rep[w].verdict == 'F', r, "an insert failed otherwise");
      if (rep[w].verdict != 'W') {
        refused++;
        continue;
      }
      won++;
      check(!exists(f, CHILD_DAO[w], rep[w].ids[0]), r, "an inserted child outlived its parent");
      /* Native cascades remove a child committed between the delete's read of the children
         and its DELETE without an event on PostgreSQL (READ COMMITTED): no orphan, but the
         event check holds only where kdao cascades itself. */
      if (!o.announce || strcmp(BACKEND, "cassandra") != 0) continue;
      const report *d = &rep[w == W_PLUGIN ? W_DEL_API : W_DEL_CONSUMER];
      bool announced = false;
      for (int i = 0; i < d->nids; i++) announced |= strcmp(d->ids[i], rep[w].ids[0]) == 0;
      check(announced, r, "an inserted child went without its DELETED event");
    }
    check(value_free(f, W_KEYAUTH, &o, keeper_id), r, "the raced key-auth key is still held");
    check(value_free(f, W_BASICAUTH, &o, keeper_id), r, "the raced username is still held");
  }

  for (int w = 0; w < WORKERS; w++) close(go[w][1]);
  for (int w = 0; w < WORKERS; w++) {
    int status = 0;
    waitpid(pid[w], &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      fprintf(stderr, "worker %d failed (status %d)\n", w, status);
      failures++;
    }
  }
  printf("parent/child race on %s%s%s: %d rounds, %d children inserted then cascaded, %d refused "
         "(foreign), %d failures\n",
         BACKEND, CONSISTENCY ? " at " : "", CONSISTENCY ? CONSISTENCY : "", ROUNDS, won, refused,
         failures);
  json_decref(keeper);
  kdao_factory_drop_schema(f, NULL);
  kdao_factory_free(f);
  const char *const files[] = {"kdao.db", "kdao.db-wal", "kdao.db-shm"};
  for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
    char path[300];
    snprintf(path, sizeof path, "%s/%s", TMPDIR_PATH, files[i]);
    unlink(path);
  }
  rmdir(TMPDIR_PATH);
  return failures ? 1 : 0;
}
