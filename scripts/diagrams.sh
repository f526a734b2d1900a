#!/usr/bin/env bash
# The book's diagrams: book/src/diagrams/NAME.txt is the source, drawn in
# text (box-drawing characters, as the book's other diagrams); svgbob turns
# it into book/src/diagrams/NAME.svg, which the pages show. Both are
# committed: the text stays readable in a terminal and diffs well.
#
#   scripts/diagrams.sh           write every NAME.svg from its NAME.txt
#   scripts/diagrams.sh --check   write nothing: fail if an SVG is not what
#                                 its text makes (CI runs this)
#
# In a source, text in "double quotes" is shown as it is: svgbob would
# otherwise draw the / ( ) - _ of paths and options as lines and arcs. The
# quotes take two columns: the padding after them gives them back.
# Needs svgbob_cli (scripts/provision.sh installs it, at the version below).
set -euo pipefail
cd "$(dirname "$0")/.."

SVGBOB_VERSION=0.7.6
check=false
case "${1:-}" in
--check) check=true ;;
"") ;;
*) echo "usage: scripts/diagrams.sh [--check]" >&2 && exit 2 ;;
esac
if [ "$(svgbob_cli --version 2>/dev/null)" != "svgbob $SVGBOB_VERSION" ]; then
    echo "diagrams: needs svgbob_cli $SVGBOB_VERSION (scripts/provision.sh installs it)" >&2
    exit 1
fi

# draw TXT: the SVG of TXT on stdout. Font size 13: the monospace fonts a
# browser falls back on fit svgbob's 8-pixel columns there (14 overflows).
# svgbob leaves quoted text out of the picture's width: widen it to the
# longest line.
draw() {
    svgbob_cli --font-size 13 "$1" | python3 -c '
import re, sys
columns = max(len(line) for line in open(sys.argv[1], encoding="utf-8").read().splitlines())
svg = sys.stdin.read()
width = int(re.search(r"<svg [^>]*width=\"(\d+)\"", svg).group(1))
if (columns + 1) * 8 > width:
    svg = svg.replace(f"width=\"{width}\"", f"width=\"{(columns + 1) * 8}\"")
sys.stdout.write(svg)
' "$1"
}

stale=0
for txt in book/src/diagrams/*.txt; do
    svg=${txt%.txt}.svg
    if $check; then
        if ! cmp -s "$svg" <(draw "$txt"); then
            echo "diagrams: $svg is not what $txt makes (run scripts/diagrams.sh)" >&2
            stale=1
        fi
    else
        draw "$txt" >"$svg"
        echo "$svg"
    fi
done
exit $stale
