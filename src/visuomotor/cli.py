"""The `visuomotor` command line.

visuomotor demo [--out DIR]                 run the demo on this machine
visuomotor spec FILE                        check and describe a preprocessing spec
visuomotor preprocess --spec FILE IMAGE     show what a model with that spec sees
visuomotor dataset check PATH [--sheet PNG] check a recorded dataset (stamps, rates, drops,
                                            skew) and render a contact sheet
visuomotor dataset export-hdf5 PATH OUT     export it to a robomimic-style HDF5 file
visuomotor train DATASET OUT [--head ...]   behaviour cloning on a recorded dataset -> bundle
visuomotor train-demo                       record, train and evaluate the bundled demo policy
visuomotor evaluate BUNDLE [--seeds N]      roll a bundle out on the twin in-process
visuomotor explain BUNDLE DATASET [--out D] feature-point and saliency videos, contact sheets
                                            and point trajectories for recorded episodes
visuomotor alignment-test [--out D]         the Visual Alignment Test on the twin (Table IV)
visuomotor launch deploy|record|calibrate ARG:=VALUE  run a node graph without launch
visuomotor calibrate twin|verify|gate ...   calibrate the cameras, verify them before a
                                            session, ask the gate (see --help)
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from visuomotor.errors import VisuomotorError


def _demo(args: argparse.Namespace) -> int:
    from visuomotor.ros.demo import run_demo  # imports rclpy: only for this command

    failed = run_demo(Path(args.out), print, episodes=args.episodes)
    return 1 if failed else 0


def _spec(args: argparse.Namespace) -> int:
    from visuomotor.preprocessing import load_spec

    spec = load_spec(args.file)
    print(f'{args.file}: valid preprocessing spec, hash {spec.spec_hash()}')
    print(f'  {spec.describe()}')
    return 0


def _preprocess(args: argparse.Namespace) -> int:
    import cv2
    import numpy as np

    from visuomotor.cameras.encodings import convert_color
    from visuomotor.preprocessing import Preprocessor, load_spec, to_display_image

    spec = load_spec(args.spec)
    flags = cv2.IMREAD_UNCHANGED if spec.input_encoding == 'mono16' else cv2.IMREAD_COLOR
    image = cv2.imread(str(args.image), flags)
    if image is None:
        raise VisuomotorError(f'{args.image}: cannot be read as an image')
    source = 'mono16' if spec.input_encoding == 'mono16' else 'bgr8'
    frame = convert_color(np.asarray(image), source, spec.input_encoding)
    model_input = Preprocessor(spec)(frame, camera=str(args.image))
    shown, encoding = to_display_image(model_input, spec)
    out = Path(args.out) if args.out else Path(args.image).with_suffix('.model_input.png')
    written = convert_color(shown, encoding, 'bgr8' if encoding != 'mono8' else 'mono8')
    cv2.imwrite(str(out), written)
    print(f'{spec.describe()}')
    print(f'model input {model_input.shape} {model_input.dtype}: min {model_input.min():.3f} '
          f'max {model_input.max():.3f}; wrote {out}')
    return 0


def _dataset_check(args: argparse.Namespace) -> int:
    from visuomotor.recording.check import check_dataset

    sheet = Path(args.sheet) if args.sheet else Path(args.path).with_name(
        Path(args.path).name + '_contact_sheet.png')
    report = check_dataset(args.path, sheet=sheet, rate_tolerance=args.rate_tolerance,
                           max_skew_ms=args.max_skew_ms)
    for line in report.lines():
        print(line)
    if report.unreadable:  # files to restore: the input is broken, as a missing info.json is
        print(f'visuomotor dataset check: error: {len(report.unreadable)} episode file(s) '
              'cannot be read (named above)', file=sys.stderr)
        return 2
    return 0 if report.ok else 1


def _dataset_export(args: argparse.Namespace) -> int:
    from visuomotor.recording.hdf5_export import export_hdf5

    print(f'wrote {export_hdf5(args.path, args.out)}')
    return 0


def _train(args: argparse.Namespace) -> int:
    from visuomotor.training.config import TrainConfig
    from visuomotor.training.train import train

    try:
        config = TrainConfig(head=args.head, encoder=args.encoder, history=args.history,
                             chunk_length=args.chunk_length, crop=args.crop, steps=args.steps,
                             batch_size=args.batch_size, learning_rate=args.learning_rate,
                             loss=args.loss, seed=args.seed, threads=args.threads,
                             device=args.device)
    except ValueError as exc:
        raise VisuomotorError(f'train: {exc}') from None
    from visuomotor.training.dataset import parse_episodes

    episodes = parse_episodes(args.episodes) if args.episodes else None
    exclude = parse_episodes(args.exclude_episodes, '--exclude-episodes') \
        if args.exclude_episodes else []
    result = train(args.dataset, args.out, config, name=args.name, episodes=episodes,
                   exclude_episodes=exclude, include_flagged=args.include_flagged)
    print(f'wrote {result.bundle.directory}')
    print(result.bundle.spec.describe())
    return 0


def _train_demo(args: argparse.Namespace) -> int:
    from visuomotor.paths import share_dir
    from visuomotor.training.demo_policy import train_demo

    models = Path(args.models) if args.models else share_dir() / 'models'
    train_demo(Path(args.work), models)
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from visuomotor.policy.bundle import load_bundle
    from visuomotor.training.demo_policy import EVAL_SEEDS, evaluate

    seeds = range(args.first_seed, args.first_seed + args.seeds) if args.first_seed else \
        EVAL_SEEDS[:args.seeds]
    result = evaluate(load_bundle(args.bundle), seeds, progress=lambda r: print(
        f'seed {r.seed}: {"success" if r.success else "failure"} at {r.duration_s:.1f} s'))
    print(f'success {sum(r.success for r in result.results)}/{len(result.results)} '
          f'({result.success_rate:.0%}), backend {result.backend}, {result.wall_s:.0f} s')
    return 0


def _launch(args: argparse.Namespace) -> int:
    from visuomotor.ros.graph import GRAPHS
    from visuomotor.ros.runner import parse_launch_arguments, run_graph

    build, _ = GRAPHS[args.graph]
    try:
        values = parse_launch_arguments(args.arguments)
    except ValueError as exc:
        raise VisuomotorError(f'launch arguments: {exc}') from None
    return run_graph(build(values), Path(args.log_dir))


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the `visuomotor` command."""
    parser = argparse.ArgumentParser(prog='visuomotor', description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest='command', required=True)
    demo = commands.add_parser('demo', help='run the demo on this machine')
    demo.add_argument('--out', default='demo_output', help='output directory for images')
    demo.add_argument('--episodes', type=int, default=20,
                      help='seeded episodes of the deployed policy (stage 6)')
    demo.set_defaults(run=_demo)
    spec = commands.add_parser('spec', help='check and describe a preprocessing spec JSON')
    spec.add_argument('file')
    spec.set_defaults(run=_spec)
    pre = commands.add_parser('preprocess', help='apply a spec to an image file')
    pre.add_argument('--spec', required=True, help='preprocessing spec JSON')
    pre.add_argument('image', help='a camera frame (PNG/JPEG; read as 8-bit colour)')
    pre.add_argument('--out', help='where to write what the model sees')
    pre.set_defaults(run=_preprocess)
    dataset = commands.add_parser('dataset', help='check or export a recorded dataset')
    tools = dataset.add_subparsers(dest='tool', required=True)
    check = tools.add_parser('check', help='non-finite actions/states, stamps, rates, drops, '
                             'skew; a contact sheet')
    check.add_argument('path', help='the dataset (the path given to the recorder)')
    check.add_argument('--sheet', help='contact sheet PNG (default: <path>_contact_sheet.png)')
    check.add_argument('--rate-tolerance', type=float, default=0.05,
                       help='allowed relative difference of the row rate from the fps')
    check.add_argument('--max-skew-ms', type=float, default=25.0,
                       help='warn when a frame is further than this from its row time')
    check.set_defaults(run=_dataset_check)
    export = tools.add_parser('export-hdf5', help='robomimic-style HDF5')
    export.add_argument('path')
    export.add_argument('out')
    export.set_defaults(run=_dataset_export)
    _training_parsers(commands)
    launch = commands.add_parser('launch', help='run a node graph (deploy, record) as '
                                 'processes, like ros2 launch, where launch is not installed')
    launch.add_argument('graph', choices=('deploy', 'record', 'calibrate'))
    launch.add_argument('arguments', nargs='*', help='launch arguments, name:=value')
    launch.add_argument('--log-dir', default='log/visuomotor_launch',
                        help='per-node logs and params files')
    launch.set_defaults(run=_launch)
    from visuomotor.calibrate_cli import add_parsers

    add_parsers(commands)
    return parser


