/*
 * factory.c — the DAO factory: registration of entities and plugins, the constraint graph,
 * the backend connection and migrations.
 *
 * The factory is built in two phases, like Kong's: first every schema is registered (core,
 * built-in plugins, plugin directory, caller's own), then kdao_factory_connect() links the
 * foreign/cascade graph once and opens the backend. Linking once means no DAO operation
 * ever searches the schema set at run time.
 */
#include <dirent.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"
#include "factory.h"

/* An unset `database` means the default backend, as the key's default does. */
static const kdao__backend_ops *backend_by_name(const char *name) {
  return name == NULL ? kdao__backends[0] : kdao__backend_find(name);
}

/* A complete vtable is checked once here, so no operation finds a hole at run time. */
static bool ops_complete(const kdao__backend_ops *o) {
  return o->version == KDAO__BACKEND_OPS_VERSION && o->name &&
         kdao__backend_migrations(o, "core") && o->open && o->close && o->infos && o->insert &&
         o->insert_many && o->find && o->find_all && o->find_page && o->count && o->update &&
         o->delete &&o->truncate && o->begin && o->commit && o->rollback && o->migrations_current &&
         o->migration_apply && o->schema_ddl && o->drop_schema && o->purge_expired && o->secret &&
         ((o->caps & KDAO__CAP_NATIVE_FOREIGN) || o->find_current);
}

/* ---- DAO set (sorted by name for bsearch) ---- */

static int dao_cmp(const void *a, const void *b) {
  return strcmp((*(kdao_dao *const *)a)->schema->name, (*(kdao_dao *const *)b)->schema->name);
}

static void dao_free(kdao_dao *d) {
  if (d == NULL) return;
  kdao_schema_free(d->schema);
  kdao__free(d->plugin);
  kdao__free(d->foreign);
  kdao__free(d->cascade);
  kdao__free(d);
}

kdao_dao *kdao_factory_dao(kdao_factory *f, const char *name) {
  if (f == NULL || name == NULL) return NULL;
  size_t lo = 0, hi = f->ndaos;
  while (lo < hi) {
    size_t mid = (lo + hi) / 2;
    int c = strcmp(name, f->daos[mid]->schema->name);
    if (c == 0) return f->daos[mid];
    if (c < 0)
      hi = mid;
    else
      lo = mid + 1;
  }
  return NULL;
}

const kdao_schema *kdao__factory_schema(const kdao_factory *f, const char *name) {
  kdao_dao *d = kdao_factory_dao((kdao_factory *)f, name);
  return d ? d->schema : NULL;
}

const kdao_schema *const *kdao__factory_schemas(const kdao_factory *f, size_t *n) {
  *n = f != NULL && f->schemas != NULL ? f->ndaos : 0;
  return *n > 0 ? f->schemas : NULL;
}

static kdao_error *oom_error(void) { return kdao_error_new(KDAO_ERR_NOMEM, "out of memory"); }

/* Compiles an entity definition with the checks registration adds to the compiler's. */
static kdao_error *entity_compile(const kdao_schema_def *def, kdao_schema **out) {
  *out = NULL;
  if (def == NULL || def->name == NULL)
    return kdao_error_new(KDAO_ERR_MISUSE, "entity schema needs a name");
  kdao_error *e = NULL;
  kdao_schema *s = NULL;
  if (kdao_schema_compile(def, &s, &e) != KDAO_OK) return e;
  if (s->npk == 0) {
    kdao_schema_free(s);
    return kdao__error_fmt(KDAO_ERR_MISUSE, "entity '%s' has no primary key", def->name);
  }
  *out = s;
  return NULL;
}

/*
 * An entity compiled and with everything it needs to join the factory allocated, so that
 * joining cannot fail: registration is all or nothing.
 */
typedef struct staged_entity {
  kdao_schema *schema;
  kdao_dao *dao; /* used when the name is new */
  char *plugin;  /* the owning plugin's name, NULL for none */
} staged_entity;

static void staged_free(staged_entity *st, size_t n) {
  for (size_t i = 0; st != NULL && i < n; i++) {
    kdao_schema_free(st[i].schema);
    kdao__free(st[i].dao);
    kdao__free(st[i].plugin);
  }
  kdao__free(st);
}

