"""Equivalence with the official RayDiffusion implementation (the ``raydiffusion_equivalence``
fixture: numbers produced by the official code with deterministic rule-built weights).

The official 409M-parameter model is rebuilt from the fixture's weight rule in the official
state-dict order, written in the official release layout (``hydra/config.yaml`` +
``checkpoints/ckpt_00450000.pth`` holding ``{'state_dict': ...}``), imported with our importer
(through the safetensors conversion) and loaded back. Each check is at most one network pass;
the 100-step sampler is never run on this model.

Maximum absolute errors reached (CPU, torch 2.13.0+cpu, 2 threads; run-to-run variation in the
last digit):

* ``dino_features``: 0, bitwise equal (tolerance 1e-4)
* ``fwd_x0_pred``: 9.5e-07 (tolerance 1e-4)
* ``sampler_x_T`` from ``torch.manual_seed(0)``: 0, bitwise equal (tolerance 1e-5: see
  ``RANDN_ATOL``)
* sampler x0 at loop indices 0, 1, 10, 70, 98, 99: <= 5.2e-06 (tolerance 1e-3)
* sampler x_t after one update (loop indices 1, 11, 71, 99, and after t = 0): <= 4.8e-06
  (tolerance 1e-3)
* ``sampler_rays_t29`` (one step from the loop-70 snapshot): 4.8e-06 (tolerance 1e-3)
* posterior update alone on all 11 consecutive snapshot pairs: 0 (tolerance 1e-6)
* opt-in full sampler (``RAYDIFF_RUN_FULL_SAMPLER=1``: 71 passes from ``manual_seed(0)``, about
  3 minutes): ``sampler_rays_t29`` 3.6e-06, trajectory x0 <= 2.2e-05, x_t <= 1.9e-06

The fixture folder is ``$RAYDIFF_EQUIVALENCE_FIXTURE`` when set (then a missing or invalid
fixture FAILS the tests), else ``<shared_dir>/reference/raydiffusion_equivalence`` (skipped when
absent).
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from raydiff_ros.cli import import_official
from raydiff_ros.model.checkpoint import load_model, official_key_to_ours
from raydiff_ros.model.config import DiffusionConfig
from raydiff_ros.model.diffusion import NoiseSchedule, initial_noise, sample_rays, sampler_step

ENV_FIXTURE = 'RAYDIFF_EQUIVALENCE_FIXTURE'
ENV_FULL_SAMPLER = 'RAYDIFF_RUN_FULL_SAMPLER'
FIXTURE_SUBDIR = Path('reference') / 'raydiffusion_equivalence'
REQUIRED_ARRAYS = ('images', 'dino_features', 'ndc', 'fwd_t', 'fwd_x_t', 'fwd_x0_pred',
                   'sampler_x_T', 'sampler_rays_t29', 'sampler_traj_loop_idx',
                   'sampler_traj_x_t', 'sampler_traj_x0', 'sampler_x_after_t1',
                   'sampler_x_after_t0')
REQUIRED_JSON = ('weights_rule', 'state_dict', 'param_checksums')

ATOL_FEATURES = 1e-4
ATOL_FORWARD = 1e-4
ATOL_SAMPLER = 1e-3
ATOL_UPDATE_ONLY = 1e-6
CHECKSUM_RTOL = 1e-7
CHECKSUM_ATOL = 1e-6
# torch's CPU normal sampler runs an AVX2 path (its own log and sincos) on AVX2 / AVX-512 CPUs
# and other code elsewhere (CPUs without AVX2, e.g. arm64): from one seed the draws differ by up
# to 2.5e-6 (measured over all 409M rule draws, ATEN_CPU_CAPABILITY=default against avx512, torch
# 2.13), so the fixture's draws are not bit for bit ours everywhere. A draw of the seeded stream
# is compared within RANDN_ATOL (a wrong seed or draw order is off by O(1)); a rule weight
# 0.02 x draw (+ 1) within WEIGHT_ATOL (the + 1 may round to the neighbouring float32, one ulp
# 2^-23 in [1, 2)), hence a sum of n weights within n x WEIGHT_ATOL.
RANDN_ATOL = 1e-5
WEIGHT_ATOL = 0.02 * RANDN_ATOL + 2.0 ** -23
OFFICIAL_STEP = 450_000
SAMPLER_SEED = 0
MAX_IMAGES_PER_PASS = 8
SNAPSHOT_STEPS = (10, 70, 98, 99)  # loop indices whose one step is replayed
RETURN_LOOP_INDEX = 70  # t = 29

OFFICIAL_HYDRA_CONFIG = """\
training:
  resume: false
  pretrain_path: ''
  lr: 0.0001
  mixed_precision: true
  matmul_precision: high
  max_iterations: 450000
  batch_size: 8
  freeze_encoder: true
  seed: 0
  translation_scale: 1.0
  regression: false
  load_extra_cameras: true
  calculate_intrinsics: false
  normalize_first_camera: false
