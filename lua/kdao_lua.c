/*
 * kdao_lua.c — `require "kdao"`: libkdao for LuaJIT 2.1 / Lua 5.1, shaped like Kong 0.10.4's
 * DAO so that Kong plugin code runs on it unchanged (kong/dao/factory.lua builds on this).
 *
 * Two types, in the manner of liolib.c:
 *   "kdao.factory"  kdao.new(values, file) -> an unconnected factory; register_plugin /
 *                   register_entity, then connect(); afterwards `factory.<dao name>` is a DAO
 *                   (DAOs are looked up before methods, as in Kong).
 *   "kdao.dao"      insert, find, find_all, find_page, count, update, delete, truncate with
 *                   Kong's arguments, returns and raised "bad argument" errors.
 * Userdata are created inert (NULL handles) before any C resource is acquired, so a Lua
 * error never leaks one; __gc is idempotent and close() may be called early.
 *
 * Errors are Kong's error objects: {[kind] = true, message, tbl, db_name} with the shared
 * metatable kdao.error_mt (tostring gives "[<db> error] <message>").
 *
 * Per-factory Lua state lives in the factory's environment table: the DAOs by name (what
 * __index finds), fields Lua code sets (kong_config, plugin_names, ...) and, under a light
 * userdata key no Lua code can form, a private table: callback functions, compiled schemas,
 * the events handler. C callbacks reach it through a weak registry map fs -> environment,
 * which never keeps a factory alive.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kdao_lua.h"

static char PRIVATE_KEY; /* address used as the private table's key */
static const char ENVS[] = "kdao.envs";

/* What find/find_all put in place of a value that is not UTF-8: a match for nothing. */
static char random_value[33];

#ifdef KDAO_LUA_COMPAT
void luaL_setfuncs(lua_State *L, const luaL_Reg *l, int nup) {
  luaL_checkstack(L, nup, "too many upvalues");
  for (; l->name; l++) {
    for (int i = 0; i < nup; i++) lua_pushvalue(L, -nup);
    lua_pushcclosure(L, l->func, nup);
    lua_setfield(L, -(nup + 2), l->name);
  }
  lua_pop(L, nup);
}

void *luaL_testudata(lua_State *L, int ud, const char *tname) {
  void *p = lua_touserdata(L, ud);
  if (!p || !lua_getmetatable(L, ud)) return NULL;
  luaL_getmetatable(L, tname);
  if (!lua_rawequal(L, -1, -2)) p = NULL;
  lua_pop(L, 2);
  return p;
}

void luaL_setmetatable(lua_State *L, const char *tname) {
  luaL_getmetatable(L, tname);
  lua_setmetatable(L, -2);
}
#endif

/* ------------------------------------------------------------------------------------------
 * Errors: Kong's error_mt and printable_mt
 * ---------------------------------------------------------------------------------------- */

static void call_tostring(lua_State *L, int idx) {
  idx = kdao_lua_absindex(L, idx);
  lua_getglobal(L, "tostring");
  lua_pushvalue(L, idx);
  lua_call(L, 1, 1);
}

static int err_tostring(lua_State *L) {
  lua_getfield(L, 1, "db_name");
  lua_getfield(L, 1, "message");
  call_tostring(L, -1);
  if (lua_isstring(L, 2))
    lua_pushfstring(L, "[%s error] %s", lua_tostring(L, 2), lua_tostring(L, -1));
  return 1;
}

static bool has_metatable(lua_State *L, int idx, const char *tname) {
  if (!lua_getmetatable(L, idx)) return false;
  luaL_getmetatable(L, tname);
  bool same = lua_rawequal(L, -1, -2);
  lua_pop(L, 2);
  return same;
}

/* a .. b where one side carries `tname`: that side goes through tostring. */
static int concat_as_string(lua_State *L, const char *tname) {
  lua_settop(L, 2);
  int side = has_metatable(L, 1, tname) ? 1 : 2;
  call_tostring(L, side);
  lua_replace(L, side);
  lua_concat(L, 2);
  return 1;
}

static int err_concat(lua_State *L) { return concat_as_string(L, KDAO_LUA_ERROR); }

static int printable_concat(lua_State *L) { return concat_as_string(L, KDAO_LUA_PRINTABLE); }

/* One printable item: arrays joined by ",", maps printed recursively, others tostring'd. */
static void push_printable_value(lua_State *L, int v) {
  if (!lua_istable(L, v)) {
    call_tostring(L, v);
    return;
  }
  if (kdao_lua__is_array(L, v)) {
    luaL_Buffer b;
    int n = (int)lua_objlen(L, v);
    luaL_buffinit(L, &b);
    for (int i = 1; i <= n; i++) {
      if (i > 1) luaL_addchar(&b, ',');
      lua_rawgeti(L, v, i);
      call_tostring(L, -1);
      lua_remove(L, -2);
      luaL_addvalue(&b);
    }
    luaL_pushresult(&b);
    return;
  }
  lua_pushvalue(L, v);
  luaL_setmetatable(L, KDAO_LUA_PRINTABLE);
  call_tostring(L, -1);
  lua_remove(L, -2);
}

/*
 * Kong's printable_mt: `key=value` items joined by one space. Kong printed in pairs() order;
 * keys are sorted here (the order kdao's C messages use), non-string keys first.
 */
static int printable_tostring(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_settop(L, 1);
  lua_newtable(L); /* 2: string keys */
  lua_newtable(L); /* 3: items */
  int nkeys = 0, nitems = 0;
  lua_pushnil(L);
  while (lua_next(L, 1) != 0) {
    lua_pop(L, 1);
    if (lua_type(L, -1) == LUA_TSTRING) {
      lua_pushvalue(L, -1);
      lua_rawseti(L, 2, ++nkeys);
    } else {
      lua_pushvalue(L, -1);
      lua_gettable(L, 1);
      push_printable_value(L, lua_gettop(L));
      lua_rawseti(L, 3, ++nitems);
      lua_pop(L, 1);
    }
  }
  lua_getglobal(L, "table");
  lua_getfield(L, -1, "sort");
  lua_pushvalue(L, 2);
  lua_call(L, 1, 0);
  lua_pop(L, 1);
  for (int i = 1; i <= nkeys; i++) {
    lua_rawgeti(L, 2, i);
    lua_pushvalue(L, -1);
    lua_rawget(L, 1);
    push_printable_value(L, lua_gettop(L));
    lua_pushfstring(L, "%s=%s", lua_tostring(L, -3), lua_tostring(L, -1));
    lua_rawseti(L, 3, ++nitems);
    lua_pop(L, 3);
  }
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  for (int i = 1; i <= nitems; i++) {
    if (i > 1) luaL_addchar(&b, ' ');
    lua_rawgeti(L, 3, i);
    luaL_addvalue(&b);
  }
  luaL_pushresult(&b);
  return 1;
}

