/*
 * test_keyset.c — base64url and keyset page tokens (backend_util.c).
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

static void test_keyset_round_trip(void **state) {
  (void)state;
  kdao_schema *s = compile_plugins_like();
  json_t *row = json_pack("{s:s, s:s, s:b}", "id", "6b9a5a2e-1f3c-4c8e-9a51-3c1bd7f7d0a1", "name",
                          "key-auth \"é\" /", "enabled", 1);
  char *token = kdao__keyset_encode(s, row);
  assert_non_null(token);
  json_t *keys = kdao__keyset_decode(token, 2);
  assert_non_null(keys);
  assert_string_equal(json_string_value(json_array_get(keys, 0)),
                      "6b9a5a2e-1f3c-4c8e-9a51-3c1bd7f7d0a1");
  assert_string_equal(json_string_value(json_array_get(keys, 1)), "key-auth \"é\" /");
  /* The wrong key width is a malformed token for that entity. */
  assert_null(kdao__keyset_decode(token, 1));
  assert_null(kdao__keyset_decode(token, 3));
  json_decref(keys);
  free(token);

  /* A row missing a key field has no position to encode. */
  json_t *partial = json_pack("{s:s}", "id", "6b9a5a2e-1f3c-4c8e-9a51-3c1bd7f7d0a1");
  assert_null(kdao__keyset_encode(s, partial));
  json_decref(partial);
  json_decref(row);
  kdao_schema_free(s);
}

static char *b64_of(const char *text) {
  return kdao__b64_encode((const unsigned char *)text, strlen(text));
}

static void test_keyset_rejects_malformed(void **state) {
  (void)state;
  assert_null(kdao__keyset_decode(NULL, 1));
  assert_null(kdao__keyset_decode("", 1));
  assert_null(kdao__keyset_decode("not base64!", 1));
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
    char *token = b64_of(bad_json[i]);
    json_t *keys = kdao__keyset_decode(token, 1);
    if (keys) fail_msg("accepted token holding %s", bad_json[i]);
    free(token);
  }
  char *ok = b64_of("[42]");
  json_t *keys = kdao__keyset_decode(ok, 1);
  assert_non_null(keys);
  assert_int_equal(json_integer_value(json_array_get(keys, 0)), 42);
  json_decref(keys);
  free(ok);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_b64_vectors),
      cmocka_unit_test(test_b64_round_trip_all_lengths),
      cmocka_unit_test(test_b64_rejects_malformed),
      cmocka_unit_test(test_keyset_round_trip),
      cmocka_unit_test(test_keyset_rejects_malformed),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
