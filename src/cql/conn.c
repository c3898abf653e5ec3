/*
 * conn.c — one connection to one Cassandra node.
 *
 * The socket is non-blocking; every wait is a poll() bounded by a deadline, so no call can
 * hang past its timeout. Plain TCP and TLS are two transport tables with the same three
 * operations, not #ifdefs in the request path. Requests carry stream ids: several can be in
 * flight, and a response read while waiting for another stream is parked in its slot.
 */
#include "cql_int.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define DEFAULT_PORT 9042
#define DEFAULT_CONNECT_TIMEOUT_MS 5000
#define DEFAULT_REQUEST_TIMEOUT_MS 12000
#define IO_WOULD_BLOCK (-2)

typedef struct stream_slot {
  bool busy; /* a request was sent on this stream and not yet waited for */
  bool done; /* its response (or decode failure) is parked here */
  /* Its caller gave up waiting: the id stays taken until the late answer arrives, so that
   * answer cannot be mistaken for a later request's. */
  bool abandoned;
  int timeout_ms;            /* as asked, for messages */
  int64_t sent_at, deadline; /* monotonic ms */
  cql_response resp;
  cql_error err; /* server error or decode failure for this stream */
  bool failed;
} stream_slot;

/* A transport moves bytes. read/write return the count (> 0), 0 on end of stream, -1 on
 * error (with err filled), or IO_WOULD_BLOCK with *want set to POLLIN or POLLOUT. */
typedef struct cql_transport {
  long (*read)(cql_conn *c, void *p, size_t n, short *want, cql_error *err);
  long (*write)(cql_conn *c, const void *p, size_t n, short *want, cql_error *err);
  void (*close)(cql_conn *c);
} cql_transport;

struct cql_conn {
  int fd;
  const cql_transport *tx;
  SSL_CTX *ssl_ctx;
  SSL *ssl;
  char host[320]; /* "address:port" */
  char *keyspace;
  int request_timeout_ms;
  int64_t call_deadline; /* > 0: no wait goes past it (cql__conn_set_deadline) */
  int nabandoned;
  bool broken;
  cql_buf in; /* received bytes; in_pos is the first unparsed one */
  size_t in_pos;
  stream_slot slots[CQL_MAX_STREAMS];
  int next_stream;
  cql_event **events; /* queued server events, oldest first */
  size_t nevents, events_cap;
};

/* ---- transports --------------------------------------------------------------------------- */

static long tcp_read(cql_conn *c, void *p, size_t n, short *want, cql_error *err) {
  ssize_t r = recv(c->fd, p, n, 0);
  if (r >= 0) return (long)r;
  if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
    *want = POLLIN;
    return IO_WOULD_BLOCK;
  }
  return cql__fail(err, CQL_ERR_IO, "read from %s failed: %s", c->host, strerror(errno));
}

static long tcp_write(cql_conn *c, const void *p, size_t n, short *want, cql_error *err) {
  ssize_t r = send(c->fd, p, n, MSG_NOSIGNAL);
  if (r >= 0) return (long)r;
  if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
    *want = POLLOUT;
    return IO_WOULD_BLOCK;
  }
  return cql__fail(err, CQL_ERR_IO, "write to %s failed: %s", c->host, strerror(errno));
}

static void tcp_close(cql_conn *c) {
  if (c->fd >= 0) close(c->fd);
  c->fd = -1;
}

static const cql_transport tcp_transport = {
    .read = tcp_read,
    .write = tcp_write,
    .close = tcp_close,
};

static int tls_fail(cql_conn *c, cql_error *err, const char *what) {
  char buf[256] = "unknown error";
  unsigned long e = ERR_get_error();
  if (e) ERR_error_string_n(e, buf, sizeof buf);
  ERR_clear_error();
  return cql__fail(err, CQL_ERR_TLS, "TLS %s with %s failed: %s", what, c->host, buf);
}

static long tls_result(cql_conn *c, int r, short *want, cql_error *err) {
  if (r > 0) return r;
  switch (SSL_get_error(c->ssl, r)) {
  case SSL_ERROR_WANT_READ: *want = POLLIN; return IO_WOULD_BLOCK;
  case SSL_ERROR_WANT_WRITE: *want = POLLOUT; return IO_WOULD_BLOCK;
  case SSL_ERROR_ZERO_RETURN: return 0;
  case SSL_ERROR_SYSCALL:
    if (errno == 0) return 0;
    return cql__fail(err, CQL_ERR_IO, "TLS I/O with %s failed: %s", c->host, strerror(errno));
  default: return tls_fail(c, err, "I/O");
  }
}

