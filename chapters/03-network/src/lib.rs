//! # Chapter 03: a network namespace, a veth pair, an IP, a bridge
//!
//! "From the network namespace perspective a container has a new IP address
//! different from the host IP." This chapter adds network layers to chapter
//! 02's runtime, chosen with `--net`:
//!
//! - `--net bridge` (the default), [`Bridged`]: a new network namespace
//!   wired to a bridge of ours on the host by a veth pair, with an address
//!   from the bridge's subnet (IPAM, see [`ipam`]) and a default route
//!   through the bridge;
//! - `--net none`, [`LoopbackOnly`]: a new network namespace with only `lo`;
//! - `--net container:NAME`, [`JoinNetwork`]: no new namespace, but the one
//!   of the container started with `--name NAME` (`docker run
//!   --net=container:first_container`): both see the same `eth0` and IP.
//!
//! All link, address and route work is netlink messages built here and
//! sent from Rust (the socket is the `pfs_netlink` crate's machinery);
//! `--explain` shows the `ip` command doing the same. The records (names,
//! leases) are kept by the `pfs_state` crate, and `--name`'s layer
//! ([`Name`]) by `pfs_netlink`; `cleanup` and `doctor` are in [`ops`].
//!
//! Defaults: the bridge `pfs0` with subnet `10.200.0.0/24`, chosen to
//! overlap no common tool's (why, and how to change them: the options'
//! module, `pfs_netlink::args`).

pub mod ipam;
pub mod ops;

use std::fs::File;
use std::net::Ipv4Addr;
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use ch01::{explain, Layer};
use netlink_packet_route::address::{AddressAttribute, AddressMessage};
use netlink_packet_route::link::{
    InfoData, InfoKind, InfoVeth, LinkAttribute, LinkFlags, LinkInfo, LinkMessage,
};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteHeader, RouteMessage, RouteProtocol, RouteScope, RouteType,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use nix::libc::{EEXIST, ENODEV};
use nix::sched::CloneFlags;
use nix::unistd::Pid;
use pfs_netlink::{self as netlink, nat};
use pfs_state::{leases, names};

use ipam::Subnet;
pub use ops::{cleanup, doctor};
pub use pfs_netlink::args::{BridgeArgs, CleanupArgs, DEFAULT_BRIDGE, DEFAULT_SUBNET};
pub use pfs_netlink::check_link_name;
pub use pfs_netlink::name::Name;

/// `run` options: chapter 02's, plus the network.
#[derive(clap::Args, Debug)]
#[group(skip)]
pub struct RunArgs {
    /// Network: `bridge` (own namespace, veth on the bridge), `none` (only
    /// lo) or `container:NAME` (join that container's namespace)
    #[arg(long, value_name = "MODE", default_value = "bridge")]
    pub net: String,
    /// Ask for this address (from the subnet) instead of the next free one
    #[arg(long, value_name = "ADDR")]
    pub ip: Option<String>,
    /// Register the container under NAME, for `--net container:NAME`
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
    /// Let the container reach beyond the host: masquerade its address
    /// (nftables), and turn IP forwarding on if needed
    #[arg(long)]
    pub nat: bool,
    /// Forward the host's TCP port HOST_PORT to the container's CONTAINER_PORT
    /// (nftables DNAT); may be repeated
    #[arg(long, short = 'p', value_name = "HOST_PORT:CONTAINER_PORT")]
    pub publish: Vec<String>,
    #[command(flatten)]
    pub bridge: BridgeArgs,
    #[command(flatten)]
    pub ch02: ch02::RunArgs,
}

impl RunArgs {
    /// The process to run in the container.
    pub fn process(&self) -> Result<ch01::Process> {
        self.ch02.process()
    }
}

/// What `--net` asked for.
#[derive(Debug, PartialEq, Eq)]
pub enum NetMode {
    Bridge,
    None,
    Container(String),
}

/// Parse `--net bridge|none|container:NAME`.
pub fn parse_net(text: &str) -> Result<NetMode> {
    match text {
        "bridge" => Ok(NetMode::Bridge),
        "none" => Ok(NetMode::None),
        _ => match text.strip_prefix("container:") {
            Some(name) => {
                names::check_name(name)?;
                Ok(NetMode::Container(name.to_string()))
            }
            None => bail!("invalid --net {text:?}: use bridge, none or container:NAME"),
        },
    }
}

