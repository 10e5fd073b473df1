//! Finding a step's target in the text on the screen, with the script format's matching rules.
//!
//! The first tiers are the OCR crate's matching ([`ocr::matching`], shared with `vmkit screen find`):
//! - a phrase matches a run of consecutive words of one line; **exact** matches (case-insensitive, whitespace
//!   normalised, whole words, punctuation around words ignored) win over **substring** matches: "Agree" hits the
//!   button "I Agree", not "I Disagree", when both are on screen;
//! - a regex (`/.../`, case-insensitive) is matched against each line's text; the words it touches are the match;
//! - **alternatives** are tried in the order written: the first with an exact (or regex) match wins; if none
//!   has one, the first with a substring match;
//! - a **region** keeps only words whose centre lies inside it; a **minimum confidence** drops words below it;
//! - matches are ordered top to bottom (line by line), then left to right; `index` picks among them.
//!
//! vmkit adds two tiers for what OCR gets wrong, tried only when the first ones find nothing:
//! - the phrase with all spaces removed, on both sides: OCR splits and merges words ("Ag reement", "SetUp"),
//!   and a phrase that is there save for its spacing is there;
//! - for a long phrase (10 characters or more), a run of words that differs from it by at most one character in
//!   twelve ("Create @ Computer Account"): OCR misreads a letter now and then, and a long phrase that close is
//!   not another text. Short phrases never match approximately — "Sign Up" is not "Sign In".
//!
//! When nothing matches, [`closest`] lists the screen texts most like what was searched for, which the failure
//! report shows.

use ocr::matching::{self, MatchOptions};
use ocr::{Rect, ScreenText, Word};

use crate::result::{BBox, Candidate};
use crate::script::{Pattern, Target};

/// A match: the words' text, their combined box, their lowest confidence (0…100).
#[derive(Debug, Clone, PartialEq)]
pub struct Found {
    /// The matched words joined by spaces.
    pub text: String,
    /// Union of the matched words' boxes, framebuffer pixels.
    pub bbox: Rect,
    /// Lowest OCR confidence of the words, 0…100.
    pub confidence: f32,
}

fn options(target: &Target) -> MatchOptions {
    MatchOptions {
        region: target.region.map(|r| Rect::new(r.x, r.y, r.width, r.height)),
        min_confidence: target.min_confidence.map(|c| c * 100.0),
    }
}

fn ocr_pattern(p: &Pattern) -> matching::Pattern {
    match p {
        Pattern::Phrase(text) => matching::Pattern::Phrase(text.clone()),
        Pattern::Regex(re) => matching::Pattern::Regex(re.clone()),
    }
}

/// The words of each line that pass the target's region and confidence filters.
fn lines<'a>(target: &Target, text: &'a ScreenText) -> Vec<Vec<&'a Word>> {
    let opts = options(target);
    let keep = |w: &Word| {
        opts.region.is_none_or(|r| r.contains(w.bbox.centre()))
            && opts.min_confidence.is_none_or(|c| w.confidence >= c)
            && !w.text.trim().is_empty()
    };
    text.lines
        .iter()
        .map(|line| text.line_words(line).filter(|w| keep(w)).collect::<Vec<_>>())
        .filter(|words| !words.is_empty())
        .collect()
}

fn normalise(s: &str) -> String {
    matching::normalise(s)
}

fn found(words: &[&Word]) -> Found {
    let text = words.iter().map(|w| w.text.as_str()).collect::<Vec<_>>().join(" ");
    let bbox = words.iter().skip(1).fold(words.first().map(|w| w.bbox).unwrap_or_default(), |b, w| b.union(&w.bbox));
    let confidence = words.iter().map(|w| w.confidence).fold(f32::INFINITY, f32::min);
    Found { text, bbox, confidence: if confidence.is_finite() { confidence } else { 0.0 } }
}

/// The words a byte range of a joined line touches.
fn words_in(spans: &[(usize, usize)], start: usize, end: usize) -> Option<(usize, usize)> {
    let first = spans.iter().position(|&(s, e)| e > start && s < end.max(start + 1))?;
    let last = spans.iter().rposition(|&(s, e)| e > start && s < end.max(start + 1))?;
    Some((first, last))
}

/// Every match of `target` on the screen, ordered top to bottom, then left to right.
pub fn find(target: &Target, text: &ScreenText) -> Vec<Found> {
    let patterns: Vec<matching::Pattern> = target.patterns.iter().map(ocr_pattern).collect();
    if let Some((_, matches)) = matching::find_any(text, &patterns, &options(target)) {
        return matches.into_iter().map(|m| Found { text: m.text, bbox: m.bbox, confidence: m.confidence }).collect();
    }
    // The later tiers, each over the alternatives in order: the first pattern found wins.
    let lines = lines(target, text);
    let tiers: [fn(&str, &[Vec<&Word>]) -> Vec<(usize, Found)>; 2] = [spaceless, fuzzy];
    for tier in tiers {
        for pattern in &target.patterns {
            let Pattern::Phrase(p) = pattern else { continue };
            let mut more = tier(p, &lines);
            if !more.is_empty() {
                more.sort_by_key(|(li, f)| (*li, f.bbox.x, f.bbox.y));
                more.dedup_by(|a, b| a.1.bbox == b.1.bbox);
                return more.into_iter().map(|(_, f)| f).collect();
            }
        }
    }
    Vec::new()
}

