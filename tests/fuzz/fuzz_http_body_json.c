/*
 * fuzz_http_body_json.c — libFuzzer target over the admin API's JSON body path: the body
 * parsed by jansson, its nested keys normalised (kdao__http_normalize), then served by
 * kdao__http_handle (cli/http_api.c: routing, validation against the apis, consumers,
 * plugins... schemas, the writes) on a SQLite :memory: factory. No HTTP server is involved:
 * this is what cli/http_server.c does once a request is read.
 *
 * Input: a request line "METHOD /path?query", a newline, then the body (JSON). A body that
 * is not a JSON object is what the server answers 400 without calling the API, so it stops
 * there. Invariants: the status is a real one and never 500 (a fuzzed request is the
 * client's fault, or fine, never the server's), and the response body serialises to JSON.
 * A write that succeeded is undone (tables emptied, seed rows put back) so every input sees
 * the same data.
 */
#include "fuzz_util.h"
#include "http_api.h"
#include "http_params.h"

static kdao_factory *factory;
static kdao_config *config;

static void seed(void) {
  fuzz_insert(factory, "apis",
              "{\"id\": \"a0000000-0000-4000-8000-000000000000\", \"name\": \"one\", "
              "\"upstream_url\": \"http://example.com\", \"hosts\": [\"a.example.com\"]}");
  fuzz_insert(factory, "consumers",
              "{\"id\": \"c0000000-0000-4000-8000-000000000000\", \"username\": \"bob\"}");
  fuzz_insert(factory, "plugins",
              "{\"id\": \"d0000000-0000-4000-8000-000000000000\", \"name\": \"key-auth\", "
              "\"api_id\": \"a0000000-0000-4000-8000-000000000000\"}");
  fuzz_insert(factory, "keyauth_credentials",
              "{\"id\": \"e0000000-0000-4000-8000-000000000000\", \"key\": \"secret\", "
              "\"consumer_id\": \"c0000000-0000-4000-8000-000000000000\"}");
  fuzz_insert(factory, "upstreams",
              "{\"id\": \"f0000000-0000-4000-8000-000000000000\", \"name\": \"up.example\"}");
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc, (void)argv;
  kdao_error *err = NULL;
  if (kdao_config_new(&config, &err) != KDAO_OK ||
      kdao_config_set(config, "sqlite_path", ":memory:", &err) != KDAO_OK)
    abort();
  factory = fuzz_factory(true);
  seed();
  return 0;
}

static void reset(void) {
  kdao_error *err = NULL;
  if (kdao_factory_truncate_tables(factory, &err) != KDAO_OK) {
    fprintf(stderr, "fuzz: truncate failed: %s\n", kdao_error_message(err));
    abort();
  }
  seed();
}

/* The body as the server turns it into parameters; NULL where it would answer 400. */
static json_t *body_params(const uint8_t *body, size_t len) {
  json_t *flat = len ? json_loadb((const char *)body, len, 0, NULL) : json_object();
  if (!json_is_object(flat)) {
    json_decref(flat);
    return NULL;
  }
  json_t *params = kdao__http_normalize(flat);
  FUZZ_CHECK(params != NULL, "normalising a JSON object body failed");
  json_decref(flat);
  return params;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const uint8_t *nl = memchr(data, '\n', size);
  if (!nl) return 0;
  char *line = fuzz_strdup(data, (size_t)(nl - data));
  const uint8_t *body = nl + 1;
  size_t body_len = size - (size_t)(body - data);
  char *path = strchr(line, ' ');
  if (!path || path[1] != '/') goto done;
  *path++ = '\0';
  char *query_text = strchr(path, '?');
  if (query_text) *query_text++ = '\0';
  /* What the server refuses before routing (400), the handler never sees. */
  if (kdao__http_check_path(path) != KDAO__HTTP_TEXT_OK) goto done;
  kdao__http_text problem = KDAO__HTTP_TEXT_OK;
  json_t *query = query_text ? kdao__http_parse_urlencoded(query_text, strlen(query_text), &problem)
                             : json_object();
  if (!query) goto done;
  bool writes = !strcmp(line, "POST") || !strcmp(line, "PUT") || !strcmp(line, "PATCH");
  json_t *params = writes ? body_params(body, body_len) : NULL;
  if (!writes || params) {
    kdao__http_api api = {.factory = factory, .cfg = config};
    kdao__http_request req = {.method = line,
                              .path = path,
                              .query = query,
                              .body = params,
                              .base_url = "http://127.0.0.1:8001"};
    json_t *out = NULL;
    int status = kdao__http_handle(&api, &req, &out);
    FUZZ_CHECK(status >= 200 && status < 500, "%s %s answered %d", line, path, status);
    if (out) {
      char *text = json_dumps(out, JSON_ENCODE_ANY);
      FUZZ_CHECK(text != NULL, "%s %s: the %d response does not serialise", line, path, status);
      free(text);
    }
    json_decref(out);
    if (strcmp(line, "GET") != 0 && status < 300) reset();
  }
  json_decref(params);
  json_decref(query);
done:
  free(line);
  return 0;
}
