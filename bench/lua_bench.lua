-- lua_bench.lua — what the Lua binding costs over the C API, measured in one run:
-- the same inserts and finds through `dao.consumers:insert/find` (Lua) and through
-- kdao_dao_insert/kdao_dao_find (C, lua/bench_c.c) on the same factory and connection.
--
--   luajit bench/lua_bench.lua [sqlite] [postgres]
--
-- Environment: KDAO_LUA_CPATH (directory of kdao.so and kdao_bench.so; default build/lua),
-- KDAO_BENCH_N (operations per measurement; default 2000), and for postgres the KDAO_PG_*
-- variables the tests use (skipped when KDAO_PG_HOST is unset). SQLite uses a file in /tmp.
-- Prints one line per backend and operation: ops/s through C, through Lua, and Lua / C.
local here = (arg and arg[0] or ""):match("^(.*)/[^/]*$") or "."
local cpath = os.getenv("KDAO_LUA_CPATH") or (here .. "/../build/lua")
package.path = here .. "/../lua/?.lua;" .. package.path
package.cpath = cpath .. "/?.so;" .. package.cpath

local Factory = require "kong.dao.factory"
local bench = require "kdao_bench"

local N = tonumber(os.getenv("KDAO_BENCH_N")) or 2000
local WARMUP = 100
local ROUNDS = 10
local FIND_FACTOR = 5

local function lua_insert(dao, prefix, n)
  local consumers = dao.consumers
  local t0 = bench.now()
  for i = 1, n do
    local row, err = consumers:insert {username = prefix .. i}
    if not row then
      error(tostring(err))
    end
  end
  return bench.now() - t0
end

local function lua_find(dao, ids)
  local consumers = dao.consumers
  local t0 = bench.now()
  for i = 1, #ids do
    local row, err = consumers:find {id = ids[i]}
    if not row then
      error("row " .. i .. " not found: " .. tostring(err))
    end
  end
  return bench.now() - t0
end

local function ids_of(dao)
  local ids = {}
  for _, row in ipairs(assert(dao.consumers:find_all())) do
    ids[#ids + 1] = row.id
  end
  return ids
end

local function report(backend, op, c_secs, lua_secs, n)
  local c_ops, lua_ops = n / c_secs, n / lua_secs
  print(string.format("%-9s %-6s C %9.0f ops/s   Lua %9.0f ops/s   Lua/C %.2f", backend, op,
                      c_ops, lua_ops, lua_ops / c_ops))
end

local function run(backend, conf)
  local dao, err = Factory.new(conf)
  if not dao then
    print(backend .. ": cannot open: " .. tostring(err))
    return
  end
  assert(dao:drop_schema())
  assert(dao:run_migrations())
  local handle = dao:handle()

  -- warm both paths (statement caches, page cache, JIT traces)
  bench.insert(handle, "consumers", "wc", WARMUP)
  lua_insert(dao, "wl", WARMUP)

  -- Many short alternating rounds, the side going first swapped each round: on a shared
  -- machine, load changes during the run then hit both sides alike.
  local c_ins, l_ins, c_find, l_find = 0, 0, 0, 0
  local per = math.max(1, math.floor(N / ROUNDS))
  for r = 1, ROUNDS do
    if r % 2 == 1 then
      c_ins = c_ins + bench.insert(handle, "consumers", "c" .. r .. "-", per)
      l_ins = l_ins + lua_insert(dao, "l" .. r .. "-", per)
    else
      l_ins = l_ins + lua_insert(dao, "l" .. r .. "-", per)
      c_ins = c_ins + bench.insert(handle, "consumers", "c" .. r .. "-", per)
    end
  end
  report(backend, "insert", c_ins, l_ins, per * ROUNDS)

  local ids = ids_of(dao)
  local sample = {}
  for i = 1, FIND_FACTOR * per do -- finds are cheap: longer blocks, steadier figures
    sample[i] = ids[(i * 7919) % #ids + 1]
  end
  bench.find(handle, "consumers", {unpack(sample, 1, WARMUP)})
  lua_find(dao, {unpack(sample, 1, WARMUP)})
  for r = 1, ROUNDS do
    if r % 2 == 1 then
      c_find = c_find + bench.find(handle, "consumers", sample)
      l_find = l_find + lua_find(dao, sample)
    else
      l_find = l_find + lua_find(dao, sample)
      c_find = c_find + bench.find(handle, "consumers", sample)
    end
  end
  report(backend, "find", c_find, l_find, #sample * ROUNDS)

  assert(dao:drop_schema())
  dao:close()
end

local wanted = {}
for _, a in ipairs(arg or {}) do
  wanted[a] = true
end
if next(wanted) == nil then
  wanted = {sqlite = true, postgres = true}
end

print(string.format("kdao Lua binding vs C API, N = %d per measurement", N))
if wanted.sqlite then
  local path = os.tmpname()
  run("sqlite", {database = "sqlite", sqlite_path = path})
  os.remove(path)
end
if wanted.postgres then
  if os.getenv("KDAO_PG_HOST") then
    run("postgres", {database = "postgres"})
  else
    print("postgres: skipped (KDAO_PG_HOST is not set)")
  end
end
