//! `sundial audit`: who changed what.

use super::client::{Failure, Remote, columns};
use super::noun::q;
use serde_json::json;

pub(crate) async fn audit(remote: &Remote, noun: Option<String>, limit: usize) -> Result<(), Failure> {
    let mut path = format!("/v1/audit?limit={limit}");
    if let Some(n) = noun {
        path.push_str(&format!("&noun={}", q(&n)));
    }
    let v = remote.call("GET", &path, None).await?;
    remote.print(&v, |v| {
        // The thing's name (from the record after or before the change) beside its id.
        let mut v = v.clone();
        for e in v["entries"].as_array_mut().into_iter().flatten() {
            let name = e["after"]["name"]
                .as_str()
                .or_else(|| e["before"]["name"].as_str())
                .or_else(|| e["after"]["spec"]["name"].as_str())
                .or_else(|| e["before"]["spec"]["name"].as_str())
                .map(str::to_string);
            e["name"] = json!(name);
        }
        let cols = [
            ("AT", "at"),
            ("ACTOR", "actor"),
            ("ACTION", "action"),
            ("NOUN", "noun"),
            ("NAME", "name"),
            ("TARGET", "target"),
        ];
        columns(&v, "entries", &cols)
    });
    Ok(())
}
