/*
 * fuzz_paging_token.c — libFuzzer target over page tokens (the `offset` of GET /<entity>,
 * kdao_dao_find_page) on a SQLite :memory: factory holding a few consumers, an API and
 * its plugins.
 *
 * Input: byte 0 picks the entity (consumers, apis: one-field uuid keys; plugins: the
 * two-field key id + name, with or without a filter) and whether the rest is the token as
 * sent or a keyset position (JSON) sealed into a token with the database's page key, as
 * kdao__page_token_seal does for a page, which lets the fuzzer past the MAC to the key values
 * themselves; byte 1 the page size. A token may only ever be accepted (KDAO_OK) or refused
 * (KDAO_ERR_SCHEMA); an accepted one gives at most `size` rows, and every following page it
 * leads to must be accepted too.
 */
#include "factory.h"
#include "fuzz_util.h"

static kdao_factory *factory;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc, (void)argv;
  factory = fuzz_factory(true);
  for (int i = 0; i < 5; i++) {
    char c[128];
    snprintf(c, sizeof c,
             "{\"id\": \"%d0000000-0000-4000-8000-000000000000\", \"username\": \"u%d\"}", i, i);
    fuzz_insert(factory, "consumers", c);
  }
  fuzz_insert(factory, "apis",
              "{\"id\": \"a0000000-0000-4000-8000-000000000000\", \"name\": \"one\", "
              "\"upstream_url\": \"http://example.com\", \"hosts\": [\"a.example.com\"]}");
  fuzz_insert(factory, "apis",
              "{\"id\": \"b0000000-0000-4000-8000-000000000000\", \"name\": \"two\", "
              "\"upstream_url\": \"http://example.com\", \"uris\": [\"/two\"]}");
  static const char *const plugins[] = {"key-auth", "acl", "basic-auth"};
  for (int i = 0; i < 3; i++) {
    char p[256];
    snprintf(p, sizeof p,
             "{\"id\": \"%d1111111-0000-4000-8000-000000000000\", \"name\": \"%s\", \"api_id\": "
             "\"a0000000-0000-4000-8000-000000000000\"%s}",
             i, plugins[i], i == 1 ? ", \"config\": {\"whitelist\": [\"g\"]}" : "");
    fuzz_insert(factory, "plugins", p);
  }
  /* a page with a successor: the factory reads (here: creates) its page key */
  json_t *rows = NULL;
  char *next = NULL;
  if (kdao_dao_find_page(kdao_factory_dao(factory, "consumers"), NULL, NULL, 1, &rows, &next,
                         NULL) != KDAO_OK ||
      !factory->page_key_ready)
    abort();
  json_decref(rows);
  free(next);
  return 0;
}

/* `pos` sealed as kdao_dao_find_page seals the position of a page of `dao` under `filter`. */
static char *seal(kdao_dao *dao, const json_t *filter, const char *pos) {
  char *flt = filter ? json_dumps(filter, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
  char *token = kdao__page_token_seal(factory->page_key, kdao_dao_table(dao), flt,
                                      (const unsigned char *)pos, strlen(pos));
  free(flt);
  return token;
}

/* Walks the pages a token leads to: each must be accepted and hold at most `size` rows. */
static void walk(kdao_dao *dao, const json_t *filter, const char *token, size_t size) {
  char *offset = token ? strdup(token) : NULL;
  for (int page = 0; page < 16; page++) {
    json_t *rows = NULL;
    char *next = NULL;
    kdao_error *err = NULL;
    int rc = kdao_dao_find_page(dao, filter, offset, size, &rows, &next, &err);
    if (page == 0 && rc == KDAO_ERR_SCHEMA) {
      kdao_error_free(err);
      break;
    }
    FUZZ_CHECK(rc == KDAO_OK, "page %d of token '%s' failed: %s: %s", page,
               token ? token : "(first)", kdao_error_kind_name(rc), kdao_error_message(err));
    FUZZ_CHECK(json_is_array(rows) && json_array_size(rows) <= (size ? size : 100),
               "page %d of token '%s' holds %zu rows for a size of %zu", page, token,
               json_array_size(rows), size);
    json_decref(rows);
    free(offset);
    offset = next;
    if (!next) break;
  }
  free(offset);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 2) return 0;
  static const char *const daos[] = {"consumers", "apis", "plugins", "plugins"};
  unsigned pick = data[0] & 3;
  kdao_dao *dao = kdao_factory_dao(factory, daos[pick]);
  json_t *filter =
      pick == 3 ? json_pack("{ss}", "api_id", "a0000000-0000-4000-8000-000000000000") : NULL;
  size_t page_size = data[1] % 8; /* 0: the default, 100 */
  char *text = fuzz_strdup(data + 2, size - 2);
  char *token = text;
  if (data[0] & 4) token = seal(dao, filter, text);
  if (!token) abort();
  walk(dao, filter, token, page_size);
  if (token != text) free(token);
  free(text);
  json_decref(filter);
  return 0;
}