/* Room for `more` DAOs and as many retired schemas (capacity only: nothing joins yet). */
static bool reserve(kdao_factory *f, size_t more) {
  if (f->ndaos + more > f->daos_cap) {
    kdao_dao **g = kdao__realloc(f->daos, (f->ndaos + more) * sizeof *g);
    if (g == NULL) return false;
    f->daos = g;
    f->daos_cap = f->ndaos + more;
  }
  if (f->nretired + more > f->retired_cap) {
    kdao_schema **g = kdao__realloc(f->retired, (f->nretired + more) * sizeof *g);
    if (g == NULL) return false;
    f->retired = g;
    f->retired_cap = f->nretired + more;
  }
  return true;
}

/* Stages `n` definitions; on failure nothing of the factory has changed. */
static kdao_error *stage_entities(kdao_factory *f, const kdao_schema_def *const *defs, size_t n,
                                  const char *plugin, staged_entity **out) {
  *out = NULL;
  staged_entity *st = kdao__calloc(n + 1, sizeof *st);
  if (st == NULL) return oom_error();
  kdao_error *e = NULL;
  for (size_t i = 0; e == NULL && i < n; i++) {
    e = entity_compile(defs[i], &st[i].schema);
    if (e == NULL && ((st[i].dao = kdao__calloc(1, sizeof *st[i].dao)) == NULL ||
                      (plugin != NULL && (st[i].plugin = kdao__strdup(plugin)) == NULL)))
      e = oom_error();
  }
  if (e == NULL && !reserve(f, n)) e = oom_error();
  if (e != NULL) {
    staged_free(st, n);
    return e;
  }
  *out = st;
  return NULL;
}

/*
 * A staged entity joins: as a new DAO, or, under an existing name, as the new schema of
 * that DAO. Replacing in place keeps every kdao_dao * handed out valid; the old schema is
 * retired, not freed, for the kdao_schema * handed out (kdao_dao_schema(), the Lua
 * binding's tables).
 */
static void commit_entity(kdao_factory *f, staged_entity *st, bool core) {
  kdao_dao *d = kdao_factory_dao(f, st->schema->name);
  bool fresh = d == NULL;
  if (fresh) {
    d = st->dao;
    d->factory = f;
    f->daos[f->ndaos++] = d;
  } else {
    f->retired[f->nretired++] = d->schema;
    kdao__free(d->plugin);
    kdao__free(st->dao);
  }
  d->schema = st->schema;
  d->plugin = st->plugin;
  d->core = core;
  if (fresh) qsort(f->daos, f->ndaos, sizeof *f->daos, dao_cmp);
  *st = (staged_entity){0};
}

static kdao_error *add_entities(kdao_factory *f, const kdao_schema_def *const *defs, size_t n,
                                bool core) {
  if (f->connected) return kdao_error_new(KDAO_ERR_MISUSE, "factory already connected");
  staged_entity *st = NULL;
  kdao_error *e = stage_entities(f, defs, n, NULL, &st);
  if (e != NULL) return e;
  for (size_t i = 0; i < n; i++) commit_entity(f, &st[i], core);
  kdao__free(st);
  return NULL;
}

kdao_status kdao_factory_register_entity(kdao_factory *f, const kdao_schema_def *def,
                                         kdao_error **err) {
  if (f == NULL) return kdao__fail(err, kdao_error_new(KDAO_ERR_MISUSE, "factory is NULL"));
  kdao_error *e = add_entities(f, &def, 1, false);
  return e ? kdao__fail(err, e) : KDAO_OK;
}

/* ---- plugins ---- */

static int plugin_cmp(const void *a, const void *b) {
  return strcmp(((const kdao__plugin *)a)->name, ((const kdao__plugin *)b)->name);
}

static kdao__plugin *find_plugin(const kdao_factory *f, const char *name) {
  if (f == NULL || name == NULL || f->nplugins == 0) return NULL;
  kdao__plugin key = {.name = (char *)name};
  return bsearch(&key, f->plugins, f->nplugins, sizeof *f->plugins, plugin_cmp);
}

static void migrations_free(kdao_migration_def *m) {
  if (m == NULL) return;
  for (kdao_migration_def *p = m; p->name; p++) {
    kdao__free((char *)p->name);
    kdao__free((char *)p->up);
  }
  kdao__free(m);
}

