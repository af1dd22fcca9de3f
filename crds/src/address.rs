//! Coordinator addresses as the resource writes them.

/// Whether `list` is `http://` or `https://` addresses separated by commas.
pub(crate) fn http_addresses(list: &str) -> bool {
    list.split(',')
        .map(str::trim)
        .all(|a| a.starts_with("http://") || a.starts_with("https://"))
}
