/*
 * lua_schema.c — Kong's Lua schemas (a plugin's daos.lua and schema.lua) as kdao schema
 * definitions, and the callbacks through which the C validator calls their functions.
 *
 * Memory. A definition is built in Lua-owned memory (userdata and strings pinned in a
 * scratch table on the stack): kdao copies definitions at registration, and a Lua error
 * thrown halfway through a bad definition then leaks nothing. What must outlive
 * registration — the functions and the callback records handed to kdao as `ud` — is kept in
 * the factory's private table (`fns`, `cbs`), so it lives exactly as long as the factory.
 *
 * Callbacks. kdao calls them from inside a DAO call, on the thread of that call (the
 * factory's innermost frame). They never let a Lua error cross the C library: functions run
 * under lua_pcall and an error they raise is parked in the frame, to be raised again once
 * the library has returned. The table a Lua function sees is a copy of the entity; what the
 * function changes in it is written back to the JSON entity.
 */
#include <stdlib.h>
#include <string.h>

#include "kdao_lua.h"

/* What kdao's `ud` points to for a Lua schema or field: indexes into the private `fns`. */
typedef struct l_cb {
  kdao_lua_factory *fs;
  int fn_func;       /* field func(value, t, column) */
  int fn_default;    /* field default(t) */
  int fn_schema;     /* field schema(t) */
  int fn_self_check; /* schema self_check(schema, t, dao, is_update) */
  int schema_tbl;    /* the Lua schema table self_check receives */
  bool is_array;     /* the field is of type array: an empty default is [] */
} l_cb;

/* The compiled form of a schema a Lua `schema = function(t)` returned. */
typedef struct l_schema {
  kdao_schema *schema;
} l_schema;

/* ------------------------------------------------------------------------------------------
 * Small helpers
 * ---------------------------------------------------------------------------------------- */

static char *dup_cstr(const char *s) {
  size_t n = strlen(s) + 1;
  char *d = malloc(n);
  if (d) memcpy(d, s, n);
  return d;
}

/* tostring(v) with __tostring honoured, never raising; pushes the string. */
static void push_tostring(lua_State *L, int idx) {
  idx = kdao_lua_absindex(L, idx);
  lua_getglobal(L, "tostring");
  lua_pushvalue(L, idx);
  if (lua_pcall(L, 1, 1, 0) != 0 || !lua_isstring(L, -1)) {
    lua_pop(L, 1);
    lua_pushstring(L, "(error object is not a string)");
  }
}

/* Pushes private.fns[i]. */
static void push_fn(lua_State *L, kdao_lua_factory *fs, int i) {
  kdao_lua__push_private(L, fs);
  lua_getfield(L, -1, "fns");
  lua_rawgeti(L, -1, i);
  lua_replace(L, -3);
  lua_pop(L, 1);
}

void kdao_lua__frame_forget_check(lua_State *L, kdao_lua_frame *fr) {
  if (fr->check_ref != LUA_NOREF && fr->check_ref != LUA_REFNIL)
    luaL_unref(L, LUA_REGISTRYINDEX, fr->check_ref);
  fr->check_ref = LUA_NOREF;
  fr->check_err = NULL;
  free(fr->check_msg);
  fr->check_msg = NULL;
}

bool kdao_lua__frame_is_check(const kdao_lua_frame *fr, const kdao_error *e) {
  return fr->check_ref != LUA_NOREF && e && e == fr->check_err &&
         kdao_error_kind(e) == fr->check_kind && fr->check_msg &&
         strcmp(kdao_error_message(e), fr->check_msg) == 0;
}

void kdao_lua__frame_raise(lua_State *L, kdao_lua_frame *fr) {
  if (fr->raise_ref == LUA_NOREF)
    fr->raise_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  else
    lua_pop(L, 1);
}

/* The frame a callback runs in, or NULL when kdao calls outside any Lua DAO call. */
static kdao_lua_frame *cb_frame(const l_cb *cb) {
  kdao_lua_frame *fr = cb->fs->call;
  if (!fr || !lua_checkstack(fr->L, 16)) return NULL;
  return fr;
}

