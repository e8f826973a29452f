//! The event bus: Docker's events (container create/start/die/..., image pull/tag/...)
//! broadcast to `GET /events` subscribers, with a bounded ring of recent events for `since`.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex;

use berth_api::events::{Actor, Event};
use tokio::sync::broadcast;

/// How many past events `since` can replay (Docker keeps 256; more costs little).
pub const RECENT_EVENTS: usize = 1024;

/// Publishes events and hands out subscriptions.
pub struct EventBus {
    tx: broadcast::Sender<Event>,
    /// Recent events, oldest first, and the last timestamp handed out.
    recent: Mutex<(VecDeque<Event>, i64)>,
}

impl Default for EventBus {
    fn default() -> Self {
        EventBus {
            tx: broadcast::channel(RECENT_EVENTS).0,
            recent: Mutex::new((VecDeque::with_capacity(RECENT_EVENTS), 0)),
        }
    }
}

fn unix_nanos() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}

impl EventBus {
    /// Records and broadcasts an event of `kind` (`container`, `image`) about `id`.
    pub fn publish(
        &self,
        kind: &str,
        action: &str,
        id: &str,
        attributes: BTreeMap<String, String>,
    ) {
        let mut recent = self.recent.lock().unwrap_or_else(|p| p.into_inner());
        // strictly increasing times, so `since`/`until` and replay order are exact
        let nanos = unix_nanos().max(recent.1 + 1);
        recent.1 = nanos;
        let legacy = kind == "container" || kind == "image";
        let event = Event {
            status: if legacy {
                action.to_owned()
            } else {
                String::new()
            },
            id: if legacy { id.to_owned() } else { String::new() },
            from: if kind == "container" {
                attributes.get("image").cloned().unwrap_or_default()
            } else {
                String::new()
            },
            kind: kind.to_owned(),
            action: action.to_owned(),
            actor: Actor {
                id: id.to_owned(),
                attributes,
            },
            scope: "local".to_owned(),
            time: nanos.div_euclid(1_000_000_000),
            time_nano: nanos,
        };
        tracing::debug!(kind, action, id, "event");
        if recent.0.len() == RECENT_EVENTS {
            recent.0.pop_front();
        }
        recent.0.push_back(event.clone());
        // sent under the lock: a subscriber sees each event either in its snapshot or live
        let _ = self.tx.send(event);
    }

    /// The recent events and a receiver of every later one, with nothing lost in between.
    pub fn subscribe(&self) -> (Vec<Event>, broadcast::Receiver<Event>) {
        let recent = self.recent.lock().unwrap_or_else(|p| p.into_inner());
        (recent.0.iter().cloned().collect(), self.tx.subscribe())
    }
}

/// Docker's event filters (`type`, `event`/`action`, `container`, `image`, `label`, `scope`):
/// values of one key are alternatives, different keys must all match.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventFilter {
    /// Object types.
    pub types: Vec<String>,
    /// Actions.
    pub actions: Vec<String>,
    /// Container IDs (or prefixes) or names.
    pub containers: Vec<String>,
    /// Image references or IDs.
    pub images: Vec<String>,
    /// `key` or `key=value`.
    pub labels: Vec<String>,
    /// `local` or `swarm`.
    pub scopes: Vec<String>,
}

impl EventFilter {
    /// Builds a filter from Docker's `filters` map, refusing keys it does not know.
    pub fn from_map(
        map: &BTreeMap<String, Vec<String>>,
    ) -> Result<EventFilter, crate::EngineError> {
        let mut f = EventFilter::default();
        for (key, values) in map {
            let list = match key.as_str() {
                "type" => &mut f.types,
                "event" | "action" => &mut f.actions,
                "container" => &mut f.containers,
                "image" => &mut f.images,
                "label" => &mut f.labels,
                "scope" => &mut f.scopes,
                // objects berth has no events of yet: nothing of theirs can match
                "network" | "volume" | "daemon" | "plugin" | "node" | "service" | "secret"
                | "config" => {
                    f.types.push(format!("\0{key}"));
                    continue;
                }
                other => {
                    return Err(crate::EngineError::Invalid(format!(
                        "invalid filter '{other}': events filter on type, event, container, image, label or scope"
                    )))
                }
            };
            list.extend(values.iter().cloned());
        }
        for t in &f.types {
            match t.as_str() {
                "container" | "image" | "volume" | "network" | "daemon" | "plugin" | "node"
                | "service" | "secret" | "config" | "builder" => {}
                t if t.starts_with('\0') => {}
                other => {
                    return Err(crate::EngineError::Invalid(format!(
                        "invalid filter 'type={other}': use container, image, volume, network, daemon, plugin, node, service, secret or config"
                    )))
                }
            }
        }
        Ok(f)
    }

