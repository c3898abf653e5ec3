-- kong.dao.errors: Kong 0.10's error constructors over kdao's error objects.
--
-- Errors.<kind>(err, db_name) for kind in unique, foreign, schema, db:
--   nil                 -> nil (so `return ok, Errors.schema(errs)` passes nil through)
--   an error object     -> returned as it is
--   a table             -> {[kind] = true, tbl = ..., message = <printable tbl>, db_name}
--                          (unique/foreign map field -> value to Kong's messages)
--   anything else       -> {[kind] = true, message = err, db_name}
-- The objects share kdao.error_mt with the errors the DAOs return, so either kind of
-- object passes for the other (getmetatable(err) == ..., tostring, concatenation).
local kdao = require "kdao"

local error_mt = kdao.error_mt
local printable_mt = kdao.printable_mt

local function messages(template)
  return function(values)
    local out = {}
    for field, value in pairs(values) do
      out[field] = string.format(template, tostring(value))
    end
    return out
  end
end

local field_maps = {
  unique = messages("already exists with value '%s'"),
  foreign = messages("does not exist with value '%s'"),
}

local function constructor(kind)
  local to_tbl = field_maps[kind]
  return function(err, db_name)
    if err == nil or getmetatable(err) == error_mt then
      return err
    end
    local e = {[kind] = true, db_name = db_name}
    if type(err) == "table" then
      e.tbl = setmetatable(to_tbl and to_tbl(err) or err, printable_mt)
      e.message = tostring(e.tbl)
    else
      e.message = err
    end
    return setmetatable(e, error_mt)
  end
end

local Errors = {}
for _, kind in ipairs {"unique", "foreign", "schema", "db"} do
  Errors[kind] = constructor(kind)
end

return Errors
