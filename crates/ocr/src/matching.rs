//! Finding text on a screen: phrases and regular expressions over words grouped into lines.
//!
//! The rules are vmkit's script semantics (SPEC §1, "Matching rules"):
//!
//! - A pattern matches a **run of consecutive words within one line**; it never spans lines.
//! - **Phrases** compare case-insensitively with whitespace normalised (runs of spaces are one space). A word
//!   also equals a pattern word when they differ only by punctuation around them (`Continue.` is `Continue`,
//!   `(Agree)` is `Agree`), because OCR and UI decorations add such marks.
//! - **Tiers**, each tried only when the ones before found nothing anywhere on the screen:
//!   1. **exact**: a run of words equal to the phrase;
//!   2. **substring**: the phrase inside a run's text (e.g. `Agree` inside `Disagree`); every word the occurrence
//!      touches is part of the match;
//!   3. **spaceless**: the phrase found in the run's text with all whitespace removed from both, for OCR
//!      splitting and merging words ("Ag reement", "SetUp"); only for phrases of at least
//!      [`SPACELESS_MIN_CHARS`] characters besides spaces;
//!   4. **near**: for phrases of at least [`NEAR_MIN_CHARS`] characters, the run of words (about as many as the
//!      phrase has) closest to the phrase by edit distance, if it is within one edit per [`NEAR_CHARS_PER_EDIT`]
//!      characters ("Create @ Computer Account" for "Create a Computer Account"); at most one per line. Short
//!      phrases never match approximately: "Sign Up" is not "Sign In".
//!
//!   5. **lookalike**, only where the caller allows it ([`MatchOptions::lookalikes`]; scripts say
//!      `lookalikes: true`): the spaceless comparison once characters OCR confuses are folded together on both
//!      sides (see [`fold_lookalike`]: `-`/`:`/`~`, `7`/`?`, `l`/`1`/`|`/`i`/`!`, `0`/`o`, …; underscores are
//!      left out like spaces), for typed text in
//!      entry fields such as `name-word7` read as `name:word?`; phrases of at least [`SPACELESS_MIN_CHARS`]
//!      characters besides spaces. Never tried unless asked for, and a match says it came from this tier.
//!
//!   So `Agree` finds the button "I Agree" and not "I Disagree" when both are on the screen, and a misread
//!   letter never shadows a correct reading elsewhere.
//! - **Regular expressions** ([`Pattern::parse`] reads `/.../` case-insensitively) are matched against each line's
//!   text (words joined by single spaces); a match covers the words its bytes touch. They belong to the exact
//!   tier and have no fallbacks.
//! - Candidates are ordered **top to bottom, then left to right** (the line order of [`ScreenText`]); the click
//!   point is the centre of the matched words' combined box.
//! - An optional **region** keeps only words whose centre lies in it, and a **minimum confidence** drops words
//!   read with less; a dropped word breaks runs (a phrase never matches across a word that is not there).
//! - **Alternatives** ([`find_any`]): each tier is tried over all the patterns, in order, before the next tier:
//!   the first pattern with an exact (or regex) match wins; if none has one, the first with a substring match;
//!   then spaceless, then near. So `['Agree', 'Accept']` on a screen with "Disagree" and "Accept" clicks
//!   "Accept", not the substring hit inside "Disagree". [`find_all`] lists every candidate of every pattern
//!   instead.
//! - For failure reports, [`closest`] ranks runs of words by edit distance to the pattern.

use regex::Regex;
use serde::Serialize;

use crate::geom::{Point, Rect};
use crate::text::{Line, ScreenText, Word};

/// What to look for.
#[derive(Debug, Clone)]
pub enum Pattern {
    /// Words, compared case-insensitively with whitespace normalised.
    Phrase(String),
    /// A regular expression matched against each line's text.
    Regex(Regex),
}

impl Pattern {
    /// A phrase pattern.
    pub fn phrase(text: impl Into<String>) -> Self {
        Pattern::Phrase(text.into())
    }

    /// Reads a pattern as scripts and the command line write it: `/.../` is a regular expression matched
    /// case-insensitively, anything else a phrase. Expressions are size-limited so that a pattern cannot make
    /// matching allocate without bound.
    pub fn parse(text: &str) -> Result<Self, PatternError> {
        if text.len() >= 2 && text.starts_with('/') && text.ends_with('/') {
            let source = &text[1..text.len() - 1];
            if source.is_empty() {
                return Err(PatternError::Empty);
            }
            return regex::RegexBuilder::new(&format!("(?i){source}"))
                .size_limit(1 << 20)
                .build()
                .map(Pattern::Regex)
                .map_err(|e| PatternError::Regex { pattern: text.to_owned(), reason: e.to_string() });
        }
        if normalise(text).is_empty() {
            return Err(PatternError::Empty);
        }
        Ok(Pattern::Phrase(text.to_owned()))
    }

    /// How the pattern reads in messages: the phrase, or `/regex/`.
    pub fn describe(&self) -> String {
        match self {
            Pattern::Phrase(p) => p.clone(),
            Pattern::Regex(r) => format!("/{}/", r.as_str().strip_prefix("(?i)").unwrap_or(r.as_str())),
        }
    }
}

