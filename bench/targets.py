"""What the load and memory benchmarks stream to: a URL, how to stream there, which pids to measure.

`open_target` starts the server under test (embedded, or Celery dispatch with its workers) or
points at a running one; a peer system is one more branch that yields a `Target` whose `stream`
speaks its protocol and returns the same `StreamResult`.
"""

from __future__ import annotations

import argparse
import functools
import logging
import os
import shutil
import signal
import sys
import tempfile
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from asrclient import StreamResult, stream_audio

from .cluster import DEFAULT_DATABASE, DEFAULT_PG_URL, DEFAULT_REDIS_URL, stack_from_args
from .deepgram_stream import stream_deepgram
from .server import ROOT, EmbeddedServer, GatewayServer, ServerError

# stream(audio, *, chunk_ms, realtime, start_options, drain_timeout) -> StreamResult, already bound
# to the target's URL and credentials: `stream_audio` with url and key applied, or a peer's adapter.
StreamFn = Callable[..., Awaitable[StreamResult]]

DEFAULT_EVAL_DIR = ROOT.parent / "shared" / "eval" / "real"
RESULTS = ROOT / "bench" / "results"
# The protocols our servers are streamed with: each client takes `stream_audio`'s arguments.
CLIENTS: dict[str, Callable[..., Awaitable[StreamResult]]] = {"v1": stream_audio, "deepgram": stream_deepgram}
# The bench tenant's plan: its stream cap (200) must not be what the sweep measures.
BENCH_PLAN = "enterprise"


@dataclass(frozen=True)
class Target:
    """A server under test: `pids` maps a role ("gateway", a worker's name) to the process to measure."""

    name: str
    url: str
    stream: StreamFn
    pids: dict[str, int] = field(default_factory=dict)
    warmup_sessions: int = 1  # one per inference worker, so every worker has run a session
    info: dict[str, Any] = field(default_factory=dict)
    new_key: Callable[[str], str] | None = None  # an API key of a new tenant of this name (our servers)


def add_target_arguments(p: argparse.ArgumentParser) -> None:
    """Where to stream: flags shared by `python -m bench load` and `python -m bench memory`."""
    p.add_argument("--url", help="benchmark a running server instead of starting one")
    p.add_argument("--api-key", default=os.environ.get("ASR_API_KEY"), help="key for --url")
    p.add_argument("--server-pid", type=int, help="pid of the --url server, to measure CPU/RSS")
    p.add_argument("--eval-dir", type=Path, default=DEFAULT_EVAL_DIR, help="clips + manifest")
    p.add_argument("--chunk-ms", type=int, default=100, help="audio per frame (default 100)")
    p.add_argument("--endpointing-ms", type=int, default=800, help="default 800")
    p.add_argument(
        "--dispatch",
        choices=("local", "celery"),
        default="local",
        help="local: the embedded server (default); celery: a gateway with Celery inference workers "
        "on PostgreSQL + Redis",
    )
    c = p.add_argument_group("--dispatch celery")
    c.add_argument("--workers", type=int, default=2, help="inference worker processes (default 2)")
    c.add_argument("--redis-url", default=DEFAULT_REDIS_URL, help=f"default {DEFAULT_REDIS_URL}")
    c.add_argument("--pg-url", default=DEFAULT_PG_URL, help=f"PostgreSQL server, default {DEFAULT_PG_URL}")
    c.add_argument("--database", default=DEFAULT_DATABASE, help="created if missing (default %(default)s)")
    c.add_argument("--worker-loglevel", default="INFO", help="workers' --loglevel (default INFO)")
    p.add_argument(
        "--peer",
        type=_peer_names,
        action="extend",
        default=[],
        metavar="PEER[,PEER]",
        help=f"after our server, run the same benchmark against each peer ({', '.join(PEERS)}; same model, "
        "audio, pacing) and report all side by side; repeat or list with commas; install each first: "
        "python -m bench.peers.PEER install",
    )


PEERS = ("whisperlive", "whisperlivekit")


def _peer_names(text: str) -> list[str]:
    names = [name.strip() for name in text.split(",") if name.strip()]
    if not names or any(name not in PEERS for name in names):
        raise argparse.ArgumentTypeError(f"peers are {', '.join(PEERS)}; not {text!r}")
    return names


def check_target_arguments(args: argparse.Namespace) -> str | None:
    """The error message for a combination that cannot run, or None."""
    if args.url and not args.api_key:
        return "--url needs --api-key (or ASR_API_KEY)"
    if args.url and args.dispatch != "local":
        return "--dispatch celery starts its own servers; it does not take --url"
    for peer in getattr(args, "peer", None) or []:
        if not _peer_installed(peer):
            return f"{peer} is not installed; run: python -m bench.peers.{peer} install"
    return None


def _peer_installed(name: str) -> bool:
    if name == "whisperlivekit":
        from .peers.whisperlivekit.install import installed as kit_installed

        return kit_installed()
    from .peers.whisperlive.install import installed

    return installed()


