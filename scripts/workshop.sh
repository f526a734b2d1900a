#!/usr/bin/env bash
# Workshop mode: write a chapter's key step yourself; the chapter's own
# integration tests check it (book: "Workshop").
#
#   scripts/workshop.sh list           the exercises, and how far you are
#   scripts/workshop.sh check ID       build your version, run the chapter's tests (as root)
#   scripts/workshop.sh hint ID        a hint
#   scripts/workshop.sh solution ID    the difference between yours and the chapter's
#   scripts/workshop.sh reset ID       start again (yours is kept as workshop/work/ID.rs.old)
#   scripts/workshop.sh verify [--vm] [ID]   for maintainers and CI (below)
#
# ID is an exercise (01, 02a, ...) or a chapter (02: all of its exercises).
#
# How: an exercise is one function of a chapter, between its mdBook markers
# `// ANCHOR: NAME` and `// ANCHOR_END: NAME` (workshop/exercises.txt lists
# them). Your version lives in workshop/work/ID.rs, which git ignores; it
# starts as the chapter's function with its body replaced by todo!().
# `check` copies the workspace's sources to target/workshop/tree, puts your
# function there in place of the chapter's, and runs that chapter's real
# integration tests with cargo (target dir: target/workshop/target).
#
# `verify` shows that every exercise, unsolved, fails its check, that every
# chapter's own code (the reference solution) passes it, and that both
# versions are clean for rustfmt and clippy. The tests of an exercise for
# the other cgroup version than this machine's are skipped, or with --vm
# run in the cgroup v2 VM of scripts/vm-test.sh (unsolved: it must fail
# there; the chapter's own code is what vm-test.sh tests anyway).
set -euo pipefail

# Cargo's runner for the test programs (see workshop_cargo): run one as
# root, in a mount namespace of its own whose mounts propagate among
# themselves, as a systemd host's do, but not to the host. A step that gets
# mount propagation wrong then changes what the tests see, which they
# report, and never the real host; what it mounted vanishes with the test
# program. The program runs in a process group of its own: what a failed
# test left running in it (a server waiting for a client) is killed after.
if [ "${1:-}" = sandbox ]; then
    shift
    # shellcheck disable=SC2016 # for the inner shell
    inner='mount --make-rshared / || exit 1
        setsid "$@" & program=$!
        trap "kill -s KILL -- -$program 2>/dev/null; exit 130" INT TERM HUP
        wait $program; status=$?
        kill -s KILL -- -$program 2>/dev/null
        exit $status'
    sandbox=(unshare --mount --propagation private -- sh -c "$inner" sandbox "$@")
    if [ "$(id -u)" -eq 0 ]; then exec "${sandbox[@]}"; else exec sudo -E "${sandbox[@]}"; fi
fi

cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
source scripts/lib.sh

repo=$PWD
table=workshop/exercises.txt
work=workshop/work
ws=target/workshop # everything the checks make: tree/, target/, logs
tree=$ws/tree

# --- the exercises -----------------------------------------------------------

