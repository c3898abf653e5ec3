/*
 * test_error.c — kdao_error (src/error.c): Kong's error constructors, the printable form of
 * field maps (sorted keys, arrays joined by ","), tostring with the backend name, and the
 * internal helpers the rest of libkdao builds errors with.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "schema.h"
#include "error.h"
#include "util.h"

static json_t *load(const char *text) {
  json_error_t jerr;
  json_t *v = json_loads(text, JSON_DECODE_ANY, &jerr);
  assert_non_null(v);
  return v;
}

/* kdao__printable on `json` equals `want`. */
static void check_printable(const char *json, const char *want) {
  json_t *v = load(json);
  char *s = kdao__printable(v);
  assert_non_null(s);
  assert_string_equal(s, want);
  free(s);
  json_decref(v);
}

static void test_printable(void **state) {
  (void)state;
  check_printable("{}", "");
  check_printable("{\"name\": \"name is required\"}", "name=name is required");
  /* keys sorted, whatever the insertion order */
  check_printable("{\"foreign_b\": \"does not exist with value 'bar'\", "
                  "\"foreign_a\": \"does not exist with value 'foo'\"}",
                  "foreign_a=does not exist with value 'foo' foreign_b=does not exist with "
                  "value 'bar'");
  /* arrays joined by "," without spaces */
  check_printable("{\"string\": [\"string is required\", \"string is required\"]}",
                  "string=string is required,string is required");
  /* maps printed recursively in the same format */
  check_printable("{\"b\": {\"y\": \"2\", \"x\": \"1\"}, \"a\": \"0\"}", "a=0 b=x=1 y=2");
  /* scalars printed as Lua prints them */
  check_printable("{\"i\": 3, \"r\": 1.5, \"t\": true, \"f\": [1, 2.0]}", "f=1,2 i=3 r=1.5 t=true");
  check_printable("\"plain\"", "plain");
}

static void test_error_new(void **state) {
  (void)state;
  kdao_error *e = kdao_error_new(KDAO_ERR_DB, "connection refused");
  assert_non_null(e);
  assert_int_equal(kdao_error_kind(e), KDAO_ERR_DB);
  assert_string_equal(kdao_error_message(e), "connection refused");
  assert_string_equal(kdao_error_string(e), "connection refused");
  assert_null(kdao_error_fields(e));
  assert_null(kdao_error_db_name(e));
  assert_null(kdao_error_code(e));
  kdao_error_free(e);

  e = kdao_error_new(KDAO_ERR_SCHEMA, NULL);
  assert_string_equal(kdao_error_message(e), "");
  kdao_error_free(e);

  e = kdao__error_fmt(KDAO_ERR_MISUSE, "bad argument #%d to '%s'", 1, "insert");
  assert_string_equal(kdao_error_message(e), "bad argument #1 to 'insert'");
  kdao_error_free(e);
}

static void test_null_error(void **state) {
  (void)state;
  assert_int_equal(kdao_error_kind(NULL), KDAO_OK);
  assert_string_equal(kdao_error_message(NULL), "");
  assert_string_equal(kdao_error_string(NULL), "");
  assert_null(kdao_error_fields(NULL));
  assert_null(kdao_error_db_name(NULL));
  assert_null(kdao_error_code(NULL));
  kdao_error_free(NULL);
  kdao_free(NULL);
}

static void test_kind_names(void **state) {
  (void)state;
  assert_string_equal(kdao_error_kind_name(KDAO_OK), "ok");
  assert_string_equal(kdao_error_kind_name(KDAO_ERR_DB), "db");
  assert_string_equal(kdao_error_kind_name(KDAO_ERR_UNIQUE), "unique");
  assert_string_equal(kdao_error_kind_name(KDAO_ERR_FOREIGN), "foreign");
  assert_string_equal(kdao_error_kind_name(KDAO_ERR_SCHEMA), "schema");
  assert_string_equal(kdao_error_kind_name(KDAO_ERR_MISUSE), "misuse");
  assert_string_equal(kdao_error_kind_name(KDAO_ERR_NOMEM), "nomem");
  assert_string_equal(kdao_error_kind_name(KDAO_ERR_CONFIG), "config");
  assert_string_equal(kdao_error_kind_name(KDAO_ERR_IO), "io");
  assert_string_equal(kdao_error_kind_name(999), "unknown");
}

typedef struct nfcase {
  int kind;
  const char *fields;
  const char *tbl;     /* expected kdao_error_fields, NULL: none */
  const char *message; /* expected kdao_error_message */
} nfcase;

