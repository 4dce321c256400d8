//! What shots cost: the built-in list prices, the config's overrides, and money without drift.
//!
//! Amounts are whole micro-units of the currency (`u64`, 10⁻⁶): a price per second times whole
//! seconds is exact, and so is any sum of such products, so a total always equals the sum of
//! the per-shot figures it is made of. People see two decimals; files get the exact amount.

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;

use crate::plan::PlannedShot;
use crate::plan::model;

/// The currency of the built-in prices.
pub const LIST_CURRENCY: &str = "USD";
/// When the built-in prices were read off the provider's international list (as resold).
pub const LIST_DATE: &str = "2026-11";
/// Micro-units per unit of currency.
const MICROS: u64 = 1_000_000;
/// The highest price per second a config may set (keeps every sum far inside `u64`).
pub const MAX_PRICE_PER_SECOND: u64 = 10_000;

pub use crate::plan::model::Billing;

/// The config's `[pricing]`: a `currency` and one table of prices per second per model.
#[derive(Debug, Clone, Default)]
pub struct PricingSection {
    pub currency: Option<toml::Spanned<String>>,
    pub models:
        BTreeMap<toml::Spanned<String>, BTreeMap<toml::Spanned<String>, toml::Spanned<f64>>>,
}

/// Read by hand: `currency` is a string beside tables, and every name keeps its span so a
/// mistake can name its line.
impl<'de> serde::Deserialize<'de> for PricingSection {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Section;
        impl<'de> serde::de::Visitor<'de> for Section {
            type Value = PricingSection;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a `currency` and tables of prices per model")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<PricingSection, A::Error> {
                let mut section = PricingSection::default();
                while let Some(name) = map.next_key::<toml::Spanned<String>>()? {
                    if name.get_ref() == "currency" {
                        section.currency = Some(map.next_value()?);
                    } else {
                        let prices = map.next_value()?;
                        section.models.insert(name, prices);
                    }
                }
                Ok(section)
            }
        }
        d.deserialize_map(Section)
    }
}

/// One built-in price: a model's row (`plan::model`) at one resolution.
#[derive(Debug, Clone, Copy)]
pub struct ListPrice {
    /// Full model id.
    pub model: &'static str,
    pub resolution: &'static str,
    pub per_second: Money,
}

/// The built-in prices in [`LIST_CURRENCY`], read off the model rows.
pub fn list_prices() -> impl Iterator<Item = ListPrice> {
    model::MODELS.iter().flat_map(|m| {
        m.list_prices.iter().map(|&(resolution, micros)| ListPrice {
            model: m.id,
            resolution,
            per_second: Money(micros),
        })
    })
}

/// How `model` (a full id) is billed; a model without a row bills its output.
pub fn billing(model: &str) -> Billing {
    model::by_id(model).map_or(Billing::OutputSeconds, |m| m.billing)
}

/// The seconds a task of `shot` is billed for (see [`Billing`]).
pub fn billed_seconds(shot: &PlannedShot) -> u64 {
    let output = u64::from(shot.output_seconds());
    match billing(&shot.model) {
        Billing::OutputSeconds => output,
        Billing::InputPlusOutputSeconds => {
            output + shot.input_video.map_or(0, |i| u64::from(i.seconds))
        }
    }
}

/// An amount of money in micro-units of some currency.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Money(u64);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not an amount: write e.g. 5, 12.50 or 0.125 (at most 6 decimals)")]
pub struct BadAmount(pub String);

impl Money {
    pub const ZERO: Money = Money(0);

    pub const fn from_micros(micros: u64) -> Money {
        Money(micros)
    }

    pub const fn micros(self) -> u64 {
        self.0
    }

    /// A non-negative finite number rounded to micro-units (config values arrive as floats).
    pub fn from_f64(value: f64) -> Option<Money> {
        let micros = (value * MICROS as f64).round();
        (value.is_finite() && value >= 0.0 && micros <= u64::MAX as f64 / 2.0)
            .then_some(Money(micros as u64))
    }

