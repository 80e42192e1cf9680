//! `shop address`: the signed-in customer's address book. A saved address
//! is named by its id (`adr_...`) in `shop order create --address` and
//! `shop order quote --address`, and in the storefront's checkout.

use shop_wire::Page;
use shop_wire::addresses::{NewSavedAddress, SavedAddress};
use shop_wire::pricing::PostalAddress;

use crate::context::Context;
use crate::error::CliError;
use crate::output::{CellKind, Column, Tabular};

#[derive(Debug, clap::Subcommand)]
pub enum AddressCommand {
    /// List the saved addresses, oldest first.
    List,
    /// Save an address (at most 20); checked as a checkout checks one.
    #[command(after_help = "\
Examples:
  shop address add --name 'Erika Mustermann' --line1 'Heidestr. 17' --city Köln \\
                   --postal-code 51147 --country DE --default-shipping
  shop address add --from-file address.json --default-billing")]
    Add(AddArgs),
    /// Delete a saved address (orders that used it keep their copy).
    Delete {
        /// The address's id (adr_...).
        id: String,
    },
}

#[derive(Debug, clap::Args)]
pub struct AddArgs {
    /// The address as a JSON file {name,line1,line2?,city,region?,postal_code,country,phone?}.
    #[arg(long = "from-file", value_name = "FILE", conflicts_with_all = ["name", "line1", "line2", "city", "region", "postal_code", "country", "phone"])]
    from_file: Option<std::path::PathBuf>,
    /// The recipient.
    #[arg(long, required_unless_present = "from_file")]
    name: Option<String>,
    /// The street and number.
    #[arg(long, value_name = "TEXT", required_unless_present = "from_file")]
    line1: Option<String>,
    /// A second address line (flat, floor, c/o).
    #[arg(long, value_name = "TEXT")]
    line2: Option<String>,
    /// The city or town.
    #[arg(long, required_unless_present = "from_file")]
    city: Option<String>,
    /// The state, province or county, like CA.
    #[arg(long)]
    region: Option<String>,
    /// The postal or ZIP code.
    #[arg(
        long = "postal-code",
        value_name = "CODE",
        required_unless_present = "from_file"
    )]
    postal_code: Option<String>,
    /// ISO 3166-1 alpha-2, like DE.
    #[arg(long, value_name = "CC", required_unless_present = "from_file")]
    country: Option<String>,
    /// A phone number for the carrier.
    #[arg(long)]
    phone: Option<String>,
    /// Offer it first for shipping (the previous default loses the flag).
    #[arg(long)]
    default_shipping: bool,
    /// Offer it first for billing (the previous default loses the flag).
    #[arg(long)]
    default_billing: bool,
}

impl AddArgs {
    fn address(self) -> Result<PostalAddress, CliError> {
        if let Some(path) = &self.from_file {
            let text = std::fs::read_to_string(path)
                .map_err(|err| CliError::Usage(format!("{}: {err}", path.display())))?;
            return serde_json::from_str(&text).map_err(|err| {
                CliError::Usage(format!("{}: not an address: {err}", path.display()))
            });
        }
        // clap requires these without --from-file.
        Ok(PostalAddress {
            name: self.name.unwrap_or_default(),
            line1: self.line1.unwrap_or_default(),
            line2: self.line2,
            city: self.city.unwrap_or_default(),
            region: self.region,
            postal_code: self.postal_code.unwrap_or_default(),
            country: self.country.unwrap_or_default(),
            phone: self.phone,
        })
    }
}

/// A saved address as a table row: one line of text for the address.
#[derive(serde::Serialize)]
struct AddressRow {
    id: String,
    name: String,
    address: String,
    country: String,
    defaults: String,
}

impl Tabular for AddressRow {
    fn columns() -> &'static [Column] {
        const COLUMNS: &[Column] = &[
            Column::new("id", "id").kind(CellKind::Id),
            Column::new("name", "name"),
            Column::new("address", "address"),
            Column::new("country", "country"),
            Column::new("default for", "defaults"),
        ];
        COLUMNS
    }

    fn id(&self) -> String {
        self.id.clone()
    }
}

impl From<&SavedAddress> for AddressRow {
    fn from(saved: &SavedAddress) -> Self {
        let a = &saved.address;
        let parts = [
            Some(a.line1.as_str()),
            a.line2.as_deref(),
            Some(a.postal_code.as_str()),
            Some(a.city.as_str()),
            a.region.as_deref(),
        ];
        let defaults = [
            (saved.default_shipping, "shipping"),
            (saved.default_billing, "billing"),
        ];
        AddressRow {
            id: saved.id.to_string(),
            name: a.name.clone(),
            address: parts.into_iter().flatten().collect::<Vec<_>>().join(", "),
            country: a.country.clone(),
            defaults: defaults
                .into_iter()
                .filter_map(|(set, what)| set.then_some(what))
                .collect::<Vec<_>>()
                .join(", "),
        }
    }
}

impl Tabular for SavedAddress {
    fn columns() -> &'static [Column] {
        AddressRow::columns()
    }

    fn id(&self) -> String {
        self.id.to_string()
    }
}

impl AddressCommand {
    pub async fn run(self, context: &Context) -> Result<(), CliError> {
        let client = context.client().await?;
        let mut output = context.output();
        match self {
            AddressCommand::List => {
                let page: Page<SavedAddress> = client.get("/api/users/me/addresses").send().await?;
                if output.format() == crate::output::Format::Table {
                    let rows: Vec<AddressRow> = page.items.iter().map(AddressRow::from).collect();
                    return output.list(&(), &rows);
                }
                output.list(&page, &page.items)
            }
            AddressCommand::Add(args) => {
                let (default_shipping, default_billing) =
                    (args.default_shipping, args.default_billing);
                let saved: SavedAddress = client
                    .post("/api/users/me/addresses")
                    .json(&NewSavedAddress {
                        address: args.address()?,
                        default_shipping,
                        default_billing,
                    })?
                    .send()
                    .await?;
                output.one(&saved)
            }
            AddressCommand::Delete { id } => {
                let saved: SavedAddress = client
                    .delete(&format!("/api/users/me/addresses/{id}"))
                    .send()
                    .await?;
                output.one(&saved)
            }
        }
    }
}
