//! # pfs-netlink: a very small, synchronous netlink client
//!
//! This crate is machinery, not a lesson: it opens a `NETLINK_ROUTE`
//! socket, sends one request, and reads the kernel's answer. The messages
//! themselves (make a bridge, a veth pair, an address, a route) are
//! chapter 03's lesson and live in `chapters/03-network/src/lib.rs`.
//!
//! `ip link`, `ip addr` and `ip route` are themselves thin wrappers around
//! exactly this: they build an `RTM_*` message, send it on a netlink socket
//! and print the reply. We use the `netlink-packet-route` crate to build and
//! parse the messages, and `netlink-sys` for the socket. No async runtime,
//! no thread: the runtime forks, and a fork must stay single-threaded.
//!
//! A socket belongs to the network namespace of the process that opened it,
//! so each request opens its own socket: after the child enters its new
//! namespace, its requests reach *its* kernel tables, not the host's.
//!
//! Also here, because chapter 03 needs them but does not teach them: the
//! kernel's rule for link names ([`check_link_name`]), `doctor`'s network
//! checks ([`check`]), and [`nat`], chapter 03's `--nat` and `--publish`:
//! nftables rules for the host, loaded with the `nft` program, as a layer
//! of their own. And the plumbing around the lesson: [`args`], the
//! `--bridge` and `--subnet` options (with the reason for their defaults)
//! that every chapter from 03 on accepts, and [`subnet`], the arithmetic of
//! an IPv4 subnet under chapter 03's IPAM (`--subnet`, `--ip`), and
//! [`name::Name`], the layer that keeps `--name`'s record for
//! `--net container:NAME`. Chapter 06 uses this crate through chapter 03.

pub mod args;
pub mod name;
pub mod nat;
pub mod subnet;

use std::io;

use netlink_packet_core::{
    NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_CREATE, NLM_F_DUMP, NLM_F_EXCL,
    NLM_F_REQUEST,
};
use netlink_packet_route::link::{LinkAttribute, LinkMessage};
use netlink_packet_route::RouteNetlinkMessage;
use netlink_sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};

/// Flags for a request that creates something that must not exist yet
/// (`ip link add` fails with "File exists" the same way).
pub const CREATE: u16 = NLM_F_CREATE | NLM_F_EXCL;

/// Every netlink message starts with a 16-byte header: length, type,
/// flags, sequence number, port.
const HEADER_LEN: usize = 16;

/// Send one request and wait for the kernel's acknowledgement. `flags` adds
/// to `NLM_F_REQUEST | NLM_F_ACK` (e.g. [`CREATE`]). The error carries the
/// kernel's errno (`EEXIST`, `ENODEV`, ...), so callers can match on it.
pub fn request(message: RouteNetlinkMessage, flags: u16) -> io::Result<Vec<RouteNetlinkMessage>> {
    talk(message, NLM_F_REQUEST | NLM_F_ACK | flags)
}

/// Ask for every object of a kind (every link, every address, ...).
pub fn dump(message: RouteNetlinkMessage) -> io::Result<Vec<RouteNetlinkMessage>> {
    talk(message, NLM_F_REQUEST | NLM_F_DUMP)
}

/// The index of the link called `name` (what `ip link show NAME` prints
/// first), or `None` when there is no such link.
pub fn link_index(name: &str) -> io::Result<Option<u32>> {
    let mut message = LinkMessage::default();
    message.attributes.push(LinkAttribute::IfName(name.into()));
    match request(RouteNetlinkMessage::GetLink(message), 0) {
        Ok(replies) => Ok(replies.iter().find_map(|reply| match reply {
            RouteNetlinkMessage::NewLink(link) => Some(link.header.index),
            _ => None,
        })),
        Err(e) if e.raw_os_error() == Some(nix::libc::ENODEV) => Ok(None),
        Err(e) => Err(e),
    }
}

/// The names of all links in this network namespace.
pub fn link_names() -> io::Result<Vec<String>> {
    let replies = dump(RouteNetlinkMessage::GetLink(LinkMessage::default()))?;
    let names = replies.iter().filter_map(|reply| match reply {
        RouteNetlinkMessage::NewLink(link) => link.attributes.iter().find_map(|a| match a {
            LinkAttribute::IfName(name) => Some(name.clone()),
            _ => None,
        }),
        _ => None,
    });
    Ok(names.collect())
}

/// `doctor`: can we talk to the kernel, and what do `--nat` and
/// `--publish` find on this host?
pub fn check(list: &mut pfs_state::report::Checklist) {
    let netlink_ok = link_names().is_ok();
    list.require(
        netlink_ok,
        "netlink (NETLINK_ROUTE)",
        "cannot open a netlink socket",
    );
    let forwarding = std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward").unwrap_or_default();
    let on_demand = "off for now: --nat and --publish turn it on";
    list.note(forwarding.trim() == "1", "IPv4 forwarding on", on_demand);
    let nft_fix = "needed by --nat and --publish: apt-get install nftables";
    list.note(nat::nft_installed(), "nft (nftables)", nft_fix);
}

