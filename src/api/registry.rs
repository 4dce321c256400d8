//! The providers, one row each: the name `--provider`, `[api] provider` and an output folder's
//! `provider` file use, and the [`Provider`] row its module holds. Everything else about a
//! provider (base URL, key, clock, budget, currency, model ids, encoding, capabilities) is read
//! from that row, so adding one is its module in `src/api/` and a variant here with its row.

use super::provider::Provider;
use super::{dashscope, gravitex};

/// The providers `--provider` and `[api] provider` name; recorded in the output folder because
/// a shot sent to another provider is another paid task.
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    clap::ValueEnum,
    serde::Deserialize,
    serde::Serialize,
)]
#[serde(rename_all = "lowercase")]
pub enum ProviderId {
    /// The GravitexAI gateway (`/v1/video/generations`).
    #[default]
    Gravitex,
    /// Alibaba DashScope's native API (`/api/v1/...`).
    Dashscope,
}

impl ProviderId {
    /// The provider's row.
    pub fn provider(self) -> Provider {
        match self {
            ProviderId::Gravitex => gravitex::PROVIDER,
            ProviderId::Dashscope => dashscope::PROVIDER,
        }
    }

    /// The name used on the command line, in the config and in the output folder.
    pub fn as_str(self) -> &'static str {
        self.provider().id
    }

    pub fn from_name(name: &str) -> Option<ProviderId> {
        let name = name.trim();
        <ProviderId as clap::ValueEnum>::value_variants()
            .iter()
            .copied()
            .find(|p| p.as_str() == name)
    }
}

impl std::fmt::Display for ProviderId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::ValueEnum;

    /// The row's id is the name clap and serde give the variant, so a folder's `provider` file,
    /// the flag and the config agree.
    #[test]
    fn each_rows_id_is_its_flag_and_config_name() {
        for &p in ProviderId::value_variants() {
            let flag = p.to_possible_value().unwrap();
            assert_eq!(flag.get_name(), p.as_str());
            assert_eq!(serde_json::to_value(p).unwrap(), p.as_str());
            assert_eq!(ProviderId::from_name(&format!(" {p} ")), Some(p));
        }
        assert_eq!(ProviderId::from_name("gateway"), None);
    }

    /// A row that claims a task list connects to a client that has one, and the other way round.
    #[test]
    fn a_rows_capabilities_are_its_clients() {
        for &p in ProviderId::value_variants() {
            let row = p.provider();
            let config = super::super::ClientConfig {
                base_url: "http://127.0.0.1:9".into(),
                api_key: super::super::ApiKey::new("sk-test"),
                timeout: std::time::Duration::from_secs(1),
            };
            let client = super::super::Client::for_provider(row, config).unwrap();
            assert_eq!(
                client.task_list().is_some(),
                row.capabilities.task_list,
                "{p}"
            );
            assert_eq!(client.searches(), row.capabilities.task_list, "{p}");
        }
    }

    /// The model id sent is the row's: DashScope's native id for a dated gateway id, the
    /// planner's own on the gateway.
    #[test]
    fn the_model_sent_is_the_rows() {
        let dated = "wan2.7-t2v-2026-04-25";
        assert_eq!(
            ProviderId::Dashscope.provider().model_sent(dated),
            "wan2.7-t2v"
        );
        assert_eq!(ProviderId::Gravitex.provider().model_sent(dated), dated);
        assert_eq!(
            ProviderId::Dashscope.provider().model_sent("no-such"),
            "no-such"
        );
    }
}
