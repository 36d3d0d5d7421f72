#!/usr/bin/env bash
# Dry run of config/paper.yaml over all 15 scenes against a skeleton data root (empty scene folders
# and a placeholder checkpoint path): checks the DAG, the sheet and the schema, runs nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
grep -v '^#' config/paper_scenes.tsv | tail -n +2 | cut -f2 | while read -r p; do mkdir -p "$root/$p"; done
mkdir -p "$root/checkpoints" && touch "$root/checkpoints/sam_vit_h_4b8939.pth"
out=$(.venv/bin/snakemake -n --configfile config/paper.yaml \
  --config data_root="$root" "teacher={name: sam_vit_h, checkpoint: $root/checkpoints/sam_vit_h_4b8939.pth}" 2>&1) || { echo "$out"; exit 1; }
echo "$out" | tail -n 25
n=$(echo "$out" | awk '$1=="train_nerf" {print $2}' | head -1)
echo "train_nerf jobs in the paper DAG: ${n:-?}"
[ "${n:-0}" -eq 15 ] || { echo "expected 15 train_nerf jobs"; exit 1; }
