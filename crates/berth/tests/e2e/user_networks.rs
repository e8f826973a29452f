//! User-defined networks end to end, each test inside a network namespace of its own:
//! `network create/ls/inspect/rm/connect/disconnect/prune`, names and aliases resolved by the
//! network's DNS server, isolation between networks, `--internal`, and cleanup after removal
//! and after a daemon crash.

use std::process::Command;
use std::time::Duration;

use berth_testkit::priv_test;

use crate::support::{eventually, in_fresh_netns, links, no_links_left, Berth};

fn nft_table() -> Option<String> {
    let out = Command::new("nft")
        .args(["list", "table", "ip", "berth"])
        .output()
        .expect("nft");
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// `nslookup NAME` from a fresh container on `network` (no search list: busybox's nslookup
/// would then ask NAME.DOMAIN only).
fn lookup(b: &Berth, img: &str, network: &str, name: &str) -> (bool, String) {
    let out = b.run(&[
        "run",
        "--rm",
        "--network",
        network,
        "--dns-search",
        ".",
        img,
        "nslookup",
        name,
    ]);
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

fn serve(b: &Berth, img: &str, args: &[&str], name: &str) {
    let script =
        format!("mkdir /www && echo {name} > /www/index.html && exec httpd -f -p 80 -h /www");
    let mut full = vec!["run", "-d", "--name", name];
    full.extend_from_slice(args);
    full.extend_from_slice(&[img, "sh", "-c", &script]);
    b.ok(&full);
}

fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text.trim()).unwrap_or_else(|e| panic!("{e}: {text}"))
}

fn fixture() -> crate::containers::Fixture {
    crate::containers::fixture_with(Berth::with_bridge(), &[])
}

