"""``raydiff-train`` data-parallel under torchrun: two CPU processes, gloo backend."""

import json
import os
from pathlib import Path
import shutil
import subprocess
import sys
import textwrap

import pytest
import torch
import torch.distributed

from raydiff_ros.model.checkpoint import load_model
from raydiff_ros.training.checkpointing import CHECKPOINT_DIR, list_checkpoints
from raydiff_ros.training.config import config_from_dict, save_train_config
from raydiff_ros.training.distributed import DistContext, from_environment, rank_entropy
from raydiff_ros.training.trainer import BatchKeys

RANKS = 2
TIMEOUT_S = 240

# Runs raydiff_ros.cli.train.main in every rank; each rank then dumps its final weights.
RANK_SCRIPT = textwrap.dedent("""
    import sys
    import torch
    from raydiff_ros.cli import train

    class DumpingTrainer(train.Trainer):
        def run(self):
            result = super().run()
            torch.save({'state': {name: value.detach().cpu().clone()
                                  for name, value in self.model.state_dict().items()},
                        'loss': result.last_loss, 'rank': self.dist.rank,
                        'world_size': self.dist.world_size},
                       f'{sys.argv[1]}/rank{self.dist.rank}.pt')
            return result

    train.Trainer = DumpingTrainer
    sys.exit(train.main(sys.argv[2:]))
""")


def test_context_from_environment():
    assert from_environment({}) == DistContext()
    assert not from_environment({'WORLD_SIZE': '1', 'RANK': '0'}).enabled
    context = from_environment({'WORLD_SIZE': '2', 'RANK': '1', 'LOCAL_RANK': '1'})
    assert context.enabled and not context.is_main and context.world_size == 2
    assert rank_entropy(DistContext()) == [] and rank_entropy(context) == [1]


def test_each_rank_draws_its_own_batches():
    plain = BatchKeys(10, 4, seed=3, start=0, stop=1).keys(0)
    assert BatchKeys(10, 4, 3, 0, 1, tuple(rank_entropy(DistContext()))).keys(0) == plain
    rank0, rank1 = (BatchKeys(10, 4, 3, 0, 1, (rank,)).keys(0) for rank in range(RANKS))
    assert rank0 != rank1


def launch(tmp_path: Path, repo_root: Path, config_path: Path, *options: str
           ) -> tuple[subprocess.CompletedProcess, list[dict]]:
    """Run RANK_SCRIPT on RANKS gloo processes; returns the result and each rank's dump."""
    if not (torch.distributed.is_available() and torch.distributed.is_gloo_available()):
        pytest.skip('torch.distributed with the gloo backend is not available in this torch')
    script = tmp_path / 'rank_main.py'
    script.write_text(RANK_SCRIPT)
    dumps = tmp_path / 'dumps'
    shutil.rmtree(dumps, ignore_errors=True)
    dumps.mkdir()
    env = {key: value for key, value in os.environ.items()
           if key not in ('WORLD_SIZE', 'RANK', 'LOCAL_RANK', 'MASTER_ADDR', 'MASTER_PORT')}
    env.update(OMP_NUM_THREADS='1', PYTHONPATH=os.pathsep.join(
        filter(None, [str(repo_root), env.get('PYTHONPATH', '')])))
    command = [sys.executable, '-m', 'torch.distributed.run', '--standalone',
               f'--nproc_per_node={RANKS}', str(script), str(dumps), str(config_path), *options]
    result = subprocess.run(command, env=env, cwd=tmp_path, capture_output=True, text=True,
                            timeout=TIMEOUT_S)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    ranks = [torch.load(dumps / f'rank{rank}.pt', weights_only=True) for rank in range(RANKS)]
    assert [r['world_size'] for r in ranks] == [RANKS] * RANKS
    assert all(torch.isfinite(torch.tensor(r['loss'])) for r in ranks)
    return result, ranks


def assert_identical_weights(ranks: list[dict], checkpoint: Path) -> None:
    saved = load_model(checkpoint).state_dict()
    for name, value in ranks[0]['state'].items():
        for other in ranks[1:]:
            assert torch.equal(value, other['state'][name]), name
        assert torch.equal(value, saved[name]), name


def write_config(tmp_path: Path, data: dict) -> tuple[Path, Path]:
    config = config_from_dict(data)
    path = tmp_path / 'train.yaml'
    save_train_config(config, path)
    return path, Path(config.output_dir)


@pytest.mark.slow
def test_two_gloo_ranks_train_identical_weights_and_resume(tiny_train_dict, tmp_path,
                                                            repo_root):
    config_path, output = write_config(tmp_path, tiny_train_dict(
        log_interval=2, checkpoint_interval=100,
        optim={'iterations': 4, 'batch_size': 2, 'lr': 1e-3, 'warmup_iterations': 2},
        validation={'interval': 100, 'num_sets': 1, 'num_views': 2}))
    result, ranks = launch(tmp_path, repo_root, config_path)
    assert [p.name for p in (output / CHECKPOINT_DIR).iterdir()] == ['step_00000004']
    [checkpoint] = list_checkpoints(output)
    assert_identical_weights(ranks, checkpoint)
    # rank 0 alone logs and writes: one record per logged iteration, one validation
    records = [json.loads(line) for line in (output / 'metrics.jsonl').read_text().splitlines()]
    assert [r['iteration'] for r in records if 'loss' in r] == [2, 4]
    assert [r['iteration'] for r in records if 'val_loss' in r] == [4]
    assert result.stdout.count('done: 4 iterations') == 1

    result, ranks = launch(tmp_path, repo_root, config_path, '--resume', '--iterations', '6')
    assert result.stdout.count('resumed from') == 1
    assert [p.name for p in list_checkpoints(output)] == ['step_00000004', 'step_00000006']
    assert_identical_weights(ranks, list_checkpoints(output)[-1])
    records = [json.loads(line) for line in (output / 'metrics.jsonl').read_text().splitlines()]
    assert [r['iteration'] for r in records if 'loss' in r] == [2, 4, 6]


@pytest.mark.slow
def test_two_gloo_ranks_share_the_feature_cache_built_by_rank_0(tiny_train_dict, tmp_path,
                                                                 repo_root):
    cache = tmp_path / 'features.pt'
    data = tiny_train_dict(checkpoint_interval=100,
                           optim={'iterations': 2, 'batch_size': 2, 'lr': 1e-3},
                           validation={'interval': 100, 'num_sets': 0})
    data['model'] = {**data['model'], 'train_backbone': False}
    data['data'] = {**data['data'], 'feature_cache': str(cache)}
    config_path, output = write_config(tmp_path, data)
    result, ranks = launch(tmp_path, repo_root, config_path)
    assert cache.is_file()
    assert result.stdout.count('feature cache built') == 1
    assert_identical_weights(ranks, list_checkpoints(output)[-1])
