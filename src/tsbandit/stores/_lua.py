"""Server-side Lua scripts of :class:`~tsbandit.stores.redis_store.RedisStore`.

Each script touches the keys of one bandit only (they share the hash tag ``{bandit}``, so the
scripts run unchanged on a Redis Cluster) and is atomic: Redis runs it with no other command in
between. Redis does *not* roll back a script that fails half-way, so every script validates all
its inputs before its first write, and answers with a status table (``{"ok", ...}``,
``{"notfound"}``, ...) instead of raising.

Why float64 blobs added with ``struct`` rather than one hash field per element with
``HINCRBYFLOAT``: a read is one ``HGETALL`` that returns each statistic as one bulk string the
client maps with ``np.frombuffer`` (no per-element parsing; a linear bandit with 5 arms and
d = 11 has 670 elements), the arithmetic is IEEE double exactly as numpy does it (HINCRBYFLOAT
computes in long double and prints 17 digits, so sums can differ in the last bit from the other
stores), and a delta only touches the rows (arms) it changes: the client sends the non-zero arm
rows and the script rewrites only those bytes. ``benchmarks/bench_stores.py`` measures both.

Layout (prefix ``P``, bandit ``B``)::

    P{B}          hash    config, names ("s,f"), version, cver, decayed_at, h:<stat> shape
                          ("5,11,11"), s:<stat> raw little-endian float64 bytes
    P{B}:dec      hash    decision id -> payload JSON
    P{B}:ds       hash    decision id -> "p|<deadline>" | "c|<deadline>|<token>"
                          | "r|<deadline>" | "r|<deadline>|<outcome>" | "x|<deadline>"
    P{B}:due      zset    unconsumed decisions, score = deadline (or lease end while claimed)
    P{B}:purge    zset    consumed decisions, score = deadline (``purge`` compares it with
                          now - retention, the retention in effect when it runs)
    P{B}:events   stream  field "e" = event JSON
    P{B}:asg      hash    assignment key -> "<id JSON><LF><payload JSON>" (JSON text never
                          holds a raw line feed, so the first one ends the id)
    P{B}:asgx     zset    assignment keys, score = expires_at (live while > now)
    Pbandits      set     names of all bandits (the registry; not in the bandit's slot)

The rules of a decision's lifecycle are those of :func:`tsbandit.stores.base.reward_verdict`
and :func:`tsbandit.stores.base.holds_claim`, stated here in Lua so that they run atomically.

Deltas are passed as ``n_stats`` then, per statistic, ``name, shape, n_rows`` and ``n_rows``
pairs ``arm, row-bytes`` with arms in increasing order.
"""

from __future__ import annotations

from ._lua_batch import APPLY_REWARD_MANY, GET_PENDING_MANY

