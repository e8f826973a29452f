//! The /etc files berth writes for a container: hosts and resolv.conf.

use std::net::Ipv4Addr;

use berth_api::containers::CreateRequest;

/// The `/etc/hosts` of a container: localhost lines, its own address and name (bridge) or
/// 127.0.1.1 (other modes), then `--add-host` entries.
pub fn hosts_file(hostname: &str, ip: Option<Ipv4Addr>, extra_hosts: &[String]) -> String {
    let own = match ip {
        Some(ip) => format!("{ip}\t{hostname}\n"),
        None => format!("127.0.1.1\t{hostname}\n"),
    };
    let extra: String = extra_hosts
        .iter()
        .filter_map(|h| {
            h.split_once(['=', ':'])
                .map(|(name, ip)| format!("{ip}\t{name}\n"))
        })
        .collect();
    format!(
        "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n{own}{extra}"
    )
}

/// The `/etc/resolv.conf` of a container: `--dns`, `--dns-search`, `--dns-option` when given,
/// else the host's; loopback nameservers of the host are unreachable from a private network
/// namespace, so (as Docker does) they are dropped there and Google's resolvers stand in
/// when none is left.
pub fn resolv_conf(host: &str, req: &CreateRequest, own_netns: bool) -> String {
    let hc = &req.host_config;
    let mut nameservers: Vec<String> = hc.dns.clone();
    let mut search: Vec<String> = hc.dns_search.clone();
    let mut options: Vec<String> = hc.dns_options.clone();
    let mut other = String::new();
    for line in host.lines() {
        let mut words = line.split_whitespace();
        match words.next() {
            Some("nameserver") if hc.dns.is_empty() => {
                if let Some(ns) = words.next() {
                    let loopback = ns
                        .parse::<std::net::IpAddr>()
                        .is_ok_and(|a| a.is_loopback());
                    if !(own_netns && loopback) {
                        nameservers.push(ns.to_string());
                    }
                }
            }
            Some("search" | "domain") if hc.dns_search.is_empty() => {
                search.extend(words.map(str::to_string))
            }
            Some("options") if hc.dns_options.is_empty() => {
                options.extend(words.map(str::to_string))
            }
            Some(w) if w.starts_with('#') || w.starts_with(';') => {}
            Some("nameserver" | "search" | "domain" | "options") | None => {}
            Some(_) => {
                other.push_str(line);
                other.push('\n');
            }
        }
    }
    if nameservers.is_empty() && own_netns {
        nameservers = vec!["8.8.8.8".into(), "8.8.4.4".into()];
    }
    let mut out = String::new();
    if !search.is_empty() && search != ["."] {
        out.push_str(&format!("search {}\n", search.join(" ")));
    }
    for ns in nameservers {
        out.push_str(&format!("nameserver {ns}\n"));
    }
    if !options.is_empty() {
        out.push_str(&format!("options {}\n", options.join(" ")));
    }
    out.push_str(&other);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etc_files() {
        let hosts = hosts_file(
            "web",
            Some(Ipv4Addr::new(10, 213, 0, 2)),
            &["db:10.0.0.9".into()],
        );
        assert!(hosts.contains("10.213.0.2\tweb\n"), "{hosts}");
        assert!(hosts.ends_with("10.0.0.9\tdb\n"), "{hosts}");
        assert!(hosts_file("x", None, &[]).contains("127.0.1.1\tx\n"));
        let mut r = CreateRequest::default();
        let host =
            "# generated\nnameserver 127.0.0.53\nnameserver 10.1.1.1\nsearch corp\noptions edns0\n";
        assert_eq!(
            resolv_conf(host, &r, true),
            "search corp\nnameserver 10.1.1.1\noptions edns0\n"
        );
        assert!(resolv_conf(host, &r, false).contains("nameserver 127.0.0.53"));
        assert!(resolv_conf("nameserver 127.0.0.1\n", &r, true).contains("nameserver 8.8.8.8"));
        r.host_config.dns = vec!["1.1.1.1".into()];
        r.host_config.dns_search = vec!["a.example".into(), "b.example".into()];
        r.host_config.dns_options = vec!["ndots:2".into()];
        assert_eq!(
            resolv_conf(host, &r, true),
            "search a.example b.example\nnameserver 1.1.1.1\noptions ndots:2\n"
        );
    }
}