/// A link name as the kernel takes it: 1 to 15 bytes, no `/`, `:` or
/// whitespace, not `.` or `..`.
pub fn check_link_name(name: &str) -> anyhow::Result<()> {
    let bad_char = name
        .bytes()
        .any(|b| b == b'/' || b == b':' || b.is_ascii_whitespace());
    if name.is_empty() || name.len() > 15 || bad_char || name == "." || name == ".." {
        anyhow::bail!(
            "invalid bridge name {name:?}: use 1 to 15 bytes, without '/', ':' or spaces"
        );
    }
    Ok(())
}

/// Whether an error is the kernel's "already exists" / "no such device".
pub fn is_errno(error: &io::Error, errno: i32) -> bool {
    error.raw_os_error() == Some(errno)
}

fn talk(message: RouteNetlinkMessage, flags: u16) -> io::Result<Vec<RouteNetlinkMessage>> {
    let mut socket = Socket::new(NETLINK_ROUTE)?;
    socket.bind_auto()?;
    socket.connect(&SocketAddr::new(0, 0))?;

    let mut header = NetlinkHeader::default();
    header.flags = flags;
    header.sequence_number = 1;
    let mut packet = NetlinkMessage::new(header, NetlinkPayload::InnerMessage(message));
    packet.finalize();
    let mut bytes = vec![0; packet.buffer_len()];
    packet.serialize(&mut bytes);
    socket.send(&bytes, 0)?;

    let mut replies = Vec::new();
    loop {
        let (bytes, _) = socket.recv_from_full()?;
        if read_replies(&bytes, &mut replies)? {
            return Ok(replies);
        }
    }
}

/// Read the messages of one datagram from the kernel into `replies`. True
/// when the answer is complete: an acknowledgement (an "error" with code
/// 0) or the end of a dump. A message whose length field is shorter than a
/// header, or longer than what is left, is an error: reading on would
/// never move forward (a length of 0), or past the end.
pub fn read_replies(mut bytes: &[u8], replies: &mut Vec<RouteNetlinkMessage>) -> io::Result<bool> {
    let invalid = |why: String| io::Error::new(io::ErrorKind::InvalidData, why);
    while !bytes.is_empty() {
        let field: [u8; 4] = bytes
            .get(..4)
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| invalid(format!("netlink: {} stray bytes", bytes.len())))?;
        let length = u32::from_ne_bytes(field) as usize;
        if length < HEADER_LEN || length > bytes.len() {
            return Err(invalid(format!(
                "netlink: a message says it is {length} bytes long, with {} left",
                bytes.len()
            )));
        }
        let reply = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&bytes[..length])
            .map_err(|e| invalid(e.to_string()))?;
        match reply.payload {
            NetlinkPayload::Error(error) => match error.code {
                None => return Ok(true),
                Some(_) => return Err(error.to_io()),
            },
            NetlinkPayload::Done(_) => return Ok(true),
            NetlinkPayload::InnerMessage(inner) => replies.push(inner),
            _ => {}
        }
        // Messages are 4-byte aligned.
        bytes = &bytes[((length + 3) & !3).min(bytes.len())..];
    }
    Ok(false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use netlink_packet_core::ErrorMessage;

    #[test]
    fn link_names_follow_the_kernels_rules() {
        assert!(check_link_name("pfs0").is_ok());
        assert!(check_link_name(&"b".repeat(15)).is_ok());
        for bad in ["", ".", "..", "a/b", "a b", "a:b", &"b".repeat(16)] {
            let err = check_link_name(bad).unwrap_err().to_string();
            assert!(err.starts_with("invalid bridge name"), "{bad:?}: {err}");
        }
    }

    fn bytes_of(payload: NetlinkPayload<RouteNetlinkMessage>) -> Vec<u8> {
        let mut packet = NetlinkMessage::new(NetlinkHeader::default(), payload);
        packet.finalize();
        let mut bytes = vec![0; packet.buffer_len()];
        packet.serialize(&mut bytes);
        bytes
    }

    #[test]
    fn a_zero_length_message_is_an_error_not_an_endless_loop() {
        let mut replies = Vec::new();
        let err = read_replies(&[0; 16], &mut replies).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        assert!(err.to_string().contains("0 bytes long"), "{err}");
    }

    #[test]
    fn lengths_shorter_than_a_header_or_past_the_end_are_errors() {
        let mut replies = Vec::new();
        for length in [1u32, 15, 17, 1000] {
            let mut bytes = vec![0; 16];
            bytes[..4].copy_from_slice(&length.to_ne_bytes());
            assert!(read_replies(&bytes, &mut replies).is_err(), "{length}");
        }
        assert!(read_replies(&[1, 2], &mut replies).is_err());
        assert!(replies.is_empty());
    }

    #[test]
    fn links_are_collected_until_the_acknowledgement() {
        let link = RouteNetlinkMessage::NewLink(LinkMessage::default());
        let mut bytes = bytes_of(NetlinkPayload::InnerMessage(link.clone()));
        let mut replies = Vec::new();
        assert!(!read_replies(&bytes, &mut replies).unwrap());
        bytes.extend(bytes_of(NetlinkPayload::Error(ErrorMessage::default())));
        assert!(read_replies(&bytes, &mut replies).unwrap());
        assert_eq!(replies, [link.clone(), link]);
    }
}
