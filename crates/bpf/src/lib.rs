//! Chapter 07's cgroup v2 device program, as the kernel takes it: eBPF
//! instructions encoded (`struct bpf_insn`), the rules of a v1 devices list
//! read, and the two `bpf(2)` calls that load a program and attach it to a
//! group (narrated under `--explain`). Machinery, not a lesson: the chapter
//! writes the program (which checks, in which order) and attaches it with
//! what this crate provides.
//! No crate does only this without a C toolchain (libbpf-rs builds libbpf;
//! aya is a whole framework), and it is small.

use std::ffi::CStr;
use std::fmt;
use std::fs::File;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;
use std::str::FromStr;

use anyhow::{anyhow, bail, Context, Result};
use nix::libc;
use pfs_cli::explain;

/// `bpf_cgroup_dev_ctx.access_type`, low 16 bits: the kind of node.
pub const DEV_BLOCK: u32 = 1;
pub const DEV_CHAR: u32 = 2;
/// ... high 16 bits: what the process asks to do with it.
pub const ACC_MKNOD: u32 = 1;
pub const ACC_READ: u32 = 2;
pub const ACC_WRITE: u32 = 4;

/// A register: r0 holds the result, r1 the context on entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reg(pub u8);
pub const R0: Reg = Reg(0);
pub const R1: Reg = Reg(1);
pub const R2: Reg = Reg(2);
pub const R3: Reg = Reg(3);
pub const R4: Reg = Reg(4);
pub const R5: Reg = Reg(5);

// Opcodes: class | operation | source (immediate K or register X).
const LDX_MEM_W: u8 = 0x61; // BPF_LDX | BPF_MEM | BPF_W
const ALU64_AND_K: u8 = 0x57;
const ALU64_RSH_K: u8 = 0x77;
const ALU64_MOV_K: u8 = 0xb7;
const JMP_JNE_K: u8 = 0x55;
const JMP_JSET_K: u8 = 0x45;
const JMP_EXIT: u8 = 0x95;

/// One instruction, laid out as the kernel's `struct bpf_insn`: opcode,
/// destination and source registers (4 bits each), offset, immediate.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Insn {
    pub code: u8,
    regs: u8,
    /// For a jump: how many instructions it skips.
    pub off: i16,
    pub imm: i32,
}

impl Insn {
    fn new(code: u8, dst: Reg, src: Reg, off: i16, imm: i32) -> Insn {
        let regs = dst.0 | (src.0 << 4);
        Insn {
            code,
            regs,
            off,
            imm,
        }
    }
    /// `dst = *(u32 *)(src + off)`
    pub fn load_u32(dst: Reg, src: Reg, off: i16) -> Insn {
        Insn::new(LDX_MEM_W, dst, src, off, 0)
    }
    /// `dst &= imm`
    pub fn and(dst: Reg, imm: u32) -> Insn {
        Insn::new(ALU64_AND_K, dst, R0, 0, imm as i32)
    }
    /// `dst >>= imm`
    pub fn rsh(dst: Reg, imm: u32) -> Insn {
        Insn::new(ALU64_RSH_K, dst, R0, 0, imm as i32)
    }
    /// `dst = imm`
    pub fn mov(dst: Reg, imm: u32) -> Insn {
        Insn::new(ALU64_MOV_K, dst, R0, 0, imm as i32)
    }
    /// `if dst != imm goto pc+off` (set `off` once the target is known).
    pub fn jne(dst: Reg, imm: u32) -> Insn {
        Insn::new(JMP_JNE_K, dst, R0, 0, imm as i32)
    }
    /// `if dst & imm goto pc+off`: jump if any of those bits is set.
    pub fn jset(dst: Reg, imm: u32) -> Insn {
        Insn::new(JMP_JSET_K, dst, R0, 0, imm as i32)
    }
    /// Return r0.
    pub fn exit() -> Insn {
        Insn::new(JMP_EXIT, R0, R0, 0, 0)
    }
    fn dst(&self) -> usize {
        (self.regs & 0xf) as usize
    }
    fn src(&self) -> usize {
        (self.regs >> 4) as usize
    }
}

/// The verifier's notation (`bpftool prog dump xlated` shows the same).
impl fmt::Display for Insn {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        let (d, s, off, imm) = (self.dst(), self.src(), self.off, self.imm as u32);
        match self.code {
            LDX_MEM_W => write!(f, "r{d} = *(u32 *)(r{s} + {off})"),
            ALU64_AND_K => write!(f, "r{d} &= {imm:#x}"),
            ALU64_RSH_K => write!(f, "r{d} >>= {imm}"),
            ALU64_MOV_K => write!(f, "r{d} = {imm}"),
            JMP_JNE_K => write!(f, "if r{d} != {imm:#x} goto pc+{off}"),
            JMP_JSET_K => write!(f, "if r{d} & {imm:#x} goto pc+{off}"),
            JMP_EXIT => write!(f, "exit"),
            code => write!(f, "(code {code:#04x})"),
        }
    }
}