/// This chapter's layers (after chapter 02's), after checking every
/// option: nothing is created when an option is wrong.
pub fn layers(args: &RunArgs) -> Result<Vec<Box<dyn Layer>>> {
    let mut layers = ch02::layers(&args.ch02)?;
    let state_dir = pfs_state::state_dir();
    let mode = parse_net(&args.net)?;
    check_link_name(&args.bridge.bridge)?;
    let subnet = Subnet::parse(&args.bridge.subnet)?;
    let requested = match &args.ip {
        Some(text) => Some(ipam::parse_requested(text, subnet)?),
        None => None,
    };
    let publish: Vec<nat::Publish> = args
        .publish
        .iter()
        .map(|text| nat::parse_publish(text))
        .collect::<Result<_>>()?;
    if mode != NetMode::Bridge && (requested.is_some() || args.nat || !publish.is_empty()) {
        bail!("--ip, --nat and --publish need --net bridge");
    }
    if let Some(name) = &args.name {
        names::check_name(name)?;
        layers.push(Box::new(Name::new(state_dir.clone(), name)));
    }
    let bridge = &args.bridge.bridge;
    match mode {
        NetMode::Bridge => {
            let mut bridged = Bridged::new(bridge, subnet, requested, state_dir.clone());
            bridged.joinable = args.name.is_some();
            let mut expose = nat::Expose::new(state_dir, bridge, &bridged.host_end);
            expose.masquerade = args.nat;
            expose.publish = publish;
            layers.push(Box::new(bridged));
            if expose.masquerade || !expose.publish.is_empty() {
                layers.push(Box::new(expose));
            }
        }
        NetMode::None => layers.push(Box::new(LoopbackOnly)),
        NetMode::Container(name) => layers.push(Box::new(JoinNetwork::new(state_dir, &name))),
    }
    Ok(layers)
}

/// `ch03 run`: chapter 01's runtime with chapter 02's and this chapter's layers.
pub fn run(args: &RunArgs) -> Result<i32> {
    let process = args.process()?;
    let mut layers = layers(args)?;
    ch01::run(&process, &mut layers)
}

// ---------------------------------------------------------------------------
// The layers
// ---------------------------------------------------------------------------

// ANCHOR: bridged_struct
/// `--net bridge`: a new network namespace, plugged into our bridge.
pub struct Bridged {
    bridge: String,
    subnet: Subnet,
    requested: Option<Ipv4Addr>,
    leases: PathBuf,
    /// The veth end that stays on the host, on the bridge; the other end is
    /// the container's `eth0`.
    pub host_end: String,
    /// Set once leased, so `cleanup` gives back only what was taken.
    address: Option<Ipv4Addr>,
    /// `--name`: another container may join our network namespace
    /// (`--net container:NAME`) and keep it alive after we exit.
    pub joinable: bool,
}
// ANCHOR_END: bridged_struct

// ANCHOR: bridged_layer
impl Layer for Bridged {
    fn namespaces(&self) -> CloneFlags {
        CloneFlags::CLONE_NEWNET
    }

    /// Parent, before the child exists: an address, the bridge.
    fn prepare(&mut self) -> Result<()> {
        self.prepare_host_side()
    }

    /// Parent, the child exists and waits in its new, empty network
    /// namespace: a veth pair from the bridge to the child's `eth0`.
    fn setup_from_parent(&mut self, child: Pid) -> Result<()> {
        create_veth_pair(&self.host_end, "eth0", child)?;
        ch01::fault::point("after-veth");
        attach_to_bridge(&self.host_end, &self.bridge)?;
        set_link_up(&self.host_end)
    }

    /// Child, in its new network namespace: eth0's address, lo, a route.
    fn setup_in_child(&mut self) -> Result<()> {
        let address = self.address.context("no address was leased")?;
        add_address("eth0", address, self.subnet.prefix)?;
        set_link_up("lo")?;
        set_link_up("eth0")?;
        add_default_route(self.subnet.gateway())
    }
    // ANCHOR_END: bridged_layer

