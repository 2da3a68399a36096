"""The Visual Alignment Test (seed 001, section III-C, Table IV) on the twin.

Two tasks share the same scenes (the fr3_demo twin: a red cube and a green square, placed by
the task seed) but not the same motor signal:

- task A, `cube`: bring the TCP to 10 cm above the cube;
- task B, `square`: bring the TCP to 10 cm above the green square.

An end-to-end policy per task (Levine encoder on the scene camera + MLP head, with the TCP
position as proprio; output: the next TCP displacement, at most 2.5 cm per 10 Hz step) is
trained by behaviour cloning on scripted demonstrations of the same seeds (with DART-style
noise on the executed motion, labels from the expert). Then each policy's encoder is frozen
into the *other* task's policy and a fresh head is trained on that task's data (pi_A' uses
pi_B's encoder): if encoders were only generic feature extractors, pi_A' would do as well as
pi_A. Both run on the same held-out seeds (paired rollouts), and the paired t-test of
d_i = S_A(i) - S_A'(i) (one-sided, alpha 0.05) decides, as in Table IV. The E2E vs frozen
encoder comparison adds a head trained on a frozen, randomly initialised encoder.

Rollouts are kinematic: each step the policy's displacement goes through damped-least-squares
IK and the twin's arm is set to the solution, then the scene camera renders the next frame.
The test concerns what the encoder lets the head decide, not the controller; a rollout
succeeds when the TCP ends within 2.5 cm of its goal (horizontally and in height).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
from torch import nn

from visuomotor.explain.ttest import PairedTTest, paired_t_test
from visuomotor.preprocessing import Preprocessor, PreprocessSpec, Resize
from visuomotor.training.nets import LevineEncoder

log = logging.getLogger(__name__)

TASKS = ('cube', 'square')
SCENE = 'fr3_demo'
CAMERA = 'scene_camera'
REACH_HEIGHT_M = 0.10
MAX_STEP_M = 0.025
SUCCESS_RADIUS_M = 0.025


@dataclass(frozen=True)
class AlignmentSettings:
    """How big the experiment is (defaults: about 5 minutes on 2 CPU cores)."""

    train_seeds: tuple[int, ...] = tuple(range(200))
    test_seeds: tuple[int, ...] = tuple(range(10_000, 10_050))
    steps_per_episode: int = 20
    image_size: int = 64
    train_steps: int = 1500
    batch_size: int = 64
    learning_rate: float = 1e-3
    dart_noise_m: float = 0.01
    alpha: float = 0.05
    seed: int = 0


def preprocess_spec(settings: AlignmentSettings, height: int, width: int) -> PreprocessSpec:
    """The shared preprocessing of the scene camera for these policies."""
    return PreprocessSpec(input_encoding='rgb8', input_height=height, input_width=width,
                          resize=Resize(settings.image_size, settings.image_size, 'area'))


class ReachPolicy(nn.Module):
    """Image (B, 1, 3, H, W) + TCP position (B, 3, normalised) -> displacement (B, 3) / step.

    `encoders` holds the one camera encoder (the layout visuomotor.explain expects), so
    feature points and FullGrad work on it as on a bundle's twin.
    """

    def __init__(self, image_size: int, hidden: int = 128) -> None:
        super().__init__()
        self.encoders = nn.ModuleList([LevineEncoder(3, image_size, image_size)])
        self.head = nn.Sequential(nn.Linear(64 + 3, hidden), nn.ReLU(),
                                  nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, 3))

    def features(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 1, 3, H, W) -> (B, 64) feature points."""
        out: torch.Tensor = self.encoders[0](images[:, 0])
        return out

    def forward(self, images: torch.Tensor, proprio: torch.Tensor) -> torch.Tensor:
        """The normalised displacement (B, 3) (x MAX_STEP_M to get metres); (B, 1, 3) out."""
        out: torch.Tensor = self.head(torch.cat([self.features(images), proprio], dim=1))
        return out[:, None, :]


