/*
 * http_server.c — libmicrohttpd glue for the admin API: reads each request (headers,
 * query, body as JSON, urlencoded or multipart form), enforces the limits, hands the parsed
 * request to http_api.c and writes its JSON answer.
 */
#ifdef KDAO_HAVE_HTTP

#include "http_server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "http_gate.h"
#include "http_params.h"

#define SERVER_HEADER "kdao/" KDAO_VERSION_STRING
#define POST_BUFFER 8192
/*
 * Connections MHD may hold beyond max_connections: the gate counts a connection it handed
 * over only once MHD reports it started, so a burst can briefly exceed the limit; at its
 * own limit MHD would close what the gate has admitted.
 */
#define HANDOFF_SLACK 64

/* Longest request id taken from a client's X-Request-Id. */
#define MAX_REQUEST_ID 64

/* One listening address: its gate and its MHD daemon. */
typedef struct listener {
  kdao__http_server *server;
  struct MHD_Daemon *daemon; /* NULL: this listener is not configured */
  kdao__http_gate *gate;
  char *default_base; /* base URL when a request has no Host header (HTTP/1.0) */
  char *cert, *key;   /* TLS: the PEM texts, kept while the daemon runs */
  unsigned port;
  bool tls;
  atomic_bool starting;
  char start_log[192]; /* MHD's messages while starting */
} listener;

enum { PLAIN, TLS, LISTENERS };

struct kdao__http_server {
  listener listeners[LISTENERS];
  kdao__http_api *api;
  kdao__http_limits limits;
  kdao__http_auth auth;
  FILE *access_log;
  /*
   * Each daemon runs its handlers on its own thread, and the factory may be used by one
   * thread at a time: the handlers take this lock.
   */
  pthread_mutex_t api_lock;
  atomic_ullong requests;    /* heads read */
  atomic_ullong in_progress; /* requests between their head and their completion */
};

typedef enum body_kind {
  BODY_IGNORED, /* a method without body (GET, DELETE): whatever comes is discarded */
  BODY_JSON,
  BODY_URLENCODED,
  BODY_MULTIPART
} body_kind;

/* One request being read. Lives from the first call of the handler to its completion. */
typedef struct request {
  char id[MAX_REQUEST_ID + 1]; /* X-Request-Id: the client's when sane, else generated */
  char *method, *path;         /* for the access log */
  int status;                  /* of the response queued; 0 while none is */
  size_t bytes;                /* of its body */
  body_kind kind;
  char *buf; /* raw JSON or urlencoded body; the multipart field being streamed */
  size_t len, cap;
  size_t received;
  struct timespec started; /* the head was complete: the body has limits.timeout to come */
  struct MHD_PostProcessor *pp;
  json_t *form;            /* multipart fields: flat object */
  char *last_key;          /* multipart field being streamed in pieces, held in buf */
  kdao__http_text problem; /* why a multipart field was refused */
  bool failed;             /* the body could not be kept (out of memory, a refused field) */
  bool responded;          /* a response was queued before the body ended */
} request;

static void request_free(request *r) {
  if (!r) return;
  if (r->pp) MHD_destroy_post_processor(r->pp);
  json_decref(r->form);
  free(r->method);
  free(r->path);
  free(r->last_key);
  free(r->buf);
  free(r);
}

/* ------------------------------------------------------------------------------------------
 * Responses
 * ---------------------------------------------------------------------------------------- */

/*
 * Sends `body` (stolen; NULL for none) as Kong does: compact JSON and a newline, with the
 * request's id. With `close`, the connection ends after it: what follows on it cannot be
 * trusted. `challenge`: the WWW-Authenticate of a 401.
 */
static enum MHD_Result send_json_ex(struct MHD_Connection *conn, request *r, int status,
                                    json_t *body, bool close, const char *challenge) {
  char *text = NULL;
  size_t len = 0;
  if (body) {
    size_t n = json_dumpb(body, NULL, 0, JSON_COMPACT);
    text = n ? malloc(n + 1) : NULL;
    if (text) {
      json_dumpb(body, text, n, JSON_COMPACT);
      text[n] = '\n';
      len = n + 1;
    } else {
      status = 500;
    }
    json_decref(body);
  }
  struct MHD_Response *resp = MHD_create_response_from_buffer(
      len, text, text ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
  if (!resp) {
    free(text);
    return MHD_NO;
  }
  if (len)
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json; charset=utf-8");
  MHD_add_response_header(resp, MHD_HTTP_HEADER_SERVER, SERVER_HEADER);
  MHD_add_response_header(resp, "X-Request-Id", r->id);
  if (close) MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
  if (challenge) MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE, challenge);
  enum MHD_Result rc = MHD_queue_response(conn, (unsigned)status, resp);
  if (rc == MHD_YES) {
    r->status = status;
    r->bytes = len;
  }
  MHD_destroy_response(resp);
  return rc;
}

