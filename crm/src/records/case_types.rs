//! Case types and their custom fields: a schema per type, configured as data, validated on save.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sqlx::{AnyConnection, Row};

use crate::auth::Role;
use crate::db::Db;
use crate::records::directory::Names;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CaseType {
    pub code: String,
    pub service: String,
    pub name: Names,
    #[serde(default)]
    pub fields: Vec<FieldDef>,
    /// The line-3 queue that escalations of this type go to; the service's expert team otherwise.
    #[serde(default)]
    pub expert_team: Option<String>,
}

// No `deny_unknown_fields`: serde cannot combine it with the flattened `kind`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FieldDef {
    pub name: String,
    pub label: Names,
    #[serde(flatten)]
    pub kind: FieldKind,
    #[serde(default)]
    pub required: bool,
    /// Roles that see and edit the field; empty means every role that works cases.
    #[serde(default)]
    pub roles: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum FieldKind {
    Text {
        #[serde(default = "default_max_length")]
        max_length: usize,
    },
    Number {
        min: Option<f64>,
        max: Option<f64>,
    },
    Date,
    Choice {
        options: Vec<ChoiceOption>,
    },
    Boolean,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChoiceOption {
    pub value: String,
    pub label: Names,
}

fn default_max_length() -> usize {
    200
}

/// Why a custom field's value was refused; `key` is the Fluent message that explains it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FieldError {
    pub field: String,
    pub key: &'static str,
}

impl FieldDef {
    pub fn visible_to(&self, roles: &[Role]) -> bool {
        self.roles.is_empty() || roles.iter().any(|role| self.roles.iter().any(|name| name == role.as_str()))
    }
}

impl CaseType {
    /// Checks every submitted value against the schema and returns the typed values to store, or
    /// every problem at once. Fields the editor may not see keep their stored values.
    pub fn validate(
        &self,
        submitted: &BTreeMap<String, String>,
        stored: &Map<String, Value>,
        editor_roles: &[Role],
    ) -> Result<Map<String, Value>, Vec<FieldError>> {
        let mut values = Map::new();
        let mut errors = Vec::new();
        for name in submitted.keys() {
            if !self.fields.iter().any(|field| &field.name == name && field.visible_to(editor_roles)) {
                errors.push(FieldError { field: name.clone(), key: "field-error-unknown" });
            }
        }
        for field in &self.fields {
            if !field.visible_to(editor_roles) {
                if let Some(value) = stored.get(&field.name) {
                    values.insert(field.name.clone(), value.clone());
                }
                continue;
            }
            let raw = submitted.get(&field.name).map(|value| value.trim()).unwrap_or_default();
            if raw.is_empty() {
                // An unticked checkbox sends nothing: a boolean is false, never missing.
                if matches!(field.kind, FieldKind::Boolean) {
                    values.insert(field.name.clone(), Value::Bool(false));
                } else if field.required {
                    errors.push(FieldError { field: field.name.clone(), key: "field-error-required" });
                }
                continue;
            }
            match parse_value(&field.kind, raw) {
                Ok(value) => {
                    values.insert(field.name.clone(), value);
                }
                Err(key) => errors.push(FieldError { field: field.name.clone(), key }),
            }
        }
        if errors.is_empty() { Ok(values) } else { Err(errors) }
    }
}

fn parse_value(kind: &FieldKind, raw: &str) -> Result<Value, &'static str> {
    match kind {
        FieldKind::Text { max_length } => {
            if raw.chars().count() > *max_length {
                Err("field-error-too-long")
            } else {
                Ok(Value::String(raw.to_owned()))
            }
        }
        FieldKind::Number { min, max } => {
            let number: f64 = raw.replace(',', ".").parse().map_err(|_| "field-error-number")?;
            if !number.is_finite() || min.is_some_and(|min| number < min) || max.is_some_and(|max| number > max) {
                return Err("field-error-range");
            }
            serde_json::Number::from_f64(number).map(Value::Number).ok_or("field-error-number")
        }
        FieldKind::Date => time::Date::parse(raw, time::macros::format_description!("[year]-[month]-[day]"))
            .map(|_| Value::String(raw.to_owned()))
            .map_err(|_| "field-error-date"),
        FieldKind::Choice { options } => {
            if options.iter().any(|option| option.value == raw) {
                Ok(Value::String(raw.to_owned()))
            } else {
                Err("field-error-choice")
            }
        }
        FieldKind::Boolean => match raw {
            "true" | "on" | "1" => Ok(Value::Bool(true)),
            "false" | "off" | "0" => Ok(Value::Bool(false)),
            _ => Err("field-error-boolean"),
        },
    }
}