/* Kong's four kinds are flags; kdao's own (config, io, ...) are db errors with `kind` set. */
void kdao_lua__push_error(lua_State *L, const kdao_error *e, const char *db_name) {
  int kind = kdao_error_kind(e);
  lua_createtable(L, 0, 5);
  switch (kind) {
  case KDAO_ERR_DB:
  case KDAO_ERR_UNIQUE:
  case KDAO_ERR_FOREIGN:
  case KDAO_ERR_SCHEMA:
    lua_pushboolean(L, 1);
    lua_setfield(L, -2, kdao_error_kind_name(kind));
    break;
  default:
    lua_pushboolean(L, 1);
    lua_setfield(L, -2, "db");
    lua_pushstring(L, kdao_error_kind_name(kind));
    lua_setfield(L, -2, "kind");
  }
  if (!db_name) db_name = kdao_error_db_name(e);
  if (db_name) {
    lua_pushstring(L, db_name);
    lua_setfield(L, -2, "db_name");
  }
  const json_t *fields = kdao_error_fields(e);
  if (fields) {
    kdao_lua__pushjson(L, fields);
    luaL_setmetatable(L, KDAO_LUA_PRINTABLE);
    lua_setfield(L, -2, "tbl");
  }
  lua_pushstring(L, kdao_error_message(e));
  lua_setfield(L, -2, "message");
  luaL_setmetatable(L, KDAO_LUA_ERROR);
}

/* Kong's factory-level string errors: "[<db> error] <message>". */
static void push_error_string(lua_State *L, const kdao_error *e, const char *db_name) {
  if (kdao_error_db_name(e) || !db_name)
    lua_pushstring(L, e ? kdao_error_string(e) : "not enough memory");
  else
    lua_pushfstring(L, "[%s error] %s", db_name, kdao_error_message(e));
}

/* nil, "<error string>" for factory methods; frees `e`. */
static int fail_string(lua_State *L, kdao_error *e, const char *db_name) {
  lua_pushnil(L);
  push_error_string(L, e, db_name);
  kdao_error_free(e);
  return 2;
}

/* ------------------------------------------------------------------------------------------
 * Factory state
 * ---------------------------------------------------------------------------------------- */

static void push_env(lua_State *L, kdao_lua_factory *fs) {
  lua_getfield(L, LUA_REGISTRYINDEX, ENVS);
  lua_pushlightuserdata(L, fs);
  lua_rawget(L, -2);
  lua_remove(L, -2);
}

void kdao_lua__push_private(lua_State *L, kdao_lua_factory *fs) {
  push_env(L, fs);
  lua_pushlightuserdata(L, &PRIVATE_KEY);
  lua_rawget(L, -2);
  lua_remove(L, -2);
}

void kdao_lua__push_dao(lua_State *L, kdao_lua_factory *fs, const kdao_dao *dao) {
  if (!dao) {
    lua_pushnil(L);
    return;
  }
  push_env(L, fs);
  lua_getfield(L, -1, "daos");
  lua_getfield(L, -1, kdao_dao_name(dao));
  lua_replace(L, -3);
  lua_pop(L, 1);
}

static kdao_lua_factory *check_factory(lua_State *L) {
  kdao_lua_factory *fs = luaL_checkudata(L, 1, KDAO_LUA_FACTORY);
  if (!fs->f) luaL_error(L, "attempt to use a closed factory");
  return fs;
}

static void frame_enter(kdao_lua_factory *fs, kdao_lua_frame *fr, lua_State *L) {
  fr->L = L;
  fr->raise_ref = LUA_NOREF;
  fr->check_ref = LUA_NOREF;
  fr->check_err = NULL;
  fr->check_kind = KDAO_OK;
  fr->check_msg = NULL;
  fr->prev = fs->call;
  fs->call = fr;
}

static void frame_leave(kdao_lua_factory *fs, kdao_lua_frame *fr) { fs->call = fr->prev; }

/* Drops what the frame parked; raises the parked error if a callback raised one. */
static void frame_settle(lua_State *L, kdao_lua_frame *fr) {
  kdao_lua__frame_forget_check(L, fr);
  if (fr->raise_ref == LUA_NOREF) return;
  lua_rawgeti(L, LUA_REGISTRYINDEX, fr->raise_ref);
  luaL_unref(L, LUA_REGISTRYINDEX, fr->raise_ref);
  fr->raise_ref = LUA_NOREF;
  lua_error(L);
}

/* ------------------------------------------------------------------------------------------
 * Events
 * ---------------------------------------------------------------------------------------- */

/* Pushes the event entity: the row, or the Lua schema's marshall_event(schema, row). */
static void push_event_entity(lua_State *L, int meta, const json_t *row) {
  kdao_lua__pushjson(L, row);
  if (!lua_istable(L, meta)) return;
  lua_getfield(L, meta, "marshall");
  if (!lua_isfunction(L, -1)) {
    lua_pop(L, 1);
    return;
  }
  lua_insert(L, -2);
  lua_getfield(L, meta, "schema");
  lua_insert(L, -2);
  lua_call(L, 2, 1);
}

/* Protected body of an event: (handler, meta, payload) already built by the caller. */
static int publish(lua_State *L) {
  /* 1 handler, 2 payload */
  if (lua_isfunction(L, 1)) {
    lua_call(L, 1, 0);
    return 0;
  }
  /* Kong's events object: handler:publish(handler.TYPES.CLUSTER_PROPAGATE, payload). */
  lua_getfield(L, 1, "publish");
  lua_pushvalue(L, 1);
  lua_getfield(L, 1, "TYPES");
  if (lua_istable(L, -1))
    lua_getfield(L, -1, "CLUSTER_PROPAGATE");
  else
    lua_pushliteral(L, "CLUSTER_PROPAGATE");
  lua_remove(L, -2);
  lua_pushvalue(L, 2);
  lua_call(L, 3, 0);
  return 0;
}

typedef struct event_args {
  const char *collection;
  kdao_event_type type;
  const json_t *entity, *old_entity;
  kdao_lua_factory *fs;
} event_args;

