/*
 * http_api.c — the routes of Kong 0.10.4's Admin API (kong/api/routes/ files and the
 * key-auth, basic-auth and acl plugins' api.lua) over kdao's DAOs.
 *
 * Most routes are one of two shapes, described by a row of the route table and served by
 * generic handlers (Kong's crud_helpers): a collection (GET a page, POST, PUT) and an
 * element found by id or by a unique field (GET, PATCH, DELETE), either optionally scoped
 * by a parent entity named in the path (/apis/{api}/plugins sets api_id). The few routes
 * Kong wrote by hand (node info, plugin schemas, targets, certificates) have their own
 * handlers below the generic ones.
 */
#include "http_api.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "http_params.h"

#define MAX_SEGMENTS 8
#define MAX_CAPTURES 3
#define DEFAULT_PAGE_SIZE 100
#define MAX_PAGE_SIZE 1000

/* A parent entity named in the path: looked up by id, or by its unique name field. */
typedef struct scope {
  const char *dao;         /* "apis" */
  const char *name_field;  /* "name" */
  const char *child_field; /* the children's reference to it: "api_id" */
} scope;

static const scope scope_api = {"apis", "name", "api_id"};
static const scope scope_consumer = {"consumers", "username", "consumer_id"};
static const scope scope_upstream = {"upstreams", "name", "upstream_id"};

typedef struct route route;

/* One request in flight. */
typedef struct ctx {
  kdao__http_api *api;
  const kdao__http_request *req;
  const route *route;
  kdao_dao *dao; /* the route's entity, when it has one */
  char *caps[MAX_CAPTURES];
  size_t ncaps;
  json_t *parent; /* the scope's row, once resolved */
  int status;
  json_t *out; /* response body (new reference) */
} ctx;

typedef void (*handler_fn)(ctx *c);

enum { M_GET, M_POST, M_PUT, M_PATCH, M_DELETE, M_COUNT };

struct route {
  const char *pattern;   /* "/apis/:api/plugins/:id": ":x" captures one segment */
  const char *dao;       /* entity of the generic handlers */
  const scope *scope;    /* parent named by the first capture, or NULL */
  const char *id_field;  /* element lookup: this field when the key is a UUID ... */
  const char *alt_field; /* ... else (or when nothing matched) this one */
  handler_fn methods[M_COUNT];
};

/* ------------------------------------------------------------------------------------------
 * Responses
 * ---------------------------------------------------------------------------------------- */

json_t *kdao__http_message(const char *message) { return json_pack("{ss}", "message", message); }

/* Sets the response; `body` is stolen. A NULL body for a status that needs one is OOM. */
static void respond(ctx *c, int status, json_t *body) {
  json_decref(c->out);
  c->out = body;
  c->status = status;
  if (!body && status != 204) c->status = 500;
}

static void respond_message(ctx *c, int status, const char *message) {
  respond(c, status, kdao__http_message(message));
}

/* A failure the client is not told about, for the operator: names the request. */
static void log_failure(const ctx *c, const char *detail) {
  fprintf(stderr, "kdao serve: %s %s: request %s: %s\n", c->req->method, c->req->path,
          c->req->request_id ? c->req->request_id : "-", detail);
}

/*
 * The 503 message of a db failure the backend classified (kdao.h's portable codes), or
 * NULL. Conditions of the server's storage, not of the request: the client may retry
 * later, and reads still work while writes are refused. Like a 500, the backend's detail
 * (host, file) goes to stderr only.
 */
static const char *unavailable_message(const kdao_error *e) {
  const char *code = kdao_error_kind(e) == KDAO_ERR_DB ? kdao_error_code(e) : NULL;
  if (!code) return NULL;
  if (!strcmp(code, KDAO_ERR_CODE_UNAVAILABLE)) return "The database is unavailable";
  if (!strcmp(code, KDAO_ERR_CODE_FULL)) return "The database is full: writes are refused";
  if (!strcmp(code, KDAO_ERR_CODE_READ_ONLY))
    return "The database is read-only: writes are refused";
  return NULL;
}

/*
 * Kong's on_error: db → 500 (detail logged, not shown), unique → 409 and foreign → 404
 * with the field map, anything else → 400 with the field map or the message. kdao adds
 * 503 for the db failures unavailable_message() names. Takes `e`.
 */
static void respond_error(ctx *c, kdao_error *e) {
  const json_t *fields = kdao_error_fields(e);
  switch (kdao_error_kind(e)) {
  case KDAO_ERR_UNIQUE:
  case KDAO_ERR_FOREIGN:
  case KDAO_ERR_SCHEMA:
  case KDAO_ERR_CONFIG: {
    int status = kdao_error_kind(e) == KDAO_ERR_UNIQUE    ? 409
                 : kdao_error_kind(e) == KDAO_ERR_FOREIGN ? 404
                                                          : 400;
    respond(c, status, fields ? json_deep_copy(fields) : kdao__http_message(kdao_error_message(e)));
    break;
  }
  default: {
    /* A db failure, or a raised error in Kong's terms: the client learns nothing more. */
    log_failure(c, e ? kdao_error_string(e) : "out of memory");
    const char *unavailable = unavailable_message(e);
    if (unavailable)
      respond_message(c, 503, unavailable);
    else
      respond_message(c, 500, KDAO__HTTP_INTERNAL_ERROR);
    break;
  }
  }
  kdao_error_free(e);
}