/// What a device program decides for a node: run `program` on the context
/// the kernel would pass (`struct bpf_cgroup_dev_ctx`). Only the
/// instructions above, and only loads from the context: for tests, on any
/// machine, without loading anything.
pub fn run(program: &[Insn], kind: u32, access: u32, major: u32, minor: u32) -> Result<u64> {
    let ctx = [kind | (access << 16), major, minor];
    let mut r = [0u64; 11];
    let mut pc = 0usize;
    loop {
        let insn = program
            .get(pc)
            .ok_or_else(|| anyhow!("no instruction {pc}"))?;
        let (d, imm) = (insn.dst(), insn.imm as i64 as u64);
        let mut next = pc + 1;
        let jump = pc + 1 + insn.off as usize;
        match insn.code {
            LDX_MEM_W => r[d] = ctx[insn.off as usize / 4] as u64,
            ALU64_AND_K => r[d] &= imm,
            ALU64_RSH_K => r[d] >>= imm,
            ALU64_MOV_K => r[d] = imm,
            JMP_JNE_K if r[d] != imm => next = jump,
            JMP_JSET_K if r[d] & imm != 0 => next = jump,
            JMP_JNE_K | JMP_JSET_K => {}
            JMP_EXIT => return Ok(r[0]),
            code => bail!("instruction {pc}: unknown code {code:#04x}"),
        }
        pc = next;
    }
}

/// One line of cgroup v1's devices list, `c 1:3 rwm`: the kind of node
/// (`c`, `b` or `a` for both), its numbers (`*` for any) and the access.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeviceRule {
    /// [`DEV_CHAR`] or [`DEV_BLOCK`]; `None`: either.
    pub kind: Option<u32>,
    pub major: Option<u32>,
    pub minor: Option<u32>,
    /// [`ACC_MKNOD`], [`ACC_READ`], [`ACC_WRITE`], or'ed.
    pub access: u32,
}

impl FromStr for DeviceRule {
    type Err = anyhow::Error;

    fn from_str(line: &str) -> Result<DeviceRule> {
        let bad = || anyhow!("bad devices rule {line:?} (e.g. \"c 1:3 rwm\")");
        let mut words = line.split_whitespace();
        let (Some(kind), Some(numbers), Some(letters), None) =
            (words.next(), words.next(), words.next(), words.next())
        else {
            return Err(bad());
        };
        let kind = match kind {
            "c" => Some(DEV_CHAR),
            "b" => Some(DEV_BLOCK),
            "a" => None,
            _ => return Err(bad()),
        };
        let number = |n: &str| match n {
            "*" => Ok(None),
            n => n.parse().map(Some).map_err(|_| bad()),
        };
        let (major, minor) = numbers.split_once(':').ok_or_else(bad)?;
        let mut access = 0;
        for letter in letters.chars() {
            access |= match letter {
                'm' => ACC_MKNOD,
                'r' => ACC_READ,
                'w' => ACC_WRITE,
                _ => return Err(bad()),
            };
        }
        Ok(DeviceRule {
            kind,
            major: number(major)?,
            minor: number(minor)?,
            access,
        })
    }
}

const BPF_PROG_LOAD: libc::c_int = 5;
const BPF_PROG_ATTACH: libc::c_int = 8;
const BPF_PROG_TYPE_CGROUP_DEVICE: u32 = 15;
const BPF_CGROUP_DEVICE: u32 = 6;
/// Groups below ours may attach programs too, which the kernel runs as well
/// (a node must pass all): as runc attaches.
const BPF_F_ALLOW_MULTI: u32 = 2;

/// The head of `union bpf_attr` for `BPF_PROG_LOAD`; the kernel reads the
/// fields we leave out as zero.
#[repr(C)]
struct ProgLoad {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
}

/// ... and for `BPF_PROG_ATTACH`.
#[repr(C)]
struct ProgAttach {
    target_fd: u32,
    attach_bpf_fd: u32,
    attach_type: u32,
    attach_flags: u32,
}

fn bpf<T>(command: libc::c_int, attr: &T) -> std::io::Result<libc::c_long> {
    // SAFETY: attr is a live, initialized bpf_attr head of the given size.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            command,
            attr as *const T,
            std::mem::size_of::<T>(),
        )
    };
    if ret < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(ret)
}