static enum MHD_Result send_json(struct MHD_Connection *conn, request *r, int status,
                                 json_t *body) {
  return send_json_ex(conn, r, status, body, false, NULL);
}

static enum MHD_Result send_message(struct MHD_Connection *conn, request *r, int status,
                                    const char *msg) {
  return send_json(conn, r, status, kdao__http_message(msg));
}

/* 400 for a request text that cannot become a kdao string: "Invalid query string: ...". */
static enum MHD_Result send_problem(struct MHD_Connection *conn, request *r, const char *where,
                                    kdao__http_text problem) {
  char msg[128];
  snprintf(msg, sizeof msg, "Invalid %s: a parameter %s", where, kdao__http_text_problem(problem));
  return send_message(conn, r, 400, msg);
}

/* ------------------------------------------------------------------------------------------
 * Reading the body
 * ---------------------------------------------------------------------------------------- */

static bool needs_body(const char *method) {
  return !strcmp(method, "POST") || !strcmp(method, "PUT") || !strcmp(method, "PATCH");
}

static bool content_type_is(const char *ct, const char *type) {
  return ct && strncasecmp(ct, type, strlen(type)) == 0;
}

static int buffer_append(request *r, const char *data, size_t size) {
  if (r->len + size + 1 > r->cap) {
    size_t cap = r->cap ? r->cap : 1024;
    while (cap < r->len + size + 1) cap *= 2;
    char *p = realloc(r->buf, cap);
    if (!p) return -1;
    r->buf = p;
    r->cap = cap;
  }
  memcpy(r->buf + r->len, data, size);
  r->len += size;
  r->buf[r->len] = '\0';
  return 0;
}

/*
 * Adds the multipart field gathered in r->buf to the form. Its bytes are checked only now,
 * whole: MHD may cut a field inside a UTF-8 sequence.
 */
static int flush_field(request *r) {
  if (!r->last_key) return 0;
  int rc = kdao__http_form_add(r->form, r->last_key, r->buf ? r->buf : "", r->len);
  free(r->last_key);
  r->last_key = NULL;
  r->len = 0;
  if (rc > 0) r->problem = (kdao__http_text)rc;
  if (rc != 0) r->failed = true;
  return rc;
}

/*
 * MHD hands a multipart field in pieces (`off` > 0 continues the previous one); a file
 * part counts as its content, as Kong's parse_value does.
 */
static enum MHD_Result on_form_field(void *cls, enum MHD_ValueKind kind, const char *key,
                                     const char *filename, const char *content_type,
                                     const char *transfer_encoding, const char *data, uint64_t off,
                                     size_t size) {
  (void)kind, (void)filename, (void)content_type, (void)transfer_encoding;
  request *r = cls;
  if (!(off > 0 && r->last_key && !strcmp(r->last_key, key))) {
    if (flush_field(r) != 0) return MHD_NO;
    r->last_key = strdup(key);
    if (!r->last_key) {
      r->failed = true;
      return MHD_NO;
    }
  }
  if (size && buffer_append(r, data, size) != 0) {
    r->failed = true;
    return MHD_NO;
  }
  return MHD_YES;
}

typedef struct framing {
  const char *length; /* the first Content-Length */
  bool conflict;      /* another Content-Length says otherwise */
  bool chunked;       /* a Transfer-Encoding as well */
} framing;

static enum MHD_Result on_header(void *cls, enum MHD_ValueKind kind, const char *key,
                                 const char *value) {
  (void)kind;
  framing *f = cls;
  if (!strcasecmp(key, MHD_HTTP_HEADER_TRANSFER_ENCODING)) f->chunked = true;
  if (strcasecmp(key, MHD_HTTP_HEADER_CONTENT_LENGTH)) return MHD_YES;
  if (f->length && strcmp(f->length, value ? value : "")) f->conflict = true;
  if (!f->length) f->length = value ? value : "";
  return MHD_YES;
}

