/*
 * test_validate.c — kdao_validate / kdao__validate / kdao_validate_filter against Kong
 * 0.10.4's validate_entity and is_schema_subset: every rule, coercion and generic message.
 *
 * Most behaviour is tested by data: each row of `cases` is a schema, a mode, an input and
 * the result Kong produces (status, field map, entity after validation); every row runs as
 * its own cmocka test named after the row. Behaviour that needs more than one call (deep
 * copies of defaults, call counts of callbacks) has its own test function below.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "schema.h"
#include "error.h"
#include "util.h"
#include "validate.h"

/* ---- fixture schemas ---- */

enum { S_TYPES, S_RULES, S_PLUGIN, S_RL, S_SELF, S_WEIGHT, S_COUNT };
static kdao_schema *schemas[S_COUNT];
static kdao_schema *conf_schema, *req_schema; /* chosen by pick_schema */

static int func_calls;
static int self_calls;
static kdao_mode self_mode;

static json_t *slug_default(json_t *entity, void *ud) {
  (void)ud;
  json_t *name = json_object_get(entity, "name");
  if (!json_is_string(name)) return NULL;
  char *s = kdao__asprintf("%s-slug", json_string_value(name));
  json_t *v = json_string(s);
  free(s);
  return v;
}

static int check_code(kdao_dao *dao, const char *field, json_t *value, json_t *entity,
                      json_t **new_fields, char **message, void *ud) {
  (void)dao, (void)entity, (void)ud;
  func_calls++;
  assert_string_equal(field, "code");
  const char *s = json_string_value(value);
  if (s && strcmp(s, "bad") == 0) {
    *message = kdao__strdup("code is bad");
    return 1;
  }
  if (s && strcmp(s, "silent") == 0)
    return 1; /* rejected without a message: accepted, as in Kong */
  if (s && strcmp(s, "derive") == 0) *new_fields = json_pack("{s:s}", "derived", "yes");
  return 0;
}

static const kdao_schema *pick_schema(kdao_dao *dao, json_t *entity, char **message, void *ud) {
  (void)dao, (void)ud;
  const char *name = json_string_value(json_object_get(entity, "name"));
  if (!name) return NULL;
  if (strcmp(name, "conf") == 0) return conf_schema;
  if (strcmp(name, "req") == 0) return req_schema;
  if (strcmp(name, "none") == 0) return NULL;
  *message = kdao__asprintf("Plugin \"%s\" not found", name);
  return NULL;
}

static kdao_error *conf_self_check(kdao_dao *dao, const kdao_schema *schema, json_t *entity,
                                   kdao_mode mode, void *ud) {
  (void)dao, (void)schema, (void)mode, (void)ud;
  const char *key = json_string_value(json_object_get(entity, "key"));
  if (key && strcmp(key, "forbidden") == 0)
    return kdao_error_new(KDAO_ERR_SCHEMA, "key is forbidden");
  return NULL;
}

static kdao_error *self_check(kdao_dao *dao, const kdao_schema *schema, json_t *entity,
                              kdao_mode mode, void *ud) {
  (void)dao, (void)schema, (void)ud;
  self_calls++;
  self_mode = mode;
  const char *a = json_string_value(json_object_get(entity, "a"));
  if (!a) return NULL;
  if (strcmp(a, "fail") == 0) return kdao_error_new(KDAO_ERR_SCHEMA, "a and b conflict");
  if (strcmp(a, "unique") == 0) {
    json_t *f = json_pack("{s:s}", "a", "unique");
    kdao_error *e = kdao_error_new_fields(KDAO_ERR_UNIQUE, f);
    json_decref(f);
    return e;
  }
  if (strcmp(a, "db") == 0) return kdao_error_new(KDAO_ERR_DB, "connection refused");
  return NULL;
}

static const char *const pk_id[] = {"id", NULL};

static const kdao_field_def types_fields[] = {
    {.name = "id", .type = KDAO_TYPE_ID},        {.name = "s", .type = KDAO_TYPE_STRING},
    {.name = "n", .type = KDAO_TYPE_NUMBER},     {.name = "b", .type = KDAO_TYPE_BOOLEAN},
    {.name = "a", .type = KDAO_TYPE_ARRAY},      {.name = "t", .type = KDAO_TYPE_TABLE},
    {.name = "ts", .type = KDAO_TYPE_TIMESTAMP}, {.name = "u", .type = KDAO_TYPE_URL},
    {.name = "x", .type = KDAO_TYPE_ANY},        {0},
};
static const kdao_schema_def types_def = {
    .version = KDAO_DEF_VERSION, .name = "types", .primary_key = pk_id, .fields = types_fields};

static const char *const colors[] = {"red", "green", NULL};
static const kdao_field_def rules_fields[] = {
    {.name = "id", .type = KDAO_TYPE_ID, .flags = KDAO_FIELD_REQUIRED | KDAO_FIELD_INSERT_VALUE},
    {.name = "name", .type = KDAO_TYPE_STRING, .flags = KDAO_FIELD_REQUIRED, .regex = "^[a-z]+$"},
    {.name = "word", .type = KDAO_TYPE_STRING, .regex = "b+"},
    {.name = "color", .type = KDAO_TYPE_STRING, .enum_values = colors},
    {.name = "colors", .type = KDAO_TYPE_ARRAY, .enum_values = colors},
    {.name = "level", .type = KDAO_TYPE_NUMBER, .default_json = "5"},
    {.name = "tags", .type = KDAO_TYPE_ARRAY, .default_json = "[\"a\"]"},
    {.name = "slug", .type = KDAO_TYPE_STRING, .default_fn = slug_default},
    {.name = "frozen", .type = KDAO_TYPE_STRING, .flags = KDAO_FIELD_IMMUTABLE},
    {.name = "pinned",
     .type = KDAO_TYPE_STRING,
     .flags = KDAO_FIELD_IMMUTABLE | KDAO_FIELD_REQUIRED,
     .default_json = "\"p\""},
    {.name = "code", .type = KDAO_TYPE_STRING, .func = check_code},
    {.name = "derived", .type = KDAO_TYPE_STRING},
    {0},
};
static const kdao_schema_def rules_def = {
    .version = KDAO_DEF_VERSION, .name = "rules", .primary_key = pk_id, .fields = rules_fields};

