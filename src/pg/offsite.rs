//! Offsite copies: a backup encrypted with age on this machine and uploaded to S3-compatible
//! object storage, verified where it landed, listed, pruned and brought back.
//!
//! The main types are [`Remote`] (a bucket and prefix reached through `object_store`) and
//! [`Encrypting`] (the tee the dump's hashing thread writes each block into). A backup `ID` is
//! stored as two objects, `PREFIX/ID/FILE.age` and `PREFIX/ID/manifest.json`. The dump is
//! encrypted and uploaded in parts while `pg_dump` writes it, so the file is never read again;
//! the manifest is uploaded last, only after the object was read back and its size and sha256
//! matched: as for the local folder, the manifest is the commit point. A multipart upload cut
//! short is aborted (or, if the process was killed, never completed, so no object exists); an
//! object without its manifest lists as incomplete, never as a backup.
//!
//! What is encrypted is the dump; the manifest stays readable so that `backups list --remote`
//! needs no key. The private key is needed only to restore: the backup side holds recipients
//! (public keys) alone.

use std::io::{Read, Write};
use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;

use bytes::Bytes;
use futures_util::StreamExt;
use object_store::aws::AmazonS3Builder;
use object_store::path::Path as Key;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload, WriteMultipart};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::store::{MANIFEST, Manifest, hex};

/// Size of each uploaded part. S3 wants at least 5 MiB except for the last, and at most 10,000
/// parts: 16 MiB parts carry dumps up to 160 GB.
const PART: usize = 16 << 20;
/// Parts in flight at once.
const PARTS_IN_FLIGHT: usize = 4;
/// Blocks between the hashing thread and the upload task.
const QUEUE: usize = 32;

/// Where a backup's offsite copy is, as recorded in its manifest.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub(crate) struct RemoteCopy {
    /// `s3://bucket/prefix/ID/FILE.age`.
    pub(crate) url: String,
    /// Size and sha256 of the encrypted object, as read back after the upload.
    pub(crate) size_bytes: u64,
    pub(crate) sha256: String,
    /// The age recipients (public keys) the dump was encrypted to.
    pub(crate) recipients: Vec<String>,
    pub(crate) verified_at: String,
}

/// How to reach a bucket: the `offsite:` settings of `pg-dump`, or the flags and `AWS_*`
/// variables of `portcullis backups`. Its `Debug` leaves the keys out.
#[derive(Clone, Default, PartialEq, Eq)]
pub(crate) struct Settings {
    /// `s3://bucket[/prefix]`.
    pub(crate) url: String,
    pub(crate) endpoint: Option<String>,
    pub(crate) region: Option<String>,
    pub(crate) access_key_id: Option<String>,
    pub(crate) secret_access_key: Option<String>,
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("url", &self.url)
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("access_key_id", &self.access_key_id.as_ref().map(|_| "***"))
            .field(
                "secret_access_key",
                &self.secret_access_key.as_ref().map(|_| "***"),
            )
            .finish()
    }
}

/// An age private key given as text (`identity:` of `backup-drill`); its `Debug` hides it.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct KeyText(pub(crate) String);

impl std::fmt::Debug for KeyText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeyText(***)")
    }
}

/// Splits `s3://bucket/some/prefix` into the bucket and the prefix.
pub(crate) fn parse_url(url: &str) -> Result<(String, String), String> {
    let rest = url.strip_prefix("s3://").ok_or_else(|| {
        format!("`{url}` is not an `s3://bucket/prefix` URL (S3, MinIO, R2 and GCS's S3 interface all use that form)")
    })?;
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    if bucket.is_empty() {
        return Err(format!("`{url}` names no bucket"));
    }
    Ok((bucket.to_owned(), prefix.trim_matches('/').to_owned()))
}

/// Parses age recipients (`age1…` public keys); the error names the one that is wrong.
pub(crate) fn parse_recipients(texts: &[String]) -> Result<Vec<age::x25519::Recipient>, String> {
    texts
        .iter()
        .map(|t| {
            age::x25519::Recipient::from_str(t.trim()).map_err(|e| {
                format!("`{t}` is not an age recipient ({e}); write the public key `age1…` that `age-keygen` printed")
            })
        })
        .collect()
}