static long tls_read(cql_conn *c, void *p, size_t n, short *want, cql_error *err) {
  int len = n > INT32_MAX ? INT32_MAX : (int)n;
  ERR_clear_error();
  errno = 0;
  return tls_result(c, SSL_read(c->ssl, p, len), want, err);
}

static long tls_write(cql_conn *c, const void *p, size_t n, short *want, cql_error *err) {
  int len = n > INT32_MAX ? INT32_MAX : (int)n;
  ERR_clear_error();
  errno = 0;
  return tls_result(c, SSL_write(c->ssl, p, len), want, err);
}

static void tls_close(cql_conn *c) {
  if (c->ssl) {
    SSL_shutdown(c->ssl); /* best effort, non-blocking */
    SSL_free(c->ssl);
    c->ssl = NULL;
  }
  if (c->ssl_ctx) {
    SSL_CTX_free(c->ssl_ctx);
    c->ssl_ctx = NULL;
  }
  tcp_close(c);
}

static const cql_transport tls_transport = {
    .read = tls_read,
    .write = tls_write,
    .close = tls_close,
};

/* ---- waiting ------------------------------------------------------------------------------ */

/* Polls for `events` until `deadline` (monotonic ms). 1 ready, 0 timed out, -1 error. */
static int wait_fd(int fd, short events, int64_t deadline) {
  for (;;) {
    int64_t left = deadline - cql__now_ms();
    if (left <= 0) return 0;
    struct pollfd p = {.fd = fd, .events = events};
    int r = poll(&p, 1, left > INT32_MAX ? INT32_MAX : (int)left);
    if (r > 0) return 1;
    if (r == 0) return 0;
    if (errno != EINTR) return -1;
  }
}

static int conn_break(cql_conn *c, cql_error *err) {
  c->broken = true;
  cql__error_set_host(err, c->host);
  return -1;
}

static int timeout_fail(cql_conn *c, cql_error *err, const char *what, int ms) {
  cql__fail(err, CQL_ERR_TIMEOUT, "timeout %s %s after %d ms", what, c->host, ms);
  return conn_break(c, err);
}

/* ---- connecting --------------------------------------------------------------------------- */

static int set_nonblocking(int fd) {
  int fl = fcntl(fd, F_GETFL, 0);
  return fl < 0 ? -1 : fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

/* Tries one resolved address. Returns the socket, or -1 with *why set (errno value, or
 * ETIMEDOUT when the deadline passed). */
static int tcp_try(const struct addrinfo *ai, int64_t deadline, int *why) {
  int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
  if (fd < 0) {
    *why = errno;
    return -1;
  }
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one);
  if (set_nonblocking(fd) < 0) goto fail;
  if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) return fd;
  if (errno != EINPROGRESS) goto fail;
  int r = wait_fd(fd, POLLOUT, deadline);
  if (r == 0) {
    close(fd);
    *why = ETIMEDOUT;
    return -1;
  }
  int soerr = 0;
  socklen_t sl = sizeof soerr;
  if (r < 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0) goto fail;
  if (soerr == 0) return fd;
  errno = soerr;
fail:
  *why = errno;
  close(fd);
  return -1;
}

static int tcp_connect(cql_conn *c, const char *host, uint16_t port, int64_t deadline,
                       int timeout_ms, cql_error *err) {
  char service[8];
  snprintf(service, sizeof service, "%u", port);
  struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
  struct addrinfo *res = NULL;
  int gai = getaddrinfo(host, service, &hints, &res);
  if (gai != 0)
    return cql__fail(err, CQL_ERR_CONNECT, "cannot resolve %s: %s", c->host, gai_strerror(gai));
  int why = ECONNREFUSED;
  for (struct addrinfo *ai = res; ai && c->fd < 0; ai = ai->ai_next)
    c->fd = tcp_try(ai, deadline, &why);
  freeaddrinfo(res);
  if (c->fd >= 0) return 0;
  if (why == ETIMEDOUT)
    return cql__fail(err, CQL_ERR_TIMEOUT, "timeout connecting to %s after %d ms", c->host,
                     timeout_ms);
  if (why == ECONNREFUSED)
    return cql__fail(err, CQL_ERR_CONNECT, "connection refused: %s", c->host);
  return cql__fail(err, CQL_ERR_CONNECT, "cannot connect to %s: %s", c->host, strerror(why));
}

