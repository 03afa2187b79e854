"""raydiff_ros.model: the ray-diffusion network, its sampler and its checkpoints (ROS-free).

Modules (one job each):

* ``config``: typed dataclass configs (backbone, denoiser, diffusion) and presets
  (``official``, ``small``), to and from YAML;
* ``dinov2``: the DINOv2 ViT-S/14 patch-feature extractor;
* ``dit``: the DiT ray denoiser;
* ``diffusion``: noise schedule, the official x0 sampler (stop at t = 29, chunking of more than
  8 images, K samples in one batch) and the one-step regression variant;
* ``network``: ``RayDiffusionModel`` = backbone + denoiser + schedule
  (``features``, ``forward``, ``predict_rays``);
* ``camera_token``: the camera-ray-token model (a camera token per image in the DiT, 6D
  rotation and translation heads, auxiliary rays), its config, objective and checkpoints;
* ``checkpoint``: import of the official release, our safetensors format, ``load_model``
  (the ``raydiff-import-official`` command is ``raydiff_ros/cli/import_official.py``).

Rays are spatial tensors (B, N, 6, P, P) with channels [d, m] (unit direction, moment c x d) in
the frame of the cameras the network was trained on (PyTorch3D NDC convention for the official
weights); converting rays to cameras is done by ``raydiff_ros.geometry``.
"""
