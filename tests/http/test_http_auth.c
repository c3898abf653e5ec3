/*
 * test_http_auth.c — admin_auth parsing and the Authorization header check (cli/http_auth.c).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "http_auth.h"

static void test_parse(void **state) {
  (void)state;
  kdao__http_auth a;
  assert_int_equal(kdao__http_auth_parse(NULL, &a), 0);
  assert_int_equal(a.kind, KDAO__HTTP_AUTH_NONE);
  assert_true(kdao__http_auth_check(&a, NULL));
  assert_int_equal(kdao__http_auth_parse("token:abc", &a), 0);
  assert_int_equal(a.kind, KDAO__HTTP_AUTH_TOKEN);
  assert_int_equal(kdao__http_auth_parse("basic:u:p:q", &a), 0);
  assert_int_equal(a.kind, KDAO__HTTP_AUTH_BASIC);
  static const char *const bad[] = {"abc", "token:", "basic:u", "basic::p", "basic:u:", ""};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    assert_int_equal(kdao__http_auth_parse(bad[i], &a), -1);
}

static void test_token(void **state) {
  (void)state;
  kdao__http_auth a;
  assert_int_equal(kdao__http_auth_parse("token:s3cr3t", &a), 0);
  assert_true(kdao__http_auth_check(&a, "Bearer s3cr3t"));
  assert_true(kdao__http_auth_check(&a, "bearer   s3cr3t  "));
  assert_false(kdao__http_auth_check(&a, NULL));
  assert_false(kdao__http_auth_check(&a, ""));
  assert_false(kdao__http_auth_check(&a, "Bearer"));
  assert_false(kdao__http_auth_check(&a, "Bearer "));
  assert_false(kdao__http_auth_check(&a, "Bearer s3cr3"));
  assert_false(kdao__http_auth_check(&a, "Bearer s3cr3tt"));
  assert_false(kdao__http_auth_check(&a, "Bearers3cr3t"));
  assert_false(kdao__http_auth_check(&a, "Token s3cr3t"));
  assert_false(kdao__http_auth_check(&a, "s3cr3t"));
  /* base64("x:s3cr3t"): the token is not accepted as a Basic password. */
  assert_false(kdao__http_auth_check(&a, "Basic eDpzM2NyM3Q="));
  assert_string_equal(kdao__http_auth_challenge(&a), "Bearer realm=\"kdao admin API\"");
}

static void test_basic(void **state) {
  (void)state;
  kdao__http_auth a;
  assert_int_equal(kdao__http_auth_parse("basic:admin:pa:ss", &a), 0);
  assert_true(kdao__http_auth_check(&a, "Basic YWRtaW46cGE6c3M=")); /* admin:pa:ss */
  assert_true(kdao__http_auth_check(&a, "basic YWRtaW46cGE6c3M="));
  assert_false(kdao__http_auth_check(&a, "Basic YWRtaW46cGE6cw=="));  /* admin:pa:s */
  assert_false(kdao__http_auth_check(&a, "Basic cm9vdDpwYTpzcw=="));  /* root:pa:ss */
  assert_false(kdao__http_auth_check(&a, "Basic YWRtaW46cGE6c3M"));   /* no padding */
  assert_false(kdao__http_auth_check(&a, "Basic YWRtaW46cGE6c3M=!")); /* not base64 */
  assert_false(kdao__http_auth_check(&a, "Basic !!!!"));
  assert_false(kdao__http_auth_check(&a, "Bearer admin:pa:ss"));
  assert_false(kdao__http_auth_check(&a, "Basic "));
  assert_string_equal(kdao__http_auth_challenge(&a),
                      "Basic realm=\"kdao admin API\", charset=\"UTF-8\"");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_parse),
      cmocka_unit_test(test_token),
      cmocka_unit_test(test_basic),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
