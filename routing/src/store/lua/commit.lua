-- Compare-and-set with alternatives: applies the first alternative whose checked records all
-- still have the version its decision was made on ('0' = must not exist). Returns the 1-based
-- index of the applied alternative, or 0 when every one conflicted.
-- ARGV: n_alternatives, then per alternative: n_checks, (key, version)*, n_tokens, operations:
--   REC key n (field value)*n               (a record's fields; bumps its version)
--   DEL key | ZADD key score member | ZREM key member | SADD key member | SREM key member
--   HEAD list hash field                     (the list's first member into the hash's field)
--   XADD key n payload*n (one stream entry, field `e` per payload) | PUB channel payload
local n_alternatives = tonumber(ARGV[1])
local pos = 2
for index = 1, n_alternatives do
  local n_checks = tonumber(ARGV[pos])
  pos = pos + 1
  local unchanged = true
  for _ = 1, n_checks do
    local key, expected = ARGV[pos], ARGV[pos + 1]
    pos = pos + 2
    if unchanged and (redis.call('HGET', key, 'ver') or '0') ~= expected then unchanged = false end
  end
  local n_tokens = tonumber(ARGV[pos])
  pos = pos + 1
  local stop = pos + n_tokens
  if unchanged then
    while pos < stop do
      local op = ARGV[pos]
      if op == 'REC' then
        local key = ARGV[pos + 1]
        local n = tonumber(ARGV[pos + 2])
        redis.call('HSET', key, unpack(ARGV, pos + 3, pos + 2 + 2 * n))
        redis.call('HINCRBY', key, 'ver', 1)
        pos = pos + 3 + 2 * n
      elseif op == 'DEL' then
        redis.call('DEL', ARGV[pos + 1])
        pos = pos + 2
      elseif op == 'ZADD' then
        redis.call('ZADD', ARGV[pos + 1], ARGV[pos + 2], ARGV[pos + 3])
        pos = pos + 4
      elseif op == 'ZREM' then
        redis.call('ZREM', ARGV[pos + 1], ARGV[pos + 2])
        pos = pos + 3
      elseif op == 'HEAD' then
        local head = redis.call('ZRANGE', ARGV[pos + 1], 0, 0)
        if #head > 0 then
          redis.call('HSET', ARGV[pos + 2], ARGV[pos + 3], head[1])
        else
          redis.call('HDEL', ARGV[pos + 2], ARGV[pos + 3])
        end
        pos = pos + 4
      elseif op == 'SADD' then
        redis.call('SADD', ARGV[pos + 1], ARGV[pos + 2])
        pos = pos + 3
      elseif op == 'SREM' then
        redis.call('SREM', ARGV[pos + 1], ARGV[pos + 2])
        pos = pos + 3
      elseif op == 'XADD' then
        local n = tonumber(ARGV[pos + 2])
        local fields = {}
        for k = 1, n do
          fields[2 * k - 1] = 'e'
          fields[2 * k] = ARGV[pos + 2 + k]
        end
        redis.call('XADD', ARGV[pos + 1], 'MAXLEN', '~', '1000000', '*', unpack(fields))
        pos = pos + 3 + n
      elseif op == 'PUB' then
        redis.call('PUBLISH', ARGV[pos + 1], ARGV[pos + 2])
        pos = pos + 3
      else
        return redis.error_reply('unknown op ' .. tostring(op))
      end
    end
    return index
  end
  pos = stop
end
return 0
