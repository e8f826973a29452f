//! The embedded DNS server of one network: UDP and TCP on one address, answering from the
//! network's [`DnsRecords`] and forwarding the rest to upstream servers.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::rdata::{A, AAAA, PTR};
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::Semaphore;
use tokio::task::{JoinHandle, JoinSet};
use tracing::{debug, warn};

use super::records::DnsRecords;
use crate::{Ipv4Subnet, NetworkError, Result};

/// TTL of the answers for container names, Docker's.
pub const TTL: u32 = 600;
/// How long one upstream server gets before the next is tried (Docker's 4 s).
pub const DEFAULT_UPSTREAM_TIMEOUT: Duration = Duration::from_secs(4);
/// Queries forwarded at once; past that, SERVFAIL at once (Docker's limit of 100).
pub const MAX_CONCURRENT_FORWARDS: usize = 100;
/// TCP connections served at once; past that, new ones are closed.
pub const MAX_TCP_CONNECTIONS: usize = 100;
/// A TCP client idle this long is disconnected.
pub const TCP_IDLE_TIMEOUT: Duration = Duration::from_secs(10);
/// The UDP payload size every client may receive (RFC 1035).
const MIN_UDP_PAYLOAD: usize = 512;
/// The EDNS payload size this server advertises (DNS flag day 2020).
const EDNS_PAYLOAD: u16 = 1232;

/// How a network's embedded server treats names it does not own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolverConfig {
    /// Upstream servers, asked in order (normally the host's, [`super::ResolvConf::upstreams`]).
    /// A container's own `--dns` servers ([`super::DnsContainer::dns_servers`]) replace them
    /// for its queries. The server's own address is never used as an upstream.
    pub upstreams: Vec<SocketAddr>,
    /// How long one upstream gets before the next is tried.
    pub upstream_timeout: Duration,
    /// `--internal` network: never forward; names the network does not own get SERVFAIL (as
    /// Docker answers on internal networks) and answers do not claim recursion.
    pub internal: bool,
    /// Clients answered: addresses in this subnet (the network's) and loopback; queries from
    /// anywhere else (containers of other networks reaching the gateway address) are dropped
    /// unanswered. `None`: every client.
    pub clients: Option<Ipv4Subnet>,
}

impl Default for ResolverConfig {
    fn default() -> Self {
        Self {
            upstreams: Vec::new(),
            upstream_timeout: DEFAULT_UPSTREAM_TIMEOUT,
            internal: false,
            clients: None,
        }
    }
}

impl ResolverConfig {
    /// Forwarding to `upstreams`, every other setting the default.
    pub fn forwarding_to(upstreams: Vec<SocketAddr>) -> Self {
        Self {
            upstreams,
            ..Self::default()
        }
    }
}

/// A running embedded DNS server. Dropping it (or [`Resolver::stop`]) stops its tasks and
/// closes its sockets.
#[derive(Debug)]
pub struct Resolver {
    local: SocketAddr,
    udp: JoinHandle<()>,
    tcp: JoinHandle<()>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Transport {
    Udp,
    Tcp,
}

struct Inner {
    records: Arc<DnsRecords>,
    config: ResolverConfig,
    local: SocketAddr,
    forwards: Semaphore,
}

impl Resolver {
    /// Binds UDP and TCP on `bind` (port 0: any free port, the same for both) and serves the
    /// network's `records` there until the returned handle is dropped or stopped. Must be called
    /// inside a tokio runtime.
    pub async fn start(
        bind: SocketAddr,
        records: Arc<DnsRecords>,
        config: ResolverConfig,
    ) -> Result<Self> {
        let bind_error = |protocol: &'static str| {
            move |source: io::Error| NetworkError::DnsBind {
                address: bind,
                protocol,
                source,
            }
        };
        // with port 0 the TCP port the kernel gave UDP may be taken: try a few
        let attempts = if bind.port() == 0 { 8 } else { 1 };
        let mut attempt = 0;
        let (udp, tcp, local) = loop {
            attempt += 1;
            let udp = UdpSocket::bind(bind).await.map_err(bind_error("udp"))?;
            let local = udp.local_addr().map_err(bind_error("udp"))?;
            match TcpListener::bind(local).await {
                Ok(tcp) => break (udp, tcp, local),
                Err(e) if attempt < attempts && e.kind() == io::ErrorKind::AddrInUse => continue,
                Err(e) => return Err(bind_error("tcp")(e)),
            }
        };
        let inner = Arc::new(Inner {
            records,
            config,
            local,
            forwards: Semaphore::new(MAX_CONCURRENT_FORWARDS),
        });
        debug!(address = %local, network = inner.records.network(), "embedded DNS server started");
        Ok(Self {
            local,
            udp: tokio::spawn(serve_udp(inner.clone(), Arc::new(udp))),
            tcp: tokio::spawn(serve_tcp(inner, tcp)),
        })
    }

