//! The three kinds of family the daemon exports, as thin wrappers over `prometheus-client`'s
//! `Family`, `Counter`, `Histogram` and `Gauge`.
//!
//! The wrappers keep the daemon's calling convention (label values as `&[&str]`, in the family's
//! label order) and each family's name and help beside it, so [`super::Metrics`] can register
//! them. The crate does the storage, the locking and the text encoding.

use std::fmt;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use prometheus_client::encoding::{EncodeMetric, MetricEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::{Family, MetricConstructor};
use prometheus_client::metrics::gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;

use super::values::LabelValues;

/// One series' labels: each label name with its interned value, in the family's label order.
/// Built on the stack from interned values, so recording into a known series allocates nothing.
type Labels<const N: usize> = [(&'static str, Arc<str>); N];

fn labels<const N: usize>(
    names: &[&'static str; N],
    interned: &LabelValues,
    values: &[&str],
) -> Labels<N> {
    std::array::from_fn(|i| {
        let value = values.get(i).copied().unwrap_or_default();
        (names[i], interned.get(value))
    })
}

/// A counter family with `N` labels.
#[derive(Debug)]
pub struct CounterVec<const N: usize> {
    name: &'static str,
    help: &'static str,
    labels: [&'static str; N],
    values: LabelValues,
    family: Family<Labels<N>, Counter>,
}

impl<const N: usize> CounterVec<N> {
    /// `name` is the exposed name, `_total` included (the crate adds that suffix itself, so it
    /// is taken off when the family is registered).
    pub fn new(name: &'static str, help: &'static str, labels: &'static [&'static str; N]) -> Self {
        Self {
            name,
            help,
            labels: *labels,
            values: LabelValues::unbounded(),
            family: Family::default(),
        }
    }

    /// Adds one to the series with these label values (one per label, in order).
    pub fn inc(&self, values: &[&str]) {
        self.add(values, 1);
    }

    pub fn add(&self, values: &[&str], n: u64) {
        let labels = self.labels(values);
        self.family.get_or_create(&labels).inc_by(n);
    }

    /// The current value of one series (0 if never incremented).
    pub fn get(&self, values: &[&str]) -> u64 {
        let labels = self.labels(values);
        self.family.get(&labels).map_or(0, |c| c.get())
    }

    fn labels(&self, values: &[&str]) -> Labels<N> {
        debug_assert_eq!(values.len(), N, "{}", self.name);
        labels(&self.labels, &self.values, values)
    }

    pub(super) fn register(&self, registry: &mut Registry) {
        let name = self.name.strip_suffix("_total").unwrap_or(self.name);
        registry.register(name, help(self.help), Listed(self.family.clone()));
    }

    /// The family alone, its series in label order (as the hand-rolled registry printed them),
    /// so a test can compare the whole text.
    #[cfg(test)]
    pub(super) fn render(&self, out: &mut String) {
        let mut registry = Registry::default();
        self.register(&mut registry);
        let mut text = String::new();
        super::encode(&mut text, &registry);
        let (header, series): (Vec<&str>, Vec<&str>) =
            text.lines().partition(|l| l.starts_with('#'));
        let mut series = series;
        series.sort_unstable();
        for line in header.into_iter().chain(series) {
            out.push_str(line);
            out.push('\n');
        }
    }
}

/// Builds each new series of a histogram family with the family's buckets.
#[derive(Debug, Clone, Copy)]
pub struct Buckets(&'static [f64]);

impl MetricConstructor<Histogram> for Buckets {
    fn new_metric(&self) -> Histogram {
        Histogram::new(self.0.iter().copied())
    }
}

/// A histogram family with `N` labels and fixed buckets (upper bounds, ascending).
#[derive(Debug)]
pub struct HistogramVec<const N: usize> {
    name: &'static str,
    help: &'static str,
    labels: [&'static str; N],
    values: LabelValues,
    family: Family<Labels<N>, Histogram, Buckets>,
}

impl<const N: usize> HistogramVec<N> {
    pub fn new(
        name: &'static str,
        help: &'static str,
        labels: &'static [&'static str; N],
        bounds: &'static [f64],
    ) -> Self {
        Self {
            name,
            help,
            labels: *labels,
            values: LabelValues::unbounded(),
            family: Family::new_with_constructor(Buckets(bounds)),
        }
    }

    /// Records one observation (seconds).
    pub fn observe(&self, values: &[&str], value: f64) {
        debug_assert_eq!(values.len(), N, "{}", self.name);
        let labels = labels(&self.labels, &self.values, values);
        self.family.get_or_create(&labels).observe(value);
    }

    /// Observations recorded in one series.
    #[cfg(test)]
    pub fn count(&self, values: &[&str]) -> u64 {
        let labels = labels(&self.labels, &self.values, values);
        self.family.get(&labels).map_or(0, |h| h.count())
    }

    pub(super) fn register(&self, registry: &mut Registry) {
        registry.register(self.name, help(self.help), Listed(self.family.clone()));
    }

    #[cfg(test)]
    pub(super) fn render(&self, out: &mut String) {
        let mut registry = Registry::default();
        self.register(&mut registry);
        super::encode(out, &registry);
    }
}

/// A gauge without labels, holding an `f64`.
#[derive(Debug)]
pub struct Gauge {
    name: &'static str,
    help: &'static str,
    value: gauge::Gauge<f64, AtomicU64>,
}

impl Gauge {
    pub fn new(name: &'static str, help: &'static str) -> Self {
        Self {
            name,
            help,
            value: gauge::Gauge::default(),
        }
    }

    pub fn set(&self, value: f64) {
        self.value.set(value);
    }

    pub fn get(&self) -> f64 {
        self.value.get()
    }

    pub(super) fn register(&self, registry: &mut Registry) {
        registry.register(self.name, help(self.help), WholeNumbers(self.value.clone()));
    }

    #[cfg(test)]
    pub(super) fn render(&self, out: &mut String) {
        let mut registry = Registry::default();
        self.register(&mut registry);
        super::encode(out, &registry);
    }
}

/// The crate appends a full stop to every help text; ours are written with one.
fn help(text: &'static str) -> &'static str {
    text.strip_suffix('.').unwrap_or(text)
}

/// A family listed in `/metrics` before its first series. The crate leaves empty families out;
/// linebotd has always shown every family's HELP and TYPE from start-up, and scrapers' metadata
/// and the ops tests rely on that.
#[derive(Debug)]
struct Listed<M>(M);

impl<M: EncodeMetric> EncodeMetric for Listed<M> {
    fn encode(&self, encoder: MetricEncoder) -> Result<(), fmt::Error> {
        self.0.encode(encoder)
    }

    fn metric_type(&self) -> MetricType {
        self.0.metric_type()
    }
}

/// A float gauge that prints whole numbers without a fraction (`42`, not `42.0`), as linebotd's
/// gauges always have: they hold counts read from the store.
#[derive(Debug)]
struct WholeNumbers(gauge::Gauge<f64, AtomicU64>);

impl EncodeMetric for WholeNumbers {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), fmt::Error> {
        let v = self.0.get();
        if v.fract() == 0.0 && v.abs() < 1e15 {
            encoder.encode_gauge(&(v as i64))
        } else {
            encoder.encode_gauge(&v)
        }
    }

    fn metric_type(&self) -> MetricType {
        MetricType::Gauge
    }
}