/// age identities (private keys), shared with the thread that decrypts.
pub(crate) type Identities = Arc<Vec<Box<dyn age::Identity + Send + Sync>>>;

/// Parses age identities (the `AGE-SECRET-KEY-1…` lines of a key file, comments allowed).
pub(crate) fn parse_identities(text: &str, source: &str) -> Result<Identities, String> {
    let bad = |e: String| format!("{source} holds no usable age identity: {e}");
    let identities = age::IdentityFile::from_buffer(text.as_bytes())
        .map_err(|e| bad(e.to_string()))?
        .into_identities()
        .map_err(|e| bad(e.to_string()))?;
    if identities.is_empty() {
        return Err(bad("it is empty".into()));
    }
    Ok(Arc::new(identities))
}

/// A bucket and prefix.
#[derive(Debug, Clone)]
pub(crate) struct Remote {
    store: Arc<dyn ObjectStore>,
    bucket: String,
    prefix: String,
}

/// One backup of a remote listing.
#[derive(Debug, Clone)]
pub(crate) enum RemoteListed {
    Valid {
        manifest: Box<Manifest>,
    },
    Corrupt {
        id: String,
        reason: String,
    },
    /// Objects without a manifest: an upload that did not finish, or a deletion cut short.
    Incomplete {
        id: String,
    },
}

impl RemoteListed {
    pub(crate) fn id(&self) -> &str {
        match self {
            RemoteListed::Valid { manifest } => &manifest.backup_id,
            RemoteListed::Corrupt { id, .. } | RemoteListed::Incomplete { id } => id,
        }
    }
}

fn store_error(e: &object_store::Error) -> String {
    // object_store's messages repeat their source; the first line says what failed.
    let text = e.to_string();
    let mut short = text.lines().next().unwrap_or_default().to_owned();
    if let object_store::Error::NotFound { .. } = e {
        short = "not found".into();
    }
    short
}

impl Remote {
    /// Builds the client. Settings left out come from the `AWS_*` variables in `env`
    /// (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_ENDPOINT_URL`, `AWS_REGION`, ...).
    pub(crate) fn open(settings: &Settings, env: &[(String, String)]) -> Result<Remote, String> {
        let (bucket, prefix) = parse_url(&settings.url)?;
        let mut builder = AmazonS3Builder::new();
        for (key, value) in env {
            if key.starts_with("AWS_")
                && let Ok(config) = key.to_ascii_lowercase().parse()
            {
                builder = builder.with_config(config, value);
            }
        }
        builder = builder.with_bucket_name(&bucket);
        if let Some(endpoint) = &settings.endpoint {
            builder = builder.with_endpoint(endpoint);
        }
        let endpoint = settings.endpoint.clone().or_else(|| {
            env.iter()
                .find(|(k, _)| k == "AWS_ENDPOINT_URL" || k == "AWS_ENDPOINT")
                .map(|(_, v)| v.clone())
        });
        if let Some(endpoint) = endpoint {
            // A plain-HTTP endpoint (a MinIO on the local network) is allowed because it was
            // written out; path-style requests are what self-hosted servers answer.
            builder = builder
                .with_allow_http(endpoint.starts_with("http://"))
                .with_virtual_hosted_style_request(false);
        }
        if let Some(region) = &settings.region {
            builder = builder.with_region(region);
        }
        if let Some(id) = &settings.access_key_id {
            builder = builder.with_access_key_id(id);
        }
        if let Some(secret) = &settings.secret_access_key {
            builder = builder.with_secret_access_key(secret);
        }
        let store = builder
            .build()
            .map_err(|e| format!("cannot use `{}`: {}", settings.url, store_error(&e)))?;
        Ok(Remote {
            store: Arc::new(store),
            bucket,
            prefix,
        })
    }

    fn key(&self, id: &str, name: &str) -> Key {
        if self.prefix.is_empty() {
            Key::from(format!("{id}/{name}"))
        } else {
            Key::from(format!("{}/{id}/{name}", self.prefix))
        }
    }

    pub(crate) fn url_of(&self, key: &Key) -> String {
        format!("s3://{}/{key}", self.bucket)
    }

