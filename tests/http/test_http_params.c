/*
 * test_http_params.c — the admin API's parameter helpers (cli/http_params.c), on strings.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "http_params.h"

/* Asserts that `value` serialises (sorted keys, compact) to `expected`. */
static void assert_json(const json_t *value, const char *expected) {
  assert_non_null(value);
  char *text = json_dumps(value, JSON_COMPACT | JSON_SORT_KEYS);
  assert_non_null(text);
  assert_string_equal(text, expected);
  free(text);
}

static void decode_percent_and_plus(void **state) {
  (void)state;
  char a[] = "a%20b+c%2Fd";
  assert_true(kdao__http_decode(a, true));
  assert_string_equal(a, "a b c/d");
  char b[] = "a+b%2B";
  assert_true(kdao__http_decode(b, false));
  assert_string_equal(b, "a+b+");
}

static void decode_keeps_malformed_escapes(void **state) {
  (void)state;
  char s[] = "100%-%4";
  assert_true(kdao__http_decode(s, true));
  assert_string_equal(s, "100%-%4");
  char utf8[] = "caf%C3%A9";
  assert_true(kdao__http_decode(utf8, false));
  assert_string_equal(utf8, "caf\xc3\xa9");
}

static void decode_refuses_nul(void **state) {
  (void)state;
  char s[] = "a%00b";
  assert_false(kdao__http_decode(s, true));
}

/* Parses a NUL-terminated text that must be accepted. */
static json_t *parse(const char *text) {
  kdao__http_text problem = KDAO__HTTP_TEXT_UTF8;
  json_t *flat = kdao__http_parse_urlencoded(text, text ? strlen(text) : 0, &problem);
  assert_int_equal(problem, KDAO__HTTP_TEXT_OK);
  return flat;
}

/* The problem of a text (`len` bytes) that must be refused. */
static kdao__http_text refused(const char *text, size_t len) {
  kdao__http_text problem = KDAO__HTTP_TEXT_OK;
  assert_null(kdao__http_parse_urlencoded(text, len, &problem));
  return problem;
}

static void text_check_is_strict_utf8(void **state) {
  (void)state;
  const char *good[] = {
      "", "ascii", "caf\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80", "\xf4\x8f\xbf\xbf", NULL};
  for (size_t i = 0; good[i]; i++)
    assert_int_equal(kdao__http_check_text(good[i], strlen(good[i])), KDAO__HTTP_TEXT_OK);
  const char *bad[] = {
      "\xff",         "\xfe\xff",         "\xc3",         "\xc3(", "\xc0\xaf", "\xe0\x80\xaf",
      "\xed\xa0\x80", "\xf4\x90\x80\x80", "\xf8\x88\x80", "a\x80", NULL};
  for (size_t i = 0; bad[i]; i++)
    assert_int_equal(kdao__http_check_text(bad[i], strlen(bad[i])), KDAO__HTTP_TEXT_UTF8);
  assert_int_equal(kdao__http_check_text("a\0b", 3), KDAO__HTTP_TEXT_NUL);
}

static void decode_refuses_invalid_utf8(void **state) {
  (void)state;
  char s[] = "%FF%FEab";
  assert_int_equal(kdao__http_unescape(s, true), KDAO__HTTP_TEXT_UTF8);
  char t[] = "%C3%A9%00";
  assert_int_equal(kdao__http_unescape(t, true), KDAO__HTTP_TEXT_NUL);
  char raw[] = "\xc3\xa9t\xc3\xa9";
  assert_int_equal(kdao__http_unescape(raw, false), KDAO__HTTP_TEXT_OK);
  assert_string_equal(raw, "\xc3\xa9t\xc3\xa9");
}

static void urlencoded_refuses_what_no_string_holds(void **state) {
  (void)state;
  assert_int_equal(refused("username=%FF%FEab", 17), KDAO__HTTP_TEXT_UTF8);
  assert_int_equal(refused("a=1&%FF=2", 9), KDAO__HTTP_TEXT_UTF8);
  assert_int_equal(refused("username=\xff", 10), KDAO__HTTP_TEXT_UTF8);
  assert_int_equal(refused("a=%00", 5), KDAO__HTTP_TEXT_NUL);
  assert_int_equal(refused("a%00=1", 6), KDAO__HTTP_TEXT_NUL);
  /* A raw NUL must not end the text: "username=ab" would be stored. */
  assert_int_equal(refused("username=ab\0cd", 14), KDAO__HTTP_TEXT_NUL);
  assert_int_equal(refused("a=1&\0", 5), KDAO__HTTP_TEXT_NUL);
}

