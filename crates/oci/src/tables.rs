//! `config.json`'s names and shapes, turned into what chapters 01–07's
//! steps take: resource limits, capabilities, device rules, id maps, sysctls.

use anyhow::{anyhow, bail, Result};
use caps::{Capability, CapsHashSet};
use nix::libc;
use oci_spec::runtime::{
    Capabilities, LinuxDevice, LinuxDeviceCgroup, LinuxIdMapping, LinuxResources,
};
use pfs_security::userns::IdRange;

/// `process.rlimits[].type`: the resource setrlimit(2) takes.
pub fn rlimit_resource(name: &str) -> Result<libc::__rlimit_resource_t> {
    Ok(match name {
        "RLIMIT_AS" => libc::RLIMIT_AS,
        "RLIMIT_CORE" => libc::RLIMIT_CORE,
        "RLIMIT_CPU" => libc::RLIMIT_CPU,
        "RLIMIT_DATA" => libc::RLIMIT_DATA,
        "RLIMIT_FSIZE" => libc::RLIMIT_FSIZE,
        "RLIMIT_LOCKS" => libc::RLIMIT_LOCKS,
        "RLIMIT_MEMLOCK" => libc::RLIMIT_MEMLOCK,
        "RLIMIT_MSGQUEUE" => libc::RLIMIT_MSGQUEUE,
        "RLIMIT_NICE" => libc::RLIMIT_NICE,
        "RLIMIT_NOFILE" => libc::RLIMIT_NOFILE,
        "RLIMIT_NPROC" => libc::RLIMIT_NPROC,
        "RLIMIT_RSS" => libc::RLIMIT_RSS,
        "RLIMIT_RTPRIO" => libc::RLIMIT_RTPRIO,
        "RLIMIT_RTTIME" => libc::RLIMIT_RTTIME,
        "RLIMIT_SIGPENDING" => libc::RLIMIT_SIGPENDING,
        "RLIMIT_STACK" => libc::RLIMIT_STACK,
        _ => bail!("process.rlimits: unknown type {name}"),
    })
}

/// One of `process.capabilities`' sets, as the caps crate names them.
pub fn capability_set(set: &Option<Capabilities>) -> Result<CapsHashSet> {
    let names = set.iter().flatten().map(|cap| cap.to_string());
    names
        .map(|name| {
            let name = format!("CAP_{}", name.trim_start_matches("CAP_"));
            name.parse::<Capability>()
                .map_err(|_| anyhow!("process.capabilities: unknown capability {name}"))
        })
        .collect()
}

/// The limits of `linux.resources` chapter 05 sets: memory in bytes,
/// processes, CPUs (quota over period).
pub fn limits(resources: Option<&LinuxResources>) -> ch05::Limits {
    let Some(resources) = resources else {
        return ch05::Limits::default();
    };
    let positive = |n: i64| u64::try_from(n).ok().filter(|n| *n > 0);
    let memory = resources
        .memory()
        .as_ref()
        .and_then(|m| m.limit())
        .and_then(positive);
    let pids = resources
        .pids()
        .as_ref()
        .map(|p| p.limit())
        .and_then(positive);
    let cpu = resources.cpu().as_ref();
    let quota = cpu.and_then(|c| c.quota()).and_then(positive);
    let period = cpu.and_then(|c| c.period()).unwrap_or(100_000);
    let cpus = quota.map(|quota| quota as f64 / period as f64);
    ch05::Limits { memory, pids, cpus }
}

/// `linux.resources.devices` as cgroup v1's `devices.allow` lines (v2's
/// program takes the same). What engines write is an allow-list: a first
/// rule denying everything, then what is allowed; another shape is refused.
pub fn device_allow_lines(rules: &[LinuxDeviceCgroup]) -> Result<Vec<String>> {
    let Some((first, allowed)) = rules.split_first() else {
        return Ok(Vec::new());
    };
    let denies_all = !first.allow()
        && first.typ().map_or(true, |t| t.as_str() == "a")
        && first.major().is_none()
        && first.minor().is_none();
    if !denies_all || allowed.iter().any(|rule| !rule.allow()) {
        bail!("linux.resources.devices: only a deny-all rule followed by allow rules is supported");
    }
    let number = |n: Option<i64>| n.filter(|n| *n >= 0).map_or("*".into(), |n| n.to_string());
    Ok(allowed
        .iter()
        .map(|rule| {
            let kind = rule.typ().map_or("a".into(), |t| t.as_str().to_string());
            let access = rule.access().clone().unwrap_or_else(|| "rwm".into());
            format!(
                "{kind} {}:{} {access}",
                number(rule.major()),
                number(rule.minor())
            )
        })
        .collect())
}

/// The nodes every container gets, whatever `linux.devices` says (the
/// runtime spec's list, as runc makes them), before the config's own.
pub fn default_devices() -> Vec<LinuxDevice> {
    let nodes = [
        ("null", 3),
        ("zero", 5),
        ("full", 7),
        ("random", 8),
        ("urandom", 9),
    ];
    let nodes = nodes
        .iter()
        .map(|(name, minor)| (format!("/dev/{name}"), 1, *minor));
    let nodes = nodes.chain([("/dev/tty".to_string(), 5, 0)]);
    nodes
        .map(|(path, major, minor)| {
            let json = serde_json::json!({"path": path, "type": "c", "major": major,
                "minor": minor, "fileMode": 0o666, "uid": 0, "gid": 0});
            serde_json::from_value(json).expect("a device as the spec writes it")
        })
        .collect()
}

