/*
 * test_entities_lb.c — the load-balancing entities (upstreams, targets) and the host parsing
 * under them (Kong 0.10.4's utils.hostname_type / normalize_ip / format_host), with the
 * cases of Kong's spec/01-unit/04-utils_spec.lua and 07-entities_schemas_spec.lua.
 */
#include "schemas/schemas_int.h"
#include "unit/test_entities.h"

static kdao_schema *upstreams;
static kdao_schema *targets;

static int setup(void **state) {
  (void)state;
  upstreams = compile_def(&kdao__schema_upstreams);
  targets = compile_def(&kdao__schema_targets);
  return 0;
}

static int teardown(void **state) {
  (void)state;
  kdao_schema_free(upstreams);
  kdao_schema_free(targets);
  return 0;
}

/* ---- host parsing ---- */

static void hostname_type_by_exclusion(void **state) {
  (void)state;
  assert_int_equal(kdao__hostname_type("123.123.123.123"), KDAO__HOST_IPV4);
  assert_int_equal(kdao__hostname_type("1.2.3.4:80"), KDAO__HOST_IPV4);
  assert_int_equal(kdao__hostname_type("1.2.3"), KDAO__HOST_IPV4);
  assert_int_equal(kdao__hostname_type("::1"), KDAO__HOST_IPV6);
  assert_int_equal(kdao__hostname_type("2345::6789"), KDAO__HOST_IPV6);
  assert_int_equal(kdao__hostname_type("[2345::6789]:80"), KDAO__HOST_IPV6);
  assert_int_equal(kdao__hostname_type("some::thing"), KDAO__HOST_IPV6);
  assert_int_equal(kdao__hostname_type("localhost:80"), KDAO__HOST_NAME);
  assert_int_equal(kdao__hostname_type(""), KDAO__HOST_NAME);
}

/* Normalises `in` and formats it with `default_port`; NULL when invalid. */
static char *normalized(const char *in, long default_port, kdao__host_type *type) {
  kdao__host h;
  int rc = kdao__normalize_ip(in, &h);
  if (rc == KDAO_ERR_SCHEMA) {
    assert_null(h.host);
    return NULL;
  }
  assert_int_equal(rc, KDAO_OK);
  if (type) *type = h.type;
  char *s = kdao__format_host(&h, default_port);
  assert_non_null(s);
  kdao__host_clear(&h);
  return s;
}

static void expect_normalized(const char *in, kdao__host_type type, const char *out) {
  kdao__host_type got_type;
  char *got = normalized(in, -1, &got_type);
  /* cmocka's fail_msg is not declared noreturn: the compiler must see that a refused host
   * (got_type unset, got NULL) never reaches the comparison. */
  if (!got) {
    fail_msg("%s: refused, expected %s", in, out);
  } else {
    if (strcmp(got, out) != 0 || got_type != type)
      fail_msg("%s: expected %s (type %d), got %s (type %d)", in, out, type, got, got_type);
    free(got);
  }
}

static void expect_refused(const char *in) {
  char *got = normalized(in, -1, NULL);
  if (got) fail_msg("%s: expected refused, got %s", in, got);
}

static void normalize_ipv4(void **state) {
  (void)state;
  expect_normalized("123.123.123.123", KDAO__HOST_IPV4, "123.123.123.123");
  expect_normalized("123.123.123.123:80", KDAO__HOST_IPV4, "123.123.123.123:80");
  expect_normalized("001.001.001.001:00080", KDAO__HOST_IPV4, "1.1.1.1:80");
  expect_normalized("0.0.0.0:0", KDAO__HOST_IPV4, "0.0.0.0:0");
  const char *bad[] = {"123.123:80",
                       "123.123.123.999",
                       "123.123.123.123:80a",
                       "123.123.123.123.123:80",
                       "123.123.123.123:99999",
                       "1.2.3.4.5",
                       "1.2.3.4:",
                       "1234.1.1.1",
                       "1.2.3"};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) expect_refused(bad[i]);
}

