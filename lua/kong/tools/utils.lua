-- kong.tools.utils: the helpers of Kong 0.10's utils module that plugin schemas and DAOs
-- commonly require (key-auth's generate_if_missing, oauth2's defaults, ...), written for
-- kdao. Not the whole module: no ngx-dependent functions.
local kdao = require "kdao"

local _M = {}

local random_bytes
do
  local urandom = io.open("/dev/urandom", "rb")
  if urandom then
    urandom:setvbuf("no")
  else
    math.randomseed(os.time() + math.floor(os.clock() * 1e6))
  end
  random_bytes = function(n)
    if urandom then
      local s = urandom:read(n)
      if s and #s == n then
        return s
      end
    end
    local t = {}
    for i = 1, n do
      t[i] = string.char(math.random(0, 255))
    end
    return table.concat(t)
  end
end

-- A random UUID v4.
function _M.uuid()
  local b = {random_bytes(16):byte(1, 16)}
  b[7] = b[7] % 16 + 0x40 -- version 4
  b[9] = b[9] % 64 + 0x80 -- RFC 4122 variant
  local hex = string.format(string.rep("%02x", 16), unpack(b))
  return hex:sub(1, 8) .. "-" .. hex:sub(9, 12) .. "-" .. hex:sub(13, 16) .. "-"
         .. hex:sub(17, 20) .. "-" .. hex:sub(21, 32)
end

-- 32 random hex digits (Kong: a UUID without its dashes).
function _M.random_string()
  return (_M.uuid():gsub("-", ""))
end

function _M.is_valid_uuid(s)
  return kdao.is_uuid(s)
end

-- Surrounding whitespace removed; non-strings give "".
function _M.strip(s)
  if type(s) ~= "string" then
    return ""
  end
  return (s:match("^%s*(.-)%s*$"))
end

-- Splits on a plain-text separator (default ","), keeping empty pieces.
function _M.split(s, sep, max)
  sep = sep or ","
  local out, start = {}, 1
  while true do
    if max and #out == max - 1 then
      break
    end
    local i, j = s:find(sep, start, true)
    if not i then
      break
    end
    out[#out + 1] = s:sub(start, i - 1)
    start = j + 1
  end
  out[#out + 1] = s:sub(start)
  return out
end

-- Kong's is_array: every key 1..n present (string keys "1".."n" count too).
function _M.is_array(t)
  if type(t) ~= "table" then
    return false
  end
  local n = 0
  for _ in pairs(t) do
    n = n + 1
    if t[n] == nil and t[tostring(n)] == nil then
      return false
    end
  end
  return true
end

function _M.table_size(t)
  local n = 0
  for _ in pairs(t) do
    n = n + 1
  end
  return n
end

function _M.table_contains(arr, val)
  for _, v in ipairs(arr or {}) do
    if v == val then
      return true
    end
  end
  return false
end

function _M.shallow_copy(t)
  if type(t) ~= "table" then
    return t
  end
  local c = {}
  for k, v in pairs(t) do
    c[k] = v
  end
  return c
end

function _M.deep_copy(t)
  if type(t) ~= "table" then
    return t
  end
  local c = {}
  for k, v in pairs(t) do
    c[_M.deep_copy(k)] = _M.deep_copy(v)
  end
  return setmetatable(c, getmetatable(t))
end

-- A new table: t1's pairs overridden by t2's.
function _M.table_merge(t1, t2)
  local out = {}
  for k, v in pairs(t1 or {}) do
    out[k] = v
  end
  for k, v in pairs(t2 or {}) do
    out[k] = v
  end
  return out
end

-- The first message under a key is a string, later ones turn it into an array.
function _M.add_error(errors, k, v)
  errors = errors or {}
  if errors[k] == nil then
    errors[k] = v
  elseif type(errors[k]) == "table" then
    errors[k][#errors[k] + 1] = v
  else
    errors[k] = {errors[k], v}
  end
  return errors
end

-- true, module — or false when the module does not exist; a broken module raises.
function _M.load_module_if_exists(name)
  local ok, mod = pcall(require, name)
  if ok then
    return true, mod
  end
  if type(mod) == "string" and mod:find("module '" .. name .. "' not found", 1, true) then
    return false, mod
  end
  error(mod, 2)
end

return _M