/// Matches of a phrase with spaces ignored on both sides (the third tier).
fn spaceless(phrase: &str, lines: &[Vec<&Word>]) -> Vec<(usize, Found)> {
    let mut out = Vec::new();
    let needle: String = phrase.chars().filter(|c| !c.is_whitespace()).flat_map(char::to_lowercase).collect();
    if needle.chars().count() < 4 {
        return out;
    }
    for (li, words) in lines.iter().enumerate() {
        let mut hay = String::new();
        let mut spans = Vec::with_capacity(words.len());
        for w in words {
            let start = hay.len();
            hay.extend(w.text.chars().filter(|c| !c.is_whitespace()).flat_map(char::to_lowercase));
            spans.push((start, hay.len()));
        }
        let mut from = 0;
        while let Some(at) = hay.get(from..).and_then(|h| h.find(&needle)) {
            let start = from + at;
            let end = start + needle.len();
            if let Some((a, b)) = words_in(&spans, start, end) {
                out.push((li, found(&words[a..=b])));
            }
            from = end;
        }
    }
    out
}

/// Shortest phrase (in characters) that may match with a misread character.
const FUZZY_MIN_LEN: usize = 10;
/// One misread character allowed per this many characters.
const FUZZY_CHARS_PER_EDIT: usize = 12;

/// Near matches of a long phrase (the fourth tier): per line, the best run of words within the edit budget.
fn fuzzy(phrase: &str, lines: &[Vec<&Word>]) -> Vec<(usize, Found)> {
    let mut out = Vec::new();
    let wanted = normalise(phrase);
    let len = wanted.chars().count();
    if len < FUZZY_MIN_LEN {
        return out;
    }
    let budget = (len / FUZZY_CHARS_PER_EDIT).max(1);
    let n = wanted.split(' ').count();
    for (li, words) in lines.iter().enumerate() {
        let mut best: Option<(usize, Found)> = None;
        for size in n.saturating_sub(1).max(1)..=n + 1 {
            for start in 0..words.len().saturating_sub(size - 1) {
                let f = found(&words[start..start + size]);
                let d = edit_distance(&wanted, &normalise(&f.text));
                if d <= budget && best.as_ref().is_none_or(|(bd, _)| d < *bd) {
                    best = Some((d, f));
                }
            }
        }
        if let Some((_, f)) = best {
            out.push((li, f));
        }
    }
    out
}

/// The screen texts most like the target's patterns, best first (at most `n`).
pub fn closest(target: &Target, text: &ScreenText, n: usize) -> Vec<Candidate> {
    let mut all: Vec<Candidate> = Vec::new();
    for pattern in &target.patterns {
        for c in matching::closest(text, &ocr_pattern(pattern), n) {
            if c.similarity <= 0.3 {
                continue;
            }
            // Confidence of the words inside the candidate's box.
            let inside: Vec<f32> =
                text.words.iter().filter(|w| c.bbox.contains(w.bbox.centre())).map(|w| w.confidence).collect();
            let confidence = inside.iter().sum::<f32>() / inside.len().max(1) as f32 / 100.0;
            let b = c.bbox;
            all.push(Candidate {
                text: c.text,
                similarity: c.similarity,
                confidence,
                bbox: BBox { x: b.x, y: b.y, width: b.width, height: b.height },
            });
        }
    }
    all.sort_by(|a, b| b.similarity.total_cmp(&a.similarity));
    let mut out: Vec<Candidate> = Vec::new();
    for c in all {
        if !out.iter().any(|o| o.bbox == c.bbox || o.text == c.text) {
            out.push(c);
        }
        if out.len() == n {
            break;
        }
    }
    out
}

