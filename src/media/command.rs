//! Custom command profiles (spec §8.4): the `command` text parsed into
//! argument vectors, checked, and its `$tokens$` expanded. Pure.
//!
//! A command is untrusted text that Panda ran through a shell. Here nothing
//! runs through a shell, and a command may only do what a preset could:
//! read the source and files in the job's scratch directory, write files
//! there, with ffmpeg or ffprobe.
//!
//! - **Words.** Lines split at newlines and `;`; words at whitespace, with
//!   `'…'` and `"…"` grouping. Shell syntax (`|`, `&`, `>`, `<`, backticks,
//!   `\`, `$(`, `${`, a `;` inside quotes) is refused, not interpreted.
//! - **Programs.** `ffmpeg` and `ffprobe` by name; `qt-faststart IN OUT`
//!   becomes an ffmpeg remux with `-movflags +faststart`; Panda's other tools
//!   are not installed and are refused with a hint.
//! - **Tokens.** Every `$name$` must be one of spec §8.4. Tokens that stand
//!   for options (`$video_bitrate$`, `$filters$`, …) must be a word of their
//!   own and become zero or more words; `$input_file$` and `$output_file$`
//!   must be words of their own (absolute `file:` paths chosen by the
//!   server); `$record_id$`, `$width$` and `$height$` may sit inside words.
//! - **Options** are read with ffmpeg's own arities ([`tables`]), so a value
//!   is never mistaken for an option or a file. Options that read or write
//!   arbitrary files, devices or the protocol whitelist are refused; `-i`
//!   takes `$input_file$`, `$output_file$` or a plain name; filter graphs
//!   may name only listed filters; `-f` only listed formats.
//! - **Every word**: no absolute path (except `/dev/null` as the output of
//!   `-f null`), no `..`, no `~`, no URL or protocol prefix (`file:` with a
//!   plain name aside), no glob characters outside filter expressions.
//! - **Running.** Each ffmpeg step starts with the options the presets use
//!   (`-nostdin -y -v error -progress pipe:1 …`) and every input gets
//!   `-protocol_whitelist file` and a `-format_whitelist`: the source's own
//!   probed demuxer for `$input_file$`, plain containers for the job's files.
//!   The second matters as much as the first: a file the command wrote could
//!   hold an HLS playlist or a concat list naming absolute paths (another
//!   customer's originals), which those demuxers would open through `file:`.

mod tables;
mod tokens;

use std::collections::BTreeMap;
use std::path::PathBuf;

pub use tokens::token_values;

use super::plan::{COMMON_ARGS, Overlay};
use super::process::Tool;

/// A token of spec §8.4.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Token {
    InputFile,
    OutputFile,
    RecordId,
    Width,
    Height,
    Filters,
    VideoBitrate,
    VideoQuality,
    AudioBitrate,
    AudioSampleRate,
    AudioChannels,
    MaxVideoBitrate,
    MaxAudioBitrate,
    Fps,
    Clip,
    H264Profile,
    H264Level,
    Keyframes,
    ResolutionAndPadding,
}

/// Every token with its name.
const TOKENS: &[(&str, Token)] = &[
    ("input_file", Token::InputFile),
    ("output_file", Token::OutputFile),
    ("record_id", Token::RecordId),
    ("width", Token::Width),
    ("height", Token::Height),
    ("filters", Token::Filters),
    ("video_bitrate", Token::VideoBitrate),
    ("video_quality", Token::VideoQuality),
    ("audio_bitrate", Token::AudioBitrate),
    ("audio_sample_rate", Token::AudioSampleRate),
    ("audio_channels", Token::AudioChannels),
    ("max_video_bitrate", Token::MaxVideoBitrate),
    ("max_audio_bitrate", Token::MaxAudioBitrate),
    ("fps", Token::Fps),
    ("clip", Token::Clip),
    ("h264_profile", Token::H264Profile),
    ("h264_level", Token::H264Level),
    ("keyframes", Token::Keyframes),
    ("resolution_and_padding", Token::ResolutionAndPadding),
];

impl Token {
    /// The token named `name` (without the `$`s).
    pub fn parse(name: &str) -> Option<Self> {
        TOKENS.iter().find(|(n, _)| *n == name).map(|(_, t)| *t)
    }

    /// Its name, as written between the `$`s.
    pub fn name(self) -> &'static str {
        TOKENS
            .iter()
            .find(|(_, t)| *t == self)
            .map(|(n, _)| *n)
            .expect("every token is listed")
    }

    /// Tokens that stand for whole options (zero or more words).
    fn is_options(self) -> bool {
        !matches!(
            self,
            Self::InputFile | Self::OutputFile | Self::RecordId | Self::Width | Self::Height
        )
    }

    /// Tokens that stand for a file path and must be a word of their own.
    fn is_path(self) -> bool {
        matches!(self, Self::InputFile | Self::OutputFile)
    }
}

