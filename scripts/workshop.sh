#!/usr/bin/env bash
# Workshop mode (book: "Workshop"): the engine is `cargo xtask workshop`
# (xtask/); this wrapper keeps the older command working.
#
#   scripts/workshop.sh list | check ID | hint ID | solution ID | reset ID | verify [--vm] [ID]
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH" # cargo installed by rustup, in a fresh login shell
exec cargo xtask workshop "$@"