static int tls_setup(cql_conn *c, const cql_conn_options *o, int64_t deadline, cql_error *err) {
  c->ssl_ctx = SSL_CTX_new(TLS_client_method());
  if (!c->ssl_ctx) return tls_fail(c, err, "setup");
  SSL_CTX_set_min_proto_version(c->ssl_ctx, TLS1_2_VERSION);
  if (o->tls_verify) {
    SSL_CTX_set_verify(c->ssl_ctx, SSL_VERIFY_PEER, NULL);
    int ok = o->tls_ca_file ? SSL_CTX_load_verify_locations(c->ssl_ctx, o->tls_ca_file, NULL)
                            : SSL_CTX_set_default_verify_paths(c->ssl_ctx);
    if (ok != 1) return tls_fail(c, err, "loading CA certificates");
  }
  c->ssl = SSL_new(c->ssl_ctx);
  if (!c->ssl || SSL_set_fd(c->ssl, c->fd) != 1) return tls_fail(c, err, "setup");
  const char *name = o->tls_server_name ? o->tls_server_name : o->host;
  SSL_set_tlsext_host_name(c->ssl, name);
  if (o->tls_verify && SSL_set1_host(c->ssl, name) != 1) return tls_fail(c, err, "setup");
  c->tx = &tls_transport;
  for (;;) {
    ERR_clear_error();
    int r = SSL_connect(c->ssl);
    if (r == 1) return 0;
    short want;
    switch (SSL_get_error(c->ssl, r)) {
    case SSL_ERROR_WANT_READ: want = POLLIN; break;
    case SSL_ERROR_WANT_WRITE: want = POLLOUT; break;
    default: {
      long vr = SSL_get_verify_result(c->ssl);
      if (vr != X509_V_OK)
        return cql__fail(err, CQL_ERR_TLS, "TLS handshake with %s failed: %s", c->host,
                         X509_verify_cert_error_string(vr));
      return tls_fail(c, err, "handshake");
    }
    }
    if (wait_fd(c->fd, want, deadline) <= 0)
      return cql__fail(err, CQL_ERR_TIMEOUT, "timeout in TLS handshake with %s", c->host);
  }
}

/* ---- sending and receiving ---------------------------------------------------------------- */

static int write_all(cql_conn *c, const uint8_t *p, size_t n, int64_t deadline, int timeout_ms,
                     cql_error *err) {
  while (n > 0) {
    short want = 0;
    long w = c->tx->write(c, p, n, &want, err);
    if (w > 0) {
      p += w;
      n -= (size_t)w;
      continue;
    }
    if (w == 0) {
      cql__fail(err, CQL_ERR_IO, "connection to %s closed", c->host);
      return conn_break(c, err);
    }
    if (w != IO_WOULD_BLOCK) return conn_break(c, err);
    int r = wait_fd(c->fd, want, deadline);
    if (r == 0) return timeout_fail(c, err, "writing to", timeout_ms);
    if (r < 0) {
      cql__fail(err, CQL_ERR_IO, "poll on %s failed: %s", c->host, strerror(errno));
      return conn_break(c, err);
    }
  }
  return 0;
}

/* Reads at least one byte more into c->in, waiting until `deadline`. 1 read, 0 timed out,
 * -1 failed (connection broken). */
static int read_some(cql_conn *c, size_t want_total, int64_t deadline, cql_error *err) {
  if (c->in_pos > 0 && c->in_pos == c->in.len) {
    c->in.len = c->in_pos = 0;
  } else if (c->in_pos > 0 && c->in.cap - c->in.len < 4096) {
    memmove(c->in.data, c->in.data + c->in_pos, c->in.len - c->in_pos);
    c->in.len -= c->in_pos;
    c->in_pos = 0;
  }
  size_t room = want_total > 16384 ? want_total : 16384;
  if (c->in.cap - c->in.len < room) {
    size_t len = c->in.len;
    cql_buf *b = &c->in;
    uint8_t *d = cql__realloc(b->data, len + room);
    if (!d) {
      cql__fail(err, CQL_ERR_NOMEM, "out of memory");
      return conn_break(c, err);
    }
    b->data = d;
    b->cap = len + room;
  }
  for (;;) {
    short want = 0;
    long r = c->tx->read(c, c->in.data + c->in.len, c->in.cap - c->in.len, &want, err);
    if (r > 0) {
      c->in.len += (size_t)r;
      return 1;
    }
    if (r == 0) {
      cql__fail(err, CQL_ERR_IO, "connection to %s closed by the server", c->host);
      return conn_break(c, err);
    }
    if (r != IO_WOULD_BLOCK) return conn_break(c, err);
    int w = wait_fd(c->fd, want, deadline);
    if (w == 0) return 0;
    if (w < 0) {
      cql__fail(err, CQL_ERR_IO, "poll on %s failed: %s", c->host, strerror(errno));
      return conn_break(c, err);
    }
  }
}