static kdao_migration_def *migrations_copy(const kdao_migration_def *src) {
  size_t n = 0;
  while (src[n].name) n++;
  kdao_migration_def *m = kdao__calloc(n + 1, sizeof *m);
  if (m == NULL) return NULL;
  for (size_t i = 0; i < n; i++) {
    m[i].name = kdao__strdup(src[i].name);
    m[i].up = kdao__strdup(src[i].up ? src[i].up : "");
    if (m[i].name == NULL || m[i].up == NULL) {
      kdao__free((char *)m[i].name); /* the pair is not yet terminated by a NULL name */
      kdao__free((char *)m[i].up);
      m[i].name = NULL;
      migrations_free(m);
      return NULL;
    }
  }
  return m;
}

static void plugin_clear(kdao__plugin *p) {
  kdao__free(p->name);
  kdao_schema_free(p->config);
  migrations_free(p->migrations);
  for (size_t i = 0; i < p->nentities; i++) kdao__free(p->entities[i]);
  kdao__free(p->entities);
  memset(p, 0, sizeof *p);
}

/* The definition's migrations for backend `ops` (NULL: none); two entries are a mistake. */
static kdao_error *plugin_migrations(const kdao_plugin_def *def, const kdao__backend_ops *ops,
                                     const kdao_migration_def **out) {
  *out = NULL;
  bool seen = false;
  for (const kdao_plugin_migrations *m = def->migrations; m != NULL && m->backend != NULL; m++) {
    if (strcmp(m->backend, ops->name) != 0) continue;
    if (seen)
      return kdao__error_fmt(KDAO_ERR_MISUSE, "plugin '%s': two migration lists for '%s'",
                             def->name, ops->name);
    seen = true;
    *out = m->migrations;
  }
  return NULL;
}

static kdao_error *plugin_fill(kdao__plugin *p, const kdao_plugin_def *def,
                               const kdao__backend_ops *ops) {
  kdao_error *e = NULL;
  p->name = kdao__strdup(def->name);
  if (p->name == NULL) return oom_error();
  if (def->config && kdao_schema_compile(def->config, &p->config, &e) != KDAO_OK) return e;
  const kdao_migration_def *mine = NULL;
  if ((e = plugin_migrations(def, ops, &mine)) != NULL) return e;
  if (mine != NULL && (p->migrations = migrations_copy(mine)) == NULL) return oom_error();
  size_t n = 0;
  while (def->entities && def->entities[n]) n++;
  if (n > 0 && (p->entities = kdao__calloc(n, sizeof *p->entities)) == NULL) return oom_error();
  for (size_t i = 0; i < n; i++) {
    if (def->entities[i] == NULL || def->entities[i]->name == NULL)
      continue; /* stage_entities() refuses it */
    if ((p->entities[p->nentities] = kdao__strdup(def->entities[i]->name)) == NULL)
      return oom_error();
    p->nentities++;
  }
  return NULL;
}

kdao_status kdao_factory_register_plugin(kdao_factory *f, const kdao_plugin_def *def,
                                         kdao_error **err) {
  if (f == NULL || def == NULL || def->name == NULL)
    return kdao__fail(err, kdao_error_new(KDAO_ERR_MISUSE, "plugin definition needs a name"));
  if (f->connected)
    return kdao__fail(err, kdao_error_new(KDAO_ERR_MISUSE, "factory already connected"));
  if (def->version == 1)
    return kdao__fail(err, kdao__error_fmt(KDAO_ERR_MISUSE,
                                           "plugin '%s': definition version 1: kdao_plugin_def "
                                           "changed in version 2 (migrations are a list keyed by "
                                           "backend name); rebuild against this kdao.h",
                                           def->name));
  if (def->version != KDAO_DEF_VERSION)
    return kdao__fail(err, kdao__error_fmt(KDAO_ERR_MISUSE,
                                           "plugin '%s': unsupported definition version %u",
                                           def->name, def->version));
  /* Everything is checked and allocated first, so a failure leaves the factory as it was. */
  kdao__plugin p = {0};
  staged_entity *st = NULL;
  size_t n = 0;
  while (def->entities && def->entities[n]) n++;
  kdao_error *e = plugin_fill(&p, def, f->ops);
  if (e == NULL) e = stage_entities(f, def->entities, n, def->name, &st);
  kdao__plugin *old = find_plugin(f, def->name);
  if (e == NULL && old == NULL) {
    kdao__plugin *grown = kdao__realloc(f->plugins, (f->nplugins + 1) * sizeof *grown);
    if (grown != NULL)
      f->plugins = grown;
    else
      e = oom_error();
  }
  if (e != NULL) {
    staged_free(st, n);
    plugin_clear(&p);
    return kdao__fail(err, e);
  }
  for (size_t i = 0; i < n; i++) commit_entity(f, &st[i], false);
  kdao__free(st);
  if (old != NULL) {
    plugin_clear(old);
    *old = p;
    return KDAO_OK;
  }
  f->plugins[f->nplugins++] = p;
  qsort(f->plugins, f->nplugins, sizeof *f->plugins, plugin_cmp);
  return KDAO_OK;
}