static int build_and_publish(lua_State *L) {
  event_args *a = lua_touserdata(L, 1);
  kdao_lua__push_private(L, a->fs);
  int priv = lua_gettop(L);
  lua_getfield(L, priv, "events");
  int handler = lua_gettop(L);
  lua_getfield(L, priv, "tables");
  lua_getfield(L, -1, a->collection);
  int meta = lua_gettop(L);

  lua_pushcfunction(L, publish);
  lua_pushvalue(L, handler);
  lua_createtable(L, 0, 5);
  lua_pushstring(L, a->collection);
  lua_setfield(L, -2, "collection");
  lua_pushstring(L, kdao_event_type_name(a->type));
  lua_setfield(L, -2, "type");
  if (lua_istable(L, meta)) {
    lua_getfield(L, meta, "primary_key");
    lua_setfield(L, -2, "primary_key");
  }
  push_event_entity(L, meta, a->entity);
  lua_setfield(L, -2, "entity");
  if (a->old_entity) {
    push_event_entity(L, meta, a->old_entity);
    lua_setfield(L, -2, "old_entity");
  }
  lua_call(L, 2, 0);
  return 0;
}

static void on_event(const char *collection, kdao_event_type type, const json_t *entity,
                     const json_t *old_entity, void *ud) {
  kdao_lua_factory *fs = ud;
  kdao_lua_frame *fr = fs->call;
  if (!fr || !lua_checkstack(fr->L, 16)) return;
  lua_State *L = fr->L;
  event_args a = {collection, type, entity, old_entity, fs};
  lua_pushcfunction(L, build_and_publish);
  lua_pushlightuserdata(L, &a);
  if (lua_pcall(L, 1, 0, 0) != 0)
    kdao_lua__frame_raise(L, fr); /* Kong let a failing publish raise from the DAO call */
}

/* ------------------------------------------------------------------------------------------
 * DAO
 * ---------------------------------------------------------------------------------------- */

static kdao_lua_dao *check_dao(lua_State *L) {
  kdao_lua_dao *d = luaL_checkudata(L, 1, KDAO_LUA_DAO);
  if (!d->dao || !d->fs->f) luaL_error(L, "attempt to use a DAO of a closed factory");
  return d;
}

static const char *type_name(lua_State *L, int idx) {
  int t = lua_type(L, idx);
  return lua_typename(L, t == LUA_TNONE ? LUA_TNIL : t);
}

/* Kong's check_arg: argument numbers count from the first after self. */
static void check_arg(lua_State *L, int idx, int ltype, const char *method) {
  if (lua_type(L, idx) != ltype)
    luaL_error(L, "bad argument #%d to '%s' (%s expected, got %s)", idx - 1, method,
               lua_typename(L, ltype), type_name(L, idx));
}

static void check_not_empty(lua_State *L, int idx, const char *method) {
  lua_pushnil(L);
  if (lua_next(L, idx) == 0)
    luaL_error(L, "bad argument #%d to '%s' (expected table to not be empty)", idx - 1, method);
  lua_pop(L, 2);
}

/* `options = options or {}` then a table check. */
static void check_options(lua_State *L, int idx, const char *method) {
  if (lua_isnoneornil(L, idx)) {
    lua_settop(L, idx - 1);
    lua_newtable(L);
  }
  check_arg(L, idx, LUA_TTABLE, method);
}

/* Kong's check_utf8: a value that is not UTF-8 is replaced, in the caller's table. */
static void scrub_utf8(lua_State *L, int idx) {
  lua_pushnil(L);
  while (lua_next(L, idx) != 0) {
    size_t len;
    if (lua_type(L, -1) == LUA_TSTRING) {
      const char *s = lua_tolstring(L, -1, &len);
      if (!kdao_lua__utf8_valid(s, len)) {
        lua_pushvalue(L, -2);
        lua_pushstring(L, random_value);
        lua_rawset(L, idx);
      }
    }
    lua_pop(L, 1);
  }
}

/* The plugin config schema description, cached per plugin name (json null: none). */
static const json_t *config_hint(kdao_lua_factory *fs, const char *plugin) {
  if (!fs->config_hints && !(fs->config_hints = json_object())) return NULL;
  json_t *h = json_object_get(fs->config_hints, plugin);
  if (h) return h;
  const kdao_schema *s = kdao_factory_plugin_schema(fs->f, plugin);
  h = s ? kdao_schema_describe(s) : json_null();
  if (!h || json_object_set_new(fs->config_hints, plugin, h) != 0) return NULL;
  return h;
}

/* The entity argument as a JSON object; raises "bad argument" when it cannot be converted. */
static json_t *entity_arg(lua_State *L, kdao_lua_dao *d, int idx, const char *method) {
  const char *why = NULL;
  json_t *j = kdao_lua__tojson(L, idx, NULL, true, &why);
  if (!j) luaL_error(L, "bad argument #%d to '%s' (%s)", idx - 1, method, why);
  kdao_lua__fix_arrays(j, d->hint);
  if (d->is_plugins) {
    const char *name = json_string_value(json_object_get(j, "name"));
    json_t *config = json_object_get(j, "config");
    if (name && config) kdao_lua__fix_arrays(config, config_hint(d->fs, name));
  }
  return j;
}

/* A filter argument (nil allowed) as JSON; NULL for nil. */
static json_t *filter_arg(lua_State *L, int idx, const char *method) {
  if (lua_isnoneornil(L, idx)) return NULL;
  const char *why = NULL;
  json_t *j = kdao_lua__tojson(L, idx, NULL, true, &why);
  if (!j) luaL_error(L, "bad argument #%d to '%s' (%s)", idx - 1, method, why);
  return j;
}

/*
 * Pushes the outcome of a DAO call: the result (or nil) on success; nil and Kong's error
 * object on a data error; raises misuse ("Missing PRIMARY KEY field", ...) and errors that
 * callbacks raised. Consumes `result` and `err`. Returns the number of values pushed.
 */
