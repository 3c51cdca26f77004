//! Optional Ed25519-signed checkpoints: an entry of kind `checkpoint` that signs the head
//! before it, so that a holder of the public key can detect a rewritten chain.
//!
//! The payload is `{alg, hash, key_id, ledger_id, seq, signature}`: `seq` and `hash` name the
//! entry signed (the one just before the checkpoint), `alg` is `"ed25519"`, `key_id` the first
//! 32 hex digits of SHA-256 over the 32-byte public key, and `signature` the lowercase hex
//! Ed25519 signature over the JCS bytes of the payload without `signature` — so the algorithm
//! and key id are inside the signed bytes. Pure: keys are passed in, never read here.

use super::canonical;
use super::chain::{Head, hex_lower, is_hash_hex, sha256_hex};
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use serde_json::{Map, Value};

/// Kind of checkpoint entries; reserved.
pub const CHECKPOINT_KIND: &str = "checkpoint";
/// The only algorithm.
pub const ALGORITHM: &str = "ed25519";

/// Why a key could not be loaded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error(
        "an Ed25519 {what} must be 64 hex digits (32 bytes); generate a seed with `head -c32 /dev/urandom | xxd -p -c64`"
    )]
    BadHex { what: &'static str },
    #[error("the bytes are not a valid Ed25519 public key")]
    BadPublicKey,
}

fn hex32(text: &str, what: &'static str) -> Result<[u8; 32], KeyError> {
    let text = text.trim();
    if text.len() != 64 {
        return Err(KeyError::BadHex { what });
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16)
            .map_err(|_| KeyError::BadHex { what })?;
    }
    Ok(out)
}

/// The id of a public key: first 32 hex digits of SHA-256 over its 32 bytes.
pub fn key_id(public: &VerifyingKey) -> String {
    sha256_hex(&public.to_bytes())[..32].to_owned()
}

/// A signing key for checkpoints.
#[derive(Clone)]
pub struct CheckpointSigner {
    key: SigningKey,
    key_id: String,
}

impl std::fmt::Debug for CheckpointSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the secret.
        f.debug_struct("CheckpointSigner")
            .field("key_id", &self.key_id)
            .finish_non_exhaustive()
    }
}

impl CheckpointSigner {
    /// From a 32-byte secret seed written as 64 hex digits (e.g. the contents of a key file).
    pub fn from_seed_hex(text: &str) -> Result<Self, KeyError> {
        let key = SigningKey::from_bytes(&hex32(text, "secret seed")?);
        let key_id = key_id(&key.verifying_key());
        Ok(Self { key, key_id })
    }

    /// The public key as 64 hex digits, for `--public-key`.
    pub fn public_key_hex(&self) -> String {
        hex_lower(&self.key.verifying_key().to_bytes())
    }

    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// The payload of a checkpoint signing `head` of the ledger `ledger_id`.
    pub fn payload(&self, ledger_id: &str, head: &Head) -> Map<String, Value> {
        let mut p = Map::new();
        p.insert("alg".into(), Value::String(ALGORITHM.into()));
        p.insert("hash".into(), Value::String(head.hash.clone()));
        p.insert("key_id".into(), Value::String(self.key_id.clone()));
        p.insert("ledger_id".into(), Value::String(ledger_id.to_owned()));
        p.insert("seq".into(), Value::from(head.seq));
        let mut signed = Vec::new();
        // Only strings and small integers: canonicalisation cannot fail.
        let _ = canonical::write_canonical_object(&p, &mut signed);
        let signature = self.key.sign(&signed);
        p.insert(
            "signature".into(),
            Value::String(hex_lower(&signature.to_bytes())),
        );
        p
    }
}

/// A public key that verifies checkpoints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckpointVerifier {
    key: VerifyingKey,
    key_id: String,
}

