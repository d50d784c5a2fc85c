"""Prometheus metrics of one app: a private CollectorRegistry, no module globals."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.02, 0.035, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1.0)
BATCH_BUCKETS = (1, 2, 3, 4, 6, 8, 12, 16, 32)


class Metrics:
    """The live server's counters and histograms, registered in their own registry."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        reg = self.registry
        self.batch_size = Histogram(
            "stylefusion_batch_size", "Frames per model call", buckets=BATCH_BUCKETS, registry=reg
        )
        self.batch_styles = Histogram(
            "stylefusion_batch_styles",
            "Styles per model call (styles of one multi-style network share a call)",
            buckets=BATCH_BUCKETS,
            registry=reg,
        )
        self.queue_wait = Histogram(
            "stylefusion_queue_wait_seconds",
            "Time a frame waits in the batcher before its model call starts",
            buckets=LATENCY_BUCKETS,
            registry=reg,
        )
        self.inference = Histogram(
            "stylefusion_inference_seconds",
            "Duration of one batched model call, frame conversion included",
            buckets=LATENCY_BUCKETS,
            registry=reg,
        )
        self.server_latency = Histogram(
            "stylefusion_server_latency_seconds",
            "Time from a decoded frame reaching the server to its stylized frame leaving",
            buckets=LATENCY_BUCKETS,
            registry=reg,
        )
        self.frames_in = Counter("stylefusion_frames_in", "Decoded frames received", registry=reg)
        self.frames_out = Counter("stylefusion_frames_out", "Stylized frames sent", registry=reg)
        self.frames_dropped = Counter(
            "stylefusion_frames_dropped",
            "Frames skipped because a newer one arrived before the model was free",
            registry=reg,
        )
        self.decoder_dropped = Counter(
            "stylefusion_decoder_dropped",
            "Encoded frames dropped before decoding (decoder behind, or waiting for a keyframe)",
            registry=reg,
        )
        self.active_peers = Gauge("stylefusion_active_peers", "Live WebRTC peers", registry=reg)
        self.peers_dropped = Counter(
            "stylefusion_peers_dropped",
            "Live peers the server dropped, by reason (never_connected, control_flood, ...)",
            ["reason"],
            registry=reg,
        )
        self.peers_refused = Counter(
            "stylefusion_peers_refused",
            "Offers refused, by reason (capacity, pending, per_client)",
            ["reason"],
            registry=reg,
        )
        self.styles_loaded = Gauge("stylefusion_styles_loaded", "Styles ready", registry=reg)
        self.add_stream_metrics(reg)

    def add_stream_metrics(self, reg: CollectorRegistry) -> None:
        """Per-stream series (WHIP publishers, WHEP watchers); removed when a stream ends."""
        self.streams = Gauge("stylefusion_streams", "Live WHIP streams", registry=reg)
        self.stream_watchers = Gauge(
            "stylefusion_stream_watchers", "WHEP watchers of a stream", ["stream"], registry=reg
        )
        self.stream_frames = Counter(
            "stylefusion_stream_frames",
            "Stylized frames of a stream, each handed to every watcher (stylized once)",
            ["stream"],
            registry=reg,
        )
        self.stream_skipped = Counter(
            "stylefusion_stream_skipped",
            "Stylized frames a watcher's encoder had no time for (it got the next one)",
            ["stream"],
            registry=reg,
        )

    def render(self) -> bytes:
        """The registry in Prometheus text format."""
        return generate_latest(self.registry)
