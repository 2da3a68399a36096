"""Camera calibration: ChArUco detection, intrinsics with coverage guidance (pure cv2)."""