@dataclass
class Demos:
    """Scripted demonstrations of one task: per step, the image, the TCP and the label."""

    images: npt.NDArray[np.float32]  # (N, 3, S, S) preprocessed
    tcp: npt.NDArray[np.float64]  # (N, 3) world m
    actions: npt.NDArray[np.float64]  # (N, 3) expert displacement, m


class ReachWorld:
    """The twin, a seeded scene, and kinematic reaching of the TCP."""

    def __init__(self, settings: AlignmentSettings) -> None:
        from visuomotor.robots.ik import solve_ik
        from visuomotor.sim.config import load_scene
        from visuomotor.sim.task import PickPlaceTask
        from visuomotor.sim.twin import Twin

        self.settings = settings
        self.twin = Twin(load_scene(SCENE))
        self.task = PickPlaceTask(self.twin.config.task)
        self.robot = self.twin.robot
        self._solve_ik = solve_ik
        camera = self.twin.config.camera(CAMERA)
        self.preprocessor = Preprocessor(preprocess_spec(settings, camera.height, camera.width))
        self.q = np.array(self.robot.home_rad)
        self.setup: Any = None
        self.rotation = np.eye(3)

    def reset(self, seed: int) -> dict[str, npt.NDArray[np.float64]]:
        """The scene of `seed` with the arm near home; returns both tasks' goals (world)."""
        self.setup = self.task.sample(seed)
        self.task.apply(self.twin, self.setup)
        rng = np.random.default_rng(seed + 7919)
        self.q = np.array(self.robot.home_rad) + rng.normal(0.0, 0.05, self.robot.dof)
        self._place()
        self.rotation = self.twin.tcp_pose_world()[:3, :3].copy()
        cube = self.twin.object_pose()[:3, 3]
        square = self.task.target_xy(self.twin)
        return {'cube': np.array([cube[0], cube[1], REACH_HEIGHT_M]),
                'square': np.array([square[0], square[1], REACH_HEIGHT_M])}

    def _place(self) -> None:
        self.twin.reset(arm_positions=self.q.tolist(),
                        object_xy_yaw=self.setup.object_xy_yaw)

    def tcp(self) -> npt.NDArray[np.float64]:
        """TCP position in the world (m)."""
        return np.array(self.twin.tcp_pose_world()[:3, 3])

    def observe(self) -> npt.NDArray[np.float32]:
        """The scene camera, preprocessed (3, S, S)."""
        frame = self.twin.render([CAMERA])[CAMERA]
        return np.asarray(self.preprocessor(frame), dtype=np.float32)

    def move(self, displacement: npt.NDArray[np.float64]) -> None:
        """Move the TCP by `displacement` (clipped to MAX_STEP_M), orientation kept, via IK."""
        step = np.asarray(displacement, dtype=np.float64)
        norm = float(np.linalg.norm(step))
        if not math.isfinite(norm):
            return  # a non-finite action moves nothing
        if norm > MAX_STEP_M:
            step = step * (MAX_STEP_M / norm)
        target = np.eye(4)
        target[:3, :3] = self.rotation
        target[:3, 3] = self.tcp() + step
        result = self._solve_ik(self.robot, self.twin.world_to_base(target), self.q,
                                max_iterations=50)
        self.q = np.asarray(result.q, dtype=np.float64)
        self._place()

    def close(self) -> None:
        """Free the renderer."""
        self.twin.close()


def expert_action(tcp: npt.NDArray[np.float64], goal: npt.NDArray[np.float64]
                  ) -> npt.NDArray[np.float64]:
    """Straight towards the goal, at most MAX_STEP_M."""
    delta = goal - tcp
    norm = float(np.linalg.norm(delta))
    return delta if norm <= MAX_STEP_M else delta * (MAX_STEP_M / norm)


