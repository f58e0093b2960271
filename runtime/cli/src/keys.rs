//! Signed models on the host: `medq keygen`, `medq sign` and `medq verify`.
//!
//! Keys are PEM files in the standard encodings, so other tools read them
//! (`openssl pkey -in KEY -text`, and `openssl genpkey -algorithm ed25519`
//! makes a key medq accepts): the secret key as PKCS#8
//! (`-----BEGIN PRIVATE KEY-----`, mode 0600), the public key as
//! SubjectPublicKeyInfo (`-----BEGIN PUBLIC KEY-----`).

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
use ed25519_dalek::pkcs8::{
    DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey, KeypairBytes,
};
use ed25519_dalek::{SigningKey, VerifyingKey};
use medq::file::{write_atomically, Access};
use medq::{AlignedBuf, PublicKey};

/// Where `medq keygen KEY` writes the public key: `KEY.pub`.
pub fn public_key_path(secret: &Path) -> PathBuf {
    let mut name = secret.as_os_str().to_owned();
    name.push(".pub");
    PathBuf::from(name)
}

/// `medq keygen`: a new Ed25519 key pair from the OS's random source. The
/// secret key goes to `secret` (mode 0600), the public key to
/// `secret.pub`. Existing files are kept unless `force`.
pub fn keygen(secret: &Path, force: bool) -> Result<PublicKey> {
    let public = public_key_path(secret);
    if !force {
        for path in [secret, public.as_path()] {
            if path.exists() {
                bail!(
                    "{} exists; a key is not overwritten without --force \
                     (files signed with it could no longer be re-signed)",
                    path.display()
                );
            }
        }
    }
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(|e| anyhow::anyhow!("no random source: {e}"))?;
    let key = SigningKey::from_bytes(&seed);
    seed.fill(0);
    // PKCS#8 v1 (no public key inside): OpenSSL 3.0 refuses v2 Ed25519 keys.
    let secret_pem = KeypairBytes {
        secret_key: key.to_bytes(),
        public_key: None,
    }
    .to_pkcs8_pem(LineEnding::LF)
    .map_err(|e| anyhow::anyhow!("cannot encode the secret key: {e}"))?;
    let public_pem = key
        .verifying_key()
        .to_public_key_pem(LineEnding::LF)
        .map_err(|e| anyhow::anyhow!("cannot encode the public key: {e}"))?;
    write_atomically(secret, secret_pem.as_bytes(), Access::Private)
        .with_context(|| format!("cannot write {}", secret.display()))?;
    write_atomically(&public, public_pem.as_bytes(), Access::Shared)
        .with_context(|| format!("cannot write {}", public.display()))?;
    Ok(key.verifying_key().to_bytes())
}

/// Reads a PKCS#8 PEM Ed25519 secret key.
pub fn read_signing_key(path: &Path) -> Result<SigningKey> {
    let pem = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the secret key {}", path.display()))?;
    SigningKey::from_pkcs8_pem(&pem).map_err(|e| {
        anyhow::anyhow!(
            "{} is not an Ed25519 secret key in PKCS#8 PEM ({e}); `medq keygen` writes one",
            path.display()
        )
    })
}

/// Reads a SubjectPublicKeyInfo PEM Ed25519 public key.
pub fn read_public_key(path: &Path) -> Result<PublicKey> {
    let pem = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the public key {}", path.display()))?;
    if pem.contains("PRIVATE KEY") {
        bail!(
            "{} is a secret key; verify with the public key ({})",
            path.display(),
            public_key_path(path).display()
        );
    }
    let key = VerifyingKey::from_public_key_pem(&pem).map_err(|e| {
        anyhow::anyhow!(
            "{} is not an Ed25519 public key in PEM ({e}); `medq keygen` writes KEY.pub",
            path.display()
        )
    })?;
    Ok(key.to_bytes())
}

/// The key as lower-case hex, as the firmware build takes it.
pub fn key_hex(key: &PublicKey) -> String {
    key.iter().map(|b| format!("{b:02x}")).collect()
}

/// `medq sign`: signs `model` with the secret key at `key` and writes the
/// result to `output` (which may be `model`) atomically.
pub fn sign_file(model: &Path, key: &Path, output: &Path) -> Result<()> {
    let key = read_signing_key(key)?;
    let bytes = std::fs::read(model).with_context(|| format!("cannot read {}", model.display()))?;
    let signed = medq::sign(&bytes, &key)
        .with_context(|| format!("cannot sign {}: not a valid .mq file", model.display()))?;
    write_atomically(output, &signed, Access::Shared)
        .with_context(|| format!("cannot write {}", output.display()))
}

/// `medq verify`: `Ok` only when `model` is a valid `.mq` file signed with
/// the secret key matching the public key at `key`.
pub fn verify_file(model: &Path, key: &Path) -> Result<()> {
    let key = read_public_key(key)?;
    let bytes = std::fs::read(model).with_context(|| format!("cannot read {}", model.display()))?;
    let aligned = AlignedBuf::from_slice(&bytes);
    medq::Model::parse_verified(aligned.as_slice(), &key)
        .with_context(|| format!("{} is not genuine", model.display()))?;
    Ok(())
}