/// Why a command is refused: the line, the word and the reason.
#[derive(thiserror::Error, Debug, Clone, PartialEq, Eq)]
#[error("command line {line}: {word:?}: {reason}")]
pub struct CommandError {
    /// 1-based, counting lines split at newlines and `;`.
    pub line: usize,
    /// The offending word as written.
    pub word: String,
    pub reason: String,
}

fn refuse<T>(line: usize, word: &str, reason: impl Into<String>) -> Result<T, CommandError> {
    Err(CommandError {
        line,
        word: word.to_string(),
        reason: reason.into(),
    })
}

/// One piece of a word.
#[derive(Clone, Debug, PartialEq)]
enum Piece {
    Text(String),
    Token(Token),
}

/// A word as written: text and tokens.
#[derive(Clone, Debug, PartialEq)]
struct Word {
    pieces: Vec<Piece>,
    /// Some of it was in quotes.
    quoted: bool,
    /// As written, for messages.
    raw: String,
}

impl Word {
    /// The token, when the word is exactly one token.
    fn single_token(&self) -> Option<Token> {
        match self.pieces.as_slice() {
            [Piece::Token(t)] => Some(*t),
            _ => None,
        }
    }

    /// The word with embedded tokens replaced by harmless sample values,
    /// for checking its text (`$record_id$` is a hex id, sizes are numbers).
    fn sample(&self) -> String {
        self.pieces
            .iter()
            .map(|p| match p {
                Piece::Text(s) => s.as_str(),
                Piece::Token(Token::RecordId) => "id",
                Piece::Token(_) => "0",
            })
            .collect()
    }
}

/// A program a command line may run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Program {
    Ffmpeg,
    Ffprobe,
    /// `qt-faststart IN OUT`, run as an ffmpeg remux.
    QtFaststart,
}

/// One element of a checked command line.
#[derive(Clone, Debug, PartialEq)]
enum Item {
    /// `-name`, with its value when it takes one.
    Opt { name: String, value: Option<Word> },
    /// A token standing for options, alone in its word.
    Options(Token),
    /// A file: an ffmpeg output, an ffprobe input, a qt-faststart file.
    File(Word),
}

#[derive(Clone, Debug, PartialEq)]
struct Line {
    number: usize,
    program: Program,
    items: Vec<Item>,
}

/// A parsed and checked command: what a profile stores the text of.
#[derive(Clone, Debug, PartialEq)]
pub struct Template {
    lines: Vec<Line>,
}

/// Parses and checks a profile's `command`.
pub fn parse(command: &str) -> Result<Template, CommandError> {
    let mut lines = Vec::new();
    for (index, words) in lex(command)?.into_iter().enumerate() {
        let number = index + 1;
        let Some((program, args)) = words.split_first() else {
            continue;
        };
        let program = program_of(number, program)?;
        let items = match program {
            Program::Ffmpeg => ffmpeg_items(number, args)?,
            Program::Ffprobe => ffprobe_items(number, args)?,
            Program::QtFaststart => faststart_items(number, args)?,
        };
        lines.push(Line {
            number,
            program,
            items,
        });
    }
    if lines.is_empty() {
        return refuse(1, command.trim(), "the command is empty");
    }
    Ok(Template { lines })
}

// -- words ----------------------------------------------------------------------

/// Longest token name looked for after a `$`.
const MAX_TOKEN_NAME: usize = 32;

/// The lexer's state while reading one word.
#[derive(Default)]
struct WordBuilder {
    pieces: Vec<Piece>,
    text: String,
    quoted: bool,
    started: bool,
    /// Byte offset of the word's start in the command.
    start: usize,
}

impl WordBuilder {
    fn push_char(&mut self, c: char) {
        self.text.push(c);
        self.started = true;
    }

    fn push_token(&mut self, t: Token) {
        if !self.text.is_empty() {
            self.pieces
                .push(Piece::Text(std::mem::take(&mut self.text)));
        }
        self.pieces.push(Piece::Token(t));
        self.started = true;
    }

    fn finish(&mut self, command: &str, end: usize) -> Option<Word> {
        if !self.started {
            return None;
        }
        if !self.text.is_empty() {
            self.pieces
                .push(Piece::Text(std::mem::take(&mut self.text)));
        }
        let word = Word {
            pieces: std::mem::take(&mut self.pieces),
            quoted: self.quoted,
            raw: command[self.start..end].to_string(),
        };
        *self = Self::default();
        Some(word)
    }
}