pub async fn upsert(conn: &mut AnyConnection, case_type: &CaseType) -> Result<bool, sqlx::Error> {
    let fields = serde_json::to_string(&case_type.fields).unwrap_or_else(|_| "[]".to_owned());
    let done = sqlx::query(
        "INSERT INTO case_types (code, service_code, name_nl, name_fr, name_en, fields, expert_team)
         VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (code) DO NOTHING",
    )
    .bind(&case_type.code)
    .bind(&case_type.service)
    .bind(&case_type.name.nl)
    .bind(&case_type.name.fr)
    .bind(&case_type.name.en)
    .bind(fields)
    .bind(case_type.expert_team.as_deref())
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

pub async fn get(db: &Db, code: &str) -> Result<Option<CaseType>, sqlx::Error> {
    let row = sqlx::query(
        "SELECT code, service_code, name_nl, name_fr, name_en, fields, expert_team FROM case_types WHERE code = $1",
    )
    .bind(code)
    .fetch_optional(db.pool())
    .await?;
    row.as_ref().map(case_type_from_row).transpose()
}

pub async fn all(db: &Db) -> Result<Vec<CaseType>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT code, service_code, name_nl, name_fr, name_en, fields, expert_team FROM case_types
         ORDER BY service_code, code",
    )
    .fetch_all(db.pool())
    .await?;
    rows.iter().map(case_type_from_row).collect()
}

fn case_type_from_row(row: &sqlx::any::AnyRow) -> Result<CaseType, sqlx::Error> {
    let fields: String = row.try_get("fields")?;
    Ok(CaseType {
        code: row.try_get("code")?,
        service: row.try_get("service_code")?,
        name: Names { nl: row.try_get("name_nl")?, fr: row.try_get("name_fr")?, en: row.try_get("name_en")? },
        fields: serde_json::from_str(&fields).map_err(|error| sqlx::Error::Decode(Box::new(error)))?,
        expert_team: row.try_get("expert_team")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn passport() -> CaseType {
        serde_json::from_value(serde_json::json!({
            "code": "passport", "service": "population",
            "name": {"nl": "Paspoort", "fr": "Passeport", "en": "Passport"},
            "fields": [
                {"name": "travel_date", "type": "date", "required": true,
                 "label": {"nl": "Reisdatum", "fr": "Date du voyage", "en": "Travel date"}},
                {"name": "pages", "type": "number", "min": 32, "max": 64,
                 "label": {"nl": "Pagina's", "fr": "Pages", "en": "Pages"}},
                {"name": "urgent", "type": "boolean", "label": {"nl": "Dringend", "fr": "Urgent", "en": "Urgent"}},
                {"name": "kind", "type": "choice", "options": [
                    {"value": "adult", "label": {"nl": "Volwassene", "fr": "Adulte", "en": "Adult"}}],
                 "label": {"nl": "Soort", "fr": "Type", "en": "Kind"}},
                {"name": "remark", "type": "text", "max_length": 5, "roles": ["expert"],
                 "label": {"nl": "Opmerking", "fr": "Remarque", "en": "Remark"}}
            ]
        }))
        .unwrap()
    }

    fn submitted(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn valid_values_are_typed() {
        let values = passport()
            .validate(
                &submitted(&[("travel_date", "2027-01-31"), ("pages", "48"), ("urgent", "on"), ("kind", "adult")]),
                &Map::new(),
                &[Role::Agent],
            )
            .unwrap();
        assert_eq!(values["travel_date"], "2027-01-31");
        assert_eq!(values["pages"], 48.0);
        assert_eq!(values["urgent"], true);
    }

    #[test]
    fn every_problem_is_named_at_once() {
        let errors = passport()
            .validate(
                &submitted(&[("pages", "100"), ("kind", "child"), ("colour", "red")]),
                &Map::new(),
                &[Role::Agent],
            )
            .unwrap_err();
        let named: Vec<(&str, &str)> = errors.iter().map(|e| (e.field.as_str(), e.key)).collect();
        assert_eq!(
            named,
            [
                ("colour", "field-error-unknown"),
                ("travel_date", "field-error-required"),
                ("pages", "field-error-range"),
                ("kind", "field-error-choice")
            ]
        );
        let errors =
            passport().validate(&submitted(&[("travel_date", "2027-02-30")]), &Map::new(), &[Role::Agent]).unwrap_err();
        assert_eq!(errors[0].key, "field-error-date");
    }

    #[test]
    fn fields_for_other_roles_are_kept_and_cannot_be_set() {
        let mut stored = Map::new();
        stored.insert("remark".into(), Value::String("kept".into()));
        let values =
            passport().validate(&submitted(&[("travel_date", "2027-01-31")]), &stored, &[Role::Agent]).unwrap();
        assert_eq!(values["remark"], "kept");
        let errors = passport()
            .validate(&submitted(&[("travel_date", "2027-01-31"), ("remark", "x")]), &stored, &[Role::Agent])
            .unwrap_err();
        assert_eq!(errors[0], FieldError { field: "remark".into(), key: "field-error-unknown" });
        let errors = passport()
            .validate(&submitted(&[("travel_date", "2027-01-31"), ("remark", "too long")]), &stored, &[Role::Expert])
            .unwrap_err();
        assert_eq!(errors[0].key, "field-error-too-long");
    }
}