    /// Whether `e` passes.
    pub fn matches(&self, e: &Event) -> bool {
        let attr = |k: &str| e.actor.attributes.get(k).map(String::as_str);
        let any = |list: &Vec<String>, f: &dyn Fn(&str) -> bool| {
            list.is_empty() || list.iter().any(|v| f(v))
        };
        any(&self.types, &|t| t == e.kind)
            && any(&self.actions, &|a| {
                a == e.action || e.action.split_once(':').is_some_and(|(head, _)| head == a)
            })
            && any(&self.scopes, &|s| s == e.scope)
            && any(&self.containers, &|c| {
                e.kind == "container"
                    && (c == e.actor.id
                        || (c.len() >= 3 && e.actor.id.starts_with(c))
                        || attr("name") == Some(c.trim_start_matches('/')))
            })
            && any(&self.images, &|i| {
                let candidates = [Some(e.actor.id.as_str()), attr("image"), attr("name")];
                let target = if e.kind == "container" {
                    &candidates[1..2]
                } else {
                    &candidates[..]
                };
                target.iter().flatten().any(|have| same_image(have, i))
            })
            && any(&self.labels, &|l| match l.split_once('=') {
                Some((k, v)) => attr(k) == Some(v),
                None => attr(l).is_some(),
            })
    }
}

/// `busybox` names `busybox:latest`; an ID matches with or without `sha256:`.
fn same_image(have: &str, want: &str) -> bool {
    let norm = |s: &str| -> String {
        let s = s.strip_prefix("docker.io/").unwrap_or(s);
        let s = s.strip_prefix("library/").unwrap_or(s);
        let last = s.rsplit('/').next().unwrap_or(s);
        if s.starts_with("sha256:") || last.contains(':') || s.contains('@') {
            s.to_owned()
        } else {
            format!("{s}:latest")
        }
    };
    have == want
        || norm(have) == norm(want)
        || have.strip_prefix("sha256:") == Some(want)
        || (want.len() >= 12
            && have
                .strip_prefix("sha256:")
                .is_some_and(|h| h.starts_with(want)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attrs(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn bus_replays_recent_then_streams_in_order() {
        let bus = EventBus::default();
        bus.publish(
            "container",
            "create",
            "c1",
            attrs(&[("name", "web"), ("image", "bb")]),
        );
        let (past, mut rx) = bus.subscribe();
        bus.publish("container", "start", "c1", attrs(&[("name", "web")]));
        assert_eq!(past.len(), 1);
        assert_eq!(past[0].from, "bb");
        assert_eq!(past[0].status, "create");
        let live = rx.try_recv().expect("live event");
        assert_eq!(live.action, "start");
        assert!(live.time_nano > past[0].time_nano, "strictly increasing");
        for i in 0..RECENT_EVENTS + 5 {
            bus.publish("image", "tag", &format!("sha256:{i}"), BTreeMap::new());
        }
        let (past, _) = bus.subscribe();
        assert_eq!(past.len(), RECENT_EVENTS, "bounded");
        assert_eq!(
            past.last().map(|e| e.actor.id.as_str()),
            Some("sha256:1028")
        );
    }

    #[test]
    fn filters_like_docker() {
        let bus = EventBus::default();
        bus.publish(
            "container",
            "die",
            "0123456789abcdef",
            attrs(&[
                ("name", "web"),
                ("image", "busybox"),
                ("exitCode", "3"),
                ("tier", "front"),
            ]),
        );
        bus.publish(
            "image",
            "pull",
            "busybox:latest",
            attrs(&[("name", "busybox")]),
        );
        let (events, _) = bus.subscribe();
        let f = |pairs: &[(&str, &[&str])]| {
            let map: BTreeMap<String, Vec<String>> = pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.iter().map(|s| s.to_string()).collect()))
                .collect();
            let filter = EventFilter::from_map(&map).expect("valid filter");
            events
                .iter()
                .filter(|e| filter.matches(e))
                .map(|e| e.action.as_str())
                .collect::<Vec<_>>()
        };
        assert_eq!(f(&[]), ["die", "pull"]);
        assert_eq!(f(&[("type", &["image"])]), ["pull"]);
        assert_eq!(f(&[("event", &["die", "start"])]), ["die"]);
        assert_eq!(f(&[("container", &["web"])]), ["die"]);
        assert_eq!(f(&[("container", &["0123"])]), ["die"]);
        assert_eq!(f(&[("container", &["other"])]), Vec::<&str>::new());
        assert_eq!(f(&[("image", &["busybox:latest"])]), ["die", "pull"]);
        assert_eq!(f(&[("label", &["tier=front"])]), ["die"]);
        assert_eq!(
            f(&[("label", &["tier"]), ("type", &["image"])]),
            Vec::<&str>::new()
        );
        assert_eq!(f(&[("type", &["volume"])]), Vec::<&str>::new());
        let bad: BTreeMap<String, Vec<String>> =
            BTreeMap::from([("colour".to_string(), vec!["red".to_string()])]);
        assert!(EventFilter::from_map(&bad).is_err());
        let bad: BTreeMap<String, Vec<String>> =
            BTreeMap::from([("type".to_string(), vec!["cat".to_string()])]);
        assert!(EventFilter::from_map(&bad).is_err());
    }
}
