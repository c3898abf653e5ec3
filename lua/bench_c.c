/*
 * bench_c.c — `require "kdao_bench"`: the C twin of bench/lua_bench.lua. It runs the same
 * operations as the Lua loops, through the C API only, on the factory the Lua side opened
 * (factory:handle()), so both measure one connection, one schema, one run.
 *
 *   bench.now()                                   monotonic seconds
 *   bench.insert(handle, dao, prefix, n)          -> seconds; inserts {username = prefix..i}
 *   bench.find(handle, dao, ids)                  -> seconds; finds each {id = ids[i]}
 */
#include <stdio.h>
#include <time.h>

#include <lauxlib.h>
#include <lua.h>

#include "kdao.h"

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static kdao_dao *arg_dao(lua_State *L) {
  luaL_checktype(L, 1, LUA_TLIGHTUSERDATA);
  kdao_factory *f = lua_touserdata(L, 1);
  kdao_dao *dao = kdao_factory_dao(f, luaL_checkstring(L, 2));
  if (!dao) luaL_error(L, "no DAO named '%s'", lua_tostring(L, 2));
  return dao;
}

static int raise_err(lua_State *L, kdao_error *err) {
  lua_pushstring(L, err ? kdao_error_string(err) : "not enough memory");
  kdao_error_free(err);
  return lua_error(L);
}

static int b_now(lua_State *L) {
  lua_pushnumber(L, now());
  return 1;
}

static int b_insert(lua_State *L) {
  kdao_dao *dao = arg_dao(L);
  const char *prefix = luaL_checkstring(L, 3);
  int n = (int)luaL_checkinteger(L, 4);
  double t0 = now();
  for (int i = 1; i <= n; i++) {
    char name[128];
    snprintf(name, sizeof name, "%s%d", prefix, i);
    json_t *entity = json_pack("{ss}", "username", name), *row = NULL;
    kdao_error *err = NULL;
    int rc = entity ? kdao_dao_insert(dao, entity, 0, 0, &row, &err) : KDAO_ERR_NOMEM;
    json_decref(entity);
    json_decref(row);
    if (rc != KDAO_OK) return raise_err(L, err);
  }
  lua_pushnumber(L, now() - t0);
  return 1;
}

static int b_find(lua_State *L) {
  kdao_dao *dao = arg_dao(L);
  luaL_checktype(L, 3, LUA_TTABLE);
  int n = (int)lua_objlen(L, 3);
  double t0 = now();
  for (int i = 1; i <= n; i++) {
    lua_rawgeti(L, 3, i);
    json_t *pk = json_pack("{ss}", "id", lua_tostring(L, -1)), *row = NULL;
    lua_pop(L, 1);
    kdao_error *err = NULL;
    int rc = pk ? kdao_dao_find(dao, pk, &row, &err) : KDAO_ERR_NOMEM;
    json_decref(pk);
    bool found = row != NULL;
    json_decref(row);
    if (rc != KDAO_OK) return raise_err(L, err);
    if (!found) return luaL_error(L, "row %d not found", i);
  }
  lua_pushnumber(L, now() - t0);
  return 1;
}

int luaopen_kdao_bench(lua_State *L);

KDAO_API int luaopen_kdao_bench(lua_State *L) {
  static const luaL_Reg fns[] = {
      {"now", b_now}, {"insert", b_insert}, {"find", b_find}, {NULL, NULL}};
  lua_newtable(L);
  luaL_register(L, NULL, fns);
  return 1;
}