/// `bpf(BPF_PROG_LOAD)` of a `BPF_PROG_TYPE_CGROUP_DEVICE` program: the
/// kernel's verifier checks it first, and its log says why it refused.
pub fn load_device_program(program: &[Insn]) -> Result<OwnedFd> {
    // Required, but it only matters to programs that call GPL-only helpers.
    let license = c"GPL";
    explain::step(
        &format!(
            "bpf(BPF_PROG_LOAD, BPF_PROG_TYPE_CGROUP_DEVICE, {} insns)",
            program.len()
        ),
        "bpftool prog load devices.o /sys/fs/bpf/devices type cgroup/dev",
    );
    if explain::enabled() {
        for (i, insn) in program.iter().enumerate() {
            eprintln!("{i:>12}: {insn}");
        }
    }
    let fd = match prog_load(program, license, &mut []) {
        Ok(fd) => fd,
        Err(e) => {
            // Again, with the verifier's log: its reason comes last, before
            // the statistics ("processed N insns").
            let mut log = vec![0u8; 1 << 20];
            let _ = prog_load(program, license, &mut log);
            let end = log.iter().position(|&b| b == 0).unwrap_or(log.len());
            let log = String::from_utf8_lossy(&log[..end]);
            let stats = |l: &&str| l.is_empty() || l.starts_with("processed ");
            let last = log.lines().rfind(|l| !stats(l)).unwrap_or("");
            bail!("load the device program: {e} (verifier: {last})")
        }
    };
    // SAFETY: the kernel returned a new file descriptor, ours alone.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// One `BPF_PROG_LOAD`, with the verifier's log in `log` unless empty.
fn prog_load(program: &[Insn], license: &CStr, log: &mut [u8]) -> std::io::Result<libc::c_long> {
    let attr = ProgLoad {
        prog_type: BPF_PROG_TYPE_CGROUP_DEVICE,
        insn_cnt: program.len() as u32,
        insns: program.as_ptr() as u64,
        license: license.as_ptr() as u64,
        log_level: !log.is_empty() as u32,
        log_size: log.len() as u32,
        // No log: no buffer either (the kernel refuses one it may not use).
        log_buf: if log.is_empty() {
            0
        } else {
            log.as_mut_ptr() as u64
        },
    };
    bpf(BPF_PROG_LOAD, &attr)
}

/// `bpf(BPF_PROG_ATTACH)`: attach `program` to the group at `cgroup` (a v2
/// group directory). The group holds it until it is removed.
pub fn attach_device_program(program: &OwnedFd, cgroup: &Path) -> Result<()> {
    let group = cgroup.display();
    explain::step(
        &format!("bpf(BPF_PROG_ATTACH, \"{group}\", BPF_CGROUP_DEVICE, BPF_F_ALLOW_MULTI)"),
        &format!("bpftool cgroup attach {group} device pinned /sys/fs/bpf/devices multi"),
    );
    let dir = File::open(cgroup).with_context(|| format!("open {}", cgroup.display()))?;
    let attr = ProgAttach {
        target_fd: dir.as_raw_fd() as u32,
        attach_bpf_fd: program.as_raw_fd() as u32,
        attach_type: BPF_CGROUP_DEVICE,
        attach_flags: BPF_F_ALLOW_MULTI,
    };
    bpf(BPF_PROG_ATTACH, &attr)
        .with_context(|| format!("attach the device program to {}", cgroup.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_read_as_the_v1_list_writes_them() {
        let rule: DeviceRule = "c 136:* rwm".parse().unwrap();
        let access = ACC_MKNOD | ACC_READ | ACC_WRITE;
        let expected = DeviceRule {
            kind: Some(DEV_CHAR),
            major: Some(136),
            minor: None,
            access,
        };
        assert_eq!(rule, expected);
        let rule: DeviceRule = "a *:* m".parse().unwrap();
        assert_eq!(
            (rule.kind, rule.major, rule.access),
            (None, None, ACC_MKNOD)
        );
        for bad in [
            "c 1:3",
            "x 1:3 r",
            "c 1 r",
            "c 1:3 rx",
            "c a:3 r",
            "c 1:3 r w",
        ] {
            let error = bad.parse::<DeviceRule>().unwrap_err().to_string();
            assert!(error.starts_with("bad devices rule"), "{bad}: {error}");
        }
    }

    #[test]
    fn instructions_encode_and_read_as_the_verifier_writes_them() {
        let load = Insn::load_u32(R4, R1, 4);
        assert_eq!((load.code, load.regs, load.off), (0x61, 0x14, 4));
        assert_eq!(load.to_string(), "r4 = *(u32 *)(r1 + 4)");
        let mut jump = Insn::jset(R3, 0xfff8);
        jump.off = 3;
        assert_eq!(jump.to_string(), "if r3 & 0xfff8 goto pc+3");
        assert_eq!(std::mem::size_of::<Insn>(), 8);
    }

    #[test]
    fn the_interpreter_follows_jumps() {
        let mut skip = Insn::jne(R2, DEV_CHAR);
        skip.off = 2;
        let program = [
            Insn::load_u32(R2, R1, 0),
            Insn::and(R2, 0xffff),
            skip,
            Insn::mov(R0, 1),
            Insn::exit(),
            Insn::mov(R0, 0),
            Insn::exit(),
        ];
        assert_eq!(run(&program, DEV_CHAR, ACC_READ, 1, 3).unwrap(), 1);
        assert_eq!(run(&program, DEV_BLOCK, ACC_READ, 8, 0).unwrap(), 0);
    }
}