static int dao_finish(lua_State *L, kdao_lua_dao *d, kdao_lua_frame *fr, int rc, kdao_error *err,
                      json_t *result) {
  if (fr->raise_ref != LUA_NOREF || rc == KDAO_ERR_MISUSE || rc == KDAO_ERR_NOMEM) {
    json_decref(result);
    if (fr->raise_ref == LUA_NOREF) {
      lua_pushstring(L, err ? kdao_error_message(err) : "not enough memory");
      kdao_error_free(err);
      frame_settle(L, fr);
      luaL_where(L, 1);
      lua_insert(L, -2);
      lua_concat(L, 2);
      return lua_error(L);
    }
    kdao_error_free(err);
    frame_settle(L, fr); /* raises */
  }
  if (rc != KDAO_OK) {
    const char *db = kdao_factory_db_name(d->fs->f);
    lua_pushnil(L);
    if (kdao_lua__frame_is_check(fr, err)) {
      /* self_check's own error object, handed back unchanged (with db_name, as Kong) */
      lua_rawgeti(L, LUA_REGISTRYINDEX, fr->check_ref);
      if (lua_istable(L, -1)) {
        lua_pushstring(L, db);
        lua_setfield(L, -2, "db_name");
      }
    } else {
      kdao_lua__push_error(L, err, db);
    }
    kdao_error_free(err);
    frame_settle(L, fr);
    return 2;
  }
  frame_settle(L, fr);
  kdao_lua__pushjson(L, result);
  json_decref(result);
  return 1;
}

static void write_options(lua_State *L, int idx, int *ttl, unsigned *flags) {
  lua_getfield(L, idx, "ttl");
  if (lua_isnumber(L, -1)) *ttl = (int)lua_tonumber(L, -1);
  lua_getfield(L, idx, "quiet");
  if (lua_toboolean(L, -1)) *flags |= KDAO_DAO_QUIET;
  lua_getfield(L, idx, "full");
  if (lua_toboolean(L, -1)) *flags |= KDAO_DAO_FULL;
  lua_pop(L, 3);
}

static int dao_insert(lua_State *L) {
  kdao_lua_dao *d = check_dao(L);
  check_options(L, 3, "insert");
  check_arg(L, 2, LUA_TTABLE, "insert");
  check_arg(L, 3, LUA_TTABLE, "insert");
  int ttl = 0;
  unsigned flags = 0;
  write_options(L, 3, &ttl, &flags);
  flags &= ~KDAO_DAO_FULL;
  json_t *entity = entity_arg(L, d, 2, "insert");
  json_t *row = NULL;
  kdao_error *err = NULL;
  kdao_lua_frame fr;
  frame_enter(d->fs, &fr, L);
  int rc = kdao_dao_insert(d->dao, entity, ttl, flags, &row, &err);
  frame_leave(d->fs, &fr);
  json_decref(entity);
  return dao_finish(L, d, &fr, rc, err, row);
}

static int dao_find(lua_State *L) {
  kdao_lua_dao *d = check_dao(L);
  check_arg(L, 2, LUA_TTABLE, "find");
  scrub_utf8(L, 2);
  json_t *pk = filter_arg(L, 2, "find");
  json_t *row = NULL;
  kdao_error *err = NULL;
  kdao_lua_frame fr;
  frame_enter(d->fs, &fr, L);
  int rc = kdao_dao_find(d->dao, pk, &row, &err);
  frame_leave(d->fs, &fr);
  json_decref(pk);
  return dao_finish(L, d, &fr, rc, err, row);
}

/* find_all / count / find_page filter checks: table, not empty (find_all also scrubs). */
static json_t *check_filter(lua_State *L, const char *method, bool scrub) {
  if (lua_isnoneornil(L, 2)) return NULL;
  check_arg(L, 2, LUA_TTABLE, method);
  if (scrub) scrub_utf8(L, 2);
  check_not_empty(L, 2, method);
  return filter_arg(L, 2, method);
}

static int dao_find_all(lua_State *L) {
  kdao_lua_dao *d = check_dao(L);
  json_t *filter = check_filter(L, "find_all", true);
  json_t *rows = NULL;
  kdao_error *err = NULL;
  kdao_lua_frame fr;
  frame_enter(d->fs, &fr, L);
  int rc = kdao_dao_find_all(d->dao, filter, &rows, &err);
  frame_leave(d->fs, &fr);
  json_decref(filter);
  return dao_finish(L, d, &fr, rc, err, rows);
}

static int dao_find_page(lua_State *L) {
  kdao_lua_dao *d = check_dao(L);
  lua_settop(L, 4);
  json_t *filter = check_filter(L, "find_page", false);
  if (lua_isnil(L, 4)) {
    lua_pushnumber(L, 100);
    lua_replace(L, 4);
  }
  if (lua_type(L, 4) != LUA_TNUMBER) {
    json_decref(filter);
    check_arg(L, 4, LUA_TNUMBER, "find_page");
  }
  double size = lua_tonumber(L, 4);
  const char *offset = lua_toboolean(L, 3) ? lua_tostring(L, 3) : NULL;
  json_t *rows = NULL;
  char *next = NULL;
  kdao_error *err = NULL;
  kdao_lua_frame fr;
  frame_enter(d->fs, &fr, L);
  int rc =
      kdao_dao_find_page(d->dao, filter, offset, size > 0 ? (size_t)size : 0, &rows, &next, &err);
  frame_leave(d->fs, &fr);
  json_decref(filter);
  if (next) {
    lua_pushstring(L, next); /* kept below the results while they are pushed */
    kdao_free(next);
  } else {
    lua_pushnil(L);
  }
  int nnext = lua_gettop(L);
  int n = dao_finish(L, d, &fr, rc, err, rows);
  if (n != 1) return n;
  lua_pushnil(L);
  lua_pushvalue(L, nnext);
  return 3; /* rows, nil, next_offset */
}

static int dao_count(lua_State *L) {
  kdao_lua_dao *d = check_dao(L);
  json_t *filter = check_filter(L, "count", false);
  long long count = 0;
  kdao_error *err = NULL;
  kdao_lua_frame fr;
  frame_enter(d->fs, &fr, L);
  int rc = kdao_dao_count(d->dao, filter, &count, &err);
  frame_leave(d->fs, &fr);
  json_decref(filter);
  int n = dao_finish(L, d, &fr, rc, err, NULL);
  if (n != 1) return n;
  lua_pushnumber(L, (lua_Number)count);
  return 1;
}

