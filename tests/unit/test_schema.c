/*
 * test_schema.c — kdao_schema_compile and friends (src/schema.c): what a compiled schema
 * holds (sorted fields, resolved primary key, parsed defaults, copied enums), every
 * definition error, and kdao_schema_describe's Kong-shaped output.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "schema.h"

static int accept_all(kdao_dao *dao, const char *field, json_t *value, json_t *entity,
                      json_t **new_fields, char **message, void *ud) {
  (void)dao, (void)field, (void)value, (void)entity, (void)new_fields, (void)message, (void)ud;
  return 0;
}

static kdao_error *no_self_check(kdao_dao *dao, const kdao_schema *schema, json_t *entity,
                                 kdao_mode mode, void *ud) {
  (void)dao, (void)schema, (void)entity, (void)mode, (void)ud;
  return NULL;
}

static const char *const pk_id_name[] = {"name", "id", NULL};
static const char *const proto[] = {"http", "https", NULL};
static const kdao_field_def conf_fields[] = {
    {.name = "key_names",
     .type = KDAO_TYPE_ARRAY,
     .flags = KDAO_FIELD_REQUIRED,
     .default_json = "[\"apikey\"]"},
    {.name = "Hide-Credentials", .type = KDAO_TYPE_BOOLEAN, .default_json = "false"},
    {0},
};
static const kdao_schema_def conf_def = {.version = KDAO_DEF_VERSION,
                                         .fields = conf_fields,
                                         .flags = KDAO_SCHEMA_NO_CONSUMER,
                                         .self_check = no_self_check};
static const kdao_field_def good_fields[] = {
    {.name = "name",
     .type = KDAO_TYPE_STRING,
     .flags = KDAO_FIELD_REQUIRED | KDAO_FIELD_UNIQUE,
     .regex = "^[a-z]+$"},
    {.name = "id", .type = KDAO_TYPE_ID, .flags = KDAO_FIELD_INSERT_VALUE},
    {.name = "api_id", .type = KDAO_TYPE_ID, .foreign = "apis:id"},
    {.name = "proto", .type = KDAO_TYPE_STRING, .enum_values = proto, .func = accept_all},
    {.name = "config", .type = KDAO_TYPE_TABLE, .schema = &conf_def},
    {.name = "created_at",
     .type = KDAO_TYPE_TIMESTAMP,
     .flags = KDAO_FIELD_IMMUTABLE | KDAO_FIELD_INSERT_VALUE},
    {.name = "note", .type = KDAO_TYPE_ANY, .default_json = "null"},
    {0},
};
static const kdao_schema_def good_def = {.version = KDAO_DEF_VERSION,
                                         .name = "things",
                                         .primary_key = pk_id_name,
                                         .fields = good_fields};

static void test_compile_entity(void **state) {
  (void)state;
  kdao_schema *s = NULL;
  kdao_error *err = NULL;
  assert_int_equal(kdao_schema_compile(&good_def, &s, &err), KDAO_OK);
  assert_null(err);
  assert_string_equal(kdao_schema_name(s), "things");
  assert_string_equal(kdao_schema_table(s), "things"); /* table defaults to the name */

  /* fields sorted by name */
  static const char *const order[] = {"api_id", "config", "created_at", "id",
                                      "name",   "note",   "proto"};
  assert_int_equal(s->nfields, 7);
  for (size_t i = 0; i < s->nfields; i++) {
    assert_string_equal(s->fields[i].name, order[i]);
    assert_int_equal(kdao__schema_field_index(s, order[i]), (int)i);
  }
  assert_int_equal(kdao__schema_field_index(s, "nope"), -1);
  assert_null(kdao__schema_field(s, "aaa"));
  assert_null(kdao__schema_field(s, "zzz"));

  /* primary key in key order, as field indexes */
  assert_int_equal(s->npk, 2);
  assert_string_equal(s->fields[s->pk[0]].name, "name");
  assert_string_equal(s->fields[s->pk[1]].name, "id");

  const kdao__field *f = kdao__schema_field(s, "api_id");
  assert_string_equal(f->foreign_entity, "apis");
  assert_string_equal(f->foreign_field, "id");
  f = kdao__schema_field(s, "proto");
  assert_int_equal(f->n_enum, 2);
  assert_string_equal(f->enum_values[1], "https");
  assert_ptr_not_equal(f->enum_values[1], proto[1]); /* copied */
  f = kdao__schema_field(s, "name");
  assert_non_null(f->regex);
  assert_int_equal(f->flags, KDAO_FIELD_REQUIRED | KDAO_FIELD_UNIQUE);
  f = kdao__schema_field(s, "note");
  assert_null(f->default_value); /* a null default is no default */

  /* nested schema compiled, with its own defaults parsed */
  f = kdao__schema_field(s, "config");
  assert_non_null(f->nested);
  assert_null(kdao_schema_name(f->nested));
  assert_null(kdao_schema_table(f->nested));
  const kdao__field *kn = kdao__schema_field(f->nested, "key_names");
  assert_true(json_is_array(kn->default_value));
  assert_string_equal(json_string_value(json_array_get(kn->default_value, 0)), "apikey");
  kdao_schema_free(s);
}