const kdao_schema *kdao_factory_plugin_schema(const kdao_factory *f, const char *name) {
  kdao__plugin *p = find_plugin(f, name);
  return p ? p->config : NULL;
}

json_t *kdao_factory_plugin_names(const kdao_factory *f) {
  json_t *a = json_array();
  for (size_t i = 0; f && a && i < f->nplugins; i++)
    if (json_array_append_new(a, json_string(f->plugins[i].name)) != 0) {
      json_decref(a);
      a = NULL;
    }
  return a;
}

json_t *kdao_factory_dao_names(const kdao_factory *f) {
  json_t *a = json_array();
  for (size_t i = 0; f && a && i < f->ndaos; i++)
    if (json_array_append_new(a, json_string(f->daos[i]->schema->name)) != 0) {
      json_decref(a);
      a = NULL;
    }
  return a;
}

kdao_status kdao_factory_load_plugin_dir(kdao_factory *f, const char *dir, kdao_error **err) {
  if (f == NULL || dir == NULL)
    return kdao__fail(err, kdao_error_new(KDAO_ERR_MISUSE, "factory and dir are required"));
  struct dirent **names = NULL;
  int n = scandir(dir, &names, NULL, alphasort);
  if (n < 0)
    return kdao__fail(err, kdao__error_fmt(KDAO_ERR_IO, "cannot read plugins_dir '%s'", dir));
  int rc = KDAO_OK;
  for (int i = 0; i < n; i++) {
    const char *nm = names[i]->d_name;
    size_t len = strlen(nm);
    if (rc == KDAO_OK && len > 5 && strcmp(nm + len - 5, ".json") == 0) {
      char *path = kdao__asprintf("%s/%s", dir, nm);
      json_error_t jerr;
      unsigned long failures = kdao__alloc_failures();
      json_t *desc = path ? json_load_file(path, 0, &jerr) : NULL;
      /* jansson's lexer drops characters it has no memory for: any failure voids the parse. */
      if (path == NULL || kdao__alloc_failures() != failures)
        rc = kdao__fail(err, kdao_error_new(KDAO_ERR_NOMEM, "out of memory"));
      else if (desc == NULL)
        rc = kdao__fail(err, kdao__error_fmt(KDAO_ERR_IO, "%s:%d: %s", path, jerr.line, jerr.text));
      else
        rc = kdao__plugin_register_json(f, desc, path, err);
      json_decref(desc);
      kdao__free(path);
    }
    free(names[i]); /* scandir()'s entries are libc's */
  }
  free(names);
  return rc;
}

/* ---- life cycle ---- */

static int register_builtins(kdao_factory *f, kdao_error **err) {
  const kdao_schema_def *core[] = {&kdao__schema_apis,
                                   &kdao__schema_consumers,
                                   &kdao__schema_plugins,
                                   &kdao__schema_upstreams,
                                   &kdao__schema_targets,
                                   &kdao__schema_ssl_certificates,
                                   &kdao__schema_ssl_servers_names};
  kdao_error *e = add_entities(f, core, sizeof core / sizeof *core, true);
  if (e) return kdao__fail(err, e);
  /* Built-in plugins' migrations ship with each backend, under the plugin's name. */
  const kdao_plugin_def *plugins[] = {&kdao__plugin_acl, &kdao__plugin_basic_auth,
                                      &kdao__plugin_key_auth};
  for (size_t i = 0; i < sizeof plugins / sizeof *plugins; i++) {
    const kdao_plugin_migrations mine[] = {
        {f->ops->name, kdao__backend_migrations(f->ops, plugins[i]->name)}, {NULL, NULL}};
    kdao_plugin_def def = *plugins[i];
    def.migrations = mine;
    int rc = kdao_factory_register_plugin(f, &def, err);
    if (rc != KDAO_OK) return rc;
  }
  return KDAO_OK;
}

