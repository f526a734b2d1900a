//! Pulls from a registry that misbehaves (testkit's proxy in front of
//! Debian's docker-registry on 127.0.0.1): each fault fails the pull with a
//! message that says what happened, and leaves nothing partial; a good pull
//! into the same data directory works afterwards. The pulls run in this
//! process (`pfs_image::pull`), in the data directory named by
//! `PFS_DATA_DIR`, which the test sets (keep one test in this file).

use std::fs;
use std::path::Path;
use testkit::registry::proxy::{Fault, Proxy, MIN_FAULTY_BLOB};
use testkit::registry::{OciLayout, Registry, TempDir};

/// Every path under `dir`, relative.
fn files(dir: &Path) -> Vec<String> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(current) = stack.pop() {
        for entry in fs::read_dir(&current).into_iter().flatten().flatten() {
            if entry.file_type().unwrap().is_dir() {
                stack.push(entry.path());
            }
            found.push(
                entry
                    .path()
                    .strip_prefix(dir)
                    .unwrap()
                    .display()
                    .to_string(),
            );
        }
    }
    found
}

#[test]
fn a_misbehaving_registry_fails_the_pull_clearly_and_leaves_nothing() {
    let scratch = TempDir::new("faulty-registry");
    // One layer of incompressible bytes, large enough for the faults.
    let content = scratch.join("content");
    fs::create_dir(&content).unwrap();
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let noise: Vec<u8> = (0..4 * MIN_FAULTY_BLOB)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect();
    fs::write(content.join("noise"), &noise).unwrap();
    let layout = OciLayout::init(&scratch.join("oci"));
    layout.new_image("v1");
    layout.insert_dir("v1", &content, "/data");
    let registry = Registry::start();
    layout.push("v1", &registry, "faulty:v1");
    let proxy = Proxy::start(&registry);
    let data = scratch.join("data");
    std::env::set_var("PFS_DATA_DIR", &data);
    let args = pfs_image::PullArgs {
        reference: format!("{}/faulty:v1", proxy.address()),
        insecure: false,
    };

    let faults = [
        (
            Fault::Close {
                after: MIN_FAULTY_BLOB,
            },
            "reading the blob broke off after 65536 of",
        ),
        (
            Fault::Short {
                length: MIN_FAULTY_BLOB,
            },
            "size mismatch: 65536 bytes instead of",
        ),
        (Fault::Long { extra: 10 }, "the blob is larger than"),
    ];
    for (number, (fault, expected)) in faults.into_iter().enumerate() {
        proxy.inject(fault);
        let error = format!("{:#}", pfs_image::pull(&args).unwrap_err());
        assert_eq!(
            proxy.injected(),
            number as u64 + 1,
            "{fault:?} not injected"
        );
        assert!(error.contains(expected), "{fault:?}: {error}");
        assert!(!error.contains('\n'), "{fault:?}: {error}");
        assert!(
            files(&data.join("images")).is_empty(),
            "{fault:?} left an image"
        );
        assert!(files(&data.join("tmp")).is_empty(), "{fault:?} left work");
    }
    let rootfs = pfs_image::pull(&args).unwrap();
    assert_eq!(fs::read(rootfs.join("data/noise")).unwrap(), noise);
}
