"""Cameras: image encodings, intrinsics and (later) capture backends and time sync."""
