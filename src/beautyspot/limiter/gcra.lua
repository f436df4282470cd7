-- GCRA reservation on the Redis server: the twin of beautyspot/limiter/gcra.py:reserve, which is
-- the reference (the tests hold this script to it). Runs atomically, and reads the server's own
-- clock so every client shares one timeline whatever its own clock says.
-- KEYS[1]: the bucket's theoretical arrival time (TAT), in server seconds.
-- ARGV: interval (seconds per token), burst (tokens), cost (tokens).
-- Returns {now, start, tat} as decimal strings: Redis would truncate Lua numbers to integers.
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local tat = tonumber(redis.call('GET', KEYS[1])) or now

local capacity = math.max(burst, cost)
local new_tat = math.max(tat, now) + cost * interval
local start = math.max(now, new_tat - capacity * interval)

-- Once the bucket has drained a missing key means the same as an idle one: let it expire then
-- (at least 1 ms: a cost below the clock's resolution leaves the TAT where it was).
local ttl_ms = math.max(1, math.ceil((new_tat - now) * 1000))
redis.call('SET', KEYS[1], string.format('%.17g', new_tat), 'PX', ttl_ms)
return {string.format('%.17g', now), string.format('%.17g', start), string.format('%.17g', new_tat)}
