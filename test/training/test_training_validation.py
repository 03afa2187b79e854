"""Validation: an oracle network scores perfectly through the real inference path; curves."""

import numpy as np
import torch

from raydiff_ros.data.training_samples import (
    SampleConfig,
    SyntheticViewSetDataset,
    index_view_sets,
)
from raydiff_ros.geometry.camera import Cameras
from raydiff_ros.geometry.conventions import ndc_to_pixel
from raydiff_ros.geometry.rays import rays_from_pixels
from raydiff_ros.model.network import RayDiffusionModel
from raydiff_ros.training.curves import (
    append_record,
    plot_curves,
    read_records,
    truncate_records,
)
from raydiff_ros.training.validation import validate

PNG_SIGNATURE = b'\x89PNG\r\n\x1a\n'


class RayOracle(RayDiffusionModel):
    """Predicts the exact rays of known cameras through whatever patch centres (ndc) it gets:
    the crops, the sampler and the rays-to-cameras step stay the real code."""

    def __init__(self, config, cameras: Cameras) -> None:
        super().__init__(config)
        self.cameras = cameras

    def forward(self, features, rays_noisy, t, ndc=None):
        B, N, _, P, _ = ndc.shape
        points = ndc.permute(0, 1, 3, 4, 2).reshape(B, N, P * P, 2).double()
        pixels = ndc_to_pixel(points, self.cameras.image_size[None, :N, None, :])
        cameras = Cameras(self.cameras.R[:N], self.cameras.t[:N], self.cameras.K[:N],
                          self.cameras.image_size[:N])
        rays = rays_from_pixels(cameras, pixels)  # (B, N, P*P, 6)
        return rays.reshape(B, N, P, P, 6).permute(0, 1, 4, 2, 3).to(rays_noisy.dtype)


def validation_set(folder) -> SyntheticViewSetDataset:
    return SyntheticViewSetDataset(index_view_sets([folder]), SampleConfig(
        image_size=56, num_patches=4, views_per_sample=4, augment=False, shuffle_views=False))


def test_an_oracle_scores_perfectly_through_the_inference_path(training_shards,
                                                              tiny_model_config):
    dataset = validation_set(training_shards.val)
    for index in range(len(dataset)):
        record = dataset.view_set(index)
        cameras = Cameras(torch.from_numpy(record.R), torch.from_numpy(record.t),
                          torch.from_numpy(record.K), record.image_size)
        oracle = RayOracle(tiny_model_config, cameras)
        single = SyntheticViewSetDataset([dataset.entries[index]], dataset.config)
        result = validate(oracle, single, num_sets=1, num_views=3, num_samples=1,
                          loss_timesteps=(10, 90), regression=False,
                          device=torch.device('cpu'))
        assert result.failures == 0 and result.num_sets == 1
        assert result.rotation_accuracy == 1.0
        assert result.camera_center_accuracy == 1.0
        assert result.mean_rotation_error_deg < 0.1
        # the oracle knows the raw cameras, not the normalised training frame: its loss is
        # positive, which shows the validation loss compares against the training targets
        assert result.loss > 0


def test_degenerate_predictions_count_as_failures(training_shards, tiny_model_config):
    # every ray of every camera parallel: no camera centre, the estimate fails
    dataset = validation_set(training_shards.val)
    model = RayDiffusionModel(tiny_model_config)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.zero_()
        model.denoiser.final_layer.linear.bias.copy_(torch.tensor([0, 0, 1.0, 0.1, 0, 0]))
    result = validate(model, dataset, num_sets=2, num_views=3, num_samples=1,
                      loss_timesteps=(50,), regression=False, device=torch.device('cpu'))
    assert result.num_sets == 2 and result.failures == 2
    assert result.rotation_accuracy < 0.5
    assert np.isfinite(result.loss) and result.loss > 0


def test_log_records_and_curves(tmp_path):
    log = tmp_path / 'metrics.jsonl'
    for iteration in (10, 20, 30):
        append_record(log, {'iteration': iteration, 'loss': 1.0 / iteration})
    append_record(log, {'iteration': 30, 'val_loss': 0.5, 'val_rotation_accuracy': 0.25})
    truncate_records(log, 20)
    records = read_records(log)
    assert [r['iteration'] for r in records] == [10, 20]
    path = plot_curves(records, tmp_path / 'curves.png', title='test')
    assert path.read_bytes()[:8] == PNG_SIGNATURE
    assert read_records(tmp_path / 'none.jsonl') == []
