"""Training end to end on a few rendered sets: learning, checkpoints, resume, curves, CLI."""

import json

from progress_recorder import RecordingProgress
import pytest
import torch

from raydiff_ros.cli.train import main as train_main
from raydiff_ros.data.training_samples import truncate_views
from raydiff_ros.inference.engine import RayDiffusionEngine
from raydiff_ros.model.checkpoint import load_model, save_model
from raydiff_ros.training.checkpointing import list_checkpoints, load_training_state
from raydiff_ros.training.config import config_from_dict, save_train_config
from raydiff_ros.training.trainer import Trainer, TrainingError, collate_view_sets

PNG_SIGNATURE = b'\x89PNG\r\n\x1a\n'
FIXED_BATCH_STEPS = 40
REQUIRED_LOSS_RATIO = 0.7


def quiet(_line: str) -> None:
    pass


def test_loss_decreases_on_a_fixed_batch(tiny_train_dict):
    trainer = Trainer(config_from_dict(tiny_train_dict()), log=quiet)
    batch = truncate_views(collate_view_sets([trainer.train_set[(0, 1)],
                                              trainer.train_set[(1, 2)]]), 3)
    generator = torch.Generator().manual_seed(0)
    t = torch.randint(0, 100, (2,), generator=generator)
    noise = torch.randn(batch['rays'].shape, generator=generator)

    def fixed_loss() -> float:
        trainer.model.eval()
        with torch.no_grad():
            return float(trainer.loss_on_batch(batch, t, noise))

    before = fixed_loss()
    losses = [trainer.train_step(batch, iteration) for iteration in range(FIXED_BATCH_STEPS)]
    after = fixed_loss()
    assert all(torch.isfinite(torch.tensor(losses)))
    assert after < REQUIRED_LOSS_RATIO * before


def test_run_checkpoint_resume_and_curves(tiny_train_dict, tmp_path):
    config = config_from_dict(tiny_train_dict())
    result = Trainer(config, log=quiet).run()
    output = tmp_path / 'run'
    assert result.iteration == 6 and torch.isfinite(torch.tensor(result.last_loss))
    assert [p.name for p in list_checkpoints(output)] == ['step_00000003', 'step_00000006']
    assert load_training_state(result.checkpoint).iteration == 6
    assert (output / 'curves.png').read_bytes()[:8] == PNG_SIGNATURE
    records = [json.loads(line) for line in (output / 'metrics.jsonl').read_text().splitlines()]
    assert [r['iteration'] for r in records if 'loss' in r] == [2, 4, 6]
    assert [r['iteration'] for r in records if 'val_loss' in r] == [3, 6]
    assert all(0 <= r['val_rotation_accuracy'] <= 1 for r in records if 'val_loss' in r)
    # a checkpoint is a model folder the inference engine loads as is
    model = load_model(result.checkpoint)
    assert model.config.denoiser.hidden_size == 32
    RayDiffusionEngine(result.checkpoint)

    with pytest.raises(TrainingError, match='--resume'):
        Trainer(config, log=quiet)
    longer = config_from_dict(tiny_train_dict(optim={'iterations': 9, 'batch_size': 2,
                                                     'lr': 1e-3, 'warmup_iterations': 2}))
    progress = RecordingProgress()
    resumed = Trainer(longer, resume=True, log=quiet, progress=progress)
    assert resumed.iteration == 6
    resumed_result = resumed.run()
    assert resumed_result.iteration == 9
    [bar] = progress.bars  # no feature cache: the iterations only, from the resumed one on
    assert (bar.description, bar.total, bar.unit, bar.initial) == ('train', 9, 'it', 6)
    assert bar.updates == [1, 1, 1] and bar.closed
    assert [p.name for p in list_checkpoints(output)] == ['step_00000006', 'step_00000009']
    records = [json.loads(line) for line in (output / 'metrics.jsonl').read_text().splitlines()]
    assert [r['iteration'] for r in records if 'loss' in r] == [2, 4, 6, 8, 9]


