-- Entity change events: Kong's payload for every write, cascades included.
local H = require "kdao_spec_helpers"

describe("events", function()
  local dao

  before_each(function()
    dao = H.clean()
  end)

  after_each(function()
    dao:set_events_handler(nil)
  end)

  it("publishes ENTITY_CREATED, ENTITY_UPDATED and ENTITY_DELETED", function()
    local events = H.record_events(dao)
    local c = H.consumer(dao, "ev")
    assert(dao.consumers:update({custom_id = "x"}, {id = c.id}))
    assert(dao.consumers:delete {id = c.id})
    assert.equal(3, #events)
    assert.same({"ENTITY_CREATED", "ENTITY_UPDATED", "ENTITY_DELETED"},
                {events[1].type, events[2].type, events[3].type})
    for _, e in ipairs(events) do
      assert.equal("consumers", e.collection)
      assert.same({"id"}, e.primary_key)
      assert.equal(c.id, e.entity.id)
    end
    assert.equal("x", events[2].entity.custom_id)
    assert.is_nil(events[2].old_entity.custom_id)
  end)

  it("publishes one ENTITY_DELETED per row a cascade removed", function()
    local api = H.api(dao, "evc")
    local p = assert(dao.plugins:insert {name = "key-auth", api_id = api.id})
    local events = H.record_events(dao)
    assert(dao.apis:delete {id = api.id})
    local seen = {}
    for _, e in ipairs(events) do
      assert.equal("ENTITY_DELETED", e.type)
      seen[e.collection] = e.entity
    end
    assert.equal(2, #events)
    assert.equal(api.id, seen.apis.id)
    assert.equal(p.id, seen.plugins.id)
  end)

  it("uses a Lua schema's marshall_event", function()
    local c = H.consumer(dao, "m")
    local events = H.record_events(dao)
    local t = assert(dao.kdao_test_tokens:insert {consumer_id = c.id, token = "m1"})
    assert.equal(1, #events)
    assert.equal("kdao_test_tokens", events[1].collection)
    assert.same({id = t.id, consumer_id = c.id}, events[1].entity)
  end)

  it("talks to Kong's events object through publish(CLUSTER_PROPAGATE, payload)", function()
    local published = {}
    local events_obj = {TYPES = {CLUSTER_PROPAGATE = "CLUSTER_PROPAGATE"}}
    function events_obj:publish(type, payload)
      published[#published + 1] = {self = self, type = type, payload = payload}
    end
    local Factory = require "kong.dao.factory"
    local f = assert(Factory.new(H.kong_config(), events_obj))
    local c = assert(f.consumers:insert {username = "kong-events"})
    f:close()
    assert.equal(1, #published)
    assert.equal(events_obj, published[1].self)
    assert.equal("CLUSTER_PROPAGATE", published[1].type)
    assert.equal("ENTITY_CREATED", published[1].payload.type)
    assert.equal(c.id, published[1].payload.entity.id)
  end)

  it("lets an error in the handler reach the caller", function()
    dao:set_events_handler(function() error("handler failed") end)
    assert.matches("handler failed", H.raised(dao.consumers.insert, dao.consumers,
                                              {username = "raise"}))
  end)
end)
