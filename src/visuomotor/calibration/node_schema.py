"""Parameters of the calibration capture node (declared once; node and graph read this)."""

from __future__ import annotations

from visuomotor.params import LOCKSTEP_PARAM, Param

CAPTURE_MODES = ('robot', 'operator')

CALIBRATION_CAPTURE_PARAMS = (
    Param('calibration', '', 'rig calibration folder (a name under calibration/ or a path): '
          'its cameras are captured, its verification.yaml gives the robot poses'),
    Param('robot', 'fr3', 'robot: a name in config/robots or a robot YAML path'),
    Param('out', '', 'capture folder (empty: <calibration>/captures/<UTC time>)'),
    Param('mode', 'robot', 'robot: move the arm through the poses via the safety bridge; '
          'operator: capture when ~/capture (std_srvs/Trigger) is called, the operator having '
          'put the arm or the board in place', choices=CAPTURE_MODES),
    Param('verify', True, 'robot mode: after the last pose, verify the rig on the captured '
          'views and write the record (exit code 0: passed, 1: failed). Operator-mode '
          'folders are verified or solved with `visuomotor calibrate verify|intrinsics|handeye '
          '--captures`'),
    Param('max_speed_rad_s', 0.3, 'fastest joint speed of the moves between poses (the '
          "bridge's limits still apply)", 0.01, 2.0),
    Param('settle_s', 0.5, 'wait this long at each pose before taking the frames (s)',
          0.0, 10.0),
    Param('tolerance_rad', 0.002, 'a pose is reached when every joint is this close',
          0.0001, 0.1),
    Param('pose_timeout_s', 30.0, 'give up when a pose is not reached within this time (s)',
          1.0, 600.0),
    Param('command_topic', '/safety_bridge/command', 'where the moves go (the bridge)'),
    LOCKSTEP_PARAM,
)
