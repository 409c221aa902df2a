// TEMPORARY compile shim; replaced by the real module.
use std::path::{Path, PathBuf};
pub const DEFAULT_PATH: &str = "/etc/border-release/border-release.toml";
pub struct Warehouse { pub name: String, pub timezone: chrono_tz::Tz }
pub struct Paths { pub data: PathBuf, pub logs: PathBuf, pub spool: PathBuf }
pub struct Schedule { pub batch: String, pub cutoff: chrono::NaiveTime }
pub enum Listen { Tcp(std::net::SocketAddr), Unix(PathBuf) }
pub struct Api { pub listen: Listen, pub token_file: PathBuf }
pub struct Config { pub file: PathBuf, pub warehouse: Warehouse, pub paths: Paths, pub schedule: Schedule, pub identity: crate::identity::IdentityRule, pub api: Api, pub rates: crate::money::Rates, pub timeline: crate::policy::Timeline }
#[derive(Debug, thiserror::Error)]
pub enum ConfigError { #[error("x")] Read }
pub fn load(_path: &Path) -> Result<Config, ConfigError> { Err(ConfigError::Read) }
