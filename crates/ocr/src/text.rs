//! What a read returns: words with boxes and confidences, grouped into lines.
//!
//! Lines are formed from geometry in framebuffer pixels rather than from Tesseract's block/paragraph/line ids:
//! the engine reads a screen in many small crops, and a line may span several of them (or a crop may hold two
//! buttons that are not one line). Two words are on one line when they share most of their height and the gap
//! between them is at most about a word space and a half (relative to their height). Lines are ordered top to
//! bottom, then left to right, and words are stored in that reading order, so a line's words are a contiguous,
//! increasing range of indices.
//!
//! The serde form is vmkit's OCR JSON: `{"width","height","texts":[{"text","confidence","bbox"}],"lines":[...]}`.

use serde::{Deserialize, Serialize};

use crate::geom::Rect;

/// One recognised word.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Word {
    /// The characters Tesseract read.
    pub text: String,
    /// Tesseract's confidence, 0 to 100.
    pub confidence: f32,
    /// Where the word is, in framebuffer pixels.
    pub bbox: Rect,
}

/// A run of words on one line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Line {
    /// The words' texts joined by single spaces.
    pub text: String,
    /// The mean of the words' confidences.
    pub confidence: f32,
    /// The union of the words' boxes.
    pub bbox: Rect,
    /// Indices into [`ScreenText::words`], left to right.
    pub words: Vec<usize>,
}

/// Everything read from one frame.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ScreenText {
    /// Width of the frame that was read.
    pub width: u32,
    /// Height of the frame that was read.
    pub height: u32,
    /// Every word, in reading order (line by line, top to bottom; left to right within a line).
    #[serde(rename = "texts")]
    pub words: Vec<Word>,
    /// The words grouped into lines, top to bottom, then left to right.
    pub lines: Vec<Line>,
}

impl ScreenText {
    /// A frame of this size on which nothing has been read yet: as the `previous` of [`crate::Engine::reread`] it
    /// makes the engine read only the damaged areas.
    pub fn empty(width: u32, height: u32) -> Self {
        Self { width, height, words: Vec::new(), lines: Vec::new() }
    }

    /// Builds the result from words in any order: groups them into lines and sorts everything into reading order.
    pub fn from_words(width: u32, height: u32, words: Vec<Word>) -> Self {
        let groups = group_lines(&words);
        let mut ordered = Vec::with_capacity(words.len());
        let mut lines = Vec::with_capacity(groups.len());
        let mut slots: Vec<Option<Word>> = words.into_iter().map(Some).collect();
        for group in groups {
            let first = ordered.len();
            for i in group {
                if let Some(w) = slots.get_mut(i).and_then(Option::take) {
                    ordered.push(w);
                }
            }
            let members = &ordered[first..];
            if members.is_empty() {
                continue;
            }
            let text = members.iter().map(|w| w.text.as_str()).collect::<Vec<_>>().join(" ");
            let bbox = members.iter().fold(Rect::default(), |b, w| b.union(&w.bbox));
            let confidence = members.iter().map(|w| w.confidence).sum::<f32>() / members.len() as f32;
            lines.push(Line { text, confidence, bbox, words: (first..ordered.len()).collect() });
        }
        Self { width, height, words: ordered, lines }
    }

    /// All text, one line per line.
    pub fn text(&self) -> String {
        self.lines.iter().map(|l| l.text.as_str()).collect::<Vec<_>>().join("\n")
    }

    /// The words of a line.
    pub fn line_words<'a>(&'a self, line: &'a Line) -> impl Iterator<Item = &'a Word> + 'a {
        line.words.iter().filter_map(|&i| self.words.get(i))
    }
}

/// Whether two boxes share enough of their height to sit on one line.
fn same_row(a: &Rect, b: &Rect) -> bool {
    let overlap = a.vertical_overlap(b);
    overlap * 2 >= a.height.min(b.height).max(1)
}

