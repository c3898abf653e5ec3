/*
 * race_suite.c — concurrent writers on every unique value and composite unique, and updates
 * racing a delete, on a real backend: exactly one insert of a value wins, every other gets
 * Kong's error for it, and the table holds exactly one such row; a row a delete reported gone
 * stays gone whatever updates ran meanwhile.
 *
 * Kong 0.10 checked these by reading before writing, so concurrent inserts of one plugin
 * stored several rows. Writers here are separate processes (`processes`) or threads of one
 * process (`threads`), each with its own factory (a factory is single-threaded). For every
 * round the parent sends every writer the same command at once, so each round is a real race
 * (a single start signal would let the first winner stay ahead).
 *
 * Usage: race_suite <backend> processes|threads [writers]. Settings come from KDAO_*
 * variables, as for dao_suite; the suite drops and migrates the configured database (tests
 * on one backend are serialised by a CTest resource lock). Exit 77 (skip) without
 * settings for the backend, unless KDAO_REQUIRE_ALL=1.
 */
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "kdao.h"

enum { ROUNDS = 50, MAX_WRITERS = 16 };

static const char *BACKEND;
static char TMPDIR_PATH[64];
static char API_ID[64], CONSUMER_ID[64];
static char RUN[32]; /* this run's tag in every value it writes */

/* A plugin that accepts consumers (the built-in ones refuse them) and any config. */
static const kdao_plugin_def RACE_PLUGIN = {.version = KDAO_DEF_VERSION, .name = "race-plugin"};

/* ---- the races ---- */

typedef enum race_kind {
  RACE_INSERT,        /* every writer inserts the same entity */
  RACE_UPDATE_DELETE, /* writer 0 deletes a row, the others update it */
} race_kind;

typedef struct race_case {
  const char *what;
  const char *dao;
  race_kind kind;
  kdao_status losers; /* the error of every insert but the winner */
} race_case;

static const race_case CASES[] = {
    {"apis.name", "apis", RACE_INSERT, KDAO_ERR_UNIQUE},
    {"consumers.username", "consumers", RACE_INSERT, KDAO_ERR_UNIQUE},
    {"consumers.custom_id", "consumers", RACE_INSERT, KDAO_ERR_UNIQUE},
    {"keyauth_credentials.key", "keyauth_credentials", RACE_INSERT, KDAO_ERR_UNIQUE},
    {"basicauth_credentials.username", "basicauth_credentials", RACE_INSERT, KDAO_ERR_UNIQUE},
    /* Kong's acl check is a schema error on `group` ("ACL group already exist ...") */
    {"acls (consumer_id, group)", "acls", RACE_INSERT, KDAO_ERR_SCHEMA},
    {"plugins (api_id, no consumer, name)", "plugins", RACE_INSERT, KDAO_ERR_UNIQUE},
    {"plugins (api_id, consumer_id, name)", "plugins", RACE_INSERT, KDAO_ERR_UNIQUE},
    {"consumers: update vs delete", "consumers", RACE_UPDATE_DELETE, KDAO_OK},
    {"plugins: update vs delete", "plugins", RACE_UPDATE_DELETE, KDAO_OK},
};
enum { NCASES = sizeof CASES / sizeof CASES[0] };

/* What every writer of insert race `c` writes in `round` (new reference). */
static json_t *race_entity(int c, int round) {
  char v[96];
  snprintf(v, sizeof v, "race-%s-%d-%d", RUN, c, round);
  switch (c) {
  case 0:
    return json_pack("{s:s,s:[s],s:s}", "name", v, "hosts", "race.com", "upstream_url",
                     "http://race.com");
  case 1: return json_pack("{s:s}", "username", v);
  case 2: return json_pack("{s:s}", "custom_id", v);
  case 3: return json_pack("{s:s,s:s}", "consumer_id", CONSUMER_ID, "key", v);
  case 4:
    return json_pack("{s:s,s:s,s:s}", "consumer_id", CONSUMER_ID, "username", v, "password", "x");
  case 5: return json_pack("{s:s,s:s}", "consumer_id", CONSUMER_ID, "group", v);
  /* one composite every round: the parent deletes the winner after checking it */
  case 6: return json_pack("{s:s,s:s}", "api_id", API_ID, "name", "race-plugin");
  case 7:
    return json_pack("{s:s,s:s,s:s}", "api_id", API_ID, "consumer_id", CONSUMER_ID, "name",
                     "race-plugin");
  default: return NULL;
  }
}

