/*
 * cluster.c — several nodes behind one handle: peer discovery, load balancing (round-robin or
 * DC-aware round-robin), down-marking with exponential back-off, a per-node prepared statement
 * cache with transparent re-prepare, and schema agreement after DDL.
 *
 * One connection per node, opened on first use. A request walks the load-balancing plan: a
 * node that cannot be reached is marked down (retried after reconnect_base_ms * 2^failures,
 * capped) and the next node is tried; a request that failed after it was sent is retried on
 * another node only when the caller said it is idempotent.
 */
#include "cql_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define DEFAULT_PORT 9042
#define DEFAULT_CONNECT_MS 5000
#define DEFAULT_REQUEST_MS 12000
#define DEFAULT_AGREEMENT_MS 10000
#define DEFAULT_RECONNECT_BASE_MS 1000
#define DEFAULT_RECONNECT_MAX_MS 60000
#define AGREEMENT_POLL_MS 200

typedef struct prep_entry {
  char *query;
  cql_prepared *prepared;
} prep_entry;

typedef struct node {
  char *address; /* as used to connect */
  char *host;    /* "address:port" */
  char *dc;
  cql_conn *conn;
  bool down;
  /* Down on evidence that the node is gone, not merely slow: nothing listens on its port, our
   * connection was closed or reset, or the cluster reported it DOWN. Only these count against
   * the replicas a consistency level needs (see unavailable()). */
  bool dead;
  int failures;
  int64_t retry_at; /* monotonic ms: when a down node may be tried again */
  prep_entry *preps;
  size_t nprep, prep_cap;
} node;

struct cql_cluster {
  cql_cluster_options o; /* strings below are our own copies */
  char *username, *password, *keyspace, *tls_ca_file, *local_dc;
  node *nodes;
  size_t nnodes;
  size_t rr;      /* round-robin cursor */
  int replicas;   /* the keyspace's replication factor, summed over data centres; 0: unknown */
  size_t control; /* node whose connection receives the cluster's events; SIZE_MAX: none */
};

/* ---- nodes -------------------------------------------------------------------------------- */

static void node_clear(node *n) {
  cql_conn_close(n->conn);
  for (size_t i = 0; i < n->nprep; i++) {
    cql__free(n->preps[i].query);
    cql_prepared_free(n->preps[i].prepared);
  }
  cql__free(n->preps);
  cql__free(n->address);
  cql__free(n->host);
  cql__free(n->dc);
  memset(n, 0, sizeof *n);
}

static node *node_add(cql_cluster *cl, const char *address, const char *dc) {
  for (size_t i = 0; i < cl->nnodes; i++)
    if (strcmp(cl->nodes[i].address, address) == 0) return &cl->nodes[i];
  node *nn = cql__realloc(cl->nodes, (cl->nnodes + 1) * sizeof *nn);
  if (!nn) return NULL;
  cl->nodes = nn;
  node *n = &cl->nodes[cl->nnodes];
  memset(n, 0, sizeof *n);
  n->address = cql__strdup(address);
  n->dc = dc ? cql__strdup(dc) : NULL;
  size_t hl = strlen(address) + 16;
  n->host = cql__malloc(hl);
  if (!n->address || !n->host || (dc && !n->dc)) {
    node_clear(n);
    return NULL;
  }
  snprintf(n->host, hl, strchr(address, ':') ? "[%s]:%u" : "%s:%u", address, cl->o.port);
  cl->nnodes++;
  return n;
}

static bool is_dead_evidence(const cql_error *e) {
  return e && (e->kind == CQL_ERR_CONNECT || e->kind == CQL_ERR_IO);
}

/* Takes `n` out of the plans for a back-off period. Its connection is kept when it is still
 * usable (a request timed out on a node that is alive but slow). */
static void node_mark_down(cql_cluster *cl, node *n, const cql_error *why) {
  if (n->conn && cql_conn_is_broken(n->conn)) {
    cql_conn_close(n->conn);
    n->conn = NULL;
    if (cl->control == (size_t)(n - cl->nodes)) cl->control = SIZE_MAX;
    /* Statement ids survive a reconnect but not a node restart; drop them to be safe. */
    for (size_t i = 0; i < n->nprep; i++) {
      cql__free(n->preps[i].query);
      cql_prepared_free(n->preps[i].prepared);
    }
    n->nprep = 0;
  }
  n->down = true;
  n->dead = is_dead_evidence(why);
  int64_t delay = cl->o.reconnect_base_ms;
  for (int i = 0; i < n->failures && delay < cl->o.reconnect_max_ms; i++) delay *= 2;
  if (delay > cl->o.reconnect_max_ms) delay = cl->o.reconnect_max_ms;
  n->failures++;
  n->retry_at = cql__now_ms() + delay;
}

