/*
 * http_api.h — Kong 0.10.4's Admin API over a kdao factory, independent of the HTTP
 * server: a parsed request goes in, a status and a JSON body come out. http_server.c
 * feeds it from libmicrohttpd.
 */
#ifndef KDAO_HTTP_API_H
#define KDAO_HTTP_API_H

#include <jansson.h>

#include "kdao.h"

/* What the API reads: the factory it serves and the configuration shown at GET /. */
typedef struct kdao__http_api {
  kdao_factory *factory; /* used by one thread at a time: the server's */
  const kdao_config *cfg;
} kdao__http_api;

/* The server's counters, as GET /status reports them (nginx's stub_status, as Kong did). */
typedef struct kdao__http_counters {
  unsigned long long accepted;       /* connections accepted */
  unsigned long long handled;        /* of those, not refused over a limit */
  unsigned long long total_requests; /* requests whose head the server read */
  unsigned long long active;         /* open client connections */
  unsigned long long reading;        /* of those, waiting for their first request head */
  unsigned long long writing;        /* of those, with a request being served */
  unsigned long long waiting;        /* of those, kept alive between requests */
} kdao__http_counters;

/* One request, already read and decoded by the server. All members are borrowed. */
typedef struct kdao__http_request {
  const char *method;     /* "GET", "POST", ... */
  const char *path;       /* the path as sent (percent-encoded), without the query */
  const json_t *query;    /* decoded query arguments: flat object of strings/arrays */
  const json_t *body;     /* body parameters, nested keys normalised; NULL when none */
  const char *base_url;   /* "http://host:port" of this server, for `next` links */
  const char *request_id; /* names the request in error log lines; NULL: none */
  /* Fills the server's counters for GET /status; NULL: all zero. */
  void (*counters)(void *cls, kdao__http_counters *out);
  void *counters_cls;
} kdao__http_request;

/* Kong's fixed response texts, shared with the server layer. */
#define KDAO__HTTP_NOT_FOUND "Not found"
#define KDAO__HTTP_METHOD_NOT_ALLOWED "Method not allowed"
#define KDAO__HTTP_INTERNAL_ERROR "An unexpected error occurred"

/* {"message": message}: a new reference, or NULL when out of memory. */
json_t *kdao__http_message(const char *message);

/*
 * Serves `req`: returns the HTTP status and stores in *body the JSON to send (a new
 * reference), or NULL for a response without body (204). Never fails: an out-of-memory
 * condition becomes a 500 whose body may be NULL.
 */
int kdao__http_handle(kdao__http_api *api, const kdao__http_request *req, json_t **body);

#endif