/* Writes the Lua view of the entity (at `t`) back; a failure is parked as a raise. */
static void cb_writeback(lua_State *L, kdao_lua_frame *fr, int t, json_t *entity) {
  const char *why = NULL;
  if (json_is_object(entity) && kdao_lua__writeback(L, t, entity, &why) != 0) {
    lua_pushfstring(L, "kdao: cannot store the entity a schema function changed: %s", why);
    kdao_lua__frame_raise(L, fr);
  }
}

/* ------------------------------------------------------------------------------------------
 * Callbacks
 * ---------------------------------------------------------------------------------------- */

static int cb_func(kdao_dao *dao, const char *field, json_t *value, json_t *entity,
                   json_t **new_fields, char **message, void *ud) {
  (void)dao;
  (void)value; /* Kong passes t[column]: taken from the table view so both are one value */
  l_cb *cb = ud;
  kdao_lua_frame *fr = cb_frame(cb);
  if (!fr) return 0;
  lua_State *L = fr->L;
  int top = lua_gettop(L);
  kdao_lua__pushjson(L, entity);
  int t = lua_gettop(L);
  push_fn(L, cb->fs, cb->fn_func);
  lua_getfield(L, t, field);
  lua_pushvalue(L, t);
  lua_pushstring(L, field);
  int rc = 0;
  if (lua_pcall(L, 3, 3, 0) != 0) {
    kdao_lua__frame_raise(L, fr);
    *message = dup_cstr("func raised an error");
    lua_settop(L, top);
    return 1;
  }
  cb_writeback(L, fr, t, entity);
  if (lua_isboolean(L, t + 1) && !lua_toboolean(L, t + 1) && !lua_isnil(L, t + 2)) {
    push_tostring(L, t + 2);
    *message = dup_cstr(lua_tostring(L, -1));
    rc = 1;
  } else if (lua_istable(L, t + 3)) {
    const char *why = NULL;
    *new_fields = kdao_lua__tojson(L, t + 3, NULL, true, &why);
    if (!*new_fields) {
      lua_pushfstring(L, "kdao: cannot convert new fields of '%s': %s", field, why);
      kdao_lua__frame_raise(L, fr);
    }
  }
  lua_settop(L, top);
  return rc;
}

static json_t *cb_default(json_t *entity, void *ud) {
  l_cb *cb = ud;
  kdao_lua_frame *fr = cb_frame(cb);
  if (!fr) return NULL;
  lua_State *L = fr->L;
  int top = lua_gettop(L);
  kdao_lua__pushjson(L, entity);
  int t = lua_gettop(L);
  push_fn(L, cb->fs, cb->fn_default);
  lua_pushvalue(L, t);
  json_t *out = NULL;
  if (lua_pcall(L, 1, 1, 0) != 0) {
    kdao_lua__frame_raise(L, fr);
  } else {
    cb_writeback(L, fr, t, entity);
    if (!lua_isnil(L, -1)) {
      const char *why = NULL;
      json_t *shape = cb->is_array ? json_array() : NULL; /* an empty default is [] */
      out = kdao_lua__tojson(L, -1, shape, false, &why);
      json_decref(shape);
      if (!out) {
        lua_pushfstring(L, "kdao: cannot convert a default value: %s", why);
        kdao_lua__frame_raise(L, fr);
      }
    }
  }
  lua_settop(L, top);
  return out;
}

static int build_def_protected(lua_State *L);

/* Compiles (once per Lua table) a schema a `schema = function(t)` returned; NULL + message. */
static const kdao_schema *compiled_schema(lua_State *L, kdao_lua_factory *fs, int tbl,
                                          char **message) {
  kdao_lua__push_private(L, fs);
  lua_getfield(L, -1, "compiled");
  lua_pushvalue(L, tbl);
  lua_rawget(L, -2);
  l_schema *ls = lua_touserdata(L, -1);
  lua_pop(L, 1);
  if (ls) {
    lua_pop(L, 2);
    return ls->schema;
  }
  lua_pushcfunction(L, build_def_protected);
  lua_pushlightuserdata(L, fs);
  lua_pushvalue(L, tbl);
  if (lua_pcall(L, 2, 1, 0) != 0) {
    *message = dup_cstr(lua_tostring(L, -1) ? lua_tostring(L, -1) : "invalid schema");
    lua_pop(L, 3);
    return NULL;
  }
  ls = lua_touserdata(L, -1);
  lua_pushvalue(L, tbl);
  lua_pushvalue(L, -2);
  lua_rawset(L, -4); /* compiled[tbl] = schema userdata */
  lua_pop(L, 3);
  return ls->schema;
}

