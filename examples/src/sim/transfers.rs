//! What a simulated charger does when its station asks for a firmware download or a log
//! upload ([`ocpp_charger::station::firmware`], [`ocpp_charger::station::logs`]): real HTTP
//! over the network (reqwest, `http://` only: the simulator has no TLS for files).
//!
//! - **Download**: GET the location (at most [`MAX_FIRMWARE_BYTES`], 60 s), check its SHA-256
//!   against the `sha256` query parameter when the URL has one, and the signature when the
//!   update is signed (ECDSA P-256 / SHA-256 over the file, DER, base64, checked with the
//!   public key of the PEM `signingCertificate`). The simulated firmware format: a file whose
//!   first line is `SIMFW <version>` installs that version; any other file installs version
//!   `sha256:<first 12 hex digits>`.
//! - **Upload**: PUT the charger's recent log lines (one per station event, with its time;
//!   the window asked for) to `{location}/{file name}`.

use std::time::Duration;

use base64::Engine;
use chrono::{DateTime, Utc};

/// The largest firmware file the simulator downloads: 16 MiB.
pub const MAX_FIRMWARE_BYTES: usize = 16 * 1024 * 1024;

/// How long one download or upload may take.
const TRANSFER_TIMEOUT: Duration = Duration::from_secs(60);

/// The result of a download.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Downloaded {
    /// The transfer failed (network, status, size).
    Failed(String),
    /// The file arrived; `verified` whether its hash / signature checked out.
    File {
        /// The firmware version it installs.
        version: String,
        /// The hash (and signature, when signed) matched.
        verified: bool,
    },
}

fn client() -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .timeout(TRANSFER_TIMEOUT)
        .build()
        .map_err(|e| e.to_string())
}

/// The `sha256` query parameter of `url`.
fn expected_sha256(url: &str) -> Option<String> {
    let query = url.split_once('?')?.1;
    query
        .split('&')
        .find_map(|kv| kv.strip_prefix("sha256="))
        .map(|v| v.to_ascii_lowercase())
}

/// The version a simulated firmware file installs.
pub(crate) fn version_of(data: &[u8], sha: &str) -> String {
    let first = data.split(|b| *b == b'\n').next().unwrap_or_default();
    match std::str::from_utf8(first)
        .ok()
        .and_then(|l| l.strip_prefix("SIMFW "))
        .map(str::trim)
        .filter(|v| !v.is_empty() && v.len() <= 50)
    {
        Some(v) => v.to_owned(),
        None => format!("sha256:{}", &sha[..12.min(sha.len())]),
    }
}

/// Whether `signature` (base64 DER) is a valid ECDSA P-256 SHA-256 signature of `data` by the
/// key of `certificate` (PEM).
pub(crate) fn signature_ok(data: &[u8], signature: &str, certificate: Option<&str>) -> bool {
    let Ok(sig) = base64::engine::general_purpose::STANDARD.decode(signature.trim()) else {
        return false;
    };
    let Some(pem) = certificate else {
        return false;
    };
    let Ok((_, pem)) = x509_parser::pem::parse_x509_pem(pem.as_bytes()) else {
        return false;
    };
    let Ok(cert) = pem.parse_x509() else {
        return false;
    };
    let key = cert.public_key().subject_public_key.data.to_vec();
    ring::signature::UnparsedPublicKey::new(&ring::signature::ECDSA_P256_SHA256_ASN1, key)
        .verify(data, &sig)
        .is_ok()
}

/// Downloads and checks a firmware file.
pub(crate) async fn download(
    location: &str,
    signature: Option<&str>,
    certificate: Option<&str>,
) -> Downloaded {
    let data = match fetch(location).await {
        Ok(d) => d,
        Err(e) => return Downloaded::Failed(e),
    };
    let sha = crate::backend::firmware::sha256_hex(&data);
    let hash_ok = expected_sha256(location).is_none_or(|want| want == sha);
    let sig_ok = signature.is_none_or(|s| signature_ok(&data, s, certificate));
    Downloaded::File {
        version: version_of(&data, &sha),
        verified: hash_ok && sig_ok,
    }
}

