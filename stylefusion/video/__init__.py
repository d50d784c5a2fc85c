"""Clip stylization: PyAV decode, batches through a Stylizer, H.264 MP4 out with the sound kept.

transcode.py is the loop; audio.py the sound's path; timestamps.py the frame times;
limits.py the pixel and length limits and the progress report.
"""

from ..media_probe import MediaTooLarge, VideoInfo, check_limits, probe_video
from .transcode import VideoConfig, VideoResult, even_size, stylize_video

__all__ = [
    "MediaTooLarge",
    "VideoConfig",
    "VideoInfo",
    "VideoResult",
    "check_limits",
    "even_size",
    "probe_video",
    "stylize_video",
]
