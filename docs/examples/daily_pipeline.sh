#!/usr/bin/env bash
# A daily job on the shipped data (README, "In a pipeline"): day 1 imputes the rows so far,
# day 2 imputes the day's new rows with day 1's models (impute-new, no refit), then pools.
#
#   docs/examples/daily_pipeline.sh WORK          # M=5 MAXIT=10 by default
#   M=2 MAXIT=2 docs/examples/daily_pipeline.sh WORK
#
# PYTHON: the interpreter that has sparkmice installed (default: python).
set -euo pipefail
WORK=${1:?usage: daily_pipeline.sh WORK_FOLDER}
M=${M:-5}
MAXIT=${MAXIT:-10}
PYTHON=${PYTHON:-python}
sparkmice() { "$PYTHON" -m sparkmice "$@"; }   # the `sparkmice` command of this interpreter

mkdir -p "$WORK"
# The shipped 20,000 rows split by arrival: the last 1,000 came in "today".
"$PYTHON" - "$WORK" <<'PY'
import sys
from pathlib import Path

import pyarrow.parquet as pq

import sparkmice

rows = pq.read_table(Path(sparkmice.__file__).parent / "data" / "health_mar.parquet")
today = 1_000
pq.write_table(rows.slice(0, rows.num_rows - today), f"{sys.argv[1]}/yesterday.parquet")
pq.write_table(rows.slice(rows.num_rows - today), f"{sys.argv[1]}/today.parquet")
PY

# Day 1: impute everything so far; the run folder keeps each chain's final models.
sparkmice impute --input "$WORK/yesterday.parquet" --output "$WORK/day1" \
    --m "$M" --maxit "$MAXIT" --seed 1 --overwrite

# Day 2: only the new rows, with day 1's models (parameters fixed at each chain's last draw).
sparkmice impute-new --model "$WORK/day1" --input "$WORK/today.parquet" \
    --output "$WORK/day2" --overwrite

# Fan in: the analysis model on each of today's m imputations, pooled by Rubin's rules.
sparkmice pool --imputed "$WORK/day2" --formula "y ~ age + bp + smoke + C(diet)" \
    --family binomial --output "$WORK/pooled_day2.csv"
