/*
 * test_cql_failover.c — the cluster's start-up and failover against small fake servers.
 *
 * Each fake listens on its own loopback address (127.0.0.21 and up, one port shared by all,
 * as a cluster's nodes share theirs) and speaks just enough of protocol v4 to be a healthy
 * node (STARTUP, REGISTER, OPTIONS, USE, the discovery reads, the keyspace's replication,
 * any other query answered VOID), or breaks at one step: closes at once, stalls or sends
 * garbage at STARTUP, at the system.local or system.peers read, at USE. No Cassandra needed.
 *
 *   - a broken contact point at each step is skipped within the connect timeout for the next;
 *   - every contact point broken: NO_HOSTS naming each failure, within their timeouts;
 *   - one deadline per call: a node that stalls on requests costs an idempotent request half
 *     the time left, and bounds a non-idempotent one;
 *   - a node whose connections close is out of the plan before the next request is sent
 *     (a non-idempotent request then still succeeds), and with too few nodes alive for the
 *     consistency level the answer is Unavailable at once.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "cql.h"

#define TIMEOUT_MS 400
/* Scheduling on a loaded shared machine: what a bound may be overshot by. */
#define SLACK_MS 1500

static int failures;
#define CHECK(cond, ...)                                                \
  do {                                                                  \
    if (!(cond)) {                                                      \
      fprintf(stderr, "%s:%d: FAILED %s: ", __FILE__, __LINE__, #cond); \
      fprintf(stderr, __VA_ARGS__);                                     \
      fputc('\n', stderr);                                              \
      failures++;                                                       \
    }                                                                   \
  } while (0)

typedef enum behaviour {
  HEALTHY,
  CLOSE_AT_ACCEPT,
  STALL_AT_STARTUP,
  GARBAGE_AT_STARTUP,
  STALL_AT_LOCAL,
  GARBAGE_AT_LOCAL,
  CLOSE_AT_PEERS,
  STALL_AT_USE,
  GARBAGE_AT_USE,
  STALL_ON_QUERIES, /* healthy start-up and discovery, then never answers */
} behaviour;

static const char *const behaviour_names[] = {
    "healthy",        "close at accept",  "stall at STARTUP", "garbage at STARTUP",
    "stall at local", "garbage at local", "close at peers",   "stall at USE",
    "garbage at USE", "stall on queries",
};

#define MAX_CLIENTS 32

typedef struct fake {
  char addr[32];
  behaviour b;
  int listen_fd;
  pthread_t thread;
  atomic_bool stop;
  atomic_bool kill;     /* close every connection and the listener, as a killed process would */
  const char *peers[4]; /* addresses system.peers reports */
  int replication;      /* replication_factor reported for any keyspace; 0: no row */
  int clients[MAX_CLIENTS];
  uint8_t *in[MAX_CLIENTS];
  size_t in_len[MAX_CLIENTS];
} fake;

static uint16_t g_port;

/* ---- response encoding ------------------------------------------------------------------ */

typedef struct out {
  uint8_t b[4096];
  size_t n;
} out;

static void put(out *o, const void *p, size_t n) {
  memcpy(o->b + o->n, p, n);
  o->n += n;
}
static void put_u16(out *o, uint16_t v) {
  uint8_t b[2] = {(uint8_t)(v >> 8), (uint8_t)v};
  put(o, b, 2);
}
static void put_i32(out *o, int32_t v) {
  uint32_t u = (uint32_t)v;
  uint8_t b[4] = {(uint8_t)(u >> 24), (uint8_t)(u >> 16), (uint8_t)(u >> 8), (uint8_t)u};
  put(o, b, 4);
}
static void put_string(out *o, const char *s) {
  put_u16(o, (uint16_t)strlen(s));
  put(o, s, strlen(s));
}
static void put_bytes(out *o, const char *s) {
  put_i32(o, (int32_t)strlen(s));
  put(o, s, strlen(s));
}

static void send_frame(int fd, int16_t stream, uint8_t opcode, const out *body) {
  out f = {.n = 0};
  uint8_t h[5] = {0x84, 0, (uint8_t)((uint16_t)stream >> 8), (uint8_t)stream, opcode};
  put(&f, h, 5);
  put_i32(&f, (int32_t)(body ? body->n : 0));
  if (body) put(&f, body->b, body->n);
  (void)!write(fd, f.b, f.n);
}

/* RESULT Rows of text columns; `cells` holds rows * ncols strings. */
static void send_rows(int fd, int16_t stream, const char *table, const char *const *cols, int ncols,
                      const char *const *cells, int rows) {
  out o = {.n = 0};
  put_i32(&o, 2);
  put_i32(&o, 1); /* global table spec */
  put_i32(&o, ncols);
  put_string(&o, "system");
  put_string(&o, table);
  for (int i = 0; i < ncols; i++) {
    put_string(&o, cols[i]);
    put_u16(&o, 0x000D);
  }
  put_i32(&o, rows);
  for (int i = 0; i < rows * ncols; i++) put_bytes(&o, cells[i]);
  send_frame(fd, stream, 0x08, &o);
}

static void send_garbage(int fd) {
  static const char g[] = "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n";
  (void)!write(fd, g, sizeof g - 1);
}

/* Answers one request; returns -1 to close the connection. */
static int answer(fake *f, int fd, int16_t stream, uint8_t opcode, const uint8_t *body,
                  size_t len) {
  behaviour b = f->b;
  if (opcode == 0x01) { /* STARTUP */
    if (b == STALL_AT_STARTUP) return 0;
    if (b == GARBAGE_AT_STARTUP) {
      send_garbage(fd);
      return 0;
    }
    send_frame(fd, stream, 0x02, NULL);
    return 0;
  }
  if (opcode == 0x0B) { /* REGISTER */
    send_frame(fd, stream, 0x02, NULL);
    return 0;
  }
  if (opcode == 0x05) { /* OPTIONS */
    out o = {.n = 0};
    put_u16(&o, 0);
    send_frame(fd, stream, 0x06, &o);
    return 0;
  }
  if (opcode != 0x07 || len < 4) return -1;
  uint32_t ql = (uint32_t)body[0] << 24 | (uint32_t)body[1] << 16 | body[2] << 8 | body[3];
  char q[512] = "";
  snprintf(q, sizeof q, "%.*s", (int)(ql < len - 4 ? ql : len - 4), (const char *)body + 4);
  if (strncmp(q, "USE ", 4) == 0) {
    if (b == STALL_AT_USE) return 0;
    if (b == GARBAGE_AT_USE) {
      send_garbage(fd);
      return 0;
    }
    out o = {.n = 0};
    put_i32(&o, 3);
    put_string(&o, "ks");
    send_frame(fd, stream, 0x08, &o);
    return 0;
  }
  if (strstr(q, "system.local")) {
    if (b == STALL_AT_LOCAL) return 0;
    if (b == GARBAGE_AT_LOCAL) {
      send_garbage(fd);
      return 0;
    }
    const char *cols[] = {"data_center", "rpc_address"}, *cells[] = {"dc1", f->addr};
    send_rows(fd, stream, "local", cols, 2, cells, 1);
    return 0;
  }
  if (strstr(q, "system.peers")) {
    if (b == CLOSE_AT_PEERS) return -1;
    const char *cols[] = {"peer", "rpc_address", "data_center"}, *cells[12];
    int n = 0;
    for (; n < 4 && f->peers[n]; n++) {
      cells[n * 3] = f->peers[n];
      cells[n * 3 + 1] = f->peers[n];
      cells[n * 3 + 2] = "dc1";
    }
    send_rows(fd, stream, "peers", cols, 3, cells, n);
    return 0;
  }
  if (strstr(q, "system_schema.keyspaces")) {
    out o = {.n = 0};
    put_i32(&o, 2);
    put_i32(&o, 1);
    put_i32(&o, 1);
    put_string(&o, "system_schema");
    put_string(&o, "keyspaces");
    put_string(&o, "replication");
    put_u16(&o, 0x0021); /* map<text, text> */
    put_u16(&o, 0x000D);
    put_u16(&o, 0x000D);
    put_i32(&o, f->replication > 0);
    if (f->replication > 0) {
      char rf[16];
      snprintf(rf, sizeof rf, "%d", f->replication);
      out cell = {.n = 0};
      put_i32(&cell, 2);
      put_bytes(&cell, "class");
      put_bytes(&cell, "org.apache.cassandra.locator.SimpleStrategy");
      put_bytes(&cell, "replication_factor");
      put_bytes(&cell, rf);
      put_i32(&o, (int32_t)cell.n);
      put(&o, cell.b, cell.n);
    }
    send_frame(fd, stream, 0x08, &o);
    return 0;
  }
  if (b == STALL_ON_QUERIES) return 0;
  out o = {.n = 0};
  put_i32(&o, 1); /* VOID */
  send_frame(fd, stream, 0x08, &o);
  return 0;
}

static void drop_client(fake *f, int k) {
  close(f->clients[k]);
  f->clients[k] = -1;
  free(f->in[k]);
  f->in[k] = NULL;
  f->in_len[k] = 0;
}

static void *serve(void *arg) {
  fake *f = arg;
  while (!atomic_load(&f->stop)) {
    if (atomic_load(&f->kill)) {
      for (int k = 0; k < MAX_CLIENTS; k++)
        if (f->clients[k] >= 0) drop_client(f, k);
      if (f->listen_fd >= 0) close(f->listen_fd);
      f->listen_fd = -1;
      struct timespec ts = {0, 20 * 1000000L};
      nanosleep(&ts, NULL);
      continue;
    }
    struct pollfd p[MAX_CLIENTS + 1];
    int map[MAX_CLIENTS + 1], n = 0;
    p[n] = (struct pollfd){.fd = f->listen_fd, .events = POLLIN};
    map[n++] = -1;
    for (int k = 0; k < MAX_CLIENTS; k++)
      if (f->clients[k] >= 0) {
        p[n] = (struct pollfd){.fd = f->clients[k], .events = POLLIN};
        map[n++] = k;
      }
    if (poll(p, (nfds_t)n, 20) <= 0) continue;
    for (int i = 0; i < n; i++) {
      if (!p[i].revents) continue;
      if (map[i] < 0) {
        int c = accept(f->listen_fd, NULL, NULL);
        if (c < 0) continue;
        if (f->b == CLOSE_AT_ACCEPT) {
          close(c);
          continue;
        }
        int k = 0;
        while (k < MAX_CLIENTS && f->clients[k] >= 0) k++;
        if (k == MAX_CLIENTS) {
          close(c);
          continue;
        }
        f->clients[k] = c;
        continue;
      }
      int k = map[i];
      uint8_t buf[4096];
      ssize_t r = read(f->clients[k], buf, sizeof buf);
      if (r <= 0) {
        drop_client(f, k);
        continue;
      }
      uint8_t *nb = realloc(f->in[k], f->in_len[k] + (size_t)r);
      if (!nb) abort();
      memcpy(nb + f->in_len[k], buf, (size_t)r);
      f->in[k] = nb;
      f->in_len[k] += (size_t)r;
      while (f->in_len[k] >= 9) {
        const uint8_t *h = f->in[k];
        size_t len = (size_t)h[5] << 24 | (size_t)h[6] << 16 | (size_t)h[7] << 8 | h[8];
        if (f->in_len[k] < 9 + len) break;
        int16_t stream = (int16_t)(h[2] << 8 | h[3]);
        int rc = answer(f, f->clients[k], stream, h[4], h + 9, len);
        memmove(f->in[k], f->in[k] + 9 + len, f->in_len[k] - 9 - len);
        f->in_len[k] -= 9 + len;
        if (rc < 0) {
          drop_client(f, k);
          break;
        }
      }
    }
  }
  return NULL;
}

static int listen_on(const char *addr, uint16_t *port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(*port)};
  inet_pton(AF_INET, addr, &sa.sin_addr);
  if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(fd, 16) < 0) {
    close(fd);
    return -1;
  }
  socklen_t sl = sizeof sa;
  getsockname(fd, (struct sockaddr *)&sa, &sl);
  *port = ntohs(sa.sin_port);
  return fd;
}

