/*
 * fuzz_http_params.c — libFuzzer target over the admin API's parameter helpers
 * (cli/http_params.c): percent-decoding, urlencoded query strings and form bodies, flat form
 * fields as multipart hands them, Kong's nested-key normalisation and `admin_listen`.
 *
 * The whole input is each parser's text (up to its first NUL where the parser takes a C
 * string); the form field is split at the first '=' into key and raw value bytes, NULs
 * included, as libmicrohttpd hands a multipart part. Invariants checked: whatever becomes
 * JSON is valid UTF-8 without NUL bytes, or the call failed; decoding never lengthens a
 * text; normalisation never fails on a parsed form and is idempotent; a parsed listen
 * address has a port that fits and a host no longer than the input.
 */
#include "fuzz_util.h"
#include "http_params.h"

static void check_form(const json_t *flat, const char *what) {
  const char *bad = NULL;
  FUZZ_CHECK(fuzz_json_text_ok(flat, &bad), "%s produced a string that is not UTF-8 text: '%s'",
             what, bad);
}

static void fuzz_decode(const char *text, size_t n) {
  for (int plus = 0; plus < 2; plus++) {
    char *s = fuzz_strdup((const uint8_t *)text, n);
    if (kdao__http_decode(s, plus)) FUZZ_CHECK(strlen(s) <= n, "decoding lengthened '%s'", text);
    free(s);
  }
}

static void fuzz_urlencoded(const char *text, size_t len) {
  kdao__http_text problem = KDAO__HTTP_TEXT_OK;
  json_t *flat = kdao__http_parse_urlencoded(text, len, &problem);
  if (!flat) return;
  FUZZ_CHECK(problem == KDAO__HTTP_TEXT_OK, "a form with a problem was parsed");
  check_form(flat, "kdao__http_parse_urlencoded");
  json_t *nested = kdao__http_normalize(flat);
  FUZZ_CHECK(nested != NULL, "normalising a parsed form failed");
  check_form(nested, "kdao__http_normalize");
  /*
   * Normalising again changes nothing, unless a key holds "[]": the array marker is read
   * once, on the flat form the server gets ("a.b[].c" nests differently when read again).
   */
  if (!memchr(text, '[', len)) {
    json_t *again = kdao__http_normalize(nested);
    FUZZ_CHECK(again && json_equal(again, nested), "normalisation is not idempotent");
    json_decref(again);
  }
  json_decref(nested);
  json_decref(flat);
}

static void fuzz_form_field(const uint8_t *data, size_t size) {
  const uint8_t *eq = memchr(data, '=', size);
  size_t klen = eq ? (size_t)(eq - data) : size;
  char *key = fuzz_strdup(data, klen);
  const uint8_t *value = eq ? eq + 1 : data + size;
  size_t vlen = eq ? size - klen - 1 : 0;
  /* Exact-size copy: the value is not NUL-terminated and must not be read past its end. */
  char *v = malloc(vlen ? vlen : 1);
  if (!v) abort();
  memcpy(v, value, vlen);
  json_t *flat = json_object();
  if (!flat) abort();
  /* Twice: the second value of a key turns it into an array. */
  for (int i = 0; i < 2; i++) {
    if (kdao__http_form_add(flat, key, v, vlen) != 0) break;
    json_t *got = json_object_get(flat, key);
    json_t *last = json_is_array(got) ? json_array_get(got, json_array_size(got) - 1) : got;
    FUZZ_CHECK(json_is_string(last) && json_string_length(last) == vlen &&
                   memcmp(json_string_value(last), v, vlen) == 0,
               "form field '%s' not stored as given", key);
    check_form(flat, "kdao__http_form_add");
  }
  json_t *nested = kdao__http_normalize(flat);
  if (nested) check_form(nested, "kdao__http_normalize");
  json_decref(nested);
  json_decref(flat);
  free(v);
  free(key);
}

static void fuzz_listen(const char *text, size_t n) {
  char *host = (char *)"unset";
  unsigned port = 70000;
  if (kdao__http_parse_listen(text, &host, &port) == 0) {
    FUZZ_CHECK(host != NULL && port <= 65535, "listen '%s': host %p port %u", text, (void *)host,
               port);
    FUZZ_CHECK(strlen(host) < n, "listen '%s': host '%s' longer than the input", text, host);
  } else {
    FUZZ_CHECK(host == NULL, "listen '%s' failed but left a host", text);
  }
  free(host);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char *text = fuzz_strdup(data, size);
  size_t n = strlen(text);
  fuzz_decode(text, n);
  fuzz_urlencoded((const char *)data, size);
  fuzz_listen(text, n);
  fuzz_form_field(data, size);
  free(text);
  return 0;
}
