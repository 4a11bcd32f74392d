-- Commits one batch of routing steps that a node decided on its replica, but only if no other
-- batch was committed since the version the node decided on (see `store::redis`).
-- ARGV: prefix, expected version, next item id, changes (JSON, '' when the batch changed no
-- record), events (JSON array, '' when none), notice (JSON, '' when no action), change entries
-- kept, event entries kept, then five groups, each a count and its arguments:
-- item writes (id, JSON)*, item removals (id)*, agent writes (id, JSON)*, agent removals (id)*,
-- queue writes (id, JSON)*.
-- Returns {'ok', new version, change entry id}, {'ok'} when nothing was written, or
-- {'conflict', the current version}.
local p = ARGV[1]
local current = redis.call('GET', p .. ':version') or '0'
if current ~= ARGV[2] then
  return {'conflict', current}
end
local pos = 9
local function each(command, key, width)
  local count = tonumber(ARGV[pos])
  local first, last = pos + 1, pos + count * width
  -- In slices: unpack() of thousands of arguments overflows Lua's C stack.
  while first <= last do
    local stop = math.min(first + 1000 * width - 1, last)
    redis.call(command, key, unpack(ARGV, first, stop))
    first = stop + 1
  end
  pos = last + 1
end
each('HSET', p .. ':items', 2)
each('HDEL', p .. ':items', 1)
each('HSET', p .. ':agents', 2)
each('HDEL', p .. ':agents', 1)
each('HSET', p .. ':queues', 2)
local reply = {'ok'}
if ARGV[4] ~= '' then
  local version = redis.call('INCR', p .. ':version')
  redis.call('SET', p .. ':next-item', ARGV[3])
  local id = redis.call('XADD', p .. ':changes', 'MAXLEN', '~', ARGV[7], '*', 'v', version, 'c', ARGV[4])
  reply = {'ok', tostring(version), id}
end
if ARGV[5] ~= '' then
  redis.call('XADD', p .. ':events', 'MAXLEN', '~', ARGV[8], '*', 'e', ARGV[5])
end
if ARGV[6] ~= '' then
  redis.call('PUBLISH', p .. ':notify', ARGV[6])
end
return reply