static int queue_event(cql_conn *c, cql_event *ev) {
  if (c->nevents == c->events_cap) {
    size_t cap = c->events_cap ? c->events_cap * 2 : 8;
    cql_event **e = cql__realloc(c->events, cap * sizeof *e);
    if (!e) return -1;
    c->events = e;
    c->events_cap = cap;
  }
  c->events[c->nevents++] = ev;
  return 0;
}

static void release_stream(cql_conn *c, int s);

/* Hands one complete frame to its stream slot or the event queue. Frames for streams nobody
 * waits for (e.g. after a caller gave up) are dropped. */
static void dispatch(cql_conn *c, const cql_frame *f) {
  if (f->stream < 0) {
    cql_response resp;
    cql_error serr = {0}, derr = {0};
    if (f->opcode == CQL_OP_EVENT && cql__response_decode(f, &resp, &serr, &derr) == 0 &&
        resp.event) {
      if (queue_event(c, resp.event) == 0) resp.event = NULL;
    }
    if (f->opcode == CQL_OP_EVENT) cql__response_clear(&resp);
    cql_error_clear(&serr);
    cql_error_clear(&derr);
    return;
  }
  if (f->stream >= CQL_MAX_STREAMS || !c->slots[f->stream].busy || c->slots[f->stream].done) return;
  stream_slot *s = &c->slots[f->stream];
  if (s->abandoned) {
    release_stream(c, f->stream);
    return;
  }
  s->done = true;
  cql_error derr = {0};
  if (cql__response_decode(f, &s->resp, &s->err, &derr) < 0) {
    cql__error_move(&s->err, &derr);
    s->failed = true;
  } else if (s->resp.opcode == CQL_OP_ERROR) {
    s->failed = true;
  }
  if (s->failed) cql__error_set_host(&s->err, c->host);
}

/* Parses every complete frame in the input buffer. -1 on a malformed frame (broken). */
static int drain_frames(cql_conn *c, size_t *need, cql_error *err) {
  for (;;) {
    cql_frame f;
    size_t used = 0;
    cql_decode_status st =
        cql__frame_parse(c->in.data + c->in_pos, c->in.len - c->in_pos, &f, &used);
    if (st == CQL_DECODE_MALFORMED) {
      cql__fail(err, CQL_ERR_MALFORMED, "malformed frame header from %s", c->host);
      return conn_break(c, err);
    }
    if (st == CQL_DECODE_NEED_MORE) {
      *need = used - (c->in.len - c->in_pos);
      return 0;
    }
    dispatch(c, &f);
    c->in_pos += used;
  }
}

static int alloc_stream(cql_conn *c, cql_error *err) {
  for (int k = 0; k < CQL_MAX_STREAMS; k++) {
    int s = (c->next_stream + k) % CQL_MAX_STREAMS;
    if (!c->slots[s].busy) {
      c->next_stream = (s + 1) % CQL_MAX_STREAMS;
      return s;
    }
  }
  return cql__fail(err, CQL_ERR_MISUSE, "too many requests in flight on %s (max %d)", c->host,
                   CQL_MAX_STREAMS);
}

static void release_stream(cql_conn *c, int s) {
  if (c->slots[s].abandoned) c->nabandoned--;
  cql__response_clear(&c->slots[s].resp);
  cql_error_clear(&c->slots[s].err);
  memset(&c->slots[s], 0, sizeof c->slots[s]);
}

/* The earlier of now + ms and the call's deadline. */
static int64_t deadline_in(const cql_conn *c, int ms) {
  int64_t d = cql__now_ms() + ms;
  return c->call_deadline > 0 && c->call_deadline < d ? c->call_deadline : d;
}

/* Builds one request in `b` around the body written by `enc` and sends it. Returns the stream
 * id, or -1. */
typedef int (*body_fn)(cql_buf *b, const void *arg, cql_error *err);