static int dao_update(lua_State *L) {
  kdao_lua_dao *d = check_dao(L);
  check_options(L, 4, "update");
  check_arg(L, 2, LUA_TTABLE, "update");
  check_not_empty(L, 2, "update");
  check_arg(L, 3, LUA_TTABLE, "update");
  check_not_empty(L, 3, "update");
  check_arg(L, 4, LUA_TTABLE, "update");
  int ttl = 0;
  unsigned flags = 0;
  write_options(L, 4, &ttl, &flags);
  /* Kong fills absent members of the caller's table from filter_keys. */
  lua_pushnil(L);
  while (lua_next(L, 3) != 0) {
    lua_pushvalue(L, -2);
    lua_rawget(L, 2);
    if (lua_isnil(L, -1)) {
      lua_pushvalue(L, -3);
      lua_pushvalue(L, -3);
      lua_rawset(L, 2);
    }
    lua_pop(L, 2);
  }
  json_t *values = entity_arg(L, d, 2, "update");
  json_t *filter = filter_arg(L, 3, "update");
  json_t *row = NULL;
  kdao_error *err = NULL;
  kdao_lua_frame fr;
  frame_enter(d->fs, &fr, L);
  int rc = kdao_dao_update(d->dao, values, filter, ttl, flags, &row, &err);
  frame_leave(d->fs, &fr);
  json_decref(values);
  json_decref(filter);
  return dao_finish(L, d, &fr, rc, err, row);
}

static int dao_delete(lua_State *L) {
  kdao_lua_dao *d = check_dao(L);
  check_options(L, 3, "delete");
  check_arg(L, 2, LUA_TTABLE, "delete");
  check_arg(L, 3, LUA_TTABLE, "delete");
  int ttl = 0;
  unsigned flags = 0;
  write_options(L, 3, &ttl, &flags);
  json_t *pk = filter_arg(L, 2, "delete");
  json_t *row = NULL;
  kdao_error *err = NULL;
  kdao_lua_frame fr;
  frame_enter(d->fs, &fr, L);
  int rc = kdao_dao_delete(d->dao, pk, flags & KDAO_DAO_QUIET, &row, &err);
  frame_leave(d->fs, &fr);
  json_decref(pk);
  return dao_finish(L, d, &fr, rc, err, row);
}

static int dao_truncate(lua_State *L) {
  kdao_lua_dao *d = check_dao(L);
  kdao_error *err = NULL;
  kdao_lua_frame fr;
  frame_enter(d->fs, &fr, L);
  int rc = kdao_dao_truncate(d->dao, &err);
  frame_leave(d->fs, &fr);
  int n = dao_finish(L, d, &fr, rc, err, NULL);
  if (n != 1) return n;
  lua_pushboolean(L, 1);
  return 1;
}

/* Methods first, then the DAO's own fields (schema, table, name, factory). */
static int dao_index(lua_State *L) {
  lua_pushvalue(L, 2);
  lua_rawget(L, lua_upvalueindex(1));
  if (!lua_isnil(L, -1)) return 1;
  lua_getfenv(L, 1);
  lua_pushvalue(L, 2);
  lua_rawget(L, -2);
  return 1;
}

static int dao_tostring(lua_State *L) {
  kdao_lua_dao *d = luaL_checkudata(L, 1, KDAO_LUA_DAO);
  lua_pushfstring(L, "kdao.dao (%s): %p", d->dao && d->fs->f ? kdao_dao_name(d->dao) : "closed",
                  (void *)d);
  return 1;
}

static int dao_gc(lua_State *L) {
  kdao_lua_dao *d = luaL_checkudata(L, 1, KDAO_LUA_DAO);
  json_decref(d->hint);
  d->hint = NULL;
  d->dao = NULL;
  return 0;
}

static const luaL_Reg dao_methods[] = {
    {"insert", dao_insert},       {"find", dao_find},         {"find_all", dao_find_all},
    {"find_page", dao_find_page}, {"count", dao_count},       {"update", dao_update},
    {"delete", dao_delete},       {"truncate", dao_truncate}, {NULL, NULL}};

static const luaL_Reg dao_meta[] = {{"__tostring", dao_tostring}, {"__gc", dao_gc}, {NULL, NULL}};

/* ------------------------------------------------------------------------------------------
 * Factory
 * ---------------------------------------------------------------------------------------- */

/* Config values as kdao_config_set wants them: on/off, numbers, comma lists. */
static const char *config_text(lua_State *L, int v) {
  switch (lua_type(L, v)) {
  case LUA_TBOOLEAN:
    lua_pushstring(L, lua_toboolean(L, v) ? "on" : "off");
    return lua_tostring(L, -1);
  case LUA_TNUMBER: {
    lua_Number n = lua_tonumber(L, v);
    if (n == floor(n) && fabs(n) < 1e15)
      lua_pushfstring(L, "%d", (int)n);
    else
      lua_pushfstring(L, "%f", n);
    return lua_tostring(L, -1);
  }
  case LUA_TSTRING: lua_pushvalue(L, v); return lua_tostring(L, -1);
  case LUA_TTABLE: {
    luaL_Buffer b;
    int n = (int)lua_objlen(L, v);
    luaL_buffinit(L, &b);
    for (int i = 1; i <= n; i++) {
      if (i > 1) luaL_addchar(&b, ',');
      lua_rawgeti(L, v, i);
      if (!lua_isstring(L, -1)) luaL_error(L, "configuration lists must hold strings");
      luaL_addvalue(&b);
    }
    luaL_pushresult(&b);
    return lua_tostring(L, -1);
  }
  default: return NULL;
  }
}

/*
 * Applies a table of configuration values. Keys kdao does not know are skipped: a Kong
 * configuration holds many that are not the datastore's (proxy_listen, ...).
 */
static int apply_config(lua_State *L, kdao_lua_factory *fs, int values, kdao_error **err) {
  json_t *known = kdao_config_dump(fs->cfg);
  int rc = KDAO_OK;
  lua_pushnil(L);
  while (rc == KDAO_OK && lua_next(L, values) != 0) {
    const char *key = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : NULL;
    if (key && known && json_object_get(known, key)) {
      const char *text = config_text(L, lua_gettop(L));
      if (text) {
        rc = kdao_config_set(fs->cfg, key, text, err);
        lua_pop(L, 1);
      }
    }
    lua_pop(L, 1);
  }
  if (rc != KDAO_OK) lua_pop(L, 1); /* the key lua_next left */
  json_decref(known);
  return rc;
}

/*
 * kdao.new([values [, file]]) -> factory | nil, err. Configuration: defaults < file <
 * KDAO_* environment < values (a table of configuration keys). Not yet connected.
 */
