//! The fields of `config.json` chapter 08 acts on, as one table, and the
//! check that refuses any other before anything is created: a runtime that
//! skipped a field it does not know (a limit, a security setting) would run
//! a container less confined than asked, and say nothing.

use anyhow::{bail, Context, Result};
use serde_json::Value;

/// Every field ch08 acts on. `[]` stands for any element of a list, `*` for
/// any key of a map whose keys are free (annotations are kept as they are,
/// as runc does: they are for the engines, not the kernel).
#[rustfmt::skip]
pub const SUPPORTED: &[&str] = &[
    "ociVersion", "hostname", "annotations.*",
    "root.path", "root.readonly",
    "mounts[].destination", "mounts[].type", "mounts[].source", "mounts[].options",
    "process.terminal", "process.args", "process.env", "process.cwd",
    "process.user.uid", "process.user.gid", "process.user.umask", "process.user.additionalGids",
    "process.capabilities.bounding", "process.capabilities.effective",
    "process.capabilities.inheritable", "process.capabilities.permitted",
    "process.capabilities.ambient",
    "process.rlimits[].type", "process.rlimits[].hard", "process.rlimits[].soft",
    "process.noNewPrivileges", "process.oomScoreAdj",
    "process.apparmorProfile", "process.selinuxLabel",
    "linux.namespaces[].type", "linux.namespaces[].path",
    "linux.uidMappings[].containerID", "linux.uidMappings[].hostID", "linux.uidMappings[].size",
    "linux.gidMappings[].containerID", "linux.gidMappings[].hostID", "linux.gidMappings[].size",
    "linux.cgroupsPath",
    "linux.resources.memory.limit", "linux.resources.memory.swap", "linux.resources.pids.limit",
    "linux.resources.cpu.quota", "linux.resources.cpu.period", "linux.resources.cpu.shares",
    "linux.resources.devices[].allow", "linux.resources.devices[].type",
    "linux.resources.devices[].major", "linux.resources.devices[].minor",
    "linux.resources.devices[].access",
    "linux.devices[].path", "linux.devices[].type", "linux.devices[].major",
    "linux.devices[].minor", "linux.devices[].fileMode", "linux.devices[].uid",
    "linux.devices[].gid",
    "linux.sysctl.*", "linux.maskedPaths", "linux.readonlyPaths", "linux.rootfsPropagation",
    "linux.seccomp.defaultAction", "linux.seccomp.defaultErrnoRet",
    "linux.seccomp.architectures",
    "linux.seccomp.syscalls[].names", "linux.seccomp.syscalls[].action",
    "linux.seccomp.syscalls[].errnoRet",
    "linux.seccomp.syscalls[].args[].index", "linux.seccomp.syscalls[].args[].value",
    "linux.seccomp.syscalls[].args[].valueTwo", "linux.seccomp.syscalls[].args[].op",
    "hooks.prestart[].path", "hooks.prestart[].args", "hooks.prestart[].env",
    "hooks.prestart[].timeout",
    "hooks.createRuntime[].path", "hooks.createRuntime[].args", "hooks.createRuntime[].env",
    "hooks.createRuntime[].timeout",
    "hooks.poststart[].path", "hooks.poststart[].args", "hooks.poststart[].env",
    "hooks.poststart[].timeout",
    "hooks.poststop[].path", "hooks.poststop[].args", "hooks.poststop[].env",
    "hooks.poststop[].timeout",
];

/// Refuse `config.json`'s first field that is not in [`SUPPORTED`], with
/// one line naming it. A field set to `null` counts as absent.
pub fn check(text: &str) -> Result<()> {
    let json: Value = serde_json::from_str(text).context("config.json is not valid JSON")?;
    match first_unsupported(&json, "", "") {
        Some(field) => {
            bail!("config.json: {field} is not supported by ch08 (remove it, or use runc or crun)")
        }
        None => Ok(()),
    }
}

/// Walk `json`, at `shown` (the path with indexes, for the message) and
/// `pattern` (the path with `[]`, for the table).
fn first_unsupported(json: &Value, shown: &str, pattern: &str) -> Option<String> {
    match json {
        // A map of free keys (`annotations`): anything goes below it.
        Value::Object(_) if SUPPORTED.contains(&format!("{pattern}.*").as_str()) => None,
        Value::Object(fields) => fields
            .iter()
            .filter(|(_, value)| !value.is_null())
            .find_map(|(key, value)| {
                let join = |parent: &str| match parent {
                    "" => key.clone(),
                    _ => format!("{parent}.{key}"),
                };
                let (shown, pattern) = (join(shown), join(pattern));
                if SUPPORTED.contains(&pattern.as_str()) || is_inner(&pattern) {
                    first_unsupported(value, &shown, &pattern)
                } else {
                    Some(shown)
                }
            }),
        Value::Array(items) => items.iter().enumerate().find_map(|(index, item)| {
            first_unsupported(item, &format!("{shown}[{index}]"), &format!("{pattern}[]"))
        }),
        _ => None,
    }
}

/// A field some supported field lies under (`linux`, `process.user`).
fn is_inner(pattern: &str) -> bool {
    SUPPORTED.iter().any(|field| {
        field
            .strip_prefix(pattern)
            .is_some_and(|rest| rest.starts_with('.') || rest.starts_with("[]"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(json: &str) -> String {
        check(json).unwrap_err().to_string()
    }

    #[test]
    fn supported_fields_pass() {
        let json = r#"{"ociVersion": "1.0.2", "process": {"args": ["sh"], "cwd": "/",
            "user": {"uid": 0, "gid": 0, "additionalGids": [10]},
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}]},
            "root": {"path": "rootfs"}, "mounts": [{"destination": "/proc", "type": "proc"}],
            "linux": {"namespaces": [{"type": "pid"}], "resources": {"devices":
            [{"allow": false, "access": "rwm"}]}}}"#;
        check(json).unwrap();
    }

    #[test]
    fn an_unknown_field_is_named() {
        let json = r#"{"linux": {"intelRdt": {"closID": "x"}}}"#;
        assert_eq!(
            error(json),
            "config.json: linux.intelRdt is not supported by ch08 (remove it, or use runc or crun)"
        );
    }

    #[test]
    fn a_field_in_a_list_is_named_with_its_index() {
        let json =
            r#"{"mounts": [{"destination": "/a"}, {"destination": "/b", "uidMappings": []}]}"#;
        assert!(
            error(json).contains(" mounts[1].uidMappings "),
            "{}",
            error(json)
        );
    }

    #[test]
    fn an_unsupported_limit_is_named() {
        let json = r#"{"linux": {"resources": {"memory": {"limit": 1, "kernel": 2}}}}"#;
        assert!(error(json).contains(" linux.resources.memory.kernel "));
    }

    #[test]
    fn free_keys_and_nulls_pass() {
        check(r#"{"annotations": {"io.x": "1"}, "linux": {"sysctl": {"net.a": "1"}}}"#).unwrap();
        check(r#"{"hooks": null}"#).unwrap();
    }

    #[test]
    fn a_parent_of_supported_fields_alone_passes_but_not_its_other_fields() {
        check(r#"{"process": {"user": {}}}"#).unwrap();
        assert!(
            error(r#"{"process": {"user": {"username": "x"}}}"#).contains("process.user.username")
        );
    }
}