static void normalize_ipv6(void **state) {
  (void)state;
  const char *one = "[0000:0000:0000:0000:0000:0000:0000:0001]";
  char with_port[64];
  snprintf(with_port, sizeof with_port, "%s:80", one);
  expect_normalized("::1", KDAO__HOST_IPV6, one);
  expect_normalized("[::1]", KDAO__HOST_IPV6, one);
  expect_normalized("[::1]:80", KDAO__HOST_IPV6, with_port);
  expect_normalized("[0000:0000:0000:0000:0000:0000:0000:0001]:80", KDAO__HOST_IPV6, with_port);
  expect_normalized("::", KDAO__HOST_IPV6, "[0000:0000:0000:0000:0000:0000:0000:0000]");
  expect_normalized("FE80::A:b", KDAO__HOST_IPV6, "[fe80:0000:0000:0000:0000:0000:000a:000b]");
  expect_normalized("1::", KDAO__HOST_IPV6, "[0001:0000:0000:0000:0000:0000:0000:0000]");
  const char *bad[] = {"::x",   "[::x]:80", "[::1]:80a", "[::1]:99999", ":x:1",     "[::1]:",
                       "1:2:3", "1::2::3",  "[::1",      "12345::1",    "[1.2.3.4]"};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) expect_refused(bad[i]);
}

static void normalize_names(void **state) {
  (void)state;
  const char *valids[] = {"hello.com",      "1991.io",
                          "HELLO.com",      "mockbin_api.com",
                          "localhost",      "-with-SUPER-MONKEYS-pc58ag80a8qai00g7n9n",
                          "d9juau41awczczp"};
  for (size_t i = 0; i < sizeof valids / sizeof *valids; i++) {
    char in[128];
    expect_normalized(valids[i], KDAO__HOST_NAME, valids[i]);
    snprintf(in, sizeof in, "%s:80", valids[i]);
    expect_normalized(in, KDAO__HOST_NAME, in);
    snprintf(in, sizeof in, "%s:xx", valids[i]);
    expect_refused(in);
    snprintf(in, sizeof in, "%s:99999", valids[i]);
    expect_refused(in);
  }
  const char *invalids[] = {"/mockbin",
                            ".mockbin",
                            "mockbin.",
                            "mock;bin",
                            "mockbin.com/org",
                            "mockbin-.org",
                            "mockbin.org-",
                            "hello..mockbin.com",
                            "hello-.mockbin.com",
                            "mashape..com",
                            "localhost:8x0",
                            "m a s h a p e.com:80",
                            "",
                            ":80",
                            "."};
  for (size_t i = 0; i < sizeof invalids / sizeof *invalids; i++) {
    char in[128];
    expect_refused(invalids[i]);
    snprintf(in, sizeof in, "%s:80", invalids[i]);
    expect_refused(in);
  }
}

static void format_host_default_port(void **state) {
  (void)state;
  char *s = normalized("1.2.3.4", 8000, NULL);
  assert_string_equal(s, "1.2.3.4:8000");
  free(s);
  s = normalized("1.2.3.4:80", 8000, NULL);
  assert_string_equal(s, "1.2.3.4:80");
  free(s);
  s = normalized("::1", 8000, NULL);
  assert_string_equal(s, "[0000:0000:0000:0000:0000:0000:0000:0001]:8000");
  free(s);
  s = normalized("mashape.com", -1, NULL);
  assert_string_equal(s, "mashape.com");
  free(s);
}

/* ---- upstreams ---- */

static void upstream_name_rules(void **state) {
  (void)state;
  expect_field_error(upstreams, J("{}"), "name", "name is required");
  expect_check_error(upstreams, J("{'name': '123.123.123.123'}"),
                     "Invalid name; no ip addresses allowed");
  expect_check_error(upstreams, J("{'name': '::1'}"), "Invalid name; no ip addresses allowed");
  expect_check_error(upstreams, json_pack("{ss}", "name", "\\\\bad\\\\////name////"),
                     "Invalid name; must be a valid hostname");
  expect_check_error(upstreams, J("{'name': 'name:80'}"), "Invalid name; no port allowed");
  json_decref(expect_valid(upstreams, J("{'name': 'valid.host.name'}")));
}

