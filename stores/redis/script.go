package redis

import goredis "github.com/redis/go-redis/v9"

// startLua is the first step of both scripts: it finds the start of the
// nonce's shard, KEYS[1], and moves it if the state may have been lost.
//
// The start key holds "SECONDS NANOSECONDS RUN_ID": the start, in Unix
// time on the servers' clocks, and the run_id of the Redis process that
// set it. A key that is missing (a restart without persistence, FLUSHALL,
// an eviction), unreadable, or set by another process (a restart that
// reloaded a snapshot or an append-only file, a failover to a replica, a
// slot migrated to another node) means that uses may have been lost: the
// start becomes ARGV[1] seconds and ARGV[2] nanoseconds (the caller's
// clock plus the allowance for clock skew), or the old start if that is
// later, with this process's run_id. moved is then 2.
//
// Numbers stay below 2^53, so that Lua's doubles hold them exactly:
// seconds and nanoseconds apart, never Unix nanoseconds.
const startLua = `
local run = string.match(redis.call('INFO', 'server'), 'run_id:(%x+)')
if not run then
  return redis.error_reply('ERR ucsec: INFO server has no run_id')
end
local moved = 0
local sec, nsec, was
local v = redis.call('GET', KEYS[1])
if v then
  sec, nsec, was = string.match(v, '^(%d+) (%d+) (%x+)$')
end
if was == run then
  sec, nsec = tonumber(sec), tonumber(nsec)
else
  local s, n = tonumber(ARGV[1]), tonumber(ARGV[2])
  if sec then
    local osec, onsec = tonumber(sec), tonumber(nsec)
    if osec > s or (osec == s and onsec > n) then
      s, n = osec, onsec
    end
  end
  sec, nsec = s, n
  redis.call('SET', KEYS[1], string.format('%d %d %s', sec, nsec, run))
  moved = 2
end
`

// startScript makes sure the shard of KEYS[1] has a start and returns it
// as {seconds, nanoseconds, moved}.
var startScript = goredis.NewScript(startLua + `
return {sec, nsec, moved}
`)

// useScript records the use of count ARGV[5] of the nonce issued at
// ARGV[3] seconds and ARGV[4] nanoseconds, whose entry is KEYS[2], and
// makes the entry expire in no less than ARGV[6] milliseconds. It returns
// moved (2 if the start moved, else 0) plus 1 if the use was the first of
// its count.
//
// A nonce issued before the start is refused and not recorded. The entry
// is 12 bytes: the highest count used (0 once a use without qop consumed
// the nonce), then a 64-bit map of the counts below it, bit i for the
// count i below the highest (bit 0, the highest itself, is always set),
// in two big-endian 32-bit halves, high half first. Lua's bit library
// works on 32-bit integers, hence the halves.
var useScript = goredis.NewScript(startLua + `
local isec, insec = tonumber(ARGV[3]), tonumber(ARGV[4])
if isec < sec or (isec == sec and insec < nsec) then
  return moved
end
local nc, ttl = tonumber(ARGV[5]), tonumber(ARGV[6])
local e = redis.call('GET', KEYS[2])
local high, hi, lo = 0, 0, 0
if e then
  if #e ~= 12 then
    return redis.error_reply('ERR ucsec: malformed replay entry')
  end
  high, hi, lo = struct.unpack('>I4i4i4', e)
  if high == 0 then
    return moved
  end
  local pttl = redis.call('PTTL', KEYS[2])
  if pttl > ttl then
    ttl = pttl
  end
  if nc == 0 then
    redis.call('SET', KEYS[2], struct.pack('>I4i4i4', 0, 0, 0), 'PX', ttl)
    return moved
  end
  if nc > high then
    local s = nc - high
    if s >= 64 then
      hi, lo = 0, 1
    elseif s >= 32 then
      hi, lo = bit.lshift(lo, s - 32), 1
    else
      hi, lo = bit.bor(bit.lshift(hi, s), bit.rshift(lo, 32 - s)), bit.bor(bit.lshift(lo, s), 1)
    end
    high = nc
  else
    local d = high - nc
    if d >= 64 then
      return moved
    end
    if d >= 32 then
      local m = bit.lshift(1, d - 32)
      if bit.band(hi, m) ~= 0 then
        return moved
      end
      hi = bit.bor(hi, m)
    else
      local m = bit.lshift(1, d)
      if bit.band(lo, m) ~= 0 then
        return moved
      end
      lo = bit.bor(lo, m)
    end
  end
elseif nc ~= 0 then
  high, lo = nc, 1
end
redis.call('SET', KEYS[2], struct.pack('>I4i4i4', high, hi, lo), 'PX', ttl)
return moved + 1
`)
