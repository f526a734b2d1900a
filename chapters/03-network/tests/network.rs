//! Chapter 03 against the real kernel: run as root (`sudo scripts/test.sh`).
//!
//! Safety: every test first makes a throwaway network namespace that plays
//! "the host" ([`NetSandbox`]), and runs `ch03` inside it. The bridge, the
//! veths and the routes live there; the real host's network is never
//! touched, and packets go only to addresses inside those namespaces.

use std::process::{Output, Stdio};

use testkit::{assert_in_order, error_line, stderr, stdout, NetSandbox, NetState};

const CH03: &str = env!("CARGO_BIN_EXE_ch03");

/// A shell line that prints the container's eth0 line, e.g.
/// `3: eth0    inet 10.200.0.2/24 ...`.
const PRINT_ETH0: &str = "ip -o -4 addr show dev eth0";

/// A shell command that prints what one TCP client sends to PORT (append
/// the port). Its stdin is the container's, which the test keeps open and
/// idle: with stdin at EOF, nc may hang up before the data arrives. The
/// timeout turns a lost connection into a failed test, not a hung one.
const LISTEN: &str = "timeout 20 busybox nc -l -p";

/// The IPv4 address in a line from [`PRINT_ETH0`].
fn address_in(line: &str) -> String {
    let after = line
        .split_once("inet ")
        .unwrap_or_else(|| panic!("no address in {line:?}"))
        .1;
    after.split('/').next().unwrap().to_string()
}

/// `ch03 run ARGS` inside the sandbox.
fn ch03(sandbox: &NetSandbox, args: &[&str]) -> Output {
    sandbox.run(CH03, &[&["run"], args].concat())
}

/// Send `text` to ADDR:PORT over TCP from the sandbox host, retrying while
/// the listener is not up yet.
fn send_from_host(sandbox: &NetSandbox, address: &str, port: u16, text: &str) {
    let script = format!(
        "for i in $(seq 50); do echo {text} | busybox nc {address} {port} && exit 0; sleep 0.1; done; exit 1"
    );
    let output = sandbox.run("sh", &["-c", &script]);
    assert!(
        output.status.success(),
        "the host could not reach {address}:{port}: {}",
        stderr(&output)
    );
}

/// The lines of the sandbox's leases file (none when it is absent).
fn leases(sandbox: &NetSandbox, bridge: &str) -> String {
    std::fs::read_to_string(sandbox.state_dir.join("leases").join(bridge)).unwrap_or_default()
}

/// After every container exited: no lease, no name, no veth is left; and
/// once `ch03 cleanup --all` removed the bridge, the sandbox is exactly as
/// it was before the test.
fn assert_nothing_left(sandbox: &NetSandbox, before: &NetState, env: &[(&str, &str)]) {
    let bridge = env
        .iter()
        .find(|(k, _)| *k == "PFS_BRIDGE")
        .map_or("pfs0", |(_, v)| *v);
    assert_eq!(leases(sandbox, bridge), "", "leases are left");
    let names = std::fs::read_dir(sandbox.state_dir.join("names"))
        .map(|d| d.count())
        .unwrap_or(0);
    assert_eq!(names, 0, "names are left");
    sandbox.assert_links_gone("pfsh");

    let output = sandbox
        .command(CH03)
        .args(["cleanup", "--all"])
        .envs(env.iter().copied())
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "cleanup --all: {}",
        stderr(&output)
    );
    sandbox.snapshot().assert_unchanged_since(before);
}

