/*
 * sqlite_kill.c — an SQLite database survives its writer being killed with SIGKILL at
 * random moments: after every kill PRAGMA integrity_check answers "ok", no foreign key is
 * dangling, and every row the writer acknowledged is there.
 *
 *   sqlite_kill [ROUNDS]    (default 20; a fresh database in a temporary directory)
 *
 * The writer is a forked child running the library as an application would: single inserts,
 * bulk inserts (one transaction) and credentials referencing a consumer. It writes each id
 * to a pipe only once the call returned KDAO_OK, one write(2) per line (atomic on a pipe),
 * so the parent's list is exactly what was acknowledged. SIGKILL lands anywhere: opening
 * the database, inside a transaction, between a commit and its acknowledgement.
 *
 * Exit 0 when every round holds, 1 otherwise.
 */
#include <errno.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "kdao.h"

#define MAX_DELAY_MS 250
/* Fewer acknowledged rows than this over the whole run would make the test vacuous. */
#define MIN_ACKED 50

/* The database directory: kept when a check fails, for the post-mortem. */
static const char *workdir = "";

static void die(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fputs("sqlite_kill: ", stderr);
  vfprintf(stderr, fmt, ap);
  fprintf(stderr, " (database kept in %s)\n", workdir);
  va_end(ap);
  exit(1);
}

static kdao_factory *open_factory(const char *path) {
  kdao_config *cfg = NULL;
  kdao_factory *f = NULL;
  kdao_error *err = NULL;
  if (kdao_config_new(&cfg, &err) != KDAO_OK ||
      kdao_config_set(cfg, "database", "sqlite", &err) != KDAO_OK ||
      kdao_config_set(cfg, "sqlite_path", path, &err) != KDAO_OK ||
      kdao_factory_open(cfg, &f, &err) != KDAO_OK)
    die("open %s: %s", path, kdao_error_string(err));
  kdao_config_free(cfg);
  return f;
}

/* ---- the writer (child) ---- */

static void ack(int fd, const json_t *row) {
  char line[128];
  int n = snprintf(line, sizeof line, "%s\n", json_string_value(json_object_get(row, "id")));
  if (write(fd, line, (size_t)n) != n) _exit(3);
}

static void ack_all(int fd, const json_t *rows) {
  size_t i;
  const json_t *row;
  json_array_foreach(rows, i, row) ack(fd, row);
}

/* Writes until killed; a failed call ends the child with 2, which the parent reports. */
static void writer(const char *path, int fd, unsigned seed) {
  kdao_factory *f = open_factory(path);
  kdao_dao *consumers = kdao_factory_dao(f, "consumers");
  kdao_dao *keys = kdao_factory_dao(f, "keyauth_credentials");
  kdao_error *err = NULL;
  for (unsigned long n = 0;; n++) {
    char name[64];
    snprintf(name, sizeof name, "w%u-%lu", seed, n);
    json_t *row = NULL, *rows = NULL;
    if (n % 5 == 4) {
      json_t *many = json_pack("[{ss+}{ss+}{ss+}]", "username", name, "-a", "username", name, "-b",
                               "username", name, "-c");
      if (kdao_dao_insert_many(consumers, many, KDAO_DAO_QUIET, &rows, &err) != KDAO_OK)
        die("insert_many: %s", kdao_error_string(err));
      json_decref(many);
      ack_all(fd, rows);
      json_decref(rows);
      continue;
    }
    json_t *in = json_pack("{ss}", "username", name);
    if (kdao_dao_insert(consumers, in, 0, KDAO_DAO_QUIET, &row, &err) != KDAO_OK)
      die("insert: %s", kdao_error_string(err));
    json_decref(in);
    ack(fd, row);
    if (n % 3 == 0) {
      json_t *cred = json_pack("{sOss}", "consumer_id", json_object_get(row, "id"), "key", name);
      json_t *stored = NULL;
      if (kdao_dao_insert(keys, cred, 0, KDAO_DAO_QUIET, &stored, &err) != KDAO_OK)
        die("insert key: %s", kdao_error_string(err));
      json_decref(cred);
      json_decref(stored);
    }
    json_decref(row);
  }
}

/* ---- the checks (parent) ---- */

/* One text column of the first row of `sql`, or NULL (no row); dies on an SQLite error. */
static char *sql_text(sqlite3 *db, const char *sql) {
  sqlite3_stmt *st = NULL;
  if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
    die("%s: %s", sql, sqlite3_errmsg(db));
  int rc = sqlite3_step(st);
  if (rc != SQLITE_ROW && rc != SQLITE_DONE) die("%s: %s", sql, sqlite3_errmsg(db));
  const unsigned char *t = rc == SQLITE_ROW ? sqlite3_column_text(st, 0) : NULL;
  char *out = t ? strdup((const char *)t) : NULL;
  if (t && !out) die("out of memory");
  sqlite3_finalize(st);
  return out;
}

