"""Quality-of-service profiles for camera images (one place, so publishers and subscribers match).

Large images (a 640x480 rgb8 frame is 0.9 MB) exceed Fast DDS's default shared-memory segment
and travel as fragmented UDP on the loopback; best-effort delivery then loses frames whenever
a socket buffer fills (measured: about a third of the frames of two 30 Hz cameras, bench/
recording.py). So our publishers are reliable, which serves reliable and best-effort
subscribers alike; the recorder subscribes reliably (a dataset must not lose frames), the
policy best-effort (only the newest frame matters, and any driver's QoS is accepted).
"""

from __future__ import annotations

from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy


def image_qos(reliable: bool, depth: int = 5) -> QoSProfile:
    """Keep-last `depth`, reliable or best-effort."""
    return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=depth,
                      reliability=ReliabilityPolicy.RELIABLE if reliable
                      else ReliabilityPolicy.BEST_EFFORT)