/* True when `list` holds each of 1..n exactly once. */
static bool is_permutation(const json_t *list, size_t n) {
  if (!json_is_array(list) || json_array_size(list) != n) return false;
  bool *seen = calloc(n + 1, 1);
  assert_non_null(seen);
  bool ok = true;
  for (size_t i = 0; i < n && ok; i++) {
    json_t *v = json_array_get(list, i);
    json_int_t k = json_is_integer(v) ? json_integer_value(v) : 0;
    ok = k >= 1 && (size_t)k <= n && !seen[k];
    if (ok) seen[k] = true;
  }
  free(seen);
  return ok;
}

static void upstream_slots_range_and_generated_orderlist(void **state) {
  (void)state;
  json_t *out = expect_valid(upstreams, J("{'name': 'valid.host.name'}"));
  assert_true(json_number_value(json_object_get(out, "slots")) == 100);
  assert_true(is_permutation(json_object_get(out, "orderlist"), 100));
  json_decref(out);

  const char *msg = "number of slots must be between 10 and 65536";
  const double bad[] = {-1, 9, 65537, 10.5};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    json_t *t = json_pack("{sssf}", "name", "valid.host.name", "slots", bad[i]);
    expect_check_error(upstreams, t, msg);
  }
  const int good[] = {10, 17, 500, 65536};
  for (size_t i = 0; i < sizeof good / sizeof *good; i++) {
    out = expect_valid(upstreams, json_pack("{sssi}", "name", "valid.host.name", "slots", good[i]));
    assert_true(is_permutation(json_object_get(out, "orderlist"), (size_t)good[i]));
    json_decref(out);
  }
}

static void upstream_generated_orderlists_differ(void **state) {
  (void)state;
  /* 1000! orders: two equal draws mean the generator is not random at all. */
  json_t *a = expect_valid(upstreams, J("{'name': 'a.b', 'slots': 1000}"));
  json_t *b = expect_valid(upstreams, J("{'name': 'a.b', 'slots': 1000}"));
  assert_false(json_equal(json_object_get(a, "orderlist"), json_object_get(b, "orderlist")));
  json_decref(a);
  json_decref(b);
}

static void upstream_given_orderlist(void **state) {
  (void)state;
  json_t *out = expect_valid(upstreams, J("{'name': 'valid.host.name', 'slots': 10,"
                                          " 'orderlist': [9,7,5,3,1,2,4,6,8,10]}"));
  json_t *want = J("[9,7,5,3,1,2,4,6,8,10]");
  assert_true(json_equal(json_object_get(out, "orderlist"), want));
  json_decref(want);
  json_decref(out);

  const char *mismatch = "size mismatch between 'slots' and 'orderlist'";
  expect_check_error(upstreams, J("{'name': 'h', 'slots': 10, 'orderlist': [9,7,5,3,1,2,4,6,8]}"),
                     mismatch);
  expect_check_error(
      upstreams, J("{'name': 'h', 'slots': 10, 'orderlist': [9,7,5,3,1,2,4,6,8,10,11]}"), mismatch);
  const char *invalid = "invalid orderlist";
  expect_check_error(upstreams, J("{'name': 'h', 'slots': 10, 'orderlist': [9,7,5,3,1,2,4,6,8,8]}"),
                     invalid);
  expect_check_error(upstreams,
                     J("{'name': 'h', 'slots': 10, 'orderlist': [9,7,5,3,1,2,4,6,8,11]}"), invalid);
  expect_check_error(upstreams, J("{'name': 'h', 'slots': 10, 'orderlist': [9,7,5,3,1,2,4,6,8,0]}"),
                     invalid);
  expect_check_error(
      upstreams, J("{'name': 'h', 'slots': 10, 'orderlist': [9,7,5,3,1,2,4,6,8,1.5]}"), invalid);
}