/// A pattern that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatternError {
    /// The phrase has no words.
    #[error("the text to look for is empty")]
    Empty,
    /// A `/.../` pattern is not a valid regular expression.
    #[error("{pattern} is not a valid regular expression: {reason}")]
    Regex {
        /// The pattern as written.
        pattern: String,
        /// What the regex parser said.
        reason: String,
    },
}

impl PartialEq for Pattern {
    /// Phrases compare by their text, regexes by their source.
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Pattern::Phrase(a), Pattern::Phrase(b)) => a == b,
            (Pattern::Regex(a), Pattern::Regex(b)) => a.as_str() == b.as_str(),
            _ => false,
        }
    }
}

impl From<Regex> for Pattern {
    fn from(re: Regex) -> Self {
        Pattern::Regex(re)
    }
}

/// Restrictions on what counts as a match.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct MatchOptions {
    /// Only words whose centre lies in this rectangle (framebuffer pixels).
    pub region: Option<Rect>,
    /// Only words read with at least this confidence (0–100).
    pub min_confidence: Option<f32>,
    /// Try the lookalike tier after the others (off by default: it must be asked for).
    pub lookalikes: bool,
}

/// How a match was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MatchKind {
    /// The words equal the phrase.
    Exact,
    /// The phrase occurs inside the words' text.
    Substring,
    /// The phrase occurs inside the words' text once all whitespace is removed from both.
    Spaceless,
    /// The words differ from the phrase by a misread character or so.
    Near,
    /// The phrase occurs in the words once characters OCR confuses are folded together (allowed per step).
    Lookalike,
    /// A regular expression matched.
    Regex,
}

impl MatchKind {
    /// The tier's name, as `vmkit screen find` and the automation engine's log and JSON show it.
    pub const fn name(self) -> &'static str {
        match self {
            MatchKind::Exact => "exact",
            MatchKind::Substring => "substring",
            MatchKind::Spaceless => "spaceless",
            MatchKind::Near => "near",
            MatchKind::Lookalike => "lookalike",
            MatchKind::Regex => "regex",
        }
    }
}

/// The tiers of phrase matching, in the order they are tried.
const TIERS: [MatchKind; 5] =
    [MatchKind::Exact, MatchKind::Substring, MatchKind::Spaceless, MatchKind::Near, MatchKind::Lookalike];

/// The spaceless tier applies only to phrases with at least this many characters besides whitespace: shorter ones
/// would turn up inside unrelated words.
pub const SPACELESS_MIN_CHARS: usize = 4;
/// The near tier applies only to phrases of at least this many characters (whitespace-normalised).
pub const NEAR_MIN_CHARS: usize = 10;
/// The near tier allows one edit (insertion, deletion, substitution) per this many characters of the phrase.
pub const NEAR_CHARS_PER_EDIT: usize = 12;

/// One place where a pattern matched.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Match {
    /// The matched words' texts joined by single spaces.
    pub text: String,
    /// The union of the matched words' boxes.
    pub bbox: Rect,
    /// Where to click: the centre of `bbox`.
    pub point: Point,
    /// The lowest confidence among the matched words.
    pub confidence: f32,
    /// Index of the line in [`ScreenText::lines`].
    pub line: usize,
    /// Indices of the matched words in [`ScreenText::words`].
    pub words: Vec<usize>,
    /// How it matched.
    pub kind: MatchKind,
}

/// Every match of `pattern`, top to bottom, then left to right, from the first tier that has any (see the module
/// docs).
pub fn find(screen: &ScreenText, pattern: &Pattern, opts: &MatchOptions) -> Vec<Match> {
    TIERS.iter().map(|&tier| find_in_tier(screen, pattern, opts, tier)).find(|m| !m.is_empty()).unwrap_or_default()
}

/// Alternatives: each tier over every pattern in order, before the next tier; the matches of the first pattern
/// that has any, with that pattern's index. `None` if no pattern matches.
pub fn find_any(screen: &ScreenText, patterns: &[Pattern], opts: &MatchOptions) -> Option<(usize, Vec<Match>)> {
    TIERS.iter().find_map(|&tier| {
        patterns.iter().enumerate().find_map(|(i, p)| {
            let found = find_in_tier(screen, p, opts, tier);
            (!found.is_empty()).then_some((i, found))
        })
    })
}

/// The matches of one tier; a regex belongs to the exact tier.
fn find_in_tier(screen: &ScreenText, pattern: &Pattern, opts: &MatchOptions, tier: MatchKind) -> Vec<Match> {
    match (pattern, tier) {
        (Pattern::Regex(re), MatchKind::Exact) => find_regex(screen, re, opts),
        (Pattern::Regex(_), _) => Vec::new(),
        (Pattern::Phrase(p), MatchKind::Spaceless) => find_spaceless(screen, p, opts),
        (Pattern::Phrase(p), MatchKind::Near) => find_near(screen, p, opts),
        (Pattern::Phrase(p), MatchKind::Lookalike) => find_lookalike(screen, p, opts),
        (Pattern::Phrase(p), tier) => find_phrase(screen, p, opts, tier),
    }
}

