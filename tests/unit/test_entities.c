/*
 * test_entities.c — the apis, consumers and ssl_* definitions through kdao_validate(), with
 * the cases and expected messages of Kong 0.10.4's spec/01-unit/07-entities_schemas_spec.lua.
 */
#include "unit/test_entities.h"

static kdao_schema *apis;
static kdao_schema *consumers;

static int setup(void **state) {
  (void)state;
  apis = compile_def(&kdao__schema_apis);
  consumers = compile_def(&kdao__schema_consumers);
  return 0;
}

static int teardown(void **state) {
  (void)state;
  kdao_schema_free(apis);
  kdao_schema_free(consumers);
  return 0;
}

/* An API with `key` set to the JSON `value` (STOLEN) on top of a valid base. */
static json_t *api_with(const char *key, json_t *value) {
  json_t *t = J("{'name': 'mockbin', 'upstream_url': 'http://mockbin.com'}");
  assert_int_equal(json_object_set_new(t, key, value), 0);
  return t;
}

/* An API whose `key` is the one-element array [elem]. */
static json_t *api_with_one(const char *key, const char *elem) {
  return api_with(key, json_pack("[s]", elem));
}

/* ---- apis: name ---- */

static void api_name_is_required(void **state) {
  (void)state;
  expect_field_error(apis, J("{}"), "name", "name is required");
}

static void api_name_refuses_reserved_uri_characters(void **state) {
  (void)state;
  const char *names[] = {"mockbin#2", "mockbin/com", "mockbin\"", "mockbin:2",
                         "mockbin?",  "[mockbin]",   "mock bin",  "mockbin\xc3\xa9"};
  for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
    json_t *t = api_with_one("hosts", "mockbin.com");
    json_object_set_new(t, "name", json_string(names[i]));
    expect_field_error(apis, t, "name",
                       "name must only contain alphanumeric and '., -, _, ~' characters");
  }
  json_decref(expect_valid(apis, J("{'name': 'Mock_bin-1.0~x', 'hosts': ['a.com'], "
                                   "'upstream_url': 'http://a.com'}")));
}

/* ---- apis: upstream_url ---- */

static void api_upstream_url_rules(void **state) {
  (void)state;
  json_t *t = api_with_one("hosts", "mockbin.com");
  json_object_set_new(t, "upstream_url", json_string("asdasd"));
  expect_field_error(apis, t, "upstream_url", "upstream_url is not a url");

  const char *refused[] = {"wot://mockbin.com/", "ftp://mockbin.com", "HTTPX://a.com"};
  for (size_t i = 0; i < sizeof refused / sizeof *refused; i++) {
    t = api_with_one("hosts", "mockbin.com");
    json_object_set_new(t, "upstream_url", json_string(refused[i]));
    expect_field_error(apis, t, "upstream_url", "Supported protocols are HTTP and HTTPS");
  }

  const char *accepted[] = {"http://mockbin.com/", "HTTP://mockbin.com/world",
                            "https://user:pw@mockbin.com:8443/x?y#z"};
  for (size_t i = 0; i < sizeof accepted / sizeof *accepted; i++) {
    t = api_with_one("hosts", "mockbin.com");
    json_object_set_new(t, "upstream_url", json_string(accepted[i]));
    json_decref(expect_valid(apis, t));
  }
}

/* ---- apis: hosts ---- */

static void api_hosts_accepts_valid_hosts(void **state) {
  (void)state;
  const char *valids[] = {"hello.com", "hello.fr", "test.hello.com", "1991.io", "hello.COM",
                          "HELLO.com", "123helloWORLD.com", "mockbin.123", "mockbin-api.com",
                          "hello.abcd", "mockbin_api.com", "localhost", "3B-ww4c5e180e575a65lsy2b",
                          "-with-SUPER-MONKEYS-pc58ag80a8qai00g7n9n",
                          "Hello-Another-Way--fc4qua05auwb3674vfr0b", "2-u9tlzr9756bt3uc0v",
                          "MajiKoi5-783gue6qz075azm5e", "de-jg4avhby1noc0d", "d9juau41awczczp",
                          /* addresses are hosts too */
                          "1.2.3.4", "::1", "[::1]",
                          /* wildcards: a whole first or last label */
                          "mockbin.*", "*.mockbin.org"};
  for (size_t i = 0; i < sizeof valids / sizeof *valids; i++)
    json_decref(expect_valid(apis, api_with_one("hosts", valids[i])));
}

static void api_hosts_refuses_non_strings(void **state) {
  (void)state;
  expect_field_error(apis, api_with("hosts", J("[123]")), "hosts",
                     "host with value '123' is invalid: must be a string");
}