static void node_mark_up(node *n) {
  n->down = n->dead = false;
  n->failures = 0;
}

/* The open connection of `n`, or a new one; connecting ends by `deadline` at the latest. */
static cql_conn *node_conn(cql_cluster *cl, node *n, int64_t deadline, cql_error *err) {
  if (n->conn && !cql_conn_is_broken(n->conn)) return n->conn;
  cql_conn_close(n->conn);
  n->conn = NULL;
  int64_t left = deadline - cql__now_ms();
  if (left <= 0) {
    cql__fail(err, CQL_ERR_TIMEOUT, "no time left to connect to %s", n->host);
    return NULL;
  }
  cql_conn_options co = {
      .host = n->address,
      .port = cl->o.port,
      .username = cl->username,
      .password = cl->password,
      .keyspace = cl->keyspace,
      .tls = cl->o.tls,
      .tls_verify = cl->o.tls_verify,
      .tls_ca_file = cl->tls_ca_file,
      .connect_timeout_ms = left < cl->o.connect_timeout_ms ? (int)left : cl->o.connect_timeout_ms,
      .request_timeout_ms = cl->o.request_timeout_ms,
  };
  n->conn = cql_conn_open(&co, err);
  return n->conn;
}

/* ---- prepared statement cache ------------------------------------------------------------- */

static prep_entry *prep_find(node *n, const char *query) {
  for (size_t i = 0; i < n->nprep; i++)
    if (strcmp(n->preps[i].query, query) == 0) return &n->preps[i];
  return NULL;
}

static void prep_forget(node *n, const char *query) {
  prep_entry *e = prep_find(n, query);
  if (!e) return;
  cql__free(e->query);
  cql_prepared_free(e->prepared);
  *e = n->preps[--n->nprep];
}

static const cql_prepared *prep_get(node *n, cql_conn *c, const char *query, cql_error *err) {
  prep_entry *e = prep_find(n, query);
  if (e) return e->prepared;
  if (n->nprep == n->prep_cap) {
    size_t cap = n->prep_cap ? n->prep_cap * 2 : 16;
    prep_entry *p = cql__realloc(n->preps, cap * sizeof *p);
    if (!p) {
      cql__fail(err, CQL_ERR_NOMEM, "out of memory");
      return NULL;
    }
    n->preps = p;
    n->prep_cap = cap;
  }
  cql_prepared *p = NULL;
  if (cql_conn_prepare(c, query, &p, err) < 0) return NULL;
  char *q = cql__strdup(query);
  if (!q) {
    cql_prepared_free(p);
    cql__fail(err, CQL_ERR_NOMEM, "out of memory");
    return NULL;
  }
  n->preps[n->nprep].query = q;
  n->preps[n->nprep].prepared = p;
  n->nprep++;
  return p;
}

/* ---- load balancing and failover ---------------------------------------------------------- */

static bool is_local(const cql_cluster *cl, const node *n) {
  if (cl->o.policy != CQL_LB_DC_AWARE || !cl->local_dc) return true;
  return n->dc && strcmp(n->dc, cl->local_dc) == 0;
}

/* Fills `plan` with node indexes: local nodes from the round-robin cursor on, then remote
 * ones. Returns the count. */
static size_t make_plan(cql_cluster *cl, size_t *plan) {
  size_t k = 0, start = cl->rr++;
  for (int pass = 0; pass < 2; pass++)
    for (size_t i = 0; i < cl->nnodes; i++) {
      size_t idx = (start + i) % cl->nnodes;
      if (is_local(cl, &cl->nodes[idx]) == (pass == 0)) plan[k++] = idx;
    }
  return k;
}

typedef int (*node_op)(cql_cluster *cl, node *n, cql_conn *c, void *arg, cql_error *err);

static bool conn_failure(const cql_error *e) {
  switch (e->kind) {
  case CQL_ERR_IO:
  case CQL_ERR_TIMEOUT:
  case CQL_ERR_MALFORMED:
  case CQL_ERR_TLS: return true;
  default: return false;
  }
}

/* Server answers that mean "this node cannot serve now, another may". */
static bool node_busy(const cql_error *e) {
  return e->kind == CQL_ERR_SERVER &&
         (e->code == CQL_SERVER_OVERLOADED || e->code == CQL_SERVER_IS_BOOTSTRAPPING);
}

static void note_failure(cql_buf *why, const node *n, const cql_error *e) {
  if (why->len) cql__buf_put(why, "; ", 2);
  cql__buf_put(why, n->host, strlen(n->host));
  cql__buf_put(why, ": ", 2);
  const char *m = cql_error_message(e);
  cql__buf_put(why, m, strlen(m));
}

/* ---- noticing dead nodes ----------------------------------------------------------------- */

