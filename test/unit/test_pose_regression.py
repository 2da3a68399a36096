"""Levine et al.'s pose-regression architectures (the Table II bench's core)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from visuomotor.training.pose_regression import (
    POSE_ARCHITECTURES,
    PoseData,
    PoseRegressor,
    cube_points,
    point_errors_cm,
    render_pose_data,
    train_pose_regressor,
)


@pytest.mark.parametrize('architecture', POSE_ARCHITECTURES)
def test_every_architecture_maps_an_image_batch_to_three_points(architecture: str) -> None:
    model = PoseRegressor(architecture, 96, 96)
    out = model(torch.rand(2, 3, 96, 96))
    assert out.shape == (2, 9)
    assert torch.isfinite(out).all()


def test_feature_points_need_far_fewer_parameters_than_a_fully_connected_readout() -> None:
    count = {a: sum(p.numel() for p in PoseRegressor(a, 96, 96).parameters())
             for a in POSE_ARCHITECTURES}
    # 32 points x 2 coordinates into 9 outputs, against 32 x 37 x 37 map values
    assert count['softmax_fc'] - count['softmax_points'] > 350_000
    assert count['fc'] > 5 * count['softmax_points']


def test_unknown_architecture_and_too_small_images_are_refused_by_name() -> None:
    with pytest.raises(ValueError, match='unknown architecture.*softmax_points'):
        PoseRegressor('resnet', 96, 96)
    with pytest.raises(ValueError, match='64x64 images are too small for maxpool_fc'):
        PoseRegressor('maxpool_fc', 64, 64)


def test_cube_points_are_the_centre_and_two_adjacent_face_centres() -> None:
    size = 0.05
    points = cube_points(0.5, -0.1, math.radians(90), size)
    np.testing.assert_allclose(points[0], [0.5, -0.1, size / 2])
    # turned by 90 deg, the +x face looks along +y and the +y face along -x
    np.testing.assert_allclose(points[1], [0.5, -0.1 + size / 2, size / 2], atol=1e-12)
    np.testing.assert_allclose(points[2], [0.5 - size / 2, -0.1, size / 2], atol=1e-12)
    assert np.linalg.norm(points[1] - points[0]) == pytest.approx(size / 2)


def test_point_error_is_the_mean_euclidean_error_of_the_three_points_in_cm() -> None:
    truth = np.zeros((2, 3, 3))
    predicted = truth.copy()
    predicted[0, 0] = [0.03, 0.04, 0.0]  # one point 5 cm off
    predicted[1] += [0.01, 0.0, 0.0]  # every point 1 cm off
    np.testing.assert_allclose(point_errors_cm(predicted, truth), [5 / 3, 1.0])


def test_rendered_data_puts_the_cube_where_its_points_say() -> None:
    data = render_pose_data(6, seed=3)
    assert data.images.shape == (6, 96, 96, 3)
    assert data.images.dtype == np.uint8
    assert data.points.shape == (6, 3, 3)
    again = render_pose_data(6, seed=3)
    np.testing.assert_array_equal(data.points, again.points)
    assert not np.array_equal(render_pose_data(6, seed=4).points, data.points)
    # the cube moves, so the images differ where it is
    assert np.abs(data.images[0].astype(int) - data.images[1].astype(int)).max() > 50


def _square_data(count: int, seed: int) -> PoseData:
    """A white 8x8 square on black at a random place; the 'points' follow it (m)."""
    rng = np.random.default_rng(seed)
    images = np.zeros((count, 64, 64, 3), np.uint8)
    points = np.zeros((count, 3, 3))
    for i in range(count):
        r, c = rng.integers(4, 52, 2)
        images[i, r:r + 8, c:c + 8] = 255
        centre = np.array([c / 64 * 0.3, r / 64 * 0.3, 0.02])
        points[i] = [centre, centre + [0.02, 0, 0], centre + [0, 0.02, 0]]
    return PoseData(images, points)


def test_feature_points_learn_to_locate_an_object() -> None:
    torch.set_num_threads(1)
    train, test, validation = _square_data(200, 0), _square_data(50, 1), _square_data(30, 2)
    result = train_pose_regressor('softmax_points', train, test, steps=300, batch_size=32,
                                  learning_rate=3e-3, seed=0, validation=validation)
    mean = train.points.reshape(len(train.points), -1).mean(axis=0).reshape(1, 3, 3)
    guess_the_mean = point_errors_cm(np.repeat(mean, len(test.points), 0), test.points).mean()
    assert result.test_errors_cm.shape == (50,)
    assert result.test_errors_cm.mean() < 0.5 * guess_the_mean
    assert result.validation_errors_cm is not None
    assert result.validation_errors_cm.mean() < 0.5 * guess_the_mean
    assert result.learning_rate == 3e-3
    again = train_pose_regressor('softmax_points', train, test, steps=300, batch_size=32,
                                 learning_rate=3e-3, seed=0)
    assert again.validation_errors_cm is None
    np.testing.assert_allclose(again.test_errors_cm, result.test_errors_cm, rtol=1e-5)
