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
import difflib
import os
import re
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NoReturn

from visuomotor.errors import VisuomotorError

#: The exit code of a command stopped with Ctrl-C (128 + SIGINT, as shells report it).
EXIT_INTERRUPTED = 130


class Parser(argparse.ArgumentParser):
    """argparse with options spelled out in full and errors that say where to look.

    Prefix matching is off (allow_abbrev=False) on every parser and subparser: with it,
    `evaluate --seed 3` was silently read as `--seeds 3`. An unknown option is refused with
    the closest real one, and every error points at the command's --help.
    """

    def __init__(self, *args: object, **kwargs: object) -> None:
        kwargs.setdefault('allow_abbrev', False)
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]

    def error(self, message: str) -> NoReturn:
        """Print the usage and the error (with a hint), exit 2."""
        self.print_usage(sys.stderr)
        self.exit(2, f'{self.prog}: error: {message}{self._hint(message)}\n')

    def _hint(self, message: str) -> str:
        hints = []
        if message.startswith('unrecognized arguments:'):
            options = [o for o in self._option_string_actions if o.startswith('--')]
            for token in message.split(':', 1)[1].split():
                name = token.split('=')[0]
                if not name.startswith('--'):
                    continue
                close = [o for o in options if o.startswith(name)] or \
                    difflib.get_close_matches(name, options, n=1, cutoff=0.6)
                if close:
                    hints.append(f'{name}: did you mean {close[0]}? (options are not '
                                 'abbreviated)')
                elif name == '--device':
                    hints.append(f'--device: {self.prog} has no device choice (only '
                                 '`visuomotor train` takes --device)')
        hints.append(f'see `{self.prog} --help`')
        return ''.join(f'\n  {hint}' for hint in hints)


