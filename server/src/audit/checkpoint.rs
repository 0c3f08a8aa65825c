//! A signed checkpoint: "at sequence `seq` the chain's hash was `hash` and it held
//! `events` events", signed at `at` with Timebox's Ed25519 key. What is signed is the
//! fixed text of [`Checkpoint::message`]; a checkpoint travels as one JSON line
//! ([`SignedCheckpoint`]), the same in the database, the local file and the log.
//!
//! Keys are files of hex digits: the signing key is its 32-byte seed (64 digits), the
//! public key its 32 bytes (64 digits). The seed is read once and never printed
//! (`CheckpointSigner`'s `Debug` shows the public key only).

use crate::store::StoredCheckpoint;
use chrono::{DateTime, SecondsFormat, Utc};
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Why a key file could not be used. Never holds the key's content.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error(
        "cannot read the key file {path}: {source}; check the path and that Timebox may read it"
    )]
    Unreadable {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the key file {path} does not hold 64 hex digits (a 32-byte Ed25519 {what}); create a signing key with `timebox audit keygen --out FILE`, which prints the public key")]
    Malformed { path: PathBuf, what: &'static str },
    #[error("the public key in {path} is not a valid Ed25519 point; copy it again from `timebox audit keygen`'s output")]
    NotAPoint { path: PathBuf },
    #[error("cannot write the key file {path}: {source} (an existing file is never overwritten)")]
    Unwritable {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the system's random number generator failed: {0}")]
    Random(String),
}

/// What a checkpoint states, before it is signed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    pub seq: i64,
    pub hash: String,
    pub at: DateTime<Utc>,
    pub events: i64,
}

impl Checkpoint {
    /// The exact bytes that are signed. A versioned, line-based text so that any
    /// tool can rebuild it (docs/audit.md shows it).
    pub fn message(&self) -> String {
        format!(
            "timebox audit checkpoint v1\nseq={}\nhash={}\nevents={}\nat={}\n",
            self.seq,
            self.hash,
            self.events,
            self.at.to_rfc3339_opts(SecondsFormat::Micros, true)
        )
    }
}

/// A signed checkpoint, as published (one JSON object per line).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedCheckpoint {
    pub seq: i64,
    pub hash: String,
    pub at: DateTime<Utc>,
    pub events: i64,
    /// The signer's public key, hex: which key signed it. Verification uses the key
    /// the auditor gives, never this one.
    pub public_key: String,
    /// The Ed25519 signature of [`Checkpoint::message`], hex.
    pub signature: String,
}

impl SignedCheckpoint {
    pub fn checkpoint(&self) -> Checkpoint {
        Checkpoint {
            seq: self.seq,
            hash: self.hash.clone(),
            at: self.at,
            events: self.events,
        }
    }

    /// Whether `key` signed exactly these facts.
    pub fn verify(&self, key: &VerifyingKey) -> Result<(), &'static str> {
        let bytes = hex::decode(&self.signature).map_err(|_| "its signature is not hex")?;
        let signature =
            Signature::from_slice(&bytes).map_err(|_| "its signature is not 64 bytes")?;
        key.verify_strict(self.checkpoint().message().as_bytes(), &signature)
            .map_err(|_| {
                "its signature does not verify with the public key: it was forged, altered, or signed by another key"
            })
    }

    /// The JSON line published to the file and the log.
    pub fn to_json_line(&self) -> String {
        // A struct of strings and numbers always serialises.
        serde_json::to_string(self).unwrap_or_default()
    }
}

impl From<StoredCheckpoint> for SignedCheckpoint {
    fn from(c: StoredCheckpoint) -> Self {
        Self {
            seq: c.seq,
            hash: c.hash,
            at: c.at,
            events: c.events,
            public_key: c.public_key,
            signature: c.signature,
        }
    }
}

impl From<&SignedCheckpoint> for StoredCheckpoint {
    fn from(c: &SignedCheckpoint) -> Self {
        Self {
            seq: c.seq,
            hash: c.hash.clone(),
            at: c.at,
            events: c.events,
            public_key: c.public_key.clone(),
            signature: c.signature.clone(),
        }
    }
}

/// Signs checkpoints with the key from `audit.signing_key_file`.
#[derive(Clone)]
pub struct CheckpointSigner {
    key: SigningKey,
}

impl std::fmt::Debug for CheckpointSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CheckpointSigner")
            .field("public_key", &self.public_key_hex())
            .finish_non_exhaustive()
    }
}

impl CheckpointSigner {
    /// Reads the seed (64 hex digits; surrounding whitespace ignored).
    pub fn from_file(path: &Path) -> Result<Self, KeyError> {
        let seed = read_hex32(path, "signing key seed")?;
        Ok(Self::from_seed(&seed))
    }

