//! Links over rtnetlink: the bridge, and per container a veth pair whose host end joins the
//! bridge and whose peer is created directly inside the container's network namespace, then
//! renamed-free configured there (address, `lo` and the interface up, default route).
//!
//! The container side is configured from a dedicated thread that enters the namespace with
//! `setns` and opens its own netlink socket there; the caller's threads never move.

use std::fs::File;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::{AsFd, AsRawFd};
use std::path::{Path, PathBuf};

use futures_util::TryStreamExt;
use rtnetlink::packet_route::link::{InfoData, InfoVeth, LinkAttribute, LinkMessage};
use rtnetlink::{
    Handle, LinkBridge, LinkBridgePort, LinkMessageBuilder, LinkUnspec, LinkVeth,
    RouteMessageBuilder,
};
use rustix::thread::{move_into_link_name_space, LinkNameSpaceType};

use crate::{NetworkError, Result};

const EEXIST: i32 = 17;
const ENODEV: i32 = 19;

/// What joins one container to a bridge.
#[derive(Debug, Clone)]
pub struct ContainerAttachment {
    /// The bridge to attach to (must exist).
    pub bridge: String,
    /// The host end's name (see [`host_interface_name`]).
    pub host_interface: String,
    /// The container's network namespace (`/proc/PID/ns/net` or a bind mount of it).
    pub netns: PathBuf,
    /// The interface's name inside the container (`eth0`).
    pub interface: String,
    /// The container's address.
    pub address: Ipv4Addr,
    /// The subnet's prefix length.
    pub prefix_len: u8,
    /// The default gateway (the bridge's address).
    pub gateway: Ipv4Addr,
    /// Whether the default route goes through `gateway`: true for a container's first network;
    /// false for further networks and `--internal` ones (their subnet's route only).
    pub default_route: bool,
    /// The container's IPv6 address, prefix length and gateway on an `--ipv6` network (the
    /// default IPv6 route goes through the gateway when `default_route`).
    pub ipv6: Option<(Ipv6Addr, u8, Ipv6Addr)>,
    /// A MAC address for the container's interface (`--mac-address`); random when `None`.
    pub mac: Option<[u8; 6]>,
    /// The MTU of both ends, when not the default.
    pub mtu: Option<u32>,
}

/// The host-side veth name berth uses for a container: `vb` and the first 12 characters of
/// its id (15 bytes at most, the kernel's limit).
pub fn host_interface_name(container_id: &str) -> String {
    let id: String = container_id
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .take(12)
        .collect();
    format!("vb{id}")
}

/// Checks an interface name against the kernel's rules.
pub fn check_interface_name(name: &str) -> Result<()> {
    let bad = name.is_empty()
        || name.len() > 15
        || name == "."
        || name == ".."
        || name
            .chars()
            .any(|c| c == '/' || c == ':' || c.is_whitespace());
    if bad {
        return Err(NetworkError::InvalidInterfaceName {
            name: name.to_string(),
        });
    }
    Ok(())
}

fn is_code(err: &rtnetlink::Error, code: i32) -> bool {
    matches!(err, rtnetlink::Error::NetlinkError(m) if m.raw_code().abs() == code)
}

fn nl_err(
    operation: &'static str,
    interface: &str,
) -> impl FnOnce(rtnetlink::Error) -> NetworkError {
    let interface = interface.to_string();
    move |source| NetworkError::Netlink {
        operation,
        interface,
        source,
    }
}

/// A netlink connection in one network namespace (the one of the thread that opened it).
#[derive(Clone)]
pub struct Netlink {
    handle: Handle,
}

impl Netlink {
    /// Opens a connection in the calling thread's network namespace; must be called inside a
    /// tokio runtime, which then drives it.
    pub fn connect() -> Result<Self> {
        let (connection, handle, _) =
            rtnetlink::new_connection().map_err(|source| NetworkError::Setup {
                what: "open a netlink socket".into(),
                source,
            })?;
        tokio::spawn(connection);
        Ok(Self { handle })
    }

