//! The escape gallery's probe: one call per door, each printed as
//! `CALL: VALUE` (0 or what it returned) or `CALL: ERRNO`, so a test can
//! assert the exact error. Static (`rustc -C target-feature=+crt-static`, see ../../build.rs)
//! so it runs in a busybox root; only std and raw syscalls. Every call is
//! harmless even where the door is open: arguments the kernel rejects after
//! its permission check, a mount undone at once, a value written back.

use std::ffi::{c_char, c_int, c_long, c_uint};

extern "C" {
    fn syscall(number: c_long, ...) -> c_long;
    fn geteuid() -> c_uint;
    fn waitpid(pid: c_int, status: *mut c_int, options: c_int) -> c_int;
    fn _exit(status: c_int) -> !;
}

// x86_64's syscall numbers (the machine the tests run on), and flags.
const SYS_OPEN_BY_HANDLE_AT: c_long = 304;
const SYS_NAME_TO_HANDLE_AT: c_long = 303;
const SYS_ADD_KEY: c_long = 248;
const SYS_KEYCTL: c_long = 250;
const SYS_INIT_MODULE: c_long = 175;
const SYS_FINIT_MODULE: c_long = 313;
const SYS_UNSHARE: c_long = 272;
const SYS_CLONE: c_long = 56;
const SYS_MOUNT: c_long = 165;
const SYS_UMOUNT2: c_long = 166;
const SYS_REBOOT: c_long = 169;
const AT_FDCWD: c_long = -100;
const CLONE_NEWUSER: c_long = 0x1000_0000;
const SIGCHLD: c_long = 17;
const KEYCTL_GET_KEYRING_ID: c_long = 0;
const KEY_SPEC_USER_KEYRING: c_long = -4;

/// A raw syscall's result: its value, or errno.
fn checked(result: c_long) -> Result<c_long, i32> {
    let errno = std::io::Error::last_os_error().raw_os_error().unwrap_or(0);
    if result < 0 {
        Err(errno)
    } else {
        Ok(result)
    }
}

/// Print `CALL: VALUE` or `CALL: ERRNO`; true if it worked.
fn report(call: &str, result: Result<c_long, i32>) -> bool {
    match result {
        Ok(value) => println!("{call}: {value}"),
        Err(errno) => println!("{call}: {}", errno_name(errno)),
    }
    result.is_ok()
}

/// The errors a door answers with, by name.
fn errno_name(errno: i32) -> String {
    let name = match errno {
        1 => "EPERM",
        8 => "ENOEXEC",
        9 => "EBADF",
        13 => "EACCES",
        14 => "EFAULT",
        22 => "EINVAL",
        30 => "EROFS",
        38 => "ENOSYS",
        95 => "EOPNOTSUPP",
        116 => "ESTALE",
        _ => return format!("errno {errno}"),
    };
    name.into()
}

fn c_string(text: &str) -> Vec<u8> {
    [text.as_bytes(), b"\0"].concat()
}

/// The id of root's user keyring: the host's own one if no user namespace
/// separates us. Then a key of no type, which the kernel rejects.
fn keyring() {
    let id = unsafe { syscall(SYS_KEYCTL, KEYCTL_GET_KEYRING_ID, KEY_SPEC_USER_KEYRING, 0) };
    report("keyctl", checked(id));
    let empty = c_string("");
    let no_type = empty.as_ptr();
    let keyring = KEY_SPEC_USER_KEYRING;
    let added = unsafe { syscall(SYS_ADD_KEY, no_type, no_type, no_type, 0, keyring) };
    report("add_key", checked(added));
}

