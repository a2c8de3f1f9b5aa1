"""The monthly quota, held across every live stream and file job of a tenant at once.

Each tenant has a usage ledger per month: the audio seconds granted so far. A stream takes its audio
from the ledger in small grants (``ASR_QUOTA_GRANT_S``) before it accepts the audio, and a file job
takes its declared duration up front; a grant is one atomic step (a Lua script in Redis, a lock in
one embedded process), so concurrent streams cannot spend the same seconds twice. What a session was
granted and did not use goes back when it ends.

The database stays the record (``Session.audio_seconds``); the ledger only enforces. A ledger that is
missing (a new month, a Redis that lost its data) is seeded from the database's sum; audio metered
in the few seconds before such a loss can then be missed, never counted twice.
"""

import asyncio
import logging
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import redis
import redis.asyncio as aioredis
from django.conf import settings

from asrplatform import process_state
from transcription.redis_clients import CONNECT_TIMEOUT_S, SOCKET_TIMEOUT_S, async_redis

logger = logging.getLogger(__name__)

# KEYS[1] ledger; ARGV: quota, seconds wanted, all-or-nothing (1/0). Returns the grant as a string
# (Lua numbers would be truncated to integers), or "missing" when the ledger must be seeded first.
TAKE = """
local used = redis.call('GET', KEYS[1])
if not used then return 'missing' end
local left = tonumber(ARGV[1]) - tonumber(used)
local want = tonumber(ARGV[2])
local grant = math.min(want, left)
if grant <= 0 or (ARGV[3] == '1' and grant < want) then return '0' end
redis.call('INCRBYFLOAT', KEYS[1], grant)
return tostring(grant)
"""
# A month's ledger outlives the month by a few days, for sessions that end after midnight.
LEDGER_TTL_S = 35 * 24 * 3600


@dataclass(frozen=True)
class LedgerKey:
    tenant_id: int
    month: str  # "YYYY-MM", the month the session started in (the database's usage month)

    @classmethod
    def of(cls, tenant_id: int, started_at: datetime) -> "LedgerKey":
        return cls(tenant_id, started_at.strftime("%Y-%m"))

    @property
    def month_start(self) -> datetime:
        return datetime.strptime(self.month, "%Y-%m").replace(tzinfo=UTC)


class RedisLedger:
    """The ledger in Redis: shared by every gateway process and worker."""

    def __init__(self, url: str, prefix: str) -> None:
        self.url, self.prefix = url, prefix

    def _name(self, key: LedgerKey) -> str:
        return f"{self.prefix}:usage:{key.tenant_id}:{key.month}"

    def _sync(self) -> redis.Redis:
        def build() -> redis.Redis:
            return redis.Redis.from_url(
                self.url, socket_timeout=SOCKET_TIMEOUT_S, socket_connect_timeout=CONNECT_TIMEOUT_S
            )

        return process_state.get(("quota.redis", self.url), build, close=redis.Redis.close)

    def _async(self) -> aioredis.Redis:
        return async_redis(self.url)

    def take(self, key: LedgerKey, want_s: float, quota_s: float, *, whole: bool = False) -> float | None:
        """Grant up to ``want_s`` (exactly ``want_s`` or nothing when ``whole``); None if unseeded."""
        return _grant(self._sync().eval(TAKE, 1, self._name(key), quota_s, want_s, int(whole)))

    async def atake(self, key: LedgerKey, want_s: float, quota_s: float, *, whole: bool = False) -> float | None:
        return _grant(await self._async().eval(TAKE, 1, self._name(key), quota_s, want_s, int(whole)))

    def seed(self, key: LedgerKey, used_s: float) -> None:
        self._sync().set(self._name(key), used_s, nx=True, ex=LEDGER_TTL_S)

    async def aseed(self, key: LedgerKey, used_s: float) -> None:
        await self._async().set(self._name(key), used_s, nx=True, ex=LEDGER_TTL_S)

    def give_back(self, key: LedgerKey, seconds: float) -> None:
        if seconds > 0 and self._sync().exists(self._name(key)):
            self._sync().incrbyfloat(self._name(key), -seconds)

    async def agive_back(self, key: LedgerKey, seconds: float) -> None:
        if seconds > 0 and await self._async().exists(self._name(key)):
            await self._async().incrbyfloat(self._name(key), -seconds)

    def used(self, key: LedgerKey) -> float | None:
        value = self._sync().get(self._name(key))
        return None if value is None else float(value)


