//! Image operations with Docker's semantics.

use std::collections::HashMap;

use berth_image::manifest::ImageConfig;
use berth_image::pull::{Progress, PullOutcome, PullRequest};
use berth_image::reference::familiar_string;
use berth_image::registry::Credentials;
use berth_image::store::ImageRecord;
use berth_image::{Digest, ImageError, Platform, Reference};
use tokio::sync::mpsc::UnboundedSender;

use crate::{Engine, EngineError};

/// One step of an image removal, as Docker reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Removed {
    /// A name went away (familiar form).
    Untagged(String),
    /// An image or layer went away.
    Deleted(String),
}

/// What `prune` did.
#[derive(Debug, Clone, Default)]
pub struct PruneOutcome {
    /// Steps.
    pub removed: Vec<Removed>,
    /// Bytes freed.
    pub space_reclaimed: u64,
}

/// Disk use of one image.
#[derive(Debug, Clone)]
pub struct ImageUsage {
    /// The image.
    pub image: ImageRecord,
    /// Bytes of layers it shares with other images.
    pub shared_size: u64,
}

impl Engine {
    /// Pulls `reference` (tag or digest); progress goes to `tx`.
    pub async fn pull(
        &self,
        reference: &str,
        platform: Option<&str>,
        credentials: Option<Credentials>,
        tx: &UnboundedSender<Progress>,
    ) -> Result<PullOutcome, EngineError> {
        let reference = Reference::parse_normalized(reference).map_err(ImageError::from)?;
        let platform = platform
            .filter(|p| !p.is_empty())
            .map(str::parse::<Platform>)
            .transpose()
            .map_err(ImageError::from)?;
        let shown = familiar_string(&match &reference.digest {
            Some(d) => format!("{}@{d}", reference.repository()),
            None => reference.tagged().unwrap_or_else(|| reference.repository()),
        });
        let name = reference.familiar_repository();
        let req = PullRequest {
            reference,
            platform,
            credentials,
        };
        let outcome = self.puller.pull(&req, tx).await?;
        self.image_event("pull", &shown, &name);
        Ok(outcome)
    }

    /// Publishes an image event (`Actor.ID` and its `name` attribute as Docker sets them).
    fn image_event(&self, action: &str, id: &str, name: &str) {
        let attributes = std::collections::BTreeMap::from([("name".to_owned(), name.to_owned())]);
        self.events().publish("image", action, id, attributes);
    }

    /// Tags of a remote repository (for `pull --all-tags`).
    pub async fn remote_tags(
        &self,
        repository: &str,
        credentials: Option<Credentials>,
    ) -> Result<Vec<String>, EngineError> {
        let reference = Reference::parse_normalized(repository).map_err(ImageError::from)?;
        Ok(self
            .puller
            .client()
            .list_tags(&reference, credentials.as_ref())
            .await?)
    }

    /// Checks credentials against a registry (`POST /auth`).
    pub async fn login(&self, server: &str, credentials: Credentials) -> Result<(), EngineError> {
        let domain = normalize_server(server);
        Ok(self
            .puller
            .client()
            .check_login(&domain, &credentials)
            .await?)
    }

    /// All images, newest first.
    pub fn images(&self) -> Result<Vec<ImageRecord>, EngineError> {
        Ok(self.store.list_images()?)
    }

    /// One image by name, digest or ID prefix.
    pub fn image(&self, name: &str) -> Result<ImageRecord, EngineError> {
        Ok(self.store.resolve(name)?)
    }

    /// The config of an image.
    pub fn image_config(&self, image: &ImageRecord) -> Result<ImageConfig, EngineError> {
        let data = self.store.read_blob(&image.id)?;
        serde_json::from_slice(&data).map_err(|source| {
            EngineError::Image(ImageError::Config {
                digest: image.id.clone(),
                source,
            })
        })
    }

    /// `tag SOURCE TARGET`.
    pub fn tag(&self, source: &str, target: &str) -> Result<(), EngineError> {
        let img = self.store.resolve(source)?;
        let r = Reference::parse_normalized(target).map_err(ImageError::from)?;
        if r.digest.is_some() {
            return Err(EngineError::Invalid(format!(
                "refusing to create a tag with a digest reference: {target}"
            )));
        }
        let tagged = r
            .tagged()
            .expect("normalized reference without digest has a tag");
        self.store.set_tag(&tagged, &img.id)?;
        self.image_event("tag", &img.id.to_string(), &familiar_string(&tagged));
        Ok(())
    }

    /// `rmi NAME`: untags, and deletes the image when nothing names it any more.
    pub async fn remove_image(&self, name: &str, force: bool) -> Result<Vec<Removed>, EngineError> {
        let img = self.store.resolve(name)?;
        let out = self.remove_image_inner(&img, name, force).await?;
        let id = img.id.to_string();
        for r in &out {
            match r {
                Removed::Untagged(_) => self.image_event("untag", &id, &id),
                Removed::Deleted(d) if *d == id => self.image_event("delete", &id, &id),
                Removed::Deleted(_) => {}
            }
        }
        Ok(out)
    }

