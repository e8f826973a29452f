//! The pull pipeline: manifest → config → layers downloaded in parallel, each hashed,
//! decompressed and unpacked into its own snapshot while it arrives; resumable; verified.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::sync::mpsc::{sync_channel, Receiver};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::mpsc::UnboundedSender;

use crate::digest::{chain_ids, Digest, DigestHasher};
use crate::error::ImageError;
use crate::manifest::{Compression, Descriptor, ImageConfig, ManifestKind};
use crate::platform::Platform;
use crate::reference::Reference;
use crate::registry::{Credentials, RegistryClient};
use crate::store::{LayerRecord, NewImage, Store};
use crate::unpack::{fill, unpack_layer, LimitedReader, UnpackError};

/// Limits and tuning of the pull pipeline.
#[derive(Clone, Debug)]
pub struct PullOptions {
    /// Largest uncompressed size of one layer, in bytes (decompression-bomb bound).
    pub max_layer_size: u64,
    /// How many layers download at once.
    pub max_concurrent_downloads: usize,
    /// How many times a layer download is resumed after a transient failure.
    pub layer_attempts: u32,
}

impl Default for PullOptions {
    fn default() -> Self {
        PullOptions {
            max_layer_size: 64 << 30,
            max_concurrent_downloads: 6,
            layer_attempts: 4,
        }
    }
}

/// One progress message, shaped like Docker's JSON progress.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Progress {
    /// Layer short ID or tag; `None` for whole-pull messages.
    pub id: Option<String>,
    /// `Pulling fs layer`, `Downloading`, `Pull complete`...
    pub status: String,
    /// Bytes done, for `Downloading`.
    pub current: Option<u64>,
    /// Bytes total, for `Downloading`.
    pub total: Option<u64>,
}

impl Progress {
    fn status(id: Option<&str>, status: impl Into<String>) -> Progress {
        Progress {
            id: id.map(str::to_string),
            status: status.into(),
            current: None,
            total: None,
        }
    }
}

/// What to pull.
#[derive(Clone, Debug)]
pub struct PullRequest {
    /// The image.
    pub reference: Reference,
    /// Wanted platform; the host's when `None`.
    pub platform: Option<Platform>,
    /// Credentials, if any.
    pub credentials: Option<Credentials>,
}

/// What a pull did.
#[derive(Clone, Debug)]
pub struct PullOutcome {
    /// The image ID (config digest).
    pub image_id: Digest,
    /// The digest the reference resolved to (index or manifest).
    pub digest: Digest,
    /// Whether anything new was stored.
    pub downloaded: bool,
}

/// Pulls images into a [`Store`].
pub struct Puller {
    store: Arc<Store>,
    client: Arc<RegistryClient>,
    options: PullOptions,
    /// Per-content locks so concurrent pulls of shared layers fetch each once.
    inflight: std::sync::Mutex<HashMap<Digest, Arc<tokio::sync::Mutex<()>>>>,
}

type ProgressTx = UnboundedSender<Progress>;

fn send(tx: &ProgressTx, p: Progress) {
    // the receiver going away (client disconnected) must not abort the pull
    let _ = tx.send(p);
}

impl Puller {
    /// A puller over a store and a registry client.
    pub fn new(store: Arc<Store>, client: Arc<RegistryClient>, options: PullOptions) -> Puller {
        Puller {
            store,
            client,
            options,
            inflight: std::sync::Mutex::new(HashMap::new()),
        }
    }

    /// The registry client.
    pub fn client(&self) -> &Arc<RegistryClient> {
        &self.client
    }

    fn lock_for(&self, d: &Digest) -> Arc<tokio::sync::Mutex<()>> {
        let mut map = self.inflight.lock().unwrap_or_else(|p| p.into_inner());
        map.retain(|_, v| Arc::strong_count(v) > 1);
        map.entry(d.clone()).or_default().clone()
    }

