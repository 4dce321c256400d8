//! Totals of a plan: shots, seconds of video per model and resolution, estimated cost.

use std::collections::BTreeMap;

use serde::Serialize;

use super::graph::Plan;
use crate::cost::{Money, PriceBook};

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TotalsLine {
    pub model: String,
    pub resolution: String,
    pub shots: usize,
    /// Seconds of video made.
    pub seconds: u64,
    /// Seconds of input video billed besides (edit).
    #[serde(skip_serializing_if = "is_zero_u64")]
    pub input_seconds: u64,
    /// Estimated cost; `None` when this model and resolution have no price.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cost: Option<Money>,
    /// Some input video's length is unknown (a URL): seconds and cost are upper bounds.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub upper_bound: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Totals {
    pub shots: usize,
    pub seconds: u64,
    pub by_model: Vec<TotalsLine>,
    /// What a run would send now (`plan` against the output folder); absent in `plan.json`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to_send: Option<ToSend>,
    pub cost: CostTotals,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ToSend {
    pub shots: usize,
    pub seconds: u64,
    /// Shots per action (`send`, `poll`, `download`, `held`, `done`).
    pub actions: BTreeMap<&'static str, usize>,
}

/// `totals.cost`: exact amounts as strings in `currency`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CostTotals {
    /// Every priced shot.
    pub total: Money,
    /// The shots a run would send now (`plan` against the output folder); absent in `plan.json`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to_send: Option<Money>,
    /// What the output folder's ledger says was spent already, every attempt counted (`plan`
    /// against the output folder); absent in `plan.json`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub spent: Option<Money>,
    pub currency: String,
    /// Shots whose model and resolution have no price (not in `total`).
    #[serde(skip_serializing_if = "is_zero")]
    pub unpriced: usize,
    /// `total` counts an input video of unknown length as the longest taken: at most this.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub upper_bound: bool,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

fn is_zero_u64(n: &u64) -> bool {
    *n == 0
}

/// One line's sums while adding up shots.
#[derive(Default)]
struct Sums {
    shots: usize,
    seconds: u64,
    billed: u64,
    upper_bound: bool,
}

impl Totals {
    pub fn of(plan: &Plan, prices: &PriceBook) -> Totals {
        let mut lines: BTreeMap<(&str, &str), Sums> = BTreeMap::new();
        for s in &plan.shots {
            let e = lines.entry((&s.model, &s.resolution)).or_default();
            e.shots += 1;
            e.seconds += u64::from(s.output_seconds());
            e.billed += crate::cost::billed_seconds(s);
            e.upper_bound |= s.upper_bound();
        }
        let by_model: Vec<TotalsLine> = lines
            .into_iter()
            .map(|((model, resolution), sums)| TotalsLine {
                model: model.to_owned(),
                resolution: resolution.to_owned(),
                shots: sums.shots,
                seconds: sums.seconds,
                input_seconds: sums.billed.saturating_sub(sums.seconds),
                cost: prices
                    .per_second(model, resolution)
                    .map(|p| p.times(sums.billed)),
                upper_bound: sums.upper_bound,
            })
            .collect();
        Totals {
            shots: plan.shots.len(),
            seconds: by_model.iter().map(|l| l.seconds).sum(),
            to_send: None,
            cost: CostTotals {
                total: by_model.iter().filter_map(|l| l.cost).sum(),
                to_send: None,
                spent: None,
                currency: prices.currency.clone(),
                unpriced: by_model
                    .iter()
                    .filter(|l| l.cost.is_none())
                    .map(|l| l.shots)
                    .sum(),
                upper_bound: by_model.iter().any(|l| l.upper_bound && l.cost.is_some()),
            },
            by_model,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::model::{MODELS, RESOLUTIONS};
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn the_total_is_the_sum_of_the_shots_and_of_the_lines(
            shots in proptest::collection::vec((0..3usize, 0..2usize, 2u32..=15), 1..200),
            t2v_720 in 0u32..2_000_000,
        ) {
            let ids: Vec<String> = (0..shots.len()).map(|i| format!("s{i}")).collect();
            let spec: Vec<(&str, &[&str])> = ids.iter().map(|id| (id.as_str(), &[][..])).collect();
            let mut plan = crate::exec::testing::plan_of(&spec);
            for (shot, &(m, r, d)) in plan.shots.iter_mut().zip(&shots) {
                shot.model = MODELS[m].id.into();
                shot.resolution = RESOLUTIONS[r].into();
                shot.duration = d;
            }
            let config = crate::config::Config::parse(
                &format!("[pricing.t2v]\n\"720P\" = {}\n", f64::from(t2v_720) / 1e6),
                std::path::Path::new("c.toml"),
            )
            .unwrap();
            let prices = PriceBook::new(&config);
            let totals = Totals::of(&plan, &prices);
            let per_shot: Money = plan.shots.iter().filter_map(|s| prices.shot(s)).sum();
            let per_line: Money = totals.by_model.iter().filter_map(|l| l.cost).sum();
            prop_assert_eq!(totals.cost.total, per_shot);
            prop_assert_eq!(totals.cost.total, per_line);
            prop_assert_eq!(totals.cost.unpriced, 0);
        }
    }
}
