"""The shared rate store on Redis: each operation is one Lua script timed by ``redis.call('TIME')``.

Per alias, one hash holds the GCRA states (``rq``, ``tk``) and ``blocked_until`` (``bu``), and one
sorted set holds the concurrency leases scored by expiry. Keys carry the alias in a hash tag so
that both live on one cluster slot::

    store = RedisRateStore(redis.asyncio.Redis.from_url("redis://127.0.0.1:6379/0"), limits)
    admission = await store.acquire("fast", tokens=1200)
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from redis.asyncio import Redis

from app.engine.resources import learning
from app.engine.resources.learning import Learned, LearnedCache, LearningPolicy
from app.engine.resources.shared import (
    EPSILON_S,
    Admission,
    AliasLimits,
    Rate,
    limits_for,
    rated,
    wanted,
)
from app.engine.resources.store_state import StoreSnapshot, budget_state, leases_by_holder

_NOW = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
"""

# The learned state's fields (see app.engine.resources.learning.Learned), in this order.
_LEARNED = ("lr", "lt", "la", "lh", "li", "rq", "bu", "gs", "gc", "gp")
_LEARNED_LUA = "'" + "', '".join(_LEARNED) + "'"

# KEYS[1] = state hash. ARGV = requests, tokens, then (interval, capacity) for requests, tokens,
# epsilon, ms to keep the hash at least. Returns {granted, wait, now, slots wanted at,
# learned...} as strings: Lua numbers returned to Redis would be truncated.
_ACQUIRE = (
    _NOW
    + """
local function gcra(tat, cost, interval, capacity)
  local base = math.max(tonumber(tat) or 0, now)
  local wait = base + (math.min(cost, capacity) - capacity) * interval - now
  return base + cost * interval, math.max(0, wait)
end
local function f(x) return string.format('%.17g', x) end
local state = redis.call('HMGET', KEYS[1], 'rq', 'tk', 'bu')
local L = redis.call('HMGET', KEYS[1], """
    + _LEARNED_LUA
    + """)
local rq, rq_wait = gcra(state[1], tonumber(ARGV[1]), tonumber(ARGV[3]), tonumber(ARGV[4]))
local tk, tk_wait = gcra(state[2], tonumber(ARGV[2]), tonumber(ARGV[5]), tonumber(ARGV[6]))
local wait = math.max((tonumber(state[3]) or 0) - now, rq_wait, tk_wait)
local granted = wait <= tonumber(ARGV[7])
if granted then
  local la, li = tonumber(L[3]) or 0, tonumber(L[5]) or 0
  local gs, gc, gp = tonumber(L[8]) or 0, tonumber(L[9]) or 0, tonumber(L[10]) or 0
  local since = math.max(tonumber(state[1]) or 0, tonumber(state[3]) or 0, la)
  if since > 0 then li = li + math.max(0, now - since) end
  local elapsed = now - gs
  local n = tonumber(ARGV[1])
  if elapsed >= 120 then gs, gc, gp = now, n, 0
  elseif elapsed >= 60 then gs, gc, gp = gs + 60, n, gc
  else gc = gc + n end
  L[5], L[6], L[8], L[9], L[10] = f(li), f(rq), f(gs), f(gc), f(gp)
  redis.call('HSET', KEYS[1], 'rq', L[6], 'tk', f(tk), 'li', L[5],
    'gs', L[8], 'gc', L[9], 'gp', L[10])
  local last = math.max(rq, tk, tonumber(state[3]) or 0)
  local keep = math.max(math.ceil((last - now) * 1000) + 60000, tonumber(ARGV[8]))
  redis.call('PEXPIRE', KEYS[1], math.max(keep, redis.call('PTTL', KEYS[1])))
end
local wanted = redis.call('HGET', KEYS[1], 'sw') or '0'
local answer = {granted and '1' or '0', granted and '0' or f(wait), f(now), wanted}
for i = 1, 10 do answer[4 + i] = L[i] or '0' end
return answer
"""
)

