//! Privileged test of the embedded DNS server where it really runs: bound to a bridge's gateway
//! address (port 53) in a fresh network namespace that plays the host, queried by busybox
//! `nslookup` from "containers" (more namespaces on veths), with the container's generated
//! resolv.conf bind-mounted over /etc/resolv.conf in a private mount namespace. The upstream is
//! a fake server on that namespace's loopback: nothing leaves the namespaces.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;
use std::sync::{Arc, Mutex};

use berth_net::dns::{
    ContainerResolvConf, DnsContainer, DnsRecords, ResolvConf, Resolver, ResolverConfig,
};
use berth_net::link::host_interface_name;
use berth_net::{ContainerAttachment, Ipv4Subnet, Netlink};
use berth_testkit::priv_test;

mod common;
use common::{as_host, Netns};
use hickory_proto::op::{Message, OpCode, ResponseCode};
use hickory_proto::rr::rdata::A;
use hickory_proto::rr::{RData, Record, RecordType};
use tokio::net::UdpSocket;

/// `nslookup ARGS` inside `netns`, with `resolv_conf` as its /etc/resolv.conf (private mount
/// namespace), without blocking the runtime that serves the answers.
async fn nslookup(netns: &Path, resolv_conf: &Path, args: &[&str]) -> (bool, String) {
    let script = format!(
        "mount --bind {} /etc/resolv.conf && exec timeout 10 /bin/busybox nslookup {}",
        resolv_conf.display(),
        args.join(" ")
    );
    let out = tokio::process::Command::new("nsenter")
        .arg(format!("--net={}", netns.display()))
        .args(["unshare", "-m", "sh", "-c", &script])
        .output()
        .await
        .expect("nsenter");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// A fake upstream on 127.0.0.1 of the host namespace: `example.com` is 192.0.2.53,
/// everything else NXDOMAIN; records the names asked.
async fn fake_upstream() -> (SocketAddr, Arc<Mutex<Vec<String>>>) {
    let socket = UdpSocket::bind("127.0.0.1:0").await.expect("bind upstream");
    let address = socket.local_addr().expect("addr");
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = seen.clone();
    tokio::spawn(async move {
        let mut buffer = vec![0u8; 65_535];
        loop {
            let Ok((len, peer)) = socket.recv_from(&mut buffer).await else {
                continue;
            };
            let Ok(query) = Message::from_vec(&buffer[..len]) else {
                continue;
            };
            let Some(q) = query.queries.first() else {
                continue;
            };
            let name = q.name().to_ascii().to_ascii_lowercase();
            record.lock().expect("seen").push(name.clone());
            let mut answer = Message::response(query.id, OpCode::Query);
            answer.metadata.recursion_available = true;
            answer.add_queries(query.queries.iter().cloned());
            if name == "example.com." {
                if q.query_type() == RecordType::A {
                    answer.add_answer(Record::from_rdata(
                        q.name().clone(),
                        60,
                        RData::A(A(Ipv4Addr::new(192, 0, 2, 53))),
                    ));
                }
            } else {
                answer.metadata.response_code = ResponseCode::NXDomain;
            }
            let _ = socket
                .send_to(&answer.to_vec().expect("encode"), peer)
                .await;
        }
    });
    (address, seen)
}

fn attachment(
    id: &str,
    bridge: &str,
    netns: &Path,
    address: Ipv4Addr,
    gateway: Ipv4Addr,
) -> ContainerAttachment {
    ContainerAttachment {
        bridge: bridge.into(),
        host_interface: host_interface_name(id),
        netns: netns.to_path_buf(),
        interface: "eth0".into(),
        address,
        prefix_len: 16,
        gateway,
        mac: None,
        mtu: None,
        default_route: true,
        ipv6: None,
    }
}

priv_test! {
    fn containers_resolve_each_other_and_external_names_through_the_gateway() {
        // the host's loopback is up (Netns): the fake upstream listens on 127.0.0.1
        as_host(|host| async move {
            let subnet: Ipv4Subnet = "10.213.0.0/16".parse().expect("subnet");
            let gateway = subnet.first_host();
            let other_subnet: Ipv4Subnet = "10.214.0.0/16".parse().expect("subnet");
            let nl = Netlink::connect().expect("netlink");
            nl.ensure_bridge("berthdns0", gateway, 16).await.expect("bridge");
            nl.ensure_bridge("berthdns1", other_subnet.first_host(), 16).await.expect("bridge");

            let (a, b, outsider) = (Netns::new(), Netns::new(), Netns::new());
            let ip_a = Ipv4Addr::new(10, 213, 0, 2);
            let ip_b = Ipv4Addr::new(10, 213, 0, 3);
            nl.attach(&attachment("aaaa", "berthdns0", &a.path(), ip_a, gateway)).await.expect("attach a");
            nl.attach(&attachment("bbbb", "berthdns0", &b.path(), ip_b, gateway)).await.expect("attach b");
            nl.attach(&attachment("cccc", "berthdns1", &outsider.path(), Ipv4Addr::new(10, 214, 0, 2), other_subnet.first_host()))
                .await
                .expect("attach outsider");

            let records = Arc::new(DnsRecords::new("appnet"));
            records
                .add(DnsContainer {
                    id: "aaaa0000000000000000".into(),
                    name: "/web".into(),
                    aliases: vec!["frontend".into()],
                    ipv4: vec![ip_a],
                    ..Default::default()
                })
                .expect("add web");
            records
                .add(DnsContainer {
                    id: "bbbb0000000000000000".into(),
                    name: "/client".into(),
                    ipv4: vec![ip_b],
                    ..Default::default()
                })
                .expect("add client");
            let (upstream, seen) = fake_upstream().await;
            let bind = SocketAddr::new(IpAddr::V4(gateway), 53);
            let resolver = Resolver::start(
                bind,
                records.clone(),
                ResolverConfig {
                    clients: Some(subnet),
                    ..ResolverConfig::forwarding_to(vec![upstream])
                },
            )
            .await
            .expect("start on the gateway");
            assert_eq!(resolver.local_addr(), bind);

            let dir = tempfile::tempdir().expect("tempdir");
            let resolv_conf = dir.path().join("resolv.conf");
            // no search list: busybox's nslookup would ask only NAME.DOMAIN, never NAME alone
            let host_conf = ResolvConf::parse("nameserver 127.0.0.1\noptions edns0\n");
            let conf = ContainerResolvConf::for_container(IpAddr::V4(gateway), &host_conf, &[], &[]);
            std::fs::write(&resolv_conf, conf.render()).expect("write resolv.conf");

            // from b: a's name and alias (ndots:0 so asked as they are first), a's address back
            for name in ["web", "frontend", "WEB.appnet"] {
                let (ok, out) = nslookup(&b.path(), &resolv_conf, &[name]).await;
                assert!(ok, "{name}: {out}");
                assert!(out.contains(&format!("Address: {ip_a}")), "{name}: {out}");
            }
            let (ok, out) = nslookup(&a.path(), &resolv_conf, &[&ip_b.to_string()]).await;
            assert!(ok && out.contains("client.appnet"), "{out}");
            assert!(
                seen.lock().expect("seen").iter().all(|n| !n.starts_with("web") && !n.starts_with("frontend")),
                "container names leaked upstream: {:?}",
                seen.lock().expect("seen")
            );

            // external names go to the upstream and come back
            let (ok, out) = nslookup(&a.path(), &resolv_conf, &["example.com"]).await;
            assert!(ok && out.contains("192.0.2.53"), "{out}");
            assert!(seen.lock().expect("seen").contains(&"example.com.".to_string()));

            // a container of another network reaches the gateway address, but gets no answer
            let (ok, out) = nslookup(&outsider.path(), &resolv_conf, &["web"]).await;
            assert!(!ok && !out.contains(&ip_a.to_string()), "{out}");

            // removed: no answer for it any more (upstream says NXDOMAIN)
            records.remove("aaaa0000000000000000").expect("remove web");
            let (ok, out) = nslookup(&b.path(), &resolv_conf, &["web"]).await;
            assert!(!ok && !out.contains(&ip_a.to_string()), "{out}");

            // stopped: port 53 on the gateway is free again
            resolver.stop().await;
            UdpSocket::bind(bind).await.expect("port 53 released");
            let (ok, _) = nslookup(&b.path(), &resolv_conf, &["client"]).await;
            assert!(!ok, "answered after stop");

            for id in ["aaaa", "bbbb", "cccc"] {
                nl.delete(&host_interface_name(id)).await.expect("delete veth");
            }
            nl.delete("berthdns0").await.expect("delete bridge");
            nl.delete("berthdns1").await.expect("delete bridge");
            drop(host);
        });
    }
}