/*
 * A body whose length two headers state differently (two Content-Lengths, or one with a
 * Transfer-Encoding) is where request smuggling starts: MHD would pick one silently, a
 * proxy in front of kdao perhaps the other. RFC 9112 §6.3 makes it an unrecoverable error.
 */
static bool framing_is_ambiguous(struct MHD_Connection *conn) {
  framing f = {0};
  MHD_get_connection_values(conn, MHD_HEADER_KIND, on_header, &f);
  return f.conflict || (f.length && f.chunked);
}

/*
 * A client's request id is taken when it cannot disturb a log line or a header: letters,
 * digits and "-_.:" only, at most MAX_REQUEST_ID of them.
 */
static bool request_id_is_sane(const char *id) {
  static const char allowed[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                "0123456789-_.:";
  size_t n = id ? strlen(id) : 0;
  return n > 0 && n <= MAX_REQUEST_ID && strspn(id, allowed) == n;
}

/* 128 random bits in hex; should the generator fail, the request's number. */
static void request_id_new(char *out, unsigned long long number) {
  unsigned char raw[16];
  if (RAND_bytes(raw, sizeof raw) != 1) {
    snprintf(out, MAX_REQUEST_ID + 1, "%llu", number);
    return;
  }
  for (size_t i = 0; i < sizeof raw; i++) snprintf(out + 2 * i, 3, "%02x", raw[i]);
}

/*
 * First call for a request: names it, checks its credentials (401 before the body comes),
 * decides how its body will be read, or answers at once — 415 for a write without a usable
 * Content-Type (Kong's before_filter), 413 for a declared length over the limit, so the
 * client learns before sending it.
 */
static enum MHD_Result request_begin(kdao__http_server *s, struct MHD_Connection *conn,
                                     const char *url, const char *method, request **out) {
  const char *ct = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
  const char *cl =
      MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
  const char *id = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-Request-Id");
  request *r = calloc(1, sizeof *r);
  if (!r) return MHD_NO;
  *out = r;
  clock_gettime(CLOCK_MONOTONIC, &r->started);
  unsigned long long number = atomic_fetch_add(&s->requests, 1) + 1;
  atomic_fetch_add(&s->in_progress, 1);
  if (request_id_is_sane(id))
    snprintf(r->id, sizeof r->id, "%s", id);
  else
    request_id_new(r->id, number);
  r->method = strdup(method);
  r->path = strdup(url);
  if (framing_is_ambiguous(conn)) {
    r->responded = true;
    return send_json_ex(conn, r, 400, kdao__http_message("Conflicting Content-Length headers"),
                        true, NULL);
  }
  /* The header itself is never logged or echoed: it holds the secret. */
  if (!kdao__http_auth_check(&s->auth, MHD_lookup_connection_value(
                                           conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION))) {
    r->responded = true;
    return send_json_ex(conn, r, 401, kdao__http_message("Unauthorized"), false,
                        kdao__http_auth_challenge(&s->auth));
  }
  if (!needs_body(method)) return MHD_YES;
  /* Kong reads JSON wherever the type mentions it (its find() on the lowered header). */
  if (ct && strcasestr(ct, "application/json"))
    r->kind = BODY_JSON;
  else if (content_type_is(ct, "application/x-www-form-urlencoded"))
    r->kind = BODY_URLENCODED;
  else if (content_type_is(ct, "multipart/form-data"))
    r->kind = BODY_MULTIPART;
  else {
    r->responded = true;
    return send_message(conn, r, 415,
                        "Unsupported Content-Type. Use application/json, "
                        "application/x-www-form-urlencoded or multipart/form-data");
  }
  if (cl && strtoull(cl, NULL, 10) > s->limits.max_body) {
    r->responded = true;
    return send_message(conn, r, 413, "Request body too large");
  }
  if (r->kind == BODY_MULTIPART) {
    r->form = json_object();
    r->pp = r->form ? MHD_create_post_processor(conn, POST_BUFFER, on_form_field, r) : NULL;
    if (!r->pp) {
      r->responded = true;
      return send_message(conn, r, 400, "Cannot parse multipart body");
    }
  }
  return MHD_YES;
}

static double seconds_since(const struct timespec *t) {
  struct timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  return (double)(now.tv_sec - t->tv_sec) + (double)(now.tv_nsec - t->tv_nsec) / 1e9;
}

/*
 * One chunk of body. Past the limit the connection is answered 413 (or dropped). MHD's
 * timeout is an idle one, which a client sending a byte now and then never reaches: the
 * body as a whole must come within limits.timeout, else the connection is closed (MHD
 * cannot queue an answer while it is reading a body).
 */
static enum MHD_Result request_data(kdao__http_server *s, struct MHD_Connection *conn, request *r,
                                    const char *data, size_t size) {
  if (r->responded) return MHD_YES;
  if (seconds_since(&r->started) > s->limits.timeout) return MHD_NO;
  if (r->kind == BODY_IGNORED) return MHD_YES;
  r->received += size;
  if (r->received > s->limits.max_body) {
    r->responded = true;
    return send_message(conn, r, 413, "Request body too large");
  }
  if (r->failed) return MHD_YES;
  if (r->kind == BODY_MULTIPART) {
    if (MHD_post_process(r->pp, data, size) != MHD_YES) r->failed = true;
  } else if (buffer_append(r, data, size) != 0) {
    r->failed = true;
  }
  return MHD_YES;
}

/* The body's parameters, nested keys normalised; NULL with a response sent on failure. */
static json_t *request_params(struct MHD_Connection *conn, request *r, enum MHD_Result *rc) {
  json_t *flat = NULL;
  const char *bad = "Cannot parse form body";
  kdao__http_text problem = KDAO__HTTP_TEXT_OK;
  switch (r->kind) {
  case BODY_JSON: {
    flat = r->len ? json_loadb(r->buf, r->len, 0, NULL) : json_object();
    bad = "Cannot parse JSON body";
    if (flat && !json_is_object(flat)) {
      json_decref(flat);
      flat = NULL;
    }
    break;
  }
  case BODY_URLENCODED: flat = kdao__http_parse_urlencoded(r->buf, r->len, &problem); break;
  case BODY_MULTIPART:
    bad = "Cannot parse multipart body";
    if (!r->failed && MHD_destroy_post_processor(r->pp) == MHD_YES && flush_field(r) == 0)
      flat = json_incref(r->form);
    r->pp = NULL;
    problem = r->problem;
    break;
  case BODY_IGNORED: return NULL;
  }
  json_t *params = flat ? kdao__http_normalize(flat) : NULL;
  json_decref(flat);
  if (!params && problem != KDAO__HTTP_TEXT_OK)
    *rc =
        send_problem(conn, r, r->kind == BODY_MULTIPART ? "multipart body" : "form body", problem);
  else if (!params)
    *rc = send_message(conn, r, 400, bad);
  return params;
}

/* ------------------------------------------------------------------------------------------
 * Request handling
 * ---------------------------------------------------------------------------------------- */

typedef struct query_args {
  json_t *query;
  int rc; /* 0, -1 out of memory, or a kdao__http_text problem */
} query_args;

/* Collects the query arguments, which MHD left percent-encoded (see no_unescape). */
static enum MHD_Result on_query_arg(void *cls, enum MHD_ValueKind kind, const char *key,
                                    const char *value) {
  (void)kind;
  query_args *q = cls;
  char *k = strdup(key), *v = strdup(value ? value : "");
  int rc = k && v ? (int)kdao__http_unescape(k, true) : -1;
  if (rc == 0) rc = (int)kdao__http_unescape(v, true);
  if (rc == 0 && k[0]) rc = kdao__http_form_add(q->query, k, v, strlen(v));
  free(k);
  free(v);
  q->rc = rc;
  return rc == 0 ? MHD_YES : MHD_NO;
}

/*
 * The Host header ends up in `next` links, JSON strings: only what a host name, an IPv4 or
 * a bracketed IPv6 address and a port are made of is taken; anything else (bytes that are
 * not UTF-8 among them) falls back to the listen address.
 */
static bool host_is_plain(const char *host) {
  static const char allowed[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                "0123456789.-_:[]";
  return host && *host && strspn(host, allowed) == strlen(host);
}

static char *base_url(listener *l, struct MHD_Connection *conn) {
  const char *host = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_HOST);
  if (!host_is_plain(host)) return strdup(l->default_base);
  size_t n = strlen(host) + sizeof "https://";
  char *url = malloc(n);
  if (url) snprintf(url, n, "%s://%s", l->tls ? "https" : "http", host);
  return url;
}

/* GET /status's counters: both listeners' gates and the requests in progress. */
static void server_counters(void *cls, kdao__http_counters *out) {
  kdao__http_server *s = cls;
  *out = (kdao__http_counters){.total_requests = atomic_load(&s->requests),
                               .writing = atomic_load(&s->in_progress)};
  for (int i = 0; i < LISTENERS; i++) {
    if (!s->listeners[i].gate) continue;
    kdao__http_gate_stats g;
    kdao__http_gate_stats_get(s->listeners[i].gate, &g);
    out->accepted += g.accepted;
    out->handled += g.handled;
    out->reading += g.waiting;
    out->active += g.waiting + g.served;
  }
  /* Requests in progress on connections the server holds: the rest of those are idle. */
  unsigned long long busy = out->reading + out->writing;
  out->waiting = out->active > busy ? out->active - busy : 0;
}

static enum MHD_Result request_end(listener *l, struct MHD_Connection *conn, const char *url,
                                   const char *method, request *r) {
  kdao__http_server *s = l->server;
  enum MHD_Result rc = MHD_YES;
  json_t *body = NULL;
  /*
   * A path segment is a value the client supplies (a name, a username, an id). One that no
   * stored row can hold — not UTF-8, or with a NUL byte — is a malformed request, as Kong
   * answers a malformed value with 400; a 404 would claim the name was looked up and not
   * found (and Kong 0.10 answered 500 "invalid byte sequence" instead).
   */
  kdao__http_text path = kdao__http_check_path(url);
  if (path != KDAO__HTTP_TEXT_OK) {
    char msg[96];
    snprintf(msg, sizeof msg, "Invalid URI path: a segment %s", kdao__http_text_problem(path));
    return send_message(conn, r, 400, msg);
  }
  if (r->kind != BODY_IGNORED && !(body = request_params(conn, r, &rc))) return rc;
  json_t *query = json_object();
  char *base = base_url(l, conn);
  if (!query || !base) {
    rc = send_message(conn, r, 500, KDAO__HTTP_INTERNAL_ERROR);
    goto cleanup;
  }
  query_args q = {.query = query};
  MHD_get_connection_values(conn, MHD_GET_ARGUMENT_KIND, on_query_arg, &q);
  if (q.rc != 0) {
    rc = q.rc < 0 ? send_message(conn, r, 500, KDAO__HTTP_INTERNAL_ERROR)
                  : send_problem(conn, r, "query string", (kdao__http_text)q.rc);
    goto cleanup;
  }
  kdao__http_request req = {.method = method,
                            .path = url,
                            .query = query,
                            .body = body,
                            .base_url = base,
                            .request_id = r->id,
                            .counters = server_counters,
                            .counters_cls = s};
  json_t *out = NULL;
  pthread_mutex_lock(&s->api_lock);
  int status = kdao__http_handle(s->api, &req, &out);
  pthread_mutex_unlock(&s->api_lock);
  rc = send_json(conn, r, status, out);
cleanup:
  free(base);
  json_decref(query);
  json_decref(body);
  return rc;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls) {
  (void)version;
  listener *l = cls;
  kdao__http_server *s = l->server;
  request *r = *con_cls;
  if (!r) return request_begin(s, conn, url, method, (request **)con_cls);
  if (*upload_data_size) {
    enum MHD_Result rc = request_data(s, conn, r, upload_data, *upload_data_size);
    *upload_data_size = 0;
    return rc;
  }
  if (r->responded) return MHD_YES;
  r->responded = true;
  if (r->failed)
    return send_message(conn, r, 400,
                        r->kind == BODY_MULTIPART ? "Cannot parse multipart body"
                                                  : "Cannot read request body");
  return request_end(l, conn, url, method, r);
}

/*
 * Appends `s` to the line, bytes that could forge a field or a line, or upset a terminal,
 * as \xHH. Stops at `end`.
 */
static char *log_text(char *p, const char *end, const char *s) {
  for (; s && *s && p + 5 < end; s++) {
    unsigned char ch = (unsigned char)*s;
    if (ch > 0x20 && ch < 0x7f && ch != '"' && ch != '\\')
      *p++ = (char)ch;
    else
      p += snprintf(p, (size_t)(end - p), "\\x%02x", ch);
  }
  *p = '\0';
  return p;
}

/*
 * The access log line: time (UTC), client address, request id, "METHOD path", status (- when
 * none was sent), response body bytes, milliseconds from the head's arrival to completion.
 * The path comes without its query string; no header is logged.
 */
static void access_log(kdao__http_server *s, struct MHD_Connection *conn, const request *r) {
  char client[INET6_ADDRSTRLEN] = "-", when[32], method[64], path[2048], status[8] = "-";
  const union MHD_ConnectionInfo *info =
      MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
  const struct sockaddr *sa = info ? info->client_addr : NULL;
  if (sa && sa->sa_family == AF_INET)
    inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, client, sizeof client);
  else if (sa && sa->sa_family == AF_INET6)
    inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, client, sizeof client);
  struct timespec now;
  struct tm tm;
  clock_gettime(CLOCK_REALTIME, &now);
  gmtime_r(&now.tv_sec, &tm);
  size_t n = strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &tm);
  snprintf(when + n, sizeof when - n, ".%03ldZ", now.tv_nsec / 1000000);
  log_text(method, method + sizeof method, r->method);
  log_text(path, path + sizeof path, r->path);
  if (r->status) snprintf(status, sizeof status, "%d", r->status);
  fprintf(s->access_log, "%s %s %s \"%s %s\" %s %zu %.3f\n", when, client, r->id, method, path,
          status, r->bytes, seconds_since(&r->started) * 1000);
  fflush(s->access_log);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe) {
  (void)toe;
  listener *l = cls;
  request *r = *con_cls;
  if (!r) return;
  if (l->server->access_log) access_log(l->server, conn, r);
  atomic_fetch_sub(&l->server->in_progress, 1);
  request_free(r);
  *con_cls = NULL;
}