    /// Pulls one image, streaming progress to `tx`.
    #[tracing::instrument(skip_all, fields(image = %req.reference))]
    pub async fn pull(
        &self,
        req: &PullRequest,
        tx: &ProgressTx,
    ) -> Result<PullOutcome, ImageError> {
        let r = &req.reference;
        let creds = req.credentials.as_ref();
        let tag_label = r.tag.clone().unwrap_or_else(|| r.manifest_ref());
        send(
            tx,
            Progress::status(
                Some(&tag_label),
                format!("Pulling from {}", familiar_path(r)),
            ),
        );
        let (body, ct, top_digest) = self
            .client
            .get_manifest(r, &r.manifest_ref(), creds)
            .await?;
        let parse = |ct: Option<&str>, body: &[u8]| {
            ManifestKind::parse(ct, body).map_err(|source| ImageError::Manifest {
                reference: r.to_string(),
                source,
            })
        };
        let wanted = req.platform.clone().unwrap_or_else(Platform::host);
        let (manifest, manifest_body, manifest_digest, index) = match parse(ct.as_deref(), &body)? {
            ManifestKind::Image(m) => (m, body, top_digest.clone(), None),
            ManifestKind::Index(idx) => {
                let chosen = idx
                    .manifests
                    .iter()
                    .find(|d| d.platform.as_ref().is_some_and(|p| wanted.matches(p)))
                    .cloned()
                    .ok_or_else(|| ImageError::NoMatchingPlatform {
                        reference: r.to_string(),
                        platform: wanted.to_string(),
                        available: idx
                            .manifests
                            .iter()
                            .filter_map(|d| d.platform.as_ref().map(|p| p.to_string()))
                            .collect::<Vec<_>>()
                            .join(", "),
                    })?;
                let (mbody, mct, mdigest) = self
                    .client
                    .get_manifest(r, &chosen.digest.to_string(), creds)
                    .await?;
                match parse(mct.as_deref(), &mbody)? {
                    ManifestKind::Image(m) => (m, mbody, mdigest, Some(body)),
                    ManifestKind::Index(_) => {
                        return Err(ImageError::Invalid {
                            message: format!(
                                "{r}: index entry {} is itself an index",
                                chosen.digest
                            ),
                        })
                    }
                }
            }
        };
        let manifest_media_type = manifest
            .media_type
            .clone()
            .or(ct)
            .unwrap_or_else(|| crate::manifest::OCI_MANIFEST.into());

        // Fast path: the image and all its snapshots are here: only (re)point the names.
        let config_digest = manifest.config.digest.clone();
        let _adding = self.store.adding().await;
        let config = self.fetch_config(r, &manifest.config, creds).await?;
        if req.platform.is_some() && !wanted.matches(&config.platform()) {
            return Err(ImageError::NoMatchingPlatform {
                reference: r.to_string(),
                platform: wanted.to_string(),
                available: config.platform().to_string(),
            });
        }
        if config.rootfs.diff_ids.len() != manifest.layers.len() {
            return Err(ImageError::Invalid {
                message: format!(
                    "{r}: manifest lists {} layers but its config has {} diff IDs",
                    manifest.layers.len(),
                    config.rootfs.diff_ids.len()
                ),
            });
        }
        let chains = chain_ids(&config.rootfs.diff_ids);
        let mut downloaded = false;
        for (what, digest, data) in [
            ("index", &top_digest, index.as_deref()),
            ("manifest", &manifest_digest, Some(manifest_body.as_slice())),
        ] {
            if let Some(data) = data {
                if !self.store.has_blob(digest) {
                    self.store.write_blob(what, digest, data)?;
                }
            }
        }

        // Layers: all at once, bounded.
        let sem = Arc::new(tokio::sync::Semaphore::new(
            self.options.max_concurrent_downloads.max(1),
        ));
        let mut tasks = Vec::new();
        for (i, layer) in manifest.layers.iter().enumerate() {
            let compression = Compression::from_media_type(&layer.media_type).ok_or_else(|| {
                ImageError::Invalid {
                    message: format!(
                        "{r}: layer {} has unsupported media type {:?}",
                        layer.digest, layer.media_type
                    ),
                }
            })?;
            let job = LayerJob {
                reference: r.clone(),
                desc: layer.clone(),
                compression,
                chain_id: chains[i].clone(),
                diff_id: config.rootfs.diff_ids[i].clone(),
            };
            tasks.push(self.layer(job, creds, tx, sem.clone()));
        }
        let results = futures_util::future::join_all(tasks).await;
        let mut layers = Vec::new();
        for res in results {
            let (rec, fetched) = res?;
            downloaded |= fetched;
            layers.push(rec);
        }

        let existed = self.store.resolve(&config_digest.to_string()).is_ok();
        let repo_digest = format!("{}@{top_digest}", r.repository());
        let new = NewImage {
            id: config_digest.clone(),
            manifest_digest,
            manifest_media_type,
            index_digest: index.as_ref().map(|_| top_digest.clone()),
            created: config.created.clone(),
            os: config.os.clone(),
            architecture: config.architecture.clone(),
            variant: config.variant.clone(),
            layers,
            tag: r.tagged(),
            repo_digest: Some(repo_digest),
        };
        let previous = r
            .tagged()
            .and_then(|t| self.store.resolve(&t).ok())
            .map(|img| img.id);
        // the snapshots' data reaches the disk after the pull returns (see the store's
        // documentation), or before the image is recorded where that cannot be tracked
        if downloaded && !self.store.sync_in_background() {
            let store = self.store.clone();
            tokio::task::spawn_blocking(move || store.sync())
                .await
                .map_err(|e| ImageError::Invalid {
                    message: format!("sync task failed: {e}"),
                })??;
        }
        self.store.put_image(&new)?;
        send(tx, Progress::status(None, format!("Digest: {top_digest}")));
        let changed = downloaded || !existed || previous.as_ref() != Some(&config_digest);
        Ok(PullOutcome {
            image_id: config_digest,
            digest: top_digest,
            downloaded: changed,
        })
    }