/* A default computed from the table being validated: for a nested schema, the nested one. */
static json_t *copy_depth(json_t *entity, void *ud) {
  (void)ud;
  return json_deep_copy(json_object_get(entity, "depth"));
}

static const kdao_field_def inner_fields[] = {
    {.name = "depth", .type = KDAO_TYPE_NUMBER, .default_json = "1"},
    {.name = "depth_copy", .default_fn = copy_depth},
    {0},
};
static const kdao_schema_def inner_def = {.version = KDAO_DEF_VERSION, .fields = inner_fields};
static const char *const modes[] = {"fast", "slow", NULL};
static const kdao_field_def conf_fields[] = {
    {.name = "key", .type = KDAO_TYPE_STRING, .flags = KDAO_FIELD_REQUIRED},
    {.name = "mode", .type = KDAO_TYPE_STRING, .default_json = "\"fast\"", .enum_values = modes},
    {.name = "inner", .type = KDAO_TYPE_TABLE, .schema = &inner_def},
    {0},
};
static const kdao_schema_def conf_def = {
    .version = KDAO_DEF_VERSION, .fields = conf_fields, .self_check = conf_self_check};
static const kdao_field_def req_fields[] = {
    {.name = "a", .type = KDAO_TYPE_STRING, .flags = KDAO_FIELD_REQUIRED},
    {.name = "b", .type = KDAO_TYPE_STRING, .flags = KDAO_FIELD_REQUIRED},
    {0},
};
static const kdao_schema_def req_def = {.version = KDAO_DEF_VERSION, .fields = req_fields};
static const kdao_field_def plugin_fields[] = {
    {.name = "id", .type = KDAO_TYPE_ID},
    {.name = "name", .type = KDAO_TYPE_STRING, .flags = KDAO_FIELD_REQUIRED},
    {.name = "config", .type = KDAO_TYPE_TABLE, .schema_fn = pick_schema},
    {.name = "fixed", .type = KDAO_TYPE_TABLE, .schema = &inner_def},
    {0},
};
static const kdao_schema_def plugin_def = {
    .version = KDAO_DEF_VERSION, .name = "plugins", .primary_key = pk_id, .fields = plugin_fields};

static const kdao_field_def limit_fields[] = {
    {.name = "minute", .type = KDAO_TYPE_NUMBER},
    {.name = "hour", .type = KDAO_TYPE_NUMBER},
    {0},
};
static const kdao_schema_def limits_def = {
    .version = KDAO_DEF_VERSION, .fields = limit_fields, .flags = KDAO_SCHEMA_FLEXIBLE};
static const kdao_field_def rl_fields[] = {
    {.name = "id", .type = KDAO_TYPE_ID},
    {.name = "limits", .type = KDAO_TYPE_TABLE, .schema = &limits_def},
    {0},
};
static const kdao_schema_def rl_def = {
    .version = KDAO_DEF_VERSION, .name = "rl", .primary_key = pk_id, .fields = rl_fields};

static const kdao_field_def self_fields[] = {
    {.name = "id", .type = KDAO_TYPE_ID},
    {.name = "a", .type = KDAO_TYPE_STRING},
    {0},
};
static const kdao_schema_def self_def = {.version = KDAO_DEF_VERSION,
                                         .name = "selfs",
                                         .primary_key = pk_id,
                                         .fields = self_fields,
                                         .self_check = self_check};

static const kdao_field_def weight_fields[] = {
    {.name = "id", .type = KDAO_TYPE_ID},
    {.name = "weight", .type = KDAO_TYPE_NUMBER, .flags = KDAO_FIELD_REQUIRED},
    {0},
};
static const kdao_schema_def weight_def = {
    .version = KDAO_DEF_VERSION, .name = "weights", .primary_key = pk_id, .fields = weight_fields};

static int group_setup(void **state) {
  (void)state;
  const kdao_schema_def *defs[S_COUNT] = {&types_def, &rules_def, &plugin_def,
                                          &rl_def,    &self_def,  &weight_def};
  for (int i = 0; i < S_COUNT; i++)
    if (kdao_schema_compile(defs[i], &schemas[i], NULL) != KDAO_OK) return -1;
  if (kdao_schema_compile(&conf_def, &conf_schema, NULL) != KDAO_OK ||
      kdao_schema_compile(&req_def, &req_schema, NULL) != KDAO_OK)
    return -1;
  return 0;
}

static int group_teardown(void **state) {
  (void)state;
  for (int i = 0; i < S_COUNT; i++) kdao_schema_free(schemas[i]);
  kdao_schema_free(conf_schema);
  kdao_schema_free(req_schema);
  return 0;
}

/* ---- data-driven cases ---- */

#define I KDAO_MODE_INSERT
#define U KDAO_MODE_UPDATE
#define F KDAO_MODE_FULL_UPDATE
#define OK KDAO_OK
#define SCHEMA KDAO_ERR_SCHEMA

typedef struct vcase {
  const char *name;
  int schema;
  kdao_mode mode;
  const char *input;
  int kind;            /* expected status */
  const char *errors;  /* expected field map; NULL: the error has none (or success) */
  const char *output;  /* expected entity after validation; NULL: not checked */
  const char *message; /* expected kdao_error_message; NULL: not checked */
  const char *old;     /* Kong's old_t (kdao__validate), or NULL */
} vcase;