static int send_request(cql_conn *c, uint8_t opcode, body_fn enc, const void *arg, int timeout_ms,
                        cql_error *err) {
  if (c->broken) return cql__fail(err, CQL_ERR_IO, "connection to %s is broken", c->host);
  int s = alloc_stream(c, err);
  if (s < 0) return -1;
  cql_buf b;
  cql__buf_init(&b);
  size_t start = cql__frame_begin(&b, (int16_t)s, opcode);
  if (enc && enc(&b, arg, err) < 0) {
    cql__buf_free(&b);
    return -1;
  }
  cql__frame_finish(&b, start);
  if (b.oom) {
    cql__buf_free(&b);
    return cql__fail(err, CQL_ERR_NOMEM, "out of memory (or request too large)");
  }
  int ms = timeout_ms > 0 ? timeout_ms : c->request_timeout_ms;
  int64_t sent_at = cql__now_ms(), deadline = deadline_in(c, ms);
  int rc = write_all(c, b.data, b.len, deadline, ms, err);
  cql__buf_free(&b);
  if (rc < 0) return -1;
  c->slots[s].busy = true;
  c->slots[s].timeout_ms = ms;
  c->slots[s].deadline = deadline;
  c->slots[s].sent_at = sent_at;
  return s;
}

/*
 * The answer on stream `s` did not come in time. The connection stays usable: a node that is
 * alive but slow (its coordinator waiting for a dead replica) is no reason to reconnect. The
 * stream stays taken until its late answer arrives; a node that stops answering altogether
 * would fill every stream that way, so past half of them the connection is broken instead.
 */
static int give_up(cql_conn *c, int s, cql_error *err) {
  stream_slot *slot = &c->slots[s];
  cql__fail(err, CQL_ERR_TIMEOUT, "timeout waiting for %s after %d ms", c->host,
            (int)(slot->deadline - slot->sent_at));
  cql__error_set_host(err, c->host);
  slot->abandoned = true;
  if (++c->nabandoned > CQL_MAX_STREAMS / 2) c->broken = true;
  return -1;
}

/* Waits for the response on stream `s` and moves it into *resp. A server ERROR (or an
 * undecodable response) is returned as -1 with err; the stream is released either way. */
static int wait_response(cql_conn *c, int s, cql_response *resp, cql_error *err) {
  if (s < 0 || s >= CQL_MAX_STREAMS || !c->slots[s].busy)
    return cql__fail(err, CQL_ERR_MISUSE, "no request in flight on stream %d", s);
  stream_slot *slot = &c->slots[s];
  if (slot->abandoned) return cql__fail(err, CQL_ERR_MISUSE, "stream %d was given up", s);
  int64_t deadline = slot->deadline;
  while (!slot->done) {
    size_t need = 0;
    if (c->broken) {
      cql__fail(err, CQL_ERR_IO, "connection to %s is broken", c->host);
      release_stream(c, s);
      return conn_break(c, err);
    }
    if (drain_frames(c, &need, err) < 0 || slot->done) break;
    int r = read_some(c, need, deadline, err);
    if (r == 0) return give_up(c, s, err);
    if (r < 0) break;
  }
  if (!slot->done) {
    release_stream(c, s);
    return -1;
  }
  int rc = 0;
  if (slot->failed) {
    cql__error_move(err, &slot->err);
    rc = -1;
  } else {
    *resp = slot->resp;
    memset(&slot->resp, 0, sizeof slot->resp);
  }
  release_stream(c, s);
  return rc;
}

static int roundtrip(cql_conn *c, uint8_t opcode, body_fn enc, const void *arg, int timeout_ms,
                     cql_response *resp, cql_error *err) {
  int s = send_request(c, opcode, enc, arg, timeout_ms, err);
  if (s < 0) return -1;
  return wait_response(c, s, resp, err);
}

/* ---- start-up ----------------------------------------------------------------------------- */

static int enc_startup(cql_buf *b, const void *arg, cql_error *err) {
  (void)arg;
  (void)err;
  cql__enc_startup(b);
  return 0;
}

struct creds {
  const char *user, *password;
};

static int enc_auth(cql_buf *b, const void *arg, cql_error *err) {
  (void)err;
  const struct creds *cr = arg;
  cql__enc_auth_response(b, cr->user, cr->password);
  return 0;
}

static int authenticate(cql_conn *c, const cql_conn_options *o, const char *authenticator,
                        int timeout_ms, cql_error *err) {
  if (!o->username || !o->password)
    return cql__fail(err, CQL_ERR_AUTH,
                     "%s requires authentication (%s) but no credentials were given", c->host,
                     authenticator ? authenticator : "unknown authenticator");
  struct creds cr = {o->username, o->password};
  cql_response resp;
  if (roundtrip(c, CQL_OP_AUTH_RESPONSE, enc_auth, &cr, timeout_ms, &resp, err) < 0) return -1;
  uint8_t op = resp.opcode;
  cql__response_clear(&resp);
  if (op == CQL_OP_AUTH_SUCCESS) return 0;
  return cql__fail(err, CQL_ERR_AUTH, "%s: unsupported authentication challenge (opcode 0x%02x)",
                   c->host, op);
}

