//! Chapter 07's machinery, not a lesson: its options, read and checked
//! before anything is created (`--cap-add`/`--cap-drop` as Docker takes
//! them, `--security-opt seccomp=...` with Docker's JSON profile format),
//! the ids and calls of `--userns` ([`userns`]), and the bookkeeping of
//! cgroup v1's devices groups ([`devices`]). The chapter does the kernel
//! steps it teaches with what this crate returns.

pub mod devices;
pub mod userns;

use std::collections::HashSet;
use std::path::Path;
use std::str::FromStr;

use anyhow::{anyhow, bail, Context, Result};
use caps::{Capability, CapsHashSet};
use libseccomp::{ScmpAction, ScmpArgCompare, ScmpCompareOp};
use serde_json::Value;

/// Options of the process's confinement (Docker's names).
#[derive(clap::Args, Debug)]
#[group(skip)]
pub struct ConfineArgs {
    /// Add a capability to the default set (e.g. NET_ADMIN; ALL for all)
    #[arg(long = "cap-add", value_name = "CAP")]
    pub cap_add: Vec<String>,
    /// Drop a capability from the default set (e.g. NET_RAW; ALL for all)
    #[arg(long = "cap-drop", value_name = "CAP")]
    pub cap_drop: Vec<String>,
    /// seccomp=unconfined (no filter) or seccomp=PROFILE.json (Docker's format)
    #[arg(long = "security-opt", value_name = "OPT")]
    pub security_opt: Vec<String>,
}

/// The errno Docker's profiles return when a rule names none: EPERM.
const EPERM: i32 = 1;

/// One capability name as Docker takes it: `net_raw`, `NET_RAW` or
/// `CAP_NET_RAW`.
pub fn capability(name: &str) -> Result<Capability> {
    Capability::from_str(&caps::to_canonical(name))
        .map_err(|_| anyhow!("unknown capability: {name} (e.g. NET_ADMIN, SYS_TIME, ALL)"))
}

/// Capability names as `setpriv` and Docker write them: `chown,kill`.
pub fn capability_names(caps: &CapsHashSet) -> String {
    let mut names: Vec<_> = caps
        .iter()
        .map(|c| c.to_string()[4..].to_lowercase())
        .collect();
    names.sort();
    names.join(",")
}

/// The capabilities a container keeps: `default`, as Docker tweaks it.
/// `--cap-drop ALL` starts from none, `--cap-add ALL` from all; then the
/// named ones are added, and the named drops win.
pub fn capabilities(
    default: &[Capability],
    add: &[String],
    drop: &[String],
) -> Result<CapsHashSet> {
    let is_all = |name: &String| name.eq_ignore_ascii_case("all");
    let named = |names: &[String]| -> Result<CapsHashSet> {
        names
            .iter()
            .filter(|n| !is_all(n))
            .map(|n| capability(n))
            .collect()
    };
    let (add_named, drop_named) = (named(add)?, named(drop)?);
    let mut kept: CapsHashSet = if add.iter().any(is_all) {
        caps::all()
    } else if drop.iter().any(is_all) {
        HashSet::new()
    } else {
        default.iter().copied().collect()
    };
    kept.extend(add_named);
    kept.retain(|cap| !drop_named.contains(cap));
    Ok(kept)
}

/// What `--security-opt` asks of seccomp.
#[derive(Debug)]
pub enum Seccomp {
    /// No option: the chapter's default profile.
    Default,
    /// `seccomp=unconfined`: no filter.
    Unconfined,
    /// `seccomp=PROFILE.json`.
    Profile(Profile),
}

/// The `--security-opt` values; `caps` decides the profile's rules that
/// depend on capabilities (Docker's `includes`/`excludes`).
pub fn seccomp(security_opts: &[String], caps: &CapsHashSet) -> Result<Seccomp> {
    let mut seccomp = Seccomp::Default;
    for opt in security_opts {
        seccomp = match opt.split_once(['=', ':']) {
            Some(("seccomp", "unconfined")) => Seccomp::Unconfined,
            Some(("seccomp", file)) => Seccomp::Profile(Profile::read(Path::new(file), caps)?),
            _ => bail!(
                "unsupported --security-opt {opt} (known: seccomp=unconfined, seccomp=PROFILE.json)"
            ),
        };
    }
    Ok(seccomp)
}

/// A seccomp profile: what to do with a syscall no rule names, and rules.
#[derive(Debug)]
pub struct Profile {
    pub default: ScmpAction,
    pub rules: Vec<Rule>,
}