kdao_status kdao_factory_new(const kdao_config *cfg, kdao_factory **out, kdao_error **err) {
  if (out) *out = NULL;
  if (out == NULL)
    return kdao__fail(err, kdao_error_new(KDAO_ERR_MISUSE, "bad argument: out is NULL"));
  kdao_factory *f = kdao__calloc(1, sizeof *f);
  if (f == NULL) return kdao__fail(err, kdao_error_new(KDAO_ERR_NOMEM, "out of memory"));
  int rc = KDAO_OK;
  if (cfg) {
    /* A private copy: the caller may free theirs as soon as this returns. */
    if ((f->cfg = kdao__config_copy(cfg)) == NULL) {
      rc = kdao__fail(err, kdao_error_new(KDAO_ERR_NOMEM, "out of memory"));
      goto fail;
    }
  } else if ((rc = kdao_config_new(&f->cfg, err)) != KDAO_OK) {
    goto fail;
  }
  if ((rc = kdao_config_check(f->cfg, err)) != KDAO_OK) goto fail;
  const char *db = kdao_config_get(f->cfg, "database");
  f->ops = backend_by_name(db);
  if (f->ops == NULL) {
    rc = kdao__fail(
        err, kdao__error_fmt(KDAO_ERR_CONFIG, "database '%s' is not available in this build", db));
    goto fail;
  }
  if (!ops_complete(f->ops)) {
    rc = kdao__fail(err,
                    kdao__error_fmt(KDAO_ERR_MISUSE, "backend '%s' is incomplete", f->ops->name));
    goto fail;
  }
  if ((rc = register_builtins(f, err)) != KDAO_OK) goto fail;
  const char *dir = kdao_config_get(f->cfg, "plugins_dir");
  if (dir && (rc = kdao_factory_load_plugin_dir(f, dir, err)) != KDAO_OK) goto fail;
  *out = f;
  return KDAO_OK;
fail:
  kdao_factory_free(f);
  return rc;
}

/* Links every `foreign` field to its parent DAO and records the reverse cascade edge. */
static kdao_error *link_edge(kdao_factory *f, kdao_dao *child, size_t fi) {
  const kdao__field *fld = &child->schema->fields[fi];
  kdao_dao *parent = kdao_factory_dao(f, fld->foreign_entity);
  if (parent == NULL)
    return kdao__error_fmt(KDAO_ERR_MISUSE, "%s.%s references unknown entity '%s'",
                           child->schema->name, fld->name, fld->foreign_entity);
  int pf = kdao__schema_field_index(parent->schema, fld->foreign_field);
  if (pf < 0)
    return kdao__error_fmt(KDAO_ERR_MISUSE, "%s.%s references unknown field '%s.%s'",
                           child->schema->name, fld->name, fld->foreign_entity, fld->foreign_field);
  kdao__foreign *fg = kdao__realloc(child->foreign, (child->nforeign + 1) * sizeof *fg);
  if (fg == NULL) return kdao_error_new(KDAO_ERR_NOMEM, "out of memory");
  child->foreign = fg;
  fg[child->nforeign++] = (kdao__foreign){fi, parent, (size_t)pf};
  kdao__cascade *cs = kdao__realloc(parent->cascade, (parent->ncascade + 1) * sizeof *cs);
  if (cs == NULL) return kdao_error_new(KDAO_ERR_NOMEM, "out of memory");
  parent->cascade = cs;
  cs[parent->ncascade++] = (kdao__cascade){child, fi, (size_t)pf};
  return NULL;
}