static int startup(cql_conn *c, const cql_conn_options *o, int timeout_ms, cql_error *err) {
  cql_response resp;
  if (roundtrip(c, CQL_OP_STARTUP, enc_startup, NULL, timeout_ms, &resp, err) < 0) return -1;
  int rc = 0;
  if (resp.opcode == CQL_OP_AUTHENTICATE)
    rc = authenticate(c, o, resp.authenticator, timeout_ms, err);
  else if (resp.opcode != CQL_OP_READY)
    rc = cql__fail(err, CQL_ERR_PROTOCOL, "%s answered STARTUP with opcode 0x%02x", c->host,
                   resp.opcode);
  cql__response_clear(&resp);
  return rc;
}

static int use_keyspace(cql_conn *c, const char *ks, cql_error *err) {
  /* Quote the identifier (doubling embedded quotes) so the name is taken as given. */
  cql_buf q;
  cql__buf_init(&q);
  cql__buf_put(&q, "USE \"", 5);
  for (const char *p = ks; *p; p++) {
    if (*p == '"')
      cql__buf_put(&q, "\"\"", 2);
    else
      cql__buf_put(&q, p, 1);
  }
  cql__buf_put(&q, "\"", 2); /* the closing quote and the NUL */
  if (q.oom) {
    cql__buf_free(&q);
    return cql__fail(err, CQL_ERR_NOMEM, "out of memory");
  }
  int rc = cql_conn_query(c, (const char *)q.data, NULL, 0, NULL, NULL, err);
  cql__buf_free(&q);
  return rc;
}

cql_conn *cql_conn_open(const cql_conn_options *o, cql_error *err) {
  if (!o || !o->host || !*o->host) {
    cql__fail(err, CQL_ERR_MISUSE, "cql_conn_open: no host given");
    return NULL;
  }
  cql_conn *c = cql__calloc(1, sizeof *c);
  if (!c) {
    cql__fail(err, CQL_ERR_NOMEM, "out of memory");
    return NULL;
  }
  c->fd = -1;
  c->tx = &tcp_transport;
  uint16_t port = o->port ? o->port : DEFAULT_PORT;
  bool v6 = strchr(o->host, ':') != NULL;
  snprintf(c->host, sizeof c->host, v6 ? "[%.256s]:%u" : "%.256s:%u", o->host, port);
  c->request_timeout_ms =
      o->request_timeout_ms > 0 ? o->request_timeout_ms : DEFAULT_REQUEST_TIMEOUT_MS;
  int ctimeout = o->connect_timeout_ms > 0 ? o->connect_timeout_ms : DEFAULT_CONNECT_TIMEOUT_MS;
  int64_t deadline = cql__now_ms() + ctimeout;
  if (tcp_connect(c, o->host, port, deadline, ctimeout, err) < 0) goto fail;
  if (o->tls && tls_setup(c, o, deadline, err) < 0) goto fail;
  /* One bound for the whole start-up: a node that accepts and then stalls costs no more. */
  c->call_deadline = deadline;
  if (startup(c, o, ctimeout, err) < 0) goto fail;
  if (o->keyspace && use_keyspace(c, o->keyspace, err) < 0) goto fail;
  c->call_deadline = 0;
  return c;
fail:
  cql__error_set_host(err, c->host);
  cql_conn_close(c);
  return NULL;
}

void cql_conn_close(cql_conn *c) {
  if (!c) return;
  c->tx->close(c);
  for (int s = 0; s < CQL_MAX_STREAMS; s++) release_stream(c, s);
  for (size_t i = 0; i < c->nevents; i++) cql_event_free(c->events[i]);
  cql__free(c->events);
  cql__buf_free(&c->in);
  cql__free(c->keyspace);
  cql__free(c);
}

const char *cql_conn_host(const cql_conn *c) { return c ? c->host : NULL; }

int cql_conn_is_broken(const cql_conn *c) { return !c || c->broken; }

void cql__conn_set_deadline(cql_conn *c, int64_t deadline) { c->call_deadline = deadline; }

int cql__conn_poll(cql_conn *c, cql_error *err) {
  if (c->broken) return cql__fail(err, CQL_ERR_IO, "connection to %s is broken", c->host);
  for (;;) {
    size_t need = 0;
    if (drain_frames(c, &need, err) < 0) return -1;
    int r = read_some(c, need, 0, err);
    if (r < 0) return -1;
    if (r == 0) return 0;
  }
}