static void form_add_checks_keys_and_values(void **state) {
  (void)state;
  json_t *flat = json_object();
  assert_int_equal(kdao__http_form_add(flat, "a", "x\0y", 3), KDAO__HTTP_TEXT_NUL);
  assert_int_equal(kdao__http_form_add(flat, "a", "\xe2\x82", 2), KDAO__HTTP_TEXT_UTF8);
  assert_int_equal(kdao__http_form_add(flat, "\xff", "x", 1), KDAO__HTTP_TEXT_UTF8);
  assert_int_equal(kdao__http_form_add(flat, "a", "\xe2\x82\xac", 3), 0);
  assert_json(flat, "{\"a\":\"\xe2\x82\xac\"}");
  json_decref(flat);
}

static void path_segments_are_checked_decoded(void **state) {
  (void)state;
  assert_int_equal(kdao__http_check_path("/consumers/a%20b%2Fc"), KDAO__HTTP_TEXT_OK);
  assert_int_equal(kdao__http_check_path("/consumers/caf%C3%A9/acls"), KDAO__HTTP_TEXT_OK);
  assert_int_equal(kdao__http_check_path("/apis/%FF%FE"), KDAO__HTTP_TEXT_UTF8);
  assert_int_equal(kdao__http_check_path("/apis/a%00b"), KDAO__HTTP_TEXT_NUL);
  assert_int_equal(kdao__http_check_path("/\xc3/x"), KDAO__HTTP_TEXT_UTF8);
  assert_int_equal(kdao__http_check_path("//"), KDAO__HTTP_TEXT_OK);
}

static void head_check(void **state) {
  (void)state;
  const char *msg = NULL;
  const char ok[] = "GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 12 \r\n\r\nbody\0with NUL";
  assert_int_equal(kdao__http_check_head(ok, sizeof ok - 1, 1024, &msg), 0);
  assert_int_equal(kdao__http_check_head("\r\nGET / HTTP/1.0\n\n", 18, 1024, &msg), 0);
  assert_int_equal(kdao__http_check_head("GET / HTTP/1.1\r\nHost: x\r\n", 25, 1024, &msg), -1);
  assert_int_equal(kdao__http_check_head("\r\n\r\n", 4, 1024, &msg), -1);
  assert_int_equal(kdao__http_check_head("\0\r\n\r\n", 5, 1024, &msg), 400);
  assert_string_equal(msg, "Bad request: NUL byte in the request line or headers");
  assert_int_equal(kdao__http_check_head("GET /a\0b HTTP/1.1\r\n\r\n", 21, 1024, &msg), 400);
  assert_int_equal(kdao__http_check_head("GET / HTTP/1.1\r\nX: a\0", 21, 1024, &msg), 400);
  const char bad_length[] = "POST / HTTP/1.1\r\ncontent-length: 1, 2\r\n\r\n";
  assert_int_equal(kdao__http_check_head(bad_length, sizeof bad_length - 1, 1024, &msg), 400);
  assert_string_equal(msg, "Bad request: invalid Content-Length");
  char big[300];
  memset(big, 'a', sizeof big);
  memcpy(big, "GET /", 5);
  assert_int_equal(kdao__http_check_head(big, sizeof big, 256, &msg), 414);
  assert_string_equal(msg, "URI too long");
  memcpy(big, "GET / HTTP/1.1\r\nX: ", 19);
  assert_int_equal(kdao__http_check_head(big, sizeof big, 256, &msg), 431);
  char many[2048] = "GET / HTTP/1.1\r\n";
  for (int i = 0; i < 150; i++) strcat(many, "a:b\r\n");
  assert_int_equal(kdao__http_check_head(many, strlen(many), sizeof many, &msg), 431);
}

static void urlencoded_flat_fields(void **state) {
  (void)state;
  json_t *flat = parse("name=mockbin&hosts=a.com,b.com&empty=&bare");
  assert_json(flat,
              "{\"bare\":\"\",\"empty\":\"\",\"hosts\":\"a.com,b.com\",\"name\":\"mockbin\"}");
  json_decref(flat);
}

