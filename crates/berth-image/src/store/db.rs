//! SQLite schema and queries for image metadata.

use std::collections::HashSet;
use std::path::Path;

use rusqlite::{params, Connection, OptionalExtension};

use crate::digest::Digest;
use crate::error::ImageError;
use crate::reference::Reference;

// 2: `unsynced` (snapshots whose data may not be on the disk yet)
const SCHEMA_VERSION: i64 = 2;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS images (
    id TEXT PRIMARY KEY,
    manifest_digest TEXT NOT NULL,
    manifest_media_type TEXT NOT NULL,
    index_digest TEXT,
    created TEXT,
    os TEXT NOT NULL,
    architecture TEXT NOT NULL,
    variant TEXT,
    added_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS image_layers (
    image_id TEXT NOT NULL REFERENCES images(id) ON DELETE CASCADE,
    position INTEGER NOT NULL,
    chain_id TEXT NOT NULL REFERENCES snapshots(chain_id),
    diff_id TEXT NOT NULL,
    blob_digest TEXT NOT NULL,
    blob_size INTEGER NOT NULL,
    media_type TEXT NOT NULL,
    PRIMARY KEY (image_id, position)
);
CREATE INDEX IF NOT EXISTS image_layers_chain ON image_layers(chain_id);
CREATE TABLE IF NOT EXISTS names (
    name TEXT PRIMARY KEY,
    image_id TEXT NOT NULL REFERENCES images(id) ON DELETE CASCADE,
    is_digest INTEGER NOT NULL,
    tagged_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS names_image ON names(image_id);
CREATE TABLE IF NOT EXISTS snapshots (
    chain_id TEXT PRIMARY KEY,
    diff_id TEXT NOT NULL,
    size INTEGER NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS unsynced (
    chain_id TEXT PRIMARY KEY REFERENCES snapshots(chain_id) ON DELETE CASCADE,
    boot_id TEXT NOT NULL
);
";

/// One layer of an image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerRecord {
    /// Chain ID: the snapshot that holds this layer applied on its parents.
    pub chain_id: Digest,
    /// Digest of the uncompressed tar.
    pub diff_id: Digest,
    /// Digest of the blob as distributed.
    pub blob: Digest,
    /// Size of that blob.
    pub blob_size: u64,
    /// The blob's media type.
    pub media_type: String,
    /// Bytes of file content in the snapshot.
    pub size: u64,
}

/// A stored image.
#[derive(Debug, Clone)]
pub struct ImageRecord {
    /// The image ID: its config digest.
    pub id: Digest,
    /// The platform manifest's digest.
    pub manifest_digest: Digest,
    /// Its media type.
    pub manifest_media_type: String,
    /// The index it was selected from, if any.
    pub index_digest: Option<Digest>,
    /// The config's `created`.
    pub created: Option<String>,
    /// OS.
    pub os: String,
    /// Architecture.
    pub architecture: String,
    /// Variant.
    pub variant: Option<String>,
    /// Unix time the image was added.
    pub added_at: i64,
    /// Layers, base first.
    pub layers: Vec<LayerRecord>,
    /// Canonical tags (`docker.io/library/busybox:latest`).
    pub tags: Vec<String>,
    /// Canonical digest names (`docker.io/library/busybox@sha256:...`).
    pub digests: Vec<String>,
    /// Unix time of the newest tag.
    pub last_tagged_at: Option<i64>,
}

impl ImageRecord {
    /// Total bytes of file content over all layers.
    pub fn size(&self) -> u64 {
        self.layers.iter().map(|l| l.size).sum()
    }
}

/// An image to record.
#[derive(Debug, Clone)]
pub struct NewImage {
    /// Config digest.
    pub id: Digest,
    /// Manifest digest.
    pub manifest_digest: Digest,
    /// Manifest media type.
    pub manifest_media_type: String,
    /// Index digest if selected from one.
    pub index_digest: Option<Digest>,
    /// Config `created`.
    pub created: Option<String>,
    /// OS.
    pub os: String,
    /// Architecture.
    pub architecture: String,
    /// Variant.
    pub variant: Option<String>,
    /// Layers, base first (snapshots must be committed already).
    pub layers: Vec<LayerRecord>,
    /// Canonical tag to point at it.
    pub tag: Option<String>,
    /// Canonical `repo@digest` to point at it.
    pub repo_digest: Option<String>,
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

fn digest_col(s: String) -> rusqlite::Result<Digest> {
    s.parse().map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e))
    })
}