/* Rows name only the columns they check; the rest are NULL. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
static const vcase cases[] = {
    /* [TYPE] string */
    {"string_trimmed", S_TYPES, I, "{\"s\": \" \\t hi \\n\"}", OK, NULL, "{\"s\": \"hi\"}"},
    {"string_not_a_string", S_TYPES, I, "{\"s\": 5}", SCHEMA, "{\"s\": \"s is not a string\"}",
     "{\"s\": 5}", "s=s is not a string"},
    {"string_null_is_nil", S_TYPES, I, "{\"s\": null}", OK, NULL, "{\"s\": null}"},
    /* [TYPE] number: Lua's tonumber */
    {"number_integer_string", S_TYPES, I, "{\"n\": \"42\"}", OK, NULL, "{\"n\": 42}"},
    {"number_hex_trimmed", S_TYPES, I, "{\"n\": \" 0x10 \"}", OK, NULL, "{\"n\": 16}"},
    {"number_exponent", S_TYPES, I, "{\"n\": \"1e3\"}", OK, NULL, "{\"n\": 1000}"},
    {"number_fraction", S_TYPES, I, "{\"n\": \"1.5\"}", OK, NULL, "{\"n\": 1.5}"},
    {"number_leading_dot_negative", S_TYPES, I, "{\"n\": \"-.5\"}", OK, NULL, "{\"n\": -0.5}"},
    {"number_trailing_dot", S_TYPES, I, "{\"n\": \"+7.\"}", OK, NULL, "{\"n\": 7}"},
    {"number_hex_negative", S_TYPES, I, "{\"n\": \"-0XfF\"}", OK, NULL, "{\"n\": -255}"},
    {"number_json_number_kept", S_TYPES, I, "{\"n\": 2.25}", OK, NULL, "{\"n\": 2.25}"},
    {"number_garbage_removed", S_TYPES, I, "{\"n\": \"abc\"}", SCHEMA,
     "{\"n\": \"n is not a number\"}", "{}"},
    {"number_empty_string", S_TYPES, I, "{\"n\": \"\"}", SCHEMA, "{\"n\": \"n is not a number\"}",
     "{}"},
    {"number_bad_exponent", S_TYPES, I, "{\"n\": \"1e\"}", SCHEMA,
     "{\"n\": \"n is not a number\"}"},
    {"number_bare_hex_prefix", S_TYPES, I, "{\"n\": \"0x\"}", SCHEMA,
     "{\"n\": \"n is not a number\"}"},
    {"number_inner_space", S_TYPES, I, "{\"n\": \"1 2\"}", SCHEMA,
     "{\"n\": \"n is not a number\"}"},
    {"number_infinity_refused", S_TYPES, I, "{\"n\": \"inf\"}", SCHEMA,
     "{\"n\": \"n is not a number\"}"},
    {"number_overflow_refused", S_TYPES, I, "{\"n\": \"1e999\"}", SCHEMA,
     "{\"n\": \"n is not a number\"}"},
    {"number_embedded_nul", S_TYPES, I, "{\"n\": \"1\\u0000\"}", SCHEMA,
     "{\"n\": \"n is not a number\"}"},
    {"number_boolean", S_TYPES, I, "{\"n\": true}", SCHEMA, "{\"n\": \"n is not a number\"}",
     "{\"n\": true}"},
    /* [TYPE] boolean */
    {"boolean_true_any_case", S_TYPES, I, "{\"b\": \"TrUe\"}", OK, NULL, "{\"b\": true}"},
    {"boolean_false_trimmed", S_TYPES, I, "{\"b\": \" false \"}", OK, NULL, "{\"b\": false}"},
    {"boolean_invalid_stored_false", S_TYPES, I, "{\"b\": \"ciao\"}", SCHEMA,
     "{\"b\": \"b is not a boolean\"}", "{\"b\": false}"},
    {"boolean_embedded_nul", S_TYPES, I, "{\"b\": \"true\\u0000\"}", SCHEMA,
     "{\"b\": \"b is not a boolean\"}", "{\"b\": false}"},
    {"boolean_number", S_TYPES, I, "{\"b\": 1}", SCHEMA, "{\"b\": \"b is not a boolean\"}"},
    {"boolean_json", S_TYPES, I, "{\"b\": false}", OK, NULL, "{\"b\": false}"},
    /* [TYPE] array */
    {"array_comma_list_trimmed", S_TYPES, I, "{\"a\": \" x, y ,z \"}", OK, NULL,
     "{\"a\": [\"x\", \"y\", \"z\"]}"},
    {"array_empty_string", S_TYPES, I, "{\"a\": \"\"}", OK, NULL, "{\"a\": []}"},
    {"array_blank_string", S_TYPES, I, "{\"a\": \"   \"}", OK, NULL, "{\"a\": []}"},
    {"array_lone_comma", S_TYPES, I, "{\"a\": \",\"}", OK, NULL, "{\"a\": [\"\"]}"},
    {"array_empty_pieces_kept", S_TYPES, I, "{\"a\": \"a,,b,\"}", OK, NULL,
     "{\"a\": [\"a\", \"\", \"b\", \"\"]}"},
    {"array_leading_comma", S_TYPES, I, "{\"a\": \",a\"}", OK, NULL, "{\"a\": [\"\", \"a\"]}"},
    {"array_json_elements_untouched", S_TYPES, I, "{\"a\": [\" x \", 1]}", OK, NULL,
     "{\"a\": [\" x \", 1]}"},
    {"array_empty_object", S_TYPES, I, "{\"a\": {}}", OK, NULL, "{\"a\": []}"},
    {"array_index_keyed_object", S_TYPES, I, "{\"a\": {\"2\": \"y\", \"1\": \"x\"}}", OK, NULL,
     "{\"a\": [\"x\", \"y\"]}"},
    {"array_map", S_TYPES, I, "{\"a\": {\"x\": 1}}", SCHEMA, "{\"a\": \"a is not an array\"}"},
    {"array_gap", S_TYPES, I, "{\"a\": {\"1\": 1, \"3\": 3}}", SCHEMA,
     "{\"a\": \"a is not an array\"}"},
    {"array_number", S_TYPES, I, "{\"a\": 5}", SCHEMA, "{\"a\": \"a is not an array\"}"},
    /* [TYPE] table */
    {"table_object", S_TYPES, I, "{\"t\": {\"k\": 1}}", OK, NULL, "{\"t\": {\"k\": 1}}"},
    {"table_array", S_TYPES, I, "{\"t\": [1]}", OK, NULL, "{\"t\": [1]}"},
    {"table_string", S_TYPES, I, "{\"t\": \" str \"}", SCHEMA, "{\"t\": \"t is not a table\"}",
     "{\"t\": \"str\"}"},
    /* [TYPE] timestamp */
    {"timestamp_string", S_TYPES, I, "{\"ts\": \"1500000000000\"}", OK, NULL,
     "{\"ts\": 1500000000000}"},
    {"timestamp_zero", S_TYPES, I, "{\"ts\": 0}", SCHEMA, "{\"ts\": \"ts is not a timestamp\"}"},
    {"timestamp_negative_string_kept", S_TYPES, I, "{\"ts\": \"-1\"}", SCHEMA,
     "{\"ts\": \"ts is not a timestamp\"}", "{\"ts\": -1}"},
    {"timestamp_garbage_removed", S_TYPES, I, "{\"ts\": \"x\"}", SCHEMA,
     "{\"ts\": \"ts is not a timestamp\"}", "{}"},
    {"timestamp_boolean", S_TYPES, I, "{\"ts\": true}", SCHEMA,
     "{\"ts\": \"ts is not a timestamp\"}"},
    {"timestamp_real", S_TYPES, I, "{\"ts\": 0.5}", OK, NULL, "{\"ts\": 0.5}"},
    /* [TYPE] url */
    {"url_simple", S_TYPES, I, "{\"u\": \" http://example.com \"}", OK, NULL,
     "{\"u\": \"http://example.com\"}"},
    {"url_full", S_TYPES, I, "{\"u\": \"https://us:pw@host:8080/p?q=1#f\"}", OK, NULL},
    {"url_no_scheme", S_TYPES, I, "{\"u\": \"example.com/path\"}", SCHEMA,
     "{\"u\": \"u is not a url\"}"},
    {"url_host_port_only", S_TYPES, I, "{\"u\": \"localhost:8000\"}", SCHEMA,
     "{\"u\": \"u is not a url\"}"},
    {"url_empty_host", S_TYPES, I, "{\"u\": \"http://\"}", SCHEMA, "{\"u\": \"u is not a url\"}"},
    {"url_port_without_host", S_TYPES, I, "{\"u\": \"http://:80/x\"}", SCHEMA,
     "{\"u\": \"u is not a url\"}"},
    {"url_single_slash", S_TYPES, I, "{\"u\": \"http:/host\"}", SCHEMA,
     "{\"u\": \"u is not a url\"}"},
    {"url_empty", S_TYPES, I, "{\"u\": \"\"}", SCHEMA, "{\"u\": \"u is not a url\"}"},
    {"url_number", S_TYPES, I, "{\"u\": 5}", SCHEMA, "{\"u\": \"u is not a url\"}"},
    /* [TYPE] id: trimmed, then a UUID (Kong left it to the database: 500 on PostgreSQL,
     * stored on SQLite); untyped: trimmed, never an error */
    {"id_trimmed", S_TYPES, I, "{\"id\": \" 0b2ab9b2-6a3c-4c2f-a3b4-2d2c6f7e8a9b \"}", OK, NULL,
     "{\"id\": \"0b2ab9b2-6a3c-4c2f-a3b4-2d2c6f7e8a9b\"}"},
    {"id_not_uuid", S_TYPES, I, "{\"id\": \" abc \"}", SCHEMA,
     "{\"id\": \"id is not a valid uuid\"}"},
    {"id_number", S_TYPES, I, "{\"id\": 5}", SCHEMA, "{\"id\": \"id is not a valid uuid\"}"},
    {"id_table", S_TYPES, I, "{\"id\": {}}", SCHEMA, "{\"id\": \"id is not a valid uuid\"}"},
    {"id_empty", S_TYPES, I, "{\"id\": \"\"}", SCHEMA, "{\"id\": \"id is not a valid uuid\"}"},
    /* [TYPE] what every backend can store */
    {"timestamp_huge", S_TYPES, I, "{\"ts\": 1.5e300}", SCHEMA,
     "{\"ts\": \"ts is not a timestamp\"}"},
    {"timestamp_year_9999", S_TYPES, I, "{\"ts\": 253402300799999}", OK, NULL},
    {"timestamp_past_9999", S_TYPES, I, "{\"ts\": 253402300800000}", SCHEMA,
     "{\"ts\": \"ts is not a timestamp\"}"},
    {"string_nul", S_TYPES, I, "{\"s\": \"a\\u0000b\"}", SCHEMA,
     "{\"s\": \"s must not contain a NUL byte\"}"},
    {"any_nul", S_TYPES, I, "{\"x\": \"a\\u0000b\"}", SCHEMA,
     "{\"x\": \"x must not contain a NUL byte\"}"},
    {"any_trimmed", S_TYPES, I, "{\"x\": \" y \"}", OK, NULL, "{\"x\": \"y\"}"},
    {"any_table", S_TYPES, I, "{\"x\": [1, {}]}", OK, NULL, "{\"x\": [1, {}]}"},
    {"several_errors_sorted_message", S_TYPES, I, "{\"s\": 1, \"b\": 2, \"a\": 3}", SCHEMA,
     "{\"a\": \"a is not an array\", \"b\": \"b is not a boolean\", \"s\": \"s is not a string\"}",
     NULL, "a=a is not an array b=b is not a boolean s=s is not a string"},

    /* [DEFAULT] */
    {"defaults_on_insert", S_RULES, I, "{\"name\": \"abc\"}", OK, NULL,
     "{\"name\": \"abc\", \"level\": 5, \"tags\": [\"a\"], \"slug\": \"abc-slug\", \"pinned\": "
     "\"p\"}"},
    {"defaults_keep_given_values", S_RULES, I,
     "{\"name\": \"abc\", \"level\": 7, \"tags\": [], \"slug\": \"s\"}", OK, NULL,
     "{\"name\": \"abc\", \"level\": 7, \"tags\": [], \"slug\": \"s\", \"pinned\": \"p\"}"},
    {"defaults_replace_null", S_RULES, I, "{\"name\": \"abc\", \"level\": null}", OK, NULL,
     "{\"name\": \"abc\", \"level\": 5, \"tags\": [\"a\"], \"slug\": \"abc-slug\", \"pinned\": "
     "\"p\"}"},
    {"defaults_function_may_decline", S_RULES, I, "{\"name\": 5}", SCHEMA,
     "{\"name\": \"name is not a string\"}",
     "{\"name\": 5, \"level\": 5, \"tags\": [\"a\"], \"pinned\": \"p\"}"},
    {"defaults_not_on_partial_update", S_RULES, U, "{\"name\": \"abc\"}", OK, NULL,
     "{\"name\": \"abc\"}"},
    {"defaults_on_full_update", S_RULES, F,
     "{\"name\": \"abc\", \"id\": \"0b2ab9b2-6a3c-4c2f-a3b4-2d2c6f7e8a9b\"}", OK, NULL,
     "{\"name\": \"abc\", \"id\": \"0b2ab9b2-6a3c-4c2f-a3b4-2d2c6f7e8a9b\", \"level\": 5, "
     "\"tags\": [\"a\"], \"slug\": \"abc-slug\", "
     "\"pinned\": \"p\"}"},
    {"defaults_then_checked", S_RULES, I, "{\"name\": \"abc\", \"level\": \"x\"}", SCHEMA,
     "{\"level\": \"level is not a number\"}"},

    /* [REQUIRED] */
    {"required_on_insert", S_RULES, I, "{}", SCHEMA, "{\"name\": \"name is required\"}", NULL,
     "name=name is required"},
    {"required_blank_after_trim", S_RULES, I, "{\"name\": \"   \"}", SCHEMA,
     "{\"name\": [\"name has an invalid value\", \"name is required\"]}", NULL,
     "name=name has an invalid value,name is required"},
    {"required_partial_absent_ok", S_RULES, U, "{}", OK, NULL, "{}"},
    {"required_partial_given_empty", S_RULES, U, "{\"name\": \"\"}", SCHEMA,
     "{\"name\": [\"name has an invalid value\", \"name is required\"]}"},
    {"required_full_update_once", S_RULES, F, "{\"id\": \"0b2ab9b2-6a3c-4c2f-a3b4-2d2c6f7e8a9b\"}",
     SCHEMA, "{\"name\": \"name is required\"}", NULL, "name=name is required"},
    {"required_full_update_insert_value_once", S_RULES, F, "{\"name\": \"abc\"}", SCHEMA,
     "{\"id\": \"id is required\"}"},
    /* a failed number coercion removes the value, so required fires as well */
    {"required_after_failed_coercion", S_WEIGHT, I, "{\"weight\": \"zz\"}", SCHEMA,
     "{\"weight\": [\"weight is not a number\", \"weight is required\"]}", "{}",
     "weight=weight is not a number,weight is required"},

    /* [IMMUTABLE] only with an old row, never for required fields */
    {"immutable_changed", S_RULES, U, "{\"frozen\": \"b\"}", SCHEMA,
     "{\"frozen\": \"frozen cannot be updated\"}", NULL, NULL, "{\"frozen\": \"a\"}"},
    {"immutable_same_value", S_RULES, U, "{\"frozen\": \" a \"}", OK, NULL, NULL, NULL,
     "{\"frozen\": \"a\"}"},
    {"immutable_old_absent", S_RULES, U, "{\"frozen\": \"b\"}", OK, NULL, NULL, NULL, "{}"},
    {"immutable_not_on_insert", S_RULES, I, "{\"name\": \"abc\", \"frozen\": \"b\"}", OK, NULL,
     NULL, NULL, "{\"frozen\": \"a\"}"},
    {"immutable_without_old_row", S_RULES, U, "{\"frozen\": \"b\"}", OK},
    {"immutable_required_exempt", S_RULES, U, "{\"pinned\": \"q\"}", OK, NULL, NULL, NULL,
     "{\"pinned\": \"p\"}"},

    /* [ENUM] */
    {"enum_allowed", S_RULES, U, "{\"color\": \"red\"}", OK},
    {"enum_refused", S_RULES, U, "{\"color\": \"blue\"}", SCHEMA,
     "{\"color\": \"\\\"blue\\\" is not allowed. Allowed values are: \\\"red\\\", "
     "\\\"green\\\"\"}"},
    {"enum_number_refused", S_RULES, U, "{\"color\": 5}", SCHEMA,
     "{\"color\": [\"color is not a string\", \"\\\"5\\\" is not allowed. Allowed values are: "
     "\\\"red\\\", \\\"green\\\"\"]}"},
    {"enum_array_first_offender", S_RULES, U, "{\"colors\": \"red, blue, pink\"}", SCHEMA,
     "{\"colors\": \"\\\"blue\\\" is not allowed. Allowed values are: \\\"red\\\", "
     "\\\"green\\\"\"}"},
    {"enum_array_all_allowed", S_RULES, U, "{\"colors\": [\"green\", \"red\"]}", OK},
    {"enum_array_empty", S_RULES, U, "{\"colors\": \"\"}", OK, NULL, "{\"colors\": []}"},

    /* [REGEX] unanchored unless the pattern anchors itself */
    {"regex_unanchored_match", S_RULES, U, "{\"word\": \"abc\"}", OK},
    {"regex_no_match", S_RULES, U, "{\"word\": \"xyz\"}", SCHEMA,
     "{\"word\": \"word has an invalid value\"}"},
    {"regex_anchored", S_RULES, U, "{\"name\": \"abc1\"}", SCHEMA,
     "{\"name\": \"name has an invalid value\"}"},
    {"regex_after_trim", S_RULES, U, "{\"name\": \" abc \"}", OK, NULL, "{\"name\": \"abc\"}"},
    {"regex_skips_non_strings", S_RULES, U, "{\"word\": 5}", SCHEMA,
     "{\"word\": \"word is not a string\"}"},

    /* [FUNC] */
    {"func_error", S_RULES, U, "{\"code\": \"bad\"}", SCHEMA, "{\"code\": \"code is bad\"}"},
    {"func_false_without_message", S_RULES, U, "{\"code\": \"silent\"}", OK},
    {"func_new_fields_merged", S_RULES, U, "{\"code\": \"derive\"}", OK, NULL,
     "{\"code\": \"derive\", \"derived\": \"yes\"}"},
    {"func_skipped_after_field_error", S_RULES, U, "{\"code\": 7}", SCHEMA,
     "{\"code\": \"code is not a string\"}"},

    /* [UNKNOWN] */
    {"unknown_field", S_RULES, U, "{\"zzz\": 1, \"yyy\": \"a\"}", SCHEMA,
     "{\"zzz\": \"zzz is an unknown field\", \"yyy\": \"yyy is an unknown field\"}", NULL,
     "yyy=yyy is an unknown field zzz=zzz is an unknown field"},
    {"unknown_null_ignored", S_RULES, U, "{\"zzz\": null}", OK},

    /* [SCHEMA] nested, chosen by a function */
    {"nested_defaults", S_PLUGIN, I, "{\"name\": \"conf\", \"config\": {\"key\": \" k \"}}", OK,
     NULL,
     "{\"name\": \"conf\", \"config\": {\"key\": \"k\", \"mode\": \"fast\", \"inner\": {\"depth\": "
     "1, \"depth_copy\": 1}}, \"fixed\": {\"depth\": 1, \"depth_copy\": 1}}"},
    {"nested_precreated_and_required", S_PLUGIN, I, "{\"name\": \"conf\"}", SCHEMA,
     "{\"config\": \"config.key is required\", \"config.key\": \"key is required\"}", NULL,
     "config=config.key is required config.key=key is required"},
    {"nested_required_without_defaults", S_PLUGIN, I, "{\"name\": \"req\"}", SCHEMA,
     "{\"config\": [\"config.a is required\", \"config.b is required\"]}",
     "{\"name\": \"req\", \"fixed\": {\"depth\": 1, \"depth_copy\": 1}}"},
    {"nested_required_on_partial_update", S_PLUGIN, U, "{\"name\": \"req\"}", SCHEMA,
     "{\"config\": [\"config.a is required\", \"config.b is required\"]}"},
    {"nested_partial_update_no_defaults", S_PLUGIN, U,
     "{\"name\": \"conf\", \"config\": {\"mode\": \"slow\"}}", OK, NULL,
     /* Kong pre-creates tables whose schema has defaults in every mode. */
     "{\"name\": \"conf\", \"config\": {\"mode\": \"slow\", \"inner\": {}}, \"fixed\": {}}"},
    {"nested_function_error", S_PLUGIN, I, "{\"name\": \"nope\", \"config\": {\"x\": 1}}", SCHEMA,
     "{\"config\": \"Plugin \\\"nope\\\" not found\"}"},
    {"nested_function_no_schema", S_PLUGIN, I, "{\"name\": \"none\", \"config\": {\"x\": 1}}", OK},
    {"nested_errors_rekeyed", S_PLUGIN, I,
     "{\"name\": \"conf\", \"config\": {\"key\": 5, \"bogus\": 1, \"mode\": \"slowest\"}}", SCHEMA,
     "{\"config.key\": \"key is not a string\", \"config.bogus\": \"bogus is an unknown field\", "
     "\"config.mode\": \"\\\"slowest\\\" is not allowed. Allowed values are: \\\"fast\\\", "
     "\\\"slow\\\"\"}"},
    {"nested_errors_rekeyed_deep", S_PLUGIN, I,
     "{\"name\": \"conf\", \"config\": {\"key\": \"k\", \"inner\": {\"depth\": \"x\"}}}", SCHEMA,
     "{\"config.inner.depth\": \"depth is not a number\"}"},
    {"nested_self_check_under_field", S_PLUGIN, I,
     "{\"name\": \"conf\", \"config\": {\"key\": \"forbidden\"}}", SCHEMA,
     "{\"config\": \"key is forbidden\"}"},
    {"nested_not_a_table", S_PLUGIN, I, "{\"name\": \"conf\", \"config\": \"x\"}", SCHEMA,
     "{\"config\": \"config is not a table\"}"},
    {"nested_empty_array_is_empty_table", S_PLUGIN, I, "{\"name\": \"conf\", \"config\": []}",
     SCHEMA, "{\"config.key\": \"key is required\"}"},
    {"nested_static_schema", S_PLUGIN, I, "{\"name\": \"none\", \"fixed\": {\"depth\": \"3\"}}", OK,
     NULL, "{\"name\": \"none\", \"fixed\": {\"depth\": 3, \"depth_copy\": \"3\"}}"},

    /* flexible schemas */
    {"flexible_valid", S_RL, I, "{\"limits\": {\"sms\": {\"minute\": \"10\"}}}", OK, NULL,
     "{\"limits\": {\"sms\": {\"minute\": 10}}}"},
    {"flexible_entry_errors_prefixed", S_RL, I, "{\"limits\": {\"sms\": {\"minute\": \"x\"}}}",
     SCHEMA, "{\"limits.sms.minute\": \"minute is not a number\"}"},
    {"flexible_entry_unknown_field", S_RL, I, "{\"limits\": {\"sms\": {\"bogus\": 1}}}", SCHEMA,
     "{\"limits.sms.bogus\": \"bogus is an unknown field\"}"},
    {"flexible_entry_not_a_table", S_RL, I, "{\"limits\": {\"sms\": 5}}", SCHEMA,
     "{\"limits.sms\": \"sms is not a table\"}"},
    {"flexible_stops_at_first_non_table", S_RL, I,
     "{\"limits\": {\"b\": {\"minute\": \"x\"}, \"a\": 5}}", SCHEMA,
     "{\"limits.a\": \"a is not a table\"}"},
    {"flexible_map_itself_checked", S_RL, I, "{\"limits\": {\"minute\": \"7\"}}", SCHEMA,
     "{\"limits.minute\": \"minute is not a table\"}", "{\"limits\": {\"minute\": 7}}"},

    /* [SELF_CHECK] */
    {"self_check_accepts", S_SELF, I, "{\"a\": \"ok\"}", OK},
    {"self_check_schema_error_without_fields", S_SELF, I, "{\"a\": \"fail\"}", SCHEMA, NULL, NULL,
     "a and b conflict"},
    {"self_check_unique_passes_through", S_SELF, I, "{\"a\": \"unique\"}", KDAO_ERR_UNIQUE,
     "{\"a\": \"already exists with value 'unique'\"}", NULL,
     "a=already exists with value 'unique'"},
    {"self_check_db_passes_through", S_SELF, U, "{\"a\": \"db\"}", KDAO_ERR_DB, NULL, NULL,
     "connection refused"},
    {"self_check_not_after_errors", S_SELF, I, "{\"a\": \"fail\", \"zz\": 1}", SCHEMA,
     "{\"zz\": \"zz is an unknown field\"}"},
};
#pragma GCC diagnostic pop

