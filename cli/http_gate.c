/*
 * http_gate.c — the admin API's front door (see http_gate.h). One thread, one epoll set:
 * the listening socket, a wake-up pipe, the connections waiting for their first head, and
 * the refused ones being closed gracefully.
 */
#ifdef KDAO_HAVE_HTTP

#include "http_gate.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

#include "http_params.h"
#include "kdao.h"

/* Seconds a refused connection is drained before it is closed (see refuse()). */
#define LINGER_SECONDS 2
/* Refused connections drained at once; beyond, they are closed at once. */
#define MAX_LINGERING 64
#define EVENTS 64

/* The connections of one client address, in the gate and in the server. */
typedef struct client {
  struct sockaddr_storage addr; /* the address, port zeroed */
  unsigned pending, active;
  struct client *next;
} client;

typedef struct conn {
  int fd;
  struct sockaddr_storage addr;
  socklen_t addrlen;
  int64_t deadline; /* milliseconds, monotonic */
  client *client;   /* NULL once refused: no longer counted */
  struct conn *prev, *next;
} conn;

/* Connections in arrival order: every one has the same delay, so the first expires first. */
typedef struct conn_list {
  conn *head, *tail;
  unsigned count;
} conn_list;

struct kdao__http_gate {
  kdao__http_gate_limits limits;
  kdao__http_gate_handoff handoff;
  void *cls;
  int listen_fd, epoll_fd, wake[2];
  char *peek; /* limits.max_header bytes */
  conn_list waiting, lingering;
  bool listening; /* the listening socket is in the epoll set */
  int64_t resume_accept;
  pthread_t thread;
  bool started;
  pthread_mutex_t lock; /* clients and their counts: the server reports from its thread */
  client *clients;
  unsigned total, served; /* served: the part of total the server holds */
  unsigned long long accepted, handled;
};

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ------------------------------------------------------------------------------------------
 * Counting per client address
 * ---------------------------------------------------------------------------------------- */

static bool same_host(const struct sockaddr_storage *a, const struct sockaddr *b) {
  if (a->ss_family != b->sa_family) return false;
  if (b->sa_family == AF_INET)
    return !memcmp(&((const struct sockaddr_in *)a)->sin_addr,
                   &((const struct sockaddr_in *)b)->sin_addr, sizeof(struct in_addr));
  if (b->sa_family == AF_INET6)
    return !memcmp(&((const struct sockaddr_in6 *)a)->sin6_addr,
                   &((const struct sockaddr_in6 *)b)->sin6_addr, sizeof(struct in6_addr));
  return true;
}

/* The client entry of `addr`, created when `create`. Under the lock. */
static client *client_of(kdao__http_gate *g, const struct sockaddr *addr, bool create) {
  for (client *c = g->clients; c; c = c->next)
    if (same_host(&c->addr, addr)) return c;
  if (!create) return NULL;
  client *c = calloc(1, sizeof *c);
  if (!c) return NULL;
  c->addr.ss_family = addr->sa_family;
  if (addr->sa_family == AF_INET)
    ((struct sockaddr_in *)&c->addr)->sin_addr = ((const struct sockaddr_in *)addr)->sin_addr;
  else if (addr->sa_family == AF_INET6)
    ((struct sockaddr_in6 *)&c->addr)->sin6_addr = ((const struct sockaddr_in6 *)addr)->sin6_addr;
  c->next = g->clients;
  g->clients = c;
  return c;
}

/* Forgets a client with nothing left. Under the lock. */
static void client_release(kdao__http_gate *g, client *c) {
  if (c->pending || c->active) return;
  for (client **p = &g->clients; *p; p = &(*p)->next)
    if (*p == c) {
      *p = c->next;
      free(c);
      return;
    }
}

/*
 * Admits a new connection of `addr` as pending, or says why not: NULL when it may come in,
 * else the message of the 503.
 */