# The table lines of the exercises that ID names: ID itself, or with a
# chapter number every exercise of that chapter; "all": every exercise.
select_exercises() {
    local lines
    lines=$(awk -v want="$1" '!/^#/ && NF >= 9 &&
        (want == "all" || $1 == want || ($1 ~ ("^" want "[a-z]$")))' "$table")
    [ -n "$lines" ] || {
        echo "workshop: no exercise $1 (see scripts/workshop.sh list)" >&2
        exit 2
    }
    echo "$lines"
}

# This machine's cgroup version, as the table's `needs` column names it.
host_cgroup() {
    if [ "$(stat -fc %T /sys/fs/cgroup)" = cgroup2fs ]; then echo cgroup2; else echo cgroup1; fi
}

# Whether the chapter's tests run an exercise's code on this machine.
runs_here() { [ "$1" = - ] || [ "$1" = "$(host_cgroup)" ]; }

# The directory of FILE's crate when that crate is a workspace of its own,
# which the workspace's cargo commands do not reach (chapter 06's pause
# program, built by ch06's build script); nothing otherwise.
own_workspace() {
    local dir=${1%%/src/*}
    ! grep -q '^\[workspace\]' "$dir/Cargo.toml" 2>/dev/null || echo "$dir"
}

# The lines between `// ANCHOR: NAME` and `// ANCHOR_END: NAME` of FILE:
# the chapter's function, which is the reference solution.
region() {
    awk -v name="$2" '
        $0 ~ ("// ANCHOR_END: " name "$") { inside = 0 }
        inside { print }
        $0 ~ ("// ANCHOR: " name "$") { inside = 1 }' "$1"
}

# The exercise version of a function: the chapter's doc comment and
# signature, then a body made of the task (as comments) and todo!(), then
# the chapter's closing brace. Nothing of the chapter's body is kept.
skeleton() { # ID FILE ANCHOR TITLE
    region "$2" "$3" | awk -v id="$1" -v title="$4" -v task="workshop/exercises/$1/task.md" '
        { line[NR] = $0 }
        END {
            # Doc comment and attributes, up to the line that starts the fn.
            for (i = 1; i <= NR && line[i] !~ /^[ \t]*(pub[^ ]* )?(const )?(unsafe )?(extern "[A-Za-z]+" )?fn /; i++) print line[i]
            # The signature, up to the line that opens the body.
            for (; i <= NR; i++) { print line[i]; if (line[i] ~ /[{]$/) break }
            match(line[NR], /^[ \t]*/)
            indent = substr(line[NR], 1, RLENGTH) "    "
            print indent "// EXERCISE " id ": " title "."
            while ((getline text < task) > 0) print indent "// " text
            print indent "// Then run: scripts/workshop.sh check " id "   (stuck? scripts/workshop.sh hint " id ")"
            print indent "todo!(\"exercise " id ": " title "\")"
            print line[NR] # the closing brace
        }'
}

# Create the attendee's files that do not exist yet.
ensure_work_files() {
    local id crate file anchor test focus skip needs title
    mkdir -p "$work"
    while read -r id crate file anchor test focus skip needs title; do
        [ -e "$work/$id.rs" ] || skeleton "$id" "$file" "$anchor" "$title" >"$work/$id.rs"
    done < <(select_exercises all)
}

# Recorded passes: "ID SHA256" of the file that passed, in workshop/work/.solved.
sha() { sha256sum "$1" | cut -d' ' -f1; }
record_pass() {
    touch "$work/.solved"
    { grep -v "^$1 " "$work/.solved" || true; } >"$work/.solved.new"
    echo "$1 $(sha "$work/$1.rs")" >>"$work/.solved.new"
    mv "$work/.solved.new" "$work/.solved"
}

# not started (the file is the exercise as given), solved (this very file
# passed its check), or todo.
state() { # ID FILE ANCHOR TITLE
    if cmp -s "$work/$1.rs" <(skeleton "$@"); then
        echo "not started"
    elif grep -qx "$1 $(sha "$work/$1.rs")" "$work/.solved" 2>/dev/null; then
        echo solved
    else
        echo todo
    fi
}

# --- building and testing a copy of the workspace -----------------------------