/* ------------------------------------------------------------------------------------------
 * Parameters
 * ---------------------------------------------------------------------------------------- */

/* Kong's self.params for a write: query arguments, then the body over them. New object. */
static json_t *write_params(const ctx *c) {
  json_t *params = kdao__http_normalize(c->req->query);
  if (params && c->req->body && json_object_update(params, (json_t *)c->req->body) != 0) {
    json_decref(params);
    return NULL;
  }
  return params;
}

/* Sets the scope's reference (api_id, ...) in `obj` from the resolved parent. */
static int set_scope(const ctx *c, json_t *obj) {
  if (!c->route->scope) return 0;
  return json_object_set(obj, c->route->scope->child_field, json_object_get(c->parent, "id"));
}

/* Kong's model:has_primary_keys(): every primary-key field is present. */
static bool has_primary_key(const kdao_dao *dao, const json_t *params) {
  const kdao_schema *s = kdao_dao_schema(dao);
  size_t npk = kdao_schema_primary_key_count(s);
  for (size_t i = 0; i < npk; i++) {
    json_t *v = json_object_get(params, kdao_schema_primary_key(s, i));
    if (!v || json_is_null(v)) return false;
  }
  return npk > 0;
}

/* ------------------------------------------------------------------------------------------
 * Lookups
 * ---------------------------------------------------------------------------------------- */

/*
 * Kong's find_by_id_or_field: a UUID is looked up as `id_field` first, then (when nothing
 * matched) as `alt_field`; anything else as `alt_field` only. `filter` holds the scope and
 * is completed here. *row is a new reference or NULL when nothing matched.
 */
static int find_by_id_or_field(kdao_dao *dao, json_t *filter, const char *value,
                               const char *id_field, const char *alt_field, json_t **row,
                               kdao_error **err) {
  *row = NULL;
  bool try_id = id_field && (kdao_is_uuid(value) || !alt_field);
  const char *fields[2] = {try_id ? id_field : alt_field, try_id ? alt_field : NULL};
  for (size_t i = 0; i < 2 && fields[i] && !*row; i++) {
    if (i == 1) json_object_del(filter, fields[0]);
    json_t *rows = NULL;
    if (json_object_set_new(filter, fields[i], json_string(value)) != 0)
      return kdao_error_kind(*err = kdao_error_new(KDAO_ERR_NOMEM, "out of memory"));
    int rc = kdao_dao_find_all(dao, filter, &rows, err);
    if (rc != KDAO_OK) return rc;
    *row = json_incref(json_array_get(rows, 0));
    json_decref(rows);
  }
  return KDAO_OK;
}

/* Resolves the route's parent from the first capture; false once a response is set. */
static bool resolve_parent(ctx *c) {
  const scope *s = c->route->scope;
  if (!s) return true;
  kdao_dao *dao = kdao_factory_dao(c->api->factory, s->dao);
  json_t *filter = json_object();
  kdao_error *e = NULL;
  int rc = dao && filter
               ? find_by_id_or_field(dao, filter, c->caps[0], "id", s->name_field, &c->parent, &e)
               : KDAO_ERR_NOMEM;
  json_decref(filter);
  if (rc != KDAO_OK) {
    respond_error(c, e);
    return false;
  }
  if (!c->parent) {
    respond_message(c, 404, KDAO__HTTP_NOT_FOUND);
    return false;
  }
  return true;
}

/* The element named by the last capture, within the scope; NULL once a response is set. */
static json_t *resolve_element(ctx *c) {
  json_t *filter = json_object();
  json_t *row = NULL;
  kdao_error *e = NULL;
  int rc = filter && set_scope(c, filter) == 0
               ? find_by_id_or_field(c->dao, filter, c->caps[c->ncaps - 1], c->route->id_field,
                                     c->route->alt_field, &row, &e)
               : KDAO_ERR_NOMEM;
  json_decref(filter);
  if (rc != KDAO_OK) {
    respond_error(c, e);
    return NULL;
  }
  if (!row) respond_message(c, 404, KDAO__HTTP_NOT_FOUND);
  return row;
}

/* ------------------------------------------------------------------------------------------
 * Generic handlers (Kong's crud_helpers)
 * ---------------------------------------------------------------------------------------- */

/* Appends `s` percent-encoded (everything but RFC 3986 unreserved characters) to `buf`. */
static void url_encode(char *buf, size_t cap, size_t *len, const char *s) {
  static const char hex[] = "0123456789ABCDEF";
  for (const unsigned char *p = (const unsigned char *)s; *p && *len + 4 < cap; p++) {
    if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
        strchr("-._~", *p)) {
      buf[(*len)++] = (char)*p;
    } else {
      buf[(*len)++] = '%';
      buf[(*len)++] = hex[*p >> 4];
      buf[(*len)++] = hex[*p & 15];
    }
  }
  buf[*len] = '\0';
}