/*
 * MHD would decode the path before we see it, turning "%2F" inside a consumer's username
 * into a separator. Keeping it encoded lets the router split first and decode each segment
 * (Kong's ngx.unescape_uri on the capture); query arguments are decoded in on_query_arg.
 */
static size_t no_unescape(void *cls, struct MHD_Connection *conn, char *s) {
  (void)cls, (void)conn;
  return strlen(s);
}

/* The gate counts the connections MHD holds against the limits. */
static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
                          enum MHD_ConnectionNotificationCode code) {
  (void)socket_context;
  listener *l = cls;
  const union MHD_ConnectionInfo *info =
      MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
  if (!info || !info->client_addr) return;
  if (code == MHD_CONNECTION_NOTIFY_STARTED)
    kdao__http_gate_opened(l->gate, info->client_addr);
  else
    kdao__http_gate_closed(l->gate, info->client_addr);
}

static void handoff(void *cls, int fd, const struct sockaddr *addr, socklen_t addrlen) {
  listener *l = cls;
  /* On failure MHD has closed the socket; the client sees the connection end. */
  MHD_add_connection(l->daemon, fd, addr, addrlen);
}

/*
 * MHD's messages go to stderr, except while its daemon starts: then they explain why it
 * could not (GnuTLS's reading of the certificate), and become part of the JSON error.
 */
