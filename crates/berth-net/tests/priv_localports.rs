//! Privileged tests of the connect-time translation of published ports (`localports`): the
//! real programs attached to the real cgroup v2 root, acting for the network namespace of the
//! test's "host" thread only. Every connection stays on loopback inside test namespaces.

use std::fs::File;
use std::io::{ErrorKind, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsFd;
use std::sync::Arc;
use std::time::{Duration, Instant};

use berth_net::localports::{watch_addresses, LocalPorts};
use berth_net::{PortMapping, Protocol};
use berth_testkit::priv_test;

mod common;
use common::{as_host, Netns};

fn mapping(host_ip: Option<Ipv4Addr>, host_port: u16, container_port: u16) -> PortMapping {
    PortMapping {
        host_ip,
        host_port,
        container_port,
        protocol: Protocol::Tcp,
    }
}

fn connect(addr: &str) -> std::io::Result<TcpStream> {
    let addr: SocketAddr = addr.parse().expect("address");
    TcpStream::connect_timeout(&addr, Duration::from_millis(500))
}

/// Connects to `addr` and checks that `listener` got the connection, with `getpeername`
/// still answering `addr`.
fn reaches(listener: &TcpListener, addr: &str) {
    let mut client = connect(addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    assert_eq!(client.peer_addr().expect("peer").to_string(), addr);
    let (mut server, _) = listener.accept().expect("accept");
    client.write_all(b"ping").expect("write");
    let mut buf = [0u8; 4];
    server.read_exact(&mut buf).expect("read");
    assert_eq!(&buf, b"ping");
}

fn refused(addr: &str) {
    match connect(addr) {
        Ok(_) => panic!("{addr} answered: it should not be translated"),
        Err(e) => assert!(
            matches!(e.kind(), ErrorKind::ConnectionRefused | ErrorKind::TimedOut)
                || e.raw_os_error() == Some(101), // ENETUNREACH
            "{addr}: {e}"
        ),
    }
}

fn eventually(what: &str, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !ok() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

priv_test! {
    fn connections_to_published_ports_go_straight_to_the_target() {
        as_host(|host| async move {
            let local = Arc::new(LocalPorts::attach().expect("attach the programs"));
            let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
            let target = listener.local_addr().expect("addr").port();
            // nothing listens on 18555 or 18556: only a translated connect reaches `target`
            refused("127.0.0.1:18555");
            local
                .add(Ipv4Addr::LOCALHOST, &[mapping(None, 18555, target)])
                .expect("add");
            reaches(&listener, "127.0.0.1:18555");
            reaches(&listener, "127.0.0.7:18555");
            // one address only
            local
                .add(Ipv4Addr::LOCALHOST, &[mapping(Some(Ipv4Addr::new(127, 0, 0, 2)), 18556, target)])
                .expect("add");
            reaches(&listener, "127.0.0.2:18556");
            refused("127.0.0.1:18556");
            // an address of the namespace counts once the watcher has seen it; others never
            let watcher = tokio::spawn(watch_addresses(local.clone()));
            let out = host.busybox(&["ip", "addr", "add", "10.77.0.1/24", "dev", "lo"]);
            assert!(out.status.success(), "{out:?}");
            let a = Ipv4Addr::new(10, 77, 0, 1);
            let seen = local.clone();
            tokio::task::spawn_blocking(move || eventually("the new address", || seen.local_addresses().contains(&a)))
                .await
                .expect("wait");
            reaches(&listener, "10.77.0.1:18555");
            refused("10.77.0.9:18555");
            let out = host.busybox(&["ip", "addr", "del", "10.77.0.1/24", "dev", "lo"]);
            assert!(out.status.success(), "{out:?}");
            let seen = local.clone();
            tokio::task::spawn_blocking(move || eventually("the address gone", || !seen.local_addresses().contains(&a)))
                .await
                .expect("wait");
            watcher.abort();
            let _ = watcher.await;
            // another network namespace is left alone: its own listener on 18555 answers there
            let other = Netns::new();
            let path = other.path();
            std::thread::spawn(move || {
                let file = File::open(path).expect("open netns");
                rustix::thread::move_into_link_name_space(
                    file.as_fd(),
                    Some(rustix::thread::LinkNameSpaceType::Network),
                )
                .expect("setns");
                let listener = TcpListener::bind("127.0.0.1:18555").expect("bind in the other netns");
                reaches(&listener, "127.0.0.1:18555");
            })
            .join()
            .expect("other namespace");
            // removed ports, and all of it once the programs are detached
            local
                .remove(&[mapping(Some(Ipv4Addr::new(127, 0, 0, 2)), 18556, target)])
                .expect("remove");
            refused("127.0.0.2:18556");
            assert_eq!(local.lookup(Ipv4Addr::UNSPECIFIED, 18555).expect("lookup"), Some((Ipv4Addr::LOCALHOST, target)));
            drop(local);
            refused("127.0.0.1:18555");
        });
    }
}