def start_run(args: argparse.Namespace, stem: str) -> int | None:
    """What `load` and `memory` do first: the default output (bench/results/STEM[-celery].json),
    SIGTERM as a clean exit, logging, and the target flags' check; an exit code if it cannot run."""
    suffix = "" if args.dispatch == "local" else f"-{args.dispatch}"
    args.output = args.output or RESULTS / f"{stem}{suffix}.json"
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    logging.basicConfig(
        stream=sys.stderr,
        format="%(levelname)s %(name)s %(message)s",
        level=logging.INFO if args.verbose else logging.WARNING,
    )
    if problem := check_target_arguments(args):
        print(f"error: {problem}", file=sys.stderr)
        return 2
    return None


def bench_key(server: GatewayServer, tenant: str) -> str:
    """A key of a tenant on BENCH_PLAN (the server's own bench tenant is on the free plan: 2 streams)."""
    lines = server._manage("create_tenant", tenant, "--plan", BENCH_PLAN).strip().splitlines()
    if not lines:
        raise ServerError("create_tenant printed nothing")
    return lines[-1].strip()


def _bound(url: str, api_key: str, protocol: str = "v1") -> StreamFn:
    return functools.partial(CLIENTS[protocol], url, api_key)


def _keep_logs(paths: list[Path], results_dir: Path) -> None:
    results_dir.mkdir(parents=True, exist_ok=True)
    for path in paths:
        if path.exists():
            shutil.copyfile(path, results_dir / path.name)


@contextmanager
def _embedded(results_dir: Path, protocol: str) -> Iterator[Target]:
    with tempfile.TemporaryDirectory(prefix="asr-bench-load-") as tmp:
        server = EmbeddedServer(Path(tmp))
        print(f"starting the embedded server on port {server.port} ...", file=sys.stderr)
        try:
            with server:
                key = bench_key(server, "bench-load")
                yield Target(
                    _named("asrplatform embedded", protocol),
                    server.url,
                    _bound(server.url, key, protocol),
                    {"gateway": server.pid},
                    new_key=functools.partial(bench_key, server),
                )
        except ServerError:
            print(f"server log (last lines):\n{server.log_tail()}", file=sys.stderr)
            raise
        finally:
            _keep_logs([server.log_path], results_dir)


@contextmanager
def _celery(args: argparse.Namespace, results_dir: Path, protocol: str) -> Iterator[Target]:
    with tempfile.TemporaryDirectory(prefix="asr-bench-load-celery-") as tmp:
        stack = stack_from_args(Path(tmp), args)
        try:
            with stack:
                key = bench_key(stack.gateway, f"bench-load-{stack.run_id}")
                pids = {"gateway": stack.pid, **stack.worker_pids}
                info = {"prefix": stack.prefix, "database": args.database, "workers": args.workers}
                yield Target(
                    _named(f"asrplatform celery ({args.workers} workers)", protocol),
                    stack.url,
                    _bound(stack.url, key, protocol),
                    pids,
                    warmup_sessions=args.workers,
                    info=info,
                    new_key=functools.partial(bench_key, stack.gateway),
                )
        except ServerError:
            print(f"gateway log (last lines):\n{stack.gateway.log_tail()}", file=sys.stderr)
            for name in stack.worker_names:
                print(f"{name} log (last lines):\n{stack.log_tail(name)}", file=sys.stderr)
            raise
        finally:
            _keep_logs(stack.log_paths(), results_dir)


@contextmanager
def peer_target(name: str, results_dir: Path) -> Iterator[Target]:
    """A peer system (one of `PEERS`) serving the same tiny.en CTranslate2 model, streamed with its own protocol."""
    from .peers.process import PeerProcess

    server: PeerProcess
    if name == "whisperlivekit":
        from .peers.whisperlivekit import WhisperLiveKitServer, stream_whisperlivekit

        server = WhisperLiveKitServer(log_path=results_dir / "whisperlivekit.log")
        title, stream = "WhisperLiveKit 0.2.26 (faster-whisper, LocalAgreement)", stream_whisperlivekit
    else:
        from .peers.whisperlive import WhisperLiveServer, stream_whisperlive

        assert name == "whisperlive", name
        server = WhisperLiveServer(log_path=results_dir / "whisperlive.log")
        title, stream = "WhisperLive 0.10.0 (faster_whisper backend)", stream_whisperlive
    print(f"starting {server.label} on port {server.port} ...", file=sys.stderr)
    with server:
        info = {"model_dir": str(server.model_dir), "threads": server.threads}
        yield Target(title, server.url, functools.partial(stream, server.url), {"server": server.pid}, info=info)


def _named(name: str, protocol: str) -> str:
    return name if protocol == "v1" else f"{name}, {protocol} protocol"


@contextmanager
def open_target(args: argparse.Namespace, results_dir: Path, *, protocol: str = "v1") -> Iterator[Target]:
    """The server under test for the whole run, streamed with ``protocol``'s client (`CLIENTS`);
    servers this started are stopped on exit."""
    if args.url:
        pids = {"server": args.server_pid} if args.server_pid else {}
        name = _named(f"server at {args.url}", protocol)
        yield Target(name, args.url, _bound(args.url, args.api_key, protocol), pids)
    elif args.dispatch == "celery":
        with _celery(args, results_dir, protocol) as target:
            yield target
    else:
        with _embedded(results_dir, protocol) as target:
            yield target
