"""Parameters of the sim node (declared once; the ROS node and the graph read this)."""

from __future__ import annotations

from visuomotor.params import Param

SIM_NODE_PARAMS = (
    Param('scene', 'fr3', 'twin scene: a name in config/sim (fr3, ur5e) or a scene YAML path'),
    Param('real_time_factor', 1.0, 'simulated seconds per wall-clock second; 0 runs as fast as '
          'the host allows (everything stays correct on simulated time)', 0.0, 100.0),
    Param('tick_s', 0.004, 'longest simulated time per loop iteration (whole physics steps); '
          'commands take effect at tick boundaries', 0.001, 0.05),
    Param('joint_state_rate_hz', 100.0, '/joint_states publishing rate (simulated time)',
          1.0, 1000.0),
    Param('image_width', 0, 'render every camera at this width (intrinsics scaled); 0 keeps '
          'the scene file size', 0, 4096),
    Param('image_height', 0, 'render every camera at this height; 0 keeps the scene file size',
          0, 4096),
    Param('calibration_board', '', "place the ChArUco board of this rig calibration folder's "
          'board.yaml in the scene (checking a calibration on the twin); empty: no board'),
    Param('seed', 0, 'task seed of the first episode (object pose, colours); ~/reset moves to '
          'the next seed', 0, 2**31 - 1),
    Param('world_frame', 'world', 'frame_id of the privileged /sim poses'),
    Param('lockstep_with', '', 'node names, comma-separated, that report their progress on '
          '/sim/lockstep (their lockstep:=true): simulated time then never runs past it, so '
          'every tick of theirs runs, and reaches the twin, before the twin moves on, and a '
          'starved node never sees the clock race past its queued messages. Empty: free '
          'running, like a real robot'),
    Param('max_lead_s', 0.0, 'lockstep only: how far simulated time may run past the '
          "slowest consumer's progress (s; 0: strict lockstep)", 0.0, 1.0),
    Param('lockstep_silence_s', 2.0, 'lockstep only: a consumer silent this long (wall clock; '
          'live ones send a heartbeat) is dead or hung, and simulated time goes on without it '
          'until it reports again, so the rest of the graph sees the failure (s)', 0.5, 60.0),
    Param('camera_noise_std', 2.0, 'Gaussian sensor noise added to every rendered frame (8-bit '
          'levels, like a real sensor; a noiseless still scene would look frozen to the '
          "stack's frozen-camera check); 0 disables", 0.0, 50.0),
)
