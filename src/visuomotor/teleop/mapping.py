"""Controller -> end-effector target mapping with a clutch (pure).

While the grip (the clutch) is held, the controller's motion since the clutch engaged moves
the end-effector target from where the end-effector was at that moment:

    p_target = p_ee0 + s_t * R_hb (c - c0)
    R_target = Exp(s_r * Log(R_hb (C C0^T) R_hb^T)) R_ee0

with R_hb the calibrated headset-to-base rotation, s_t / s_r the translation / rotation
scales, c, C the filtered controller position and orientation and c0, C0 their values when
the clutch engaged. Releasing the grip freezes the target (the node stops commanding and the
safety bridge's watchdog stops the arm), and re-engaging re-anchors both ends, so the arm
never jumps to where the hand went meanwhile (clutching, as with a mouse lifted off its mat).

The clutch also releases, and a fresh grip press is needed, when the pose or the input
stream goes silent for `input_timeout_s` (a lost or frozen controller), or the raw pose
jumps by more than `max_jump_m` between two samples (tracking glitch). A grip already held
when a stream (re)starts (or pressed while one is silent) does not engage: it must be
released and pressed again. So must a grip pressed during the move home.

Buttons (rising edges): lower (A/X) toggles the episode (start / stop), upper (B/Y) discards
the episode being recorded; upper pressed while idle and unclutched starts the hold-to-run
move home, which lasts while it is held. The trigger closes the gripper (hysteresis).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from visuomotor.robots.transforms import Matrix, rot_z, rotation_from_vector, rotation_vector
from visuomotor.teleop.config import TeleopConfig
from visuomotor.teleop.filters import OneEuroPose
from visuomotor.teleop.inputs import ControllerInputs, ControllerPose

TOGGLE_EPISODE = 'toggle_episode'
DISCARD = 'discard'
HOME = 'home'
ALIGNED = 'aligned'
ALIGN_FAILED = 'align_failed'
MIN_STROKE_M = 0.1


@dataclass(frozen=True)
class Anchor:
    """Both ends of the clutch when it engaged."""

    controller_position: Matrix
    controller_rotation: Matrix
    ee_pose: Matrix


def yaw_from_stroke(stroke_headset: Matrix, headset_to_base: Matrix) -> tuple[float, Matrix]:
    """Correct the yaw of `headset_to_base` from a stroke meant along the robot's +x.

    The operator moves the controller straight towards the robot's front; the horizontal
    direction of that stroke, mapped into the base frame, should be +x. Returns the yaw error
    (radians) and the corrected rotation (the yaw correction about the base's z applied).
    """
    in_base = headset_to_base @ np.asarray(stroke_headset, dtype=np.float64)
    yaw = math.atan2(float(in_base[1]), float(in_base[0]))
    return yaw, np.asarray(rot_z(-yaw)[:3, :3] @ headset_to_base)


class ClutchMapping:
    """The clutch state machine (see the module docstring). Times are the receiver's clock."""

    def __init__(self, config: TeleopConfig) -> None:
        self.config = config
        self.headset_to_base = np.array(config.headset_to_base, dtype=np.float64)
        self.filter = OneEuroPose(config.filter_min_cutoff_hz, config.filter_beta,
                                  config.filter_derivative_cutoff_hz)
        self.anchor: Anchor | None = None
        self.inputs = ControllerInputs()
        self.inputs_received_s: float | None = None
        self.pose_received_s: float | None = None
        self.gripper_closed = False
        self.homing = False
        self.aligning = False
        self._ready = False  # the grip was seen released since the last disengage
        self._last_raw: Matrix | None = None
        self._stroke_start: Matrix | None = None
        self._stroke_end = np.zeros(3)
        self.yaw_correction_rad = 0.0
        self.last_release = ''

    @property
    def engaged(self) -> bool:
        """Whether the clutch is engaged (the arm follows the controller)."""
        return self.anchor is not None

    # -- inputs -----------------------------------------------------------------------------

    def on_inputs(self, now_s: float, inputs: ControllerInputs, recording: bool) -> list[str]:
        """A new input reading; returns the button events it causes."""
        cfg, previous = self.config, self.inputs
        restarted = self._silent(now_s, self.inputs_received_s)
        self.inputs, self.inputs_received_s = inputs, now_s
        if restarted:
            self._drop_ready_if_held()  # the input stream (re)starts with the grip held
        events: list[str] = []
        if inputs.lower and not previous.lower:
            events.append(TOGGLE_EPISODE)
        if inputs.upper and not previous.upper:
            if recording:
                events.append(DISCARD)
            elif not self.engaged:
                self.homing = True
                events.append(HOME)
        if not inputs.upper:
            self.homing = False
        if inputs.trigger >= cfg.gripper_close:
            self.gripper_closed = True
        elif inputs.trigger <= cfg.gripper_open:
            self.gripper_closed = False
        if inputs.grip <= cfg.clutch_release:
            self._ready = True
            if self.engaged or self._stroke_start is not None:
                events += self._release('grip released')
        elif self.homing and inputs.grip >= cfg.clutch_engage:
            self._ready = False  # pressed during the move home: press again afterwards
        return events

    # -- poses ------------------------------------------------------------------------------

    def on_pose(self, now_s: float, pose: ControllerPose, ee_pose: Matrix) -> Matrix | None:
        """Map a new (checked) controller pose.

        Returns the end-effector target (4x4, base frame) while the clutch is engaged, else
        None (nothing to command).

        Args:
            now_s: receive time.
            pose: the controller pose.
            ee_pose: the end-effector's pose now (FK of the measured joints): the robot-side
                anchor if the clutch engages on this sample.
        """
        self.check_streams(now_s)
        gap = self._silent(now_s, self.pose_received_s)
        self.pose_received_s = now_s
        if gap:
            self.filter.reset()
            self._drop_ready_if_held()  # the pose stream (re)starts with the grip held
        jump = 0.0 if self._last_raw is None or gap else \
            float(np.linalg.norm(pose.position - self._last_raw))
        self._last_raw = pose.position
        position, rotation = self.filter(pose.stamp_s, pose.position, pose.rotation)
        if jump > self.config.max_jump_m:
            self._release(f'tracking jump of {jump * 1000:.0f} mm in one sample (limit '
                          f'{self.config.max_jump_m * 1000:.0f} mm)', ready=False)
            return None
        if self.aligning:
            self._align_stroke(position)
            return None
        if self.anchor is None:
            if not self._clutch_pressed() or self.homing:
                return None
            self.anchor = Anchor(position, rotation, np.array(ee_pose, dtype=np.float64))
            self.last_release = ''
        return self._target(self.anchor, position, rotation)

    def check_streams(self, now_s: float) -> str:
        """Release the clutch if a stream went silent; returns the reason ('' if none)."""
        timeout = self.config.input_timeout_s
        for name, last in (('pose', self.pose_received_s), ('input', self.inputs_received_s)):
            if not self._silent(now_s, last):
                continue
            self._drop_ready_if_held()
            if self.engaged:
                silent = 'never received' if last is None else \
                    f'silent for {now_s - last:.3f} s'
                self._release(f'controller {name} stream {silent} (limit {timeout} s)',
                              ready=False)
                return self.last_release
        if self.homing and (self.inputs_received_s is None
                            or now_s - self.inputs_received_s > timeout):
            self.homing = False
            return 'input stream silent: move home stopped'
        return ''

    def start_alignment(self) -> None:
        """The next grip-held stroke measures the headset yaw instead of moving the arm."""
        self._release('alignment started')
        self.aligning = True
        self._stroke_start = None

    # -- internals --------------------------------------------------------------------------

    def _silent(self, now_s: float, last_s: float | None) -> bool:
        return last_s is None or now_s - last_s > self.config.input_timeout_s

    def _drop_ready_if_held(self) -> None:
        if self.inputs.grip > self.config.clutch_release:
            self._ready = False

    def _clutch_pressed(self) -> bool:
        return self._ready and self.inputs.grip >= self.config.clutch_engage

    def _align_stroke(self, position: Matrix) -> None:
        if self._stroke_start is None and self._clutch_pressed():
            self._stroke_start = position
        self._stroke_end = position

    def _release(self, why: str, ready: bool | None = None) -> list[str]:
        events: list[str] = []
        if self.aligning and self._stroke_start is not None:
            stroke = self._stroke_end - self._stroke_start
            horizontal = stroke - np.dot(stroke, self.headset_to_base[2]) * \
                self.headset_to_base[2]
            if float(np.linalg.norm(horizontal)) >= MIN_STROKE_M:
                self.yaw_correction_rad, self.headset_to_base = yaw_from_stroke(
                    stroke, self.headset_to_base)
                events.append(ALIGNED)
            else:
                events.append(ALIGN_FAILED)
            self.aligning = False
            self._stroke_start = None
        if self.engaged:
            self.last_release = why
        self.anchor = None
        if ready is not None:
            self._ready = ready
        return events

    def _target(self, anchor: Anchor, position: Matrix, rotation: Matrix) -> Matrix:
        cfg, r_hb = self.config, self.headset_to_base
        target = np.array(anchor.ee_pose)
        target[:3, 3] += cfg.translation_scale * (r_hb @ (position
                                                        - anchor.controller_position))
        if cfg.rotation_scale > 0.0:
            turn = r_hb @ rotation @ anchor.controller_rotation.T @ r_hb.T
            scaled = rotation_from_vector(cfg.rotation_scale * rotation_vector(turn))
            target[:3, :3] = scaled @ anchor.ee_pose[:3, :3]
        return target