    async fn fetch_config(
        &self,
        r: &Reference,
        desc: &Descriptor,
        creds: Option<&Credentials>,
    ) -> Result<ImageConfig, ImageError> {
        let d = &desc.digest;
        let data = if self.store.has_blob(d) {
            self.store.read_blob(d)?
        } else {
            if desc.size > crate::registry::MAX_MANIFEST_BYTES as u64 * 4 {
                return Err(ImageError::Invalid {
                    message: format!("{r}: image config {d} claims {} bytes", desc.size),
                });
            }
            let (mut resp, _) = self.client.get_blob(r, d, 0, creds).await?;
            let mut data = Vec::new();
            let host = r.endpoint_host().to_string();
            while let Some(chunk) = resp.chunk().await.map_err(|e| ImageError::Registry {
                registry: host.clone(),
                message: format!("reading config {d}"),
                source: Some(e),
            })? {
                data.extend_from_slice(&chunk);
                if data.len() as u64 > desc.size {
                    return Err(ImageError::SizeMismatch {
                        what: "config",
                        digest: d.clone(),
                        expected: desc.size,
                        actual: data.len() as u64,
                    });
                }
            }
            if data.len() as u64 != desc.size {
                return Err(ImageError::SizeMismatch {
                    what: "config",
                    digest: d.clone(),
                    expected: desc.size,
                    actual: data.len() as u64,
                });
            }
            self.store.write_blob("config", d, &data)?;
            data
        };
        serde_json::from_slice(&data).map_err(|source| ImageError::Config {
            digest: d.clone(),
            source,
        })
    }

