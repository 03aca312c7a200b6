//! The blob store: media bytes in a directory, each file named by the SHA-256 of its content
//! (`ab/cd/abcd…`), so the same picture sent twice is stored once and a stored file can be checked
//! against its name at any time. Writes go to a temporary file first and are renamed into place, so
//! a crash never leaves a half-written blob under a real name. References held in the database are
//! paths relative to the root; only paths this module produced (hex names) are ever opened.

use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone)]
pub struct BlobStore {
    root: PathBuf,
}

/// A blob just written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PutBlob {
    /// Lower-case hex SHA-256 of the content.
    pub sha256: String,
    /// Where it is, relative to the root (what the database stores).
    pub path: String,
    pub size: u64,
}

impl BlobStore {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The relative path of a blob with this SHA-256 (hex).
    pub fn path_for(sha256: &str) -> String {
        format!("{}/{}/{}", &sha256[..2], &sha256[2..4], sha256)
    }

    /// Stores `bytes`; a blob with the same content already there is kept as it is.
    pub async fn put(&self, bytes: &[u8]) -> std::io::Result<PutBlob> {
        let sha256 = hex::encode(Sha256::digest(bytes));
        let rel = Self::path_for(&sha256);
        let full = self.root.join(&rel);
        let size = bytes.len() as u64;
        if tokio::fs::metadata(&full).await.is_ok_and(|m| m.len() == size) {
            return Ok(PutBlob {
                sha256,
                path: rel,
                size,
            });
        }
        let dir = full
            .parent()
            .ok_or_else(|| std::io::Error::other("a blob path has no directory"))?;
        tokio::fs::create_dir_all(dir).await?;
        let tmp = dir.join(format!(".{sha256}.{}.tmp", openline_domain::ids::new_id("tmp")));
        let written = async {
            use tokio::io::AsyncWriteExt;
            let mut f = tokio::fs::File::create(&tmp).await?;
            f.write_all(bytes).await?;
            f.sync_all().await?;
            tokio::fs::rename(&tmp, &full).await
        }
        .await;
        if written.is_err() {
            let _ = tokio::fs::remove_file(&tmp).await;
        }
        written?;
        Ok(PutBlob {
            sha256,
            path: rel,
            size,
        })
    }

    /// Reads a blob by the relative path the database holds. A path this store could not have
    /// written is refused rather than opened.
    pub async fn get(&self, rel: &str) -> std::io::Result<Vec<u8>> {
        tokio::fs::read(self.checked(rel)?).await
    }

    /// Opens a blob for streaming; answers the file and its length.
    pub async fn open(&self, rel: &str) -> std::io::Result<(tokio::fs::File, u64)> {
        let file = tokio::fs::File::open(self.checked(rel)?).await?;
        let len = file.metadata().await?.len();
        Ok((file, len))
    }

    /// The full path of a blob reference, if it is one this store could have written.
    fn checked(&self, rel: &str) -> std::io::Result<PathBuf> {
        let valid = rel.len() == 70
            && rel.bytes().enumerate().all(|(i, b)| {
                if i == 2 || i == 5 {
                    b == b'/'
                } else {
                    b.is_ascii_hexdigit()
                }
            });
        if !valid {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "not a blob reference",
            ));
        }
        Ok(self.root.join(rel))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[tokio::test]
    async fn blobs_are_named_by_their_hash_and_stored_once() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::new(dir.path().join("blobs"));
        let a = store.put(b"picture").await.unwrap();
        assert_eq!(a.sha256, hex::encode(Sha256::digest(b"picture")));
        assert_eq!(a.path, BlobStore::path_for(&a.sha256));
        assert_eq!(store.put(b"picture").await.unwrap(), a);
        assert_eq!(store.get(&a.path).await.unwrap(), b"picture");
        assert!(store.get("../../etc/passwd").await.is_err());
    }
}
