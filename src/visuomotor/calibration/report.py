"""What a verification leaves behind: the record, an overlay per camera, an HTML report.

The overlay draws the detected corners against the corners the stored calibration predicts.

    calibration/<rig>/verification/<id>.json
    calibration/<rig>/verification/<id>_<camera>.png
    calibration/<rig>/verification/<id>.html
"""

from __future__ import annotations

import dataclasses
import html
import json
from collections.abc import Mapping, Sequence
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt

from visuomotor.calibration.charuco import BoardView
from visuomotor.calibration.rig_files import write_atomic
from visuomotor.calibration.verify import CameraCheck, VerificationRecord

Image = npt.NDArray[np.uint8]
Drawn = Sequence[tuple[Image, BoardView | None, npt.NDArray[np.float64] | None]]
GREEN, RED, BLACK = (60, 200, 60), (40, 40, 230), (0, 0, 0)
#: Offsets between detected and predicted corners are drawn this many times longer.
EXAGGERATE = 10


def _bgr(image: Image) -> Image:
    if image.ndim == 2 or image.shape[2] == 1:
        return np.asarray(cv2.cvtColor(image, cv2.COLOR_GRAY2BGR))
    return np.ascontiguousarray(image[:, :, ::-1])  # the twin and our drivers give rgb8


def overlay(check: CameraCheck, drawn: Drawn) -> Image:
    """The first view with a board (else the first view), annotated (BGR).

    Detected corners are green circles; the predicted ones red crosses joined to them, with
    the offset drawn EXAGGERATE times longer; the verdict is written on top.
    """
    if not drawn:
        return np.zeros((120, 480, 3), np.uint8)
    image, view, predicted = next((d for d in drawn if d[1] is not None), drawn[0])
    out = _bgr(np.asarray(image)).copy()
    scale = max(1, int(round(out.shape[1] / 640)))
    if view is not None and predicted is not None:
        for (u, v), (p, q) in zip(view.pixels, predicted, strict=True):
            far = (int(round(u + EXAGGERATE * (p - u))), int(round(v + EXAGGERATE * (q - v))))
            cv2.line(out, (int(round(u)), int(round(v))), far, RED, 1, cv2.LINE_AA)
            cv2.circle(out, (int(round(u)), int(round(v))), 4 * scale, GREEN, 1, cv2.LINE_AA)
            cv2.drawMarker(out, far, RED, cv2.MARKER_CROSS, 7 * scale, 1, cv2.LINE_AA)
    lines = [f'{check.camera}: {"PASS" if check.passed else "FAIL"}',
             f'green o detected; red + predicted by the stored calibration (offset x'
             f'{EXAGGERATE})']
    if check.translation_mm is not None:
        lines.append(f'board {check.translation_mm:.2f} mm / {check.rotation_deg:.3f} deg off, '
                     f'corners {check.corner_error_px:.2f} px, rms {check.rms_px:.2f} px')
    y = 4
    for text in lines:
        (width, height), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, 0.45, 1)
        cv2.rectangle(out, (4, y), (10 + width, y + height + base + 4), BLACK, -1)
        cv2.putText(out, text, (7, y + height + 2), cv2.FONT_HERSHEY_SIMPLEX, 0.45,
                    GREEN if check.passed or text.startswith('green') else RED, 1, cv2.LINE_AA)
        y += height + base + 6
    return out


def _cell(value: object, digits: int = 2) -> str:
    if value is None:
        return '-'
    if isinstance(value, float):
        return f'{value:.{digits}f}'
    return html.escape(str(value))


def html_report(record: VerificationRecord, overlays: Mapping[str, str]) -> str:
    """A self-contained page (images by relative path)."""
    verdict = 'PASSED' if record.passed else 'FAILED'
    rows = []
    for c in record.cameras:
        rows.append(
            f'<tr class="{"ok" if c.passed else "bad"}"><td>{html.escape(c.camera)}</td>'
            f'<td>{"pass" if c.passed else "FAIL"}</td>'
            f'<td>{_cell(c.translation_mm)} / {c.limits.translation_mm:g}</td>'
            f'<td>{_cell(c.rotation_deg, 3)} / {c.limits.rotation_deg:g}</td>'
            f'<td>{_cell(c.rms_px)} / {c.limits.reprojection_rms_px:g}</td>'
            f'<td>{_cell(c.corner_error_px)}</td><td>{_cell(c.shift_mm)} mm, '
            f'{_cell(c.turn_deg, 3)} deg</td><td>{c.views_used}/{c.views}</td>'
            f'<td>{html.escape("; ".join(c.problems)) or "-"}</td></tr>')
    images = ''.join(f'<figure><img src="{html.escape(path)}" alt="{html.escape(name)}">'
                     f'<figcaption>{html.escape(name)}</figcaption></figure>'
                     for name, path in overlays.items())
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>{html.escape(record.id)}</title>
<style>body{{font-family:sans-serif;margin:2em}} table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:4px 8px}} .ok td:nth-child(2){{color:#080}}
.bad td:nth-child(2){{color:#c00;font-weight:bold}} figure{{display:inline-block}}
img{{max-width:640px}}</style></head><body>
<h1>Calibration verification {html.escape(record.id)}: {verdict}</h1>
<p>rig {html.escape(record.rig)}, {html.escape(record.created_at)},
{html.escape(record.software)} on {html.escape(record.host)}</p>
<table><tr><th>camera</th><th>verdict</th><th>board offset mm / limit</th>
<th>board rotation deg / limit</th><th>reprojection px / limit</th>
<th>predicted corners px</th><th>apparent camera move</th><th>views</th><th>problems</th></tr>
{''.join(rows)}</table>
<p>calibration files: {html.escape(json.dumps(dict(record.calibration_files)))}</p>
{images}</body></html>
"""


def write_record(record: VerificationRecord, folder: Path, drawn: Mapping[str, Drawn]
                 ) -> VerificationRecord:
    """Write the overlays, the record (with the overlay names) and the report into `folder`.

    Returns the record as written.
    """
    folder.mkdir(parents=True, exist_ok=True)
    cameras = []
    for check in record.cameras:
        name = f'{record.id}_{check.camera}.png'
        ok, png = cv2.imencode('.png', overlay(check, drawn.get(check.camera, ())))
        if ok:
            write_atomic(folder / name, png.tobytes())
        cameras.append(dataclasses.replace(check, overlay=name))
    written = dataclasses.replace(record, cameras=tuple(cameras))
    write_atomic(folder / f'{record.id}.html',
                 html_report(written, {c.camera: c.overlay for c in cameras}))
    # The JSON last: a record exists only once its overlays and report do.
    write_atomic(folder / f'{record.id}.json', json.dumps(written.to_dict(), indent=1))
    return written