/// Splits the command into lines of words.
fn lex(command: &str) -> Result<Vec<Vec<Word>>, CommandError> {
    let mut lines = vec![Vec::new()];
    let mut word = WordBuilder::default();
    let mut quote: Option<char> = None;
    let mut chars = command.char_indices().peekable();
    while let Some((at, c)) = chars.next() {
        let line = lines.len();
        if !word.started && quote.is_none() {
            word.start = at;
        }
        let start = word.start;
        let bad = |reason: &str| refuse(line, &raw_word(command, start), reason);
        match (quote, c) {
            (None, '\n' | ';') => {
                lines.last_mut().unwrap().extend(word.finish(command, at));
                lines.push(Vec::new());
            }
            (None, c) if c.is_whitespace() => {
                lines.last_mut().unwrap().extend(word.finish(command, at));
            }
            (None, '\'' | '"') => {
                quote = Some(c);
                word.quoted = true;
                word.started = true;
            }
            (Some(q), c) if c == q => quote = None,
            (Some(_), '\n') => return bad("a quote is not closed on its line"),
            (Some(_), ';') => {
                return bad("`;` separates commands and cannot appear inside quotes");
            }
            (_, '$') => {
                let t = token_at(&command[at + 1..]).map_err(|reason| CommandError {
                    line,
                    word: raw_word(command, start),
                    reason,
                })?;
                for _ in 0..t.name().len() + 1 {
                    chars.next();
                }
                word.push_token(t);
            }
            (_, '|' | '&' | '>' | '<' | '`' | '\\') => {
                return bad(&format!(
                    "`{c}` is shell syntax; commands run without a shell and cannot use it"
                ));
            }
            (_, c) if c.is_control() && c != '\t' && c != '\r' => {
                return bad("control characters are not allowed");
            }
            (_, c) => word.push_char(c),
        }
    }
    if quote.is_some() {
        return refuse(
            lines.len(),
            &raw_word(command, word.start),
            "a quote is not closed",
        );
    }
    lines
        .last_mut()
        .unwrap()
        .extend(word.finish(command, command.len()));
    Ok(lines)
}

/// The token starting right after a `$`, or why there is none.
fn token_at(rest: &str) -> Result<Token, String> {
    if rest.starts_with('(') || rest.starts_with('{') {
        return Err(format!(
            "`${}` is shell syntax; commands run without a shell and cannot use it",
            &rest[..1]
        ));
    }
    let name: String = rest
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .take(MAX_TOKEN_NAME + 1)
        .collect();
    if !rest[name.len()..].starts_with('$') || name.is_empty() {
        return Err("`$` must start a token such as $input_file$".into());
    }
    Token::parse(&name).ok_or_else(|| {
        let known: Vec<&str> = TOKENS.iter().map(|(n, _)| *n).collect();
        format!(
            "${name}$ is not a known token (known: ${}$)",
            known.join("$, $")
        )
    })
}

/// The word starting at `start`, up to the next blank or separator, for
/// messages.
fn raw_word(command: &str, start: usize) -> String {
    command[start..]
        .split(|c: char| c.is_whitespace() || c == ';')
        .next()
        .unwrap_or("")
        .to_string()
}

// -- programs ---------------------------------------------------------------------

fn program_of(line: usize, word: &Word) -> Result<Program, CommandError> {
    let name = word.sample();
    if word.pieces.iter().any(|p| matches!(p, Piece::Token(_))) {
        return refuse(line, &word.raw, "a program name cannot be a token");
    }
    match name.as_str() {
        "ffmpeg" => return Ok(Program::Ffmpeg),
        "ffprobe" => return Ok(Program::Ffprobe),
        "qt-faststart" => return Ok(Program::QtFaststart),
        _ => {}
    }
    let base = name.rsplit('/').next().unwrap_or(&name);
    if name.contains('/') && matches!(base, "ffmpeg" | "ffprobe" | "qt-faststart") {
        return refuse(
            line,
            &word.raw,
            format!("programs are named, not given by path: write {base}"),
        );
    }
    let lower = base.to_ascii_lowercase();
    if let Some((tool, hint)) = tables::LEGACY_TOOLS.iter().find(|(t, _)| *t == lower) {
        return refuse(
            line,
            &word.raw,
            format!(
                "{tool} is one of Panda's legacy tools and is not installed on this server; {hint}"
            ),
        );
    }
    refuse(
        line,
        &word.raw,
        "is not an allowed program: custom commands may run ffmpeg and ffprobe (and qt-faststart)",
    )
}