PRELUDE = r"""
local CHUNK = 400  -- doubles per struct call (stays well inside Lua's C stack limit)
local fmts = {}
local function fmt(n)
  local f = fmts[n]
  if not f then
    f = '<' .. string.rep('d', n)
    fmts[n] = f
  end
  return f
end

-- n doubles of s from byte pos (1-based) as a table (may hold extra trailing entries)
local function unpack_doubles(s, pos, n)
  if n <= CHUNK then return {struct.unpack(fmt(n), s, pos)} end
  local out = {}
  local i = 0
  while i < n do
    local m = math.min(n - i, CHUNK)
    local vals = {struct.unpack(fmt(m), s, pos + i * 8)}
    for j = 1, m do out[i + j] = vals[j] end
    i = i + m
  end
  return out
end

local function pack_doubles(t, n)
  if n <= CHUNK then return struct.pack(fmt(n), unpack(t, 1, n)) end
  local parts = {}
  local i = 0
  while i < n do
    local m = math.min(n - i, CHUNK)
    parts[#parts + 1] = struct.pack(fmt(m), unpack(t, i + 1, i + m))
    i = i + m
  end
  return table.concat(parts)
end

local function scale_blob(blob, g)
  local n = #blob / 8
  local a = unpack_doubles(blob, 1, n)
  for j = 1, n do a[j] = a[j] * g end
  return pack_doubles(a, n)
end

-- Read the statistics named by the deltas at ARGV[i..] and 'cver' in one HMGET, and validate
-- everything before anything is written. Returns (nil, parsed) or (status_table):
-- {'notfound'} (no bandit), {'conflict', cver}, {'shape', message}.
local function parse_deltas(state, i, expected_cver)
  local nstats = tonumber(ARGV[i])
  i = i + 1
  local specs, fields = {}, {'cver'}
  for s = 1, nstats do
    local nrows = tonumber(ARGV[i + 2])
    specs[s] = {ARGV[i], ARGV[i + 1], nrows, i + 3}
    fields[#fields + 1] = 'h:' .. ARGV[i]
    fields[#fields + 1] = 's:' .. ARGV[i]
    i = i + 3 + 2 * nrows
  end
  local vals = redis.call('HMGET', state, unpack(fields))
  if not vals[1] then return {'notfound'} end
  if expected_cver ~= '' and vals[1] ~= expected_cver then return {'conflict', vals[1]} end
  local parsed = {}
  for s, spec in ipairs(specs) do
    local name, shape, nrows, k = spec[1], spec[2], spec[3], spec[4]
    local stored, blob = vals[2 * s], vals[2 * s + 1]
    if not stored then return {'shape', 'unknown statistic ' .. name} end
    if stored ~= shape then
      return {'shape', 'delta ' .. name .. ' has shape (' .. shape .. '), stored ('
              .. stored .. ')'}
    end
    local n_arms = tonumber(string.match(shape, '^%d+'))
    local rows = {}
    local last = -1
    for _ = 1, nrows do
      local arm, row = tonumber(ARGV[k]), ARGV[k + 1]
      k = k + 2
      if arm <= last or arm >= n_arms then return {'shape', 'bad arm row ' .. ARGV[k - 2]} end
      if #row * n_arms ~= #blob then return {'shape', 'bad row size for ' .. name} end
      last = arm
      rows[#rows + 1] = {arm, row}
    end
    if nrows > 0 then parsed[#parsed + 1] = {name, blob, rows} end
  end
  return nil, parsed
end

-- write the sums (one HSET) and bump the version; returns the new version, or nil and
-- {'overflow', name} when a sum is not finite (a float64 overflow): every sum is computed and
-- checked before the first write, so then nothing is written
local function apply_deltas(state, parsed)
  local huge = math.huge
  local args = {}
  for _, p in ipairs(parsed) do
    local name, blob, rows = p[1], p[2], p[3]
    local row_bytes = #rows[1][2]
    local n = row_bytes / 8
    local parts = {}
    local pos = 1
    for _, r in ipairs(rows) do
      local off = r[1] * row_bytes + 1
      parts[#parts + 1] = string.sub(blob, pos, off - 1)
      local a = unpack_doubles(blob, off, n)
      local b = unpack_doubles(r[2], 1, n)
      for j = 1, n do
        local v = a[j] + b[j]
        if v ~= v or v == huge or v == -huge then return nil, {'overflow', name} end
        a[j] = v
      end
      parts[#parts + 1] = pack_doubles(a, n)
      pos = off + row_bytes
    end
    parts[#parts + 1] = string.sub(blob, pos)
    args[#args + 1] = 's:' .. name
    args[#args + 1] = table.concat(parts)
  end
  if #args > 0 then redis.call('HSET', state, unpack(args)) end
  return redis.call('HINCRBY', state, 'version', 1)
end

local function check_cver(state, expected)
  if expected == '' then return nil end
  local cver = redis.call('HGET', state, 'cver')
  if cver ~= expected then return {'conflict', cver} end
  return nil
end

local function add_event(key, event, maxlen)
  if event == '' then return end
  if maxlen == '' then
    redis.call('XADD', key, '*', 'e', event)
  else
    redis.call('XADD', key, 'MAXLEN', '~', maxlen, '*', 'e', event)
  end
end

local function with_state(state)
  local r = redis.call('HGETALL', state)
  table.insert(r, 1, 'ok')
  return r
end

-- KEYS of the scripts that consume a decision: state, dec, ds, due, purge, events.
-- The status entry of decision id ("p|<deadline>"...), or nil and the reply: {'notfound'}
-- without the bandit, else {missing}.
local function decision_entry(id, missing)
  local st = redis.call('HGET', KEYS[3], id)
  if st then return st end
  if redis.call('EXISTS', KEYS[1]) == 0 then return nil, {'notfound'} end
  return nil, {missing}
end

-- mark decision id consumed (status 'r' or 'x'), due for purge, and log its event; a reward's
-- outcome (text, '' for none) follows the deadline: "r|<deadline>|<outcome>"
local function consume(id, status, dl, event, maxlen, outcome)
  local entry = status .. '|' .. dl
  if outcome and outcome ~= '' then entry = entry .. '|' .. outcome end
  redis.call('HSET', KEYS[3], id, entry)
  redis.call('ZREM', KEYS[4], id)
  redis.call('ZADD', KEYS[5], dl, id)
  add_event(KEYS[6], event, maxlen)
end
"""

