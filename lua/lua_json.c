/*
 * lua_json.c — Lua values <-> jansson for the binding.
 *
 * Kong's rules: a table whose keys are exactly 1..n is an array (utils.is_array), any other
 * table an object; an empty table is ambiguous and becomes an object (cjson's choice, which
 * Kong relied on for plugin `config = {}`) unless the schema or the value's origin says
 * array. Integral numbers become JSON integers so ids, ports and timestamps stay integral.
 * Lua has no null inside tables: a JSON null member is left out (Kong's absent column), a
 * null array element becomes kdao.null (a NULL light userdata, as cjson.null and ngx.null),
 * and any NULL light userdata converts back to JSON null.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "kdao_lua.h"

/* Keeps a Lua number integral in JSON when it is one and fits json_int_t. */
static json_t *number_tojson(lua_Number d, const char **why) {
  if (d == floor(d) && d >= -9007199254740992.0 && d <= 9007199254740992.0)
    return json_integer((json_int_t)d);
  json_t *r = json_real(d);
  if (!r && isfinite(d) == 0) *why = "cannot convert NaN or infinity to JSON";
  return r;
}

static json_t *string_tojson(lua_State *L, int idx, const char **why) {
  size_t len;
  const char *s = lua_tolstring(L, idx, &len);
  if (!kdao_lua__utf8_valid(s, len)) {
    *why = "string is not valid UTF-8";
    return NULL;
  }
  return json_stringn(s, len);
}

/*
 * Kong's is_array over integer keys: every key a positive integer and the largest equal to
 * the count. Returns the count (0 for an empty table), or -1 when the table is an object.
 */
static long table_seq_len(lua_State *L, int idx) {
  long n = 0;
  lua_Number max = 0;
  bool seq = true;
  lua_pushnil(L);
  while (lua_next(L, idx) != 0) {
    lua_pop(L, 1);
    n++;
    if (!seq) continue;
    if (lua_type(L, -1) != LUA_TNUMBER) {
      seq = false;
      continue;
    }
    lua_Number k = lua_tonumber(L, -1);
    if (k < 1 || k != floor(k))
      seq = false;
    else if (k > max)
      max = k;
  }
  return (seq && max == (lua_Number)n) ? n : -1;
}

static json_t *tojson(lua_State *L, int idx, const json_t *shape, bool as_object, int depth,
                      const char **why);

bool kdao_lua__is_array(lua_State *L, int idx) {
  return table_seq_len(L, kdao_lua_absindex(L, idx)) >= 0;
}

static json_t *array_tojson(lua_State *L, int idx, long n, const json_t *shape, int depth,
                            const char **why) {
  json_t *arr = json_array();
  if (!arr) return NULL;
  const json_t *sub_shape = json_is_array(shape) ? shape : NULL;
  for (long i = 1; i <= n; i++) {
    lua_rawgeti(L, idx, (int)i);
    json_t *v =
        tojson(L, lua_gettop(L), json_array_get(sub_shape, (size_t)(i - 1)), false, depth + 1, why);
    lua_pop(L, 1);
    if (!v || json_array_append_new(arr, v) != 0) {
      json_decref(arr);
      return NULL;
    }
  }
  return arr;
}

/* The JSON member name of a table key: strings as they are, integral numbers as integers. */
static const char *key_text(lua_State *L, char *buf, size_t bufsz, size_t *len, const char **why) {
  switch (lua_type(L, -2)) {
  case LUA_TSTRING: return lua_tolstring(L, -2, len);
  case LUA_TNUMBER: {
    lua_Number k = lua_tonumber(L, -2);
    int w = (k == floor(k) && fabs(k) < 1e15) ? snprintf(buf, bufsz, "%.0f", k)
                                              : snprintf(buf, bufsz, "%.14g", k);
    *len = (size_t)w;
    return buf;
  }
  default: *why = "table keys must be strings or numbers"; return NULL;
  }
}

static json_t *object_tojson(lua_State *L, int idx, const json_t *shape, int depth,
                             const char **why) {
  json_t *obj = json_object();
  if (!obj) return NULL;
  lua_pushnil(L);
  while (lua_next(L, idx) != 0) {
    char buf[64];
    size_t klen = 0;
    const char *k = key_text(L, buf, sizeof buf, &klen, why);
    json_t *v = NULL;
    if (k && !kdao_lua__utf8_valid(k, klen))
      *why = "table key is not valid UTF-8";
    else if (k)
      v = tojson(L, lua_gettop(L), json_object_getn(shape, k, klen), false, depth + 1, why);
    if (!v || json_object_setn_new_nocheck(obj, k, klen, v) != 0) {
      lua_pop(L, 2);
      json_decref(obj);
      return NULL;
    }
    lua_pop(L, 1);
  }
  return obj;
}

static json_t *table_tojson(lua_State *L, int idx, const json_t *shape, bool as_object, int depth,
                            const char **why) {
  if (depth > KDAO_LUA_MAX_DEPTH) {
    *why = "table nesting too deep (a cycle?)";
    return NULL;
  }
  long n = as_object ? -1 : table_seq_len(L, idx);
  if (n > 0 || (n == 0 && json_is_array(shape))) return array_tojson(L, idx, n, shape, depth, why);
  return object_tojson(L, idx, shape, depth, why);
}

