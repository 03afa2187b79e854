"""A view set: N images of a dataset handed to a pose estimator, with their metadata.

The harness gives estimators a ``ViewSet`` rather than bare arrays so that one interface serves
every kind of estimator, while making plain what each may use:

* image-based estimators (the model, a SIFT baseline) use ``images()``, ``K`` (``None`` when
  the evaluation treats intrinsics as unknown) and ``image_sizes``;
* reference estimators (ground truth, noisy oracle) additionally read ``ground_truth_R`` /
  ``ground_truth_t``. Those are privileged: an estimator under test must never touch them.

Images are decoded only when ``images()`` is called, so estimators that need no pixels cost
no image I/O.
"""

from dataclasses import dataclass
from typing import Optional

import numpy as np

from raydiff_ros.evaluation.datasets import MultiViewDataset


@dataclass(frozen=True, eq=False)
class ViewSet:
    """N views of one dataset.

    Attributes:
        dataset: the dataset the views come from.
        indices: N distinct dataset image indices, in the order the estimator sees them.
        intrinsics_known: whether ``K`` is handed to the estimator.
    """

    dataset: MultiViewDataset
    indices: tuple[int, ...]
    intrinsics_known: bool = True

    def __post_init__(self) -> None:
        indices = tuple(int(i) for i in self.indices)
        if not indices:
            raise ValueError('a view set needs at least one index')
        if len(set(indices)) != len(indices):
            raise ValueError(f'view set indices must be distinct, got {indices}')
        if min(indices) < 0 or max(indices) >= len(self.dataset):
            raise ValueError(
                f'view set indices {indices} out of range for {len(self.dataset)} images'
            )
        object.__setattr__(self, 'indices', indices)

    @property
    def num_views(self) -> int:
        return len(self.indices)

    def images(self) -> list[np.ndarray]:
        """The N images, each (H, W, 3) uint8 RGB (read from disk on each call)."""
        return [self.dataset.load_image(i) for i in self.indices]

    @property
    def K(self) -> Optional[np.ndarray]:
        """(N, 3, 3) intrinsics in pixels, or ``None`` when intrinsics are treated as unknown."""
        if not self.intrinsics_known:
            return None
        return self.dataset.K[list(self.indices)].copy()

    @property
    def object_boxes(self) -> Optional[np.ndarray]:
        """(N, 4) object boxes ``[x0, y0, x1, y1]`` in pixels when the dataset has them (the
        object-centric synthetic sets), else None. Estimators may crop to them."""
        boxes = getattr(self.dataset, 'object_boxes', None)
        return None if boxes is None else np.asarray(boxes)[list(self.indices)].copy()

    @property
    def image_sizes(self) -> np.ndarray:
        """(N, 2) int (width, height) of the images."""
        return self.dataset.image_sizes[list(self.indices)].copy()

    @property
    def ground_truth_R(self) -> np.ndarray:
        """(N, 3, 3) true world-to-camera rotations. Privileged: reference estimators only."""
        return self.dataset.R[list(self.indices)].copy()

    @property
    def ground_truth_t(self) -> np.ndarray:
        """(N, 3) true world-to-camera translations. Privileged: reference estimators only."""
        return self.dataset.t[list(self.indices)].copy()

    @property
    def ground_truth_K(self) -> np.ndarray:
        """(N, 3, 3) true intrinsics, whether or not they are handed to the estimator."""
        return self.dataset.K[list(self.indices)].copy()