pub(super) fn open(path: &Path) -> Result<Connection, ImageError> {
    let conn = Connection::open(path).map_err(ImageError::db("opening"))?;
    conn.execute_batch("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON; PRAGMA busy_timeout=5000;")
        .map_err(ImageError::db("configuring"))?;
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(ImageError::db("reading schema version"))?;
    if version > SCHEMA_VERSION {
        return Err(ImageError::Invalid {
            message: format!(
                "image database {} has schema version {version}, newer than this berth understands ({SCHEMA_VERSION}); upgrade berth",
                path.display()
            ),
        });
    }
    conn.execute_batch(SCHEMA)
        .map_err(ImageError::db("creating schema"))?;
    conn.execute_batch(&format!("PRAGMA user_version={SCHEMA_VERSION}"))
        .map_err(ImageError::db("writing schema version"))?;
    Ok(conn)
}

pub(super) fn has_snapshot(conn: &Connection, chain: &Digest) -> Result<bool, ImageError> {
    conn.query_row(
        "SELECT 1 FROM snapshots WHERE chain_id = ?1",
        [chain.to_string()],
        |_| Ok(()),
    )
    .optional()
    .map(|o| o.is_some())
    .map_err(ImageError::db("looking up snapshot"))
}

/// Records a committed snapshot; with `unsynced_boot`, also that its data may still be only in
/// the page cache of that boot (one transaction, so no snapshot is ever recorded as synced by
/// mistake).
pub(super) fn insert_snapshot(
    conn: &mut Connection,
    chain: &Digest,
    diff: &Digest,
    size: u64,
    unsynced_boot: Option<&str>,
) -> Result<(), ImageError> {
    let tx = conn
        .transaction()
        .map_err(ImageError::db("recording snapshot"))?;
    let added = tx
        .execute(
            "INSERT OR IGNORE INTO snapshots (chain_id, diff_id, size, created_at) VALUES (?1, ?2, ?3, ?4)",
            params![chain.to_string(), diff.to_string(), size as i64, now()],
        )
        .map_err(ImageError::db("recording snapshot"))?;
    if let (1, Some(boot)) = (added, unsynced_boot) {
        tx.execute(
            "INSERT OR REPLACE INTO unsynced (chain_id, boot_id) VALUES (?1, ?2)",
            params![chain.to_string(), boot],
        )
        .map_err(ImageError::db("recording snapshot"))?;
    }
    tx.commit().map_err(ImageError::db("recording snapshot"))
}

/// Snapshots not yet known to be on the disk: (chain hex, boot ID of their commit).
pub(super) fn unsynced(conn: &Connection) -> Result<Vec<(String, String)>, ImageError> {
    let mut stmt = conn
        .prepare("SELECT chain_id, boot_id FROM unsynced")
        .map_err(ImageError::db("listing unsynced snapshots"))?;
    let rows = stmt
        .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
        .map_err(ImageError::db("listing unsynced snapshots"))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(ImageError::db("listing unsynced snapshots"))?;
    Ok(rows
        .into_iter()
        .map(|(c, b)| (c.trim_start_matches("sha256:").to_string(), b))
        .collect())
}

/// Marks snapshots (chain hex) as on the disk.
pub(super) fn mark_synced(conn: &mut Connection, chain_hexes: &[String]) -> Result<(), ImageError> {
    let tx = conn
        .transaction()
        .map_err(ImageError::db("marking snapshots synced"))?;
    for hex in chain_hexes {
        tx.execute(
            "DELETE FROM unsynced WHERE chain_id = ?1",
            [format!("sha256:{hex}")],
        )
        .map_err(ImageError::db("marking snapshots synced"))?;
    }
    tx.commit()
        .map_err(ImageError::db("marking snapshots synced"))
}

pub(super) fn snapshot_ids(conn: &Connection) -> Result<HashSet<String>, ImageError> {
    let mut stmt = conn
        .prepare("SELECT chain_id FROM snapshots")
        .map_err(ImageError::db("listing snapshots"))?;
    let rows = stmt
        .query_map([], |r| r.get::<_, String>(0))
        .map_err(ImageError::db("listing snapshots"))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(ImageError::db("listing snapshots"))?;
    Ok(rows
        .into_iter()
        .map(|c| c.trim_start_matches("sha256:").to_string())
        .collect())
}

/// Snapshots (chain hex) no image references.
pub(super) fn unreferenced_snapshots(conn: &Connection) -> Result<Vec<(String, u64)>, ImageError> {
    let mut stmt = conn
        .prepare("SELECT chain_id, size FROM snapshots s WHERE NOT EXISTS (SELECT 1 FROM image_layers l WHERE l.chain_id = s.chain_id)")
        .map_err(ImageError::db("finding unreferenced snapshots"))?;
    let rows = stmt
        .query_map([], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)? as u64))
        })
        .map_err(ImageError::db("finding unreferenced snapshots"))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(ImageError::db("finding unreferenced snapshots"))?;
    Ok(rows)
}