static void url_append(char *buf, size_t cap, size_t *len, const char *s) {
  int n = snprintf(buf + *len, cap - *len, "%s", s);
  *len = n < 0 || (size_t)n >= cap - *len ? cap - 1 : *len + (size_t)n;
}

/*
 * The `next` link: this path with the offset token, the size, and — unlike Kong 0.10.4,
 * which dropped them — the filters, so that following `next` keeps filtering. NULL when
 * the URL would not fit: a client then still has the `offset` token.
 */
static json_t *next_link(const ctx *c, const char *token, long size, const json_t *filter) {
  char buf[4096];
  size_t len = 0;
  char num[32];
  snprintf(num, sizeof num, "%ld", size);
  url_append(buf, sizeof buf, &len, c->req->base_url);
  url_append(buf, sizeof buf, &len, c->req->path);
  url_append(buf, sizeof buf, &len, "?offset=");
  url_encode(buf, sizeof buf, &len, token);
  url_append(buf, sizeof buf, &len, "&size=");
  url_append(buf, sizeof buf, &len, num);
  const char *key;
  json_t *value;
  json_object_foreach((json_t *)filter, key, value) {
    if (!json_is_string(value) || (c->route->scope && !strcmp(key, c->route->scope->child_field)))
      continue;
    url_append(buf, sizeof buf, &len, "&");
    url_encode(buf, sizeof buf, &len, key);
    url_append(buf, sizeof buf, &len, "=");
    url_encode(buf, sizeof buf, &len, json_string_value(value));
  }
  return len + 5 < sizeof buf ? json_string(buf) : NULL;
}

/*
 * `size` as Kong reads it: absent or not a number → 100. kdao also refuses sizes outside
 * 1..1000, so that one request cannot make the server build an unbounded page.
 */
static bool page_size(ctx *c, long *size) {
  const char *s = json_string_value(json_object_get(c->req->query, "size"));
  *size = DEFAULT_PAGE_SIZE;
  if (!s) return true;
  char *end;
  double d = strtod(s, &end);
  if (end == s || *end != '\0') return true;
  if (d < 1 || d > MAX_PAGE_SIZE || d != (double)(long)d) {
    respond_message(c, 400, "size must be an integer between 1 and 1000");
    return false;
  }
  *size = (long)d;
  return true;
}

/* Kong's paginated_set: {"data": [...], "total": n, "next": url, "offset": token}. */
static void list_page(ctx *c) {
  long size;
  if (!page_size(c, &size)) return;
  const char *offset = json_string_value(json_object_get(c->req->query, "offset"));
  json_t *filter = json_deep_copy(c->req->query);
  json_t *rows = NULL, *body = NULL;
  char *next = NULL;
  long long total = 0;
  kdao_error *e = NULL;
  int rc = KDAO_ERR_NOMEM;
  if (!filter || set_scope(c, filter) != 0) goto cleanup;
  json_object_del(filter, "size");
  json_object_del(filter, "offset");
  json_t *f = json_object_size(filter) ? filter : NULL;
  rc = kdao_dao_find_page(c->dao, f, offset, (size_t)size, &rows, &next, &e);
  if (rc == KDAO_OK) rc = kdao_dao_count(c->dao, f, &total, &e);
  if (rc != KDAO_OK) goto cleanup;
  rc = KDAO_ERR_NOMEM;
  body = json_pack("{sOsI}", "data", rows, "total", (json_int_t)total);
  if (!body) goto cleanup;
  if (next && (json_object_set_new(body, "offset", json_string(next)) != 0 ||
               json_object_set_new(body, "next", next_link(c, next, size, filter)) != 0))
    goto cleanup;
  rc = KDAO_OK;
  respond(c, 200, body);
  body = NULL;
cleanup:
  if (rc != KDAO_OK) respond_error(c, e);
  json_decref(body);
  json_decref(rows);
  json_decref(filter);
  kdao_free(next);
}

/* Inserts `params` (borrowed): 201 with the stored row. */
static void insert_row(ctx *c, const json_t *params) {
  json_t *row = NULL;
  kdao_error *e = NULL;
  if (kdao_dao_insert(c->dao, params, 0, 0, &row, &e) != KDAO_OK)
    respond_error(c, e);
  else
    respond(c, 201, row);
}

static void collection_post(ctx *c) {
  json_t *params = write_params(c);
  if (!params || set_scope(c, params) != 0) {
    json_decref(params);
    respond_error(c, NULL);
    return;
  }
  insert_row(c, params);
  json_decref(params);
}

/*
 * Values the DAO generated for the stored row (id, created_at) that the replacement does
 * not carry: a replace keeps them instead of failing "created_at is required", which is
 * what Kong 0.10.4's full update answered to a body without them.
 */
static int keep_generated(const kdao_dao *dao, json_t *params, const json_t *stored) {
  const kdao_schema *s = kdao_dao_schema(dao);
  kdao_field_info f;
  for (size_t i = 0; kdao_schema_field_info(s, i, &f); i++) {
    json_t *v = json_object_get(stored, f.name);
    if ((f.flags & KDAO_FIELD_INSERT_VALUE) && v && !json_object_get(params, f.name) &&
        json_object_set(params, f.name, v) != 0)
      return -1;
  }
  return 0;
}