static node *node_by_address(cql_cluster *cl, const char *address) {
  for (size_t i = 0; address && i < cl->nnodes; i++)
    if (strcmp(cl->nodes[i].address, address) == 0) return &cl->nodes[i];
  return NULL;
}

/* STATUS_CHANGE and TOPOLOGY_CHANGE: the servers' failure detector speaks for nodes we hold
 * no connection to, and for nodes that hang without closing their sockets. */
static void apply_event(cql_cluster *cl, const cql_event *ev) {
  if (!ev->type || !ev->change || !ev->address) return;
  node *n = node_by_address(cl, ev->address);
  bool gone = strcmp(ev->change, "DOWN") == 0 || strcmp(ev->change, "REMOVED_NODE") == 0;
  if (!n && strcmp(ev->change, "NEW_NODE") == 0) {
    node_add(cl, ev->address, NULL); /* out of memory: the node stays unknown, no harm */
    return;
  }
  if (!n) return;
  if (gone && !n->down) {
    cql_error why = {.kind = CQL_ERR_IO};
    node_mark_down(cl, n, &why);
  } else if (!gone && n->down) {
    /* Up again (or back in the ring): try it at the next request. */
    n->down = n->dead = false;
    n->retry_at = 0;
  }
}

/*
 * Before each request: every open connection is read without waiting, so that one the peer
 * closed or reset (a killed node) takes its node out of the plan at once rather than failing
 * the next request sent on it; queued events are applied; and when no connection is
 * registered for events any more (its node died), the first open one is registered.
 */
static void sweep(cql_cluster *cl, int64_t deadline) {
  for (size_t i = 0; i < cl->nnodes; i++) {
    node *n = &cl->nodes[i];
    cql_error e = {0};
    if (n->conn && cql__conn_poll(n->conn, &e) < 0) node_mark_down(cl, n, &e);
    cql_error_clear(&e);
  }
  if (cl->control == SIZE_MAX) {
    for (size_t i = 0; i < cl->nnodes && cl->control == SIZE_MAX; i++) {
      cql_conn *c = cl->nodes[i].conn;
      if (!c || cql_conn_is_broken(c)) continue;
      static const char *const events[] = {"STATUS_CHANGE", "TOPOLOGY_CHANGE", NULL};
      cql_error e = {0};
      cql__conn_set_deadline(c, deadline);
      /* A node that refuses REGISTER still serves requests; events are a help, not a need. */
      if (cql_conn_register(c, events, &e) == 0) cl->control = i;
      cql__conn_set_deadline(c, 0);
      cql_error_clear(&e);
      break;
    }
  }
  if (cl->control != SIZE_MAX) {
    cql_conn *c = cl->nodes[cl->control].conn;
    cql_event *ev = NULL;
    while (c && cql_conn_next_event(c, 0, &ev, NULL) == 1) {
      apply_event(cl, ev); /* may add a node: `c` stays valid, it is not in the array */
      cql_event_free(ev);
    }
  }
}

/* Replicas a consistency level waits for; 0 when not checked here (ANY, and the per data
 * centre levels, whose nodes this count does not tell apart). */
static int required_replicas(cql_consistency c, int rf) {
  switch (c) {
  case CQL_ONE:
  case CQL_LOCAL_ONE: return 1;
  case CQL_TWO: return 2;
  case CQL_THREE: return 3;
  case CQL_QUORUM:
  case CQL_SERIAL: return rf / 2 + 1;
  case CQL_ALL: return rf;
  default: return 0;
  }
}

static size_t alive_nodes(const cql_cluster *cl) {
  size_t k = 0;
  for (size_t i = 0; i < cl->nnodes; i++) k += !cl->nodes[i].dead;
  return k;
}

/*
 * A request that needs more replicas than nodes are alive cannot succeed: its coordinator
 * would answer Unavailable, but only once its own failure detector has convicted the dead
 * nodes (seconds after a crash), and until then it waits for them until its write or read
 * timeout. Nodes seen dead whose back-off is over are probed first; the answer is then
 * given at once. -1 with CQL_ERR_UNAVAILABLE, or 0 to go on.
 */