/* The filter finding the rows holding race `c`'s value of `round`. */
static json_t *race_filter(int c, int round) {
  json_t *e = race_entity(c, round);
  if (c == 4) json_object_del(e, "password"); /* stored hashed */
  return e;
}

/* The row of an update-vs-delete race, inserted by the parent before each round. */
static json_t *ud_entity(int c, int round) {
  char v[96];
  snprintf(v, sizeof v, "ud-%s-%d-%d", RUN, c, round);
  if (strcmp(CASES[c].dao, "consumers") == 0) return json_pack("{s:s}", "username", v);
  return json_pack("{s:s,s:s}", "api_id", API_ID, "name", "race-plugin");
}

/* What updater `w` sets (a value of its own, so updaters never clash with each other). */
static json_t *ud_update(int c, int round, int w, const char *id) {
  char v[96];
  snprintf(v, sizeof v, "ud-%s-%d-%d-%d", RUN, c, round, w);
  if (strcmp(CASES[c].dao, "consumers") == 0)
    return json_pack("{s:s,s:s}", "id", id, "custom_id", v);
  return json_pack("{s:s,s:s,s:b}", "id", id, "name", "race-plugin", "enabled", w % 2);
}

/* ---- factories ---- */

static int backend_available(void) {
  if (strcmp(BACKEND, "sqlite") == 0) return 1;
  if (strcmp(BACKEND, "postgres") == 0) return getenv("KDAO_PG_HOST") != NULL;
  if (strcmp(BACKEND, "cassandra") == 0) return getenv("KDAO_CASSANDRA_CONTACT_POINTS") != NULL;
  return 0;
}

static kdao_factory *open_factory(void) {
  kdao_config *cfg = NULL;
  kdao_error *err = NULL;
  kdao_factory *f = NULL;
  int rc = kdao_config_new(&cfg, &err);
  if (rc == KDAO_OK) rc = kdao_config_load_env(cfg, &err);
  if (rc == KDAO_OK) rc = kdao_config_set(cfg, "database", BACKEND, &err);
  if (rc == KDAO_OK && strcmp(BACKEND, "sqlite") == 0) {
    char path[128];
    snprintf(path, sizeof path, "%s/kdao.db", TMPDIR_PATH);
    rc = kdao_config_set(cfg, "sqlite_path", path, &err);
  }
  if (rc == KDAO_OK) rc = kdao_factory_new(cfg, &f, &err);
  if (rc == KDAO_OK) rc = kdao_factory_register_plugin(f, &RACE_PLUGIN, &err);
  if (rc == KDAO_OK) rc = kdao_factory_connect(f, &err);
  if (rc != KDAO_OK) {
    fprintf(stderr, "open: %s\n", kdao_error_string(err));
    kdao_factory_free(f);
    f = NULL;
  }
  kdao_error_free(err);
  kdao_config_free(cfg);
  return f;
}

/* Inserts `entity` (stolen) into `dao`; the stored row, or NULL after printing why. */
static json_t *insert(kdao_factory *f, const char *dao, json_t *entity) {
  json_t *row = NULL;
  kdao_error *err = NULL;
  if (kdao_dao_insert(kdao_factory_dao(f, dao), entity, 0, KDAO_DAO_QUIET, &row, &err) != KDAO_OK)
    fprintf(stderr, "insert into %s: %s\n", dao, kdao_error_string(err));
  kdao_error_free(err);
  json_decref(entity);
  return row;
}

/*
 * Migrates the database, then stores the api and consumer the races refer to. Every value
 * carries the run's tag, so a run needs no empty tables: dropping or truncating them costs
 * Cassandra seconds a table.
 */