/*
 * PUT creates or replaces: without the primary key, or with one no row has, it inserts
 * (201; Kong 0.10.4 answered an empty 200 to the latter); with the key of a stored row it
 * replaces that row (200).
 */
static void collection_put(ctx *c) {
  json_t *params = write_params(c);
  json_t *stored = NULL, *row = NULL;
  kdao_error *e = NULL;
  if (!params || set_scope(c, params) != 0) {
    respond_error(c, NULL);
  } else if (!has_primary_key(c->dao, params)) {
    insert_row(c, params);
  } else if (kdao_dao_find(c->dao, params, &stored, &e) != KDAO_OK) {
    respond_error(c, e);
  } else if (!stored) {
    insert_row(c, params);
  } else if (keep_generated(c->dao, params, stored) != 0) {
    respond_error(c, NULL);
  } else if (kdao_dao_update(c->dao, params, params, 0, KDAO_DAO_FULL, &row, &e) != KDAO_OK) {
    respond_error(c, e);
  } else if (row) {
    respond(c, 200, row);
  } else {
    respond_message(c, 404, KDAO__HTTP_NOT_FOUND); /* deleted in between */
  }
  json_decref(stored);
  json_decref(params);
}

static void element_get(ctx *c) {
  json_t *row = resolve_element(c);
  if (row) respond(c, 200, row);
}

/* Kong's crud.patch: the stored row fills what the body leaves out. */
static void patch_row(ctx *c, const json_t *filter_keys) {
  json_t *params = write_params(c);
  json_t *row = NULL;
  kdao_error *e = NULL;
  if (!params)
    respond_error(c, NULL);
  else if (json_object_size(params) == 0)
    respond_message(c, 400, "empty body");
  else if (kdao_dao_update(c->dao, params, filter_keys, 0, 0, &row, &e) != KDAO_OK)
    respond_error(c, e);
  else if (row)
    respond(c, 200, row);
  else
    respond_message(c, 404, KDAO__HTTP_NOT_FOUND);
  json_decref(params);
}

static void delete_row(ctx *c, const json_t *pk) {
  json_t *row = NULL;
  kdao_error *e = NULL;
  if (kdao_dao_delete(c->dao, pk, 0, &row, &e) != KDAO_OK)
    respond_error(c, e);
  else if (row)
    respond(c, 204, NULL);
  else
    respond_message(c, 404, KDAO__HTTP_NOT_FOUND);
  json_decref(row);
}

static void element_patch(ctx *c) {
  json_t *row = resolve_element(c);
  if (row) patch_row(c, row);
  json_decref(row);
}

static void element_delete(ctx *c) {
  json_t *row = resolve_element(c);
  if (row) delete_row(c, row);
  json_decref(row);
}

/* ------------------------------------------------------------------------------------------
 * Node and plugins
 * ---------------------------------------------------------------------------------------- */

/* Names of the plugins configured in rows, each once, in first-seen order. */
static json_t *plugins_in_use(ctx *c, kdao_error **e) {
  json_t *rows = NULL;
  kdao_dao *plugins = kdao_factory_dao(c->api->factory, "plugins");
  if (!plugins || kdao_dao_find_all(plugins, NULL, &rows, e) != KDAO_OK) return NULL;
  json_t *seen = json_object(), *names = json_array();
  size_t i;
  json_t *row;
  json_array_foreach(rows, i, row) {
    const char *name = json_string_value(json_object_get(row, "name"));
    if (name && seen && names && !json_object_get(seen, name)) {
      json_object_set_new(seen, name, json_true());
      json_array_append_new(names, json_string(name));
    }
  }
  json_decref(seen);
  json_decref(rows);
  return names;
}

/* GET /: node information, Kong's shape for what kdao has (no timers, no PRNG seeds). */
static void node_info(ctx *c) {
  char host[256] = "";
  gethostname(host, sizeof host - 1);
  kdao_error *e = NULL;
  json_t *in_use = plugins_in_use(c, &e);
  if (!in_use) {
    respond_error(c, e);
    return;
  }
  json_t *names = kdao_factory_plugin_names(c->api->factory);
  json_t *available = json_object();
  size_t i;
  json_t *name;
  json_array_foreach(names, i, name)
      json_object_set(available, json_string_value(name), json_true());
  json_decref(names);
  respond(c, 200,
          json_pack("{sssssss{soso}soso}", "tagline", "Welcome to kdao", "version",
                    KDAO_VERSION_STRING, "hostname", host, "plugins", "available_on_server",
                    available, "enabled_in_cluster", in_use, "configuration",
                    kdao_config_dump(c->api->cfg), "database",
                    kdao_factory_infos(c->api->factory)));
}

/*
 * GET /status: Kong 0.10's shape — {"server": nginx's connection counters, "database": ...}
 * — with the counters kdao's server keeps. Kong counted the rows of every table under
 * "database", a full scan per table, at a million rows on any backend, on a
 * route meant for health checks; kdao reports instead whether the database answers (one
 * read of the migrations table) and how many migrations are pending. 503 when it does not
 * answer, so a load balancer's probe fails.
 */