static const kdao_schema *cb_schema(kdao_dao *dao, json_t *entity, char **message, void *ud) {
  (void)dao;
  l_cb *cb = ud;
  kdao_lua_frame *fr = cb_frame(cb);
  if (!fr) return NULL;
  lua_State *L = fr->L;
  int top = lua_gettop(L);
  kdao_lua__pushjson(L, entity);
  int t = lua_gettop(L);
  push_fn(L, cb->fs, cb->fn_schema);
  lua_pushvalue(L, t);
  const kdao_schema *s = NULL;
  if (lua_pcall(L, 1, 2, 0) != 0) {
    kdao_lua__frame_raise(L, fr);
  } else if (lua_istable(L, t + 1)) {
    s = compiled_schema(L, cb->fs, t + 1, message);
  } else if (!lua_isnil(L, t + 2)) {
    push_tostring(L, t + 2);
    *message = dup_cstr(lua_tostring(L, -1));
  }
  lua_settop(L, top);
  return s;
}

/* Is the value at idx a Kong error object (the shared error metatable)? */
static bool is_error_object(lua_State *L, int idx) {
  if (!lua_getmetatable(L, idx)) return false;
  luaL_getmetatable(L, KDAO_LUA_ERROR);
  bool same = lua_rawequal(L, -1, -2);
  lua_pop(L, 2);
  return same;
}

static void remember_check(lua_State *L, kdao_lua_frame *fr, int idx, const kdao_error *e) {
  char *msg = dup_cstr(kdao_error_message(e));
  if (!msg) return;
  kdao_lua__frame_forget_check(L, fr);
  lua_pushvalue(L, idx);
  fr->check_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  fr->check_err = e;
  fr->check_kind = kdao_error_kind(e);
  fr->check_msg = msg;
}

static kdao_error *cb_self_check(kdao_dao *dao, const kdao_schema *schema, json_t *entity,
                                 kdao_mode mode, void *ud) {
  (void)schema;
  l_cb *cb = ud;
  kdao_lua_frame *fr = cb_frame(cb);
  if (!fr) return NULL;
  lua_State *L = fr->L;
  int top = lua_gettop(L);
  kdao_lua__pushjson(L, entity);
  int t = lua_gettop(L);
  push_fn(L, cb->fs, cb->fn_self_check);
  push_fn(L, cb->fs, cb->schema_tbl);
  lua_pushvalue(L, t);
  kdao_lua__push_dao(L, cb->fs, dao);
  lua_pushboolean(L, mode != KDAO_MODE_INSERT);
  kdao_error *e = NULL;
  if (lua_pcall(L, 4, 2, 0) != 0) {
    kdao_lua__frame_raise(L, fr);
    e = kdao_error_new(KDAO_ERR_SCHEMA, "self_check raised an error");
  } else {
    cb_writeback(L, fr, t, entity);
    /* Kong rejects only on an explicit false. */
    if (lua_isboolean(L, t + 1) && !lua_toboolean(L, t + 1)) {
      e = kdao_lua__error_from_lua(L, t + 2);
      /* An error object (or no error at all) reaches the caller unchanged, as in Kong: the
       * latest one, the top-level self_check running after the nested ones. */
      if (e && (lua_isnil(L, t + 2) || is_error_object(L, t + 2))) remember_check(L, fr, t + 2, e);
    }
  }
  lua_settop(L, top);
  return e;
}

/* ------------------------------------------------------------------------------------------
 * Lua errors -> kdao_error
 * ---------------------------------------------------------------------------------------- */