/// Shocker: a file handle names an inode without a path. A handle made on
/// `path` (any mount of the host's filesystem) is opened again by number.
fn handle(path: &str) {
    // The mount the handle is opened on (any file of that filesystem).
    let mount_fd = std::fs::File::open(path).map(std::os::fd::IntoRawFd::into_raw_fd);
    // struct file_handle: handle_bytes, handle_type, then up to 128 bytes.
    let mut handle = [0u32; 2 + 32];
    handle[0] = 128;
    let mut mount_id: c_int = 0;
    let path = c_string(path);
    let ptr = path.as_ptr() as *const c_char;
    let made = unsafe {
        syscall(
            SYS_NAME_TO_HANDLE_AT,
            AT_FDCWD,
            ptr,
            handle.as_mut_ptr(),
            &mut mount_id,
            0,
        )
    };
    report("name_to_handle_at", checked(made));
    let mount_fd = c_long::from(mount_fd.unwrap_or(-1));
    let opened = unsafe { syscall(SYS_OPEN_BY_HANDLE_AT, mount_fd, handle.as_ptr(), 0) };
    report("open_by_handle_at", checked(opened).map(|_| 0));
}

/// An empty module image and no file at all: rejected as a bad image or a
/// bad descriptor once the caller may load modules.
fn module() {
    let empty = c_string("");
    let image = empty.as_ptr();
    report(
        "init_module",
        checked(unsafe { syscall(SYS_INIT_MODULE, image, 0, image) }),
    );
    report(
        "finit_module",
        checked(unsafe { syscall(SYS_FINIT_MODULE, -1, image, 0) }),
    );
}

/// A new user namespace, by clone (the child exits at once), then by
/// unshare (last: inside the new one our uid is unmapped, and an unmapped
/// user may not make another).
fn userns() {
    let child = checked(unsafe { syscall(SYS_CLONE, CLONE_NEWUSER | SIGCHLD, 0, 0, 0, 0) });
    match child {
        Ok(0) => unsafe { _exit(0) },
        Ok(pid) => unsafe { waitpid(pid as c_int, std::ptr::null_mut(), 0) },
        Err(_) => 0,
    };
    report("clone", child.map(|_| 0));
    report(
        "unshare",
        checked(unsafe { syscall(SYS_UNSHARE, CLONE_NEWUSER) }),
    );
}

/// Mount a filesystem on `dir`, and unmount it at once.
fn mount(fstype: &str, options: &str, dir: &str) {
    let (fstype, options, dir) = (c_string(fstype), c_string(options), c_string(dir));
    let (source, dir_ptr) = (fstype.as_ptr(), dir.as_ptr());
    let mounted = unsafe { syscall(SYS_MOUNT, source, dir_ptr, source, 0, options.as_ptr()) };
    if report("mount", checked(mounted)) {
        report(
            "umount2",
            checked(unsafe { syscall(SYS_UMOUNT2, dir_ptr, 0) }),
        );
    }
}

/// Write a file's own content back to it (a sysctl keeps its value).
fn rewrite(path: &str) {
    let result = std::fs::read(path).and_then(|value| std::fs::write(path, value));
    let result = result
        .map(|()| 0)
        .map_err(|e| e.raw_os_error().unwrap_or(0));
    report("write", result);
}

/// reboot(2) with no magic numbers: the kernel checks CAP_SYS_BOOT first
/// (EPERM), then the magic (EINVAL), so nothing is ever rebooted. (In a
/// PID namespace a real one would only end the namespace's init anyway.)
fn reboot() {
    report("reboot", checked(unsafe { syscall(SYS_REBOOT, 0, 0, 0, 0) }));
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize| args.get(i).map(String::as_str).unwrap_or("");
    match arg(0) {
        "keyctl" => keyring(),
        "handle" => handle(arg(1)),
        "module" => module(),
        "userns" => userns(),
        "mount" => mount(arg(1), arg(2), arg(3)),
        "rewrite" => rewrite(arg(1)),
        "euid" => println!("euid: {}", unsafe { geteuid() }),
        "reboot" => reboot(),
        _ => {
            eprintln!("usage: probe keyctl|handle PATH|module|userns|mount TYPE OPTIONS DIR|rewrite PATH|euid|reboot");
            std::process::exit(2)
        }
    }
}
