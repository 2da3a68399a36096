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
visuomotor calibrate verify --rig NAME|DIR --captures DIR
    verify on views captured earlier (`visuomotor launch calibrate`, a capture folder)
visuomotor calibrate intrinsics --rig DIR --camera NAME --captures DIR [--board 5x7:0.06:0.045]
    intrinsics from the board views of a capture folder, with the coverage still missing;
    writes <rig>/<camera>.yaml (camera_info + serial, RMS, views)
visuomotor calibrate handeye --rig DIR --camera NAME --captures DIR --kind eye_in_hand|...
    where the camera sits, from the views and the joint positions captured with them:
    eye_in_hand (wrist camera, board fixed: also measures the board's fixture pose),
    eye_to_hand (fixed camera, board on the gripper), fixture (fixed camera, board at the
    fixture of board.yaml); writes <rig>/<camera>_extrinsics.yaml (and board.yaml)
visuomotor calibrate gate --rig NAME|DIR
    what the deploy graph's gate would decide now (exit 0: it would start)

Captures for calibration: `visuomotor launch calibrate mode:=operator ...` and a
/calibration_capture/capture call per view (move the arm, or the board, between calls).
"""

from __future__ import annotations

import argparse
import datetime
from pathlib import Path

from visuomotor.cli import output_folder
from visuomotor.errors import VisuomotorError


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _twin(args: argparse.Namespace) -> int:
    from visuomotor.sim.calibrate_twin import calibrate_twin, pose_error
    from visuomotor.sim.config import load_scene

    robot = load_scene(args.scene).robot.name
    out = output_folder(args.out or f'calibration/twin_{robot}', '--out')
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


def _views_from(captures_dir: str):  # type: ignore[no-untyped-def]
    from visuomotor.calibration.captures import camera_views, load_captures
    from visuomotor.robots.description import load_robot

    captures = load_captures(captures_dir)
    return captures, camera_views(captures, load_robot(captures.robot))


def _verify(args: argparse.Namespace) -> int:
    if args.captures:
        from visuomotor.calibration.report import write_record
        from visuomotor.calibration.rig_files import load_rig_calibration
        from visuomotor.calibration.verify import verify_rig

        rig = load_rig_calibration(args.rig)
        captures, views = _views_from(args.captures)
        serials = {c: s for v in captures.views for c, s in v.serials.items()}
        checked, drawn = verify_rig(rig, views, _now(), serials=serials)
        record = write_record(checked, rig.records, drawn)
    else:
        from visuomotor.sim.calibration_capture import verify_on_twin

        moves = dict(_move(text) for text in args.move)
        record = verify_on_twin(args.rig, args.scene, _now(), moves=moves)
    for check in record.cameras:
        print(check.summary())
    from visuomotor.calibration.rig_files import RECORDS, calibration_folder

    records = calibration_folder(args.rig) / RECORDS
    print(f'{"PASSED" if record.passed else "FAILED"}: record {record.id} in {records} '
          f'(report {record.id}.html)')
    return 0 if record.passed else 1


def _board(text: str, folder: Path):  # type: ignore[no-untyped-def]
    """The board geometry: --board SQUARESxSQUARES:SQUARE_M:MARKER_M[:DICT] or board.yaml."""
    from visuomotor.calibration.rig_files import load_board
    from visuomotor.sim.config import BoardConfig

    if not text:
        return load_board(folder).board
    try:
        squares, square, marker, *rest = text.split(':')
        nx, ny = (int(v) for v in squares.lower().split('x'))
        return BoardConfig(squares=(nx, ny), square_m=float(square), marker_m=float(marker),
                           dictionary=rest[0] if rest else 'DICT_4X4_50')
    except ValueError:
        raise VisuomotorError(f'--board {text!r}: give SQUARESxSQUARES:SQUARE_M:MARKER_M'
                              '[:DICTIONARY], e.g. 5x7:0.06:0.045:DICT_4X4_50') from None


def _detections(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    from visuomotor.calibration.charuco import detect_board

    folder = output_folder(args.rig, '--rig')
    board = _board(args.board, folder)
    captures, views = _views_from(args.captures)
    if args.camera not in views:
        raise VisuomotorError(f'camera {args.camera!r} is not in {args.captures} (it has '
                              f'{list(views)})')
    found = []
    for index, view in enumerate(views[args.camera], 1):
        detected = detect_board(view.image, board, source=f'view {index}')
        if detected is None:
            print(f'  view {index}: no board found (skipped)')
            continue
        found.append((view, detected))
    serial = next((v.serials.get(args.camera, '') for v in captures.views), '')
    return folder, board, found, serial


def _intrinsics(args: argparse.Namespace) -> int:
    from visuomotor.calibration.intrinsics import Coverage, calibrate_intrinsics, save_intrinsics

    folder, _, found, serial = _detections(args)
    if not found:
        raise VisuomotorError(f'no view of {args.camera} shows the board')
    width, height = found[0][1].image_size
    coverage = Coverage(width, height)
    for _, view in found:
        coverage.add(view)
    print(f'coverage: {coverage.describe()}')
    result = calibrate_intrinsics([v for _, v in found], model=args.model,
                                  camera_name=args.camera)
    k = result.intrinsics
    print(f'{args.camera}: {k.width}x{k.height}, fx {k.fx:.2f} fy {k.fy:.2f} cx {k.cx:.2f} '
          f'cy {k.cy:.2f}, {args.model} {[round(d, 4) for d in k.d]}, RMS {result.rms_px:.3f} '
          f'px over {result.views} views (worst view {max(result.view_rms_px):.3f} px)')
    path = save_intrinsics(result, folder / f'{args.camera}.yaml',
                           serial=args.serial or serial)
    print(f'wrote {path}')
    return 0


def _handeye(args: argparse.Namespace) -> int:
    import numpy as np

    from visuomotor.calibration.handeye import (
        board_pose,
        calibrate_fixed_camera,
        calibrate_hand_eye,
    )
    from visuomotor.calibration.rig_files import (
        BoardPlacement,
        CameraExtrinsics,
        load_board,
        save_board,
        save_extrinsics,
    )
    from visuomotor.cameras.intrinsics import load_camera_info

    folder, board, found, _ = _detections(args)
    intrinsics = load_camera_info(folder / f'{args.camera}.yaml')
    flanges = [view.flange_in_base for view, _ in found]
    seen = [board_pose(detected, intrinsics) for _, detected in found]
    if args.kind == 'fixture':
        solve = calibrate_fixed_camera(load_board(folder).pose, seen)
    else:
        solve = calibrate_hand_eye(args.kind, flanges, seen)
    print(f'{args.camera}: {solve.describe()}')
    parent = 'flange' if args.kind == 'eye_in_hand' else 'base'
    extrinsics = CameraExtrinsics(args.camera, parent, solve.camera, args.kind, solve.views,
                                  float(np.median(solve.translation_mm)),
                                  float(np.median(solve.rotation_deg)))
    print(f'wrote {save_extrinsics(extrinsics, folder)}')
    if args.kind != 'fixture':
        placement = 'fixture' if args.kind == 'eye_in_hand' else 'gripper'
        path = save_board(BoardPlacement(board, placement, solve.board,
                                         f'{args.camera} {args.kind} calibration, '
                                         f'{solve.views} views'), folder)
        print(f'wrote {path} (the board on its {placement})')
    return 0


def _gate(args: argparse.Namespace) -> int:
    from visuomotor.calibration.gate import check_gate

    decision = check_gate(args.rig, _now(), max_age_h=args.max_age_h)
    print(('ALLOWED: ' if decision.allowed else 'BLOCKED: ') + decision.message)
    return 0 if decision.allowed else 1


def _non_negative_hours(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value >= 0.0 or value == float('inf'):
        raise argparse.ArgumentTypeError(f"must be a number of hours >= 0 (0: the rig's "
                                         f'verification.yaml), got {text!r}')
    return value


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
    verify.add_argument('--captures', help='a capture folder to verify on (default: capture '
                        'on the twin in-process)')
    verify.add_argument('--scene', default='fr3', help='twin scene (--source twin)')
    verify.add_argument('--move', action='append', default=[], metavar='CAM:dx,dy,dz[:r]',
                        help='twin only: knock a camera out of place first (mm, deg)')
    verify.set_defaults(run=_verify)
    for name, run, text in (('intrinsics', _intrinsics, 'intrinsics from captured views'),
                            ('handeye', _handeye, 'where a camera sits, from captured views')):
        tool = tools.add_parser(name, help=text)
        tool.add_argument('--rig', required=True, help='rig calibration folder (written)')
        tool.add_argument('--camera', required=True, help='the camera to calibrate')
        tool.add_argument('--captures', required=True, help='capture folder')
        tool.add_argument('--board', default='', help="board geometry "
                          "SQUARESxSQUARES:SQUARE_M:MARKER_M[:DICT] (default: the rig's "
                          'board.yaml)')
        if name == 'intrinsics':
            tool.add_argument('--model', default='plumb_bob',
                              choices=('plumb_bob', 'rational_polynomial'))
            tool.add_argument('--serial', default='', help='camera serial (default: as '
                              'captured)')
        else:
            tool.add_argument('--kind', required=True,
                              choices=('eye_in_hand', 'eye_to_hand', 'fixture'))
        tool.set_defaults(run=run)
    gate = tools.add_parser('gate', help='would the deploy graph start now?')
    gate.add_argument('--rig', required=True, help='rig calibration folder or name')
    gate.add_argument('--max-age-h', type=_non_negative_hours, default=0.0,
                      help="age limit (h); 0: the rig's verification.yaml")
    gate.set_defaults(run=_gate)