/* Kong's unique/foreign tbl holds messages; kdao's constructor wants the values back. */
static json_t *values_from_messages(lua_State *L, int tbl, const char *prefix) {
  size_t plen = strlen(prefix);
  int top = lua_gettop(L);
  json_t *values = json_object();
  lua_pushnil(L);
  while (values && lua_next(L, tbl) != 0) {
    size_t len;
    const char *m = lua_type(L, -1) == LUA_TSTRING ? lua_tolstring(L, -1, &len) : NULL;
    bool ok = lua_type(L, -2) == LUA_TSTRING && m && len > plen + 1 &&
              strncmp(m, prefix, plen) == 0 && m[len - 1] == '\'';
    json_t *v = ok ? json_stringn(m + plen, len - plen - 1) : NULL;
    if (!v || json_object_set_new(values, lua_tostring(L, -2), v) != 0) {
      json_decref(values);
      values = NULL;
      lua_pop(L, 1);
      break;
    }
    lua_pop(L, 1);
  }
  if (values) return values;
  lua_settop(L, top); /* lua_next left its key on the stack when we broke out */
  return NULL;
}

static kdao_error *error_with_tbl(lua_State *L, int kind, int tbl) {
  json_t *fields = NULL;
  if (kind == KDAO_ERR_UNIQUE)
    fields = values_from_messages(L, tbl, "already exists with value '");
  else if (kind == KDAO_ERR_FOREIGN)
    fields = values_from_messages(L, tbl, "does not exist with value '");
  else
    fields = kdao_lua__tojson(L, tbl, NULL, true, NULL);
  if (!fields) return NULL;
  kdao_error *e = kdao_error_new_fields(kind, fields);
  json_decref(fields);
  return e;
}

kdao_error *kdao_lua__error_from_lua(lua_State *L, int idx) {
  static const struct {
    const char *flag;
    int kind;
  } kinds[] = {{"unique", KDAO_ERR_UNIQUE},
               {"foreign", KDAO_ERR_FOREIGN},
               {"schema", KDAO_ERR_SCHEMA},
               {"db", KDAO_ERR_DB}};
  idx = kdao_lua_absindex(L, idx);
  int top = lua_gettop(L);
  kdao_error *e = NULL;
  if (lua_istable(L, idx)) {
    int kind = 0;
    for (size_t i = 0; !kind && i < sizeof kinds / sizeof kinds[0]; i++) {
      lua_getfield(L, idx, kinds[i].flag);
      if (lua_toboolean(L, -1)) kind = kinds[i].kind;
      lua_pop(L, 1);
    }
    if (!kind) /* a plain table: Errors.schema(tbl) */
      e = error_with_tbl(L, KDAO_ERR_SCHEMA, idx);
    else {
      lua_getfield(L, idx, "tbl");
      if (lua_istable(L, -1)) e = error_with_tbl(L, kind, lua_gettop(L));
      if (!e) {
        lua_getfield(L, idx, "message");
        push_tostring(L, -1);
        e = kdao_error_new(kind, lua_tostring(L, -1));
      }
    }
  } else {
    if (lua_isnil(L, idx))
      lua_pushliteral(L, "");
    else
      push_tostring(L, idx);
    e = kdao_error_new(KDAO_ERR_SCHEMA, lua_tostring(L, -1));
  }
  lua_settop(L, top);
  return e;
}

/* ------------------------------------------------------------------------------------------
 * Definitions
 * ---------------------------------------------------------------------------------------- */

typedef struct l_builder {
  lua_State *L;
  kdao_lua_factory *fs;
  int scratch; /* table pinning what the definition points to */
  int nscratch;
  int fns;          /* private.fns */
  int cbs;          /* private.cbs */
  const char *what; /* name of what is being built, for messages */
} l_builder;

static void *b_alloc(l_builder *b, size_t size) {
  void *p = lua_newuserdata(b->L, size);
  memset(p, 0, size);
  lua_rawseti(b->L, b->scratch, ++b->nscratch);
  return p;
}