static void on_mhd_log(void *cls, const char *fmt, va_list ap) {
  listener *l = cls;
  if (!atomic_load(&l->starting)) {
    fputs("kdao serve: ", stderr);
    vfprintf(stderr, fmt, ap);
    return;
  }
  size_t n = strlen(l->start_log);
  if (n + 3 >= sizeof l->start_log) return;
  if (n) n += (size_t)snprintf(l->start_log + n, sizeof l->start_log - n, "; ");
  vsnprintf(l->start_log + n, sizeof l->start_log - n, fmt, ap);
  n += strcspn(l->start_log + n, "\n");
  l->start_log[n] = '\0';
}

/* ------------------------------------------------------------------------------------------
 * Life cycle
 * ---------------------------------------------------------------------------------------- */

/* Resolves host:port to one socket address (numeric hosts and names alike). */
static int resolve(const char *host, unsigned port, struct sockaddr_storage *ss, socklen_t *len,
                   char *errbuf, size_t errlen) {
  struct addrinfo hints = {
      .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE};
  struct addrinfo *res = NULL;
  char service[8];
  snprintf(service, sizeof service, "%u", port);
  int rc = getaddrinfo(*host ? host : NULL, service, &hints, &res);
  if (rc != 0) {
    snprintf(errbuf, errlen, "cannot resolve '%s': %s", host, gai_strerror(rc));
    return KDAO_ERR_CONFIG;
  }
  memcpy(ss, res->ai_addr, res->ai_addrlen);
  *len = res->ai_addrlen;
  freeaddrinfo(res);
  return KDAO_OK;
}

