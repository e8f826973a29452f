//! `GET /events`: Docker's event message (`EventMessage`) with its legacy fields.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// One event.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Legacy: the action, for container and image events.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub status: String,
    /// Legacy: the actor's ID, for container and image events.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub id: String,
    /// Legacy: the container's image, for container events.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub from: String,
    /// `container`, `image`, ...
    #[serde(rename = "Type", default)]
    pub kind: String,
    /// `create`, `start`, `die`, `pull`, ...
    #[serde(rename = "Action", default)]
    pub action: String,
    /// What the event is about.
    #[serde(rename = "Actor", default)]
    pub actor: Actor,
    /// `local`.
    #[serde(default)]
    pub scope: String,
    /// Unix seconds.
    #[serde(default)]
    pub time: i64,
    /// Unix nanoseconds.
    #[serde(rename = "timeNano", default)]
    pub time_nano: i64,
}

/// The object of an event.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Actor {
    /// Container ID, image ID or reference.
    #[serde(rename = "ID", default)]
    pub id: String,
    /// `name`, `image`, `exitCode`, `signal`, labels, ...
    #[serde(rename = "Attributes", default)]
    pub attributes: BTreeMap<String, String>,
}

impl Event {
    /// The docker CLI's line: `TIME TYPE ACTION ID (k=v, k=v)` with the time in RFC 3339
    /// with nanoseconds, in UTC.
    pub fn line(&self) -> String {
        let secs = self.time_nano.div_euclid(1_000_000_000);
        let nanos = self.time_nano.rem_euclid(1_000_000_000);
        let mut out = format!(
            "{}.{nanos:09}Z {} {} {}",
            rfc3339_seconds(secs),
            self.kind,
            self.action,
            self.actor.id
        );
        if !self.actor.attributes.is_empty() {
            let attrs: Vec<String> = self
                .actor
                .attributes
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            out.push_str(&format!(" ({})", attrs.join(", ")));
        }
        out
    }
}

/// `YYYY-MM-DDTHH:MM:SS` of a Unix time in UTC.
pub fn rfc3339_seconds(unix: i64) -> String {
    let days = unix.div_euclid(86_400);
    let rem = unix.rem_euclid(86_400);
    // civil-from-days (Howard Hinnant)
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_line_and_json_names() {
        let e = Event {
            status: "start".into(),
            id: "abc".into(),
            from: "busybox".into(),
            kind: "container".into(),
            action: "start".into(),
            actor: Actor {
                id: "abc".into(),
                attributes: BTreeMap::from([
                    ("name".into(), "web".into()),
                    ("image".into(), "busybox".into()),
                ]),
            },
            scope: "local".into(),
            time: 1_795_428_000,
            time_nano: 1_795_428_000_000_001_234,
        };
        assert_eq!(
            e.line(),
            "2026-11-23T10:00:00.000001234Z container start abc (image=busybox, name=web)"
        );
        let v = serde_json::to_value(&e).expect("serializes");
        for k in [
            "status", "id", "from", "Type", "Action", "Actor", "scope", "time", "timeNano",
        ] {
            assert!(v.get(k).is_some(), "{k} in {v}");
        }
        assert_eq!(v["Actor"]["Attributes"]["name"], "web");
        assert_eq!(rfc3339_seconds(0), "1970-01-01T00:00:00");
        assert_eq!(rfc3339_seconds(951_782_400), "2000-02-29T00:00:00");
    }
}