static kdao_error *link_graph(kdao_factory *f) {
  for (size_t d = 0; d < f->ndaos; d++) {
    kdao_dao *dao = f->daos[d];
    for (size_t i = 0; i < dao->schema->nfields; i++) {
      if (dao->schema->fields[i].foreign_entity == NULL) continue;
      kdao_error *e = link_edge(f, dao, i);
      if (e) return e;
    }
  }
  return NULL;
}

kdao_status kdao_factory_connect(kdao_factory *f, kdao_error **err) {
  if (f == NULL) return kdao__fail(err, kdao_error_new(KDAO_ERR_MISUSE, "factory is NULL"));
  if (f->connected) return KDAO_OK;
  kdao_error *e = link_graph(f);
  if (e) return kdao__fail(err, e);
  kdao__free(f->schemas);
  if ((f->schemas = kdao__calloc(f->ndaos + 1, sizeof *f->schemas)) == NULL)
    return kdao__fail(err, oom_error());
  for (size_t i = 0; i < f->ndaos; i++) f->schemas[i] = f->daos[i]->schema;
  int rc = f->ops->open(f, f->cfg, &f->backend, &e);
  if (rc != KDAO_OK) {
    kdao__error_set_db(e, f->ops->name);
    return kdao__fail(err, e);
  }
  f->backend->ops = f->ops;
  f->backend->factory = f;
  f->connected = true;
  return KDAO_OK;
}

kdao_status kdao_factory_open(const kdao_config *cfg, kdao_factory **out, kdao_error **err) {
  int rc = kdao_factory_new(cfg, out, err);
  if (rc != KDAO_OK) return rc;
  rc = kdao_factory_connect(*out, err);
  if (rc != KDAO_OK) {
    kdao_factory_free(*out);
    *out = NULL;
  }
  return rc;
}

void kdao_factory_free(kdao_factory *f) {
  if (f == NULL) return;
  if (f->backend) f->ops->close(f->backend);
  for (size_t i = 0; i < f->ndaos; i++) dao_free(f->daos[i]);
  kdao__free(f->daos);
  for (size_t i = 0; i < f->nretired; i++) kdao_schema_free(f->retired[i]);
  kdao__free(f->retired);
  kdao__free(f->schemas);
  for (size_t i = 0; i < f->nplugins; i++) plugin_clear(&f->plugins[i]);
  kdao__free(f->plugins);
  kdao_config_free(f->cfg);
  kdao__free(f);
}

const char *kdao_factory_db_name(const kdao_factory *f) {
  return f && f->ops ? f->ops->name : NULL;
}

json_t *kdao_factory_infos(const kdao_factory *f) {
  if (f == NULL || f->backend == NULL) return NULL;
  return f->ops->infos(f->backend);
}

void kdao_factory_on_event(kdao_factory *f, kdao_event_fn fn, void *ud) {
  if (f == NULL) return;
  f->on_event = fn;
  f->on_event_ud = ud;
}

const char *kdao_event_type_name(kdao_event_type type) {
  switch (type) {
  case KDAO_EVENT_CREATED: return "ENTITY_CREATED";
  case KDAO_EVENT_UPDATED: return "ENTITY_UPDATED";
  case KDAO_EVENT_DELETED: return "ENTITY_DELETED";
  }
  return "ENTITY_UNKNOWN";
}

/* ---- migrations ---- */

/* Errors leaving the factory carry the backend name, as Kong's "[<backend> error] ...". */
static int fail_db(kdao_factory *f, kdao_error **err, kdao_error *e) {
  if (e) kdao__error_set_db(e, f->ops->name);
  return kdao__fail(err, e);
}

static int need_connected(kdao_factory *f, kdao_error **err) {
  if (f == NULL) return kdao__fail(err, kdao_error_new(KDAO_ERR_MISUSE, "factory is NULL"));
  if (!f->connected)
    return kdao__fail(err, kdao_error_new(KDAO_ERR_MISUSE, "factory is not connected"));
  return KDAO_OK;
}

/*
 * One identifier's migrations: a static list from a plugin or the core, or, for entities
 * that came without migrations for this backend, one generated "<table>_init" each.
 */
typedef struct mig_list {
  char *identifier;
  kdao_migration_def *defs; /* owned when generated */
  bool owned;
} mig_list;

