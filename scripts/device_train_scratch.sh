#!/usr/bin/env bash
# The four classifier families trained from scratch, side by side on one GPU machine (the
# `device` tool's), from a packed copy of the clips; their best checkpoints come back in $OUT.
#
#   here:   python -m training pack-clips --data ../shared/data --out runs/packed
#   there:  bash scripts/device_train_scratch.sh        (carry runs/packed; writes $OUT)
#   here:   cat <files>/scratch_runs.tar.part-* | tar -x -C runs/
#           python -m training evaluate --run-dir runs/gpu/r2plus1d --data ../shared/data
#
# That machine's Python has torch, OpenCV and tqdm but not PyAV, which `python -m training`
# imports, so the runs start from the library's functions rather than the command line.
set -u
DATA=${DATA:-runs/packed}
EPOCHS=${EPOCHS:-150}
BUDGET_S=${BUDGET_S:-450}  # every run is stopped by then, whatever it has done
WORKERS=${WORKERS:-3}      # clip-preparing processes per run: 4 runs x (1 + 3) = 16 cores
DEVICE=${DEVICE:-cuda}
MAX_TRAIN_CLIPS=${MAX_TRAIN_CLIPS:-0}  # > 0 for a smoke run only
FAMILIES=${FAMILIES:-"r2plus1d csn resnet_lstm vgg_lstm"}
OUT=${OUT:-runs/device_out}
PYTHON=${PYTHON:-python3}
export PYTHONUNBUFFERED=1 DATA EPOCHS WORKERS DEVICE MAX_TRAIN_CLIPS
mkdir -p runs/gpu "$OUT"
started=$(date +%s)
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader 2>/dev/null

# Decode every clip once into the cache, on all cores, before the runs share it.
$PYTHON - <<'EOF'
import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from training.classify.clip_cache import ClipCache
from training.classify.ucf101 import discover_clips

cache = ClipCache(Path(".cache/clips"), 128)
records = discover_clips(Path(os.environ["DATA"]))
with ProcessPoolExecutor(os.cpu_count()) as pool:
    list(pool.map(cache.frames, records, chunksize=8))
print(f"cached {len(records)} clips")
EOF
echo "cache: $(( $(date +%s) - started )) s"

# One run's code, given with -c: loader workers are spawned, and a spawned child cannot
# re-read a main module that came on stdin.
read -r -d '' TRAIN_ONE <<'EOF'
import json
import os
import time
from pathlib import Path

from training.classify.loops import train
from training.classify.models.registry import get_family
from training.classify.training import TrainOptions

name = os.environ["FAMILY"]
family = get_family(name)
started = time.perf_counter()
result = train(
    TrainOptions(
        name,
        data=Path(os.environ["DATA"]),
        run_dir=Path("runs/gpu") / name,
        epochs=int(os.environ["EPOCHS"]),
        lr=family.lr,
        batch_size=family.batch_size,
        device=os.environ["DEVICE"],
        threads=1,
        loader_workers=int(os.environ["WORKERS"]),
        max_train_clips=int(os.environ["MAX_TRAIN_CLIPS"]),
    )
)
print(json.dumps({**result, "wall_s": round(time.perf_counter() - started, 1)}))
EOF
for family in $FAMILIES; do
  FAMILY=$family timeout "$BUDGET_S" $PYTHON -c "$TRAIN_ONE" > "runs/gpu/$family.log" 2>&1 &
done
wait
echo "training: $(( $(date +%s) - started )) s"

# Bring back each run's best checkpoint without its optimiser state (a third of the bytes),
# with its options and every epoch's validation figure, as runs/gpu/<family>/ here.
$PYTHON - <<'EOF'
import shutil
from pathlib import Path

import torch

for best in Path("runs/gpu").glob("*/best.pt"):
    back = Path("runs/back/gpu") / best.parent.name
    back.mkdir(parents=True, exist_ok=True)
    state = torch.load(best, map_location="cpu", weights_only=False)
    state.pop("optimiser", None)
    torch.save(state, back / "best.pt")
    for name in ("history.json", "options.json"):
        shutil.copy(best.parent / name, back / name)
EOF
for family in $FAMILIES; do
  echo "== $family: $(tr '\r' '\n' < "runs/gpu/$family.log" | grep -E '^epoch [0-9]+:' | tail -n 2 | tr '\n' ' ')"
  tr '\r' '\n' < "runs/gpu/$family.log" | grep -v '^epoch\|caching' | tail -n 4
done
tar -C runs/back -cf - gpu | split -b 15M - "$OUT/scratch_runs.tar.part-"
ls -la "$OUT"
echo "total: $(( $(date +%s) - started )) s"
