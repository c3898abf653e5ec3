-- A Kong-style plugin found on package.path (fixtures/kong/plugins/kdao-test): its daos.lua
-- entity and its schema.lua config schema, with Lua functions called by the C validator.
local H = require "kdao_spec_helpers"

describe("plugin entities from daos.lua", function()
  local dao, consumer, tokens

  before_each(function()
    dao = H.clean()
    consumer = H.consumer(dao, "owner")
    tokens = dao.kdao_test_tokens
  end)

  local function insert(t)
    t.consumer_id = t.consumer_id or consumer.id
    return tokens:insert(t)
  end

  it("is a DAO of the factory, with a migrated table", function()
    assert.equal("kdao_test_tokens", tokens.table)
    assert.equal(0, tokens:count())
    local cur = assert(dao:current_migrations())
    assert.truthy(cur[H.plugin])
  end)

  it("validates and persists through every method", function()
    local t, err = insert {token = "abc", tags = {"x", "y"}}
    assert.is_nil(err)
    assert.equal("abc", t.token)
    assert.same({"x", "y"}, t.tags)
    assert.equal(0, t.uses)
    assert.same(t, tokens:find {id = t.id})
    assert.equal(1, #assert(tokens:find_all {consumer_id = consumer.id}))
    local rows, perr = tokens:find_page({consumer_id = consumer.id}, nil, 10)
    assert.is_nil(perr)
    assert.equal(1, #rows)
    local u = assert(tokens:update({uses = 5}, {id = t.id}))
    assert.equal(5, u.uses)
    assert.equal("abc", u.token)
    assert.same(u, tokens:delete {id = t.id})
    assert.equal(0, tokens:count())
  end)

  it("merges the new_fields a func returns (generate_if_missing)", function()
    local t = assert(insert {})
    assert.equal("tok-" .. consumer.id:sub(1, 8), t.token)
  end)

  it("records a func's message under its field", function()
    local t, err = insert {token = "t1", scope = "Not Lower"}
    assert.is_nil(t)
    assert.is_true(err.schema)
    assert.equal("scope must be lowercase letters", err.tbl.scope)
    -- partial updates run the func of the fields given
    local ok = assert(insert {token = "t2"})
    local u, uerr = tokens:update({scope = "UP"}, {id = ok.id})
    assert.is_nil(u)
    assert.equal("scope must be lowercase letters", uerr.tbl.scope)
  end)

  it("computes a default with a function of the entity", function()
    assert.equal("admin", assert(insert {token = "admin-1", extra = {level = 3}}).scope)
    assert.equal("read", assert(insert {token = "plain"}).scope)
  end)

  it("chooses a nested schema with a function of the entity", function()
    local t, err = insert {token = "admin-2", extra = {}}
    assert.is_nil(t)
    assert.equal("level is required", err.tbl["extra.level"])
    t, err = insert {token = "basic", extra = {level = 2}}
    assert.is_nil(t)
    assert.equal("only admins go above level 1", err.tbl["extra.level"])
    t = assert(insert {token = "basic-ok", extra = {level = 1}})
    assert.equal("none", t.extra.note) -- the nested schema's default
  end)

  it("returns a self_check's error object as it is, with db_name set", function()
    local t, err = insert {token = "f", scope = "forbidden"}
    assert.is_nil(t)
    assert.is_true(err.schema)
    assert.equal("the forbidden scope is forbidden", err.message)
    assert.equal("[" .. H.backend .. " error] the forbidden scope is forbidden", tostring(err))
    t, err = insert {token = "taken"}
    assert.is_nil(t)
    assert.is_true(err.unique)
    assert.equal("already exists with value 'taken'", err.tbl.token)
  end)

  it("returns nil, nil when a self_check says false without an error", function()
    local t, err = insert {token = "silent"}
    assert.is_nil(t)
    assert.is_nil(err)
    assert.equal(0, tokens:count())
  end)

  it("raises what a schema function raises, writing nothing", function()
    assert.matches("self_check exploded", H.raised(insert, {token = "boom"}))
    assert.equal(0, tokens:count())
  end)

  it("hands self_check the DAO and stores the changes it makes", function()
    local t = assert(insert {token = "upper", uses = 1})
    assert.equal("UPPER", t.token)
    assert.equal("UPPER", assert(tokens:find {id = t.id}).token)
  end)

  it("enforces unique and foreign fields of the entity", function()
    assert(insert {token = "same"})
    local t, err = insert {token = "same"}
    assert.is_nil(t)
    assert.is_true(err.unique)
    local missing = "4d924084-1adb-40a5-c042-63b19db421d1"
    t, err = insert {token = "orphan", consumer_id = missing}
    assert.is_nil(t)
    assert.is_true(err.foreign)
    assert.equal("does not exist with value '" .. missing .. "'", err.tbl.consumer_id)
  end)

  it("is deleted with the consumer it references", function()
    assert(insert {token = "c1"})
    assert(insert {token = "c2"})
    assert(dao.consumers:delete {id = consumer.id})
    assert.equal(0, tokens:count())
  end)
end)

describe("plugin config from schema.lua", function()
  local dao

  before_each(function()
    dao = H.clean()
  end)

  it("fills defaults and validates with the Lua functions", function()
    local p = assert(dao.plugins:insert {name = H.plugin, config = {names = {"a"}}})
    assert.equal(10, p.config.limit)
    assert.equal("safe", p.config.mode)
    assert.same({"a"}, p.config.names)

    local bad, err = dao.plugins:insert {name = H.plugin, config = {limit = -1}}
    assert.is_nil(bad)
    assert.is_true(err.schema)
    assert.equal("limit must be positive", err.tbl["config.limit"])
  end)

  it("checks enums and the config self_check", function()
    local p, err = dao.plugins:insert {name = H.plugin, config = {mode = "slow"}}
    assert.is_nil(p)
    assert.equal('"slow" is not allowed. Allowed values are: "fast", "safe"',
                 err.tbl["config.mode"])
    p, err = dao.plugins:insert {name = H.plugin, config = {mode = "fast", limit = 500}}
    assert.is_nil(p)
    assert.is_true(err.schema)
    -- Kong: a nested self_check failure is recorded under the field with its message
    assert.equal("fast mode allows a limit of at most 100", err.tbl.config)
    assert.equal("config=fast mode allows a limit of at most 100", err.message)
  end)

  it("refuses a consumer for a no_consumer plugin", function()
    local c = H.consumer(dao, "nc")
    local p, err = dao.plugins:insert {name = H.plugin, consumer_id = c.id, config = {}}
    assert.is_nil(p)
    assert.is_true(err.schema)
  end)

  it("merges a partial config update with the stored config", function()
    local p = assert(dao.plugins:insert {name = H.plugin, config = {limit = 3, names = {"x"}}})
    local u = assert(dao.plugins:update({config = {limit = 4}}, {id = p.id, name = p.name}))
    assert.equal(4, u.config.limit)
    assert.same({"x"}, u.config.names)
  end)
end)
