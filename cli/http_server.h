/*
 * http_server.h — the admin API's HTTP/1.1 server on libmicrohttpd.
 *
 * One event-driven thread (epoll on Linux) serves every connection and runs the handlers,
 * so the factory — usable by one thread at a time — needs no lock, and a slow or stalled
 * client costs a socket, not a thread: MHD only calls us with complete headers and body
 * chunks already read. In front of it the gate (http_gate.h) accepts connections, refuses
 * those over the limits with a 503, and hands over a connection only once its first request
 * head has arrived — within header_timeout — and passed its checks. Idle connections time
 * out, and oversized heads or bodies are answered with an error, in JSON like every answer.
 */
#ifndef KDAO_HTTP_SERVER_H
#define KDAO_HTTP_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "http_api.h"
#include "http_auth.h"

typedef struct kdao__http_limits {
  unsigned max_connections; /* simultaneous connections; more are refused (503) */
  unsigned max_per_client;  /* the same, per client address */
  size_t max_body;          /* request body bytes; more → 413 */
  size_t max_header;        /* bytes of request line and headers; more → 414 or 431 */
  unsigned header_timeout;  /* seconds from connecting to a complete first request head */
  unsigned timeout;         /* seconds a connection may stay idle, or take to send a body */
} kdao__http_limits;

/*
 * What to serve and how. Each listener (plain HTTP, HTTPS) has its own gate, so the
 * connection limits apply to each; the handlers of both run one at a time, the factory being
 * usable by one thread at a time.
 */
typedef struct kdao__http_settings {
  kdao__http_limits limits;
  const char *host; /* plain HTTP on host:port (port 0: any free port); NULL: none */
  unsigned port;
  const char *tls_host; /* HTTPS on tls_host:tls_port; NULL: none */
  unsigned tls_port;
  const char *tls_cert; /* PEM text of the certificate (and chain), and of its key */
  const char *tls_key;
  kdao__http_auth auth; /* credentials every request must carry */
  FILE *access_log;     /* one line per request; NULL: none. The caller closes it. */
} kdao__http_settings;

typedef struct kdao__http_server kdao__http_server;

/*
 * Starts serving `api` as `settings` say (at least one listener). `api` must outlive the
 * server. Returns KDAO_OK, or with a reason in errbuf KDAO_ERR_CONFIG (a host does not
 * resolve, the certificate or key is unusable), KDAO_ERR_IO (cannot listen: address in use,
 * not local, no permission...) or KDAO_ERR_NOMEM.
 */
int kdao__http_server_start(kdao__http_api *api, const kdao__http_settings *settings,
                            kdao__http_server **out, char *errbuf, size_t errlen);

/* The port actually bound by the HTTPS (`tls`) or the plain listener; 0 when there is none. */
unsigned kdao__http_server_port(const kdao__http_server *s, bool tls);

/*
 * Whether `host` (as in admin_listen) resolves to a loopback address — the one the server
 * would bind: 1 yes, 0 no (a LAN address, 0.0.0.0, ::), -1 it does not resolve.
 */
int kdao__http_host_is_loopback(const char *host);

/* Stops accepting, finishes the request being handled, closes everything. NULL-safe. */
void kdao__http_server_stop(kdao__http_server *s);

#endif