static void test_explicit_table(void **state) {
  (void)state;
  kdao_schema_def def = good_def;
  def.table = "thing_rows";
  kdao_schema *s = NULL;
  assert_int_equal(kdao_schema_compile(&def, &s, NULL), KDAO_OK);
  assert_string_equal(kdao_schema_name(s), "things");
  assert_string_equal(kdao_schema_table(s), "thing_rows");
  kdao_schema_free(s);
  kdao_schema_free(NULL);
  assert_null(kdao_schema_name(NULL));
  assert_null(kdao_schema_describe(NULL));
}

/* Definition errors: each is KDAO_ERR_MISUSE with a message naming the problem. */
typedef struct bad {
  const char *what;
  kdao_field_def field; /* one field besides "id" */
  const char *name;     /* entity name; NULL: nested schema */
  const char *table;
  const char *const *pk;
  unsigned version;
  const char *expect; /* substring of the message */
} bad;

static const char *const pk_id[] = {"id", NULL};
static const char *const pk_missing[] = {"uuid", NULL};
static const char *const pk_twice[] = {"id", "id", NULL};
static const char *const pk_none[] = {NULL};
static const kdao_field_def bad_nested_fields[] = {{.name = "x", .regex = "(("}, {0}};
static const kdao_schema_def bad_nested = {.version = KDAO_DEF_VERSION,
                                           .fields = bad_nested_fields};

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
static const bad bads[] = {
    {"uppercase entity field",
     {.name = "Name"},
     "e",
     NULL,
     pk_id,
     1,
     "invalid field name \"Name\""},
    {"hyphen entity field", {.name = "a-b"}, "e", NULL, pk_id, 1, "invalid field name \"a-b\""},
    {"digit first", {.name = "1a"}, "e", NULL, pk_id, 1, "invalid field name \"1a\""},
    {"dot in nested field", {.name = "a.b"}, NULL, NULL, NULL, 1, "invalid field name \"a.b\""},
    {"empty field name", {.name = ""}, "e", NULL, pk_id, 1, "invalid field name \"\""},
    {"bad entity name", {.name = "x"}, "Bad-Name", NULL, pk_id, 1, "needs a name and table"},
    {"bad table name", {.name = "x"}, "e", "drop table;", pk_id, 1, "needs a name and table"},
    {"bad regex",
     {.name = "x", .regex = "a("},
     "e",
     NULL,
     pk_id,
     1,
     "field \"x\": bad regex \"a(\": missing closing parenthesis"},
    {"bad default json",
     {.name = "x", .default_json = "{oops"},
     "e",
     NULL,
     pk_id,
     1,
     "field \"x\": bad default_json '{oops'"},
    {"pk names no field",
     {.name = "x"},
     "e",
     NULL,
     pk_missing,
     1,
     "primary key \"uuid\" names no field"},
    {"pk twice", {.name = "x"}, "e", NULL, pk_twice, 1, "primary key \"id\" listed twice"},
    {"no pk", {.name = "x"}, "e", NULL, pk_none, 1, "needs a primary_key"},
    {"duplicate field", {.name = "id"}, "e", NULL, pk_id, 1, "duplicate field \"id\""},
    {"bad foreign",
     {.name = "x", .foreign = "apis"},
     "e",
     NULL,
     pk_id,
     1,
     "foreign \"apis\" is not \"entity:field\""},
    {"bad type", {.name = "x", .type = (kdao_type)99}, "e", NULL, pk_id, 1, "unknown type 99"},
    {"schema and schema_fn",
     {.name = "x", .schema = &bad_nested, .schema_fn = (kdao_schema_fn)1},
     "e",
     NULL,
     pk_id,
     1,
     "both schema and schema_fn"},
    {"bad nested schema",
     {.name = "x", .schema = &bad_nested},
     "e",
     NULL,
     pk_id,
     1,
     "schema \"e\": field \"x\": nested schema: field \"x\": bad regex"},
    {"version", {.name = "x"}, "e", NULL, pk_id, 3, "definition version 3, expected 2"},
};
#pragma GCC diagnostic pop