// -- checks shared by every word ----------------------------------------------------

/// Where a word sits, for what it may contain.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Context {
    /// An option value or other text.
    Plain,
    /// A filter graph or an expression, where `*` and `?` are arithmetic.
    Expression,
}

/// Characters that split a word into the parts that are checked for paths
/// and protocols: option syntax (`key=value:key=value`, lists, labels).
fn is_separator(c: char) -> bool {
    matches!(
        c,
        '=' | ',' | ':' | '\'' | '"' | '[' | ']' | '(' | ')' | ' ' | '\t'
    )
}

/// No path outside the job's directory, no protocol, no glob.
fn check_text(line: usize, word: &Word, context: Context) -> Result<(), CommandError> {
    if word.single_token().is_some_and(Token::is_path) {
        return Ok(());
    }
    let text = word.sample();
    if context == Context::Plain
        && let Some(c) = text.chars().find(|c| matches!(c, '*' | '?' | '{' | '}'))
    {
        return refuse(
            line,
            &word.raw,
            format!("`{c}` is a glob character; name files exactly"),
        );
    }
    if text.contains("://") {
        return refuse(
            line,
            &word.raw,
            "URLs are not allowed: commands work on local files only",
        );
    }
    check_protocols(line, word, &text)?;
    for part in text.split(is_separator) {
        if part.starts_with('/') {
            return refuse(
                line,
                &word.raw,
                "absolute paths are not allowed: use $input_file$, $output_file$ or a plain file name in the job's directory",
            );
        }
        if part.starts_with('~') {
            return refuse(line, &word.raw, "home directory paths are not allowed");
        }
        if part.split('/').any(|segment| segment == "..") {
            return refuse(line, &word.raw, "`..` would leave the job's directory");
        }
    }
    Ok(())
}

/// A known protocol name followed by `:` where a value starts.
fn check_protocols(line: usize, word: &Word, text: &str) -> Result<(), CommandError> {
    let starts = text.split(['=', ',', '\'', '"', '[', ']', '(', ' ']);
    for part in starts {
        let Some((scheme, rest)) = part.split_once(':') else {
            continue;
        };
        let scheme = scheme.to_ascii_lowercase();
        let looks_like_scheme = scheme.starts_with(|c: char| c.is_ascii_alphabetic())
            && scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
        if !looks_like_scheme {
            continue;
        }
        // `crypto+file:` nests protocols; any known one counts.
        let Some(protocol) = scheme.split('+').find(|p| tables::PROTOCOLS.contains(p)) else {
            continue;
        };
        if scheme == "file" && is_plain_name(rest) {
            continue;
        }
        return refuse(
            line,
            &word.raw,
            format!(
                "the {protocol}: protocol is not allowed: commands read and write local files in the job's directory only"
            ),
        );
    }
    Ok(())
}

/// A file name in the job's directory: letters, digits, `._-+%`, not
/// starting with `-` or `.`.
fn is_plain_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 200
        && !name.starts_with(['-', '.'])
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '+' | '%'))
        && name != ".."
}

// -- ffmpeg -------------------------------------------------------------------------

/// What the option after an `-f` applies to.
struct PendingFormat {
    value: String,
    raw: String,
}

fn ffmpeg_items(line: usize, words: &[Word]) -> Result<Vec<Item>, CommandError> {
    let mut items = Vec::new();
    let mut format: Option<PendingFormat> = None;
    let mut i = 0;
    while i < words.len() {
        let word = &words[i];
        i += 1;
        if let Some(item) = options_token(line, word)? {
            items.push(item);
            continue;
        }
        let Some(name) = option_name(word) else {
            check_output(line, word, format.take())?;
            items.push(Item::File(word.clone()));
            continue;
        };
        check_option_name(line, word, &name)?;
        if takes_no_value(&name, tables::FFMPEG_FLAGS) {
            items.push(Item::Opt { name, value: None });
            continue;
        }
        let value = option_value(line, word, words.get(i))?;
        i += 1;
        match base_name(&name) {
            "i" => check_input(line, value, format.take())?,
            "f" => {
                check_text(line, value, Context::Plain)?;
                format = Some(PendingFormat {
                    value: value.sample(),
                    raw: value.raw.clone(),
                });
            }
            _ => check_value(line, &name, value)?,
        }
        items.push(Item::Opt {
            name,
            value: Some(value.clone()),
        });
    }
    if let Some(f) = format {
        check_format(line, &f, tables::MUXERS, "output")?;
    }
    Ok(items)
}

