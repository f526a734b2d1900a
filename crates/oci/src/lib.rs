//! # pfs-oci: chapter 08's machinery, not a lesson
//!
//! Chapter 08 is an OCI runtime: podman (through conmon) and containerd
//! (through its runc shim) call it as they call runc. What that takes
//! besides the chapter's idea lives here: the command line with runc's
//! flags ([`cli`]), reading a bundle's `config.json` ([`config`]), and
//! turning fstab-style mount options into mount(2)'s flags and data
//! ([`mount_options`]). The chapter maps what they return onto the steps
//! of chapters 01 to 07.
//!
//! For that mapping: the table of the fields ch08 acts on, and the check
//! that refuses any other ([`validate`]); the fields read and checked into
//! what the chapter's layers take ([`settings`], [`tables`], [`seccomp`]);
//! and the steps that are chapters 04, 06 and 07's with other inputs:
//! joining namespaces by path ([`join`]), device nodes and the device
//! policy ([`devices`]), the five capability sets ([`capabilities`]).
//!
//! For the lifecycle: each container's record and the spec's state JSON
//! ([`state`]), the `--log` file ([`log`]), running hooks ([`hooks`]), the
//! features document ([`features`]), a terminal's plumbing ([`console`])
//! and the descriptors passed on ([`fds`]).

pub mod capabilities;
pub mod cli;
pub mod config;
pub mod console;
pub mod devices;
pub mod fds;
pub mod features;
pub mod hooks;
pub mod join;
pub mod log;
pub mod mount_options;
pub mod resources;
pub mod seccomp;
pub mod settings;
pub mod state;
pub mod tables;
pub mod validate;