def _training_parsers(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    from visuomotor.training.config import HEADS, TrainConfig

    defaults = TrainConfig()
    train = commands.add_parser('train', help='behaviour cloning on a recorded dataset')
    train.add_argument('dataset', help='a dataset recorded by visuomotor')
    train.add_argument('out', help='bundle directory to write')
    train.add_argument('--name', help='policy name (default: <head>-<robot>)')
    train.add_argument('--head', default=defaults.head, choices=HEADS)
    train.add_argument('--encoder', default=defaults.encoder, choices=('levine', 'resnet18_gn'))
    for flag, kind in (('history', int), ('chunk_length', int), ('crop', int), ('steps', int),
                       ('batch_size', int), ('learning_rate', float), ('seed', int),
                       ('threads', int)):
        train.add_argument(f'--{flag.replace("_", "-")}', type=kind,
                           default=getattr(defaults, flag))
    train.add_argument('--loss', default=defaults.loss, choices=('l1', 'l2'))
    train.add_argument('--device', default=defaults.device, help='cpu or cuda')
    train.add_argument('--episodes', help='episodes to train on, e.g. 0,3-5 (default: all)')
    train.add_argument('--exclude-episodes', help='episodes to leave out, e.g. 2,7-9')
    train.add_argument('--include-flagged', action='store_true',
                       help='keep rows flagged while recording (bridge not armed) whose '
                       'values are finite; by default they are skipped, and the log says so')
    train.set_defaults(run=_train)
    demo = commands.add_parser('train-demo', help='record demonstrations on the twin, train '
                               'the bundled demo policy, evaluate it, write models/')
    demo.add_argument('--work', default='build/train_demo', help='dataset and staging folder')
    demo.add_argument('--models', help='models folder (default: the package share models/)')
    demo.set_defaults(run=_train_demo)
    evaluate = commands.add_parser('evaluate', help='roll a bundle out on the twin in-process')
    evaluate.add_argument('bundle')
    evaluate.add_argument('--seeds', type=int, default=20, help='episodes')
    evaluate.add_argument('--first-seed', type=int, default=0, help='first task seed '
                          '(default: the demo evaluation seeds)')
    evaluate.set_defaults(run=_evaluate)
    _explain_parser(commands)


def _explain(args: argparse.Namespace) -> int:
    from visuomotor.explain.offline import ExplainSettings, explain_dataset

    episodes = None
    if args.episodes:
        try:
            episodes = tuple(int(e) for e in args.episodes.split(','))
        except ValueError:
            raise VisuomotorError(f'--episodes {args.episodes!r}: give indices like 0,2,5') \
                from None
    settings = ExplainSettings(episodes=episodes, stride=args.stride,
                               saliency=not args.no_saliency, scale=args.scale,
                               video=not args.no_video)
    results = explain_dataset(args.bundle, args.dataset, args.out, settings, print)
    for result in results:
        print(f'episode {result.episode}: {len(result.rows)} rows explained')
        for path in result.files:
            print(f'  {path}')
    return 0


def _alignment_test(args: argparse.Namespace) -> int:
    import json

    import cv2

    from visuomotor.explain.alignment import (
        TASKS,
        AlignmentSettings,
        run_alignment_test,
        saliency_figure,
    )

    settings = AlignmentSettings(
        train_seeds=tuple(range(args.train_scenes)),
        test_seeds=tuple(range(10_000, 10_000 + args.test_scenes)),
        train_steps=args.steps, seed=args.seed)
    report = run_alignment_test(settings, print)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    figure = saliency_figure(report)
    lines = report.lines() + [''] + figure.lines()
    (out / 'alignment_test.md').write_text('\n'.join(lines) + '\n')
    data = {'tasks': list(TASKS), 'seconds': report.seconds, 'expert': report.expert,
            'test_seeds': list(settings.test_seeds), 'train_scenes': args.train_scenes,
            'train_steps': args.steps}
    for name, group in (('e2e', report.e2e), ('swapped', report.swapped),
                        ('random_frozen', report.random_frozen)):
        data[name] = {t: {'success': r.success.tolist(), 'final_error_m': r.final_error_m.tolist()}
                      for t, r in group.items()}
    data['t_tests'] = {t: {'t': r.t, 'critical': r.critical, 'p': r.p_value, 'n': r.n,
                           'reject': r.reject} for t, r in report.tests.items()}
    data['fullgrad_vs_occlusion_r'] = figure.agreement
    (out / 'alignment_test.json').write_text(json.dumps(data, indent=2) + '\n')
    cv2.imwrite(str(out / 'alignment_saliency.png'),
                cv2.cvtColor(figure.image, cv2.COLOR_RGB2BGR))
    print('\n'.join(lines))
    print(f'written: {out / "alignment_test.md"}, alignment_test.json, alignment_saliency.png')
    return 0


def _explain_parser(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    explain = commands.add_parser('explain', help='what a policy looks at over recorded '
                                  'episodes: feature points, FullGrad saliency')
    explain.add_argument('bundle', help='policy bundle (with torch_weights.npz)')
    explain.add_argument('dataset', help='a dataset recorded by visuomotor')
    explain.add_argument('--out', default='explain_output', help='folder to write')
    explain.add_argument('--episodes', help='comma-separated episode indices (default: all)')
    explain.add_argument('--stride', type=int, default=1, help='explain every N-th row')
    explain.add_argument('--scale', type=int, default=3, help='enlargement of the view')
    explain.add_argument('--no-saliency', action='store_true', help='feature points only '
                         '(no backward passes: much faster)')
    explain.add_argument('--no-video', action='store_true', help='contact sheets and plots '
                         'only')
    explain.set_defaults(run=_explain)
    vat = commands.add_parser('alignment-test', help='the Visual Alignment Test on the twin: '
                              'E2E policies for two tasks sharing scenes, encoders swapped '
                              'and frozen, paired t-test (seed 001, Table IV)')
    vat.add_argument('--out', default='alignment_output', help='folder to write')
    vat.add_argument('--train-scenes', type=int, default=200, help='demonstration scenes')
    vat.add_argument('--test-scenes', type=int, default=50, help='paired test rollouts')
    vat.add_argument('--steps', type=int, default=1500, help='training steps per policy')
    vat.add_argument('--seed', type=int, default=0)
    vat.set_defaults(run=_alignment_test)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `visuomotor` console script."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.run(args))
    except (VisuomotorError, FileNotFoundError, TimeoutError) as exc:
        print(f'visuomotor {args.command}: error: {exc}', file=sys.stderr)
        return 2


if __name__ == '__main__':
    sys.exit(main())