static const char *admit(kdao__http_gate *g, const struct sockaddr *addr, client **out) {
  const char *refusal = NULL;
  *out = NULL;
  pthread_mutex_lock(&g->lock);
  g->accepted++;
  client *c = client_of(g, addr, true);
  if (!c)
    refusal = "Out of memory";
  else if (g->total >= g->limits.max_connections)
    refusal = "Too many connections";
  else if (c->pending + c->active >= g->limits.max_per_client)
    refusal = "Too many connections from this address";
  if (!refusal) {
    c->pending++;
    g->total++;
    g->handled++;
    *out = c;
  } else if (c) {
    client_release(g, c);
  }
  pthread_mutex_unlock(&g->lock);
  return refusal;
}

/* A pending connection leaves the gate: refused, gone, or handed to the server. */
static void unpend(kdao__http_gate *g, conn *k) {
  if (!k->client) return;
  pthread_mutex_lock(&g->lock);
  k->client->pending--;
  g->total--;
  client_release(g, k->client);
  pthread_mutex_unlock(&g->lock);
  k->client = NULL;
}

void kdao__http_gate_opened(kdao__http_gate *g, const struct sockaddr *addr) {
  pthread_mutex_lock(&g->lock);
  client *c = client_of(g, addr, true);
  /* Without memory for the entry the connection goes uncounted, which only loosens a limit. */
  if (c) {
    c->active++;
    g->total++;
    g->served++;
  }
  pthread_mutex_unlock(&g->lock);
}

void kdao__http_gate_closed(kdao__http_gate *g, const struct sockaddr *addr) {
  pthread_mutex_lock(&g->lock);
  client *c = client_of(g, addr, false);
  if (c && c->active) {
    c->active--;
    g->total--;
    g->served--;
    client_release(g, c);
  }
  pthread_mutex_unlock(&g->lock);
}

void kdao__http_gate_stats_get(kdao__http_gate *g, kdao__http_gate_stats *out) {
  pthread_mutex_lock(&g->lock);
  *out = (kdao__http_gate_stats){.accepted = g->accepted,
                                 .handled = g->handled,
                                 .waiting = g->total - g->served,
                                 .served = g->served};
  pthread_mutex_unlock(&g->lock);
}

/* ------------------------------------------------------------------------------------------
 * Connections
 * ---------------------------------------------------------------------------------------- */

static void list_push(conn_list *l, conn *k) {
  k->prev = l->tail;
  k->next = NULL;
  if (l->tail)
    l->tail->next = k;
  else
    l->head = k;
  l->tail = k;
  l->count++;
}

static void list_remove(conn_list *l, conn *k) {
  if (k->prev)
    k->prev->next = k->next;
  else
    l->head = k->next;
  if (k->next)
    k->next->prev = k->prev;
  else
    l->tail = k->prev;
  l->count--;
}

/* Closes a connection the gate holds, in list `l` (NULL: in none yet). */
static void drop(kdao__http_gate *g, conn_list *l, conn *k) {
  if (l) list_remove(l, k);
  unpend(g, k);
  close(k->fd); /* also removes it from the epoll set */
  free(k);
}

static const char *reason_phrase(int status) {
  switch (status) {
  case 400: return "Bad Request";
  case 408: return "Request Timeout";
  case 414: return "URI Too Long";
  case 431: return "Request Header Fields Too Large";
  default: return "Service Unavailable";
  }
}

/*
 * Answers `status` with {"message": message} and closes. The answer may go before the
 * request is read, so closing at once could make the kernel reset the connection when the
 * request arrives, and a reset makes the client drop the answer unread: the connection is
 * half-closed and drained for a moment first. `message` is a constant of this file or
 * http_params.c, plain ASCII without quotes.
 */
static void refuse(kdao__http_gate *g, conn *k, conn_list *from, int status, const char *message) {
  if (g->limits.tls) {
    drop(g, from, k);
    return;
  }
  char body[160], text[512];
  int blen = snprintf(body, sizeof body, "{\"message\":\"%s\"}\n", message);
  int tlen = snprintf(text, sizeof text,
                      "HTTP/1.1 %d %s\r\nContent-Type: application/json; charset=utf-8\r\n"
                      "Server: kdao/" KDAO_VERSION_STRING
                      "\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s",
                      status, reason_phrase(status), blen, body);
  /* A new socket's send buffer takes this whole; a short write only shortens the answer. */
  if (send(k->fd, text, (size_t)tlen, MSG_NOSIGNAL | MSG_DONTWAIT) < 0 ||
      g->lingering.count >= MAX_LINGERING || shutdown(k->fd, SHUT_WR) != 0) {
    drop(g, from, k);
    return;
  }
  if (from) list_remove(from, k);
  unpend(g, k);
  k->deadline = now_ms() + LINGER_SECONDS * 1000;
  list_push(&g->lingering, k);
}

