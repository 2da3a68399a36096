"""The Visual Alignment Test's pieces on the twin, at a tiny size (the full run is a command).

What a user relies on: both tasks see the same scenes and differ only in their goal; the
scripted expert solves every test scene (so the success measure is sound); the swapped
policies really carry the other task's encoder, frozen, with a head of their own; the
report's Table IV holds the paired t-test of the E2E and swapped successes.
"""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
import torch

from visuomotor.cli import main
from visuomotor.explain.alignment import (
    TASKS,
    AlignmentSettings,
    ReachWorld,
    expert_action,
    run_alignment_test,
    saliency_figure,
)
from visuomotor.explain.ttest import paired_t_test

TINY = AlignmentSettings(train_seeds=(0, 1, 2, 3), test_seeds=(10_000, 10_001, 10_002),
                         train_steps=20, batch_size=16)


@pytest.fixture(scope='module')
def report():  # type: ignore[no-untyped-def]
    return run_alignment_test(TINY)


def test_both_tasks_share_each_scene_and_differ_only_in_the_goal() -> None:
    world = ReachWorld(TINY)
    try:
        goals = world.reset(10_000)
        image = world.observe()
        again = world.reset(10_000)
        assert np.array_equal(image, world.observe())  # a seed is one scene
        for task in TASKS:
            np.testing.assert_allclose(goals[task], again[task])
        assert np.linalg.norm(goals['cube'][:2] - goals['square'][:2]) > 0.1
        other = world.reset(10_001)
        assert np.linalg.norm(other['cube'] - goals['cube']) > 1e-3
    finally:
        world.close()


def test_the_expert_step_is_bounded_and_points_at_the_goal() -> None:
    tcp, goal = np.array([0.3, 0.0, 0.4]), np.array([0.5, -0.1, 0.1])
    step = expert_action(tcp, goal)
    assert np.linalg.norm(step) == pytest.approx(0.025)
    np.testing.assert_allclose(step / np.linalg.norm(step),
                               (goal - tcp) / np.linalg.norm(goal - tcp))
    np.testing.assert_allclose(expert_action(goal - 0.01, goal), np.full(3, 0.01))


def test_the_scripted_expert_solves_every_test_scene(report) -> None:  # type: ignore[no-untyped-def]
    assert report.expert == {'cube': 1.0, 'square': 1.0}


def test_swapped_policies_carry_the_other_encoder_frozen(report) -> None:  # type: ignore[no-untyped-def]
    for task in TASKS:
        other = TASKS[1 - TASKS.index(task)]
        swapped = report.policies[f'swapped_{task}'].encoders.state_dict()
        source = report.policies[f'e2e_{other}'].encoders.state_dict()
        own = report.policies[f'e2e_{task}'].encoders.state_dict()
        assert all(torch.equal(swapped[k], source[k]) for k in source)
        assert not all(torch.equal(own[k], source[k]) for k in source)
        assert not torch.equal(report.policies[f'swapped_{task}'].head[0].weight,
                               report.policies[f'e2e_{task}'].head[0].weight)


def test_table_iv_is_the_paired_test_of_the_rollouts(report) -> None:  # type: ignore[no-untyped-def]
    for task in TASKS:
        e2e, swapped = report.e2e[task], report.swapped[task]
        assert len(e2e.success) == len(swapped.success) == len(TINY.test_seeds)
        assert set(np.unique(e2e.success)) <= {0.0, 1.0}
        expected = paired_t_test(e2e.success.tolist(), swapped.success.tolist())
        test = report.tests[task]
        assert (test.t == expected.t or (np.isnan(test.t) and np.isnan(expected.t)))
        assert test.critical == pytest.approx(expected.critical)
    text = '\n'.join(report.lines())
    assert 't_{alpha,n-1}' in text and 'Rej.' in text
    assert 'frozen, random init' in text
    for task in TASKS:
        assert f'reach the {task}: t = ' in text


def test_the_saliency_figure_shows_both_encoders_on_each_scene(report) -> None:  # type: ignore[no-untyped-def]
    figure = saliency_figure(report, seeds=(10_000, 10_001), scale=2)
    image = figure.image
    size = TINY.image_size * 2
    assert image.dtype == np.uint8 and image.ndim == 3
    assert image.shape[0] == 2 * (size + 16)  # two scenes, each under a caption bar
    # the view, then per task its FullGrad map and its occlusion check
    assert image.shape[1] == 5 * size + 4 * 4
    for task in TASKS:
        assert len(figure.agreement[task]) == 2
        assert all(-1.0 <= r <= 1.0 for r in figure.agreement[task])
    text = '\n'.join(figure.lines())
    assert 'reach the cube: FullGrad vs occlusion sensitivity, Pearson r per scene' in text


def test_the_command_writes_table_iv_and_the_figure(tmp_path) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / 'vat'
    assert main(['alignment-test', '--out', str(out), '--train-scenes', '3',
                 '--test-scenes', '2', '--steps', '5']) == 0
    text = (out / 'alignment_test.md').read_text()
    assert 'Table IV' in text and 'frozen, random init' in text
    assert 'FullGrad vs occlusion sensitivity' in text
    data = json.loads((out / 'alignment_test.json').read_text())
    assert len(data['e2e']['cube']['success']) == 2
    assert set(data['t_tests']) == set(TASKS)
    assert set(data['fullgrad_vs_occlusion_r']) == set(TASKS)
    assert cv2.imread(str(out / 'alignment_saliency.png')) is not None
