#!/usr/bin/env bash
# The whole test suite on a fresh Debian machine: a Vulkan driver (Mesa lavapipe when there is
# no GPU driver), the test models, then every test of the workspace in one release build.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! ls /usr/share/vulkan/icd.d/*.json >/dev/null 2>&1 || ! ldconfig -p | grep -q libvulkan.so.1; then
  echo "installing Mesa lavapipe (no Vulkan driver found)" >&2
  sudo_cmd=""; [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq mesa-vulkan-drivers libvulkan1 >/dev/null
fi

scripts/fetch-models.sh
# Mesa's Vulkan loader complains on every device open when this is unset (headless machines).
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-$(mktemp -d)}"
cargo test --release --workspace "$@"
