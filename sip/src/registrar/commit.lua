-- Replaces the bindings of one address-of-record if nobody changed them since they were read
-- (compare-and-set on a random version, so a delete and re-create cannot pass for no change).
-- KEYS[1]: the AOR's hash. ARGV[1]: the version read ('' when the hash was absent),
-- ARGV[2]: the new version, ARGV[3]: when the hash expires (Unix ms, the latest binding),
-- ARGV[4..]: contact, binding pairs; none deletes the hash.
if (redis.call('HGET', KEYS[1], '#version') or '') ~= ARGV[1] then
  return 0
end
redis.call('DEL', KEYS[1])
if #ARGV > 3 then
  redis.call('HSET', KEYS[1], '#version', ARGV[2], unpack(ARGV, 4))
  redis.call('PEXPIREAT', KEYS[1], ARGV[3])
end
return 1