const char *cql_conn_keyspace(const cql_conn *c) { return c ? c->keyspace : NULL; }

/* ---- requests ----------------------------------------------------------------------------- */

struct query_args {
  const char *query;
  const cql_prepared *prepared;
  const cql_value *values;
  size_t n;
  const cql_query_opts *opts;
};

static int enc_query_body(cql_buf *b, const void *arg, cql_error *err) {
  const struct query_args *a = arg;
  return cql__enc_query(b, a->query, a->values, a->n, a->opts, err);
}

static int enc_execute_body(cql_buf *b, const void *arg, cql_error *err) {
  const struct query_args *a = arg;
  return cql__enc_execute(b, a->prepared, a->values, a->n, a->opts, err);
}

static int enc_prepare_body(cql_buf *b, const void *arg, cql_error *err) {
  (void)err;
  const char *q = arg;
  cql__buf_long_string(b, q, strlen(q));
  return 0;
}

static int opts_timeout(const cql_query_opts *o) {
  return o && o->timeout_ms > 0 ? o->timeout_ms : 0;
}

static int check_conn(const cql_conn *c, const void *arg, const char *fn, cql_error *err) {
  if (!c || !arg)
    return cql__fail(err, CQL_ERR_MISUSE, "%s: NULL %s", fn, !c ? "connection" : "argument");
  return 0;
}

int cql_conn_submit_query(cql_conn *c, const char *query, const cql_value *values, size_t n_values,
                          const cql_query_opts *opts, cql_error *err) {
  if (check_conn(c, query, "cql_conn_submit_query", err) < 0) return -1;
  struct query_args a = {query, NULL, values, n_values, opts};
  return send_request(c, CQL_OP_QUERY, enc_query_body, &a, opts_timeout(opts), err);
}

int cql_conn_submit_execute(cql_conn *c, const cql_prepared *p, const cql_value *values,
                            size_t n_values, const cql_query_opts *opts, cql_error *err) {
  if (check_conn(c, p, "cql_conn_submit_execute", err) < 0) return -1;
  struct query_args a = {NULL, p, values, n_values, opts};
  return send_request(c, CQL_OP_EXECUTE, enc_execute_body, &a, opts_timeout(opts), err);
}

/* Turns a RESULT response into the caller's result. */
static int take_result(cql_conn *c, cql_response *resp, cql_result **out, cql_error *err) {
  if (resp->opcode != CQL_OP_RESULT || !resp->result) {
    int op = resp->opcode;
    cql__response_clear(resp);
    cql__fail(err, CQL_ERR_PROTOCOL, "%s answered with opcode 0x%02x instead of RESULT", c->host,
              op);
    return -1;
  }
  cql_result *r = resp->result;
  resp->result = NULL;
  if (r->kind == CQL_RESULT_SET_KEYSPACE && r->keyspace) {
    char *ks = cql__strdup(r->keyspace);
    if (ks) {
      cql__free(c->keyspace);
      c->keyspace = ks;
    }
  }
  if (out)
    *out = r;
  else
    cql_result_free(r);
  return 0;
}

int cql_conn_wait(cql_conn *c, int stream, cql_result **out, cql_error *err) {
  if (out) *out = NULL;
  if (!c) return cql__fail(err, CQL_ERR_MISUSE, "cql_conn_wait: NULL connection");
  cql_response resp;
  if (wait_response(c, stream, &resp, err) < 0) return -1;
  return take_result(c, &resp, out, err);
}

int cql_conn_query(cql_conn *c, const char *query, const cql_value *values, size_t n_values,
                   const cql_query_opts *opts, cql_result **out, cql_error *err) {
  if (out) *out = NULL;
  int s = cql_conn_submit_query(c, query, values, n_values, opts, err);
  return s < 0 ? -1 : cql_conn_wait(c, s, out, err);
}

int cql_conn_execute(cql_conn *c, const cql_prepared *p, const cql_value *values, size_t n_values,
                     const cql_query_opts *opts, cql_result **out, cql_error *err) {
  if (out) *out = NULL;
  int s = cql_conn_submit_execute(c, p, values, n_values, opts, err);
  return s < 0 ? -1 : cql_conn_wait(c, s, out, err);
}