static void node_status(ctx *c) {
  kdao__http_counters n = {0};
  if (c->req->counters) c->req->counters(c->req->counters_cls, &n);
  int pending = 0;
  kdao_error *e = NULL;
  bool reachable = kdao_factory_pending_migrations(c->api->factory, &pending, &e) == KDAO_OK;
  if (!reachable) log_failure(c, e ? kdao_error_string(e) : "out of memory");
  kdao_error_free(e);
  json_t *database = reachable ? json_pack("{sbsi}", "reachable", 1, "migrations_pending", pending)
                               : json_pack("{sb}", "reachable", 0);
  respond(c, reachable ? 200 : 503,
          json_pack("{s{sIsIsIsIsIsIsI}so}", "server", "connections_active", (json_int_t)n.active,
                    "connections_reading", (json_int_t)n.reading, "connections_writing",
                    (json_int_t)n.writing, "connections_waiting", (json_int_t)n.waiting,
                    "connections_accepted", (json_int_t)n.accepted, "connections_handled",
                    (json_int_t)n.handled, "total_requests", (json_int_t)n.total_requests,
                    "database", database));
}

static void plugins_enabled(ctx *c) {
  respond(c, 200, json_pack("{so}", "enabled_plugins", kdao_factory_plugin_names(c->api->factory)));
}

static bool plugin_registered(kdao_factory *f, const char *name) {
  json_t *names = kdao_factory_plugin_names(f);
  bool found = false;
  size_t i;
  json_t *n;
  json_array_foreach(names, i, n) found = found || !strcmp(json_string_value(n), name);
  json_decref(names);
  return found;
}

static void plugin_schema(ctx *c) {
  const char *name = c->caps[0];
  if (!plugin_registered(c->api->factory, name)) {
    char msg[300];
    snprintf(msg, sizeof msg, "No plugin named '%s'", name);
    respond_message(c, 404, msg);
    return;
  }
  const kdao_schema *s = kdao_factory_plugin_schema(c->api->factory, name);
  respond(c, 200, s ? kdao_schema_describe(s) : json_pack("{s{}}", "fields"));
}

/* ------------------------------------------------------------------------------------------
 * Targets (kong/api/routes/upstreams.lua)
 * ---------------------------------------------------------------------------------------- */

/* Orders target rows newest first: created_at, then id, both descending. */
static int target_newest_first(const void *a, const void *b) {
  const json_t *x = *(json_t *const *)a, *y = *(json_t *const *)b;
  json_int_t tx = json_integer_value(json_object_get(x, "created_at"));
  json_int_t ty = json_integer_value(json_object_get(y, "created_at"));
  if (tx != ty) return tx < ty ? 1 : -1;
  const char *ix = json_string_value(json_object_get(x, "id"));
  const char *iy = json_string_value(json_object_get(y, "id"));
  return -strcmp(ix ? ix : "", iy ? iy : "");
}

/* The upstream's target history, newest first, as a new array. */
static json_t *target_history(ctx *c, kdao_error **e) {
  json_t *filter = json_pack("{sO}", "upstream_id", json_object_get(c->parent, "id"));
  json_t *rows = NULL;
  int rc = filter ? kdao_dao_find_all(c->dao, filter, &rows, e) : KDAO_ERR_NOMEM;
  json_decref(filter);
  if (rc != KDAO_OK) return NULL;
  size_t n = json_array_size(rows);
  json_t **v = n ? calloc(n, sizeof *v) : NULL;
  json_t *sorted = json_array();
  if ((n && !v) || !sorted) {
    free(v);
    json_decref(rows);
    json_decref(sorted);
    return NULL;
  }
  for (size_t i = 0; i < n; i++) v[i] = json_array_get(rows, i);
  if (n > 1) qsort(v, n, sizeof *v, target_newest_first);
  for (size_t i = 0; i < n; i++) json_array_append(sorted, v[i]);
  free(v);
  json_decref(rows);
  return sorted;
}

/*
 * Kong's clean_history: entries superseded by a newer one for the same target, and
 * weight-0 entries, are obsolete; they are deleted (quietly) once they outnumber the
 * distinct targets ten to one, so the history stays bounded. Best effort, as in Kong.
 */
static void clean_target_history(ctx *c) {
  kdao_error *e = NULL;
  json_t *history = target_history(c, &e);
  json_t *seen = json_object(), *obsolete = json_array();
  size_t distinct = 0, i;
  json_t *row;
  if (!history || !seen || !obsolete) goto cleanup;
  json_array_foreach(history, i, row) {
    const char *target = json_string_value(json_object_get(row, "target"));
    if (!target || json_object_get(seen, target)) {
      json_array_append(obsolete, row);
      continue;
    }
    json_object_set_new(seen, target, json_true());
    distinct++;
    if (json_integer_value(json_object_get(row, "weight")) == 0) json_array_append(obsolete, row);
  }
  size_t n = json_array_size(obsolete);
  if (n > 0 && n >= (distinct > 1 ? distinct : 1) * 10) {
    json_array_foreach(obsolete, i, row) {
      json_t *old = NULL;
      kdao_dao_delete(c->dao, row, KDAO_DAO_QUIET, &old, NULL);
      json_decref(old);
    }
  }
cleanup:
  kdao_error_free(e);
  json_decref(history);
  json_decref(seen);
  json_decref(obsolete);
}