/// Do `action` when one of the syscalls `names` is called with arguments
/// that match every comparison of `args`.
#[derive(Debug)]
pub struct Rule {
    pub names: Vec<String>,
    pub action: ScmpAction,
    pub args: Vec<ScmpArgCompare>,
}

impl Profile {
    /// A deny-list: every syscall allowed but `names`, which fail with `errno`.
    pub fn deny(names: &[&str], errno: i32) -> Profile {
        let names = names.iter().map(|n| n.to_string()).collect();
        let rule = Rule {
            names,
            action: ScmpAction::Errno(errno),
            args: Vec::new(),
        };
        Profile {
            default: ScmpAction::Allow,
            rules: vec![rule],
        }
    }

    /// Read a profile in Docker's JSON format. Fields this chapter does not
    /// use are ignored: `architectures` (the filter is for this machine's
    /// architecture only), `minKernel`, `comment`, ...
    pub fn read(file: &Path, caps: &CapsHashSet) -> Result<Profile> {
        let shown = file.display();
        let text = std::fs::read_to_string(file)
            .with_context(|| format!("cannot read seccomp profile {shown}"))?;
        let json: Value = serde_json::from_str(&text)
            .with_context(|| format!("seccomp profile {shown} is not valid JSON"))?;
        Profile::from_json(&json, caps).with_context(|| format!("seccomp profile {shown}"))
    }

    fn from_json(json: &Value, caps: &CapsHashSet) -> Result<Profile> {
        let default_errno = json.get("defaultErrnoRet");
        let default = action(json.get("defaultAction"), default_errno)?;
        let mut rules = Vec::new();
        let no_rules = Vec::new();
        let syscalls = json
            .get("syscalls")
            .and_then(Value::as_array)
            .unwrap_or(&no_rules);
        for rule in syscalls {
            if applies(rule, caps)? {
                rules.push(Rule::from_json(rule)?);
            }
        }
        Ok(Profile { default, rules })
    }
}

impl Rule {
    fn from_json(json: &Value) -> Result<Rule> {
        let mut names: Vec<String> = strings(json.get("names"))?;
        if let Some(name) = json.get("name").and_then(Value::as_str) {
            names.push(name.to_string()); // the older format's one name
        }
        let action = action(json.get("action"), json.get("errnoRet"))?;
        let args = match json.get("args").and_then(Value::as_array) {
            Some(args) => args.iter().map(arg_compare).collect::<Result<_>>()?,
            None => Vec::new(),
        };
        Ok(Rule {
            names,
            action,
            args,
        })
    }
}

/// `SCMP_ACT_ERRNO` and its errno (EPERM if none), or another action.
fn action(name: Option<&Value>, errno: Option<&Value>) -> Result<ScmpAction> {
    let name = name
        .and_then(Value::as_str)
        .ok_or(anyhow!("an action is missing"))?;
    let errno = errno.and_then(Value::as_i64).unwrap_or(EPERM.into());
    ScmpAction::from_str(name, Some(errno as i32)).map_err(|_| anyhow!("unknown action {name}"))
}

/// Docker's `{"index": 0, "value": V, "valueTwo": W, "op": "SCMP_CMP_..."}`;
/// for `SCMP_CMP_MASKED_EQ`, V is the mask and W the value.
fn arg_compare(json: &Value) -> Result<ScmpArgCompare> {
    let number = |key| json.get(key).and_then(Value::as_u64).unwrap_or(0);
    let op = json.get("op").and_then(Value::as_str).unwrap_or_default();
    let op = ScmpCompareOp::from_str(op).map_err(|_| anyhow!("unknown comparison {op:?}"))?;
    let index = number("index") as u32;
    Ok(match op {
        ScmpCompareOp::MaskedEqual(_) => ScmpArgCompare::new(
            index,
            ScmpCompareOp::MaskedEqual(number("value")),
            number("valueTwo"),
        ),
        op => ScmpArgCompare::new(index, op, number("value")),
    })
}

