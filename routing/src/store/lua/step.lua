-- The hot path in one round trip: an agent accepts an offer, completes an assigned item, or
-- becomes available, and is offered the best eligible waiting item of its queues, decided here
-- with the core's rules (`RouterCore::offer_accepted`, `work_completed`, `set_presence`,
-- `route_agent`, `offer`, `show_states`). `redis_decides_like_memory` holds this script to the
-- core's decisions.
-- ARGV: prefix, op ('accept' | 'complete' | 'available'), agent id, item id (or ''), now (ms),
--       offer timeout (ms), node.
-- Returns {'ok', JSON array of actions}, or {'fallback'} when the step needs the general path:
-- an unknown record, an input the core would reject (it produces the exact error), or a due
-- deadline (an item whose relaxation step is due would be judged on stale requirements here;
-- once every due deadline is handled, each waiting item sits in the list of exactly the
-- requirements that apply to it now).
local p, op, agent_id, item_id = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local now, offer_ms, node = tonumber(ARGV[5]), tonumber(ARGV[6]), ARGV[7]
local CHANNELS = { 'voice', 'email', 'web-form', 'facebook', 'chat', 'callback' }
local FALLBACK = { 'fallback' }

if #redis.call('ZRANGEBYSCORE', p .. ':deadlines', '-inf', ARGV[5], 'LIMIT', 0, 1) > 0 then return FALLBACK end