static int unavailable(cql_cluster *cl, const cql_query_opts *o, int64_t deadline, cql_error *err) {
  if (cl->replicas <= 0 || !cl->o.discover_peers || !o) return 0;
  int need = required_replicas(o->consistency, cl->replicas);
  int need_serial = required_replicas(o->serial_consistency, cl->replicas);
  cql_consistency level = o->consistency;
  if (need_serial > need) {
    need = need_serial;
    level = o->serial_consistency;
  }
  if (need <= 0 || (size_t)need <= alive_nodes(cl)) return 0;
  int64_t now = cql__now_ms();
  for (size_t i = 0; i < cl->nnodes && (size_t)need > alive_nodes(cl); i++) {
    node *n = &cl->nodes[i];
    if (!n->dead || now < n->retry_at) continue;
    cql_error e = {0};
    if (node_conn(cl, n, deadline, &e))
      node_mark_up(n);
    else
      node_mark_down(cl, n, &e);
    cql_error_clear(&e);
  }
  size_t alive = alive_nodes(cl);
  if ((size_t)need <= alive) return 0;
  cql_buf down;
  cql__buf_init(&down);
  for (size_t i = 0; i < cl->nnodes; i++) {
    if (!cl->nodes[i].dead) continue;
    if (down.len) cql__buf_put(&down, ", ", 2);
    cql__buf_put(&down, cl->nodes[i].host, strlen(cl->nodes[i].host));
  }
  cql__buf_u8(&down, 0);
  cql__fail(err, CQL_ERR_UNAVAILABLE,
            "[Unavailable] consistency %s needs %d of %d replicas, %zu node%s alive (down: %s)",
            cql_consistency_name(level), need, cl->replicas, alive, alive == 1 ? "" : "s",
            down.oom ? "?" : (const char *)down.data);
  cql__buf_free(&down);
  if (err) {
    err->consistency = level;
    err->required = need;
    err->alive = (int32_t)alive;
  }
  return -1;
}

/* ---- running a request -------------------------------------------------------------------- */

/*
 * Runs `op` on the first node of the plan that works, all within one deadline: the request
 * timeout (or opts->timeout_ms) bounds connecting, waiting and re-sending together. Nodes in
 * back-off are skipped unless every node is in back-off, in which case all are tried. When
 * the request may be re-sent and another node is left to try, an attempt gets half of the
 * time that remains, so that a node stuck on the request leaves time for another.
 */
static int run(cql_cluster *cl, const cql_query_opts *opts, bool idempotent, node_op op, void *arg,
               cql_error *err) {
  int budget = opts && opts->timeout_ms > 0 ? opts->timeout_ms : cl->o.request_timeout_ms;
  int64_t deadline = cql__now_ms() + budget;
  sweep(cl, deadline);
  if (unavailable(cl, opts, deadline, err) < 0) return -1;
  size_t stack[16], *plan = cl->nnodes <= 16 ? stack : cql__malloc(cl->nnodes * sizeof *plan);
  if (!plan) return cql__fail(err, CQL_ERR_NOMEM, "out of memory");
  size_t np = make_plan(cl, plan), tried = 0;
  cql_buf why;
  cql__buf_init(&why);
  int rc = -2; /* -2: nothing worked yet */
  bool out_of_time = false;
  int64_t now = cql__now_ms();
  for (int pass = 0; pass < 2 && rc == -2 && !out_of_time; pass++) {
    for (size_t i = 0; i < np && rc == -2; i++) {
      node *n = &cl->nodes[plan[i]];
      if (pass == 0 && n->down && now < n->retry_at) continue;
      if (pass == 1 && !(n->down && now < n->retry_at)) continue;
      int64_t left = deadline - cql__now_ms();
      if (left <= 0) {
        out_of_time = true;
        break;
      }
      tried++;
      cql_error e = {0};
      cql_conn *c = node_conn(cl, n, deadline, &e);
      if (!c) {
        note_failure(&why, n, &e);
        node_mark_down(cl, n, &e);
        cql_error_clear(&e);
        continue;
      }
      int64_t attempt_end = idempotent && tried < np ? cql__now_ms() + left / 2 : deadline;
      cql__conn_set_deadline(c, attempt_end);
      int r = op(cl, n, c, arg, &e);
      cql__conn_set_deadline(c, 0);
      if (r == 0) {
        cql_error_clear(&e); /* e.g. an UNPREPARED answered by re-preparing */
        node_mark_up(n);
        rc = 0;
        break;
      }
      if (conn_failure(&e)) node_mark_down(cl, n, &e);
      if ((conn_failure(&e) && idempotent) || node_busy(&e)) {
        note_failure(&why, n, &e);
        cql_error_clear(&e);
        continue;
      }
      cql__error_move(err, &e);
      rc = -1;
    }
  }
  if (rc == -2) {
    cql__buf_u8(&why, 0);
    const char *tried_text = why.oom ? "(out of memory)" : (const char *)why.data;
    if (out_of_time || cql__now_ms() >= deadline)
      cql__fail(err, CQL_ERR_TIMEOUT, "no node answered within %d ms: %s", budget,
                *tried_text ? tried_text : "no node could be tried");
    else
      cql__fail(err, CQL_ERR_NO_HOSTS, "all hosts tried for query failed: %s", tried_text);
    rc = -1;
  }
  cql__buf_free(&why);
  if (plan != stack) cql__free(plan);
  return rc;
}

/* ---- schema agreement --------------------------------------------------------------------- */