model:
  pred_x0: true
  model_type: dit
  num_patches_x: 16
  num_patches_y: 16
  depth: 16
  num_images: 8
  random_num_images: true
  feature_extractor: dino
  append_ndc: true
noise_scheduler:
  type: linear
  max_timesteps: 100
  beta_start: 0.0001
  beta_end: 0.2
dataset:
  name: co3d
  category: all_train
  apply_augmentation: true
debug:
  wandb: true
  project_name: cameras_as_rays_github
  anomaly_detection: false
hydra:
  run:
    dir: ./output/${now:%m%d_%H%M%S_%f}${training.job_key}
  output_subdir: hydra
"""


def max_abs(a: torch.Tensor, b) -> float:
    """Largest |a - b|, for tensors of one shape (broadcasting would hide a wrong shape)."""
    b = torch.as_tensor(b)
    assert a.shape == b.shape, f'shape {tuple(a.shape)}, fixture has {tuple(b.shape)}'
    return (a - b).abs().max().item()


@pytest.fixture(scope='module')
def fixture_dir(request) -> Path:
    env = os.environ.get(ENV_FIXTURE)
    if env:
        path = Path(env)
        if not (path / 'fixture.npz').is_file() or not (path / 'fixture.json').is_file():
            pytest.fail(f'{ENV_FIXTURE}={env} does not hold fixture.npz and fixture.json')
        return path
    path = request.getfixturevalue('shared_dir') / FIXTURE_SUBDIR
    if not path.is_dir():
        pytest.skip(f'equivalence fixture {path} is absent (set {ENV_FIXTURE})')
    return path


@pytest.fixture(scope='module')
def fixture(fixture_dir):
    """(meta from fixture.json, arrays from fixture.npz as torch tensors)."""
    try:
        meta = json.loads((fixture_dir / 'fixture.json').read_text())
        with np.load(fixture_dir / 'fixture.npz') as npz:
            arrays = {name: torch.from_numpy(npz[name]) for name in npz.files}
    except (OSError, ValueError) as exc:
        pytest.fail(f'equivalence fixture in {fixture_dir} is unreadable: {exc}')
    missing = [n for n in REQUIRED_ARRAYS if n not in arrays]
    missing += [n for n in REQUIRED_JSON if n not in meta]
    if missing:
        pytest.fail(f'equivalence fixture in {fixture_dir} lacks {missing}')
    return meta, arrays


def build_rule_state_dict(meta, arrays):
    """Official state dict (official key order) built by the fixture's weight rule."""
    rule = meta['weights_rule']
    generator = torch.Generator()
    generator.manual_seed(rule['seed'])
    state = {}
    for entry in meta['state_dict']:
        key, shape = entry['key'], tuple(entry['shape'])
        if entry['kind'] == 'buffer':
            state[key] = arrays[f'buf__{key}'].clone()
            continue
        tensor = torch.randn(shape, generator=generator) * 0.02
        if entry['add_one']:
            tensor = tensor + 1.0
        state[key] = tensor
    return state


def checksum_mismatches(named_tensors, checksums):
    """Names whose float64 sum, sum of |x| or first 4 values differ from the fixture."""
    bad = []
    for name, tensor in named_tensors:
        ref = checksums[name]
        flat = tensor.detach().reshape(-1)
        as64 = flat.double()
        sum_atol = max(CHECKSUM_ATOL, flat.numel() * WEIGHT_ATOL)
        ok = (flat[:4].tolist() == pytest.approx(ref['first4'], rel=0, abs=WEIGHT_ATOL)
              and as64.sum().item() == pytest.approx(ref['sum'], rel=CHECKSUM_RTOL,
                                                     abs=sum_atol)
              and as64.abs().sum().item() == pytest.approx(ref['sum_abs'], rel=CHECKSUM_RTOL))
        if not ok:
            bad.append(name)
    return bad


@pytest.fixture(scope='module')
def official_release(fixture, tmp_path_factory):
    """Official release folder with the rule weights; returns (folder, checksum mismatches)."""
    meta, arrays = fixture
    state = build_rule_state_dict(meta, arrays)
    params = [(k, v) for k, v in state.items() if k in meta['param_checksums']]
    mismatches = checksum_mismatches(params, meta['param_checksums'])
    folder = tmp_path_factory.mktemp('co3d_diffusion')
    (folder / 'hydra').mkdir()
    (folder / 'hydra' / 'config.yaml').write_text(OFFICIAL_HYDRA_CONFIG)
    (folder / 'checkpoints').mkdir()
    torch.save({'iteration': OFFICIAL_STEP, 'state_dict': state},
               folder / 'checkpoints' / f'ckpt_{OFFICIAL_STEP:08d}.pth')
    # Sorts first: the importer must pick the lexicographically last file instead.
    (folder / 'checkpoints' / 'ckpt_00000005.pth').write_bytes(b'not a checkpoint')
    del state, params
    return folder, mismatches, len(meta['param_checksums'])