/*
 * The listening socket. The gate peeks at a whole request head before it is read, so the
 * receive buffer must hold max_header bytes (it does by default up to some 64 KiB).
 */
static int listen_on(const char *host, unsigned port, const struct sockaddr_storage *ss,
                     socklen_t len, size_t max_header, int *out, char *errbuf, size_t errlen) {
  int fd = socket(ss->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  int one = 1, rcvbuf = 0;
  socklen_t optlen = sizeof rcvbuf;
  bool ok = fd >= 0 && setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) == 0;
  if (ok && getsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, &optlen) == 0 &&
      (size_t)rcvbuf / 2 < max_header) {
    int want = (int)(max_header * 2 + 4096);
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &want, sizeof want);
  }
  ok = ok && bind(fd, (const struct sockaddr *)ss, len) == 0 && listen(fd, SOMAXCONN) == 0;
  if (!ok) {
    int e = errno;
    snprintf(errbuf, errlen, "cannot listen on %s%s%s:%u: %s", ss->ss_family == AF_INET6 ? "[" : "",
             host, ss->ss_family == AF_INET6 ? "]" : "", port, strerror(e));
    if (fd >= 0) close(fd);
    return e == ENOMEM || e == ENOBUFS ? KDAO_ERR_NOMEM : KDAO_ERR_IO;
  }
  *out = fd;
  return KDAO_OK;
}