static int add_version(json_t *set, const cql_result *r, size_t row, int col) {
  if (col < 0 || cql_result_is_null(r, row, (size_t)col) != 0) return 0;
  json_t *v = cql_result_cell_json(r, row, (size_t)col);
  if (!v) return -1;
  int rc = json_object_set_new(set, json_string_value(v) ? json_string_value(v) : "?", json_true());
  json_decref(v);
  return rc;
}

static bool peer_is_down(const cql_cluster *cl, const cql_result *r, size_t row) {
  json_t *addr = cql_result_cell_json(r, row, (size_t)cql_result_column_index(r, "rpc_address"));
  bool down = false;
  for (size_t i = 0; addr && json_is_string(addr) && i < cl->nnodes; i++)
    if (strcmp(cl->nodes[i].address, json_string_value(addr)) == 0) down = cl->nodes[i].down;
  json_decref(addr);
  return down;
}

/* 1: all versions equal, 0: not yet, -1: failure. */
static int versions_agree(cql_cluster *cl, cql_conn *c, cql_error *err) {
  cql_result *local = NULL, *peers = NULL;
  json_t *set = json_object();
  int rc = -1;
  if (!set) {
    cql__fail(err, CQL_ERR_NOMEM, "out of memory");
    goto done;
  }
  if (cql_conn_query(c, "SELECT schema_version FROM system.local WHERE key='local'", NULL, 0, NULL,
                     &local, err) < 0 ||
      cql_conn_query(c, "SELECT peer, rpc_address, schema_version FROM system.peers", NULL, 0, NULL,
                     &peers, err) < 0)
    goto done;
  if (add_version(set, local, 0, cql_result_column_index(local, "schema_version")) < 0) goto nomem;
  int col = cql_result_column_index(peers, "schema_version");
  for (size_t i = 0; i < cql_result_row_count(peers); i++)
    if (!peer_is_down(cl, peers, i) && add_version(set, peers, i, col) < 0) goto nomem;
  rc = json_object_size(set) <= 1;
  goto done;
nomem:
  cql__fail(err, CQL_ERR_NOMEM, "out of memory");
done:
  json_decref(set);
  cql_result_free(local);
  cql_result_free(peers);
  return rc;
}

static int wait_agreement_on(cql_cluster *cl, cql_conn *c, cql_error *err) {
  int64_t deadline = cql__now_ms() + cl->o.schema_agreement_timeout_ms;
  for (;;) {
    int r = versions_agree(cl, c, err);
    if (r != 0) return r;
    if (cql__now_ms() >= deadline) return 0;
    struct timespec ts = {0, AGREEMENT_POLL_MS * 1000000L};
    nanosleep(&ts, NULL);
  }
}

/* After DDL: wait for agreement on the node that ran it. A timeout is not an error (the
 * change was applied); a failure to ask is not either, the DDL result stands. */
static void after_result(cql_cluster *cl, cql_conn *c, const cql_result *r) {
  if (r && r->kind == CQL_RESULT_SCHEMA_CHANGE) {
    cql_error e = {0};
    /* The change is applied: the wait has its own bound, not what is left of the request's. */
    cql__conn_set_deadline(c, 0);
    wait_agreement_on(cl, c, &e);
    cql_error_clear(&e);
  }
}

/* ---- requests ----------------------------------------------------------------------------- */

struct req {
  const char *query;
  const cql_value *values;
  size_t n;
  const cql_query_opts *opts;
  cql_result **out;
  cql_batch_type btype;
  const cql_batch_stmt *stmts;
};

static const cql_query_opts *with_default_consistency(cql_cluster *cl, const cql_query_opts *in,
                                                      cql_query_opts *tmp) {
  if (in)
    *tmp = *in;
  else
    memset(tmp, 0, sizeof *tmp);
  if (tmp->consistency == CQL_CONSISTENCY_DEFAULT) tmp->consistency = cl->o.default_consistency;
  return tmp;
}

static int finish(cql_cluster *cl, cql_conn *c, cql_result *r, cql_result **out) {
  after_result(cl, c, r);
  if (out)
    *out = r;
  else
    cql_result_free(r);
  return 0;
}

static int op_query(cql_cluster *cl, node *n, cql_conn *c, void *arg, cql_error *err) {
  (void)n;
  struct req *q = arg;
  cql_result *r = NULL;
  if (cql_conn_query(c, q->query, q->values, q->n, q->opts, &r, err) < 0) return -1;
  return finish(cl, c, r, q->out);
}

static bool is_unprepared(const cql_error *e) {
  return e->kind == CQL_ERR_SERVER && e->code == CQL_SERVER_UNPREPARED;
}

