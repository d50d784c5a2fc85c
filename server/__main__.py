"""Command-line edge of the live server: `stylefusion-server` / `python -m server`."""

from __future__ import annotations

import argparse
import ipaddress
import logging
import os
import ssl
from pathlib import Path
from typing import Any

from stylefusion.architecture import VARIANTS
from stylefusion.choices import CPU_PRECISIONS, DEVICE_CHOICES
from stylefusion.errors import InvalidInput

from .config import ServerConfig

KB, MB = 2**10, 2**20


def build_parser() -> argparse.ArgumentParser:
    """The server's argparse parser (the contract's options plus a few extras)."""
    p = argparse.ArgumentParser(
        prog="stylefusion-server", description="StyleFusion live WebRTC style-transfer server."
    )
    p.add_argument("--host", default="127.0.0.1", help="address to listen on")
    p.add_argument("--port", type=int, default=8080, help="port to listen on")
    p.add_argument("--models-dir", type=Path, default=Path("models"), help="style folders")
    p.add_argument("--data-dir", type=Path, default=Path("var"), help="jobs, uploads, results")
    p.add_argument(
        "--content-dir", type=Path, help="training photos of admin jobs (default: shipped)"
    )
    p.add_argument("--device", default="auto", choices=DEVICE_CHOICES)
    p.add_argument("--variant", choices=tuple(VARIANTS), help="default: lite on CPU, full on GPU")
    p.add_argument("--max-peers", type=int, default=8, help="live viewers at once (503 beyond)")
    p.add_argument("--max-batch", type=int, default=8, help="frames per model call at most")
    p.add_argument(
        "--max-wait-ms",
        type=float,
        default=5.0,
        help="wait for more peers' frames, from a frame's arrival or the last call's end "
        "(0: never)",
    )
    p.add_argument(
        "--ice-server",
        action="append",
        default=[],
        metavar="URL",
        help="STUN/TURN URL (repeatable), e.g. stun:stun.l.google.com:19302",
    )
    p.add_argument(
        "--admin-token",
        default=os.environ.get("STYLEFUSION_ADMIN_TOKEN"),
        help="bearer token of the admin API (default: env STYLEFUSION_ADMIN_TOKEN)",
    )
    p.add_argument(
        "--publish-token",
        default=os.environ.get("STYLEFUSION_PUBLISH_TOKEN"),
        help="bearer token of WHIP publishing (default: env STYLEFUSION_PUBLISH_TOKEN, else the "
        "admin token)",
    )
    p.add_argument(
        "--watch-token",
        default=os.environ.get("STYLEFUSION_WATCH_TOKEN"),
        help="bearer token WHEP watchers must send (default: env STYLEFUSION_WATCH_TOKEN, else "
        "watching is open)",
    )
    p.add_argument("--max-jobs", type=int, default=1, help="background jobs running at once")
    p.add_argument("--max-clip-mb", type=float, default=512, help="largest clip upload (MiB)")
    p.add_argument("--max-image-mb", type=float, default=25, help="largest image upload (MiB)")
    add_job_limits(p)
    p.add_argument("--no-marker-bit", action="store_true", help="keep aiortc's stock jitter buffer")
    p.add_argument(
        "--no-compile",
        action="store_true",
        help="run the model eager (no compiled packages on a CPU, no torch.compile on a GPU)",
    )
    p.add_argument(
        "--precision",
        default="auto",
        choices=CPU_PRECISIONS,
        help="CPU inference precision (auto: int8 where the CPU has VNNI/AMX and the model is "
        "compiled, else bf16 where native, else fp32; see README)",
    )
    p.add_argument(
        "--threads", type=int, help="CPU threads for inference (default: all cores but one)"
    )
    p.add_argument("--cert-file", type=Path, help="PEM certificate (chain): serve HTTPS")
    p.add_argument("--key-file", type=Path, help="PEM private key of --cert-file")
    p.add_argument(
        "--role",
        choices=("all", "live"),
        default="all",
        help="'live': serve viewers only; the node with 'all' holds the job store (see README)",
    )
    p.add_argument(
        "--jobs-backend",
        choices=("local", "ray"),
        default="local",
        help="run jobs in a local worker process or as Ray actors (pip install '.[cluster]')",
    )
    p.add_argument("--ray-address", help="Ray cluster to join (default: start a local Ray)")
    p.add_argument(
        "--job-gpus", type=float, help="GPUs each Ray job declares (default: 1 if the cluster has)"
    )
    p.add_argument("--log-level", default="INFO", help="DEBUG, INFO, WARNING, ...")
    add_security_options(p)
    add_limit_options(p)
    return p