static fake g_fakes[16];
static int g_nfakes;

/* A fake on 127.0.0.(21 + its index). */
static fake *fake_start(behaviour b) {
  fake *f = &g_fakes[g_nfakes];
  memset(f, 0, sizeof *f);
  snprintf(f->addr, sizeof f->addr, "127.0.0.%d", 21 + g_nfakes);
  g_nfakes++;
  f->b = b;
  for (int k = 0; k < MAX_CLIENTS; k++) f->clients[k] = -1;
  f->listen_fd = listen_on(f->addr, &g_port);
  if (f->listen_fd < 0) {
    fprintf(stderr, "cannot listen on %s:%u: %s\n", f->addr, g_port, strerror(errno));
    exit(1);
  }
  pthread_create(&f->thread, NULL, serve, f);
  return f;
}

static void fake_stop(fake *f) {
  atomic_store(&f->stop, true);
  pthread_join(f->thread, NULL);
  for (int k = 0; k < MAX_CLIENTS; k++)
    if (f->clients[k] >= 0) drop_client(f, k);
  if (f->listen_fd >= 0) close(f->listen_fd);
}

static void fakes_stop_all(void) {
  for (int i = 0; i < g_nfakes; i++) fake_stop(&g_fakes[i]);
  g_nfakes = 0;
}