static void targets_post(ctx *c) {
  clean_target_history(c);
  collection_post(c);
}

/* GET /upstreams/{u}/targets/active: the newest entry of each target, unless weight 0. */
static void targets_active(ctx *c) {
  kdao_error *e = NULL;
  json_t *history = target_history(c, &e);
  json_t *seen = json_object(), *active = json_array();
  if (!history || !seen || !active) {
    json_decref(seen);
    json_decref(active);
    json_decref(history);
    respond_error(c, e);
    return;
  }
  size_t i;
  json_t *row;
  json_array_foreach(history, i, row) {
    const char *target = json_string_value(json_object_get(row, "target"));
    if (!target || json_object_get(seen, target)) continue;
    json_object_set_new(seen, target, json_true());
    if (json_integer_value(json_object_get(row, "weight")) != 0) json_array_append(active, row);
  }
  json_decref(seen);
  json_decref(history);
  respond(c, 200,
          json_pack("{sIso}", "total", (json_int_t)json_array_size(active), "data", active));
}

/* DELETE /upstreams/{u}/targets/{target or id}: Kong records a weight-0 entry. */
static void target_delete(ctx *c) {
  json_t *target = resolve_element(c);
  if (!target) return;
  clean_target_history(c);
  json_t *entry = json_pack("{sOsOsi}", "target", json_object_get(target, "target"), "upstream_id",
                            json_object_get(c->parent, "id"), "weight", 0);
  json_t *row = NULL;
  kdao_error *e = NULL;
  if (!entry || kdao_dao_insert(c->dao, entry, 0, 0, &row, &e) != KDAO_OK)
    respond_error(c, e);
  else
    respond(c, 204, NULL);
  json_decref(row);
  json_decref(entry);
  json_decref(target);
}

/* ------------------------------------------------------------------------------------------
 * Certificates (kong/api/routes/certificates.lua)
 * ---------------------------------------------------------------------------------------- */

/* The names of the SNIs of certificate `id`, as a new array. */
static json_t *certificate_snis(ctx *c, json_t *id, kdao_error **e) {
  kdao_dao *snis = kdao_factory_dao(c->api->factory, "ssl_servers_names");
  json_t *filter = json_pack("{sO}", "ssl_certificate_id", id);
  json_t *rows = NULL, *names = NULL;
  if (snis && filter && kdao_dao_find_all(snis, filter, &rows, e) == KDAO_OK &&
      (names = json_array())) {
    size_t i;
    json_t *row;
    json_array_foreach(rows, i, row) json_array_append(names, json_object_get(row, "name"));
  }
  json_decref(filter);
  json_decref(rows);
  return names;
}

static int add_snis(ctx *c, json_t *cert, kdao_error **e) {
  json_t *names = certificate_snis(c, json_object_get(cert, "id"), e);
  return names ? json_object_set_new(cert, "snis", names) : -1;
}

static void certificates_list(ctx *c) {
  json_t *rows = NULL;
  kdao_error *e = NULL;
  if (kdao_dao_find_all(c->dao, NULL, &rows, &e) != KDAO_OK) {
    respond_error(c, e);
    return;
  }
  size_t i;
  json_t *row;
  json_array_foreach(rows, i, row) {
    if (add_snis(c, row, &e) != 0) {
      json_decref(rows);
      respond_error(c, e);
      return;
    }
  }
  respond(c, 200, json_pack("{sosI}", "data", rows, "total", (json_int_t)json_array_size(rows)));
}

/* The requested SNI names: "a,b" as Kong splits it, or (kdao) a JSON array of strings. */
static json_t *requested_snis(json_t *value) {
  if (json_is_array(value)) return json_incref(value);
  json_t *names = json_array();
  const char *s = json_string_value(value);
  while (names && s && *s) {
    size_t len = strcspn(s, ",");
    if (len) json_array_append_new(names, json_stringn(s, len));
    s += len + (s[len] == ',');
  }
  return names;
}

/* Kong refuses the whole request when a requested SNI repeats or already exists. */
static bool snis_available(ctx *c, const json_t *names) {
  kdao_dao *snis = kdao_factory_dao(c->api->factory, "ssl_servers_names");
  char msg[600];
  size_t i;
  json_t *name;
  json_array_foreach(names, i, name) {
    const char *s = json_string_value(name);
    for (size_t j = 0; j < i; j++) {
      if (s && json_equal(name, json_array_get(names, j))) {
        snprintf(msg, sizeof msg, "duplicate requested sni name %s", s);
        respond_message(c, 409, msg);
        return false;
      }
    }
    json_t *filter = json_pack("{sO}", "name", name);
    long long n = 0;
    kdao_error *e = NULL;
    int rc = filter ? kdao_dao_count(snis, filter, &n, &e) : KDAO_ERR_NOMEM;
    json_decref(filter);
    if (rc != KDAO_OK) {
      respond_error(c, e);
      return false;
    }
    if (n > 0) {
      snprintf(msg, sizeof msg, "entry already exists with name %s", s ? s : "");
      respond_message(c, 409, msg);
      return false;
    }
  }
  return true;
}