def record(world: ReachWorld, settings: AlignmentSettings,
           progress: Callable[[str], None] | None = None) -> dict[str, Demos]:
    """Demonstrations of both tasks on the training seeds (the same scenes for both)."""
    rng = np.random.default_rng(settings.seed)
    out: dict[str, Demos] = {}
    for task in TASKS:
        images, tcps, actions = [], [], []
        for seed in settings.train_seeds:
            goal = world.reset(seed)[task]
            for _ in range(settings.steps_per_episode):
                tcp = world.tcp()
                images.append(world.observe())
                tcps.append(tcp)
                action = expert_action(tcp, goal)
                actions.append(action)
                world.move(action + rng.normal(0.0, settings.dart_noise_m, 3))
        out[task] = Demos(np.stack(images), np.stack(tcps), np.stack(actions))
        if progress is not None:
            progress(f'  {task}: {len(actions)} demonstration steps from '
                     f'{len(settings.train_seeds)} scenes')
    return out


@dataclass
class TcpNormaliser:
    """TCP position normalisation shared by every policy of a test."""

    mean: npt.NDArray[np.float64]
    std: npt.NDArray[np.float64]

    def __call__(self, tcp: npt.NDArray[np.float64]) -> torch.Tensor:
        """(N, 3) positions -> normalised float32 tensor."""
        return torch.from_numpy(((tcp - self.mean) / self.std).astype(np.float32))


def train_policy(demos: Demos, norm: TcpNormaliser, settings: AlignmentSettings, *,
                 encoder_from: ReachPolicy | None = None, random_frozen: bool = False,
                 seed: int = 0) -> ReachPolicy:
    """End to end; or a fresh head on a frozen encoder (another policy's, or a random one)."""
    torch.manual_seed(seed)
    policy = ReachPolicy(settings.image_size)
    frozen = encoder_from is not None or random_frozen
    if encoder_from is not None:
        policy.encoders.load_state_dict(encoder_from.encoders.state_dict())
    if frozen:
        for p in policy.encoders.parameters():
            p.requires_grad_(False)
    images = torch.from_numpy(demos.images)
    proprio = norm(demos.tcp)
    labels = torch.from_numpy((demos.actions / MAX_STEP_M).astype(np.float32))
    features = None
    if frozen:  # the encoder never changes: compute its features once
        policy.eval()
        with torch.no_grad():
            features = torch.cat([policy.features(images[i:i + 256, None])
                                  for i in range(0, len(images), 256)])
    params = [p for p in policy.parameters() if p.requires_grad]
    optimiser = torch.optim.Adam(params, lr=settings.learning_rate)
    rng = np.random.default_rng(seed)
    policy.train()
    for step in range(settings.train_steps):
        rows = torch.from_numpy(rng.integers(0, len(labels), settings.batch_size))
        if features is not None:
            out = policy.head(torch.cat([features[rows], proprio[rows]], dim=1))
        else:
            out = policy(images[rows, None], proprio[rows])[:, 0]
        loss = torch.mean((out - labels[rows]) ** 2)
        optimiser.zero_grad()
        loss.backward()  # type: ignore[no-untyped-call]
        optimiser.step()
        if step == int(settings.train_steps * 0.8):
            for group in optimiser.param_groups:
                group['lr'] = settings.learning_rate * 0.1
    return policy.eval()


@dataclass(frozen=True)
class Rollouts:
    """Per test seed: success (1/0) and the final distance to the goal (m)."""

    success: npt.NDArray[np.float64]
    final_error_m: npt.NDArray[np.float64]

    @property
    def rate(self) -> float:
        """Success rate."""
        return float(self.success.mean())


def rollout(world: ReachWorld, policy: ReachPolicy | None, task: str, norm: TcpNormaliser,
            settings: AlignmentSettings) -> Rollouts:
    """The policy (None: the scripted expert) on every test seed of `task`."""
    success, errors = [], []
    for seed in settings.test_seeds:
        goal = world.reset(seed)[task]
        for _ in range(settings.steps_per_episode):
            tcp = world.tcp()
            if policy is None:
                action = expert_action(tcp, goal)
            else:
                with torch.no_grad():
                    out = policy(torch.from_numpy(world.observe())[None, None],
                                 norm(tcp[None]))
                action = out[0, 0].numpy().astype(np.float64) * MAX_STEP_M
            world.move(action)
        final = world.tcp() - goal
        horizontal, vertical = float(np.linalg.norm(final[:2])), abs(float(final[2]))
        success.append(float(horizontal < SUCCESS_RADIUS_M and vertical < SUCCESS_RADIUS_M))
        errors.append(float(np.linalg.norm(final)))
    return Rollouts(np.array(success), np.array(errors))