    /// Makes one layer's snapshot present: returns its record and whether it was downloaded.
    async fn layer(
        &self,
        job: LayerJob,
        creds: Option<&Credentials>,
        tx: &ProgressTx,
        sem: Arc<tokio::sync::Semaphore>,
    ) -> Result<(LayerRecord, bool), ImageError> {
        let short = job.desc.digest.short().to_string();
        let record = |size: u64| LayerRecord {
            chain_id: job.chain_id.clone(),
            diff_id: job.diff_id.clone(),
            blob: job.desc.digest.clone(),
            blob_size: job.desc.size,
            media_type: job.desc.media_type.clone(),
            size,
        };
        if self.store.has_snapshot(&job.chain_id)? {
            send(tx, Progress::status(Some(&short), "Already exists"));
            return Ok((record(0), false));
        }
        send(tx, Progress::status(Some(&short), "Pulling fs layer"));
        let _permit = sem.acquire_owned().await.map_err(|_| ImageError::Invalid {
            message: "pull cancelled".into(),
        })?;
        let lock = self.lock_for(&job.chain_id);
        let _guard = lock.lock().await;
        if self.store.has_snapshot(&job.chain_id)? {
            send(tx, Progress::status(Some(&short), "Already exists"));
            return Ok((record(0), false));
        }
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self.layer_attempt(&job, creds, tx, &short).await {
                Ok(size) => {
                    send(tx, Progress::status(Some(&short), "Pull complete"));
                    return Ok((record(size), true));
                }
                Err(AttemptError::Transient(e)) if attempt < self.options.layer_attempts => {
                    tracing::info!(layer = %job.desc.digest, attempt, error = %e, "layer download interrupted; resuming");
                    tokio::time::sleep(self.client.config().retry_backoff * attempt).await;
                }
                Err(AttemptError::Transient(e) | AttemptError::Fatal(e)) => return Err(e),
            }
        }
    }

    async fn layer_attempt(
        &self,
        job: &LayerJob,
        creds: Option<&Credentials>,
        tx: &ProgressTx,
        short: &str,
    ) -> Result<u64, AttemptError> {
        let ingest = self.store.ingest_path(&job.desc.digest);
        let blob_present = self.store.has_blob(&job.desc.digest);
        let have = if blob_present {
            0
        } else {
            std::fs::metadata(&ingest).map(|m| m.len()).unwrap_or(0)
        };
        let have = if have > job.desc.size { 0 } else { have };
        // a complete local blob (or a complete partial) needs no request
        let (resp, start) = if blob_present || (have == job.desc.size && have > 0) {
            (None, have)
        } else {
            let (resp, start) = self
                .client
                .get_blob(&job.reference, &job.desc.digest, have, creds)
                .await
                .map_err(AttemptError::classify)?;
            (Some(resp), start)
        };
        let (chunk_tx, chunk_rx) = sync_channel::<Result<Bytes, io::Error>>(64);
        let tmp = self
            .store
            .snapshot_tmp(&job.chain_id)
            .map_err(AttemptError::Fatal)?;
        let store = self.store.clone();
        let job2 = job.clone();
        let max = self.options.max_layer_size;
        let tmp2 = tmp.clone();
        let source = if blob_present {
            Source::Blob
        } else {
            Source::Ingest { start }
        };
        let worker = tokio::task::spawn_blocking(move || {
            apply_stream(&store, &job2, &tmp2, source, chunk_rx, max)
        });

        // feed the worker from the network
        let mut received = start;
        let mut net_err: Option<ImageError> = None;
        if let Some(mut resp) = resp {
            let mut last = Instant::now() - Duration::from_secs(1);
            let host = job.reference.endpoint_host().to_string();
            loop {
                match resp.chunk().await {
                    Ok(Some(chunk)) => {
                        received += chunk.len() as u64;
                        if received > job.desc.size {
                            net_err = Some(ImageError::SizeMismatch {
                                what: "layer",
                                digest: job.desc.digest.clone(),
                                expected: job.desc.size,
                                actual: received,
                            });
                            break;
                        }
                        if chunk_tx.send(Ok(chunk)).is_err() {
                            break; // the worker failed; its error is reported below
                        }
                        if last.elapsed() >= Duration::from_millis(100) || received == job.desc.size
                        {
                            last = Instant::now();
                            send(
                                tx,
                                Progress {
                                    id: Some(short.to_string()),
                                    status: "Downloading".into(),
                                    current: Some(received),
                                    total: Some(job.desc.size),
                                },
                            );
                        }
                    }
                    Ok(None) => break,
                    Err(e) => {
                        net_err = Some(ImageError::Registry {
                            registry: host.clone(),
                            message: format!("downloading layer {}", job.desc.digest),
                            source: Some(e),
                        });
                        break;
                    }
                }
            }
        }
        match &net_err {
            Some(e) => {
                let _ = chunk_tx.send(Err(io::Error::other(e.to_string())));
            }
            None if received < job.desc.size && !blob_present => {
                let _ = chunk_tx.send(Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "registry closed the blob early",
                )));
            }
            None => {}
        }
        drop(chunk_tx);
        let worker_result = worker.await.map_err(|e| {
            AttemptError::Fatal(ImageError::Invalid {
                message: format!("unpack task failed: {e}"),
            })
        })?;
        let worker_err = match worker_result {
            Ok(size) => return Ok(size),
            Err(e) => e,
        };
        self.store.discard_tmp(&tmp);
        match net_err {
            // an over-long body is a lie, not a hiccup
            Some(e @ ImageError::SizeMismatch { .. }) => {
                let _ = std::fs::remove_file(&ingest);
                Err(AttemptError::Fatal(e))
            }
            // the stream broke: keep what arrived and resume with a Range request
            Some(e) => Err(AttemptError::Transient(e)),
            None if received < job.desc.size && !blob_present => {
                Err(AttemptError::Transient(ImageError::SizeMismatch {
                    what: "layer",
                    digest: job.desc.digest.clone(),
                    expected: job.desc.size,
                    actual: received,
                }))
            }
            // the data itself is bad: never resume from it
            None => {
                let _ = std::fs::remove_file(&ingest);
                Err(AttemptError::Fatal(worker_err))
            }
        }
    }
}

