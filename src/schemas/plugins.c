/*
 * plugins.c — the `plugins` entity of Kong 0.10.4 (kong/dao/schemas/plugins.lua): a plugin
 * configured globally, per API, per consumer or per API and consumer, whose `config` is
 * validated by the config schema registered under the plugin's name.
 */
#include <stdlib.h>
#include <string.h>

#include "factory.h"
#include "schemas/schemas_int.h"

/* The factory behind `dao`, or NULL when validating outside a factory. */
static kdao_factory *plugin_factory(kdao_dao *dao) { return dao ? kdao_dao_factory(dao) : NULL; }

/* A registered plugin may have no config schema (any config accepted): not "not found". */
static bool plugin_registered(const kdao_factory *f, const char *name) {
  for (size_t i = 0; i < f->nplugins; i++) {
    if (strcmp(f->plugins[i].name, name) == 0) return true;
  }
  return false;
}

/*
 * The plugin name, trimmed: `config` is validated before `name` (fields run in name order),
 * so the name may still carry the whitespace the validator trims later. kdao__malloc()ed, or NULL
 * when there is no string name (or no memory).
 */
static char *plugin_name(const json_t *entity) {
  const char *s = kdao__plain_string(json_object_get(entity, "name"));
  if (!s) return NULL;
  const char *ws = " \t\n\v\f\r";
  s += strspn(s, ws);
  size_t len = strlen(s);
  while (len > 0 && strchr(ws, s[len - 1])) len--;
  return kdao__strndup(s, len);
}

/*
 * Kong's `schema = function(t)` of `config`: the config schema of plugin `t.name`. Without
 * a name (or without a factory) there is nothing to validate the config against.
 */
static const kdao_schema *plugin_config_schema(kdao_dao *dao, json_t *entity, char **message,
                                               void *ud) {
  (void)ud;
  kdao_factory *f = plugin_factory(dao);
  char *name = f ? plugin_name(entity) : NULL;
  if (!name) return NULL;
  const kdao_schema *schema = kdao_factory_plugin_schema(f, name);
  if (!schema && !plugin_registered(f, name))
    *message = kdao__asprintf("Plugin \"%s\" not found", name);
  kdao__free(name);
  return schema;
}

/*
 * The config schema's own self_check, run again on the whole config as Kong did. In a
 * partial update without `config` the stored config stays as it was validated, so there is
 * nothing to check (Kong checked `{}` and so refused e.g. {enabled = false} on an acl).
 */
static kdao_error *plugin_check_config(kdao_dao *dao, const kdao_schema *config_schema,
                                       json_t *entity, kdao_mode mode) {
  if (!config_schema->self_check) return NULL;
  json_t *config = json_object_get(entity, "config");
  if (!json_is_object(config)) {
    if (mode == KDAO_MODE_UPDATE) return NULL;
    json_t *empty = json_object();
    if (!empty) return kdao_error_new(KDAO_ERR_NOMEM, "out of memory");
    kdao_error *e = config_schema->self_check(dao, config_schema, empty, mode, config_schema->ud);
    json_decref(empty);
    return e;
  }
  return config_schema->self_check(dao, config_schema, config, mode, config_schema->ud);
}

/*
 * Kong's self_check, less its duplicate check: one plugin of a name per (api_id,
 * consumer_id) is a composite unique (kdao__unique_defs) the backend enforces inside the
 * write, where a read here could not stop a concurrent insert. Without a name (a partial update; Kong raised a Lua error) or without a
 * factory to find the config schema in, there is nothing it can check.
 */
static kdao_error *plugin_self_check(kdao_dao *dao, const kdao_schema *schema, json_t *entity,
                                     kdao_mode mode, void *ud) {
  (void)schema, (void)ud;
  kdao_factory *f = plugin_factory(dao);
  char *name = f ? plugin_name(entity) : NULL;
  if (!name) return NULL;
  kdao_error *e = NULL;
  const kdao_schema *config_schema = kdao_factory_plugin_schema(f, name);
  if (!config_schema && !plugin_registered(f, name)) {
    char *msg = kdao__asprintf("Plugin \"%s\" not found", name);
    e = msg ? kdao__schema_error(msg) : kdao_error_new(KDAO_ERR_NOMEM, "out of memory");
    kdao__free(msg);
    goto cleanup;
  }
  if (config_schema) {
    const json_t *consumer = json_object_get(entity, "consumer_id");
    if ((config_schema->flags & KDAO_SCHEMA_NO_CONSUMER) && consumer && !json_is_null(consumer)) {
      e = kdao__schema_error("No consumer can be configured for that plugin");
      goto cleanup;
    }
    e = plugin_check_config(dao, config_schema, entity, mode);
  }
cleanup:
  kdao__free(name);
  return e;
}

static const char *const plugin_pk[] = {"id", "name", NULL};

static const kdao_field_def plugin_fields[] = {
    KDAO__FIELD_ID,
    KDAO__FIELD_CREATED_AT,
    {.name = "api_id", .type = KDAO_TYPE_ID, .foreign = "apis:id"},
    {.name = "consumer_id", .type = KDAO_TYPE_ID, .foreign = "consumers:id"},
    {.name = "name", .type = KDAO_TYPE_STRING, .flags = KDAO_FIELD_REQUIRED | KDAO_FIELD_IMMUTABLE},
    {.name = "config",
     .type = KDAO_TYPE_TABLE,
     .default_json = "{}",
     .schema_fn = plugin_config_schema},
    {.name = "enabled", .type = KDAO_TYPE_BOOLEAN, .default_json = "true"},
    {.name = NULL},
};

const kdao_schema_def kdao__schema_plugins = {
    .version = KDAO_DEF_VERSION,
    .name = "plugins",
    .table = "plugins",
    .primary_key = plugin_pk,
    .fields = plugin_fields,
    .self_check = plugin_self_check,
};
