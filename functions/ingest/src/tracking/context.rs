//! A Segment call's `context`, merged with its batch's, and the fields read from it.

use serde_json::{Map, Value};

/// A call's context with its batch's context under it, read in place (not copied
/// into each call): a value is the call's own when it has one, else the batch's,
/// nested objects merged key by key.
#[derive(Clone, Copy)]
pub(super) struct Context<'a> {
    pub(super) own: Option<&'a Map<String, Value>>,
    pub(super) batch: Option<&'a Map<String, Value>>,
}

impl<'a> Context<'a> {
    /// The value at `path` in the merged context.
    fn get(self, path: &[&str]) -> Option<&'a Value> {
        let (key, rest) = path.split_first()?;
        let own = self.own.and_then(|m| m.get(*key));
        let batch = self.batch.and_then(|m| m.get(*key));
        if rest.is_empty() {
            return own.or(batch);
        }
        let own = match own {
            Some(Value::Object(map)) => Some(map),
            Some(_) => return None,
            None => None,
        };
        Context {
            own,
            batch: batch.and_then(Value::as_object),
        }
        .get(rest)
    }

    /// The keys of the object at `key` in either context.
    fn keys(self, key: &str) -> impl Iterator<Item = &'a String> {
        let object = |m: Option<&'a Map<String, Value>>| m.and_then(|m| m.get(key)).and_then(Value::as_object);
        object(self.own)
            .into_iter()
            .chain(object(self.batch))
            .flat_map(Map::keys)
    }
}

/// Removes and returns an object field; absent or null is empty, another type an error.
pub(super) fn take_object(item: &mut Map<String, Value>, field: &str) -> Result<Map<String, Value>, String> {
    match item.remove(field) {
        None | Some(Value::Null) => Ok(Map::new()),
        Some(Value::Object(map)) => Ok(map),
        Some(_) => Err(format!("`{field}` must be an object")),
    }
}

/// Removes and returns a non-blank text field; leaves any other value in place.
pub(super) fn take_text(map: &mut Map<String, Value>, field: &str) -> Option<String> {
    match map.get(field) {
        Some(Value::String(s)) if !s.trim().is_empty() => match map.remove(field) {
            Some(Value::String(s)) => Some(s),
            _ => None,
        },
        _ => None,
    }
}

pub(super) fn page_url(context: Context<'_>) -> Option<String> {
    let url = context.get(&["page", "url"])?.as_str()?;
    Some(url.to_string()).filter(|u| !u.trim().is_empty())
}

pub(super) fn utm_campaign(context: Context<'_>) -> Option<String> {
    let name = context.get(&["campaign", "name"])?.as_str()?;
    Some(name.to_string()).filter(|n| !n.trim().is_empty())
}

/// `context.campaign` values other than `name` as `properties.utm_<key>`, unless set.
pub(super) fn add_utm(properties: &mut Map<String, Value>, context: Context<'_>) {
    for key in context.keys("campaign").filter(|key| *key != "name") {
        if let Some(value @ Value::String(_)) = context.get(&["campaign", key]) {
            properties.entry(format!("utm_{key}")).or_insert_with(|| value.clone());
        }
    }
}
