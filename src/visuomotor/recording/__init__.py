"""Crash-safe episode recording in the LeRobot v3 layout, its check and exports."""