# KEYS[1] = state hash. Read only: {now, learned...}.
_READ_LEARNED = (
    _NOW
    + """
local L = redis.call('HMGET', KEYS[1], """
    + _LEARNED_LUA
    + """)
local answer = {string.format('%.17g', now)}
for i = 1, 10 do answer[1 + i] = L[i] or '0' end
return answer
"""
)

# KEYS[1] = state hash. ARGV = the 'la' read before, then lr, lt, la, lh, li, ms to keep,
# request TAT floor. Writes only if no other process changed the learned rates since: returns
# 1, else 0.
_SET_LEARNED = """
if (tonumber(redis.call('HGET', KEYS[1], 'la')) or 0) ~= tonumber(ARGV[1]) then return 0 end
local rq = math.max(tonumber(redis.call('HGET', KEYS[1], 'rq')) or 0, tonumber(ARGV[8]))
redis.call('HSET', KEYS[1], 'lr', ARGV[2], 'lt', ARGV[3], 'la', ARGV[4], 'lh', ARGV[5],
  'li', ARGV[6], 'rq', string.format('%.17g', rq))
redis.call('PEXPIRE', KEYS[1], math.max(tonumber(ARGV[7]), redis.call('PTTL', KEYS[1])))
return 1
"""

# KEYS[1] = state hash. ARGV = tokens, token interval.
_REFUND = (
    _NOW
    + """
local state = redis.call('HMGET', KEYS[1], 'rq', 'tk', 'bu')
local tat = tonumber(state[2]) or 0
local tokens, interval = tonumber(ARGV[1]), tonumber(ARGV[2])
if tokens >= 0 then tat = math.max(tat - tokens * interval, now)
else tat = math.max(tat, now) - tokens * interval end
redis.call('HSET', KEYS[1], 'tk', string.format('%.17g', tat))
local last = math.max(tonumber(state[1]) or 0, tat, tonumber(state[3]) or 0)
local keep = math.ceil((last - now) * 1000) + 60000
redis.call('PEXPIRE', KEYS[1], math.max(keep, redis.call('PTTL', KEYS[1])))
return 1
"""
)

# KEYS[1] = lease set, KEYS[2] = state hash. ARGV = owner, ttl_s, limit (0 = unlimited).
# A refusal marks the slots as wanted ('sw' in the state hash).
_SLOT = (
    _NOW
    + """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local limit = tonumber(ARGV[3])
local held = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not held and limit > 0 and redis.call('ZCARD', KEYS[1]) >= limit then
  redis.call('HSET', KEYS[2], 'sw', string.format('%.17g', now))
  if redis.call('PTTL', KEYS[2]) < 0 then redis.call('PEXPIRE', KEYS[2], 60000) end
  return 0
end
local ttl = tonumber(ARGV[2])
redis.call('ZADD', KEYS[1], string.format('%.17g', now + ttl), ARGV[1])
redis.call('PEXPIRE', KEYS[1], math.ceil(ttl * 1000) + 1000)
return 1
"""
)

# KEYS[1] = lease set. ARGV = ttl_s, then the owners. Returns the owners holding no live lease.
_RENEW = (
    _NOW
    + """
local expiry = string.format('%.17g', now + tonumber(ARGV[1]))
local missing = {}
for i = 2, #ARGV do
  local held = redis.call('ZSCORE', KEYS[1], ARGV[i])
  if held and tonumber(held) > now then redis.call('ZADD', KEYS[1], 'XX', expiry, ARGV[i])
  else table.insert(missing, ARGV[i]) end
end
redis.call('PEXPIRE', KEYS[1], math.ceil(tonumber(ARGV[1]) * 1000) + 1000)
return missing
"""
)

