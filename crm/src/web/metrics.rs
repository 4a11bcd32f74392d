//! Prometheus metrics, in a registry owned by the app (no globals, so tests can build many apps).

use std::sync::Arc;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub method: String,
    /// The route pattern (`/admin/users/{id}`), never the raw path: ids stay out of label values.
    pub route: String,
    pub status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct LoginLabels {
    pub outcome: &'static str,
}

#[derive(Clone)]
pub struct Metrics {
    registry: Arc<Registry>,
    requests: Family<RequestLabels, Counter>,
    logins: Family<LoginLabels, Counter>,
    telephony: TelephonyMetrics,
}

/// The telephony side's figures, which the binary copies in every second from the SIP service and
/// the media engine (`loket::overload`): the console's crate knows neither.
#[derive(Clone, Debug, Default)]
pub struct TelephonyMetrics {
    pub calls_refused: Counter,
    pub prompt_ticks: Counter,
    pub late_prompt_ticks: Counter,
    pub overload: Gauge,
    pub legs: Gauge,
    pub ceiling: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("loket");
        let requests = Family::<RequestLabels, Counter>::default();
        let logins = Family::<LoginLabels, Counter>::default();
        registry.register("http_requests", "HTTP requests answered, by route and status", requests.clone());
        registry.register("logins", "Login attempts by outcome", logins.clone());
        let telephony = TelephonyMetrics::default();
        let counters = [
            (
                "sip_calls_refused",
                "New calls answered 503: beyond sip.max_calls or sip.max_calls_per_second, or while overloaded",
                &telephony.calls_refused,
            ),
            (
                "media_prompt_ticks",
                "Prompt-frame ticks of the media sessions (one per 20 ms of a prompt or music playing)",
                &telephony.prompt_ticks,
            ),
            (
                "media_late_prompt_ticks",
                "Prompt-frame ticks so late that frames were skipped: gaps the caller heard",
                &telephony.late_prompt_ticks,
            ),
        ];
        for (name, help, counter) in counters {
            registry.register(name, help, counter.clone());
        }
        let gauges = [
            (
                "overload",
                "1 while prompts going out with gaps hold the calls alive under a ceiling (new calls beyond: 503)",
                &telephony.overload,
            ),
            (
                "overload_ceiling",
                "The ceiling on call legs alive while prompts go out with gaps; 0 when there is none",
                &telephony.ceiling,
            ),
            (
                "sip_legs",
                "Call legs alive (a bridged call counts its caller and each phone rung) when a new call last came in or a leg ended",
                &telephony.legs,
            ),
        ];
        for (name, help, gauge) in gauges {
            registry.register(name, help, gauge.clone());
        }
        Metrics { registry: Arc::new(registry), requests, logins, telephony }
    }
}

impl Metrics {
    pub fn request(&self, labels: RequestLabels) {
        self.requests.get_or_create(&labels).inc();
    }

    pub fn login(&self, outcome: &'static str) {
        self.logins.get_or_create(&LoginLabels { outcome }).inc();
    }

    /// Handles on the telephony figures, for whoever reports them.
    pub fn telephony(&self) -> TelephonyMetrics {
        self.telephony.clone()
    }

    pub fn encode(&self) -> String {
        let mut text = String::new();
        // Writing into a String cannot fail.
        prometheus_client::encoding::text::encode(&mut text, &self.registry).expect("encoding into a String");
        text
    }
}