#[test]
fn two_containers_get_different_addresses_and_talk_over_tcp_and_the_host_reaches_both() {
    let (sandbox, before) = NetSandbox::with_snapshot();

    // A: listens on 7000 (for B), then on 7001 (for the host).
    let mut a = sandbox.start_sh(
        CH03,
        &["run", "--name", "a"],
        &format!("{PRINT_ETH0}; {LISTEN} 7000 && {LISTEN} 7001 && read x"),
    );
    let address_a = address_in(&a.read_line());
    // B: is told A's address, sends it a line, then listens for the host.
    let mut b = sandbox.start_sh(CH03, &["run", "--name", "b"],
        &format!(
            "{PRINT_ETH0}; read target; \
             for i in $(seq 50); do echo hello-from-b | busybox nc $target 7000 && break; sleep 0.1; done; \
             {LISTEN} 7001 && read x"
        ),
    );
    let address_b = address_in(&b.read_line());

    assert_ne!(address_a, address_b, "two containers, two addresses");
    for address in [&address_a, &address_b] {
        assert!(
            address.starts_with("10.200.0."),
            "{address} is not on the default subnet"
        );
    }
    assert_eq!(
        leases(&sandbox, "pfs0").lines().count(),
        2,
        "one lease per container"
    );

    b.write_line(&address_a);
    assert_eq!(a.read_line(), "hello-from-b", "B reached A over TCP");

    send_from_host(&sandbox, &address_a, 7001, "hello-from-host");
    assert_eq!(a.read_line(), "hello-from-host");
    send_from_host(&sandbox, &address_b, 7001, "hello-from-host");
    assert_eq!(b.read_line(), "hello-from-host");

    assert_eq!(a.finish(), Some(0));
    assert_eq!(b.finish(), Some(0));
    assert_nothing_left(&sandbox, &before, &[]);
}

#[test]
fn a_container_that_joins_another_sees_the_same_eth0_and_namespace() {
    let (sandbox, before) = NetSandbox::with_snapshot();
    let script = format!("{PRINT_ETH0}; readlink /proc/self/ns/net");
    let mut first = sandbox.start_sh(
        CH03,
        &["run", "--name", "first"],
        &format!("{script}; read x"),
    );
    let first_eth0 = first.read_line();
    let first_netns = first.read_line();

    let output = ch03(
        &sandbox,
        &["--net", "container:first", "--", "sh", "-c", &script],
    );
    assert!(output.status.success(), "{}", stderr(&output));
    let text = stdout(&output);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert_eq!(address_in(lines[0]), address_in(&first_eth0), "same IP");
    assert_eq!(lines[1], first_netns, "same network namespace");
    assert_eq!(
        leases(&sandbox, "pfs0").lines().count(),
        1,
        "joining leases nothing"
    );

    assert_eq!(first.finish(), Some(0));
    assert_nothing_left(&sandbox, &before, &[]);
}