static void run_case(void **state) {
  const vcase *c = *state;
  json_error_t jerr;
  json_t *entity = json_loads(c->input, JSON_ALLOW_NUL, &jerr);
  assert_non_null(entity);
  json_t *old = c->old ? json_loads(c->old, 0, &jerr) : NULL;
  kdao_error *err = NULL;
  int rc = kdao__validate(schemas[c->schema], entity, c->mode, old, NULL, &err);
  if (rc != c->kind) fail_msg("status %d (%s), expected %d", rc, kdao_error_message(err), c->kind);
  assert_int_equal(kdao_error_kind(err), c->kind);
  if (c->kind == KDAO_OK) assert_null(err);

  const json_t *fields = kdao_error_fields(err);
  if (c->errors) {
    json_t *want = json_loads(c->errors, 0, &jerr);
    assert_non_null(want);
    if (!json_equal(want, fields)) {
      char *got = fields ? json_dumps(fields, JSON_SORT_KEYS) : NULL;
      fail_msg("errors %s, expected %s", got ? got : "(none)", c->errors);
    }
    json_decref(want);
  } else {
    assert_null(fields);
  }
  if (c->message) assert_string_equal(kdao_error_message(err), c->message);
  if (c->output) {
    json_t *want = json_loads(c->output, 0, &jerr);
    assert_non_null(want);
    if (!json_equal(want, entity)) {
      char *got = json_dumps(entity, JSON_SORT_KEYS);
      fail_msg("entity %s, expected %s", got, c->output);
    }
    json_decref(want);
  }
  kdao_error_free(err);
  json_decref(entity);
  json_decref(old);
}

