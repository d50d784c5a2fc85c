"""ServerConfig: every option of the live server, as one frozen dataclass."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

WEB_DIR = Path(__file__).resolve().parent.parent / "web"


@dataclass(frozen=True)
class ServerConfig:
    """Options of `stylefusion-server`; built by the CLI edge, read by create_app()."""

    host: str = "127.0.0.1"
    port: int = 8080
    models_dir: Path = Path("models")
    data_dir: Path = Path("var")
    content_dir: Path | None = None  # training photos for admin jobs (default: the shipped set)
    device: str = "auto"
    variant: str | None = None
    max_peers: int = 8
    max_batch: int = 8
    max_wait_ms: float = 5.0
    ice_servers: tuple[str, ...] = ()
    admin_token: str | None = None
    publish_token: str | None = None  # bearer token of WHIP publishing (default: the admin token)
    watch_token: str | None = None  # bearer token of WHEP watching (default: watching is open)
    max_jobs: int = 1
    max_clip_bytes: int = 512 * 2**20
    max_image_bytes: int = 25 * 2**20
    max_clip_seconds: float = 15 * 60.0  # also enforced while transcoding (unknown durations)
    max_clip_pixels: int = 3840 * 2160  # per frame, declared and decoded
    max_image_pixels: int = 50_000_000
    max_render_size: int = 2048  # longest side of an iterative render
    max_render_iterations: int = 5000
    max_train_size: int = 1024  # training crop side
    max_train_batch: int = 64  # training batch size
    max_train_steps: int = 100_000  # a training job's step budget
    max_train_seconds: float = 86_400.0  # ... or its seconds budget (a day)
    max_queued_jobs: int = 100  # jobs waiting to run, in all (429 beyond)
    max_queued_jobs_per_client: int = 20  # ... of one client address (429 beyond)
    probe_memory_mb: int = 1024  # address-space cap of the child process that probes uploads
    min_free_disk_mb: int = 1024  # uploads are refused (507) when the data dir has less free
    job_retention_days: float = 7.0  # finished jobs and their files are removed after this
    retention_sweep_s: float = 3600.0  # how often the retention sweep runs (also at start)
    web_dir: Path = WEB_DIR
    marker_bit: bool = True  # complete video frames on the RTP marker bit (one frame less lag)
    rescan_interval_s: float = 2.0  # how often the models dir is polled for new styles
    stats_interval_s: float = 1.0  # how often each peer gets an {"event": "stats"} message
    budget_interval_s: float = 2.0  # how often the send budget is re-planned from measured costs
    threads: int | None = None  # CPU threads for inference (default: all cores but one)
    precision: str = "auto"  # fp32 | bf16 | int8 | auto (int8 where VNNI, see cpu_precision)
    compile: bool = (
        True  # build each frame shape's compiled model in the background (eager meanwhile)
    )
    cert_file: Path | None = None  # PEM certificate chain: serve HTTPS (phones need it)
    key_file: Path | None = None  # PEM private key of cert_file
    role: str = "all"  # "live": no job store, /admin or /api/jobs (another node holds them)
    jobs_backend: str = "local"  # "local": a spawned worker process; "ray": Ray actors
    ray_address: str | None = None  # Ray cluster to join (default: start a small local Ray)
    job_gpus: float | None = None  # GPUs each Ray job declares (default: 1 if the cluster has any)
    # hostile-input limits (README "Limits"); every one has a flag in server/__main__.py
    max_offer_bytes: int = 64 * 2**10  # POST /offer body cap (413 beyond)
    max_offer_media: int = 4  # m-lines in an offer (400 beyond)
    max_offer_candidates: int = 32  # ICE candidates in an offer (400 beyond)
    max_pending_per_client: int = 2  # offers of one remote address not yet connected (429 beyond)
    connect_timeout_s: float = 10.0  # a peer not connected by then is dropped (frees its slot)
    video_timeout_s: float = 10.0  # a connected peer sending no video that long is dropped
    max_peers_per_client: int = 2  # peers of one client address, connected or connecting (429)
    max_message_bytes: int = 64 * 2**10  # control data-channel message cap (advertised, enforced)
    max_snapshot_bytes: int = 8 * 2**20  # POST /api/snapshot body cap (413 beyond)
    # a snapshot's pixels (413 beyond; the page scales its camera frame down to this): painting
    # one stalls the viewers' frames for a model call, ~3 s at 1280x720 eager on a 2-core CPU
    max_snapshot_pixels: int = 1280 * 720
    snapshots_at_once: int = 1  # waiting for or in the model (429 beyond)
    control_rate: float = 20.0  # control messages a peer may send a second (error events beyond)
    control_burst: int = 40  # ... in a burst; refused ones past another burst drop the peer
    header_timeout_s: float = 15.0  # a connection idle or still sending headers is closed after it
    body_timeout_s: float = 10.0  # the /offer body must arrive within this (408)
    admin_failures: int = 10  # wrong admin tokens per client and window before 429
    admin_failure_window_s: float = 60.0
    turn_secret: str | None = None  # coturn REST-API shared secret: short-lived TURN credentials
    turn_ttl_s: int = 43200  # lifetime of those credentials (the page fetches them once)
    allowed_hosts: tuple[str, ...] = ()  # Host header names answered besides the defaults
    ice_allow: tuple[str, ...] = ()  # CIDRs offer candidates must be in (empty: any address)
    trusted_proxies: tuple[str, ...] = ()  # proxies whose X-Forwarded-For counts (not implied)
    max_streams: int = 4  # WHIP streams at once (503 beyond); each publisher is also a peer
    max_watchers: int = 16  # WHEP watchers at once, all streams together (an encoder each; 503)
    publisher_timeout_s: float = 5.0  # a publisher whose video stops this long is dropped