priv_test! {
    fn names_resolve_on_a_network_and_networks_are_isolated() {
        in_fresh_netns(|| {
            let f = fixture();
            let (b, img) = (&f.b, f.img.as_str());
            let id = b.ok(&["network", "create", "--label", "tier=front", "appnet"]).trim().to_string();
            assert_eq!(id.len(), 64, "{id}");
            b.ok(&["network", "create", "--subnet", "10.99.0.0/24", "--gateway", "10.99.0.254", "other"]);
            b.ok(&["network", "create", "--internal", "inner"]);
            // ls: the pre-defined networks and the new ones, Docker's columns
            let ls = b.ok(&["network", "ls"]);
            assert!(ls.starts_with("NETWORK ID"), "{ls}");
            for name in ["bridge", "host", "none", "appnet", "other", "inner"] {
                assert!(ls.lines().any(|l| l.split_whitespace().nth(1) == Some(name)), "{name} in\n{ls}");
            }
            let custom = b.ok(&["network", "ls", "-q", "--filter", "type=custom", "--no-trunc"]);
            assert_eq!(custom.lines().count(), 3, "{custom}");
            assert!(custom.lines().any(|l| l == id));
            let labelled = b.ok(&["network", "ls", "--filter", "label=tier=front", "--format", "{{.Name}}"]);
            assert_eq!(labelled.trim(), "appnet");
            let other = json(&b.ok(&["network", "inspect", "other"]));
            assert_eq!(other[0]["IPAM"]["Config"][0]["Subnet"], "10.99.0.0/24", "{other}");
            assert_eq!(other[0]["IPAM"]["Config"][0]["Gateway"], "10.99.0.254", "{other}");
            assert_eq!(other[0]["Internal"], false);
            let auto = json(&b.ok(&["network", "inspect", "-f", "{{json .IPAM.Config}}", &id[..12]]));
            assert_eq!(auto[0]["Subnet"], "10.214.0.0/20", "{auto}");
            let inner = b.ok(&["network", "inspect", "-f", "{{.Internal}}", "inner"]);
            assert_eq!(inner.trim(), "true");

            // names and aliases resolve on the network, and reach the container
            serve(b, img, &["--network", "appnet", "--network-alias", "www", "-p", "127.0.0.1:18300:80"], "web");
            eventually("web's published port", || {
                let out = Command::new("curl").args(["-sS", "-m", "2", "http://127.0.0.1:18300/"]).output().expect("curl");
                match String::from_utf8_lossy(&out.stdout).trim() {
                    "web" => Ok(()),
                    other => Err(format!("{other:?} {}", String::from_utf8_lossy(&out.stderr))),
                }
            });
            for name in ["web", "www", "WEB.appnet"] {
                let (ok, out) = lookup(b, img, "appnet", name);
                assert!(ok && out.contains("Address: 10.214.0.2"), "{name}: {out}");
            }
            let got = b.ok(&["run", "--rm", "--network", "appnet", img, "wget", "-q", "-O", "-", "http://www/"]);
            assert_eq!(got.trim(), "web");
            let conf = b.ok(&["run", "--rm", "--network", "appnet", img, "cat", "/etc/resolv.conf"]);
            assert!(conf.contains("nameserver 10.214.0.1") && conf.contains("ndots:0"), "{conf}");
            // ... but not from another network: no name, no route through the host
            let (ok, out) = lookup(b, img, "other", "web");
            assert!(!ok, "web resolved from another network: {out}");
            let cross = b.run(&["run", "--rm", "--network", "other", img, "ping", "-c", "1", "-W", "1", "10.214.0.2"]);
            assert!(!cross.status.success(), "a container of another network reached web");
            let same = b.run(&["run", "--rm", "--network", "appnet", img, "ping", "-c", "1", "-W", "1", "10.214.0.2"]);
            assert!(same.status.success(), "{}", String::from_utf8_lossy(&same.stderr));

            // --internal: no route out, names still resolve inside
            let routes = b.ok(&["run", "--rm", "--network", "inner", img, "ip", "route"]);
            assert!(!routes.contains("default"), "{routes}");
            let out = b.run(&["run", "--rm", "--network", "inner", img, "ip", "route", "get", "192.0.2.1"]);
            assert!(!out.status.success(), "an internal network has a route out");
            b.ok(&["run", "-d", "--name", "db", "--network", "inner", img, "sleep", "300"]);
            let (ok, out) = lookup(b, img, "inner", "db");
            assert!(ok && out.contains("Address: 10.214.16.2"), "{out}");

            // connect and disconnect a running container
            b.ok(&["network", "connect", "--alias", "site", "other", "web"]);
            let addrs = b.ok(&["exec", "web", "ip", "-4", "-o", "addr"]);
            assert!(addrs.contains("eth1") && addrs.contains("10.99.0.1/24"), "{addrs}");
            let got = b.ok(&["run", "--rm", "--network", "other", img, "wget", "-q", "-O", "-", "http://site/"]);
            assert_eq!(got.trim(), "web");
            let nets = json(&b.ok(&["inspect", "-f", "{{json .NetworkSettings.Networks}}", "web"]));
            assert_eq!(nets["appnet"]["IPAddress"], "10.214.0.2", "{nets}");
            assert_eq!(nets["other"]["IPAddress"], "10.99.0.1", "{nets}");
            assert_eq!(nets["other"]["Aliases"][0], "site", "{nets}");
            assert_eq!(nets["appnet"]["NetworkID"], id.as_str(), "{nets}");
            // docker's usual way to read a container's addresses
            let ips = b.ok(&["inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}", "web"]);
            assert_eq!(ips.trim(), "10.214.0.2 10.99.0.1");
            let members = json(&b.ok(&["network", "inspect", "-f", "{{json .Containers}}", "other"]));
            let members: Vec<_> = members.as_object().expect("map").values().collect();
            assert_eq!(members.len(), 1, "{members:?}");
            assert_eq!(members[0]["Name"], "web");
            assert_eq!(members[0]["IPv4Address"], "10.99.0.1/24");
            let on_other = b.ok(&["ps", "--filter", "network=other", "--format", "{{.Names}}"]);
            assert_eq!(on_other.trim(), "web");
            let (code, err) = b.fails(&["network", "connect", "other", "web"]);
            assert_eq!(code, 1);
            assert!(err.contains("already exists in network other"), "{err}");
            b.ok(&["network", "disconnect", "other", "web"]);
            let addrs = b.ok(&["exec", "web", "ip", "-4", "-o", "addr"]);
            assert!(!addrs.contains("eth1"), "{addrs}");
            assert_eq!(links("vn"), Vec::<String>::new());
            let (ok, _) = lookup(b, img, "other", "site");
            assert!(!ok, "the alias outlived the disconnect");
            // connect a stopped container: it joins at its next start
            b.ok(&["create", "--name", "later", "--network", "appnet", img, "sleep", "300"]);
            b.ok(&["network", "connect", "other", "later"]);
            b.ok(&["start", "later"]);
            let addrs = b.ok(&["exec", "later", "ip", "-4", "-o", "addr"]);
            assert!(addrs.contains("10.214.0.3/20") && addrs.contains("10.99.0.1/24"), "{addrs}");
            // a rename changes the name the network answers
            b.ok(&["rename", "later", "renamed"]);
            let (ok, out) = lookup(b, img, "appnet", "renamed");
            assert!(ok && out.contains("Address: 10.214.0.3"), "{out}");
            let (ok, _) = lookup(b, img, "appnet", "later");
            assert!(!ok, "the old name still resolves");

            // bad input: Docker's errors, nothing made
            let (code, err) = b.fails(&["network", "create", "appnet"]);
            assert_eq!(code, 1);
            assert!(err.contains("already exists"), "{err}");
            let (code, err) = b.fails(&["network", "create", "--subnet", "10.99.0.128/25", "x"]);
            assert_eq!(code, 1);
            assert!(err.contains("overlaps 10.99.0.0/24 of network other"), "{err}");
            let (_, err) = b.fails(&["network", "create", "--subnet", "10.98.0.1/24", "x"]);
            assert!(err.contains("host bits are set"), "{err}");
            let (_, err) = b.fails(&["network", "create", "-d", "overlay", "x"]);
            assert!(err.contains("plugin \"overlay\" not found"), "{err}");
            let (_, err) = b.fails(&["network", "rm", "bridge"]);
            assert!(err.contains("pre-defined"), "{err}");
            let (code, err) = b.fails(&["run", "--rm", "--network", "nosuch", img, "true"]);
            assert_eq!(code, 125);
            assert!(err.contains("network nosuch not found"), "{err}");
            let (code, err) = b.fails(&["run", "--rm", "--network", "other", "--ip", "10.214.0.9", img, "true"]);
            assert_eq!(code, 125);
            assert!(err.contains("not in the other network's subnet 10.99.0.0/24"), "{err}");
            let (code, err) = b.fails(&["network", "rm", "appnet"]);
            assert_eq!(code, 1);
            assert!(err.contains("has active endpoints"), "{err}");
            assert!(b.ok(&["network", "ls", "-q", "--filter", "name=x"]).trim().is_empty());

            // removal: containers, then networks; nothing of theirs is left
            b.ok(&["rm", "-f", "web", "db", "renamed"]);
            let pruned = b.ok(&["network", "prune", "-f", "--filter", "label!=tier"]);
            assert!(pruned.contains("other") && pruned.contains("inner") && !pruned.contains("appnet"), "{pruned}");
            b.ok(&["network", "rm", "appnet"]);
            assert_eq!(links("bn-"), Vec::<String>::new());
            no_links_left("vb");
            assert_eq!(nft_table(), None, "berth's nft table outlived its last network");
            let custom = b.ok(&["network", "ls", "-q", "--filter", "type=custom"]);
            assert!(custom.trim().is_empty(), "{custom}");
        });
    }
}

