"""Parameters of the safety bridge node (declared once; the ROS node and the graph read this).

Timing defaults follow ../shared/research/safety_anchors.md 7.2: stale and watchdog limits of
min(1.5 / policy rate, 0.15 s), 3 consecutive invalid commands fault. The joint-state
freshness limit follows the driver's publishing rate (robot file, at least 3 periods).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from visuomotor.params import LOCKSTEP_PARAM, Param, ParameterError, ParamValue
from visuomotor.safety.bridge import BridgeTiming
from visuomotor.safety.profile import (
    INTERFACES,
    TIERS,
    DriverSettings,
    check_joint_state_timeout,
)

BRIDGE_NODE_PARAMS = (
    Param('robot', 'fr3', 'robot profile: a name in config/robots (fr3, panda, ur5e, ur5) or a '
          'robot YAML path with a safety block'),
    Param('tier', 'commissioning', 'limit tier of the profile; commissioning (reduced caps) '
          'is the default until you switch explicitly', choices=TIERS),
    Param('interface', '', "command interface to the controller (empty: the profile's "
          'default)', choices=('', *INTERFACES)),
    Param('workspace', '', 'TCP workspace box: a name in config/workspaces or a YAML path. No '
          'default: the bridge refuses to arm without one'),
    Param('control_rate_hz', 100.0, 'setpoints per second sent to the controller (the 1 kHz '
          "loop stays in the robot's controller)", 1.0, 500.0),
    Param('stale_s', BridgeTiming.stale_s, 'commands whose stamp is older than this on '
          'arrival are dropped (s)', 0.005, 1.0),
    Param('watchdog_s', BridgeTiming.watchdog_s, 'no valid command for this long while moving '
          'starts a controlled stop (s)', 0.005, 1.0),
    Param('joint_state_timeout_s', 0.0, 'joint states older or frozen for this long stop the '
          "arm and latch a fault (s); 0: the robot file's driver.joint_state_timeout_s. At "
          "least 3 periods of the driver's joint-state rate", 0.0, 1.0),
    Param('joint_states_topic', '', "the measured arm joints; empty: the robot file's "
          'driver.joint_states_topic (/joint_states)'),
    Param('max_consecutive_rejects', BridgeTiming.max_consecutive_rejects, 'this many invalid '
          'commands in a row latch a fault', 1, 100),
    Param('tracking_error_duration_s', BridgeTiming.tracking_error_duration_s, 'a tracking '
          "error above the tier's bound for this long stops and faults (s)", 0.0, 1.0),
    Param('gripper_min_toggle_s', BridgeTiming.gripper_min_toggle_s, 'shortest time between '
          'gripper direction reversals (s)', 0.0, 10.0),
    Param('hold_settle_s', BridgeTiming.hold_settle_s, 'time the controller gets to settle '
          'onto the measured pose after a stop (s)', 0.001, 2.0),
    Param('decision_log', '', 'append every decision record (raw, limited, reasons) to this '
          'JSON-lines file; empty: only the ~/decisions topic'),
    Param('arm_on_start', False, 'arm as soon as joint states arrive, and again after the '
          'twin resets (its clock jumps back): the twin demo and tests; on a real robot, call '
          '~/arm'),
    LOCKSTEP_PARAM,
)


def timing_from_params(params: Mapping[str, ParamValue], driver: DriverSettings
                       ) -> BridgeTiming:
    """BridgeTiming from resolved node parameters (same names; the rate gives the period).

    The values were type-checked against the schema (whose defaults are BridgeTiming's). The
    joint-state freshness limit comes from the robot file's driver block unless the parameter
    sets one, which must still span 3 periods of the driver's joint-state rate.

    Raises:
        ParameterError: a joint_state_timeout_s too short for the driver's rate.
    """
    values = {field.name: params[field.name] for field in dataclasses.fields(BridgeTiming)
              if field.name in params}
    timeout = float(values.pop('joint_state_timeout_s', 0.0))
    if timeout:
        problem = check_joint_state_timeout(timeout, driver.joint_state_rate_hz)
        if problem:
            raise ParameterError('joint_state_timeout_s', problem)
    else:
        timeout = driver.joint_state_timeout_s
    return BridgeTiming(control_period_s=1.0 / float(params['control_rate_hz']),
                        joint_state_timeout_s=timeout, **values)  # type: ignore[arg-type]