/// An options token standing alone, or `None` for any other word.
fn options_token(line: usize, word: &Word) -> Result<Option<Item>, CommandError> {
    let embedded_options = word.pieces.iter().find_map(|p| match p {
        Piece::Token(t) if t.is_options() || t.is_path() => Some(*t),
        _ => None,
    });
    let Some(token) = embedded_options else {
        return Ok(None);
    };
    if word.pieces.len() > 1 {
        let what = if token.is_path() { "a path" } else { "options" };
        return refuse(
            line,
            &word.raw,
            format!(
                "${}$ stands for {what} and must be a word of its own",
                token.name()
            ),
        );
    }
    if !token.is_options() {
        return Ok(None);
    }
    if word.quoted {
        return refuse(
            line,
            &word.raw,
            format!(
                "${}$ stands for options (several words): write it without quotes",
                token.name()
            ),
        );
    }
    Ok(Some(Item::Options(token)))
}

/// `name` for a word `-name` (not `-` alone, not a token).
fn option_name(word: &Word) -> Option<String> {
    if word.single_token().is_some() {
        return None;
    }
    let text = word.sample();
    let name = text.strip_prefix('-')?;
    (!name.is_empty()).then(|| name.to_string())
}

/// The option's name without its stream specifier (`c:v:0` → `c`).
fn base_name(name: &str) -> &str {
    name.split(':').next().unwrap_or(name)
}

fn check_option_name(line: usize, word: &Word, name: &str) -> Result<(), CommandError> {
    if name.starts_with('/') {
        return refuse(
            line,
            &word.raw,
            "options that read their value from a file (-/option) are not allowed",
        );
    }
    let valid = name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | ':' | '-' | '.'));
    if !valid {
        return refuse(line, &word.raw, "is not an option name");
    }
    let base = base_name(name);
    if let Some((_, why)) = tables::FORBIDDEN_OPTIONS.iter().find(|(o, _)| *o == base) {
        return refuse(
            line,
            &word.raw,
            format!("this option {why} and is not allowed"),
        );
    }
    if tables::INFORMATION_OPTIONS.contains(&base) {
        return refuse(
            line,
            &word.raw,
            "this option prints information and exits; it has no use in an encoding",
        );
    }
    Ok(())
}

/// Flags, and `-noX` for a boolean X.
fn takes_no_value(name: &str, flags: &[&str]) -> bool {
    let base = base_name(name);
    flags.contains(&base)
        || base
            .strip_prefix("no")
            .is_some_and(|b| flags.contains(&b) || tables::FFMPEG_BOOL_WITH_VALUE.contains(&b))
}

fn option_value<'w>(
    line: usize,
    option: &Word,
    value: Option<&'w Word>,
) -> Result<&'w Word, CommandError> {
    let Some(value) = value else {
        return refuse(line, &option.raw, "this option needs a value");
    };
    if let Some(t) = value.single_token()
        && t.is_options()
    {
        return refuse(
            line,
            &value.raw,
            format!(
                "{} needs a value, but ${}$ stands for options",
                option.raw,
                t.name()
            ),
        );
    }
    Ok(value)
}

/// The value of an option other than `-i` and `-f`.
fn check_value(line: usize, name: &str, value: &Word) -> Result<(), CommandError> {
    if let Some(t) = value.single_token()
        && t.is_path()
    {
        return refuse(
            line,
            &value.raw,
            format!(
                "${}$ can only follow -i or be an output, not -{name}",
                t.name()
            ),
        );
    }
    match base_name(name) {
        "vf" | "af" | "filter" | "lavfi" | "filter_complex" => check_filter_graph(line, value),
        // Expressions, and `-map 0:a?` (an optional stream, not a glob).
        "force_key_frames" | "map" => check_text(line, value, Context::Expression),
        "passlogfile" => check_plain_name(line, value, "the two-pass log prefix"),
        "progress" if value.sample() == "pipe:1" => Ok(()),
        "progress" => refuse(line, &value.raw, "-progress may only write to pipe:1"),
        "pattern_type" if value.sample().starts_with("glob") => refuse(
            line,
            &value.raw,
            "glob patterns are not allowed; name files exactly",
        ),
        _ => check_text(line, value, Context::Plain),
    }
}

fn check_plain_name(line: usize, word: &Word, what: &str) -> Result<(), CommandError> {
    check_text(line, word, Context::Plain)?;
    let text = word.sample();
    if !is_plain_name(text.strip_prefix("file:").unwrap_or(&text)) {
        return refuse(
            line,
            &word.raw,
            format!(
                "{what} must be a plain file name in the job's directory (letters, digits, . _ - + %)"
            ),
        );
    }
    Ok(())
}