    /// The URL of the folder (`s3://bucket/prefix`).
    pub(crate) fn url(&self) -> String {
        if self.prefix.is_empty() {
            format!("s3://{}", self.bucket)
        } else {
            format!("s3://{}/{}", self.bucket, self.prefix)
        }
    }

    /// One listing request: fails fast, before any dump, on a wrong endpoint, bucket or key.
    pub(crate) async fn check(&self) -> Result<(), String> {
        let prefix = (!self.prefix.is_empty()).then(|| Key::from(self.prefix.as_str()));
        self.store
            .list_with_delimiter(prefix.as_ref())
            .await
            .map(|_| ())
            .map_err(|e| format!("cannot list `{}`: {}", self.url(), store_error(&e)))
    }

    /// Every backup under the prefix, oldest first, each with its manifest checked and its
    /// object's size compared with it.
    pub(crate) async fn list(&self) -> Result<Vec<RemoteListed>, String> {
        let prefix = (!self.prefix.is_empty()).then(|| Key::from(self.prefix.as_str()));
        let mut objects = self.store.list(prefix.as_ref());
        let mut by_id: std::collections::BTreeMap<String, Vec<(String, u64)>> =
            std::collections::BTreeMap::new();
        while let Some(meta) = objects.next().await {
            let meta =
                meta.map_err(|e| format!("cannot list `{}`: {}", self.url(), store_error(&e)))?;
            let rest = meta.location.as_ref();
            let rest = if self.prefix.is_empty() {
                rest
            } else {
                rest.strip_prefix(self.prefix.as_str())
                    .and_then(|r| r.strip_prefix('/'))
                    .unwrap_or(rest)
            };
            if let Some((id, name)) = rest.split_once('/')
                && !name.contains('/')
            {
                by_id
                    .entry(id.to_owned())
                    .or_default()
                    .push((name.to_owned(), meta.size));
            }
        }
        let mut listed = Vec::new();
        for (id, files) in by_id {
            if !files.iter().any(|(n, _)| n == MANIFEST) {
                listed.push(RemoteListed::Incomplete { id });
                continue;
            }
            listed.push(match self.manifest(&id).await {
                Err(reason) => RemoteListed::Corrupt { id, reason },
                Ok(m) => {
                    let object = m.offsite.as_ref().map(|c| c.size_bytes);
                    let name = format!("{}.age", m.file);
                    match (object, files.iter().find(|(n, _)| *n == name)) {
                        (None, _) => RemoteListed::Corrupt {
                            id,
                            reason: "the manifest records no offsite copy".into(),
                        },
                        (Some(_), None) => RemoteListed::Corrupt {
                            reason: format!("`{name}` is missing"),
                            id,
                        },
                        (Some(want), Some((_, size))) if *size != want => RemoteListed::Corrupt {
                            reason: format!("`{name}` has {size} bytes, the manifest says {want}"),
                            id,
                        },
                        _ => RemoteListed::Valid {
                            manifest: Box::new(m),
                        },
                    }
                }
            });
        }
        Ok(listed)
    }

    /// Reads and checks `ID/manifest.json`.
    pub(crate) async fn manifest(&self, id: &str) -> Result<Manifest, String> {
        let key = self.key(id, MANIFEST);
        let bytes = async { self.store.get(&key).await?.bytes().await }
            .await
            .map_err(|e| format!("cannot read `{}`: {}", self.url_of(&key), store_error(&e)))?;
        let manifest = Manifest::from_json(&bytes)?;
        if manifest.backup_id != id {
            return Err(format!(
                "the manifest is for backup `{}`, not `{id}`",
                manifest.backup_id
            ));
        }
        if manifest.file.contains('/') {
            return Err("the manifest names a file outside the backup".into());
        }
        Ok(manifest)
    }

    /// Uploads the manifest: the commit point of an offsite copy.
    pub(crate) async fn put_manifest(&self, manifest: &Manifest) -> Result<(), String> {
        let key = self.key(&manifest.backup_id, MANIFEST);
        self.store
            .put(&key, PutPayload::from(manifest.to_signed_json()))
            .await
            .map(|_| ())
            .map_err(|e| format!("cannot upload `{}`: {}", self.url_of(&key), store_error(&e)))
    }

