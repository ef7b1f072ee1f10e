//! `infra/openapi.json` lists exactly the routes of the route table, each with an operationId, a
//! 2xx response (`GET /`: its 302) and its path parameters declared.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;

use gatehouse_functions::routes::{self, ROUTES};
use serde_json::Value;

const METHODS: &[&str] = &["get", "put", "post", "delete", "options", "head", "patch", "trace"];

fn document() -> Value {
    let path = format!("{}/../infra/openapi.json", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Every (path template, method, operation) of the document.
fn operations(doc: &Value) -> Vec<(String, String, Value, Value)> {
    let mut out = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (key, op) in item.as_object().expect("path item") {
            if METHODS.contains(&key.as_str()) {
                out.push((path.clone(), key.clone(), op.clone(), item.clone()));
            }
        }
    }
    out
}

/// The `{param}` names of a path template.
fn template_params(path: &str) -> BTreeSet<String> {
    path.split('/').filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}'))).map(str::to_owned).collect()
}

#[test]
fn header() {
    let doc = document();
    assert_eq!(doc["openapi"], "3.1.0");
    assert_eq!(doc["info"]["title"], "Gatehouse");
    assert_eq!(doc["servers"][0]["url"], "/");
    let bearer = &doc["components"]["securitySchemes"]["bearerAuth"];
    assert_eq!((bearer["type"].as_str(), bearer["scheme"].as_str()), (Some("http"), Some("bearer")));
    for name in ["FieldErrors", "Detail", "User"] {
        assert!(doc["components"]["schemas"][name].is_object(), "schema {name}");
    }
}

#[test]
fn lists_exactly_the_route_table() {
    let doc = document();
    let documented: BTreeSet<(String, String)> = operations(&doc)
        .into_iter()
        .map(|(path, method, _, _)| (method.to_ascii_uppercase(), routes::canonical(&path).to_owned()))
        .collect();
    let table: BTreeSet<(String, String)> = ROUTES.iter().map(|r| (r.method.to_owned(), r.path.to_owned())).collect();
    let missing: Vec<_> = table.difference(&documented).collect();
    let extra: Vec<_> = documented.difference(&table).collect();
    assert!(missing.is_empty() && extra.is_empty(), "not documented: {missing:?}; not in ROUTES: {extra:?}");
    // Each route once: one path form per route, the canonical one with a trailing slash.
    assert_eq!(operations(&doc).len(), ROUTES.len());
    for (path, _, _, _) in operations(&doc) {
        if !path.ends_with(".json") {
            assert!(path.ends_with('/'), "{path} has no trailing slash");
        }
    }
}

#[test]
fn every_operation_has_an_id_and_a_success_response() {
    let doc = document();
    let mut ids = BTreeSet::new();
    for (path, method, op, _) in operations(&doc) {
        let id = op["operationId"].as_str().unwrap_or_else(|| panic!("{method} {path}: no operationId"));
        assert!(ids.insert(id.to_owned()), "{method} {path}: operationId {id} used twice");
        let route = ROUTES
            .iter()
            .find(|r| r.method.eq_ignore_ascii_case(&method) && r.path == routes::canonical(&path))
            .unwrap_or_else(|| panic!("{method} {path}: not a route"));
        // function + method, and when one function serves one method on two paths, a suffix.
        let stem = format!("{}_{method}", route.function);
        assert!(id == stem || id.starts_with(&format!("{stem}_")), "{method} {path}: operationId {id}, want {stem}");
        let responses = op["responses"].as_object().unwrap_or_else(|| panic!("{method} {path}: no responses"));
        // A 2xx; the one redirect, GET / (302 to /account), has its 3xx instead.
        assert!(
            responses.keys().any(|code| code.starts_with('2') || (path == "/" && code.starts_with('3'))),
            "{method} {path}: no 2xx response"
        );
    }
}

#[test]
fn every_path_parameter_is_declared() {
    let doc = document();
    for (path, method, op, item) in operations(&doc) {
        let mut declared = BTreeSet::new();
        for list in [&item["parameters"], &op["parameters"]] {
            for p in list.as_array().into_iter().flatten() {
                if p["in"] == "path" {
                    assert_eq!(p["required"], true, "{method} {path}: path parameter not required");
                    declared.insert(p["name"].as_str().unwrap().to_owned());
                }
            }
        }
        assert_eq!(declared, template_params(&path), "{method} {path}");
    }
}
