#!/bin/bash
# Context parallelism over NCCL on a host with several GPUs: the runs that no session with one GPU could make
# (docs/gpu.md "Context parallelism on GPUs"). Each run starts W processes of eaglet-gpu, one per GPU, sharing
# NCCL's unique id through a file; rank 0's JSON line is appended to OUT/cp-nccl.jsonl or OUT/cp-prefill-nccl.jsonl.
#   usage: cp-multi-gpu.sh [EAGLET_GPU] [OUT]   (defaults: ./eaglet-gpu and .)
# Then copy the .jsonl files to docs/gpu/ with the card's name in theirs; chapter 13 prints them.
E=${1:-./eaglet-gpu}
OUT=${2:-.}
G=$(nvidia-smi -L | wc -l)
S="--heads 28 --kv-heads 4 --head-dim 128 --json"
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | sort | uniq -c

# launch W FILE ARGS...: W processes, ranks 1 … W−1 in the background, rank 0 last; rank 0 writes FILE.
launch() {
    local w=$1 file=$2
    shift 2
    local id=/tmp/eaglet-cp-$$-$RANDOM.id
    rm -f "$id"
    echo "== W=$w $*" >&2
    for r in $(seq 1 $((w - 1))); do
        "$E" "$@" --world "$w" --rank "$r" --id-file "$id" > /dev/null 2>> "$OUT/cp-nccl.err" &
    done
    timeout 900 "$E" "$@" --world "$w" --rank 0 --id-file "$id" >> "$OUT/$file" 2>> "$OUT/cp-nccl.err"
    echo "rc=$?" >&2
    wait
    rm -f "$id"
    tail -n 1 "$OUT/$file" >&2
}

for w in 2 4 8; do
    [ "$w" -le "$G" ] || continue
    for st in ring zigzag llama3 usp; do launch "$w" cp-nccl.jsonl cp --strategy "$st" --seq 32768 $S; done
    [ $((28 % w)) -eq 0 ] && launch "$w" cp-nccl.jsonl cp --strategy ulysses --seq 32768 $S
    launch "$w" cp-nccl.jsonl cp --strategy zigzag --seq 131072 $S
    launch "$w" cp-nccl.jsonl cp --strategy zigzag --seq 131072 --no-overlap $S
done

# The Eagle2.5-8B-shaped decoder: sharded prefill against one GPU at 32K, then 512K tokens, which no single GPU
# holds (one layer, no reference; positions past the model's max_position_embeddings are a systems test only).
"$E" synth --preset eagle2.5-8b --vision-layers 1 --out /tmp/eaglet-8b
W=$G
[ "$W" -gt 8 ] && W=8
launch "$W" cp-prefill-nccl.jsonl cp-prefill --model /tmp/eaglet-8b --strategy zigzag --seq 32768 --layers 1,28 --json
launch "$W" cp-prefill-nccl.jsonl cp-prefill --model /tmp/eaglet-8b --strategy zigzag --seq 524288 --layers 1 \
    --no-reference --repeats 1 --json