static int l_new(lua_State *L) {
  lua_settop(L, 2);
  if (!lua_isnil(L, 1)) luaL_checktype(L, 1, LUA_TTABLE);
  const char *file = luaL_optstring(L, 2, NULL);

  kdao_lua_factory *fs = lua_newuserdata(L, sizeof *fs);
  memset(fs, 0, sizeof *fs);
  luaL_setmetatable(L, KDAO_LUA_FACTORY);
  int ud = lua_gettop(L);

  /* environment: DAOs and fields, plus the private table */
  lua_newtable(L);
  lua_pushlightuserdata(L, &PRIVATE_KEY);
  lua_createtable(L, 0, 8);
  static const char *const private_tables[] = {"fns", "cbs", "compiled", "lua_schemas", "tables"};
  for (size_t i = 0; i < sizeof private_tables / sizeof private_tables[0]; i++) {
    lua_newtable(L);
    lua_setfield(L, -2, private_tables[i]);
  }
  lua_rawset(L, -3);
  lua_newtable(L);
  lua_setfield(L, -2, "daos");
  lua_newtable(L);
  lua_setfield(L, -2, "additional_tables");
  lua_getfield(L, LUA_REGISTRYINDEX, ENVS);
  lua_pushlightuserdata(L, fs);
  lua_pushvalue(L, -3);
  lua_rawset(L, -3);
  lua_pop(L, 1);
  lua_setfenv(L, ud);

  kdao_error *err = NULL;
  if (kdao_config_new(&fs->cfg, &err) != KDAO_OK) return fail_string(L, err, NULL);
  if (file && kdao_config_load_file(fs->cfg, file, &err) != KDAO_OK)
    return fail_string(L, err, NULL);
  if (kdao_config_load_env(fs->cfg, &err) != KDAO_OK) return fail_string(L, err, NULL);
  if (lua_istable(L, 1) && apply_config(L, fs, 1, &err) != KDAO_OK)
    return fail_string(L, err, NULL);
  json_t *dump = kdao_config_dump(fs->cfg);
  lua_getfenv(L, ud);
  kdao_lua__pushjson(L, dump); /* secrets masked */
  lua_setfield(L, -2, "kdao_config");
  lua_pop(L, 1);
  json_decref(dump);
  int rc = kdao_factory_new(fs->cfg, &fs->f, &err);
  kdao_config_free(fs->cfg);
  fs->cfg = NULL;
  if (rc != KDAO_OK) return fail_string(L, err, NULL);

  lua_getfenv(L, ud);
  lua_pushstring(L, kdao_factory_db_name(fs->f));
  lua_setfield(L, -2, "db_type");
  lua_pop(L, 1);
  lua_settop(L, ud);
  return 1;
}

/* private.tables[<table>] = {name, primary_key, schema, marshall}: what events need. */
static void describe_table(lua_State *L, int priv, const char *name, kdao_lua_dao *d) {
  lua_getfield(L, priv, "tables");
  lua_createtable(L, 0, 4);
  lua_pushstring(L, name);
  lua_setfield(L, -2, "name");
  kdao_lua__pushjson(L, json_object_get(d->hint, "primary_key"));
  lua_setfield(L, -2, "primary_key");
  lua_getfield(L, priv, "lua_schemas");
  lua_getfield(L, -1, name);
  lua_remove(L, -2);
  if (lua_istable(L, -1)) {
    lua_getfield(L, -1, "marshall_event");
    lua_setfield(L, -3, "marshall");
  }
  lua_setfield(L, -2, "schema");
  lua_setfield(L, -2, kdao_dao_table(d->dao));
  lua_pop(L, 1);
}

/* Creates the DAO object of `name` into env[name] and env.daos[name]. */
static void make_dao(lua_State *L, kdao_lua_factory *fs, int ud, int env, int priv,
                     const char *name) {
  kdao_lua_dao *d = lua_newuserdata(L, sizeof *d);
  memset(d, 0, sizeof *d);
  luaL_setmetatable(L, KDAO_LUA_DAO);
  int du = lua_gettop(L);
  d->fs = fs;
  d->dao = kdao_factory_dao(fs->f, name);
  d->hint = kdao_schema_describe(kdao_dao_schema(d->dao));
  d->is_plugins = strcmp(name, "plugins") == 0;

  lua_createtable(L, 0, 4);
  lua_pushvalue(L, ud);
  lua_setfield(L, -2, "factory");
  lua_pushstring(L, name);
  lua_setfield(L, -2, "name");
  lua_pushstring(L, kdao_dao_table(d->dao));
  lua_setfield(L, -2, "table");
  lua_getfield(L, priv, "lua_schemas"); /* Kong's dao.schema: the Lua table when there is one */
  lua_getfield(L, -1, name);
  lua_remove(L, -2);
  if (lua_isnil(L, -1)) {
    lua_pop(L, 1);
    kdao_lua__pushjson(L, d->hint);
  }
  lua_setfield(L, -2, "schema");
  lua_setfenv(L, du);

  describe_table(L, priv, name, d);
  lua_getfield(L, env, "daos");
  lua_pushvalue(L, du);
  lua_setfield(L, -2, name);
  lua_pop(L, 1);
  lua_pushvalue(L, du);
  lua_setfield(L, env, name);
  lua_settop(L, du - 1);
}

/* factory:connect() -> factory | nil, err: builds the graph, connects, makes the DAOs. */
static int f_connect(lua_State *L) {
  kdao_lua_factory *fs = check_factory(L);
  lua_settop(L, 1);
  kdao_error *err = NULL;
  if (kdao_factory_connect(fs->f, &err) != KDAO_OK)
    return fail_string(L, err, kdao_factory_db_name(fs->f));
  lua_getfenv(L, 1);
  kdao_lua__push_private(L, fs);
  json_t *names = kdao_factory_dao_names(fs->f);
  for (size_t i = 0; i < json_array_size(names); i++)
    make_dao(L, fs, 1, 2, 3, json_string_value(json_array_get(names, i)));
  json_decref(names);
  lua_settop(L, 1);
  return 1;
}

static int f_close(lua_State *L) {
  kdao_lua_factory *fs = luaL_checkudata(L, 1, KDAO_LUA_FACTORY);
  if (fs->call) return luaL_error(L, "cannot close a factory from inside one of its calls");
  kdao_factory_free(fs->f);
  fs->f = NULL;
  kdao_config_free(fs->cfg);
  fs->cfg = NULL;
  json_decref(fs->config_hints);
  fs->config_hints = NULL;
  return 0;
}