    /// The index of interface `name`, or `None` when absent.
    pub async fn index(&self, name: &str) -> Result<Option<u32>> {
        check_interface_name(name)?;
        let mut links = self
            .handle
            .link()
            .get()
            .match_name(name.to_string())
            .execute();
        match links.try_next().await {
            Ok(Some(link)) => Ok(Some(link.header.index)),
            Ok(None) => Ok(None),
            Err(e) if is_code(&e, ENODEV) => Ok(None),
            Err(e) => Err(nl_err("look up", name)(e)),
        }
    }

    async fn require_index(&self, name: &str) -> Result<u32> {
        self.index(name)
            .await?
            .ok_or_else(|| NetworkError::LinkNotFound {
                interface: name.to_string(),
            })
    }

    /// Whether interface `name` exists.
    pub async fn exists(&self, name: &str) -> Result<bool> {
        Ok(self.index(name).await?.is_some())
    }

    /// The IPv4 addresses on interface `name`.
    pub async fn addresses(&self, name: &str) -> Result<Vec<(Ipv4Addr, u8)>> {
        let index = self.require_index(name).await?;
        addresses(&self.handle, index, name).await
    }

    /// Creates bridge `name` if absent, gives it `gateway/prefix_len` if it lacks it, and sets
    /// it up; returns its index. Safe to call at every daemon start.
    pub async fn ensure_bridge(
        &self,
        name: &str,
        gateway: Ipv4Addr,
        prefix_len: u8,
    ) -> Result<u32> {
        check_interface_name(name)?;
        let index = match self.index(name).await? {
            Some(index) => index,
            None => {
                match self
                    .handle
                    .link()
                    .add(LinkBridge::new(name).build())
                    .execute()
                    .await
                {
                    Ok(()) => {}
                    Err(e) if is_code(&e, EEXIST) => {}
                    Err(e) => return Err(nl_err("create bridge", name)(e)),
                }
                self.require_index(name).await?
            }
        };
        let present = addresses(&self.handle, index, name).await?;
        if !present.contains(&(gateway, prefix_len)) {
            match self
                .handle
                .address()
                .add(index, IpAddr::V4(gateway), prefix_len)
                .execute()
                .await
            {
                Ok(()) => {}
                Err(e) if is_code(&e, EEXIST) => {}
                Err(e) => return Err(nl_err("set the address of", name)(e)),
            }
        }
        self.set_up(index, name).await?;
        Ok(index)
    }

    async fn set_up(&self, index: u32, name: &str) -> Result<()> {
        self.handle
            .link()
            .set(LinkUnspec::new_with_index(index).up().build())
            .execute()
            .await
            .map_err(nl_err("set up", name))
    }

    /// Gives interface `name` the IPv6 address `address/prefix_len` unless it has it, without
    /// duplicate address detection (the address would be unusable for a second or two).
    pub async fn ensure_address6(
        &self,
        name: &str,
        address: Ipv6Addr,
        prefix_len: u8,
    ) -> Result<()> {
        let index = self.require_index(name).await?;
        add_address6(&self.handle, index, name, address, prefix_len).await
    }

    /// Deletes interface `name` (a veth's peer goes with it); `false` when it was absent.
    /// One request, addressed by name.
    pub async fn delete(&self, name: &str) -> Result<bool> {
        check_interface_name(name)?;
        let mut request = self.handle.link().del(0);
        request
            .message_mut()
            .attributes
            .push(LinkAttribute::IfName(name.to_string()));
        match request.execute().await {
            Ok(()) => Ok(true),
            Err(e) if is_code(&e, ENODEV) => Ok(false),
            Err(e) => Err(nl_err("delete", name)(e)),
        }
    }

