//! The list envelope shared by every collection route.

use serde::{Deserialize, Serialize};

/// `{"items":[...],"total":N,"limit":L,"offset":O}`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Page<T> {
    pub items: Vec<T>,
    pub total: u64,
    pub limit: u32,
    pub offset: u64,
}