static int setup(void) {
  kdao_factory *f = open_factory();
  if (f == NULL) return -1;
  kdao_error *err = NULL;
  int rc = kdao_factory_migrate(f, NULL, NULL, NULL, &err);
  if (rc != KDAO_OK) {
    fprintf(stderr, "setup: %s\n", kdao_error_string(err));
    kdao_error_free(err);
    kdao_factory_free(f);
    return -1;
  }
  char name[64];
  snprintf(name, sizeof name, "race-%s", RUN);
  json_t *api = insert(f, "apis",
                       json_pack("{s:s,s:[s],s:s}", "name", name, "hosts", "race-api.com",
                                 "upstream_url", "http://race-api.com"));
  json_t *consumer = insert(f, "consumers", json_pack("{s:s}", "username", name));
  rc = api && consumer ? 0 : -1;
  if (rc == 0) {
    snprintf(API_ID, sizeof API_ID, "%s", json_string_value(json_object_get(api, "id")));
    snprintf(CONSUMER_ID, sizeof CONSUMER_ID, "%s",
             json_string_value(json_object_get(consumer, "id")));
  }
  json_decref(api);
  json_decref(consumer);
  kdao_factory_free(f);
  return rc;
}

/* ---- writers ---- */

/* One round's command: which race, which round, and the row an update-vs-delete race targets. */
typedef struct command {
  int8_t race; /* -1: stop */
  int8_t round;
  char id[40];
} command;

/* Outcomes a writer reports, one byte each. */
#define WON 'W'     /* the insert or update stored its row; the delete returned the row */
#define LOST 'L'    /* the insert got the race's expected error */
#define NOTHING 'N' /* the update or delete found no row */
#define FAILED 'E'  /* anything else (printed) */
#define READY 'R'

typedef struct writer {
  int index;
  int go[2], out[2];
  pid_t pid;
  pthread_t thread;
} writer;

static char run_command(kdao_factory *f, const command *cmd, int w) {
  const race_case *rc = &CASES[cmd->race];
  kdao_dao *dao = kdao_factory_dao(f, rc->dao);
  kdao_error *err = NULL;
  json_t *row = NULL;
  char outcome = FAILED;
  if (rc->kind == RACE_INSERT) {
    json_t *entity = race_entity(cmd->race, cmd->round);
    kdao_status st = kdao_dao_insert(dao, entity, 0, KDAO_DAO_QUIET, &row, &err);
    json_decref(entity);
    if (st == KDAO_OK)
      outcome = WON;
    else if (st == rc->losers)
      outcome = LOST;
  } else if (w == 0) {
    json_t *pk = strcmp(rc->dao, "plugins") == 0
                     ? json_pack("{s:s,s:s}", "id", cmd->id, "name", "race-plugin")
                     : json_pack("{s:s}", "id", cmd->id);
    if (kdao_dao_delete(dao, pk, KDAO_DAO_QUIET, &row, &err) == KDAO_OK)
      outcome = row ? WON : NOTHING;
    json_decref(pk);
  } else {
    json_t *values = ud_update(cmd->race, cmd->round, w, cmd->id);
    if (kdao_dao_update(dao, values, NULL, 0, KDAO_DAO_QUIET, &row, &err) == KDAO_OK)
      outcome = row ? WON : NOTHING;
    json_decref(values);
  }
  if (outcome == FAILED)
    fprintf(stderr, "writer %d, %s, round %d: %s\n", w, rc->what, cmd->round,
            err ? kdao_error_string(err) : "no error");
  kdao_error_free(err);
  json_decref(row);
  return outcome;
}

/* A writer's life: its own factory, warmed up, then one outcome per command until stopped. */
static void writer_run(writer *wr) {
  kdao_factory *f = open_factory();
  char b = f ? READY : FAILED;
  /* Warm up (connections, prepared statements, table metadata) so that every race starts
     at the command and not at whichever writer finished connecting first. */
  for (size_t c = 0; f && c < NCASES; c++) {
    long long n;
    if (kdao_dao_count(kdao_factory_dao(f, CASES[c].dao), NULL, &n, NULL) != KDAO_OK) b = FAILED;
  }
  if (write(wr->out[1], &b, 1) != 1 || b != READY) goto done;
  command cmd;
  while (read(wr->go[0], &cmd, sizeof cmd) == (ssize_t)sizeof cmd && cmd.race >= 0) {
    b = run_command(f, &cmd, wr->index);
    if (write(wr->out[1], &b, 1) != 1) break;
  }
done:
  kdao_factory_free(f);
}

static void *writer_thread(void *arg) {
  writer_run(arg);
  return NULL;
}

