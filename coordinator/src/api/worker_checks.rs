//! Checks of worker request fields.

use ssl_proto::v1::WorkerCapabilities;
use uuid::Uuid;

use crate::Error;

/// Backends a worker may report.
const BACKENDS: [&str; 3] = ["cpu", "wgpu", "cuda"];
/// Maximum length of stored evaluation results, in bytes.
const MAX_RESULT_LEN: usize = 256 * 1024;

/// Checks that `value` is a worker id and returns it in canonical form.
pub(crate) fn parse_worker_id(value: &str) -> Result<String, Error> {
    if value.is_empty() {
        return Err(Error::InvalidArgument("worker_id: missing; pass the id that RegisterWorker returned".to_owned()));
    }
    Uuid::parse_str(value).map(|id| id.to_string()).map_err(|_| {
        Error::InvalidArgument(format!("worker_id: invalid value {value:?}; pass the id that RegisterWorker returned"))
    })
}

/// Accepts 1 to 128 letters, digits, '.', '-' and '_', which covers host and pod names.
pub(crate) fn check_worker_name(name: &str) -> Result<(), Error> {
    let valid = (1..=128).contains(&name.len())
        && name.bytes().all(|byte| byte.is_ascii_alphanumeric() || matches!(byte, b'.' | b'-' | b'_'));
    if valid {
        return Ok(());
    }
    let preview: String = name.chars().take(40).collect();
    Err(Error::InvalidArgument(format!(
        "name: invalid value {preview:?}; use 1 to 128 letters, digits, '.', '-' and '_', such as the host name"
    )))
}

/// Accepts `host:port` with a non-zero port, and `[v6]:port`.
pub(crate) fn check_data_address(address: &str) -> Result<(), Error> {
    let invalid = || {
        Error::InvalidArgument(format!(
            "data_address: invalid value {address:?}; expected HOST:PORT of the worker's data-plane listener"
        ))
    };
    let (host, port) = address.rsplit_once(':').ok_or_else(invalid)?;
    let port: u16 = port.parse().map_err(|_| invalid())?;
    if host.is_empty() || port == 0 || host.contains(char::is_whitespace) {
        return Err(invalid());
    }
    Ok(())
}

/// Checks capabilities and returns them as the JSON stored with the worker.
pub(crate) fn capabilities_json(capabilities: Option<&WorkerCapabilities>) -> Result<String, Error> {
    let capabilities = capabilities
        .ok_or_else(|| Error::InvalidArgument("capabilities: missing; send backend, devices and memory_bytes".to_owned()))?;
    if !BACKENDS.contains(&capabilities.backend.as_str()) {
        return Err(Error::InvalidArgument(format!(
            "capabilities.backend: invalid value {:?}; expected one of {}",
            capabilities.backend,
            BACKENDS.join(", ")
        )));
    }
    if capabilities.devices < 1 || capabilities.memory_bytes < 0 {
        return Err(Error::InvalidArgument(format!(
            "capabilities: devices {} must be at least 1 and memory_bytes {} not negative",
            capabilities.devices, capabilities.memory_bytes
        )));
    }
    let json = serde_json::json!({
        "backend": capabilities.backend,
        "devices": capabilities.devices,
        "memory_bytes": capabilities.memory_bytes,
    });
    Ok(json.to_string())
}

/// Accepts a JSON object of at most 256 KiB.
pub(crate) fn check_result_json(text: &str) -> Result<(), Error> {
    if text.len() > MAX_RESULT_LEN {
        return Err(Error::InvalidArgument(format!(
            "result_json: has {} bytes, more than the maximum of {MAX_RESULT_LEN}",
            text.len()
        )));
    }
    match serde_json::from_str::<serde_json::Value>(text) {
        Ok(serde_json::Value::Object(_)) => Ok(()),
        Ok(_) => Err(Error::InvalidArgument("result_json: expected a JSON object".to_owned())),
        Err(error) => Err(Error::InvalidArgument(format!("result_json: invalid JSON: {error}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_addresses_checked() {
        assert!(check_data_address("10.0.0.7:7070").is_ok());
        assert!(check_data_address("worker-0.ssl:7070").is_ok());
        assert!(check_data_address("[::1]:7070").is_ok());
        for invalid in ["", "10.0.0.7", ":7070", "host:0", "host:http", "host:70000"] {
            assert!(check_data_address(invalid).is_err(), "{invalid}");
        }
    }

    #[test]
    fn worker_names_checked() {
        assert!(check_worker_name("ssl-worker-7f9c.pod_1").is_ok());
        assert!(check_worker_name("").is_err());
        assert!(check_worker_name("with space").is_err());
        assert!(check_worker_name(&"x".repeat(129)).is_err());
    }

    #[test]
    fn result_must_be_object() {
        assert!(check_result_json(r#"{"linear_probe": {"accuracy": 0.84}}"#).is_ok());
        assert!(check_result_json("[1, 2]").is_err());
        assert!(check_result_json("{").is_err());
    }

    #[test]
    fn unknown_backend_rejected() {
        let capabilities = WorkerCapabilities { backend: "tpu".to_owned(), devices: 1, memory_bytes: 0 };
        let error = capabilities_json(Some(&capabilities)).unwrap_err().to_string();
        assert!(error.contains("expected one of cpu, wgpu, cuda"), "{error}");
    }
}
