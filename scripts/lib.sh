# Shared by the scripts in this folder (sourced, not run).
# shellcheck shell=bash

# Run a command as root: directly when we are root, through sudo otherwise.
as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    else
        sudo "$@"
    fi
}

# cargo installed by rustup lives here; a fresh login shell may not have it yet.
export PATH="$HOME/.cargo/bin:$PATH"

# Print a step heading.
step() {
    printf '\n==> %s\n' "$*"
}