static json_t *tojson(lua_State *L, int idx, const json_t *shape, bool as_object, int depth,
                      const char **why) {
  switch (lua_type(L, idx)) {
  case LUA_TNIL: return json_null();
  case LUA_TBOOLEAN: return json_boolean(lua_toboolean(L, idx));
  case LUA_TNUMBER: return number_tojson(lua_tonumber(L, idx), why);
  case LUA_TSTRING: return string_tojson(L, idx, why);
  case LUA_TTABLE: return table_tojson(L, idx, shape, as_object, depth, why);
  case LUA_TLIGHTUSERDATA:
    if (lua_touserdata(L, idx) == NULL) return json_null();
    /* fallthrough */
  default: *why = "value cannot be converted to JSON (function, userdata or thread)"; return NULL;
  }
}

json_t *kdao_lua__tojson(lua_State *L, int idx, const json_t *shape, bool as_object,
                         const char **why) {
  static const char oom[] = "not enough memory";
  const char *reason = NULL;
  json_t *v = tojson(L, kdao_lua_absindex(L, idx), shape, as_object, 0, &reason);
  if (!v && why) *why = reason ? reason : oom;
  return v;
}

void kdao_lua__fix_arrays(json_t *obj, const json_t *desc) {
  const json_t *fields = json_object_get(desc, "fields");
  bool flexible = json_is_true(json_object_get(desc, "flexible"));
  if (!json_is_object(obj) || !json_is_object(fields)) return;
  for (void *it = json_object_iter(obj); it; it = json_object_iter_next(obj, it)) {
    json_t *v = json_object_iter_value(it);
    const json_t *fd = json_object_get(fields, json_object_iter_key(it));
    if (!fd) {
      if (flexible) kdao_lua__fix_arrays(v, desc);
      continue;
    }
    const char *type = json_string_value(json_object_get(fd, "type"));
    if (type && strcmp(type, "array") == 0 && json_is_object(v) && json_object_size(v) == 0) {
      json_t *arr = json_array();
      if (arr) json_object_iter_set_new(obj, it, arr);
      continue;
    }
    const json_t *nested = json_object_get(fd, "schema");
    if (json_is_object(nested)) kdao_lua__fix_arrays(v, nested);
  }
}

void kdao_lua__pushjson(lua_State *L, const json_t *v) {
  if (!v) {
    lua_pushnil(L);
    return;
  }
  switch (json_typeof(v)) {
  case JSON_OBJECT: {
    lua_createtable(L, 0, (int)json_object_size(v));
    const char *k;
    json_t *m;
    json_object_foreach((json_t *)v, k, m) {
      if (json_is_null(m)) continue;
      kdao_lua__pushjson(L, m);
      lua_setfield(L, -2, k);
    }
    return;
  }
  case JSON_ARRAY: {
    size_t n = json_array_size(v);
    lua_createtable(L, (int)n, 0);
    for (size_t i = 0; i < n; i++) {
      const json_t *m = json_array_get(v, i);
      if (json_is_null(m))
        lua_pushlightuserdata(L, NULL);
      else
        kdao_lua__pushjson(L, m);
      lua_rawseti(L, -2, (int)i + 1);
    }
    return;
  }
  case JSON_STRING: lua_pushlstring(L, json_string_value(v), json_string_length(v)); return;
  case JSON_INTEGER: lua_pushnumber(L, (lua_Number)json_integer_value(v)); return;
  case JSON_REAL: lua_pushnumber(L, json_real_value(v)); return;
  case JSON_TRUE: lua_pushboolean(L, 1); return;
  case JSON_FALSE: lua_pushboolean(L, 0); return;
  case JSON_NULL:
  default: lua_pushnil(L); return;
  }
}

bool kdao_lua__utf8_valid(const char *str, size_t len) {
  const unsigned char *s = (const unsigned char *)str;
  size_t i = 0;
  while (i < len) {
    unsigned char c = s[i];
    size_t n;
    unsigned lo = 0x80, hi = 0xBF;
    if (c < 0x80) {
      i++;
      continue;
    }
    if (c >= 0xC2 && c <= 0xDF)
      n = 1;
    else if (c >= 0xE0 && c <= 0xEF) {
      n = 2;
      if (c == 0xE0)
        lo = 0xA0;
      else if (c == 0xED)
        hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
      n = 3;
      if (c == 0xF0)
        lo = 0x90;
      else if (c == 0xF4)
        hi = 0x8F;
    } else
      return false;
    if (i + n >= len) return false;
    if (s[i + 1] < lo || s[i + 1] > hi) return false;
    for (size_t j = 2; j <= n; j++)
      if (s[i + j] < 0x80 || s[i + j] > 0xBF) return false;
    i += n + 1;
  }
  return true;
}

int kdao_lua__writeback(lua_State *L, int idx, json_t *obj, const char **why) {
  json_t *now = kdao_lua__tojson(L, idx, obj, true, why);
  if (!now) return -1;
  int rc = 0;
  const char *k;
  json_t *v;
  json_object_foreach(now, k, v) {
    json_t *old = json_object_get(obj, k);
    if (!old || !json_equal(old, v)) rc |= json_object_set(obj, k, v);
  }
  /* Members the callback removed (the _safe iteration allows deleting the current one). */
  void *tmp;
  json_object_foreach_safe(obj, tmp, k, v) {
    if (!json_object_get(now, k)) rc |= json_object_del(obj, k);
  }
  json_decref(now);
  if (rc != 0) *why = "not enough memory";
  return rc == 0 ? 0 : -1;
}
