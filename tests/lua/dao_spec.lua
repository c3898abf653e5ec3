-- Every DAO method: Kong 0.10.4's signatures, return shapes and raised argument errors.
local H = require "kdao_spec_helpers"
local kdao = require "kdao"

describe("DAO", function()
  local dao

  before_each(function()
    dao = H.clean()
  end)

  describe("insert()", function()
    it("returns the stored row with generated id and created_at", function()
      local api, err = dao.apis:insert {
        name = "example", hosts = {"example.com"}, upstream_url = "http://example.com",
      }
      assert.is_nil(err)
      assert.truthy(kdao.is_uuid(api.id))
      assert.equal("number", type(api.created_at))
      assert.equal(math.floor(api.created_at), api.created_at)
      assert.equal(60000, api.upstream_read_timeout) -- defaults filled
      assert.is_true(api.strip_uri)
    end)

    it("keeps a caller's id", function()
      local id = "4d924084-1adb-40a5-c042-63b19db421d1"
      local c = assert(dao.consumers:insert {id = id, username = "bob"})
      assert.equal(id, c.id)
    end)

    it("raises Kong's argument errors", function()
      assert.equal("bad argument #1 to 'insert' (table expected, got nil)",
                   H.raised(dao.apis.insert, dao.apis))
      assert.equal("bad argument #1 to 'insert' (table expected, got string)",
                   H.raised(dao.apis.insert, dao.apis, "api"))
      assert.equal("bad argument #2 to 'insert' (table expected, got string)",
                   H.raised(dao.apis.insert, dao.apis, {}, "quiet"))
    end)

    it("returns schema errors as Kong does", function()
      local api, err = dao.apis:insert {hosts = {"example.com"}}
      assert.is_nil(api)
      assert.is_true(err.schema)
      assert.equal("name is required", err.tbl.name)
      assert.equal("upstream_url is required", err.tbl.upstream_url)
    end)

    it("publishes nothing with {quiet = true}", function()
      local events = H.record_events(dao)
      assert(dao.consumers:insert({username = "quiet"}, {quiet = true}))
      assert.same({}, events)
    end)
  end)

  describe("find()", function()
    it("finds by primary key and ignores other fields", function()
      local api = H.api(dao, "findme")
      local row, err = dao.apis:find {id = api.id, name = "something else"}
      assert.is_nil(err)
      assert.same(api, row)
    end)

    it("returns nil when nothing matches", function()
      local row, err = dao.apis:find {id = "4d924084-1adb-40a5-c042-63b19db421d1"}
      assert.is_nil(row)
      assert.is_nil(err)
    end)

    it("raises without the primary key", function()
      assert.equal("Missing PRIMARY KEY field", H.raised(dao.apis.find, dao.apis, {name = "x"}))
      assert.equal("bad argument #1 to 'find' (table expected, got nil)",
                   H.raised(dao.apis.find, dao.apis))
    end)

    it("returns a schema error for an invalid uuid", function()
      local row, err = dao.apis:find {id = "abcd"}
      assert.is_nil(row)
      assert.is_true(err.schema)
      assert.equal("abcd is not a valid uuid", err.message)
    end)

    it("matches nothing for a value that is not UTF-8, replacing it as Kong does", function()
      local filter = {id = "\255\254"}
      local row, err = dao.consumers:find(filter)
      assert.is_nil(row)
      assert.not_equal("\255\254", filter.id)
      assert.is_true(err == nil or err.schema)
    end)
  end)

  describe("find_all()", function()
    it("returns every row, or those matching the filter", function()
      H.consumer(dao, "alice")
      H.consumer(dao, "bob")
      local rows, err = dao.consumers:find_all()
      assert.is_nil(err)
      assert.equal(2, #rows)
      rows = assert(dao.consumers:find_all {username = "bob"})
      assert.equal(1, #rows)
      assert.equal("bob", rows[1].username)
      assert.same({}, assert(dao.consumers:find_all {username = "carol"}))
    end)

    it("returns filter errors as schema errors", function()
      local rows, err = dao.consumers:find_all {foo = "bar"}
      assert.is_nil(rows)
      assert.is_true(err.schema)
      assert.equal("unknown field", err.tbl.foo)
      rows, err = dao.consumers:find_all {id = "nope"}
      assert.equal("nope is not a valid uuid", err.tbl.id)
    end)

    it("raises on a bad or empty filter", function()
      assert.equal("bad argument #1 to 'find_all' (table expected, got string)",
                   H.raised(dao.consumers.find_all, dao.consumers, "x"))
      assert.equal("bad argument #1 to 'find_all' (expected table to not be empty)",
                   H.raised(dao.consumers.find_all, dao.consumers, {}))
    end)
  end)

  describe("find_page()", function()
    it("pages with an offset until there is none", function()
      for i = 1, 5 do
        H.consumer(dao, "user" .. i)
      end
      local seen, offset, pages = {}, nil, 0
      repeat
        local rows, err, next_offset = dao.consumers:find_page(nil, offset, 2)
        assert.is_nil(err)
        assert.truthy(#rows <= 2)
        for _, r in ipairs(rows) do
          assert.is_nil(seen[r.username])
          seen[r.username] = true
        end
        offset, pages = next_offset, pages + 1
      until offset == nil or pages > 10
      assert.equal(3, pages)
      for i = 1, 5 do
        assert.is_true(seen["user" .. i])
      end
    end)

    it("defaults the page size to 100 and filters", function()
      for i = 1, 3 do
        H.consumer(dao, "p" .. i)
      end
      local rows, err, offset = dao.consumers:find_page()
      assert.is_nil(err)
      assert.equal(3, #rows)
      assert.is_nil(offset)
      rows = assert(dao.consumers:find_page({username = "p2"}, nil, 10))
      assert.equal(1, #rows)
    end)

    it("raises Kong's argument errors", function()
      assert.equal("bad argument #3 to 'find_page' (number expected, got string)",
                   H.raised(dao.consumers.find_page, dao.consumers, nil, nil, "ten"))
      assert.equal("bad argument #1 to 'find_page' (expected table to not be empty)",
                   H.raised(dao.consumers.find_page, dao.consumers, {}))
    end)
  end)

  describe("count()", function()
    it("counts all rows or those matching", function()
      assert.equal(0, dao.consumers:count())
      H.consumer(dao, "a")
      H.consumer(dao, "b")
      assert.equal(2, dao.consumers:count())
      assert.equal(1, dao.consumers:count {username = "a"})
      local n, err = dao.consumers:count {nope = 1}
      assert.is_nil(n)
      assert.equal("unknown field", err.tbl.nope)
      assert.equal("bad argument #1 to 'count' (expected table to not be empty)",
                   H.raised(dao.consumers.count, dao.consumers, {}))
    end)
  end)

  describe("update()", function()
    it("updates only the given fields and fills them from filter_keys", function()
      local api = H.api(dao, "upd")
      local values = {upstream_url = "http://other.com"}
      local row, err = dao.apis:update(values, {id = api.id})
      assert.is_nil(err)
      assert.equal("http://other.com", row.upstream_url)
      assert.equal("upd", row.name)
      assert.equal(api.id, values.id) -- Kong merges filter_keys into the caller's table
    end)

    it("replaces the entity with {full = true}", function()
      local c = H.consumer(dao, "full")
      assert(dao.consumers:update({custom_id = "c1"}, {id = c.id}))
      local row, err = dao.consumers:update({id = c.id, created_at = c.created_at,
                                             username = "full2"}, {id = c.id}, {full = true})
      assert.is_nil(err)
      assert.equal("full2", row.username)
      assert.is_nil(row.custom_id)
    end)

    it("returns nil when no row matches", function()
      local row, err = dao.consumers:update({username = "x"},
                                            {id = "4d924084-1adb-40a5-c042-63b19db421d1"})
      assert.is_nil(row)
      assert.is_nil(err)
    end)

    it("raises Kong's argument errors, in Kong's order", function()
      local c = dao.consumers
      assert.equal("bad argument #1 to 'update' (table expected, got nil)", H.raised(c.update, c))
      assert.equal("bad argument #1 to 'update' (expected table to not be empty)",
                   H.raised(c.update, c, {}))
      assert.equal("bad argument #2 to 'update' (table expected, got nil)",
                   H.raised(c.update, c, {username = "x"}))
      assert.equal("bad argument #2 to 'update' (expected table to not be empty)",
                   H.raised(c.update, c, {username = "x"}, {}))
      assert.equal("bad argument #3 to 'update' (table expected, got number)",
                   H.raised(c.update, c, {username = "x"}, {id = "y"}, 1))
    end)
  end)

  describe("delete()", function()
    it("returns the deleted row, then nil", function()
      local c = H.consumer(dao, "gone")
      local row, err = dao.consumers:delete {id = c.id}
      assert.is_nil(err)
      assert.same(c, row)
      row, err = dao.consumers:delete {id = c.id}
      assert.is_nil(row)
      assert.is_nil(err)
      assert.is_nil(dao.consumers:find {id = c.id})
    end)

    it("raises without the primary key or with bad arguments", function()
      assert.equal("Missing PRIMARY KEY field",
                   H.raised(dao.consumers.delete, dao.consumers, {username = "x"}))
      assert.equal("bad argument #1 to 'delete' (table expected, got nil)",
                   H.raised(dao.consumers.delete, dao.consumers))
      assert.equal("bad argument #2 to 'delete' (table expected, got boolean)",
                   H.raised(dao.consumers.delete, dao.consumers, {id = "x"}, true))
    end)

    it("cascades to the rows that reference it", function()
      local api = H.api(dao, "cascade")
      local c = H.consumer(dao, "cascader")
      assert(dao.plugins:insert {name = "key-auth", api_id = api.id})
      assert(dao.keyauth_credentials:insert {consumer_id = c.id, key = "k1"})
      assert(dao.apis:delete {id = api.id})
      assert.equal(0, dao.plugins:count())
      assert(dao.consumers:delete {id = c.id})
      assert.equal(0, dao.keyauth_credentials:count())
    end)
  end)

  describe("truncate()", function()
    it("empties the table", function()
      H.consumer(dao, "t1")
      assert.is_true(dao.consumers:truncate())
      assert.equal(0, dao.consumers:count())
    end)
  end)
end)

describe("factory", function()
  local dao

  before_each(function()
    dao = H.clean()
  end)

  it("exposes DAOs by entity name before its methods", function()
    assert.equal("apis", dao.apis.table)
    assert.equal("keyauth_credentials", dao.keyauth_credentials.table)
    assert.equal("kdao_test_tokens", dao.kdao_test_tokens.table)
    assert.equal("function", type(dao.run_migrations))
    assert.equal(H.backend, dao.db_type)
  end)

  it("describes the database with infos()", function()
    local infos = dao:infos()
    assert.equal("string", type(infos.desc))
    assert.equal("string", type(infos.name))
  end)

  it("runs migrations once", function()
    local ok, err = dao:run_migrations()
    assert.is_true(ok)
    assert.is_nil(err)
    local cur = assert(dao:current_migrations())
    assert.truthy(#cur.core > 0)
    assert.truthy(cur[H.plugin] and #cur[H.plugin] > 0)
    assert.equal(0, dao:pending_migrations())
  end)

  it("truncates every table", function()
    H.consumer(dao, "x")
    H.api(dao, "y")
    assert.is_true(dao:truncate_tables())
    assert.equal(0, dao.consumers:count())
    assert.equal(0, dao.apis:count())
  end)

  it("keeps the Kong configuration and plugin names it was given", function()
    assert.equal(H.backend, dao.kong_config.database)
    assert.is_true(dao.plugin_names[H.plugin])
  end)

  it("returns Kong's string error when the backend cannot be opened", function()
    local Factory = require "kong.dao.factory"
    local f, err = Factory.new {database = "sqlite", sqlite_path = "/nonexistent/dir/x.db"}
    if f then -- some backends open lazily: the first use fails instead
      local ok
      ok, err = f:run_migrations()
      assert.is_nil(ok)
      f:close()
    end
    assert.equal("string", type(err))
    assert.matches("^%[sqlite error%] ", err)
  end)

  it("refuses use after close", function()
    local Factory = require "kong.dao.factory"
    local f = assert(Factory.new(H.kong_config()))
    local consumers = f.consumers
    f:close()
    f:close() -- idempotent
    assert.matches("closed factory", H.raised(consumers.count, consumers))
  end)
end)