/* The string at idx, pinned for the life of the definition. */
static const char *b_str(l_builder *b, int idx, const char *attr) {
  if (lua_type(b->L, idx) != LUA_TSTRING)
    luaL_error(b->L, "invalid schema for '%s': '%s' must be a string", b->what, attr);
  lua_pushvalue(b->L, idx);
  const char *s = lua_tostring(b->L, -1);
  lua_rawseti(b->L, b->scratch, ++b->nscratch);
  return s;
}

/* Keeps the value at idx alive with the factory; returns its index in private.fns. */
static int b_keep(l_builder *b, int idx) {
  lua_pushvalue(b->L, idx);
  lua_rawseti(b->L, b->fns, ++b->fs->nfns);
  return b->fs->nfns;
}

static l_cb *b_cb(l_builder *b, l_cb *cb) {
  if (cb) return cb;
  cb = lua_newuserdata(b->L, sizeof *cb);
  memset(cb, 0, sizeof *cb);
  cb->fs = b->fs;
  lua_rawseti(b->L, b->cbs, (int)lua_objlen(b->L, b->cbs) + 1);
  return cb;
}

static kdao_type type_from_name(const char *t) {
  static const struct {
    const char *name;
    kdao_type type;
  } types[] = {{"id", KDAO_TYPE_ID},
               {"string", KDAO_TYPE_STRING},
               {"number", KDAO_TYPE_NUMBER},
               {"boolean", KDAO_TYPE_BOOLEAN},
               {"array", KDAO_TYPE_ARRAY},
               {"table", KDAO_TYPE_TABLE},
               {"timestamp", KDAO_TYPE_TIMESTAMP},
               {"url", KDAO_TYPE_URL}};
  for (size_t i = 0; t && i < sizeof types / sizeof types[0]; i++)
    if (strcmp(t, types[i].name) == 0) return types[i].type;
  return KDAO_TYPE_ANY; /* Kong never checks other types ("text", ...) */
}

static bool b_flag(lua_State *L, int idx, const char *name) {
  lua_getfield(L, idx, name);
  bool on = lua_toboolean(L, -1);
  lua_pop(L, 1);
  return on;
}

static void build_def(l_builder *b, kdao_schema_def *def, const char *name, int sidx);

static void build_default(l_builder *b, kdao_field_def *fd, l_cb **cb, int v) {
  lua_State *L = b->L;
  if (lua_isfunction(L, v)) {
    *cb = b_cb(b, *cb);
    (*cb)->fn_default = b_keep(b, v);
    (*cb)->is_array = fd->type == KDAO_TYPE_ARRAY;
    fd->default_fn = cb_default;
    return;
  }
  json_t *shape = fd->type == KDAO_TYPE_ARRAY ? json_array() : NULL;
  const char *why = NULL;
  json_t *j = kdao_lua__tojson(L, v, shape, false, &why);
  json_decref(shape);
  char *text = j ? json_dumps(j, JSON_ENCODE_ANY | JSON_COMPACT) : NULL;
  json_decref(j);
  if (!text)
    luaL_error(L, "invalid schema for '%s': bad default of '%s': %s", b->what, fd->name,
               why ? why : "not enough memory");
  lua_pushstring(L, text);
  free(text);
  fd->default_json = lua_tostring(L, -1);
  lua_rawseti(L, b->scratch, ++b->nscratch);
}

static const char *const *build_enum(l_builder *b, int v) {
  lua_State *L = b->L;
  luaL_checktype(L, v, LUA_TTABLE);
  size_t n = lua_objlen(L, v);
  const char **vals = b_alloc(b, (n + 1) * sizeof *vals);
  for (size_t i = 0; i < n; i++) {
    lua_rawgeti(L, v, (int)i + 1);
    lua_pushvalue(L, -1);
    const char *s = lua_tostring(L, -1); /* numbers become their text, as Kong prints them */
    if (!s) luaL_error(L, "invalid schema for '%s': enum values must be strings", b->what);
    vals[i] = s;
    lua_rawseti(L, b->scratch, ++b->nscratch);
    lua_pop(L, 1);
  }
  return vals;
}

