"""`visuomotor calibrate ...`: calibrate a rig's cameras and verify them before a session.

visuomotor calibrate twin [--scene fr3] [--out DIR]
    calibrate the twin's cameras like a real rig (wrist camera: intrinsics and eye-in-hand
    from robot poses over a table board; scene camera: intrinsics from board views, pose
    from the board's fixture) and write the rig folder; prints the error against the
    twin's ground truth
visuomotor calibrate verify --rig NAME|DIR [--source twin --scene fr3]
                            [--move CAM:dx,dy,dz[:rx,ry,rz]]
    capture the verification views, check every camera, write the record, the overlays and
    the HTML report under <rig>/verification/; exit 0 when every camera passed, 1 when not
visuomotor calibrate gate --rig NAME|DIR
    what the deploy graph's gate would decide now (exit 0: it would start)
"""

from __future__ import annotations

import argparse
import datetime
from pathlib import Path

from visuomotor.errors import VisuomotorError


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _twin(args: argparse.Namespace) -> int:
    from visuomotor.sim.calibrate_twin import calibrate_twin, pose_error
    from visuomotor.sim.config import load_scene

    robot = load_scene(args.scene).robot.name
    out = Path(args.out or f'calibration/twin_{robot}')
    result = calibrate_twin(args.scene, out, report=lambda line: print(f'  {line}'))
    for name, fit in result.intrinsics.items():
        k = fit.intrinsics
        print(f'{name}: {k.width}x{k.height}, fx {k.fx:.2f} fy {k.fy:.2f} cx {k.cx:.2f} '
              f'cy {k.cy:.2f}, RMS {fit.rms_px:.3f} px over {fit.views} views')
    for name, solve in result.extrinsics.items():
        mm, deg = pose_error(solve.camera, result.truth[name])
        print(f'{name}: {solve.describe()}; against the twin: {mm:.2f} mm / {deg:.3f} deg')
    mm, deg = pose_error(result.extrinsics['wrist_camera'].board, result.board_truth)
    print(f'board fixture: {mm:.2f} mm / {deg:.3f} deg from the truth')
    for path in result.files:
        print(f'wrote {path}')
    return 0


def _move(text: str) -> tuple[str, tuple[tuple[float, ...], tuple[float, ...]]]:
    camera, _, rest = text.partition(':')
    parts = rest.split(':')
    try:
        shift = tuple(float(v) / 1000.0 for v in parts[0].split(',')) if parts[0] else ()
        rotate = tuple(float(v) for v in parts[1].split(',')) if len(parts) > 1 else ()
    except ValueError:
        raise VisuomotorError(f'--move {text!r}: numbers expected, e.g. '
                              'wrist_camera:3,0,0 (mm) or wrist_camera:0,0,0:0,0.5,0 (deg)'
                              ) from None
    if not camera or len(shift) not in (0, 3) or len(rotate) not in (0, 3) or \
            not (shift or rotate):
        raise VisuomotorError(f'--move {text!r}: give CAMERA:dx,dy,dz in mm, optionally '
                              'followed by :rx,ry,rz in degrees (optical frame)')
    return camera, (shift or (0.0, 0.0, 0.0), rotate or (0.0, 0.0, 0.0))


def _verify(args: argparse.Namespace) -> int:
    from visuomotor.sim.calibration_capture import verify_on_twin

    moves = dict(_move(text) for text in args.move)
    record = verify_on_twin(args.rig, args.scene, _now(), moves=moves)
    for check in record.cameras:
        print(check.summary())
    folder = Path(args.rig) if '/' in args.rig else None
    where = folder or 'the rig folder'
    print(f'{"PASSED" if record.passed else "FAILED"}: record {record.id} in {where}'
          f'/verification (report {record.id}.html)')
    return 0 if record.passed else 1


def _gate(args: argparse.Namespace) -> int:
    from visuomotor.calibration.gate import check_gate

    decision = check_gate(args.rig, _now(), max_age_h=args.max_age_h)
    print(('ALLOWED: ' if decision.allowed else 'BLOCKED: ') + decision.message)
    return 0 if decision.allowed else 1


def add_parsers(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Register `calibrate` and its tools."""
    calibrate = commands.add_parser('calibrate', help='calibrate and verify the cameras',
                                    description=__doc__,
                                    formatter_class=argparse.RawDescriptionHelpFormatter)
    tools = calibrate.add_subparsers(dest='tool', required=True)
    twin = tools.add_parser('twin', help="calibrate the twin's cameras, write the rig folder")
    twin.add_argument('--scene', default='fr3', help='twin scene (config/sim)')
    twin.add_argument('--out', help='rig folder (default: calibration/twin_<robot>)')
    twin.set_defaults(run=_twin)
    verify = tools.add_parser('verify', help='check every camera against its calibration')
    verify.add_argument('--rig', required=True, help='rig calibration folder or name')
    verify.add_argument('--source', default='twin', choices=('twin',),
                        help='where the views come from')
    verify.add_argument('--scene', default='fr3', help='twin scene (--source twin)')
    verify.add_argument('--move', action='append', default=[], metavar='CAM:dx,dy,dz[:r]',
                        help='twin only: knock a camera out of place first (mm, deg)')
    verify.set_defaults(run=_verify)
    gate = tools.add_parser('gate', help='would the deploy graph start now?')
    gate.add_argument('--rig', required=True, help='rig calibration folder or name')
    gate.add_argument('--max-age-h', type=float, default=0.0,
                      help="age limit (h); 0: the rig's verification.yaml")
    gate.set_defaults(run=_gate)
