-- Shared by the Lua specs: the backend under test (KDAO_TEST_BACKEND, set by run.sh) and
-- one migrated factory per busted process, so Cassandra's DDL runs once per run.
local Factory = require "kong.dao.factory"

local H = {}

H.backend = os.getenv("KDAO_TEST_BACKEND") or "sqlite"
H.tmpdir = os.getenv("KDAO_TEST_TMPDIR") or "/tmp"
H.plugin = "kdao-test"

-- A Kong-style configuration for the backend under test; connection settings of PostgreSQL
-- and Cassandra come from the KDAO_* environment, which kdao reads itself.
function H.kong_config(extra)
  local conf = {database = H.backend, plugins = {[H.plugin] = true}}
  if H.backend == "sqlite" then
    conf.sqlite_path = H.tmpdir .. "/kdao_lua_spec.db"
  elseif H.backend == "cassandra" then
    -- a keyspace of its own, named after the configured one: runs sharing a server differ
    conf.cassandra_keyspace = (os.getenv("KDAO_CASSANDRA_KEYSPACE") or "kdao") .. "_lua_spec"
  end
  for k, v in pairs(extra or {}) do
    conf[k] = v
  end
  return conf
end

local shared

-- The shared factory, on a freshly dropped and migrated schema.
function H.factory()
  if not shared then
    local err
    shared, err = Factory.new(H.kong_config())
    assert(shared, err)
    assert(shared:drop_schema())
    assert(shared:run_migrations())
  end
  return shared
end

-- Empties every table and removes any events handler.
function H.clean()
  local dao = H.factory()
  dao:set_events_handler(nil)
  assert(dao:truncate_tables())
  return dao
end

-- Records the payloads a factory publishes.
function H.record_events(dao)
  local events = {}
  dao:set_events_handler(function(payload)
    events[#events + 1] = payload
  end)
  return events
end

function H.api(dao, name)
  return assert(dao.apis:insert {
    name = name,
    hosts = {name .. ".com"},
    upstream_url = "http://" .. name .. ".com",
  })
end

function H.consumer(dao, username)
  return assert(dao.consumers:insert {username = username})
end

-- Strips the "file:line: " position Lua prefixes to raised errors.
function H.raised(fn, ...)
  local ok, err = pcall(fn, ...)
  assert(not ok, "expected an error to be raised")
  return (tostring(err):gsub("^[^:]*:%d+: ", ""))
end

return H
