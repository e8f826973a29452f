//! Wire types of the `/networks` endpoints (Docker Engine API). Network objects themselves
//! are written by the daemon as JSON values in Docker's shape.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::containers::{null_as_default, EndpointSettings};

/// One entry of `IPAM.Config`.
#[derive(Debug, Clone, Serialize, Deserialize, Default, PartialEq, Eq)]
#[serde(rename_all = "PascalCase")]
pub struct IpamConfig {
    /// `--subnet`.
    #[serde(default, deserialize_with = "null_as_default")]
    pub subnet: String,
    /// `--ip-range`.
    #[serde(
        rename = "IPRange",
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub ip_range: String,
    /// `--gateway`.
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub gateway: String,
    /// `--aux-address`.
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub auxiliary_addresses: BTreeMap<String, String>,
}

/// `IPAM` of a create request.
#[derive(Debug, Clone, Serialize, Deserialize, Default, PartialEq, Eq)]
#[serde(rename_all = "PascalCase")]
pub struct IpamRequest {
    /// `--ipam-driver` (`default`).
    #[serde(default, deserialize_with = "null_as_default")]
    pub driver: String,
    /// Subnets.
    #[serde(default, deserialize_with = "null_as_default")]
    pub config: Vec<IpamConfig>,
    /// `--ipam-opt`.
    #[serde(default, deserialize_with = "null_as_default")]
    pub options: BTreeMap<String, String>,
}

/// `POST /networks/create` body.
#[derive(Debug, Clone, Serialize, Deserialize, Default, PartialEq, Eq)]
#[serde(rename_all = "PascalCase")]
pub struct NetworkCreateRequest {
    /// The name.
    pub name: String,
    /// `--driver` (`bridge`).
    #[serde(default, deserialize_with = "null_as_default")]
    pub driver: String,
    /// `--scope`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// `--internal`.
    #[serde(default, deserialize_with = "null_as_default")]
    pub internal: bool,
    /// `--attachable`.
    #[serde(default, deserialize_with = "null_as_default")]
    pub attachable: bool,
    /// `--ingress`.
    #[serde(default, deserialize_with = "null_as_default")]
    pub ingress: bool,
    /// `--config-only`.
    #[serde(default, deserialize_with = "null_as_default")]
    pub config_only: bool,
    /// `--ipam-*`, `--subnet`, `--gateway`.
    #[serde(rename = "IPAM", default, skip_serializing_if = "Option::is_none")]
    pub ipam: Option<IpamRequest>,
    /// `--ipv4`.
    #[serde(
        rename = "EnableIPv4",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub enable_ipv4: Option<bool>,
    /// `--ipv6`.
    #[serde(
        rename = "EnableIPv6",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub enable_ipv6: Option<bool>,
    /// `-o/--opt`.
    #[serde(default, deserialize_with = "null_as_default")]
    pub options: BTreeMap<String, String>,
    /// `--label`.
    #[serde(default, deserialize_with = "null_as_default")]
    pub labels: BTreeMap<String, String>,
}

/// `POST /networks/create` answer.
#[derive(Debug, Clone, Serialize, Deserialize, Default, PartialEq, Eq)]
#[serde(rename_all = "PascalCase")]
pub struct NetworkCreateResponse {
    /// The new network's id.
    pub id: String,
    /// Warnings (none so far).
    #[serde(default)]
    pub warning: String,
}

/// `POST /networks/{id}/connect` body.
#[derive(Debug, Clone, Serialize, Deserialize, Default, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct NetworkConnectRequest {
    /// Container id or name.
    pub container: String,
    /// `--alias`, `--ip`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint_config: Option<EndpointSettings>,
}

/// `POST /networks/{id}/disconnect` body.
#[derive(Debug, Clone, Serialize, Deserialize, Default, PartialEq, Eq)]
#[serde(rename_all = "PascalCase")]
pub struct NetworkDisconnectRequest {
    /// Container id or name.
    pub container: String,
    /// `-f`.
    #[serde(default, deserialize_with = "null_as_default")]
    pub force: bool,
}

/// `POST /networks/prune` answer.
#[derive(Debug, Clone, Serialize, Deserialize, Default, PartialEq, Eq)]
#[serde(rename_all = "PascalCase")]
pub struct NetworkPruneResponse {
    /// Names of the removed networks.
    #[serde(default, deserialize_with = "null_as_default")]
    pub networks_deleted: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_cli_create_body_parses() {
        let body = r#"{"Name":"n1","CheckDuplicate":true,"Driver":"bridge","Scope":"","EnableIPv6":false,
            "IPAM":{"Driver":"default","Options":{},"Config":[{"Subnet":"10.99.0.0/24","Gateway":"10.99.0.1"}]},
            "Internal":true,"Attachable":false,"Ingress":false,"ConfigOnly":false,"ConfigFrom":null,
            "Options":{},"Labels":{"a":"b"}}"#;
        let r: NetworkCreateRequest = serde_json::from_str(body).expect("parse");
        assert_eq!(r.name, "n1");
        assert!(r.internal);
        let ipam = r.ipam.expect("ipam");
        assert_eq!(ipam.config[0].subnet, "10.99.0.0/24");
        assert_eq!(ipam.config[0].gateway, "10.99.0.1");
        assert_eq!(r.labels["a"], "b");
        let docker_py = r#"{"Name":"n2","Driver":null,"Options":null,"IPAM":null,"Labels":null}"#;
        let r: NetworkCreateRequest = serde_json::from_str(docker_py).expect("parse");
        assert!(r.ipam.is_none() && r.labels.is_empty());
        let connect = r#"{"Container":"c","EndpointConfig":{"Aliases":["x"],"IPAMConfig":{"IPv4Address":"10.99.0.9"}}}"#;
        let c: NetworkConnectRequest = serde_json::from_str(connect).expect("parse");
        assert_eq!(c.endpoint_config.expect("config").aliases, vec!["x"]);
    }
}