    pub fn from_seed(seed: &[u8; 32]) -> Self {
        Self {
            key: SigningKey::from_bytes(seed),
        }
    }

    /// The public key, hex: what the auditor verifies with.
    pub fn public_key_hex(&self) -> String {
        hex::encode(self.key.verifying_key().to_bytes())
    }

    pub fn verifying_key(&self) -> VerifyingKey {
        self.key.verifying_key()
    }

    pub fn sign(&self, c: Checkpoint) -> SignedCheckpoint {
        let signature = self.key.sign(c.message().as_bytes());
        SignedCheckpoint {
            seq: c.seq,
            hash: c.hash,
            at: c.at,
            events: c.events,
            public_key: self.public_key_hex(),
            signature: hex::encode(signature.to_bytes()),
        }
    }
}

/// Reads a public key file (64 hex digits).
pub fn read_public_key(path: &Path) -> Result<VerifyingKey, KeyError> {
    let bytes = read_hex32(path, "public key")?;
    VerifyingKey::from_bytes(&bytes).map_err(|_| KeyError::NotAPoint {
        path: path.to_owned(),
    })
}

/// Parses a public key given as 64 hex digits.
pub fn parse_public_key(text: &str) -> Option<VerifyingKey> {
    let bytes: [u8; 32] = hex::decode(text.trim()).ok()?.try_into().ok()?;
    VerifyingKey::from_bytes(&bytes).ok()
}

fn read_hex32(path: &Path, what: &'static str) -> Result<[u8; 32], KeyError> {
    let text = std::fs::read_to_string(path).map_err(|source| KeyError::Unreadable {
        path: path.to_owned(),
        source,
    })?;
    hex::decode(text.trim())
        .ok()
        .and_then(|b| <[u8; 32]>::try_from(b).ok())
        .ok_or_else(|| KeyError::Malformed {
            path: path.to_owned(),
            what,
        })
}

/// Creates a new signing key at `out` (readable by its owner only; an existing file
/// is never overwritten) and returns the signer, whose public key goes to the auditor.
pub fn generate_key(out: &Path) -> Result<CheckpointSigner, KeyError> {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(|e| KeyError::Random(e.to_string()))?;
    let unwritable = |source| KeyError::Unwritable {
        path: out.to_owned(),
        source,
    };
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(out).map_err(unwritable)?;
    use std::io::Write;
    file.write_all(format!("{}\n", hex::encode(seed)).as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(unwritable)?;
    Ok(CheckpointSigner::from_seed(&seed))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn checkpoint() -> Checkpoint {
        Checkpoint {
            seq: 42,
            hash: "ab".repeat(32),
            at: Utc.timestamp_opt(1_800_000_000, 123_000).unwrap(),
            events: 42,
        }
    }

    #[test]
    fn a_signature_covers_every_fact() {
        let signer = CheckpointSigner::from_seed(&[7; 32]);
        let signed = signer.sign(checkpoint());
        let key = signer.verifying_key();
        assert_eq!(signed.verify(&key), Ok(()));
        let line = signed.to_json_line();
        let back: SignedCheckpoint = serde_json::from_str(&line).unwrap();
        assert_eq!(back.verify(&key), Ok(()));
        for tamper in [
            |c: &mut SignedCheckpoint| c.seq += 1,
            |c: &mut SignedCheckpoint| c.hash = "cd".repeat(32),
            |c: &mut SignedCheckpoint| c.events -= 1,
            |c: &mut SignedCheckpoint| c.at += chrono::Duration::seconds(1),
        ] {
            let mut c = signed.clone();
            tamper(&mut c);
            assert!(c.verify(&key).is_err());
        }
        let other = CheckpointSigner::from_seed(&[8; 32]);
        assert!(signed.verify(&other.verifying_key()).is_err());
        assert!(!format!("{signer:?}").contains(&hex::encode([7u8; 32])));
    }

    #[test]
    fn keygen_writes_a_key_that_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.key");
        let signer = generate_key(&path).unwrap();
        let read = CheckpointSigner::from_file(&path).unwrap();
        assert_eq!(read.public_key_hex(), signer.public_key_hex());
        assert!(generate_key(&path).is_err(), "never overwrites");
        let public = dir.path().join("audit.pub");
        std::fs::write(&public, signer.public_key_hex()).unwrap();
        assert_eq!(read_public_key(&public).unwrap(), signer.verifying_key());
        std::fs::write(&public, "not hex").unwrap();
        let e = read_public_key(&public).unwrap_err().to_string();
        assert!(e.contains("64 hex digits"), "{e}");
    }
}
