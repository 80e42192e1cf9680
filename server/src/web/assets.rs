//! Static assets compiled into the binary, each served under a name that
//! carries a hash of its content, so browsers may keep it for a year and a
//! new build is fetched at once.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

use crate::config::StorefrontConfig;

struct Asset {
    bytes: Vec<u8>,
    content_type: &'static str,
}

/// Every asset by its hashed name, and the hashed name of each logical one.
pub struct Assets {
    by_hashed: HashMap<String, Asset>,
    urls: HashMap<&'static str, String>,
}

impl Assets {
    /// The built-in assets, a theme made from the configured colour, and the logo if one is set.
    pub fn load(config: &StorefrontConfig) -> anyhow::Result<Self> {
        let mut assets = Assets {
            by_hashed: HashMap::new(),
            urls: HashMap::new(),
        };
        assets.add("shop.css", include_bytes!("assets/shop.css").to_vec());
        assets.add("shop.js", include_bytes!("assets/shop.js").to_vec());
        assets.add("status.js", include_bytes!("assets/status.js").to_vec());
        let theme = format!(":root{{--brand:{}}}\n", config.color);
        assets.add("theme.css", theme.into_bytes());
        if let Some(path) = &config.logo {
            let bytes = std::fs::read(path).map_err(|err| {
                anyhow::anyhow!("storefront: cannot read the logo {}: {err}", path.display())
            })?;
            let name = if path
                .extension()
                .is_some_and(|e| e.eq_ignore_ascii_case("svg"))
            {
                "logo.svg"
            } else {
                "logo.png"
            };
            assets.add(name, bytes);
            assets.urls.insert("logo", assets.urls[name].clone());
        }
        Ok(assets)
    }

    fn add(&mut self, name: &'static str, bytes: Vec<u8>) {
        let hash = hex::encode(&Sha256::digest(&bytes)[..6]);
        let (stem, ext) = name
            .rsplit_once('.')
            .expect("asset names have an extension");
        let hashed = format!("{stem}.{hash}.{ext}");
        let content_type = match ext {
            "css" => "text/css; charset=utf-8",
            "js" => "text/javascript; charset=utf-8",
            "svg" => "image/svg+xml",
            "png" => "image/png",
            _ => "application/octet-stream",
        };
        self.urls.insert(name, format!("/assets/{hashed}"));
        self.by_hashed.insert(
            hashed,
            Asset {
                bytes,
                content_type,
            },
        );
    }

    /// The URL of a logical asset (`shop.css`, `logo`), if there is one.
    pub fn url(&self, name: &str) -> Option<&str> {
        self.urls.get(name).map(String::as_str)
    }
}

pub async fn serve(State(assets): State<Arc<Assets>>, Path(name): Path<String>) -> Response {
    let Some(asset) = assets.by_hashed.get(&name) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static(asset.content_type),
            ),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=31536000, immutable"),
            ),
        ],
        asset.bytes.clone(),
    )
        .into_response()
}
