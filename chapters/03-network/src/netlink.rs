//! A very small, synchronous netlink client: open a `NETLINK_ROUTE` socket,
//! send one request, read the kernel's answer.
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
        let mut offset = 0;
        while offset < bytes.len() {
            let reply = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&bytes[offset..])
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
            let length = reply.header.length as usize;
            match reply.payload {
                // An "error" with code 0 is the acknowledgement.
                NetlinkPayload::Error(error) => match error.code {
                    None => return Ok(replies),
                    Some(_) => return Err(error.to_io()),
                },
                NetlinkPayload::Done(_) => return Ok(replies),
                NetlinkPayload::InnerMessage(inner) => replies.push(inner),
                _ => {}
            }
            if length == 0 {
                break;
            }
            offset += (length + 3) & !3; // messages are 4-byte aligned
        }
    }
}