# KEYS: state. ARGV: config, the starting cver, names, then (shape, blob) per name.
CREATE = r"""
if redis.call('EXISTS', KEYS[1]) == 1 then return {'exists'} end
local names = ARGV[3]
local args = {'config', ARGV[1], 'names', names, 'version', 0, 'cver', ARGV[2]}
local i = 4
for name in string.gmatch(names, '[^,]+') do
  args[#args + 1] = 'h:' .. name
  args[#args + 1] = ARGV[i]
  args[#args + 1] = 's:' .. name
  args[#args + 1] = ARGV[i + 1]
  i = i + 2
end
redis.call('HSET', KEYS[1], unpack(args))
return with_state(KEYS[1])
"""

# KEYS: state. ARGV: expected cver or '', config, has_arrays, names, (shape, blob)...
REPLACE = r"""
if redis.call('EXISTS', KEYS[1]) == 0 then return {'notfound'} end
local err = check_cver(KEYS[1], ARGV[1])
if err then return err end
redis.call('HSET', KEYS[1], 'config', ARGV[2])
if ARGV[3] == '1' then
  local old = redis.call('HGET', KEYS[1], 'names')
  for name in string.gmatch(old, '[^,]+') do
    redis.call('HDEL', KEYS[1], 'h:' .. name, 's:' .. name)
  end
  local names = ARGV[4]
  redis.call('HSET', KEYS[1], 'names', names)
  local i = 5
  for name in string.gmatch(names, '[^,]+') do
    redis.call('HSET', KEYS[1], 'h:' .. name, ARGV[i], 's:' .. name, ARGV[i + 1])
    i = i + 2
  end
end
redis.call('HINCRBY', KEYS[1], 'cver', 1)
redis.call('HINCRBY', KEYS[1], 'version', 1)
return with_state(KEYS[1])
"""

# KEYS: state. ARGV: expected cver or '', deltas...
ADD = r"""
local err, parsed = parse_deltas(KEYS[1], 2, ARGV[1])
if err then return err end
local version, overflow = apply_deltas(KEYS[1], parsed)
if overflow then return overflow end
return {'ok', version}
"""

_SCALE_BODY = r"""
local function scale_all(state, g)
  local names = redis.call('HGET', state, 'names')
  local fields = {}
  for name in string.gmatch(names, '[^,]+') do fields[#fields + 1] = 's:' .. name end
  if #fields > 0 then
    local blobs = redis.call('HMGET', state, unpack(fields))
    local args = {}
    for k, f in ipairs(fields) do
      args[#args + 1] = f
      args[#args + 1] = scale_blob(blobs[k], g)
    end
    redis.call('HSET', state, unpack(args))
  end
  return redis.call('HINCRBY', state, 'version', 1)
end
"""

# KEYS: state. ARGV: gamma.
SCALE = (
    _SCALE_BODY
    + r"""
if redis.call('EXISTS', KEYS[1]) == 0 then return {'notfound'} end
return {'ok', scale_all(KEYS[1], tonumber(ARGV[1]))}
"""
)

# KEYS: state. ARGV: half_life, now. Same arithmetic as tsbandit.stores.validation.decay_factor.
DECAY = (
    _SCALE_BODY
    + r"""
if redis.call('EXISTS', KEYS[1]) == 0 then return {'notfound'} end
local h, now = tonumber(ARGV[1]), tonumber(ARGV[2])
local last = redis.call('HGET', KEYS[1], 'decayed_at')
local g = 1.0
if last then
  local t0 = tonumber(last)
  if now > t0 then g = 0.5 ^ ((now - t0) / h) end
end
if (not last) or now > tonumber(last) then
  redis.call('HSET', KEYS[1], 'decayed_at', ARGV[2])
end
if g ~= 1.0 then scale_all(KEYS[1], g) end
return {'ok', string.format('%.17g', g)}
"""
)