/// Every candidate of every pattern (each found as [`find`] would), with the pattern's index, top to bottom,
/// then left to right. A place matched by several patterns is listed once, for the first of them.
pub fn find_all(screen: &ScreenText, patterns: &[Pattern], opts: &MatchOptions) -> Vec<(usize, Match)> {
    let mut all: Vec<(usize, Match)> = Vec::new();
    for (i, p) in patterns.iter().enumerate() {
        for m in find(screen, p, opts) {
            if !all.iter().any(|(_, seen)| seen.words == m.words) {
                all.push((i, m));
            }
        }
    }
    all.sort_by_key(|(i, m)| (m.line, m.bbox.x, *i));
    all
}

/// Picks a candidate by script index: 0 is the first, -1 the last, -2 the one before it.
pub fn pick(matches: &[Match], index: i64) -> Option<&Match> {
    let i = if index < 0 {
        matches.len().checked_sub(usize::try_from(index.unsigned_abs()).ok()?)?
    } else {
        usize::try_from(index).ok()?
    };
    matches.get(i)
}

/// Lowercased, with whitespace runs collapsed to one space and trimmed.
pub fn normalise(text: &str) -> String {
    text.split_whitespace().map(str::to_lowercase).collect::<Vec<_>>().join(" ")
}

/// `s` without the punctuation and symbols around it (unchanged if nothing else is left).
fn trim_marks(s: &str) -> &str {
    let t = s.trim_matches(|c: char| !c.is_alphanumeric());
    if t.is_empty() { s } else { t }
}

/// Whether an OCR word (lowercased) equals a pattern word (lowercased), ignoring punctuation around either.
fn word_equals(word: &str, token: &str) -> bool {
    word == token || trim_marks(word) == trim_marks(token)
}

/// The words of a line that pass the options, as runs of consecutive eligible word indices.
fn eligible_runs(screen: &ScreenText, line: &Line, opts: &MatchOptions) -> Vec<Vec<usize>> {
    let mut runs: Vec<Vec<usize>> = vec![Vec::new()];
    for &i in &line.words {
        let Some(w) = screen.words.get(i) else { continue };
        if word_ok(w, opts) {
            if let Some(run) = runs.last_mut() {
                run.push(i);
            }
        } else if runs.last().is_some_and(|r| !r.is_empty()) {
            runs.push(Vec::new());
        }
    }
    runs.retain(|r| !r.is_empty());
    runs
}

fn word_ok(w: &Word, opts: &MatchOptions) -> bool {
    opts.region.is_none_or(|r| r.contains(w.bbox.centre())) && opts.min_confidence.is_none_or(|c| w.confidence >= c)
}

fn make_match(screen: &ScreenText, line: usize, words: Vec<usize>, kind: MatchKind) -> Option<Match> {
    let ws: Vec<&Word> = words.iter().filter_map(|&i| screen.words.get(i)).collect();
    if ws.is_empty() {
        return None;
    }
    let bbox = ws.iter().fold(Rect::default(), |b, w| b.union(&w.bbox));
    Some(Match {
        text: ws.iter().map(|w| w.text.as_str()).collect::<Vec<_>>().join(" "),
        bbox,
        point: bbox.centre(),
        confidence: ws.iter().map(|w| w.confidence).fold(f32::INFINITY, f32::min),
        line,
        words,
        kind,
    })
}

/// How [`run_text`] renders a run of words.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Join {
    /// The words as read, joined by single spaces.
    Spaced,
    /// Lowercased, joined by single spaces.
    SpacedLower,
    /// Lowercased, with all whitespace removed (words run together).
    TightLower,
    /// Like `TightLower`, with lookalike characters folded ([`fold_lookalike`]).
    TightFolded,
}

/// A run's text, and for each word the byte range it occupies in that text.
fn run_text(screen: &ScreenText, run: &[usize], join: Join) -> (String, Vec<(usize, usize)>) {
    let mut text = String::new();
    let mut spans = Vec::with_capacity(run.len());
    for &i in run {
        if matches!(join, Join::Spaced | Join::SpacedLower) && !text.is_empty() {
            text.push(' ');
        }
        let start = text.len();
        let w = screen.words.get(i).map_or("", |w| w.text.as_str());
        match join {
            Join::Spaced => text.push_str(w),
            Join::SpacedLower => text.push_str(&w.to_lowercase()),
            Join::TightLower => text.extend(w.chars().filter(|c| !c.is_whitespace()).flat_map(char::to_lowercase)),
            Join::TightFolded => text.extend(w.chars().filter(|&c| !skipped_lookalike(c)).map(fold_lookalike)),
        }
        spans.push((start, text.len()));
    }
    (text, spans)
}

/// Every non-overlapping occurrence of `needle` in each eligible run's text (rendered with `join`), as matches
/// of the words each occurrence touches.
fn find_occurrences(screen: &ScreenText, needle: &str, opts: &MatchOptions, join: Join, kind: MatchKind) -> Vec<Match> {
    let mut out: Vec<Match> = Vec::new();
    if needle.is_empty() {
        return out;
    }
    for (li, line) in screen.lines.iter().enumerate() {
        for run in eligible_runs(screen, line, opts) {
            let (text, spans) = run_text(screen, &run, join);
            let mut from = 0;
            while let Some(pos) = text.get(from..).and_then(|t| t.find(needle)) {
                let start = from + pos;
                let end = start + needle.len();
                // Two occurrences inside the same words are one match.
                if let Some(m) = make_match(screen, li, covered(&run, &spans, start, end), kind)
                    && out.last().is_none_or(|last| last.words != m.words)
                {
                    out.push(m);
                }
                from = end;
            }
        }
    }
    out
}

