//! `process.terminal` with `--console-socket`: the pty's plumbing. The
//! chapter's `Console` layer makes the pty inside the container and hands
//! its master end to the caller (conmon, the shim), as runc does.

use std::io::IoSlice;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;

use anyhow::{bail, Context, Result};
use nix::libc;
use oci_spec::runtime::Spec;

use nix::sys::socket::{recvmsg, sendmsg, ControlMessage, ControlMessageOwned, MsgFlags};

/// When the process asks for a terminal, connect to the caller's console
/// socket, in the parent: its path may be out of the container's reach.
pub fn connect_for(spec: &Spec, console_socket: Option<&Path>) -> Result<Option<UnixStream>> {
    let Some(socket) = crate::config::console_socket(spec, console_socket)? else {
        return Ok(None);
    };
    let connected = UnixStream::connect(socket)
        .with_context(|| format!("--console-socket {}: cannot connect", socket.display()))?;
    Ok(Some(connected))
}

/// A new pty pair from the devpts mounted in the container: its master
/// end and its slave end (the terminal the process will use).
pub fn open_pty() -> Result<(OwnedFd, OwnedFd)> {
    let ptmx = ["/dev/ptmx", "/dev/pts/ptmx"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .context("process.terminal: no /dev/ptmx or /dev/pts/ptmx (mount devpts at /dev/pts)")?;
    let master = open_fd(ptmx, libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC)?;
    let unlock: libc::c_int = 0;
    // SAFETY: ioctls on a descriptor we own, with the arguments they take.
    if unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSPTLCK, &unlock) } < 0 {
        return Err(std::io::Error::last_os_error()).context("unlock the pty");
    }
    let flags = libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC;
    let slave = unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCGPTPEER, flags) };
    if slave < 0 {
        return Err(std::io::Error::last_os_error()).context("open the pty's slave end");
    }
    // SAFETY: TIOCGPTPEER returned a new descriptor, now ours.
    Ok((master, unsafe { OwnedFd::from_raw_fd(slave) }))
}

fn open_fd(path: &str, flags: libc::c_int) -> Result<OwnedFd> {
    let c_path = std::ffi::CString::new(path)?;
    // SAFETY: open(2) with a NUL-terminated path.
    let fd = unsafe { libc::open(c_path.as_ptr(), flags) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error()).with_context(|| format!("open {path}"));
    }
    // SAFETY: open returned a new descriptor, now ours.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Send `master` over `socket` (SCM_RIGHTS: the kernel copies the open
/// file into the receiver), with a name as runc sends one.
pub fn send_master(socket: &UnixStream, master: &OwnedFd) -> Result<()> {
    let fds = [master.as_raw_fd()];
    let name = [IoSlice::new(b"/dev/ptmx")];
    let rights = [ControlMessage::ScmRights(&fds)];
    sendmsg::<()>(socket.as_raw_fd(), &name, &rights, MsgFlags::empty(), None)
        .context("send the terminal over --console-socket")?;
    Ok(())
}

/// The caller's side (conmon's; the tests play it): accept one connection
/// and receive the master end.
pub fn receive_master(listener: &UnixListener) -> Result<OwnedFd> {
    let (stream, _) = listener.accept().context("accept on the console socket")?;
    let mut name = [0u8; 256];
    let mut buffer = [std::io::IoSliceMut::new(&mut name)];
    let mut space = nix::cmsg_space!([RawFd; 1]);
    let message = recvmsg::<()>(
        stream.as_raw_fd(),
        &mut buffer,
        Some(&mut space),
        MsgFlags::empty(),
    )
    .context("receive the terminal")?;
    for cmsg in message.cmsgs().context("read the control message")? {
        if let ControlMessageOwned::ScmRights(fds) = cmsg {
            if let Some(&fd) = fds.first() {
                // SAFETY: SCM_RIGHTS gave us a new descriptor, now ours.
                return Ok(unsafe { OwnedFd::from_raw_fd(fd) });
            }
        }
    }
    bail!("no descriptor came over the console socket")
}

/// Lead a session with no terminal, then TIOCSCTTY makes this one ours,
/// so Ctrl-C on it signals the container's processes. (A process leading
/// one already, `create`'s after the chapter's setsid, gets EPERM: fine.)
pub fn make_controlling_terminal(terminal: &OwnedFd) -> Result<()> {
    let _ = nix::unistd::setsid();
    ch01::explain::step("ioctl(pty, TIOCSCTTY); dup2(pty, 0/1/2)", "setsid --ctty");
    // SAFETY: an ioctl on a descriptor we own.
    if unsafe { nix::libc::ioctl(terminal.as_raw_fd(), nix::libc::TIOCSCTTY, 0) } < 0 {
        return Err(std::io::Error::last_os_error()).context("ioctl(TIOCSCTTY)");
    }
    nix::unistd::dup2_stdin(terminal)?;
    nix::unistd::dup2_stdout(terminal)?;
    Ok(nix::unistd::dup2_stderr(terminal)?)
}