static void urlencoded_repeated_keys_make_arrays(void **state) {
  (void)state;
  json_t *flat = parse("m=GET&m=POST&&m=PUT&=ignored");
  assert_json(flat, "{\"m\":[\"GET\",\"POST\",\"PUT\"]}");
  json_decref(flat);
}

static void urlencoded_decodes_keys_and_values(void **state) {
  (void)state;
  json_t *flat = parse("config.key%5Fnames=api+key%2Cx");
  assert_json(flat, "{\"config.key_names\":\"api key,x\"}");
  json_decref(flat);
  flat = parse(NULL);
  assert_json(flat, "{}");
  json_decref(flat);
}

static void normalize_dotted_keys(void **state) {
  (void)state;
  json_t *flat = json_pack("{sssssss{ss}}", "name", "key-auth", "config.key_names", "apikey",
                           "config.hide_credentials", "true", "nested", "a.b", "c");
  json_t *out = kdao__http_normalize(flat);
  assert_json(out, "{\"config\":{\"hide_credentials\":\"true\",\"key_names\":\"apikey\"},"
                   "\"name\":\"key-auth\",\"nested\":{\"a\":{\"b\":\"c\"}}}");
  json_decref(out);
  json_decref(flat);
}

static void normalize_bracketed_keys_append(void **state) {
  (void)state;
  json_t *flat =
      json_pack("{sssss[ss]}", "hosts[1]", "a.com", "hosts[2]", "b.com", "config.list[]", "x", "y");
  json_t *out = kdao__http_normalize(flat);
  /* Object order decides array order: jansson keeps insertion order. */
  assert_json(out, "{\"config\":{\"list\":[\"x\",\"y\"]},\"hosts\":[\"a.com\",\"b.com\"]}");
  json_decref(out);
  json_decref(flat);
}

static void normalize_deeper_key_wins_over_scalar(void **state) {
  (void)state;
  json_t *flat = json_pack("{ssss}", "config", "x", "config.a", "1");
  json_t *out = kdao__http_normalize(flat);
  assert_json(out, "{\"config\":{\"a\":\"1\"}}");
  json_decref(out);
  json_decref(flat);
}

static void listen_addresses(void **state) {
  (void)state;
  char *host;
  unsigned port;
  assert_int_equal(kdao__http_parse_listen("127.0.0.1:8001", &host, &port), 0);
  assert_string_equal(host, "127.0.0.1");
  assert_int_equal(port, 8001);
  free(host);
  assert_int_equal(kdao__http_parse_listen("[::1]:0", &host, &port), 0);
  assert_string_equal(host, "::1");
  assert_int_equal(port, 0);
  free(host);
  assert_int_equal(kdao__http_parse_listen("localhost:65535", &host, &port), 0);
  free(host);
  const char *bad[] = {"8001",     ":8001",  "host:",   "host:65536", "host:-1",
                       "host:80x", "::1:80", "[::1:80", "[]:80",      NULL};
  for (size_t i = 0; bad[i]; i++) {
    assert_int_equal(kdao__http_parse_listen(bad[i], &host, &port), -1);
    assert_null(host);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(decode_percent_and_plus),
      cmocka_unit_test(decode_keeps_malformed_escapes),
      cmocka_unit_test(decode_refuses_nul),
      cmocka_unit_test(text_check_is_strict_utf8),
      cmocka_unit_test(decode_refuses_invalid_utf8),
      cmocka_unit_test(urlencoded_refuses_what_no_string_holds),
      cmocka_unit_test(form_add_checks_keys_and_values),
      cmocka_unit_test(path_segments_are_checked_decoded),
      cmocka_unit_test(head_check),
      cmocka_unit_test(urlencoded_flat_fields),
      cmocka_unit_test(urlencoded_repeated_keys_make_arrays),
      cmocka_unit_test(urlencoded_decodes_keys_and_values),
      cmocka_unit_test(normalize_dotted_keys),
      cmocka_unit_test(normalize_bracketed_keys_append),
      cmocka_unit_test(normalize_deeper_key_wins_over_scalar),
      cmocka_unit_test(listen_addresses),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
