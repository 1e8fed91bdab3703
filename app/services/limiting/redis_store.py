"""The shared rate store on Redis: each operation is one Lua script timed by ``redis.call('TIME')``.

Per alias, one hash holds the GCRA states (``rq``, ``tk``) and ``blocked_until`` (``bu``), and one
sorted set holds the concurrency leases scored by expiry. Keys carry the alias in a hash tag so
that both live on one cluster slot::

    store = RedisRateStore(redis.asyncio.Redis.from_url("redis://127.0.0.1:6379/0"), limits)
    admission = await store.acquire("fast", tokens=1200)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from redis.asyncio import Redis

from app.engine.resources.shared import EPSILON_S, Admission, AliasLimits, Rate, limits_for
from app.engine.resources.store_state import StoreSnapshot, budget_state, leases_by_holder

_NOW = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
"""

# KEYS[1] = state hash. ARGV = requests, tokens, then (interval, capacity) for requests, tokens.
# Returns {granted, wait, now} as strings: Lua numbers returned to Redis would be truncated.
_ACQUIRE = (
    _NOW
    + """
local function gcra(tat, cost, interval, capacity)
  local base = math.max(tonumber(tat) or 0, now)
  local wait = base + (math.min(cost, capacity) - capacity) * interval - now
  return base + cost * interval, math.max(0, wait)
end
local state = redis.call('HMGET', KEYS[1], 'rq', 'tk', 'bu')
local rq, rq_wait = gcra(state[1], tonumber(ARGV[1]), tonumber(ARGV[3]), tonumber(ARGV[4]))
local tk, tk_wait = gcra(state[2], tonumber(ARGV[2]), tonumber(ARGV[5]), tonumber(ARGV[6]))
local wait = math.max((tonumber(state[3]) or 0) - now, rq_wait, tk_wait)
if wait > tonumber(ARGV[7]) then
  return {'0', string.format('%.17g', wait), string.format('%.17g', now)}
end
redis.call('HSET', KEYS[1], 'rq', string.format('%.17g', rq), 'tk', string.format('%.17g', tk))
local last = math.max(rq, tk, tonumber(state[3]) or 0)
redis.call('PEXPIRE', KEYS[1], math.ceil((last - now) * 1000) + 60000)
return {'1', '0', string.format('%.17g', now)}
"""
)

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
redis.call('PEXPIRE', KEYS[1], math.ceil((last - now) * 1000) + 60000)
return 1
"""
)

# KEYS[1] = lease set. ARGV = owner, ttl_s, limit (0 = unlimited).
_SLOT = (
    _NOW
    + """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local limit = tonumber(ARGV[3])
local held = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not held and limit > 0 and redis.call('ZCARD', KEYS[1]) >= limit then return 0 end
local ttl = tonumber(ARGV[2])
redis.call('ZADD', KEYS[1], string.format('%.17g', now + ttl), ARGV[1])
redis.call('PEXPIRE', KEYS[1], math.ceil(ttl * 1000) + 1000)
return 1
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

    ``prefix`` separates deployments sharing one Redis.
    """

    def __init__(
        self, redis: Redis, limits: Mapping[str, AliasLimits], prefix: str = "inf-engine:limits"
    ) -> None:
        self._redis = redis
        self._limits = dict(limits)
        self._prefix = prefix
        self._acquire = redis.register_script(_ACQUIRE)
        self._refund = redis.register_script(_REFUND)
        self._slot = redis.register_script(_SLOT)
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

    async def acquire(self, alias: str, requests: int = 1, tokens: int = 0) -> Admission:
        limits = limits_for(self._limits, alias)
        args: list[Any] = [requests, tokens, *_rate_args(limits.requests)]
        args += [*_rate_args(limits.tokens), EPSILON_S]
        flag, wait, now = await self._acquire(keys=[self._key(alias, "rate")], args=args)
        granted = flag in (b"1", "1")  # bytes, or str with decode_responses=True
        return Admission(granted=granted, retry_after_s=float(wait), at_s=float(now))

    async def refund(self, alias: str, tokens: int) -> None:
        rate = limits_for(self._limits, alias).tokens
        await self._refund(keys=[self._key(alias, "rate")], args=[tokens, rate.interval_s])

    async def acquire_slot(self, alias: str, owner: str, ttl_s: float) -> bool:
        limit = limits_for(self._limits, alias).max_concurrent or 0
        keys = [self._key(alias, "slots")]
        return bool(await self._slot(keys=keys, args=[owner, ttl_s, limit]))

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
        limits = limits_for(self._limits, alias)
        keys = [self._key(alias, "rate"), self._key(alias, "slots")]
        now, rq, tk, bu, *owners = map(_text, await self._snapshot(keys=keys, args=[]))
        at = float(now)
        return StoreSnapshot(
            requests=budget_state(limits.requests, float(rq), at, limits.rpm),
            tokens=budget_state(limits.tokens, float(tk), at, limits.tpm),
            max_concurrent=limits.max_concurrent,
            blocked_for_s=max(0.0, float(bu) - at),
            leases=leases_by_holder(owners),
        )


def _text(value: bytes | str) -> str:
    """A reply as text, whether the client decodes responses or not."""
    return value.decode() if isinstance(value, bytes) else value