/* A fresh connection, as the next process to open the file would make (it recovers the WAL). */
static void check_integrity(const char *path, int round) {
  sqlite3 *db = NULL;
  if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK)
    die("round %d: open %s: %s", round, path, sqlite3_errmsg(db));
  char *ic = sql_text(db, "PRAGMA integrity_check");
  if (!ic || strcmp(ic, "ok") != 0) die("round %d: integrity_check: %s", round, ic ? ic : "?");
  free(ic);
  char *fk = sql_text(db, "SELECT \"table\" || ' rowid ' || rowid FROM pragma_foreign_key_check");
  if (fk) die("round %d: dangling foreign key: %s", round, fk);
  sqlite3_close(db);
}

typedef struct idlist {
  char **v;
  size_t n, cap;
} idlist;

static void idlist_add(idlist *l, const char *id, size_t len) {
  if (l->n == l->cap) {
    l->cap = l->cap ? 2 * l->cap : 256;
    if (!(l->v = realloc(l->v, l->cap * sizeof *l->v))) die("out of memory");
  }
  if (!(l->v[l->n++] = strndup(id, len))) die("out of memory");
}

/* Adds each complete line of what the writer sent; the pipe only ever holds whole lines. */
static void collect(int fd, idlist *acked) {
  static char buf[1 << 16];
  size_t len = 0;
  for (;;) {
    ssize_t r = read(fd, buf + len, sizeof buf - len);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) die("read: %s", strerror(errno));
    if (r == 0) break;
    len += (size_t)r;
    char *start = buf, *nl;
    while ((nl = memchr(start, '\n', len - (size_t)(start - buf)))) {
      idlist_add(acked, start, (size_t)(nl - start));
      start = nl + 1;
    }
    len -= (size_t)(start - buf);
    memmove(buf, start, len);
  }
  if (len) die("the writer left a partial line: '%.*s'", (int)len, buf);
}

static void check_acked(const char *path, const idlist *acked, int round) {
  kdao_factory *f = open_factory(path);
  kdao_dao *consumers = kdao_factory_dao(f, "consumers");
  for (size_t i = 0; i < acked->n; i++) {
    json_t *pk = json_pack("{ss}", "id", acked->v[i]), *row = NULL;
    kdao_error *err = NULL;
    if (kdao_dao_find(consumers, pk, &row, &err) != KDAO_OK)
      die("round %d: find %s: %s", round, acked->v[i], kdao_error_string(err));
    if (!row) die("round %d: acknowledged consumer %s is missing", round, acked->v[i]);
    json_decref(row);
    json_decref(pk);
  }
  kdao_factory_free(f);
}

static void sleep_ms(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
    ;
}

int main(int argc, char **argv) {
  int rounds = argc > 1 ? atoi(argv[1]) : 20;
  if (rounds < 1) die("usage: sqlite_kill [ROUNDS]");
  char dir[] = "/tmp/kdao-kill.XXXXXX";
  if (!mkdtemp(dir)) die("mkdtemp: %s", strerror(errno));
  workdir = dir;
  char path[sizeof dir + 16];
  snprintf(path, sizeof path, "%s/kdao.db", dir);

  kdao_factory *f = open_factory(path);
  kdao_error *err = NULL;
  if (kdao_factory_migrate(f, NULL, NULL, NULL, &err) != KDAO_OK)
    die("migrate: %s", kdao_error_string(err));
  kdao_factory_free(f);

  unsigned seed = (unsigned)time(NULL) ^ (unsigned)getpid();
  fprintf(stderr, "sqlite_kill: %d rounds, seed %u\n", rounds, seed);
  srand(seed);
  idlist acked = {0};
  for (int round = 1; round <= rounds; round++) {
    int fds[2];
    if (pipe(fds) != 0) die("pipe: %s", strerror(errno));
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) die("fork: %s", strerror(errno));
    if (pid == 0) {
      close(fds[0]);
      writer(path, fds[1], seed + (unsigned)round);
      _exit(0);
    }
    close(fds[1]);
    long delay = rand() % MAX_DELAY_MS;
    sleep_ms(delay);
    kill(pid, SIGKILL);
    int status;
    if (waitpid(pid, &status, 0) != pid) die("waitpid: %s", strerror(errno));
    /* Killed before its first write: the round still checks the file, with no new ids. */
    if (!WIFSIGNALED(status))
      die("round %d: the writer ended on its own (status %d)", round, status);
    size_t before = acked.n;
    collect(fds[0], &acked);
    close(fds[0]);
    check_integrity(path, round);
    check_acked(path, &acked, round);
    fprintf(stderr, "round %d: killed after %ld ms, %zu acknowledged (%zu in all), ok\n", round,
            delay, acked.n - before, acked.n);
  }
  if (acked.n < MIN_ACKED) die("only %zu rows acknowledged in all: the writer hardly ran", acked.n);

  for (size_t i = 0; i < acked.n; i++) free(acked.v[i]);
  free(acked.v);
  char cmd[sizeof dir + 16];
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  if (system(cmd) != 0) die("could not remove %s", dir);
  return 0;
}