/* Reads and discards what a refused client still sends; closes on its end or an error. */
static void drain(kdao__http_gate *g, conn *k) {
  char sink[4096];
  for (;;) {
    ssize_t n = recv(k->fd, sink, sizeof sink, MSG_DONTWAIT);
    if (n > 0) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
    if (n < 0 && errno == EINTR) continue;
    drop(g, &g->lingering, k);
    return;
  }
}

/* Looks at what a waiting connection has sent: hands it over, refuses it, or waits on. */
static void inspect(kdao__http_gate *g, conn *k) {
  ssize_t n;
  do n = recv(k->fd, g->peek, g->limits.max_header, MSG_PEEK | MSG_DONTWAIT);
  while (n < 0 && errno == EINTR);
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
  if (n <= 0) {
    drop(g, &g->waiting, k); /* gone before a whole request */
    return;
  }
  const char *message = NULL;
  int verdict =
      g->limits.tls ? 0 : kdao__http_check_head(g->peek, (size_t)n, g->limits.max_header, &message);
  if (verdict < 0) return;
  if (verdict > 0) {
    refuse(g, k, &g->waiting, verdict, message);
    return;
  }
  list_remove(&g->waiting, k);
  epoll_ctl(g->epoll_fd, EPOLL_CTL_DEL, k->fd, NULL);
  unpend(g, k); /* the server counts it from now on (kdao__http_gate_opened) */
  g->handoff(g->cls, k->fd, (struct sockaddr *)&k->addr, k->addrlen);
  free(k);
}

/* Marks the epoll entries that are not connections. */
static char listen_tag, wake_tag;

static void accept_all(kdao__http_gate *g) {
  for (;;) {
    conn *k = calloc(1, sizeof *k);
    if (!k) return;
    k->addrlen = sizeof k->addr;
    k->fd = accept4(g->listen_fd, (struct sockaddr *)&k->addr, &k->addrlen,
                    SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (k->fd < 0) {
      int e = errno;
      free(k);
      if (e == EMFILE || e == ENFILE || e == ENOBUFS || e == ENOMEM) {
        /* Out of descriptors: pause accepting instead of spinning on a readable socket. */
        epoll_ctl(g->epoll_fd, EPOLL_CTL_DEL, g->listen_fd, NULL);
        g->listening = false;
        g->resume_accept = now_ms() + 100;
      }
      if (e == EINTR || e == ECONNABORTED) continue;
      return;
    }
    client *c;
    const char *refusal = admit(g, (struct sockaddr *)&k->addr, &c);
    k->client = c;
    struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP | EPOLLET, .data.ptr = k};
    if (epoll_ctl(g->epoll_fd, EPOLL_CTL_ADD, k->fd, &ev) != 0) {
      unpend(g, k);
      close(k->fd);
      free(k);
      continue;
    }
    if (refusal) {
      refuse(g, k, NULL, 503, refusal);
      continue;
    }
    k->deadline = now_ms() + (int64_t)g->limits.header_timeout * 1000;
    list_push(&g->waiting, k);
    /* The request may be there already: edge-triggered epoll reports only what comes next. */
    inspect(g, k);
  }
}

/* Milliseconds until the next deadline, -1 for none. */
static int next_timeout(const kdao__http_gate *g, int64_t now) {
  int64_t t = INT64_MAX;
  if (g->waiting.head) t = g->waiting.head->deadline;
  if (g->lingering.head && g->lingering.head->deadline < t) t = g->lingering.head->deadline;
  if (!g->listening && g->resume_accept < t) t = g->resume_accept;
  if (t == INT64_MAX) return -1;
  return t <= now ? 0 : (int)(t - now < 60000 ? t - now : 60000);
}