/// The windows of a run of `len` words that are compared with a phrase of `words` words: `(start, width)` for
/// widths from one less to one more than the phrase (a run shorter than that is one window).
fn windows(len: usize, words: usize) -> impl Iterator<Item = (usize, usize)> {
    let lo = words.saturating_sub(1).clamp(1, len.max(1));
    let hi = (words + 1).min(len);
    (lo..=hi).flat_map(move |width| (0..=len - width).map(move |start| (start, width)))
}

/// The words of `run` whose spans overlap the byte range `start..end`.
fn covered(run: &[usize], spans: &[(usize, usize)], start: usize, end: usize) -> Vec<usize> {
    run.iter().zip(spans).filter(|(_, (s, e))| *s < end && start < *e).map(|(&i, _)| i).collect()
}

fn find_phrase(screen: &ScreenText, phrase: &str, opts: &MatchOptions, kind: MatchKind) -> Vec<Match> {
    let tokens: Vec<String> = phrase.split_whitespace().map(str::to_lowercase).collect();
    if tokens.is_empty() {
        return Vec::new();
    }
    if kind != MatchKind::Exact {
        return find_occurrences(screen, &tokens.join(" "), opts, Join::SpacedLower, kind);
    }
    let mut out = Vec::new();
    for (li, line) in screen.lines.iter().enumerate() {
        for run in eligible_runs(screen, line, opts) {
            let lower: Vec<String> =
                run.iter().map(|&i| screen.words.get(i).map_or(String::new(), |w| w.text.to_lowercase())).collect();
            let mut k = 0;
            while k + tokens.len() <= run.len() {
                if tokens.iter().zip(&lower[k..]).all(|(t, w)| word_equals(w, t)) {
                    out.extend(make_match(screen, li, run[k..k + tokens.len()].to_vec(), kind));
                    k += tokens.len();
                } else {
                    k += 1;
                }
            }
        }
    }
    out
}

/// The third tier: the phrase inside a run once whitespace is removed from both.
fn find_spaceless(screen: &ScreenText, phrase: &str, opts: &MatchOptions) -> Vec<Match> {
    let needle: String = phrase.chars().filter(|c| !c.is_whitespace()).flat_map(char::to_lowercase).collect();
    if needle.chars().count() < SPACELESS_MIN_CHARS {
        return Vec::new();
    }
    find_occurrences(screen, &needle, opts, Join::TightLower, MatchKind::Spaceless)
}

/// Characters the lookalike tier leaves out on both sides: whitespace, and the underscore, which sits on the
/// baseline of a tight field where OCR mostly sees a gap (`user 42` for `user_42`).
fn skipped_lookalike(c: char) -> bool {
    c.is_whitespace() || c == '_'
}

/// Characters OCR confuses in typed text, folded onto one of each group (after lowercasing): dashes and colons
/// and tildes (`-`, `:`, `~`, `–`, `—`, `−`), `7` and `?`, the vertical strokes (`l`, `1`, `|`, `i`, `!`, `I`),
/// `0` and `o`, `5` and `s`, `2` and `z`, `8` and `b`, `9` and `g`, opening and closing brackets of any kind,
/// `,` and `.`, and the quotes.
pub fn fold_lookalike(c: char) -> char {
    match c {
        '-' | ':' | '~' | '–' | '—' | '−' | '‐' => '-',
        '7' | '?' => '7',
        'l' | 'L' | '1' | '|' | 'i' | 'I' | '!' | '¦' => 'l',
        '0' | 'o' | 'O' => 'o',
        '5' | 's' | 'S' => 's',
        '2' | 'z' | 'Z' => 'z',
        '8' | 'b' | 'B' => 'b',
        '9' | 'g' | 'G' => 'g',
        '(' | '[' | '{' => '(',
        ')' | ']' | '}' => ')',
        ',' | '.' => '.',
        '\'' | '`' | '‘' | '’' | '´' => '\'',
        '"' | '“' | '”' => '"',
        c => c.to_lowercase().next().unwrap_or(c),
    }
}

/// The fifth tier (only when allowed): the phrase inside a run once whitespace is removed and lookalikes folded.
fn find_lookalike(screen: &ScreenText, phrase: &str, opts: &MatchOptions) -> Vec<Match> {
    if !opts.lookalikes {
        return Vec::new();
    }
    let needle: String = phrase.chars().filter(|&c| !skipped_lookalike(c)).map(fold_lookalike).collect();
    if needle.chars().count() < SPACELESS_MIN_CHARS {
        return Vec::new();
    }
    find_occurrences(screen, &needle, opts, Join::TightFolded, MatchKind::Lookalike)
}

