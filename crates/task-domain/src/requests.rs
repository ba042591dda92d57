//! Request bodies and their validation. Deserialisation is strict: unknown fields, `null`
//! where a value is required, and values of the wrong JSON type are all rejected.

use chrono::NaiveDate;
use serde::{Deserialize, Deserializer, de::DeserializeOwned};
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

use crate::time::{Micros, TimestampError, parse_request_timestamp};

/// Why a request body was rejected (HTTP 400). The message is meant for the client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BodyError {
    #[error("request body is not valid UTF-8")]
    InvalidUtf8,
    #[error("request body is not valid JSON: {0}")]
    MalformedJson(String),
    #[error("invalid request body: {0}")]
    Invalid(String),
    #[error(transparent)]
    Timestamp(#[from] TimestampError),
    #[error("due_date must be a calendar date YYYY-MM-DD: {0}")]
    DueDate(String),
    #[error("title must not be empty")]
    EmptyTitle,
    /// U+0000 cannot be stored by PostgreSQL text columns; refused on every backend alike.
    #[error("{0} must not contain the NUL character (U+0000)")]
    NulCharacter(&'static str),
    #[error("an update must set at least one of title, content, due_date, done")]
    EmptyUpdate,
}

/// Decodes a JSON body into `T`, telling syntax errors apart from shape errors.
pub fn parse_body<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, BodyError> {
    std::str::from_utf8(bytes).map_err(|_| BodyError::InvalidUtf8)?;
    serde_json::from_slice(bytes).map_err(|error| {
        use serde_json::error::Category;
        match error.classify() {
            Category::Syntax | Category::Eof | Category::Io => {
                BodyError::MalformedJson(error.to_string())
            }
            Category::Data => BodyError::Invalid(error.to_string()),
        }
    })
}

/// `"field": null` is an error rather than "absent": only a missing key means "not given".
fn present<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    T::deserialize(deserializer).map(Some)
}

/// Body of `POST /tasks`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTaskRequest {
    /// Non-empty; stored verbatim (any Unicode but U+0000).
    #[schema(min_length = 1, pattern = "^[^\\x00]*$")]
    pub title: String,
    /// Stored verbatim (may be empty; any Unicode but U+0000).
    #[schema(pattern = "^[^\\x00]*$")]
    pub content: String,
    /// Calendar date `YYYY-MM-DD`.
    #[schema(format = Date, example = "2024-03-01")]
    pub due_date: String,
    /// Defaults to false; `null` is refused.
    #[serde(default, deserialize_with = "present")]
    #[schema(nullable = false)]
    pub done: Option<bool>,
    /// RFC 3339 with offset; orders this request against others on the same task.
    #[schema(format = DateTime, example = "2024-01-01T08:00:00Z")]
    pub request_timestamp: String,
}

/// Body of `PUT /tasks/{id}`: any non-empty subset of the fields plus `request_timestamp`.
/// Every field may be left out, none may be `null`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateTaskRequest {
    #[serde(default, deserialize_with = "present")]
    #[schema(nullable = false, min_length = 1, pattern = "^[^\\x00]*$")]
    pub title: Option<String>,
    #[serde(default, deserialize_with = "present")]
    #[schema(nullable = false, pattern = "^[^\\x00]*$")]
    pub content: Option<String>,
    #[serde(default, deserialize_with = "present")]
    #[schema(nullable = false, format = Date, example = "2024-03-01")]
    pub due_date: Option<String>,
    #[serde(default, deserialize_with = "present")]
    #[schema(nullable = false)]
    pub done: Option<bool>,
    #[schema(format = DateTime, example = "2024-01-01T08:00:00Z")]
    pub request_timestamp: String,
}

/// Body of `DELETE /tasks/{id}`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeleteTaskRequest {
    #[schema(format = DateTime, example = "2024-01-01T08:00:00Z")]
    pub request_timestamp: String,
}

/// A validated creation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidCreate {
    pub title: String,
    pub content: String,
    pub due_date: NaiveDate,
    pub done: bool,
    pub timestamp: Micros,
}

/// Which fields an update writes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FieldSet {
    pub title: bool,
    pub content: bool,
    pub due_date: bool,
    pub done: bool,
}

impl FieldSet {
    pub fn is_empty(self) -> bool {
        !(self.title || self.content || self.due_date || self.done)
    }
}

/// The field values of a validated update.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TaskPatch {
    pub title: Option<String>,
    pub content: Option<String>,
    pub due_date: Option<NaiveDate>,
    pub done: Option<bool>,
}

impl TaskPatch {
    pub fn fields(&self) -> FieldSet {
        FieldSet {
            title: self.title.is_some(),
            content: self.content.is_some(),
            due_date: self.due_date.is_some(),
            done: self.done.is_some(),
        }
    }
}

/// A validated update.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidUpdate {
    pub patch: TaskPatch,
    pub timestamp: Micros,
}

/// A validated deletion.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ValidDelete {
    pub timestamp: Micros,
}

