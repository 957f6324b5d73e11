-- wrk script that paces requests at a fixed total rate (wrk itself has no
-- rate option): each request gets the next slot of an evenly spaced
-- schedule and waits for it (wrk's delay() has whole-millisecond timers,
-- so with enough connections the slots average out to the rate).
--   wrk -t1 -c64 -d10s -s wrk_pace.lua URL -- 20000
-- A schedule more than 50 ms behind restarts at now: no catch-up bursts.
local ffi = require("ffi")
ffi.cdef[[
typedef struct { long tv_sec; long tv_nsec; } coral_timespec;
int clock_gettime(int clock, coral_timespec *ts);
]]
local CLOCK_MONOTONIC = 1
local ts = ffi.new("coral_timespec")

local function now_ms()
  ffi.C.clock_gettime(CLOCK_MONOTONIC, ts)
  return tonumber(ts.tv_sec) * 1000 + tonumber(ts.tv_nsec) / 1e6
end

local interval_ms = 1
local next_slot = nil

-- args after "--": the rate of this thread, in requests per second.
function init(args)
  local rate = tonumber(args[1])
  if rate == nil or rate <= 0 then
    error("wrk_pace.lua: expected a rate in requests/s after --")
  end
  interval_ms = 1000 / rate
end

function delay()
  local now = now_ms()
  if next_slot == nil or next_slot < now - 50 then next_slot = now end
  local wait = next_slot - now
  next_slot = next_slot + interval_ms
  if wait <= 0 then return 0 end
  return math.ceil(wait)
end
