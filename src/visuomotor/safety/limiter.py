"""The per-tick joint command limiter (pure numpy; time is an argument).

One call turns a finite target (validated upstream) into the next command, continuous from
the previous one. In order:

1. clamp the target to the joint envelope (vendor limits minus the hard margin);
2. scale the requested velocity by ONE factor so every joint is within its cap, where the cap
   toward a limit shrinks as v_cap * sqrt(distance / slowdown zone) (direction preserved);
3. scale by one factor again so the TCP's linear and angular speed stay under the Cartesian
   caps, and its speed toward each workspace wall shrinks the same way near the wall
   (forward kinematics of the candidate, the twin's FK module);
4. move from the previous commanded velocity toward that velocity by one uniform step no
   larger than a_cap * dt on any joint (the acceleration cap; the output velocity is a convex
   combination of two admissible velocities, so the caps still hold);
5. verify the result with FK; if the Cartesian caps or the box are still violated (the
   linearisation in step 3 missed), shrink along the same line. If the previous velocity
   itself is inadmissible there (the Jacobian changes fast near a singularity), brake along
   it at the acceleration cap and accept the Cartesian speed cap for that tick (flagged
   `cartesian_cap_exceeded`), unless braking that gently would break a wall's slowdown
   curve: only then is the acceleration cap overridden (flagged `cartesian_override`).

Compliant input passes bit-identically; the output never moves a joint faster than both the
request and the previous command; no operation can turn a finite input into NaN.
Priorities when the caps conflict: joint envelope and workspace box, then the joint velocity
and acceleration caps, then the Cartesian speed caps. The slowdown zone is validated
(profile.py) to be long enough to brake within the acceleration cap.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from visuomotor.robots.kinematics import TcpKinematics
from visuomotor.safety.profile import SafetyLimits
from visuomotor.safety.workspace import WorkspaceBox

Vector = npt.NDArray[np.float64]

#: Relative slack when comparing with a cap (floating-point rounding, not tolerance).
_SLACK = 1e-9
#: Scaling lands this far under a Cartesian cap so the linearisation rarely overshoots.
_HEADROOM = 0.98


def _any(mask: npt.NDArray[np.bool_]) -> bool:
    """`mask.any()` for the few-element masks here, at a tenth of its cost."""
    return True in mask.tolist()


@dataclass(frozen=True)
class CommandState:
    """The last command sent: positions, velocity and the TCP pose at those positions."""

    q: Vector
    v: Vector
    tcp: Vector


@dataclass(frozen=True)
class LimitResult:
    """The limited command and why it differs from the target (empty reasons: identical)."""

    state: CommandState
    reasons: tuple[str, ...]


class Limiter:
    """Stateless limiter for one robot, one tier and one workspace box."""

    def __init__(self, limits: SafetyLimits, workspace: WorkspaceBox,
                 kinematics: TcpKinematics) -> None:
        self.limits = limits
        self.box = workspace
        self.fk = kinematics
        self._signed_bounds = np.array([limits.upper_rad, -limits.lower_rad])
        self._signs = np.array([[1.0], [-1.0]])
        self._cap_squared_per_zone = limits.velocity_rad_s ** 2 / limits.slowdown_zone_rad
        self._box_min = workspace.min_xyz_m.tolist()
        self._box_max = workspace.max_xyz_m.tolist()

    def seed(self, q: Vector) -> CommandState:
        """A state at rest at `q` (arming, acknowledging, holding the measured pose)."""
        positions = np.array(q, dtype=np.float64)
        return CommandState(positions, np.zeros_like(positions), self.fk.pose(positions))

    # -- joint space ------------------------------------------------------------------------

    def joint_caps(self, q: Vector, dt: float) -> tuple[Vector, Vector]:
        """Speed caps toward the upper and the lower limit at `q` (slowdown zone applied)."""
        # Both directions at once (one row each): half the numpy calls of doing them apart.
        room = self._signed_bounds - q * self._signs
        np.maximum(room, 0.0, out=room)
        # v_cap * min(1, sqrt(room / zone)) == min(v_cap, sqrt(room * v_cap**2 / zone)).
        caps = np.sqrt(room * self._cap_squared_per_zone)
        np.minimum(caps, self.limits.velocity_rad_s, out=caps)
        np.minimum(caps, room / dt, out=caps)
        return caps[0], caps[1]

    # -- Cartesian --------------------------------------------------------------------------

    def cartesian_ratio(self, tcp_prev: Vector, tcp_new: Vector, dt: float) -> float:
        """How far a TCP move exceeds the Cartesian caps (<= 1: within them).

        The larger of `speed_ratio` and `wall_ratio`.
        """
        # Plain floats: for 3-vectors they are several times cheaper than numpy calls.
        prev, new = tcp_prev.tolist(), tcp_new.tolist()
        return max(self._speed(prev, new, dt), self._walls(prev, new, dt))

    def speed_ratio(self, tcp_prev: Vector, tcp_new: Vector, dt: float) -> float:
        """Linear speed / cap and angular speed / cap of a TCP move, the larger."""
        return self._speed(tcp_prev.tolist(), tcp_new.tolist(), dt)

    def wall_ratio(self, tcp_prev: Vector, tcp_new: Vector, dt: float) -> float:
        """Per wall, the displacement toward it / what its slowdown curve allows this tick.

        The allowance never exceeds the distance to the wall, so <= 1 also means the TCP
        stays inside the box.
        """
        return self._walls(tcp_prev.tolist(), tcp_new.tolist(), dt)

    def _speed(self, prev: list[list[float]], new: list[list[float]], dt: float) -> float:
        lim = self.limits
        dx, dy, dz = (new[0][3] - prev[0][3], new[1][3] - prev[1][3], new[2][3] - prev[2][3])
        ratio = math.sqrt(dx * dx + dy * dy + dz * dz) / (lim.tcp_linear_m_s * dt)
        a, b, c = prev[0], prev[1], prev[2]
        d, e, f = new[0], new[1], new[2]
        # trace(R_prev^T R_new), unrolled (a generator over the 9 terms costs 3x as much).
        trace = (a[0] * d[0] + a[1] * d[1] + a[2] * d[2] + b[0] * e[0] + b[1] * e[1]
                 + b[2] * e[2] + c[0] * f[0] + c[1] * f[1] + c[2] * f[2])
        angle = math.acos(min(1.0, max(-1.0, (trace - 1.0) / 2.0)))
        return max(ratio, angle / (lim.tcp_angular_rad_s * dt))

    def _walls(self, prev: list[list[float]], new: list[list[float]], dt: float) -> float:
        lim, zone = self.limits, self.box.slowdown_zone_m
        low, high = self._box_min, self._box_max
        ratio = 0.0
        for axis in range(3):
            p0 = prev[axis][3]
            step = new[axis][3] - p0
            if step == 0.0:
                continue
            distance = high[axis] - p0 if step > 0 else p0 - low[axis]
            if distance <= 0.0:
                return math.inf  # on or beyond the wall: no motion toward it at all
            allowed = min(lim.tcp_linear_m_s * min(1.0, math.sqrt(distance / zone)) * dt,
                          distance)
            ratio = max(ratio, abs(step) / allowed)
        return ratio

    # -- the step ---------------------------------------------------------------------------

    def step(self, prev: CommandState, target: Vector, dt: float) -> LimitResult:
        """The next command toward `target` (finite, robot joint order) after `dt` seconds."""
        lim = self.limits
        reasons: list[str] = []
        q = prev.q
        q_target = np.minimum(np.maximum(target, lim.lower_rad), lim.upper_rad)
        if _any(q_target != target):
            reasons.append('position_clamped')
        v_want = (q_target - q) / dt
        cap_hi, cap_lo = self.joint_caps(q, dt)

        # 2. one uniform factor for the joint caps.
        speed = np.abs(v_want)
        cap = np.where(v_want > 0, cap_hi, cap_lo)
        over = speed > cap * (1.0 + _SLACK)
        scale = 1.0
        if _any(over):
            scale = min((cap[over] / speed[over]).tolist())
            slowed = _any(over & (cap < lim.velocity_rad_s))
            reasons.append('slowdown' if slowed else 'velocity_scaled')
        v1 = v_want * scale

        # 3. one uniform factor for the Cartesian caps (FK of the candidate).
        q1 = q_target if scale == 1.0 else self._positions(q, v1, dt)
        tcp1 = self.fk.pose(q1)
        ratio = self.cartesian_ratio(prev.tcp, tcp1, dt)
        v2 = v1
        if ratio > 1.0 + _SLACK:
            v2 = v1 * (_HEADROOM / ratio if math.isfinite(ratio) else 0.0)
            reasons.append('cartesian_scaled')

        # 4. the acceleration cap: one uniform step from the previous velocity toward v2.
        base = np.minimum(np.maximum(prev.v, -cap_lo), cap_hi)
        budget = lim.acceleration_rad_s2 * dt
        if base.tolist() != prev.v.tolist():  # the caps shrank under the previous velocity
            budget = np.maximum(budget - np.abs(base - prev.v), 0.0)
        change = v2 - base
        size = np.abs(change)
        limited = size > budget * (1.0 + _SLACK) + 1e-15
        fraction = 1.0
        if _any(limited):
            allowed = budget[limited] if isinstance(budget, np.ndarray) else budget
            fraction = min((allowed / size[limited]).tolist())
            reasons.append('acceleration_limited')
        v3 = base + change * fraction
        if not reasons:
            return LimitResult(CommandState(q_target, v_want, tcp1), ())
        if fraction == 1.0 and v2 is v1 and (base + change).tolist() == v1.tolist():
            # Only the joint caps acted: tcp1 is already the pose of this command.
            return LimitResult(CommandState(q1, v1, tcp1),
                               tuple(reasons))

        q3, tcp3 = self._advance(q, v3, dt)
        if self.cartesian_ratio(prev.tcp, tcp3, dt) > 1.0 + _SLACK:
            v3, q3, tcp3 = self._shrink(prev, base, v3, dt, reasons)
        return LimitResult(CommandState(q3, v3, tcp3), tuple(reasons))

    def _positions(self, q: Vector, v: Vector, dt: float) -> Vector:
        # Never outward past the envelope, and never a jump inward when starting outside it
        # (the caps then only allow motion back toward it).
        lim = self.limits
        return np.minimum(np.maximum(q + v * dt, np.minimum(lim.lower_rad, q)),
                          np.maximum(lim.upper_rad, q))

    def _advance(self, q: Vector, v: Vector, dt: float) -> tuple[Vector, Vector]:
        q_new = self._positions(q, v, dt)
        return q_new, self.fk.pose(q_new)

    def _shrink(self, prev: CommandState, base: Vector, v3: Vector, dt: float,
                reasons: list[str]) -> tuple[Vector, Vector, Vector]:
        """Largest admissible velocity on the segment base -> v3; else brake from base.

        `base` (the previous velocity within the joint caps) can itself break the Cartesian
        caps where the Jacobian changes fast (near a singularity). Then the arm brakes along
        it as hard as the acceleration cap allows, accepting a soft Cartesian cap for the
        tick (`cartesian_cap_exceeded`), unless that would break a wall's slowdown curve (the
        box is hard): only then is the acceleration cap overridden (`cartesian_override`).
        """
        def admissible(v: Vector) -> tuple[bool, Vector, Vector]:
            q_new, tcp = self._advance(prev.q, v, dt)
            return self.cartesian_ratio(prev.tcp, tcp, dt) <= 1.0 + _SLACK, q_new, tcp

        ok = admissible(base)[0]
        start, end = (base, v3) if ok else (np.zeros_like(base), base)
        best = (start, *self._advance(prev.q, start, dt))
        low, high = 0.0, 1.0
        for _ in range(16):
            mid = (low + high) / 2.0
            candidate = start + (end - start) * mid
            ok_mid, q_mid, tcp_mid = admissible(candidate)
            if ok_mid:
                low, best = mid, (candidate, q_mid, tcp_mid)
            else:
                high = mid
        if 'cartesian_scaled' not in reasons:
            reasons.append('cartesian_scaled')
        if ok:
            return best
        speed = np.abs(base)
        moving = speed > 0.0
        budget = np.maximum(self.limits.acceleration_rad_s2 * dt - np.abs(base - prev.v), 0.0)
        braking = max((1.0 - budget[moving] / speed[moving]).tolist()) if _any(moving) else 0.0
        if braking <= low:
            return best
        candidate = base * braking
        q_brake, tcp_brake = self._advance(prev.q, candidate, dt)
        if self.wall_ratio(prev.tcp, tcp_brake, dt) <= 1.0 + _SLACK:
            reasons.append('cartesian_cap_exceeded')
            return candidate, q_brake, tcp_brake
        reasons.append('cartesian_override')
        return best