def add_job_limits(p: argparse.ArgumentParser) -> None:
    """Options of the admin jobs' limits (defaults from ServerConfig)."""
    d = ServerConfig()
    add_table(
        p,
        [
            ("--max-clip-seconds", d.max_clip_seconds, "longest clip job"),
            ("--max-clip-pixels", d.max_clip_pixels, "largest clip frame"),
            (
                "--probe-memory-mb",
                d.probe_memory_mb,
                "address-space cap of the child process that probes a clip upload",
            ),
            ("--max-render-size", d.max_render_size, "render side"),
            ("--max-render-iterations", d.max_render_iterations, "render steps"),
            ("--max-train-size", d.max_train_size, "training crop"),
            ("--max-train-batch", d.max_train_batch, "training batch size"),
            ("--max-train-steps", d.max_train_steps, "training step budget"),
            ("--max-train-seconds", d.max_train_seconds, "training seconds budget"),
            ("--max-queued-jobs", d.max_queued_jobs, "jobs waiting to run, in all (429 beyond)"),
            (
                "--max-queued-jobs-per-client",
                d.max_queued_jobs_per_client,
                "jobs of one client address waiting to run (429 beyond)",
            ),
            (
                "--job-retention-days",
                d.job_retention_days,
                "ended jobs and their files are removed after this many days",
            ),
            (
                "--min-free-disk-mb",
                d.min_free_disk_mb,
                "refuse uploads (507) when the data dir has less free space",
            ),
        ],
    )


def add_table(p: argparse.ArgumentParser, rows: list[tuple[str, float, str]]) -> None:
    """Options from (flag, default, help) rows; each takes the type of its default."""
    for flag, default, text in rows:
        p.add_argument(
            flag, type=type(default), default=default, help=f"{text}; default %(default)s"
        )


def add_security_options(p: argparse.ArgumentParser) -> None:
    """TURN credentials, Host names and ICE candidate networks."""
    p.add_argument(
        "--turn-secret",
        default=os.environ.get("STYLEFUSION_TURN_SECRET"),
        help="coturn static-auth-secret: short-lived TURN credentials for turn: URLs without "
        "user:pass (default: env STYLEFUSION_TURN_SECRET)",
    )
    p.add_argument("--turn-ttl", type=int, default=43200, help="their lifetime in seconds")
    p.add_argument(
        "--allowed-host",
        action="append",
        default=[],
        metavar="NAME",
        help="Host header name to answer besides the bind address and localhost (repeatable; "
        "'*' turns the check off)",
    )
    p.add_argument(
        "--ice-allow",
        action="append",
        default=[],
        type=cidr,
        metavar="CIDR",
        help="only send ICE checks to offer candidates inside these networks (repeatable)",
    )
    p.add_argument(
        "--trusted-proxy",
        action="append",
        default=[],
        type=cidr,
        metavar="CIDR",
        help="reverse proxy network whose X-Forwarded-For (its rightmost hop, an IP) names the "
        "client for the per-client limits; repeatable; none by default, not even the loopback "
        "(nginx on this machine: 127.0.0.1/32)",
    )


def add_limit_options(p: argparse.ArgumentParser) -> None:
    """The hostile-input limits (README "Limits"); defaults from ServerConfig."""
    d = ServerConfig()
    limits = [
        ("--max-offer-kb", d.max_offer_bytes / KB, "POST /offer body cap in KiB (413 beyond)"),
        ("--max-offer-media", d.max_offer_media, "m-lines an offer may have (400 beyond)"),
        ("--max-offer-candidates", d.max_offer_candidates, "ICE candidates per offer (400)"),
        ("--max-pending", d.max_pending_per_client, "unconnected offers per client (429)"),
        ("--connect-timeout", d.connect_timeout_s, "seconds an offer has to connect"),
        (
            "--video-timeout",
            d.video_timeout_s,
            "seconds a connected peer may send no video before it is dropped",
        ),
        (
            "--max-peers-per-client",
            d.max_peers_per_client,
            "peers of one client address, connected or connecting (429 beyond)",
        ),
        ("--max-message-kb", d.max_message_bytes / KB, "data-channel message cap in KiB"),
        ("--max-snapshot-kb", d.max_snapshot_bytes / KB, "POST /api/snapshot body cap in KiB"),
        ("--max-snapshot-pixels", d.max_snapshot_pixels, "pixels of a snapshot (413 beyond)"),
        ("--snapshots-at-once", d.snapshots_at_once, "snapshots painted or waiting (429)"),
        ("--control-rate", d.control_rate, "control messages a peer may send a second"),
        (
            "--control-burst",
            d.control_burst,
            "... in a burst; a peer whose refused messages pass another burst is dropped",
        ),
        ("--header-timeout", d.header_timeout_s, "seconds to send request headers, or idle"),
        ("--body-timeout", d.body_timeout_s, "seconds for the /offer body (408)"),
        ("--admin-failures", d.admin_failures, "wrong admin tokens per window before 429"),
        ("--admin-failure-window", d.admin_failure_window_s, "that window in seconds"),
        ("--max-streams", d.max_streams, "WHIP streams at once (503 beyond)"),
        ("--max-watchers", d.max_watchers, "WHEP watchers at once, all streams (503 beyond)"),
        (
            "--publisher-timeout",
            d.publisher_timeout_s,
            "seconds without video before a publisher and its watchers are dropped",
        ),
    ]
    add_table(p, limits)


