//! The payments service (`/api/payments`): payment attempts, refunds with a
//! per-payment ledger, and the providers that move the money.

pub mod provider;
