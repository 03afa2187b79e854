"""Training log (JSON lines) and its loss / metric curves as a PNG (matplotlib, Agg backend).

Each log record is a JSON object with ``iteration`` and any of: ``loss`` (training loss, mean
over the log interval), ``lr``, ``val_loss``, ``val_rotation_accuracy`` (relative rotation
accuracy at 15 deg), ``val_camera_center_accuracy`` (at 0.1 scene scale),
``val_mean_rotation_error_deg``, ``val_failures``, ``seconds`` (wall time of the interval).
"""

import json
from pathlib import Path
from typing import Union

import matplotlib

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen first)

PathLike = Union[str, Path]

PANELS = (
    ('loss', 'training loss (x0 MSE)', True),
    ('val_loss', 'validation loss', True),
    ('val_rotation_accuracy', 'val. rotation acc. @15 deg', False),
    ('val_camera_center_accuracy', 'val. camera-centre acc. @0.1', False),
)
FIGURE_SIZE = (10, 7)
DPI = 100


def append_record(path: PathLike, record: dict) -> None:
    """Append one record to a JSON-lines log."""
    with Path(path).open('a') as handle:
        handle.write(json.dumps(record, sort_keys=True) + '\n')


def read_records(path: PathLike) -> list[dict]:
    """All records of a JSON-lines log (empty when the file does not exist)."""
    path = Path(path)
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def truncate_records(path: PathLike, max_iteration: int) -> None:
    """Drop records after ``max_iteration`` (a resumed run re-does those iterations)."""
    records = [r for r in read_records(path) if r['iteration'] <= max_iteration]
    Path(path).write_text(''.join(json.dumps(r, sort_keys=True) + '\n' for r in records))


def plot_curves(records: list[dict], path: PathLike, title: str = '') -> Path:
    """Plot the training and validation curves of ``records`` into a PNG; returns its path."""
    figure, axes = plt.subplots(2, 2, figsize=FIGURE_SIZE)
    for axis, (key, label, log_scale) in zip(axes.ravel(), PANELS, strict=True):
        points = [(r['iteration'], r[key]) for r in records if r.get(key) is not None]
        if points:
            iterations, values = zip(*points, strict=True)
            axis.plot(iterations, values, marker='.' if len(points) < 50 else None)
            if log_scale and min(values) > 0:
                axis.set_yscale('log')
        else:
            axis.text(0.5, 0.5, 'no data yet', ha='center', va='center',
                      transform=axis.transAxes)
        if not log_scale:
            axis.set_ylim(-0.02, 1.02)
        axis.set_title(label)
        axis.set_xlabel('iteration')
        axis.grid(True, alpha=0.3)
    if title:
        figure.suptitle(title)
    figure.tight_layout()
    path = Path(path)
    figure.savefig(path, dpi=DPI)
    plt.close(figure)
    return path