    /// Joins a container to its bridge: the veth pair (host end on the bridge, hairpin on,
    /// up; peer created inside the container's namespace under its final name), then, while
    /// hairpin mode is set on the host end, inside: IPv6 off on the interface (the bridge
    /// network is IPv4-only, as Docker's is without `--ipv6`: no link-local address, DAD or
    /// router solicitation work on every start), the address, `lo` and the interface up,
    /// the default route. On failure nothing is left behind.
    pub async fn attach(&self, a: &ContainerAttachment) -> Result<()> {
        check_interface_name(&a.host_interface)?;
        check_interface_name(&a.interface)?;
        let bridge = self.require_index(&a.bridge).await?;
        let netns = File::open(&a.netns).map_err(|source| NetworkError::Io {
            path: a.netns.clone(),
            source,
        })?;
        let mut peer = LinkMessageBuilder::<LinkUnspec>::new()
            .name(a.interface.clone())
            .setns_by_fd(netns.as_raw_fd());
        if let Some(mac) = a.mac {
            peer = peer.address(mac.to_vec());
        }
        if let Some(mtu) = a.mtu {
            peer = peer.mtu(mtu);
        }
        let mut host = LinkVeth::new(&a.host_interface, &a.interface)
            .set_info_data(InfoData::Veth(InfoVeth::Peer(peer.build())))
            .controller(bridge)
            .up();
        if let Some(mtu) = a.mtu {
            host = host.mtu(mtu);
        }
        self.handle
            .link()
            .add(host.build())
            .execute()
            .await
            .map_err(nl_err("create veth pair", &a.host_interface))?;
        // the port is addressed by name (no index lookup), concurrently with the inside work
        let hairpin = async {
            self.handle
                .link()
                .set_port(
                    LinkBridgePort::new(0)
                        .name(a.host_interface.clone())
                        .hairpin(true)
                        .build(),
                )
                .execute()
                .await
                .map_err(nl_err("set hairpin mode on", &a.host_interface))
        };
        let (hairpin, inside) = tokio::join!(hairpin, configure_inside(netns, a.clone()));
        let configured = hairpin.and(inside);
        if let Err(err) = configured {
            // the peer goes with the host end
            let _ = self.delete(&a.host_interface).await;
            return Err(err);
        }
        Ok(())
    }

    /// The names of every interface whose name starts with `prefix` (berth's host-side veths
    /// all start with `vb`), for reconcile after a crash.
    pub async fn names_with_prefix(&self, prefix: &str) -> Result<Vec<String>> {
        let mut links = self.handle.link().get().execute();
        let mut out = Vec::new();
        while let Some(link) = links.try_next().await.map_err(nl_err("list", prefix))? {
            for attr in link.attributes {
                if let LinkAttribute::IfName(name) = attr {
                    if name.starts_with(prefix) {
                        out.push(name);
                    }
                }
            }
        }
        Ok(out)
    }

    /// Whether bridge port `name` has hairpin mode on.
    pub async fn hairpin(&self, name: &str) -> Result<bool> {
        let index = self.require_index(name).await?;
        let mut links = self.handle.link().get().match_index(index).execute();
        let link: Option<LinkMessage> = links.try_next().await.map_err(nl_err("look up", name))?;
        let hairpin = link.into_iter().flat_map(|l| l.attributes).any(|attr| match attr {
            LinkAttribute::LinkInfo(infos) => infos.into_iter().any(|info| {
                matches!(info, rtnetlink::packet_route::link::LinkInfo::PortData(
                    rtnetlink::packet_route::link::InfoPortData::BridgePort(ref opts))
                    if opts.iter().any(|o| matches!(o, rtnetlink::packet_route::link::InfoBridgePort::HairpinMode(true))))
            }),
            _ => false,
        });
        Ok(hairpin)
    }
}

async fn add_address6(
    handle: &Handle,
    index: u32,
    name: &str,
    address: Ipv6Addr,
    prefix_len: u8,
) -> Result<()> {
    let mut req = handle.address().add(index, IpAddr::V6(address), prefix_len);
    req.message_mut().header.flags |= rtnetlink::packet_route::address::AddressHeaderFlags::Nodad;
    match req.execute().await {
        Ok(()) => Ok(()),
        Err(e) if is_code(&e, EEXIST) => Ok(()),
        Err(e) => Err(nl_err("set the IPv6 address of", name)(e)),
    }
}

async fn addresses(handle: &Handle, index: u32, name: &str) -> Result<Vec<(Ipv4Addr, u8)>> {
    use rtnetlink::packet_route::address::AddressAttribute;
    let mut stream = handle
        .address()
        .get()
        .set_link_index_filter(index)
        .execute();
    let mut out = Vec::new();
    while let Some(message) = stream
        .try_next()
        .await
        .map_err(nl_err("list addresses of", name))?
    {
        for attr in &message.attributes {
            if let AddressAttribute::Address(IpAddr::V4(a)) = attr {
                out.push((*a, message.header.prefix_len));
            }
        }
    }
    Ok(out)
}