@dataclass
class AlignmentReport:
    """Everything the test measured."""

    settings: AlignmentSettings
    expert: dict[str, float]
    e2e: dict[str, Rollouts]
    swapped: dict[str, Rollouts]
    random_frozen: dict[str, Rollouts]
    tests: dict[str, PairedTTest]
    seconds: dict[str, float] = field(default_factory=dict)
    policies: dict[str, ReachPolicy] = field(default_factory=dict)
    norm: TcpNormaliser | None = None

    def table_iv(self) -> list[str]:
        """Table IV of the study: task, policy, t, critical value, rejection."""
        lines = ['| task | policy | E2E success | swapped-encoder success | t | '
                 't_{alpha,n-1} | p | Rej. |', '|---|---|---|---|---|---|---|---|']
        for task in TASKS:
            other = TASKS[1 - TASKS.index(task)]
            test = self.tests[task]
            lines.append(f'| reach the {task} | BC (Levine encoder + MLP); encoder from the '
                         f'{other} policy | {self.e2e[task].rate:.2f} | '
                         f'{self.swapped[task].rate:.2f} | {test.t:.2f} | '
                         f'{test.critical:.2f} | {test.p_value:.3g} | '
                         f'{"Yes" if test.reject else "No"} |')
        return lines

    def encoder_table(self) -> list[str]:
        """E2E vs frozen encoders: success rate and median final error per task."""
        lines = ['| task | scripted expert | E2E | frozen, trained on the other task | '
                 'frozen, random init |', '|---|---|---|---|---|']
        for task in TASKS:
            cells = [f'{r.rate:.2f} ({np.median(r.final_error_m) * 100:.1f} cm)'
                     for r in (self.e2e[task], self.swapped[task], self.random_frozen[task])]
            lines.append(f'| reach the {task} | {self.expert[task]:.2f} | ' + ' | '.join(cells)
                         + ' |')
        return lines

    def lines(self) -> list[str]:
        """The printed report."""
        s = self.settings
        out = [f'Visual Alignment Test on the twin ({SCENE}: the same scenes for both tasks; '
               f'{len(s.train_seeds)} training scenes, {len(s.test_seeds)} paired test '
               f'rollouts per policy, {s.train_steps} training steps, alpha {s.alpha})', '',
               'Table IV (paired t-test of d_i = S_E2E(i) - S_swapped(i), one-sided):', '']
        out += self.table_iv()
        out += ['', 'E2E vs frozen encoders (success rate, median final distance):', '']
        out += self.encoder_table()
        out += ['']
        for task in TASKS:
            out.append(f'reach the {task}: {self.tests[task].line()}')
        return out


