"""Write one of our models in the official RayDiffusion release layout (for importer tests).

Layout: ``<dir>/hydra/config.yaml`` + ``<dir>/checkpoints/ckpt_<step>.pth`` holding
``{'state_dict': ...}`` with the official key names and shapes.
"""

from pathlib import Path

import torch
import yaml

from raydiff_ros.model.checkpoint import our_key_to_official
from raydiff_ros.model.network import RayDiffusionModel

OFFICIAL_4D_KEYS = ('ray_predictor.x_embedder.proj.weight',)
OFFICIAL_BATCHED_TABLES = ('ray_predictor.x_pos_enc.image_pos_table',
                           'ray_predictor.x_pos_enc.token_pos_table')


def hydra_config(model: RayDiffusionModel) -> dict:
    config = model.config
    return {
        'training': {'regression': config.diffusion.regression},
        'model': {'pred_x0': True, 'num_patches_x': config.denoiser.num_patches,
                  'num_patches_y': config.denoiser.num_patches, 'depth': config.denoiser.depth,
                  'num_images': config.denoiser.max_num_images, 'feature_extractor': 'dino',
                  'append_ndc': config.denoiser.append_ndc},
        'noise_scheduler': {'type': config.diffusion.schedule,
                            'max_timesteps': config.diffusion.max_timesteps,
                            'beta_start': config.diffusion.beta_start,
                            'beta_end': config.diffusion.beta_end},
    }


def write_official_release(model: RayDiffusionModel, folder: Path, step: int = 450000) -> Path:
    folder = Path(folder)
    (folder / 'hydra').mkdir(parents=True, exist_ok=True)
    (folder / 'checkpoints').mkdir(exist_ok=True)
    (folder / 'hydra' / 'config.yaml').write_text(yaml.safe_dump(hydra_config(model)))
    state = {}
    for key, tensor in model.state_dict().items():
        official = our_key_to_official(key)
        if official in OFFICIAL_4D_KEYS:
            tensor = tensor[:, :, None, None]
        elif official in OFFICIAL_BATCHED_TABLES:
            tensor = tensor[None]
        state[official] = tensor.clone()
    torch.save({'state_dict': state, 'iteration': step},
               folder / 'checkpoints' / f'ckpt_{step:08d}.pth')
    return folder
