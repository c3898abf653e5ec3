-- kdao.setup: one call from configuration to a ready `singletons.dao`.
--
--   local dao = require("kdao.setup")(conf [, opts])
--
-- `conf` is a path to a kdao configuration file (kong.conf syntax), or a table of
-- configuration keys (Kong's, as Factory.new takes), or nil for defaults and KDAO_*
-- environment variables. Options:
--   migrate = false          do not run pending migrations (Kong ran them at start)
--   events_handler = h       a function(payload) or Kong's events object
--   plugins = {...}          plugin names to enable (with a file configuration)
-- Returns the factory, also stored in require("kong.singletons").dao; or nil, err.
local Factory = require "kong.dao.factory"
local singletons = require "kong.singletons"

return function(conf, opts)
  opts = opts or {}
  local kong_config, file = {}, nil
  if type(conf) == "string" then
    file = conf
  elseif type(conf) == "table" then
    kong_config = conf
  elseif conf ~= nil then
    error("bad argument #1 to 'setup' (string, table or nil expected, got " .. type(conf) .. ")", 2)
  end
  if opts.plugins then
    local merged = {}
    for k, v in pairs(kong_config) do
      merged[k] = v
    end
    merged.plugins = opts.plugins
    kong_config = merged
  end

  local dao, err = Factory.open(kong_config, opts.events_handler, file)
  if not dao then
    return nil, err
  end
  if opts.migrate ~= false then
    local ok, merr = dao:run_migrations()
    if not ok then
      dao:close()
      return nil, merr
    end
  end
  singletons.dao = dao
  return dao
end
