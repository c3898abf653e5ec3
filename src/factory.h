/*
 * factory.h — the factory and DAO structs, and the built-in definitions the factory
 * registers. Internal.
 */
#ifndef KDAO_FACTORY_H
#define KDAO_FACTORY_H

#include "backend.h"
#include "schema.h"

/* A cascade edge: rows of `child` whose `child_field` equals the parent's `parent_field`. */
typedef struct kdao__cascade {
  kdao_dao *child;
  size_t child_field;  /* index into child's schema fields */
  size_t parent_field; /* index into the parent's schema fields */
} kdao__cascade;

/* A foreign edge of a DAO: field `field` references `parent`.`parent_field`. */
typedef struct kdao__foreign {
  size_t field;
  kdao_dao *parent;
  size_t parent_field;
} kdao__foreign;

struct kdao_dao {
  kdao_factory *factory;
  kdao_schema *schema; /* owned */
  char *plugin;        /* owning plugin name, NULL for core and caller-registered entities */
  bool core;           /* one of Kong's core entities: its tables come from core migrations */
  kdao__foreign *foreign;
  size_t nforeign;
  kdao__cascade *cascade;
  size_t ncascade;
};

/* A registered plugin. */
typedef struct kdao__plugin {
  char *name;
  kdao_schema *config;            /* owned, may be NULL */
  kdao_migration_def *migrations; /* owned copy of the factory backend's, may be NULL */
  char **entities;                /* names of the DAOs it brought */
  size_t nentities;
} kdao__plugin;

struct kdao_factory {
  kdao_config *cfg; /* owned copy */
  const kdao__backend_ops *ops;
  kdao__backend *backend; /* NULL until connected */
  kdao_dao **daos;        /* sorted by name */
  size_t ndaos, daos_cap;
  /* Schemas of replaced entities: kept until free, so no earlier kdao_schema * dangles. */
  kdao_schema **retired;
  size_t nretired, retired_cap;
  const kdao_schema **schemas; /* the DAOs' schemas, in daos order, built at connect */
  kdao__plugin *plugins;       /* sorted by name */
  size_t nplugins;
  kdao_event_fn on_event;
  void *on_event_ud;
  bool connected;
  kdao_error *op_err; /* dao.c's CALL(): the error of the backend op just called */
  /* The database's page token key, read at the first page that needs it (dao.c). */
  unsigned char page_key[KDAO__PAGE_KEY_LEN];
  bool page_key_ready;
};

/* Built-in entity definitions (src/schemas/). */
extern const kdao_schema_def kdao__schema_apis;
extern const kdao_schema_def kdao__schema_consumers;
extern const kdao_schema_def kdao__schema_plugins;
extern const kdao_schema_def kdao__schema_upstreams;
extern const kdao_schema_def kdao__schema_targets;
extern const kdao_schema_def kdao__schema_ssl_certificates;
extern const kdao_schema_def kdao__schema_ssl_servers_names;

/* Built-in plugins (src/schemas/plugins_builtin.c): key-auth, basic-auth, acl. */
extern const kdao_plugin_def kdao__plugin_key_auth;
extern const kdao_plugin_def kdao__plugin_basic_auth;
extern const kdao_plugin_def kdao__plugin_acl;
extern const kdao_schema_def kdao__schema_acls; /* acl's entity, named by kdao__unique_defs */

/* Parses a JSON plugin description (docs/plugins.md) and registers it (plugin_json.c). */
int kdao__plugin_register_json(kdao_factory *f, const json_t *desc, const char *origin,
                               kdao_error **err);

#endif
