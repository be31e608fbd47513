"""A chain's state between sweeps, written beside the output so a run can resume.

After each sweep every block writes only its imputed cells (the visited variables' values
at their missing rows) to `DIR/_sparkmice/state/chain_<k>/sweep_<t>/block_<b>.npy`; the
sweep's progress report (written after, atomically) carries the Newton warm starts and marks
the sweep complete. The random streams are fixed by (chain, iteration, variable, block), so a
chain resumed from sweep t continues exactly as an unbroken run would.
"""

from __future__ import annotations

import io

import numpy as np
from pyarrow import fs as pafs

from sparkmice.blocks import Block
from sparkmice.io.paths import resolve


def _at(uri: str) -> tuple[pafs.FileSystem, str]:
    location = resolve(uri)
    return location.filesystem, location.path


def _sweep_dir(uri: str, chain: int, iteration: int) -> str:
    return f"{uri.rstrip('/')}/chain_{chain}/sweep_{iteration:05d}"


def save_block(block: Block, uri: str, chain: int, iteration: int, js: list[int]) -> int:
    """Write the block's imputed cells after `iteration` and delete its file of two sweeps
    before (the previous sweep's stays until this one is marked complete); returns 1."""
    fs, path = _at(_sweep_dir(uri, chain, iteration))
    fs.create_dir(path, recursive=True)
    buffer = io.BytesIO()
    np.save(buffer, block.values[:, js][block.missing[:, js]])
    with fs.open_output_stream(f"{path}/block_{block.index}.npy") as f:
        f.write(buffer.getvalue())
    old_file = _at(_sweep_dir(uri, chain, iteration - 2))[1]
    old_file += f"/block_{block.index}.npy"
    if fs.get_file_info(old_file).type == pafs.FileType.File:
        fs.delete_file(old_file)
    return 1


def load_block(block: Block, uri: str, chain: int, iteration: int, js: list[int]) -> None:
    """Put the imputed cells saved after `iteration` back into the block."""
    fs, path = _at(_sweep_dir(uri, chain, iteration))
    with fs.open_input_stream(f"{path}/block_{block.index}.npy") as f:
        cells = np.load(io.BytesIO(f.read()))
    values = block.values[:, js]
    values[block.missing[:, js]] = cells
    block.values[:, js] = values
    block.cache = {}


def forget(uri: str, chain: int) -> None:
    """Delete all saved state of a chain (before it starts afresh)."""
    fs, path = _at(f"{uri.rstrip('/')}/chain_{chain}")
    if fs.get_file_info(path).type != pafs.FileType.NotFound:
        fs.delete_dir(path)
