//! Shared helpers for the integration tests.
#![allow(dead_code)]

pub mod daemon;
pub mod mock_line;
pub mod postgres;
pub mod web;
