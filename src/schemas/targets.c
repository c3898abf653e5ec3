/*
 * targets.c — the `targets` entity of Kong 0.10.4 (kong/dao/schemas/targets.lua): an
 * append-only history of "host:port" + weight entries per upstream.
 */
#include <stdlib.h>

#include "factory.h"
#include "schemas/schemas_int.h"

#define TARGET_DEFAULT_PORT 8000
#define WEIGHT_MIN 0
#define WEIGHT_MAX 1000

/* Parses the target and stores it normalised: "1.2.3.4:8000", "[0000:...:0001]:80". */
static kdao_error *target_normalize(json_t *entity, const json_t *target) {
  const char *text = kdao__plain_string(target);
  kdao__host h = {0};
  int rc = text ? kdao__normalize_ip(text, &h) : KDAO_ERR_SCHEMA;
  if (rc == KDAO_ERR_SCHEMA)
    return kdao__schema_error("Invalid target; not a valid hostname or ip address");
  char *formatted = rc == KDAO_OK ? kdao__format_host(&h, TARGET_DEFAULT_PORT) : NULL;
  kdao__host_clear(&h);
  if (!formatted || json_object_set_new(entity, "target", json_string(formatted)) != 0) {
    kdao__free(formatted);
    return kdao_error_new(KDAO_ERR_NOMEM, "out of memory");
  }
  kdao__free(formatted);
  return NULL;
}

/*
 * Kong's self_check. A partial update may lack weight or target (Kong then raised a Lua
 * error comparing nil): only the checks whose inputs are present run.
 */
static kdao_error *target_self_check(kdao_dao *dao, const kdao_schema *schema, json_t *entity,
                                     kdao_mode mode, void *ud) {
  (void)dao, (void)schema, (void)mode, (void)ud;
  const json_t *weight = json_object_get(entity, "weight");
  if (json_is_number(weight) &&
      (json_number_value(weight) < WEIGHT_MIN || json_number_value(weight) > WEIGHT_MAX))
    return kdao__schema_error("weight must be from 0 to 1000");
  const json_t *target = json_object_get(entity, "target");
  if (!target || json_is_null(target)) return NULL;
  return target_normalize(entity, target);
}

static const kdao_field_def target_fields[] = {
    KDAO__FIELD_ID,
    KDAO__FIELD_CREATED_AT,
    {.name = "upstream_id", .type = KDAO_TYPE_ID, .foreign = "upstreams:id"},
    {.name = "target", .type = KDAO_TYPE_STRING, .flags = KDAO_FIELD_REQUIRED},
    {.name = "weight", .type = KDAO_TYPE_NUMBER, .default_json = "100"},
    {.name = NULL},
};

const kdao_schema_def kdao__schema_targets = {
    .version = KDAO_DEF_VERSION,
    .name = "targets",
    .table = "targets",
    .primary_key = kdao__pk_id,
    .fields = target_fields,
    .self_check = target_self_check,
};
