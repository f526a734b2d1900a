//! `ch08 features`: what this runtime supports, as the runtime spec's
//! features document (`features.md`) says it, and honestly: only what
//! chapter 08 does.

use serde_json::{json, Value};

/// The options `mount_options::parse` turns into flags or propagation.
const MOUNT_OPTIONS: [&str; 32] = [
    "async",
    "atime",
    "bind",
    "dev",
    "diratime",
    "dirsync",
    "exec",
    "mand",
    "noatime",
    "nodev",
    "nodiratime",
    "noexec",
    "nomand",
    "norelatime",
    "nostrictatime",
    "nosuid",
    "private",
    "rbind",
    "relatime",
    "remount",
    "ro",
    "rprivate",
    "rshared",
    "rslave",
    "runbindable",
    "rw",
    "shared",
    "slave",
    "strictatime",
    "suid",
    "sync",
    "unbindable",
];

/// `ch08 features`.
pub fn print() -> anyhow::Result<i32> {
    println!("{:#}", document());
    Ok(0)
}

/// The features document.
pub fn document() -> Value {
    json!({
        "ociVersionMin": "1.0.0",
        "ociVersionMax": oci_spec::runtime::VERSION,
        "hooks": ["prestart", "createRuntime", "poststart", "poststop"],
        "mountOptions": MOUNT_OPTIONS,
        "linux": {
            "namespaces": ["pid", "mount", "uts", "ipc", "network", "cgroup"],
            "cgroup": {"v1": true, "v2": true, "systemd": false, "systemdUser": false},
        },
        "annotations": {
            "io.github.pods-from-scratch.ch08.version": env!("CARGO_PKG_VERSION"),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_listed_mount_option_is_one_we_understand() {
        for option in MOUNT_OPTIONS {
            let parsed = crate::mount_options::parse(&[option.to_string()]);
            assert!(parsed.data.is_empty(), "{option} is not understood");
        }
    }
}
