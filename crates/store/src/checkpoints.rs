//! Signed checkpoints of the archive: each organization's chain head (organization, sequence number,
//! hash, time) signed with the archive's Ed25519 key and stored, so that an auditor who exported
//! them earlier can later check that history was not rewritten. `journal::verify` catches an edit
//! that leaves the hashes inconsistent; a checkpoint also catches a rewrite whose author recomputed
//! every hash after it, because the hash of the checkpointed entry then differs from the signed one.
//!
//! The signed bytes are `openline-checkpoint-v1\n{org_id}\n{seq}\n{hash}\n{at}`; keys and signatures
//! are hex. Checkpoints carry their public key, so a key can be rotated without invalidating older
//! ones; an auditor passes the key they trust to `check`.

use crate::journal::JournalEntry;
use crate::sql::{Conn, Row};
use crate::{params, StoreError};
pub use ed25519_dalek::SigningKey;
use ed25519_dalek::{Signature, Signer, Verifier, VerifyingKey};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// One signed chain head.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Checkpoint {
    pub id: String,
    pub org_id: String,
    /// The sequence number of the chain's last entry when it was signed.
    pub seq: i64,
    /// That entry's hash.
    pub hash: String,
    /// When it was signed (epoch milliseconds).
    pub at: i64,
    /// The Ed25519 public key (hex) whose private half signed it.
    pub public_key: String,
    /// Ed25519 signature (hex) over `openline-checkpoint-v1\n{org_id}\n{seq}\n{hash}\n{at}`.
    pub signature: String,
}

/// What `openline archive checkpoints --export` writes: the checkpoints and the public key to check
/// them with.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CheckpointExport {
    /// `openline-checkpoints-v1`.
    pub format: String,
    /// The current signing key's public half (hex), if a key is configured.
    pub public_key: Option<String>,
    pub checkpoints: Vec<Checkpoint>,
}

pub const EXPORT_FORMAT: &str = "openline-checkpoints-v1";

/// What checking one exported checkpoint against the archive found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct CheckpointFinding {
    pub org_id: String,
    pub seq: i64,
    pub ok: bool,
    pub what: String,
}

fn signed_bytes(org_id: &str, seq: i64, hash: &str, at: i64) -> Vec<u8> {
    format!("openline-checkpoint-v1\n{org_id}\n{seq}\n{hash}\n{at}").into_bytes()
}

/// A signing key from its hex form (the 32-byte seed `openline archive keygen` prints).
pub fn parse_signing_key(text: &str) -> Result<SigningKey, String> {
    let bytes = hex::decode(text.trim()).map_err(|_| "the archive signing key must be hex".to_owned())?;
    let seed: [u8; 32] = bytes
        .try_into()
        .map_err(|_| "the archive signing key must be 32 bytes (64 hex digits)".to_owned())?;
    Ok(SigningKey::from_bytes(&seed))
}

/// A new signing key from 32 random bytes, hex, and its public key, hex.
pub fn generate_key(random_seed: [u8; 32]) -> (String, String) {
    let key = SigningKey::from_bytes(&random_seed);
    (hex::encode(key.to_bytes()), public_key_hex(&key))
}

pub fn public_key_hex(key: &SigningKey) -> String {
    hex::encode(key.verifying_key().to_bytes())
}

fn from_row(r: &Row) -> Result<Checkpoint, StoreError> {
    Ok(Checkpoint {
        id: r.string(0)?,
        org_id: r.string(1)?,
        seq: r.i64(2)?,
        hash: r.string(3)?,
        at: r.i64(4)?,
        public_key: r.string(5)?,
        signature: r.string(6)?,
    })
}

const COLS: &str = "id, org_id, seq, hash, at, public_key, signature";

