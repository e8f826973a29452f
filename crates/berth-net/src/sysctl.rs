//! The per-network-namespace switches NAT needs (and IPv6 off on container interfaces), written under a `/proc/sys` root given by the
//! caller (tests point it elsewhere). `/proc/sys/net` shows the namespace of the thread that
//! opens the file, so call these from a thread inside the namespace concerned.

use std::path::Path;

use crate::{NetworkError, Result};

fn write_one(path: &Path) -> Result<()> {
    std::fs::write(path, "1").map_err(|source| NetworkError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// Turns on IPv4 forwarding (`net.ipv4.ip_forward`), which routed container traffic and
/// published ports need.
pub fn enable_ip_forward(proc_sys: &Path) -> Result<()> {
    write_one(&proc_sys.join("net/ipv4/ip_forward"))
}

/// Turns on IPv6 forwarding (`net.ipv6.conf.all.forwarding`), which the containers of an
/// `--ipv6` network need to reach beyond their bridge. (On the host this also stops
/// interfaces with `accept_ra=1` from taking router advertisements, as with Docker.)
pub fn enable_ipv6_forward(proc_sys: &Path) -> Result<()> {
    write_one(&proc_sys.join("net/ipv6/conf/all/forwarding"))
}

/// Turns on `route_localnet` on `interface`, so a port published on 127.0.0.1 can be DNATed
/// out of it (the source is masqueraded on the way, see [`crate::nft`]).
pub fn enable_route_localnet(proc_sys: &Path, interface: &str) -> Result<()> {
    write_one(
        &proc_sys
            .join("net/ipv4/conf")
            .join(interface)
            .join("route_localnet"),
    )
}

/// Turns IPv6 off on `interface` (`net.ipv6.conf.IFACE.disable_ipv6`), before it goes up:
/// no link-local address, duplicate address detection or router solicitation. A kernel
/// without IPv6 has no such switch, which is fine.
pub fn disable_ipv6(proc_sys: &Path, interface: &str) -> Result<()> {
    let path = proc_sys
        .join("net/ipv6/conf")
        .join(interface)
        .join("disable_ipv6");
    match std::fs::write(&path, "1") {
        Err(e)
            if e.kind() == std::io::ErrorKind::NotFound && !proc_sys.join("net/ipv6").exists() =>
        {
            Ok(())
        }
        other => other.map_err(|source| NetworkError::Io { path, source }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_under_the_given_root() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(dir.path().join("net/ipv4/conf/berth0")).expect("mkdir");
        enable_ip_forward(dir.path()).expect("forward");
        enable_route_localnet(dir.path(), "berth0").expect("localnet");
        let read = |p: &str| std::fs::read_to_string(dir.path().join(p)).expect("read");
        assert_eq!(read("net/ipv4/ip_forward"), "1");
        assert_eq!(read("net/ipv4/conf/berth0/route_localnet"), "1");
        let err = enable_route_localnet(dir.path(), "nope0").expect_err("missing");
        assert!(err.to_string().contains("nope0"), "{err}");
        // no IPv6 in the kernel: nothing to turn off
        disable_ipv6(dir.path(), "eth0").expect("no ipv6");
        std::fs::create_dir_all(dir.path().join("net/ipv6/conf/eth0")).expect("mkdir");
        disable_ipv6(dir.path(), "eth0").expect("disable");
        assert_eq!(read("net/ipv6/conf/eth0/disable_ipv6"), "1");
        let err = disable_ipv6(dir.path(), "nope0").expect_err("missing interface");
        assert!(err.to_string().contains("nope0"), "{err}");
    }
}
