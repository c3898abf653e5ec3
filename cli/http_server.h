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

#include <stddef.h>

#include "http_api.h"

typedef struct kdao__http_limits {
  unsigned max_connections; /* simultaneous connections; more are refused (503) */
  unsigned max_per_client;  /* the same, per client address */
  size_t max_body;          /* request body bytes; more → 413 */
  size_t max_header;        /* bytes of request line and headers; more → 414 or 431 */
  unsigned header_timeout;  /* seconds from connecting to a complete first request head */
  unsigned timeout;         /* seconds a connection may stay idle, or take to send a body */
} kdao__http_limits;

typedef struct kdao__http_server kdao__http_server;

/*
 * Starts serving `api` on host:port (port 0: any free port). `api` must outlive the
 * server. Returns KDAO_OK, or with a reason in errbuf KDAO_ERR_CONFIG (the host does not
 * resolve), KDAO_ERR_IO (cannot listen: address in use, not local, no permission...) or
 * KDAO_ERR_NOMEM.
 */
int kdao__http_server_start(kdao__http_api *api, const char *host, unsigned port,
                            const kdao__http_limits *limits, kdao__http_server **out, char *errbuf,
                            size_t errlen);

/* The port actually bound. */
unsigned kdao__http_server_port(const kdao__http_server *s);

/* Stops accepting, finishes the request being handled, closes everything. NULL-safe. */
void kdao__http_server_stop(kdao__http_server *s);

#endif