    /// Deletes a backup's objects, the manifest first so that what a cut-short deletion leaves
    /// lists as incomplete.
    pub(crate) async fn delete(&self, id: &str, file: Option<&str>) -> Result<(), String> {
        self.delete_key(&self.key(id, MANIFEST)).await?;
        let prefix = self.key(id, "");
        let mut rest = self.store.list(Some(&prefix));
        let mut keys = Vec::new();
        while let Some(meta) = rest.next().await {
            match meta {
                Ok(m) => keys.push(m.location),
                Err(e) => {
                    return Err(format!(
                        "cannot list `{}`: {}",
                        self.url_of(&prefix),
                        store_error(&e)
                    ));
                }
            }
        }
        if let Some(file) = file {
            let object = self.key(id, &format!("{file}.age"));
            if !keys.contains(&object) {
                keys.push(object);
            }
        }
        for key in keys {
            self.delete_key(&key).await?;
        }
        Ok(())
    }

    /// Deletes one object; one already gone is not an error.
    async fn delete_key(&self, key: &Key) -> Result<(), String> {
        match self.store.delete(key).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(format!(
                "cannot delete `{}`: {}",
                self.url_of(key),
                store_error(&e)
            )),
        }
    }

    /// Starts the encrypted upload of backup `id`'s dump `file`: returns the writer for the
    /// plaintext (the dump's hashing thread writes every block into it) and the task that
    /// uploads the parts.
    pub(crate) fn start_upload(
        &self,
        id: &str,
        file: &str,
        recipients: &[age::x25519::Recipient],
    ) -> Result<(Encrypting, UploadTask), String> {
        let key = self.key(id, &format!("{file}.age"));
        let encryptor =
            age::Encryptor::with_recipients(recipients.iter().map(|r| r as &dyn age::Recipient))
                .map_err(|e| format!("cannot encrypt: {e}"))?;
        let (tx, rx) = mpsc::channel(QUEUE);
        let sender = Sender {
            tx,
            buf: Vec::with_capacity(1 << 20),
            hasher: Sha256::new(),
            size: 0,
        };
        let writer = encryptor
            .wrap_output(sender)
            .map_err(|e| format!("cannot encrypt: {e}"))?;
        let store = Arc::clone(&self.store);
        let url = self.url_of(&key);
        let task = tokio::spawn(upload(store, key, rx));
        Ok((
            Encrypting { writer },
            UploadTask {
                task,
                url,
                recipients: recipients.iter().map(ToString::to_string).collect(),
            },
        ))
    }

    /// Reads the object back and checks its size and sha256 against what was sent.
    pub(crate) async fn verify_object(&self, copy: &RemoteCopy) -> Result<(), String> {
        let key = self.key_of(&copy.url)?;
        let (sha256, size) = self.hash_object(&key).await?;
        if size != copy.size_bytes || sha256 != copy.sha256 {
            return Err(format!(
                "`{}` has sha256 {sha256} and {size} bytes, the manifest says {} and {} bytes: the remote copy was changed or damaged",
                copy.url, copy.sha256, copy.size_bytes
            ));
        }
        Ok(())
    }

    /// Deletes one object by its URL (a copy that did not check out).
    pub(crate) async fn delete_object(&self, url: &str) -> Result<(), String> {
        self.delete_key(&self.key_of(url)?).await
    }

    fn key_of(&self, url: &str) -> Result<Key, String> {
        let (bucket, key) = parse_url(url)?;
        if bucket != self.bucket {
            return Err(format!("`{url}` is not in bucket `{}`", self.bucket));
        }
        Ok(Key::from(key))
    }

    async fn hash_object(&self, key: &Key) -> Result<(String, u64), String> {
        let read_error = |e: object_store::Error| {
            format!("cannot read `{}`: {}", self.url_of(key), store_error(&e))
        };
        let mut stream = self.store.get(key).await.map_err(read_error)?.into_stream();
        let mut hasher = Sha256::new();
        let mut size = 0u64;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(read_error)?;
            size += chunk.len() as u64;
            hasher.update(&chunk);
        }
        Ok((hex(&hasher.finalize()), size))
    }

    /// Downloads backup `manifest` into the folder `into` (which must not exist): decrypts the
    /// dump as it arrives, checks the encrypted object's sha256 and the dump's, then writes the
    /// manifest, so that `into` is a backup folder `restore` accepts. On any failure `into` is
    /// removed.
    pub(crate) async fn download(
        &self,
        manifest: &Manifest,
        identities: Identities,
        into: &Path,
        cancel: &CancellationToken,
    ) -> Result<(), String> {
        // A folder of its own, removed whole if the download fails; an existing one is refused.
        std::fs::create_dir(into)
            .map_err(|e| format!("cannot create `{}`: {e}", into.display()))?;
        let result = self
            .download_inner(manifest, identities, into, cancel)
            .await;
        if result.is_err() {
            let _ = std::fs::remove_dir_all(into);
        }
        result
    }

    async fn download_inner(
        &self,
        manifest: &Manifest,
        identities: Identities,
        into: &Path,
        cancel: &CancellationToken,
    ) -> Result<(), String> {
        let copy = manifest
            .offsite
            .clone()
            .ok_or("the manifest records no offsite copy")?;
        let key = self.key_of(&copy.url)?;
        let mut stream = self
            .store
            .get(&key)
            .await
            .map_err(|e| format!("cannot read `{}`: {}", copy.url, store_error(&e)))?
            .into_stream();
        let target = into.join(&manifest.file);
        // A tokio channel: the runtime awaits room, the decrypting thread blocks for blocks.
        let (tx, rx) = mpsc::channel::<Result<Bytes, String>>(QUEUE);
        let recipients = copy.recipients.join(", ");
        let decrypting = std::thread::spawn(move || decrypt_to_file(rx, &identities, &target));
        let feed = async {
            while let Some(chunk) = stream.next().await {
                let chunk =
                    chunk.map_err(|e| format!("cannot read `{}`: {}", copy.url, store_error(&e)));
                let failed = chunk.is_err();
                // The decrypting thread stops early on a wrong key; then the rest is not fetched.
                if tx.send(chunk).await.is_err() || failed {
                    break;
                }
            }
        };
        // Interrupted, the thread sees a short stream and fails; the caller removes `into`.
        let cancelled = tokio::select! {
            () = feed => false,
            () = cancel.cancelled() => true,
        };
        drop(tx);
        let decrypted = tokio::task::spawn_blocking(move || decrypting.join())
            .await
            .ok()
            .and_then(Result::ok)
            .unwrap_or_else(|| {
                Err(Failure::Other(
                    "the thread decrypting the dump stopped".into(),
                ))
            });
        if cancelled {
            return Err("cancelled".into());
        }
        let done = match decrypted {
            Ok(done) => done,
            Err(Failure::NoMatchingKey) => {
                return Err(format!(
                    "the age identity given cannot decrypt `{}`: it was encrypted to {recipients}; give the key of one of them",
                    copy.url
                ));
            }
            Err(Failure::Other(e)) => return Err(e),
            Err(Failure::Damaged { cipher, error }) => {
                return Err(if cipher.0 != copy.sha256 {
                    format!(
                        "`{}` has sha256 {}, the manifest says {}: the remote copy was changed or damaged ({error})",
                        copy.url, cipher.0, copy.sha256
                    )
                } else {
                    format!("cannot decrypt `{}`: {error}", copy.url)
                });
            }
        };
        if done.cipher.0 != copy.sha256 || done.cipher.1 != copy.size_bytes {
            return Err(format!(
                "`{}` has sha256 {} and {} bytes, the manifest says {} and {} bytes: the remote copy was changed or damaged",
                copy.url, done.cipher.0, done.cipher.1, copy.sha256, copy.size_bytes
            ));
        }
        if done.plain.0 != manifest.sha256 || done.plain.1 != manifest.size_bytes {
            return Err(format!(
                "the decrypted dump has sha256 {} and {} bytes, the manifest says {} and {} bytes",
                done.plain.0, done.plain.1, manifest.sha256, manifest.size_bytes
            ));
        }
        manifest
            .write(into)
            .map_err(|e| format!("cannot write the manifest into `{}`: {e}", into.display()))
    }
}