priv_test! {
    fn networks_come_back_after_a_daemon_crash_and_leave_nothing_behind() {
        in_fresh_netns(|| {
            let f = fixture();
            let (b, img) = (&f.b, f.img.as_str());
            b.ok(&["network", "create", "n1"]);
            b.ok(&["network", "create", "n2"]);
            serve(b, img, &["--network", "n1", "--network-alias", "api"], "svc");
            b.ok(&["network", "connect", "n2", "svc"]);
            let doomed = b.ok(&["run", "-d", "--network", "n1", img, "sleep", "300"]).trim().to_string();
            let pid = b.ok(&["inspect", "-f", "{{.State.Pid}}", &doomed]).trim().to_string();
            // a bridge of a network the crash forgot
            let made = Command::new("ip").args(["link", "add", "bn-0123456789a", "type", "bridge"]).status().expect("ip");
            assert!(made.success());
            let daemon = b.daemon_pid().expect("daemon pid");
            b.kill_daemon(9);
            let _ = daemon;
            Command::new("kill").args(["-9", &pid]).status().expect("kill");
            std::thread::sleep(Duration::from_millis(300));
            // the next command starts a daemon, which brings the networks and names back
            b.ok(&["ps", "-a"]);
            for (net, name) in [("n1", "svc"), ("n1", "api"), ("n2", "svc")] {
                let (ok, out) = lookup(b, img, net, name);
                assert!(ok, "{name} on {net} after the crash: {out}");
            }
            let got = b.ok(&["run", "--rm", "--network", "n2", img, "wget", "-q", "-O", "-", "http://svc/"]);
            assert_eq!(got.trim(), "svc");
            eventually("the stale bridge and the dead container's veth go", || {
                let bridges = links("bn-");
                let veths = links("vb");
                if bridges.iter().any(|n| n == "bn-0123456789a") || veths.len() != 1 {
                    return Err(format!("{bridges:?} {veths:?}"));
                }
                Ok(())
            });
            // 50 run --rm cycles on a user network leak no address, veth or DNS name
            for _ in 0..50 {
                b.ok(&["run", "--rm", "--network", "n1", img, "true"]);
            }
            let third = b.ok(&["run", "--rm", "--network", "n1", img, "sh", "-c", "ip -4 -o addr show eth0"]);
            assert!(third.contains("10.214.0.3/20"), "addresses leaked: {third}");
            b.ok(&["rm", "-f", "svc", &doomed]);
            b.ok(&["network", "rm", "n1", "n2"]);
            assert_eq!(links("bn-"), Vec::<String>::new());
            no_links_left("vb");
            no_links_left("vn");
            assert_eq!(nft_table(), None);
        });
    }
}