pub(super) fn delete_snapshot_row(conn: &Connection, chain: &str) -> Result<(), ImageError> {
    conn.execute("DELETE FROM snapshots WHERE chain_id = ?1", [chain])
        .map_err(ImageError::db("deleting snapshot"))?;
    Ok(())
}

pub(super) fn drop_snapshots(
    conn: &mut Connection,
    chain_hexes: &[String],
) -> Result<(), ImageError> {
    let tx = conn
        .transaction()
        .map_err(ImageError::db("dropping snapshots"))?;
    for hex in chain_hexes {
        let chain = format!("sha256:{hex}");
        tx.execute("DELETE FROM images WHERE id IN (SELECT image_id FROM image_layers WHERE chain_id = ?1)", [&chain])
            .map_err(ImageError::db("dropping images of a missing snapshot"))?;
        tx.execute("DELETE FROM snapshots WHERE chain_id = ?1", [&chain])
            .map_err(ImageError::db("dropping snapshot"))?;
    }
    tx.commit().map_err(ImageError::db("dropping snapshots"))
}

pub(super) fn put_image(conn: &mut Connection, img: &NewImage) -> Result<(), ImageError> {
    let tx = conn
        .transaction()
        .map_err(ImageError::db("recording image"))?;
    let t = now();
    let exists = tx
        .query_row(
            "SELECT 1 FROM images WHERE id = ?1",
            [img.id.to_string()],
            |_| Ok(()),
        )
        .optional()
        .map_err(ImageError::db("recording image"))?
        .is_some();
    if !exists {
        tx.execute(
            "INSERT INTO images (id, manifest_digest, manifest_media_type, index_digest, created, os, architecture, variant, added_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            params![
                img.id.to_string(),
                img.manifest_digest.to_string(),
                img.manifest_media_type,
                img.index_digest.as_ref().map(|d| d.to_string()),
                img.created,
                img.os,
                img.architecture,
                img.variant,
                t
            ],
        )
        .map_err(ImageError::db("recording image"))?;
        for (i, l) in img.layers.iter().enumerate() {
            tx.execute(
                "INSERT INTO image_layers (image_id, position, chain_id, diff_id, blob_digest, blob_size, media_type)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![
                    img.id.to_string(),
                    i as i64,
                    l.chain_id.to_string(),
                    l.diff_id.to_string(),
                    l.blob.to_string(),
                    l.blob_size as i64,
                    l.media_type
                ],
            )
            .map_err(ImageError::db("recording image layer"))?;
        }
    }
    for (name, is_digest) in [(&img.tag, false), (&img.repo_digest, true)] {
        if let Some(n) = name {
            tx.execute(
                "INSERT INTO names (name, image_id, is_digest, tagged_at) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT(name) DO UPDATE SET image_id = excluded.image_id, tagged_at = excluded.tagged_at",
                params![n, img.id.to_string(), is_digest, t],
            )
            .map_err(ImageError::db("recording image name"))?;
        }
    }
    tx.commit().map_err(ImageError::db("recording image"))
}

pub(super) fn set_tag(conn: &Connection, tagged: &str, id: &Digest) -> Result<(), ImageError> {
    conn.execute(
        "INSERT INTO names (name, image_id, is_digest, tagged_at) VALUES (?1, ?2, 0, ?3)
         ON CONFLICT(name) DO UPDATE SET image_id = excluded.image_id, tagged_at = excluded.tagged_at",
        params![tagged, id.to_string(), now()],
    )
    .map_err(ImageError::db("tagging"))?;
    Ok(())
}

pub(super) fn remove_name(conn: &Connection, name: &str) -> Result<bool, ImageError> {
    Ok(conn
        .execute("DELETE FROM names WHERE name = ?1", [name])
        .map_err(ImageError::db("untagging"))?
        > 0)
}

pub(super) fn delete_image(conn: &mut Connection, id: &Digest) -> Result<(), ImageError> {
    conn.execute("DELETE FROM images WHERE id = ?1", [id.to_string()])
        .map_err(ImageError::db("deleting image"))?;
    Ok(())
}

