//! `shop recommend ID|SKU`: what to show beside a product: bought together,
//! viewed together, then the most popular of its category.

use shop_wire::search::{Recommendation, Recommendations};

use super::product::{parse_product_ref, price_text};
use crate::context::Context;
use crate::error::CliError;
use crate::output::{CellKind, Column, Tabular};

#[derive(Debug, clap::Args)]
#[command(after_help = "\
Never the product itself, never an archived product. `reason` says where each came from:
co_purchase, co_view or category.
Example: shop recommend FUR-CHR-0001 --limit 5")]
pub struct RecommendArgs {
    /// The product's id (prd_...) or SKU.
    #[arg(add = crate::complete::skus(), value_parser = parse_product_ref)]
    product: String,
    /// How many recommendations.
    #[arg(long, default_value_t = 10, allow_negative_numbers = true,
          value_parser = clap::value_parser!(u32).range(1..=50))]
    limit: u32,
}

impl Tabular for Recommendation {
    fn columns() -> &'static [Column] {
        const COLUMNS: &[Column] = &[
            Column::new("#", "rank").kind(CellKind::Id),
            Column::new("score", "score").kind(CellKind::Id),
            Column::new("reason", "reason"),
            Column::new("sku", "product.sku").kind(CellKind::Id),
            Column::new("name", "product.name"),
            Column::new("price", "price").kind(CellKind::Id),
        ];
        COLUMNS
    }

    fn id(&self) -> String {
        self.product.id.to_string()
    }

    fn display_fields(&self) -> Vec<(&'static str, String)> {
        vec![(
            "price",
            price_text(self.product.price_cents, self.product.currency),
        )]
    }
}

impl RecommendArgs {
    pub async fn run(self, context: &Context) -> Result<(), CliError> {
        let client = context.client_or_anonymous().await?;
        let mut output = context.output();
        let answer: Recommendations = client
            .get(&format!("/api/search/recommendations/{}", self.product))
            .query("limit", self.limit.to_string())
            .send()
            .await?;
        output.list(&answer, &answer.items)
    }
}
