-- Error objects: Kong's four kinds, their fields and their string forms, from the DAOs and
-- from kong.dao.errors, which share one metatable.
local H = require "kdao_spec_helpers"
local Errors = require "kong.dao.errors"
local kdao = require "kdao"

describe("errors from DAOs", function()
  local dao

  before_each(function()
    dao = H.clean()
  end)

  it("unique: flag, tbl, message, db_name and string", function()
    H.api(dao, "dup")
    local api, err = dao.apis:insert {
      name = "dup", hosts = {"other.com"}, upstream_url = "http://other.com",
    }
    assert.is_nil(api)
    assert.is_true(err.unique)
    assert.is_nil(err.schema)
    assert.equal(H.backend, err.db_name)
    assert.equal("already exists with value 'dup'", err.tbl.name)
    assert.equal("name=already exists with value 'dup'", err.message)
    assert.equal("[" .. H.backend .. " error] name=already exists with value 'dup'",
                 tostring(err))
    assert.truthy(kdao.is_error(err))
    assert.equal(kdao.error_mt, getmetatable(err))
  end)

  it("foreign: a reference to a missing row", function()
    local missing = "4d924084-1adb-40a5-c042-63b19db421d1"
    local row, err = dao.keyauth_credentials:insert {consumer_id = missing, key = "k"}
    assert.is_nil(row)
    assert.is_true(err.foreign)
    assert.equal("does not exist with value '" .. missing .. "'", err.tbl.consumer_id)
    assert.equal("[" .. H.backend .. " error] consumer_id=does not exist with value '"
                 .. missing .. "'", tostring(err))
  end)

  it("schema: field messages, several per field joined by ','", function()
    local row, err = dao.consumers:update({id = "4d924084-1adb-40a5-c042-63b19db421d1",
                                           username = ""},
                                          {id = "4d924084-1adb-40a5-c042-63b19db421d1"},
                                          {full = true})
    assert.is_nil(row)
    assert.is_true(err.schema)
    assert.equal("string", type(err.message))
    local _, serr = dao.apis:insert {name = "x", hosts = {"x.com"}, upstream_url = "nope",
                                     retries = "many"}
    assert.is_true(serr.schema)
    assert.equal("retries is not a number", serr.tbl.retries)
    assert.equal("[" .. H.backend .. " error] retries=retries is not a number "
                 .. "upstream_url=upstream_url is not a url", tostring(serr))
  end)

  it("concatenates with strings on either side", function()
    local _, err = dao.consumers:insert {}
    assert.equal("x: " .. tostring(err), "x: " .. err)
    assert.equal(tostring(err) .. " :x", err .. " :x")
  end)
end)

describe("kong.dao.errors", function()
  it("returns nil for nil and an error object unchanged", function()
    assert.is_nil(Errors.schema(nil))
    local e = Errors.db("boom")
    assert.equal(e, Errors.schema(e))
  end)

  it("builds each kind from a message", function()
    for _, kind in ipairs {"unique", "foreign", "schema", "db"} do
      local e = Errors[kind]("something failed")
      assert.is_true(e[kind])
      assert.equal("something failed", e.message)
      assert.is_nil(e.tbl)
      assert.equal("something failed", tostring(e))
      assert.equal("[postgres error] something failed", tostring(Errors[kind]("something failed",
                                                                               "postgres")))
    end
  end)

  it("builds field maps: unique and foreign from values, others as given", function()
    local u = Errors.unique({name = "foo"}, "postgres")
    assert.equal("already exists with value 'foo'", u.tbl.name)
    assert.equal("[postgres error] name=already exists with value 'foo'", tostring(u))
    local f = Errors.foreign {foreign_a = "foo", foreign_b = "bar"}
    assert.equal("foreign_a=does not exist with value 'foo' "
                 .. "foreign_b=does not exist with value 'bar'", tostring(f))
    local tbl = {string = {"string is required", "string is required"}}
    local s = Errors.schema(tbl)
    assert.equal(tbl, s.tbl) -- the same table, as Kong
    assert.equal("string=string is required,string is required", s.message)
  end)

  it("prints nested maps recursively", function()
    local s = Errors.schema {config = {limit = "limit is not a number"}, name = "bad"}
    assert.equal("config=limit=limit is not a number name=bad", s.message)
  end)

  it("is what kong.tools.printable gives", function()
    local printable = require "kong.tools.printable"
    assert.equal("a=1 b=x,y", tostring(setmetatable({b = {"x", "y"}, a = 1}, printable)))
  end)
end)