static int op_execute(cql_cluster *cl, node *n, cql_conn *c, void *arg, cql_error *err) {
  struct req *q = arg;
  cql_result *r = NULL;
  for (int attempt = 0; attempt < 2; attempt++) {
    const cql_prepared *p = prep_get(n, c, q->query, err);
    if (!p) return -1;
    if (cql_conn_execute(c, p, q->values, q->n, q->opts, &r, err) == 0)
      return finish(cl, c, r, q->out);
    if (!is_unprepared(err) || attempt == 1) return -1;
    /* The node forgot the statement (restart, cache eviction): prepare it again. */
    prep_forget(n, q->query);
  }
  return -1;
}

static int op_batch(cql_cluster *cl, node *n, cql_conn *c, void *arg, cql_error *err) {
  struct req *q = arg;
  const cql_prepared **ps = cql__calloc(q->n ? q->n : 1, sizeof *ps);
  if (!ps) return cql__fail(err, CQL_ERR_NOMEM, "out of memory");
  int rc = -1;
  for (int attempt = 0; attempt < 2; attempt++) {
    bool ok = true;
    for (size_t i = 0; i < q->n && ok; i++) {
      ps[i] = NULL;
      if (q->stmts[i].prepare && q->stmts[i].query)
        ok = (ps[i] = prep_get(n, c, q->stmts[i].query, err)) != NULL;
    }
    if (!ok) break;
    cql_result *r = NULL;
    if (cql__conn_batch_prepared(c, q->btype, q->stmts, ps, q->n, q->opts, &r, err) == 0) {
      rc = finish(cl, c, r, q->out);
      break;
    }
    if (!is_unprepared(err) || attempt == 1) break;
    for (size_t i = 0; i < q->n; i++)
      if (q->stmts[i].prepare && q->stmts[i].query) prep_forget(n, q->stmts[i].query);
  }
  cql__free(ps);
  return rc;
}

static int check_cluster(const cql_cluster *cl, const void *arg, const char *fn, cql_error *err) {
  if (!cl || !arg)
    return cql__fail(err, CQL_ERR_MISUSE, "%s: NULL %s", fn, !cl ? "cluster" : "argument");
  return 0;
}

/* A query or an execution of a prepared one: the same request, told apart by its op. */
static int statement(cql_cluster *cl, node_op op, const char *fn, const char *query,
                     const cql_value *values, size_t n_values, const cql_query_opts *opts,
                     cql_result **out, cql_error *err) {
  if (out) *out = NULL;
  if (check_cluster(cl, query, fn, err) < 0) return -1;
  cql_query_opts tmp;
  struct req q = {.query = query,
                  .values = values,
                  .n = n_values,
                  .out = out,
                  .opts = with_default_consistency(cl, opts, &tmp)};
  return run(cl, q.opts, opts && opts->idempotent, op, &q, err);
}

int cql_cluster_query(cql_cluster *cl, const char *query, const cql_value *values, size_t n_values,
                      const cql_query_opts *opts, cql_result **out, cql_error *err) {
  return statement(cl, op_query, "cql_cluster_query", query, values, n_values, opts, out, err);
}

int cql_cluster_execute(cql_cluster *cl, const char *query, const cql_value *values,
                        size_t n_values, const cql_query_opts *opts, cql_result **out,
                        cql_error *err) {
  return statement(cl, op_execute, "cql_cluster_execute", query, values, n_values, opts, out, err);
}

int cql_cluster_batch(cql_cluster *cl, cql_batch_type type, const cql_batch_stmt *stmts, size_t n,
                      const cql_query_opts *opts, cql_result **out, cql_error *err) {
  if (out) *out = NULL;
  if (check_cluster(cl, stmts, "cql_cluster_batch", err) < 0) return -1;
  cql_query_opts tmp;
  struct req q = {.n = n,
                  .out = out,
                  .btype = type,
                  .stmts = stmts,
                  .opts = with_default_consistency(cl, opts, &tmp)};
  return run(cl, q.opts, opts && opts->idempotent, op_batch, &q, err);
}

static int op_agreement(cql_cluster *cl, node *n, cql_conn *c, void *arg, cql_error *err) {
  (void)n;
  int r = wait_agreement_on(cl, c, err);
  if (r < 0) return -1;
  *(int *)arg = r;
  return 0;
}

int cql_cluster_wait_schema_agreement(cql_cluster *cl, cql_error *err) {
  if (check_cluster(cl, "", "cql_cluster_wait_schema_agreement", err) < 0) return -1;
  int agreed = 0;
  cql_query_opts o = {.timeout_ms = cl->o.schema_agreement_timeout_ms + cl->o.request_timeout_ms};
  if (run(cl, &o, true, op_agreement, &agreed, err) < 0) return -1;
  return agreed;
}

/* The replication factor of `keyspace`, summed over data centres (0 when it cannot be read:
 * the availability check is then skipped, nothing else depends on it). */
