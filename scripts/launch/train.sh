#!/usr/bin/env bash
# Usage: [NPROC=8] [NNODES=1 NODE_RANK=0 MASTER_ADDR=host] train.sh PRESET DATA_DIR RUN_DIR [extra args]
set -euo pipefail
preset=$1 data=$2 out=$3; shift 3
NPROC=${NPROC:-1}
if [ "$NPROC" -eq 1 ] && [ "${NNODES:-1}" -eq 1 ]; then
  exec sg2img train --preset "$preset" --data "$data" --out "$out" --resume auto "$@"
fi
exec torchrun --nproc_per_node="$NPROC" --nnodes="${NNODES:-1}" --node_rank="${NODE_RANK:-0}" \
  --master_addr="${MASTER_ADDR:-127.0.0.1}" --master_port="${MASTER_PORT:-29500}" \
  -m sg2img train --preset "$preset" --data "$data" --out "$out" --resume auto "$@"