/// `-i`: the source, the main output, or a file of the job.
fn check_input(
    line: usize,
    value: &Word,
    format: Option<PendingFormat>,
) -> Result<(), CommandError> {
    if let Some(f) = format {
        check_format(line, &f, tables::DEMUXERS, "input")?;
    }
    if value.single_token().is_some_and(Token::is_path) {
        return Ok(());
    }
    check_plain_name(
        line,
        value,
        "an input other than $input_file$ or $output_file$",
    )
}

/// An ffmpeg output: `$output_file$`, a plain name, or nothing (`-f null`).
fn check_output(
    line: usize,
    word: &Word,
    format: Option<PendingFormat>,
) -> Result<(), CommandError> {
    let null = format.as_ref().is_some_and(|f| f.value == "null");
    if let Some(f) = &format {
        check_format(line, f, tables::MUXERS, "output")?;
    }
    match word.single_token() {
        Some(Token::OutputFile) => return Ok(()),
        Some(Token::InputFile) => {
            return refuse(
                line,
                &word.raw,
                "$input_file$ is the source and cannot be written",
            );
        }
        _ => {}
    }
    let text = word.sample();
    if null && (text == "/dev/null" || text == "-") {
        return Ok(());
    }
    if text == "/dev/null" || text == "-" {
        return refuse(
            line,
            &word.raw,
            "only a -f null output may be /dev/null or -",
        );
    }
    check_plain_name(line, word, "an output other than $output_file$")
}

fn check_format(
    line: usize,
    format: &PendingFormat,
    allowed: &[&str],
    side: &str,
) -> Result<(), CommandError> {
    if allowed.contains(&format.value.as_str()) {
        return Ok(());
    }
    refuse(
        line,
        &format.raw,
        format!(
            "-f {} is not allowed for an {side} (allowed: {})",
            format.value,
            allowed.join(", ")
        ),
    )
}

/// Every filter named in a graph must be listed; labels and arguments are
/// checked like any text.
fn check_filter_graph(line: usize, value: &Word) -> Result<(), CommandError> {
    check_text(line, value, Context::Expression)?;
    for name in filter_names(&value.sample()) {
        if !tables::FILTERS.contains(&name.as_str()) {
            return refuse(
                line,
                &value.raw,
                format!(
                    "the filter {name:?} is not allowed in custom commands (filters that open files, devices or the network never are)"
                ),
            );
        }
    }
    Ok(())
}

/// The filter names of a filter graph: each `,`/`;`-separated filter
/// outside `'…'` quotes, without its `[label]`s, up to `=` or `@`.
fn filter_names(graph: &str) -> Vec<String> {
    let mut specs = vec![String::new()];
    let mut quoted = false;
    for c in graph.chars() {
        match c {
            '\'' => quoted = !quoted,
            ',' | ';' if !quoted => specs.push(String::new()),
            c => specs.last_mut().unwrap().push(c),
        }
    }
    specs
        .iter()
        .filter_map(|spec| {
            let mut rest = spec.trim();
            while let Some(after) = rest.strip_prefix('[') {
                rest = after.split_once(']').map_or("", |(_, r)| r).trim_start();
            }
            let name: String = rest
                .chars()
                .take_while(|c| !matches!(c, '=' | '@' | '[' | ' '))
                .collect();
            (!name.is_empty()).then_some(name)
        })
        .collect()
}

// -- ffprobe and qt-faststart ---------------------------------------------------------

fn ffprobe_items(line: usize, words: &[Word]) -> Result<Vec<Item>, CommandError> {
    let mut items = Vec::new();
    let mut format: Option<PendingFormat> = None;
    let mut i = 0;
    while i < words.len() {
        let word = &words[i];
        i += 1;
        if let Some(item) = options_token(line, word)? {
            items.push(item);
            continue;
        }
        let Some(name) = option_name(word) else {
            check_input(line, word, format.take())?;
            items.push(Item::File(word.clone()));
            continue;
        };
        check_option_name(line, word, &name)?;
        if takes_no_value(&name, tables::FFPROBE_FLAGS) {
            items.push(Item::Opt { name, value: None });
            continue;
        }
        let value = option_value(line, word, words.get(i))?;
        i += 1;
        match base_name(&name) {
            "i" => check_input(line, value, format.take())?,
            "o" => check_output(line, value, None)?,
            "f" => {
                check_text(line, value, Context::Plain)?;
                format = Some(PendingFormat {
                    value: value.sample(),
                    raw: value.raw.clone(),
                });
            }
            _ => check_value(line, &name, value)?,
        }
        items.push(Item::Opt {
            name,
            value: Some(value.clone()),
        });
    }
    Ok(items)
}