    // ANCHOR: bridged_cleanup
    /// Parent, after the child is gone: the lease.
    /// The veth pair usually needs no step: the child's network namespace
    /// died with its last process, the kernel destroys `eth0` with it, and
    /// a veth pair goes when either end goes. Unless a container that
    /// joined us keeps the namespace alive: then our address must leave
    /// with us, as with Docker, or a new container could be given it.
    fn cleanup(&mut self) -> Result<()> {
        let mut result = Ok(());
        if self.joinable {
            result = delete_link(&self.host_end);
        }
        if let Some(address) = self.address.take() {
            explain::step(
                &format!("flock({}) and drop {address}", self.leases.display()),
                "(our IPAM: give the address back)",
            );
            result = result.and(leases::release(&self.leases, address));
        }
        result
    }
}
// ANCHOR_END: bridged_cleanup

// ANCHOR: bridged_host_side
impl Bridged {
    pub fn new(
        bridge: &str,
        subnet: Subnet,
        requested: Option<Ipv4Addr>,
        state_dir: PathBuf,
    ) -> Self {
        // Named after our PID, unique while we run; the kernel allows 15 bytes.
        let pid = std::process::id();
        Bridged {
            bridge: bridge.to_string(),
            subnet,
            requested,
            leases: leases::path(&state_dir, bridge),
            host_end: format!("pfsh{pid}"),
            address: None,
            joinable: false,
        }
    }

    fn prepare_host_side(&mut self) -> Result<()> {
        explain::step(
            &format!("flock({}) and pick a free address", self.leases.display()),
            "(our IPAM: no ip command for this)",
        );
        let owner = std::process::id();
        let (subnet, requested) = (self.subnet, self.requested);
        let address = leases::allocate(&self.leases, owner, &self.host_end, |taken| {
            ipam::choose_address(subnet, taken, requested)
        })?;
        self.address = Some(address);
        ch01::fault::point("after-lease");
        ensure_bridge(&self.bridge, self.subnet)
    }
}
// ANCHOR_END: bridged_host_side

impl Bridged {
    /// Name the host end after `id` (`pfshID`: 12 bytes at most) instead
    /// of our PID: chapter 06's pods outlive the process that made them,
    /// and its PID may later be given to another run.
    pub fn with_veth_id(mut self, id: &str) -> Self {
        self.host_end = format!("pfsh{id}");
        self
    }
}

/// `--net none`: a new network namespace with nothing but `lo`.
pub struct LoopbackOnly;

impl Layer for LoopbackOnly {
    fn namespaces(&self) -> CloneFlags {
        CloneFlags::CLONE_NEWNET
    }
    fn setup_in_child(&mut self) -> Result<()> {
        set_link_up("lo")
    }
}

// ANCHOR: join_network
/// `--net container:NAME`: no new network namespace; the child joins the
/// one of the running container registered as NAME.
pub struct JoinNetwork {
    state_dir: PathBuf,
    name: String,
    netns: Option<File>,
}

impl JoinNetwork {
    pub fn new(state_dir: PathBuf, name: &str) -> Self {
        JoinNetwork {
            state_dir,
            name: name.to_string(),
            netns: None,
        }
    }
}

impl Layer for JoinNetwork {
    /// Parent: find the container and open its namespace now. The child
    /// will have its own /proc, where the other container's PID is not.
    fn prepare(&mut self) -> Result<()> {
        let Some(pid) = names::lookup(&self.state_dir, &self.name) else {
            bail!(
                "no running container named {:?} (start it with --name {})",
                self.name,
                self.name
            );
        };
        let path = format!("/proc/{pid}/ns/net");
        explain::step(
            &format!("open({path:?})"),
            &format!("(the namespace of {})", self.name),
        );
        self.netns = Some(File::open(&path).with_context(|| format!("open {path}"))?);
        Ok(())
    }

    fn setup_in_child(&mut self) -> Result<()> {
        let netns = self
            .netns
            .as_ref()
            .context("the namespace was not opened")?;
        join_netns(netns, &self.name)
    }
}

/// The key step of `--net container:NAME`: `setns(2)` moves the calling
/// process into an existing namespace, given a file that refers to it.
pub fn join_netns(netns: &File, name: &str) -> Result<()> {
    explain::step(
        &format!("setns(/proc/<{name}>/ns/net, CLONE_NEWNET)"),
        &format!("nsenter --net=/proc/<pid of {name}>/ns/net"),
    );
    nix::sched::setns(netns, CloneFlags::CLONE_NEWNET).context("setns(CLONE_NEWNET)")
}
// ANCHOR_END: join_network

