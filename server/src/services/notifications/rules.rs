//! When a reaction's mail is held back, as plain functions: throttles that
//! keep what outsiders can trigger from becoming a flood.

/// Whether a low-stock alert for a SKU is due, given how many alerts for it
/// went out within the alert window (this chunk's included): one per SKU
/// per window, however often its stock crosses the threshold.
pub fn low_stock_alert_due(alerts_in_window: u64) -> bool {
    alerts_in_window == 0
}

/// Whether another welcome email may go out, given how many went out in
/// the last hour: nobody has confirmed a new account's address, so a cap
/// (`0`: none) keeps a flood of registrations from making the shop a
/// sender of mail to strangers.
pub fn unverified_mail_allowed(sent_last_hour: u64, cap: u32) -> bool {
    cap == 0 || sent_last_hour < u64::from(cap)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_low_stock_alert_per_window() {
        assert!(low_stock_alert_due(0));
        assert!(!low_stock_alert_due(1));
        assert!(!low_stock_alert_due(3));
    }

    #[test]
    fn welcome_mail_stops_at_the_hourly_cap() {
        assert!(unverified_mail_allowed(199, 200));
        assert!(!unverified_mail_allowed(200, 200));
        assert!(unverified_mail_allowed(10_000, 0));
    }
}