int cql_conn_prepare(cql_conn *c, const char *query, cql_prepared **out, cql_error *err) {
  *out = NULL;
  if (check_conn(c, query, "cql_conn_prepare", err) < 0) return -1;
  cql_response resp;
  if (roundtrip(c, CQL_OP_PREPARE, enc_prepare_body, query, 0, &resp, err) < 0) return -1;
  cql_result *r = NULL;
  if (take_result(c, &resp, &r, err) < 0) return -1;
  if (r->kind != CQL_RESULT_PREPARED || !r->prepared) {
    cql_result_free(r);
    return cql__fail(err, CQL_ERR_PROTOCOL, "%s answered PREPARE without a statement", c->host);
  }
  cql_prepared *p = r->prepared;
  r->prepared = NULL;
  cql_result_free(r);
  p->query = cql__strdup(query);
  if (!p->query) {
    cql_prepared_free(p);
    return cql__fail(err, CQL_ERR_NOMEM, "out of memory");
  }
  *out = p;
  return 0;
}

struct batch_args {
  cql_batch_type type;
  const cql_batch_stmt *stmts;
  const cql_prepared *const *prepared;
  size_t n;
  const cql_query_opts *opts;
};

static int enc_batch_body(cql_buf *b, const void *arg, cql_error *err) {
  const struct batch_args *a = arg;
  return cql__enc_batch(b, a->type, a->stmts, a->prepared, a->n, a->opts, err);
}

int cql__conn_batch_prepared(cql_conn *c, cql_batch_type type, const cql_batch_stmt *stmts,
                             const cql_prepared *const *prepared, size_t n,
                             const cql_query_opts *opts, cql_result **out, cql_error *err) {
  if (out) *out = NULL;
  if (check_conn(c, stmts, "cql_conn_batch", err) < 0) return -1;
  struct batch_args a = {type, stmts, prepared, n, opts};
  cql_response resp;
  if (roundtrip(c, CQL_OP_BATCH, enc_batch_body, &a, opts_timeout(opts), &resp, err) < 0) return -1;
  return take_result(c, &resp, out, err);
}

int cql_conn_batch(cql_conn *c, cql_batch_type type, const cql_batch_stmt *stmts, size_t n,
                   const cql_query_opts *opts, cql_result **out, cql_error *err) {
  return cql__conn_batch_prepared(c, type, stmts, NULL, n, opts, out, err);
}

json_t *cql_conn_supported(cql_conn *c, cql_error *err) {
  if (!c) {
    cql__fail(err, CQL_ERR_MISUSE, "cql_conn_supported: NULL connection");
    return NULL;
  }
  cql_response resp;
  if (roundtrip(c, CQL_OP_OPTIONS, NULL, NULL, 0, &resp, err) < 0) return NULL;
  json_t *j = resp.supported;
  resp.supported = NULL;
  cql__response_clear(&resp);
  if (!j) cql__fail(err, CQL_ERR_PROTOCOL, "%s answered OPTIONS without SUPPORTED", c->host);
  return j;
}

static int enc_register_body(cql_buf *b, const void *arg, cql_error *err) {
  (void)err;
  cql__enc_register(b, arg);
  return 0;
}

int cql_conn_register(cql_conn *c, const char *const *events, cql_error *err) {
  if (check_conn(c, events, "cql_conn_register", err) < 0) return -1;
  cql_response resp;
  if (roundtrip(c, CQL_OP_REGISTER, enc_register_body, events, 0, &resp, err) < 0) return -1;
  uint8_t op = resp.opcode;
  cql__response_clear(&resp);
  if (op != CQL_OP_READY)
    return cql__fail(err, CQL_ERR_PROTOCOL, "%s answered REGISTER with opcode 0x%02x", c->host, op);
  return 0;
}

int cql_conn_next_event(cql_conn *c, int timeout_ms, cql_event **ev, cql_error *err) {
  *ev = NULL;
  if (!c) return cql__fail(err, CQL_ERR_MISUSE, "cql_conn_next_event: NULL connection");
  int64_t deadline = cql__now_ms() + (timeout_ms > 0 ? timeout_ms : 0);
  for (;;) {
    size_t need = 0;
    if (c->nevents == 0 && !c->broken && drain_frames(c, &need, err) < 0) return -1;
    if (c->nevents > 0) {
      *ev = c->events[0];
      memmove(c->events, c->events + 1, (c->nevents - 1) * sizeof *c->events);
      c->nevents--;
      return 1;
    }
    if (c->broken) return cql__fail(err, CQL_ERR_IO, "connection to %s is broken", c->host);
    if (cql__now_ms() >= deadline) return 0;
    int r = read_some(c, need, deadline, err);
    if (r == 0) return 0;
    if (r < 0) return -1;
  }
}
