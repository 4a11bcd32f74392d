-- Loads the records one routing step needs, following links, in one round trip.
-- ARGV: prefix, k, new_id(0/1), with_members(0/1), freeing(0/1), n_items, n_agents,
--       n_waiting_queues, n_routable_queues, then the item ids, agent ids, waiting queues,
--       routable queues, then n_depths and (list marker, depth)* for lists read deeper than k.
--       A loaded agent brings the waiting items of its queues: from the lists of
--       the channels it has room for now (its `room` field), or, when the step may free capacity
--       (`freeing`), from the queue's list of all channels.
-- Returns a flat array: new_id, queues_version, n_items, (id, rec, state, ver)*, n_agents,
--       (id, profile, presence, work, awu, missed, idle, shown, ver)*, n_truncated,
--       (marker, score and id of the first member not read)* with marker
--       "a:" .. queue | "w:" .. queue .. ":" .. channel | "r:" .. queue.
-- Only the first k+1 members of a sorted set are read, so that a long queue costs no more than a
-- short one; a set with more than k is reported as truncated and the caller may ask again.
local p = ARGV[1]
local k = tonumber(ARGV[2])
local with_members = ARGV[4] == '1'
local freeing = ARGV[5] == '1'
local n_items, n_agents = tonumber(ARGV[6]), tonumber(ARGV[7])
local n_waiting, n_routable = tonumber(ARGV[8]), tonumber(ARGV[9])
local new_id = 0
if ARGV[3] == '1' then new_id = redis.call('INCR', p .. ':seq') end
local queues_version = redis.call('GET', p .. ':queues:version') or '0'

local out_items, out_agents, truncated = {}, {}, {}
local seen_items, seen_agents, seen_sets = {}, {}, {}

local function load_item(id)
  id = tostring(id)
  if seen_items[id] ~= nil then return seen_items[id] end
  local v = redis.call('HMGET', p .. ':item:' .. id, 'rec', 'state', 'ver', 'queue')
  if v[1] then
    out_items[#out_items + 1] = id
    for f = 1, 3 do out_items[#out_items + 1] = v[f] end
    -- The agent that holds the item, from its state "o:<agent>:<lease>" or "a:<agent>".
    v.agent = string.match(v[2], '^[oa]:(-?%d+)')
    v.queue = v[4]
    seen_items[id] = v
  else
    seen_items[id] = false
  end
  return seen_items[id]
end

local function load_agent(id)
  id = tostring(id)
  if seen_agents[id] ~= nil then return seen_agents[id] end
  local v = redis.call('HMGET', p .. ':agent:' .. id, 'profile', 'presence', 'work', 'awu', 'missed', 'idle',
    'shown', 'ver', 'queues', 'room')
  if v[1] then
    out_agents[#out_agents + 1] = id
    for f = 1, 8 do out_agents[#out_agents + 1] = v[f] end
    seen_agents[id] = v
  else
    seen_agents[id] = false
  end
  return seen_agents[id]
end

local function unpad(id)
  local stripped = string.gsub(id, '^0+', '')
  if stripped == '' then return '0' end
  return stripped
end

local depths = {}
do
  local at = 10 + n_items + n_agents + n_waiting + n_routable
  for _ = 1, tonumber(ARGV[at]) do
    depths[ARGV[at + 1]] = tonumber(ARGV[at + 2])
    at = at + 2
  end
end

local function read_set(marker, key, loader)
  if seen_sets[marker] then return end
  seen_sets[marker] = true
  local k = depths[marker] or k
  local entries = redis.call('ZRANGE', key, 0, k, 'WITHSCORES')
  -- Waiting lists hold zero-padded ids (so that equal scores order by id); keys do not.
  for i = 1, math.min(#entries / 2, k) do loader(unpad(entries[2 * i - 1])) end
  if #entries / 2 > k then
    -- The first member left out: nothing unread comes before it.
    truncated[#truncated + 1] = marker
    truncated[#truncated + 1] = entries[2 * k + 2]
    truncated[#truncated + 1] = unpad(entries[2 * k + 1])
  end
end

local function waiting_of(queue, channel)
  read_set('w:' .. queue .. ':' .. channel, p .. ':queue:' .. queue .. ':waiting:' .. channel, load_item)
end

local function all_waiting_of(queue)
  read_set('a:' .. queue, p .. ':queue:' .. queue .. ':waiting', load_item)
end

local function routable_of(queue)
  read_set('r:' .. queue, p .. ':queue:' .. queue .. ':routable', load_agent)
end

local function members_of(queue)
  for _, id in ipairs(redis.call('SMEMBERS', p .. ':queue:' .. queue .. ':members')) do
    load_agent(id)
  end
end

local function expand_item(v)
  if not v then return end
  routable_of(v.queue)
  if with_members then members_of(v.queue) end
end

local function expand_agent(v)
  if not v then return end
  for item in string.gmatch(v[3], '(%d+):[^;]*') do expand_item(load_item(item)) end
  local room = cjson.decode(v[10])
  for _, queue in ipairs(cjson.decode(v[9])) do
    if freeing then
      all_waiting_of(queue)
    else
      for _, channel in ipairs(room) do waiting_of(queue, channel) end
    end
  end
end

local pos = 10
local linked = {}
for _ = 1, n_items do
  local v = load_item(ARGV[pos])
  pos = pos + 1
  if v then
    expand_item(v)
    if v.agent then linked[#linked + 1] = v.agent end
  end
end
for _ = 1, n_agents do
  linked[#linked + 1] = ARGV[pos]
  pos = pos + 1
end
local expanded = {}
for _, id in ipairs(linked) do
  if not expanded[id] then
    expanded[id] = true
    expand_agent(load_agent(id))
  end
end
for _ = 1, n_waiting do
  all_waiting_of(ARGV[pos])
  pos = pos + 1
end
for _ = 1, n_routable do
  routable_of(ARGV[pos])
  pos = pos + 1
end

local out = { tostring(new_id), queues_version, tostring(#out_items / 4) }
for _, v in ipairs(out_items) do out[#out + 1] = v end
out[#out + 1] = tostring(#out_agents / 9)
for _, v in ipairs(out_agents) do out[#out + 1] = v end
out[#out + 1] = tostring(#truncated / 3)
for _, v in ipairs(truncated) do out[#out + 1] = v end
return out