/// ... and the links every `/dev` has, to `/proc` and to the pty master.
pub const DEVICE_LINKS: [(&str, &str); 5] = [
    ("/dev/ptmx", "pts/ptmx"),
    ("/dev/fd", "/proc/self/fd"),
    ("/dev/stdin", "/proc/self/fd/0"),
    ("/dev/stdout", "/proc/self/fd/1"),
    ("/dev/stderr", "/proc/self/fd/2"),
];

/// `linux.uidMappings` or `gidMappings` as chapter 07 maps ids: one range,
/// from the container's 0 (what engines write); another shape is refused.
pub fn id_range(field: &str, mappings: &[LinuxIdMapping]) -> Result<IdRange> {
    match mappings {
        [m] if m.container_id() == 0 => Ok(IdRange {
            base: m.host_id(),
            count: m.size(),
        }),
        [] => bail!("linux.{field} is missing: a new user namespace needs a mapping"),
        _ => bail!("linux.{field}: only one mapping, from containerID 0, is supported"),
    }
}

/// The sysctls a container may set: those of the namespaces it has (the
/// kernel's own list, as runc checks it), never the host's.
pub fn check_sysctl(key: &str, has_ipc: bool, has_net: bool, has_uts: bool) -> Result<()> {
    const IPC: [&str; 5] = [
        "kernel.msgmax",
        "kernel.msgmnb",
        "kernel.msgmni",
        "kernel.sem",
        "kernel.shmall",
    ];
    const IPC_MORE: [&str; 3] = ["kernel.shmmax", "kernel.shmmni", "kernel.shm_rmid_forced"];
    let ipc = IPC.contains(&key) || IPC_MORE.contains(&key) || key.starts_with("fs.mqueue.");
    let uts = key == "kernel.hostname" || key == "kernel.domainname";
    let allowed = (ipc && has_ipc) || (key.starts_with("net.") && has_net) || (uts && has_uts);
    if !allowed {
        bail!(
            "linux.sysctl: {key} is not in a namespace of the container: it would change the host"
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rlimit_names_are_known() {
        assert_eq!(
            rlimit_resource("RLIMIT_NOFILE").unwrap(),
            libc::RLIMIT_NOFILE
        );
        assert!(rlimit_resource("RLIMIT_BOGUS").is_err());
    }

    #[test]
    fn capabilities_are_read_by_name() {
        let set: Capabilities = serde_json::from_str(r#"["CAP_SYS_ADMIN", "CAP_KILL"]"#).unwrap();
        let read = capability_set(&Some(set)).unwrap();
        assert!(read.contains(&Capability::CAP_SYS_ADMIN) && read.len() == 2);
        assert!(capability_set(&None).unwrap().is_empty());
    }

    #[test]
    fn device_rules_become_allow_lines() {
        let rules: Vec<LinuxDeviceCgroup> = serde_json::from_str(
            r#"[{"allow": false, "access": "rwm"},
                {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rwm"},
                {"allow": true, "type": "c", "major": 136, "access": "rwm"}]"#,
        )
        .unwrap();
        assert_eq!(
            device_allow_lines(&rules).unwrap(),
            ["c 1:3 rwm", "c 136:* rwm"]
        );
    }

    #[test]
    fn default_devices_are_the_specs() {
        let devices = default_devices();
        assert_eq!(devices[0].path().to_str(), Some("/dev/null"));
        assert_eq!((devices[5].major(), devices[5].minor()), (5, 0));
    }

    #[test]
    fn a_deny_after_allows_is_refused() {
        let rules: Vec<LinuxDeviceCgroup> = serde_json::from_str(
            r#"[{"allow": false, "access": "rwm"}, {"allow": false, "type": "c", "major": 1}]"#,
        )
        .unwrap();
        assert!(device_allow_lines(&rules).is_err());
    }

    #[test]
    fn one_id_mapping_from_zero_is_a_range() {
        let maps = |json| serde_json::from_str::<Vec<LinuxIdMapping>>(json).unwrap();
        let one = maps(r#"[{"containerID": 0, "hostID": 100000, "size": 1000}]"#);
        let range = id_range("uidMappings", &one).unwrap();
        assert_eq!((range.base, range.count), (100000, 1000));
        let two = maps(
            r#"[{"containerID": 0, "hostID": 1, "size": 1}, {"containerID": 1, "hostID": 5, "size": 1}]"#,
        );
        assert!(id_range("uidMappings", &two).is_err());
        assert!(id_range("uidMappings", &[]).is_err());
    }

    #[test]
    fn only_namespaced_sysctls_pass() {
        check_sysctl("net.ipv4.ping_group_range", false, true, false).unwrap();
        check_sysctl("kernel.shmmax", true, false, false).unwrap();
        assert!(check_sysctl("net.ipv4.ip_forward", false, false, false).is_err());
        assert!(check_sysctl("vm.swappiness", true, true, true).is_err());
    }
}
