// ANCHOR: pause
//! `pause`: the first process of a pod. It does what Kubernetes' `pause.c`
//! does, line for line, and no more. Its two missions:
//!
//! 1. **hold the pod's namespaces**: a namespace lives as long as a process
//!    is in it, so pause stays alive, asleep, using no CPU;
//! 2. **be PID 1 and reap zombies**: when the pod shares one PID namespace,
//!    every orphaned process of every container becomes pause's child, and
//!    pause collects the exit status of each one as soon as it dies.
//!
//! No standard library (`no_std`): Rust's `std` would add about 300 kB of
//! code that pause never runs (formatting, panic messages, backtraces), and
//! resident memory is what a node with a hundred pods pays a hundred times.
//! So this is C's `main`, calling the C library through the `libc` crate.

#![no_std]
#![no_main]

use core::ffi::{c_char, c_int, CStr};
use core::ptr::null_mut;

// The static C library needs the unwinder's two symbols that `std` would
// normally bring in (glibc uses them for thread cancellation).
#[link(name = "gcc_eh", kind = "static", modifiers = "-bundle")]
extern "C" {}

/// Without `std`, we say what a panic does: abort. (No code here panics.)
#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    // SAFETY: abort(3) ends the process.
    unsafe { libc::abort() }
}

/// SIGINT or SIGTERM: the pod is being stopped. Say so, and exit with 0.
/// A handler may only make async-signal-safe calls: `write(2)`, `_exit(2)`.
extern "C" fn sigdown(signal: c_int) {
    let name: &[u8] = if signal == libc::SIGINT {
        b"Interrupt\n"
    } else {
        b"Terminated\n"
    };
    write_stderr(b"Shutting down, got signal: ");
    write_stderr(name);
    // SAFETY: _exit(2) ends the process at once.
    unsafe { libc::_exit(0) }
}

// ANCHOR: sigreap
/// SIGCHLD: one or more children ended (signals do not queue: one SIGCHLD
/// may stand for several). Collect every dead child, never blocking:
/// `WNOHANG` returns 0 at once when the others are still alive. A child
/// whose exit status is collected stops being a zombie.
extern "C" fn sigreap(_signal: c_int) {
    // SAFETY: waitpid(2) with a null status pointer is allowed.
    while unsafe { libc::waitpid(-1, null_mut(), libc::WNOHANG) } > 0 {}
}
// ANCHOR_END: sigreap

fn write_stderr(bytes: &[u8]) {
    // SAFETY: write(2) to fd 2 from a valid buffer; async-signal-safe.
    unsafe { libc::write(2, bytes.as_ptr().cast(), bytes.len()) };
}

/// `sigaction(2)`: run `handler` when `signal` arrives.
fn on_signal(signal: c_int, handler: extern "C" fn(c_int), flags: c_int) -> bool {
    // SAFETY: a zeroed `struct sigaction` is valid (empty mask, no flags),
    // and both handlers only make async-signal-safe calls.
    unsafe {
        let mut action: libc::sigaction = core::mem::zeroed();
        action.sa_sigaction = handler as libc::sighandler_t;
        action.sa_flags = flags;
        libc::sigaction(signal, &action, null_mut()) == 0
    }
}

#[no_mangle]
extern "C" fn main(argc: c_int, argv: *const *const c_char) -> c_int {
    for i in 1..argc as usize {
        // SAFETY: the C runtime passes argc valid C strings in argv.
        let arg = unsafe { CStr::from_ptr(*argv.add(i)) };
        if arg.to_bytes().eq_ignore_ascii_case(b"-v") {
            let version = concat!("pause version: ", env!("CARGO_PKG_VERSION"), "\n");
            // SAFETY: write(2) to fd 1 from a valid buffer.
            unsafe { libc::write(1, version.as_ptr().cast(), version.len()) };
            return 0;
        }
    }
    // SAFETY: getpid(2) cannot fail.
    if unsafe { libc::getpid() } != 1 {
        // Not an error: pause also serves outside a pod's PID namespace.
        write_stderr(b"Warning: pause should be the first process\n");
    }
    if !on_signal(libc::SIGINT, sigdown, 0) {
        return 1;
    }
    if !on_signal(libc::SIGTERM, sigdown, 0) {
        return 2;
    }
    // SA_NOCLDSTOP: no SIGCHLD when a child merely stops (Ctrl-Z).
    if !on_signal(libc::SIGCHLD, sigreap, libc::SA_NOCLDSTOP) {
        return 3;
    }
    loop {
        // Sleep until a signal arrives; its handler runs; sleep again.
        // SAFETY: pause(2) only waits.
        unsafe { libc::pause() };
    }
}
// ANCHOR_END: pause
