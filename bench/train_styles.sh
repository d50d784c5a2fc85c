#!/usr/bin/env bash
# Train the shipped styles (both variants) from shared data, then score them and draw the sheet.
#   bench/train_styles.sh STYLES_DIR CONTENT_DIR HELDOUT_DIR [SECONDS] [PARALLEL] [OUT]
# On one H100, several trainings share the GPU: PARALLEL=6 runs six at once. Every run records
# its exact command, steps, wall time, machine and final losses in OUT/<name>/meta.json.
set -euo pipefail
styles=${1:?style images folder}; content=${2:?training photos}; heldout=${3:?held-out photos}
seconds=${4:-120}; parallel=${5:-6}; out=${6:-models}; size=${SIZE:-256}; batch=${BATCH:-8}
py=${PYTHON:-python3}
jobs=()
for image in "$styles"/*.jpg; do
  for variant in full lite; do jobs+=("$(basename "$image" .jpg) $variant $image"); done
done
train_one() {
  set -- $1
  "$py" -m stylefusion train --style-image "$3" --content "$content" --name "$1" --variant "$2" \
    --seconds "$seconds" --size "$size" --batch-size "$batch" --output "$out" --overwrite -q
}
export -f train_one; export py content seconds size batch out
printf '%s\n' "${jobs[@]}" | xargs -P "$parallel" -I{} bash -c 'train_one "{}"'
"$py" bench/yardstick.py --models-dir "$out" --photos "$heldout" --styles-dir "$styles"
