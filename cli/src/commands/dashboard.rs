//! `shop dashboard`: its arguments only. The dashboard itself lives in the
//! `shop-tui` crate, which the binary links and dispatches to, so that this
//! crate (and every other command) never pulls in the terminal UI.

use std::time::Duration;

/// Arguments of `shop dashboard`; the global `--url`, `--profile`, `--token`
/// and `--no-color` apply as to every command.
#[derive(Debug, Clone, clap::Args)]
#[command(after_help = "\
Keys: Tab/Shift-Tab or arrows move between areas, Enter zooms, / filters the
focused list, r refreshes now, ? shows help, q or Esc quits.

Acting, as in k9s: j/k select a row. On an order, s ships it (asks for a
tracking number), c cancels, f refunds, d shows its details; on a SKU, a adjusts
its stock (asks for the change and a reason), d or l opens its ledger. Every
change is spelled out and sent only after y. `:` takes a command: :orders,
:stock low, :search chair, :q. --readonly refuses every change.

Needs a staff or admin login (`shop login`) and a terminal.")]
pub struct DashboardArgs {
    /// How often to poll the server's health and metrics, in milliseconds (events arrive live regardless).
    #[arg(long, value_name = "MS", default_value_t = 1000,
          value_parser = clap::value_parser!(u64).range(200..=60_000))]
    pub refresh_ms: u64,

    /// Watch only: the keys that ship, cancel, refund or adjust stock are refused.
    #[arg(long)]
    pub readonly: bool,
}

impl DashboardArgs {
    pub fn refresh(&self) -> Duration {
        Duration::from_millis(self.refresh_ms)
    }
}