/// Levenshtein distance in characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            cur[j + 1] = (prev[j] + usize::from(ca != cb)).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::script::Region;

    fn word(text: &str, x: u32, y: u32) -> Word {
        Word { text: text.into(), confidence: 90.0, bbox: Rect::new(x, y, 10 * text.len() as u32, 20) }
    }

    fn screen(words: Vec<Word>) -> ScreenText {
        ScreenText::from_words(1000, 800, words)
    }

    fn target(patterns: &[&str]) -> Target {
        let text = format!(
            "boot_commands:\n  - click: {{text: [{}]}}\n",
            patterns.iter().map(|p| format!("'{p}'")).collect::<Vec<_>>().join(", ")
        );
        let s = crate::load_str(&text, std::path::Path::new("t.yaml")).expect("loads");
        s.steps[0].action.target().expect("target").clone()
    }

    #[test]
    fn exact_beats_substring() {
        let s =
            screen(vec![word("I", 100, 500), word("Disagree", 115, 500), word("I", 300, 500), word("Agree", 315, 500)]);
        let f = find(&target(&["Agree"]), &s);
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].text, "Agree");
        assert_eq!(f[0].bbox.x, 315);
        // Only a substring on screen: it counts.
        let s = screen(vec![word("I", 100, 500), word("Disagree", 115, 500)]);
        assert_eq!(find(&target(&["Agree"]), &s)[0].text, "Disagree");
    }

    #[test]
    fn multi_word_phrases_match_runs_of_words() {
        let s = screen(vec![
            word("Select", 10, 10),
            word("Your", 80, 10),
            word("Country", 130, 10),
            word("or", 210, 10),
            word("Region", 235, 10),
        ]);
        let f = find(&target(&["select your  country OR region"]), &s);
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].text, "Select Your Country or Region");
        assert_eq!(f[0].bbox, Rect::new(10, 10, 235 + 60 - 10, 20));
        assert_eq!(find(&target(&["Country or Region"]), &s)[0].text, "Country or Region");
    }

    #[test]
    fn spacing_differences_from_ocr_still_match() {
        let s = screen(vec![
            word("Software", 10, 10),
            word("Licence", 120, 10),
            word("Ag", 220, 10),
            word("reement", 250, 10),
        ]);
        let f = find(&target(&["Software Licence Agreement"]), &s);
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].text, "Software Licence Ag reement");
        let s = screen(vec![word("SetUp", 10, 10), word("Later", 80, 10)]);
        assert_eq!(find(&target(&["Set Up Later"]), &s)[0].text, "SetUp Later");
    }

    #[test]
    fn long_phrases_survive_a_misread_letter_short_ones_do_not() {
        let s = screen(vec![
            word("Create", 10, 10),
            word("@", 90, 10),
            word("Computer", 110, 10),
            word("Account", 200, 10),
        ]);
        assert_eq!(find(&target(&["Create a Computer Account"]), &s)[0].text, "Create @ Computer Account");
        let s = screen(vec![word("Sign", 10, 10), word("Up", 60, 10)]);
        assert!(find(&target(&["Sign In"]), &s).is_empty());
        let s = screen(vec![word("Kone", 10, 10)]);
        assert!(find(&target(&["Done"]), &s).is_empty());
    }

    #[test]
    fn order_is_top_to_bottom_then_left_to_right() {
        let s = screen(vec![word("Next", 500, 300), word("Next", 100, 300), word("Next", 100, 100)]);
        let f = find(&target(&["Next"]), &s);
        let pos: Vec<(u32, u32)> = f.iter().map(|m| (m.bbox.x, m.bbox.y)).collect();
        assert_eq!(pos, vec![(100, 100), (100, 300), (500, 300)]);
    }

    #[test]
    fn alternatives_regex_region_and_confidence() {
        let s = screen(vec![word("Set", 10, 10), word("Up", 50, 10), word("Later", 80, 10), word("Skip", 10, 400)]);
        // Alternatives are tried in order: the first that is on the screen wins.
        let f = find(&target(&["Skip", "Set Up Later"]), &s);
        assert_eq!(f.iter().map(|m| m.text.as_str()).collect::<Vec<_>>(), vec!["Skip"]);
        let f = find(&target(&["Next", "Set Up Later", "Skip"]), &s);
        assert_eq!(f.iter().map(|m| m.text.as_str()).collect::<Vec<_>>(), vec!["Set Up Later"]);
        let f = find(&target(&["/set up (later|now)/"]), &s);
        assert_eq!(f[0].text, "Set Up Later");
        let mut t = target(&["Set Up Later", "Skip"]);
        t.region = Some(Region { x: 0, y: 300, width: 200, height: 200 });
        assert_eq!(find(&t, &s).iter().map(|m| m.text.as_str()).collect::<Vec<_>>(), vec!["Skip"]);
        let mut low = s.clone();
        low.words[3].confidence = 20.0;
        let mut t = target(&["Skip"]);
        t.min_confidence = Some(0.5);
        assert!(find(&t, &low).is_empty());
    }

    #[test]
    fn closest_candidates_rank_near_misses_first() {
        let s = screen(vec![word("Contnue", 10, 10), word("Cancel", 200, 10), word("Help", 300, 300)]);
        let c = closest(&target(&["Continue"]), &s, 3);
        assert_eq!(c[0].text, "Contnue");
        assert!(c[0].similarity > 0.8);
    }
}