static void build_field(l_builder *b, kdao_field_def *fd, int fidx) {
  lua_State *L = b->L;
  if (!lua_istable(L, fidx))
    luaL_error(L, "invalid schema for '%s': field '%s' must be a table", b->what, fd->name);
  l_cb *cb = NULL;
  int top = lua_gettop(L);

  lua_getfield(L, fidx, "type");
  fd->type = type_from_name(lua_tostring(L, -1));
  fd->flags = (b_flag(L, fidx, "required") ? KDAO_FIELD_REQUIRED : 0) |
              (b_flag(L, fidx, "unique") ? KDAO_FIELD_UNIQUE : 0) |
              (b_flag(L, fidx, "immutable") ? KDAO_FIELD_IMMUTABLE : 0) |
              (b_flag(L, fidx, "dao_insert_value") ? KDAO_FIELD_INSERT_VALUE : 0);

  lua_getfield(L, fidx, "default");
  if (!lua_isnil(L, -1)) build_default(b, fd, &cb, lua_gettop(L));
  lua_getfield(L, fidx, "foreign");
  if (lua_type(L, -1) == LUA_TSTRING) fd->foreign = b_str(b, -1, "foreign");
  lua_getfield(L, fidx, "enum");
  if (!lua_isnil(L, -1)) fd->enum_values = build_enum(b, lua_gettop(L));
  lua_getfield(L, fidx, "regex");
  if (!lua_isnil(L, -1)) fd->regex = b_str(b, -1, "regex");
  lua_getfield(L, fidx, "func");
  if (lua_isfunction(L, -1)) {
    cb = b_cb(b, cb);
    cb->fn_func = b_keep(b, -1);
    fd->func = cb_func;
  }
  lua_getfield(L, fidx, "schema");
  if (lua_isfunction(L, -1)) {
    cb = b_cb(b, cb);
    cb->fn_schema = b_keep(b, -1);
    fd->schema_fn = cb_schema;
  } else if (lua_istable(L, -1)) {
    kdao_schema_def *nested = b_alloc(b, sizeof *nested);
    build_def(b, nested, NULL, lua_gettop(L));
    fd->schema = nested;
  }
  fd->ud = cb;
  lua_settop(L, top);
}

static int field_name_cmp(const void *a, const void *b) {
  return strcmp(((const kdao_field_def *)a)->name, ((const kdao_field_def *)b)->name);
}

static void build_fields(l_builder *b, kdao_schema_def *def, int sidx) {
  lua_State *L = b->L;
  lua_getfield(L, sidx, "fields");
  int fields = lua_gettop(L);
  if (!lua_istable(L, fields))
    luaL_error(L, "invalid schema for '%s': 'fields' must be a table", b->what);
  size_t n = 0;
  lua_pushnil(L);
  while (lua_next(L, fields) != 0) {
    lua_pop(L, 1);
    n++;
  }
  kdao_field_def *fd = b_alloc(b, (n + 1) * sizeof *fd);
  size_t i = 0;
  lua_pushnil(L);
  while (lua_next(L, fields) != 0) {
    fd[i].name = b_str(b, -2, "fields");
    build_field(b, &fd[i], lua_gettop(L));
    lua_pop(L, 1);
    i++;
  }
  qsort(fd, n, sizeof *fd, field_name_cmp); /* deterministic, whatever pairs() did */
  def->fields = fd;
  lua_pop(L, 1);
}

