//! The browser page, the dashboard and their files, embedded at build time from `static/`
//! (`build.rs` writes the table) and served from this one table: `/` is `index.html`,
//! `/dashboard` is `dashboard.html`, `/static/PATH` any file. Every asset is revalidated
//! (`Cache-Control: no-cache`), so a new build is picked up at the next load.

use actix_web::http::header;
use actix_web::HttpResponse;

include!(concat!(env!("OUT_DIR"), "/assets.rs"));

/// The contents of `static/PATH`.
pub fn get(path: &str) -> Option<&'static [u8]> {
    ASSETS.iter().find(|(p, _)| *p == path).map(|(_, bytes)| *bytes)
}

/// The content type of a file, by its extension.
pub fn content_type(path: &str) -> &'static str {
    match path.rsplit_once('.').map(|(_, ext)| ext) {
        Some("html") => "text/html; charset=utf-8",
        Some("js" | "mjs") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("json") => "application/json",
        _ => "text/plain; charset=utf-8",
    }
}

/// The response for `static/PATH`, or `None` when there is no such file.
pub fn response(path: &str) -> Option<HttpResponse> {
    let bytes = get(path)?;
    Some(
        HttpResponse::Ok()
            .content_type(content_type(path))
            .insert_header((header::CACHE_CONTROL, "no-cache"))
            .insert_header(("x-content-type-options", "nosniff"))
            .body(bytes),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_page_file_is_embedded_with_its_type() {
        for (path, kind) in [("index.html", "text/html"), ("app.js", "text/javascript"), ("style.css", "text/css")] {
            assert!(get(path).is_some_and(|b| !b.is_empty()), "{path}");
            assert!(content_type(path).starts_with(kind));
        }
        assert!(get("nope.js").is_none());
        assert!(get("../Cargo.toml").is_none());
    }

    #[test]
    fn every_game_kind_s_page_is_an_asset() {
        for kind in crate::game::kinds::KINDS {
            assert!(response(kind.asset).is_some(), "{}'s page {:?} is not an asset", kind.name, kind.asset);
        }
    }
}