async fn fetch(location: &str) -> Result<Vec<u8>, String> {
    let mut resp = client()?
        .get(location)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    if !resp.status().is_success() {
        return Err(format!("HTTP {}", resp.status()));
    }
    if resp
        .content_length()
        .is_some_and(|n| n > MAX_FIRMWARE_BYTES as u64)
    {
        return Err("the file is too large".into());
    }
    let mut data = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(|e| e.to_string())? {
        if data.len() + chunk.len() > MAX_FIRMWARE_BYTES {
            return Err("the file is too large".into());
        }
        data.extend_from_slice(&chunk);
    }
    Ok(data)
}

/// Uploads `body` to `{location}/{file_name}`; `Err` with why it failed.
pub(crate) async fn upload(location: &str, file_name: &str, body: Vec<u8>) -> Result<(), String> {
    let url = format!("{}/{}", location.trim_end_matches('/'), file_name);
    let resp = client()?
        .put(url)
        .header("content-type", "text/plain")
        .body(body)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    if resp.status().is_success() {
        Ok(())
    } else {
        Err(format!("HTTP {}", resp.status()))
    }
}

/// A charger's recent log lines (at most [`LOG_LINES`]), for uploads.
#[derive(Debug, Default)]
pub(crate) struct LogLines {
    lines: std::collections::VecDeque<(DateTime<Utc>, String)>,
}

/// The most log lines a simulated charger keeps.
pub const LOG_LINES: usize = 500;

impl LogLines {
    /// Adds a line.
    pub(crate) fn push(&mut self, at: DateTime<Utc>, line: String) {
        if self.lines.len() >= LOG_LINES {
            self.lines.pop_front();
        }
        self.lines.push_back((at, line));
    }

    /// The file: the lines within the window, one per line, with their time.
    pub(crate) fn file(
        &self,
        oldest: Option<DateTime<Utc>>,
        latest: Option<DateTime<Utc>>,
    ) -> Vec<u8> {
        let mut out = String::new();
        for (at, line) in &self.lines {
            if oldest.is_some_and(|o| *at < o) || latest.is_some_and(|l| *at > l) {
                continue;
            }
            out.push_str(&at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true));
            out.push(' ');
            out.push_str(line);
            out.push('\n');
        }
        out.into_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_version_comes_from_the_first_line_or_the_hash() {
        assert_eq!(version_of(b"SIMFW 2.0.0\nrest", "abc"), "2.0.0");
        assert_eq!(
            version_of(b"\x00\x01", "0123456789abcdef"),
            "sha256:0123456789ab"
        );
    }

    #[test]
    fn a_signature_verifies_only_with_its_data_and_key() {
        let signer = crate::backend::firmware::Signer::generate().unwrap();
        let (sig, cert) = signer.sign(b"firmware").unwrap();
        assert!(signature_ok(b"firmware", &sig, Some(&cert)));
        assert!(!signature_ok(b"firmwarf", &sig, Some(&cert)));
        assert!(!signature_ok(b"firmware", "AAAA", Some(&cert)));
        assert!(!signature_ok(b"firmware", &sig, Some("garbage")));
        let other = crate::backend::firmware::Signer::generate().unwrap();
        let (_, other_cert) = other.sign(b"x").unwrap();
        assert!(!signature_ok(b"firmware", &sig, Some(&other_cert)));
    }

    #[test]
    fn the_expected_hash_is_read_from_the_query() {
        assert_eq!(
            expected_sha256("http://h/f/t/a.bin?sha256=ABCD&x=1").as_deref(),
            Some("abcd")
        );
        assert_eq!(expected_sha256("http://h/f"), None);
    }

    #[test]
    fn log_lines_are_bounded_and_windowed() {
        let mut l = LogLines::default();
        let t0: DateTime<Utc> = "2025-01-01T00:00:00Z".parse().unwrap();
        for i in 0..(LOG_LINES + 10) {
            l.push(
                t0 + chrono::Duration::seconds(i as i64),
                format!("line {i}"),
            );
        }
        let all = String::from_utf8(l.file(None, None)).unwrap();
        assert_eq!(all.lines().count(), LOG_LINES);
        assert!(!all.contains("line 9\n"));
        let some = l.file(Some(t0 + chrono::Duration::seconds(505)), None);
        assert_eq!(String::from_utf8(some).unwrap().lines().count(), 5);
    }
}