/* DAOs and fields first (Kong: a DAO named like a method shadows it), then methods. */
static int f_index(lua_State *L) {
  lua_getfenv(L, 1);
  lua_pushvalue(L, 2);
  lua_rawget(L, -2);
  if (!lua_isnil(L, -1)) return 1;
  lua_pushvalue(L, 2);
  lua_rawget(L, lua_upvalueindex(1));
  return 1;
}

static int f_newindex(lua_State *L) {
  lua_getfenv(L, 1);
  lua_replace(L, 1);
  lua_rawset(L, 1);
  return 0;
}

static int f_tostring(lua_State *L) {
  kdao_lua_factory *fs = luaL_checkudata(L, 1, KDAO_LUA_FACTORY);
  lua_pushfstring(L, "kdao.factory (%s): %p", fs->f ? kdao_factory_db_name(fs->f) : "closed",
                  (void *)fs);
  return 1;
}

static int f_infos(lua_State *L) {
  kdao_lua_factory *fs = check_factory(L);
  json_t *infos = kdao_factory_infos(fs->f);
  kdao_lua__pushjson(L, infos);
  json_decref(infos);
  return 1;
}

/* Names of the registered plugins (built-in, JSON and Lua), sorted. */
static int f_plugin_names(lua_State *L) {
  json_t *names = kdao_factory_plugin_names(check_factory(L)->f);
  kdao_lua__pushjson(L, names);
  json_decref(names);
  return 1;
}

static int f_db_name(lua_State *L) {
  lua_pushstring(L, kdao_factory_db_name(check_factory(L)->f));
  return 1;
}

typedef struct migrate_ctx {
  lua_State *L;
  kdao_lua_factory *fs;
  kdao_lua_frame *fr;
  int on_migrate, on_success; /* stack indexes, 0: none */
  char last[128];             /* identifier whose on_migrate was called */
} migrate_ctx;

static int migrate_notify(lua_State *L) {
  migrate_ctx *m = lua_touserdata(L, 1);
  const char *identifier = lua_tostring(L, 2);
  json_t *infos = kdao_factory_infos(m->fs->f);
  if (m->on_migrate && strcmp(m->last, identifier) != 0) {
    snprintf(m->last, sizeof m->last, "%s", identifier);
    lua_pushvalue(L, m->on_migrate);
    lua_pushvalue(L, 2);
    kdao_lua__pushjson(L, infos);
    lua_call(L, 2, 0);
  }
  if (m->on_success) {
    lua_pushvalue(L, m->on_success);
    lua_pushvalue(L, 2);
    lua_pushvalue(L, 3);
    kdao_lua__pushjson(L, infos);
    lua_call(L, 3, 0);
  }
  json_decref(infos);
  return 0;
}

static void on_migration(const char *identifier, const char *name, void *ud) {
  migrate_ctx *m = ud;
  lua_State *L = m->L;
  if (m->fr->raise_ref != LUA_NOREF || !lua_checkstack(L, 8)) return;
  lua_pushcfunction(L, migrate_notify);
  lua_pushlightuserdata(L, m);
  lua_pushstring(L, identifier);
  lua_pushstring(L, name);
  if (lua_pcall(L, 3, 0, 0) != 0) kdao_lua__frame_raise(L, m->fr);
}

/* factory:run_migrations([on_migrate [, on_success]]) -> true | nil, "[db error] ..." */
static int f_run_migrations(lua_State *L) {
  kdao_lua_factory *fs = check_factory(L);
  lua_settop(L, 3);
  kdao_lua_frame fr;
  migrate_ctx m = {.L = L, .fs = fs, .fr = &fr};
  m.on_migrate = lua_isfunction(L, 2) ? 2 : 0;
  m.on_success = lua_isfunction(L, 3) ? 3 : 0;
  int ran = 0;
  kdao_error *err = NULL;
  frame_enter(fs, &fr, L);
  int rc = kdao_factory_migrate(fs->f, on_migration, &m, &ran, &err);
  frame_leave(fs, &fr);
  if (fr.raise_ref != LUA_NOREF) kdao_error_free(err);
  frame_settle(L, &fr);
  if (rc != KDAO_OK) return fail_string(L, err, kdao_factory_db_name(fs->f));
  lua_pushboolean(L, 1);
  lua_pushnil(L);
  lua_pushinteger(L, ran);
  return 3;
}

static int f_current_migrations(lua_State *L) {
  kdao_lua_factory *fs = check_factory(L);
  json_t *cur = NULL;
  kdao_error *err = NULL;
  if (kdao_factory_migrations(fs->f, &cur, &err) != KDAO_OK)
    return fail_string(L, err, kdao_factory_db_name(fs->f));
  kdao_lua__pushjson(L, cur);
  json_decref(cur);
  return 1;
}

static int f_pending_migrations(lua_State *L) {
  kdao_lua_factory *fs = check_factory(L);
  int pending = 0;
  kdao_error *err = NULL;
  if (kdao_factory_pending_migrations(fs->f, &pending, &err) != KDAO_OK)
    return fail_string(L, err, kdao_factory_db_name(fs->f));
  lua_pushinteger(L, pending);
  return 1;
}

static int f_status(lua_State *L, int rc, kdao_error *err, kdao_lua_factory *fs) {
  if (rc != KDAO_OK) return fail_string(L, err, kdao_factory_db_name(fs->f));
  lua_pushboolean(L, 1);
  return 1;
}

static int f_drop_schema(lua_State *L) {
  kdao_lua_factory *fs = check_factory(L);
  kdao_error *err = NULL;
  return f_status(L, kdao_factory_drop_schema(fs->f, &err), err, fs);
}

static int f_truncate_tables(lua_State *L) {
  kdao_lua_factory *fs = check_factory(L);
  kdao_error *err = NULL;
  return f_status(L, kdao_factory_truncate_tables(fs->f, &err), err, fs);
}

static int f_truncate_table(lua_State *L) {
  kdao_lua_factory *fs = check_factory(L);
  const char *name = luaL_checkstring(L, 2);
  kdao_dao *dao = kdao_factory_dao(fs->f, name);
  if (!dao) return luaL_error(L, "no DAO named '%s'", name);
  kdao_error *err = NULL;
  return f_status(L, kdao_dao_truncate(dao, &err), err, fs);
}