/* ---- the tests -------------------------------------------------------------------------- */

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static cql_cluster *open_cluster(const char *const *points, size_t n, const char *keyspace,
                                 cql_error *err) {
  cql_cluster_options o = {.contact_points = points,
                           .n_contact_points = n,
                           .port = g_port,
                           .keyspace = keyspace,
                           .connect_timeout_ms = TIMEOUT_MS,
                           .request_timeout_ms = TIMEOUT_MS,
                           .discover_peers = 1};
  return cql_cluster_open(&o, err);
}

/* A contact point broken at one step, then a healthy one: the open succeeds on the second
 * within one timeout, and requests go there. */
static void skips_broken_contact_point(behaviour b) {
  const char *ks = b == STALL_AT_USE || b == GARBAGE_AT_USE ? "ks" : NULL;
  fake *bad = fake_start(b), *good = fake_start(HEALTHY);
  const char *points[] = {bad->addr, good->addr};
  cql_error err = {0};
  int64_t t0 = now_ms();
  cql_cluster *cl = open_cluster(points, 2, ks, &err);
  int64_t took = now_ms() - t0;
  CHECK(cl != NULL, "%s: open failed: %s", behaviour_names[b], cql_error_message(&err));
  CHECK(took < TIMEOUT_MS + SLACK_MS, "%s: open took %lld ms", behaviour_names[b], (long long)took);
  if (cl) {
    CHECK(!cql_cluster_node_is_up(cl, 0), "%s: the broken contact point is not marked down",
          behaviour_names[b]);
    for (int i = 0; i < 4; i++) {
      cql_error qe = {0};
      int rc = cql_cluster_query(cl, "SELECT 1", NULL, 0, NULL, NULL, &qe);
      CHECK(rc == 0, "%s: query %d failed: %s", behaviour_names[b], i, cql_error_message(&qe));
      cql_error_clear(&qe);
    }
  }
  printf("contact point that does '%s' skipped in %lld ms\n", behaviour_names[b], (long long)took);
  cql_error_clear(&err);
  cql_cluster_close(cl);
  fakes_stop_all();
}