/* ---- behaviour needing more than one call ---- */

static json_t *load(const char *text) {
  json_error_t jerr;
  json_t *v = json_loads(text, 0, &jerr);
  assert_non_null(v);
  return v;
}

static void test_default_is_deep_copied(void **state) {
  (void)state;
  json_t *e1 = load("{\"name\": \"abc\"}"), *e2 = load("{\"name\": \"abc\"}");
  assert_int_equal(kdao_validate(schemas[S_RULES], e1, I, NULL, NULL), OK);
  json_array_append_new(json_object_get(e1, "tags"), json_string("mutated"));
  assert_int_equal(kdao_validate(schemas[S_RULES], e2, I, NULL, NULL), OK);
  assert_int_equal(json_array_size(json_object_get(e2, "tags")), 1);
  json_decref(e1);
  json_decref(e2);
}

static void test_func_call_rules(void **state) {
  (void)state;
  /* Called with a nil value on insert... */
  func_calls = 0;
  json_t *e = load("{\"name\": \"abc\"}");
  assert_int_equal(kdao_validate(schemas[S_RULES], e, I, NULL, NULL), OK);
  assert_int_equal(func_calls, 1);
  json_decref(e);
  /* ...not for an absent value on partial update, nor after a field error. */
  func_calls = 0;
  e = load("{\"name\": \"abc\"}");
  assert_int_equal(kdao_validate(schemas[S_RULES], e, U, NULL, NULL), OK);
  json_decref(e);
  e = load("{\"code\": 1}");
  assert_int_equal(kdao_validate(schemas[S_RULES], e, U, NULL, NULL), SCHEMA);
  assert_int_equal(func_calls, 0);
  json_decref(e);
}