    /// Parses `12`, `12.5`, `0.125` exactly; more than 6 decimals, signs and exponents are refused.
    pub fn parse(text: &str) -> Result<Money, BadAmount> {
        let bad = || BadAmount(text.to_owned());
        let t = text.trim();
        let (whole, frac) = t.split_once('.').unwrap_or((t, ""));
        let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        if (whole.is_empty() && frac.is_empty())
            || !digits(whole)
            || !digits(frac)
            || frac.len() > 6
            || whole.len() > 12
        {
            return Err(bad());
        }
        let whole: u64 = if whole.is_empty() {
            0
        } else {
            whole.parse().map_err(|_| bad())?
        };
        let frac: u64 = format!("{frac:0<6}").parse().map_err(|_| bad())?;
        Ok(Money(whole * MICROS + frac))
    }

    /// This price per second times `seconds`.
    pub fn times(self, seconds: u64) -> Money {
        Money(self.0.saturating_mul(seconds))
    }

    pub fn saturating_sub(self, other: Money) -> Money {
        Money(self.0.saturating_sub(other.0))
    }

    /// The exact amount with at least two decimals (`6.00`, `0.625`), for files.
    pub fn exact(self) -> String {
        let (whole, frac) = (self.0 / MICROS, self.0 % MICROS);
        let frac = format!("{frac:06}");
        let frac = frac.trim_end_matches('0');
        format!("{whole}.{frac:0<2}")
    }
}

impl std::ops::Add for Money {
    type Output = Money;
    fn add(self, other: Money) -> Money {
        Money(self.0.saturating_add(other.0))
    }
}

impl std::ops::AddAssign for Money {
    fn add_assign(&mut self, other: Money) {
        *self = *self + other;
    }
}

impl std::ops::SubAssign for Money {
    fn sub_assign(&mut self, other: Money) {
        *self = self.saturating_sub(other);
    }
}

impl std::iter::Sum for Money {
    fn sum<I: Iterator<Item = Money>>(iter: I) -> Money {
        iter.fold(Money::ZERO, |a, b| a + b)
    }
}

/// Two decimals, half a cent rounding up: what people read.
impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let cents = self.0.saturating_add(5_000) / 10_000;
        write!(f, "{}.{:02}", cents / 100, cents % 100)
    }
}

/// The exact amount as a string (`"6.00"`, `"0.625"`): JSON numbers would invite float drift.
impl Serialize for Money {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.exact())
    }
}

impl<'de> serde::Deserialize<'de> for Money {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Money::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// The prices a run uses: the list, then the config's overrides, in one currency.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PriceBook {
    pub currency: String,
    prices: BTreeMap<(&'static str, String), Money>,
}

impl Default for PriceBook {
    fn default() -> Self {
        PriceBook::new(&PricingSection::default())
    }
}

impl PriceBook {
    /// The list prices overridden by `[pricing]`; a `currency` other than the list's drops the
    /// list, so no total ever mixes two currencies.
    pub fn new<'a>(pricing: impl Into<&'a PricingSection>) -> PriceBook {
        let pricing: &PricingSection = pricing.into();
        let currency = pricing
            .currency
            .as_ref()
            .map_or(LIST_CURRENCY, |c| c.get_ref().as_str())
            .to_owned();
        let mut prices = BTreeMap::new();
        if currency == LIST_CURRENCY {
            for p in list_prices() {
                prices.insert((p.model, p.resolution.to_owned()), p.per_second);
            }
        }
        for (name, by_resolution) in &pricing.models {
            let Some(m) = model::resolve(name.get_ref()) else {
                continue;
            };
            for (resolution, price) in by_resolution {
                if let Some(money) = Money::from_f64(*price.get_ref()) {
                    prices.insert((m.id, resolution.get_ref().clone()), money);
                }
            }
        }
        PriceBook { currency, prices }
    }