static void upstream_partial_updates(void **state) {
  (void)state;
  /* Kong raised a Lua error on these; kdao checks what is there. */
  json_decref(expect_valid_mode(upstreams, J("{}"), KDAO_MODE_UPDATE, NULL));
  json_decref(expect_valid_mode(upstreams, J("{'name': 'other.name'}"), KDAO_MODE_UPDATE, NULL));
  expect_check_error_mode(upstreams, J("{'name': '1.2.3.4'}"), KDAO_MODE_UPDATE, NULL,
                          KDAO_ERR_SCHEMA, "Invalid name; no ip addresses allowed");
  expect_check_error_mode(upstreams, J("{'slots': 5}"), KDAO_MODE_UPDATE, NULL, KDAO_ERR_SCHEMA,
                          "number of slots must be between 10 and 65536");
  /* New slots without an orderlist: a matching orderlist is generated. */
  json_t *out = expect_valid_mode(upstreams, J("{'slots': 20}"), KDAO_MODE_UPDATE, NULL);
  assert_true(is_permutation(json_object_get(out, "orderlist"), 20));
  json_decref(out);
}

/* ---- targets ---- */

static void target_is_required_and_parsed(void **state) {
  (void)state;
  expect_field_error(targets, J("{}"), "target", "target is required");
  const char *names[] = {"valid.name", "valid.name:8080", "12.34.56.78", "1.2.3.4:123",
                         "::1",        "[::1]:80"};
  for (size_t i = 0; i < sizeof names / sizeof *names; i++)
    json_decref(expect_valid(targets, json_pack("{ss}", "target", names[i])));
  const char *bad[] = {"\\\\bad\\\\////name////", "1.2.3.400", "name:99999", "a..b"};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
    expect_check_error(targets, json_pack("{ss}", "target", bad[i]),
                       "Invalid target; not a valid hostname or ip address");
}

static void target_is_normalized(void **state) {
  (void)state;
  static const struct {
    const char *in, *out;
  } cases[] = {
      {"012.034.056.078", "12.34.56.78:8000"},
      {"01.02.03.04:123", "1.2.3.4:123"},
      {"valid.name", "valid.name:8000"},
      {"Valid.Name:81", "Valid.Name:81"},
      {"::1", "[0000:0000:0000:0000:0000:0000:0000:0001]:8000"},
      {"[::1]:80", "[0000:0000:0000:0000:0000:0000:0000:0001]:80"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    json_t *out = expect_valid(targets, json_pack("{ss}", "target", cases[i].in));
    assert_string_equal(json_string_value(json_object_get(out, "target")), cases[i].out);
    json_decref(out);
  }
}

static void target_weight_range(void **state) {
  (void)state;
  const int bad[] = {-10, -1, 1001};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
    expect_check_error(targets, json_pack("{sssi}", "target", "1.2.3.4", "weight", bad[i]),
                       "weight must be from 0 to 1000");
  const int good[] = {0, 100, 1000};
  for (size_t i = 0; i < sizeof good / sizeof *good; i++)
    json_decref(expect_valid(targets, json_pack("{sssi}", "target", "1.2.3.4", "weight", good[i])));
  json_t *out = expect_valid(targets, J("{'target': '1.2.3.4'}"));
  assert_true(json_number_value(json_object_get(out, "weight")) == 100);
  json_decref(out);
}

static void target_partial_updates(void **state) {
  (void)state;
  json_decref(expect_valid_mode(targets, J("{'weight': 5}"), KDAO_MODE_UPDATE, NULL));
  expect_check_error_mode(targets, J("{'weight': 5000}"), KDAO_MODE_UPDATE, NULL, KDAO_ERR_SCHEMA,
                          "weight must be from 0 to 1000");
  json_t *out = expect_valid_mode(targets, J("{'target': '10.0.0.1'}"), KDAO_MODE_UPDATE, NULL);
  assert_string_equal(json_string_value(json_object_get(out, "target")), "10.0.0.1:8000");
  json_decref(out);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(hostname_type_by_exclusion),
      cmocka_unit_test(normalize_ipv4),
      cmocka_unit_test(normalize_ipv6),
      cmocka_unit_test(normalize_names),
      cmocka_unit_test(format_host_default_port),
      cmocka_unit_test(upstream_name_rules),
      cmocka_unit_test(upstream_slots_range_and_generated_orderlist),
      cmocka_unit_test(upstream_generated_orderlists_differ),
      cmocka_unit_test(upstream_given_orderlist),
      cmocka_unit_test(upstream_partial_updates),
      cmocka_unit_test(target_is_required_and_parsed),
      cmocka_unit_test(target_is_normalized),
      cmocka_unit_test(target_weight_range),
      cmocka_unit_test(target_partial_updates),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