    async fn remove_image_inner(
        &self,
        img: &ImageRecord,
        name: &str,
        force: bool,
    ) -> Result<Vec<Removed>, EngineError> {
        let mut out = Vec::new();
        let users = self.containers.using_image(&img.id.to_string())?;
        if let Some(user) = users.first() {
            if !force {
                return Err(ImageError::Conflict {
                    message: format!(
                        "unable to remove repository reference \"{name}\" (must force) - container {} is using its referenced image {}",
                        &user[..12],
                        img.id.short()
                    ),
                }
                .into());
            }
            // forced: the names go, the image stays (dangling) while containers use it
            for t in img.tags.iter().chain(img.digests.iter()) {
                if self.store.remove_name(t)? {
                    out.push(Removed::Untagged(familiar_string(t)));
                }
            }
            return Ok(out);
        }
        // Was the image named (tag or digest), or addressed by ID?
        let named = Reference::parse_normalized(name).ok().and_then(|r| {
            let key = match &r.digest {
                Some(d) => format!("{}@{d}", r.repository()),
                None => r.tagged()?,
            };
            (img.tags.contains(&key) || img.digests.contains(&key)).then_some(key)
        });
        match named {
            Some(key) => {
                self.store.remove_name(&key)?;
                out.push(Removed::Untagged(familiar_string(&key)));
                let remaining_tags: Vec<&String> = img.tags.iter().filter(|t| **t != key).collect();
                if !remaining_tags.is_empty() {
                    return Ok(out);
                }
            }
            None => {
                let repos: std::collections::HashSet<&str> = img
                    .tags
                    .iter()
                    .map(|t| t.rsplit_once(':').map_or(t.as_str(), |(r, _)| r))
                    .collect();
                if repos.len() > 1 && !force {
                    return Err(ImageError::Conflict {
                        message: format!(
                            "unable to delete {} (must be forced) - image is referenced in multiple repositories",
                            img.id.short()
                        ),
                    }
                    .into());
                }
                for t in &img.tags {
                    self.store.remove_name(t)?;
                    out.push(Removed::Untagged(familiar_string(t)));
                }
            }
        }
        for d in &img.digests {
            if self.store.remove_name(d)? {
                out.push(Removed::Untagged(familiar_string(d)));
            }
        }
        self.store.delete_image(&img.id)?;
        out.push(Removed::Deleted(img.id.to_string()));
        let report = self.store.gc().await?;
        out.extend(
            report
                .snapshots
                .into_iter()
                .filter(|s| *s != img.id.to_string())
                .map(Removed::Deleted),
        );
        Ok(out)
    }

    /// `image prune`: dangling images, or with `all` every image (none is used by a container yet).
    pub async fn prune_images(&self, all: bool) -> Result<PruneOutcome, EngineError> {
        let mut outcome = PruneOutcome::default();
        for img in self.store.list_images()? {
            if !all && !img.tags.is_empty() {
                continue;
            }
            if !self.containers.using_image(&img.id.to_string())?.is_empty() {
                continue;
            }
            for n in img.tags.iter().chain(img.digests.iter()) {
                self.store.remove_name(n)?;
                outcome.removed.push(Removed::Untagged(familiar_string(n)));
            }
            self.store.delete_image(&img.id)?;
            let id = img.id.to_string();
            self.image_event("untag", &id, &id);
            self.image_event("delete", &id, &id);
            outcome.removed.push(Removed::Deleted(id));
        }
        let report = self.store.gc().await?;
        outcome
            .removed
            .extend(report.snapshots.into_iter().map(Removed::Deleted));
        outcome.space_reclaimed = report.bytes;
        Ok(outcome)
    }

    /// Per-image disk use with shared sizes (`system df`).
    pub fn disk_usage(&self) -> Result<(Vec<ImageUsage>, u64), EngineError> {
        let images = self.store.list_images()?;
        let mut users: HashMap<&Digest, usize> = HashMap::new();
        let mut sizes: HashMap<&Digest, u64> = HashMap::new();
        for img in &images {
            for l in &img.layers {
                *users.entry(&l.chain_id).or_default() += 1;
                sizes.insert(&l.chain_id, l.size);
            }
        }
        let total = sizes.values().sum();
        let usage = images
            .iter()
            .map(|img| ImageUsage {
                shared_size: img
                    .layers
                    .iter()
                    .filter(|l| users.get(&l.chain_id).copied().unwrap_or(0) > 1)
                    .map(|l| l.size)
                    .sum(),
                image: img.clone(),
            })
            .collect();
        Ok((usage, total))
    }
}

/// Docker's spelling of a login server → a registry domain (`https://index.docker.io/v1/` → `docker.io`).
pub fn normalize_server(server: &str) -> String {
    let s = server.trim();
    let s = s
        .strip_prefix("https://")
        .or_else(|| s.strip_prefix("http://"))
        .unwrap_or(s);
    let s = s.split('/').next().unwrap_or(s);
    match s {
        "" | "index.docker.io" | "registry-1.docker.io" | "docker.io" => "docker.io".to_string(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn login_servers() {
        assert_eq!(normalize_server("https://index.docker.io/v1/"), "docker.io");
        assert_eq!(normalize_server(""), "docker.io");
        assert_eq!(normalize_server("127.0.0.1:5000"), "127.0.0.1:5000");
        assert_eq!(
            normalize_server("http://127.0.0.1:5000/v2/"),
            "127.0.0.1:5000"
        );
    }
}
