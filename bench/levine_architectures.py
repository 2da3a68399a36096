"""Benchmark: Levine et al.'s CNN architecture comparison (seed 002, Table II) on the twin.

Pose regression of the twin's cube from the FR3 scene camera (96x96, what the bundled policy
sees): three 3D points of the cube (its centre and two face centres), the arm at random poses
around home moving through the view. Four ways of reading the same three convolutions
(visuomotor.training.pose_regression): spatial softmax + expected points (Levine et al.),
spatial softmax + fully connected, fully connected, max-pooling + fully connected. Each is
trained with the same steps and batch on the same images, with its own learning rate: the
best of `--learning-rates` on a validation set rendered apart from both (one learning rate
for all is unfair: Adam at 1e-3 or more kills the 43,808-input fully connected layer, which
then predicts the mean, while the feature points learn best at 1e-2). Errors are the average
Euclidean error of the three points per image (cm), mean +- std over the training and the
held-out test images, as in their Table II.

Results: bench/results/levine_architectures.{json,md}; one run.
Run: python bench/levine_architectures.py [--train N] [--test N] [--steps N] [--seeds N]
     [--learning-rates 3e-2,1e-2,3e-3,1e-3,3e-4,1e-4]
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
    PoseData,
    PoseResult,
    render_pose_data,
    train_pose_regressor,
)

RESULTS = Path(__file__).resolve().parent / 'results'


def _select(architecture: str, data: dict[str, PoseData], rates: list[float],
            args: argparse.Namespace) -> tuple[PoseResult, dict[str, float]]:
    """Seed 0 at every learning rate; the one with the lowest validation error wins."""
    tried: dict[str, float] = {}
    best: PoseResult | None = None
    for rate in rates:
        result = train_pose_regressor(architecture, data['train'], data['test'],
                                      steps=args.steps, batch_size=args.batch,
                                      learning_rate=rate, seed=0,
                                      validation=data['validation'])
        error = float(np.mean(result.validation_errors_cm))
        tried[f'{rate:g}'] = error
        print(f'  {architecture} lr {rate:g}: validation {error:.2f} cm '
              f'({result.train_s:.0f} s)', flush=True)
        if best is None or error < tried[f'{best.learning_rate:g}']:
            best = result
    if best is None:
        raise SystemExit('--learning-rates: give at least one')
    return best, tried


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--train', type=int, default=1000, help='training images')
    parser.add_argument('--validation', type=int, default=200,
                        help='images for choosing the learning rate')
    parser.add_argument('--test', type=int, default=300, help='test images (other poses)')
    parser.add_argument('--steps', type=int, default=1500)
    parser.add_argument('--batch', type=int, default=32)
    parser.add_argument('--learning-rates', default='3e-2,1e-2,3e-3,1e-3,3e-4,1e-4',
                        help='Adam learning rates tried per architecture (comma-separated)')
    parser.add_argument('--seeds', type=int, default=1, help='training seeds per architecture')
    parser.add_argument('--threads', type=int, default=2)
    args = parser.parse_args()
    rates = [float(r) for r in args.learning_rates.split(',')]
    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    data = {'train': render_pose_data(args.train, seed=0),
            'test': render_pose_data(args.test, seed=1),
            'validation': render_pose_data(args.validation, seed=2)}
    render_s = time.perf_counter() - start
    print(f'rendered {args.train} + {args.validation} + {args.test} images in {render_s:.0f} s',
          flush=True)
    rows: dict[str, Any] = {}
    for architecture in POSE_ARCHITECTURES:
        result, tried = _select(architecture, data, rates, args)
        runs = [result] + [
            train_pose_regressor(architecture, data['train'], data['test'], steps=args.steps,
                                 batch_size=args.batch, learning_rate=result.learning_rate,
                                 seed=seed)
            for seed in range(1, args.seeds)]
        tr = np.concatenate([r.train_errors_cm for r in runs])
        te = np.concatenate([r.test_errors_cm for r in runs])
        rows[architecture] = {
            'label': LABELS[architecture], 'parameters': result.parameters,
            'learning_rate': result.learning_rate, 'validation_cm_by_learning_rate': tried,
            'train_cm': [float(tr.mean()), float(tr.std())],
            'test_cm': [float(te.mean()), float(te.std())],
            'train_s': sum(r.train_s for r in runs),
            'paper_cm': list(PAPER_TABLE_II[architecture])}
        print(f'{architecture} (lr {result.learning_rate:g}): train {tr.mean():.2f} +- '
              f'{tr.std():.2f} cm, test {te.mean():.2f} +- {te.std():.2f} cm', flush=True)
    train, test = data['train'], data['test']
    truth = test.points.reshape(len(test.points), -1)
    baseline = np.linalg.norm((truth - train.points.reshape(len(train.points), -1).mean(0))
                              .reshape(-1, 3, 3), axis=2).mean(axis=1) * 100
    results = {
        'date': datetime.datetime.now(datetime.UTC).isoformat(timespec='seconds'),
        'machine': f'{platform.processor() or platform.machine()}, {os.cpu_count()} cores, '
                   f'{args.threads} torch threads',
        'images': {'train': args.train, 'validation': args.validation, 'test': args.test,
                   'camera': 'scene_camera 96x96', 'render_s': render_s},
        'training': {'steps': args.steps, 'batch': args.batch,
                     'optimiser': 'Adam, the learning rate x0.1 for the last quarter',
                     'learning_rates': rates, 'seeds': args.seeds},
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
             f'{training["batch"]}, {training["optimiser"]}, {training["seeds"]} seed(s); '
             'each architecture with the best learning rate of '
             f'{", ".join(f"{r:g}" for r in training["learning_rates"])} on '
             f'{images["validation"]} validation images. '
             "Error: mean Euclidean error of the cube's three points per image (cm), mean "
             '+- std. Predicting the training mean gives '
             f'{results["predict_the_mean_test_cm"]:.2f} cm on the test images.', '',
             '| network architecture | parameters | learning rate | training error (cm) '
             '| test error (cm) | paper: training / test (cm) |', '|---|---|---|---|---|---|']
    for row in results['architectures'].values():
        paper = row['paper_cm']
        lines.append(f'| {row["label"]} | {row["parameters"]:,} | '
                     f'{row["learning_rate"]:g} | '
                     f'{row["train_cm"][0]:.2f} +- {row["train_cm"][1]:.2f} | '
                     f'{row["test_cm"][0]:.2f} +- {row["test_cm"][1]:.2f} | '
                     f'{paper[0]:.2f} +- {paper[1]:.2f} / {paper[2]:.2f} +- {paper[3]:.2f} |')
    rates = [f'{r:g}' for r in training['learning_rates']]
    lines += ['', 'Validation error (cm) by learning rate:', '',
              '| network architecture | ' + ' | '.join(rates) + ' |',
              '|---|' + '---|' * len(rates)]
    for row in results['architectures'].values():
        tried = row['validation_cm_by_learning_rate']
        lines.append(f'| {row["label"]} | '
                     + ' | '.join(f'{tried[r]:.2f}' for r in rates) + ' |')
    return '\n'.join(lines) + '\n'


if __name__ == '__main__':
    main()
