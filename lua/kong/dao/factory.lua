-- kong.dao.factory: Kong 0.10's Factory.new over libkdao.
--
--   local Factory = require "kong.dao.factory"
--   local dao, err = Factory.new(kong_config [, events_handler])
--
-- `kong_config` is a Kong configuration table: its datastore keys (database, pg_*,
-- cassandra_*; plus kdao's sqlite_path, plugins_dir) configure the backend, other keys are
-- ignored; `plugins` (a set, as Kong's conf_loader builds it, or an array) and
-- `custom_plugins` name the enabled plugins. For each enabled plugin that kdao does not
-- bring itself, `kong.plugins.<name>.daos` (its entities), `kong.plugins.<name>.schema` (its
-- config schema) and `kong.plugins.<name>.migrations.<backend>` (string migrations) are
-- required from package.path, as Kong did; a plugin without any is skipped.
--
-- The factory returned is the kdao factory object: `dao.apis`, `dao.<plugin entity>` are
-- the DAOs, followed by Kong's factory methods (run_migrations, drop_schema,
-- truncate_tables, infos, ...). On failure: nil and Kong's "[<db> error] <message>" string.
local kdao = require "kdao"

local Factory = {}

local BACKENDS = {"sqlite", "postgres", "cassandra"}

-- Kong's utils.load_module_if_exists: a missing module is `false`, a broken one raises.
local function load_module_if_exists(name)
  local ok, mod = pcall(require, name)
  if ok then
    return true, mod
  end
  if type(mod) == "string" and mod:find("module '" .. name .. "' not found", 1, true) then
    return false
  end
  error(mod, 2)
end

local function add_names(set, names)
  if type(names) == "string" then
    for name in names:gmatch("[^,%s]+") do
      set[name] = true
    end
  elseif type(names) == "table" then
    for k, v in pairs(names) do
      if type(k) == "string" and v then
        set[k] = true -- Kong's set form: {["key-auth"] = true}
      elseif type(v) == "string" then
        set[v] = true -- array form: {"key-auth"}
      end
    end
  end
end

local function sorted_keys(set)
  local list = {}
  for k in pairs(set) do
    list[#list + 1] = k
  end
  table.sort(list)
  return list
end

-- Loads one Lua plugin into the unconnected factory `f`.
local function register_lua_plugin(f, name, additional_tables)
  local has_daos, daos = load_module_if_exists("kong.plugins." .. name .. ".daos")
  local has_schema, schema = load_module_if_exists("kong.plugins." .. name .. ".schema")
  local migrations, has_migrations = {}, false
  for _, db in ipairs(BACKENDS) do
    local ok, m = load_module_if_exists("kong.plugins." .. name .. ".migrations." .. db)
    if ok then
      migrations[db], has_migrations = m, true
    end
  end
  if has_daos and type(daos.tables) == "table" then
    -- Kong's raw-table plugins (rate-limiting counters): tables without DAOs.
    for _, t in ipairs(daos.tables) do
      additional_tables[#additional_tables + 1] = t
    end
    daos = nil
  end
  if (has_daos and daos) or has_schema or has_migrations then
    f:register_plugin(name, has_schema and schema or nil, daos, migrations)
  end
end

-- Builds and connects a factory. `file` (optional) is a kdao configuration file read
-- before the values of `kong_config`.
function Factory.open(kong_config, events_handler, file)
  kong_config = kong_config or {}
  local values = {}
  for k, v in pairs(kong_config) do
    if type(k) == "string" and k ~= "plugins" then
      values[k] = v
    end
  end

  local f, err = kdao.new(values, file)
  if not f then
    return nil, err
  end

  local enabled = {}
  add_names(enabled, kong_config.plugins)
  add_names(enabled, f.kdao_config.custom_plugins)

  local builtin = {}
  for _, name in ipairs(f:plugin_names()) do
    builtin[name] = true
  end
  for _, name in ipairs(sorted_keys(enabled)) do
    if not builtin[name] then
      register_lua_plugin(f, name, f.additional_tables)
    end
  end

  local ok, cerr = f:connect()
  if not ok then
    f:close()
    return nil, cerr
  end

  f.kong_config = kong_config
  f.plugin_names = enabled
  if events_handler ~= nil then
    f:set_events_handler(events_handler)
  end
  return f
end

function Factory.new(kong_config, events_handler)
  return Factory.open(kong_config, events_handler)
end

return Factory
