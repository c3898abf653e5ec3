/*
 * test_entities.h — helpers shared by the test_entities*.c unit tests: compile a built-in
 * definition, validate a JSON input through kdao_validate(), check the outcome.
 *
 * Inputs are written as JSON with single quotes (J("{'name': 'x'}")) to keep the cases
 * readable; values that need a quote character are built with json_pack instead.
 */
#ifndef TEST_ENTITIES_H
#define TEST_ENTITIES_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "factory.h"

/* JSON from single-quoted text; fails the test on a syntax error. New reference. */
static inline json_t *J(const char *text) {
  char *copy = strdup(text);
  assert_non_null(copy);
  for (char *p = copy; *p; p++) {
    if (*p == '\'') *p = '"';
  }
  json_error_t jerr;
  json_t *v = json_loads(copy, JSON_DECODE_ANY, &jerr);
  if (!v) fail_msg("bad JSON in test: %s (%s)", text, jerr.text);
  free(copy);
  return v;
}

static inline kdao_schema *compile_def(const kdao_schema_def *def) {
  kdao_schema *s = NULL;
  kdao_error *err = NULL;
  if (kdao_schema_compile(def, &s, &err) != KDAO_OK)
    fail_msg("schema does not compile: %s", kdao_error_message(err));
  return s;
}

static inline char *dump(const json_t *v) {
  return v ? json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY) : strdup("(null)");
}

/*
 * Validates `entity` (STOLEN) in `mode`; returns the status, the validated entity through
 * *out (new reference, may be NULL to drop it) and the error through *err (may be NULL).
 */
static inline int run_validate(const kdao_schema *s, json_t *entity, kdao_mode mode, kdao_dao *dao,
                               json_t **out, kdao_error **err) {
  assert_non_null(entity);
  kdao_error *e = NULL;
  int rc = kdao_validate(s, entity, mode, dao, &e);
  if (out)
    *out = entity;
  else
    json_decref(entity);
  if (err)
    *err = e;
  else
    kdao_error_free(e);
  return rc;
}

/* Expects `entity` (STOLEN) to validate; returns the validated entity (new reference). */
static inline json_t *expect_valid_mode(const kdao_schema *s, json_t *entity, kdao_mode mode,
                                        kdao_dao *dao) {
  char *in = dump(entity);
  json_t *out = NULL;
  kdao_error *err = NULL;
  int rc = run_validate(s, entity, mode, dao, &out, &err);
  if (rc != KDAO_OK)
    fail_msg("%s: expected valid, got %s: %s", in, kdao_error_kind_name(rc),
             kdao_error_message(err));
  free(in);
  return out;
}

static inline json_t *expect_valid(const kdao_schema *s, json_t *entity) {
  return expect_valid_mode(s, entity, KDAO_MODE_INSERT, NULL);
}

/* Expects the field error `field` = `message` (other fields may carry errors too). */
static inline void expect_field_error_mode(const kdao_schema *s, json_t *entity, kdao_mode mode,
                                           kdao_dao *dao, const char *field, const char *message) {
  char *in = dump(entity);
  kdao_error *err = NULL;
  int rc = run_validate(s, entity, mode, dao, NULL, &err);
  if (rc != KDAO_ERR_SCHEMA || !kdao_error_fields(err))
    fail_msg("%s: expected the field error %s=%s, got %s: %s", in, field, message,
             kdao_error_kind_name(rc), kdao_error_message(err));
  const json_t *got = json_object_get(kdao_error_fields(err), field);
  if (!json_is_string(got) || strcmp(json_string_value(got), message) != 0) {
    char *all = dump(kdao_error_fields(err));
    fail_msg("%s: expected %s=\"%s\", got %s", in, field, message, all);
  }
  kdao_error_free(err);
  free(in);
}

static inline void expect_field_error(const kdao_schema *s, json_t *entity, const char *field,
                                      const char *message) {
  expect_field_error_mode(s, entity, KDAO_MODE_INSERT, NULL, field, message);
}

/* Expects exactly the field map `fields` (STOLEN). */
static inline void expect_errors_mode(const kdao_schema *s, json_t *entity, kdao_mode mode,
                                      json_t *fields) {
  char *in = dump(entity);
  kdao_error *err = NULL;
  int rc = run_validate(s, entity, mode, NULL, NULL, &err);
  if (rc != KDAO_ERR_SCHEMA || !json_equal(kdao_error_fields(err), fields)) {
    char *want = dump(fields), *got = dump(kdao_error_fields(err));
    fail_msg("%s: expected errors %s, got %s (%s)", in, want, got, kdao_error_message(err));
  }
  json_decref(fields);
  kdao_error_free(err);
  free(in);
}

/* Expects a self_check rejection: kind `kind`, no field map, message `message`. */
static inline void expect_check_error_mode(const kdao_schema *s, json_t *entity, kdao_mode mode,
                                           kdao_dao *dao, int kind, const char *message) {
  char *in = dump(entity);
  kdao_error *err = NULL;
  int rc = run_validate(s, entity, mode, dao, NULL, &err);
  if (rc != kind || kdao_error_fields(err) || strcmp(kdao_error_message(err), message) != 0)
    fail_msg("%s: expected the %s error \"%s\", got %s: %s", in, kdao_error_kind_name(kind),
             message, kdao_error_kind_name(rc), err ? kdao_error_message(err) : "(none)");
  kdao_error_free(err);
  free(in);
}

static inline void expect_check_error(const kdao_schema *s, json_t *entity, const char *message) {
  expect_check_error_mode(s, entity, KDAO_MODE_INSERT, NULL, KDAO_ERR_SCHEMA, message);
}

#endif
