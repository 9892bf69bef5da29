"""The batched reward scripts of :class:`~tsbandit.stores.redis_store.RedisStore`: many
rewards (or pending reads) of one bandit in one script, so one round trip.

They run after :mod:`tsbandit.stores._lua`'s ``PRELUDE`` (``parse_deltas``, ``apply_deltas``,
``consume``) on the same keys and layout as ``GET_PENDING`` and ``APPLY_REWARD``; each reward
is checked in full before its first write, so a refused one writes nothing and the next one
goes on (Redis runs the whole script with no other command in between).
"""

from __future__ import annotations

# KEYS: state, dec, ds. ARGV: ids. Per id {payload, status entry}, or {} when unknown.
GET_PENDING_MANY = r"""
if redis.call('EXISTS', KEYS[1]) == 0 then return {'notfound'} end
local out = {'ok'}
for j = 1, #ARGV do
  local p = redis.call('HGET', KEYS[2], ARGV[j])
  local st = redis.call('HGET', KEYS[3], ARGV[j])
  if p and st then out[j + 1] = {p, st} else out[j + 1] = {} end
end
return out
"""

# KEYS: state, dec, ds, due, purge, events. ARGV: maxlen or '', then per reward: the number
# n of its arguments that follow, id, now, expected cver or '', event or '', outcome or '',
# deltas... Each reward is APPLY_REWARD's verdict, checks and write, on its own (a refused one
# writes nothing and the next goes on); the reply holds one status table per reward.
APPLY_REWARD_MANY = r"""
if redis.call('EXISTS', KEYS[1]) == 0 then return {'notfound'} end
local out = {'ok'}
local i = 2
while i <= #ARGV do
  local n, id = tonumber(ARGV[i]), ARGV[i + 1]
  local r
  local st = redis.call('HGET', KEYS[3], id)
  if not st then
    r = {'nodecision'}
  else
    local status, dl = string.match(st, '^(.)|([^|]+)')
    if status == 'r' then
      r = {'duplicate', redis.call('HGET', KEYS[1], 'version')}
    elseif status == 'x' or tonumber(ARGV[i + 2]) > tonumber(dl) then
      r = {'expired', dl}
    else
      local err, parsed = parse_deltas(KEYS[1], i + 6, ARGV[i + 3])
      if err then
        r = err
      else
        local version, overflow = apply_deltas(KEYS[1], parsed)
        if overflow then
          r = overflow
        else
          consume(id, 'r', dl, ARGV[i + 4], ARGV[1], ARGV[i + 5])
          r = {'ok', version}
        end
      end
    end
  end
  out[#out + 1] = r
  i = i + 1 + n
end
return out
"""
