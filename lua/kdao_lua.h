/*
 * kdao_lua.h — what the files of the Lua binding share. Internal to lua/.
 *
 * The binding is one module, `kdao` (kdao_lua.c), split by concern:
 *   lua_json.c    Lua values <-> jansson, with Kong's array rule and schema hints;
 *   lua_schema.c  Lua schema tables (daos.lua, schema.lua) -> kdao_schema_def, and the C
 *                 callbacks that call back into Lua;
 *   kdao_lua.c    the module, the factory and DAO types, errors.
 * Cross-file functions are `kdao_lua__`-prefixed; everything else is static.
 */
#ifndef KDAO_LUA_H
#define KDAO_LUA_H

#include <lauxlib.h>
#include <lua.h>

#include "kdao.h"

/* Lua 5.1 proper lacks three lauxlib helpers that LuaJIT 2.1 backports. */
#if LUA_VERSION_NUM == 501 && !defined(KDAO_LUAJIT)
#define KDAO_LUA_COMPAT 1
void luaL_setfuncs(lua_State *L, const luaL_Reg *l, int nup);
void *luaL_testudata(lua_State *L, int ud, const char *tname);
void luaL_setmetatable(lua_State *L, const char *tname);
#endif

/* An absolute stack index (Lua 5.1 has no lua_absindex). */
#define kdao_lua_absindex(L, i) \
  ((i) > 0 || (i) <= LUA_REGISTRYINDEX ? (i) : lua_gettop(L) + (i) + 1)

#define KDAO_LUA_FACTORY "kdao.factory"
#define KDAO_LUA_DAO "kdao.dao"
#define KDAO_LUA_SCHEMA "kdao.schema"
#define KDAO_LUA_ERROR "kdao.error"         /* Kong's error_mt */
#define KDAO_LUA_PRINTABLE "kdao.printable" /* Kong's printable_mt */

/* Deepest table nesting converted; deeper means a cycle or a runaway structure. */
#define KDAO_LUA_MAX_DEPTH 64

/*
 * One DAO call in progress. Callbacks from the C library (validators, defaults, events) run
 * on the thread of the innermost call and park what they cannot do from inside C — raise a
 * Lua error, hand back a Lua error object — until the C call has returned.
 */
typedef struct kdao_lua_frame {
  lua_State *L;
  int raise_ref;               /* error raised by a callback (LUA_NOREF: none) */
  int check_ref;               /* error object a self_check returned (LUA_NOREF: none) */
  const kdao_error *check_err; /* the kdao_error made from it, */
  kdao_status check_kind;      /* its kind */
  char *check_msg;             /* and a copy of its message: the address alone could be reused */
  struct kdao_lua_frame *prev;
} kdao_lua_frame;

/* The factory userdata. */
typedef struct kdao_lua_factory {
  kdao_factory *f;      /* NULL when not yet created or closed */
  kdao_config *cfg;     /* only while the factory is being created */
  kdao_lua_frame *call; /* innermost call in progress, NULL when idle */
  json_t *config_hints; /* plugin name -> describe() of its config schema (cache) */
  int nfns;             /* values stored in the private `fns` array */
} kdao_lua_factory;

/* The DAO userdata. The DAO's environment keeps its factory userdata alive. */
typedef struct kdao_lua_dao {
  kdao_dao *dao;
  kdao_lua_factory *fs;
  json_t *hint; /* describe() of its schema: array fields and nested schemas */
  bool is_plugins;
} kdao_lua_dao;

/* ---- lua_json.c ---- */

/*
 * Converts the Lua value at `idx` to JSON (new reference). An empty table becomes an empty
 * object unless `shape` (the JSON the value came from, may be NULL) was an array there; see
 * kdao_lua__fix_arrays for the schema's say. `as_object` forces a table to an object even
 * when its keys are 1..n. On failure returns NULL and, unless out of memory, a static reason
 * in *why. Raises only on Lua memory errors.
 */
json_t *kdao_lua__tojson(lua_State *L, int idx, const json_t *shape, bool as_object,
                         const char **why);

/*
 * Kong cannot tell an empty array from an empty object (both are `{}`); the schema can.
 * Replaces, in `obj`, every empty object whose field is of type array in `desc` (a
 * kdao_schema_describe()) by an empty array, through nested schemas.
 */
void kdao_lua__fix_arrays(json_t *obj, const json_t *desc);

/* Pushes the Lua form of `v` (nil for NULL or JSON null). Object members that are null are
 * left out (NULL columns are absent, as in Kong); array nulls become kdao.null. */
void kdao_lua__pushjson(lua_State *L, const json_t *v);

/* Kong's utils.is_array: true for a table whose keys are exactly 1..n (or empty). */
bool kdao_lua__is_array(lua_State *L, int idx);

/* True when `s` (len bytes) is well-formed UTF-8. */
bool kdao_lua__utf8_valid(const char *s, size_t len);

/*
 * Writes the Lua table at `idx` back into `obj`, changing only members that differ, so
 * borrowed pointers into unchanged members stay valid. Returns 0, or -1 with *why set.
 */
int kdao_lua__writeback(lua_State *L, int idx, json_t *obj, const char **why);

/* ---- lua_schema.c ---- */

/* Pushes the factory's private table (callbacks, schema caches); `fs` must be alive. */
void kdao_lua__push_private(lua_State *L, kdao_lua_factory *fs);

/*
 * Registers with the (unconnected) factory at index 1: a plugin (name, config schema table
 * or nil, daos table or nil, migrations table or nil) or one entity (name, schema table).
 * Raise on an invalid definition.
 */
int kdao_lua__register_plugin(lua_State *L);
int kdao_lua__register_entity(lua_State *L);

/*
 * Converts a Lua error value (what a self_check returned) to a kdao_error, as Kong's
 * model:validate would see it: error objects keep their kind, a plain table becomes a schema
 * error with that field map, anything else a schema error with that message.
 */
kdao_error *kdao_lua__error_from_lua(lua_State *L, int idx);

/* Drops the self_check error object the frame holds, if any. */
void kdao_lua__frame_forget_check(lua_State *L, kdao_lua_frame *fr);

/* True when `e`, a call's final error, is the one made from the frame's self_check object. */
bool kdao_lua__frame_is_check(const kdao_lua_frame *fr, const kdao_error *e);

/* Stores the value on top of the stack (popped) as the frame's pending raise, first wins. */
void kdao_lua__frame_raise(lua_State *L, kdao_lua_frame *fr);

/* Pushes the Lua DAO object of `dao` (nil when NULL or unknown). */
void kdao_lua__push_dao(lua_State *L, kdao_lua_factory *fs, const kdao_dao *dao);

/* ---- kdao_lua.c ---- */

/* Pushes Kong's error object for `e` with db_name forced to `db_name` when not NULL. */
void kdao_lua__push_error(lua_State *L, const kdao_error *e, const char *db_name);

#endif