static void api_hosts_refuses_empty_strings(void **state) {
  (void)state;
  expect_field_error(apis, api_with_one("hosts", ""), "hosts",
                     "host with value '' is invalid: host is empty");
  expect_field_error(apis, api_with_one("hosts", "   "), "hosts",
                     "host with value '   ' is invalid: host is empty");
}

static void api_hosts_refuses_invalid_hosts(void **state) {
  (void)state;
  const char *invalids[] = {"/mockbin",       ".mockbin",           "mockbin.",
                            "mock;bin",       "mockbin.com/org",    "mockbin-.org",
                            "mockbin.org-",   "hello..mockbin.com", "hello-.mockbin.com",
                            "mockbin.com:80", "1.2.3.4:80",         "[::1]:80"};
  for (size_t i = 0; i < sizeof invalids / sizeof *invalids; i++) {
    char msg[128];
    snprintf(msg, sizeof msg, "host with value '%s' is invalid: Invalid hostname", invalids[i]);
    expect_field_error(apis, api_with_one("hosts", invalids[i]), "hosts", msg);
  }
}

static void api_hosts_refuses_invalid_wildcards(void **state) {
  (void)state;
  const char *invalids[] = {"*mockbin.com", "www.mockbin*", "mock*bin.com", "*"};
  for (size_t i = 0; i < sizeof invalids / sizeof *invalids; i++) {
    char msg[128];
    snprintf(msg, sizeof msg, "host with value '%s' is invalid: Invalid wildcard placement",
             invalids[i]);
    expect_field_error(apis, api_with_one("hosts", invalids[i]), "hosts", msg);
  }
  expect_field_error(apis, api_with_one("hosts", "*.mockbin.*"), "hosts",
                     "host with value '*.mockbin.*' is invalid: Only one wildcard is allowed");
}

static void api_hosts_reports_the_first_bad_element(void **state) {
  (void)state;
  expect_field_error(apis, api_with("hosts", J("['good.com', 'bad..com', '']")), "hosts",
                     "host with value 'bad..com' is invalid: Invalid hostname");
}

/* ---- apis: uris ---- */

static void api_uris_accepts_valid_uris(void **state) {
  (void)state;
  const char *valids[] = {"/path", "/abcd~user~2", "/abcd%aa%10%ff%AA%FF", "/", "/a.b-c_d"};
  for (size_t i = 0; i < sizeof valids / sizeof *valids; i++) {
    json_t *out = expect_valid(apis, api_with_one("uris", valids[i]));
    assert_string_equal(json_string_value(json_array_get(json_object_get(out, "uris"), 0)),
                        valids[i]);
    json_decref(out);
  }
}

static void api_uris_removes_one_trailing_slash(void **state) {
  (void)state;
  json_t *out = expect_valid(apis, api_with("uris", J("['/status/', '/status/123/', '/']")));
  json_t *want = J("['/status', '/status/123', '/']");
  assert_true(json_equal(json_object_get(out, "uris"), want));
  json_decref(want);
  json_decref(out);
}

