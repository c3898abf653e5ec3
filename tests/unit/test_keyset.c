/*
 * test_keyset.c — base64url, keyset positions and page tokens (backend_util.c).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "backend.h"

static void b64_round_trip(const unsigned char *data, size_t len) {
  char *text = kdao__b64_encode(data, len);
  assert_non_null(text);
  assert_null(strpbrk(text, "+/="));
  size_t back_len = 12345;
  unsigned char *back = kdao__b64_decode(text, &back_len);
  assert_non_null(back);
  assert_int_equal(back_len, len);
  assert_memory_equal(back, data, len);
  free(back);
  free(text);
}

/* RFC 4648 test vectors, in the url alphabet without padding. */
static void test_b64_vectors(void **state) {
  (void)state;
  static const struct {
    const char *plain, *encoded;
  } v[] = {{"", ""},           {"f", "Zg"},          {"fo", "Zm8"},         {"foo", "Zm9v"},
           {"foob", "Zm9vYg"}, {"fooba", "Zm9vYmE"}, {"foobar", "Zm9vYmFy"}};
  for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
    char *text = kdao__b64_encode((const unsigned char *)v[i].plain, strlen(v[i].plain));
    assert_string_equal(text, v[i].encoded);
    free(text);
  }
  /* The url alphabet: 0xfb 0xff → "-_8" where standard base64 has "+/8=". */
  const unsigned char hi[] = {0xfb, 0xff};
  char *text = kdao__b64_encode(hi, sizeof hi);
  assert_string_equal(text, "-_8");
  free(text);
}

static void test_b64_round_trip_all_lengths(void **state) {
  (void)state;
  unsigned char data[300];
  for (size_t i = 0; i < sizeof data; i++) data[i] = (unsigned char)(i * 37 + 11);
  for (size_t len = 0; len <= sizeof data; len++) b64_round_trip(data, len);
}

static void test_b64_rejects_malformed(void **state) {
  (void)state;
  const char *bad[] = {
      "Zg==",  /* padding */
      "Zm9v+", /* standard alphabet */
      "Zm9/",  /* standard alphabet */
      "Z",     /* impossible length */
      "Zm9vY", /* impossible length */
      "Zh",    /* non-zero trailing bits: "Zg" is the only spelling of "f" */
      "Zm9 v", /* whitespace */
      "Zm9v\n",
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    size_t len = 0;
    unsigned char *out = kdao__b64_decode(bad[i], &len);
    if (out) fail_msg("accepted malformed base64 \"%s\"", bad[i]);
  }
  size_t len = 0;
  assert_null(kdao__b64_decode(NULL, &len));
}

/* A two-field primary key (id, name), like plugins. */
static kdao_schema *compile_plugins_like(void) {
  static const char *const pk[] = {"id", "name", NULL};
  static const kdao_field_def fields[] = {
      {.name = "id", .type = KDAO_TYPE_ID},
      {.name = "name", .type = KDAO_TYPE_STRING},
      {.name = "enabled", .type = KDAO_TYPE_BOOLEAN},
      {0},
  };
  static const kdao_schema_def def = {
      .version = KDAO_DEF_VERSION, .name = "things", .primary_key = pk, .fields = fields};
  kdao_schema *s = NULL;
  kdao_error *err = NULL;
  assert_int_equal(kdao_schema_compile(&def, &s, &err), KDAO_OK);
  assert_null(err);
  return s;
}

static json_t *decode_text(const char *text, size_t npk) {
  return kdao__keyset_decode((const unsigned char *)text, text ? strlen(text) : 0, npk);
}

static void test_keyset_round_trip(void **state) {
  (void)state;
  kdao_schema *s = compile_plugins_like();
  json_t *row = json_pack("{s:s, s:s, s:b}", "id", "6b9a5a2e-1f3c-4c8e-9a51-3c1bd7f7d0a1", "name",
                          "key-auth \"é\" /", "enabled", 1);
  char *pos = kdao__keyset_encode(s, row);
  assert_non_null(pos);
  json_t *keys = decode_text(pos, 2);
  assert_non_null(keys);
  assert_string_equal(json_string_value(json_array_get(keys, 0)),
                      "6b9a5a2e-1f3c-4c8e-9a51-3c1bd7f7d0a1");
  assert_string_equal(json_string_value(json_array_get(keys, 1)), "key-auth \"é\" /");
  /* The wrong key width is a malformed position for that entity. */
  assert_null(decode_text(pos, 1));
  assert_null(decode_text(pos, 3));
  json_decref(keys);
  free(pos);

  /* A row missing a key field has no position to encode. */
  json_t *partial = json_pack("{s:s}", "id", "6b9a5a2e-1f3c-4c8e-9a51-3c1bd7f7d0a1");
  assert_null(kdao__keyset_encode(s, partial));
  json_decref(partial);
  json_decref(row);
  kdao_schema_free(s);
}

static void test_keyset_rejects_malformed(void **state) {
  (void)state;
  assert_null(decode_text(NULL, 1));
  assert_null(decode_text("", 1));
  const char *bad_json[] = {
      "[\"a\"",          /* truncated */
      "{\"a\":1}",       /* not an array */
      "\"a\"",           /* a bare scalar */
      "[]",              /* no key */
      "[null]",          /* null is not a key value */
      "[[1]]",           /* nor an array */
      "[{\"a\":1}]",     /* nor an object */
      "[\"a\"] trailing" /* garbage after the array */
  };
  for (size_t i = 0; i < sizeof bad_json / sizeof bad_json[0]; i++) {
    json_t *keys = decode_text(bad_json[i], 1);
    if (keys) fail_msg("accepted position %s", bad_json[i]);
  }
  json_t *keys = decode_text("[42]", 1);
  assert_non_null(keys);
  assert_int_equal(json_integer_value(json_array_get(keys, 0)), 42);
  json_decref(keys);
}

