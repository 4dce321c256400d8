//! Totals of a plan: shots, seconds of video per model and resolution, estimated cost.

use std::collections::BTreeMap;

use serde::Serialize;

use super::Plan;
use crate::config::Config;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TotalsLine {
    pub model: String,
    pub resolution: String,
    pub shots: usize,
    pub seconds: u64,
    /// Estimated cost, when the config prices this model and resolution.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cost: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Totals {
    pub shots: usize,
    pub seconds: u64,
    pub by_model: Vec<TotalsLine>,
    /// Sum of the priced lines; `None` when no line is priced.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub estimated_cost: Option<f64>,
    /// True when some line has no price in the config.
    pub cost_incomplete: bool,
}

impl Totals {
    pub fn of(plan: &Plan, config: &Config) -> Totals {
        let mut lines: BTreeMap<(String, String), (usize, u64)> = BTreeMap::new();
        for s in &plan.shots {
            let e = lines
                .entry((s.model.clone(), s.resolution.clone()))
                .or_default();
            e.0 += 1;
            e.1 += u64::from(s.duration);
        }
        let by_model: Vec<TotalsLine> = lines
            .into_iter()
            .map(|((model, resolution), (shots, seconds))| {
                let alias = super::model::by_id(&model).map(|m| m.alias);
                let cost = config
                    .price_per_second(&model, alias, &resolution)
                    .map(|p| p * seconds as f64);
                TotalsLine {
                    model,
                    resolution,
                    shots,
                    seconds,
                    cost,
                }
            })
            .collect();
        let priced: Vec<f64> = by_model.iter().filter_map(|l| l.cost).collect();
        Totals {
            shots: plan.shots.len(),
            seconds: by_model.iter().map(|l| l.seconds).sum(),
            estimated_cost: (!priced.is_empty()).then(|| priced.iter().sum()),
            cost_incomplete: by_model.iter().any(|l| l.cost.is_none()),
            by_model,
        }
    }
}