static void api_uris_refusals(void **state) {
  (void)state;
  static const struct {
    const char *uri, *reason;
  } cases[] = {
      {"", "uri is empty"},
      {"   ", "uri is empty"},
      {"status", "must be prefixed with slash"},
      {"status/123", "must be prefixed with slash"},
      {"//status", "invalid"},
      {"/status//123", "invalid"},
      {"/status/123//", "invalid"},
      {"/[a-z]{3}", "must only contain alphanumeric and '., -, _, ~, /, %' characters"},
      {"/some%2words", "must use proper encoding; '%2w' is invalid"},
      {"/some%0Xwords", "must use proper encoding; '%0X' is invalid"},
      {"/some%2Gwords", "must use proper encoding; '%2G' is invalid"},
      {"/some%20words%", "must use proper encoding; '%' is invalid"},
      {"/some%20words%a", "must use proper encoding; '%a' is invalid"},
      {"/some%20words%ax", "must use proper encoding; '%ax' is invalid"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    char msg[160];
    snprintf(msg, sizeof msg, "uri with value '%s' is invalid: %s", cases[i].uri, cases[i].reason);
    expect_field_error(apis, api_with_one("uris", cases[i].uri), "uris", msg);
  }
  expect_field_error(apis, api_with("uris", J("[123]")), "uris",
                     "uri with value '123' is invalid: must be a string");
}

/* ---- apis: methods ---- */

static void api_methods_rules(void **state) {
  (void)state;
  json_decref(expect_valid(apis, api_with("methods", J("['GET', 'POST']"))));
  /* A comma list is coerced to an array before the check. */
  json_decref(expect_valid(apis, api_with("methods", json_string("GET, PATCH"))));

  expect_field_error(apis, api_with("methods", J("[123]")), "methods",
                     "method with value '123' is invalid: must be a string");
  expect_field_error(apis, api_with_one("methods", ""), "methods",
                     "method with value '' is invalid: method is empty");
  expect_field_error(apis, api_with_one("methods", "   "), "methods",
                     "method with value '   ' is invalid: method is empty");
  const char *invalids[] = {"HELLO WORLD", " GET", "get", "G3T"};
  for (size_t i = 0; i < sizeof invalids / sizeof *invalids; i++) {
    char msg[128];
    snprintf(msg, sizeof msg, "method with value '%s' is invalid: invalid value", invalids[i]);
    expect_field_error(apis, api_with("methods", json_pack("[s]", invalids[i])), "methods", msg);
  }
}

/* ---- apis: retries and timeouts ---- */

static void api_retries_range(void **state) {
  (void)state;
  const double valids[] = {0, 5, 100, 32767};
  for (size_t i = 0; i < sizeof valids / sizeof *valids; i++) {
    json_t *t = api_with_one("hosts", "mydomain.com");
    json_object_set_new(t, "retries", json_real(valids[i]));
    json_decref(expect_valid(apis, t));
  }
  const double invalids[] = {-5, 32768, 1.5};
  for (size_t i = 0; i < sizeof invalids / sizeof *invalids; i++) {
    json_t *t = api_with_one("hosts", "mydomain.com");
    json_object_set_new(t, "retries", json_real(invalids[i]));
    expect_field_error(apis, t, "retries", "must be an integer between 0 and 32767");
  }
}

static void api_timeouts_range(void **state) {
  (void)state;
  const char *fields[] = {"upstream_connect_timeout", "upstream_send_timeout",
                          "upstream_read_timeout"};
  const double valids[] = {1, 60000, 100000, 100, 2147483647.0};
  const double invalids[] = {-1, 0, 2147483648.0, -100, 0.12};
  for (size_t f = 0; f < 3; f++) {
    for (size_t i = 0; i < sizeof valids / sizeof *valids; i++) {
      json_t *t = api_with("methods", json_string("GET"));
      json_object_set_new(t, fields[f], json_real(valids[i]));
      json_decref(expect_valid(apis, t));
    }
    for (size_t i = 0; i < sizeof invalids / sizeof *invalids; i++) {
      json_t *t = api_with("methods", json_string("GET"));
      json_object_set_new(t, fields[f], json_real(invalids[i]));
      expect_field_error(apis, t, fields[f], "must be an integer between 1 and 2147483647");
    }
  }
}

/* ---- apis: defaults and self_check ---- */

static void api_defaults(void **state) {
  (void)state;
  json_t *out = expect_valid(apis, api_with_one("hosts", "mockbin.com"));
  json_t *want = J("{'strip_uri': true, 'https_only': false, 'http_if_terminated': true,"
                   " 'preserve_host': false, 'retries': 5, 'upstream_connect_timeout': 60000,"
                   " 'upstream_send_timeout': 60000, 'upstream_read_timeout': 60000}");
  const char *k;
  json_t *v;
  json_object_foreach(want, k, v) {
    json_t *got = json_object_get(out, k);
    if (!got || !(json_equal(got, v) || (json_is_number(got) && json_is_number(v) &&
                                         json_number_value(got) == json_number_value(v))))
      fail_msg("default of %s", k);
  }
  json_decref(want);
  json_decref(out);
}

static void api_needs_hosts_uris_or_methods_on_insert(void **state) {
  (void)state;
  const char *msg = "at least one of 'hosts', 'uris' or 'methods' must be specified";
  expect_check_error(apis, J("{'name': 'httpbin', 'upstream_url': 'http://httpbin.org'}"), msg);
  expect_check_error(apis,
                     J("{'name': 'httpbin', 'upstream_url': 'http://httpbin.org', "
                       "'hosts': [], 'uris': [], 'methods': []}"),
                     msg);
  /* Updates are not checked (the stored row may carry them). */
  json_decref(
      expect_valid_mode(apis, J("{'upstream_url': 'http://httpbin.org'}"), KDAO_MODE_UPDATE, NULL));
}

static void api_partial_update_checks_given_fields_only(void **state) {
  (void)state;
  expect_errors_mode(apis, J("{'upstream_url': 'http://mockbin.com', 'hosts': ['']}"),
                     KDAO_MODE_UPDATE,
                     J("{'hosts': 'host with value \\u0027\\u0027 is invalid: host is empty'}"));
  /* A partial update does not apply defaults. */
  json_t *out = expect_valid_mode(apis, J("{'uris': ['/x/']}"), KDAO_MODE_UPDATE, NULL);
  assert_null(json_object_get(out, "retries"));
  assert_string_equal(json_string_value(json_array_get(json_object_get(out, "uris"), 0)), "/x");
  json_decref(out);
}

/* ---- consumers ---- */

static void consumer_needs_custom_id_or_username(void **state) {
  (void)state;
  const char *msg = "At least a 'custom_id' or a 'username' must be specified";
  expect_errors_mode(consumers, J("{}"), KDAO_MODE_INSERT,
                     json_pack("{ssss}", "username", msg, "custom_id", msg));
  expect_errors_mode(consumers, J("{'username': ''}"), KDAO_MODE_INSERT,
                     json_pack("{ssss}", "username", msg, "custom_id", msg));
  expect_errors_mode(consumers, J("{'username': '   ', 'custom_id': ' '}"), KDAO_MODE_INSERT,
                     json_pack("{ssss}", "username", msg, "custom_id", msg));
  expect_errors_mode(consumers, J("{'username': true}"), KDAO_MODE_INSERT,
                     json_pack("{ssss}", "username", "username is not a string", "custom_id", msg));

  json_decref(expect_valid(consumers, J("{'username': 'bob'}")));
  json_decref(expect_valid(consumers, J("{'custom_id': '1234'}")));
  /* A partial update that sets neither has nothing to check. */
  json_decref(expect_valid_mode(consumers, J("{'id': '7b31b2d8-0d63-4c8b-8a4b-6b1e0b1b8b4e'}"),
                                KDAO_MODE_UPDATE, NULL));
}

/* ---- ssl ---- */

static void ssl_entities(void **state) {
  (void)state;
  kdao_schema *certs = compile_def(&kdao__schema_ssl_certificates);
  kdao_schema *snis = compile_def(&kdao__schema_ssl_servers_names);
  expect_field_error(certs, J("{'key': 'k'}"), "cert", "cert is required");
  expect_field_error(certs, J("{'cert': 'c'}"), "key", "key is required");
  json_decref(expect_valid(certs, J("{'cert': 'c', 'key': 'k'}")));

  expect_field_error(snis, J("{}"), "name", "name is required");
  /* Kong typed the name "text": never type-checked. */
  json_decref(
      expect_valid(snis, J("{'name': 'example.com', "
                           "'ssl_certificate_id': '7b31b2d8-0d63-4c8b-8a4b-6b1e0b1b8b4e'}")));
  kdao_schema_free(certs);
  kdao_schema_free(snis);
}

static void schemas_describe_their_tables(void **state) {
  (void)state;
  const kdao_schema_def *defs[] = {&kdao__schema_apis,
                                   &kdao__schema_consumers,
                                   &kdao__schema_plugins,
                                   &kdao__schema_upstreams,
                                   &kdao__schema_targets,
                                   &kdao__schema_ssl_certificates,
                                   &kdao__schema_ssl_servers_names};
  for (size_t i = 0; i < sizeof defs / sizeof *defs; i++) {
    kdao_schema *s = compile_def(defs[i]);
    assert_string_equal(kdao_schema_name(s), defs[i]->name);
    assert_string_equal(kdao_schema_table(s), defs[i]->name);
    kdao_schema_free(s);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(api_name_is_required),
      cmocka_unit_test(api_name_refuses_reserved_uri_characters),
      cmocka_unit_test(api_upstream_url_rules),
      cmocka_unit_test(api_hosts_accepts_valid_hosts),
      cmocka_unit_test(api_hosts_refuses_non_strings),
      cmocka_unit_test(api_hosts_refuses_empty_strings),
      cmocka_unit_test(api_hosts_refuses_invalid_hosts),
      cmocka_unit_test(api_hosts_refuses_invalid_wildcards),
      cmocka_unit_test(api_hosts_reports_the_first_bad_element),
      cmocka_unit_test(api_uris_accepts_valid_uris),
      cmocka_unit_test(api_uris_removes_one_trailing_slash),
      cmocka_unit_test(api_uris_refusals),
      cmocka_unit_test(api_methods_rules),
      cmocka_unit_test(api_retries_range),
      cmocka_unit_test(api_timeouts_range),
      cmocka_unit_test(api_defaults),
      cmocka_unit_test(api_needs_hosts_uris_or_methods_on_insert),
      cmocka_unit_test(api_partial_update_checks_given_fields_only),
      cmocka_unit_test(consumer_needs_custom_id_or_username),
      cmocka_unit_test(ssl_entities),
      cmocka_unit_test(schemas_describe_their_tables),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