static void mig_lists_free(mig_list *l, size_t n) {
  for (size_t i = 0; i < n; i++) {
    kdao__free(l[i].identifier);
    if (l[i].owned) migrations_free(l[i].defs);
  }
  kdao__free(l);
}

/* `owner`: the plugin whose entities these are, NULL for an entity registered alone. */
static kdao_migration_def *generated_migrations(kdao_factory *f, char *const *names, size_t n,
                                                const char *owner) {
  kdao_migration_def *m = kdao__calloc(n + 1, sizeof *m);
  if (m == NULL) return NULL;
  for (size_t i = 0; i < n; i++) {
    kdao_dao *d = kdao_factory_dao(f, names[i]);
    /* An entity replaced by a later registration is the newcomer's to create. */
    if (d == NULL || (owner != NULL && (d->plugin == NULL || strcmp(d->plugin, owner) != 0)))
      continue;
    char *ddl = f->ops->schema_ddl(f->backend, d->schema);
    char *nm = kdao__asprintf("%s_init", d->schema->table);
    if (ddl == NULL || nm == NULL) {
      kdao__free(ddl);
      kdao__free(nm);
      migrations_free(m);
      return NULL;
    }
    size_t k = 0;
    while (m[k].name) k++;
    m[k].name = nm;
    m[k].up = ddl;
  }
  return m;
}

static kdao_error *collect_migrations(kdao_factory *f, mig_list **out, size_t *nout) {
  /* core + every plugin + every entity registered outside a plugin */
  size_t cap = 1 + f->nplugins + f->ndaos, n = 0;
  mig_list *l = kdao__calloc(cap, sizeof *l);
  if (l == NULL) return kdao_error_new(KDAO_ERR_NOMEM, "out of memory");
  l[n].identifier = kdao__strdup("core");
  l[n++].defs = (kdao_migration_def *)kdao__backend_migrations(f->ops, "core");
  for (size_t i = 0; i < f->nplugins; i++) {
    kdao__plugin *p = &f->plugins[i];
    mig_list *m = &l[n++];
    m->identifier = kdao__strdup(p->name);
    if (p->migrations) {
      m->defs = p->migrations;
    } else if (p->nentities > 0) {
      m->owned = true;
      m->defs = generated_migrations(f, p->entities, p->nentities, p->name);
      if (m->defs == NULL) goto oom;
    } else {
      n--; /* a plugin with neither entities nor migrations has nothing to run */
      kdao__free(m->identifier);
      m->identifier = NULL;
    }
  }
  /* Entities registered directly (not core, not from a plugin) get generated tables. */
  for (size_t i = 0; i < f->ndaos; i++) {
    kdao_dao *d = f->daos[i];
    if (d->core || d->plugin) continue;
    mig_list *m = &l[n++];
    m->identifier = kdao__strdup(d->schema->name);
    m->owned = true;
    m->defs = generated_migrations(f, &d->schema->name, 1, NULL);
    if (m->defs == NULL || m->identifier == NULL) goto oom;
  }
  for (size_t i = 0; i < n; i++)
    if (l[i].identifier == NULL) goto oom;
  *out = l;
  *nout = n;
  return NULL;
oom:
  mig_lists_free(l, n);
  return kdao_error_new(KDAO_ERR_NOMEM, "out of memory");
}

static bool recorded(const json_t *current, const char *identifier, const char *name) {
  json_t *names = json_object_get(current, identifier);
  size_t i;
  json_t *v;
  json_array_foreach(names, i, v) {
    if (json_is_string(v) && strcmp(json_string_value(v), name) == 0) return true;
  }
  return false;
}