def run_alignment_test(settings: AlignmentSettings = AlignmentSettings(),
                       progress: Callable[[str], None] | None = None) -> AlignmentReport:
    """Record, train (2 E2E, 2 swapped, 2 random-frozen), roll out on paired seeds, test."""
    say = progress or (lambda _line: None)
    seconds: dict[str, float] = {}
    world = ReachWorld(settings)
    try:
        start = time.perf_counter()
        say('recording scripted demonstrations of both tasks on the same scenes')
        demos = record(world, settings, progress)
        seconds['record'] = time.perf_counter() - start
        all_tcp = np.concatenate([d.tcp for d in demos.values()])
        norm = TcpNormaliser(all_tcp.mean(axis=0), all_tcp.std(axis=0) + 1e-6)
        start = time.perf_counter()
        e2e_policies = {}
        for task in TASKS:
            say(f'training the end-to-end policy for "reach the {task}"')
            e2e_policies[task] = train_policy(demos[task], norm, settings, seed=settings.seed)
        seconds['train_e2e'] = time.perf_counter() - start
        start = time.perf_counter()
        swapped_policies, random_policies = {}, {}
        for task in TASKS:
            other = TASKS[1 - TASKS.index(task)]
            swapped_policies[task] = train_policy(demos[task], norm, settings,
                                                  encoder_from=e2e_policies[other],
                                                  seed=settings.seed)
            random_policies[task] = train_policy(demos[task], norm, settings,
                                                 random_frozen=True, seed=settings.seed + 1)
        seconds['train_heads'] = time.perf_counter() - start
        start = time.perf_counter()
        say('paired rollouts on the held-out scenes')
        expert = {t: rollout(world, None, t, norm, settings).rate for t in TASKS}
        e2e = {t: rollout(world, e2e_policies[t], t, norm, settings) for t in TASKS}
        swapped = {t: rollout(world, swapped_policies[t], t, norm, settings) for t in TASKS}
        random = {t: rollout(world, random_policies[t], t, norm, settings) for t in TASKS}
        seconds['rollouts'] = time.perf_counter() - start
    finally:
        world.close()
    tests = {t: paired_t_test(e2e[t].success.tolist(), swapped[t].success.tolist(),
                              alpha=settings.alpha)
             for t in TASKS}
    policies = {f'e2e_{t}': p for t, p in e2e_policies.items()}
    policies.update({f'swapped_{t}': p for t, p in swapped_policies.items()})
    return AlignmentReport(settings, expert, e2e, swapped, random, tests, seconds, policies,
                           norm)


@dataclass(frozen=True)
class SaliencyFigure:
    """The figure (rgb8) and, per task's E2E policy, FullGrad vs occlusion per scene."""

    image: npt.NDArray[np.uint8]
    agreement: dict[str, list[float]]

    def lines(self) -> list[str]:
        """One line per task: how far FullGrad can be trusted for that policy."""
        return [f'reach the {task}: FullGrad vs occlusion sensitivity, Pearson r per scene '
                + ', '.join(f'{r:.2f}' for r in values)
                for task, values in self.agreement.items()]


def saliency_figure(report: AlignmentReport, seeds: tuple[int, ...] = (10_000, 10_001, 10_002),
                    scale: int = 3) -> SaliencyFigure:
    """Seed 001 Fig. 5 on the twin: FullGrad of both E2E policies on the same images.

    Rows: scenes; columns: the view, then per task the E2E policy's FullGrad map and its
    occlusion sensitivity (8x8 patches, stride 2), the model-agnostic check of the map.
    """
    from visuomotor.explain.occlusion import agreement, occlusion_sensitivity
    from visuomotor.explain.overlay import draw_saliency, hstack, label
    from visuomotor.explain.saliency import FullGrad
    from visuomotor.preprocessing.display import to_display_image

    settings = report.settings
    world = ReachWorld(settings)
    rows = []
    agreements: dict[str, list[float]] = {task: [] for task in TASKS}
    try:
        norm = report.norm or TcpNormaliser(np.zeros(3), np.ones(3))
        for seed in seeds:
            world.reset(seed)
            image = world.observe()
            shown, _ = to_display_image(image, world.preprocessor.spec)
            inputs = [torch.from_numpy(image)[None, None],
                      norm(world.tcp()[None])]
            panels = [label(draw_saliency(shown, np.zeros(shown.shape[:2]), scale=scale,
                                          alpha=0.0), f'scene {seed}')]
            for task in TASKS:
                policy = report.policies[f'e2e_{task}']
                saliency = FullGrad(policy)(inputs)[0][0, 0]
                occluded = occlusion_sensitivity(policy, inputs, patch=8, stride=2)
                agreements[task].append(agreement(saliency, occluded))
                panels.append(label(draw_saliency(shown, saliency, scale=scale),
                                    f'{task} E2E: FullGrad'))
                panels.append(label(draw_saliency(shown, occluded, scale=scale),
                                    f'{task} E2E: occlusion'))
            rows.append(hstack(panels))
    finally:
        world.close()
    return SaliencyFigure(np.vstack(rows), agreements)