/// Groups word indices into lines, in reading order.
fn group_lines(words: &[Word]) -> Vec<Vec<usize>> {
    let mut order: Vec<usize> = (0..words.len()).collect();
    order.sort_by_key(|&i| (words[i].bbox.x, words[i].bbox.y));
    // Each open line: its word indices and the box of its last word.
    let mut lines: Vec<(Vec<usize>, Rect)> = Vec::new();
    for i in order {
        let b = words[i].bbox;
        let best = lines
            .iter()
            .enumerate()
            .filter(|(_, (_, last))| {
                let h = last.height.max(b.height);
                same_row(last, &b)
                    && b.x + h / 4 >= last.right()
                    && b.x <= last.right() + h * 3 / 2
                    && last.height.min(b.height) * 2 >= last.height.max(b.height)
            })
            .max_by_key(|(_, (_, last))| (last.vertical_overlap(&b), last.right()))
            .map(|(k, _)| k);
        match best {
            Some(k) => {
                lines[k].0.push(i);
                lines[k].1 = b;
            }
            None => lines.push((vec![i], b)),
        }
    }
    let boxes: Vec<Rect> =
        lines.iter().map(|(ids, _)| ids.iter().fold(Rect::default(), |acc, &i| acc.union(&words[i].bbox))).collect();
    let mut idx: Vec<usize> = (0..lines.len()).collect();
    sort_reading_order(&mut idx, |k| boxes[k]);
    idx.into_iter().map(|k| std::mem::take(&mut lines[k].0)).collect()
}

/// Sorts items top to bottom, then left to right: items whose boxes share most of their height form a row and
/// are ordered by their left edge. The rows are built first, so the order is a total one.
pub(crate) fn sort_reading_order<T: Copy>(items: &mut [T], bbox: impl Fn(T) -> Rect) {
    items.sort_by_key(|&t| {
        let b = bbox(t);
        (b.y + b.height / 2, b.x)
    });
    let mut row_of = Vec::with_capacity(items.len());
    let mut row = 0usize;
    let mut anchor: Option<Rect> = None;
    for &t in items.iter() {
        let b = bbox(t);
        match anchor {
            Some(a) if same_row(&a, &b) => {}
            Some(_) => {
                row += 1;
                anchor = Some(b);
            }
            None => anchor = Some(b),
        }
        row_of.push(row);
    }
    let mut keyed: Vec<(usize, u32, T)> = items.iter().zip(row_of).map(|(&t, r)| (r, bbox(t).x, t)).collect();
    keyed.sort_by_key(|&(r, x, _)| (r, x));
    for (slot, (_, _, t)) in items.iter_mut().zip(keyed) {
        *slot = t;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(text: &str, x: u32, y: u32, width: u32, height: u32) -> Word {
        Word { text: text.into(), confidence: 90.0, bbox: Rect::new(x, y, width, height) }
    }

    #[test]
    fn words_group_into_lines_in_reading_order() {
        let words = vec![
            w("Setup", 140, 101, 50, 16),
            w("Continue", 400, 300, 70, 16),
            w("Welcome", 20, 100, 70, 18),
            w("to", 100, 102, 20, 14),
            w("Cancel", 300, 302, 60, 14),
            w("Far", 900, 100, 30, 16),
        ];
        let s = ScreenText::from_words(1000, 500, words);
        let lines: Vec<&str> = s.lines.iter().map(|l| l.text.as_str()).collect();
        assert_eq!(lines, ["Welcome to Setup", "Far", "Cancel", "Continue"]);
        assert_eq!(s.words[0].text, "Welcome");
        assert_eq!(s.lines[0].words, vec![0, 1, 2]);
        assert_eq!(s.lines[0].bbox, Rect::new(20, 100, 170, 18));
        assert_eq!(s.text(), "Welcome to Setup\nFar\nCancel\nContinue");
    }

    #[test]
    fn json_has_texts_and_bbox() {
        let s = ScreenText::from_words(10, 10, vec![w("Hi", 1, 2, 3, 4)]);
        let v = serde_json::to_value(&s).unwrap();
        assert_eq!(v["texts"][0]["text"], "Hi");
        assert_eq!(v["texts"][0]["bbox"]["width"], 3);
        assert_eq!(v["lines"][0]["words"][0], 0);
    }
}