static int read_replicas(cql_conn *c, const char *keyspace) {
  cql_value v = cql_v_text(keyspace);
  cql_result *r = NULL;
  int total = 0;
  if (cql_conn_query(c, "SELECT replication FROM system_schema.keyspaces WHERE keyspace_name = ?",
                     &v, 1, NULL, &r, NULL) < 0)
    return 0;
  json_t *map = cql_result_row_count(r) == 1 ? cql_result_cell_json(r, 0, 0) : NULL;
  const char *key;
  json_t *val;
  json_object_foreach(map, key, val) {
    if (strcmp(key, "class") != 0 && json_is_string(val)) total += atoi(json_string_value(val));
  }
  json_decref(map);
  cql_result_free(r);
  return total;
}

int cql_cluster_set_keyspace(cql_cluster *cl, const char *keyspace, cql_error *err) {
  if (check_cluster(cl, keyspace, "cql_cluster_set_keyspace", err) < 0) return -1;
  char *ks = cql__strdup(keyspace);
  if (!ks) return cql__fail(err, CQL_ERR_NOMEM, "out of memory");
  cql__free(cl->keyspace);
  cl->keyspace = ks;
  cl->replicas = 0;
  int replicas_read = 0;
  /* Open connections switch now; closed ones will USE it when they open. A failure here
     * (e.g. the keyspace does not exist) is reported and leaves that connection as it was. */
  for (size_t i = 0; i < cl->nnodes; i++) {
    node *n = &cl->nodes[i];
    if (!n->conn || cql_conn_is_broken(n->conn)) continue;
    char *q = cql__malloc(strlen(ks) * 2 + 8);
    if (!q) return cql__fail(err, CQL_ERR_NOMEM, "out of memory");
    char *w = q + sprintf(q, "USE \"");
    for (const char *p = ks; *p; p++) {
      if (*p == '"') *w++ = '"';
      *w++ = *p;
    }
    strcpy(w, "\"");
    int rc = cql_conn_query(n->conn, q, NULL, 0, NULL, NULL, err);
    cql__free(q);
    if (rc < 0) return -1;
    if (replicas_read++ == 0) cl->replicas = read_replicas(n->conn, ks);
  }
  return 0;
}

/* ---- opening ------------------------------------------------------------------------------ */

static char *text_cell(const cql_result *r, size_t row, const char *colname) {
  int col = cql_result_column_index(r, colname);
  if (col < 0) return NULL;
  json_t *j = cql_result_cell_json(r, row, (size_t)col);
  char *s = json_is_string(j) ? cql__strdup(json_string_value(j)) : NULL;
  json_decref(j);
  return s;
}

/* Adds the nodes system.local/system.peers report on `first` (nodes[i]), and learns its data
 * centre. Nothing is changed unless both reads succeed. */
static int discover(cql_cluster *cl, size_t i, cql_error *err) {
  cql_conn *c = cl->nodes[i].conn;
  cql_result *local = NULL, *peers = NULL;
  char *dc = NULL;
  int rc = -1;
  if (cql_conn_query(c, "SELECT data_center, rpc_address FROM system.local WHERE key='local'", NULL,
                     0, NULL, &local, err) < 0)
    goto done;
  if (cl->o.discover_peers &&
      cql_conn_query(c, "SELECT peer, rpc_address, data_center FROM system.peers", NULL, 0, NULL,
                     &peers, err) < 0)
    goto done;
  dc = text_cell(local, 0, "data_center");
  if (!cl->local_dc && dc && !(cl->local_dc = cql__strdup(dc))) goto nomem;
  cql__free(cl->nodes[i].dc);
  cl->nodes[i].dc = dc;
  dc = NULL;
  for (size_t k = 0; k < cql_result_row_count(peers); k++) {
    char *addr = text_cell(peers, k, "rpc_address");
    if (!addr || strcmp(addr, "0.0.0.0") == 0) {
      cql__free(addr);
      addr = text_cell(peers, k, "peer");
    }
    char *pdc = text_cell(peers, k, "data_center");
    node *n = addr ? node_add(cl, addr, pdc) : NULL;
    bool failed = addr && !n;
    cql__free(addr);
    cql__free(pdc);
    if (failed) goto nomem;
  }
  rc = 0;
  goto done;
nomem:
  cql__fail(err, CQL_ERR_NOMEM, "out of memory");
done:
  cql__free(dc);
  cql_result_free(local);
  cql_result_free(peers);
  return rc;
}