/// Runs `work` with a [`Netlink`] opened inside the namespace `netns` refers to, on a fresh
/// thread (which enters the namespace and ends with the work).
pub async fn in_namespace<T, F, Fut>(netns: &Path, work: F) -> Result<T>
where
    T: Send + 'static,
    F: FnOnce(Netlink) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = Result<T>>,
{
    let file = File::open(netns).map_err(|source| NetworkError::Io {
        path: netns.to_path_buf(),
        source,
    })?;
    run_in_namespace(file, netns.to_path_buf(), work).await
}

async fn run_in_namespace<T, F, Fut>(netns: File, path: PathBuf, work: F) -> Result<T>
where
    T: Send + 'static,
    F: FnOnce(Netlink) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = Result<T>>,
{
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("berth-netns".into())
        .spawn(move || {
            let result = (|| {
                move_into_link_name_space(netns.as_fd(), Some(LinkNameSpaceType::Network))
                    .map_err(|e| NetworkError::Io {
                        path: path.clone(),
                        source: e.into(),
                    })?;
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_io()
                    .build()
                    .map_err(|source| NetworkError::Setup {
                        what: "start a runtime for a network namespace".into(),
                        source,
                    })?;
                runtime.block_on(async move { work(Netlink::connect()?).await })
            })();
            let _ = tx.send(result);
        })
        .map_err(|source| NetworkError::Setup {
            what: "start a thread for a network namespace".into(),
            source,
        })?;
    rx.await.unwrap_or_else(|_| {
        Err(NetworkError::Setup {
            what: "configure a network namespace".into(),
            source: std::io::Error::other("the namespace thread panicked"),
        })
    })
}

async fn configure_inside(netns: File, a: ContainerAttachment) -> Result<()> {
    let path = a.netns.clone();
    run_in_namespace(netns, path, move |nl| async move {
        // this thread is inside the namespace, so /proc/sys/net is the namespace's; no IPv6
        // (autoconfiguration, DAD) on the interface unless its network has IPv6
        if a.ipv6.is_none() {
            crate::sysctl::disable_ipv6(Path::new("/proc/sys"), &a.interface)?;
        }
        let index = nl.require_index(&a.interface).await?;
        if let Some((address, prefix_len, _)) = a.ipv6 {
            add_address6(&nl.handle, index, &a.interface, address, prefix_len).await?;
        }
        // three independent requests in flight at once (the kernel takes them in order);
        // the route needs the address and the link up, so it follows
        let address = async {
            nl.handle
                .address()
                .add(index, IpAddr::V4(a.address), a.prefix_len)
                .execute()
                .await
                .map_err(nl_err("set the address of", &a.interface))
        };
        let lo = async {
            nl.handle
                .link()
                .set(LinkUnspec::new_with_name("lo").up().build())
                .execute()
                .await
                .map_err(nl_err("set up", "lo"))
        };
        let (address, lo, up) = tokio::join!(address, lo, nl.set_up(index, &a.interface));
        address.and(lo).and(up)?;
        if !a.default_route {
            return Ok(());
        }
        let mut routes = vec![(
            RouteMessageBuilder::<Ipv4Addr>::new()
                .output_interface(index)
                .gateway(a.gateway)
                .build(),
            "add the default route on",
        )];
        if let Some((_, _, gateway)) = a.ipv6 {
            routes.push((
                RouteMessageBuilder::<Ipv6Addr>::new()
                    .output_interface(index)
                    .gateway(gateway)
                    .build(),
                "add the default IPv6 route on",
            ));
        }
        for (route, what) in routes {
            nl.handle
                .route()
                .add(route)
                .execute()
                .await
                .map_err(nl_err(what, &a.interface))?;
        }
        Ok(())
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_names_fit_the_kernel_limit() {
        let name = host_interface_name("0123456789abcdef0123456789abcdef");
        assert_eq!(name, "vb0123456789ab");
        check_interface_name(&name).expect("valid");
        for bad in ["", "a/b", "a b", "0123456789abcdef", "eth:0"] {
            let err = check_interface_name(bad).expect_err(bad);
            assert!(err.to_string().contains(&format!("{bad:?}")), "{err}");
        }
    }
}