/// sha256 and size.
type Digested = (String, u64);

struct Decrypted {
    cipher: Digested,
    plain: Digested,
}

enum Failure {
    NoMatchingKey,
    /// Decryption failed part-way: the object's hash (read to its end) tells whether it was
    /// changed.
    Damaged {
        cipher: Digested,
        error: String,
    },
    Other(String),
}

/// Reads the encrypted chunks, hashing them, and writes the plaintext to `target`, hashing it.
fn decrypt_to_file(
    rx: mpsc::Receiver<Result<Bytes, String>>,
    identities: &[Box<dyn age::Identity + Send + Sync>],
    target: &Path,
) -> Result<Decrypted, Failure> {
    let mut reader = std::io::BufReader::with_capacity(
        1 << 20,
        Receiving {
            rx,
            chunk: Bytes::new(),
            hasher: Sha256::new(),
            size: 0,
            error: None,
        },
    );
    let damaged = |mut reader: std::io::BufReader<Receiving>, error: String| {
        // Read the rest so the object's hash is whole.
        let _ = std::io::copy(&mut reader, &mut std::io::sink());
        let inner = reader.into_inner();
        if let Some(e) = inner.error {
            return Failure::Other(e);
        }
        Failure::Damaged {
            cipher: (hex(&inner.hasher.finalize()), inner.size),
            error,
        }
    };
    let decryptor = match age::Decryptor::new_buffered(&mut reader) {
        Ok(d) => d,
        Err(e) => {
            let error = format!("it is not an age file ({e})");
            return Err(damaged(reader, error));
        }
    };
    let mut plain =
        match decryptor.decrypt(identities.iter().map(|i| i.as_ref() as &dyn age::Identity)) {
            Ok(p) => p,
            Err(age::DecryptError::NoMatchingKeys) => return Err(Failure::NoMatchingKey),
            Err(e) => {
                let error = e.to_string();
                return Err(damaged(reader, error));
            }
        };
    let out = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(target)
        .map_err(|e| Failure::Other(format!("cannot create `{}`: {e}", target.display())));
    let mut out = out?;
    let mut hasher = Sha256::new();
    let mut size = 0u64;
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = match plain.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                drop(plain);
                return Err(damaged(reader, e.to_string()));
            }
        };
        hasher.update(&buf[..n]);
        size += n as u64;
        if let Err(e) = out.write_all(&buf[..n]) {
            return Err(Failure::Other(format!(
                "cannot write `{}`: {e}",
                target.display()
            )));
        }
    }
    drop(plain);
    if let Err(e) = out.sync_all() {
        return Err(Failure::Other(format!(
            "cannot write `{}`: {e}",
            target.display()
        )));
    }
    let mut inner = reader.into_inner();
    // The age stream ends at its last chunk; anything after it would be damage.
    let mut rest = Vec::new();
    let _ = inner.read_to_end(&mut rest);
    if let Some(e) = inner.error {
        return Err(Failure::Other(e));
    }
    Ok(Decrypted {
        cipher: (hex(&inner.hasher.finalize()), inner.size),
        plain: (hex(&hasher.finalize()), size),
    })
}