/// The fourth tier: per line, the window of words closest to a long phrase, if within the edit budget.
fn find_near(screen: &ScreenText, phrase: &str, opts: &MatchOptions) -> Vec<Match> {
    let wanted: Vec<char> = normalise(phrase).chars().collect();
    if wanted.len() < NEAR_MIN_CHARS {
        return Vec::new();
    }
    let budget = (wanted.len() / NEAR_CHARS_PER_EDIT).max(1);
    let n = wanted.iter().filter(|c| **c == ' ').count() + 1;
    let mut out = Vec::new();
    for (li, line) in screen.lines.iter().enumerate() {
        // The closest window of the line; the first (narrowest, then leftmost) among equals.
        let mut best: Option<(usize, &[usize])> = None;
        let runs = eligible_runs(screen, line, opts);
        for run in &runs {
            for (start, width) in windows(run.len(), n) {
                let window = &run[start..start + width];
                let (text, _) = run_text(screen, window, Join::SpacedLower);
                let d = levenshtein(&normalise(&text).chars().collect::<Vec<_>>(), &wanted);
                if d <= budget && best.is_none_or(|(bd, _)| d < bd) {
                    best = Some((d, window));
                }
            }
        }
        if let Some((_, window)) = best {
            out.extend(make_match(screen, li, window.to_vec(), MatchKind::Near));
        }
    }
    out
}

fn find_regex(screen: &ScreenText, re: &Regex, opts: &MatchOptions) -> Vec<Match> {
    let mut out = Vec::new();
    for (li, line) in screen.lines.iter().enumerate() {
        for run in eligible_runs(screen, line, opts) {
            let (text, spans) = run_text(screen, &run, Join::Spaced);
            for m in re.find_iter(&text) {
                if m.start() == m.end() {
                    continue;
                }
                out.extend(make_match(screen, li, covered(&run, &spans, m.start(), m.end()), MatchKind::Regex));
            }
        }
    }
    out
}

/// A near miss, for "not found" reports.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Candidate {
    /// The words' texts joined by single spaces.
    pub text: String,
    /// Where they are.
    pub bbox: Rect,
    /// 1 for identical (after normalisation), down to 0 for nothing in common.
    pub similarity: f32,
}

/// The `n` runs of words most similar to `pattern` (normalised edit distance), most similar first; at most one
/// per line. Regex patterns are compared by their literal characters.
pub fn closest(screen: &ScreenText, pattern: &Pattern, n: usize) -> Vec<Candidate> {
    let target = match pattern {
        Pattern::Phrase(p) => normalise(p),
        Pattern::Regex(re) => {
            normalise(&re.as_str().chars().map(|c| if c.is_alphanumeric() { c } else { ' ' }).collect::<String>())
        }
    };
    if target.is_empty() || n == 0 {
        return Vec::new();
    }
    let target: Vec<char> = target.chars().collect();
    let len = target.iter().filter(|c| **c == ' ').count() + 1;
    let mut best: Vec<Candidate> = Vec::new();
    for line in &screen.lines {
        let ids = &line.words;
        let mut line_best: Option<Candidate> = None;
        for (start, width) in windows(ids.len(), len) {
            let run = &ids[start..start + width];
            let (text, _) = run_text(screen, run, Join::SpacedLower);
            let chars: Vec<char> = text.chars().collect();
            let d = levenshtein(&chars, &target);
            let sim = 1.0 - d as f32 / chars.len().max(target.len()).max(1) as f32;
            if line_best.as_ref().is_none_or(|b| sim > b.similarity) {
                let bbox =
                    run.iter().filter_map(|&i| screen.words.get(i)).fold(Rect::default(), |b, w| b.union(&w.bbox));
                let (orig, _) = run_text(screen, run, Join::Spaced);
                line_best = Some(Candidate { text: orig, bbox, similarity: sim });
            }
        }
        best.extend(line_best);
    }
    best.sort_by(|a, b| b.similarity.total_cmp(&a.similarity));
    best.truncate(n);
    best
}

