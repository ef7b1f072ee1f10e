//! The route table, the template's HttpApi events, the binaries and the sample events agree.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;

use gatehouse_functions::routes::ROUTES;
use serde_yaml_ng::Value;

fn root(rel: &str) -> String {
    format!("{}/../{rel}", env!("CARGO_MANIFEST_DIR"))
}

fn template() -> Value {
    let text = std::fs::read_to_string(root("infra/template.yaml")).unwrap();
    serde_yaml_ng::from_str(&text).unwrap()
}

/// (function binary, method, path) for every HttpApi event of every function in the template.
fn template_routes() -> BTreeSet<(String, String, String)> {
    let mut out = BTreeSet::new();
    let t = template();
    for (_, res) in t["Resources"].as_mapping().unwrap() {
        if res["Type"].as_str() != Some("AWS::Serverless::Function") {
            continue;
        }
        let binary =
            res["Metadata"]["BuildProperties"]["Binary"].as_str().expect("every function names its binary").to_owned();
        assert_eq!(res["Metadata"]["BuildMethod"].as_str(), Some("rust-cargolambda"));
        for (_, ev) in res["Properties"]["Events"].as_mapping().unwrap() {
            if ev["Type"].as_str() != Some("HttpApi") {
                continue;
            }
            let p = &ev["Properties"];
            out.insert((
                binary.clone(),
                p["Method"].as_str().unwrap().to_owned(),
                p["Path"].as_str().unwrap().to_owned(),
            ));
        }
    }
    out
}

#[test]
fn route_table_equals_the_template_http_api_events() {
    // One event per route, without a trailing slash: HTTP API refuses route paths that end in
    // `/` (SAM drops such events without a word) and sends `/x/` to the `/x` route itself.
    let mut expected: BTreeSet<_> =
        ROUTES.iter().map(|r| (r.function.to_owned(), r.method.to_owned(), r.path.to_owned())).collect();
    expected.insert(("fallback".to_owned(), "ANY".to_owned(), "$default".to_owned()));
    let actual = template_routes();
    let slashed: Vec<_> = actual.iter().filter(|(_, _, p)| p.len() > 1 && p.ends_with('/')).collect();
    assert!(slashed.is_empty(), "route paths ending in /: {slashed:?}");
    let missing: Vec<_> = expected.difference(&actual).collect();
    let extra: Vec<_> = actual.difference(&expected).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "missing from template: {missing:?}\nnot in route table: {extra:?}"
    );
}

#[test]
fn every_binary_has_a_function_and_an_event() {
    let mut binaries: BTreeSet<String> = std::fs::read_dir(root("functions/lambdas/src/bin"))
        .unwrap()
        .map(|e| e.unwrap().path().file_stem().unwrap().to_string_lossy().into_owned())
        .collect();
    let in_template: BTreeSet<String> = template_routes().into_iter().map(|(f, _, _)| f).collect();
    assert_eq!(binaries, in_template);
    let in_table: BTreeSet<String> =
        ROUTES.iter().map(|r| r.function.to_owned()).chain(["fallback".to_owned()]).collect();
    assert_eq!(binaries, in_table);
    binaries.retain(|b| !std::path::Path::new(&root(&format!("events/{b}.json"))).exists());
    assert!(binaries.is_empty(), "binaries without a sample event: {binaries:?}");
}
