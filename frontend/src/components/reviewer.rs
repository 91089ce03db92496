//! The name this browser reviews under in open mode (kept in local storage).

/// Where open mode keeps the reviewer's name in this browser.
const REVIEWER_STORAGE_KEY: &str = "culturespa.reviewer";

fn local_storage() -> Option<web_sys::Storage> {
    web_sys::window()?.local_storage().ok()?
}

/// The name this browser reviews under in open mode.
pub fn stored_reviewer_name() -> Option<String> {
    local_storage()?.get_item(REVIEWER_STORAGE_KEY).ok()?.filter(|name| !name.trim().is_empty())
}

pub fn store_reviewer_name(name: Option<&str>) {
    if let Some(storage) = local_storage() {
        // A browser that refuses storage simply asks again next time.
        let _ = match name {
            Some(name) => storage.set_item(REVIEWER_STORAGE_KEY, name),
            None => storage.remove_item(REVIEWER_STORAGE_KEY),
        };
    }
}
