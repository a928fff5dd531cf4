#!/bin/sh
# Propose the merged report NAME as a merge request when it changed
# (merged/diff.json says so): a branch map/<pipeline> with merged/NAME as
# reports/NAME, its commit message the diff. Pushed to origin, or, with
# SANDBOX_MAP_TOKEN (a project access token allowed to push), to the project
# over HTTPS; GitLab opens the merge request from the push options. Used by
# the GitLab pipeline's propose job (sandbox/pipeline.py).
#     sh ci/propose.sh NAME
set -eu
name=$1
changed=$(python3 -c 'import json, sys; print(str(json.load(open(sys.argv[1]))["changed"]).lower())' merged/diff.json)
if [ "$changed" != "true" ]; then
  echo "propose: reports/$name did not change; nothing to propose"
  exit 0
fi
branch="map/${CI_PIPELINE_ID:-$(date +%Y%m%d%H%M%S)}"
git checkout -q -B "$branch"
rm -rf "reports/$name"
mkdir -p reports
cp -R "merged/$name" "reports/$name"
git add -A "reports/$name"
{ echo "The map, re-run: $(tail -n 1 merged/diff.txt)"; echo; cat merged/diff.txt; } > merged/commit.txt
git -c user.name="sandbox map" -c user.email="map@users.noreply.gitlab.com" commit -q -F merged/commit.txt
remote=origin
if [ -n "${SANDBOX_MAP_TOKEN:-}" ]; then
  remote="https://oauth2:${SANDBOX_MAP_TOKEN}@${CI_SERVER_HOST}/${CI_PROJECT_PATH}.git"
fi
git push -q "$remote" "HEAD:refs/heads/$branch" -o merge_request.create \
  -o "merge_request.target=${CI_DEFAULT_BRANCH:-main}" -o "merge_request.title=The TensorFlow map, re-run" \
  -o "merge_request.description=sandbox diff of the committed report: see the commit message"
echo "propose: pushed $branch with reports/$name"