/// `qt-faststart IN OUT`.
fn faststart_items(line: usize, words: &[Word]) -> Result<Vec<Item>, CommandError> {
    let [input, output] = words else {
        let raw: Vec<&str> = words.iter().map(|w| w.raw.as_str()).collect();
        return refuse(
            line,
            &raw.join(" "),
            "qt-faststart takes exactly an input and an output file",
        );
    };
    check_input(line, input, None)?;
    check_output(line, output, None)?;
    Ok(vec![Item::File(input.clone()), Item::File(output.clone())])
}

// -- expansion ------------------------------------------------------------------------

/// The picture filters `$filters$` stands for.
#[derive(Clone, Debug, PartialEq)]
pub struct Picture {
    /// The chain applied to the source's video stream (scale, pad, …).
    pub chain: String,
    /// The source's video stream index.
    pub stream: usize,
    /// The watermark image and its overlay, when the profile has one.
    pub watermark: Option<WatermarkImage>,
}

/// A watermark for `$filters$`: the image, added as the run's last input.
#[derive(Clone, Debug, PartialEq)]
pub struct WatermarkImage {
    /// `file:` + its path.
    pub input: String,
    /// Its demuxer (`-f`).
    pub format: String,
    /// The overlay; its input index is set when expanding.
    pub overlay: Overlay,
}

/// What each token stands for in one encoding.
#[derive(Clone, Debug, PartialEq)]
pub struct TokenValues {
    /// The source, absolute.
    pub input_file: PathBuf,
    /// The source's demuxer as probed (ffprobe's `format_name`), the only
    /// one `$input_file$` may be read with; `None` allows the plain
    /// containers the job's own files may be.
    pub source_format: Option<String>,
    /// The main output `<scratch>/<id><extname>`, absolute.
    pub output_file: PathBuf,
    pub record_id: String,
    pub width: Option<i64>,
    pub height: Option<i64>,
    /// `$filters$` and `$resolution_and_padding$`; `None` without video.
    pub picture: Option<Picture>,
    /// The words of every other options token (missing means none).
    pub options: BTreeMap<Token, Vec<String>>,
}

/// One program run of an expanded command.
#[derive(Clone, Debug, PartialEq)]
pub struct Step {
    /// The command line it came from (1-based).
    pub line: usize,
    pub tool: Tool,
    pub args: Vec<String>,
}

impl Template {
    /// The argument vectors, tokens replaced, protective options added.
    pub fn expand(&self, values: &TokenValues) -> Result<Vec<Step>, CommandError> {
        self.lines.iter().map(|l| l.expand(values)).collect()
    }
}

impl Line {
    fn expand(&self, values: &TokenValues) -> Result<Step, CommandError> {
        let mut out = Expansion::default();
        let (tool, mut args) = match self.program {
            Program::Ffmpeg | Program::QtFaststart => (Tool::Ffmpeg, strings(COMMON_ARGS)),
            // ffprobe has one input; its format options apply to it wherever
            // they stand, so the whitelists allow either kind of input.
            Program::Ffprobe => {
                let formats = format!("{},{}", source_formats(values), scratch_formats());
                let mut args = strings(&["-hide_banner"]);
                args.extend(input_guard(&formats));
                (Tool::Ffprobe, args)
            }
        };
        if self.program == Program::QtFaststart {
            let [Item::File(input), Item::File(output)] = self.items.as_slice() else {
                unreachable!("checked when parsed");
            };
            args.extend(input_guard(&formats_for(input, values)));
            args.push("-i".into());
            args.push(word_value(self.number, input, values)?);
            args.extend(strings(&[
                "-map",
                "0",
                "-c",
                "copy",
                "-movflags",
                "+faststart",
            ]));
            args.push(word_value(self.number, output, values)?);
            return Ok(Step {
                line: self.number,
                tool,
                args,
            });
        }
        for item in &self.items {
            out.item(self.number, self.program, item, values)?;
        }
        args.extend(out.args);
        args.extend(out.trailing);
        Ok(Step {
            line: self.number,
            tool,
            args,
        })
    }
}

/// Arguments being expanded, with what `$filters$` needs to know.
#[derive(Default)]
struct Expansion {
    args: Vec<String>,
    /// Inputs so far (`-i`).
    inputs: usize,
    /// The input index of `$input_file$`, once seen.
    source: Option<usize>,
    /// Inputs added after everything else (watermark images).
    trailing: Vec<String>,
    /// How many inputs `trailing` holds.
    trailing_inputs: usize,
    /// Watermark overlays so far (for unique labels).
    overlays: usize,
}