// ---------------------------------------------------------------------------
// The kernel steps, one netlink request each
// ---------------------------------------------------------------------------

/// The bridge, its gateway address, up. Several runs may do this at the
/// same time: "already exists" is fine.
pub fn ensure_bridge(bridge: &str, subnet: Subnet) -> Result<()> {
    create_bridge(bridge)?;
    add_address(bridge, subnet.gateway(), subnet.prefix)?;
    set_link_up(bridge)
}

// ANCHOR: create_bridge
/// A bridge is a virtual switch inside the kernel: every veth end plugged
/// into it can reach the others, and the host reaches them all through the
/// bridge's own address (the containers' gateway).
pub fn create_bridge(name: &str) -> Result<()> {
    explain::step(
        &format!("RTM_NEWLINK {name} kind=bridge"),
        &format!("ip link add {name} type bridge"),
    );
    let mut link = LinkMessage::default();
    link.attributes.push(LinkAttribute::IfName(name.into()));
    link.attributes
        .push(LinkAttribute::LinkInfo(vec![LinkInfo::Kind(
            InfoKind::Bridge,
        )]));
    match netlink::request(RouteNetlinkMessage::NewLink(link), netlink::CREATE) {
        Err(e) if netlink::is_errno(&e, EEXIST) => Ok(()), // made by an earlier run
        other => other
            .map(drop)
            .with_context(|| format!("create bridge {name}")),
    }
}
// ANCHOR_END: create_bridge

// ANCHOR: create_veth_pair
/// The chapter's key step. A veth pair is a virtual cable: what goes in
/// one end comes out of the other. One end stays on the host; the other is
/// born in the child's network namespace (named by the child's PID), so
/// the host never sees it, already called `eth0`: no other link in that
/// namespace can have the name.
pub fn create_veth_pair(host_end: &str, peer: &str, child: Pid) -> Result<()> {
    explain::step(
        &format!("RTM_NEWLINK {host_end} kind=veth peer={peer} IFLA_NET_NS_PID={child}"),
        &format!("ip link add {host_end} type veth peer name {peer} netns {child}"),
    );
    let mut peer_link = LinkMessage::default();
    peer_link
        .attributes
        .push(LinkAttribute::IfName(peer.into()));
    peer_link
        .attributes
        .push(LinkAttribute::NetNsPid(child.as_raw() as u32));
    let mut link = LinkMessage::default();
    link.attributes.push(LinkAttribute::IfName(host_end.into()));
    link.attributes.push(LinkAttribute::LinkInfo(vec![
        LinkInfo::Kind(InfoKind::Veth),
        LinkInfo::Data(InfoData::Veth(InfoVeth::Peer(peer_link))),
    ]));
    netlink::request(RouteNetlinkMessage::NewLink(link), netlink::CREATE).with_context(|| {
        format!("create veth pair {host_end}/{peer} in the namespace of {child}")
    })?;
    Ok(())
}
// ANCHOR_END: create_veth_pair

/// The index of a link: netlink names links by number.
fn index_of(name: &str) -> Result<u32> {
    netlink::link_index(name)
        .with_context(|| format!("look up link {name}"))?
        .with_context(|| format!("no link named {name}"))
}

/// A message that changes the link `name` (`RTM_SETLINK`).
fn set_link(name: &str, change: impl FnOnce(&mut LinkMessage)) -> Result<()> {
    let mut link = LinkMessage::default();
    link.header.index = index_of(name)?;
    change(&mut link);
    netlink::request(RouteNetlinkMessage::SetLink(link), 0)?;
    Ok(())
}

// ANCHOR: attach_to_bridge
/// Plug the host end into the bridge: the bridge becomes its "master".
pub fn attach_to_bridge(link: &str, bridge: &str) -> Result<()> {
    explain::step(
        &format!("RTM_SETLINK {link} master={bridge}"),
        &format!("ip link set {link} master {bridge}"),
    );
    let bridge_index = index_of(bridge)?;
    set_link(link, |l| {
        l.attributes.push(LinkAttribute::Controller(bridge_index))
    })
    .with_context(|| format!("attach {link} to {bridge}"))
}
// ANCHOR_END: attach_to_bridge