impl CheckpointVerifier {
    /// From a 32-byte public key written as 64 hex digits.
    pub fn from_public_hex(text: &str) -> Result<Self, KeyError> {
        let key = VerifyingKey::from_bytes(&hex32(text, "public key")?)
            .map_err(|_| KeyError::BadPublicKey)?;
        Ok(Self {
            key_id: key_id(&key),
            key,
        })
    }

    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// Checks a checkpoint payload against this key and the entry it must sign (the previous
    /// one). Returns what is wrong.
    pub fn check(&self, payload: &Map<String, Value>, signed: Option<&Head>) -> Result<(), String> {
        let text = |k: &str| payload.get(k).and_then(Value::as_str);
        if text("alg") != Some(ALGORITHM) {
            return Err(format!("alg must be \"{ALGORITHM}\""));
        }
        if text("key_id") != Some(self.key_id.as_str()) {
            return Err(format!(
                "key_id is {:?}, the given key's id is {}",
                text("key_id"),
                self.key_id
            ));
        }
        let seq = payload.get("seq").and_then(Value::as_u64);
        let hash = text("hash").filter(|h| is_hash_hex(h));
        match (signed, seq, hash) {
            (Some(h), Some(seq), Some(hash)) if h.seq == seq && h.hash == hash => {}
            _ => {
                return Err(format!(
                    "signs seq {seq:?} hash {hash:?}, but the previous entry is {signed:?}"
                ));
            }
        }
        let sig_hex = text("signature").ok_or("signature missing")?;
        let sig_bytes: Vec<u8> = (0..sig_hex.len() / 2)
            .map(|i| u8::from_str_radix(sig_hex.get(2 * i..2 * i + 2).unwrap_or("zz"), 16))
            .collect::<Result<_, _>>()
            .map_err(|_| "signature is not hex".to_owned())?;
        let sig_array: [u8; 64] = sig_bytes
            .try_into()
            .map_err(|_| "signature must be 64 bytes".to_owned())?;
        let mut body = payload.clone();
        body.remove("signature");
        let message =
            canonical::to_canonical_vec(&Value::Object(body)).map_err(|e| e.to_string())?;
        self.key
            .verify_strict(&message, &Signature::from_bytes(&sig_array))
            .map_err(|_| "Ed25519 signature does not verify".to_owned())
    }
}

#[cfg(test)]
#[expect(clippy::unwrap_used, reason = "tests")]
mod tests {
    use super::*;

    const SEED: &str = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60";

    #[test]
    fn rfc8032_test_vector_1_public_key() {
        // RFC 8032 §7.1 TEST 1: this secret key has this public key.
        let signer = CheckpointSigner::from_seed_hex(SEED).unwrap();
        assert_eq!(
            signer.public_key_hex(),
            "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
        );
    }

    #[test]
    fn sign_then_verify_and_detect_changes() {
        let signer = CheckpointSigner::from_seed_hex(SEED).unwrap();
        let verifier = CheckpointVerifier::from_public_hex(&signer.public_key_hex()).unwrap();
        let head = Head {
            seq: 41,
            hash: "ab".repeat(32),
        };
        let payload = signer.payload("00112233445566778899aabbccddeeff", &head);
        assert_eq!(verifier.check(&payload, Some(&head)), Ok(()));
        let other = Head {
            seq: 41,
            hash: "cd".repeat(32),
        };
        assert!(verifier.check(&payload, Some(&other)).is_err());
        let mut changed = payload.clone();
        changed.insert("ledger_id".into(), Value::String("ff".repeat(16)));
        assert!(
            verifier
                .check(&changed, Some(&head))
                .unwrap_err()
                .contains("does not verify")
        );
        let stranger = CheckpointVerifier::from_public_hex(&"11".repeat(32));
        if let Ok(stranger) = stranger {
            assert!(stranger.check(&payload, Some(&head)).is_err());
        }
        assert!(CheckpointSigner::from_seed_hex("xyz").is_err());
    }
}
