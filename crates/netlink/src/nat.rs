//! Outbound NAT and published ports, with nftables.
//!
//! A container's address (10.200.0.2) means nothing outside the host: an
//! answer could never find its way back. So the host *masquerades*: packets
//! from the container leave with the host's own address as their source,
//! and connection tracking rewrites the answers back. A published port is
//! the other direction: a connection to the host's port 8080 is rewritten
//! (DNAT) to the container's port 80.
//!
//! Each container gets an nftables table of its own, `ip pfs_<PID>`, added
//! when it starts and deleted when it stops: one command removes all of its
//! rules, and other containers' rules are never touched. We drive the
//! `nft` program (`nft -f -`) from the parent; netlink could do the same,
//! but nftables' netlink messages are a chapter of their own.
//!
//! Chapter 03 (`--nat`, `--publish`) uses it: the chapter's idea is the
//! namespace, the veth pair and the bridge; reaching beyond the host is
//! this appendix.

use std::io::Write;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{bail, Context, Result};
use ch01::{explain, Layer};
use pfs_state::leases;

/// `--publish HOST_PORT:CONTAINER_PORT` (TCP).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Publish {
    pub host_port: u16,
    pub container_port: u16,
}

/// Parse `8080:80`. Ports are 1 to 65535.
pub fn parse_publish(text: &str) -> Result<Publish> {
    let port = |part: &str| match part.parse::<u32>() {
        Ok(n) if (1..=65535).contains(&n) => Ok(n as u16),
        _ => bail!("invalid --publish {text:?}: ports are numbers from 1 to 65535"),
    };
    let Some((host, container)) = text.split_once(':') else {
        bail!("invalid --publish {text:?}: write it as HOST_PORT:CONTAINER_PORT, e.g. 8080:80");
    };
    Ok(Publish {
        host_port: port(host)?,
        container_port: port(container)?,
    })
}

/// The nftables table that holds one container's rules.
pub fn table_name(owner: u32) -> String {
    format!("pfs_{owner}")
}

/// `--nat` and `--publish`, a layer that comes after chapter 03's
/// `Bridged`: once the container has its address (leased for its veth),
/// open it to the outside; when the container is gone, delete its rules.
pub struct Expose {
    pub state_dir: PathBuf,
    pub bridge: String,
    /// The container's veth (host end), whose lease says its address.
    pub veth: String,
    pub masquerade: bool,
    pub publish: Vec<Publish>,
    table: Option<String>,
}

impl Expose {
    pub fn new(state_dir: PathBuf, bridge: &str, veth: &str) -> Self {
        Expose {
            state_dir,
            bridge: bridge.to_string(),
            veth: veth.to_string(),
            masquerade: false,
            publish: Vec::new(),
            table: None,
        }
    }
}

impl Layer for Expose {
    fn prepare(&mut self) -> Result<()> {
        let address = leases::address_of(&leases::path(&self.state_dir, &self.bridge), &self.veth)?;
        let (owner, publish) = (std::process::id(), &self.publish);
        let table = expose(
            &self.state_dir,
            owner,
            &self.bridge,
            address,
            self.masquerade,
            publish,
        )?;
        self.table = Some(table);
        Ok(())
    }

    fn cleanup(&mut self) -> Result<()> {
        match self.table.take() {
            Some(table) => delete_rules(&table),
            None => Ok(()),
        }
    }
}

/// Open the container at `address` to the outside (`masquerade`) and
/// publish its ports: forwarding on, then the rules in a table named
/// after `owner`, the process that must delete it. Returns the table.
pub fn expose(
    state_dir: &Path,
    owner: u32,
    bridge: &str,
    address: Ipv4Addr,
    masquerade: bool,
    publish: &[Publish],
) -> Result<String> {
    enable_forwarding(state_dir)?;
    let table = table_name(owner);
    add_rules(&ruleset(&table, bridge, address, masquerade, publish))?;
    Ok(table)
}

// ANCHOR: ruleset
/// The container's rules, in nft's own language (what `nft -f` reads).
pub fn ruleset(
    table: &str,
    bridge: &str,
    address: Ipv4Addr,
    masquerade: bool,
    publish: &[Publish],
) -> String {
    let mut text = format!("table ip {table} {{\n");
    if masquerade {
        // Leaving the host (not back onto our bridge): take the host's address.
        text += "  chain postrouting {\n    type nat hook postrouting priority srcnat; policy accept;\n";
        text += &format!("    ip saddr {address} oifname != \"{bridge}\" masquerade\n  }}\n");
    }
    if !publish.is_empty() {
        // Coming in from outside (prerouting), or from the host itself to one
        // of its own addresses (output): send it on to the container.
        for (chain, hook, only_local) in [
            ("prerouting", "prerouting", ""),
            ("output", "output", "fib daddr type local "),
        ] {
            text += &format!(
                "  chain {chain} {{\n    type nat hook {hook} priority -100; policy accept;\n"
            );
            for p in publish {
                text += &format!(
                    "    {only_local}tcp dport {} dnat to {address}:{}\n",
                    p.host_port, p.container_port
                );
            }
            text += "  }\n";
        }
    }
    text + "}\n"
}
// ANCHOR_END: ruleset

// ANCHOR: add_rules
/// Load the container's table into the kernel, all at once.
pub fn add_rules(ruleset: &str) -> Result<()> {
    let first = ruleset.lines().next().unwrap_or_default();
    explain::step(
        &format!("nft -f - <<< '{first} ...'"),
        &format!(
            "nft add {} ; nft add chain ... ; nft add rule ...",
            first.trim_end_matches(" {")
        ),
    );
    nft(&["-f", "-"], ruleset)
}
// ANCHOR_END: add_rules

