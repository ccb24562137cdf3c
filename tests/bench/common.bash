# tests/bench/common.bash, sourced by a benchmark (not a *.sh: bench/run
# runs those): strict mode, the repository root as the working directory,
# and the build's kvrun and busybox fixture (BUILD, default build).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
build=${BUILD:-build}
kvrun=$PWD/$build/kvrun
rootfs=$PWD/$build/fixtures/busybox-bundle-rootfs
