/*
 * http_gate.h — the admin API's front door: accepts connections, counts them per client
 * address, and waits for the first request's head before a connection reaches the HTTP
 * server.
 *
 * libmicrohttpd 0.9.x cannot do three things the admin API needs: bound the time a client
 * takes to send its headers (its timeout is an idle timeout, reset by every byte), refuse a
 * connection over a limit without stalling the others (at its connection limit it stops
 * accepting, so newcomers wait in the kernel's backlog), and answer a malformed head with
 * anything but its built-in HTML (414 for a long URI) — or notice a NUL byte, which it
 * treats as the end of a line. The gate looks at the head with MSG_PEEK, so the server later
 * reads the request untouched, and answers what it refuses with Kong's JSON itself.
 *
 * It sees the first request of a connection only: later requests of a kept-alive connection
 * go to the server directly, within the server's own limits.
 */
#ifndef KDAO_HTTP_GATE_H
#define KDAO_HTTP_GATE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

typedef struct kdao__http_gate_limits {
  unsigned max_connections; /* connections held by the gate and the server together */
  unsigned max_per_client;  /* the same, per client address */
  size_t max_header;        /* bytes of request line and headers */
  unsigned header_timeout;  /* seconds from accept to a complete head */
  /*
   * The connections speak TLS: what arrives first is a handshake, not a head the gate could
   * check. Such a connection is handed over once its first bytes arrive (within
   * header_timeout), and one refused is closed without an answer — plain text would be
   * garbage to a TLS client.
   */
  bool tls;
} kdao__http_gate_limits;

/* What the gate has seen, for GET /status. */
typedef struct kdao__http_gate_stats {
  unsigned long long accepted; /* connections accepted */
  unsigned long long handled;  /* of those, admitted (not refused over a limit) */
  unsigned waiting;            /* admitted, their first request head not yet arrived */
  unsigned served;             /* handed over and still open in the server */
} kdao__http_gate_stats;

/*
 * Takes over a connection whose first request head has arrived and passed the checks. The
 * socket belongs to the callee from then on (closed by it on failure).
 */
typedef void (*kdao__http_gate_handoff)(void *cls, int fd, const struct sockaddr *addr,
                                        socklen_t addrlen);

typedef struct kdao__http_gate kdao__http_gate;

/*
 * Starts the gate's thread on `listen_fd` (a listening, non-blocking socket the gate then
 * owns). Returns 0, or -1 with a reason in errbuf.
 */
int kdao__http_gate_start(int listen_fd, const kdao__http_gate_limits *limits,
                          kdao__http_gate_handoff handoff, void *cls, kdao__http_gate **out,
                          char *errbuf, size_t errlen);

/*
 * The server reports the connections it holds, so that they count against the limits:
 * `opened` when it starts serving one the gate handed over, `closed` when it ends. Both may
 * be called from any thread.
 */
void kdao__http_gate_opened(kdao__http_gate *g, const struct sockaddr *addr);
void kdao__http_gate_closed(kdao__http_gate *g, const struct sockaddr *addr);

/* A snapshot of the counters; any thread. */
void kdao__http_gate_stats_get(kdao__http_gate *g, kdao__http_gate_stats *out);

/* Stops the thread and closes the listening socket and every connection not handed over. */
void kdao__http_gate_stop(kdao__http_gate *g);

/* Frees the gate once stopped and once the server reports no more connections. NULL-safe. */
void kdao__http_gate_free(kdao__http_gate *g);

#endif