static void test_self_check_calls(void **state) {
  (void)state;
  self_calls = 0;
  json_t *e = load("{\"a\": 5}");
  kdao_error *err = NULL;
  assert_int_equal(kdao_validate(schemas[S_SELF], e, I, NULL, &err), SCHEMA);
  assert_int_equal(self_calls, 0);
  kdao_error_free(err);
  json_decref(e);

  e = load("{\"a\": \"ok\"}");
  assert_int_equal(kdao_validate(schemas[S_SELF], e, F, NULL, NULL), OK);
  assert_int_equal(self_calls, 1);
  assert_int_equal(self_mode, F);
  json_decref(e);
}

static void test_error_is_optional(void **state) {
  (void)state;
  json_t *e = load("{\"s\": 1}");
  assert_int_equal(kdao_validate(schemas[S_TYPES], e, I, NULL, NULL), SCHEMA);
  json_decref(e);
}

static void test_misuse(void **state) {
  (void)state;
  kdao_error *err = NULL;
  assert_int_equal(kdao_validate(schemas[S_TYPES], NULL, I, NULL, &err), KDAO_ERR_MISUSE);
  assert_string_equal(kdao_error_message(err),
                      "bad argument #2 to 'validate' (table expected, got nil)");
  kdao_error_free(err);

  json_t *arr = json_array();
  assert_int_equal(kdao_validate(schemas[S_TYPES], arr, I, NULL, &err), KDAO_ERR_MISUSE);
  kdao_error_free(err);
  json_t *str = json_string("x");
  assert_int_equal(kdao_validate(schemas[S_TYPES], str, I, NULL, &err), KDAO_ERR_MISUSE);
  assert_string_equal(kdao_error_message(err),
                      "bad argument #2 to 'validate' (table expected, got string)");
  kdao_error_free(err);
  json_t *obj = json_object();
  assert_int_equal(kdao_validate(NULL, obj, I, NULL, &err), KDAO_ERR_MISUSE);
  kdao_error_free(err);
  assert_int_equal(kdao_validate(schemas[S_TYPES], obj, (kdao_mode)42, NULL, &err),
                   KDAO_ERR_MISUSE);
  kdao_error_free(err);
  json_decref(arr);
  json_decref(str);
  json_decref(obj);
}

