#!/usr/bin/env bash
# System packages the test suite uses, installed only where missing (needs
# root and apt-get): a Docker Engine and debootstrap for the docker backend's
# tests (no image registry is reachable, so their base image is built from
# Debian's mirror), Chromium for the HTML report's browser tests, and
# gitlab-ci-local (npm, pinned by ci/gitlab-ci-local/package-lock.json) with
# the rsync its isolated shell jobs use, for the GitLab pipeline's test.
# Starts dockerd when no engine answers. `nox -s tests` runs this; so does CI.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"

if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "system-deps: not root or no apt-get; docker/chromium tests skip where those are missing" >&2
  exit 0
fi

missing=()
command -v dockerd >/dev/null 2>&1 || missing+=(docker.io)
command -v debootstrap >/dev/null 2>&1 || missing+=(debootstrap)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v rsync >/dev/null 2>&1 || missing+=(rsync)
command -v npm >/dev/null 2>&1 || missing+=(nodejs npm)
if [ "${#missing[@]}" -gt 0 ]; then
  echo "system-deps: installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# gitlab-ci-local 4.65.1 exactly (later ones need a newer Node than 20), with the
# dependency versions of the lockfile, in a folder of its own; on PATH as a link.
gcl_dir=/opt/sandbox/gitlab-ci-local
gcl_want="$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["dependencies"]["gitlab-ci-local"])' "$here/ci/gitlab-ci-local/package.json")"
if [ "$(gitlab-ci-local --version 2>/dev/null || true)" != "$gcl_want" ]; then
  echo "system-deps: installing gitlab-ci-local $gcl_want (npm, into $gcl_dir)"
  rm -rf "$gcl_dir" && mkdir -p "$gcl_dir"
  cp "$here/ci/gitlab-ci-local/package.json" "$here/ci/gitlab-ci-local/package-lock.json" "$gcl_dir/"
  (cd "$gcl_dir" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
  ln -sf "$gcl_dir/node_modules/.bin/gitlab-ci-local" /usr/local/bin/gitlab-ci-local
  gitlab-ci-local --version >/dev/null
fi

if ! docker info >/dev/null 2>&1; then
  echo "system-deps: starting dockerd (log: /tmp/dockerd.log)"
  nohup dockerd > /tmp/dockerd.log 2>&1 &
  for _ in $(seq 1 60); do
    docker info >/dev/null 2>&1 && break
    sleep 1
  done
  if ! docker info >/dev/null 2>&1; then
    echo "system-deps: dockerd did not answer within 60s" >&2
    tail -n 20 /tmp/dockerd.log >&2 || true
    exit 1
  fi
fi
