"""The names sparkmice reserves: output columns, internal columns and the run folder's files.

The bottom module: it imports nothing from sparkmice, so every layer can use it.
"""

from __future__ import annotations

# columns of the imputed long table
IMPUTATION = "_imputation"  # 1..m, the chain; a partition column (`_imputation=k` folders)
ROW_ID = "_row_id"  # the stable id of an input row
BLOCK = "_block"  # the row block a row belongs to (inside the engines only)
RESERVED_COLUMNS = (IMPUTATION, ROW_ID, BLOCK)
INTERNAL_PREFIX = "__"  # columns the engines add and drop (e.g. `__task`, `__rows`)

# the run folder DIR: data in DIR/_imputation=k/, everything else under DIR/_sparkmice/
META = "_sparkmice"
CONFIG_FILE = "config.json"  # the resolved run: plan, options, engine, identity
RUN_TABLES = ("trace", "events", "timings")  # DIR/_sparkmice/<name>.csv
DONE_DIR = "done"  # done/chain_k.json: the chain's commit record (its attempt and files)
PROGRESS_DIR = "progress"  # one JSON per finished sweep
STATE_DIR = "state"  # a chain's imputed cells after each sweep (resume)
MODEL_DIR = "model"  # the chains' final models (impute-new): chain_k-<task>.npz, plan files
MODEL_PLAN = "plan.json"  # model/plan.json: the plan the models belong to (no levels)
MODEL_LEVELS = "levels.arrow"  # model/levels.arrow: each variable's Arrow type and levels
WHERE_DIR = "where"  # which cells the run imputes (R's `where`), one Parquet file per block
IMPUTED_SUFFIX = "_imputed"  # complete(indicator=True): `<column>_imputed`, True if imputed
DELTA_LOG = "_delta_log"
# version of the run folder's layout written in config.json: 2 = chains committed by
# done/chain_k.json manifests (Parquet) or the Delta log; absent = a plain partitioned table
FORMAT_VERSION = 2