static const unsigned char KEY[KDAO__PAGE_KEY_LEN] = "0123456789abcdef0123456789abcdef";
static const char POS[] = "[\"6b9a5a2e-1f3c-4c8e-9a51-3c1bd7f7d0a1\"]";
static const char FILTER[] = "{\"name\":\"a\"}";

static char *seal(const unsigned char *key, const char *table, const char *filter) {
  char *t = kdao__page_token_seal(key, table, filter, (const unsigned char *)POS, sizeof POS - 1);
  assert_non_null(t);
  return t;
}

/* 0 when `token` opens for (table, filter) under KEY, checking the position it carries. */
static int open_as(const char *token, const char *table, const char *filter) {
  unsigned char *pos = NULL;
  size_t len = 99;
  int rc = kdao__page_token_open(KEY, table, filter, token, &pos, &len);
  if (rc == 0) {
    assert_int_equal(len, sizeof POS - 1);
    assert_memory_equal(pos, POS, len);
    assert_int_equal(pos[len], '\0');
  } else {
    assert_null(pos);
    assert_int_equal(len, 0);
  }
  free(pos);
  return rc;
}

static void test_page_token_round_trip(void **state) {
  (void)state;
  char *t = seal(KEY, "apis", NULL);
  assert_int_equal(open_as(t, "apis", NULL), 0);
  assert_null(strpbrk(t, "+/="));
  /* the same position under the same key and context is the same token: no state, no nonce */
  char *again = seal(KEY, "apis", NULL);
  assert_string_equal(t, again);
  free(again);
  free(t);
  t = seal(KEY, "apis", FILTER);
  assert_int_equal(open_as(t, "apis", FILTER), 0);
  free(t);
  /* an empty position (a backend may have one) is a position like any other */
  t = kdao__page_token_seal(KEY, "apis", NULL, NULL, 0);
  unsigned char *pos = NULL;
  size_t len = 99;
  assert_int_equal(kdao__page_token_open(KEY, "apis", NULL, t, &pos, &len), 0);
  assert_int_equal(len, 0);
  free(pos);
  free(t);
}

/* Every single-character change, cut and extension of a token is refused. */
static void test_page_token_refuses_any_change(void **state) {
  (void)state;
  static const char alphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_+/=. ";
  char *t = seal(KEY, "apis", FILTER);
  size_t n = strlen(t);
  char *m = malloc(n + 2);
  for (size_t i = 0; i < n; i++) {
    for (const char *c = alphabet; *c; c++) {
      if (*c == t[i]) continue;
      memcpy(m, t, n + 1);
      m[i] = *c;
      if (open_as(m, "apis", FILTER) == 0) fail_msg("accepted %s (position %zu changed)", m, i);
    }
    memcpy(m, t, i);
    m[i] = '\0';
    if (open_as(m, "apis", FILTER) == 0) fail_msg("accepted %s (cut to %zu)", m, i);
  }
  for (const char *c = alphabet; *c; c++) {
    memcpy(m, t, n);
    m[n] = *c;
    m[n + 1] = '\0';
    if (open_as(m, "apis", FILTER) == 0) fail_msg("accepted %s (extended)", m);
  }
  free(m);
  free(t);
}

static void test_page_token_is_bound_to_table_filter_and_key(void **state) {
  (void)state;
  char *t = seal(KEY, "apis", FILTER);
  assert_int_equal(open_as(t, "consumers", FILTER), 1);
  assert_int_equal(open_as(t, "apis", NULL), 1);
  assert_int_equal(open_as(t, "apis", "{\"name\":\"b\"}"), 1);
  /* length prefixes: moving bytes between table and filter is another context */
  assert_int_equal(open_as(t, "apis{", "\"name\":\"a\"}"), 1);
  free(t);
  unsigned char other[KDAO__PAGE_KEY_LEN];
  memcpy(other, KEY, sizeof other);
  other[31] ^= 1;
  t = seal(other, "apis", FILTER);
  assert_int_equal(open_as(t, "apis", FILTER), 1);
  free(t);
  /* not base64url, not a token at all */
  assert_int_equal(open_as("%%garbage%%", "apis", NULL), 1);
  assert_int_equal(open_as("", "apis", NULL), 1);
  assert_int_equal(open_as(NULL, "apis", NULL), 1);
}

static void test_page_keys_are_random(void **state) {
  (void)state;
  char *a = kdao__page_key_new(), *b = kdao__page_key_new();
  assert_non_null(a);
  assert_non_null(b);
  assert_string_not_equal(a, b);
  size_t len = 0;
  unsigned char *raw = kdao__b64_decode(a, &len);
  assert_int_equal(len, KDAO__PAGE_KEY_LEN);
  free(raw);
  free(a);
  free(b);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_b64_vectors),
      cmocka_unit_test(test_b64_round_trip_all_lengths),
      cmocka_unit_test(test_b64_rejects_malformed),
      cmocka_unit_test(test_keyset_round_trip),
      cmocka_unit_test(test_keyset_rejects_malformed),
      cmocka_unit_test(test_page_token_round_trip),
      cmocka_unit_test(test_page_token_refuses_any_change),
      cmocka_unit_test(test_page_token_is_bound_to_table_filter_and_key),
      cmocka_unit_test(test_page_keys_are_random),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
