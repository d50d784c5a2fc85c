"""Names and defaults the command lines offer (devices, precisions, the CPU clip size); no
torch here, so `--help` answers at once."""

from __future__ import annotations

DEVICE_CHOICES = ("auto", "cpu", "cuda")
CPU_PRECISIONS = ("auto", "fp32", "bf16", "int8")

# The longest side a CPU stylizes clips at unless asked otherwise. The lite network's seconds
# per frame on the 2-core box of issue 19 (one torch thread, as the job worker runs beside the
# live server; bench/clip.py, two runs at load 5-6): 0.8-1.8 at 720x528 (the 11 s clip of the
# issue at its own size: 7 min there, 270 frames), 0.6-0.65 at 480x352, 0.3-0.4 at 360x264. At
# 360 px, about the live stream's size, that clip took 84 s end to end; the admin page offers
# 480 and 720 px to whoever can wait two to four times as long.
CPU_CLIP_SIDE = 360
