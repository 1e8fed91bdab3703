"""Load generator for the fake LLM server: N concurrent keep-alive workers for D seconds.

    python -m bench.fake_llm_load --url http://127.0.0.1:8000 --concurrency 1000 --duration-s 10

Resets the server's stats first, then prints achieved req/s, errors, client-side latency
percentiles and the server's peak_in_flight.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from yarl import URL


@dataclass
class Tally:
    """Results of the requests that finished inside the measurement window."""

    ok: int = 0
    errors: int = 0
    latencies: list[float] = field(default_factory=list)
    error_kinds: dict[str, int] = field(default_factory=dict)

    def error(self, kind: str) -> None:
        """Count one failed request."""
        self.errors += 1
        self.error_kinds[kind] = self.error_kinds.get(kind, 0) + 1


@dataclass(frozen=True)
class Window:
    """Issue requests until `end`; count only those finishing in [start, end)."""

    start: float
    end: float


class Pacer:
    """Spaces one worker's requests `interval_s` apart; 0 sends back to back."""

    def __init__(self, interval_s: float, offset_s: float) -> None:
        self.interval_s = interval_s
        self.next = time.monotonic() + offset_s

    async def send_time(self) -> float:
        """Sleep until this worker's next slot; return the time it starts."""
        now = time.monotonic()
        if self.interval_s <= 0.0:
            return now
        delay = self.next - now
        self.next = max(self.next, now) + self.interval_s
        if delay <= 0.0:
            return now
        await asyncio.sleep(delay)
        return time.monotonic()


def _body(worker: int, max_tokens: int) -> bytes:
    payload = {
        "model": "fake-bench",
        "messages": [
            {"role": "system", "content": "You are a load test."},
            {"role": "user", "content": f"load test prompt from worker {worker}"},
        ],
        "max_tokens": max_tokens,
    }
    return json.dumps(payload).encode()


async def _worker(
    session: aiohttp.ClientSession,
    url: str,
    body: bytes,
    pacer: Pacer,
    window: Window,
    tally: Tally,
) -> None:
    clock = time.monotonic
    headers = {"Content-Type": "application/json"}
    while (sent := await pacer.send_time()) < window.end:
        kind = None
        try:
            async with session.post(url, data=body, headers=headers) as resp:
                await resp.read()
                if resp.status != 200:
                    kind = str(resp.status)
        except (aiohttp.ClientError, TimeoutError) as exc:
            kind = type(exc).__name__
        done = clock()
        if window.start <= done < window.end:
            _record(tally, kind, done - sent)


class _RawConnection(asyncio.Protocol):
    """Minimal HTTP/1.1 keep-alive client: one request at a time, Content-Length bodies."""

    def __init__(self) -> None:
        self.buffer = bytearray()
        self.waiter: asyncio.Future[int] | None = None

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        status = _take_response(self.buffer)
        if status is not None and self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(status)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(exc or ConnectionResetError("connection closed"))


def _take_response(buffer: bytearray) -> int | None:
    """Status of a complete response at the head of `buffer` (removed), else None."""
    head_end = buffer.find(b"\r\n\r\n")
    if head_end < 0:
        return None
    head = bytes(buffer[:head_end]).lower()
    start = head.find(b"content-length:")
    length = int(head[start + 15 : head.find(b"\r\n", start)]) if start >= 0 else 0
    if len(buffer) < head_end + 4 + length:
        return None
    del buffer[: head_end + 4 + length]
    return int(head[9:12])


def _raw_request(host: str, port: int, path: str, body: bytes) -> bytes:
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


async def _raw_worker(url: URL, body: bytes, pacer: Pacer, window: Window, tally: Tally) -> None:
    loop = asyncio.get_running_loop()
    host, port = url.host or "127.0.0.1", url.port or 80
    request = _raw_request(host, port, url.path, body)
    transport, conn = await loop.create_connection(_RawConnection, host, port)
    clock = time.monotonic
    try:
        while (sent := await pacer.send_time()) < window.end:
            conn.waiter = loop.create_future()
            transport.write(request)
            status = await conn.waiter
            done = clock()
            if window.start <= done < window.end:
                _record(tally, None if status == 200 else str(status), done - sent)
    finally:
        transport.close()


