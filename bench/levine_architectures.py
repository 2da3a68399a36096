"""Benchmark: Levine et al.'s CNN architecture comparison (seed 002, Table II) on the twin.

Pose regression of the twin's cube from the FR3 scene camera (96x96, what the bundled policy
sees): three 3D points of the cube (its centre and two face centres), the arm at random poses
around home moving through the view. Four ways of reading the same three convolutions
(visuomotor.training.pose_regression): spatial softmax + expected points (Levine et al.),
spatial softmax + fully connected, fully connected, max-pooling + fully connected. Each is
trained with the same steps, batch and learning rate, on the same images; errors are the
average Euclidean error of the three points per image (cm), mean +- std over the training
and the held-out test images, as in their Table II.

Results: bench/results/levine_architectures.{json,md}; one run.
Run: python bench/levine_architectures.py [--train N] [--test N] [--steps N] [--seeds N]
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from visuomotor.training.pose_regression import (
    LABELS,
    PAPER_TABLE_II,
    POSE_ARCHITECTURES,
    render_pose_data,
    train_pose_regressor,
)

RESULTS = Path(__file__).resolve().parent / 'results'


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--train', type=int, default=1000, help='training images')
    parser.add_argument('--test', type=int, default=300, help='test images (other poses)')
    parser.add_argument('--steps', type=int, default=1500)
    parser.add_argument('--batch', type=int, default=32)
    parser.add_argument('--seeds', type=int, default=1, help='training seeds per architecture')
    parser.add_argument('--threads', type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    train = render_pose_data(args.train, seed=0)
    test = render_pose_data(args.test, seed=1)
    render_s = time.perf_counter() - start
    print(f'rendered {args.train} + {args.test} images in {render_s:.0f} s', flush=True)
    rows: dict[str, Any] = {}
    for architecture in POSE_ARCHITECTURES:
        train_errors, test_errors, seconds = [], [], 0.0
        for seed in range(args.seeds):
            result = train_pose_regressor(architecture, train, test, steps=args.steps,
                                          batch_size=args.batch, seed=seed)
            train_errors.append(result.train_errors_cm)
            test_errors.append(result.test_errors_cm)
            seconds += result.train_s
        tr, te = np.concatenate(train_errors), np.concatenate(test_errors)
        rows[architecture] = {
            'label': LABELS[architecture], 'parameters': result.parameters,
            'train_cm': [float(tr.mean()), float(tr.std())],
            'test_cm': [float(te.mean()), float(te.std())],
            'train_s': seconds, 'paper_cm': list(PAPER_TABLE_II[architecture])}
        print(f'{architecture}: train {tr.mean():.2f} +- {tr.std():.2f} cm, test '
              f'{te.mean():.2f} +- {te.std():.2f} cm ({seconds:.0f} s)', flush=True)
    truth = test.points.reshape(len(test.points), -1)
    baseline = np.linalg.norm((truth - train.points.reshape(len(train.points), -1).mean(0))
                              .reshape(-1, 3, 3), axis=2).mean(axis=1) * 100
    results = {
        'date': datetime.datetime.now(datetime.UTC).isoformat(timespec='seconds'),
        'machine': f'{platform.processor() or platform.machine()}, {os.cpu_count()} cores, '
                   f'{args.threads} torch threads',
        'images': {'train': args.train, 'test': args.test, 'camera': 'scene_camera 96x96',
                   'render_s': render_s},
        'training': {'steps': args.steps, 'batch': args.batch, 'optimiser': 'Adam 1e-3, '
                     '1e-4 for the last quarter', 'seeds': args.seeds},
        'predict_the_mean_test_cm': float(baseline.mean()),
        'architectures': rows}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / 'levine_architectures.json').write_text(json.dumps(results, indent=2) + '\n')
    (RESULTS / 'levine_architectures.md').write_text(render(results))
    print(render(results))


def render(results: dict[str, Any]) -> str:
    """The markdown table, laid out as Levine et al.'s Table II."""
    images, training = results['images'], results['training']
    lines = ['# Levine et al. Table II on the twin: pose regression by architecture', '',
             f'{results["date"]}, {results["machine"]}. {images["train"]} training and '
             f'{images["test"]} test images ({images["camera"]}, cube at random poses, arm at '
             f'random poses around home); {training["steps"]} steps of batch '
             f'{training["batch"]}, {training["optimiser"]}, {training["seeds"]} seed(s). '
             "Error: mean Euclidean error of the cube's three points per image (cm), mean "
             '+- std. Predicting the training mean gives '
             f'{results["predict_the_mean_test_cm"]:.2f} cm on the test images.', '',
             '| network architecture | parameters | training error (cm) | test error (cm) '
             '| paper: training / test (cm) |', '|---|---|---|---|---|']
    for row in results['architectures'].values():
        paper = row['paper_cm']
        lines.append(f'| {row["label"]} | {row["parameters"]:,} | '
                     f'{row["train_cm"][0]:.2f} +- {row["train_cm"][1]:.2f} | '
                     f'{row["test_cm"][0]:.2f} +- {row["test_cm"][1]:.2f} | '
                     f'{paper[0]:.2f} +- {paper[1]:.2f} / {paper[2]:.2f} +- {paper[3]:.2f} |')
    return '\n'.join(lines) + '\n'


if __name__ == '__main__':
    main()