static const char *const *build_primary_key(l_builder *b, int sidx) {
  lua_State *L = b->L;
  lua_getfield(L, sidx, "primary_key");
  if (!lua_istable(L, -1))
    luaL_error(L, "invalid schema for '%s': 'primary_key' must be an array", b->what);
  size_t n = lua_objlen(L, -1);
  const char **pk = b_alloc(b, (n + 1) * sizeof *pk);
  for (size_t i = 0; i < n; i++) {
    lua_rawgeti(L, -1, (int)i + 1);
    pk[i] = b_str(b, -1, "primary_key");
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
  return pk;
}

/* Fills `def` from the Lua schema at sidx; `name` NULL for nested and config schemas. */
static void build_def(l_builder *b, kdao_schema_def *def, const char *name, int sidx) {
  lua_State *L = b->L;
  sidx = kdao_lua_absindex(L, sidx);
  if (!lua_istable(L, sidx))
    luaL_error(L, "invalid schema for '%s': a schema must be a table", b->what);
  def->version = KDAO_DEF_VERSION;
  def->name = name;
  if (name) {
    lua_getfield(L, sidx, "table");
    def->table = lua_isnil(L, -1) ? name : b_str(b, -1, "table");
    lua_pop(L, 1);
    def->primary_key = build_primary_key(b, sidx);
  }
  build_fields(b, def, sidx);
  def->flags = (b_flag(L, sidx, "flexible") ? KDAO_SCHEMA_FLEXIBLE : 0) |
               (b_flag(L, sidx, "no_consumer") ? KDAO_SCHEMA_NO_CONSUMER : 0);
  lua_getfield(L, sidx, "self_check");
  if (lua_isfunction(L, -1)) {
    l_cb *cb = b_cb(b, NULL);
    cb->fn_self_check = b_keep(b, -1);
    cb->schema_tbl = b_keep(b, sidx);
    def->self_check = cb_self_check;
    def->ud = cb;
  }
  lua_pop(L, 1);
}

/* Sets up a builder: pushes the scratch table, private.fns and private.cbs. */
static void builder_open(l_builder *b, lua_State *L, kdao_lua_factory *fs, const char *what) {
  b->L = L;
  b->fs = fs;
  b->what = what;
  b->nscratch = 0;
  lua_newtable(L);
  b->scratch = lua_gettop(L);
  kdao_lua__push_private(L, fs);
  lua_getfield(L, -1, "fns");
  lua_getfield(L, -2, "cbs");
  lua_remove(L, -3);
  b->fns = b->scratch + 1;
  b->cbs = b->scratch + 2;
}

static int schema_gc(lua_State *L) {
  l_schema *ls = luaL_checkudata(L, 1, KDAO_LUA_SCHEMA);
  kdao_schema_free(ls->schema);
  ls->schema = NULL;
  return 0;
}

/* (fs lightuserdata, schema table) -> schema userdata; raises on an invalid schema. */
static int build_def_protected(lua_State *L) {
  kdao_lua_factory *fs = lua_touserdata(L, 1);
  /* Inert first: the compiled schema is owned by the userdata as soon as it exists. */
  l_schema *ls = lua_newuserdata(L, sizeof *ls);
  ls->schema = NULL;
  if (luaL_newmetatable(L, KDAO_LUA_SCHEMA)) {
    lua_pushcfunction(L, schema_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_setmetatable(L, -2);
  int ud = lua_gettop(L);
  l_builder b;
  builder_open(&b, L, fs, "schema function result");
  kdao_schema_def *def = b_alloc(&b, sizeof *def);
  build_def(&b, def, NULL, 2);
  kdao_error *err = NULL;
  if (kdao_schema_compile(def, &ls->schema, &err) != KDAO_OK) {
    lua_pushstring(L, kdao_error_message(err));
    kdao_error_free(err);
    return lua_error(L);
  }
  lua_pushvalue(L, ud);
  return 1;
}

/* Raises the registration error `err` (freed) as a Lua error. */
static int raise_kdao(lua_State *L, kdao_error *err) {
  lua_pushstring(L, err ? kdao_error_message(err) : "not enough memory");
  kdao_error_free(err);
  return lua_error(L);
}

static kdao_lua_factory *unconnected(lua_State *L) {
  kdao_lua_factory *fs = luaL_checkudata(L, 1, KDAO_LUA_FACTORY);
  if (!fs->f) luaL_error(L, "attempt to use a closed factory");
  return fs;
}

/* Remembers which Lua schema a DAO came from (events use its marshall_event). */
static void remember_schema(lua_State *L, kdao_lua_factory *fs, const char *name, int sidx) {
  kdao_lua__push_private(L, fs);
  lua_getfield(L, -1, "lua_schemas");
  lua_pushvalue(L, sidx);
  lua_setfield(L, -2, name);
  lua_pop(L, 2);
}

/* Migrations of one backend: an array of {name = ..., up = "<statements>"}. */
static const kdao_migration_def *build_migrations(l_builder *b, int tbl) {
  lua_State *L = b->L;
  size_t n = lua_objlen(L, tbl), k = 0;
  kdao_migration_def *m = b_alloc(b, (n + 1) * sizeof *m);
  for (size_t i = 1; i <= n; i++) {
    lua_rawgeti(L, tbl, (int)i);
    lua_getfield(L, -1, "name");
    lua_getfield(L, -2, "up");
    /* Kong's function migrations (`up = function(db, ...)`) have no C equivalent. */
    if (lua_type(L, -2) == LUA_TSTRING && lua_type(L, -1) == LUA_TSTRING) {
      m[k].name = b_str(b, -2, "name");
      m[k].up = b_str(b, -1, "up");
      k++;
    }
    lua_pop(L, 3);
  }
  return m;
}

int kdao_lua__register_plugin(lua_State *L) {
  kdao_lua_factory *fs = unconnected(L);
  const char *name = luaL_checkstring(L, 2);
  lua_settop(L, 5);
  l_builder b;
  builder_open(&b, L, fs, name);
  kdao_plugin_def *def = b_alloc(&b, sizeof *def);
  def->version = KDAO_DEF_VERSION;
  def->name = name;
  if (!lua_isnil(L, 3)) {
    kdao_schema_def *config = b_alloc(&b, sizeof *config);
    build_def(&b, config, NULL, 3);
    def->config = config;
  }
  if (lua_istable(L, 4)) {
    size_t n = 0, i = 0;
    lua_pushnil(L);
    while (lua_next(L, 4) != 0) {
      lua_pop(L, 1);
      n++;
    }
    const kdao_schema_def **ents = b_alloc(&b, (n + 1) * sizeof *ents);
    lua_pushnil(L);
    while (lua_next(L, 4) != 0) {
      kdao_schema_def *e = b_alloc(&b, sizeof *e);
      const char *dao_name = b_str(&b, -2, "daos");
      b.what = dao_name;
      build_def(&b, e, dao_name, -1);
      remember_schema(L, fs, dao_name, lua_gettop(L));
      ents[i++] = e;
      lua_pop(L, 1);
    }
    def->entities = ents;
  }
  /* {<backend> = {...}, ...}: every list is passed on, the factory picks its backend's. */
  if (lua_istable(L, 5)) {
    size_t n = 0, i = 0;
    lua_pushnil(L);
    while (lua_next(L, 5) != 0) {
      lua_pop(L, 1);
      n++;
    }
    kdao_plugin_migrations *pm = b_alloc(&b, (n + 1) * sizeof *pm);
    lua_pushnil(L);
    while (lua_next(L, 5) != 0) {
      if (lua_type(L, -2) == LUA_TSTRING && lua_istable(L, -1)) {
        pm[i].backend = b_str(&b, -2, "migrations");
        pm[i++].migrations = build_migrations(&b, lua_gettop(L));
      }
      lua_pop(L, 1);
    }
    def->migrations = pm;
  }
  kdao_error *err = NULL;
  if (kdao_factory_register_plugin(fs->f, def, &err) != KDAO_OK) return raise_kdao(L, err);
  lua_pushboolean(L, 1);
  return 1;
}

int kdao_lua__register_entity(lua_State *L) {
  kdao_lua_factory *fs = unconnected(L);
  const char *name = luaL_checkstring(L, 2);
  luaL_checktype(L, 3, LUA_TTABLE);
  lua_settop(L, 3);
  l_builder b;
  builder_open(&b, L, fs, name);
  kdao_schema_def *def = b_alloc(&b, sizeof *def);
  build_def(&b, def, name, 3);
  kdao_error *err = NULL;
  if (kdao_factory_register_entity(fs->f, def, &err) != KDAO_OK) return raise_kdao(L, err);
  remember_schema(L, fs, name, 3);
  lua_pushboolean(L, 1);
  return 1;
}