    /// Price per second of `model` (full id or alias) at `resolution`.
    pub fn per_second(&self, model: &str, resolution: &str) -> Option<Money> {
        let id = model::resolve(model)?.id;
        self.prices.get(&(id, resolution.to_owned())).copied()
    }

    /// What one task of `shot` is estimated to bill, at most when [`PlannedShot::upper_bound`];
    /// `None` when it has no price.
    pub fn shot(&self, shot: &PlannedShot) -> Option<Money> {
        Some(
            self.per_second(&shot.model, &shot.resolution)?
                .times(billed_seconds(shot)),
        )
    }

    /// A price for each attempt of a ledger whose line carries no estimate in this currency:
    /// the plan's shot of that (id, key), else of that id (its request has changed since),
    /// else none.
    pub fn for_ledger<'a>(
        &'a self,
        plan: &'a crate::plan::Plan,
    ) -> impl Fn(&str, &str) -> Option<Money> + 'a {
        let by_id: std::collections::HashMap<&str, &PlannedShot> =
            plan.shots.iter().map(|s| (s.id.as_str(), s)).collect();
        move |id, _key| self.shot(by_id.get(id)?)
    }

    /// What a folder's ledger says was spent, priced by [`PriceBook::for_ledger`].
    pub fn spent(
        &self,
        plan: &crate::plan::Plan,
        ledger: &crate::journal::Ledger,
    ) -> crate::journal::Spent {
        ledger.spent(&self.currency, self.for_ledger(plan))
    }

    /// Per shot id: its paid attempts and their estimate, priced as [`PriceBook::spent`].
    pub fn per_shot<'l>(
        &self,
        plan: &crate::plan::Plan,
        ledger: &'l crate::journal::Ledger,
    ) -> std::collections::HashMap<&'l str, (u32, Money)> {
        ledger.per_shot(&self.currency, self.for_ledger(plan))
    }

    /// `6.00 USD`.
    pub fn show(&self, amount: Money) -> String {
        format!("{amount} {}", self.currency)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn list_prices_are_a_dime_and_fifteen_cents() {
        let book = PriceBook::default();
        assert_eq!(book.currency, "USD");
        for m in model::MODELS {
            assert_eq!(book.per_second(m.alias, "720P"), Some(Money(100_000)));
            assert_eq!(book.per_second(m.id, "1080P"), Some(Money(150_000)));
        }
        assert_eq!(book.per_second("t2v", "4K"), None);
    }

    /// Each shot's estimate and whether it is an upper bound, for a manifest.
    fn estimates(shots: &str) -> Vec<(String, u64, String, bool)> {
        let text = format!("version: 1\nshots:\n{shots}");
        let plan = crate::plan::plan_text(std::path::Path::new("m.yaml"), &text)
            .expect("plans")
            .plan;
        let book = PriceBook::default();
        plan.shots
            .iter()
            .map(|s| {
                let cost = book.shot(s).expect("priced").exact();
                (s.id.clone(), billed_seconds(s), cost, s.upper_bound())
            })
            .collect()
    }

    #[test]
    fn an_edit_bills_its_input_and_output_seconds() {
        let got = estimates(concat!(
            "  - { id: base, model: t2v, prompt: a, duration: 5 }\n",
            "  - { id: keep, model: edit, prompt: b, media: [{ type: video, shot: base }] }\n",
            "  - { id: cut, model: edit, prompt: c, duration: 3, media: [{ type: video, shot: base }] }\n",
            "  - { id: again, model: edit, prompt: d, resolution: 1080P, media: [{ type: video, shot: keep }] }\n",
        ));
        let want = [
            ("base", 5, "0.50"),
            // duration 0 keeps the input's 5 s: 5 in + 5 out.
            ("keep", 10, "1.00"),
            ("cut", 8, "0.80"),
            // An edit of an edit that kept its length: 5 in + 5 out at 1080P.
            ("again", 10, "1.50"),
        ];
        let want: Vec<_> = want
            .iter()
            .map(|&(id, s, c)| (id.to_owned(), s, c.to_owned(), false))
            .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn an_edit_of_a_url_is_estimated_as_an_upper_bound() {
        let url = "media: [{ type: video, url: 'https://x.example/v.mp4' }]";
        let got = estimates(&format!(
            "  - {{ id: keep, model: edit, prompt: a, {url} }}\n  - {{ id: cut, model: edit, prompt: b, duration: 4, {url} }}\n  - {{ id: next, model: edit, prompt: c, duration: 2, media: [{{ type: video, shot: keep }}] }}\n"
        ));
        assert_eq!(
            got,
            [
                ("keep".to_owned(), 20, "2.00".to_owned(), true),
                ("cut".to_owned(), 14, "1.40".to_owned(), true),
                // Its input is `keep`'s output, itself of unknown length.
                ("next".to_owned(), 12, "1.20".to_owned(), true),
            ]
        );
        assert_eq!(billing("wan2.7-videoedit"), Billing::InputPlusOutputSeconds);
        assert_eq!(billing("wan2.7-r2v"), Billing::OutputSeconds);
    }

    #[test]
    fn amounts_print_with_two_decimals_and_files_get_them_exact() {
        let a = Money::parse("35.76").unwrap();
        assert_eq!(a.to_string(), "35.76");
        assert_eq!(a.exact(), "35.76");
        assert_eq!(Money::parse("6").unwrap().exact(), "6.00");
        assert_eq!(Money::parse("0.625").unwrap().to_string(), "0.63");
        assert_eq!(Money::parse("0.625").unwrap().exact(), "0.625");
        assert_eq!(Money::parse(".5").unwrap().to_string(), "0.50");
        assert_eq!(Money::parse("0.004999").unwrap().to_string(), "0.00");
        for bad in ["", ".", "-1", "1e3", "1.2345678", "1,5", "abc", "1.2.3"] {
            assert!(Money::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn float_config_prices_land_on_exact_micro_units() {
        assert_eq!(Money::from_f64(0.1), Some(Money(100_000)));
        assert_eq!(Money::from_f64(0.15), Some(Money(150_000)));
        assert_eq!(Money::from_f64(-0.1), None);
        assert_eq!(Money::from_f64(f64::NAN), None);
        // 0.1 + 0.2 in floats is 0.30000000000000004; in micro-units it is 0.30.
        assert_eq!(
            (Money::from_f64(0.1).unwrap() + Money::from_f64(0.2).unwrap()).exact(),
            "0.30"
        );
    }

    proptest! {
        #[test]
        fn per_shot_costs_sum_to_the_total_without_drift(
            shots in proptest::collection::vec((0u64..=15_000_000, 2u64..=15), 0..300)
        ) {
            let costs: Vec<Money> = shots.iter().map(|&(p, s)| Money(p).times(s)).collect();
            let total: Money = costs.iter().copied().sum();
            let exact: u128 = shots.iter().map(|&(p, s)| u128::from(p) * u128::from(s)).sum();
            prop_assert_eq!(u128::from(total.micros()), exact);
            // Any split of the shots sums to the same total.
            let (a, b) = costs.split_at(costs.len() / 2);
            prop_assert_eq!(a.iter().copied().sum::<Money>() + b.iter().copied().sum(), total);
            // Printing and parsing the exact form gives back the same amount.
            prop_assert_eq!(Money::parse(&total.exact()).unwrap(), total);
        }

        #[test]
        fn two_decimal_display_is_the_exact_amount_rounded(micros in 0u64..1_000_000_000_000) {
            let shown: f64 = Money(micros).to_string().parse().unwrap();
            let exact = micros as f64 / 1e6;
            prop_assert!((shown - exact).abs() <= 0.005 + 1e-9, "{shown} vs {exact}");
        }
    }
}
