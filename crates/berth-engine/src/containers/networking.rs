//! Containers and networks: joining a starting container to its networks, `network
//! connect`/`disconnect`, and the network operations that need the containers (create,
//! remove, list, inspect, prune), with their events.

use std::collections::BTreeMap;
use std::path::Path;

use berth_api::containers::{CreateRequest, EndpointSettings};
use berth_api::networks::NetworkCreateRequest;

use super::exposed_ports;
use super::store::{Container, State};
use crate::network::{self, Endpoint, Net, NetworkMode, NetworkRecord, DEFAULT_NETWORK};
use crate::{Engine, EngineError};

/// A network as `network ls` and `network inspect` show it.
#[derive(Debug, Clone)]
pub struct NetworkView {
    /// Its id.
    pub id: String,
    /// Its name.
    pub name: String,
    /// `bridge`, `host` or `null`.
    pub driver: String,
    /// The record of a bridge network (the default one's is made from the daemon settings);
    /// `None` for `host` and `none`.
    pub record: Option<NetworkRecord>,
    /// Pre-defined (`bridge`, `host`, `none`) rather than made with `network create`.
    pub builtin: bool,
    /// Its running containers.
    pub containers: Vec<Attached>,
}

/// A running container on a network.
#[derive(Debug, Clone)]
pub struct Attached {
    /// Container id.
    pub id: String,
    /// Its name.
    pub name: String,
    /// Its endpoint (`None` on `host` and `none`).
    pub endpoint: Option<Endpoint>,
}

fn net_event_attributes(name: &str, container: Option<&str>) -> BTreeMap<String, String> {
    let mut a = BTreeMap::new();
    a.insert("name".to_string(), name.to_string());
    a.insert("type".to_string(), "bridge".to_string());
    if let Some(c) = container {
        a.insert("container".to_string(), c.to_string());
    }
    a
}

/// The name under which a container's config lists `net` (`bridge` for the default one).
fn key_of(net: &Net) -> String {
    net.record.name.clone()
}

impl Engine {
    /// Joins a created container (init `pid`, stopped before its execve) to its networks and
    /// writes its /etc/hosts (and /etc/resolv.conf on a user-defined network). On error the
    /// caller disconnects it.
    pub(super) async fn join_networks(
        &self,
        c: &Container,
        pid: i32,
        dir: &Path,
    ) -> Result<(), EngineError> {
        let image_config = self.container_image_config(c);
        let endpoints = self
            .networks()
            .connect(
                &c.id,
                &c.name,
                pid,
                dir,
                &c.config,
                &exposed_ports(&c.config, &image_config),
            )
            .await?;
        let hostname = std::fs::read_to_string(dir.join("hostname")).unwrap_or_default();
        let hosts = network::hosts_file(
            hostname.trim(),
            endpoints.first().map(|e| e.ip),
            &c.config.host_config.extra_hosts,
        );
        let write = |file: &str, text: String| {
            std::fs::write(dir.join(file), text).map_err(|e| {
                EngineError::Internal(format!("writing {}: {e}", dir.join(file).display()))
            })
        };
        write("hosts", hosts)?;
        if let Some(primary) = endpoints.first() {
            if let Some(text) = self.networks().resolv_conf_for(&c.config, primary) {
                write("resolv.conf", text)?;
            }
        }
        Ok(())
    }

    /// `network create`.
    pub async fn create_network(
        &self,
        req: &NetworkCreateRequest,
    ) -> Result<NetworkRecord, EngineError> {
        let record = self.networks().create(req).await?;
        self.events().publish(
            "network",
            "create",
            &record.id,
            net_event_attributes(&record.name, None),
        );
        Ok(record)
    }

    /// `network rm`.
    pub async fn remove_network(&self, key: &str) -> Result<NetworkRecord, EngineError> {
        let record = self.networks().remove(key).await?;
        self.events().publish(
            "network",
            "destroy",
            &record.id,
            net_event_attributes(&record.name, None),
        );
        Ok(record)
    }

    /// Every network: `bridge` (when enabled), `host`, `none`, then the user-defined ones.
    pub fn network_views(&self) -> Result<Vec<NetworkView>, EngineError> {
        let running: Vec<Container> = self
            .containers
            .list()?
            .into_iter()
            .filter(|c| matches!(c.state, State::Running | State::Paused))
            .collect();
        let endpoints: Vec<(Container, Vec<Endpoint>)> = running
            .into_iter()
            .map(|c| {
                let e = network::read_endpoints(&self.container_dir(&c.id));
                (c, e)
            })
            .collect();
        let mut out = Vec::new();
        let nets = self.networks().all();
        let bridge_views = nets.iter().map(|net| NetworkView {
            id: net.record.id.clone(),
            name: net.record.name.clone(),
            driver: "bridge".into(),
            record: Some(net.record.clone()),
            builtin: net.is_default(),
            containers: endpoints
                .iter()
                .filter_map(|(c, list)| {
                    list.iter()
                        .find(|e| {
                            e.network_id == net.record.id
                                || (net.is_default()
                                    && e.network_id.is_empty()
                                    && e.network == DEFAULT_NETWORK)
                        })
                        .map(|e| Attached {
                            id: c.id.clone(),
                            name: c.name.clone(),
                            endpoint: Some(e.clone()),
                        })
                })
                .collect(),
        });
        let mut bridge_views: Vec<NetworkView> = bridge_views.collect();
        if bridge_views.first().is_some_and(|v| v.builtin) {
            out.push(bridge_views.remove(0));
        }
        for (name, driver) in [("host", "host"), ("none", "null")] {
            out.push(NetworkView {
                id: network::predefined_id(name),
                name: name.into(),
                driver: driver.into(),
                record: None,
                builtin: true,
                containers: endpoints
                    .iter()
                    .filter(|(c, _)| c.config.host_config.network_mode == name)
                    .map(|(c, _)| Attached {
                        id: c.id.clone(),
                        name: c.name.clone(),
                        endpoint: None,
                    })
                    .collect(),
            });
        }
        out.extend(bridge_views);
        Ok(out)
    }