# KEYS[1] = state hash. ARGV = seconds (0 = only read). Returns the remaining block as a string.
_BLOCK = (
    _NOW
    + """
local until_ = math.max(tonumber(redis.call('HGET', KEYS[1], 'bu')) or 0, now + tonumber(ARGV[1]))
if tonumber(ARGV[1]) > 0 then
  redis.call('HSET', KEYS[1], 'bu', string.format('%.17g', until_))
  local ttl = redis.call('PTTL', KEYS[1])
  redis.call('PEXPIRE', KEYS[1], math.max(ttl, math.ceil((until_ - now) * 1000) + 60000))
end
return string.format('%.17g', until_ - now)
"""
)

# KEYS[1] = state hash, KEYS[2] = lease set. Read only: {now, rq, tk, bu, live owners...}.
_SNAPSHOT = (
    _NOW
    + """
local state = redis.call('HMGET', KEYS[1], 'rq', 'tk', 'bu')
local answer = {string.format('%.17g', now), state[1] or '0', state[2] or '0', state[3] or '0'}
local live = redis.call('ZRANGEBYSCORE', KEYS[2], '(' .. string.format('%.17g', now), '+inf')
for _, owner in ipairs(live) do
  table.insert(answer, owner)
end
return answer
"""
)


def _rate_args(rate: Rate) -> list[float]:
    return [rate.interval_s, rate.capacity]


