#!/usr/bin/env bash
# An OCI bundle to try chapter 08 with: DIR/rootfs holds busybox and its
# commands, DIR/config.json is `runc spec`'s (the runtime spec's example
# configuration) with the process set to CMD and no terminal.
#
#   scripts/busybox-bundle.sh DIR [CMD [ARGS...]]    (CMD defaults to sh)
#   sudo ch08 run --bundle DIR NAME
set -euo pipefail
[ $# -ge 1 ] || { echo "usage: scripts/busybox-bundle.sh DIR [CMD [ARGS...]]" >&2; exit 2; }
dir=$1
shift
[ $# -gt 0 ] || set -- sh
command -v runc >/dev/null || { echo "busybox-bundle: runc is missing (scripts/provision.sh installs it)" >&2; exit 1; }
mkdir -p "$dir/rootfs/bin"
cp /bin/busybox "$dir/rootfs/bin/busybox"
# Relative links: an absolute one would name the host's busybox.
for applet in $("$dir/rootfs/bin/busybox" --list); do
    [ "$applet" = busybox ] || ln -sf busybox "$dir/rootfs/bin/$applet"
done
rm -f "$dir/config.json"
(cd "$dir" && runc spec)
python3 - "$dir/config.json" "$@" <<'PY'
import json, sys
path, args = sys.argv[1], sys.argv[2:]
with open(path) as f:
    config = json.load(f)
config["process"]["terminal"] = False
config["process"]["args"] = args
with open(path, "w") as f:
    json.dump(config, f, indent=2)
    f.write("\n")
PY