/// Delete the container's table and every rule in it.
pub fn delete_rules(table: &str) -> Result<()> {
    explain::step(
        &format!("nft delete table ip {table}"),
        &format!("nft delete table ip {table}"),
    );
    nft(&["delete", "table", "ip", table], "")
}

/// Whether the table exists (a killed run may have left it).
pub fn table_exists(table: &str) -> bool {
    nft(&["list", "table", "ip", table], "").is_ok()
}

/// Whether `nft` can be found on the PATH.
pub fn nft_installed() -> bool {
    std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join("nft").exists()))
}

/// `cleanup`: delete the tables whose container process is gone (a run
/// killed with SIGKILL could not). Returns the tables deleted.
pub fn remove_stale_tables() -> Result<Vec<String>> {
    let mut removed = Vec::new();
    for (table, owner) in our_tables() {
        if !pfs_state::process::is_running(owner) {
            delete_rules(&table)?;
            removed.push(table);
        }
    }
    Ok(removed)
}

/// The tables of containers, `pfs_<PID>`, with their PID (none without nft).
pub fn our_tables() -> Vec<(String, u32)> {
    let Ok(output) = Command::new("nft").args(["list", "tables", "ip"]).output() else {
        return Vec::new();
    };
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| line.strip_prefix("table ip "))
        .filter_map(|name| Some((name.to_string(), name.strip_prefix("pfs_")?.parse().ok()?)))
        .collect()
}

fn nft(args: &[&str], input: &str) -> Result<()> {
    let mut child = Command::new("nft")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .context("cannot run nft: install nftables (apt-get install nftables)")?;
    let mut stdin = child.stdin.take().context("nft's stdin")?;
    stdin.write_all(input.as_bytes()).context("write to nft")?;
    drop(stdin);
    let output = child.wait_with_output().context("wait for nft")?;
    if !output.status.success() {
        let message = String::from_utf8_lossy(&output.stderr);
        let first = message
            .lines()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("failed");
        bail!("nft {}: {first}", args.join(" "));
    }
    Ok(())
}

// ANCHOR: enable_forwarding
/// A Linux host drops packets that are not for itself unless it is told to
/// route them. NAT and published ports need it; a plain bridge does not
/// (the bridge switches, it does not route). We remember that we turned it
/// on, so that `cleanup --all` can turn it off again.
pub fn enable_forwarding(state_dir: &Path) -> Result<()> {
    const SYSCTL: &str = "/proc/sys/net/ipv4/ip_forward";
    let current = std::fs::read_to_string(SYSCTL).with_context(|| format!("read {SYSCTL}"))?;
    if current.trim() == "1" {
        return Ok(());
    }
    explain::step(
        &format!("write(\"{SYSCTL}\", \"1\")"),
        "sysctl -w net.ipv4.ip_forward=1",
    );
    std::fs::create_dir_all(state_dir)
        .with_context(|| format!("create {}", state_dir.display()))?;
    std::fs::write(state_dir.join("forwarding-enabled"), "").context("remember forwarding")?;
    std::fs::write(SYSCTL, "1").with_context(|| format!("write {SYSCTL}"))
}
// ANCHOR_END: enable_forwarding

/// Turn forwarding off again if we were the ones who turned it on.
pub fn restore_forwarding(state_dir: &Path) -> Result<()> {
    let marker = state_dir.join("forwarding-enabled");
    if !marker.exists() {
        return Ok(());
    }
    explain::step(
        "write(\"/proc/sys/net/ipv4/ip_forward\", \"0\")",
        "sysctl -w net.ipv4.ip_forward=0",
    );
    std::fs::write("/proc/sys/net/ipv4/ip_forward", "0").context("turn forwarding off")?;
    std::fs::remove_file(marker).context("forget forwarding")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn publish_is_parsed_and_checked() {
        let p = parse_publish("8080:80").unwrap();
        assert_eq!((p.host_port, p.container_port), (8080, 80));
        for bad in ["0:80", "8080:0", "65536:80", "80", "a:b", ":80", "8080:"] {
            let err = parse_publish(bad).unwrap_err().to_string();
            assert!(err.starts_with("invalid --publish"), "{bad:?}: {err}");
        }
    }

    #[test]
    fn the_ruleset_masquerades_and_publishes() {
        let publish = [Publish {
            host_port: 8080,
            container_port: 80,
        }];
        let text = ruleset(
            "pfs_7",
            "pfs0",
            Ipv4Addr::new(10, 200, 0, 2),
            true,
            &publish,
        );
        assert!(text.starts_with("table ip pfs_7 {\n"), "{text}");
        assert!(
            text.contains("ip saddr 10.200.0.2 oifname != \"pfs0\" masquerade"),
            "{text}"
        );
        assert!(
            text.contains("    tcp dport 8080 dnat to 10.200.0.2:80\n"),
            "{text}"
        );
        assert!(
            text.contains("fib daddr type local tcp dport 8080 dnat to 10.200.0.2:80"),
            "{text}"
        );
        let bare = ruleset("pfs_7", "pfs0", Ipv4Addr::new(10, 200, 0, 2), false, &[]);
        assert_eq!(bare, "table ip pfs_7 {\n}\n");
    }
}