def cidr(text: str) -> str:
    """argparse type of --ice-allow: an IPv4 or IPv6 network."""
    try:
        return str(ipaddress.ip_network(text, strict=False))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a network: {text!r}") from None


def config_from_args(args: argparse.Namespace) -> ServerConfig:
    """Turn parsed arguments into a ServerConfig."""
    return ServerConfig(
        host=args.host,
        port=args.port,
        models_dir=args.models_dir,
        data_dir=args.data_dir,
        content_dir=args.content_dir,
        device=args.device,
        variant=args.variant,
        max_peers=args.max_peers,
        max_batch=args.max_batch,
        max_wait_ms=args.max_wait_ms,
        ice_servers=tuple(args.ice_server),
        admin_token=args.admin_token or None,
        publish_token=args.publish_token or None,
        watch_token=args.watch_token or None,
        max_jobs=args.max_jobs,
        max_clip_bytes=int(args.max_clip_mb * MB),
        max_image_bytes=int(args.max_image_mb * MB),
        max_clip_seconds=args.max_clip_seconds,
        max_clip_pixels=args.max_clip_pixels,
        probe_memory_mb=args.probe_memory_mb,
        max_render_size=args.max_render_size,
        max_render_iterations=args.max_render_iterations,
        max_train_size=args.max_train_size,
        max_train_batch=args.max_train_batch,
        max_train_steps=args.max_train_steps,
        max_train_seconds=args.max_train_seconds,
        max_queued_jobs=args.max_queued_jobs,
        max_queued_jobs_per_client=args.max_queued_jobs_per_client,
        job_retention_days=args.job_retention_days,
        min_free_disk_mb=args.min_free_disk_mb,
        marker_bit=not args.no_marker_bit,
        threads=args.threads,
        compile=not args.no_compile,
        precision=args.precision,
        cert_file=args.cert_file,
        key_file=args.key_file,
        role=args.role,
        jobs_backend=args.jobs_backend,
        ray_address=args.ray_address,
        job_gpus=args.job_gpus,
        turn_secret=args.turn_secret or None,
        turn_ttl_s=args.turn_ttl,
        allowed_hosts=tuple(args.allowed_host),
        ice_allow=tuple(args.ice_allow),
        trusted_proxies=tuple(args.trusted_proxy),
        **limits_from_args(args),
    )


def limits_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """The ServerConfig limit fields from their flags."""
    return dict(
        max_offer_bytes=int(args.max_offer_kb * KB),
        max_offer_media=args.max_offer_media,
        max_offer_candidates=args.max_offer_candidates,
        max_pending_per_client=args.max_pending,
        connect_timeout_s=args.connect_timeout,
        video_timeout_s=args.video_timeout,
        max_peers_per_client=args.max_peers_per_client,
        max_message_bytes=int(args.max_message_kb * KB),
        max_snapshot_bytes=int(args.max_snapshot_kb * KB),
        max_snapshot_pixels=args.max_snapshot_pixels,
        snapshots_at_once=args.snapshots_at_once,
        control_rate=args.control_rate,
        control_burst=args.control_burst,
        header_timeout_s=args.header_timeout,
        body_timeout_s=args.body_timeout,
        admin_failures=args.admin_failures,
        admin_failure_window_s=args.admin_failure_window,
        max_streams=args.max_streams,
        max_watchers=args.max_watchers,
        publisher_timeout_s=args.publisher_timeout,
    )


def main(argv: list[str] | None = None) -> int:
    """Parse options and serve until interrupted."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if (args.cert_file is None) != (args.key_file is None):
        parser.error("--cert-file and --key-file go together")
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    config = config_from_args(args)
    from aiohttp import web

    from stylefusion.errors import StyleFusionError

    from .app import create_app, runner_options

    try:
        tls = tls_context(config)
        app = create_app(config)
        web.run_app(
            app, host=config.host, port=config.port, ssl_context=tls, **runner_options(config)
        )
    except StyleFusionError as exc:
        logging.getLogger("server").error("%s", exc)
        return 2
    return 0


def tls_context(config: ServerConfig) -> ssl.SSLContext | None:
    """The server-side TLS context of --cert-file/--key-file (None: plain HTTP)."""
    if config.cert_file is None or config.key_file is None:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        context.load_cert_chain(config.cert_file, config.key_file)
    except (OSError, ssl.SSLError) as exc:
        raise InvalidInput(
            f"cannot load the certificate {config.cert_file} / key {config.key_file}: {exc}"
        ) from exc
    return context


if __name__ == "__main__":
    raise SystemExit(main())