/// Edit distance (insertions, deletions, substitutions) between two character sequences.
fn levenshtein(a: &[char], b: &[char]) -> usize {
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, ca) in a.iter().enumerate() {
        cur[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != cb);
            cur[j + 1] = sub.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_parse_as_scripts_write_them() {
        assert!(matches!(Pattern::parse("Set Up Later"), Ok(Pattern::Phrase(p)) if p == "Set Up Later"));
        let Ok(re) = Pattern::parse("/set ?up (later|now)/") else { panic!("regex pattern rejected") };
        assert_eq!(re.describe(), "/set ?up (later|now)/");
        let shot = screen(&[("SET", 0, 0), ("UP", 40, 0), ("LATER", 80, 0)]);
        assert_eq!(find(&shot, &re, &MatchOptions::default()).len(), 1, "regexes are case-insensitive");
        assert!(matches!(Pattern::parse("  "), Err(PatternError::Empty)));
        assert!(matches!(Pattern::parse("//"), Err(PatternError::Empty)));
        assert!(matches!(Pattern::parse("/(unclosed/"), Err(PatternError::Regex { .. })));
        // A lone slash is text.
        assert!(matches!(Pattern::parse("/"), Ok(Pattern::Phrase(_))));
    }

    /// A screen from `(text, x, y)` words; every word is 10 px per character wide and 16 px high.
    fn screen(words: &[(&str, u32, u32)]) -> ScreenText {
        screen_conf(&words.iter().map(|&(t, x, y)| (t, x, y, 95.0)).collect::<Vec<_>>())
    }

    fn screen_conf(words: &[(&str, u32, u32, f32)]) -> ScreenText {
        let ws = words
            .iter()
            .map(|&(t, x, y, c)| Word {
                text: t.to_owned(),
                confidence: c,
                bbox: Rect::new(x, y, 10 * t.chars().count() as u32, 16),
            })
            .collect();
        ScreenText::from_words(1920, 1080, ws)
    }

    fn texts(ms: &[Match]) -> Vec<&str> {
        ms.iter().map(|m| m.text.as_str()).collect()
    }

    #[test]
    fn exact_beats_substring() {
        let s = screen(&[("I", 100, 100), ("Disagree", 120, 100), ("I", 400, 100), ("Agree", 420, 100)]);
        let m = find(&s, &Pattern::phrase("Agree"), &MatchOptions::default());
        assert_eq!(texts(&m), ["Agree"]);
        assert_eq!(m[0].kind, MatchKind::Exact);
        // Without an exact "Agree", the substring inside "Disagree" is the fallback.
        let s = screen(&[("I", 100, 100), ("Disagree", 120, 100)]);
        let m = find(&s, &Pattern::phrase("Agree"), &MatchOptions::default());
        assert_eq!(texts(&m), ["Disagree"]);
        assert_eq!(m[0].kind, MatchKind::Substring);
    }

    #[test]
    fn multi_word_phrases_match_runs_in_one_line() {
        let s = screen(&[
            ("Create", 100, 100),
            ("a", 170, 100),
            ("Computer", 190, 100),
            ("Account", 280, 100),
            ("Computer", 100, 200),
            ("Account", 190, 200),
        ]);
        let m = find(&s, &Pattern::phrase("Create a Computer Account"), &MatchOptions::default());
        assert_eq!(texts(&m), ["Create a Computer Account"]);
        assert_eq!(m[0].bbox, Rect::new(100, 100, 250, 16));
        assert_eq!(m[0].point, Point { x: 225, y: 108 });
        assert_eq!(m[0].words.len(), 4);
        // Runs never span lines: "Account Computer" does not match across the two lines.
        assert!(find(&s, &Pattern::phrase("Account Computer"), &MatchOptions::default()).is_empty());
    }

    #[test]
    fn case_whitespace_and_surrounding_punctuation_are_normalised() {
        let s = screen(&[("SET", 100, 100), ("up", 140, 100), ("Later.", 170, 100)]);
        let m = find(&s, &Pattern::phrase("  set   Up\tlater "), &MatchOptions::default());
        assert_eq!(texts(&m), ["SET up Later."]);
        assert_eq!(m[0].kind, MatchKind::Exact);
        assert_eq!(normalise("  A \n b  "), "a b");
    }

    #[test]
    fn substring_covers_every_word_it_touches() {
        let s = screen(&[("Create", 100, 100), ("a", 170, 100), ("Computer", 190, 100), ("Account", 280, 100)]);
        let m = find(&s, &Pattern::phrase("puter Acc"), &MatchOptions::default());
        assert_eq!(texts(&m), ["Computer Account"]);
        assert_eq!(m[0].kind, MatchKind::Substring);
    }

    #[test]
    fn regex_maps_back_to_words() {
        let s = screen(&[("Step", 100, 100), ("3", 150, 100), ("of", 170, 100), ("7", 200, 100)]);
        let re = Regex::new(r"(?i)step \d+ of \d+").unwrap();
        let m = find(&s, &Pattern::from(re), &MatchOptions::default());
        assert_eq!(texts(&m), ["Step 3 of 7"]);
        assert_eq!(m[0].kind, MatchKind::Regex);
        let re = Regex::new(r"\d").unwrap();
        assert_eq!(texts(&find(&s, &Pattern::from(re), &MatchOptions::default())), ["3", "7"]);
    }

    #[test]
    fn candidates_are_ordered_top_to_bottom_then_left_to_right() {
        let s = screen(&[("OK", 600, 300), ("OK", 100, 302), ("OK", 300, 50), ("OK", 100, 700)]);
        let m = find(&s, &Pattern::phrase("ok"), &MatchOptions::default());
        let points: Vec<(u32, u32)> = m.iter().map(|m| (m.bbox.x, m.bbox.y)).collect();
        assert_eq!(points, [(300, 50), (100, 302), (600, 300), (100, 700)]);
        assert_eq!(pick(&m, 0).map(|m| m.bbox.x), Some(300));
        assert_eq!(pick(&m, -1).map(|m| m.bbox.y), Some(700));
        assert_eq!(pick(&m, -2).map(|m| m.bbox.x), Some(600));
        assert!(pick(&m, 4).is_none() && pick(&m, -5).is_none());
    }

    #[test]
    fn region_filter_keeps_only_words_inside() {
        let s = screen(&[("Next", 100, 100), ("Next", 900, 600)]);
        let opts = MatchOptions { region: Some(Rect::new(800, 500, 400, 300)), ..MatchOptions::default() };
        let m = find(&s, &Pattern::phrase("Next"), &opts);
        assert_eq!(m.len(), 1);
        assert_eq!(m[0].bbox.x, 900);
    }

    #[test]
    fn min_confidence_drops_words_and_breaks_runs() {
        let s = screen_conf(&[("Install", 100, 100, 95.0), ("now", 180, 100, 40.0), ("Install", 100, 300, 35.0)]);
        let opts = MatchOptions { min_confidence: Some(60.0), ..MatchOptions::default() };
        let m = find(&s, &Pattern::phrase("Install"), &opts);
        assert_eq!(m.len(), 1);
        assert_eq!(m[0].bbox.y, 100);
        assert!(find(&s, &Pattern::phrase("Install now"), &opts).is_empty());
        assert_eq!(find(&s, &Pattern::phrase("Install now"), &MatchOptions::default()).len(), 1);
    }

    #[test]
    fn alternatives_prefer_an_exact_match_of_a_later_pattern_over_a_substring() {
        let s = screen(&[("I", 100, 100), ("Disagree", 120, 100), ("Accept", 100, 300)]);
        let pats = [Pattern::phrase("Agree"), Pattern::phrase("Accept")];
        let (i, m) = find_any(&s, &pats, &MatchOptions::default()).unwrap();
        assert_eq!((i, texts(&m)), (1, vec!["Accept"]));
        let pats = [Pattern::phrase("Agree"), Pattern::phrase("Continue")];
        let (i, m) = find_any(&s, &pats, &MatchOptions::default()).unwrap();
        assert_eq!((i, texts(&m)), (0, vec!["Disagree"]));
        assert!(find_any(&s, &[Pattern::phrase("Skip")], &MatchOptions::default()).is_none());
        let all = find_all(&s, &[Pattern::phrase("Accept"), Pattern::phrase("Agree")], &MatchOptions::default());
        assert_eq!(
            all.iter().map(|(i, m)| (*i, m.text.as_str())).collect::<Vec<_>>(),
            [(1, "Disagree"), (0, "Accept")]
        );
    }

    #[test]
    fn spacing_slips_match_in_the_third_tier() {
        let s = screen(&[("Software", 10, 10), ("Licence", 100, 10), ("Ag", 180, 10), ("reement", 210, 10)]);
        let m = find(&s, &Pattern::phrase("Software Licence Agreement"), &MatchOptions::default());
        assert_eq!(texts(&m), ["Software Licence Ag reement"]);
        assert_eq!(m[0].kind, MatchKind::Spaceless);
        assert_eq!(m[0].words.len(), 4);
        let s = screen(&[("SetUp", 10, 10), ("Later", 70, 10)]);
        let m = find(&s, &Pattern::phrase("Set Up Later"), &MatchOptions::default());
        assert_eq!((texts(&m), m[0].kind), (vec!["SetUp Later"], MatchKind::Spaceless));
        // Only the words the phrase touches: "Ag reement" inside a longer line.
        let s = screen(&[("I", 10, 10), ("Ag", 30, 10), ("reement", 60, 10), ("now", 140, 10)]);
        assert_eq!(texts(&find(&s, &Pattern::phrase("agreement"), &MatchOptions::default())), ["Ag reement"]);
        // Short phrases would turn up inside unrelated words: "O K" is not "OK" in "BOOK".
        let s = screen(&[("BO", 10, 10), ("OK", 40, 10)]);
        assert!(find(&s, &Pattern::phrase("O K"), &MatchOptions::default()).is_empty());
        // A word that does not pass the filters breaks the run here too.
        let s = screen_conf(&[("Ag", 10, 10, 95.0), ("x", 40, 10, 10.0), ("reement", 60, 10, 95.0)]);
        let opts = MatchOptions { min_confidence: Some(50.0), ..MatchOptions::default() };
        assert!(find(&s, &Pattern::phrase("Agreement"), &opts).is_empty());
    }

    #[test]
    fn long_phrases_survive_a_misread_letter_short_ones_do_not() {
        let s = screen(&[("Create", 10, 10), ("@", 80, 10), ("Computer", 100, 10), ("Account", 190, 10)]);
        let m = find(&s, &Pattern::phrase("Create a Computer Account"), &MatchOptions::default());
        assert_eq!((texts(&m), m[0].kind), (vec!["Create @ Computer Account"], MatchKind::Near));
        // The closest window of the line, not the whole line.
        let s = screen(&[
            ("Step", 10, 10),
            ("Create", 60, 10),
            ("@", 130, 10),
            ("Computer", 150, 10),
            ("Account", 240, 10),
        ]);
        let m = find(&s, &Pattern::phrase("Create a Computer Account"), &MatchOptions::default());
        assert_eq!(texts(&m), ["Create @ Computer Account"]);
        // One edit per 12 characters: two misread letters in 25 characters pass, three do not.
        let s = screen(&[("Creste", 10, 10), ("@", 80, 10), ("Computer", 100, 10), ("Account", 190, 10)]);
        assert_eq!(find(&s, &Pattern::phrase("Create a Computer Account"), &MatchOptions::default()).len(), 1);
        let s = screen(&[("Creste", 10, 10), ("@", 80, 10), ("Compuler", 100, 10), ("Account", 190, 10)]);
        assert!(find(&s, &Pattern::phrase("Create a Computer Account"), &MatchOptions::default()).is_empty());
        // Short phrases never match approximately.
        let s = screen(&[("Sign", 10, 10), ("Up", 60, 10)]);
        assert!(find(&s, &Pattern::phrase("Sign In"), &MatchOptions::default()).is_empty());
        let s = screen(&[("Kone", 10, 10)]);
        assert!(find(&s, &Pattern::phrase("Done"), &MatchOptions::default()).is_empty());
        // Regexes have no fallback tiers.
        let s = screen(&[("SetUp", 10, 10), ("Later", 70, 10)]);
        let re = Pattern::parse("/set up later/").unwrap();
        assert!(find(&s, &re, &MatchOptions::default()).is_empty());
    }

    #[test]
    fn a_later_tier_never_shadows_an_earlier_one() {
        // An exact match on one line hides the near match on another.
        let s = screen(&[
            ("Create", 10, 10),
            ("@", 80, 10),
            ("Computer", 100, 10),
            ("Account", 190, 10),
            ("Create", 10, 100),
            ("a", 80, 100),
            ("Computer", 100, 100),
            ("Account", 190, 100),
        ]);
        let m = find(&s, &Pattern::phrase("Create a Computer Account"), &MatchOptions::default());
        assert_eq!((texts(&m), m[0].kind), (vec!["Create a Computer Account"], MatchKind::Exact));
        // Alternatives: every alternative's spaceless match before any near match, in the order written.
        let s = screen(&[
            ("Create", 10, 10),
            ("@", 80, 10),
            ("Computer", 100, 10),
            ("Account", 190, 10),
            ("SetUp", 10, 100),
            ("Later", 70, 100),
        ]);
        let pats = [Pattern::phrase("Create a Computer Account"), Pattern::phrase("Set Up Later")];
        let (i, m) = find_any(&s, &pats, &MatchOptions::default()).unwrap();
        assert_eq!((i, texts(&m), m[0].kind), (1, vec!["SetUp Later"], MatchKind::Spaceless));
        let pats = [Pattern::phrase("Create a Computer Account"), Pattern::phrase("Skip")];
        let (i, m) = find_any(&s, &pats, &MatchOptions::default()).unwrap();
        assert_eq!((i, m[0].kind), (0, MatchKind::Near));
        // The kinds print as `vmkit screen find --json` shows them.
        let kinds = [MatchKind::Exact, MatchKind::Substring, MatchKind::Spaceless, MatchKind::Near, MatchKind::Regex];
        let json: Vec<String> = kinds.iter().map(|k| serde_json::to_string(k).unwrap()).collect();
        assert_eq!(json, ["\"exact\"", "\"substring\"", "\"spaceless\"", "\"near\"", "\"regex\""]);
    }

    #[test]
    fn lookalikes_match_only_when_allowed() {
        // A host name typed into an entry field, read with its hyphen and trailing digit misread.
        let s = screen(&[("Host", 10, 10), ("name:", 60, 10), ("name:word?", 200, 10)]);
        let p = Pattern::phrase("name-word7");
        assert!(find(&s, &p, &MatchOptions::default()).is_empty(), "never silently");
        let allowed = MatchOptions { lookalikes: true, ..MatchOptions::default() };
        let m = find(&s, &p, &allowed);
        assert_eq!((texts(&m), m[0].kind), (vec!["name:word?"], MatchKind::Lookalike));
        // The field's frame and caret read as brackets and bars around it: still inside.
        let s = screen(&[("{name:word?|", 200, 10)]);
        assert_eq!(find(&s, &p, &allowed)[0].kind, MatchKind::Lookalike);
        // Vertical strokes and zeros: "l0g1n" for "login"; but a different letter is not a lookalike.
        let s = screen(&[("|0g1n", 10, 10)]);
        assert_eq!(texts(&find(&s, &Pattern::phrase("login"), &allowed)), ["|0g1n"]);
        assert!(find(&s, &Pattern::phrase("logon"), &allowed).is_empty());
        // An earlier tier wins: the exact reading elsewhere on the screen.
        let s = screen(&[("name:word?", 10, 10), ("name-word7", 10, 100)]);
        let m = find(&s, &p, &allowed);
        assert_eq!((texts(&m), m[0].kind), (vec!["name-word7"], MatchKind::Exact));
        // An underscore OCR saw as a gap.
        let s = screen(&[("user", 10, 10), ("42", 60, 10)]);
        assert!(find(&s, &Pattern::phrase("user_42"), &MatchOptions::default()).is_empty());
        assert_eq!(texts(&find(&s, &Pattern::phrase("user_42"), &allowed)), ["user 42"]);
        // Short phrases never match this way.
        let s = screen(&[("l?", 10, 10)]);
        assert!(find(&s, &Pattern::phrase("17"), &allowed).is_empty());
        assert_eq!(serde_json::to_string(&MatchKind::Lookalike).unwrap(), "\"lookalike\"");
    }

    #[test]
    fn closest_ranks_near_misses() {
        let s = screen(&[
            ("Create", 100, 100),
            ("a", 170, 100),
            ("Computer", 190, 100),
            ("Acount", 280, 100),
            ("Cancel", 100, 300),
        ]);
        let c = closest(&s, &Pattern::phrase("Create a Computer Account"), 2);
        assert_eq!(c.len(), 2);
        assert_eq!(c[0].text, "Create a Computer Acount");
        assert!(c[0].similarity > 0.9 && c[0].similarity < 1.0, "{}", c[0].similarity);
        assert!(c[1].similarity < c[0].similarity);
        assert_eq!(levenshtein(&['a', 'b'], &['a', 'c', 'b']), 1);
    }

    #[test]
    fn empty_patterns_match_nothing() {
        let s = screen(&[("OK", 100, 100)]);
        assert!(find(&s, &Pattern::phrase("   "), &MatchOptions::default()).is_empty());
        assert!(closest(&s, &Pattern::phrase(""), 3).is_empty());
    }
}