    /// The address served (UDP and TCP).
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// Stops serving and waits until both sockets are closed.
    pub async fn stop(mut self) {
        self.udp.abort();
        self.tcp.abort();
        // a cancelled task drops its sockets (and its queries in flight) before it completes
        let _ = (&mut self.udp).await;
        let _ = (&mut self.tcp).await;
    }
}

impl Drop for Resolver {
    fn drop(&mut self) {
        self.udp.abort();
        self.tcp.abort();
    }
}

async fn serve_udp(inner: Arc<Inner>, socket: Arc<UdpSocket>) {
    // queries in flight live in this set: aborting this task drops it, which aborts them
    let mut queries = JoinSet::new();
    let mut buffer = vec![0u8; 65_535];
    loop {
        while queries.try_join_next().is_some() {}
        let (len, client) = match socket.recv_from(&mut buffer).await {
            Ok(received) => received,
            Err(e) => {
                debug!(error = %e, "embedded DNS: UDP receive failed");
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        if !inner.allowed(client.ip()) {
            debug!(%client, "embedded DNS: query from outside the network dropped");
            continue;
        }
        let packet = buffer[..len].to_vec();
        let (inner, socket) = (inner.clone(), socket.clone());
        queries.spawn(async move {
            if let Some(answer) = inner.handle(&packet, Transport::Udp, client).await {
                if let Err(e) = socket.send_to(&answer, client).await {
                    debug!(%client, error = %e, "embedded DNS: cannot send answer");
                }
            }
        });
    }
}

async fn serve_tcp(inner: Arc<Inner>, listener: TcpListener) {
    let mut connections = JoinSet::new();
    let slots = Arc::new(Semaphore::new(MAX_TCP_CONNECTIONS));
    loop {
        while connections.try_join_next().is_some() {}
        let (stream, client) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                debug!(error = %e, "embedded DNS: TCP accept failed");
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        if !inner.allowed(client.ip()) {
            continue;
        }
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            warn!(%client, "embedded DNS: too many TCP connections, closing a new one");
            continue;
        };
        let inner = inner.clone();
        connections.spawn(async move {
            let _slot = slot;
            serve_connection(&inner, stream, client).await;
        });
    }
}

/// Serves length-prefixed queries on one TCP connection, one after the other, until the client
/// closes it, idles, or sends something undecodable.
async fn serve_connection(inner: &Inner, mut stream: TcpStream, client: SocketAddr) {
    loop {
        let Ok(Ok(len)) = tokio::time::timeout(TCP_IDLE_TIMEOUT, stream.read_u16()).await else {
            return;
        };
        let mut packet = vec![0u8; usize::from(len)];
        let Ok(Ok(_)) =
            tokio::time::timeout(TCP_IDLE_TIMEOUT, stream.read_exact(&mut packet)).await
        else {
            return;
        };
        let Some(answer) = inner.handle(&packet, Transport::Tcp, client).await else {
            return;
        };
        let Ok(len) = u16::try_from(answer.len()) else {
            return;
        };
        let mut framed = Vec::with_capacity(answer.len() + 2);
        framed.extend_from_slice(&len.to_be_bytes());
        framed.extend_from_slice(&answer);
        if stream.write_all(&framed).await.is_err() {
            return;
        }
    }
}

/// The largest answer the client takes over `transport`.
fn answer_limit(request: &Message, transport: Transport) -> usize {
    match transport {
        Transport::Tcp => usize::from(u16::MAX),
        Transport::Udp => request
            .edns
            .as_ref()
            .map_or(MIN_UDP_PAYLOAD, |edns| usize::from(edns.max_payload()))
            .max(MIN_UDP_PAYLOAD),
    }
}

/// Encodes `answer`, dropping answer records from the end until it fits `limit`, with the TC
/// bit set on UDP so the client retries over TCP (as Docker does).
fn encode(mut answer: Message, limit: usize, transport: Transport) -> Option<Vec<u8>> {
    loop {
        match answer.to_vec() {
            Ok(bytes) if bytes.len() <= limit || answer.answers.is_empty() => return Some(bytes),
            Ok(_) => {
                answer.answers.pop();
                if transport == Transport::Udp {
                    answer.metadata.truncation = true;
                }
            }
            Err(e) => {
                warn!(error = %e, "embedded DNS: cannot encode an answer");
                return None;
            }
        }
    }
}

fn same_question(a: &Query, b: &Query) -> bool {
    a.query_type() == b.query_type()
        && a.query_class() == b.query_class()
        && a.name()
            .to_ascii()
            .eq_ignore_ascii_case(&b.name().to_ascii())
}

impl Inner {
    fn allowed(&self, client: IpAddr) -> bool {
        match (&self.config.clients, client) {
            (None, _) => true,
            (Some(_), ip) if ip.is_loopback() => true,
            (Some(subnet), IpAddr::V4(ip)) => subnet.contains(ip),
            (Some(subnet), IpAddr::V6(ip)) => ip
                .to_ipv4_mapped()
                .is_some_and(|ip| subnet.contains(ip) || ip.is_loopback()),
        }
    }

    fn reply(&self, request: &Message, code: ResponseCode) -> Message {
        let mut answer = Message::response(request.id, request.op_code);
        answer.metadata.recursion_desired = request.recursion_desired;
        answer.metadata.checking_disabled = request.checking_disabled;
        answer.metadata.recursion_available = !self.config.internal;
        answer.metadata.response_code = code;
        answer.add_queries(request.queries.iter().cloned());
        if request.edns.is_some() {
            let mut edns = Edns::new();
            edns.set_max_payload(EDNS_PAYLOAD);
            edns.set_version(0);
            answer.set_edns(edns);
        }
        answer
    }

    /// The answer to one packet, `None` when it deserves none (undecodable, not a query).
    async fn handle(
        &self,
        packet: &[u8],
        transport: Transport,
        client: SocketAddr,
    ) -> Option<Vec<u8>> {
        let request = match Message::from_vec(packet) {
            Ok(request) => request,
            Err(e) => {
                debug!(%client, error = %e, "embedded DNS: undecodable packet ignored");
                return None;
            }
        };
        if request.message_type != MessageType::Query {
            return None;
        }
        let limit = answer_limit(&request, transport);
        if request.op_code != OpCode::Query {
            return encode(self.reply(&request, ResponseCode::NotImp), limit, transport);
        }
        let [query] = request.queries.as_slice() else {
            return encode(
                self.reply(&request, ResponseCode::FormErr),
                limit,
                transport,
            );
        };
        if let Some(answer) = self.answer_locally(&request, query) {
            return encode(answer, limit, transport);
        }
        let servers: Vec<SocketAddr> = if self.config.internal {
            Vec::new()
        } else {
            self.records
                .dns_servers_of(client.ip())
                .unwrap_or_else(|| self.config.upstreams.clone())
                .into_iter()
                .filter(|server| *server != self.local)
                .collect()
        };
        if servers.is_empty() {
            return encode(
                self.reply(&request, ResponseCode::ServFail),
                limit,
                transport,
            );
        }
        let forwarded = self
            .forward(packet, &request, query, transport, &servers, limit)
            .await;
        forwarded.or_else(|| {
            encode(
                self.reply(&request, ResponseCode::ServFail),
                limit,
                transport,
            )
        })
    }

    /// The answer from the network's table, `None` when the network does not own the name.
    fn answer_locally(&self, request: &Message, query: &Query) -> Option<Message> {
        let name = query.name();
        if query.query_type() == RecordType::PTR {
            if let Some(host) = name
                .parse_arpa_name()
                .ok()
                .filter(|net| net.prefix_len() == net.max_prefix_len())
                .and_then(|net| self.records.reverse(net.addr()))
            {
                match Name::from_ascii(format!("{host}.")) {
                    Ok(target) => {
                        let mut answer = self.reply(request, ResponseCode::NoError);
                        answer.metadata.authoritative = true;
                        answer.add_answer(Record::from_rdata(
                            name.clone(),
                            TTL,
                            RData::PTR(PTR(target)),
                        ));
                        return Some(answer);
                    }
                    Err(e) => debug!(%host, error = %e, "embedded DNS: PTR target not a name"),
                }
            }
        }
        let addresses = self.records.lookup(&name.to_ascii())?;
        let mut answer = self.reply(request, ResponseCode::NoError);
        answer.metadata.authoritative = true;
        if query.query_class() != DNSClass::IN {
            return Some(answer);
        }
        let (want_v4, want_v6) = match query.query_type() {
            RecordType::A => (true, false),
            RecordType::AAAA => (false, true),
            RecordType::ANY => (true, true),
            // a known name with no record of that type: NOERROR, no answer, never forwarded
            _ => (false, false),
        };
        if want_v4 {
            for ip in addresses.ipv4 {
                answer.add_answer(Record::from_rdata(name.clone(), TTL, RData::A(A(ip))));
            }
        }
        if want_v6 {
            for ip in addresses.ipv6 {
                answer.add_answer(Record::from_rdata(name.clone(), TTL, RData::AAAA(AAAA(ip))));
            }
        }
        Some(answer)
    }

    /// Asks `servers` in turn, over the client's transport, and returns the first usable answer
    /// (its id the client's). SERVFAIL, REFUSED and other errors move on to the next server, as
    /// does a non-authoritative NXDOMAIN (kept as the answer if nothing better comes, as
    /// Docker does); a truncated UDP answer goes back as it is so the client retries over TCP.
    async fn forward(
        &self,
        packet: &[u8],
        request: &Message,
        query: &Query,
        transport: Transport,
        servers: &[SocketAddr],
        limit: usize,
    ) -> Option<Vec<u8>> {
        let Ok(_slot) = self.forwards.try_acquire() else {
            warn!(
                network = self.records.network(),
                "embedded DNS: more than {MAX_CONCURRENT_FORWARDS} queries forwarded at once, answering SERVFAIL"
            );
            return None;
        };
        let mut fallback = None;
        for server in servers {
            let exchanged = match transport {
                Transport::Udp => {
                    exchange_udp(*server, packet, query, self.config.upstream_timeout).await
                }
                Transport::Tcp => {
                    exchange_tcp(*server, packet, query, self.config.upstream_timeout).await
                }
            };
            let (mut bytes, answer) = match exchanged {
                Ok(exchanged) => exchanged,
                Err(e) => {
                    debug!(%server, name = %query.name(), error = %e, "embedded DNS: upstream failed");
                    continue;
                }
            };
            bytes[..2].copy_from_slice(&request.id.to_be_bytes());
            if bytes.len() > limit {
                // the upstream ignored the client's size: tell the client to retry over TCP
                let mut truncated = answer.truncate();
                truncated.metadata.id = request.id;
                return encode(truncated, limit, transport);
            }
            match answer.response_code {
                ResponseCode::NoError => return Some(bytes),
                _ if answer.truncation => return Some(bytes),
                ResponseCode::NXDomain if answer.authoritative => return Some(bytes),
                ResponseCode::NXDomain => fallback = Some(bytes),
                code => {
                    debug!(%server, name = %query.name(), %code, "embedded DNS: upstream answered an error");
                }
            }
        }
        fallback
    }
}

/// A fresh query id for an upstream, written over the client's.
fn with_fresh_id(packet: &[u8]) -> (u16, Vec<u8>) {
    let id: u16 = rand::random();
    let mut out = packet.to_vec();
    out[..2].copy_from_slice(&id.to_be_bytes());
    (id, out)
}

/// The upstream's answer if it is one to `query` under `id`.
fn matching_answer(bytes: &[u8], id: u16, query: &Query) -> Option<Message> {
    let answer = Message::from_vec(bytes).ok()?;
    let matches = answer.id == id
        && answer.message_type == MessageType::Response
        && answer
            .queries
            .first()
            .is_some_and(|asked| same_question(asked, query));
    matches.then_some(answer)
}

fn timed_out(server: SocketAddr) -> io::Error {
    io::Error::new(
        io::ErrorKind::TimedOut,
        format!("no answer from {server} in time"),
    )
}

async fn exchange_udp(
    server: SocketAddr,
    packet: &[u8],
    query: &Query,
    timeout: Duration,
) -> io::Result<(Vec<u8>, Message)> {
    let local: SocketAddr = match server {
        SocketAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
        SocketAddr::V6(_) => (Ipv6Addr::UNSPECIFIED, 0).into(),
    };
    let socket = UdpSocket::bind(local).await?;
    socket.connect(server).await?;
    let (id, out) = with_fresh_id(packet);
    socket.send(&out).await?;
    let mut buffer = vec![0u8; 65_535];
    tokio::time::timeout(timeout, async {
        loop {
            let len = socket.recv(&mut buffer).await?;
            if let Some(answer) = matching_answer(&buffer[..len], id, query) {
                return Ok((buffer[..len].to_vec(), answer));
            }
        }
    })
    .await
    .map_err(|_| timed_out(server))?
}

async fn exchange_tcp(
    server: SocketAddr,
    packet: &[u8],
    query: &Query,
    timeout: Duration,
) -> io::Result<(Vec<u8>, Message)> {
    tokio::time::timeout(timeout, async {
        let mut stream = TcpStream::connect(server).await?;
        let (id, out) = with_fresh_id(packet);
        let len = u16::try_from(out.len())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "query too long"))?;
        let mut framed = len.to_be_bytes().to_vec();
        framed.extend_from_slice(&out);
        stream.write_all(&framed).await?;
        loop {
            let len = stream.read_u16().await?;
            let mut bytes = vec![0u8; usize::from(len)];
            stream.read_exact(&mut bytes).await?;
            if let Some(answer) = matching_answer(&bytes, id, query) {
                return Ok((bytes, answer));
            }
        }
    })
    .await
    .map_err(|_| timed_out(server))?
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inner(clients: Option<Ipv4Subnet>) -> Inner {
        Inner {
            records: Arc::new(DnsRecords::new("n")),
            config: ResolverConfig {
                clients,
                ..ResolverConfig::default()
            },
            local: "127.0.0.1:53".parse().expect("addr"),
            forwards: Semaphore::new(1),
        }
    }

    #[test]
    fn only_the_network_and_loopback_are_answered() {
        let open = inner(None);
        let closed = inner(Some("10.213.0.0/16".parse().expect("subnet")));
        for (client, allowed) in [
            ("10.213.0.2", true),
            ("10.213.255.254", true),
            ("127.0.0.1", true),
            ("::1", true),
            ("::ffff:10.213.0.9", true),
            ("10.214.0.2", false),
            ("192.0.2.1", false),
            ("::ffff:10.214.0.2", false),
            ("2001:db8::1", false),
        ] {
            let ip: IpAddr = client.parse().expect("ip");
            assert_eq!(closed.allowed(ip), allowed, "{client}");
            assert!(open.allowed(ip), "{client}");
        }
    }

    #[test]
    fn udp_answers_respect_the_client_size() {
        let mut request = Message::query();
        assert_eq!(answer_limit(&request, Transport::Udp), 512);
        assert_eq!(answer_limit(&request, Transport::Tcp), 65_535);
        let mut edns = Edns::new();
        edns.set_max_payload(100);
        request.set_edns(edns.clone());
        assert_eq!(answer_limit(&request, Transport::Udp), 512);
        edns.set_max_payload(4096);
        request.set_edns(edns);
        assert_eq!(answer_limit(&request, Transport::Udp), 4096);
    }
}