# KEYS: state, dec, ds, due, events. ARGV: maxlen or '', the expected version and cver or
# '' and '', then per decision: id, payload, deadline, event or ''. A bandit that is not at
# the expected versions answers its state, writing nothing; every id is checked before the
# first write (all or nothing).
PUT_PENDING = r"""
if redis.call('EXISTS', KEYS[1]) == 0 then return {'notfound'} end
if ARGV[2] ~= '' then
  local at = redis.call('HMGET', KEYS[1], 'version', 'cver')
  if at[1] ~= ARGV[2] or at[2] ~= ARGV[3] then
    return {'moved', redis.call('HGETALL', KEYS[1])}
  end
end
local seen = {}
for i = 4, #ARGV, 4 do
  local id = ARGV[i]
  if seen[id] or redis.call('HEXISTS', KEYS[2], id) == 1 then return {'exists', id} end
  seen[id] = true
end
for i = 4, #ARGV, 4 do
  redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1])
  redis.call('HSET', KEYS[3], ARGV[i], 'p|' .. ARGV[i + 2])
  redis.call('ZADD', KEYS[4], ARGV[i + 2], ARGV[i])
  add_event(KEYS[5], ARGV[i + 3], ARGV[1])
end
return {'ok'}
"""

# KEYS: state, dec, ds. ARGV: id.
GET_PENDING = r"""
if redis.call('EXISTS', KEYS[1]) == 0 then return {'notfound'} end
local p = redis.call('HGET', KEYS[2], ARGV[1])
local st = redis.call('HGET', KEYS[3], ARGV[1])
if (not p) or (not st) then return {'nodecision'} end
return {'ok', p, st}
"""

# KEYS: state, dec, ds, due, purge, events.
# ARGV: id, now, expected cver or '', event or '', maxlen or '', outcome or '', deltas...
APPLY_REWARD = r"""
local id = ARGV[1]
local st, missing = decision_entry(id, 'nodecision')
if not st then return missing end
local status, dl = string.match(st, '^(.)|([^|]+)')
if status == 'r' then return {'duplicate', redis.call('HGET', KEYS[1], 'version')} end
if status == 'x' or tonumber(ARGV[2]) > tonumber(dl) then return {'expired', dl} end
local err, parsed = parse_deltas(KEYS[1], 7, ARGV[3])
if err then return err end
local version, overflow = apply_deltas(KEYS[1], parsed)
if overflow then return overflow end  -- nothing written: the decision stays pending
consume(id, 'r', dl, ARGV[4], ARGV[5], ARGV[6])
return {'ok', version}
"""

# KEYS: state, dec, ds, due, purge. ARGV: now, limit, lease_until, token.
CLAIM_EXPIRED = r"""
if redis.call('EXISTS', KEYS[1]) == 0 then return {'notfound'} end
local ids = redis.call('ZRANGEBYSCORE', KEYS[4], '-inf', '(' .. ARGV[1], 'LIMIT', 0,
                       tonumber(ARGV[2]))
local out = {'ok'}
for _, id in ipairs(ids) do
  local st = redis.call('HGET', KEYS[3], id)
  local status, dl
  if st then status, dl = string.match(st, '^(.)|([^|]+)') end
  if status == 'p' or status == 'c' then
    redis.call('HSET', KEYS[3], id, 'c|' .. dl .. '|' .. ARGV[4])
    redis.call('ZADD', KEYS[4], ARGV[3], id)
    out[#out + 1] = id
    out[#out + 1] = dl
    out[#out + 1] = redis.call('HGET', KEYS[2], id)
  else
    redis.call('ZREM', KEYS[4], id)
  end
end
return out
"""

# KEYS: state, dec, ds, due, purge, events.
# ARGV: id, token, expected cver or '', event or '', maxlen or '', deltas...
SETTLE_EXPIRED = r"""
local id = ARGV[1]
local st, missing = decision_entry(id, 'lost')
if not st then return missing end
local status, dl, token = string.match(st, '^(.)|([^|]+)|?(.*)$')
if status ~= 'c' or token ~= ARGV[2] then return {'lost'} end
local err, parsed = parse_deltas(KEYS[1], 6, ARGV[3])
if err then return err end
if tonumber(ARGV[6]) > 0 then  -- deltas given
  local _, overflow = apply_deltas(KEYS[1], parsed)
  if overflow then return overflow end  -- nothing written: the claim stays as it was
end
consume(id, 'x', dl, ARGV[4], ARGV[5])
return {'ok'}
"""