/* ---- filters (is_schema_subset) ---- */

typedef struct fcase {
  const char *filter;
  const char *errors; /* NULL: valid */
} fcase;

static void test_filter(void **state) {
  (void)state;
  static const fcase fcases[] = {
      {"{}", NULL},
      {"{\"id\": \"0b2ab9b2-6a3c-4c2f-a3b4-2d2c6f7e8a9b\", \"s\": \"anything\"}", NULL},
      {"{\"id\": null}", NULL},
      {"{\"bogus\": 1}", "{\"bogus\": \"unknown field\"}"},
      {"{\"id\": \"not-a-uuid\"}", "{\"id\": \"not-a-uuid is not a valid uuid\"}"},
      {"{\"id\": 5}", "{\"id\": \"5 is not a valid uuid\"}"},
      {"{\"id\": 1.5}", "{\"id\": \"1.5 is not a valid uuid\"}"},
      {"{\"id\": true}", "{\"id\": \"true is not a valid uuid\"}"},
      {"{\"id\": {\"a\": 1}}", "{\"id\": \"{\\\"a\\\":1} is not a valid uuid\"}"},
      {"{\"id\": \"x\", \"zz\": 1}",
       "{\"id\": \"x is not a valid uuid\", \"zz\": \"unknown field\"}"},
  };
  for (size_t i = 0; i < sizeof fcases / sizeof fcases[0]; i++) {
    json_t *filter = load(fcases[i].filter);
    kdao_error *err = NULL;
    int rc = kdao_validate_filter(schemas[S_TYPES], filter, &err);
    if (!fcases[i].errors) {
      if (rc != OK) fail_msg("%s: %s", fcases[i].filter, kdao_error_message(err));
    } else {
      assert_int_equal(rc, SCHEMA);
      json_t *want = load(fcases[i].errors);
      if (!json_equal(want, kdao_error_fields(err)))
        fail_msg("%s: got %s", fcases[i].filter, kdao_error_message(err));
      json_decref(want);
    }
    kdao_error_free(err);
    json_decref(filter);
  }
  assert_int_equal(kdao_validate_filter(schemas[S_TYPES], NULL, NULL), OK);
  json_t *arr = json_array();
  assert_int_equal(kdao_validate_filter(schemas[S_TYPES], arr, NULL), KDAO_ERR_MISUSE);
  json_decref(arr);
}