static void test_new_fields(void **state) {
  (void)state;
  static const nfcase cases[] = {
      {KDAO_ERR_UNIQUE, "{\"name\": \"foo\"}", "{\"name\": \"already exists with value 'foo'\"}",
       "name=already exists with value 'foo'"},
      {KDAO_ERR_UNIQUE, "{\"id, name\": \"1, x\"}",
       "{\"id, name\": \"already exists with value '1, x'\"}",
       "id, name=already exists with value '1, x'"},
      {KDAO_ERR_FOREIGN, "{\"foreign_a\": \"foo\", \"foreign_b\": \"bar\"}",
       "{\"foreign_a\": \"does not exist with value 'foo'\", "
       "\"foreign_b\": \"does not exist with value 'bar'\"}",
       "foreign_a=does not exist with value 'foo' foreign_b=does not exist with value 'bar'"},
      /* numbers and booleans printed as Lua prints them */
      {KDAO_ERR_UNIQUE, "{\"n\": 42}", "{\"n\": \"already exists with value '42'\"}",
       "n=already exists with value '42'"},
      {KDAO_ERR_UNIQUE, "{\"n\": 2.0}", "{\"n\": \"already exists with value '2'\"}",
       "n=already exists with value '2'"},
      {KDAO_ERR_FOREIGN, "{\"n\": 0.25}", "{\"n\": \"does not exist with value '0.25'\"}",
       "n=does not exist with value '0.25'"},
      {KDAO_ERR_FOREIGN, "{\"b\": false}", "{\"b\": \"does not exist with value 'false'\"}",
       "b=does not exist with value 'false'"},
      /* schema and db keep the map as given */
      {KDAO_ERR_SCHEMA, "{\"a\": [\"x\", \"y\"], \"b\": \"z\"}",
       "{\"a\": [\"x\", \"y\"], \"b\": \"z\"}", "a=x,y b=z"},
      {KDAO_ERR_DB, "{\"k\": \"v\"}", "{\"k\": \"v\"}", "k=v"},
      /* not a table: the value is the message */
      {KDAO_ERR_DB, "\"plain message\"", NULL, "plain message"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    json_t *in = load(cases[i].fields);
    kdao_error *e = kdao_error_new_fields(cases[i].kind, in);
    assert_non_null(e);
    assert_int_equal(kdao_error_kind(e), cases[i].kind);
    assert_string_equal(kdao_error_message(e), cases[i].message);
    if (cases[i].tbl) {
      json_t *want = load(cases[i].tbl);
      assert_true(json_equal(want, kdao_error_fields(e)));
      json_decref(want);
      /* the map is a copy: the caller's object is untouched and may go */
      assert_true(kdao_error_fields(e) != in);
    } else {
      assert_null(kdao_error_fields(e));
    }
    json_decref(in);
    kdao_error_free(e);
  }
}

static void test_string_with_db_name(void **state) {
  (void)state;
  json_t *in = load("{\"name\": \"foo\"}");
  kdao_error *e = kdao_error_new_fields(KDAO_ERR_UNIQUE, in);
  json_decref(in);
  assert_string_equal(kdao_error_string(e), "name=already exists with value 'foo'");
  kdao__error_set_db(e, "postgres");
  assert_string_equal(kdao_error_db_name(e), "postgres");
  assert_string_equal(kdao_error_string(e),
                      "[postgres error] name=already exists with value 'foo'");
  assert_string_equal(kdao_error_message(e), "name=already exists with value 'foo'");
  /* the first backend name is kept, as the DAO sets it on every error it returns */
  kdao__error_set_db(e, "cassandra");
  assert_string_equal(kdao_error_string(e),
                      "[postgres error] name=already exists with value 'foo'");
  kdao__error_set_db(NULL, "sqlite");
  kdao_error_free(e);
}

static void test_new_db(void **state) {
  (void)state;
  kdao_error *e = kdao_error_new_db(KDAO_ERR_DB, "postgres", "database needs migrations");
  assert_int_equal(kdao_error_kind(e), KDAO_ERR_DB);
  assert_string_equal(kdao_error_db_name(e), "postgres");
  assert_string_equal(kdao_error_message(e), "database needs migrations");
  assert_string_equal(kdao_error_string(e), "[postgres error] database needs migrations");
  assert_null(kdao_error_fields(e));
  kdao_error_free(e);
  e = kdao_error_new_db(KDAO_ERR_CONFIG, NULL, "no backend");
  assert_int_equal(kdao_error_kind(e), KDAO_ERR_CONFIG);
  assert_null(kdao_error_db_name(e));
  assert_string_equal(kdao_error_string(e), "no backend");
  kdao_error_free(e);
}

static void test_code(void **state) {
  (void)state;
  kdao_error *e = kdao_error_new(KDAO_ERR_DB, "x");
  kdao__error_set_code(e, "23505");
  assert_string_equal(kdao_error_code(e), "23505");
  kdao__error_set_code(e, "2067");
  assert_string_equal(kdao_error_code(e), "2067");
  kdao__error_set_code(e, NULL);
  assert_null(kdao_error_code(e));
  kdao_error_free(e);
}

static void test_schema_new_steals(void **state) {
  (void)state;
  json_t *fields = load("{\"b\": \"2\", \"a\": \"1\"}");
  kdao_error *e = kdao__error_schema_new(fields);
  assert_int_equal(kdao_error_kind(e), KDAO_ERR_SCHEMA);
  assert_ptr_equal(kdao_error_fields(e), fields);
  assert_string_equal(kdao_error_message(e), "a=1 b=2");
  kdao_error_free(e); /* frees `fields` too: ASan reports a leak otherwise */
  /* no field map (its allocation failed): the shared out-of-memory error */
  assert_ptr_equal(kdao__error_schema_new(NULL), kdao__error_oom());
}

static void test_fail(void **state) {
  (void)state;
  kdao_error *out = NULL;
  assert_int_equal(kdao__fail(&out, kdao_error_new(KDAO_ERR_FOREIGN, "x")), KDAO_ERR_FOREIGN);
  assert_non_null(out);
  kdao_error_free(out);
  /* without an out pointer the error is freed (ASan checks) */
  assert_int_equal(kdao__fail(NULL, kdao_error_new(KDAO_ERR_DB, "x")), KDAO_ERR_DB);
  /* a NULL error means an allocation failed: the caller still gets an error */
  out = NULL;
  assert_int_equal(kdao__fail(&out, NULL), KDAO_ERR_NOMEM);
  assert_ptr_equal(out, kdao__error_oom());
  assert_string_equal(kdao_error_message(out), "out of memory");
  kdao_error_free(out); /* a no-op on the shared error */
  assert_int_equal(kdao_error_kind(kdao__error_oom()), KDAO_ERR_NOMEM);
}

static void test_add_error(void **state) {
  (void)state;
  json_t *errors = NULL;
  assert_int_equal(kdao__add_error(&errors, "name", "name is required"), 0);
  assert_non_null(errors);
  assert_string_equal(json_string_value(json_object_get(errors, "name")), "name is required");
  assert_int_equal(kdao__add_error(&errors, "name", "again"), 0);
  assert_int_equal(kdao__add_error(&errors, "name", "third"), 0);
  json_t *want = load("{\"name\": [\"name is required\", \"again\", \"third\"]}");
  assert_true(json_equal(want, errors));
  json_decref(want);

  /* an array of nested messages: stored as is under a new key, flattened under an old one */
  assert_int_equal(kdao__add_error_value(&errors, "c.x", load("[\"1\", \"2\"]")), 0);
  assert_int_equal(kdao__add_error_value(&errors, "name", load("[\"4\", \"5\"]")), 0);
  want = load("{\"name\": [\"name is required\", \"again\", \"third\", \"4\", \"5\"], "
              "\"c.x\": [\"1\", \"2\"]}");
  assert_true(json_equal(want, errors));
  json_decref(want);
  json_decref(errors);
}

static void test_value_text(void **state) {
  (void)state;
  static const struct {
    const char *json, *text;
  } cases[] = {
      {"\"s\"", "s"},     {"42", "42"},      {"-7", "-7"},       {"1.5", "1.5"},
      {"2.0", "2"},       {"1e20", "1e+20"}, {"0.1", "0.1"},     {"true", "true"},
      {"false", "false"}, {"null", "nil"},   {"[1,2]", "[1,2]"}, {"{\"a\":1}", "{\"a\":1}"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    json_t *v = load(cases[i].json);
    char *t = kdao__value_text(v);
    assert_string_equal(t, cases[i].text);
    free(t);
    json_decref(v);
  }
  char *t = kdao__value_text(NULL);
  assert_string_equal(t, "nil");
  free(t);
}

static void test_strings(void **state) {
  (void)state;
  assert_null(kdao__strdup(NULL));
  char *s = kdao__strdup("abc");
  assert_string_equal(s, "abc");
  free(s);
  s = kdao__asprintf("%s-%d", "x", 12);
  assert_string_equal(s, "x-12");
  kdao_free(s);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_printable),
      cmocka_unit_test(test_error_new),
      cmocka_unit_test(test_null_error),
      cmocka_unit_test(test_kind_names),
      cmocka_unit_test(test_new_fields),
      cmocka_unit_test(test_string_with_db_name),
      cmocka_unit_test(test_new_db),
      cmocka_unit_test(test_code),
      cmocka_unit_test(test_schema_new_steals),
      cmocka_unit_test(test_fail),
      cmocka_unit_test(test_add_error),
      cmocka_unit_test(test_value_text),
      cmocka_unit_test(test_strings),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