#[test]
fn net_none_gives_only_lo_and_it_is_up() {
    let (sandbox, before) = NetSandbox::with_snapshot();
    let output = ch03(&sandbox, &["--net", "none", "--", "ip", "-o", "link"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let text = stdout(&output);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 1, "only lo:\n{text}");
    assert!(
        lines[0].starts_with("1: lo: <LOOPBACK,UP,LOWER_UP>"),
        "{text}"
    );
    // No bridge was needed: the sandbox did not change at all.
    sandbox.snapshot().assert_unchanged_since(&before);
}

#[test]
fn twenty_containers_started_at_once_get_twenty_addresses() {
    let (sandbox, before) = NetSandbox::with_snapshot();
    // Each prints its address, then waits for a line on its stdin, so that
    // all twenty hold their leases at the same time.
    let mut children: Vec<_> = (0..20)
        .map(|_| {
            sandbox
                .command(CH03)
                .args(["run", "--", "sh", "-c", &format!("{PRINT_ETH0}; read x")])
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("start ch03")
        })
        .collect();
    let mut addresses: Vec<String> = Vec::new();
    for child in &mut children {
        let mut line = String::new();
        let stdout = child.stdout.as_mut().expect("stdout");
        std::io::BufRead::read_line(&mut std::io::BufReader::new(stdout), &mut line).unwrap();
        addresses.push(address_in(&line));
    }
    for mut child in children {
        let mut stdin = child.stdin.take().expect("stdin");
        std::io::Write::write_all(&mut stdin, b"done\n").unwrap();
        let output = child.wait_with_output().unwrap();
        assert!(output.status.success(), "{}", stderr(&output));
    }
    addresses.sort();
    addresses.dedup();
    assert_eq!(addresses.len(), 20, "{addresses:?}");
    assert_nothing_left(&sandbox, &before, &[]);
}

#[test]
fn the_bridge_and_subnet_can_be_changed_with_environment_variables() {
    let (sandbox, before) = NetSandbox::with_snapshot();
    let env = [("PFS_BRIDGE", "pfstest1"), ("PFS_SUBNET", "10.201.5.0/24")];
    let output = sandbox
        .command(CH03)
        .args(["run", "--", "sh", "-c", &format!("{PRINT_ETH0}; ip route")])
        .envs(env)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    let text = stdout(&output);
    assert_eq!(address_in(&text), "10.201.5.2");
    assert!(text.contains("default via 10.201.5.1 dev eth0"), "{text}");
    let bridge = stdout(&sandbox.run("ip", &["-o", "-4", "addr", "show", "dev", "pfstest1"]));
    assert!(bridge.contains("inet 10.201.5.1/24"), "{bridge}");
    assert_nothing_left(&sandbox, &before, &env);
}

#[test]
fn an_interrupted_container_is_cleaned_up() {
    let (sandbox, before) = NetSandbox::with_snapshot();
    // The trap is set before `ready`, so the signal cannot come too early.
    let script = "trap 'exit 3' INT; echo ready; sleep 100 & wait";
    let mut running = sandbox.start(CH03, &["run", "--name", "sleepy", "--", "sh", "-c", script]);
    let pid = nix::unistd::Pid::from_raw(running.child.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT).unwrap();
    let status = running.child.wait().unwrap();
    assert_eq!(status.code(), Some(3), "the container's trap ran");
    assert_nothing_left(&sandbox, &before, &[]);
}

#[test]
fn cleanup_removes_what_a_killed_run_left() {
    let (sandbox, before) = NetSandbox::with_snapshot();
    let mut running = sandbox.start_sh(CH03, &["run", "--name", "doomed"], "read x");
    let name_file = sandbox.state_dir.join("names").join("doomed");
    let container: i32 = std::fs::read_to_string(&name_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    running.child.kill().unwrap(); // SIGKILL: the runtime cannot clean up
    running.child.wait().unwrap();
    // The container goes too (it asked for SIGKILL when its parent dies).
    let gone = (0..100).any(|_| {
        std::thread::sleep(std::time::Duration::from_millis(50));
        !std::path::Path::new(&format!("/proc/{container}")).exists()
    });
    assert!(gone, "the container {container} outlived its runtime");
    assert_eq!(
        leases(&sandbox, "pfs0").lines().count(),
        1,
        "the lease is stale"
    );

    let output = sandbox.run(CH03, &["cleanup"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let text = stdout(&output);
    assert!(text.contains("removed stale lease 10.200.0.2"), "{text}");
    assert!(text.contains("removed stale name doomed"), "{text}");
    assert_nothing_left(&sandbox, &before, &[]);
}

#[test]
fn bad_input_is_one_line_a_failure_and_creates_nothing() {
    let (sandbox, before) = NetSandbox::with_snapshot();
    let cases: [(&[&str], &str); 8] = [
        (&["--subnet", "10.200.0/24"], "invalid subnet"),
        (&["--subnet", "10.200.0.0/33"], "invalid subnet"),
        (&["--ip", "10.200.0.300"], "invalid address"),
        (&["--ip", "10.201.0.5"], "outside the subnet"),
        (
            &["--net", "container:ghost"],
            "no running container named \"ghost\"",
        ),
        (&["--net", "bogus"], "invalid --net"),
        (&["--bridge", "a-bridge-name-of-16"], "invalid bridge name"),
        (&["--name", "bad name"], "invalid container name"),
    ];
    for (options, expected) in cases {
        let output = ch03(&sandbox, &[options, &["--", "echo", "ran"]].concat());
        let message = stderr(&output);
        assert_ne!(output.status.code(), Some(0), "{options:?}");
        assert_eq!(stdout(&output), "", "{options:?}: the command must not run");
        assert_eq!(message.lines().count(), 1, "{options:?}: {message}");
        assert!(
            message.starts_with("ch03: ") && message.contains(expected),
            "{options:?}: {message}"
        );
        sandbox.snapshot().assert_unchanged_since(&before);
        assert_eq!(leases(&sandbox, "pfs0"), "", "{options:?}");
    }
}

#[test]
fn an_address_taken_by_a_running_container_is_refused() {
    let (sandbox, before) = NetSandbox::with_snapshot();
    let script = format!("{PRINT_ETH0}; read x");
    let mut first = sandbox.start_sh(CH03, &["run", "--ip", "10.200.0.50"], &script);
    assert_eq!(address_in(&first.read_line()), "10.200.0.50");
    // The bridge's state goes from UNKNOWN to UP once its port forwards.
    let settled = (0..100).any(|_| {
        std::thread::sleep(std::time::Duration::from_millis(50));
        stdout(&sandbox.run("ip", &["-o", "link", "show", "pfs0"])).contains("state UP")
    });
    assert!(settled, "the bridge did not come up");
    let during = sandbox.settled_snapshot();
    let leased = leases(&sandbox, "pfs0");

    let output = ch03(&sandbox, &["--ip", "10.200.0.50", "--", "echo", "ran"]);
    let message = stderr(&output);
    assert_eq!(output.status.code(), Some(125));
    assert_eq!(stdout(&output), "");
    assert_eq!(
        message,
        "ch03: address 10.200.0.50 is already taken by another container\n"
    );
    sandbox.snapshot().assert_unchanged_since(&during);
    assert_eq!(leases(&sandbox, "pfs0"), leased);

    assert_eq!(first.finish(), Some(0));
    assert_nothing_left(&sandbox, &before, &[]);
}

#[test]
fn explain_names_each_network_step_with_its_ip_command() {
    let (sandbox, before) = NetSandbox::with_snapshot();
    let output = sandbox.run(CH03, &["--explain", "run", "--", "true"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let steps = stderr(&output);
    let expected = [
        "ip link add pfs0 type bridge",
        "ip addr add 10.200.0.1/24 dev pfs0",
        "ip link set pfs0 up",
        "unshare --mount --uts --ipc --net",
        "type veth peer name eth0 netns ",
        "master pfs0",
        "ip link set pfsh",
        "ip addr add 10.200.0.2/24 dev eth0",
        "ip link set lo up",
        "ip link set eth0 up",
        "ip route add default via 10.200.0.1",
        "exec env -i ENV... true",
    ];
    assert_in_order(&steps, &expected);
    // The kernel removes the veth pair with the namespace: no step for it.
    assert!(!steps.contains("ip link del"), "{steps}");
    assert_nothing_left(&sandbox, &before, &[]);
}

/// Run a shell line in a namespace, and insist that it works.
fn sh(namespace: &NetSandbox, script: &str) {
    let output = namespace.run("sh", &["-c", script]);
    assert!(output.status.success(), "{script}: {}", stderr(&output));
}

/// A sandbox host, a second namespace that plays "the internet", and the
/// host's network before the test. The internet holds 192.0.2.2 (a
/// documentation address) and is cabled to the sandbox host, 192.0.2.1, by
/// a veth pair. It has no route to the containers' subnet: only NAT can
/// bring its answers back.
fn with_internet() -> (NetSandbox, NetSandbox, NetState) {
    let sandbox = NetSandbox::new();
    let internet = NetSandbox::new();
    let wan = internet.netns_path();
    // No IPv6 link-local address (addrgenmode none): its duplicate address
    // detection would keep changing the snapshot for a second or two.
    sh(
        &sandbox,
        &format!("ip link add uplink type veth peer name wan netns {wan}"),
    );
    sh(&sandbox, "ip link set uplink addrgenmode none && ip addr add 192.0.2.1/24 dev uplink && ip link set uplink up");
    sh(&internet, "ip link set wan addrgenmode none && ip addr add 192.0.2.2/24 dev wan && ip link set wan up && ip link set lo up");
    // Both ends up: the carrier comes a moment later.
    let up = (0..100).any(|_| {
        std::thread::sleep(std::time::Duration::from_millis(20));
        stdout(&sandbox.run("ip", &["-o", "link", "show", "uplink"])).contains("state UP")
    });
    assert!(up, "the uplink did not come up");
    let before = sandbox.snapshot();
    (sandbox, internet, before)
}

#[test]
fn with_nat_a_container_reaches_the_internet_which_sees_the_hosts_address() {
    let (sandbox, internet, before) = with_internet();
    // The internet's server answers with the TCP connections it sees, e.g.
    // `0 0 [::ffff:192.0.2.2]:9000 [::ffff:192.0.2.1]:41234`.
    let server = internet.start(
        "sh",
        &[
            "-c",
            "echo ready; busybox nc -l -p 9000 -e ss -tnH state established",
        ],
    );
    // (stdin stays open a second, or nc would hang up before the answer)
    let client =
        "for i in $(seq 20); do sleep 1 | busybox nc 192.0.2.2 9000 && exit 0; done; exit 1";
    let output = ch03(&sandbox, &["--nat", "--", "sh", "-c", client]);
    assert!(output.status.success(), "{}", stderr(&output));
    let seen = stdout(&output);
    assert!(
        seen.contains("192.0.2.2]:9000") && seen.contains("192.0.2.1]:"),
        "{seen}"
    );
    assert!(
        !seen.contains("10.200.0."),
        "the container's own address leaked: {seen}"
    );
    assert_eq!(server.finish(), Some(0));
    assert_nothing_left(&sandbox, &before, &[]);
}

#[test]
fn without_nat_the_internet_cannot_answer() {
    let (sandbox, _internet, before) = with_internet();
    let output = ch03(
        &sandbox,
        &["--", "busybox", "nc", "-w", "1", "192.0.2.2", "9000"],
    );
    assert_ne!(output.status.code(), Some(0), "connected without NAT");
    // (nc waited for an answer in vain: not the runtime failing, nor no route.)
    let said = stderr(&output);
    assert!(said.contains("nc: timed out"), "{said}");
    assert_nothing_left(&sandbox, &before, &[]);
}

#[test]
fn a_published_port_reaches_the_server_in_the_container() {
    let (sandbox, internet, before) = with_internet();
    let mut web = sandbox.start_sh(
        CH03,
        &["run", "--publish", "8080:80"],
        &format!("{LISTEN} 80 && {LISTEN} 80 && read x"),
    );
    // From outside, to the host's address on the internet side...
    send_from_host(&internet, "192.0.2.1", 8080, "hello-from-the-internet");
    assert_eq!(web.read_line(), "hello-from-the-internet");
    // ...and from the host itself, to one of its own addresses.
    send_from_host(&sandbox, "10.200.0.1", 8080, "hello-from-the-host");
    assert_eq!(web.read_line(), "hello-from-the-host");
    assert_eq!(web.finish(), Some(0));
    assert_nothing_left(&sandbox, &before, &[]);
}

#[test]
fn a_bad_publish_is_refused() {
    let (sandbox, before) = NetSandbox::with_snapshot();
    for bad in ["0:80", "8080:65536", "8080"] {
        let output = ch03(&sandbox, &["--publish", bad, "--", "echo", "ran"]);
        let message = error_line(&output, 125);
        assert!(message.starts_with("ch03: invalid --publish"), "{message}");
        assert_eq!(stdout(&output), "");
    }
    sandbox.snapshot().assert_unchanged_since(&before);
}

#[test]
fn cleanup_all_keeps_the_bridge_while_a_container_uses_it() {
    let (sandbox, before) = NetSandbox::with_snapshot();
    let running = sandbox.start_sh(CH03, &["run"], "read x");
    let output = sandbox.run(CH03, &["cleanup", "--all"]);
    assert_eq!(output.status.code(), Some(125));
    assert_eq!(
        stderr(&output),
        "ch03: 1 running container(s) still use pfs0: stop them first\n"
    );
    let bridge = sandbox.run("ip", &["link", "show", "pfs0"]);
    assert!(bridge.status.success(), "the bridge must stay");
    assert_eq!(running.finish(), Some(0));
    assert_nothing_left(&sandbox, &before, &[]);
}

#[test]
fn doctor_says_what_is_there() {
    let sandbox = NetSandbox::new();
    let output = sandbox.run(CH03, &["doctor"]);
    let text = stdout(&output);
    assert_eq!(output.status.code(), Some(0), "{text}");
    for line in [
        "ok      running as root",
        "ok      net namespaces",
        "ok      netlink (NETLINK_ROUTE)",
    ] {
        assert!(text.contains(line), "{line}:\n{text}");
    }
    assert!(
        text.contains("bridge pfs0 exists: it is made by the first"),
        "{text}"
    );
}