// ANCHOR: set_link_up
/// A new link is down: it carries no packet until we set IFF_UP. Even
/// `lo` starts down in a new network namespace.
pub fn set_link_up(name: &str) -> Result<()> {
    explain::step(
        &format!("RTM_SETLINK {name} IFF_UP"),
        &format!("ip link set {name} up"),
    );
    set_link(name, |l| {
        l.header.flags = LinkFlags::Up;
        l.header.change_mask = LinkFlags::Up;
    })
    .with_context(|| format!("set {name} up"))
}
// ANCHOR_END: set_link_up

// ANCHOR: add_address
/// Give a link an IPv4 address. The kernel also adds the route to the
/// subnet through that link (`10.200.0.0/24 dev eth0`).
pub fn add_address(link: &str, address: Ipv4Addr, prefix: u8) -> Result<()> {
    explain::step(
        &format!("RTM_NEWADDR {address}/{prefix} dev {link}"),
        &format!("ip addr add {address}/{prefix} dev {link}"),
    );
    let mut message = AddressMessage::default();
    message.header.family = AddressFamily::Inet;
    message.header.prefix_len = prefix;
    message.header.index = index_of(link)?;
    message
        .attributes
        .push(AddressAttribute::Local(address.into()));
    message
        .attributes
        .push(AddressAttribute::Address(address.into()));
    match netlink::request(RouteNetlinkMessage::NewAddress(message), netlink::CREATE) {
        Err(e) if netlink::is_errno(&e, EEXIST) => Ok(()), // the bridge's, from an earlier run
        other => other
            .map(drop)
            .with_context(|| format!("add {address}/{prefix} to {link}")),
    }
}
// ANCHOR_END: add_address

// ANCHOR: add_default_route
/// Everything not on the subnet goes to the gateway, the bridge's address
/// on the host.
pub fn add_default_route(gateway: Ipv4Addr) -> Result<()> {
    explain::step(
        &format!("RTM_NEWROUTE 0.0.0.0/0 gateway={gateway}"),
        &format!("ip route add default via {gateway}"),
    );
    let mut route = RouteMessage::default();
    route.header.address_family = AddressFamily::Inet;
    route.header.table = RouteHeader::RT_TABLE_MAIN;
    route.header.protocol = RouteProtocol::Boot;
    route.header.scope = RouteScope::Universe;
    route.header.kind = RouteType::Unicast;
    route
        .attributes
        .push(RouteAttribute::Gateway(RouteAddress::Inet(gateway)));
    netlink::request(RouteNetlinkMessage::NewRoute(route), netlink::CREATE)
        .with_context(|| format!("add the default route via {gateway}"))?;
    Ok(())
}
// ANCHOR_END: add_default_route

// ANCHOR: delete_link
/// Deleting one end of a veth pair deletes both. Most runs need not: when
/// the container's last process exits, its network namespace dies, and
/// the kernel destroys its links in the background; `RTM_DELLINK` waits
/// for the kernel's RCU callbacks (~20 ms, longer than the whole run).
/// Needed when the namespace outlives the run: a container joined it.
pub fn delete_link(name: &str) -> Result<()> {
    explain::step(
        &format!("RTM_DELLINK {name}"),
        &format!("ip link del {name}"),
    );
    let Some(index) = netlink::link_index(name).with_context(|| format!("look up {name}"))? else {
        return Ok(());
    };
    let mut link = LinkMessage::default();
    link.header.index = index;
    match netlink::request(RouteNetlinkMessage::DelLink(link), 0) {
        Err(e) if netlink::is_errno(&e, ENODEV) => Ok(()),
        other => other.map(drop).with_context(|| format!("delete {name}")),
    }
}
// ANCHOR_END: delete_link

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn net_modes_are_parsed() {
        assert_eq!(parse_net("bridge").unwrap(), NetMode::Bridge);
        assert_eq!(parse_net("none").unwrap(), NetMode::None);
        assert_eq!(
            parse_net("container:web").unwrap(),
            NetMode::Container("web".into())
        );
        assert!(parse_net("host")
            .unwrap_err()
            .to_string()
            .starts_with("invalid --net"));
        assert!(parse_net("container:").is_err());
    }
}