static int copy_opts(cql_cluster *cl, const cql_cluster_options *o) {
  cl->o = *o;
  cl->o.contact_points = NULL;
  cl->o.port = o->port ? o->port : DEFAULT_PORT;
  if (!cl->o.default_consistency) cl->o.default_consistency = CQL_ONE;
  if (cl->o.schema_agreement_timeout_ms <= 0)
    cl->o.schema_agreement_timeout_ms = DEFAULT_AGREEMENT_MS;
  if (cl->o.reconnect_base_ms <= 0) cl->o.reconnect_base_ms = DEFAULT_RECONNECT_BASE_MS;
  if (cl->o.reconnect_max_ms <= 0) cl->o.reconnect_max_ms = DEFAULT_RECONNECT_MAX_MS;
  if (cl->o.connect_timeout_ms <= 0) cl->o.connect_timeout_ms = DEFAULT_CONNECT_MS;
  if (cl->o.request_timeout_ms <= 0) cl->o.request_timeout_ms = DEFAULT_REQUEST_MS;
  cl->control = SIZE_MAX;
  struct {
    char **dst;
    const char *src;
  } s[] = {{&cl->username, o->username},
           {&cl->password, o->password},
           {&cl->keyspace, o->keyspace},
           {&cl->tls_ca_file, o->tls_ca_file},
           {&cl->local_dc, o->local_dc}};
  for (size_t i = 0; i < sizeof s / sizeof s[0]; i++)
    if (s[i].src && !(*s[i].dst = cql__strdup(s[i].src))) return -1;
  return 0;
}

cql_cluster *cql_cluster_open(const cql_cluster_options *o, cql_error *err) {
  if (!o || !o->contact_points || o->n_contact_points == 0) {
    cql__fail(err, CQL_ERR_MISUSE, "cql_cluster_open: no contact points");
    return NULL;
  }
  cql_cluster *cl = cql__calloc(1, sizeof *cl);
  if (!cl || copy_opts(cl, o) < 0) {
    cql__fail(err, CQL_ERR_NOMEM, "out of memory");
    cql_cluster_close(cl);
    return NULL;
  }
  for (size_t i = 0; i < o->n_contact_points; i++)
    if (!node_add(cl, o->contact_points[i], NULL)) {
      cql__fail(err, CQL_ERR_NOMEM, "out of memory");
      cql_cluster_close(cl);
      return NULL;
    }
  /* Learn the cluster from the first contact point that connects and answers the discovery
   * reads, each one within the connect timeout: one that accepts and then stalls or talks
   * nonsense at any step is skipped for the next. */
  cql_buf why;
  cql__buf_init(&why);
  size_t first = SIZE_MAX;
  for (size_t i = 0; i < o->n_contact_points && first == SIZE_MAX; i++) {
    cql_error e = {0};
    int64_t deadline = cql__now_ms() + cl->o.connect_timeout_ms;
    cql_conn *c = node_conn(cl, &cl->nodes[i], deadline, &e);
    if (c) {
      cql__conn_set_deadline(c, deadline);
      int rc = discover(cl, i, &e);
      cql__conn_set_deadline(c, 0);
      if (rc == 0) first = i;
      if (rc < 0 && e.kind == CQL_ERR_NOMEM) {
        cql__error_move(err, &e);
        cql__buf_free(&why);
        cql_cluster_close(cl);
        return NULL;
      }
    }
    if (first == SIZE_MAX) {
      note_failure(&why, &cl->nodes[i], &e);
      cql_conn_close(cl->nodes[i].conn);
      cl->nodes[i].conn = NULL;
      node_mark_down(cl, &cl->nodes[i], &e);
    }
    cql_error_clear(&e);
  }
  if (first == SIZE_MAX) {
    cql__buf_u8(&why, 0);
    cql__fail(err, CQL_ERR_NO_HOSTS, "no contact point answered: %s",
              why.oom ? "(out of memory)" : (const char *)why.data);
    cql__buf_free(&why);
    cql_cluster_close(cl);
    return NULL;
  }
  cql__buf_free(&why);
  if (cl->keyspace) cl->replicas = read_replicas(cl->nodes[first].conn, cl->keyspace);
  return cl;
}

void cql_cluster_close(cql_cluster *cl) {
  if (!cl) return;
  for (size_t i = 0; i < cl->nnodes; i++) node_clear(&cl->nodes[i]);
  cql__free(cl->nodes);
  cql__free(cl->username);
  if (cl->password) /* do not leave the secret in freed memory */
    memset(cl->password, 0, strlen(cl->password));
  cql__free(cl->password);
  cql__free(cl->keyspace);
  cql__free(cl->tls_ca_file);
  cql__free(cl->local_dc);
  cql__free(cl);
}

size_t cql_cluster_node_count(const cql_cluster *cl) { return cl ? cl->nnodes : 0; }

const char *cql_cluster_node_host(const cql_cluster *cl, size_t i) {
  return cl && i < cl->nnodes ? cl->nodes[i].host : NULL;
}

const char *cql_cluster_node_dc(const cql_cluster *cl, size_t i) {
  return cl && i < cl->nnodes ? cl->nodes[i].dc : NULL;
}

int cql_cluster_node_is_up(const cql_cluster *cl, size_t i) {
  return cl && i < cl->nnodes && !cl->nodes[i].down;
}