int kdao__http_host_is_loopback(const char *host) {
  struct sockaddr_storage ss;
  socklen_t len;
  char errbuf[256]; /* the reason is not shown here: -1 says "cannot tell" */
  if (resolve(host, 0, &ss, &len, errbuf, sizeof errbuf) != KDAO_OK) return -1;
  if (ss.ss_family == AF_INET)
    return (ntohl(((struct sockaddr_in *)&ss)->sin_addr.s_addr) >> 24) == 127;
  if (ss.ss_family != AF_INET6) return 0;
  const struct in6_addr *a = &((struct sockaddr_in6 *)&ss)->sin6_addr;
  return IN6_IS_ADDR_LOOPBACK(a) || (IN6_IS_ADDR_V4MAPPED(a) && a->s6_addr[12] == 127);
}

/* Starts listener `l` on host:port: its socket, its daemon, then its gate. */
static int listener_start(kdao__http_server *s, listener *l, const kdao__http_settings *set,
                          bool tls, char *errbuf, size_t errlen) {
  const kdao__http_limits *limits = &set->limits;
  const char *host = tls ? set->tls_host : set->host;
  unsigned port = tls ? set->tls_port : set->port;
  struct sockaddr_storage ss = {0};
  socklen_t sslen = 0;
  int fd = -1;
  l->server = s;
  l->tls = tls;
  int kind = resolve(host, port, &ss, &sslen, errbuf, errlen);
  if (kind == KDAO_OK)
    kind = listen_on(host, port, &ss, sslen, limits->max_header, &fd, errbuf, errlen);
  if (kind != KDAO_OK) return kind;
  struct sockaddr_storage bound;
  socklen_t blen = sizeof bound;
  if (getsockname(fd, (struct sockaddr *)&bound, &blen) == 0)
    l->port = ntohs(bound.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&bound)->sin6_port
                                                : ((struct sockaddr_in *)&bound)->sin_port);
  size_t n = strlen(host) + 32;
  l->default_base = malloc(n);
  if (tls) {
    l->cert = strdup(set->tls_cert);
    l->key = strdup(set->tls_key);
  }
  if (!l->default_base || (tls && (!l->cert || !l->key))) {
    close(fd);
    snprintf(errbuf, errlen, "out of memory");
    return KDAO_ERR_NOMEM;
  }
  snprintf(l->default_base, n, ss.ss_family == AF_INET6 ? "%s://[%s]:%u" : "%s://%s:%u",
           tls ? "https" : "http", host, l->port);
  /*
   * MHD reads a request line and headers that passed the gate's max_header check into its
   * per-connection memory, which also holds its bookkeeping and the response headers:
   * twice the head's limit keeps MHD from refusing, with its own HTML page, what the gate let
   * through.
   */
  size_t memory = limits->max_header * 2 + 16 * 1024;
  unsigned flags = MHD_USE_AUTO_INTERNAL_THREAD | MHD_USE_ERROR_LOG | MHD_USE_NO_LISTEN_SOCKET |
                   MHD_USE_ITC | (tls ? MHD_USE_TLS : 0);
  struct MHD_OptionItem tls_options[] = {{MHD_OPTION_HTTPS_MEM_KEY, 0, l->key},
                                         {MHD_OPTION_HTTPS_MEM_CERT, 0, l->cert},
                                         {MHD_OPTION_END, 0, NULL}};
  struct MHD_OptionItem no_options[] = {{MHD_OPTION_END, 0, NULL}};
  /* The logger goes first: MHD reports problems with the options that follow through it. */
  atomic_store(&l->starting, true);
  l->daemon = MHD_start_daemon(
      flags, 0, NULL, NULL, on_request, l, MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, l,
      MHD_OPTION_CONNECTION_LIMIT, limits->max_connections + HANDOFF_SLACK,
      MHD_OPTION_CONNECTION_TIMEOUT, limits->timeout, MHD_OPTION_CONNECTION_MEMORY_LIMIT, memory,
      MHD_OPTION_NOTIFY_COMPLETED, on_completed, l, MHD_OPTION_NOTIFY_CONNECTION, on_connection, l,
      MHD_OPTION_UNESCAPE_CALLBACK, no_unescape, s, MHD_OPTION_ARRAY,
      tls ? tls_options : no_options, MHD_OPTION_END);
  atomic_store(&l->starting, false);
  if (!l->daemon) {
    close(fd);
    if (tls)
      snprintf(errbuf, errlen,
               "cannot start the HTTPS server on %s:%u (%s): check admin_ssl_cert and "
               "admin_ssl_cert_key (PEM, the key unencrypted)",
               host, port, l->start_log[0] ? l->start_log : "no reason given");
    else
      snprintf(errbuf, errlen, "cannot start the HTTP server on %s:%u%s%s%s", host, port,
               l->start_log[0] ? " (" : "", l->start_log, l->start_log[0] ? ")" : "");
    return tls ? KDAO_ERR_CONFIG : KDAO_ERR_IO;
  }
  kdao__http_gate_limits gl = {.max_connections = limits->max_connections,
                               .max_per_client = limits->max_per_client < limits->max_connections
                                                     ? limits->max_per_client
                                                     : limits->max_connections,
                               .max_header = limits->max_header,
                               .header_timeout = limits->header_timeout,
                               .tls = tls};
  /* The gate owns the socket from here, on failure too. */
  if (kdao__http_gate_start(fd, &gl, handoff, l, &l->gate, errbuf, errlen) != 0) return KDAO_ERR_IO;
  return KDAO_OK;
}