fn load(conn: &Connection, where_clause: &str, arg: &str) -> Result<Vec<ImageRecord>, ImageError> {
    let sql = format!(
        "SELECT id, manifest_digest, manifest_media_type, index_digest, created, os, architecture, variant, added_at
         FROM images {where_clause} ORDER BY added_at DESC, id"
    );
    // cached: an image lookup runs with every container created
    let mut stmt = conn
        .prepare_cached(&sql)
        .map_err(ImageError::db("loading images"))?;
    let map = |r: &rusqlite::Row<'_>| -> rusqlite::Result<ImageRecord> {
        Ok(ImageRecord {
            id: digest_col(r.get(0)?)?,
            manifest_digest: digest_col(r.get(1)?)?,
            manifest_media_type: r.get(2)?,
            index_digest: r.get::<_, Option<String>>(3)?.map(digest_col).transpose()?,
            created: r.get(4)?,
            os: r.get(5)?,
            architecture: r.get(6)?,
            variant: r.get(7)?,
            added_at: r.get(8)?,
            layers: Vec::new(),
            tags: Vec::new(),
            digests: Vec::new(),
            last_tagged_at: None,
        })
    };
    let mut images = if arg.is_empty() {
        stmt.query_map([], map)
            .map_err(ImageError::db("loading images"))?
            .collect::<Result<Vec<_>, _>>()
    } else {
        stmt.query_map([arg], map)
            .map_err(ImageError::db("loading images"))?
            .collect::<Result<Vec<_>, _>>()
    }
    .map_err(ImageError::db("loading images"))?;
    let mut layers = conn
        .prepare_cached(
            "SELECT l.chain_id, l.diff_id, l.blob_digest, l.blob_size, l.media_type, COALESCE(s.size, 0)
             FROM image_layers l LEFT JOIN snapshots s ON s.chain_id = l.chain_id
             WHERE l.image_id = ?1 ORDER BY l.position",
        )
        .map_err(ImageError::db("loading layers"))?;
    let mut names = conn
        .prepare_cached(
            "SELECT name, is_digest, tagged_at FROM names WHERE image_id = ?1 ORDER BY name",
        )
        .map_err(ImageError::db("loading names"))?;
    for img in &mut images {
        let id = img.id.to_string();
        img.layers = layers
            .query_map([&id], |r| {
                Ok(LayerRecord {
                    chain_id: digest_col(r.get(0)?)?,
                    diff_id: digest_col(r.get(1)?)?,
                    blob: digest_col(r.get(2)?)?,
                    blob_size: r.get::<_, i64>(3)? as u64,
                    media_type: r.get(4)?,
                    size: r.get::<_, i64>(5)? as u64,
                })
            })
            .map_err(ImageError::db("loading layers"))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(ImageError::db("loading layers"))?;
        let rows = names
            .query_map([&id], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, bool>(1)?,
                    r.get::<_, i64>(2)?,
                ))
            })
            .map_err(ImageError::db("loading names"))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(ImageError::db("loading names"))?;
        for (name, is_digest, at) in rows {
            if is_digest {
                img.digests.push(name);
            } else {
                img.tags.push(name);
                img.last_tagged_at = Some(img.last_tagged_at.map_or(at, |t: i64| t.max(at)));
            }
        }
    }
    Ok(images)
}

pub(super) fn list_images(conn: &Connection) -> Result<Vec<ImageRecord>, ImageError> {
    load(conn, "", "")
}

pub(super) fn resolve(conn: &Connection, name: &str) -> Result<ImageRecord, ImageError> {
    let not_found = || ImageError::NotFound {
        name: name.to_string(),
    };
    let by_id = |id: &str| -> Result<Option<ImageRecord>, ImageError> {
        Ok(load(conn, "WHERE id = ?1", id)?.pop())
    };
    // a full ID
    if let Ok(d) = name.parse::<Digest>() {
        return by_id(&d.to_string())?.ok_or_else(not_found);
    }
    // a name: tag or digest
    if let Ok(r) = Reference::parse_normalized(name) {
        let key = match &r.digest {
            Some(d) => format!("{}@{d}", r.repository()),
            None => r
                .tagged()
                .expect("normalized references have a tag or digest"),
        };
        let id: Option<String> = conn
            .prepare_cached("SELECT image_id FROM names WHERE name = ?1")
            .and_then(|mut s| s.query_row([&key], |row| row.get(0)))
            .optional()
            .map_err(ImageError::db("resolving name"))?;
        if let Some(id) = id {
            return by_id(&id)?.ok_or_else(not_found);
        }
        // name@digest where the digest is the image's manifest, pulled under another name
        if let Some(d) = &r.digest {
            let mut hits = load(
                conn,
                "WHERE manifest_digest = ?1 OR index_digest = ?1",
                &d.to_string(),
            )?;
            if hits.len() == 1 {
                return Ok(hits.remove(0));
            }
        }
    }
    // an ID prefix, with or without `sha256:`
    let prefix = name.strip_prefix("sha256:").unwrap_or(name);
    if !prefix.is_empty()
        && prefix.len() <= 64
        && prefix
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        let mut hits = load(conn, "WHERE id LIKE ?1", &format!("sha256:{prefix}%"))?;
        return match hits.len() {
            0 => Err(not_found()),
            1 => Ok(hits.remove(0)),
            count => Err(ImageError::Ambiguous {
                name: name.to_string(),
                count,
            }),
        };
    }
    Err(not_found())
}
