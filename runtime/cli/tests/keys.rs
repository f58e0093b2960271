//! `medq keygen`, `medq sign` and `medq verify`, run as a user runs them.

use std::path::Path;
use std::process::{Command, Output};

const ECG: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../firmware/model/ecg.mq");

fn medq(args: &[&dyn AsRef<std::ffi::OsStr>]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_medq"))
        .args(args)
        .output()
        .expect("run medq")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn keygen(dir: &Path, name: &str) -> std::path::PathBuf {
    let key = dir.join(name);
    let out = medq(&[&"keygen", &key]);
    assert!(out.status.success(), "{}", stderr(&out));
    key
}

#[test]
fn keygen_sign_verify_accepts_only_the_genuine_file() {
    let dir = tempfile::tempdir().unwrap();
    let maker = keygen(dir.path(), "maker.key");
    let other = keygen(dir.path(), "other.key");
    let model = dir.path().join("ecg.mq");
    std::fs::copy(ECG, &model).unwrap();

    let unsigned = medq(&[
        &"verify",
        &model,
        &"--key",
        &dir.path().join("maker.key.pub"),
    ]);
    assert!(!unsigned.status.success());
    assert!(
        stderr(&unsigned).contains("not signed"),
        "{}",
        stderr(&unsigned)
    );

    let sign = medq(&[&"sign", &model, &"--key", &maker]);
    assert!(sign.status.success(), "{}", stderr(&sign));
    let ok = medq(&[
        &"verify",
        &model,
        &"--key",
        &dir.path().join("maker.key.pub"),
    ]);
    assert!(ok.status.success(), "{}", stderr(&ok));
    // A signed file is still an ordinary model.
    assert!(medq(&[&"inspect", &model]).status.success());

    let wrong = medq(&[
        &"verify",
        &model,
        &"--key",
        &dir.path().join("other.key.pub"),
    ]);
    assert!(!wrong.status.success());
    assert!(
        stderr(&wrong).contains("signature does not match"),
        "{}",
        stderr(&wrong)
    );

    // Re-signed with the other key into a new file: the original is unchanged.
    let resigned = dir.path().join("other.mq");
    let out = medq(&[&"sign", &model, &"--key", &other, &"--output", &resigned]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(medq(&[
        &"verify",
        &resigned,
        &"--key",
        &dir.path().join("other.key.pub")
    ])
    .status
    .success());
    assert!(medq(&[
        &"verify",
        &model,
        &"--key",
        &dir.path().join("maker.key.pub")
    ])
    .status
    .success());
}

#[test]
fn keys_are_pem_the_secret_one_private_and_never_overwritten() {
    let dir = tempfile::tempdir().unwrap();
    let key = keygen(dir.path(), "k");
    let secret = std::fs::read_to_string(&key).unwrap();
    let public = std::fs::read_to_string(dir.path().join("k.pub")).unwrap();
    assert!(
        secret.starts_with("-----BEGIN PRIVATE KEY-----"),
        "{secret}"
    );
    assert!(public.starts_with("-----BEGIN PUBLIC KEY-----"), "{public}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
    let again = medq(&[&"keygen", &key]);
    assert!(!again.status.success());
    assert!(stderr(&again).contains("--force"), "{}", stderr(&again));
    assert_eq!(
        std::fs::read_to_string(&key).unwrap(),
        secret,
        "the key was kept"
    );
    let forced = medq(&[&"keygen", &key, &"--force"]);
    assert!(forced.status.success(), "{}", stderr(&forced));
    assert_ne!(std::fs::read_to_string(&key).unwrap(), secret);
}

#[test]
fn verifying_with_the_secret_key_or_a_non_key_says_what_is_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let key = keygen(dir.path(), "k");
    let model = dir.path().join("ecg.mq");
    std::fs::copy(ECG, &model).unwrap();
    assert!(medq(&[&"sign", &model, &"--key", &key]).status.success());
    let secret = medq(&[&"verify", &model, &"--key", &key]);
    assert!(!secret.status.success());
    assert!(
        stderr(&secret).contains("is a secret key"),
        "{}",
        stderr(&secret)
    );
    let sign_with_public = medq(&[&"sign", &model, &"--key", &dir.path().join("k.pub")]);
    assert!(!sign_with_public.status.success());
    assert!(
        stderr(&sign_with_public).contains("not an Ed25519 secret key"),
        "{}",
        stderr(&sign_with_public)
    );
    // A refused sign leaves the file as it was.
    assert!(
        medq(&[&"verify", &model, &"--key", &dir.path().join("k.pub")])
            .status
            .success()
    );
}