static int start_writers(writer *ws, int n, bool threads) {
  for (int i = 0; i < n; i++) {
    ws[i].index = i;
    if (pipe(ws[i].go) != 0 || pipe(ws[i].out) != 0) return -1;
    if (threads) {
      if (pthread_create(&ws[i].thread, NULL, writer_thread, &ws[i]) != 0) return -1;
      continue;
    }
    fflush(NULL);
    if ((ws[i].pid = fork()) < 0) return -1;
    if (ws[i].pid == 0) {
      writer_run(&ws[i]);
      _exit(0);
    }
  }
  for (int i = 0; i < n; i++) {
    char b = 0;
    if (read(ws[i].out[0], &b, 1) != 1 || b != READY) return -1;
  }
  return 0;
}

static void stop_writers(writer *ws, int n, bool threads) {
  command stop = {.race = -1};
  for (int i = 0; i < n; i++)
    if (write(ws[i].go[1], &stop, sizeof stop) != (ssize_t)sizeof stop) perror("stop");
  for (int i = 0; i < n; i++) {
    if (threads)
      pthread_join(ws[i].thread, NULL);
    else
      waitpid(ws[i].pid, NULL, 0);
    close(ws[i].go[0]);
    close(ws[i].go[1]);
    close(ws[i].out[0]);
    close(ws[i].out[1]);
  }
}

/* Sends `cmd` to every writer at once and collects their outcomes. */
static int race(writer *ws, int n, const command *cmd, char *outcomes) {
  for (int i = 0; i < n; i++)
    if (write(ws[i].go[1], cmd, sizeof *cmd) != (ssize_t)sizeof *cmd) return -1;
  for (int i = 0; i < n; i++)
    if (read(ws[i].out[0], &outcomes[i], 1) != 1) return -1;
  return 0;
}

/* ---- checks ---- */

static int failures;

#define CHECK(cond, ...)                     \
  do {                                       \
    if (!(cond)) {                           \
      fprintf(stderr, "FAIL: " __VA_ARGS__); \
      fputc('\n', stderr);                   \
      failures++;                            \
    }                                        \
  } while (0)

/* The rows holding race `c`'s value of `round` (plugins: the composite exactly). */
static json_t *race_rows(kdao_factory *f, int c, int round) {
  json_t *flt = race_filter(c, round), *rows = NULL, *kept = json_array();
  kdao_error *err = NULL;
  if (kdao_dao_find_all(kdao_factory_dao(f, CASES[c].dao), flt, &rows, &err) != KDAO_OK)
    fprintf(stderr, "find_all: %s\n", kdao_error_string(err));
  kdao_error_free(err);
  size_t i;
  json_t *row;
  json_array_foreach(rows, i, row) {
    if (c == 6 && json_object_get(row, "consumer_id")) continue;
    json_array_append(kept, row);
  }
  json_decref(rows);
  json_decref(flt);
  return kept;
}

static void delete_rows(kdao_factory *f, const char *dao, json_t *rows) {
  size_t i;
  json_t *row;
  json_array_foreach(rows, i, row) {
    json_t *pk = strcmp(dao, "plugins") == 0
                     ? json_pack("{s:O,s:O}", "id", json_object_get(row, "id"), "name",
                                 json_object_get(row, "name"))
                     : json_pack("{s:O}", "id", json_object_get(row, "id"));
    kdao_error *err = NULL;
    if (kdao_dao_delete(kdao_factory_dao(f, dao), pk, KDAO_DAO_QUIET, NULL, &err) != KDAO_OK)
      fprintf(stderr, "delete: %s\n", kdao_error_string(err));
    kdao_error_free(err);
    json_decref(pk);
  }
}

static void insert_round(kdao_factory *f, writer *ws, int n, int c, int round) {
  command cmd = {.race = (int8_t)c, .round = (int8_t)round};
  char out[MAX_WRITERS];
  if (race(ws, n, &cmd, out) != 0) {
    CHECK(false, "%s round %d: a writer went away", CASES[c].what, round);
    return;
  }
  int won = 0, lost = 0;
  for (int i = 0; i < n; i++) {
    won += out[i] == WON;
    lost += out[i] == LOST;
  }
  json_t *rows = race_rows(f, c, round);
  CHECK(won == 1 && lost == n - 1, "%s round %d: %d won, %d lost, %d failed", CASES[c].what, round,
        won, lost, n - won - lost);
  CHECK(json_array_size(rows) == 1, "%s round %d: %zu rows stored", CASES[c].what, round,
        json_array_size(rows));
  if (strcmp(CASES[c].dao, "plugins") == 0) delete_rows(f, "plugins", rows);
  json_decref(rows);
}

