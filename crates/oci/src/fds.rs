//! `--preserve-fds N`: the process keeps stdio and the N descriptors after
//! it (3 to 2+N), as runc passes them; every other descriptor the runtime
//! inherited from its caller is closed at `execve`, so none leaks into the
//! container.

use anyhow::Result;
use ch01::{explain, Layer};

/// The layer, last before `execve` (close-on-exec: the runtime's own
/// descriptors still work until then).
pub struct PreserveFds(pub u32);

impl Layer for PreserveFds {
    fn just_before_exec(&mut self) -> Result<()> {
        let first = 3 + self.0;
        explain::step(
            &format!("close_range({first}, ~0, CLOSE_RANGE_CLOEXEC)"),
            "(runc: --preserve-fds)",
        );
        // SAFETY: marks descriptors close-on-exec; no memory is touched.
        let flags = nix::libc::CLOSE_RANGE_CLOEXEC;
        let done =
            unsafe { nix::libc::syscall(nix::libc::SYS_close_range, first, u32::MAX, flags) };
        if done < 0 {
            return Err(std::io::Error::last_os_error().into());
        }
        Ok(())
    }
}