impl Expansion {
    fn item(
        &mut self,
        line: usize,
        program: Program,
        item: &Item,
        values: &TokenValues,
    ) -> Result<(), CommandError> {
        match item {
            Item::Opt { name, value } if name == "i" && program == Program::Ffmpeg => {
                let value = value.as_ref().expect("-i has a value");
                if value.single_token() == Some(Token::InputFile) {
                    self.source.get_or_insert(self.inputs);
                }
                self.args.extend(input_guard(&formats_for(value, values)));
                self.args.push("-i".into());
                self.args.push(word_value(line, value, values)?);
                self.inputs += 1;
            }
            Item::Opt { name, value } => {
                self.args.push(format!("-{name}"));
                if let Some(v) = value {
                    self.args.push(word_value(line, v, values)?);
                }
            }
            Item::File(word) => self.args.push(word_value(line, word, values)?),
            Item::Options(Token::Filters | Token::ResolutionAndPadding) => {
                self.picture(values.picture.as_ref())
            }
            Item::Options(token) => {
                let words = values.options.get(token).cloned().unwrap_or_default();
                self.args.extend(words);
            }
        }
        Ok(())
    }

    /// `-vf <chain>`; with a watermark, a complex graph over the source's
    /// video and the image (added as the last input), mapped with the
    /// source's first audio stream.
    fn picture(&mut self, picture: Option<&Picture>) {
        let Some(p) = picture else {
            return;
        };
        let Some(wm) = &p.watermark else {
            self.args.extend(["-vf".to_string(), p.chain.clone()]);
            return;
        };
        let source = self.source.unwrap_or(0);
        let image = self.inputs + self.trailing_inputs;
        self.trailing_inputs += 1;
        let overlay = Overlay {
            input: image,
            ..wm.overlay.clone()
        };
        let label = format!("wm{}", self.overlays);
        self.overlays += 1;
        let graph = format!(
            "[{source}:{}]{}[base{label}];{}[{label}]",
            p.stream,
            p.chain,
            overlay.graph(&format!("[base{label}]"))
        );
        self.args.extend([
            "-filter_complex".to_string(),
            graph,
            "-map".to_string(),
            format!("[{label}]"),
            "-map".to_string(),
            format!("{source}:a:0?"),
        ]);
        self.trailing.extend([
            "-protocol_whitelist".to_string(),
            "file".to_string(),
            "-f".to_string(),
            wm.format.clone(),
            "-i".to_string(),
            wm.input.clone(),
        ]);
    }
}

/// The options every input gets: local files only, of these demuxers.
fn input_guard(formats: &str) -> Vec<String> {
    vec![
        "-protocol_whitelist".into(),
        "file".into(),
        "-format_whitelist".into(),
        formats.into(),
    ]
}

/// The demuxers an input may be read with: the source's probed one for
/// `$input_file$`, plain containers for everything else.
fn formats_for(input: &Word, values: &TokenValues) -> String {
    match input.single_token() {
        Some(Token::InputFile) => source_formats(values),
        _ => scratch_formats(),
    }
}

fn source_formats(values: &TokenValues) -> String {
    values.source_format.clone().unwrap_or_else(scratch_formats)
}

fn scratch_formats() -> String {
    tables::SCRATCH_DEMUXERS.join(",")
}

/// A word with its tokens replaced (never an options token: checked).
fn word_value(line: usize, word: &Word, values: &TokenValues) -> Result<String, CommandError> {
    let mut out = String::new();
    for piece in &word.pieces {
        match piece {
            Piece::Text(s) => out.push_str(s),
            Piece::Token(Token::InputFile) => out.push_str(&file_url(&values.input_file)),
            Piece::Token(Token::OutputFile) => out.push_str(&file_url(&values.output_file)),
            Piece::Token(Token::RecordId) => out.push_str(&values.record_id),
            Piece::Token(t @ (Token::Width | Token::Height)) => {
                let size = if *t == Token::Width {
                    values.width
                } else {
                    values.height
                };
                let Some(size) = size else {
                    return refuse(
                        line,
                        &word.raw,
                        format!(
                            "${}$ has no value: the profile sets no size and the source has no video",
                            t.name()
                        ),
                    );
                };
                out.push_str(&size.to_string());
            }
            Piece::Token(t) => unreachable!("options token ${}$ inside a word", t.name()),
        }
    }
    Ok(out)
}

fn file_url(path: &std::path::Path) -> String {
    format!("file:{}", path.display())
}

fn strings(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

#[cfg(test)]
mod tests;