static void expire(kdao__http_gate *g, int64_t now) {
  while (g->waiting.head && g->waiting.head->deadline <= now)
    refuse(g, g->waiting.head, &g->waiting, 408, "Request timeout");
  while (g->lingering.head && g->lingering.head->deadline <= now)
    drop(g, &g->lingering, g->lingering.head);
  if (!g->listening && g->resume_accept <= now) {
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &listen_tag};
    g->listening = epoll_ctl(g->epoll_fd, EPOLL_CTL_ADD, g->listen_fd, &ev) == 0;
    if (!g->listening) g->resume_accept = now + 100;
  }
}

static void *gate_main(void *arg) {
  kdao__http_gate *g = arg;
  struct epoll_event events[EVENTS];
  for (;;) {
    int n = epoll_wait(g->epoll_fd, events, EVENTS, next_timeout(g, now_ms()));
    for (int i = 0; i < n; i++) {
      void *tag = events[i].data.ptr;
      if (tag == &wake_tag) return NULL;
      if (tag == &listen_tag) continue; /* accepted below, once the others are served */
      conn *k = tag;
      /* A waiting connection is counted against its client; a refused one no longer is. */
      if (k->client)
        inspect(g, k);
      else
        drain(g, k);
    }
    /* Served after the events: a connection closed above may have freed a slot. */
    if (g->listening) accept_all(g);
    expire(g, now_ms());
  }
}

/* ------------------------------------------------------------------------------------------
 * Life cycle
 * ---------------------------------------------------------------------------------------- */

int kdao__http_gate_start(int listen_fd, const kdao__http_gate_limits *limits,
                          kdao__http_gate_handoff handoff, void *cls, kdao__http_gate **out,
                          char *errbuf, size_t errlen) {
  *out = NULL;
  kdao__http_gate *g = calloc(1, sizeof *g);
  if (!g) {
    close(listen_fd);
    snprintf(errbuf, errlen, "out of memory");
    return -1;
  }
  g->limits = *limits;
  g->handoff = handoff;
  g->cls = cls;
  g->listen_fd = listen_fd;
  g->wake[0] = g->wake[1] = -1;
  pthread_mutex_init(&g->lock, NULL);
  g->peek = malloc(limits->max_header);
  g->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
  struct epoll_event lev = {.events = EPOLLIN, .data.ptr = &listen_tag};
  struct epoll_event wev = {.events = EPOLLIN, .data.ptr = &wake_tag};
  g->listening = true;
  if (!g->peek || g->epoll_fd < 0 || pipe2(g->wake, O_CLOEXEC) != 0 ||
      epoll_ctl(g->epoll_fd, EPOLL_CTL_ADD, listen_fd, &lev) != 0 ||
      epoll_ctl(g->epoll_fd, EPOLL_CTL_ADD, g->wake[0], &wev) != 0 ||
      (errno = pthread_create(&g->thread, NULL, gate_main, g)) != 0) {
    snprintf(errbuf, errlen, "cannot start the admin API: %s", strerror(errno));
    kdao__http_gate_stop(g);
    kdao__http_gate_free(g);
    return -1;
  }
  g->started = true;
  *out = g;
  return 0;
}

void kdao__http_gate_stop(kdao__http_gate *g) {
  if (!g) return;
  if (g->started) {
    /* A byte on the pipe ends the loop; a full pipe means one is there already. */
    ssize_t rc;
    do rc = write(g->wake[1], "x", 1);
    while (rc < 0 && errno == EINTR);
    pthread_join(g->thread, NULL);
    g->started = false;
  }
  while (g->waiting.head) drop(g, &g->waiting, g->waiting.head);
  while (g->lingering.head) drop(g, &g->lingering, g->lingering.head);
  if (g->listen_fd >= 0) close(g->listen_fd);
  g->listen_fd = -1;
}

void kdao__http_gate_free(kdao__http_gate *g) {
  if (!g) return;
  kdao__http_gate_stop(g);
  for (client *c = g->clients, *next; c; c = next) {
    next = c->next;
    free(c);
  }
  if (g->epoll_fd >= 0) close(g->epoll_fd);
  if (g->wake[0] >= 0) close(g->wake[0]);
  if (g->wake[1] >= 0) close(g->wake[1]);
  pthread_mutex_destroy(&g->lock);
  free(g->peek);
  free(g);
}

#endif /* KDAO_HAVE_HTTP */
