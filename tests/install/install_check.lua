-- The Lua binding as installed: run with LUA_PATH and LUA_CPATH naming only the installed
-- tree, so every module below comes from it. Opens a factory on a SQLite file in the
-- directory given as argument (kdao.setup migrates), inserts an API and finds it again.
local dir = assert(arg[1], "usage: install_check.lua <dir>")

local kdao = require "kdao"
local setup = require "kdao.setup"
local singletons = require "kong.singletons"

local dao = assert(setup({database = "sqlite", sqlite_path = dir .. "/install_check_lua.db"}))
assert(singletons.dao == dao, "kdao.setup did not store the factory in kong.singletons")

local api = assert(dao.apis:insert {
  name = "mockbin",
  hosts = {"mockbin.com"},
  upstream_url = "http://mockbin.com",
})
assert(kdao.is_uuid(api.id), "inserted api has no uuid id")
local found = assert(dao.apis:find {id = api.id})
assert(found.name == "mockbin" and found.upstream_url == "http://mockbin.com",
       "find did not return the inserted api")

local _, err = dao.apis:insert {name = "mockbin", hosts = {"other.com"}, upstream_url = "http://a.b"}
assert(err and err.unique, "a second api named mockbin was not refused as unique")
dao:close()
print("lua: " .. package.searchpath("kdao", package.cpath))