static void test_is_uuid(void **state) {
  (void)state;
  assert_true(kdao_is_uuid("0b2ab9b2-6a3c-4c2f-a3b4-2d2c6f7e8a9b"));
  assert_true(kdao_is_uuid("0B2AB9B2-6A3C-4C2F-A3B4-2D2C6F7E8A9B"));
  assert_true(kdao_is_uuid("00000000-0000-0000-0000-000000000000"));
  assert_true(kdao_is_uuid("0b2ab9b2-6a3c-fc2f-03b4-2d2c6f7e8a9b")); /* any version/variant */
  assert_false(kdao_is_uuid(NULL));
  assert_false(kdao_is_uuid(""));
  assert_false(kdao_is_uuid("0b2ab9b2-6a3c-4c2f-a3b4-2d2c6f7e8a9"));   /* 35 */
  assert_false(kdao_is_uuid("0b2ab9b2-6a3c-4c2f-a3b4-2d2c6f7e8a9bb")); /* 37 */
  assert_false(kdao_is_uuid("0b2ab9b26-a3c-4c2f-a3b4-2d2c6f7e8a9b"));  /* dash moved */
  assert_false(kdao_is_uuid("0b2ab9b2-6a3c-4c2f-a3b4-2d2c6f7e8a9g"));  /* not hex */
  assert_false(kdao_is_uuid("{b2ab9b2-6a3c-4c2f-a3b4-2d2c6f7e8a9}"));
  assert_false(kdao_is_uuid("0b2ab9b2_6a3c_4c2f_a3b4_2d2c6f7e8a9b"));
}

static void test_uuid_v4_generated(void **state) {
  (void)state;
  char a[37], b[37];
  kdao__uuid_v4(a);
  kdao__uuid_v4(b);
  assert_true(kdao_is_uuid(a));
  assert_int_equal(a[14], '4');
  assert_true(strchr("89ab", a[19]) != NULL);
  assert_string_not_equal(a, b);
  long long now = kdao__now_ms();
  assert_true(now > 1500000000000LL);
}

int main(void) {
  enum { NCASES = sizeof cases / sizeof cases[0] };
  static const struct CMUnitTest fixed[] = {
      cmocka_unit_test(test_default_is_deep_copied),
      cmocka_unit_test(test_func_call_rules),
      cmocka_unit_test(test_self_check_calls),
      cmocka_unit_test(test_error_is_optional),
      cmocka_unit_test(test_misuse),
      cmocka_unit_test(test_filter),
      cmocka_unit_test(test_is_uuid),
      cmocka_unit_test(test_uuid_v4_generated),
  };
  enum { NFIXED = sizeof fixed / sizeof fixed[0] };
  struct CMUnitTest tests[NCASES + NFIXED];
  for (size_t i = 0; i < NCASES; i++)
    tests[i] = (struct CMUnitTest){
        .name = cases[i].name, .test_func = run_case, .initial_state = (void *)&cases[i]};
  for (size_t i = 0; i < NFIXED; i++) tests[NCASES + i] = fixed[i];
  return _cmocka_run_group_tests("validate", tests, NCASES + NFIXED, group_setup, group_teardown);
}
