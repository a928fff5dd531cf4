#!/bin/sh
# What changed between the committed report OLD and the merged one NEW:
# OUT/diff.json for machines ("changed": true or false, from `sandbox diff
# --json`) and OUT/diff.txt for people. Without a committed report, the whole
# report is new. Used by the CI pipelines (sandbox/pipeline.py, matrix.yml).
#     sh ci/diff.sh OLD NEW OUT
set -eu
old=$1
new=$2
out=$3
mkdir -p "$out"
if [ -f "$old/results.json" ]; then
  # exit 1: something newly fails, which is a finding of the run, not an error of this step
  status=0
  sandbox diff "$old" "$new" --json > "$out/diff.json" || status=$?
  [ "$status" -le 1 ] || exit "$status"
  status=0
  sandbox diff "$old" "$new" > "$out/diff.txt" || status=$?
  [ "$status" -le 1 ] || exit "$status"
else
  printf '{"old": "%s", "new": "%s", "changed": true, "newly_failing": false, "changes": []}\n' "$old" "$new" > "$out/diff.json"
  echo "no committed report in $old: the whole report is new" > "$out/diff.txt"
fi
echo "diff against $old: $(tail -n 1 "$out/diff.txt")"