# KEYS: state, dec, ds, purge, events, asg, asgx.
# ARGV: cutoff (now - retention), limit, maxlen or '', now.
# Consumed decisions whose retention ended (score < cutoff), oldest first, then the event
# stream trimmed to exactly maxlen entries, then up to limit expired assignments (score <= now),
# oldest first. Returns {'ok', decisions, events, assignments}.
PURGE = r"""
if redis.call('EXISTS', KEYS[1]) == 0 then return {'notfound'} end
local limit = tonumber(ARGV[2])
-- HDEL / ZREM of up to 1000 members at a time (unpack's stack limit)
local function drop(hashes, zset, members)
  local n = #members
  local i = 1
  while i <= n do
    local j = math.min(i + 999, n)
    for _, h in ipairs(hashes) do redis.call('HDEL', h, unpack(members, i, j)) end
    redis.call('ZREM', zset, unpack(members, i, j))
    i = j + 1
  end
  return n
end
local old = redis.call('ZRANGEBYSCORE', KEYS[4], '-inf', '(' .. ARGV[1], 'LIMIT', 0, limit)
local n = drop({KEYS[2], KEYS[3]}, KEYS[4], old)
local trimmed = 0
if ARGV[3] ~= '' then
  trimmed = redis.call('XTRIM', KEYS[5], 'MAXLEN', ARGV[3])  -- exact (XADD trims with ~)
end
local gone = redis.call('ZRANGEBYSCORE', KEYS[7], '-inf', ARGV[4], 'LIMIT', 0, limit)
return {'ok', n, trimmed, drop({KEYS[6]}, KEYS[7], gone)}
"""

# KEYS: state, asg, asgx. ARGV: key, now. The entry and expiry of a live assignment:
# {'ok', entry, expires_at}; {'none'} when there is none (or it expired).
GET_ASSIGNMENT = r"""
local e = redis.call('HGET', KEYS[2], ARGV[1])
local t = e and redis.call('ZSCORE', KEYS[3], ARGV[1])
if t and tonumber(t) > tonumber(ARGV[2]) then return {'ok', e, t} end
if redis.call('EXISTS', KEYS[1]) == 0 then return {'notfound'} end
return {'none'}
"""

# KEYS: state, asg, asgx. ARGV: key, entry ("<id JSON><LF><payload JSON>"), expires_at, now,
# replace (an id as JSON text) or ''. The rule of tsbandit.stores.lifecycle.keeps_assignment:
# a live assignment that replace does not name is kept and returned ({'live', entry,
# expires_at}); otherwise the new one is stored ({'ok'}).
ASSIGN = r"""
if redis.call('EXISTS', KEYS[1]) == 0 then return {'notfound'} end
local e = redis.call('HGET', KEYS[2], ARGV[1])
local t = e and redis.call('ZSCORE', KEYS[3], ARGV[1])
if t and tonumber(t) > tonumber(ARGV[4]) then
  local item = string.sub(e, 1, string.find(e, '\n', 1, true) - 1)
  if ARGV[5] == '' or item ~= ARGV[5] then return {'live', e, t} end
end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
redis.call('ZADD', KEYS[3], ARGV[3], ARGV[1])
return {'ok'}
"""

# KEYS: state, events. ARGV: event, maxlen or ''.
APPEND_EVENT = r"""
if redis.call('EXISTS', KEYS[1]) == 0 then return {'notfound'} end
add_event(KEYS[2], ARGV[1], ARGV[2])
return {'ok'}
"""

# KEYS: state, dec, ds, due, purge, events, asg, asgx.
DELETE = r"""
if redis.call('EXISTS', KEYS[1]) == 0 then return {'notfound'} end
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[7], KEYS[8])
-- the event stream is emptied, not deleted: it keeps its last id, so a re-created bandit's
-- events get later ids and an event-log cursor never skips them (read_events)
if redis.call('EXISTS', KEYS[6]) == 1 then redis.call('XTRIM', KEYS[6], 'MAXLEN', 0) end
return {'ok'}
"""

SCRIPTS = {
    "create": CREATE,
    "replace": REPLACE,
    "add": ADD,
    "scale": SCALE,
    "decay": DECAY,
    "put_pending": PUT_PENDING,
    "get_pending": GET_PENDING,
    "apply_reward": APPLY_REWARD,
    "get_pending_many": GET_PENDING_MANY,
    "apply_reward_many": APPLY_REWARD_MANY,
    "claim_expired": CLAIM_EXPIRED,
    "settle_expired": SETTLE_EXPIRED,
    "purge": PURGE,
    "append_event": APPEND_EVENT,
    "delete": DELETE,
    "get_assignment": GET_ASSIGNMENT,
    "assign": ASSIGN,
}
