//! ABI version detection from the marker exports.

use crate::AbiVersion;

/// Why a module's ABI version could not be determined.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VersionError {
    /// The module exports no `proxy_abi_version_*` function.
    NoMarker,
    /// The module exports more than one marker.
    SeveralMarkers(Vec<AbiVersion>),
    /// The module exports a marker of a version this host does not know, for example
    /// `proxy_abi_version_0_3_0`.
    Unknown(String),
}

impl core::fmt::Display for VersionError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            VersionError::NoMarker => write!(
                f,
                "it exports no ABI version marker (one of proxy_abi_version_0_2_1, \
                 proxy_abi_version_0_2_0, proxy_abi_version_0_1_0); is it a Proxy-Wasm plugin?"
            ),
            VersionError::SeveralMarkers(v) => {
                let names: Vec<_> = v.iter().map(|v| v.marker()).collect();
                write!(f, "it exports several ABI version markers ({}); a plugin declares exactly one", names.join(", "))
            }
            VersionError::Unknown(name) => write!(
                f,
                "it declares an ABI version this host does not support ({name}); supported: 0.2.1, 0.2.0, 0.1.0"
            ),
        }
    }
}

impl std::error::Error for VersionError {}

/// Detects the ABI version from a module's export names.
///
/// Exactly one known marker must be present; an unknown `proxy_abi_version_*` marker alone is
/// an error naming it, and beside a known one it is ignored.
pub fn detect_version<'a>(exports: impl IntoIterator<Item = &'a str>) -> Result<AbiVersion, VersionError> {
    let mut found = Vec::new();
    let mut unknown = None;
    for name in exports {
        if let Some(v) = AbiVersion::ALL.into_iter().find(|v| v.marker() == name) {
            if !found.contains(&v) {
                found.push(v);
            }
        } else if name.starts_with("proxy_abi_version_") {
            unknown.get_or_insert_with(|| name.to_string());
        }
    }
    match (found.len(), unknown) {
        (1, _) => Ok(found[0]),
        (0, Some(name)) => Err(VersionError::Unknown(name)),
        (0, None) => Err(VersionError::NoMarker),
        _ => {
            found.sort();
            Err(VersionError::SeveralMarkers(found))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_each_version() {
        for v in AbiVersion::ALL {
            assert_eq!(detect_version(["memory", v.marker(), "proxy_on_tick"]), Ok(v));
        }
    }

    #[test]
    fn refuses_none_several_and_unknown() {
        assert_eq!(detect_version(["memory", "malloc"]), Err(VersionError::NoMarker));
        assert_eq!(
            detect_version(["proxy_abi_version_0_2_1", "proxy_abi_version_0_1_0"]),
            Err(VersionError::SeveralMarkers(vec![AbiVersion::V010, AbiVersion::V021]))
        );
        let e = detect_version(["proxy_abi_version_0_3_0"]).unwrap_err();
        assert_eq!(e, VersionError::Unknown("proxy_abi_version_0_3_0".into()));
        assert!(e.to_string().contains("proxy_abi_version_0_3_0"));
        assert_eq!(detect_version(["proxy_abi_version_0_3_0", "proxy_abi_version_0_2_0"]), Ok(AbiVersion::V020));
    }
}