/// Signs the head of every chain that moved since its last checkpoint (or one organization's), and
/// stores the checkpoints. Returns the new ones.
pub fn create(
    c: &mut dyn Conn,
    key: &SigningKey,
    org_id: Option<&str>,
    now: i64,
) -> Result<Vec<Checkpoint>, StoreError> {
    crate::journal::flush_heads(c)?;
    let heads = c.query(
        "select org_id, seq, hash from journal_heads where seq > 0 order by org_id",
        &[],
    )?;
    let public_key = public_key_hex(key);
    let mut out = Vec::new();
    for h in heads {
        let (org, seq, hash) = (h.string(0)?, h.i64(1)?, h.string(2)?);
        if org_id.is_some_and(|o| o != org) {
            continue;
        }
        let last = c.query_opt(
            "select seq, hash, public_key from journal_checkpoints where org_id = ? order by seq desc, at desc limit 1",
            params![&org],
        )?;
        if let Some(l) = last {
            if l.i64(0)? == seq && l.string(1)? == hash && l.string(2)? == public_key {
                continue;
            }
        }
        let signature = hex::encode(key.sign(&signed_bytes(&org, seq, &hash, now)).to_bytes());
        let cp = Checkpoint {
            id: openline_domain::ids::new_id("ckp"),
            org_id: org,
            seq,
            hash,
            at: now,
            public_key: public_key.clone(),
            signature,
        };
        c.execute(
            &format!("insert into journal_checkpoints ({COLS}) values (?, ?, ?, ?, ?, ?, ?)"),
            params![
                &cp.id,
                &cp.org_id,
                cp.seq,
                &cp.hash,
                cp.at,
                &cp.public_key,
                &cp.signature
            ],
        )?;
        out.push(cp);
    }
    Ok(out)
}

/// Stored checkpoints, oldest first (every organization's, or those of the given ones).
pub fn list(c: &mut dyn Conn, org_ids: Option<&[String]>) -> Result<Vec<Checkpoint>, StoreError> {
    let all: Vec<Checkpoint> = c
        .query(
            &format!("select {COLS} from journal_checkpoints order by at, org_id, seq"),
            &[],
        )?
        .iter()
        .map(from_row)
        .collect::<Result<_, _>>()?;
    Ok(match org_ids {
        Some(ids) => all.into_iter().filter(|cp| ids.contains(&cp.org_id)).collect(),
        None => all,
    })
}

/// Whether the signature on a checkpoint is valid for its public key.
pub fn signature_valid(cp: &Checkpoint) -> bool {
    let Ok(pk) = hex::decode(&cp.public_key) else {
        return false;
    };
    let Ok(pk) = <[u8; 32]>::try_from(pk.as_slice()) else {
        return false;
    };
    let Ok(vk) = VerifyingKey::from_bytes(&pk) else {
        return false;
    };
    let Ok(sig) = hex::decode(&cp.signature) else {
        return false;
    };
    let Ok(sig) = Signature::from_slice(&sig) else {
        return false;
    };
    vk.verify(&signed_bytes(&cp.org_id, cp.seq, &cp.hash, cp.at), &sig)
        .is_ok()
}

/// Checks exported checkpoints against the archive as it is now: each must be signed by the trusted
/// key (the export's own key when none is given), and the entry it names must still have the signed
/// hash. An entry removed by a retention purge (older than the oldest remaining entry, with the purge
/// itself journaled) can no longer be compared and is reported as such, not as a failure.
pub fn check(
    c: &mut dyn Conn,
    export: &CheckpointExport,
    trusted_key: Option<&str>,
) -> Result<Vec<CheckpointFinding>, StoreError> {
    let trusted = trusted_key.map(str::to_owned).or_else(|| export.public_key.clone());
    let mut out = Vec::with_capacity(export.checkpoints.len());
    for cp in &export.checkpoints {
        let finding = |ok: bool, what: String| CheckpointFinding {
            org_id: cp.org_id.clone(),
            seq: cp.seq,
            ok,
            what,
        };
        if trusted
            .as_deref()
            .is_some_and(|k| !k.eq_ignore_ascii_case(&cp.public_key))
        {
            out.push(finding(false, "signed with a key other than the trusted one".into()));
            continue;
        }
        if !signature_valid(cp) {
            out.push(finding(
                false,
                "its signature is invalid (the checkpoint itself was altered)".into(),
            ));
            continue;
        }
        let entry: Option<JournalEntry> = crate::journal::entry(c, &cp.org_id, cp.seq)?;
        out.push(match entry {
            Some(e) if e.hash == cp.hash => finding(true, "matches the archive".into()),
            Some(_) => finding(
                false,
                format!(
                    "entry {} no longer has the signed hash: history up to it was rewritten",
                    cp.seq
                ),
            ),
            None => {
                let oldest = c
                    .query_one("select min(seq) from journal where org_id = ?", params![&cp.org_id])?
                    .opt_i64(0)?;
                match oldest {
                    Some(first)
                        if cp.seq < first
                            && crate::journal::last_purge(c, &cp.org_id)?
                                .is_some_and(|(through, _)| through >= cp.seq) =>
                    {
                        finding(
                            true,
                            "purged under the retention policy (the purge is journaled)".into(),
                        )
                    }
                    _ => finding(false, format!("entry {} is missing from the archive", cp.seq)),
                }
            }
        });
    }
    Ok(out)
}