@pytest.fixture(scope='module')
def model(official_release, tmp_path_factory):
    folder = official_release[0]
    out = tmp_path_factory.mktemp('converted')
    assert import_official.main([str(folder), str(out), '--overwrite']) == 0
    return load_model(out)


# slow: every test that builds (official_release) or uses (model) the 409M-parameter model:
# 16 to 27 s of module set-up on 2 cores, then 1 to 9 s a test. The fixture-only checks
# (initial noise, posterior update) stay fast.
@pytest.mark.slow
def test_rule_weights_reproduce_official_checksums(official_release):
    _, mismatches, num_checked = official_release
    assert num_checked == 345
    assert mismatches == []


@pytest.mark.slow
def test_import_maps_every_official_parameter(model, fixture):
    meta, arrays = fixture
    ours = dict(model.named_parameters())
    mapped = {official_key_to_ours(k): k for k in meta['param_checksums']}
    mapped.pop(None, None)  # mask_token is dropped
    assert set(mapped) == set(ours)
    bad = checksum_mismatches(((mapped[k], ours[k]) for k in ours), meta['param_checksums'])
    assert bad == []
    official_shapes = {entry['key']: entry['shape'] for entry in meta['state_dict']}
    hidden, in_channels = official_shapes['ray_predictor.x_embedder.proj.weight'][:2]
    # One token: the DINO features, the noisy ray and the NDC coordinates of a patch.
    token_parts = ('dino_features', 'fwd_x_t', 'ndc')
    assert in_channels == sum(arrays[name].shape[2] for name in token_parts)
    assert model.denoiser.x_embedder.weight.shape == (hidden, in_channels)
    for official, rebuilt in (
            ('noise_scheduler.betas', model.schedule.betas),
            ('noise_scheduler.alphas', model.schedule.alphas),
            ('noise_scheduler.alphas_cumprod', model.schedule.alphas_cumprod),
            ('ray_predictor.x_pos_enc.image_pos_table', model.denoiser.image_pos_table[None]),
            ('ray_predictor.x_pos_enc.token_pos_table', model.denoiser.token_pos_table[None])):
        assert max_abs(rebuilt, arrays[f'buf__{official}']) <= 1e-7, official


@pytest.mark.slow
def test_dino_features(model, fixture):
    _, arrays = fixture
    with torch.no_grad():
        features = model.features(arrays['images'][None])
    err = max_abs(features, arrays['dino_features'])
    print(f'dino_features max abs error {err:.3g}')
    assert features.shape == arrays['dino_features'].shape  # (1, N, F, P, P) of the fixture
    assert err <= ATOL_FEATURES


@pytest.mark.slow
def test_single_forward(model, fixture):
    _, arrays = fixture
    with torch.no_grad():
        x0 = model(arrays['dino_features'], arrays['fwd_x_t'], int(arrays['fwd_t']),
                   arrays['ndc'])
    err = max_abs(x0, arrays['fwd_x0_pred'])
    print(f'fwd_x0_pred max abs error {err:.3g}')
    assert err <= ATOL_FORWARD


def test_initial_noise_follows_torch_manual_seed(fixture):
    _, arrays = fixture
    shape = arrays['sampler_x_T'].shape
    torch.manual_seed(SAMPLER_SEED)
    from_global = initial_noise(shape)
    from_generator = initial_noise(shape, torch.Generator().manual_seed(SAMPLER_SEED))
    assert torch.equal(from_global, from_generator)  # one stream in one process: bit for bit
    torch.testing.assert_close(from_global, arrays['sampler_x_T'], atol=RANDN_ATOL, rtol=0)


def snapshot(arrays, name: str, loop_index: int) -> torch.Tensor:
    position = arrays['sampler_traj_loop_idx'].tolist().index(loop_index)
    return arrays[name][position]