static void update_delete_round(kdao_factory *f, writer *ws, int n, int c, int round) {
  json_t *row = insert(f, CASES[c].dao, ud_entity(c, round));
  if (row == NULL) {
    CHECK(false, "%s round %d: cannot insert the row", CASES[c].what, round);
    return;
  }
  command cmd = {.race = (int8_t)c, .round = (int8_t)round};
  snprintf(cmd.id, sizeof cmd.id, "%s", json_string_value(json_object_get(row, "id")));
  char out[MAX_WRITERS];
  if (race(ws, n, &cmd, out) != 0) {
    CHECK(false, "%s round %d: a writer went away", CASES[c].what, round);
    json_decref(row);
    return;
  }
  /* The row existed and one writer deleted it: the delete must have found it. */
  CHECK(out[0] == WON, "%s round %d: the delete reported %c", CASES[c].what, round, out[0]);
  for (int i = 1; i < n; i++)
    CHECK(out[i] == WON || out[i] == NOTHING, "%s round %d: update %d reported %c", CASES[c].what,
          round, i, out[i]);
  json_t *pk = strcmp(CASES[c].dao, "plugins") == 0
                   ? json_pack("{s:s,s:s}", "id", cmd.id, "name", "race-plugin")
                   : json_pack("{s:s}", "id", cmd.id);
  json_t *found = NULL;
  kdao_error *err = NULL;
  if (kdao_dao_find(kdao_factory_dao(f, CASES[c].dao), pk, &found, &err) != KDAO_OK)
    CHECK(false, "find: %s", kdao_error_string(err));
  CHECK(found == NULL, "%s round %d: the row outlived its delete", CASES[c].what, round);
  if (found) {
    json_t *rows = json_pack("[O]", found);
    delete_rows(f, CASES[c].dao, rows);
    json_decref(rows);
  }
  kdao_error_free(err);
  json_decref(found);
  json_decref(pk);
  json_decref(row);
}

int main(int argc, char **argv) {
  BACKEND = argc > 1 ? argv[1] : "sqlite";
  bool threads = argc > 2 && strcmp(argv[2], "threads") == 0;
  int n = argc > 3 ? atoi(argv[3]) : 8;
  if (n < 2 || n > MAX_WRITERS) n = 8;
  if (!backend_available()) {
    const char *req = getenv("KDAO_REQUIRE_ALL");
    fprintf(stderr, "race_suite: no settings for backend '%s'%s\n", BACKEND,
            req && strcmp(req, "1") == 0 ? " (KDAO_REQUIRE_ALL=1: failing)" : ", skipped");
    return req && strcmp(req, "1") == 0 ? 1 : 77;
  }
  signal(SIGPIPE, SIG_IGN);
  snprintf(RUN, sizeof RUN, "%ld-%ld", (long)getpid(), (long)time(NULL));
  snprintf(TMPDIR_PATH, sizeof TMPDIR_PATH, "/tmp/kdao-race-XXXXXX");
  if (mkdtemp(TMPDIR_PATH) == NULL) return 1;
  writer ws[MAX_WRITERS] = {0};
  kdao_factory *f = NULL;
  if (setup() != 0 || start_writers(ws, n, threads) != 0 || (f = open_factory()) == NULL) {
    fprintf(stderr, "race_suite: setup failed\n");
    return 1;
  }
  setvbuf(stdout, NULL, _IOLBF, 0);
  for (int c = 0; c < NCASES; c++) {
    int before = failures;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int round = 0; round < ROUNDS; round++) {
      if (CASES[c].kind == RACE_INSERT)
        insert_round(f, ws, n, c, round);
      else
        update_delete_round(f, ws, n, c, round);
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    printf("%s %s %s, %d writers, %d rounds: %s (%.1f s)\n", BACKEND,
           threads ? "threads" : "processes", CASES[c].what, n, ROUNDS,
           failures == before ? "ok" : "FAILED",
           (double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9);
  }
  stop_writers(ws, n, threads);
  kdao_factory_free(f);
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", TMPDIR_PATH);
  if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", TMPDIR_PATH);
  return failures ? 1 : 0;
}
