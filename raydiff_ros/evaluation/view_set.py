"""A scene view set: N images of one dataset drawn by the harness, and what the estimator sees.

``SceneViewSet.estimation_input()`` is the estimator contract's ``ViewSetInput``: the images
(read from disk only when an estimator indexes them, so estimators that need no pixels cost no
image I/O), ``K`` (``None`` when the evaluation treats intrinsics as unknown), the object boxes
of object-centric synthetic sets, and the privileged ground truth that only the reference
estimators (ground truth, noisy oracle) read.
"""

from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np

from raydiff_ros.estimation.contract import GroundTruth, ViewSetInput
from raydiff_ros.evaluation.datasets import MultiViewDataset


class LazyImages(Sequence):
    """The images of some dataset indices, each read from disk when it is indexed."""

    def __init__(self, dataset: MultiViewDataset, indices: Sequence[int]) -> None:
        self._dataset = dataset
        self._indices = tuple(indices)

    def __len__(self) -> int:
        return len(self._indices)

    def __getitem__(self, index):
        if isinstance(index, slice):
            return [self[k] for k in range(len(self))[index]]
        return self._dataset.load_image(self._indices[index])


@dataclass(frozen=True, eq=False)
class SceneViewSet:
    """N views of one dataset.

    Attributes:
        dataset: the dataset the views come from.
        indices: N distinct dataset image indices, in the order the estimator sees them.
        intrinsics_known: whether ``K`` is handed to the estimator.
        boxes_known: whether the dataset's object boxes are handed to the estimator (without
            them, estimators crop whole images, as the node does).
    """

    dataset: MultiViewDataset
    indices: tuple[int, ...]
    intrinsics_known: bool = True
    boxes_known: bool = True

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

    def estimation_input(self) -> ViewSetInput:
        """The estimator's input: lazily read images, K when known, object boxes when the
        dataset has them and ``boxes_known``, the ground truth (privileged) and the scene name
        and indices."""
        truth = GroundTruth(R=self.ground_truth_R, t=self.ground_truth_t,
                            K=self.ground_truth_K, scene_scale=self.dataset.scene_scale)
        boxes = self.object_boxes if self.boxes_known else None
        return ViewSetInput(images=LazyImages(self.dataset, self.indices), K=self.K,
                            boxes=boxes, ground_truth=truth,
                            metadata={'scene': self.dataset.name, 'indices': self.indices})

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