def _whole(minimum: int) -> Callable[[str], int]:
    """An argparse type: a whole number >= minimum."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or value < minimum:
            raise argparse.ArgumentTypeError(f'must be a whole number >= {minimum}, got {text!r}')
        return value
    return parse


def _number(minimum: float, *, inclusive: bool = True) -> Callable[[str], float]:
    """An argparse type: a finite number >= (or >) minimum."""
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = float('nan')
        if not (value >= minimum if inclusive else value > minimum) or value == float('inf'):
            raise argparse.ArgumentTypeError(
                f'must be a number {">=" if inclusive else ">"} {minimum:g}, got {text!r}')
        return value
    return parse


def output_file(path: str | Path, flag: str, example: str) -> Path:
    """An output file path that can be written: not a folder, in a folder that exists.

    Checked before any work, so an hour of work is not lost to a typo at the end (and no
    writer reports success for a file it could not write).
    """
    out = Path(path)
    if out.is_dir():
        raise VisuomotorError(f'{flag} {path}: is a folder; give a file path, e.g. '
                              f'{out / example}')
    folder = out.parent
    if not folder.is_dir():
        state = 'is not a folder' if folder.exists() else 'does not exist'
        raise VisuomotorError(f'{flag} {path}: the folder {folder} {state}; create it first '
                              f'(mkdir -p {folder}) or give another path')
    if not os.access(folder, os.W_OK):
        raise VisuomotorError(f'{flag} {path}: the folder {folder} is not writable; give a '
                              'path in a folder you can write to')
    return out


def output_folder(path: str | Path, flag: str) -> Path:
    """An output folder, created if missing; refused when it is a file or cannot be made."""
    out = Path(path)
    if out.exists() and not out.is_dir():
        raise VisuomotorError(f'{flag} {path}: is a file, not a folder; give a folder path '
                              '(it is created if missing)')
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise VisuomotorError(f'{flag} {path}: cannot create the folder ({exc.strerror}); '
                              'give a folder you can write to') from None
    if not os.access(out, os.W_OK):
        raise VisuomotorError(f'{flag} {path}: the folder is not writable; give a folder you '
                              'can write to')
    return out


def _default_dds_profile() -> None:
    """Point Fast DDS at the package's large-image profile unless the user chose one.

    Camera frames need its shared-memory segment; scripts/env.sh exports it, but
    `source .venv/bin/activate` does not.
    """
    if 'FASTDDS_DEFAULT_PROFILES_FILE' in os.environ:
        return
    from visuomotor.paths import share_dir

    profile = share_dir() / 'config' / 'dds' / 'fastdds_large_images.xml'
    if profile.is_file():
        os.environ['FASTDDS_DEFAULT_PROFILES_FILE'] = str(profile)


def _demo(args: argparse.Namespace) -> int:
    out = output_folder(args.out, '--out')
    _default_dds_profile()
    from visuomotor.ros.demo import run_demo  # imports rclpy: only for this command

    failed = run_demo(out, print, episodes=args.episodes)
    return 1 if failed else 0


def _spec(args: argparse.Namespace) -> int:
    from visuomotor.preprocessing import load_spec

    spec = load_spec(args.file)
    print(f'{args.file}: valid preprocessing spec, hash {spec.spec_hash()}')
    print(f'  {spec.describe()}')
    return 0


def _preprocess(args: argparse.Namespace) -> int:
    import cv2

    from visuomotor.cameras.encodings import convert_color
    from visuomotor.preprocessing import Preprocessor, load_spec, to_display_image
    from visuomotor.preprocessing.image_files import read_image

    spec = load_spec(args.spec)
    out = Path(args.out) if args.out else Path(args.image).with_suffix('.model_input.png')
    output_file(out, '--out', 'model_input.png')
    if not cv2.haveImageWriter(str(out)):
        kind = out.suffix or 'a file without a suffix'
        raise VisuomotorError(f'--out {out}: OpenCV cannot write {kind}; give a .png '
                              '(lossless) or .jpg path')
    mono16 = spec.input_encoding == 'mono16'
    loaded = read_image(args.image, mono16=mono16)
    if loaded.conversions:
        print(f'note: {loaded.note(str(args.image))}', file=sys.stderr)
    source = 'mono16' if mono16 else 'bgr8'
    frame = convert_color(loaded.image, source, spec.input_encoding)
    model_input = Preprocessor(spec)(frame, camera=str(args.image))
    shown, encoding = to_display_image(model_input, spec)
    written = convert_color(shown, encoding, 'bgr8' if encoding != 'mono8' else 'mono8')
    if not cv2.imwrite(str(out), written):
        raise VisuomotorError(f'--out {out}: OpenCV could not write the image; give a .png '
                              'path in a writable folder')
    print(f'{spec.describe()}')
    print(f'model input {model_input.shape} {model_input.dtype}: min {model_input.min():.3f} '
          f'max {model_input.max():.3f}; wrote {out}')
    return 0


def _dataset_check(args: argparse.Namespace) -> int:
    from visuomotor.recording.check import check_dataset

    sheet = Path(args.sheet) if args.sheet else Path(args.path).with_name(
        Path(args.path).name + '_contact_sheet.png')
    output_file(sheet, '--sheet', 'contact_sheet.png')
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

    out = output_file(args.out, 'OUT', 'dataset.hdf5')
    print(f'wrote {export_hdf5(args.path, out)}')
    return 0


def _train(args: argparse.Namespace) -> int:
    from visuomotor.training.config import TrainConfig
    from visuomotor.training.train import train

    _check_bundle_out(Path(args.out), args.overwrite)
    _check_device(args.device)
    if args.seed < 0:
        raise VisuomotorError(f'--seed {args.seed}: must be a whole number >= 0')
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


def _check_bundle_out(out: Path, overwrite: bool) -> None:
    """Refuse a bundle folder that is a file, or holds something without --overwrite.

    Checked before the dataset is read, so no training time is lost.
    """
    if out.exists() and not out.is_dir():
        raise VisuomotorError(f'OUT {out}: is a file; give the folder to write the bundle in')
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        what = 'a policy bundle' if (out / 'policy.onnx').exists() else 'files'
        raise VisuomotorError(f'OUT {out}: already holds {what}; give a new folder, or add '
                              '--overwrite to replace the bundle there')
    output_folder(out.parent if not out.exists() else out, 'OUT')


def _check_device(device: str) -> None:
    """`--device`: cpu, or cuda[:N] where torch can use that GPU."""
    match = re.fullmatch(r'cuda(?::(\d+))?', device)
    if device == 'cpu':
        return
    if match is None:
        raise VisuomotorError(f'--device {device!r}: expected cpu, cuda or cuda:N')
    import torch

    if not torch.cuda.is_available():
        why = ('this torch is a CPU-only build' if torch.version.cuda is None
               else 'no NVIDIA GPU or driver is visible to it')
        raise VisuomotorError(f'--device {device}: CUDA is not available here ({why}); use '
                              '--device cpu, or run on a machine with an NVIDIA GPU and a '
                              'CUDA build of torch')
    index = int(match.group(1) or 0)
    if index >= torch.cuda.device_count():
        raise VisuomotorError(f'--device {device}: there are {torch.cuda.device_count()} '
                              f'CUDA devices (cuda:0..cuda:{torch.cuda.device_count() - 1})')


def _train_demo(args: argparse.Namespace) -> int:
    from visuomotor.paths import share_dir
    from visuomotor.training.demo_policy import train_demo

    models = output_folder(args.models, '--models') if args.models else share_dir() / 'models'
    train_demo(output_folder(args.work, '--work'), models)
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from visuomotor.policy.bundle import load_bundle
    from visuomotor.training.demo_policy import EVAL_SEEDS, evaluate

    if not args.first_seed and args.seeds > len(EVAL_SEEDS):
        raise VisuomotorError(f'--seeds {args.seeds}: the demo evaluation has '
                              f'{len(EVAL_SEEDS)} seeds; give at most {len(EVAL_SEEDS)}, or '
                              f'--first-seed S to roll out seeds S..S+{args.seeds - 1}')
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
    output_folder(args.log_dir, '--log-dir')
    _default_dds_profile()
    try:
        values = parse_launch_arguments(args.arguments)
    except ValueError as exc:
        raise VisuomotorError(f'launch arguments: {exc}') from None
    return run_graph(build(values), Path(args.log_dir))


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the `visuomotor` command."""
    parser = Parser(prog='visuomotor', description=__doc__,
                    formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest='command', required=True)
    demo = commands.add_parser('demo', help='run the demo on this machine')
    demo.add_argument('--out', default='demo_output', help='output directory for images')
    demo.add_argument('--episodes', type=_whole(1), default=20,
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
    check.add_argument('--rate-tolerance', type=_number(0.0, inclusive=False), default=0.05,
                       help='allowed relative difference of the row rate from the fps')
    check.add_argument('--max-skew-ms', type=_number(0.0, inclusive=False), default=25.0,
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
    train.add_argument('--overwrite', action='store_true',
                       help='replace the bundle already in OUT')
    train.set_defaults(run=_train)
    demo = commands.add_parser('train-demo', help='record demonstrations on the twin, train '
                               'the bundled demo policy, evaluate it, write models/')
    demo.add_argument('--work', default='build/train_demo', help='dataset and staging folder')
    demo.add_argument('--models', help='models folder (default: the package share models/)')
    demo.set_defaults(run=_train_demo)
    evaluate = commands.add_parser('evaluate', help='roll a bundle out on the twin in-process')
    evaluate.add_argument('bundle')
    evaluate.add_argument('--seeds', type=_whole(1), default=20, help='episodes')
    evaluate.add_argument('--first-seed', type=_whole(0), default=0, help='first task seed '
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
    if args.stride < 1:
        raise VisuomotorError(f'--stride {args.stride}: stride must be at least 1 (1 explains '
                              'every row, 2 every other row, ...)')
    output_folder(args.out, '--out')
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
    out = output_folder(args.out, '--out')
    report = run_alignment_test(settings, print)
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
    if not cv2.imwrite(str(out / 'alignment_saliency.png'),
                       cv2.cvtColor(figure.image, cv2.COLOR_RGB2BGR)):
        raise VisuomotorError(f'--out {out}: could not write alignment_saliency.png there')
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
    explain.add_argument('--scale', type=_whole(1), default=3, help='enlargement of the view')
    explain.add_argument('--no-saliency', action='store_true', help='feature points only '
                         '(no backward passes: much faster)')
    explain.add_argument('--no-video', action='store_true', help='contact sheets and plots '
                         'only')
    explain.set_defaults(run=_explain)
    vat = commands.add_parser('alignment-test', help='the Visual Alignment Test on the twin: '
                              'E2E policies for two tasks sharing scenes, encoders swapped '
                              'and frozen, paired t-test (seed 001, Table IV)')
    vat.add_argument('--out', default='alignment_output', help='folder to write')
    vat.add_argument('--train-scenes', type=_whole(1), default=200,
                     help='demonstration scenes')
    vat.add_argument('--test-scenes', type=_whole(2), default=50,
                     help='paired test rollouts (a t-test needs at least 2)')
    vat.add_argument('--steps', type=_whole(1), default=1500, help='training steps per policy')
    vat.add_argument('--seed', type=_whole(0), default=0)
    vat.set_defaults(run=_alignment_test)


def _chosen_parser(parser: argparse.ArgumentParser,
                   args: argparse.Namespace) -> argparse.ArgumentParser:
    """The (sub)parser of the command that `args` selected."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            chosen = action.choices.get(getattr(args, action.dest, None) or '')
            if chosen is not None:
                return _chosen_parser(chosen, args)
    return parser


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse the command line (exits 2 on an error).

    Unknown options are refused by the subcommand they were given to, so its usage and the
    closest real option are shown.
    """
    parser = build_parser()
    args, extras = parser.parse_known_args(argv)
    if extras:
        _chosen_parser(parser, args).error(f'unrecognized arguments: {" ".join(extras)}')
    return args


def missing_module_message(exc: ModuleNotFoundError) -> str:
    """What to do when a module is missing: which environment to use, or what to rebuild."""
    name = exc.name or str(exc)
    if name.split('.')[0] == 'visuomotor':
        return (f'the installed visuomotor package has no module {name!r} (an incomplete '
                'install): rebuild it (`colcon build`, or `make setup` in the checkout)')
    root = name.split('.')[0]
    if root.startswith('rcl') or root.endswith(('_msgs', '_interfaces', '_srvs')):
        return (f'Python module {name!r} (ROS 2) is not found by {sys.executable}: source '
                'ROS 2 first (source /opt/ros/<distro>/setup.bash), or run it as '
                '`scripts/env.sh visuomotor ...` after `make setup`')
    return (f'Python module {name!r} is not installed for {sys.executable}, so this is not '
            "the project's environment: run `make setup` once, then use "
            '`scripts/env.sh visuomotor ...` (or `source .venv/bin/activate`)')


class _CtrlC:
    """Ctrl-C while a command runs, remembered.

    Python raises KeyboardInterrupt wherever the main thread is; inside the initialisation
    of an extension module (pybind11: mujoco, torch, ...) it becomes "ImportError:
    initialization failed", which a library's `except ImportError` may even swallow. The
    flag lets `main` still end with the interrupt's message and exit code.
    """

    pressed = False

    @classmethod
    def handler(cls, signum: int, frame: object) -> None:
        cls.pressed = True
        raise KeyboardInterrupt


def _caused_by_ctrl_c(exc: BaseException) -> bool:
    seen: BaseException | None = exc
    for _ in range(10):
        if seen is None:
            return False
        if isinstance(seen, KeyboardInterrupt):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `visuomotor` console script.

    Exit codes: 0 done, 1 a check failed (dataset check, verify, gate), 2 bad input or a
    refusal (the message names the input and the fix), 130 stopped with Ctrl-C.
    """
    try:
        args = parse_args(argv)
    except SystemExit as stop:  # --help, or a usage error (already printed)
        return stop.code if isinstance(stop.code, int) else 2
    except KeyboardInterrupt:
        print('visuomotor: interrupted (Ctrl-C)', file=sys.stderr)
        return EXIT_INTERRUPTED
    command = ' '.join(str(v) for v in (args.command, getattr(args, 'tool', None)) if v)
    interrupted = f'visuomotor {command}: interrupted (Ctrl-C); stopped'
    _CtrlC.pressed = False
    previous = signal.getsignal(signal.SIGINT)
    watch = previous is signal.default_int_handler and \
        threading.current_thread() is threading.main_thread()  # not where Ctrl-C is ignored
    if watch:
        signal.signal(signal.SIGINT, _CtrlC.handler)
    try:
        code = int(args.run(args))
    except KeyboardInterrupt:
        print(interrupted, file=sys.stderr)
        return EXIT_INTERRUPTED
    except (VisuomotorError, FileNotFoundError, TimeoutError) as exc:
        if _CtrlC.pressed:
            print(interrupted, file=sys.stderr)
            return EXIT_INTERRUPTED
        print(f'visuomotor {command}: error: {exc}', file=sys.stderr)
        return 2
    except ModuleNotFoundError as exc:
        print(f'visuomotor {command}: error: {missing_module_message(exc)}', file=sys.stderr)
        return 2
    except Exception as exc:
        if _CtrlC.pressed or _caused_by_ctrl_c(exc):
            print(interrupted, file=sys.stderr)
            return EXIT_INTERRUPTED
        raise
    finally:
        if watch:
            signal.signal(signal.SIGINT, previous)
    if _CtrlC.pressed:
        print(interrupted, file=sys.stderr)
        return EXIT_INTERRUPTED
    return code


if __name__ == '__main__':
    sys.exit(main())