static void all_contact_points_broken(void) {
  fake *a = fake_start(STALL_AT_STARTUP), *b = fake_start(GARBAGE_AT_LOCAL),
       *c = fake_start(CLOSE_AT_ACCEPT);
  const char *points[] = {a->addr, b->addr, c->addr};
  cql_error err = {0};
  int64_t t0 = now_ms();
  cql_cluster *cl = open_cluster(points, 3, NULL, &err);
  int64_t took = now_ms() - t0;
  CHECK(cl == NULL, "opened a cluster of broken nodes");
  CHECK(err.kind == CQL_ERR_NO_HOSTS, "kind %s", cql_error_kind_name(err.kind));
  const char *m = cql_error_message(&err);
  CHECK(strstr(m, a->addr) && strstr(m, b->addr) && strstr(m, c->addr),
        "message does not name every contact point: %s", m);
  CHECK(took < 3 * TIMEOUT_MS + SLACK_MS, "took %lld ms", (long long)took);
  printf("no healthy contact point: %lld ms: %s\n", (long long)took, m);
  cql_error_clear(&err);
  cql_cluster_close(cl);
  fakes_stop_all();
}

/* One bound per call. The healthy contact point reports a peer that never answers queries. */
static void one_deadline_per_call(void) {
  fake *good = fake_start(HEALTHY), *stuck = fake_start(STALL_ON_QUERIES);
  good->peers[0] = stuck->addr;
  const char *points[] = {good->addr};
  cql_error err = {0};
  cql_cluster *cl = open_cluster(points, 1, NULL, &err);
  CHECK(cl != NULL, "open: %s", cql_error_message(&err));
  cql_error_clear(&err);
  if (!cl) {
    fakes_stop_all();
    return;
  }
  CHECK(cql_cluster_node_count(cl) == 2, "%zu nodes", cql_cluster_node_count(cl));
  /* Idempotent: round-robin sends the second of these to the stuck node first; it must still
   * succeed within the one timeout, the stuck node costing half of it. */
  int64_t worst = 0;
  for (int i = 0; i < 2; i++) {
    cql_query_opts o = {.idempotent = 1};
    int64_t t0 = now_ms();
    int rc = cql_cluster_query(cl, "SELECT 1", NULL, 0, &o, NULL, &err);
    int64_t took = now_ms() - t0;
    if (took > worst) worst = took;
    CHECK(rc == 0, "idempotent query %d: %s", i, cql_error_message(&err));
    CHECK(took < TIMEOUT_MS + SLACK_MS, "idempotent query %d took %lld ms", i, (long long)took);
    cql_error_clear(&err);
  }
  CHECK(worst >= TIMEOUT_MS / 2 - 20, "the stuck node was never tried (slowest %lld ms)",
        (long long)worst);
  printf("idempotent request tried first on a stalled node: %lld ms (timeout %d)\n",
         (long long)worst, TIMEOUT_MS);
  cql_cluster_close(cl);
  /* Not idempotent, on the stuck node alone: fails with a timeout, within the timeout. */
  const char *stuck_only[] = {stuck->addr};
  cl = open_cluster(stuck_only, 1, NULL, &err);
  CHECK(cl != NULL, "open: %s", cql_error_message(&err));
  cql_error_clear(&err);
  int64_t t0 = now_ms();
  int rc = cql_cluster_query(cl, "SELECT 1", NULL, 0, NULL, NULL, &err);
  int64_t took = now_ms() - t0;
  CHECK(rc < 0 && err.kind == CQL_ERR_TIMEOUT, "rc %d, kind %s: %s", rc,
        cql_error_kind_name(err.kind), cql_error_message(&err));
  CHECK(took >= TIMEOUT_MS - 20 && took < TIMEOUT_MS + SLACK_MS, "took %lld ms", (long long)took);
  printf("request on a stalled node alone: %lld ms: %s\n", (long long)took,
         cql_error_message(&err));
  cql_error_clear(&err);
  cql_cluster_close(cl);
  fakes_stop_all();
}