fn familiar_path(r: &Reference) -> String {
    if r.domain == crate::reference::DEFAULT_DOMAIN {
        r.path.clone()
    } else {
        r.repository()
    }
}

#[derive(Clone)]
struct LayerJob {
    reference: Reference,
    desc: Descriptor,
    compression: Compression,
    chain_id: Digest,
    diff_id: Digest,
}

enum AttemptError {
    Transient(ImageError),
    Fatal(ImageError),
}

impl AttemptError {
    fn classify(e: ImageError) -> AttemptError {
        match e {
            ImageError::Registry { .. } => AttemptError::Transient(e),
            other => AttemptError::Fatal(other),
        }
    }
}

enum Source {
    /// The verified blob is already stored: unpack from it.
    Blob,
    /// Continue the partial download at `start`, reading bytes before it from the ingest file.
    Ingest { start: u64 },
}

/// The compressed stream as the unpacker sees it: local bytes first, then network chunks,
/// each network chunk appended to the ingest file, everything hashed.
struct TeeReader {
    local: Option<io::Take<File>>,
    ingest: Option<File>,
    rx: Receiver<Result<Bytes, io::Error>>,
    pending: Bytes,
    hasher: DigestHasher,
}

impl Read for TeeReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if let Some(f) = &mut self.local {
            let n = f.read(buf)?;
            if n > 0 {
                self.hasher.update(&buf[..n]);
                return Ok(n);
            }
            self.local = None;
        }
        while self.pending.is_empty() {
            match self.rx.recv() {
                Ok(Ok(chunk)) => {
                    if let Some(f) = &mut self.ingest {
                        f.write_all(&chunk)?;
                    }
                    self.pending = chunk;
                }
                Ok(Err(e)) => return Err(e),
                Err(_) => return Ok(0),
            }
        }
        let n = buf.len().min(self.pending.len());
        buf[..n].copy_from_slice(&self.pending[..n]);
        self.hasher.update(&buf[..n]);
        let _ = self.pending.split_to(n);
        Ok(n)
    }
}

/// Size and number of the decompressed chunks in flight between the two threads of a layer.
const CHUNK: usize = 256 << 10;
const CHUNKS: usize = 4;

/// The unpacking thread's view of the decompressed stream: chunks from the decompressing
/// thread (an error ends it), each handed back for reuse once read.
struct ChunkReader {
    full: Receiver<io::Result<(Vec<u8>, usize)>>,
    empty: std::sync::mpsc::SyncSender<Vec<u8>>,
    current: Vec<u8>,
    len: usize,
    pos: usize,
}