static int f_purge_expired(lua_State *L) {
  kdao_lua_factory *fs = check_factory(L);
  long long purged = 0;
  kdao_error *err = NULL;
  if (kdao_factory_purge_expired(fs->f, &purged, &err) != KDAO_OK)
    return fail_string(L, err, kdao_factory_db_name(fs->f));
  lua_pushnumber(L, (lua_Number)purged);
  return 1;
}

/*
 * factory:set_events_handler(handler): a function(payload), or Kong's events object
 * (handler:publish(handler.TYPES.CLUSTER_PROPAGATE, payload)); nil removes it.
 */
static int f_set_events_handler(lua_State *L) {
  kdao_lua_factory *fs = check_factory(L);
  lua_settop(L, 2);
  if (!lua_isnil(L, 2) && !lua_isfunction(L, 2) && !lua_istable(L, 2) && !lua_isuserdata(L, 2))
    return luaL_argerror(L, 2, "function or events object expected");
  kdao_lua__push_private(L, fs);
  lua_pushvalue(L, 2);
  lua_setfield(L, -2, "events");
  kdao_factory_on_event(fs->f, lua_isnil(L, 2) ? NULL : on_event, fs);
  return 0;
}

static int f_true(lua_State *L) {
  check_factory(L);
  lua_pushboolean(L, 1);
  return 1;
}

/* A light userdata of the kdao_factory, for C code sharing the factory (bench, tests). */
static int f_handle(lua_State *L) {
  lua_pushlightuserdata(L, check_factory(L)->f);
  return 1;
}

static const luaL_Reg factory_methods[] = {{"register_plugin", kdao_lua__register_plugin},
                                           {"register_entity", kdao_lua__register_entity},
                                           {"connect", f_connect},
                                           {"close", f_close},
                                           {"db_name", f_db_name},
                                           {"plugin_names", f_plugin_names},
                                           {"infos", f_infos},
                                           {"init", f_true},
                                           {"init_worker", f_true},
                                           {"run_migrations", f_run_migrations},
                                           {"current_migrations", f_current_migrations},
                                           {"pending_migrations", f_pending_migrations},
                                           {"drop_schema", f_drop_schema},
                                           {"truncate_tables", f_truncate_tables},
                                           {"truncate_table", f_truncate_table},
                                           {"purge_expired", f_purge_expired},
                                           {"set_events_handler", f_set_events_handler},
                                           {"handle", f_handle},
                                           {NULL, NULL}};

static const luaL_Reg factory_meta[] = {
    {"__gc", f_close}, {"__tostring", f_tostring}, {"__newindex", f_newindex}, {NULL, NULL}};

/* ------------------------------------------------------------------------------------------
 * Module
 * ---------------------------------------------------------------------------------------- */

static int l_is_error(lua_State *L) {
  lua_pushboolean(L, has_metatable(L, 1, KDAO_LUA_ERROR));
  return 1;
}

static int l_is_uuid(lua_State *L) {
  lua_pushboolean(L, lua_type(L, 1) == LUA_TSTRING && kdao_is_uuid(lua_tostring(L, 1)));
  return 1;
}

static const luaL_Reg module_functions[] = {
    {"new", l_new}, {"is_error", l_is_error}, {"is_uuid", l_is_uuid}, {NULL, NULL}};

/* A metatable whose methods live in their own table, reached by an __index closure. */
static void create_meta(lua_State *L, const char *tname, const luaL_Reg *meta,
                        const luaL_Reg *methods, lua_CFunction index) {
  luaL_newmetatable(L, tname);
  luaL_setfuncs(L, meta, 0);
  lua_newtable(L);
  luaL_setfuncs(L, methods, 0);
  lua_pushcclosure(L, index, 1);
  lua_setfield(L, -2, "__index");
  lua_pushliteral(L, "kdao");
  lua_setfield(L, -2, "__metatable");
  lua_pop(L, 1);
}

static void seed_random_value(void) {
  unsigned char bytes[16] = {0};
  FILE *f = fopen("/dev/urandom", "rb");
  size_t got = f ? fread(bytes, 1, sizeof bytes, f) : 0;
  if (f) fclose(f);
  if (got != sizeof bytes) { /* no /dev/urandom: still unlikely to match real data */
    unsigned long x = (unsigned long)(size_t)&got ^ (unsigned long)(size_t)random_value;
    for (size_t i = 0; i < sizeof bytes; i++, x = x * 6364136223846793005UL + 1442695040888963407UL)
      bytes[i] = (unsigned char)(x >> 56);
  }
  for (size_t i = 0; i < sizeof bytes; i++) snprintf(random_value + 2 * i, 3, "%02x", bytes[i]);
}

int luaopen_kdao(lua_State *L);

KDAO_API int luaopen_kdao(lua_State *L) {
  if (!random_value[0]) seed_random_value();
  create_meta(L, KDAO_LUA_FACTORY, factory_meta, factory_methods, f_index);
  create_meta(L, KDAO_LUA_DAO, dao_meta, dao_methods, dao_index);

  luaL_newmetatable(L, KDAO_LUA_ERROR);
  lua_pushcfunction(L, err_tostring);
  lua_setfield(L, -2, "__tostring");
  lua_pushcfunction(L, err_concat);
  lua_setfield(L, -2, "__concat");
  int error_mt = lua_gettop(L);
  luaL_newmetatable(L, KDAO_LUA_PRINTABLE);
  lua_pushcfunction(L, printable_tostring);
  lua_setfield(L, -2, "__tostring");
  lua_pushcfunction(L, printable_concat);
  lua_setfield(L, -2, "__concat");
  int printable_mt = lua_gettop(L);

  lua_getfield(L, LUA_REGISTRYINDEX, ENVS);
  if (lua_isnil(L, -1)) {
    lua_newtable(L);
    lua_createtable(L, 0, 1);
    lua_pushliteral(L, "v");
    lua_setfield(L, -2, "__mode");
    lua_setmetatable(L, -2);
    lua_setfield(L, LUA_REGISTRYINDEX, ENVS);
  }
  lua_pop(L, 1);

  lua_newtable(L);
  luaL_setfuncs(L, module_functions, 0);
  lua_pushlightuserdata(L, NULL);
  lua_setfield(L, -2, "null");
  lua_pushvalue(L, error_mt);
  lua_setfield(L, -2, "error_mt");
  lua_pushvalue(L, printable_mt);
  lua_setfield(L, -2, "printable_mt");
  lua_pushliteral(L, KDAO_VERSION_STRING);
  lua_setfield(L, -2, "VERSION");
  return 1;
}