static void certificates_post(ctx *c) {
  json_t *params = write_params(c);
  json_t *names = NULL, *cert = NULL;
  kdao_dao *snis = kdao_factory_dao(c->api->factory, "ssl_servers_names");
  kdao_error *e = NULL;
  if (!params || !snis) goto oom;
  json_t *requested = json_object_get(params, "snis");
  if (requested && (json_is_string(requested) || json_is_array(requested))) {
    if (!(names = requested_snis(requested))) goto oom;
    json_object_del(params, "snis");
    if (!snis_available(c, names)) goto cleanup;
  }
  if (kdao_dao_insert(c->dao, params, 0, 0, &cert, &e) != KDAO_OK) {
    respond_error(c, e);
    goto cleanup;
  }
  size_t i;
  json_t *name;
  json_array_foreach(names, i, name) {
    json_t *sni =
        json_pack("{sOsO}", "name", name, "ssl_certificate_id", json_object_get(cert, "id"));
    json_t *row = NULL;
    int rc = sni ? kdao_dao_insert(snis, sni, 0, 0, &row, &e) : KDAO_ERR_NOMEM;
    json_decref(sni);
    json_decref(row);
    if (rc != KDAO_OK) {
      respond_error(c, e);
      goto cleanup;
    }
  }
  if (names && json_object_set(cert, "snis", names) != 0) goto oom;
  respond(c, 201, cert);
  cert = NULL;
  goto cleanup;
oom:
  respond_error(c, NULL);
cleanup:
  json_decref(cert);
  json_decref(names);
  json_decref(params);
}

/* The certificate id named by the capture: a UUID as such, else through its SNI. */
static json_t *certificate_key(ctx *c) {
  const char *key = c->caps[0];
  if (kdao_is_uuid(key)) return json_pack("{ss}", "id", key);
  kdao_dao *snis = kdao_factory_dao(c->api->factory, "ssl_servers_names");
  json_t *pk = json_pack("{ss}", "name", key);
  json_t *row = NULL;
  kdao_error *e = NULL;
  int rc = snis && pk ? kdao_dao_find(snis, pk, &row, &e) : KDAO_ERR_NOMEM;
  json_decref(pk);
  if (rc != KDAO_OK) {
    respond_error(c, e);
    return NULL;
  }
  json_t *id = row ? json_pack("{sO}", "id", json_object_get(row, "ssl_certificate_id")) : NULL;
  if (!row) respond_message(c, 404, KDAO__HTTP_NOT_FOUND);
  json_decref(row);
  return id;
}

static void certificate_get(ctx *c) {
  json_t *pk = certificate_key(c);
  json_t *row = NULL;
  kdao_error *e = NULL;
  if (!pk) return;
  if (kdao_dao_find(c->dao, pk, &row, &e) != KDAO_OK || (row && add_snis(c, row, &e) != 0))
    respond_error(c, e);
  else if (!row)
    respond_message(c, 404, KDAO__HTTP_NOT_FOUND);
  else
    respond(c, 200, json_incref(row));
  json_decref(row);
  json_decref(pk);
}

static void certificate_patch(ctx *c) {
  json_t *pk = certificate_key(c);
  if (pk) patch_row(c, pk);
  json_decref(pk);
}

static void certificate_delete(ctx *c) {
  json_t *pk = certificate_key(c);
  if (pk) delete_row(c, pk);
  json_decref(pk);
}

/* ------------------------------------------------------------------------------------------
 * Routing
 * ---------------------------------------------------------------------------------------- */

#define COLLECTION \
  { [M_GET] = list_page, [M_POST] = collection_post, [M_PUT] = collection_put }
#define ELEMENT \
  { [M_GET] = element_get, [M_PATCH] = element_patch, [M_DELETE] = element_delete }

/*
 * In match order: a literal segment wins over a capture, as in Kong's router, so
 * /plugins/enabled comes before /plugins/:id.
 */