/// Docker's conditions on a rule: the capabilities it `includes` are all
/// kept and none it `excludes` is; same for this machine's architecture.
fn applies(rule: &Value, caps: &CapsHashSet) -> Result<bool> {
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    };
    let field = |side: &str, key: &str| strings(rule.get(side).and_then(|s| s.get(key)));
    let kept = |name: &String| capability(name).is_ok_and(|cap| caps.contains(&cap));
    let (inc_caps, exc_caps) = (field("includes", "caps")?, field("excludes", "caps")?);
    let (inc_arches, exc_arches) = (field("includes", "arches")?, field("excludes", "arches")?);
    Ok(inc_caps.iter().all(kept)
        && !exc_caps.iter().any(kept)
        && (inc_arches.is_empty() || inc_arches.iter().any(|a| a == arch))
        && !exc_arches.iter().any(|a| a == arch))
}

/// A JSON array of strings (none if absent).
fn strings(json: Option<&Value>) -> Result<Vec<String>> {
    let Some(json) = json.filter(|j| !j.is_null()) else {
        return Ok(Vec::new());
    };
    let list = json.as_array().ok_or(anyhow!("{json} is not a list"))?;
    list.iter()
        .map(|s| {
            s.as_str()
                .map(String::from)
                .ok_or(anyhow!("{s} is not a name"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use Capability::*;

    fn strings(words: &[&str]) -> Vec<String> {
        words.iter().map(|w| w.to_string()).collect()
    }

    #[test]
    fn capability_names_are_taken_as_docker_takes_them() {
        for name in ["net_raw", "NET_RAW", "cap_net_raw", "CAP_NET_RAW"] {
            assert_eq!(capability(name).unwrap(), CAP_NET_RAW);
        }
        let err = capability("NET_RAWR").unwrap_err().to_string();
        assert!(err.starts_with("unknown capability: NET_RAWR"), "{err}");
    }

    #[test]
    fn add_and_drop_tweak_the_default() {
        let default = [CAP_CHOWN, CAP_KILL];
        let kept = capabilities(&default, &strings(&["sys_time"]), &strings(&["kill"])).unwrap();
        assert_eq!(kept, [CAP_CHOWN, CAP_SYS_TIME].into());
        let kept = capabilities(&default, &strings(&["NET_RAW"]), &strings(&["ALL"])).unwrap();
        assert_eq!(kept, [CAP_NET_RAW].into());
        let kept = capabilities(&default, &strings(&["all"]), &strings(&["chown"])).unwrap();
        assert!(kept.contains(&CAP_SYS_ADMIN) && !kept.contains(&CAP_CHOWN));
        assert!(capabilities(&default, &strings(&["nope"]), &[]).is_err());
    }

    #[test]
    fn a_docker_profile_is_read_with_its_conditions() {
        let json = serde_json::json!({
            "defaultAction": "SCMP_ACT_ERRNO",
            "defaultErrnoRet": 38,
            "architectures": ["SCMP_ARCH_X86_64"],
            "syscalls": [
                {"names": ["read", "write"], "action": "SCMP_ACT_ALLOW", "comment": "x"},
                {"names": ["mount"], "action": "SCMP_ACT_ALLOW",
                 "includes": {"caps": ["CAP_SYS_ADMIN"]}},
                {"names": ["clone"], "action": "SCMP_ACT_ALLOW",
                 "args": [{"index": 0, "value": 2114060288, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}],
                 "excludes": {"caps": ["CAP_SYS_ADMIN"]}},
                {"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13}
            ]
        });
        let profile = Profile::from_json(&json, &[CAP_CHOWN].into()).unwrap();
        assert_eq!(profile.default, ScmpAction::Errno(38));
        let names: Vec<_> = profile.rules.iter().map(|r| r.names.join(",")).collect();
        assert_eq!(names, ["read,write", "clone", "mkdir"]);
        assert_eq!(profile.rules[1].args.len(), 1);
        assert_eq!(profile.rules[2].action, ScmpAction::Errno(13));
    }

    #[test]
    fn an_unknown_action_is_refused() {
        let json = serde_json::json!({"defaultAction": "SCMP_ACT_MAYBE"});
        let err = Profile::from_json(&json, &HashSet::new())
            .unwrap_err()
            .to_string();
        assert_eq!(err, "unknown action SCMP_ACT_MAYBE");
    }

    #[test]
    fn unknown_security_options_are_refused() {
        let err = seccomp(&strings(&["apparmor=x"]), &HashSet::new()).unwrap_err();
        assert!(err
            .to_string()
            .starts_with("unsupported --security-opt apparmor=x"));
        let opt = seccomp(&strings(&["seccomp=unconfined"]), &HashSet::new()).unwrap();
        assert!(matches!(opt, Seccomp::Unconfined));
    }
}