impl Read for ChunkReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.len {
            match self.full.recv() {
                Ok(Ok((chunk, len))) => {
                    let done = std::mem::replace(&mut self.current, chunk);
                    (self.len, self.pos) = (len, 0);
                    if done.capacity() > 0 {
                        let _ = self.empty.send(done);
                    }
                }
                Ok(Err(e)) => return Err(e),
                Err(_) => return Ok(0),
            }
        }
        let n = buf.len().min(self.len - self.pos);
        buf[..n].copy_from_slice(&self.current[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// A reader that hashes what passes through.
struct HashReader<R> {
    inner: R,
    hasher: DigestHasher,
}

impl<R: Read> Read for HashReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

/// Runs on a blocking thread: decompress + unpack + verify, then commit blob and snapshot.
/// Any error leaves the ingest file as it is; the caller decides whether to resume from it.
fn apply_stream(
    store: &Store,
    job: &LayerJob,
    tmp: &std::path::Path,
    source: Source,
    rx: Receiver<Result<Bytes, io::Error>>,
    max: u64,
) -> Result<u64, ImageError> {
    let ingest_path = store.ingest_path(&job.desc.digest);
    let (local, ingest) = match source {
        Source::Blob => {
            let p = store.blob_path(&job.desc.digest);
            let f = File::open(&p).map_err(ImageError::io("opening blob", &p))?;
            (Some(f.take(job.desc.size)), None)
        }
        Source::Ingest { start } => {
            let mut f = OpenOptions::new()
                .create(true)
                .truncate(false)
                .read(true)
                .write(true)
                .open(&ingest_path)
                .map_err(ImageError::io("opening download", &ingest_path))?;
            f.set_len(start)
                .map_err(ImageError::io("truncating download", &ingest_path))?;
            f.seek(SeekFrom::Start(start))
                .map_err(ImageError::io("seeking download", &ingest_path))?;
            let local = File::open(&ingest_path)
                .map_err(ImageError::io("opening download", &ingest_path))?;
            (Some(local.take(start)), Some(f))
        }
    };
    let mut tee = TeeReader {
        local,
        ingest,
        rx,
        pending: Bytes::new(),
        hasher: DigestHasher::default(),
    };
    let layer_err = |source: UnpackError| ImageError::Unpack {
        digest: job.desc.digest.clone(),
        source,
    };
    // Two threads per layer: this one decompresses and hashes, a scoped one parses the tar
    // and writes the files, so a layer uses two cores (the last layer of a pull otherwise
    // runs alone on one).
    let (stats, diff) = std::thread::scope(|scope| -> Result<_, ImageError> {
        let decompressed: Box<dyn Read> = match job.compression {
            Compression::None => Box::new(&mut tee),
            Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(
                io::BufReader::with_capacity(128 << 10, &mut tee),
            )),
            Compression::Zstd => Box::new(
                zstd::stream::read::Decoder::new(&mut tee)
                    .map_err(|e| layer_err(UnpackError::Tar(e)))?,
            ),
        };
        let mut hashed = HashReader {
            inner: LimitedReader::new(decompressed, max),
            hasher: DigestHasher::default(),
        };
        let (full_tx, full_rx) = sync_channel::<io::Result<(Vec<u8>, usize)>>(CHUNKS);
        let (empty_tx, empty_rx) = sync_channel::<Vec<u8>>(CHUNKS + 2);
        for _ in 0..CHUNKS + 2 {
            let _ = empty_tx.send(vec![0; CHUNK]);
        }
        let unpacker = std::thread::Builder::new()
            .name("berth-unpack".into())
            .spawn_scoped(scope, move || {
                unpack_layer(
                    ChunkReader {
                        full: full_rx,
                        empty: empty_tx,
                        current: Vec::new(),
                        len: 0,
                        pos: 0,
                    },
                    tmp,
                )
            })
            .map_err(|e| ImageError::io("starting the unpack thread", tmp)(e))?;
        // feed it until the stream ends, fails, or the unpacker stops taking chunks
        while let Ok(mut buf) = empty_rx.recv() {
            match fill(&mut hashed, &mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    if full_tx.send(Ok((buf, n))).is_err() {
                        break;
                    }
                }
                Err(e) => {
                    let _ = full_tx.send(Err(e));
                    break;
                }
            }
        }
        drop(full_tx);
        let stats = unpacker
            .join()
            .map_err(|_| ImageError::Invalid {
                message: "the unpack thread panicked".into(),
            })?
            .map_err(layer_err)?;
        Ok((stats, hashed.hasher.finish()))
    })?;
    // whatever the decompressor left unread still belongs to the blob and its hash
    io::copy(&mut tee, &mut io::sink()).map_err(|e| layer_err(UnpackError::Tar(e)))?;
    let size = tee.hasher.len();
    let blob_digest = std::mem::take(&mut tee.hasher).finish();
    if size != job.desc.size {
        return Err(ImageError::SizeMismatch {
            what: "layer",
            digest: job.desc.digest.clone(),
            expected: job.desc.size,
            actual: size,
        });
    }
    if blob_digest != job.desc.digest {
        return Err(ImageError::DigestMismatch {
            what: "layer",
            expected: job.desc.digest.clone(),
            actual: blob_digest,
            size,
        });
    }
    if diff != job.diff_id {
        return Err(ImageError::DigestMismatch {
            what: "uncompressed layer (diff ID) of",
            expected: job.diff_id.clone(),
            actual: diff,
            size: 0,
        });
    }
    if let Some(f) = tee.ingest.take() {
        f.sync_all()
            .map_err(ImageError::io("syncing download", &ingest_path))?;
        drop(f);
        store.commit_file(&ingest_path, &job.desc.digest)?;
    }
    store.commit_snapshot(tmp, &job.chain_id, &job.diff_id, stats.content_bytes)?;
    Ok(stats.content_bytes)
}
