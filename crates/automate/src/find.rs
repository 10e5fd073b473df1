//! Finding a step's target on the screen: the script's options turned into [`ocr::matching`]'s, and the failure
//! report's closest candidates.
//!
//! All matching rules live in [`ocr::matching`], shared with `vmkit screen find`, so the command shows exactly
//! what a script would match:
//! - a phrase matches a run of consecutive words of one line, in tiers each tried only when the ones before
//!   found nothing: **exact** (case-insensitive, whitespace normalised, whole words, punctuation around words
//!   ignored), **substring** ("Agree" hits the button "I Agree", not "I Disagree", when both are on screen),
//!   **spaceless** (spaces removed on both sides, for OCR splitting and merging words: "Ag reement", "SetUp"),
//!   and **near** (phrases of 10 characters or more, one misread character per 12: "Create @ Computer
//!   Account"; short phrases never match approximately — "Sign Up" is not "Sign In");
//! - a regex (`/.../`, case-insensitive) is matched against each line's text; the words it touches are the match;
//! - **alternatives** are tried in the order written within each tier before the next tier: the first with an
//!   exact (or regex) match wins; if none has one, the first with a substring match, and so on;
//! - a fifth tier, **lookalike**, only where the step (or the whole script) says `lookalikes: true`: the spaceless
//!   comparison with characters OCR confuses folded together (`-`/`:`/`~`, `7`/`?`, `l`/`1`/`|`, …), for typed
//!   text read back from entry fields; the run's log and JSON say when a step matched this way;
//! - a **region** keeps only words whose centre lies inside it; a **minimum confidence** drops words below it;
//! - matches are ordered top to bottom (line by line), then left to right; `index` picks among them.
//!
//! When nothing matches, [`closest`] lists the screen texts most like what was searched for, which the failure
//! report shows.

use ocr::matching::{self, Match, MatchOptions};
use ocr::{Rect, ScreenText};

use crate::result::{BBox, Candidate};
use crate::script::Target;

/// The target's region and minimum confidence as matching options (confidence 0…1 in scripts, 0…100 in OCR).
fn options(target: &Target) -> MatchOptions {
    MatchOptions {
        region: target.region.map(|r| Rect::new(r.x, r.y, r.width, r.height)),
        min_confidence: target.min_confidence.map(|c| c * 100.0),
        lookalikes: target.lookalikes == Some(true),
    }
}

/// Every match of `target` on the screen, ordered top to bottom, then left to right.
pub fn find(target: &Target, text: &ScreenText) -> Vec<Match> {
    matching::find_any(text, &target.patterns, &options(target)).map(|(_, found)| found).unwrap_or_default()
}

/// The screen texts most like the target's patterns, best first (at most `n`).
pub fn closest(target: &Target, text: &ScreenText, n: usize) -> Vec<Candidate> {
    let mut all: Vec<Candidate> = Vec::new();
    for pattern in &target.patterns {
        for c in matching::closest(text, pattern, n) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::script::Region;
    use ocr::Word;
    use ocr::matching::MatchKind;

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
        assert_eq!(f[0].kind, MatchKind::Spaceless);
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
        let f = find(&target(&["Create a Computer Account"]), &s);
        assert_eq!(f[0].text, "Create @ Computer Account");
        assert_eq!(f[0].kind, MatchKind::Near);
        let s = screen(vec![word("Sign", 10, 10), word("Up", 60, 10)]);
        assert!(find(&target(&["Sign In"]), &s).is_empty());
        let s = screen(vec![word("Kone", 10, 10)]);
        assert!(find(&target(&["Done"]), &s).is_empty());
    }

    #[test]
    fn alternatives_go_through_each_tier_in_order() {
        // A spaceless hit of the second alternative wins over a near hit of the first.
        let s = screen(vec![
            word("Create", 10, 10),
            word("@", 90, 10),
            word("Computer", 110, 10),
            word("Account", 200, 10),
            word("SetUp", 10, 100),
            word("Later", 80, 100),
        ]);
        let f = find(&target(&["Create a Computer Account", "Set Up Later"]), &s);
        assert_eq!(f.iter().map(|m| m.text.as_str()).collect::<Vec<_>>(), vec!["SetUp Later"]);
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
