"""A chain's state between sweeps, written beside the output so a run can resume.

After each sweep every block writes only its imputed cells (the visited variables' values
at their missing rows) to `DIR/_sparkmice/state/chain_<k>/sweep_<t>/block_<b>.npy`; the
sweep's progress report (written after, atomically) carries the Newton warm starts and marks
the sweep complete. The random streams are fixed by (chain, iteration, variable, block), so a
chain resumed from sweep t continues exactly as an unbroken run would.

A fresh chain records what its state belongs to (`chain_<k>/format.json`: the state format
and the input's rows, blocks and missing cells); before a resumed chain runs, the driver
checks that record and every saved file (`check_resumable`), so that a missing, truncated
or foreign state is one clear error before anything is written.
"""

from __future__ import annotations

import io
import json
from typing import Any

import numpy as np
from pyarrow import fs as pafs

from sparkmice.blocks import Block
from sparkmice.io.paths import filesystem_path
from sparkmice.plan import InputError, Plan

FORMAT = 1  # the layout of the saved state; another value is another sparkmice version's


class StateError(InputError):
    """A chain cannot resume from its saved state; the message says why and what to do."""


def _sweep_dir(uri: str, chain: int, iteration: int) -> str:
    return f"{uri.rstrip('/')}/chain_{chain}/sweep_{iteration:05d}"


def save_block(block: Block, uri: str, chain: int, iteration: int, js: list[int]) -> int:
    """Write the block's imputed cells after `iteration` and delete its file of two sweeps
    before (the previous sweep's stays until this one is marked complete); returns 1."""
    fs, path = filesystem_path(_sweep_dir(uri, chain, iteration))
    fs.create_dir(path, recursive=True)
    buffer = io.BytesIO()
    np.save(buffer, block.values[:, js][block.missing[:, js]])
    with fs.open_output_stream(f"{path}/block_{block.index}.npy") as f:
        f.write(buffer.getvalue())
    old_file = filesystem_path(_sweep_dir(uri, chain, iteration - 2))[1]
    old_file += f"/block_{block.index}.npy"
    if fs.get_file_info(old_file).type == pafs.FileType.File:
        fs.delete_file(old_file)
    return 1


def load_block(block: Block, uri: str, chain: int, iteration: int, js: list[int]) -> None:
    """Put the imputed cells saved after `iteration` back into the block."""
    fs, path = filesystem_path(_sweep_dir(uri, chain, iteration))
    with fs.open_input_stream(f"{path}/block_{block.index}.npy") as f:
        cells = np.load(io.BytesIO(f.read()))
    values = block.values[:, js]
    values[block.missing[:, js]] = cells
    block.values[:, js] = values
    block.cache = {}


def forget(uri: str, chain: int) -> None:
    """Delete all saved state of a chain (before it starts afresh)."""
    fs, path = filesystem_path(f"{uri.rstrip('/')}/chain_{chain}")
    if fs.get_file_info(path).type != pafs.FileType.NotFound:
        fs.delete_dir(path)


def _record(plan: Plan) -> dict[str, Any]:
    """What a chain's state belongs to: the format, the input's rows and blocks, and the
    missing cells of each visited variable (whose imputed values the state holds)."""
    return {
        "format": FORMAT,
        "n_rows": plan.n_rows,
        "n_blocks": plan.n_blocks,
        "missing": {n: plan.variable(n).n_missing for n in plan.visit_sequence},
    }


def start(uri: str, chain: int, plan: Plan) -> None:
    """Forget a chain's saved state and record what its new state will belong to."""
    forget(uri, chain)
    fs, path = filesystem_path(f"{uri.rstrip('/')}/chain_{chain}")
    fs.create_dir(path, recursive=True)
    with fs.open_output_stream(f"{path}/format.json") as f:
        f.write(json.dumps(_record(plan)).encode())


def check_resumable(uri: str, chain: int, iteration: int, plan: Plan) -> None:
    """Refuse (StateError) to resume `chain` after `iteration` unless its state is this
    version's, of this input, and whole: every saved file a complete array, together one
    value per missing cell of the visited variables."""
    fs, root = filesystem_path(f"{uri.rstrip('/')}/chain_{chain}")
    sweep = filesystem_path(_sweep_dir(uri, chain, iteration))[1]

    def refuse(problem: str) -> StateError:
        return StateError(
            f"cannot resume chain {chain} after sweep {iteration}: its saved state ({sweep}) "
            f"{problem}; rerun with overwrite (--overwrite) instead of resume to start it "
            f"afresh (the imputed table is untouched)."
        )

    try:
        with fs.open_input_stream(f"{root}/format.json") as f:
            record = json.loads(f.read())
    except FileNotFoundError:
        raise refuse("has no format record (written by another sparkmice version)") from None
    except ValueError:
        raise refuse("has a damaged format record") from None
    if record.get("format") != FORMAT:
        raise refuse(
            f"has format {record.get('format')!r}, this sparkmice version's is {FORMAT}: it was "
            f"written by another sparkmice version"
        )
    expected = _record(plan)
    if any(record.get(k) != expected[k] for k in ("n_rows", "n_blocks", "missing")):
        raise refuse("belongs to another input (other rows, blocks or missing cells)")
    files = fs.get_file_info(pafs.FileSelector(sweep, allow_not_found=True))
    cells = 0
    for info in files:
        if not info.base_name.endswith(".npy"):
            continue
        try:
            cells += _cells(fs, info)
        except ValueError:
            raise refuse(f"is damaged: {info.base_name} is truncated or not an array") from None
    if cells != sum(expected["missing"].values()):
        raise refuse(
            f"is incomplete: it holds {cells} imputed cells, the input has "
            f"{sum(expected['missing'].values())} (a block's file is missing)"
        )


def _cells(fs: pafs.FileSystem, info: pafs.FileInfo) -> int:
    """The values in a saved block file, from its header; ValueError unless the file is a
    whole 1-d float64 array."""
    with fs.open_input_stream(info.path) as f:
        head = io.BytesIO(f.read(4096))
    if np.lib.format.read_magic(head) == (1, 0):
        shape, _, dtype = np.lib.format.read_array_header_1_0(head)
    else:
        shape, _, dtype = np.lib.format.read_array_header_2_0(head)
    if dtype != np.float64 or len(shape) != 1:
        raise ValueError(info.path)
    if info.size != head.tell() + shape[0] * dtype.itemsize:
        raise ValueError(info.path)
    return int(shape[0])