/// The download's chunks as a reader, hashed as they are read.
struct Receiving {
    rx: mpsc::Receiver<Result<Bytes, String>>,
    chunk: Bytes,
    hasher: Sha256,
    size: u64,
    error: Option<String>,
}

impl Read for Receiving {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.chunk.is_empty() {
            match self.rx.blocking_recv() {
                Some(Ok(chunk)) => {
                    self.hasher.update(&chunk);
                    self.size += chunk.len() as u64;
                    self.chunk = chunk;
                }
                Some(Err(e)) => {
                    self.error = Some(e.clone());
                    return Err(std::io::Error::other(e));
                }
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.chunk.len());
        buf[..n].copy_from_slice(&self.chunk.split_to(n));
        Ok(n)
    }
}

/// What the hashing thread writes the dump into: age encryption in front of a [`Sender`].
pub(crate) struct Encrypting {
    writer: age::stream::StreamWriter<Sender>,
}

/// The sink's name in [`super::dump::Dumped::sink_errors`].
pub(crate) const SINK: &str = "offsite";

impl super::dump::Sink for Encrypting {
    fn name(&self) -> &'static str {
        SINK
    }

    fn write(&mut self, block: &[u8]) -> std::io::Result<()> {
        self.writer.write_all(block)
    }

    /// Ends the age stream and hands the last part over; the upload task then completes it.
    fn finish(self: Box<Self>) -> std::io::Result<()> {
        let mut sender = self.writer.finish()?;
        sender.flush()?;
        let digest = (hex(&sender.hasher.clone().finalize()), sender.size);
        sender
            .tx
            .blocking_send(Message::Done(digest))
            .map_err(|_| std::io::Error::other("the upload stopped"))
    }
}

