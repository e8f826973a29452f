//! The embedded DNS server over real sockets on 127.0.0.1 (no root): queries built with
//! hickory-proto, fake upstream servers on loopback that record what reached them. Nothing is
//! sent anywhere but 127.0.0.1.

use std::collections::HashSet;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use berth_net::dns::{DnsContainer, DnsRecords, Resolver, ResolverConfig, TTL};
use berth_net::ErrorKind;
use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::rdata::A;
use hickory_proto::rr::{Name, RData, Record, RecordType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::task::JoinHandle;

const LOOPBACK: &str = "127.0.0.1:0";

/// What a fake upstream does with every query.
#[derive(Debug, Clone, Copy)]
enum Upstream {
    /// Answers A queries with this address (NOERROR, empty for other types).
    Answer(Ipv4Addr),
    /// Answers NXDOMAIN, not authoritative.
    NxDomain,
    /// Answers SERVFAIL.
    ServFail,
    /// Never answers.
    Silent,
    /// Over UDP answers TC with no record; over TCP like `Answer`.
    TruncateUdp(Ipv4Addr),
}

/// (lower-case name, type, "udp"/"tcp") of every query an upstream received.
type Seen = Arc<Mutex<Vec<(String, RecordType, &'static str)>>>;

/// A fake upstream DNS server on 127.0.0.1 (UDP and TCP on one port).
struct FakeUpstream {
    address: SocketAddr,
    seen: Seen,
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for FakeUpstream {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

fn upstream_answer(query: &Message, behaviour: Upstream, tcp: bool) -> Option<Message> {
    let mut answer = Message::response(query.id, OpCode::Query);
    answer.metadata.recursion_available = true;
    answer.metadata.recursion_desired = query.recursion_desired;
    answer.add_queries(query.queries.iter().cloned());
    let q = query.queries.first()?;
    let reply = |answer: &mut Message, ip: Ipv4Addr| {
        if q.query_type() == RecordType::A {
            answer.add_answer(Record::from_rdata(q.name().clone(), 30, RData::A(A(ip))));
        }
    };
    match behaviour {
        Upstream::Answer(ip) => reply(&mut answer, ip),
        Upstream::NxDomain => answer.metadata.response_code = ResponseCode::NXDomain,
        Upstream::ServFail => answer.metadata.response_code = ResponseCode::ServFail,
        Upstream::Silent => return None,
        Upstream::TruncateUdp(ip) if tcp => reply(&mut answer, ip),
        Upstream::TruncateUdp(_) => answer.metadata.truncation = true,
    }
    Some(answer)
}

impl FakeUpstream {
    async fn start(behaviour: Upstream) -> Self {
        // the same port for both: the kernel's free UDP port may be taken for TCP by another
        // test's socket, so try again with another
        let mut attempt = 0;
        let (udp, address, tcp) = loop {
            let udp = UdpSocket::bind(LOOPBACK).await.expect("bind udp");
            let address = udp.local_addr().expect("addr");
            match TcpListener::bind(address).await {
                Ok(tcp) => break (udp, address, tcp),
                Err(_) if attempt < 50 => attempt += 1,
                Err(e) => panic!("bind tcp: {e}"),
            }
        };
        let seen: Seen = Arc::new(Mutex::new(Vec::new()));
        let record = |seen: &Seen, query: &Message, transport| {
            if let Some(q) = query.queries.first() {
                seen.lock().expect("seen").push((
                    q.name().to_ascii().to_ascii_lowercase(),
                    q.query_type(),
                    transport,
                ));
            }
        };
        let udp_seen = seen.clone();
        let udp_task = tokio::spawn(async move {
            let mut buffer = vec![0u8; 65_535];
            loop {
                let Ok((len, peer)) = udp.recv_from(&mut buffer).await else {
                    continue;
                };
                let Ok(query) = Message::from_vec(&buffer[..len]) else {
                    continue;
                };
                record(&udp_seen, &query, "udp");
                if let Some(answer) = upstream_answer(&query, behaviour, false) {
                    let _ = udp.send_to(&answer.to_vec().expect("encode"), peer).await;
                }
            }
        });
        let tcp_seen = seen.clone();
        let tcp_task = tokio::spawn(async move {
            loop {
                let Ok((mut stream, _)) = tcp.accept().await else {
                    continue;
                };
                let seen = tcp_seen.clone();
                tokio::spawn(async move {
                    let Ok(len) = stream.read_u16().await else {
                        return;
                    };
                    let mut bytes = vec![0u8; usize::from(len)];
                    if stream.read_exact(&mut bytes).await.is_err() {
                        return;
                    }
                    let Ok(query) = Message::from_vec(&bytes) else {
                        return;
                    };
                    record(&seen, &query, "tcp");
                    if let Some(answer) = upstream_answer(&query, behaviour, true) {
                        let bytes = answer.to_vec().expect("encode");
                        let mut framed = (bytes.len() as u16).to_be_bytes().to_vec();
                        framed.extend_from_slice(&bytes);
                        let _ = stream.write_all(&framed).await;
                    }
                });
            }
        });
        Self {
            address,
            seen,
            tasks: vec![udp_task, tcp_task],
        }
    }

    fn seen(&self) -> Vec<(String, RecordType, &'static str)> {
        self.seen.lock().expect("seen").clone()
    }

    fn names_seen(&self) -> Vec<String> {
        self.seen().into_iter().map(|(name, _, _)| name).collect()
    }
}

/// An address nothing listens on (bound, then closed): UDP there gets ICMP port unreachable.
async fn dead_address() -> SocketAddr {
    let socket = UdpSocket::bind(LOOPBACK).await.expect("bind");
    socket.local_addr().expect("addr")
}

fn query_message(name: &str, query_type: RecordType) -> Message {
    let mut message = Message::query();
    message.metadata.recursion_desired = true;
    // every name on the wire is absolute: "web" and "web." are the same query there
    let mut name = Name::from_ascii(name).expect("name");
    name.set_fqdn(true);
    message.add_query(Query::query(name, query_type));
    message
}

/// Sends raw bytes over UDP, returns the answer if one comes within `wait`.
async fn exchange_udp(server: SocketAddr, bytes: &[u8], wait: Duration) -> Option<Message> {
    let socket = UdpSocket::bind(LOOPBACK).await.expect("bind");
    socket.connect(server).await.expect("connect");
    socket.send(bytes).await.expect("send");
    let mut buffer = vec![0u8; 65_535];
    // a closed port answers ICMP unreachable: a receive error, no answer
    let len = tokio::time::timeout(wait, socket.recv(&mut buffer))
        .await
        .ok()?
        .ok()?;
    Some(Message::from_vec(&buffer[..len]).expect("decodable answer"))
}

async fn send_udp(server: SocketAddr, message: &Message) -> Message {
    let answer = exchange_udp(
        server,
        &message.to_vec().expect("encode"),
        Duration::from_secs(5),
    )
    .await
    .expect("an answer over UDP");
    assert_eq!(answer.id, message.id, "answer id");
    assert_eq!(answer.message_type, MessageType::Response);
    assert_eq!(answer.queries, message.queries, "question echoed");
    answer
}

async fn udp(server: SocketAddr, name: &str, query_type: RecordType) -> Message {
    send_udp(server, &query_message(name, query_type)).await
}

async fn tcp(server: SocketAddr, name: &str, query_type: RecordType) -> Message {
    let message = query_message(name, query_type);
    let bytes = message.to_vec().expect("encode");
    let mut stream = TcpStream::connect(server).await.expect("connect");
    let mut framed = (bytes.len() as u16).to_be_bytes().to_vec();
    framed.extend_from_slice(&bytes);
    stream.write_all(&framed).await.expect("write");
    let answer = tokio::time::timeout(Duration::from_secs(5), async {
        let len = stream.read_u16().await.expect("length");
        let mut answer = vec![0u8; usize::from(len)];
        stream.read_exact(&mut answer).await.expect("answer");
        answer
    })
    .await
    .expect("an answer over TCP");
    let answer = Message::from_vec(&answer).expect("decodable answer");
    assert_eq!(answer.id, message.id);
    answer
}

fn ipv4s(message: &Message) -> Vec<Ipv4Addr> {
    message
        .answers
        .iter()
        .filter_map(|record| match &record.data {
            RData::A(A(ip)) => Some(*ip),
            _ => None,
        })
        .collect()
}

fn container(id: &str, name: &str, aliases: &[&str], ip: [u8; 4]) -> DnsContainer {
    DnsContainer {
        id: id.into(),
        name: name.into(),
        aliases: aliases.iter().map(|a| a.to_string()).collect(),
        ipv4: vec![Ipv4Addr::from(ip)],
        ..Default::default()
    }
}

const WEB_ID: &str = "4f2a9c1d7e3b8a6f5c0d2e1f";

fn network() -> Arc<DnsRecords> {
    let records = Arc::new(DnsRecords::new("mynet"));
    records
        .add(container(WEB_ID, "/web", &["frontend"], [10, 213, 0, 2]))
        .expect("add web");
    records
        .add(container(
            "9d8c7b6a5f4e3d2c1b0a",
            "db",
            &[],
            [10, 213, 0, 3],
        ))
        .expect("add db");
    records
}

async fn start(records: &Arc<DnsRecords>, config: ResolverConfig) -> Resolver {
    Resolver::start(LOOPBACK.parse().expect("addr"), records.clone(), config)
        .await
        .expect("start resolver")
}

fn forwarding(upstreams: &[&FakeUpstream]) -> ResolverConfig {
    ResolverConfig {
        upstream_timeout: Duration::from_millis(300),
        ..ResolverConfig::forwarding_to(upstreams.iter().map(|u| u.address).collect())
    }
}

#[tokio::test]
async fn names_aliases_short_ids_answer_locally_whatever_the_case() {
    let upstream = FakeUpstream::start(Upstream::Answer(Ipv4Addr::new(192, 0, 2, 99))).await;
    let records = network();
    let resolver = start(&records, forwarding(&[&upstream])).await;
    let server = resolver.local_addr();
    let web = vec![Ipv4Addr::new(10, 213, 0, 2)];
    for name in [
        "web",
        "web.",
        "WEB",
        "Web.",
        "frontend",
        "FrontEnd.",
        &WEB_ID[..12],
        &WEB_ID[..12].to_uppercase(),
        "web.mynet",
        "WEB.MyNet.",
    ] {
        let answer = udp(server, name, RecordType::A).await;
        assert_eq!(answer.response_code, ResponseCode::NoError, "{name}");
        assert_eq!(ipv4s(&answer), web, "{name}");
        assert!(answer.authoritative && answer.recursion_available, "{name}");
        assert_eq!(answer.answers[0].ttl, TTL);
        assert_eq!(&answer.answers[0].name, answer.queries[0].name(), "{name}");
    }
    assert_eq!(
        ipv4s(&udp(server, "db", RecordType::A).await),
        [Ipv4Addr::new(10, 213, 0, 3)]
    );

    // AAAA for a name without IPv6, and other types: empty NOERROR, answered here
    for query_type in [RecordType::AAAA, RecordType::MX, RecordType::TXT] {
        let answer = udp(server, "web", query_type).await;
        assert_eq!(answer.response_code, ResponseCode::NoError, "{query_type}");
        assert!(answer.answers.is_empty(), "{query_type}");
    }
    // the full id is not a name (Docker registers the short one)
    let answer = udp(server, WEB_ID, RecordType::A).await;
    assert_eq!(ipv4s(&answer), [Ipv4Addr::new(192, 0, 2, 99)]);
    assert_eq!(
        upstream.names_seen(),
        [format!("{WEB_ID}.")],
        "a name the network owns leaked upstream"
    );
    resolver.stop().await;
}

#[tokio::test]
async fn ptr_answers_container_addresses_and_forwards_others() {
    let upstream = FakeUpstream::start(Upstream::NxDomain).await;
    let records = network();
    let resolver = start(&records, forwarding(&[&upstream])).await;
    let answer = udp(
        resolver.local_addr(),
        "2.0.213.10.in-addr.arpa.",
        RecordType::PTR,
    )
    .await;
    assert_eq!(answer.response_code, ResponseCode::NoError);
    assert_eq!(answer.answers.len(), 1);
    match &answer.answers[0].data {
        RData::PTR(target) => assert_eq!(target.0.to_ascii(), "web.mynet."),
        other => panic!("not a PTR: {other:?}"),
    }
    assert_eq!(answer.answers[0].ttl, TTL);
    assert!(upstream.seen().is_empty());

    let answer = udp(
        resolver.local_addr(),
        "9.0.213.10.in-addr.arpa.",
        RecordType::PTR,
    )
    .await;
    assert_eq!(answer.response_code, ResponseCode::NXDomain);
    assert_eq!(upstream.names_seen(), ["9.0.213.10.in-addr.arpa."]);
}

#[tokio::test]
async fn a_shared_alias_answers_every_container_round_robin() {
    let records = Arc::new(DnsRecords::new("mynet"));
    for (i, id) in ["aaaa", "bbbb", "cccc"].iter().enumerate() {
        records
            .add(container(
                id,
                &format!("db{i}"),
                &["db"],
                [10, 213, 0, 10 + i as u8],
            ))
            .expect("add");
    }
    let resolver = start(&records, ResolverConfig::default()).await;
    let first = ipv4s(&udp(resolver.local_addr(), "db", RecordType::A).await);
    let second = ipv4s(&udp(resolver.local_addr(), "db", RecordType::A).await);
    assert_eq!(first.len(), 3);
    assert_eq!(
        first.iter().collect::<HashSet<_>>(),
        second.iter().collect::<HashSet<_>>()
    );
    assert_ne!(first[0], second[0], "the first address does not rotate");
    assert_eq!(
        ipv4s(&udp(resolver.local_addr(), "db1", RecordType::A).await),
        [Ipv4Addr::new(10, 213, 0, 11)]
    );
}

#[tokio::test]
async fn unknown_names_are_forwarded_and_the_answer_comes_back() {
    let upstream = FakeUpstream::start(Upstream::Answer(Ipv4Addr::new(192, 0, 2, 7))).await;
    let records = network();
    let resolver = start(&records, forwarding(&[&upstream])).await;
    let answer = udp(resolver.local_addr(), "Example.COM.", RecordType::A).await;
    assert_eq!(answer.response_code, ResponseCode::NoError);
    assert_eq!(ipv4s(&answer), [Ipv4Addr::new(192, 0, 2, 7)]);
    assert!(!answer.authoritative);
    assert_eq!(
        upstream.seen(),
        [("example.com.".to_string(), RecordType::A, "udp")]
    );

    // over TCP, forwarded over TCP; local names over TCP too
    let answer = tcp(resolver.local_addr(), "other.example", RecordType::A).await;
    assert_eq!(ipv4s(&answer), [Ipv4Addr::new(192, 0, 2, 7)]);
    assert_eq!(
        upstream.seen()[1],
        ("other.example.".to_string(), RecordType::A, "tcp")
    );
    let answer = tcp(resolver.local_addr(), "frontend", RecordType::A).await;
    assert_eq!(ipv4s(&answer), [Ipv4Addr::new(10, 213, 0, 2)]);
    assert_eq!(upstream.seen().len(), 2);
}

#[tokio::test]
async fn a_silent_or_dead_upstream_gives_way_to_the_next() {
    let silent = FakeUpstream::start(Upstream::Silent).await;
    let failing = FakeUpstream::start(Upstream::ServFail).await;
    let good = FakeUpstream::start(Upstream::Answer(Ipv4Addr::new(192, 0, 2, 8))).await;
    let mut config = forwarding(&[&silent, &failing, &good]);
    config.upstreams.insert(1, dead_address().await);
    let records = network();
    let resolver = start(&records, config).await;
    let started = Instant::now();
    let answer = udp(resolver.local_addr(), "example.org", RecordType::A).await;
    assert_eq!(ipv4s(&answer), [Ipv4Addr::new(192, 0, 2, 8)]);
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(300),
        "no timeout waited: {took:?}"
    );
    assert!(took < Duration::from_secs(3), "took {took:?}");
    for upstream in [&silent, &failing, &good] {
        assert_eq!(upstream.names_seen(), ["example.org."]);
    }
}

#[tokio::test]
async fn servfail_when_every_upstream_fails_or_there_is_none() {
    let silent = FakeUpstream::start(Upstream::Silent).await;
    let failing = FakeUpstream::start(Upstream::ServFail).await;
    let records = network();
    let resolver = start(&records, forwarding(&[&silent, &failing])).await;
    let answer = udp(resolver.local_addr(), "example.net", RecordType::A).await;
    assert_eq!(answer.response_code, ResponseCode::ServFail);
    assert_eq!(failing.names_seen(), ["example.net."]);
    let answer = tcp(resolver.local_addr(), "example.net", RecordType::A).await;
    assert_eq!(answer.response_code, ResponseCode::ServFail);

    let alone = start(&records, ResolverConfig::default()).await;
    let answer = udp(alone.local_addr(), "example.net", RecordType::A).await;
    assert_eq!(answer.response_code, ResponseCode::ServFail);

    // its own address as upstream is skipped, not looped through
    let address = alone.local_addr();
    alone.stop().await;
    let looped = Resolver::start(
        address,
        records.clone(),
        ResolverConfig::forwarding_to(vec![address]),
    )
    .await
    .expect("start on the same address again");
    let answer = udp(looped.local_addr(), "example.net", RecordType::A).await;
    assert_eq!(answer.response_code, ResponseCode::ServFail);
}

#[tokio::test]
async fn internal_networks_never_forward() {
    let upstream = FakeUpstream::start(Upstream::Answer(Ipv4Addr::new(192, 0, 2, 9))).await;
    let records = network();
    let config = ResolverConfig {
        internal: true,
        ..forwarding(&[&upstream])
    };
    let resolver = start(&records, config).await;
    let answer = udp(resolver.local_addr(), "example.com", RecordType::A).await;
    assert_eq!(answer.response_code, ResponseCode::ServFail);
    assert!(!answer.recursion_available);
    let answer = udp(resolver.local_addr(), "web", RecordType::A).await;
    assert_eq!(ipv4s(&answer), [Ipv4Addr::new(10, 213, 0, 2)]);
    assert!(upstream.seen().is_empty(), "internal network forwarded");
}

#[tokio::test]
async fn a_removed_container_is_no_longer_answered_and_its_name_goes_upstream() {
    let upstream = FakeUpstream::start(Upstream::NxDomain).await;
    let records = network();
    let resolver = start(&records, forwarding(&[&upstream])).await;
    assert_eq!(
        ipv4s(&udp(resolver.local_addr(), "web", RecordType::A).await),
        [Ipv4Addr::new(10, 213, 0, 2)]
    );
    assert!(upstream.seen().is_empty());

    records.remove(WEB_ID).expect("was there");
    for name in ["web", "frontend", &WEB_ID[..12]] {
        let answer = udp(resolver.local_addr(), name, RecordType::A).await;
        assert_eq!(answer.response_code, ResponseCode::NXDomain, "{name}");
        assert!(answer.answers.is_empty());
    }
    let reverse = udp(
        resolver.local_addr(),
        "2.0.213.10.in-addr.arpa",
        RecordType::PTR,
    )
    .await;
    assert_eq!(reverse.response_code, ResponseCode::NXDomain);
    assert_eq!(
        upstream.names_seen(),
        [
            "web.".to_string(),
            "frontend.".into(),
            format!("{}.", &WEB_ID[..12]),
            "2.0.213.10.in-addr.arpa.".into()
        ]
    );
    // the other container is untouched
    assert_eq!(
        ipv4s(&udp(resolver.local_addr(), "db", RecordType::A).await),
        [Ipv4Addr::new(10, 213, 0, 3)]
    );
}

#[tokio::test]
async fn a_truncated_upstream_answer_goes_back_and_the_tcp_retry_is_forwarded_over_tcp() {
    let upstream = FakeUpstream::start(Upstream::TruncateUdp(Ipv4Addr::new(192, 0, 2, 10))).await;
    let records = network();
    let resolver = start(&records, forwarding(&[&upstream])).await;
    let answer = udp(resolver.local_addr(), "big.example", RecordType::A).await;
    assert!(answer.truncation, "TC bit lost");
    assert!(answer.answers.is_empty());
    let answer = tcp(resolver.local_addr(), "big.example", RecordType::A).await;
    assert!(!answer.truncation);
    assert_eq!(ipv4s(&answer), [Ipv4Addr::new(192, 0, 2, 10)]);
    let transports: Vec<_> = upstream.seen().into_iter().map(|(_, _, t)| t).collect();
    assert_eq!(transports, ["udp", "tcp"]);
}

#[tokio::test]
async fn a_large_local_answer_is_truncated_over_udp_and_whole_over_tcp() {
    let records = Arc::new(DnsRecords::new("mynet"));
    for i in 0..60u8 {
        records
            .add(container(
                &format!("id{i:02}"),
                &format!("worker{i}"),
                &["workers"],
                [10, 213, 1, i],
            ))
            .expect("add");
    }
    let resolver = start(&records, ResolverConfig::default()).await;
    let answer = udp(resolver.local_addr(), "workers", RecordType::A).await;
    assert!(answer.truncation);
    assert!(!answer.answers.is_empty() && answer.answers.len() < 60);
    assert!(answer.to_vec().expect("encode").len() <= 512);

    // a client that takes 4096 bytes over UDP gets them all
    let mut message = query_message("workers", RecordType::A);
    let mut edns = Edns::new();
    edns.set_max_payload(4096);
    message.set_edns(edns);
    let answer = send_udp(resolver.local_addr(), &message).await;
    assert!(!answer.truncation);
    assert_eq!(answer.answers.len(), 60);
    assert!(answer.edns.is_some(), "EDNS query answered without OPT");

    let answer = tcp(resolver.local_addr(), "workers", RecordType::A).await;
    assert!(!answer.truncation);
    assert_eq!(answer.answers.len(), 60);
}

#[tokio::test]
async fn malformed_packets_are_ignored_and_the_server_goes_on() {
    let upstream = FakeUpstream::start(Upstream::NxDomain).await;
    let records = network();
    let resolver = start(&records, forwarding(&[&upstream])).await;
    let server = resolver.local_addr();
    let mut response = query_message("web", RecordType::A);
    response.metadata.message_type = MessageType::Response;
    let mut cut = query_message("web", RecordType::A)
        .to_vec()
        .expect("encode");
    cut.truncate(cut.len() - 3);
    let garbage: [&[u8]; 4] = [
        b"",
        b"\x12\x34",
        &[0xff; 40],
        &response.to_vec().expect("encode"),
    ];
    for packet in garbage.iter().copied().chain([cut.as_slice()]) {
        assert!(
            exchange_udp(server, packet, Duration::from_millis(300))
                .await
                .is_none(),
            "answered {packet:?}"
        );
    }
    // garbage over TCP closes that connection only
    let mut stream = TcpStream::connect(server).await.expect("connect");
    stream.write_all(b"\x00\x05hello").await.expect("write");
    let mut rest = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(2), stream.read_to_end(&mut rest)).await;
    assert!(matches!(closed, Ok(Ok(0))), "{closed:?}");

    // no question, two questions: FORMERR
    let mut empty = query_message("web", RecordType::A);
    empty.queries.clear();
    assert_eq!(
        send_udp(server, &empty).await.response_code,
        ResponseCode::FormErr
    );
    assert_eq!(
        ipv4s(&udp(server, "web", RecordType::A).await),
        [Ipv4Addr::new(10, 213, 0, 2)]
    );
    assert_eq!(
        ipv4s(&tcp(server, "web", RecordType::A).await),
        [Ipv4Addr::new(10, 213, 0, 2)]
    );
    assert!(upstream.seen().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_queries_all_get_their_answer() {
    let upstream = FakeUpstream::start(Upstream::Answer(Ipv4Addr::new(192, 0, 2, 11))).await;
    let records = network();
    let resolver = start(&records, forwarding(&[&upstream])).await;
    let server = resolver.local_addr();
    let mut queries = tokio::task::JoinSet::new();
    for i in 0..150 {
        queries.spawn(async move {
            let (name, expected) = match i % 3 {
                0 => ("web".to_string(), Ipv4Addr::new(10, 213, 0, 2)),
                1 => ("db".to_string(), Ipv4Addr::new(10, 213, 0, 3)),
                _ => (format!("host{i}.example"), Ipv4Addr::new(192, 0, 2, 11)),
            };
            let answer = if i % 10 == 0 {
                tcp(server, &name, RecordType::A).await
            } else {
                udp(server, &name, RecordType::A).await
            };
            assert_eq!(ipv4s(&answer), [expected], "{name}");
        });
    }
    while let Some(done) = queries.join_next().await {
        done.expect("query task");
    }
    assert_eq!(upstream.seen().len(), 50);
}

#[tokio::test]
async fn a_container_with_its_own_dns_servers_is_forwarded_there() {
    let network_upstream = FakeUpstream::start(Upstream::Answer(Ipv4Addr::new(192, 0, 2, 1))).await;
    let own = FakeUpstream::start(Upstream::Answer(Ipv4Addr::new(192, 0, 2, 2))).await;
    let records = network();
    let resolver = start(&records, forwarding(&[&network_upstream])).await;
    assert_eq!(
        ipv4s(&udp(resolver.local_addr(), "example.com", RecordType::A).await),
        [Ipv4Addr::new(192, 0, 2, 1)]
    );
    // the test's queries come from 127.0.0.1: make that a container with --dns
    records
        .add(DnsContainer {
            dns_servers: vec![own.address],
            ..container("cccc", "client", &[], [127, 0, 0, 1])
        })
        .expect("add");
    assert_eq!(
        ipv4s(&udp(resolver.local_addr(), "example.com", RecordType::A).await),
        [Ipv4Addr::new(192, 0, 2, 2)]
    );
    assert_eq!(network_upstream.seen().len(), 1);
    assert_eq!(own.names_seen(), ["example.com."]);
}

#[tokio::test]
async fn stopping_closes_both_sockets_and_a_taken_address_is_a_conflict() {
    let records = network();
    let resolver = start(&records, ResolverConfig::default()).await;
    let address = resolver.local_addr();
    let err = Resolver::start(address, records.clone(), ResolverConfig::default())
        .await
        .expect_err("address taken");
    assert_eq!(err.kind(), ErrorKind::Conflict);
    assert!(err.to_string().contains(&address.to_string()), "{err}");

    resolver.stop().await;
    assert!(
        exchange_udp(
            address,
            &query_message("web", RecordType::A)
                .to_vec()
                .expect("encode"),
            Duration::from_millis(300)
        )
        .await
        .is_none(),
        "a stopped server answered"
    );
    assert!(
        TcpStream::connect(address).await.is_err(),
        "TCP still listening"
    );
    UdpSocket::bind(address).await.expect("UDP port released");
    TcpListener::bind(address).await.expect("TCP port released");

    // dropping the handle stops it too
    let resolver = Resolver::start(address, records.clone(), ResolverConfig::default())
        .await
        .expect("restart on the same address");
    drop(resolver);
    let deadline = Instant::now() + Duration::from_secs(2);
    while UdpSocket::bind(address).await.is_err() {
        assert!(Instant::now() < deadline, "dropped server kept its socket");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
