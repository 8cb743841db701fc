//! The outbox's types: what a delivery is, where it goes, where it stands, and its lane.

use std::fmt;
use std::str::FromStr;

/// Which LINE endpoint a delivery goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeliveryKind {
    Push,
    Multicast,
    Broadcast,
    Narrowcast,
}

impl DeliveryKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Push => "push",
            Self::Multicast => "multicast",
            Self::Broadcast => "broadcast",
            Self::Narrowcast => "narrowcast",
        }
    }
}

impl fmt::Display for DeliveryKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A delivery kind or status name that is not one of ours.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} `{value}` (expected one of: {expected})")]
pub struct UnknownName {
    pub what: &'static str,
    pub value: String,
    pub expected: &'static str,
}

impl FromStr for DeliveryKind {
    type Err = UnknownName;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "push" => Ok(Self::Push),
            "multicast" => Ok(Self::Multicast),
            "broadcast" => Ok(Self::Broadcast),
            "narrowcast" => Ok(Self::Narrowcast),
            _ => Err(UnknownName {
                what: "delivery kind",
                value: s.to_owned(),
                expected: "push, multicast, broadcast, narrowcast",
            }),
        }
    }
}

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeliveryStatus {
    Pending,
    Sent,
    Failed,
}

impl DeliveryStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Sent => "sent",
            Self::Failed => "failed",
        }
    }
}

impl fmt::Display for DeliveryStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for DeliveryStatus {
    type Err = UnknownName;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "pending" => Ok(Self::Pending),
            "sent" => Ok(Self::Sent),
            "failed" => Ok(Self::Failed),
            _ => Err(UnknownName {
                what: "delivery status",
                value: s.to_owned(),
                expected: "pending, sent, failed",
            }),
        }
    }
}

/// The lane of a delivery: deliveries of one lane go out one at a time, oldest first. A push's
/// lane is its recipient, so one chat sees its messages in order; a multicast, broadcast or
/// narrowcast is a lane of its own.
pub fn lane(kind: DeliveryKind, payload: &serde_json::Value, retry_key: &str) -> String {
    match kind {
        DeliveryKind::Push => format!(
            "to:{}",
            payload
                .get("to")
                .and_then(serde_json::Value::as_str)
                .unwrap_or_default()
        ),
        DeliveryKind::Multicast | DeliveryKind::Broadcast | DeliveryKind::Narrowcast => {
            format!("key:{retry_key}")
        }
    }
}

/// A push, multicast, broadcast or narrowcast to queue.
#[derive(Debug, Clone, PartialEq)]
pub struct NewDelivery {
    /// Sent as `X-Line-Retry-Key`; also the row's identity.
    pub retry_key: String,
    pub kind: DeliveryKind,
    /// The request body: `{"to":..,"messages":[..],"notificationDisabled":..}`.
    pub payload: serde_json::Value,
    /// Who queued it, e.g. `echo.rhai`.
    pub source: String,
    pub created_ms: i64,
}

/// A stored delivery.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivery {
    pub retry_key: String,
    pub kind: DeliveryKind,
    pub payload: serde_json::Value,
    pub source: String,
    pub status: DeliveryStatus,
    pub attempts: u32,
    pub last_error: Option<String>,
    /// Not to be sent before this (ms since the epoch): the backoff or LINE's `Retry-After`
    /// after the last failed attempt, kept so a restart does not send early.
    pub next_attempt_ms: i64,
    pub created_ms: i64,
    pub updated_ms: i64,
    /// LINE's `x-line-request-id` of the successful call.
    pub request_id: Option<String>,
}