static const route routes[] = {
    {"/", NULL, NULL, NULL, NULL, {[M_GET] = node_info}},
    {"/status", NULL, NULL, NULL, NULL, {[M_GET] = node_status}},
    {"/apis", "apis", NULL, NULL, NULL, COLLECTION},
    {"/apis/:api", "apis", NULL, "id", "name", ELEMENT},
    {"/apis/:api/plugins", "plugins", &scope_api, NULL, NULL, COLLECTION},
    {"/apis/:api/plugins/:id", "plugins", &scope_api, "id", NULL, ELEMENT},
    {"/consumers", "consumers", NULL, NULL, NULL, COLLECTION},
    {"/consumers/:consumer", "consumers", NULL, "id", "username", ELEMENT},
    {"/consumers/:consumer/plugins", "plugins", &scope_consumer, NULL, NULL, COLLECTION},
    {"/consumers/:consumer/plugins/:id", "plugins", &scope_consumer, "id", NULL, ELEMENT},
    {"/consumers/:consumer/key-auth", "keyauth_credentials", &scope_consumer, NULL, NULL,
     COLLECTION},
    {"/consumers/:consumer/key-auth/:key", "keyauth_credentials", &scope_consumer, "id", "key",
     ELEMENT},
    {"/consumers/:consumer/basic-auth", "basicauth_credentials", &scope_consumer, NULL, NULL,
     COLLECTION},
    {"/consumers/:consumer/basic-auth/:username", "basicauth_credentials", &scope_consumer, "id",
     "username", ELEMENT},
    {"/consumers/:consumer/acls", "acls", &scope_consumer, NULL, NULL, COLLECTION},
    {"/consumers/:consumer/acls/:group", "acls", &scope_consumer, "id", "group", ELEMENT},
    {"/plugins", "plugins", NULL, NULL, NULL, COLLECTION},
    {"/plugins/enabled", NULL, NULL, NULL, NULL, {[M_GET] = plugins_enabled}},
    {"/plugins/schema/:name", NULL, NULL, NULL, NULL, {[M_GET] = plugin_schema}},
    {"/plugins/:id", "plugins", NULL, "id", NULL, ELEMENT},
    {"/upstreams", "upstreams", NULL, NULL, NULL, COLLECTION},
    {"/upstreams/:upstream", "upstreams", NULL, "id", "name", ELEMENT},
    {"/upstreams/:upstream/targets",
     "targets",
     &scope_upstream,
     NULL,
     NULL,
     {[M_GET] = list_page, [M_POST] = targets_post}},
    {"/upstreams/:upstream/targets/active",
     "targets",
     &scope_upstream,
     NULL,
     NULL,
     {[M_GET] = targets_active}},
    {"/upstreams/:upstream/targets/:target",
     "targets",
     &scope_upstream,
     "id",
     "target",
     {[M_DELETE] = target_delete}},
    {"/certificates",
     "ssl_certificates",
     NULL,
     NULL,
     NULL,
     {[M_GET] = certificates_list, [M_POST] = certificates_post, [M_PUT] = collection_put}},
    {"/certificates/:sni_or_id",
     "ssl_certificates",
     NULL,
     NULL,
     NULL,
     {[M_GET] = certificate_get, [M_PATCH] = certificate_patch, [M_DELETE] = certificate_delete}},
    {"/snis", "ssl_servers_names", NULL, NULL, NULL, COLLECTION},
    {"/snis/:name", "ssl_servers_names", NULL, NULL, "name", ELEMENT},
};

static int method_index(const char *m) {
  static const char *const names[M_COUNT] = {"GET", "POST", "PUT", "PATCH", "DELETE"};
  for (int i = 0; i < M_COUNT; i++)
    if (!strcmp(m, names[i])) return i;
  return -1;
}

/* Splits `path` (a copy, modified) into decoded segments; empty segments are skipped. */
static size_t split_path(char *path, char **segs, bool *ok) {
  size_t n = 0;
  *ok = true;
  for (char *save = NULL, *s = strtok_r(path, "/", &save); s; s = strtok_r(NULL, "/", &save)) {
    if (n == MAX_SEGMENTS || !kdao__http_decode(s, false)) {
      *ok = false;
      return 0;
    }
    segs[n++] = s;
  }
  return n;
}

/* Matches `segs` against a pattern, storing captures (borrowed) in c->caps. */
static bool match(ctx *c, const char *pattern, char **segs, size_t n) {
  char pat[128];
  char *psegs[MAX_SEGMENTS];
  bool ok;
  snprintf(pat, sizeof pat, "%s", pattern);
  size_t pn = split_path(pat, psegs, &ok);
  if (pn != n) return false;
  c->ncaps = 0;
  for (size_t i = 0; i < n; i++) {
    if (psegs[i][0] == ':')
      c->caps[c->ncaps++] = segs[i];
    else if (strcmp(psegs[i], segs[i]) != 0)
      return false;
  }
  return true;
}

static void dispatch(ctx *c, char **segs, size_t n) {
  for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++) {
    if (!match(c, routes[i].pattern, segs, n)) continue;
    c->route = &routes[i];
    int m = method_index(c->req->method);
    if (m < 0 || !routes[i].methods[m]) {
      respond_message(c, 405, KDAO__HTTP_METHOD_NOT_ALLOWED);
      return;
    }
    c->dao = routes[i].dao ? kdao_factory_dao(c->api->factory, routes[i].dao) : NULL;
    if (routes[i].dao && !c->dao) {
      /* A plugin's entity that this factory does not have: the route does not exist. */
      respond_message(c, 404, KDAO__HTTP_NOT_FOUND);
      return;
    }
    if (resolve_parent(c)) routes[i].methods[m](c);
    return;
  }
  respond_message(c, 404, KDAO__HTTP_NOT_FOUND);
}

int kdao__http_handle(kdao__http_api *api, const kdao__http_request *req, json_t **body) {
  ctx c = {.api = api, .req = req, .status = 500};
  char *path = strdup(req->path);
  char *segs[MAX_SEGMENTS];
  bool ok = false;
  size_t n = path ? split_path(path, segs, &ok) : 0;
  if (!path)
    respond_error(&c, NULL);
  else if (!ok)
    respond_message(&c, 404, KDAO__HTTP_NOT_FOUND);
  else
    dispatch(&c, segs, n);
  free(path);
  json_decref(c.parent);
  *body = c.out;
  return c.status;
}