local function num(n) return string.format('%.0f', n) end
local function pad(id) return string.rep('0', 20 - #id) .. id end
local function unpad(member)
  local stripped = string.gsub(member, '^0+', '')
  if stripped == '' then return '0' end
  return stripped
end

local akey = p .. ':agent:' .. agent_id
local a = redis.call('HMGET', akey, 'profile', 'presence', 'work', 'awu', 'missed', 'idle', 'shown', 'ver')
if not a[1] then return FALLBACK end
local ikey = p .. ':item:' .. item_id
local i = { 'w', nil }
if op ~= 'available' then
  i = redis.call('HMGET', ikey, 'state', 'queue', 'ver')
  if not i[1] then return FALLBACK end
end

local profile = cjson.decode(a[1])
local presence, missed, idle, shown = a[2], a[5], a[6], a[7]
local awu = nil
if a[4] and a[4] ~= '' then awu = tonumber(a[4]) end
-- Held work, as the core's `HeldWork` list: "item:channel:cost:accepted;...".
local work = {}
for item, channel, cost, acc in string.gmatch(a[3] or '', '(%d+):([^:;]+):(%d+):([01])') do
  work[#work + 1] = { item = item, channel = channel, cost = tonumber(cost), acc = acc == '1' }
end
local held, held_at = nil, nil
for index, h in ipairs(work) do
  if h.item == item_id then held, held_at = h, index; break end
end

local function contains(list, value)
  for _, candidate in ipairs(list or {}) do
    if candidate == value then return true end
  end
  return false
end

-- `decide::fits`: work on channels the incoming channel may interrupt does not count.
local function fits(channel, size)
  local cost = (profile.channel_weights[channel] or profile.capacity) * math.max(size, 1)
  local interruptible = profile.interruptions[channel]
  local used = 0
  for _, h in ipairs(work) do
    if not contains(interruptible, h.channel) then used = used + h.cost end
  end
  return used + cost <= profile.capacity
end

-- Requirements as the store writes them: "/<level>:<skill>" each, '%' and '/' escaped in names.
local function meets(requirements)
  for level, skill in string.gmatch(requirements, '/(%d+):([^/]*)') do
    if string.find(skill, '%', 1, true) then
      skill = string.gsub(skill, '%%(%x%x)', function(hex) return string.char(tonumber(hex, 16)) end)
    end
    local have = profile.skills[skill]
    if have == nil or have < tonumber(level) then return false end
  end
  return true
end

local function offered_item()
  for _, h in ipairs(work) do
    if not h.acc then return h.item end
  end
  return nil
end

local function routable()
  return presence == '"Available"' and not offered_item() and not awu
end

local function can_take_work()
  if not routable() then return false end
  for _, channel in ipairs(CHANNELS) do
    if fits(channel, 1) then return true end
  end
  return false
end

-- The agent's index entries as they are, so that only changed ones are written back.
local indexed_since = can_take_work() and idle
local indexed_awu = awu

local actions, events = {}, {}
local function event(item, queue, channel, kind)
  events[#events + 1] = '{"at":' .. num(now) .. ',"item":' .. (item or 'null') .. ',"agent":' .. agent_id ..
    ',"queue":' .. (queue and cjson.encode(queue) or 'null') ..
    ',"channel":' .. (channel and ('"' .. channel .. '"') or 'null') .. ',"kind":' .. kind .. '}'
end

local queue = i[2]
if op == 'accept' then
  if not (held and not held.acc and string.sub(i[1], 1, #agent_id + 3) == 'o:' .. agent_id .. ':') then
    return FALLBACK
  end
  held.acc = true
  missed = '0'
  idle = ARGV[5]
  redis.call('HSET', ikey, 'state', 'a:' .. agent_id, 'ver', (tonumber(i[3]) or 0) + 1)
  redis.call('ZREM', p .. ':deadlines', 'i:' .. pad(item_id))
  event(item_id, queue, held.channel, '"Accepted"')
elseif op == 'complete' then
  if not (held and held.acc and i[1] == 'a:' .. agent_id) then return FALLBACK end
  -- An assigned item has no deadline and sits in no list.
  redis.call('DEL', ikey)
  event(item_id, queue, held.channel, '"Completed"')
  table.remove(work, held_at)
  idle = ARGV[5]
  local after_work = profile.after_work[held.channel]
  if after_work then
    local until_ms = now + after_work.secs * 1000 + math.floor(after_work.nanos / 1000000)
    if not awu or awu < until_ms then awu = until_ms end
  end
elseif op == 'available' then
  -- Coming back resets the idle time and the missed offers; being there already changes nothing.
  if presence ~= '"Available"' then
    presence = '"Available"'
    idle = ARGV[5]
    missed = '0'
  end
else
  return redis.error_reply('unknown op ' .. tostring(op))
end

-- `RouterCore::offer`: the item leaves its lists, and the list's next member becomes its head.
local function offer(queue, listed, channel, ranked, key, version)
  local padded = string.match(ranked, '|(%d+)$')
  local id = unpad(padded)
  local lease = now + offer_ms
  redis.call('HSET', p .. ':item:' .. id, 'state', 'o:' .. agent_id .. ':' .. num(lease), 'ver', version + 1)
  local lists = p .. ':queue:' .. queue .. ':waiting'
  redis.call('ZREM', lists, padded)
  redis.call('ZREM', lists .. ':' .. channel, padded)
  redis.call('ZREM', key, ranked)
  local head = redis.call('ZRANGE', key, 0, 0)[1]
  if head then
    redis.call('HSET', p .. ':queue:' .. queue .. ':routing', listed, head)
  else
    redis.call('HDEL', p .. ':queue:' .. queue .. ':routing', listed)
  end
  redis.call('ZADD', p .. ':deadlines', num(lease), 'i:' .. padded)
  local size = tonumber(string.match(listed, '^[^:]+:(%d+)'))
  local cost = (profile.channel_weights[channel] or profile.capacity) * math.max(size, 1)
  work[#work + 1] = { item = id, channel = channel, cost = cost, acc = false }
  actions[#actions + 1] = '{"OfferItem":{"item":' .. id .. ',"agent":' .. agent_id .. ',"queue":' ..
    cjson.encode(queue) .. ',"channel":"' .. channel .. '","lease_until":' .. num(lease) .. '}}'
  event(id, queue, channel, '"Offered"')
end

-- `RouterCore::route_agent` over the lists split by requirement signature, through each queue's
-- routing hash: `*` holds the queue's default skills, `<channel>:<signature>` the head of that
-- list. List members are "<score, order-preserving>|<padded id>", so heads compare as strings in
-- the core's (score, id) order, and whether the agent may take a list's items (signature met,
-- room for its channel and size) is worked out only for a head that would beat the best so far.
-- A list is read past its head only when the head excluded the agent.
local function route_agent()
  if not can_take_work() then return end
  local met, channel_of = {}, {}
  local function eligible_channel(listed)
    local known = channel_of[listed]
    if known == nil then
      local channel, sig = string.match(listed, '^([^:]+):(.*)$')
      if met[sig] == nil then met[sig] = meets(sig) end
      known = met[sig] and fits(channel, tonumber(string.match(sig, '^(%d+)'))) and channel or false
      channel_of[listed] = known
    end
    return known
  end
  local routing = {}
  for index, q in ipairs(profile.queues) do
    routing[index] = redis.call('HGETALL', p .. ':queue:' .. q .. ':routing')
  end
  -- Lists read past a head that excluded the agent: list key -> { rank = n, ranked = member or false }.
  local deeper = {}
  local any_deeper = false
  while true do
    local best, best_queue, best_listed = nil, nil, nil
    for index, q in ipairs(profile.queues) do
      local fields = routing[index]
      local allowed, queue_best, queue_listed = true, nil, nil
      for j = 1, #fields, 2 do
        local listed, head = fields[j], fields[j + 1]
        if listed == '*' then
          allowed = meets(head)
        else
          if any_deeper then
            local read = deeper[p .. ':queue:' .. q .. ':by-sig:' .. listed]
            if read then head = read.ranked end
          end
          if head and (not queue_best or head < queue_best) and eligible_channel(listed) then
            queue_best, queue_listed = head, listed
          end
        end
      end
      if allowed and queue_best and (not best or queue_best < best) then
        best, best_queue, best_listed = queue_best, q, queue_listed
      end
    end
    if not best then return end
    local key = p .. ':queue:' .. best_queue .. ':by-sig:' .. best_listed
    local item = redis.call('HMGET', p .. ':item:' .. unpad(string.match(best, '|(%d+)$')), 'excl', 'ver')
    if not string.find(item[1] or '', ',' .. agent_id .. ',', 1, true) then
      offer(best_queue, best_listed, channel_of[best_listed], best, key, tonumber(item[2]) or 0)
      return
    end
    local read = deeper[key] or { rank = 0 }
    read.rank = read.rank + 1
    read.ranked = redis.call('ZRANGE', key, read.rank, read.rank)[1] or false
    deeper[key] = read
    any_deeper = true
  end
end

route_agent()

-- `AgentRecord::state`, spelled as serde spells `AgentState` (and `Presence` for the rest).
local state = presence
local offered = offered_item()
if offered then
  state = '{"Offered":{"item":' .. offered .. '}}'
elseif #work > 0 then
  state = '"Busy"'
elseif awu then
  state = '{"AfterWork":{"until":' .. num(awu) .. '}}'
end
if state ~= shown then
  shown = state
  actions[#actions + 1] = '{"ShowAgentState":{"agent":' .. agent_id .. ',"state":' .. state .. '}}'
  event(nil, nil, nil, '{"AgentStateChanged":{"state":' .. state .. '}}')
end

local encoded, room = {}, {}
for _, h in ipairs(work) do
  encoded[#encoded + 1] = h.item .. ':' .. h.channel .. ':' .. h.cost .. ':' .. (h.acc and '1' or '0')
end
for _, channel in ipairs(CHANNELS) do
  if fits(channel, 1) then room[#room + 1] = '"' .. channel .. '"' end
end
redis.call('HSET', akey, 'presence', presence, 'work', table.concat(encoded, ';'), 'awu', awu and num(awu) or '',
  'missed', missed, 'idle', idle, 'shown', shown, 'room', '[' .. table.concat(room, ',') .. ']',
  'ver', (tonumber(a[8]) or 0) + 1)
-- `agent_index`: routable in each of its queues by idle time while it can take work.
local since = #room > 0 and routable() and idle
if since ~= indexed_since then
  for _, q in ipairs(profile.queues) do
    if since then
      redis.call('ZADD', p .. ':queue:' .. q .. ':routable', since, agent_id)
    else
      redis.call('ZREM', p .. ':queue:' .. q .. ':routable', agent_id)
    end
  end
end
if awu ~= indexed_awu then
  if awu then
    redis.call('ZADD', p .. ':deadlines', num(awu), 'a:' .. pad(agent_id))
  else
    redis.call('ZREM', p .. ':deadlines', 'a:' .. pad(agent_id))
  end
end

-- One stream entry per step, one `e` field per event.
local fields = {}
for _, e in ipairs(events) do
  fields[#fields + 1] = 'e'
  fields[#fields + 1] = e
end
if #fields > 0 then redis.call('XADD', p .. ':events', 'MAXLEN', '~', '1000000', '*', unpack(fields)) end
local json = '[' .. table.concat(actions, ',') .. ']'
if #actions > 0 then
  redis.call('PUBLISH', p .. ':notify', '{"node":' .. cjson.encode(node) .. ',"actions":' .. json .. '}')
end
return { 'ok', json }
