-- kong.tools.utils: the helpers plugin schemas use.
local utils = require "kong.tools.utils"

describe("kong.tools.utils", function()
  it("makes random v4 UUIDs and 32-hex random strings", function()
    local a, b = utils.uuid(), utils.uuid()
    assert.truthy(utils.is_valid_uuid(a))
    assert.not_equal(a, b)
    assert.matches("^%x%x%x%x%x%x%x%x%-%x%x%x%x%-4%x%x%x%-[89ab]%x%x%x%-", a)
    assert.matches("^" .. string.rep("%x", 32) .. "$", utils.random_string())
  end)

  it("strips, splits and tells arrays", function()
    assert.equal("a b", utils.strip("  a b \n"))
    assert.equal("", utils.strip(nil))
    assert.same({"a", "", "b"}, utils.split("a,,b"))
    assert.same({"a", "b:c"}, utils.split("a:b:c", ":", 2))
    assert.is_true(utils.is_array({}))
    assert.is_true(utils.is_array({"x", "y"}))
    assert.is_false(utils.is_array({x = 1}))
    assert.is_false(utils.is_array({[2] = "x"}))
  end)

  it("collects errors as Kong's add_error", function()
    local e = utils.add_error(nil, "f", "one")
    assert.same({f = "one"}, e)
    utils.add_error(e, "f", "two")
    assert.same({f = {"one", "two"}}, e)
  end)

  it("copies and merges tables", function()
    local t = {a = {b = 1}}
    local d = utils.deep_copy(t)
    d.a.b = 2
    assert.equal(1, t.a.b)
    assert.same({a = 1, b = 3}, utils.table_merge({a = 1, b = 2}, {b = 3}))
    assert.is_false(utils.load_module_if_exists("kong.plugins.nope.daos"))
  end)
end)