    /// One network by name, id or id prefix.
    pub fn network_view(&self, key: &str) -> Result<NetworkView, EngineError> {
        let views = self.network_views()?;
        if let Some(v) = views.iter().find(|v| v.id == key || v.name == key) {
            return Ok(v.clone());
        }
        let by_prefix: Vec<&NetworkView> = views
            .iter()
            .filter(|v| !key.is_empty() && v.id.starts_with(key))
            .collect();
        match by_prefix.as_slice() {
            [one] => Ok((*one).clone()),
            [] => Err(EngineError::NotFound(format!("network {key} not found"))),
            _ => Err(EngineError::NotFound(format!(
                "network {key} is ambiguous: give more of the id or the name"
            ))),
        }
    }

    /// `network prune`: removes the user-defined networks no running container is on, that
    /// `keep` does not exclude; returns their names.
    pub async fn prune_networks(
        &self,
        keep: impl Fn(&NetworkRecord) -> bool,
    ) -> Result<Vec<String>, EngineError> {
        let mut removed = Vec::new();
        for net in self.networks().all() {
            if net.is_default() || keep(&net.record) || !net.members().is_empty() {
                continue;
            }
            match self.remove_network(&net.record.id).await {
                Ok(r) => removed.push(r.name),
                // a container joined it meanwhile
                Err(EngineError::Forbidden(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(removed)
    }

    /// `network connect NET CONTAINER`: records the network in the container's config and,
    /// when it runs, joins it now.
    pub async fn network_connect(
        &self,
        key: &str,
        container: &str,
        settings: Option<EndpointSettings>,
    ) -> Result<(), EngineError> {
        if matches!(key, "host" | "none") {
            return Err(EngineError::Forbidden(format!(
                "a container cannot be connected to the {key} network: give the network mode at create (--network {key})"
            )));
        }
        let net = self.networks().find(key)?;
        let c = self
            .containers
            .find(container)
            .map_err(|_| EngineError::NotFound(format!("No such container: {container}")))?;
        let mode = NetworkMode::parse(&c.config.host_config.network_mode);
        if !matches!(mode, NetworkMode::Bridge | NetworkMode::Named(_)) {
            return Err(EngineError::Forbidden(format!(
                "container {} cannot join network {}: its network mode is {:?} (it shares another network stack or has none); create it with --network {}",
                c.name, net.record.name, c.config.host_config.network_mode, net.record.name
            )));
        }
        let settings = settings.unwrap_or_default();
        let mut config: CreateRequest = c.config.clone();
        let networks = self.networks().plan(&config)?;
        if networks.iter().any(|(n, _)| n.record.id == net.record.id) {
            return Err(EngineError::Forbidden(format!(
                "endpoint with name {} already exists in network {}",
                c.name, net.record.name
            )));
        }
        config
            .networking_config
            .get_or_insert_with(Default::default)
            .endpoints_config
            .insert(key_of(&net), settings.clone());
        // checks the address against the network (and the other networks still exist)
        let _ = self.networks().plan(&config)?;
        if matches!(c.state, State::Running | State::Paused) && c.pid > 0 {
            let dir = self.container_dir(&c.id);
            self.networks()
                .connect_running(
                    &network::Running {
                        id: &c.id,
                        name: &c.name,
                        pid: c.pid as i32,
                        dir: &dir,
                    },
                    &net,
                    &settings,
                    &config,
                )
                .await?;
        }
        self.containers.update_config(&c.id, &config)?;
        self.events().publish(
            "network",
            "connect",
            &net.record.id,
            net_event_attributes(&net.record.name, Some(&c.id)),
        );
        Ok(())
    }

    /// `network disconnect NET CONTAINER`.
    pub async fn network_disconnect(&self, key: &str, container: &str) -> Result<(), EngineError> {
        let net = self.networks().find(key)?;
        let c = self
            .containers
            .find(container)
            .map_err(|_| EngineError::NotFound(format!("No such container: {container}")))?;
        let networks = self.networks().plan(&c.config).unwrap_or_default();
        let configured = networks.iter().any(|(n, _)| n.record.id == net.record.id);
        let mut live = false;
        if matches!(c.state, State::Running | State::Paused) {
            let dir = self.container_dir(&c.id);
            live = self.networks().disconnect_running(&c.id, &dir, &net).await;
        }
        if !configured && !live {
            return Err(EngineError::Forbidden(format!(
                "container {} is not connected to network {}",
                c.name, net.record.name
            )));
        }
        // its mode stays (as in Docker); it joins its remaining networks at its next start
        let mut config = c.config.clone();
        config
            .networking_config
            .get_or_insert_with(Default::default)
            .endpoints_config
            .remove(&key_of(&net));
        self.containers.update_config(&c.id, &config)?;
        self.events().publish(
            "network",
            "disconnect",
            &net.record.id,
            net_event_attributes(&net.record.name, Some(&c.id)),
        );
        Ok(())
    }
}