fn parse_due_date(text: &str) -> Result<NaiveDate, BodyError> {
    // Exactly YYYY-MM-DD: chrono alone would also take e.g. `2024-3-1` or a leading `+`.
    let well_formed = text.len() == 10
        && text.bytes().enumerate().all(|(index, byte)| match index {
            4 | 7 => byte == b'-',
            _ => byte.is_ascii_digit(),
        });
    if !well_formed {
        return Err(BodyError::DueDate(format!("{text:?} is not YYYY-MM-DD")));
    }
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .map_err(|error| BodyError::DueDate(format!("{text:?}: {error}")))
}

fn check_title(title: &str) -> Result<(), BodyError> {
    if title.is_empty() {
        return Err(BodyError::EmptyTitle);
    }
    check_text("title", title)
}

fn check_text(field: &'static str, text: &str) -> Result<(), BodyError> {
    if text.contains('\0') {
        return Err(BodyError::NulCharacter(field));
    }
    Ok(())
}

impl CreateTaskRequest {
    pub fn validate(self) -> Result<ValidCreate, BodyError> {
        check_title(&self.title)?;
        check_text("content", &self.content)?;
        Ok(ValidCreate {
            due_date: parse_due_date(&self.due_date)?,
            timestamp: parse_request_timestamp(&self.request_timestamp)?,
            done: self.done.unwrap_or(false),
            title: self.title,
            content: self.content,
        })
    }
}

impl UpdateTaskRequest {
    pub fn validate(self) -> Result<ValidUpdate, BodyError> {
        if let Some(title) = &self.title {
            check_title(title)?;
        }
        if let Some(content) = &self.content {
            check_text("content", content)?;
        }
        let patch = TaskPatch {
            due_date: self.due_date.as_deref().map(parse_due_date).transpose()?,
            title: self.title,
            content: self.content,
            done: self.done,
        };
        if patch.fields().is_empty() {
            return Err(BodyError::EmptyUpdate);
        }
        Ok(ValidUpdate {
            patch,
            timestamp: parse_request_timestamp(&self.request_timestamp)?,
        })
    }
}

impl DeleteTaskRequest {
    pub fn validate(self) -> Result<ValidDelete, BodyError> {
        Ok(ValidDelete {
            timestamp: parse_request_timestamp(&self.request_timestamp)?,
        })
    }
}

