/*
 * consumers.c — the `consumers` entity of Kong 0.10.4 (kong/dao/schemas/consumers.lua).
 */
#include "factory.h"
#include "schemas/schemas_int.h"

static bool consumer_has(const json_t *entity, const char *field) {
  const json_t *v = json_object_get(entity, field);
  return json_is_string(v) && !kdao__is_blank(json_string_value(v), json_string_length(v));
}

/*
 * Shared by custom_id and username, so that both fields carry the message when neither is
 * given: a consumer must be identifiable by at least one of them.
 */
static int consumer_check_identity(kdao_dao *dao, const char *field, json_t *value, json_t *entity,
                                   json_t **new_fields, char **message, void *ud) {
  (void)dao, (void)field, (void)value, (void)new_fields, (void)ud;
  if (consumer_has(entity, "custom_id") || consumer_has(entity, "username")) return 0;
  return kdao__reject(message, "At least a 'custom_id' or a 'username' must be specified");
}

static const kdao_field_def consumer_fields[] = {
    KDAO__FIELD_ID,
    KDAO__FIELD_CREATED_AT,
    {.name = "custom_id",
     .type = KDAO_TYPE_STRING,
     .flags = KDAO_FIELD_UNIQUE,
     .func = consumer_check_identity},
    {.name = "username",
     .type = KDAO_TYPE_STRING,
     .flags = KDAO_FIELD_UNIQUE,
     .func = consumer_check_identity},
    {.name = NULL},
};

const kdao_schema_def kdao__schema_consumers = {
    .version = KDAO_DEF_VERSION,
    .name = "consumers",
    .table = "consumers",
    .primary_key = kdao__pk_id,
    .fields = consumer_fields,
};
