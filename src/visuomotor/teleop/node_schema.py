"""Parameters of the teleop node and the simulated Quest.

Declared once; the ROS nodes and the graph read this.
"""

from __future__ import annotations

from visuomotor.params import LOCKSTEP_PARAM, Param
from visuomotor.safety.profile import TIERS

TELEOP_NODE_PARAMS = (
    Param('teleop', 'quest2ros', 'teleop config: a name in config/teleop (quest2ros, '
          'sim_quest) or a YAML path: the source, topics, headset rotation, scales, filter'),
    Param('robot', 'fr3', 'robot: a name in config/robots or a robot YAML path'),
    Param('tier', 'commissioning', "the safety bridge's limit tier: the IK keeps inside its "
          'joint envelope', choices=TIERS),
    Param('bridge', '/safety_bridge', 'namespace of the safety bridge the targets go to'),
    Param('recorder', '/recorder', 'namespace of the recorder whose episodes the buttons '
          'start, stop and discard'),
    Param('timer_rate_hz', 50.0, 'rate of the move home, the stream checks and the haptic '
          'pulses (targets while clutched follow each controller pose)', 5.0, 500.0),
    LOCKSTEP_PARAM,
)

SIM_QUEST_NODE_PARAMS = (
    Param('script', 'session', 'what the simulated operator does: session (recorded '
          'episodes, one discarded, moves home in between)', choices=('session',)),
    Param('episodes', 3, 'kept episodes of the session script', 1, 100),
    Param('discard', True, 'add an episode that is started and discarded'),
    Param('hand', 'right', 'controller (topic /quest/<hand>/...)', choices=('right', 'left')),
    Param('rate_hz', 50.0, 'pose and Joy messages per second (simulated time)', 1.0, 500.0),
    Param('jitter_m', 0.0003, 'Gaussian tracking jitter per axis (m)', 0.0, 0.01),
    Param('start_delay_s', 2.0, 'simulated seconds before the script starts (discovery, '
          'arming)', 0.0, 60.0),
    Param('seed', 0, 'jitter seed', 0, 2**31 - 1),
    Param('exit_when_done', True, 'exit (code 0) when the script has played'),
    LOCKSTEP_PARAM,
)
