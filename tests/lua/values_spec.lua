-- How Lua values map to stored values and back.
local H = require "kdao_spec_helpers"
local kdao = require "kdao"

describe("value mapping", function()
  local dao, consumer

  before_each(function()
    dao = H.clean()
    consumer = H.consumer(dao, "values")
  end)

  it("stores tables with keys 1..n as arrays", function()
    local api = assert(dao.apis:insert {
      name = "arr", hosts = {"a.com", "b.com"}, upstream_url = "http://a.com",
    })
    assert.same({"a.com", "b.com"}, api.hosts)
  end)

  it("keeps an empty plugin config an object and an empty array field an array", function()
    local p = assert(dao.plugins:insert {name = H.plugin, config = {}})
    assert.same({}, p.config.names)
    assert.equal(10, p.config.limit)
    local t = assert(dao.kdao_test_tokens:insert {consumer_id = consumer.id, tags = {}})
    assert.same({}, t.tags)
    local found = assert(dao.kdao_test_tokens:find {id = t.id})
    assert.same({}, found.tags)
  end)

  it("keeps integers integral and reals real", function()
    local api = assert(dao.apis:insert {
      name = "num", hosts = {"n.com"}, upstream_url = "http://n.com", retries = 7,
    })
    assert.equal(7, api.retries)
    assert.equal("7", tostring(api.retries))
    local p = assert(dao.plugins:insert {name = H.plugin, config = {limit = 2.5}})
    assert.equal(2.5, p.config.limit)
  end)

  it("takes kdao.null (or ngx.null, the same light userdata) as SQL NULL", function()
    assert.equal(kdao.null, kdao.null)
    assert.equal("userdata", type(kdao.null))
    local c = assert(dao.consumers:insert {username = "n", custom_id = kdao.null})
    assert.is_nil(c.custom_id) -- NULL columns are absent from rows, as in Kong
    local row = assert(dao.consumers:update({id = c.id, created_at = c.created_at,
                                             username = "n", custom_id = kdao.null},
                                            {id = c.id}, {full = true}))
    assert.is_nil(row.custom_id)
  end)

  it("converts string input as Kong's validator does", function()
    local api = assert(dao.apis:insert {
      name = "coerce", hosts = "c1.com, c2.com", upstream_url = "http://c.com",
      retries = "3", strip_uri = "false",
    })
    assert.same({"c1.com", "c2.com"}, api.hosts)
    assert.equal(3, api.retries)
    assert.is_false(api.strip_uri)
  end)

  it("raises on values JSON cannot hold", function()
    assert.matches("bad argument #1 to 'insert'",
                   H.raised(dao.consumers.insert, dao.consumers, {username = print}))
    local cyclic = {username = "c"}
    cyclic.self = cyclic
    assert.matches("too deep", H.raised(dao.consumers.insert, dao.consumers, cyclic))
  end)
end)