int kdao__http_server_start(kdao__http_api *api, const kdao__http_settings *settings,
                            kdao__http_server **out, char *errbuf, size_t errlen) {
  *out = NULL;
  kdao__http_server *s = calloc(1, sizeof *s);
  if (!s) {
    snprintf(errbuf, errlen, "out of memory");
    return KDAO_ERR_NOMEM;
  }
  s->api = api;
  s->limits = settings->limits;
  s->auth = settings->auth;
  s->access_log = settings->access_log;
  pthread_mutex_init(&s->api_lock, NULL);
  int kind = KDAO_OK;
  if (settings->host)
    kind = listener_start(s, &s->listeners[PLAIN], settings, false, errbuf, errlen);
  if (kind == KDAO_OK && settings->tls_host)
    kind = listener_start(s, &s->listeners[TLS], settings, true, errbuf, errlen);
  if (kind != KDAO_OK) {
    kdao__http_server_stop(s);
    return kind;
  }
  *out = s;
  return KDAO_OK;
}

unsigned kdao__http_server_port(const kdao__http_server *s, bool tls) {
  const listener *l = &s->listeners[tls ? TLS : PLAIN];
  return l->daemon ? l->port : 0;
}

void kdao__http_server_stop(kdao__http_server *s) {
  if (!s) return;
  /* The gates first: nothing may be handed to a stopped daemon, which still reports closes. */
  for (int i = 0; i < LISTENERS; i++) kdao__http_gate_stop(s->listeners[i].gate);
  for (int i = 0; i < LISTENERS; i++) {
    listener *l = &s->listeners[i];
    if (l->daemon) MHD_stop_daemon(l->daemon);
    kdao__http_gate_free(l->gate);
    free(l->default_base);
    free(l->cert);
    if (l->key) {
      OPENSSL_cleanse(l->key, strlen(l->key));
      free(l->key);
    }
  }
  pthread_mutex_destroy(&s->api_lock);
  free(s);
}

#endif /* KDAO_HAVE_HTTP */