# Make target/workshop/tree the workspace's sources with some functions
# replaced. Arguments: pairs "ID CONTENT_FILE"; a CONTENT_FILE "reference"
# is the chapter's own function (which must splice back exactly). Only files whose content
# changed are rewritten, so that cargo rebuilds exactly what changed.
# Writes $ws/map: "FILE FIRST LAST ID" for each replaced function.
prepare_tree() {
    local stage=$ws/stage id content crate file anchor test focus skip needs title first last f crate_dir
    rm -rf "$stage" && mkdir -p "$stage" "$tree"
    local sources=(Cargo.toml Cargo.lock chapters testkit)
    for f in rust-toolchain.toml rustfmt.toml .rustfmt.toml clippy.toml .cargo; do
        [ ! -e "$f" ] || sources+=("$f")
    done
    tar -cf - --exclude=target "${sources[@]}" | tar -xf - -C "$stage"
    : >"$ws/map"
    while [ $# -gt 0 ]; do
        id=$1 content=$2 && shift 2
        read -r _ crate file anchor test focus skip needs title < <(select_exercises "$id")
        if [ "$content" = reference ]; then
            # The chapter's own function, from this very copy (verify).
            content=$ws/reference.rs
            region "$stage/$file" "$anchor" >"$content"
            cp "$stage/$file" "$stage/$file.orig"
        fi
        awk -v name="$anchor" -v content="$content" '
            $0 ~ ("// ANCHOR_END: " name "$") { inside = 0 }
            !inside { print }
            $0 ~ ("// ANCHOR: " name "$") {
                inside = 1
                while ((getline text < content) > 0) print text
            }' "$stage/$file" >"$stage/$file.new"
        mv "$stage/$file.new" "$stage/$file"
        # An unsolved step leaves imports, variables and functions unused:
        # their warnings would give away what it needs. Allow them in its
        # crate (only there: the other crates build as they are).
        crate_dir=$stage/${file%%/src/*}
        if [ "$content" != "$ws/reference.rs" ] && ! grep -q '^\[lints' "$crate_dir/Cargo.toml"; then
            printf '\n[lints.rust]\nunused = "allow" # added by scripts/workshop.sh\n' >>"$crate_dir/Cargo.toml"
        fi
        if [ -e "$stage/$file.orig" ]; then
            # The same splice with the chapter's own function must give the
            # chapter back, byte for byte.
            cmp -s "$stage/$file" "$stage/$file.orig" || {
                echo "workshop: splicing $anchor back into $file did not give the same file" >&2
                return 1
            }
            rm "$stage/$file.orig" "$content"
        fi
        echo "$id $file $anchor" >>"$ws/map"
    done
    # Where each function ended up (once all are in: each splice moves the
    # lines of the others in the same file).
    while read -r id file anchor; do
        first=$(($(grep -n "// ANCHOR: $anchor\$" "$stage/$file" | cut -d: -f1) + 1))
        last=$(($(grep -n "// ANCHOR_END: $anchor\$" "$stage/$file" | cut -d: -f1) - 1))
        echo "$file $first $last $id"
    done <"$ws/map" >"$ws/map.new" && mv "$ws/map.new" "$ws/map"
    (cd "$stage" && find . -type f) | while read -r f; do
        cmp -s "$stage/$f" "$tree/$f" || { mkdir -p "$(dirname "$tree/$f")" && cp "$stage/$f" "$tree/$f"; }
    done
    (cd "$tree" && find . -type f) | while read -r f; do
        [ -e "$stage/$f" ] || rm -f "$tree/$f"
    done
    rm -rf "$stage"
}

# Compiler messages and panics name lines of the copy: name the lines of
# the attendee's file instead, and the rest of a file that holds one by its
# path in the copy (its lines moved). Other files are as in chapters/.
map_paths() {
    local file dir relative=(-e '')
    # Cargo in a workspace of its own names its files from there
    # (src/main.rs): give them their path in the copy first.
    while read -r file _; do
        dir=$(own_workspace "$file")
        [ -z "$dir" ] || relative+=(-e "s#\(^\|[ >]\)\(${file#"$dir"/}:[0-9]\)#\1$dir/\2#g")
    done <"$ws/map"
    sed "${relative[@]}" | awk -v map="$ws/map" '
        BEGIN { while ((getline l < map) > 0) { n++; split(l, f, " "); path[n] = f[1]; from[n] = f[2]; to[n] = f[3]; id[n] = f[4] } }
        {
            out = ""; rest = $0
            while (match(rest, /[A-Za-z0-9_.\/-]*chapters\/[A-Za-z0-9_.\/-]+[.]rs:[0-9]+/)) {
                hit = substr(rest, RSTART, RLENGTH)
                at = index(hit, "chapters/"); k = index(hit, ".rs:")
                file = substr(hit, at, k + 2 - at + 1); ln = substr(hit, k + 4) + 0
                new = hit # a file of the chapter as it is: same lines
                for (j = 1; j <= n; j++) {
                    if (file == path[j] && at == 1) new = "target/workshop/tree/" hit
                    if (file == path[j] && ln >= from[j] && ln <= to[j])
                        new = "workshop/work/" id[j] ".rs:" (ln - from[j] + 1)
                }
                out = out substr(rest, 1, RSTART - 1) new
                rest = substr(rest, RSTART + RLENGTH)
            }
            print out rest
        }'
}

# cargo, in the copy, with a target directory of its own: the copy's
# binaries must not replace the chapters' in target/debug. The test
# programs run through `workshop.sh sandbox` (as root, see the top).
workshop_cargo() {
    local host
    host=$(rustc -vV | sed -n 's/^host: //p' | tr '[:lower:]-' '[:upper:]_')
    # (9>&-: the lock of the command line below is not for cargo's children.)
    (cd "$tree" && env CARGO_TARGET_DIR="$repo/$ws/target" RUST_BACKTRACE=0 \
        "CARGO_TARGET_${host}_RUNNER=$repo/scripts/workshop.sh sandbox" cargo "$@" 9>&-)
}

# An attendee's step that goes wrong half-way (a group made, then a bad
# write) may leave behind what the next tests count as leftovers:
# containers' directories in the tests' data, cgroups of chapter 05. Remove
# those whose process is gone, as the chapters' `cleanup` does.
tidy() {
    local data=${PFS_TEST_DATA_DIR:-/var/cache/pods-from-scratch/test-data} dir
    for dir in "$data"/containers/* /sys/fs/cgroup/pods-from-scratch/* /sys/fs/cgroup/*/pods-from-scratch/*; do
        if [ ! -d "$dir" ] || [ -e "/proc/${dir##*/}" ]; then continue; fi
        case "$dir" in
            /sys/*) as_root rmdir "$dir" 2>/dev/null || true ;; # only if empty
            *) as_root rm -rf "$dir" ;;
        esac
    done
}

# Build and run the integration test TEST of CRATE in the copy (only the
# tests named in FOCUS, if given); the output goes to LOG. Returns 3 when it
# does not compile, 1 when a test fails.
run_tests() { # CRATE TEST SKIP LOG [FOCUS]
    local filter=(--skip explain) s
    [ "$3" = - ] || for s in ${3//,/ }; do filter+=(--skip "$s"); done
    # shellcheck disable=SC2206 # test names: no spaces, no globs
    [ -z "${5:-}" ] || filter=(--exact $5)
    if ! workshop_cargo test --quiet --no-run -p "$1" --test "$2" >"$4" 2>&1; then
        return 3
    fi
    tidy
    workshop_cargo test -p "$1" --test "$2" -- "${filter[@]}" >>"$4" 2>&1 || {
        tidy
        return 1
    }
}

# A short account of a failed test run.
explain_failure() { # LOG
    local failed todo said
    failed=$(sed -n 's/^test \(.*\) \.\.\. FAILED$/\1/p' "$1")
    todo=$(grep -o 'not yet implemented: exercise [0-9a-z]*' "$1" | sort -u | sed 's/.*exercise /    /' || true)
    # The chapter's program speaks for itself: "ch03: <what failed>", or a panic.
    said=$(awk '/^ch[0-9][0-9]: / { print } /^thread .main. .* panicked at / { print; getline; print }' "$1" |
        awk '!seen[$0]++ { print "  " $0 }' | head -6 | map_paths)
    echo "failed: $(echo "$failed" | grep -c .) test(s): $(echo "$failed" | paste -sd' ')"
    [ -z "$todo" ] || printf 'these exercises still reach their todo!():\n%s\n' "$todo"
    [ -z "$said" ] || printf 'what the chapter'"'"'s program said:\n%s\n' "$said"
    echo "the first failure:"
    awk '/^---- .* stdout ----$/ { n++ } /^failures:$/ && n { exit } n == 1 && shown < 25 { print "  " $0; shown++ }' "$1" |
        map_paths
}

# --- the commands ------------------------------------------------------------

cmd_list() {
    local id crate file anchor test focus skip needs title here
    ensure_work_files
    printf '%-4s  %-11s  %-6s  %s\n' ID STATE CRATE "WHAT YOU WRITE (in workshop/work/ID.rs)"
    while read -r id crate file anchor test focus skip needs title; do
        here=""
        runs_here "$needs" || here="  [$needs only: not on this machine, which has $(host_cgroup)]"
        printf '%-4s  %-11s  %-6s  %s: %s%s\n' "$id" "$(state "$id" "$file" "$anchor" "$title")" \
            "$crate" "$anchor" "$title" "$here"
    done < <(select_exercises all)
    echo
    echo "Then: scripts/workshop.sh check ID (hint ID, solution ID, reset ID)."
}

cmd_hint() {
    local id crate file anchor test focus skip needs title
    while read -r id crate file anchor test focus skip needs title; do
        echo "Hint for exercise $id ($title, in $file):"
        sed 's/^/  /' "workshop/exercises/$id/hint.md"
    done < <(select_exercises "$1")
}

cmd_reset() {
    local id crate file anchor test focus skip needs title
    ensure_work_files
    while read -r id crate file anchor test focus skip needs title; do
        if ! cmp -s "$work/$id.rs" <(skeleton "$id" "$file" "$anchor" "$title"); then
            cp "$work/$id.rs" "$work/$id.rs.old"
            echo "kept your version of $id as $work/$id.rs.old"
        fi
        skeleton "$id" "$file" "$anchor" "$title" >"$work/$id.rs"
        echo "reset $work/$id.rs"
    done < <(select_exercises "$1")
}

cmd_solution() {
    local id crate file anchor test focus skip needs title
    ensure_work_files
    while read -r id crate file anchor test focus skip needs title; do
        diff -u --label "yours: $work/$id.rs" --label "the chapter's: $file ($anchor)" \
            "$work/$id.rs" <(region "$file" "$anchor") || true
    done < <(select_exercises "$1")
}

cmd_check() {
    local id crate file anchor test focus skip needs title pairs=() log status=0 lines ids=() focuses=()
    ensure_work_files
    mapfile -t lines < <(select_exercises "$1")
    for line in "${lines[@]}"; do
        read -r id crate file anchor test focus skip needs title <<<"$line"
        pairs+=("$id" "$work/$id.rs")
        if runs_here "$needs"; then
            ids+=("$id")
            [[ " ${focuses[*]} " == *" $focus "* ]] || focuses+=("$focus")
        else
            echo "note: $id is for $needs machines (like the VM); this one has $(host_cgroup)," \
                "so chapter ${crate#ch}'s tests never run it here: check it in the VM."
        fi
    done
    [ ${#ids[@]} -gt 0 ] || exit 2
    mkdir -p "$ws"
    prepare_tree "${pairs[@]}"
    log=$ws/check-$1.log
    [ -d "$ws/target" ] || echo "(the first check also builds the dependencies: a minute or two)"
    # The test that shows the step most directly first: a wrong step fails
    # fast, with the message that matters. Then all of the chapter's tests.
    step "exercise ${ids[*]}: building your version, running chapter ${crate#ch}'s ${focuses[*]} (as root)"
    run_tests "$crate" "$test" "$skip" "$log" "${focuses[*]}" || status=$?
    if [ $status -eq 0 ]; then
        step "and now all of chapter ${crate#ch}'s tests: cargo test -p $crate --test $test (as root)"
        run_tests "$crate" "$test" "$skip" "$log" || status=$?
    fi
    if [ $status -eq 0 ]; then
        for id in "${ids[@]}"; do record_pass "$id"; done
        grep '^test result:' "$log" | tail -1
        echo "PASSED: chapter ${crate#ch}'s tests pass with your ${ids[*]}. Well done."
        return 0
    fi
    if [ $status -eq 3 ]; then
        echo "FAILED: your version does not compile:"
        map_paths <"$log" | grep -v '^ *Compiling '
    else
        echo "FAILED: chapter ${crate#ch}'s tests fail with your ${ids[*]}."
        for line in "${lines[@]}"; do
            read -r id crate file anchor test focus skip needs title <<<"$line"
            runs_here "$needs" && [ "$(state "$id" "$file" "$anchor" "$title")" = "not started" ] &&
                echo "($work/$id.rs is still the exercise as given: its todo!() panics. Write its body.)"
        done
        explain_failure "$log"
        echo "(the whole output: $log)"
    fi
    echo
    cmd_hint "$1"
    return 1
}

# One verification step: splice PAIRS, check fmt and clippy, then run the
# tests (only FOCUS, unless it is -), which must EXPECT: pass, fail, or
# none (fmt and clippy only).
verify_step() { # WHAT EXPECT CRATE TEST SKIP NEEDS VM FOCUS [PAIRS...]
    local what=$1 expect=$2 crate=$3 test=$4 skip=$5 needs=$6 vm=$7 focus=$8 started log result status=0 dir
    shift 8
    started=$(date +%s)
    log=$ws/verify-${what// /-}.log
    prepare_tree "$@" || return 1
    if ! (cd "$tree" && cargo fmt -p "$crate" --check) >"$log" 2>&1; then
        cat "$log" && echo "verify: FAILED: $what: not rustfmt-clean" && return 1
    fi
    # Not the chapters' own target directory: the copy's crates have the
    # same names and relative paths, so cargo would take what clippy built
    # from the copy as up to date for the real sources.
    if ! (cd "$tree" && CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$repo/$ws/target} \
        cargo clippy --quiet -p "$crate" --all-targets -- -D warnings) >>"$log" 2>&1 9>&-; then
        cat "$log" && echo "verify: FAILED: $what: clippy warnings" && return 1
    fi
    # A crate of the pairs that is a workspace of its own: the same, there.
    for dir in $(while [ $# -gt 0 ]; do
        read -r _ _ file _ < <(select_exercises "$1") && own_workspace "$file"
        shift 2
    done | sort -u); do
        if ! (cd "$tree/$dir" && cargo fmt --check) >>"$log" 2>&1; then
            cat "$log" && echo "verify: FAILED: $what: $dir is not rustfmt-clean" && return 1
        fi
        if ! (cd "$tree/$dir" && CARGO_TARGET_DIR="$repo/$ws/$(basename "$dir")-target" \
            cargo clippy --quiet -- -D warnings) >>"$log" 2>&1 9>&-; then
            cat "$log" && echo "verify: FAILED: $what: clippy warnings in $dir" && return 1
        fi
    done
    if [ "$expect" = none ]; then
        result="fmt and clippy clean"
    elif runs_here "$needs"; then
        run_tests "$crate" "$test" "$skip" "$log" "${focus#-}" || status=$?
    elif $vm; then
        # The VM harness builds the test programs of the copy and runs them
        # in a cgroup v2 VM (it shares the repository, target/ included).
        CARGO_TARGET_DIR="$repo/$ws/target" scripts/vm-test.sh \
            --manifest-path "$tree/Cargo.toml" -p "$crate" --test "$test" >>"$log" 2>&1 9>&- || status=$?
        [ $status -eq 0 ] || ! grep -q "vm-test: FAILED inside" "$log" || status=1
    else
        result="fmt and clippy clean; tests SKIPPED: they need $needs, this machine has $(host_cgroup) (--vm: run them in the VM)"
    fi
    if [ -z "${result:-}" ]; then
        [ $status -eq 0 ] && result=pass || result=fail
        if [ $status -eq 3 ] || [ "$result" != "$expect" ]; then
            tail -40 "$log"
            echo "verify: FAILED: $what: the tests should ${expect}, they ${result}ed (status $status, log $log)"
            return 1
        fi
        [ "$focus" = - ] || ! runs_here "$needs" || test+=" $focus" # (the VM runs them all)
        result="$crate --test $test ${result}ed as it should ($(grep -h '^test result' "$log" |
            tail -1 | sed 's/^test result: //; s/; 0 ignored.*//')), fmt and clippy clean"
    fi
    echo "verify: ok: $what: $result ($(($(date +%s) - started)) s)"
}

cmd_verify() {
    local vm=false id crate file anchor test focus skip needs title line chapter all ok=true
    local unsolved=() reference=() chapter_tests=() started
    [ "${1:-}" != --vm ] || { vm=true && shift; }
    started=$(date +%s)
    mkdir -p "$ws/verify"
    mapfile -t all < <(select_exercises "${1:-all}")
    for chapter in $(printf '%s\n' "${all[@]}" | awk '{ print $2 }' | uniq); do
        unsolved=() reference=()
        for line in "${all[@]}"; do
            read -r id crate file anchor test focus skip needs title <<<"$line"
            [ "$crate" = "$chapter" ] || continue
            chapter_tests=("$crate" "$test" "$skip") # for the chapter's steps below
            # The function must end with its closing brace, alone on its line.
            region "$file" "$anchor" | tail -1 | grep -qx '[[:space:]]*}' || {
                echo "verify: FAILED: the anchor $anchor in $file does not end with the function's brace"
                ok=false
            }
            skeleton "$id" "$file" "$anchor" "$title" >"$ws/verify/$id.rs"
            unsolved+=("$id" "$ws/verify/$id.rs")
            reference+=("$id" reference)
            # Unsolved, `check` fails at its first test, the focus: run that.
            verify_step "$id unsolved" fail "$crate" "$test" "$skip" "$needs" $vm "$focus" \
                "$id" "$ws/verify/$id.rs" || ok=false
        done
        # With every exercise of the chapter unsolved at once, as attendees
        # start: fmt and clippy only (the tests fail, as shown above).
        verify_step "$chapter all unsolved" none "${chapter_tests[@]}" - false - \
            "${unsolved[@]}" || ok=false
        # The chapter's own functions, put back by the same splice (which
        # must give the chapter, byte for byte): all the tests pass. (This
        # is the chapter as it is, which scripts/vm-test.sh also tests on
        # cgroup v2: no need for the VM here.)
        verify_step "$chapter reference" pass "${chapter_tests[@]}" - false - \
            "${reference[@]}" || ok=false
    done
    echo "verify: $(($(date +%s) - started)) s in all"
    if ! $ok; then
        echo "verify: FAILED (see above)" && exit 1
    fi
    echo "verify: all good"
}

# --- main ----------------------------------------------------------------------

usage() {
    sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
}

[ $# -ge 1 ] || usage
command=$1 && shift
case "$command" in
    list) cmd_list ;;
    hint | reset | solution | check)
        if [ $# -ne 1 ] || [[ ! $1 =~ ^[0-9a-z]+$ ]]; then usage; fi
        select_exercises "$1" >/dev/null || exit 2
        case "$repo" in *[[:space:]]*)
            echo "workshop: the repository's path must not contain spaces (cargo's runner setting cannot hold them)" >&2
            exit 2
            ;;
        esac
        mkdir -p "$ws"
        # One check at a time: they share target/workshop.
        exec 9>"$ws/lock"
        flock -n 9 || { echo "workshop: another workshop.sh is running" >&2 && exit 1; }
        "cmd_$command" "$1"
        ;;
    verify)
        [ "${1:-}" != --vm ] || [ -z "${2:-}" ] || select_exercises "$2" >/dev/null || exit 2
        [ "${1:-}" = --vm ] || [ -z "${1:-}" ] || select_exercises "$1" >/dev/null || exit 2
        mkdir -p "$ws"
        exec 9>"$ws/lock"
        flock -n 9 || { echo "workshop: another workshop.sh is running" >&2 && exit 1; }
        cmd_verify "$@"
        ;;
    *) usage ;;
esac
