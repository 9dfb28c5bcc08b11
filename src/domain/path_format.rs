//! `path_format`: the pattern of an object's storage key (spec §7).
//!
//! A pattern mixes literal text with tokens (`:id`, `:video_id`, `:original`,
//! `:date`, `:profile`, `:type`, `:resolution`). It must contain `:id`, and the
//! expanded key must stay inside the cloud's storage root: no absolute paths,
//! no `..`, no characters that mean something to a shell or a URL.

use thiserror::Error;

#[derive(Debug, Error, PartialEq)]
pub enum PathFormatError {
    #[error("path_format must contain :id")]
    MissingId,
    #[error("path_format has an unknown token :{0}")]
    UnknownToken(String),
    #[error("path_format may only use letters, digits, '-', '_', '.', '/' and tokens; found {0:?}")]
    BadCharacter(char),
    #[error("path_format must be a relative path without empty, '.' or '..' segments")]
    BadSegment,
    #[error("path_format is longer than 512 characters")]
    TooLong,
}

#[derive(Debug, Clone, PartialEq)]
enum Part {
    Literal(String),
    Token(Token),
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Token {
    Id,
    VideoId,
    Original,
    Date,
    Profile,
    Type,
    Resolution,
}

/// The values tokens expand to, for one object.
#[derive(Debug, Clone, Default)]
pub struct PathValues<'a> {
    pub id: &'a str,
    pub video_id: &'a str,
    /// Original file name without its extension (sanitised here).
    pub original: &'a str,
    /// `YYYY-MM-DD`.
    pub date: &'a str,
    /// Profile name, or `original`.
    pub profile: &'a str,
    /// `original` or `encodings`.
    pub kind: &'a str,
    /// `WxH`, or empty when unknown.
    pub resolution: &'a str,
}

/// The default pattern: the object's own id.
pub const DEFAULT: &str = ":id";

/// Checks a pattern; the error names what is wrong.
pub fn validate(pattern: &str) -> Result<(), PathFormatError> {
    let parts = parse(pattern)?;
    if !parts.contains(&Part::Token(Token::Id)) {
        return Err(PathFormatError::MissingId);
    }
    let literal_shape: String = parts
        .iter()
        .map(|p| match p {
            Part::Literal(s) => s.as_str(),
            Part::Token(_) => "x",
        })
        .collect();
    check_segments(&literal_shape)
}

/// Expands a validated pattern into a storage key (without extension).
pub fn expand(pattern: &str, values: &PathValues) -> Result<String, PathFormatError> {
    validate(pattern)?;
    let mut out = String::new();
    for part in parse(pattern)? {
        match part {
            Part::Literal(s) => out.push_str(&s),
            Part::Token(t) => out.push_str(&match t {
                Token::Id => sanitize(values.id),
                Token::VideoId => sanitize(values.video_id),
                Token::Original => sanitize(values.original),
                Token::Date => sanitize(values.date),
                Token::Profile => sanitize(values.profile),
                Token::Type => sanitize(values.kind),
                Token::Resolution => sanitize(values.resolution),
            }),
        }
    }
    check_segments(&out)?;
    Ok(out)
}

fn parse(pattern: &str) -> Result<Vec<Part>, PathFormatError> {
    if pattern.len() > 512 {
        return Err(PathFormatError::TooLong);
    }
    let mut parts = Vec::new();
    let mut literal = String::new();
    let mut chars = pattern.chars().peekable();
    while let Some(c) = chars.next() {
        if c == ':' {
            let mut name = String::new();
            while let Some(&n) = chars.peek() {
                if n.is_ascii_lowercase() || n == '_' {
                    name.push(n);
                    chars.next();
                } else {
                    break;
                }
            }
            let token = match name.as_str() {
                "id" => Token::Id,
                "video_id" => Token::VideoId,
                "original" => Token::Original,
                "date" => Token::Date,
                "profile" => Token::Profile,
                "type" => Token::Type,
                "resolution" => Token::Resolution,
                _ => return Err(PathFormatError::UnknownToken(name)),
            };
            if !literal.is_empty() {
                parts.push(Part::Literal(std::mem::take(&mut literal)));
            }
            parts.push(Part::Token(token));
        } else if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/') {
            literal.push(c);
        } else {
            return Err(PathFormatError::BadCharacter(c));
        }
    }
    if !literal.is_empty() {
        parts.push(Part::Literal(literal));
    }
    Ok(parts)
}

fn check_segments(key: &str) -> Result<(), PathFormatError> {
    let ok = !key.is_empty()
        && key
            .split('/')
            .all(|seg| !seg.is_empty() && seg != "." && seg != "..");
    if ok {
        Ok(())
    } else {
        Err(PathFormatError::BadSegment)
    }
}

/// Makes a value safe inside one key segment: keeps letters, digits, `-`,
/// `_` and `.`, replaces the rest with `_`, and never yields `.` or `..`.
pub fn sanitize(value: &str) -> String {
    let mut s: String = value
        .chars()
        .take(100)
        .map(|c| match c {
            'a'..='z' | 'A'..='Z' | '0'..='9' | '-' | '_' | '.' => c,
            _ => '_',
        })
        .collect();
    if s.is_empty() || s.chars().all(|c| c == '.') {
        s = s.replace('.', "_");
        if s.is_empty() {
            s.push('_');
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values() -> PathValues<'static> {
        PathValues {
            id: "e1",
            video_id: "v1",
            original: "My Holiday (1)",
            date: "2015-03-16",
            profile: "h264",
            kind: "encodings",
            resolution: "640x480",
        }
    }

    #[test]
    fn expands_the_spec_example() {
        let key = expand("my-path/:video_id/:profile/:id", &values()).unwrap();
        assert_eq!(key, "my-path/v1/h264/e1");
    }

    #[test]
    fn expands_every_token() {
        let key = expand(":date/:type/:original-:resolution/:id", &values()).unwrap();
        assert_eq!(key, "2015-03-16/encodings/My_Holiday__1_-640x480/e1");
    }

    #[test]
    fn requires_id() {
        assert_eq!(
            validate("videos/:video_id"),
            Err(PathFormatError::MissingId)
        );
    }

    #[test]
    fn refuses_escapes_and_odd_characters() {
        assert_eq!(validate("../:id"), Err(PathFormatError::BadSegment));
        assert_eq!(validate("/abs/:id"), Err(PathFormatError::BadSegment));
        assert_eq!(validate("a//:id"), Err(PathFormatError::BadSegment));
        assert_eq!(validate("a b/:id"), Err(PathFormatError::BadCharacter(' ')));
        assert_eq!(
            validate("$(rm)/:id"),
            Err(PathFormatError::BadCharacter('$'))
        );
        assert_eq!(
            validate(":idx"),
            Err(PathFormatError::UnknownToken("idx".into()))
        );
    }

    #[test]
    fn sanitises_hostile_original_names() {
        let v = PathValues {
            original: "..",
            ..values()
        };
        assert_eq!(expand(":original/:id", &v).unwrap(), "__/e1");
    }
}