/* Walks every pending migration; with `apply` false it only counts them. */
static int walk_migrations(kdao_factory *f, bool apply, kdao_migration_fn progress, void *ud,
                           int *count, kdao_error **err) {
  *count = 0;
  json_t *current = NULL;
  kdao_error *e = NULL;
  if (f->ops->migrations_current(f->backend, &current, &e) != KDAO_OK) {
    /* The pending check runs before other work (the CLI checks before every command), where
     * a prefix about migrations would hide what failed: reading the database; out of memory
     * is not the database's fault either. */
    if (!apply || kdao_error_kind(e) == KDAO_ERR_NOMEM) return fail_db(f, err, e);
    kdao_error *w =
        kdao__error_fmt(KDAO_ERR_DB, "could not get current migrations: %s", kdao_error_message(e));
    kdao_error_free(e);
    return fail_db(f, err, w);
  }
  mig_list *lists = NULL;
  size_t n = 0;
  if ((e = collect_migrations(f, &lists, &n)) != NULL) {
    json_decref(current);
    return fail_db(f, err, e);
  }
  int rc = KDAO_OK;
  for (size_t i = 0; rc == KDAO_OK && i < n; i++) {
    for (const kdao_migration_def *m = lists[i].defs; m && m->name; m++) {
      if (recorded(current, lists[i].identifier, m->name)) continue;
      (*count)++;
      if (!apply) continue;
      kdao_error *me = NULL;
      if (f->ops->migration_apply(f->backend, lists[i].identifier, m->name, m->up, &me) !=
          KDAO_OK) {
        if (kdao_error_kind(me) == KDAO_ERR_NOMEM) {
          rc = fail_db(f, err, me);
          break;
        }
        kdao_error *w = kdao__error_fmt(KDAO_ERR_DB, "Error during migration %s: %s", m->name,
                                        kdao_error_message(me));
        if (w && kdao_error_code(me)) kdao__error_set_code(w, kdao_error_code(me));
        kdao_error_free(me);
        rc = fail_db(f, err, w);
        break;
      }
      if (progress) progress(lists[i].identifier, m->name, ud);
    }
  }
  mig_lists_free(lists, n);
  json_decref(current);
  return rc;
}

kdao_status kdao_factory_migrate(kdao_factory *f, kdao_migration_fn progress, void *ud, int *ran,
                                 kdao_error **err) {
  int count = 0;
  if (ran) *ran = 0;
  int rc = need_connected(f, err);
  if (rc == KDAO_OK) rc = walk_migrations(f, true, progress, ud, &count, err);
  if (ran) *ran = count;
  return rc;
}

kdao_status kdao_factory_pending_migrations(kdao_factory *f, int *pending, kdao_error **err) {
  int count = 0;
  int rc = need_connected(f, err);
  if (rc == KDAO_OK) rc = walk_migrations(f, false, NULL, NULL, &count, err);
  if (pending) *pending = count;
  return rc;
}

kdao_status kdao_factory_migrations(kdao_factory *f, json_t **out, kdao_error **err) {
  if (out) *out = NULL;
  int rc = need_connected(f, err);
  if (rc != KDAO_OK) return rc;
  kdao_error *e = NULL;
  if (f->ops->migrations_current(f->backend, out, &e) != KDAO_OK) return fail_db(f, err, e);
  return KDAO_OK;
}

kdao_status kdao_factory_drop_schema(kdao_factory *f, kdao_error **err) {
  int rc = need_connected(f, err);
  if (rc != KDAO_OK) return rc;
  const char **tables = kdao__calloc(f->ndaos + 1, sizeof *tables);
  if (tables == NULL) return kdao__fail(err, kdao_error_new(KDAO_ERR_NOMEM, "out of memory"));
  for (size_t i = 0; i < f->ndaos; i++) tables[i] = f->daos[i]->schema->table;
  kdao_error *e = NULL;
  rc = f->ops->drop_schema(f->backend, tables, f->ndaos, &e);
  kdao__free(tables);
  /* kdao_secrets went too: the next page stores (or finds another process's) new key */
  f->page_key_ready = false;
  return rc == KDAO_OK ? KDAO_OK : fail_db(f, err, e);
}

kdao_status kdao_factory_truncate_tables(kdao_factory *f, kdao_error **err) {
  int rc = need_connected(f, err);
  for (size_t i = 0; rc == KDAO_OK && i < f->ndaos; i++) rc = kdao_dao_truncate(f->daos[i], err);
  return rc;
}

kdao_status kdao_factory_purge_expired(kdao_factory *f, long long *purged, kdao_error **err) {
  long long n = 0;
  int rc = need_connected(f, err);
  if (rc == KDAO_OK) {
    kdao_error *e = NULL;
    if (f->ops->purge_expired(f->backend, f->schemas, f->ndaos, &n, &e) != KDAO_OK)
      rc = fail_db(f, err, e);
  }
  if (purged) *purged = n;
  return rc;
}