enum Message {
    Block(Bytes),
    /// The whole object was handed over: its sha256 and size.
    Done(Digested),
}

/// Collects the ciphertext into 1 MiB blocks, hashes it, and hands it to the upload task.
struct Sender {
    tx: mpsc::Sender<Message>,
    buf: Vec<u8>,
    hasher: Sha256,
    size: u64,
}

impl Write for Sender {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.hasher.update(data);
        self.size += data.len() as u64;
        self.buf.extend_from_slice(data);
        if self.buf.len() >= 1 << 20 {
            self.flush()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let block = Bytes::from(std::mem::replace(
            &mut self.buf,
            Vec::with_capacity(1 << 20),
        ));
        self.tx
            .blocking_send(Message::Block(block))
            .map_err(|_| std::io::Error::other("the upload stopped"))
    }
}

/// The running upload of one object.
pub(crate) struct UploadTask {
    task: tokio::task::JoinHandle<Result<Digested, String>>,
    pub(crate) url: String,
    recipients: Vec<String>,
}

impl UploadTask {
    /// Waits for the upload: the copy as sent (not yet read back), or why it failed. A failed
    /// upload was aborted, so no object is left.
    pub(crate) async fn finish(self) -> Result<RemoteCopy, String> {
        let url = self.url.clone();
        let sent = self
            .task
            .await
            .map_err(|e| format!("the upload of `{url}` stopped: {e}"))??;
        Ok(RemoteCopy {
            url,
            size_bytes: sent.1,
            sha256: sent.0,
            recipients: self.recipients,
            verified_at: String::new(),
        })
    }
}