priv_test! {
    fn ipv6_networks_give_addresses_names_and_isolation() {
        in_fresh_netns(|| {
            let f = fixture();
            let (b, img) = (&f.b, f.img.as_str());
            b.ok(&["network", "create", "--ipv6", "six"]);
            b.ok(&["network", "create", "--ipv6", "--subnet", "10.98.0.0/24", "--subnet", "fd00:98::/64", "six2"]);
            let config = json(&b.ok(&["network", "inspect", "-f", "{{json .IPAM.Config}}", "six2"]));
            assert_eq!(config[1]["Subnet"], "fd00:98::/64", "{config}");
            assert_eq!(config[1]["Gateway"], "fd00:98::1", "{config}");
            assert_eq!(b.ok(&["network", "inspect", "-f", "{{.EnableIPv6}}", "six"]).trim(), "true");
            serve(b, img, &["--network", "six2"], "w6");
            let v6 = b.ok(&["inspect", "-f", "{{range .NetworkSettings.Networks}}{{.GlobalIPv6Address}}/{{.GlobalIPv6PrefixLen}} {{.IPv6Gateway}}{{end}}", "w6"]);
            assert_eq!(v6.trim(), "fd00:98::2/64 fd00:98::1");
            let routes = b.ok(&["exec", "w6", "ip", "-6", "route"]);
            assert!(routes.contains("default via fd00:98::1"), "{routes}");
            let out = b.ok(&["run", "--rm", "--network", "six2", "--dns-search", ".", img, "nslookup", "-type=AAAA", "w6"]);
            assert!(out.contains("Address: fd00:98::2"), "{out}");
            let got = b.ok(&["run", "--rm", "--network", "six2", img, "wget", "-q", "-O", "-", "http://[fd00:98::2]/"]);
            assert_eq!(got.trim(), "w6");
            let cross = b.run(&["run", "--rm", "--network", "six", img, "ping", "-6", "-c", "1", "-W", "1", "fd00:98::2"]);
            assert!(!cross.status.success(), "IPv6 crossed networks");
            let (_, err) = b.fails(&["network", "create", "--ipv6", "--subnet", "fd00:98:0:0:1::/80", "x"]);
            assert!(err.contains("overlaps the IPv6 subnet of network six2"), "{err}");
            let (_, err) = b.fails(&["network", "create", "--subnet", "fd00:99::/64", "x"]);
            assert!(err.contains("needs --ipv6"), "{err}");
            b.ok(&["rm", "-f", "w6"]);
            b.ok(&["network", "rm", "six", "six2"]);
            let v6_table = Command::new("nft").args(["list", "table", "ip6", "berth"]).output().expect("nft");
            assert!(!v6_table.status.success(), "the ip6 table outlived its networks");
        });
    }
}