class RedisRateStore:
    """:class:`~app.engine.resources.shared.SharedRateStore` on Redis (one EVAL per call).

    ``prefix`` separates deployments sharing one Redis; ``learning`` is how the shared
    learned rates move (:mod:`app.engine.resources.learning`).
    """

    def __init__(
        self,
        redis: Redis,
        limits: Mapping[str, AliasLimits],
        prefix: str = "inf-engine:limits",
        learning: LearningPolicy | None = None,
    ) -> None:
        self._redis = redis
        self._limits = dict(limits)
        self._prefix = prefix
        self.learning = learning or LearningPolicy()
        self._learned = LearnedCache()
        # NOTE: a learned rate outlives the budget's refill: kept until it has decayed away.
        self._keep_ms = int(self.learning.decay_s * 10 * 1000)
        self._read_learned = redis.register_script(_READ_LEARNED)
        self._set_learned = redis.register_script(_SET_LEARNED)
        self._acquire = redis.register_script(_ACQUIRE)
        self._refund = redis.register_script(_REFUND)
        self._slot = redis.register_script(_SLOT)
        self._renew = redis.register_script(_RENEW)
        self._block = redis.register_script(_BLOCK)
        self._snapshot = redis.register_script(_SNAPSHOT)

    async def aclose(self) -> None:
        """Close the Redis connection pool."""
        await self._redis.aclose()

    async def reconnect(self) -> None:
        """Drop every pooled connection: after Redis restarts, each old one would fail once."""
        await self._redis.connection_pool.disconnect()

    def _key(self, alias: str, part: str) -> str:
        return f"{self._prefix}:{{{alias}}}:{part}"

    def _in_force(self, alias: str) -> AliasLimits:
        return self._learned.limits(alias, limits_for(self._limits, alias), self.learning)

    async def acquire(self, alias: str, requests: int = 1, tokens: int = 0) -> Admission:
        limits = self._in_force(alias)
        args: list[Any] = [requests, tokens, *_rate_args(limits.requests)]
        args += [*_rate_args(limits.tokens), EPSILON_S]
        args.append(self._keep_ms)
        reply = await self._acquire(keys=[self._key(alias, "rate")], args=args)
        flag, wait, now, slots_wanted_at, *fields = map(_text, reply)
        self._learned.put(alias, _learned(fields), float(now))
        granted, limited = flag == "1", rated(self._in_force(alias))
        contended = wanted(float(slots_wanted_at), float(now))
        return Admission(granted, float(wait), float(now), limited, contended)

    async def _read(self, alias: str) -> tuple[Learned, float]:
        now, *fields = map(_text, await self._read_learned(keys=[self._key(alias, "rate")]))
        return _learned(fields), float(now)

    async def _write(
        self, alias: str, before: Learned, after: Learned, tat_floor: float = 0.0
    ) -> bool:
        values = [after.rpm, after.tpm, after.at, int(after.from_headers), after.idle_s]
        args: list[Any] = [repr(before.at), *map(repr, values), self._keep_ms, repr(tat_floor)]
        return bool(await self._set_learned(keys=[self._key(alias, "rate")], args=args))

    async def cut(self, alias: str, granted_at: float) -> None:
        limits = limits_for(self._limits, alias)
        for _ in range(3):  # NOTE: lost to another process's change: decide again on it
            state, now = await self._read(alias)
            found = learning.cut(state, limits, granted_at, now, self.learning)
            if found is None or await self._write(alias, state, found):
                return

    async def learn_limits(self, alias: str, rpm: int | None, tpm: int | None) -> None:
        limits = limits_for(self._limits, alias)
        for _ in range(3):
            state, now = await self._read(alias)
            found = learning.stated(state, rpm, tpm, now)
            if found is None:
                return
            requests = learning.learned_limits(limits, found, now, self.learning).requests
            if await self._write(alias, state, found, learning.repaced_tat(found, requests, now)):
                return

    async def refund(self, alias: str, tokens: int) -> None:
        rate = self._in_force(alias).tokens
        await self._refund(keys=[self._key(alias, "rate")], args=[tokens, rate.interval_s])

    async def acquire_slot(self, alias: str, owner: str, ttl_s: float) -> bool:
        limit = limits_for(self._limits, alias).max_concurrent or 0
        keys = [self._key(alias, "slots"), self._key(alias, "rate")]
        return bool(await self._slot(keys=keys, args=[owner, ttl_s, limit]))

    async def renew_slots(self, alias: str, owners: Collection[str], ttl_s: float) -> set[str]:
        limits_for(self._limits, alias)
        if not owners:
            return set()
        keys = [self._key(alias, "slots")]
        return {_text(owner) for owner in await self._renew(keys=keys, args=[ttl_s, *owners])}

    async def release_slot(self, alias: str, owner: str) -> None:
        limits_for(self._limits, alias)
        await self._redis.zrem(self._key(alias, "slots"), owner)

    async def block(self, alias: str, seconds: float) -> None:
        limits_for(self._limits, alias)
        await self._block(keys=[self._key(alias, "rate")], args=[max(seconds, 0.0)])

    async def blocked_for(self, alias: str) -> float:
        limits_for(self._limits, alias)
        return max(0.0, float(await self._block(keys=[self._key(alias, "rate")], args=[0])))

    async def snapshot(self, alias: str) -> StoreSnapshot:
        configured = limits_for(self._limits, alias)
        keys = [self._key(alias, "rate"), self._key(alias, "slots")]
        now, rq, tk, bu, *owners = map(_text, await self._snapshot(keys=keys, args=[]))
        state, _ = await self._read(alias)
        at = float(now)
        limits = learning.learned_limits(configured, state, at, self.learning)
        learned_rpm, learned_tpm = learning.learned_rates(configured, state, at, self.learning)
        return StoreSnapshot(
            requests=budget_state(limits.requests, float(rq), at, limits.rpm),
            tokens=budget_state(limits.tokens, float(tk), at, limits.tpm),
            max_concurrent=limits.max_concurrent,
            blocked_for_s=max(0.0, float(bu) - at),
            leases=leases_by_holder(owners),
            learned_rpm=learned_rpm,
            learned_tpm=learned_tpm,
        )


def _learned(fields: list[str]) -> Learned:
    """The learned state from its hash fields, in ``_LEARNED`` order."""
    rpm, tpm, at, headers, idle, tat, blocked, start, cur, prev = map(float, fields)
    return Learned(rpm, tpm, at, headers > 0, idle, tat, blocked, start, cur, prev)


def _text(value: bytes | str) -> str:
    """A reply as text, whether the client decodes responses or not."""
    return value.decode() if isinstance(value, bytes) else value