def test_resumed_run_continues_like_an_uninterrupted_one(tiny_train_dict, tmp_path):
    # the uninterrupted run also loads its data in a worker process: same batches
    straight = config_from_dict(tiny_train_dict(output_dir=str(tmp_path / 'straight'),
                                                checkpoint_interval=100, validation={
                                                    'interval': 100, 'num_sets': 0},
                                                data={'num_workers': 1}))
    Trainer(straight, log=quiet).run()
    split = config_from_dict(tiny_train_dict(output_dir=str(tmp_path / 'split'),
                                             checkpoint_interval=100, validation={
                                                 'interval': 100, 'num_sets': 0},
                                             optim={'iterations': 3, 'batch_size': 2,
                                                    'lr': 1e-3, 'warmup_iterations': 2}))
    Trainer(split, log=quiet).run()
    Trainer(config_from_dict({**split.to_dict(), 'optim': straight.to_dict()['optim']}),
            resume=True, log=quiet).run()
    a = load_model(tmp_path / 'straight' / 'checkpoints' / 'step_00000006').state_dict()
    b = load_model(tmp_path / 'split' / 'checkpoints' / 'step_00000006').state_dict()
    for key in a:
        torch.testing.assert_close(a[key], b[key], atol=1e-5, rtol=1e-4)


def test_fine_tuning_starts_from_the_given_model(tiny_train_dict, tmp_path):
    first = Trainer(config_from_dict(tiny_train_dict(output_dir=str(tmp_path / 'a'))),
                    log=quiet)
    save_model(first.model, tmp_path / 'imported')
    tuned = Trainer(config_from_dict(tiny_train_dict(
        output_dir=str(tmp_path / 'b'),
        model={'init_from': str(tmp_path / 'imported'), 'train_backbone': False,
               'overrides': {}})), log=quiet)
    for key, value in first.model.state_dict().items():
        torch.testing.assert_close(tuned.model.state_dict()[key], value)
    assert not any(p.requires_grad for p in tuned.model.backbone.parameters())
    assert all(p.requires_grad for p in tuned.model.denoiser.parameters())


def test_backbone_from_copies_only_the_backbone(tiny_train_dict, tmp_path):
    source = Trainer(config_from_dict(tiny_train_dict(output_dir=str(tmp_path / 'a'), seed=8)),
                     log=quiet)
    save_model(source.model, tmp_path / 'pretrained')
    target = Trainer(config_from_dict(tiny_train_dict(
        output_dir=str(tmp_path / 'b'), model={
            **tiny_train_dict()['model'], 'backbone_from': str(tmp_path / 'pretrained')})),
        log=quiet)
    for key, value in source.model.backbone.state_dict().items():
        torch.testing.assert_close(target.model.backbone.state_dict()[key], value)
    source_blocks = source.model.denoiser.blocks[0].attn.qkv.weight
    assert not torch.equal(target.model.denoiser.blocks[0].attn.qkv.weight, source_blocks)
    mismatched = tiny_train_dict(output_dir=str(tmp_path / 'c'))
    mismatched['model']['overrides']['backbone']['depth'] = 2
    mismatched['model']['backbone_from'] = str(tmp_path / 'pretrained')
    with pytest.raises(ValueError, match='different backbone'):
        Trainer(config_from_dict(mismatched), log=quiet)


def test_regression_variant_trains(tiny_train_dict):
    config = config_from_dict(tiny_train_dict(variant='regression', optim={
        'iterations': 2, 'batch_size': 2, 'lr': 1e-3}, validation={'interval': 2,
                                                                    'num_sets': 1,
                                                                    'num_views': 2}))
    trainer = Trainer(config, log=quiet)
    assert trainer.regression and trainer.model.config.diffusion.regression
    assert trainer.run().iteration == 2


def test_cli(tiny_train_dict, tmp_path, capsys):
    path = tmp_path / 'config.yaml'
    save_train_config(config_from_dict(tiny_train_dict(validation={'interval': 100,
                                                                   'num_sets': 0})), path)
    assert train_main([str(path), '--iterations', '2']) == 0
    captured = capsys.readouterr()
    assert 'done: 2 iterations' in captured.out and '[2/2] loss' in captured.out
    assert captured.err == ''  # no progress bar when stderr is not a terminal
    assert train_main([str(path), '--iterations', '4']) == 2  # existing run without --resume
    assert train_main([str(path), '--iterations', '4', '--resume']) == 0
    (tmp_path / 'bad.yaml').write_text('output_dir: x\ndata: {train: []}\n')
    assert train_main([str(tmp_path / 'bad.yaml')]) == 2
    assert train_main([str(tmp_path / 'missing.yaml')]) == 2