@pytest.mark.slow
def test_sampler_loop_first_two_steps_from_seed(model, fixture):
    """The sampler itself (global RNG after manual_seed(0)), stopped after loop index 1."""
    _, arrays = fixture
    diffusion = dataclasses.replace(model.config.diffusion, return_timestep=98)
    torch.manual_seed(SAMPLER_SEED)
    result = sample_rays(model, arrays['dino_features'], arrays['ndc'], NoiseSchedule(diffusion),
                         record_loop_indices=(0, 1), max_images_per_pass=MAX_IMAGES_PER_PASS)
    assert result.num_steps == 2
    torch.testing.assert_close(result.trajectory[0].x_t, arrays['sampler_x_T'], atol=RANDN_ATOL,
                               rtol=0)
    errors = {
        'x0[0]': max_abs(result.trajectory[0].x0, snapshot(arrays, 'sampler_traj_x0', 0)),
        'x_t[1]': max_abs(result.trajectory[1].x_t, snapshot(arrays, 'sampler_traj_x_t', 1)),
        'x0[1]': max_abs(result.trajectory[1].x0, snapshot(arrays, 'sampler_traj_x0', 1)),
    }
    print(f'sampler first steps max abs errors {errors}')
    assert torch.equal(result.rays, result.trajectory[1].x0)
    assert max(errors.values()) <= ATOL_SAMPLER


@pytest.mark.slow
@pytest.mark.parametrize('loop_index', SNAPSHOT_STEPS)
def test_sampler_step_from_snapshot(model, fixture, loop_index):
    """x_t at loop index k -> one forward -> normalised x0 -> update -> x_t at k + 1."""
    _, arrays = fixture
    t = 99 - loop_index
    x0, x_next = sampler_step(model, arrays['dino_features'], arrays['ndc'],
                              snapshot(arrays, 'sampler_traj_x_t', loop_index), t, t - 1,
                              model.schedule, max_images_per_pass=MAX_IMAGES_PER_PASS)
    errors = {'x0': max_abs(x0, snapshot(arrays, 'sampler_traj_x0', loop_index))}
    if loop_index + 1 in arrays['sampler_traj_loop_idx'].tolist():
        errors['x_next'] = max_abs(x_next, snapshot(arrays, 'sampler_traj_x_t', loop_index + 1))
    if loop_index == RETURN_LOOP_INDEX:
        errors['rays_t29'] = max_abs(x0, arrays['sampler_rays_t29'])
    if t == 1:
        errors['x_after_t1'] = max_abs(x_next, arrays['sampler_x_after_t1'])
    if t == 0:
        errors['x_after_t0'] = max_abs(x_next, arrays['sampler_x_after_t0'])
    print(f'sampler step at loop index {loop_index} max abs errors {errors}')
    assert len(errors) >= 2
    assert max(errors.values()) <= ATOL_SAMPLER


def test_posterior_update_on_every_snapshot_pair(fixture):
    """Update alone (no network): stored (x_t, x0) at k -> stored x_t at k + 1."""
    _, arrays = fixture
    schedule = NoiseSchedule(DiffusionConfig())
    loop = arrays['sampler_traj_loop_idx'].tolist()
    pairs = [(i, k) for i, k in enumerate(loop) if k + 1 in loop]
    assert len(pairs) == 11
    worst = 0.0
    for i, k in pairs:
        t = 99 - k
        w_x0, w_xt = schedule.posterior_coefficients(t, t - 1)
        x_next = torch.clamp(w_x0 * arrays['sampler_traj_x0'][i]
                             + w_xt * arrays['sampler_traj_x_t'][i], -5, 5)
        worst = max(worst, max_abs(x_next, arrays['sampler_traj_x_t'][i + 1]))
    print(f'posterior update max abs error {worst:.3g}')
    assert worst <= ATOL_UPDATE_ONLY


@pytest.mark.slow
@pytest.mark.skipif(os.environ.get(ENV_FULL_SAMPLER) != '1',
                    reason=f'71 passes of the 409M model (minutes); set {ENV_FULL_SAMPLER}=1')
def test_full_sampler_from_seed_to_t29(model, fixture):
    """The whole official sampler loop: manual_seed(0) -> x0 at t = 29, every snapshot."""
    _, arrays = fixture
    loop = arrays['sampler_traj_loop_idx'].tolist()
    torch.manual_seed(SAMPLER_SEED)
    result = model.predict_rays(arrays['dino_features'][0], arrays['ndc'][0],
                                record_loop_indices=[k for k in loop if k <= RETURN_LOOP_INDEX])
    assert result.num_steps == RETURN_LOOP_INDEX + 1
    errors = {'rays_t29': max_abs(result.rays, arrays['sampler_rays_t29']),
              'x_t[71]': max_abs(result.x_t, snapshot(arrays, 'sampler_traj_x_t', 71))}
    for k, snap in result.trajectory.items():
        errors[f'x_t[{k}]'] = max_abs(snap.x_t, snapshot(arrays, 'sampler_traj_x_t', k))
        errors[f'x0[{k}]'] = max_abs(snap.x0, snapshot(arrays, 'sampler_traj_x0', k))
    print(f'full sampler max abs error {max(errors.values()):.3g} '
          f'(rays_t29 {errors["rays_t29"]:.3g})')
    assert max(errors.values()) <= ATOL_SAMPLER