def _record(tally: Tally, kind: str | None, latency: float) -> None:
    if kind is None:
        tally.ok += 1
        tally.latencies.append(latency)
    else:
        tally.error(kind)


async def _control(session: aiohttp.ClientSession, method: str, url: str) -> Any:
    async with session.request(method, url) as resp:
        resp.raise_for_status()
        return await resp.json()


async def run(args: argparse.Namespace) -> dict[str, Any]:
    """Run the load and return the summary."""
    root = args.url.rstrip("/")
    connector = aiohttp.TCPConnector(limit=args.concurrency, limit_per_host=0)
    timeout = aiohttp.ClientTimeout(total=args.timeout_s)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        await _control(session, "POST", f"{root}/_control/reset")
        now = time.monotonic()
        window = Window(now + args.warmup_s, now + args.warmup_s + args.duration_s)
        tally = Tally()
        workers = [_make_worker(args, session, i, window, tally) for i in range(args.concurrency)]
        await asyncio.gather(*workers)
        stats = await _control(session, "GET", f"{root}/_stats")
    return _summary(args, tally, stats)


def _make_worker(
    args: argparse.Namespace, session: aiohttp.ClientSession, i: int, window: Window, tally: Tally
) -> Coroutine[Any, Any, None]:
    url = args.url.rstrip("/") + args.path
    body = _body(i, args.max_tokens)
    interval = args.concurrency / args.rate if args.rate else 0.0
    pacer = Pacer(interval, interval * i / args.concurrency)
    if args.client == "raw":
        return _raw_worker(URL(url), body, pacer, window, tally)
    return _worker(session, url, body, pacer, window, tally)


def _summary(args: argparse.Namespace, tally: Tally, stats: dict[str, Any]) -> dict[str, Any]:
    lat = sorted(tally.latencies)

    def pct(q: float) -> float:
        return round(lat[min(len(lat) - 1, int(q * len(lat)))] * 1000, 1) if lat else 0.0

    return {
        "client": args.client,
        "concurrency": args.concurrency,
        "target_rate": args.rate or None,
        "duration_s": args.duration_s,
        "req_per_s": round(tally.ok / args.duration_s, 1),
        "ok": tally.ok,
        "errors": tally.errors,
        "error_kinds": tally.error_kinds,
        "latency_ms_p50": pct(0.50),
        "latency_ms_p99": pct(0.99),
        "server_peak_in_flight": stats["peak_in_flight"],
        "server_by_status": stats["by_status"],
    }


def build_parser() -> argparse.ArgumentParser:
    """Command-line interface."""
    p = argparse.ArgumentParser(prog="python -m bench.fake_llm_load", description=__doc__)
    p.add_argument("--url", default="http://127.0.0.1:8000", help="server root URL")
    p.add_argument("--path", default="/v1/chat/completions")
    p.add_argument("--concurrency", type=int, default=1000, help="keep-alive workers")
    p.add_argument(
        "--rate", type=float, default=0.0, help="target total req/s (0: as fast as possible)"
    )
    p.add_argument("--duration-s", type=float, default=10.0, help="measured seconds")
    p.add_argument("--warmup-s", type=float, default=2.0, help="unmeasured ramp-up")
    p.add_argument("--timeout-s", type=float, default=30.0, help="per-request timeout")
    p.add_argument("--max-tokens", type=int, default=64)
    p.add_argument(
        "--client",
        choices=("aiohttp", "raw"),
        default="aiohttp",
        help="aiohttp.ClientSession, or a minimal asyncio HTTP/1.1 client that costs far "
        "less CPU per request (to load the server past what the aiohttp client can drive)",
    )
    p.add_argument("--cpu", type=int, default=None, help="pin the process to this core")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    return p


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


def _print(summary: dict[str, Any]) -> None:
    for key, value in summary.items():
        print(f"{key:>22}: {value}")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; exit status 1 when any request failed."""
    args = build_parser().parse_args(argv)
    if args.cpu is not None:
        os.sched_setaffinity(0, {args.cpu})
    with asyncio.Runner(loop_factory=_loop_factory()) as runner:
        summary = runner.run(run(args))
    if args.json:
        print(json.dumps(summary))
    else:
        _print(summary)
    return 1 if summary["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
