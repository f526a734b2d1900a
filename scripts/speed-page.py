#!/usr/bin/env python3
"""The figures of the book's "How fast is it" page, from a scripts/bench.sh --json run.

    scripts/speed-page.py [JSON]           write book/src/speed/table.md and bench.svg
    scripts/speed-page.py --check [JSON]   write nothing: fail if they are not what
                                           JSON makes (CI runs this)

JSON defaults to book/src/speed/bench.json, the committed run. Any rows are
drawn, in the order bench.sh ran them: the first command of a row is ours,
the others are the peers it is compared with. Same JSON, same files: no
date or randomness of its own.
"""

import json
import re
import sys
from html import escape
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SPEED = ROOT / "book" / "src" / "speed"

# Short names for the commands' scripts (bench.sh writes them to its
# temporary directory): what each one runs.
SCRIPTS = {
    "iproute2": "the same steps with ip",
    "curl-tar": "curl | tar xz",
    "skopeo-umoci": "skopeo copy + umoci unpack",
    "ours-pod-create": "ch06 pod create + 3 run",
    "podman-pod-create": "podman pod create + 3 run",
}


def label(c):
    """A short name for a command of a row: its own label, or one made from
    its command line."""
    if "label" in c:
        return c["label"]
    words = c["command"].split()
    if words[0] == "env":  # env VAR=VALUE... PROGRAM ...
        words = [w for w in words[1:] if "=" not in w] or words
    if words[0] == "sh" and len(words) > 1:
        name = Path(words[1]).stem
        return SCRIPTS.get(name, name)
    if words[0].startswith("target/release/"):
        program = Path(words[0]).name
        subcommand = [w for w in words[1:3] if not w.startswith("-")]
        if program == "ch06" and subcommand[:1] == ["pod"]:
            return " ".join([program] + subcommand[:2])
        return " ".join([program] + subcommand[:1])
    if words[0] == "podman":
        return " ".join(words[:3])
    return words[0] + (" " + words[1] if words[1:2] == ["-P"] else "")


def value(number, unit):
    if unit == "ms":
        return f"{number:.1f} ms" if number < 100 else f"{number:,.0f} ms"
    return f"{number:,.0f} {unit}"


def table(bench):
    machine = bench["machine"]
    settings = bench.get("settings", {})
    lines = [
        f"Measured on {bench['date']}: {machine['cpu']}, {machine['cores']} cores, "
        f"Linux {machine['kernel']}, cgroup {machine['cgroup']}"
        + (f"; RUNS={settings['RUNS']}, SLOW_RUNS={settings['SLOW_RUNS']}." if settings else "."),
        "",
        "| Row | Ours: median (middle half) | Peer: median (middle half) | Ratio |",
        "| --- | --- | --- | ---: |",
    ]
    for row in bench["rows"]:
        ours, *peers = row["commands"]
        unit = row["unit"]

        def cell(c):
            if c["q1"] == c["q3"]:
                return value(c["median"], unit)
            low, high = value(c["q1"], unit).split()[0], value(c["q3"], unit)
            return f"{value(c['median'], unit)} ({low}–{high})"

        def name(c):  # the command's name, and its figures below
            return f"{label(c)}<br>{cell(c)}".replace("|", "\\|")

        for peer, ratio in zip(peers, row["ratios"]):
            lines.append(
                f"| {row['row']} | {name(ours)} | {name(peer)} | {ratio:.2f} |"
            )
    return "\n".join(lines) + "\n"


def chart(bench):
    """Per row, a bar per command, each row scaled to its slowest median; the
    middle half of the runs as a whisker (cut at the chart's edge)."""
    width, left, bar_area = 760, 220, 380
    bar, gap, head = 16, 4, 22
    y = 34
    parts = []
    for row in bench["rows"]:
        unit = row["unit"]
        top = max(c["median"] for c in row["commands"])
        edge = left + bar_area * 1.2
        ratios = ", ".join(f"{r:.2f}" for r in row["ratios"])
        parts.append(
            f'<text x="8" y="{y + 14}" class="row">{escape(row["row"])}</text>'
            f'<text x="{left}" y="{y + 14}" class="note">ratio ours / peer: {ratios}'
            f' ({row["runs"]} run{"s" if row["runs"] != 1 else ""})</text>'
        )
        y += head
        for i, c in enumerate(row["commands"]):
            length = max(1.0, bar_area * c["median"] / top)
            kind = "ours" if i == 0 else "peer"
            parts.append(
                f'<text x="{left - 8}" y="{y + 12}" class="label">{escape(label(c))}</text>'
                f'<rect x="{left}" y="{y}" width="{length:.1f}" height="{bar}" class="{kind}"/>'
            )
            if c["q1"] != c["q3"]:  # the middle half of the runs, as a whisker
                x1 = left + bar_area * c["q1"] / top
                x3 = min(edge, left + bar_area * c["q3"] / top)
                mid = y + bar / 2
                cap = f"M{x3:.1f} {mid - 4}V{mid + 4}" if x3 < edge else ""
                parts.append(
                    f'<path d="M{x1:.1f} {mid}H{x3:.1f}M{x1:.1f} {mid - 4}V{mid + 4}{cap}"'
                    ' class="spread"/>'
                )
            end = max(left + length, min(edge, left + bar_area * c["q3"] / top))
            parts.append(
                f'<text x="{end + 6:.1f}" y="{y + 12}" class="value">'
                f'{escape(value(c["median"], unit))}</text>'
            )
            y += bar + gap
        y += 12
    height = y + 8
    machine = bench["machine"]
    title = (f"Median time: ours in blue, peers in grey; each row scaled to its slowest. "
             f"{bench['date']}, {machine['cores']} cores")
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="13">\n'
        "<style>"
        ".row{font-weight:bold}.note,.title{fill:#555}.label{text-anchor:end}"
        ".ours{fill:#2f6db5}.peer{fill:#b0b0b0}.spread{stroke:#000;stroke-width:1;fill:none}"
        "</style>\n"
        f'<rect width="{width}" height="{height}" fill="#fff"/>\n'
        f'<text x="8" y="18" class="title">{escape(title)}</text>\n'
        + "\n".join(parts)
        + "\n</svg>\n"
    )


def main(args):
    check = "--check" in args
    args = [a for a in args if a != "--check"]
    source = Path(args[0]) if args else SPEED / "bench.json"
    bench = json.loads(source.read_text())
    outputs = {SPEED / "table.md": table(bench), SPEED / "bench.svg": chart(bench)}
    stale = 0
    for path, text in outputs.items():
        if check:
            if not path.exists() or path.read_text() != text:
                print(f"speed-page: {path.relative_to(ROOT)} is not what {source} makes "
                      "(run scripts/speed-page.py)", file=sys.stderr)
                stale = 1
        else:
            path.write_text(text)
            print(path.relative_to(ROOT))
    return stale


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
