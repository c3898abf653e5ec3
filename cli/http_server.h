/*
 * http_server.h — the admin API's HTTP/1.1 server on libmicrohttpd.
 *
 * One event-driven thread (epoll on Linux) serves every connection and runs the handlers,
 * so the factory — usable by one thread at a time — needs no lock, and a slow or stalled
 * client costs a socket, not a thread: MHD only calls us with complete headers and body
 * chunks already read. Connections beyond the limit are refused, idle ones time out, and
 * oversized headers (MHD's per-connection memory) or bodies are answered with an error.
 */
#ifndef KDAO_HTTP_SERVER_H
#define KDAO_HTTP_SERVER_H

#include <stddef.h>

#include "http_api.h"

typedef struct kdao__http_limits {
  unsigned max_connections; /* simultaneous connections; more are refused */
  size_t max_body;          /* request body bytes; more → 413 */
  size_t max_header;        /* per-connection memory for the request line and headers */
  unsigned timeout;         /* seconds a connection may stay idle */
} kdao__http_limits;

typedef struct kdao__http_server kdao__http_server;

/*
 * Starts serving `api` on host:port (port 0: any free port). `api` must outlive the
 * server. Returns 0, or -1 with a reason in errbuf.
 */
int kdao__http_server_start(kdao__http_api *api, const char *host, unsigned port,
                            const kdao__http_limits *limits, kdao__http_server **out, char *errbuf,
                            size_t errlen);

/* The port actually bound. */
unsigned kdao__http_server_port(const kdao__http_server *s);

/* Stops accepting, finishes the request being handled, closes everything. NULL-safe. */
void kdao__http_server_stop(kdao__http_server *s);

#endif