impl ValidCreate {
    /// Fingerprint of the normalised request, stored with an `Idempotency-Key`: two bodies
    /// that mean the same creation (key order, whitespace, `done` omitted vs false, another
    /// spelling of the same instant) have the same fingerprint.
    pub fn fingerprint(&self) -> String {
        let mut hasher = Sha256::new();
        // Length-prefixed fields so that no two distinct requests share an encoding.
        for part in [self.title.as_bytes(), self.content.as_bytes()] {
            hasher.update((part.len() as u64).to_be_bytes());
            hasher.update(part);
        }
        hasher.update(self.due_date.format("%Y-%m-%d").to_string().as_bytes());
        hasher.update([u8::from(self.done)]);
        hasher.update(self.timestamp.to_be_bytes());
        hex::encode(hasher.finalize())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn create(json: &str) -> Result<ValidCreate, BodyError> {
        parse_body::<CreateTaskRequest>(json.as_bytes())?.validate()
    }

    fn update(json: &str) -> Result<ValidUpdate, BodyError> {
        parse_body::<UpdateTaskRequest>(json.as_bytes())?.validate()
    }

    const TS: &str = r#""request_timestamp":"2024-01-01T08:00:00Z""#;

    #[test]
    fn a_complete_creation_is_accepted_verbatim() {
        let valid = create(&format!(
            r#"{{"title":"Ünïcode ✓ '; DROP TABLE tasks; --","content":"","due_date":"2024-02-29",{TS}}}"#
        ))
        .unwrap();
        assert_eq!(valid.title, "Ünïcode ✓ '; DROP TABLE tasks; --");
        assert_eq!(valid.content, "");
        assert_eq!(
            valid.due_date,
            NaiveDate::from_ymd_opt(2024, 2, 29).unwrap()
        );
        assert!(!valid.done);
    }

    #[test]
    fn invalid_creations_are_rejected_with_the_right_reason() {
        type Expectation = fn(&BodyError) -> bool;
        let cases: &[(&str, Expectation)] = &[
            ("{", |e| matches!(e, BodyError::MalformedJson(_))),
            ("", |e| matches!(e, BodyError::MalformedJson(_))),
            ("[1]", |e| matches!(e, BodyError::Invalid(_))),
            ("\"text\"", |e| matches!(e, BodyError::Invalid(_))),
            (
                r#"{"title":"a","content":"b","due_date":"2024-01-01"}"#,
                |e| matches!(e, BodyError::Invalid(m) if m.contains("request_timestamp")),
            ),
            (
                r#"{"title":"a","content":"b","due_date":"2023-02-29","request_timestamp":"2024-01-01T08:00:00Z"}"#,
                |e| matches!(e, BodyError::DueDate(_)),
            ),
            (
                r#"{"title":"a","content":"b","due_date":"2024-3-1","request_timestamp":"2024-01-01T08:00:00Z"}"#,
                |e| matches!(e, BodyError::DueDate(_)),
            ),
            (
                r#"{"title":"a","content":"b","due_date":"2024-03-01T00:00:00Z","request_timestamp":"2024-01-01T08:00:00Z"}"#,
                |e| matches!(e, BodyError::DueDate(_)),
            ),
            (
                r#"{"title":"a","content":"b","due_date":"2024-03-01","request_timestamp":"2024-01-01T08:00:00"}"#,
                |e| matches!(e, BodyError::Timestamp(_)),
            ),
            (
                r#"{"title":"a","content":"b","due_date":"2024-03-01","request_timestamp":1704096000}"#,
                |e| matches!(e, BodyError::Invalid(_)),
            ),
            (
                r#"{"title":"","content":"b","due_date":"2024-03-01","request_timestamp":"2024-01-01T08:00:00Z"}"#,
                |e| matches!(e, BodyError::EmptyTitle),
            ),
            (
                r#"{"title":"a","content":"nul \u0000 inside","due_date":"2024-03-01","request_timestamp":"2024-01-01T08:00:00Z"}"#,
                |e| matches!(e, BodyError::NulCharacter("content")),
            ),
            (
                r#"{"title":null,"content":"b","due_date":"2024-03-01","request_timestamp":"2024-01-01T08:00:00Z"}"#,
                |e| matches!(e, BodyError::Invalid(_)),
            ),
            (
                r#"{"title":"a","content":"b","due_date":"2024-03-01","done":"true","request_timestamp":"2024-01-01T08:00:00Z"}"#,
                |e| matches!(e, BodyError::Invalid(_)),
            ),
            (
                r#"{"title":"a","content":"b","due_date":"2024-03-01","done":1,"request_timestamp":"2024-01-01T08:00:00Z"}"#,
                |e| matches!(e, BodyError::Invalid(_)),
            ),
            (
                r#"{"title":"a","content":"b","due_date":"2024-03-01","done":null,"request_timestamp":"2024-01-01T08:00:00Z"}"#,
                |e| matches!(e, BodyError::Invalid(_)),
            ),
            (
                r#"{"title":"a","content":"b","due_date":"2024-03-01","priority":1,"request_timestamp":"2024-01-01T08:00:00Z"}"#,
                |e| matches!(e, BodyError::Invalid(m) if m.contains("priority")),
            ),
        ];
        for (json, expected) in cases {
            let error = create(json).expect_err(json);
            assert!(expected(&error), "{json}: unexpected {error:?}");
        }
        assert_eq!(
            parse_body::<CreateTaskRequest>(b"{\"title\":\"\xff\"}").unwrap_err(),
            BodyError::InvalidUtf8
        );
    }

    #[test]
    fn updates_need_at_least_one_field_and_reject_nulls() {
        assert_eq!(update(&format!("{{{TS}}}")), Err(BodyError::EmptyUpdate));
        assert!(matches!(
            update(&format!(r#"{{"title":null,{TS}}}"#)),
            Err(BodyError::Invalid(_))
        ));
        assert!(matches!(
            update(&format!(r#"{{"title":"",{TS}}}"#)),
            Err(BodyError::EmptyTitle)
        ));
        let valid = update(&format!(r#"{{"done":true,{TS}}}"#)).unwrap();
        assert_eq!(
            valid.patch.fields(),
            FieldSet {
                done: true,
                ..FieldSet::default()
            }
        );
        assert!(matches!(
            update(r#"{"done":true}"#),
            Err(BodyError::Invalid(_))
        ));
    }

    #[test]
    fn delete_needs_a_timestamp_and_nothing_else() {
        assert!(
            parse_body::<DeleteTaskRequest>(format!("{{{TS}}}").as_bytes())
                .unwrap()
                .validate()
                .is_ok()
        );
        assert!(parse_body::<DeleteTaskRequest>(b"{}").is_err());
        assert!(
            parse_body::<DeleteTaskRequest>(format!(r#"{{"title":"x",{TS}}}"#).as_bytes()).is_err()
        );
    }

    #[test]
    fn fingerprint_ignores_spelling_but_not_meaning() {
        let a = create(&format!(
            r#"{{"title":"a","content":"b","due_date":"2024-03-01",{TS}}}"#
        ))
        .unwrap();
        let same = create(
            r#"{ "request_timestamp":"2024-01-01T10:00:00+02:00", "done":false,
                 "due_date":"2024-03-01", "content":"b", "title":"a" }"#,
        )
        .unwrap();
        assert_eq!(a.fingerprint(), same.fingerprint());
        let moved = create(&format!(
            r#"{{"title":"ab","content":"","due_date":"2024-03-01",{TS}}}"#
        ))
        .unwrap();
        assert_ne!(a.fingerprint(), moved.fingerprint());
        let done = create(&format!(
            r#"{{"title":"a","content":"b","due_date":"2024-03-01","done":true,{TS}}}"#
        ))
        .unwrap();
        assert_ne!(a.fingerprint(), done.fingerprint());
    }
}
