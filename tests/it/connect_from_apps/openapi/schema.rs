//! Checks a JSON answer against the OpenAPI document's schema for its
//! operation and status: the JSON Schema keywords the document uses, and a
//! failure for any keyword it does not know, so that it never passes by
//! skipping what it cannot check.

use reqwest::{Method, StatusCode};
use serde_json::Value;

/// Keywords that describe and do not constrain (JSON Schema 2020-12 §7, §9).
const ANNOTATIONS: [&str; 5] = ["description", "title", "format", "examples", "default"];

pub fn check_answer(
    doc: &Value,
    method: &Method,
    template: &str,
    status: StatusCode,
    content_type: Option<&str>,
    body: &Value,
) {
    let operation = &doc["paths"][template][method.as_str().to_lowercase()];
    assert!(
        operation.is_object(),
        "{method} {template} is not documented"
    );
    let responses = &operation["responses"];
    let response = match &responses[status.as_str()] {
        Value::Null => &responses["default"],
        documented => documented,
    };
    // A response described once, under components, is named by reference.
    let response = match response["$ref"].as_str() {
        Some(reference) => {
            let name = reference
                .strip_prefix("#/components/responses/")
                .unwrap_or_else(|| panic!("an unknown reference {reference}"));
            &doc["components"]["responses"][name]
        }
        None => response,
    };
    let what = format!("{method} {template} answered {status}");
    assert!(
        response.is_object(),
        "{what}, which the document does not list: {body}"
    );
    let Some(content) = response.get("content") else {
        assert_eq!(
            *body,
            Value::Null,
            "{what} with a body the document does not describe"
        );
        return;
    };
    let content_type = content_type.unwrap_or_else(|| panic!("{what} without a content type"));
    let media = &content[content_type];
    assert!(
        media.is_object(),
        "{what} as {content_type}; documented: {content}"
    );
    if let Err(error) = validate(doc, &media["schema"], body, "$") {
        panic!("{what}: {error}\nbody: {body}\nschema: {}", media["schema"]);
    }
}

fn validate(doc: &Value, schema: &Value, value: &Value, at: &str) -> Result<(), String> {
    let Some(schema) = schema.as_object() else {
        return Err(format!("{at}: schema is not an object: {schema}"));
    };
    for (keyword, rule) in schema {
        match keyword.as_str() {
            "$ref" => {
                let name = rule
                    .as_str()
                    .unwrap()
                    .strip_prefix("#/components/schemas/")
                    .unwrap();
                validate(doc, &doc["components"]["schemas"][name], value, at)?;
            }
            "type" => {
                let allowed: Vec<&str> = match rule {
                    Value::String(one) => vec![one.as_str()],
                    Value::Array(many) => many.iter().map(|t| t.as_str().unwrap()).collect(),
                    _ => return Err(format!("{at}: bad type {rule}")),
                };
                if !allowed.iter().any(|t| has_type(value, t)) {
                    return Err(format!("{at}: {value} is not of type {rule}"));
                }
            }
            "enum" => {
                if !rule.as_array().unwrap().contains(value) {
                    return Err(format!("{at}: {value} is not one of {rule}"));
                }
            }
            "required" => {
                if let Some(object) = value.as_object() {
                    for name in rule.as_array().unwrap() {
                        if !object.contains_key(name.as_str().unwrap()) {
                            return Err(format!("{at}: missing required {name}"));
                        }
                    }
                }
            }
            "properties" => {
                if let Some(object) = value.as_object() {
                    for (name, property) in rule.as_object().unwrap() {
                        if let Some(field) = object.get(name) {
                            validate(doc, property, field, &format!("{at}.{name}"))?;
                        }
                    }
                }
            }
            "additionalProperties" => {
                // A map's schema (tags) has no `properties`: every member is additional.
                if let Some(object) = value.as_object() {
                    let known = schema.get("properties");
                    for (name, field) in object {
                        if known.and_then(|k| k.get(name)).is_none() {
                            match rule {
                                Value::Bool(false) => {
                                    return Err(format!("{at}: unexpected {name}"))
                                }
                                Value::Bool(true) => {}
                                extra => validate(doc, extra, field, &format!("{at}.{name}"))?,
                            }
                        }
                    }
                }
            }
            "propertyNames" => {
                if let Some(object) = value.as_object() {
                    for name in object.keys() {
                        let key = Value::String(name.clone());
                        validate(doc, rule, &key, &format!("{at} key {name}"))?;
                    }
                }
            }
            "items" => {
                if let Some(items) = value.as_array() {
                    for (i, item) in items.iter().enumerate() {
                        validate(doc, rule, item, &format!("{at}[{i}]"))?;
                    }
                }
            }
            "oneOf" => {
                let matching = rule
                    .as_array()
                    .unwrap()
                    .iter()
                    .filter(|s| validate(doc, s, value, at).is_ok())
                    .count();
                if matching != 1 {
                    return Err(format!("{at}: {value} matches {matching} of oneOf {rule}"));
                }
            }
            "minimum" => {
                if value.as_f64().is_some_and(|v| v < rule.as_f64().unwrap()) {
                    return Err(format!("{at}: {value} is under {rule}"));
                }
            }
            known if ANNOTATIONS.contains(&known) => {}
            unknown => panic!("{at}: the checker does not know the keyword {unknown:?}"),
        }
    }
    Ok(())
}

fn has_type(value: &Value, name: &str) -> bool {
    match name {
        "null" => value.is_null(),
        "boolean" => value.is_boolean(),
        "object" => value.is_object(),
        "array" => value.is_array(),
        "number" => value.is_number(),
        "integer" => value.is_i64() || value.is_u64(),
        "string" => value.is_string(),
        _ => false,
    }
}
