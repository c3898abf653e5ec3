-- The seed: Kong 0.10's plugin-development chapter "Accessing the datastore", verbatim,
-- after the one-call setup that makes singletons.dao what Kong's init made it.
local H = require "kdao_spec_helpers"

describe("seed snippet", function()
  setup(function()
    H.clean()
    local dao = assert(require("kdao.setup")(H.kong_config()))
    assert.equal(require("kong.singletons").dao, dao)
  end)

  teardown(function()
    local singletons = require "kong.singletons"
    if singletons.dao then
      singletons.dao:close()
      singletons.dao = nil
    end
  end)

  it("runs verbatim", function()
    local singletons = require "kong.singletons"
    local dao = singletons.dao

    local inserted_api, err = dao.apis:insert({
      name = "mockbin",
      hosts = { "mockbin.com" },
      upstream_url = "http://mockbin.com"
    })

    assert.is_nil(err)
    assert.equal("mockbin", inserted_api.name)
    assert.same({"mockbin.com"}, inserted_api.hosts)
    assert.equal("http://mockbin.com", inserted_api.upstream_url)
    assert.truthy(require("kdao").is_uuid(inserted_api.id))
    assert.equal("number", type(inserted_api.created_at))

    -- and the row is really there, for every DAO of the same database
    local found = assert(dao.apis:find {id = inserted_api.id})
    assert.same(inserted_api, found)
  end)

  it("gives the core DAOs the chapter lists", function()
    local singletons = require "kong.singletons"
    assert.truthy(singletons.dao.apis)
    assert.truthy(singletons.dao.consumers)
    assert.truthy(singletons.dao.plugins)
  end)
end)

describe("kdao.setup", function()
  it("reads a kdao configuration file", function()
    local path = H.tmpdir .. "/kdao_lua_setup.conf"
    local f = assert(io.open(path, "w"))
    f:write("# a kong.conf-style file\n")
    f:write("database = sqlite\n")
    f:write("sqlite_path = " .. H.tmpdir .. "/kdao_lua_setup.db\n")
    f:close()
    local dao = assert(require("kdao.setup")(path))
    assert.equal("sqlite", dao:db_name())
    assert.equal(0, dao.apis:count())
    dao:close()
    require("kong.singletons").dao = nil
  end)

  it("returns Kong's string error for a bad configuration", function()
    local dao, err = require("kdao.setup")({database = "oracle"})
    assert.is_nil(dao)
    assert.equal("string", type(err))
    assert.matches("oracle", err, 1, true)
  end)
end)