static void test_definition_errors(void **state) {
  (void)state;
  for (size_t i = 0; i < sizeof bads / sizeof bads[0]; i++) {
    const bad *b = &bads[i];
    kdao_field_def fields[] = {{.name = "id", .type = KDAO_TYPE_ID}, b->field, {0}};
    kdao_schema_def def = {.version = b->version,
                           .name = b->name,
                           .table = b->table,
                           .primary_key = b->pk,
                           .fields = fields};
    kdao_schema *s = (kdao_schema *)&def; /* must be reset to NULL */
    kdao_error *err = NULL;
    int rc = kdao_schema_compile(&def, &s, &err);
    if (rc != KDAO_ERR_MISUSE) fail_msg("%s: status %d", b->what, rc);
    assert_null(s);
    assert_int_equal(kdao_error_kind(err), KDAO_ERR_MISUSE);
    if (!strstr(kdao_error_message(err), b->expect))
      fail_msg("%s: message \"%s\" lacks \"%s\"", b->what, kdao_error_message(err), b->expect);
    kdao_error_free(err);
  }
}

static void test_nested_names(void **state) {
  (void)state;
  /* Config schemas are stored as JSON: upper case and '-' are allowed there. */
  kdao_schema *s = NULL;
  assert_int_equal(kdao_schema_compile(&conf_def, &s, NULL), KDAO_OK);
  assert_non_null(kdao__schema_field(s, "Hide-Credentials"));
  kdao_schema_free(s);
}

static void test_misuse(void **state) {
  (void)state;
  kdao_error *err = NULL;
  kdao_schema *s = NULL;
  assert_int_equal(kdao_schema_compile(NULL, &s, &err), KDAO_ERR_MISUSE);
  assert_null(s);
  kdao_error_free(err);
  assert_int_equal(kdao_schema_compile(&good_def, NULL, &err), KDAO_ERR_MISUSE);
  kdao_error_free(err);
  assert_int_equal(kdao_schema_compile(NULL, &s, NULL), KDAO_ERR_MISUSE);
}

static void test_describe(void **state) {
  (void)state;
  kdao_schema *s = NULL;
  assert_int_equal(kdao_schema_compile(&good_def, &s, NULL), KDAO_OK);
  json_t *d = kdao_schema_describe(s);
  assert_non_null(d);
  json_error_t jerr;
  json_t *want = json_loads(
      "{\"table\": \"things\", \"primary_key\": [\"name\", \"id\"], \"fields\": {"
      " \"name\": {\"type\": \"string\", \"required\": true, \"unique\": true, \"regex\": "
      "\"^[a-z]+$\"},"
      " \"id\": {\"type\": \"id\", \"dao_insert_value\": true},"
      " \"api_id\": {\"type\": \"id\", \"foreign\": \"apis:id\"},"
      " \"proto\": {\"type\": \"string\", \"enum\": [\"http\", \"https\"], \"func\": "
      "\"function\"},"
      " \"created_at\": {\"type\": \"timestamp\", \"immutable\": true, \"dao_insert_value\": "
      "true},"
      " \"note\": {},"
      " \"config\": {\"type\": \"table\", \"schema\": {\"no_consumer\": true, \"self_check\": "
      "\"function\", \"fields\": {"
      "   \"key_names\": {\"type\": \"array\", \"required\": true, \"default\": [\"apikey\"]},"
      "   \"Hide-Credentials\": {\"type\": \"boolean\", \"default\": false}}}}"
      "}}",
      0, &jerr);
  assert_non_null(want);
  if (!json_equal(want, d)) {
    char *got = json_dumps(d, JSON_SORT_KEYS);
    fail_msg("describe: %s", got);
  }
  json_decref(want);
  json_decref(d);
  kdao_schema_free(s);
}

static void test_type_names(void **state) {
  (void)state;
  static const char *const names[] = {"any",   "id",    "string",    "number", "boolean",
                                      "array", "table", "timestamp", "url"};
  for (int t = KDAO_TYPE_ANY; t <= KDAO_TYPE_URL; t++)
    assert_string_equal(kdao_type_name((kdao_type)t), names[t]);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_compile_entity),
      cmocka_unit_test(test_explicit_table),
      cmocka_unit_test(test_definition_errors),
      cmocka_unit_test(test_nested_names),
      cmocka_unit_test(test_misuse),
      cmocka_unit_test(test_describe),
      cmocka_unit_test(test_type_names),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