/* A node whose connections close (a killed process) leaves the plan before the next request,
 * so a request that may not be re-sent still succeeds; with replication 2 at QUORUM the next
 * request is Unavailable at once. */
static void dead_node_noticed(void) {
  fake *a = fake_start(HEALTHY), *b = fake_start(HEALTHY);
  a->peers[0] = b->addr;
  b->peers[0] = a->addr;
  a->replication = b->replication = 2;
  const char *points[] = {a->addr};
  cql_error err = {0};
  cql_cluster *cl = open_cluster(points, 1, "ks", &err);
  CHECK(cl != NULL, "open: %s", cql_error_message(&err));
  cql_error_clear(&err);
  if (!cl) {
    fakes_stop_all();
    return;
  }
  cql_query_opts quorum = {.consistency = CQL_QUORUM};
  for (int i = 0; i < 4; i++) { /* connections to both */
    CHECK(cql_cluster_query(cl, "SELECT 1", NULL, 0, &quorum, NULL, &err) == 0, "warm-up: %s",
          cql_error_message(&err));
    cql_error_clear(&err);
  }
  atomic_store(&b->kill, true);
  struct timespec ts = {0, 200 * 1000000L};
  nanosleep(&ts, NULL);
  for (int i = 0; i < 4; i++) {
    CHECK(cql_cluster_query(cl, "SELECT 1", NULL, 0, NULL, NULL, &err) == 0,
          "request %d after the kill: %s", i, cql_error_message(&err));
    cql_error_clear(&err);
  }
  int64_t t0 = now_ms();
  int rc = cql_cluster_query(cl, "SELECT 1", NULL, 0, &quorum, NULL, &err);
  int64_t took = now_ms() - t0;
  CHECK(rc < 0 && err.kind == CQL_ERR_UNAVAILABLE && err.required == 2 && err.alive == 1,
        "QUORUM with one of two alive: rc %d, %s", rc, cql_error_message(&err));
  CHECK(took < 300, "Unavailable took %lld ms", (long long)took);
  printf("QUORUM with one of two nodes alive: %lld ms: %s\n", (long long)took,
         cql_error_message(&err));
  cql_error_clear(&err);
  cql_cluster_close(cl);
  fakes_stop_all();
}

int main(void) {
  /* Probe that the loopback addresses can be bound (they can on Linux: all of 127/8). */
  uint16_t probe = 0;
  int fd = listen_on("127.0.0.21", &probe);
  if (fd < 0) {
    fprintf(stderr, "skipped: cannot bind 127.0.0.21\n");
    return 77;
  }
  close(fd);
  for (behaviour b = CLOSE_AT_ACCEPT; b <= GARBAGE_AT_USE; b++) {
    g_port = 0;
    skips_broken_contact_point(b);
  }
  g_port = 0;
  all_contact_points_broken();
  g_port = 0;
  one_deadline_per_call();
  g_port = 0;
  dead_node_noticed();
  if (failures) fprintf(stderr, "%d check(s) failed\n", failures);
  return failures ? 1 : 0;
}