class LocalLedger:
    """The same ledger for one embedded process: its streams and its file threads."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.ledgers: dict[LedgerKey, float] = {}

    def take(self, key: LedgerKey, want_s: float, quota_s: float, *, whole: bool = False) -> float | None:
        with self.lock:
            used = self.ledgers.get(key)
            if used is None:
                return None
            grant = min(want_s, quota_s - used)
            if grant <= 0 or (whole and grant < want_s):
                return 0.0
            self.ledgers[key] = used + grant
            return grant

    async def atake(self, key: LedgerKey, want_s: float, quota_s: float, *, whole: bool = False) -> float | None:
        return self.take(key, want_s, quota_s, whole=whole)

    def seed(self, key: LedgerKey, used_s: float) -> None:
        with self.lock:
            self.ledgers.setdefault(key, used_s)

    async def aseed(self, key: LedgerKey, used_s: float) -> None:
        self.seed(key, used_s)

    def give_back(self, key: LedgerKey, seconds: float) -> None:
        with self.lock:
            if seconds > 0 and key in self.ledgers:
                self.ledgers[key] -= seconds

    async def agive_back(self, key: LedgerKey, seconds: float) -> None:
        self.give_back(key, seconds)

    def used(self, key: LedgerKey) -> float | None:
        with self.lock:
            return self.ledgers.get(key)


Ledger = RedisLedger | LocalLedger


def get_ledger() -> Ledger:
    url = settings.ASR_QUOTA_REDIS_URL

    def build() -> Ledger:
        return RedisLedger(url, settings.ASR_REDIS_PREFIX) if url else LocalLedger()

    return process_state.get(("quota.ledger", url), build)


def _grant(reply: bytes | str) -> float | None:
    text = reply.decode() if isinstance(reply, bytes) else str(reply)
    return None if text == "missing" else max(0.0, float(text))


def take(
    key: LedgerKey, want_s: float, quota_s: float, *, used_in_db: Callable[[], float], whole: bool = False
) -> float:
    """Grant audio seconds from the tenant's month, seeding the ledger from the database if needed."""
    ledger = get_ledger()
    granted = ledger.take(key, want_s, quota_s, whole=whole)
    if granted is None:
        ledger.seed(key, used_in_db())
        granted = ledger.take(key, want_s, quota_s, whole=whole)
    return granted or 0.0


def left(key: LedgerKey, quota_s: float, *, used_in_db: Callable[[], float]) -> float:
    """Seconds of the tenant's month not granted yet (zero or less once used up)."""
    ledger = get_ledger()
    used = ledger.used(key)
    if used is None:
        ledger.seed(key, used_in_db())
        used = ledger.used(key) or 0.0
    return quota_s - used


def give_back(key: LedgerKey, seconds: float) -> None:
    get_ledger().give_back(key, seconds)


async def atake(
    key: LedgerKey, want_s: float, quota_s: float, *, used_in_db: Callable[[], Awaitable[float]], whole: bool = False
) -> float:
    """``take`` for the event loop: Redis through its async client, the database only to seed."""
    ledger = get_ledger()
    granted = await ledger.atake(key, want_s, quota_s, whole=whole)
    if granted is None:
        await ledger.aseed(key, await used_in_db())
        granted = await ledger.atake(key, want_s, quota_s, whole=whole)
    return granted or 0.0


class StreamCredit:
    """One live session's grants: audio it may still accept before it asks the ledger again."""

    def __init__(self, key: LedgerKey) -> None:
        self.key = key
        self.credit_s = 0.0
        self.lock = asyncio.Lock()

    async def prefetch(self, quota_s: float, used_in_db: Callable[[], Awaitable[float]]) -> float:
        """Take a first grant (at admission): the credit held, zero when the month is used up."""
        async with self.lock:
            if self.credit_s <= 0:
                self.credit_s += await atake(self.key, settings.ASR_QUOTA_GRANT_S, quota_s, used_in_db=used_in_db)
            return self.credit_s

    async def spend(self, audio_s: float, quota_s: float, used_in_db: Callable[[], Awaitable[float]]) -> float:
        """Seconds of ``audio_s`` the quota lets in (all of it, or what was left when it ran out)."""
        async with self.lock:
            if self.credit_s < audio_s:
                want = max(settings.ASR_QUOTA_GRANT_S, audio_s - self.credit_s)
                self.credit_s += await atake(self.key, want, quota_s, used_in_db=used_in_db)
            spent = min(audio_s, self.credit_s)
            self.credit_s -= spent
            return spent

    async def give_back(self) -> None:
        """The session ended: what it was granted and did not use is the tenant's again."""
        async with self.lock:
            unused, self.credit_s = self.credit_s, 0.0
        if unused > 0:
            await get_ledger().agive_back(self.key, unused)