async fn upload(
    store: Arc<dyn ObjectStore>,
    key: Key,
    mut rx: mpsc::Receiver<Message>,
) -> Result<Digested, String> {
    let url = |e: &object_store::Error| format!("cannot upload `{key}`: {}", store_error(e));
    let multipart = store.put_multipart(&key).await.map_err(|e| url(&e))?;
    let mut writer = WriteMultipart::new_with_chunk_size(multipart, PART);
    loop {
        match rx.recv().await {
            Some(Message::Block(block)) => {
                if let Err(e) = writer.wait_for_capacity(PARTS_IN_FLIGHT).await {
                    let _ = writer.abort().await;
                    return Err(url(&e));
                }
                writer.put(block);
            }
            Some(Message::Done(digest)) => {
                return match writer.finish().await {
                    Ok(_) => Ok(digest),
                    Err(e) => Err(url(&e)),
                };
            }
            // The dump failed or was cancelled: nothing may be left that looks uploaded.
            None => {
                let _ = writer.abort().await;
                return Err("the dump stopped before its end; the upload was aborted".into());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "AGE-SECRET-KEY-1M0DLGYHEQ975RLFWXFNDLNF3VR5D63E0AAWJUA68UACCADEYET0QTL5L2G";
    const RECIPIENT: &str = "age1a22ch3kwwad6xuyd4vhkj6rzr2f5mq6uf9rgf3au0ldu2pdnwg9quhlmgh";
    const OTHER_KEY: &str =
        "AGE-SECRET-KEY-13SNLC9C6G3VEVFXC8EKNVYM0WCP7T9Z496R3JRKQL3P2A6CV63KQGMSR08";

    #[test]
    fn urls_split_into_bucket_and_prefix() {
        assert_eq!(
            parse_url("s3://b/x/y/").unwrap(),
            ("b".to_owned(), "x/y".to_owned())
        );
        assert_eq!(
            parse_url("s3://b").unwrap(),
            ("b".to_owned(), String::new())
        );
        assert!(
            parse_url("https://b/x")
                .unwrap_err()
                .contains("s3://bucket/prefix")
        );
        assert!(parse_url("s3:///x").unwrap_err().contains("no bucket"));
    }

    #[test]
    fn debug_output_holds_no_key() {
        let settings = Settings {
            url: "s3://b/p".into(),
            access_key_id: Some("AKIDVALUE".into()),
            secret_access_key: Some("SECRETVALUE".into()),
            ..Settings::default()
        };
        let text = format!("{settings:?} {:?}", KeyText(KEY.into()));
        assert!(text.contains("s3://b/p"), "{text}");
        for secret in ["AKIDVALUE", "SECRETVALUE", KEY] {
            assert!(!text.contains(secret), "{text}");
        }
    }

    #[test]
    fn recipients_and_identities_are_checked() {
        assert_eq!(parse_recipients(&[RECIPIENT.into()]).unwrap().len(), 1);
        let e = parse_recipients(&[RECIPIENT.into(), "age1nope".into()]).unwrap_err();
        assert!(e.starts_with("`age1nope` is not an age recipient"), "{e}");
        assert_eq!(
            parse_identities(&format!("# a comment\n{KEY}\n"), "`k`")
                .unwrap()
                .len(),
            1
        );
        assert!(parse_identities("# nothing\n", "`k`").is_err());
        assert!(parse_identities("not a key", "`k`").is_err());
    }

    /// Encrypts `plain` to `RECIPIENT` as the upload does.
    fn encrypt(plain: &[u8]) -> Vec<u8> {
        let recipients = parse_recipients(&[RECIPIENT.into()]).unwrap();
        let encryptor =
            age::Encryptor::with_recipients(recipients.iter().map(|r| r as &dyn age::Recipient))
                .unwrap();
        let mut out = Vec::new();
        let mut writer = encryptor.wrap_output(&mut out).unwrap();
        writer.write_all(plain).unwrap();
        writer.finish().unwrap();
        out
    }

    /// Feeds `cipher` in uneven chunks to `decrypt_to_file`, as a download does.
    fn decrypt(cipher: &[u8], key: &str) -> (Result<Decrypted, Failure>, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let identities = parse_identities(key, "`k`").unwrap();
        let (tx, rx) = mpsc::channel(4);
        let chunks: Vec<Bytes> = cipher.chunks(77_777).map(Bytes::copy_from_slice).collect();
        let feeder = std::thread::spawn(move || {
            for chunk in chunks {
                if tx.blocking_send(Ok(chunk)).is_err() {
                    break;
                }
            }
        });
        let result = decrypt_to_file(rx, &identities, &dir.path().join("out.dump"));
        feeder.join().unwrap();
        (result, dir)
    }

    fn digest(bytes: &[u8]) -> Digested {
        (hex(&Sha256::digest(bytes)), bytes.len() as u64)
    }

    #[test]
    fn a_download_decrypts_with_both_digests_and_refuses_a_wrong_key_or_a_change() {
        let plain: Vec<u8> = (0..1_000_000u32).flat_map(|i| i.to_le_bytes()).collect();
        let cipher = encrypt(&plain);
        let (result, dir) = decrypt(&cipher, KEY);
        let done = result.ok().expect("decrypts");
        assert_eq!(done.plain, digest(&plain));
        assert_eq!(done.cipher, digest(&cipher));
        assert_eq!(std::fs::read(dir.path().join("out.dump")).unwrap(), plain);

        let (result, dir) = decrypt(&cipher, OTHER_KEY);
        assert!(matches!(result, Err(Failure::NoMatchingKey)));
        assert!(!dir.path().join("out.dump").exists(), "nothing written");

        let mut changed = cipher.clone();
        let mid = changed.len() / 2;
        changed[mid] ^= 1;
        match decrypt(&changed, KEY).0 {
            Err(Failure::Damaged { cipher: got, .. }) => assert_eq!(got, digest(&changed)),
            Err(_) => panic!("not reported as damaged"),
            Ok(_) => panic!("a changed object decrypted"),
        }
    }
}
