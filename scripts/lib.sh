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

# logged LOG COMMAND...: run COMMAND, its output (stdout and stderr) into
# LOG. On a terminal, a line on stderr shows meanwhile the seconds elapsed
# and LOG's last line, redrawn every second; elsewhere (CI, a pipe) nothing.
# On failure, LOG's last 20 lines. Returns COMMAND's status.
logged() {
    local log=$1 pid status=0 start=$SECONDS last
    shift
    "$@" >"$log" 2>&1 &
    pid=$!
    if [ -t 2 ]; then
        while kill -0 "$pid" 2>/dev/null; do
            last=$(tail -n 1 "$log" 2>/dev/null | tr -d '\r' | cut -c 1-60)
            printf '\r\033[K  %4ds  %s' $((SECONDS - start)) "$last" >&2
            sleep 1
        done
        printf '\r\033[K  done in %ds\n' $((SECONDS - start)) >&2
    fi
    wait "$pid" || status=$?
    [ "$status" -eq 0 ] || tail -n 20 "$log" >&2
    return "$status"
}

# Install the Debian packages of the list that are missing. Options for
# apt-get may come first (`apt_install -t bookworm-backports qemu-system-x86`).
apt_install() {
    local options=() missing=() package
    while [ "${1:-}" = -t ]; do
        options+=("$1" "$2")
        shift 2
    done
    for package in "$@"; do
        dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "ok installed" ||
            missing+=("$package")
    done
    [ ${#missing[@]} -gt 0 ] || return 0
    step "apt-get install ${options[*]} ${missing[*]}"
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -qq --no-install-recommends "${options[@]}" "${missing[@]}"
}

# "URI KEYRING" of the first Debian source in this machine's apt configuration
# that serves SUITE (KEYRING may be empty). We never name a mirror ourselves:
# we use the one the machine already trusts. Reads both formats:
# deb822 (.sources) and one-line (deb [signed-by=K] URI SUITE COMPONENTS).
apt_source() {
    local files=() file
    for file in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
        [ -f "$file" ] && files+=("$file")
    done
    awk -v suite="$1" '
        function flush() {
            if (!done && found && uri != "" && types ~ /(^| )deb( |$)/) { print uri, key; done = 1 }
            types = ""; uri = ""; key = ""; found = 0
        }
        FNR == 1 || /^[ \t]*$/ { flush() }
        /^Types:/     { types = $0 }
        /^URIs:/      { uri = $2 }
        /^Signed-By:/ { key = $2 }
        /^Suites:/    { for (i = 2; i <= NF; i++) if ($i == suite) found = 1 }
        /^deb[ \t]/ {
            line = $0; k = ""
            if (match(line, /\[[^]]*\]/)) {
                options = substr(line, RSTART + 1, RLENGTH - 2)
                line = substr(line, 1, RSTART - 1) substr(line, RSTART + RLENGTH)
                if (match(options, /signed-by=[^ ]+/)) k = substr(options, RSTART + 10, RLENGTH - 10)
            }
            split(line, f, " ")
            if (!done && f[3] == suite) { print f[2], k; done = 1 }
        }
        END { flush() }
    ' "${files[@]}" /dev/null
}

# The VM scripts need qemu (software emulation, TCG, is enough), debootstrap,
# mkfs.ext4, busybox and jq on the host. On this machine kind qemu-utils comes
# from Debian's backports suite and "Breaks" the stock qemu-system-x86, so
# qemu-system-x86 must come from backports too: we add that suite, from the
# same mirror and key as the machine's Debian source.
install_vm_tools() {
    apt_install debootstrap e2fsprogs busybox-static jq
    command -v qemu-system-x86_64 >/dev/null && return 0
    if dpkg-query -W -f='${Version}' qemu-utils 2>/dev/null | grep -q '~bpo'; then
        local codename uri key
        codename=$(. /etc/os-release && echo "$VERSION_CODENAME")
        if [ -z "$(apt_source "$codename-backports")" ]; then
            read -r uri key < <(apt_source "$codename")
            step "adding the $codename-backports suite from $uri"
            printf 'Types: deb\nURIs: %s\nSuites: %s-backports\nComponents: main\n%s' \
                "$uri" "$codename" "${key:+Signed-By: $key$'\n'}" |
                as_root tee /etc/apt/sources.list.d/pods-from-scratch-backports.sources >/dev/null
        fi
        apt_install -t "$codename-backports" qemu-system-x86
    else
        apt_install qemu-system-x86
    fi
}
